/* pintuan-abuse: abusive clients against one pintuand, for the abuse
 * benchmark (tests/bench/abuse.sh, BENCHMARKS.md). -n connections (default
 * 1000) shared among five kinds by --mix, each kind half one variant and
 * half the other:
 *   noread     pipelines ListCampaigns of 1000 (with a key, after its Hello)
 *              or Pings (a 64-byte payload, --ping-payload), never reading
 *   slowloris  a frame's bytes one at a time, one every --slow-ms: a frame
 *              announced as 60000 bytes that never ends, or a Ping, whose
 *              reply is read before the next Ping starts
 *   flood      Reserves naming --flood-users users (with a key, after its
 *              Hello: over the users' and the key's rates) or Pings without
 *              Hello, as fast as the socket takes them (or --flood-depth in
 *              flight); replies are read and counted by status
 *   badhello   a Hello with a wrong secret (for the key's name, or a name no
 *              key has), the answer awaited: its status and delay counted
 *   idle       nothing at all; or one Ping, then nothing
 * A connection the daemon closes is opened again --reconnect-ms later, so
 * each kind keeps its share for the whole run. Bounded: at most -n
 * connections at once, for -d seconds; then every socket is closed and the
 * tool exits. Only 127.0.0.0/8, to (-a) and from (--from).
 *
 * usage: pintuan-abuse -a 127.0.0.1:PORT [-n N] [-d SECONDS] [--mix N:S:F:B:I]
 *          [-k KEY_FILE] [--campaign ID] [--flood-users N] [--flood-depth N]
 *          [--slow-ms MS] [--reconnect-ms MS] [--from ADDR] [--sources N]
 *          [--ping-payload BYTES] [-j]
 * Prints a line per kind: connections opened, closed by the daemon (and
 * their lifetime), bytes sent, replies by status; -j: one JSON object.
 * Exit 0, 64 usage, 69 the daemon never accepted a connection. Not part
 * of the test suite. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "histogram.h"
#include "pintuan.h"
#include "wire.h"
#include "xalloc.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { K_NOREAD, K_SLOW, K_FLOOD, K_BADHELLO, K_IDLE, KINDS };
static const char *const KIND[KINDS] = {"noread", "slowloris", "flood", "badhello", "idle"};
enum { S_WAIT, S_CONNECTING, S_OPEN, S_DONE };
#define NSTATUS 24
#define REST_MAX (64 * 1024)
#define SLOW_FRAME 60000 /* announced, never sent whole */

typedef struct pattern { /* frames of one length, cyclic */
  uint8_t *p;
  size_t len, frame; /* bytes in all, of one frame */
} pattern;

typedef struct slot {
  int fd, kind, variant, state;
  int64_t next_at, opened_at, asked_at; /* ms */
  uint64_t sent;                         /* bytes of the pattern sent on this connection */
  uint64_t replies;                      /* frames read on this connection */
  pattern *pat;                          /* what it sends: noread, flood, slowloris' Ping */
  uint8_t *rest;                         /* a partial reply frame */
  size_t rest_len;
  bool done_asking;                      /* idle's one Ping, badhello's Hello: sent */
} slot;

typedef struct kstats {
  unsigned slots;
  uint64_t opened, failed, closed, bytes, replies, status[NSTATUS];
  pt_hist life;   /* of connections the daemon closed, ns */
  pt_hist answer; /* badhello: from its Hello to the reply, ns */
} kstats;

static struct {
  struct sockaddr_in to, from;
  int n, sources, flood_users, flood_depth, slow_ms, reconnect_ms, ping_payload, json;
  int mix[KINDS];
  double secs;
  const char *campaign, *key_file;
  char key_name[128], secret[128];
} o = {.n = 1000, .sources = 1, .flood_users = 8, .slow_ms = 1000, .reconnect_ms = 100, .ping_payload = 64, .secs = 10,
       .mix = {1, 1, 1, 1, 1}, .campaign = "abuse"};

static kstats ks[KINDS];
static slot *slots;
static int ep;
static uint8_t rbuf[256 * 1024 + REST_MAX];
static pattern pat_list, pat_ping, pat_slow_ping;
static uint8_t hello_ok[512], hello_bad[512], hello_unknown[512];
static size_t hello_ok_len, hello_bad_len, hello_unknown_len;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One framed request at out (room for 512 bytes); its length. */
static size_t frame_of(uint8_t *out, pintuan_request *q, uint64_t id) {
  q->has_id = 1, q->id = id;
  size_t n = pintuan__v1__request__get_packed_size(q);
  if (n + PT_FRAME_HEADER > 512) abort();
  pintuan__v1__request__pack(q, out + PT_FRAME_HEADER);
  pt_be32_put(out, (uint32_t)n);
  return PT_FRAME_HEADER + n;
}

