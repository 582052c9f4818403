/* stat.c: pintuan-cli stat, the daemon's /stats/stream (its admin port)
 * printed one line per second, a header every 20 lines, in the spirit of
 * redis-cli --stat. The admin port is the primary's among -a's daemons
 * (each says where its admin port listens, and its role, in Hello), and
 * when its stream ends stat follows the next primary's. The HTTP answer is parsed with http-parser; each line
 * of the body is one JSON object (jansson). With -j the lines are printed
 * as they come. */
#include "stat.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "pintuan.h"

#define ADMIN_PORT 7734
#define HEADER_EVERY 20

typedef struct stat_run {
  const cli_ctx *c;
  int64_t want, shown; /* lines to print (0: no end), printed */
  int status;          /* the HTTP status */
  char line[4096];     /* the body line being assembled */
  size_t len;
  char err[512]; /* a non-200 answer's body */
  size_t errlen;
  int rc; /* set to stop: the exit status */
} stat_run;

static void print_header(void) {
  printf("%9s %9s %11s %8s %7s %9s %7s %8s  %s\n", "req/s", "ok/s", "sold-out/s", "p99 ms",
         "conns", "holds", "groups", "lag ms", "role");
}

static void show_line(stat_run *s, const char *text) {
  if (s->c->json) {
    printf("%s\n", text);
  } else {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) {
      fprintf(stderr, "pintuan-cli: stat: not a stats line: %s\n", je.text);
      s->rc = EX_PROTOCOL;
      return;
    }
    if (s->shown % HEADER_EVERY == 0) print_header();
    json_t *lag = json_object_get(j, "mirror_lag_ms");
    char lag_s[32] = "-";
    if (lag) snprintf(lag_s, sizeof lag_s, "%.1f", json_number_value(lag));
    printf("%9lld %9lld %11lld %8.2f %7lld %9lld %7lld %8s  %s\n",
           (long long)json_integer_value(json_object_get(j, "req_s")),
           (long long)json_integer_value(json_object_get(j, "ok_s")),
           (long long)json_integer_value(json_object_get(j, "sold_out_s")),
           json_number_value(json_object_get(j, "p99_ms")),
           (long long)json_integer_value(json_object_get(j, "conns")),
           (long long)json_integer_value(json_object_get(j, "holds")),
           (long long)json_integer_value(json_object_get(j, "open_groups")), lag_s,
           json_string_value(json_object_get(j, "role")) ? json_string_value(json_object_get(j, "role")) : "?");
    json_decref(j);
  }
  fflush(stdout);
  if (s->want && ++s->shown >= s->want) s->rc = 0;
  else if (!s->want) s->shown++;
}

static int on_headers_complete(http_parser *p) {
  stat_run *s = p->data;
  s->status = p->status_code;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  stat_run *s = p->data;
  if (s->status != 200) { /* the reason, to print */
    size_t take = n < sizeof s->err - 1 - s->errlen ? n : sizeof s->err - 1 - s->errlen;
    memcpy(s->err + s->errlen, at, take);
    s->err[s->errlen += take] = 0;
    return 0;
  }
  for (size_t i = 0; i < n && s->rc < 0; i++) {
    if (at[i] != '\n') {
      if (s->len < sizeof s->line - 1) s->line[s->len++] = at[i];
      continue;
    }
    s->line[s->len] = 0;
    s->len = 0;
    show_line(s, s->line);
  }
  return 0;
}

/* What a daemon of -a says of itself (Hello): its admin port's address,
 * with a wildcard host replaced by the host we reached it at, and its
 * role. 0, or -1 when it cannot be asked (down, or a daemon too old to
 * say: its admin_address is then ""). */
static int ask(const cli_ctx *c, const pt_addr *at, pt_addr *admin, char *role, size_t rolelen) {
  char where[PT_HOST_MAX + 16], err[1024];
  pt_addr_str(at, where, sizeof where);
  pintuan_client *k = cli_dial(c, where, err, sizeof err);
  if (!k) return -1;
  pintuan_set_failover(k, 0, 0); /* this daemon's own answer, not another's */
  pintuan_response *r = NULL;
  int rc = -1;
  if (pintuan_hello(k, c->key, c->secret, &r) == 0 && r->hello && r->hello->admin_address &&
      *r->hello->admin_address && !pt_addr_parse(r->hello->admin_address, -1, admin, err, sizeof err)) {
    if (!strcmp(admin->host, "0.0.0.0") || !strcmp(admin->host, "::"))
      memcpy(admin->host, at->host, sizeof admin->host); /* any address of that host */
    snprintf(role, rolelen, "%s", r->hello->role ? r->hello->role : "");
    rc = 0;
  }
  pintuan_response_free(r);
  pintuan_close(k);
  return rc;
}

/* The admin port to read: --admin; else the one the primary among -a's
 * daemons names (the first daemon that answers when none is the primary);
 * else -a's first host on the default admin port. *primary: it is the
 * primary's (or a memory-only daemon's). EX_OK, or EX_USAGE. */
