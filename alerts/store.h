/*
 * store.h — private to alerts/: the evaluator's Redis side (store.c).
 * Worker thread only. Every call that fails leaves a message in a->errmsg
 * and, when the connection is no longer in step, disconnects.
 */
#ifndef FD_ALERT_STORE_H
#define FD_ALERT_STORE_H

#include "alerts/alerts_int.h"
#include "base/err.h"

#define FD_ALERTS_EFAILED \
    (FD_ERR_ALERTS - 1) /* the round failed (Redis, memory, a bad reply): retried */
#define FD_ALERTS_EFENCED \
    (FD_ERR_ALERTS - 2) /* the commit was fenced: this instance lost the lease */

void fd_alert_store_set_err(fd_alerts_t *a, const char *what, const redisReply *r);

void fd_alert_store_disconnect(fd_alerts_t *a);

int fd_alert_store_connect(fd_alerts_t *a);

/* On gaining the lease: states, cursor and delivery cursors from Redis. */
int fd_alert_store_load_state(fd_alerts_t *a);

/* After a failed commit (a->stale): the alert states and the cursor from
 * Redis again, the delivery cursors left as they are. */
int fd_alert_store_reload(fd_alerts_t *a);

/* The last step the global watermark has passed, or INT64_MIN if unknown. */
int64_t fd_alert_store_eval_to(fd_alerts_t *a, int64_t now);

/* Scope lists per rule: every scope of the rule's grouping updated within
 * the m1 TTL, plus the scopes of the rule's cached alerts (so that an alert
 * whose scope went quiet still resolves). */
int fd_alert_store_load_scopes(fd_alerts_t *a, int64_t now);

int fd_alert_store_append_read(fd_alerts_t *a, int ri, int64_t t);

/* One commit: dirty states, the batch's transitions, cursor, delivery
 * cursors. Returns 0, FD_ALERTS_EFAILED, or FD_ALERTS_EFENCED (lease lost). */
int fd_alert_store_commit(fd_alerts_t *a, int64_t cursor);

/* New stream entries for each enabled output, as far as it has room. */
void fd_alert_store_read_stream(fd_alerts_t *a);

/* Takes or renews the alert lease: 1 held, 0 held by another instance, -1 error. */
int fd_alert_store_lease(fd_alerts_t *a);

/* Hands the lease over at once (only if this instance holds it). */
int fd_alert_store_release(fd_alerts_t *a);

/* The next reply of a pipelined command; NULL (disconnected, errmsg set) on failure. */
redisReply *fd_alert_store_next_reply(fd_alerts_t *a, const char *what);

#endif
