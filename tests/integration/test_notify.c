/* pintuand and systemd's notification protocol (daemon/notify.c), for
 * real: the test plays the service manager. It binds an AF_UNIX datagram
 * socket, starts pintuand with NOTIFY_SOCKET naming it and a watchdog
 * asked for (WATCHDOG_USEC, WATCHDOG_PID = the daemon's pid, as systemd
 * sets them), and reads what arrives. Every datagram must come from the
 * daemon's own pid (the unit has NotifyAccess=main).
 * - memory-only: READY=1 comes only after the port was written to
 *   --ready-fd (the test keeps that pipe full, so the daemon blocks in
 *   the write, and finds no READY=1 sent before it), with the address in
 *   its STATUS; then WATCHDOG=1 again and again; SIGHUP: RELOADING=1, then
 *   READY=1; SIGTERM: STOPPING=1, then exit 0 (the watchdog's timer closed);
 * - with the Redis mirror: READY=1 only when the daemon is the primary
 *   (recovered) or a standby; when the primary stops, the standby's STATUS
 *   follows it to primary, with no second READY=1.
 * Every wait is for a datagram, an exit or the blocked write, up to
 * PT_WAIT_MS: nothing here depends on how fast the machine is. Without
 * libsystemd at build time, the test skips (77). */
#define _GNU_SOURCE /* struct ucred, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "redis_proc.h"
#include "shard.h"

#ifdef PT_HAVE_SYSTEMD

