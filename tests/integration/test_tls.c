/* TLS on the storefront port, against real pintuand processes over real TCP
 * on 127.0.0.1, with certificates made by Debian's openssl for the run (a
 * CA, the daemon's, clients' and a stranger's CA): libpintuan, the CLI and
 * the bench speak it; a plaintext client, a client that does not trust the
 * daemon's certificate, or a name it does not carry are refused; a client
 * certificate whose CN names a key carries that key's role, one from
 * another CA nothing. */
#include <fcntl.h>
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

#include "harness.h"

#define OK PINTUAN__V1__STATUS__OK

static pt_daemon D;
static char dir[] = "/tmp/pt-tls-XXXXXX";
static char path_buf[16][300];
static int path_n;

static const char *in_dir(const char *name) {
  char *p = path_buf[path_n++ % 16];
  snprintf(p, 300, "%s/%s", dir, name);
  return p;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  if (system(cmd) != 0) {
    fprintf(stderr, "failed: %s\n", cmd);
    abort();
  }
}

/* A P-256 key and a certificate for subject CN=cn signed by ca (NULL: its
 * own CA), with extra extensions (-addext) if given. */
static void cert(const char *name, const char *cn, const char *ca, const char *ext) {
  const char *q = ">/dev/null 2>&1";
  if (!ca) {
    sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "
       "-out %s.pem -days 2 -subj /CN=%s %s",
       dir, name, name, cn, q);
    return;
  }
  sh("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr "
     "-subj /CN=%s %s%s %s && openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial "
     "-out %s.pem -days 2 -copy_extensions copy %s",
     dir, name, name, cn, ext ? "-addext " : "", ext ? ext : "", q, name, ca, ca, name, q);
}

static char ops[64], shop[64];

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(dir)) return -1;
  cert("ca", "pintuan-test-ca", NULL, NULL);
  cert("server", "pintuand", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
  cert("c-shop", "shop", "ca", NULL);      /* a key's name: its role */
  cert("c-nobody", "nobody", "ca", NULL);  /* no key of that name */
  cert("rogue", "rogue-ca", NULL, NULL);   /* a CA the daemon does not trust */
  cert("c-forged", "shop", "rogue", NULL); /* "shop", signed by it */
  if (make_key(dir, "ops", "admin", ops) || make_key(dir, "shop", "storefront", shop)) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  sh("rm -rf %s", dir);
  return 0;
}

static int stop(void **state) {
  (void)state;
  return daemon_stop(&D);
}

static pintuan_client *tls_client(const char *addr, const char *ca, const char *who, const char *name,
                                  char *err, size_t errlen) {
  char certf[300] = "", keyf[300] = "";
  if (who) {
    snprintf(certf, sizeof certf, "%s/%s.pem", dir, who);
    snprintf(keyf, sizeof keyf, "%s/%s.key", dir, who);
  }
  pintuan_tls t = {.ca_file = in_dir(ca), .cert_file = who ? certf : NULL, .key_file = who ? keyf : NULL,
                   .server_name = name};
  pintuan_client *c = pintuan_connect_tls(addr, 5000, &t, err, errlen);
  if (c) pintuan_set_failover(c, 0, 0); /* a refusal is the answer, not a reason to try again */
  return c;
}

static int ping(pintuan_client *c) {
  pintuan_response *r = NULL;
  if (pintuan_ping(c, &r)) return -1;
  int st = r->status;
  pintuan_response_free(r);
  return st;
}

static int reserve(pintuan_client *c, const char *user, const char *rid) {
  pintuan_response *r = NULL;
  if (pintuan_reserve(c, "sku", user, 1, rid, &r)) return -1;
  int st = r->status;
  pintuan_response_free(r);
  return st;
}

static void start(const char *const *more) {
  const char *args[24] = {"--tls-cert", in_dir("server.pem"), "--tls-key", in_dir("server.key")};
  int n = 4;
  for (int i = 0; more && more[i]; i++) args[n++] = more[i];
  args[n] = NULL;
  assert_int_equal(daemon_start(&D, args), 0);
}

