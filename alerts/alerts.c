/*
 * alerts.c — the alert evaluator (see alerts.h for the whole story).
 *
 * Threads: the loop thread owns the timer, the outputs and the delivery
 * queues; the worker (one uv_work_t at a time) owns the Redis connection,
 * the alert cache and the evaluation. They meet only at the start of a
 * round (the loop fills the `in_*` fields, then queues the work) and at its
 * end (after_work reads the `res_*` fields), never concurrently.
 *
 * Event time: a step is the end t of a window, a whole minute. Step t is
 * evaluated once the global watermark (minus lateness) has reached t, so
 * its m1 buckets are complete. The cursor `{prefix}:alert:cursor` holds
 * the last committed step; a round evaluates every step after it, in
 * batches, each batch committed atomically with the transitions it
 * produced. With no cursor yet, evaluation starts alerts.max_catchup_s
 * behind the watermark.
 *
 * Windows: the current window is [t - window, t). A drop rule's baseline
 * is either the `baseline` whole hours ending at the hour boundary at or
 * before the window's start (h1 buckets: changes once an hour), or, with
 * `baseline_offset`, the window shifted that far back (m1 buckets).
 *
 * Delivery: transitions are read back from the stream per output after
 * that output's cursor; each stream entry is queued on the loop (acked at
 * once when the output does not take it: pending/inactive transitions, or
 * a rule that excludes the output), and the contiguous acknowledged prefix
 * becomes the cursor persisted by the next round (lease-fenced). Tags carry
 * a per-output generation so that acknowledgements from before a reset
 * (lease lost, send failure) are ignored.
 *
 * Memory: the cache holds one record per non-inactive alert; per round the
 * scope lists (bounded by cardinality_cap per grouping) and the replies of
 * one batch (steps × rules × scopes × 4 integers).
 */
#include "alerts/alerts.h"
#include "sinks/redis_keys.h"
#include "sinks/redis_scripts.h"
#include "sinks/redis_sink.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model/alert_rule.h"
#include "model/scope.h"
#include "model/window.h"
#include "alerts/outputs.h"
#include "base/clock.h"

#define STEP_S 60
#define BATCH_STEPS 15
#define MAX_SCOPES_PER_RULE 5000
#define RESOLVED_KEEP_MS (24 * 3600 * 1000LL)
#define RESOLVED_RESEND_MS (15 * 60 * 1000LL)

/* ---- Lua ---------------------------------------------------------------------- */

/* ARGV: key, id, ttl ms. 1 if id holds the lease (the snapshot lease's pattern). */
static const char LUA_RELEASE[] =
    "if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('DEL', ARGV[1]) end\n"
    "return 0\n";

/* ARGV: prefix, nscopes, scopes..., nqueries, (from, to, series)... →
 * flat integers, scope-major. Windows from m1 buckets at the edges and h1
 * buckets for whole hours inside (the snapshot script's split). */
static const char LUA_READ[] =
    "local prefix = ARGV[1]\n"
    "local ns = tonumber(ARGV[2])\n"
    "local i = 3 + ns\n"
    "local nq = tonumber(ARGV[i]); i = i + 1\n"
    FD_LUA_WINDOW_BUCKETS
    "local hll = {uv_exposed = 'exposed', uv_interacted = 'interacted', uv_paid = 'paid'}\n"
    "local qs = {}\n"
    "for q = 1, nq do\n"
    "  qs[q] = {buckets(tonumber(ARGV[i]), tonumber(ARGV[i + 1])), ARGV[i + 2]}; i = i + 3\n"
    "end\n"
    "local out = {}\n"
    "for j = 1, ns do\n"
    "  local sc = ARGV[2 + j]\n"
    "  for q = 1, nq do\n"
    "    local bs, series, v = qs[q][1], qs[q][2], 0\n"
    "    if hll[series] then\n"
    "      local keys = {}\n"
    "      for _, b in ipairs(bs) do\n"
    "        keys[#keys + 1] = prefix .. ':u:' .. sc .. ':' .. b .. ':' .. hll[series]\n"
    "      end\n"
    "      if #keys > 0 then v = redis.call('PFCOUNT', unpack(keys)) end\n"
    "    else\n"
    "      for _, b in ipairs(bs) do\n"
    "        local x = redis.call('HGET', prefix .. ':c:' .. sc .. ':' .. b, series)\n"
    "        if x then v = v + tonumber(x) end\n"
    "      end\n"
    "    end\n"
    "    out[#out + 1] = v\n"
    "  end\n"
    "end\n"
    "return out\n";

/* ARGV: lease key, id, prefix, cursor ('' = keep), stream maxlen,
 * nstates, (fp, nfields, field, value...)... (nfields 0 = delete),
 * ntransitions, (tid, fp, state, rule, json)...,
 * nsent, (output, stream id)... — all or nothing, and only for the holder. */
static const char LUA_COMMIT[] =
    "local lease, me, prefix = ARGV[1], ARGV[2], ARGV[3]\n"
    "if redis.call('GET', lease) ~= me then return redis.error_reply('FENCED lease lost') end\n"
    "local cursor, maxlen = ARGV[4], ARGV[5]\n"
    "local idx = prefix .. ':alert:index'\n"
    "local i = 6\n"
    "local n = tonumber(ARGV[i]); i = i + 1\n"
    "for _ = 1, n do\n"
    "  local fp, nf = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2\n"
    "  local k = prefix .. ':alert:' .. fp\n"
    "  redis.call('DEL', k)\n"
    "  if nf == 0 then\n"
    "    redis.call('SREM', idx, fp)\n"
    "  else\n"
    "    redis.call('HSET', k, unpack(ARGV, i, i + 2 * nf - 1))\n"
    "    redis.call('SADD', idx, fp)\n"
    "    i = i + 2 * nf\n"
    "  end\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for _ = 1, n do\n"
    "  redis.call('XADD', prefix .. ':alerts', 'MAXLEN', '~', maxlen, '*', 'id', ARGV[i],\n"
    "             'fp', ARGV[i + 1], 'state', ARGV[i + 2], 'rule', ARGV[i + 3], 'json', ARGV[i + 4])\n"
    "  redis.call('PUBLISH', prefix .. ':alerts', ARGV[i + 4])\n"
    "  i = i + 5\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for _ = 1, n do\n"
    "  redis.call('SET', prefix .. ':alert:sent:' .. ARGV[i], ARGV[i + 1]); i = i + 2\n"
    "end\n"
    "if cursor ~= '' then redis.call('SET', prefix .. ':alert:cursor', cursor) end\n"
    "return 'OK'\n";

/* ---- records ---------------------------------------------------------------- */