/* k copies of one frame, with correlation ids 1..k of a fixed width. */
static void pattern_of(pattern *p, pintuan_request *q, size_t k) {
  uint8_t f[512];
  size_t len = frame_of(f, q, 1ull << 35); /* ids below 2^35 take 5 bytes as varints */
  p->frame = len;
  p->len = len * k;
  p->p = pt_xmalloc(p->len);
  for (size_t i = 0; i < k; i++) memcpy(p->p + i * len, f, len);
}

static void make_patterns(void) {
  pintuan_request q;
  Pintuan__V1__ListCampaigns lc;
  pintuan_req_list_campaigns(&q, &lc, 0, 1000);
  pattern_of(&pat_list, &q, 1024);
  static const uint8_t payload[64] = {0};
  Pintuan__V1__Ping p;
  pintuan_req_ping(&q, &p);
  p.has_payload = o.ping_payload > 0;
  p.payload = (ProtobufCBinaryData){(size_t)o.ping_payload, (uint8_t *)payload};
  pattern_of(&pat_ping, &q, 512);
  pintuan_req_ping(&q, &p); /* the slow one: no payload */
  pattern_of(&pat_slow_ping, &q, 1);
  Pintuan__V1__Hello h;
  pintuan_req_hello(&q, &h, o.key_name, o.secret);
  hello_ok_len = frame_of(hello_ok, &q, 1);
  pintuan_req_hello(&q, &h, o.key_name[0] ? o.key_name : "storefront", "not-the-secret-0123456789abcdef");
  hello_bad_len = frame_of(hello_bad, &q, 1);
  pintuan_req_hello(&q, &h, "nobody-has-this-key", "not-the-secret-0123456789abcdef");
  hello_unknown_len = frame_of(hello_unknown, &q, 1);
}

/* A flood slot's Reserves: 64 frames of one length, its own request ids,
 * the users taken in turn among --flood-users. */
static pattern *flood_pattern(int i) {
  pattern *p = pt_xcalloc(1, sizeof *p);
  enum { K = 64 };
  uint8_t f[512];
  for (int k = 0; k < K; k++) {
    char rid[40], user[32];
    snprintf(rid, sizeof rid, "abuse-%06d-%04d", i, k);
    snprintf(user, sizeof user, "abuser-%06d", (i * K + k) % o.flood_users);
    pintuan_request q;
    Pintuan__V1__Reserve r;
    pintuan_req_reserve(&q, &r, o.campaign, user, 1, rid);
    size_t len = frame_of(f, &q, 1ull << 35);
    if (!p->p) p->frame = len, p->len = len * K, p->p = pt_xmalloc(p->len);
    if (len != p->frame) abort(); /* fixed widths: every frame as long */
    memcpy(p->p + (size_t)k * len, f, len);
  }
  return p;
}

static void closed_by_daemon(slot *s, int64_t now);

static void watch(slot *s, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = s};
  epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static void open_slot(slot *s, int64_t now) {
  kstats *k = &ks[s->kind];
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) goto failed;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (s->kind == K_NOREAD) { /* replies pile up at the daemon, not in our kernel */
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  struct sockaddr_in from = o.from;
  from.sin_addr.s_addr = htonl(ntohl(o.from.sin_addr.s_addr) + (uint32_t)((s - slots) % o.sources));
  if (bind(fd, (struct sockaddr *)&from, sizeof from)) goto failed;
  if (connect(fd, (struct sockaddr *)&o.to, sizeof o.to) && errno != EINPROGRESS) goto failed;
  s->fd = fd;
  s->state = S_CONNECTING;
  s->sent = s->replies = 0;
  s->rest_len = 0;
  s->done_asking = false;
  s->opened_at = now;
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  return;
failed:
  if (fd >= 0) close(fd);
  k->failed++;
  s->state = S_WAIT;
  s->next_at = now + (o.reconnect_ms > 0 ? o.reconnect_ms : 100);
}

