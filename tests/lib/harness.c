#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

ProtobufCBinaryData pt_bin(const char *s) { return (ProtobufCBinaryData){strlen(s), (uint8_t *)s}; }

int daemon_start(pt_daemon *d, const char *const *extra) {
  int pfd[2];
  if (pipe(pfd)) return -1;
  const char *bin = getenv("PINTUAND");
  if (!bin) bin = "./daemon/pintuand";
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(pfd[0]);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
    const char *argv[64] = {bin, "--listen", "127.0.0.1:0", "--ready-fd", fdarg,
                            "--log-level", "warn"};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 62; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  close(pfd[1]);
  char buf[32] = {0};
  ssize_t r, got = 0;
  /* the daemon writes its port, then closes: read to EOF */
  while ((r = read(pfd[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += r;
  close(pfd[0]);
  d->pid = pid;
  d->port = atoi(buf);
  if (d->port <= 0) {
    int st;
    waitpid(pid, &st, 0);
    return -1;
  }
  snprintf(d->addr, sizeof d->addr, "127.0.0.1:%d", d->port);
  return 0;
}

int daemon_stop(pt_daemon *d) {
  kill(d->pid, SIGTERM);
  for (int i = 0; i < 1000; i++) {
    int st;
    pid_t w = waitpid(d->pid, &st, WNOHANG);
    if (w == d->pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(d->pid, SIGKILL);
  waitpid(d->pid, NULL, 0);
  return -1;
}

long daemon_rss_kb(const pt_daemon *d) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)d->pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

pt_client *connect_or_die(const pt_daemon *d) {
  char err[256];
  pt_client *c = pt_client_connect(d->addr, 10000, err, sizeof err);
  if (!c) {
    fprintf(stderr, "connect: %s\n", err);
    abort();
  }
  return c;
}

int raw_connect(const pt_daemon *d) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    close(fd);
    return -1;
  }
  return fd;
}

int raw_send(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

int raw_send_request(int fd, Pintuan__V1__Request *q) {
  size_t n = pintuan__v1__request__get_packed_size(q);
  uint8_t *buf = malloc(n + 4);
  buf[0] = (uint8_t)(n >> 24), buf[1] = (uint8_t)(n >> 16), buf[2] = (uint8_t)(n >> 8), buf[3] = (uint8_t)n;
  pintuan__v1__request__pack(q, buf + 4);
  int rc = raw_send(fd, buf, n + 4);
  free(buf);
  return rc;
}

static int read_full(int fd, uint8_t *p, size_t n, int timeout_ms, int *eof) {
  while (n) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, timeout_ms) <= 0) return -1;
    ssize_t r = recv(fd, p, n, 0);
    if (r == 0) {
      *eof = 1;
      return -1;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) *eof = 1;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

pt_response *raw_recv(int fd, int timeout_ms, int *eof) {
  uint8_t h[4];
  *eof = 0;
  if (read_full(fd, h, 4, timeout_ms, eof)) return NULL;
  uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
  if (n > (16u << 20)) return NULL;
  uint8_t *buf = malloc(n ? n : 1);
  if (read_full(fd, buf, n, timeout_ms, eof)) {
    free(buf);
    return NULL;
  }
  pt_response *r = pintuan__v1__response__unpack(NULL, n, buf);
  free(buf);
  return r;
}

/* CreateCampaign with a request id derived from the campaign id. */
static int create_campaign(pt_client *c, Pintuan__V1__CampaignSpec *s) {
  Pintuan__V1__Request q = PINTUAN__V1__REQUEST__INIT;
  Pintuan__V1__CreateCampaign m = PINTUAN__V1__CREATE_CAMPAIGN__INIT;
  char rid[96];
  snprintf(rid, sizeof rid, "create-%.*s", (int)s->campaign_id.len, (const char *)s->campaign_id.data);
  m.has_request_id = 1, m.request_id = pt_bin(rid);
  m.spec = s;
  q.op_case = PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN, q.create_campaign = &m;
  pt_response *r;
  if (pt_client_call(c, &q, &r)) return -1;
  int st = r->status;
  pt_response_free(r);
  return st;
}

int create_flash(pt_client *c, const char *id, int64_t stock, uint32_t limit, int64_t hold_ms,
                 int waitlist) {
  Pintuan__V1__CampaignSpec s = PINTUAN__V1__CAMPAIGN_SPEC__INIT;
  s.has_campaign_id = 1, s.campaign_id = pt_bin(id);
  s.has_kind = 1, s.kind = PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE;
  s.has_stock = 1, s.stock = stock;
  s.has_per_user_limit = 1, s.per_user_limit = limit;
  s.has_hold_ms = 1, s.hold_ms = hold_ms;
  s.has_waitlist = 1, s.waitlist = waitlist;
  return create_campaign(c, &s);
}

Pintuan__V1__Campaign *get_campaign(pt_client *c, const char *id, pt_response **keep) {
  if (pt_get_campaign(c, id, keep) || (*keep)->result_case != PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN) {
    fprintf(stderr, "get_campaign %s failed\n", id);
    abort();
  }
  return (*keep)->campaign;
}

int create_group(pt_client *c, const char *id, int64_t stock, uint32_t size, int64_t ttl_ms,
                 int64_t hold_ms, uint32_t limit) {
  Pintuan__V1__CampaignSpec s = PINTUAN__V1__CAMPAIGN_SPEC__INIT;
  s.has_campaign_id = 1, s.campaign_id = pt_bin(id);
  s.has_kind = 1, s.kind = PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY;
  s.has_stock = 1, s.stock = stock;
  s.has_per_user_limit = 1, s.per_user_limit = limit;
  s.has_hold_ms = 1, s.hold_ms = hold_ms;
  s.has_group_size = 1, s.group_size = size;
  s.has_group_ttl_ms = 1, s.group_ttl_ms = ttl_ms;
  return create_campaign(c, &s);
}
