/*
 * test_resp.c — the sink's own RESP writer (sinks/resp.c) against hiredis's
 * redisFormatCommandArgv, an independent encoder of the same protocol: the
 * bytes must be identical, for integers at every digit count and both
 * limits, empty and binary arguments, and a buffer reused across commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sinks/resp.h"

static const int64_t INTS[] = {0,         1,         -1,           9,
                               10,        99,        100,          -100,
                               12345,     999999999, 1000000000,   INT64_C(1796531119232),
                               INT64_MAX, INT64_MIN, INT64_MIN + 1};

static void test_itoa(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof INTS / sizeof INTS[0]; i++) {
        char got[24], want[24];
        size_t n = fd_resp_itoa(got, INTS[i]);
        got[n] = 0;
        snprintf(want, sizeof want, "%" PRId64, INTS[i]);
        assert_string_equal(got, want);
    }
    for (int64_t v = -100000; v <= 100000; v += 7) { /* every digit pair path */
        char got[24], want[24];
        got[fd_resp_itoa(got, v)] = 0;
        snprintf(want, sizeof want, "%" PRId64, v);
        assert_string_equal(got, want);
    }
}

/* Ends the command in r and compares it with hiredis's encoding of argv. */
static void same_as_hiredis(fd_resp_t *r, int argc, const char **argv, const size_t *lens) {
    assert_int_equal(fd_resp_end(r), 0);
    char *want = NULL;
    int n = redisFormatCommandArgv(&want, argc, argv, lens);
    assert_true(n > 0);
    assert_int_equal(fd_resp_cmdlen(r), (size_t)n);
    assert_memory_equal(fd_resp_cmd(r), want, (size_t)n);
    redisFreeCommand(want);
}

static void test_commands(void **state) {
    (void)state;
    fd_resp_t r = {0};
    /* integers as arguments */
    for (size_t i = 0; i < sizeof INTS / sizeof INTS[0]; i++) {
        char num[24];
        snprintf(num, sizeof num, "%" PRId64, INTS[i]);
        const char *argv[] = {"EXPIRE", "funnel:u:all:m1:60:exposed", num};
        size_t lens[] = {6, strlen(argv[1]), strlen(num)};
        fd_resp_begin(&r);
        fd_resp_str(&r, "EXPIRE");
        fd_resp_str(&r, argv[1]);
        fd_resp_int(&r, INTS[i]);
        same_as_hiredis(&r, 3, argv, lens);
    }
    /* empty, binary and two-part arguments; 12 arguments (a two-digit count) */
    const char bin[] = {'a', 0, '\r', '\n', 'b'};
    const char *argv[12] = {"EVALSHA", "", bin, "interactions.like"};
    size_t lens[12] = {7, 0, sizeof bin, 17};
    fd_resp_begin(&r);
    fd_resp_str(&r, "EVALSHA");
    fd_resp_bulk(&r, "", 0);
    fd_resp_bulk(&r, bin, sizeof bin);
    fd_resp_bulk2(&r, "interactions.", 13, "like", 4);
    for (int i = 4; i < 12; i++) {
        argv[i] = "x";
        lens[i] = 1;
        fd_resp_bulk(&r, "x", 1);
    }
    same_as_hiredis(&r, 12, argv, lens);
    fd_resp_release(&r);
}

/* a command bigger than the first allocation, then a small one in the same
 * buffer: the buffer grows and is reused */
static void test_growth_and_reuse(void **state) {
    (void)state;
    fd_resp_t r = {0};
    enum { N = 20000 };
    const char **argv = malloc(sizeof(char *) * (N + 2));
    size_t *lens = malloc(sizeof(size_t) * (N + 2));
    char (*users)[16] = malloc(16 * (size_t)N);
    assert_non_null(argv);
    assert_non_null(lens);
    assert_non_null(users);
    argv[0] = "PFADD";
    argv[1] = "funnel:u:product=p1:h1:3600:interacted";
    fd_resp_begin(&r);
    fd_resp_str(&r, argv[0]);
    fd_resp_str(&r, argv[1]);
    for (int i = 0; i < N; i++) {
        snprintf(users[i], sizeof users[i], "u%d", i * 7919);
        argv[2 + i] = users[i];
        fd_resp_str(&r, users[i]);
    }
    for (int i = 0; i < N + 2; i++) lens[i] = strlen(argv[i]);
    same_as_hiredis(&r, N + 2, argv, lens);
    const char *small[] = {"HGET", "k", "f"};
    size_t sl[] = {4, 1, 1};
    fd_resp_begin(&r);
    for (int i = 0; i < 3; i++) fd_resp_str(&r, small[i]);
    same_as_hiredis(&r, 3, small, sl);
    fd_resp_release(&r);
    free(argv);
    free(lens);
    free(users);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_itoa),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_growth_and_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
