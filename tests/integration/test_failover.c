/* libpintuan's failover over real sockets on 127.0.0.1: an address list
 * whose first entry is dead, a daemon stopped under a client that then
 * goes on with the next one, pipelined requests re-sent in order after a
 * connection dies unanswered, NOT_LEADER followed to the leader, and the
 * bounds on all of it. The CLI and the bench take the same lists (and the
 * bench [::1]:PORT).
 *
 * No daemon answers NOT_LEADER yet (that comes with the Redis mirror), so
 * a standby is played by a tiny TCP server in this file: real sockets,
 * real frames, every request answered NOT_LEADER naming a real daemon.
 * The same server plays a daemon that dies with requests unanswered. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "frame.h"
#include "harness.h"

#define OK PINTUAN__V1__STATUS__OK

/* ---- a port where nothing listens: bound, never listening (refused) ---- */

typedef struct dead_port {
  int fd, port;
  char addr[32];
} dead_port;

static void dead_open(dead_port *d) {
  d->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t len = sizeof a;
  assert_int_equal(bind(d->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(d->fd, (struct sockaddr *)&a, &len), 0);
  d->port = ntohs(a.sin_port);
  snprintf(d->addr, sizeof d->addr, "127.0.0.1:%d", d->port);
}

/* ---- a fake daemon: a standby, or one that dies mid-pipeline ---- */

enum { FAKE_NOT_LEADER, FAKE_SWALLOW, FAKE_SILENT };

typedef struct fake {
  int lfd, port, mode;
  char addr[32];
  char leader[64];   /* FAKE_NOT_LEADER: the address named */
  int swallow;       /* FAKE_SWALLOW: close a connection after this many frames, unanswered */
  atomic_int stop;
  pthread_t thread;
  /* what it read (read by the test after fake_stop) */
  uint64_t ids[256];
  char request_ids[256][16];
  int nids, conns;
} fake;

static void fake_answer(int fd, uint64_t id, const char *leader) {
  pintuan_response r = PINTUAN__V1__RESPONSE__INIT;
  r.has_id = 1, r.id = id;
  r.has_status = 1, r.status = PINTUAN__V1__STATUS__NOT_LEADER;
  r.detail = (char *)"this daemon is a standby";
  r.leader = (char *)leader;
  uint8_t buf[256];
  size_t n = pintuan__v1__response__pack(&r, buf + PT_FRAME_HEADER);
  pt_be32_put(buf, (uint32_t)n);
  raw_send(fd, buf, PT_FRAME_HEADER + n);
}

/* Serves one connection until the client closes it or the fake is done
 * with it. */
static void fake_serve(fake *f, int fd) {
  uint8_t in[1 << 16];
  size_t len = 0;
  int frames = 0;
  f->conns++;
  while (!atomic_load(&f->stop)) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20) <= 0) continue;
    ssize_t r = recv(fd, in + len, sizeof in - len, 0);
    if (r <= 0) break;
    len += (size_t)r;
    const uint8_t *msg;
    size_t mlen, off = 0;
    while (pt_frame_next(in + off, len - off, sizeof in, &msg, &mlen) == PT_FRAME_OK) {
      off += PT_FRAME_HEADER + mlen;
      pintuan_request *q = pintuan__v1__request__unpack(NULL, mlen, msg);
      if (!q) continue;
      if (f->nids < 256) {
        f->ids[f->nids] = q->id;
        f->request_ids[f->nids][0] = 0;
        if (q->op_case == PINTUAN__V1__REQUEST__OP_RESERVE)
          snprintf(f->request_ids[f->nids], 16, "%.*s", (int)q->reserve->request_id.len,
                   (const char *)q->reserve->request_id.data);
        f->nids++;
      }
      uint64_t id = q->id;
      pintuan__v1__request__free_unpacked(q, NULL);
      frames++;
      if (f->mode == FAKE_NOT_LEADER) fake_answer(fd, id, f->leader);
      if (f->mode == FAKE_SWALLOW && frames == f->swallow) {
        close(fd); /* dies with every request unanswered */
        return;
      }
    }
    memmove(in, in + off, len - off);
    len -= off;
  }
  close(fd);
}

