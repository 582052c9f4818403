/* Rates (anti-scalper, OWASP OAT-005 / OAT-021): token buckets, refilled
 * by the daemon's clock (a test clock in tests), for a connection, a key
 * and a user. A user's buckets live in a table of bounded size keyed by a
 * keyed hash of the user id: a bucket that has refilled is as good as
 * none, so it is the first taken for another user, and a full table
 * forgets its longest-idle bucket first (a forgotten user starts full,
 * which errs towards serving). Pure: no I/O. */
#ifndef PT_RATE_H
#define PT_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct pt_bucket {
  int64_t milli; /* tokens × 1000, up to burst × 1000 */
  int64_t at_ms; /* when last refilled; 0: never used (full) */
} pt_bucket;

/* Has b (rate a second, burst at most) a token now? Refills it to now.
 * rate 0: no limit. pt_bucket_take takes one (after a yes). */
bool pt_bucket_has(pt_bucket *b, uint32_t rate, uint32_t burst, int64_t now_ms);
void pt_bucket_take(pt_bucket *b, uint32_t rate);

typedef struct pt_user_rates pt_user_rates;

pt_user_rates *pt_user_rates_new(size_t max_users, uint64_t seed);
void pt_user_rates_free(pt_user_rates *t);
/* The user's bucket (made, full, when the user has none). */
pt_bucket *pt_user_rates_bucket(pt_user_rates *t, pt_bytes user, uint32_t rate, uint32_t burst, int64_t now_ms);
size_t pt_user_rates_used(const pt_user_rates *t); /* buckets held now */

#endif
