/*
 * incentive.h — coupon users vs the others: the two groups of a rolling
 * window and their two-proportion test (docs/METRICS.md, "Coupons").
 *
 * Pure arithmetic on distinct-user counts read from Redis HLLs; the test is
 * the alerts' pooled two-proportion z (model/alert_rule.h), not a second
 * one. The inputs are HLL estimates, so the group figures derived from
 * differences of unions are approximate, and clamped so that they stay
 * consistent (0 <= payers <= users).
 */
#ifndef FD_INCENTIVE_H
#define FD_INCENTIVE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t touched; /* |T|: users with an event carrying a coupon_id */
    int64_t paid_or_touched; /* |P ∪ T| */
    int64_t any; /* |E ∪ P ∪ T|: the window's users (exposed, paid or coupon) */
    int64_t paid; /* |P| */
    int64_t coupon_paid; /* |CP|: users who paid with a coupon */
} fd_coupon_counts_t;

typedef struct {
    int64_t coupon_users, coupon_payers; /* T, |P ∩ T| */
    int64_t others_users, others_payers; /* |(E ∪ P ∪ T) \ T|, |P \ T| */
    int has_test; /* both groups non-empty: z and p defined */
    double z; /* > 0: coupon users convert more than the others */
    double p; /* one-sided p-value P(Z >= z) */
} fd_coupon_stats_t;

void fd_coupon_stats(const fd_coupon_counts_t *in, fd_coupon_stats_t *out);

/* Appends the snapshot fields of `st` (and the raw counts) as name/value
 * text pairs: names[i], vals[i] (each vals[i] a buffer of 32 bytes).
 * Returns the number of pairs written (FD_COUPON_FIELDS). */
#define FD_COUPON_FIELDS 11
int fd_coupon_fields(const fd_coupon_counts_t *in, const fd_coupon_stats_t *st, const char **names,
                     char (*vals)[32]);

#endif
