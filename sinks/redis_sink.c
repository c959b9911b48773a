/*
 * redis_sink.c — the Redis writer (see redis_sink.h for the contract).
 *
 * Every command carries a small malloc'd request as hiredis privdata; hiredis
 * calls its callback exactly once, with the reply or with NULL when the
 * context is torn down, so no list of pending requests is kept here.
 * Memory: one request per command in flight; a flush serializes its batch
 * into one argv (freed once hiredis has copied it into its output buffer).
 */
#include "sinks/redis_sink.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/set64.h"
#include "sinks/redis_keys.h"
#include "sinks/redis_scripts.h"
#include "sinks/incentive_scripts.h"
#include "sinks/redis_uv.h"
#include "sinks/resp.h"
#include "base/clock.h"
#include "base/duration.h"
#include "model/window.h"
#include "model/incentive.h"
#include "model/cohort.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct fd_redis_sink {
    uv_loop_t *loop;
    const fd_conf_t *conf;
    fd_log_t *log;
    fd_sink_state_cb state_cb;
    void *ud;
    fd_redis_addr_t addr;
    redisAsyncContext *ac;
    int ready; /* setup done: scripts loaded */
    int setup_pending; /* setup replies still expected */
    int notified_up; /* last state reported to state_cb */
    int inflight; /* commands sent, reply not yet in */
    int tick_running;
    int64_t snap_last_to, snap_last_tick_s; /* the previous snapshot tick */
    /* The tick in progress: its scopes (a ZREVRANGEBYSCORE reply, copied)
     * and the next one to send; see snap_send. */
    redisReply *snap_scopes;
    size_t snap_next;
    /* The chunk's coupon figures (COUPON_READ, one script per scope): 5 per
     * (scope, window); ready once the chunk's replies are all in. seq tells
     * a late reply of an aborted chunk from the current one. */
    int64_t snap_cp[16 * FD_MAX_WINDOWS * 5]; /* 16 = SNAP_CHUNK */
    int snap_cp_ready, snap_cp_pending, snap_cp_failed;
    int64_t snap_cp_seq;
    int64_t snap_wm, snap_to, snap_now_ms;
    char snap_id[64]; /* the instance id the snapshot lease is held for */
    int closing;
    int64_t backoff_ms;
    int64_t last_progress_ms;
    char sha_flush[41], sha_snapshot[41], sha_lease[41];
    uv_timer_t reconnect_timer, watchdog;
    int timers_open;
    /* Keys whose TTL this process set since ttl_epoch_ms (hashes of "c:" /
     * "u:" + key): their EXPIRE is skipped. Forgotten every hour, and at
     * once on any flush whose outcome is not a success or on a lost
     * connection, so a key can never be left without a TTL for long. */
    fd_set64_t ttl_known;
    int64_t ttl_epoch_ms;
    char last_error[1024]; /* the last flush script error reply */
    fd_resp_t resp; /* the command being encoded (sinks/resp.h) */
    int settings_checked; /* CONFIG GET sent once per process */
};

typedef struct {
    fd_redis_sink_t *s;
    char sha_slot; /* setup: which sha a SCRIPT LOAD fills: 'f', 's', 'l', 0 */
    fd_sink_flush_cb flush_cb;
    fd_sink_offset_cb offset_cb;
    void *ud;
    int64_t offset; /* offset read: the first reply's value, for the second */
    int64_t now_ms; /* snapshot tick */
    int64_t wm, to; /* snapshot tick: global watermark, window end (epoch s) */
    fd_sink_check_cb check_cb; /* state check: the schema reply's twin */
    int schema_missing, nfields;
    /* A flush whose PFADD/EXPIRE commands went first (flush_hll_reply):
     * replies still expected, the worst status among those in, and the
     * script, held until they are all in without error. abandoned: the
     * flush was not sent after all; its replies only free the request. */
    size_t hll_wait;
    int hll_status, abandoned;
    char *script;
    size_t script_len;
} req_t;

static void connect_start(fd_redis_sink_t *s);
static void check_settings(fd_redis_sink_t *s);

static void set_state(fd_redis_sink_t *s, int up) {
    if (s->notified_up == up) return;
    s->notified_up = up;
    if (s->state_cb && !s->closing) s->state_cb(s->ud, up);
}

static void reconnect_cb(uv_timer_t *t) { connect_start(t->data); }