static void *fake_main(void *arg) {
  fake *f = arg;
  while (!atomic_load(&f->stop)) {
    struct pollfd p = {.fd = f->lfd, .events = POLLIN};
    if (poll(&p, 1, 20) <= 0) continue;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd >= 0) fake_serve(f, fd);
  }
  return NULL;
}

static void fake_start(fake *f, int mode) {
  f->mode = mode;
  atomic_store(&f->stop, 0);
  f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t len = sizeof a;
  assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(f->lfd, 16), 0);
  assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
  f->port = ntohs(a.sin_port);
  snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->port);
  assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f) {
  atomic_store(&f->stop, 1);
  pthread_join(f->thread, NULL);
  close(f->lfd);
}

/* ---- helpers ---- */

static pintuan_client *connect_to(const char *addrs) {
  char err[512];
  pintuan_client *c = pintuan_connect(addrs, PT_WAIT_MS, err, sizeof err);
  if (!c) fail_msg("connect %s: %s", addrs, err);
  return c;
}

static void admin_hello(pintuan_client *c, const char *secret) {
  pintuan_response *r;
  assert_int_equal(pintuan_hello(c, "ops", secret, &r), 0);
  assert_int_equal(r->status, OK);
  assert_true(r->hello->admin);
  pintuan_response_free(r);
}

static int64_t held(pintuan_client *c, const char *campaign) {
  pintuan_response *r;
  int64_t h = get_campaign(c, campaign, &r)->held;
  pintuan_response_free(r);
  return h;
}

/* Runs a command (a shell line); its exit status, its stdout in out. */
static int run(const char *cmd, char *out, size_t outlen) {
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *tool(const char *env, const char *fallback) {
  return getenv(env) ? getenv(env) : fallback;
}

/* ---- tests ---- */

/* -a DEAD,ALIVE: the library, the CLI and the bench all go to the one
 * that answers. */
static void test_dead_then_alive(void **state) {
  (void)state;
  pt_daemon a;
  assert_int_equal(daemon_start(&a, NULL), 0);
  dead_port dead;
  dead_open(&dead);
  char list[128];
  snprintf(list, sizeof list, "%s,%s", dead.addr, a.addr);

  pintuan_client *c = connect_to(list);
  assert_string_equal(pintuan_peer(c), a.addr);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_int_equal(st.reconnects, 0);
  pintuan_close(c);

  /* the dead one alone: refused, and said so */
  char err[512];
  assert_null(pintuan_connect(dead.addr, PT_WAIT_MS, err, sizeof err));
  assert_non_null(strstr(err, "Connection refused"));
  assert_non_null(strstr(err, dead.addr));

  char cmd[1024], out[8192];
  snprintf(cmd, sizeof cmd, "%s -a %s ping", tool("PINTUAN_CLI", "./clients/pintuan-cli"), list);
  assert_int_equal(run(cmd, out, sizeof out), 0);
  snprintf(cmd, sizeof cmd, "%s -a %s -s mixed -c 2 -w 0 -d 0.3 --json --no-progress",
           tool("PINTUAN_BENCH", "./clients/pintuan-bench"), list);
  int rc = run(cmd, out, sizeof out);
  print_message("bench -a DEAD,ALIVE: %s", out);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "\"pass\":true"));
  close(dead.fd);
  assert_int_equal(daemon_stop(&a), 0);
}

/* A client on A, A stopped: the next call goes to B (the list's next),
 * with the session (the admin Hello) and the same request ids. */
