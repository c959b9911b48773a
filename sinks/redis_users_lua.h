/*
 * redis_users_lua.h — the per-user section of the flush script: retention
 * cohorts and the ordered, attributed funnel (docs/METRICS.md, the Redis
 * keys in docs/REDIS.md). Pasted into FD_LUA_FLUSH after FD_LUA_BIGINT.
 *
 * Its arguments are the last section of the flush's ARGV, found through the
 * very last argument (the index where the section starts): a count of
 * records, then horizon s, window ms, retention mode, start types, active
 * types, the user cap, the k list (count, values), the retention dimensions
 * (count, names), then per record: encoded product, user, kind
 * (e/i/p/r), ts ms, day number, encoded channel, community, campaign, order
 * id, amount (aggregators/users.h).
 *
 * Exact regardless of order: for each user the batch touches, users_check()
 * reads the state {prefix}:us:{product}:{user} (MessagePack), computes the
 * user's contribution to every counter before and after merging the batch's
 * records into it, and keeps the difference; every counter is a function of
 * the set of the user's events the state holds (the earliest `cap` of each
 * kind; the state is a set: merging in any order gives the same state).
 * Like the rest of the flush, it refuses before any write (NOPERM,
 * WRONGTYPE, CORRUPT state, NOTINT, OVERFLOW, MKTCONF); users_write() then
 * only runs SET, HINCRBY and EXPIRE, which cannot fail. The differences are
 * only exact with the settings the stored states were built with: the
 * script keeps their canonical text (made here from the very ARGV it
 * computes with, so it cannot disagree with them) at {prefix}:mkt:conf and
 * refuses (MKTCONF) a batch sent with other ones. This script is the only
 * implementation of the arithmetic: tests/integration/test_cohort_lua.py
 * runs it row by row, tests/oracle/marketing.py computes the same from the
 * docs.
 */
#ifndef FD_REDIS_USERS_LUA_H
#define FD_REDIS_USERS_LUA_H

/* bytes_lt(a, b): a before b bytewise. Lua's < on strings goes through
 * strcoll, i.e. the locale Redis was started in, so every order the docs
 * call bytewise uses this instead (also pasted into FD_LUA_BOARDS). */
#define FD_LUA_BYTES_LT \
    "local function bytes_lt(a, b)\n" \
    "  if a == b then return false end\n" \
    "  for j = 1, math.min(#a, #b) do\n" \
    "    local x, y = string.byte(a, j), string.byte(b, j)\n" \
    "    if x ~= y then return x < y end\n" \
    "  end\n" \
    "  return #a < #b\n" \
    "end\n"

