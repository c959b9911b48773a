/*
 * metrics.c — fd_metrics_render() (see the header).
 *
 * One pass of snprintf into the caller's buffer, in a fixed order: events,
 * flushes, Redis state, partitions, back-pressure, the DLQ, scope overflow
 * per grouping, then the alert block when alerts run. Counters are
 * `_total`; a grouping is labelled by its dimension names joined with ","
 * ("all" for the empty grouping).
 */
#include "ops/metrics.h"

#include <inttypes.h>
#include <stdio.h>

size_t fd_metrics_render(const fd_metrics_t *m, const fd_conf_t *c, char *buf, size_t cap) {
    size_t n = 0;
#define OUT(...) \
    do { \
        if (n < cap) n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__); \
    } while (0)
    /* counted once per message, when its flush is stored (docs/ARCHITECTURE.md) */
    OUT("# HELP funneld_events_accepted_total Events counted into Redis (each once, when the flush "
        "storing its offset succeeded).\n");
    OUT("# TYPE funneld_events_accepted_total counter\nfunneld_events_accepted_total %" PRIu64 "\n",
        m->accepted);
    OUT("# TYPE funneld_events_late_total counter\nfunneld_events_late_total %" PRIu64 "\n", m->late);
    OUT("# HELP funneld_events_rejected_total Messages rejected, by reason (each once, when the "
        "flush storing its offset succeeded).\n");
    OUT("# TYPE funneld_events_rejected_total counter\n");
    for (int r = 1; r < FD_R__COUNT; r++)
        OUT("funneld_events_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
            fd_reason_name((fd_reason_t)r), m->rejects[r]);
    OUT("# TYPE funneld_flushes_total counter\nfunneld_flushes_total %" PRIu64 "\n", m->flushes);
    OUT("# TYPE funneld_resyncs_total counter\nfunneld_resyncs_total %" PRIu64 "\n", m->resyncs);
    OUT("# TYPE funneld_redis_state_lost_total counter\n"
        "funneld_redis_state_lost_total{key=\"offsets\"} %" PRIu64 "\n"
        "funneld_redis_state_lost_total{key=\"schema\"} %" PRIu64 "\n",
        m->lost_offsets, m->lost_schema);
    OUT("# TYPE funneld_redis_up gauge\nfunneld_redis_up %d\n", m->redis_up);
    OUT("# TYPE funneld_partitions_assigned gauge\nfunneld_partitions_assigned %d\n", m->assigned);
    OUT("# TYPE funneld_partitions_syncing gauge\nfunneld_partitions_syncing %d\n", m->syncing);
    OUT("# TYPE funneld_partitions_halted gauge\nfunneld_partitions_halted %d\n", m->halted);
    OUT("# TYPE funneld_pending_events gauge\nfunneld_pending_events %" PRIu64 "\n", m->pending);
    OUT("# TYPE funneld_input_paused gauge\nfunneld_input_paused %d\n", m->input_paused);
    OUT("# TYPE funneld_dlq_outstanding gauge\nfunneld_dlq_outstanding %d\n", m->dlq_outstanding);
    OUT("# TYPE funneld_scope_overflow_total counter\n");
    for (int g = 0; g < c->ngroupings && g < FD_MAX_GROUPINGS; g++) {
        char name[128] = "";
        size_t k = 0;
        const fd_grouping_t *gr = &c->groupings[g];
        for (int d = 0; d < gr->ndims && k < sizeof name; d++)
            k += (size_t)snprintf(name + k, sizeof name - k, "%s%s", d ? "," : "",
                                  fd_dim_name(gr->dims[d]));
        OUT("funneld_scope_overflow_total{grouping=\"%s\"} %" PRIu64 "\n", gr->ndims ? name : "all",
            m->scope_overflow[g]);
    }
    if (m->have_alerts) {
        OUT("# TYPE funneld_alert_leader gauge\nfunneld_alert_leader %d\n", m->alert_leader);
        OUT("# TYPE funneld_alert_evaluations_total counter\nfunneld_alert_evaluations_total "
            "%" PRIu64 "\n",
            m->alert_evaluations);
        OUT("# TYPE funneld_alert_transitions_total counter\nfunneld_alert_transitions_total "
            "%" PRIu64 "\n",
            m->alert_transitions);
        OUT("# TYPE funneld_alert_errors_total counter\nfunneld_alert_errors_total %" PRIu64 "\n",
            m->alert_errors);
        OUT("# TYPE funneld_alert_delivered_total counter\n");
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            OUT("funneld_alert_delivered_total{output=\"%s\"} %" PRIu64 "\n", fd_alert_out_name(o),
                m->delivered[o]);
        OUT("# TYPE funneld_alert_delivery_failures_total counter\n");
        for (int o = 0; o < FD_ALERT_OUT__COUNT; o++)
            OUT("funneld_alert_delivery_failures_total{output=\"%s\"} %" PRIu64 "\n",
                fd_alert_out_name(o), m->delivery_failures[o]);
        OUT("# TYPE funneld_alert_queue_overflow_total counter\nfunneld_alert_queue_overflow_total "
            "%" PRIu64 "\n",
            m->queue_overflow);
    }
    OUT("# TYPE funneld_flush_duration_seconds histogram\n");
    for (int b = 0; b < FD_FLUSH_BUCKETS; b++)
        OUT("funneld_flush_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", fd_flush_buckets_s[b],
            m->flush_le[b]);
    OUT("funneld_flush_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", m->flush_count);
    OUT("funneld_flush_duration_seconds_sum %.6f\nfunneld_flush_duration_seconds_count %" PRIu64 "\n",
        m->flush_sum_s, m->flush_count);
#undef OUT
    if (n >= cap) n = cap - 1;
    return n;
}

const double fd_flush_buckets_s[FD_FLUSH_BUCKETS] = {0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075,
                                                     0.01,   0.015, 0.02,  0.03,  0.05,  0.075,
                                                     0.1,    0.25,  0.5,   1.0};

void fd_flush_hist_observe(uint64_t *counts, double secs) {
    int b = 0;
    while (b < FD_FLUSH_BUCKETS && secs > fd_flush_buckets_s[b]) b++;
    counts[b]++;
}
