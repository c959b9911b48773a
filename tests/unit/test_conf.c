/*
 * test_conf.c — configuration: table-driven rows of "config text → ok / error
 * naming the key", redis.url forms, secret masking, flags, and the check that
 * docs/CONFIG.md is exactly what fd_conf_print_doc() renders.
 *
 * Expected values come from the contract (conf.h comments, SPEC, the brief),
 * not from running the implementation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "conf/conf.h"
#include "base/duration.h"

/* ---- helpers ------------------------------------------------------------ */

static char *write_temp(const char *text) {
    char *path = strdup("/tmp/fd_test_conf_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Loads text over the defaults, then finalizes. Returns the rc of the first
 * failing step (0 if both pass); err holds its message. */
static int load_text(fd_conf_t *c, const char *text, char *err, size_t errlen) {
    char *path = write_temp(text);
    fd_conf_defaults(c);
    err[0] = '\0';
    int rc = fd_conf_load_file(c, path, err, errlen);
    if (rc == 0) rc = fd_conf_finalize(c, err, errlen);
    unlink(path);
    free(path);
    return rc;
}

static char *print_conf(const fd_conf_t *c) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    fd_conf_print(c, f);
    fclose(f);
    return buf;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    assert_non_null(m);
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, r, m);
    fclose(f);
    fclose(m);
    return buf;
}

static const char *source_dir(void) {
    const char *d = getenv("FD_SOURCE_DIR");
    return d && d[0] ? d : "..";
}

static int setup_env(void **state) {
    (void)state;
    setenv("FD_TEST_GROUP", "grp", 1);
    setenv("FD_TEST_PW", "env-Pa55word", 1);
    setenv("FD_TEST_WINDOW", "15m", 1);
    unsetenv("FD_TEST_UNDEFINED_VAR");
    return 0;
}

/* ---- defaults ----------------------------------------------------------- */

static void test_defaults(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    fd_conf_defaults(&c);
    assert_string_equal(c.brokers, "127.0.0.1:9092");
    assert_string_equal(c.group, "funneld");
    assert_int_equal(c.ntopics, 3);
    assert_string_equal(c.topics[0].name, "funnel.exposure");
    assert_int_equal(c.topics[0].type, FD_TYPE_EXPOSURE);
    assert_string_equal(c.topics[1].name, "funnel.interaction");
    assert_int_equal(c.topics[1].type, FD_TYPE_INTERACTION);
    assert_string_equal(c.topics[2].name, "funnel.payment");
    assert_int_equal(c.topics[2].type, FD_TYPE_PAYMENT);
    assert_string_equal(c.dlq_topic, "funnel.dlq");
    assert_int_equal(c.nkprops, 0);
    assert_string_equal(c.redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(c.prefix, "funnel");
    assert_int_equal(c.redis_timeout_ms, 5000);
    assert_int_equal(c.flush_interval_ms, 1000);
    assert_int_equal(c.snapshot_interval_ms, 5000);
    assert_int_equal(c.max_message_bytes, 65536);
    assert_int_equal(c.flush_max_events, 20000);
    assert_int_equal(c.max_pending_events, 200000);
    assert_int_equal(c.ngroupings, 5);
    assert_int_equal(c.groupings[0].ndims, 0);
    assert_int_equal(c.groupings[1].ndims, 1);
    assert_int_equal(c.groupings[1].dims[0], FD_DIM_PRODUCT);
    assert_int_equal(c.groupings[2].ndims, 2);
    assert_int_equal(c.groupings[2].dims[0], FD_DIM_PRODUCT);
    assert_int_equal(c.groupings[2].dims[1], FD_DIM_CHANNEL);
    assert_int_equal(c.groupings[3].ndims, 2);
    assert_int_equal(c.groupings[3].dims[0], FD_DIM_PRODUCT);
    assert_int_equal(c.groupings[3].dims[1], FD_DIM_COMMUNITY);
    assert_int_equal(c.groupings[4].ndims, 1);
    assert_int_equal(c.groupings[4].dims[0], FD_DIM_CAMPAIGN);
    assert_int_equal(c.cardinality_cap, 10000);
    assert_int_equal(c.action_cap, 64);
    assert_string_equal(c.time_zone, "Asia/Shanghai");
    assert_int_equal(c.lateness_s, 120);
    assert_int_equal(c.late_policy, FD_LATE_COUNT);
    assert_int_equal(c.max_future_s, 300);
    assert_int_equal(c.idle_timeout_s, 60);
    assert_int_equal(c.nwindows, 3);
    assert_int_equal(c.windows_s[0], 5 * 60);
    assert_int_equal(c.windows_s[1], 60 * 60);
    assert_int_equal(c.windows_s[2], 24 * 60 * 60);
    assert_int_equal(c.ttl_m1_s, 48 * 3600);
    assert_int_equal(c.ttl_h1_s, 35 * 86400);
    assert_int_equal(c.ttl_d1_s, 400 * 86400);
    assert_int_equal(c.dedup_ttl_s, 400 * 86400);
    assert_string_equal(c.http_listen, "127.0.0.1:9464");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.log_rate_per_s, 10);
    assert_int_equal(fd_conf_finalize(&c, err, sizeof err), 0);
    fd_conf_release(&c);
    assert_null(c.brokers);
    assert_int_equal(c.ntopics, 0);
    fd_conf_release(&c); /* twice is safe */
}

/* ---- config text → ok / error ------------------------------------------ */

typedef struct {
    const char *text;
    const char *err; /* NULL: must load and finalize; else a substring of the error */
} row_t;

#define G17 "[],[],[],[],[],[],[],[],[],[],[],[],[],[],[],[],[]"