/* Needs FD_LUA_ACL_DENIED (sinks/redis_lua.h) before it. */
#define FD_LUA_USERS \
    "local U = nil\n" FD_LUA_BYTES_LT \
    "-- tuples: numbers by value, strings bytewise (Lua's < on strings follows the locale)\n" \
    "local function tlt(a, b)\n" \
    "  for j = 1, math.max(#a, #b) do\n" \
    "    local x, y = a[j], b[j]\n" \
    "    if x == nil then return y ~= nil end\n" \
    "    if y == nil then return false end\n" \
    "    if x ~= y then\n" \
    "      if type(x) == 'number' then return x < y end\n" \
    "      return bytes_lt(x, y)\n" \
    "    end\n" \
    "  end\n" \
    "  return false\n" \
    "end\n" \
    "local function teq(a, b)\n" \
    "  if #a ~= #b then return false end\n" \
    "  for j = 1, #a do if a[j] ~= b[j] then return false end end\n" \
    "  return true\n" \
    "end\n" \
    "-- inserts t into the sorted list l (no exact duplicate), keeps the cap smallest\n" \
    "local function keep(l, t, cap)\n" \
    "  local j = #l\n" \
    "  while j > 0 and tlt(t, l[j]) do j = j - 1 end\n" \
    "  if j > 0 and teq(l[j], t) then return end\n" \
    "  if j >= cap then return end\n" \
    "  table.insert(l, j + 1, t)\n" \
    "  if #l > cap then l[#l] = nil end\n" \
    "end\n" \
    "-- per order id the smallest (ts, amount) record, then the cap earliest by (ts, order)\n" \
    "local function keep_order(l, t, cap)\n" \
    "  for j = 1, #l do\n" \
    "    if l[j][1] == t[1] then\n" \
    "      if not tlt({t[2], t[3]}, {l[j][2], l[j][3]}) then return end\n" \
    "      table.remove(l, j)\n" \
    "      break\n" \
    "    end\n" \
    "  end\n" \
    "  local j = #l\n" \
    "  while j > 0 and tlt({t[2], t[1]}, {l[j][2], l[j][1]}) do j = j - 1 end\n" \
    "  if j >= cap then return end\n" \
    "  table.insert(l, j + 1, t)\n" \
    "  if #l > cap then l[#l] = nil end\n" \
    "end\n" \
    "local function label(z)\n" \
    "  z = z + 719468\n" \
    "  local era = math.floor(z / 146097)\n" \
    "  local doe = z - era * 146097\n" \
    "  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - " \
    "math.floor(doe / 146096)) / 365)\n" \
    "  local y = yoe + era * 400\n" \
    "  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))\n" \
    "  local mp = math.floor((5 * doy + 2) / 153)\n" \
    "  local d = doy - math.floor((153 * mp + 2) / 5) + 1\n" \
    "  local m = mp < 10 and mp + 3 or mp - 9\n" \
    "  if m <= 2 then y = y + 1 end\n" \
    "  return string.format('%04d%02d%02d', y, m, d)\n" \
    "end\n" \
    "-- every element of a state has the shape the script reads (a state that\n" \
    "-- decodes to anything else would fail mid-way with a raw Lua error)\n" \
    "local function shaped(t, sh)\n" \
    "  if type(t) ~= 'table' or #t ~= #sh then return false end\n" \
    "  local n = 0\n" \
    "  for _ in pairs(t) do n = n + 1 end\n" \
    "  if n ~= #sh then return false end\n" \
    "  for j = 1, #sh do\n" \
    "    if type(t[j]) ~= (string.sub(sh, j, j) == 'n' and 'number' or 'string') then return " \
    "false end\n" \
    "  end\n" \
    "  return true\n" \
    "end\n" \
    "local function user_state(v)\n" \
    "  if type(v) ~= 'table' then return false end\n" \
    "  for k in pairs(v) do\n" \
    "    if k ~= 'f' and k ~= 'x' and k ~= 'i' and k ~= 'o' and k ~= 'r' and k ~= 'a' then " \
    "return " \
    "false end\n" \
    "  end\n" \
    "  for k, sh in pairs({x = 'nnsss', i = 'n', o = 'snn', r = 'snn', a = 'n'}) do\n" \
    "    local l = v[k]\n" \
    "    if type(l) ~= 'table' then return false end\n" \
    "    local n = 0\n" \
    "    for _ in pairs(l) do n = n + 1 end\n" \
    "    if n ~= #l then return false end\n" \
    "    for _, t in ipairs(l) do if not shaped(t, sh) then return false end end\n" \
    "  end\n" \
    "  return v.f == nil or shaped(v.f, 'nnsss')\n" \
    "end\n" \
    "local function users_check()\n" \
    "  local s = tonumber(ARGV[#ARGV])\n" \
    "  local nrec = tonumber(ARGV[s])\n" \
    "  if nrec == 0 then return nil end\n" \
    "  local horizon, window, mode = ARGV[s + 1], tonumber(ARGV[s + 2]), ARGV[s + 3]\n" \
    "  local starts, actives, cap = ARGV[s + 4], ARGV[s + 5], tonumber(ARGV[s + 6])\n" \
    "  local i = s + 7\n" \
    "  local ks = {}\n" \
    "  for j = 1, tonumber(ARGV[i]) do ks[j] = tonumber(ARGV[i + j]) end\n" \
    "  i = i + #ks + 1\n" \
    "  local rdims = {}\n" \
    "  for j = 1, tonumber(ARGV[i]) do rdims[j] = ARGV[i + j] end\n" \
    "  i = i + #rdims + 1\n" \
    "  local dimat = {channel = 3, community = 4, campaign = 5}\n" \
    "  local acc, keys, users, uorder = {}, {}, {}, {}\n" \
    "  local function bump(k, f, v)\n" \
    "    local h = acc[k]\n" \
    "    if not h then h = {}; acc[k] = h; keys[#keys + 1] = k end\n" \
    "    h[f] = (h[f] or 0) + v\n" \
    "  end\n" \
    "  local function scopes(P, t)\n" \
    "    local out = {'product=' .. P}\n" \
    "    for _, d in ipairs({'channel', 'community', 'campaign'}) do\n" \
    "      local v = t[dimat[d]]\n" \
    "      if v ~= '' then out[#out + 1] = 'product=' .. P .. ',' .. d .. '=' .. v end\n" \
    "    end\n" \
    "    return out\n" \
    "  end\n" \
    "  local function contrib(P, st, neg)\n" \
    "    local unit = neg and -1 or 1\n" \
    "    local f = st.f\n" \
    "    if f then\n" \
    "      local lab = label(f[2])\n" \
    "      local sc = {'product=' .. P}\n" \
    "      for _, d in ipairs(rdims) do\n" \
    "        local v = f[dimat[d]]\n" \
    "        if v ~= '' then sc[#sc + 1] = 'product=' .. P .. ',' .. d .. '=' .. v end\n" \
    "      end\n" \
    "      for _, x in ipairs(sc) do\n" \
    "        local k = prefix .. ':ret:' .. x .. ':' .. lab\n" \
    "        bump(k, 'cohort_size', unit)\n" \
    "        for _, kk in ipairs(ks) do\n" \
    "          local hit = false\n" \
    "          for _, a in ipairs(st.a) do\n" \
    "            if a[1] == f[2] + kk or (mode == 'unbounded' and a[1] > f[2] + kk) then hit = " \
    "true; break end\n" \
    "          end\n" \
    "          if hit then bump(k, 'retained_d' .. kk, unit) end\n" \
    "        end\n" \
    "      end\n" \
    "    end\n" \
    "    local x = st.x\n" \
    "    if #x == 0 then return end\n" \
    "    local e0 = x[1]\n" \
    "    local e_end = e0[1] + window\n" \
    "    local reached, t1, t2, upto = 1, nil, nil, e_end\n" \
    "    for _, t in ipairs(st.i) do\n" \
    "      if t[1] >= e0[1] and t[1] <= e_end then t1 = t[1]; break end\n" \
    "    end\n" \
    "    local rev = 0\n" \
    "    if t1 then\n" \
    "      reached, upto = 2, t1\n" \
    "      local refund = {}\n" \
    "      for _, r in ipairs(st.r) do refund[r[1]] = r[3] end\n" \
    "      for _, o in ipairs(st.o) do\n" \
    "        if o[2] >= t1 and o[2] <= e_end then\n" \
    "          if not t2 then t2 = o[2]; reached = 3; upto = t2 end\n" \
    "          local net = o[3] - (refund[o[1]] or 0)\n" \
    "          rev = rev + (neg and -net or net)\n" \
    "        end\n" \
    "      end\n" \
    "    end\n" \
    "    local last = e0\n" \
    "    for _, t in ipairs(x) do if t[1] <= upto then last = t else break end end\n" \
    "    local lab = label(e0[2])\n" \
    "    for touch, t in pairs({first = e0, last = last}) do\n" \
    "      for _, sc in ipairs(scopes(P, t)) do\n" \
    "        local k = prefix .. ':attr:' .. touch .. ':' .. sc .. ':' .. lab\n" \
    "        bump(k, 'funnel_exposed', unit)\n" \
    "        if reached >= 2 then\n" \
    "          bump(k, 'funnel_interacted', unit)\n" \
    "          bump(k, 'attributed_revenue', rev)\n" \
    "        end\n" \
    "        if reached >= 3 then bump(k, 'funnel_paid', unit) end\n" \
    "      end\n" \
    "    end\n" \
    "  end\n" \
    "  for j = 0, nrec - 1 do\n" \
    "    local r = i + 10 * j\n" \
    "    local uk = prefix .. ':us:' .. ARGV[r] .. ':' .. ARGV[r + 1]\n" \
    "    local u = users[uk]\n" \
    "    if not u then u = {P = ARGV[r], recs = {}}; users[uk] = u; uorder[#uorder + 1] = uk " \
    "end\n" \
    "    u.recs[#u.recs + 1] = r\n" \
    "  end\n" \
    "  local uk0 = uorder[1]\n" \
    "  local ck = prefix .. ':mkt:conf'\n" \
    "  local denied = acl_denied({{'GET', uk0}, {'SET', uk0, 'v', 'EX', '1'}, {'GET', ck}, " \
    "{'SET', ck, 'v'}})\n" \
    "  if denied then return denied end\n" \
    "  -- the states and counters were built with the stored settings: other\n" \
    "  -- settings would subtract contributions that were never added\n" \
    "  local sk, sd = {}, {}\n" \
    "  for j, v in ipairs(ks) do sk[j] = v end\n" \
    "  for j, v in ipairs(rdims) do sd[j] = v end\n" \
    "  table.sort(sk)\n" \
    "  table.sort(sd, bytes_lt)\n" \
    "  local conf = 'retention.mode=' .. mode .. ' retention.start_types=' .. starts .. " \
    "' retention.active_types=' .. actives .. ' retention.days=' .. table.concat(sk, ',') .. " \
    "' retention.groupings=' .. table.concat(sd, ',') .. ' funnel.window_s=' .. " \
    "string.format('%.0f', window / 1000) .. ' marketing.user_cap=' .. string.format('%d', cap)\n" \
    "  local had = redis.pcall('GET', ck)\n" \
    "  if type(had) == 'table' and had.err then return 'WRONGTYPE ' .. ck .. ': ' .. had.err " \
    "end\n" \
    "  if had and had ~= conf then\n" \
    "    return 'MKTCONF the marketing settings differ from those the stored per-user state was " \
    "built with (stored: ' .. had .. '; now: ' .. conf .. '); keep them or use a new " \
    "redis.prefix'\n" \
    "  end\n" \
    "  local packed, changed = {}, {}\n" \
    "  for _, uk in ipairs(uorder) do\n" \
    "    local u = users[uk]\n" \
    "    local raw = redis.pcall('GET', uk)\n" \
    "    if type(raw) == 'table' and raw.err then return 'WRONGTYPE ' .. uk .. ': ' .. raw.err " \
    "end\n" \
    "    local st\n" \
    "    if raw then\n" \
    "      local ok, v = pcall(cmsgpack.unpack, raw)\n" \
    "      if not ok or not user_state(v) then\n" \
    "        return 'CORRUPT ' .. uk .. ' is not a funneld user state'\n" \
    "      end\n" \
    "      st = v\n" \
    "    else\n" \
    "      st = {x = {}, i = {}, o = {}, r = {}, a = {}}\n" \
    "    end\n" \
    "    for _, r in ipairs(u.recs) do\n" \
    "      local kind, ts, day = ARGV[r + 2], tonumber(ARGV[r + 3]), tonumber(ARGV[r + 4])\n" \
    "      local t = {ts, day, ARGV[r + 5], ARGV[r + 6], ARGV[r + 7]}\n" \
    "      if kind == 'e' then keep(st.x, t, cap)\n" \
    "      elseif kind == 'i' then keep(st.i, {ts}, cap)\n" \
    "      elseif kind == 'p' then keep_order(st.o, {ARGV[r + 8], ts, tonumber(ARGV[r + 9])}, " \
    "cap)\n" \
    "      else keep_order(st.r, {ARGV[r + 8], ts, tonumber(ARGV[r + 9])}, cap) end\n" \
    "      local tk = kind == 'r' and '' or kind == 'p' and 'payment' or kind == 'e' and " \
    "'exposure' or 'interaction'\n" \
    "      if tk ~= '' and string.find(',' .. starts .. ',', ',' .. tk .. ',', 1, true) then\n" \
    "        if not st.f or tlt(t, st.f) then st.f = t end\n" \
    "      end\n" \
    "      if tk ~= '' and string.find(',' .. actives .. ',', ',' .. tk .. ',', 1, true) then\n" \
    "        keep(st.a, {day}, 512)\n" \
    "      end\n" \
    "    end\n" \
    "    -- nothing after the first exposure's window can count again (e0 only\n" \
    "    -- moves earlier): drop it, which keeps a returning user's state small\n" \
    "    if #st.x > 0 then\n" \
    "      local e_end = st.x[1][1] + window\n" \
    "      for _, l in ipairs({st.x, st.i}) do\n" \
    "        while #l > 0 and l[#l][1] > e_end do l[#l] = nil end\n" \
    "      end\n" \
    "      while #st.o > 0 and st.o[#st.o][2] > e_end do st.o[#st.o] = nil end\n" \
    "    end\n" \
    "    local p = cmsgpack.pack(st)\n" \
    "    -- a state the batch left as it was contributes what it did: skip it\n" \
    "    if p ~= raw then\n" \
    "      if raw then contrib(u.P, cmsgpack.unpack(raw), true) end\n" \
    "      contrib(u.P, st, false)\n" \
    "      packed[uk] = p\n" \
    "      changed[#changed + 1] = uk\n" \
    "    end\n" \
    "  end\n" \
    "  local kinds = {}\n" \
    "  local writes = {}\n" \
    "  for _, k in ipairs(keys) do\n" \
    "    local kind = string.match(k, ':(%a+):[^:]*', #prefix)\n" \
    "    local fs, ds = {}, {}\n" \
    "    for f, d in pairs(acc[k]) do\n" \
    "      if d ~= 0 then fs[#fs + 1] = f; ds[#ds + 1] = d end\n" \
    "    end\n" \
    "    -- every key the user's contribution touches (before or after) gets its\n" \
    "    -- TTL refreshed, a zero delta too: no cohort key expires before a state\n" \
    "    -- that counts in it\n" \
    "    if #fs == 0 then writes[#writes + 1] = {k, {}, {}} end\n" \
    "    if not kinds[kind] then\n" \
    "      kinds[kind] = true\n" \
    "      local f1 = fs[1] or 'cohort_size'\n" \
    "      local denied = acl_denied({{'HMGET', k, f1}, {'HINCRBY', k, f1, '1'}, {'EXPIRE', k, " \
    "'1'}})\n" \
    "      if denied then return denied end\n" \
    "    end\n" \
    "    if #fs > 0 then\n" \
    "      local cur = redis.pcall('HMGET', k, unpack(fs))\n" \
    "      if cur.err then return 'WRONGTYPE ' .. k .. ': ' .. cur.err end\n" \
    "      for j, f in ipairs(fs) do\n" \
    "        local v = cur[j] and big(cur[j]) or {0, 0}\n" \
    "        if not v or not i64(v) then return 'NOTINT ' .. k .. ' field ' .. f .. ' is not an " \
    "integer' end\n" \
    "        local dt = string.format('%.0f', ds[j])\n" \
    "        -- deltas are summed as Lua numbers: exact below 2^53 (far above what a batch can " \
    "move)\n" \
    "        if ds[j] >= L or ds[j] <= -L then\n" \
    "          return 'OVERFLOW ' .. k .. ' field ' .. f .. ': a batch delta of ' .. dt .. ' is " \
    "past 2^53'\n" \
    "        end\n" \
    "        if not i64(add(v, big(dt))) then\n" \
    "          return 'OVERFLOW ' .. k .. ' field ' .. f .. ': ' .. text(v) .. ' + ' .. dt .. ' " \
    "leaves int64'\n" \
    "        end\n" \
    "        ds[j] = dt\n" \
    "      end\n" \
    "      writes[#writes + 1] = {k, fs, ds}\n" \
    "    end\n" \
    "  end\n" \
    "  U = {horizon = horizon, uorder = changed, packed = packed, writes = writes,\n" \
    "       conf = not had and conf or nil, ck = ck}\n" \
    "end\n" \
    "local function users_write()\n" \
    "  if not U then return end\n" \
    "  if U.conf then redis.call('SET', U.ck, U.conf) end\n" \
    "  for _, uk in ipairs(U.uorder) do redis.call('SET', uk, U.packed[uk], 'EX', U.horizon) " \
    "end\n" \
    "  for _, w in ipairs(U.writes) do\n" \
    "    for j, f in ipairs(w[2]) do redis.call('HINCRBY', w[1], f, w[3][j]) end\n" \
    "    redis.call('EXPIRE', w[1], U.horizon)\n" \
    "  end\n" \
    "end\n" \
    ""

