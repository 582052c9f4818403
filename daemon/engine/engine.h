/* The pintuan engine: campaigns, stock, holds, waitlists, idempotency and
 * timers, in memory, with no I/O.
 *
 * Contract:
 * - Time is a parameter (`now`, Unix ms). Callers must never pass a `now`
 *   smaller than an earlier one; the engine clamps it if they do. Nor one
 *   past PT_TIME_MAX: deadlines are now plus up to a week, which must not
 *   overflow (inputs read back from bytes are refused past it, input.h).
 * - Every call is O(1) expected (hash lookups, intrusive FIFO queues), except
 *   pt_engine_advance, which is O(work due) + O(log campaigns) per campaign
 *   touched. No call allocates on the steady-state hot path once pools and
 *   tables have grown.
 * - Invariant, at every return: available + held + sold == stock for every
 *   campaign, and no user holds more than the per-user limit.
 * - Effects leave through pt_sink: a mutation names each entity whose stored
 *   state changed (for the mirror), an event is an outcome storefronts act on.
 *   Sinks are called synchronously and must not call back into the engine.
 * - Strings in results point into engine memory and stay valid until the
 *   next mutating call.
 * - Errors, one policy for the engine and the daemon around it: bad input
 *   is an answer (a status, with nothing changed), never an abort; running
 *   out of memory is fatal (pt_xmalloc/pt_fatal abort, like Redis'
 *   zmalloc), because a half-applied decision is worse than a restart from
 *   the mirror, and a dropped event or reply is a silent lie. I/O errors
 *   belong to the adapters, which report them with a status or a log line.
 * - Idempotency: an answer that had an effect (OK, or WAITLISTED for a
 *   reserve) is remembered by (campaign, request id) for the window, at
 *   most max_remembered of them (oldest evicted first, counted); a retry
 *   gets it back marked replay. Answers that changed nothing are not
 *   remembered: a retry is decided afresh.
 */
#ifndef PT_ENGINE_H
#define PT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The engine is built with -fvisibility=hidden: what this header declares
 * is its whole exported API. */
#pragma GCC visibility push(default)

#define PT_ID_MAX 64               /* longest campaign/user/request id */
#define PT_NEVER INT64_MAX         /* "no deadline" */
#define PT_TIME_MAX (INT64_C(1) << 53) /* latest `now`: ~285,000 years after 1970 */

/* Values match pintuan.v1.Status on the wire. */
typedef enum pt_status {
  PT_OK = 1,
  PT_NOT_STARTED = 2,
  PT_ENDED = 3,
  PT_SOLD_OUT = 4,
  PT_WAITLISTED = 5,
  PT_LIMIT_EXCEEDED = 6,
  PT_GROUP_FULL = 7,
  PT_GROUP_CLOSED = 8,
  PT_ALREADY_MEMBER = 9,
  PT_NOT_FOUND = 10,
  PT_INVALID_ARGUMENT = 11,
  PT_UNAUTHENTICATED = 12,
  PT_NOT_LEADER = 13,
  PT_UNAVAILABLE = 14,
  PT_OVERLOADED = 15,
  PT_EXPIRED = 16,
  PT_CONFLICT = 17,
  PT_ALREADY_EXISTS = 18,
  PT_NOT_NEW_USER = 19,
  PT_INTERNAL = 20,
  PT_PERMISSION_DENIED = 21,
  PT_RATE_LIMITED = 22,
  PT_RESOURCE_EXHAUSTED = 23,
} pt_status;

typedef enum pt_kind { PT_FLASH_SALE = 1, PT_GROUP_BUY = 2 } pt_kind;

/* Values match pintuan.v1.HoldState. */
typedef enum pt_hold_state {
  PT_HOLD_FREE = 0, /* internal: slot unused */
  PT_HELD = 1,
  PT_SOLD = 2,
  PT_RELEASED = 3,
  PT_EXPIRED_HOLD = 4,
  PT_WAITING = 5,
  PT_PAID = 6,         /* group seat paid, group not complete yet */
  PT_SEAT_FAILED = 7,  /* seat of a group that failed: refund it if paid */
} pt_hold_state;

