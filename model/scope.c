/*
 * scope.c — scope ids and the cardinality-capped set of scopes (SPEC §3).
 *
 * A scope id names one breakdown of the funnel: "all", or the grouping's
 * "dim=value" pairs in grouping order, comma-joined, each value
 * percent-encoded so that the id can sit between the ':' separators of a
 * Redis key (funnel:c:{scope}:m1:...) and be split back unambiguously.
 * fd_scope_id() is a pure function of (grouping, event); it writes into the
 * caller's buffer and allocates nothing.
 *
 * fd_scopes_t remembers which ids each grouping has admitted. Per grouping it
 * is an open-addressing hash table with linear probing, load factor kept at or
 * below 1/2, growing by doubling from 64 slots. A slot holds the key's 32-bit
 * hash, its length and a pointer to a NUL-terminated copy in the grouping's
 * arena, so a probe compares hash, then length, and only then bytes: a miss
 * almost never touches key memory. The hash is a single-lane xxHash64-style
 * round (8 bytes at a time: multiply, rotate, multiply) with the xxHash64
 * final avalanche; FNV-1a would work too but goes a byte at a time, and
 * scope ids are 20-80 bytes on the hot path (five admits per event). The
 * seed is drawn once per process from the clock and pid, so an adversary
 * feeding product ids cannot prepare colliding keys offline (this is not a
 * cryptographic guarantee, just the cheap half of hash flooding defence; the
 * cap bounds the damage anyway).
 *
 * Memory bound, per grouping: at most `cap` ids. The slot array never grows
 * past next_pow2(2 * cap) slots of 16 bytes (cap 10,000: 32,768 slots,
 * 512 KiB), the arena holds each admitted id once plus a NUL, in 64 KiB
 * chunks (slack < 64 KiB), plus one "__other__" id built on the first
 * overflow. The empty (global) grouping only ever sees "all" and is exempt
 * from the cap, so it never overflows.
 *
 * Invariant: a stored id and the __other__ id never move or change until
 * fd_scopes_free(); callers may keep the pointers fd_scopes_admit() returns
 * (and compare them by address) for the lifetime of the set. Past the cap,
 * every admit of an unknown id returns __other__ and adds 1 to the
 * grouping's overflow counter (it counts admissions, i.e. event-scopes, not
 * distinct values: counting distinct overflowed values would need unbounded
 * memory). Not thread-safe: one set per consumer loop.
 */
#include "model/scope.h"
#include "base/hex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- dimensions ---------------------------------------------------------- */

static const struct {
    const char *name;
    size_t len;
} dim_names[FD_DIM__COUNT] = {
    [FD_DIM_PRODUCT] = {"product", 7},     [FD_DIM_CHANNEL] = {"channel", 7},
    [FD_DIM_COMMUNITY] = {"community", 9}, [FD_DIM_CAMPAIGN] = {"campaign", 8},
    [FD_DIM_CONTENT] = {"content", 7},
};

const char *fd_dim_name(fd_dim_t d) {
    if ((int)d < 0 || d >= FD_DIM__COUNT) return "?";
    return dim_names[d].name;
}

int fd_dim_from_name(const char *s) {
    if (s == NULL) return -1;
    for (int d = 0; d < FD_DIM__COUNT; d++)
        if (strcmp(s, dim_names[d].name) == 0) return d;
    return -1;
}

static const fd_str_t *dim_value(const fd_event_t *ev, fd_dim_t d) {
    switch (d) {
    case FD_DIM_PRODUCT: return &ev->product_id;
    case FD_DIM_CHANNEL: return &ev->channel;
    case FD_DIM_COMMUNITY: return &ev->community_id;
    case FD_DIM_CAMPAIGN: return &ev->campaign_id;
    case FD_DIM_CONTENT: return &ev->content_id;
    default: return NULL;
    }
}

/* ---- encoding ------------------------------------------------------------ */

/* 1 for the bytes SPEC §3 percent-encodes: controls, 0x7F and ,=:{}% space. */
#define C8(x) \
    [x] = 1, [x + 1] = 1, [x + 2] = 1, [x + 3] = 1, [x + 4] = 1, [x + 5] = 1, [x + 6] = 1, \
    [x + 7] = 1
static const unsigned char must_encode[256] = {
    C8(0x00),  C8(0x08),  C8(0x10),  C8(0x18),  [0x7F] = 1, [','] = 1,
    ['='] = 1, [':'] = 1, ['{'] = 1, ['}'] = 1, ['%'] = 1,  [' '] = 1,
};
#undef C8

