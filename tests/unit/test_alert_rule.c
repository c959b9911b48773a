/*
 * test_alert_rule.c — alert statistics against hand-computed values, rule
 * evaluation rows, the state machine as a table of (time, condition) →
 * expected transition, rule parsing rows, the fingerprint, and the two
 * payload helpers of the outputs (Standard Webhooks signature, Alertmanager
 * v2 body).
 *
 * Expected numbers come from the formulas in docs/ALERTS.md worked by hand
 * (shown next to each value), the Standard Webhooks reference test vector,
 * and the FNV-1a definition — never from running the implementation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "model/alert_rule.h"
#include "alerts/outputs.h"

#define NEAR(a, b, tol) assert_true(fabs_((a) - (b)) <= (tol))

static double fabs_(double x) { return x < 0 ? -x : x; }

/* ---- statistics ----------------------------------------------------------------- */

static void test_z_two_prop(void **state) {
    (void)state;
    /* x1=30/1000 (3%) vs x0=500/10000 (5%): pooled p = 530/11000 = 0.0481818;
     * se = sqrt(0.0481818 * 0.9518182 * (1/1000 + 1/10000)) = 0.0071025;
     * z = (0.05 - 0.03) / 0.0071025 = 2.8159 */
    NEAR(fd_alert_z_two_prop(30, 1000, 500, 10000), 2.8159, 1e-3);
    /* 0/100 vs 10/100: p = 0.05, se = sqrt(0.05*0.95*0.02) = 0.0308221, z = 0.1/se = 3.2444 */
    NEAR(fd_alert_z_two_prop(0, 100, 10, 100), 3.2444, 1e-3);
    /* a rise is a negative z */
    NEAR(fd_alert_z_two_prop(10, 100, 0, 100), -3.2444, 1e-3);
    /* equal rates: 0 */
    NEAR(fd_alert_z_two_prop(50, 1000, 500, 10000), 0, 1e-12);
    /* undefined: an empty side, or a pooled proportion of 0 */
    assert_true(fd_alert_z_two_prop(0, 0, 10, 100) == 0);
    assert_true(fd_alert_z_two_prop(5, 100, 5, 0) == 0);
    assert_true(fd_alert_z_two_prop(0, 100, 0, 100) == 0);
}

static void test_z_counts_and_p(void **state) {
    (void)state;
    /* 50 in 300 s vs 1000 in 3000 s: n = 1050, q = 300/3300 = 0.090909;
     * n q = 95.4545, sd = sqrt(95.4545 * 0.909091) = 9.31541;
     * z = (95.4545 - 50) / 9.31541 = 4.8795 */
    NEAR(fd_alert_z_counts(50, 300, 1000, 3000), 4.8795, 1e-3);
    /* exactly the expected share: 100 in 300 s vs 1000 in 3000 s → 0 */
    NEAR(fd_alert_z_counts(100, 300, 1000, 3000), 0, 1e-12);
    assert_true(fd_alert_z_counts(0, 300, 0, 3000) == 0);
    /* standard normal upper tail: P(Z >= 0) = .5, 1.959964 → .025, 2.326348 → .01 */
    NEAR(fd_alert_p_upper(0), 0.5, 1e-12);
    NEAR(fd_alert_p_upper(1.959964), 0.025, 1e-6);
    NEAR(fd_alert_p_upper(2.326348), 0.01, 1e-6);
    NEAR(fd_alert_p_upper(-2.326348), 0.99, 1e-6);
}

/* ---- evaluation rows -------------------------------------------------------------- */

typedef struct {
    const char *rule; /* JSON */
    fd_alert_input_t in;
    int cond, enough;
    double value, drop; /* checked when drop >= 0 */
} eval_row_t;

#define DROP_RATE \
    "{\"name\":\"d\",\"kind\":\"drop_vs_baseline\",\"metric\":\"conversion_rate\"," \
    "\"min_samples\":1000,\"min_drop\":0.3,\"confidence\":0.99}"

