/*
 * test_window.c — m1/h1/d1 bucket math, the day cache, watermark lateness.
 *
 * Epoch values are worked out by hand from two anchors:
 *   2024-01-01T00:00:00Z = 1704067200 s
 *   2024-03-09T00:00:00Z = 1704067200 + (31 + 29 + 8) * 86400 = 1709942400
 * so 2024-03-09T16:00:00Z = 1709942400 + 16 * 3600 = 1710000000 (a round
 * number, also a whole hour and minute). Each row names its UTC date.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "model/window.h"

static void test_gran_names(void **state) {
    (void)state;
    assert_string_equal(fd_gran_name(FD_GRAN_M1), "m1");
    assert_string_equal(fd_gran_name(FD_GRAN_H1), "h1");
    assert_string_equal(fd_gran_name(FD_GRAN_D1), "d1");
}

static const struct {
    int64_t ts_ms, m1, h1;
    const char *when;
} mh_rows[] = {
    {1710000000000, 1710000000, 1710000000, "2024-03-09T16:00:00.000Z"},
    {1709999999999, 1709999940, 1709996400, "2024-03-09T15:59:59.999Z"},
    {1710000059999, 1710000000, 1710000000, "2024-03-09T16:00:59.999Z"},
    {1710000060000, 1710000060, 1710000000, "2024-03-09T16:01:00.000Z"},
    {1710003599999, 1710003540, 1710000000, "2024-03-09T16:59:59.999Z"},
    {1710003600000, 1710003600, 1710003600, "2024-03-09T17:00:00.000Z"},
    {0, 0, 0, "1970-01-01T00:00:00.000Z"},
    {59999, 0, 0, "1970-01-01T00:00:59.999Z"},
    {-1, -60, -3600, "1969-12-31T23:59:59.999Z"},
    {-60000, -60, -3600, "1969-12-31T23:59:00.000Z"},
    {-60001, -120, -3600, "1969-12-31T23:58:59.999Z"},
    {-3600000, -3600, -3600, "1969-12-31T23:00:00.000Z"},
    {-3600001, -3660, -7200, "1969-12-31T22:59:59.999Z"},
};

static void test_m1_h1(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof mh_rows / sizeof mh_rows[0]; i++) {
        if (fd_bucket_m1(mh_rows[i].ts_ms) != mh_rows[i].m1)
            fail_msg("%s: m1 %lld, want %lld", mh_rows[i].when,
                     (long long)fd_bucket_m1(mh_rows[i].ts_ms), (long long)mh_rows[i].m1);
        if (fd_bucket_h1(mh_rows[i].ts_ms) != mh_rows[i].h1)
            fail_msg("%s: h1 %lld, want %lld", mh_rows[i].when,
                     (long long)fd_bucket_h1(mh_rows[i].ts_ms), (long long)mh_rows[i].h1);
    }
}

typedef struct {
    int64_t ts_ms;
    int32_t label;
    const char *when;
} day_row_t;

static void check_days(const char *tz, const day_row_t *rows, size_t n) {
    char err[256] = "";
    fd_daycal_t *d = fd_daycal_new(tz, err, sizeof err);
    if (d == NULL) fail_msg("%s: %s", tz, err);
    /* Twice: the second pass runs mostly from the cache. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            int32_t got = fd_daycal_label(d, rows[i].ts_ms);
            if (got != rows[i].label)
                fail_msg("%s pass %d %s (%lld): got %d, want %d", tz, pass, rows[i].when,
                         (long long)rows[i].ts_ms, got, rows[i].label);
        }
    fd_daycal_free(d);
}

/* Asia/Shanghai is UTC+8 all year (no DST since 1991). */
static void test_d1_shanghai(void **state) {
    (void)state;
    static const day_row_t rows[] = {
        {1709999999999, 20240309, "2024-03-09T15:59:59.999Z"},
        {1710000000000, 20240310, "2024-03-09T16:00:00.000Z"},
        {1709999999999, 20240309, "2024-03-09T15:59:59.999Z (back again)"},
        /* year end: 2025-01-01T00:00Z = 1704067200 + 366 * 86400 = 1735689600;
         * Shanghai midnight is 8 h earlier, 1735660800 */
        {1735660799999, 20241231, "2024-12-31T15:59:59.999Z"},
        {1735660800000, 20250101, "2024-12-31T16:00:00.000Z"},
        /* leap day: 2024-02-29T00:00Z = 1704067200 + 59 * 86400 = 1709164800,
         * Shanghai's 2024-02-29 starts at 1709136000, 2024-03-01 at 1709222400 */
        {1709135999999, 20240228, "2024-02-28T15:59:59.999Z"},
        {1709136000000, 20240229, "2024-02-28T16:00:00.000Z"},
        {1709222399999, 20240229, "2024-02-29T15:59:59.999Z"},
        {1709222400000, 20240301, "2024-02-29T16:00:00.000Z"},
        /* before the epoch: floor, not truncation, of the seconds */
        {-1, 19700101, "1969-12-31T23:59:59.999Z = 07:59:59.999 +08"},
        {-28800000, 19700101, "1969-12-31T16:00:00.000Z"},
        {-28800001, 19691231, "1969-12-31T15:59:59.999Z"},
    };
    check_days("Asia/Shanghai", rows, sizeof rows / sizeof rows[0]);
}

