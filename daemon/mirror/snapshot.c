/* Snapshots without stalling the loop, as Redis' bgsave does: a forked
 * child writes the engine's copy-on-write image to Redis (chunks of
 * snapshot_chunk bytes, each compressed on its own as one zstd frame
 * unless compression is off, under pintuan:{SHARD}:snap:EPOCH.SEQ:N) over
 * its own blocking connection,
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "clock.h"
#include "log.h"
#include "mirror_int.h"

/* zstd's fastest regular level: 1M live holds' state compresses ~3.8x
 * (ids and counters) in no more of the child's time than copying it took,
 * and Redis, which reads, appends to its AOF and keeps every byte on one
 * thread while the journal's appends wait behind, gets a quarter of it. */
#define ZSTD_LEVEL 1

/* How long a commit waits for the journal to reach the snapshot's record
 * (acknowledged in milliseconds unless the primary lost Redis, when the
 * snapshot is dropped and another is taken later). */
#define BEHIND_TRIES 50
#define BEHIND_WAIT_US 100000

typedef struct writer {
  redisContext *c;
  char prefix[KEY_MAX];
  unsigned chunks;
  uint8_t *buf;     /* the chunk being filled: the engine's bytes */
  size_t cap, len;
  size_t total;     /* bytes stored (compressed) */
  size_t raw;       /* the engine's bytes */
  uint64_t sum;     /* of the bytes stored */
  int unanswered;   /* a chunk's reply is still to read */
  ZSTD_CCtx *z;     /* NULL: chunks stored as they are */
  uint8_t *zbuf;
  size_t zcap;
} writer;

