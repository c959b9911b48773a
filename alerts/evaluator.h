/*
 * evaluator.h — private to alerts/: one evaluation round and the alert
 * cache (evaluator.c). Worker thread only, except fd_alert_grow().
 */
#ifndef FD_ALERT_EVALUATOR_H
#define FD_ALERT_EVALUATOR_H

#include "alerts/alerts_int.h"

/* Array v (n of *cap elements in use, each `size` bytes) with room for one
 * more: v itself while n < *cap, else v reallocated to twice *cap (`first`
 * when empty). NULL when out of memory, with v and *cap left as they were. */
void *fd_alert_grow(void *v, size_t n, size_t *cap, size_t size, size_t first);

alert_t *fd_alert_cache_add(fd_alerts_t *a, const char *fp, int rule, const char *scope);

void fd_alert_cache_drop(fd_alerts_t *a);

/* Removes records that were deleted and committed. */
void fd_alert_cache_compact(fd_alerts_t *a);

int fd_alert_rule_index(const fd_conf_t *c, const char *name);

void fd_alert_scopes_free(fd_alerts_t *a);

int fd_alert_scopes_push(fd_alerts_t *a, int r, const char *scope, size_t *cap);

/* The queries of rule r at step t (seconds); returns how many (<= 4). */
int fd_alert_rule_queries(const fd_alert_rule_t *r, int64_t t, query_t *q);

void fd_alert_trans_free(fd_alerts_t *a);

void fd_alert_eval_round(uv_work_t *w);

#endif