/* Values match pintuan.v1.GroupState. */
typedef enum pt_group_state {
  PT_GS_OPEN = 1,      /* taking members */
  PT_GS_COMPLETED = 2, /* 成团: every seat paid (or simulated) */
  PT_GS_FAILED = 3,    /* deadline passed incomplete: units returned */
  PT_GS_CLOSED = 4,    /* its last member left */
} pt_group_state;

/* Values match pintuan.v1.JoinMode. */
typedef enum pt_join_mode {
  PT_JOIN_OPEN = 1,  /* open a new group as its leader (团长) */
  PT_JOIN_GROUP = 2, /* join the given group (the shared link) */
  PT_JOIN_AUTO = 3,  /* 凑团: the best open group, or a new one */
} pt_join_mode;

#define PT_GROUP_MAX 64 /* largest group size */

typedef struct pt_bytes {
  const uint8_t *p;
  size_t len;
} pt_bytes;

typedef struct pt_engine pt_engine;
typedef struct pt_campaign pt_campaign;

typedef struct pt_campaign_spec {
  pt_bytes id;
  pt_kind kind;
  int64_t start_ms;        /* 0: already started */
  int64_t end_ms;          /* 0: never ends */
  int64_t stock;           /* >= 0 */
  uint32_t per_user_limit; /* 0: unlimited */
  int64_t hold_ms;         /* payment window, > 0 */
  bool waitlist;           /* flash sale only */
  /* group buy only */
  uint32_t group_size;       /* N, 2..PT_GROUP_MAX */
  int64_t group_ttl_ms;      /* a group's deadline is its opening + this */
  bool new_users_only;       /* 老带新: joiners (not leaders) must be new */
  uint32_t simulate_min_paid; /* 模拟成团 at the deadline with >= M paid; 0 off */
  int64_t match_margin_ms;   /* AUTO skips groups closer than this to deadline */
} pt_campaign_spec;

enum {
  PT_UPD_STOCK = 1 << 0,
  PT_UPD_END = 1 << 1,
  PT_UPD_LIMIT = 1 << 2,
  PT_UPD_HOLD = 1 << 3,
  PT_UPD_WAITLIST = 1 << 4,
};

typedef struct pt_campaign_update {
  unsigned fields; /* PT_UPD_* that are set */
  int64_t stock, end_ms, hold_ms;
  uint32_t per_user_limit;
  bool waitlist;
} pt_campaign_changes;

typedef struct pt_campaign_info {
  pt_bytes id;
  pt_kind kind;
  int64_t start_ms, end_ms; /* end_ms == 0: never ends */
  int64_t stock, available, held, sold;
  uint32_t per_user_limit;
  int64_t hold_ms;
  bool waitlist;
  uint32_t waitlist_length;
  bool ended;
  bool retired; /* past its retention: the counters are final, nothing else is kept */
  uint32_t group_size, simulate_min_paid;
  int64_t group_ttl_ms, match_margin_ms;
  bool new_users_only;
  uint32_t open_groups;
} pt_campaign_info;

/* The answer to a request. Fields beyond status are set as the status and
 * operation make meaningful (a reservation's id, expiry, ...). */
typedef struct pt_result {
  pt_status status;
  bool replay;             /* the original answer to a retried request id */
  const char *detail;      /* static string, never NULL */
  uint64_t reservation_id;
  int64_t expires_ms;
  uint32_t quantity;
  uint32_t position;       /* waitlist position, 1-based */
  pt_hold_state state;
  uint64_t group_id;       /* group buy: the seat's group */
  pt_group_state group_state;
  bool opened;             /* join: a new group was opened */
} pt_result;

typedef struct pt_reservation_info {
  uint64_t reservation_id;
  pt_bytes campaign_id, user_id;
  uint32_t quantity;
  pt_hold_state state;
  int64_t expires_ms;
  uint64_t group_id;          /* 0 for flash-sale holds */
  pt_group_state group_state; /* the seat's group, now */
} pt_reservation_info;

