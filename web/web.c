/*
 * web.c — the screen's files, /api/v1/... and /api/v1/stream (see web.h and
 * docs/API.md for the contract).
 *
 * Threads and their connections (decision): libmicrohttpd answers every
 * request on its one server thread, which also answers /healthz, /readyz
 * and /metrics, so nothing there may wait for Redis. An API request is
 * suspended and queued (at most WEB_API_QUEUE; one more is answered 503
 * `busy` at once) for one of WEB_API_WORKERS worker threads; each worker
 * reads Redis over a blocking connection only it uses, with the command
 * timeout of redis.timeout_ms (after a failed connect, its requests for
 * the next second answer 503 at once instead of waiting again), keeps the
 * answer and resumes the connection (api_job_t). The pipeline runs on the
 * libuv loop with its own connections, so a slow Redis delays API answers
 * only: never a probe, the screen's files or a flush. The event stream has its own
 * thread (`stream_main`): a pub/sub connection on `{prefix}:updates` and
 * `{prefix}:alerts`, and a connection (`qc`) to read what it pushes. On each
 * snapshot note it reads the new state once per scope that clients watch
 * and appends the same text to each such client's buffer.
 *
 * A stream client is a libmicrohttpd response fed by a callback
 * (sse_read). With nothing to send, the callback suspends the connection
 * (it then costs no CPU and is not timed out); a push resumes it. A client
 * whose unsent bytes would pass http.sse_max_buffer_bytes is marked dead,
 * its buffer freed, and the next callback ends the response: memory per
 * client is bounded and nothing waits for it. A client that stops reading
 * altogether stays behind its full socket buffer until the connection
 * timeout (twice the heartbeat) closes it. Clients are bounded by
 * http.sse_max_clients. All client state is under `mu`; the server frees a
 * client's record through the response's free callback (sse_free), the
 * only place a record leaves the list, so a push never touches a freed
 * connection.
 *
 * JSON is built with cJSON. Snapshot fields are numbers when they are
 * integers below 2^53 or decimals, null when empty (a rate over a zero
 * denominator), and strings otherwise (a sum past 2^53 keeps its digits).
 */
#include "web/web.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sinks/redis_sink.h"
#include "sinks/redis_keys.h"
#include "model/window.h"
#include "base/clock.h"
#include "base/duration.h"
#include "base/kafka.h"
#include "base/utf8.h"

#define WEB_MAX_POINTS 1500 /* points of one series answer */
#define WEB_MAX_LIST 1000 /* scopes per page, leaderboard rows */
#define WEB_MAX_BREAKDOWN 200 /* rows of one breakdown table */
#define WEB_KEY 2048
#define SSE_SNDBUF 65536 /* kernel send buffer of a stream connection */
#define LAG_MAX_PARTS 512 /* partitions whose end offsets are kept */
#define LAG_EVERY_MS 5000 /* how often the stream thread reads them */
#define LAG_QUERY_MS 500 /* one partition's query at most */
#define WEB_API_WORKERS 4 /* API requests read Redis at once, one connection each */
#define WEB_API_QUEUE 64 /* API requests waiting for a worker; one more gets 503 */

typedef struct sse_client {
    struct sse_client *next, *prev;
    struct MHD_Connection *conn;
    fd_web_t *w;
    char scope[512];
    char *buf;
    size_t len, off, cap;
    int suspended, dead;
} sse_client_t;

struct fd_web {
    const fd_conf_t *c;
    fd_log_t *log;
    fd_http_t *http;
    char dir[1024]; /* the screen's files */
    char windows[FD_MAX_WINDOWS][16];
    fd_daycal_t *cal;
    /* API workers: a bounded queue of suspended requests (see api_job_t) */
    pthread_mutex_t jmu; /* the queue, every job's done flag, jobs, jstop */
    pthread_cond_t jcv;
    pthread_mutex_t open_mu; /* one stream opens at a time: http.sse_max_clients holds */
    pthread_mutex_t cal_mu; /* `cal` (its cache is not thread-safe) among the workers */
    struct api_job *jhead, *jtail; /* waiting for a worker */
    int jqueued;
    struct api_job *jobs; /* every job not yet answered (freed at the end) */
    int jstop, nworkers;
    struct api_worker *workers;
    /* stream */
    pthread_t thr;
    int started;
    pthread_mutex_t mu; /* everything below */
    int stop;
    sse_client_t *clients;
    int nclients;
    uint64_t dropped, seq;
    int sub_up;
    char last_note[512]; /* the latest `{prefix}:updates` note */
    /* Kafka end offsets of the partitions in {prefix}:offsets:{group}, read
     * by the stream thread (its own client, no group) every LAG_EVERY_MS */
    int nends;
    struct {
        char field[280];
        int64_t end;
    } ends[LAG_MAX_PARTS];
    struct {
        fd_log_t *log; /* librdkafka's opaque: fd_kafka_log_cb reads this first */
    } kop;
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_s(void) { return fd_clock_wall_ms() / 1000; }

/* Parses a whole decimal integer; 0 or -1. */
static int parse_i64(const char *s, int64_t *v) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *v = (int64_t)x;
    return 0;
}

/* A snapshot or counter value as JSON: see the file's essay. */
static cJSON *value_json(const char *s) {
    if (!s || !*s) return cJSON_CreateNull();
    int64_t v;
    if (parse_i64(s, &v) == 0) {
        if (v > -(INT64_C(1) << 53) && v < (INT64_C(1) << 53)) return cJSON_CreateNumber((double)v);
        return cJSON_CreateString(s);
    }
    char *end;
    double d = strtod(s, &end);
    if (*end == 0 && strlen(s) < 20) return cJSON_CreateNumber(d);
    return cJSON_CreateString(s);
}

/* A rate as docs/API.md promises it: rounded to 6 decimals (as the
 * snapshot script's string.format('%.6f') does). */
static double rate6(double v) {
    char b[64];
    snprintf(b, sizeof b, "%.6f", v);
    return strtod(b, NULL);
}

static cJSON *hash_json(const redisReply *r) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element[i]->str && r->element[i + 1]->str)
            cJSON_AddItemToObject(o, r->element[i]->str, value_json(r->element[i + 1]->str));
    return o;
}

static int reply_ok(const redisReply *r) { return r && r->type != REDIS_REPLY_ERROR; }

static int64_t reply_int(const redisReply *r) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return (int64_t)r->integer;
    int64_t v = 0;
    if (r->type == REDIS_REPLY_STRING) parse_i64(r->str, &v);
    return v;
}

/* ---- API requests off the server thread ------------------------------------ */

typedef enum MHD_Result (*api_fn)(fd_web_t *, struct MHD_Connection *, redisContext *);

/* One API request between the server thread and a worker. The server thread
 * suspends the connection and queues the job; a worker runs the endpoint
 * with `tl_job` set, so the answer the endpoint would queue is kept here
 * instead (queue_or_keep), then marks it done and resumes the connection;
 * libmicrohttpd calls the route again with the job in *state, and the server
 * thread queues the kept answer and frees the job. A job whose connection
 * is never handed back (the server stopped first) is freed by
 * fd_web_free. */
typedef struct api_job {
    struct api_job *qnext; /* the waiting queue */
    struct api_job *anext, *aprev; /* w->jobs */
    struct MHD_Connection *conn;
    api_fn fn;
    int done;
    unsigned status;
    struct MHD_Response *resp; /* the kept answer; NULL: close the connection */
} api_job_t;

typedef struct api_worker {
    fd_web_t *w;
    pthread_t thr;
    int started;
    redisContext *rc; /* this worker's own connection, opened on demand */
    int64_t rc_fail_ms; /* monotonic ms of its last failed connect */
} api_worker_t;

static _Thread_local api_job_t *tl_job; /* the job a worker is answering */

/* Queues r on conn, or on a worker keeps it in the job; takes r. */
static enum MHD_Result queue_or_keep(struct MHD_Connection *conn, unsigned status,
                                     struct MHD_Response *r) {
    if (tl_job) {
        if (tl_job->resp) MHD_destroy_response(tl_job->resp);
        tl_job->resp = r;
        tl_job->status = status;
        return MHD_YES;
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- responses ------------------------------------------------------------ */

static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 char *body, size_t n) {
    struct MHD_Response *r = fd_http_response(body, n, ctype);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    return queue_or_keep(conn, status, r);
}

/* Takes o. */
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return MHD_NO;
    return send_body(conn, status, "application/json; charset=utf-8", s, strlen(s));
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                  const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", msg);
    return send_json(conn, status, o);
}

