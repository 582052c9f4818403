/* libFuzzer target: the storefront port's sockets (daemon/net/server.c, with
 * daemon/net/tls.c), in-process over real loopback TCP as
 * tests/unit/test_server_hold.c drives them. Each input starts a server on
 * a fresh libuv loop. Its frame hook answers every frame with an echo (the
 * frame's first byte picks how: a decided reply, a refusal, a large one,
 * then close, close after a pause, wait for pushes); a prepare handle plays
 * the daemon's turn end (seal the turn's replies while sealing is on, then
 * flush). The input is a script for up to four client sockets and for the
 * daemon's calls between turns.
 *
 * The input:
 *   byte 0   bits 0-1 max_frame 6, 24, 100, 1000; 2 sealing on at the
 *            start; 3 TLS on the port; 4 the port asks for client
 *            certificates (optional); 5 a lookahead hook; 6-7 max_clients
 *            1, 2, 3, 16
 *   byte 1   bits 0-2 out_high 16 << n; 3-4 out_hard out_high x 2, 8, 64,
 *            4096; 5-6 max_inflight 0, 1, 2, 8; 7 out_budget (out_hard +
 *            out_high)
 *   byte 2   bits 0-1 max_per_ip 0-3; 2 stop the server at the end with
 *            everything open and held; 3-4 frame_timeout_ms 1, 3, 5, 7 (a
 *            clock only the script moves); 5 idle_ms 2, 6 first_frame_ms 3,
 *            7 reply_deadline_ms 2 (the loop's real clock)
 *   then     operations, one byte each: kind (bits 5-7), client slot (3-4),
 *            argument (0-2):
 *     0 connect: arg 1 TLS (on a TLS port; else plaintext, to it too),
 *               2 a small receive buffer and MSS (and a client certificate),
 *               4 from 127.0.0.2
 *     1 send the next n bytes of the slot's stream (n = arg + 1; arg 7:
 *               n is the next byte), which follow inline
 *     2 the same, then one loop iteration (TLS: the record in two halves,
 *               an iteration between)
 *     3 shutdown(SHUT_WR)   4 close: RST (arg 1: an orderly close)
 *     5 read what has come  6 run the loop arg + 1 iterations
 *     7 control, by the low 5 bits: 0 release the next sealed turn,
 *               1 release all, 2 drop held output, 3 sealing on/off, 4 a
 *               push to every connection that spoke, 5 close (after
 *               flush) each connection whose first byte was odd (the
 *               daemon's rekey), 6 the clock +1 ms, 7 the clock +8 ms and
 *               wait for the sweep, 8 one real millisecond (with the
 *               real-time bounds)
 * Frame actions (first byte & 7): 0-2 an echo, 3 an echo as a refusal
 * (stateless), 4 the echo padded by 4, 16, 64 or 128 KiB (byte >> 3 & 3),
 * 5 echo then close after
 * flush, 6 echo then close after a pause of (byte >> 3 & 7) ms, 7 echo and
 * keep when idle.
 *
 * Checked: what each client reads is, in order, the echo of its next whole
 * frame (an error for a frame over max_frame, then nothing but the close),
 * with pushes between; a frame timeout only after the clock moved past
 * bytes of an unfinished frame; a refusal only first. At the end (all held
 * output released, every client read until nothing more is due): a client
 * neither closed by itself nor cut by a counted bound has every reply due
 * and, if the server was to close it, its close; a client cut before it
 * was to be is counted by a drop or refusal in the stats. Once every
 * client closes, the stats come back to zero connections, nothing unsent
 * or paused, every close seen by the hook once, frames, errors and
 * refusals as the hooks saw them; the server stops and the loop closes
 * with no handle left (ASan: no leak, no use after free).
 * Seeds: make_seeds writes tests/fuzz/corpus/server/. To see a script
 * played: PT_FUZZ_SHOW=1 fuzz_server FILE. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "net/server.h"
#include "net/tls.h"

#define NCLIENTS 4
#define MAX_SWEEPS 4 /* waits for the sweep, each a few real ms, per input */
#define MAX_SLEEPS 3

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_server: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}
#define CHECK(cond, ...)                                                                                     \
  do {                                                                                                       \
    if (!(cond)) fail(__VA_ARGS__);                                                                          \
  } while (0)

static bool show; /* PT_FUZZ_SHOW: the script as it is played */
#define SHOW(...) (show ? fprintf(stderr, __VA_ARGS__) : 0)

