/*
 * store.c — the alert evaluator's Redis side (worker thread only).
 *
 * One blocking hiredis connection (fd_redis_connect_sync: AUTH, SELECT,
 * timeouts), opened lazily and dropped on any error so the next round
 * starts clean. What it reads and writes, every key from
 * sinks/redis_keys.h:
 *   the lease {prefix}:lease:alerts (FD_LUA_LEASE, the snapshot writer's
 *   script; LUA_RELEASE hands it over on shutdown);
 *   on gaining the lease, the alert states ({prefix}:alert:index and the
 *   hashes), the cursor and the delivery cursors;
 *   the global watermark from {prefix}:wm / seen (fd_watermark_*, the rule
 *   the snapshot writer applies too);
 *   the scopes per rule from {prefix}:scopes;
 *   the window sums, pipelined, one LUA_READ per (step, rule);
 *   the commit: LUA_COMMIT writes the dirty states, the batch's transitions
 *   (stream and pub/sub), the cursor and the delivery cursors atomically,
 *   and only while this instance holds the lease;
 *   the stream, read back per output after its cursor.
 *
 * Invariant: nothing is written unless the lease is held (the commit script
 * checks it), so two instances never both commit a step.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/store.h"
#include "alerts/evaluator.h"
#include "sinks/redis_keys.h"
#include "sinks/redis_scripts.h"
#include "sinks/redis_sink.h"
#include "model/alert_rule.h"
#include "model/scope.h"
#include "model/window.h"
#include "base/clock.h"

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
    "local nq = tonumber(ARGV[i]); i = i + 1\n" FD_LUA_WINDOW_BUCKETS
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
 * nsent, (output, stream id)... — all or nothing, and only for the holder.
 * Redis does not roll a script back, so the script first checks everything
 * its writes could fail on and refuses the commit whole, before the first
 * write, with "REFUSED <cause>; nothing written": a command the ACL user may
 * not run (redis.acl_check_cmd, one key of each kind), the index that is not
 * a set or the stream that is not a stream (someone else's key), a stream
 * whose last id is the largest there is (XADD '*' could not add). Then the
 * writes, none of which can fail: DEL before HSET, SET and PUBLISH take any
 * key. */
static const char LUA_COMMIT[] =
    "local lease, me, prefix = ARGV[1], ARGV[2], ARGV[3]\n"
    "if redis.call('GET', lease) ~= me then return redis.error_reply('FENCED lease lost') end\n"
    FD_LUA_ACL_DENIED
    "local cursor, maxlen = ARGV[4], ARGV[5]\n"
    "local idx, stream = prefix .. ':alert:index', prefix .. ':alerts'\n"
    "local nst = tonumber(ARGV[6])\n"
    "local i, sets, dels = 7, 0, 0\n"
    "for _ = 1, nst do\n"
    "  local nf = tonumber(ARGV[i + 1])\n"
    "  if nf == 0 then dels = dels + 1 else sets = sets + 1 end\n"
    "  i = i + 2 + 2 * nf\n"
    "end\n"
    "local ntr = tonumber(ARGV[i])\n"
    "local nsent = tonumber(ARGV[i + 1 + 5 * ntr])\n"
    "local function refuse(why) return redis.error_reply('REFUSED ' .. why .. '; nothing written') "
    "end\n"
    "local may = {}\n"
    "if nst > 0 then may[#may + 1] = {'DEL', prefix .. ':alert:0'} end\n"
    "if sets > 0 then\n"
    "  may[#may + 1] = {'HSET', prefix .. ':alert:0', 'state', 'x'}\n"
    "  may[#may + 1] = {'SADD', idx, 'x'}\n"
    "end\n"
    "if dels > 0 then may[#may + 1] = {'SREM', idx, 'x'} end\n"
    "if ntr > 0 then\n"
    "  may[#may + 1] = {'XADD', stream, 'MAXLEN', '~', maxlen, '*', 'id', 'x'}\n"
    "  may[#may + 1] = {'PUBLISH', stream, 'x'}\n"
    "end\n"
    "if nsent > 0 then may[#may + 1] = {'SET', prefix .. ':alert:sent:x', 'x'} end\n"
    "if cursor ~= '' then may[#may + 1] = {'SET', prefix .. ':alert:cursor', cursor} end\n"
    "local denied = acl_denied(may)\n"
    "if denied then return refuse(denied) end\n"
    "local function kind(k, want)\n"
    "  local t = redis.call('TYPE', k)['ok']\n"
    "  if t ~= 'none' and t ~= want then return 'WRONGTYPE ' .. k .. ' holds a ' .. t .. ', not a "
    "' .. want end\n"
    "end\n"
    "local why = nst > 0 and kind(idx, 'set')\n"
    "if not why and ntr > 0 then why = kind(stream, 'stream') end\n"
    "if why then return refuse(why) end\n"
    "if ntr > 0 then\n"
    "  local top = '18446744073709551615-18446744073709551615'\n"
    "  if #redis.call('XRANGE', stream, top, top) > 0 then\n"
    "    return refuse('FULL ' .. stream .. ' holds the last possible stream id')\n"
    "  end\n"
    "end\n"
    "i = 7\n"
    "for _ = 1, nst do\n"
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
    "i = i + 1\n"
    "for _ = 1, ntr do\n"
    "  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'id', ARGV[i], 'fp', ARGV[i + 1],\n"
    "             'state', ARGV[i + 2], 'rule', ARGV[i + 3], 'json', ARGV[i + 4])\n"
    "  redis.call('PUBLISH', stream, ARGV[i + 4])\n"
    "  i = i + 5\n"
    "end\n"
    "i = i + 1\n"
    "for _ = 1, nsent do\n"
    "  redis.call('SET', prefix .. ':alert:sent:' .. ARGV[i], ARGV[i + 1]); i = i + 2\n"
    "end\n"
    "if cursor ~= '' then redis.call('SET', prefix .. ':alert:cursor', cursor) end\n"
    "return 'OK'\n";

