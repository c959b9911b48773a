#!/usr/bin/env bash
# replay.sh — Redis's own CPU per event for funneld's exact command stream,
# measured without Kafka or funneld competing for the cores: steadier than
# bench/e2e.sh's redis-server figure, for comparing flush-script and key
# layout variants.
#
#   bench/replay.sh [--tiny] [--compare OLD_FUNNELD] [--reps N]
#   (the broker and the stack's Redis stay up, idle, while replays run)
#        env: REPLAY_EVENTS (default 1000000; tiny 20000), REPLAY_PARTITIONS
#             (per topic, default 4; tiny 2), REPLAY_SHAPE (backfill, the
#             default: 6 h of event time; live: 3 min ending now — the two
#             shapes of bench/e2e.sh), REPLAY_EXTRA (top-level JSON members
#             added to both binaries' configs; no alerts or http). Snapshot
#             ticks are off (snapshot_interval_ms 1 h) unless REPLAY_EXTRA sets
#             the interval: they come per second of capture, not per event,
#             and would make the figure depend on how long the capture took
#
# 1. Capture (once per binary): the stream is preloaded into Kafka
#    (funneld-gen, as bench/e2e.sh), and `funneld run` drains it into an
#    empty Redis through bench/resp_record.py, a loopback relay that records
#    every byte funneld sends (each connection to its own file).
# 2. Replay (N repetitions per binary, alternating which goes first): a
#    scratch redis-server with deploy/redis.conf's funneld block
#    (deploy/stack.sh redis-up), fed each connection's capture by its own
#    `redis-cli --pipe`, in the order the connections were opened;
#    redis-server's CPU (INFO cpu, user + sys) before and after, per event.
#    The flush script's compare-and-set and every "now" travel in the
#    stream, so the replay builds the same keys as the capture did; a reply
#    that is an error (redis-cli counts them), or a replay that leaves another
#    number of keys than the capture did (a count, not a digest), fails the
#    bench.
# Printed: median and [min-max] over the repetitions of Redis CPU µs per
# event and commands per event (INFO commandstats, script calls included),
# the keys left (DBSIZE), and the ratio of medians new / old.
set -euo pipefail

BENCH_USAGE="bench/replay.sh [--tiny] [--compare OLD_FUNNELD] [--reps N]"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OLD_BIN=$COMPARE

if [ "$TINY" = 1 ]; then N=${REPLAY_EVENTS:-20000} P=${REPLAY_PARTITIONS:-2} REPS=${REPS:-1}
else N=${REPLAY_EVENTS:-1000000} P=${REPLAY_PARTITIONS:-4} REPS=${REPS:-3}; fi
check_old_bin
SHAPE=${REPLAY_SHAPE:-backfill}
case $SHAPE in
  backfill) TOPICS="funnel.exposure funnel.interaction funnel.payment" GEN=(--seed 1 --hours 6) ;;
  live) TOPICS="live.exposure live.interaction live.payment"
    GEN=(--seed 2 --hours 0.05 --topics "$(echo $TOPICS | tr ' ' ,)") ;;
  *) die "REPLAY_SHAPE: backfill or live, not '$SHAPE'" ;;
esac
EXTRA=${REPLAY_EXTRA:-}
case $EXTRA in
  *'"alerts'* | *'"http'*) die "REPLAY_EXTRA: no alerts or http here (their connections would not replay in order)" ;;
esac
# snapshot ticks come every snapshot_interval_ms of capture time, not per
# event: off unless REPLAY_EXTRA sets the interval itself
case $EXTRA in *'"snapshot_interval_ms"'*) ;; *) EXTRA='"snapshot_interval_ms": 3600000'${EXTRA:+, $EXTRA} ;; esac

ensure_built
say "replay: starting the stack..."
stack_up
for t in $TOPICS; do topic "$t" "$P"; done
topic bench.dlq 1
say "replay: preloading $N messages ($SHAPE)..."
"$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --events "$N" --quiet "${GEN[@]}"
# shellcheck disable=SC2086
end_offsets $TOPICS >"$WORK/ends"
tot=$(awk '{ s += $2 } END { print s }' "$WORK/ends")
[ "$tot" = "$N" ] || die "the topics hold $tot messages, expected $N"

