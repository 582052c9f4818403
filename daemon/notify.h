/* Telling systemd how the daemon is (sd_notify; a Type=notify unit).
 *
 * Contract:
 * - Every call is a no-op when the daemon was not started by systemd
 *   (NOTIFY_SOCKET unset) or was built without libsystemd (meson option
 *   systemd=disabled): callers never check which.
 * - Notifications are advice to the supervisor: a failure to send one is
 *   ignored, since there is no one else to tell.
 * - The watchdog ping is a timer on the daemon's own loop, not a thread:
 *   a loop that stops turning stops the pings, and systemd restarts it.
 * - Everything here runs on the loop's thread. */
#ifndef PT_NOTIFY_H
#define PT_NOTIFY_H

#include <uv.h>

/* READY=1 with STATUS=status (NULL: none) the first time: the daemon
 * serves. Later calls only update the STATUS: READY=1 again would say
 * nothing new. */
void pt_notify_ready(const char *status);
/* STATUS=..., shown by systemctl status. */
void pt_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* SIGHUP: RELOADING=1, then READY=1 once the new configuration is applied
 * (or refused). Both do nothing before pt_notify_ready: systemd is still
 * waiting for the start, and a READY=1 then would end it early. */
void pt_notify_reloading(void);
void pt_notify_reloaded(void);
/* STOPPING=1: the shutdown has begun. */
void pt_notify_stopping(void);

/* When systemd asked for a watchdog (WatchdogSec=: WATCHDOG_USEC, and
 * WATCHDOG_PID unset or ours), sends WATCHDOG=1 from a timer on loop at
 * half the interval. The timer does not keep the loop alive. Returns 0
 * (started, or not asked for) or a negative libuv error. */
int pt_notify_watchdog_start(uv_loop_t *loop);
/* Closes the timer, so that uv_loop_close succeeds after the shutdown. */
void pt_notify_watchdog_stop(void);

#endif
