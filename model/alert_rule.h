/*
 * alert_rule.h — alert rules: their definition, the statistics that decide
 * whether a rule's condition holds, and the per-alert state machine.
 *
 * Everything here is pure: no I/O, no clock, no Redis. alerts/alerts.c reads
 * the numbers from Redis, calls fd_alert_rule_eval() for each (rule, scope)
 * at each evaluation step (an event-time instant, the end of a window the
 * watermark has passed) and feeds the outcome to fd_alert_step(), which is
 * Prometheus's state machine (inactive → pending → firing → resolved, with
 * `for` and `keep_firing_for`) driven by event time instead of wall time.
 * That is what makes a fast replay produce the same transitions as live
 * traffic: time only moves when the evaluator says which step it is.
 *
 * Kinds (SPEC §6, docs/ALERTS.md):
 *   drop_vs_baseline  current window vs a baseline; fires when the current
 *                     value is at least min_drop below the baseline AND a
 *                     one-sided test rejects "no drop" at `confidence` AND
 *                     both windows have >= min_samples in the denominator.
 *                     Rates use the two-proportion z-test; counts use the
 *                     conditional binomial test (given the total, the share
 *                     falling in the current window is W/(W+B) under H0).
 *   below_threshold   value < threshold (rates: with the min_samples guard).
 *   absent            `metric` counted 0 in the window while `while` counted
 *                     >= min_samples (e.g. exposures go on, payments stop).
 *
 * Memory: a rule owns its strings (name, labels, annotations);
 * fd_alert_rule_release() frees them. Invariant: a rule that passed
 * fd_alert_rule_parse() has every field in bounds, so evaluation never
 * divides by zero or reads a label past nlabels.
 */
#ifndef FD_ALERT_RULE_H
#define FD_ALERT_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "model/scope.h"

#define FD_ALERT_MAX_RULES 32
#define FD_ALERT_MAX_LABELS 16

typedef enum { FD_ALERT_DROP = 0, FD_ALERT_BELOW, FD_ALERT_ABSENT } fd_alert_kind_t;

/* A metric is a rate (numerator / denominator) or one series. The series
 * names are the Redis counter fields and HLL suffixes. */
typedef enum {
    FD_M_CONVERSION_RATE = 0, /* uv_paid / uv_exposed */
    FD_M_INTERACTION_RATE, /* interactions / exposures */
    FD_M_EXPOSURES,
    FD_M_INTERACTIONS,
    FD_M_PAYMENTS,
    FD_M_REFUNDS,
    FD_M_UV_EXPOSED,
    FD_M_UV_INTERACTED,
    FD_M_UV_PAID,
    FD_M__COUNT
} fd_metric_t;

/* The alert outputs, one enum: the index of an output's queue, counters and
 * Redis cursor; a rule's `sinks` is a bit mask of them (all by default). */
typedef enum {
    FD_ALERT_OUT_STDOUT = 0,
    FD_ALERT_OUT_KAFKA,
    FD_ALERT_OUT_ALERTMANAGER,
    FD_ALERT_OUT_WEBHOOK,
    FD_ALERT_OUT__COUNT
} fd_alert_output_t;

#define FD_ALERT_OUT_BIT(o) (1u << (o))
#define FD_ALERT_OUT_ALL ((1u << FD_ALERT_OUT__COUNT) - 1u)

/* "stdout", "kafka", "alertmanager", "webhook"; "?" out of range. The names
 * rules use in `sinks`, and the `output` label of /metrics. */
const char *fd_alert_out_name(int out);

typedef struct {
    char *key, *value;
} fd_alert_label_t;

typedef struct {
    char *name; /* alertname: [A-Za-z_:][A-Za-z0-9_:]* */
    fd_alert_kind_t kind;
    fd_metric_t metric; /* absent: the series that stops */
    fd_metric_t while_metric; /* absent: the series that keeps flowing */
    fd_grouping_t grouping; /* must be one of the configured groupings */
    int64_t window_s; /* current window, whole minutes */
    int64_t baseline_s; /* drop: baseline length, whole hours (h1 buckets) */
    int64_t baseline_offset_s; /* drop: 0 = the hours before the window; else the same-length
                                  window this much earlier (m1 buckets), e.g. 7d */
    double min_drop; /* drop: 0 < min_drop < 1 */
    double confidence; /* drop: 0.5 <= confidence < 1 */
    double threshold; /* below */
    int64_t min_samples; /* potential users (rates), baseline count, `while` count */
    int64_t for_s, keep_firing_for_s;
    unsigned sinks;
    int nlabels, nannotations;
    fd_alert_label_t labels[FD_ALERT_MAX_LABELS];
    fd_alert_label_t annotations[FD_ALERT_MAX_LABELS];
} fd_alert_rule_t;

