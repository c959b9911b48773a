/*
 * test_cohort.c — day labels and day numbers of the retention cohorts
 * (model/cohort.h, docs/METRICS.md), worked out by hand. The per-user
 * rules (day-N vs unbounded, the conversion window, first vs last touch)
 * are the flush script's: tests/integration/test_cohort_lua.py.
 *
 * Anchor: 2024-03-09T16:00:00Z = 1710000000 s (test_window.c) is
 * 2024-03-10 00:00:00 in Asia/Shanghai (UTC+8, no DST since 1991).
 * Day numbers: 2024-03-10 = 19792 (1710028800 / 86400 = 19792.0 is the
 * UTC midnight of 2024-03-10; a local label maps to the same number).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "model/cohort.h"
#include "model/window.h"

static void test_daynum_round_trip(void **state) {
    (void)state;
    assert_int_equal(fd_cohort_daynum(19700101), 0);
    assert_int_equal(fd_cohort_daynum(19700102), 1);
    assert_int_equal(fd_cohort_daynum(19691231), -1);
    assert_int_equal(fd_cohort_daynum(20240310), 19792);
    assert_int_equal(fd_cohort_daynum(20240301) - fd_cohort_daynum(20240228), 2); /* leap */
    assert_int_equal(fd_cohort_daynum(20230301) - fd_cohort_daynum(20230228), 1);
    assert_int_equal(fd_cohort_label(19792 + 30), 20240409);
    for (int32_t z = -700000; z < 2900000; z += 37) /* years 0..9999 */
        assert_int_equal(fd_cohort_daynum(fd_cohort_label(z)), z);
}

/* A user's cohort day is the local day of the first event: one ms either
 * side of Shanghai midnight lands on different days. */
static void test_cohort_day_at_shanghai_midnight(void **state) {
    (void)state;
    char err[256];
    fd_daycal_t *d = fd_daycal_new("Asia/Shanghai", err, sizeof err);
    assert_non_null(d);
    int64_t midnight = 1710000000000; /* 2024-03-10 00:00:00.000 +08:00 */
    assert_int_equal(fd_cohort_daynum(fd_daycal_label(d, midnight)), 19792);
    assert_int_equal(fd_cohort_daynum(fd_daycal_label(d, midnight - 1)), 19791);
    assert_int_equal(fd_cohort_daynum(fd_daycal_label(d, midnight + 86400000 - 1)), 19792);
    assert_int_equal(fd_cohort_daynum(fd_daycal_label(d, midnight + 86400000)), 19793);
    /* the same two instants are one UTC day (2024-03-09): the day numbers
     * the flush script gets differ by one, so a return at 00:00 local after
     * a first event at 23:59:59.999 is a d1 there
     * (tests/integration/test_cohort_lua.py) */
    fd_daycal_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daynum_round_trip),
        cmocka_unit_test(test_cohort_day_at_shanghai_midnight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