static const char hexdig[] = "0123456789ABCDEF";

size_t fd_scope_encode(char *out, size_t cap, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t total = 0, w = 0; /* w: bytes written; units are never split */
    size_t room = cap > 0 ? cap - 1 : 0;

    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && !must_encode[u[j]]) j++;
        if (j > i) { /* a run of bytes that pass through */
            size_t run = j - i;
            if (w == total && w < room) {
                size_t k = run <= room - w ? run : room - w;
                memcpy(out + w, s + i, k);
                w += k;
            }
            total += run;
            i = j;
            continue;
        }
        if (w == total && room - w >= 3) {
            out[w] = '%';
            out[w + 1] = hexdig[u[i] >> 4];
            out[w + 2] = hexdig[u[i] & 15];
            w += 3;
        }
        total += 3;
        i++;
    }
    if (cap > 0) out[w] = '\0';
    return total;
}

void fd_scope_decode(char *out, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    if (cap == 0) return;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '%' && i + 2 < n && fd_hexval(s[i + 1]) >= 0 && fd_hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(fd_hexval(s[i + 1]) * 16 + fd_hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

size_t fd_scope_id(char *out, size_t cap, const fd_grouping_t *g, const fd_event_t *ev) {
    if (g->ndims == 0) {
        if (cap < 4) goto too_small;
        memcpy(out, "all", 4);
        return 3;
    }
    /* Check every dimension first so a skip never depends on cap. */
    for (int k = 0; k < g->ndims; k++) {
        const fd_str_t *v = dim_value(ev, g->dims[k]);
        if (v == NULL || v->p == NULL || v->n == 0) return 0;
    }
    size_t pos = 0;
    for (int k = 0; k < g->ndims; k++) {
        const fd_str_t *v = dim_value(ev, g->dims[k]);
        size_t nl = dim_names[g->dims[k]].len;
        size_t need = (k > 0) + nl + 1;
        if (cap - pos <= need) /* also keeps room for the NUL */
            goto too_small;
        if (k > 0) out[pos++] = ',';
        memcpy(out + pos, dim_names[g->dims[k]].name, nl);
        pos += nl;
        out[pos++] = '=';
        size_t el = fd_scope_encode(out + pos, cap - pos, v->p, v->n);
        if (el >= cap - pos) goto too_small;
        pos += el;
    }
    return pos;

too_small:
    if (cap > 0) out[0] = '\0';
    return (size_t)-1;
}

/* ---- the capped set ------------------------------------------------------ */

typedef struct {
    uint32_t h; /* low 32 bits of the key's hash */
    uint32_t len; /* key length in bytes */
    const char *key; /* NUL-terminated copy in the arena; NULL = empty slot */
} slot_t;

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    char data[];
} chunk_t;

typedef struct {
    slot_t *slots;
    uint32_t mask; /* nslots - 1; nslots is a power of two */
    uint32_t count;
    uint64_t overflow;
    char *other; /* "dim=__other__,..." built on the first overflow */
    size_t other_len;
    chunk_t *arena;
    /* fd_scopes_admit_event's index: the same stored ids, hashed from the
     * event's raw dimension values (see there); NULL until first used */
    slot_t *raw;
    uint32_t raw_mask, raw_count;
    const char *all_id; /* the empty grouping's "all", once admitted */
    unsigned dmask; /* the grouping's dimensions (fd_grouping_mask); 0 until first used */
    uint32_t names_len; /* bytes of an id that are not values: "name=" and "," */
    uint8_t pre[FD_DIM__COUNT]; /* bytes before value k: ",", the name, "=" */
} group_t;

struct fd_scopes {
    int ngroupings;
    uint32_t cap;
    uint64_t seed;
    group_t g[];
};

#define MIN_SLOTS 64u
#define CHUNK_BYTES (64u * 1024u)
#define MAX_CAP (1u << 26) /* keeps slot arrays under 2 GiB and 32-bit hashes useful */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t hash_bytes(uint64_t seed, const char *p, size_t n) {
    uint64_t h = seed + P3 + (uint64_t)n * P1;
    uint64_t w;
    while (n >= 8) {
        memcpy(&w, p, 8);
        h = rotl64(h + w * P2, 31) * P1;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, n);
        h = rotl64(h + w * P2, 31) * P1;
    }
    h ^= h >> 33; /* xxHash64 avalanche */
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

