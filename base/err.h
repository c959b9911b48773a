/*
 * err.h — result codes, and filling a caller's error buffer.
 *
 * One convention everywhere: a call returns 0 on success or a negative
 * number. -1 … -4095 are negative errno values (libuv style: -ENOMEM,
 * -ENOTCONN). An outcome that is not an errno (a flush fenced by another
 * instance, a lease lost) is a named constant in its module's band below;
 * every band is listed here, in one place, so no two codes can collide.
 * Parsers and constructors that fill err/errlen return -1 (fd_fail()); the
 * buffer says why.
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

#define FD_ERR_SINK (-10000) /* sinks/sink.h: FD_SINK_E* (flush and offset-read results) */
#define FD_ERR_DLQ (-10100) /* sinks/sink.h: FD_DLQ_E* (dead-letter delivery results) */
#define FD_ERR_ALERTS (-10200) /* alerts/store.h: FD_ALERTS_E* (evaluator commit results) */

/* Formats into err (nothing if err is NULL or errlen 0); returns -1. */
int fd_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
