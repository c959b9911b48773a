/*
 * pipeline.h — messages in, effectively-once flushes out.
 *
 * The pipeline owns one state record per source partition: its position,
 * its max event time (lateness), the batch being filled, and the batch
 * sealed for flushing. A source (Kafka or JSON Lines files) hands it raw
 * messages; each is parsed, validated, aggregated into the partition's
 * batch or rejected to the dead-letter topic. A timer seals and flushes
 * each partition's batch with its next offset in one Redis script.
 *
 * The invariant that makes it exact: a partition's offset in Redis only
 * ever moves together with exactly the deltas of the messages before it.
 * Whenever that cannot be known (fenced, Redis error, disconnect, a failed
 * dead-letter write), the partition is "resynced": its in-memory state is
 * dropped, its offset and max event time are re-read from Redis, and the
 * source seeks there. A sealed batch is sent only once every dead-letter
 * write for the messages it covers has been acknowledged.
 */
#ifndef FD_PIPELINE_H
#define FD_PIPELINE_H

#include <stdint.h>
#include <uv.h>

#include "consumers/source.h"
#include "model/event.h"
#include "conf/conf.h"
#include "base/log.h"

typedef struct fd_pipeline fd_pipeline_t;

/* Borrows loop, c, log. with_dlq: produce rejected messages to the DLQ
 * topic (run); without, they are only counted (replay). */
fd_pipeline_t *fd_pipeline_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log, int with_dlq,
                               char *err, size_t errlen);
void fd_pipeline_set_source(fd_pipeline_t *p, const fd_source_ops_t *ops, void *src);

/* A partition that is assigned from the start (replay): its offset is read
 * from Redis before its source is resumed. */
int fd_pipeline_add_part(fd_pipeline_t *p, int src_key, int32_t partition, const char *topic,
                         fd_event_type_t type);

/* Source callbacks; fd_pipeline_source_cbs() is a table of the three, with
 * the pipeline as ud. */
const fd_source_cbs_t *fd_pipeline_source_cbs(void);
void fd_pipeline_message(fd_pipeline_t *p, int src_key, int32_t partition, int64_t offset,
                         const void *payload, size_t len);
int fd_pipeline_assign(fd_pipeline_t *p, int n, const int *src_key, const int32_t *partitions,
                       int64_t *offsets);
void fd_pipeline_revoke(fd_pipeline_t *p, int n, const int *src_key, const int32_t *partitions);

/* Graceful stop: stop the source, final flush, then uv_stop. Also on
 * SIGTERM/SIGINT, and by itself when an exhaustible source is done. */
void fd_pipeline_stop(fd_pipeline_t *p);
/* 0 after a clean stop, 1 if the final flush did not complete. */
int fd_pipeline_exit_code(const fd_pipeline_t *p);
/* Prints the per-reason reject counts and totals as one logfmt line. */
void fd_pipeline_log_totals(const fd_pipeline_t *p);
void fd_pipeline_free(fd_pipeline_t *p);

#endif