static double tls_failed(void) {
  char *m = admin_get(&D, "/metrics");
  assert_non_null(m);
  double v = metric_value(m, "pintuan_tls_failed_total");
  free(m);
  return v;
}

/* A TLS client is answered; what is not a TLS client of this daemon's CA
 * and name is refused, and counted. */
static void test_tls_round_trip(void **state) {
  (void)state;
  start(NULL);
  char err[1024];
  pintuan_client *c = tls_client(D.addr, "ca.pem", NULL, NULL, err, sizeof err);
  assert_non_null(c);
  assert_int_equal(ping(c), OK);
  assert_int_equal(create_flash(c, "sku", 100, 0, 60000, 0), OK);
  for (int i = 0; i < 50; i++) { /* pipelined: many records each way */
    pintuan_request q;
    Pintuan__V1__Reserve body;
    char user[16], rid[16];
    snprintf(user, sizeof user, "u%d", i), snprintf(rid, sizeof rid, "r%d", i);
    pintuan_req_reserve(&q, &body, "sku", user, 1, rid);
    assert_int_equal(pintuan_send(c, &q), 0);
  }
  assert_int_equal(pintuan_flush(c), 0);
  for (int i = 0; i < 50; i++) {
    pintuan_response *r;
    assert_int_equal(pintuan_recv(c, &r), 0);
    assert_int_equal(r->status, OK);
    pintuan_response_free(r);
  }
  pintuan_response *keep;
  assert_int_equal(get_campaign(c, "sku", &keep)->held, 50);
  pintuan_response_free(keep);

  /* a host name the certificate carries (localhost), and one it does not */
  char local[64];
  snprintf(local, sizeof local, "localhost:%d", D.port);
  pintuan_client *byname = tls_client(local, "ca.pem", NULL, NULL, err, sizeof err);
  assert_non_null(byname);
  assert_int_equal(ping(byname), OK);
  pintuan_close(byname);
  assert_null(tls_client(D.addr, "ca.pem", NULL, "shop.example", err, sizeof err));
  assert_non_null(strstr(err, "certificate"));

  /* a client that trusts another CA does not talk to this daemon */
  assert_null(tls_client(D.addr, "rogue.pem", NULL, NULL, err, sizeof err));
  assert_non_null(strstr(err, "certificate"));

  /* a plaintext client is told, in its protocol, that this port speaks TLS */
  double failed = tls_failed();
  pintuan_client *plain = connect_or_die(&D);
  pintuan_set_failover(plain, 0, 0);
  pintuan_response *r;
  assert_int_equal(pintuan_ping(plain, &r), 0);
  assert_int_equal(r->status, PINTUAN__V1__STATUS__INVALID_ARGUMENT);
  assert_non_null(strstr(r->detail, "this port speaks TLS"));
  pintuan_response_free(r);
  pintuan_close(plain);
  assert_true(tls_failed() >= failed + 1);
  assert_int_equal(ping(c), OK); /* the others go on */

  /* the CLI and the bench speak it too */
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' -a %s --tls-ca %s/ca.pem campaign get sku >/dev/null", getenv("PINTUAN_CLI"),
           D.addr, dir);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "'%s' -a %s campaign get sku 2>&1 | grep -q 'this port speaks TLS'",
           getenv("PINTUAN_CLI"), D.addr);
  assert_int_equal(system(cmd), 0); /* plaintext: told why */
  snprintf(cmd, sizeof cmd,
           "'%s' -a %s --tls-ca %s/ca.pem -c 4 -p 8 -d 0.5 -w 0 --stock 1000000 --no-progress -j > %s/bench.json",
           getenv("PINTUAN_BENCH"), D.addr, dir, dir);
  assert_int_equal(system(cmd), 0); /* its verdict (stock adds up, nothing unanswered) passed */
  /* every request answered by the engine (NOT_STARTED: the bench's
   * campaign starts on the wall clock, this daemon runs on a test clock) */
  snprintf(cmd, sizeof cmd, "grep -Eq '\"requests\": ?[1-9].*\"status\": ?\\{\"NOT_STARTED\"' %s/bench.json", dir);
  assert_int_equal(system(cmd), 0);
  pintuan_close(c);
}