typedef struct {
    char fp[17];
    int rule;
    char *scope;
    fd_alert_status_t st;
    fd_alert_eval_t last;
    int64_t samples;
    int64_t updated_ms; /* wall clock of the last state change */
    int dirty, dead;
} alert_t;

typedef struct {
    char *scope;
    char fp[17];
} rscope_t;

typedef struct {
    char sid[32];
    int acked;
} qent_t;

typedef struct {
    qent_t *v;
    size_t head, n, cap;
    uint64_t seq_head; /* seq of v[head] */
    uint32_t gen;
    char acked_id[32]; /* contiguous acknowledged prefix: to persist */
    int rewind;        /* a send failed: re-read from acked_id */
} outq_t;

typedef struct {
    int out;
    int deliver;
    char sid[32];
    char fp[17];
    char *json;
} entry_t;

/* A transition produced by a batch, until committed. */
typedef struct {
    char tid[80], fp[17], state[16], rule[160];
    char *json;
} trans_t;

struct fd_alerts {
    uv_loop_t *loop;
    const fd_conf_t *conf;
    fd_log_t *log;
    char id[64];
    char k_lease[300];
    int64_t lease_ttl_ms;
    uv_timer_t timer;
    uv_work_t work;
    int work_running, closing, timer_closed;
    fd_alert_out_t *out;
    outq_t q[FD_ALERT_OUT__COUNT];
    fd_alerts_stats_t st;

    /* ---- worker-owned ---- */
    redisContext *rc;
    int leader;
    int64_t cursor_s;
    alert_t *alerts;
    size_t nalerts, capalerts;
    rscope_t *scopes[FD_ALERT_MAX_RULES];
    size_t nscopes[FD_ALERT_MAX_RULES];
    char read_id[FD_ALERT_OUT__COUNT][32];
    char persisted[FD_ALERT_OUT__COUNT][32];
    int64_t last_resend_ms;
    trans_t *trans;
    size_t ntrans, captrans;

    /* ---- loop → worker, set before queueing ---- */
    char in_acked[FD_ALERT_OUT__COUNT][32];
    size_t in_room[FD_ALERT_OUT__COUNT];
    int in_rewind[FD_ALERT_OUT__COUNT];
    int in_release;

    /* ---- worker → loop, read in after_work ---- */
    int res_gained, res_lost, res_behind, res_error;
    entry_t *entries;
    size_t nentries, capentries;
    char *resend;
    char errmsg[256];
    uint64_t res_evals, res_trans;
};

/* Array v (n of *cap elements in use, each `size` bytes) with room for one
 * more: v itself while n < *cap, else v reallocated to twice *cap (`first`
 * when empty). NULL when out of memory, with v and *cap left as they were. */
static void *grow(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : first;
    void *p = realloc(v, nc * size);
    if (p)
        *cap = nc;
    return p;
}

/* ---- Redis (worker) ------------------------------------------------------------ */

static void set_err(fd_alerts_t *a, const char *what, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(a->errmsg, sizeof a->errmsg, "%s: %.200s", what, r->str);
    else if (a->rc && a->rc->err)
        snprintf(a->errmsg, sizeof a->errmsg, "%s: %.200s", what, a->rc->errstr);
    else
        snprintf(a->errmsg, sizeof a->errmsg, "%s: unexpected reply", what);
}

static void disconnect(fd_alerts_t *a)
{
    if (a->rc)
        redisFree(a->rc);
    a->rc = NULL;
}

/* Runs a command; on a transport error drops the connection. The caller
 * frees the reply. */
static redisReply *cmd_argv(fd_alerts_t *a, int argc, const char **argv, const size_t *lens)
{
    if (!a->rc)
        return NULL;
    redisReply *r = redisCommandArgv(a->rc, argc, argv, lens);
    if (!r) {
        set_err(a, "redis", NULL);
        disconnect(a);
    }
    return r;
}

static redisReply *cmd_strs(fd_alerts_t *a, int argc, const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc && i < 16; i++)
        lens[i] = strlen(argv[i]);
    return cmd_argv(a, argc, argv, lens);
}

/* cmd_strs keeping only a reply of the expected type: anything else is
 * recorded as the error of `what` and freed, and NULL is returned. */
static redisReply *cmd_want(fd_alerts_t *a, int type, const char *what, int argc,
                            const char **argv)
{
    redisReply *r = cmd_strs(a, argc, argv);
    if (r && r->type == type)
        return r;
    set_err(a, what, r);
    if (r)
        freeReplyObject(r);
    return NULL;
}

static int connect_redis(fd_alerts_t *a)
{
    if (a->rc)
        return 0;
    char err[256];
    a->rc = fd_redis_connect_sync(a->conf, a->conf->redis_timeout_ms, err, sizeof err);
    if (!a->rc) {
        snprintf(a->errmsg, sizeof a->errmsg, "%s", err);
        return -1;
    }
    return 0;
}

static int eval_lease(fd_alerts_t *a, const char *script)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, a->lease_ttl_ms);
    const char *argv[] = {"EVAL", script, "0", a->k_lease, a->id, ttl};
    redisReply *r = cmd_want(a, REDIS_REPLY_INTEGER, "alerts lease", 6, argv);
    if (!r)
        return -1;
    int v = (int)r->integer;
    freeReplyObject(r);
    return v;
}

/* ---- cache (worker) --------------------------------------------------------------- */

static alert_t *find_alert(fd_alerts_t *a, const char *fp)
{
    for (size_t i = 0; i < a->nalerts; i++)
        if (!a->alerts[i].dead && memcmp(a->alerts[i].fp, fp, 16) == 0)
            return &a->alerts[i];
    return NULL;
}

static alert_t *add_alert(fd_alerts_t *a, const char *fp, int rule, const char *scope)
{
    if (a->nalerts == a->capalerts) {
        size_t nc = a->capalerts ? a->capalerts * 2 : 64;
        alert_t *n = realloc(a->alerts, nc * sizeof *n);
        if (!n)
            return NULL;
        a->alerts = n;
        a->capalerts = nc;
    }
    alert_t *x = &a->alerts[a->nalerts];
    memset(x, 0, sizeof *x);
    x->scope = strdup(scope);
    if (!x->scope)
        return NULL;
    memcpy(x->fp, fp, 17);
    x->rule = rule;
    a->nalerts++;
    return x;
}

static void drop_cache(fd_alerts_t *a)
{
    for (size_t i = 0; i < a->nalerts; i++)
        free(a->alerts[i].scope);
    a->nalerts = 0;
}

/* This instance no longer holds the alert lease: forget the cached state
 * (the next holder owns it) and tell the loop thread. */
static void lose_lease(fd_alerts_t *a)
{
    a->leader = 0;
    drop_cache(a);
    a->res_lost = 1;
}

