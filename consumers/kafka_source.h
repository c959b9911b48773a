/*
 * kafka_source.h — the Kafka consumer-group member feeding the pipeline.
 *
 * One librdkafka consumer (cooperative-sticky) subscribed to the configured
 * topics. Its queue wakes the libuv loop through
 * rd_kafka_queue_io_event_enable on a pipe; messages are drained in batches
 * of at most 1000 per loop turn (an idle handle continues a long backlog, so
 * timers and Redis replies are never starved), and a 100 ms timer polls as
 * a safety net, so max.poll.interval.ms is honoured even while paused.
 *
 * Offsets are owned by Redis: on assignment the source asks the pipeline for
 * the stored offsets (on_assign, consumers/source.h) and assigns exactly those. The Kafka
 * commit is only for lag monitoring. auto.offset.store and auto.commit are
 * off. Topic metadata is refreshed every 30 s (librdkafka: 300 s), so a
 * partition added to an input topic is consumed within about 30 s.
 *
 * Problems are logged once each: librdkafka's FAIL log line is dropped in
 * favour of the error event it always comes with, and repeating problems
 * are rate-limited per (client, kind, broker) with fd_log_repeat.
 */
#ifndef FD_KAFKA_SOURCE_H
#define FD_KAFKA_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "consumers/source.h"
#include "base/kafka.h"
#include "conf/conf.h"
#include "base/log.h"

typedef struct fd_kafka_source fd_kafka_source_t;

/* Borrows loop, c, log. Subscribes at once. */
fd_kafka_source_t *fd_kafka_source_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                                       const fd_source_cbs_t *cbs, void *ud, char *err,
                                       size_t errlen);
/* Leaves the group (blocking: serves the final revoke) and frees. */
void fd_kafka_source_free(fd_kafka_source_t *s);

int fd_kafka_source_pause(fd_kafka_source_t *s, int topic_idx, int32_t partition, int pause);
/* Stops / restarts delivering messages without dropping the prefetched ones
 * (fd_source_ops_t.hold). */
void fd_kafka_source_hold(fd_kafka_source_t *s, int hold);
/* Seeks (offset -1: beginning); messages fetched before are discarded. */
int fd_kafka_source_seek(fd_kafka_source_t *s, int topic_idx, int32_t partition, int64_t offset);
/* Asynchronous commit of `offset` for lag monitoring only. */
void fd_kafka_source_commit(fd_kafka_source_t *s, int topic_idx, int32_t partition, int64_t offset);
/* Stops waking the loop (before shutdown's final flush). */
void fd_kafka_source_stop(fd_kafka_source_t *s);
/* The source ops (consumers/source.h) over the four functions above. */
const fd_source_ops_t *fd_kafka_source_ops(void);

#endif
