#include "redis_uv.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>

typedef struct attach {
  redisAsyncContext *ac; /* NULL once hiredis let go of it */
  uv_poll_t poll;
  uv_idle_t idle; /* active while output waits for pt_redis_flush */
  int events;     /* what the poll watches */
  bool flushing;  /* inside a write: hiredis asking for writability means the socket is full */
  int open;       /* handles not closed yet */
} attach;

static void on_poll(uv_poll_t *h, int status, int events);

static void update(attach *a, int add, int del) {
  int ev = (a->events | add) & ~del;
  if (ev == a->events) return; /* libuv re-registers the fd on every start */
  a->events = ev;
  if (ev)
    uv_poll_start(&a->poll, ev, on_poll);
  else
    uv_poll_stop(&a->poll);
}

static void write_now(attach *a) {
  uv_idle_stop(&a->idle);
  a->flushing = true;
  redisAsyncHandleWrite(a->ac); /* may free the context (cleanup clears a->ac) */
  a->flushing = false;
}

/* hiredis reads 16 KiB at a time. A reply bigger than that (a recovery's
 * journal batch, a snapshot chunk) is read on in the same wake-up while the
 * socket has more, up to READ_BURST reads: one read per loop turn left a
 * 1 MiB reply spread over 64 turns, each also serving every client, and
 * under a flood of clients a recovery's lease renewals, queued behind it,
 * came back too late (the lease lapsed, the rebuild began again). */
#define READ_BURST 64

static void read_burst(attach *a) {
  for (int i = 0; a->ac && i < READ_BURST; i++) {
    redisAsyncHandleRead(a->ac); /* may free the context (cleanup clears a->ac) */
    if (!a->ac) break;
    /* only inside a reply: an acknowledgement, read whole, costs no ioctl */
    const redisReader *r = a->ac->c.reader;
    int more = 0;
    if ((r->ridx < 0 && r->pos >= r->len) || ioctl(a->ac->c.fd, FIONREAD, &more) != 0 || more <= 0) break;
  }
}

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
  if (events & UV_READABLE) read_burst(a);
  if (a->ac && (events & UV_WRITABLE)) write_now(a);
}

static void on_idle(uv_idle_t *h) {
  attach *a = h->data;
  if (a->ac) write_now(a);
}

static void add_read(void *p) { update(p, UV_READABLE, 0); }
static void del_read(void *p) { update(p, 0, UV_READABLE); }
static void del_write(void *p) {
  attach *a = p;
  uv_idle_stop(&a->idle);
  update(a, 0, UV_WRITABLE);
}

/* hiredis has output. A connect in progress, or a socket that took less
 * than everything, waits for writability; otherwise the output is written
 * at the owner's pt_redis_flush, or by the idle handle (which also keeps
 * the loop from blocking before it ran). */
static void add_write(void *p) {
  attach *a = p;
  if (a->flushing || !a->ac || !(a->ac->c.flags & REDIS_CONNECTED))
    update(a, UV_WRITABLE, 0);
  else if (!(a->events & UV_WRITABLE))
    uv_idle_start(&a->idle, on_idle);
}

void pt_redis_flush(redisAsyncContext *ac) {
  attach *a = ac ? ac->ev.data : NULL;
  if (!a || !a->ac || !uv_is_active((uv_handle_t *)&a->idle)) return;
  /* hiredis' plain write: an error is only recorded in the context, and
   * the idle handle, still active, lets hiredis act on it (disconnect,
   * callbacks) outside the caller's stack; a socket that took less than
   * everything is left to the idle handle too, which then watches it */
  int done = 0;
  if (redisBufferWrite(&ac->c, &done) == REDIS_OK && done) uv_idle_stop(&a->idle);
}

static void on_closed(uv_handle_t *h) {
  attach *a = h->data;
  if (--a->open == 0) free(a);
}

static void cleanup(void *p) {
  attach *a = p;
  a->ac = NULL; /* hiredis is freeing the context */
  uv_close((uv_handle_t *)&a->poll, on_closed);
  uv_close((uv_handle_t *)&a->idle, on_closed);
}

int pt_redis_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  if (ac->ev.data) return REDIS_ERR;
  attach *a = calloc(1, sizeof(*a));
  if (!a) return REDIS_ERR;
  if (uv_poll_init(loop, &a->poll, ac->c.fd) != 0) {
    free(a);
    return REDIS_ERR;
  }
  uv_idle_init(loop, &a->idle);
  a->open = 2;
  a->ac = ac;
  a->poll.data = a->idle.data = a;
  ac->ev.data = a;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return REDIS_OK;
}
