#!/usr/bin/env bash
# hotpath.sh — parse + validate + aggregate from memory, one core.
#
#   bench/hotpath.sh [--tiny] [--compare OLD_BUILD_DIR] [--reps N]
#
# 1. funneld-gen writes the reference stream: ~300-byte events (default
#    options, seed 1, 2 hours of event time), 200k messages (tiny: 20k).
# 2. bench-hotpath runs each loop over it in memory (3M messages per row;
#    tiny: 100k): the full hot path with the default groupings (batch reset
#    every 20k events, as flush_max_events would), our parser alone, and
#    cJSON_ParseWithLength with libc malloc and with a bump arena.
# 3. callgrind (if valgrind is installed) counts instructions per event of the
#    hot path and of the parser alone: costs collected inside the timed loop
#    only, at two event counts, and divided by their difference, so setup is
#    cancelled out. The top functions of the hot path follow the table.
# 4. --compare OLD_BUILD_DIR (a build directory of another tree holding its
#    bench-hotpath, e.g. main's): the same callgrind counts for the old
#    binary, then the hot and parse loops of both binaries alternately,
#    --reps times (default 3), on the same pinned core; printed: median and
#    [min-max] events/s of each and the ratios new / old. Alternating runs
#    share whatever load the machine has, which one run each does not.
# Goal: >= 1,000,000 events/s on one core.
set -euo pipefail
BENCH_USAGE="bench/hotpath.sh [--tiny] [--compare OLD_BUILD_DIR] [--reps N]"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OLD_BUILD=$COMPARE REPS=${REPS:-3}
if [ -n "$OLD_BUILD" ]; then
  case $OLD_BUILD in /*) ;; *) OLD_BUILD=$PWD/$OLD_BUILD ;; esac
  [ -x "$OLD_BUILD/bench-hotpath" ] || die "--compare: no bench-hotpath in $OLD_BUILD"
fi

if [ "$TINY" = 1 ]; then NREF=20000 NRUN=100000 CG1=1000 CG2=3000
else NREF=200000 NRUN=3000000 CG1=10000 CG2=60000; fi

ensure_built
REF=$WORK/ref.jsonl
"$BUILD/funneld-gen" --seed 1 --events "$NREF" --hours 2 --out "$REF" --quiet

say "hotpath: timing $NRUN messages per loop (one core)..."
taskset -c 0 true 2>/dev/null && PIN=(taskset -c "${BENCH_CPU:-0}") || PIN=()
"${PIN[@]}" "$BUILD/bench-hotpath" --mode all --events "$NRUN" "$REF" >"$WORK/timing.txt"

ir_per_event() {   # MODE [BUILD_DIR [TAG]] -> instructions per message inside run_mode
  local mode=$1 bin=${2:-$BUILD}/bench-hotpath tag=${3:-} n i1 i2
  for n in "$CG1" "$CG2"; do
    valgrind --tool=callgrind --toggle-collect='run_mode*' --callgrind-out-file="$WORK/cg$tag.$mode.$n" \
      "$bin" --mode "$mode" --events "$n" "$REF" >/dev/null 2>"$WORK/cg$tag.$mode.$n.log" ||
      { tail "$WORK/cg$tag.$mode.$n.log" >&2; return 1; }
  done
  i1=$(awk '/^(summary|totals):/ { print $2; exit }' "$WORK/cg$tag.$mode.$CG1")
  i2=$(awk '/^(summary|totals):/ { print $2; exit }' "$WORK/cg$tag.$mode.$CG2")
  awk -v a="$i1" -v b="$i2" -v n1="$CG1" -v n2="$CG2" 'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }'
}

IR_HOT=n/a IR_PARSE=n/a
if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
  say "hotpath: callgrind at $CG1 and $CG2 messages..."
  IR_HOT=$(ir_per_event hot) || IR_HOT=n/a
  IR_PARSE=$(ir_per_event parse) || IR_PARSE=n/a
else
  say "hotpath: valgrind not installed, no instruction counts"
fi

row() { awk -v m="$1" '$1 == m { print $2, $3 }' "$WORK/timing.txt"; }
read -r HOT_RATE HOT_NS < <(row hot)
read -r PARSE_RATE PARSE_NS < <(row parse)
read -r CJ_RATE CJ_NS < <(row cjson)
read -r CJA_RATE CJA_NS < <(row cjson-arena)
MEAN=$(sed -n 's/.*mean \([0-9]*\) bytes.*/\1/p' "$WORK/timing.txt")
GOAL=$(awk -v r="$HOT_RATE" 'BEGIN { print (r >= 1000000 ? "met" : "MISSED") }')

