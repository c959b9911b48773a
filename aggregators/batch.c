/*
 * batch.c — one partition's deltas since its last flush (see batch.h).
 *
 * Three kinds of open-addressing tables (linear probing, power-of-two size,
 * load factor at most 1/2):
 *   tuple_t   (a, b, c) 64-bit tuples → index: counter keys (scope pointer,
 *             granularity, bucket), HLL keys (scope pointer, granularity and
 *             step, bucket) and touched scopes;
 *   fd_set64  (base/set64.c) HLL members as (HLL index + 1, user index),
 *             for users past their short member list (member_new);
 *   strtab_t  byte strings → index: user ids, copied once into the arena.
 * Reset keeps every allocation (tables are cleared, not freed), so a steady
 * stream reuses memory; the arena keeps its newest chunk. tuple_t and
 * strtab_t are cleared by bumping a generation, not by zeroing.
 *
 * Per event the hot path (fd_batch_scope_event, one call per scope) costs a
 * cache probe per scope and, per granularity, a counter update and a member
 * append; the rest happens once per new scope, bucket, HLL or returning
 * user. Memory on top of the tables: per listed scope its current buckets
 * (scur_t, 40 bytes), per user its member list header (ulog_t, 32 bytes)
 * and at most (ULOG_MOVES + 1) × ULOG_MAX × 4 bytes of list (a list is
 * copied to the end at most ULOG_MOVES times), HLL member arrays in the
 * arena (at most twice their members), and a 64 KiB scope cache.
 *
 * Invariant: every index handed out stays valid until the next reset.
 */
#include "aggregators/batch.h"
#include "base/set64.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk_t;

typedef struct {
    chunk_t *head;
} arena_t;

static inline char *arena_alloc(arena_t *a, size_t n) {
    n = (n + 7) & ~(size_t)7; /* keep everything 8-byte aligned */
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
    a->head = NULL;
    if (keep_one && c) {
        a->head = c;
        c = c->next;
        a->head->next = NULL;
        a->head->used = 0;
    }
    while (c) {
        chunk_t *n = c->next;
        free(c);
        c = n;
    }
}

/* ---- hashing ----------------------------------------------------------- */

/* Word-at-a-time hash for user ids (short strings, hot path). */
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
    /* the last n (< 8) bytes without a memcpy call: overlapping loads */
    uint64_t w = 0;
    uint32_t lo, hi;
    if (n >= 4) {
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        w = (uint64_t)hi << 32 | lo;
    } else if (n > 0) {
        w = (uint64_t)s[0] << 16 | (uint64_t)s[n >> 1] << 8 | s[n - 1];
    }
    return fd_mix64(h ^ w);
}

static size_t grown_cap(size_t mask) { return mask ? (mask + 1) * 2 : 256; }

/* ---- (a, b, c) → index ------------------------------------------------- */

/* A slot is used when its `used` is the table's gen: clearing a table bumps
 * gen instead of zeroing every slot (a batch's counter table reaches
 * megabytes, and zeroing it on every reset cost ~100 instructions per event
 * on the reference stream). */
typedef struct {
    uint64_t a, b, c;
    uint32_t val;
    uint32_t used;
} tslot_t;

typedef struct {
    tslot_t *slots;
    size_t mask, used;
    uint32_t gen; /* 0 until the slots exist */
} tuple_t;

static inline uint64_t tuple_hash(uint64_t a, uint64_t b, uint64_t c) {
    /* one avalanche of a sum of odd multiples (a collision costs a probe
     * only: a slot matches on the whole tuple) */
    return fd_mix64(a * 0x9E3779B97F4A7C15ull + b * 0x632BE59BD9B4E019ull + c * 0xD6E8FEB86659FD93ull);
}