static uint64_t process_seed(void) {
    struct timespec ts;
    int local;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * P1 ^ (uint64_t)ts.tv_nsec * P2 ^ (uint64_t)getpid() * P4 ^
                 (uint64_t)(uintptr_t)&local;
    return hash_bytes(x, (const char *)&x, sizeof x);
}

fd_scopes_t *fd_scopes_new(int ngroupings, uint32_t cap, char *err, size_t errlen) {
    if (ngroupings < 1 || ngroupings > FD_MAX_GROUPINGS) {
        snprintf(err, errlen, "groupings: need 1..%d groupings, got %d", FD_MAX_GROUPINGS,
                 ngroupings);
        return NULL;
    }
    if (cap < 1 || cap > MAX_CAP) {
        snprintf(err, errlen, "cardinality_cap: must be 1..%u, got %u", MAX_CAP, cap);
        return NULL;
    }
    fd_scopes_t *s = calloc(1, sizeof *s + (size_t)ngroupings * sizeof(group_t));
    if (s == NULL) goto fail;
    s->ngroupings = ngroupings;
    s->cap = cap;
    s->seed = process_seed();
    for (int i = 0; i < ngroupings; i++) {
        s->g[i].slots = calloc(MIN_SLOTS, sizeof(slot_t));
        if (s->g[i].slots == NULL) goto fail;
        s->g[i].mask = MIN_SLOTS - 1;
    }
    return s;
fail:
    snprintf(err, errlen, "scopes: out of memory");
    fd_scopes_free(s);
    return NULL;
}

void fd_scopes_free(fd_scopes_t *s) {
    if (s == NULL) return;
    for (int i = 0; i < s->ngroupings; i++) {
        group_t *g = &s->g[i];
        for (chunk_t *c = g->arena, *next; c != NULL; c = next) {
            next = c->next;
            free(c);
        }
        free(g->slots);
        free(g->other);
        free(g->raw);
    }
    free(s);
}

static char *arena_copy(group_t *g, const char *p, size_t n) {
    chunk_t *c = g->arena;
    if (c == NULL || c->size - c->used < n + 1) {
        size_t size = n + 1 > CHUNK_BYTES ? n + 1 : CHUNK_BYTES;
        c = malloc(sizeof *c + size);
        if (c == NULL) return NULL;
        c->size = size;
        c->used = 0;
        /* A key bigger than a chunk gets a private chunk behind the head, so
         * the head's free space is not wasted. */
        if (size > CHUNK_BYTES && g->arena != NULL) {
            c->next = g->arena->next;
            g->arena->next = c;
        } else {
            c->next = g->arena;
            g->arena = c;
        }
    }
    char *dst = c->data + c->used;
    memcpy(dst, p, n);
    dst[n] = '\0';
    c->used += n + 1;
    return dst;
}

/* A table of nslots (a power of two) holding the slots of old (old_mask + 1
 * slots, may be NULL), placed by their hash; old is freed. NULL when out of
 * memory (old is kept then). */
static slot_t *rehash(slot_t *old, uint32_t old_mask, uint32_t nslots) {
    uint32_t mask = nslots - 1;
    slot_t *ns = calloc(nslots, sizeof *ns);
    if (ns == NULL) return NULL;
    for (uint32_t i = 0; old && i <= old_mask; i++) {
        if (old[i].key == NULL) continue;
        uint32_t j = old[i].h & mask;
        while (ns[j].key != NULL) j = (j + 1) & mask;
        ns[j] = old[i];
    }
    free(old);
    return ns;
}

static int grow(group_t *g) {
    uint32_t nslots = (g->mask + 1) * 2;
    slot_t *ns = rehash(g->slots, g->mask, nslots);
    if (ns == NULL) return -1;
    g->slots = ns;
    g->mask = nslots - 1;
    return 0;
}

static const char *other_id(group_t *g, const fd_grouping_t *gr, size_t *outlen) {
    if (g->other == NULL) {
        static const char val[] = "=__other__";
        size_t len = 0;
        for (int k = 0; k < gr->ndims; k++)
            len += (k > 0) + dim_names[gr->dims[k]].len + sizeof val - 1;
        char *o = malloc(len + 1);
        if (o == NULL) return NULL;
        size_t pos = 0;
        for (int k = 0; k < gr->ndims; k++) {
            if (k > 0) o[pos++] = ',';
            memcpy(o + pos, dim_names[gr->dims[k]].name, dim_names[gr->dims[k]].len);
            pos += dim_names[gr->dims[k]].len;
            memcpy(o + pos, val, sizeof val - 1);
            pos += sizeof val - 1;
        }
        o[pos] = '\0';
        g->other = o;
        g->other_len = pos;
    }
    *outlen = g->other_len;
    return g->other;
}