echo
echo "hotpath: $NREF reference messages (mean $MEAN B), $NRUN per loop, default groupings, one core ($(nproc) on the machine)"
echo
printf '| %-58s | %12s | %9s | %10s |\n' "loop" "events/s" "ns/event" "instr/event"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------------------" "--------------" "-----------" "------------"
printf '| %-58s | %12s | %9s | %10s |\n' "hot path: parse+validate+aggregate (goal >= 1M/s: $GOAL)" "$HOT_RATE" "$HOT_NS" "$IR_HOT"
printf '| %-58s | %12s | %9s | %10s |\n' "fd_event_parse alone (parse+validate)" "$PARSE_RATE" "$PARSE_NS" "$IR_PARSE"
printf '| %-58s | %12s | %9s | %10s |\n' "cJSON_ParseWithLength + Delete, malloc" "$CJ_RATE" "$CJ_NS" "-"
printf '| %-58s | %12s | %9s | %10s |\n' "cJSON_ParseWithLength + Delete, arena (InitHooks)" "$CJA_RATE" "$CJA_NS" "-"
if [ -f "$WORK/cg.hot.$CG2" ]; then
  echo
  echo "callgrind, hot path at $CG2 messages: top functions by own instructions (% of the loop)"
  callgrind_annotate --auto=no --inclusive=no "$WORK/cg.hot.$CG2" 2>/dev/null |
    awk '/file:function/ { on = 1; next }
         on && match($0, /\( *[0-9.]+%\)/) {
           pct = substr($0, RSTART + 1, RLENGTH - 2); gsub(/ /, "", pct)
           fn = substr($0, RSTART + RLENGTH); sub(/^ +/, "", fn); sub(/ \[.*/, "", fn); sub(/^.*\//, "", fn)
           printf "  %7s  %s\n", pct, fn; if (++k == 12) exit }'
fi

[ -z "$OLD_BUILD" ] && exit 0

say "hotpath: --compare $OLD_BUILD: callgrind of the old binary, then $REPS alternating timings..."
OLD_IR_HOT=n/a OLD_IR_PARSE=n/a
if [ "$IR_HOT" != n/a ]; then
  OLD_IR_HOT=$(ir_per_event hot "$OLD_BUILD" .old) || OLD_IR_HOT=n/a
  OLD_IR_PARSE=$(ir_per_event parse "$OLD_BUILD" .old) || OLD_IR_PARSE=n/a
fi
rate() {   # BUILD_DIR MODE -> events/s of one timed loop
  "${PIN[@]}" "$1/bench-hotpath" --mode "$2" --events "$NRUN" "$REF" | awk -v m="$2" '$1 == m { print $2 }'
}
declare -A R
for ((r = 1; r <= REPS; r++)); do
  for mode in hot parse; do
    R[old.$mode]+="$(rate "$OLD_BUILD" "$mode") "
    R[new.$mode]+="$(rate "$BUILD" "$mode") "
  done
done
stats() {   # "v1 v2 ..." -> "median [min-max]"
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -n | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.0f [%.0f-%.0f]", m, v[1], v[NR] }'
}
med() { stats "$1" | awk '{ print $1 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "hotpath --compare: this tree ($BUILD) vs old ($OLD_BUILD), $REPS alternating runs of $NRUN messages, one pinned core"
echo
printf '| %-24s | %-28s | %-28s | %9s |\n' "loop" "this tree" "old" "new / old"
printf '|%s|%s|%s|%s|\n' "--------------------------" "------------------------------" "------------------------------" "-----------"
for mode in hot parse; do
  printf '| %-24s | %-28s | %-28s | %9s |\n' "$mode: events/s" "$(stats "${R[new.$mode]}")" \
    "$(stats "${R[old.$mode]}")" "$(ratio "$(med "${R[new.$mode]}")" "$(med "${R[old.$mode]}")")"
done
printf '| %-24s | %-28s | %-28s | %9s |\n' "hot: instr/event" "$IR_HOT" "$OLD_IR_HOT" "$(ratio "$IR_HOT" "$OLD_IR_HOT")"
printf '| %-24s | %-28s | %-28s | %9s |\n' "parse: instr/event" "$IR_PARSE" "$OLD_IR_PARSE" "$(ratio "$IR_PARSE" "$OLD_IR_PARSE")"