static const row_t rows[] = {
    /* accepted */
    {"{}", NULL},
    {"{\"kafka\": {\"brokers\": \"k1:9092,k2:9092\"}}", NULL},
    {"{\"flush_interval_ms\": 10}", NULL},
    {"{\"flush_interval_ms\": 600000, \"snapshot_interval_ms\": 600000}", NULL},
    {"{\"max_message_bytes\": 256}", NULL},
    {"{\"max_message_bytes\": 16777216}", NULL},
    {"{\"late_policy\": \"dlq\", \"log\": {\"level\": \"warn\"}}", NULL},
    {"{\"groupings\": [[], [\"content\"], [\"campaign\", \"channel\"]]}", NULL},
    {"{\"windows\": [\"15m\", \"2h\", \"120s\", \"1d\"]}", NULL},
    {"{\"windows\": [\"${FD_TEST_WINDOW}\"]}", NULL},
    {"{\"kafka\": {\"group\": \"${FD_TEST_GROUP}-x\"}}", NULL},
    {"{\"kafka\": {\"topics\": {\"all.events\": \"mixed\"}}}", NULL},
    {"{\"kafka\": {\"properties\": {\"session.timeout.ms\": 45000, \"enable.partition.eof\": "
     "false, \"client.id\": \"x\"}}}",
     NULL},
    {"{\"redis\": {\"url\": \"unix:///run/redis.sock\"}}", NULL},
    {"{\"redis\": {\"url\": \"redis://:${FD_TEST_PW}@10.0.0.7:6380/2\"}}", NULL},
    {"{\"time_zone\": \"UTC\"}", NULL},
    {"{\"http\": {\"listen\": \"\"}}", NULL},
    {"{\"dedup_ttl_s\": 173100}", NULL}, /* exactly ttl.m1_s + max_future_s */
    {"{\"ttl\": {\"m1_s\": 86400, \"h1_s\": 90000, \"d1_s\": 90000}, \"dedup_ttl_s\": 86700}", NULL},
    /* the 24h window's uniques of a grouping without m1 HLLs read h1 HLLs up
     * to 25 h old */
    {"{\"ttl\": {\"m1_s\": 86400, \"h1_s\": 86400, \"d1_s\": 86400}, \"dedup_ttl_s\": 86700}",
     "ttl.h1_s (86400) must be >= the largest window + 1 h (90000 s)"},
    /* unknown keys */
    {"{\"kafka\": {\"brokerz\": \"x\"}}", "unknown key \"kafka.brokerz\""},
    {"{\"flush_intervall_ms\": 5}", "unknown key \"flush_intervall_ms\""},
    {"{\"ttl\": {\"m1_s\": 172800, \"m5_s\": 1}}", "unknown key \"ttl.m5_s\""},
    {"{\"log\": {\"level\": \"info\", \"format\": \"json\"}}", "unknown key \"log.format\""},
    {"{\"redis.url\": \"redis://h\"}", "unknown key \"redis.url\""},
    {"{\"kafka\": {\"group\": \"a\", \"group\": \"b\"}}", "duplicate key \"kafka.group\""},
    /* wrong types */
    {"{\"kafka\": \"k:9092\"}", "kafka: must be an object"},
    {"{\"kafka\": {\"group\": 5}}", "kafka.group: must be a string, got 5"},
    {"{\"flush_interval_ms\": \"fast\"}",
     "flush_interval_ms: must be an integer in 10..600000, got \"fast\""},
    {"{\"flush_interval_ms\": 1000.5}", "flush_interval_ms: must be an integer"},
    {"{\"flush_interval_ms\": true}", "flush_interval_ms: must be an integer"},
    {"{\"flush_interval_ms\": null}", "flush_interval_ms: must be an integer"},
    /* bounds */
    {"{\"flush_interval_ms\": 9}", "flush_interval_ms: must be an integer in 10..600000, got 9"},
    {"{\"flush_interval_ms\": 600001}", "flush_interval_ms: must be an integer in 10..600000"},
    {"{\"max_message_bytes\": 255}", "max_message_bytes: must be an integer in"},
    {"{\"cardinality_cap\": 0}", "cardinality_cap: must be an integer in"},
    {"{\"action_cap\": 0}", "action_cap: must be an integer in"},
    {"{\"action_cap\": 1001}", "action_cap: must be an integer in"},
    {"{\"coupons\": {\"cap\": 0}}", "coupons.cap: must be an integer in 1..1000"},
    {"{\"coupons\": {\"cap\": \"many\"}}", "coupons.cap"},
    {"{\"leaderboards\": {\"size\": 0}}", "leaderboards.size: must be an integer in"},
    {"{\"leaderboards\": {\"min_potential_users\": -1}}",
     "leaderboards.min_potential_users: must be an integer in"},
    {"{\"kafka\": {\"group\": \"\"}}", "kafka.group: must not be empty"},
    /* enums */
    {"{\"late_policy\": \"drop\"}", "late_policy: must be one of count, dlq, got \"drop\""},
    {"{\"log\": {\"level\": \"verbose\"}}", "log.level: must be one of debug, info, warn, error"},
    /* groupings */
    {"{\"groupings\": [[\"product\", \"channal\"]]}",
     "groupings[0]: unknown dimension \"channal\""},
    {"{\"groupings\": [" G17 "]}", "groupings: at most 16 groupings"},
    {"{\"groupings\": []}", "groupings: at least one grouping"},
    {"{\"groupings\": [[\"product\", \"product\"]]}", "dimension \"product\" appears twice"},
    {"{\"groupings\": [[\"product\", \"channel\"], [\"channel\", \"product\"]]}",
     "groupings[1]: same dimensions as groupings[0]"},
    {"{\"groupings\": [[\"product\", 3]]}", "groupings[0]: a dimension must be one of"},
    {"{\"groupings\": [\"product\"]}", "groupings[0]: must be an array"},
    /* windows */
    {"{\"windows\": [\"5x\"]}", "windows[0]: \"5x\" is not a duration"},
    {"{\"windows\": [\"0m\"]}", "windows[0]: \"0m\" must be positive"},
    {"{\"windows\": [\"\"]}", "windows[0]: \"\" is not a duration"},
    {"{\"windows\": [\"5m\", \"m5\"]}", "windows[1]: \"m5\" is not a duration"},
    {"{\"windows\": [\"90s\"]}", "windows[0]: \"90s\" is not a whole number of minutes"},
    {"{\"windows\": [\"1h\", \"60m\"]}", "windows[1]: \"60m\" is the same window as windows[0]"},
    {"{\"windows\": []}", "windows: must have 1..8 windows"},
    {"{\"windows\": \"5m\"}", "windows: must be an array"},
    {"{\"windows\": [5]}", "windows[0]: must be a duration string"},
    /* ${ENV} */
    {"{\"redis\": {\"url\": \"redis://:${FD_TEST_UNDEFINED_VAR}@h:1\"}}",
     "redis.url: environment variable FD_TEST_UNDEFINED_VAR is not set"},
    {"{\"kafka\": {\"properties\": {\"sasl.password\": \"${FD_TEST_UNDEFINED_VAR}\"}}}",
     "kafka.properties[\"sasl.password\"]: environment variable FD_TEST_UNDEFINED_VAR"},
    {"{\"kafka\": {\"group\": \"${bad\"}}", "kafka.group: bad ${...} reference"},
    {"{\"kafka\": {\"group\": \"${}\"}}", "kafka.group: bad ${...} reference"},
    /* topics and properties */
    {"{\"kafka\": {\"topics\": {}}}", "kafka.topics: at least one topic is required"},
    {"{\"kafka\": {\"topics\": {\"a\": \"exposure\", \"b\": \"click\"}}}",
     "kafka.topics[\"b\"]: must be one of exposure, interaction, payment, mixed, got \"click\""},
    {"{\"kafka\": {\"topics\": {\"bad topic\": \"mixed\"}}}", "is not a valid topic name"},
    {"{\"kafka\": {\"properties\": {\"x\": [1]}}}", "kafka.properties[\"x\"]: must be a string"},
    /* redis.url (checked in finalize) */
    {"{\"redis\": {\"url\": \"http://h:6379\"}}", "redis.url: must start with redis:// or unix://"},
    {"{\"redis\": {\"url\": \"redis://h:99999\"}}", "redis.url: the port must be 1..65535"},
    /* cross-field rules */
    {"{\"kafka\": {\"topics\": {\"funnel.dlq\": \"mixed\"}}}",
     "kafka.dlq_topic: \"funnel.dlq\" is also an input topic"},
    {"{\"kafka\": {\"topics\": {\"a\": \"exposure\"}, \"dlq_topic\": \"a\"}}",
     "kafka.dlq_topic: \"a\" is also an input topic"},
    {"{\"kafka\": {\"properties\": {\"group.id\": \"g\"}}}", "set group.id with kafka.group"},
    {"{\"kafka\": {\"properties\": {\"bootstrap.servers\": \"h:1\"}}}",
     "set bootstrap.servers with kafka.brokers"},
    {"{\"snapshot_interval_ms\": 500}",
     "snapshot_interval_ms (500) must be >= flush_interval_ms (1000)"},
    {"{\"ttl\": {\"m1_s\": 3600}}", "ttl.m1_s (3600) must be >= the largest window (24h"},
    {"{\"windows\": [\"5m\"], \"ttl\": {\"m1_s\": 240}}", "ttl.m1_s (240) must be >= the largest"},
    {"{\"ttl\": {\"m1_s\": 86400, \"h1_s\": 3600}}", "ttl.h1_s (3600) must be >= ttl.m1_s (86400)"},
    {"{\"ttl\": {\"d1_s\": 86400}}", "ttl.d1_s (86400) must be >= ttl.h1_s (3024000)"},
    {"{\"dedup_ttl_s\": 172800}", "dedup_ttl_s (172800) must be >= ttl.m1_s + max_future_s"},
    {"{\"time_zone\": \"Mars/Olympus\"}", "time_zone: unknown time zone \"Mars/Olympus\""},
    {"{\"time_zone\": \"../../etc/passwd\"}", "time_zone: unknown time zone"},
    {"{\"http\": {\"listen\": \"9464\"}}", "http.listen: must be host:port"},
    /* kafka.dlq_topic is a topic name like kafka.topics' (the dead-letter
     * producer writes there) */
    {"{\"kafka\": {\"dlq_topic\": \"dead.letters_v2-x\"}}", NULL},
    {"{\"kafka\": {\"dlq_topic\": \"bad topic!\"}}",
     "kafka.dlq_topic: \"bad topic!\" is not a valid topic name"},
    {"{\"kafka\": {\"dlq_topic\": \"..\"}}", "kafka.dlq_topic: \"..\" is not a valid topic name"},
    {"{\"kafka\": {\"dlq_topic\": \"a/b\"}}", "kafka.dlq_topic: \"a/b\" is not a valid topic name"},
    {"{\"kafka\": {\"dlq_topic\": \"d\u00e9ad\"}}", "kafka.dlq_topic: "},
    /* kafka.properties: librdkafka judges every name and value */
    {"{\"kafka\": {\"properties\": {\"no.such.prop\": \"1\"}}}",
     "kafka.properties.no.such.prop: "},
    {"{\"kafka\": {\"properties\": {\"session.timeout.ms\": \"abc\"}}}",
     "kafka.properties.session.timeout.ms: "},
    {"{\"kafka\": {\"properties\": {\"session.timeout.ms\": 0}}}",
     "kafka.properties.session.timeout.ms: "},
    {"{\"kafka\": {\"properties\": {\"linger.ms\": 5, \"auto.offset.reset\": \"sideways\"}}}",
     "kafka.properties.auto.offset.reset: "},
    {"{\"kafka\": {\"properties\": {\"auto.offset.reset\": \"earliest\", \"acks\": \"all\", "
     "\"sasl.password\": \"x\", \"ssl.key.password\": \"y\"}}}",
     NULL},
    /* http.listen: what the HTTP server can bind (IPv4 literal or localhost) */
    {"{\"http\": {\"listen\": \"0.0.0.0:9464\"}}", NULL},
    {"{\"http\": {\"listen\": \"localhost:65535\"}}", NULL},
    {"{\"http\": {\"listen\": \"10.1.2.3:1\"}}", NULL},
    {"{\"http\": {\"listen\": \"example.com:9464\"}}",
     "http.listen: the host must be an IPv4 address or localhost"},
    {"{\"http\": {\"listen\": \"[::1]:9464\"}}",
     "http.listen: the host must be an IPv4 address or localhost"},
    {"{\"http\": {\"listen\": \"::1:9464\"}}", "http.listen: the host must be"},
    {"{\"http\": {\"listen\": \"1.2.3:9464\"}}", "http.listen: the host must be"},
    {"{\"http\": {\"listen\": \"0x7f.0.0.1:9464\"}}", "http.listen: the host must be"},
    {"{\"http\": {\"listen\": \"127.0.0.1 :9464\"}}", "http.listen: the host must be"},
    {"{\"http\": {\"listen\": \":9464\"}}", "http.listen: must be host:port"},
    {"{\"http\": {\"listen\": \"127.0.0.1:0\"}}", "http.listen: the port must be 1..65535"},
    {"{\"http\": {\"listen\": \"127.0.0.1:65536\"}}", "http.listen: the port must be 1..65535"},
    {"{\"http\": {\"listen\": \"127.0.0.1:\"}}", "http.listen: the port must be 1..65535"},
    {"{\"http\": {\"listen\": \"127.0.0.1:+80\"}}", "http.listen: the port must be 1..65535"},
    /* not a JSON object */
    {"[1, 2]", "the top level must be a JSON object"},
    {"{\n  \"flush_interval_ms\": 1000,\n}", "invalid JSON at line 3"},
    {"{\"a\": 1} x", "invalid JSON"},
    {"", "invalid JSON"},
    /* alerts (rule members are covered by tests/unit/test_alert_rule.c) */
    {"{\"alerts\": {\"rules\": [{\"name\": \"d\", \"kind\": \"drop_vs_baseline\", \"metric\": "
     "\"conversion_rate\", \"grouping\": [\"product\"]}]}}",
     NULL},
    {"{\"alerts\": {\"webhook\": {\"url\": \"http://h/x\", \"secret\": \"${FD_TEST_PW}\"}}}", NULL},
    {"{\"alerts\": {\"stdout\": true, \"kafka\": {\"enabled\": true, \"topic\": \"al\"}}}", NULL},
    {"{\"alerts\": {\"bogus\": 1}}", "unknown key \"alerts.bogus\""},
    {"{\"alerts\": {\"webhook\": {\"url\": \"http://h\", \"sekret\": \"x\"}}}",
     "unknown key \"alerts.webhook.sekret\""},
    {"{\"alerts\": {\"rules\": [{\"name\": \"d\", \"kind\": \"absent\", \"metric\": "
     "\"payments\", \"oops\": 1}]}}",
     "alerts.rules[0]: unknown key \"oops\""},
    {"{\"alerts\": {\"rules\": {\"name\": \"d\"}}}", "alerts.rules: must be an array"},
    {"{\"alerts\": {\"stdout\": \"yes\"}}", "alerts.stdout: must be true or false"},
    {"{\"alerts\": {\"eval_interval_ms\": 50}}", "alerts.eval_interval_ms: must be an integer in"},
    {"{\"alerts\": {\"webhook\": {\"url\": \"http://h\"}}}", "alerts.webhook.secret: required"},
    {"{\"alerts\": {\"rules\": [{\"name\": \"d\", \"kind\": \"absent\", \"metric\": "
     "\"payments\", \"grouping\": [\"content\"]}]}}",
     "alerts.rules[0].grouping: not one of `groupings`"},
    {"{\"alerts\": {\"rules\": [{\"name\": \"d\", \"kind\": \"absent\", \"metric\": "
     "\"payments\"}, {\"name\": \"d\", \"kind\": \"absent\", \"metric\": \"exposures\"}]}}",
     "alerts.rules[1].name: \"d\" is also the name of alerts.rules[0]"},
    {"{\"ttl\": {\"m1_s\": 86400}, \"windows\": [\"5m\"], \"alerts\": {\"rules\": [{\"name\": "
     "\"d\", "
     "\"kind\": \"absent\", \"metric\": \"payments\", \"window\": \"2d\"}]}}",
     "alerts.rules[0]: window (+ baseline_offset) 172800 s must be <= ttl.m1_s"},
    {"{\"alerts\": {\"http\": {\"backoff_min_ms\": 5000, \"backoff_max_ms\": 1000}}}",
     "alerts.http.backoff_min_ms (5000) must be <= alerts.http.backoff_max_ms"},
    {"{\"alerts\": {\"kafka\": {\"topic\": \"funnel.dlq\"}}}",
     "alerts.kafka.topic: \"funnel.dlq\" is also an input or dead-letter topic"},
    /* marketing keys (conf/marketing.c) */
    {"{\"retention\": {\"days\": \" 1, 7 ,30,7 \", \"mode\": \"unbounded\", "
     "\"start_types\": \"exposure\", \"active_types\": \"interaction, payment\", "
     "\"groupings\": \"\"}}",
     NULL},
    {"{\"retention\": {\"days\": \"1,x\"}}", "retention.days: must be comma-separated integers"},
    {"{\"retention\": {\"days\": \"0\"}}", "retention.days: must be comma-separated integers"},
    {"{\"retention\": {\"days\": \"401\"}}", "retention.days: must be comma-separated integers"},
    {"{\"retention\": {\"days\": \",\"}}", "retention.days: must be comma-separated integers"},
    {"{\"retention\": {\"mode\": \"weekly\"}}", "retention.mode: must be one of"},
    {"{\"retention\": {\"start_types\": \"exposure,click\"}}",
     "retention.start_types: must list exposure, interaction and/or payment"},
    {"{\"retention\": {\"active_types\": \"refund\"}}",
     "retention.active_types: must list exposure, interaction and/or payment"},
    {"{\"retention\": {\"groupings\": \"channel,content\"}}",
     "retention.groupings: must list channel, community and/or campaign"},
    {"{\"funnel\": {\"window_s\": 2678400}, \"retention\": {\"horizon_s\": 2678400}}", NULL},
    {"{\"funnel\": {\"window_s\": 2678401}, \"retention\": {\"horizon_s\": 2678400}}",
     "funnel.window_s (2678401) must be <= retention.horizon_s (2678400)"},
    {"{\"retention\": {\"days\": \"1,30\", \"horizon_s\": 2678399}}",
     "retention.horizon_s (2678399) must be >= (largest retention.days + 1) days = 2678400 s"},
    {"{\"retention\": {\"days\": \"1,30\", \"horizon_s\": 2678400}}", NULL},
    {"{\"marketing\": {\"enabled\": true}}", NULL}, /* flush_max_events defaults to 2000 */
    {"{\"marketing\": {\"enabled\": true}, \"flush_max_events\": 20000}",
     "flush_max_events (20000) must be <= 5000 with marketing.enabled"},
    {"{\"marketing\": {\"enabled\": true}, \"flush_max_events\": 5001}",
     "flush_max_events (5001) must be <= 5000 with marketing.enabled"},
    {"{\"marketing\": {\"enabled\": true, \"user_cap\": 3}, \"flush_max_events\": 5000}",
     "marketing.user_cap"},
    {"{\"marketing\": {\"enabled\": true}, \"flush_max_events\": 5000}", NULL},
};

