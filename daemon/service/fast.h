/* The fast path: a Reserve, Confirm or Cancel request in its canonical
 * shape (the request's id and its operation, each field once, nothing
 * else) is read straight off the wire, and its reply written straight into
 * the output buffer, without protobuf-c's unpack, size pass and pack.
 * Anything else takes the general path. The reply is byte for byte what
 * protobuf-c packs for the Response the general path builds
 * (tests/unit/test_fast.c checks both directions against protobuf-c on
 * random messages). Pure functions of their bytes. */
#ifndef PT_FAST_H
#define PT_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef enum pt_fast_op { PT_FAST_RESERVE = 1, PT_FAST_CONFIRM, PT_FAST_CANCEL } pt_fast_op;

typedef struct pt_fast_req {
  pt_fast_op op;
  uint64_t id;
  pt_bytes request_id, campaign_id, user_id; /* point into the frame */
  int32_t quantity;                          /* reserve */
  uint64_t reservation_id;                   /* confirm, cancel */
} pt_fast_req;

/* True when msg is a canonical Reserve, Confirm or Cancel request with a
 * non-zero id: *out holds exactly what protobuf-c would unpack. False: take
 * the general path. */
bool pt_fast_read(const uint8_t *msg, size_t len, pt_fast_req *out);

/* The Response to it (id, status, detail, replay, and the reservation when
 * there is one, as svc_reserve and svc_confirm/svc_cancel build it): its
 * size (and, in *inner, the reservation's, which the writing needs again),
 * then its bytes into out (at least that size). */
size_t pt_fast_reply_size(const pt_fast_req *q, const pt_result *r, size_t *inner);
void pt_fast_reply(const pt_fast_req *q, const pt_result *r, size_t inner, uint8_t *out);

#endif
