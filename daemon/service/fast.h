/* The reserve fast path: a Reserve request in its canonical shape (the
 * request's id and its reserve, each field once, nothing else) is read
 * straight off the wire, and its reply written straight into the output
 * buffer, without protobuf-c's unpack, size pass and pack. Anything else
 * takes the general path. The reply is byte for byte what protobuf-c packs
 * for the same Response (tests/unit/test_fast.c checks both directions
 * against protobuf-c on random messages). Pure functions of their bytes. */
#ifndef PT_FAST_H
#define PT_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct pt_fast_reserve {
  uint64_t id;
  pt_bytes request_id, campaign_id, user_id; /* point into the frame */
  int32_t quantity;
} pt_fast_reserve;

/* True when msg is a canonical Reserve request with a non-zero id: *out
 * holds exactly what protobuf-c would unpack. False: take the general path. */
bool pt_fast_reserve_read(const uint8_t *msg, size_t len, pt_fast_reserve *out);

/* The Response to a reserve (id, status, detail, replay, and the reservation
 * when there is one, as svc_reserve builds it): its size, then its bytes
 * into out (at least that size). */
size_t pt_fast_reserve_reply_size(const pt_fast_reserve *q, const pt_result *r);
void pt_fast_reserve_reply(const pt_fast_reserve *q, const pt_result *r, uint8_t *out);

#endif