typedef struct bytes {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  if (!n) return;
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* ---- the replies ---- */

enum { ACT_STATELESS = 3, ACT_FAT = 4, ACT_CLOSE = 5, ACT_LINGER = 6, ACT_KEEP = 7 };
static int act(const uint8_t *m, size_t n) { return n ? m[0] & 7 : 0; }
static size_t reply_len(const uint8_t *m, size_t n) {
  static const size_t fat[] = {4 << 10, 16 << 10, 64 << 10, 128 << 10}; /* past a small window's send buffer */
  return act(m, n) == ACT_FAT ? n + fat[m[0] >> 3 & 3] : n;
}
static uint8_t pad(size_t i) { return (uint8_t)(i * 7 + 1); }
static bool is_reply(const uint8_t *f, size_t fl, const uint8_t *m, size_t n) {
  if (fl != reply_len(m, n) || memcmp(f, m, n)) return false;
  for (size_t i = n; i < fl; i++)
    if (f[i] != pad(i)) return false;
  return true;
}
/* the server's own: an error {0xEE, status, kind}, a push {0xFF, 'P', n} */
static bool is_error(const uint8_t *f, size_t fl, char kind) { return fl == 3 && f[0] == 0xEE && f[2] == kind; }
static bool is_push(const uint8_t *f, size_t fl) { return fl == 3 && f[0] == 0xFF && f[1] == 'P'; }

/* ---- the run ---- */

typedef struct client {
  int fd;              /* -1: no connection in this slot */
  pt_tls_conn *tls;    /* a TLS client's session */
  bool raw_on_tls;     /* plaintext to the TLS port */
  bool lossy;          /* shut down or reset by us: a prefix is all it may see */
  bool eof, reset;     /* the server closed it: in order (FIN), or reset */
  bool send_dead;      /* a send failed: the server is gone (reset), or reads nothing */
  bool unchecked;      /* what it reads is not frames (TLS bytes to a plaintext reader, a failed handshake) */
  bool counted;        /* its cut is counted */
  bytes sent, got;     /* plaintext, both ways */
  size_t adv_sent;     /* sent.len when the clock of frame timeouts last moved */
  size_t raw_sent;
} client;

static struct run {
  uv_loop_t loop;
  pt_server *srv;
  uv_prepare_t turn_end;
  uv_timer_t marker;
  bool marker_fired;
  pt_server_config cfg;
  uint64_t now; /* the clock of frame timeouts and pauses */
  bool sealing, turn_busy, lingered;
  uint64_t sealed, released; /* turns */
  unsigned frames, closes, secure, lookaheads, pushes, each_closed;
  unsigned errors[128]; /* by kind */
  unsigned sweeps, sleeps;
  unsigned cut; /* clients closed by the server before they were to be */
  uint64_t raw_sent;
  client cl[NCLIENTS];
} R;

static pt_tls *srv_tls, *srv_tls_certs, *cli_tls, *cli_tls_cert;
static int port; /* the one the first input listened on, reused (SO_REUSEADDR) */

/* ---- the hooks: the daemon's protocol layer, reduced to echoes ---- */

typedef struct conn_mark {
  uint8_t spoke, closed;
} conn_mark;
#define AHEAD_MAGIC 0x6168656164u
typedef struct ahead {
  uint64_t magic;
  uint64_t len;
  uint8_t head[8];
} ahead;

static void on_lookahead(void *ctx, const uint8_t *msg, size_t len, void *note) {
  (void)ctx;
  CHECK(((uintptr_t)note & 15) == 0, "a lookahead note not 16-aligned");
  CHECK(len <= R.cfg.max_frame, "a frame over max_frame looked ahead at");
  ahead a = {AHEAD_MAGIC, len, {0}};
  memcpy(a.head, msg, len < 8 ? len : 8);
  memcpy(note, &a, sizeof a);
  R.lookaheads++;
}

static void on_frame(void *ctx, pt_conn *c, const uint8_t *msg, size_t len, const void *note) {
  (void)ctx;
  conn_mark *m = pt_conn_data(c);
  CHECK(!m->closed, "a frame on a connection already closed");
  CHECK(len <= R.cfg.max_frame, "a frame of %zu bytes over max_frame %zu handed on", len, R.cfg.max_frame);
  if (note) {
    ahead a;
    memcpy(&a, note, sizeof a);
    CHECK(a.magic == AHEAD_MAGIC && a.len == len && !memcmp(a.head, msg, len < 8 ? len : 8),
          "a frame handed on with another frame's lookahead note");
  }
  if (!m->spoke) {
    char peer[64];
    pt_conn_peer(c, peer, sizeof peer);
    CHECK(!strncmp(peer, "127.0.0.", 8) || !strcmp(peer, "?"), "peer %s", peer);
  }
  m->spoke = 1;
  SHOW("  frame of %zu bytes, action %d%s\n", len, act(msg, len), note ? ", looked ahead at" : "");
  R.frames++;
  R.turn_busy = true;
  int a = act(msg, len);
  size_t n = reply_len(msg, len);
  uint8_t *p = a == ACT_STATELESS ? pt_conn_reply_stateless(c, n) : pt_conn_reply(c, n);
  memcpy(p, msg, len); /* the buffer is valid even if that reply got the connection dropped */
  for (size_t i = len; i < n; i++) p[i] = pad(i);
  if (len) *pt_conn_flags(c) = msg[0];
  if (a == ACT_CLOSE) {
    pt_conn_close_after_flush(c);
  } else if (a == ACT_LINGER) {
    pt_conn_close_after(c, msg[0] >> 3 & 7);
    R.lingered = true;
  } else if (a == ACT_KEEP) {
    pt_conn_keep_when_idle(c);
  }
}

static void on_protocol_error(void *ctx, pt_conn *c, int status, const char *detail) {
  (void)ctx;
  char kind = strstr(detail, "exceeds the limit")   ? 'O'
              : strstr(detail, "incomplete frame")  ? 'T'
              : strstr(detail, "too many clients")  ? 'C'
              : strstr(detail, "from your address") ? 'I'
              : strstr(detail, "speaks TLS")        ? 'P'
                                                    : 0;
  CHECK(kind, "an unknown protocol error %d: %s", status, detail);
  CHECK(status == (kind == 'C' || kind == 'I' ? 15 : 11), "status %d for %s", status, detail);
  CHECK(!((conn_mark *)pt_conn_data(c))->closed, "a protocol error on a connection already closed");
  R.errors[(int)kind]++;
  uint8_t *p = pt_conn_reply_stateless(c, 3);
  p[0] = 0xEE, p[1] = (uint8_t)status, p[2] = (uint8_t)kind;
}

static void on_close(void *ctx, pt_conn *c) {
  (void)ctx;
  conn_mark *m = pt_conn_data(c);
  CHECK(!m->closed, "a connection closed twice");
  m->closed = 1;
  R.closes++;
}

static void on_secure(void *ctx, pt_conn *c, const char *peer) {
  (void)ctx, (void)c;
  CHECK(!strcmp(peer, "pintuan-fuzz"), "a client certificate named %s", peer);
  R.secure++;
}

static uint64_t now_ms(void *ctx) { return (void)ctx, R.now; }

static const pt_server_hooks hooks = {.on_frame = on_frame, .on_protocol_error = on_protocol_error,
                                      .on_close = on_close, .on_secure = on_secure, .now_ms = now_ms};
static const pt_server_hooks hooks_ahead = {.on_frame = on_frame, .on_lookahead = on_lookahead,
                                            .on_protocol_error = on_protocol_error, .on_close = on_close,
                                            .on_secure = on_secure, .now_ms = now_ms};

/* The daemon's turn end: the turn's replies sealed under the next sequence
 * number (when a turn decided something and sealing is on), then flushed. */
static void on_turn_end(uv_prepare_t *h) {
  (void)h;
  if (R.sealing && R.turn_busy) pt_server_seal(R.srv, ++R.sealed);
  R.turn_busy = false;
  pt_server_flush(R.srv);
}

static void on_marker(uv_timer_t *t) { (void)t, R.marker_fired = true; }

/* ---- the clients ---- */

static void client_push_tls(client *k, int halves);

static void client_read(client *k) {
  static uint8_t tmp[1 << 16];
  if (k->fd < 0 || k->eof) return;
  for (;;) {
    ssize_t n = recv(k->fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      if (k->tls) pt_tls_feed(k->tls, tmp, (size_t)n);
      else put(&k->got, tmp, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    k->eof = true;
    k->reset |= n < 0;
    break;
  }
  if (k->tls && !k->unchecked) {
    for (;;) {
      ssize_t n = pt_tls_read(k->tls, tmp, sizeof tmp);
      if (n > 0) {
        put(&k->got, tmp, (size_t)n);
        continue;
      }
      if (n < 0) {
        CHECK(!pt_tls_established(k->tls), "the server's TLS records do not read: %s", pt_tls_error(k->tls));
        k->unchecked = true; /* a handshake that failed */
      }
      break;
    }
    client_push_tls(k, 0); /* the handshake's answers */
  }
}

static void read_all(void) {
  for (int i = 0; i < NCLIENTS; i++) client_read(&R.cl[i]);
}

/* Sends p[0, n) all, running the loop while the socket takes none; returns
 * how much went. */
static size_t send_raw(client *k, const uint8_t *p, size_t n) {
  size_t done = 0;
  for (int waits = 0; done < n && !k->send_dead;) {
    ssize_t m = send(k->fd, p + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (m > 0) {
      done += (size_t)m;
      continue;
    }
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waits++ < 100) {
      uv_run(&R.loop, UV_RUN_NOWAIT);
      read_all();
      continue;
    }
    k->send_dead = true; /* the server is gone, or reads nothing more */
    /* reset (the error, consumed here, leaves recv a plain end) */
    if (m < 0 && errno != EAGAIN && errno != EWOULDBLOCK) k->reset = true;
  }
  k->raw_sent += done;
  R.raw_sent += done;
  return done;
}

/* The TLS client's pending ciphertext to the socket; halves: in two parts
 * with a loop iteration between. */
static void client_push_tls(client *k, int halves) {
  static uint8_t out[1 << 17];
  if (!k->tls || k->fd < 0 || k->send_dead) return;
  size_t n = pt_tls_take(k->tls, out, sizeof out);
  if (!n) return;
  size_t first = halves && n > 1 ? n / 2 : n, done = send_raw(k, out, first);
  if (done == first && first < n) {
    uv_run(&R.loop, UV_RUN_NOWAIT);
    done += send_raw(k, out + first, n - first);
  }
  if (done < n && !k->send_dead) k->unchecked = true; /* half a record: the server reads no further */
  CHECK(!pt_tls_pending(k->tls), "TLS output left over");
}

static void client_send(client *k, const uint8_t *p, size_t n, bool run) {
  if (k->fd < 0 || k->send_dead || !n) return;
  if (k->tls) {
    if (!pt_tls_established(k->tls)) return;
    CHECK(pt_tls_write(k->tls, p, n) == 0, "TLS write: %s", pt_tls_error(k->tls));
    put(&k->sent, p, n);
    client_push_tls(k, run);
  } else {
    if (k->raw_on_tls && !k->sent.len && p[0] == 0x16) k->unchecked = true; /* taken for TLS */
    put(&k->sent, p, send_raw(k, p, n));
  }
  if (run) uv_run(&R.loop, UV_RUN_NOWAIT);
}

/* Runs the loop for ms of its clock. */
static void wait_ms(uint64_t ms) {
  uv_update_time(&R.loop);
  R.marker_fired = false;
  uv_timer_start(&R.marker, on_marker, ms, 0);
  while (!R.marker_fired) uv_run(&R.loop, UV_RUN_ONCE);
}

/* Runs the loop, reading every client, until done(): loopback bytes arrive
 * at once nearly always, so a few iterations do; past those it waits a
 * millisecond of the loop's clock an iteration, 5,000 times at most (counted,
 * not timed: on a busy machine at nice 19 the process may not run for a
 * while). */
static void spin(bool (*done)(void), const char *what) {
  for (int i = 0;; i++) {
    read_all();
    if (done()) return;
    if (i < 64) {
      uv_run(&R.loop, UV_RUN_NOWAIT);
      continue;
    }
    if (i >= 64 + 5000) {
      pt_server_stats st;
      pt_server_stats_get(R.srv, &st);
      for (int j = 0; j < NCLIENTS; j++) {
        const client *k = &R.cl[j];
        if (k->fd >= 0)
          fprintf(stderr, "client %d: sent %zu, read %zu%s%s%s%s%s\n", j, k->sent.len, k->got.len,
                  k->tls ? ", TLS" : "", k->lossy ? ", lossy" : "", k->eof ? ", closed" : "",
                  k->reset ? ", reset" : "", k->unchecked ? ", unchecked" : "");
      }
      fail("%s: not after 5,000 ms of waiting (server: %u clients, %u paused, %zu unsent, %llu closed)", what, st.clients,
           st.paused, st.unsent, (unsigned long long)st.closed);
    }
    wait_ms(1);
  }
}

static client *handshaking;
static bool handshake_done(void) {
  client *k = handshaking;
  return k->eof || k->unchecked || pt_tls_established(k->tls);
}

static void client_connect(int slot, int arg) {
  client *k = &R.cl[slot];
  if (k->fd >= 0) return;
  bool tls = arg & 1 && R.cfg.tls, small = arg & 2, from2 = arg & 4;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0, "socket: %s", strerror(errno));
  int one = 1; /* each send on the wire at once, not held for an ACK (Nagle) */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (small) { /* a small receive buffer: the server's writes queue */
    int v = 1, mss = 512;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    /* and segments that fit it: with loopback's 64 KiB MSS, a window of
     * 2 KiB is never worth announcing, and the server's kernel falls back
     * on zero-window probes seconds apart */
    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
  }
  if (from2) {
    int v = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v, sizeof v);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a)) {
      close(fd);
      return;
    }
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)pt_server_port(R.srv)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) { /* out of ports: not the server's doing */
    SHOW("  connect: %s\n", strerror(errno));
    close(fd);
    return;
  }
  free(k->sent.p), free(k->got.p);
  *k = (client){.fd = fd, .raw_on_tls = R.cfg.tls && !tls};
  if (!tls) return;
  k->tls = pt_tls_connect(small ? cli_tls_cert : cli_tls, "127.0.0.1"); /* with a certificate too */
  client_push_tls(k, 0);
  handshaking = k;
  spin(handshake_done, "the TLS handshake");
  if (!pt_tls_established(k->tls)) { /* refused at accept, or cut */
    k->unchecked = true;
    if (!k->lossy) R.cut++;
  }
}

