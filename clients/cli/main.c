/* main.c: pintuan-cli, every pintuan operation from a shell. Wires the
 * parts: the global options (before the command), the connection to the
 * daemon (an address, or a failover list H1:P1,H2:P2 that libpintuan fails
 * over), a reply printed and turned into the exit status, and the command
 * run through commands.c's table.
 *
 * Exit codes: 0 the daemon answered OK; 1 it answered with another status
 * (a rejected request: SOLD_OUT, LIMIT_EXCEEDED, ...); 64 usage error;
 * 69 the daemon could not be reached or the connection failed. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "addr.h"
#include "cli.h"
#include "commands.h"
#include "options.h"
#include "print.h"

/* ---- the daemon ---- */

int cli_show(const cli_ctx *c, const pintuan_response *r) {
  if (c->json) cli_print_json(r);
  else cli_print_human(r);
  fflush(stdout);
  if (r->status == PINTUAN__V1__STATUS__UNAUTHENTICATED && c->key)
    fprintf(stderr, "pintuan-cli: (the daemon did not take the key %s)\n", c->key);
  else if (r->status == PINTUAN__V1__STATUS__UNAUTHENTICATED)
    fprintf(stderr, "pintuan-cli: (the daemon wants a key: pintuan-cli -k KEY_FILE ..., or PINTUAN_KEY_FILE)\n");
  else if (r->status == PINTUAN__V1__STATUS__PERMISSION_DENIED)
    fprintf(stderr, "pintuan-cli: (the key %s may not do this: see its role)\n", c->key ? c->key : "");
  return r->status == PINTUAN__V1__STATUS__OK ? 0 : EXIT_REJECTED;
}

pintuan_client *cli_dial(const cli_ctx *c, const char *where, char *err, size_t errlen) {
  return pintuan_connect_tls(where, c->timeout_ms, c->use_tls ? &c->tls : NULL, err, errlen);
}

int cli_connect(cli_ctx *c) {
  if (c->client) return 0;
  char err[1024];
  c->client = cli_dial(c, c->addr, err, sizeof err);
  if (!c->client) {
    fprintf(stderr, "pintuan-cli: %s\n", err);
    return EX_UNAVAILABLE;
  }
  if (c->key) {
    pintuan_response *r;
    if (pintuan_hello(c->client, c->key, c->secret, &r)) {
      fprintf(stderr, "pintuan-cli: %s: %s\n", c->addr, pintuan_error(c->client));
      return EX_UNAVAILABLE;
    }
    if (r->status != PINTUAN__V1__STATUS__OK) {
      int rc = cli_show(c, r);
      pintuan_response_free(r);
      return rc;
    }
    pintuan_response_free(r);
  }
  return 0;
}

int cli_answer(cli_ctx *c, int failed, pintuan_response **r) {
  if (failed) {
    fprintf(stderr, "pintuan-cli: %s: %s\n", c->addr, pintuan_error(c->client));
    return EX_UNAVAILABLE;
  }
  int rc = cli_show(c, *r);
  pintuan_response_free(*r);
  return rc;
}

int cli_call(cli_ctx *c, pintuan_request *q) {
  int rc;
  if ((rc = cli_connect(c))) return rc;
  pintuan_response *r;
  return cli_answer(c, pintuan_call(c->client, q, &r), &r);
}

/* ---- the global options ---- */

/* Takes the global options off the front of argv into c; what follows
 * (from *first) is the command. -1 to go on, else the exit status
 * (--help, --version, a usage error). */
/* -k FILE (or PINTUAN_KEY_FILE): the key's name and secret. -1 to go on,
 * else the exit status. */
static int key_file(cli_ctx *c, const char *path) {
  static char name[128], secret[256];
  char err[600];
  if (pintuan_read_key_file(path, name, sizeof name, secret, sizeof secret, err, sizeof err)) {
    fprintf(stderr, "pintuan-cli: %s\n", err);
    return EX_NOINPUT;
  }
  struct stat st;
  if (stat(path, &st) == 0 && (st.st_mode & 077))
    fprintf(stderr, "pintuan-cli: warning: %s is readable by others (chmod 600 it): it holds a secret\n", path);
  c->key = name, c->secret = secret;
  return -1;
}

static int global_options(int argc, char **argv, cli_ctx *c, int *first) {
  int rc;
  const char *env = getenv("PINTUAN_KEY_FILE");
  if (env && *env && (rc = key_file(c, env)) >= 0) return rc;
  if ((env = getenv("PINTUAN_TLS_CA")) && *env) c->use_tls = 1, c->tls.ca_file = env;
  struct option opts[16];
  size_t n = 0;
  for (const cli_global_opt *p = cli_global_opts; p->opt.name && n < 15; p++) opts[n++] = p->opt;
  opts[n] = (struct option){0, 0, 0, 0};
  opterr = 0; /* our own messages: one line, then a pointer to --help */
  for (;;) {
    int word = optind;
    /* "+": stop at the command word; what follows belongs to the command */
    int o = getopt_long(argc, argv, CLI_GLOBAL_SHORTOPTS, opts, NULL);
    if (o == -1) break;
    switch (o) {
    case 'a': { /* checked here: a usage error never needs the daemon */
      pt_addr list[PINTUAN_MAX_ADDRS];
      char err[512];
      if (pt_addr_parse_list(optarg, PINTUAN_DEFAULT_PORT, list, PINTUAN_MAX_ADDRS, err, sizeof err) < 0)
        return usage_error("--address: %s (give HOST:PORT or H1:P1,H2:P2)", err);
      c->addr = optarg;
      break;
    }
    case 'j': c->json = 1; break;
    case 'T': c->use_tls = 1; break;
    case 'C': c->use_tls = 1, c->tls.ca_file = optarg; break;
    case 'E': c->tls.cert_file = optarg; break;
    case 'K': c->tls.key_file = optarg; break;
    case 'N': c->tls.server_name = optarg; break;
    case 'k':
      if ((rc = key_file(c, optarg)) >= 0) return rc;
      break;
    case 't': {
      int64_t t;
      if (cli_parse_i64(optarg, &t) || t < 1 || t > 3600000)
        return usage_error("--timeout: bad value '%s' (give milliseconds, 1..3600000)", optarg);
      c->timeout_ms = (int)t;
      break;
    }
    case 'h': cli_usage(stdout); return EX_OK;
    case 'V': printf("pintuan-cli %s\n", PT_VERSION); return EX_OK;
    default: return cli_bad_global_option(opts, argv[word], o);
    }
  }
  if (!c->use_tls && (c->tls.cert_file || c->tls.key_file || c->tls.server_name))
    return usage_error("--tls-cert, --tls-key and --tls-server-name go with --tls or --tls-ca");
  *first = optind;
  return -1;
}

int main(int argc, char **argv) {
  cli_ctx c = {.addr = "127.0.0.1:7733", .timeout_ms = 5000};
  int first, rc = global_options(argc, argv, &c, &first);
  if (rc >= 0) return rc;
  if (first >= argc) return usage_error("no command given");
  rc = cli_run_command(&c, argc - first, argv + first);
  if (c.client) pintuan_close(c.client);
  return rc;
}
