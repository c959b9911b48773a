/*
 * window.c — event-time buckets, day calendar and per-partition lateness
 * (SPEC §4).
 *
 * m1 and h1 are pure arithmetic: floor(ts / width) * width on epoch
 * milliseconds, floored (not truncated) so that a negative ts lands in the
 * bucket that contains it. d1 is the calendar day of ts in one configured
 * IANA zone. libc owns the zone rules: fd_daycal_new() checks that
 * /usr/share/zoneinfo/<tz> is a TZif file (glibc silently falls back to UTC
 * on a zone it cannot read, which would shift every day bucket), sets
 * TZ=":/usr/share/zoneinfo/<tz>" so glibc reads exactly the file we checked,
 * and calls tzset() once.
 *
 * Labelling a day with localtime_r() on every event would cost a libc call
 * (and glibc's tz lock) three times per event, so each daycal caches the
 * [start, end) epoch-ms range and label of the last 4 days it has computed;
 * a hit is two compares. On a miss the label comes from localtime_r(ts), and
 * the day's range from mktime() of local midnight and of the next local
 * midnight with tm_isdst = -1, so a 23 h or 25 h DST day gets its true length.
 * The range is cached only if it checks out (it contains ts, its first
 * second and last second are in the day, the seconds just outside are not);
 * otherwise — a zone whose midnight does not exist on some day — the label is
 * still exact, that day is just not cached. Memory: fixed, one small struct.
 *
 * Invariant: a cached range never covers an instant of another day, so the
 * cache can change speed but never a label. The zone is process-wide (TZ);
 * if a second daycal for another zone is created, each daycal re-sets TZ on
 * its own cache misses. Not thread-safe (setenv/tzset): one loop per process.
 *
 * Lateness (docs/EVENTS.md): an event is late when ts < max_ts - lateness,
 * with max_ts taken before the event is applied; the first event of a
 * partition is never late and late events never lower max_ts.
 */
#include "model/window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCACHE 4
#define ZONEDIR "/usr/share/zoneinfo/"

typedef struct {
    int64_t start_ms, end_ms; /* [start, end); empty when start == end */
    int32_t label;
} day_t;

struct fd_daycal {
    char tzenv[256]; /* ":" ZONEDIR tz, the value given to TZ */
    day_t cache[NCACHE];
    int next; /* round-robin victim */
};

/* The TZ value last installed by this module (process-wide). */
static char current_tz[256];

static const char *gran_names[FD_GRAN__COUNT] = {"m1", "h1", "d1"};

const char *fd_gran_name(fd_gran_t g) {
    if ((int)g < 0 || g >= FD_GRAN__COUNT) return "?";
    return gran_names[g];
}

int64_t fd_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) q--;
    return q;
}

int64_t fd_bucket_m1(int64_t ts_ms) { return fd_floor_div(ts_ms, 60000) * 60; }
int64_t fd_bucket_h1(int64_t ts_ms) { return fd_floor_div(ts_ms, 3600000) * 3600; }

static void install_tz(const char *tzenv) {
    if (strcmp(current_tz, tzenv) == 0) return;
    setenv("TZ", tzenv, 1);
    tzset();
    snprintf(current_tz, sizeof current_tz, "%s", tzenv);
}

fd_daycal_t *fd_daycal_new(const char *tz, char *err, size_t errlen) {
    char path[160]; /* ZONEDIR + a name of at most 128 bytes */
    unsigned char magic[4];
    FILE *f = NULL;

    if (tz == NULL || tz[0] == '\0' || tz[0] == '/' || strstr(tz, "..") != NULL || strlen(tz) > 128) {
        snprintf(err, errlen, "time_zone: \"%s\" is not an IANA zone name (e.g. Asia/Shanghai)",
                 tz ? tz : "");
        return NULL;
    }
    snprintf(path, sizeof path, ZONEDIR "%s", tz);
    f = fopen(path, "rb");
    if (f == NULL || fread(magic, 1, 4, f) != 4 || memcmp(magic, "TZif", 4) != 0) {
        snprintf(err, errlen, "time_zone: unknown zone \"%s\" (no zone file %s)", tz, path);
        if (f != NULL) fclose(f);
        return NULL;
    }
    fclose(f);

    fd_daycal_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "time_zone: out of memory");
        return NULL;
    }
    snprintf(d->tzenv, sizeof d->tzenv, ":%s", path);
    install_tz(d->tzenv);
    return d;
}

