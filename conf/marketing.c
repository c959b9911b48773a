/*
 * marketing.c — parses the marketing keys' texts (retention.days, the type
 * lists, retention.groupings) into the fields the aggregator and the flush
 * script use, and checks their cross-field rule. Part of fd_conf_finalize:
 * every message names its key.
 */
#include "conf/conf.h"
#include "base/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Splits s at commas (spaces around items ignored) and calls item() on each
 * non-empty item; stops at the first non-zero return. */
static int each_item(const char *s, int (*item)(const char *p, size_t n, void *ud), void *ud) {
    const char *p = s ? s : "";
    while (*p) {
        while (*p == ' ') p++;
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ') m--;
        if (m > 0) {
            int rc = item(p, m, ud);
            if (rc) return rc;
        }
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int day_item(const char *p, size_t n, void *ud) {
    fd_conf_t *c = ud;
    char buf[16];
    if (n >= sizeof buf) return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || *end || v < 1 || v > 400 || c->nret_days >= FD_MAX_RET_DAYS) return -1;
    for (int i = 0; i < c->nret_days; i++)
        if (c->ret_days[i] == v) return 0; /* a repeated k is one k */
    c->ret_days[c->nret_days++] = (int32_t)v;
    return 0;
}

static int type_item(const char *p, size_t n, void *ud) {
    unsigned *mask = ud;
    if (n == 8 && memcmp(p, "exposure", 8) == 0) *mask |= FD_MKT_EXPOSURE;
    else if (n == 11 && memcmp(p, "interaction", 11) == 0) *mask |= FD_MKT_INTERACTION;
    else if (n == 7 && memcmp(p, "payment", 7) == 0) *mask |= FD_MKT_PAYMENT;
    else return -1;
    return 0;
}

static int dim_item(const char *p, size_t n, void *ud) {
    fd_conf_t *c = ud;
    static const char *const dims[] = {"channel", "community", "campaign"};
    for (size_t d = 0; d < 3; d++) {
        if (strlen(dims[d]) != n || memcmp(p, dims[d], n) != 0) continue;
        for (int i = 0; i < c->nret_dims; i++)
            if (strcmp(c->ret_dims[i], dims[d]) == 0) return 0;
        if (c->nret_dims >= FD_MAX_RET_DIMS) return -1;
        strcpy(c->ret_dims[c->nret_dims++], dims[d]);
        return 0;
    }
    return -1;
}

int fd_conf_finalize_marketing(fd_conf_t *c, char *err, size_t errlen) {
    c->nret_days = 0;
    if (each_item(c->ret_days_s, day_item, c) || c->nret_days == 0)
        return fd_fail(err, errlen,
                       "retention.days: must be comma-separated integers 1..400 (at most %d), "
                       "got \"%.100s\"",
                       FD_MAX_RET_DAYS, c->ret_days_s ? c->ret_days_s : "");
    c->ret_start_mask = c->ret_active_mask = 0;
    if (each_item(c->ret_start_s, type_item, &c->ret_start_mask) || !c->ret_start_mask)
        return fd_fail(err, errlen,
                       "retention.start_types: must list exposure, interaction and/or payment, "
                       "got \"%.100s\"",
                       c->ret_start_s ? c->ret_start_s : "");
    if (each_item(c->ret_active_s, type_item, &c->ret_active_mask) || !c->ret_active_mask)
        return fd_fail(err, errlen,
                       "retention.active_types: must list exposure, interaction and/or payment, "
                       "got \"%.100s\"",
                       c->ret_active_s ? c->ret_active_s : "");
    c->nret_dims = 0;
    if (each_item(c->ret_dims_s, dim_item, c))
        return fd_fail(err, errlen,
                       "retention.groupings: must list channel, community and/or campaign, got "
                       "\"%.100s\"",
                       c->ret_dims_s ? c->ret_dims_s : "");
    /* the general default is too large a batch for the per-user section */
    if (c->mkt_enabled && !fd_conf_given(c, "flush_max_events"))
        c->flush_max_events = FD_MKT_DEFAULT_FLUSH_EVENTS;
    if (c->mkt_enabled && c->flush_max_events > FD_MKT_MAX_FLUSH_EVENTS)
        return fd_fail(err, errlen,
                       "flush_max_events (%" PRId64 ") must be <= %d with marketing.enabled: the "
                       "flush script merges every event into its user's state, so a larger "
                       "batch holds Redis for seconds (docs/METRICS.md, \"Cost\")",
                       c->flush_max_events, FD_MKT_MAX_FLUSH_EVENTS);
    /* a cohort is counted until day d + k: its hash and the states of its
     * users must live that long */
    int32_t kmax = 0;
    for (int i = 0; i < c->nret_days; i++)
        if (c->ret_days[i] > kmax) kmax = c->ret_days[i];
    if (c->ret_horizon_s < ((int64_t)kmax + 1) * 86400)
        return fd_fail(err, errlen,
                       "retention.horizon_s (%" PRId64 ") must be >= (largest retention.days + 1) "
                       "days = %" PRId64 " s",
                       c->ret_horizon_s, ((int64_t)kmax + 1) * 86400);
    if (c->funnel_window_s > c->ret_horizon_s)
        return fd_fail(err, errlen,
                       "funnel.window_s (%" PRId64 ") must be <= retention.horizon_s (%" PRId64
                       "): a user's state must outlive the window",
                       c->funnel_window_s, c->ret_horizon_s);
    return 0;
}