/* Writes all of iov to the blocking socket (its send timeout bounds a stall). */
static int write_all(int fd, struct iovec *iov, int n) {
  while (n) {
    ssize_t k = writev(fd, iov, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    while (n && (size_t)k >= iov->iov_len) k -= (ssize_t)iov->iov_len, iov++, n--;
    if (n) iov->iov_base = (char *)iov->iov_base + k, iov->iov_len -= (size_t)k;
  }
  return 0;
}

/* The reply to the chunk before: chunks are pipelined one deep, so Redis
 * stores one while the next is filled. */
static int await_chunk_reply(writer *w) {
  if (!w->unanswered) return 0;
  w->unanswered = 0;
  void *rep = NULL;
  if (redisGetReply(w->c, &rep) != REDIS_OK || !rep) return -1;
  redisReply *r = rep;
  int ok = r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  return ok ? 0 : -1;
}

/* SET PREFIX:N chunk, written from the chunk's buffer as it is: hiredis
 * would format the command into a new allocation and copy that again into
 * its output buffer, two copies (and fresh pages to fault in) per byte of
 * the state, which at a million holds cost the child most of its CPU. */
static int put_chunk(writer *w) {
  if (await_chunk_reply(w)) return -1;
  const uint8_t *out = w->buf;
  size_t n = w->len;
  if (w->z) {
    n = ZSTD_compressCCtx(w->z, w->zbuf, w->zcap, w->buf, w->len, ZSTD_LEVEL);
    if (ZSTD_isError(n)) return -1;
    out = w->zbuf;
  }
  char key[KEY_MAX + 16], head[KEY_MAX + 64];
  int kn = snprintf(key, sizeof key, "%s:%u", w->prefix, w->chunks);
  int hn = snprintf(head, sizeof head, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%zu\r\n", kn, key, n);
  struct iovec iov[3] = {{head, (size_t)hn}, {(void *)out, n}, {(char *)"\r\n", 2}};
  if (write_all(w->c->fd, iov, 3)) return -1;
  w->unanswered = 1;
  w->chunks++;
  w->total += n;
  w->raw += w->len;
  w->sum = snap_sum_add(w->sum, out, n);
  w->len = 0;
  return 0;
}

static int write_cb(void *ctx, const void *p, size_t n) {
  writer *w = ctx;
  const uint8_t *b = p;
  while (n) {
    size_t take = w->cap - w->len < n ? w->cap - w->len : n;
    memcpy(w->buf + w->len, b, take);
    w->len += take, b += take, n -= take;
    if (w->len == w->cap && put_chunk(w)) return -1;
  }
  return 0;
}

/* The child's whole life: 0 committed, 2 fenced, 3 the journal never
 * reached its record, 1 failed. */
static int child_main(pt_mirror *m, pt_engine *e, uint64_t seq) {
  int64_t t0 = pt_mono_ns();
  struct timeval tv = {30, 0};
  writer w = {.cap = m->cfg.snapshot_chunk};
  w.buf = malloc(w.cap);
  if (!w.buf) return 1;
  if (m->cfg.snapshot_compress) {
    w.z = ZSTD_createCCtx();
    w.zcap = ZSTD_compressBound(w.cap);
    w.zbuf = malloc(w.zcap);
    if (!w.z || !w.zbuf) return 1;
  }
  w.c = redisConnectWithTimeout(m->cfg.redis.host, m->cfg.redis.port, tv);
  if (!w.c || w.c->err || redisSetTimeout(w.c, tv) != REDIS_OK) return 1; /* sends and replies too */
  if (m->cfg.redis_password[0]) {
    redisReply *r = m->cfg.redis_user[0]
                        ? redisCommand(w.c, "AUTH %s %s", m->cfg.redis_user, m->cfg.redis_password)
                        : redisCommand(w.c, "AUTH %s", m->cfg.redis_password);
    if (!r || r->type == REDIS_REPLY_ERROR) return 1;
    freeReplyObject(r);
  }
  snprintf(w.prefix, sizeof w.prefix, "pintuan:{%s}:snap:%" PRIu64 ".%" PRIu64, m->cfg.shard,
           m->epoch, seq);
  if (pt_engine_snapshot(e, write_cb, &w) || (w.len && put_chunk(&w)) || await_chunk_reply(&w)) return 1;
  redisReply *r = NULL;
  for (int tries = 0;; tries++) { /* the records before the fork may still be on their way */
    r = redisCommand(w.c, "FCALL pintuan_snapshot_commit 4 %s %s %s %s %s %s %" PRIu64 " %u %llu %d %s %" PRIu64,
                     m->key_lease, m->key_snapshot, m->key_journal, m->key_seq, m->cfg.node_id, m->epoch_s,
                     seq, w.chunks, (unsigned long long)w.total, PT_SNAPSHOT_FORMAT, w.prefix, w.sum);
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BEHIND", 6) || tries == BEHIND_TRIES) break;
    freeReplyObject(r);
    usleep(BEHIND_WAIT_US);
  }
  if (!r) return 1;
  int rc = 0;
  if (r->type == REDIS_REPLY_ERROR) {
    rc = !strncmp(r->str, "FENCED", 6) ? 2 : !strncmp(r->str, "BEHIND", 6) ? 3 : 1;
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
  if (rc == 0) { /* read once we are reaped */
    m->child_info[0] = w.raw, m->child_info[1] = w.total;
    m->child_info[2] = (uint64_t)(pt_mono_ns() - t0) / 1000000;
  }
  return rc;
}

/* Due when the journal since the last snapshot passed snapshot_after bytes
 * and snapshot_growth % of that snapshot's state (its bytes before
 * compression: what a snapshot costs to take and a recovery to load follow
 * the state, not what Redis stores). The second bound keeps a
 * big state from being rewritten whole every snapshot_after bytes: at a
 * million reservations a second the state grows as fast as the journal,
 * and snapshots of a fixed period would cost more with every one (a 25 s
 * stampede spent most of the child's time rewriting). The journal a
 * recovery replays stays within both bounds. */
static bool snapshot_due(const pt_mirror *m) {
  return m->cfg.snapshot_after && m->since_snapshot >= m->cfg.snapshot_after &&
         m->since_snapshot * 100.0 >= (double)m->snap_bytes * m->cfg.snapshot_growth;
}

void snapshot_maybe_start(pt_mirror *m) {
  if (m->child > 0 || !snapshot_due(m)) return;
  pt_engine *e = m->hooks.engine ? m->hooks.engine(m->hooks.ctx) : NULL;
  if (!e) return;
  if (!m->child_info) {
    void *page = mmap(NULL, CHILD_INFO * sizeof *m->child_info, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
      pt_warn("mirror: cannot map a page for the snapshot child: %s", strerror(errno));
      return;
    }
    m->child_info = page;
  }
  memset(m->child_info, 0, CHILD_INFO * sizeof *m->child_info);
  uint64_t seq = m->last_seq;
  int64_t t0 = pt_mono_ns();
  pid_t parent = getpid(), pid = fork();
  if (pid < 0) {
    pt_warn("mirror: cannot fork for a snapshot: %s", strerror(errno));
    return;
  }
  if (pid == 0) {
    /* The snapshot is its primary's: orphaned, it would only compete with
     * the standby's recovery for Redis and the CPU. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent) _exit(1);
    _exit(child_main(m, e, seq)); /* no atexit, no stdio flush of the parent's */
  }
  m->child = pid;
  m->child_seq = seq;
  /* the loop stood still for the fork (page tables copied), as Redis'
   * latest_fork_usec reports */
  pt_info("mirror snapshot started seq=%" PRIu64 " pid=%d journal=%zu last=%" PRIu64 " fork_ms=%.1f", seq,
          (int)pid, m->since_snapshot, m->snap_bytes, (double)(pt_mono_ns() - t0) / 1e6);
  m->since_snapshot = 0;
}

void snapshot_reap(pt_mirror *m) {
  if (m->child <= 0) return;
  int st;
  pid_t p = waitpid(m->child, &st, WNOHANG);
  if (p == 0) return;
  m->child = 0;
  if (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    m->st.snapshots++;
    m->snap_bytes = m->child_info[0];
    pt_info("mirror snapshot committed seq=%" PRIu64 " state=%" PRIu64 " stored=%" PRIu64 " ms=%" PRIu64
            " (journal trimmed before it)", m->child_seq, m->child_info[0], m->child_info[1], m->child_info[2]);
  } else {
    m->st.snapshot_failures++;
    int code = p > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    pt_warn("mirror snapshot of seq=%" PRIu64 " failed (%s); another is tried later", m->child_seq,
            code == 2   ? "fenced: the lease moved"
            : code == 3 ? "the journal never reached its record"
                        : "see Redis");
  }
}