/* Removes records that were deleted and committed. */
static void compact_cache(fd_alerts_t *a)
{
    size_t w = 0;
    for (size_t i = 0; i < a->nalerts; i++) {
        if (a->alerts[i].dead) {
            free(a->alerts[i].scope);
            continue;
        }
        a->alerts[w++] = a->alerts[i];
    }
    a->nalerts = w;
}

static int rule_index(const fd_conf_t *c, const char *name)
{
    for (int i = 0; i < c->nalert_rules; i++)
        if (strcmp(c->alert_rules[i].name, name) == 0)
            return i;
    return -1;
}

static const char *hget(const redisReply *h, const char *f)
{
    for (size_t i = 0; h && i + 1 < h->elements; i += 2)
        if (h->element[i]->str && strcmp(h->element[i]->str, f) == 0)
            return h->element[i + 1]->str;
    return NULL;
}

static int64_t hget_i(const redisReply *h, const char *f)
{
    const char *v = hget(h, f);
    return v ? strtoll(v, NULL, 10) : 0;
}

static void get_string(fd_alerts_t *a, const char *key, char *out, size_t cap)
{
    const char *argv[] = {"GET", key};
    redisReply *r = cmd_strs(a, 2, argv);
    out[0] = '\0';
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", r->str);
    if (r)
        freeReplyObject(r);
}

/* On gaining the lease: states, cursor and delivery cursors from Redis. */
static int load_state(fd_alerts_t *a)
{
    const fd_conf_t *c = a->conf;
    char key[512], buf[64];
    drop_cache(a);
    fd_key_alert_index(key, sizeof key, c->prefix);
    const char *sm[] = {"SMEMBERS", key};
    redisReply *idx = cmd_want(a, REDIS_REPLY_ARRAY, "load alert index", 2, sm);
    if (!idx)
        return -1;
    for (size_t i = 0; i < idx->elements; i++) {
        const char *fp = idx->element[i]->str;
        if (!fp || strlen(fp) != 16)
            continue;
        fd_key_alert(key, sizeof key, c->prefix, fp);
        const char *hg[] = {"HGETALL", key};
        redisReply *h = cmd_want(a, REDIS_REPLY_ARRAY, "load alert", 2, hg);
        if (!h) {
            freeReplyObject(idx);
            return -1;
        }
        const char *rule = hget(h, "rule"), *scope = hget(h, "scope"), *state = hget(h, "state");
        int ri = rule ? rule_index(c, rule) : -1;
        int si = state ? fd_alert_state_from_name(state) : -1;
        if (ri >= 0 && scope && si > 0) { /* rules no longer configured stay untouched */
            alert_t *x = add_alert(a, fp, ri, scope);
            if (x) {
                x->st.state = (fd_alert_state_t)si;
                x->st.active_since = hget_i(h, "active_since");
                x->st.fired_at = hget_i(h, "fired_at");
                x->st.keep_since = hget_i(h, "keep_since");
                x->st.resolved_at = hget_i(h, "resolved_at");
                x->st.last_eval = hget_i(h, "last_eval");
                x->updated_ms = hget_i(h, "updated_at");
                const char *v = hget(h, "value");
                x->last.value = v ? strtod(v, NULL) : 0;
                v = hget(h, "baseline");
                x->last.baseline = v ? strtod(v, NULL) : 0;
                x->samples = hget_i(h, "samples");
            }
        }
        freeReplyObject(h);
    }
    freeReplyObject(idx);
    fd_key_alert_cursor(key, sizeof key, c->prefix);
    get_string(a, key, buf, sizeof buf);
    a->cursor_s = buf[0] ? strtoll(buf, NULL, 10) : 0;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
        fd_key_alert_sent(key, sizeof key, c->prefix, fd_alert_out_name(o));
        get_string(a, key, a->persisted[o], sizeof a->persisted[o]);
        snprintf(a->read_id[o], sizeof a->read_id[o], "%s",
                 a->persisted[o][0] ? a->persisted[o] : "0-0");
    }
    if (!a->rc)
        return -1;
    return 0;
}

/* ---- watermark and scopes (worker) --------------------------------------------------- */

/* The last step the global watermark has passed, or INT64_MIN if unknown. */
static int64_t eval_to(fd_alerts_t *a, int64_t now)
{
    const fd_conf_t *c = a->conf;
    char k1[512], k2[512];
    fd_key_wm(k1, sizeof k1, c->prefix, c->group);
    fd_key_seen(k2, sizeof k2, c->prefix, c->group);
    const char *g1[] = {"HGETALL", k1}, *g2[] = {"HGETALL", k2};
    redisReply *wm = cmd_strs(a, 2, g1);
    redisReply *seen = wm ? cmd_strs(a, 2, g2) : NULL;
    fd_watermark_t g;
    fd_watermark_init(&g);
    if (wm && seen && wm->type == REDIS_REPLY_ARRAY && seen->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < wm->elements; i += 2) {
            int64_t ts = strtoll(wm->element[i + 1]->str, NULL, 10);
            const char *sv = hget(seen, wm->element[i]->str);
            fd_watermark_add(&g, ts, sv ? strtoll(sv, NULL, 10) : 0, now, c->idle_timeout_s * 1000);
        }
    } else {
        set_err(a, "read watermark", wm ? seen : wm);
    }
    if (wm)
        freeReplyObject(wm);
    if (seen)
        freeReplyObject(seen);
    int64_t w;
    if (fd_watermark_global(&g, c->lateness_s * 1000, &w) != 0)
        return INT64_MIN;
    return fd_bucket_m1(w);
}

/* Labels of an alert: the rule's, then one per dimension of the scope. */
static int alert_labels(const fd_alert_rule_t *r, const char *scope, const char **keys,
                        const char **vals, char dvals[FD_DIM__COUNT][256])
{
    unsigned set;
    int n = 0;
    for (int i = 0; i < r->nlabels; i++) {
        keys[n] = r->labels[i].key;
        vals[n++] = r->labels[i].value;
    }
    if (fd_scope_parse(scope, &set, dvals) < 0)
        return n;
    for (int d = 0; d < FD_DIM__COUNT; d++)
        if (set & (1u << d)) {
            keys[n] = fd_dim_name((fd_dim_t)d);
            vals[n++] = dvals[d];
        }
    return n;
}

static void free_scopes(fd_alerts_t *a)
{
    for (int r = 0; r < FD_ALERT_MAX_RULES; r++) {
        for (size_t i = 0; i < a->nscopes[r]; i++)
            free(a->scopes[r][i].scope);
        free(a->scopes[r]);
        a->scopes[r] = NULL;
        a->nscopes[r] = 0;
    }
}

