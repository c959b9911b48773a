/*
 * resp.c — see resp.h. Integers are printed two digits at a time from a
 * table (the figure hiredis and snprintf spend is mostly parsing a format).
 */
#include "sinks/resp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char DIGITS2[] = "00010203040506070809"
                              "10111213141516171819"
                              "20212223242526272829"
                              "30313233343536373839"
                              "40414243444546474849"
                              "50515253545556575859"
                              "60616263646566676869"
                              "70717273747576777879"
                              "80818283848586878889"
                              "90919293949596979899";

size_t fd_resp_itoa(char *p, int64_t v) {
    char tmp[24];
    char *e = tmp + sizeof tmp, *q = e;
    /* the magnitude as unsigned, so INT64_MIN is no overflow */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--q = DIGITS2[d + 1];
        *--q = DIGITS2[d];
    }
    if (u >= 10) {
        unsigned d = (unsigned)u * 2;
        *--q = DIGITS2[d + 1];
        *--q = DIGITS2[d];
    } else {
        *--q = (char)('0' + u);
    }
    if (v < 0) *--q = '-';
    size_t n = (size_t)(e - q);
    memcpy(p, q, n);
    return n;
}

static int grow(fd_resp_t *r, size_t need) {
    if (r->oom) return -1;
    if (r->len + need <= r->cap) return 0;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + need) cap *= 2;
    char *p = realloc(r->p, cap);
    if (!p) {
        r->oom = 1;
        return -1;
    }
    r->p = p;
    r->cap = cap;
    return 0;
}

void fd_resp_reset(fd_resp_t *r) {
    r->len = r->start = r->hdr = 0;
    r->nargs = 0;
    r->oom = 0;
}

void fd_resp_release(fd_resp_t *r) {
    free(r->p);
    memset(r, 0, sizeof *r);
}

void fd_resp_begin(fd_resp_t *r) {
    r->len = 0; /* one command at a time: the previous one has been handed over */
    r->nargs = 0;
    if (grow(r, FD_RESP_HDR_ROOM) < 0) return;
    r->start = r->len;
    r->len += FD_RESP_HDR_ROOM;
}

void fd_resp_bulk(fd_resp_t *r, const char *s, size_t n) {
    if (grow(r, n + 26) < 0) return; /* "$" + 20 digits + 2 CRLF */
    char *p = r->p + r->len;
    *p++ = '$';
    p += fd_resp_itoa(p, (int64_t)n);
    *p++ = '\r';
    *p++ = '\n';
    if (n) memcpy(p, s, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    r->len = (size_t)(p - r->p);
    r->nargs++;
}

void fd_resp_bulk2(fd_resp_t *r, const char *a, size_t an, const char *b, size_t bn) {
    if (grow(r, an + bn + 26) < 0) return;
    char *p = r->p + r->len;
    *p++ = '$';
    p += fd_resp_itoa(p, (int64_t)(an + bn));
    *p++ = '\r';
    *p++ = '\n';
    if (an) memcpy(p, a, an);
    p += an;
    if (bn) memcpy(p, b, bn);
    p += bn;
    *p++ = '\r';
    *p++ = '\n';
    r->len = (size_t)(p - r->p);
    r->nargs++;
}

void fd_resp_str(fd_resp_t *r, const char *s) { fd_resp_bulk(r, s, strlen(s)); }

void fd_resp_int(fd_resp_t *r, int64_t v) {
    char d[24];
    size_t n = fd_resp_itoa(d, v);
    if (grow(r, n + 8) < 0) return;
    char *p = r->p + r->len;
    *p++ = '$';
    if (n >= 10) *p++ = (char)('0' + n / 10);
    *p++ = (char)('0' + n % 10);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, d, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    r->len = (size_t)(p - r->p);
    r->nargs++;
}

int fd_resp_end(fd_resp_t *r) {
    if (r->oom) return -ENOMEM;
    char h[FD_RESP_HDR_ROOM];
    size_t n = 0;
    h[n++] = '*';
    n += fd_resp_itoa(h + n, r->nargs);
    h[n++] = '\r';
    h[n++] = '\n';
    /* right-aligned against the first argument */
    r->hdr = r->start + FD_RESP_HDR_ROOM - n;
    memcpy(r->p + r->hdr, h, n);
    return 0;
}
