/*
 * http.c — /metrics, /healthz, /readyz on libmicrohttpd (see http.h).
 */
#include "sinks/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fd_http {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    char *text;
    size_t n;
    int ready;
    time_t published;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *ctype, char *body,
                             size_t n) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state) {
    fd_http_t *h = cls;
    if (strcmp(method, "GET") != 0) return reply(c, 405, "text/plain", dupn("method not allowed\n", 19), 19);
    pthread_mutex_lock(&h->mu);
    int alive = h->published && time(NULL) - h->published <= 10;
    int ready = alive && h->ready;
    char *body = NULL;
    size_t n = 0;
    if (strcmp(url, "/metrics") == 0) {
        body = dupn(h->text ? h->text : "", h->n);
        n = h->n;
    }
    pthread_mutex_unlock(&h->mu);
    if (strcmp(url, "/metrics") == 0)
        return reply(c, 200, "text/plain; version=0.0.4", body, n);
    free(body);
    if (strcmp(url, "/healthz") == 0)
        return alive ? reply(c, 200, "text/plain", dupn("ok\n", 3), 3)
                     : reply(c, 503, "text/plain", dupn("event loop stalled\n", 19), 19);
    if (strcmp(url, "/readyz") == 0)
        return ready ? reply(c, 200, "text/plain", dupn("ready\n", 6), 6)
                     : reply(c, 503, "text/plain", dupn("not ready\n", 10), 10);
    return reply(c, 404, "text/plain", dupn("not found\n", 10), 10);
}

fd_http_t *fd_http_new(const char *listen, char *err, size_t errlen) {
    char host[64];
    int port = 0;
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host || (port = atoi(colon + 1)) <= 0 || port > 65535) {
        snprintf(err, errlen, "http.listen: want host:port, got \"%s\"", listen);
        return NULL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "http.listen: host must be an IPv4 address or localhost, got \"%s\"", host);
        return NULL;
    }
    fd_http_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
                            handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
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
    h->published = time(NULL);
    pthread_mutex_unlock(&h->mu);
}
