#define _GNU_SOURCE /* pipe2 */
#include "harness.h"

#include "clock.h"
#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

static int64_t mono_ms(void) { return pt_mono_ns() / 1000000; }

static void copy_log(const pt_daemon *d) {
  FILE *f = fopen(d->log, "r");
  if (!f) return;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stderr);
  fclose(f);
}

static void remove_dir(pt_daemon *d) {
  char tmp[128];
  snprintf(tmp, sizeof tmp, "%s.tmp", d->clock);
  unlink(tmp);
  unlink(d->clock);
  unlink(d->log);
  rmdir(d->dir);
}

void set_time(pt_daemon *d, int64_t ms) {
  char tmp[128], text[32];
  snprintf(tmp, sizeof tmp, "%s.tmp", d->clock);
  int n = snprintf(text, sizeof text, "%lld\n", (long long)ms);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  /* rename: the daemon reads either the old time or the new, never half */
  if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd) || rename(tmp, d->clock)) {
    fprintf(stderr, "set_time %s: %s\n", d->clock, strerror(errno));
    abort();
  }
  d->now = ms;
}

void advance_time(pt_daemon *d, pintuan_client *c, int64_t ms) {
  set_time(d, d->now + ms);
  pintuan_response *r;
  if (pintuan_ping(c, &r) || !r->pong || r->pong->now_ms != d->now) {
    fprintf(stderr, "advance_time: the daemon did not observe %lld\n", (long long)d->now);
    abort();
  }
  pintuan_response_free(r);
}