const char *fd_scopes_admit(fd_scopes_t *s, int gi, const fd_grouping_t *gr, const char *id,
                            size_t n, size_t *outlen) {
    *outlen = 0;
    if (gi < 0 || gi >= s->ngroupings || n > UINT32_MAX) return NULL;
    group_t *g = &s->g[gi];
    uint32_t h = (uint32_t)hash_bytes(s->seed, id, n);
    uint32_t i = h & g->mask;
    for (;;) {
        const slot_t *sl = &g->slots[i];
        if (sl->key == NULL) break;
        if (sl->h == h && sl->len == n && memcmp(sl->key, id, n) == 0) {
            *outlen = n;
            return sl->key;
        }
        i = (i + 1) & g->mask;
    }
    /* Unknown id: admit it while there is room, else fold into __other__. */
    if (gr->ndims > 0 && g->count >= s->cap) {
        g->overflow++;
        return other_id(g, gr, outlen);
    }
    if ((g->count + 1) * 2 > g->mask + 1) {
        if (grow(g) != 0) return NULL;
        i = h & g->mask;
        while (g->slots[i].key != NULL) i = (i + 1) & g->mask;
    }
    char *key = arena_copy(g, id, n);
    if (key == NULL) return NULL;
    g->slots[i] = (slot_t){.h = h, .len = (uint32_t)n, .key = key};
    g->count++;
    *outlen = n;
    return key;
}

uint64_t fd_scopes_overflow(const fd_scopes_t *s, int gi) {
    if (gi < 0 || gi >= s->ngroupings) return 0;
    return s->g[gi].overflow;
}

/* Splits scope id into dims (bit set) and decoded values. Returns -1 if it
 * is not a well-formed id, 1 if a value is __other__ (skipped), else 0. */
int fd_scope_parse(const char *id, unsigned *set, char vals[FD_DIM__COUNT][256]) {
    *set = 0;
    if (strcmp(id, "all") == 0) return 0;
    int other = 0;
    const char *p = id;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (!eq) return -1;
        char name[32];
        size_t nn = (size_t)(eq - p);
        if (nn >= sizeof name) return -1;
        memcpy(name, p, nn);
        name[nn] = '\0';
        int d = fd_dim_from_name(name);
        if (d < 0 || d >= FD_DIM__COUNT) return -1;
        *set |= 1u << d;
        fd_scope_decode(vals[d], 256, eq + 1, n - nn - 1);
        if (strcmp(vals[d], "__other__") == 0) other = 1;
        p += n;
        if (*p == ',') p++;
    }
    return other;
}

unsigned fd_grouping_mask(const fd_grouping_t *g) {
    unsigned s = 0;
    for (int i = 0; i < g->ndims; i++) s |= 1u << g->dims[i];
    return s;
}

int fd_grouping_has_boards(const fd_grouping_t *g) {
    if (g->ndims == 0) return 0;
    fd_dim_t last = g->dims[g->ndims - 1];
    return last == FD_DIM_CHANNEL || last == FD_DIM_COMMUNITY;
}

size_t fd_grouping_name(char *out, size_t cap, const fd_grouping_t *g) {
    size_t n = 0;
    if (cap > 0) out[0] = '\0';
    for (int d = 0; d < g->ndims; d++) {
        int k = snprintf(out + (n < cap ? n : cap), n < cap ? cap - n : 0, "%s%s", d ? "," : "",
                         fd_dim_name(g->dims[d]));
        if (k > 0) n += (size_t)k;
    }
    return n;
}

/* ---- the hot path: every grouping of one event ---------------------------- */

