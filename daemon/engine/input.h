/* Engine inputs as data. Every state-changing call of the engine API, with
 * its time, is one pt_input; pt_input_apply is the one way the daemon feeds
 * the engine, so a journal of the inputs that changed something, replayed
 * through the same function onto a snapshot, decides everything again
 * exactly as it was decided live (the engine is pure; time is an input).
 *
 * The journal encoding is msgpack: one array per input, its fields by kind,
 * ending with a digest of the answer (status, reservation id, group id) so
 * that a replay can tell it decided the same (pt_input_same). */
#ifndef PT_INPUT_H
#define PT_INPUT_H

#include <msgpack.h>

#include "engine.h"

#pragma GCC visibility push(default)

typedef enum pt_input_kind {
  PT_IN_ADVANCE = 1, /* run what is due by now */
  PT_IN_CREATE,
  PT_IN_UPDATE,
  PT_IN_END,
  PT_IN_RESERVE,
  PT_IN_CONFIRM,
  PT_IN_CANCEL,
  PT_IN_JOIN,
  PT_IN_WINDOW,         /* the idempotency window changed (SIGHUP) */
  PT_IN_MAX_REMEMBERED, /* the cap on remembered effects changed */
  PT_IN_ID_KEY,         /* a new era of ids: its key and tag (pt_engine_set_id_key) */
  PT_IN_LIMITS,         /* the tables' caps changed (pt_engine_set_limits) */
} pt_input_kind;
#define PT_IN_LAST PT_IN_LIMITS

typedef struct pt_input {
  pt_input_kind kind;
  int64_t now;
  pt_bytes request_id, campaign_id, user_id;
  int64_t quantity;           /* reserve */
  uint64_t reservation_id;    /* confirm, cancel */
  pt_join_mode mode;          /* join */
  uint64_t group_id;          /* join JOIN_GROUP */
  bool new_user;              /* join */
  pt_campaign_spec spec;      /* create (spec.id is the campaign) */
  pt_campaign_changes changes; /* update */
  /* window ms, max remembered; advance: due items it may run (0: all, as
   * before budgets; n > 0: at most n; -1: none, time only) */
  int64_t value;
  uint8_t id_key[16];         /* id key */
  uint64_t id_tag;
  pt_limits limits;           /* limits */
} pt_input;

/* What an answer is checked by on replay. */
typedef struct pt_input_digest {
  pt_status status;
  uint64_t reservation_id, group_id;
} pt_input_digest;

/* A whole answer, as a capture records it for exact replay: every field a
 * reply carries (the detail text aside: it follows from the status), and
 * the number of events the input emitted, so that an advance that expired
 * or failed something differently shows too. */
typedef struct pt_input_answer {
  pt_status status;
  bool replay, opened;
  uint64_t reservation_id, group_id;
  int64_t expires_ms;
  uint32_t quantity, position;
  pt_hold_state state;
  pt_group_state group_state;
  uint64_t events;
} pt_input_answer;

/* Is the msgpack object at p[off, n) a flat array (at most 32 items, none
 * a container)? As inputs and answers are. msgpack's unpacker allocates
 * for a container's announced size before reading it, so a forged header
 * asks for gigabytes: bytes from a file or Redis are checked with this
 * before msgpack_unpack_next. */
bool pt_input_flat(const void *p, size_t n, size_t off);
#define PT_INPUT_FLAT_MAX 32
/* Reads that flat array at p[*off, n) into o without allocating: its items
 * go to items, byte strings point into p; *off moves past it. false (and
 * *off unchanged) when it is not such an array or runs past n. Inputs and
 * answers are read with it; what msgpack_unpack_next would give, cheaper. */
bool pt_input_read_flat(const void *p, size_t n, size_t *off, msgpack_object *o,
                        msgpack_object items[PT_INPUT_FLAT_MAX]);

/* A request's input (create .. join), answered; not an advance or a setting. */
static inline bool pt_input_is_request(pt_input_kind k) { return k >= PT_IN_CREATE && k <= PT_IN_JOIN; }
/* A setting (window, cap, id key): journaled whenever it is applied. */
static inline bool pt_input_is_setting(pt_input_kind k) {
  return k == PT_IN_WINDOW || k == PT_IN_MAX_REMEMBERED || k == PT_IN_ID_KEY || k == PT_IN_LIMITS;
}

/* Applies the input (r may be NULL for advance and settings). */
void pt_input_apply(pt_engine *e, const pt_input *in, pt_result *r);

void pt_input_pack(msgpack_packer *pk, const pt_input *in, const pt_result *r);
/* Reads one input from o; its byte strings point into o (valid as long as
 * the buffer o was unpacked from). 0, or -1 with the reason in err: also
 * for values no daemon journals and the engine must not be given (a now
 * outside 0..PT_TIME_MAX, a window outside what the config allows). */
int pt_input_unpack(const msgpack_object *o, pt_input *in, pt_input_digest *d, char *err,
                    size_t errlen);
/* Did r answer as the digest says the original did? */
bool pt_input_same(const pt_input_digest *d, const pt_result *r);

/* The answer of r (NULL: an advance or a setting) with its events. */
void pt_input_answer_of(const pt_result *r, uint64_t events, pt_input_answer *a);
void pt_input_pack_answer(msgpack_packer *pk, const pt_input_answer *a);
/* 0, or -1 with the reason in err. */
int pt_input_unpack_answer(const msgpack_object *o, pt_input_answer *a, char *err, size_t errlen);
/* The name of the first field where a and b differ; NULL when equal. */
const char *pt_input_answer_diff(const pt_input_answer *a, const pt_input_answer *b);
/* "reserve", "join", ... */
const char *pt_input_kind_name(pt_input_kind k);

#pragma GCC visibility pop

#endif