static void shut(slot *s, int64_t now) {
  epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->fd = -1;
  s->state = o.reconnect_ms >= 0 ? S_WAIT : S_DONE;
  s->next_at = now + (o.reconnect_ms > 0 ? o.reconnect_ms : 0);
}

static void closed_by_daemon(slot *s, int64_t now) {
  kstats *k = &ks[s->kind];
  k->closed++;
  pt_hist_record(&k->life, (uint64_t)(now - s->opened_at) * 1000000u);
  shut(s, now);
}

/* Small writes (a Hello, a Ping, a byte): all or nothing matters little;
 * false when the connection is gone. */
static bool say(slot *s, const uint8_t *p, size_t n) {
  ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN) return false;
  if (w > 0) ks[s->kind].bytes += (uint64_t)w;
  return true;
}

/* Sends s's pattern as far as the socket (and --flood-depth) allow. */
static bool pump(slot *s) {
  pattern *p = s->pat;
  for (int rounds = 0; rounds < 16; rounds++) {
    size_t off = (size_t)(s->sent % p->len), n = p->len - off;
    if (s->kind == K_FLOOD && o.flood_depth) {
      uint64_t allowed = (s->replies + (uint64_t)o.flood_depth) * p->frame;
      if (s->sent >= allowed) return true;
      if (allowed - s->sent < n) n = (size_t)(allowed - s->sent);
    }
    ssize_t w = send(s->fd, p->p + off, n, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN;
    s->sent += (uint64_t)w;
    ks[s->kind].bytes += (uint64_t)w;
    if ((size_t)w < n) return true;
  }
  return true;
}

/* The connection is up: its first words. */
static bool started(slot *s, int64_t now) {
  kstats *k = &ks[s->kind];
  k->opened++;
  s->state = S_OPEN;
  switch (s->kind) {
  case K_NOREAD:
    if (s->pat == &pat_list && !say(s, hello_ok, hello_ok_len)) return false;
    watch(s, EPOLLOUT | EPOLLRDHUP);
    return pump(s);
  case K_FLOOD:
    if (s->pat != &pat_ping && !say(s, hello_ok, hello_ok_len)) return false;
    s->replies = 0;
    s->sent = 0;
    watch(s, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    return pump(s);
  case K_SLOW:
    s->next_at = now; /* the first byte now */
    break;
  case K_BADHELLO:
    s->asked_at = now_ns();
    s->done_asking = true;
    if (s->variant ? !say(s, hello_unknown, hello_unknown_len) : !say(s, hello_bad, hello_bad_len)) return false;
    break;
  case K_IDLE:
    if (s->variant && !say(s, pat_slow_ping.p, pat_slow_ping.len)) return false;
    break;
  }
  watch(s, EPOLLIN | EPOLLRDHUP);
  return true;
}

/* Replies read and counted by status; false when the daemon closed. */
static bool drain(slot *s) {
  kstats *k = &ks[s->kind];
  for (int rounds = 0; rounds < 4; rounds++) { /* then the others' turn: epoll says it again */
    if (s->rest_len) memcpy(rbuf, s->rest, s->rest_len);
    size_t want = sizeof rbuf - s->rest_len;
    ssize_t r = recv(s->fd, rbuf + s->rest_len, want, 0);
    if (r == 0) return false;
    if (r < 0) return errno == EAGAIN;
    size_t n = s->rest_len + (size_t)r, off = 0;
    const uint8_t *msg;
    size_t len;
    pt_frame_status fs;
    while ((fs = pt_frame_next(rbuf + off, n - off, 1u << 24, &msg, &len)) == PT_FRAME_OK) {
      bw_reply rep;
      if (bw_reply_get(msg, len, &rep) == 0 && rep.status < NSTATUS) k->status[rep.status]++;
      if (s->kind == K_BADHELLO && s->replies == 0)
        pt_hist_record(&k->answer, (uint64_t)(now_ns() - s->asked_at));
      s->replies++;
      k->replies++;
      off += PT_FRAME_HEADER + len;
    }
    s->rest_len = n - off;
    if (fs == PT_FRAME_TOO_BIG || s->rest_len > REST_MAX) return false; /* not a pintuand */
    if (s->rest_len) {
      if (!s->rest) s->rest = pt_xmalloc(REST_MAX);
      memmove(s->rest, rbuf + off, s->rest_len);
    }
    if (s->kind == K_SLOW && s->variant && s->replies && s->sent % s->pat->len == 0)
      s->next_at = now_ms() + o.slow_ms; /* its Ping answered: the next one, slowly */
    if ((size_t)r < want) return true; /* the socket had no more */
  }
  return true;
}

/* A slowloris' next byte. */
static bool trickle(slot *s, int64_t now) {
  uint8_t b;
  if (s->variant == 0) { /* the header of a big frame, then zeros */
    uint8_t h[4];
    pt_be32_put(h, SLOW_FRAME);
    b = s->sent < 4 ? h[s->sent] : 0;
  } else {
    if (s->sent % s->pat->len == 0 && s->sent && s->replies < s->sent / s->pat->len) {
      s->next_at = now + o.slow_ms; /* waiting for the Pong */
      return true;
    }
    b = s->pat->p[s->sent % s->pat->len];
  }
  ssize_t w = send(s->fd, &b, 1, MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN) return false;
  if (w == 1) s->sent++, ks[K_SLOW].bytes++;
  s->next_at = now + o.slow_ms;
  return true;
}

static void on_event(slot *s, uint32_t ev, int64_t now) {
  if (s->state == S_CONNECTING) {
    int e = 0;
    socklen_t l = sizeof e;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l);
    if (e || (ev & (EPOLLERR | EPOLLHUP))) {
      ks[s->kind].failed++;
      shut(s, now);
      return;
    }
    if (!started(s, now)) closed_by_daemon(s, now);
    return;
  }
  if (s->state != S_OPEN) return;
  /* what came before a close is read first (drain reads to the end) */
  if ((ev & EPOLLIN) && !drain(s)) return closed_by_daemon(s, now);
  if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) return closed_by_daemon(s, now);
  if ((ev & EPOLLOUT) && !pump(s)) return closed_by_daemon(s, now);
}

