/* Engine internals shared by the engine's own files; nothing outside
 * daemon/engine/ includes this. */
#ifndef PT_ENGINE_INT_H
#define PT_ENGINE_INT_H

#include "bigmem.h"
#include "engine.h"
#include "map.h"
#include "otree.h"
#include "store.h"

#define PT_NIL UINT32_MAX
#define PT_HOLD_PAGE_BITS 16
#define PT_HOLD_PAGE (1u << PT_HOLD_PAGE_BITS)
#define PT_MAX_QTY 1000000
#define PT_MAX_STOCK (INT64_C(1) << 40)

/* A user's counters in one campaign, in the engine's user store (13 bytes
 * plus the id: no back-pointer, the hold knows its campaign). */
typedef struct pt_user {
  /* holds that name it, in any state (live, or finished and remembered):
   * with none, and nothing held, sold or waiting, the record is freed */
  uint32_t refs;
  uint32_t held, sold; /* units (seats), by hold state; group buy: held counts PAID too */
  union {
    uint32_t waiting; /* flash sale: units on the waitlist */
    uint32_t groups;  /* group buy: tree of the matchable groups the user sits in (group.c) */
  };
  uint8_t klen;
  uint8_t key[];
} pt_user;
#define PT_USER_SIZE(len) (offsetof(pt_user, key) + (len))
#define PT_USER_UNITS ((PT_USER_SIZE(PT_ID_MAX) + 3) / 4) /* the largest, in store units */

/* A reservation. 32 bytes: a million live holds cost 32 MB here. It sits in
 * exactly one of its campaign's queues (hold expiry, waitlist, retire) via
 * prev/next, or, when free, on the engine's free list via next. */
typedef struct pt_hold {
  int64_t at_ms;   /* HELD: payment deadline; retired: when to forget it */
  uint32_t prev, next;
  uint32_t user;   /* its pt_user in the engine's user store */
  uint32_t camp;   /* its campaign's index */
  union {
    uint32_t qty;   /* flash sale: units held */
    uint32_t group; /* group buy: slot of the seat's group; a seat is one unit */
  };
  uint32_t gen_state; /* generation << 8 | era & 15 << 4 | pt_hold_state (ids.c) */
} pt_hold;
_Static_assert(sizeof(pt_hold) == 32, "a hold is 32 bytes");
#define PT_HOLD_PAGE_BYTES ((size_t)PT_HOLD_PAGE * sizeof(pt_hold)) /* 2 MiB: one huge page */

/* A group buy instance. Seats are holds; seats[] keeps them in join order,
 * so seats[0] is the leader (团长) and a leaving leader passes the lead to
 * the earliest remaining member. */
typedef struct pt_group {
  pt_campaign *camp;
  int64_t opened_ms;
  int64_t at_ms; /* open: deadline; ended: when to forget it */
  int64_t deadline_ms;
  struct pt_group *prev, *next; /* campaign's open list or retire list */
  uint64_t seq;  /* opening order in its campaign: also deadline order */
  uint32_t slot, gen;
  uint32_t bnode; /* its node in the bucket tree of its member count, or PT_ONIL */
  uint8_t state, members, paid;
  uint8_t nheavy; /* while bucketed: members whose group trees are keyed by bucket (group.c) */
  bool simulated;
  bool matchable; /* AUTO may still pick it: not too close to its deadline */
  uint8_t era;    /* of its id (ids.c): era & 15 */
  uint32_t seats[]; /* [group_size] */
} pt_group;

typedef struct pt_glist {
  pt_group *head, *tail;
  uint32_t n;
} pt_glist;

/* Intrusive doubly linked list of holds ordered by at_ms. */
typedef struct pt_queue {
  uint32_t head, tail, n;
} pt_queue;

enum pt_op { OP_CREATE = 1, OP_UPDATE, OP_END, OP_RESERVE, OP_CONFIRM, OP_CANCEL, OP_JOIN };

