/*
 * redis_scripts.h — the server-side scripts of the Redis sink.
 *
 * FLUSH applies one partition's batch and advances its offset atomically,
 * after checking (compare-and-set) that the stored offset is the one this
 * consumer last stored or read: a consumer that lost the partition is fenced
 * and changes nothing. Argument layout: see fd_redis_sink_flush(). The
 * distinct-user HLLs of exposures and interactions are not in it: PFADD is
 * idempotent, so they are sent as plain pipelined commands just before the
 * script, on the same connection (a re-sent batch adds nothing new). The
 * paid-users HLL stays in the script, because a repeated payment must not
 * add its user. A counter entry's field count is negative when the sink
 * knows it set that key's TTL recently (see ttl_known in redis_sink.c).
 * A counter entry's action fields ("interactions.{action}", in the order
 * the partition first saw each action) follow its other fields as a list of
 * their own, capped per hash at action_cap: an action keeps its own field
 * if the hash already has it or has room, else its count goes to
 * "interactions.__other__". An action is thus named iff it was among the
 * first action_cap to reach that hash, so a named count is always exact.
 * HLEN + the entry's actions <= action_cap means room for all (the usual
 * case: no need to read field names); otherwise the hash's fields are read
 * (HKEYS) before any action field is written. Nothing in it can fail once
 * writing has begun.
 * SNAPSHOT writes one scope's rolling windows (DEL + HSET in one script, so
 * a reader never mixes two windows; everything it reads is checked before
 * its first write, as in FLUSH). LEASE takes or renews a PX lease (the
 * snapshot writer's and the alert evaluator's). FD_LUA_WINDOW_BUCKETS is the
 * window arithmetic SNAPSHOT and the alert evaluator's READ share.
 */
#ifndef FD_REDIS_SCRIPTS_H
#define FD_REDIS_SCRIPTS_H

#include "sinks/redis_lua.h"
#include "sinks/redis_users_lua.h"

/* Lua shared by the snapshot and alert scripts. buckets(from, to) lists the
 * bucket keys whose sum is the window [from, to) (epoch seconds,
 * minute-aligned): m1 buckets at the edges, h1 buckets for the whole hours
 * inside — the same sum as over m1 buckets alone, with at most 118 + 23
 * keys for 24 h. num(v) prints an integer-valued Lua number without an
 * exponent. */
#define FD_LUA_WINDOW_BUCKETS \
    "local function num(v) return string.format('%.0f', v) end\n" \
    "local function buckets(from, to)\n" \
    "  local b = {}\n" \
    "  local h0, h1 = math.ceil(from / 3600) * 3600, math.floor(to / 3600) * 3600\n" \
    "  if h0 >= h1 then\n" \
    "    for t = from, to - 60, 60 do b[#b + 1] = 'm1:' .. num(t) end\n" \
    "  else\n" \
    "    for t = from, h0 - 60, 60 do b[#b + 1] = 'm1:' .. num(t) end\n" \
    "    for t = h0, h1 - 3600, 3600 do b[#b + 1] = 'h1:' .. num(t) end\n" \
    "    for t = h1, to - 60, 60 do b[#b + 1] = 'm1:' .. num(t) end\n" \
    "  end\n" \
    "  return b\n" \
    "end\n"

/* Exact signed integers beyond 2^53 (Lua numbers are doubles): an integer
 * v is kept as {hi, lo} with v = hi * 10^9 + lo and 0 <= lo < 10^9, so every
 * part stays far below 2^53. big(s) parses the decimal text Redis keeps in a
 * hash field (nil if HINCRBY would not take it as an integer), add() sums,
 * i64() says whether a value fits int64, text() prints it. */