static void on_time(slot *s, int64_t now) {
  if (s->state == S_WAIT) {
    open_slot(s, now);
  } else if (s->state == S_OPEN && s->kind == K_SLOW) {
    if (!trickle(s, now)) closed_by_daemon(s, now);
  } else {
    s->next_at = INT64_MAX;
  }
}

static int usage(const char *why) {
  if (why) fprintf(stderr, "pintuan-abuse: %s\n", why);
  fprintf(stderr,
          "usage: pintuan-abuse -a 127.0.0.1:PORT [-n N] [-d SECONDS] [--mix N:S:F:B:I]\n"
          "         [-k KEY_FILE] [--campaign ID] [--flood-users N] [--flood-depth N]\n"
          "         [--slow-ms MS] [--reconnect-ms MS] [--from ADDR] [--sources N]\n"
          "         [--ping-payload BYTES] [-j]\n"
          "  -n N              connections at once (default 1000, at most 20000)\n"
          "  -d SECONDS        how long (default 10); then every socket is closed\n"
          "  --mix N:S:F:B:I   shares of noread, slowloris, flood, badhello, idle (default 1:1:1:1:1)\n"
          "  -k KEY_FILE       a key (NAME SECRET): noread's ListCampaigns and flood's Reserves\n"
          "                    say Hello with it; badhello uses its name with a wrong secret\n"
          "  --campaign ID     what the Reserves name (default abuse)\n"
          "  --flood-users N   users the Reserves name (default 8)\n"
          "  --flood-depth N   flood requests in flight (default 0: as many as the socket takes)\n"
          "  --slow-ms MS      a slowloris byte every MS (default 1000)\n"
          "  --reconnect-ms MS a connection the daemon closed is opened again after MS\n"
          "                    (default 100; -1: never)\n"
          "  --from ADDR       source address (default 127.0.0.2); --sources N: ADDR and the\n"
          "                    N-1 after it, in turn\n"
          "  --ping-payload B  the Pings' payload, 0..64 bytes (default 64; 0: 12-byte frames)\n"
          "Only 127.0.0.0/8, from and to.\n");
  return 64;
}

