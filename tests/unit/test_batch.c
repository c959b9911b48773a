/*
 * test_batch.c — a batch's per-counter action lists (aggregators/batch.c).
 *
 * The flush script admits actions to the per-hash action cap in the order a
 * batch lists them, so the list must be in first-seen order with exact
 * counts, however many distinct actions a counter gets (hostile input gives
 * thousands) and across resets (the lookup table is reused). Also: the
 * key layout, user interning, distinct members, payments, scopes, event
 * counts, and that a reset empties everything.
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

/* ---- the rest of the batch ------------------------------------------------ */

static void test_key_layout(void **state) {
    (void)state;
    char buf[FD_BATCH_KEY_MAX];
    static const struct {
        fd_gran_t g;
        int64_t bucket;
        int step;
        const char *want;
    } rows[] = {
        {FD_GRAN_M1, 1700000040, -1, "sc:m1:1700000040"},
        {FD_GRAN_H1, 1699999200, -1, "sc:h1:1699999200"},
        {FD_GRAN_D1, 20241105, -1, "sc:d1:20241105"},
        {FD_GRAN_M1, 60, FD_STEP_EXPOSED, "sc:m1:60:exposed"},
        {FD_GRAN_H1, 3600, FD_STEP_INTERACTED, "sc:h1:3600:interacted"},
        {FD_GRAN_D1, 20241105, FD_STEP_PAID, "sc:d1:20241105:paid"},
        {FD_GRAN_D1, 20241105, FD_STEP_COUPON, "sc:d1:20241105:coupon_touched"},
        {FD_GRAN_M1, -60, -1, "sc:m1:-60"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = fd_batch_key(buf, sizeof buf, str("sc"), rows[i].g, rows[i].bucket, rows[i].step);
        assert_int_equal(n, strlen(rows[i].want));
        assert_memory_equal(buf, rows[i].want, n);
    }
    /* a scope that leaves no room for the suffix: 0, nothing promised */
    static char big[FD_BATCH_KEY_MAX];
    memset(big, 'x', sizeof big);
    assert_int_equal(
        fd_batch_key(buf, sizeof buf, (fd_str_t){big, FD_BATCH_KEY_MAX - 47}, FD_GRAN_M1, 60, 0), 0);
    /* the longest scope that fits */
    size_t n = fd_batch_key(buf, sizeof buf, (fd_str_t){big, FD_BATCH_KEY_MAX - 48}, FD_GRAN_D1,
                            20241105, FD_STEP_INTERACTED);
    assert_int_equal(n, FD_BATCH_KEY_MAX - 48 + strlen(":d1:20241105:interacted"));
}

static void test_users_members_payments_scopes(void **state) {
    (void)state;
    fd_batch_t *b = fd_batch_new();
    assert_non_null(b);
    uint32_t u1, u2, u1again;
    assert_int_equal(fd_batch_user(b, str("alice"), &u1), 0);
    assert_int_equal(fd_batch_user(b, str("bob"), &u2), 0);
    assert_int_equal(fd_batch_user(b, str("alice"), &u1again), 0);
    assert_int_equal(u1, u1again); /* interned */
    assert_int_not_equal(u1, u2);
    fd_str_t name = fd_batch_user_at(b, u2);
    assert_int_equal(name.n, 3);
    assert_memory_equal(name.p, "bob", 3);

    fd_str_t sc = str("all");
    uint32_t ci, ci2;
    assert_int_equal(fd_batch_count(b, sc, FD_GRAN_M1, 60, 1, 0, 0, NULL, &ci), 0);
    assert_int_equal(fd_batch_count(b, sc, FD_GRAN_M1, 60, 2, 0, 1, NULL, &ci2), 0);
    assert_int_equal(ci, ci2); /* same bucket: one counter */
    assert_int_equal(fd_batch_ncounters(b), 1);
    fd_batch_counter_t c;
    fd_batch_counter(b, 0, &c);
    assert_int_equal(c.exposures, 3);
    assert_int_equal(c.late, 1);
    assert_int_equal(c.bucket, 60);

    assert_int_equal(fd_batch_member(b, ci, FD_STEP_EXPOSED, u1), 0);
    assert_int_equal(fd_batch_member(b, ci, FD_STEP_EXPOSED, u1), 0); /* twice: counts once */
    assert_int_equal(fd_batch_member(b, ci, FD_STEP_EXPOSED, u2), 0);
    assert_int_equal(fd_batch_member(b, ci, FD_STEP_PAID, u2), 0);
    assert_int_equal(fd_batch_nhll(b), 2);
    size_t exposed = 0, paid = 0;
    for (size_t i = 0; i < fd_batch_nhll(b); i++) {
        fd_batch_hll_t h;
        fd_batch_hll(b, i, &h);
        if (h.step == FD_STEP_EXPOSED) exposed = h.nmembers;
        if (h.step == FD_STEP_PAID) paid = h.nmembers;
    }
    assert_int_equal(exposed, 2);
    assert_int_equal(paid, 1);

    uint32_t counters[1] = {ci};
    fd_batch_payment_t p = {.dedup = str("o1:paid"),
                            .user = u2,
                            .amount = 500,
                            .status = 0,
                            .late = 0,
                            .nbuckets = 1,
                            .counters = counters};
    assert_int_equal(fd_batch_payment(b, &p), 0);
    assert_int_equal(fd_batch_npayments(b), 1);
    const fd_batch_payment_t *pp = fd_batch_payment_at(b, 0);
    assert_int_equal(pp->amount, 500);
    assert_int_equal(pp->dedup.n, 7);
    assert_memory_equal(pp->dedup.p, "o1:paid", 7);
    assert_int_equal(pp->nbuckets, 1);
    assert_int_equal(pp->counters[0], ci);
    assert_null(pp->coupon.p); /* none given: none kept */

    /* a payment's coupon_id is copied: the caller's buffer may go */
    char cbuf[8] = "cp-A";
    fd_batch_payment_t pc = p;
    pc.dedup = str("o2:paid");
    pc.coupon = (fd_str_t){cbuf, 4};
    assert_int_equal(fd_batch_payment(b, &pc), 0);
    memset(cbuf, 'x', sizeof cbuf);
    pp = fd_batch_payment_at(b, 1);
    assert_int_equal(pp->coupon.n, 4);
    assert_memory_equal(pp->coupon.p, "cp-A", 4);

    assert_int_equal(fd_batch_scope(b, sc), 0);
    assert_int_equal(fd_batch_nscopes(b), 1);
    assert_int_equal(fd_batch_scope_at(b, 0).n, 3);

    fd_batch_add_events(b, 2);
    fd_batch_add_events(b, 5);
    assert_int_equal(fd_batch_events(b), 7);

    fd_batch_reset(b);
    assert_int_equal(fd_batch_events(b), 0);
    assert_int_equal(fd_batch_ncounters(b), 0);
    assert_int_equal(fd_batch_nhll(b), 0);
    assert_int_equal(fd_batch_npayments(b), 0);
    fd_batch_free(b);
}

/* Distinct members against a model: users whose events interleave (a user's
 * short member list is copied to the end on its next event), a user with
 * more HLLs than the short list holds (it moves to the set), HLL indexes 64
 * apart (indexes 128 apart share a `seen` bit), repeats everywhere, and the same again
 * after a reset. Each HLL must list each of its users exactly once, in
 * first-added order. */
#define MU 6
#define MC 150
static void test_members_dedup(void **state) {
    (void)state;
    fd_batch_t *b = fd_batch_new();
    assert_non_null(b);
    static unsigned char want[MC][MU]; /* the model: member or not */
    for (int round = 0; round < 2; round++) {
        memset(want, 0, sizeof want);
        uint32_t u[MU], ci[MC];
        char name[16];
        /* the second round interns users and counters in the other order:
         * a table not emptied by the reset would hand out the old indexes */
        for (int j = 0; j < MU; j++) {
            int i = round ? MU - 1 - j : j;
            snprintf(name, sizeof name, "user-%d", i);
            assert_int_equal(fd_batch_user(b, str(name), &u[i]), 0);
            assert_int_equal(u[i], j);
        }
        fd_str_t sc = str("all");
        for (int j = 0; j < MC; j++) {
            int c = round ? MC - 1 - j : j;
            assert_int_equal(fd_batch_count(b, sc, FD_GRAN_M1, 60 * c, 1, 0, 0, NULL, &ci[c]), 0);
            assert_int_equal(ci[c], j);
        }
        /* a deterministic, repetitive and interleaved pattern of adds */
        uint32_t x = 12345;
        for (int k = 0; k < 6000; k++) {
            x = x * 1103515245u + 12345u;
            int who = (int)((x >> 16) % MU);
            /* user 0 reaches every counter; the others a few, so their lists stay short */
            int c = who == 0 ? (int)((x >> 8) % MC) : (int)((x >> 8) % 5) * 64 % MC;
            int runs = 1 + (int)(x % 3); /* the same pair up to 3 times in a row */
            for (int r = 0; r < runs; r++)
                assert_int_equal(fd_batch_member(b, ci[c], FD_STEP_EXPOSED, u[who]), 0);
            want[c][who] = 1;
        }
        size_t total = 0, expect = 0;
        for (int c = 0; c < MC; c++)
            for (int i = 0; i < MU; i++) expect += want[c][i];
        for (size_t h = 0; h < fd_batch_nhll(b); h++) {
            fd_batch_hll_t hl;
            fd_batch_hll(b, h, &hl);
            int c = (int)(hl.bucket / 60);
            unsigned char seen[MU] = {0};
            for (size_t m = 0; m < hl.nmembers; m++) {
                int who = -1;
                for (int i = 0; i < MU; i++)
                    if (u[i] == hl.members[m]) who = i;
                assert_true(who >= 0);
                assert_int_equal(seen[who], 0); /* listed once */
                assert_int_equal(want[c][who], 1);
                seen[who] = 1;
            }
            total += hl.nmembers;
        }
        assert_int_equal(total, expect);
        size_t user0 = 0;
        for (int c = 0; c < MC; c++) user0 += want[c][0];
        assert_true(user0 > 64); /* past the short list (32) and around the seen bits */
        fd_batch_reset(b);
    }
    fd_batch_free(b);
}

/* fd_batch_scope_event against the plain calls it stands for (fd_batch_scope,
 * then per granularity fd_batch_count, which looks the counter up without any
 * cache, and fd_batch_member): after the same events, two batches must hold
 * the same counters, HLLs and scopes in the same order. 1,500 scopes overrun
 * the 1,024-entry cache, minutes advance and step back, users repeat, some
 * events carry an action or a coupon, some get no m1 member (member_grans),
 * and a reset happens half way. */
#define XS 1500
static void test_scope_event_matches_plain_calls(void **state) {
    (void)state;
    static char names[XS][8];
    fd_str_t scopes[XS];
    for (int i = 0; i < XS; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        scopes[i] = str(names[i]);
    }
    static const char *const acts[] = {"click", "like", "share"};
    fd_batch_t *fast = fd_batch_new(), *plain = fd_batch_new();
    assert_non_null(fast);
    assert_non_null(plain);
    uint32_t x = 99;
    int64_t minute = 1000;
    for (int e = 0; e < 40000; e++) {
        if (e == 20000) {
            fd_batch_reset(fast);
            fd_batch_reset(plain);
        }
        x = x * 1103515245u + 12345u;
        if (x % 50 == 0) minute++;
        int64_t m = minute - (x % 97 == 0 ? 3 : 0); /* now and then a late event */
        int64_t bucket[FD_GRAN__COUNT] = {m * 60, m / 60 * 3600, 20240000 + m / 1440};
        fd_str_t sc = scopes[(x >> 8) % (e < 10000 ? 40 : XS)];
        int inter = (x >> 4) % 5 == 0, coupon = (x >> 6) % 7 == 0;
        fd_str_t act = str(acts[(x >> 12) % 3]);
        char uname[16];
        snprintf(uname, sizeof uname, "u%u", (x >> 16) % 300);
        uint32_t uf, up;
        assert_int_equal(fd_batch_user(fast, str(uname), &uf), 0);
        assert_int_equal(fd_batch_user(plain, str(uname), &up), 0);
        fd_step_t step = inter ? FD_STEP_INTERACTED : FD_STEP_EXPOSED;
        unsigned grans = (x >> 20) % 3 ? 7u : 6u; /* now and then no m1 member */
        assert_int_equal(fd_batch_scope_event(fast, sc, bucket, !inter, inter, x % 97 == 0,
                                              inter ? &act : NULL, grans, step, coupon, uf),
                         0);
        assert_int_equal(fd_batch_scope(plain, sc), 0);
        for (int g = 0; g < FD_GRAN__COUNT; g++) {
            uint32_t ci;
            assert_int_equal(fd_batch_count(plain, sc, (fd_gran_t)g, bucket[g], !inter, inter,
                                            x % 97 == 0, inter ? &act : NULL, &ci),
                             0);
            if (grans >> g & 1) assert_int_equal(fd_batch_member(plain, ci, step, up), 0);
            if (coupon) assert_int_equal(fd_batch_member(plain, ci, FD_STEP_COUPON, up), 0);
        }
    }
    assert_int_equal(fd_batch_ncounters(fast), fd_batch_ncounters(plain));
    assert_true(fd_batch_ncounters(fast) > 3000);
    for (size_t i = 0; i < fd_batch_ncounters(fast); i++) {
        fd_batch_counter_t a, b;
        fd_batch_counter(fast, i, &a);
        fd_batch_counter(plain, i, &b);
        assert_ptr_equal(a.scope.p, b.scope.p);
        assert_int_equal(a.gran, b.gran);
        assert_int_equal(a.bucket, b.bucket);
        assert_int_equal(a.exposures, b.exposures);
        assert_int_equal(a.interactions, b.interactions);
        assert_int_equal(a.late, b.late);
        assert_int_equal(a.nactions, b.nactions);
        for (size_t k = 0; k < a.nactions; k++) {
            assert_int_equal(a.actions[k].count, b.actions[k].count);
            assert_int_equal(a.actions[k].name.n, b.actions[k].name.n);
            assert_memory_equal(a.actions[k].name.p, b.actions[k].name.p, a.actions[k].name.n);
        }
    }
    assert_int_equal(fd_batch_nhll(fast), fd_batch_nhll(plain));
    for (size_t i = 0; i < fd_batch_nhll(fast); i++) {
        fd_batch_hll_t a, b;
        fd_batch_hll(fast, i, &a);
        fd_batch_hll(plain, i, &b);
        assert_ptr_equal(a.scope.p, b.scope.p);
        assert_int_equal(a.gran, b.gran);
        assert_int_equal(a.bucket, b.bucket);
        assert_int_equal(a.step, b.step);
        assert_int_equal(a.nmembers, b.nmembers);
        if (a.nmembers) assert_memory_equal(a.members, b.members, a.nmembers * sizeof(uint32_t));
    }
    assert_int_equal(fd_batch_nscopes(fast), fd_batch_nscopes(plain));
    assert_true(fd_batch_nscopes(fast) > 1024);
    for (size_t i = 0; i < fd_batch_nscopes(fast); i++)
        assert_ptr_equal(fd_batch_scope_at(fast, i).p, fd_batch_scope_at(plain, i).p);
    fd_batch_free(fast);
    fd_batch_free(plain);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_few_actions),
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_users_members_payments_scopes),
        cmocka_unit_test(test_members_dedup),
        cmocka_unit_test(test_scope_event_matches_plain_calls),
        cmocka_unit_test(test_many_actions_first_seen_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