#define FD_LUA_BIGINT \
    "local B = 1000000000\n" \
    "local function big(s)\n" \
    "  if s == '0' then return {0, 0} end\n" \
    "  local neg, d = string.match(s, '^(%-?)([1-9]%d*)$')\n" \
    "  if not d or #d > 19 then return nil end\n" \
    "  local hi, lo = tonumber(string.sub(d, 1, -10)) or 0, tonumber(string.sub(d, -9))\n" \
    "  if neg == '' then return {hi, lo} end\n" \
    "  if lo == 0 then return {-hi, 0} end\n" \
    "  return {-hi - 1, B - lo}\n" \
    "end\n" \
    "local function add(a, b)\n" \
    "  local hi, lo = a[1] + b[1], a[2] + b[2]\n" \
    "  if lo >= B then hi, lo = hi + 1, lo - B end\n" \
    "  return {hi, lo}\n" \
    "end\n" \
    "local function i64(a)\n" \
    "  local h, l = a[1], a[2]\n" \
    "  return (h < 9223372036 or (h == 9223372036 and l <= 854775807)) and\n" \
    "         (h > -9223372037 or (h == -9223372037 and l >= 145224192))\n" \
    "end\n" \
    "local function text(a)\n" \
    "  local hi, lo, sign = a[1], a[2], ''\n" \
    "  if hi < 0 then\n" \
    "    sign = '-'\n" \
    "    if lo == 0 then hi = -hi else hi, lo = -hi - 1, B - lo end\n" \
    "  end\n" \
    "  if hi == 0 then return sign .. string.format('%.0f', lo) end\n" \
    "  return sign .. string.format('%.0f%09.0f', hi, lo)\n" \
    "end\n"

/* Coupons (docs/METRICS.md, "Coupons"): a new payment that carries a
 * coupon_id also counts in payments_coupon / refunds_coupon and
 * revenue_coupon, and in coupon.{id}.payments / coupon.{id}.revenue, capped
 * per hash at coupon_cap named coupons exactly like the action cap (a
 * coupon is named iff it was among the first coupon_cap to reach the hash;
 * the rest, and the id "__other__", go to coupon.__other__.*); it adds its
 * user to the bucket's coupon_touched HLL, and a paid one to coupon_paid. coupon_cap is the
 * argument just before the per-user section (whose start index is the
 * script's last argument, see redis_users_lua.h). The named coupons of a hash are read once per script
 * (HKEYS) and kept in cpn. coupon_check() runs in check(): both the named
 * and the __other__ field are checked, as for actions. */
#define FD_LUA_COUPON_FIELD \
    "local coupon_cap, cpn = tonumber(ARGV[tonumber(ARGV[#ARGV]) - 1]), {}\n" \
    "local cp_other = 'coupon.__other__'\n" \
    "local function coupon_field(k, cp)\n" \
    "  local c = cpn[k]\n" \
    "  if not c then\n" \
    "    c = {named = {}, n = 0}\n" \
    "    for _, x in ipairs(redis.call('HKEYS', k)) do\n" \
    "      if string.sub(x, 1, 7) == 'coupon.' and x ~= cp_other .. '.payments' and x ~= " \
    "cp_other .. " \
    "'.revenue' then\n" \
    "        local id = string.match(x, '^coupon%.(.*)%.payments$') or string.match(x, " \
    "'^coupon%.(.*)%.revenue$')\n" \
    "        if id and not c.named[id] then c.named[id] = true; c.n = c.n + 1 end\n" \
    "      end\n" \
    "    end\n" \
    "    cpn[k] = c\n" \
    "  end\n" \
    "  if not c.named[cp] and cp ~= '__other__' and c.n < coupon_cap then c.named[cp] = true; " \
    "c.n = " \
    "c.n + 1 end\n" \
    "  if c.named[cp] then return 'coupon.' .. cp end\n" \
    "  return cp_other\n" \
    "end\n" \
    "local function coupon_write(k, b, t, status, cp, delta, user)\n" \
    "  local f = coupon_field(k, cp)\n" \
    "  if status == 'paid' then\n" \
    "    redis.call('HINCRBY', k, 'payments_coupon', 1)\n" \
    "    redis.call('HINCRBY', k, f .. '.payments', 1)\n" \
    "    local uk = prefix .. ':u:' .. b .. ':coupon_paid'\n" \
    "    redis.call('PFADD', uk, user)\n" \
    "    redis.call('EXPIRE', uk, t)\n" \
    "  else\n" \
    "    redis.call('HINCRBY', k, 'refunds_coupon', 1)\n" \
    "  end\n" \
    "  local tk = prefix .. ':u:' .. b .. ':coupon_touched'\n" \
    "  redis.call('PFADD', tk, user)\n" \
    "  redis.call('EXPIRE', tk, t)\n" \
    "  redis.call('HINCRBY', k, 'revenue_coupon', delta)\n" \
    "  redis.call('HINCRBY', k, f .. '.revenue', delta)\n" \
    "end\n"

