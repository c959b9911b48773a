/*
 * log.h — logfmt lines on stderr.
 *
 * One line per call: `ts=... level=info msg="..." key=value ...`. The level
 * is checked before anything is formatted (FD_LOG_ON). Per-event problems go
 * through fd_log_limited(), which lets at most `rate_per_s` lines per second
 * through and reports how many were suppressed, so a flood of bad input
 * cannot flood the log. Never pass secrets to these functions.
 */
#ifndef FD_LOG_H
#define FD_LOG_H

#include <stdint.h>

typedef enum { FD_LOG_DEBUG = 0, FD_LOG_INFO, FD_LOG_WARN, FD_LOG_ERROR } fd_log_level_t;

typedef struct {
    fd_log_level_t level;
    int64_t rate_per_s;
    int64_t window_s;     /* current one-second window */
    int64_t in_window;    /* limited lines emitted in it */
    uint64_t suppressed;  /* limited lines dropped since the last report */
} fd_log_t;

void fd_log_init(fd_log_t *l, const char *level, int64_t rate_per_s);
/* fmt is the rest of the line after msg, in logfmt (key=value ...). */
void fd_log(const fd_log_t *l, fd_log_level_t lv, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fd_log_limited(fd_log_t *l, fd_log_level_t lv, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define FD_LOG_ON(l, lv) ((lv) >= (l)->level)

#endif
