/*
 * metrics.h — the Prometheus text of /metrics, from plain numbers.
 *
 * app/daemon.c gathers the numbers once per flush interval (the pipeline's
 * stats, the aggregator's scope overflow, the sink's and the DLQ's state,
 * the alert evaluator's and outputs' counters) into an fd_metrics_t and
 * renders it here; ops/http.c serves the text. Nothing here reads another
 * module's state, so the text can be checked from a struct alone. Metric
 * names and labels are a contract (docs/ARCHITECTURE.md, "The operations
 * endpoint"): change them only with the docs and the dashboards.
 */
#ifndef FD_METRICS_H
#define FD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "model/alert_rule.h"
#include "model/event.h"
#include "model/scope.h"

/* Upper bounds (seconds) of the flush duration histogram's buckets. */
#define FD_FLUSH_BUCKETS 16
extern const double fd_flush_buckets_s[FD_FLUSH_BUCKETS];
/* Adds one duration to non-cumulative counts[FD_FLUSH_BUCKETS + 1] (the
 * last one is above every bound). */
void fd_flush_hist_observe(uint64_t *counts, double secs);

typedef struct {
    uint64_t accepted, late, rejects[FD_R__COUNT], flushes, resyncs;
    uint64_t lost_offsets, lost_schema;
    int redis_up;
    int assigned, syncing, halted;
    uint64_t pending;
    int input_paused;
    int dlq_outstanding;
    uint64_t scope_overflow[FD_MAX_GROUPINGS]; /* per configured grouping */
    int have_alerts; /* the alert block only when alerts run */
    int alert_leader;
    uint64_t alert_evaluations, alert_transitions, alert_errors;
    uint64_t delivered[FD_ALERT_OUT__COUNT], delivery_failures[FD_ALERT_OUT__COUNT];
    uint64_t queue_overflow;
    /* funneld_flush_duration_seconds: a flush script's round trip (sent to
     * answered OK), cumulative per upper bound fd_flush_buckets_s[i] */
    uint64_t flush_le[FD_FLUSH_BUCKETS], flush_count;
    double flush_sum_s;
} fd_metrics_t;

/* Renders m (grouping names from c) into buf; returns the length, at most
 * cap - 1 (truncated text is cut, never overrun). */
size_t fd_metrics_render(const fd_metrics_t *m, const fd_conf_t *c, char *buf, size_t cap);

#endif