static bool loopback4(const char *s, struct sockaddr_in *a) {
  a->sin_family = AF_INET;
  return inet_pton(AF_INET, s, &a->sin_addr) == 1 && (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

static int parse(int argc, char **argv) {
  bool have_to = false;
  loopback4("127.0.0.2", &o.from);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(NULL);
    if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
      o.json = 1;
      continue;
    }
    if (!v) return usage(a);
    i++;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    bool num = end && end != v && !*end;
    if (!strcmp(a, "-a")) {
      char host[64];
      const char *colon = strrchr(v, ':');
      if (!colon || colon - v >= (long)sizeof host) return usage("-a: give 127.x.y.z:PORT");
      memcpy(host, v, (size_t)(colon - v));
      host[colon - v] = 0;
      int port = atoi(colon + 1);
      if (!loopback4(host, &o.to) || port <= 0 || port > 65535) return usage("-a: only 127.0.0.0/8, with a port");
      o.to.sin_port = htons((uint16_t)port);
      have_to = true;
    } else if (!strcmp(a, "-n") && num && n >= 1 && n <= 20000) {
      o.n = (int)n;
    } else if (!strcmp(a, "-d")) {
      o.secs = strtod(v, &end);
      if (*end || !(o.secs > 0 && o.secs <= 3600)) return usage("-d: seconds, 0 < D <= 3600");
    } else if (!strcmp(a, "--mix")) {
      if (sscanf(v, "%d:%d:%d:%d:%d", &o.mix[0], &o.mix[1], &o.mix[2], &o.mix[3], &o.mix[4]) != 5)
        return usage("--mix: five weights N:S:F:B:I");
      for (int k = 0; k < KINDS; k++)
        if (o.mix[k] < 0 || o.mix[k] > 1000000) return usage("--mix: weights 0..1000000");
    } else if (!strcmp(a, "-k")) {
      o.key_file = v;
    } else if (!strcmp(a, "--campaign") && *v && strlen(v) <= 64) {
      o.campaign = v;
    } else if (!strcmp(a, "--flood-users") && num && n >= 1 && n <= 1000000) {
      o.flood_users = (int)n;
    } else if (!strcmp(a, "--flood-depth") && num && n >= 0 && n <= 1000000) {
      o.flood_depth = (int)n;
    } else if (!strcmp(a, "--slow-ms") && num && n >= 1 && n <= 600000) {
      o.slow_ms = (int)n;
    } else if (!strcmp(a, "--reconnect-ms") && num && n >= -1 && n <= 600000) {
      o.reconnect_ms = (int)n;
    } else if (!strcmp(a, "--from")) {
      if (!loopback4(v, &o.from)) return usage("--from: an IPv4 address in 127.0.0.0/8");
    } else if (!strcmp(a, "--ping-payload") && num && n >= 0 && n <= 64) {
      o.ping_payload = (int)n;
    } else if (!strcmp(a, "--sources") && num && n >= 1 && n <= 65536) {
      o.sources = (int)n;
    } else {
      char why[160];
      snprintf(why, sizeof why, "%s: bad value '%s'", a, v);
      return usage(why);
    }
  }
  if (!have_to) return usage("-a is required");
  if ((ntohl(o.from.sin_addr.s_addr) & 0xffffff) + (uint32_t)o.sources > 0xffffff)
    return usage("--sources: past 127.255.255.255");
  int sum = 0;
  for (int k = 0; k < KINDS; k++) sum += o.mix[k];
  if (!sum) return usage("--mix: all zero");
  if (o.key_file) {
    char err[256];
    if (pintuan_read_key_file(o.key_file, o.key_name, sizeof o.key_name, o.secret, sizeof o.secret, err,
                              sizeof err)) {
      fprintf(stderr, "pintuan-abuse: %s\n", err);
      return 64;
    }
  }
  return 0;
}

