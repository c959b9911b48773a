/*
 * daemon.c — `run` and `replay`: the only place that builds objects, and
 * the one libuv loop from startup to exit.
 *
 * run: the pipeline (pipeline/pipeline.c) fed by the Kafka consumer-group
 * member (consumers/kafka_source.c) until SIGTERM/SIGINT, with the
 * dead-letter producer (sinks/dlq.c), the alert evaluator (alerts/, when
 * rules are configured) and the operations endpoint (ops/http.c, when
 * http.listen is set). replay: the same pipeline fed by JSON Lines files
 * (consumers/file_source.c), one file per partition, until the files are
 * done; rejects are only counted, and when stderr is a terminal a progress
 * line (app/progress.c) follows the files. Both write to Redis through
 * sinks/redis_sink.c and take the snapshot lease on their snapshot timer.
 *
 * Wiring order: parser, aggregator, pipeline, DLQ and Redis sink (their
 * callbacks go to the pipeline), alerts, HTTP and the screen/API on it
 * (web/, its own threads and Redis connections), then the daemon's own
 * handles (snapshot timer, heartbeat timer, SIGTERM/SIGINT), then the
 * source. Once per flush interval the pipeline's round callback renders
 * /metrics (ops/metrics.c) from every object's numbers.
 *
 * Teardown order (must not change: the sink and the DLQ fire callbacks into
 * the pipeline while they are freed): after uv_run returns the source is
 * freed first (Kafka: leaves the group, serving the final revoke; replay:
 * the progress line is finished just before, while the files it reads are
 * still there), the totals are logged, the daemon's timers (and the
 * progress line's) are closed; then alerts, the web part's stream thread,
 * HTTP, the web part, DLQ, sink; then the signal handles (a second SIGTERM
 * during those frees is caught, not fatal); then the pipeline, the
 * aggregator and the parser; then the loop runs once more so closing
 * handles finish. A run or replay whose
 * final flush did not happen exits 1.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "app/app.h"
#include "app/progress.h"
#include "web/web.h"
#include "pipeline/pipeline.h"
#include "alerts/alerts.h"
#include "sinks/dlq.h"
#include "sinks/redis_sink.h"
#include "consumers/file_source.h"
#include "consumers/kafka_source.h"
#include "aggregators/agg.h"
#include "ops/http.h"
#include "ops/metrics.h"
#include "model/event.h"
#include "conf/conf.h"
#include "base/clock.h"
#include "base/log.h"

typedef struct {
    uv_loop_t loop;
    const fd_conf_t *conf;
    fd_log_t *log;
    fd_parser_t *parser;
    fd_agg_t *agg;
    fd_pipeline_t *p;
    fd_dlq_t *dlq; /* run only */
    fd_redis_sink_t *sink;
    fd_alerts_t *alerts; /* run with alerts.rules only */
    fd_http_t *http; /* run with http.listen only */
    fd_web_t *web; /* the screen and /api/v1 on http (web/) */
    fd_file_source_t *files; /* replay only */
    fd_progress_t *progress; /* replay with stderr on a terminal only */
    uv_timer_t snapshot_timer;
    uv_timer_t beat_timer; /* /healthz heartbeat; only with http */
    uv_signal_t sigterm, sigint;
    int handles; /* the handles above are initialised */
    char instance_id[64];
} daemon_t;

/* /readyz: Redis is up and every assigned partition is neither re-reading
 * its offset nor stopped by a failing flush script. One rule for the
 * heartbeat and the metrics publisher, so neither says ready for the other. */
static int is_ready(const daemon_t *d, const fd_pipeline_stats_t *st) {
    return fd_redis_sink_ready(d->sink) && st->syncing == 0 && st->halted == 0;
}

/* Renders /metrics from every object's numbers (loop thread, once per
 * flush interval). */
