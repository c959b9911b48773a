/*
 * main.c — funneld's command line: run, replay, serve, validate, query, alerts,
 * check-config.
 *
 * Reading order for a newcomer: main() parses argv and the configuration
 * (conf/conf.c, the key table), scrubs secrets from argv, and calls one
 * command: run and replay are in daemon.c (it builds every object and runs
 * the one libuv loop), validate, query and alerts in inspect.c (one-shot).
 * Messages flow source (consumers/) → parser (model/event.c) → aggregator
 * (aggregators/agg.c) → partition batch (pipeline/pipeline.c) → Redis flush
 * script (sinks/redis_sink.c); rejects go to sinks/dlq.c; alert rules are
 * evaluated over what Redis holds (alerts/).
 *
 * Exit status: 0 success, 1 runtime failure (or rejected lines for
 * validate), 2 usage or configuration error. A run or replay whose final
 * flush did not happen exits 1 (pipeline/pipeline.c, final_flush_report), and
 * validate exits 1 when its input could not be read to the end.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "conf/conf.h"
#include "base/log.h"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: funneld COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  run            consume Kafka, keep funnel counters in Redis (until SIGTERM)\n"
        "  replay FILE..  the same pipeline from JSON Lines files (each file = one partition)\n"
        "  serve          read-only: the live screen and /api/v1 from Redis on http.listen, "
        "no consumer\n"
        "  validate FILE  print LINE<TAB>REASON<TAB>FIELD for each rejected line ('-' = stdin)\n"
        "  query SCOPE    print the rolling snapshots of a scope id (e.g. all, product=course-py)\n"
        "  query lb:GROUPING:WINDOW:METRIC  print a leaderboard (e.g. "
        "lb:product,channel:24h:revenue)\n"
        "  alerts [N]     print alert states and the N (default 20) latest transitions "
        "(docs/ALERTS.md)\n"
        "  check-config   validate the configuration and print it (secrets masked); --doc prints "
        "the key table\n"
        "\n"
        "options:\n"
        "  -c FILE              configuration file (JSON; see docs/CONFIG.md)\n"
        "  --brokers LIST       kafka.brokers\n"
        "  --redis URL          redis.url: redis://[user:password@]host:port[/db] or unix:///path\n"
        "  --group NAME         kafka.group\n"
        "  --prefix NAME        redis.prefix\n"
        "  --set KEY=VALUE      any configuration key\n"
        "  -X PROP=VALUE        a librdkafka property\n"
        "  --as TOPIC:PARTITION replay: the topic-partition the next FILE stands for\n"
        "  --type TYPE          validate: exposure|interaction|payment (default: lines carry "
        "\"type\")\n");
}

/* Parses argv into a and the configuration; returns 0 or the exit status. */
static int parse_args(int argc, char **argv, args_t *a, fd_conf_t *c) {
    char err[1024];
    const char *pending_as = NULL;
    memset(a, 0, sizeof(*a));
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    a->cmd = argv[1];
    if (!strcmp(a->cmd, "-h") || !strcmp(a->cmd, "--help") || !strcmp(a->cmd, "help")) {
        usage(stdout);
        exit(0);
    }
    /* the file first, flags over it: find -c before anything else */
    for (int i = 2; i < argc - 1; i++)
        if (!strcmp(argv[i], "-c")) a->conf_path = argv[i + 1];
    if (a->conf_path && fd_conf_load_file(c, a->conf_path, err, sizeof err) < 0) {
        fprintf(stderr, "funneld: %s\n", err);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *key = NULL;
        if (!strcmp(o, "--brokers")) key = "kafka.brokers";
        else if (!strcmp(o, "--redis")) key = "redis.url";
        else if (!strcmp(o, "--group")) key = "kafka.group";
        else if (!strcmp(o, "--prefix")) key = "redis.prefix";
        if (key || !strcmp(o, "-c") || !strcmp(o, "-X") || !strcmp(o, "--set") ||
            !strcmp(o, "--as") || !strcmp(o, "--type")) {
            if (!v) {
                fprintf(stderr, "funneld: %s needs a value\n", o);
                return 2;
            }
            i++;
            int rc = 0;
            if (key) {
                rc = fd_conf_set(c, key, v, err, sizeof err);
            } else if (!strcmp(o, "-X")) {
                rc = fd_conf_add_kprop(c, v, err, sizeof err);
            } else if (!strcmp(o, "--set")) {
                const char *eq = strchr(v, '=');
                if (!eq) {
                    fprintf(stderr, "funneld: --set wants KEY=VALUE\n");
                    return 2;
                }
                char k[128];
                snprintf(k, sizeof k, "%.*s", (int)(eq - v), v);
                rc = fd_conf_set(c, k, eq + 1, err, sizeof err);
            } else if (!strcmp(o, "--as")) {
                pending_as = v;
            } else if (!strcmp(o, "--type")) {
                a->type = v;
            }
            if (rc < 0) {
                fprintf(stderr, "funneld: %s\n", err);
                return 2;
            }
        } else if (!strcmp(o, "--doc")) {
            a->doc = 1;
        } else if (o[0] == '-' && o[1] != 0) {
            fprintf(stderr, "funneld: unknown option %s\n", o);
            return 2;
        } else {
            if (a->nfiles == MAX_FILES) {
                fprintf(stderr, "funneld: too many files\n");
                return 2;
            }
            a->as[a->nfiles] = pending_as;
            a->files[a->nfiles++] = o;
            pending_as = NULL;
        }
    }
    if (fd_conf_finalize(c, err, sizeof err) < 0) {
        fprintf(stderr, "funneld: %s\n", err);
        return 2;
    }
    return 0;
}

