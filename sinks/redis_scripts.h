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
 * a reader never mixes two windows). LEASE takes or renews a PX lease.
 */
#ifndef FD_REDIS_SCRIPTS_H
#define FD_REDIS_SCRIPTS_H

#include "sinks/lua_window.h"

static const char FD_LUA_FLUSH[] =
    "local prefix, group, field, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local offkey = prefix .. ':offsets:' .. group\n"
    "local cur = redis.call('HGET', offkey, field)\n"
    "if (expected == '' and cur) or (expected ~= '' and cur ~= expected) then\n"
    "  return redis.error_reply('FENCED ' .. tostring(cur))\n"
    "end\n"
    "local newoff, maxts, nowms, nows, events = ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])\n"
    "local ttl = {m1 = ARGV[10], h1 = ARGV[11], d1 = ARGV[12]}\n"
    "local dedup_ttl, action_cap = ARGV[13], tonumber(ARGV[14])\n"
    "local function ttl_c(b) return ttl[string.match(b, ':(%a%d):[^:]*$')] end\n"
    "local other_f = 'interactions.__other__'\n"
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
    "      if not named[f] and f ~= other_f and room > 0 then named[f] = true; room = room - 1 end\n"
    "      if named[f] then redis.call('HINCRBY', k, f, v) else other = other + tonumber(v) end\n"
    "    end\n"
    "    if other ~= 0 then redis.call('HINCRBY', k, other_f, string.format('%d', other)) end\n"
    "  end\n"
    "  if expire then redis.call('EXPIRE', k, ttl_c(b)) end\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for _ = 1, n do\n"
    "  local dk = prefix .. ':dedup:' .. ARGV[i]\n"
    "  local user, delta, status, late, nb = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])\n"
    "  i = i + 6\n"
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
    "      redis.call('EXPIRE', k, t)\n"
    "    end\n"
    "  end\n"
    "  i = i + nb\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for j = i, i + n - 1 do redis.call('ZADD', prefix .. ':scopes', nows, ARGV[j]) end\n"
    "redis.call('HSET', offkey, field, newoff)\n"
    "if maxts ~= '' then redis.call('HSET', prefix .. ':wm:' .. group, field, maxts) end\n"
    "if events > 0 then redis.call('HSET', prefix .. ':seen:' .. group, field, nowms) end\n"
    "return 'OK'\n";

/* ARGV: prefix, scope, to (epoch s, minute-aligned), watermark ms, now ms,
 * ttl s, nwindows, then name, seconds per window, then the action cap.
 * Windows are summed over buckets(from, to) of lua_window.h. A window whose
 * buckets name more than action_cap actions in all keeps only the actions
 * whose sum is larger than the (action_cap + 1)-th largest sum (so at most
 * action_cap, and a tie never needs names compared: Lua compares strings
 * by Redis's LC_COLLATE) and adds the rest to interactions.__other__, so a
 * snapshot is as bounded as a bucket. */
static const char FD_LUA_SNAPSHOT[] =
    "local prefix, scope = ARGV[1], ARGV[2]\n"
    "local to, wm, now, ttl = tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]\n"
    "local nw = tonumber(ARGV[7])\n"
    "local action_cap = tonumber(ARGV[8 + 2 * nw])\n"
    FD_LUA_WINDOW_BUCKETS
    "for w = 0, nw - 1 do\n"
    "  local name, secs = ARGV[8 + 2 * w], tonumber(ARGV[9 + 2 * w])\n"
    "  local from = to - secs\n"
    "  local b = buckets(from, to)\n"
    "  local sums, ex, it, pd = {}, {}, {}, {}\n"
    "  for _, s in ipairs(b) do\n"
    "    local kv = redis.call('HGETALL', prefix .. ':c:' .. scope .. ':' .. s)\n"
    "    for j = 1, #kv, 2 do sums[kv[j]] = (sums[kv[j]] or 0) + tonumber(kv[j + 1]) end\n"
    "    local u = prefix .. ':u:' .. scope .. ':' .. s\n"
    "    ex[#ex + 1] = u .. ':exposed'; it[#it + 1] = u .. ':interacted'; pd[#pd + 1] = u .. ':paid'\n"
    "  end\n"
    "  local acts = {}\n"
    "  for k in pairs(sums) do\n"
    "    if string.sub(k, 1, 13) == 'interactions.' and k ~= 'interactions.__other__' then acts[#acts + 1] = k end\n"
    "  end\n"
    "  if #acts > action_cap then\n"
    "    local vals = {}\n"
    "    for j, k in ipairs(acts) do vals[j] = sums[k] end\n"
    "    table.sort(vals)\n"
    "    local edge, o = vals[#vals - action_cap], sums['interactions.__other__'] or 0\n"
    "    for _, k in ipairs(acts) do\n"
    "      if sums[k] <= edge then o = o + sums[k]; sums[k] = nil end\n"
    "    end\n"
    "    sums['interactions.__other__'] = o\n"
    "  end\n"
    "  local uve = #ex > 0 and redis.call('PFCOUNT', unpack(ex)) or 0\n"
    "  local uvi = #it > 0 and redis.call('PFCOUNT', unpack(it)) or 0\n"
    "  local uvp = #pd > 0 and redis.call('PFCOUNT', unpack(pd)) or 0\n"
    "  local rk = prefix .. ':r:' .. scope .. ':' .. name\n"
    "  local rev = tonumber(redis.call('HGET', rk, 'rev') or '0') + 1\n"
    "  local f = {'exposures', '0', 'interactions', '0', 'payments', '0', 'refunds', '0',\n"
    "             'revenue', '0', 'late', '0'}\n"
    "  local idx = {exposures = 2, interactions = 4, payments = 6, refunds = 8, revenue = 10, late = 12}\n"
    "  for k, v in pairs(sums) do\n"
    "    if idx[k] then f[idx[k]] = num(v) else f[#f + 1] = k; f[#f + 1] = num(v) end\n"
    "  end\n"
    "  local e, i = sums['exposures'] or 0, sums['interactions'] or 0\n"
    "  f[#f + 1] = 'uv_exposed'; f[#f + 1] = num(uve)\n"
    "  f[#f + 1] = 'uv_interacted'; f[#f + 1] = num(uvi)\n"
    "  f[#f + 1] = 'uv_paid'; f[#f + 1] = num(uvp)\n"
    "  f[#f + 1] = 'interaction_rate'; f[#f + 1] = e > 0 and string.format('%.6f', i / e) or ''\n"
    "  f[#f + 1] = 'conversion_rate'; f[#f + 1] = uve > 0 and string.format('%.6f', uvp / uve) or ''\n"
    "  f[#f + 1] = 'from'; f[#f + 1] = num(from)\n"
    "  f[#f + 1] = 'to'; f[#f + 1] = num(to)\n"
    "  f[#f + 1] = 'watermark'; f[#f + 1] = wm\n"
    "  f[#f + 1] = 'updated_at'; f[#f + 1] = now\n"
    "  f[#f + 1] = 'rev'; f[#f + 1] = num(rev)\n"
    "  redis.call('DEL', rk)\n"
    "  redis.call('HSET', rk, unpack(f))\n"
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
