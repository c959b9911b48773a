/*
 * test_cohort.c — retention cohort days and the attributed funnel
 * (model/cohort.h, docs/METRICS.md), worked out by hand.
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
    /* a first event at 23:59:59.999 local and a return at 00:00 is d1 */
    int32_t cohort = fd_cohort_daynum(fd_daycal_label(d, midnight - 1));
    int32_t days[] = {cohort, fd_cohort_daynum(fd_daycal_label(d, midnight))};
    assert_true(fd_cohort_retained(cohort, days, 2, 1, FD_RET_DAY_N));
    /* the same two instants are one UTC day (2024-03-09): UTC would say d0 */
    fd_daycal_free(d);
}

static void test_day_n_vs_unbounded(void **state) {
    (void)state;
    int32_t c = 19792;
    int32_t days[] = {c, c + 3, c + 9};
    /* day-N: exactly on cohort + k */
    assert_false(fd_cohort_retained(c, days, 3, 1, FD_RET_DAY_N));
    assert_true(fd_cohort_retained(c, days, 3, 3, FD_RET_DAY_N));
    assert_false(fd_cohort_retained(c, days, 3, 7, FD_RET_DAY_N));
    assert_false(fd_cohort_retained(c, days, 3, 30, FD_RET_DAY_N));
    /* unbounded: on cohort + k or later */
    assert_true(fd_cohort_retained(c, days, 3, 1, FD_RET_UNBOUNDED));
    assert_true(fd_cohort_retained(c, days, 3, 7, FD_RET_UNBOUNDED));
    assert_true(fd_cohort_retained(c, days, 3, 9, FD_RET_UNBOUNDED));
    assert_false(fd_cohort_retained(c, days, 3, 10, FD_RET_UNBOUNDED));
    assert_false(fd_cohort_retained(c, days, 3, 30, FD_RET_UNBOUNDED));
    /* the cohort day itself is d0, not a return */
    int32_t only[] = {c};
    assert_false(fd_cohort_retained(c, only, 1, 1, FD_RET_UNBOUNDED));
}

#define H 3600000LL
#define D (24 * H)
#define W (7 * D)

static void test_window_expiry(void **state) {
    (void)state;
    fd_cohort_touch_t x[] = {{1000, "ch=a"}};
    fd_cohort_funnel_t f;
    int64_t it_in[] = {1000 + W}; /* the window's last ms is inside */
    fd_cohort_order_t pay_edge[] = {{1000 + W, 500, 0}};
    fd_cohort_funnel(x, 1, it_in, 1, pay_edge, 1, W, &f);
    assert_int_equal(f.reached, 3);
    assert_int_equal(f.revenue, 500);
    int64_t it_out[] = {1000 + W + 1};
    fd_cohort_funnel(x, 1, it_out, 1, pay_edge, 1, W, &f);
    assert_int_equal(f.reached, 1); /* interaction one ms too late */
    assert_int_equal(f.revenue, 0);
    int64_t it_ok[] = {2000};
    fd_cohort_order_t pay_late[] = {{1000 + W + 1, 500, 0}};
    fd_cohort_funnel(x, 1, it_ok, 1, pay_late, 1, W, &f);
    assert_int_equal(f.reached, 2); /* payment past the window */
    assert_int_equal(f.revenue, 0);
    /* out of order: a payment before the interaction does not complete it */
    int64_t it_after[] = {5000};
    fd_cohort_order_t pay_before[] = {{4000, 500, 0}};
    fd_cohort_funnel(x, 1, it_after, 1, pay_before, 1, W, &f);
    assert_int_equal(f.reached, 2);
    /* an interaction before the first exposure does not count */
    int64_t it_before[] = {999};
    fd_cohort_funnel(x, 1, it_before, 1, NULL, 0, W, &f);
    assert_int_equal(f.reached, 1);
}

static void test_first_vs_last_touch(void **state) {
    (void)state;
    /* exposures on days 0, 2, 5, 9 (given out of order); interaction day 3;
     * payment day 6; refund of 100 of it */
    fd_cohort_touch_t x[] = {{5 * D, "ch=c"}, {0, "ch=a"}, {9 * D, "ch=d"}, {2 * D, "ch=b"}};
    int64_t it[] = {3 * D};
    fd_cohort_order_t o[] = {{6 * D, 990, 100}};
    fd_cohort_funnel_t f;
    fd_cohort_funnel(x, 4, it, 1, o, 1, W, &f);
    assert_int_equal(f.reached, 3);
    assert_string_equal(x[f.first].dims, "ch=a");
    assert_string_equal(x[f.last].dims, "ch=c"); /* last exposure before the payment */
    assert_int_equal(f.revenue, 890);
    /* without the payment, last touch is the last exposure before the interaction */
    fd_cohort_funnel(x, 4, it, 1, NULL, 0, W, &f);
    assert_int_equal(f.reached, 2);
    assert_string_equal(x[f.last].dims, "ch=b");
    /* exposed only: the last exposure within the window (day 9 is outside) */
    fd_cohort_funnel(x, 4, NULL, 0, NULL, 0, W, &f);
    assert_int_equal(f.reached, 1);
    assert_string_equal(x[f.last].dims, "ch=c");
    /* a tie in time: the bytewise smaller dims is first, the larger last */
    fd_cohort_touch_t tie[] = {{0, "ch=b"}, {0, "ch=a"}};
    fd_cohort_funnel(tie, 2, NULL, 0, NULL, 0, W, &f);
    assert_string_equal(tie[f.first].dims, "ch=a");
    assert_string_equal(tie[f.last].dims, "ch=b");
    /* a late earlier exposure moves the first touch and the window */
    fd_cohort_touch_t late[] = {{5 * D, "ch=c"}, {-3 * D, "ch=z"}};
    fd_cohort_funnel(late, 2, it, 1, o, 1, W, &f);
    assert_string_equal(late[f.first].dims, "ch=z");
    assert_int_equal(f.reached, 2); /* the payment at day 6 is past day -3 + 7 */
    assert_string_equal(late[f.last].dims, "ch=z");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daynum_round_trip),
        cmocka_unit_test(test_cohort_day_at_shanghai_midnight),
        cmocka_unit_test(test_day_n_vs_unbounded),
        cmocka_unit_test(test_window_expiry),
        cmocka_unit_test(test_first_vs_last_touch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