static void schedule_reconnect(fd_redis_sink_t *s) {
    if (s->closing || uv_is_active((uv_handle_t *)&s->reconnect_timer)) return;
    uv_timer_start(&s->reconnect_timer, reconnect_cb, (uint64_t)s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

/* Tears the connection down; outstanding callbacks fire with NULL replies. */
static void teardown(fd_redis_sink_t *s, const char *why) {
    redisAsyncContext *ac = s->ac;
    if (!ac) return;
    char key[96];
    snprintf(key, sizeof key, "redis|reset|%s", why); /* a reconnect loop logs once per 10 s */
    fd_log_repeat(s->log, FD_LOG_WARN, key, "redis connection reset", "reason=\"%s\"", why);
    s->ac = NULL;
    s->ready = 0;
    fd_set64_clear(&s->ttl_known);
    set_state(s, 0);
    redisAsyncFree(ac); /* deferred by hiredis when called from a callback */
    schedule_reconnect(s);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    fd_redis_sink_t *s = ac->data;
    if (!s) return;
    if (s->ac == ac) {
        fd_log_repeat(s->log, FD_LOG_WARN, "redis|disconnected", "redis disconnected",
                      "error=\"%s\"", ac->errstr);
        s->ac = NULL;
        s->ready = 0;
        fd_set64_clear(&s->ttl_known);
        set_state(s, 0);
    }
    schedule_reconnect(s);
}

static req_t *req_new(fd_redis_sink_t *s) {
    req_t *r = calloc(1, sizeof(*r));
    if (r) r->s = s;
    return r;
}

/* Every reply callback starts here: bookkeeping shared by all commands. */
static fd_redis_sink_t *reply_begin(req_t *r) {
    fd_redis_sink_t *s = r->s;
    if (s->inflight > 0) s->inflight--;
    s->last_progress_ms = fd_clock_wall_ms();
    return s;
}

static int send_argv(fd_redis_sink_t *s, redisCallbackFn *fn, req_t *r, int argc, const char **argv,
                     const size_t *lens) {
    if (!r) return -ENOMEM;
    if (!s->ac) {
        free(r);
        return -ENOTCONN;
    }
    if (s->inflight == 0) s->last_progress_ms = fd_clock_wall_ms();
    if (redisAsyncCommandArgv(s->ac, fn, r, argc, argv, lens) != REDIS_OK) {
        free(r);
        return -ENOTCONN;
    }
    s->inflight++;
    return 0;
}

static int send_strs(fd_redis_sink_t *s, redisCallbackFn *fn, req_t *r, int argc, const char **argv) {
    size_t lens[32];
    for (int i = 0; i < argc && i < 32; i++) lens[i] = strlen(argv[i]);
    return send_argv(s, fn, r, argc, argv, lens);
}

static int is_error(const redisReply *rep) { return !rep || rep->type == REDIS_REPLY_ERROR; }

static void log_error_reply(fd_redis_sink_t *s, const char *what, const redisReply *rep) {
    if (rep && rep->type == REDIS_REPLY_ERROR)
        fd_log(s->log, FD_LOG_ERROR, what, "error=\"%.*s\"",
               (int)(rep->len > 1000 ? 1000 : rep->len), rep->str);
}

/* log_error_reply for a script refused again every tick until someone fixes
 * the key it names (a snapshot, a leaderboard): once per FD_LOG_REPEAT_MS
 * per error text. */
static void log_repeated_error(fd_redis_sink_t *s, const char *what, const redisReply *rep) {
    if (!rep || rep->type != REDIS_REPLY_ERROR) return;
    char key[1024];
    snprintf(key, sizeof key, "%s|%.*s", what, (int)(rep->len > 1000 ? 1000 : rep->len), rep->str);
    fd_log_repeat(s->log, FD_LOG_ERROR, key, what, "error=\"%.*s\"",
                  (int)(rep->len > 1000 ? 1000 : rep->len), rep->str);
}

/* ---- connection setup ---------------------------------------------------- */

static void setup_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    if (is_error(rep)) {
        if (rep) {
            log_error_reply(s, "redis setup failed", rep); /* never the AUTH arguments */
            if (s->ac == ac) teardown(s, "setup failed");
        }
    } else {
        if (r->sha_slot && rep->type == REDIS_REPLY_STRING && rep->len == 40) {
            char *dst = r->sha_slot == 'f'   ? s->sha_flush
                        : r->sha_slot == 's' ? s->sha_snapshot
                                             : s->sha_lease;
            memcpy(dst, rep->str, 40);
            dst[40] = 0;
        }
        if (--s->setup_pending == 0 && s->ac == ac) {
            s->ready = 1;
            s->backoff_ms = BACKOFF_MIN_MS;
            fd_log(s->log, FD_LOG_INFO, "redis ready", NULL);
            set_state(s, 1);
        }
    }
    free(r);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    fd_redis_sink_t *s = ac->data;
    if (status != REDIS_OK) {
        fd_log_repeat(s->log, FD_LOG_WARN, "redis|connect_failed", "redis connect failed",
                      "error=\"%s\" retry_ms=%" PRId64, ac->errstr, s->backoff_ms);
        if (s->ac == ac) s->ac = NULL; /* hiredis frees it after this callback */
        schedule_reconnect(s);
        return;
    }
    fd_log(s->log, FD_LOG_DEBUG, "redis connected", NULL);
    char db[16], schema_key[512];
    snprintf(db, sizeof db, "%d", s->addr.db);
    fd_key_schema(schema_key, sizeof schema_key, s->conf->prefix);
    s->setup_pending = 0;
    if (s->addr.password[0]) {
        const char *a3[] = {"AUTH", s->addr.user, s->addr.password};
        const char *a2[] = {"AUTH", s->addr.password};
        if (s->addr.user[0]) send_strs(s, setup_reply, req_new(s), 3, a3);
        else send_strs(s, setup_reply, req_new(s), 2, a2);
        s->setup_pending++;
    }
    if (s->addr.db) {
        const char *a[] = {"SELECT", db};
        send_strs(s, setup_reply, req_new(s), 2, a);
        s->setup_pending++;
    }
    const char *scripts[3] = {FD_LUA_FLUSH, FD_LUA_SNAPSHOT, FD_LUA_LEASE};
    const char slots[3] = {'f', 's', 'l'};
    for (int i = 0; i < 3; i++) {
        req_t *r = req_new(s);
        if (r) r->sha_slot = slots[i];
        const char *a[] = {"SCRIPT", "LOAD", scripts[i]};
        send_strs(s, setup_reply, r, 3, a);
        s->setup_pending++;
    }
    const char *a[] = {"SET", schema_key, FD_REDIS_SCHEMA};
    send_strs(s, setup_reply, req_new(s), 3, a);
    s->setup_pending++;
    check_settings(s); /* not part of the setup: its answer never holds the start */
}

static void connect_start(fd_redis_sink_t *s) {
    if (s->ac || s->closing) return;
    redisAsyncContext *ac = s->addr.port ? redisAsyncConnect(s->addr.host, s->addr.port)
                                         : redisAsyncConnectUnix(s->addr.path);
    if (!ac || ac->err) {
        fd_log_repeat(s->log, FD_LOG_WARN, "redis|connect_failed", "redis connect failed",
                      "error=\"%s\"", ac ? ac->errstr : "oom");
        if (ac) redisAsyncFree(ac);
        schedule_reconnect(s);
        return;
    }
    ac->data = s;
    if (fd_redis_uv_attach(ac, s->loop) != REDIS_OK) {
        fd_log_repeat(s->log, FD_LOG_WARN, "redis|connect_failed", "redis connect failed",
                      "error=\"cannot watch the socket\"");
        redisAsyncFree(ac);
        schedule_reconnect(s);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
    s->inflight = 0;
    s->last_progress_ms = fd_clock_wall_ms();
}

static void watchdog_cb(uv_timer_t *t) {
    fd_redis_sink_t *s = t->data;
    if (!s->ac) return;
    int waiting = s->inflight > 0 || !s->ready;
    if (waiting && fd_clock_wall_ms() - s->last_progress_ms > s->conf->redis_timeout_ms)
        teardown(s, "no reply within redis.timeout_ms");
}

fd_redis_sink_t *fd_redis_sink_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                                   fd_sink_state_cb cb, void *ud, char *err, size_t errlen) {
    fd_redis_sink_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->conf = c;
    s->log = log;
    s->state_cb = cb;
    s->ud = ud;
    s->backoff_ms = BACKOFF_MIN_MS;
    if (fd_redis_url_parse(c->redis_url, &s->addr, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    uv_timer_init(loop, &s->reconnect_timer);
    uv_timer_init(loop, &s->watchdog);
    s->reconnect_timer.data = s->watchdog.data = s;
    s->timers_open = 1;
    uv_timer_start(&s->watchdog, watchdog_cb, 500, 500);
    connect_start(s);
    return s;
}

static void free_on_close(uv_handle_t *h) {
    fd_redis_sink_t *s = h->data;
    if (--s->timers_open == 0) {
        fd_set64_release(&s->ttl_known);
        fd_resp_release(&s->resp);
        free(s);
    }
}

void fd_redis_sink_free(fd_redis_sink_t *s) {
    if (!s) return;
    s->closing = 1;
    if (s->ac) {
        redisAsyncContext *ac = s->ac;
        s->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* fires outstanding callbacks with NULL */
    }
    /* both timers are closed; the struct goes with the second close */
    s->timers_open = 2;
    uv_close((uv_handle_t *)&s->reconnect_timer, free_on_close);
    uv_close((uv_handle_t *)&s->watchdog, free_on_close);
}

int fd_redis_sink_ready(const fd_redis_sink_t *s) { return s->ready; }

const char *fd_redis_sink_last_error(const fd_redis_sink_t *s) { return s->last_error; }

/* Error replies of a server state that passes (the script did not run, or
 * was stopped before its first write): worth retrying as they are. */
static int passing_error(const char *e) {
    static const char *const codes[] = {"BUSY",     "LOADING",    "OOM",      "MASTERDOWN",
                                        "READONLY", "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN",
                                        "NOSCRIPT", "MISCONF"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(e, codes[i], n) == 0 && (e[n] == ' ' || e[n] == 0)) return 1;
    }
    return 0;
}

/* ---- flush ----------------------------------------------------------------- */

/* A flush's outcome, reported once: the request goes with it. */
static void flush_end(fd_redis_sink_t *s, req_t *r, int st) {
    if (st != FD_SINK_OK) fd_set64_clear(&s->ttl_known);
    if (!r->abandoned) r->flush_cb(r->ud, s->closing ? FD_SINK_EFAILED : st);
    free(r->script);
    free(r);
}

static void flush_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    int st = FD_SINK_OK;
    if (!rep) {
        st = FD_SINK_EFAILED;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        if (strncmp(rep->str, "FENCED ", 7) == 0) { /* not "REFUSED ... FENCED" in a key name */
            st = FD_SINK_EFENCED;
        } else {
            st = passing_error(rep->str) ? FD_SINK_EFAILED : FD_SINK_ESCRIPT;
            log_error_reply(s, "flush script failed", rep);
            snprintf(s->last_error, sizeof s->last_error, "%.*s", (int)rep->len, rep->str);
            if (strncmp(rep->str, "NOSCRIPT", 8) == 0 && s->ac == ac) teardown(s, "NOSCRIPT");
        }
    }
    flush_end(s, r, st);
}

/* A flush (fd_redis_sink_flush, below): PFADD/EXPIRE commands for the
 * exposure/interaction HLLs, then EVALSHA, sha, numkeys 0, ARGV[1..14] of
 * FD_LUA_FLUSH (prefix .. action cap: enc_fixed) and three sections
 * (counters, payments, scopes), each a count followed by its entries (a
 * payment: dedup, user, signed amount, status, late, coupon_id or "", number
 * of buckets, the buckets), then the coupon cap and the per-user section
 * (enc_users, laid out in sinks/redis_users_lua.h), whose very last argument
 * is the ARGV index where that section starts. Everything is written as RESP
 * into s->resp (sinks/resp.h), one command at a time, and handed to hiredis
 * formatted; each section has its own encoder. */

static void ignore_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    log_repeated_error(s, "snapshot command failed", reply);
    free(r);
}