/* The clock of frame timeouts and pauses, moved by ms. */
static void advance(uint64_t ms) {
  R.now += ms;
  for (int i = 0; i < NCLIENTS; i++) R.cl[i].adv_sent = R.cl[i].sent.len;
}

/* ---- the checks ---- */

typedef struct verdict {
  bool ended;   /* the server was to close after what was read */
  bool all_in;  /* every reply due has been read */
  bool may_end; /* what was sent after that may have it close (a close, an oversize frame, a timeout) */
} verdict;

enum { DUE_NONE, DUE_ECHO, DUE_OVERSIZE, DUE_PLAIN };

/* Walks what client i read against what it sent; fails on a reply that
 * cannot be. */
static verdict check(int i) {
  const client *k = &R.cl[i];
  verdict v = {0};
  if (k->unchecked) return (verdict){.all_in = true};
  const uint8_t *s = k->sent.p, *g = k->got.p;
  size_t ns = k->sent.len, ng = k->got.len, so = 0, go = 0;
  int due;
  for (;;) {
    const uint8_t *msg = NULL;
    size_t len = 0;
    due = DUE_NONE;
    if (v.ended) {
    } else if (k->raw_on_tls) {
      due = ns && !so ? DUE_PLAIN : DUE_NONE;
    } else if (ns > so) {
      pt_frame_status fs = pt_frame_next(s + so, ns - so, R.cfg.max_frame, &msg, &len);
      due = fs == PT_FRAME_OK ? DUE_ECHO : fs == PT_FRAME_TOO_BIG ? DUE_OVERSIZE : DUE_NONE;
    }
    if (ng - go < PT_FRAME_HEADER || ng - go - PT_FRAME_HEADER < pt_be32_get(g + go)) break;
    size_t fl = pt_be32_get(g + go);
    const uint8_t *f = g + go + PT_FRAME_HEADER;
    size_t at = go;
    go += PT_FRAME_HEADER + fl;
    if (due == DUE_ECHO && is_reply(f, fl, msg, len)) {
      so += PT_FRAME_HEADER + len;
      if (act(msg, len) == ACT_CLOSE || act(msg, len) == ACT_LINGER) v.ended = true;
    } else if (due == DUE_OVERSIZE && is_error(f, fl, 'O')) {
      v.ended = true;
    } else if (due == DUE_PLAIN && is_error(f, fl, 'P')) {
      v.ended = true;
    } else if (is_push(f, fl)) {
      CHECK(f[2] < R.pushes || R.pushes > 255, "client %d: a push never made", i);
    } else if (!v.ended && is_error(f, fl, 'T') && k->adv_sent > so) {
      v.ended = true; /* an unfinished frame at a time the clock moved */
    } else if (!v.ended && !at && (is_error(f, fl, 'C') || is_error(f, fl, 'I'))) {
      v.ended = true; /* refused */
    } else {
      fail("client %d: the reply of %zu bytes at %zu of what it read (%02x %02x %02x ...) is not due: "
           "%s at %zu of what it sent%s",
           i, fl, at, fl > 0 ? f[0] : 0, fl > 1 ? f[1] : 0, fl > 2 ? f[2] : 0,
           v.ended                 ? "nothing (the server was to close)"
           : due == DUE_ECHO       ? "an echo"
           : due == DUE_OVERSIZE   ? "the oversize error"
           : due == DUE_PLAIN      ? "the plaintext error"
                                   : "no reply",
           so, k->lossy ? " (lossy)" : "");
    }
  }
  v.all_in = go == ng && (v.ended || due == DUE_NONE);
  /* a close the server made for what comes next: one with input unread is
   * a reset, which throws away what the kernel had not sent yet (the
   * replies a client with a full window has not taken, the error) */
  for (const uint8_t *msg; !v.ended && !v.may_end && !k->raw_on_tls && ns > so;) {
    size_t len;
    pt_frame_status fs = pt_frame_next(s + so, ns - so, R.cfg.max_frame, &msg, &len);
    v.may_end = fs == PT_FRAME_TOO_BIG || (fs == PT_FRAME_MORE && k->adv_sent > so) ||
                (fs == PT_FRAME_OK && (act(msg, len) == ACT_CLOSE || act(msg, len) == ACT_LINGER));
    if (fs != PT_FRAME_OK) break;
    so += PT_FRAME_HEADER + len;
  }
  return v;
}