static void report(double secs) {
  if (o.json) {
    printf("{\"duration_s\":%.3f,\"connections\":%d,\"kinds\":{", secs, o.n);
    for (int k = 0; k < KINDS; k++) {
      kstats *s = &ks[k];
      printf("%s\"%s\":{\"slots\":%u,\"opened\":%llu,\"failed\":%llu,\"closed_by_daemon\":%llu,"
             "\"life_ms_p50\":%.1f,\"bytes_sent\":%llu,\"replies\":%llu,\"answer_ms_p50\":%.1f,"
             "\"answer_ms_max\":%.1f,\"status\":{",
             k ? "," : "", KIND[k], s->slots, (unsigned long long)s->opened, (unsigned long long)s->failed,
             (unsigned long long)s->closed, s->life.count ? pt_hist_percentile(&s->life, 50) / 1e6 : 0,
             (unsigned long long)s->bytes, (unsigned long long)s->replies,
             s->answer.count ? pt_hist_percentile(&s->answer, 50) / 1e6 : 0,
             s->answer.count ? (double)s->answer.max / 1e6 : 0);
      bool first = true;
      for (int st = 0; st < NSTATUS; st++) {
        if (!s->status[st]) continue;
        printf("%s\"%s\":%llu", first ? "" : ",",
               protobuf_c_enum_descriptor_get_value(&pintuan__v1__status__descriptor, st)->name,
               (unsigned long long)s->status[st]);
        first = false;
      }
      printf("}}");
    }
    printf("}}\n");
    return;
  }
  printf("%.1f s, %d connections at once\n", secs, o.n);
  printf("%-10s %6s %8s %7s %9s %12s %10s %10s  replies by status\n", "kind", "slots", "opened", "failed",
         "closed", "life p50 ms", "MB sent", "replies");
  for (int k = 0; k < KINDS; k++) {
    kstats *s = &ks[k];
    printf("%-10s %6u %8llu %7llu %9llu %12.0f %10.1f %10llu ", KIND[k], s->slots, (unsigned long long)s->opened,
           (unsigned long long)s->failed, (unsigned long long)s->closed,
           s->life.count ? pt_hist_percentile(&s->life, 50) / 1e6 : 0, (double)s->bytes / 1e6,
           (unsigned long long)s->replies);
    for (int st = 0; st < NSTATUS; st++)
      if (s->status[st])
        printf(" %s=%llu", protobuf_c_enum_descriptor_get_value(&pintuan__v1__status__descriptor, st)->name,
               (unsigned long long)s->status[st]);
    if (s->answer.count)
      printf("  (answered after p50 %.0f ms, max %.0f ms)", pt_hist_percentile(&s->answer, 50) / 1e6,
             (double)s->answer.max / 1e6);
    printf("\n");
  }
}

int main(int argc, char **argv) {
  int rc = parse(argc, argv);
  if (rc) return rc;
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.n + 16) {
    fprintf(stderr, "pintuan-abuse: the open-file limit %llu is below %d connections (ulimit -n)\n",
            (unsigned long long)rl.rlim_cur, o.n);
    return 64;
  }
  make_patterns();
  for (int k = 0; k < KINDS; k++) pt_hist_reset(&ks[k].life), pt_hist_reset(&ks[k].answer);
  ep = epoll_create1(EPOLL_CLOEXEC);
  slots = pt_xcalloc((size_t)o.n, sizeof *slots);
  int sum = 0;
  for (int k = 0; k < KINDS; k++) sum += o.mix[k];
  int64_t t0 = now_ms();
  /* kinds interleaved by weight, so every kind starts at once */
  int given[KINDS] = {0};
  for (int i = 0; i < o.n; i++) {
    int best = 0;
    double lag = -1e18;
    for (int k = 0; k < KINDS; k++) { /* the kind furthest behind its share */
      double l = (double)o.mix[k] * (i + 1) / sum - given[k];
      if (o.mix[k] && l > lag) lag = l, best = k;
    }
    slot *s = &slots[i];
    s->fd = -1;
    s->kind = best;
    s->variant = given[best]++ % 2;
    ks[best].slots++;
    s->state = S_WAIT;
    s->next_at = t0 + i / 100; /* 100 connections a ms at most, to start */
    if (best == K_NOREAD) s->pat = s->variant == 0 && o.key_file ? &pat_list : &pat_ping;
    if (best == K_FLOOD) s->pat = s->variant == 0 && o.key_file ? flood_pattern(i) : &pat_ping;
    if (best == K_SLOW) s->pat = &pat_slow_ping;
  }
  int64_t end = t0 + (int64_t)(o.secs * 1000);
  struct epoll_event evs[512];
  int64_t now = t0;
  while (now < end) {
    int n = epoll_wait(ep, evs, 512, 5);
    now = now_ms();
    for (int e = 0; e < n; e++) on_event(evs[e].data.ptr, evs[e].events, now);
    for (int i = 0; i < o.n; i++)
      if (slots[i].next_at <= now) on_time(&slots[i], now);
  }
  uint64_t opened = 0;
  for (int i = 0; i < o.n; i++) {
    if (slots[i].fd >= 0) close(slots[i].fd);
    free(slots[i].rest);
    if (slots[i].kind == K_FLOOD && slots[i].pat != &pat_ping) {
      free(slots[i].pat->p);
      free(slots[i].pat);
    }
  }
  for (int k = 0; k < KINDS; k++) opened += ks[k].opened;
  report((double)(now - t0) / 1000);
  free(slots);
  free(pat_list.p), free(pat_ping.p), free(pat_slow_ping.p);
  close(ep);
  return opened ? 0 : 69;
}
