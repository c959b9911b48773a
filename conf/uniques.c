/*
 * uniques.c — which scopes get minute (m1) distinct-user HLLs:
 * `hll_m1_groupings`, and the rules that depend on it.
 *
 * Distinct users were ~58% of Redis CPU, and the m1 HLLs 47% of the keys
 * and 69% of the PFADDs (docs/BENCHMARKS.md). So only the scopes of the
 * groupings listed here get m1 `exposed` and `interacted` HLLs; every scope
 * keeps its h1 and d1 HLLs and all its counters. A rolling snapshot of
 * another scope counts distinct users over the window's whole hours
 * (docs/REDIS.md, "Distinct users per minute"); the alert rules that need
 * distinct users per minute are refused here for such groupings, and the
 * API answers that the minute series of uniques does not exist.
 *
 * The set is kept twice: as the entries (for check-config and the docs)
 * and as hll_m1_set, one bit per grouping mask (fd_grouping_mask is at most
 * 5 bits), so the hot path and the snapshot tick ask with one AND.
 *
 * Part of fd_conf_finalize: every message names its key.
 */
#include "conf/conf.h"
#include "base/err.h"

#include <inttypes.h>
#include <string.h>

static int in_groupings(const fd_conf_t *c, const fd_grouping_t *g) {
    for (int i = 0; i < c->ngroupings; i++)
        if (fd_grouping_mask(&c->groupings[i]) == fd_grouping_mask(g)) return 1;
    return 0;
}

/* A metric that reads a distinct-user series (a uv_* or a rate of them). */
static int needs_uniques(fd_metric_t m) {
    const char *num, *den;
    fd_metric_series(m, &num, &den);
    return strncmp(num, "uv_", 3) == 0 || (den && strncmp(den, "uv_", 3) == 0);
}

int fd_conf_finalize_uniques(fd_conf_t *c, char *err, size_t errlen) {
    _Static_assert(FD_DIM__COUNT <= 5, "hll_m1_set holds one bit per grouping mask");
    char name[128];
    if (!fd_conf_given(c, "hll_m1_groupings")) {
        /* the default names `all` and `product`; a configuration without
         * one of them gets the other alone */
        int n = 0;
        for (int i = 0; i < c->nhll_m1; i++)
            if (in_groupings(c, &c->hll_m1[i])) c->hll_m1[n++] = c->hll_m1[i];
        c->nhll_m1 = n;
    }
    c->hll_m1_set = 0;
    for (int i = 0; i < c->nhll_m1; i++) {
        if (!in_groupings(c, &c->hll_m1[i])) {
            fd_grouping_name(name, sizeof name, &c->hll_m1[i]);
            return fd_fail(err, errlen,
                           "hll_m1_groupings[%d]: [%s] is not one of `groupings` (only a "
                           "configured grouping has scopes)",
                           i, name[0] ? name : "");
        }
        c->hll_m1_set |= UINT32_C(1) << fd_grouping_mask(&c->hll_m1[i]);
    }
    /* A window's whole-hour span starts up to 59 min before the window and
     * an hour's HLL may have been written last at its start: with a
     * grouping left out, h1 HLLs must outlive the largest window by an
     * hour, or the oldest hour of a span is read after it expired. */
    int64_t wmax = fd_conf_longest_window_s(c);
    int left_out = 0;
    for (int i = 0; i < c->ngroupings; i++) left_out |= !fd_conf_hll_m1(c, &c->groupings[i]);
    if (left_out && c->ttl_h1_s < wmax + 3600)
        return fd_fail(err, errlen,
                       "ttl.h1_s (%" PRId64 ") must be >= the largest window + 1 h (%" PRId64
                       " s) while a grouping is not in hll_m1_groupings: those scopes read "
                       "distinct users from h1 HLLs over whole hours",
                       c->ttl_h1_s, wmax + 3600);
    for (int i = 0; i < c->nalert_rules; i++) {
        const fd_alert_rule_t *r = &c->alert_rules[i];
        fd_metric_t m = needs_uniques(r->metric) ? r->metric : r->while_metric;
        int uv = needs_uniques(r->metric) || (r->kind == FD_ALERT_ABSENT && needs_uniques(m));
        if (!uv || fd_conf_hll_m1(c, &r->grouping)) continue;
        fd_grouping_name(name, sizeof name, &r->grouping);
        return fd_fail(err, errlen,
                       "alerts.rules[%d]: %s counts distinct users per minute, but grouping "
                       "[%s] is not in hll_m1_groupings (its scopes have no m1 HLLs); add it to "
                       "hll_m1_groupings or alert on a count",
                       i, fd_metric_name(m), name);
    }
    return 0;
}

int fd_conf_hll_m1(const fd_conf_t *c, const fd_grouping_t *g) {
    return (c->hll_m1_set >> fd_grouping_mask(g)) & 1u;
}

int fd_conf_scope_hll_m1(const fd_conf_t *c, const char *scope) {
    unsigned set;
    char vals[FD_DIM__COUNT][256];
    if (!scope || fd_scope_parse(scope, &set, vals) < 0) return 0;
    return (c->hll_m1_set >> set) & 1u;
}