static void test_stopped_daemon_fails_over_to_the_next(void **state) {
  (void)state;
  char dir[] = "/tmp/pt-fo-keys-XXXXXX", keys[64], tok[64];
  assert_non_null(mkdtemp(dir));
  assert_int_equal(make_key(dir, "ops", "admin", tok), 0);
  snprintf(keys, sizeof keys, "%s/keys", dir);
  const char *args[] = {"--keys", keys, NULL};
  pt_daemon a, b;
  assert_int_equal(daemon_start(&a, args), 0);
  assert_int_equal(daemon_start(&b, args), 0);
  pintuan_client *cb = connect_or_die(&b);
  admin_hello(cb, tok);
  assert_int_equal(create_flash(cb, "fo", 10, 1, 60000, 0), OK);
  pintuan_close(cb);

  char list[128];
  snprintf(list, sizeof list, "%s,%s", a.addr, b.addr);
  pintuan_client *c = connect_to(list);
  assert_string_equal(pintuan_peer(c), a.addr);
  admin_hello(c, tok);
  assert_int_equal(create_flash(c, "fo", 10, 1, 60000, 0), OK);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "fo", "u1", 1, "o-1", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);

  assert_int_equal(daemon_stop(&a), 0);
  assert_int_equal(pintuan_reserve(c, "fo", "u2", 1, "o-2", &r), 0);
  assert_int_equal(r->status, OK);
  assert_false(r->has_replay && r->replay);
  pintuan_response_free(r);
  assert_string_equal(pintuan_peer(c), b.addr);
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.reconnects, 1);
  assert_int_equal(st.resent, 1);
  assert_int_equal(st.redirects, 0);
  /* B knows this connection as admin: the Hello came along */
  pintuan_campaign_update up = {.fields = PINTUAN_UPDATE_STOCK, .stock = 20};
  assert_int_equal(pintuan_update_campaign(c, "fo", &up, "up-1", &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  /* and the reserve that failed over had one effect on B */
  assert_int_equal(pintuan_reserve(c, "fo", "u2", 1, "o-2", &r), 0);
  assert_true(r->has_replay && r->replay);
  pintuan_response_free(r);
  assert_int_equal(held(c, "fo"), 1);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&b), 0);
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* A subscriber whose daemon stops: on the next one its subscription is
 * made again before anything else, and the events of B arrive. */
