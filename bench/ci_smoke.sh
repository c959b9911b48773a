#!/usr/bin/env bash
# ci_smoke.sh — runs every benchmark once in its tiny configuration, so that
# none of them can rot. Asserts only that each exits 0 and prints its table
# (a Markdown row "| ..."); never a timing. Needs the build (FUNNELD_BUILD,
# default build/; built if missing), Kafka jars (deploy/stack.sh
# kafka-fetch), java + mvn for the peer. Output of each bench goes to
# ${BENCH_SMOKE_LOGS:-<temp dir>}/<bench>.log; a failing bench's log is shown.
#
#   bench/ci_smoke.sh            all seven
#   bench/ci_smoke.sh e2e peer   just these
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOGS=${BENCH_SMOKE_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/bench-smoke.XXXXXX")}
mkdir -p "$LOGS"
BENCHES=("$@")
[ ${#BENCHES[@]} -gt 0 ] || BENCHES=(hotpath e2e replay peer latency memory sse)
FAILED=()
for b in "${BENCHES[@]}"; do
  t0=$SECONDS
  if BENCH_TINY=1 "$HERE/$b.sh" --tiny >"$LOGS/$b.log" 2>&1 && grep -q '^| ' "$LOGS/$b.log"; then
    printf 'bench smoke: %-8s ok (%ds)\n' "$b" $((SECONDS - t0))
  else
    printf 'bench smoke: %-8s FAILED (%ds); its output:\n' "$b" $((SECONDS - t0))
    tail -n 40 "$LOGS/$b.log" | sed 's/^/    /'
    FAILED+=("$b")
  fi
done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "bench smoke: FAILED: ${FAILED[*]} (logs in $LOGS)"
  exit 1
fi
echo "bench smoke: all ${#BENCHES[@]} benches ran (logs in $LOGS)"
