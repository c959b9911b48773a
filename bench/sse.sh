#!/usr/bin/env bash
# sse.sh — do 1,000 event-stream clients and a slow one delay flushes?
#
#   bench/sse.sh [--tiny]    env: SSE_CLIENTS (default 1000; tiny 100),
#                                 SSE_PHASE_S (default 30; tiny 8),
#                                 SSE_RATE (live feed msg/s, default 2000)
#
# One run, side by side: a funneld run instance (flush_interval_ms 200,
# snapshot_interval_ms 1000, so every second each stream client gets an
# update) consumes a live feed from funneld-gen; bench/sse_load.py measures
# the flush round trip (funneld_flush_duration_seconds, funneld's own
# histogram) for SSE_PHASE_S seconds without stream clients, then opens
# SSE_CLIENTS readers + 1 client that never reads and measures again, then
# closes them and measures without once more (both no-client phases pooled).
# Prints p50/p99 of both phases and the ratio. The descriptor limit of
# funneld is raised to 4096 and http.max_connections to 2048 for the run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$TINY" = 1 ]; then N=${SSE_CLIENTS:-100} PHASE=${SSE_PHASE_S:-8}
else N=${SSE_CLIENTS:-1000} PHASE=${SSE_PHASE_S:-30}; fi
RATE=${SSE_RATE:-2000}
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

ensure_built
say "sse: starting the stack..."
stack_up
for t in live.exposure live.interaction live.payment; do topic "$t" 4; done
topic bench.dlq 1
fd_config "$WORK/sse.json" sse sse \
  '{"live.exposure": "exposure", "live.interaction": "interaction", "live.payment": "payment"}' \
  "\"flush_interval_ms\": 200, \"snapshot_interval_ms\": 1000"
sed -i "s|\"http\": {\"listen\": \"\"}|\"http\": {\"listen\": \"127.0.0.1:$PORT\", \"max_connections\": 2048, \"sse_max_clients\": $((N + 10))}|" "$WORK/sse.json"
ulimit -n 4096 || die "cannot raise the descriptor limit to 4096 (ulimit -Hn: $(ulimit -Hn))"
"$BUILD/funneld" run -c "$WORK/sse.json" >"$WORK/sse.log" 2>&1 &
FPID=$!
BG_PIDS+=("$FPID")
"$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --topics live.exposure,live.interaction,live.payment \
  --live --rate "$RATE" --events 0 --products 10 --quiet -X linger.ms=5 &
GPID=$!
BG_PIDS+=("$GPID")
sleep 20  # assignment, first flushes and snapshots, the feed at its rate
kill -0 "$FPID" || { tail "$WORK/sse.log" >&2; die "funneld exited"; }
say "sse: measuring ${PHASE}s without clients, ${PHASE}s with $N clients + 1 slow, ${PHASE}s without..."
read -r AN AP50 AP99 BN BP50 BP99 CONN PER DROPPED < <(python3 "$ROOT/bench/sse_load.py" "$PORT" sse "$PHASE" "$N")
kill -TERM "$GPID" "$FPID" 2>/dev/null || true
wait "$FPID" || true

echo
echo "sse: live feed $RATE msg/s, flush_interval_ms 200, snapshot_interval_ms 1000, ${PHASE}s per phase"
echo
printf '| %-34s | %12s | %12s |\n' "flush round trip" "no clients" "$N + 1 slow"
printf '|%s|%s|%s|\n' "------------------------------------" "--------------" "--------------"
printf '| %-34s | %12s | %12s |\n' "flushes measured" "$AN" "$BN"
printf '| %-34s | %9s ms | %9s ms |\n' "p50" "$AP50" "$BP50"
printf '| %-34s | %9s ms | %9s ms |\n' "p99" "$AP99" "$BP99"
echo
awk -v a="$AP99" -v b="$BP99" 'BEGIN { printf "p99 ratio with/without clients: %.2f\n", b / a }'
echo "stream clients connected: $CONN of $N; events per client meanwhile: $PER; slow clients dropped: $DROPPED"