/* The per-user section (sinks/redis_users_lua.h): the last argument is the ARGV index where the
 * section starts, so the script finds it after all the others. */
static void enc_users(fd_resp_t *a, const fd_conf_t *c, const fd_users_t *u) {
    int64_t start = a->nargs - 2; /* the 4th argument (after EVALSHA, sha, numkeys) is ARGV[1] */
    size_t n = c->mkt_enabled ? fd_users_count(u) : 0;
    fd_resp_int(a, (int64_t)n);
    fd_resp_int(a, c->ret_horizon_s);
    fd_resp_int(a, c->funnel_window_s * 1000);
    fd_resp_str(a, c->ret_mode ? "unbounded" : "day_n");
    static const char *const types[8] = {
        "",        "exposure",         "interaction",         "exposure,interaction",
        "payment", "exposure,payment", "interaction,payment", "exposure,interaction,payment"};
    fd_resp_str(a, types[c->ret_start_mask & 7]);
    fd_resp_str(a, types[c->ret_active_mask & 7]);
    fd_resp_int(a, c->mkt_user_cap);
    fd_resp_int(a, c->nret_days);
    for (int i = 0; i < c->nret_days; i++) fd_resp_int(a, c->ret_days[i]);
    fd_resp_int(a, c->nret_dims);
    for (int i = 0; i < c->nret_dims; i++) fd_resp_str(a, c->ret_dims[i]);
    for (size_t i = 0; i < n; i++) {
        fd_str_t f[FD_USERS_FIELDS];
        fd_users_record(u, i, f);
        for (int j = 0; j < FD_USERS_FIELDS; j++) fd_resp_bulk(a, f[j].p ? f[j].p : "", f[j].n);
    }
    fd_resp_int(a, start);
}

/* The reply of one of a flush's PFADD/EXPIRE commands (privdata: the
 * flush's request). The script is sent only when they have all answered
 * without error: a PFADD that fails (a key under {prefix}:u: holding
 * another type, a corrupted HyperLogLog) fails the flush before anything
 * of it is counted or its offset moves, so its users are never silently
 * left out; the partition resyncs and, if it fails again, stops
 * (pipeline.c), like a refused script. */
static void flush_hll_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    if (!rep) {
        if (r->hll_status == FD_SINK_OK) r->hll_status = FD_SINK_EFAILED;
    } else if (rep->type == REDIS_REPLY_ERROR) {
        log_error_reply(s, "distinct-users command failed", rep);
        if (!passing_error(rep->str)) {
            r->hll_status = FD_SINK_ESCRIPT;
            snprintf(s->last_error, sizeof s->last_error,
                     "a PFADD/EXPIRE of a distinct-users key (%s:u:*) failed: %.*s", s->conf->prefix,
                     (int)(rep->len > 800 ? 800 : rep->len), rep->str);
        } else if (r->hll_status == FD_SINK_OK) {
            r->hll_status = FD_SINK_EFAILED;
        }
    }
    if (--r->hll_wait > 0) return;
    if (r->abandoned || r->hll_status != FD_SINK_OK || s->closing || !s->ac || s->ac != ac) {
        flush_end(s, r, r->hll_status != FD_SINK_OK ? r->hll_status : FD_SINK_EFAILED);
        return;
    }
    if (redisAsyncFormattedCommand(s->ac, flush_reply, r, r->script, r->script_len) != REDIS_OK) {
        flush_end(s, r, FD_SINK_EFAILED);
        return;
    }
    s->inflight++;
    free(r->script);
    r->script = NULL;
}

/* Ends the command in s->resp and queues it; r belongs to hiredis once
 * this returns 0. */
static int send_resp(fd_redis_sink_t *s, redisCallbackFn *fn, void *r) {
    if (fd_resp_end(&s->resp) < 0) return -ENOMEM;
    if (!s->ac) return -ENOTCONN;
    if (s->inflight == 0) s->last_progress_ms = fd_clock_wall_ms();
    if (redisAsyncFormattedCommand(s->ac, fn, r, fd_resp_cmd(&s->resp), fd_resp_cmdlen(&s->resp)) !=
        REDIS_OK)
        return -ENOTCONN;
    s->inflight++;
    return 0;
}

/* 1 if this process set the TTL of `kind` + key recently (skip the
 * EXPIRE), else remembers that it is about to. */
static int ttl_known(fd_redis_sink_t *s, char kind, const char *key, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)(unsigned char)kind;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
    h = fd_mix64(h) | 1; /* never 0 */
    return fd_set64_add(&s->ttl_known, h) == 0;
}

static int64_t gran_ttl(const fd_conf_t *c, fd_gran_t g) {
    return g == FD_GRAN_M1 ? c->ttl_m1_s : g == FD_GRAN_H1 ? c->ttl_h1_s : c->ttl_d1_s;
}

/* Sends the batch's exposure/interaction HLL members as PFADD + EXPIRE
 * commands (idempotent, so outside the atomic script), counting them in
 * r->hll_wait. */
static int send_hlls(fd_redis_sink_t *s, const fd_batch_t *b, char *key, req_t *r) {
    size_t nh = fd_batch_nhll(b);
    size_t kn = fd_key_users_prefix(key, FD_BATCH_KEY_MAX, s->conf->prefix);
    for (size_t i = 0; i < nh; i++) {
        fd_batch_hll_t h;
        fd_batch_hll(b, i, &h);
        size_t n =
            fd_batch_key(key + kn, FD_BATCH_KEY_MAX - kn, h.scope, h.gran, h.bucket, (int)h.step);
        if (!n) continue;
        n += kn;
        /* at most 8192 members a command, so no one command is huge */
        for (size_t j = 0; j < h.nmembers; j += 8192) {
            size_t m = h.nmembers - j < 8192 ? h.nmembers - j : 8192;
            fd_resp_begin(&s->resp);
            fd_resp_bulk(&s->resp, "PFADD", 5);
            fd_resp_bulk(&s->resp, key, n);
            for (size_t k = 0; k < m; k++) {
                fd_str_t u = fd_batch_user_at(b, h.members[j + k]);
                fd_resp_bulk(&s->resp, u.p, u.n);
            }
            int rc = send_resp(s, flush_hll_reply, r);
            if (rc < 0) return rc;
            r->hll_wait++;
        }
        if (!ttl_known(s, 'u', key + kn, n - kn)) {
            fd_resp_begin(&s->resp);
            fd_resp_bulk(&s->resp, "EXPIRE", 6);
            fd_resp_bulk(&s->resp, key, n);
            fd_resp_int(&s->resp, gran_ttl(s->conf, h.gran));
            int rc = send_resp(s, flush_hll_reply, r);
            if (rc < 0) return rc;
            r->hll_wait++;
        }
    }
    return 0;
}

/* EVALSHA, sha, numkeys and ARGV[1..14]. */
static void enc_fixed(fd_redis_sink_t *s, const char *field, int64_t expected, int64_t next_offset,
                      int64_t max_ts, const fd_batch_t *b) {
    fd_resp_t *r = &s->resp;
    const fd_conf_t *c = s->conf;
    fd_resp_bulk(r, "EVALSHA", 7);
    fd_resp_bulk(r, s->sha_flush, 40);
    fd_resp_bulk(r, "0", 1);
    fd_resp_str(r, c->prefix);
    fd_resp_str(r, c->group);
    fd_resp_str(r, field);
    if (expected < 0) fd_resp_bulk(r, "", 0);
    else fd_resp_int(r, expected);
    fd_resp_int(r, next_offset);
    if (max_ts == INT64_MIN) fd_resp_bulk(r, "", 0);
    else fd_resp_int(r, max_ts);
    int64_t now = fd_clock_wall_ms();
    fd_resp_int(r, now);
    fd_resp_int(r, now / 1000);
    fd_resp_int(r, (int64_t)fd_batch_events(b));
    fd_resp_int(r, c->ttl_m1_s);
    fd_resp_int(r, c->ttl_h1_s);
    fd_resp_int(r, c->ttl_d1_s);
    fd_resp_int(r, c->dedup_ttl_s);
    fd_resp_int(r, c->action_cap);
}