struct pt_campaign {
  uint32_t index;    /* creation order */
  uint32_t heap_pos; /* in the engine's deadline heap */
  int64_t deadline;  /* earliest due work, PT_NEVER if none */
  pt_kind kind;
  int64_t start_ms, end_ms; /* end_ms PT_NEVER: no end */
  int64_t stock, available, held, sold;
  uint32_t per_user_limit; /* 0: unlimited */
  int64_t hold_ms;
  bool waitlist;
  uint64_t waiting_units;
  pt_queue holdq;   /* HELD, by payment deadline */
  pt_queue waitq;   /* WAITING, first come first served */
  pt_queue retireq; /* finished holds, by when to forget them */
  /* group buy */
  uint32_t group_size, simulate_min_paid;
  int64_t group_ttl_ms, match_margin_ms;
  bool new_users_only;
  pt_glist groupq;   /* open groups by deadline */
  pt_glist gretireq; /* ended groups by when to forget them */
  uint32_t *buckets; /* [members]: tree of the open groups AUTO may pick */
  uint64_t bucket_bits; /* bit k: buckets[k] is not empty */
  uint64_t group_seq;   /* groups opened so far */
  pt_map users;
  uint64_t idem_count; /* remembered effects of this campaign */
  bool retired;        /* past its retention: a record of its final counters, nothing more */
  uint64_t key_hash;
  uint8_t klen;
  uint8_t key[];
};

/* ids.c: one era's key. */
#define PT_SPECK_ROUNDS 27
typedef struct pt_id_key {
  uint8_t era;     /* 0: no key in this entry */
  uint8_t raw[16]; /* the key as journaled and snapshotted */
  uint32_t rk[PT_SPECK_ROUNDS]; /* Speck64/128's round keys */
} pt_id_key;
/* The id last sealed of a kind, and what it seals: an answer remembered
 * right after its id was sealed needs no decryption to be kept small. */
typedef struct pt_sealed {
  uint64_t id, inner;
  uint8_t era4;
} pt_sealed;
enum { PT_ID_HOLD = 0, PT_ID_GROUP = 1 };

struct pt_engine {
  pt_engine_config cfg;
  int64_t now; /* latest time seen: never moves back */
  pt_store users;     /* every campaign's pt_user records */
  uint32_t user_free[PT_USER_UNITS + 1]; /* freed records by size in store units: lists, PT_NIL-ended */
  uint32_t nretired;  /* campaigns retired (campaign.c): live ones are ncamps - nretired */
  pt_store camp_store; /* pt_campaign records (8-byte aligned) */
  /* remembered effects, oldest first (idem.c) */
  pt_store idem_log;
  pt_map idem;
  int64_t idem_base;        /* times in records are relative to this */
  int64_t idem_tail_forget; /* forget time of the newest record */
  pt_opool onodes;          /* AUTO matching trees (group.c) */
  pt_hold **pages;
  uint32_t npages, nslots, free_head;
  uint32_t hold_hwm; /* slots ever handed out; those above are zero, never used */
  pt_campaign **camps;
  uint32_t ncamps, camps_cap;
  pt_map camp_map;
  pt_campaign *last_camp; /* the last one pt_campaign_find found */
  pt_campaign **heap; /* min-heap on deadline */
  uint32_t heap_n;
  uint64_t event_seq;
  uint64_t changes; /* mutations and events emitted: moves whenever state changed */
  /* Due items (expiries, group deadlines, retirements, forgotten ids) the
   * calls until the next advance may still run; set by every advance. */
  uint64_t due_left;
  pt_engine_stats st;
  pt_group **groups; /* by slot; NULL when free */
  uint32_t *group_gen;
  uint32_t ngroups, groups_cap;
  uint32_t *group_free;
  uint32_t ngroup_free;
  /* ids (ids.c) */
  uint8_t id_era;   /* holds and groups made now get this era; 0: unkeyed ids */
  uint64_t id_tag;  /* the caller's name for the incarnation id_era's key was made for */
  pt_id_key id_keys[16]; /* by era & 15; [0] unused */
  uint8_t id_order[16];  /* the keyed eras' slots, the current first, then older ones */
  uint8_t id_nkeys;      /* how many */
  pt_sealed sealed[2];   /* by PT_ID_HOLD, PT_ID_GROUP */
};

static inline pt_bytes pt_key_of(uint8_t klen, const uint8_t *key) {
  return (pt_bytes){key, klen};
}
static inline pt_bytes camp_id(const pt_campaign *c) { return pt_key_of(c->klen, c->key); }
static inline pt_bytes user_id(const pt_user *u) { return pt_key_of(u->klen, u->key); }

static inline int64_t eng_now(pt_engine *e, int64_t now) {
  if (now > e->now) e->now = now;
  return e->now;
}

