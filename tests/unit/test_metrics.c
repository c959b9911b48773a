/*
 * test_metrics.c — the flush duration histogram (ops/metrics.c).
 *
 * Rows: a duration lands in the first bucket whose upper bound it does not
 * pass (a value equal to a bound is inside it, as Prometheus's `le`), one
 * above every bound in the overflow slot; then the rendered text: cumulative
 * `_bucket` lines ending in `+Inf` = `_count`, and `_sum`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "ops/metrics.h"

static const struct {
    double secs;
    int bucket;
} rows[] = {
    {0.0, 0},    {0.0004, 0}, {0.0005, 0}, {0.00051, 1}, {0.001, 1},
    {0.0101, 7}, {0.25, 13},  {0.9, 15},   {1.0, 15},    {1.5, FD_FLUSH_BUCKETS},
};

static void test_observe(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t counts[FD_FLUSH_BUCKETS + 1] = {0};
        fd_flush_hist_observe(counts, rows[i].secs);
        for (int b = 0; b <= FD_FLUSH_BUCKETS; b++) {
            if (counts[b] != (b == rows[i].bucket)) {
                fprintf(stderr, "%g s: bucket %d has %llu (want bucket %d)\n", rows[i].secs, b,
                        (unsigned long long)counts[b], rows[i].bucket);
                fail();
            }
        }
    }
}

static void test_render(void **state) {
    (void)state;
    fd_conf_t c;
    fd_conf_defaults(&c);
    fd_metrics_t m;
    memset(&m, 0, sizeof m);
    for (int b = 0; b < FD_FLUSH_BUCKETS; b++) m.flush_le[b] = b < 3 ? 2 : 5;
    m.flush_count = 6;
    m.flush_sum_s = 1.25;
    char buf[16384];
    fd_metrics_render(&m, &c, buf, sizeof buf);
    assert_non_null(strstr(buf, "# TYPE funneld_flush_duration_seconds histogram\n"));
    assert_non_null(strstr(buf, "funneld_flush_duration_seconds_bucket{le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(buf, "funneld_flush_duration_seconds_bucket{le=\"1\"} 5\n"));
    assert_non_null(strstr(buf, "funneld_flush_duration_seconds_bucket{le=\"+Inf\"} 6\n"));
    assert_non_null(strstr(buf, "funneld_flush_duration_seconds_sum 1.250000\n"));
    assert_non_null(strstr(buf, "funneld_flush_duration_seconds_count 6\n"));
    fd_conf_release(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
