/*
 * hotpath.c — funneld's per-event work from memory, on one core.
 *
 * Loads a JSON Lines file (bench/hotpath.sh makes one with funneld-gen) into
 * memory and runs one of these loops over it, cycling through the lines
 * until --events messages have been processed:
 *
 *   hot          fd_event_parse (parse + validate) → fd_watermark_observe →
 *                fd_agg_add into a partition batch with the default
 *                groupings; the batch is reset every --batch events, as a
 *                flush would (the reset is timed too). This is everything the
 *                pipeline does per message short of Kafka and Redis.
 *   parse        fd_event_parse alone.
 *   cjson        cJSON_ParseWithLength + cJSON_Delete (libc malloc).
 *   cjson-arena  the same with a bump arena installed through cJSON_InitHooks
 *                (free is a no-op; the arena is rewound after each message).
 *
 * `--mode all` runs each once and prints a table; one mode alone prints one
 * row (bench/hotpath.sh runs `--mode hot` under callgrind).
 *
 * Memory: the file, one batch (bounded by the distinct keys and users of
 * --batch events) and, for cjson-arena, a 1 MiB arena.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregators/agg.h"
#include "aggregators/batch.h"
#include "model/window.h"
#include "model/event.h"
#include "conf/conf.h"

typedef struct {
    char *data;
    size_t *off, *len;
    size_t n;
    size_t bytes;
} lines_t;

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int64_t wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int load(const char *path, lines_t *L) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "bench-hotpath: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    L->data = malloc((size_t)sz + 1);
    if (!L->data || fread(L->data, 1, (size_t)sz, fp) != (size_t)sz) {
        fclose(fp);
        return -1;
    }
    fclose(fp);
    size_t cap = 1024;
    L->off = malloc(cap * sizeof(size_t));
    L->len = malloc(cap * sizeof(size_t));
    size_t start = 0;
    for (size_t i = 0; i <= (size_t)sz; i++) {
        if (i < (size_t)sz && L->data[i] != '\n') continue;
        if (i > start) {
            if (L->n == cap) {
                cap *= 2;
                L->off = realloc(L->off, cap * sizeof(size_t));
                L->len = realloc(L->len, cap * sizeof(size_t));
            }
            L->off[L->n] = start;
            L->len[L->n] = i - start;
            L->bytes += i - start;
            L->n++;
        }
        start = i + 1;
    }
    return L->n ? 0 : -1;
}

/* ---- the cJSON arena ------------------------------------------------------ */

static char *arena;
static size_t arena_used, arena_cap = 1 << 20;

static void *arena_malloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (arena_used + n > arena_cap) return NULL;
    void *p = arena + arena_used;
    arena_used += n;
    return p;
}
static void arena_free(void *p) { (void)p; }

/* ---- loops ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    uint64_t events, ok;
    double seconds;
} result_t;

/* noinline: bench/hotpath.sh collects callgrind costs inside this function only */
__attribute__((noinline)) static int run_mode(const char *mode, const lines_t *L, uint64_t events,
                                              uint64_t batch_every, result_t *res) {
    char err[256];
    fd_conf_t c;
    fd_conf_defaults(&c);
    if (fd_conf_finalize(&c, err, sizeof err) < 0) {
        fprintf(stderr, "bench-hotpath: %s\n", err);
        return -1;
    }
    fd_event_limits_t lim = {(size_t)c.max_message_bytes, c.ttl_m1_s * 1000, c.max_future_s * 1000};
    fd_parser_t *p = fd_parser_new(&lim, err, sizeof err);
    fd_agg_t *agg = fd_agg_new(&c, err, sizeof err);
    fd_batch_t *b = fd_batch_new();
    if (!p || !agg || !b) {
        fprintf(stderr, "bench-hotpath: %s\n", err);
        return -1;
    }
    int64_t now = wall_ms(), max_ts = INT64_MIN, lateness = c.lateness_s * 1000;
    uint64_t ok = 0;
    size_t li = 0;
    int is_hot = !strcmp(mode, "hot"), is_parse = !strcmp(mode, "parse");
    int is_cj = !strcmp(mode, "cjson"), is_arena = !strcmp(mode, "cjson-arena");
    if (!is_hot && !is_parse && !is_cj && !is_arena) {
        fprintf(stderr, "bench-hotpath: unknown mode %s\n", mode);
        return -1;
    }
    if (is_arena) {
        arena = malloc(arena_cap);
        cJSON_Hooks h = {arena_malloc, arena_free};
        cJSON_InitHooks(&h);
    } else {
        cJSON_InitHooks(NULL);
    }
    double t0 = mono_s();
    for (uint64_t i = 0; i < events; i++) {
        const char *m = L->data + L->off[li];
        size_t n = L->len[li];
        if (++li == L->n) li = 0;
        if (is_cj || is_arena) {
            arena_used = 0;
            cJSON *j = cJSON_ParseWithLength(m, n);
            ok += j != NULL;
            cJSON_Delete(j);
            continue;
        }
        fd_event_t ev;
        const char *field;
        if (fd_event_parse(p, m, n, FD_TYPE_NONE, now, &ev, &field) != FD_OK) continue;
        ok++;
        if (is_parse) continue;
        int late = fd_watermark_observe(&max_ts, lateness, ev.ts_ms);
        if (fd_agg_add(agg, b, &ev, late) < 0) {
            fprintf(stderr, "bench-hotpath: fd_agg_add failed\n");
            return -1;
        }
        fd_batch_add_events(b, 1);
        if (ok % batch_every == 0) fd_batch_reset(b);
    }
    res->seconds = mono_s() - t0;
    res->name = mode;
    res->events = events;
    res->ok = ok;
    cJSON_InitHooks(NULL);
    free(arena);
    arena = NULL;
    fd_batch_free(b);
    fd_agg_free(agg);
    fd_parser_free(p);
    fd_conf_release(&c);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = "all", *file = NULL;
    uint64_t events = 2000000, batch_every = 20000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch_every = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !file) file = argv[i];
        else {
            fprintf(stderr,
                    "usage: bench-hotpath [--mode all|hot|parse|cjson|cjson-arena] [--events N] "
                    "[--batch N] FILE.jsonl\n");
            return 2;
        }
    }
    if (!file || !events || !batch_every) {
        fprintf(stderr, "bench-hotpath: need a FILE.jsonl (and nonzero --events, --batch)\n");
        return 2;
    }
    lines_t L = {0};
    if (load(file, &L) < 0) {
        fprintf(stderr, "bench-hotpath: %s: no lines\n", file);
        return 1;
    }
    const char *all[] = {"hot", "parse", "cjson", "cjson-arena"};
    int n = strcmp(mode, "all") ? 1 : 4;
    printf("# %zu distinct messages, mean %.0f bytes, %" PRIu64
           " processed per row, batch reset every %" PRIu64 "\n",
           L.n, (double)L.bytes / (double)L.n, events, batch_every);
    printf("%-13s %14s %10s %10s %8s\n", "loop", "events/s", "ns/event", "MB/s", "ok");
    for (int i = 0; i < n; i++) {
        result_t r;
        if (run_mode(n == 1 ? mode : all[i], &L, events, batch_every, &r) < 0) return 1;
        double rate = (double)r.events / r.seconds;
        printf("%-13s %14.0f %10.1f %10.1f %7.1f%%\n", r.name, rate, 1e9 / rate,
               rate * (double)L.bytes / (double)L.n / 1e6, 100.0 * (double)r.ok / (double)r.events);
        fflush(stdout);
    }
    free(L.data);
    free(L.off);
    free(L.len);
    return 0;
}
