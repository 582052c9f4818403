/* What a daemon knows of its shard, so that a Redis holding less is noticed:
 * the shard's identity (an id and creation time per incarnation, made by
 * pintuand --init-shard and --accept-loss, never implicitly) and the
 * highest lease epoch and journal record it saw. Kept in memory while the
 * daemon runs; with a state file, across restarts too (a few lines, written
 * atomically off the loop, at most once per lease tick).
 *
 * The one-shot commands: --init-shard creates the shard in Redis (the
 * explicit step before the first start); --accept-loss makes a new
 * incarnation from whatever Redis holds, after an operator decided that
 * what Redis lost is lost. */
#ifndef PT_SHARD_H
#define PT_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pt_shard_known {
  char id[40];        /* the incarnation's id; "" when none is known */
  int64_t created_ms; /* when it was made (a newer one supersedes it) */
  uint64_t epoch;     /* the highest lease epoch seen */
  uint64_t seq;       /* the highest journal record seen */
} pt_shard_known;

/* Reads a state file into k. A missing file is no knowledge (k zeroed, 0);
 * a file of another shard, or one that does not parse, is -1 with the
 * reason in err. */
int pt_shard_state_read(const char *path, const char *shard, pt_shard_known *k, char *err,
                        size_t errlen);
/* Writes it atomically (a temporary file, fsync, rename). 0, or -1 with
 * errno. Blocking: off the loop, or at exit. */
int pt_shard_state_write(const char *path, const char *shard, const pt_shard_known *k);

/* A new incarnation id: 32 hex digits from getrandom. */
void pt_shard_new_id(char id[40]);
/* The engine's id tag for an incarnation (pt_engine_set_id_key): never 0. */
uint64_t pt_shard_tag(const char *id);

struct pt_mirror_config;
/* pintuand --init-shard (accept_loss false) or --accept-loss, against the
 * configured Redis: prints what it did; returns an exit status (EX_OK,
 * EX_UNAVAILABLE when Redis cannot be reached or refuses). */
int pt_shard_command(const struct pt_mirror_config *cfg, const char *state_file, bool accept_loss);

#endif