static int push_scope(fd_alerts_t *a, int r, const char *scope, size_t *cap)
{
    if (a->nscopes[r] >= MAX_SCOPES_PER_RULE)
        return 0;
    if (a->nscopes[r] == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        rscope_t *n = realloc(a->scopes[r], nc * sizeof *n);
        if (!n)
            return -1;
        a->scopes[r] = n;
        *cap = nc;
    }
    rscope_t *x = &a->scopes[r][a->nscopes[r]];
    x->scope = strdup(scope);
    if (!x->scope)
        return -1;
    const char *keys[FD_ALERT_MAX_LABELS + FD_DIM__COUNT], *vals[FD_ALERT_MAX_LABELS + FD_DIM__COUNT];
    char dv[FD_DIM__COUNT][256];
    const fd_alert_rule_t *rule = &a->conf->alert_rules[r];
    int n = alert_labels(rule, scope, keys, vals, dv);
    fd_alert_fingerprint(rule->name, keys, vals, n, x->fp);
    a->nscopes[r]++;
    return 0;
}

/* Scope lists per rule: every scope of the rule's grouping updated within
 * the m1 TTL, plus the scopes of the rule's cached alerts (so that an alert
 * whose scope went quiet still resolves). */
static int load_scopes(fd_alerts_t *a, int64_t now)
{
    const fd_conf_t *c = a->conf;
    free_scopes(a);
    char key[512], min[32];
    fd_key_scopes(key, sizeof key, c->prefix);
    snprintf(min, sizeof min, "%" PRId64, now / 1000 - c->ttl_m1_s);
    const char *argv[] = {"ZRANGEBYSCORE", key, min, "+inf"};
    redisReply *r = cmd_want(a, REDIS_REPLY_ARRAY, "read scopes", 4, argv);
    if (!r)
        return -1;
    size_t caps[FD_ALERT_MAX_RULES] = {0};
    char vals[FD_DIM__COUNT][256];
    for (size_t i = 0; i < r->elements; i++) {
        unsigned set;
        const char *id = r->element[i]->str;
        if (!id || fd_scope_parse(id, &set, vals) != 0)
            continue;
        for (int ri = 0; ri < c->nalert_rules; ri++)
            if (fd_grouping_mask(&c->alert_rules[ri].grouping) == set && push_scope(a, ri, id, &caps[ri]))
                goto oom;
    }
    freeReplyObject(r);
    for (size_t i = 0; i < a->nalerts; i++) {
        alert_t *x = &a->alerts[i];
        int found = 0;
        for (size_t j = 0; j < a->nscopes[x->rule] && !found; j++)
            found = strcmp(a->scopes[x->rule][j].scope, x->scope) == 0;
        if (!found && push_scope(a, x->rule, x->scope, &caps[x->rule]))
            return -1;
    }
    return 0;
oom:
    freeReplyObject(r);
    snprintf(a->errmsg, sizeof a->errmsg, "out of memory");
    return -1;
}

/* ---- evaluation (worker) ---------------------------------------------------------------- */

typedef struct {
    int64_t from, to;
    const char *series;
} query_t;

/* The queries of rule r at step t (seconds); returns how many (<= 4). */
static int rule_queries(const fd_alert_rule_t *r, int64_t t, query_t *q)
{
    const char *num, *den;
    int64_t from = t - r->window_s;
    if (r->kind == FD_ALERT_ABSENT) {
        q[0] = (query_t){from, t, fd_metric_name(r->metric)};
        q[1] = (query_t){from, t, fd_metric_name(r->while_metric)};
        return 2;
    }
    fd_metric_series(r->metric, &num, &den);
    int n = 0;
    q[n++] = (query_t){from, t, num};
    if (den)
        q[n++] = (query_t){from, t, den};
    if (r->kind == FD_ALERT_DROP) {
        int64_t bto, bfrom;
        if (r->baseline_offset_s) {
            bto = t - r->baseline_offset_s;
            bfrom = bto - r->window_s;
        } else {
            bto = fd_floor_div(from, 3600) * 3600;
            bfrom = bto - r->baseline_s;
        }
        q[n++] = (query_t){bfrom, bto, num};
        if (den)
            q[n++] = (query_t){bfrom, bto, den};
    }
    return n;
}

static int append_read(fd_alerts_t *a, int ri, int64_t t)
{
    const fd_alert_rule_t *r = &a->conf->alert_rules[ri];
    size_t ns = a->nscopes[ri];
    query_t q[4];
    int nq = rule_queries(r, t, q);
    size_t argc = 5 + ns + 1 + 3 * (size_t)nq;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    char nums[16][24];
    int nn = 0;
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return -1;
    }
    size_t k = 0;
    argv[k++] = "EVAL";
    argv[k++] = LUA_READ;
    argv[k++] = "0";
    argv[k++] = a->conf->prefix;
    snprintf(nums[nn], 24, "%zu", ns);
    argv[k++] = nums[nn++];
    for (size_t i = 0; i < ns; i++)
        argv[k++] = a->scopes[ri][i].scope;
    snprintf(nums[nn], 24, "%d", nq);
    argv[k++] = nums[nn++];
    for (int i = 0; i < nq; i++) {
        snprintf(nums[nn], 24, "%" PRId64, q[i].from);
        argv[k++] = nums[nn++];
        snprintf(nums[nn], 24, "%" PRId64, q[i].to);
        argv[k++] = nums[nn++];
        argv[k++] = q[i].series;
    }
    for (size_t i = 0; i < k; i++)
        lens[i] = strlen(argv[i]);
    int rc = redisAppendCommandArgv(a->rc, (int)k, argv, lens) == REDIS_OK ? 0 : -1;
    free(argv);
    free(lens);
    return rc;
}

static void fmt_double(double v, char *buf, size_t cap)
{
    if (v != v)
        snprintf(buf, cap, "0");
    else
        snprintf(buf, cap, "%.6g", v);
}

