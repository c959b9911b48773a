#!/usr/bin/env bash
# memory.sh — funneld's peak RSS against active scopes, distinct users and
# event count (claim: bounded by scopes and windows, not by event count).
#
#   bench/memory.sh [--tiny]     env: MEM_EVENTS (base events per row, default
#                                     300000; tiny 2000), MEM_10M=1 adds the
#                                     10M-distinct-users row (11M events; minutes),
#                                     MEM_ROWS="1 6" runs only those rows (1-based),
#                                     MEM_MKT_USERS (N of the marketing rows,
#                                     default 50000; tiny 2000)
#
# One stack; per row its own three topics (4 partitions each), preloaded by
# funneld-gen (--lean events), then drained by `funneld run` with the default
# configuration (cardinality_cap raised to 200000 for the 100k-scope row).
# Rows: ~1k, ~10k, ~100k scopes (products / communities / campaigns and
# their popularity set the count); the 1k-scope stream with 3x the events;
# 1M distinct users (--user-skew 0: each exposure a new user); with
# MEM_10M=1, 10M distinct users. Marketing rows (marketing.enabled: each
# batch's per-user records, docs/METRICS.md): N and 4N distinct users
# (MEM_MKT_USERS, --user-skew 0), and 4N and N without marketing beside
# them (same flush_max_events 5000), so the rows show what marketing adds
# at N and at 4N users. Scopes
# are counted in Redis (ZCARD {prefix}:scopes), distinct users by HLL
# (PFCOUNT over the d1 `all` buckets), peak RSS from /proc VmHWM.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$TINY" = 1 ]; then B=${MEM_EVENTS:-2000} U1=5000 U2=0 UM=${MEM_MKT_USERS:-2000}
else B=${MEM_EVENTS:-300000} U1=1000000 U2=10000000 UM=${MEM_MKT_USERS:-50000}; fi
# marketing requires flush_max_events <= 5000 (docs/METRICS.md, "Cost"); the
# row without marketing beside them gets the same batch size
MKT='"marketing": {"enabled": true}, "flush_max_events": 5000'

S1="--products 20 --communities 30 --campaigns 20"
S2="--products 150 --communities 60 --campaigns 100 --zipf 0.8"
S3="--products 1000 --communities 150 --campaigns 1000 --zipf 0.6"
# name | events | cap | generator options | extra configuration
ROWS=("~1k scopes|$B|10000|$S1"
      "~10k scopes|$B|10000|$S2"
      "~100k scopes|$B|200000|$S3"
      "~1k scopes, 3x the events|$((3 * B))|10000|$S1"
      "$U1 distinct users|$((U1 * 11 / 10))|10000|$S1 --users $U1 --user-skew 0"
      "$UM users, marketing|$((UM * 11 / 10))|10000|$S1 --users $UM --user-skew 0|$MKT"
      "$((4 * UM)) users, marketing|$((UM * 44 / 10))|10000|$S1 --users $((4 * UM)) --user-skew 0|$MKT"
      "$((4 * UM)) users, no marketing|$((UM * 44 / 10))|10000|$S1 --users $((4 * UM)) --user-skew 0|\"flush_max_events\": 5000"
      "$UM users, no marketing|$((UM * 11 / 10))|10000|$S1 --users $UM --user-skew 0|\"flush_max_events\": 5000")
if [ "${MEM_10M:-0}" = 1 ] && [ "$TINY" != 1 ]; then
  ROWS+=("$U2 distinct users|$((U2 * 11 / 10))|10000|$S1 --users $U2 --user-skew 0")
fi

ensure_built
say "memory: starting the stack..."
stack_up
topic bench.dlq 1