static int tuple_grow(tuple_t *t) {
    size_t ncap = grown_cap(t->slots ? t->mask : 0);
    tslot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return -ENOMEM;
    if (t->gen == 0) t->gen = 1; /* calloc'd slots have used 0: empty */
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        tslot_t *s = &t->slots[i];
        if (s->used != t->gen) continue;
        size_t j = tuple_hash(s->a, s->b, s->c) & (ncap - 1);
        while (ns[j].used == t->gen) j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(t->slots);
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

/* Returns the slot for (a, b, c), inserting it with val = newval if absent. */
static tslot_t *tuple_upsert(tuple_t *t, uint64_t a, uint64_t b, uint64_t c, uint32_t newval,
                             int *created) {
    if (!t->slots || (t->used + 1) * 2 > t->mask + 1)
        if (tuple_grow(t) < 0) return NULL;
    size_t j = tuple_hash(a, b, c) & t->mask;
    for (;; j = (j + 1) & t->mask) {
        tslot_t *s = &t->slots[j];
        if (s->used != t->gen) {
            s->a = a;
            s->b = b;
            s->c = c;
            s->val = newval;
            s->used = t->gen;
            t->used++;
            *created = 1;
            return s;
        }
        if (s->a == a && s->b == b && s->c == c) {
            *created = 0;
            return s;
        }
    }
}

static void tuple_clear(tuple_t *t) {
    if (t->used && ++t->gen == 0) { /* wrapped: every old gen must read as empty */
        memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
        t->gen = 1;
    }
    t->used = 0;
}

/* ---- byte strings → index ------------------------------------------------ */

/* Used when gen is the table's, as tuple_t (the user table of a batch of
 * the reference stream is 2 MiB: zeroing it on every reset showed). */
typedef struct {
    uint64_t hash;
    fd_str_t key;
    uint32_t val;
    uint32_t gen;
} sslot_t;

typedef struct {
    sslot_t *slots;
    size_t mask, used;
    uint32_t gen; /* 0 until the slots exist */
} strtab_t;

static int strtab_grow(strtab_t *t) {
    size_t ncap = grown_cap(t->slots ? t->mask : 0);
    sslot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return -ENOMEM;
    if (t->gen == 0) t->gen = 1; /* calloc'd slots have gen 0: empty */
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        if (t->slots[i].gen != t->gen) continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].gen == t->gen) j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

static void strtab_clear(strtab_t *t) {
    if (t->used && ++t->gen == 0) { /* wrapped: every old gen must read as empty */
        memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
        t->gen = 1;
    }
    t->used = 0;
}

/* ---- (counter, action) → action index -------------------------------------- */

/* Lets a counter with many distinct actions find one without a linear scan
 * (hostile input can give a counter thousands of actions in one batch). */
typedef struct {
    uint64_t hash;
    uint32_t counter; /* counter index + 1; 0: empty */
    uint32_t action;
} aslot_t;

typedef struct {
    aslot_t *slots;
    size_t mask, used;
} acttab_t;

static uint64_t action_hash(uint32_t counter, const char *p, size_t n) {
    return hash_bytes(p, n) ^ fd_mix64((uint64_t)counter + 0x632BE59BD9B4E019ull);
}

static int acttab_grow(acttab_t *t) {
    size_t ncap = grown_cap(t->slots ? t->mask : 0);
    aslot_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return -ENOMEM;
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        if (!t->slots[i].counter) continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].counter) j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->mask = ncap - 1;
    return 0;
}

static void acttab_clear(acttab_t *t) {
    if (t->used) memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
    t->used = 0;
}

/* ---- growable arrays ------------------------------------------------------ */

/* Small first allocations: most HLL member lists and action lists of a
 * batch hold one to a few entries, and there are ~15 of them per event. */
static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p) return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- the batch ------------------------------------------------------------ */

/* The counters of a scope's current buckets, by scope address (see
 * fd_batch_scope_counters): direct-mapped, an entry valid only while its
 * gen is the batch's. */
#define CCACHE_BITS \
    10 /* 1024 entries, 64 KiB: a batch of the reference stream
                         * touches ~3,400 scopes; 256 entries missed 30% */
