#!/bin/sh
# Builds the libFuzzer target for the event parser with clang (ASan + UBSan)
# and runs it for SECONDS (default 60) from the seeds in tests/fuzz/corpus/.
# New corpus entries and crash artifacts go to $FUZZ_OUT (default
# /tmp/fuzz-event), never into the repository.
#   usage: tests/fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-/tmp/fuzz-event}
cc=${CC_FUZZ:-clang}
mkdir -p "$out/corpus"

# shellcheck disable=SC2046
"$cc" -std=c11 -g -O1 -D_POSIX_C_SOURCE=200809L \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Wshadow -I"$root" $(pkg-config --cflags libcjson) \
    "$root/model/event.c" "$root/model/cohort.c" "$here/fuzz_event.c" \
    $(pkg-config --libs libcjson) -o "$out/fuzz_event"

# max_len a little over the harness's 1024-byte limit, so too_large is reached
exec "$out/fuzz_event" -max_total_time="$secs" -max_len=1100 -timeout=10 \
    -dict="$here/event.dict" -artifact_prefix="$out/" -print_final_stats=1 \
    "$@" "$out/corpus" "$here/corpus"