static const eval_row_t eval_rows[] = {
    /* 60/3000 = 2% vs 5000/100000 = 5%: drop 0.6, z ≈ 7.5 → fires */
    {DROP_RATE, {60, 3000, 5000, 100000}, 1, 1, 0.02, 0.6},
    /* same rates, 500 potential users < min_samples 1000 → no */
    {DROP_RATE, {10, 500, 5000, 100000}, 0, 0, 0.02, 0.6},
    /* baseline with too few samples → no */
    {DROP_RATE, {60, 3000, 25, 500}, 0, 0, 0.02, 0.6},
    /* 4.5% vs 5%: significant at this volume (z ≈ 2.2 with n=10000? below 2.33) and only
     * a 10% drop: no */
    {DROP_RATE, {450, 10000, 5000, 100000}, 0, 1, 0.045, 0.1},
    /* 3.5% vs 5% exactly 30% down, n = 3000: se = sqrt(.04986*.95014*(1/3000+1/100000))
     * = 0.0040375, z = 3.715 → fires (>= min_drop is inclusive) */
    {DROP_RATE, {105, 3000, 5000, 100000}, 1, 1, 0.035, 0.3},
    /* 2/100 vs 5%: 60% drop but z = 1.376 (p = .084 > .01) → no (min_samples 0 rule) */
    {"{\"name\":\"d\",\"kind\":\"drop_vs_baseline\",\"metric\":\"conversion_rate\","
     "\"min_samples\":50}",
     {2, 100, 5000, 100000},
     0,
     1,
     0.02,
     0.6},
    /* a rise never fires */
    {DROP_RATE, {300, 3000, 5000, 100000}, 0, 1, 0.1, -1},
    /* count drop: payments 2 in 15 m (900 s) vs 3600 in 24 h: baseline rate 1/24 per s,
     * expected 37.5; drop 1 - (2/900)/(3600/86400) = 0.9467 → fires */
    {"{\"name\":\"c\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"window\":\"15m\","
     "\"baseline\":\"24h\",\"min_samples\":100}",
     {2, 0, 3600, 0},
     1,
     1,
     2.0 / 900,
     0.946667},
    /* count drop of 20% (30 vs 37.5 expected): below min_drop → no */
    {"{\"name\":\"c\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"window\":\"15m\","
     "\"baseline\":\"24h\",\"min_samples\":100}",
     {30, 0, 3600, 0},
     0,
     1,
     30.0 / 900,
     0.2},
    /* below_threshold on a rate, with its guard */
    {"{\"name\":\"b\",\"kind\":\"below_threshold\",\"metric\":\"conversion_rate\","
     "\"threshold\":0.02,\"min_samples\":1000}",
     {15, 1500, 0, 0},
     1,
     1,
     0.01,
     -1},
    {"{\"name\":\"b\",\"kind\":\"below_threshold\",\"metric\":\"conversion_rate\","
     "\"threshold\":0.02,\"min_samples\":1000}",
     {5, 500, 0, 0},
     0,
     0,
     0.01,
     -1},
    {"{\"name\":\"b\",\"kind\":\"below_threshold\",\"metric\":\"conversion_rate\","
     "\"threshold\":0.02,\"min_samples\":1000}",
     {30, 1500, 0, 0},
     0,
     1,
     0.02,
     -1}, /* equal is not below */
    /* below_threshold on a count: no guard */
    {"{\"name\":\"b\",\"kind\":\"below_threshold\",\"metric\":\"exposures\",\"threshold\":10}",
     {3, 0, 0, 0},
     1,
     1,
     3,
     -1},
    /* absent: no payments while >= min_samples exposures */
    {"{\"name\":\"a\",\"kind\":\"absent\",\"metric\":\"payments\",\"min_samples\":500}",
     {0, 600, 0, 0},
     1,
     1,
     0,
     -1},
    {"{\"name\":\"a\",\"kind\":\"absent\",\"metric\":\"payments\",\"min_samples\":500}",
     {0, 400, 0, 0},
     0,
     0,
     0,
     -1},
    {"{\"name\":\"a\",\"kind\":\"absent\",\"metric\":\"payments\",\"min_samples\":500}",
     {1, 600, 0, 0},
     0,
     1,
     1,
     -1},
};