#define CCACHE_SIZE (1u << CCACHE_BITS)
typedef struct {
    const char *scope;
    uint64_t gen;
    int64_t bucket[FD_GRAN__COUNT];
    uint32_t ci[FD_GRAN__COUNT];
} ccache_t;

/* Per listed scope (parallel to scopes): the buckets it last used and their
 * counters, whatever the cache has since evicted. A cache miss then looks up
 * only the granularities whose bucket changed — usually none (the entry was
 * evicted) or m1 alone (a new minute) — instead of every granularity. */
typedef struct {
    int64_t bucket[FD_GRAN__COUNT];
    uint32_t ci[FD_GRAN__COUNT];
    unsigned valid; /* bit g: bucket[g] and ci[g] are set */
} scur_t;

/* Per user (parallel to users): its HLLs so far as mlog[start..start+n), or
 * n == ULOG_IN_SET once they are in member_set (see member_new). */
#define ULOG_IN_SET UINT32_MAX
#define ULOG_MAX 32
#define ULOG_MOVES 4 /* copies of a list to the end before it goes to the set */
typedef struct {
    uint32_t start, n, moves;
    uint64_t seen[2]; /* bit hi % 128 for each hi in the list: most new ones skip the scan */
} ulog_t;

typedef struct {
    fd_batch_counter_t pub; /* actions points at own storage */
    fd_batch_action_t *actions;
    size_t capactions;
    uint32_t hll[FD_STEP__COUNT]; /* HLL index + 1 per step, 0: none yet */
} counter_t;

typedef struct {
    fd_batch_hll_t pub;
    uint32_t *members; /* in the arena */
    size_t capmembers;
} hll_t;

struct fd_batch {
    arena_t arena;
    tuple_t counter_idx, scope_idx;
    fd_set64_t member_set;
    strtab_t user_idx;
    acttab_t action_idx;
    counter_t *counters;
    size_t ncounters, capcounters;
    hll_t *hlls;
    size_t nhlls, caphlls;
    fd_str_t *users;
    size_t nusers, capusers;
    fd_batch_payment_t *payments;
    size_t npayments, cappayments;
    fd_str_t *scopes;
    size_t nscopes, capscopes;
    scur_t *scur;
    size_t capscur;
    ulog_t *ulogs; /* parallel to users */
    size_t capulogs;
    uint32_t *mlog; /* the users' member lists (see member_new) */
    size_t nmlog, capmlog;
    uint64_t events;
    fd_users_t *urecs; /* marketing per-user records (users.h) */
    uint64_t gen; /* bumped by every reset: a cache entry of an older one is empty */
    ccache_t cache[CCACHE_SIZE];
};

const char *fd_step_name(fd_step_t s) {
    return s == FD_STEP_EXPOSED      ? "exposed"
           : s == FD_STEP_INTERACTED ? "interacted"
           : s == FD_STEP_COUPON     ? "coupon_touched"
                                     : "paid";
}

fd_batch_t *fd_batch_new(void) {
    fd_batch_t *b = calloc(1, sizeof(fd_batch_t));
    if (b && !(b->urecs = fd_users_new())) {
        free(b);
        return NULL;
    }
    if (b) b->gen = 1; /* calloc'd cache entries have gen 0: empty */
    return b;
}

fd_users_t *fd_batch_users(const fd_batch_t *b) { return b->urecs; }

void fd_batch_reset(fd_batch_t *b) {
    if (!b) return;
    /* per-key arrays are kept for reuse: only the counts go */
    b->ncounters = b->nhlls = b->nusers = b->npayments = b->nscopes = b->nmlog = 0;
    b->events = 0;
    b->gen++;
    tuple_clear(&b->counter_idx);
    tuple_clear(&b->scope_idx);
    fd_set64_clear(&b->member_set);
    strtab_clear(&b->user_idx);
    acttab_clear(&b->action_idx);
    arena_reset(&b->arena, 1);
    fd_users_reset(b->urecs);
}

