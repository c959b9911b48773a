/*
 * cohort.h — the per-user arithmetic of retention cohorts and of the
 * ordered, attributed funnel (docs/METRICS.md).
 *
 * The flush script (sinks/redis_users_lua.h) is the authority in Redis: it
 * keeps each user's state and applies these same rules in Lua. This module
 * states them once in C so that unit tests pin them down (cohort days at a
 * zone's midnight, day-N vs unbounded, the conversion window, first vs last
 * touch) and so that funneld can turn a day label into a day number.
 *
 * Days are local calendar days of the configured zone, numbered like
 * epoch days: day 0 is 1970-01-01 (of the zone's calendar, not UTC).
 */
#ifndef FD_COHORT_H
#define FD_COHORT_H

#include <stddef.h>
#include <stdint.h>

/* YYYYMMDD label (as from fd_daycal_label) → day number, and back. */
int32_t fd_cohort_daynum(int32_t label);
int32_t fd_cohort_label(int32_t daynum);

typedef enum { FD_RET_DAY_N = 0, FD_RET_UNBOUNDED = 1 } fd_ret_mode_t;

/* 1 if a user of cohort day `cohort`, active on the `n` day numbers in
 * `days` (any order), counts in retained_d{k}: day-N, active on cohort + k;
 * unbounded, active on some day >= cohort + k. */
int fd_cohort_retained(int32_t cohort, const int32_t *days, size_t n, int32_t k, fd_ret_mode_t mode);

/* One exposure of a user: its time and its attribution dimensions as one
 * byte string (the tie-break between exposures of the same millisecond:
 * the bytewise smaller dims come first). */
typedef struct {
    int64_t ts;
    const char *dims;
} fd_cohort_touch_t;

/* One paid order of a user: its paid time and amount, and the amount of
 * its refund (0 if none). */
typedef struct {
    int64_t ts, amount, refunded;
} fd_cohort_order_t;

typedef struct {
    int reached; /* 0 no exposure; 1 exposed; 2 interacted; 3 paid */
    size_t first, last; /* indexes into the exposures: first and last touch */
    int64_t t_interact, t_pay; /* times of the steps (when reached) */
    int64_t revenue; /* attributed revenue (reached >= 2), net of refunds */
} fd_cohort_funnel_t;

/* The ordered funnel of one user over the conversion window window_ms:
 * e0 = the earliest exposure; interacted = an interaction at t1 with
 * e0.ts <= t1 <= e0.ts + window (the earliest such); paid = a paid order at
 * t2 with t1 <= t2 <= e0.ts + window (the earliest such). First touch = e0;
 * last touch = the latest exposure at or before the furthest step's time
 * (t2, else t1, else the window's end). Revenue: every order paid within
 * [t1, e0.ts + window], minus its refund. */
void fd_cohort_funnel(const fd_cohort_touch_t *x, size_t nx, const int64_t *it, size_t ni,
                      const fd_cohort_order_t *o, size_t no, int64_t window_ms,
                      fd_cohort_funnel_t *out);

#endif
