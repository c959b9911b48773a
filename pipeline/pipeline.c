/*
 * pipeline.c — per-partition state machine between source and Redis.
 *
 * A partition is in one of these states:
 *   syncing   its offset is being (re-)read from Redis; messages are dropped
 *             (the source will deliver them again after the seek)
 *   idle      filling `cur`; nothing sealed
 *   wait_dlq  `sealed` holds the deltas up to `sealed_next`; some of its
 *             dead-letter writes are not acknowledged yet
 *   inflight  the flush script for `sealed_next` is on its way
 *   halted    its flush script failed twice with no good flush in between
 *             (e.g. a missing ACL permission, a counter that would
 *             overflow): the script refuses before writing, so a retry
 *             cannot fix it and must not loop; the partition stays paused,
 *             /readyz answers 503, until a restart or a new assignment
 * Dead-letter writes are tagged with (partition, generation, seal sequence)
 * so that acknowledgements land on the right batch, and anything from
 * before a resync (older generation) is ignored.
 *
 * Memory: two batches per partition, bounded by max_pending_events through
 * pausing the source (also while Redis is down, and while dead letters wait
 * for room in the producer queue: back-pressure, never a resync).
 */
#include "pipeline/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sink.h"
#include "aggregators/agg.h"
#include "aggregators/batch.h"
#include "model/window.h"
#include "base/clock.h"

enum { ST_IDLE = 0, ST_WAIT_DLQ, ST_INFLIGHT };

/* What a batch's messages add to the process totals (accepted, late,
 * rejected by reason). Kept with the batch, then with its flush's callback
 * context, and added when that flush succeeds — also when the partition
 * resynced while it was on its way: the fence let it through, so its
 * messages are not read again. A message read again after a resync (a
 * failed flush or dead-letter write, Redis down, fencing) is thus counted
 * once, not once per reading. A flush whose reply is lost (the connection
 * dropped while its script ran) is not counted even if it was applied. */
typedef struct {
    uint64_t accepted, late, rejects[FD_R__COUNT];
} tally_t;

typedef struct {
    int src_key;
    int32_t partition;
    fd_event_type_t type;
    char topic[256];
    char field[280]; /* "topic:partition" */
    int assigned, syncing, reading, paused, state;
    uint32_t gen;
    int64_t pos; /* next offset to accept */
    int64_t flushed_pos; /* pos covered by Redis */
    int64_t stored; /* offset stored in Redis, -1 none */
    int64_t max_ts;
    fd_batch_t *cur, *sealed;
    tally_t cur_tally, sealed_tally;
    int64_t sealed_next, sealed_max_ts;
    uint32_t cur_seq;
    int cur_dlq, sealed_dlq;
    int script_errors; /* flush script errors since the last success */
    int halted;
    int stop_dropped; /* counted once in p->stop_dropped */
    uint64_t flush_sent_ns; /* uv_hrtime() when the in-flight flush was sent */
} part_t;

struct fd_pipeline {
    uv_loop_t *loop;
    const fd_conf_t *conf;
    fd_log_t *log;
    fd_parser_t *parser;
    fd_agg_t *agg;
    const fd_sink_ops_t *sink_ops;
    void *sink;
    const fd_dlq_ops_t *dlq_ops; /* NULL: rejects are only counted (replay) */
    void *dlq;
    void (*round_cb)(void *ud, const fd_pipeline_stats_t *st);
    void *round_ud;
    void (*finish_cb)(void *ud);
    void *finish_ud;
    const fd_source_ops_t *src;
    void *src_ud;
    part_t *parts;
    int nparts, capparts, last_hit;
    uv_timer_t flush_timer, stop_timer;
    int handles_open;
    int backpressure;
    int held; /* the source is held (reconcile_hold) */
    int dlq_full; /* dead letters wait for room in the producer queue */
    int stopping, stopped, exit_code;
    int64_t stop_deadline_ms;
    uint64_t accepted, late, rejects[FD_R__COUNT], flushes, resyncs; /* flushed: tally_t */
    uint64_t ticks; /* flush timer ticks: FLUSH_SLOTS per flush interval */
    uint64_t pending; /* events in the batches being filled, as of the last tick */
    int stop_dropped; /* partitions whose unflushed input was dropped while stopping */
    uint64_t lost_offsets, lost_schema; /* Redis state found missing (state_lost) */
    int check_running; /* a state check (check_state) is on its way */
    uint64_t flush_hist[FD_FLUSH_BUCKETS + 1]; /* successful flushes by round trip */
    double flush_sum_s;
};

/* token = partition index (16 bits) | generation (24) | seal sequence (24) */
static uint64_t make_token(int idx, uint32_t gen, uint32_t seq) {
    return ((uint64_t)idx << 48) | ((uint64_t)(gen & 0xFFFFFF) << 24) | (seq & 0xFFFFFF);
}

