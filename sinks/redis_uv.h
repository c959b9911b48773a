/*
 * redis_uv.h — hiredis's async context driven by a libuv poll handle.
 *
 * Same contract as hiredis's adapters/libuv.h (redisLibuvAttach), with one
 * difference that matters on the hot path: hiredis asks for write interest
 * on every command it queues (addWrite), and the stock adapter answers each
 * time with uv_poll_start, an epoll_ctl syscall per command (10% of
 * funneld's main thread when a flush queues thousands of PFADDs). Here the
 * poll is (re)started only when the wanted event mask changes, so a flush
 * costs one epoll_ctl to arm writing and one to disarm it once the output
 * buffer is drained.
 */
#ifndef FD_REDIS_UV_H
#define FD_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* REDIS_OK, or REDIS_ERR (already attached, out of memory, bad fd). The
 * poll handle is closed by hiredis's cleanup when the context is freed. */
int fd_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