/*
 * fd_scopes_admit_event gives what fd_scope_id + fd_scopes_admit give, per
 * grouping, without building and hashing five ids per event (they were
 * ~1,800 of the hot path's ~10,700 instructions per event on the reference
 * stream). Each present dimension value is hashed once, raw; a grouping's
 * hash combines its values' hashes in order; a second table per grouping
 * (`raw`) maps that hash to the stored id, and a probe compares the event's
 * raw values with the stored id's value segments in place.
 *
 * Why comparing raw values with a stored id is exact: an id enters `raw`
 * only when encoding changed none of its values (its length is the raw
 * length), so its value segments hold no byte that needs encoding, no ',' in
 * particular. For "n1=X1,n2=X2,..." and raw values v1, v2, ...: equal total
 * length, X1's segment equal to v1 and a ',' right after it force |X1| =
 * |v1| (a shorter X1 would put its ',' inside v1's segment, a longer one
 * would not have ',' at that place), and so on for each value; then
 * vk = Xk = the stored id's raw value. A raw value that needs encoding can
 * never equal such a segment, so it always misses and takes the slow path.
 *
 * A miss takes the slow path (fd_scope_id, fd_scopes_admit: the cap, the
 * overflow count and __other__ are decided there, once per admission as
 * before) and then indexes the admitted id when its values needed no
 * encoding. __other__ is never indexed, so every admission of an unknown
 * id past the cap still goes through fd_scopes_admit and is counted.
 * Memory: `raw` holds at most the admitted ids, so it is never larger than
 * the grouping's own slot array.
 */

#define RAW_ID_MAX 16384 /* > 5 dimensions × (name + 128 code points × 4 bytes × 3) */

/* Reads n (1..8) bytes at p as one word without reading past p + n. */
static inline uint64_t load_tail(const unsigned char *p, size_t n) {
    uint32_t a, b;
    if (n >= 4) {
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        return (uint64_t)a << 32 | b;
    }
    return (uint64_t)p[0] << 16 | (uint64_t)p[n >> 1] << 8 | p[n - 1];
}

/* One value's hash (not avalanched: raw_combine does that once per id). */
static uint64_t raw_hash(uint64_t seed, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = seed + (uint64_t)n * P1, w;
    while (n > 8) {
        memcpy(&w, p, 8);
        h = rotl64(h + w * P2, 31) * P1;
        p += 8;
        n -= 8;
    }
    if (n > 0) h = rotl64(h + load_tail(p, n) * P2, 31) * P1;
    return h;
}