typedef struct pt_member_info {
  pt_bytes user_id;
  uint64_t seat_id;
  pt_hold_state state;
  int64_t expires_ms; /* payment deadline while HELD */
} pt_member_info;

typedef struct pt_group_info {
  uint64_t group_id;
  pt_bytes campaign_id;
  pt_group_state state;
  uint32_t size, members, paid;
  int64_t opened_ms, deadline_ms;
  bool simulated;              /* completed by 模拟成团 */
  pt_member_info member[PT_GROUP_MAX]; /* join order; member[0] leads */
} pt_group_info;

typedef struct pt_holdings_info {
  uint32_t held, sold, waiting, per_user_limit;
} pt_holdings_info;

/* ---- effects ---- */

typedef enum pt_mut_kind {
  PT_MUT_CAMPAIGN = 1, /* campaign record (spec and counters) changed */
  PT_MUT_HOLD,         /* reservation_id changed state (or was forgotten) */
  PT_MUT_USER,         /* a user's counters in a campaign changed */
  PT_MUT_IDEM,         /* an idempotency record was stored (or forgotten) */
} pt_mut_kind;

typedef struct pt_mutation {
  pt_mut_kind kind;
  bool deleted;            /* the entity is gone */
  const pt_campaign *campaign;
  pt_bytes key;            /* user id or request id, as the kind says */
  uint64_t reservation_id;
} pt_mutation;

typedef enum pt_event_type {
  PT_EV_HOLD_EXPIRED = 1,
  PT_EV_WAITLIST_GRANTED = 2,
  PT_EV_WAITLIST_DROPPED = 3,
  PT_EV_GROUP_COMPLETED = 4,
  PT_EV_GROUP_FAILED = 5,
  PT_EV_SEAT_EXPIRED = 6,
} pt_event_type;

typedef struct pt_event {
  uint64_t seq; /* engine-wide, grows by one per event */
  pt_event_type type;
  int64_t at_ms;
  pt_bytes campaign_id, user_id;
  uint64_t reservation_id;
  uint32_t quantity;
  int64_t expires_ms;
  uint64_t group_id;        /* group events and seat expiry */
  bool simulated;           /* GROUP_COMPLETED by 模拟成团 */
  size_t n_members;         /* GROUP_COMPLETED / GROUP_FAILED: who sat */
  const pt_bytes *members;  /* user ids, valid during the callback */
} pt_event;

typedef struct pt_sink {
  void (*mutation)(void *ctx, const pt_mutation *m); /* may be NULL */
  void (*event)(void *ctx, const pt_event *ev);      /* may be NULL */
  void *ctx;
} pt_sink;

#define PT_DEFAULT_MAX_REMEMBERED 10000000u

/* Caps on the tables a client can grow, each refused RESOURCE_EXHAUSTED
 * (0: the default). Decisions depend on them: they change by an input. */
typedef struct pt_limits {
  uint64_t campaigns; /* live campaigns (default 10000): retired ones do not count */
  uint64_t waitlist;  /* waiting reservations of one flash sale (default 100000) */
  uint64_t users;     /* users of one campaign (default 10000000) */
  /* An ended campaign is retired this long after its end, once nothing of
   * it is live (no hold to pay, no open group): its holds, groups, users
   * and their table are freed (reservation ids then NOT_FOUND); its record
   * stays with its final counters. Default 7 days. */
  uint64_t retention_ms;
} pt_limits;
#define PT_DEFAULT_MAX_CAMPAIGNS 10000
#define PT_DEFAULT_MAX_WAITLIST 100000
#define PT_DEFAULT_MAX_USERS 10000000
#define PT_DEFAULT_RETENTION_MS (INT64_C(7) * 24 * 3600 * 1000)

