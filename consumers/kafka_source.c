/*
 * kafka_source.c — librdkafka consumer on the libuv loop (see the header).
 *
 * Invariant: the only thread that calls into the pipeline is the loop's;
 * librdkafka's own threads only write one byte to the wake-up pipe.
 */
#include "consumers/kafka_source.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1000

struct fd_kafka_source {
    fd_log_t *log; /* first member: fd_kafka_log_cb finds it through the opaque */
    uv_loop_t *loop;
    const fd_conf_t *conf;
    fd_kafka_source_cbs_t cbs;
    void *ud;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int pipefd[2];
    uv_poll_t poll;
    uv_idle_t idle;
    uv_timer_t timer;
    int handles_open;
    int stopped;
    int ever_assigned; /* see fd_kafka_source_free */
};

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
static void problem_key(char *key, size_t cap, const char *client, const char *kind, const char *text,
                        int whole) {
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
    fd_log_level_t lv = level <= 3 ? FD_LOG_ERROR : level == 4 ? FD_LOG_WARN : level <= 6 ? FD_LOG_INFO : FD_LOG_DEBUG;
    if (!FD_LOG_ON(*log, lv)) return;
    char text[512];
    quote_safe(text, sizeof text, buf);
    if (lv < FD_LOG_WARN) {
        fd_log(*log, lv, "librdkafka", "client=\"%s\" facility=%s text=\"%s\"", rd_kafka_name(rk), fac, text);
        return;
    }
    char key[600];
    problem_key(key, sizeof key, rd_kafka_name(rk), fac, buf, 1);
    fd_log_repeat(*log, lv, key, "librdkafka", "client=\"%s\" facility=%s text=\"%s\"", rd_kafka_name(rk), fac,
                  text);
}

static void kafka_problem(fd_log_t *log, const char *client, int err, const char *reason) {
    char text[512], key[600];
    quote_safe(text, sizeof text, reason);
    problem_key(key, sizeof key, client, rd_kafka_err2name((rd_kafka_resp_err_t)err), reason, 0);
    fd_log_repeat(log, FD_LOG_ERROR, key, "kafka error", "client=\"%s\" error=%s text=\"%s\"", client,
                  rd_kafka_err2name((rd_kafka_resp_err_t)err), text);
}

void fd_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    fd_log_t **log = opaque;
    if (log && *log) kafka_problem(*log, rd_kafka_name(rk), err, reason);
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