/* FLUSH runs in two phases. check() walks the arguments exactly as the
 * writes will and refuses the batch, before anything is written, on
 * everything a write could fail on: a command or key the ACL user may not
 * use (redis.acl_check_cmd, one key of each kind per command), a key of
 * the wrong type, a hash field that is not an integer, a HINCRBY that would
 * leave int64 at any step, a HyperLogLog PFADD would refuse as corrupted
 * (PFCOUNT of the key twice: the multi-key form walks every register, where
 * a one-key PFCOUNT may answer from the cached count of a corrupted HLL).
 * Its refusal is an error reply "REFUSED <cause>"; nothing was written. Only then do the writes run, and none of them can
 * fail (an OOM refusal can only hit a script's first write: Redis lets a
 * script that has written continue). The writes are unchanged. */
static const char FD_LUA_FLUSH[] =
    "local prefix, group, field, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local offkey = prefix .. ':offsets:' .. group\n"
    "local cur = redis.call('HGET', offkey, field)\n"
    "if (expected == '' and cur) or (expected ~= '' and cur ~= expected) then\n"
    "  return redis.error_reply('FENCED ' .. tostring(cur))\n"
    "end\n"
    "local newoff, maxts, nowms, nows, events = ARGV[5], ARGV[6], ARGV[7], ARGV[8], "
    "tonumber(ARGV[9])\n"
    "local ttl = {m1 = ARGV[10], h1 = ARGV[11], d1 = ARGV[12]}\n"
    "local dedup_ttl, action_cap = ARGV[13], tonumber(ARGV[14])\n"
    "local function ttl_c(b) return ttl[string.match(b, ':(%a%d):[^:]*$')] end\n"
    "local other_f = 'interactions.__other__'\n" FD_LUA_BIGINT
    "local L = 9007199254740992\n" FD_LUA_ACL_DENIED FD_LUA_COUPON_FIELD FD_LUA_USERS
    "local function check()\n"
    "  local acl, vals, hlls, dup = {}, {}, {}, {}\n"
    "  local function may(kind, cmd, k, ...)\n"
    "    if acl[kind .. cmd] then return nil end\n"
    "    acl[kind .. cmd] = true\n"
    "    if not redis.acl_check_cmd(cmd, k, ...) then\n"
    "      return 'NOPERM the Redis user may not run ' .. cmd .. ' on ' .. k ..\n"
    "             ' (docs/REDIS.md lists the ACL funneld needs)'\n"
    "    end\n"
    "  end\n"
    "  local function val(k, f, s)\n"
    "    if not s then return 0 end\n"
    "    if #s <= 15 and (s == '0' or string.find(s, '^%-?[1-9]%d*$')) then return tonumber(s) "
    "end\n"
    "    local v = big(s)\n"
    "    if not v or not i64(v) then return nil, 'NOTINT ' .. k .. ' field ' .. f .. ' is not an "
    "integer' end\n"
    "    return v\n"
    "  end\n"
    "  local function load(k, fs)\n"
    "    if not acl.c then\n"
    "      acl.c = true\n"
    "      local e = may('c', 'HMGET', k, fs[1]) or may('c', 'HINCRBY', k, fs[1], '1') or may('c', "
    "'EXPIRE', k, '1') or\n"
    "                may('c', 'HLEN', k) or may('c', 'HKEYS', k)\n"
    "      if e then return e end\n"
    "    end\n"
    "    local h = vals[k]\n"
    "    if not h then h = {}; vals[k] = h end\n"
    "    local r = {}\n"
    "    for c0 = 1, #fs, 1000 do\n"
    "      local part = redis.pcall('HMGET', k, unpack(fs, c0, math.min(c0 + 999, #fs)))\n"
    "      if part.err then return 'WRONGTYPE ' .. k .. ': ' .. part.err end\n"
    "      for j = 1, #part do r[c0 + j - 1] = part[j] end\n"
    "    end\n"
    "    for j, f in ipairs(fs) do\n"
    "      if h[f] == nil then\n"
    "        local v, e = val(k, f, r[j])\n"
    "        if e then return e end\n"
    "        h[f] = v\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local function incr(k, f, d)\n"
    "    local h = vals[k]\n"
    "    local old, dn = h[f], tonumber(d)\n"
    "    if type(old) == 'number' then\n"
    "      local v = old + dn\n"
    "      if v < L and v > -L and dn < L and dn > -L then h[f] = v; return nil end\n"
    "      old = big(string.format('%.0f', old))\n"
    "    end\n"
    "    local v = add(old, big(d))\n"
    "    if not i64(v) then\n"
    "      return 'OVERFLOW ' .. k .. ' field ' .. f .. ': ' .. text(old) .. ' + ' .. d .. ' "
    "leaves int64'\n"
    "    end\n"
    "    h[f] = v\n"
    "  end\n"
    "  local function coupon_check(k, status, cp, delta)\n"
    "    local cnt, one = status == 'paid' and 'payments_coupon' or 'refunds_coupon', status == "
    "'paid' and '1' or '0'\n"
    "    local cf = 'coupon.' .. cp\n"
    "    local e = load(k, {cnt, 'revenue_coupon', cf .. '.payments', cf .. '.revenue', cp_other "
    ".. "
    "'.payments', cp_other .. '.revenue'})\n"
    "    return e or incr(k, cnt, '1') or incr(k, 'revenue_coupon', delta) or incr(k, cf .. "
    "'.payments', one) or\n"
    "           incr(k, cf .. '.revenue', delta) or incr(k, cp_other .. '.payments', one) or "
    "incr(k, "
    "cp_other .. '.revenue', delta)\n"
    "  end\n"
    "  local function hll_check(k)\n"
    "    if hlls[k] then return nil end\n"
    "    hlls[k] = true\n"
    "    local e = may('u', 'PFADD', k, 'x') or may('u', 'EXPIRE', k, '1') or may('u', 'PFCOUNT', "
    "k)\n"
    "    if e then return e end\n"
    "    local r = redis.pcall('PFCOUNT', k, k)\n"
    "    if type(r) == 'table' and r.err then\n"
    "      local code = string.sub(r.err, 1, 11) == 'INVALIDOBJ ' and 'INVALIDOBJ ' or 'WRONGTYPE "
    "'\n"
    "      return code .. k .. ': ' .. r.err\n"
    "    end\n"
    "  end\n"
    "  local function coupon_hll_check(u)\n"
    "    return hll_check(u .. ':coupon_paid') or hll_check(u .. ':coupon_touched')\n"
    "  end\n"
    "  local function hash_ok(kind, k)\n"
    "    local e = may(kind, 'HSET', k, field, '1') or may(kind, 'HGET', k, field)\n"
    "    if e then return e end\n"
    "    local r = redis.pcall('HGET', k, field)\n"
    "    if type(r) == 'table' and r.err then return 'WRONGTYPE ' .. k .. ': ' .. r.err end\n"
    "  end\n"
    "  local e = hash_ok('o', offkey)\n"
    "  if e then return e end\n"
    "  if maxts ~= '' then e = hash_ok('w', prefix .. ':wm:' .. group); if e then return e end "
    "end\n"
    "  if events > 0 then e = hash_ok('s', prefix .. ':seen:' .. group); if e then return e end "
    "end\n"
    "  local i = 15\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  local fs = {}\n"
    "  for _ = 1, n do\n"
    "    local nf = math.abs(tonumber(ARGV[i + 1]))\n"
    "    local k = prefix .. ':c:' .. ARGV[i]\n"
    "    i = i + 2\n"
    "    local na, ai = tonumber(ARGV[i + 2 * nf]), i + 2 * nf + 1\n"
    "    local m = 0\n"
    "    for j = 1, nf do m = m + 1; fs[m] = ARGV[i + 2 * j - 2] end\n"
    "    if na > 0 then m = m + 1; fs[m] = other_f end\n"
    "    for j = 1, na do m = m + 1; fs[m] = ARGV[ai + 2 * j - 2] end\n"
    "    for j = m + 1, #fs do fs[j] = nil end\n"
    "    e = load(k, fs)\n"
    "    if e then return e end\n"
    "    for _ = 1, nf do e = incr(k, ARGV[i], ARGV[i + 1]); if e then return e end; i = i + 2 "
    "end\n"
    "    i = i + 1\n"
    "    -- an action lands on its own field or on __other__: check both\n"
    "    for _ = 1, na do\n"
    "      e = incr(k, ARGV[i], ARGV[i + 1]) or incr(k, other_f, ARGV[i + 1])\n"
    "      if e then return e end\n"
    "      i = i + 2\n"
    "    end\n"
    "  end\n"
    "  n = tonumber(ARGV[i]); i = i + 1\n"
    "  for _ = 1, n do\n"
    "    local dk = prefix .. ':dedup:' .. ARGV[i]\n"
    "    local user, delta, status, late, cp, nb = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + "
    "4], ARGV[i + 5], tonumber(ARGV[i + 6])\n"
    "    i = i + 7\n"
    "    e = may('d', 'SET', dk, '1', 'NX', 'EX', '1') or may('d', 'TYPE', dk)\n"
    "    if e then return e end\n"
    "    if not dup[dk] and redis.call('TYPE', dk).ok == 'none' then\n"
    "      dup[dk] = true\n"
    "      local cnt = status == 'paid' and 'payments' or 'refunds'\n"
    "      for j = i, i + nb - 1 do\n"
    "        local k = prefix .. ':c:' .. ARGV[j]\n"
    "        e = load(k, {cnt, 'revenue', 'late'}) or incr(k, cnt, '1') or incr(k, 'revenue', "
    "delta)\n"
    "        if not e and late == '1' then e = incr(k, 'late', '1') end\n"
    "        if not e and cp ~= '' then e = coupon_check(k, status, cp, delta) end\n"
    "        if e then return e end\n"
    "        if status == 'paid' then e = hll_check(prefix .. ':u:' .. ARGV[j] .. ':paid'); if e "
    "then return e end end\n"
    "        if cp ~= '' then e = coupon_hll_check(prefix .. ':u:' .. ARGV[j]); if e then return e "
    "end "
    "end\n"
    "      end\n"
    "    end\n"
    "    i = i + nb\n"
    "  end\n"
    "  n = tonumber(ARGV[i])\n"
    "  if n > 0 then\n"
    "    local sk = prefix .. ':scopes'\n"
    "    e = may('z', 'ZADD', sk, '1', 'm') or may('z', 'TYPE', sk)\n"
    "    if e then return e end\n"
    "    local t = redis.call('TYPE', sk).ok\n"
    "    if t ~= 'none' and t ~= 'zset' then return 'WRONGTYPE ' .. sk .. ' holds a ' .. t .. ', "
    "not a zset' end\n"
    "  end\n"
    "end\n"
    "local why = check()\n"
    "if not why then why = users_check() end\n"
    "if why then return redis.error_reply('REFUSED ' .. why .. '; nothing written') end\n"
    "local i = 15\n"
    "local n = tonumber(ARGV[i]); i = i + 1\n"
    "for _ = 1, n do\n"
    "  local b, nf = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2\n"
    "  local expire = nf > 0\n"
    "  if nf < 0 then nf = -nf end\n"
    "  local k = prefix .. ':c:' .. b\n"
    "  for _ = 1, nf do redis.call('HINCRBY', k, ARGV[i], ARGV[i + 1]); i = i + 2 end\n"
    "  local na = tonumber(ARGV[i]); i = i + 1\n"
    "  if na > 0 and redis.call('HLEN', k) + na <= action_cap then\n"
    "    for _ = 1, na do redis.call('HINCRBY', k, ARGV[i], ARGV[i + 1]); i = i + 2 end\n"
    "  elseif na > 0 then\n"
    "    local named, room, other = {}, action_cap, 0\n"
    "    for _, x in ipairs(redis.call('HKEYS', k)) do\n"
    "      if string.sub(x, 1, 13) == 'interactions.' and x ~= other_f then\n"
    "        named[x] = true; room = room - 1\n"
    "      end\n"
    "    end\n"
    "    for _ = 1, na do\n"
    "      local f, v = ARGV[i], ARGV[i + 1]; i = i + 2\n"
    "      if not named[f] and f ~= other_f and room > 0 then named[f] = true; room = room - 1 "
    "end\n"
    "      if named[f] then redis.call('HINCRBY', k, f, v) else other = other + tonumber(v) end\n"
    "    end\n"
    "    if other ~= 0 then redis.call('HINCRBY', k, other_f, string.format('%d', other)) end\n"
    "  end\n"
    "  if expire then redis.call('EXPIRE', k, ttl_c(b)) end\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for _ = 1, n do\n"
    "  local dk = prefix .. ':dedup:' .. ARGV[i]\n"
    "  local user, delta, status, late, cp, nb = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + "
    "4], ARGV[i + 5], tonumber(ARGV[i + 6])\n"
    "  i = i + 7\n"
    "  if redis.call('SET', dk, '1', 'NX', 'EX', dedup_ttl) then\n"
    "    for j = i, i + nb - 1 do\n"
    "      local b = ARGV[j]\n"
    "      local k, t = prefix .. ':c:' .. b, ttl_c(b)\n"
    "      if status == 'paid' then\n"
    "        redis.call('HINCRBY', k, 'payments', 1)\n"
    "        local uk = prefix .. ':u:' .. b .. ':paid'\n"
    "        redis.call('PFADD', uk, user)\n"
    "        redis.call('EXPIRE', uk, t)\n"
    "      else\n"
    "        redis.call('HINCRBY', k, 'refunds', 1)\n"
    "      end\n"
    "      redis.call('HINCRBY', k, 'revenue', delta)\n"
    "      if late == '1' then redis.call('HINCRBY', k, 'late', 1) end\n"
    "      if cp ~= '' then coupon_write(k, b, t, status, cp, delta, user) end\n"
    "      redis.call('EXPIRE', k, t)\n"
    "    end\n"
    "  end\n"
    "  i = i + nb\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for j = i, i + n - 1 do redis.call('ZADD', prefix .. ':scopes', nows, ARGV[j]) end\n"
    "users_write()\n"
    "redis.call('HSET', offkey, field, newoff)\n"
    "if maxts ~= '' then redis.call('HSET', prefix .. ':wm:' .. group, field, maxts) end\n"
    "if events > 0 then redis.call('HSET', prefix .. ':seen:' .. group, field, nowms) end\n"
    "return 'OK'\n";

