/*
 * sink.h — the whole sink contract: what the pipeline may ask of the store
 * its flushes go to, and of the dead-letter writer.
 *
 * The pipeline talks to "a sink" and "a DLQ" through these ops only; the
 * Redis writer (redis_sink.c) and the dead-letter producer (dlq.c) each
 * provide a table (fd_redis_sink_ops(), fd_dlq_ops()), and a unit test can
 * provide a fake. Nothing here allocates.
 *
 * Result codes (0 / negative, bands in base/err.h): a flush or offset read
 * completes with FD_SINK_OK, or with
 *   FD_SINK_EFENCED  the stored offset was not `expected`: another instance
 *                    (or an older generation of this one) moved it; nothing
 *                    was applied
 *   FD_SINK_EFAILED  unknown whether it was applied (connection lost, reply
 *                    overdue, NOSCRIPT): re-read the offset and start over
 *   FD_SINK_ESCRIPT  the script refused before writing (an error that is not
 *                    a passing server state: an ACL, an overflowing counter):
 *                    it will most likely refuse the same again
 * A call that returns < 0 never fires its callback; one that returns 0 fires
 * it exactly once (also when the sink is freed: FD_SINK_EFAILED).
 * That, and "re-read on anything but OK", is what makes a flush
 * effectively-once.
 */
#ifndef FD_SINK_H
#define FD_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "aggregators/batch.h"
#include "base/err.h"

#define FD_SINK_OK 0
#define FD_SINK_EFENCED (FD_ERR_SINK - 1)
#define FD_SINK_EFAILED (FD_ERR_SINK - 2)
#define FD_SINK_ESCRIPT (FD_ERR_SINK - 3)

#define FD_DLQ_EFAILED (FD_ERR_DLQ - 1) /* permanently failed: the message was not written */

/* ready: 1 when the connection is usable, 0 when it went down. */
typedef void (*fd_sink_state_cb)(void *ud, int ready);
typedef void (*fd_sink_flush_cb)(void *ud, int status);
/* offset: next offset to read, -1 if none stored; max_ts INT64_MIN if none. */
typedef void (*fd_sink_offset_cb)(void *ud, int status, int64_t offset, int64_t max_ts);
/* status FD_SINK_OK or FD_SINK_EFAILED; schema_missing: `{prefix}:schema` was
 * absent (and is rewritten); present[i]: field i has an offset stored. */
typedef void (*fd_sink_check_cb)(void *ud, int status, int schema_missing, const int *present);

typedef struct {
    int (*ready)(const void *sink);
    /* Applies batch b of partition `field` ("topic:partition") and moves its
     * offset from `expected` (-1: none stored yet) to `next_offset`, with the
     * partition's max event time (INT64_MIN: none). b may be reset as soon as
     * this returns. 0, or < 0 and cb never fires. */
    int (*flush)(void *sink, const char *field, int64_t expected, int64_t next_offset,
                 int64_t max_ts, const fd_batch_t *b, fd_sink_flush_cb cb, void *ud);
    int (*read_offset)(void *sink, const char *field, fd_sink_offset_cb cb, void *ud);
    /* Blocking read of several partitions' offsets (inside a rebalance, where
     * the assignment needs them first). 0, or < 0 with err set. */
    int (*read_offsets_sync)(void *sink, const char *const *fields, int n, int64_t *offsets,
                             int64_t *max_ts, int timeout_ms, char *err, size_t errlen);
    /* Is the state this process wrote still there (schema key, offsets)? */
    int (*check_state)(void *sink, const char *const *fields, int n, fd_sink_check_cb cb, void *ud);
    /* The last error reply of a flush script ("" if none), for logs. */
    const char *(*last_error)(const void *sink);
} fd_sink_ops_t;

/* status: 0 acknowledged by the broker, FD_DLQ_EFAILED. token: as given. */
typedef void (*fd_dlq_done_cb)(void *ud, uint64_t token, int status);

typedef struct {
    /* 0 (done fires later) or a negative errno (done never fires). */
    int (*send)(void *dlq, const void *payload, size_t len, const char *reason, const char *field,
                const char *detail, const char *topic, int32_t partition, int64_t offset,
                uint64_t token);
    int (*outstanding)(const void *dlq); /* sent, done not fired yet */
    int (*backlog)(const void *dlq); /* of those, waiting for room: pause input while > 0 */
} fd_dlq_ops_t;

#endif