/* The transition's JSON text (one line): what every output carries. */
static char *transition_json(fd_alerts_t *a, const alert_t *x, int prev, int64_t t_ms,
                             char *tid)
{
    const fd_alert_rule_t *r = &a->conf->alert_rules[x->rule];
    char num[64];
    const char *keys[FD_ALERT_MAX_LABELS + FD_DIM__COUNT], *vals[FD_ALERT_MAX_LABELS + FD_DIM__COUNT];
    char dv[FD_DIM__COUNT][256];
    int n = alert_labels(r, x->scope, keys, vals, dv);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", tid);
    cJSON_AddStringToObject(o, "fingerprint", x->fp);
    cJSON_AddStringToObject(o, "rule", r->name);
    cJSON_AddStringToObject(o, "kind", fd_alert_kind_name(r->kind));
    cJSON_AddStringToObject(o, "metric", fd_metric_name(r->metric));
    cJSON_AddStringToObject(o, "state", fd_alert_state_name(x->st.state));
    cJSON_AddStringToObject(o, "previous", fd_alert_state_name((fd_alert_state_t)prev));
    cJSON_AddStringToObject(o, "scope", x->scope);
    cJSON *l = cJSON_AddObjectToObject(o, "labels");
    cJSON_AddStringToObject(l, "alertname", r->name);
    for (int i = 0; i < n; i++)
        cJSON_AddStringToObject(l, keys[i], vals[i]);
    cJSON *an = cJSON_AddObjectToObject(o, "annotations");
    for (int i = 0; i < r->nannotations; i++)
        cJSON_AddStringToObject(an, r->annotations[i].key, r->annotations[i].value);
    fmt_double(x->last.value, num, sizeof num);
    cJSON_AddStringToObject(an, "value", num);
    fmt_double(x->last.baseline, num, sizeof num);
    cJSON_AddStringToObject(an, "baseline", num);
    cJSON_AddNumberToObject(o, "at", (double)t_ms);
    cJSON_AddNumberToObject(o, "starts_at", (double)x->st.active_since);
    if (x->st.state == FD_AS_RESOLVED)
        cJSON_AddNumberToObject(o, "ends_at", (double)x->st.resolved_at);
    else
        cJSON_AddNullToObject(o, "ends_at");
    cJSON_AddNumberToObject(o, "value", x->last.value);
    cJSON_AddNumberToObject(o, "baseline", x->last.baseline);
    cJSON_AddNumberToObject(o, "drop", x->last.drop);
    cJSON_AddNumberToObject(o, "z", x->last.z);
    cJSON_AddNumberToObject(o, "p_value", x->last.p_value);
    cJSON_AddNumberToObject(o, "samples", (double)x->samples);
    cJSON_AddNumberToObject(o, "window_s", (double)r->window_s);
    cJSON_AddStringToObject(o, "instance", a->id);
    cJSON_AddNumberToObject(o, "emitted_at", (double)fd_clock_wall_ms());
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int add_transition(fd_alerts_t *a, alert_t *x, int prev, int64_t t_ms)
{
    trans_t *v = grow(a->trans, a->ntrans, &a->captrans, sizeof *v, 16);
    if (!v)
        return -1;
    a->trans = v;
    trans_t *tr = &a->trans[a->ntrans];
    /* deterministic: the same step re-evaluated after a lost commit gets the
     * same id, so receivers can deduplicate */
    snprintf(tr->tid, sizeof tr->tid, "%s-%" PRId64 "-%s", x->fp, t_ms,
             fd_alert_state_name(x->st.state));
    snprintf(tr->fp, sizeof tr->fp, "%s", x->fp);
    snprintf(tr->state, sizeof tr->state, "%s", fd_alert_state_name(x->st.state));
    snprintf(tr->rule, sizeof tr->rule, "%s", a->conf->alert_rules[x->rule].name);
    tr->json = transition_json(a, x, prev, t_ms, tr->tid);
    if (!tr->json)
        return -1;
    a->ntrans++;
    return 0;
}

static void free_trans(fd_alerts_t *a)
{
    for (size_t i = 0; i < a->ntrans; i++)
        free(a->trans[i].json);
    a->ntrans = 0;
}

/* Applies one rule's reply for step t. */
static int apply_reply(fd_alerts_t *a, int ri, int64_t t, const redisReply *rep)
{
    const fd_alert_rule_t *r = &a->conf->alert_rules[ri];
    query_t q[4];
    int nq = rule_queries(r, t, q);
    size_t ns = a->nscopes[ri];
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != ns * (size_t)nq) {
        set_err(a, "read buckets", rep);
        return -1;
    }
    int64_t t_ms = t * 1000;
    for (size_t i = 0; i < ns; i++) {
        int64_t v[4] = {0, 0, 0, 0};
        for (int j = 0; j < nq; j++) {
            const redisReply *e = rep->element[i * (size_t)nq + (size_t)j];
            v[j] = e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
        }
        fd_alert_input_t in = {0};
        int rate = fd_metric_is_rate(r->metric);
        if (r->kind == FD_ALERT_ABSENT || (rate && r->kind != FD_ALERT_DROP)) {
            in.num = v[0];
            in.den = v[1];
        } else if (!rate && r->kind == FD_ALERT_BELOW) {
            in.num = v[0];
        } else if (rate) {
            in.num = v[0];
            in.den = v[1];
            in.base_num = v[2];
            in.base_den = v[3];
        } else {
            in.num = v[0];
            in.base_num = v[1];
        }
        fd_alert_eval_t ev;
        fd_alert_rule_eval(r, &in, &ev);
        alert_t *x = find_alert(a, a->scopes[ri][i].fp);
        if (!x && !ev.cond)
            continue;
        if (!x && !(x = add_alert(a, a->scopes[ri][i].fp, ri, a->scopes[ri][i].scope)))
            return -1;
        fd_alert_status_t b = x->st;
        int prev = (int)x->st.state;
        x->last = ev;
        x->samples = r->kind == FD_ALERT_ABSENT || rate ? in.den : in.base_num;
        a->res_evals++;
        int tr = fd_alert_step(&x->st, ev.cond, t_ms, r->for_s * 1000,
                               r->keep_firing_for_s * 1000);
        if (b.state != x->st.state || b.active_since != x->st.active_since ||
            b.fired_at != x->st.fired_at || b.keep_since != x->st.keep_since ||
            b.resolved_at != x->st.resolved_at)
            x->dirty = 1;
        if (tr >= 0) {
            x->updated_ms = fd_clock_wall_ms();
            if (add_transition(a, x, prev, t_ms) < 0)
                return -1;
        }
        if (x->st.state == FD_AS_INACTIVE ||
            (x->st.state == FD_AS_RESOLVED && t_ms - x->st.resolved_at > RESOLVED_KEEP_MS)) {
            x->dead = 1;
            x->dirty = 1;
        }
    }
    return 0;
}

/* One commit: dirty states, the batch's transitions, cursor, delivery
 * cursors. Returns 0, -1 on error, -2 when fenced (lease lost). */
