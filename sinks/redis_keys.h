/*
 * redis_keys.h — every Redis key of the contract (docs/REDIS.md, and the
 * alert keys of docs/ALERTS.md), built in one place.
 *
 * Each builder writes the key into buf (cap bytes, always NUL-terminated)
 * and returns snprintf's length (>= cap: truncated; callers size buf for the
 * longest prefix, group and scope the config allows). Who writes what:
 *
 *   {prefix}:schema                      redis_sink.c on connect; the state check
 *   {prefix}:offsets:{group}             FD_LUA_FLUSH (field {topic}:{partition})
 *   {prefix}:wm:{group}                  FD_LUA_FLUSH (max event time per partition)
 *   {prefix}:seen:{group}                FD_LUA_FLUSH (wall ms of the last flush with events)
 *   {prefix}:c:{scope}:{gran}:{bucket}   FD_LUA_FLUSH; the tail after the prefix is
 *   {prefix}:u:{scope}:{gran}:{bucket}:{step}   built by fd_batch_key() (batch.c, hot
 *                                        path) and the script adds ":c:" / the
 *                                        sink adds "{prefix}:u:"
 *   {prefix}:dedup:{order_id}:{status}   FD_LUA_FLUSH
 *   {prefix}:scopes                      FD_LUA_FLUSH (ZADD); read by snapshots, alerts
 *   {prefix}:r:{scope}:{window}          FD_LUA_SNAPSHOT; read by `funneld query`
 *   {prefix}:updates                     pub/sub, redis_sink.c after a snapshot tick
 *   {prefix}:lease:snapshot              FD_LUA_LEASE (snapshot writer)
 *   {prefix}:lease:alerts                FD_LUA_LEASE (alert evaluator); `funneld alerts`
 *   {prefix}:alert:{fingerprint}         alerts' COMMIT script
 *   {prefix}:alert:index                 alerts' COMMIT script
 *   {prefix}:alert:cursor                alerts' COMMIT script
 *   {prefix}:alert:sent:{output}         alerts (delivery cursors)
 *   {prefix}:alerts                      alerts' COMMIT script (stream and pub/sub)
 *
 * The Lua scripts (redis_scripts.h, alerts/store.c) get these keys as
 * KEYS/ARGV from C and build only the per-bucket keys above themselves.
 */
#ifndef FD_REDIS_KEYS_H
#define FD_REDIS_KEYS_H

#include <stddef.h>
#include <stdio.h>

static inline size_t fd_key_len(int n) { return n < 0 ? 0 : (size_t)n; }

/* The contract version `{prefix}:schema` holds (docs/REDIS.md): "2" since
 * the m1 distinct-user HLLs exist only for hll_m1_groupings. */
#define FD_REDIS_SCHEMA "2"

static inline size_t fd_key_schema(char *buf, size_t cap, const char *prefix) {
    return fd_key_len(snprintf(buf, cap, "%s:schema", prefix));
}
static inline size_t fd_key_offsets(char *buf, size_t cap, const char *prefix, const char *group) {
    return fd_key_len(snprintf(buf, cap, "%s:offsets:%s", prefix, group));
}
static inline size_t fd_key_wm(char *buf, size_t cap, const char *prefix, const char *group) {
    return fd_key_len(snprintf(buf, cap, "%s:wm:%s", prefix, group));
}
static inline size_t fd_key_seen(char *buf, size_t cap, const char *prefix, const char *group) {
    return fd_key_len(snprintf(buf, cap, "%s:seen:%s", prefix, group));
}
/* The part before fd_batch_key()'s tail of a distinct-users key. */
static inline size_t fd_key_users_prefix(char *buf, size_t cap, const char *prefix) {
    return fd_key_len(snprintf(buf, cap, "%s:u:", prefix));
}
static inline size_t fd_key_scopes(char *buf, size_t cap, const char *prefix) {
    return fd_key_len(snprintf(buf, cap, "%s:scopes", prefix));
}
static inline size_t fd_key_updates(char *buf, size_t cap, const char *prefix) {
    return fd_key_len(snprintf(buf, cap, "%s:updates", prefix));
}
/* name: "snapshot" or "alerts" */
static inline size_t fd_key_lease(char *buf, size_t cap, const char *prefix, const char *name) {
    return fd_key_len(snprintf(buf, cap, "%s:lease:%s", prefix, name));
}
/* window: fd_duration_format() of the window ("5m", "24h") */
static inline size_t fd_key_result(char *buf, size_t cap, const char *prefix, const char *scope,
                                   const char *window) {
    return fd_key_len(snprintf(buf, cap, "%s:r:%s:%s", prefix, scope, window));
}
static inline size_t fd_key_alert_index(char *buf, size_t cap, const char *prefix) {
    return fd_key_len(snprintf(buf, cap, "%s:alert:index", prefix));
}
static inline size_t fd_key_alert(char *buf, size_t cap, const char *prefix, const char *fingerprint) {
    return fd_key_len(snprintf(buf, cap, "%s:alert:%s", prefix, fingerprint));
}
static inline size_t fd_key_alert_cursor(char *buf, size_t cap, const char *prefix) {
    return fd_key_len(snprintf(buf, cap, "%s:alert:cursor", prefix));
}
/* output: fd_alert_out_name() */
static inline size_t fd_key_alert_sent(char *buf, size_t cap, const char *prefix, const char *output) {
    return fd_key_len(snprintf(buf, cap, "%s:alert:sent:%s", prefix, output));
}
static inline size_t fd_key_alert_stream(char *buf, size_t cap, const char *prefix) {
    return fd_key_len(snprintf(buf, cap, "%s:alerts", prefix));
}

#endif
