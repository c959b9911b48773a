/*
 * lua_window.h — Lua shared by the snapshot and alert scripts.
 *
 * buckets(from, to) lists the bucket keys whose sum is the window
 * [from, to) (epoch seconds, minute-aligned): m1 buckets at the edges, h1
 * buckets for the whole hours inside — the same sum as over m1 buckets
 * alone, with at most 118 + 23 keys for 24 h. num(v) prints an integer-valued
 * Lua number without an exponent.
 */
#ifndef FD_LUA_WINDOW_H
#define FD_LUA_WINDOW_H

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

#endif