/* holds.c */
static inline pt_hold *hold_at(const pt_engine *e, uint32_t slot) {
  return &e->pages[slot >> PT_HOLD_PAGE_BITS][slot & (PT_HOLD_PAGE - 1)];
}
static inline pt_hold_state hold_state(const pt_hold *h) {
  return (pt_hold_state)(h->gen_state & 0xf);
}
static inline void hold_set_state(pt_hold *h, pt_hold_state s) {
  h->gen_state = (h->gen_state & ~0xfu) | (uint32_t)s;
}
static inline unsigned hold_era(const pt_hold *h) { return (h->gen_state >> 4) & 0xf; }

/* ids.c */
void pt__speck_schedule(const uint8_t key[16], uint32_t rk[PT_SPECK_ROUNDS]);
uint64_t pt__speck_encrypt(const uint32_t rk[PT_SPECK_ROUNDS], uint64_t v);
uint64_t pt__speck_decrypt(const uint32_t rk[PT_SPECK_ROUNDS], uint64_t v);
/* The id of (era & 15, inner = generation << 32 | slot + 1) as clients see
 * it; kind: PT_ID_HOLD or PT_ID_GROUP (remembered for pt__id_inner). */
uint64_t pt__id_seal(pt_engine *e, unsigned era4, uint64_t inner, int kind);
/* Recomputes id_order from id_keys (after a new key, or a restore). */
void pt__id_order(pt_engine *e);
/* What an id may name, one candidate a call (*cur starts at 0): false when
 * there are no more. The caller checks the candidate against the slot. */
bool pt__id_next(const pt_engine *e, uint64_t id, unsigned *cur, uint64_t *inner, unsigned *era4);
/* An id's (inner, era) for keeping, when it was the last sealed of its
 * kind; else (id, 0), which seals back to id as well. */
void pt__id_inner(const pt_engine *e, uint64_t id, int kind, uint64_t *inner, unsigned *era4);

static inline uint64_t hold_rid(pt_engine *e, uint32_t slot, const pt_hold *h) {
  uint64_t gen = h->gen_state >> 8;
  return pt__id_seal(e, hold_era(h), gen << 32 | ((uint64_t)slot + 1), PT_ID_HOLD);
}
static inline pt_user *hold_user(const pt_engine *e, const pt_hold *h) {
  return pt_store_at(&e->users, h->user);
}
static inline pt_campaign *hold_camp(const pt_engine *e, const pt_hold *h) {
  return e->camps[h->camp];
}
uint32_t pt__hold_alloc(pt_engine *e);
void pt__hold_free(pt_engine *e, uint32_t slot);
/* A finished hold: kept queryable for the request-id window, then freed. */
void pt__hold_retire(pt_engine *e, pt_campaign *c, int64_t now, uint32_t slot);
/* The hold named by a reservation id, if live, of campaign c, and of user
 * uid (any user when uid is empty). */
pt_hold *pt__hold_lookup(pt_engine *e, const pt_campaign *c, uint64_t rid, pt_bytes uid, uint32_t *slot);
void pt__q_push_sorted(pt_engine *e, pt_queue *q, uint32_t slot);
void pt__q_push_back(pt_engine *e, pt_queue *q, uint32_t slot);
void pt__q_remove(pt_engine *e, pt_queue *q, uint32_t slot);
static inline int64_t q_head_at(const pt_engine *e, const pt_queue *q) {
  return q->head == PT_NIL ? PT_NEVER : hold_at(e, q->head)->at_ms;
}

/* idem.c */
uint32_t pt__idem_fingerprint(int op, uint64_t a, uint64_t b, pt_bytes s);
/* A request id under its campaign: the table's key and its hash, made once
 * per operation for both the retry check and the remembering. */
typedef struct pt_idem_key {
  uint64_t hash;
  uint8_t len, off; /* key bytes; the request id starts at b[off] */
  uint8_t b[5 + PT_ID_MAX];
} pt_idem_key;
void pt__idem_key(const pt_engine *e, const pt_campaign *c, pt_bytes rid, pt_idem_key *k);
/* Fills r with the remembered answer and returns true on a retry. */
bool pt__idem_replay(pt_engine *e, pt_campaign *c, int64_t now, const pt_idem_key *k, int op,
                     uint32_t fp, pt_result *r);
/* Remembers r if it is an effect (see idem.c); other answers are not kept. */
void pt__idem_store(pt_engine *e, pt_campaign *c, int64_t now, const pt_idem_key *k, int op,
                    uint32_t fp, const pt_result *r);
