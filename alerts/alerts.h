/*
 * alerts.h — the alert evaluator: rules over the Redis buckets, state in
 * Redis, transitions to the stream, the pub/sub channel and the outputs.
 *
 * Every alerts.eval_interval_ms a timer on the loop queues one evaluation
 * on libuv's thread pool (uv_queue_work); the worker talks to Redis over
 * its own blocking hiredis connection with timeouts, so a slow Redis or a
 * long catch-up never stalls the loop that consumes Kafka. The worker:
 *   1. takes or renews the lease `{prefix}:lease:alerts` (PX, the same Lua
 *      pattern as the snapshot lease); without it, it stops there;
 *   2. on gaining the lease, loads every alert state `{prefix}:alert:{fp}`
 *      (index `{prefix}:alert:index`), the event-time cursor
 *      `{prefix}:alert:cursor` and each output's delivery cursor
 *      `{prefix}:alert:sent:{output}`;
 *   3. computes the global watermark as the snapshot does (minimum over
 *      partitions seen within idle_timeout_s, from `{prefix}:wm:{group}` /
 *      `seen`, minus lateness) and walks event time one minute step at a
 *      time, from the cursor to the last minute the watermark has passed:
 *      at step t every rule is evaluated on the window ending at t, for
 *      every scope of its grouping, from the m1/h1 buckets;
 *   4. commits each batch of steps in one Lua script that first checks the
 *      lease (fencing): changed states, the transitions (XADD to the capped
 *      stream `{prefix}:alerts`, PUBLISH on `{prefix}:alerts`) and the
 *      cursor, atomically — so a crash, restart or hand-over neither
 *      re-fires nor forgets;
 *   5. reads the stream entries after each output's cursor (as many as the
 *      output's queue has room for) and, on the loop thread, hands them to
 *      the outputs (alerts/outputs.c); acknowledged prefixes move the
 *      delivery cursors at the next evaluation.
 * Because time is the step, not the wall clock, a replay of hours of event
 * time is evaluated step by step and produces the same transitions as live
 * traffic.
 *
 * Memory: one record per alert that is pending, firing or resolved, and
 * the scope list of each rule (bounded by the cardinality cap). *
 * Files: alerts.c is the loop side (timer, delivery queues), evaluator.c a
 * round and the alert cache, store.c every Redis call of the worker,
 * outputs.c the outputs; alerts_int.h, evaluator.h, store.h and outputs.h
 * are private to this folder, alerts.h is its one public face.
 */
#ifndef FD_ALERTS_H
#define FD_ALERTS_H

#include <stdint.h>
#include <uv.h>

#include "conf/conf.h"
#include "base/log.h"

typedef struct fd_alerts fd_alerts_t;

typedef struct {
    int leader;
    int64_t cursor_s; /* last evaluated step (window end), epoch s */
    uint64_t evaluations; /* steps evaluated by this process */
    uint64_t transitions; /* transitions committed by this process */
    uint64_t errors; /* failed evaluation rounds */
} fd_alerts_stats_t;

/* Borrows loop, c and log; copies id (the instance id that holds leases).
 * Starts its timer at once. Returns NULL with err set on failure. */
fd_alerts_t *fd_alerts_new(uv_loop_t *loop, const fd_conf_t *c, fd_log_t *log, const char *id,
                           char *err, size_t errlen);
/* Stops the timer, releases the lease if held (best effort), closes the
 * outputs. Safe while an evaluation runs on the thread pool: the memory is
 * released when it returns. fd_alerts_free(NULL) is a no-op. */
void fd_alerts_free(fd_alerts_t *a);
void fd_alerts_stats(const fd_alerts_t *a, fd_alerts_stats_t *st);
/* The outputs' delivery counters (zeros when no output is configured). */
typedef struct {
    uint64_t delivered[FD_ALERT_OUT__COUNT];
    uint64_t attempts_failed[FD_ALERT_OUT__COUNT];
    uint64_t overflow; /* Alertmanager re-sends dropped: queue full */
    uint64_t resends; /* Alertmanager re-send batches queued */
} fd_alert_out_stats_t;
void fd_alerts_out_stats(const fd_alerts_t *a, fd_alert_out_stats_t *st);

#endif
