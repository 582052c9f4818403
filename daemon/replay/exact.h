/* Exact replay of a capture: its decisions (capture.h, version 2 input
 * records) fed through the engine in recorded order at recorded engine
 * times, starting from the recorded state, through the same replayer the
 * mirror's recovery uses (engine/replay.h); every answer compared with the
 * recorded one field by field. No network, no clock: an unchanged build
 * decides every capture identically. A what-if (a campaign setting changed
 * before the replay) shows what a rule change would have decided. */
#ifndef PT_EXACT_H
#define PT_EXACT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "input.h"

#define PT_EXACT_KINDS (PT_IN_LAST + 1) /* pt_input_kind values */
#define PT_EXACT_STATUSES 32

/* One campaign setting to change: CAMPAIGN.FIELD=VALUE. */
typedef struct pt_whatif {
  char campaign[PT_ID_MAX + 1];
  size_t campaign_len;
  const char *field; /* one of pt_whatif_fields */
  int64_t value;
} pt_whatif;

/* "stock", "per_user_limit", "hold_ms", "waitlist", "group_size", ... NULL-ended. */
extern const char *const pt_whatif_fields[];
/* Parses CAMPAIGN.FIELD=VALUE. 0, or -1 with the reason in err. */
int pt_whatif_parse(const char *s, pt_whatif *w, char *err, size_t errlen);

typedef struct pt_exact_opts {
  const pt_whatif *sets;
  size_t nsets;
  uint64_t max_divergences; /* stop after this many; 0: never */
  bool progress;            /* a line on stderr every second or so */
} pt_exact_opts;

/* One decision: where it is, what it was, and its answers. */
typedef struct pt_exact_decision {
  uint64_t request;   /* 1-based among the capture's request decisions; 0: not a request */
  uint64_t offset;    /* the input record's byte offset */
  uint64_t conn;      /* the connection that asked (0: the timer) */
  int64_t now;        /* engine time, ms */
  pt_input_kind kind;
  char campaign_id[PT_ID_MAX + 1], user_id[PT_ID_MAX + 1], request_id[PT_ID_MAX + 1];
  uint64_t reservation_id; /* what a confirm or cancel named */
  pt_input_answer recorded, got;
  const char *field;  /* the first field that differs */
} pt_exact_decision;

typedef struct pt_exact_report {
  uint32_t version;            /* of the capture */
  uint64_t records, decisions, requests, states;
  uint64_t advances;           /* decisions of the timer (or a turn's start) that changed something */
  uint64_t events;             /* events the recorded decisions emitted */
  uint64_t divergences;
  bool stopped;                /* max_divergences reached */
  pt_exact_decision first;     /* valid when divergences > 0 */
  uint64_t by_kind[PT_EXACT_KINDS];
  uint64_t by_status[PT_EXACT_STATUSES][PT_EXACT_STATUSES]; /* [recorded][got] */
  /* what-if: (campaign, user) pairs that got a unit (reserve or seat) in one
   * run and none in the other */
  uint64_t users_gained, users_lost;
  uint64_t sets_applied;
  double seconds;
  char error[512];             /* set when the run failed */
} pt_exact_report;

/* Replays the capture at path. 0: replayed to its end (or to
 * max_divergences); -1: the file could not be read to its end (not a
 * capture, a version without decisions, truncated or corrupt: the reason
 * and byte offset in rep->error; the figures cover what came before). */
int pt_exact_run(const char *path, const pt_exact_opts *o, pt_exact_report *rep);

/* The campaigns a capture knows (in its state records, or created by its
 * decisions), each once, in the order first seen: each(ctx, id, kind,
 * stock as first seen, created by a decision) returns false to stop early.
 * 0, or -1 with the reason in err (an unreadable capture). */
int pt_exact_campaigns(const char *path, bool (*each)(void *ctx, pt_bytes id, pt_kind kind, int64_t stock,
                                                      bool created),
                       void *ctx, char *err, size_t errlen);

#endif