static void test_subscription_follows_failover(void **state) {
  (void)state;
  pt_daemon a, b;
  assert_int_equal(daemon_start(&a, NULL), 0);
  assert_int_equal(daemon_start(&b, NULL), 0);
  pintuan_client *ca = connect_or_die(&a), *cb = connect_or_die(&b);
  assert_int_equal(create_flash(ca, "ev", 5, 0, 300, 0), OK);
  assert_int_equal(create_flash(cb, "ev", 5, 0, 300, 0), OK);
  pintuan_close(ca);
  char list[128];
  snprintf(list, sizeof list, "%s,%s", a.addr, b.addr);
  pintuan_client *sub = connect_to(list);
  const char *only_ev[] = {"ev", NULL};
  pintuan_response *r;
  assert_int_equal(pintuan_subscribe(sub, only_ev, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(daemon_stop(&a), 0);
  assert_int_equal(pintuan_ping(sub, &r), 0); /* over to B */
  pintuan_response_free(r);
  assert_string_equal(pintuan_peer(sub), b.addr);
  /* a hold on B expires: the subscriber hears of it */
  assert_int_equal(pintuan_reserve(cb, "ev", "u1", 1, "e-1", &r), 0);
  assert_int_equal(r->status, OK);
  uint64_t res = r->reservation->reservation_id;
  pintuan_response_free(r);
  advance_time(&b, cb, 300);
  assert_int_equal(pintuan_recv(sub, &r), 0);
  assert_int_equal(r->id, 0);
  assert_int_equal(r->result_case, PINTUAN__V1__RESPONSE__RESULT_EVENT);
  assert_int_equal(r->event->type, PINTUAN__V1__EVENT_TYPE__HOLD_EXPIRED);
  assert_int_equal(r->event->reservation_id, res);
  pintuan_response_free(r);
  pintuan_close(sub);
  pintuan_close(cb);
  assert_int_equal(daemon_stop(&b), 0);
}

/* A subscriber waiting for events (no timeout) when its daemon stops: its
 * own wait finds the connection lost, fails over, subscribes again, and
 * goes on waiting, for longer than the failover time, until B's events. */
typedef struct waiter {
  pintuan_client *sub;
  atomic_int done;
  int rc, type;
} waiter;

static void *wait_event(void *arg) {
  waiter *w = arg;
  pintuan_response *r;
  w->rc = pintuan_recv(w->sub, &r);
  if (w->rc == 0) {
    w->type = r->result_case == PINTUAN__V1__RESPONSE__RESULT_EVENT ? (int)r->event->type : -1;
    pintuan_response_free(r);
  }
  atomic_store(&w->done, 1);
  return NULL;
}

static void test_waiting_subscriber_follows_failover(void **state) {
  (void)state;
  pt_daemon a, b;
  assert_int_equal(daemon_start(&a, NULL), 0);
  assert_int_equal(daemon_start(&b, NULL), 0);
  pintuan_client *ca = connect_or_die(&a), *cb = connect_or_die(&b);
  assert_int_equal(create_flash(ca, "ev", 1000, 0, 300, 0), OK);
  assert_int_equal(create_flash(cb, "ev", 1000, 0, 300, 0), OK);
  pintuan_close(ca);
  char list[128];
  snprintf(list, sizeof list, "%s,%s", a.addr, b.addr);
  static waiter w;
  memset(&w, 0, sizeof w);
  w.sub = connect_to(list);
  pintuan_set_timeout(w.sub, -1);
  pintuan_set_failover(w.sub, 16, 300);
  const char *only_ev[] = {"ev", NULL};
  pintuan_response *r;
  assert_int_equal(pintuan_subscribe(w.sub, only_ev, &r), 0);
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, wait_event, &w), 0);
  assert_int_equal(daemon_stop(&a), 0);
  /* quiet for longer than the failover time, then holds expire on B, one
   * every round, until the subscriber has heard of one (its subscription
   * on B may not be in place for the first) */
  poll(NULL, 0, 1000);
  assert_false(atomic_load(&w.done)); /* still waiting, not given up */
  for (int i = 0; !atomic_load(&w.done); i++) {
    if (i == PT_WAIT_MS / 100) fail_msg("no event reached the subscriber");
    char user[16], rid[16];
    snprintf(user, sizeof user, "u%d", i);
    snprintf(rid, sizeof rid, "w-%d", i);
    assert_int_equal(pintuan_reserve(cb, "ev", user, 1, rid, &r), 0);
    pintuan_response_free(r);
    advance_time(&b, cb, 300);
    poll(NULL, 0, 100);
  }
  pthread_join(t, NULL);
  assert_int_equal(w.rc, 0);
  assert_int_equal(w.type, PINTUAN__V1__EVENT_TYPE__HOLD_EXPIRED);
  assert_string_equal(pintuan_peer(w.sub), b.addr);
  pintuan_close(w.sub);
  pintuan_close(cb);
  assert_int_equal(daemon_stop(&b), 0);
}

/* Pipelined: a daemon that reads five requests and dies without answering
 * any. The client sends all five again, in order, with the same ids, to
 * the next address, and gets their replies in order. */
