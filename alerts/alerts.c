/*
 * alerts.c — the alert evaluator's loop side (see alerts.h for the whole
 * story): the timer, the outputs (outputs.c) and the delivery queues; a
 * round runs on the worker (evaluator.c, store.c).
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

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/alerts_int.h"
#include "alerts/evaluator.h"
#include "alerts/outputs.h"
#include "alerts/store.h"
#include "sinks/redis_keys.h"
#include "base/clock.h"

static void q_reset(outq_t *q, const char *acked) {
    q->head = q->n = 0;
    q->gen++;
    q->rewind = 0;
    if (acked != q->acked_id) snprintf(q->acked_id, sizeof q->acked_id, "%s", acked ? acked : "");
}

static void q_pop_acked(outq_t *q) {
    while (q->n > 0 && q->v[q->head].acked) {
        snprintf(q->acked_id, sizeof q->acked_id, "%s", q->v[q->head].sid);
        q->head++;
        q->n--;
        q->seq_head++;
    }
    if (q->n == 0) q->head = 0;
}

static int q_push(outq_t *q, const char *sid, int acked, uint64_t *seq) {
    if (q->head + q->n == q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, q->n * sizeof *q->v);
            q->head = 0;
        } else {
            size_t nc = q->cap ? q->cap * 2 : 64;
            qent_t *v = realloc(q->v, nc * sizeof *v);
            if (!v) return -1;
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

static void on_ack(void *ud, int out, uint64_t tag) {
    fd_alerts_t *a = ud;
    if (out < 0 || out >= FD_ALERT_OUT__COUNT) return;
    outq_t *q = &a->q[out];
    if ((uint32_t)(tag >> 40) != (q->gen & 0xFFFFFF)) return; /* from before a reset */
    uint64_t seq = tag & ((1ULL << 40) - 1);
    if (seq < q->seq_head || seq - q->seq_head >= q->n) return;
    q->v[q->head + (seq - q->seq_head)].acked = 1;
    q_pop_acked(q);
}

static void tick(uv_timer_t *t);

/* Frees what the handle owns, leaving it safe to call again: a round that
 * finishes while the handle closes reaches both after_work and
 * on_timer_close, and whichever runs last frees the handle itself. */
static void release(fd_alerts_t *a) {
    for (size_t i = 0; i < a->nentries; i++) free(a->entries[i].json);
    free(a->entries);
    a->entries = NULL;
    a->nentries = 0;
    free(a->resend);
    a->resend = NULL;
    fd_alert_cache_drop(a);
    free(a->alerts);
    a->alerts = NULL;
    fd_alert_scopes_free(a);
    fd_alert_trans_free(a);
    free(a->trans);
    a->trans = NULL;
    fd_alert_store_disconnect(a);
}

static void after_work(uv_work_t *w, int status) {
    fd_alerts_t *a = w->data;
    a->work_running = 0;
    if (a->closing) {
        release(a);
        if (a->timer_closed) free(a);
        return;
    }
    a->st.leader = a->leader;
    a->st.cursor_s = a->cursor_s;
    a->st.evaluations += a->res_evals;
    a->st.transitions += a->res_trans;
    a->res_evals = a->res_trans = 0;
    if (a->res_error) {
        a->st.errors++;
        /* a refusal repeats every round until someone fixes the key */
        fd_log_repeat(a->log, FD_LOG_WARN, a->errmsg, "alert evaluation failed", "error=\"%s\"",
                      a->errmsg);
    }
    if (a->res_gained)
        fd_log(a->log, FD_LOG_INFO, "alert lease acquired", "cursor=%" PRId64 " alerts=%zu",
               a->cursor_s, a->nalerts);
    if (a->res_lost) fd_log(a->log, FD_LOG_INFO, "alert lease lost", NULL);
    if (a->res_gained || a->res_lost) {
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            q_reset(&a->q[o], a->res_gained ? a->persisted[o] : "");
        if (a->out) fd_alert_out_reset(a->out);
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
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) q_pop_acked(&a->q[o]);
    if (a->resend) {
        fd_alert_out_resend(a->out, a->resend);
        free(a->resend);
        a->resend = NULL;
    }
    int behind = a->res_behind;
    a->res_gained = a->res_lost = a->res_behind = a->res_error = 0;
    if (behind) uv_timer_start(&a->timer, tick, 0, (uint64_t)a->conf->alert_eval_interval_ms);
}

static void tick(uv_timer_t *t) {
    fd_alerts_t *a = t->data;
    if (a->work_running || a->closing) return;
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) {
        outq_t *q = &a->q[o];
        snprintf(a->in_acked[o], sizeof a->in_acked[o], "%s", q->acked_id);
        a->in_rewind[o] = q->rewind;
        size_t room = a->out && fd_alert_out_enabled(a->out, o) && !q->rewind
                          ? (size_t)a->conf->alert_queue_size
                          : 0;
        a->in_room[o] = q->n >= room ? 0 : room - q->n;
        if (q->rewind) a->in_room[o] = (size_t)a->conf->alert_queue_size;
    }
    a->work.data = a;
    if (uv_queue_work(a->loop, &a->work, fd_alert_eval_round, after_work) == 0) a->work_running = 1;
}

fd_alerts_t *fd_alerts_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log, const char *id,
                           char *err, size_t errlen) {
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
    if (a->lease_ttl_ms < 10000) a->lease_ttl_ms = 10000;
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
           c->alert_eval_interval_ms,
           fd_alert_out_enabled(a->out, FD_ALERT_OUT_STDOUT) ? "stdout," : "",
           fd_alert_out_enabled(a->out, FD_ALERT_OUT_KAFKA) ? "kafka," : "",
           fd_alert_out_enabled(a->out, FD_ALERT_OUT_ALERTMANAGER) ? "alertmanager," : "",
           fd_alert_out_enabled(a->out, FD_ALERT_OUT_WEBHOOK) ? "webhook" : "");
    return a;
}

static void on_timer_close(uv_handle_t *h) {
    fd_alerts_t *a = h->data;
    a->timer_closed = 1;
    if (!a->work_running) {
        release(a);
        free(a);
    }
}

void fd_alerts_free(fd_alerts_t *a) {
    if (!a) return;
    if (!a->work_running && a->leader) {
        /* hand the lease over at once instead of letting it expire */
        a->in_release = 1;
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            snprintf(a->in_acked[o], sizeof a->in_acked[o], "%s", a->q[o].acked_id);
        fd_alert_eval_round(&a->work);
    }
    for (int o = 0; o < FD_ALERT_OUT__COUNT; o++) free(a->q[o].v);
    a->closing = 1;
    fd_alert_out_free(a->out);
    a->out = NULL;
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, on_timer_close);
}

void fd_alerts_stats(const fd_alerts_t *a, fd_alerts_stats_t *st) { *st = a->st; }

void fd_alerts_out_stats(const fd_alerts_t *a, fd_alert_out_stats_t *st) {
    memset(st, 0, sizeof *st);
    if (a->out) fd_alert_out_stats(a->out, st);
}
