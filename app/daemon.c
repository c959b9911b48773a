/*
 * daemon.c — `run` and `replay`: one libuv loop, from startup to exit.
 *
 * run: the pipeline (pipeline/pipeline.c) fed by the Kafka consumer-group
 * member (consumers/kafka_source.c) until SIGTERM/SIGINT. replay: the same
 * pipeline fed by JSON Lines files (consumers/file_source.c), one file per
 * partition, until the files are done. Messages flow source → parser
 * (model/event.c) → aggregator (aggregators/agg.c) → partition batch →
 * Redis flush script (sinks/redis_sink.c); rejects go to sinks/dlq.c.
 *
 * Teardown order (run_loop): after uv_run returns the source is freed first
 * (Kafka: leaves the group, serving the final revoke into the pipeline),
 * then the pipeline, then the loop runs once more so closing handles
 * finish. A run or replay whose final flush did not happen exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app/app.h"
#include "consumers/file_source.h"
#include "consumers/kafka_source.h"
#include "pipeline/pipeline.h"
#include "model/event.h"
#include "conf/conf.h"
#include "base/log.h"

/* ---- run --------------------------------------------------------------- */

/* Runs the loop until the pipeline stops, then closes everything. */
static int run_loop(uv_loop_t *loop, fd_pipeline_t *p, void (*free_src)(void *), void *src) {
    uv_run(loop, UV_RUN_DEFAULT);
    if (free_src) free_src(src); /* Kafka: leaves the group, serving the final revoke */
    fd_pipeline_log_totals(p);
    int code = fd_pipeline_exit_code(p);
    fd_pipeline_free(p);
    uv_run(loop, UV_RUN_DEFAULT); /* lets closing handles finish */
    if (uv_loop_close(loop) != 0) uv_run(loop, UV_RUN_NOWAIT);
    return code;
}

static void free_kafka(void *src) { fd_kafka_source_free(src); }
static void free_files(void *src) { fd_file_source_free(src); }

int fd_app_run(const fd_conf_t *c, fd_log_t *log) {
    char err[1024];
    uv_loop_t loop;
    uv_loop_init(&loop);
    fd_pipeline_t *p = fd_pipeline_new(&loop, c, log, 1, err, sizeof err);
    if (!p) {
        fd_log(log, FD_LOG_ERROR, "startup failed", "error=\"%s\"", err);
        uv_loop_close(&loop);
        return 1;
    }
    fd_kafka_source_t *src = fd_kafka_source_new(&loop, c, log, fd_pipeline_source_cbs(), p, err, sizeof err);
    if (!src) {
        fd_log(log, FD_LOG_ERROR, "startup failed", "error=\"%s\"", err);
        fd_pipeline_free(p);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    fd_pipeline_set_source(p, fd_kafka_source_ops(), src);
    fd_log(log, FD_LOG_INFO, "funneld running", "group=\"%s\" topics=%d prefix=\"%s\"", c->group, c->ntopics, c->prefix);
    return run_loop(&loop, p, free_kafka, src);
}

/* ---- replay ------------------------------------------------------------ */

int fd_app_replay(const fd_conf_t *c, fd_log_t *log, const args_t *a) {
    char err[1024];
    if (a->nfiles == 0) {
        fprintf(stderr, "funneld: replay needs at least one FILE\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    fd_pipeline_t *p = fd_pipeline_new(&loop, c, log, 0, err, sizeof err);
    if (!p) {
        fd_log(log, FD_LOG_ERROR, "startup failed", "error=\"%s\"", err);
        return 1;
    }
    char(*topics)[256] = calloc(MAX_FILES, 256);
    int32_t partitions[MAX_FILES];
    if (!topics) {
        fd_pipeline_free(p);
        uv_run(&loop, UV_RUN_DEFAULT);
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
            fd_pipeline_free(p);
            uv_run(&loop, UV_RUN_DEFAULT);
            return 2;
        }
        snprintf(topics[i], sizeof topics[i], "%.*s", (int)(colon - a->as[i]), a->as[i]);
        partitions[i] = (int32_t)part;
    }
    fd_file_source_t *src = fd_file_source_new(&loop, fd_pipeline_source_cbs(), p, a->nfiles, a->files, partitions, err, sizeof err);
    if (!src) {
        fprintf(stderr, "funneld: %s\n", err);
        free(topics);
        fd_pipeline_free(p);
        uv_run(&loop, UV_RUN_DEFAULT);
        return 2;
    }
    fd_pipeline_set_source(p, fd_file_source_ops(), src);
    for (int i = 0; i < a->nfiles; i++) {
        fd_event_type_t type = FD_TYPE_NONE;
        for (int t = 0; t < c->ntopics; t++)
            if (!strcmp(c->topics[t].name, topics[i])) type = c->topics[t].type;
        fd_pipeline_add_part(p, i, partitions[i], topics[i], type);
    }
    free(topics);
    fd_log(log, FD_LOG_INFO, "replay started", "files=%d prefix=\"%s\"", a->nfiles, c->prefix);
    return run_loop(&loop, p, free_files, src);
}