typedef struct pt_engine_config {
  int64_t idem_window_ms; /* how long effects are remembered by request id */
  uint64_t max_remembered; /* hard cap on remembered effects; 0: the default */
  pt_limits limits;
  uint64_t hash_seed;     /* per-process random: hash flooding defence */
  pt_sink sink;
} pt_engine_config;

typedef struct pt_engine_stats {
  uint64_t campaigns, live_holds, waiting, idem_records, events;
  uint64_t reserves, confirms, cancels, expiries, replays;
  uint64_t joins, open_groups, groups_completed, groups_failed;
  uint64_t idem_evictions; /* remembered effects dropped by the cap, oldest first */
} pt_engine_stats;

pt_engine *pt_engine_new(const pt_engine_config *cfg);
void pt_engine_free(pt_engine *e);
void pt_engine_set_idem_window(pt_engine *e, int64_t ms);
void pt_engine_set_limits(pt_engine *e, const pt_limits *l); /* 0s: the defaults */
pt_limits pt_limits_defaulted(pt_limits l);                 /* each 0 as its default */
pt_limits pt_engine_limits(const pt_engine *e);
/* The settings in force (window, max_remembered, limits, as defaulted). */
const pt_engine_config *pt_engine_settings(const pt_engine *e);
/* Where effects go from now on (an engine rebuilt without one, say). */
void pt_engine_set_sink(pt_engine *e, const pt_sink *sink);
/* A lower cap evicts the oldest remembered effects at the next store. */
void pt_engine_set_max_remembered(pt_engine *e, uint64_t n);

/* ---- campaigns ---- */
void pt_campaign_create(pt_engine *e, int64_t now, pt_bytes request_id,
                        const pt_campaign_spec *spec, pt_result *r);
void pt_campaign_update(pt_engine *e, int64_t now, pt_bytes request_id,
                        pt_bytes campaign_id, const pt_campaign_changes *u,
                        pt_result *r);
void pt_campaign_end(pt_engine *e, int64_t now, pt_bytes request_id,
                     pt_bytes campaign_id, pt_result *r);
pt_campaign *pt_campaign_find(pt_engine *e, pt_bytes campaign_id);
void pt_campaign_info_get(const pt_engine *e, const pt_campaign *c,
                          int64_t now, pt_campaign_info *out);
size_t pt_campaign_count(const pt_engine *e);
size_t pt_campaigns_retired(const pt_engine *e); /* of those, retired (pt_limits.retention_ms) */
pt_campaign *pt_campaign_at(pt_engine *e, size_t i); /* creation order */

/* ---- flash sale ---- */
void pt_reserve(pt_engine *e, int64_t now, pt_bytes request_id,
                pt_bytes campaign_id, pt_bytes user_id, int64_t quantity,
                pt_result *r);
/* A hold belongs to its user: confirm, cancel and get name the user, and a
 * reservation (or seat) of another user is NOT_FOUND, as one that does not
 * exist. An empty user_id checks nobody: inputs journaled before holds had
 * owners replay as they were decided. */
void pt_confirm(pt_engine *e, int64_t now, pt_bytes request_id, pt_bytes campaign_id,
                uint64_t reservation_id, pt_bytes user_id, pt_result *r);
void pt_cancel(pt_engine *e, int64_t now, pt_bytes request_id, pt_bytes campaign_id,
               uint64_t reservation_id, pt_bytes user_id, pt_result *r);
pt_status pt_reservation_get(pt_engine *e, pt_bytes campaign_id, uint64_t reservation_id,
                             pt_bytes user_id, pt_reservation_info *out);
pt_status pt_holdings_get(pt_engine *e, pt_bytes campaign_id, pt_bytes user_id,
                          pt_holdings_info *out);

/* ---- group buy ---- */
/* Join a group-buy campaign. r->reservation_id is the seat (confirm and
 * cancel it like a reservation), r->group_id its group. group_id is used by
 * PT_JOIN_GROUP only; new_user is the storefront's word for 老带新.
 * AUTO matching is O(log open groups): see group.c. */
