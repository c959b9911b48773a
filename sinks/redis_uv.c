/*
 * redis_uv.c — see redis_uv.h. p->events is the mask the poll handle is
 * started with (0: stopped); set_events is the only place that touches the
 * handle, and does nothing when the mask is unchanged.
 */
#include "sinks/redis_uv.h"

#include <stdlib.h>

typedef struct {
    redisAsyncContext *ac;
    uv_poll_t handle;
    int events;
} uvev_t;

static void on_poll(uv_poll_t *h, int status, int events) {
    uvev_t *p = h->data;
    if (status != 0) return; /* as hiredis's adapter: the read or write that follows reports it */
    if (p->ac && (events & UV_READABLE)) redisAsyncHandleRead(p->ac);
    /* the read may have freed the context (its cleanup clears p->ac) */
    if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void set_events(uvev_t *p, int events) {
    if (events == p->events) return;
    p->events = events;
    if (events) uv_poll_start(&p->handle, events, on_poll);
    else uv_poll_stop(&p->handle);
}

static void add_read(void *d) {
    uvev_t *p = d;
    set_events(p, p->events | UV_READABLE);
}
static void del_read(void *d) {
    uvev_t *p = d;
    set_events(p, p->events & ~UV_READABLE);
}
static void add_write(void *d) {
    uvev_t *p = d;
    set_events(p, p->events | UV_WRITABLE);
}
static void del_write(void *d) {
    uvev_t *p = d;
    set_events(p, p->events & ~UV_WRITABLE);
}

static void on_close(uv_handle_t *h) { free(h->data); }

static void cleanup(void *d) {
    uvev_t *p = d;
    p->ac = NULL; /* the context is going away; a poll callback already queued must not use it */
    uv_close((uv_handle_t *)&p->handle, on_close);
}

int fd_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    if (ac->ev.data != NULL) return REDIS_ERR;
    uvev_t *p = calloc(1, sizeof *p);
    if (!p) return REDIS_ERR;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->handle.data = p;
    p->ac = ac;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}
