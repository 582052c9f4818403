/* hiredis' async API on our libuv loop. Debian's hiredis/adapters/libuv.h
 * (0.14.1) drops poll errors, so a refused connect never reaches the
 * connect callback and the context leaks; this attachment hands every poll
 * error to hiredis (which then reports it through its callbacks).
 *
 * Output is written without watching for writability (which would cost two
 * epoll_ctl calls and a loop turn per command on a socket that is almost
 * always writable): a command queued waits for pt_redis_flush, which the
 * owner calls where it queued commands outside hiredis' callbacks, or else
 * for an idle handle that writes before the loop next blocks. Only a socket
 * that took less than everything is watched until it takes the rest. */
#ifndef PT_REDIS_UV_H
#define PT_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* REDIS_OK, or REDIS_ERR (the caller frees ac). */
int pt_redis_attach(redisAsyncContext *ac, uv_loop_t *loop);
/* Writes what hiredis has queued, now. Runs no hiredis callback (a failed
 * write is acted on later, from the loop), so it may be called anywhere,
 * in the middle of the owner's work too; ac may be NULL. */
void pt_redis_flush(redisAsyncContext *ac);

#endif
