/*
 * dlq.c — dead-letter producer on the libuv loop (see dlq.h).
 *
 * Back-pressure: when librdkafka's queue is full (queue.buffering.max.*),
 * a dead letter is kept here, in arrival order, and produced as soon as
 * delivery reports make room; fd_dlq_send still succeeds and `done` still
 * fires once. The caller pauses its input while fd_dlq_backlog() > 0, so
 * this list holds at most what the source had already handed over.
 *
 * Size: a value longer than `max_value` (kafka.dlq_max_message_bytes,
 * capped by the producer's message.max.bytes less room for the headers) is
 * cut to that length and marked `truncated=true`, `original.size=N`. A copy
 * the broker still refuses as too large (a dead-letter topic with a smaller
 * max.message.bytes) is sent again at half the length, down to 1 KiB.
 */
#include "sinks/dlq.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/kafka.h"

struct fd_dlq {
    fd_log_t *log; /* first member: fd_kafka_log_cb finds it through the opaque */
    const fd_conf_t *conf;
    fd_dlq_done_cb done;
    void *ud;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    fd_kafka_wake_t wake;
    uv_poll_t poll;
    uv_timer_t timer;
    int handles_open;
    int outstanding; /* accepted by fd_dlq_send, `done` not fired yet */
    size_t max_value;
    struct pending *head, *tail; /* not yet taken by librdkafka (queue full) */
    int backlog;
    int too_large_streak; /* MSG_SIZE_TOO_LARGE reports since the last success */
};

/* A dead letter waiting for room in librdkafka's queue. */
typedef struct pending {
    struct pending *next;
    rd_kafka_headers_t *h;
    uint64_t token;
    size_t len;
    char payload[];
} pending_t;

/* Room for the headers within message.max.bytes: six short headers, the
 * source topic (<= 249 bytes), the truncation marks, and librdkafka's
 * per-record framing. */
#define HEADER_ROOM 8192
#define MIN_TRUNCATED 1024

static int keep(fd_dlq_t *d, const void *payload, size_t len, rd_kafka_headers_t *h, uint64_t token,
                int front) {
    pending_t *e = malloc(sizeof(*e) + (len ? len : 1));
    if (!e) return -ENOMEM;
    e->h = h;
    e->token = token;
    e->len = len;
    if (len) memcpy(e->payload, payload, len);
    if (front) {
        e->next = d->head;
        d->head = e;
        if (!d->tail) d->tail = e;
    } else {
        e->next = NULL;
        if (d->tail) d->tail->next = e;
        else d->head = e;
        d->tail = e;
    }
    d->backlog++;
    return 0;
}

static rd_kafka_resp_err_t produce(fd_dlq_t *d, const void *payload, size_t len,
                                   rd_kafka_headers_t *h, uint64_t token) {
    return rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->conf->dlq_topic),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_HEADERS(h),
                             RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
}

/* Sets the truncation headers (replacing earlier ones) on h. */
static void mark_truncated(rd_kafka_headers_t *h, size_t original) {
    char so[24];
    snprintf(so, sizeof so, "%zu", original);
    rd_kafka_header_remove(h, "truncated");
    rd_kafka_header_remove(h, "original.size");
    rd_kafka_header_add(h, "truncated", -1, "true", -1);
    rd_kafka_header_add(h, "original.size", -1, so, -1);
}

/* The broker refused a copy as too large: keep a shorter one, first in line.
 * The broker judges whole batches, so a small message batched with a big one
 * is refused too: it goes again unchanged. A topic that refuses even 1 KiB
 * would make this endless; after MAX_TOO_LARGE refusals in a row the write
 * fails as any other. */
