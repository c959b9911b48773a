# shellcheck shell=bash disable=SC2034
# lib.sh — shared by the bench/*.sh scripts (sourced, not run).
#
# Gives: ROOT, BUILD (FUNNELD_BUILD, default build/), TINY (--tiny or
# BENCH_TINY=1), WORK (a fresh temp dir, removed at exit unless
# BENCH_KEEP=1), and helpers to build, run the local stack
# (deploy/stack.sh), poll Redis and measure peak RSS. A stack started with
# stack_up is stopped by the exit trap whatever happens.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FUNNELD_BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
STACK=$ROOT/deploy/stack.sh
TINY=${BENCH_TINY:-0}
# The command line, one parser for every script: --tiny; and, in a script
# that sets BENCH_USAGE before sourcing this file (it takes them),
# --compare X (COMPARE) and --reps N (REPS, a positive integer). Anything
# else, or an option without its value, prints the usage and exits 2.
COMPARE= REPS=
bench_usage() {
  echo "${1:+bench: $1; }usage: ${BENCH_USAGE:-bench/$(basename "$0") [--tiny]}" >&2
  exit 2
}
BENCH_ARGV=("$@")
for ((bench_i = 0; bench_i < ${#BENCH_ARGV[@]}; bench_i++)); do
  case ${BENCH_ARGV[bench_i]} in
    --tiny) TINY=1 ;;
    --compare | --reps)
      bench_opt=${BENCH_ARGV[bench_i]} bench_val=${BENCH_ARGV[bench_i + 1]:-}
      [ -n "${BENCH_USAGE:-}" ] || bench_usage "$bench_opt is not an option of this bench"
      [ -n "$bench_val" ] || bench_usage "$bench_opt needs a value"
      bench_i=$((bench_i + 1))
      if [ "$bench_opt" = --compare ]; then COMPARE=$bench_val; else REPS=$bench_val; fi
      ;;
    *) bench_usage "unknown argument '${BENCH_ARGV[bench_i]}'" ;;
  esac
done
case $REPS in *[!0-9]* | 0*) bench_usage "--reps: a positive integer, not '$REPS'" ;; esac
WORK=$(mktemp -d "${TMPDIR:-/tmp}/funneld-bench.XXXXXX")
STACK_DIR=
BG_PIDS=()

bench_cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  [ -n "$STACK_DIR" ] && "$STACK" down "$STACK_DIR" >/dev/null 2>&1
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: error: $*"; exit 1; }

# Configures and builds what the benches run (incremental: a no-op when fresh).
ensure_built() {
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || die "cmake configure failed"
  fi
  cmake --build "$BUILD" -j "${FD_JOBS:-2}" --target funneld funneld-gen bench-hotpath bench-rawconsume \
    >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; die "build failed"; }
}

# Starts Kafka + Redis in $WORK/stack; sources stack.env (KAFKA_BOOTSTRAP, REDIS_PORT, ...).
stack_up() {
  STACK_DIR=$WORK/stack
  "$STACK" up "$STACK_DIR" >/dev/null || die "deploy/stack.sh up failed"
  # shellcheck disable=SC1091
  . "$STACK_DIR/stack.env"
}

topic() { "$STACK" topic "$STACK_DIR" "$1" "$2" 2>/dev/null || die "topic $1"; }

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

now_ms() { date +%s%3N; }

# Peak RSS in KiB of a running process (VmHWM), or of a finished one from
# the last value peak_rss_watch saw. peak_rss_watch PID FILE polls every
# 100 ms until the process exits, keeping the highest VmHWM in FILE.
peak_rss_watch() {
  local pid=$1 out=$2 v
  echo 0 >"$out"
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$v" ] && echo "$v" >"$out"
    sleep 0.1
  done
}

# Sum of the end offsets of topics (kcat metadata + query), as "topic:partition offset" lines.
end_offsets() {   # end_offsets TOPIC...
  local t p n
  for t in "$@"; do
    n=$(kcat -b "$KAFKA_BOOTSTRAP" -L -t "$t" 2>/dev/null | sed -n 's/.* with \([0-9]*\) partitions:.*/\1/p' | head -n1)
    for ((p = 0; p < n; p++)); do
      printf '%s:%d %s\n' "$t" "$p" "$(kcat -b "$KAFKA_BOOTSTRAP" -Q -t "$t:$p:-1" 2>/dev/null | awk '{ print $NF }')"
    done
  done
}

