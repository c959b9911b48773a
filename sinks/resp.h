/*
 * resp.h — Redis commands written as RESP straight into one growing buffer.
 *
 * hiredis's redisFormatCommandArgv costs ~1.5 µs a command (it measures,
 * allocates and copies each argument into an sds); a flush sends thousands
 * of arguments, so the sink writes the protocol itself: a command is
 * begun with fd_resp_begin(), its arguments appended (integers printed
 * without snprintf), and fd_resp_end() writes the "*N" header in front of
 * them, in room reserved at begin, so no argument is counted twice or
 * moved. The finished command (fd_resp_cmd) is handed to hiredis with
 * redisAsyncFormattedCommand, which copies it into its output buffer; the
 * buffer is then reused for the next command (fd_resp_reset keeps the
 * allocation). Memory: the largest flush's encoding, kept between flushes.
 *
 * Errors are sticky: after a failed allocation every call is a no-op and
 * fd_resp_end returns -ENOMEM, so an encoder checks once at the end.
 */
#ifndef FD_RESP_H
#define FD_RESP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *p;
    size_t len, cap;
    size_t start; /* where the current command's reserved header room begins */
    size_t hdr; /* its header's first byte, once ended */
    int64_t nargs; /* arguments of the current command so far */
    int oom;
} fd_resp_t;

#define FD_RESP_HDR_ROOM 24 /* "*" + up to 20 digits + "\r\n" */

void fd_resp_reset(fd_resp_t *r); /* empties, keeps the allocation */
void fd_resp_release(fd_resp_t *r); /* frees; r is empty and usable */
void fd_resp_begin(fd_resp_t *r);
void fd_resp_bulk(fd_resp_t *r, const char *s, size_t n);
void fd_resp_str(fd_resp_t *r, const char *s); /* NUL-terminated */
/* One argument made of two parts (a field name and its prefix). */
void fd_resp_bulk2(fd_resp_t *r, const char *a, size_t an, const char *b, size_t bn);
void fd_resp_int(fd_resp_t *r, int64_t v); /* as a bulk string of its decimal text */
/* Ends the command begun last: 0, or -ENOMEM (nothing usable). */
int fd_resp_end(fd_resp_t *r);
/* The last ended command (valid until the next call on r). */
static inline const char *fd_resp_cmd(const fd_resp_t *r) { return r->p + r->hdr; }
static inline size_t fd_resp_cmdlen(const fd_resp_t *r) { return r->len - r->hdr; }

/* Writes v's decimal text at p (room for 20 bytes); returns its length. */
size_t fd_resp_itoa(char *p, int64_t v);

#endif
