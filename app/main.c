/*
 * main.c — funneld's command line: run, replay, validate, query, alerts, check-config.
 *
 * Reading order for a newcomer: main() → cmd_run() builds the pipeline
 * (pipeline/pipeline.c) and the Kafka source (consumers/kafka_source.c), then
 * runs the one libuv loop until SIGTERM. Messages flow source → parser
 * (model/event.c) → aggregator (aggregators/agg.c) → partition batch →
 * Redis flush script (sinks/redis_sink.c); rejects go to sinks/dlq.c.
 *
 * Exit status: 0 success, 1 runtime failure (or rejected lines for
 * validate), 2 usage or configuration error. A run or replay whose final
 * flush did not happen exits 1 (pipeline/pipeline.c, final_flush_report), and
 * validate exits 1 when its input could not be read to the end.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "model/event.h"
#include "consumers/file_source.h"
#include "consumers/kafka_source.h"
#include "conf/conf.h"
#include "base/log.h"
#include "pipeline/pipeline.h"
#include "sinks/redis_sink.h"
#include "sinks/redis_keys.h"
#include "base/clock.h"
#include "base/duration.h"

#define MAX_FILES 256

typedef struct {
    const char *cmd;
    const char *conf_path;
    int doc;
    const char *type; /* validate --type */
    int nfiles;
    const char *files[MAX_FILES];
    const char *as[MAX_FILES]; /* replay --as TOPIC:PARTITION per file */
} args_t;

static void usage(FILE *out) {
    fprintf(out,
            "usage: funneld COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  run            consume Kafka, keep funnel counters in Redis (until SIGTERM)\n"
            "  replay FILE..  the same pipeline from JSON Lines files (each file = one partition)\n"
            "  validate FILE  print LINE<TAB>REASON<TAB>FIELD for each rejected line ('-' = stdin)\n"
            "  query SCOPE    print the rolling snapshots of a scope id (e.g. all, product=course-py)\n"
            "  alerts [N]     print alert states and the N (default 20) latest transitions (docs/ALERTS.md)\n"
            "  check-config   validate the configuration and print it (secrets masked); --doc prints the key table\n"
            "\n"
            "options:\n"
            "  -c FILE              configuration file (JSON; see docs/CONFIG.md)\n"
            "  --brokers LIST       kafka.brokers\n"
            "  --redis URL          redis.url: redis://[user:password@]host:port[/db] or unix:///path\n"
            "  --group NAME         kafka.group\n"
            "  --prefix NAME        redis.prefix\n"
            "  --set KEY=VALUE      any configuration key\n"
            "  -X PROP=VALUE        a librdkafka property\n"
            "  --as TOPIC:PARTITION replay: the topic-partition the next FILE stands for\n"
            "  --type TYPE          validate: exposure|interaction|payment (default: lines carry \"type\")\n");
}

