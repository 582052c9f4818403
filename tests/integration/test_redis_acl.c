/* The Redis ACL user of deploy/redis-acl.sh, against a real redis-server:
 * a daemon of its shard runs with it (the shard created, the lease taken,
 * every decision journaled) though it may not load functions; the user
 * reaches no other key, loads no function, flushes and configures nothing;
 * functions older than the daemon's are refused, saying what to do, and
 * the daemon goes on once an administrator loads them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "redis_proc.h"
#include "shard.h"

#define OK PINTUAN__V1__STATUS__OK

static pt_redis_proc R;
static char dir[] = "/tmp/pt-acl-XXXXXX";
static char pwfile[64], conf[64];

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(dir) || redis_start(&R, NULL)) return -1;
  snprintf(pwfile, sizeof pwfile, "%s/redis-password", dir);
  snprintf(conf, sizeof conf, "%s/pintuan.conf", dir);
  FILE *f = fopen(pwfile, "w");
  fprintf(f, "s3cret-%d\n", getpid());
  fclose(f);
  f = fopen(conf, "w");
  fprintf(f, "[mirror]\nredis_user = pt-t\nredis_password_file = %s\n", pwfile);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  shard_reap();
  redis_cleanup(&R);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd);
}

/* deploy/redis-acl.sh for shard t, user pt-t, as Redis' administrator. */
static int make_user(void) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "bash '%s/../deploy/redis-acl.sh' t pt-t '%s' -p %d >/dev/null", getenv("PT_TESTS_DIR"),
           pwfile, R.port);
  return system(cmd);
}

/* A command as user pt-t (redis-cli, the password in its environment): its
 * output in out (first line). */
static void as_user(char *out, size_t outlen, const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "REDISCLI_AUTH=$(head -n1 '%s') redis-cli --user pt-t -p %d %s 2>&1", pwfile,
           R.port, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  out[0] = 0;
  if (!fgets(out, (int)outlen, p)) out[0] = 0;
  out[strcspn(out, "\n")] = 0;
  pclose(p);
}

static void test_acl_user_runs_its_shard(void **state) {
  (void)state;
  assert_int_equal(make_user(), 0);
  const char *with_user[] = {"-c", conf, NULL};
  /* the shard made by that user: it may not load functions, and uses the
   * administrator's */
  const char *init[] = {"-c", conf, "--init-shard", NULL};
  char out[512];
  assert_int_equal(shard_run(R.addr, "t", init, out, sizeof out), 0);
  assert_non_null(strstr(out, "shard t created"));

  pt_daemon a;
  const char *snapshots[] = {"-c", conf, "--snapshot-after", "1", NULL}; /* its snapshots too */
  assert_int_equal(shard_launch(&a, R.addr, "a", "3000", snapshots), 0);
  assert_int_equal(shard_await(&a, true, NULL, 0), 0);
  pintuan_client *c = connect_or_die(&a);
  assert_int_equal(create_flash(c, "sku", 10, 0, 60000, 0), OK);
  pintuan_response *r;
  assert_int_equal(pintuan_reserve(c, "sku", "alice", 1, "r-1", &r), 0);
  assert_int_equal(r->status, OK); /* durable: journaled through that user */
  pintuan_response_free(r);
  char clients[8192]; /* its connections are that user's, not the default */
  assert_int_equal(redis_cmd(&R, clients, sizeof clients, "CLIENT LIST"), 0);
  assert_non_null(strstr(clients, "user=pt-t"));
  char seq[64];
  assert_int_equal(redis_cmd(&R, seq, sizeof seq, "GET pintuan:{t}:seq"), 0);
  assert_true(atoi(seq) >= 2);

  /* a snapshot written (by the forked writer, as that user) and committed */
  int waited = 0;
  for (; waited < PT_WAIT_MS; waited += 10) {
    assert_int_equal(redis_cmd(&R, out, sizeof out, "EXISTS pintuan:{t}:snapshot"), 0);
    if (atoi(out) == 1) break;
    usleep(10000);
  }
  assert_true(waited < PT_WAIT_MS);

  /* what the user may not do */
  assert_int_equal(redis_cmd(&R, out, sizeof out, "SET other-app:key x"), 0);
  as_user(out, sizeof out, "GET other-app:key");
  assert_non_null(strstr(out, "NOPERM"));
  as_user(out, sizeof out, "GET pintuan:{u}:seq"); /* another shard's */
  assert_non_null(strstr(out, "NOPERM"));
  as_user(out, sizeof out, "FLUSHALL");
  assert_non_null(strstr(out, "NOPERM"));
  as_user(out, sizeof out, "CONFIG SET save ''");
  assert_non_null(strstr(out, "NOPERM"));
  as_user(out, sizeof out, "FUNCTION LOAD REPLACE \"#!lua name=x\nredis.register_function('x', function() return 1 end)\"");
  assert_non_null(strstr(out, "NOPERM"));
  as_user(out, sizeof out, "FUNCTION FLUSH");
  assert_non_null(strstr(out, "NOPERM"));
  as_user(out, sizeof out, "GET pintuan:{t}:seq"); /* its own: yes */
  assert_string_equal(out, seq);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&a), 0);

  /* functions older than the daemon's: refused, saying what to do */
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "'%s' --print-functions pintuan | sed 's/return 2 end}/return 1 end}/' | redis-cli -p %d -x FUNCTION LOAD "
           "REPLACE >/dev/null",
           getenv("PINTUAND"), R.port);
  assert_int_equal(system(cmd), 0);
  pt_daemon b;
  assert_int_equal(shard_launch(&b, R.addr, "b", "3000", with_user), 0);
  char line[512];
  assert_int_equal(daemon_log_wait(&b, "may not load the functions library pintuan,", PT_WAIT_MS, line, sizeof line), 0);
  assert_non_null(strstr(line, "version 1"));
  assert_non_null(strstr(line, "deploy/redis-acl.sh"));
  /* the administrator loads them: it goes on by itself, and finds alice's hold */
  assert_int_equal(make_user(), 0);
  assert_int_equal(shard_await(&b, true, NULL, 0), 0);
  c = connect_or_die(&b);
  Pintuan__V1__Campaign *cp = get_campaign(c, "sku", &r);
  assert_int_equal(cp->held, 1);
  pintuan_response_free(r);
  pintuan_close(c);
  assert_int_equal(daemon_stop(&b), 0);
}

/* The script says what is wrong with its arguments, and changes nothing. */
static void test_acl_script_checks(void **state) {
  (void)state;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "bash '%s/../deploy/redis-acl.sh' 'bad shard' pt-x '%s' -p %d 2>/dev/null; test $? -eq 64",
           getenv("PT_TESTS_DIR"), pwfile, R.port);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "bash '%s/../deploy/redis-acl.sh' t pt-x /dev/null -p %d 2>/dev/null; test $? -eq 65",
           getenv("PT_TESTS_DIR"), R.port);
  assert_int_equal(system(cmd), 0);
  char out[256];
  assert_int_equal(redis_cmd(&R, out, sizeof out, "ACL LIST"), 0);
  assert_null(strstr(out, "pt-x"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acl_user_runs_its_shard),
      cmocka_unit_test(test_acl_script_checks),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
