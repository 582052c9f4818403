/* Journal records (record.h): the header the mirror writes, and one
 * record checked and replayed onto an engine. */
#include "record.h"

#include <inttypes.h>
#include <stdio.h>

#include "input.h"
#include "replay.h"

void pt_record_head(uint8_t h[PT_RECORD_HEAD], uint64_t epoch, uint64_t seq) {
  size_t k = 0;
  h[k++] = 0x93; /* fixarray of 3 */
  h[k++] = PT_RECORD_FORMAT;
  h[k++] = 0xcf; /* uint64 epoch */
  for (int i = 7; i >= 0; i--) h[k++] = (uint8_t)(epoch >> (8 * i));
  h[k++] = 0xcf; /* uint64 seq */
  for (int i = 7; i >= 0; i--) h[k++] = (uint8_t)(seq >> (8 * i));
}

pt_record_rc pt_record_apply(pt_engine *e, const void *p, size_t n, uint64_t prev_seq,
                             pt_record_head_info *out, uint64_t *inputs, char *err, size_t errlen) {
  *out = (pt_record_head_info){0};
  /* The header is read as inputs are, flat and without allocating:
   * msgpack's own unpacker would first allocate what a forged container
   * size announces. */
  size_t off = 0;
  msgpack_object o, it[PT_INPUT_FLAT_MAX];
  if (!pt_input_read_flat(p, n, &off, &o, it) || o.via.array.size != 3 ||
      it[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || it[0].via.u64 != PT_RECORD_FORMAT ||
      it[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    snprintf(err, errlen, "journal record after %" PRIu64 ": not a record of format %d", prev_seq,
             PT_RECORD_FORMAT);
    return PT_RECORD_BAD;
  }
  out->seq = it[2].via.u64;
  /* Read, never checked: the seq orders the journal, the epoch only says
   * who wrote it (the fencing was done by Redis when it was appended). */
  if (it[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER) out->epoch = it[1].via.u64, out->has_epoch = true;
  if (out->seq != prev_seq + 1) {
    snprintf(err, errlen, "journal record %" PRIu64 " follows %" PRIu64 ": a gap", out->seq, prev_seq);
    return PT_RECORD_GAP;
  }
  char why[256];
  if (pt_replay_inputs(e, p, n, off, inputs, why, sizeof why)) {
    snprintf(err, errlen, "journal record %" PRIu64 ": %s", out->seq, why);
    return PT_RECORD_BAD;
  }
  return PT_RECORD_APPLIED;
}