static void test_rows(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fd_conf_t c;
        char err[512];
        int rc = load_text(&c, rows[i].text, err, sizeof err);
        if (rows[i].err == NULL && rc != 0) {
            print_error("row %zu: %s\n  expected ok, got: %s\n", i, rows[i].text, err);
            failures++;
        } else if (rows[i].err != NULL && (rc == 0 || strstr(err, rows[i].err) == NULL)) {
            print_error("row %zu: %s\n  expected error containing: %s\n  got rc %d: %s\n", i,
                        rows[i].text, rows[i].err, rc, err);
            failures++;
        }
        fd_conf_release(&c);
    }
    assert_true(sizeof rows / sizeof rows[0] >= 30);
    assert_int_equal(failures, 0);
}

static void test_file_errors_name_path(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    char *path = write_temp("{\"kafka\": {\"brokerz\": \"x\"}}");
    fd_conf_defaults(&c);
    assert_int_equal(fd_conf_load_file(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "unknown key \"kafka.brokerz\""));
    unlink(path);
    free(path);

    path = write_temp("{\n\"a\": [1,\n  2,, 3]}");
    assert_int_equal(fd_conf_load_file(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 3"));
    unlink(path);
    free(path);

    assert_int_equal(fd_conf_load_file(&c, "/nonexistent/funneld.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/funneld.json"));
    fd_conf_release(&c);
}

/* Values land in the right fields, env expanded, the rest stay defaults. */
static void test_loaded_values(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    const char *text =
        "{\"kafka\": {\"group\": \"${FD_TEST_GROUP}-x\", \"dlq_topic\": \"dead.x\",\n"
        "  \"topics\": {\"all.events\": \"mixed\", \"pay\": \"payment\"},\n"
        "  \"properties\": {\"session.timeout.ms\": 45000, \"enable.partition.eof\": false,\n"
        "                 \"sasl.password\": \"${FD_TEST_PW}\"}},\n"
        " \"windows\": [\"15m\", \"2h\", \"120s\", \"1d\"],\n"
        " \"groupings\": [[], [\"campaign\", \"channel\"]],\n"
        " \"late_policy\": \"dlq\", \"log\": {\"level\": \"warn\"},\n"
        " \"redis\": {\"url\": \"redis://u:${FD_TEST_PW}@h:7000/3\", \"prefix\": \"$${lit}\"},\n"
        " \"flush_interval_ms\": 250}";
    char *path = write_temp(text);
    fd_conf_defaults(&c);
    assert_int_equal(fd_conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    free(path);
    assert_string_equal(c.group, "grp-x");
    assert_string_equal(c.dlq_topic, "dead.x");
    assert_string_equal(c.prefix, "${lit}");
    assert_int_equal(c.ntopics, 2);
    assert_string_equal(c.topics[0].name, "all.events");
    assert_int_equal(c.topics[0].type, FD_TYPE_NONE);
    assert_string_equal(c.topics[1].name, "pay");
    assert_int_equal(c.topics[1].type, FD_TYPE_PAYMENT);
    assert_int_equal(c.nkprops, 3);
    assert_string_equal(c.kprops[0].key, "session.timeout.ms");
    assert_string_equal(c.kprops[0].value, "45000");
    assert_string_equal(c.kprops[1].value, "false");
    assert_string_equal(c.kprops[2].value, "env-Pa55word");
    assert_int_equal(c.nwindows, 4);
    assert_int_equal(c.windows_s[0], 900);
    assert_int_equal(c.windows_s[1], 7200);
    assert_int_equal(c.windows_s[2], 120);
    assert_int_equal(c.windows_s[3], 86400);
    assert_int_equal(c.ngroupings, 2);
    assert_int_equal(c.groupings[0].ndims, 0);
    assert_int_equal(c.groupings[1].ndims, 2);
    assert_int_equal(c.groupings[1].dims[0], FD_DIM_CAMPAIGN);
    assert_int_equal(c.groupings[1].dims[1], FD_DIM_CHANNEL);
    assert_int_equal(c.late_policy, FD_LATE_DLQ);
    assert_string_equal(c.log_level, "warn");
    assert_string_equal(c.redis_url, "redis://u:env-Pa55word@h:7000/3");
    assert_int_equal(c.flush_interval_ms, 250);
    assert_int_equal(c.snapshot_interval_ms, 5000); /* untouched: default */
    assert_string_equal(c.brokers, "127.0.0.1:9092");
    assert_int_equal(fd_conf_finalize(&c, err, sizeof err), 0);
    fd_conf_release(&c);
}

/* ---- fd_conf_set (flags) ------------------------------------------------ */

typedef struct {
    const char *key, *value, *err;
} set_row_t;

static const set_row_t set_rows[] = {
    {"redis.url", "redis://h:1", NULL},
    {"kafka.brokers", "b1:9092", NULL},
    {"kafka.group", "g2", NULL},
    {"redis.prefix", "fx", NULL},
    {"kafka.brokerz", "x", "unknown key \"kafka.brokerz\""},
    {"flush_interval_ms", "fast", "flush_interval_ms: must be an integer in 10..600000, got \"fast\""},
    {"flush_interval_ms", "100 ", "flush_interval_ms: must be an integer"},
    {"flush_interval_ms", "+100", "flush_interval_ms: must be an integer"},
    {"flush_interval_ms", "0x10", "flush_interval_ms: must be an integer"},
    {"flush_interval_ms", "", "flush_interval_ms: must be an integer"},
    {"flush_interval_ms", "99999999999999999999", "flush_interval_ms: must be an integer"},
    {"flush_interval_ms", "600000", NULL},
    {"lateness_s", "0", NULL},
    {"lateness_s", "-1", "lateness_s: must be an integer in 0..86400"},
    {"late_policy", "dlq", NULL},
    {"late_policy", "DLQ", "late_policy: must be one of count, dlq"},
    {"windows", "[\"10m\"]", NULL},
    {"windows", "10m", "windows: must be JSON"},
    {"groupings", "[[\"nope\"]]", "groupings[0]: unknown dimension \"nope\""},
    {"kafka.group", "", "kafka.group: must not be empty"},
    {"http.listen", "", NULL},
};

static void test_set_rows(void **state) {
    (void)state;
    fd_conf_t c;
    fd_conf_defaults(&c);
    int failures = 0;
    for (size_t i = 0; i < sizeof set_rows / sizeof set_rows[0]; i++) {
        char err[512] = "";
        int rc = fd_conf_set(&c, set_rows[i].key, set_rows[i].value, err, sizeof err);
        if (set_rows[i].err == NULL ? rc != 0 : rc == 0 || strstr(err, set_rows[i].err) == NULL) {
            print_error("set row %zu: %s=%s: rc %d: %s\n", i, set_rows[i].key, set_rows[i].value,
                        rc, err);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    assert_string_equal(c.redis_url, "redis://h:1");
    assert_string_equal(c.brokers, "b1:9092");
    assert_string_equal(c.group, "g2");
    assert_string_equal(c.prefix, "fx");
    assert_int_equal(c.flush_interval_ms, 600000);
    assert_int_equal(c.late_policy, FD_LATE_DLQ);
    assert_int_equal(c.nwindows, 1);
    assert_int_equal(c.windows_s[0], 600);
    assert_string_equal(c.http_listen, "");
    /* a failed compound set keeps the previous value */
    assert_int_equal(c.ngroupings, 5);
    fd_conf_release(&c);
}

static void test_add_kprop(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    fd_conf_defaults(&c);
    assert_int_equal(fd_conf_add_kprop(&c, "noequals", err, sizeof err), -1);
    assert_non_null(strstr(err, "name=value"));
    assert_int_equal(fd_conf_add_kprop(&c, "=v", err, sizeof err), -1);
    assert_int_equal(fd_conf_add_kprop(&c, "client.id=a", err, sizeof err), 0);
    assert_int_equal(fd_conf_add_kprop(&c, "sasl.jaas.config=a=b", err, sizeof err), 0);
    assert_int_equal(fd_conf_add_kprop(&c, "client.id=b", err, sizeof err), 0);
    assert_int_equal(fd_conf_add_kprop(&c, "linger.ms=", err, sizeof err), 0);
    assert_int_equal(c.nkprops, 3);
    assert_string_equal(c.kprops[0].key, "client.id");
    assert_string_equal(c.kprops[0].value, "b");
    assert_string_equal(c.kprops[1].value, "a=b");
    assert_string_equal(c.kprops[2].value, "");
    fd_conf_release(&c);
}

/* ---- redis.url ---------------------------------------------------------- */

typedef struct {
    const char *url;
    const char *err; /* NULL: ok */
    const char *host;
    int port;
    const char *path, *user, *password;
    int db;
    const char *secret; /* must never appear in an error */
} url_row_t;

static const url_row_t url_rows[] = {
    {"redis://127.0.0.1:6379", NULL, "127.0.0.1", 6379, "", "", "", 0, NULL},
    {"redis://cache.internal", NULL, "cache.internal", 6379, "", "", "", 0, NULL},
    {"redis://cache.internal/", NULL, "cache.internal", 6379, "", "", "", 0, NULL},
    {"redis://:pa55@h:6380", NULL, "h", 6380, "", "", "pa55", 0, NULL},
    {"redis://alice:pa55@h:6380/2", NULL, "h", 6380, "", "alice", "pa55", 2, NULL},
    {"redis://alice:p%40ss%3Aw@h/1", NULL, "h", 6379, "", "alice", "p@ss:w", 1, NULL},
    {"redis://u:p@ss/word@h:1", NULL, "h", 1, "", "u", "p@ss/word", 0, NULL},
    {"redis://[::1]:7000", NULL, "::1", 7000, "", "", "", 0, NULL},
    {"unix:///var/run/redis.sock", NULL, "", 0, "/var/run/redis.sock", "", "", 0, NULL},
    {"redis://h:0", "the port must be 1..65535", 0, 0, 0, 0, 0, 0, NULL},
    {"redis://h:65536", "the port must be 1..65535", 0, 0, 0, 0, 0, 0, NULL},
    {"redis://h:", "the port must be 1..65535", 0, 0, 0, 0, 0, 0, NULL},
    {"redis://h:abc", "the port must be 1..65535", 0, 0, 0, 0, 0, 0, NULL},
    {"redis://:topsecret1@:6379", "missing host", 0, 0, 0, 0, 0, 0, "topsecret1"},
    {"redis://:topsecret2@h:6379/x", "database", 0, 0, 0, 0, 0, 0, "topsecret2"},
    {"redis://:bad%zztopsecret3@h", "bad password", 0, 0, 0, 0, 0, 0, "topsecret3"},
    {"redis://:topsecret4@h:6379?db=1", "query", 0, 0, 0, 0, 0, 0, "topsecret4"},
    {"rediss://h:6379", "TLS", 0, 0, 0, 0, 0, 0, NULL},
    {"http://:topsecret5@h", "must start with redis:// or unix://", 0, 0, 0, 0, 0, 0, "topsecret5"},
    {"unix://relative.sock", "absolute socket path", 0, 0, 0, 0, 0, 0, NULL},
    {"", "must not be empty", 0, 0, 0, 0, 0, 0, NULL},
};

static void test_redis_url(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof url_rows / sizeof url_rows[0]; i++) {
        const url_row_t *r = &url_rows[i];
        fd_redis_addr_t a;
        char err[512] = "";
        int rc = fd_redis_url_parse(r->url, &a, err, sizeof err);
        if (r->err == NULL) {
            if (rc != 0 || strcmp(a.host, r->host) != 0 || a.port != r->port ||
                strcmp(a.path, r->path) != 0 || strcmp(a.user, r->user) != 0 ||
                strcmp(a.password, r->password) != 0 || a.db != r->db) {
                print_error("url row %zu %s: rc %d host=%s port=%d path=%s user=%s db=%d: %s\n", i,
                            r->url, rc, a.host, a.port, a.path, a.user, a.db, err);
                failures++;
            }
        } else if (rc == 0 || strstr(err, r->err) == NULL || strstr(err, "redis.url") == NULL ||
                   (r->secret != NULL && strstr(err, r->secret) != NULL)) {
            print_error("url row %zu %s: want error \"%s\", got rc %d: %s\n", i, r->url, r->err, rc,
                        err);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- secrets and printing ----------------------------------------------- */

static void test_is_secret(void **state) {
    (void)state;
    assert_true(fd_conf_is_secret("sasl.password"));
    assert_true(fd_conf_is_secret("ssl.key.password"));
    assert_true(fd_conf_is_secret("SASL.PASSWORD"));
    assert_true(fd_conf_is_secret("sasl.oauthbearer.client.secret"));
    assert_true(fd_conf_is_secret("sasl.oauthbearer.config"));
    assert_true(fd_conf_is_secret("ssl.key.pem"));
    assert_false(fd_conf_is_secret("ssl.certificate.pem"));
    assert_false(fd_conf_is_secret("sasl.username"));
    assert_false(fd_conf_is_secret("client.id"));
    assert_false(fd_conf_is_secret("bootstrap.servers"));
}

static void test_print_masks_secrets(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    assert_int_equal(load_text(&c,
                               "{\"redis\": {\"url\": \"redis://admin:${FD_TEST_PW}@h:6380/1\"},"
                               " \"kafka\": {\"properties\": {\"ssl.key.pem\": \"PEMBODYxyz\","
                               " \"client.id\": \"visible-client\"}}}",
                               err, sizeof err),
                     0);
    assert_int_equal(fd_conf_add_kprop(&c, "sasl.password=S3cretKafka", err, sizeof err), 0);
    char *out = print_conf(&c);
    assert_null(strstr(out, "env-Pa55word"));
    assert_null(strstr(out, "S3cretKafka"));
    assert_null(strstr(out, "PEMBODYxyz"));
    assert_non_null(strstr(out, "visible-client"));

    cJSON *root = cJSON_Parse(out);
    assert_non_null(root);
    const cJSON *url =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "redis"), "url");
    assert_true(cJSON_IsString(url));
    assert_string_equal(url->valuestring, "redis://admin:***@h:6380/1");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "kafka"), "properties");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(props, "sasl.password")->valuestring,
                        "***");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(props, "ssl.key.pem")->valuestring, "***");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(props, "client.id")->valuestring,
                        "visible-client");
    cJSON_Delete(root);
    free(out);
    fd_conf_release(&c);
}