const char *fd_metric_name(fd_metric_t m);
int fd_metric_from_name(const char *s); /* -1 if unknown */
int fd_metric_is_rate(fd_metric_t m);
/* The series a metric reads: rates have both, counts only num (den NULL). */
void fd_metric_series(fd_metric_t m, const char **num, const char **den);
const char *fd_alert_kind_name(fd_alert_kind_t k);

/* Parses one rule object (cJSON *, passed as void * so that this header does
 * not need cJSON). `what` names it in messages ("alerts.rules[0]"). Unknown
 * members are an error naming them. On failure r holds nothing to free. */
int fd_alert_rule_parse(const void *json, const char *what, fd_alert_rule_t *r, char *err,
                        size_t errlen);
/* The rule as a cJSON object (returned as void *) that parses back equal. */
void *fd_alert_rule_to_json(const fd_alert_rule_t *r);
void fd_alert_rule_release(fd_alert_rule_t *r);

/* ---- statistics ---------------------------------------------------------- */

/* One-sided two-proportion z statistic for "p1 < p0" with the pooled
 * variance: x1 of n1 now, x0 of n0 in the baseline. Positive = drop.
 * 0 when undefined (an empty side, or a pooled proportion of 0 or >= 1). */
double fd_alert_z_two_prop(int64_t x1, int64_t n1, int64_t x0, int64_t n0);
/* Conditional binomial z for counts: c now over w seconds, b in the baseline
 * over bs seconds. Under "same rate", c ~ Bin(c+b, w/(w+bs)). Positive =
 * fewer now than expected. 0 when c+b == 0. */
double fd_alert_z_counts(int64_t c, int64_t w, int64_t b, int64_t bs);
/* Upper-tail p-value of a standard normal: P(Z >= z). */
double fd_alert_p_upper(double z);

/* What one evaluation reads (from Redis) and decides. */
typedef struct {
    int64_t num, den; /* current window (absent: metric, while) */
    int64_t base_num, base_den; /* drop: baseline window */
} fd_alert_input_t;

typedef struct {
    int cond; /* the rule's condition holds */
    int enough; /* the min_samples guard passed */
    double value; /* current rate, or count (per second for drop on counts) */
    double baseline;
    double drop; /* 1 - value/baseline; 0 if baseline is 0 */
    double z, p_value;
} fd_alert_eval_t;

void fd_alert_rule_eval(const fd_alert_rule_t *r, const fd_alert_input_t *in, fd_alert_eval_t *out);

/* ---- state machine ------------------------------------------------------- */

typedef enum {
    FD_AS_INACTIVE = 0,
    FD_AS_PENDING,
    FD_AS_FIRING,
    FD_AS_RESOLVED,
} fd_alert_state_t;

const char *fd_alert_state_name(fd_alert_state_t s);
int fd_alert_state_from_name(const char *s); /* -1 if unknown */

typedef struct {
    fd_alert_state_t state;
    int64_t active_since; /* ms: condition true since (pending or firing) */
    int64_t fired_at; /* ms: start of the current/last firing */
    int64_t keep_since; /* ms: firing, condition false since (0 = true now) */
    int64_t resolved_at; /* ms */
    int64_t last_eval; /* ms: last step applied */
} fd_alert_status_t;

/* Applies one evaluation at event time t_ms (steps must increase; an older
 * or equal t is ignored). Returns the new state when it changed, else -1.
 * pending → inactive is a change (returned as FD_AS_INACTIVE). */
int fd_alert_step(fd_alert_status_t *s, int cond, int64_t t_ms, int64_t for_ms,
                  int64_t keep_firing_for_ms);

/* 64-bit FNV-1a over alertname and the labels sorted by key ("k\0v\0");
 * written as 16 lower-case hex digits into out[17]. keys/vals are n pairs
 * (order does not matter). */
uint64_t fd_alert_fingerprint(const char *alertname, const char *const *keys,
                              const char *const *vals, int n, char out[17]);

#endif
