/* The bench's protobuf wire, by hand, for what it does per request: the
 * four requests it sends (Reserve, Confirm, Cancel, Join, each inside a
 * Request with its id) and the few fields of a Response it reads (id,
 * status, which result, the reservation's id). No size pass, no
 * allocation, no unpack: the bench must cost less than what it measures.
 * Writes what protobuf-c writes for the same message, byte for byte, and
 * reads any valid encoding (test_bench_core checks both against
 * protobuf-c). Everything else goes through protobuf-c. */
#ifndef PT_BENCH_WIRE_H
#define PT_BENCH_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* The ops, numbered as their field in Request. */
enum { BW_RESERVE = 17, BW_CONFIRM = 18, BW_CANCEL = 19, BW_JOIN = 22 };
enum { BW_RESULT_RESERVATION = 14, BW_RESULT_EVENT = 16 }; /* Response's result fields */

typedef struct bw_request {
  int op; /* BW_* */
  const uint8_t *rid, *campaign, *user; /* user: every op (Confirm/Cancel: the owner) */
  size_t rid_len, campaign_len, user_len;
  uint64_t reservation_id; /* Confirm, Cancel */
  uint32_t quantity;       /* Reserve */
  int join_mode;           /* Join: JoinMode */
  int new_user;            /* Join */
} bw_request;

/* Most bytes bw_request_put writes for q (its length prefix aside). */
size_t bw_request_bound(const bw_request *q);
/* Writes Request{id, op: q} at out (room for bw_request_bound); its length. */
size_t bw_request_put(uint8_t *out, uint64_t id, const bw_request *q);

typedef struct bw_reply {
  uint64_t id, reservation_id; /* reservation_id: with a Reservation result */
  uint32_t status;             /* 0 when absent */
  int result;                  /* the result's field number, 0 for none */
} bw_reply;

/* Reads a Response's fields above from p[0..n); 0, or -1 if p is not a
 * well-formed message. */
int bw_reply_get(const uint8_t *p, size_t n, bw_reply *r);

/* Field 1 as a varint when it comes first (what every encoder here does),
 * else 0: the request id for the floor server, the reply id for its client. */
uint64_t bw_first_id(const uint8_t *p, size_t n);

/* Decimal digits of v at out (no terminator); how many (at most 20). */
size_t bw_u64_dec(char *out, uint64_t v);

#endif