int daemon_start(pt_daemon *d, const char *const *extra) {
  memset(d, 0, sizeof *d);
  d->life_fd = -1;
  snprintf(d->dir, sizeof d->dir, "/tmp/pintuand-test-XXXXXX");
  if (!mkdtemp(d->dir)) return -1;
  snprintf(d->clock, sizeof d->clock, "%s/clock", d->dir);
  snprintf(d->log, sizeof d->log, "%s/log", d->dir);
  set_time(d, PT_TEST_EPOCH_MS);
  int pfd[2], life[2];
  if (pipe2(pfd, O_CLOEXEC)) return -1;
  if (pipe2(life, O_CLOEXEC)) {
    close(pfd[0]), close(pfd[1]);
    return -1;
  }
  const char *bin = getenv("PINTUAND");
  if (!bin) bin = "./daemon/pintuand";
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    /* the ready pipe and the life pipe's write end cross the exec */
    fcntl(pfd[1], F_SETFD, 0);
    fcntl(life[1], F_SETFD, 0);
    int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (log >= 0) dup2(log, 2);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
    const char *argv[64] = {bin, "--listen", "127.0.0.1:0", "--ready-fd", fdarg,
                            "--log-level", "warn", "--test-clock", d->clock,
                            "--admin-listen", "127.0.0.1:0"};
    int n = 11;
    for (int i = 0; extra && extra[i] && n < 62; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  close(pfd[1]);
  close(life[1]);
  d->pid = pid;
  d->life_fd = life[0];
  char buf[32] = {0};
  ssize_t r, got = 0;
  /* the daemon writes its port, then closes (or exits): read to EOF */
  while ((r = read(pfd[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0 ||
         (r < 0 && errno == EINTR))
    if (r > 0) got += r;
  close(pfd[0]);
  d->port = atoi(buf); /* the port, then the admin port's (when on) */
  const char *nl = strchr(buf, '\n');
  d->admin_port = nl ? atoi(nl + 1) : 0;
  if (d->port <= 0) {
    waitpid(pid, NULL, 0);
    copy_log(d);
    close(d->life_fd);
    remove_dir(d);
    return -1;
  }
  snprintf(d->addr, sizeof d->addr, "127.0.0.1:%d", d->port);
  return 0;
}

int daemon_stop(pt_daemon *d) {
  kill(d->pid, SIGTERM);
  /* the life pipe reads EOF once the daemon has exited */
  struct pollfd p = {.fd = d->life_fd, .events = POLLIN};
  int64_t end = mono_ms() + PT_WAIT_MS;
  int n;
  while ((n = poll(&p, 1, (int)(end - mono_ms() > 0 ? end - mono_ms() : 0))) < 0 && errno == EINTR) {
  }
  int st, rc = -1;
  if (n <= 0) { /* hung */
    fprintf(stderr, "pintuand %d did not stop within %d ms\n", (int)d->pid, PT_WAIT_MS);
    kill(d->pid, SIGKILL);
  }
  if (waitpid(d->pid, &st, 0) == d->pid && n > 0) rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  close(d->life_fd);
  d->life_fd = -1;
  copy_log(d);
  remove_dir(d);
  return rc;
}

/* Finds the next line containing needle from d->log_off: 1 found, 0 not. */
static int log_scan(pt_daemon *d, const char *needle, char *line, size_t linelen) {
  FILE *f = fopen(d->log, "r");
  if (!f) return 0;
  int found = 0;
  if (fseek(f, d->log_off, SEEK_SET) == 0) {
    char buf[4096];
    long off = d->log_off;
    while (fgets(buf, sizeof buf, f)) {
      size_t len = strlen(buf);
      if (len == 0 || buf[len - 1] != '\n') break; /* a line still being written */
      off += (long)len;
      if (strstr(buf, needle)) {
        if (line && linelen) snprintf(line, linelen, "%s", buf);
        d->log_off = off;
        found = 1;
        break;
      }
    }
  }
  fclose(f);
  return found;
}

int daemon_log_wait(pt_daemon *d, const char *needle, int timeout_ms, char *line, size_t linelen) {
  int in = inotify_init1(IN_CLOEXEC);
  if (in >= 0 && inotify_add_watch(in, d->log, IN_MODIFY) < 0) close(in), in = -1;
  int64_t end = mono_ms() + timeout_ms;
  int rc = -1;
  for (;;) {
    if (log_scan(d, needle, line, linelen)) {
      rc = 0;
      break;
    }
    int64_t left = end - mono_ms();
    if (left <= 0) break;
    /* wake on a write to the log (inotify) or the daemon's exit */
    struct pollfd p[2] = {{.fd = d->life_fd, .events = POLLIN}, {.fd = in, .events = POLLIN}};
    int n = poll(p, in >= 0 ? 2 : 1, in >= 0 ? (int)left : (int)(left < 10 ? left : 10));
    if (n > 0 && p[0].revents) { /* exited: whatever it wrote is all there is */
      rc = log_scan(d, needle, line, linelen) ? 0 : -1;
      break;
    }
    if (n > 0 && in >= 0 && p[1].revents) {
      char ev[4096];
      if (read(in, ev, sizeof ev) < 0 && errno != EINTR && errno != EAGAIN) break;
    }
  }
  if (in >= 0) close(in);
  return rc;
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

pintuan_client *connect_or_die(const pt_daemon *d) {
  char err[256];
  pintuan_client *c = pintuan_connect(d->addr, PT_WAIT_MS, err, sizeof err);
  if (!c) {
    fprintf(stderr, "connect: %s\n", err);
    abort();
  }
  return c;
}

int make_key(const char *dir, const char *name, const char *role, char *secret) {
  const char *bin = getenv("PINTUAND");
  char cmd[1024], path[512], n[128];
  snprintf(path, sizeof path, "%s/%s.key", dir, name);
  snprintf(cmd, sizeof cmd, "'%s' --make-key '%s:%s' --key-out '%s' >> '%s/keys'",
           bin ? bin : "./daemon/pintuand", name, role, path, dir);
  if (system(cmd) != 0) return -1;
  char err[256];
  return pintuan_read_key_file(path, n, sizeof n, secret, 64, err, sizeof err);
}

pintuan_client *connect_as(const pt_daemon *d, const char *name, const char *secret) {
  pintuan_client *c = connect_or_die(d);
  pintuan_response *r;
  if (pintuan_hello(c, name, secret, &r) || r->status != PINTUAN__V1__STATUS__OK) {
    fprintf(stderr, "hello as %s: %s\n", name, r ? r->detail : pintuan_error(c));
    abort();
  }
  pintuan_response_free(r);
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
  uint8_t *buf = malloc(PT_FRAME_HEADER + n);
  pt_be32_put(buf, (uint32_t)n);
  pintuan__v1__request__pack(q, buf + PT_FRAME_HEADER);
  int rc = raw_send(fd, buf, PT_FRAME_HEADER + n);
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

pintuan_response *raw_recv(int fd, int timeout_ms, int *eof) {
  uint8_t h[PT_FRAME_HEADER];
  *eof = 0;
  if (read_full(fd, h, sizeof h, timeout_ms, eof)) return NULL;
  uint32_t n = pt_be32_get(h);
  if (n > (16u << 20)) return NULL;
  uint8_t *buf = malloc(n ? n : 1);
  if (read_full(fd, buf, n, timeout_ms, eof)) {
    free(buf);
    return NULL;
  }
  pintuan_response *r = pintuan__v1__response__unpack(NULL, n, buf);
  free(buf);
  return r;
}

char *read_until_close(int fd, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  int64_t end = mono_ms() + PT_WAIT_MS;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int left = (int)(end - mono_ms());
    if (left <= 0 || poll(&p, 1, left) <= 0) {
      free(buf);
      return NULL;
    }
    if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
    ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

char *admin_get(const pt_daemon *d, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->admin_port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  char *answer = NULL;
  if (fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof a) && !raw_send(fd, req, (size_t)n))
    answer = read_until_close(fd, NULL);
  if (fd >= 0) close(fd);
  return answer;
}

double metric_value(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; (p = strstr(p, series)); p += n)
    if ((p == text || p[-1] == '\n') && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

/* CreateCampaign with a request id derived from the campaign id. */
static int create_campaign(pintuan_client *c, const pintuan_campaign_spec *s) {
  char rid[96];
  snprintf(rid, sizeof rid, "create-%s", s->campaign_id);
  pintuan_response *r;
  if (pintuan_create_campaign(c, s, rid, &r)) return -1;
  int st = r->status;
  pintuan_response_free(r);
  return st;
}

int create_flash(pintuan_client *c, const char *id, int64_t stock, uint32_t limit, int64_t hold_ms,
                 int waitlist) {
  pintuan_campaign_spec s = {.campaign_id = id, .kind = PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE,
                             .stock = stock, .per_user_limit = limit, .hold_ms = hold_ms,
                             .waitlist = waitlist != 0};
  return create_campaign(c, &s);
}

Pintuan__V1__Campaign *get_campaign(pintuan_client *c, const char *id, pintuan_response **keep) {
  if (pintuan_get_campaign(c, id, keep) || (*keep)->result_case != PINTUAN__V1__RESPONSE__RESULT_CAMPAIGN) {
    fprintf(stderr, "get_campaign %s failed\n", id);
    abort();
  }
  return (*keep)->campaign;
}

int create_group(pintuan_client *c, const char *id, int64_t stock, uint32_t size, int64_t ttl_ms,
                 int64_t hold_ms, uint32_t limit) {
  pintuan_campaign_spec s = {.campaign_id = id, .kind = PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY,
                             .stock = stock, .per_user_limit = limit, .hold_ms = hold_ms,
                             .group_size = size, .group_ttl_ms = ttl_ms};
  return create_campaign(c, &s);
}