static const char *arg(struct MHD_Connection *conn, const char *name) {
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* An integer parameter in [lo, hi], def when absent; -1 when malformed. */
static int int_arg(struct MHD_Connection *conn, const char *name, int64_t lo, int64_t hi,
                   int64_t def, int64_t *v) {
    const char *s = arg(conn, name);
    if (!s) {
        *v = def;
        return 0;
    }
    if (parse_i64(s, v) < 0 || *v < lo || *v > hi) return -1;
    return 0;
}

/* Constant time in the length of the expected token. */
static int token_eq(const char *got, const char *want) {
    size_t n = strlen(want), m = got ? strlen(got) : 0;
    unsigned char d = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) d |= (unsigned char)(want[i] ^ (i < m ? got[i] : 0));
    return d == 0;
}

static int authorized(fd_web_t *w, struct MHD_Connection *conn) {
    const char *want = w->c->http_api_token;
    if (!want || !want[0]) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0) return token_eq(h + 7, want);
    return token_eq(arg(conn, "access_token"), want);
}

/* A worker's connection, opened on demand; NULL when Redis cannot be
 * reached (then 503). */
static redisContext *req_conn(fd_web_t *w, api_worker_t *k) {
    if (k->rc && k->rc->err) {
        redisFree(k->rc);
        k->rc = NULL;
    }
    if (k->rc) return k->rc;
    int64_t now = fd_clock_mono_ms();
    if (k->rc_fail_ms && now - k->rc_fail_ms < 1000) return NULL;
    char err[256];
    k->rc = fd_redis_connect_sync(w->c, w->c->redis_timeout_ms, err, sizeof err);
    if (!k->rc) {
        k->rc_fail_ms = now;
        fd_log(w->log, FD_LOG_WARN, "api redis connect failed", "error=\"%s\"", err);
    }
    return k->rc;
}

static int window_known(fd_web_t *w, const char *name) {
    for (int i = 0; i < w->c->nwindows; i++)
        if (!strcmp(w->windows[i], name)) return 1;
    return 0;
}

/* ---- readers shared by the API and the stream ----------------------------- */

/* {window: {field: value}} for every configured window; -1 on a Redis error. */
static int read_snapshots(fd_web_t *w, redisContext *rc, const char *scope, cJSON *out) {
    char key[WEB_KEY];
    for (int i = 0; i < w->c->nwindows; i++) {
        fd_key_result(key, sizeof key, w->c->prefix, scope, w->windows[i]);
        redisAppendCommand(rc, "HGETALL %s", key);
    }
    int ok = 0;
    for (int i = 0; i < w->c->nwindows; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK) return -1;
        if (!reply_ok(r)) ok = -1;
        cJSON_AddItemToObject(out, w->windows[i], hash_json(r));
        freeReplyObject(r);
    }
    return ok;
}

static const char *const COUNTERS[] = {"exposures", "interactions", "payments",
                                       "refunds",   "revenue",      "late"};
#define NCOUNTERS 6
static const char *const STEPS[] = {"exposed", "interacted", "paid"};

static int32_t day_label(fd_web_t *w, int64_t t) {
    pthread_mutex_lock(&w->cal_mu);
    int32_t d = fd_daycal_label(w->cal, t * 1000);
    pthread_mutex_unlock(&w->cal_mu);
    return d;
}

/* The first second of day d (YYYYMMDD labels grow with time), given lo in
 * an earlier day and hi in d. */
static int64_t day_start(fd_web_t *w, int64_t lo, int64_t hi, int32_t d) {
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (day_label(w, mid) >= d) hi = mid;
        else lo = mid;
    }
    return hi;
}

/* Bucket label and start of every bucket of gran in [from, to] (epoch s);
 * returns how many, at most cap (more: cap + 1). A d1 bucket starts at its
 * local midnight in time_zone, whatever from is. */
static int buckets(fd_web_t *w, fd_gran_t g, int64_t from, int64_t to, char (*lab)[24],
                   int64_t *start, int cap) {
    int n = 0;
    if (g == FD_GRAN_D1) { /* hour steps meet every calendar day, DST or not */
        int32_t last = 0;
        int64_t prev = from - 27 * 3600; /* a day is at most 25 h: an earlier day */
        for (int64_t t = from;; t += 3600) {
            if (t > to) t = to;
            int32_t d = day_label(w, t);
            if (d != last) {
                if (n < cap) {
                    snprintf(lab[n], 24, "%" PRId32, d);
                    start[n] = day_start(w, prev, t, d);
                }
                n++;
                last = d;
            }
            prev = t;
            if (t == to || n > cap) break;
        }
        return n;
    }
    int64_t step = g == FD_GRAN_M1 ? 60 : 3600;
    for (int64_t t = fd_floor_div(from, step) * step; t <= to && n <= cap; t += step) {
        if (n < cap) {
            snprintf(lab[n], 24, "%" PRId64, t);
            start[n] = t;
        }
        n++;
    }
    return n;
}

/* Every counter and distinct-user count of the n buckets into points[]
 * (objects with t, bucket and the nine figures). A scope without m1 HLLs
 * (hll_m1_groupings) has no distinct users per minute: its m1 points carry
 * null uv_* (docs/API.md). -1 on a Redis error. */
static int read_points(fd_web_t *w, redisContext *rc, const char *scope, fd_gran_t g,
                       char (*lab)[24], const int64_t *start, int n, cJSON *points) {
    char key[WEB_KEY];
    const char *gn = fd_gran_name(g);
    int uv = g != FD_GRAN_M1 || fd_conf_scope_hll_m1(w->c, scope);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s:c:%s:%s:%s", w->c->prefix, scope, gn, lab[i]);
        redisAppendCommand(rc, "HMGET %s %s %s %s %s %s %s", key, COUNTERS[0], COUNTERS[1],
                           COUNTERS[2], COUNTERS[3], COUNTERS[4], COUNTERS[5]);
        for (int s = 0; uv && s < 3; s++) {
            snprintf(key, sizeof key, "%s:u:%s:%s:%s:%s", w->c->prefix, scope, gn, lab[i], STEPS[s]);
            redisAppendCommand(rc, "PFCOUNT %s", key);
        }
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "t", (double)start[i]);
        cJSON_AddStringToObject(p, "bucket", lab[i]);
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
            cJSON_Delete(p);
            return -1;
        }
        if (!reply_ok(r) || r->type != REDIS_REPLY_ARRAY || r->elements != NCOUNTERS) ok = -1;
        for (int k = 0; k < NCOUNTERS; k++) {
            const char *v =
                ok == 0 && r->element[k]->type == REDIS_REPLY_STRING ? r->element[k]->str : "0";
            cJSON_AddItemToObject(p, COUNTERS[k], value_json(v));
        }
        freeReplyObject(r);
        for (int s = 0; s < 3; s++) {
            char name[32];
            snprintf(name, sizeof name, "uv_%s", STEPS[s]);
            if (!uv) {
                cJSON_AddNullToObject(p, name);
                continue;
            }
            if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
                cJSON_Delete(p);
                return -1;
            }
            if (!reply_ok(r)) ok = -1;
            cJSON_AddNumberToObject(p, name, (double)reply_int(r));
            freeReplyObject(r);
        }
        cJSON_AddItemToArray(points, p);
    }
    return ok;
}

/* Alert states and the latest transitions (as `funneld alerts`). */
static int read_alerts(fd_web_t *w, redisContext *rc, long limit, cJSON *out) {
    char key[WEB_KEY];
    cJSON *states = cJSON_AddArrayToObject(out, "alerts");
    fd_key_alert_index(key, sizeof key, w->c->prefix);
    redisReply *idx = redisCommand(rc, "SMEMBERS %s", key);
    if (!idx) return -1;
    int ok = idx->type == REDIS_REPLY_ARRAY ? 0 : -1;
    for (size_t i = 0; ok == 0 && i < idx->elements; i++) {
        fd_key_alert(key, sizeof key, w->c->prefix, idx->element[i]->str);
        redisReply *r = redisCommand(rc, "HGETALL %s", key);
        if (!r) {
            freeReplyObject(idx);
            return -1;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0)
            cJSON_AddItemToArray(states, hash_json(r));
        freeReplyObject(r);
    }
    freeReplyObject(idx);
    cJSON *trans = cJSON_AddArrayToObject(out, "transitions");
    fd_key_alert_stream(key, sizeof key, w->c->prefix);
    redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT %ld", key, limit);
    if (!r) return -1;
    if (r->type != REDIS_REPLY_ARRAY) ok = -1;
    for (size_t i = ok == 0 ? r->elements : 0; i > 0; i--) { /* oldest first */
        const redisReply *e = r->element[i - 1];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        const redisReply *f = e->element[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            if (!f->element[k]->str || strcmp(f->element[k]->str, "json")) continue;
            cJSON *t = cJSON_Parse(f->element[k + 1]->str);
            if (t) {
                cJSON_AddStringToObject(t, "stream_id", e->element[0]->str);
                cJSON_AddItemToArray(trans, t);
            }
        }
    }
    freeReplyObject(r);
    return ok;
}