/* America/New_York: EST (UTC-5) / EDT (UTC-4).
 * 2024-03-10 (23 h): starts 05:00Z = 1709942400 + 86400 + 18000 = 1710046800,
 *   clocks jump 02:00 EST -> 03:00 EDT at 07:00Z = 1710054000,
 *   ends 2024-03-11 04:00Z = 1710028800 + 86400 + 14400 = 1710129600.
 * 2024-11-03 (25 h): 2024-11-03T00:00Z = 1704067200 + 307 * 86400 = 1730592000,
 *   starts 04:00Z = 1730606400, 01:00-02:00 happens twice,
 *   ends 2024-11-04 05:00Z = 1730592000 + 86400 + 18000 = 1730696400. */
static void test_d1_new_york_dst(void **state) {
    (void)state;
    static const day_row_t rows[] = {
        {1710046799999, 20240309, "2024-03-10T04:59:59.999Z = 23:59:59.999 EST"},
        {1710046800000, 20240310, "2024-03-10T05:00:00.000Z = 00:00 EST"},
        {1710053999999, 20240310, "2024-03-10T06:59:59.999Z = 01:59:59.999 EST"},
        {1710054000000, 20240310, "2024-03-10T07:00:00.000Z = 03:00 EDT"},
        /* a 24 h day from midnight would still say 20240310 here: */
        {1710129600000, 20240311, "2024-03-11T04:00:00.000Z = 00:00 EDT"},
        {1710129599999, 20240310, "2024-03-11T03:59:59.999Z = 23:59:59.999 EDT"},
        {1710133199999, 20240311, "2024-03-11T04:59:59.999Z = 00:59:59.999 EDT"},
        {1730606399999, 20241102, "2024-11-03T03:59:59.999Z = 23:59:59.999 EDT"},
        {1730606400000, 20241103, "2024-11-03T04:00:00.000Z = 00:00 EDT"},
        {1730611800000, 20241103, "2024-11-03T05:30:00.000Z = 01:30 EDT"},
        {1730615400000, 20241103, "2024-11-03T06:30:00.000Z = 01:30 EST"},
        /* a 24 h day from midnight would already say 20241104 here: */
        {1730692800000, 20241103, "2024-11-04T04:00:00.000Z = 23:00 EST"},
        {1730696399999, 20241103, "2024-11-04T04:59:59.999Z = 23:59:59.999 EST"},
        {1730696400000, 20241104, "2024-11-04T05:00:00.000Z = 00:00 EST"},
    };
    check_days("America/New_York", rows, sizeof rows / sizeof rows[0]);
}

/* America/Santiago switches at local midnight: -04 standard, -03 summer.
 * 2024-04-07 00:00 -03 (03:00Z) falls back to 2024-04-06 23:00 -04, so the
 *   last hour of Apr 6 happens twice; 2024-04-07T00:00Z = 1704067200 +
 *   97 * 86400 = 1712448000, the fall-back is 1712458800, Apr 7 begins at
 *   00:00 -04 = 04:00Z = 1712462400.
 * 2024-09-08 00:00 -04 (04:00Z) springs to 01:00 -03: local midnight of Sep 8
 *   does not exist. 2024-09-08T00:00Z = 1704067200 + 251 * 86400 =
 *   1725753600; Sep 8 begins at 04:00Z = 1725768000 and ends at Sep 9 00:00
 *   -03 = 03:00Z = 1725850800 (a 23 h day). */