static void test_eval_rows(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof eval_rows / sizeof eval_rows[0]; i++) {
        const eval_row_t *row = &eval_rows[i];
        char err[256];
        fd_alert_rule_t r;
        cJSON *j = cJSON_Parse(row->rule);
        assert_non_null(j);
        if (fd_alert_rule_parse(j, "rule", &r, err, sizeof err) != 0)
            fail_msg("row %zu: %s", i, err);
        cJSON_Delete(j);
        fd_alert_eval_t ev;
        fd_alert_rule_eval(&r, &row->in, &ev);
        if (ev.cond != row->cond || ev.enough != row->enough || fabs_(ev.value - row->value) > 1e-6 ||
            (row->drop >= 0 && fabs_(ev.drop - row->drop) > 1e-4)) {
            print_error("row %zu: cond %d (want %d) enough %d (want %d) value %g (want %g) "
                        "drop %g (want %g) z %g p %g\n",
                        i, ev.cond, row->cond, ev.enough, row->enough, ev.value, row->value,
                        ev.drop, row->drop, ev.z, ev.p_value);
            failures++;
        }
        fd_alert_rule_release(&r);
    }
    assert_int_equal(failures, 0);
}

/* ---- state machine ----------------------------------------------------------------- */

typedef struct {
    int minute, cond, want; /* want: new state, or -1 for no transition */
} step_t;

#define NO (-1)

static void run_table(const step_t *steps, size_t n, int64_t for_s, int64_t keep_s) {
    fd_alert_status_t s = {0};
    for (size_t i = 0; i < n; i++) {
        int got = fd_alert_step(&s, steps[i].cond, (int64_t)steps[i].minute * 60000, for_s * 1000,
                                keep_s * 1000);
        if (got != steps[i].want)
            fail_msg("step %zu (t=%dm cond=%d): got %d, want %d", i, steps[i].minute, steps[i].cond,
                     got, steps[i].want);
    }
}

static void test_state_for_and_keep(void **state) {
    (void)state;
    /* for = 2m, keep_firing_for = 1m (Prometheus: keep firing until the condition has
     * been false for keep_firing_for, counted from the first false evaluation) */
    static const step_t t[] = {
        {1, 0, NO},
        {2, 1, FD_AS_PENDING}, /* active since 2 */
        {3, 1, NO}, /* 1m < for */
        {4, 1, FD_AS_FIRING}, /* 2m >= for */
        {5, 0, NO}, /* keep firing, false since 5 */
        {6, 1, NO}, /* true again: the keep clock resets */
        {7, 0, NO}, /* false since 7 */
        {8, 0, FD_AS_RESOLVED}, /* 8 - 7 >= 1m */
        {9, 0, NO},
        {10, 1, FD_AS_PENDING}, /* a new episode */
        {11, 0, FD_AS_INACTIVE},
        {11, 1, NO}, /* the same step again: ignored */
        {10, 1, NO}, /* an older step: ignored */
        {12, 1, FD_AS_PENDING},
        {13, 1, NO},
        {14, 1, FD_AS_FIRING},
    };
    run_table(t, sizeof t / sizeof t[0], 120, 60);
}

static void test_state_immediate(void **state) {
    (void)state;
    /* for = 0: fires on the first true step; keep = 0: resolves on the first false */
    static const step_t t[] = {
        {1, 1, FD_AS_FIRING}, {2, 1, NO},           {3, 0, FD_AS_RESOLVED},
        {4, 0, NO},           {5, 1, FD_AS_FIRING}, {6, 0, FD_AS_RESOLVED},
    };
    run_table(t, sizeof t / sizeof t[0], 0, 0);
}

