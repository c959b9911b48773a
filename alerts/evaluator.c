/*
 * evaluator.c — one evaluation round and the alert cache (worker thread).
 *
 * A round (fd_alert_eval_round, queued by alerts.c once per
 * alerts.eval_interval_ms): take or renew the lease; on gaining it, load
 * the states; find the last step the watermark has passed; then evaluate
 * every step after the cursor, BATCH_STEPS at a time: the queries of each
 * rule (current window, baseline) for each of its scopes are read in one
 * pipeline, each alert's state machine (model/alert_rule.c) is stepped, a
 * transition becomes JSON, and the batch is committed with its transitions
 * (store.c). A round stops early when its budget (the eval interval, at
 * least 1 s, monotonic) is spent and says it is behind. Then the stream is
 * read for delivery and the Alertmanager re-send is built.
 *
 * The cache holds one record per non-inactive alert, keyed by fingerprint;
 * it is the truth only while the lease is held: a lost lease, a fenced
 * commit or a half-applied batch drops it, and it is reloaded from Redis
 * when the lease is gained again. This file sends no Redis command itself.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/evaluator.h"
#include "alerts/store.h"
#include "model/alert_rule.h"
#include "model/scope.h"
#include "model/window.h"
#include "base/clock.h"

/* Array v (n of *cap elements in use, each `size` bytes) with room for one
 * more: v itself while n < *cap, else v reallocated to twice *cap (`first`
 * when empty). NULL when out of memory, with v and *cap left as they were. */
void *fd_alert_grow(void *v, size_t n, size_t *cap, size_t size, size_t first) {
    if (n < *cap) return v;
    size_t nc = *cap ? *cap * 2 : first;
    void *p = realloc(v, nc * size);
    if (p) *cap = nc;
    return p;
}

static alert_t *find_alert(fd_alerts_t *a, const char *fp) {
    for (size_t i = 0; i < a->nalerts; i++)
        if (!a->alerts[i].dead && memcmp(a->alerts[i].fp, fp, 16) == 0) return &a->alerts[i];
    return NULL;
}

alert_t *fd_alert_cache_add(fd_alerts_t *a, const char *fp, int rule, const char *scope) {
    if (a->nalerts == a->capalerts) {
        size_t nc = a->capalerts ? a->capalerts * 2 : 64;
        alert_t *n = realloc(a->alerts, nc * sizeof *n);
        if (!n) return NULL;
        a->alerts = n;
        a->capalerts = nc;
    }
    alert_t *x = &a->alerts[a->nalerts];
    memset(x, 0, sizeof *x);
    x->scope = strdup(scope);
    if (!x->scope) return NULL;
    memcpy(x->fp, fp, 17);
    x->rule = rule;
    a->nalerts++;
    return x;
}

void fd_alert_cache_drop(fd_alerts_t *a) {
    for (size_t i = 0; i < a->nalerts; i++) free(a->alerts[i].scope);
    a->nalerts = 0;
}

/* This instance no longer holds the alert lease: forget the cached state
 * (the next holder owns it) and tell the loop thread. */
static void lose_lease(fd_alerts_t *a) {
    a->leader = 0;
    fd_alert_cache_drop(a);
    a->res_lost = 1;
}

/* Removes records that were deleted and committed. */
void fd_alert_cache_compact(fd_alerts_t *a) {
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

int fd_alert_rule_index(const fd_conf_t *c, const char *name) {
    for (int i = 0; i < c->nalert_rules; i++)
        if (strcmp(c->alert_rules[i].name, name) == 0) return i;
    return -1;
}

/* Labels of an alert: the rule's, then one per dimension of the scope. */
static int alert_labels(const fd_alert_rule_t *r, const char *scope, const char **keys,
                        const char **vals, char dvals[FD_DIM__COUNT][256]) {
    unsigned set;
    int n = 0;
    for (int i = 0; i < r->nlabels; i++) {
        keys[n] = r->labels[i].key;
        vals[n++] = r->labels[i].value;
    }
    if (fd_scope_parse(scope, &set, dvals) < 0) return n;
    for (int d = 0; d < FD_DIM__COUNT; d++)
        if (set & (1u << d)) {
            keys[n] = fd_dim_name((fd_dim_t)d);
            vals[n++] = dvals[d];
        }
    return n;
}

void fd_alert_scopes_free(fd_alerts_t *a) {
    for (int r = 0; r < FD_ALERT_MAX_RULES; r++) {
        for (size_t i = 0; i < a->nscopes[r]; i++) free(a->scopes[r][i].scope);
        free(a->scopes[r]);
        a->scopes[r] = NULL;
        a->nscopes[r] = 0;
    }
}

int fd_alert_scopes_push(fd_alerts_t *a, int r, const char *scope, size_t *cap) {
    if (a->nscopes[r] >= MAX_SCOPES_PER_RULE) return 0;
    if (a->nscopes[r] == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        rscope_t *n = realloc(a->scopes[r], nc * sizeof *n);
        if (!n) return -1;
        a->scopes[r] = n;
        *cap = nc;
    }
    rscope_t *x = &a->scopes[r][a->nscopes[r]];
    x->scope = strdup(scope);
    if (!x->scope) return -1;
    const char *keys[FD_ALERT_MAX_LABELS + FD_DIM__COUNT], *vals[FD_ALERT_MAX_LABELS + FD_DIM__COUNT];
    char dv[FD_DIM__COUNT][256];
    const fd_alert_rule_t *rule = &a->conf->alert_rules[r];
    int n = alert_labels(rule, scope, keys, vals, dv);
    fd_alert_fingerprint(rule->name, keys, vals, n, x->fp);
    a->nscopes[r]++;
    return 0;
}

/* The queries of rule r at step t (seconds); returns how many (<= 4). */
int fd_alert_rule_queries(const fd_alert_rule_t *r, int64_t t, query_t *q) {
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
    if (den) q[n++] = (query_t){from, t, den};
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
        if (den) q[n++] = (query_t){bfrom, bto, den};
    }
    return n;
}