static int commit(fd_alerts_t *a, int64_t cursor)
{
    const fd_conf_t *c = a->conf;
    size_t ndirty = 0;
    for (size_t i = 0; i < a->nalerts; i++)
        ndirty += a->alerts[i].dirty;
    int nsent = 0;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
        nsent += a->in_acked[o][0] && strcmp(a->in_acked[o], a->persisted[o]) != 0;
    size_t cap = 16 + ndirty * 40 + a->ntrans * 5 + (size_t)nsent * 2;
    const char **argv = malloc(cap * sizeof *argv);
    size_t *lens = malloc(cap * sizeof *lens);
    char(*nums)[32] = malloc((16 + ndirty * 16) * sizeof *nums);
    int rc = -1;
    if (!argv || !lens || !nums)
        goto out;
    size_t k = 0, nn = 0;
#define NUM(...) (snprintf(nums[nn], 32, __VA_ARGS__), argv[k++] = nums[nn++])
#define STRA(s) (argv[k++] = (s))
    STRA("EVAL");
    STRA(LUA_COMMIT);
    STRA("0");
    STRA(a->k_lease);
    STRA(a->id);
    STRA(c->prefix);
    if (cursor > 0)
        NUM("%" PRId64, cursor);
    else
        STRA("");
    NUM("%" PRId64, c->alert_stream_maxlen);
    NUM("%zu", ndirty);
    for (size_t i = 0; i < a->nalerts; i++) {
        alert_t *x = &a->alerts[i];
        if (!x->dirty)
            continue;
        STRA(x->fp);
        if (x->dead) {
            STRA("0");
            continue;
        }
        STRA("15");
        STRA("rule"); STRA(c->alert_rules[x->rule].name);
        STRA("scope"); STRA(x->scope);
        STRA("state"); STRA(fd_alert_state_name(x->st.state));
        STRA("active_since"); NUM("%" PRId64, x->st.active_since);
        STRA("fired_at"); NUM("%" PRId64, x->st.fired_at);
        STRA("keep_since"); NUM("%" PRId64, x->st.keep_since);
        STRA("resolved_at"); NUM("%" PRId64, x->st.resolved_at);
        STRA("last_eval"); NUM("%" PRId64, x->st.last_eval);
        STRA("value"); NUM("%.6g", x->last.value);
        STRA("baseline"); NUM("%.6g", x->last.baseline);
        STRA("z"); NUM("%.4f", x->last.z);
        STRA("samples"); NUM("%" PRId64, x->samples);
        STRA("updated_at"); NUM("%" PRId64, x->updated_ms);
        STRA("fingerprint"); STRA(x->fp);
        STRA("kind"); STRA(fd_alert_kind_name(c->alert_rules[x->rule].kind));
    }
    NUM("%zu", a->ntrans);
    for (size_t i = 0; i < a->ntrans; i++) {
        STRA(a->trans[i].tid);
        STRA(a->trans[i].fp);
        STRA(a->trans[i].state);
        STRA(a->trans[i].rule);
        STRA(a->trans[i].json);
    }
    NUM("%d", nsent);
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
        if (a->in_acked[o][0] && strcmp(a->in_acked[o], a->persisted[o]) != 0) {
            STRA(fd_alert_out_name(o));
            STRA(a->in_acked[o]);
        }
#undef NUM
#undef STRA
    for (size_t i = 0; i < k; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = cmd_argv(a, (int)k, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "FENCED")) {
        rc = -2;
    } else if (r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING)) {
        rc = 0;
        for (size_t i = 0; i < a->nalerts; i++)
            a->alerts[i].dirty = 0;
        compact_cache(a);
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            if (a->in_acked[o][0])
                snprintf(a->persisted[o], sizeof a->persisted[o], "%s", a->in_acked[o]);
        a->res_trans += a->ntrans;
        if (cursor > 0)
            a->cursor_s = cursor;
    } else {
        set_err(a, "alerts commit", r);
    }
    if (r)
        freeReplyObject(r);
out:
    free(argv);
    free(lens);
    free(nums);
    free_trans(a);
    return rc;
}

/* Evaluates steps (start, ...] up to n, pipelined; then commits. */
static int run_batch(fd_alerts_t *a, int64_t first, int nsteps)
{
    const fd_conf_t *c = a->conf;
    int nr = c->nalert_rules;
    for (int s = 0; s < nsteps; s++)
        for (int ri = 0; ri < nr; ri++) {
            if (append_read(a, ri, first + (int64_t)s * STEP_S) < 0) {
                snprintf(a->errmsg, sizeof a->errmsg, "out of memory");
                disconnect(a); /* replies would be out of step */
                return -1;
            }
        }
    int rc = 0;
    for (int s = 0; s < nsteps; s++)
        for (int ri = 0; ri < nr; ri++) {
            redisReply *rep = NULL;
            if (redisGetReply(a->rc, (void **)&rep) != REDIS_OK) {
                set_err(a, "read buckets", NULL);
                disconnect(a);
                return -1;
            }
            if (rc == 0 && apply_reply(a, ri, first + (int64_t)s * STEP_S, rep) < 0)
                rc = -1;
            freeReplyObject(rep);
        }
    if (rc < 0) {
        /* the cache may hold half a batch: reload it from Redis next time */
        free_trans(a);
        a->leader = 0;
        drop_cache(a);
        return -1;
    }
    return commit(a, first + (int64_t)(nsteps - 1) * STEP_S);
}

static int push_entry(fd_alerts_t *a, int out, int deliver, const char *sid, const char *fp,
                      const char *json)
{
    entry_t *v = grow(a->entries, a->nentries, &a->capentries, sizeof *v, 32);
    if (!v)
        return -1;
    a->entries = v;
    entry_t *e = &a->entries[a->nentries];
    e->out = out;
    e->deliver = deliver;
    snprintf(e->sid, sizeof e->sid, "%s", sid);
    snprintf(e->fp, sizeof e->fp, "%s", fp ? fp : "");
    e->json = deliver && json ? strdup(json) : NULL;
    if (deliver && !e->json)
        return -1;
    a->nentries++;
    return 0;
}

/* New stream entries for each enabled output, as far as it has room. */
static void read_stream(fd_alerts_t *a)
{
    const fd_conf_t *c = a->conf;
    char key[512], start[40], count[24];
    fd_key_alert_stream(key, sizeof key, c->prefix);
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
        if (!a->in_room[o])
            continue;
        if (a->in_rewind[o])
            snprintf(a->read_id[o], sizeof a->read_id[o], "%s",
                     a->in_acked[o][0] ? a->in_acked[o] : a->persisted[o][0] ? a->persisted[o] : "0-0");
        snprintf(start, sizeof start, "(%s", a->read_id[o]);
        snprintf(count, sizeof count, "%zu", a->in_room[o]);
        const char *argv[] = {"XRANGE", key, start, "+", "COUNT", count};
        redisReply *r = cmd_want(a, REDIS_REPLY_ARRAY, "read alert stream", 6, argv);
        if (!r)
            return;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
                continue;
            const char *sid = e->element[0]->str;
            const redisReply *f = e->element[1];
            const char *state = hget(f, "state"), *rule = hget(f, "rule");
            int ri = rule ? rule_index(c, rule) : -1;
            unsigned mask = ri >= 0 ? c->alert_rules[ri].sinks : FD_ALERT_OUT_ALL;
            int deliver = state && (strcmp(state, "firing") == 0 || strcmp(state, "resolved") == 0) &&
                          (mask & (1u << o));
            if (push_entry(a, o, deliver, sid, hget(f, "fp"), hget(f, "json")) < 0)
                break;
            snprintf(a->read_id[o], sizeof a->read_id[o], "%s", sid);
        }
        freeReplyObject(r);
    }
}

