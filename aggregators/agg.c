/*
 * agg.c — one valid event → deltas in a partition batch (see agg.h).
 *
 * Keys are built in a stack buffer: "{scope}:{gran}:{bucket}" for counters
 * and "{scope}:{gran}:{bucket}:{step}" for distinct users. A scope id is at
 * most 5 dimensions × (name + 3 × 128 code points × 4 bytes), well under
 * FD_KEY_MAX; an event whose scope id would not fit is impossible after
 * validation, and is rejected with -E2BIG rather than cut.
 */
#include "aggregators/agg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aggregators/scope.h"
#include "aggregators/window.h"

#define FD_KEY_MAX 16384

struct fd_agg {
    const fd_conf_t *conf;
    fd_scopes_t *scopes;
    fd_daycal_t *days;
};

fd_agg_t *fd_agg_new(const fd_conf_t *c, char *err, size_t errlen) {
    fd_agg_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->conf = c;
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

static const char *step_of(fd_event_type_t t) {
    return t == FD_TYPE_EXPOSURE ? "exposed" : t == FD_TYPE_INTERACTION ? "interacted" : "paid";
}

int fd_agg_add(fd_agg_t *a, fd_batch_t *b, const fd_event_t *ev, int late) {
    char key[FD_KEY_MAX];
    char labels[FD_GRAN__COUNT][24];
    size_t lablen[FD_GRAN__COUNT];
    for (int g = 0; g < FD_GRAN__COUNT; g++)
        lablen[g] = fd_bucket_label(a->days, (fd_gran_t)g, ev->ts_ms, labels[g]);

    fd_str_t pay_buckets[FD_MAX_GROUPINGS * FD_GRAN__COUNT];
    char pay_keys[FD_MAX_GROUPINGS * FD_GRAN__COUNT][512];
    size_t npay = 0;
    char *pay_heap = NULL; /* only for scope ids longer than the 512-byte slots */
    int rc = 0;

    for (int gi = 0; gi < a->conf->ngroupings; gi++) {
        const fd_grouping_t *gr = &a->conf->groupings[gi];
        size_t sn = fd_scope_id(key, FD_KEY_MAX - 64, gr, ev);
        if (sn == 0) continue; /* event lacks a dimension of this grouping */
        if (sn == (size_t)-1) {
            rc = -E2BIG;
            goto out;
        }
        const char *sid = fd_scopes_admit(a->scopes, gi, gr, key, sn, &sn);
        if (!sid) {
            rc = -ENOMEM;
            goto out;
        }
        if (sid != key) memmove(key, sid, sn);
        if ((rc = fd_batch_scope(b, key, sn)) < 0) goto out;

        for (int g = 0; g < FD_GRAN__COUNT; g++) {
            char *p = key + sn;
            *p++ = ':';
            memcpy(p, fd_gran_name((fd_gran_t)g), 2);
            p += 2;
            *p++ = ':';
            memcpy(p, labels[g], lablen[g]);
            p += lablen[g];
            size_t kn = (size_t)(p - key);

            switch (ev->type) {
            case FD_TYPE_EXPOSURE:
                rc = fd_batch_count(b, key, kn, 1, 0, late, NULL);
                break;
            case FD_TYPE_INTERACTION:
                rc = fd_batch_count(b, key, kn, 0, 1, late, &ev->action);
                break;
            case FD_TYPE_PAYMENT:
                if (kn <= sizeof pay_keys[0]) {
                    memcpy(pay_keys[npay], key, kn);
                    pay_buckets[npay].p = pay_keys[npay];
                } else {
                    /* rare: a very long scope id; keep a heap copy alive until out */
                    char *h = malloc(kn + sizeof(char *));
                    if (!h) {
                        rc = -ENOMEM;
                        goto out;
                    }
                    memcpy(h, &pay_heap, sizeof(char *));
                    memcpy(h + sizeof(char *), key, kn);
                    pay_heap = h;
                    pay_buckets[npay].p = h + sizeof(char *);
                }
                pay_buckets[npay].n = (uint32_t)kn;
                npay++;
                break;
            default:
                rc = -EINVAL;
            }
            if (rc < 0) goto out;
            if (ev->type == FD_TYPE_PAYMENT) continue; /* members go with the payment */
            *p++ = ':';
            size_t stn = strlen(step_of(ev->type));
            memcpy(p, step_of(ev->type), stn);
            p += stn;
            if ((rc = fd_batch_member(b, key, (size_t)(p - key), ev->user_id)) < 0) goto out;
        }
    }

    if (ev->type == FD_TYPE_PAYMENT) {
        char dedup[512 * 3 + 16];
        size_t dn = fd_scope_encode(dedup, sizeof dedup - 16, ev->order_id.p, ev->order_id.n);
        const char *st = ev->status == FD_STATUS_PAID ? ":paid" : ":refunded";
        memcpy(dedup + dn, st, strlen(st));
        dn += strlen(st);
        fd_batch_payment_t p = {
            .dedup = {dedup, (uint32_t)dn},
            .user = ev->user_id,
            .amount = ev->amount,
            .status = ev->status,
            .late = late,
            .nbuckets = npay,
            .buckets = pay_buckets,
        };
        rc = fd_batch_payment(b, &p);
    }
    if (rc == 0) fd_batch_add_events(b, 1);
out:
    while (pay_heap) {
        char *next;
        memcpy(&next, pay_heap, sizeof(char *));
        free(pay_heap);
        pay_heap = next;
    }
    return rc;
}
