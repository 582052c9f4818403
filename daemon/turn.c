#include "turn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

int pt_read_test_clock(const char *path, int64_t *ms, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "test clock %s: %s", path, strerror(errno));
    return -1;
  }
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int e = errno;
  close(fd);
  if (n < 0) {
    snprintf(err, errlen, "test clock %s: %s", path, strerror(e));
    return -1;
  }
  buf[n] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
  if (errno || end == buf || *end || v < 0) {
    snprintf(err, errlen, "test clock %s: want epoch milliseconds, found \"%.20s\"", path, buf);
    return -1;
  }
  *ms = v;
  return 0;
}

int64_t pt_turn_clock(pt_turn *t) {
  int64_t now;
  if (t->test_clock) {
    /* A testing aid: the file is rewritten (atomically, by rename) by the
     * test that owns the daemon; unreadable, the clock stands still. */
    char err[160];
    if (pt_read_test_clock(t->test_clock, &now, err, sizeof err)) {
      pt_warn("%s", err);
      now = t->last;
    }
  } else {
    now = pt_wall_ms();
  }
  if (now < t->last) now = t->last; /* the wall clock stepped back */
  t->last = now;
  return now;
}

static void apply(pt_turn *t, const pt_input *in, pt_result *r) {
  uint64_t before = pt_engine_changes(t->engine);
  pt_input_apply(t->engine, in, r);
  bool setting = pt_input_is_setting(in->kind);
  bool left = in->kind == PT_IN_ADVANCE && pt_engine_next_deadline(t->engine) <= in->now;
  bool changed = setting || left || pt_engine_changes(t->engine) != before;
  t->deferred += left;
  if (t->record && changed) t->record(t->record_ctx, in, r);
  if (t->trace && (changed || in->kind != PT_IN_ADVANCE)) t->trace(t->trace_ctx, in, r);
}

int64_t pt_turn_now(pt_turn *t) {
  if (t->now) return t->now;
  t->now = pt_turn_clock(t);
  if (!t->frozen)
    apply(t, &(pt_input){.kind = PT_IN_ADVANCE, .now = t->now, .value = t->due_budget}, NULL);
  return t->now;
}

void pt_turn_apply(pt_turn *t, pt_input *in, pt_result *r) {
  in->now = pt_turn_now(t);
  apply(t, in, r);
}

int64_t pt_turn_end(pt_turn *t) {
  int64_t now = pt_turn_now(t);
  t->now = 0;
  return now;
}
