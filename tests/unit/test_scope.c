/*
 * test_scope.c — scope id encoding, scope ids per grouping, the capped set.
 * Expected strings are written by hand from SPEC §3.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "model/scope.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- dimension names ---- */

static void test_dim_names(void **state) {
    (void)state;
    static const struct {
        fd_dim_t d;
        const char *name;
    } rows[] = {
        {FD_DIM_PRODUCT, "product"},   {FD_DIM_CHANNEL, "channel"}, {FD_DIM_COMMUNITY, "community"},
        {FD_DIM_CAMPAIGN, "campaign"}, {FD_DIM_CONTENT, "content"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_string_equal(fd_dim_name(rows[i].d), rows[i].name);
        assert_int_equal(fd_dim_from_name(rows[i].name), rows[i].d);
    }
    assert_int_equal(fd_dim_from_name("product_id"), -1);
    assert_int_equal(fd_dim_from_name("Product"), -1);
    assert_int_equal(fd_dim_from_name(""), -1);
    assert_int_equal(fd_dim_from_name(NULL), -1);
}

/* ---- encoding ---- */

static const struct {
    const char *in;
    size_t n;
    const char *out;
} enc_rows[] = {
    {S("wechat_group"), "wechat_group"},
    {S("course-py.v2/~!"), "course-py.v2/~!"}, /* not in the set: passes */
    {S("a,b"), "a%2Cb"},
    {S("a=b"), "a%3Db"},
    {S("g:1"), "g%3A1"},
    {S("{x}"), "%7Bx%7D"},
    {S("100%"), "100%25"},
    {S("spring sale"), "spring%20sale"},
    {S("\x01"), "%01"},
    {S("a\tb\nc"), "a%09b%0Ac"},
    {S("\x1f"), "%1F"},
    {S("\x7f"), "%7F"},
    {S("a\0b"), "a%00b"}, /* an embedded NUL is a control byte */
    {S("\x80\xff"), "\x80\xff"}, /* other high bytes pass through */
    {S("Python入门课"), "Python入门课"}, /* UTF-8 passes through */
    {S("训练营 第1期"), "训练营%20第1期"},
    {S("%41"), "%2541"}, /* already-encoded text is encoded again */
    {S(""), ""},
    {S(",=:{}% "), "%2C%3D%3A%7B%7D%25%20"},
};

static void test_encode_rows(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof enc_rows / sizeof enc_rows[0]; i++) {
        char out[128];
        memset(out, 'X', sizeof out);
        size_t n = fd_scope_encode(out, sizeof out, enc_rows[i].in, enc_rows[i].n);
        if (n != strlen(enc_rows[i].out) || strcmp(out, enc_rows[i].out) != 0)
            fail_msg("row %zu: got \"%s\" (%zu), want \"%s\"", i, out, n, enc_rows[i].out);
    }
}

/* fd_scope_decode undoes fd_scope_encode (inputs without a NUL byte, which
 * a C string cannot hold), passes a malformed % through, and cuts at cap. */
static void test_decode(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof enc_rows / sizeof enc_rows[0]; i++) {
        if (memchr(enc_rows[i].in, '\0', enc_rows[i].n) != NULL) continue;
        char out[128];
        memset(out, 'X', sizeof out);
        fd_scope_decode(out, sizeof out, enc_rows[i].out, strlen(enc_rows[i].out));
        if (strlen(out) != enc_rows[i].n || memcmp(out, enc_rows[i].in, enc_rows[i].n) != 0)
            fail_msg("row %zu: decoded \"%s\", want the input back", i, out);
    }
    char out[8];
    fd_scope_decode(out, sizeof out, S("%2c%7b"));
    assert_string_equal(out, ",{"); /* lower-case hex too */
    fd_scope_decode(out, sizeof out, S("a%4"));
    assert_string_equal(out, "a%4"); /* too short to be an escape */
    fd_scope_decode(out, sizeof out, S("%zz%"));
    assert_string_equal(out, "%zz%");
    fd_scope_decode(out, 4, S("abcdef"));
    assert_string_equal(out, "abc"); /* cut to cap - 1 */
    out[0] = 'X';
    fd_scope_decode(out, 0, S("abc"));
    assert_int_equal(out[0], 'X'); /* cap 0: nothing written */
}