/* Watermark, last flush, per-partition positions and event-time lag. */
static int read_freshness(fd_web_t *w, redisContext *rc, cJSON *out) {
    char k1[WEB_KEY], k2[WEB_KEY], k3[WEB_KEY];
    fd_key_offsets(k1, sizeof k1, w->c->prefix, w->c->group);
    fd_key_wm(k2, sizeof k2, w->c->prefix, w->c->group);
    fd_key_seen(k3, sizeof k3, w->c->prefix, w->c->group);
    redisReply *off = redisCommand(rc, "HGETALL %s", k1);
    redisReply *wm = off ? redisCommand(rc, "HGETALL %s", k2) : NULL;
    redisReply *seen = wm ? redisCommand(rc, "HGETALL %s", k3) : NULL;
    int ok = off && wm && seen && off->type == REDIS_REPLY_ARRAY && wm->type == REDIS_REPLY_ARRAY &&
                     seen->type == REDIS_REPLY_ARRAY
                 ? 0
                 : -1;
    int64_t now = fd_clock_wall_ms(), last_flush = 0;
    fd_watermark_t g;
    fd_watermark_init(&g);
    cJSON *parts = cJSON_AddArrayToObject(out, "partitions");
    for (size_t i = 0; ok == 0 && i + 1 < off->elements; i += 2) {
        const char *field = off->element[i]->str;
        int64_t ts = 0, sn = 0, o = 0;
        int have_ts = 0;
        parse_i64(off->element[i + 1]->str, &o);
        for (size_t j = 0; j + 1 < wm->elements; j += 2)
            if (!strcmp(wm->element[j]->str, field))
                have_ts = parse_i64(wm->element[j + 1]->str, &ts) == 0;
        for (size_t j = 0; j + 1 < seen->elements; j += 2)
            if (!strcmp(seen->element[j]->str, field)) parse_i64(seen->element[j + 1]->str, &sn);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "partition", field);
        cJSON_AddNumberToObject(p, "offset", (double)o);
        int64_t end = -1;
        pthread_mutex_lock(&w->mu);
        for (int k = 0; k < w->nends; k++)
            if (!strcmp(w->ends[k].field, field)) end = w->ends[k].end;
        pthread_mutex_unlock(&w->mu);
        if (end >= 0) {
            cJSON_AddNumberToObject(p, "end_offset", (double)end);
            cJSON_AddNumberToObject(p, "lag", (double)(end > o ? end - o : 0));
        } else {
            cJSON_AddNullToObject(p, "end_offset");
            cJSON_AddNullToObject(p, "lag");
        }
        if (have_ts) {
            cJSON_AddNumberToObject(p, "max_event_ms", (double)ts);
            cJSON_AddNumberToObject(p, "event_lag_ms", (double)(now - ts));
            fd_watermark_add(&g, ts, sn, now, w->c->idle_timeout_s * 1000);
        } else {
            cJSON_AddNullToObject(p, "max_event_ms");
            cJSON_AddNullToObject(p, "event_lag_ms");
        }
        if (sn) cJSON_AddNumberToObject(p, "last_flush_ms", (double)sn);
        else cJSON_AddNullToObject(p, "last_flush_ms");
        if (sn > last_flush) last_flush = sn;
        cJSON_AddItemToArray(parts, p);
    }
    int64_t gw;
    if (ok == 0 && fd_watermark_global(&g, w->c->lateness_s * 1000, &gw) == 0)
        cJSON_AddNumberToObject(out, "watermark_ms", (double)gw);
    else cJSON_AddNullToObject(out, "watermark_ms");
    if (last_flush) cJSON_AddNumberToObject(out, "last_flush_ms", (double)last_flush);
    else cJSON_AddNullToObject(out, "last_flush_ms");
    cJSON_AddNumberToObject(out, "now_ms", (double)now);
    if (off) freeReplyObject(off);
    if (wm) freeReplyObject(wm);
    if (seen) freeReplyObject(seen);
    pthread_mutex_lock(&w->mu);
    cJSON *note = w->last_note[0] ? cJSON_Parse(w->last_note) : NULL;
    cJSON *sse = cJSON_AddObjectToObject(out, "stream");
    cJSON_AddNumberToObject(sse, "clients", w->nclients);
    cJSON_AddNumberToObject(sse, "dropped", (double)w->dropped);
    pthread_mutex_unlock(&w->mu);
    cJSON_AddItemToObject(out, "last_snapshot", note ? note : cJSON_CreateNull());
    return ok;
}

/* ---- the API endpoints ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
    const char *id, *score;
} scope_row_t;

static int cmp_row(const void *a, const void *b) {
    return strcmp(((const scope_row_t *)a)->id, ((const scope_row_t *)b)->id);
}

/* Scope ids of {prefix}:scopes in byte order, filtered by q (substring);
 * offset paging: `cursor` is the offset of the next page. */
static enum MHD_Result api_scopes(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    int64_t limit, cursor;
    if (int_arg(conn, "limit", 1, WEB_MAX_LIST, 100, &limit) < 0)
        return send_error(conn, 400, "bad_parameter", "limit: an integer 1..%d", WEB_MAX_LIST);
    const char *cs = arg(conn, "cursor") ? "cursor" : "offset";
    if (int_arg(conn, cs, 0, INT32_MAX, 0, &cursor) < 0)
        return send_error(conn, 400, "bad_parameter", "%s: an integer >= 0", cs);
    const char *q = arg(conn, "q");
    char key[WEB_KEY];
    fd_key_scopes(key, sizeof key, w->c->prefix);
    redisReply *r = redisCommand(rc, "ZRANGE %s 0 -1 WITHSCORES", key);
    if (!r) return send_error(conn, 503, "redis_unavailable", "redis: %s", rc->errstr);
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return send_error(conn, 503, "redis_error", "reading the scopes failed");
    }
    size_t n = r->elements / 2, m = 0;
    scope_row_t *rows = calloc(n + 1, sizeof *rows);
    for (size_t i = 0; rows && i < n; i++)
        if (!q || !q[0] || strstr(r->element[2 * i]->str, q)) {
            rows[m].id = r->element[2 * i]->str;
            rows[m++].score = r->element[2 * i + 1]->str;
        }
    if (rows) qsort(rows, m, sizeof *rows, cmp_row);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "scopes");
    for (size_t i = (size_t)cursor; rows && i < m && i < (size_t)(cursor + limit); i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "id", rows[i].id);
        cJSON_AddNumberToObject(s, "updated_at", strtod(rows[i].score, NULL));
        cJSON_AddItemToArray(arr, s);
    }
    cJSON_AddNumberToObject(o, "total", (double)m);
    if ((size_t)(cursor + limit) < m)
        cJSON_AddNumberToObject(o, "next_cursor", (double)(cursor + limit));
    else cJSON_AddNullToObject(o, "next_cursor");
    free(rows);
    freeReplyObject(r);
    return send_json(conn, 200, o);
}

static const char *scope_arg(struct MHD_Connection *conn) {
    const char *s = arg(conn, "scope");
    return s && s[0] ? s : "all";
}

static int scope_ok(const char *s) { return strlen(s) < 400 && !strpbrk(s, " \r\n\t"); }

static enum MHD_Result api_snapshots(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    const char *scope = scope_arg(conn);
    if (!scope_ok(scope))
        return send_error(conn, 400, "bad_parameter", "scope: a scope id (docs/REDIS.md)");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", scope);
    cJSON *wins = cJSON_AddObjectToObject(o, "windows");
    if (read_snapshots(w, rc, scope, wins) < 0) {
        cJSON_Delete(o);
        return send_error(conn, 503, "redis_error", "reading the snapshots failed");
    }
    int found = 0;
    for (cJSON *x = wins->child; x; x = x->next) found |= x->child != NULL;
    if (!found) {
        cJSON_Delete(o);
        return send_error(conn, 404, "unknown_scope", "no snapshot for scope \"%s\"", scope);
    }
    return send_json(conn, 200, o);
}

/* metric → the point field it reads, or a rate's numerator/denominator. */
static int metric_parts(const char *m, const char **num, const char **den) {
    static const char *const plain[] = {"exposures",  "interactions",  "payments",
                                        "refunds",    "revenue",       "late",
                                        "uv_exposed", "uv_interacted", "uv_paid"};
    *den = NULL;
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (!strcmp(m, plain[i])) {
            *num = plain[i];
            return 0;
        }
    if (!strcmp(m, "interaction_rate")) {
        *num = "interactions";
        *den = "exposures";
        return 0;
    }
    if (!strcmp(m, "conversion_rate")) {
        *num = "uv_paid";
        *den = "uv_exposed";
        return 0;
    }
    return -1;
}

