/* Capture and replay, end to end: a scripted session against a daemon with
 * --capture, replayed by pintuan-bench against a fresh daemon (no
 * divergence), then with one recorded reply altered (the divergence is
 * reported at that request). Also the capture file's rotation and checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"
#include "harness.h"

static char dir[] = "/tmp/pt-replay-XXXXXX";

static void scripted_session(const pt_daemon *d) {
  pintuan_client *c = connect_or_die(d);
  pintuan_response *r;
  assert_int_equal(create_flash(c, "cap", 2, 1, 60000, 0), PINTUAN__V1__STATUS__OK); /* 1 */
  assert_int_equal(pintuan_reserve(c, "cap", "u1", 1, "o-1", &r), 0);                     /* 2 */
  uint64_t res = r->reservation->reservation_id;
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "cap", "u1", 1, "o-2", &r), 0); /* 3: LIMIT_EXCEEDED */
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "cap", "u2", 1, "o-3", &r), 0); /* 4: OK */
  assert_int_equal(r->status, PINTUAN__V1__STATUS__OK);
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "cap", "u3", 1, "o-4", &r), 0); /* 5: SOLD_OUT */
  assert_int_equal(r->status, PINTUAN__V1__STATUS__SOLD_OUT);
  pintuan_response_free(r);
  assert_int_equal(pintuan_confirm(c, "cap", res, "p-1", &r), 0); /* 6 */
  pintuan_response_free(r);
  assert_int_equal(pintuan_reserve(c, "cap", "u1", 1, "o-1", &r), 0); /* 7: replay */
  assert_true(r->replay);
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_holdings(c, "cap", "u1", &r), 0); /* 8 */
  pintuan_response_free(r);
  assert_int_equal(pintuan_get_campaign(c, "cap", &r), 0); /* 9 */
  pintuan_response_free(r);
  assert_int_equal(pintuan_ping(c, &r), 0); /* 10 */
  pintuan_response_free(r);
  pintuan_close(c);
}

/* Runs pintuan-bench --replay against d; returns its exit status and its
 * JSON line in out. */
static int replay(const pt_daemon *d, const char *file, char *out, size_t outlen) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s -a %s --replay %s --speed 0 --json --no-progress",
           getenv("PINTUAN_BENCH") ? getenv("PINTUAN_BENCH") : "./clients/pintuan-bench", d->addr, file);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_capture_replay_roundtrip(void **state) {
  (void)state;
  char file[128], altered[128], args_file[160];
  snprintf(file, sizeof file, "%s/session.cap", dir);
  snprintf(altered, sizeof altered, "%s/altered.cap", dir);
  snprintf(args_file, sizeof args_file, "%s", file);
  const char *args[] = {"--capture", args_file, NULL};
  pt_daemon a;
  assert_int_equal(daemon_start(&a, args), 0);
  scripted_session(&a);
  assert_int_equal(daemon_stop(&a), 0); /* the capture is complete once it exits */

  /* the file holds 10 requests, each followed by its reply */
  pt_cap_reader rd;
  char err[256];
  assert_int_equal(pt_cap_reader_open(&rd, file, err, sizeof err), 0);
  pt_cap_record rec;
  int nreq = 0, nrep = 0;
  pt_capture *w = pt_capture_open(altered, 0);
  assert_non_null(w);
  while (pt_cap_read(&rd, &rec, err, sizeof err) == 1) {
    nreq += rec.kind == PT_CAP_REQUEST;
    if (rec.kind == PT_CAP_REPLY && ++nrep == 4) {
      /* pretend yesterday's daemon answered request 4 differently */
      Pintuan__V1__Response *r = pintuan__v1__response__unpack(NULL, rec.len, rec.data);
      assert_non_null(r);
      assert_int_equal(r->status, PINTUAN__V1__STATUS__OK);
      r->status = PINTUAN__V1__STATUS__SOLD_OUT;
      uint8_t buf[4096];
      size_t n = pintuan__v1__response__pack(r, buf);
      pintuan__v1__response__free_unpacked(r, NULL);
      assert_int_equal(pt_capture_write(w, rec.kind, rec.conn, rec.time_us, buf, n), 0);
    } else {
      assert_int_equal(pt_capture_write(w, rec.kind, rec.conn, rec.time_us, rec.data, rec.len), 0);
    }
  }
  pt_cap_reader_close(&rd);
  pt_capture_close(w);
  assert_int_equal(nreq, 10);
  assert_int_equal(nrep, 10);

  char out[8192];
  pt_daemon b;
  assert_int_equal(daemon_start(&b, NULL), 0);
  int rc = replay(&b, file, out, sizeof out);
  print_message("replay: %s", out);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "\"requests\":10,\"compared\":10,\"divergences\":0"));
  assert_non_null(strstr(out, "\"pass\":true"));
  assert_int_equal(daemon_stop(&b), 0);

  pt_daemon c;
  assert_int_equal(daemon_start(&c, NULL), 0);
  rc = replay(&c, altered, out, sizeof out);
  print_message("altered replay: %s", out);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(out, "\"divergences\":1"));
  assert_non_null(strstr(out, "\"first_divergence\":{\"request\":4,"));
  assert_non_null(strstr(out, "recorded SOLD_OUT, got OK"));
  assert_int_equal(daemon_stop(&c), 0);
}

