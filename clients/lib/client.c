/* libpintuan: connection, framing, failover (the builders and calls are
 * in requests.c).
 *
 * Every request sent and not answered yet stays in `out` as its encoded
 * frame, in order, with its correlation id in `pend`: replies come back in
 * request order, so the reply to pend's head releases the oldest frame.
 * That queue is what failover re-sends, byte for byte (same correlation id,
 * same request_id), after a reconnect or a NOT_LEADER redirect.
 *
 * Why one file of ~600 lines: the send queue, the reader and failover
 * share one invariant (pend and out in step); kept together so that every
 * path that changes one is seen next to the others. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "client_int.h"
#include "clock.h"
#include "frame.h"
#include "pintuan.h"

#define MAX_REPLY (64u << 20)  /* a longer reply frame is a broken stream */
#define BACKOFF_FIRST_MS 10    /* failover: the pause before a second try... */
#define BACKOFF_MAX_MS 500     /* ...doubling up to this */
#define ERR_MAX (PT_HOST_MAX + 256)

typedef struct pending {
  uint64_t id;  /* correlation id */
  size_t len;   /* its frame's bytes in out, prefix included */
} pending;

/* A Hello or Subscribe, encoded: replayed on every new connection. */
typedef struct saved {
  uint8_t *msg;
  size_t len;
  uint64_t id; /* while a candidate: the request waiting for its OK */
} saved;

struct pintuan_client {
  int fd;           /* -1: not connected */
  pintuan__tls *tls; /* NULL: plaintext */
  SSL *ssl;         /* the connection's TLS session (with tls) */
  int timeout_ms;   /* per wait on the daemon; < 0: forever */
  pt_addr addrs[PINTUAN_MAX_ADDRS];
  int naddrs;
  int cur;          /* addrs[cur] is connected */
  int leader;       /* the address of the list a NOT_LEADER named (only those are followed) */
  char peer[PT_HOST_MAX + 16];
  /* failover policy, and what it did; a run of attempts (reconnects and
   * redirects) is bounded as a whole until the daemon answers again */
  int max_attempts, max_ms;
  int run;
  int64_t run_start_ms;
  pintuan_stats stats;
  /* the session a new connection gets back: the last Hello and Subscribe
   * the daemon answered OK (cand_*: sent, not answered yet) */
  saved hello, subscribe, cand_hello, cand_subscribe;
  /* requests: frames [out_head, out_len) unanswered, [out_sent, out_len)
   * not written yet */
  uint64_t next_id;
  uint8_t *out;
  size_t out_head, out_sent, out_len, out_cap;
  pending *pend; /* ring */
  size_t pend_head, pend_n, pend_cap;
  /* replies: bytes [in_off, in_len) received, not decoded yet */
  uint8_t *in;
  size_t in_len, in_off, in_cap;
  char err[ERR_MAX];
};

static int fail(pintuan_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pintuan_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  return -1;
}

int pintuan__fail(pintuan_client *c, const char *msg) { return fail(c, "%s", msg); }

const char *pintuan_error(const pintuan_client *c) { return c->err; }
void pintuan_set_timeout(pintuan_client *c, int ms) { c->timeout_ms = ms; }
int pintuan_fd(const pintuan_client *c) { return c->fd; }
const char *pintuan_peer(const pintuan_client *c) { return c->fd >= 0 ? c->peer : ""; }
void pintuan_get_stats(const pintuan_client *c, pintuan_stats *out) { *out = c->stats; }
void pintuan_set_failover(pintuan_client *c, int max_attempts, int max_ms) {
  c->max_attempts = max_attempts > 0 ? max_attempts : 0;
  c->max_ms = max_ms;
}