static void publish_metrics(void *ud, const fd_pipeline_stats_t *st) {
    daemon_t *d = ud;
    fd_metrics_t m;
    memset(&m, 0, sizeof m);
    m.accepted = st->accepted;
    m.late = st->late;
    memcpy(m.rejects, st->rejects, sizeof m.rejects);
    m.flushes = st->flushes;
    m.resyncs = st->resyncs;
    m.lost_offsets = st->lost_offsets;
    m.lost_schema = st->lost_schema;
    m.redis_up = fd_redis_sink_ready(d->sink);
    m.assigned = st->assigned;
    m.syncing = st->syncing;
    m.halted = st->halted;
    m.pending = st->pending;
    m.input_paused = st->backpressure;
    m.dlq_outstanding = d->dlq ? fd_dlq_outstanding(d->dlq) : 0;
    for (int g = 0; g < d->conf->ngroupings && g < FD_MAX_GROUPINGS; g++)
        m.scope_overflow[g] = fd_agg_overflow(d->agg, g);
    if (d->alerts) {
        fd_alerts_stats_t as;
        fd_alerts_stats(d->alerts, &as);
        fd_alert_out_stats_t os;
        fd_alerts_out_stats(d->alerts, &os);
        m.have_alerts = 1;
        m.alert_leader = as.leader;
        m.alert_evaluations = as.evaluations;
        m.alert_transitions = as.transitions;
        m.alert_errors = as.errors;
        memcpy(m.delivered, os.delivered, sizeof m.delivered);
        memcpy(m.delivery_failures, os.attempts_failed, sizeof m.delivery_failures);
        m.queue_overflow = os.overflow;
    }
    uint64_t cum = 0;
    for (int b = 0; b <= FD_FLUSH_BUCKETS; b++) {
        cum += st->flush_hist[b];
        if (b < FD_FLUSH_BUCKETS) m.flush_le[b] = cum;
    }
    m.flush_count = cum;
    m.flush_sum_s = st->flush_sum_s;
    char buf[12288];
    size_t n = fd_metrics_render(&m, d->conf, buf, sizeof buf);
    fd_http_publish(d->http, buf, n, is_ready(d, st));
}

/* The loop's heartbeat for /healthz and /readyz, on its own short timer:
 * staleness must not depend on flush_interval_ms, which may be minutes. */
static void beat_tick(uv_timer_t *t) {
    daemon_t *d = t->data;
    fd_pipeline_stats_t st;
    fd_pipeline_stats(d->p, &st);
    fd_http_beat(d->http, is_ready(d, &st));
}

static void snapshot_tick(uv_timer_t *t) {
    daemon_t *d = t->data;
    fd_redis_sink_snapshot(d->sink, d->instance_id, fd_clock_wall_ms());
    fd_pipeline_check_state(d->p);
}

static void on_signal(uv_signal_t *h, int signum) {
    daemon_t *d = h->data;
    fd_log(d->log, FD_LOG_INFO, "signal received", "signal=%d", signum);
    fd_pipeline_stop(d->p);
}

/* The pipeline finished (final flush done or given up): nothing of ours
 * may fire any more. */
static void on_finish(void *ud) {
    daemon_t *d = ud;
    uv_timer_stop(&d->snapshot_timer);
    if (d->http) uv_timer_stop(&d->beat_timer);
}

static void on_handle_close(uv_handle_t *h) { (void)h; }

/* Builds every object of a run (with_dlq) or a replay. 0, or -1 with err
 * set; teardown() undoes a partial build. */