void fd_batch_free(fd_batch_t *b) {
    if (!b) return;
    for (size_t i = 0; i < b->capcounters; i++) free(b->counters[i].actions);
    arena_reset(&b->arena, 0);
    free(b->counter_idx.slots);
    free(b->scope_idx.slots);
    fd_set64_release(&b->member_set);
    free(b->user_idx.slots);
    free(b->action_idx.slots);
    free(b->counters);
    free(b->hlls);
    free(b->users);
    free(b->payments);
    free(b->scopes);
    free(b->scur);
    free(b->ulogs);
    free(b->mlog);
    fd_users_free(b->urecs);
    free(b);
}

/* Arrays of records whose own buffers are kept across resets: new slots
 * past the old capacity start zeroed. */
static int grow_zeroed(void **arr, size_t *cap, size_t need, size_t elem) {
    size_t old = *cap;
    if (grow(arr, cap, need, elem) < 0) return -ENOMEM;
    if (*cap > old) memset((char *)*arr + old * elem, 0, (*cap - old) * elem);
    return 0;
}

int fd_batch_user(fd_batch_t *b, fd_str_t user, uint32_t *idx) {
    strtab_t *t = &b->user_idx;
    if (!t->slots || (t->used + 1) * 2 > t->mask + 1)
        if (strtab_grow(t) < 0) return -ENOMEM;
    uint64_t h = hash_bytes(user.p, user.n);
    size_t j = h & t->mask;
    for (;; j = (j + 1) & t->mask) {
        sslot_t *s = &t->slots[j];
        if (s->gen != t->gen) break;
        if (s->hash == h && s->key.n == user.n && memcmp(s->key.p, user.p, user.n) == 0) {
            *idx = s->val;
            return 0;
        }
    }
    if (grow((void **)&b->users, &b->capusers, b->nusers + 1, sizeof(fd_str_t)) < 0 ||
        grow((void **)&b->ulogs, &b->capulogs, b->nusers + 1, sizeof(ulog_t)) < 0)
        return -ENOMEM;
    char *copy = arena_alloc(&b->arena, user.n ? user.n : 1);
    if (!copy) return -ENOMEM;
    memcpy(copy, user.p, user.n);
    sslot_t *s = &t->slots[j];
    s->hash = h;
    s->key.p = copy;
    s->key.n = user.n;
    s->val = (uint32_t)b->nusers;
    s->gen = t->gen;
    t->used++;
    b->users[b->nusers] = s->key;
    b->ulogs[b->nusers] = (ulog_t){.start = (uint32_t)b->nmlog, .n = 0, .moves = 0, .seen = {0, 0}};
    *idx = (uint32_t)b->nusers++;
    return 0;
}

/* Lists scope (once per batch) and gives its index in scopes and scur. */
static int scope_index(fd_batch_t *b, fd_str_t scope, uint32_t *si) {
    int created;
    tslot_t *s = tuple_upsert(&b->scope_idx, (uint64_t)(uintptr_t)scope.p, 0, 0,
                              (uint32_t)b->nscopes, &created);
    if (!s) return -ENOMEM;
    if (created) {
        if (grow((void **)&b->scopes, &b->capscopes, b->nscopes + 1, sizeof(fd_str_t)) < 0 ||
            grow((void **)&b->scur, &b->capscur, b->nscopes + 1, sizeof(scur_t)) < 0) {
            s->val = UINT32_MAX; /* not listed: the slot must not point past the scopes */
            return -ENOMEM;
        }
        b->scur[b->nscopes].valid = 0;
        b->scopes[b->nscopes++] = scope;
    }
    if (s->val == UINT32_MAX) return -ENOMEM;
    *si = s->val;
    return 0;
}

