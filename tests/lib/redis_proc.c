#include "redis_proc.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 60000

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_log(const pt_redis_proc *r) {
  char path[128], line[512];
  snprintf(path, sizeof path, "%s/redis.log", r->dir);
  FILE *f = fopen(path, "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) fprintf(stderr, "redis: %s", line);
  fclose(f);
}

/* Waits until it answers PING (or exits). */
static int await_ready(pt_redis_proc *r) {
  int64_t until = mono_ms() + WAIT_MS;
  while (mono_ms() < until) {
    int st;
    if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
      r->pid = 0;
      print_log(r);
      return -1;
    }
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c && !c->err) {
      redisReply *rep = redisCommand(c, "PING");
      int ok = rep && rep->type == REDIS_REPLY_STATUS;
      if (rep) freeReplyObject(rep);
      redisFree(c);
      if (ok) return 0;
    } else if (c) {
      redisFree(c);
    }
    struct timespec ts = {0, 10 * 1000 * 1000}; /* polling a process that starts: no event to await */
    nanosleep(&ts, NULL);
  }
  print_log(r);
  return -1;
}

static int spawn(pt_redis_proc *r) {
  char port[16], log[128];
  snprintf(port, sizeof port, "%d", r->port);
  snprintf(log, sizeof log, "%s/redis.log", r->dir);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const char *argv[40] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", r->dir,
                            "--save", "", "--appendonly", "no", "--logfile", log,
                            "--protected-mode", "no"};
    int n = 15;
    for (int i = 0; i < r->nextra && n < 38; i++) argv[n++] = r->extra[i];
    argv[n] = NULL;
    execvp("redis-server", (char *const *)argv);
    _exit(127);
  }
  r->pid = pid;
  return await_ready(r);
}

int redis_start(pt_redis_proc *r, const char *const *extra) {
  memset(r, 0, sizeof(*r));
  snprintf(r->dir, sizeof r->dir, "/tmp/pt-redis.XXXXXX");
  if (!mkdtemp(r->dir)) return -1;
  for (int i = 0; extra && extra[i] && i < 8; i++)
    snprintf(r->extra[r->nextra++], sizeof r->extra[0], "%s", extra[i]);
  for (int attempt = 0; attempt < 5; attempt++) { /* a port taken meanwhile: another */
    r->port = free_port();
    snprintf(r->addr, sizeof r->addr, "127.0.0.1:%d", r->port);
    if (r->port > 0 && spawn(r) == 0) return 0;
  }
  return -1;
}

int redis_restart(pt_redis_proc *r) { return spawn(r); }

static int reap(pt_redis_proc *r, int sig) {
  if (r->pid <= 0) return 0;
  kill(r->pid, sig);
  int st = 0;
  while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR) {
  }
  r->pid = 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int redis_stop(pt_redis_proc *r) { return reap(r, SIGTERM); }
void redis_kill(pt_redis_proc *r) { reap(r, SIGKILL); }

void redis_cleanup(pt_redis_proc *r) {
  reap(r, SIGKILL);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", r->dir);
}

static void reply_text(const redisReply *rep, char *out, size_t outlen) {
  size_t used = strlen(out);
  switch (rep->type) {
  case REDIS_REPLY_INTEGER: snprintf(out + used, outlen - used, "%lld", rep->integer); break;
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR: snprintf(out + used, outlen - used, "%.*s", (int)rep->len, rep->str); break;
  case REDIS_REPLY_ARRAY:
    for (size_t i = 0; i < rep->elements; i++) {
      if (i) snprintf(out + strlen(out), outlen - strlen(out), "\n");
      reply_text(rep->element[i], out, outlen);
    }
    break;
  default: break;
  }
}

int redis_cmd(const pt_redis_proc *r, char *out, size_t outlen, const char *fmt, ...) {
  char cmd[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (outlen) out[0] = 0;
  struct timeval tv = {5, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return -1;
  }
  redisReply *rep = redisCommand(c, cmd);
  int rc = rep && rep->type != REDIS_REPLY_ERROR ? 0 : -1;
  if (rep) {
    if (outlen) reply_text(rep, out, outlen);
    freeReplyObject(rep);
  }
  redisFree(c);
  return rc;
}
