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
 *
 * The pipeline builds nothing: the parser, the aggregator, the sink and the
 * DLQ (through their ops, sinks/sink.h) and the source (consumers/source.h)
 * are given to it, and app/daemon.c wires them. Its only handles are its
 * flush timer and its stop timer. tests/unit/test_pipeline.c drives it with
 * a fake source, sink and DLQ.
 */
#ifndef FD_PIPELINE_H
#define FD_PIPELINE_H

#include <stdint.h>
#include <uv.h>

#include "consumers/source.h"
#include "sinks/sink.h"
#include "aggregators/agg.h"
#include "model/event.h"
#include "conf/conf.h"
#include "ops/metrics.h"
#include "base/log.h"

typedef struct fd_pipeline fd_pipeline_t;

/* accepted, late and rejects count each message once, when the flush that
 * stores its offset succeeds (pipeline.c, tally_t). */
typedef struct {
    uint64_t accepted, late, rejects[FD_R__COUNT], flushes, resyncs;
    uint64_t lost_offsets, lost_schema; /* Redis state found missing */
    uint64_t pending; /* events in the batches being filled, as of the last tick */
    int assigned, syncing, halted; /* partitions */
    int backpressure; /* input paused: pending over max_pending_events */
    /* successful flushes by round-trip time (non-cumulative, buckets of
     * ops/metrics.h's fd_flush_buckets_s, the last one above them all) */
    uint64_t flush_hist[FD_FLUSH_BUCKETS + 1];
    double flush_sum_s;
} fd_pipeline_stats_t;

/* Borrows loop, c, log, parser and agg (the caller frees them after
 * fd_pipeline_free). Starts the flush timer. */
fd_pipeline_t *fd_pipeline_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                               fd_parser_t *parser, fd_agg_t *agg, char *err, size_t errlen);
/* Where flushes go and offsets come from (required before any partition). */
void fd_pipeline_set_sink(fd_pipeline_t *p, const fd_sink_ops_t *ops, void *sink);
/* Where rejected messages go. Not called: they are only counted (replay). */
void fd_pipeline_set_dlq(fd_pipeline_t *p, const fd_dlq_ops_t *ops, void *dlq);
void fd_pipeline_set_source(fd_pipeline_t *p, const fd_source_ops_t *ops, void *src);
/* Called once per flush interval (after the tick of slot 0), with the stats. */
void fd_pipeline_set_round_cb(fd_pipeline_t *p, void (*cb)(void *ud, const fd_pipeline_stats_t *st),
                              void *ud);
/* Called once when the pipeline has finished, just before uv_stop: stop the
 * timers that must not fire any more. */
void fd_pipeline_set_finish_cb(fd_pipeline_t *p, void (*cb)(void *ud), void *ud);

/* The sink's fd_sink_state_cb and the DLQ's fd_dlq_done_cb (ud: the pipeline). */
void fd_pipeline_sink_state(void *p, int ready);
void fd_pipeline_dlq_done(void *p, uint64_t token, int status);

/* One flush-timer tick: serves one slot of partitions (FLUSH_SLOTS ticks
 * per flush interval). The timer calls it; a test may too. */
void fd_pipeline_tick(fd_pipeline_t *p);
/* Asks the sink whether the state this process wrote is still there (an
 * idle partition sends no flush that would notice): once per snapshot tick. */
void fd_pipeline_check_state(fd_pipeline_t *p);
void fd_pipeline_stats(const fd_pipeline_t *p, fd_pipeline_stats_t *st);

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

/* Graceful stop: stop the source, final flush, then uv_stop. app/ calls it
 * on SIGTERM/SIGINT; it stops by itself when an exhaustible source is done. */
void fd_pipeline_stop(fd_pipeline_t *p);
/* 0 after a clean stop, 1 if the final flush did not complete. */
int fd_pipeline_exit_code(const fd_pipeline_t *p);
/* Prints the per-reason reject counts and totals as one logfmt line. */
void fd_pipeline_log_totals(const fd_pipeline_t *p);
void fd_pipeline_free(fd_pipeline_t *p);

#endif