static int admin_address(const cli_ctx *c, const char *admin, pt_addr *out, bool *primary) {
  char err[160];
  *primary = false;
  if (admin) {
    if (pt_addr_parse(admin, ADMIN_PORT, out, err, sizeof err))
      return fprintf(stderr, "pintuan-cli: stat: --admin: %s\n", err), EX_USAGE;
    *primary = true; /* as asked: not followed elsewhere */
    return 0;
  }
  pt_addr list[8];
  int n = pt_addr_parse_list(c->addr, PT_DEFAULT_PORT, list, 8, err, sizeof err);
  if (n < 1) return fprintf(stderr, "pintuan-cli: stat: -a: %s\n", err), EX_USAGE;
  bool found = false;
  for (int i = 0; i < n; i++) {
    pt_addr a;
    char role[32];
    if (ask(c, &list[i], &a, role, sizeof role)) continue;
    bool decides = !strcmp(role, "primary") || !strcmp(role, "memory-only");
    if (!found || decides) *out = a, found = true;
    if (decides) {
      *primary = true;
      break;
    }
  }
  if (!found) { /* nobody said: the default port on -a's first host */
    *out = list[0];
    out->port = ADMIN_PORT;
  }
  return 0;
}

/* Connects within the timeout: the socket, or -1 after saying why. */
static int dial(const pt_addr *a, int timeout_ms) {
  struct sockaddr_storage ss[4];
  char err[256], where[PT_HOST_MAX + 16];
  pt_addr_str(a, where, sizeof where);
  int n = pt_addr_resolve(a, false, ss, 4, err, sizeof err);
  if (n < 0) {
    fprintf(stderr, "pintuan-cli: stat: %s\n", err);
    return -1;
  }
  int last = 0;
  for (int i = 0; i < n; i++) {
    int fd = socket(ss[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    socklen_t len = ss[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (connect(fd, (struct sockaddr *)&ss[i], len) == 0 || errno == EINPROGRESS) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int e = 0;
      socklen_t el = sizeof e;
      if (poll(&p, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && !e) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
      }
      last = e ? e : ETIMEDOUT;
    } else {
      last = errno;
    }
    close(fd);
  }
  fprintf(stderr, "pintuan-cli: stat: cannot reach the admin port at %s: %s\n", where, strerror(last));
  return -1;
}

/* One stream from the admin port at a: its lines printed until s wants no
 * more (s->rc >= 0) or the stream ends (EX_UNAVAILABLE, after saying why). */
static int stream(const cli_ctx *c, const pt_addr *a, stat_run *s) {
  int fd = dial(a, c->timeout_ms);
  if (fd < 0) return EX_UNAVAILABLE;
  char req[1024], host[PT_HOST_MAX + 16], auth[512] = "";
  if (c->key) snprintf(auth, sizeof auth, "Authorization: Bearer %s:%s\r\n", c->key, c->secret);
  int n = snprintf(req, sizeof req, "GET /stats/stream HTTP/1.1\r\nHost: %s\r\n%s\r\n",
                   pt_addr_str(a, host, sizeof host), auth);
  if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
    fprintf(stderr, "pintuan-cli: stat: %s: cannot send the request\n", host);
    close(fd);
    return EX_UNAVAILABLE;
  }
  s->status = 0, s->len = 0, s->errlen = 0, s->err[0] = 0;
  http_parser p;
  http_parser_init(&p, HTTP_RESPONSE);
  p.data = s;
  http_parser_settings hs;
  http_parser_settings_init(&hs);
  hs.on_headers_complete = on_headers_complete;
  hs.on_body = on_body;
  /* a line comes every second: a silence several times that long is a fault */
  int wait_ms = c->timeout_ms > 5000 ? c->timeout_ms : 5000, rc = -1;
  while (s->rc < 0 && rc < 0) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, wait_ms) != 1) {
      fprintf(stderr, "pintuan-cli: stat: %s: no stats line for %d ms\n", host, wait_ms);
      rc = EX_UNAVAILABLE;
      break;
    }
    char buf[8192];
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    http_parser_execute(&p, &hs, buf, got > 0 ? (size_t)got : 0); /* 0: the end */
    if (s->rc >= 0) break;
    if (got > 0 && p.http_errno == HPE_OK) continue;
    if (s->status && s->status != 200) { /* its reason is in the body, read to the close */
      fprintf(stderr, "pintuan-cli: stat: %s answered %d: %s", host, s->status, s->err);
      if (s->status == 401) fprintf(stderr, "pintuan-cli: stat: give a key with -k KEY_FILE\n");
    } else {
      fprintf(stderr, "pintuan-cli: stat: %s: %s\n", host,
              got <= 0 ? "the daemon closed the stream" : http_errno_description(p.http_errno));
    }
    rc = EX_UNAVAILABLE;
  }
  close(fd);
  return s->rc >= 0 ? s->rc : rc;
}

/* How long stat keeps looking for a primary after its stream ended: a
 * takeover is the lease and a recovery. */
#define FOLLOW_MS 30000

int cli_stat(cli_ctx *c, const char *admin, int64_t count) {
  stat_run s = {.c = c, .want = count, .rc = -1};
  int rc = EX_UNAVAILABLE;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    pt_addr a;
    bool primary;
    if ((rc = admin_address(c, admin, &a, &primary))) return rc;
    rc = stream(c, &a, &s);
    if (s.rc >= 0 || admin || !strchr(c->addr, ',')) return rc; /* done, or nowhere else to look */
    /* the primary's stream ended: follow the next primary, for a while */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > FOLLOW_MS) return rc;
    struct timespec pause = {0, 500 * 1000 * 1000}; /* a takeover has no event to await from here */
    nanosleep(&pause, NULL);
    char where[PT_HOST_MAX + 16];
    if (!admin_address(c, admin, &a, &primary) && primary)
      fprintf(stderr, "pintuan-cli: stat: following the primary's admin port %s\n", pt_addr_str(&a, where, sizeof where));
    clock_gettime(CLOCK_MONOTONIC, &t0);
  }
}