/* Parses argv into a and the configuration; returns 0 or the exit status. */
static int parse_args(int argc, char **argv, args_t *a, fd_conf_t *c) {
    char err[1024];
    const char *pending_as = NULL;
    memset(a, 0, sizeof(*a));
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    a->cmd = argv[1];
    if (!strcmp(a->cmd, "-h") || !strcmp(a->cmd, "--help") || !strcmp(a->cmd, "help")) {
        usage(stdout);
        exit(0);
    }
    /* the file first, flags over it: find -c before anything else */
    for (int i = 2; i < argc - 1; i++)
        if (!strcmp(argv[i], "-c")) a->conf_path = argv[i + 1];
    if (a->conf_path && fd_conf_load_file(c, a->conf_path, err, sizeof err) < 0) {
        fprintf(stderr, "funneld: %s\n", err);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *key = NULL;
        if (!strcmp(o, "--brokers")) key = "kafka.brokers";
        else if (!strcmp(o, "--redis")) key = "redis.url";
        else if (!strcmp(o, "--group")) key = "kafka.group";
        else if (!strcmp(o, "--prefix")) key = "redis.prefix";
        if (key || !strcmp(o, "-c") || !strcmp(o, "-X") || !strcmp(o, "--set") || !strcmp(o, "--as") ||
            !strcmp(o, "--type")) {
            if (!v) {
                fprintf(stderr, "funneld: %s needs a value\n", o);
                return 2;
            }
            i++;
            int rc = 0;
            if (key) {
                rc = fd_conf_set(c, key, v, err, sizeof err);
            } else if (!strcmp(o, "-X")) {
                rc = fd_conf_add_kprop(c, v, err, sizeof err);
            } else if (!strcmp(o, "--set")) {
                const char *eq = strchr(v, '=');
                if (!eq) {
                    fprintf(stderr, "funneld: --set wants KEY=VALUE\n");
                    return 2;
                }
                char k[128];
                snprintf(k, sizeof k, "%.*s", (int)(eq - v), v);
                rc = fd_conf_set(c, k, eq + 1, err, sizeof err);
            } else if (!strcmp(o, "--as")) {
                pending_as = v;
            } else if (!strcmp(o, "--type")) {
                a->type = v;
            }
            if (rc < 0) {
                fprintf(stderr, "funneld: %s\n", err);
                return 2;
            }
        } else if (!strcmp(o, "--doc")) {
            a->doc = 1;
        } else if (o[0] == '-' && o[1] != 0) {
            fprintf(stderr, "funneld: unknown option %s\n", o);
            return 2;
        } else {
            if (a->nfiles == MAX_FILES) {
                fprintf(stderr, "funneld: too many files\n");
                return 2;
            }
            a->as[a->nfiles] = pending_as;
            a->files[a->nfiles++] = o;
            pending_as = NULL;
        }
    }
    if (fd_conf_finalize(c, err, sizeof err) < 0) {
        fprintf(stderr, "funneld: %s\n", err);
        return 2;
    }
    return 0;
}

/* Once the configuration holds its own copies, the secrets given on the
 * command line (--redis with a password, -X sasl.password=..., --set of a
 * secret key or a URL with a token) are overwritten in argv, so ps and
 * /proc/PID/cmdline show '*' instead. Until this runs (the first
 * milliseconds) they are visible: ${ENV} in the file is the safe way. */
static void scrub_argv(int argc, char **argv) {
    for (int i = 2; i + 1 < argc; i++) {
        const char *o = argv[i];
        char *v = argv[i + 1];
        if (!strcmp(o, "--redis")) {
            fd_conf_scrub_arg("redis.url", v);
        } else if (!strcmp(o, "-X")) {
            fd_conf_scrub_arg(NULL, v);
        } else if (!strcmp(o, "--set")) {
            char *eq = strchr(v, '=');
            char k[128];
            if (!eq) continue;
            snprintf(k, sizeof k, "%.*s", (int)(eq - v), v);
            fd_conf_scrub_arg(k, eq + 1);
        } else if (strcmp(o, "-c") && strcmp(o, "--brokers") && strcmp(o, "--group") && strcmp(o, "--prefix") &&
                   strcmp(o, "--as") && strcmp(o, "--type")) {
            continue; /* not an option with a value */
        }
        i++;
    }
}

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