/* check-config output is itself a valid config that loads back to the same. */
/* the webhook secret is a secret (masked, ${ENV} expanded). */
static void test_alert_secret_masked(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    assert_int_equal(load_text(&c,
                               "{\"alerts\": {\"webhook\": {\"url\": \"http://h/hook\", "
                               "\"secret\": \"${FD_TEST_PW}\"}}}",
                               err, sizeof err),
                     0);
    assert_string_equal(c.alert_webhook_secret, "env-Pa55word");
    char *out = print_conf(&c);
    assert_null(strstr(out, "env-Pa55word"));
    cJSON *root = cJSON_Parse(out);
    const cJSON *wh = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "alerts"), "webhook");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(wh, "secret")->valuestring, "***");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(wh, "url")->valuestring, "http://h/hook");
    cJSON_Delete(root);
    free(out);
    fd_conf_release(&c);
}

static void test_print_roundtrip(void **state) {
    (void)state;
    fd_conf_t a, b;
    char err[512];
    assert_int_equal(load_text(&a,
                               "{\"kafka\": {\"topics\": {\"t1\": \"mixed\", \"t2\": "
                               "\"interaction\"}, \"properties\": {\"linger.ms\": \"5\"}},"
                               " \"windows\": [\"10m\", \"2h\", \"2d\"], \"late_policy\": \"dlq\","
                               " \"groupings\": [[\"content\"], []], \"lateness_s\": 0}",
                               err, sizeof err),
                     0);
    char *out1 = print_conf(&a);
    assert_int_equal(load_text(&b, out1, err, sizeof err), 0);
    char *out2 = print_conf(&b);
    assert_string_equal(out1, out2);
    assert_int_equal(b.windows_s[2], 2 * 86400);
    assert_int_equal(b.groupings[0].dims[0], FD_DIM_CONTENT);
    assert_int_equal(b.lateness_s, 0);
    free(out1);
    free(out2);
    fd_conf_release(&a);
    fd_conf_release(&b);
}

