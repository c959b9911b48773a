/*
 * log.h — logfmt lines on stderr.
 *
 * One line per call: `ts=... level=info msg="..." key=value ...`. The level
 * is checked before anything is formatted (FD_LOG_ON). Per-event problems go
 * through fd_log_limited(), which lets at most `rate_per_s` lines per second
 * through and reports how many were suppressed, so a flood of bad input
 * cannot flood the log. Never pass secrets to these functions.
 *
 * When something redraws a line in place on the same terminal (`replay`'s
 * progress line, app/progress.c), fd_log_set_erase(l, 1) makes every log
 * line start by erasing the terminal's current line ("\r\033[K"), so a log
 * line never lands on the end of a half-drawn one; the progress line is
 * drawn again below it on its next tick. Off by default: a log that is not
 * a terminal never carries escape sequences.
 */
#ifndef FD_LOG_H
#define FD_LOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef enum { FD_LOG_DEBUG = 0, FD_LOG_INFO, FD_LOG_WARN, FD_LOG_ERROR } fd_log_level_t;

/* A problem that repeats (a retry loop, an unreachable broker) is logged at
 * most once per FD_LOG_REPEAT_MS per key; the next line for that key says
 * how many were held back (repeated=N). */
#define FD_LOG_REPEAT_MS 10000
#define FD_LOG_REPEAT_SLOTS 32

typedef struct {
    uint64_t key; /* hash of the problem's key; 0: free */
    int64_t last_ms; /* monotonic time of its last line */
    uint64_t repeats; /* occurrences held back since then */
} fd_log_repeat_t;

typedef struct {
    fd_log_level_t level;
    int64_t rate_per_s;
    int64_t window_s; /* current one-second window */
    int64_t in_window; /* limited lines emitted in it */
    uint64_t suppressed; /* limited lines dropped since the last report */
    pthread_mutex_t repeat_mu; /* librdkafka logs from its own threads */
    fd_log_repeat_t repeat[FD_LOG_REPEAT_SLOTS];
    atomic_int erase; /* fd_log_set_erase; read by any thread that logs */
} fd_log_t;

void fd_log_init(fd_log_t *l, const char *level, int64_t rate_per_s);
/* on 1: each line starts by erasing the terminal's current line (above). */
void fd_log_set_erase(fd_log_t *l, int on);
/* fmt is the rest of the line after msg, in logfmt (key=value ...). */
void fd_log(const fd_log_t *l, fd_log_level_t lv, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fd_log_limited(fd_log_t *l, fd_log_level_t lv, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Like fd_log, but rate-limited per `key` (see FD_LOG_REPEAT_MS); safe from
 * any thread. */
void fd_log_repeat(fd_log_t *l, fd_log_level_t lv, const char *key, const char *msg,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define FD_LOG_ON(l, lv) ((lv) >= (l)->level)

#endif
