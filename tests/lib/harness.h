/* Test harness: starts a real pintuand on a free loopback port and stops it,
 * and speaks raw frames for tests that must send what a client library
 * never would. */
#ifndef PT_HARNESS_H
#define PT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pintuan.h"

/* Every daemon a test starts runs on a test clock (pintuand --test-clock):
 * its time starts at PT_TEST_EPOCH_MS and moves only when the test moves it,
 * so no hold, group or frame expires because the machine was slow. */
#define PT_TEST_EPOCH_MS 1700000000000LL
/* The longest a test waits for something it awaits (a reply, an event, a
 * log line, an exit): only a hang takes that long. */
#define PT_WAIT_MS 60000

typedef struct pt_daemon {
  pid_t pid;
  int port;
  int admin_port;   /* 0: none (--admin-listen off) */
  char addr[64];
  char dir[64];     /* private directory: the clock file and the log */
  char clock[96];   /* --test-clock file */
  char log[96];     /* the daemon's stderr */
  int64_t now;      /* the daemon's time, as last set */
  long log_off;     /* daemon_log_wait searches from here */
  int life_fd;      /* read end of a pipe only the daemon holds: EOF when it exits */
} pt_daemon;

/* Starts $PINTUAND (or ./daemon/pintuand) with the extra args (NULL-ended)
 * on a test clock, its admin port on a free port, and its log in d->log; waits until it listens. Returns 0
 * or -1 (the log is copied to stderr). */
int daemon_start(pt_daemon *d, const char *const *extra);
/* SIGTERM and wait; returns the exit status (0: clean shutdown), -1 if it
 * died by a signal or did not stop within PT_WAIT_MS. Copies the log to
 * stderr and removes d->dir. */
int daemon_stop(pt_daemon *d);
long daemon_rss_kb(const pt_daemon *d);

/* The test clock. set_time writes the daemon's time (epoch ms; it never
 * goes back) atomically; the daemon sees it at its next request or timer.
 * advance_time moves it forward by ms and then pings through c (a client
 * that is not subscribed to events), so that when it returns the daemon has
 * observed the new time and acted on everything due by then (expiries,
 * failed groups, their events). Both abort on failure. */
void set_time(pt_daemon *d, int64_t ms);
void advance_time(pt_daemon *d, pintuan_client *c, int64_t ms);

/* Waits up to timeout_ms for a line of the daemon's log containing needle,
 * after the last line found this way; 0 (the line in line, if given) or -1
 * (timed out, or the daemon exited). */
int daemon_log_wait(pt_daemon *d, const char *needle, int timeout_ms, char *line, size_t linelen);

pintuan_client *connect_or_die(const pt_daemon *d);

/* raw sockets */
int raw_connect(const pt_daemon *d);
int raw_send(int fd, const void *p, size_t n);
int raw_send_request(int fd, Pintuan__V1__Request *q);
/* Reads one frame (timeout ms); returns the decoded reply, NULL on
 * EOF/timeout/undecodable (*eof set to 1 on a clean close). */
pintuan_response *raw_recv(int fd, int timeout_ms, int *eof);

/* The admin port (127.0.0.1, one request per connection, as it serves). */
/* Bytes until the peer closes, malloc'd and NUL-ended (length in *len if
 * given); NULL if it did not close within PT_WAIT_MS. */
char *read_until_close(int fd, size_t *len);
/* GET PATH: the whole answer, head and body, as read_until_close; NULL if
 * the port cannot be reached or did not answer. */
char *admin_get(const pt_daemon *d, const char *path);
/* The value of one sample line of /metrics text ("name{labels}" exactly),
 * -1 if absent. */
double metric_value(const char *text, const char *series);

/* A key made as an operator makes one (pintuand --make-key NAME:ROLE
 * --key-out DIR/NAME.key, its line appended to DIR/keys): its secret into
 * secret (at least 64 bytes). 0, or -1. */
int make_key(const char *dir, const char *name, const char *role, char *secret);
/* A connection that said Hello with key name/secret and was answered OK. */
pintuan_client *connect_as(const pt_daemon *d, const char *name, const char *secret);

/* Creates a started flash-sale campaign; returns the reply status. */
int create_flash(pintuan_client *c, const char *id, int64_t stock, uint32_t limit, int64_t hold_ms,
                 int waitlist);
/* Creates a started group-buy campaign; returns the reply status. */
int create_group(pintuan_client *c, const char *id, int64_t stock, uint32_t size, int64_t ttl_ms,
                 int64_t hold_ms, uint32_t limit);
/* The campaign's counters via GetCampaign; aborts if it cannot be read. */
Pintuan__V1__Campaign *get_campaign(pintuan_client *c, const char *id, pintuan_response **keep);
#endif
