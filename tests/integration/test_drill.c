/* The failover drill of deploy/README.md, from the clients' side: a
 * primary and a standby, pintuan-bench given both addresses at a steady
 * rate, the primary killed with SIGKILL mid-run. The bench's load
 * connections fail over as libpintuan does (every unanswered request sent
 * again, in order, with its request id, to the standby once it serves), so
 * the run ends with every request answered and a passing verdict; before,
 * every load connection closed at the kill and the run reported 0 req/s to
 * its end, most of its requests unanswered, and "pass": true. (A run that
 * does leave requests unanswered fails its verdict: test_bench_core.) */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "redis_proc.h"
#include "shard.h"

static pt_redis_proc R;

static int redis_up(void **state) {
  (void)state;
  return redis_start(&R, NULL) || shard_init(R.addr, "t");
}

static int redis_down(void **state) {
  (void)state;
  shard_reap();
  redis_cleanup(&R);
  return 0;
}

/* pintuan-bench with args (NULL-ended), its JSON summary into out; returns
 * its pid (the caller waits). */
static pid_t bench(const char *const *args, const char *out) {
  const char *bin = getenv("PINTUAN_BENCH");
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 1);
    const char *argv[40] = {bin};
    int n = 1;
    for (int i = 0; args[i] && n < 38; i++) argv[n++] = args[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

static char *slurp(const char *path) {
  static char buf[1 << 16];
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

static void test_drill(void **state) {
  (void)state;
  pt_daemon a, b;
  assert_int_equal(shard_pair(&a, &b, R.addr, "1500", NULL, NULL), 0);
  char addrs[160], out[] = "/tmp/pt-drill-XXXXXX";
  snprintf(addrs, sizeof addrs, "%s,%s", a.addr, b.addr);
  close(mkstemp(out));
  /* mixed: its sale is open at once (a stampede's opens at a wall-clock
   * instant that the daemons' test clock never reaches) */
  const char *args[] = {"-a", addrs, "-s", "mixed", "-R", "1000", "-d", "4", "-w", "0", "-c", "4",
                        "-p", "16", "--json", "--no-progress", NULL};
  pid_t pid = bench(args, out);
  /* the primary has journaled some of the load: kill it under the run */
  assert_int_equal(metric_at_least(&a, "pintuan_mirror_records_acknowledged_total", 20), 0);
  assert_int_equal(shard_kill9(&a), 0);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  char *json = slurp(out);
  assert_non_null(json);
  print_message("bench: %s", json);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("the bench failed (status %d): %s", st, json);
  assert_non_null(strstr(json, "\"unanswered\":0"));
  assert_non_null(strstr(json, "\"pass\":true"));
  assert_null(strstr(json, "\"load_failover\":{\"reconnects\":0,\"redirects\":0")); /* it failed over */
  assert_non_null(strstr(json, "\"gave_up\":0"));
  unlink(out);
  assert_int_equal(daemon_stop(&b), 0);
}

/* pintuan-cli stat given both addresses reads the primary's admin port,
 * whichever is listed first, before and after a takeover. */
static void stat_role(const char *addrs, const char *want) {
  char cmd[512], out[4096];
  snprintf(cmd, sizeof cmd, "%s -a %s -j stat --count 1", getenv("PINTUAN_CLI"), addrs);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  assert_int_equal(pclose(p), 0);
  char role[64];
  snprintf(role, sizeof role, "\"role\":\"%s\"", want);
  if (!strstr(out, role)) fail_msg("stat -a %s: %s (want %s)", addrs, out, want);
}

static void test_stat_reads_the_primary(void **state) {
  (void)state;
  pt_daemon a, b;
  assert_int_equal(shard_pair(&a, &b, R.addr, "1500", NULL, NULL), 0);
  char ab[160], ba[160];
  snprintf(ab, sizeof ab, "%s,%s", a.addr, b.addr);
  snprintf(ba, sizeof ba, "%s,%s", b.addr, a.addr);
  stat_role(ab, "primary");
  stat_role(ba, "primary"); /* not the standby listed first */
  assert_int_equal(shard_kill9(&a), 0);
  assert_int_equal(daemon_log_wait(&b, "mirror role=primary", PT_WAIT_MS, NULL, 0), 0);
  stat_role(ab, "primary"); /* the new one, the first one gone */
  assert_int_equal(daemon_stop(&b), 0);
}

/* A standby's log names the primary it follows, and the next one when
 * another standby takes over (what an operator reads during the drill). */
static void test_standby_names_its_primary(void **state) {
  (void)state;
  pt_daemon a, b, c;
  assert_int_equal(shard_pair(&a, &b, R.addr, "1500", NULL, NULL), 0);
  assert_int_equal(shard_launch(&c, R.addr, "c", "1500", NULL), 0);
  char line[512], want[160];
  assert_int_equal(daemon_log_wait(&c, "mirror role=standby", PT_WAIT_MS, line, sizeof line), 0);
  snprintf(want, sizeof want, "following the primary at %s", a.addr);
  if (!strstr(line, want)) fail_msg("the standby's line: %s (want %s)", line, want);
  assert_int_equal(shard_kill9(&a), 0);
  /* b and c race for the lease: whichever wins, the other names it */
  pt_daemon *won = NULL, *lost = NULL;
  for (int i = 0; i < PT_WAIT_MS / 100 && !won; i++) {
    if (!daemon_log_wait(&b, "mirror role=primary", 50, NULL, 0)) won = &b, lost = &c;
    else if (!daemon_log_wait(&c, "mirror role=primary", 50, NULL, 0)) won = &c, lost = &b;
  }
  assert_non_null(won);
  snprintf(want, sizeof want, "mirror standby follows the primary at %s now", won->addr);
  assert_int_equal(daemon_log_wait(lost, want, PT_WAIT_MS, NULL, 0), 0);
  assert_int_equal(daemon_stop(&c), 0);
  assert_int_equal(daemon_stop(&b), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_drill, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_stat_reads_the_primary, redis_up, redis_down),
      cmocka_unit_test_setup_teardown(test_standby_names_its_primary, redis_up, redis_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