/* counters: key, number of fields (negative: TTL known), field/increment
 * pairs, then number of actions, action field/increment pairs in
 * first-seen order; keys only payments touch (all zero here) are left to
 * the payment records */
static void enc_counters(fd_redis_sink_t *s, const fd_batch_t *b, const fd_str_t *keys) {
    fd_resp_t *r = &s->resp;
    size_t nc = fd_batch_ncounters(b);
    int64_t nsent = 0;
    for (size_t i = 0; i < nc; i++) {
        fd_batch_counter_t c;
        fd_batch_counter(b, i, &c);
        nsent += (c.exposures != 0) + (c.interactions != 0) + (c.late != 0) > 0;
    }
    fd_resp_int(r, nsent);
    for (size_t i = 0; i < nc; i++) {
        fd_batch_counter_t c;
        fd_batch_counter(b, i, &c);
        int nf = (c.exposures != 0) + (c.interactions != 0) + (c.late != 0);
        if (nf == 0) continue; /* an action implies an interaction */
        fd_resp_bulk(r, keys[i].p, keys[i].n);
        fd_resp_int(r, ttl_known(s, 'c', keys[i].p, keys[i].n) ? -nf : nf);
        if (c.exposures) {
            fd_resp_bulk(r, "exposures", 9);
            fd_resp_int(r, c.exposures);
        }
        if (c.interactions) {
            fd_resp_bulk(r, "interactions", 12);
            fd_resp_int(r, c.interactions);
        }
        if (c.late) {
            fd_resp_bulk(r, "late", 4);
            fd_resp_int(r, c.late);
        }
        fd_resp_int(r, (int64_t)c.nactions); /* capped in the script */
        for (size_t j = 0; j < c.nactions; j++) {
            fd_resp_bulk2(r, "interactions.", 13, c.actions[j].name.p, c.actions[j].name.n);
            fd_resp_int(r, c.actions[j].count);
        }
    }
}

static void enc_payments(fd_redis_sink_t *s, const fd_batch_t *b, const fd_str_t *keys) {
    fd_resp_t *r = &s->resp;
    size_t np = fd_batch_npayments(b);
    fd_resp_int(r, (int64_t)np);
    for (size_t i = 0; i < np; i++) {
        const fd_batch_payment_t *p = fd_batch_payment_at(b, i);
        fd_str_t u = fd_batch_user_at(b, p->user);
        int paid = p->status == FD_STATUS_PAID;
        fd_resp_bulk(r, p->dedup.p, p->dedup.n);
        fd_resp_bulk(r, u.p, u.n);
        fd_resp_int(r, paid ? p->amount : -p->amount);
        fd_resp_bulk(r, paid ? "paid" : "refunded", paid ? 4 : 8);
        fd_resp_bulk(r, p->late ? "1" : "0", 1);
        fd_resp_bulk(r, p->coupon.n ? p->coupon.p : "", p->coupon.n);
        fd_resp_int(r, (int64_t)p->nbuckets);
        for (size_t j = 0; j < p->nbuckets; j++)
            fd_resp_bulk(r, keys[p->counters[j]].p, keys[p->counters[j]].n);
    }
}

static void enc_scopes(fd_redis_sink_t *s, const fd_batch_t *b) {
    fd_resp_t *r = &s->resp;
    size_t ns = fd_batch_nscopes(b);
    fd_resp_int(r, (int64_t)ns);
    for (size_t i = 0; i < ns; i++) {
        fd_str_t sc = fd_batch_scope_at(b, i);
        fd_resp_bulk(r, sc.p, sc.n);
    }
}

int fd_redis_sink_flush(fd_redis_sink_t *s, const char *field, int64_t expected, int64_t next_offset,
                        int64_t max_ts, const fd_batch_t *b, fd_sink_flush_cb cb, void *ud) {
    if (!s->ready || !s->ac) return -ENOTCONN;
    if (fd_clock_wall_ms() - s->ttl_epoch_ms > 3600 * 1000) {
        fd_set64_clear(&s->ttl_known); /* TTLs are refreshed at least hourly */
        s->ttl_epoch_ms = fd_clock_wall_ms();
    }
    /* the counter keys' tails, "{scope}:{gran}:{bucket}", in one block:
     * a counter entry and the payments pointing at it share one text */
    size_t nc = fd_batch_ncounters(b), textlen = 0;
    for (size_t i = 0; i < nc; i++) {
        fd_batch_counter_t c;
        fd_batch_counter(b, i, &c);
        textlen += c.scope.n + 48;
    }
    fd_str_t *keys = malloc((nc + 1) * sizeof(fd_str_t));
    char *text = malloc(textlen + 1), *key = malloc(FD_BATCH_KEY_MAX);
    req_t *r = NULL;
    int rc = -ENOMEM;
    if (!keys || !text || !key) goto out;
    size_t used = 0;
    for (size_t i = 0; i < nc; i++) {
        fd_batch_counter_t c;
        fd_batch_counter(b, i, &c);
        keys[i].p = text + used;
        keys[i].n =
            (uint32_t)fd_batch_key(text + used, c.scope.n + 48, c.scope, c.gran, c.bucket, -1);
        used += keys[i].n;
    }
    r = req_new(s);
    if (!r) goto out;
    r->flush_cb = cb;
    r->ud = ud;
    /* the idempotent HLL commands first, on the same connection */
    if ((rc = send_hlls(s, b, key, r)) < 0) goto abandon;
    fd_resp_begin(&s->resp);
    enc_fixed(s, field, expected, next_offset, max_ts, b);
    enc_counters(s, b, keys);
    enc_payments(s, b, keys);
    enc_scopes(s, b);
    /* the coupon cap, just before the per-user section: the script reads it
     * as ARGV[s - 1], s being the section's start (the last argument) */
    fd_resp_int(&s->resp, s->conf->coupon_cap);
    enc_users(&s->resp, s->conf, fd_batch_users(b));
    if (r->hll_wait == 0) {
        if ((rc = send_resp(s, flush_reply, r)) < 0) goto abandon;
        goto out;
    }
    /* the script waits for the HLL commands' replies (flush_hll_reply) */
    rc = -ENOMEM;
    if (fd_resp_end(&s->resp) < 0 || !(r->script = malloc(fd_resp_cmdlen(&s->resp)))) goto abandon;
    r->script_len = fd_resp_cmdlen(&s->resp);
    memcpy(r->script, fd_resp_cmd(&s->resp), r->script_len);
    rc = 0;
    goto out;
abandon: /* not sent: the caller gets rc, never the callback */
    r->abandoned = 1;
    if (r->hll_wait == 0) flush_end(s, r, FD_SINK_EFAILED);
out:
    if (s->resp.cap > (size_t)64 << 20) fd_resp_release(&s->resp); /* one huge flush: not kept */
    free(keys);
    free(text);
    free(key);
    return rc;
}

/* ---- offsets --------------------------------------------------------------- */

static int64_t reply_int(const redisReply *rep, int64_t absent) {
    if (!rep || rep->type != REDIS_REPLY_STRING) return absent;
    return strtoll(rep->str, NULL, 10);
}

static void wm_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    int st =
        (is_error(rep) || r->offset == INT64_MIN + 1 || s->closing) ? FD_SINK_EFAILED : FD_SINK_OK;
    r->offset_cb(r->ud, st, r->offset, reply_int(rep, INT64_MIN));
    free(r);
}

static void offset_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata; /* the twin request of wm_reply carries the result */
    reply_begin(r);
    req_t *twin = (req_t *)r->ud;
    redisReply *rep = reply;
    twin->offset = is_error(rep) ? INT64_MIN + 1 : reply_int(rep, -1);
    free(r);
}

