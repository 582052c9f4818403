#include "shard.h"

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

int shard_init(const char *redis_addr) {
  const char *bin = getenv("PINTUAND");
  if (!bin) bin = "./daemon/pintuand";
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execl(bin, bin, "--redis", redis_addr, "--shard", "t", "--init-shard", "--log-level", "warn",
          (char *)NULL);
    _exit(127);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