static part_t *find(fd_pipeline_t *p, int src_key, int32_t partition) {
    if (p->last_hit < p->nparts) {
        part_t *h = &p->parts[p->last_hit];
        if (h->src_key == src_key && h->partition == partition) return h;
    }
    for (int i = 0; i < p->nparts; i++)
        if (p->parts[i].src_key == src_key && p->parts[i].partition == partition) {
            p->last_hit = i;
            return &p->parts[i];
        }
    return NULL;
}

static part_t *find_or_add(fd_pipeline_t *p, int src_key, int32_t partition, const char *topic,
                           fd_event_type_t type) {
    part_t *x = find(p, src_key, partition);
    if (x) return x;
    if (p->nparts == p->capparts) {
        int ncap = p->capparts ? p->capparts * 2 : 16;
        if (ncap > 65535) return NULL;
        part_t *np = realloc(p->parts, (size_t)ncap * sizeof(part_t));
        if (!np) return NULL;
        p->parts = np;
        p->capparts = ncap;
    }
    x = &p->parts[p->nparts];
    memset(x, 0, sizeof(*x));
    x->cur = fd_batch_new();
    x->sealed = fd_batch_new();
    if (!x->cur || !x->sealed) {
        fd_batch_free(x->cur);
        fd_batch_free(x->sealed);
        return NULL;
    }
    p->nparts++;
    x->src_key = src_key;
    x->partition = partition;
    x->type = type;
    snprintf(x->topic, sizeof x->topic, "%s", topic);
    snprintf(x->field, sizeof x->field, "%s:%d", topic, (int)partition);
    x->stored = -1;
    x->max_ts = INT64_MIN;
    return x;
}

static int part_index(const fd_pipeline_t *p, const part_t *x) { return (int)(x - p->parts); }

/* A partition whose next batch is full while the previous one is still on
 * its way waits, so memory stays bounded by flush_max_events. */
static int part_full(const fd_pipeline_t *p, const part_t *x) {
    return x->state != ST_IDLE && fd_batch_events(x->cur) >= (uint64_t)p->conf->flush_max_events;
}

/* With a source that can hold (fd_source_ops_t.hold), the routine flow
 * control — a partition full, or max_pending_events — holds the whole
 * source instead of pausing partitions: a paused Kafka partition loses its
 * prefetched messages and fetches them again on resume, which made funneld
 * fetch 3-4x the bytes of its topics on a backfill (bench/e2e.sh). A batch
 * may pass flush_max_events by what the source delivers in one go (at most
 * 4000 messages) before the hold takes effect. */
static void reconcile_hold(fd_pipeline_t *p) {
    if (!p->src || !p->src->hold) return;
    int want = p->backpressure;
    for (int i = 0; !want && i < p->nparts; i++) {
        const part_t *x = &p->parts[i];
        want = x->assigned && !x->syncing && !x->halted && part_full(p, x);
    }
    if (want != p->held) {
        p->src->hold(p->src_ud, want);
        p->held = want;
    }
}

/* Brings the source's pause state in line with what the partition needs. */
static void reconcile_pause(fd_pipeline_t *p, part_t *x) {
    if (!x->assigned || !p->src) return;
    int flow = p->backpressure || part_full(p, x);
    if (p->src->hold) {
        reconcile_hold(p);
        flow = 0;
    }
    int want = x->syncing || x->halted || p->dlq_full || p->stopping || flow;
    if (want == x->paused) return;
    if (p->src->pause(p->src_ud, x->src_key, x->partition, want) == 0) x->paused = want;
}

static void drop_state(part_t *x) {
    x->gen++;
    x->state = ST_IDLE;
    x->cur_dlq = x->sealed_dlq = 0;
    memset(&x->cur_tally, 0, sizeof x->cur_tally);
    memset(&x->sealed_tally, 0, sizeof x->sealed_tally);
    fd_batch_reset(x->cur);
    fd_batch_reset(x->sealed);
}

/* What a Redis callback needs to find its partition again (and, for a
 * flush, what its batch adds to the totals). */
typedef struct {
    fd_pipeline_t *p;
    uint64_t tok;
    tally_t tally;
} cbctx_t;

static cbctx_t *ctx_new(fd_pipeline_t *p, uint64_t tok) {
    cbctx_t *c = calloc(1, sizeof(*c));
    if (c) {
        c->p = p;
        c->tok = tok;
    }
    return c;
}

/* Resolves a callback's token to its partition, or NULL if it is stale. */
static part_t *ctx_part(fd_pipeline_t *p, uint64_t tok) {
    int idx = (int)(tok >> 48);
    if (idx >= p->nparts) return NULL;
    part_t *x = &p->parts[idx];
    if (!x->assigned || (x->gen & 0xFFFFFF) != ((tok >> 24) & 0xFFFFFF)) return NULL;
    return x;
}

