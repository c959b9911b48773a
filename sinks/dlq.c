/*
 * dlq.c — dead-letter producer on the libuv loop (see dlq.h).
 */
#include "sinks/dlq.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumers/kafka_source.h"

struct fd_dlq {
    fd_log_t *log; /* first member: fd_kafka_log_cb finds it through the opaque */
    const fd_conf_t *conf;
    fd_dlq_done_cb done;
    void *ud;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer;
    int handles_open;
    int outstanding;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    fd_dlq_t *d = opaque;
    uint64_t token = (uint64_t)(uintptr_t)m->_private;
    d->outstanding--;
    if (m->err)
        fd_log(d->log, FD_LOG_ERROR, "dead-letter write failed", "error=\"%s\"", rd_kafka_err2str(m->err));
    if (d->done) d->done(d->ud, token, m->err == 0);
}

static void serve(fd_dlq_t *d) { rd_kafka_poll(d->rk, 0); }

static void poll_cb(uv_poll_t *h, int status, int events) {
    fd_dlq_t *d = h->data;
    char buf[256];
    while (read(d->pipefd[0], buf, sizeof buf) > 0) {
    }
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
    d->pipefd[0] = d->pipefd[1] = -1;
    const char *extra[] = {"enable.idempotence", "true", "message.timeout.ms", "0",
                           "linger.ms", "5", NULL};
    rd_kafka_conf_t *kc = fd_kafka_conf(c, extra, err, errlen);
    if (!kc) goto fail;
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_log_cb(kc, fd_kafka_log_cb);
    rd_kafka_conf_set_opaque(kc, d);
    d->rk = fd_kafka_new(RD_KAFKA_PRODUCER, kc, "kafka producer", err, errlen);
    if (!d->rk) goto fail;
    d->q = rd_kafka_queue_get_main(d->rk);
    if (pipe(d->pipefd) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    fcntl(d->pipefd[0], F_SETFL, O_NONBLOCK);
    fcntl(d->pipefd[1], F_SETFL, O_NONBLOCK);
    rd_kafka_queue_io_event_enable(d->q, d->pipefd[1], "1", 1);
    uv_poll_init(loop, &d->poll, d->pipefd[0]);
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
    if (d->pipefd[0] >= 0) close(d->pipefd[0]);
    if (d->pipefd[1] >= 0) close(d->pipefd[1]);
    if (d->handles_open) {
        uv_close((uv_handle_t *)&d->poll, on_close);
        uv_close((uv_handle_t *)&d->timer, on_close);
    } else {
        free(d);
    }
}

int fd_dlq_outstanding(const fd_dlq_t *d) { return d->outstanding; }

int fd_dlq_send(fd_dlq_t *d, const void *payload, size_t len, const char *reason, const char *field,
                const char *detail, const char *topic, int32_t partition, int64_t offset, uint64_t token) {
    char sp[16], so[24];
    snprintf(sp, sizeof sp, "%d", (int)partition);
    snprintf(so, sizeof so, "%" PRId64, offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    rd_kafka_header_add(h, "reason", -1, reason, -1);
    rd_kafka_header_add(h, "field", -1, field, -1);
    rd_kafka_header_add(h, "detail", -1, detail, -1);
    rd_kafka_header_add(h, "source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "source.partition", -1, sp, -1);
    rd_kafka_header_add(h, "source.offset", -1, so, -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->rk, RD_KAFKA_V_TOPIC(d->conf->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h); /* not taken over on failure */
        fd_log(d->log, FD_LOG_ERROR, "dead-letter produce failed", "error=\"%s\"", rd_kafka_err2str(e));
        return e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? -EAGAIN : -EIO;
    }
    d->outstanding++;
    return 0;
}
