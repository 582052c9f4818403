/* The Redis mirror: a journal of engine inputs plus snapshots, in Redis,
 * written by the one primary of a shard, fenced by a lease epoch.
 *
 * - The inputs that changed state and the events go into journal records,
 *   each appended by one Redis Function call (pintuan_append) that checks
 *   the caller's lease epoch: a record per loop turn, sent at the turn's
 *   end; several in flight (max_inflight), acknowledged in order. While
 *   that many are in flight, later turns join one open record; a turn past
 *   256 KiB is sent in parts as it goes. In durable mode the turn's replies
 *   and events are sealed until its last record is acknowledged
 *   (pt_mirror_end_turn returns the sequence to seal with,
 *   pt_mirror_hooks.release lets them go). A turn that changed nothing
 *   costs Redis nothing.
 * - Daemons given the same Redis and shard elect a primary with a lease key
 *   (epoch that only grows). A standby answers NOT_LEADER with the primary's
 *   address and takes the lease when it lapses. Whoever becomes primary
 *   rebuilds from Redis (snapshot + journal replayed through the engine)
 *   before serving.
 * - Crash-only on doubt: a lost connection with records unacknowledged, a
 *   refused append, a lost lease: stop acknowledging, drop what was held,
 *   and rebuild from Redis through the same path a standby takes over with.
 * - Snapshots are written by a forked child from the copy-on-write image
 *   (the loop never stalls); committing one trims the journal before it.
 * Files: mirror.c (connection, lease, appends), recovery.c (rebuilding),
 * snapshot.c (the child), functions.c (the Lua library), redis_uv.c. */
#ifndef PT_MIRROR_H
#define PT_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "addr.h"
#include "engine.h"
#include "histo.h"
#include "input.h"

typedef enum pt_mirror_mode {
  PT_MIRROR_OFF = 0,     /* memory-only */
  PT_MIRROR_ASYNC = 1,   /* replies leave before Redis acknowledged */
  PT_MIRROR_DURABLE = 2, /* replies wait for the acknowledgement */
} pt_mirror_mode;

typedef enum pt_role {
  PT_ROLE_CONNECTING = 1, /* no Redis yet */
  PT_ROLE_STANDBY,        /* another daemon holds the lease */
  PT_ROLE_RECOVERING,     /* lease held, rebuilding from Redis */
  PT_ROLE_PRIMARY,        /* serving */
  PT_ROLE_UNAVAILABLE,    /* was primary, lost Redis: reconnecting to rebuild */
  PT_ROLE_FAILED,         /* the journal does not replay as recorded: needs an operator */
  PT_ROLE_REFUSED,        /* Redis holds less than this daemon knew was acknowledged (or
                           * another shard): needs an operator (pintuand --accept-loss) */
} pt_role;

typedef struct pt_mirror_config {
  pt_addr redis;                 /* numeric host (hiredis does not resolve) */
  char redis_user[64], redis_password[256];
  char shard[64], node_id[64];
  char advertise[PT_HOST_MAX + 8]; /* HOST:PORT clients reach this daemon at */
  pt_mirror_mode mode;
  int64_t lease_ms;             /* the lease's time to live; renewed every third */
  unsigned max_inflight;        /* records sent and not yet acknowledged */
  size_t max_backlog;           /* bytes of records waiting to be sent: past it, OVERLOADED */
  size_t snapshot_after;        /* journal bytes since the last snapshot that start one, */
  size_t snapshot_chunk;        /* bytes of state per chunk key (before compression) */
  bool snapshot_compress;       /* each chunk one zstd frame (recovery reads either) */
  unsigned snapshot_growth;     /* if also this % of the last snapshot's size: a big state
                                 * is not rewritten whole every snapshot_after bytes */
  uint64_t events_maxlen;       /* the events stream's cap (XADD MAXLEN ~) */
  char state_file[4096];        /* what this daemon knew of its shard, across restarts; "": none */
  bool follow;                  /* a standby follows the journal (stale reads, faster takeovers) */
  pt_engine_config engine;      /* for the engines recovery builds (its sink included) */
} pt_mirror_config;

typedef struct pt_mirror_hooks {
  /* Recovery built this engine: serve from it (the old one is the caller's
   * to free). */
  void (*became_primary)(void *ctx, pt_engine *e);
  /* Stop acknowledging: every held reply's fate is unknown (close those
   * connections); mutations are refused until primary again. */
  void (*stepped_down)(void *ctx, const char *why);
  /* Replies sealed up to seq may leave. */
  void (*release)(void *ctx, uint64_t seq);
  /* The engine served now (snapshots are taken of it). */
  pt_engine *(*engine)(void *ctx);
  void *ctx;
} pt_mirror_hooks;

