/*
 * kafka.c — librdkafka client helpers shared by every Kafka client (see
 * kafka.h): logging, property scoping and checking, construction, and the
 * queue wake-up.
 *
 * Invariant: nothing here keeps a client; the caller owns every handle.
 * librdkafka's own threads only ever write one byte to a wake-up pipe.
 */
#include "base/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* librdkafka text inside a logfmt value: double quotes become single ones. */
static void quote_safe(char *dst, size_t cap, const char *src) {
    size_t i = 0;
    for (; src && src[i] && i < cap - 1; i++) dst[i] = src[i] == '"' ? '\'' : src[i];
    dst[i] = 0;
}

/* The key under which a repeating librdkafka problem is rate-limited: the
 * client, what kind of problem, the broker it concerns (the text before the
 * first ": ", verbatim) and, for a log line (`whole`), the rest of the text
 * without its digits, which change on every retry ("after 0ms"). An error
 * event's kind is its error code; its text also changes with librdkafka's
 * own ", 1 identical error(s) suppressed" and is left out. */
static void problem_key(char *key, size_t cap, const char *client, const char *kind,
                        const char *text, int whole) {
    size_t n = (size_t)snprintf(key, cap, "kafka|%s|%s|", client, kind);
    if (!text || n >= cap) return;
    if (text[0] == '[') { /* "[thrd:...]: " names a thread, not the problem */
        const char *end = strstr(text, "]: ");
        if (end) text = end + 3;
    }
    const char *colon = strstr(text, ": ");
    size_t head = colon ? (size_t)(colon - text) : 0;
    for (size_t i = 0; text[i] && n < cap - 1 && (whole || i < head); i++)
        if (i < head || text[i] < '0' || text[i] > '9') key[n++] = text[i];
    key[n] = 0;
}

void fd_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    fd_log_t **log = rd_kafka_opaque(rk);
    if (!log || !*log) return;
    /* A broker failure is logged by librdkafka as FAIL and then raised as an
     * error event (fd_kafka_error_cb, or a consumer error message): the event
     * alone makes one line per problem. */
    if (fac && strcmp(fac, "FAIL") == 0) return;
    /* syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug */
    fd_log_level_t lv = level <= 3   ? FD_LOG_ERROR
                        : level == 4 ? FD_LOG_WARN
                        : level <= 6 ? FD_LOG_INFO
                                     : FD_LOG_DEBUG;
    if (!FD_LOG_ON(*log, lv)) return;
    char text[512];
    quote_safe(text, sizeof text, buf);
    if (lv < FD_LOG_WARN) {
        fd_log(*log, lv, "librdkafka", "client=\"%s\" facility=%s text=\"%s\"", rd_kafka_name(rk),
               fac, text);
        return;
    }
    char key[600];
    problem_key(key, sizeof key, rd_kafka_name(rk), fac, buf, 1);
    fd_log_repeat(*log, lv, key, "librdkafka", "client=\"%s\" facility=%s text=\"%s\"",
                  rd_kafka_name(rk), fac, text);
}

void fd_kafka_problem(fd_log_t *log, const char *client, int err, const char *reason) {
    char text[512], key[600];
    quote_safe(text, sizeof text, reason);
    problem_key(key, sizeof key, client, rd_kafka_err2name((rd_kafka_resp_err_t)err), reason, 0);
    fd_log_repeat(log, FD_LOG_ERROR, key, "kafka error", "client=\"%s\" error=%s text=\"%s\"",
                  client, rd_kafka_err2name((rd_kafka_resp_err_t)err), text);
}

void fd_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    fd_log_t **log = opaque;
    if (log && *log) fd_kafka_problem(*log, rd_kafka_name(rk), err, reason);
}

/* librdkafka's own property table ("name | C/P | ..." rows), read once:
 * it says which properties are the consumer's (C), the producer's (P) or
 * both (*), so that kafka.properties go only where they mean something and
 * neither client warns (CONFWARN) about the other's properties. */
static char *prop_table;
static pthread_once_t prop_once = PTHREAD_ONCE_INIT;