int fd_redis_sink_read_offset(fd_redis_sink_t *s, const char *field, fd_sink_offset_cb cb, void *ud) {
    if (!s->ready || !s->ac) return -ENOTCONN;
    char k1[512], k2[512];
    fd_key_offsets(k1, sizeof k1, s->conf->prefix, s->conf->group);
    fd_key_wm(k2, sizeof k2, s->conf->prefix, s->conf->group);
    req_t *first = req_new(s), *second = req_new(s);
    if (!first || !second) {
        free(first);
        free(second);
        return -ENOMEM;
    }
    first->ud = second;
    second->offset_cb = cb;
    second->ud = ud;
    const char *a1[] = {"HGET", k1, field}, *a2[] = {"HGET", k2, field};
    int rc = send_strs(s, offset_reply, first, 3, a1);
    if (rc < 0) {
        free(second);
        return rc;
    }
    /* same connection, so the second reply always comes after the first */
    rc = send_strs(s, wm_reply, second, 3, a2);
    return rc;
}

/* ---- state check ------------------------------------------------------------ */

static void check_offsets_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    int st = is_error(rep) || s->closing || r->schema_missing < 0 ? FD_SINK_EFAILED : FD_SINK_OK;
    int *present = calloc((size_t)r->nfields + 1, sizeof(int));
    if (st == FD_SINK_OK && r->nfields > 0 &&
        (!present || rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)r->nfields))
        st = FD_SINK_EFAILED;
    for (int i = 0; st == FD_SINK_OK && i < r->nfields; i++)
        present[i] = rep->element[i]->type != REDIS_REPLY_NIL;
    log_error_reply(s, "redis state check failed", rep);
    r->check_cb(r->ud, st, st == FD_SINK_OK && r->schema_missing == 1, present);
    free(present);
    free(r);
}

static void check_schema_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata; /* the twin request (check_offsets_reply) carries the result */
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    req_t *twin = (req_t *)r->ud;
    /* SET NX answers OK only when the key was absent, i.e. it is rewritten now */
    if (twin) twin->schema_missing = is_error(rep) ? -1 : rep->type == REDIS_REPLY_STATUS;
    log_error_reply(s, "redis state check failed", rep);
    free(r);
}

int fd_redis_sink_check_state(fd_redis_sink_t *s, const char *const *fields, int n,
                              fd_sink_check_cb cb, void *ud) {
    if (!s->ready || !s->ac) return -ENOTCONN;
    char schema_key[512], offkey[512];
    fd_key_schema(schema_key, sizeof schema_key, s->conf->prefix);
    fd_key_offsets(offkey, sizeof offkey, s->conf->prefix, s->conf->group);
    req_t *first = req_new(s), *second = req_new(s);
    const char **argv = malloc(((size_t)n + 2) * sizeof(char *));
    size_t *lens = malloc(((size_t)n + 2) * sizeof(size_t));
    int rc = -ENOMEM;
    if (!first || !second || !argv || !lens) goto fail;
    first->ud = second;
    second->check_cb = cb;
    second->ud = ud;
    second->nfields = n;
    const char *a1[] = {"SET", schema_key, FD_REDIS_SCHEMA, "NX"};
    req_t *sent = first;
    rc = send_strs(s, check_schema_reply, first, 4, a1);
    first = NULL; /* sent or freed by send_strs */
    if (rc < 0) goto fail;
    /* same connection, so this reply always comes after the schema's; with
     * no field to ask about, a harmless EXISTS carries the callback */
    argv[0] = n > 0 ? "HMGET" : "EXISTS";
    argv[1] = n > 0 ? offkey : schema_key;
    for (int i = 0; i < n; i++) argv[2 + i] = fields[i];
    for (int i = 0; i < n + 2; i++) lens[i] = strlen(argv[i]);
    rc = send_argv(s, check_offsets_reply, second, n + 2, argv, lens);
    if (rc < 0) sent->ud = NULL; /* its reply is still due: it must not touch the freed twin */
    second = NULL;
    free(argv);
    free(lens);
    return rc;
fail:
    free(first);
    free(second);
    free(argv);
    free(lens);
    return rc;
}

/* ---- snapshots ------------------------------------------------------------- */

/* The last argument of SNAPSHOT and COUPON_READ (FD_LUA_UV_SPAN): whether
 * the scope's distinct users are read per minute or per whole hour. */
static const char *snap_uv_span(const fd_conf_t *c, const char *scope) {
    return fd_conf_scope_hll_m1(c, scope) ? "uv=m1" : "uv=h1";
}

/* hiredis frees a reply after its callback; a reply needed later (the wm
 * hash until the seen hash arrives, a tick's scope list until its last
 * script is sent) is copied into a fresh reply-like tree
 * (freeReplyObject frees it). */
static redisReply *copy_reply(const redisReply *rep) {
    redisReply *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->type = rep->type;
    c->integer = rep->integer;
    if (rep->str) {
        c->str = malloc(rep->len + 1);
        if (c->str) memcpy(c->str, rep->str, rep->len + 1);
        c->len = rep->len;
    }
    if (rep->elements) {
        c->element = calloc(rep->elements, sizeof(redisReply *));
        c->elements = rep->elements;
        for (size_t i = 0; c->element && i < rep->elements; i++)
            c->element[i] = copy_reply(rep->element[i]);
    }
    /* out of memory anywhere: no half copy */
    int whole = (!rep->str || c->str) && (!rep->elements || c->element);
    for (size_t i = 0; whole && i < c->elements; i++) whole = c->element[i] != NULL;
    if (!whole) {
        if (!c->element) c->elements = 0;
        freeReplyObject(c);
        return NULL;
    }
    return c;
}

static void tick_done_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    log_error_reply(s, "snapshot publish failed", reply);
    s->tick_running = 0;
    free(r);
}

/* A tick writes its scopes' snapshots SNAP_CHUNK scripts at a time: after
 * each chunk goes the lease script, and the next chunk goes out when it
 * answers that the lease is still ours. So a partition's flush script, sent
 * on the same connection meanwhile, waits behind at most one chunk instead
 * of the whole tick (up to snapshot_max_scopes scripts; bench/latency.sh
 * measured the difference), and a tick that outlives its lease stops. */
#define SNAP_CHUNK 16
_Static_assert(SNAP_CHUNK <= 16, "snap_cp holds 16 scopes");

static void snap_send(fd_redis_sink_t *s);
static int send_lease(fd_redis_sink_t *s, redisCallbackFn *fn, req_t *r);
static int snap_read_coupons(fd_redis_sink_t *s);
static int snap_coupon_fields(fd_redis_sink_t *s, size_t j, int w, const char **names,
                              char (*vals)[32]);
static int send_boards(fd_redis_sink_t *s);

/* Ends a tick that could not finish; the next tick rescans the longest
 * window, so the scopes this one did not reach are not left stale. */
static void snap_abort(fd_redis_sink_t *s) {
    if (s->snap_scopes) freeReplyObject(s->snap_scopes);
    s->snap_scopes = NULL;
    s->snap_cp_ready = 0;
    s->snap_cp_seq++; /* replies still in flight are ignored */
    s->snap_last_to = INT64_MIN;
    s->tick_running = 0;
}

static void snap_chunk_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    free(r);
    redisReply *rep = reply;
    if (is_error(rep) || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1 || !s->ac ||
        s->closing) {
        log_error_reply(s, "snapshot lease renewal failed", rep);
        if (rep && rep->type == REDIS_REPLY_INTEGER)
            fd_log(s->log, FD_LOG_WARN, "snapshot lease lost mid-tick; tick stopped", NULL);
        snap_abort(s);
        return;
    }
    snap_send(s);
}

/* The cohort each retention day k of a product snapshot shows
 * (docs/METRICS.md): the latest cohort day d whose day d + k is complete by
 * the watermark, i.e. d = (local day of wm) - k - 1. Fills k and d's label
 * per retention day; 0 without marketing.enabled or a zone. */
static int snapshot_cohorts(const fd_conf_t *c, int64_t wm_ms, char k[][16], char lab[][16]) {
    if (!c->mkt_enabled) return 0;
    char err[256];
    fd_daycal_t *d = fd_daycal_new(c->time_zone, err, sizeof err);
    if (!d) return 0;
    int32_t today = fd_cohort_daynum(fd_daycal_label(d, wm_ms));
    fd_daycal_free(d);
    for (int i = 0; i < c->nret_days; i++) {
        snprintf(k[i], 16, "%d", (int)c->ret_days[i]);
        snprintf(lab[i], 16, "%d", (int)fd_cohort_label(today - c->ret_days[i] - 1));
    }
    return c->nret_days;
}