capture() {   # WHO BIN: writes $WORK/cap.WHO
  local who=$1 bin=$2 ppid pport topics
  rcli FLUSHALL >/dev/null
  python3 "$ROOT/bench/resp_record.py" --upstream-port "$REDIS_PORT" --out "$WORK/cap.$who" \
    >"$WORK/relay.$who" &
  ppid=$!
  BG_PIDS+=("$ppid")
  for _ in $(seq 100); do [ -s "$WORK/relay.$who" ] && break; sleep 0.05; done
  pport=$(head -n 1 "$WORK/relay.$who")
  [ -n "$pport" ] || die "the recording relay did not start"
  topics=$(for t in $TOPICS; do printf '"%s": "%s",' "$t" "${t#*.}"; done)
  fd_config "$WORK/$who.json" rp "replay-$who" "{${topics%,}}" "$EXTRA"
  sed -i "s|redis://127.0.0.1:$REDIS_PORT\"|redis://127.0.0.1:$pport\"|" "$WORK/$who.json"
  grep -q "redis://127.0.0.1:$pport\"" "$WORK/$who.json" || die "could not point the config at the relay"
  FD_BIN=$bin funneld_drain "capture.$who" "$WORK/$who.json" "$WORK/ends" rp "replay-$who" $((N / 2000 + 120))
  [ "$FD_EXIT" = 0 ] || die "capture $who: funneld exited $FD_EXIT (log: $WORK/capture.$who.log)"
  kill -TERM "$ppid" 2>/dev/null || true
  wait "$ppid" || true
  local n=0
  while [ -f "$WORK/cap.$who.$((n + 1))" ]; do n=$((n + 1)); done
  [ "$n" -gt 0 ] || die "capture $who: funneld made no connection through the relay"
  echo "$n" >"$WORK/conns.$who"
  rcli DBSIZE | tr -d '\r' >"$WORK/keys.$who"
  say "replay: captured $who: $(($(cat "$WORK"/cap."$who".* | wc -c) / 1024)) KiB in $n connection(s), drain ${FD_SECS}s, $(cat "$WORK/keys.$who") keys"
}

# one line per replay in $WORK/runs: shape who rep redis_cpu_s commands keys
replay() {   # WHO REP
  local who=$1 rep=$2 port pid c0 c1 out
  read -r port pid < <("$STACK" redis-up "$STACK_DIR" "r-$who-$rep") || die "scratch redis r-$who-$rep did not start"
  rp() { redis-cli -h 127.0.0.1 -p "$port" "$@" | tr -d '\r'; }
  c0=$(redis_cpu_s "$port")
  # each connection's bytes through their own --pipe, in the order they were
  # opened (a connection cut mid-command cannot swallow the next one's)
  for ((c = 1; c <= $(cat "$WORK/conns.$who"); c++)); do
    if ! out=$(redis-cli -h 127.0.0.1 -p "$port" --pipe <"$WORK/cap.$who.$c" 2>&1); then
      die "replay $who #$rep, connection $c: redis-cli --pipe failed: $(tail -n 5 <<<"$out")"
    fi
    case $out in *"errors: 0,"*) ;; *) die "replay $who #$rep, connection $c: $(tail -n 3 <<<"$out")" ;; esac
  done
  c1=$(redis_cpu_s "$port")
  [ "$(rp DBSIZE)" = "$(cat "$WORK/keys.$who")" ] ||
    die "replay $who #$rep left $(rp DBSIZE) keys, the capture $(cat "$WORK/keys.$who"): not the same stream"
  echo "$SHAPE $who $rep $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }') \
$(rp INFO commandstats | commands_total) $(rp DBSIZE)" >>"$WORK/runs"
  "$STACK" redis-down "$STACK_DIR" "r-$who-$rep" >/dev/null
  say "replay: $who #$rep done"
}

capture new "$BUILD/funneld"
[ -n "$OLD_BIN" ] && capture old "$OLD_BIN"
: >"$WORK/runs"
for ((rep = 1; rep <= REPS; rep++)); do
  if [ -n "$OLD_BIN" ] && [ $((rep % 2)) = 0 ]; then replay old "$rep"; replay new "$rep"
  else replay new "$rep"; [ -n "$OLD_BIN" ] && replay old "$rep"; fi
done

echo
echo "replay: $N events ($SHAPE, 3 topics x $P partitions), $REPS replay(s) per binary, median [min-max]"
echo
stat_header
row() { stat_row "$1" "$WORK/runs" "$SHAPE" "$2" "$3" "$4"; }   # LABEL COL KIND DECIMALS
row "redis-server CPU us (replay)" 4 us 2
row "Redis commands" 5 per 2
row "Redis keys after the replay" 6 per 3
echo
echo "every replay (shape who rep redis_cpu_s commands keys):"
sed 's/^/  /' "$WORK/runs"
