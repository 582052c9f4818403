/* Test harness: starts a real pintuand on a free loopback port and stops it,
 * and speaks raw frames for tests that must send what a client library
 * never would. */
#ifndef PT_HARNESS_H
#define PT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pintuan.h"

typedef struct pt_daemon {
  pid_t pid;
  int port;
  char addr[64];
} pt_daemon;

/* Starts $PINTUAND (or ./daemon/pintuand) with the extra args (NULL-ended),
 * waits until it listens. Returns 0 or -1. */
int daemon_start(pt_daemon *d, const char *const *extra);
/* SIGTERM and wait; returns the exit status (0: clean shutdown), -1 if it
 * died by a signal or did not stop within 10 s. */
int daemon_stop(pt_daemon *d);
long daemon_rss_kb(const pt_daemon *d);

pt_client *connect_or_die(const pt_daemon *d);

/* raw sockets */
int raw_connect(const pt_daemon *d);
int raw_send(int fd, const void *p, size_t n);
int raw_send_request(int fd, Pintuan__V1__Request *q);
/* Reads one frame (timeout ms); returns the decoded reply, NULL on
 * EOF/timeout/undecodable (*eof set to 1 on a clean close). */
pt_response *raw_recv(int fd, int timeout_ms, int *eof);

ProtobufCBinaryData pt_bin(const char *s);



/* Creates a started flash-sale campaign; returns the reply status. */
int create_flash(pt_client *c, const char *id, int64_t stock, uint32_t limit, int64_t hold_ms,
                 int waitlist);
/* Creates a started group-buy campaign; returns the reply status. */
int create_group(pt_client *c, const char *id, int64_t stock, uint32_t size, int64_t ttl_ms,
                 int64_t hold_ms, uint32_t limit);
/* The campaign's counters via GetCampaign; aborts if it cannot be read. */
Pintuan__V1__Campaign *get_campaign(pt_client *c, const char *id, pt_response **keep);
#endif
