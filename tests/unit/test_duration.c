/*
 * test_duration.c — the one duration syntax (base/duration.c): what config
 * windows and alert-rule fields accept, and how windows are named in Redis
 * and check-config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "base/duration.h"

static const struct {
    const char *in;
    int rc;
    int64_t secs;
} parse_rows[] = {
    {"5m", 0, 300},
    {"1h", 0, 3600},
    {"24h", 0, 86400},
    {"7d", 0, 604800},
    {"90s", 0, 90},
    {"0s", 0, 0}, /* syntax ok; callers' ranges reject it */
    {"3650d", 0, 315360000}, /* the largest window (CONFIG.md) */
    {"00000000005m", 0, 300}, /* 11 digits: accepted (alert rules used to refuse) */
    {"000000000005m", 0, 300}, /* 12 digits: the limit */
    {"0000000000005m", -1, 0}, /* 13 digits: refused */
    {"999999999999d", 0, INT64_C(86399999999913600)}, /* 12 digits: no overflow */
    {"1000000000000s", -1, 0}, /* 13 digits: refused (overflow guard) */
    {"", -1, 0},
    {"m", -1, 0},
    {"5", -1, 0},
    {"5x", -1, 0},
    {"m5", -1, 0},
    {"5mm", -1, 0},
    {"-5m", -1, 0},
    {"+5m", -1, 0},
    {" 5m", -1, 0},
    {"5m ", -1, 0},
    {"5 m", -1, 0},
    {"5M", -1, 0},
    {"1.5h", -1, 0},
    {"0x10s", -1, 0},
};

static void test_parse(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof parse_rows / sizeof parse_rows[0]; i++) {
        int64_t secs = -7;
        int rc = fd_duration_parse(parse_rows[i].in, &secs);
        if (rc != parse_rows[i].rc)
            fail_msg("\"%s\": rc %d, want %d", parse_rows[i].in, rc, parse_rows[i].rc);
        if (rc == 0) assert_int_equal(secs, parse_rows[i].secs);
        else assert_int_equal(secs, -7); /* untouched on failure */
    }
}

static const struct {
    int64_t secs;
    const char *out;
} fmt_rows[] = {
    {300, "5m"},   {3600, "1h"},         {86400, "24h"} /* one day reads 24h (SPEC) */,
    {5400, "90m"}, {172800, "2d"},       {129600, "36h"},
    {90, "90s"},   {60, "1m"},           {0, "0s"},
    {-60, "-60s"}, {315360000, "3650d"}, {604800, "7d"},
};

static void test_format(void **state) {
    (void)state;
    char buf[32];
    for (size_t i = 0; i < sizeof fmt_rows / sizeof fmt_rows[0]; i++) {
        size_t n = fd_duration_format(fmt_rows[i].secs, buf, sizeof buf);
        assert_string_equal(buf, fmt_rows[i].out);
        assert_int_equal(n, strlen(fmt_rows[i].out));
    }
    assert_int_equal(fd_duration_format(300, buf, 2), 2); /* truncated: length it wanted */
    assert_string_equal(buf, "5");
}

/* every whole-minute window up to 3650d survives format → parse */
static void test_round_trip(void **state) {
    (void)state;
    char buf[32];
    int64_t secs;
    for (int64_t m = 1; m <= 3650LL * 1440; m = m < 3000 ? m + 1 : m * 7 / 5) {
        fd_duration_format(m * 60, buf, sizeof buf);
        assert_int_equal(fd_duration_parse(buf, &secs), 0);
        assert_int_equal(secs, m * 60);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