static void test_pipelined_requests_resent_in_order(void **state) {
  (void)state;
  pt_daemon b;
  assert_int_equal(daemon_start(&b, NULL), 0);
  pintuan_client *cb = connect_or_die(&b);
  assert_int_equal(create_flash(cb, "pipe", 100, 1, 60000, 0), OK);
  static fake f;
  memset(&f, 0, sizeof f);
  f.swallow = 5;
  fake_start(&f, FAKE_SWALLOW);

  char list[128];
  snprintf(list, sizeof list, "%s,%s", f.addr, b.addr);
  pintuan_client *c = connect_to(list);
  assert_string_equal(pintuan_peer(c), f.addr);
  enum { N = 5 };
  pintuan_request q[N];
  Pintuan__V1__Reserve m[N];
  char users[N][8], rids[N][8];
  for (int i = 0; i < N; i++) {
    snprintf(users[i], 8, "u%d", i);
    snprintf(rids[i], 8, "p-%d", i);
    pintuan_req_reserve(&q[i], &m[i], "pipe", users[i], 1, rids[i]);
    assert_int_equal(pintuan_send(c, &q[i]), 0);
  }
  assert_int_equal(pintuan_flush(c), 0);
  for (int i = 0; i < N; i++) {
    pintuan_response *r;
    assert_int_equal(pintuan_recv(c, &r), 0);
    assert_int_equal(r->id, q[i].id);
    assert_int_equal(r->status, OK);
    assert_memory_equal(r->reservation->user_id.data, users[i], strlen(users[i]));
    pintuan_response_free(r);
  }
  assert_string_equal(pintuan_peer(c), b.addr);
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_int_equal(st.reconnects, 1);
  assert_int_equal(st.resent, N);
  fake_stop(&f);
  assert_int_equal(f.nids, N); /* the dead one read them all, the same ones */
  for (int i = 0; i < N; i++) {
    assert_int_equal(f.ids[i], q[i].id);
    assert_string_equal(f.request_ids[i], rids[i]);
  }
  assert_int_equal(held(cb, "pipe"), N);
  pintuan_close(c);
  pintuan_close(cb);
  assert_int_equal(daemon_stop(&b), 0);
}

/* A standby answers NOT_LEADER naming the primary, one of the client's
 * addresses (here written another way: localhost for 127.0.0.1): the
 * client goes there and sends the same request again, blocking or
 * pipelined. */
static void test_not_leader_is_followed(void **state) {
  (void)state;
  pt_daemon a;
  assert_int_equal(daemon_start(&a, NULL), 0);
  pintuan_client *ca = connect_or_die(&a);
  assert_int_equal(create_flash(ca, "nl", 100, 0, 60000, 0), OK);
  static fake f;
  memset(&f, 0, sizeof f);
  snprintf(f.leader, sizeof f.leader, "localhost:%d", a.port);
  fake_start(&f, FAKE_NOT_LEADER);
  char list[128];
  snprintf(list, sizeof list, "%s,%s", f.addr, a.addr);

  pintuan_client *c = connect_to(list);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "nl", "u1", 1, "nl-1", &r), 0);
  assert_int_equal(r->status, OK);
  uint64_t id = r->id;
  pintuan_response_free(r);
  assert_string_equal(pintuan_peer(c), a.addr);
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_int_equal(st.redirects, 1);
  assert_int_equal(st.reconnects, 1);
  /* the same request, again: a replay on the leader */
  assert_int_equal(pintuan_reserve(c, "nl", "u1", 1, "nl-1", &r), 0);
  assert_true(r->has_replay && r->replay);
  pintuan_response_free(r);
  pintuan_close(c);

  /* pipelined: every request in flight goes to the leader, in order */
  c = connect_to(list);
  enum { N = 3 };
  pintuan_request q[N];
  Pintuan__V1__Reserve m[N];
  char users[N][8], rids[N][8];
  for (int i = 0; i < N; i++) {
    snprintf(users[i], 8, "v%d", i);
    snprintf(rids[i], 8, "nv-%d", i);
    pintuan_req_reserve(&q[i], &m[i], "nl", users[i], 1, rids[i]);
    assert_int_equal(pintuan_send(c, &q[i]), 0);
  }
  assert_int_equal(pintuan_flush(c), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(pintuan_recv(c, &r), 0);
    assert_int_equal(r->id, q[i].id);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  pintuan_get_stats(c, &st);
  assert_int_equal(st.redirects, 1);
  pintuan_close(c);
  fake_stop(&f);
  /* the standby saw the first request with the id the leader answered */
  assert_true(f.nids >= 2);
  assert_int_equal(f.ids[0], id);
  assert_string_equal(f.request_ids[0], "nl-1");
  assert_int_equal(held(ca, "nl"), 1 + N);
  pintuan_close(ca);
  assert_int_equal(daemon_stop(&a), 0);
}