rd_kafka_conf_t *fd_kafka_conf(int type, const fd_conf_t *c, const char *const *extra, char *err, size_t errlen) {
    char other = type == RD_KAFKA_PRODUCER ? 'C' : 'P';
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char e[512];
    if (rd_kafka_conf_set(kc, "bootstrap.servers", c->brokers, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka.brokers: %s", e);
        goto fail;
    }
    for (int i = 0; extra && extra[i]; i += 2) {
        if (rd_kafka_conf_set(kc, extra[i], extra[i + 1], e, sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "%s: %s", extra[i], e);
            goto fail;
        }
    }
    for (int i = 0; i < c->nkprops; i++) {
        if (prop_scope(c->kprops[i].key) == other) continue; /* the other client's property */
        if (rd_kafka_conf_set(kc, c->kprops[i].key, c->kprops[i].value, e, sizeof e) != RD_KAFKA_CONF_OK) {
            /* name the property, never its value (it may be a secret) */
            snprintf(err, errlen, "kafka.properties.%s: %s", c->kprops[i].key, e);
            goto fail;
        }
    }
    return kc;
fail:
    rd_kafka_conf_destroy(kc);
    return NULL;
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

static int topic_index(const fd_kafka_source_t *s, const char *name) {
    for (int i = 0; i < s->conf->ntopics; i++)
        if (strcmp(s->conf->topics[i].name, name) == 0) return i;
    return -1;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    fd_kafka_source_t *s = opaque;
    int n = parts->cnt;
    int *ti = calloc((size_t)n + 1, sizeof(int));
    int32_t *pa = calloc((size_t)n + 1, sizeof(int32_t));
    int64_t *off = calloc((size_t)n + 1, sizeof(int64_t));
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (!ti || !pa || !off) abort(); /* cannot continue a rebalance without memory */
    for (int i = 0; i < n; i++) {
        ti[i] = topic_index(s, parts->elems[i].topic);
        pa[i] = parts->elems[i].partition;
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        s->ever_assigned = 1;
        int known = s->cbs.on_assign(s->ud, n, ti, pa, off) == 0;
        for (int i = 0; i < n; i++)
            parts->elems[i].offset = known ? (off[i] < 0 ? RD_KAFKA_OFFSET_BEGINNING : off[i])
                                           : RD_KAFKA_OFFSET_INVALID;
        fd_log(s->log, FD_LOG_INFO, "partitions assigned", "count=%d offsets_known=%d", n, known);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                fd_log(s->log, FD_LOG_ERROR, "incremental assign failed", "error=\"%s\"", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        if (!known) rd_kafka_pause_partitions(rk, parts);
    } else {
        s->cbs.on_revoke(s->ud, n, ti, pa);
        fd_log(s->log, FD_LOG_INFO, "partitions revoked", "count=%d", n);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e) rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
    }
    free(ti);
    free(pa);
    free(off);
}

/* Drains up to `budget` messages; returns 1 if the queue may hold more. */
static int drain(fd_kafka_source_t *s, int budget) {
    rd_kafka_message_t *msgs[BATCH];
    while (budget > 0 && !s->stopped) {
        ssize_t n = rd_kafka_consume_batch_queue(s->q, 0, msgs, BATCH);
        if (n <= 0) return 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    kafka_problem(s->log, rd_kafka_name(s->rk), m->err, rd_kafka_message_errstr(m));
            } else if (!s->stopped) {
                int ti = topic_index(s, rd_kafka_topic_name(m->rkt));
                if (ti >= 0) s->cbs.on_message(s->ud, ti, m->partition, m->offset, m->payload, m->len);
            }
            rd_kafka_message_destroy(m);
        }
        budget -= (int)n;
    }
    return budget <= 0;
}

static void idle_cb(uv_idle_t *h) {
    fd_kafka_source_t *s = h->data;
    if (!drain(s, BATCH * 4)) uv_idle_stop(&s->idle);
}

static void wake(fd_kafka_source_t *s) {
    if (drain(s, BATCH * 4)) uv_idle_start(&s->idle, idle_cb);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
    fd_kafka_source_t *s = h->data;
    char buf[256];
    while (read(s->pipefd[0], buf, sizeof buf) > 0) {
    }
    wake(s);
}

static void timer_cb(uv_timer_t *h) { wake(h->data); }

