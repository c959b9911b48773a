/*
 * test_pipeline.c — the per-partition state machine without a broker or a
 * Redis: a fake source, a fake sink that fences like FD_LUA_FLUSH, a fake DLQ.
 * Every test ends by checking the effectively-once invariant: for each
 * partition, the events applied in the fake Redis are exactly the accepted
 * events below its stored offset. Completions are held until the test
 * releases them, so every interleaving is explicit; the loop never runs
 * with a timer due (flush_interval_ms is 1 s), so nothing fires behind a
 * test's back: fd_pipeline_tick() stands in for the flush timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "pipeline/pipeline.h"
#include "sinks/sink.h"
#include "aggregators/agg.h"
#include "model/event.h"
#include "conf/conf.h"
#include "base/clock.h"

/* ---- fake sink ------------------------------------------------------------ */
typedef struct {
    int64_t stored; /* offset in "Redis", -1 none */
    uint64_t applied; /* events applied by flushes */
    int64_t max_ts;
} fake_part_t;

typedef struct {
    fd_sink_flush_cb cb;
    void *ud;
    int64_t expected, next;
    uint64_t events;
    int n;
} held_flush_t;
typedef struct {
    fd_sink_offset_cb cb;
    void *ud;
    int idx;
} held_read_t;

typedef struct {
    int ready;
    fake_part_t part[4]; /* field "t:N" → part[N] */
    /* held completions */
    held_flush_t flush[8];
    int nflush;
    held_read_t read[8];
    int nread;
    int flush_rc; /* what flush() returns: 0 or -ENOTCONN */
    int sync_rc; /* what read_offsets_sync() returns: 0 or -EIO */
    fd_sink_check_cb check_cb; /* a held state check */
    void *check_ud;
    int check_n, check_idx[8];
} fake_sink_t;

static int part_of(const char *field) { return field[strlen(field) - 1] - '0'; }
static int s_ready(const void *s) { return ((const fake_sink_t *)s)->ready; }
static int s_flush(void *sv, const char *field, int64_t expected, int64_t next, int64_t max_ts,
                   const fd_batch_t *b, fd_sink_flush_cb cb, void *ud) {
    fake_sink_t *s = sv;
    if (s->flush_rc) return s->flush_rc; /* callback never fires */
    s->flush[s->nflush++] =
        (held_flush_t){cb, ud, expected, next, fd_batch_events(b), part_of(field)};
    return 0;
}
static int s_read(void *sv, const char *field, fd_sink_offset_cb cb, void *ud) {
    fake_sink_t *s = sv;
    s->read[s->nread++] = (held_read_t){cb, ud, part_of(field)};
    return 0;
}
static int s_read_sync(void *sv, const char *const *fields, int n, int64_t *off, int64_t *max_ts,
                       int timeout_ms, char *err, size_t errlen) {
    fake_sink_t *s = sv;
    (void)timeout_ms;
    if (s->sync_rc) {
        snprintf(err, errlen, "fake: down");
        return s->sync_rc;
    }
    for (int i = 0; i < n; i++) {
        off[i] = s->part[part_of(fields[i])].stored;
        max_ts[i] = INT64_MIN;
    }
    return 0;
}
static int s_check(void *sv, const char *const *fields, int n, fd_sink_check_cb cb, void *ud) {
    fake_sink_t *s = sv;
    s->check_cb = cb;
    s->check_ud = ud;
    s->check_n = n;
    for (int i = 0; i < n; i++) s->check_idx[i] = part_of(fields[i]);
    return 0;
}
static const char *s_last_error(const void *s) {
    (void)s;
    return "fake: refused";
}
static const fd_sink_ops_t fake_sink_ops = {s_ready,     s_flush, s_read,
                                            s_read_sync, s_check, s_last_error};