/* The security review's third finding: whoever could write the shard's
 * lease in Redis made the daemon answer NOT_LEADER naming any address, and
 * libpintuan followed, its Hello (and key) with it. A NOT_LEADER naming an
 * address not in the client's list is not followed: with nothing else to
 * try the caller gets the answer; with another address, failover goes
 * there. The stranger is never connected to. */
static void test_not_leader_to_a_stranger_is_not_followed(void **state) {
  (void)state;
  static fake stranger, f;
  memset(&stranger, 0, sizeof stranger);
  memset(&f, 0, sizeof f);
  fake_start(&stranger, FAKE_SILENT);
  snprintf(f.leader, sizeof f.leader, "%s", stranger.addr);
  fake_start(&f, FAKE_NOT_LEADER);
  pintuan_client *c = connect_to(f.addr);
  pintuan_response *r;
  assert_int_equal(pintuan_hello(c, "ops", "the-secret", &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_LEADER);
  pintuan_response_free(r);
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_int_equal(st.redirects, 0);
  assert_true(st.strangers >= 1);
  pintuan_close(c);

  pt_daemon a;
  assert_int_equal(daemon_start(&a, NULL), 0);
  pintuan_client *ca = connect_or_die(&a);
  assert_int_equal(create_flash(ca, "st", 10, 0, 60000, 0), OK);
  char list[128];
  snprintf(list, sizeof list, "%s,%s", f.addr, a.addr);
  c = connect_to(list);
  assert_int_equal(pintuan_reserve(c, "st", "u1", 1, "st-1", &r), 0);
  assert_int_equal(r->status, OK); /* the list's next, not the stranger */
  pintuan_response_free(r);
  assert_string_equal(pintuan_peer(c), a.addr);
  pintuan_get_stats(c, &st);
  assert_true(st.strangers >= 1);
  pintuan_close(c);
  fake_stop(&f);
  fake_stop(&stranger);
  assert_int_equal(stranger.conns, 0);
  pintuan_close(ca);
  assert_int_equal(daemon_stop(&a), 0);
}

/* A standby naming itself: the client follows at most max_attempts times,
 * then hands the NOT_LEADER reply over. */
static void test_redirect_loop_is_bounded(void **state) {
  (void)state;
  static fake f;
  memset(&f, 0, sizeof f);
  fake_start(&f, FAKE_NOT_LEADER);
  snprintf(f.leader, sizeof f.leader, "%s", f.addr);
  pintuan_client *c = connect_to(f.addr);
  pintuan_set_failover(c, 3, 10000);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__NOT_LEADER);
  assert_string_equal(r->leader, f.addr);
  pintuan_response_free(r);
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_int_equal(st.redirects, 3);
  pintuan_close(c);
  fake_stop(&f);
  assert_int_equal(f.conns, 4);
}

/* Nowhere to go: failover gives up after the attempts allowed, and says
 * so. Without failover a failure is final at once. */
