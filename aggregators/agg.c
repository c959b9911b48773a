/*
 * agg.c — one valid event → deltas in a partition batch (see agg.h).
 *
 * Per event: the user id is interned in the batch once; the scope set gives
 * the admitted (interned) scope id of every grouping in one call
 * (fd_scopes_admit_event: an id already admitted is found from the raw
 * dimension values without being built; a new one is built, capped and
 * admitted); the batch gives the counters of each scope's buckets
 * (remembered per scope, so the events of one scope within one minute skip
 * those lookups) and each is updated — no key string is built on the hot
 * path. A scope id is at most 5 dimensions × (name + 3 × 128 code points ×
 * 4 bytes); one that would not fit is impossible after validation and is
 * refused with -E2BIG rather than cut.
 */
#include "aggregators/agg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/scope.h"
#include "model/window.h"
#include "model/cohort.h"

struct fd_agg {
    const fd_conf_t *conf;
    fd_scopes_t *scopes;
    fd_daycal_t *days;
    /* per grouping: its scopes get m1 exposed/interacted HLLs
     * (hll_m1_groupings); else only h1 and d1 ones */
    unsigned char m1_hll[FD_MAX_GROUPINGS];
};

fd_agg_t *fd_agg_new(const fd_conf_t *c, char *err, size_t errlen) {
    fd_agg_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->conf = c;
    for (int gi = 0; gi < c->ngroupings; gi++)
        a->m1_hll[gi] = (unsigned char)fd_conf_hll_m1(c, &c->groupings[gi]);
    a->scopes = fd_scopes_new(c->ngroupings, (uint32_t)c->cardinality_cap, err, errlen);
    if (!a->scopes) goto fail;
    a->days = fd_daycal_new(c->time_zone, err, errlen);
    if (!a->days) goto fail;
    return a;
fail:
    fd_agg_free(a);
    return NULL;
}

void fd_agg_free(fd_agg_t *a) {
    if (!a) return;
    fd_scopes_free(a->scopes);
    fd_daycal_free(a->days);
    free(a);
}

uint64_t fd_agg_overflow(const fd_agg_t *a, int gi) { return fd_scopes_overflow(a->scopes, gi); }

int fd_agg_add(fd_agg_t *a, fd_batch_t *b, const fd_event_t *ev, int late) {
    int64_t buckets[FD_GRAN__COUNT] = {
        fd_bucket_m1(ev->ts_ms),
        fd_bucket_h1(ev->ts_ms),
        fd_daycal_label(a->days, ev->ts_ms),
    };
    uint32_t user, pay_counters[FD_MAX_GROUPINGS * FD_GRAN__COUNT];
    size_t npay = 0;
    int rc = fd_batch_user(b, ev->user_id, &user);
    if (rc < 0) return rc;
    fd_step_t step = ev->type == FD_TYPE_EXPOSURE ? FD_STEP_EXPOSED : FD_STEP_INTERACTED;
    int64_t exposures = ev->type == FD_TYPE_EXPOSURE, interactions = ev->type == FD_TYPE_INTERACTION;
    const fd_str_t *action = ev->type == FD_TYPE_INTERACTION ? &ev->action : NULL;
    /* An exposure or interaction carrying a coupon_id puts its user in the
     * bucket's coupon_touched HLL (the coupon group of docs/METRICS.md,
     * "Coupons"); a payment does so in the flush script, only when it is
     * new, so a repeated payment changes nothing. */
    int coupon = ev->coupon_id.p && ev->coupon_id.n > 0;
    const unsigned all_grans = (1u << FD_GRAN__COUNT) - 1;

    /* the interned copies: stable for the aggregator's lifetime, so the
     * batch keys on their addresses */
    fd_str_t sids[FD_MAX_GROUPINGS];
    if ((rc = fd_scopes_admit_event(a->scopes, a->conf->groupings, ev, sids)) < 0) return rc;
    for (int gi = 0; gi < a->conf->ngroupings; gi++) {
        fd_str_t scope = sids[gi];
        if (!scope.p) continue; /* event lacks a dimension of this grouping */
        if (ev->type == FD_TYPE_PAYMENT) {
            /* counted in Redis only if the payment is new: record where */
            uint32_t cis[FD_GRAN__COUNT];
            if ((rc = fd_batch_scope_counters(b, scope, buckets, cis)) < 0) return rc;
            for (int g = 0; g < FD_GRAN__COUNT; g++) pay_counters[npay++] = cis[g];
            continue;
        }
        if (ev->type != FD_TYPE_EXPOSURE && ev->type != FD_TYPE_INTERACTION) return -EINVAL;
        /* the counters and distinct users of every granularity */
        if ((rc = fd_batch_scope_event(b, scope, buckets, exposures, interactions, late, action,
                                       a->m1_hll[gi] ? all_grans : all_grans & ~(1u << FD_GRAN_M1),
                                       step, coupon, user)) < 0)
            return rc;
    }

    if (ev->type == FD_TYPE_PAYMENT) {
        char dedup[512 * 3 + 16];
        size_t dn = fd_scope_encode(dedup, sizeof dedup - 16, ev->order_id.p, ev->order_id.n);
        const char *st = ev->status == FD_STATUS_PAID ? ":paid" : ":refunded";
        memcpy(dedup + dn, st, strlen(st));
        dn += strlen(st);
        fd_batch_payment_t p = {
            .dedup = {dedup, (uint32_t)dn},
            .user = user,
            .amount = ev->amount,
            .status = ev->status,
            .late = late,
            .nbuckets = npay,
            .counters = pay_counters,
            .coupon = ev->coupon_id.p ? ev->coupon_id : (fd_str_t){NULL, 0},
        };
        if ((rc = fd_batch_payment(b, &p)) < 0) return rc;
    }
    if (a->conf->mkt_enabled &&
        (rc = fd_users_add(fd_batch_users(b), ev, fd_cohort_daynum((int32_t)buckets[FD_GRAN_D1]))) < 0)
        return rc;
    fd_batch_add_events(b, 1);
    return 0;
}