void fd_daycal_free(fd_daycal_t *d) { free(d); }

static int32_t label_of(const struct tm *t) {
    return (int32_t)((t->tm_year + 1900) * 10000 + (t->tm_mon + 1) * 100 + t->tm_mday);
}

/* Label of the local day containing epoch second s, or -1. */
static int32_t label_at(time_t s) {
    struct tm t;
    if (localtime_r(&s, &t) == NULL) return -1;
    return label_of(&t);
}

/* Epoch second of local midnight starting day (y, mon, mday), normalised. */
static time_t local_midnight(int year, int mon, int mday) {
    struct tm t = {0};
    t.tm_year = year;
    t.tm_mon = mon;
    t.tm_mday = mday;
    t.tm_isdst = -1;
    return mktime(&t);
}

int32_t fd_daycal_label(fd_daycal_t *d, int64_t ts_ms) {
    for (int i = 0; i < NCACHE; i++)
        if (ts_ms >= d->cache[i].start_ms && ts_ms < d->cache[i].end_ms) return d->cache[i].label;

    install_tz(d->tzenv);
    time_t s = (time_t)fd_floor_div(ts_ms, 1000);
    struct tm t;
    if (localtime_r(&s, &t) == NULL) return 0;
    int32_t label = label_of(&t);

    time_t start = local_midnight(t.tm_year, t.tm_mon, t.tm_mday);
    time_t end = local_midnight(t.tm_year, t.tm_mon, t.tm_mday + 1);
    if (start == (time_t)-1 || end == (time_t)-1 || !(start <= s && s < end)) return label;
    if (label_at(start) != label || label_at(start - 1) == label || label_at(end - 1) != label ||
        label_at(end) == label)
        return label;
    day_t *c = &d->cache[d->next];
    d->next = (d->next + 1) % NCACHE;
    c->start_ms = (int64_t)start * 1000;
    c->end_ms = (int64_t)end * 1000;
    c->label = label;
    return label;
}

/* Decimal text of v into buf (>= 21 bytes + NUL); returns its length. */
static size_t put_i64(char *buf, int64_t v) {
    char tmp[24];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) buf[len++] = '-';
    while (n > 0) buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

size_t fd_bucket_label(fd_daycal_t *d, fd_gran_t g, int64_t ts_ms, char *buf) {
    switch (g) {
    case FD_GRAN_M1: return put_i64(buf, fd_bucket_m1(ts_ms));
    case FD_GRAN_H1: return put_i64(buf, fd_bucket_h1(ts_ms));
    case FD_GRAN_D1: return put_i64(buf, fd_daycal_label(d, ts_ms));
    default: buf[0] = '\0'; return 0;
    }
}

int fd_watermark_observe(int64_t *max_ts, int64_t lateness_ms, int64_t ts_ms) {
    int late = 0;
    if (*max_ts != INT64_MIN) {
        /* ts < max_ts - lateness, without overflowing near INT64_MIN */
        if (lateness_ms < 0) lateness_ms = 0;
        if (*max_ts >= INT64_MIN + lateness_ms) late = ts_ms < *max_ts - lateness_ms;
    }
    if (ts_ms > *max_ts) *max_ts = ts_ms;
    return late;
}

void fd_watermark_init(fd_watermark_t *w) {
    w->lo = INT64_MAX;
    w->hi = INT64_MIN;
    w->any = w->active = 0;
}

void fd_watermark_add(fd_watermark_t *w, int64_t ts_ms, int64_t seen_ms, int64_t now_ms,
                      int64_t idle_ms) {
    w->any = 1;
    if (ts_ms > w->hi) w->hi = ts_ms;
    if (now_ms - seen_ms <= idle_ms) {
        w->active = 1;
        if (ts_ms < w->lo) w->lo = ts_ms;
    }
}

int fd_watermark_global(const fd_watermark_t *w, int64_t lateness_ms, int64_t *wm_ms) {
    if (!w->any) return -1;
    *wm_ms = (w->active ? w->lo : w->hi) - lateness_ms;
    return 0;
}
