#!/usr/bin/env bash
# latency.sh — produce time -> visible in Redis, at half the maximum rate.
#
#   bench/latency.sh [--tiny]    env: LAT_MAX_RATE (skip the measurement of the
#                                     maximum rate), LAT_SECONDS (live phase,
#                                     default 60; tiny 6), LAT_PROBE_MS (default 50)
#
# 1. Stack up. The maximum rate: funneld drains LAT_PRELOAD messages
#    (default 500000; tiny 5000) preloaded into funnel.* (as bench/e2e.sh).
# 2. A second funneld (default config: flush every 1000 ms) consumes
#    live.exposure / live.interaction / live.payment while funneld-gen --live
#    produces into them at half that rate for LAT_SECONDS, plus a latency
#    probe every LAT_PROBE_MS (an exposure of product __probe__ stamped with
#    its produce time, logged by the generator).
# 3. bench/latency_poll.py polls the probes' m1 counters in Redis every ~2 ms
#    and takes, per probe, the first time it is visible.
# Goal: p99 <= flush interval + 250 ms.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$TINY" = 1 ]; then PRE=${LAT_PRELOAD:-5000} SECS=${LAT_SECONDS:-6}
else PRE=${LAT_PRELOAD:-500000} SECS=${LAT_SECONDS:-60}; fi
PROBE_MS=${LAT_PROBE_MS:-50}
FLUSH_MS=1000

ensure_built
say "latency: starting the stack..."
stack_up
for t in funnel.exposure funnel.interaction funnel.payment live.exposure live.interaction live.payment; do
  topic "$t" 4
done
topic bench.dlq 1

if [ -n "${LAT_MAX_RATE:-}" ]; then
  MAX=$LAT_MAX_RATE MAX_HOW="given (LAT_MAX_RATE)"
else
  say "latency: measuring the maximum rate on $PRE preloaded messages..."
  "$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --seed 3 --events "$PRE" --hours 2 --quiet
  end_offsets funnel.exposure funnel.interaction funnel.payment >"$WORK/ends"
  fd_config "$WORK/max.json" latmax latmax
  funneld_drain max "$WORK/max.json" "$WORK/ends" latmax latmax $((PRE / 2000 + 120))
  MAX=$(awk -v n="$PRE" -v s="$FD_SECS" 'BEGIN { printf "%.0f", n / s }')
  MAX_HOW="funneld drained $PRE preloaded messages in ${FD_SECS}s"
fi
RATE=$((MAX / 2))

say "latency: live phase, $RATE msg/s for ${SECS}s..."
fd_config "$WORK/live.json" lat lat \
  '{"live.exposure": "exposure", "live.interaction": "interaction", "live.payment": "payment"}' \
  "\"flush_interval_ms\": $FLUSH_MS"
"$BUILD/funneld" run -c "$WORK/live.json" >"$WORK/live.log" 2>&1 &
FPID=$!
BG_PIDS+=("$FPID")
sleep 3
kill -0 "$FPID" || { tail "$WORK/live.log" >&2; die "funneld exited"; }
"$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --topics live.exposure,live.interaction,live.payment \
  --live --rate "$RATE" --events $((RATE * SECS)) --probe-ms "$PROBE_MS" --probe-log "$WORK/probes.log" \
  --quiet -X linger.ms=5 &
GPID=$!
BG_PIDS+=("$GPID")
read -r LOGGED SEEN P50 P99 MAXL < <(python3 "$ROOT/bench/latency_poll.py" "$REDIS_PORT" lat "$WORK/probes.log" "$GPID")
wait "$GPID" || die "funneld-gen failed"
kill -TERM "$FPID" 2>/dev/null || true
wait "$FPID" || true
REJ=$(sed -n 's/.*rejected=\([0-9]*\).*/\1/p' "$WORK/live.log" | tail -n 1)
GOAL=$(awk -v p="$P99" -v g=$((FLUSH_MS + 250)) 'BEGIN { print (p <= g ? "met" : "MISSED") }')

echo
echo "latency: max rate $MAX msg/s ($MAX_HOW); live at $RATE msg/s for ${SECS}s, flush_interval_ms $FLUSH_MS, a probe every ${PROBE_MS} ms"
echo
printf '| %-28s | %10s |\n' "measure" "value"
printf '|%s|%s|\n' "------------------------------" "------------"
printf '| %-28s | %10s |\n' "probes produced / seen" "$LOGGED / $SEEN"
printf '| %-28s | %7s ms |\n' "p50 produce -> in Redis" "$P50"
printf '| %-28s | %7s ms |\n' "p99 produce -> in Redis" "$P99"
printf '| %-28s | %7s ms |\n' "max" "$MAXL"
echo
echo "goal p99 <= flush interval + 250 ms = $((FLUSH_MS + 250)) ms: $GOAL (funneld rejected ${REJ:-?} malformed messages meanwhile)"
[ "$SEEN" = "$LOGGED" ] || die "$((LOGGED - SEEN)) probes never became visible"
