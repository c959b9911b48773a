/*
 * users.h — one partition batch's per-user event records for the
 * marketing metrics (retention cohorts, attributed funnel: docs/METRICS.md).
 *
 * The per-user state lives in Redis and is merged by the flush script;
 * funneld only carries, per batch, one small text record per valid event:
 * product (scope-encoded), user, kind (e exposure, i interaction, p paid,
 * r refunded), ts ms, local day number, the encoded channel, community and
 * campaign ("" when absent), the encoded order id and the amount (payments).
 * Memory: proportional to the batch's events, dropped at reset — nothing
 * per user survives a flush.
 */
#ifndef FD_USERS_H
#define FD_USERS_H

#include <stddef.h>
#include <stdint.h>
#include "model/event.h"

#define FD_USERS_FIELDS 10

typedef struct fd_users fd_users_t;

fd_users_t *fd_users_new(void);
void fd_users_free(fd_users_t *u);
void fd_users_reset(fd_users_t *u);

/* Records ev (its local day number is daynum). 0, -ENOMEM or -E2BIG. */
int fd_users_add(fd_users_t *u, const fd_event_t *ev, int32_t daynum);

size_t fd_users_count(const fd_users_t *u);
/* The i-th record's fields, in the order above; valid until the next
 * add, reset or free. */
void fd_users_record(const fd_users_t *u, size_t i, fd_str_t out[FD_USERS_FIELDS]);

#endif
