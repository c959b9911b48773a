/*
 * clock.h — the two clocks funneld reads, in milliseconds.
 *
 * fd_clock_wall_ms() is the wall clock: for times shared with Redis, Kafka
 * and other instances (event-time checks, lease expiries, `seen` stamps,
 * heartbeats written to Redis). It can step. fd_clock_mono_ms() never steps
 * and means nothing outside this process: for durations and budgets (a
 * round's deadline, a re-send interval, the HTTP liveness check). Header
 * only, no libuv; CLOCK_MONOTONIC is what uv_hrtime() reads on Linux.
 */
#ifndef FD_CLOCK_H
#define FD_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline int64_t fd_clock_wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static inline int64_t fd_clock_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