void pt__idem_expire(pt_engine *e, int64_t now);
int64_t pt__idem_next(pt_engine *e);
void pt__idem_init(pt_engine *e);
void pt__idem_prefetch(pt_engine *e, const pt_campaign *c, pt_bytes rid);
/* Restore's check of the remembered effects: the log is whole records from
 * head to tail, each of a campaign the engine has, as many as counted, and
 * every table entry names a whole record. */
bool pt__idem_check(const pt_engine *e);
void pt__idem_free_all(pt_engine *e);

/* engine.c: the deadline heap over campaigns, and effects */
void pt__camp_heap_add(pt_engine *e, pt_campaign *c);
void pt__camp_reschedule(pt_engine *e, pt_campaign *c);
void pt__camp_run_due(pt_engine *e, pt_campaign *c, int64_t now);
void pt__emit_mut(pt_engine *e, pt_mut_kind k, bool deleted, const pt_campaign *c,
              pt_bytes key, uint64_t rid);
/* Numbers an event (seq grows by one) and hands it to the sink. */
void pt__emit(pt_engine *e, pt_event *ev);
void pt__emit_event(pt_engine *e, pt_event_type t, int64_t now, const pt_campaign *c,
                const pt_user *u, uint64_t rid, uint32_t qty, int64_t expires);

/* campaign.c */
/* c ended more than the retention ago and nothing of it is live: its
 * finished holds and groups, its users and their table are freed; the
 * record stays, with its final counters. */
void pt__camp_retire(pt_engine *e, pt_campaign *c);
static inline bool camp_ended(const pt_campaign *c, int64_t now) {
  return now >= c->end_ms;
}

/* flash.c: the preamble and epilogue every campaign-scoped mutation shares */
pt_campaign *pt__op_begin(pt_engine *e, int64_t now, pt_bytes rid, pt_bytes cid, int op,
                          uint32_t fp, pt_result *r, pt_idem_key *k);
void pt__op_end(pt_engine *e, pt_campaign *c, int64_t now, const pt_idem_key *k, int op,
                uint32_t fp, pt_result *r);
/* A user's record given back (its campaign retired): a later user of that
 * size takes it. */
void pt__user_free(pt_engine *e, uint32_t ref);
/* A hold naming the user at ref was freed: the user goes too (out of c's
 * table) once no hold names it and it holds, bought and waits for nothing
 * (its answers are then those of a user never seen). */
void pt__user_unref(pt_engine *e, pt_campaign *c, uint32_t ref);
/* *ref (if ref) is the user's store reference. */
pt_user *pt__user_find(pt_campaign *c, pt_bytes uid, uint64_t h, uint32_t *ref);
/* A new user (absent from c); *ref is its store reference. */
pt_user *pt__user_get(pt_engine *e, pt_campaign *c, pt_bytes uid, uint64_t h, uint32_t *ref);

/* group.c */
void pt__group_run_due(pt_engine *e, pt_campaign *c, int64_t now);
/* Frees ended groups past their retirement. After pt__retire_due: a group
 * retires no earlier than its seats, so with a bounded advance no seat is
 * left whose group is gone. */
void pt__group_retire_due(pt_engine *e, pt_campaign *c, int64_t now);
void pt__group_confirm(pt_engine *e, pt_campaign *c, int64_t now, uint64_t resid, pt_bytes uid,
                       pt_result *r);
void pt__group_cancel(pt_engine *e, pt_campaign *c, int64_t now, uint64_t resid, pt_bytes uid,
                      pt_result *r);
/* The fingerprint of a confirm or cancel: of the user too, when one is
 * named (a retry by another user is a CONFLICT, not another's answer). */
uint32_t pt__fp_hold(int op, uint64_t resid, pt_bytes uid, pt_bytes cid);
pt_group *pt__group_of(const pt_engine *e, const pt_hold *h);
uint64_t pt__group_id(pt_engine *e, const pt_group *g);
int64_t pt__group_next(const pt_campaign *c);
void pt__group_free_all(pt_engine *e);
/* Frees every ended group of c (its campaign retires). */
void pt__group_retire_all(pt_engine *e, pt_campaign *c);
/* AUTO matching's trees built from the groups (they are not in snapshots). */
void pt__match_rebuild(pt_engine *e);


void pt__flash_run_due(pt_engine *e, pt_campaign *c, int64_t now);
void pt__flash_grant_waitlist(pt_engine *e, pt_campaign *c, int64_t now);
void pt__retire_due(pt_engine *e, pt_campaign *c, int64_t now);

static inline void result_set(pt_result *r, pt_status s, const char *detail) {
  r->status = s;
  r->detail = detail;
}

#endif
