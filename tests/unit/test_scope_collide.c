/*
 * test_scope_collide.c — fd_scopes_admit_event when every raw hash collides.
 *
 * A stored id is found from the event's raw values by hash, then confirmed by
 * comparing the values with the id's value segments in place (model/scope.c,
 * "the hot path"). With real hashes two different ids almost never share a
 * hash, so test_scope.c cannot reach that compare with a wrong candidate.
 * Here model/scope.c is compiled into the test with FD_SCOPE_TEST_COLLIDE,
 * which makes every raw hash 0: each lookup walks every stored id of its
 * grouping, and only the compare decides. Expected ids are built by the
 * id-building path (fd_scope_id + fd_scopes_admit on a second set).
 */
#define FD_SCOPE_TEST_COLLIDE 1
#include "model/scope.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static fd_str_t str(const char *s) { return (fd_str_t){s, (uint32_t)strlen(s)}; }

/* Pairs where a compare that skipped a check would take one id for another:
 * "ab"+"c" then "a"+"=c" (same length; without the ',' check the second
 * value's segment would read "=c" out of "channel=c"), "," (stored encoded as
 * %2C) then the raw text "%2C", a value and its prefix, and values that need
 * encoding at all (never indexed: they must still resolve right). */
static void test_collisions_resolve_by_compare(void **state) {
    (void)state;
    static const fd_grouping_t gs[] = {{0, {0}},
                                       {1, {FD_DIM_PRODUCT}},
                                       {2, {FD_DIM_PRODUCT, FD_DIM_CHANNEL}},
                                       {3, {FD_DIM_CAMPAIGN, FD_DIM_PRODUCT, FD_DIM_CHANNEL}}};
    static const struct {
        const char *product, *channel, *campaign;
    } evs[] = {
        {"ab", "c", "k"},      {"a", "=c", "k"},          {"a", "bc", "k"},  {",", "w", "k"},
        {"%2C", "w", "k"},     {"p", "w", "k"},           {"p1", "w", "k"},  {"p", "w1", "k"},
        {"a b", "c", "k"},     {"a", "b c", "k"},         {"ab", "c", "k2"}, {"a", "=c", "k2"},
        {"%2C", "w", "k"},     {",", "w", "k"},           {"a", "bc", "k"},  {"ab", "c", "k"},
        {"x", "channel", "k"}, {"x,channel=y", "z", "k"}, {"x", "y", "k"},
    };
    char err[128], id[512];
    fd_scopes_t *fast = fd_scopes_new(4, 1000, err, sizeof err);
    fd_scopes_t *ref = fd_scopes_new(4, 1000, err, sizeof err);
    assert_non_null(fast);
    assert_non_null(ref);
    for (int rep = 0; rep < 3; rep++) {
        for (size_t e = 0; e < sizeof evs / sizeof evs[0]; e++) {
            fd_event_t ev;
            memset(&ev, 0, sizeof ev);
            ev.product_id = str(evs[e].product);
            ev.channel = str(evs[e].channel);
            ev.campaign_id = str(evs[e].campaign);
            fd_str_t ids[4];
            assert_int_equal(fd_scopes_admit_event(fast, gs, &ev, ids), 0);
            for (int gi = 0; gi < 4; gi++) {
                size_t n = fd_scope_id(id, sizeof id, &gs[gi], &ev), m;
                const char *r = fd_scopes_admit(ref, gi, &gs[gi], id, n, &m);
                assert_non_null(r);
                if (ids[gi].n != m || memcmp(ids[gi].p, r, m) != 0)
                    fail_msg("event %zu grouping %d: got %.*s, want %s", e, gi, (int)ids[gi].n,
                             ids[gi].p, r);
            }
        }
    }
    /* the same ids admitted; ids whose values needed encoding are not in
     * the raw index, so it holds fewer */
    assert_int_equal(fast->g[1].count, ref->g[1].count);
    assert_true(fast->g[1].raw_count < fast->g[1].count);
    fd_scopes_free(fast);
    fd_scopes_free(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collisions_resolve_by_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