/* The span a snapshot counts distinct users over (docs/REDIS.md, "Distinct
 * users per minute"). The script's last argument is `uv=m1` for a scope
 * with m1 HLLs (hll_m1_groupings): the window itself, over
 * buckets(from, to). `uv=h1` for any other scope: the N = ceil(window / 1 h)
 * whole hours ending at the last hour boundary at or before the window's
 * end, over their h1 HLLs; none (nil) for a window shorter than an hour.
 * Needs FD_LUA_WINDOW_BUCKETS before it. */
#define FD_LUA_UV_SPAN \
    "local uvh = ARGV[#ARGV] == 'uv=h1'\n" \
    "local function uv_span(to, secs)\n" \
    "  if not uvh then return to - secs, to end\n" \
    "  if secs < 3600 then return nil, nil end\n" \
    "  local t = math.floor(to / 3600) * 3600\n" \
    "  return t - math.ceil(secs / 3600) * 3600, t\n" \
    "end\n" \
    "local function uv_buckets(from, to)\n" \
    "  if not uvh then return buckets(from, to) end\n" \
    "  local b = {}\n" \
    "  for t = from, to - 3600, 3600 do b[#b + 1] = 'h1:' .. num(t) end\n" \
    "  return b\n" \
    "end\n"

/* ARGV: prefix, scope, to (epoch s, minute-aligned), watermark ms, now ms,
 * ttl s, nwindows, then name, seconds per window, then the action cap, then
 * the retention section (FD_LUA_SNAPSHOT_RETENTION: a count, then day and
 * cohort label pairs), then (optional) the coupon cap and per window a count and that many
 * field/value pairs written as given (the coupon groups and test,
 * docs/METRICS.md). Coupon fields fold past the coupon cap like actions,
 * ranked by their window's coupon.{id}.payments.
 * Windows are summed over buckets(from, to) of FD_LUA_WINDOW_BUCKETS, exactly
 * (FD_LUA_BIGINT: a revenue past 2^53 keeps its last digit). Redis does not
 * roll a script back, so every window is read and computed first (reads
 * with redis.pcall) and written only after: a bucket that is not a hash, an
 * HLL key that PFCOUNT refuses, a bucket field that is not an integer or an
 * ACL user that may not write the snapshot stops it with an error reply
 * "REFUSED <cause> <key>...; nothing written" (the scope's previous
 * snapshots stay whole). A rev that is not a plain count, or a snapshot
 * key that is not a hash, counts as 0. HSET goes in chunks of 1000 fields
 * (Lua's unpack stops near 8000 values; foreign fields of a bucket are
 * summed uncapped). A window whose buckets name more than
 * action_cap actions in all keeps only the actions whose sum is larger than
 * the (action_cap + 1)-th largest sum (so at most action_cap, and a tie never
 * needs names compared: Lua compares strings by Redis's LC_COLLATE) and adds
 * the rest to interactions.__other__, so a snapshot is as bounded as a
 * bucket. The last argument is `uv=m1` or `uv=h1` (FD_LUA_UV_SPAN): the
 * uv_* fields and conversion_rate count the users of [uv_from, uv_to),
 * and all of uv_exposed, uv_interacted, uv_paid, uv_from, uv_to and
 * conversion_rate are "" when there is no span. */