static enum MHD_Result api_series(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    const char *scope = scope_arg(conn);
    const char *metric = arg(conn, "metric") ? arg(conn, "metric") : "exposures";
    const char *gs = arg(conn, "gran") ? arg(conn, "gran") : "m1";
    const char *num, *den;
    if (!scope_ok(scope))
        return send_error(conn, 400, "bad_parameter", "scope: a scope id (docs/REDIS.md)");
    if (metric_parts(metric, &num, &den) < 0)
        return send_error(conn, 400, "bad_parameter",
                          "metric: one of exposures, interactions, payments, refunds, revenue, "
                          "late, uv_exposed, uv_interacted, uv_paid, interaction_rate, "
                          "conversion_rate");
    fd_gran_t g;
    if (!strcmp(gs, "m1")) g = FD_GRAN_M1;
    else if (!strcmp(gs, "h1")) g = FD_GRAN_H1;
    else if (!strcmp(gs, "d1")) g = FD_GRAN_D1;
    else return send_error(conn, 400, "bad_parameter", "gran: m1, h1 or d1");
    if (g == FD_GRAN_M1 && (!strncmp(num, "uv_", 3) || (den && !strncmp(den, "uv_", 3))) &&
        !fd_conf_scope_hll_m1(w->c, scope))
        return send_error(conn, 400, "no_m1_uniques",
                          "%s: the scope's grouping is not in hll_m1_groupings, so it has no "
                          "distinct users per minute; use gran=h1 or d1",
                          metric);
    int64_t to, from, span = g == FD_GRAN_M1 ? 3600 : g == FD_GRAN_H1 ? 86400 : 30 * 86400;
    if (int_arg(conn, "to", 0, INT64_C(1) << 40, now_s(), &to) < 0)
        return send_error(conn, 400, "bad_parameter", "to: epoch seconds");
    if (int_arg(conn, "from", 0, INT64_C(1) << 40, to - span, &from) < 0)
        return send_error(conn, 400, "bad_parameter", "from: epoch seconds");
    if (from > to) return send_error(conn, 400, "bad_parameter", "from must be <= to");
    char (*lab)[24] = malloc(sizeof(*lab) * WEB_MAX_POINTS);
    int64_t *start = malloc(sizeof(*start) * WEB_MAX_POINTS);
    if (!lab || !start) {
        free(lab);
        free(start);
        return MHD_NO;
    }
    int n = buckets(w, g, from, to, lab, start, WEB_MAX_POINTS);
    if (n > WEB_MAX_POINTS) {
        free(lab);
        free(start);
        return send_error(
            conn, 400, "too_many_points",
            "too many points: from..to spans more than %d %s buckets; narrow it or use a "
            "coarser gran",
            WEB_MAX_POINTS, gs);
    }
    cJSON *all = cJSON_CreateArray();
    int rc2 = read_points(w, rc, scope, g, lab, start, n, all);
    free(lab);
    free(start);
    if (rc2 < 0) {
        cJSON_Delete(all);
        return send_error(conn, 503, "redis_error", "reading the buckets failed");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", scope);
    cJSON_AddStringToObject(o, "metric", metric);
    cJSON_AddStringToObject(o, "gran", gs);
    cJSON_AddNumberToObject(o, "from", (double)from);
    cJSON_AddNumberToObject(o, "to", (double)to);
    if (den) {
        cJSON_AddStringToObject(o, "numerator", num);
        cJSON_AddStringToObject(o, "denominator", den);
    }
    cJSON *pts = cJSON_AddArrayToObject(o, "points");
    for (cJSON *p = all->child; p; p = p->next) {
        cJSON *q = cJSON_CreateObject();
        cJSON_AddItemToObject(q, "t", cJSON_Duplicate(cJSON_GetObjectItem(p, "t"), 1));
        cJSON_AddItemToObject(q, "bucket", cJSON_Duplicate(cJSON_GetObjectItem(p, "bucket"), 1));
        const cJSON *nv = cJSON_GetObjectItem(p, num);
        if (!den) {
            cJSON_AddItemToObject(q, "value", cJSON_Duplicate(nv, 1));
        } else {
            const cJSON *dv = cJSON_GetObjectItem(p, den);
            double dd = cJSON_GetNumberValue(dv), nn = cJSON_GetNumberValue(nv);
            if (dd > 0) cJSON_AddNumberToObject(q, "value", rate6(nn / dd));
            else cJSON_AddNullToObject(q, "value");
            cJSON_AddItemToObject(q, "numerator", cJSON_Duplicate(nv, 1));
            cJSON_AddItemToObject(q, "denominator", cJSON_Duplicate(dv, 1));
        }
        cJSON_AddItemToArray(pts, q);
    }
    cJSON_Delete(all);
    return send_json(conn, 200, o);
}

/* The child scopes of scope along dim (`product=p1` by `channel`: every
 * `product=p1,channel=...`), each with its snapshot of window. */
static enum MHD_Result api_breakdown(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    const char *scope = scope_arg(conn);
    const char *dim = arg(conn, "dim");
    const char *win = arg(conn, "window") ? arg(conn, "window") : w->windows[0];
    if (!scope_ok(scope))
        return send_error(conn, 400, "bad_parameter", "scope: a scope id (docs/REDIS.md)");
    if (!dim || !dim[0] || strpbrk(dim, "=,:") || strlen(dim) > 32)
        return send_error(conn, 400, "bad_parameter",
                          "dim: a dimension name (product, channel, community, campaign, content)");
    if (!window_known(w, win))
        return send_error(conn, 400, "bad_parameter", "window: one of the configured windows");
    char pre[600];
    if (!strcmp(scope, "all")) snprintf(pre, sizeof pre, "%s=", dim);
    else snprintf(pre, sizeof pre, "%s,%s=", scope, dim);
    size_t pl = strlen(pre);
    char key[WEB_KEY];
    fd_key_scopes(key, sizeof key, w->c->prefix);
    redisReply *r = redisCommand(rc, "ZRANGE %s 0 -1", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return send_error(conn, 503, "redis_error", "reading the scopes failed");
    }
    const char **ids = calloc(r->elements + 1, sizeof *ids);
    size_t m = 0;
    for (size_t i = 0; ids && i < r->elements; i++) {
        const char *id = r->element[i]->str;
        if (!strncmp(id, pre, pl) && !strchr(id + pl, ',')) ids[m++] = id;
    }
    if (ids) qsort(ids, m, sizeof *ids, cmp_str);
    if (m > WEB_MAX_BREAKDOWN) m = WEB_MAX_BREAKDOWN;
    for (size_t i = 0; i < m; i++) {
        fd_key_result(key, sizeof key, w->c->prefix, ids[i], win);
        redisAppendCommand(rc, "HGETALL %s", key);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", scope);
    cJSON_AddStringToObject(o, "dim", dim);
    cJSON_AddStringToObject(o, "window", win);
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    int bad = 0;
    for (size_t i = 0; i < m; i++) {
        redisReply *s = NULL;
        if (redisGetReply(rc, (void **)&s) != REDIS_OK) {
            bad = 1;
            break;
        }
        if (s->type == REDIS_REPLY_ARRAY && s->elements > 0) {
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "scope", ids[i]);
            cJSON_AddStringToObject(row, "value", ids[i] + pl);
            cJSON_AddItemToObject(row, "snapshot", hash_json(s));
            cJSON_AddItemToArray(rows, row);
        }
        freeReplyObject(s);
    }
    free(ids);
    freeReplyObject(r);
    if (bad) {
        cJSON_Delete(o);
        return send_error(conn, 503, "redis_unavailable", "reading the snapshots failed");
    }
    return send_json(conn, 200, o);
}

/* The metrics of every board, in the order the list shows them. */
static const char *const board_metrics[] = {"revenue", "uv_paid", "conversion_rate"};

/* The list of boards that exist: every board the configuration can produce
 * (fd_grouping_has_boards, the writer's own rule, x windows x metrics) with
 * one pipelined EXISTS each. It never walks the keyspace, so its cost is the
 * number of configured boards, whatever else the database holds. */
static enum MHD_Result list_boards(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    const fd_conf_t *c = w->c;
    enum { NM = sizeof board_metrics / sizeof board_metrics[0] };
    char gnames[FD_MAX_GROUPINGS][256];
    size_t sent = 0;
    int bad = 0;
    for (int gi = 0; gi < c->ngroupings; gi++) {
        if (!fd_grouping_has_boards(&c->groupings[gi])) continue;
        fd_grouping_name(gnames[gi], sizeof gnames[gi], &c->groupings[gi]);
        for (int wi = 0; wi < c->nwindows; wi++)
            for (int m = 0; m < NM; m++) {
                char key[WEB_KEY];
                snprintf(key, sizeof key, "%s:lb:%s:%s:%s", c->prefix, gnames[gi], w->windows[wi],
                         board_metrics[m]);
                if (redisAppendCommand(rc, "EXISTS %s", key) != REDIS_OK) bad = 1;
                else sent++;
            }
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *boards = cJSON_AddArrayToObject(o, "boards");
    /* every reply sent is read, an error reply too, so none is left to
     * answer the next request on this connection; a broken connection stops
     * the loop (rc->err: it is reopened by the next request) */
    size_t got = 0;
    int broken = 0;
    for (int gi = 0; gi < c->ngroupings && !broken; gi++) {
        if (!fd_grouping_has_boards(&c->groupings[gi])) continue;
        for (int wi = 0; wi < c->nwindows && !broken; wi++)
            for (int m = 0; m < NM && !broken && got < sent; m++) {
                redisReply *r = NULL;
                if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
                    broken = 1;
                    break;
                }
                got++;
                if (r->type != REDIS_REPLY_INTEGER) {
                    bad = 1;
                } else if (r->integer > 0) {
                    char key[WEB_KEY];
                    snprintf(key, sizeof key, "%s:lb:%s:%s:%s", c->prefix, gnames[gi],
                             w->windows[wi], board_metrics[m]);
                    cJSON *b = cJSON_CreateObject();
                    cJSON_AddStringToObject(b, "key", key);
                    cJSON_AddStringToObject(b, "grouping", gnames[gi]);
                    cJSON_AddStringToObject(b, "window", w->windows[wi]);
                    cJSON_AddStringToObject(b, "metric", board_metrics[m]);
                    cJSON_AddItemToArray(boards, b);
                }
                freeReplyObject(r);
            }
    }
    if (bad || broken) {
        cJSON_Delete(o);
        return send_error(conn, 503, "redis_error", "listing the leaderboards failed");
    }
    return send_json(conn, 200, o);
}

/* One board `{prefix}:lb:{grouping}:{window}:{metric}`, or, without
 * grouping, the list of boards that exist. */
static enum MHD_Result api_leaderboards(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    const char *grouping = arg(conn, "grouping");
    const char *win = arg(conn, "window") ? arg(conn, "window") : w->windows[0];
    const char *metric = arg(conn, "metric") ? arg(conn, "metric") : "revenue";
    int64_t limit;
    if (int_arg(conn, "limit", 1, WEB_MAX_LIST, 10, &limit) < 0)
        return send_error(conn, 400, "bad_parameter", "limit: an integer 1..%d", WEB_MAX_LIST);
    if (!window_known(w, win))
        return send_error(conn, 400, "bad_parameter", "window: one of the configured windows");
    if (strcmp(metric, "revenue") && strcmp(metric, "uv_paid") && strcmp(metric, "conversion_rate"))
        return send_error(conn, 400, "bad_parameter", "metric: revenue, uv_paid or conversion_rate");
    char key[WEB_KEY];
    cJSON *o = cJSON_CreateObject();
    if (!grouping || !grouping[0]) {
        cJSON_Delete(o);
        return list_boards(w, conn, rc);
    }
    if (strlen(grouping) > 200 || strpbrk(grouping, " \r\n"))
        return send_error(conn, 400, "bad_parameter", "grouping: dimension names joined by ','");
    snprintf(key, sizeof key, "%s:lb:%s:%s:%s", w->c->prefix, grouping, win, metric);
    redisReply *r = redisCommand(rc, "ZREVRANGE %s 0 %lld WITHSCORES", key, (long long)limit - 1);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        cJSON_Delete(o);
        return send_error(conn, 503, "redis_error", "reading the leaderboard failed");
    }
    cJSON_AddStringToObject(o, "grouping", grouping);
    cJSON_AddStringToObject(o, "window", win);
    cJSON_AddStringToObject(o, "metric", metric);
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    /* a rate is never shown bare: its fraction from the scope's snapshot of
     * the same window (null when there is none) */
    int rate = !strcmp(metric, "conversion_rate");
    for (size_t i = 0; rate && i + 1 < r->elements; i += 2) {
        fd_key_result(key, sizeof key, w->c->prefix, r->element[i]->str, win);
        redisAppendCommand(rc, "HMGET %s uv_paid uv_exposed", key);
    }
    int bad = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "rank", (double)(i / 2 + 1));
        cJSON_AddStringToObject(row, "scope", r->element[i]->str);
        cJSON_AddNumberToObject(row, "value", strtod(r->element[i + 1]->str, NULL));
        redisReply *f = NULL;
        if (rate && !bad && redisGetReply(rc, (void **)&f) != REDIS_OK) bad = 1;
        if (rate) {
            int ok = f && f->type == REDIS_REPLY_ARRAY && f->elements == 2;
            cJSON_AddItemToObject(row, "numerator", value_json(ok ? f->element[0]->str : NULL));
            cJSON_AddItemToObject(row, "denominator", value_json(ok ? f->element[1]->str : NULL));
        }
        if (f) freeReplyObject(f);
        cJSON_AddItemToArray(rows, row);
    }
    freeReplyObject(r);
    if (bad) {
        cJSON_Delete(o);
        return send_error(conn, 503, "redis_unavailable", "reading the snapshots failed");
    }
    return send_json(conn, 200, o);
}

