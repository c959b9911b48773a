/*
 * test_incentive.c — coupon users vs the others (model/incentive.c): the
 * groups from five distinct-user counts, their clamps, and the pooled
 * two-proportion test (docs/METRICS.md, "Coupons").
 *
 * Expected z and p are worked out from the documented formula
 *   pool = (x_c + x_o) / (n_c + n_o)
 *   z = (x_c/n_c − x_o/n_o) / sqrt(pool (1 − pool) (1/n_c + 1/n_o))
 *   p = erfc(z / √2) / 2
 * e.g. row 1: pool = 50/1000 = 0.05, 0.05 · 0.95 · (1/100 + 1/900) =
 * 0.000527778, sqrt = 0.0229734, (0.2 − 0.0333333) / 0.0229734 = 7.25476.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "model/incentive.h"

static const struct {
    fd_coupon_counts_t in; /* T, P∪T, E∪P∪T, P, CP */
    int64_t cu, cp, ou, op;
    int has_test;
    double z, p;
    const char *why;
} ROWS[] = {
    {{100, 130, 1000, 50, 35}, 100, 20, 900, 30, 1, 7.254762501, 2.0118361e-13, "coupon users convert more"},
    {{40, 49, 100, 15, 6}, 40, 6, 60, 9, 1, 0.0, 0.5, "equal rates: z 0, p 1/2"},
    {{50, 80, 200, 35, 5}, 50, 5, 150, 30, 1, -1.611645928, 0.946480495, "coupon users convert less: z < 0"},
    {{5, 5, 20, 0, 0}, 5, 0, 15, 0, 1, 0.0, 0.5, "nobody paid: pooled 0, z 0"},
    {{0, 7, 30, 7, 0}, 0, 0, 30, 7, 0, 0, 0, "no coupon users: no test"},
    {{10, 10, 10, 2, 2}, 10, 2, 0, 0, 0, 0, 0, "everyone a coupon user: no test"},
    /* HLL estimates need not be consistent: the figures are clamped */
    {{10, 9, 8, 3, 1}, 10, 3, 0, 0, 0, 0, 0, "P∪T < T and E∪P∪T < T: clamped"},
};

static void test_coupon_stats(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        fd_coupon_stats_t st;
        fd_coupon_stats(&ROWS[i].in, &st);
        if (st.coupon_users != ROWS[i].cu || st.coupon_payers != ROWS[i].cp ||
            st.others_users != ROWS[i].ou || st.others_payers != ROWS[i].op ||
            st.has_test != ROWS[i].has_test)
            fail_msg("row %zu (%s): got %lld/%lld vs %lld/%lld test %d", i, ROWS[i].why,
                     (long long)st.coupon_payers, (long long)st.coupon_users,
                     (long long)st.others_payers, (long long)st.others_users, st.has_test);
        if (!st.has_test) continue;
        double dz = st.z - ROWS[i].z, dp = st.p - ROWS[i].p;
        if (dz > 1e-8 || dz < -1e-8) fail_msg("row %zu (%s): z %.10f", i, ROWS[i].why, st.z);
        if (dp > 1e-8 * (ROWS[i].p + 1e-12) || dp < -1e-8 * (ROWS[i].p + 1e-12))
            fail_msg("row %zu (%s): p %.10g", i, ROWS[i].why, st.p);
    }
}

static void test_coupon_fields(void **state) {
    (void)state;
    const char *names[FD_COUPON_FIELDS];
    char vals[FD_COUPON_FIELDS][32];
    fd_coupon_stats_t st;
    fd_coupon_stats(&ROWS[0].in, &st);
    assert_int_equal(fd_coupon_fields(&ROWS[0].in, &st, names, vals), FD_COUPON_FIELDS);
    const char *want[][2] = {
        {"uv_coupon_touched", "100"},
        {"uv_coupon_paid", "35"},
        {"coupon_users", "100"},
        {"coupon_payers", "20"},
        {"coupon_conversion_rate", "0.200000"},
        {"others_users", "900"},
        {"others_payers", "30"},
        {"others_conversion_rate", "0.033333"},
        {"coupon_z", "7.254763"},
        {"coupon_p", "2.01184e-13"},
        {"coupon_test", "two_proportion_z_one_sided"},
    };
    for (int i = 0; i < FD_COUPON_FIELDS; i++) {
        assert_string_equal(names[i], want[i][0]);
        assert_string_equal(vals[i], want[i][1]);
    }
    /* no test: the rates that exist, z and p empty */
    fd_coupon_stats(&ROWS[4].in, &st);
    fd_coupon_fields(&ROWS[4].in, &st, names, vals);
    assert_string_equal(vals[4], ""); /* coupon_conversion_rate of 0 users */
    assert_string_equal(vals[7], "0.233333");
    assert_string_equal(vals[8], "");
    assert_string_equal(vals[9], "");
    assert_string_equal(vals[10], "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coupon_stats),
        cmocka_unit_test(test_coupon_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
