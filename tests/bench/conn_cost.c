/* conn_cost: what a new connection costs, as a libpintuan user pays it.
 * N times in a row: pintuan_connect (or pintuan_connect_tls with --tls-ca:
 * the context, the handshake, the daemon's certificate checked), a Hello
 * when a key is given, one Ping answered, pintuan_close. Each round is
 * timed from before the connect to after the close, and this process's
 * CPU time is divided among them (the client's side of the cost); the
 * daemon's side is read by the caller from its CPU time
 * (tests/bench/tls_ab.sh).
 *
 * usage: conn_cost -a HOST:PORT [-n N] [--tls-ca FILE] [-k KEY_FILE] [-j]
 * Prints rounds a second, the round's p50, p99 and max, and the client's
 * CPU per round; -j: one JSON
 * line. Exit 1 on a failed round, 64 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "histogram.h"
#include "pintuan.h"

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  const char *addr = NULL, *ca = NULL, *key_file = NULL;
  long n = 1000;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-j")) json = 1;
    else if (v && !strcmp(a, "-a")) addr = v, i++;
    else if (v && !strcmp(a, "-n")) n = atol(v), i++;
    else if (v && !strcmp(a, "--tls-ca")) ca = v, i++;
    else if (v && !strcmp(a, "-k")) key_file = v, i++;
    else addr = NULL, i = argc;
  }
  if (!addr || n < 1 || n > 10000000) {
    fprintf(stderr, "usage: conn_cost -a HOST:PORT [-n N] [--tls-ca FILE] [-k KEY_FILE] [-j]\n");
    return 64;
  }
  char name[128] = "", secret[128] = "", err[512];
  if (key_file && pintuan_read_key_file(key_file, name, sizeof name, secret, sizeof secret, err, sizeof err)) {
    fprintf(stderr, "conn_cost: %s\n", err);
    return 64;
  }
  static pt_hist h;
  pt_hist_reset(&h);
  pintuan_tls tls = {.ca_file = ca};
  int64_t t0 = now_ns();
  double cpu0 = cpu_us();
  for (long i = 0; i < n; i++) {
    int64_t t = now_ns();
    pintuan_client *c = ca ? pintuan_connect_tls(addr, 5000, &tls, err, sizeof err)
                           : pintuan_connect(addr, 5000, err, sizeof err);
    if (!c) {
      fprintf(stderr, "conn_cost: round %ld: %s\n", i, err);
      return 1;
    }
    pintuan_set_failover(c, 0, 0);
    pintuan_response *r = NULL;
    if (key_file && (pintuan_hello(c, name, secret, &r) || r->status != PINTUAN__V1__STATUS__OK)) {
      fprintf(stderr, "conn_cost: round %ld: Hello: %s\n", i, r ? r->detail : pintuan_error(c));
      return 1;
    }
    pintuan_response_free(r);
    r = NULL;
    if (pintuan_ping(c, &r) || r->status != PINTUAN__V1__STATUS__OK) {
      fprintf(stderr, "conn_cost: round %ld: Ping: %s\n", i, r ? r->detail : pintuan_error(c));
      return 1;
    }
    pintuan_response_free(r);
    pintuan_close(c);
    pt_hist_record(&h, (uint64_t)(now_ns() - t));
  }
  double secs = (double)(now_ns() - t0) / 1e9, cpu = (cpu_us() - cpu0) / (double)n;
  double p50 = pt_hist_percentile(&h, 50) / 1e3, p99 = pt_hist_percentile(&h, 99) / 1e3, max = (double)h.max / 1e3;
  if (json)
    printf("{\"rounds\":%ld,\"seconds\":%.3f,\"rounds_per_s\":%.1f,\"round_us\":{\"50\":%.1f,\"99\":%.1f,\"max\":%.1f},"
           "\"client_cpu_us\":%.1f}\n",
           n, secs, (double)n / secs, p50, p99, max, cpu);
  else
    printf("%ld rounds in %.2f s: %.0f a second; a round p50 %.0f us, p99 %.0f us, max %.0f us; client CPU %.0f us a round\n",
           n, secs, (double)n / secs, p50, p99, max, cpu);
  return 0;
}