static void offset_done(void *ud, int status, int64_t offset, int64_t max_ts);

static int sink_ready(const fd_pipeline_t *p) { return p->sink_ops && p->sink_ops->ready(p->sink); }

static void start_read(fd_pipeline_t *p, part_t *x) {
    if (x->reading || !sink_ready(p)) return;
    void *c = ctx_new(p, make_token(part_index(p, x), x->gen, 0));
    if (!c) return;
    if (p->sink_ops->read_offset(p->sink, x->field, offset_done, c) == 0) x->reading = 1;
    else free(c);
}

/* Forget everything not in Redis and start over from Redis's offset. */
static void resync(fd_pipeline_t *p, part_t *x, const char *why) {
    if (!x->assigned || x->halted) return;
    p->resyncs++;
    char key[320];
    snprintf(key, sizeof key, "resync|%s|%s", x->field, why); /* a resync that repeats is a retry loop */
    fd_log_repeat(p->log, FD_LOG_INFO, key, "partition resync", "partition=\"%s\" reason=%s",
                  x->field, why);
    /* the source is stopped: what this drops is not read again by this process */
    if (p->stopping && !x->stop_dropped && (x->state != ST_IDLE || x->pos != x->flushed_pos)) {
        x->stop_dropped = 1;
        p->stop_dropped++;
    }
    drop_state(x);
    x->syncing = 1;
    x->reading = 0;
    reconcile_pause(p, x);
    start_read(p, x);
}

/* Redis answered "no offset stored" for a partition whose offset this process
 * stored or read before: offsets are never deleted by funneld, so Redis lost
 * its state (FLUSHALL, a restart without persistence, eviction). The
 * counters before that offset went with it; the partition restarts from the
 * earliest input the source still holds (docs/ARCHITECTURE.md, "When Redis
 * loses its data"). */
static void state_lost(fd_pipeline_t *p, const part_t *x) {
    p->lost_offsets++;
    fd_log(
        p->log, FD_LOG_ERROR,
        "redis state lost: stored offset vanished, re-consuming from the earliest retained offset",
        "partition=\"%s\" lost_offset=%" PRId64 " key=\"%s:offsets:%s\" restart=earliest_retained",
        x->field, x->stored, p->conf->prefix, p->conf->group);
}

static void offset_done(void *ud, int status, int64_t offset, int64_t max_ts) {
    cbctx_t *c = ud;
    fd_pipeline_t *p = c->p;
    part_t *x = ctx_part(p, c->tok);
    free(c);
    if (!x || !x->syncing) return;
    x->reading = 0;
    if (status != FD_SINK_OK) return; /* the next tick tries again */
    if (p->src->seek(p->src_ud, x->src_key, x->partition, offset) < 0) return; /* read again */
    if (offset < 0 && x->stored >= 0) state_lost(p, x); /* once: stored is -1 from here */
    x->stored = offset;
    x->pos = x->flushed_pos = offset < 0 ? 0 : offset;
    x->max_ts = max_ts;
    x->syncing = 0;
    fd_log(p->log, FD_LOG_DEBUG, "partition synced", "partition=\"%s\" offset=%" PRId64, x->field,
           offset);
    reconcile_pause(p, x);
}

/* ---- flushing ------------------------------------------------------------ */

static void maybe_finish(fd_pipeline_t *p);
static void maybe_flush(fd_pipeline_t *p, part_t *x);

static void halt(fd_pipeline_t *p, part_t *x);

static void flush_done(void *ud, int status) {
    cbctx_t *c = ud;
    fd_pipeline_t *p = c->p;
    part_t *x = ctx_part(p, c->tok);
    if (status == FD_SINK_OK) { /* applied, whatever became of the partition since */
        p->accepted += c->tally.accepted;
        p->late += c->tally.late;
        for (int i = 0; i < FD_R__COUNT; i++) p->rejects[i] += c->tally.rejects[i];
    }
    free(c);
    if (!x || x->state != ST_INFLIGHT) return;
    if (status == FD_SINK_OK) {
        x->script_errors = 0;
        x->stored = x->flushed_pos = x->sealed_next;
        x->state = ST_IDLE;
        p->flushes++;
        double secs = (double)(uv_hrtime() - x->flush_sent_ns) / 1e9;
        fd_flush_hist_observe(p->flush_hist, secs);
        p->flush_sum_s += secs;
        if (fd_batch_events(x->cur) >= (uint64_t)p->conf->flush_max_events) maybe_flush(p, x);
        reconcile_pause(p, x);
        if (p->src->commit) p->src->commit(p->src_ud, x->src_key, x->partition, x->stored);
        if (p->stopping) maybe_finish(p);
    } else if (status == FD_SINK_ESCRIPT && ++x->script_errors >= 2) {
        halt(p, x);
    } else {
        resync(p, x,
               status == FD_SINK_EFENCED   ? "fenced"
               : status == FD_SINK_ESCRIPT ? "script_error"
                                           : "redis_error");
    }
}