/* The index of the counter (scope, g, bucket), created if new. */
static int counter_lookup(fd_batch_t *b, fd_str_t scope, fd_gran_t g, int64_t bucket, uint32_t *idx) {
    int created;
    tslot_t *s = tuple_upsert(&b->counter_idx, (uint64_t)(uintptr_t)scope.p, (uint64_t)g,
                              (uint64_t)bucket, (uint32_t)b->ncounters, &created);
    if (!s) return -ENOMEM;
    if (created) {
        if (grow_zeroed((void **)&b->counters, &b->capcounters, b->ncounters + 1,
                        sizeof(counter_t)) < 0) {
            /* not counted: the slot must not point past the counters */
            s->val = UINT32_MAX;
            return -ENOMEM;
        }
        counter_t *c = &b->counters[b->ncounters++];
        memset(&c->pub, 0, sizeof c->pub);
        memset(c->hll, 0, sizeof c->hll);
        c->pub.scope = scope;
        c->pub.gran = g;
        c->pub.bucket = bucket;
    }
    if (s->val == UINT32_MAX) return -ENOMEM;
    *idx = s->val;
    return 0;
}

int fd_batch_count(fd_batch_t *b, fd_str_t scope, fd_gran_t g, int64_t bucket, int64_t exposures,
                   int64_t interactions, int64_t late, const fd_str_t *action, uint32_t *counter_idx) {
    uint32_t ci;
    int rc = counter_lookup(b, scope, g, bucket, &ci);
    if (rc < 0) return rc;
    if (counter_idx) *counter_idx = ci;
    return fd_batch_count_at(b, ci, exposures, interactions, late, action);
}

/* fd_batch_scope_counters, inlined into fd_batch_scope_event */
__attribute__((always_inline)) static inline int scope_counters(fd_batch_t *b, fd_str_t scope,
                                                                const int64_t bucket[FD_GRAN__COUNT],
                                                                uint32_t ci[FD_GRAN__COUNT]) {
    uint64_t h = (uint64_t)(uintptr_t)scope.p * 0x9E3779B97F4A7C15ull;
    ccache_t *e = &b->cache[h >> (64 - CCACHE_BITS)];
    if (e->gen == b->gen && e->scope == scope.p && memcmp(e->bucket, bucket, sizeof e->bucket) == 0) {
        memcpy(ci, e->ci, sizeof e->ci);
        return 0; /* and the scope is listed: it was when the entry was made */
    }
    uint32_t si;
    int rc = scope_index(b, scope, &si);
    if (rc < 0) return rc;
    scur_t *r = &b->scur[si];
    for (int g = 0; g < FD_GRAN__COUNT; g++) {
        if (!(r->valid >> g & 1) || r->bucket[g] != bucket[g]) {
            if ((rc = counter_lookup(b, scope, (fd_gran_t)g, bucket[g], &r->ci[g])) < 0) {
                r->valid &= ~(1u << g);
                return rc;
            }
            r->bucket[g] = bucket[g];
            r->valid |= 1u << g;
        }
        ci[g] = r->ci[g];
    }
    e->gen = b->gen;
    e->scope = scope.p;
    memcpy(e->bucket, bucket, sizeof e->bucket);
    memcpy(e->ci, ci, sizeof e->ci);
    return 0;
}

static int count_action(fd_batch_t *b, uint32_t ci, const fd_str_t *action);

/* Kept small for the same reason as fd_batch_member: exposures carry no
 * action, and an action's bookkeeping lives in count_action. */
int fd_batch_scope_counters(fd_batch_t *b, fd_str_t scope, const int64_t bucket[FD_GRAN__COUNT],
                            uint32_t ci[FD_GRAN__COUNT]) {
    return scope_counters(b, scope, bucket, ci);
}

int fd_batch_count_at(fd_batch_t *b, uint32_t ci, int64_t exposures, int64_t interactions,
                      int64_t late, const fd_str_t *action) {
    counter_t *c = &b->counters[ci];
    c->pub.exposures += exposures;
    c->pub.interactions += interactions;
    c->pub.late += late;
    if (action && action->p) return count_action(b, ci, action);
    return 0;
}

