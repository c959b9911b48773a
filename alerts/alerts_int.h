/*
 * alerts_int.h — private to alerts/: what the loop side (alerts.c), the
 * evaluator (evaluator.c) and the store (store.c) share: the records of the
 * cache and the delivery queues, and struct fd_alerts itself.
 *
 * Ownership is by thread, not by file: the fields under "worker-owned" are
 * touched only inside a round (uv_work_t: evaluator.c and store.c), the
 * rest only on the loop thread (alerts.c), and the in_* / res_* fields
 * carry a round's input and output across (see alerts.c).
 */
#ifndef FD_ALERTS_INT_H
#define FD_ALERTS_INT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "alerts/alerts.h"
#include "alerts/outputs.h"
#include "model/alert_rule.h"
#include "conf/conf.h"
#include "base/log.h"

#define STEP_S 60
#define BATCH_STEPS 15
#define MAX_SCOPES_PER_RULE 5000
#define RESOLVED_KEEP_MS (24 * 3600 * 1000LL)
#define RESOLVED_RESEND_MS (15 * 60 * 1000LL)

typedef struct {
    char fp[17];
    int rule;
    char *scope;
    fd_alert_status_t st;
    fd_alert_eval_t last;
    int64_t samples;
    int64_t updated_ms; /* wall clock of the last state change */
    int dirty, dead;
} alert_t;

typedef struct {
    char *scope;
    char fp[17];
} rscope_t;

typedef struct {
    char sid[32];
    int acked;
} qent_t;

typedef struct {
    qent_t *v;
    size_t head, n, cap;
    uint64_t seq_head; /* seq of v[head] */
    uint32_t gen;
    char acked_id[32]; /* contiguous acknowledged prefix: to persist */
    int rewind; /* a send failed: re-read from acked_id */
} outq_t;

typedef struct {
    int out;
    int deliver;
    char sid[32];
    char fp[17];
    char *json;
} entry_t;

/* A transition produced by a batch, until committed. */
typedef struct {
    char tid[80], fp[17], state[16], rule[160];
    char *json;
} trans_t;

struct fd_alerts {
    uv_loop_t *loop;
    const fd_conf_t *conf;
    fd_log_t *log;
    char id[64];
    char k_lease[300];
    int64_t lease_ttl_ms;
    uv_timer_t timer;
    uv_work_t work;
    int work_running, closing, timer_closed;
    fd_alert_out_t *out;
    outq_t q[FD_ALERT_OUT__COUNT];
    fd_alerts_stats_t st;

    /* ---- worker-owned ---- */
    redisContext *rc;
    int leader;
    int stale; /* a commit failed: the cache is ahead of Redis, reload it */
    int64_t cursor_s;
    alert_t *alerts;
    size_t nalerts, capalerts;
    rscope_t *scopes[FD_ALERT_MAX_RULES];
    size_t nscopes[FD_ALERT_MAX_RULES];
    char read_id[FD_ALERT_OUT__COUNT][32];
    char persisted[FD_ALERT_OUT__COUNT][32];
    int64_t last_resend_ms;
    trans_t *trans;
    size_t ntrans, captrans;

    /* ---- loop → worker, set before queueing ---- */
    char in_acked[FD_ALERT_OUT__COUNT][32];
    size_t in_room[FD_ALERT_OUT__COUNT];
    int in_rewind[FD_ALERT_OUT__COUNT];
    int in_release;

    /* ---- worker → loop, read in after_work ---- */
    int res_gained, res_lost, res_behind, res_error;
    entry_t *entries;
    size_t nentries, capentries;
    char *resend;
    char errmsg[256];
    uint64_t res_evals, res_trans;
};

typedef struct {
    int64_t from, to;
    const char *series;
} query_t;

#endif
