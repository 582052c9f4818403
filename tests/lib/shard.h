/* Daemons of one shard ("t") against a test Redis: started, awaited in a
 * role, killed with SIGKILL, and whatever a failing test left running
 * reaped. Shared by the tests that run primaries and standbys. */
#ifndef PT_SHARD_H
#define PT_SHARD_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

/* Starts a daemon of shard "t" mirroring to redis_addr (HOST:PORT) as node,
 * with --lease-ms lease_ms and the extra args (NULL-ended, may be NULL);
 * does not wait for a role. 0, or -1. */
int shard_launch(pt_daemon *d, const char *redis_addr, const char *node, const char *lease_ms,
                 const char *const *more);
/* Waits until it logs that it recovered and is the primary (the recovery's
 * line in line, if given), or, primary false, that it is a standby. 0, or
 * -1 (not within PT_WAIT_MS, or it exited). */
int shard_await(pt_daemon *d, bool primary, char *line, size_t linelen);
/* A primary "a" (awaited) and then a standby "b" (awaited), with the extra
 * args of each (NULL-ended, may be NULL). 0, or -1. */
int shard_pair(pt_daemon *a, pt_daemon *b, const char *redis_addr, const char *lease_ms,
               const char *const *more_a, const char *const *more_b);
/* SIGKILL, reaped; its directory removed. 0, or -1 if it had exited. */
int shard_kill9(pt_daemon *d);
/* Kills (SIGKILL) every daemon shard_launch started that still runs: a
 * failing test leaves them holding its output open. */
void shard_reap(void);
/* pintuand --init-shard for the shard on redis_addr: the explicit step
 * that creates a shard. 0, or its exit status. */
int shard_init(const char *redis_addr, const char *shard);
/* $PINTUAND --redis redis_addr --shard shard, then the args (NULL-ended);
 * its stdout into out (if given). Its exit status, or -1. */
int shard_run(const char *redis_addr, const char *shard, const char *const *args, char *out,
              size_t outlen);
/* Waits until the daemon's /metrics reads want for series; 0, or -1 (the
 * last value read in *got, if given). A metric moves without a log line:
 * polled every 2 ms, PT_WAIT_MS at most. */
int metric_await(const pt_daemon *d, const char *series, double want, double *got);
/* The same, until series reads at least min. */
int metric_at_least(const pt_daemon *d, const char *series, double min);

#endif