static void test_encode_cut(void **state) {
    (void)state;
    char out[8];
    /* "a,b" encodes to "a%2Cb" (5); with cap 3 only "a" fits: an escape is
     * never split. */
    memset(out, 'X', sizeof out);
    assert_int_equal(fd_scope_encode(out, 3, S("a,b")), 5);
    assert_string_equal(out, "a");
    /* cap 4: "a%2C" needs 4 + NUL, still only "a". */
    assert_int_equal(fd_scope_encode(out, 4, S("a,b")), 5);
    assert_string_equal(out, "a");
    assert_int_equal(fd_scope_encode(out, 5, S("a,b")), 5);
    assert_string_equal(out, "a%2C");
    assert_int_equal(fd_scope_encode(out, 6, S("a,b")), 5);
    assert_string_equal(out, "a%2Cb");
    /* cap 0: nothing written, the length is still reported. */
    assert_int_equal(fd_scope_encode(NULL, 0, S("abc")), 3);
    /* cap 1: just the NUL. */
    out[0] = 'X';
    assert_int_equal(fd_scope_encode(out, 1, S("abc")), 3);
    assert_string_equal(out, "");
}

/* ---- scope ids ---- */

static fd_str_t str(const char *s) { return (fd_str_t){.p = s, .n = (uint32_t)strlen(s)}; }
static const fd_str_t absent = {NULL, 0};

static fd_event_t full_event(void) {
    fd_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = FD_TYPE_EXPOSURE;
    ev.ts_ms = 1710000000000;
    ev.event_id = str("e1");
    ev.user_id = str("u1");
    ev.product_id = str("course-py");
    ev.channel = str("wechat_group");
    ev.community_id = str("g:1");
    ev.campaign_id = str("spring sale");
    ev.content_id = absent;
    return ev;
}

static const fd_grouping_t g_all = {0, {0}};
static const fd_grouping_t g_product = {1, {FD_DIM_PRODUCT}};
static const fd_grouping_t g_prod_chan = {2, {FD_DIM_PRODUCT, FD_DIM_CHANNEL}};
static const fd_grouping_t g_prod_comm = {2, {FD_DIM_PRODUCT, FD_DIM_COMMUNITY}};
static const fd_grouping_t g_campaign = {1, {FD_DIM_CAMPAIGN}};
static const fd_grouping_t g_content = {1, {FD_DIM_CONTENT}};
static const fd_grouping_t g_chan_prod = {2, {FD_DIM_CHANNEL, FD_DIM_PRODUCT}};

static void test_scope_id_default_groupings(void **state) {
    (void)state;
    fd_event_t ev = full_event();
    static const struct {
        const fd_grouping_t *g;
        const char *want; /* NULL: skipped */
    } rows[] = {
        {&g_all, "all"},
        {&g_product, "product=course-py"},
        {&g_prod_chan, "product=course-py,channel=wechat_group"},
        {&g_prod_comm, "product=course-py,community=g%3A1"},
        {&g_campaign, "campaign=spring%20sale"},
        {&g_content, NULL}, /* content_id absent */
        {&g_chan_prod, "channel=wechat_group,product=course-py"}, /* grouping order */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[256];
        size_t n = fd_scope_id(out, sizeof out, rows[i].g, &ev);
        if (rows[i].want == NULL) {
            if (n != 0) fail_msg("row %zu: want skip, got %zu \"%s\"", i, n, out);
        } else if (n != strlen(rows[i].want) || strcmp(out, rows[i].want) != 0) {
            fail_msg("row %zu: got %zu \"%s\", want \"%s\"", i, n, n == (size_t)-1 ? "" : out,
                     rows[i].want);
        }
    }
}

