/*
 * inspect.c — the one-shot commands: validate, query, alerts.
 *
 * Each runs to completion without a loop and prints one report on stdout.
 * validate parses a JSON Lines file with the pipeline's own parser
 * (model/event.c) and prints LINE<TAB>REASON<TAB>FIELD per rejected line;
 * it reads through a fixed chunk buffer, so memory stays bounded whatever
 * the input, and exits 1 when a line was rejected or the input could not
 * be read to its end. query and alerts open one blocking Redis connection
 * (fd_redis_connect_sync) and read what the daemon wrote: the rolling
 * snapshots `{prefix}:r:{scope}:{window}`, and the alert lease, cursor,
 * states and latest transitions; every key comes from sinks/redis_keys.h.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "sinks/redis_sink.h"
#include "sinks/redis_keys.h"
#include "model/event.h"
#include "base/clock.h"
#include "base/duration.h"
#include "model/cohort.h"
#include "model/window.h"

/* ---- validate ---------------------------------------------------------- */

static void validate_one(fd_parser_t *parser, fd_event_type_t type, const char *line, size_t n,
                         int too_large, long lineno, long *bad) {
    fd_event_t ev;
    const char *field = "-";
    fd_reason_t r = too_large
                        ? FD_R_TOO_LARGE
                        : fd_event_parse(parser, line, n, type, fd_clock_wall_ms(), &ev, &field);
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

int fd_app_validate(const fd_conf_t *c, const args_t *a) {
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
    fd_event_limits_t lim = {(size_t)c->max_message_bytes, c->ttl_m1_s * 1000,
                             c->max_future_s * 1000};
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

/* Prints a JSON document on stdout and frees it. */
static void print_json(cJSON *out) {
    char *s = cJSON_Print(out);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(out);
}

/* `funneld query lb:{grouping}:{window}:{metric}`: one leaderboard
 * `{prefix}:lb:...` (docs/METRICS.md, "Leaderboards"), best first, as JSON. */
static int query_board(const fd_conf_t *c, const char *what) {
    redisContext *rc = connect_or_report(c);
    if (!rc) return 1;
    char key[16384];
    snprintf(key, sizeof key, "%s:%s", c->prefix, what);
    redisReply *r = redisCommand(rc, "ZREVRANGE %s 0 -1 WITHSCORES", key);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "board", key);
    cJSON *rows = cJSON_AddArrayToObject(out, "members");
    int found = 0, bad = !r || r->type == REDIS_REPLY_ERROR;
    for (size_t i = 0; !bad && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "rank", (double)(i / 2 + 1));
        cJSON_AddStringToObject(row, "scope", r->element[i]->str);
        cJSON_AddStringToObject(row, "score", r->element[i + 1]->str);
        cJSON_AddItemToArray(rows, row);
        found = 1;
    }
    if (bad) fprintf(stderr, "funneld: %s\n", r ? r->str : rc->errstr);
    if (r) freeReplyObject(r);
    redisFree(rc);
    print_json(out);
    if (!found && !bad) fprintf(stderr, "funneld: no leaderboard \"%s\" (yet)\n", key);
    return found ? 0 : 1;
}

/* The marketing hashes of one scope (docs/METRICS.md): per local day from
 * today back over the horizon, newest first, `{prefix}:ret:{scope}:{day}`
 * (with L = retained_d{k} / cohort_size as retention_d{k}) and
 * `{prefix}:attr:{first|last}:{scope}:{day}`. Pipelined HGETALLs (no SCAN:
 * the minimal ACL has none). Returns the number of hashes found. */
