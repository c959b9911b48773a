/*
 * test_http.c — the operations endpoint's health rules (ops/http.c).
 *
 * Rows: the staleness rule of /healthz (alive while the loop's heartbeat is
 * at most FD_HTTP_STALL_MS old, whatever the flush interval) and the
 * connection limit under a descriptor limit. Then a real server on a free
 * loopback port: answering 200 right after start and after a heartbeat, and
 * 503 "event loop stalled" once no heartbeat came for FD_HTTP_STALL_MS —
 * a genuinely stalled loop, as the server thread sees it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "ops/http.h"

static const struct {
    int64_t beat_ms, now_ms;
    int alive;
} alive_rows[] = {
    {0, 5, 0}, /* no heartbeat yet */
    {1000, 1000, 1}, /* just now */
    {1000, 1000 + FD_HTTP_STALL_MS, 1}, /* exactly at the limit */
    {1000, 1000 + FD_HTTP_STALL_MS + 1, 0}, /* just past it */
    {1000, 1000 + 30000, 0}, /* a flush interval of 30 s plays no part */
    {50000, 50000 + FD_HTTP_BEAT_MS * 3, 1}, /* a few missed beats on a loaded machine */
};

static void test_alive_rule(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof alive_rows / sizeof alive_rows[0]; i++)
        if (fd_http_alive(alive_rows[i].beat_ms, alive_rows[i].now_ms) != alive_rows[i].alive)
            fail_msg("row %zu: beat %lld now %lld: want alive=%d", i,
                     (long long)alive_rows[i].beat_ms, (long long)alive_rows[i].now_ms,
                     alive_rows[i].alive);
}

static void test_conn_limit(void **state) {
    (void)state;
    assert_int_equal(fd_http_conn_limit(512, 20000), 512);
    assert_int_equal(fd_http_conn_limit(512, 600), 600 - FD_HTTP_FD_RESERVE);
    assert_int_equal(fd_http_conn_limit(1000, 1024), 1024 - FD_HTTP_FD_RESERVE);
    assert_int_equal(fd_http_conn_limit(512, 512 + FD_HTTP_FD_RESERVE), 512);
    assert_int_equal(fd_http_conn_limit(512, 100), 1); /* still serves one */
    assert_int_equal(fd_http_conn_limit(1, INT64_MAX), 1);
}

static double scale(void) {
    const char *s = getenv("FD_TIMEOUT_SCALE");
    double v = s ? atof(s) : 1;
    return v > 0 ? v : 1;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof sa;
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &n), 0);
    close(s);
    return ntohs(sa.sin_port);
}

/* GET path on a fresh connection; the status code, the body in body. */
static int get(int port, const char *path, char *body, size_t cap) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[128], buf[4096];
    size_t n = 0;
    ssize_t r;
    assert_true(s >= 0);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    assert_int_equal(write(s, req, (size_t)len), len);
    while (n + 1 < sizeof buf && (r = read(s, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    close(s);
    buf[n] = 0;
    int code = 0;
    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &code), 1);
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    return code;
}

static void test_stalled_loop_is_503(void **state) {
    (void)state;
    fd_conf_t c;
    char err[256], listen[32], body[256];
    fd_conf_defaults(&c);
    int port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    assert_int_equal(fd_conf_set(&c, "http.listen", listen, err, sizeof err), 0);
    fd_http_t *h = fd_http_new(&c, err, sizeof err);
    if (!h) fail_msg("fd_http_new: %s", err);
    assert_int_equal(get(port, "/healthz", body, sizeof body), 200);
    fd_http_beat(h, 1);
    double beat = mono_s();
    assert_int_equal(get(port, "/healthz", body, sizeof body), 200);
    assert_int_equal(get(port, "/readyz", body, sizeof body), 200);
    /* no more heartbeats: the loop is stuck from now on */
    double deadline = beat + (FD_HTTP_STALL_MS / 1000.0 + 5) * scale();
    int code;
    while ((code = get(port, "/healthz", body, sizeof body)) == 200 && mono_s() < deadline) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(code, 503);
    assert_string_equal(body, "event loop stalled\n");
    assert_true(mono_s() - beat >= FD_HTTP_STALL_MS / 1000.0);
    assert_int_equal(get(port, "/readyz", body, sizeof body), 503);
    fd_http_beat(h, 1); /* the loop turns again */
    assert_int_equal(get(port, "/healthz", body, sizeof body), 200);
    assert_int_equal(get(port, "/readyz", body, sizeof body), 200);
    fd_http_free(h);
    fd_conf_release(&c);
}

/* libmicrohttpd's own texts (as in the installed library): a client gone
 * mid-response is debug, everything else stays a warning. */
static void test_peer_gone(void **state) {
    (void)state;
    assert_true(fd_http_peer_gone("Failed to send the chunked response body for the request for "
                                  "`/api/v1/stream'. Error: The connection was forcibly closed "
                                  "by remote peer\n"));
    assert_true(fd_http_peer_gone("Failed to send the response body for the request for `/'. "
                                  "Error: The socket is no longer available for sending\n"));
    assert_false(fd_http_peer_gone("Failed to send the response body for the request for `/'. "
                                   "Error: TLS encryption or decryption error\n"));
    assert_false(fd_http_peer_gone("Closing connection (out of memory).\n"));
    assert_false(
        fd_http_peer_gone("Server reached connection limit. Closing inbound connection.\n"));
    assert_false(fd_http_peer_gone("The connection was forcibly closed by remote peer\n"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_gone),
        cmocka_unit_test(test_alive_rule),
        cmocka_unit_test(test_conn_limit),
        cmocka_unit_test(test_stalled_loop_is_503),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