static int build(daemon_t *d, const fd_conf_t *c, fd_log_t *log, int with_dlq, char *err,
                 size_t errlen) {
    uv_loop_t *loop = &d->loop;
    d->conf = c;
    d->log = log;
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(d->instance_id, sizeof d->instance_id, "%.40s-%d-%lld", host, (int)getpid(),
             (long long)fd_clock_wall_ms());
    fd_event_limits_t lim = {
        .max_message_bytes = (size_t)c->max_message_bytes,
        .max_age_ms = c->ttl_m1_s * 1000,
        .max_future_ms = c->max_future_s * 1000,
    };
    if (!(d->parser = fd_parser_new(&lim, err, errlen))) return -1;
    if (!(d->agg = fd_agg_new(c, err, errlen))) return -1;
    if (!(d->p = fd_pipeline_new(loop, c, log, d->parser, d->agg, err, errlen))) return -1;
    if (with_dlq && !(d->dlq = fd_dlq_new(loop, c, log, fd_pipeline_dlq_done, d->p, err, errlen)))
        return -1;
    if (!(d->sink = fd_redis_sink_new(loop, c, log, fd_pipeline_sink_state, d->p, err, errlen)))
        return -1;
    fd_pipeline_set_sink(d->p, fd_redis_sink_ops(), d->sink);
    if (d->dlq) fd_pipeline_set_dlq(d->p, fd_dlq_ops(), d->dlq);
    /* alerts are evaluated by `run` instances only; the evaluator owns its
     * timer and its own Redis connection (alerts/) */
    if (with_dlq && c->nalert_rules > 0 &&
        !(d->alerts = fd_alerts_new(loop, c, log, d->instance_id, err, errlen)))
        return -1;
    if (with_dlq && c->http_listen && c->http_listen[0] && !(d->http = fd_http_new(c, err, errlen)))
        return -1;
    if (d->http) fd_pipeline_set_round_cb(d->p, publish_metrics, d);
    /* the screen and /api/v1 read Redis on the HTTP server's threads, never
     * on this loop (web/web.h) */
    if (d->http && !(d->web = fd_web_new(c, log, err, errlen))) return -1;
    if (d->web) fd_web_attach(d->web, d->http);
    fd_pipeline_set_finish_cb(d->p, on_finish, d);
    uv_timer_init(loop, &d->snapshot_timer);
    uv_signal_init(loop, &d->sigterm);
    uv_signal_init(loop, &d->sigint);
    uv_timer_init(loop, &d->beat_timer);
    d->snapshot_timer.data = d->beat_timer.data = d->sigterm.data = d->sigint.data = d;
    d->handles = 1;
    uv_timer_start(&d->snapshot_timer, snapshot_tick, (uint64_t)c->snapshot_interval_ms,
                   (uint64_t)c->snapshot_interval_ms);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    if (d->http) uv_timer_start(&d->beat_timer, beat_tick, FD_HTTP_BEAT_MS, FD_HTTP_BEAT_MS);
    return 0;
}

/* Frees what build() built, in the order the file's essay gives, and
 * closes the loop. */
