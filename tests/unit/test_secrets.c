/*
 * test_secrets.c — what funneld hides of a secret given on the command line
 * (fd_conf_scrub_arg: the same spans check-config prints as "***").
 *
 * Rows: key ("redis.url", a masked key, NULL for -X name=value), the value
 * as typed, and the value as ps shows it afterwards (same length, '*').
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"

static const struct {
    const char *key, *in, *out;
} rows[] = {
    {"redis.url", "redis://u:pw@h:6379/1", "redis://u:**@h:6379/1"},
    {"redis.url", "redis://:hunter2@h", "redis://:*******@h"},
    {"redis.url", "redis://h:6379", "redis://h:6379"},
    {"redis.url", "redis://tok@h", "redis://***@h"}, /* a lone user part may be a token */
    {"redis.url", "redis://a:b@c@h", "redis://a:***@h"}, /* the last '@' ends it, as in the parser */
    {"redis.url", "unix:///run/r.sock", "unix:///run/r.sock"},
    {"alerts.webhook.url", "https://h/p?key=K&x=1", "https://h/p?key=*&x=1"},
    {"alerts.webhook.url", "https://h/p?a=1&Access_Token=TT;sig=S#secret=Z",
     "https://h/p?a=1&Access_Token=**;sig=*#secret=*"},
    {"alerts.webhook.url", "https://h/p?key=&token", "https://h/p?key=&token"}, /* nothing to hide */
    {"alerts.alertmanager.url", "http://admin:pw@am:9093/x", "http://admin:**@am:9093/x"},
    {"alerts.generator_url", "https://dash/d?api_key=abc", "https://dash/d?api_key=***"},
    {"alerts.webhook.secret", "whsec_abc", "*********"},
    {"kafka.brokers", "h:9092", "h:9092"},
    {"no.such.key", "redis://u:pw@h", "redis://u:pw@h"},
    {NULL, "sasl.password=pw", "sasl.password=**"},
    {NULL, "sasl.oauthbearer.client.secret=abc", "sasl.oauthbearer.client.secret=***"},
    {NULL, "my.Token=abc", "my.Token=***"},
    {NULL, "x.url=https://u:p@h/?token=t", "x.url=https://u:*@h/?token=*"},
    {NULL, "session.timeout.ms=6000", "session.timeout.ms=6000"},
    {NULL, "no-equals", "no-equals"},
};

static void test_scrub_rows(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", rows[i].in);
        fd_conf_scrub_arg(rows[i].key, buf);
        if (strcmp(buf, rows[i].out) != 0)
            fail_msg("row %zu (%s, %s): got %s, want %s", i, rows[i].key ? rows[i].key : "-X",
                     rows[i].in, buf, rows[i].out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
