/*
 * http.c — /metrics, /healthz, /readyz on libmicrohttpd (see http.h).
 */
#include "ops/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/log.h"
#include "base/clock.h"

struct fd_http {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    char *text;
    size_t n;
    int ready;
    int64_t beat_ms; /* CLOCK_MONOTONIC ms of the loop's latest heartbeat, 0 none */
    pthread_mutex_t logmu; /* the library logs from its thread and from ours */
    fd_log_t log; /* the library's own budget of lines per second */
    fd_http_route_fn route; /* everything but the three endpoints above; under mu */
    void *route_ud;
};

int fd_http_alive(int64_t beat_ms, int64_t now_ms) {
    return beat_ms > 0 && now_ms - beat_ms <= FD_HTTP_STALL_MS;
}

unsigned fd_http_conn_limit(int64_t max_conns, int64_t nofile) {
    int64_t n = max_conns;
    if (nofile - FD_HTTP_FD_RESERVE < n) n = nofile - FD_HTTP_FD_RESERVE;
    return n < 1 ? 1u : (unsigned)n;
}

int fd_http_peer_gone(const char *msg) {
    /* libmicrohttpd's wording: "Failed to send ... Error: %s" with its text
     * for a reset (ECONNRESET) or a closed socket (EPIPE) */
    return !strncmp(msg, "Failed to send ", 15) && (strstr(msg, "forcibly closed by remote peer") ||
                                                    strstr(msg, "no longer available for sending"));
}

/* libmicrohttpd's messages (one per refused or failed connection under a
 * flood) as rate-limited logfmt lines instead of raw text on stderr; a
 * client that went away mid-response is debug (fd_http_peer_gone). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    fd_http_t *h = cls;
    char raw[512], esc[1024];
    vsnprintf(raw, sizeof raw, fmt, ap);
    size_t k = 0;
    for (const char *s = raw; *s && k + 2 < sizeof esc; s++) {
        if (*s == '\n' || *s == '\r') continue;
        if (*s == '"' || *s == '\\') esc[k++] = '\\';
        esc[k++] = (*s == '\t') ? ' ' : *s;
    }
    esc[k] = 0;
    pthread_mutex_lock(&h->logmu);
    fd_log_limited(&h->log, fd_http_peer_gone(raw) ? FD_LOG_DEBUG : FD_LOG_WARN, "http server",
                   "detail=\"%s\"", esc);
    pthread_mutex_unlock(&h->logmu);
}

struct MHD_Response *fd_http_response(char *body, size_t n, const char *ctype) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    return r;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *ctype, char *body,
                             size_t n) {
    struct MHD_Response *r = fd_http_response(body, n, ctype);
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state) {
    fd_http_t *h = cls;
    if (strcmp(method, "GET") != 0)
        return reply(c, 405, "text/plain", dupn("method not allowed\n", 19), 19);
    pthread_mutex_lock(&h->mu);
    int alive = fd_http_alive(h->beat_ms, fd_clock_mono_ms());
    int ready = alive && h->ready;
    char *body = NULL;
    size_t n = 0;
    if (strcmp(url, "/metrics") == 0) {
        body = dupn(h->text ? h->text : "", h->n);
        n = h->n;
    }
    pthread_mutex_unlock(&h->mu);
    if (strcmp(url, "/metrics") == 0) return reply(c, 200, "text/plain; version=0.0.4", body, n);
    free(body);
    if (strcmp(url, "/healthz") == 0)
        return alive ? reply(c, 200, "text/plain", dupn("ok\n", 3), 3)
                     : reply(c, 503, "text/plain", dupn("event loop stalled\n", 19), 19);
    if (strcmp(url, "/readyz") == 0)
        return ready ? reply(c, 200, "text/plain", dupn("ready\n", 6), 6)
                     : reply(c, 503, "text/plain", dupn("not ready\n", 10), 10);
    pthread_mutex_lock(&h->mu);
    fd_http_route_fn route = h->route;
    void *route_ud = h->route_ud;
    pthread_mutex_unlock(&h->mu);
    if (route) return (enum MHD_Result)route(route_ud, c, url, state);
    return reply(c, 404, "text/plain", dupn("not found\n", 10), 10);
}

fd_http_t *fd_http_new(const fd_conf_t *c, char *err, size_t errlen) {
    const char *listen = c->http_listen;
    char host[64];
    int port = 0;
    /* conf's parser: fd_conf_finalize refused anything this would */
    if (fd_conf_listen_parse(listen, host, sizeof host, &port, err, errlen) != 0) return NULL;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "http.listen: host must be an IPv4 address or localhost, got \"%s\"",
                 host);
        return NULL;
    }
    fd_http_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->logmu, NULL);
    fd_log_init(&h->log, c->log_level, c->log_rate_per_s);
    h->beat_ms = fd_clock_mono_ms(); /* the loop starts turning right after this */
    struct rlimit rl;
    int64_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                         ? (int64_t)rl.rlim_cur
                         : INT64_MAX;
    unsigned limit = fd_http_conn_limit(c->http_max_connections, nofile);
    /* epoll (or poll): select() cannot watch a descriptor above FD_SETSIZE,
     * and the library closed every such connection with a raw message */
    unsigned flags = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                         ? MHD_USE_EPOLL_INTERNAL_THREAD
                         : MHD_USE_POLL_INTERNAL_THREAD;
    h->d = MHD_start_daemon(
        flags | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)port, NULL, NULL, handle, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first, or early messages go raw */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)c->http_max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->http_timeout_s, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "http.listen: cannot listen on %s (in use?)", listen);
        fd_http_free(h);
        return NULL;
    }
    return h;
}

void fd_http_free(fd_http_t *h) {
    if (!h) return;
    if (h->d) MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->logmu);
    free(h->text);
    free(h);
}

void fd_http_publish(fd_http_t *h, const char *text, size_t n, int ready) {
    char *copy = dupn(text, n);
    if (!copy) return;
    pthread_mutex_lock(&h->mu);
    free(h->text);
    h->text = copy;
    h->n = n;
    h->ready = ready;
    pthread_mutex_unlock(&h->mu);
}

void fd_http_beat(fd_http_t *h, int ready) {
    int64_t now = fd_clock_mono_ms();
    pthread_mutex_lock(&h->mu);
    h->beat_ms = now;
    h->ready = ready;
    pthread_mutex_unlock(&h->mu);
}

void fd_http_set_route(fd_http_t *h, fd_http_route_fn fn, void *ud) {
    pthread_mutex_lock(&h->mu);
    h->route = fn;
    h->route_ud = ud;
    pthread_mutex_unlock(&h->mu);
}