static void test_scope_id_missing_dims(void **state) {
    (void)state;
    char out[256];
    fd_event_t ev = full_event();
    ev.channel = absent;
    ev.campaign_id = absent;
    assert_int_equal(fd_scope_id(out, sizeof out, &g_prod_chan, &ev), 0);
    assert_int_equal(fd_scope_id(out, sizeof out, &g_campaign, &ev), 0);
    assert_int_equal(fd_scope_id(out, sizeof out, &g_chan_prod, &ev), 0);
    /* the other groupings are unaffected */
    assert_int_equal(fd_scope_id(out, sizeof out, &g_product, &ev), strlen("product=course-py"));
    assert_string_equal(out, "product=course-py");
    assert_int_equal(fd_scope_id(out, sizeof out, &g_prod_comm, &ev),
                     strlen("product=course-py,community=g%3A1"));
    assert_int_equal(fd_scope_id(out, sizeof out, &g_all, &ev), 3);
    assert_string_equal(out, "all");

    /* a present-but-empty value is treated as absent (docs/EVENTS.md) */
    ev = full_event();
    ev.community_id = (fd_str_t){"", 0};
    assert_int_equal(fd_scope_id(out, sizeof out, &g_prod_comm, &ev), 0);

    /* a missing dimension skips even when the buffer is too small */
    ev = full_event();
    ev.channel = absent;
    assert_int_equal(fd_scope_id(out, 2, &g_prod_chan, &ev), 0);
}

static void test_scope_id_buffer_too_small(void **state) {
    (void)state;
    fd_event_t ev = full_event();
    const char *want = "product=course-py,channel=wechat_group"; /* 38 bytes */
    size_t len = strlen(want);
    char out[64];
    for (size_t cap = 0; cap <= len; cap++)
        if (fd_scope_id(out, cap, &g_prod_chan, &ev) != (size_t)-1)
            fail_msg("cap %zu: want (size_t)-1", cap);
    assert_int_equal(fd_scope_id(out, len + 1, &g_prod_chan, &ev), len);
    assert_string_equal(out, want);

    /* "all" needs 4 bytes */
    assert_int_equal(fd_scope_id(out, 3, &g_all, &ev), (size_t)-1);
    assert_int_equal(fd_scope_id(out, 4, &g_all, &ev), 3);
    assert_string_equal(out, "all");

    /* the encoded length counts, not the raw one: "g:1" is 5 bytes encoded */
    const char *w2 = "product=course-py,community=g%3A1"; /* 33 bytes */
    assert_int_equal(fd_scope_id(out, strlen(w2), &g_prod_comm, &ev), (size_t)-1);
    assert_int_equal(fd_scope_id(out, strlen(w2) + 1, &g_prod_comm, &ev), strlen(w2));
}

/* ---- the capped set ---- */

static const char *admit(fd_scopes_t *s, int gi, const fd_grouping_t *g, const char *id) {
    size_t n = 0;
    const char *r = fd_scopes_admit(s, gi, g, id, strlen(id), &n);
    assert_non_null(r);
    assert_int_equal(n, strlen(r));
    return r;
}

static void test_scopes_new_errors(void **state) {
    (void)state;
    char err[128] = "";
    assert_null(fd_scopes_new(5, 0, err, sizeof err));
    assert_non_null(strstr(err, "cardinality_cap"));
    err[0] = '\0';
    assert_null(fd_scopes_new(0, 10, err, sizeof err));
    assert_true(err[0] != '\0');
    assert_null(fd_scopes_new(FD_MAX_GROUPINGS + 1, 10, err, sizeof err));
    fd_scopes_free(NULL); /* safe */
}