/* Answers the held state check from what the fake Redis holds now. */
static void complete_check(fake_sink_t *s) {
    int present[8];
    for (int i = 0; i < s->check_n; i++) present[i] = s->part[s->check_idx[i]].stored >= 0;
    fd_sink_check_cb cb = s->check_cb;
    s->check_cb = NULL;
    cb(s->check_ud, FD_SINK_OK, 0, present);
}

/* Completes the oldest held flush with `status`; FD_SINK_OK is applied only if it passes the fence. */
static void complete_flush(fake_sink_t *s, int status) {
    held_flush_t f = s->flush[0];
    memmove(&s->flush[0], &s->flush[1], (size_t)--s->nflush * sizeof f);
    fake_part_t *p = &s->part[f.n];
    if (status == FD_SINK_OK && f.expected != p->stored)
        status = FD_SINK_EFENCED; /* the Lua fence */
    if (status == FD_SINK_OK) {
        p->stored = f.next;
        p->applied += f.events;
    }
    f.cb(f.ud, status);
}
static void complete_read(fake_sink_t *s, int status) {
    held_read_t r = s->read[0];
    memmove(&s->read[0], &s->read[1], (size_t)--s->nread * sizeof r);
    r.cb(r.ud, status, s->part[r.idx].stored, s->part[r.idx].max_ts);
}

/* ---- fake DLQ and source -------------------------------------------------- */
typedef struct {
    uint64_t tok[16];
    int n;
    int send_rc;
    int out;
    int backlog;
} fake_dlq_t;
static int d_send(void *dv, const void *pl, size_t len, const char *reason, const char *field,
                  const char *detail, const char *topic, int32_t part, int64_t off, uint64_t tok) {
    fake_dlq_t *d = dv;
    (void)pl;
    (void)len;
    (void)reason;
    (void)field;
    (void)detail;
    (void)topic;
    (void)part;
    (void)off;
    if (d->send_rc) return d->send_rc;
    d->tok[d->n++] = tok;
    d->out++;
    return 0;
}
static int d_outstanding(const void *d) { return ((const fake_dlq_t *)d)->out; }
static int d_backlog(const void *d) { return ((const fake_dlq_t *)d)->backlog; }
static const fd_dlq_ops_t fake_dlq_ops = {d_send, d_outstanding, d_backlog};
static void ack_dlq(fd_pipeline_t *p, fake_dlq_t *d, int i, int status) {
    uint64_t tok = d->tok[i];
    d->out--;
    fd_pipeline_dlq_done(p, tok, status);
}

typedef struct {
    int paused[4], seeks, committed_n;
    int64_t seek_to[4], committed[4];
    int stopped;
} fake_src_t;
/* a call the pipeline made: one more of its kind, the value it gave for the partition */
static int note(int *n, int64_t *at, int32_t p, int64_t v) {
    (*n)++;
    at[p] = v;
    return 0;
}
static int f_pause(void *s, int k, int32_t p, int pause) {
    ((fake_src_t *)s)->paused[p] = pause;
    return 0;
}
static int f_seek(void *s, int k, int32_t p, int64_t o) {
    fake_src_t *f = s;
    return note(&f->seeks, f->seek_to, p, o);
}
static void f_commit(void *s, int k, int32_t p, int64_t o) {
    note(&((fake_src_t *)s)->committed_n, ((fake_src_t *)s)->committed, p, o);
}
static void f_stop(void *s) { ((fake_src_t *)s)->stopped = 1; }
static const fd_source_ops_t fake_src_ops = {f_pause, f_seek, f_commit, f_stop, NULL, NULL};

/* ---- fixture -------------------------------------------------------------- */
typedef struct {
    uv_loop_t loop;
    fd_conf_t conf;
    fd_log_t log;
    fd_parser_t *parser;
    fd_agg_t *agg;
    fd_pipeline_t *p;
    fake_sink_t sink;
    fake_dlq_t dlq;
    fake_src_t src;
    uint64_t accepted_below[4][64]; /* accepted events per partition, by offset (for the invariant) */
} fx_t;

