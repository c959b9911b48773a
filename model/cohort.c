/*
 * cohort.c — retention and funnel arithmetic per user (see cohort.h).
 *
 * Day numbers use Howard Hinnant's days_from_civil / civil_from_days
 * (proleptic Gregorian), the same formulas the flush script and the
 * oracle use, so a label survives the round trip for any year 0..9999.
 * Everything here is a pure function of its inputs: no zone, no clock.
 */
#include "model/cohort.h"

#include <string.h>

int32_t fd_cohort_daynum(int32_t label) {
    int32_t y = label / 10000, m = label / 100 % 100, d = label % 100;
    y -= m <= 2;
    int32_t era = (y >= 0 ? y : y - 399) / 400;
    int32_t yoe = y - era * 400;
    int32_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int32_t fd_cohort_label(int32_t z) {
    z += 719468;
    int32_t era = (z >= 0 ? z : z - 146096) / 146097;
    int32_t doe = z - era * 146097;
    int32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int32_t y = yoe + era * 400;
    int32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int32_t mp = (5 * doy + 2) / 153;
    int32_t d = doy - (153 * mp + 2) / 5 + 1;
    int32_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    return y * 10000 + m * 100 + d;
}

int fd_cohort_retained(int32_t cohort, const int32_t *days, size_t n, int32_t k, fd_ret_mode_t mode) {
    for (size_t i = 0; i < n; i++) {
        if (days[i] == cohort + k) return 1;
        if (mode == FD_RET_UNBOUNDED && days[i] > cohort + k) return 1;
    }
    return 0;
}

/* Exposure order: time, then dims bytewise. */
static int touch_lt(const fd_cohort_touch_t *a, const fd_cohort_touch_t *b) {
    if (a->ts != b->ts) return a->ts < b->ts;
    return strcmp(a->dims, b->dims) < 0;
}

void fd_cohort_funnel(const fd_cohort_touch_t *x, size_t nx, const int64_t *it, size_t ni,
                      const fd_cohort_order_t *o, size_t no, int64_t window_ms,
                      fd_cohort_funnel_t *out) {
    memset(out, 0, sizeof *out);
    if (nx == 0) return;
    size_t f = 0;
    for (size_t i = 1; i < nx; i++)
        if (touch_lt(&x[i], &x[f])) f = i;
    int64_t e0 = x[f].ts, end = e0 + window_ms;
    out->reached = 1;
    out->first = f;
    for (size_t i = 0; i < ni; i++)
        if (it[i] >= e0 && it[i] <= end && (out->reached < 2 || it[i] < out->t_interact)) {
            out->reached = 2;
            out->t_interact = it[i];
        }
    int64_t upto = end;
    if (out->reached >= 2) {
        int64_t t1 = out->t_interact;
        for (size_t i = 0; i < no; i++) {
            if (o[i].ts < t1 || o[i].ts > end) continue;
            out->revenue += o[i].amount - o[i].refunded;
            if (out->reached < 3 || o[i].ts < out->t_pay) {
                out->reached = 3;
                out->t_pay = o[i].ts;
            }
        }
        upto = out->reached == 3 ? out->t_pay : t1;
    }
    size_t l = f;
    for (size_t i = 0; i < nx; i++)
        if (x[i].ts <= upto && touch_lt(&x[l], &x[i])) l = i;
    out->last = l;
}