fd_kafka_source_t *fd_kafka_source_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                                       const fd_kafka_source_cbs_t *cbs, void *ud,
                                       char *err, size_t errlen) {
    fd_kafka_source_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->conf = c;
    s->log = log;
    s->cbs = *cbs;
    s->ud = ud;
    s->pipefd[0] = s->pipefd[1] = -1;
    const char *extra[] = {"group.id", c->group,
                           "partition.assignment.strategy", "cooperative-sticky",
                           "enable.auto.commit", "false",
                           "enable.auto.offset.store", "false",
                           "auto.offset.reset", "earliest",
                           "enable.partition.eof", "false",
                           /* partitions added to a topic are found within
                            * 30 s instead of librdkafka's 300 s */
                           "topic.metadata.refresh.interval.ms", "30000",
                           NULL};
    rd_kafka_conf_t *kc = fd_kafka_conf(RD_KAFKA_CONSUMER, c, extra, err, errlen);
    if (!kc) goto fail;
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_log_cb(kc, fd_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, fd_kafka_error_cb);
    rd_kafka_conf_set_opaque(kc, s);
    s->rk = fd_kafka_new(RD_KAFKA_CONSUMER, kc, "kafka consumer", err, errlen);
    if (!s->rk) goto fail;
    rd_kafka_poll_set_consumer(s->rk);
    s->q = rd_kafka_queue_get_consumer(s->rk);
    if (pipe(s->pipefd) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    fcntl(s->pipefd[0], F_SETFL, O_NONBLOCK);
    fcntl(s->pipefd[1], F_SETFL, O_NONBLOCK);
    rd_kafka_queue_io_event_enable(s->q, s->pipefd[1], "1", 1);

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(c->ntopics);
    for (int i = 0; i < c->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, c->topics[i].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(s->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (rerr) {
        snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(rerr));
        goto fail;
    }
    uv_poll_init(loop, &s->poll, s->pipefd[0]);
    uv_idle_init(loop, &s->idle);
    uv_timer_init(loop, &s->timer);
    s->poll.data = s->idle.data = s->timer.data = s;
    s->handles_open = 3;
    uv_poll_start(&s->poll, UV_READABLE, poll_cb);
    uv_timer_start(&s->timer, timer_cb, 100, 100);
    return s;
fail:
    fd_kafka_source_free(s);
    return NULL;
}

void fd_kafka_source_stop(fd_kafka_source_t *s) {
    if (!s || s->stopped) return;
    s->stopped = 1;
    if (s->handles_open) {
        uv_poll_stop(&s->poll);
        uv_idle_stop(&s->idle);
        uv_timer_stop(&s->timer);
    }
}

static void on_close(uv_handle_t *h) {
    fd_kafka_source_t *s = h->data;
    if (--s->handles_open == 0) free(s);
}

void fd_kafka_source_free(fd_kafka_source_t *s) {
    if (!s) return;
    fd_kafka_source_stop(s);
    if (s->rk) {
        rd_kafka_queue_io_event_enable(s->q, -1, NULL, 0);
        rd_kafka_queue_destroy(s->q);
        if (s->ever_assigned) {
            rd_kafka_consumer_close(s->rk); /* serves the final revoke */
            rd_kafka_destroy(s->rk);
        } else {
            /* librdkafka 2.0.2 asserts in the cooperative-sticky assignor
             * when a member that never got an assignment leaves the group
             * (confluentinc/librdkafka#4312, fixed in 2.2). Without an
             * assignment there is nothing to hand over: skip the leave. */
            rd_kafka_destroy_flags(s->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        }
        s->rk = NULL;
    }
    if (s->pipefd[0] >= 0) close(s->pipefd[0]);
    if (s->pipefd[1] >= 0) close(s->pipefd[1]);
    if (s->handles_open) {
        uv_close((uv_handle_t *)&s->poll, on_close);
        uv_close((uv_handle_t *)&s->idle, on_close);
        uv_close((uv_handle_t *)&s->timer, on_close);
    } else {
        free(s);
    }
}

static rd_kafka_topic_partition_list_t *one(fd_kafka_source_t *s, int ti, int32_t p, int64_t off) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->conf->topics[ti].name, p)->offset = off;
    return l;
}

int fd_kafka_source_pause(fd_kafka_source_t *s, int ti, int32_t p, int pause) {
    rd_kafka_topic_partition_list_t *l = one(s, ti, p, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(s->rk, l) : rd_kafka_resume_partitions(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e ? -EINVAL : 0;
}

int fd_kafka_source_seek(fd_kafka_source_t *s, int ti, int32_t p, int64_t offset) {
    rd_kafka_topic_partition_list_t *l = one(s, ti, p, offset < 0 ? RD_KAFKA_OFFSET_BEGINNING : offset);
    /* a bounded wait: the fetcher has taken the new position when this returns */
    rd_kafka_error_t *e = rd_kafka_seek_partitions(s->rk, l, 2000);
    int rc = 0;
    if (e) {
        fd_log(s->log, FD_LOG_WARN, "kafka seek failed", "topic=%s partition=%d error=\"%s\"",
               s->conf->topics[ti].name, (int)p, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rc = -EIO;
    } else if (l->elems[0].err) {
        fd_log(s->log, FD_LOG_WARN, "kafka seek failed", "topic=%s partition=%d error=\"%s\"",
               s->conf->topics[ti].name, (int)p, rd_kafka_err2str(l->elems[0].err));
        rc = -EIO;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

void fd_kafka_source_commit(fd_kafka_source_t *s, int ti, int32_t p, int64_t offset) {
    rd_kafka_topic_partition_list_t *l = one(s, ti, p, offset);
    rd_kafka_commit(s->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}
