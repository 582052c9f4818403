/* Capture and replay, end to end: a scripted session against a daemon with
 * --capture, replayed by pintuan-bench against a fresh daemon (no
 * divergence), then with one recorded reply altered (the divergence is
 * reported at that request). Exact replay of the same capture by
 * pintuan-replay: no divergence; a what-if reported at the first request it
 * changes; a truncated, corrupt or version 1 capture refused at its byte
 * offset. Also the capture file's rotation and checks. */
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
  assert_int_equal(pintuan_confirm(c, "cap", res, "u1", "p-1", &r), 0); /* 6 */
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

/* The scripted session against a daemon capturing to file. */
static void capture_session(const char *file) {
  const char *args[] = {"--capture", file, NULL};
  pt_daemon a;
  assert_int_equal(daemon_start(&a, args), 0);
  scripted_session(&a);
  assert_int_equal(daemon_stop(&a), 0); /* the capture is complete once it exits */
}

static void test_capture_replay_roundtrip(void **state) {
  (void)state;
  char file[128], altered[128];
  snprintf(file, sizeof file, "%s/session.cap", dir);
  snprintf(altered, sizeof altered, "%s/altered.cap", dir);
  capture_session(file);

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

/* Runs pintuan-replay ARGS FILE --json; its exit status, its JSON in out. */
static int exact(const char *args, const char *file, char *out, size_t outlen) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s --json --no-progress %s %s 2>/dev/null",
           getenv("PINTUAN_REPLAY") ? getenv("PINTUAN_REPLAY") : "./daemon/pintuan-replay", args, file);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = 0;
  int st = pclose(p);
  print_message("pintuan-replay %s: %s", args, out);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void copy_file(const char *from, const char *to, long cut) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_true(a && b);
  char buf[4096];
  size_t n;
  long left = cut < 0 ? -1 : cut;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) {
    if (left >= 0 && (long)n > left) n = (size_t)left;
    assert_int_equal(fwrite(buf, 1, n, b), n);
    if (left >= 0 && (left -= (long)n) == 0) break;
  }
  fclose(a);
  fclose(b);
}

static void poke(const char *file, long at, uint8_t byte) {
  FILE *f = fopen(file, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, at, SEEK_SET), 0);
  assert_int_equal(fputc(byte, f), byte);
  fclose(f);
}

static void flip(const char *file, long at) { /* a byte made different, whatever it was */
  FILE *f = fopen(file, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, at, SEEK_SET), 0);
  int b = fgetc(f);
  assert_true(b >= 0);
  assert_int_equal(fseek(f, at, SEEK_SET), 0);
  assert_int_equal(fputc(b ^ 0xff, f), b ^ 0xff);
  fclose(f);
}

