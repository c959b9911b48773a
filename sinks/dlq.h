/*
 * dlq.h — the dead-letter topic writer.
 *
 * A rejected message's original bytes go to the DLQ topic (kafka.dlq_topic)
 * with headers `reason`, `field`, `detail`, `source.topic`,
 * `source.partition`, `source.offset`. The producer is idempotent and never
 * gives up on its own (message.timeout.ms=0), so a delivery report is either
 * success or a permanent error; the caller learns which through `done`
 * (0 or FD_DLQ_EFAILED) and
 * must not store its source offset before success.
 * Delivery reports wake the libuv loop through the producer queue's IO event.
 * Memory: librdkafka's copy of each message until it is acknowledged.
 */
#ifndef FD_DLQ_H
#define FD_DLQ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "conf/conf.h"
#include "sinks/sink.h"
#include "base/log.h"

typedef struct fd_dlq fd_dlq_t;

/* The DLQ ops (sinks/sink.h) over these functions, for the pipeline. */
const fd_dlq_ops_t *fd_dlq_ops(void);

fd_dlq_t *fd_dlq_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log, fd_dlq_done_cb done,
                     void *ud, char *err, size_t errlen);
/* Flushes outstanding messages (bounded wait) and frees. */
void fd_dlq_free(fd_dlq_t *d);

/* Returns 0 (done fires later) or a negative errno (done never fires).
 * A full producer queue is not an error: the message waits here (see
 * fd_dlq_backlog). A payload longer than kafka.dlq_max_message_bytes is
 * sent truncated, with headers `truncated=true` and `original.size`. */
int fd_dlq_send(fd_dlq_t *d, const void *payload, size_t len, const char *reason, const char *field,
                const char *detail, const char *topic, int32_t partition, int64_t offset,
                uint64_t token);

/* Messages accepted by fd_dlq_send and not yet acknowledged. */
int fd_dlq_outstanding(const fd_dlq_t *d);
/* Of those, messages waiting for room in the producer queue: while this is
 * above 0 the caller should pause its input. */
int fd_dlq_backlog(const fd_dlq_t *d);

#endif
