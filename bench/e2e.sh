#!/usr/bin/env bash
# e2e.sh — funneld draining preloaded multi-partition topics into Redis,
# against a raw consume of the same topics, in one run; optionally an older
# funneld side by side.
#
#   bench/e2e.sh [--tiny] [--compare OLD_FUNNELD] [--reps N]
#        env: E2E_EVENTS (default 1000000; tiny 20000), E2E_PARTITIONS (per
#             topic, default 4; tiny 2), E2E_SHAPES (default "backfill live"),
#             E2E_EXTRA (top-level JSON members added to both binaries' configs,
#             e.g. '"snapshot_interval_ms": 3600000'), E2E_REDIS_SET
#             ("name value ..." given to CONFIG SET before every run),
#             E2E_PERF=1 (perf record -g on redis-server during every run; the
#             top symbols of each binary's first run are printed; sampling
#             adds load, so that run's CPU figures are perturbed; Debian's
#             redis-server is stripped, so put a redis-server built from the
#             same source with symbols first in PATH to see names;
#             docs/BENCHMARKS.md, "Where Redis's time goes now").
#             E2E_REDIS_SET is split on spaces: a value cannot contain one.
#
# Two stream shapes, each preloaded once by funneld-gen (~300 B messages,
# default fault fractions, 3 topics x E2E_PARTITIONS partitions, keyed by
# user / order):
#   backfill  6 h of event time (seed 1): many buckets, so many keys per event
#   live      3 min of event time ending a minute before the preload (seed 2),
#             the shape of production, where events arrive as they happen
# Per shape, N repetitions (default 3; 1 with --tiny) of: a raw consume
# (bench-rawconsume: librdkafka, every partition from the beginning, messages
# dropped; timed to the last end of partition), then `funneld run` with the
# default configuration (flush every 1 s), timed from process start until
# {prefix}:offsets:{group} equals every end offset; with --compare, the old
# binary too, the two alternating which goes first. Before each funneld run
# Redis is emptied (FLUSHALL) and its statistics reset; the old binary runs
# against hll-sparse-max-bytes 3000 (Redis's default, what it shipped with;
# env E2E_OLD_HLL sets another, e.g. 1000 to compare two builds that both
# ship deploy/redis.conf's block), the new one against deploy/redis.conf's
# funneld block.
# Per run: events/s; CPU microseconds per event of funneld, redis-server and
# the Kafka broker (/proc/PID/stat and INFO cpu, over the drain); Redis
# commands per event (INFO commandstats, commands run by scripts included);
# Redis keys per event (DBSIZE after the drain); bytes funneld fetched from
# Kafka per event (tcp_info bytes_received of its sockets to the broker, `ss`,
# just before it is stopped) next to the bytes per event in the topics
# (message keys and values, what the raw consume got). Printed: median and [min-max] over the
# repetitions, and the ratios of medians new / old; then, per shape, the
# commands Redis ran per event, by command (first repetition of each binary;
# the harness's own polling, HGETALL of the offsets every 50 ms, included).
set -euo pipefail
BENCH_USAGE="bench/e2e.sh [--tiny] [--compare OLD_FUNNELD] [--reps N]"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OLD_BIN=$COMPARE

if [ "$TINY" = 1 ]; then N=${E2E_EVENTS:-20000} P=${E2E_PARTITIONS:-2} REPS=${REPS:-1}
else N=${E2E_EVENTS:-1000000} P=${E2E_PARTITIONS:-4} REPS=${REPS:-3}; fi
check_old_bin
read -r -a SHAPES <<<"${E2E_SHAPES:-backfill live}"
[ ${#SHAPES[@]} -gt 0 ] || die "E2E_SHAPES: no shape given (backfill, live)"
declare -A SEEN_SHAPE=()
for s in "${SHAPES[@]}"; do
  case $s in backfill | live) ;; *) die "E2E_SHAPES: unknown shape '$s' (backfill, live)" ;; esac
  [ -z "${SEEN_SHAPE[$s]:-}" ] || die "E2E_SHAPES: '$s' given twice"
  SEEN_SHAPE[$s]=1
done
if [ "${E2E_PERF:-0}" = 1 ]; then command -v perf >/dev/null || die "E2E_PERF=1: perf is not installed"; fi
declare -A TOPICS_OF=([backfill]="funnel.exposure funnel.interaction funnel.payment"
                      [live]="live.exposure live.interaction live.payment")

ensure_built
NEW_BIN=$BUILD/funneld
NEW_HLL=$(awk '/^# ---- funneld:/ { f = 1 } f && $1 == "hll-sparse-max-bytes" { print $2; exit }' "$ROOT/deploy/redis.conf")
say "e2e: starting the stack..."
stack_up
KPID=$(cat "$STACK_DIR/kafka/pid")
for s in "${SHAPES[@]}"; do for t in ${TOPICS_OF[$s]}; do topic "$t" "$P"; done; done
topic bench.dlq 1