void fd_alert_store_set_err(fd_alerts_t *a, const char *what, const redisReply *r) {
    if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(a->errmsg, sizeof a->errmsg, "%s: %.200s", what, r->str);
    else if (a->rc && a->rc->err)
        snprintf(a->errmsg, sizeof a->errmsg, "%s: %.200s", what, a->rc->errstr);
    else snprintf(a->errmsg, sizeof a->errmsg, "%s: unexpected reply", what);
}

void fd_alert_store_disconnect(fd_alerts_t *a) {
    if (a->rc) redisFree(a->rc);
    a->rc = NULL;
}

/* Runs a command; on a transport error drops the connection. The caller
 * frees the reply. */
static redisReply *cmd_argv(fd_alerts_t *a, int argc, const char **argv, const size_t *lens) {
    if (!a->rc) return NULL;
    redisReply *r = redisCommandArgv(a->rc, argc, argv, lens);
    if (!r) {
        fd_alert_store_set_err(a, "redis", NULL);
        fd_alert_store_disconnect(a);
    }
    return r;
}

static redisReply *cmd_strs(fd_alerts_t *a, int argc, const char **argv) {
    size_t lens[16];
    for (int i = 0; i < argc && i < 16; i++) lens[i] = strlen(argv[i]);
    return cmd_argv(a, argc, argv, lens);
}

/* cmd_strs keeping only a reply of the expected type: anything else is
 * recorded as the error of `what` and freed, and NULL is returned. */
static redisReply *cmd_want(fd_alerts_t *a, int type, const char *what, int argc, const char **argv) {
    redisReply *r = cmd_strs(a, argc, argv);
    if (r && r->type == type) return r;
    fd_alert_store_set_err(a, what, r);
    if (r) freeReplyObject(r);
    return NULL;
}

int fd_alert_store_connect(fd_alerts_t *a) {
    if (a->rc) return 0;
    char err[256];
    a->rc = fd_redis_connect_sync(a->conf, a->conf->redis_timeout_ms, err, sizeof err);
    if (!a->rc) {
        snprintf(a->errmsg, sizeof a->errmsg, "%s", err);
        return -1;
    }
    return 0;
}

static int eval_lease(fd_alerts_t *a, const char *script) {
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, a->lease_ttl_ms);
    const char *argv[] = {"EVAL", script, "0", a->k_lease, a->id, ttl};
    redisReply *r = cmd_want(a, REDIS_REPLY_INTEGER, "alerts lease", 6, argv);
    if (!r) return -1;
    int v = (int)r->integer;
    freeReplyObject(r);
    return v;
}

static const char *hget(const redisReply *h, const char *f) {
    for (size_t i = 0; h && i + 1 < h->elements; i += 2)
        if (h->element[i]->str && strcmp(h->element[i]->str, f) == 0) return h->element[i + 1]->str;
    return NULL;
}

static int64_t hget_i(const redisReply *h, const char *f) {
    const char *v = hget(h, f);
    return v ? strtoll(v, NULL, 10) : 0;
}