__attribute__((noinline)) static int count_action(fd_batch_t *b, uint32_t ci, const fd_str_t *action) {
    counter_t *c = &b->counters[ci];
    {
        /* Actions stay in the order this batch first saw them: the flush
         * script admits them to the action cap in that order. A few are
         * scanned; past that the (counter, action) table finds them. */
        acttab_t *t = &b->action_idx;
        uint32_t ci1 = ci + 1;
        if (c->pub.nactions <= 8) {
            /* before hashing: the action is usually one of these few */
            for (size_t i = 0; i < c->pub.nactions; i++) {
                fd_batch_action_t *a = &c->actions[i];
                if (a->name.n == action->n && memcmp(a->name.p, action->p, action->n) == 0) {
                    a->count++;
                    return 0;
                }
            }
        }
        uint64_t h = action_hash(ci1, action->p, action->n);
        if (c->pub.nactions > 8) {
            for (size_t j = h & t->mask;; j = (j + 1) & t->mask) {
                aslot_t *sl = &t->slots[j];
                if (!sl->counter) break;
                fd_batch_action_t *a = &c->actions[sl->action];
                if (sl->hash == h && sl->counter == ci1 && a->name.n == action->n &&
                    memcmp(a->name.p, action->p, action->n) == 0) {
                    a->count++;
                    return 0;
                }
            }
        }
        if (!t->slots || (t->used + 1) * 2 > t->mask + 1)
            if (acttab_grow(t) < 0) return -ENOMEM;
        size_t j = h & t->mask;
        while (t->slots[j].counter) j = (j + 1) & t->mask;
        if (grow((void **)&c->actions, &c->capactions, c->pub.nactions + 1,
                 sizeof(fd_batch_action_t)) < 0)
            return -ENOMEM;
        char *name = arena_alloc(&b->arena, action->n);
        if (!name) return -ENOMEM;
        t->slots[j] = (aslot_t){.hash = h, .counter = ci1, .action = (uint32_t)c->pub.nactions};
        t->used++;
        memcpy(name, action->p, action->n);
        c->actions[c->pub.nactions].name.p = name;
        c->actions[c->pub.nactions].name.n = action->n;
        c->actions[c->pub.nactions].count = 1;
        c->pub.nactions++;
    }
    return 0;
}

/*
 * 1 if (HLL index + 1 hi, user) is new to the batch (and records it), 0 if
 * not, or -ENOMEM. Most events of a batch are their user's first (79% on the
 * reference stream), and all their members are new: rather than one
 * member_set insert per member (~15 per event, the hot path's largest cost),
 * a user's members go to a short list of its own at the end of mlog, so a
 * duplicate is found by scanning a few integers (and only when the `seen`
 * bit of the HLL is set). When another user's list follows it (the user's
 * next event), the list is copied to the end again; once it is full
 * (ULOG_MAX) or has moved ULOG_MOVES times, it goes into member_set and the
 * user is looked up there from then on.
 */
static int member_new(fd_batch_t *b, uint32_t hi, uint32_t user) {
    ulog_t *u = &b->ulogs[user];
    int rc;
    if (u->n != ULOG_IN_SET) {
        if (u->start + u->n != b->nmlog && u->n < ULOG_MAX && u->moves < ULOG_MOVES) {
            /* the user's next event: its list moves to the end (at most
             * ULOG_MOVES times, so mlog holds at most ULOG_MOVES + 1 copies
             * of ULOG_MAX entries per user, whatever the input) */
            u->moves++;
            if (b->nmlog + u->n >= b->capmlog &&
                grow((void **)&b->mlog, &b->capmlog, b->nmlog + u->n + 1, sizeof(uint32_t)) < 0)
                return -ENOMEM;
            memmove(b->mlog + b->nmlog, b->mlog + u->start, u->n * sizeof(uint32_t));
            u->start = (uint32_t)b->nmlog;
            b->nmlog += u->n;
        }
        if (u->start + u->n == b->nmlog && u->n < ULOG_MAX) {
            uint64_t bit = UINT64_C(1) << (hi & 63);
            if (u->seen[hi >> 6 & 1] & bit)
                for (uint32_t i = u->start; i < b->nmlog; i++)
                    if (b->mlog[i] == hi) return 0;
            u->seen[hi >> 6 & 1] |= bit;
            if (b->nmlog == b->capmlog &&
                grow((void **)&b->mlog, &b->capmlog, b->nmlog + 1, sizeof(uint32_t)) < 0)
                return -ENOMEM;
            b->mlog[b->nmlog++] = hi;
            u->n++;
            return 1;
        }
        for (uint32_t i = u->start; i < u->start + u->n; i++)
            if ((rc = fd_set64_add(&b->member_set, (uint64_t)b->mlog[i] << 32 | user)) < 0)
                return rc; /* retried whole next time: the set ignores repeats */
        u->n = ULOG_IN_SET;
    }
    return fd_set64_add(&b->member_set, (uint64_t)hi << 32 | user);
}