static enum MHD_Result api_alerts(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    int64_t limit;
    if (int_arg(conn, "limit", 1, 10000, 20, &limit) < 0)
        return send_error(conn, 400, "bad_parameter", "limit: an integer 1..10000");
    cJSON *o = cJSON_CreateObject();
    if (read_alerts(w, rc, (long)limit, o) < 0) {
        cJSON_Delete(o);
        return send_error(conn, 503, "redis_error", "reading the alerts failed");
    }
    return send_json(conn, 200, o);
}

static enum MHD_Result api_freshness(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "group", w->c->group);
    if (read_freshness(w, rc, o) < 0) {
        cJSON_Delete(o);
        return send_error(conn, 503, "redis_error", "reading the partitions failed");
    }
    return send_json(conn, 200, o);
}

static enum MHD_Result api_index(fd_web_t *w, struct MHD_Connection *conn) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", "v1");
    cJSON_AddStringToObject(o, "prefix", w->c->prefix);
    cJSON *wins = cJSON_AddArrayToObject(o, "windows");
    for (int i = 0; i < w->c->nwindows; i++)
        cJSON_AddItemToArray(wins, cJSON_CreateString(w->windows[i]));
    cJSON *eps = cJSON_AddArrayToObject(o, "endpoints");
    static const char *const names[] = {"scopes",       "snapshots", "series",    "breakdown",
                                        "leaderboards", "alerts",    "freshness", "stream"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[64];
        snprintf(p, sizeof p, "/api/v1/%s", names[i]);
        cJSON_AddItemToArray(eps, cJSON_CreateString(p));
    }
    return send_json(conn, 200, o);
}

/* ---- the event stream -------------------------------------------------------- */

/* Appends one event to c (mu held); marks c dead when unsent bytes would
 * pass the bound (an empty buffer always takes one event, so the first
 * state goes out whatever its size), and wakes it either way. */
static void client_push(fd_web_t *w, sse_client_t *c, const char *s, size_t n) {
    if (c->dead) return;
    size_t pending = c->len - c->off;
    if (pending > 0 && pending + n > (size_t)w->c->http_sse_max_buffer_bytes) {
        c->dead = 1;
        w->dropped++;
        free(c->buf);
        c->buf = NULL;
        c->len = c->off = c->cap = 0;
    } else {
        if (c->off > 0) {
            memmove(c->buf, c->buf + c->off, pending);
            c->len = pending;
            c->off = 0;
        }
        if (c->len + n > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + n) cap *= 2;
            char *b = realloc(c->buf, cap);
            if (!b) return;
            c->buf = b;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, s, n);
        c->len += n;
    }
    if (c->suspended) {
        c->suspended = 0;
        MHD_resume_connection(c->conn);
    }
}