static int cmd_run(const fd_conf_t *c, fd_log_t *log) {
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

static int cmd_replay(const fd_conf_t *c, fd_log_t *log, const args_t *a) {
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

/* ---- validate ---------------------------------------------------------- */

static void validate_one(fd_parser_t *parser, fd_event_type_t type, const char *line, size_t n,
                         int too_large, long lineno, long *bad) {
    fd_event_t ev;
    const char *field = "-";
    fd_reason_t r = too_large ? FD_R_TOO_LARGE : fd_event_parse(parser, line, n, type, fd_clock_wall_ms(), &ev, &field);
    if (r != FD_OK) {
        (*bad)++;
        printf("%ld\t%s\t%s\n", lineno, fd_reason_name(r), field);
    }
}

/* Prints the rejected lines of fp. The size limit applies while reading
 * (decision): the input goes through a fixed chunk buffer and a line is kept
 * only up to max bytes, so a line over the limit is reported too_large and
 * skipped to its newline without ever being held whole; memory stays at
 * max + 64 KiB whatever the input. Returns 0, or -1 after saying on stderr
 * why the input could not be checked to its end. */
static int validate_lines(FILE *fp, const char *name, fd_parser_t *parser, fd_event_type_t type,
                          size_t max, long *bad) {
    enum { CHUNK = 65536 };
    char *chunk = malloc(CHUNK), *line = malloc(max + 1);
    size_t len = 0, n;
    long lineno = 0;
    int over = 0, open_line = 0, rc = 0;
    if (!chunk || !line) {
        fprintf(stderr, "funneld: validate: out of memory\n");
        rc = -1;
        goto out;
    }
    while ((n = fread(chunk, 1, CHUNK, fp)) > 0) {
        for (size_t i = 0; i < n;) {
            const char *nl = memchr(chunk + i, '\n', n - i);
            size_t seg = nl ? (size_t)(nl - (chunk + i)) : n - i;
            if (!over && seg > max - len) over = 1;
            if (!over) {
                memcpy(line + len, chunk + i, seg);
                len += seg;
            }
            open_line = 1;
            i += seg;
            if (nl) {
                validate_one(parser, type, line, len, over, ++lineno, bad);
                len = 0;
                over = open_line = 0;
                i++;
            }
        }
    }
    if (ferror(fp)) {
        fprintf(stderr, "funneld: validate: reading %s failed after line %ld: %s\n", name, lineno,
                strerror(errno));
        rc = -1;
        goto out;
    }
    if (open_line) validate_one(parser, type, line, len, over, ++lineno, bad); /* no final '\n' */
    if (fflush(stdout) != 0) {
        fprintf(stderr, "funneld: validate: writing the report failed: %s\n", strerror(errno));
        rc = -1;
    }
out:
    free(chunk);
    free(line);
    return rc;
}

static int cmd_validate(const fd_conf_t *c, const args_t *a) {
    char err[256];
    if (a->nfiles != 1) {
        fprintf(stderr, "funneld: validate needs exactly one FILE (or -)\n");
        return 2;
    }
    fd_event_type_t type = FD_TYPE_NONE;
    if (a->type) {
        type = fd_event_type_from_name(a->type, strlen(a->type));
        if (type == FD_TYPE_NONE) {
            fprintf(stderr, "funneld: --type must be exposure, interaction or payment\n");
            return 2;
        }
    }
    fd_event_limits_t lim = {(size_t)c->max_message_bytes, c->ttl_m1_s * 1000, c->max_future_s * 1000};
    fd_parser_t *parser = fd_parser_new(&lim, err, sizeof err);
    if (!parser) {
        fprintf(stderr, "funneld: %s\n", err);
        return 1;
    }
    FILE *fp = strcmp(a->files[0], "-") == 0 ? stdin : fopen(a->files[0], "rb");
    if (!fp) {
        perror(a->files[0]);
        fd_parser_free(parser);
        return 2;
    }
    long bad = 0;
    int rc = validate_lines(fp, a->files[0], parser, type, lim.max_message_bytes, &bad);
    if (fp != stdin) fclose(fp);
    fd_parser_free(parser);
    return rc < 0 ? 1 : bad ? 1 : 0;
}

/* ---- query ------------------------------------------------------------- */

/* The one-shot commands' Redis connection; NULL after saying why on stderr. */
static redisContext *connect_or_report(const fd_conf_t *c) {
    char err[512];
    redisContext *rc = fd_redis_connect_sync(c, 5000, err, sizeof err);
    if (!rc) fprintf(stderr, "funneld: %s\n", err);
    return rc;
}

static int cmd_query(const fd_conf_t *c, const args_t *a) {
    if (a->nfiles != 1) {
        fprintf(stderr, "funneld: query needs one SCOPE (e.g. all)\n");
        return 2;
    }
    redisContext *rc = connect_or_report(c);
    if (!rc) return 1;
    redisReply *r;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "scope", a->files[0]);
    int found = 0;
    for (int w = 0; w < c->nwindows; w++) {
        char name[16];
        fd_duration_format(c->windows_s[w], name, sizeof name);
        char key[16384];
        fd_key_result(key, sizeof key, c->prefix, a->files[0], name);
        r = redisCommand(rc, "HGETALL %s", key);
        cJSON *win = cJSON_CreateObject();
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
            cJSON_AddStringToObject(win, r->element[i]->str, r->element[i + 1]->str);
            found = 1;
        }
        if (r) freeReplyObject(r);
        cJSON_AddItemToObject(out, name, win);
    }
    redisFree(rc);
    char *s = cJSON_Print(out);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(out);
    if (!found) fprintf(stderr, "funneld: no snapshot yet for scope \"%s\"\n", a->files[0]);
    return found ? 0 : 1;
}

/* ---- alerts (issue 3) -------------------------------------------------- */

