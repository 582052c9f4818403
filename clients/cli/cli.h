/* cli.h: what pintuan-cli's parts share: the run's context (the global
 * options and the connection) and, from main.c, talking to the daemon:
 * connect on first need, send a request, print a reply and give the exit
 * status it means.
 *
 * Exit codes: 0 the daemon answered OK; 1 it answered with another status
 * (a rejected request: SOLD_OUT, LIMIT_EXCEEDED, ...); 64 (EX_USAGE) usage
 * error; 69 (EX_UNAVAILABLE) the daemon could not be reached or the
 * connection failed. */
#ifndef PT_CLI_CLI_H
#define PT_CLI_CLI_H

#include "pintuan.h"

#define EXIT_REJECTED 1

typedef struct cli_ctx {
  const char *addr;  /* -a: an address, or a failover list H1:P1,H2:P2 */
  const char *key;   /* -k's key name, or NULL: no Hello */
  const char *secret; /* -k's key secret */
  int timeout_ms;    /* -t */
  int json;          /* -j */
  pintuan_tls tls;   /* --tls*: its settings */
  int use_tls;       /* --tls, --tls-ca (or PINTUAN_TLS_CA) */
  pintuan_client *client; /* NULL until cli_connect */
} cli_ctx;

/* A connection to where (TLS as the options say): NULL with err. */
pintuan_client *cli_dial(const cli_ctx *c, const char *where, char *err, size_t errlen);

/* Connects (and says Hello with -k's key) once a command's arguments
 * were found good: a usage error never needs the daemon. 0, or the exit
 * status. */
int cli_connect(cli_ctx *c);

/* Prints a reply (JSON or human); its exit status (0 or EXIT_REJECTED). */
int cli_show(const cli_ctx *c, const pintuan_response *r);

/* The exit status of one request: what the daemon answered, or 69 when the
 * call failed. `failed` is a libpintuan call's return value; the reply is
 * read through r (and freed) only after that call has returned. */
int cli_answer(cli_ctx *c, int failed, pintuan_response **r);

/* Connects, sends q, prints the answer: the exit status. */
int cli_call(cli_ctx *c, pintuan_request *q);

#endif
