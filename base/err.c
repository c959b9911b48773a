/*
 * err.c — fd_fail() (see the header for the result-code bands).
 */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

int fd_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
