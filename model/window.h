/*
 * window.h — event-time buckets and watermarks (SPEC §4).
 *
 * m1 and h1 buckets are UTC-aligned and labelled by their start in epoch
 * seconds; d1 buckets are calendar days in one configured time zone,
 * labelled YYYYMMDD. The zone is process-wide: fd_daycal_new() checks that
 * /usr/share/zoneinfo/<tz> exists, sets TZ and calls tzset() once; day
 * boundaries are then cached, so labelling an event costs no libc time call
 * unless it falls on another day than the last few seen.
 */
#ifndef FD_WINDOW_H
#define FD_WINDOW_H

#include <stdint.h>
#include <stddef.h>

typedef enum { FD_GRAN_M1 = 0, FD_GRAN_H1, FD_GRAN_D1, FD_GRAN__COUNT } fd_gran_t;

const char *fd_gran_name(fd_gran_t g); /* "m1", "h1", "d1" */

/* a / b rounded toward negative infinity (also for b < 0). */
int64_t fd_floor_div(int64_t a, int64_t b);
int64_t fd_bucket_m1(int64_t ts_ms); /* start, epoch seconds (floor, also for negatives) */
int64_t fd_bucket_h1(int64_t ts_ms);

typedef struct fd_daycal fd_daycal_t;
/* tz: an IANA name such as "Asia/Shanghai". */
fd_daycal_t *fd_daycal_new(const char *tz, char *err, size_t errlen);
void fd_daycal_free(fd_daycal_t *d);
/* Day label YYYYMMDD (as an integer, e.g. 20241105) of ts_ms in the zone. */
int32_t fd_daycal_label(fd_daycal_t *d, int64_t ts_ms);

/* Writes the bucket label of ts for granularity g ("1700000040" or
 * "20241105"); returns its length. buf must hold 24 bytes. */
size_t fd_bucket_label(fd_daycal_t *d, fd_gran_t g, int64_t ts_ms, char *buf);

/* Per-partition lateness: max_ts = highest accepted ts so far (INT64_MIN if
 * none). Returns 1 if ts is late (ts < max_ts - lateness_ms), then raises
 * max_ts to ts if higher. */
int fd_watermark_observe(int64_t *max_ts, int64_t lateness_ms, int64_t ts_ms);

/* The global watermark, the one rule the snapshot writer (sinks/) and the
 * alert evaluator (alerts/) both apply to {prefix}:wm:{group} and
 * {prefix}:seen:{group}: the minimum event time over the partitions seen
 * within idle_ms of now (an idle partition does not hold time back), or
 * the maximum over all partitions if none was seen that recently; minus
 * lateness. Its minute is fd_bucket_m1(wm). Feed one partition at a time
 * (seen_ms 0: never seen). */
typedef struct {
    int64_t lo, hi;
    int any, active;
} fd_watermark_t;

void fd_watermark_init(fd_watermark_t *w);
void fd_watermark_add(fd_watermark_t *w, int64_t ts_ms, int64_t seen_ms, int64_t now_ms,
                      int64_t idle_ms);
/* 0 and *wm_ms, or -1 if no partition was added. */
int fd_watermark_global(const fd_watermark_t *w, int64_t lateness_ms, int64_t *wm_ms);

#endif
