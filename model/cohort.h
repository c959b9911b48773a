/*
 * cohort.h — day numbers of the retention cohorts (docs/METRICS.md).
 *
 * The per-user arithmetic (cohort day, day-N vs unbounded, the conversion
 * window, first vs last touch) lives only in the flush script
 * (sinks/redis_users_lua.h), which keeps each user's state in Redis;
 * tests/integration/test_cohort_lua.py runs it case by case. Here funneld
 * turns a local day label into the day number the script gets with each
 * record, and back (snapshots, `funneld query`); model/event.c uses the
 * same count of days for RFC 3339 dates.
 *
 * Days are local calendar days of the configured zone, numbered like
 * epoch days: day 0 is 1970-01-01 (of the zone's calendar, not UTC).
 */
#ifndef FD_COHORT_H
#define FD_COHORT_H

#include <stdint.h>

/* YYYYMMDD label (as from fd_daycal_label) → day number, and back. */
int32_t fd_cohort_daynum(int32_t label);
int32_t fd_cohort_label(int32_t daynum);

#endif