/* Alertmanager re-send: firing alerts and those resolved recently (their
 * updated_ms is wall time, shared through Redis; the interval is measured on
 * the monotonic clock). */
static void build_resend(fd_alerts_t *a, int64_t now, int64_t mono)
{
    if (!a->conf->alert_am_url || !a->conf->alert_am_url[0])
        return;
    if (mono - a->last_resend_ms < a->conf->alert_am_resend_ms)
        return;
    a->last_resend_ms = mono;
    cJSON *arr = cJSON_CreateArray();
    int n = 0;
    for (size_t i = 0; arr && i < a->nalerts; i++) {
        alert_t *x = &a->alerts[i];
        const fd_alert_rule_t *r = &a->conf->alert_rules[x->rule];
        if (!(r->sinks & FD_ALERT_OUT_BIT(FD_ALERT_OUT_ALERTMANAGER)))
            continue;
        if (!(x->st.state == FD_AS_FIRING ||
              (x->st.state == FD_AS_RESOLVED && now - x->updated_ms < RESOLVED_RESEND_MS)))
            continue;
        char tid[80];
        snprintf(tid, sizeof tid, "%s-resend", x->fp);
        char *s = transition_json(a, x, (int)x->st.state, x->st.last_eval, tid);
        cJSON *t = s ? cJSON_Parse(s) : NULL;
        free(s);
        if (t) {
            cJSON_AddItemToArray(arr, t);
            n++;
        }
    }
    if (n > 0)
        a->resend = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
}

static void work_cb(uv_work_t *w)
{
    fd_alerts_t *a = w->data;
    const fd_conf_t *c = a->conf;
    int64_t t0 = fd_clock_wall_ms(), m0 = fd_clock_mono_ms();
    int64_t budget = c->alert_eval_interval_ms > 1000 ? c->alert_eval_interval_ms : 1000;
    a->errmsg[0] = '\0';
    if (a->in_release) {
        /* persist the delivery cursors, then hand the lease over at once */
        if (a->leader && connect_redis(a) == 0 && commit(a, 0) == 0)
            eval_lease(a, LUA_RELEASE);
        a->leader = 0;
        return;
    }
    if (connect_redis(a) < 0)
        goto error;
    int held = eval_lease(a, FD_LUA_LEASE);
    if (held < 0)
        goto error;
    if (held == 0) {
        if (a->leader) {
            lose_lease(a);
        }
        return;
    }
    if (!a->leader) {
        if (load_state(a) < 0)
            goto error;
        a->leader = 1;
        a->res_gained = 1;
        a->last_resend_ms = INT64_MIN / 2; /* re-send at once */
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
            a->in_acked[o][0] = '\0'; /* the loop's queues start over */
            a->in_rewind[o] = 0;
        }
    }
    int64_t to = eval_to(a, t0);
    if (!a->rc)
        goto error;
    if (to != INT64_MIN && c->nalert_rules > 0) {
        if (load_scopes(a, t0) < 0)
            goto error;
        int64_t next = a->cursor_s ? a->cursor_s + STEP_S
                                   : fd_floor_div(to - c->alert_max_catchup_s, STEP_S) * STEP_S + STEP_S;
        if (next > to && !a->cursor_s)
            next = to;
        while (next <= to) {
            if (fd_clock_mono_ms() - m0 > budget) {
                a->res_behind = 1;
                break;
            }
            int n = (int)((to - next) / STEP_S + 1);
            if (n > BATCH_STEPS)
                n = BATCH_STEPS;
            int rc = run_batch(a, next, n);
            if (rc == -2) {
                lose_lease(a);
                return;
            }
            if (rc < 0)
                goto error;
            for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
                a->in_acked[o][0] = '\0'; /* persisted with the first batch */
            next += (int64_t)n * STEP_S;
            if (eval_lease(a, FD_LUA_LEASE) != 1) {
                lose_lease(a);
                return;
            }
        }
    }
    /* delivery cursors that moved while there was nothing to evaluate */
    int moved = 0;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
        moved |= a->in_acked[o][0] && strcmp(a->in_acked[o], a->persisted[o]) != 0;
    if (moved) {
        int rc = commit(a, 0);
        if (rc == -2) {
            lose_lease(a);
            return;
        }
        if (rc < 0)
            goto error;
    }
    read_stream(a);
    build_resend(a, t0, m0);
    if (!a->rc)
        goto error;
    return;
error:
    a->res_error = 1;
}

/* ---- loop side ------------------------------------------------------------------------ */

static void q_reset(outq_t *q, const char *acked)
{
    q->head = q->n = 0;
    q->gen++;
    q->rewind = 0;
    if (acked != q->acked_id)
        snprintf(q->acked_id, sizeof q->acked_id, "%s", acked ? acked : "");
}

static void q_pop_acked(outq_t *q)
{
    while (q->n > 0 && q->v[q->head].acked) {
        snprintf(q->acked_id, sizeof q->acked_id, "%s", q->v[q->head].sid);
        q->head++;
        q->n--;
        q->seq_head++;
    }
    if (q->n == 0)
        q->head = 0;
}

static int q_push(outq_t *q, const char *sid, int acked, uint64_t *seq)
{
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->n * sizeof *q->v);
            q->head = 0;
        } else {
            size_t nc = q->cap ? q->cap * 2 : 64;
            qent_t *v = realloc(q->v, nc * sizeof *v);
            if (!v)
                return -1;
            q->v = v;
            q->cap = nc;
        }
    }
    qent_t *e = &q->v[q->head + q->n];
    snprintf(e->sid, sizeof e->sid, "%s", sid);
    e->acked = acked;
    *seq = q->seq_head + q->n;
    q->n++;
    return 0;
}

static void on_ack(void *ud, int out, uint64_t tag)
{
    fd_alerts_t *a = ud;
    if (out < 0 || out >= FD_ALERT_OUT__COUNT)
        return;
    outq_t *q = &a->q[out];
    if ((uint32_t)(tag >> 40) != (q->gen & 0xFFFFFF))
        return; /* from before a reset */
    uint64_t seq = tag & ((1ULL << 40) - 1);
    if (seq < q->seq_head || seq - q->seq_head >= q->n)
        return;
    q->v[q->head + (seq - q->seq_head)].acked = 1;
    q_pop_acked(q);
}

