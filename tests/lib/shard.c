#include "shard.h"

#include <fcntl.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STARTED 32
static pid_t started[MAX_STARTED];
static int nstarted;

int shard_launch(pt_daemon *d, const char *redis_addr, const char *node, const char *lease_ms,
                 const char *const *more) {
  const char *args[40] = {"--redis", redis_addr, "--shard", "t", "--node-id", node,
                          "--lease-ms", lease_ms, "--log-level", "info"};
  int n = 10;
  for (int i = 0; more && more[i] && n < 39; i++) args[n++] = more[i];
  args[n] = NULL;
  if (daemon_start(d, args)) return -1;
  if (nstarted < MAX_STARTED) started[nstarted++] = d->pid;
  return 0;
}

int shard_await(pt_daemon *d, bool primary, char *line, size_t linelen) {
  if (primary && daemon_log_wait(d, "mirror recovered", PT_WAIT_MS, line, linelen)) return -1;
  return daemon_log_wait(d, primary ? "mirror role=primary" : "mirror role=standby", PT_WAIT_MS, NULL, 0);
}

int shard_pair(pt_daemon *a, pt_daemon *b, const char *redis_addr, const char *lease_ms,
               const char *const *more_a, const char *const *more_b) {
  if (shard_launch(a, redis_addr, "a", lease_ms, more_a) || shard_await(a, true, NULL, 0)) return -1;
  return shard_launch(b, redis_addr, "b", lease_ms, more_b) || shard_await(b, false, NULL, 0) ? -1 : 0;
}

int shard_kill9(pt_daemon *d) {
  kill(d->pid, SIGKILL);
  int st;
  waitpid(d->pid, &st, 0);
  close(d->life_fd);
  d->life_fd = -1;
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
  if (system(cmd) != 0) return -1;
  return WIFSIGNALED(st) ? 0 : -1;
}

void shard_reap(void) {
  for (int i = 0; i < nstarted; i++)
    if (waitpid(started[i], NULL, WNOHANG) == 0) { /* still our running child */
      kill(started[i], SIGKILL);
      waitpid(started[i], NULL, 0);
    }
  nstarted = 0;
}

int shard_run(const char *redis_addr, const char *shard, const char *const *args, char *out,
              size_t outlen) {
  const char *bin = getenv("PINTUAND");
  if (!bin) bin = "./daemon/pintuand";
  int pfd[2];
  if (pipe(pfd)) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(pfd[1], 1); /* what it did goes to stdout; errors to the test's stderr */
    close(pfd[0]), close(pfd[1]);
    const char *argv[24] = {bin, "--redis", redis_addr, "--shard", shard, "--log-level", "warn"};
    int n = 7;
    for (int i = 0; args && args[i] && n < 23; i++) argv[n++] = args[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(pfd[1]);
  size_t got = 0;
  char sink[512];
  ssize_t r;
  while ((r = read(pfd[0], out && got + 1 < outlen ? out + got : sink,
                   out && got + 1 < outlen ? outlen - 1 - got : sizeof sink)) > 0)
    if (out && got + 1 < outlen) got += (size_t)r;
  close(pfd[0]);
  if (out && outlen) out[got] = 0;
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int shard_init(const char *redis_addr, const char *shard) {
  const char *args[] = {"--init-shard", NULL};
  return shard_run(redis_addr, shard, args, NULL, 0);
}

static int poll_metric(const pt_daemon *d, const char *series, double want, bool at_least, double *got) {
  double v = -1;
  for (int i = 0; i < PT_WAIT_MS / 2; i++) {
    char *m = admin_get(d, "/metrics");
    v = m ? metric_value(m, series) : -1;
    free(m);
    if (v == want || (at_least && v >= want)) break;
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (got) *got = v;
  return v == want || (at_least && v >= want) ? 0 : -1;
}

int metric_await(const pt_daemon *d, const char *series, double want, double *got) {
  return poll_metric(d, series, want, false, got);
}

int metric_at_least(const pt_daemon *d, const char *series, double min) {
  return poll_metric(d, series, min, true, NULL);
}