static int query_marketing(redisContext *rc, const fd_conf_t *c, const char *scope, cJSON *out) {
    char err[256];
    fd_daycal_t *cal = fd_daycal_new(c->time_zone, err, sizeof err);
    if (!cal) return 0;
    int32_t today = fd_cohort_daynum(fd_daycal_label(cal, fd_clock_wall_ms()));
    fd_daycal_free(cal);
    int ndays = (int)(c->ret_horizon_s / 86400) + 1;
    static const char *const kinds[3] = {"ret", "attr:first", "attr:last"};
    for (int d = 0; d < ndays; d++)
        for (int k = 0; k < 3; k++)
            redisAppendCommand(rc, "HGETALL %s:%s:%s:%d", c->prefix, kinds[k], scope,
                               (int)fd_cohort_label(today - d));
    cJSON *ret = cJSON_CreateArray(), *attr = cJSON_CreateObject();
    cJSON *touch[2] = {cJSON_CreateArray(), cJSON_CreateArray()};
    int found = 0;
    for (int d = 0; d < ndays; d++) {
        for (int k = 0; k < 3; k++) {
            redisReply *r = NULL;
            if (redisGetReply(rc, (void **)&r) != REDIS_OK) goto done;
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
                cJSON *o = cJSON_CreateObject();
                char day[16];
                snprintf(day, sizeof day, "%d", (int)fd_cohort_label(today - d));
                cJSON_AddStringToObject(o, k == 0 ? "cohort_day" : "day", day);
                long long size = 0;
                for (size_t i = 0; i + 1 < r->elements; i += 2) {
                    cJSON_AddStringToObject(o, r->element[i]->str, r->element[i + 1]->str);
                    if (!strcmp(r->element[i]->str, "cohort_size"))
                        size = strtoll(r->element[i + 1]->str, NULL, 10);
                }
                for (int j = 0; k == 0 && j < c->nret_days; j++) {
                    char f[32], v[32] = "";
                    snprintf(f, sizeof f, "retained_d%d", (int)c->ret_days[j]);
                    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, f);
                    long long kept = n ? strtoll(n->valuestring, NULL, 10) : 0;
                    if (size > 0) snprintf(v, sizeof v, "%.6f", (double)kept / (double)size);
                    snprintf(f, sizeof f, "retention_d%d", (int)c->ret_days[j]);
                    cJSON_AddStringToObject(o, f, v);
                }
                cJSON_AddItemToArray(k == 0 ? ret : touch[k - 1], o);
                found++;
            }
            if (r) freeReplyObject(r);
        }
    }
done:
    cJSON_AddItemToObject(attr, "first", touch[0]);
    cJSON_AddItemToObject(attr, "last", touch[1]);
    cJSON_AddItemToObject(out, "retention", ret);
    cJSON_AddItemToObject(out, "attribution", attr);
    return found;
}

int fd_app_query(const fd_conf_t *c, const args_t *a) {
    if (a->nfiles != 1) {
        fprintf(stderr, "funneld: query needs one SCOPE (e.g. all) or lb:GROUPING:WINDOW:METRIC\n");
        return 2;
    }
    if (strncmp(a->files[0], "lb:", 3) == 0) return query_board(c, a->files[0]);
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
    if (query_marketing(rc, c, a->files[0], out) > 0) found = 1;
    redisFree(rc);
    print_json(out);
    if (!found) fprintf(stderr, "funneld: no snapshot yet for scope \"%s\"\n", a->files[0]);
    return found ? 0 : 1;
}

/* ---- alerts -------------------------------------------------------- */

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
int fd_app_alerts(const fd_conf_t *c, const args_t *a) {
    long limit = 20;
    if (a->nfiles > 1 ||
        (a->nfiles == 1 && ((limit = strtol(a->files[0], NULL, 10)) <= 0 || limit > 100000))) {
        fprintf(
            stderr,
            "funneld: alerts takes at most one argument: the number of transitions (1..100000)\n");
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
    cJSON_AddNumberToObject(out, "cursor",
                            r && r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0);
    if (r) freeReplyObject(r);
    cJSON *states = cJSON_AddArrayToObject(out, "alerts");
    fd_key_alert_index(key, sizeof key, c->prefix);
    redisReply *idx = redisCommand(rc, "SMEMBERS %s", key);
    int ok = idx && idx->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < idx->elements; i++) {
        fd_key_alert(key, sizeof key, c->prefix, idx->element[i]->str);
        r = redisCommand(rc, "HGETALL %s", key);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0)
            cJSON_AddItemToArray(states, pairs_json(r));
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
    print_json(out);
    if (!ok) fprintf(stderr, "funneld: reading alerts from redis failed\n");
    return ok ? 0 : 1;
}
