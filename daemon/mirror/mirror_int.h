/* Internals shared by the mirror's files; nothing outside daemon/mirror/
 * includes this. */
#ifndef PT_MIRROR_INT_H
#define PT_MIRROR_INT_H

#include <hiredis/async.h>
#include <msgpack.h>
#include <sys/types.h>

#include "capture.h"
#include "mirror.h"
#include "record.h"
#include "shard.h"

#define KEY_MAX 160

/* A snapshot's checksum, chunk by chunk as it goes to Redis and comes back
 * (the "sum" of its description): storage that lost or changed a byte is
 * refused on recovery instead of restored. */
static inline uint64_t snap_sum_add(uint64_t sum, const void *chunk, size_t n) {
  return (sum ^ pt_cap_checksum(chunk, n)) * 0x100000001b3ull + n;
}
#define RECORD_PART_BYTES (256 * 1024) /* a turn's record past this goes to Redis in parts */
#define EVENT_FIELDS 11
#define CHILD_INFO 3     /* words the snapshot child reports back (mirror.child_info) */

/* A record handed to hiredis and not yet acknowledged. */
typedef struct flying {
  size_t bytes;
  int64_t made_ns, sent_ns;
} flying;

typedef struct recovery recovery;

/* A standby's copy of the shard (recovery.c): the journal followed into an
 * engine of its own, so stale reads can be answered and a takeover reads
 * only what came after it. */
typedef struct pt_follower {
  pt_engine *engine;       /* NULL: none yet */
  uint64_t seq, epoch;     /* the last record applied, and its epoch */
  int64_t caught_up_ms;    /* loop time it last found nothing more in Redis */
  char incarnation[40];    /* of the shard it was built from */
  uint64_t snap_bytes, journal_bytes; /* its snapshot's state and the journal since */
  int64_t rebuilt_ms;      /* loop time its last read of a whole snapshot began (kept across drops) */
} pt_follower;

struct pt_mirror {
  uv_loop_t *loop;
  pt_mirror_config cfg;
  pt_mirror_hooks hooks;
  redisAsyncContext *ac; /* NULL when not connected */
  bool ready;            /* connected, authenticated, functions loaded */
  unsigned libs_ok;      /* function libraries loaded (or found: a user that may not load them) */
  pt_role role;
  uint64_t epoch;        /* the lease epoch held (primary, recovering) */
  char leader[PT_HOST_MAX + 8];
  char key_lease[KEY_MAX], key_epoch[KEY_MAX], key_journal[KEY_MAX], key_seq[KEY_MAX],
      key_events[KEY_MAX], key_snapshot[KEY_MAX], key_shard[KEY_MAX];
  /* what this daemon knows of its shard (shard.h): Redis holding less is
   * refused; kept in cfg.state_file when one is set */
  pt_shard_known known;
  char adopt_id[40];    /* the id a shard kept before identities gets */
  pt_shard_known saved; /* as last written to the state file */
  bool saving;          /* a write on the thread pool */
  uv_work_t save_work;
  pt_shard_known to_save;
  int save_errno;
  char epoch_s[24];
  uv_timer_t tick; /* lease renewal or acquisition, reconnects, the snapshot child */
  uv_timer_t lease_end; /* when the lease may end by our clock, unless renewed before */
  int64_t backoff_ms;
  int64_t next_connect_ms;  /* loop time */
  int64_t lease_ok_until;   /* loop time the lease is surely ours until (a margin for
                             * drift taken off): nothing is answered after it */
  bool renew_pending, acquire_pending;
  bool lease_waiting; /* past the lease's end by our clock, a renewal awaited (the grace) */
  int64_t lease_wait_since;
  /* The open record: inputs and events of the turns not yet sent. It is
   * sent at a turn's end, or when an acknowledgement frees a slot in
   * flight; while max_inflight records are in flight, later turns join it,
   * so a busy Redis gets fewer, larger appends. */
  msgpack_sbuffer rec; /* PT_RECORD_HEAD bytes for the header, then the inputs */
  msgpack_packer pk;
  unsigned rec_inputs;
  unsigned turn_mark; /* rec_inputs + nev at the last turn's end */
  char *ev; /* its event fields: EVENT_FIELDS NUL-terminated strings each */
  size_t evlen, evcap;
  size_t *evsz; /* their lengths */
  unsigned nev, evszcap;
  uint64_t open_seq; /* its sequence once a turn ended with it; 0: none yet */
  int64_t open_ns;   /* monotonic: when that turn ended */
  const char **argv; /* the FCALL's arguments, pointing into the record */
  size_t *argvlen;
  size_t argcap;
  /* records handed to hiredis and not acknowledged, oldest first (Redis
   * answers in order), and the sum of their sizes */
  flying *flight;
  size_t flight_head, inflight_bytes;
  bool backlog_full; /* open record + in flight past max_backlog: logged once until it drains */
  uint64_t last_seq;  /* the last sequence given to a record */
  uint64_t acked_seq; /* every record up to it is in Redis */
  unsigned inflight;
  /* snapshots */
  pid_t child;
  uint64_t child_seq;
  size_t since_snapshot; /* journal bytes appended since the last snapshot */
  uint64_t snap_bytes;   /* the last snapshot's state bytes (written, or loaded by recovery) */
  uint64_t *child_info;  /* CHILD_INFO words shared with the child: the state bytes it
                          * wrote, the bytes stored, its milliseconds */
  recovery *rec_state;   /* while rebuilding */
  recovery *follow_rec;  /* while the follower reads */
  pt_follower follower;
  uint64_t refused_logged; /* st.appends_refused at the last doubt: one line per episode */
  char refusal[400];       /* PT_ROLE_REFUSED: why, as answered and shown by /ready */
  char refusal_code[16];   /* its reason in a word: NOSHARD, GONE, IDENTITY, EPOCH, SEQ */
  bool stopping;
  unsigned closing; /* handles stop() waits for */
  void (*done)(void *);
  void *done_arg;
  pt_mirror_stats st;
};

/* mirror.c */
/* Something is in doubt: stop acknowledging. fenced: another primary holds
 * the lease (become a standby); else rebuild once Redis answers. */
void mirror_doubt(pt_mirror *m, const char *why, bool fenced);
int64_t mirror_now(const pt_mirror *m);
/* Is the lease surely still ours, by our own clock with a margin? */
bool mirror_lease_held(pt_mirror *m);

/* Redis holds less than this daemon knew (code: the reason in a word; why:
 * the whole of it): stop serving, say so, try again each tick (an operator
 * may accept the loss, or bring the right Redis back). */
void mirror_refuse(pt_mirror *m, const char *code, const char *why);
/* Writes the state file if what is known changed (off the loop). */
void mirror_save_known(pt_mirror *m);
/* One of the things pt_mirror_stop waits for is done. */
void mirror_closed_one(pt_mirror *m);

/* recovery.c */
void recovery_start(pt_mirror *m);
void recovery_abort(pt_mirror *m);
/* A standby follows the journal: from the snapshot (rebuild, or when it has
 * no engine yet), else the records since its engine's. */
void follow_start(pt_mirror *m, bool rebuild);
void follow_abort(pt_mirror *m);
/* No follower any more (another incarnation, a failed follow, a stop). */
void follow_drop(pt_mirror *m);

/* snapshot.c */
void snapshot_maybe_start(pt_mirror *m);
void snapshot_reap(pt_mirror *m);

#endif