static void get_string(fd_alerts_t *a, const char *key, char *out, size_t cap) {
    const char *argv[] = {"GET", key};
    redisReply *r = cmd_strs(a, 2, argv);
    out[0] = '\0';
    if (r && r->type == REDIS_REPLY_STRING) snprintf(out, cap, "%s", r->str);
    if (r) freeReplyObject(r);
}

/* The alert states and the cursor from Redis, into a fresh cache. */
static int load_alerts(fd_alerts_t *a) {
    const fd_conf_t *c = a->conf;
    char key[512], buf[64];
    fd_alert_cache_drop(a);
    fd_key_alert_index(key, sizeof key, c->prefix);
    const char *sm[] = {"SMEMBERS", key};
    redisReply *idx = cmd_want(a, REDIS_REPLY_ARRAY, "load alert index", 2, sm);
    if (!idx) return -1;
    for (size_t i = 0; i < idx->elements; i++) {
        const char *fp = idx->element[i]->str;
        if (!fp || strlen(fp) != 16) continue;
        fd_key_alert(key, sizeof key, c->prefix, fp);
        const char *hg[] = {"HGETALL", key};
        redisReply *h = cmd_want(a, REDIS_REPLY_ARRAY, "load alert", 2, hg);
        if (!h) {
            freeReplyObject(idx);
            return -1;
        }
        const char *rule = hget(h, "rule"), *scope = hget(h, "scope"), *state = hget(h, "state");
        int ri = rule ? fd_alert_rule_index(c, rule) : -1;
        int si = state ? fd_alert_state_from_name(state) : -1;
        if (ri >= 0 && scope && si > 0) { /* rules no longer configured stay untouched */
            alert_t *x = fd_alert_cache_add(a, fp, ri, scope);
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
    return a->rc ? 0 : -1;
}

/* After a failed commit: the states and the cursor again, as committed. */
int fd_alert_store_reload(fd_alerts_t *a) {
    if (load_alerts(a) < 0) return -1;
    a->stale = 0;
    return 0;
}

/* On gaining the lease: states, cursor and delivery cursors from Redis. */
int fd_alert_store_load_state(fd_alerts_t *a) {
    const fd_conf_t *c = a->conf;
    char key[512];
    if (fd_alert_store_reload(a) < 0) return -1;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
        fd_key_alert_sent(key, sizeof key, c->prefix, fd_alert_out_name(o));
        get_string(a, key, a->persisted[o], sizeof a->persisted[o]);
        snprintf(a->read_id[o], sizeof a->read_id[o], "%s",
                 a->persisted[o][0] ? a->persisted[o] : "0-0");
    }
    if (!a->rc) return -1;
    return 0;
}

/* The last step the global watermark has passed, or INT64_MIN if unknown. */
int64_t fd_alert_store_eval_to(fd_alerts_t *a, int64_t now) {
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
        fd_alert_store_set_err(a, "read watermark", wm ? seen : wm);
    }
    if (wm) freeReplyObject(wm);
    if (seen) freeReplyObject(seen);
    int64_t w;
    if (fd_watermark_global(&g, c->lateness_s * 1000, &w) != 0) return INT64_MIN;
    return fd_bucket_m1(w);
}

/* Scope lists per rule: every scope of the rule's grouping updated within
 * the m1 TTL, plus the scopes of the rule's cached alerts (so that an alert
 * whose scope went quiet still resolves). */
int fd_alert_store_load_scopes(fd_alerts_t *a, int64_t now) {
    const fd_conf_t *c = a->conf;
    fd_alert_scopes_free(a);
    char key[512], min[32];
    fd_key_scopes(key, sizeof key, c->prefix);
    snprintf(min, sizeof min, "%" PRId64, now / 1000 - c->ttl_m1_s);
    const char *argv[] = {"ZRANGEBYSCORE", key, min, "+inf"};
    redisReply *r = cmd_want(a, REDIS_REPLY_ARRAY, "read scopes", 4, argv);
    if (!r) return -1;
    size_t caps[FD_ALERT_MAX_RULES] = {0};
    char vals[FD_DIM__COUNT][256];
    for (size_t i = 0; i < r->elements; i++) {
        unsigned set;
        const char *id = r->element[i]->str;
        if (!id || fd_scope_parse(id, &set, vals) != 0) continue;
        for (int ri = 0; ri < c->nalert_rules; ri++)
            if (fd_grouping_mask(&c->alert_rules[ri].grouping) == set &&
                fd_alert_scopes_push(a, ri, id, &caps[ri]))
                goto oom;
    }
    freeReplyObject(r);
    for (size_t i = 0; i < a->nalerts; i++) {
        alert_t *x = &a->alerts[i];
        int found = 0;
        for (size_t j = 0; j < a->nscopes[x->rule] && !found; j++)
            found = strcmp(a->scopes[x->rule][j].scope, x->scope) == 0;
        if (!found && fd_alert_scopes_push(a, x->rule, x->scope, &caps[x->rule])) return -1;
    }
    return 0;
oom:
    freeReplyObject(r);
    snprintf(a->errmsg, sizeof a->errmsg, "out of memory");
    return -1;
}