say "e2e: preloading ${#SHAPES[@]} x $N messages..."
if [ -n "${SEEN_SHAPE[backfill]:-}" ]; then
  "$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --seed 1 --events "$N" --hours 6 --quiet
fi
if [ -n "${SEEN_SHAPE[live]:-}" ]; then
  "$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --seed 2 --events "$N" --hours 0.05 --quiet \
    --topics "$(echo ${TOPICS_OF[live]} | tr ' ' ,)"
fi
for s in "${SHAPES[@]}"; do
  # shellcheck disable=SC2086
  end_offsets ${TOPICS_OF[$s]} >"$WORK/ends.$s"
  tot=$(awk '{ s += $2 } END { print s }' "$WORK/ends.$s")
  [ "$tot" = "$N" ] || die "$s topics hold $tot messages, expected $N"
done

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# one line per run in $WORK/runs:
# shape who rep secs fd_cpu redis_cpu broker_cpu commands keys kafka_rx_bytes rss_kb
run_funneld() {   # SHAPE WHO BIN HLL_BYTES REP
  local shape=$1 who=$2 bin=$3 hll=$4 rep=$5 k0 k1 topics cmds keys
  rcli FLUSHALL >/dev/null
  rcli CONFIG SET hll-sparse-max-bytes "$hll" >/dev/null
  # shellcheck disable=SC2086
  if [ -n "${E2E_REDIS_SET:-}" ] && [ "$(rcli CONFIG SET $E2E_REDIS_SET | tr -d '\r')" != OK ]; then
    die "E2E_REDIS_SET: Redis refused CONFIG SET $E2E_REDIS_SET"
  fi
  rcli CONFIG RESETSTAT >/dev/null
  topics=$(for t in ${TOPICS_OF[$shape]}; do printf '"%s": "%s",' "$t" "${t#*.}"; done)
  fd_config "$WORK/$shape.$who.$rep.json" e2e "e2e-$shape-$who-$rep" "{${topics%,}}" "${E2E_EXTRA:-}"
  local perf_pid=
  if [ "${E2E_PERF:-0}" = 1 ]; then
    perf record -F 999 -g -p "$REDIS_PID" -o "$WORK/perf.$shape.$who.$rep" >/dev/null 2>&1 &
    perf_pid=$!
    BG_PIDS+=("$perf_pid")
  fi
  k0=$(cpu_ticks "$KPID")
  FD_BIN=$bin funneld_drain "$shape.$who.$rep" "$WORK/$shape.$who.$rep.json" "$WORK/ends.$shape" e2e \
    "e2e-$shape-$who-$rep" $((N / 2000 + 120))
  k1=$(cpu_ticks "$KPID")
  if [ -n "$perf_pid" ]; then
    kill -TERM "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" || true
  fi
  rcli INFO commandstats | tr -d '\r' >"$WORK/cmd.$shape.$who.$rep"
  [ "$FD_EXIT" = 0 ] || say "e2e: warning: $who funneld exited $FD_EXIT after SIGTERM"
  cmds=$(commands_total <"$WORK/cmd.$shape.$who.$rep")
  keys=$(rcli DBSIZE | tr -d '\r')
  echo "$shape $who $rep $FD_SECS $FD_CPU_S $REDIS_CPU_S $(awk -v a="$k0" -v b="$k1" -v hz="$HZ" \
    'BEGIN { printf "%.2f", (b - a) / hz }') $cmds $keys $FD_KAFKA_RX $FD_RSS_KB" >>"$WORK/runs"
  say "e2e: $shape $who #$rep: ${FD_SECS}s"
}

: >"$WORK/runs"
: >"$WORK/raw"
for ((rep = 1; rep <= REPS; rep++)); do
  for s in "${SHAPES[@]}"; do
    say "e2e: $s raw consume #$rep..."
    # shellcheck disable=SC2086
    "$BUILD/bench-rawconsume" --brokers "$KAFKA_BOOTSTRAP" ${TOPICS_OF[$s]} >"$WORK/raw.out" ||
      die "bench-rawconsume failed"
    read -r msgs bytes secs <"$WORK/raw.out"
    [ "$msgs" = "$N" ] || die "raw consume read $msgs of $N"
    echo "$s $rep $secs $bytes" >>"$WORK/raw"
    if [ -n "$OLD_BIN" ] && [ $((rep % 2)) = 1 ]; then
      run_funneld "$s" old "$OLD_BIN" "${E2E_OLD_HLL:-3000}" "$rep"
      run_funneld "$s" new "$NEW_BIN" "$NEW_HLL" "$rep"
    else
      run_funneld "$s" new "$NEW_BIN" "$NEW_HLL" "$rep"
      [ -n "$OLD_BIN" ] && run_funneld "$s" old "$OLD_BIN" "${E2E_OLD_HLL:-3000}" "$rep"
    fi
  done