static void teardown(daemon_t *d) {
    fd_progress_free(d->progress);
    d->progress = NULL;
    if (d->handles) {
        uv_close((uv_handle_t *)&d->snapshot_timer, on_handle_close);
        uv_close((uv_handle_t *)&d->beat_timer, on_handle_close);
    }
    fd_alerts_free(d->alerts);
    fd_web_stop(d->web); /* before the server stops: no push into a stopped server */
    fd_http_free(d->http);
    fd_web_free(d->web); /* after: the server frees its stream responses into it */
    fd_dlq_free(d->dlq); /* may wait up to 10 s for dead-letter acks */
    fd_redis_sink_free(d->sink);
    /* the signal handles close last: closing the last one for a signal puts
     * back its default action, and a second SIGTERM during the frees above
     * must not kill the process */
    if (d->handles) {
        uv_close((uv_handle_t *)&d->sigterm, on_handle_close);
        uv_close((uv_handle_t *)&d->sigint, on_handle_close);
        d->handles = 0;
    }
    fd_pipeline_free(d->p);
    fd_agg_free(d->agg);
    fd_parser_free(d->parser);
    uv_run(&d->loop, UV_RUN_DEFAULT); /* lets closing handles finish */
    if (uv_loop_close(&d->loop) != 0) uv_run(&d->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until the pipeline stops, then closes everything. */
static int run_loop(daemon_t *d, void (*free_src)(void *), void *src) {
    uv_run(&d->loop, UV_RUN_DEFAULT);
    fd_progress_finish(d->progress); /* its last line and '\n' before the totals */
    if (free_src) free_src(src); /* Kafka: leaves the group, serving the final revoke */
    fd_pipeline_log_totals(d->p);
    int code = fd_pipeline_exit_code(d->p);
    teardown(d);
    return code;
}

/* Sets d up and builds it; on failure says why, tears down, returns -1. */
static int start(daemon_t *d, const fd_conf_t *c, fd_log_t *log, int with_dlq) {
    char err[1024];
    memset(d, 0, sizeof *d);
    uv_loop_init(&d->loop);
    if (build(d, c, log, with_dlq, err, sizeof err) == 0) return 0;
    fd_log(log, FD_LOG_ERROR, "startup failed", "error=\"%s\"", err);
    teardown(d);
    return -1;
}

static void free_kafka(void *src) { fd_kafka_source_free(src); }
static void free_files(void *src) { fd_file_source_free(src); }

/* The numbers for replay's progress line: the files' position and the
 * pipeline's counts. */
static void replay_sample(void *ud, fd_progress_sample_t *s) {
    daemon_t *d = ud;
    fd_file_progress_t fp;
    fd_file_source_progress(d->files, &fp);
    fd_pipeline_stats_t st;
    fd_pipeline_stats(d->p, &st);
    s->lines = fp.lines;
    s->lines_total = fp.lines_total;
    s->bytes = fp.bytes;
    s->bytes_total = fp.bytes_total;
    s->sized = fp.sized;
    s->accepted = st.accepted;
    s->rejected = 0;
    for (int r = 1; r < FD_R__COUNT; r++) s->rejected += st.rejects[r];
}

int fd_app_run(const fd_conf_t *c, fd_log_t *log) {
    char err[1024];
    daemon_t d;
    if (start(&d, c, log, 1) < 0) return 1;
    fd_kafka_source_t *src =
        fd_kafka_source_new(&d.loop, c, log, fd_pipeline_source_cbs(), d.p, err, sizeof err);
    if (!src) {
        fd_log(log, FD_LOG_ERROR, "startup failed", "error=\"%s\"", err);
        teardown(&d);
        return 1;
    }
    fd_pipeline_set_source(d.p, fd_kafka_source_ops(), src);
    fd_log(log, FD_LOG_INFO, "funneld running", "group=\"%s\" topics=%d prefix=\"%s\"", c->group,
           c->ntopics, c->prefix);
    return run_loop(&d, free_kafka, src);
}

/* ---- replay ------------------------------------------------------------ */

int fd_app_replay(const fd_conf_t *c, fd_log_t *log, const args_t *a) {
    char err[1024];
    if (a->nfiles == 0) {
        fprintf(stderr, "funneld: replay needs at least one FILE\n");
        return 2;
    }
    daemon_t d;
    if (start(&d, c, log, 0) < 0) return 1;
    char (*topics)[256] = calloc(MAX_FILES, 256);
    int32_t partitions[MAX_FILES];
    if (!topics) {
        teardown(&d);
        return 1;
    }
    for (int i = 0; i < a->nfiles; i++) {
        snprintf(topics[i], sizeof topics[i], "replay");
        partitions[i] = i;
        if (!a->as[i]) continue;
        const char *colon = strrchr(a->as[i], ':');
        char *end = NULL;
        long part = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == a->as[i] || !end || *end || part < 0 || part > INT32_MAX) {
            fprintf(stderr, "funneld: --as wants TOPIC:PARTITION, got \"%s\"\n", a->as[i]);
            free(topics);
            teardown(&d);
            return 2;
        }
        snprintf(topics[i], sizeof topics[i], "%.*s", (int)(colon - a->as[i]), a->as[i]);
        partitions[i] = (int32_t)part;
    }
    fd_file_source_t *src = fd_file_source_new(&d.loop, fd_pipeline_source_cbs(), d.p, a->nfiles,
                                               a->files, partitions, err, sizeof err);
    if (!src) {
        fprintf(stderr, "funneld: %s\n", err);
        free(topics);
        teardown(&d);
        return 2;
    }
    fd_pipeline_set_source(d.p, fd_file_source_ops(), src);
    d.files = src;
    for (int i = 0; i < a->nfiles; i++) {
        fd_event_type_t type = FD_TYPE_NONE;
        for (int t = 0; t < c->ntopics; t++)
            if (!strcmp(c->topics[t].name, topics[i])) type = c->topics[t].type;
        fd_pipeline_add_part(d.p, i, partitions[i], topics[i], type);
    }
    free(topics);
    fd_log(log, FD_LOG_INFO, "replay started", "files=%d prefix=\"%s\"", a->nfiles, c->prefix);
    /* a progress line is for a person watching: never in a log file or pipe */
    if (isatty(STDERR_FILENO) &&
        !(d.progress = fd_progress_new(&d.loop, stderr, log, replay_sample, &d, err, sizeof err)))
        fd_log(log, FD_LOG_WARN, "no progress line", "error=\"%s\"", err);
    return run_loop(&d, free_files, src);
}
