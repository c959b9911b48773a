/*
 * log.c — logfmt to stderr, with a per-second budget for per-event lines.
 *
 * Lines are assembled in a stack buffer and written with one fwrite so that
 * two processes sharing a terminal do not interleave mid-line.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *level_names[] = {"debug", "info", "warn", "error"};

void fd_log_init(fd_log_t *l, const char *level, int64_t rate_per_s) {
    memset(l, 0, sizeof(*l));
    l->level = FD_LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (level && strcmp(level, level_names[i]) == 0) l->level = (fd_log_level_t)i;
    l->rate_per_s = rate_per_s;
    pthread_mutex_init(&l->repeat_mu, NULL);
    atomic_init(&l->erase, 0);
}

void fd_log_set_erase(fd_log_t *l, int on) {
    atomic_store_explicit(&l->erase, on ? 1 : 0, memory_order_relaxed);
}

#define ERASE_LINE "\r\033[K"

static void emit(const fd_log_t *l, fd_log_level_t lv, const char *msg, const char *fmt, va_list ap) {
    char line[2048];
    int erase = atomic_load_explicit(&l->erase, memory_order_relaxed);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line, "%sts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                 erase ? ERASE_LINE : "", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[lv], msg);
    if (n < 0) return;
    if (fmt && *fmt && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        if (m > 0) n += m;
    }
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}

void fd_log(const fd_log_t *l, fd_log_level_t lv, const char *msg, const char *fmt, ...) {
    if (!FD_LOG_ON(l, lv)) return;
    va_list ap;
    va_start(ap, fmt);
    emit(l, lv, msg, fmt, ap);
    va_end(ap);
}

void fd_log_limited(fd_log_t *l, fd_log_level_t lv, const char *msg, const char *fmt, ...) {
    if (!FD_LOG_ON(l, lv)) return;
    int64_t now = (int64_t)time(NULL);
    if (now != l->window_s) {
        if (l->suppressed) {
            fd_log(l, FD_LOG_WARN, "log lines suppressed", "count=%llu",
                   (unsigned long long)l->suppressed);
            l->suppressed = 0;
        }
        l->window_s = now;
        l->in_window = 0;
    }
    if (l->in_window >= l->rate_per_s) {
        l->suppressed++;
        return;
    }
    l->in_window++;
    va_list ap;
    va_start(ap, fmt);
    emit(l, lv, msg, fmt, ap);
    va_end(ap);
}

static uint64_t key_hash(const char *k) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h | 1; /* 0 marks a free slot */
}

void fd_log_repeat(fd_log_t *l, fd_log_level_t lv, const char *key, const char *msg,
                   const char *fmt, ...) {
    if (!FD_LOG_ON(l, lv)) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t h = key_hash(key), held;
    pthread_mutex_lock(&l->repeat_mu);
    fd_log_repeat_t *slot = NULL, *oldest = &l->repeat[0];
    for (int i = 0; i < FD_LOG_REPEAT_SLOTS && !slot; i++) {
        fd_log_repeat_t *r = &l->repeat[i];
        if (r->key == h) slot = r;
        else if (r->key == 0 || (oldest->key != 0 && r->last_ms < oldest->last_ms)) oldest = r;
    }
    if (slot && now - slot->last_ms < FD_LOG_REPEAT_MS) {
        slot->repeats++;
        pthread_mutex_unlock(&l->repeat_mu);
        return;
    }
    if (!slot) { /* a new problem takes a free slot, else the least recent one */
        slot = oldest;
        slot->key = h;
        slot->repeats = 0;
    }
    held = slot->repeats;
    slot->repeats = 0;
    slot->last_ms = now;
    pthread_mutex_unlock(&l->repeat_mu);
    char rest[1536] = "";
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rest, sizeof rest, fmt, ap);
        va_end(ap);
    }
    if (held)
        fd_log(l, lv, msg, "%s%srepeated=%llu", rest, rest[0] ? " " : "", (unsigned long long)held);
    else if (rest[0]) fd_log(l, lv, msg, "%s", rest);
    else fd_log(l, lv, msg, NULL);
}