#define GOOD \
    "{\"event_id\":\"e%d\",\"type\":\"exposure\",\"ts\":%lld,\"user_id\":\"u1\",\"product_id\":" \
    "\"p1\"}"
#define BAD "{not json"

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    char err[256];
    uv_loop_init(&f->loop);
    fd_conf_defaults(&f->conf);
    assert_int_equal(fd_conf_set(&f->conf, "kafka.topics", "{\"t\":\"exposure\"}", err, sizeof err),
                     0);
    assert_int_equal(fd_conf_set(&f->conf, "flush_max_events", "1000", err, sizeof err), 0);
    assert_int_equal(fd_conf_finalize(&f->conf, err, sizeof err), 0);
    fd_log_init(&f->log, "error", 0);
    fd_event_limits_t lim = {
        .max_message_bytes = 1 << 20, .max_age_ms = INT64_MAX / 4, .max_future_ms = INT64_MAX / 4};
    f->parser = fd_parser_new(&lim, err, sizeof err);
    f->agg = fd_agg_new(&f->conf, err, sizeof err);
    f->sink.ready = 1;
    for (int i = 0; i < 4; i++) f->sink.part[i].stored = -1, f->sink.part[i].max_ts = INT64_MIN;
    f->p = fd_pipeline_new(&f->loop, &f->conf, &f->log, f->parser, f->agg, err, sizeof err);
    fd_pipeline_set_sink(f->p, &fake_sink_ops, &f->sink);
    fd_pipeline_set_dlq(f->p, &fake_dlq_ops, &f->dlq);
    fd_pipeline_set_source(f->p, &fake_src_ops, &f->src);
    *state = f;
    return 0;
}
static int teardown(void **state) {
    fx_t *f = *state;
    /* like the real sink when it is freed: every held callback fires, failed */
    f->sink.ready = 0;
    while (f->sink.nflush) complete_flush(&f->sink, FD_SINK_EFAILED);
    while (f->sink.nread) complete_read(&f->sink, FD_SINK_EFAILED);
    if (f->sink.check_cb) complete_check(&f->sink);
    fd_pipeline_free(f->p);
    fd_agg_free(f->agg);
    fd_parser_free(f->parser);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns at once if the pipeline called uv_stop */
    uv_run(&f->loop, UV_RUN_DEFAULT); /* lets the closing timers finish */
    uv_loop_close(&f->loop);
    fd_conf_release(&f->conf);
    free(f);
    return 0;
}

static void assign(fx_t *f, int part) { /* Kafka-style: offsets read synchronously */
    int key = 0;
    int32_t pa = part;
    int64_t off;
    assert_int_equal(fd_pipeline_assign(f->p, 1, &key, &pa, &off), 0);
}
static void msg(fx_t *f, int part, int64_t off, int good) {
    char buf[256];
    long long ts = (long long)fd_clock_wall_ms() - 60000 + off; /* recent: not too old, not late */
    int n = good ? snprintf(buf, sizeof buf, GOOD, (int)off, ts) : snprintf(buf, sizeof buf, BAD);
    fd_pipeline_message(f->p, 0, part, off, buf, (size_t)n);
    if (good) f->accepted_below[part][off] = 1;
}
static void round_(fx_t *f) {
    for (int i = 0; i < 8; i++) fd_pipeline_tick(f->p);
} /* every slot once */

/* Partition 0 assigned (nothing stored), one message at offset 0 (good:
 * its flush is held; rejected: its dead letter is), then a round. */
static void one_message(fx_t *f, int good) {
    assign(f, 0);
    msg(f, 0, 0, good);
}
static void one_sealed(fx_t *f, int good) {
    one_message(f, good);
    round_(f);
}

static void assert_resyncs(fx_t *f, uint64_t n) {
    fd_pipeline_stats_t st;
    fd_pipeline_stats(f->p, &st);
    assert_int_equal(st.resyncs, n);
}