static int member_add(fd_batch_t *b, uint32_t counter_idx, fd_step_t step, uint32_t user);

/* The usual case inline, the rest in member_add: a small function keeps the
 * call cheap (~12 of these per event). The usual case: the HLL exists, the
 * user's list is the newest one with room, its `seen` bit is clear (so the
 * member is new) and both arrays have room. */
__attribute__((always_inline)) static inline int member_fast(fd_batch_t *b, uint32_t counter_idx,
                                                             fd_step_t step, uint32_t user) {
    uint32_t hi = b->counters[counter_idx].hll[step];
    ulog_t *u = &b->ulogs[user];
    uint64_t bit = UINT64_C(1) << (hi & 63);
    if (hi != 0 && u->n < ULOG_MAX && u->start + u->n == b->nmlog &&
        !(u->seen[hi >> 6 & 1] & bit) && b->nmlog < b->capmlog) {
        hll_t *h = &b->hlls[hi - 1];
        if (h->pub.nmembers < h->capmembers) {
            u->seen[hi >> 6 & 1] |= bit;
            u->n++;
            b->mlog[b->nmlog++] = hi;
            h->members[h->pub.nmembers++] = user;
            return 0;
        }
    }
    return member_add(b, counter_idx, step, user);
}

int fd_batch_member(fd_batch_t *b, uint32_t counter_idx, fd_step_t step, uint32_t user) {
    return member_fast(b, counter_idx, step, user);
}

__attribute__((noinline)) static int member_add(fd_batch_t *b, uint32_t counter_idx, fd_step_t step,
                                                uint32_t user) {
    counter_t *c = &b->counters[counter_idx];
    if (!c->hll[step]) {
        if (grow((void **)&b->hlls, &b->caphlls, b->nhlls + 1, sizeof(hll_t)) < 0)
            return -ENOMEM; /* every field is set below: no zeroing */
        hll_t *h = &b->hlls[b->nhlls];
        memset(&h->pub, 0, sizeof h->pub);
        h->members = NULL; /* the arena's, gone with the last reset */
        h->capmembers = 0;
        h->pub.scope = c->pub.scope;
        h->pub.gran = c->pub.gran;
        h->pub.bucket = c->pub.bucket;
        h->pub.step = step;
        c->hll[step] = (uint32_t)++b->nhlls;
    }
    uint32_t hi = c->hll[step]; /* index + 1: never 0, so the set key is never 0 */
    int added = member_new(b, hi, user);
    if (added <= 0) return added;
    hll_t *h = &b->hlls[hi - 1];
    if (h->pub.nmembers == h->capmembers) {
        /* in the arena, doubling: a batch makes tens of thousands of HLLs,
         * most with a few members, and realloc per HLL cost ~300
         * instructions per event; the arena wastes at most half */
        size_t ncap = h->capmembers ? h->capmembers * 2 : 4;
        uint32_t *m = (uint32_t *)arena_alloc(&b->arena, ncap * sizeof(uint32_t));
        if (!m) return -ENOMEM;
        if (h->pub.nmembers) memcpy(m, h->members, h->pub.nmembers * sizeof(uint32_t));
        h->members = m;
        h->capmembers = ncap;
    }
    h->members[h->pub.nmembers++] = user;
    return 0;
}