static void test_d1_santiago_midnight_switch(void **state) {
    (void)state;
    static const day_row_t rows[] = {
        {1712458799999, 20240406, "2024-04-07T02:59:59.999Z = Apr 6 23:59:59.999 -03"},
        {1712458800000, 20240406, "2024-04-07T03:00:00.000Z = Apr 6 23:00 -04 (again)"},
        {1712462399999, 20240406, "2024-04-07T03:59:59.999Z = Apr 6 23:59:59.999 -04"},
        {1712462400000, 20240407, "2024-04-07T04:00:00.000Z = Apr 7 00:00 -04"},
        {1725768000000, 20240908, "2024-09-08T04:00:00.000Z = Sep 8 01:00 -03"},
        {1725764400000, 20240907, "2024-09-08T03:00:00.000Z = Sep 7 23:00 -04"},
        {1725767999999, 20240907, "2024-09-08T03:59:59.999Z = Sep 7 23:59:59.999 -04"},
        {1725850799999, 20240908, "2024-09-09T02:59:59.999Z = Sep 8 23:59:59.999 -03"},
        {1725850800000, 20240909, "2024-09-09T03:00:00.000Z = Sep 9 00:00 -03"},
    };
    check_days("America/Santiago", rows, sizeof rows / sizeof rows[0]);
}

static void test_d1_unknown_zone(void **state) {
    (void)state;
    static const char *bad[] = {"Mars/Olympus_Mons",       "",         "../../etc/passwd",
                                "/usr/share/zoneinfo/UTC", "zone.tab", "Asia"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        fd_daycal_t *d = fd_daycal_new(bad[i], err, sizeof err);
        if (d != NULL) fail_msg("zone \"%s\" accepted", bad[i]);
        if (strstr(err, "time_zone") == NULL)
            fail_msg("zone \"%s\": error does not name time_zone: %s", bad[i], err);
    }
    char err[256] = "";
    assert_null(fd_daycal_new(NULL, err, sizeof err));
}

/* More distinct days than the cache holds, visited back and forth: every
 * label must still be that ts's day. Days start at 1709136000 + k * 86400
 * (Shanghai midnight of 2024-02-29 + k). */
static void test_d1_cache_not_stale(void **state) {
    (void)state;
    static const struct {
        int k; /* day offset from 2024-02-29 */
        int64_t off; /* ms into that Shanghai day */
        int32_t label;
    } rows[] = {
        {0, 0, 20240229},         {1, 0, 20240301},        {0, 86399999, 20240229},
        {2, 5, 20240302},         {3, 0, 20240303},        {4, 0, 20240304},
        {5, 43200000, 20240305},  {0, 1, 20240229},        {1, 86399999, 20240301},
        {-1, 86399999, 20240228}, {0, 0, 20240229},        {6, 0, 20240306},
        {-1, 0, 20240228},        {5, 86399999, 20240305}, {6, -1, 20240305},
    };
    char err[256];
    fd_daycal_t *d = fd_daycal_new("Asia/Shanghai", err, sizeof err);
    assert_non_null(d);
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            int64_t ts = (1709136000LL + rows[i].k * 86400LL) * 1000 + rows[i].off;
            int32_t got = fd_daycal_label(d, ts);
            if (got != rows[i].label)
                fail_msg("rep %d row %zu ts %lld: got %d want %d", rep, i, (long long)ts, got,
                         rows[i].label);
        }
    fd_daycal_free(d);
}

/* Property: over pseudo-random jumps across 2023-2025 in a DST zone, the
 * cached label always equals a direct localtime_r() of the same instant. */
static void test_d1_cache_matches_libc(void **state) {
    (void)state;
    char err[256];
    fd_daycal_t *d = fd_daycal_new("America/New_York", err, sizeof err);
    assert_non_null(d);
    uint64_t x = 88172645463325252ULL; /* xorshift64 */
    int64_t lo = 1672531200000LL; /* 2023-01-01T00:00:00Z */
    int64_t span = 3LL * 365 * 86400000LL;
    int64_t ts = lo;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x % 8 == 0) ts = lo + (int64_t)(x >> 8) % span; /* a far jump */
        else ts += (int64_t)(x >> 8) % 7200000 - 3600000; /* within +-1 h */
        time_t s = (time_t)(ts >= 0 ? ts / 1000 : -((-ts + 999) / 1000));
        struct tm t;
        assert_non_null(localtime_r(&s, &t));
        int32_t want = (t.tm_year + 1900) * 10000 + (t.tm_mon + 1) * 100 + t.tm_mday;
        int32_t got = fd_daycal_label(d, ts);
        if (got != want) fail_msg("ts %lld: got %d want %d", (long long)ts, got, want);
    }
    fd_daycal_free(d);
}