/* effectively once: applied == accepted events below stored, for every partition */
static void invariant(fx_t *f) {
    for (int p = 0; p < 4; p++) {
        uint64_t want = 0;
        for (int64_t o = 0; o < f->sink.part[p].stored && o < 64; o++)
            want += f->accepted_below[p][o];
        assert_int_equal(f->sink.part[p].applied, want);
    }
}

/* ---- cases ----------------------------------------------------------------- */
static void test_flush_ok(void **state) {
    fx_t *f = *state;
    assign(f, 0);
    for (int o = 0; o < 3; o++) msg(f, 0, o, 1);
    round_(f);
    assert_int_equal(f->sink.nflush, 1);
    assert_int_equal(f->sink.flush[0].expected, -1);
    assert_int_equal(f->sink.flush[0].next, 3);
    complete_flush(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.committed[0], 3);
    round_(f);
    assert_int_equal(f->sink.nflush, 0); /* nothing new: no empty flush */
    fd_pipeline_stats_t st;
    fd_pipeline_stats(f->p, &st);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.resyncs, 0);
    invariant(f);
}

static void test_fenced_resyncs_and_rereads(void **state) {
    fx_t *f = *state;
    assign(f, 0);
    msg(f, 0, 0, 1);
    msg(f, 0, 1, 1);
    round_(f);
    f->sink.part[0].stored = 1; /* another instance moved the offset meanwhile */
    f->sink.part[0].applied = f->accepted_below[0][0];
    complete_flush(&f->sink, FD_SINK_OK); /* fence turns it into FD_SINK_EFENCED */
    assert_int_equal(f->src.paused[0], 1); /* syncing: paused */
    assert_int_equal(f->sink.nread, 1);
    complete_read(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.seek_to[0], 1);
    assert_int_equal(f->src.paused[0], 0);
    msg(f, 0, 0, 1); /* stale (before the seek): ignored */
    msg(f, 0, 1, 1);
    msg(f, 0, 2, 1);
    round_(f);
    assert_int_equal(f->sink.flush[0].expected, 1);
    assert_int_equal(f->sink.flush[0].events, 2);
    complete_flush(&f->sink, FD_SINK_OK);
    invariant(f);
}

static void test_error_resyncs_without_commit(void **state) {
    fx_t *f = *state;
    one_sealed(f, 1);
    complete_flush(&f->sink, FD_SINK_EFAILED); /* unknown whether applied */
    assert_int_equal(f->src.committed_n, 0);
    assert_int_equal(f->sink.nread, 1); /* offset re-read from "Redis" */
    complete_read(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.seek_to[0], -1); /* nothing stored: seek to the beginning, pos 0 */
    invariant(f);
}

static void test_flush_not_sent(void **state) {
    fx_t *f = *state;
    one_message(f, 1);
    f->sink.flush_rc = -ENOTCONN;
    round_(f);
    assert_resyncs(f, 1);
    invariant(f);
}

static void test_redis_down_and_up(void **state) {
    fx_t *f = *state;
    assign(f, 0);
    assign(f, 1);
    msg(f, 0, 0, 1);
    msg(f, 1, 0, 1);
    round_(f); /* two flushes in flight */
    f->sink.ready = 0;
    fd_pipeline_sink_state(f->p, 0); /* both resync; nothing read while down */
    assert_int_equal(f->sink.nread, 0);
    complete_flush(&f->sink,
                   FD_SINK_OK); /* stale generation: applied in "Redis", ignored by the pipeline */
    assert_int_equal(f->src.committed_n, 0);
    f->sink.ready = 1;
    fd_pipeline_sink_state(f->p, 1);
    assert_int_equal(f->sink.nread, 2);
    complete_read(&f->sink, FD_SINK_OK);
    complete_read(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.seek_to[0], 1); /* the applied flush is not re-applied */
    complete_flush(&f->sink, FD_SINK_EFAILED);
    invariant(f);
}