typedef struct pt_mirror_stats {
  uint64_t appended, acked, bytes, turns_held, parts, reconnects, snapshots, snapshot_failures,
      recoveries, recovered_inputs, step_downs, epoch, last_seq, acked_seq, inflight, backlog_bytes;
  uint64_t appends_refused; /* appends Redis refused (FENCED, SEQ): each one a doubt or after one */
  uint64_t refusals;        /* times the shard was refused (Redis holds less than was known) */
  uint64_t lease_waits;     /* times the lease ended by our clock before a renewal came back */
  uint64_t known_seq, known_epoch; /* the highest journal record and epoch this daemon saw */
  uint64_t follow_seq;      /* a standby: the last record its follower applied (0: none) */
  int64_t follow_age_ms;    /* ... and since when it found nothing newer (-1: no follower) */
  int64_t last_recovery_ms;
  int64_t lag_us;       /* age of the oldest record Redis has not acknowledged; 0: none */
  pt_histo append_us;   /* a record's round trip: sent to acknowledged */
  pt_histo batch;       /* state-changing requests per journal record */
} pt_mirror_stats;

typedef struct pt_mirror pt_mirror;

pt_mirror *pt_mirror_start(uv_loop_t *loop, const pt_mirror_config *cfg,
                           const pt_mirror_hooks *hooks);
/* Releases the lease (a standby takes over at once), lets in-flight
 * records be acknowledged, disconnects; done(arg) once everything is closed. */
void pt_mirror_stop(pt_mirror *m, void (*done)(void *arg), void *arg);

/* The turn: every input that changed state, and every event. */
void pt_mirror_record(pt_mirror *m, const pt_input *in, const pt_result *r);
void pt_mirror_event(pt_mirror *m, const pt_event *ev);
/* Ends the turn: its record (if any) goes to Redis. Returns the sequence
 * the turn's output must be sealed with (0: nothing to wait for). */
uint64_t pt_mirror_end_turn(pt_mirror *m);

pt_role pt_mirror_role(const pt_mirror *m);
const char *pt_role_name(pt_role r);
/* May a request (a mutation, or a read) be answered now? Only by the
 * primary, while its lease is surely held by its own clock (a margin for
 * drift taken off), and a mutation only while the backlog toward Redis has
 * room. NULL if so, else why not, with the status to answer: NOT_LEADER
 * with the primary's address when another daemon is known to be it, else
 * UNAVAILABLE (or OVERLOADED). */
const char *pt_mirror_refuses(pt_mirror *m, bool mutation, pt_status *st, const char **leader);
/* Are more than a few records (1 MiB, or half of max_backlog if less)
 * waiting for Redis? Then work that can wait (due items: a mass expiry's
 * events) should, so that Redis' pace bounds it as it bounds the clients'
 * mutations, and the lease's renewal is not queued behind it. */
bool pt_mirror_backlogged(const pt_mirror *m);
/* The primary's address as the lease says, "" when unknown. */
const char *pt_mirror_leader(const pt_mirror *m);
/* The id tag of the shard's incarnation (pt_engine_set_id_key): an engine
 * whose ids were not sealed for it gets a new era before it serves. 0 while
 * the incarnation is not known. */
uint64_t pt_mirror_id_tag(const pt_mirror *m);
/* A standby's copy of the shard for reads that accept staleness
 * (GetCampaign, GetReservation with stale_ok): the engine it followed the
 * journal into, the last record applied and its epoch, and how long ago
 * it last found nothing newer in Redis. NULL when there is none (the
 * primary answers such reads as any other, fresh). */
typedef struct pt_staleness {
  uint64_t record, epoch;
  int64_t age_ms;
} pt_staleness;
pt_engine *pt_mirror_stale(pt_mirror *m, pt_staleness *out);
/* Why the shard is refused (PT_ROLE_REFUSED), in a word: NOSHARD, GONE,
 * IDENTITY, EPOCH, SEQ; "" when it is not. */
const char *pt_mirror_refusal(const pt_mirror *m);
void pt_mirror_stats_get(const pt_mirror *m, pt_mirror_stats *out);

pt_mirror_mode pt_mirror_mode_parse(const char *s); /* -1 if unknown */
const char *pt_mirror_mode_name(pt_mirror_mode mode);

#endif
