/* TCP server for length-prefixed frames (4-byte big-endian length, then the
 * message), on one libuv loop.
 *
 * Contract:
 * - Each complete inbound frame is handed to the frame callback, in order,
 *   with the bytes valid only during the call.
 * - Replies are appended to the connection's output with pt_conn_reply and
 *   written once per loop turn by pt_server_flush (one uv_write per
 *   connection), unless sealed to wait for a release (pt_server_seal).
 * - Backpressure: a connection whose unsent output passes out_high stops
 *   being read until it drains below half of that; past out_hard (also by
 *   pushed messages it does not read) it is dropped. Partial frames are kept per connection only while incomplete,
 *   so idle connections hold no buffers.
 * - Bounds, each a drop (or a refusal) logged and counted: replies not
 *   taken by the client for reply_deadline_ms; the unsent output of all
 *   connections past out_budget (the connections holding the most go);
 *   more than max_per_ip connections from one address; no whole frame
 *   within first_frame_ms of connecting; nothing read and nothing to write
 *   for idle_ms (unless the protocol layer says the connection waits for
 *   pushed messages). Past max_inflight replies not yet written, a
 *   connection is not read (as past out_high). The budget counts input
 *   kept too. The time bounds spare a connection whose bytes wait in its
 *   socket (a long turn is not the client's silence).
 * - Fairness: a loop turn hands on a bounded share of frames per
 *   connection (fewer as more connections are busy); past its share a
 *   connection is not read until the next turn. Input is not read while
 *   whole frames are kept, so a connection keeps at most one read.
 * - A frame over max_frame is answered with INVALID_ARGUMENT (via the
 *   protocol-error callback) and the connection closed once that is sent;
 *   so is a frame left incomplete for frame_timeout_ms (a slow or stuck
 *   client cannot pin a buffer forever). Only while the connection is read:
 *   a paused connection's partial frame waits on us, and its timeout starts
 *   over when reading resumes.
 */
#ifndef PT_SERVER_H
#define PT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "tls.h"

typedef struct pt_server pt_server;
typedef struct pt_conn pt_conn;

#define PT_LISTEN_MAX 8 /* addresses one name may make us listen on */

typedef struct pt_server_config {
  /* Where to listen: filled by pt_server_resolve. Port 0: any free port,
   * the same on every address (see pt_server_port). */
  struct sockaddr_storage listen[PT_LISTEN_MAX];
  unsigned nlisten;
  size_t max_frame;     /* largest message accepted */
  size_t out_high;      /* stop reading above this many unsent bytes */
  size_t out_hard;      /* drop the client above this many */
  unsigned max_clients; /* further connections are refused */
  uint64_t frame_timeout_ms; /* an incomplete frame older than this: error, close */
  /* 0: no such bound */
  uint64_t reply_deadline_ms; /* replies waiting on a client that takes none of them this long */
  size_t out_budget;          /* memory of every connection's output buffers and kept input together */
  unsigned max_inflight;      /* replies of one connection not written yet: reading stops */
  unsigned max_per_ip;        /* connections from one address */
  unsigned turn_frames;       /* frames a loop turn hands on, shared out (0: 512) */
  size_t socket_buffer;       /* SO_SNDBUF and SO_RCVBUF of each connection; 0: the kernel's */
  uint64_t first_frame_ms;    /* from the connect to its first whole frame */
  uint64_t idle_ms;           /* nothing read, nothing to write */
  pt_tls *tls;                /* TLS on every connection (tls.h); NULL: plaintext */
} pt_server_config;

#define PT_FRAME_NOTE 128 /* bytes a frame's lookahead may leave for its turn */

typedef struct pt_server_hooks {
  /* note: what on_lookahead left for this frame, or NULL when the frame was
   * not looked ahead at */
  void (*on_frame)(void *ctx, pt_conn *c, const uint8_t *msg, size_t len, const void *note);
  /* Optional: a frame that will be handed to on_frame soon (a few frames
   * ahead in the same read), for prefetching. Must not change state. It may
   * write up to PT_FRAME_NOTE bytes (16-aligned) to note, which on_frame
   * gets back with that frame (what it parsed, so as not to parse twice). */
  void (*on_lookahead)(void *ctx, const uint8_t *msg, size_t len, void *note);
  /* The stream is broken (frame too large) or the client is refused: write
   * a last error reply with this status (a pintuan.v1.Status value). */
  void (*on_protocol_error)(void *ctx, pt_conn *c, int status, const char *detail);
  void (*on_close)(void *ctx, pt_conn *c); /* before the connection is freed */
  /* Optional: a TLS connection is established with a verified client
   * certificate whose subject CN is peer_name. */
  void (*on_secure)(void *ctx, pt_conn *c, const char *peer_name);
  /* Optional: the clock frame timeouts are measured with, in ms. NULL: the
   * loop's monotonic clock. (pintuand --test-clock passes its test clock.) */
  uint64_t (*now_ms)(void *ctx);
  void *ctx;
} pt_server_hooks;

