/*
 * kafka.h — librdkafka client helpers: what the Kafka source, the
 * dead-letter producer and the alert Kafka output share.
 *
 * Logging: librdkafka's log lines and error events become logfmt lines,
 * each repeating problem rate-limited per (client, kind, broker) with
 * fd_log_repeat; the FAIL log line is dropped in favour of the error event
 * it always comes with. Configuration: brokers, kafka.properties and -X go
 * to the client they mean something to (librdkafka's property table says
 * which), and a property value is never echoed (it may be a secret).
 *
 * The wake-up: a client's queue writes one byte to a non-blocking pipe
 * when it becomes non-empty (rd_kafka_queue_io_event_enable); the loop
 * polls the read end. The owner keeps its own uv_poll_t on fds[0] and
 * disables the event (rd_kafka_queue_io_event_enable(q, -1, NULL, 0))
 * before destroying the queue; fd_kafka_wake_close() then closes the pipe.
 *
 * Takes plain values, not the config struct: base/ includes nothing from
 * above it.
 */
#ifndef FD_KAFKA_H
#define FD_KAFKA_H

#include <stddef.h>

#include "base/log.h"

typedef struct {
    char *key, *value;
} fd_kprop_t;

struct rd_kafka_conf_s;
struct rd_kafka_s;
struct rd_kafka_queue_s;

/* librdkafka's log lines as logfmt. The handle's opaque must point at a
 * struct whose first member is the fd_log_t pointer. */
void fd_kafka_log_cb(const struct rd_kafka_s *rk, int level, const char *fac, const char *buf);
/* librdkafka's error events as one logfmt line each, rate-limited per
 * problem (fd_log_repeat). Same opaque convention as fd_kafka_log_cb. */
void fd_kafka_error_cb(struct rd_kafka_s *rk, int err, const char *reason, void *opaque);
/* One error (an event, or a consumer's error message) of client `client`:
 * a rate-limited logfmt line. */
void fd_kafka_problem(fd_log_t *log, const char *client, int err, const char *reason);
/* Builds a librdkafka conf for a client of `type` (RD_KAFKA_PRODUCER or
 * RD_KAFKA_CONSUMER) from brokers and props[0..nprops) (kafka.properties,
 * -X), never logging it. A property that librdkafka documents as the other
 * type's only is not applied. extra: NULL-terminated key/value pairs
 * applied first. */
struct rd_kafka_conf_s *fd_kafka_conf(int type, const char *brokers, const fd_kprop_t *props,
                                      int nprops, const char *const *extra, char *err, size_t errlen);
/* Applies props[0..nprops) to one scratch librdkafka conf with
 * rd_kafka_conf_set, as fd_kafka_conf() does to each client's (a property
 * is checked whatever client it is meant for), so that configuration
 * validation refuses what building the clients would. Returns -1 when
 * librdkafka accepts them all, else the index of the first it refuses, with
 * librdkafka's reason in msg (trailing whitespace removed). The reason may
 * quote the value: the caller masks it before showing it. */
int fd_kafka_props_check(const fd_kprop_t *props, int nprops, char *msg, size_t cap);
/* rd_kafka_new of type RD_KAFKA_PRODUCER or RD_KAFKA_CONSUMER. Takes ownership
 * of kc, also on failure (NULL, err "<what>: <librdkafka's reason>"). */
struct rd_kafka_s *fd_kafka_new(int type, struct rd_kafka_conf_s *kc, const char *what, char *err,
                                size_t errlen);

typedef struct {
    int fds[2]; /* read end polled by the loop, write end given to librdkafka; -1: closed */
} fd_kafka_wake_t;

/* Both ends -1, so fd_kafka_wake_close() is safe before open. */
void fd_kafka_wake_init(fd_kafka_wake_t *w);
/* Opens the pipe (non-blocking both ends) and enables q's wake-up on it.
 * 0, or -errno with err filled. */
int fd_kafka_wake_open(fd_kafka_wake_t *w, struct rd_kafka_queue_s *q, char *err, size_t errlen);
/* Reads every pending wake-up byte (in the poll callback, before serving). */
void fd_kafka_wake_drain(fd_kafka_wake_t *w);
/* Closes both ends; the queue's wake-up must be disabled first. */
void fd_kafka_wake_close(fd_kafka_wake_t *w);

#endif
