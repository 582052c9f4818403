/* floor_client: a lean load generator for floor_server, the other half of
 * the floor. Plain epoll, one thread, N connections each keeping P
 * requests in flight: a reply read makes room, the same number of requests
 * goes out in one write. Each request is one fixed Reserve with its own id;
 * the clock is read once per epoll_wait. Every reply's id is checked
 * against the request it answers (replies come back in order), so a floor
 * that skips or garbles frames is caught, not measured.
 *
 * usage: floor_client -a HOST:PORT [-c CONNS] [-p PIPELINE] [-d SECONDS]
 *                     [-w WARMUP] [-j]
 * Prints the measured throughput and latency (from the write of a request
 * to the read of its reply); -j: one JSON line. Exit 1 on a wrong or
 * missing reply, 69 when it cannot connect. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "frame.h"
#include "histogram.h"
#include "pintuan.pb-c.h"
#include "wire.h"
#include "xalloc.h"

#define IN_CAP (256u << 10)

typedef struct lconn {
  int fd;
  uint8_t *in;
  size_t in_len;
  uint8_t *out; /* what a write left unsent */
  size_t out_off, out_len, out_cap;
  int64_t *sent; /* ring of send times, in request order */
  uint64_t *ids;
  uint32_t head, n;
  uint64_t next_id;
} lconn;

static uint8_t body[256]; /* the request after its id field */
static size_t body_len;
static int depth = 16;
static pt_hist lat;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void make_body(void) {
  Pintuan__V1__Reserve rs = PINTUAN__V1__RESERVE__INIT;
  rs.request_id = (ProtobufCBinaryData){18, (uint8_t *)"b1234567-12-123456"};
  rs.campaign_id = (ProtobufCBinaryData){13, (uint8_t *)"bench-floor-0"};
  rs.user_id = (ProtobufCBinaryData){7, (uint8_t *)"u123456"};
  rs.has_quantity = 1;
  rs.quantity = 1;
  Pintuan__V1__Request q = PINTUAN__V1__REQUEST__INIT;
  q.op_case = PINTUAN__V1__REQUEST__OP_RESERVE;
  q.reserve = &rs;
  if (pintuan__v1__request__get_packed_size(&q) > sizeof body) abort();
  body_len = pintuan__v1__request__pack(&q, body);
}

