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
    fd_source_cbs_t cbs;
    void *ud;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    fd_kafka_wake_t wake;
    uv_poll_t poll;
    uv_idle_t idle;
    uv_timer_t timer;
    int handles_open;
    int stopped;
    int ever_assigned; /* see fd_kafka_source_free */
    int held; /* fd_kafka_source_hold: nothing is drained meanwhile */
};

static int topic_index(const fd_kafka_source_t *s, const char *name) {
    for (int i = 0; i < s->conf->ntopics; i++)
        if (strcmp(s->conf->topics[i].name, name) == 0) return i;
    return -1;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
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
            parts->elems[i].offset =
                known ? (off[i] < 0 ? RD_KAFKA_OFFSET_BEGINNING : off[i]) : RD_KAFKA_OFFSET_INVALID;
        fd_log(s->log, FD_LOG_INFO, "partitions assigned", "count=%d offsets_known=%d", n, known);
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                fd_log(s->log, FD_LOG_ERROR, "incremental assign failed", "error=\"%s\"",
                       rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        /* librdkafka keeps a partition's pause across a revoke and a new
         * assignment (confluentinc/librdkafka#1849): a partition paused here
         * (halted, syncing, the DLQ full) when it was revoked would come back
         * paused while the pipeline takes it as running, and never be read
         * again. So the pause state is set explicitly on every assignment. */
        if (!known) rd_kafka_pause_partitions(rk, parts);
        else rd_kafka_resume_partitions(rk, parts);
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
    while (budget > 0 && !s->stopped && !s->held) {
        ssize_t n = rd_kafka_consume_batch_queue(s->q, 0, msgs, BATCH);
        if (n <= 0) return 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fd_kafka_problem(s->log, rd_kafka_name(s->rk), m->err,
                                     rd_kafka_message_errstr(m));
            } else if (!s->stopped) {
                int ti = topic_index(s, rd_kafka_topic_name(m->rkt));
                if (ti >= 0)
                    s->cbs.on_message(s->ud, ti, m->partition, m->offset, m->payload, m->len);
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
    fd_kafka_wake_drain(&s->wake);
    wake(s);
}

static void timer_cb(uv_timer_t *h) { wake(h->data); }

fd_kafka_source_t *fd_kafka_source_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                                       const fd_source_cbs_t *cbs, void *ud, char *err,
                                       size_t errlen) {
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
    fd_kafka_wake_init(&s->wake);
    const char *extra[] = {"group.id", c->group, "partition.assignment.strategy",
                           "cooperative-sticky", "enable.auto.commit", "false",
                           "enable.auto.offset.store", "false", "auto.offset.reset", "earliest",
                           "enable.partition.eof", "false",
                           /* partitions added to a topic are found within
                            * 30 s instead of librdkafka's 300 s */
                           "topic.metadata.refresh.interval.ms", "30000", NULL};
    rd_kafka_conf_t *kc =
        fd_kafka_conf(RD_KAFKA_CONSUMER, c->brokers, c->kprops, c->nkprops, extra, err, errlen);
    if (!kc) goto fail;
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_log_cb(kc, fd_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, fd_kafka_error_cb);
    rd_kafka_conf_set_opaque(kc, s);
    s->rk = fd_kafka_new(RD_KAFKA_CONSUMER, kc, "kafka consumer", err, errlen);
    if (!s->rk) goto fail;
    rd_kafka_poll_set_consumer(s->rk);
    s->q = rd_kafka_queue_get_consumer(s->rk);
    if (fd_kafka_wake_open(&s->wake, s->q, err, errlen) != 0) goto fail;

    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(c->ntopics);
    for (int i = 0; i < c->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, c->topics[i].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(s->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (rerr) {
        snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(rerr));
        goto fail;
    }
    uv_poll_init(loop, &s->poll, s->wake.fds[0]);
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
    fd_kafka_wake_close(&s->wake);
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
    rd_kafka_resp_err_t e =
        pause ? rd_kafka_pause_partitions(s->rk, l) : rd_kafka_resume_partitions(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e ? -EINVAL : 0;
}

int fd_kafka_source_seek(fd_kafka_source_t *s, int ti, int32_t p, int64_t offset) {
    rd_kafka_topic_partition_list_t *l =
        one(s, ti, p, offset < 0 ? RD_KAFKA_OFFSET_BEGINNING : offset);
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

/* Held, the queue is simply not drained: librdkafka keeps its prefetched
 * messages and stops fetching a partition once its queue is at
 * queued.max.messages.kbytes, so nothing is fetched twice. Released, the
 * draining starts again from the loop (never from inside the caller, which
 * is the pipeline in the middle of its own bookkeeping). */
void fd_kafka_source_hold(fd_kafka_source_t *s, int hold) {
    if (s->held == hold) return;
    s->held = hold;
    if (!hold && !s->stopped && s->handles_open) uv_idle_start(&s->idle, idle_cb);
}

static void ops_hold(void *s, int hold) { fd_kafka_source_hold(s, hold); }

static int ops_pause(void *s, int key, int32_t part, int pause) {
    return fd_kafka_source_pause(s, key, part, pause);
}
static int ops_seek(void *s, int key, int32_t part, int64_t off) {
    return fd_kafka_source_seek(s, key, part, off);
}
static void ops_commit(void *s, int key, int32_t part, int64_t off) {
    fd_kafka_source_commit(s, key, part, off);
}
static void ops_stop(void *s) { fd_kafka_source_stop(s); }

const fd_source_ops_t *fd_kafka_source_ops(void) {
    static const fd_source_ops_t ops = {ops_pause, ops_seek, ops_commit, ops_stop, NULL, ops_hold};
    return &ops;
}
