/*
 * batch.c — one partition's deltas since its last flush (see batch.h).
 *
 * Two open-addressing tables (linear probing, power-of-two size, load factor
 * at most 1/2) map byte strings to indexes into plain arrays: counter keys to
 * counter records, HLL keys to member lists, and "hll index + user" to
 * nothing (a set, to drop repeated members early). Scopes use a third table.
 * Key bytes are copied once into an arena of 64 KiB chunks; reset keeps the
 * first chunk and the table allocations, so a steady stream reuses memory.
 *
 * Invariant: every fd_str_t handed out points into this batch's arena.
 */
#include "aggregators/batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena -------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk_t;

typedef struct {
    chunk_t *head;
} arena_t;

static char *arena_alloc(arena_t *a, size_t n) {
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        chunk_t *c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    char *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_reset(arena_t *a, int keep_one) {
    chunk_t *c = a->head;
    if (keep_one && c) {
        /* keep the newest chunk only if it is a standard-size one */
        chunk_t *rest = c->next;
        c->next = NULL;
        c->used = 0;
        a->head = c;
        c = rest;
    } else {
        a->head = NULL;
    }
    while (c) {
        chunk_t *n = c->next;
        free(c);
        c = n;
    }
}

static fd_str_t arena_str(arena_t *a, const char *s, size_t n) {
    fd_str_t r = {NULL, 0};
    char *p = arena_alloc(a, n ? n : 1);
    if (!p) return r;
    memcpy(p, s, n);
    r.p = p;
    r.n = (uint32_t)n;
    return r;
}

/* ---- string → index table ---------------------------------------------- */

typedef struct {
    uint64_t hash;
    fd_str_t key; /* key.p NULL: empty slot */
    uint32_t val;
} slot_t;

typedef struct {
    slot_t *slots;
    size_t mask, used;
} table_t;

/* A word-at-a-time multiplicative hash: keys are short (30-200 bytes) and
 * this is on the hot path, where byte-at-a-time FNV costs 3x more. */
static uint64_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    return h;
}

