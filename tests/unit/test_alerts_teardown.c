/*
 * test_alerts_teardown.c — freeing the alert evaluator while a round runs on
 * the worker thread.
 *
 * fd_alerts_free closes the timer; when the round ends before the timer's
 * close callback, both after_work and on_timer_close reach the cleanup. It
 * must free every buffer once (the ASan build and the valgrind step catch a
 * second free). The evaluator needs a real Redis: the test starts its own
 * redis-server on a unix socket in a temporary folder (no port, nothing to
 * race) and stops it; a missing redis-server fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "alerts/alerts.h"
#include "alerts/alerts_int.h"
#include "base/log.h"
#include "conf/conf.h"

static char dir[] = "/tmp/fd-alerts-teardown.XXXXXX";
static char sock[100];
static pid_t redis_pid = -1;

static int can_connect(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static int redis_up(void **state) {
    (void)state;
    if (!mkdtemp(dir)) return -1;
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    redis_pid = fork();
    if (redis_pid == 0) {
        /* dies with the test, and keeps its output off the test's pipes (a
         * test that aborts must not leave ctest waiting on redis-server) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--dir", dir,
               "--save", "", "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && redis_pid > 0; i++) { /* up to 30 s */
        if (can_connect(sock)) return 0;
        if (waitpid(redis_pid, NULL, WNOHANG) == redis_pid) break; /* exited: not installed? */
        usleep(100000);
    }
    fprintf(stderr, "redis-server did not start on %s (deploy/stack.sh deps installs it)\n", sock);
    return -1;
}

static int redis_down(void **state) {
    (void)state;
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
    }
    unlink(sock);
    rmdir(dir);
    return 0;
}

static void free_while_round_runs(void **state) {
    (void)state;
    char err[512], url[300];
    fd_conf_t c;
    fd_conf_defaults(&c);
    snprintf(url, sizeof url, "unix://%s", sock);
    assert_int_equal(fd_conf_set(&c, "redis.url", url, err, sizeof err), 0);
    assert_int_equal(fd_conf_set(&c, "redis.prefix", "teardown", err, sizeof err), 0);
    assert_int_equal(fd_conf_set(&c, "groupings", "[[\"product\"]]", err, sizeof err), 0);
    assert_int_equal(fd_conf_set(&c, "alerts.eval_interval_ms", "100", err, sizeof err), 0);
    assert_int_equal(fd_conf_set(&c, "alerts.rules",
                                 "[{\"name\":\"R\",\"kind\":\"below_threshold\","
                                 "\"metric\":\"conversion_rate\",\"grouping\":[\"product\"],"
                                 "\"window\":\"5m\",\"threshold\":0.025,\"min_samples\":1000,"
                                 "\"for\":\"2m\"}]",
                                 err, sizeof err),
                     0);
    assert_int_equal(fd_conf_finalize(&c, err, sizeof err), 0);
    /* one stored alert state, so the lease holder loads a state cache */
    redisContext *rc = redisConnectUnix(sock);
    assert_true(rc && !rc->err);
    redisReply *r = redisCommand(rc, "SADD teardown:alert:index 0123456789abcdef");
    assert_non_null(r);
    freeReplyObject(r);
    r = redisCommand(rc,
                     "HSET teardown:alert:0123456789abcdef rule R scope product=x state pending");
    assert_true(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    redisFree(rc);
    fd_log_t log;
    fd_log_init(&log, "error", 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fd_alerts_t *a = fd_alerts_new(&loop, &c, &log, "teardown-test", err, sizeof err);
    assert_non_null(a);
    /* until it holds the lease and has loaded its state cache */
    for (int i = 0; i < 2000 && !(a->st.leader && a->alerts); i++) uv_run(&loop, UV_RUN_ONCE);
    assert_true(a->st.leader);
    assert_non_null(a->alerts);
    while (!a->work_running) uv_run(&loop, UV_RUN_ONCE);
    fd_alerts_free(a);
    /* the round ends meanwhile, as it does while the daemon flushes its DLQ */
    usleep(1500000);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    fd_conf_release(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(free_while_round_runs),
    };
    return cmocka_run_group_tests(tests, redis_up, redis_down);
}
