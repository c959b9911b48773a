/*
 * redis_sink.h — the Redis writer: flush scripts, offsets, snapshots.
 *
 * hiredis (0.14) async on the process's libuv loop. The sink keeps one
 * connection; on connect it authenticates, selects the db, loads the
 * scripts and writes `{prefix}:schema`, then reports "ready". When the
 * connection drops, a reply is overdue (watchdog: hiredis 0.14 has no
 * timeouts) or a script answers NOSCRIPT, the connection is torn down,
 * every outstanding callback fires with FD_SINK_EFAILED, "down" is reported,
 * and it reconnects with exponential backoff (100 ms .. 5 s).
 *
 * Callers treat FD_SINK_EFAILED as "unknown whether it was applied": they
 * re-read the partition's offset and start over from there. That is what
 * makes a flush effectively-once.
 */
#ifndef FD_REDIS_SINK_H
#define FD_REDIS_SINK_H

#include <stdint.h>
#include <uv.h>

#include "aggregators/batch.h"
#include "sinks/sink.h"
#include "conf/conf.h"
#include "base/log.h"

typedef struct fd_redis_sink fd_redis_sink_t;

/* The sink ops (sinks/sink.h) over these functions, for the pipeline. */
const fd_sink_ops_t *fd_redis_sink_ops(void);

/* Borrows loop, c and log. Starts connecting at once. */
fd_redis_sink_t *fd_redis_sink_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                                   fd_sink_state_cb cb, void *ud, char *err, size_t errlen);
/* Fires every outstanding callback with FD_SINK_EFAILED, then frees. */
void fd_redis_sink_free(fd_redis_sink_t *s);
int fd_redis_sink_ready(const fd_redis_sink_t *s);
/* The last error reply of a flush script ("" if none), for logs. */
const char *fd_redis_sink_last_error(const fd_redis_sink_t *s);

/* Applies batch b of partition `field` ("topic:partition") and moves its
 * offset from `expected` (-1: none stored yet) to `next_offset`, with the
 * partition's max event time (INT64_MIN: none). b may be freed or reset as
 * soon as this returns (the command is serialized at once).
 * Returns 0, or -ENOTCONN (no callback will fire). */
int fd_redis_sink_flush(fd_redis_sink_t *s, const char *field, int64_t expected, int64_t next_offset,
                        int64_t max_ts, const fd_batch_t *b, fd_sink_flush_cb cb, void *ud);

/* Reads the stored offset and max event time of partition `field`. */
int fd_redis_sink_read_offset(fd_redis_sink_t *s, const char *field, fd_sink_offset_cb cb, void *ud);

/* Asks Redis whether it still holds the state this process wrote: sets
 * `{prefix}:schema` if absent (reporting that it was) and reads the stored
 * offsets of the n partitions `fields`. Returns 0 (cb fires once) or
 * -ENOTCONN / -ENOMEM (it does not). */
int fd_redis_sink_check_state(fd_redis_sink_t *s, const char *const *fields, int n,
                              fd_sink_check_cb cb, void *ud);

/* One snapshot tick: takes or renews the lease `{prefix}:lease:snapshot`
 * for instance `id`; if held, computes the global watermark from
 * `{prefix}:wm:{group}` / `seen`, writes `{prefix}:r:{scope}:{window}` for
 * every scope updated within the longest window, and publishes a note on
 * `{prefix}:updates`. Fire and forget; returns 0 or -ENOTCONN. */
int fd_redis_sink_snapshot(fd_redis_sink_t *s, const char *id, int64_t now_ms);

/* Opens a blocking connection to redis.url with AUTH and SELECT done and
 * connect/command timeouts of timeout_ms. Returns NULL with err set (never
 * containing the password). Free with redisFree(). */
struct redisContext;
struct redisContext *fd_redis_connect_sync(const fd_conf_t *c, int64_t timeout_ms, char *err,
                                           size_t errlen);

/* Blocking read of several partitions' offsets (used inside the rebalance
 * callback, where the assignment needs them before it can be made).
 * Returns 0 or -EIO with err set (never containing the password). */
int fd_redis_read_offsets_sync(const fd_conf_t *c, const char *const *fields, int n, int64_t *offsets,
                               int64_t *max_ts, int timeout_ms, char *err, size_t errlen);

#endif