/* "id: N\nevent: NAME\ndata: JSON\n\n" (JSON is one line). */
static char *sse_event(fd_web_t *w, const char *name, const char *json, size_t *n) {
    size_t cap = strlen(json) + strlen(name) + 64;
    char *s = malloc(cap);
    if (!s) return NULL;
    w->seq++;
    *n = (size_t)snprintf(s, cap, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", w->seq, name, json);
    return s;
}

/* The state a client of scope gets: snapshots of every window, the m1
 * points of the last `minutes` minutes, and (full) the alerts and the
 * freshness. NULL on a Redis error. */
static char *state_json(fd_web_t *w, redisContext *rc, const char *scope, int minutes, int full) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", scope);
    int bad = read_snapshots(w, rc, scope, cJSON_AddObjectToObject(o, "windows")) < 0;
    int64_t to = now_s(), from = to - (int64_t)minutes * 60;
    char (*lab)[24] = malloc(sizeof(*lab) * WEB_MAX_POINTS);
    int64_t *start = malloc(sizeof(*start) * WEB_MAX_POINTS);
    if (!bad && lab && start) {
        int n = buckets(w, FD_GRAN_M1, from, to, lab, start, WEB_MAX_POINTS);
        if (n > WEB_MAX_POINTS) n = WEB_MAX_POINTS;
        bad = read_points(w, rc, scope, FD_GRAN_M1, lab, start, n,
                          cJSON_AddArrayToObject(o, "series")) < 0;
    }
    free(lab);
    free(start);
    if (!bad && full) {
        cJSON *al = cJSON_AddObjectToObject(o, "alerts");
        bad = read_alerts(w, rc, 20, al) < 0;
    }
    if (!bad) {
        cJSON *fr = cJSON_AddObjectToObject(o, "freshness");
        bad = read_freshness(w, rc, fr) < 0;
    }
    char *s = bad ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse_client_t *c = cls;
    fd_web_t *w = c->w;
    pthread_mutex_lock(&w->mu);
    if (c->dead || w->stop) { /* ends the response; the client reconnects to a fresh state */
        pthread_mutex_unlock(&w->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = c->len - c->off;
    if (n > 0) {
        if (n > max) n = max;
        memcpy(buf, c->buf + c->off, n);
        c->off += n;
        pthread_mutex_unlock(&w->mu);
        return (ssize_t)n;
    }
    c->suspended = 1;
    MHD_suspend_connection(c->conn);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void sse_free(void *cls) {
    sse_client_t *c = cls;
    fd_web_t *w = c->w;
    pthread_mutex_lock(&w->mu);
    if (c->prev) c->prev->next = c->next;
    else w->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    w->nclients--;
    pthread_mutex_unlock(&w->mu);
    free(c->buf);
    free(c);
}

static enum MHD_Result api_stream(fd_web_t *w, struct MHD_Connection *conn, redisContext *rc) {
    const char *scope = scope_arg(conn);
    int64_t minutes;
    if (!scope_ok(scope))
        return send_error(conn, 400, "bad_parameter", "scope: a scope id (docs/REDIS.md)");
    if (int_arg(conn, "minutes", 1, 1440, 60, &minutes) < 0)
        return send_error(conn, 400, "bad_parameter", "minutes: history, an integer 1..1440");
    pthread_mutex_lock(&w->mu);
    int full = w->nclients >= w->c->http_sse_max_clients;
    pthread_mutex_unlock(&w->mu);
    if (full)
        return send_error(conn, 503, "too_many_clients",
                          "http.sse_max_clients (%" PRId64 ") stream clients are connected",
                          w->c->http_sse_max_clients);
    char *st = state_json(w, rc, scope, (int)minutes, 1);
    if (!st) return send_error(conn, 503, "redis_error", "reading the state failed");
    sse_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        free(st);
        return MHD_NO;
    }
    c->w = w;
    c->conn = conn;
    snprintf(c->scope, sizeof c->scope, "%s", scope);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, c, sse_free);
    if (!r) {
        free(st);
        free(c);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    pthread_mutex_lock(&w->mu);
    size_t n;
    char *ev = sse_event(w, "state", st, &n);
    const char *retry = "retry: 2000\n\n";
    client_push(w, c, retry, strlen(retry));
    if (ev) client_push(w, c, ev, n);
    c->next = w->clients;
    if (w->clients) w->clients->prev = c;
    w->clients = c;
    w->nclients++;
    pthread_mutex_unlock(&w->mu);
    free(ev);
    free(st);
    /* a stream is quiet between heartbeats: it times out only when a
     * client stops reading for two of them */
    unsigned to = (unsigned)(w->c->http_sse_heartbeat_ms * 2 / 1000 + 1);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, to);
    /* the kernel's share of a stream is bounded too: autotuned send buffers
     * of megabytes times a thousand clients would hide a slow reader for
     * minutes and hold gigabytes */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int sndbuf = SSE_SNDBUF;
    if (ci) setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    return queue_or_keep(conn, 200, r);
}

/* Stream thread: a snapshot note → one "update" per watched scope. */
static void on_note(fd_web_t *w, redisContext *qc, const char *note) {
    pthread_mutex_lock(&w->mu);
    snprintf(w->last_note, sizeof w->last_note, "%s", note);
    int n = 0;
    char (*scopes)[512] = w->nclients > 0 ? malloc(sizeof(*scopes) * (size_t)w->nclients) : NULL;
    for (sse_client_t *c = w->clients; scopes && c; c = c->next) {
        int seen = 0;
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(scopes[i], c->scope);
        if (!seen) snprintf(scopes[n++], 512, "%s", c->scope);
    }
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < n; i++) {
        /* the last minutes only: a client keeps the history it got first */
        char *st = state_json(w, qc, scopes[i], 5, 0);
        if (!st) break;
        pthread_mutex_lock(&w->mu);
        size_t len;
        char *ev = sse_event(w, "update", st, &len);
        for (sse_client_t *c = w->clients; ev && c; c = c->next)
            if (!strcmp(c->scope, scopes[i])) client_push(w, c, ev, len);
        pthread_mutex_unlock(&w->mu);
        free(ev);
        free(st);
    }
    free(scopes);
}

static void broadcast(fd_web_t *w, const char *name, const char *json) {
    pthread_mutex_lock(&w->mu);
    size_t n;
    char *ev = name ? sse_event(w, name, json, &n) : NULL;
    const char *s = ev ? ev : json;
    if (!ev) n = strlen(json);
    for (sse_client_t *c = w->clients; c; c = c->next) client_push(w, c, s, n);
    pthread_mutex_unlock(&w->mu);
    free(ev);
}

static int stopping(fd_web_t *w) {
    pthread_mutex_lock(&w->mu);
    int s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

static void set_sub_up(fd_web_t *w, int up) {
    pthread_mutex_lock(&w->mu);
    w->sub_up = up;
    pthread_mutex_unlock(&w->mu);
}

/* Stream thread: the end offset of every partition funneld stores an offset
 * for, whose topic is one of kafka.topics (replay's own names are not in
 * Kafka), so that freshness can show the consumer lag (end − stored).
 * A query that fails ends the round: an unreachable broker costs one
 * LAG_QUERY_MS per LAG_EVERY_MS. */
static void read_ends(fd_web_t *w, redisContext *qc, rd_kafka_t **rk) {
    if (!*rk) {
        char err[256];
        rd_kafka_conf_t *kc = fd_kafka_conf(RD_KAFKA_CONSUMER, w->c->brokers, w->c->kprops,
                                            w->c->nkprops, NULL, err, sizeof err);
        if (!kc) return;
        rd_kafka_conf_set_log_cb(kc, fd_kafka_log_cb);
        rd_kafka_conf_set_error_cb(kc, fd_kafka_error_cb);
        rd_kafka_conf_set_opaque(kc, &w->kop);
        if (!(*rk = fd_kafka_new(RD_KAFKA_CONSUMER, kc, "kafka lag reader", err, sizeof err)))
            return;
    }
    rd_kafka_poll(*rk, 0); /* serves error events */
    char key[WEB_KEY];
    fd_key_offsets(key, sizeof key, w->c->prefix, w->c->group);
    redisReply *r = redisCommand(qc, "HGETALL %s", key);
    if (!r) return;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *field = r->element[i]->str;
        const char *colon = strrchr(field, ':');
        if (!colon || strlen(field) >= sizeof w->ends[0].field) continue;
        char topic[256];
        snprintf(topic, sizeof topic, "%.*s", (int)(colon - field), field);
        int known = 0;
        for (int t = 0; t < w->c->ntopics; t++) known |= !strcmp(w->c->topics[t].name, topic);
        if (!known) continue;
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(*rk, topic, atoi(colon + 1), &lo, &hi, LAG_QUERY_MS) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        pthread_mutex_lock(&w->mu);
        int k = 0;
        while (k < w->nends && strcmp(w->ends[k].field, field)) k++;
        if (k < LAG_MAX_PARTS) {
            if (k == w->nends) {
                snprintf(w->ends[k].field, sizeof w->ends[k].field, "%s", field);
                w->nends++;
            }
            w->ends[k].end = hi;
        }
        pthread_mutex_unlock(&w->mu);
    }
    freeReplyObject(r);
}