static void fmt_double(double v, char *buf, size_t cap) {
    if (v != v) snprintf(buf, cap, "0");
    else snprintf(buf, cap, "%.6g", v);
}

/* The transition's JSON text (one line): what every output carries. */
static char *transition_json(fd_alerts_t *a, const alert_t *x, int prev, int64_t t_ms, char *tid) {
    const fd_alert_rule_t *r = &a->conf->alert_rules[x->rule];
    char num[64];
    const char *keys[FD_ALERT_MAX_LABELS + FD_DIM__COUNT], *vals[FD_ALERT_MAX_LABELS + FD_DIM__COUNT];
    char dv[FD_DIM__COUNT][256];
    int n = alert_labels(r, x->scope, keys, vals, dv);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
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
    for (int i = 0; i < n; i++) cJSON_AddStringToObject(l, keys[i], vals[i]);
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
    else cJSON_AddNullToObject(o, "ends_at");
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

static int add_transition(fd_alerts_t *a, alert_t *x, int prev, int64_t t_ms) {
    trans_t *v = fd_alert_grow(a->trans, a->ntrans, &a->captrans, sizeof *v, 16);
    if (!v) return -1;
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
    if (!tr->json) return -1;
    a->ntrans++;
    return 0;
}

void fd_alert_trans_free(fd_alerts_t *a) {
    for (size_t i = 0; i < a->ntrans; i++) free(a->trans[i].json);
    a->ntrans = 0;
}

/* Applies one rule's reply for step t. */
static int apply_reply(fd_alerts_t *a, int ri, int64_t t, const redisReply *rep) {
    const fd_alert_rule_t *r = &a->conf->alert_rules[ri];
    query_t q[4];
    int nq = fd_alert_rule_queries(r, t, q);
    size_t ns = a->nscopes[ri];
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != ns * (size_t)nq) {
        fd_alert_store_set_err(a, "read buckets", rep);
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
        if (!x && !ev.cond) continue;
        if (!x && !(x = fd_alert_cache_add(a, a->scopes[ri][i].fp, ri, a->scopes[ri][i].scope)))
            return -1;
        fd_alert_status_t b = x->st;
        int prev = (int)x->st.state;
        x->last = ev;
        x->samples = r->kind == FD_ALERT_ABSENT || rate ? in.den : in.base_num;
        a->res_evals++;
        int tr = fd_alert_step(&x->st, ev.cond, t_ms, r->for_s * 1000, r->keep_firing_for_s * 1000);
        if (b.state != x->st.state || b.active_since != x->st.active_since ||
            b.fired_at != x->st.fired_at || b.keep_since != x->st.keep_since ||
            b.resolved_at != x->st.resolved_at)
            x->dirty = 1;
        if (tr >= 0) {
            x->updated_ms = fd_clock_wall_ms();
            if (add_transition(a, x, prev, t_ms) < 0) return -1;
        }
        if (x->st.state == FD_AS_INACTIVE ||
            (x->st.state == FD_AS_RESOLVED && t_ms - x->st.resolved_at > RESOLVED_KEEP_MS)) {
            x->dead = 1;
            x->dirty = 1;
        }
    }
    return 0;
}

/* Evaluates steps (start, ...] up to n, pipelined; then commits. Returns 0,
 * FD_ALERTS_EFAILED or FD_ALERTS_EFENCED (fd_alert_store_commit). */