static int reserve_buf(uint8_t **p, size_t *cap, size_t need) {
  if (*cap >= need) return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  uint8_t *q = realloc(*p, n);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

/* ---- one connection ---- */

static void disconnect(pintuan_client *c) {
  if (c->ssl) pintuan__tls_end(c->ssl);
  c->ssl = NULL;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->in_len = c->in_off = 0; /* what the old connection still had to say is void */
}

/* A transport failure: the connection is closed, the reason kept. */
static int lost(pintuan_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lost(pintuan_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  disconnect(c);
  return -1;
}

/* Connects to a (every address its name resolves to, in turn) within
 * timeout_ms; 0, or -1 with the reason in err. */
static int connect_to(pintuan_client *c, const pt_addr *a, int timeout_ms, char *err,
                      size_t errlen) {
  struct sockaddr_storage ss[8];
  char name[PT_HOST_MAX + 16];
  pt_addr_str(a, name, sizeof name);
  int n = pt_addr_resolve(a, false, ss, 8, err, errlen);
  if (n < 0) return -1;
  snprintf(err, errlen, "connect %s: no address", name);
  for (int i = 0; i < n; i++) {
    socklen_t sl = ss[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(struct sockaddr_in);
    int fd = socket(ss[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      snprintf(err, errlen, "connect %s: socket: %s", name, strerror(errno));
      continue;
    }
    int so = 0;
    if (connect(fd, (struct sockaddr *)&ss[i], sl) < 0) {
      so = errno;
      if (so == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r;
        while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
        }
        if (r == 0) {
          snprintf(err, errlen, "connect %s: timed out after %d ms", name, timeout_ms);
          close(fd);
          continue;
        }
        socklen_t ol = sizeof so;
        so = r < 0 ? errno : getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &ol) ? errno : so;
      }
    }
    if (so) {
      snprintf(err, errlen, "connect %s: %s", name, strerror(so));
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->tls && !(c->ssl = pintuan__tls_start(c->tls, fd, a->host, timeout_ms, err, errlen))) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->in_len = c->in_off = 0;
    pt_sockaddr_str(&ss[i], c->peer, sizeof c->peer);
    return 0;
  }
  return -1;
}

/* How long to wait for the daemon: the timeout, and during a failover run
 * no longer than what is left of its time, so that a call that fails takes
 * at most its timeout and the failover time. */
static int wait_ms(const pintuan_client *c) {
  if (c->run == 0 || c->max_ms <= 0) return c->timeout_ms;
  int64_t left = c->run_start_ms + c->max_ms - pt_mono_ns() / 1000000;
  if (left < 1) left = 1;
  return c->timeout_ms >= 0 && c->timeout_ms < left ? c->timeout_ms : (int)left;
}

/* Waits for ev on the connection; 0, or -1 (closed) on a timeout. */
static int wait_fd(pintuan_client *c, short ev) {
  if (c->ssl && pintuan__tls_pending(c->ssl)) return 0;
  struct pollfd p = {.fd = c->fd, .events = ev};
  for (;;) {
    int ms = wait_ms(c);
    int n = poll(&p, 1, ms);
    if (n > 0) return 0;
    if (n == 0) return lost(c, "timed out after %d ms", ms);
    if (errno != EINTR) return lost(c, "poll: %s", strerror(errno));
  }
}

/* recv and send, through TLS when the client speaks it; EAGAIN leaves in
 * *want what to wait for. */
static ssize_t io_recv(pintuan_client *c, void *buf, size_t n, short *want) {
  if (c->ssl) return pintuan__tls_recv(c->ssl, buf, n, want);
  *want = POLLIN;
  return recv(c->fd, buf, n, 0);
}
static ssize_t io_send(pintuan_client *c, const void *buf, size_t n, short *want) {
  if (c->ssl) return pintuan__tls_send(c->ssl, buf, n, want);
  *want = POLLOUT;
  return send(c->fd, buf, n, MSG_NOSIGNAL);
}

/* Reads what the daemon sent into `in` (waiting up to the timeout); 0, or
 * -1 with the connection closed. */
static int read_more(pintuan_client *c) {
  if (c->in_off && c->in_off == c->in_len) c->in_off = c->in_len = 0;
  if (c->in_off > c->in_cap / 2) {
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  if (reserve_buf(&c->in, &c->in_cap, c->in_len + 65536)) return fail(c, "out of memory");
  for (;;) {
    short want;
    ssize_t r = io_recv(c, c->in + c->in_len, c->in_cap - c->in_len, &want);
    if (r > 0) {
      c->in_len += (size_t)r;
      return 0;
    }
    if (r == 0) return lost(c, "connection closed by the daemon");
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(c, want)) return -1;
    } else if (errno != EINTR) {
      return lost(c, "recv: %s", strerror(errno));
    }
  }
}

/* The next whole frame in `in`: 1 (msg, len; consumed), 0 (read more), or
 * -1 (a broken stream: closed). */
static int next_frame(pintuan_client *c, const uint8_t **msg, size_t *len) {
  if (!c->in) return 0; /* nothing read yet (and no offset from NULL) */
  pt_frame_status st = pt_frame_next(c->in + c->in_off, c->in_len - c->in_off, MAX_REPLY, msg, len);
  if (st == PT_FRAME_TOO_BIG) {
    if (c->in_len - c->in_off >= 4 && !memcmp(c->in + c->in_off, "HTTP", 4))
      return lost(c, "the peer answered in HTTP: this is an HTTP port (pintuand's admin port?), "
                     "not pintuand's protocol port");
    if (!c->ssl && c->in_len - c->in_off >= 2 && c->in[c->in_off] == 0x15 && c->in[c->in_off + 1] == 0x03)
      return lost(c, "the peer answered with a TLS alert: it speaks TLS (connect with TLS: "
                     "pintuan_connect_tls, the CLI's --tls-ca)");
    return lost(c, "reply frame of %zu bytes is too large", *len);
  }
  if (st == PT_FRAME_MORE) {
    if (c->in_len - c->in_off >= PT_FRAME_HEADER &&
        reserve_buf(&c->in, &c->in_cap,
                    c->in_off + PT_FRAME_HEADER + pt_be32_get(c->in + c->in_off)))
      return fail(c, "out of memory");
    return 0;
  }
  c->in_off += PT_FRAME_HEADER + *len;
  return 1;
}

/* Writes out[from, to) (to == out_len: every queued request). While the
 * daemon does not read, reads its replies meanwhile so that neither side's
 * buffers deadlock on a long pipeline. 0, or -1 with the connection closed. */
static int write_out(pintuan_client *c, const uint8_t *p, size_t n, size_t *done) {
  while (*done < n) {
    short want;
    ssize_t w = io_send(c, p + *done, n - *done, &want);
    if (w > 0) {
      *done += (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (reserve_buf(&c->in, &c->in_cap, c->in_len + 65536)) return fail(c, "out of memory");
      short rwant;
      ssize_t r = io_recv(c, c->in + c->in_len, c->in_cap - c->in_len, &rwant);
      if (r > 0) {
        c->in_len += (size_t)r;
        continue;
      }
      if (r == 0) return lost(c, "connection closed by the daemon");
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return lost(c, "recv: %s", strerror(errno));
      struct pollfd pf = {.fd = c->fd, .events = (short)(want | rwant)};
      int ms = wait_ms(c);
      int k = poll(&pf, 1, ms);
      if (k == 0) return lost(c, "timed out writing after %d ms", ms);
      if (k < 0 && errno != EINTR) return lost(c, "poll: %s", strerror(errno));
    } else if (w < 0 && errno != EINTR) {
      return lost(c, "send: %s", strerror(errno));
    }
  }
  return 0;
}

/* ---- the session, and failover ---- */

static void saved_free(saved *s) {
  free(s->msg);
  *s = (saved){0};
}

/* Keeps a copy of an encoded Hello or Subscribe as a candidate. */
static void saved_set(saved *s, const uint8_t *msg, size_t len, uint64_t id) {
  uint8_t *m = malloc(len ? len : 1);
  if (!m) return; /* not replayed: the session is best effort */
  memcpy(m, msg, len);
  saved_free(s);
  *s = (saved){m, len, id};
}

/* A NOT_LEADER's primary, if it is one of the client's addresses: true,
 * c->leader says which. Any other address is not followed (a daemon, or
 * whoever wrote to its Redis, does not get to send this client, and its
 * key, elsewhere): counted, and failover goes on through the list. */
static bool follow(pintuan_client *c, const pintuan_response *r) {
  pt_addr a;
  char err[160];
  if (!r->leader || !*r->leader || pt_addr_parse(r->leader, PINTUAN_DEFAULT_PORT, &a, err, sizeof err))
    return false;
  for (int i = 0; i < c->naddrs; i++)
    if (c->addrs[i].port == a.port && !strcasecmp(c->addrs[i].host, a.host)) return c->leader = i, true;
  /* the same address written another way ("localhost" for 127.0.0.1) */
  struct sockaddr_storage named[8], mine[8];
  int n = pt_addr_resolve(&a, false, named, 8, err, sizeof err);
  for (int i = 0; i < c->naddrs && n > 0; i++) {
    if (c->addrs[i].port != a.port) continue;
    int m = pt_addr_resolve(&c->addrs[i], false, mine, 8, err, sizeof err);
    for (int x = 0; x < n; x++)
      for (int y = 0; y < m; y++) {
        char p[64], q[64];
        if (!strcmp(pt_sockaddr_str(&named[x], p, sizeof p), pt_sockaddr_str(&mine[y], q, sizeof q)))
          return c->leader = i, true;
      }
  }
  c->stats.strangers++;
  return false;
}

/* One request of the session on a new connection, answered before anything
 * else: 0 done (whatever the daemon said), 1 NOT_LEADER naming an address
 * of the list (c->leader), 2 NOT_LEADER naming another, -1 failed (closed). */
static int replay_saved(pintuan_client *c, const saved *s) {
  pintuan_request *q = pintuan__v1__request__unpack(NULL, s->len, s->msg);
  if (!q) return 0;
  q->has_id = 1, q->id = ++c->next_id;
  uint64_t id = q->id;
  size_t n = protobuf_c_message_get_packed_size(&q->base), done = 0;
  uint8_t *f = malloc(PT_FRAME_HEADER + n);
  if (!f) {
    pintuan__v1__request__free_unpacked(q, NULL);
    return fail(c, "out of memory");
  }
  pt_be32_put(f, (uint32_t)n);
  protobuf_c_message_pack(&q->base, f + PT_FRAME_HEADER);
  pintuan__v1__request__free_unpacked(q, NULL);
  int rc = write_out(c, f, PT_FRAME_HEADER + n, &done);
  free(f);
  while (rc == 0) {
    const uint8_t *msg = NULL;
    size_t len = 0;
    int got = next_frame(c, &msg, &len);
    if (got < 0) return -1;
    if (got == 0) {
      rc = read_more(c);
      continue;
    }
    pintuan_response *r = pintuan__v1__response__unpack(NULL, len, msg);
    if (!r) return lost(c, "undecodable reply from the daemon");
    int answer = r->id == id, refused = r->id == 0 && r->status != PINTUAN__V1__STATUS__OK &&
                                         r->result_case != PINTUAN__V1__RESPONSE__RESULT_EVENT;
    if (refused) lost(c, "%s", r->detail ? r->detail : pintuan_status_str(r->status));
    if (answer && r->status == PINTUAN__V1__STATUS__NOT_LEADER) rc = follow(c, r) ? 1 : 2;
    pintuan__v1__response__free_unpacked(r, NULL);
    if (refused) return -1;
    if (answer) return rc;
  }
  return -1;
}

static void drop_pending(pintuan_client *c) {
  c->out_head = c->out_sent = c->out_len = 0;
  c->pend_head = c->pend_n = 0;
  if (c->cand_hello.msg) saved_free(&c->cand_hello);
  if (c->cand_subscribe.msg) saved_free(&c->cand_subscribe);
}

static void sleep_ms(int ms) {
  if (ms > 0) poll(NULL, 0, ms);
}

/* After a transport failure (c->fd closed, the reason in c->err) or to
 * follow a NOT_LEADER (to_leader): connects again and re-sends, in order,
 * every request not answered yet, after the session (Hello, Subscribe).
 * The next address in the list, round robin, after a pause that doubles
 * from the second attempt of a run, within the attempts and the time a run
 * may take. 0, or -1 (the requests in flight are dropped). */
static int recover(pintuan_client *c, bool to_leader) {
  char why[ERR_MAX];
  snprintf(why, sizeof why, "%s", c->err);
  int64_t now = pt_mono_ns() / 1000000;
  if (c->run == 0) c->run_start_ms = now;
  while (c->run < c->max_attempts) {
    now = pt_mono_ns() / 1000000;
    int left = c->max_ms > 0 ? (int)(c->run_start_ms + c->max_ms - now) : -1;
    if (c->max_ms > 0 && left <= 0) break;
    if (c->run > 0 && !to_leader) {
      int pause = BACKOFF_FIRST_MS << (c->run - 1 < 6 ? c->run - 1 : 6);
      if (pause > BACKOFF_MAX_MS) pause = BACKOFF_MAX_MS;
      if (left >= 0 && pause >= left) break;
      sleep_ms(pause);
      if (left >= 0) left -= pause;
    }
    c->run++;
    const pt_addr *a;
    if (to_leader) c->cur = c->leader;
    else c->cur = (c->cur + 1) % c->naddrs;
    a = &c->addrs[c->cur];
    to_leader = false;
    int t = c->timeout_ms;
    if (left >= 0 && (t < 0 || t > left)) t = left;
    char err[ERR_MAX];
    if (connect_to(c, a, t, err, sizeof err)) {
      snprintf(why, sizeof why, "%s", err);
      continue;
    }
    int rc = 0;
    if (c->hello.msg) rc = replay_saved(c, &c->hello);
    if (rc == 0 && c->subscribe.msg) rc = replay_saved(c, &c->subscribe);
    if (rc == 0) {
      size_t done = 0;
      rc = write_out(c, c->out + c->out_head, c->out_len - c->out_head, &done);
      if (rc == 0) {
        c->out_sent = c->out_len;
        c->stats.reconnects++;
        c->stats.resent += c->pend_n;
        /* nothing in flight (a subscriber, say): the session is back and
         * the run is over; else it ends when a request is answered */
        if (c->pend_n == 0) c->run = 0;
        return 0;
      }
    }
    if (rc == 1) { /* the session's Hello was answered NOT_LEADER */
      disconnect(c);
      c->stats.redirects++;
      to_leader = true;
      continue;
    }
    if (rc == 2) snprintf(c->err, sizeof c->err, "NOT_LEADER naming an address not in the list");
    snprintf(why, sizeof why, "%s", c->err);
    disconnect(c);
  }
  disconnect(c);
  drop_pending(c);
  if (c->max_attempts) fail(c, "%s (failover gave up after %d attempts)", why, c->run);
  c->run = 0;
  return -1;
}

/* ---- connection API ---- */

pintuan_client *pintuan_connect(const char *addrs, int timeout_ms, char *err, size_t errlen) {
  return pintuan_connect_tls(addrs, timeout_ms, NULL, err, errlen);
}

static void client_free(pintuan_client *c) {
  pintuan__tls_free(c->tls);
  free(c);
}

pintuan_client *pintuan_connect_tls(const char *addrs, int timeout_ms, const pintuan_tls *tls,
                                    char *err, size_t errlen) {
  pintuan_client *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (tls && !(c->tls = pintuan__tls_new(tls, err, errlen))) {
    free(c);
    return NULL;
  }
  c->fd = -1;
  c->timeout_ms = timeout_ms;
  c->max_attempts = PINTUAN_FAILOVER_ATTEMPTS;
  c->max_ms = PINTUAN_FAILOVER_MS;
  c->naddrs = pt_addr_parse_list(addrs, PINTUAN_DEFAULT_PORT, c->addrs, PINTUAN_MAX_ADDRS, err,
                                 errlen);
  if (c->naddrs < 0) {
    client_free(c);
    return NULL;
  }
  /* the first that answers; the reasons of the others, in order */
  size_t used = 0;
  err[0] = 0;
  for (int i = 0; i < c->naddrs; i++) {
    char one[ERR_MAX];
    if (connect_to(c, &c->addrs[i], timeout_ms, one, sizeof one) == 0) {
      c->cur = i;
      return c;
    }
    if (used < errlen)
      used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? "; " : "", one);
  }
  client_free(c);
  return NULL;
}

void pintuan_close(pintuan_client *c) {
  if (!c) return;
  disconnect(c);
  saved_free(&c->hello);
  saved_free(&c->subscribe);
  saved_free(&c->cand_hello);
  saved_free(&c->cand_subscribe);
  free(c->out);
  free(c->pend);
  free(c->in);
  client_free(c);
}

int pintuan_send(pintuan_client *c, pintuan_request *req) {
  if (!req->has_id || req->id == 0) req->has_id = 1, req->id = ++c->next_id;
  if (c->out_head && c->out_head > c->out_cap / 2) { /* drop the answered frames */
    memmove(c->out, c->out + c->out_head, c->out_len - c->out_head);
    c->out_len -= c->out_head, c->out_sent -= c->out_head;
    c->out_head = 0;
  }
  size_t n = protobuf_c_message_get_packed_size(&req->base);
  if (reserve_buf(&c->out, &c->out_cap, c->out_len + PT_FRAME_HEADER + n))
    return fail(c, "out of memory");
  if (c->pend_n == c->pend_cap) {
    size_t cap = c->pend_cap ? c->pend_cap * 2 : 64;
    pending *p = malloc(cap * sizeof(*p));
    if (!p) return fail(c, "out of memory");
    for (size_t i = 0; i < c->pend_n; i++) p[i] = c->pend[(c->pend_head + i) % c->pend_cap];
    free(c->pend);
    c->pend = p, c->pend_cap = cap, c->pend_head = 0;
  }
  uint8_t *f = c->out + c->out_len;
  pt_be32_put(f, (uint32_t)n);
  protobuf_c_message_pack(&req->base, f + PT_FRAME_HEADER);
  c->out_len += PT_FRAME_HEADER + n;
  c->pend[(c->pend_head + c->pend_n++) % c->pend_cap] = (pending){req->id, PT_FRAME_HEADER + n};
  if (req->op_case == PINTUAN__V1__REQUEST__OP_HELLO)
    saved_set(&c->cand_hello, f + PT_FRAME_HEADER, n, req->id);
  else if (req->op_case == PINTUAN__V1__REQUEST__OP_SUBSCRIBE)
    saved_set(&c->cand_subscribe, f + PT_FRAME_HEADER, n, req->id);
  return 0;
}

/* Failover from a transport failure, when there is something to mend. */
static int mend(pintuan_client *c) {
  if (c->pend_n == 0 && !c->hello.msg && !c->subscribe.msg) {
    drop_pending(c);
    return -1;
  }
  c->stats.failures++;
  return recover(c, false);
}

int pintuan_flush(pintuan_client *c) {
  for (;;) {
    if (c->fd < 0) {
      if (c->max_attempts == 0) return fail(c, "not connected");
      c->stats.failures++;
      if (recover(c, false)) return -1;
      continue;
    }
    size_t done = 0;
    if (write_out(c, c->out + c->out_sent, c->out_len - c->out_sent, &done) == 0) {
      c->out_sent = c->out_len;
      return 0;
    }
    c->out_sent += done;
    if (c->fd >= 0 || mend(c)) return -1; /* out of memory, or failover gave up */
  }
}

/* A reply arrived: release the request it answers. */
static void answered(pintuan_client *c, const pintuan_response *r) {
  size_t k = 0;
  while (k < c->pend_n && c->pend[(c->pend_head + k) % c->pend_cap].id != r->id) k++;
  if (k == c->pend_n) return; /* not ours to count (an event, say) */
  for (size_t i = 0; i <= k; i++) {
    c->out_head += c->pend[c->pend_head].len;
    c->pend_head = (c->pend_head + 1) % c->pend_cap;
    c->pend_n--;
  }
  if (c->out_sent < c->out_head) c->out_sent = c->out_head;
  if (c->pend_n == 0) c->out_head = c->out_sent = c->out_len = 0, c->pend_head = 0;
  saved *cands[2] = {&c->cand_hello, &c->cand_subscribe}, *keep[2] = {&c->hello, &c->subscribe};
  for (int i = 0; i < 2; i++)
    if (cands[i]->msg && cands[i]->id == r->id) {
      if (r->status == PINTUAN__V1__STATUS__OK) {
        saved_free(keep[i]);
        *keep[i] = *cands[i], *cands[i] = (saved){0};
      } else {
        saved_free(cands[i]);
      }
    }
}

/* NOT_LEADER for the oldest request in flight, while failover may still
 * act: 1 to follow it (an address of the list: c->leader), 2 to go on
 * through the list instead (it named another, and there is another to
 * try); 0: the reply is the caller's. */
static int redirected(pintuan_client *c, const pintuan_response *r) {
  if (!r->id || !c->pend_n || r->id != c->pend[c->pend_head].id ||
      r->status != PINTUAN__V1__STATUS__NOT_LEADER || c->run >= c->max_attempts)
    return 0;
  if (follow(c, r)) return 1;
  return c->naddrs > 1 ? 2 : 0;
}

int pintuan_recv(pintuan_client *c, pintuan_response **out) {
  *out = NULL;
  for (;;) {
    if (c->fd < 0) {
      if (mend(c)) return -1;
      continue;
    }
    const uint8_t *msg = NULL;
    size_t len = 0;
    int got = next_frame(c, &msg, &len);
    if (got < 0) { /* a broken stream (or out of memory): no retry mends that */
      disconnect(c);
      drop_pending(c);
      return -1;
    }
    if (got == 0) {
      /* requests queued, not flushed yet: their replies need them sent */
      if (c->out_sent < c->out_len) {
        if (pintuan_flush(c)) return -1;
      } else if (read_more(c) && c->fd >= 0) {
        return -1; /* out of memory */
      }
      continue; /* closed: mended above */
    }
    pintuan_response *r = pintuan__v1__response__unpack(NULL, len, msg);
    if (!r) {
      lost(c, "undecodable reply from the daemon");
      drop_pending(c);
      return -1;
    }
    int redirect = redirected(c, r);
    if (redirect) { /* to the leader (or the list's next), with every request in flight */
      pintuan_response_free(r);
      disconnect(c);
      if (redirect == 1) c->stats.redirects++;
      else snprintf(c->err, sizeof c->err, "NOT_LEADER naming an address not in the list");
      if (recover(c, redirect == 1)) return -1;
      continue;
    }
    c->run = 0; /* the daemon answers: a later failure starts a new run */
    if (r->id == 0 && r->status != PINTUAN__V1__STATUS__OK &&
        r->result_case != PINTUAN__V1__RESPONSE__RESULT_EVENT)
      drop_pending(c); /* the daemon refused the stream: it is closing it */
    else if (r->id)
      answered(c, r);
    *out = r;
    return 0;
  }
}

void pintuan_response_free(pintuan_response *r) {
  if (r) pintuan__v1__response__free_unpacked(r, NULL);
}

/* Is r a "shortly" (UNAVAILABLE, OVERLOADED) that failover's bounds still
 * allow to ask again? Pauses before saying yes. */
static bool ask_again(pintuan_client *c, const pintuan_response *r, int *tries, int64_t *since) {
  if (r->status != PINTUAN__V1__STATUS__UNAVAILABLE && r->status != PINTUAN__V1__STATUS__OVERLOADED) return false;
  int64_t now = pt_mono_ns() / 1000000;
  if (!*tries) *since = now;
  if (c->max_attempts <= 0 || *tries >= c->max_attempts || (c->max_ms > 0 && now - *since >= c->max_ms))
    return false;
  int pause = BACKOFF_FIRST_MS << (*tries < 6 ? *tries : 6);
  sleep_ms(pause > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pause);
  (*tries)++;
  c->stats.busy++;
  return true;
}

int pintuan_call(pintuan_client *c, pintuan_request *req, pintuan_response **out) {
  *out = NULL;
  if (pintuan_send(c, req) || pintuan_flush(c)) return -1;
  int tries = 0;
  int64_t since = 0;
  for (;;) {
    pintuan_response *r;
    if (pintuan_recv(c, &r)) return -1;
    if (r->id == req->id && ask_again(c, r, &tries, &since)) { /* the same request, again */
      pintuan_response_free(r);
      if (pintuan_send(c, req) || pintuan_flush(c)) return -1;
      continue;
    }
    if (r->id == req->id) {
      *out = r;
      return 0;
    }
    if (r->id == 0 && r->status != PINTUAN__V1__STATUS__OK &&
        r->result_case != PINTUAN__V1__RESPONSE__RESULT_EVENT) {
      /* the daemon rejected the stream itself */
      *out = r;
      return 0;
    }
    pintuan_response_free(r); /* a reply to an earlier pipelined request, or an event */
  }
}

const char *pintuan_status_str(int s) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&pintuan__v1__status__descriptor, s);
  return v ? v->name : "STATUS_UNSPECIFIED";
}

const char *pintuan_hold_state_str(int s) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&pintuan__v1__hold_state__descriptor, s);
  return v ? v->name : "HOLD_STATE_UNSPECIFIED";
}