/* A client that will read nothing more that is due. */
static bool settled(int i) {
  const client *k = &R.cl[i];
  if (k->fd < 0 || k->lossy || k->unchecked || k->eof) return true;
  verdict v = check(i);
  return v.all_in && !v.ended;
}
/* At the end: any close after a pause (pt_conn_close_after) begun since
 * the last look has its pause over. */
static void pauses_over(void) {
  if (!R.lingered) return;
  R.lingered = false;
  advance(1000);
}

static bool all_settled(void) {
  pauses_over();
  for (int i = 0; i < NCLIENTS; i++)
    if (!settled(i)) return false;
  return true;
}

/* Client i as it is now, once no more is due: closed by the server only
 * where it was to be (else counted as cut, which a drop must explain). */
static void account(int i) {
  client *k = &R.cl[i];
  if (k->fd < 0 || k->lossy || k->unchecked) return;
  verdict v = check(i);
  bool whole = v.ended ? k->eof && (v.all_in || k->reset) : k->eof ? k->reset && v.may_end : v.all_in;
  if (!whole && !k->counted) R.cut++, k->counted = true;
  SHOW("  client %d: %s%s%s%s (sent %zu, read %zu)\n", i, v.ended ? "ended" : "open",
       k->eof ? (k->reset ? ", reset" : ", closed") : "", v.all_in ? ", all in" : ", replies missing",
       whole ? "" : ": CUT", k->sent.len, k->got.len);
}