typedef struct pt_server_stats {
  uint64_t accepted, closed, refused, dropped_slow, dropped_held, frames_in, bytes_in, bytes_out;
  uint64_t dropped_deadline; /* replies not taken within reply_deadline_ms */
  uint64_t dropped_budget;   /* the most unsent output when out_budget was passed */
  uint64_t refused_ip;       /* over max_per_ip */
  uint64_t closed_silent;    /* no whole frame within first_frame_ms */
  uint64_t closed_idle;      /* idle for idle_ms */
  uint64_t tls_failed;       /* TLS handshakes or records that failed */
  size_t unsent;             /* now: the output of every connection not written yet */
  size_t kept;               /* now: input kept (frames waiting for their turn, partial frames) */
  size_t out_mem;            /* now: memory of the output buffers (what output_budget counts, with kept) */
  size_t spare_mem;          /* now: recycled output buffers kept for reuse (counted in output_budget) */
  uint64_t yields;           /* times a connection took its share of a turn's work */
  uint64_t demoted;          /* turns in which a connection was demoted (pt_conn_demote) */
  uint64_t trims;            /* times freed memory was handed back to the system */
  uint64_t protocol_errors;         /* = oversize + frame_timeouts */
  uint64_t oversize, frame_timeouts; /* frames over max_frame; left incomplete too long */
  uint64_t pauses;                  /* times a connection stopped being read (backpressure) */
  unsigned clients, paused;         /* now */
  unsigned waiting;                 /* now: connections that took their share, waiting for a turn */
} pt_server_stats;

/* Resolves host (a name, or a numeric IPv4 or IPv6 address without
 * brackets) with getaddrinfo, synchronously, and sets cfg->listen to every
 * address it has (at most PT_LISTEN_MAX, no duplicates) with this port.
 * Binds nothing. 0, or -1 with the reason in err. */
int pt_server_resolve(pt_server_config *cfg, const char *host, int port, char *err, size_t errlen);


/* Binds and listens on every address of cfg->listen. When a name gave
 * several, one this host cannot have (EADDRNOTAVAIL, EAFNOSUPPORT: e.g. ::1
 * with IPv6 off) is skipped with a warning as long as another listens; any
 * other failure fails the start. Returns NULL with a message in err on
 * failure (the caller still runs the loop to let the handles close). */
pt_server *pt_server_start(uv_loop_t *loop, const pt_server_config *cfg,
                           const pt_server_hooks *hooks, char *err, size_t errlen);
int pt_server_port(const pt_server *s);
/* The addresses listened on, with the port bound; returns how many. */
unsigned pt_server_addrs(const pt_server *s, struct sockaddr_storage *out, unsigned max);
/* Stops listening, closes every connection; done is called once all handles
 * are closed and memory is freed. */
void pt_server_stop(pt_server *s, void (*done)(void *arg), void *arg);
void pt_server_stats_get(const pt_server *s, pt_server_stats *out);

/* Writes what may go: every released segment, and the open output of each
 * connection with nothing held. Once per loop turn (the daemon's turn end). */
void pt_server_flush(pt_server *s);
/* Holds this turn's output (of every connection that got some) until
 * pt_server_release(seq): replies that must wait for a durable
 * acknowledgement. seq grows from call to call. */
void pt_server_seal(pt_server *s, uint64_t seq);
/* Lets every segment sealed with a sequence number <= seq go, in order, at
 * the next flush. */
void pt_server_release(pt_server *s, uint64_t seq);
/* Held output will never be released (its acknowledgement is in doubt):
 * every connection holding some is closed, so its client retries; so is
 * every connection with replies decided this turn and not yet sealed (a
 * doubt can come between a turn's decisions and its end, whose record is
 * then never sent: unsealed, those replies would leave unacknowledged). */
void pt_server_drop_held(pt_server *s);

/* Space for a reply frame of `len` bytes (the length prefix is written); the
 * caller fills it before returning to the loop. */
uint8_t *pt_conn_reply(pt_conn *c, size_t len);
/* The same for a reply that says nothing of the state (a refusal): a turn's
 * output made only of such replies is not sealed, so it does not wait for
 * an acknowledgement (behind output already held, it still keeps its
 * place). */
uint8_t *pt_conn_reply_stateless(pt_conn *c, size_t len);
/* Stop reading; close once everything queued is written. */
void pt_conn_close_after_flush(pt_conn *c);
/* c was refused for its own or its key's rate (or has not said who it is
 * where that is required): in this turn and the next it hands on a few
 * frames a turn at most, then waits its turn as any connection that took
 * its share. */
void pt_conn_demote(pt_conn *c);
/* Stop reading now; hold what is queued for ms (the hooks' clock), then
 * write it and close: a failed Hello is answered late, so guessing keys
 * costs a connection and a pause each. */
void pt_conn_close_after(pt_conn *c, uint64_t ms);
/* The peer's address, numeric ("1.2.3.4:5678"); "?" if unknown. */
const char *pt_conn_peer(pt_conn *c, char *buf, size_t size);
/* Calls fn for every connection not closing (fn may close it). */
void pt_server_each(pt_server *s, void (*fn)(void *ctx, pt_conn *c), void *ctx);
uint32_t *pt_conn_flags(pt_conn *c); /* free for the protocol layer's use */
#define PT_CONN_DATA 16
void *pt_conn_data(pt_conn *c); /* PT_CONN_DATA bytes, zeroed at accept: the protocol layer's */
/* A connection that waits for pushed messages (a subscriber): idle_ms
 * does not close it. */
void pt_conn_keep_when_idle(pt_conn *c);
uint64_t pt_conn_id(const pt_conn *c);

#endif