static void test_seal_waits_for_dlq(void **state) {
    fx_t *f = *state;
    assign(f, 0);
    msg(f, 0, 0, 1);
    msg(f, 0, 1, 0 /* rejected → DLQ */);
    msg(f, 0, 2, 1);
    assert_int_equal(f->dlq.n, 1);
    round_(f); /* sealed, waiting for the DLQ ack */
    assert_int_equal(f->sink.nflush, 0);
    msg(f, 0, 3, 0); /* a reject in the next batch */
    ack_dlq(f->p, &f->dlq, 1, 0); /* ack of the *next* batch's write: no flush yet */
    assert_int_equal(f->sink.nflush, 0);
    ack_dlq(f->p, &f->dlq, 0, 0); /* the sealed batch's write acked → flush */
    assert_int_equal(f->sink.nflush, 1);
    assert_int_equal(f->sink.flush[0].next, 3); /* offsets up to the seal only */
    complete_flush(&f->sink, FD_SINK_OK);
    /* the next batch's dead letter was acked before its seal: it counts */
    round_(f);
    assert_int_equal(f->sink.nflush, 1);
    assert_int_equal(f->sink.flush[0].expected, 3);
    assert_int_equal(f->sink.flush[0].next, 4);
    complete_flush(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.committed[0], 4);
    invariant(f);
}

/* A flush that completes after its partition resynced and sent a newer
 * flush belongs to an older generation: its success must not be taken for
 * the newer flush's (it would commit an offset the newer one never wrote). */
static void test_stale_flush_after_reseal(void **state) {
    fx_t *f = *state;
    one_sealed(f, 1); /* F1 in flight: -1 -> 1 */
    f->sink.ready = 0;
    fd_pipeline_sink_state(f->p, 0); /* resync while F1 is out */
    f->sink.ready = 1;
    fd_pipeline_sink_state(f->p, 1);
    complete_read(&f->sink, FD_SINK_OK); /* F1 not applied yet: back to the beginning */
    msg(f, 0, 0, 1);
    round_(f); /* F2 in flight: -1 -> 1, the same shape as F1 */
    assert_int_equal(f->sink.nflush, 2);
    complete_flush(&f->sink, FD_SINK_OK); /* F1 lands in "Redis" */
    assert_int_equal(f->src.committed_n, 0); /* and is ignored by the pipeline */
    complete_flush(&f->sink, FD_SINK_OK); /* F2 is fenced by F1's offset */
    assert_int_equal(f->src.committed_n, 0);
    assert_int_equal(f->sink.nread, 1);
    complete_read(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.seek_to[0], 1); /* continues after what F1 applied */
    invariant(f);
}

static void test_dlq_failure_resyncs(void **state) {
    fx_t *f = *state;
    one_sealed(f, 0);
    ack_dlq(f->p, &f->dlq, 0, FD_DLQ_EFAILED);
    assert_int_equal(f->sink.nflush, 0);
    assert_int_equal(f->sink.nread, 1); /* re-read, the message is delivered again */
    f->dlq.send_rc = -ENOBUFS; /* a send that fails at once also resyncs */
    complete_read(&f->sink, FD_SINK_OK);
    msg(f, 0, 0, 0);
    assert_resyncs(f, 2);
    invariant(f);
}

/* A message read again after resyncs (its dead letter failed, then a
 * flush failed) counts once in the totals, when the flush that stores its
 * offset succeeds; before that, not at all. */
static void test_counted_once_across_resyncs(void **state) {
    fx_t *f = *state;
    fd_pipeline_stats_t st;
    assign(f, 0);
    for (int reading = 0; reading < 3; reading++) {
        msg(f, 0, 0, 0); /* rejected */
        msg(f, 0, 1, 1); /* accepted */
        round_(f); /* sealed, waiting for its dead letter */
        ack_dlq(f->p, &f->dlq, f->dlq.n - 1, reading == 0 ? FD_DLQ_EFAILED : 0);
        if (reading > 0) complete_flush(&f->sink, reading == 1 ? FD_SINK_EFAILED : FD_SINK_OK);
        fd_pipeline_stats(f->p, &st);
        assert_int_equal(st.accepted, reading == 2 ? 1 : 0);
        assert_int_equal(st.rejects[FD_R_INVALID_JSON], reading == 2 ? 1 : 0);
        if (reading < 2) complete_read(&f->sink, FD_SINK_OK); /* resynced: read again */
    }
    assert_int_equal(st.resyncs, 2);
    assert_int_equal(f->src.committed[0], 2);
    invariant(f);
}