/* Once the configuration holds its own copies, the secrets given on the
 * command line (--redis with a password, -X sasl.password=..., --set of a
 * secret key or a URL with a token) are overwritten in argv, so ps and
 * /proc/PID/cmdline show '*' instead. Until this runs (the first
 * milliseconds) they are visible: ${ENV} in the file is the safe way. */
static void scrub_argv(int argc, char **argv) {
    for (int i = 2; i + 1 < argc; i++) {
        const char *o = argv[i];
        char *v = argv[i + 1];
        if (!strcmp(o, "--redis")) {
            fd_conf_scrub_arg("redis.url", v);
        } else if (!strcmp(o, "-X")) {
            fd_conf_scrub_arg(NULL, v);
        } else if (!strcmp(o, "--set")) {
            char *eq = strchr(v, '=');
            char k[128];
            if (!eq) continue;
            snprintf(k, sizeof k, "%.*s", (int)(eq - v), v);
            fd_conf_scrub_arg(k, eq + 1);
        } else if (strcmp(o, "-c") && strcmp(o, "--brokers") && strcmp(o, "--group") &&
                   strcmp(o, "--prefix") && strcmp(o, "--as") && strcmp(o, "--type")) {
            continue; /* not an option with a value */
        }
        i++;
    }
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    fd_conf_t c;
    fd_conf_defaults(&c);
    args_t a;
    int rc = parse_args(argc, argv, &a, &c);
    scrub_argv(argc, argv);
    if (rc) {
        fd_conf_release(&c);
        return rc;
    }
    fd_log_t log;
    fd_log_init(&log, c.log_level, c.log_rate_per_s);
    if (!strcmp(a.cmd, "run")) rc = fd_app_run(&c, &log);
    else if (!strcmp(a.cmd, "replay")) rc = fd_app_replay(&c, &log, &a);
    else if (!strcmp(a.cmd, "serve")) rc = fd_app_serve(&c, &log);
    else if (!strcmp(a.cmd, "validate")) rc = fd_app_validate(&c, &a);
    else if (!strcmp(a.cmd, "query")) rc = fd_app_query(&c, &a);
    else if (!strcmp(a.cmd, "alerts")) rc = fd_app_alerts(&c, &a);
    else if (!strcmp(a.cmd, "check-config")) {
        if (a.doc) fd_conf_print_doc(stdout);
        else fd_conf_print(&c, stdout);
        rc = 0;
    } else {
        fprintf(stderr, "funneld: unknown command \"%s\"\n", a.cmd);
        usage(stderr);
        rc = 2;
    }
    fd_conf_release(&c);
    return rc;
}
