/*
 * serve.c — `serve`: the read-only instance for scale-out setups.
 *
 * Only the HTTP server (ops/http.c) with the screen, /api/v1 and its event
 * stream (web/): no consumer, no flushes, no snapshots, no alert
 * evaluation, so any number of them can run beside the `run` instances
 * against the same Redis and each answers exactly as a `run` instance
 * would (everything it shows is read from Redis). The libuv loop here only
 * turns the heartbeat of /healthz and stops on SIGTERM/SIGINT; /readyz is
 * 200 while the event stream's Redis connection is up; /metrics is empty.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "app/app.h"
#include "web/web.h"
#include "ops/http.h"
#include "conf/conf.h"
#include "base/log.h"

typedef struct {
    fd_http_t *http;
    fd_web_t *web;
    fd_log_t *log;
    uv_timer_t beat;
    uv_signal_t sigterm, sigint;
} serve_t;

static void beat_tick(uv_timer_t *t) {
    serve_t *s = t->data;
    fd_http_beat(s->http, fd_web_ready(s->web));
}

static void on_signal(uv_signal_t *h, int signum) {
    serve_t *s = h->data;
    fd_log(s->log, FD_LOG_INFO, "signal received", "signal=%d", signum);
    uv_stop(h->loop);
}

static void on_close(uv_handle_t *h) { (void)h; }

int fd_app_serve(const fd_conf_t *c, fd_log_t *log) {
    char err[1024];
    if (!c->http_listen || !c->http_listen[0]) {
        fprintf(stderr, "funneld: serve needs http.listen\n");
        return 2;
    }
    serve_t s;
    memset(&s, 0, sizeof s);
    s.log = log;
    if (!(s.web = fd_web_new(c, log, err, sizeof err)) ||
        !(s.http = fd_http_new(c, err, sizeof err))) {
        fd_log(log, FD_LOG_ERROR, "startup failed", "error=\"%s\"", err);
        fd_web_free(s.web);
        return 1;
    }
    fd_web_attach(s.web, s.http);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &s.beat);
    uv_signal_init(&loop, &s.sigterm);
    uv_signal_init(&loop, &s.sigint);
    s.beat.data = s.sigterm.data = s.sigint.data = &s;
    uv_timer_start(&s.beat, beat_tick, FD_HTTP_BEAT_MS, FD_HTTP_BEAT_MS);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    fd_http_publish(s.http, "", 0, 0);
    fd_log(log, FD_LOG_INFO, "funneld serving", "listen=\"%s\" prefix=\"%s\"", c->http_listen,
           c->prefix);
    uv_run(&loop, UV_RUN_DEFAULT);
    fd_web_stop(s.web);
    fd_http_free(s.http);
    fd_web_free(s.web);
    uv_close((uv_handle_t *)&s.beat, on_close);
    uv_close((uv_handle_t *)&s.sigterm, on_close);
    uv_close((uv_handle_t *)&s.sigint, on_close);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