static void test_state_fields(void **state) {
    (void)state;
    fd_alert_status_t s = {0};
    assert_int_equal(fd_alert_step(&s, 1, 120000, 60000, 0), FD_AS_PENDING);
    assert_int_equal(fd_alert_step(&s, 1, 180000, 60000, 0), FD_AS_FIRING);
    assert_true(s.active_since == 120000 && s.fired_at == 180000);
    assert_int_equal(fd_alert_step(&s, 0, 240000, 60000, 0), FD_AS_RESOLVED);
    assert_true(s.resolved_at == 240000 && s.state == FD_AS_RESOLVED);
    assert_string_equal(fd_alert_state_name(FD_AS_FIRING), "firing");
    assert_int_equal(fd_alert_state_from_name("resolved"), FD_AS_RESOLVED);
    assert_int_equal(fd_alert_state_from_name("bogus"), -1);
}

/* ---- rule parsing rows ---------------------------------------------------------------- */

typedef struct {
    const char *text;
    const char *err; /* NULL: accepted */
} parse_row_t;

static const parse_row_t parse_rows[] = {
    {"{\"name\":\"ConversionDrop\",\"kind\":\"drop_vs_baseline\",\"metric\":\"conversion_rate\","
     "\"grouping\":[\"product\"],\"window\":\"15m\",\"baseline\":\"24h\",\"for\":\"2m\","
     "\"labels\":{\"severity\":\"page\"},\"annotations\":{\"summary\":\"x\"},"
     "\"sinks\":[\"webhook\",\"stdout\"]}",
     NULL},
    {"{\"name\":\"w\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"window\":\"1h\","
     "\"baseline_offset\":\"7d\"}",
     NULL},
    {"{\"name\":\"a\",\"kind\":\"absent\",\"metric\":\"payments\",\"while\":\"interactions\"}", NULL},
    {"{\"name\":\"x\",\"kind\":\"absent\",\"metric\":\"payments\",\"bogus\":1}",
     "rule: unknown key \"bogus\""},
    {"{\"kind\":\"absent\",\"metric\":\"payments\"}", "rule.name: required"},
    {"{\"name\":\"bad name\",\"kind\":\"absent\",\"metric\":\"payments\"}", "rule.name"},
    {"{\"name\":\"x\",\"kind\":\"spike\",\"metric\":\"payments\"}", "rule.kind"},
    {"{\"name\":\"x\",\"kind\":\"absent\",\"metric\":\"revenue\"}", "rule.metric"},
    {"{\"name\":\"x\",\"kind\":\"absent\",\"metric\":\"conversion_rate\"}",
     "kind absent needs a count"},
    {"{\"name\":\"x\",\"kind\":\"below_threshold\",\"metric\":\"conversion_rate\"}",
     "rule.threshold: required"},
    {"{\"name\":\"x\",\"kind\":\"below_threshold\",\"metric\":\"exposures\",\"threshold\":1,"
     "\"min_drop\":0.5}",
     "rule.min_drop: only for kind drop_vs_baseline"},
    {"{\"name\":\"x\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"min_drop\":1.5}",
     "rule.min_drop: must be a number in (0, 1)"},
    {"{\"name\":\"x\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"confidence\":1}",
     "rule.confidence"},
    {"{\"name\":\"x\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"window\":\"90s\"}",
     "rule.window: must be whole minutes"},
    {"{\"name\":\"x\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"baseline\":\"90m\"}",
     "rule.baseline: must be whole hours"},
    {"{\"name\":\"x\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"for\":\"soon\"}",
     "rule.for: must be a duration"},
    {"{\"name\":\"x\",\"kind\":\"absent\",\"metric\":\"payments\",\"grouping\":[\"planet\"]}",
     "rule.grouping: unknown dimension"},
    {"{\"name\":\"x\",\"kind\":\"absent\",\"metric\":\"payments\",\"labels\":{\"product\":\"y\"}}",
     "not a usable label name"},
    {"{\"name\":\"x\",\"kind\":\"absent\",\"metric\":\"payments\",\"labels\":{\"a\":1}}",
     "rule.labels[\"a\"]: must be a string"},
    {"{\"name\":\"x\",\"kind\":\"absent\",\"metric\":\"payments\",\"sinks\":[\"pager\"]}",
     "rule.sinks"},
    {"{\"name\":\"x\",\"kind\":\"drop_vs_baseline\",\"metric\":\"payments\",\"while\":"
     "\"exposures\"}",
     "rule.while: only for kind absent"},
};