/* The rolling windows as script arguments, name and seconds per window
 * ("1h", "3600"), as the snapshot and coupon-read scripts take them. */
typedef struct {
    int n;
    char names[FD_MAX_WINDOWS][16], secs[FD_MAX_WINDOWS][24];
} win_args_t;

static void win_args_format(const fd_conf_t *c, win_args_t *wa) {
    wa->n = c->nwindows;
    for (int w = 0; w < c->nwindows; w++) {
        fd_duration_format(c->windows_s[w], wa->names[w], sizeof wa->names[w]);
        snprintf(wa->secs[w], sizeof wa->secs[w], "%" PRId64, c->windows_s[w]);
    }
}

/* Appends the pairs to argv at n; returns the new n. */
static int push_windows(const win_args_t *wa, const char **argv, int n) {
    for (int w = 0; w < wa->n; w++) {
        argv[n++] = wa->names[w];
        argv[n++] = wa->secs[w];
    }
    return n;
}

static void snap_send(fd_redis_sink_t *s) {
    const fd_conf_t *c = s->conf;
    const redisReply *scopes = s->snap_scopes;
    if (!s->snap_cp_ready) { /* the chunk's coupon figures first; snap_send again on the replies */
        if (snap_read_coupons(s) < 0) snap_abort(s);
        return;
    }
    char sto[24], swm[24], snow[24], sttl[24], snw[8], scap[24];
    win_args_t wins;
    win_args_format(c, &wins);
    snprintf(sto, sizeof sto, "%" PRId64, s->snap_to);
    snprintf(swm, sizeof swm, "%" PRId64, s->snap_wm);
    snprintf(snow, sizeof snow, "%" PRId64, s->snap_now_ms);
    snprintf(sttl, sizeof sttl, "%" PRId64, c->ttl_m1_s);
    snprintf(snw, sizeof snw, "%d", c->nwindows);
    snprintf(scap, sizeof scap, "%" PRId64, c->action_cap);
    char retk[FD_MAX_RET_DAYS][16], retl[FD_MAX_RET_DAYS][16], snret[16];
    int nret = snapshot_cohorts(c, s->snap_wm, retk, retl);
    snprintf(snret, sizeof snret, "%d", nret);
    size_t end = s->snap_next + SNAP_CHUNK;
    if (end > scopes->elements) end = scopes->elements;
    char scpcap[24], nx[8];
    snprintf(scpcap, sizeof scpcap, "%" PRId64, c->coupon_cap);
    snprintf(nx, sizeof nx, "%d", FD_COUPON_FIELDS);
    for (size_t i = s->snap_next; i < end; i++) {
        /* 10 fixed, the windows, the action cap, the retention days, the
         * coupon cap, per window the coupon fields */
        const char *argv[14 + 2 * FD_MAX_WINDOWS + 2 * FD_MAX_RET_DAYS +
                         FD_MAX_WINDOWS * (1 + 2 * FD_COUPON_FIELDS)];
        size_t lens[sizeof argv / sizeof argv[0]];
        char xvals[FD_MAX_WINDOWS][FD_COUPON_FIELDS][32];
        const char *xnames[FD_MAX_WINDOWS][FD_COUPON_FIELDS];
        int n = 0;
        argv[n++] = "EVALSHA";
        argv[n++] = s->sha_snapshot;
        argv[n++] = "0";
        argv[n++] = c->prefix;
        argv[n++] = scopes->element[i]->str;
        argv[n++] = sto;
        argv[n++] = swm;
        argv[n++] = snow;
        argv[n++] = sttl;
        argv[n++] = snw;
        n = push_windows(&wins, argv, n);
        argv[n++] = scap;
        argv[n++] = snret;
        for (int k = 0; k < nret; k++) {
            argv[n++] = retk[k];
            argv[n++] = retl[k];
        }
        argv[n++] = scpcap;
        for (int w = 0; w < c->nwindows; w++) {
            int nf = snap_coupon_fields(s, i - s->snap_next, w, xnames[w], xvals[w]);
            argv[n++] = nf ? nx : "0";
            for (int k = 0; k < nf; k++) {
                argv[n++] = xnames[w][k];
                argv[n++] = xvals[w][k];
            }
        }
        argv[n++] = snap_uv_span(c, scopes->element[i]->str);
        for (int k = 0; k < n; k++) lens[k] = strlen(argv[k]);
        lens[4] = scopes->element[i]->len;
        if (send_argv(s, ignore_reply, req_new(s), n, argv, lens) < 0) {
            snap_abort(s);
            return;
        }
    }
    s->snap_next = end;
    s->snap_cp_ready = 0;
    if (end < scopes->elements) {
        /* more to come: renew the lease, and send the next chunk on its answer */
        if (send_lease(s, snap_chunk_reply, req_new(s)) < 0) snap_abort(s);
        return;
    }
    char chan[512], note[256];
    fd_key_updates(chan, sizeof chan, c->prefix);
    snprintf(note, sizeof note,
             "{\"event\":\"snapshot\",\"watermark\":%" PRId64 ",\"to\":%" PRId64
             ",\"scopes\":%zu,\"updated_at\":%" PRId64 "}",
             s->snap_wm, s->snap_to, scopes->elements, s->snap_now_ms);
    freeReplyObject(s->snap_scopes);
    s->snap_scopes = NULL;
    if (send_boards(s) < 0) {
        s->tick_running = 0;
        return;
    }
    const char *a[] = {"PUBLISH", chan, note};
    if (send_strs(s, tick_done_reply, req_new(s), 3, a) < 0) s->tick_running = 0;
}

static void tick_scopes_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    if (is_error(rep) || rep->type != REDIS_REPLY_ARRAY || !s->ac || s->closing ||
        !(s->snap_scopes = copy_reply(rep))) {
        log_error_reply(s, "snapshot scopes failed", rep);
        s->tick_running = 0;
        free(r);
        return;
    }
    s->snap_next = 0;
    s->snap_wm = r->wm;
    s->snap_to = r->to;
    s->snap_now_ms = r->now_ms;
    free(r);
    snap_send(s);
}

static void tick_seen_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    redisReply *wm = (redisReply *)r->ud;
    r->ud = NULL;
    if (is_error(rep) || !wm || wm->type != REDIS_REPLY_ARRAY || rep->type != REDIS_REPLY_ARRAY ||
        !s->ac || s->closing) {
        s->tick_running = 0;
        if (wm) freeReplyObject(wm);
        free(r);
        return;
    }
    /* the global watermark (model/window.h) */
    fd_watermark_t g;
    fd_watermark_init(&g);
    for (size_t i = 0; i + 1 < wm->elements; i += 2) {
        int64_t ts = strtoll(wm->element[i + 1]->str, NULL, 10);
        int64_t seen = 0;
        for (size_t j = 0; j + 1 < rep->elements; j += 2)
            if (strcmp(rep->element[j]->str, wm->element[i]->str) == 0)
                seen = strtoll(rep->element[j + 1]->str, NULL, 10);
        fd_watermark_add(&g, ts, seen, r->now_ms, s->conf->idle_timeout_s * 1000);
    }
    freeReplyObject(wm);
    if (fd_watermark_global(&g, s->conf->lateness_s * 1000, &r->wm) != 0) {
        s->tick_running = 0;
        free(r);
        return;
    }
    r->to = fd_bucket_m1(r->wm);
    /* Which scopes: when the windows moved (a new minute passed the
     * watermark), every scope with data in the longest window; otherwise
     * only those updated since the previous tick. At most
     * snapshot_max_scopes per tick, most recently updated first, so a
     * high-cardinality grouping cannot starve the flushes of Redis time. */
    int64_t now_s = r->now_ms / 1000;
    int64_t since = r->to != s->snap_last_to ? now_s - fd_conf_longest_window_s(s->conf) - 60
                                             : s->snap_last_tick_s - 1;
    s->snap_last_to = r->to;
    s->snap_last_tick_s = now_s;
    char key[512], min[32], lim[24];
    fd_key_scopes(key, sizeof key, s->conf->prefix);
    snprintf(min, sizeof min, "%" PRId64, since);
    snprintf(lim, sizeof lim, "%" PRId64, s->conf->snapshot_max_scopes);
    const char *a[] = {"ZREVRANGEBYSCORE", key, "+inf", min, "LIMIT", "0", lim};
    if (send_strs(s, tick_scopes_reply, r, 7, a) < 0) s->tick_running = 0;
}