static void test_bucket_label(void **state) {
    (void)state;
    char err[256], buf[24];
    fd_daycal_t *d = fd_daycal_new("Asia/Shanghai", err, sizeof err);
    assert_non_null(d);
    static const struct {
        fd_gran_t g;
        int64_t ts_ms;
        const char *want;
    } rows[] = {
        {FD_GRAN_M1, 1710000059999, "1710000000"}, /* 2024-03-09T16:00:59.999Z */
        {FD_GRAN_H1, 1710003599999, "1710000000"}, /* 2024-03-09T16:59:59.999Z */
        {FD_GRAN_D1, 1710000000000, "20240310"}, /* 2024-03-09T16:00:00.000Z */
        {FD_GRAN_D1, 1709999999999, "20240309"}, /* 2024-03-09T15:59:59.999Z */
        {FD_GRAN_M1, -1, "-60"}, /* 1969-12-31T23:59:59.999Z */
        {FD_GRAN_H1, 0, "0"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        memset(buf, 'X', sizeof buf);
        size_t n = fd_bucket_label(d, rows[i].g, rows[i].ts_ms, buf);
        if (n != strlen(rows[i].want) || strcmp(buf, rows[i].want) != 0)
            fail_msg("row %zu: got \"%s\" (%zu), want \"%s\"", i, buf, n, rows[i].want);
    }
    fd_daycal_free(d);
}

/* One partition's events in order; lateness 120 s. */
static void test_watermark(void **state) {
    (void)state;
    static const struct {
        int64_t ts, late, max_after;
        const char *why;
    } rows[] = {
        {1000000, 0, 1000000, "first event is never late"},
        {5000, 1, 1000000, "995 s behind: late"},
        {880000, 0, 1000000, "exactly max - lateness: not late"},
        {879999, 1, 1000000, "1 ms past the bound: late"},
        {1000001, 0, 1000001, "new max"},
        {880000, 1, 1000001, "the bound moved with max"},
        {880001, 0, 1000001, "exactly on the new bound"},
        {999999, 0, 1000001, "behind max but within lateness"},
    };
    int64_t max = INT64_MIN;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t want_late = rows[i].late;
        int late = fd_watermark_observe(&max, 120000, rows[i].ts);
        if (late != want_late || max != rows[i].max_after)
            fail_msg("row %zu (%s): late %d max %lld, want %lld %lld", i, rows[i].why, late,
                     (long long)max, (long long)want_late, (long long)rows[i].max_after);
    }

    /* first event far in the past, negative or huge: never late, no overflow */
    max = INT64_MIN;
    assert_int_equal(fd_watermark_observe(&max, 120000, INT64_MIN + 1), 0);
    assert_int_equal(max, INT64_MIN + 1);
    assert_int_equal(fd_watermark_observe(&max, 120000, INT64_MIN + 1), 0);
    max = INT64_MIN;
    assert_int_equal(fd_watermark_observe(&max, 120000, -5000), 0);
    assert_int_equal(fd_watermark_observe(&max, 120000, -125000), 0);
    assert_int_equal(fd_watermark_observe(&max, 120000, -125001), 1);
    assert_int_equal(max, -5000);

    /* lateness 0: anything behind max is late, equal is not */
    max = INT64_MIN;
    assert_int_equal(fd_watermark_observe(&max, 0, 100), 0);
    assert_int_equal(fd_watermark_observe(&max, 0, 100), 0);
    assert_int_equal(fd_watermark_observe(&max, 0, 99), 1);
    assert_int_equal(max, 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gran_names),
        cmocka_unit_test(test_m1_h1),
        cmocka_unit_test(test_d1_shanghai),
        cmocka_unit_test(test_d1_new_york_dst),
        cmocka_unit_test(test_d1_santiago_midnight_switch),
        cmocka_unit_test(test_d1_unknown_zone),
        cmocka_unit_test(test_d1_cache_not_stale),
        cmocka_unit_test(test_d1_cache_matches_libc),
        cmocka_unit_test(test_bucket_label),
        cmocka_unit_test(test_watermark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
