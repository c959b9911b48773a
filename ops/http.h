/*
 * http.h — the loopback operations endpoint: /metrics, /healthz, /readyz.
 *
 * libmicrohttpd serves it from its own thread. That thread never touches
 * pipeline state: the loop thread publishes a finished Prometheus text once
 * per flush interval (fd_http_publish) and, from a one-second heartbeat
 * timer, the monotonic time of its latest turn and the ready flag
 * (fd_http_beat); the server hands out copies under a mutex. /healthz fails
 * when the heartbeat is older than FD_HTTP_STALL_MS (the loop is stuck),
 * whatever flush_interval_ms is; /readyz fails then too, and while Redis is
 * not usable.
 *
 * Exhaustion (a flood of idle or slow connections): libmicrohttpd runs its
 * epoll loop (no select(), so no FD_SETSIZE ceiling), holds at most
 * http.max_connections connections (and never more than the descriptor limit
 * minus FD_HTTP_FD_RESERVE, so Kafka and Redis always get descriptors), at
 * most http.max_connections_per_ip from one address (0 = no separate limit)
 * and closes a connection idle for http.timeout_s. While the server is full,
 * new connections wait in the kernel's accept queue and are served as idle
 * ones time out. The library's own messages go through the rate-limited
 * logfmt logger. Binds to http.listen, 127.0.0.1:9464 by default (loopback).
 */
#ifndef FD_HTTP_H
#define FD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

/* /healthz answers 503 "event loop stalled" once the loop's heartbeat is
 * this old; the heartbeat ticks every FD_HTTP_BEAT_MS. */
#define FD_HTTP_STALL_MS 10000
#define FD_HTTP_BEAT_MS 1000
/* Descriptors kept out of the HTTP server's reach (Kafka, Redis, logs). */
#define FD_HTTP_FD_RESERVE 128

typedef struct fd_http fd_http_t;

/* Listens on c->http_listen ("host:port", IPv4 literal or "localhost") with
 * the http.* limits; c is only read during the call. */
fd_http_t *fd_http_new(const fd_conf_t *c, char *err, size_t errlen);
void fd_http_free(fd_http_t *h);
/* Copies text; ready: 1 when the pipeline can make progress. */
void fd_http_publish(fd_http_t *h, const char *text, size_t n, int ready);
/* Loop thread, every FD_HTTP_BEAT_MS: the loop is turning; ready as above. */
void fd_http_beat(fd_http_t *h, int ready);
/* The staleness rule: alive when a heartbeat was seen (beat_ms > 0) and is
 * at most FD_HTTP_STALL_MS old at now_ms (both CLOCK_MONOTONIC ms). */
int fd_http_alive(int64_t beat_ms, int64_t now_ms);
/* The connection limit actually used for a descriptor limit (soft
 * RLIMIT_NOFILE) of nofile: min(max_conns, nofile - FD_HTTP_FD_RESERVE),
 * at least 1. */
unsigned fd_http_conn_limit(int64_t max_conns, int64_t nofile);

/* Every GET other than /metrics, /healthz and /readyz goes to a route
 * installed here (web/: the screen, /api/v1, the event stream), called on
 * the server's thread with libmicrohttpd's connection and per-request state;
 * it returns an enum MHD_Result. Connections may be suspended and resumed
 * (MHD_ALLOW_SUSPEND_RESUME). Set it before the first request it must see;
 * NULL removes it (404 again). */
struct MHD_Connection;
typedef int (*fd_http_route_fn)(void *ud, struct MHD_Connection *conn, const char *url, void **state);
void fd_http_set_route(fd_http_t *h, fd_http_route_fn fn, void *ud);

/* Whether a libmicrohttpd message only says that the client went away while
 * its response was being sent (a browser closing a page with a stream open,
 * a reset): an ordinary event, logged at debug level. Every other message
 * (refused connections, out of memory, TLS, ...) stays a warning. */
int fd_http_peer_gone(const char *msg);

/* A response that owns body (malloc'd, n bytes) with its Content-Type set:
 * the one way every route builds one. On failure body is freed and NULL
 * returned (the caller answers MHD_NO). */
struct MHD_Response;
struct MHD_Response *fd_http_response(char *body, size_t n, const char *ctype);

#endif
