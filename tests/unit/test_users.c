/*
 * test_users.c — the per-batch user records the flush script's per-user
 * section reads (aggregators/users.h): field order and encoding, reset,
 * growth past the first allocation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "aggregators/users.h"

#define S(lit) ((fd_str_t){lit, (uint32_t)(sizeof(lit) - 1)})

static void expect(const fd_users_t *u, size_t i, const char *const want[FD_USERS_FIELDS]) {
    fd_str_t f[FD_USERS_FIELDS];
    fd_users_record(u, i, f);
    for (int j = 0; j < FD_USERS_FIELDS; j++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", (int)f[j].n, f[j].p ? f[j].p : "");
        assert_string_equal(buf, want[j]);
    }
}

static void test_records(void **state) {
    (void)state;
    fd_users_t *u = fd_users_new();
    assert_non_null(u);
    fd_event_t x = {.type = FD_TYPE_EXPOSURE, .ts_ms = 1710000000000};
    x.user_id = S("42");
    x.product_id = S("vip,annual:1");
    x.channel = S("wechat group");
    x.campaign_id = S("双11");
    assert_int_equal(fd_users_add(u, &x, 19792), 0);
    fd_event_t p = {.type = FD_TYPE_PAYMENT, .ts_ms = 1710000000001, .amount = 990};
    p.user_id = S("42");
    p.product_id = S("p");
    p.community_id = S("grp:1");
    p.order_id = S("o=1");
    p.status = FD_STATUS_REFUNDED;
    assert_int_equal(fd_users_add(u, &p, 19792), 0);
    p.status = FD_STATUS_PAID;
    assert_int_equal(fd_users_add(u, &p, 19791), 0);
    fd_event_t i = {.type = FD_TYPE_INTERACTION, .ts_ms = -5};
    i.user_id = S("用户");
    i.product_id = S("p");
    assert_int_equal(fd_users_add(u, &i, -1), 0);
    assert_int_equal(fd_users_count(u), 4);
    const char *const w0[] = {"vip%2Cannual%3A1",
                              "42",
                              "e",
                              "1710000000000",
                              "19792",
                              "wechat%20group",
                              "",
                              "双11",
                              "",
                              "0"};
    const char *const w1[] = {"p", "42",      "r", "1710000000001", "19792",
                              "",  "grp%3A1", "",  "o%3D1",         "990"};
    const char *const w2[] = {"p", "42",      "p", "1710000000001", "19791",
                              "",  "grp%3A1", "",  "o%3D1",         "990"};
    const char *const w3[] = {"p", "用户", "i", "-5", "-1", "", "", "", "", "0"};
    expect(u, 0, w0);
    expect(u, 1, w1);
    expect(u, 2, w2);
    expect(u, 3, w3);
    fd_users_reset(u);
    assert_int_equal(fd_users_count(u), 0);
    /* grows past the first buffers; every record stays intact */
    for (int k = 0; k < 5000; k++) assert_int_equal(fd_users_add(u, &x, k), 0);
    assert_int_equal(fd_users_count(u), 5000);
    fd_str_t f[FD_USERS_FIELDS];
    fd_users_record(u, 4999, f);
    assert_int_equal(f[4].n, 4);
    assert_memory_equal(f[4].p, "4999", 4);
    fd_users_record(u, 0, f);
    assert_int_equal(f[0].n, strlen("vip%2Cannual%3A1"));
    assert_memory_equal(f[0].p, "vip%2Cannual%3A1", f[0].n);
    fd_users_free(u);
    fd_users_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_records)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
