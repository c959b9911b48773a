/*
 * app.h — private to app/: the parsed command line and the commands.
 *
 * main.c parses argv into args_t and a finished fd_conf_t, then calls one
 * command; each returns the process exit status (0 success, 1 runtime
 * failure, 2 usage or configuration error).
 */
#ifndef FD_APP_H
#define FD_APP_H

#include "conf/conf.h"
#include "base/log.h"

#define MAX_FILES 256

typedef struct {
    const char *cmd;
    const char *conf_path;
    int doc;
    const char *type; /* validate --type */
    int nfiles;
    const char *files[MAX_FILES];
    const char *as[MAX_FILES]; /* replay --as TOPIC:PARTITION per file */
} args_t;

/* daemon.c: the long-running commands (one libuv loop until stopped). */
int fd_app_run(const fd_conf_t *c, fd_log_t *log);
int fd_app_replay(const fd_conf_t *c, fd_log_t *log, const args_t *a);

/* serve.c: the read-only instance (the screen, /api/v1, /metrics), no
 * consumer, no flushes, no alert evaluation. */
int fd_app_serve(const fd_conf_t *c, fd_log_t *log);

/* inspect.c: one-shot commands (blocking, print to stdout). */
int fd_app_validate(const fd_conf_t *c, const args_t *a);
int fd_app_query(const fd_conf_t *c, const args_t *a);
int fd_app_alerts(const fd_conf_t *c, const args_t *a);

#endif