static void *stream_main(void *arg) {
    fd_web_t *w = arg;
    char upd[WEB_KEY], alr[WEB_KEY], err[256];
    fd_key_updates(upd, sizeof upd, w->c->prefix);
    fd_key_alert_stream(alr, sizeof alr, w->c->prefix);
    redisContext *sub = NULL, *qc = NULL;
    rd_kafka_t *rk = NULL;
    int64_t beat = fd_clock_mono_ms(), lag_at = 0;
    while (!stopping(w)) {
        int64_t now = fd_clock_mono_ms();
        if (now - beat >= w->c->http_sse_heartbeat_ms) {
            broadcast(w, NULL, ": heartbeat\n\n");
            beat = now;
        }
        if (!sub || !qc) {
            if (!sub) sub = fd_redis_connect_sync(w->c, w->c->redis_timeout_ms, err, sizeof err);
            if (!qc) qc = fd_redis_connect_sync(w->c, w->c->redis_timeout_ms, err, sizeof err);
            redisReply *r = sub && qc ? redisCommand(sub, "SUBSCRIBE %s %s", upd, alr) : NULL;
            if (r) freeReplyObject(r);
            r = NULL;
            if (!sub || !qc || sub->err || redisGetReply(sub, (void **)&r) != REDIS_OK) {
                if (sub) redisFree(sub);
                sub = NULL;
                if (r) freeReplyObject(r);
                set_sub_up(w, 0);
                usleep(500 * 1000);
                continue;
            }
            freeReplyObject(r);
            set_sub_up(w, 1);
        }
        if (now - lag_at >= LAG_EVERY_MS && w->c->ntopics > 0) {
            read_ends(w, qc, &rk);
            lag_at = fd_clock_mono_ms();
            if (qc->err) {
                redisFree(qc);
                qc = NULL;
                redisFree(sub);
                sub = NULL;
                set_sub_up(w, 0);
                continue;
            }
        }
        struct pollfd p = {.fd = sub->fd, .events = POLLIN};
        int pr = poll(&p, 1, 250);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        if (redisBufferRead(sub) != REDIS_OK) {
            redisFree(sub);
            sub = NULL;
            set_sub_up(w, 0);
            continue;
        }
        void *rv = NULL;
        while (sub && redisGetReplyFromReader(sub, &rv) == REDIS_OK && rv) {
            redisReply *r = rv;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                !strcmp(r->element[0]->str, "message") && r->element[2]->str) {
                if (!strcmp(r->element[1]->str, upd)) {
                    on_note(w, qc, r->element[2]->str);
                    if (qc->err) { /* both again: a clean SUBSCRIBE on a new connection */
                        redisFree(qc);
                        qc = NULL;
                        freeReplyObject(r);
                        r = NULL;
                        redisFree(sub);
                        sub = NULL;
                        set_sub_up(w, 0);
                        break;
                    }
                } else {
                    broadcast(w, "alert", r->element[2]->str);
                }
            }
            if (r) freeReplyObject(r);
            rv = NULL;
        }
    }
    if (sub) redisFree(sub);
    if (qc) redisFree(qc);
    if (rk) rd_kafka_destroy(rk);
    return NULL;
}

/* ---- static files ---------------------------------------------------------------- */

static const char *ctype_of(const char *name) {
    const char *e = strrchr(name, '.');
    if (!e) return "application/octet-stream";
    if (!strcmp(e, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(e, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(e, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(e, ".json")) return "application/json";
    if (!strcmp(e, ".png")) return "image/png";
    if (!strcmp(e, ".svg")) return "image/svg+xml";
    return "application/octet-stream";
}

/* The screen's files: never sniffed as another type, and the page may load
 * only its own scripts (ECharts is served from the same folder), talk only
 * to its own origin (the API and the stream) and not be framed. Inline
 * styles stay allowed: ECharts positions its tooltip through them. */
#define WEB_CSP \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " \
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; " \
    "frame-ancestors 'none'; form-action 'none'"

static enum MHD_Result send_file_body(struct MHD_Connection *conn, const char *ctype, char *body,
                                      size_t n) {
    struct MHD_Response *r = fd_http_response(body, n, ctype);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", WEB_CSP);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result serve_file(fd_web_t *w, struct MHD_Connection *conn, const char *url) {
    if (!w->dir[0]) /* no screen files: never "/" + name */
        return send_error(conn, 404, "not_found", "no such page");
    const char *name = !strcmp(url, "/") ? "index.html" : url + 1;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ||
            (p[0] == '.' && p[1] == '.'))
            return send_error(conn, 404, "not_found", "no such page");
    if (name[0] == '.') /* ".", hidden files: never the folder itself */
        return send_error(conn, 404, "not_found", "no such page");
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", w->dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) return send_error(conn, 404, "not_found", "no such page");
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return send_error(conn, 404, "not_found", "no such page");
    }
    long n = (long)st.st_size;
    char *body = n >= 0 && n < 64L * 1024 * 1024 ? malloc((size_t)n + 1) : NULL;
    if (!body || fread(body, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        free(body);
        return send_error(conn, 500, "read_failed", "cannot read %s", name);
    }
    fclose(fp);
    return send_file_body(conn, ctype_of(name), body, (size_t)n);
}

/* ---- the API workers ---------------------------------------------------------------- */

/* Answers one job on a worker: the answer is kept in the job (tl_job). */
static void job_run(fd_web_t *w, api_worker_t *k, api_job_t *j, int stop) {
    tl_job = j;
    enum MHD_Result ret;
    redisContext *rc = stop ? NULL : req_conn(w, k);
    if (stop) ret = send_error(j->conn, 503, "shutting_down", "the server is stopping");
    else if (!rc) ret = send_error(j->conn, 503, "redis_unavailable", "redis cannot be reached");
    else {
        /* a stream is counted only once its state is read: two opening at
         * once on two workers could both pass the bound */
        int opening = j->fn == api_stream;
        if (opening) pthread_mutex_lock(&w->open_mu);
        ret = j->fn(w, j->conn, rc);
        if (opening) pthread_mutex_unlock(&w->open_mu);
        if (rc->err) { /* a broken connection is reopened by the next request */
            redisFree(k->rc);
            k->rc = NULL;
        }
    }
    tl_job = NULL;
    if (ret != MHD_YES && j->resp) { /* the endpoint gave up: close the connection */
        MHD_destroy_response(j->resp);
        j->resp = NULL;
    }
}

static void *worker_main(void *arg) {
    api_worker_t *k = arg;
    fd_web_t *w = k->w;
    pthread_mutex_lock(&w->jmu);
    for (;;) {
        while (!w->jhead && !w->jstop) pthread_cond_wait(&w->jcv, &w->jmu);
        api_job_t *j = w->jhead;
        if (!j) break; /* stopping and nothing waits */
        w->jhead = j->qnext;
        if (!w->jhead) w->jtail = NULL;
        w->jqueued--;
        int stop = w->jstop;
        pthread_mutex_unlock(&w->jmu);
        job_run(w, k, j, stop);
        struct MHD_Connection *conn = j->conn;
        pthread_mutex_lock(&w->jmu);
        j->done = 1; /* from here the server thread may free j */
        pthread_mutex_unlock(&w->jmu);
        MHD_resume_connection(conn);
        pthread_mutex_lock(&w->jmu);
    }
    pthread_mutex_unlock(&w->jmu);
    if (k->rc) redisFree(k->rc);
    k->rc = NULL;
    return NULL;
}

/* Server thread: suspends conn and queues fn for a worker; a full queue (or
 * a stopping server) answers 503 at once. */
static enum MHD_Result job_submit(fd_web_t *w, struct MHD_Connection *conn, api_fn fn, void **state) {
    pthread_mutex_lock(&w->jmu);
    int stopping = w->jstop || w->nworkers == 0;
    int full = stopping || w->jqueued >= WEB_API_QUEUE;
    api_job_t *j = full ? NULL : calloc(1, sizeof *j);
    if (j) {
        j->conn = conn;
        j->fn = fn;
        if (w->jtail) w->jtail->qnext = j;
        else w->jhead = j;
        w->jtail = j;
        w->jqueued++;
        j->anext = w->jobs;
        if (w->jobs) w->jobs->aprev = j;
        w->jobs = j;
        *state = j;
        /* under jmu: no worker can take the job (and resume conn) before
         * the connection is suspended */
        MHD_suspend_connection(conn);
        pthread_cond_signal(&w->jcv);
    }
    pthread_mutex_unlock(&w->jmu);
    if (stopping) return send_error(conn, 503, "shutting_down", "the server is stopping");
    if (!j)
        return send_error(conn, 503, "busy",
                          "%d API requests are waiting for Redis; try again later", WEB_API_QUEUE);
    return MHD_YES;
}

/* Server thread, called again for a resumed connection: queues the kept
 * answer and frees the job. */
static enum MHD_Result job_answer(fd_web_t *w, struct MHD_Connection *conn, void **state) {
    api_job_t *j = *state;
    pthread_mutex_lock(&w->jmu);
    int done = j->done;
    if (done) {
        if (j->aprev) j->aprev->anext = j->anext;
        else w->jobs = j->anext;
        if (j->anext) j->anext->aprev = j->aprev;
    }
    pthread_mutex_unlock(&w->jmu);
    if (!done) return MHD_YES; /* not resumed by a worker: nothing to answer yet */
    *state = NULL;
    enum MHD_Result ret = MHD_NO;
    if (j->resp) {
        ret = MHD_queue_response(conn, j->status, j->resp);
        MHD_destroy_response(j->resp);
    }
    free(j);
    return ret;
}

/* ---- routing ------------------------------------------------------------------------ */

/* Well-formed UTF-8 without a NUL (which would cut the C string short). */
static int utf8_text(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        int k = *p ? fd_utf8_len(p, end) : 0;
        if (!k) return 0;
        p += k;
    }
    return 1;
}

/* The first query parameter that is not UTF-8 text: its name, or "" when
 * the name itself is not (kept in *(const char **)cls). */
static enum MHD_Result arg_text(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size) {
    (void)kind;
    const char **bad = cls;
    if (!utf8_text(key, key_size)) *bad = "";
    else if (value && !utf8_text(value, value_size)) *bad = key;
    return *bad ? MHD_NO : MHD_YES;
}

static int route(void *ud, struct MHD_Connection *conn, const char *url, void **state) {
    fd_web_t *w = ud;
    if (*state) return job_answer(w, conn, state);
    if (strncmp(url, "/api/", 5) != 0) return serve_file(w, conn, url);
    /* parameters are echoed into JSON (UTF-8) and read as C strings */
    const char *bad = NULL;
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, arg_text, &bad);
    if (bad)
        return send_error(conn, 400, "bad_parameter", "%s: not UTF-8 text (or holds a NUL)",
                          bad[0] ? bad : "a parameter name");
    if (!authorized(w, conn))
        return send_error(conn, 401, "unauthorized", "a valid bearer token is required");
    if (!strcmp(url, "/api/v1") || !strcmp(url, "/api/v1/")) return api_index(w, conn);
    static const struct {
        const char *path;
        api_fn fn;
    } eps[] = {{"/api/v1/scopes", api_scopes},
               {"/api/v1/snapshots", api_snapshots},
               {"/api/v1/series", api_series},
               {"/api/v1/breakdown", api_breakdown},
               {"/api/v1/leaderboards", api_leaderboards},
               {"/api/v1/alerts", api_alerts},
               {"/api/v1/freshness", api_freshness},
               {"/api/v1/stream", api_stream}};
    for (size_t i = 0; i < sizeof eps / sizeof *eps; i++) {
        if (strcmp(url, eps[i].path)) continue;
        return job_submit(w, conn, eps[i].fn, state);
    }
    return send_error(conn, 404, "not_found", "no such endpoint: %s", url);
}