static void test_scopes_cap(void **state) {
    (void)state;
    char err[128];
    fd_scopes_t *s = fd_scopes_new(3, 3, err, sizeof err);
    assert_non_null(s);
    enum { G_PRODUCT = 0, G_PROD_CHAN = 1, G_ALL = 2 };

    static const struct {
        const char *id, *want;
        uint64_t overflow_after;
    } rows[] = {
        {"product=a", "product=a", 0},
        {"product=b", "product=b", 0},
        {"product=a", "product=a", 0}, /* known: no new slot used */
        {"product=c", "product=c", 0}, /* 3rd distinct value: still room */
        {"product=d", "product=__other__", 1}, /* 4th distinct: overflow */
        {"product=d", "product=__other__", 2}, /* counted per admission */
        {"product=e", "product=__other__", 3},
        {"product=b", "product=b", 3}, /* known values keep their id */
        {"product=c", "product=c", 3},
        {"product=__other__", "product=__other__", 4},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *r = admit(s, G_PRODUCT, &g_product, rows[i].id);
        if (strcmp(r, rows[i].want) != 0)
            fail_msg("row %zu: admit(%s) = %s, want %s", i, rows[i].id, r, rows[i].want);
        if (fd_scopes_overflow(s, G_PRODUCT) != rows[i].overflow_after)
            fail_msg("row %zu: overflow %llu, want %llu", i,
                     (unsigned long long)fd_scopes_overflow(s, G_PRODUCT),
                     (unsigned long long)rows[i].overflow_after);
    }

    /* a separate grouping has its own cap and its own __other__ */
    assert_string_equal(admit(s, G_PROD_CHAN, &g_prod_chan, "product=a,channel=x"),
                        "product=a,channel=x");
    assert_string_equal(admit(s, G_PROD_CHAN, &g_prod_chan, "product=a,channel=y"),
                        "product=a,channel=y");
    assert_string_equal(admit(s, G_PROD_CHAN, &g_prod_chan, "product=d,channel=x"),
                        "product=d,channel=x");
    assert_int_equal(fd_scopes_overflow(s, G_PROD_CHAN), 0);
    assert_string_equal(admit(s, G_PROD_CHAN, &g_prod_chan, "product=e,channel=x"),
                        "product=__other__,channel=__other__");
    assert_int_equal(fd_scopes_overflow(s, G_PROD_CHAN), 1);
    assert_int_equal(fd_scopes_overflow(s, G_PRODUCT), 4);

    /* the global grouping never overflows */
    for (int i = 0; i < 10; i++) assert_string_equal(admit(s, G_ALL, &g_all, "all"), "all");
    assert_int_equal(fd_scopes_overflow(s, G_ALL), 0);

    fd_scopes_free(s);
}

static void test_scopes_copies_and_stable_pointers(void **state) {
    (void)state;
    char err[128];
    fd_scopes_t *s = fd_scopes_new(1, 10, err, sizeof err);
    assert_non_null(s);
    char buf[32];
    size_t n;
    snprintf(buf, sizeof buf, "product=x");
    const char *a = fd_scopes_admit(s, 0, &g_product, buf, strlen(buf), &n);
    assert_non_null(a);
    assert_ptr_not_equal(a, buf); /* the set keeps its own copy */
    snprintf(buf, sizeof buf, "product=y");
    assert_string_equal(a, "product=x");
    snprintf(buf, sizeof buf, "product=x");
    assert_ptr_equal(fd_scopes_admit(s, 0, &g_product, buf, strlen(buf), &n), a);

    /* ids are compared by length too: a prefix is a different id */
    const char *p = fd_scopes_admit(s, 0, &g_product, buf, 8, &n); /* "product=" */
    assert_int_equal(n, 8);
    assert_string_equal(p, "product=");
    assert_ptr_not_equal(p, a);
    fd_scopes_free(s);
}

/* Many distinct ids force several table growths; all must survive them. */
static void test_scopes_growth(void **state) {
    (void)state;
    enum { CAP = 5000 };
    char err[128], id[64];
    fd_scopes_t *s = fd_scopes_new(1, CAP, err, sizeof err);
    assert_non_null(s);
    static const char *first[CAP];
    for (int i = 0; i < CAP; i++) {
        snprintf(id, sizeof id, "product=p%d", i);
        first[i] = admit(s, 0, &g_product, id);
        assert_string_equal(first[i], id);
    }
    for (int i = CAP - 1; i >= 0; i--) {
        snprintf(id, sizeof id, "product=p%d", i);
        assert_ptr_equal(admit(s, 0, &g_product, id), first[i]);
    }
    assert_int_equal(fd_scopes_overflow(s, 0), 0);
    assert_string_equal(admit(s, 0, &g_product, "product=p5000"), "product=__other__");
    assert_int_equal(fd_scopes_overflow(s, 0), 1);
    fd_scopes_free(s);
}