/* A flush that succeeds after its partition resynced (a later message's
 * dead letter failed while it was on its way) was applied, and its
 * messages are not read again: they count, once. */
static void test_stale_success_counted(void **state) {
    fx_t *f = *state;
    assign(f, 0);
    msg(f, 0, 0, 1);
    round_(f); /* its flush is on its way */
    f->dlq.send_rc = -ENOBUFS;
    msg(f, 0, 1, 0); /* rejected, its dead letter fails at once: resync */
    assert_resyncs(f, 1);
    complete_flush(&f->sink, FD_SINK_OK); /* stale for the partition, applied in Redis */
    complete_read(&f->sink, FD_SINK_OK); /* offset 1: offset 0 is not read again */
    f->dlq.send_rc = 0;
    msg(f, 0, 1, 0);
    round_(f);
    ack_dlq(f->p, &f->dlq, f->dlq.n - 1, 0);
    complete_flush(&f->sink, FD_SINK_OK);
    fd_pipeline_stats_t st;
    fd_pipeline_stats(f->p, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.rejects[FD_R_INVALID_JSON], 1);
    assert_int_equal(f->src.committed[0], 2);
    invariant(f);
}

static void test_stale_dlq_ack_after_resync(void **state) {
    fx_t *f = *state;
    one_sealed(f, 0);
    fd_pipeline_sink_state(f->p, 0); /* resync: generation moves on */
    ack_dlq(f->p, &f->dlq, 0, 0); /* old token: ignored */
    assert_int_equal(f->sink.nflush, 0);
    invariant(f);
}

static void test_full_batch_pauses_while_inflight(void **state) {
    fx_t *f = *state;
    f->conf.flush_max_events =
        2; /* below the table's minimum (100): set the field; the pipeline reads it live */
    assign(f, 0);
    msg(f, 0, 0, 1);
    msg(f, 0, 1, 1); /* full → sealed and sent at once */
    assert_int_equal(f->sink.nflush, 1);
    msg(f, 0, 2, 1);
    msg(f, 0, 3, 1); /* next batch full while one is in flight */
    assert_int_equal(f->src.paused[0], 1);
    complete_flush(&f->sink, FD_SINK_OK); /* flushes the full one, resumes */
    assert_int_equal(f->sink.nflush, 1);
    complete_flush(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.paused[0], 0);
    invariant(f);
}

static void test_stop_waits_for_final_flush(void **state) {
    fx_t *f = *state;
    one_message(f, 1);
    fd_pipeline_stop(f->p); /* seals and sends the final flush */
    assert_int_equal(f->src.stopped, 1);
    assert_int_equal(f->sink.nflush, 1);
    assert_int_equal(fd_pipeline_exit_code(f->p), 1); /* not done yet */
    complete_flush(&f->sink, FD_SINK_OK);
    assert_int_equal(fd_pipeline_exit_code(f->p), 0);
    invariant(f);
}

/* ---- the robustness paths ---------------------------------------------------- */

/* A flush script that refuses twice with no good flush in between halts the
 * partition: paused, counted, nothing re-sent, exit 1 on stop. */
