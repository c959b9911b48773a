/*
 * test_batch.c — a batch's per-counter action lists (aggregators/batch.c).
 *
 * The flush script admits actions to the per-hash action cap in the order a
 * batch lists them, so the list must be in first-seen order with exact
 * counts, however many distinct actions a counter gets (hostile input gives
 * thousands) and across resets (the lookup table is reused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aggregators/batch.h"

#define NDISTINCT 5000
#define NSCOPES 3

static fd_str_t str(const char *s) { return (fd_str_t){s, (uint32_t)strlen(s)}; }

/* Adds one interaction with `action` to scope sc's m1 bucket 60. */
static void add(fd_batch_t *b, fd_str_t sc, const char *action) {
    fd_str_t a = str(action);
    uint32_t ci;
    assert_int_equal(fd_batch_count(b, sc, FD_GRAN_M1, 60, 0, 1, 0, &a, &ci), 0);
}

static const fd_batch_counter_t *find(const fd_batch_t *b, fd_str_t sc, fd_batch_counter_t *out) {
    for (size_t i = 0; i < fd_batch_ncounters(b); i++) {
        fd_batch_counter(b, i, out);
        if (out->scope.p == sc.p) return out;
    }
    fail_msg("no counter for %s", sc.p);
    return NULL;
}

/* Scope s gets actions a{s}-0..a{s}-(NDISTINCT-1), each seen first in that
 * order, action k then seen again k % 3 times; "click" (first of all) and
 * "like" (after the 100th new action) are shared by every scope. */
static void fill(fd_batch_t *b, const fd_str_t *scopes, int round) {
    char name[32];
    for (int s = 0; s < NSCOPES; s++) add(b, scopes[s], "click");
    for (int k = 0; k < NDISTINCT; k++) {
        for (int s = 0; s < NSCOPES; s++) {
            snprintf(name, sizeof name, "a%d-%d-%d", round, s, k);
            add(b, scopes[s], name);
            if (k == 100) add(b, scopes[s], "like");
        }
    }
    for (int k = 0; k < NDISTINCT; k++)
        for (int rep = 0; rep < k % 3; rep++)
            for (int s = 0; s < NSCOPES; s++) {
                snprintf(name, sizeof name, "a%d-%d-%d", round, s, k);
                add(b, scopes[s], name);
                add(b, scopes[s], "click");
            }
}

static void check(const fd_batch_t *b, const fd_str_t *scopes, int round) {
    char name[32];
    int64_t clicks = 1;
    for (int k = 0; k < NDISTINCT; k++) clicks += k % 3;
    for (int s = 0; s < NSCOPES; s++) {
        fd_batch_counter_t c;
        find(b, scopes[s], &c);
        assert_int_equal(c.nactions, NDISTINCT + 2);
        int64_t total = 0;
        size_t j = 0;
        assert_int_equal(c.actions[j].name.n, 5);
        assert_memory_equal(c.actions[j].name.p, "click", 5);
        assert_int_equal(c.actions[j].count, clicks);
        total += c.actions[j++].count;
        for (int k = 0; k < NDISTINCT; k++) {
            snprintf(name, sizeof name, "a%d-%d-%d", round, s, k);
            assert_int_equal(c.actions[j].name.n, strlen(name));
            assert_memory_equal(c.actions[j].name.p, name, strlen(name));
            assert_int_equal(c.actions[j].count, 1 + k % 3);
            total += c.actions[j++].count;
            if (k == 100) {
                assert_memory_equal(c.actions[j].name.p, "like", 4);
                assert_int_equal(c.actions[j].count, 1);
                total += c.actions[j++].count;
            }
        }
        assert_int_equal(total, c.interactions);
    }
}

static void test_many_actions_first_seen_order(void **state) {
    (void)state;
    /* distinct addresses: the batch keys scopes by pointer */
    static const char s0[] = "all", s1[] = "product=p1", s2[] = "product=p2";
    const fd_str_t scopes[NSCOPES] = {str(s0), str(s1), str(s2)};
    fd_batch_t *b = fd_batch_new();
    assert_non_null(b);
    fill(b, scopes, 0);
    check(b, scopes, 0);
    fd_batch_reset(b);
    assert_int_equal(fd_batch_ncounters(b), 0);
    fill(b, scopes, 1); /* other names: stale table entries must not match */
    check(b, scopes, 1);
    fd_batch_free(b);
}

static void test_few_actions(void **state) {
    (void)state;
    static const char s0[] = "all";
    const fd_str_t sc = str(s0);
    static const char *seq[] = {"click", "like", "click", "share", "like", "click"};
    static const struct {
        const char *name;
        int64_t count;
    } want[] = {{"click", 3}, {"like", 2}, {"share", 1}};
    fd_batch_t *b = fd_batch_new();
    assert_non_null(b);
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) add(b, sc, seq[i]);
    fd_batch_counter_t c;
    find(b, sc, &c);
    assert_int_equal(c.nactions, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(c.actions[i].name.n, strlen(want[i].name));
        assert_memory_equal(c.actions[i].name.p, want[i].name, strlen(want[i].name));
        assert_int_equal(c.actions[i].count, want[i].count);
    }
    fd_batch_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_few_actions),
        cmocka_unit_test(test_many_actions_first_seen_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