static const char FD_LUA_SNAPSHOT[] =
    "local prefix, scope = ARGV[1], ARGV[2]\n"
    "local to, wm, now, ttl = tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]\n"
    "local nw = tonumber(ARGV[7])\n"
    "local action_cap = tonumber(ARGV[8 + 2 * nw])\n"
    "local rn0 = tonumber(ARGV[9 + 2 * nw] or '0') or 0\n"
    "local coupon_cap = tonumber(ARGV[10 + 2 * nw + 2 * rn0] or '1000')\n"
    "local xi = 11 + 2 * nw + 2 * rn0\n" FD_LUA_WINDOW_BUCKETS FD_LUA_UV_SPAN FD_LUA_BIGINT
        FD_LUA_ACL_DENIED
    "local function refuse(why) return redis.error_reply('REFUSED ' .. why .. '; nothing written') "
    "end\n"
    "local function pfcount(ks)\n"
    "  if #ks == 0 then return 0 end\n"
    "  local n = redis.pcall('PFCOUNT', unpack(ks))\n"
    "  if type(n) ~= 'table' then return n end\n"
    "  for _, k in ipairs(ks) do -- name the key\n"
    "    local e = redis.pcall('PFCOUNT', k)\n"
    "    if type(e) == 'table' then return nil, 'WRONGTYPE ' .. k .. ': ' .. tostring(e.err) end\n"
    "  end\n"
    "  return nil, 'WRONGTYPE ' .. ks[1] .. ' ...: ' .. tostring(n.err)\n"
    "end\n"
    "local out = {}\n"
    "for w = 0, nw - 1 do\n"
    "  local name, secs = ARGV[8 + 2 * w], tonumber(ARGV[9 + 2 * w])\n"
    "  local from = to - secs\n"
    "  local b = buckets(from, to)\n"
    "  local sums, ex, it, pd = {}, {}, {}, {}\n"
    "  for _, s in ipairs(b) do\n"
    "    local bk = prefix .. ':c:' .. scope .. ':' .. s\n"
    "    local kv = redis.pcall('HGETALL', bk)\n"
    "    if kv.err then return refuse('WRONGTYPE ' .. bk .. ': ' .. kv.err) end\n"
    "    for j = 1, #kv, 2 do\n"
    "      local v = big(kv[j + 1])\n"
    "      if not v then\n"
    "        return refuse('NOTINT ' .. kv[j] .. ' in bucket ' .. s .. ' of ' .. scope)\n"
    "      end\n"
    "      sums[kv[j]] = add(sums[kv[j]] or {0, 0}, v)\n"
    "    end\n"
    "  end\n"
    "  local uf, ut = uv_span(to, secs)\n"
    "  for _, s in ipairs(uf and uv_buckets(uf, ut) or {}) do\n"
    "    local u = prefix .. ':u:' .. scope .. ':' .. s\n"
    "    ex[#ex + 1] = u .. ':exposed'; it[#it + 1] = u .. ':interacted'; pd[#pd + 1] = u .. "
    "':paid'\n"
    "  end\n"
    "  local acts = {}\n"
    "  for k in pairs(sums) do\n"
    "    if string.sub(k, 1, 13) == 'interactions.' and k ~= 'interactions.__other__' then "
    "acts[#acts + 1] = k end\n"
    "  end\n"
    "  if #acts > action_cap then\n"
    "    local function lt(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end\n"
    "    local vals = {}\n"
    "    for j, k in ipairs(acts) do vals[j] = sums[k] end\n"
    "    table.sort(vals, lt)\n"
    "    local edge, o = vals[#vals - action_cap], sums['interactions.__other__'] or {0, 0}\n"
    "    for _, k in ipairs(acts) do\n"
    "      if not lt(edge, sums[k]) then o = add(o, sums[k]); sums[k] = nil end\n"
    "    end\n"
    "    sums['interactions.__other__'] = o\n"
    "  end\n"
    "  local cps = {}\n"
    "  for k in pairs(sums) do\n"
    "    local id = string.match(k, '^coupon%.(.*)%.payments$') or string.match(k, "
    "'^coupon%.(.*)%.revenue$')\n"
    "    if id and id ~= '__other__' and not cps[id] then cps[id] = true; cps[#cps + 1] = id end\n"
    "  end\n"
    "  if #cps > coupon_cap then\n"
    "    local function lt(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end\n"
    "    local function pay(id) return sums['coupon.' .. id .. '.payments'] or {0, 0} end\n"
    "    local vals = {}\n"
    "    for j, id in ipairs(cps) do vals[j] = pay(id) end\n"
    "    table.sort(vals, lt)\n"
    "    local edge = vals[#vals - coupon_cap]\n"
    "    for _, id in ipairs(cps) do\n"
    "      if not lt(edge, pay(id)) then\n"
    "        for _, x in ipairs({'.payments', '.revenue'}) do\n"
    "          local k, o = 'coupon.' .. id .. x, 'coupon.__other__' .. x\n"
    "          if sums[k] then sums[o] = add(sums[o] or {0, 0}, sums[k]); sums[k] = nil end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local uve, e1 = pfcount(ex)\n"
    "  local uvi, e2 = pfcount(it)\n"
    "  local uvp, e3 = pfcount(pd)\n"
    "  if not (uve and uvi and uvp) then return refuse(e1 or e2 or e3) end\n"
    "  local rk = prefix .. ':r:' .. scope .. ':' .. name\n"
    "  -- a rev that is not a plain count (or a key that is not a hash) counts from 0\n"
    "  local r0 = redis.pcall('HGET', rk, 'rev')\n"
    "  local rev = (type(r0) == 'string' and string.find(r0, '^%d+$') and #r0 <= 15 and "
    "tonumber(r0) or 0) + 1\n"
    "  local f = {'exposures', '0', 'interactions', '0', 'payments', '0', 'refunds', '0',\n"
    "             'revenue', '0', 'late', '0'}\n"
    "  local idx = {exposures = 2, interactions = 4, payments = 6, refunds = 8, revenue = 10, late "
    "= 12}\n"
    "  for k, v in pairs(sums) do\n"
    "    if idx[k] then f[idx[k]] = text(v) else f[#f + 1] = k; f[#f + 1] = text(v) end\n"
    "  end\n"
    "  local e = tonumber(text(sums['exposures'] or {0, 0}))\n"
    "  local i = tonumber(text(sums['interactions'] or {0, 0}))\n"
    "  f[#f + 1] = 'uv_exposed'; f[#f + 1] = uf and num(uve) or ''\n"
    "  f[#f + 1] = 'uv_interacted'; f[#f + 1] = uf and num(uvi) or ''\n"
    "  f[#f + 1] = 'uv_paid'; f[#f + 1] = uf and num(uvp) or ''\n"
    "  f[#f + 1] = 'uv_from'; f[#f + 1] = uf and num(uf) or ''\n"
    "  f[#f + 1] = 'uv_to'; f[#f + 1] = uf and num(ut) or ''\n"
    "  f[#f + 1] = 'interaction_rate'; f[#f + 1] = e > 0 and string.format('%.6f', i / e) or ''\n"
    "  f[#f + 1] = 'conversion_rate'; f[#f + 1] = uve > 0 and string.format('%.6f', uvp / uve) or "
    "''\n"
    "  local nx = tonumber(ARGV[xi] or '0')\n"
    "  for j = 1, nx do f[#f + 1] = ARGV[xi + 2 * j - 1]; f[#f + 1] = ARGV[xi + 2 * j] end\n"
    "  xi = xi + 1 + 2 * nx\n"
    "  f[#f + 1] = 'from'; f[#f + 1] = num(from)\n"
    "  f[#f + 1] = 'to'; f[#f + 1] = num(to)\n"
    "  f[#f + 1] = 'watermark'; f[#f + 1] = wm\n"
    "  f[#f + 1] = 'updated_at'; f[#f + 1] = now\n"
    "  f[#f + 1] = 'rev'; f[#f + 1] = num(rev)\n" FD_LUA_SNAPSHOT_RETENTION
    "  out[#out + 1] = {rk, f}\n"
    "end\n"
    "local k1 = out[1] and out[1][1]\n"
    "local denied = k1 and acl_denied({{'DEL', k1}, {'HSET', k1, 'rev', '1'}, {'EXPIRE', k1, "
    "ttl}})\n"
    "if denied then return refuse(denied) end\n"
    "for _, o in ipairs(out) do\n"
    "  local rk, f = o[1], o[2]\n"
    "  redis.call('DEL', rk)\n"
    "  for c0 = 1, #f, 2000 do redis.call('HSET', rk, unpack(f, c0, math.min(c0 + 1999, #f))) end\n"
    "  redis.call('EXPIRE', rk, ttl)\n"
    "end\n"
    "return nw\n";

/* KEYS-less: ARGV key, id, ttl ms. Returns 1 if this id holds the lease. */
static const char FD_LUA_LEASE[] =
    "if redis.call('SET', ARGV[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end\n"
    "if redis.call('GET', ARGV[1]) == ARGV[2] then\n"
    "  redis.call('PEXPIRE', ARGV[1], ARGV[3]); return 1\n"
    "end\n"
    "return 0\n";

#endif
