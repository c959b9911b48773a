/*
 * duration.c — parse and format durations (see the header for the syntax).
 *
 * No allocation, no locale: isdigit() on unsigned char, arithmetic that
 * cannot overflow for the 12 digits allowed (999999999999d < 2^63 s).
 */
#include "base/duration.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

int fd_duration_parse(const char *s, int64_t *secs) {
    const char *p = s;
    int64_t v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        if (++digits > 12) return -1;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (digits == 0 || p[0] == '\0' || p[1] != '\0') return -1;
    switch (p[0]) {
    case 's': *secs = v; return 0;
    case 'm': *secs = v * 60; return 0;
    case 'h': *secs = v * 3600; return 0;
    case 'd': *secs = v * 86400; return 0;
    default: return -1;
    }
}

size_t fd_duration_format(int64_t seconds, char *buf, size_t cap) {
    int n;
    if (seconds > 86400 && seconds % 86400 == 0)
        n = snprintf(buf, cap, "%" PRId64 "d", seconds / 86400);
    else if (seconds > 0 && seconds % 3600 == 0) /* one day reads "24h" (SPEC) */
        n = snprintf(buf, cap, "%" PRId64 "h", seconds / 3600);
    else if (seconds > 0 && seconds % 60 == 0) n = snprintf(buf, cap, "%" PRId64 "m", seconds / 60);
    else n = snprintf(buf, cap, "%" PRId64 "s", seconds);
    return n < 0 ? 0 : (size_t)n;
}
