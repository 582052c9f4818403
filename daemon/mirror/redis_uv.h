/* hiredis' async API on our libuv loop. Debian's hiredis/adapters/libuv.h
 * (0.14.1) drops poll errors, so a refused connect never reaches the
 * connect callback and the context leaks; this attachment hands every poll
 * error to hiredis (which then reports it through its callbacks). */
#ifndef PT_REDIS_UV_H
#define PT_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* REDIS_OK, or REDIS_ERR (the caller frees ac). */
int pt_redis_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