static void tick(uv_timer_t *t);

static void after_work(uv_work_t *w, int status)
{
    fd_alerts_t *a = w->data;
    a->work_running = 0;
    if (a->closing) {
        for (size_t i = 0; i < a->nentries; i++)
            free(a->entries[i].json);
        free(a->entries);
        free(a->resend);
        drop_cache(a);
        free(a->alerts);
        free_scopes(a);
        free(a->trans);
        disconnect(a);
        if (a->timer_closed)
            free(a);
        return;
    }
    a->st.leader = a->leader;
    a->st.cursor_s = a->cursor_s;
    a->st.evaluations += a->res_evals;
    a->st.transitions += a->res_trans;
    a->res_evals = a->res_trans = 0;
    if (a->res_error) {
        a->st.errors++;
        fd_log(a->log, FD_LOG_WARN, "alert evaluation failed", "error=\"%s\"", a->errmsg);
    }
    if (a->res_gained)
        fd_log(a->log, FD_LOG_INFO, "alert lease acquired", "cursor=%" PRId64 " alerts=%zu",
               a->cursor_s, a->nalerts);
    if (a->res_lost)
        fd_log(a->log, FD_LOG_INFO, "alert lease lost", NULL);
    if (a->res_gained || a->res_lost) {
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            q_reset(&a->q[o], a->res_gained ? a->persisted[o] : "");
        if (a->out)
            fd_alert_out_reset(a->out);
    }
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
        if (a->in_rewind[o]) {
            q_reset(&a->q[o], a->q[o].acked_id);
            a->in_rewind[o] = 0;
        }
    for (size_t i = 0; i < a->nentries; i++) {
        entry_t *e = &a->entries[i];
        outq_t *q = &a->q[e->out];
        uint64_t seq;
        if (!q->rewind && q_push(q, e->sid, !e->deliver, &seq) == 0 && e->deliver) {
            uint64_t tag = ((uint64_t)(q->gen & 0xFFFFFF) << 40) | seq;
            int rc = fd_alert_out_send(a->out, e->out, e->json, e->fp, tag);
            if (rc < 0) {
                fd_log(a->log, FD_LOG_WARN, "alert output refused an entry; re-reading",
                       "output=%s error=%d", fd_alert_out_name(e->out), rc);
                q->rewind = 1;
            }
        } else if (!q->rewind && e->deliver) {
            q->rewind = 1;
        }
        free(e->json);
    }
    a->nentries = 0;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
        q_pop_acked(&a->q[o]);
    if (a->resend) {
        fd_alert_out_resend(a->out, a->resend);
        free(a->resend);
        a->resend = NULL;
    }
    int behind = a->res_behind;
    a->res_gained = a->res_lost = a->res_behind = a->res_error = 0;
    if (behind)
        uv_timer_start(&a->timer, tick, 0, (uint64_t)a->conf->alert_eval_interval_ms);
}

static void tick(uv_timer_t *t)
{
    fd_alerts_t *a = t->data;
    if (a->work_running || a->closing)
        return;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
        outq_t *q = &a->q[o];
        snprintf(a->in_acked[o], sizeof a->in_acked[o], "%s", q->acked_id);
        a->in_rewind[o] = q->rewind;
        size_t room = a->out && fd_alert_out_enabled(a->out, o) && !q->rewind
                          ? (size_t)a->conf->alert_queue_size
                          : 0;
        a->in_room[o] = q->n >= room ? 0 : room - q->n;
        if (q->rewind)
            a->in_room[o] = (size_t)a->conf->alert_queue_size;
    }
    a->work.data = a;
    if (uv_queue_work(a->loop, &a->work, work_cb, after_work) == 0)
        a->work_running = 1;
}

fd_alerts_t *fd_alerts_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log, const char *id,
                           char *err, size_t errlen)
{
    fd_alerts_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->loop = loop;
    a->conf = c;
    a->log = log;
    snprintf(a->id, sizeof a->id, "%s", id);
    fd_key_lease(a->k_lease, sizeof a->k_lease, c->prefix, "alerts");
    /* The floor keeps a busy holder (a catch-up round of ~1 s plus Redis
     * latency on a loaded machine) from losing the lease between renewals
     * when eval_interval_ms is short; a dead holder is replaced within it. */
    a->lease_ttl_ms = 3 * c->alert_eval_interval_ms;
    if (a->lease_ttl_ms < 10000)
        a->lease_ttl_ms = 10000;
    a->out = fd_alert_out_new(loop, c, log, on_ack, a, err, errlen);
    if (!a->out) {
        free(a);
        return NULL;
    }
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    a->work.data = a;
    uv_timer_start(&a->timer, tick, 10, (uint64_t)c->alert_eval_interval_ms);
    fd_log(log, FD_LOG_INFO, "alert evaluator started",
           "rules=%d eval_interval_ms=%" PRId64 " outputs=%s%s%s%s", c->nalert_rules,
           c->alert_eval_interval_ms, fd_alert_out_enabled(a->out, FD_ALERT_OUT_STDOUT) ? "stdout," : "",
           fd_alert_out_enabled(a->out, FD_ALERT_OUT_KAFKA) ? "kafka," : "",
           fd_alert_out_enabled(a->out, FD_ALERT_OUT_ALERTMANAGER) ? "alertmanager," : "",
           fd_alert_out_enabled(a->out, FD_ALERT_OUT_WEBHOOK) ? "webhook" : "");
    return a;
}

static void on_timer_close(uv_handle_t *h)
{
    fd_alerts_t *a = h->data;
    a->timer_closed = 1;
    if (!a->work_running) {
        drop_cache(a);
        free(a->alerts);
        free_scopes(a);
        free(a->trans);
        free(a->entries);
        free(a->resend);
        disconnect(a);
        free(a);
    }
}

void fd_alerts_free(fd_alerts_t *a)
{
    if (!a)
        return;
    if (!a->work_running && a->leader) {
        /* hand the lease over at once instead of letting it expire */
        a->in_release = 1;
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            snprintf(a->in_acked[o], sizeof a->in_acked[o], "%s", a->q[o].acked_id);
        work_cb(&a->work);
    }
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
        free(a->q[o].v);
    a->closing = 1;
    fd_alert_out_free(a->out);
    a->out = NULL;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, on_timer_close);
}

void fd_alerts_stats(const fd_alerts_t *a, fd_alerts_stats_t *st) { *st = a->st; }

void fd_alerts_out_stats(const fd_alerts_t *a, fd_alert_out_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (a->out)
        fd_alert_out_stats(a->out, st);
}
