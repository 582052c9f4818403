#include "redis_uv.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>

typedef struct attach {
  redisAsyncContext *ac; /* NULL once hiredis let go of it */
  uv_poll_t poll;
  int events;
} attach;

static void on_poll(uv_poll_t *h, int status, int events) {
  attach *a = h->data;
  if (!a->ac) return;
  if (status < 0) {
    /* An error on the socket (a refused connect shows up here): let hiredis
     * find it. While connecting, the write side checks SO_ERROR and calls
     * the connect callback; once connected, the read side fails and
     * disconnects. Either may free the context (cleanup clears a->ac). */
    if (!(a->ac->c.flags & REDIS_CONNECTED))
      redisAsyncHandleWrite(a->ac);
    else
      redisAsyncHandleRead(a->ac);
    return;
  }
  if (events & UV_READABLE) redisAsyncHandleRead(a->ac);
  if (a->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(a->ac);
}

static void update(attach *a, int add, int del) {
  a->events = (a->events | add) & ~del;
  if (a->events)
    uv_poll_start(&a->poll, a->events, on_poll);
  else
    uv_poll_stop(&a->poll);
}

static void add_read(void *p) { update(p, UV_READABLE, 0); }
static void del_read(void *p) { update(p, 0, UV_READABLE); }
static void add_write(void *p) { update(p, UV_WRITABLE, 0); }
static void del_write(void *p) { update(p, 0, UV_WRITABLE); }

static void on_closed(uv_handle_t *h) { free(h->data); }

static void cleanup(void *p) {
  attach *a = p;
  a->ac = NULL; /* hiredis is freeing the context */
  uv_close((uv_handle_t *)&a->poll, on_closed);
}

int pt_redis_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  if (ac->ev.data) return REDIS_ERR;
  attach *a = calloc(1, sizeof(*a));
  if (!a) return REDIS_ERR;
  if (uv_poll_init(loop, &a->poll, ac->c.fd) != 0) {
    free(a);
    return REDIS_ERR;
  }
  a->ac = ac;
  a->poll.data = a;
  ac->ev.data = a;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return REDIS_OK;
}