/* A second script error without a good flush in between: stop the
 * partition instead of re-sending the batch forever. Its offset in Redis stays where the last good flush left
 * it, so a restart (after fixing the cause) continues exactly there. */
static void halt(fd_pipeline_t *p, part_t *x) {
    drop_state(x);
    x->halted = 1;
    x->syncing = x->reading = 0;
    reconcile_pause(p, x);
    fd_log(p->log, FD_LOG_ERROR,
           "partition stopped: its flush script failed twice; "
           "fix the cause and restart",
           "partition=\"%s\" offset=%" PRId64 " error=\"%s\"", x->field, x->stored,
           p->sink_ops->last_error(p->sink));
    /* a finite input (replay) can never be read to its end now: stop, so the
     * other partitions get their final flush and the run exits 1 */
    if (p->src && p->src->exhausted && !p->stopping) fd_pipeline_stop(p);
    else if (p->stopping) maybe_finish(p);
}

static void send_sealed(fd_pipeline_t *p, part_t *x) {
    cbctx_t *c = ctx_new(p, make_token(part_index(p, x), x->gen, 0));
    if (c) c->tally = x->sealed_tally;
    memset(&x->sealed_tally, 0, sizeof x->sealed_tally);
    int rc = c ? p->sink_ops->flush(p->sink, x->field, x->stored, x->sealed_next, x->sealed_max_ts,
                                    x->sealed, flush_done, c)
               : -ENOMEM;
    fd_batch_reset(x->sealed); /* serialized already, or dropped with the resync */
    if (rc < 0) {
        free(c);
        resync(p, x, "flush_not_sent");
        return;
    }
    x->state = ST_INFLIGHT;
    x->flush_sent_ns = uv_hrtime();
}

static void maybe_flush(fd_pipeline_t *p, part_t *x) {
    if (!x->assigned || x->syncing || x->halted || x->state != ST_IDLE) return;
    if (x->pos == x->flushed_pos || !sink_ready(p)) return;
    fd_batch_t *t = x->sealed;
    x->sealed = x->cur;
    x->cur = t;
    x->sealed_next = x->pos;
    x->sealed_max_ts = x->max_ts;
    x->sealed_dlq = x->cur_dlq;
    x->cur_dlq = 0;
    x->sealed_tally = x->cur_tally;
    memset(&x->cur_tally, 0, sizeof x->cur_tally);
    x->cur_seq++;
    x->state = ST_WAIT_DLQ;
    if (x->sealed_dlq == 0) send_sealed(p, x);
}

void fd_pipeline_dlq_done(void *ud, uint64_t tok, int status) {
    fd_pipeline_t *p = ud;
    part_t *x = ctx_part(p, tok);
    if (!x) return;
    if (status != 0) {
        resync(p, x, "dlq_failed"); /* the message is read and sent again */
        return;
    }
    uint32_t seq = (uint32_t)(tok & 0xFFFFFF);
    if (seq == (x->cur_seq & 0xFFFFFF)) {
        x->cur_dlq--;
    } else if (x->state == ST_WAIT_DLQ && seq == ((x->cur_seq - 1) & 0xFFFFFF)) {
        if (--x->sealed_dlq == 0) send_sealed(p, x);
    }
}

/* A full dead-letter queue pauses every partition (the queue is shared)
 * until the kept dead letters are handed over: back-pressure, not a
 * failure, so nothing is resynced and nothing is read twice. */
static void dlq_pause_update(fd_pipeline_t *p) {
    int full = p->dlq_ops && p->dlq_ops->backlog(p->dlq) > 0;
    if (full == p->dlq_full) return;
    p->dlq_full = full;
    if (full)
        fd_log_repeat(p->log, FD_LOG_WARN, "pipeline|dlq_full",
                      "dead-letter queue full: input paused until it drains", "waiting=%d",
                      p->dlq_ops->backlog(p->dlq));
    for (int i = 0; i < p->nparts; i++) reconcile_pause(p, &p->parts[i]);
}

/* ---- messages ------------------------------------------------------------ */