static void test_failover_gives_up(void **state) {
  (void)state;
  pt_daemon a;
  assert_int_equal(daemon_start(&a, NULL), 0);
  pintuan_client *c = connect_or_die(&a), *plain = connect_or_die(&a);
  pintuan_set_failover(c, 3, 10000);
  pintuan_set_failover(plain, 0, 0);
  assert_int_equal(daemon_stop(&a), 0);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), -1);
  assert_null(r);
  print_message("gave up: %s\n", pintuan_error(c));
  assert_non_null(strstr(pintuan_error(c), "failover gave up after 3 attempts"));
  assert_non_null(strstr(pintuan_error(c), "Connection refused"));
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.reconnects, 0);
  assert_int_equal(pintuan_ping(plain, &r), -1);
  assert_null(strstr(pintuan_error(plain), "failover"));
  pintuan_get_stats(plain, &st);
  assert_int_equal(st.reconnects, 0);
  pintuan_close(plain);
  pintuan_close(c);
}

/* A daemon that takes requests and never answers: each wait ends at the
 * timeout, the request is sent again on a new connection, and the whole
 * call is over within its timeout and the failover time. */
static void test_silent_daemon_is_bounded(void **state) {
  (void)state;
  static fake f;
  memset(&f, 0, sizeof f);
  fake_start(&f, FAKE_SILENT);
  pintuan_client *c = connect_to(f.addr);
  pintuan_set_timeout(c, 1000);
  pintuan_set_failover(c, 16, 300);
  int64_t t0 = pt_mono_ns();
  pintuan_response *r;
  assert_int_equal(pintuan_ping(c, &r), -1);
  int64_t took_ms = (pt_mono_ns() - t0) / 1000000;
  print_message("silent daemon: %s, after %lld ms\n", pintuan_error(c), (long long)took_ms);
  /* 1000 + 300 ms: the waits after the first are cut to the failover time
   * left (a second whole timeout would make it 2000 ms at least) */
  assert_true(took_ms >= 1000 + 300 - 20);
  assert_true(took_ms < 1900);
  assert_non_null(strstr(pintuan_error(c), "timed out"));
  assert_non_null(strstr(pintuan_error(c), "failover gave up"));
  pintuan_stats st;
  pintuan_get_stats(c, &st);
  assert_true(st.reconnects >= 1);
  pintuan_close(c);
  fake_stop(&f);
  assert_true(f.nids >= 2); /* the same ping, sent again */
  assert_int_equal(f.ids[1], f.ids[0]);
}

/* The bench on [::1]:PORT (its own parser broke on it). */
static void test_bench_over_ipv6(void **state) {
  (void)state;
  int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int v6 = s >= 0 && bind(s, (struct sockaddr *)&a6, sizeof a6) == 0;
  if (s >= 0) close(s);
  if (!v6) skip(); /* no IPv6 loopback here */
  const char *args[] = {"--listen", "[::1]:0", NULL};
  pt_daemon d;
  assert_int_equal(daemon_start(&d, args), 0);
  char cmd[1024], out[8192];
  snprintf(cmd, sizeof cmd, "%s -a '[::1]:%d' -s mixed -c 2 -w 0 -d 0.3 --json --no-progress",
           tool("PINTUAN_BENCH", "./clients/pintuan-bench"), d.port);
  int rc = run(cmd, out, sizeof out);
  print_message("bench -a [::1]:%d: %s", d.port, out);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "\"status\":{\"OK\":"));
  assert_non_null(strstr(out, "\"pass\":true"));
  assert_int_equal(daemon_stop(&d), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dead_then_alive),
      cmocka_unit_test(test_stopped_daemon_fails_over_to_the_next),
      cmocka_unit_test(test_subscription_follows_failover),
      cmocka_unit_test(test_waiting_subscriber_follows_failover),
      cmocka_unit_test(test_pipelined_requests_resent_in_order),
      cmocka_unit_test(test_not_leader_is_followed),
      cmocka_unit_test(test_not_leader_to_a_stranger_is_not_followed),
      cmocka_unit_test(test_redirect_loop_is_bounded),
      cmocka_unit_test(test_failover_gives_up),
      cmocka_unit_test(test_silent_daemon_is_bounded),
      cmocka_unit_test(test_bench_over_ipv6),
  };
  return cmocka_run_group_tests_name("failover", tests, NULL, NULL);
}