/* A client certificate from the trusted CA whose CN names a key: that
 * key's role without a Hello; a CN naming no key: no role; one signed by
 * another CA: no connection. "required": no certificate, no connection. */
static void test_client_certificates(void **state) {
  (void)state;
  const char *more[] = {"--keys", in_dir("keys"), "--tls-client-ca", in_dir("ca.pem"), NULL};
  start(more);
  char err[1024];
  pintuan_client *admin = tls_client(D.addr, "ca.pem", NULL, NULL, err, sizeof err);
  assert_non_null(admin);
  pintuan_response *r;
  assert_int_equal(pintuan_hello(admin, "ops", ops, &r), 0); /* a key over TLS, as without */
  assert_int_equal(r->status, OK);
  pintuan_response_free(r);
  assert_int_equal(create_flash(admin, "sku", 100, 0, 60000, 0), OK);

  pintuan_client *store = tls_client(D.addr, "ca.pem", "c-shop", NULL, err, sizeof err);
  assert_non_null(store);
  assert_int_equal(reserve(store, "alice", "s-1"), OK);
  assert_int_equal(create_flash(store, "other", 5, 0, 60000, 0), PINTUAN__V1__STATUS__PERMISSION_DENIED);

  pintuan_client *anon = tls_client(D.addr, "ca.pem", NULL, NULL, err, sizeof err);
  assert_non_null(anon); /* optional: no certificate is no identity */
  assert_int_equal(reserve(anon, "bob", "a-1"), PINTUAN__V1__STATUS__UNAUTHENTICATED);
  pintuan_client *nobody = tls_client(D.addr, "ca.pem", "c-nobody", NULL, err, sizeof err);
  assert_non_null(nobody);
  assert_int_equal(reserve(nobody, "carol", "n-1"), PINTUAN__V1__STATUS__UNAUTHENTICATED);

  /* a forged "shop": the handshake fails (at connect, or at the first
   * read: TLS 1.3 checks the client's certificate after the client is done) */
  pintuan_client *forged = tls_client(D.addr, "ca.pem", "c-forged", NULL, err, sizeof err);
  if (forged) {
    assert_int_equal(reserve(forged, "mallory", "f-1"), -1);
    pintuan_close(forged);
  }
  pintuan_response *keep;
  assert_int_equal(get_campaign(admin, "sku", &keep)->held, 1); /* alice's alone */
  pintuan_response_free(keep);
  pintuan_close(admin), pintuan_close(store), pintuan_close(anon), pintuan_close(nobody);
  assert_int_equal(daemon_stop(&D), 0);

  const char *req[] = {"--keys", in_dir("keys"), "--tls-client-ca", in_dir("ca.pem"), "--tls-client-certs",
                       "required", NULL};
  start(req);
  pintuan_client *none = tls_client(D.addr, "ca.pem", NULL, NULL, err, sizeof err);
  if (none) {
    assert_int_equal(ping(none), -1);
    pintuan_close(none);
  }
  store = tls_client(D.addr, "ca.pem", "c-shop", NULL, err, sizeof err);
  assert_non_null(store);
  assert_int_equal(ping(store), OK);
  pintuan_close(store);
}

/* The daemon refuses a TLS configuration it cannot use, saying why. */
static void test_tls_config_errors(void **state) {
  (void)state;
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' -t --tls-cert %s/server.pem 2>%s/err; test $? -eq 78 && grep -q 'key_file' %s/err",
           getenv("PINTUAND"), dir, dir, dir);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd,
           "'%s' -t --tls-cert %s/server.pem --tls-key %s/c-shop.key 2>%s/err; test $? -eq 78 && grep -q 'not the certificate' %s/err",
           getenv("PINTUAND"), dir, dir, dir, dir);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "'%s' -t --tls-cert %s/server.pem --tls-key %s/server.key --tls-client-certs maybe 2>/dev/null; test $? -eq 78",
           getenv("PINTUAND"), dir, dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_tls_round_trip, stop),
      cmocka_unit_test_teardown(test_client_certificates, stop),
      cmocka_unit_test(test_tls_config_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