static void reject(fd_pipeline_t *p, part_t *x, const void *payload, size_t len, int64_t offset,
                   fd_reason_t r, const char *field) {
    x->cur_tally.rejects[r]++;
    fd_log_limited(p->log, FD_LOG_WARN, "message rejected",
                   "reason=%s field=%s topic=\"%s\" partition=%d offset=%" PRId64,
                   fd_reason_name(r), field, x->topic, (int)x->partition, offset);
    if (!p->dlq_ops) return;
    char detail[128];
    snprintf(detail, sizeof detail, "%s%s%s", fd_reason_name(r), strcmp(field, "-") ? " at " : "",
             strcmp(field, "-") ? field : "");
    uint64_t tok = make_token(part_index(p, x), x->gen, x->cur_seq);
    if (p->dlq_ops->send(p->dlq, payload, len, fd_reason_name(r), field, detail, x->topic,
                         x->partition, offset, tok) == 0) {
        x->cur_dlq++;
        if (!p->dlq_full) dlq_pause_update(p);
    } else {
        resync(p, x, "dlq_send_failed");
    }
}

void fd_pipeline_message(fd_pipeline_t *p, int src_key, int32_t partition, int64_t offset,
                         const void *payload, size_t len) {
    part_t *x = find(p, src_key, partition);
    if (!x || !x->assigned || x->syncing || x->halted || p->stopping) return;
    if (offset < x->pos) return; /* fetched before a seek: stale */
    x->pos = offset + 1;
    fd_event_t ev;
    const char *field = "-";
    fd_reason_t r = fd_event_parse(p->parser, payload, len, x->type, fd_clock_wall_ms(), &ev, &field);
    if (r == FD_OK) {
        int late = fd_watermark_observe(&x->max_ts, p->conf->lateness_s * 1000, ev.ts_ms);
        if (late && p->conf->late_policy == FD_LATE_DLQ) {
            r = FD_R_LATE;
            field = "ts";
        } else {
            int rc = fd_agg_add(p->agg, x->cur, &ev, late);
            if (rc < 0) {
                fd_log(p->log, FD_LOG_ERROR, "aggregation failed", "error=%d", rc);
                resync(p, x, "aggregate_failed");
                return;
            }
            x->cur_tally.accepted++;
            x->cur_tally.late += (uint64_t)late;
            if (fd_batch_events(x->cur) >= (uint64_t)p->conf->flush_max_events) {
                maybe_flush(p, x);
                reconcile_pause(p, x);
            }
        }
    }
    if (r != FD_OK) reject(p, x, payload, len, offset, r, field);
}

/* ---- assignment ---------------------------------------------------------- */

int fd_pipeline_add_part(fd_pipeline_t *p, int src_key, int32_t partition, const char *topic,
                         fd_event_type_t type) {
    part_t *x = find_or_add(p, src_key, partition, topic, type);
    if (!x) return -ENOMEM;
    x->assigned = 1;
    x->syncing = 1;
    x->paused = 1; /* the source starts paused */
    x->halted = x->script_errors = 0;
    drop_state(x);
    start_read(p, x);
    return 0;
}

static fd_event_type_t topic_type(const fd_pipeline_t *p, int ti) {
    return ti >= 0 && ti < p->conf->ntopics ? p->conf->topics[ti].type : FD_TYPE_NONE;
}

int fd_pipeline_assign(fd_pipeline_t *p, int n, const int *src_key, const int32_t *partitions,
                       int64_t *offsets) {
    const char **fields = calloc((size_t)n + 1, sizeof(char *));
    int64_t *max_ts = calloc((size_t)n + 1, sizeof(int64_t));
    part_t **xs = calloc((size_t)n + 1, sizeof(part_t *));
    int known = -1;
    if (!fields || !max_ts || !xs) goto out;
    for (int i = 0; i < n; i++) {
        const char *topic = src_key[i] >= 0 ? p->conf->topics[src_key[i]].name : "?";
        xs[i] = find_or_add(p, src_key[i], partitions[i], topic, topic_type(p, src_key[i]));
        if (!xs[i]) goto out;
        fields[i] = xs[i]->field;
    }
    char err[256];
    known =
        p->sink_ops->read_offsets_sync(p->sink, fields, n, offsets, max_ts, 2000, err, sizeof err);
    if (known < 0)
        fd_log(p->log, FD_LOG_WARN, "offsets unknown at assignment, partitions wait for redis",
               "error=\"%s\"", err);
    for (int i = 0; i < n; i++) {
        part_t *x = xs[i];
        x->assigned = 1;
        x->halted = x->script_errors = 0;
        drop_state(x);
        x->reading = 0;
        if (known == 0) {
            if (offsets[i] < 0 && x->stored >= 0) state_lost(p, x);
            x->syncing = 0;
            x->paused = 0;
            x->stored = offsets[i];
            x->pos = x->flushed_pos = offsets[i] < 0 ? 0 : offsets[i];
            x->max_ts = max_ts[i];
        } else {
            x->syncing = 1;
            x->paused = 1; /* the source pauses partitions assigned without offsets */
        }
    }
out:
    free(fields);
    free(max_ts);
    free(xs);
    return known;
}