/* End to end: an event's ids go through the set like the aggregator does. */
static void test_scope_id_then_admit(void **state) {
    (void)state;
    static const fd_grouping_t gs[] = {{0, {0}},
                                       {1, {FD_DIM_PRODUCT}},
                                       {2, {FD_DIM_PRODUCT, FD_DIM_CHANNEL}},
                                       {2, {FD_DIM_PRODUCT, FD_DIM_COMMUNITY}},
                                       {1, {FD_DIM_CAMPAIGN}}};
    char err[128], id[256];
    fd_scopes_t *s = fd_scopes_new(5, 2, err, sizeof err);
    assert_non_null(s);
    static const char *products[] = {"p1", "p2", "p3"};
    static const char *want_product[] = {"product=p1", "product=p2", "product=__other__"};
    for (int e = 0; e < 3; e++) {
        fd_event_t ev = full_event();
        ev.product_id = str(products[e]);
        ev.campaign_id = absent;
        for (int gi = 0; gi < 5; gi++) {
            size_t n = fd_scope_id(id, sizeof id, &gs[gi], &ev), m;
            if (gi == 4) {
                assert_int_equal(n, 0);
                continue;
            }
            assert_true(n > 0 && n != (size_t)-1);
            const char *r = fd_scopes_admit(s, gi, &gs[gi], id, n, &m);
            assert_non_null(r);
            if (gi == 1) assert_string_equal(r, want_product[e]);
        }
    }
    assert_int_equal(fd_scopes_overflow(s, 0), 0);
    assert_int_equal(fd_scopes_overflow(s, 1), 1);
    assert_int_equal(fd_scopes_overflow(s, 2), 1);
    assert_int_equal(fd_scopes_overflow(s, 3), 1);
    assert_int_equal(fd_scopes_overflow(s, 4), 0);
    fd_scopes_free(s);
}

/* fd_scopes_admit_event must give, grouping by grouping, what fd_scope_id +
 * fd_scopes_admit give: the same id text, the same overflow counts, and the
 * set's own pointer. Values are chosen to trap an in-place compare of raw
 * values with stored ids: "," and its encoded form "%2C" as raw text,
 * "ab"+"c" against "a"+"bc", a value that is a prefix of another, a space,
 * and values past the cap (each admission of one counts). */