static void load_prop_table(void) {
    size_t len = 0;
    FILE *f = open_memstream(&prop_table, &len);
    if (!f) return;
    rd_kafka_conf_properties_show(f);
    fclose(f);
}

/* 'C', 'P', or '*' (both, and any property librdkafka will judge itself) */
static char prop_scope(const char *name) {
    pthread_once(&prop_once, load_prop_table);
    size_t n = strlen(name);
    for (const char *l = prop_table; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, n) != 0 || l[n] != ' ') continue;
        const char *bar = strchr(l, '|');
        const char *eol = strchr(l, '\n');
        if (!bar || (eol && bar > eol)) continue;
        for (bar++; *bar == ' '; bar++) {
        }
        return *bar == 'C' || *bar == 'P' ? *bar : '*';
    }
    return '*';
}

rd_kafka_conf_t *fd_kafka_conf(int type, const char *brokers, const fd_kprop_t *props, int nprops,
                               const char *const *extra, char *err, size_t errlen) {
    char other = type == RD_KAFKA_PRODUCER ? 'C' : 'P';
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char e[512];
    if (rd_kafka_conf_set(kc, "bootstrap.servers", brokers, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka.brokers: %s", e);
        goto fail;
    }
    for (int i = 0; extra && extra[i]; i += 2) {
        if (rd_kafka_conf_set(kc, extra[i], extra[i + 1], e, sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s: %s", extra[i], e);
            goto fail;
        }
    }
    for (int i = 0; i < nprops; i++) {
        if (prop_scope(props[i].key) == other) continue; /* the other client's property */
        if (rd_kafka_conf_set(kc, props[i].key, props[i].value, e, sizeof e) != RD_KAFKA_CONF_OK) {
            /* name the property, never its value (it may be a secret) */
            snprintf(err, errlen, "kafka.properties.%s: %s", props[i].key, e);
            goto fail;
        }
    }
    return kc;
fail:
    rd_kafka_conf_destroy(kc);
    return NULL;
}

int fd_kafka_props_check(const fd_kprop_t *props, int nprops, char *msg, size_t cap) {
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    int bad = -1;
    for (int i = 0; i < nprops && bad < 0; i++) {
        char e[512] = "";
        if (rd_kafka_conf_set(kc, props[i].key, props[i].value, e, sizeof e) == RD_KAFKA_CONF_OK)
            continue;
        size_t n = strlen(e);
        while (n > 0 && (e[n - 1] == '\n' || e[n - 1] == ' ' || e[n - 1] == '\r')) e[--n] = '\0';
        snprintf(msg, cap, "%s", e[0] ? e : "refused by librdkafka");
        bad = i;
    }
    rd_kafka_conf_destroy(kc);
    return bad;
}

rd_kafka_t *fd_kafka_new(int type, rd_kafka_conf_t *kc, const char *what, char *err, size_t errlen) {
    char e[512];
    rd_kafka_t *rk = rd_kafka_new((rd_kafka_type_t)type, kc, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(kc); /* rd_kafka_new owns it only on success */
        snprintf(err, errlen, "%s: %s", what, e);
    }
    return rk;
}

void fd_kafka_wake_init(fd_kafka_wake_t *w) { w->fds[0] = w->fds[1] = -1; }

int fd_kafka_wake_open(fd_kafka_wake_t *w, rd_kafka_queue_t *q, char *err, size_t errlen) {
    if (pipe(w->fds) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        w->fds[0] = w->fds[1] = -1;
        return -errno;
    }
    fcntl(w->fds[0], F_SETFL, O_NONBLOCK);
    fcntl(w->fds[1], F_SETFL, O_NONBLOCK);
    rd_kafka_queue_io_event_enable(q, w->fds[1], "1", 1);
    return 0;
}

void fd_kafka_wake_drain(fd_kafka_wake_t *w) {
    char buf[256];
    while (read(w->fds[0], buf, sizeof buf) > 0) {
    }
}

void fd_kafka_wake_close(fd_kafka_wake_t *w) {
    if (w->fds[0] >= 0) close(w->fds[0]);
    if (w->fds[1] >= 0) close(w->fds[1]);
    w->fds[0] = w->fds[1] = -1;
}