static void test_parse_rows(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof parse_rows / sizeof parse_rows[0]; i++) {
        char err[256] = "";
        fd_alert_rule_t r;
        cJSON *j = cJSON_Parse(parse_rows[i].text);
        assert_non_null(j);
        int rc = fd_alert_rule_parse(j, "rule", &r, err, sizeof err);
        cJSON_Delete(j);
        if (parse_rows[i].err == NULL && rc != 0) {
            print_error("row %zu: expected ok, got %s\n", i, err);
            failures++;
        } else if (parse_rows[i].err != NULL && (rc == 0 || strstr(err, parse_rows[i].err) == NULL)) {
            print_error("row %zu: expected error containing \"%s\", got rc %d \"%s\"\n", i,
                        parse_rows[i].err, rc, err);
            failures++;
        }
        if (rc == 0) {
            /* prints back to JSON that parses to the same rule */
            cJSON *o = fd_alert_rule_to_json(&r);
            fd_alert_rule_t r2;
            assert_int_equal(fd_alert_rule_parse(o, "again", &r2, err, sizeof err), 0);
            cJSON *o2 = fd_alert_rule_to_json(&r2);
            char *s1 = cJSON_PrintUnformatted(o), *s2 = cJSON_PrintUnformatted(o2);
            assert_string_equal(s1, s2);
            free(s1);
            free(s2);
            cJSON_Delete(o);
            cJSON_Delete(o2);
            fd_alert_rule_release(&r2);
            fd_alert_rule_release(&r);
        }
    }
    assert_int_equal(failures, 0);
}

static void test_parse_values(void **state) {
    (void)state;
    char err[256];
    fd_alert_rule_t r;
    cJSON *j = cJSON_Parse(parse_rows[0].text);
    assert_int_equal(fd_alert_rule_parse(j, "rule", &r, err, sizeof err), 0);
    cJSON_Delete(j);
    assert_string_equal(r.name, "ConversionDrop");
    assert_int_equal(r.kind, FD_ALERT_DROP);
    assert_int_equal(r.metric, FD_M_CONVERSION_RATE);
    assert_int_equal(r.grouping.ndims, 1);
    assert_int_equal(r.grouping.dims[0], FD_DIM_PRODUCT);
    assert_int_equal(r.window_s, 900);
    assert_int_equal(r.baseline_s, 86400);
    assert_int_equal(r.for_s, 120);
    assert_int_equal(r.keep_firing_for_s, 0);
    NEAR(r.min_drop, 0.3, 1e-12); /* defaults of SPEC §6's example */
    NEAR(r.confidence, 0.99, 1e-12);
    assert_int_equal(r.min_samples, 100);
    assert_int_equal(r.sinks, FD_ALERT_OUT_BIT(FD_ALERT_OUT_WEBHOOK) |
                                  FD_ALERT_OUT_BIT(FD_ALERT_OUT_STDOUT));
    assert_int_equal(r.nlabels, 1);
    assert_string_equal(r.labels[0].key, "severity");
    assert_string_equal(r.annotations[0].value, "x");
    fd_alert_rule_release(&r);
    fd_alert_rule_release(&r); /* twice is safe */
}

/* ---- fingerprint -------------------------------------------------------------------------- */

static void test_fingerprint(void **state) {
    (void)state;
    char a[17], b[17], c[17];
    const char *k1[] = {"severity", "product"}, *v1[] = {"page", "A"};
    const char *k2[] = {"product", "severity"}, *v2[] = {"A", "page"};
    const char *v3[] = {"B", "page"};
    /* FNV-1a 64 of "alertname\0ConversionDrop\0product\0A\0severity\0page\0" */
    fd_alert_fingerprint("ConversionDrop", k1, v1, 2, a);
    assert_string_equal(a, "272b2452311fd65b");
    fd_alert_fingerprint("ConversionDrop", k2, v2, 2, b);
    assert_string_equal(a, b); /* label order does not matter */
    fd_alert_fingerprint("ConversionDrop", k2, v3, 2, c);
    assert_string_not_equal(a, c);
    fd_alert_fingerprint("ConversionFloor", k1, v1, 2, c);
    assert_string_not_equal(a, c);
}