static void client_close(int i, bool orderly) {
  client *k = &R.cl[i];
  if (k->fd < 0) return;
  check(i);
  if (k->eof && !k->lossy && !k->unchecked && !k->counted) { /* the server closed it: was it to? */
    verdict v = check(i);
    if (!v.ended && !(k->reset && v.may_end)) R.cut++, k->counted = true;
  }
  if (!orderly) {
    struct linger l = {1, 0};
    setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  close(k->fd);
  pt_tls_conn_free(k->tls);
  k->tls = NULL;
  k->fd = -1;
}

static void push_one(void *ctx, pt_conn *c) {
  (void)ctx;
  if (!((conn_mark *)pt_conn_data(c))->spoke) return; /* a subscriber said so in a frame */
  uint8_t *p = pt_conn_reply(c, 3);
  p[0] = 0xFF, p[1] = 'P', p[2] = (uint8_t)R.pushes;
  R.turn_busy = true;
}

static void close_odd(void *ctx, pt_conn *c) {
  (void)ctx;
  if (!(*pt_conn_flags(c) & 1)) return;
  R.each_closed++;
  pt_conn_close_after_flush(c);
}

static void control(int sub) {
  switch (sub) {
  case 0:
    if (R.released < R.sealed) pt_server_release(R.srv, ++R.released);
    break;
  case 1:
    if (R.released < R.sealed) pt_server_release(R.srv, R.released = R.sealed);
    break;
  case 2:
    pt_server_drop_held(R.srv);
    R.released = R.sealed;
    break;
  case 3:
    R.sealing = !R.sealing;
    break;
  case 4:
    pt_server_each(R.srv, push_one, NULL);
    R.pushes++;
    break;
  case 5:
    pt_server_each(R.srv, close_odd, NULL);
    break;
  case 6:
    advance(1);
    break;
  case 7:
    advance(8);
    if (R.sweeps++ < MAX_SWEEPS) wait_ms(2);
    break;
  case 8:
    if ((R.cfg.idle_ms || R.cfg.first_frame_ms || R.cfg.reply_deadline_ms) && R.sleeps++ < MAX_SLEEPS)
      wait_ms(1);
    break;
  default:
    break;
  }
}

/* ---- set up once ---- */

static void make_cert(const char *cert, const char *key) {
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  if (!pk || !x) abort();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 20L * 365 * 86400);
  X509_set_pubkey(x, pk);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"pintuan-fuzz", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
  const struct {
    int nid;
    const char *value;
  } ext[] = {{NID_basic_constraints, "critical,CA:TRUE"}, {NID_subject_alt_name, "IP:127.0.0.1"}};
  for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid, ext[i].value);
    if (!e || !X509_add_ext(x, e, -1)) abort();
    X509_EXTENSION_free(e);
  }
  if (!X509_sign(x, pk, EVP_sha256())) abort();
  FILE *f = fopen(cert, "w");
  if (!f || !PEM_write_X509(f, x) || fclose(f)) abort();
  f = fopen(key, "w");
  if (!f || !PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) || fclose(f)) abort();
  X509_free(x);
  EVP_PKEY_free(pk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  signal(SIGPIPE, SIG_IGN);
  show = getenv("PT_FUZZ_SHOW") != NULL;
  pt_log_set_level(show ? PT_LOG_DEBUG : PT_LOG_ERROR); /* else every cut client is a line */
  /* one self-signed certificate: the port's, its clients' CA, and a client's */
  char dir[] = "/tmp/pt-fuzz-serverXXXXXX", cert[64], key[64], err[256];
  if (!mkdtemp(dir)) abort();
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  make_cert(cert, key);
  srv_tls = pt_tls_new(cert, key, NULL, PT_TLS_CERTS_NONE, err, sizeof err);
  srv_tls_certs = srv_tls ? pt_tls_new(cert, key, cert, PT_TLS_CERTS_OPTIONAL, err, sizeof err) : NULL;
  cli_tls = srv_tls_certs ? pt_tls_new_client(cert, NULL, NULL, err, sizeof err) : NULL;
  cli_tls_cert = cli_tls ? pt_tls_new_client(cert, cert, key, err, sizeof err) : NULL;
  if (!cli_tls_cert) fprintf(stderr, "TLS: %s\n", err), abort();
  unlink(cert), unlink(key), rmdir(dir);
  return 0;
}