OUT=$WORK/rows
: >"$OUT"
i=0
for row in "${ROWS[@]}"; do
  IFS='|' read -r name n cap opts extra <<<"$row"
  i=$((i + 1))
  if [ -n "${MEM_ROWS:-}" ] && ! [[ " $MEM_ROWS " == *" $i "* ]]; then continue; fi
  T=("mem$i.exposure" "mem$i.interaction" "mem$i.payment")
  for t in "${T[@]}"; do topic "$t" 4; done
  say "memory: row $i ($name): preloading $n messages..."
  # shellcheck disable=SC2086
  "$BUILD/funneld-gen" --brokers "$KAFKA_BOOTSTRAP" --topics "$(IFS=,; echo "${T[*]}")" --seed "$i" \
    --events "$n" --hours 6 --lean --quiet $opts
  end_offsets "${T[@]}" >"$WORK/ends$i"
  fd_config "$WORK/mem$i.json" "mem$i" "mem$i" \
    "{\"${T[0]}\": \"exposure\", \"${T[1]}\": \"interaction\", \"${T[2]}\": \"payment\"}" \
    "\"cardinality_cap\": $cap${extra:+, $extra}"
  funneld_drain "mem$i" "$WORK/mem$i.json" "$WORK/ends$i" "mem$i" "mem$i" $((n / 1000 + 120))
  scopes=$(rcli ZCARD "mem$i:scopes")
  mapfile -t hll < <(rcli --scan --pattern "mem$i:u:all:d1:*:exposed")
  users=$(rcli PFCOUNT "${hll[@]}")
  printf '%s|%s|%s|%s|%s|%s\n' "$name" "$n" "$scopes" "$users" "$((FD_RSS_KB / 1024))" "$FD_SECS" >>"$OUT"
  rcli --scan --pattern "mem$i:*" | xargs -r -n 500 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" UNLINK >/dev/null
done

echo
echo "memory: funneld run, default configuration (flush 1 s or 20,000 events per partition, max_pending_events 200,000), --lean events, $(nproc) cores"
echo
printf '| %-28s | %10s | %14s | %16s | %12s | %9s |\n' "stream" "messages" "scopes (Redis)" "distinct users" "peak RSS" "drain s"
printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------------" "------------" "----------------" "------------------" "--------------" "-----------"
while IFS='|' read -r name n scopes users rss secs; do
  printf '| %-28s | %10s | %14s | %16s | %9s MB | %9s |\n' "$name" "$n" "$scopes" "$users" "$rss" "$secs"
done <"$OUT"

# ---- per-user marketing state (docs/METRICS.md, docs/REDIS.md "Marketing keys")
# Redis memory of {prefix}:us:{product}:{user} for MEM_STATE_USERS users (default
# 1,000,000; tiny 10,000), each active on 30 days: built in the layout the
# flush script writes (MessagePack map f/a/x/i/o/r; a 30-day user keeps its
# 30 active days, and of its exposures only those in its first exposure's
# 7-day window: 7 here, one a day, plus 5 interactions and one paid order),
# with the script's own cmsgpack, in a real redis-server; measured as the
# growth of INFO used_memory. The ret:/attr: counter hashes grow with
# scopes x days, not users, and are not in this figure.
if [ "$TINY" = 1 ]; then NU=${MEM_STATE_USERS:-10000}; else NU=${MEM_STATE_USERS:-1000000}; fi
say "memory: per-user state for $NU users x 30 days..."
used() { rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }
before=$(used)
CHUNK=10000
for ((s = 0; s < NU; s += CHUNK)); do
  rcli EVAL "
    local s, n = tonumber(ARGV[1]), tonumber(ARGV[2])
    local d0, t0 = 20000, 1728000000000
    for u = s, s + n - 1 do
      local a, x, it = {}, {}, {}
      for k = 0, 29 do a[#a + 1] = {d0 + k} end
      for k = 0, 6 do x[#x + 1] = {t0 + k * 86400000, d0 + k, 'wechat_group', 'grp-07', 'cmp-2024-11'} end
      for k = 0, 4 do it[#it + 1] = {t0 + k * 86400000 + 60000} end
      local st = {f = x[1], a = a, x = x, i = it, o = {{'ord-' .. u, t0 + 5 * 86400000, 9900}}, r = {}}
      redis.call('SET', 'memstate:us:course-py:' .. (100000 + u), cmsgpack.pack(st), 'EX', 34560000)
    end
    return n" 0 "$s" "$(( NU - s < CHUNK ? NU - s : CHUNK ))" >/dev/null
done
after=$(used)
sample=$(rcli STRLEN "memstate:us:course-py:100000")
echo
echo "memory: per-user marketing state in Redis ($(redis-server --version | awk '{print $3}'))"
echo
printf '| %-34s | %10s | %14s | %16s |\n' "users x active days" "state bytes" "used_memory +" "bytes per user"
printf '|%s|%s|%s|%s|\n' "------------------------------------" "------------" "----------------" "------------------"
printf '| %-34s | %10s | %11s MB | %16s |\n' "$NU x 30 (7 exposures in window)" "$sample" "$(( (after - before) / 1048576 ))" "$(( (after - before) / NU ))"
rcli --scan --pattern "memstate:*" | xargs -r -n 500 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" UNLINK >/dev/null