int fd_alert_store_append_read(fd_alerts_t *a, int ri, int64_t t) {
    const fd_alert_rule_t *r = &a->conf->alert_rules[ri];
    size_t ns = a->nscopes[ri];
    query_t q[4];
    int nq = fd_alert_rule_queries(r, t, q);
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
    for (size_t i = 0; i < ns; i++) argv[k++] = a->scopes[ri][i].scope;
    snprintf(nums[nn], 24, "%d", nq);
    argv[k++] = nums[nn++];
    for (int i = 0; i < nq; i++) {
        snprintf(nums[nn], 24, "%" PRId64, q[i].from);
        argv[k++] = nums[nn++];
        snprintf(nums[nn], 24, "%" PRId64, q[i].to);
        argv[k++] = nums[nn++];
        argv[k++] = q[i].series;
    }
    for (size_t i = 0; i < k; i++) lens[i] = strlen(argv[i]);
    int rc = redisAppendCommandArgv(a->rc, (int)k, argv, lens) == REDIS_OK ? 0 : -1;
    free(argv);
    free(lens);
    return rc;
}

/* One commit: dirty states, the batch's transitions, cursor, delivery
 * cursors. Returns 0, FD_ALERTS_EFAILED, or FD_ALERTS_EFENCED (lease lost). */
int fd_alert_store_commit(fd_alerts_t *a, int64_t cursor) {
    const fd_conf_t *c = a->conf;
    size_t ndirty = 0;
    for (size_t i = 0; i < a->nalerts; i++) ndirty += a->alerts[i].dirty;
    int nsent = 0;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
        nsent += a->in_acked[o][0] && strcmp(a->in_acked[o], a->persisted[o]) != 0;
    size_t cap = 16 + ndirty * 40 + a->ntrans * 5 + (size_t)nsent * 2;
    const char **argv = malloc(cap * sizeof *argv);
    size_t *lens = malloc(cap * sizeof *lens);
    char (*nums)[32] = malloc((16 + ndirty * 16) * sizeof *nums);
    int rc = FD_ALERTS_EFAILED;
    if (!argv || !lens || !nums) goto out;
    size_t k = 0, nn = 0;
#define NUM(...) (snprintf(nums[nn], 32, __VA_ARGS__), argv[k++] = nums[nn++])
#define STRA(s) (argv[k++] = (s))
    STRA("EVAL");
    STRA(LUA_COMMIT);
    STRA("0");
    STRA(a->k_lease);
    STRA(a->id);
    STRA(c->prefix);
    if (cursor > 0) NUM("%" PRId64, cursor);
    else STRA("");
    NUM("%" PRId64, c->alert_stream_maxlen);
    NUM("%zu", ndirty);
    for (size_t i = 0; i < a->nalerts; i++) {
        alert_t *x = &a->alerts[i];
        if (!x->dirty) continue;
        STRA(x->fp);
        if (x->dead) {
            STRA("0");
            continue;
        }
        STRA("15");
        STRA("rule");
        STRA(c->alert_rules[x->rule].name);
        STRA("scope");
        STRA(x->scope);
        STRA("state");
        STRA(fd_alert_state_name(x->st.state));
        STRA("active_since");
        NUM("%" PRId64, x->st.active_since);
        STRA("fired_at");
        NUM("%" PRId64, x->st.fired_at);
        STRA("keep_since");
        NUM("%" PRId64, x->st.keep_since);
        STRA("resolved_at");
        NUM("%" PRId64, x->st.resolved_at);
        STRA("last_eval");
        NUM("%" PRId64, x->st.last_eval);
        STRA("value");
        NUM("%.6g", x->last.value);
        STRA("baseline");
        NUM("%.6g", x->last.baseline);
        STRA("z");
        NUM("%.4f", x->last.z);
        STRA("samples");
        NUM("%" PRId64, x->samples);
        STRA("updated_at");
        NUM("%" PRId64, x->updated_ms);
        STRA("fingerprint");
        STRA(x->fp);
        STRA("kind");
        STRA(fd_alert_kind_name(c->alert_rules[x->rule].kind));
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
    for (size_t i = 0; i < k; i++) lens[i] = strlen(argv[i]);
    redisReply *r = cmd_argv(a, (int)k, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "FENCED ", 7) == 0) {
        rc = FD_ALERTS_EFENCED;
    } else if (r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING)) {
        rc = 0;
        for (size_t i = 0; i < a->nalerts; i++) a->alerts[i].dirty = 0;
        fd_alert_cache_compact(a);
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            if (a->in_acked[o][0])
                snprintf(a->persisted[o], sizeof a->persisted[o], "%s", a->in_acked[o]);
        a->res_trans += a->ntrans;
        if (cursor > 0) a->cursor_s = cursor;
    } else {
        /* Refused (REFUSED ...: nothing written) or no answer: the cache
         * holds the batch's states but Redis does not (or may not), and
         * the batch's transitions are gone with it. The next round reloads
         * the states and the cursor and evaluates the same steps again, so
         * each transition is still committed once, with its state. */
        fd_alert_store_set_err(a, "alerts commit", r);
        fd_alert_cache_drop(a);
        a->stale = 1;
    }
    if (r) freeReplyObject(r);