static void tick_wm_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata; /* r->ud: the seen request, which gets a copy */
    reply_begin(r);
    req_t *seen = (req_t *)r->ud; /* NULL if it could not be sent */
    redisReply *rep = reply;
    if (seen && rep && rep->type == REDIS_REPLY_ARRAY) seen->ud = copy_reply(rep);
    free(r);
}

static void tick_lease_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    redisReply *rep = reply;
    if (is_error(rep) || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1 || !s->ac ||
        s->closing) {
        log_error_reply(s, "snapshot lease failed", rep);
        s->tick_running = 0;
        free(r);
        return;
    }
    char k1[512], k2[512];
    fd_key_wm(k1, sizeof k1, s->conf->prefix, s->conf->group);
    fd_key_seen(k2, sizeof k2, s->conf->prefix, s->conf->group);
    req_t *first = req_new(s);
    if (!first) {
        s->tick_running = 0;
        free(r);
        return;
    }
    first->ud = r;
    const char *a1[] = {"HGETALL", k1}, *a2[] = {"HGETALL", k2};
    if (send_strs(s, tick_wm_reply, first, 2, a1) < 0) { /* first is freed */
        s->tick_running = 0;
        free(r);
        return;
    }
    if (send_strs(s, tick_seen_reply, r, 2, a2) < 0) { /* r is freed */
        first->ud = NULL; /* so tick_wm_reply, still to come, leaves it alone */
        s->tick_running = 0;
    }
}

/* Takes or renews the snapshot lease for s->snap_id (PX 3 snapshot
 * intervals); fn gets 1 if it is ours. r is freed on failure. */
static int send_lease(fd_redis_sink_t *s, redisCallbackFn *fn, req_t *r) {
    char key[512], ttl[24];
    fd_key_lease(key, sizeof key, s->conf->prefix, "snapshot");
    snprintf(ttl, sizeof ttl, "%" PRId64, s->conf->snapshot_interval_ms * 3);
    const char *a[] = {"EVALSHA", s->sha_lease, "0", key, s->snap_id, ttl};
    return send_strs(s, fn, r, 6, a);
}

int fd_redis_sink_snapshot(fd_redis_sink_t *s, const char *id, int64_t now) {
    if (!s->ready || !s->ac) return -ENOTCONN;
    if (s->tick_running) return 0;
    snprintf(s->snap_id, sizeof s->snap_id, "%s", id);
    req_t *r = req_new(s);
    if (!r) return -ENOMEM;
    r->now_ms = now;
    int rc = send_lease(s, tick_lease_reply, r);
    if (rc == 0) s->tick_running = 1;
    return rc;
}

/* ---- blocking offset read (rebalance callback) ------------------------------ */

redisContext *fd_redis_connect_sync(const fd_conf_t *c, int64_t timeout_ms, char *err, size_t errlen) {
    fd_redis_addr_t a;
    if (fd_redis_url_parse(c->redis_url, &a, err, errlen) < 0) return NULL;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
    redisContext *rc = a.port ? redisConnectWithTimeout(a.host, a.port, tv)
                              : redisConnectUnixWithTimeout(a.path, tv);
    if (!rc || rc->err) {
        snprintf(err, errlen, "redis connect: %s", rc ? rc->errstr : "out of memory");
        if (rc) redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    redisReply *rep = NULL;
    if (a.password[0]) {
        rep = a.user[0] ? redisCommand(rc, "AUTH %s %s", a.user, a.password)
                        : redisCommand(rc, "AUTH %s", a.password);
        if (is_error(rep)) {
            snprintf(err, errlen, "redis AUTH failed"); /* never the password */
            goto fail;
        }
        freeReplyObject(rep);
    }
    if (a.db) {
        rep = redisCommand(rc, "SELECT %d", a.db);
        if (is_error(rep)) {
            snprintf(err, errlen, "redis SELECT %d failed", a.db);
            goto fail;
        }
        freeReplyObject(rep);
    }
    return rc;
fail:
    if (rep) freeReplyObject(rep);
    redisFree(rc);
    return NULL;
}

int fd_redis_read_offsets_sync(const fd_conf_t *c, const char *const *fields, int n, int64_t *offsets,
                               int64_t *max_ts, int timeout_ms, char *err, size_t errlen) {
    redisContext *rc = fd_redis_connect_sync(c, timeout_ms, err, errlen);
    if (!rc) return -EIO;
    int ret = -EIO;
    redisReply *rep = NULL;
    char koff[512], kwm[512];
    fd_key_offsets(koff, sizeof koff, c->prefix, c->group);
    fd_key_wm(kwm, sizeof kwm, c->prefix, c->group);
    for (int i = 0; i < n; i++) {
        rep = redisCommand(rc, "HGET %s %s", koff, fields[i]);
        if (is_error(rep)) {
            snprintf(err, errlen, "redis HGET offsets: %s", rep ? rep->str : rc->errstr);
            goto out;
        }
        offsets[i] = reply_int(rep, -1);
        freeReplyObject(rep);
        rep = redisCommand(rc, "HGET %s %s", kwm, fields[i]);
        if (is_error(rep)) {
            snprintf(err, errlen, "redis HGET wm: %s", rep ? rep->str : rc->errstr);
            goto out;
        }
        max_ts[i] = reply_int(rep, INT64_MIN);
        freeReplyObject(rep);
        rep = NULL;
    }
    ret = 0;
out:
    if (rep) freeReplyObject(rep);
    redisFree(rc);
    return ret;
}

/* ---- Redis settings ----------------------------------------------------- */

/* The settings of deploy/redis.conf's funneld block, checked once per
 * process with CONFIG GET: a difference is logged at warn level with what
 * it costs (docs/REDIS.md, "Redis settings"); the start goes on either way,
 * and a user without CONFIG permission (the minimal ACL) gets one info line
 * saying the check was skipped. */
typedef struct {
    const char *name, *want;
    int at_most; /* 1: a number <= want is fine; 0: the text must equal want */
    const char *why;
} setting_t;

static const setting_t SETTINGS[] = {
    {"hll-sparse-max-bytes", "1000", 1,
     "distinct-user HLLs stay in the sparse encoding up to this size, where PFADD costs 1-6 us "
     "a member (0.2-0.45 us dense); 1000 measured 0.77x the Redis CPU of 3000 for +8% memory"},
    {"maxmemory-policy", "noeviction", 0,
     "an evicted offsets/dedup/counter key breaks effectively-once (lost state or double "
     "counts); noeviction refuses writes instead, which funneld retries"},
};

static void settings_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    const setting_t *st = &SETTINGS[r->nfields];
    redisReply *rep = reply;
    free(r);
    if (!rep) return;
    if (rep->type == REDIS_REPLY_ERROR) {
        /* one line for the whole check; a refusal by the ACL is an expected
         * setup (the minimal ACL has no CONFIG), not a failed command */
        if (st == &SETTINGS[0] && strncmp(rep->str, "NOPERM", 6) == 0)
            fd_log(s->log, FD_LOG_INFO, "redis settings not checked; start continues",
                   "reason=\"the Redis user may not run CONFIG GET\"");
        else if (st == &SETTINGS[0])
            fd_log(s->log, FD_LOG_INFO, "redis settings not checked; start continues",
                   "reason=\"CONFIG GET: %.*s\"", (int)(rep->len > 160 ? 160 : rep->len), rep->str);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING)
        return; /* a Redis without that setting */
    const char *v = rep->element[1]->str;
    int ok = st->at_most ? strtoll(v, NULL, 10) <= strtoll(st->want, NULL, 10)
                         : strcmp(v, st->want) == 0;
    if (ok) return;
    fd_log(s->log, FD_LOG_WARN, "redis setting differs from deploy/redis.conf",
           "setting=%s value=\"%s\" want=\"%s%s\" reason=\"%s\"", st->name, v,
           st->at_most ? "<= " : "", st->want, st->why);
}

