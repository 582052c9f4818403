/* The wire peek: the ids of a Reserve or Join frame, found by walking the
 * protobuf wire format without decoding or allocating, so the engine can
 * start loading what the request will look up a few frames ahead of it.
 * A pure function of the bytes (fuzzed: tests/fuzz/fuzz_peek.c). */
#ifndef PT_PEEK_H
#define PT_PEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct pt_peek_ids {
  pt_bytes request_id, campaign_id, user_id; /* point into the frame; {0} when absent */
} pt_peek_ids;

/* True when msg is a well-formed Request (as far as walked) carrying a
 * Reserve or a Join; its ids in out. Never reads outside msg[0..len). */
bool pt_peek(const uint8_t *msg, size_t len, pt_peek_ids *out);

#endif