static void test_capture_rotation_and_checks(void **state) {
  (void)state;
  char file[128], old[140];
  snprintf(file, sizeof file, "%s/rot.cap", dir);
  snprintf(old, sizeof old, "%s.1", file);
  pt_capture *w = pt_capture_open(file, 1000); /* tiny bound */
  assert_non_null(w);
  uint8_t data[100] = {0};
  for (int i = 0; i < 30; i++) assert_int_equal(pt_capture_write(w, PT_CAP_REQUEST, 1, i, data, sizeof data), 0);
  assert_true(w->rotations >= 2);
  pt_capture_close(w);
  /* both the current file and the previous one are whole captures */
  const char *files[] = {file, old};
  for (int f = 0; f < 2; f++) {
    pt_cap_reader rd;
    char err[256];
    assert_int_equal(pt_cap_reader_open(&rd, files[f], err, sizeof err), 0);
    pt_cap_record rec;
    int n = 0, rc;
    while ((rc = pt_cap_read(&rd, &rec, err, sizeof err)) == 1) n++;
    assert_int_equal(rc, 0);
    assert_true(n >= 1 && n <= 8);
    pt_cap_reader_close(&rd);
  }
  /* not a capture; a truncated one */
  char bad[128];
  snprintf(bad, sizeof bad, "%s/bad.cap", dir);
  FILE *f = fopen(bad, "w");
  fputs("hello, not a capture at all", f);
  fclose(f);
  pt_cap_reader rd;
  char err[256];
  assert_int_equal(pt_cap_reader_open(&rd, bad, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a pintuan capture"));
  w = pt_capture_open(bad, 0);
  pt_capture_write(w, PT_CAP_REQUEST, 1, 1, data, sizeof data);
  pt_capture_close(w);
  assert_int_equal(truncate(bad, PT_CAP_HEADER + PT_CAP_RECORD + 10), 0);
  assert_int_equal(pt_cap_reader_open(&rd, bad, err, sizeof err), 0);
  pt_cap_record rec;
  assert_int_equal(pt_cap_read(&rd, &rec, err, sizeof err), -1);
  assert_non_null(strstr(err, "truncated"));
  pt_cap_reader_close(&rd);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_capture_replay_roundtrip),
      cmocka_unit_test(test_capture_rotation_and_checks),
  };
  int rc = cmocka_run_group_tests_name("replay", tests, NULL, NULL);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) rc = rc ? rc : 1;
  return rc;
}
