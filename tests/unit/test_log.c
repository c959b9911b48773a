/*
 * test_log.c — fd_log_repeat's per-problem rate limit, the erase-line
 * prefix (fd_log_set_erase), and which kafka.properties reach which
 * librdkafka client (fd_kafka_conf).
 *
 * Log lines go to stderr; each case points stderr at a temporary file and
 * counts the lines written.
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
#include <librdkafka/rdkafka.h>

#include "consumers/kafka_source.h"
#include "conf/conf.h"
#include "base/log.h"

static FILE *cap;
static int saved_fd = -1;

static void capture_start(void) {
    fflush(stderr);
    cap = tmpfile();
    assert_non_null(cap);
    saved_fd = dup(2);
    dup2(fileno(cap), 2);
}

/* Stops capturing; returns the captured text (static buffer). */
static const char *capture_end(void) {
    static char buf[16384];
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    rewind(cap);
    size_t n = fread(buf, 1, sizeof buf - 1, cap);
    buf[n] = 0;
    fclose(cap);
    return buf;
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_repeat_once_per_key(void **state) {
    (void)state;
    fd_log_t l;
    fd_log_init(&l, "info", 10);
    capture_start();
    for (int i = 0; i < 5; i++) fd_log_repeat(&l, FD_LOG_WARN, "k1", "problem one", "n=%d", i);
    fd_log_repeat(&l, FD_LOG_WARN, "k2", "problem two", NULL);
    fd_log_repeat(&l, FD_LOG_DEBUG, "k3", "below the level", NULL);
    const char *out = capture_end();
    assert_int_equal(count(out, "msg=\"problem one\" n=0\n"), 1);
    assert_int_equal(count(out, "problem one"), 1);
    assert_int_equal(count(out, "msg=\"problem two\"\n"), 1);
    assert_int_equal(count(out, "below the level"), 0);
}

static void test_repeat_counts_held_lines(void **state) {
    (void)state;
    fd_log_t l;
    fd_log_init(&l, "info", 10);
    capture_start();
    fd_log_repeat(&l, FD_LOG_ERROR, "k", "again", "a=1");
    fd_log_repeat(&l, FD_LOG_ERROR, "k", "again", "a=2");
    fd_log_repeat(&l, FD_LOG_ERROR, "k", "again", "a=3");
    /* as if the interval had passed */
    for (int i = 0; i < FD_LOG_REPEAT_SLOTS; i++) l.repeat[i].last_ms -= FD_LOG_REPEAT_MS + 1;
    fd_log_repeat(&l, FD_LOG_ERROR, "k", "again", "a=4");
    fd_log_repeat(&l, FD_LOG_ERROR, "k", "again", "a=5");
    const char *out = capture_end();
    assert_int_equal(count(out, "msg=\"again\""), 2);
    assert_int_equal(count(out, "msg=\"again\" a=1\n"), 1);
    assert_int_equal(count(out, "msg=\"again\" a=4 repeated=2\n"), 1);
}

static void test_repeat_more_keys_than_slots(void **state) {
    (void)state;
    fd_log_t l;
    fd_log_init(&l, "info", 10);
    capture_start();
    char key[32];
    for (int i = 0; i < 3 * FD_LOG_REPEAT_SLOTS; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        fd_log_repeat(&l, FD_LOG_WARN, key, "distinct", "i=%d", i);
    }
    const char *out = capture_end();
    assert_int_equal(count(out, "msg=\"distinct\""), 3 * FD_LOG_REPEAT_SLOTS);
}

static void conf_value(rd_kafka_conf_t *kc, const char *name, char *out, size_t cap_) {
    size_t n = cap_;
    assert_int_equal(rd_kafka_conf_get(kc, name, out, &n), RD_KAFKA_CONF_OK);
}

/* fd_log_set_erase: while on, each line starts by erasing the terminal's
 * line (replay's progress line); off (the default), no escape sequence. */
static void test_erase_line(void **state) {
    (void)state;
    fd_log_t l;
    fd_log_init(&l, "info", 10);
    capture_start();
    fd_log(&l, FD_LOG_INFO, "plain", NULL);
    fd_log_set_erase(&l, 1);
    fd_log(&l, FD_LOG_INFO, "erased", "k=1");
    fd_log_limited(&l, FD_LOG_WARN, "erased too", NULL);
    fd_log_set_erase(&l, 0);
    fd_log(&l, FD_LOG_INFO, "plain again", NULL);
    const char *out = capture_end();
    assert_int_equal(count(out, "\r\033[K"), 2);
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    assert_non_null(strstr(out, "\n\r\033[Kts="));
    const char *last = strstr(out, "msg=\"plain again\"");
    assert_non_null(last);
    assert_null(strstr(last, "\033"));
}

static void test_kafka_properties_split_by_client(void **state) {
    (void)state;
    fd_conf_t c;
    char err[256], v[64];
    fd_conf_defaults(&c);
    assert_int_equal(fd_conf_add_kprop(&c, "session.timeout.ms=6000", err, sizeof err), 0);
    assert_int_equal(fd_conf_add_kprop(&c, "queue.buffering.max.messages=20", err, sizeof err), 0);
    assert_int_equal(fd_conf_add_kprop(&c, "socket.timeout.ms=7000", err, sizeof err), 0);

    rd_kafka_conf_t *p =
        fd_kafka_conf(RD_KAFKA_PRODUCER, c.brokers, c.kprops, c.nkprops, NULL, err, sizeof err);
    assert_non_null(p);
    conf_value(p, "session.timeout.ms", v, sizeof v);
    assert_string_equal(v, "45000"); /* librdkafka's default: not applied */
    conf_value(p, "queue.buffering.max.messages", v, sizeof v);
    assert_string_equal(v, "20");
    conf_value(p, "socket.timeout.ms", v, sizeof v);
    assert_string_equal(v, "7000");
    rd_kafka_conf_destroy(p);

    const char *extra[] = {"topic.metadata.refresh.interval.ms", "30000", NULL};
    rd_kafka_conf_t *k =
        fd_kafka_conf(RD_KAFKA_CONSUMER, c.brokers, c.kprops, c.nkprops, extra, err, sizeof err);
    assert_non_null(k);
    conf_value(k, "session.timeout.ms", v, sizeof v);
    assert_string_equal(v, "6000");
    conf_value(k, "queue.buffering.max.messages", v, sizeof v);
    assert_string_equal(v, "100000");
    conf_value(k, "socket.timeout.ms", v, sizeof v);
    assert_string_equal(v, "7000");
    conf_value(k, "topic.metadata.refresh.interval.ms", v, sizeof v);
    assert_string_equal(v, "30000");
    rd_kafka_conf_destroy(k);
    fd_conf_release(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeat_once_per_key),
        cmocka_unit_test(test_repeat_counts_held_lines),
        cmocka_unit_test(test_repeat_more_keys_than_slots),
        cmocka_unit_test(test_erase_line),
        cmocka_unit_test(test_kafka_properties_split_by_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