static int table_grow(table_t *t) {
    size_t ncap = t->slots ? (t->mask + 1) * 2 : 256;
    slot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return -ENOMEM;
    if (t->slots) {
        for (size_t i = 0; i <= t->mask; i++) {
            if (!t->slots[i].key.p) continue;
            size_t j = t->slots[i].hash & (ncap - 1);
            while (ns[j].key.p) j = (j + 1) & (ncap - 1);
            ns[j] = t->slots[i];
        }
        free(t->slots);
    }
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

/* Finds key; if absent inserts it (copied into arena) with val = newval.
 * Returns the slot, *created says which; NULL on ENOMEM. */
static slot_t *table_upsert(table_t *t, arena_t *a, const char *key, size_t n, uint32_t newval,
                            int *created) {
    if (!t->slots || (t->used + 1) * 2 > t->mask + 1)
        if (table_grow(t) < 0) return NULL;
    uint64_t h = hash_bytes(key, n);
    size_t j = h & t->mask;
    while (t->slots[j].key.p) {
        slot_t *s = &t->slots[j];
        if (s->hash == h && s->key.n == n && memcmp(s->key.p, key, n) == 0) {
            *created = 0;
            return s;
        }
        j = (j + 1) & t->mask;
    }
    fd_str_t k = arena_str(a, key, n);
    if (!k.p) return NULL;
    t->slots[j].hash = h;
    t->slots[j].key = k;
    t->slots[j].val = newval;
    t->used++;
    *created = 1;
    return &t->slots[j];
}

static void table_reset(table_t *t) {
    if (t->slots && t->used) memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
    t->used = 0;
}

static void table_free(table_t *t) {
    free(t->slots);
    t->slots = NULL;
    t->used = 0;
}

/* ---- growable arrays ---------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p) return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- the batch ---------------------------------------------------------- */

typedef struct {
    fd_str_t key;
    int64_t exposures, interactions, late;
    fd_batch_action_t *actions;
    size_t nactions, capactions;
} counter_t;

typedef struct {
    fd_str_t key;
    fd_str_t *members;
    size_t nmembers, capmembers;
} hll_t;

struct fd_batch {
    arena_t arena;
    table_t counter_idx, hll_idx, member_set, scope_idx;
    counter_t *counters;
    size_t ncounters, capcounters;
    hll_t *hlls;
    size_t nhlls, caphlls;
    fd_batch_payment_t *payments;
    size_t npayments, cappayments;
    fd_str_t *scopes;
    size_t nscopes, capscopes;
    uint64_t events;
};

fd_batch_t *fd_batch_new(void) { return calloc(1, sizeof(fd_batch_t)); }

void fd_batch_reset(fd_batch_t *b) {
    if (!b) return;
    for (size_t i = 0; i < b->ncounters; i++) free(b->counters[i].actions);
    for (size_t i = 0; i < b->nhlls; i++) free(b->hlls[i].members);
    b->ncounters = b->nhlls = b->npayments = b->nscopes = 0;
    b->events = 0;
    table_reset(&b->counter_idx);
    table_reset(&b->hll_idx);
    table_reset(&b->member_set);
    table_reset(&b->scope_idx);
    arena_reset(&b->arena, 1);
}

void fd_batch_free(fd_batch_t *b) {
    if (!b) return;
    fd_batch_reset(b);
    arena_reset(&b->arena, 0);
    table_free(&b->counter_idx);
    table_free(&b->hll_idx);
    table_free(&b->member_set);
    table_free(&b->scope_idx);
    free(b->counters);
    free(b->hlls);
    free(b->payments);
    free(b->scopes);
    free(b);
}

int fd_batch_count(fd_batch_t *b, const char *key, size_t n, int64_t exposures,
                   int64_t interactions, int64_t late, const fd_str_t *action) {
    int created;
    slot_t *s = table_upsert(&b->counter_idx, &b->arena, key, n, (uint32_t)b->ncounters, &created);
    if (!s) return -ENOMEM;
    if (created) {
        if (grow((void **)&b->counters, &b->capcounters, b->ncounters + 1, sizeof(counter_t)) < 0)
            return -ENOMEM;
        counter_t *c = &b->counters[b->ncounters++];
        memset(c, 0, sizeof(*c));
        c->key = s->key;
    }
    counter_t *c = &b->counters[s->val];
    c->exposures += exposures;
    c->interactions += interactions;
    c->late += late;
    if (action && action->p) {
        for (size_t i = 0; i < c->nactions; i++) {
            fd_batch_action_t *a = &c->actions[i];
            if (a->name.n == action->n && memcmp(a->name.p, action->p, action->n) == 0) {
                a->count++;
                return 0;
            }
        }
        if (grow((void **)&c->actions, &c->capactions, c->nactions + 1, sizeof(fd_batch_action_t)) < 0)
            return -ENOMEM;
        fd_str_t name = arena_str(&b->arena, action->p, action->n);
        if (!name.p) return -ENOMEM;
        c->actions[c->nactions].name = name;
        c->actions[c->nactions].count = 1;
        c->nactions++;
    }
    return 0;
}

int fd_batch_member(fd_batch_t *b, const char *hllkey, size_t n, fd_str_t user) {
    int created;
    slot_t *s = table_upsert(&b->hll_idx, &b->arena, hllkey, n, (uint32_t)b->nhlls, &created);
    if (!s) return -ENOMEM;
    if (created) {
        if (grow((void **)&b->hlls, &b->caphlls, b->nhlls + 1, sizeof(hll_t)) < 0) return -ENOMEM;
        hll_t *h = &b->hlls[b->nhlls++];
        memset(h, 0, sizeof(*h));
        h->key = s->key;
    }
    uint32_t idx = s->val;
    /* set key: 4 bytes of HLL index, then the user id */
    char stack[4 + 256];
    char *k = stack;
    size_t kn = 4 + user.n;
    if (kn > sizeof stack && !(k = malloc(kn))) return -ENOMEM;
    memcpy(k, &idx, 4);
    memcpy(k + 4, user.p, user.n);
    slot_t *m = table_upsert(&b->member_set, &b->arena, k, kn, 0, &created);
    if (k != stack) free(k);
    if (!m) return -ENOMEM;
    if (!created) return 0;
    hll_t *h = &b->hlls[idx];
    if (grow((void **)&h->members, &h->capmembers, h->nmembers + 1, sizeof(fd_str_t)) < 0)
        return -ENOMEM;
    /* the user bytes already sit in the arena right after the 4-byte index */
    h->members[h->nmembers].p = m->key.p + 4;
    h->members[h->nmembers].n = user.n;
    h->nmembers++;
    return 0;
}

int fd_batch_payment(fd_batch_t *b, const fd_batch_payment_t *p) {
    if (grow((void **)&b->payments, &b->cappayments, b->npayments + 1, sizeof(*p)) < 0)
        return -ENOMEM;
    fd_batch_payment_t q = *p;
    q.dedup = arena_str(&b->arena, p->dedup.p, p->dedup.n);
    q.user = arena_str(&b->arena, p->user.p, p->user.n);
    fd_str_t *bk = (fd_str_t *)arena_alloc(&b->arena, sizeof(fd_str_t) * (p->nbuckets ? p->nbuckets : 1) + 8);
    if (!q.dedup.p || !q.user.p || !bk) return -ENOMEM;
    /* keep fd_str_t alignment inside the byte arena */
    bk = (fd_str_t *)(((uintptr_t)bk + 7) & ~(uintptr_t)7);
    for (size_t i = 0; i < p->nbuckets; i++) {
        /* bucket keys are interned in the counter table: reuse its copy */
        int created;
        slot_t *s = table_upsert(&b->counter_idx, &b->arena, p->buckets[i].p, p->buckets[i].n,
                                 (uint32_t)b->ncounters, &created);
        if (!s) return -ENOMEM;
        if (created) {
            if (grow((void **)&b->counters, &b->capcounters, b->ncounters + 1, sizeof(counter_t)) < 0)
                return -ENOMEM;
            counter_t *c = &b->counters[b->ncounters++];
            memset(c, 0, sizeof(*c));
            c->key = s->key;
        }
        bk[i] = s->key;
    }
    q.buckets = bk;
    b->payments[b->npayments++] = q;
    return 0;
}

int fd_batch_scope(fd_batch_t *b, const char *scope, size_t n) {
    int created;
    slot_t *s = table_upsert(&b->scope_idx, &b->arena, scope, n, 0, &created);
    if (!s) return -ENOMEM;
    if (!created) return 0;
    if (grow((void **)&b->scopes, &b->capscopes, b->nscopes + 1, sizeof(fd_str_t)) < 0) return -ENOMEM;
    b->scopes[b->nscopes++] = s->key;
    return 0;
}

void fd_batch_add_events(fd_batch_t *b, uint64_t n) { b->events += n; }
uint64_t fd_batch_events(const fd_batch_t *b) { return b->events; }
size_t fd_batch_ncounters(const fd_batch_t *b) { return b->ncounters; }

void fd_batch_counter(const fd_batch_t *b, size_t i, fd_batch_counter_t *out) {
    const counter_t *c = &b->counters[i];
    out->key = c->key;
    out->exposures = c->exposures;
    out->interactions = c->interactions;
    out->late = c->late;
    out->nactions = c->nactions;
    out->actions = c->actions;
}

size_t fd_batch_nhll(const fd_batch_t *b) { return b->nhlls; }

fd_str_t fd_batch_hll(const fd_batch_t *b, size_t i, size_t *nmembers, const fd_str_t **members) {
    *nmembers = b->hlls[i].nmembers;
    *members = b->hlls[i].members;
    return b->hlls[i].key;
}

size_t fd_batch_npayments(const fd_batch_t *b) { return b->npayments; }
const fd_batch_payment_t *fd_batch_payment_at(const fd_batch_t *b, size_t i) { return &b->payments[i]; }
size_t fd_batch_nscopes(const fd_batch_t *b) { return b->nscopes; }
fd_str_t fd_batch_scope_at(const fd_batch_t *b, size_t i) { return b->scopes[i]; }
