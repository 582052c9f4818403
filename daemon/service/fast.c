#include "fast.h"

#include <string.h>

/* ---- reading ---- */

static inline bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  if (*p < end && **p < 0x80) { /* one byte: every tag and length here */
    *v = *(*p)++;
    return true;
  }
  *v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

static bool bytes(const uint8_t **p, const uint8_t *end, pt_bytes *out) {
  uint64_t n;
  if (!varint(p, end, &n) || n > (uint64_t)(end - *p)) return false;
  *out = (pt_bytes){*p, (size_t)n};
  *p += n;
  return true;
}

/* The operation's fields: wanted keys (tag bytes) in field order. */
static bool read_op(const uint8_t *p, const uint8_t *end, pt_fast_req *out) {
  bool reserve = out->op == PT_FAST_RESERVE;
  unsigned seen = 0, want = 0x1e; /* fields 1..4: the user is field 3 of Reserve, 4 of Confirm/Cancel */
  while (p < end) {
    uint64_t key, v;
    if (!varint(&p, end, &key)) return false;
    unsigned f = key == 0x0a ? 1 : key == 0x12 ? 2 : (key == 0x1a && reserve) ? 3 : (key == 0x18 && !reserve) ? 3
               : (key == 0x20 && reserve) ? 4 : (key == 0x22 && !reserve) ? 4 : 0;
    if (!f || seen & (1u << f)) return false; /* another field, or one twice */
    seen |= 1u << f;
    if (f == 4 && reserve) {
      if (!varint(&p, end, &v)) return false;
      out->quantity = (int32_t)(uint32_t)v; /* int32: the low 32 bits, as protobuf-c reads them */
    } else if (f == 3 && !reserve) {
      if (!varint(&p, end, &out->reservation_id)) return false;
    } else if (!bytes(&p, end, f == 1 ? &out->request_id : f == 2 ? &out->campaign_id : &out->user_id)) {
      return false;
    }
  }
  /* a confirm or cancel without its user takes the general path, which refuses it */
  return seen == want && (reserve || out->user_id.len);
}

bool pt_fast_read(const uint8_t *p, size_t len, pt_fast_req *out) {
  const uint8_t *end = p + len;
  bool have_id = false;
  memset(out, 0, sizeof(*out));
  while (p < end) {
    uint64_t key;
    if (!varint(&p, end, &key)) return false;
    if (key == 0x08 && !have_id) { /* id */
      if (!varint(&p, end, &out->id)) return false;
      have_id = true;
    } else if ((key == 0x8a || key == 0x92 || key == 0x9a) && !out->op) {
      /* reserve (17), confirm (18), cancel (19): length-delimited */
      out->op = key == 0x8a ? PT_FAST_RESERVE : key == 0x92 ? PT_FAST_CONFIRM : PT_FAST_CANCEL;
      pt_bytes body;
      if (!bytes(&p, end, &body) || !read_op(body.p, body.p + body.len, out)) return false;
    } else {
      return false;
    }
  }
  return have_id && out->op && out->id != 0;
}

/* ---- writing (in field-number order, as protobuf-c packs) ---- */

static inline size_t varint_size(uint64_t v) { /* 7 bits a byte: ceil(bits / 7), at least 1 */
  unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
  return (bits * 9 + 64) / 64;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) *p++ = (uint8_t)(v | 0x80), v >>= 7;
  *p++ = (uint8_t)v;
  return p;
}

/* enums and int32 go out sign-extended to 64 bits, as protobuf-c does */
static uint64_t i32(int64_t v) { return (uint64_t)(int64_t)(int32_t)v; }

/* svc_reserve answers with the reservation when there is one or it is OK;
 * confirm and cancel when there is one */
static bool has_reservation(const pt_fast_req *q, const pt_result *r) {
  return r->reservation_id || (q->op == PT_FAST_RESERVE && r->status == PT_OK);
}

static size_t reservation_size(const pt_fast_req *q, const pt_result *r) {
  size_t n = 1 + varint_size(q->campaign_id.len) + q->campaign_id.len;
  if (r->reservation_id) n += 1 + varint_size(r->reservation_id);
  n += 1 + varint_size(q->user_id.len) + q->user_id.len;
  if (r->quantity) n += 1 + varint_size(r->quantity);
  if (r->state) n += 1 + varint_size(i32(r->state));
  if (r->expires_ms) n += 1 + varint_size((uint64_t)r->expires_ms);
  if (r->position) n += 1 + varint_size(r->position);
  if (r->group_id) n += 1 + varint_size(r->group_id);
  if (r->group_state) n += 1 + varint_size(i32(r->group_state));
  if (r->opened) n += 2;
  return n;
}

size_t pt_fast_reply_size(const pt_fast_req *q, const pt_result *r, size_t *inner) {
  size_t dl = strlen(r->detail);
  size_t n = 1 + varint_size(q->id) + 1 + varint_size(i32(r->status)) + 1 + varint_size(dl) + dl;
  if (r->replay) n += 2;
  *inner = has_reservation(q, r) ? reservation_size(q, r) : 0;
  if (has_reservation(q, r)) n += 1 + varint_size(*inner) + *inner;
  return n;
}

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const void *b, size_t len) {
  *p++ = tag;
  p = put_varint(p, len);
  if (len) memcpy(p, b, len);
  return p + len;
}

void pt_fast_reply(const pt_fast_req *q, const pt_result *r, size_t inner, uint8_t *p) {
  *p++ = 0x08, p = put_varint(p, q->id);
  *p++ = 0x10, p = put_varint(p, i32(r->status));
  p = put_bytes(p, 0x1a, r->detail, strlen(r->detail));
  if (r->replay) *p++ = 0x20, *p++ = 1;
  if (!has_reservation(q, r)) return;
  *p++ = 0x72, p = put_varint(p, inner);
  p = put_bytes(p, 0x0a, q->campaign_id.p, q->campaign_id.len);
  if (r->reservation_id) *p++ = 0x10, p = put_varint(p, r->reservation_id);
  p = put_bytes(p, 0x1a, q->user_id.p, q->user_id.len);
  if (r->quantity) *p++ = 0x20, p = put_varint(p, r->quantity);
  if (r->state) *p++ = 0x28, p = put_varint(p, i32(r->state));
  if (r->expires_ms) *p++ = 0x30, p = put_varint(p, (uint64_t)r->expires_ms);
  if (r->position) *p++ = 0x38, p = put_varint(p, r->position);
  if (r->group_id) *p++ = 0x40, p = put_varint(p, r->group_id);
  if (r->group_state) *p++ = 0x48, p = put_varint(p, i32(r->group_state));
  if (r->opened) *p++ = 0x50, *p++ = 1;
}
