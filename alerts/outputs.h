/*
 * outputs.h — delivery of alert transitions: stdout JSON lines, a Kafka
 * topic, Alertmanager (v2 API) and a signed generic webhook.
 *
 * The evaluator (alerts/store.c) reads transitions from the Redis stream
 * `{prefix}:alerts` and hands each enabled output the entries it must
 * deliver, tagged; the output calls back with the tag once the entry is
 * delivered (HTTP 2xx, Kafka delivery report, line written). The evaluator
 * advances that output's cursor in Redis over the acknowledged prefix, so
 * a restart or a lease hand-over resumes delivery where it stopped
 * (at-least-once; receivers deduplicate by transition id).
 *
 * HTTP runs on libcurl's multi interface on the process's libuv loop
 * (curl_multi_socket_action driven by uv_poll and one uv_timer), one request
 * in flight per receiver, in stream order, with a per-attempt timeout and
 * retries with exponential backoff and jitter (half of each delay random).
 * A slow or dead receiver therefore delays only its own queue, never the
 * loop. Memory: at most `alerts.queue_size` entries per output; the
 * evaluator reads no further
 * from the stream than there is room, so the backlog waits in Redis, and
 * Alertmanager re-sends that find the queue full are dropped and counted.
 */
#ifndef FD_ALERT_HTTP_H
#define FD_ALERT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "alerts/alerts.h"
#include "conf/conf.h"
#include "base/log.h"

typedef struct fd_alert_out fd_alert_out_t;

/* An entry given to fd_alert_out_send() is delivered: tag comes back. */
typedef void (*fd_alert_ack_cb)(void *ud, int out, uint64_t tag);

/* Borrows loop, c and log. Creates only the outputs the configuration
 * enables (a Kafka producer only with alerts.kafka.enabled). */
fd_alert_out_t *fd_alert_out_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log,
                                 fd_alert_ack_cb ack, void *ud, char *err, size_t errlen);
/* Closes handles; undelivered entries are dropped (they are still in the
 * stream, after the persisted cursor). */
void fd_alert_out_free(fd_alert_out_t *o);
int fd_alert_out_enabled(const fd_alert_out_t *o, int out);
/* Free queue slots of an output. */
size_t fd_alert_out_room(const fd_alert_out_t *o, int out);
/* Queues one transition (its JSON text, as stored in the stream) for out.
 * Returns 0, -ENOBUFS when the queue is full, -ENOMEM. */
int fd_alert_out_send(fd_alert_out_t *o, int out, const char *transition_json,
                      const char *fingerprint, uint64_t tag);
/* Alertmanager re-send of the currently firing (and recently resolved)
 * alerts: a JSON array of transition objects; best effort, one attempt. */
int fd_alert_out_resend(fd_alert_out_t *o, const char *transitions_array);
/* Drops every queued entry not yet acknowledged (the lease was lost: the
 * next holder delivers them from the stream). */
void fd_alert_out_reset(fd_alert_out_t *o);
void fd_alert_out_stats(const fd_alert_out_t *o, fd_alert_out_stats_t *st);

/* ---- pure helpers (unit-tested) ------------------------------------------ */

/* Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key, id "." ts "."
 * body)); key is the secret's bytes, or base64-decoded after a "whsec_"
 * prefix. Returns the length written to out, or -1. */
int fd_alert_webhook_sign(const char *secret, const char *id, int64_t ts, const char *body,
                          size_t len, char *out, size_t cap);
/* The Alertmanager v2 body (JSON array) for transitions (cJSON objects
 * passed as void *): labels, annotations, startsAt, endsAt, generatorURL.
 * A firing alert's endsAt is now_ms + ends_in_ms. Returns malloc'd text. */
char *fd_alert_am_body(void *const *transitions, int n, int64_t now_ms, int64_t ends_in_ms,
                       const char *generator_url);
/* Milliseconds since the epoch as RFC 3339 UTC: 2024-06-11T08:00:00.000Z */
void fd_alert_rfc3339(int64_t ms, char *buf, size_t cap);

#endif
