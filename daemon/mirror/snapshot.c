/* Snapshots without stalling the loop, as Redis' bgsave does: a forked
 * child writes the engine's copy-on-write image to Redis (chunks of 16 MiB
 * under pintuan:{SHARD}:snap:EPOCH.SEQ:N) over its own blocking connection,
 * then commits it with pintuan_snapshot_commit, fenced by the lease epoch:
 * the description switches to the new chunks and the journal up to SEQ is
 * trimmed in one step; the previous chunks are unlinked after. The parent
 * keeps serving; the tick reaps the child. The snapshot covers every input
 * up to the record SEQ (the turn that started it). */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "mirror_int.h"

#define CHUNK (16u << 20)

typedef struct writer {
  redisContext *c;
  char prefix[KEY_MAX];
  unsigned chunks;
  uint8_t *buf;
  size_t len, total;
  uint64_t sum;
} writer;

static int put_chunk(writer *w) {
  char key[KEY_MAX + 16];
  snprintf(key, sizeof key, "%s:%u", w->prefix, w->chunks);
  redisReply *r = redisCommand(w->c, "SET %s %b", key, w->buf, w->len);
  int ok = r && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  if (!ok) return -1;
  w->chunks++;
  w->total += w->len;
  w->sum = snap_sum_add(w->sum, w->buf, w->len);
  w->len = 0;
  return 0;
}

static int write_cb(void *ctx, const void *p, size_t n) {
  writer *w = ctx;
  const uint8_t *b = p;
  while (n) {
    size_t take = CHUNK - w->len < n ? CHUNK - w->len : n;
    memcpy(w->buf + w->len, b, take);
    w->len += take, b += take, n -= take;
    if (w->len == CHUNK && put_chunk(w)) return -1;
  }
  return 0;
}

/* The child's whole life: 0 committed, 2 fenced, 1 failed. */
static int child_main(pt_mirror *m, pt_engine *e, uint64_t seq) {
  struct timeval tv = {30, 0};
  writer w = {.buf = malloc(CHUNK)};
  w.c = redisConnectWithTimeout(m->cfg.redis.host, m->cfg.redis.port, tv);
  if (!w.buf || !w.c || w.c->err) return 1;
  if (m->cfg.redis_password[0]) {
    redisReply *r = m->cfg.redis_user[0]
                        ? redisCommand(w.c, "AUTH %s %s", m->cfg.redis_user, m->cfg.redis_password)
                        : redisCommand(w.c, "AUTH %s", m->cfg.redis_password);
    if (!r || r->type == REDIS_REPLY_ERROR) return 1;
    freeReplyObject(r);
  }
  snprintf(w.prefix, sizeof w.prefix, "pintuan:{%s}:snap:%" PRIu64 ".%" PRIu64, m->cfg.shard,
           m->epoch, seq);
  if (pt_engine_snapshot(e, write_cb, &w) || (w.len && put_chunk(&w))) return 1;
  redisReply *r = redisCommand(w.c, "FCALL pintuan_snapshot_commit 3 %s %s %s %s %s %" PRIu64
                                    " %u %llu %d %s %" PRIu64,
                               m->key_lease, m->key_snapshot, m->key_journal, m->cfg.node_id,
                               m->epoch_s, seq, w.chunks, (unsigned long long)w.total, PT_SNAPSHOT_FORMAT, w.prefix,
                               w.sum);
  if (!r) return 1;
  int rc = 0;
  if (r->type == REDIS_REPLY_ERROR) {
    rc = strncmp(r->str, "FENCED", 6) == 0 ? 2 : 1;
  } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, w.prefix)) {
    unsigned old = (unsigned)strtoul(r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "0",
                                     NULL, 10);
    for (unsigned i = 0; i < old; i++) { /* the previous snapshot's chunks */
      redisReply *u = redisCommand(w.c, "UNLINK %s:%u", r->element[0]->str, i);
      if (u) freeReplyObject(u);
    }
  }
  freeReplyObject(r);
  return rc;
}

void snapshot_maybe_start(pt_mirror *m) {
  if (m->child > 0 || !m->cfg.snapshot_after || m->since_snapshot < m->cfg.snapshot_after) return;
  pt_engine *e = m->hooks.engine ? m->hooks.engine(m->hooks.ctx) : NULL;
  if (!e) return;
  uint64_t seq = m->last_seq;
  pid_t pid = fork();
  if (pid < 0) {
    pt_warn("mirror: cannot fork for a snapshot: %s", strerror(errno));
    return;
  }
  if (pid == 0) _exit(child_main(m, e, seq)); /* no atexit, no stdio flush of the parent's */
  m->child = pid;
  m->child_seq = seq;
  m->since_snapshot = 0;
  pt_info("mirror snapshot started seq=%" PRIu64 " pid=%d", seq, (int)pid);
}

void snapshot_reap(pt_mirror *m) {
  if (m->child <= 0) return;
  int st;
  pid_t p = waitpid(m->child, &st, WNOHANG);
  if (p == 0) return;
  m->child = 0;
  if (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    m->st.snapshots++;
    pt_info("mirror snapshot committed seq=%" PRIu64 " (journal trimmed before it)", m->child_seq);
  } else {
    m->st.snapshot_failures++;
    pt_warn("mirror snapshot of seq=%" PRIu64 " failed (%s); another is tried later", m->child_seq,
            p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2 ? "fenced: the lease moved" : "see Redis");
  }
}
