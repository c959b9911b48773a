/*
 * users.c — per-batch event records for the per-user marketing state (see
 * users.h). Every field is kept as text, already in the form the flush
 * script takes, in one growable buffer; a record is FD_USERS_FIELDS
 * (offset, length) pairs into it, so growing the buffer never invalidates a
 * record. Reset keeps both allocations.
 */
#include "aggregators/users.h"
#include "model/scope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t off[FD_USERS_FIELDS], len[FD_USERS_FIELDS];
} rec_t;

struct fd_users {
    char *text;
    size_t used, cap;
    rec_t *recs;
    size_t n, capn;
};

fd_users_t *fd_users_new(void) { return calloc(1, sizeof(fd_users_t)); }

void fd_users_free(fd_users_t *u) {
    if (!u) return;
    free(u->text);
    free(u->recs);
    free(u);
}

void fd_users_reset(fd_users_t *u) {
    if (!u) return;
    u->used = 0;
    u->n = 0;
}

static int reserve(fd_users_t *u, size_t more) {
    if (u->used + more <= u->cap) return 0;
    size_t ncap = u->cap ? u->cap * 2 : 65536;
    while (ncap < u->used + more) ncap *= 2;
    if (ncap > UINT32_MAX) return -E2BIG; /* offsets are 32-bit */
    char *p = realloc(u->text, ncap);
    if (!p) return -ENOMEM;
    u->text = p;
    u->cap = ncap;
    return 0;
}

/* Appends field f of r: the bytes as they are (raw) or scope-encoded. */
static void put(fd_users_t *u, rec_t *r, int f, const char *p, size_t n, int encode) {
    r->off[f] = (uint32_t)u->used;
    if (encode) n = p ? fd_scope_encode(u->text + u->used, u->cap - u->used, p, n) : 0;
    else if (n) memcpy(u->text + u->used, p, n);
    u->used += n;
    r->len[f] = (uint32_t)n;
}

static void put_num(fd_users_t *u, rec_t *r, int f, int64_t v) {
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v);
    put(u, r, f, buf, (size_t)n, 0);
}

int fd_users_add(fd_users_t *u, const fd_event_t *ev, int32_t daynum) {
    if (u->n >= u->capn) {
        size_t nc = u->capn ? u->capn * 2 : 256;
        rec_t *p = realloc(u->recs, nc * sizeof *p);
        if (!p) return -ENOMEM;
        u->recs = p;
        u->capn = nc;
    }
    /* encoding at most triples a byte; numbers take 24 */
    size_t need = 3 * (ev->product_id.n + ev->channel.n + ev->community_id.n + ev->campaign_id.n +
                       ev->order_id.n) +
                  ev->user_id.n + 4 * 24;
    int rc = reserve(u, need);
    if (rc < 0) return rc;
    rec_t *r = &u->recs[u->n];
    const char *kind = ev->type == FD_TYPE_EXPOSURE      ? "e"
                       : ev->type == FD_TYPE_INTERACTION ? "i"
                       : ev->status == FD_STATUS_PAID    ? "p"
                                                         : "r";
    put(u, r, 0, ev->product_id.p, ev->product_id.n, 1);
    put(u, r, 1, ev->user_id.p, ev->user_id.n, 0);
    put(u, r, 2, kind, 1, 0);
    put_num(u, r, 3, ev->ts_ms);
    put_num(u, r, 4, daynum);
    put(u, r, 5, ev->channel.p, ev->channel.n, 1);
    put(u, r, 6, ev->community_id.p, ev->community_id.n, 1);
    put(u, r, 7, ev->campaign_id.p, ev->campaign_id.n, 1);
    int pay = ev->type == FD_TYPE_PAYMENT;
    put(u, r, 8, pay ? ev->order_id.p : NULL, pay ? ev->order_id.n : 0, 1);
    if (pay) put_num(u, r, 9, ev->amount);
    else put(u, r, 9, "0", 1, 0);
    u->n++;
    return 0;
}

size_t fd_users_count(const fd_users_t *u) { return u ? u->n : 0; }

void fd_users_record(const fd_users_t *u, size_t i, fd_str_t out[FD_USERS_FIELDS]) {
    const rec_t *r = &u->recs[i];
    for (int f = 0; f < FD_USERS_FIELDS; f++) {
        out[f].p = u->text + r->off[f];
        out[f].n = r->len[f];
    }
}