#define MAX_TOO_LARGE 64
static int resend_shorter(fd_dlq_t *d, const rd_kafka_message_t *m) {
    rd_kafka_headers_t *mh = NULL;
    if (++d->too_large_streak > MAX_TOO_LARGE || rd_kafka_message_headers(m, &mh) || !mh) return -1;
    rd_kafka_headers_t *h = rd_kafka_headers_copy(mh);
    if (m->len <= MIN_TRUNCATED) {
        if (keep(d, m->payload, m->len, h, (uint64_t)(uintptr_t)m->_private, 1) < 0) {
            rd_kafka_headers_destroy(h);
            return -1;
        }
        return 0;
    }
    const void *v;
    size_t vlen, original = m->len;
    char num[24];
    if (rd_kafka_header_get_last(h, "original.size", &v, &vlen) == 0 && v && vlen < sizeof num) {
        memcpy(num, v, vlen);
        num[vlen] = 0;
        original = (size_t)strtoull(num, NULL, 10);
    }
    mark_truncated(h, original);
    size_t len = m->len / 2 < MIN_TRUNCATED ? MIN_TRUNCATED : m->len / 2;
    if (keep(d, m->payload, len, h, (uint64_t)(uintptr_t)m->_private, 1) < 0) {
        rd_kafka_headers_destroy(h);
        return -1;
    }
    return 0;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    fd_dlq_t *d = opaque;
    uint64_t token = (uint64_t)(uintptr_t)m->_private;
    if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && d->done && resend_shorter(d, m) == 0) {
        fd_log_repeat(d->log, FD_LOG_WARN, "dlq|too_large",
                      "dead letter too large for the topic, sending it shorter", "bytes=%zu", m->len);
        return; /* still outstanding: `done` fires for the shorter copy */
    }
    if (!m->err) d->too_large_streak = 0;
    d->outstanding--;
    if (m->err)
        fd_log_repeat(d->log, FD_LOG_ERROR, "dlq|write_failed", "dead-letter write failed",
                      "error=\"%s\"", rd_kafka_err2str(m->err));
    if (d->done) d->done(d->ud, token, m->err == 0 ? 0 : FD_DLQ_EFAILED);
}

/* Hands kept dead letters to librdkafka while it has room. */
static void drain_backlog(fd_dlq_t *d) {
    while (d->head) {
        pending_t *e = d->head;
        rd_kafka_resp_err_t err = produce(d, e->payload, e->len, e->h, e->token);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return;
        d->head = e->next;
        if (!d->head) d->tail = NULL;
        d->backlog--;
        if (err) {
            rd_kafka_headers_destroy(e->h); /* not taken over on failure */
            fd_log_repeat(d->log, FD_LOG_ERROR, "dlq|produce_failed", "dead-letter produce failed",
                          "error=\"%s\"", rd_kafka_err2str(err));
            d->outstanding--;
            if (d->done) d->done(d->ud, e->token, FD_DLQ_EFAILED);
        }
        free(e);
    }
}

static void serve(fd_dlq_t *d) {
    rd_kafka_poll(d->rk, 0);
    drain_backlog(d);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
    fd_dlq_t *d = h->data;
    fd_kafka_wake_drain(&d->wake);
    serve(d);
}

static void timer_cb(uv_timer_t *h) { serve(h->data); }

fd_dlq_t *fd_dlq_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log, fd_dlq_done_cb done,
                     void *ud, char *err, size_t errlen) {
    fd_dlq_t *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->conf = c;
    d->log = log;
    d->done = done;
    d->ud = ud;
    fd_kafka_wake_init(&d->wake);
    /* sized for the largest dead letter it is given, not librdkafka's
     * 1000000, which is below what the consumer can receive */
    char mmb[24];
    snprintf(mmb, sizeof mmb, "%lld", (long long)(c->dlq_max_message_bytes + HEADER_ROOM));
    const char *extra[] = {"enable.idempotence",
                           "true",
                           "message.timeout.ms",
                           "0",
                           "linger.ms",
                           "5",
                           "message.max.bytes",
                           mmb,
                           NULL};
    rd_kafka_conf_t *kc =
        fd_kafka_conf(RD_KAFKA_PRODUCER, c->brokers, c->kprops, c->nkprops, extra, err, errlen);
    if (!kc) goto fail;
    char got[24];
    size_t gotlen = sizeof got;
    long long limit = c->dlq_max_message_bytes + HEADER_ROOM;
    if (rd_kafka_conf_get(kc, "message.max.bytes", got, &gotlen) == RD_KAFKA_CONF_OK)
        limit = atoll(got);
    limit -= HEADER_ROOM; /* kafka.properties may have set it lower */
    if (limit > c->dlq_max_message_bytes) limit = c->dlq_max_message_bytes;
    d->max_value = limit < MIN_TRUNCATED ? MIN_TRUNCATED : (size_t)limit;
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_log_cb(kc, fd_kafka_log_cb);
    rd_kafka_conf_set_error_cb(kc, fd_kafka_error_cb);
    rd_kafka_conf_set_opaque(kc, d);
    d->rk = fd_kafka_new(RD_KAFKA_PRODUCER, kc, "kafka producer", err, errlen);
    if (!d->rk) goto fail;
    d->q = rd_kafka_queue_get_main(d->rk);
    if (fd_kafka_wake_open(&d->wake, d->q, err, errlen) != 0) goto fail;
    uv_poll_init(loop, &d->poll, d->wake.fds[0]);
    uv_timer_init(loop, &d->timer);
    d->poll.data = d->timer.data = d;
    d->handles_open = 2;
    uv_poll_start(&d->poll, UV_READABLE, poll_cb);
    uv_timer_start(&d->timer, timer_cb, 100, 100);
    return d;
fail:
    fd_dlq_free(d);
    return NULL;
}

