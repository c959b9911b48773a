/*
 * web.h — the live screen, the read-only JSON API /api/v1/... and its event
 * stream, served by the operations HTTP server (ops/http.c).
 *
 * Everything here only reads Redis (docs/REDIS.md, docs/ALERTS.md); the
 * contract for clients is docs/API.md. Nothing runs on the libuv loop:
 * API requests are answered by worker threads of this module, each over a
 * blocking Redis connection of its own (the HTTP server's thread only
 * suspends and resumes them), and the event stream is fed by a thread of
 * this module (a pub/sub connection on `{prefix}:updates` and
 * `{prefix}:alerts`, and one more connection to read the state it pushes;
 * and a librdkafka client without a group for the partitions' end offsets).
 * So a slow reader, a slow Redis answer or a thousand stream clients never
 * delay a flush, a snapshot or an alert round (docs/ARCHITECTURE.md).
 *
 * Lifetime: fd_web_new() (starts the stream thread), fd_web_attach() (routes
 * every other GET of the HTTP server here), then at exit fd_web_stop()
 * BEFORE fd_http_free() (no stream push may touch a stopped server), and
 * fd_web_free() AFTER it (the server frees its stream responses into us, and
 * routes requests here until it stops).
 */
#ifndef FD_WEB_H
#define FD_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "ops/http.h"
#include "conf/conf.h"
#include "base/log.h"

typedef struct fd_web fd_web_t;

/* c must outlive the object. NULL with err set when the screen's directory
 * cannot be found or a thread cannot start. */
fd_web_t *fd_web_new(const fd_conf_t *c, fd_log_t *log, char *err, size_t errlen);
void fd_web_attach(fd_web_t *w, fd_http_t *h);
void fd_web_stop(fd_web_t *w);
void fd_web_free(fd_web_t *w);
/* 1 while the stream thread's Redis connection is up (serve's /readyz). */
int fd_web_ready(fd_web_t *w);

#endif
