/*
 * redis_lua.h — Lua shared by every script that checks before it writes
 * (the flush and its per-user section, the snapshot, the leaderboards,
 * the alert commit).
 */
#ifndef FD_REDIS_LUA_H
#define FD_REDIS_LUA_H

/* acl_denied(cmds): cmds is a list of {command, key, args...}, one of each
 * kind a script's writes will run; the first the ACL user may not run, as
 * a refusal cause naming it and the key, or nil. */
#define FD_LUA_ACL_DENIED \
    "local function acl_denied(cmds)\n" \
    "  for _, c in ipairs(cmds) do\n" \
    "    if not redis.acl_check_cmd(unpack(c)) then\n" \
    "      return 'NOPERM the Redis user may not run ' .. c[1] .. ' on ' .. c[2] ..\n" \
    "             ' (docs/REDIS.md lists the ACL funneld needs)'\n" \
    "    end\n" \
    "  end\n" \
    "end\n"

#endif
