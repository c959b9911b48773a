#!/usr/bin/env bash
# test.sh — funneld's one test command (README, CI).
#
# 1. deploy/stack.sh deps + kafka-fetch: Debian packages, Python test deps and
#    the cached Kafka broker jars (each step is a no-op when already there).
# 2. The include check (.ci/check_includes.py: folders are floors, includes
#    only point down; also the ctest unit test include_floors).
# 3. Two builds, -j2: build/ (normal, -DFD_WERROR=ON) and build-asan/
#    (-DFD_SANITIZE=ON -DFD_INTEGRATION=OFF: ASan+UBSan, unit tests only).
# 4. ctest in build-asan/ (unit tests under the sanitizers), then in build/
#    (unit tests + the integration test: pytest, which starts Kafka and Redis
#    itself with deploy/stack.sh up in a temp dir and stops them again; its
#    ASan scenario runs build-asan/funneld, FUNNELD_ASAN_BIN).
#
# Every step runs even when an earlier one failed (a failed build skips only
# its own ctest), so one run reports everything; the exit status is non-zero
# if any step failed. Wall time is printed at the end.
#
# Environment: FD_BUILD_DIR, FD_ASAN_BUILD_DIR (default build/ and build-asan/
# in the checkout), FD_TIMEOUT_SCALE (scales test timeouts, default 1),
# FD_JOBS (default 2), FD_SKIP_DEPS=1 (skip step 1's package installation).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=$ROOT/deploy/stack.sh
BUILD=${FD_BUILD_DIR:-$ROOT/build}
ASAN=${FD_ASAN_BUILD_DIR:-$ROOT/build-asan}
JOBS=${FD_JOBS:-2}
export FD_TIMEOUT_SCALE=${FD_TIMEOUT_SCALE:-1}
# Sanitizers: stop at the first report, with a stack trace.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

START=$SECONDS
FAILED=()        # names of failed steps
FAILED_LOGS=()   # their logs, same index ("" for a step that did not run)
# Each step's output is also kept in LOGS, so the end of the run can repeat
# why a step failed (a CI page often shows only the tail of a long run).
LOGS=$(mktemp -d /tmp/funneld-test-logs.XXXXXX)
NSTEP=0

step() {   # step NAME CMD...: run, record failure, never exit
  local name=$1; shift
  NSTEP=$((NSTEP + 1))
  local log=$LOGS/$NSTEP.log
  printf '\n=== %s\n' "$name"
  local t0=$SECONDS
  if "$@" 2>&1 | tee "$log"; then
    printf '=== %s: ok (%ds)\n' "$name" $((SECONDS - t0))
    return 0
  fi
  printf '=== %s: FAILED (%ds)\n' "$name" $((SECONDS - t0))
  FAILED+=("$name")
  FAILED_LOGS+=("$log")
  return 1
}

# why LOG: the lines of a failed step's log that say what failed (pytest's
# FAILED/ERROR summary and E-lines, ctest's failed tests, compiler errors,
# sanitizer and valgrind reports), else its last lines.
why() {
  local hits
  hits=$(grep -E '^(FAILED|ERROR) |^E  |Test +#.*(Failed|\*\*\*)|: error:|^SUMMARY: |ERROR SUMMARY: [1-9]|^valgrind: |^==[0-9]+== ERROR' "$1" | head -n 60)
  if [ -n "$hits" ]; then printf '%s\n' "$hits"; else tail -n 25 "$1"; fi
}

in_dir() { (cd "$1" && shift && "$@"); }

if [ "${FD_SKIP_DEPS:-0}" != 1 ]; then
  step "deps" "$STACK" deps
fi
step "kafka-fetch" "$STACK" kafka-fetch

# The house's floors (README "Layout"): includes only point down. Fast, so
# first; ctest runs it again as the unit test include_floors.
step "include floors (.ci/check_includes.py)" python3 "$ROOT/.ci/check_includes.py" --root "$ROOT"