static void test_exact_replay(void **state) {
  (void)state;
  char file[128], bad[140];
  snprintf(file, sizeof file, "%s/exact.cap", dir);
  snprintf(bad, sizeof bad, "%s/exact-bad.cap", dir);
  capture_session(file);

  /* the same build decides the same: 7 requests decided (reads are not
   * decisions), none differently */
  char out[8192];
  assert_int_equal(exact("", file, out, sizeof out), 0);
  assert_non_null(strstr(out, "\"version\":2"));
  assert_non_null(strstr(out, "\"requests\":7,"));
  assert_non_null(strstr(out, "\"states\":1,"));
  assert_non_null(strstr(out, "\"divergences\":0,"));
  assert_non_null(strstr(out, "\"error\":null"));

  /* what-if: a limit of 2 lets u1's second order (request 3) through, which
   * takes the unit u2 got */
  assert_int_equal(exact("--set cap.per_user_limit=2", file, out, sizeof out), 0);
  assert_non_null(strstr(out, "\"first\":{\"request\":3,"));
  assert_non_null(strstr(out, "\"user_id\":\"u1\",\"request_id\":\"o-2\",\"field\":\"status\","
                              "\"recorded\":{\"status\":\"LIMIT_EXCEEDED\""));
  assert_non_null(strstr(out, "\"got\":{\"status\":\"OK\""));
  assert_non_null(strstr(out, "\"users_gained\":0,\"users_lost\":1}"));
  /* a third unit serves u3 (request 5), and no one loses one */
  assert_int_equal(exact("--set cap.stock=3", file, out, sizeof out), 0);
  assert_non_null(strstr(out, "\"first\":{\"request\":5,"));
  assert_non_null(strstr(out, "\"by_status\":{\"SOLD_OUT->OK\":1}"));
  assert_non_null(strstr(out, "\"users_gained\":1,\"users_lost\":0}"));
  /* a campaign the capture does not have, a field that does not exist */
  /* checked before replaying anything: its own status, one line, the way to the list */
  assert_int_equal(exact("--set nope.stock=3", file, out, sizeof out), 3);
  assert_string_equal(out, "");
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s --set nope.stock=3 %s 2>&1",
           getenv("PINTUAN_REPLAY") ? getenv("PINTUAN_REPLAY") : "./daemon/pintuan-replay", file);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = 0;
  pclose(p);
  assert_non_null(strstr(out, "no campaign nope in this capture (pintuan-replay --list"));
  assert_null(strchr(out, '\n') == out + got - 1 ? NULL : strchr(out, '\n')); /* once */
  assert_int_equal(exact("--list", file, out, sizeof out), 0);
  assert_non_null(strstr(out, "{\"campaigns\":[{\"campaign_id\":\"cap\",\"kind\":\"FLASH_SALE\",\"stock\":2"));
  assert_int_equal(exact("--set cap.colour=3", file, out, sizeof out), 64);

  /* where the records are: the 3rd input record, for damage */
  pt_cap_reader rd;
  char err[256];
  assert_int_equal(pt_cap_reader_open(&rd, file, err, sizeof err), 0);
  pt_cap_record rec;
  long input_at = -1;
  int inputs = 0;
  while (pt_cap_read(&rd, &rec, err, sizeof err) == 1)
    if (rec.kind == PT_CAP_INPUT && ++inputs == 3) input_at = (long)rd.at;
  pt_cap_reader_close(&rd);
  assert_true(input_at > 0);
  char want[64];
  snprintf(want, sizeof want, "at byte %ld: ", input_at);

  /* cut inside that record: refused at its offset, what came before replayed */
  copy_file(file, bad, input_at + PT_CAP_RECORD + 3);
  assert_int_equal(exact("", bad, out, sizeof out), 2);
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "truncated"));
  /* its kind byte made unknown */
  copy_file(file, bad, -1);
  poke(bad, input_at, 9);
  assert_int_equal(exact("", bad, out, sizeof out), 2);
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "corrupt record"));
  /* its contents made undecodable (0xc1 is never used by msgpack) */
  copy_file(file, bad, -1);
  poke(bad, input_at + PT_CAP_RECORD, 0xc1);
  assert_int_equal(exact("", bad, out, sizeof out), 2);
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "the input record"));
  /* a byte of the engine's state (the first record) damaged: the checksum finds it */
  copy_file(file, bad, -1);
  flip(bad, PT_CAP_HEADER + PT_CAP_RECORD + 8 + 20);
  assert_int_equal(exact("", bad, out, sizeof out), 2);
  snprintf(want, sizeof want, "at byte %d: the state record is damaged", PT_CAP_HEADER);
  assert_non_null(strstr(out, want));
  /* a version 1 capture has no decisions: refused, saying what to do */
  copy_file(file, bad, -1);
  poke(bad, 11, 1);
  assert_int_equal(exact("", bad, out, sizeof out), 2);
  assert_non_null(strstr(out, "version 1 capture"));
  assert_non_null(strstr(out, "pintuan-bench --replay"));
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
      cmocka_unit_test(test_exact_replay),
      cmocka_unit_test(test_capture_rotation_and_checks),
  };
  int rc = cmocka_run_group_tests_name("replay", tests, NULL, NULL);
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) rc = rc ? rc : 1;
  return rc;
}
