/*
 * cohort.c — local day labels <-> day numbers (see cohort.h).
 *
 * Day numbers use Howard Hinnant's days_from_civil / civil_from_days
 * (proleptic Gregorian), the same formulas the flush script and the
 * oracle use, so a label survives the round trip for any year 0..9999.
 * Everything here is a pure function of its inputs: no zone, no clock.
 */
#include "model/cohort.h"

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