void fd_pipeline_revoke(fd_pipeline_t *p, int n, const int *src_key, const int32_t *partitions) {
    for (int i = 0; i < n; i++) {
        part_t *x = find(p, src_key[i], partitions[i]);
        if (!x) continue;
        drop_state(x); /* the next owner starts from Redis's offset */
        x->assigned = 0;
        x->halted = x->script_errors = 0;
        x->syncing = x->reading = x->paused = 0;
    }
    if (p->stopping) maybe_finish(p);
}

static void cb_message(void *p, int key, int32_t part, int64_t off, const void *payload, size_t len) {
    fd_pipeline_message(p, key, part, off, payload, len);
}
static int cb_assign(void *p, int n, const int *key, const int32_t *part, int64_t *off) {
    return fd_pipeline_assign(p, n, key, part, off);
}
static void cb_revoke(void *p, int n, const int *key, const int32_t *part) {
    fd_pipeline_revoke(p, n, key, part);
}

const fd_source_cbs_t *fd_pipeline_source_cbs(void) {
    static const fd_source_cbs_t cbs = {cb_message, cb_assign, cb_revoke};
    return &cbs;
}

/* ---- timers and lifecycle -------------------------------------------------- */

void fd_pipeline_sink_state(void *ud, int ready) {
    fd_pipeline_t *p = ud;
    for (int i = 0; i < p->nparts; i++) {
        part_t *x = &p->parts[i];
        if (!x->assigned) continue;
        if (!ready) {
            resync(p, x, "redis_down");
        } else if (x->syncing) {
            x->reading = 0;
            start_read(p, x);
        }
    }
}

/* Flushes are staggered: the flush timer ticks FLUSH_SLOTS times per
 * flush_interval_ms (every floor(interval / 8) ms, so an interval that is
 * not a multiple of 8 ms is served slightly early) and each tick serves the
 * partitions of one slot (partition index mod FLUSH_SLOTS), so every
 * partition still flushes once per interval, but Redis gets the work in
 * small pieces: a partition's flush no longer queues behind every other
 * partition's, which was much of the produce-to-visible latency under load
 * (bench/latency.sh). */
#define FLUSH_SLOTS 8

void fd_pipeline_tick(fd_pipeline_t *p) {
    int slot = (int)(p->ticks++ % FLUSH_SLOTS);
    uint64_t pending = 0;
    for (int i = 0; i < p->nparts; i++) pending += fd_batch_events(p->parts[i].cur);
    p->pending = pending;
    int was = p->backpressure;
    if (!p->backpressure && pending > (uint64_t)p->conf->max_pending_events) {
        p->backpressure = 1;
        fd_log(p->log, FD_LOG_WARN, "pausing input: pending events over max_pending_events",
               "pending=%" PRIu64, pending);
    } else if (p->backpressure && pending <= (uint64_t)p->conf->max_pending_events / 2) {
        p->backpressure = 0;
    }
    if (p->dlq_full) dlq_pause_update(p);
    for (int i = 0; i < p->nparts; i++) {
        part_t *x = &p->parts[i];
        if (!x->assigned) continue;
        if (i % FLUSH_SLOTS == slot) {
            if (x->syncing) start_read(p, x);
            maybe_flush(p, x);
        }
        /* backpressure pauses and resumes every partition at once */
        if (i % FLUSH_SLOTS == slot || p->backpressure != was) reconcile_pause(p, x);
    }
    reconcile_hold(p); /* also when the partition that was full is gone */
    if (p->src && p->src->exhausted && !p->stopping && p->src->exhausted(p->src_ud)) {
        int synced = 1;
        for (int i = 0; i < p->nparts; i++)
            if (p->parts[i].assigned && p->parts[i].syncing) synced = 0;
        if (synced) fd_pipeline_stop(p);
    }
    if (p->round_cb && slot == 0) { /* once per flush interval */
        fd_pipeline_stats_t st;
        fd_pipeline_stats(p, &st);
        p->round_cb(p->round_ud, &st);
    }
}

static void flush_timer_cb(uv_timer_t *t) { fd_pipeline_tick(t->data); }