# Waits until {prefix}:offsets:{group} equals the end offsets in FILE
# ("topic:partition offset" lines); prints the wall ms when it did.
# wait_drained PREFIX GROUP FILE TIMEOUT_S [PID: give up if it exits]
wait_drained() {
  local prefix=$1 group=$2 ends=$3 timeout=$4 pid=${5:-} deadline
  deadline=$((SECONDS + timeout))
  while :; do
    # An empty partition (end offset 0) never gets an offset stored: nothing
    # was read from it, so an absent field counts as drained there.
    if rcli HGETALL "$prefix:offsets:$group" | awk -v ends="$ends" '
         BEGIN { while ((getline l < ends) > 0) { split(l, f, " "); want[f[1]] = f[2]; n++ } }
         NR % 2 == 1 { k = $0; next }
         { got[k] = 1 }
         (k in want) && want[k] == $0 { ok++ }
         END { for (k in want) if (want[k] == 0 && !(k in got)) ok++; exit !(n > 0 && ok == n) }'; then
      now_ms
      return 0
    fi
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && return 1
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# Config for funneld run against the stack (default topics funnel.*):
# fd_config FILE PREFIX GROUP [TOPICS_JSON_OBJECT] [extra top-level JSON members]
fd_config() {
  local f=$1 prefix=$2 group=$3 topics=${4:-} extra=${5:-} tline=
  [ -n "$topics" ] && tline=$'\n            "topics": '"$topics,"
  cat >"$f" <<JSON
{
  "kafka": {"brokers": "$KAFKA_BOOTSTRAP", "group": "$group",
            "dlq_topic": "bench.dlq",$tline
            "properties": {"session.timeout.ms": "6000", "auto.offset.reset": "earliest"}},
  "redis": {"url": "redis://127.0.0.1:$REDIS_PORT", "prefix": "$prefix"},
  "http": {"listen": ""}${extra:+,
  $extra}
}
JSON
}


# CPU seconds (user+sys) a process has used so far.
proc_cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU seconds (user+sys) a redis-server has used so far: the stack's, or
# the one on 127.0.0.1:PORT.
redis_cpu_s() {   # [PORT]
  redis-cli -h 127.0.0.1 -p "${1:-$REDIS_PORT}" INFO cpu | tr -d '\r' |
    awk -F: '$1 == "used_cpu_user" || $1 == "used_cpu_sys" { s += $2 } END { printf "%.3f", s }'
}

# Commands Redis has run (scripts' calls included) in the INFO commandstats
# text on stdin.
commands_total() {
  tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ { s += $3 } END { print s + 0 }'
}

# --compare's binary (OLD_BIN) made absolute and checked, when given.
check_old_bin() {
  [ -n "$OLD_BIN" ] || return 0
  case $OLD_BIN in /*) ;; *) OLD_BIN=$PWD/$OLD_BIN ;; esac
  [ -x "$OLD_BIN" ] || die "--compare: $OLD_BIN is not an executable"
}

# Bytes a process has received on its open TCP connections to the broker
# (tcp_info bytes_received; a connection closed earlier is not counted).
kafka_rx_bytes() {   # PID
  ss -tinpH "dport = :${KAFKA_BOOTSTRAP##*:}" 2>/dev/null | awk -v pid="pid=$1," '
    /users:/ { mine = index($0, pid) > 0; next }
    mine { for (i = 1; i <= NF; i++) if ($i ~ /^bytes_received:/) { sub(/^bytes_received:/, "", $i); s += $i } mine = 0 }
    END { print s + 0 }'
}

# Runs `funneld run -c CONFIG` (FD_BIN, default $BUILD/funneld) until {PREFIX}:offsets:{GROUP} reaches the
# end offsets in ENDS, then SIGTERM. Sets FD_SECS (start of the process to
# drained), FD_RSS_KB (peak RSS), FD_CPU_S (its CPU seconds until drained),
# FD_KAFKA_RX (bytes it received from the broker so far, kafka_rx_bytes),
# REDIS_CPU_S (redis-server's CPU seconds meanwhile) and FD_EXIT.
# funneld_drain NAME CONFIG ENDS PREFIX GROUP TIMEOUT_S
funneld_drain() {
  local name=$1 cfg=$2 ends=$3 prefix=$4 group=$5 timeout=$6 t0 t1 pid wpid r0
  r0=$(redis_cpu_s)
  t0=$(now_ms)
  "${FD_BIN:-$BUILD/funneld}" run -c "$cfg" >"$WORK/$name.log" 2>&1 &
  pid=$!
  BG_PIDS+=("$pid")
  peak_rss_watch "$pid" "$WORK/$name.rss" &
  wpid=$!
  if ! t1=$(wait_drained "$prefix" "$group" "$ends" "$timeout" "$pid"); then
    tail -n 20 "$WORK/$name.log" >&2
    die "$name: funneld did not drain the topics within ${timeout}s"
  fi
  FD_RSS_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || cat "$WORK/$name.rss")
  FD_CPU_S=$(proc_cpu_s "$pid")
  FD_KAFKA_RX=$(kafka_rx_bytes "$pid")
  REDIS_CPU_S=$(awk -v a="$r0" -v b="$(redis_cpu_s)" 'BEGIN { printf "%.3f", b - a }')
  kill -TERM "$pid" 2>/dev/null || true
  FD_EXIT=0
  wait "$pid" || FD_EXIT=$?
  wait "$wpid" 2>/dev/null || true
  FD_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
}

# Figures per event over benchmark runs, one run per line of FILE, "SHAPE
# WHO REP ..." first: median, min and max of column COL over the lines
# matching SHAPE and WHO ("" = any), as the per-event figure KIND ("rate":
# N / value; "us": CPU s -> us per event; "per": count per event; "": as
# is), N being the caller's event count; "- - -" when no line matches.
run_stat() {   # FILE SHAPE WHO COL KIND
  awk -v shape="$2" -v who="$3" -v col="$4" -v kind="$5" -v n="$N" '
    $1 == shape && (who == "" || $2 == who) {
      v = $col
      if (kind == "rate") v = n / v
      else if (kind == "us") v = v * 1e6 / n
      else if (kind == "per") v = v / n
      x[++k] = v
    }
    END {
      if (!k) { print "- - -"; exit }
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
      med = k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
      print med, x[1], x[k]
    }' "$1"
}
fmt() {   # MED MIN MAX DECIMALS
  awk -v m="$1" -v a="$2" -v b="$3" -v d="$4" 'BEGIN {
    if (m == "-") { print "-"; exit }
    printf "%." d "f [%." d "f-%." d "f]", m, a, b }'
}

# A Markdown table of per-event figures, this tree against --compare's
# binary (OLD_BIN): stat_header, then one stat_row per figure: the median
# [min-max] of each (run_stat, fmt) and the ratio of the medians.
stat_header() {
  printf '| %-34s | %-28s | %-28s | %-9s |\n' "per event" "funneld (this tree)" "${OLD_BIN:+funneld (--compare)}" "${OLD_BIN:+new / old}"
  printf '|%s|%s|%s|%s|\n' "------------------------------------" "------------------------------" "------------------------------" "-----------"
}
stat_row() {   # LABEL FILE SHAPE COL KIND DECIMALS
  local nm na nb om oa ob ratio=
  read -r nm na nb < <(run_stat "$2" "$3" new "$4" "$5")
  read -r om oa ob < <(run_stat "$2" "$3" old "$4" "$5")
  [ "$om" != - ] && ratio=$(awk -v a="$nm" -v b="$om" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  printf '| %-34s | %-28s | %-28s | %-9s |\n' "$1" "$(fmt "$nm" "$na" "$nb" "$6")" \
    "$( [ "$om" != - ] && fmt "$om" "$oa" "$ob" "$6")" "$ratio"
}