/* Pasted into FD_LUA_SNAPSHOT before the snapshot hash is written: after
 * the action cap, ARGV holds the number of retention days, then per day k
 * and the label of the cohort day it shows (sinks/redis_sink.c
 * snapshot_cohorts). A product-level scope (`product=...` alone) gets, per
 * k, `cohort_day_d{k}`, `cohort_size_d{k}`, `retained_d{k}` and
 * `retention_d{k}` (retained / size, 6 decimals, "" when the size is 0)
 * from {prefix}:ret:{scope}:{day} (docs/METRICS.md); a `ret:` key of
 * another type gives "" for its size, retained and retention. */
#define FD_LUA_SNAPSHOT_RETENTION \
    "  local ri = 9 + 2 * nw\n" \
    "  local rn = tonumber(ARGV[ri] or '0') or 0\n" \
    "  if rn > 0 and string.find(scope, '^product=[^,]*$') then\n" \
    "    for j = 1, rn do\n" \
    "      local k, lab = ARGV[ri + 2 * j - 1], ARGV[ri + 2 * j]\n" \
    "      local h = redis.pcall('HMGET', prefix .. ':ret:' .. scope .. ':' .. lab, " \
    "'cohort_size', 'retained_d' .. k)\n" \
    "      f[#f + 1] = 'cohort_day_d' .. k; f[#f + 1] = lab\n" \
    "      if h.err then\n" \
    "        -- not a hash (someone else's key): this cohort reads as unknown, the\n" \
    "        -- rest of the snapshot is still written\n" \
    "        f[#f + 1] = 'cohort_size_d' .. k; f[#f + 1] = ''\n" \
    "        f[#f + 1] = 'retained_d' .. k; f[#f + 1] = ''\n" \
    "        f[#f + 1] = 'retention_d' .. k; f[#f + 1] = ''\n" \
    "      else\n" \
    "      local cs, rt = tonumber(h[1] or '0') or 0, tonumber(h[2] or '0') or 0\n" \
    "      f[#f + 1] = 'cohort_size_d' .. k; f[#f + 1] = string.format('%d', cs)\n" \
    "      f[#f + 1] = 'retained_d' .. k; f[#f + 1] = string.format('%d', rt)\n" \
    "      f[#f + 1] = 'retention_d' .. k; f[#f + 1] = cs > 0 and string.format('%.6f', rt / cs) " \
    "or ''\n" \
    "      end\n" \
    "    end\n" \
    "  end\n"

#endif
