/*
 * funneld_gen.c — a deterministic synthetic stream of community-marketing
 * funnel events (SPEC §2), to Kafka or to JSON Lines.
 *
 * The model. Exposures arrive along an event-time clock; each one names a
 * user, a product, a channel, maybe a community (group-like channels only),
 * maybe a campaign, and a piece of content, products, communities, campaigns
 * and contents drawn with Zipf-like popularity (p1 is the most popular
 * product, cmp1 the most popular campaign). An exposure is followed, with
 * its channel's interaction rate, by an interaction of the same user a few
 * seconds to minutes later; an interaction, with its channel's payment
 * rate, by a paid order minutes later; a paid order, rarely, by a refund.
 * Scenario files multiply the interaction and payment rates for a scope
 * (product_id, channel, community_id, campaign_id) over an event-time
 * interval; each decision uses the multipliers in force at the event time
 * of the event it decides on. On top of that, configurable fractions of the
 * emitted messages are out of order (ts set 5-110 s back, within the default
 * 120 s lateness), late (3-30 min back), exact byte copies of an earlier
 * payment re-sent (duplicates), or malformed (one defect each).
 *
 * Time. Without --live, message i of N is emitted at the clock point where
 * the daily curve (a 24-hour intensity in UTC+8, low at night, peaks at
 * lunch and in the evening) has accumulated the fraction (i + 0.5) / N of
 * its integral over [start, start + span]: event times stay inside the span
 * whatever N is. Follow-ups wait in a min-heap until the clock passes their
 * time. With --live, the clock is the wall clock (events are "now").
 *
 * Determinism: one xoshiro256** generator seeded through splitmix64 drives
 * every choice; nothing depends on the wall clock unless --start-ms is left
 * out or --live is given. The same arguments give byte-identical output.
 *
 * Memory: the heap of pending follow-ups (bounded by the events in flight
 * within the longest delay), a small set of payments awaiting their
 * duplicate, and the popularity tables (one double per product, community,
 * campaign and content). Users need no table.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SCENARIOS 64
#define MAX_LINE 2048
#define MAX_DUPS 4096

enum { T_EXPOSURE = 0, T_INTERACTION, T_PAYMENT, T__COUNT };
static const char *const type_names[T__COUNT] = {"exposure", "interaction", "payment"};

/* ------------------------------------------------------------------ rng */

typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng_t *r) { /* xoshiro256** */
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static double rng_unit(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; } /* [0,1) */
static uint64_t rng_below(rng_t *r, uint64_t n) { return n ? rng_next(r) % n : 0; }
static int64_t rng_range(rng_t *r, int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------------ model */

typedef struct {
    const char *name;
    int weight;
    double interaction_rate; /* P(interaction | exposure) */
    double payment_rate; /* P(payment | interaction) */
    int has_community; /* group-like channels carry community_id */
} channel_t;

static const channel_t channels[] = {
    {"wechat_group", 30, 0.10, 0.08, 1},
    {"wechat_moments", 20, 0.04, 0.05, 0},
    {"wechat_official", 12, 0.06, 0.06, 0},
    {"weibo", 10, 0.03, 0.03, 0},
    {"zhihu", 8, 0.05, 0.06, 0},
    {"douban", 4, 0.04, 0.04, 0},
    {"qq_group", 6, 0.08, 0.06, 1},
    {"live", 7, 0.18, 0.12, 1},
    {"other", 3, 0.02, 0.03, 0},
};
#define NCHANNELS ((int)(sizeof channels / sizeof channels[0]))

static const char *const actions[] = {"click", "like", "comment", "share", "join_group", "trial"};
static const int action_w[] = {40, 20, 10, 10, 12, 8};
#define NACTIONS 6

static const int64_t prices[] = {990, 1990, 4990, 9900, 19900, 29900, 99900};

/* Intensity by local hour (UTC+8), interpolated linearly between hours. */
static const double day_curve[24] = {0.50, 0.30, 0.20, 0.15, 0.15, 0.20, 0.40, 0.70,
                                     1.00, 1.10, 1.10, 1.20, 1.40, 1.30, 1.10, 1.00,
                                     1.00, 1.10, 1.30, 1.60, 1.90, 2.00, 1.70, 1.00};
#define TZ_OFFSET_MS (8 * 3600000LL)

static double curve_at(int64_t ts_ms) {
    int64_t local = ts_ms + TZ_OFFSET_MS;
    int64_t ms_of_day = ((local % 86400000LL) + 86400000LL) % 86400000LL;
    double h = (double)ms_of_day / 3600000.0;
    int i = (int)h;
    double f = h - i;
    return day_curve[i % 24] * (1 - f) + day_curve[(i + 1) % 24] * f;
}

/* Zipf-like popularity: cumulative weights 1/k^s, sampled by bisection. */
typedef struct {
    double *cdf;
    uint32_t n;
} zipf_t;

static int zipf_init(zipf_t *z, uint32_t n, double s) {
    z->n = n;
    z->cdf = malloc((size_t)n * sizeof(double));
    if (!z->cdf) return -ENOMEM;
    double acc = 0;
    for (uint32_t k = 0; k < n; k++) z->cdf[k] = acc += 1.0 / pow((double)(k + 1), s);
    for (uint32_t k = 0; k < n; k++) z->cdf[k] /= acc;
    return 0;
}

static uint32_t zipf_draw(const zipf_t *z, rng_t *r) { /* 1-based rank */
    double u = rng_unit(r);
    uint32_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo + 1;
}

/* ------------------------------------------------------------------ scenarios */

enum { M_PRODUCT = 0, M_CHANNEL, M_COMMUNITY, M_CAMPAIGN, M__COUNT };
static const char *const match_keys[M__COUNT] = {"product_id", "channel", "community_id",
                                                 "campaign_id"};

typedef struct {
    int32_t want[M__COUNT]; /* -1 any; else the index the value names; -2 names nothing we generate */
    int64_t from_ms, to_ms; /* offsets from the start, [from, to) */
    double interaction, payment;
} scenario_t;

/* ------------------------------------------------------------------ events */

typedef struct {
    int64_t ts;
    uint64_t order; /* payment: order number */
    uint64_t tie; /* heap tie-breaker: creation sequence */
    uint32_t user, product, community, campaign, content; /* 0 = absent (community, campaign) */
    int64_t amount;
    uint16_t coupon; /* 0 = none */
    uint8_t type, channel, action, refunded;
} ev_t;

typedef struct {
    ev_t *v;
    size_t n, cap;
} heap_t;

static int ev_before(const ev_t *a, const ev_t *b) {
    return a->ts < b->ts || (a->ts == b->ts && a->tie < b->tie);
}

static int heap_push(heap_t *h, const ev_t *e) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 1024;
        ev_t *nv = realloc(h->v, nc * sizeof(ev_t));
        if (!nv) return -ENOMEM;
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0 && ev_before(e, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = *e;
    return 0;
}

static void heap_pop(heap_t *h, ev_t *out) {
    *out = h->v[0];
    ev_t last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && ev_before(&h->v[c + 1], &h->v[c])) c++;
        if (!ev_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
}

/* ------------------------------------------------------------------ options */

typedef struct {
    uint64_t seed;
    uint64_t events; /* 0 = endless (--live only) */
    int64_t start_ms;
    int have_start;
    double hours;
    const char *out;
    const char *brokers;
    const char *topics[T__COUNT];
    const char *mixed;
    double rate;
    int live;
    uint32_t users, products, communities, campaigns, contents;
    double zipf, user_skew;
    double ooo, late, dup, malformed, refunds, no_campaign;
    int lean;
    const char *scenario_path;
    int64_t probe_ms;
    const char *probe_log;
    int quiet;
    int nprops;
    char *props[64];
    const char *drop_product; /* --drop-product: a built-in conversion-drop scenario */
    int64_t drop_after_ms, drop_for_ms;
    double drop_payment;
    int warm_start;
} opts_t;

typedef struct {
    opts_t o;
    rng_t rng;
    zipf_t zp, zc, zk, zt;
    scenario_t sc[MAX_SCENARIOS];
    int nsc;
    heap_t heap;
    uint64_t tie, orders, exposures;
    double *cum; /* non-live: cumulative curve weight per minute of the span */
    size_t ncum;
    /* duplicates waiting for their turn: (due emission index, bytes) */
    struct {
        uint64_t due;
        char *line;
        size_t len;
        uint64_t order;
        int type;
    } dups[MAX_DUPS];
    int ndups;
    /* sinks */
    FILE *out;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt[T__COUNT];
    FILE *probe_log;
    /* counts */
    uint64_t emitted, by_type[T__COUNT], refunds, dup_sent, malformed, ooo, late, failed, probes;
} gen_t;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static int64_t wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* "90", "90s", "30m", "2h" → milliseconds; -1 when malformed. */
static int64_t parse_duration_ms(const cJSON *v) {
    if (cJSON_IsNumber(v)) return (int64_t)(v->valuedouble * 1000.0);
    if (!cJSON_IsString(v)) return -1;
    char *end = NULL;
    double x = strtod(v->valuestring, &end);
    if (end == v->valuestring || x < 0) return -1;
    double unit = 1000;
    if (*end == 's') unit = 1000, end++;
    else if (*end == 'm') unit = 60000, end++;
    else if (*end == 'h') unit = 3600000, end++;
    else if (*end == 'd') unit = 86400000, end++;
    if (*end) return -1;
    return (int64_t)(x * unit);
}

/* "p12" with prefix "p" → 12 if 1..n, else -2 (matches nothing we generate). */
static int32_t name_index(const char *s, const char *prefix, uint32_t n) {
    size_t pl = strlen(prefix);
    if (strncmp(s, prefix, pl) != 0 || !s[pl]) return -2;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s + pl, &end, 10);
    if (*end || errno || v < 1 || v > n || s[pl] == '0') return -2;
    return (int32_t)v;
}

static int load_scenarios(gen_t *g, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "funneld-gen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *nt = realloc(text, cap);
            if (!nt) break;
            text = nt;
        }
        size_t n = fread(text + len, 1, cap - len - 1, fp);
        len += n;
        if (n == 0) break;
    }
    fclose(fp);
    if (!text) return -1;
    text[len] = 0;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = -1;
    const cJSON *list = root;
    if (cJSON_IsObject(root)) list = cJSON_GetObjectItemCaseSensitive(root, "scenarios");
    if (!cJSON_IsArray(list)) {
        fprintf(stderr,
                "funneld-gen: %s: want a JSON list of scenarios (or {\"scenarios\": [...]})\n", path);
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach (it, list) {
        if (g->nsc == MAX_SCENARIOS) {
            fprintf(stderr, "funneld-gen: %s: more than %d scenarios\n", path, MAX_SCENARIOS);
            goto out;
        }
        scenario_t *s = &g->sc[g->nsc];
        for (int k = 0; k < M__COUNT; k++) s->want[k] = -1;
        s->from_ms = 0;
        s->to_ms = INT64_MAX;
        s->interaction = s->payment = 1.0;
        const cJSON *f;
        cJSON_ArrayForEach (f, it) {
            const char *k = f->string;
            if (!strcmp(k, "match") || !strcmp(k, "scope")) {
                const cJSON *m;
                cJSON_ArrayForEach (m, f) {
                    int mk = -1;
                    for (int j = 0; j < M__COUNT; j++)
                        if (!strcmp(m->string, match_keys[j])) mk = j;
                    if (mk < 0 || !cJSON_IsString(m)) {
                        fprintf(stderr,
                                "funneld-gen: %s: scenario %d: match key \"%s\" (want a string "
                                "value for "
                                "product_id, channel, community_id or campaign_id)\n",
                                path, g->nsc, m->string);
                        goto out;
                    }
                    const char *v = m->valuestring;
                    int32_t idx = -2;
                    if (mk == M_PRODUCT) idx = name_index(v, "p", g->o.products);
                    else if (mk == M_COMMUNITY) idx = name_index(v, "c", g->o.communities);
                    else if (mk == M_CAMPAIGN) idx = name_index(v, "cmp", g->o.campaigns);
                    else
                        for (int c = 0; c < NCHANNELS; c++)
                            if (!strcmp(v, channels[c].name)) idx = c;
                    if (idx == -2)
                        fprintf(stderr,
                                "funneld-gen: warning: scenario %d: %s \"%s\" is never generated\n",
                                g->nsc, match_keys[mk], v);
                    s->want[mk] = idx;
                }
            } else if (!strcmp(k, "from") || !strcmp(k, "to")) {
                int64_t ms = parse_duration_ms(f);
                if (ms < 0) {
                    fprintf(
                        stderr,
                        "funneld-gen: %s: scenario %d: bad \"%s\" (seconds, or \"30m\", \"2h\")\n",
                        path, g->nsc, k);
                    goto out;
                }
                if (!strcmp(k, "from")) s->from_ms = ms;
                else s->to_ms = ms;
            } else if (!strcmp(k, "interaction") || !strcmp(k, "payment")) {
                if (!cJSON_IsNumber(f) || f->valuedouble < 0) {
                    fprintf(stderr, "funneld-gen: %s: scenario %d: \"%s\" wants a number >= 0\n",
                            path, g->nsc, k);
                    goto out;
                }
                if (!strcmp(k, "interaction")) s->interaction = f->valuedouble;
                else s->payment = f->valuedouble;
            } else if (strcmp(k, "name") != 0 && strcmp(k, "comment") != 0) {
                fprintf(stderr, "funneld-gen: %s: scenario %d: unknown key \"%s\"\n", path, g->nsc,
                        k);
                goto out;
            }
        }
        g->nsc++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* Product of the multipliers of every scenario in force for e at time ts. */
static void multipliers(const gen_t *g, const ev_t *e, int64_t ts, double *mi, double *mp) {
    *mi = *mp = 1.0;
    int64_t off = ts - g->o.start_ms;
    for (int i = 0; i < g->nsc; i++) {
        const scenario_t *s = &g->sc[i];
        if (off < s->from_ms || off >= s->to_ms) continue;
        if (s->want[M_PRODUCT] != -1 && s->want[M_PRODUCT] != (int32_t)e->product) continue;
        if (s->want[M_CHANNEL] != -1 && s->want[M_CHANNEL] != (int32_t)e->channel) continue;
        if (s->want[M_COMMUNITY] != -1 && s->want[M_COMMUNITY] != (int32_t)e->community) continue;
        if (s->want[M_CAMPAIGN] != -1 && s->want[M_CAMPAIGN] != (int32_t)e->campaign) continue;
        *mi *= s->interaction;
        *mp *= s->payment;
    }
}

/* --drop-product: one more scenario, product P's payment rate times
 * --drop-payment over [after, after + for) from the start. A product the
 * stream never names is an error here (a scenario file only warns): the
 * quick start would otherwise show no alert without saying why. */
static int add_drop_scenario(gen_t *g) {
    const opts_t *o = &g->o;
    int32_t idx = name_index(o->drop_product, "p", o->products);
    if (idx < 0) {
        fprintf(stderr, "funneld-gen: --drop-product \"%s\" is not one of p1..p%" PRIu32 "\n",
                o->drop_product, o->products);
        return -1;
    }
    if (g->nsc == MAX_SCENARIOS) {
        fprintf(stderr, "funneld-gen: more than %d scenarios\n", MAX_SCENARIOS);
        return -1;
    }
    scenario_t *s = &g->sc[g->nsc++];
    for (int k = 0; k < M__COUNT; k++) s->want[k] = -1;
    s->want[M_PRODUCT] = idx;
    s->from_ms = o->drop_after_ms;
    s->to_ms = o->drop_after_ms + o->drop_for_ms;
    s->interaction = 1.0;
    s->payment = o->drop_payment;
    return 0;
}

/* ------------------------------------------------------------------ time */

/* Cumulative curve weight per minute over the span, for the inverse map. */
static int build_clock(gen_t *g) {
    int64_t span = (int64_t)(g->o.hours * 3600000.0);
    g->ncum = (size_t)(span / 60000) + 2;
    g->cum = malloc(g->ncum * sizeof(double));
    if (!g->cum) return -ENOMEM;
    g->cum[0] = 0;
    for (size_t i = 1; i < g->ncum; i++) {
        int64_t mid = g->o.start_ms + (int64_t)(i - 1) * 60000 + 30000;
        g->cum[i] = g->cum[i - 1] + curve_at(mid);
    }
    return 0;
}

/* Event time of emission i of N: where the curve's integral reaches (i+0.5)/N. */
static int64_t clock_at(const gen_t *g, uint64_t i) {
    int64_t span = (int64_t)(g->o.hours * 3600000.0);
    double total_min = (double)span / 60000.0;
    size_t whole = (size_t)total_min;
    /* the integral over [0, span] is cum[whole] plus the partial last minute */
    double total = g->cum[whole] + (total_min - (double)whole) * (g->cum[whole + 1] - g->cum[whole]);
    double target = ((double)i + 0.5) / (double)g->o.events * total;
    size_t lo = 0, hi = whole + 1;
    while (lo + 1 < hi) { /* last minute boundary with cum <= target */
        size_t mid = (lo + hi) / 2;
        if (g->cum[mid] <= target) lo = mid;
        else hi = mid;
    }
    double w = g->cum[lo + 1] - g->cum[lo];
    double frac = w > 0 ? (target - g->cum[lo]) / w : 0;
    int64_t t = g->o.start_ms + (int64_t)lo * 60000 + (int64_t)(frac * 60000.0);
    int64_t endt = g->o.start_ms + span;
    return t > endt ? endt : t;
}

/* ------------------------------------------------------------------ generation */

static int schedule(gen_t *g, ev_t *e) {
    e->tie = g->tie++;
    return heap_push(&g->heap, e);
}

/* A new exposure at time t and its follow-ups. */
static int new_exposure(gen_t *g, int64_t t, ev_t *out) {
    rng_t *r = &g->rng;
    ev_t e;
    memset(&e, 0, sizeof e);
    e.type = T_EXPOSURE;
    e.ts = t;
    /* users: u^skew over the id space, so low ids are heavy users; skew 0:
     * a new user per exposure until the id space wraps (a prime stride) */
    double u = rng_unit(r);
    if (g->o.user_skew == 0) {
        e.user = 1 + (uint32_t)((g->exposures * 2654435761ULL) % g->o.users);
    } else {
        e.user = 1 + (uint32_t)((double)g->o.users * pow(u, g->o.user_skew));
        if (e.user > g->o.users) e.user = g->o.users;
    }
    g->exposures++;
    e.product = zipf_draw(&g->zp, r);
    int w = (int)rng_below(r, 100), c = 0;
    while (c < NCHANNELS - 1 && w >= channels[c].weight) w -= channels[c++].weight;
    e.channel = (uint8_t)c;
    e.community = channels[c].has_community ? zipf_draw(&g->zc, r) : 0;
    e.campaign = rng_unit(r) < g->o.no_campaign ? 0 : zipf_draw(&g->zk, r);
    e.content = zipf_draw(&g->zt, r);
    *out = e;

    /* interaction, decided at its own event time */
    int64_t ti = t + rng_range(r, 1000, 120000);
    double mi, mp;
    multipliers(g, &e, ti, &mi, &mp);
    if (rng_unit(r) >= channels[c].interaction_rate * mi) return 0;
    ev_t in = e;
    in.type = T_INTERACTION;
    in.ts = ti;
    w = (int)rng_below(r, 100);
    int a = 0;
    while (a < NACTIONS - 1 && w >= action_w[a]) w -= action_w[a++];
    in.action = (uint8_t)a;
    if (schedule(g, &in) < 0) return -ENOMEM;

    int64_t tp = ti + rng_range(r, 10000, 900000);
    multipliers(g, &e, tp, &mi, &mp);
    if (rng_unit(r) >= channels[c].payment_rate * mp) return 0;
    ev_t pay = e;
    pay.type = T_PAYMENT;
    pay.ts = tp;
    pay.order = ++g->orders;
    pay.amount = prices[(e.product * 7u) % (sizeof prices / sizeof prices[0])];
    if (rng_below(r, 5) == 0) {
        pay.coupon = (uint16_t)(1 + rng_below(r, 20));
        pay.amount = pay.amount * 8 / 10;
    }
    if (schedule(g, &pay) < 0) return -ENOMEM;
    if (rng_unit(r) < g->o.refunds) {
        ev_t ref = pay;
        ref.refunded = 1;
        ref.ts = tp + rng_range(r, 300000, 3600000);
        if (schedule(g, &ref) < 0) return -ENOMEM;
    }
    return 0;
}

/* Defects, one per malformed message. */
enum {
    D_NONE = 0,
    D_TRUNCATED,
    D_NO_USER,
    D_BAD_TYPE_PRODUCT,
    D_UNKNOWN_TYPE,
    D_BAD_TS,
    D_NEG_AMOUNT,
    D_NOT_OBJECT,
    D_BAD_UTF8,
    D__COUNT
};

#define PUT(...) \
    do { \
        int k_ = snprintf(b + n, cap - n, __VA_ARGS__); \
        if (k_ < 0 || (size_t)k_ >= cap - n) return 0; \
        n += (size_t)k_; \
    } while (0)

/* Writes message seq of event e (ts already final) into b; returns its length. */
static size_t format_event(const gen_t *g, const ev_t *e, uint64_t seq, int defect, char *b,
                           size_t cap) {
    size_t n = 0;
    static const char *const os[] = {"iOS 17.2", "Android 14", "Android 13", "iOS 16.7",
                                     "HarmonyOS 4.0"};
    static const char *const net[] = {"wifi", "5g", "4g"};
    static const char *const page[] = {"/pages/course/detail", "/pages/live/room",
                                       "/pages/column/index", "/pages/share/landing"};
    static const char *const ref[] = {"share_card", "group_msg", "moments_feed", "qr_poster",
                                      "search"};
    if (defect == D_NOT_OBJECT) PUT("[");
    PUT("{\"event_id\":\"ev-%" PRIx64 "-%010" PRIu64 "\"", g->o.seed & 0xFFFFFFFFu, seq);
    PUT(",\"type\":\"%s\"", defect == D_UNKNOWN_TYPE ? "purchase" : type_names[e->type]);
    if (defect == D_BAD_TS) PUT(",\"ts\":\"2024-13-45T25:00:00Z\"");
    else PUT(",\"ts\":%" PRId64, e->ts);
    if (defect != D_NO_USER) PUT(",\"user_id\":\"u%07" PRIu32 "\"", e->user);
    if (defect == D_BAD_TYPE_PRODUCT) PUT(",\"product_id\":%" PRIu32, e->product);
    else PUT(",\"product_id\":\"p%" PRIu32 "\"", e->product);
    if (e->community) PUT(",\"community_id\":\"c%" PRIu32 "\"", e->community);
    PUT(",\"channel\":\"%s\"", channels[e->channel].name);
    if (e->campaign) PUT(",\"campaign_id\":\"cmp%" PRIu32 "\"", e->campaign);
    PUT(",\"content_id\":\"ct%05" PRIu32 "\"", e->content);
    if (e->type == T_INTERACTION) PUT(",\"action\":\"%s\"", actions[e->action]);
    if (e->type == T_PAYMENT) {
        PUT(",\"order_id\":\"o-%" PRIx64 "-%09" PRIu64 "\"", g->o.seed & 0xFFFFFFFFu, e->order);
        PUT(",\"amount\":%" PRId64, defect == D_NEG_AMOUNT ? -e->amount : e->amount);
        PUT(",\"currency\":\"CNY\",\"status\":\"%s\"", e->refunded ? "refunded" : "paid");
        if (e->coupon) PUT(",\"coupon_id\":\"cp%u\"", (unsigned)e->coupon);
    }
    if (!g->o.lean) /* what tracking SDKs send along; funneld ignores it */
        PUT(",\"ctx\":{\"sdk\":\"wxmp/"
            "3.4.%u\",\"os\":\"%s\",\"net\":\"%s\",\"page\":\"%s\",\"ref\":\"%s\",\"sid\":\"%"
            "08" PRIx32 "\"}",
            (unsigned)(e->user % 10), os[e->user % 5], net[(e->user >> 3) % 3], page[e->content % 4],
            ref[(e->content + e->channel) % 5], (uint32_t)(e->user * 2654435761u));
    if (defect == D_BAD_UTF8) PUT(",\"note\":\"\xC3\x28\"");
    PUT("}");
    if (defect == D_NOT_OBJECT) PUT("]");
    if (defect == D_TRUNCATED) n = n / 2;
    return n;
}

/* ------------------------------------------------------------------ output */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    gen_t *g = opaque;
    if (m->err) g->failed++;
}

static int open_kafka(gen_t *g) {
    char err[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *defaults[] = {"bootstrap.servers",
                              g->o.brokers,
                              "linger.ms",
                              "20",
                              "batch.num.messages",
                              "10000",
                              "queue.buffering.max.messages",
                              "500000",
                              "queue.buffering.max.kbytes",
                              "1048576",
                              "enable.idempotence",
                              "true",
                              NULL};
    for (int i = 0; defaults[i]; i += 2)
        if (rd_kafka_conf_set(kc, defaults[i], defaults[i + 1], err, sizeof err) != RD_KAFKA_CONF_OK)
            goto fail;
    for (int i = 0; i < g->o.nprops; i++) {
        char *eq = strchr(g->o.props[i], '=');
        if (!eq) {
            snprintf(err, sizeof err, "-X wants name=value, got \"%s\"", g->o.props[i]);
            goto fail;
        }
        *eq = 0;
        rd_kafka_conf_res_t r = rd_kafka_conf_set(kc, g->o.props[i], eq + 1, err, sizeof err);
        *eq = '=';
        if (r != RD_KAFKA_CONF_OK) goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_opaque(kc, g);
    g->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof err);
    if (!g->rk) {
        fprintf(stderr, "funneld-gen: kafka: %s\n", err);
        return -1;
    }
    for (int t = 0; t < T__COUNT; t++) {
        const char *name = g->o.mixed ? g->o.mixed : g->o.topics[t];
        if (t > 0 && g->o.mixed) {
            g->rkt[t] = g->rkt[0];
            continue;
        }
        g->rkt[t] = rd_kafka_topic_new(g->rk, name, NULL);
        if (!g->rkt[t]) {
            fprintf(stderr, "funneld-gen: topic %s: %s\n", name,
                    rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }
    return 0;
fail:
    fprintf(stderr, "funneld-gen: kafka: %s\n", err);
    rd_kafka_conf_destroy(kc);
    return -1;
}

static int emit_bytes(gen_t *g, int type, const char *line, size_t len, const char *key,
                      size_t keylen) {
    if (g->out) {
        fwrite(line, 1, len, g->out);
        fputc('\n', g->out);
    }
    if (g->rk) {
        while (rd_kafka_produce(g->rkt[type], RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                (void *)line, len, key, keylen, NULL) != 0) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "funneld-gen: produce: %s\n", rd_kafka_err2str(e));
                return -1;
            }
            rd_kafka_poll(g->rk, 50);
            if (stop_flag) return -1;
        }
        rd_kafka_poll(g->rk, 0);
    }
    return 0;
}

/* Kafka key: an order's payments and refunds share one partition (the
 * order id); exposures and interactions go by user. */
static size_t event_key(const gen_t *g, const ev_t *e, char *k, size_t cap) {
    int n = e->type == T_PAYMENT
                ? snprintf(k, cap, "o-%" PRIx64 "-%09" PRIu64, g->o.seed & 0xFFFFFFFFu, e->order)
                : snprintf(k, cap, "u%07" PRIu32, e->user);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Emits one generated event as message number g->emitted, applying the
 * message-level faults (out of order, late, malformed, duplicate). */
static int emit_event(gen_t *g, ev_t *e) {
    rng_t *r = &g->rng;
    char line[MAX_LINE], key[64];
    double x = rng_unit(r);
    if (x < g->o.late) {
        e->ts -= rng_range(r, 180000, 1800000);
        g->late++;
    } else if (x < g->o.late + g->o.ooo) {
        e->ts -= rng_range(r, 5000, 110000);
        g->ooo++;
    }
    int defect = D_NONE;
    if (rng_unit(r) < g->o.malformed) {
        defect = 1 + (int)rng_below(r, D__COUNT - 1);
        if (defect == D_NEG_AMOUNT && e->type != T_PAYMENT) defect = D_BAD_TS;
        g->malformed++;
    }
    size_t len = format_event(g, e, g->emitted, defect, line, sizeof line);
    size_t klen = event_key(g, e, key, sizeof key);
    if (!len || emit_bytes(g, e->type, line, len, key, klen) < 0) return -1;
    g->emitted++;
    if (!defect) {
        g->by_type[e->type]++;
        if (e->type == T_PAYMENT && e->refunded) g->refunds++;
    }
    if (e->type == T_PAYMENT && !defect && g->ndups < MAX_DUPS && rng_unit(r) < g->o.dup) {
        char *copy = malloc(len);
        if (copy) {
            memcpy(copy, line, len);
            int i = g->ndups++;
            g->dups[i].due = g->emitted + 1 + rng_below(r, 2000);
            g->dups[i].line = copy;
            g->dups[i].len = len;
            g->dups[i].order = e->order;
            g->dups[i].type = T_PAYMENT;
        }
    }
    return 0;
}

/* Re-sends a duplicate whose turn has come; 1 if one was sent. */
static int emit_due_dup(gen_t *g) {
    for (int i = 0; i < g->ndups; i++) {
        if (g->dups[i].due > g->emitted) continue;
        char key[64];
        ev_t k;
        memset(&k, 0, sizeof k);
        k.type = T_PAYMENT;
        k.order = g->dups[i].order;
        size_t klen = event_key(g, &k, key, sizeof key);
        int rc = emit_bytes(g, T_PAYMENT, g->dups[i].line, g->dups[i].len, key, klen);
        free(g->dups[i].line);
        g->dups[i] = g->dups[--g->ndups];
        if (rc < 0) return -1;
        g->emitted++;
        g->dup_sent++;
        return 1;
    }
    return 0;
}

/* Latency probe: an exposure of product __probe__ stamped with the wall
 * clock, logged as "seq wall_ms m1_bucket_s" for bench/latency.sh. */
static int emit_probe(gen_t *g) {
    char line[256];
    int64_t now = wall_ms();
    int n = snprintf(line, sizeof line,
                     "{\"event_id\":\"probe-%" PRIu64 "-%" PRId64
                     "\",\"type\":\"exposure\",\"ts\":%" PRId64
                     ",\"user_id\":\"probe\",\"product_id\":\"__probe__\",\"channel\":\"other\"}",
                     g->probes, now, now);
    if (emit_bytes(g, T_EXPOSURE, line, (size_t)n, "probe", 5) < 0) return -1;
    if (g->probe_log) {
        fprintf(g->probe_log, "%" PRIu64 " %" PRId64 " %" PRId64 "\n", g->probes, now,
                (now / 60000) * 60);
        fflush(g->probe_log);
    }
    g->probes++;
    return 0;
}

static void progress(gen_t *g, double t0, int final) {
    double el = mono_s() - t0;
    fprintf(stderr, "\r  %12" PRIu64 " events  %10.0f/s  %6.1fs", g->emitted,
            el > 0 ? (double)g->emitted / el : 0, el);
    if (g->o.events) fprintf(stderr, "  %5.1f%%", 100.0 * (double)g->emitted / (double)g->o.events);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static int run(gen_t *g) {
    int tty = !g->o.quiet && isatty(2);
    double t0 = mono_s(), next_progress = t0 + 0.5;
    int64_t next_probe = g->o.probe_ms ? wall_ms() : INT64_MAX;
    uint64_t n = g->o.events;
    int rc = 0;
    while (!stop_flag && (n == 0 || g->emitted < n)) {
        if (g->o.rate > 0) { /* pace: message i is due at t0 + i / rate */
            double due = t0 + (double)g->emitted / g->o.rate, now = mono_s();
            if (due > now + 0.0005) {
                double d = due - now;
                struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
                if (g->rk) rd_kafka_poll(g->rk, 0);
                nanosleep(&ts, NULL);
            }
        }
        if (g->o.probe_ms && wall_ms() >= next_probe) {
            if (emit_probe(g) < 0) {
                rc = -1;
                break;
            }
            next_probe += g->o.probe_ms;
        }
        int d = emit_due_dup(g);
        if (d < 0) {
            rc = -1;
            break;
        }
        if (d == 0) {
            int64_t clock = g->o.live ? wall_ms() : clock_at(g, g->emitted);
            ev_t e;
            if (g->heap.n && g->heap.v[0].ts <= clock) heap_pop(&g->heap, &e);
            else if (new_exposure(g, clock, &e) < 0) {
                rc = -1;
                break;
            }
            if (emit_event(g, &e) < 0) {
                rc = -1;
                break;
            }
        }
        if (tty && (g->emitted & 1023) == 0 && mono_s() >= next_progress) {
            progress(g, t0, 0);
            next_progress = mono_s() + 0.5;
        }
    }
    if (g->rk) {
        if (tty) fprintf(stderr, "\n  flushing the producer queue...");
        while (rd_kafka_outq_len(g->rk) > 0 && !(stop_flag > 1)) rd_kafka_flush(g->rk, 500);
    }
    if (tty) progress(g, t0, 1);
    if (!g->o.quiet)
        fprintf(stderr,
                "funneld-gen: %" PRIu64 " messages in %.2fs: exposures=%" PRIu64
                " interactions=%" PRIu64 " payments=%" PRIu64 " (refunds=%" PRIu64
                ") duplicates=%" PRIu64 " malformed=%" PRIu64 " out_of_order=%" PRIu64
                " late=%" PRIu64 " probes=%" PRIu64 " failed=%" PRIu64 "\n",
                g->emitted, mono_s() - t0, g->by_type[0], g->by_type[1], g->by_type[2], g->refunds,
                g->dup_sent, g->malformed, g->ooo, g->late, g->probes, g->failed);
    return rc < 0 || g->failed ? -1 : 0;
}

/* --warm-start: a stream that looks as if it had been running. A payment
 * follows its exposure by up to 2 + 15 min, so a stream that starts cold has
 * few payments at first. This draws the exposures of the WARM_MS before the
 * start at the stream's exposure rate at its start (--rate, or the clock's
 * first minute without --live, divided by the messages one exposure brings
 * on average) and keeps only their follow-ups that fall at or after the
 * start. */
#define WARM_MS (17 * 60000LL)
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}
static int warm_start(gen_t *g) {
    double follow = 0; /* expected messages after an exposure */
    for (int c = 0; c < NCHANNELS; c++) {
        double pay = channels[c].interaction_rate * channels[c].payment_rate;
        follow += channels[c].weight / 100.0 *
                  (channels[c].interaction_rate + pay * (1 + g->o.refunds + g->o.dup));
    }
    double msg_s = g->o.rate; /* messages per second at the start */
    if (!g->o.live) { /* the clock's density over its first minute */
        double total_min = g->o.hours * 60.0;
        size_t whole = (size_t)total_min;
        double total =
            g->cum[whole] + (total_min - (double)whole) * (g->cum[whole + 1] - g->cum[whole]);
        msg_s = (double)g->o.events * g->cum[1] / total / 60.0;
    }
    double per_s = msg_s / (1 + follow);
    int64_t n = (int64_t)(per_s * (double)WARM_MS / 1000.0);
    int64_t from = g->o.start_ms - WARM_MS;
    for (int64_t i = 0; i < n; i++) {
        ev_t e;
        if (new_exposure(g, from + (int64_t)((double)(i * WARM_MS) / (double)n), &e) < 0) return -1;
    }
    /* drop what falls before the start, and the refunds of the paid orders
     * dropped so (a refund never comes without its payment) */
    heap_t old = g->heap;
    memset(&g->heap, 0, sizeof g->heap);
    uint64_t *gone = malloc((old.n + 1) * sizeof *gone);
    size_t ngone = 0;
    int rc = gone ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < old.n; i++)
        if (old.v[i].ts < g->o.start_ms && old.v[i].type == T_PAYMENT && !old.v[i].refunded)
            gone[ngone++] = old.v[i].order;
    if (rc == 0) qsort(gone, ngone, sizeof *gone, cmp_u64);
    for (size_t i = 0; rc == 0 && i < old.n; i++) {
        const ev_t *e = &old.v[i];
        if (e->ts < g->o.start_ms) continue;
        if (e->refunded && bsearch(&e->order, gone, ngone, sizeof *gone, cmp_u64)) continue;
        rc = heap_push(&g->heap, e);
    }
    free(gone);
    free(old.v);
    return rc;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f) {
    fprintf(
        f, "usage: funneld-gen [options]   (--out FILE|- and/or --brokers LIST)\n"
           "\n"
           "  --seed N             PRNG seed (default 1); same options + seed = same bytes\n"
           "  --events N           messages to emit (default 100000; 0 = endless, --live only)\n"
           "  --start-ms MS        event time of the start (default: now - span - 1 min)\n"
           "  --hours H            event-time span (default 1)\n"
           "  --live               event time = wall clock at send (with --rate: a live feed)\n"
           "  --rate N             messages per second (default: flat out)\n"
           "  --out FILE|-         JSON Lines output\n"
           "  --brokers LIST       Kafka bootstrap servers\n"
           "  --topics E,I,P       topics per type (default "
           "funnel.exposure,funnel.interaction,funnel.payment)\n"
           "  --mixed TOPIC        one topic for every type instead\n"
           "  -X NAME=VALUE        librdkafka producer property\n"
           "  --users N            distinct users (default 100000)\n"
           "  --user-skew S        user id = users * u^S; 1 = uniform (default 2); 0 = every "
           "exposure\n"
           "                       a new user until all --users are used\n"
           "  --products N         products p1..pN (default 50)\n"
           "  --communities N      communities c1..cN (default 500)\n"
           "  --campaigns N        campaigns cmp1..cmpN (default 40)\n"
           "  --contents N         content ids (default 2000)\n"
           "  --zipf S             popularity exponent (default 1.1)\n"
           "  --ooo F              fraction out of order, within lateness (default 0.02)\n"
           "  --late F             fraction late, 3-30 min back (default 0.002)\n"
           "  --dup F              fraction of payments re-sent as exact copies (default 0.02)\n"
           "  --malformed F        fraction malformed (default 0.001)\n"
           "  --refunds F          fraction of paid orders refunded later (default 0.03)\n"
           "  --no-campaign F      fraction of exposures without campaign_id (default 0.25)\n"
           "  --lean               leave out the SDK context object (events ~180 instead of ~300 "
           "bytes)\n"
           "  --scenario FILE      rate multipliers: [{\"match\": {\"product_id\": \"p1\"}, "
           "\"from\": \"20m\",\n"
           "                       \"to\": \"40m\", \"interaction\": 1.0, \"payment\": 0.2}, ...]\n"
           "                       (from/to: event-time offsets from the start; seconds or "
           "30s/20m/2h/1d)\n"
           "  --probe-ms MS        latency probes (product __probe__) every MS of wall time\n"
           "  --probe-log FILE     where probes are logged: SEQ WALL_MS M1_BUCKET\n"
           "  --quiet              no progress, no summary\n"
           "  --drop-product P     conversion drop: product P's payment rate times --drop-payment\n"
           "                       from --drop-after to --drop-after + --drop-for (event-time\n"
           "                       offsets from the start, like --scenario; with --live, from the\n"
           "                       moment it starts): the quick start's alert scenario\n"
           "  --drop-after D       (default 180s)\n"
           "  --drop-for D         (default 240s); D: seconds or 30s/20m/2h/1d\n"
           "  --drop-payment F     payment-rate multiplier during the drop, [0, 1] (default 0.1)\n"
           "  --warm-start         start in steady state: the exposures of the 17 min before\n"
           "                       the start are drawn but not sent, so their interactions and\n"
           "                       payments arrive from the first second (without it payments\n"
           "                       ramp up over ~15 min, which a conversion-drop rule reports\n"
           "                       as a drop); with --live it needs --rate\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "funneld-gen: %s wants a number in [%g, %g], got \"%s\"\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, opts_t *o) {
    enum {
        O_SEED = 256,
        O_EVENTS,
        O_START,
        O_HOURS,
        O_LIVE,
        O_RATE,
        O_OUT,
        O_BROKERS,
        O_TOPICS,
        O_MIXED,
        O_USERS,
        O_SKEW,
        O_PRODUCTS,
        O_COMMUNITIES,
        O_CAMPAIGNS,
        O_CONTENTS,
        O_ZIPF,
        O_OOO,
        O_LATE,
        O_DUP,
        O_MALFORMED,
        O_REFUNDS,
        O_NOCAMP,
        O_LEAN,
        O_SCENARIO,
        O_PROBE,
        O_PROBELOG,
        O_QUIET,
        O_HELP,
        O_DROP_PRODUCT,
        O_DROP_AFTER,
        O_DROP_FOR,
        O_DROP_PAYMENT,
        O_WARM
    };
    static const struct option lo[] = {{"seed", 1, 0, O_SEED},
                                       {"events", 1, 0, O_EVENTS},
                                       {"start-ms", 1, 0, O_START},
                                       {"hours", 1, 0, O_HOURS},
                                       {"live", 0, 0, O_LIVE},
                                       {"rate", 1, 0, O_RATE},
                                       {"out", 1, 0, O_OUT},
                                       {"brokers", 1, 0, O_BROKERS},
                                       {"topics", 1, 0, O_TOPICS},
                                       {"mixed", 1, 0, O_MIXED},
                                       {"users", 1, 0, O_USERS},
                                       {"user-skew", 1, 0, O_SKEW},
                                       {"products", 1, 0, O_PRODUCTS},
                                       {"communities", 1, 0, O_COMMUNITIES},
                                       {"campaigns", 1, 0, O_CAMPAIGNS},
                                       {"contents", 1, 0, O_CONTENTS},
                                       {"zipf", 1, 0, O_ZIPF},
                                       {"ooo", 1, 0, O_OOO},
                                       {"late", 1, 0, O_LATE},
                                       {"dup", 1, 0, O_DUP},
                                       {"malformed", 1, 0, O_MALFORMED},
                                       {"refunds", 1, 0, O_REFUNDS},
                                       {"no-campaign", 1, 0, O_NOCAMP},
                                       {"lean", 0, 0, O_LEAN},
                                       {"scenario", 1, 0, O_SCENARIO},
                                       {"probe-ms", 1, 0, O_PROBE},
                                       {"probe-log", 1, 0, O_PROBELOG},
                                       {"quiet", 0, 0, O_QUIET},
                                       {"help", 0, 0, O_HELP},
                                       {"drop-product", 1, 0, O_DROP_PRODUCT},
                                       {"drop-after", 1, 0, O_DROP_AFTER},
                                       {"drop-for", 1, 0, O_DROP_FOR},
                                       {"drop-payment", 1, 0, O_DROP_PAYMENT},
                                       {"warm-start", 0, 0, O_WARM},
                                       {0, 0, 0, 0}};
    static char topics_buf[1024];
    double v;
    int c;
    while ((c = getopt_long(argc, argv, "X:h", lo, NULL)) != -1) {
        const char *name = "option";
        for (int i = 0; lo[i].name; i++)
            if (lo[i].val == c) name = lo[i].name;
        switch (c) {
        case O_SEED:
        case O_EVENTS:
        case O_START: {
            char *end = NULL;
            errno = 0;
            long long x = strtoll(optarg, &end, 10);
            if (!*optarg || *end || errno || (c != O_START && x < 0)) {
                fprintf(stderr, "funneld-gen: --%s wants an integer, got \"%s\"\n", name, optarg);
                return -1;
            }
            if (c == O_SEED) o->seed = (uint64_t)x;
            else if (c == O_EVENTS) o->events = (uint64_t)x;
            else o->start_ms = x, o->have_start = 1;
            break;
        }
        case O_HOURS:
            if (parse_num("--hours", optarg, 0.001, 24 * 400, &o->hours)) return -1;
            break;
        case O_RATE:
            if (parse_num("--rate", optarg, 0, 1e9, &o->rate)) return -1;
            break;
        case O_LIVE: o->live = 1; break;
        case O_OUT: o->out = optarg; break;
        case O_BROKERS: o->brokers = optarg; break;
        case O_MIXED: o->mixed = optarg; break;
        case O_TOPICS: {
            snprintf(topics_buf, sizeof topics_buf, "%s", optarg);
            char *save = NULL, *t = strtok_r(topics_buf, ",", &save);
            for (int i = 0; i < T__COUNT; i++, t = strtok_r(NULL, ",", &save)) {
                if (!t) {
                    fprintf(stderr, "funneld-gen: --topics wants three names E,I,P\n");
                    return -1;
                }
                o->topics[i] = t;
            }
            break;
        }
        case O_USERS:
        case O_PRODUCTS:
        case O_COMMUNITIES:
        case O_CAMPAIGNS:
        case O_CONTENTS:
            if (parse_num(name, optarg, 1, 4e9, &v)) return -1;
            *(c == O_USERS         ? &o->users
              : c == O_PRODUCTS    ? &o->products
              : c == O_COMMUNITIES ? &o->communities
              : c == O_CAMPAIGNS   ? &o->campaigns
                                   : &o->contents) = (uint32_t)v;
            break;
        case O_SKEW:
            if (parse_num("--user-skew", optarg, 0, 100, &o->user_skew)) return -1;
            break;
        case O_ZIPF:
            if (parse_num("--zipf", optarg, 0, 10, &o->zipf)) return -1;
            break;
        case O_OOO:
        case O_LATE:
        case O_DUP:
        case O_MALFORMED:
        case O_REFUNDS:
        case O_NOCAMP:
            if (parse_num(name, optarg, 0, 1, &v)) return -1;
            *(c == O_OOO         ? &o->ooo
              : c == O_LATE      ? &o->late
              : c == O_DUP       ? &o->dup
              : c == O_MALFORMED ? &o->malformed
              : c == O_REFUNDS   ? &o->refunds
                                 : &o->no_campaign) = v;
            break;
        case O_LEAN: o->lean = 1; break;
        case O_SCENARIO: o->scenario_path = optarg; break;
        case O_PROBE:
            if (parse_num("--probe-ms", optarg, 1, 3.6e6, &v)) return -1;
            o->probe_ms = (int64_t)v;
            break;
        case O_PROBELOG: o->probe_log = optarg; break;
        case O_QUIET: o->quiet = 1; break;
        case 'X':
            if (o->nprops == 64) return -1;
            o->props[o->nprops++] = optarg;
            break;
        case O_DROP_PRODUCT: o->drop_product = optarg; break;
        case O_DROP_AFTER:
        case O_DROP_FOR: {
            cJSON *d = cJSON_CreateString(optarg);
            int64_t ms = d ? parse_duration_ms(d) : -1;
            cJSON_Delete(d);
            if (ms < 0) {
                fprintf(
                    stderr,
                    "funneld-gen: --%s wants a duration (seconds, or 30s/20m/2h/1d), got \"%s\"\n",
                    name, optarg);
                return -1;
            }
            if (c == O_DROP_AFTER) o->drop_after_ms = ms;
            else o->drop_for_ms = ms;
            break;
        }
        case O_DROP_PAYMENT:
            if (parse_num("--drop-payment", optarg, 0, 1, &o->drop_payment)) return -1;
            break;
        case O_WARM: o->warm_start = 1; break;
        case O_HELP:
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "funneld-gen: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (!o->out && !o->brokers) {
        fprintf(stderr, "funneld-gen: say where to: --out FILE|- and/or --brokers LIST\n");
        return -1;
    }
    if (o->events == 0 && !o->live) {
        fprintf(stderr, "funneld-gen: --events 0 (endless) needs --live\n");
        return -1;
    }
    if (o->late + o->ooo > 1) {
        fprintf(stderr, "funneld-gen: --late + --ooo must be <= 1\n");
        return -1;
    }
    if (o->probe_ms && !o->live) {
        fprintf(stderr, "funneld-gen: --probe-ms needs --live\n");
        return -1;
    }
    if (o->warm_start && o->live && !(o->rate > 0)) {
        fprintf(stderr, "funneld-gen: --warm-start with --live needs --rate\n");
        return -1;
    }
    if (o->drop_for_ms == 0) {
        fprintf(stderr, "funneld-gen: --drop-for must be > 0\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    static gen_t g; /* large (duplicate table); zeroed */
    opts_t *o = &g.o;
    o->seed = 1;
    o->events = 100000;
    o->hours = 1;
    o->topics[0] = "funnel.exposure";
    o->topics[1] = "funnel.interaction";
    o->topics[2] = "funnel.payment";
    o->users = 100000;
    o->user_skew = 2;
    o->products = 50;
    o->communities = 500;
    o->campaigns = 40;
    o->contents = 2000;
    o->zipf = 1.1;
    o->ooo = 0.02;
    o->late = 0.002;
    o->dup = 0.02;
    o->malformed = 0.001;
    o->refunds = 0.03;
    o->no_campaign = 0.25;
    o->drop_after_ms = 180000;
    o->drop_for_ms = 240000;
    o->drop_payment = 0.1;
    if (parse_opts(argc, argv, o) < 0) return 2;
    int64_t span = (int64_t)(o->hours * 3600000.0);
    if (o->live) o->start_ms = wall_ms();
    else if (!o->have_start) o->start_ms = (wall_ms() - span - 60000) / 1000 * 1000;

    int code = 1;
    rng_seed(&g.rng, o->seed);
    if (zipf_init(&g.zp, o->products, o->zipf) < 0 || zipf_init(&g.zc, o->communities, o->zipf) < 0 ||
        zipf_init(&g.zk, o->campaigns, o->zipf) < 0 || zipf_init(&g.zt, o->contents, o->zipf) < 0) {
        fprintf(stderr, "funneld-gen: out of memory\n");
        goto out;
    }
    if (o->scenario_path && load_scenarios(&g, o->scenario_path) < 0) {
        code = 2;
        goto out;
    }
    if (o->drop_product && add_drop_scenario(&g) < 0) {
        code = 2;
        goto out;
    }
    if (!o->live && build_clock(&g) < 0) goto out;
    if (o->warm_start && warm_start(&g) < 0) goto out;
    if (o->out) {
        g.out = strcmp(o->out, "-") == 0 ? stdout : fopen(o->out, "wb");
        if (!g.out) {
            fprintf(stderr, "funneld-gen: %s: %s\n", o->out, strerror(errno));
            goto out;
        }
        setvbuf(g.out, NULL, _IOFBF, 1 << 20);
    }
    if (o->probe_log && !(g.probe_log = fopen(o->probe_log, "w"))) {
        fprintf(stderr, "funneld-gen: %s: %s\n", o->probe_log, strerror(errno));
        goto out;
    }
    if (o->brokers && open_kafka(&g) < 0) goto out;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    code = run(&g) == 0 ? 0 : 1;
out:
    if (g.out && fflush(g.out) != 0) code = 1;
    if (g.out && g.out != stdout) fclose(g.out);
    if (g.probe_log) fclose(g.probe_log);
    for (int t = 0; t < T__COUNT; t++)
        if (g.rkt[t] && (t == 0 || g.rkt[t] != g.rkt[0])) rd_kafka_topic_destroy(g.rkt[t]);
    if (g.rk) rd_kafka_destroy(g.rk);
    for (int i = 0; i < g.ndups; i++) free(g.dups[i].line);
    free(g.heap.v);
    free(g.cum);
    free(g.zp.cdf);
    free(g.zc.cdf);
    free(g.zk.cdf);
    free(g.zt.cdf);
    return code;
}