static inline uint32_t raw_combine(const uint64_t *hv, const fd_grouping_t *gr) {
#ifdef FD_SCOPE_TEST_COLLIDE
    /* tests/unit/test_scope_collide.c: every id in one probe chain, so the
     * in-place compare alone must tell ids apart */
    (void)hv;
    (void)gr;
    return 0;
#endif
    uint64_t h = P4;
    for (int k = 0; k < gr->ndims; k++) h = rotl64(h ^ hv[gr->dims[k]], 27) * P1 + P4;
    h ^= h >> 33; /* xxHash64 avalanche */
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* memcmp(a, b, n) == 0 for the short values of the hot path without a call:
 * the loads overlap, so together they cover every byte exactly once or more. */
static inline int same_bytes(const char *a, const char *b, size_t n) {
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    if (n == 0) return 1;
    if (n <= 8) return load_tail(x, n) == load_tail(y, n);
    if (n <= 16) {
        uint64_t p, q, r, t;
        memcpy(&p, x, 8);
        memcpy(&q, y, 8);
        memcpy(&r, x + n - 8, 8);
        memcpy(&t, y + n - 8, 8);
        return p == q && r == t;
    }
    return memcmp(a, b, n) == 0;
}

/* Whether stored id (len n) is grouping gr's id of the raw values val (raw
 * id length len): see the essay above. */
static inline int raw_equal(const char *id, size_t n, size_t len, const fd_grouping_t *gr,
                            const group_t *g, const fd_str_t *const *val) {
    if (n != len) return 0;
    size_t off = 0;
    for (int k = 0; k < gr->ndims; k++) {
        const fd_str_t *v = val[gr->dims[k]];
        off += g->pre[k];
        if (!same_bytes(id + off, v->p, v->n)) return 0;
        off += v->n;
        if (k + 1 < gr->ndims && id[off] != ',') return 0;
    }
    return 1;
}

static int raw_insert(group_t *g, uint32_t h, const char *id, size_t n) {
    if (g->raw == NULL || (g->raw_count + 1) * 2 > g->raw_mask + 1) {
        uint32_t nslots = g->raw ? (g->raw_mask + 1) * 2 : MIN_SLOTS;
        slot_t *ns = rehash(g->raw, g->raw_mask, nslots);
        if (ns == NULL) return -ENOMEM;
        g->raw = ns;
        g->raw_mask = nslots - 1;
    }
    uint32_t i = h & g->raw_mask;
    while (g->raw[i].key != NULL) i = (i + 1) & g->raw_mask;
    g->raw[i] = (slot_t){.h = h, .len = (uint32_t)n, .key = id};
    g->raw_count++;
    return 0;
}

/* A miss: the id built and admitted as fd_scopes_admit does, then indexed.
 * noinline: its 16 KiB buffer and calls stay out of the loop above. */
__attribute__((noinline)) static int admit_slow(fd_scopes_t *s, int gi, const fd_grouping_t *gr,
                                                const fd_event_t *ev, uint32_t h, size_t len,
                                                fd_str_t *out) {
    group_t *g = &s->g[gi];
    char buf[RAW_ID_MAX];
    size_t n = fd_scope_id(buf, sizeof buf, gr, ev), outlen;
    if (n == (size_t)-1) return -E2BIG;
    const char *id = fd_scopes_admit(s, gi, gr, buf, n, &outlen);
    if (id == NULL) return -ENOMEM;
    out->p = id;
    out->n = (uint32_t)outlen;
    if (gr->ndims == 0) g->all_id = id;
    else if (id != g->other && n == len) /* admitted, and no value was encoded */
        if (raw_insert(g, h, id, n) < 0) return -ENOMEM;
    return 0;
}

/* Fills g's constants of grouping gr (ndims > 0) on first use. */
static unsigned group_prepare(group_t *g, const fd_grouping_t *gr) {
    g->names_len = 0;
    for (int k = 0; k < gr->ndims; k++) {
        g->pre[k] = (uint8_t)((k > 0) + dim_names[gr->dims[k]].len + 1);
        g->names_len += g->pre[k];
    }
    g->dmask = fd_grouping_mask(gr);
    return g->dmask;
}

int fd_scopes_admit_event(fd_scopes_t *s, const fd_grouping_t *gs, const fd_event_t *ev,
                          fd_str_t ids[]) {
    const fd_str_t *const val[FD_DIM__COUNT] = {
        [FD_DIM_PRODUCT] = &ev->product_id,     [FD_DIM_CHANNEL] = &ev->channel,
        [FD_DIM_COMMUNITY] = &ev->community_id, [FD_DIM_CAMPAIGN] = &ev->campaign_id,
        [FD_DIM_CONTENT] = &ev->content_id,
    };
    uint64_t hv[FD_DIM__COUNT];
    unsigned present = 0, hashed = 0; /* hv[d] computed: each value is hashed once */
    for (int d = 0; d < FD_DIM__COUNT; d++)
        present |= (unsigned)(val[d]->p != NULL && val[d]->n != 0) << d;
    for (int gi = 0; gi < s->ngroupings; gi++) {
        const fd_grouping_t *gr = &gs[gi];
        group_t *g = &s->g[gi];
        ids[gi].p = NULL;
        ids[gi].n = 0;
        size_t len = 3; /* "all" */
        uint32_t h = 0;
        if (gr->ndims == 0) {
            if (g->all_id != NULL) {
                ids[gi].p = g->all_id;
                ids[gi].n = 3;
                continue;
            }
        } else {
            unsigned need = g->dmask ? g->dmask : group_prepare(g, gr);
            if ((present & need) != need) continue; /* lacks a dimension: no scope */
            for (unsigned m = need & ~hashed; m != 0; m &= m - 1) {
                int d = __builtin_ctz(m);
                hv[d] = raw_hash(s->seed, val[d]->p, val[d]->n);
            }
            hashed |= need;
            len = g->names_len;
            for (int k = 0; k < gr->ndims; k++) len += val[gr->dims[k]]->n;
            h = raw_combine(hv, gr);
            if (g->raw != NULL) {
                const slot_t *sl;
                for (uint32_t i = h & g->raw_mask; (sl = &g->raw[i])->key != NULL;
                     i = (i + 1) & g->raw_mask) {
                    if (sl->h == h && raw_equal(sl->key, sl->len, len, gr, g, val)) {
                        ids[gi].p = sl->key;
                        ids[gi].n = sl->len;
                        break;
                    }
                }
                if (ids[gi].p != NULL) continue;
            }
        }
        int rc = admit_slow(s, gi, gr, ev, h, len, &ids[gi]);
        if (rc < 0) return rc;
    }
    return 0;
}