static const uint8_t *in;
static size_t in_len, in_off;
static int next(void) { return in_off < in_len ? in[in_off++] : 0; }

static void start(uint8_t b0, uint8_t b1, uint8_t b2) {
  static const size_t max_frame[] = {6, 24, 100, 1000};
  static const unsigned max_clients[] = {1, 2, 3, 16}, inflight[] = {0, 1, 2, 8};
  static const size_t hard[] = {2, 8, 64, 4096};
  pt_server_config *k = &R.cfg;
  k->nlisten = 1;
  k->max_frame = max_frame[b0 & 3];
  k->max_clients = max_clients[b0 >> 6];
  k->tls = b0 & 8 ? (b0 & 16 ? srv_tls_certs : srv_tls) : NULL;
  k->out_high = (size_t)16 << (b1 & 7);
  k->out_hard = k->out_high * hard[b1 >> 3 & 3];
  k->max_inflight = inflight[b1 >> 5 & 3];
  k->out_budget = b1 & 128 ? k->out_hard + k->out_high : 0;
  k->max_per_ip = b2 & 3;
  k->frame_timeout_ms = 1 + 2 * (b2 >> 3 & 3);
  k->idle_ms = b2 & 32 ? 2 : 0;
  k->first_frame_ms = b2 & 64 ? 3 : 0;
  k->reply_deadline_ms = b2 & 128 ? 2 : 0;
  R.sealing = b0 & 4;
  R.now = 1000;
  uv_loop_init(&R.loop);
  char err[256];
  for (int tries = 0; !R.srv; tries++) {
    struct sockaddr_in *lo = (struct sockaddr_in *)&k->listen[0];
    *lo = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    R.srv = pt_server_start(&R.loop, k, b0 & 32 ? &hooks_ahead : &hooks, err, sizeof err);
    if (R.srv) break;
    uv_run(&R.loop, UV_RUN_DEFAULT); /* the failed start's handles close */
    CHECK(tries < 3, "start: %s", err);
    port = 0; /* taken meanwhile: another */
  }
  port = pt_server_port(R.srv);
  uv_prepare_init(&R.loop, &R.turn_end);
  uv_prepare_start(&R.turn_end, on_turn_end);
  uv_timer_init(&R.loop, &R.marker);
  for (int i = 0; i < NCLIENTS; i++) R.cl[i].fd = -1;
}

