/* A journal record as the mirror writes it (mirror.c) and recovery and the
 * follower read it back (recovery.c): one msgpack array [format, epoch,
 * seq], then the inputs of the turns it carries, each as pt_input_pack
 * wrote it with the digest of its answer.
 *
 * Contract of pt_record_apply: no I/O, no logging, no allocation that
 * outlives the call; the bytes come from Redis and are trusted for nothing
 * (it is what the record fuzzer, tests/fuzz/fuzz_record.c, drives). A
 * record is refused with a reason, or every input in it is applied and
 * answered as recorded. A refusal after its header leaves the inputs
 * before the bad one applied: the engine is then only good for freeing
 * (recovery gives up on it), never for serving. */
#ifndef PT_RECORD_H
#define PT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define PT_RECORD_FORMAT 1
#define PT_RECORD_HEAD 20 /* fixarray 3, fixint format, uint64 epoch, uint64 seq */

/* Writes the header into the PT_RECORD_HEAD bytes reserved before a
 * record's inputs: fixed widths, so the room is taken before the seq is
 * known. */
void pt_record_head(uint8_t h[PT_RECORD_HEAD], uint64_t epoch, uint64_t seq);

typedef enum pt_record_rc {
  PT_RECORD_APPLIED = 0,
  PT_RECORD_BAD = -1, /* not a record of this format, or an input that does not replay */
  PT_RECORD_GAP = -2, /* a well-formed header whose seq is not prev_seq + 1: nothing applied */
} pt_record_rc;

typedef struct pt_record_head_info {
  uint64_t seq;
  uint64_t epoch;
  bool has_epoch; /* the epoch was an unsigned integer (older writers: anything) */
} pt_record_head_info;

/* Applies the record p[0, n) to e if its seq follows prev_seq. *inputs is
 * the caller's running count of inputs replayed: it grows by those
 * applied, and a mismatch is named by its place in that count, so a
 * recovery's log points at one input of the whole journal. out gets the
 * header once it is read (GAP and an input's refusal included). Every
 * refusal writes a reason, in the words recovery logs, into err. */
pt_record_rc pt_record_apply(pt_engine *e, const void *p, size_t n, uint64_t prev_seq,
                             pt_record_head_info *out, uint64_t *inputs, char *err, size_t errlen);

#endif