static void test_script_error_twice_halts(void **state) {
    fx_t *f = *state;
    one_sealed(f, 1);
    complete_flush(&f->sink, FD_SINK_ESCRIPT); /* first: resync and retry */
    assert_int_equal(f->sink.nread, 1);
    complete_read(&f->sink, FD_SINK_OK);
    msg(f, 0, 0, 1);
    round_(f);
    assert_int_equal(f->sink.nflush, 1);
    complete_flush(&f->sink, FD_SINK_ESCRIPT); /* second: halted */
    fd_pipeline_stats_t st;
    fd_pipeline_stats(f->p, &st);
    assert_int_equal(st.halted, 1);
    assert_int_equal(f->src.paused[0], 1);
    assert_int_equal(f->sink.nread, 0); /* no resync: a retry cannot fix it */
    msg(f, 0, 1, 1); /* ignored while halted */
    f->accepted_below[0][1] = 0;
    round_(f);
    assert_int_equal(f->sink.nflush, 0);
    fd_pipeline_stop(f->p);
    assert_int_equal(fd_pipeline_exit_code(f->p), 1); /* its input is not all flushed */
    invariant(f);
}

/* A dead letter waiting for room in the producer queue pauses every
 * partition (back-pressure, not a resync) until the backlog drains. */
static void test_dlq_backlog_pauses_every_partition(void **state) {
    fx_t *f = *state;
    assign(f, 0);
    assign(f, 1);
    f->dlq.backlog = 1;
    msg(f, 0, 0, 0);
    assert_int_equal(f->src.paused[0], 1);
    assert_int_equal(f->src.paused[1], 1);
    f->dlq.backlog = 0;
    fd_pipeline_tick(f->p);
    assert_int_equal(f->src.paused[0], 0);
    assert_int_equal(f->src.paused[1], 0);
    assert_resyncs(f, 0);
    invariant(f);
}

/* Redis lost its data: the state check finds the stored offset gone, the
 * partition resyncs and starts over from the beginning, counted once. */
static void test_offset_vanished_resyncs(void **state) {
    fx_t *f = *state;
    one_sealed(f, 1);
    complete_flush(&f->sink, FD_SINK_OK);
    f->sink.part[0].stored = -1; /* FLUSHALL */
    f->sink.part[0].applied = 0;
    fd_pipeline_check_state(f->p);
    assert_int_equal(f->sink.check_n, 1);
    complete_check(&f->sink);
    assert_int_equal(f->sink.nread, 1);
    complete_read(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.seek_to[0], -1);
    fd_pipeline_stats_t st;
    fd_pipeline_stats(f->p, &st);
    assert_int_equal(st.lost_offsets, 1);
    invariant(f);
}

/* Offsets unknown at assignment (Redis down in the rebalance): the
 * partitions wait paused and are read on the next tick. */
static void test_assign_without_offsets(void **state) {
    fx_t *f = *state;
    f->sink.sync_rc = -EIO;
    int key = 0;
    int32_t pa = 0;
    int64_t off;
    assert_true(fd_pipeline_assign(f->p, 1, &key, &pa, &off) < 0);
    msg(f, 0, 0, 1); /* syncing: dropped, delivered again after the seek */
    f->accepted_below[0][0] = 0;
    round_(f);
    assert_int_equal(f->sink.nread, 1);
    complete_read(&f->sink, FD_SINK_OK);
    assert_int_equal(f->src.seek_to[0], -1);
    assert_int_equal(f->src.paused[0], 0);
    invariant(f);
}

/* A stop while a partition cannot learn its offset (Redis down) does not
 * pretend the final flush happened: exit 1. */
static void test_stop_while_syncing_exits_1(void **state) {
    fx_t *f = *state;
    one_message(f, 1);
    f->sink.ready = 0;
    fd_pipeline_sink_state(f->p, 0);
    fd_pipeline_stop(f->p);
    assert_int_equal(f->src.stopped, 1);
    assert_int_equal(fd_pipeline_exit_code(f->p), 1);
    assert_int_equal(f->sink.nflush, 0);
    invariant(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fenced_resyncs_and_rereads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_resyncs_without_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_down_and_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_waits_for_dlq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_failure_resyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counted_once_across_resyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_success_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_dlq_ack_after_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_flush_after_reseal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_batch_pauses_while_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_waits_for_final_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_error_twice_halts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_backlog_pauses_every_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_vanished_resyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assign_without_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_syncing_exits_1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
