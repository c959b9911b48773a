/*
 * redis_url.c — redis.url → host and port, or a unix socket path; user,
 * password and database.
 *
 * Accepted: redis://[user[:password]@]host[:port][/db] (host may be
 * [IPv6]; port 1..65535, default 6379) and unix:///absolute/path.
 * rediss:// (TLS), query strings and fragments are refused. User and
 * password are percent-decoded; a decoded NUL is refused; the last '@'
 * ends the user info, so an unencoded '@' in a password still parses.
 * Invariant: no error message ever echoes the URL or a part of it (it may
 * hold a password); conf.c masks it the same way when printing.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "base/err.h"
#include "base/hex.h"
#include "conf/conf.h"
#include "conf/conf_int.h"

/* Percent-decodes s[0..n) into out (cap bytes). */
static int pct_decode(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            if (i + 2 >= n) return -1;
            int hi = fd_hexval((unsigned char)s[i + 1]), lo = fd_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            ch = hi * 16 + lo;
            i += 2;
            if (ch == 0) return -1;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

int fd_redis_url_parse(const char *url, fd_redis_addr_t *a, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    if (url == NULL || url[0] == '\0') return fd_fail(err, errlen, "redis.url: must not be empty");
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;
        size_t n = strlen(path);
        if (path[0] != '/' || n < 2)
            return fd_fail(err, errlen,
                           "redis.url: unix:// wants an absolute socket path "
                           "(unix:///path/to.sock)");
        if (n >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return fd_fail(err, errlen, "redis.url: the socket path is longer than %zu bytes",
                           sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        memcpy(a->path, path, n + 1);
        return 0;
    }
    if (strncmp(url, "rediss://", 9) == 0)
        return fd_fail(err, errlen, "redis.url: rediss:// (TLS) is not supported by hiredis 0.14");
    if (strncmp(url, "redis://", 8) != 0)
        return fd_fail(err, errlen, "redis.url: must start with redis:// or unix://");
    const char *rest = url + 8;
    /* The last '@' ends the user info, so an unencoded '@' or '/' in a
     * password still parses (and is never echoed). */
    const char *at = strrchr(rest, '@');
    const char *hp = rest;
    if (at != NULL) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        const char *uend = colon ? colon : at;
        if (pct_decode(rest, (size_t)(uend - rest), a->user, sizeof a->user) != 0)
            return fd_fail(err, errlen, "redis.url: bad user name (too long or bad %%-encoding)");
        if (colon != NULL &&
            pct_decode(colon + 1, (size_t)(at - colon - 1), a->password, sizeof a->password) != 0)
            return fd_fail(err, errlen, "redis.url: bad password (too long or bad %%-encoding)");
        hp = at + 1;
    }
    size_t hlen = strcspn(hp, "/?#");
    if (hp[hlen] == '?' || hp[hlen] == '#')
        return fd_fail(err, errlen, "redis.url: query and fragment are not supported");
    const char *hend = hp + hlen, *port = NULL, *host = hp;
    size_t nhost;
    if (hp[0] == '[') { /* [IPv6]:port */
        const char *rb = memchr(hp, ']', hlen);
        if (rb == NULL) return fd_fail(err, errlen, "redis.url: unterminated [ in the host");
        host = hp + 1;
        nhost = (size_t)(rb - host);
        if (rb + 1 < hend) {
            if (rb[1] != ':') return fd_fail(err, errlen, "redis.url: want [address]:port");
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', hlen);
        nhost = colon ? (size_t)(colon - hp) : hlen;
        if (colon != NULL) port = colon + 1;
    }
    if (nhost == 0) return fd_fail(err, errlen, "redis.url: missing host");
    if (nhost >= sizeof a->host)
        return fd_fail(err, errlen, "redis.url: host longer than %zu bytes", sizeof a->host - 1);
    for (size_t i = 0; i < nhost; i++)
        if (!isgraph((unsigned char)host[i]) || host[i] == '@' || host[i] == '[' ||
            host[i] == ']' || (host != hp + 1 && host[i] == ':'))
            return fd_fail(err, errlen, "redis.url: bad character in the host");
    memcpy(a->host, host, nhost);
    a->host[nhost] = '\0';
    a->port = 6379;
    if (port != NULL) {
        char pbuf[8];
        size_t pn = (size_t)(hend - port);
        int64_t p;
        if (pn == 0 || pn >= sizeof pbuf)
            return fd_fail(err, errlen, "redis.url: the port must be 1..65535");
        memcpy(pbuf, port, pn);
        pbuf[pn] = '\0';
        if (pbuf[0] == '-' || fd_conf_parse_int(pbuf, &p) != 0 || p < 1 || p > 65535)
            return fd_fail(err, errlen, "redis.url: the port must be 1..65535");
        a->port = (int)p;
    }
    if (*hend == '/' && hend[1] != '\0') {
        int64_t db;
        if (hend[1] == '-' || strlen(hend + 1) > 9 || fd_conf_parse_int(hend + 1, &db) != 0)
            return fd_fail(err, errlen, "redis.url: the database (after /) must be a number");
        a->db = (int)db;
    }
    return 0;
}