static void test_window_name(void **state) {
    (void)state;
    char buf[32];
    assert_int_equal(fd_duration_format(300, buf, sizeof buf), 2);
    assert_string_equal(buf, "5m");
    fd_duration_format(3600, buf, sizeof buf);
    assert_string_equal(buf, "1h");
    fd_duration_format(86400, buf, sizeof buf);
    assert_string_equal(buf, "24h");
    fd_duration_format(5400, buf, sizeof buf);
    assert_string_equal(buf, "90m");
    fd_duration_format(2 * 86400, buf, sizeof buf);
    assert_string_equal(buf, "2d");
    fd_duration_format(36 * 3600, buf, sizeof buf);
    assert_string_equal(buf, "36h");
    fd_duration_format(90, buf, sizeof buf);
    assert_string_equal(buf, "90s");
}

/* ---- files in the repository --------------------------------------------- */

static void test_doc_matches_file(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/CONFIG.md", source_dir());
    char *want = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&want, &n);
    assert_non_null(f);
    fd_conf_print_doc(f);
    fclose(f);
    char *have = read_all(path);
    if (have == NULL) fail_msg("%s is missing: regenerate it from fd_conf_print_doc()", path);
    if (strcmp(have, want) != 0)
        fail_msg("%s differs from fd_conf_print_doc(): regenerate it", path);
    free(have);
    free(want);
}

