/*
 * err.h — filling a caller's error buffer.
 *
 * A call that can fail takes `char *err, size_t errlen` and, when it fails,
 * leaves one readable line there (truncated to errlen) and returns a
 * negative code. fd_fail() is that last step, so a parser can write
 * `return fd_fail(err, errlen, "%s: must be an object", what);`. The
 * message must never contain a secret (see conf/conf.c).
 */
#ifndef FD_ERR_H
#define FD_ERR_H

#include <stddef.h>

/* Formats into err (nothing if err is NULL or errlen 0); returns -1. */
int fd_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
