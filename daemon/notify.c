/* sd_notify for pintuand (notify.h). Without libsystemd every function is
 * a no-op, so the daemon builds and runs the same on a host without it. */
#include "notify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#ifdef PT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static bool ready;       /* READY=1 was sent: systemd considers the start done */
static bool reloading;   /* RELOADING=1 was sent, READY=1 owed */
static uv_timer_t wd;    /* the watchdog ping */
static bool wd_on;

void pt_notify_ready(const char *status) {
  if (!ready) {
    ready = true;
    if (status) sd_notifyf(0, "READY=1\nSTATUS=%s", status); /* one datagram: no window between */
    else sd_notify(0, "READY=1");
  } else if (status) {
    sd_notifyf(0, "STATUS=%s", status);
  }
}

void pt_notify_status(const char *fmt, ...) {
  char buf[512]; /* a line for systemctl status: longer is cut, not refused */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  sd_notifyf(0, "STATUS=%s", buf);
}

void pt_notify_reloading(void) {
  if (!ready) return;
  reloading = true;
  sd_notify(0, "RELOADING=1");
}

void pt_notify_reloaded(void) {
  if (!reloading) return;
  reloading = false;
  sd_notify(0, "READY=1"); /* what ends a reload for systemd */
}

void pt_notify_stopping(void) { sd_notify(0, "STOPPING=1"); }

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  sd_notify(0, "WATCHDOG=1");
}

int pt_notify_watchdog_start(uv_loop_t *loop) {
  uint64_t usec = 0;
  int r = sd_watchdog_enabled(0, &usec); /* keeps the variables: pings need them again */
  if (r < 0) {
    pt_warn("systemd watchdog: unusable WATCHDOG_USEC/WATCHDOG_PID (%d): not pinging", r);
    return 0; /* systemd, if it did ask, restarts us: the log says why */
  }
  if (r == 0 || wd_on) return 0;
  /* half the interval, as sd_watchdog_enabled(3) advises: a late turn or two
   * still arrives in time, a loop stuck for the whole interval does not */
  uint64_t ms = usec / 2000;
  if (ms == 0) ms = 1;
  if ((r = uv_timer_init(loop, &wd)) < 0) return r;
  if ((r = uv_timer_start(&wd, on_watchdog, ms, ms)) < 0) {
    uv_close((uv_handle_t *)&wd, NULL);
    return r;
  }
  uv_unref((uv_handle_t *)&wd); /* the daemon's own handles decide when the loop ends */
  wd_on = true;
  sd_notify(0, "WATCHDOG=1"); /* the start so far used some of the first interval */
  pt_info("systemd watchdog: interval %llu ms, a ping every %llu ms",
          (unsigned long long)(usec / 1000), (unsigned long long)ms);
  return 0;
}

void pt_notify_watchdog_stop(void) {
  if (!wd_on) return;
  wd_on = false;
  uv_close((uv_handle_t *)&wd, NULL);
}

#else /* built without libsystemd */

void pt_notify_ready(const char *status) { (void)status; }
void pt_notify_status(const char *fmt, ...) { (void)fmt; }
void pt_notify_reloading(void) {}
void pt_notify_reloaded(void) {}
void pt_notify_stopping(void) {}
int pt_notify_watchdog_start(uv_loop_t *loop) {
  (void)loop;
  return 0;
}
void pt_notify_watchdog_stop(void) {}

#endif
