/* The end-of-run verdict: the invariants a sale must keep, checked on the
 * campaign states the daemon reports. Pure: fed with states, testable with
 * made-up ones. */
#ifndef PT_VERDICT_H
#define PT_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pt_vcampaign {
  const char *id;
  int64_t stock, available, held, sold;
  uint32_t per_user_limit; /* 0: none */
} pt_vcampaign;

typedef struct pt_vuser {
  size_t campaign; /* index into the campaigns */
  const char *user;
  int64_t held, sold, waiting;
} pt_vuser;

typedef struct pt_verdict {
  int64_t oversold;          /* units handed out beyond stock, summed */
  size_t not_conserved;      /* campaigns where available+held+sold != stock */
  size_t negative;           /* campaigns with a negative counter */
  size_t users_over_limit;
  size_t campaigns, users;   /* how many were checked */
  uint64_t unanswered;       /* the run's requests that got no reply (set by the caller) */
  bool pass;
} pt_verdict;

void pt_verdict_check(const pt_vcampaign *c, size_t nc, const pt_vuser *u, size_t nu,
                      pt_verdict *out);
/* Requests left without a reply fail the verdict too: a run cannot say
 * nothing was lost of what it never heard back about. */
void pt_verdict_unanswered(pt_verdict *v, uint64_t unanswered);
void pt_verdict_print(FILE *f, const pt_verdict *v);

#endif
