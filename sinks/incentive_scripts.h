/*
 * incentive_scripts.h — the snapshot tick's coupon read and leaderboard
 * scripts (docs/METRICS.md, "Coupons" and "Leaderboards").
 *
 * COUPON_READ runs once per scope, just before its chunk's SNAPSHOT
 * scripts, and only reads: for the scope and each rolling window it
 * returns five distinct-user counts over the window's buckets (the
 * bucket list of FD_LUA_WINDOW_BUCKETS): |T|, |P ∪ T|, |E ∪ P ∪ T|, |P|,
 * |CP| with T = coupon_touched, P = paid, E = exposed, CP = coupon_paid.
 * The sink turns them into the two groups' figures and the two-proportion
 * test (model/incentive.c) and hands them to SNAPSHOT as extra fields, so a
 * snapshot hash is written whole by one script.
 *
 * BOARDS writes the three leaderboards of one (grouping, window) in one
 * script: DEL + ZADD + EXPIRE per board, so a reader sees either the whole
 * previous board or the whole new one, never a mix or a half. It lists the
 * scopes updated since ARGV[4] (the snapshot tick's own rescan bound) from
 * `{prefix}:scopes`, keeps those whose dimension names are exactly the
 * grouping, and reads their snapshot `{prefix}:r:{scope}:{window}`. It
 * writes only while this instance holds the snapshot lease. All three
 * boards are ranked, and the ACL checked, before the first write, and only
 * finite numbers become scores (ZADD refuses NaN), so nothing can fail
 * once writing has begun.
 */
#ifndef FD_INCENTIVE_SCRIPTS_H
#define FD_INCENTIVE_SCRIPTS_H

#include "sinks/redis_scripts.h"

/* ARGV: prefix, to (epoch s), nwindows, then name, seconds per window,
 * then the scope id, then `uv=m1` or `uv=h1` (FD_LUA_UV_SPAN: the counts
 * are over the span the snapshot's uv_* fields count). Reply: 5 integers
 * per window, -1 each for a window without a span. */
static const char FD_LUA_COUPON_READ[] =
    "local prefix, to, nw = ARGV[1], tonumber(ARGV[2]), "
    "tonumber(ARGV[3])\n" FD_LUA_WINDOW_BUCKETS FD_LUA_UV_SPAN "local out = {}\n"
    "for si = 4 + 2 * nw, #ARGV - 1 do\n"
    "  local scope = ARGV[si]\n"
    "  for w = 0, nw - 1 do\n"
    "    local uf, ut = uv_span(to, tonumber(ARGV[5 + 2 * w]))\n"
    "    local b = uf and uv_buckets(uf, ut) or {}\n"
    "    local t, pt, ept, p, cp = {}, {}, {}, {}, {}\n"
    "    for _, x in ipairs(b) do\n"
    "      local u = prefix .. ':u:' .. scope .. ':' .. x\n"
    "      local ku, kp, ke = u .. ':coupon_touched', u .. ':paid', u .. ':exposed'\n"
    "      t[#t + 1] = ku; p[#p + 1] = kp; cp[#cp + 1] = u .. ':coupon_paid'\n"
    "      pt[#pt + 1] = ku; pt[#pt + 1] = kp\n"
    "      ept[#ept + 1] = ku; ept[#ept + 1] = kp; ept[#ept + 1] = ke\n"
    "    end\n"
    "    for _, ks in ipairs({t, pt, ept, p, cp}) do\n"
    "      out[#out + 1] = not uf and -1 or #ks > 0 and redis.call('PFCOUNT', unpack(ks)) or 0\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* ARGV: prefix, grouping ("product,channel"), window name, since (epoch s),
 * size, min potential users, ttl s, lease key, lease id. Returns the number
 * of scopes read, or -1 when the lease is not ours (nothing written).
 * Order: ZREVRANGE's, score descending and ties by scope id descending
 * (bytewise); the first `size` in that order are kept.
 * revenue and uv_paid boards list scopes whose value is > 0; the
 * conversion_rate board those with a rate and uv_exposed >= min; a value
 * that is not a finite number (nan, inf, text) lists the scope on none. */
static const char FD_LUA_BOARDS[] =
    "local prefix, grouping, win, since = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local size, minp, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]\n" FD_LUA_ACL_DENIED
    "if redis.call('GET', ARGV[8]) ~= ARGV[9] then return -1 end\n"
    "local rows = {revenue = {}, uv_paid = {}, conversion_rate = {}}\n"
    "-- a score ZADD takes: a finite number (tonumber('nan') is NaN, 'inf' is infinite)\n"
    "local function fin(x)\n"
    "  local v = tonumber(x or '')\n"
    "  if v and v == v and v ~= math.huge and v ~= -math.huge then return v end\n"
    "end\n"
    "local sc = redis.call('ZRANGEBYSCORE', prefix .. ':scopes', since, '+inf')\n"
    "local n = 0\n"
    "for _, s in ipairs(sc) do\n"
    "  if string.gsub(s, '=[^,]*', '') == grouping then\n"
    "    local v = redis.call('HMGET', prefix .. ':r:' .. s .. ':' .. win, 'revenue', 'uv_paid',\n"
    "                         'conversion_rate', 'uv_exposed')\n"
    "    if v[1] then\n"
    "      n = n + 1\n"
    "      local rev, uvp, cr, uve = fin(v[1]), fin(v[2]), fin(v[3]), fin(v[4])\n"
    "      if rev and rev > 0 then table.insert(rows.revenue, {rev, s}) end\n"
    "      if uvp and uvp > 0 then table.insert(rows.uv_paid, {uvp, s}) end\n"
    "      if cr and uve and uve >= minp then table.insert(rows.conversion_rate, {cr, s}) end\n"
    "    end\n"
    "  end\n"
    "end\n" FD_LUA_BYTES_LT
    "local function before(a, b) return a[1] > b[1] or (a[1] == b[1] and bytes_lt(b[2], a[2])) "
    "end\n"
    "local boards = {}\n"
    "for _, m in ipairs({'revenue', 'uv_paid', 'conversion_rate'}) do\n"
    "  local r = rows[m]\n"
    "  table.sort(r, before)\n"
    "  local z = {}\n"
    "  for j = 1, math.min(size, #r) do z[#z + 1] = r[j][1]; z[#z + 1] = r[j][2] end\n"
    "  boards[#boards + 1] = {prefix .. ':lb:' .. grouping .. ':' .. win .. ':' .. m, z}\n"
    "end\n"
    "local k1 = boards[1][1]\n"
    "local denied = acl_denied({{'DEL', k1}, {'ZADD', k1, '1', 'x'}, {'EXPIRE', k1, ttl}})\n"
    "if denied then return redis.error_reply('REFUSED ' .. denied .. '; nothing written') end\n"
    "for _, b in ipairs(boards) do\n"
    "  local k, z = b[1], b[2]\n"
    "  redis.call('DEL', k)\n"
    "  for c0 = 1, #z, 1000 do\n"
    "    redis.call('ZADD', k, unpack(z, c0, math.min(c0 + 999, #z)))\n"
    "  end\n"
    "  if #z > 0 then redis.call('EXPIRE', k, ttl) end\n"
    "end\n"
    "return n\n";

#endif
