/* The ids a network replay translates: a reservation, seat or group id as
 * the capture recorded it -> the one the replayed daemon handed out for the
 * same request. Ids are sealed with each shard incarnation's key, so a
 * replay against another daemon gets others; a later request that names a
 * recorded id (a confirm, a join by group) is sent with the new one, and
 * waits until the reply that brings it has come, as the storefront did. */
#ifndef PT_BENCH_IDMAP_H
#define PT_BENCH_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pintuan.h"

typedef struct idmap_entry {
  uint64_t recorded, replayed; /* replayed 0: its reply has not come yet */
  size_t producer;             /* the first request whose recorded reply carries it */
} idmap_entry;

typedef struct idmap {
  idmap_entry *e;
  size_t cap, n;
} idmap;

/* The entry of a recorded id; NULL if no recorded reply carries it. */
idmap_entry *idmap_find(const idmap *m, uint64_t recorded);
/* Notes that request `producer`'s recorded reply carries id (the first
 * such request is kept). */
void idmap_note(idmap *m, uint64_t recorded, size_t producer);
void idmap_free(idmap *m);

#define IDMAP_REPLY_MAX 66 /* a group's id and its 64 seats' */

/* Every id field of a reply or request, as pointers (at most max): a
 * reservation, seat or group id, whatever the operation. Returns how many. */
size_t idmap_reply_ids(Pintuan__V1__Response *r, uint64_t **out, size_t max);
size_t idmap_request_ids(Pintuan__V1__Request *q, uint64_t **out, size_t max);

#endif