static void on_close(uv_handle_t *h) {
    fd_dlq_t *d = h->data;
    if (--d->handles_open == 0) free(d);
}

void fd_dlq_free(fd_dlq_t *d) {
    if (!d) return;
    if (d->rk) {
        rd_kafka_flush(d->rk, 10000);
        rd_kafka_queue_io_event_enable(d->q, -1, NULL, 0);
        rd_kafka_queue_destroy(d->q);
        d->done = NULL; /* reports served by destroy go nowhere */
        rd_kafka_destroy(d->rk);
    }
    while (d->head) { /* never handed over: the caller re-reads them */
        pending_t *e = d->head;
        d->head = e->next;
        rd_kafka_headers_destroy(e->h);
        free(e);
    }
    fd_kafka_wake_close(&d->wake);
    if (d->handles_open) {
        uv_close((uv_handle_t *)&d->poll, on_close);
        uv_close((uv_handle_t *)&d->timer, on_close);
    } else {
        free(d);
    }
}

int fd_dlq_outstanding(const fd_dlq_t *d) { return d->outstanding; }

int fd_dlq_backlog(const fd_dlq_t *d) { return d->backlog; }

int fd_dlq_send(fd_dlq_t *d, const void *payload, size_t len, const char *reason, const char *field,
                const char *detail, const char *topic, int32_t partition, int64_t offset,
                uint64_t token) {
    char sp[16], so[24];
    snprintf(sp, sizeof sp, "%d", (int)partition);
    snprintf(so, sizeof so, "%" PRId64, offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    rd_kafka_header_add(h, "reason", -1, reason, -1);
    rd_kafka_header_add(h, "field", -1, field, -1);
    rd_kafka_header_add(h, "detail", -1, detail, -1);
    rd_kafka_header_add(h, "source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "source.partition", -1, sp, -1);
    rd_kafka_header_add(h, "source.offset", -1, so, -1);
    if (len > d->max_value) {
        mark_truncated(h, len);
        len = d->max_value;
    }
    /* behind kept ones, so dead letters keep their order */
    rd_kafka_resp_err_t e =
        d->head ? RD_KAFKA_RESP_ERR__QUEUE_FULL : produce(d, payload, len, h, token);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        if (keep(d, payload, len, h, token, 0) < 0) {
            rd_kafka_headers_destroy(h);
            return -ENOMEM;
        }
    } else if (e) {
        rd_kafka_headers_destroy(h); /* not taken over on failure */
        fd_log_repeat(d->log, FD_LOG_ERROR, "dlq|produce_failed", "dead-letter produce failed",
                      "error=\"%s\"", rd_kafka_err2str(e));
        return -EIO;
    }
    d->outstanding++;
    return 0;
}

static int ops_send(void *d, const void *payload, size_t len, const char *reason, const char *field,
                    const char *detail, const char *topic, int32_t partition, int64_t offset,
                    uint64_t token) {
    return fd_dlq_send(d, payload, len, reason, field, detail, topic, partition, offset, token);
}
static int ops_outstanding(const void *d) { return fd_dlq_outstanding(d); }
static int ops_backlog(const void *d) { return fd_dlq_backlog(d); }

const fd_dlq_ops_t *fd_dlq_ops(void) {
    static const fd_dlq_ops_t ops = {ops_send, ops_outstanding, ops_backlog};
    return &ops;
}