static void test_admit_event_matches_admit(void **state) {
    (void)state;
    static const fd_grouping_t gs[] = {{0, {0}},
                                       {1, {FD_DIM_PRODUCT}},
                                       {2, {FD_DIM_PRODUCT, FD_DIM_CHANNEL}},
                                       {2, {FD_DIM_CHANNEL, FD_DIM_PRODUCT}},
                                       {1, {FD_DIM_CAMPAIGN}}};
    static const struct {
        const char *product, *channel, *campaign;
    } evs[] = {
        {",", "w", "c1"},     {"%2C", "w", "c1"},    {",", "w", "c1"},       {"%2C", "w", NULL},
        {"ab", "c", "c2"},    {"a", "bc", "c2"},     {"ab", "c", NULL},      {"a", "bc", "c3"},
        {"p", "wechat", "x"}, {"p1", "wechat", "x"}, {"p", "wechat_g", "x"}, {"a b", "w", "x"},
        {"q1", "w", "c4"},    {"q2", "w", "c5"},     {"q3", "w", "c6"},      {"q1", "w", "c4"},
        {"q3", "w", "c6"},    {"a", "bc", "c2"},     {",", "w", "c1"},       {"%2C", "w", "c1"},
    };
    char err[128], id[512];
    for (uint32_t cap = 3; cap <= 40; cap += 37) { /* with and without overflow */
        fd_scopes_t *fast = fd_scopes_new(5, cap, err, sizeof err);
        fd_scopes_t *ref = fd_scopes_new(5, cap, err, sizeof err);
        assert_non_null(fast);
        assert_non_null(ref);
        for (int rep = 0; rep < 2; rep++) {
            for (size_t e = 0; e < sizeof evs / sizeof evs[0]; e++) {
                fd_event_t ev = full_event();
                ev.product_id = str(evs[e].product);
                ev.channel = str(evs[e].channel);
                ev.campaign_id = evs[e].campaign ? str(evs[e].campaign) : absent;
                fd_str_t ids[5];
                assert_int_equal(fd_scopes_admit_event(fast, gs, &ev, ids), 0);
                for (int gi = 0; gi < 5; gi++) {
                    size_t n = fd_scope_id(id, sizeof id, &gs[gi], &ev), m;
                    if (n == 0) {
                        assert_null(ids[gi].p);
                        continue;
                    }
                    const char *r = fd_scopes_admit(ref, gi, &gs[gi], id, n, &m);
                    assert_non_null(r);
                    assert_non_null(ids[gi].p);
                    assert_int_equal(ids[gi].n, m);
                    assert_memory_equal(ids[gi].p, r, m);
                    assert_int_equal(ids[gi].p[m], '\0');
                }
            }
            for (int gi = 0; gi < 5; gi++)
                assert_int_equal(fd_scopes_overflow(fast, gi), fd_scopes_overflow(ref, gi));
        }
        /* the pointers are the set's own: fd_scopes_admit on the same set
         * finds the same copy for an admitted id */
        fd_event_t ev = full_event();
        ev.product_id = str(",");
        ev.channel = str("w");
        ev.campaign_id = str("c1");
        fd_str_t ids[5];
        assert_int_equal(fd_scopes_admit_event(fast, gs, &ev, ids), 0);
        size_t m;
        assert_ptr_equal(fd_scopes_admit(fast, 1, &gs[1], S("product=%2C"), &m), ids[1].p);
        assert_ptr_equal(fd_scopes_admit(fast, 0, &gs[0], S("all"), &m), ids[0].p);
        if (cap == 3) assert_true(fd_scopes_overflow(fast, 1) > 0);
        fd_scopes_free(fast);
        fd_scopes_free(ref);
    }
}

/* Which groupings get leaderboards (docs/METRICS.md: the last dimension is
 * channel or community) and their names in board keys. */
static void test_grouping_boards_and_name(void **state) {
    (void)state;
    fd_grouping_t all = {0}, p = {1, {FD_DIM_PRODUCT}}, pc = {2, {FD_DIM_PRODUCT, FD_DIM_CHANNEL}},
                  pm = {2, {FD_DIM_PRODUCT, FD_DIM_COMMUNITY}},
                  cp = {2, {FD_DIM_CHANNEL, FD_DIM_PRODUCT}}, c = {1, {FD_DIM_CAMPAIGN}};
    assert_false(fd_grouping_has_boards(&all));
    assert_false(fd_grouping_has_boards(&p));
    assert_true(fd_grouping_has_boards(&pc));
    assert_true(fd_grouping_has_boards(&pm));
    assert_false(fd_grouping_has_boards(&cp));
    assert_false(fd_grouping_has_boards(&c));
    char buf[64];
    assert_int_equal(fd_grouping_name(buf, sizeof buf, &pc), strlen("product,channel"));
    assert_string_equal(buf, "product,channel");
    assert_int_equal(fd_grouping_name(buf, sizeof buf, &all), 0);
    assert_string_equal(buf, "");
    char small[8]; /* truncated, still terminated, the full length returned */
    assert_int_equal(fd_grouping_name(small, sizeof small, &pm), strlen("product,community"));
    assert_string_equal(small, "product");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dim_names),
        cmocka_unit_test(test_encode_rows),
        cmocka_unit_test(test_encode_cut),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_scope_id_default_groupings),
        cmocka_unit_test(test_scope_id_missing_dims),
        cmocka_unit_test(test_scope_id_buffer_too_small),
        cmocka_unit_test(test_scopes_new_errors),
        cmocka_unit_test(test_scopes_cap),
        cmocka_unit_test(test_scopes_copies_and_stable_pointers),
        cmocka_unit_test(test_scopes_growth),
        cmocka_unit_test(test_scope_id_then_admit),
        cmocka_unit_test(test_admit_event_matches_admit),
        cmocka_unit_test(test_grouping_boards_and_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