static size_t put_varint(uint8_t *o, uint64_t v) {
  size_t k = 0;
  do {
    o[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return k;
}


/* Appends k requests to c's output and records them in flight. */
static void queue(lconn *c, int k, int64_t t) {
  size_t need = c->out_len + (size_t)k * (body_len + 16);
  if (need > c->out_cap) {
    c->out_cap = need * 2;
    c->out = pt_xrealloc(c->out, c->out_cap);
  }
  for (int i = 0; i < k; i++) {
    uint8_t *f = c->out + c->out_len;
    uint64_t id = ++c->next_id;
    f[4] = 0x08;
    size_t l = 1 + put_varint(f + 5, id);
    memcpy(f + 4 + l, body, body_len);
    l += body_len;
    pt_be32_put(f, (uint32_t)l);
    c->out_len += 4 + l;
    uint32_t slot = (c->head + c->n++) % (uint32_t)depth;
    c->sent[slot] = t;
    c->ids[slot] = id;
  }
}

/* Writes what c has queued; 0, or -1 when the connection failed. */
static int flush(lconn *c) {
  while (c->out_off < c->out_len) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    c->out_off += (size_t)w;
  }
  c->out_off = c->out_len = 0;
  return 0;
}

int main(int argc, char **argv) {
  const char *addr = NULL;
  int conns = 50, json = 0;
  double secs = 5, warm = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-j")) json = 1;
    else if (v && !strcmp(a, "-a")) addr = v, i++;
    else if (v && !strcmp(a, "-c")) conns = atoi(v), i++;
    else if (v && !strcmp(a, "-p")) depth = atoi(v), i++;
    else if (v && !strcmp(a, "-d")) secs = atof(v), i++;
    else if (v && !strcmp(a, "-w")) warm = atof(v), i++;
    else addr = NULL, i = argc;
  }
  if (!addr || conns < 1 || conns > 100000 || depth < 1 || depth > 4096 || secs <= 0 || warm < 0) {
    fprintf(stderr, "usage: floor_client -a HOST:PORT [-c CONNS] [-p PIPELINE] [-d SECONDS] [-w WARMUP] [-j]\n");
    return 64;
  }
  make_body();
  pt_hist_reset(&lat);
  pt_addr pa;
  struct sockaddr_storage ss;
  char err[256];
  if (pt_addr_parse(addr, -1, &pa, err, sizeof err) || pt_addr_resolve(&pa, false, &ss, 1, err, sizeof err) < 0) {
    fprintf(stderr, "floor_client: %s\n", err);
    return 64;
  }
  int ep = epoll_create1(0);
  lconn *cs = pt_xcalloc((size_t)conns, sizeof *cs);
  for (int i = 0; i < conns; i++) {
    lconn *c = &cs[i];
    c->fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in))) {
      fprintf(stderr, "floor_client: connect %s: %s\n", addr, strerror(errno));
      return 69;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->in = pt_xmalloc(IN_CAP);
    c->sent = pt_xmalloc((size_t)depth * sizeof *c->sent);
    c->ids = pt_xmalloc((size_t)depth * sizeof *c->ids);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  int64_t t0 = now_ns(), t_measure = t0 + (int64_t)(warm * 1e9), t_end = t_measure + (int64_t)(secs * 1e9);
  for (int i = 0; i < conns; i++) {
    queue(&cs[i], depth, t0);
    if (flush(&cs[i])) {
      fprintf(stderr, "floor_client: write: %s\n", strerror(errno));
      return 69;
    }
  }
  uint64_t measured = 0, wrong = 0, lost = 0;
  struct epoll_event evs[256];
  int64_t t = t0;
  while (t < t_end) {
    int n = epoll_wait(ep, evs, 256, 10000);
    t = now_ns();
    bool measure = t >= t_measure && t < t_end;
    for (int e = 0; e < n; e++) {
      lconn *c = evs[e].data.ptr;
      if (evs[e].events & EPOLLOUT) {
        if (flush(c)) goto dead;
        if (c->out_len == 0) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      ssize_t r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
      if (r == 0 || (r < 0 && errno != EAGAIN)) goto dead;
      if (r < 0) continue;
      c->in_len += (size_t)r;
      size_t off = 0;
      int got = 0;
      const uint8_t *msg;
      size_t len;
      while (pt_frame_next(c->in + off, c->in_len - off, IN_CAP - 4, &msg, &len) == PT_FRAME_OK) {
        if (!c->n || bw_first_id(msg, len) != c->ids[c->head]) wrong++;
        if (c->n) {
          if (measure) pt_hist_record(&lat, (uint64_t)(t - c->sent[c->head]));
          c->head = (c->head + 1) % (uint32_t)depth;
          c->n--;
        }
        measured += measure;
        got++;
        off += 4 + len;
      }
      memmove(c->in, c->in + off, c->in_len - off);
      c->in_len -= off;
      if (got) {
        bool idle = c->out_len == 0;
        queue(c, got, t);
        if (flush(c)) goto dead;
        if (idle && c->out_len) {
          struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      continue;
    dead:
      fprintf(stderr, "floor_client: a connection was lost\n");
      lost++;
      epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    }
    if (n == 0) {
      fprintf(stderr, "floor_client: no reply for 10 seconds\n");
      lost++;
      break;
    }
  }
  double tput = (double)measured / secs;
  double p50 = (double)pt_hist_percentile(&lat, 50) / 1e3, p99 = (double)pt_hist_percentile(&lat, 99) / 1e3,
         mx = (double)pt_hist_percentile(&lat, 100) / 1e3;
  if (json)
    printf("{\"throughput_rps\":%.1f,\"requests\":%llu,\"latency_us\":{\"50\":%.1f,\"99\":%.1f,\"max\":%.1f},"
           "\"wrong_replies\":%llu,\"lost\":%llu}\n",
           tput, (unsigned long long)measured, p50, p99, mx, (unsigned long long)wrong, (unsigned long long)lost);
  else
    printf("floor_client: %d connections x pipeline %d, %.1f s: %.0f replies/s, p50 %.3f ms, p99 %.3f ms, "
           "max %.3f ms; %llu wrong replies, %llu connections lost\n",
           conns, depth, secs, tput, p50 / 1e3, p99 / 1e3, mx / 1e3, (unsigned long long)wrong,
           (unsigned long long)lost);
  for (int i = 0; i < conns; i++) {
    close(cs[i].fd);
    free(cs[i].in);
    free(cs[i].out);
    free(cs[i].sent);
    free(cs[i].ids);
  }
  free(cs);
  close(ep);
  return wrong || lost ? 1 : 0;
}