static int run_batch(fd_alerts_t *a, int64_t first, int nsteps) {
    const fd_conf_t *c = a->conf;
    int nr = c->nalert_rules;
    for (int s = 0; s < nsteps; s++)
        for (int ri = 0; ri < nr; ri++) {
            if (fd_alert_store_append_read(a, ri, first + (int64_t)s * STEP_S) < 0) {
                snprintf(a->errmsg, sizeof a->errmsg, "out of memory");
                fd_alert_store_disconnect(a); /* replies would be out of step */
                return FD_ALERTS_EFAILED;
            }
        }
    int rc = 0;
    for (int s = 0; s < nsteps; s++)
        for (int ri = 0; ri < nr; ri++) {
            redisReply *rep = fd_alert_store_next_reply(a, "read buckets");
            if (!rep) return FD_ALERTS_EFAILED;
            if (rc == 0 && apply_reply(a, ri, first + (int64_t)s * STEP_S, rep) < 0)
                rc = FD_ALERTS_EFAILED;
            freeReplyObject(rep);
        }
    if (rc < 0) {
        /* the cache may hold half a batch: reload it from Redis next time */
        fd_alert_trans_free(a);
        a->leader = 0;
        fd_alert_cache_drop(a);
        return FD_ALERTS_EFAILED;
    }
    return fd_alert_store_commit(a, first + (int64_t)(nsteps - 1) * STEP_S);
}

/* Alertmanager re-send: firing alerts and those resolved recently (their
 * updated_ms is wall time, shared through Redis; the interval is measured on
 * the monotonic clock). */
static void build_resend(fd_alerts_t *a, int64_t now, int64_t mono) {
    if (!a->conf->alert_am_url || !a->conf->alert_am_url[0]) return;
    if (mono - a->last_resend_ms < a->conf->alert_am_resend_ms) return;
    a->last_resend_ms = mono;
    cJSON *arr = cJSON_CreateArray();
    int n = 0;
    for (size_t i = 0; arr && i < a->nalerts; i++) {
        alert_t *x = &a->alerts[i];
        const fd_alert_rule_t *r = &a->conf->alert_rules[x->rule];
        if (!(r->sinks & FD_ALERT_OUT_BIT(FD_ALERT_OUT_ALERTMANAGER))) continue;
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
    if (n > 0) a->resend = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
}

void fd_alert_eval_round(uv_work_t *w) {
    fd_alerts_t *a = w->data;
    const fd_conf_t *c = a->conf;
    int64_t t0 = fd_clock_wall_ms(), m0 = fd_clock_mono_ms();
    int64_t budget = c->alert_eval_interval_ms > 1000 ? c->alert_eval_interval_ms : 1000;
    a->errmsg[0] = '\0';
    if (a->in_release) {
        /* persist the delivery cursors, then hand the lease over at once */
        if (a->leader && fd_alert_store_connect(a) == 0 && fd_alert_store_commit(a, 0) == 0)
            fd_alert_store_release(a);
        a->leader = 0;
        return;
    }
    if (fd_alert_store_connect(a) < 0) goto error;
    int held = fd_alert_store_lease(a);
    if (held < 0) goto error;
    if (held == 0) {
        if (a->leader) {
            lose_lease(a);
        }
        return;
    }
    if (!a->leader) {
        if (fd_alert_store_load_state(a) < 0) goto error;
        a->leader = 1;
        a->res_gained = 1;
        a->last_resend_ms = INT64_MIN / 2; /* re-send at once */
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
            a->in_acked[o][0] = '\0'; /* the loop's queues start over */
            a->in_rewind[o] = 0;
        }
    } else if (a->stale && fd_alert_store_reload(a) < 0) {
        goto error;
    }
    int64_t to = fd_alert_store_eval_to(a, t0);
    if (!a->rc) goto error;
    if (to != INT64_MIN && c->nalert_rules > 0) {
        if (fd_alert_store_load_scopes(a, t0) < 0) goto error;
        int64_t next = a->cursor_s
                           ? a->cursor_s + STEP_S
                           : fd_floor_div(to - c->alert_max_catchup_s, STEP_S) * STEP_S + STEP_S;
        if (next > to && !a->cursor_s) next = to;
        while (next <= to) {
            if (fd_clock_mono_ms() - m0 > budget) {
                a->res_behind = 1;
                break;
            }
            int n = (int)((to - next) / STEP_S + 1);
            if (n > BATCH_STEPS) n = BATCH_STEPS;
            int rc = run_batch(a, next, n);
            if (rc == FD_ALERTS_EFENCED) {
                lose_lease(a);
                return;
            }
            if (rc < 0) goto error;
            for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
                a->in_acked[o][0] = '\0'; /* persisted with the first batch */
            next += (int64_t)n * STEP_S;
            if (fd_alert_store_lease(a) != 1) {
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
        int rc = fd_alert_store_commit(a, 0);
        if (rc == FD_ALERTS_EFENCED) {
            lose_lease(a);
            return;
        }
        if (rc < 0) goto error;
    }
    fd_alert_store_read_stream(a);
    build_resend(a, t0, m0);
    if (!a->rc) goto error;
    return;
error:
    a->res_error = 1;
}