/* ---- lifetime ------------------------------------------------------------------------- */

static int dir_has_index(const char *dir) {
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/index.html", dir);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* http.dashboard_dir, else dashboard/ next to the binary (the build tree),
 * else ../share/funneld/dashboard from it (an installed binary). */
static int find_dir(fd_web_t *w, char *err, size_t errlen) {
    const char *cfg = w->c->http_dashboard_dir;
    if (cfg && cfg[0]) {
        snprintf(w->dir, sizeof w->dir, "%s", cfg);
        if (dir_has_index(w->dir)) return 0;
        snprintf(err, errlen, "http.dashboard_dir: no index.html in \"%.200s\"", cfg);
        return -1;
    }
    char exe[900];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(w->dir, sizeof w->dir, "%s/dashboard", exe);
        if (dir_has_index(w->dir)) return 0;
        snprintf(w->dir, sizeof w->dir, "%s/../share/funneld/dashboard", exe);
        if (dir_has_index(w->dir)) return 0;
    }
    /* no screen files: the API still works, the pages answer 404 */
    w->dir[0] = 0;
    return 0;
}

static int workers_start(fd_web_t *w, char *err, size_t errlen) {
    w->workers = calloc(WEB_API_WORKERS, sizeof *w->workers);
    if (!w->workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < WEB_API_WORKERS; i++) {
        w->workers[i].w = w;
        if (pthread_create(&w->workers[i].thr, NULL, worker_main, &w->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start an API worker thread");
            return -1;
        }
        w->workers[i].started = 1;
        pthread_mutex_lock(&w->jmu);
        w->nworkers++;
        pthread_mutex_unlock(&w->jmu);
    }
    return 0;
}

/* Every queued request is answered (503 once stopping) and resumed before
 * the workers end, so no connection stays suspended in a stopping server. */
static void workers_stop(fd_web_t *w) {
    if (!w->workers) return;
    pthread_mutex_lock(&w->jmu);
    w->jstop = 1;
    pthread_cond_broadcast(&w->jcv);
    pthread_mutex_unlock(&w->jmu);
    for (int i = 0; i < WEB_API_WORKERS; i++)
        if (w->workers[i].started) pthread_join(w->workers[i].thr, NULL);
    for (int i = 0; i < WEB_API_WORKERS; i++) w->workers[i].started = 0;
}

fd_web_t *fd_web_new(const fd_conf_t *c, fd_log_t *log, char *err, size_t errlen) {
    fd_web_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->c = c;
    w->log = log;
    w->kop.log = log;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->jmu, NULL);
    pthread_cond_init(&w->jcv, NULL);
    pthread_mutex_init(&w->open_mu, NULL);
    pthread_mutex_init(&w->cal_mu, NULL);
    for (int i = 0; i < c->nwindows; i++)
        fd_duration_format(c->windows_s[i], w->windows[i], sizeof w->windows[i]);
    if (!(w->cal = fd_daycal_new(c->time_zone, err, errlen)) || find_dir(w, err, errlen) < 0) {
        fd_web_free(w);
        return NULL;
    }
    if (!w->dir[0])
        fd_log(log, FD_LOG_WARN, "screen files not found",
               "detail=\"set http.dashboard_dir; /api/v1 works without them\"");
    if (pthread_create(&w->thr, NULL, stream_main, w) != 0) {
        snprintf(err, errlen, "cannot start the event-stream thread");
        fd_web_free(w);
        return NULL;
    }
    w->started = 1;
    if (workers_start(w, err, errlen) < 0) {
        fd_web_free(w);
        return NULL;
    }
    return w;
}

void fd_web_attach(fd_web_t *w, fd_http_t *h) {
    w->http = h;
    fd_http_set_route(h, route, w);
    const char *l = w->c->http_listen;
    if ((!w->c->http_api_token || !w->c->http_api_token[0]) && l && strncmp(l, "127.", 4) != 0 &&
        strncmp(l, "localhost:", 10) != 0)
        fd_log(w->log, FD_LOG_WARN, "api without a token",
               "listen=\"%s\" detail=\"http.listen is not loopback and http.api_token is empty: "
               "anyone who reaches it can read the metrics\"",
               l);
}

void fd_web_stop(fd_web_t *w) {
    if (!w) return;
    /* first: queued API requests are answered 503 at once, not after the
     * stream thread's last Redis read */
    pthread_mutex_lock(&w->jmu);
    w->jstop = 1;
    pthread_cond_broadcast(&w->jcv);
    pthread_mutex_unlock(&w->jmu);
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    /* wake every suspended stream so the server can end it */
    for (sse_client_t *c = w->clients; c; c = c->next)
        if (c->suspended) {
            c->suspended = 0;
            MHD_resume_connection(c->conn);
        }
    pthread_mutex_unlock(&w->mu);
    if (w->started) pthread_join(w->thr, NULL);
    w->started = 0;
    workers_stop(w);
    /* the route stays until the server stops (fd_http_free): the requests
     * the workers answered on their way out are handed back through it,
     * and a new API request is answered 503 `shutting_down` */
    w->http = NULL;
}

void fd_web_free(fd_web_t *w) {
    if (!w) return;
    fd_web_stop(w);
    /* answers the server stopped before handing back (it runs no more) */
    while (w->jobs) {
        api_job_t *j = w->jobs;
        w->jobs = j->anext;
        if (j->resp) MHD_destroy_response(j->resp);
        free(j);
    }
    free(w->workers);
    pthread_cond_destroy(&w->jcv);
    pthread_mutex_destroy(&w->jmu);
    pthread_mutex_destroy(&w->open_mu);
    pthread_mutex_destroy(&w->cal_mu);
    fd_daycal_free(w->cal);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int fd_web_ready(fd_web_t *w) {
    pthread_mutex_lock(&w->mu);
    int up = w->sub_up;
    pthread_mutex_unlock(&w->mu);
    return up;
}