void fd_pipeline_stats(const fd_pipeline_t *p, fd_pipeline_stats_t *st) {
    memset(st, 0, sizeof *st);
    st->accepted = p->accepted;
    st->late = p->late;
    memcpy(st->rejects, p->rejects, sizeof st->rejects);
    st->flushes = p->flushes;
    st->resyncs = p->resyncs;
    st->lost_offsets = p->lost_offsets;
    st->lost_schema = p->lost_schema;
    st->pending = p->pending;
    for (int i = 0; i < p->nparts; i++) {
        st->assigned += p->parts[i].assigned;
        st->syncing += p->parts[i].assigned && p->parts[i].syncing;
        st->halted += p->parts[i].assigned && p->parts[i].halted;
    }
    st->backpressure = p->backpressure;
    memcpy(st->flush_hist, p->flush_hist, sizeof st->flush_hist);
    st->flush_sum_s = p->flush_sum_s;
}

/* What a state check asked about: partition index and generation of each
 * field, so an answer about a partition resynced meanwhile is ignored. */
typedef struct {
    fd_pipeline_t *p;
    int n;
    uint64_t tok[];
} checkctx_t;

static void check_done(void *ud, int status, int schema_missing, const int *present) {
    checkctx_t *c = ud;
    fd_pipeline_t *p = c->p;
    p->check_running = 0;
    if (status == FD_SINK_OK && schema_missing) {
        p->lost_schema++;
        fd_log(p->log, FD_LOG_ERROR, "redis state lost: schema key vanished, rewritten",
               "key=\"%s:schema\"", p->conf->prefix);
    }
    for (int i = 0; status == FD_SINK_OK && i < c->n; i++) {
        part_t *x = ctx_part(p, c->tok[i]);
        /* a flush may have moved stored meanwhile; absent is absent either way */
        if (x && !present[i] && !x->syncing && x->stored >= 0) resync(p, x, "offset_vanished");
    }
    free(c);
}

/* An idle partition sends no flush, so nothing else would notice that Redis
 * lost its data: once per snapshot interval ask Redis whether the schema key
 * and the stored offsets of this process's partitions are still there. */
void fd_pipeline_check_state(fd_pipeline_t *p) {
    if (p->check_running || p->stopping || !sink_ready(p)) return;
    int n = 0;
    for (int i = 0; i < p->nparts; i++)
        n += p->parts[i].assigned && !p->parts[i].syncing && p->parts[i].stored >= 0;
    checkctx_t *c = malloc(sizeof(*c) + (size_t)n * sizeof(uint64_t));
    const char **fields = malloc(((size_t)n + 1) * sizeof(char *));
    if (!c || !fields) goto fail;
    c->p = p;
    c->n = 0;
    for (int i = 0; i < p->nparts; i++) {
        part_t *x = &p->parts[i];
        if (!x->assigned || x->syncing || x->stored < 0) continue;
        fields[c->n] = x->field;
        c->tok[c->n++] = make_token(i, x->gen, 0);
    }
    if (p->sink_ops->check_state(p->sink, fields, c->n, check_done, c) < 0) goto fail;
    p->check_running = 1;
    free(fields);
    return;
fail:
    free(c);
    free(fields);
}

static int all_flushed(const fd_pipeline_t *p) {
    for (int i = 0; i < p->nparts; i++) {
        const part_t *x = &p->parts[i];
        if (x->assigned && !x->syncing && !x->halted &&
            (x->state != ST_IDLE || x->pos != x->flushed_pos))
            return 0;
    }
    return !p->dlq_ops || p->dlq_ops->outstanding(p->dlq) == 0;
}

static void finish(fd_pipeline_t *p) {
    if (p->stopped) return;
    p->stopped = 1;
    uv_timer_stop(&p->flush_timer);
    uv_timer_stop(&p->stop_timer);
    if (p->finish_cb) p->finish_cb(p->finish_ud);
    uv_stop(p->loop);
}

/* all_flushed() passes over partitions that are resyncing: whatever they had
 * read since their stored offset was dropped, and a stopped source does not
 * read it again. Such a stop did not do its final flush: say so and exit 1
 * (the next run re-reads that input from the stored offsets). */
static int final_flush_report(fd_pipeline_t *p) {
    int syncing = 0;
    const char *first = "";
    for (int i = 0; i < p->nparts; i++)
        if (p->parts[i].assigned && p->parts[i].syncing && !syncing++) first = p->parts[i].field;
    if (syncing == 0 && p->stop_dropped == 0) return 0;
    fd_log(p->log,
           FD_LOG_ERROR, "final flush did not happen: input not written to redis; it is re-read from the stored offsets by the next run",
           "partitions_not_synced=%d partitions_dropped=%d first=\"%s\" redis_up=%d", syncing,
           p->stop_dropped, first, sink_ready(p));
    return 1;
}