/* ---- output helpers ----------------------------------------------------------------------- */

static void test_webhook_signature(void **state) {
    (void)state;
    /* the Standard Webhooks reference vector */
    char sig[128];
    const char *body = "{\"test\": 2432232314}";
    int n = fd_alert_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                  "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                  sig, sizeof sig);
    assert_true(n > 0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* a changed body or timestamp changes the signature */
    char sig2[128];
    fd_alert_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                          1614265331, body, strlen(body), sig2, sizeof sig2);
    assert_string_not_equal(sig, sig2);
    assert_int_equal(fd_alert_webhook_sign("whsec_%%%", "id", 1, "x", 1, sig2, sizeof sig2), -1);
}

static void test_am_body(void **state) {
    (void)state;
    char ts[40];
    fd_alert_rfc3339(1718092800123LL, ts, sizeof ts);
    assert_string_equal(ts, "2024-06-11T08:00:00.123Z");
    cJSON *f =
        cJSON_Parse("{\"state\":\"firing\",\"scope\":\"product=a b\",\"starts_at\":1718092800000,"
                    "\"ends_at\":null,\"labels\":{\"alertname\":\"X\",\"product\":\"a b\"},"
                    "\"annotations\":{\"summary\":\"s\"}}");
    cJSON *r = cJSON_Parse("{\"state\":\"resolved\",\"scope\":\"all\",\"starts_at\":1718092800000,"
                           "\"ends_at\":1718093400000,\"labels\":{\"alertname\":\"X\"}}");
    void *ts2[2] = {f, r};
    char *body = fd_alert_am_body(ts2, 2, 1718096400000LL, 240000, "");
    cJSON *b = cJSON_Parse(body);
    assert_int_equal(cJSON_GetArraySize(b), 2);
    cJSON *a0 = cJSON_GetArrayItem(b, 0), *a1 = cJSON_GetArrayItem(b, 1);
    assert_string_equal(cJSON_GetObjectItem(a0, "startsAt")->valuestring,
                        "2024-06-11T08:00:00.000Z");
    /* firing: endsAt = now + 240 s */
    assert_string_equal(cJSON_GetObjectItem(a0, "endsAt")->valuestring, "2024-06-11T09:04:00.000Z");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a0, "labels"), "product")->valuestring, "a b");
    assert_string_equal(cJSON_GetObjectItem(a0, "generatorURL")->valuestring,
                        "funneld:alerts?scope=product%3Da%20b");
    /* resolved: endsAt = the resolve time */
    assert_string_equal(cJSON_GetObjectItem(a1, "endsAt")->valuestring, "2024-06-11T08:10:00.000Z");
    assert_non_null(cJSON_GetObjectItem(a1, "annotations"));
    free(body);
    cJSON_Delete(b);
    body = fd_alert_am_body(ts2, 1, 0, 0, "https://dash.example/f?x=1");
    b = cJSON_Parse(body);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(b, 0), "generatorURL")->valuestring,
                        "https://dash.example/f?x=1&scope=product%3Da%20b");
    free(body);
    cJSON_Delete(b);
    cJSON_Delete(f);
    cJSON_Delete(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_z_two_prop),      cmocka_unit_test(test_z_counts_and_p),
        cmocka_unit_test(test_eval_rows),       cmocka_unit_test(test_state_for_and_keep),
        cmocka_unit_test(test_state_immediate), cmocka_unit_test(test_state_fields),
        cmocka_unit_test(test_parse_rows),      cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_fingerprint),     cmocka_unit_test(test_webhook_signature),
        cmocka_unit_test(test_am_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