done

echo
echo "e2e: $N messages per shape in 3 topics x $P partitions; $REPS repetition(s) each, median [min-max];"
echo "$(nproc) cores shared by Kafka, Redis, funneld (and whatever else runs on the machine)"
for s in "${SHAPES[@]}"; do
  read -r rm ra rb < <(awk -v s="$s" '$1 == s { print $3 }' "$WORK/raw" | sed "s/^/$s r 0 /" | run_stat /dev/stdin "$s" r 4 rate)
  read -r tb _ _ < <(awk -v s="$s" '$1 == s { print $4 }' "$WORK/raw" | sed "s/^/$s r 0 /" | run_stat /dev/stdin "$s" r 4 per)
  echo
  echo "### $s"
  echo
  echo "raw consume: $(fmt "$rm" "$ra" "$rb" 0) events/s; $(awk -v b="$tb" 'BEGIN { printf "%.0f", b }') bytes per event in the topics"
  echo
  stat_header
  row() { stat_row "$1" "$WORK/runs" "$s" "$2" "$3" "$4"; }   # LABEL COL KIND DECIMALS
  row "events/s (whole drain)" 4 rate 0
  row "funneld CPU us" 5 us 2
  row "redis-server CPU us" 6 us 2
  row "Kafka broker CPU us" 7 us 2
  row "Redis commands (incl. in scripts)" 8 per 2
  row "Redis keys after the drain" 9 per 3
  row "bytes fetched from Kafka" 10 per 0
  row "peak RSS (KiB, not per event)" 11 "" 0
  read -r nm _ _ < <(run_stat "$WORK/runs" "$s" new 4 rate)
  echo
  echo "funneld / raw consume (medians): $(awk -v a="$nm" -v b="$rm" 'BEGIN { printf "%.2f", a / b }')"
  if [ -n "$OLD_BIN" ]; then
    read -r om _ _ < <(run_stat "$WORK/runs" "$s" old 4 rate)
    echo "old funneld / raw consume (medians): $(awk -v a="$om" -v b="$rm" 'BEGIN { printf "%.2f", a / b }')"
  fi
done

# calls per event by command, first repetition of each binary
for s in "${SHAPES[@]}"; do
  echo
  echo "### $s: Redis commands per event, by command (repetition 1)"
  echo
  awk -F'[:=,]' -v n="$N" -v old="${OLD_BIN:+1}" '
    /^cmdstat_/ { c = substr($1, 9); gsub(/\|/, " ", c); calls[c, FILENAME ~ /\.new\.[0-9]+$/ ? "new" : "old"] = $3; seen[c] = 1 }
    END {
      for (c in seen) {
        a = calls[c, "new"] / n; b = calls[c, "old"] / n
        if (a >= 0.001 || b >= 0.001) printf "| %-22s | %12.3f | %12s |\n", c, a, old ? sprintf("%.3f", b) : ""
      }
    }' "$WORK/cmd.$s.new.1" ${OLD_BIN:+"$WORK/cmd.$s.old.1"} >"$WORK/cmdrows"
  printf '| %-22s | %12s | %12s |\n' "command" "this tree" "${OLD_BIN:+--compare}"
  printf '|%s|%s|%s|\n' "------------------------" "--------------" "--------------"
  sort -t'|' -k3,3nr "$WORK/cmdrows"
done
if [ "${E2E_PERF:-0}" = 1 ]; then
  for s in "${SHAPES[@]}"; do for who in new ${OLD_BIN:+old}; do
    echo
    echo "### $s, $who: redis-server's top symbols (perf, repetition 1)"
    echo
    if [ -s "$WORK/perf.$s.$who.1" ]; then
      perf report -i "$WORK/perf.$s.$who.1" --no-children --sort symbol --stdio -g none 2>/dev/null |
        awk '/%/ && !/^#/ && k < 25 { printf "    %7s  %s\n", $1, $3; k++ }' || true
    else
      echo "    (no samples: perf record failed; try as root, or lower kernel.perf_event_paranoid)"
    fi
  done; done
fi

echo
echo "every run (shape who rep seconds fd_cpu_s redis_cpu_s broker_cpu_s commands keys kafka_rx_bytes rss_kb):"
sed 's/^/  /' "$WORK/runs"