static void test_example_is_defaults(void **state) {
    (void)state;
    char path[4096];
    char err[512];
    fd_conf_t d, e;
    snprintf(path, sizeof path, "%s/deploy/funneld.example.json", source_dir());
    fd_conf_defaults(&d);
    fd_conf_defaults(&e);
    if (fd_conf_load_file(&e, path, err, sizeof err) != 0) fail_msg("%s", err);
    /* the one deliberate difference: the example enables one alert rule (the
     * quick start's, docs/ALERTS.md); every other key keeps its default */
    assert_int_equal(e.nalert_rules, 1);
    assert_string_equal(e.alert_rules[0].name, "ConversionDrop");
    int nrules = e.nalert_rules;
    e.nalert_rules = 0;
    char *pd = print_conf(&d), *pe = print_conf(&e);
    e.nalert_rules = nrules;
    assert_string_equal(pd, pe);
    /* and it is complete: every key of the printed defaults is in the file */
    char *text = read_all(path);
    assert_non_null(text);
    cJSON *ex = cJSON_Parse(text), *df = cJSON_Parse(pd);
    assert_non_null(ex);
    assert_non_null(df);
    const cJSON *m;
    cJSON_ArrayForEach (m, df) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(ex, m->string);
        if (x == NULL) fail_msg("example lacks \"%s\"", m->string);
        if (cJSON_IsObject(m) && cJSON_GetArraySize(x) != cJSON_GetArraySize(m))
            fail_msg("example \"%s\" lacks keys", m->string);
    }
    cJSON_Delete(ex);
    cJSON_Delete(df);
    free(text);
    free(pd);
    free(pe);
    fd_conf_release(&d);
    fd_conf_release(&e);
}

/* flush_max_events's default depends on marketing.enabled; a value given
 * (file or --set) is kept as it is, and checked. */
static void test_marketing_flush_default(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    assert_int_equal(load_text(&c, "{\"marketing\": {\"enabled\": true}}", err, sizeof err), 0);
    assert_int_equal(c.flush_max_events, FD_MKT_DEFAULT_FLUSH_EVENTS);
    assert_int_equal(FD_MKT_DEFAULT_FLUSH_EVENTS, 2000);
    assert_false(fd_conf_given(&c, "flush_max_events"));
    assert_true(fd_conf_given(&c, "marketing.enabled"));
    fd_conf_release(&c);
    assert_int_equal(load_text(&c, "{\"marketing\": {\"enabled\": false}}", err, sizeof err), 0);
    assert_int_equal(c.flush_max_events, 20000);
    fd_conf_release(&c);
    assert_int_equal(load_text(&c, "{\"marketing\": {\"enabled\": true}, \"flush_max_events\": 3000}",
                               err, sizeof err),
                     0);
    assert_int_equal(c.flush_max_events, 3000);
    assert_true(fd_conf_given(&c, "flush_max_events"));
    fd_conf_release(&c);
    /* --set goes through fd_conf_set: given, so checked, not replaced */
    fd_conf_defaults(&c);
    assert_false(fd_conf_given(&c, "flush_max_events"));
    assert_int_equal(fd_conf_set(&c, "marketing.enabled", "true", err, sizeof err), 0);
    assert_int_equal(fd_conf_set(&c, "flush_max_events", "20000", err, sizeof err), 0);
    assert_int_not_equal(fd_conf_finalize(&c, err, sizeof err), 0);
    assert_non_null(strstr(err, "flush_max_events (20000) must be <= 5000"));
    fd_conf_release(&c);
    /* a failed set does not count as given */
    fd_conf_defaults(&c);
    assert_int_not_equal(fd_conf_set(&c, "flush_max_events", "7", err, sizeof err), 0);
    assert_false(fd_conf_given(&c, "flush_max_events"));
    assert_false(fd_conf_given(&c, "no.such.key"));
    fd_conf_release(&c);
}

/* A table of configurations that load (ok) or are refused with an error
 * naming both keys. */
typedef struct {
    const char *text;
    int ok;
} pair_case_t;

static void check_pair_cases(const pair_case_t *cases, size_t n, const char *key_a,
                             const char *key_b) {
    fd_conf_t c;
    char err[512];
    for (size_t i = 0; i < n; i++) {
        int rc = load_text(&c, cases[i].text, err, sizeof err);
        if (cases[i].ok) {
            if (rc != 0) fail_msg("%s: %s", cases[i].text, err);
        } else {
            if (rc == 0) fail_msg("%s: accepted", cases[i].text);
            if (!strstr(err, key_a) || !strstr(err, key_b)) fail_msg("%s: %s", cases[i].text, err);
        }
        fd_conf_release(&c);
    }
}

/* Event streams must leave 16 connections to the operations endpoints and
 * the API; the error names the key. */