static void check_settings(fd_redis_sink_t *s) {
    if (s->settings_checked) return;
    s->settings_checked = 1;
    for (size_t i = 0; i < sizeof SETTINGS / sizeof SETTINGS[0]; i++) {
        req_t *r = req_new(s);
        if (r) r->nfields = (int)i; /* which setting the reply is about */
        const char *a[] = {"CONFIG", "GET", SETTINGS[i].name};
        send_strs(s, settings_reply, r, 3, a);
    }
}

/* ---- the sink ops (sinks/sink.h) ------------------------------------------ */

static int ops_ready(const void *s) { return fd_redis_sink_ready(s); }
static int ops_flush(void *s, const char *field, int64_t expected, int64_t next_offset,
                     int64_t max_ts, const fd_batch_t *b, fd_sink_flush_cb cb, void *ud) {
    return fd_redis_sink_flush(s, field, expected, next_offset, max_ts, b, cb, ud);
}
static int ops_read_offset(void *s, const char *field, fd_sink_offset_cb cb, void *ud) {
    return fd_redis_sink_read_offset(s, field, cb, ud);
}
static int ops_read_offsets_sync(void *s, const char *const *fields, int n, int64_t *offsets,
                                 int64_t *max_ts, int timeout_ms, char *err, size_t errlen) {
    return fd_redis_read_offsets_sync(((fd_redis_sink_t *)s)->conf, fields, n, offsets, max_ts,
                                      timeout_ms, err, errlen);
}
static int ops_check_state(void *s, const char *const *fields, int n, fd_sink_check_cb cb, void *ud) {
    return fd_redis_sink_check_state(s, fields, n, cb, ud);
}
static const char *ops_last_error(const void *s) { return fd_redis_sink_last_error(s); }

const fd_sink_ops_t *fd_redis_sink_ops(void) {
    static const fd_sink_ops_t ops = {ops_ready,       ops_flush,
                                      ops_read_offset, ops_read_offsets_sync,
                                      ops_check_state, ops_last_error};
    return &ops;
}

/* ---- coupons and leaderboards (docs/METRICS.md) ------------------------------ */

static void snap_coupons_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    int64_t seq = r->wm, j = r->offset;
    free(r);
    redisReply *rep = reply;
    if (seq != s->snap_cp_seq) return; /* a chunk that was aborted */
    int nw = s->conf->nwindows;
    if (!rep) {
        s->snap_cp_failed = 1; /* the connection went: the tick stops */
    } else if (is_error(rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)nw * 5) {
        /* the snapshot still goes, without the coupon figures (-1: none) */
        if (rep->type == REDIS_REPLY_ERROR) /* once per scope and tick: rate-limited */
            fd_log_repeat(s->log, FD_LOG_ERROR, "redis|coupon_read", "snapshot coupon read failed",
                          "error=\"%.*s\"", (int)(rep->len > 200 ? 200 : rep->len), rep->str);
        for (int k = 0; k < nw * 5; k++) s->snap_cp[j * nw * 5 + k] = -1;
    } else {
        for (size_t k = 0; k < rep->elements; k++)
            s->snap_cp[j * nw * 5 + (int64_t)k] =
                rep->element[k]->type == REDIS_REPLY_INTEGER ? rep->element[k]->integer : 0;
    }
    if (--s->snap_cp_pending > 0) return;
    if (s->snap_cp_failed || !s->ac || s->closing || !s->snap_scopes) {
        snap_abort(s);
        return;
    }
    s->snap_cp_ready = 1;
    snap_send(s);
}

/* Sends COUPON_READ for each scope of the chunk that starts at snap_next:
 * one short script per scope, like SNAPSHOT, so none holds Redis long. */
static int snap_read_coupons(fd_redis_sink_t *s) {
    const fd_conf_t *c = s->conf;
    const redisReply *scopes = s->snap_scopes;
    size_t end = s->snap_next + SNAP_CHUNK;
    if (end > scopes->elements) end = scopes->elements;
    if (end == s->snap_next) { /* nothing to read */
        s->snap_cp_ready = 1;
        snap_send(s);
        return 0;
    }
    const char *argv[8 + 2 * FD_MAX_WINDOWS];
    size_t lens[sizeof argv / sizeof argv[0]];
    char sto[24], snw[8];
    win_args_t wins;
    win_args_format(c, &wins);
    snprintf(sto, sizeof sto, "%" PRId64, s->snap_to);
    snprintf(snw, sizeof snw, "%d", c->nwindows);
    int n = 0;
    argv[n++] = "EVAL";
    argv[n++] = FD_LUA_COUPON_READ;
    argv[n++] = "0";
    argv[n++] = c->prefix;
    argv[n++] = sto;
    argv[n++] = snw;
    n = push_windows(&wins, argv, n);
    for (int k = 0; k < n; k++) lens[k] = strlen(argv[k]);
    s->snap_cp_seq++;
    s->snap_cp_failed = 0;
    s->snap_cp_pending = (int)(end - s->snap_next);
    for (size_t i = s->snap_next; i < end; i++) {
        argv[n] = scopes->element[i]->str;
        lens[n] = scopes->element[i]->len;
        argv[n + 1] = snap_uv_span(c, scopes->element[i]->str);
        lens[n + 1] = strlen(argv[n + 1]);
        req_t *r = req_new(s);
        if (r) {
            r->wm = s->snap_cp_seq;
            r->offset = (int64_t)(i - s->snap_next);
        }
        if (send_argv(s, snap_coupons_reply, r, n + 2, argv, lens) < 0) {
            s->snap_cp_seq++; /* the replies already asked for are ignored */
            return -1;
        }
    }
    return 0;
}

/* The coupon fields of the chunk's j-th scope, window w. */
static int snap_coupon_fields(fd_redis_sink_t *s, size_t j, int w, const char **names,
                              char (*vals)[32]) {
    const int64_t *v = &s->snap_cp[(j * (size_t)s->conf->nwindows + (size_t)w) * 5];
    if (v[0] < 0) return 0; /* the read failed: no coupon fields this time */
    fd_coupon_counts_t in = {
        .touched = v[0], .paid_or_touched = v[1], .any = v[2], .paid = v[3], .coupon_paid = v[4]};
    fd_coupon_stats_t st;
    fd_coupon_stats(&in, &st);
    return fd_coupon_fields(&in, &st, names, vals);
}

static void boards_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    req_t *r = privdata;
    fd_redis_sink_t *s = reply_begin(r);
    log_repeated_error(s, "leaderboard write failed", reply);
    free(r);
}

/* One BOARDS script per (grouping whose last dimension is channel or
 * community, window), sent after the tick's last snapshot script on the same
 * connection, so it reads the snapshots this tick wrote. */
static int send_boards(fd_redis_sink_t *s) {
    const fd_conf_t *c = s->conf;
    char since[24], size[24], minp[24], ttl[24], lease[512];
    snprintf(since, sizeof since, "%" PRId64,
             s->snap_now_ms / 1000 - fd_conf_longest_window_s(c) - 60);
    snprintf(size, sizeof size, "%" PRId64, c->lb_size);
    snprintf(minp, sizeof minp, "%" PRId64, c->lb_min_potential);
    snprintf(ttl, sizeof ttl, "%" PRId64, c->ttl_m1_s);
    fd_key_lease(lease, sizeof lease, c->prefix, "snapshot");
    for (int gi = 0; gi < c->ngroupings; gi++) {
        const fd_grouping_t *g = &c->groupings[gi];
        if (!fd_grouping_has_boards(g)) continue;
        char gname[256];
        fd_grouping_name(gname, sizeof gname, g);
        for (int w = 0; w < c->nwindows; w++) {
            char name[16];
            fd_duration_format(c->windows_s[w], name, sizeof name);
            const char *a[] = {"EVAL", FD_LUA_BOARDS, "0",  c->prefix, gname, name,
                               since,  size,          minp, ttl,       lease, s->snap_id};
            if (send_strs(s, boards_reply, req_new(s), 12, a) < 0) return -1;
        }
    }
    return 0;
}