if step "configure build" cmake -S "$ROOT" -B "$BUILD" -DFD_WERROR=ON &&
   step "build build" cmake --build "$BUILD" -j "$JOBS"; then
  BUILD_OK=1
else
  BUILD_OK=0
fi

if step "configure build-asan" cmake -S "$ROOT" -B "$ASAN" -DFD_SANITIZE=ON -DFD_INTEGRATION=OFF &&
   step "build build-asan" cmake --build "$ASAN" -j "$JOBS"; then
  # the integration test's sanitized scenario runs this binary (without it,
  # the test builds one itself)
  export FUNNELD_ASAN_BIN=$ASAN/funneld
  step "ctest build-asan (unit, ASan+UBSan)" in_dir "$ASAN" ctest --output-on-failure -j "$JOBS"
else
  FAILED+=("ctest build-asan (not run: build failed)"); FAILED_LOGS+=("")
fi

if [ "$BUILD_OK" = 1 ]; then
  step "ctest build (unit + integration)" in_dir "$BUILD" ctest --output-on-failure
else
  FAILED+=("ctest build (not run: build failed)"); FAILED_LOGS+=("")
fi

# Every benchmark once in its tiny configuration, so none of them rots
# (no timing is asserted; the figures live in docs/BENCHMARKS.md).
if [ "$BUILD_OK" = 1 ]; then
  step "bench smoke (bench/ci_smoke.sh)" env FUNNELD_BUILD="$BUILD" "$ROOT/bench/ci_smoke.sh"
fi

# valgrind over every unit-test binary of the normal build (leaks and
# invalid accesses are errors).
valgrind_units() {
  local t rc=0
  for t in "$BUILD"/test_*; do
    [ -x "$t" ] || continue
    FD_SOURCE_DIR="$ROOT" valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
      "$t" >/dev/null || { echo "valgrind: $t failed"; rc=1; }
  done
  return $rc
}
if [ "$BUILD_OK" = 1 ]; then
  step "valgrind unit tests" valgrind_units
fi

# The parser is fuzzed (libFuzzer, ASan+UBSan) for a short while on every run;
# tests/fuzz/run.sh SECONDS runs it longer.
step "fuzz parser (20 s)" env FUZZ_OUT="$(mktemp -d /tmp/funneld-fuzz.XXXXXX)" "$ROOT/tests/fuzz/run.sh" 20

# The deploy files (systemd units, Containerfile, compose.yaml, redis.conf),
# as far as this machine allows: no container daemon, no systemd as PID 1.
if [ "$BUILD_OK" = 1 ]; then
  step "deploy files (deploy/check.sh)" "$ROOT/deploy/check.sh" "$BUILD"
fi

# The README's first command, as a smoke test: the stack, funneld and the
# generator come up, a snapshot appears, and everything stops again.
if [ "$BUILD_OK" = 1 ]; then
  step "quickstart smoke (deploy/quickstart.sh --for 25: a snapshot, the alert rule evaluated)" \
    env FD_BUILD_DIR="$BUILD" FD_QUICKSTART_DIR="$(mktemp -d /tmp/funneld-qs.XXXXXX)" "$ROOT/deploy/quickstart.sh" --for 25
fi

ELAPSED=$((SECONDS - START))
printf '\n=== test.sh wall time: %dm%02ds\n' $((ELAPSED / 60)) $((ELAPSED % 60))
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '=== FAILED steps:\n'
  printf '    %s\n' "${FAILED[@]}"
  for i in "${!FAILED_LOGS[@]}"; do
    [ -n "${FAILED_LOGS[$i]}" ] || continue
    printf '\n=== why "%s" failed (full log: %s)\n' "${FAILED[$i]}" "${FAILED_LOGS[$i]}"
    why "${FAILED_LOGS[$i]}"
  done
  exit 1
fi
printf '=== all steps passed\n'
