/*
 * err.c — fd_fail() and fd_err_name() (see the header for the bands).
 */
#include "base/err.h"

#include <errno.h>
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

const char *fd_err_name(int rc) {
    /* the band constants are spelled out here rather than included from the
     * modules above: base/ includes nothing from above it */
    switch (rc) {
    case 0: return "OK";
    case -1: return "EPERM"; /* also fd_fail()'s "see the message" */
    case -ENOENT: return "ENOENT";
    case -EINTR: return "EINTR";
    case -EIO: return "EIO";
    case -EAGAIN: return "EAGAIN";
    case -ENOMEM: return "ENOMEM";
    case -EBUSY: return "EBUSY";
    case -EINVAL: return "EINVAL";
    case -ENOSPC: return "ENOSPC";
    case -EPIPE: return "EPIPE";
    case -ERANGE: return "ERANGE";
    case -ENOBUFS: return "ENOBUFS";
    case -ENOTCONN: return "ENOTCONN";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -ECONNREFUSED: return "ECONNREFUSED";
    case -ECANCELED: return "ECANCELED";
    case FD_ERR_SINK - 1: return "FD_SINK_EFENCED";
    case FD_ERR_SINK - 2: return "FD_SINK_EFAILED";
    case FD_ERR_SINK - 3: return "FD_SINK_ESCRIPT";
    case FD_ERR_DLQ - 1: return "FD_DLQ_EFAILED";
    case FD_ERR_ALERTS - 1: return "FD_ALERTS_EFAILED";
    case FD_ERR_ALERTS - 2: return "FD_ALERTS_EFENCED";
    default: return "E?";
    }
}
