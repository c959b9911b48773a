/*
 * http.h — the loopback operations endpoint: /metrics, /healthz, /readyz.
 *
 * libmicrohttpd serves it from its own thread. That thread never touches
 * pipeline state: the loop thread publishes a finished Prometheus text and
 * two flags after every flush tick (fd_http_publish), and the server hands
 * out a copy under a mutex. /healthz fails when no publish happened for
 * 10 s (the loop is stuck); /readyz fails while Redis is not usable.
 * Binds to http.listen, 127.0.0.1:9464 by default (loopback).
 */
#ifndef FD_HTTP_H
#define FD_HTTP_H

#include <stddef.h>

typedef struct fd_http fd_http_t;

/* listen: "host:port" (IPv4 literal or "localhost"). */
fd_http_t *fd_http_new(const char *listen, char *err, size_t errlen);
void fd_http_free(fd_http_t *h);
/* Copies text; ready: 1 when the pipeline can make progress. */
void fd_http_publish(fd_http_t *h, const char *text, size_t n, int ready);

#endif
