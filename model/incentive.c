/*
 * incentive.c — coupon users vs the others (see incentive.h).
 *
 * Groups (docs/METRICS.md, "Coupons"): coupon users T are the users with
 * any event carrying a coupon_id in the window; the others are the
 * window's remaining users (exposed or paid, no coupon event). Payers:
 * coupon payers = |P ∩ T| = |P| + |T| − |P ∪ T|, other payers =
 * |P \ T| = |P ∪ T| − |T|. The test asks whether the coupon users' rate is
 * higher: z = fd_alert_z_two_prop(others, coupon) (positive = the others'
 * rate is lower), p = P(Z >= z). No memory, no state.
 */
#include "model/incentive.h"

#include <stdio.h>

#include "model/alert_rule.h"

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void fd_coupon_stats(const fd_coupon_counts_t *in, fd_coupon_stats_t *out) {
    int64_t t = in->touched < 0 ? 0 : in->touched;
    out->coupon_users = t;
    out->coupon_payers = clamp(in->paid + t - in->paid_or_touched, 0, in->paid < t ? in->paid : t);
    out->others_users = clamp(in->any - t, 0, INT64_MAX);
    out->others_payers = clamp(in->paid_or_touched - t, 0, out->others_users);
    out->has_test = out->coupon_users > 0 && out->others_users > 0;
    out->z = out->has_test ? fd_alert_z_two_prop(out->others_payers, out->others_users,
                                                 out->coupon_payers, out->coupon_users)
                           : 0;
    out->p = out->has_test ? fd_alert_p_upper(out->z) : 0;
}

static void rate(char *buf, int64_t x, int64_t n) {
    if (n > 0) snprintf(buf, 32, "%.6f", (double)x / (double)n);
    else buf[0] = 0;
}

int fd_coupon_fields(const fd_coupon_counts_t *in, const fd_coupon_stats_t *st, const char **names,
                     char (*vals)[32]) {
    int n = 0;
#define NUM(name, v) (names[n] = name, snprintf(vals[n], 32, "%lld", (long long)(v)), n++)
    NUM("uv_coupon_touched", in->touched);
    NUM("uv_coupon_paid", in->coupon_paid);
    NUM("coupon_users", st->coupon_users);
    NUM("coupon_payers", st->coupon_payers);
    names[n] = "coupon_conversion_rate";
    rate(vals[n++], st->coupon_payers, st->coupon_users);
    NUM("others_users", st->others_users);
    NUM("others_payers", st->others_payers);
    names[n] = "others_conversion_rate";
    rate(vals[n++], st->others_payers, st->others_users);
    names[n] = "coupon_z";
    if (st->has_test) snprintf(vals[n], 32, "%.6f", st->z);
    else vals[n][0] = 0;
    n++;
    names[n] = "coupon_p";
    if (st->has_test) snprintf(vals[n], 32, "%.6g", st->p);
    else vals[n][0] = 0;
    n++;
    names[n] = "coupon_test";
    snprintf(vals[n], 32, "%s", st->has_test ? "two_proportion_z_one_sided" : "");
    n++;
#undef NUM
    return n;
}