static void test_http_headroom(void **state) {
    (void)state;
    static const pair_case_t cases[] = {
        {"{}", 1}, /* the defaults: 1000 streams of 1024 connections */
        {"{\"http\": {\"sse_max_clients\": 1008}}", 1},
        {"{\"http\": {\"sse_max_clients\": 1009}}", 0},
        {"{\"http\": {\"sse_max_clients\": 1024}}", 0},
        {"{\"http\": {\"sse_max_clients\": 5000}}", 0},
        {"{\"http\": {\"max_connections\": 16}}", 0},
        {"{\"http\": {\"max_connections\": 17, \"sse_max_clients\": 1}}", 1},
        {"{\"http\": {\"max_connections\": 4096, \"sse_max_clients\": 4080}}", 1},
        {"{\"http\": {\"max_connections\": 4096, \"sse_max_clients\": 4081}}", 0},
    };
    check_pair_cases(cases, sizeof cases / sizeof cases[0], "http.sse_max_clients",
                     "http.max_connections");
}

/* A hold of the input lasts up to redis.timeout_ms without polling Kafka:
 * it must stay within half of max.poll.interval.ms; the error names both. */
static void test_poll_headroom(void **state) {
    (void)state;
    static const pair_case_t cases[] = {
        {"{}", 1},
        {"{\"redis\": {\"timeout_ms\": 150000}}", 1},
        {"{\"redis\": {\"timeout_ms\": 150001}}", 0},
        {"{\"redis\": {\"timeout_ms\": 600000}}", 0},
        {"{\"redis\": {\"timeout_ms\": 600000}, \"kafka\": {\"properties\": "
         "{\"max.poll.interval.ms\": \"1200000\"}}}",
         1},
        {"{\"kafka\": {\"properties\": {\"max.poll.interval.ms\": \"9999\"}}}", 0},
        {"{\"kafka\": {\"properties\": {\"max.poll.interval.ms\": \"10000\"}}}", 1},
    };
    check_pair_cases(cases, sizeof cases / sizeof cases[0], "redis.timeout_ms",
                     "max.poll.interval.ms");
    fd_conf_t c;
    char err[512];
    assert_int_not_equal(load_text(&c,
                                   "{\"kafka\": {\"properties\": {\"max.poll.interval.ms\": "
                                   "\"soon\"}}}",
                                   err, sizeof err),
                         0);
    assert_non_null(strstr(err, "max.poll.interval.ms"));
    fd_conf_release(&c);
}

/* A grouping left out of hll_m1_groupings reads its uniques from h1 HLLs
 * over whole hours, up to an hour before the window: ttl.h1_s must cover
 * the largest window + 1 h then, and only then. */
static void test_h1_ttl_for_spans(void **state) {
    (void)state;
    static const pair_case_t cases[] = {
        {"{\"windows\": [\"5m\", \"48h\"], \"ttl\": {\"m1_s\": 172800, \"h1_s\": 172800}}", 0},
        {"{\"windows\": [\"5m\", \"48h\"], \"ttl\": {\"m1_s\": 172800, \"h1_s\": 176399}}", 0},
        {"{\"windows\": [\"5m\", \"48h\"], \"ttl\": {\"m1_s\": 172800, \"h1_s\": 176400}}", 1},
        {"{\"windows\": [\"5m\", \"48h\"], \"ttl\": {\"m1_s\": 172800, \"h1_s\": 172800}, "
         "\"hll_m1_groupings\": [[], [\"product\"], [\"product\", \"channel\"], "
         "[\"product\", \"community\"], [\"campaign\"]]}",
         1},
        {"{\"windows\": [\"5m\", \"48h\"], \"ttl\": {\"m1_s\": 172800, \"h1_s\": 172800}, "
         "\"groupings\": [[], [\"product\"]]}",
         1},
    };
    check_pair_cases(cases, sizeof cases / sizeof cases[0], "ttl.h1_s", "hll_m1_groupings");
}

static void test_marketing_parsed(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    assert_int_equal(load_text(&c,
                               "{\"retention\": {\"days\": \" 30, 1 ,7,1 \", \"mode\": "
                               "\"unbounded\", \"start_types\": \"payment\", \"groupings\": "
                               "\"campaign, channel\"}}",
                               err, sizeof err),
                     0);
    assert_int_equal(c.nret_days, 3); /* a repeated k is one k, order kept */
    assert_int_equal(c.ret_days[0], 30);
    assert_int_equal(c.ret_days[1], 1);
    assert_int_equal(c.ret_days[2], 7);
    assert_int_equal(c.ret_mode, 1);
    assert_int_equal(c.ret_start_mask, FD_MKT_PAYMENT);
    assert_int_equal(c.ret_active_mask, FD_MKT_EXPOSURE | FD_MKT_INTERACTION | FD_MKT_PAYMENT);
    assert_int_equal(c.nret_dims, 2);
    assert_string_equal(c.ret_dims[0], "campaign");
    assert_string_equal(c.ret_dims[1], "channel");
    assert_int_equal(c.mkt_enabled, 0);
    assert_int_equal(c.funnel_window_s, 604800);
    fd_conf_release(&c);
}

/* hll_m1_groupings: the default follows `groupings`, a listed grouping must
 * be configured, a rule on distinct users needs its grouping listed; which
 * scope ids get m1 HLLs (dimension order does not matter). */
static void test_hll_m1(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    static const struct {
        const char *text;
        int ok;
        const char *m1, *not_m1; /* scope ids, checked when ok */
    } cases[] = {
        {"{}", 1, "product=p%2C1", "product=p,channel=w"},
        {"{}", 1, "all", "campaign=c"},
        {"{\"groupings\": [[\"campaign\"], [\"product\", \"channel\"]]}", 1, NULL, "campaign=c"},
        {"{\"groupings\": [[], [\"campaign\"]]}", 1, "all", "campaign=c"},
        {"{\"hll_m1_groupings\": [[\"channel\", \"product\"]]}", 1, "product=p,channel=w",
         "product=p"},
        {"{\"hll_m1_groupings\": []}", 1, NULL, "all"},
        {"{\"hll_m1_groupings\": [[\"channel\"]]}", 0, NULL, NULL},
        {"{\"groupings\": [[]], \"hll_m1_groupings\": [[\"product\"]]}", 0, NULL, NULL},
        {"{\"hll_m1_groupings\": [[], []]}", 0, NULL, NULL},
        {"{\"alerts\": {\"rules\": [{\"name\": \"a\", \"kind\": \"below_threshold\", "
         "\"metric\": \"uv_paid\", \"grouping\": [\"campaign\"], \"window\": \"5m\", "
         "\"threshold\": 1}]}}",
         0, NULL, NULL},
        {"{\"alerts\": {\"rules\": [{\"name\": \"a\", \"kind\": \"below_threshold\", "
         "\"metric\": \"payments\", \"grouping\": [\"campaign\"], \"window\": \"5m\", "
         "\"threshold\": 1}]}}",
         1, "product=p", "campaign=c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = load_text(&c, cases[i].text, err, sizeof err);
        if (cases[i].ok) {
            if (rc != 0) fail_msg("%s: %s", cases[i].text, err);
            if (cases[i].m1 && !fd_conf_scope_hll_m1(&c, cases[i].m1))
                fail_msg("%s: %s has no m1 HLLs", cases[i].text, cases[i].m1);
            if (cases[i].not_m1 && fd_conf_scope_hll_m1(&c, cases[i].not_m1))
                fail_msg("%s: %s has m1 HLLs", cases[i].text, cases[i].not_m1);
        } else {
            if (rc == 0) fail_msg("%s: accepted", cases[i].text);
            if (!strstr(err, "hll_m1_groupings")) fail_msg("%s: %s", cases[i].text, err);
        }
        fd_conf_release(&c);
    }
    assert_int_equal(fd_conf_scope_hll_m1(&c, "bogus"), 0);
}

/* The alert URLs: empty (off), or an absolute http:// or https:// URL with
 * a host; an error names the key and never shows a credential of the URL. */
static void test_alert_urls(void **state) {
    (void)state;
    /* each key in a file of its own; the webhook needs its secret */
    static const char *const files[] = {
        "{\"alerts\": {\"alertmanager\": {\"url\": \"%s\"}}}",
        "{\"alerts\": {\"webhook\": {\"url\": \"%s\", \"secret\": \"s\"}}}",
        "{\"alerts\": {\"generator_url\": \"%s\"}}",
    };
    static const char *const names[] = {"alerts.alertmanager.url", "alerts.webhook.url",
                                        "alerts.generator_url"};
    static const struct {
        const char *url;
        int ok;
    } cases[] = {
        {"", 1},
        {"http://h", 1},
        {"http://am.example:9093", 1},
        {"https://hooks.example/in?key=k&team=ops", 1},
        {"HTTPS://H.EXAMPLE/", 1},
        {"http://admin:pw@am.example:9093/", 1},
        {"http://[::1]:9093/x", 1},
        {"http://10.0.0.1#frag", 1},
        {"not a url", 0},
        {"ftp://x", 0},
        {"ftp://files.example/x", 0},
        {"mailto:ops@example.com", 0},
        {"am.example:9093", 0},
        {"//am.example/x", 0},
        {"http:/am.example", 0},
        {"http://", 0},
        {"https:///path", 0},
        {"http://?q=1", 0},
        {"http://:9093/", 0},
        {"http://h:0", 0},
        {"http://h:65536", 0},
        {"http://h:/x", 0},
        {"http://h:80a", 0},
        {"http://h x/", 0},
        {"http://h/a b", 0},
        {"http://[::1/", 0},
        {"http://[]:80/", 0},
        {"http://[::1]x/", 0},
        {"http://u:Hunter2Pw@/x", 0},
        {"ftp://u:Hunter2Pw@h/x", 0},
        {"http://u:Hunter2Pw@h:99999/x?token=Tok3nVal", 0},
    };
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char text[512], err[512];
            fd_conf_t c;
            snprintf(text, sizeof text, files[k], cases[i].url);
            int rc = load_text(&c, text, err, sizeof err);
            if (cases[i].ok && rc != 0) fail_msg("%s: %s", text, err);
            if (!cases[i].ok) {
                if (rc == 0) fail_msg("%s: accepted", text);
                if (strncmp(err, names[k], strlen(names[k])) != 0)
                    fail_msg("%s: error does not name %s: %s", text, names[k], err);
                if (strstr(err, "Hunter2Pw") || strstr(err, "Tok3nVal"))
                    fail_msg("%s: error shows a credential: %s", text, err);
            }
            fd_conf_release(&c);
        }
}

