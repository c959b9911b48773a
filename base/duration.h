/*
 * duration.h — the one duration syntax: `<digits><unit>`, unit one of
 * s, m, h, d; nothing before or after, no sign, at most 12 digits (an
 * overflow guard: 12 digits of days still fit in int64 seconds). Config
 * windows and alert-rule fields both parse with it; each caller checks its
 * own range ("1m..3650d", "whole minutes", …), so a bound is never a
 * syntax error. The formatter is the inverse used for Redis key names and
 * check-config: days only above one day (one day reads "24h"), then hours,
 * minutes, seconds, whichever divides.
 */
#ifndef FD_DURATION_H
#define FD_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* "5m" → *secs = 300, returns 0; -1 on a syntax error (*secs untouched). */
int fd_duration_parse(const char *s, int64_t *secs);

/* 300 → "5m". Returns the length it wanted (snprintf's), 0 on error. */
size_t fd_duration_format(int64_t secs, char *buf, size_t cap);

#endif
