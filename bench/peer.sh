#!/usr/bin/env bash
# peer.sh — funneld against a Kafka Streams job (bench/peers/kstreams) doing
# the same per-minute counts for the same groupings, same data, one run.
#
#   bench/peer.sh [--tiny]     env: PEER_EVENTS (default 1000000; tiny 10000),
#                                   PEER_PARTITIONS (per topic, default 4; tiny 2),
#                                   PEER_THREADS (Kafka Streams threads, default 1),
#                                   PEER_JAVA_OPTS (default: none, JVM ergonomics)
#
# 1. Builds the peer with Maven into <build>/kstreams-peer (offline when ~/.m2
#    has everything, else from Maven Central).
# 2. Starts the stack, preloads PEER_EVENTS messages with funneld-gen.
# 3. funneld run (default config), timed from process start until its offsets
#    in Redis equal the end offsets; then the peer, timed from JVM start
#    until it has read every message and applied every delta to its state
#    store. Peak RSS of each from /proc/PID/status VmHWM (polled every 100 ms).
# Goal: funneld >= 5x the peer's throughput at <= 1/10 of its peak RSS.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$TINY" = 1 ]; then N=${PEER_EVENTS:-10000} P=${PEER_PARTITIONS:-2}
else N=${PEER_EVENTS:-1000000} P=${PEER_PARTITIONS:-4}; fi
THREADS=${PEER_THREADS:-1}
TOPICS=(funnel.exposure funnel.interaction funnel.payment)
PEER_DIR=$BUILD/kstreams-peer
POM=$ROOT/bench/peers/kstreams/pom.xml

ensure_built
command -v java >/dev/null && command -v mvn >/dev/null || die "java and mvn are needed (deploy/stack.sh deps)"
say "peer: building the Kafka Streams peer..."
if ! mvn -q -B -o -f "$POM" -Dpeer.target="$PEER_DIR" package >"$WORK/mvn.log" 2>&1; then
  mvn -q -B -f "$POM" -Dpeer.target="$PEER_DIR" package >"$WORK/mvn.log" 2>&1 ||
    { tail -n 40 "$WORK/mvn.log" >&2; die "maven build of the peer failed"; }
fi

say "peer: starting the stack..."
stack_up
for t in "${TOPICS[@]}"; do topic "$t" "$P"; done
topic bench.dlq 1
say "peer: preloading $N messages..."
"$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --seed 2 --events "$N" --hours 6 --quiet
end_offsets "${TOPICS[@]}" >"$WORK/ends"
TOTAL=$(awk '{ s += $2 } END { print s }' "$WORK/ends")
[ "$TOTAL" = "$N" ] || die "topics hold $TOTAL messages, expected $N"

say "peer: funneld run..."
fd_config "$WORK/funneld.json" peer peer-funneld
funneld_drain funneld "$WORK/funneld.json" "$WORK/ends" peer peer-funneld $((N / 2000 + 120))

say "peer: Kafka Streams run..."
t0=$(now_ms)
# shellcheck disable=SC2086
java ${PEER_JAVA_OPTS:-} -cp "$PEER_DIR/kstreams-peer.jar:$PEER_DIR/lib/*" dev.funneld.peer.PeerApp \
  "$KAFKA_BOOTSTRAP" "peer-kstreams-$$" "$(IFS=,; echo "${TOPICS[*]}")" "$N" "$WORK/kstreams-state" "$THREADS" \
  >"$WORK/peer.out" 2>"$WORK/peer.log" &
JPID=$!
BG_PIDS+=("$JPID")
peak_rss_watch "$JPID" "$WORK/peer.rss" &
WPID=$!
deadline=$((SECONDS + N / 500 + 300))
while ! grep -q '^DRAINED' "$WORK/peer.out"; do
  kill -0 "$JPID" 2>/dev/null || { tail -n 30 "$WORK/peer.log" >&2; die "the peer exited before draining"; }
  [ "$SECONDS" -ge "$deadline" ] && { tail -n 10 "$WORK/peer.log" >&2; die "the peer did not drain in time"; }
  sleep 0.1
done
wait "$JPID" || true
wait "$WPID" 2>/dev/null || true
read -r _ t1 PEER_IN _ < <(grep '^DRAINED' "$WORK/peer.out")
[ "$PEER_IN" -ge "$N" ] || die "the peer read $PEER_IN of $N messages"
PEER_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
PEER_RSS_KB=$(cat "$WORK/peer.rss")

FD_RATE=$(awk -v n="$N" -v s="$FD_SECS" 'BEGIN { printf "%.0f", n / s }')
PEER_RATE=$(awk -v n="$N" -v s="$PEER_SECS" 'BEGIN { printf "%.0f", n / s }')
TPUT=$(awk -v a="$FD_RATE" -v b="$PEER_RATE" 'BEGIN { printf "%.2f", a / b }')
RSS=$(awk -v a="$FD_RSS_KB" -v b="$PEER_RSS_KB" 'BEGIN { printf "%.3f", a / b }')
G1=$(awk -v r="$TPUT" 'BEGIN { print (r >= 5 ? "met" : "MISSED") }')
G2=$(awk -v r="$RSS" 'BEGIN { print (r <= 0.1 ? "met" : "MISSED") }')

echo
echo "peer: $N messages in 3 topics x $P partitions; funneld then Kafka Streams ($THREADS stream thread(s)) on the same topics, one run, $(nproc) cores shared with Kafka and Redis"
echo
printf '| %-44s | %10s | %12s | %10s |\n' "job" "seconds" "events/s" "peak RSS"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "------------" "--------------" "------------"
printf '| %-44s | %10s | %12s | %7s MB |\n' "funneld run (m1/h1/d1, HLL, dedup -> Redis)" "$FD_SECS" "$FD_RATE" "$((FD_RSS_KB / 1024))"
printf '| %-44s | %10s | %12s | %7s MB |\n' "Kafka Streams peer (m1 counts -> RocksDB)" "$PEER_SECS" "$PEER_RATE" "$((PEER_RSS_KB / 1024))"
echo
echo "throughput funneld / peer: ${TPUT}x (goal >= 5x: $G1); peak RSS funneld / peer: $RSS (goal <= 0.1: $G2)"