/* Reply element i of a HGETALL-like array as a JSON object of strings. */
static cJSON *pairs_json(const redisReply *r) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element[i]->str && r->element[i + 1]->str)
            cJSON_AddStringToObject(o, r->element[i]->str, r->element[i + 1]->str);
    return o;
}

/* Alert states (`{prefix}:alert:*`, via the index set) and the latest
 * transitions of the stream `{prefix}:alerts`, as one JSON document. */
static int cmd_alerts(const fd_conf_t *c, const args_t *a) {
    long limit = 20;
    if (a->nfiles > 1 || (a->nfiles == 1 && ((limit = strtol(a->files[0], NULL, 10)) <= 0 || limit > 100000))) {
        fprintf(stderr, "funneld: alerts takes at most one argument: the number of transitions (1..100000)\n");
        return 2;
    }
    redisContext *rc = connect_or_report(c);
    if (!rc) return 1;
    redisReply *r;
    cJSON *out = cJSON_CreateObject();
    char key[1024];
    fd_key_lease(key, sizeof key, c->prefix, "alerts");
    r = redisCommand(rc, "GET %s", key);
    cJSON_AddStringToObject(out, "lease_holder", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r) freeReplyObject(r);
    fd_key_alert_cursor(key, sizeof key, c->prefix);
    r = redisCommand(rc, "GET %s", key);
    cJSON_AddNumberToObject(out, "cursor", r && r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0);
    if (r) freeReplyObject(r);
    cJSON *states = cJSON_AddArrayToObject(out, "alerts");
    fd_key_alert_index(key, sizeof key, c->prefix);
    redisReply *idx = redisCommand(rc, "SMEMBERS %s", key);
    int ok = idx && idx->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < idx->elements; i++) {
        fd_key_alert(key, sizeof key, c->prefix, idx->element[i]->str);
        r = redisCommand(rc, "HGETALL %s", key);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) cJSON_AddItemToArray(states, pairs_json(r));
        if (r) freeReplyObject(r);
    }
    if (idx) freeReplyObject(idx);
    cJSON *trans = cJSON_AddArrayToObject(out, "transitions");
    fd_key_alert_stream(key, sizeof key, c->prefix);
    r = redisCommand(rc, "XREVRANGE %s + - COUNT %ld", key, limit);
    ok = ok && r && r->type == REDIS_REPLY_ARRAY;
    for (size_t i = r && ok ? r->elements : 0; i > 0; i--) { /* oldest first */
        const redisReply *e = r->element[i - 1];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        cJSON *f = pairs_json(e->element[1]);
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(f, "json");
        cJSON *t = cJSON_IsString(j) ? cJSON_Parse(j->valuestring) : NULL;
        if (t) {
            cJSON_AddStringToObject(t, "stream_id", e->element[0]->str);
            cJSON_AddItemToArray(trans, t);
        }
        cJSON_Delete(f);
    }
    if (r) freeReplyObject(r);
    redisFree(rc);
    char *s = cJSON_Print(out);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(out);
    if (!ok) fprintf(stderr, "funneld: reading alerts from redis failed\n");
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    fd_conf_t c;
    fd_conf_defaults(&c);
    args_t a;
    int rc = parse_args(argc, argv, &a, &c);
    scrub_argv(argc, argv);
    if (rc) {
        fd_conf_release(&c);
        return rc;
    }
    fd_log_t log;
    fd_log_init(&log, c.log_level, c.log_rate_per_s);
    if (!strcmp(a.cmd, "run")) rc = cmd_run(&c, &log);
    else if (!strcmp(a.cmd, "replay")) rc = cmd_replay(&c, &log, &a);
    else if (!strcmp(a.cmd, "validate")) rc = cmd_validate(&c, &a);
    else if (!strcmp(a.cmd, "query")) rc = cmd_query(&c, &a);
    else if (!strcmp(a.cmd, "alerts")) rc = cmd_alerts(&c, &a);
    else if (!strcmp(a.cmd, "check-config")) {
        if (a.doc) fd_conf_print_doc(stdout);
        else fd_conf_print(&c, stdout);
        rc = 0;
    } else {
        fprintf(stderr, "funneld: unknown command \"%s\"\n", a.cmd);
        usage(stderr);
        rc = 2;
    }
    fd_conf_release(&c);
    return rc;
}