typedef struct notified {
  bool used;    /* spawned, not yet cleaned up */
  pid_t pid;    /* 0 once reaped */
  int sock;     /* our NOTIFY_SOCKET */
  int ready_rd;  /* the read end of the daemon's --ready-fd pipe */
  int ready_fd;  /* the write end's number, the same in the daemon */
  size_t filler; /* bytes put in that pipe before the daemon's port */
  int life_rd;   /* EOF once the daemon has exited */
  int port;
  int watchdogs; /* WATCHDOG=1 datagrams so far */
  char dir[64], sockpath[96], conf[96], log[96];
} notified;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void copy_log(const notified *n) {
  FILE *f = fopen(n->log, "r");
  if (!f) return;
  char buf[4096];
  size_t len;
  while ((len = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, len, stderr);
  fclose(f);
}

/* Starts pintuand (memory-only unless extra says otherwise) with its own
 * notify socket; does not wait for anything. With hold, the ready pipe is
 * full before the daemon starts: its write of the port blocks until the
 * test reads n->filler bytes. */
static void spawn(notified *n, const char *const *extra, bool hold) {
  memset(n, 0, sizeof *n);
  n->used = true;
  snprintf(n->dir, sizeof n->dir, "/tmp/pintuand-notify-XXXXXX");
  assert_non_null(mkdtemp(n->dir));
  snprintf(n->sockpath, sizeof n->sockpath, "%s/notify", n->dir);
  snprintf(n->conf, sizeof n->conf, "%s/empty.conf", n->dir);
  snprintf(n->log, sizeof n->log, "%s/log", n->dir);
  int fd = open(n->conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0); /* no /etc/pintuan/pintuan.conf, whatever this machine has */
  close(fd);

  n->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(n->sock >= 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", n->sockpath);
  assert_int_equal(bind(n->sock, (struct sockaddr *)&sa, sizeof sa), 0);
  int one = 1; /* the sender's credentials with every datagram, as systemd reads them */
  assert_int_equal(setsockopt(n->sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);

  int ready[2], life[2];
  assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
  assert_int_equal(pipe2(life, O_CLOEXEC), 0);
  if (hold) { /* fill it (at its smallest, one page), then make writes block again */
    fcntl(ready[1], F_SETPIPE_SZ, 4096);
    fcntl(ready[1], F_SETFL, O_NONBLOCK);
    char page[512];
    memset(page, '#', sizeof page);
    ssize_t w;
    while ((w = write(ready[1], page, sizeof page)) > 0) n->filler += (size_t)w;
    assert_int_equal(errno, EAGAIN);
    fcntl(ready[1], F_SETFL, 0); /* the flag is the daemon's too: they share the pipe */
  }
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    fcntl(ready[1], F_SETFD, 0);
    fcntl(life[1], F_SETFD, 0);
    int log = open(n->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (log >= 0) dup2(log, 2);
    char pidbuf[16];
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid()); /* exec keeps the pid */
    setenv("NOTIFY_SOCKET", n->sockpath, 1);
    setenv("WATCHDOG_USEC", "200000", 1); /* a ping every 100 ms */
    setenv("WATCHDOG_PID", pidbuf, 1);
    const char *bin = getenv("PINTUAND");
    if (!bin) bin = "./daemon/pintuand";
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", ready[1]);
    const char *argv[32] = {bin, "-c", n->conf, "--listen", "127.0.0.1:0", "--admin-listen",
                            "127.0.0.1:0", "--ready-fd", fdarg, "--log-level", "info"};
    int argc = 11;
    for (int i = 0; extra && extra[i] && argc < 30; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    execv(bin, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  close(ready[1]);
  close(life[1]);
  n->pid = pid;
  n->ready_fd = ready[1];
  n->ready_rd = ready[0];
  n->life_rd = life[0];
}

/* Reads the port from the ready fd: the first line (more may follow). With
 * wait false, only what is already there: 0 if nothing. */
static int read_port(notified *n, bool wait) {
  struct pollfd p = {.fd = n->ready_rd, .events = POLLIN};
  if (poll(&p, 1, wait ? PT_WAIT_MS : 0) != 1) return 0;
  char buf[64] = {0};
  ssize_t got = read(n->ready_rd, buf, sizeof buf - 1);
  return got > 0 ? atoi(buf) : 0;
}

/* Waits until the daemon is blocked writing to its ready fd (its main
 * thread's system call, /proc/PID/syscall), for up to PT_WAIT_MS. No event
 * says so: this looks every millisecond. */
static void await_held(notified *n) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/syscall", (int)n->pid);
  for (int64_t end = mono_ms() + PT_WAIT_MS; mono_ms() < end;) {
    char line[256] = "";
    FILE *f = fopen(path, "r");
    if (f) {
      if (!fgets(line, sizeof line, f)) line[0] = 0;
      fclose(f);
    }
    long nr;
    unsigned long fd;
    if (sscanf(line, "%ld %lx", &nr, &fd) == 2 && nr == SYS_write && fd == (unsigned long)n->ready_fd)
      return;
    struct pollfd p = {.fd = n->life_rd, .events = POLLIN};
    if (poll(&p, 1, 1) == 1) break; /* exited */
  }
  copy_log(n);
  fail_msg("pintuand %d never blocked writing its port to the full ready pipe", (int)n->pid);
}

/* Has the datagram (KEY=VALUE lines) a line starting with prefix? */
static bool has_line(const char *msg, const char *prefix) {
  size_t len = strlen(prefix);
  for (const char *l = msg;;) {
    if (!strncmp(l, prefix, len)) return true;
    const char *nl = strchr(l, '\n');
    if (!nl) return false;
    l = nl + 1;
  }
}

/* Reads datagrams until one has a line starting with prefix (copied to
 * out), for up to PT_WAIT_MS, or until the daemon exited without sending
 * it. Counts the watchdog pings on the way, and fails the test on a
 * datagram from any pid but the daemon's. */
static void await_note(notified *n, const char *prefix, char *out, size_t outlen) {
  int64_t end = mono_ms() + PT_WAIT_MS;
  for (;;) {
    int64_t left = end - mono_ms();
    struct pollfd p[2] = {{.fd = n->sock, .events = POLLIN}, {.fd = n->life_rd, .events = POLLIN}};
    int r = left > 0 ? poll(p, 2, (int)left) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || !(p[0].revents & POLLIN)) { /* datagrams sent before an exit are read first */
      copy_log(n);
      fail_msg("no \"%s\" from pintuand %d: %s", prefix, (int)n->pid,
               r <= 0 ? "timed out" : "it exited");
    }
    char msg[4096];
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl,
                        .msg_controllen = sizeof ctl};
    ssize_t got = recvmsg(n->sock, &mh, 0);
    assert_true(got >= 0);
    msg[got] = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    assert_non_null(c);
    assert_int_equal(c->cmsg_type, SCM_CREDENTIALS);
    struct ucred cred;
    memcpy(&cred, CMSG_DATA(c), sizeof cred);
    if (cred.pid != n->pid) fail_msg("\"%s\" from pid %d, not pintuand %d", msg, (int)cred.pid, (int)n->pid);
    if (has_line(msg, "WATCHDOG=1")) n->watchdogs++;
    else fprintf(stderr, "pintuand %d: %s\n", (int)n->pid, msg); /* what systemd would log */
    if (has_line(msg, prefix)) {
      if (out) snprintf(out, outlen, "%s", msg);
      return;
    }
  }
}

/* SIGTERM: STOPPING=1, then the exit, with status 0. */
static void stop(notified *n) {
  assert_int_equal(kill(n->pid, SIGTERM), 0);
  await_note(n, "STOPPING=1", NULL, 0);
  struct pollfd p = {.fd = n->life_rd, .events = POLLIN};
  int r;
  while ((r = poll(&p, 1, PT_WAIT_MS)) < 0 && errno == EINTR) {
  }
  if (r != 1) kill(n->pid, SIGKILL);
  int st;
  assert_int_equal(waitpid(n->pid, &st, 0), n->pid);
  n->pid = 0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) copy_log(n);
  assert_int_equal(r, 1);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void cleanup(notified *n) {
  if (!n->used) return;
  n->used = false;
  if (n->pid > 0) { /* a failed test: do not leave it running */
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
  }
  close(n->sock);
  close(n->ready_rd);
  close(n->life_rd);
  unlink(n->sockpath);
  unlink(n->conf);
  unlink(n->log);
  rmdir(n->dir);
}

/* The daemons of the running test, for the teardown: a failing check
 * leaves the test at once, with them still running. */
static notified n, a, b;
static pt_redis_proc R;
static bool redis_on;

static int teardown(void **state) {
  (void)state;
  cleanup(&n);
  cleanup(&a);
  cleanup(&b);
  if (redis_on) redis_cleanup(&R);
  redis_on = false;
  return 0;
}

/* Reads the datagrams already there: is one of them READY=1? */
static bool ready_sent(notified *n) {
  char msg[4096];
  ssize_t got;
  bool ready = false;
  while ((got = recv(n->sock, msg, sizeof msg - 1, MSG_DONTWAIT)) >= 0) {
    msg[got] = 0;
    if (has_line(msg, "WATCHDOG=1")) n->watchdogs++;
    ready |= has_line(msg, "READY=1");
  }
  return ready;
}

static void test_memory_only(void **state) {
  (void)state;
  spawn(&n, NULL, true);
  /* held in its write of the port: a datagram sent before it is here now */
  await_held(&n);
  assert_false(ready_sent(&n));
  char filler[8192];
  size_t drained = 0;
  while (drained < n.filler) {
    size_t want = n.filler - drained < sizeof filler ? n.filler - drained : sizeof filler;
    ssize_t got = read(n.ready_rd, filler, want);
    assert_true(got > 0);
    drained += (size_t)got;
  }
  char msg[4096], want[64];
  await_note(&n, "READY=1", msg, sizeof msg);
  n.port = read_port(&n, true);
  assert_true(n.port > 0);
  snprintf(want, sizeof want, "STATUS=serving on 127.0.0.1:%d (memory-only)", n.port);
  assert_true(has_line(msg, want));

  int before = n.watchdogs;
  await_note(&n, "WATCHDOG=1", NULL, 0);
  await_note(&n, "WATCHDOG=1", NULL, 0);
  assert_true(n.watchdogs >= before + 2);

  assert_int_equal(kill(n.pid, SIGHUP), 0);
  await_note(&n, "RELOADING=1", msg, sizeof msg);
  assert_false(has_line(msg, "READY=1"));
  await_note(&n, "READY=1", NULL, 0);

  stop(&n);
}

static void test_mirror(void **state) {
  (void)state;
  assert_int_equal(redis_start(&R, NULL), 0);
  assert_int_equal(shard_init(R.addr, "n"), 0);
  redis_on = true;
  const char *a_args[] = {"--redis", R.addr, "--shard", "n", "--node-id", "a", "--lease-ms", "5000", NULL};
  const char *b_args[] = {"--redis", R.addr, "--shard", "n", "--node-id", "b", "--lease-ms", "5000", NULL};
  char msg[4096], want[128];

  /* the first daemon: READY=1 comes with the primary role, not before */
  spawn(&a, a_args, false);
  a.port = read_port(&a, true);
  assert_true(a.port > 0);
  await_note(&a, "READY=1", msg, sizeof msg);
  assert_true(has_line(msg, "STATUS=primary of shard n (node a, epoch "));

  /* the second: ready as the standby, naming the primary */
  spawn(&b, b_args, false);
  b.port = read_port(&b, true);
  assert_true(b.port > 0);
  await_note(&b, "READY=1", msg, sizeof msg);
  snprintf(want, sizeof want, "STATUS=standby of shard n (node b), primary at 127.0.0.1:%d", a.port);
  assert_true(has_line(msg, want));

  /* the primary stops (and releases the lease): the standby takes over,
   * and says so in its status; it was ready already */
  stop(&a);
  await_note(&b, "STATUS=primary of shard n (node b, epoch ", msg, sizeof msg);
  assert_false(has_line(msg, "READY=1"));
  stop(&b);
}
#endif

int main(void) {
#ifndef PT_HAVE_SYSTEMD
  printf("SKIP: built without libsystemd (meson option systemd)\n");
  return 77; /* meson's skip */
#else
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_memory_only, teardown),
      cmocka_unit_test_teardown(test_mirror, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