out:
    free(argv);
    free(lens);
    free(nums);
    fd_alert_trans_free(a);
    return rc;
}

static int push_entry(fd_alerts_t *a, int out, int deliver, const char *sid, const char *fp,
                      const char *json) {
    entry_t *v = fd_alert_grow(a->entries, a->nentries, &a->capentries, sizeof *v, 32);
    if (!v) return -1;
    a->entries = v;
    entry_t *e = &a->entries[a->nentries];
    e->out = out;
    e->deliver = deliver;
    snprintf(e->sid, sizeof e->sid, "%s", sid);
    snprintf(e->fp, sizeof e->fp, "%s", fp ? fp : "");
    e->json = deliver && json ? strdup(json) : NULL;
    if (deliver && !e->json) return -1;
    a->nentries++;
    return 0;
}

/* New stream entries for each enabled output, as far as it has room. */
void fd_alert_store_read_stream(fd_alerts_t *a) {
    const fd_conf_t *c = a->conf;
    char key[512], start[40], count[24];
    fd_key_alert_stream(key, sizeof key, c->prefix);
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
        if (!a->in_room[o]) continue;
        if (a->in_rewind[o])
            snprintf(a->read_id[o], sizeof a->read_id[o], "%s",
                     a->in_acked[o][0]    ? a->in_acked[o]
                     : a->persisted[o][0] ? a->persisted[o]
                                          : "0-0");
        snprintf(start, sizeof start, "(%s", a->read_id[o]);
        snprintf(count, sizeof count, "%zu", a->in_room[o]);
        const char *argv[] = {"XRANGE", key, start, "+", "COUNT", count};
        redisReply *r = cmd_want(a, REDIS_REPLY_ARRAY, "read alert stream", 6, argv);
        if (!r) return;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
            const char *sid = e->element[0]->str;
            const redisReply *f = e->element[1];
            const char *state = hget(f, "state"), *rule = hget(f, "rule");
            int ri = rule ? fd_alert_rule_index(c, rule) : -1;
            unsigned mask = ri >= 0 ? c->alert_rules[ri].sinks : FD_ALERT_OUT_ALL;
            int deliver = state && (strcmp(state, "firing") == 0 || strcmp(state, "resolved") == 0) &&
                          (mask & (1u << o));
            if (push_entry(a, o, deliver, sid, hget(f, "fp"), hget(f, "json")) < 0) break;
            snprintf(a->read_id[o], sizeof a->read_id[o], "%s", sid);
        }
        freeReplyObject(r);
    }
}

/* Takes or renews the alert lease: 1 held, 0 held by another instance, -1 error. */
int fd_alert_store_lease(fd_alerts_t *a) { return eval_lease(a, FD_LUA_LEASE); }

/* Hands the lease over at once (only if this instance holds it). */
int fd_alert_store_release(fd_alerts_t *a) { return eval_lease(a, LUA_RELEASE); }

/* The next reply of a pipelined command; NULL (disconnected, errmsg set) on failure. */
redisReply *fd_alert_store_next_reply(fd_alerts_t *a, const char *what) {
    redisReply *rep = NULL;
    if (redisGetReply(a->rc, (void **)&rep) != REDIS_OK) {
        fd_alert_store_set_err(a, what, NULL);
        fd_alert_store_disconnect(a);
        return NULL;
    }
    return rep;
}