static int stopped;
static void on_stopped(void *arg) { (void)arg, stopped++; }

static void stop(void) {
  uv_close((uv_handle_t *)&R.turn_end, NULL);
  uv_close((uv_handle_t *)&R.marker, NULL);
  stopped = 0;
  pt_server_stop(R.srv, on_stopped, NULL);
  uv_run(&R.loop, UV_RUN_DEFAULT);
  CHECK(stopped == 1, "stop: done called %d times", stopped);
  CHECK(uv_loop_close(&R.loop) == 0, "a handle left open after the stop");
}

static pt_server_stats stats(void) {
  pt_server_stats st;
  pt_server_stats_get(R.srv, &st);
  return st;
}
static bool no_clients(void) {
  pauses_over();
  return stats().clients == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in = data, in_len = size, in_off = 0;
  uint8_t b0 = (uint8_t)next(), b1 = (uint8_t)next(), b2 = (uint8_t)next();
  start(b0, b1, b2);
  SHOW("max_frame %zu, max_clients %u, tls %d, out_high %zu, out_hard %zu, max_inflight %u, out_budget %zu, "
       "max_per_ip %u, frame_timeout %llu, idle %llu, first_frame %llu, reply_deadline %llu, sealing %d\n",
       R.cfg.max_frame, R.cfg.max_clients, R.cfg.tls != NULL, R.cfg.out_high, R.cfg.out_hard,
       R.cfg.max_inflight, R.cfg.out_budget, R.cfg.max_per_ip, (unsigned long long)R.cfg.frame_timeout_ms,
       (unsigned long long)R.cfg.idle_ms, (unsigned long long)R.cfg.first_frame_ms,
       (unsigned long long)R.cfg.reply_deadline_ms, R.sealing);
  while (in_off < in_len) {
    int op = next(), kind = op >> 5, slot = op >> 3 & 3, arg = op & 7;
    client *k = &R.cl[slot];
    switch (kind) {
    case 0:
      SHOW("connect %d%s%s%s\n", slot, arg & 1 ? " tls" : "", arg & 2 ? " small" : "", arg & 4 ? " from .2" : "");
      client_connect(slot, arg);
      break;
    case 1:
    case 2: {
      size_t n = arg < 7 ? (size_t)arg + 1 : (size_t)next();
      if (n > in_len - in_off) n = in_len - in_off;
      SHOW("send %d: %zu bytes%s\n", slot, n, kind == 2 ? ", run" : "");
      client_send(k, in + in_off, n, kind == 2);
      in_off += n;
      break;
    }
    case 3:
      SHOW("shutdown %d\n", slot);
      if (k->fd >= 0 && !k->lossy) shutdown(k->fd, SHUT_WR);
      if (k->fd >= 0) k->lossy = true;
      break;
    case 4:
      SHOW("close %d%s\n", slot, arg & 1 ? "" : " (RST)");
      client_close(slot, arg & 1);
      break;
    case 5:
      SHOW("read %d\n", slot);
      client_read(k);
      if (k->fd >= 0) check(slot);
      break;
    case 6:
      SHOW("run %d\n", arg + 1);
      for (int i = 0; i <= arg; i++) uv_run(&R.loop, UV_RUN_NOWAIT);
      break;
    case 7:
      SHOW("control %d\n", op & 31);
      control(op & 31);
      break;
    }
  }
  if (b2 & 4) { /* stopped with everything open and held */
    SHOW("stop\n");
    stop();
    for (int i = 0; i < NCLIENTS; i++) client_read(&R.cl[i]), check(i), client_close(i, false);
  } else {
    /* the end: everything held released, each client read until nothing
     * more is due; pauses over */
    R.sealing = false;
    control(1);
    SHOW("end\n");
    spin(all_settled, "replies due");
    for (int i = 0; i < NCLIENTS; i++) account(i);
    pt_server_stats st = stats();
    uint64_t explained = st.dropped_slow + st.dropped_budget + st.dropped_held + st.dropped_deadline +
                         st.closed_silent + st.closed_idle + st.tls_failed + st.refused + st.refused_ip +
                         R.each_closed;
    CHECK(R.cut <= explained, "%u clients cut with %llu drops and refusals to explain it", R.cut,
          (unsigned long long)explained);
    for (int i = 0; i < NCLIENTS; i++) client_close(i, false);
    R.lingered = true; /* whatever still pauses */
    spin(no_clients, "connections freed");
    st = stats();
    SHOW("stats: accepted %llu closed %llu refused %llu/%llu frames %llu in %llu out %llu oversize %llu "
         "timeouts %llu pauses %llu dropped slow %llu budget %llu held %llu deadline %llu silent %llu idle %llu "
         "tls_failed %llu; cut %u\n",
         (unsigned long long)st.accepted, (unsigned long long)st.closed, (unsigned long long)st.refused,
         (unsigned long long)st.refused_ip, (unsigned long long)st.frames_in, (unsigned long long)st.bytes_in,
         (unsigned long long)st.bytes_out, (unsigned long long)st.oversize, (unsigned long long)st.frame_timeouts,
         (unsigned long long)st.pauses, (unsigned long long)st.dropped_slow, (unsigned long long)st.dropped_budget,
         (unsigned long long)st.dropped_held, (unsigned long long)st.dropped_deadline,
         (unsigned long long)st.closed_silent, (unsigned long long)st.closed_idle,
         (unsigned long long)st.tls_failed, R.cut);
    CHECK(st.clients == 0 && st.paused == 0 && st.unsent == 0, "stats with no client: %u clients, %u paused, %zu unsent",
          st.clients, st.paused, st.unsent);
    CHECK(st.closed == R.closes, "%llu closed, the hook saw %u", (unsigned long long)st.closed, R.closes);
    CHECK(st.accepted <= st.closed, "%llu accepted, %llu closed", (unsigned long long)st.accepted,
          (unsigned long long)st.closed);
    CHECK(st.frames_in == R.frames, "%llu frames in, %u handed on", (unsigned long long)st.frames_in, R.frames);
    CHECK(st.protocol_errors == st.oversize + st.frame_timeouts && st.oversize == R.errors['O'] &&
              st.frame_timeouts == R.errors['T'] && st.refused == R.errors['C'] && st.refused_ip == R.errors['I'],
          "protocol errors %llu (oversize %llu, timeouts %llu), refused %llu/%llu; the hook saw %u %u %u %u",
          (unsigned long long)st.protocol_errors, (unsigned long long)st.oversize,
          (unsigned long long)st.frame_timeouts, (unsigned long long)st.refused,
          (unsigned long long)st.refused_ip, R.errors['O'], R.errors['T'], R.errors['C'], R.errors['I']);
    /* (not bytes_out against what the clients read: a queued write that
     * fails part way, its client gone, counts none of what it sent) */
    CHECK(st.bytes_in <= R.raw_sent, "bytes in %llu of %llu sent", (unsigned long long)st.bytes_in,
          (unsigned long long)R.raw_sent);
    stop();
  }
  for (int i = 0; i < NCLIENTS; i++) free(R.cl[i].sent.p), free(R.cl[i].got.p);
  memset(&R, 0, sizeof R);
  return 0;
}
