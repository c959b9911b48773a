/*
 * agg.h — turns one valid event into batch deltas (SPEC §1, §3, §4).
 *
 * For each configured grouping the event has all dimensions of, the
 * aggregator builds the scope id, admits it through the cardinality cap,
 * and for each of m1, h1, d1 records into the partition's batch:
 * the counters, the distinct-user member of the step (in m1 only for the
 * groupings of hll_m1_groupings: fd_conf_hll_m1), or (for payments)
 * one payment record naming every bucket it touches, so that Redis can
 * deduplicate it by (order_id, status) before counting it anywhere.
 *
 * The aggregator owns the capped scope sets and the day calendar; it is
 * shared by all partitions of a process. It holds no per-partition state.
 */
#ifndef FD_AGG_H
#define FD_AGG_H

#include "aggregators/batch.h"
#include "model/event.h"
#include "conf/conf.h"

typedef struct fd_agg fd_agg_t;

/* Borrows c (must outlive the aggregator). */
fd_agg_t *fd_agg_new(const fd_conf_t *c, char *err, size_t errlen);
void fd_agg_free(fd_agg_t *a);

/* Records ev into b; late counts it in "late". Returns 0 or -ENOMEM. */
int fd_agg_add(fd_agg_t *a, fd_batch_t *b, const fd_event_t *ev, int late);

/* Scope values that overflowed the cap of grouping gi so far. */
uint64_t fd_agg_overflow(const fd_agg_t *a, int gi);

#endif