void pt_join(pt_engine *e, int64_t now, pt_bytes request_id, pt_bytes campaign_id,
             pt_bytes user_id, pt_join_mode mode, uint64_t group_id, bool new_user,
             pt_result *r);
pt_status pt_group_get(pt_engine *e, pt_bytes campaign_id, uint64_t group_id,
                       pt_group_info *out);

/* ---- time ---- */
/* Earliest instant at which pt_engine_advance has work; PT_NEVER if none. */
int64_t pt_engine_next_deadline(const pt_engine *e);
/* Runs everything due at or before now: hold expiry, waitlist grants,
 * forgetting request ids and finished reservations. */
void pt_engine_advance(pt_engine *e, int64_t now);
/* The same, bounded: at most budget due items (hold and seat expiries,
 * group deadlines, retirements of finished reservations and groups,
 * forgotten request ids; PT_DUE_ALL: no bound; 0: none, time moves and
 * what is due waits), shared with the calls after it until the next
 * advance; what is left stays due (pt_engine_next_deadline <= now) for
 * the next advance. So a mass expiry
 * (a stampede's holds all falling due in one second) runs in slices that
 * leave the caller's loop free between them. Meanwhile a decision sees
 * those holds as still held (a reserve may answer SOLD_OUT a little longer:
 * never more than the stock), except the one it names: a confirm or cancel
 * of a hold past its deadline expires it first and answers EXPIRED, and a
 * seat's confirm or cancel, or a join naming a group, first runs that
 * group's deadline and that seat's expiry if they passed (AUTO never picks
 * a group that close to its deadline). */
#define PT_DUE_ALL UINT64_MAX
void pt_engine_advance_some(pt_engine *e, int64_t now, uint64_t budget);

void pt_engine_stats_get(const pt_engine *e, pt_engine_stats *out);
/* A counter that moves whenever a call changed state (a mutation or an
 * event was emitted): a call that left it alone decided nothing that needs
 * remembering, journaling or replaying. */
uint64_t pt_engine_changes(const pt_engine *e);

/* ---- ids (ids.c) ----
 * Reservation and group ids are sealed with a key: unguessable, and never
 * naming a hold of another era. Each incarnation of a shard begins an era
 * with a fresh random key (an input, journaled like any other, so a replay
 * seals the same ids); ids of the last 15 eras stay valid. An engine never
 * given a key hands out the unkeyed ids of engines before keys. tag is the
 * caller's name for the incarnation the key was made for (never 0). */
void pt_engine_set_id_key(pt_engine *e, const uint8_t key[16], uint64_t tag);
/* The tag of the current era's key; 0: no key yet. */
uint64_t pt_engine_id_tag(const pt_engine *e);

/* ---- snapshots (snapshot.c) ---- */
#define PT_SNAPSHOT_FORMAT 8 /* changes whenever the engine's layout does */
/* Receives the snapshot in pieces; non-zero stops the writing. */
typedef int (*pt_snapshot_write)(void *ctx, const void *p, size_t n);
/* Writes the whole state. Returns 0, or the writer's refusal. */
int pt_engine_snapshot(const pt_engine *e, pt_snapshot_write out, void *ctx);
/* An engine equal to the one snapshotted: it decides every later input
 * exactly as that one would. cfg gives the sink (its seed, window and cap
 * come from the snapshot). NULL with a reason on a bad snapshot. */
pt_engine *pt_engine_restore(const pt_engine_config *cfg, const void *p, size_t n, char *err,
                             size_t errlen);
/* A hint, no effect on state: a request for (campaign, user, request id) is
 * coming; start loading what it will look up. Lets the daemon overlap the
 * cache misses of a batch of pipelined requests. */
void pt_engine_prefetch(pt_engine *e, pt_bytes campaign_id, pt_bytes user_id, pt_bytes request_id);

const char *pt_status_name(pt_status s);
/* An id is 1..PT_ID_MAX bytes. */
static inline bool pt_id_valid(pt_bytes id) { return id.len >= 1 && id.len <= PT_ID_MAX && id.p; }

#pragma GCC visibility pop

#endif