static void maybe_finish(fd_pipeline_t *p) {
    if (!p->stopping || p->stopped) return;
    for (int i = 0; i < p->nparts; i++) maybe_flush(p, &p->parts[i]);
    if (all_flushed(p)) {
        /* with Redis up, a partition resyncing (fenced just before the stop)
         * learns its offset within a round trip: wait for it (bounded by the
         * stop deadline) rather than report it unflushed */
        for (int i = 0; i < p->nparts; i++)
            if (p->parts[i].assigned && p->parts[i].syncing && sink_ready(p)) return;
        p->exit_code = final_flush_report(p);
        for (int i = 0; i < p->nparts; i++)
            if (p->parts[i].assigned && p->parts[i].halted)
                p->exit_code = 1; /* its input is not all flushed */
        finish(p);
    }
}

static void stop_tick(uv_timer_t *t) {
    fd_pipeline_t *p = t->data;
    maybe_finish(p);
    if (!p->stopped && fd_clock_wall_ms() > p->stop_deadline_ms) {
        fd_log(p->log, FD_LOG_ERROR,
               "final flush incomplete at deadline; unflushed input will be re-read", NULL);
        p->exit_code = 1;
        finish(p);
    }
}

void fd_pipeline_stop(fd_pipeline_t *p) {
    if (p->stopping) return;
    p->stopping = 1;
    fd_log(p->log, FD_LOG_INFO, "stopping: final flush", NULL);
    if (p->src && p->src->stop) p->src->stop(p->src_ud);
    p->stop_deadline_ms = fd_clock_wall_ms() + 30000;
    p->exit_code = 1;
    uv_timer_start(&p->stop_timer, stop_tick, 20, 20);
    maybe_finish(p);
}

fd_pipeline_t *fd_pipeline_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                               fd_parser_t *parser, fd_agg_t *agg, char *err, size_t errlen) {
    fd_pipeline_t *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->loop = loop;
    p->conf = c;
    p->log = log;
    p->parser = parser;
    p->agg = agg;
    uv_timer_init(loop, &p->flush_timer);
    uv_timer_init(loop, &p->stop_timer);
    p->flush_timer.data = p->stop_timer.data = p;
    p->handles_open = 2;
    uint64_t tick_ms = (uint64_t)c->flush_interval_ms / FLUSH_SLOTS;
    uv_timer_start(&p->flush_timer, flush_timer_cb, tick_ms, tick_ms);
    return p;
}

void fd_pipeline_set_sink(fd_pipeline_t *p, const fd_sink_ops_t *ops, void *sink) {
    p->sink_ops = ops;
    p->sink = sink;
}

void fd_pipeline_set_dlq(fd_pipeline_t *p, const fd_dlq_ops_t *ops, void *dlq) {
    p->dlq_ops = ops;
    p->dlq = dlq;
}

void fd_pipeline_set_round_cb(fd_pipeline_t *p, void (*cb)(void *ud, const fd_pipeline_stats_t *st),
                              void *ud) {
    p->round_cb = cb;
    p->round_ud = ud;
}

void fd_pipeline_set_finish_cb(fd_pipeline_t *p, void (*cb)(void *ud), void *ud) {
    p->finish_cb = cb;
    p->finish_ud = ud;
}

void fd_pipeline_set_source(fd_pipeline_t *p, const fd_source_ops_t *ops, void *src) {
    p->src = ops;
    p->src_ud = src;
}

int fd_pipeline_exit_code(const fd_pipeline_t *p) { return p->exit_code; }

void fd_pipeline_log_totals(const fd_pipeline_t *p) {
    char buf[1024];
    size_t n = 0;
    uint64_t total = 0;
    for (int r = 1; r < FD_R__COUNT; r++) {
        total += p->rejects[r];
        if (p->rejects[r] && n < sizeof buf)
            n += (size_t)snprintf(buf + n, sizeof buf - n, " rejected_%s=%" PRIu64,
                                  fd_reason_name((fd_reason_t)r), p->rejects[r]);
    }
    buf[n < sizeof buf ? n : sizeof buf - 1] = 0;
    fd_log(p->log, FD_LOG_INFO, "totals",
           "accepted=%" PRIu64 " late=%" PRIu64 " rejected=%" PRIu64 " flushes=%" PRIu64
           " resyncs=%" PRIu64 "%s",
           p->accepted, p->late, total, p->flushes, p->resyncs, buf);
}

static void on_handle_close(uv_handle_t *h) {
    fd_pipeline_t *p = h->data;
    if (--p->handles_open == 0) free(p);
}

void fd_pipeline_free(fd_pipeline_t *p) {
    if (!p) return;
    for (int i = 0; i < p->nparts; i++) {
        fd_batch_free(p->parts[i].cur);
        fd_batch_free(p->parts[i].sealed);
    }
    free(p->parts);
    if (!p->handles_open) {
        free(p);
        return;
    }
    uv_close((uv_handle_t *)&p->flush_timer, on_handle_close);
    uv_close((uv_handle_t *)&p->stop_timer, on_handle_close);
}