int fd_batch_scope_event(fd_batch_t *b, fd_str_t scope, const int64_t bucket[FD_GRAN__COUNT],
                         int64_t exposures, int64_t interactions, int64_t late,
                         const fd_str_t *action, unsigned member_grans, fd_step_t step, int coupon,
                         uint32_t user) {
    uint32_t ci[FD_GRAN__COUNT];
    int rc = scope_counters(b, scope, bucket, ci);
    for (int g = 0; rc == 0 && g < FD_GRAN__COUNT; g++) {
        rc = fd_batch_count_at(b, ci[g], exposures, interactions, late, action);
        if (rc == 0 && (member_grans >> g & 1)) rc = member_fast(b, ci[g], step, user);
        if (rc == 0 && coupon) rc = member_fast(b, ci[g], FD_STEP_COUPON, user);
    }
    return rc;
}

int fd_batch_payment(fd_batch_t *b, const fd_batch_payment_t *p) {
    if (grow((void **)&b->payments, &b->cappayments, b->npayments + 1, sizeof(*p)) < 0)
        return -ENOMEM;
    fd_batch_payment_t q = *p;
    char *d = arena_alloc(&b->arena, p->dedup.n ? p->dedup.n : 1);
    uint32_t *ci =
        (uint32_t *)arena_alloc(&b->arena, sizeof(uint32_t) * (p->nbuckets ? p->nbuckets : 1));
    if (!d || !ci) return -ENOMEM;
    memcpy(d, p->dedup.p, p->dedup.n);
    memcpy(ci, p->counters, sizeof(uint32_t) * p->nbuckets);
    q.dedup.p = d;
    q.counters = ci;
    if (p->coupon.n) {
        char *cp = arena_alloc(&b->arena, p->coupon.n);
        if (!cp) return -ENOMEM;
        memcpy(cp, p->coupon.p, p->coupon.n);
        q.coupon.p = cp;
    } else {
        q.coupon.p = NULL;
    }
    b->payments[b->npayments++] = q;
    return 0;
}

int fd_batch_scope(fd_batch_t *b, fd_str_t scope) {
    uint32_t si;
    return scope_index(b, scope, &si);
}

void fd_batch_add_events(fd_batch_t *b, uint64_t n) { b->events += n; }
uint64_t fd_batch_events(const fd_batch_t *b) { return b->events; }
size_t fd_batch_ncounters(const fd_batch_t *b) { return b->ncounters; }

void fd_batch_counter(const fd_batch_t *b, size_t i, fd_batch_counter_t *out) {
    *out = b->counters[i].pub;
    out->actions = b->counters[i].actions;
}

size_t fd_batch_nhll(const fd_batch_t *b) { return b->nhlls; }

void fd_batch_hll(const fd_batch_t *b, size_t i, fd_batch_hll_t *out) {
    *out = b->hlls[i].pub;
    out->members = b->hlls[i].members;
}

fd_str_t fd_batch_user_at(const fd_batch_t *b, uint32_t idx) { return b->users[idx]; }
size_t fd_batch_npayments(const fd_batch_t *b) { return b->npayments; }
const fd_batch_payment_t *fd_batch_payment_at(const fd_batch_t *b, size_t i) {
    return &b->payments[i];
}
size_t fd_batch_nscopes(const fd_batch_t *b) { return b->nscopes; }
fd_str_t fd_batch_scope_at(const fd_batch_t *b, size_t i) { return b->scopes[i]; }

size_t fd_batch_key(char *buf, size_t cap, fd_str_t scope, fd_gran_t g, int64_t bucket, int step) {
    if (scope.n + 48 > cap) return 0;
    memcpy(buf, scope.p, scope.n);
    int n = snprintf(buf + scope.n, cap - scope.n, ":%s:%" PRId64 "%s%s", fd_gran_name(g), bucket,
                     step >= 0 ? ":" : "", step >= 0 ? fd_step_name((fd_step_t)step) : "");
    return scope.n + (size_t)n;
}