/* kafka.properties and -X: librdkafka judges each property when the
 * configuration is finalized (check-config and run alike); the error names
 * kafka.properties.<name> and never shows a secret or a URL's credentials. */
static void test_kprops_checked(void **state) {
    (void)state;
    fd_conf_t c;
    char err[512];
    static const struct {
        const char *kv, *key; /* key: NULL when librdkafka accepts it */
    } cases[] = {
        {"no.such.prop=1", "kafka.properties.no.such.prop: "},
        {"session.timeout.ms=abc", "kafka.properties.session.timeout.ms: "},
        {"session.timeout.ms=0", "kafka.properties.session.timeout.ms: "},
        {"enable.partition.eof=maybe", "kafka.properties.enable.partition.eof: "},
        {"session.timeout.ms=45000", NULL},
        {"enable.partition.eof=true", NULL},
        {"client.id=https://u:pw@x/?token=t", NULL},
        {"sasl.password=Hunter2Pw", NULL},
        {"heartbeat.interval.ms=500", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fd_conf_defaults(&c);
        assert_int_equal(fd_conf_add_kprop(&c, cases[i].kv, err, sizeof err), 0);
        int rc = fd_conf_finalize(&c, err, sizeof err);
        if (cases[i].key == NULL && rc != 0) fail_msg("-X %s: %s", cases[i].kv, err);
        if (cases[i].key != NULL && (rc == 0 || strncmp(err, cases[i].key, strlen(cases[i].key))))
            fail_msg("-X %s: rc %d, want an error starting %s: %s", cases[i].kv, rc,
                     cases[i].key, err);
        fd_conf_release(&c);
    }
    /* the first bad one of several is named, whatever its place */
    fd_conf_defaults(&c);
    assert_int_equal(fd_conf_add_kprop(&c, "linger.ms=5", err, sizeof err), 0);
    assert_int_equal(fd_conf_add_kprop(&c, "fetch.wait.max.ms=soon", err, sizeof err), 0);
    assert_int_equal(fd_conf_add_kprop(&c, "no.such.prop=1", err, sizeof err), 0);
    assert_int_not_equal(fd_conf_finalize(&c, err, sizeof err), 0);
    assert_non_null(strstr(err, "kafka.properties.fetch.wait.max.ms: "));
    fd_conf_release(&c);
    /* a refused secret property: named, its value never shown */
    fd_conf_defaults(&c);
    assert_int_equal(fd_conf_add_kprop(&c, "my.password=Hunter2Pw", err, sizeof err), 0);
    assert_int_not_equal(fd_conf_finalize(&c, err, sizeof err), 0);
    assert_non_null(strstr(err, "kafka.properties.my.password: "));
    assert_null(strstr(err, "Hunter2Pw"));
    fd_conf_release(&c);
    /* librdkafka quotes a refused value: the credentials of a URL are masked */
    assert_int_not_equal(load_text(&c,
                                   "{\"kafka\": {\"properties\": {\"auto.offset.reset\": "
                                   "\"https://u:Pw0rdXyz@h/x?token=Tok3nAbc\"}}}",
                                   err, sizeof err),
                         0);
    assert_non_null(strstr(err, "kafka.properties.auto.offset.reset: "));
    assert_null(strstr(err, "Pw0rdXyz"));
    assert_null(strstr(err, "Tok3nAbc"));
    fd_conf_release(&c);
}

/* http.listen: one parser for conf and the HTTP server (ops/http.c); what
 * it returns is what the server binds. */
static void test_listen_parse(void **state) {
    (void)state;
    char host[64], err[512];
    int port = 0;
    assert_int_equal(fd_conf_listen_parse("localhost:9464", host, sizeof host, &port, err,
                                          sizeof err),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(fd_conf_listen_parse("0.0.0.0:1", host, sizeof host, &port, err, sizeof err),
                     0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 1);
    assert_int_equal(fd_conf_listen_parse("funneld.internal:9464", host, sizeof host, &port, err,
                                          sizeof err),
                     -1);
    assert_non_null(strstr(err, "http.listen"));
    /* --set goes through the same check */
    fd_conf_t c;
    fd_conf_defaults(&c);
    assert_int_equal(fd_conf_set(&c, "http.listen", "[::]:9464", err, sizeof err), 0);
    assert_int_not_equal(fd_conf_finalize(&c, err, sizeof err), 0);
    assert_non_null(strstr(err, "http.listen: the host must be an IPv4 address or localhost"));
    fd_conf_release(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marketing_parsed),
        cmocka_unit_test(test_marketing_flush_default),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_file_errors_name_path),
        cmocka_unit_test(test_loaded_values),
        cmocka_unit_test(test_set_rows),
        cmocka_unit_test(test_add_kprop),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_is_secret),
        cmocka_unit_test(test_print_masks_secrets),
        cmocka_unit_test(test_alert_secret_masked),
        cmocka_unit_test(test_print_roundtrip),
        cmocka_unit_test(test_window_name),
        cmocka_unit_test(test_doc_matches_file),
        cmocka_unit_test(test_example_is_defaults),
        cmocka_unit_test(test_http_headroom),
        cmocka_unit_test(test_poll_headroom),
        cmocka_unit_test(test_h1_ttl_for_spans),
        cmocka_unit_test(test_hll_m1),
        cmocka_unit_test(test_alert_urls),
        cmocka_unit_test(test_kprops_checked),
        cmocka_unit_test(test_listen_parse),
    };
    return cmocka_run_group_tests(tests, setup_env, NULL);
}
