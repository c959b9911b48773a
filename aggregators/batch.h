/*
 * batch.h — one partition's deltas since its last flush.
 *
 * A batch is what one flush script applies: counter increments per bucket
 * hash, distinct-user members per HLL key (deduplicated within the batch),
 * payments one by one (they are deduplicated in Redis, across instances, so
 * they cannot be pre-summed), and the scope ids touched. Keys are the part
 * after "{prefix}:c:" / "{prefix}:u:", i.e. "{scope}:{gran}:{bucket}".
 *
 * Memory: proportional to the distinct keys and members added since the last
 * reset, not to the event count (repeated keys and users cost nothing more);
 * payments cost one record each. All strings live in the batch's arena and
 * stay valid until fd_batch_reset or fd_batch_free.
 */
#ifndef FD_BATCH_H
#define FD_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "consumers/event.h"

typedef struct fd_batch fd_batch_t;

typedef struct {
    fd_str_t name; /* the action */
    int64_t count;
} fd_batch_action_t;

typedef struct {
    fd_str_t key; /* "{scope}:{gran}:{bucket}" */
    int64_t exposures, interactions, late;
    size_t nactions;
    const fd_batch_action_t *actions;
} fd_batch_counter_t;

typedef struct {
    fd_str_t dedup;   /* "{order_id encoded}:{paid|refunded}" */
    fd_str_t user;
    int64_t amount;
    fd_status_t status;
    int late;
    size_t nbuckets;
    const fd_str_t *buckets; /* counter keys this payment updates */
} fd_batch_payment_t;

fd_batch_t *fd_batch_new(void);
void fd_batch_free(fd_batch_t *b);
void fd_batch_reset(fd_batch_t *b);

/* Recording, used by the aggregator. Each returns 0 or -ENOMEM. */
int fd_batch_count(fd_batch_t *b, const char *key, size_t n, int64_t exposures,
                   int64_t interactions, int64_t late, const fd_str_t *action);
int fd_batch_member(fd_batch_t *b, const char *hllkey, size_t n, fd_str_t user);
int fd_batch_payment(fd_batch_t *b, const fd_batch_payment_t *p); /* copies strings */
int fd_batch_scope(fd_batch_t *b, const char *scope, size_t n);
void fd_batch_add_events(fd_batch_t *b, uint64_t n);

/* Reading, used by the sink. Indexes run 0..count-1. */
uint64_t fd_batch_events(const fd_batch_t *b);
size_t fd_batch_ncounters(const fd_batch_t *b);
void fd_batch_counter(const fd_batch_t *b, size_t i, fd_batch_counter_t *out);
size_t fd_batch_nhll(const fd_batch_t *b);
fd_str_t fd_batch_hll(const fd_batch_t *b, size_t i, size_t *nmembers, const fd_str_t **members);
size_t fd_batch_npayments(const fd_batch_t *b);
const fd_batch_payment_t *fd_batch_payment_at(const fd_batch_t *b, size_t i);
size_t fd_batch_nscopes(const fd_batch_t *b);
fd_str_t fd_batch_scope_at(const fd_batch_t *b, size_t i);

#endif
