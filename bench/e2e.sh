#!/usr/bin/env bash
# e2e.sh — funneld draining a preloaded multi-partition topic set into Redis,
# against a raw consume of the same topics, in one run.
#
#   bench/e2e.sh [--tiny]        env: E2E_EVENTS (default 3000000; tiny 20000),
#                                     E2E_PARTITIONS (per topic, default 4; tiny 2)
#
# 1. deploy/stack.sh up: a local Kafka (KRaft) and redis-server.
# 2. funneld-gen preloads E2E_EVENTS messages (~300 B, 6 h of event time,
#    default fault fractions) into funnel.exposure / funnel.interaction /
#    funnel.payment, E2E_PARTITIONS partitions each, keyed by user / order.
# 3. Raw consume: bench-rawconsume (librdkafka, every partition assigned from
#    the beginning, messages dropped) reads everything; timed from process
#    start to the last end-of-partition.
# 4. funneld run with the default configuration (flush every 1 s): timed
#    from process start until {prefix}:offsets:{group} in Redis equals every
#    partition's end offset (so the time includes the group join and the
#    last flush).
# Goal: funneld >= 0.7 x raw consume throughput.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$TINY" = 1 ]; then N=${E2E_EVENTS:-20000} P=${E2E_PARTITIONS:-2}
else N=${E2E_EVENTS:-3000000} P=${E2E_PARTITIONS:-4}; fi
TOPICS=(funnel.exposure funnel.interaction funnel.payment)

ensure_built
say "e2e: starting the stack..."
stack_up
for t in "${TOPICS[@]}"; do topic "$t" "$P"; done
topic bench.dlq 1

say "e2e: preloading $N messages..."
t0=$(now_ms)
"$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --seed 1 --events "$N" --hours 6 --quiet
PRELOAD_S=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
end_offsets "${TOPICS[@]}" >"$WORK/ends"
TOTAL=$(awk '{ s += $2 } END { print s }' "$WORK/ends")
[ "$TOTAL" = "$N" ] || die "topics hold $TOTAL messages, expected $N"

say "e2e: raw consume..."
"$BUILD/bench-rawconsume" --brokers "$KAFKA_BOOTSTRAP" "${TOPICS[@]}" >"$WORK/raw.out" &
RPID=$!
peak_rss_watch "$RPID" "$WORK/raw.rss"
wait "$RPID" || die "bench-rawconsume failed"
read -r RAW_MSGS RAW_BYTES RAW_SECS <"$WORK/raw.out"
RAW_RSS_KB=$(cat "$WORK/raw.rss")
[ "$RAW_MSGS" = "$N" ] || die "raw consume read $RAW_MSGS of $N"

say "e2e: funneld run..."
rcli CONFIG RESETSTAT >/dev/null
fd_config "$WORK/funneld.json" e2e e2e
funneld_drain funneld "$WORK/funneld.json" "$WORK/ends" e2e e2e $((N / 2000 + 120))
[ "$FD_EXIT" = 0 ] || say "e2e: warning: funneld exited $FD_EXIT after SIGTERM"
TOTALS=$(grep 'msg="totals"' "$WORK/funneld.log" | tail -n 1 | grep -o 'accepted=[0-9]* late=[0-9]* rejected=[0-9]* flushes=[0-9]* resyncs=[0-9]*' || true)

MB=$(awk -v b="$RAW_BYTES" 'BEGIN { printf "%.0f", b / 1e6 }')
RAW_RATE=$(awk -v n="$N" -v s="$RAW_SECS" 'BEGIN { printf "%.0f", n / s }')
FD_RATE=$(awk -v n="$N" -v s="$FD_SECS" 'BEGIN { printf "%.0f", n / s }')
RATIO=$(awk -v a="$FD_RATE" -v b="$RAW_RATE" 'BEGIN { printf "%.2f", a / b }')
GOAL=$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.7 ? "met" : "MISSED") }')

echo
echo "e2e: $N messages ($MB MB) in 3 topics x $P partitions, preloaded in ${PRELOAD_S}s; one run, $(nproc) cores shared with Kafka and Redis"
echo
printf '| %-40s | %10s | %12s | %10s |\n' "consumer" "seconds" "events/s" "peak RSS"
printf '|%s|%s|%s|%s|\n' "------------------------------------------" "------------" "--------------" "------------"
printf '| %-40s | %10s | %12s | %10s |\n' "raw consume (librdkafka, no processing)" "$RAW_SECS" "$RAW_RATE" "$((RAW_RSS_KB / 1024)) MB"
printf '| %-40s | %10s | %12s | %7s MB |\n' "funneld run -> Redis (drained)" "$FD_SECS" "$FD_RATE" "$((FD_RSS_KB / 1024))"
echo
echo "ratio funneld / raw consume: $RATIO (goal >= 0.7: $GOAL)"
echo "where the time went: funneld used ${FD_CPU_S} CPU s, redis-server ${REDIS_CPU_S} CPU s (flush scripts) in ${FD_SECS} s;"
echo "funneld totals: ${TOTALS:-?} (accepted + rejected > messages means input re-read after resyncs)"

# Where redis-server's time went (INFO commandstats, since the RESETSTAT
# before funneld started; commands called from Lua count under their own name).
echo
echo "redis-server during the drain: ${REDIS_CPU_S} CPU s; by command (usec total, calls, usec/call):"
rcli INFO commandstats | tr -d '\r' |
  awk -F'[:=,]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); printf "  %-12s %12d %10d %8.2f\n", $1, $5, $3, $7 }' |
  sort -k2,2nr | head -n 8
