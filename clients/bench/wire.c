/* wire.c: the bench's requests written and its replies read by hand; see
 * wire.h for what and why. Varints are little-endian base 128; a field's
 * key is the varint number << 3 | wire type (0 varint, 1 fixed64, 2 length,
 * 5 fixed32). The body's size is worked out before it is written, field by
 * field, so the op's length prefix goes first and nothing is moved. */
#include "wire.h"

#include <string.h>

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v > 0x7f) v >>= 7, n++;
  return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v) {
  while (v > 0x7f) {
    *o++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *o++ = (uint8_t)v;
  return o;
}

static size_t bytes_len(unsigned field, size_t n) { return varint_len(field << 3) + varint_len(n) + n; }
static size_t uint_len(unsigned field, uint64_t v) { return varint_len(field << 3) + varint_len(v); }

static uint8_t *put_bytes(uint8_t *o, unsigned field, const uint8_t *p, size_t n) {
  o = put_varint(o, field << 3 | 2);
  o = put_varint(o, n);
  memcpy(o, p, n);
  return o + n;
}

static uint8_t *put_uint(uint8_t *o, unsigned field, uint64_t v) {
  return put_varint(put_varint(o, field << 3), v);
}

/* int32 and enums: a negative one takes 10 bytes, as protobuf-c writes it */
static uint64_t i32(int64_t v) { return (uint64_t)(int64_t)(int32_t)v; }

size_t bw_request_bound(const bw_request *q) { return 96 + q->rid_len + q->campaign_len + q->user_len; }

/* The op's message, fields in number order as protobuf-c writes them:
 * its size (o NULL), or written at o (its end). */
static size_t body(uint8_t *o, const bw_request *q) {
  if (!o) {
    size_t n = bytes_len(1, q->rid_len) + bytes_len(2, q->campaign_len);
    switch (q->op) {
    case BW_RESERVE: return n + bytes_len(3, q->user_len) + uint_len(4, i32(q->quantity));
    case BW_CONFIRM:
    case BW_CANCEL: return n + uint_len(3, q->reservation_id) + bytes_len(4, q->user_len);
    default: return n + bytes_len(3, q->user_len) + uint_len(4, i32(q->join_mode)) + uint_len(6, q->new_user != 0);
    }
  }
  uint8_t *s = o;
  o = put_bytes(o, 1, q->rid, q->rid_len);
  o = put_bytes(o, 2, q->campaign, q->campaign_len);
  switch (q->op) {
  case BW_RESERVE:
    o = put_bytes(o, 3, q->user, q->user_len);
    o = put_uint(o, 4, i32(q->quantity));
    break;
  case BW_CONFIRM:
  case BW_CANCEL:
    o = put_uint(o, 3, q->reservation_id);
    o = put_bytes(o, 4, q->user, q->user_len); /* the hold's owner */
    break;
  default: /* BW_JOIN */
    o = put_bytes(o, 3, q->user, q->user_len);
    o = put_uint(o, 4, i32(q->join_mode));
    o = put_uint(o, 6, q->new_user != 0);
  }
  return (size_t)(o - s);
}

size_t bw_request_put(uint8_t *out, uint64_t id, const bw_request *q) {
  uint8_t *o = put_uint(out, 1, id);
  o = put_varint(o, (unsigned)q->op << 3 | 2);
  o = put_varint(o, body(NULL, q));
  o += body(o, q);
  return (size_t)(o - out);
}

/* A varint at *p (before end): its value, *p past it; -1 when cut or too long. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (unsigned s = 0; s < 64 && *p < end; s += 7) {
    uint8_t b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* Past one field of wire type wt at *p; -1 when it does not fit. */
static int skip(const uint8_t **p, const uint8_t *end, unsigned wt, const uint8_t **sub, size_t *sublen) {
  uint64_t n;
  switch (wt) {
  case 0: return get_varint(p, end, &n);
  case 1: n = 8; break;
  case 2:
    if (get_varint(p, end, &n)) return -1;
    break;
  case 5: n = 4; break;
  default: return -1; /* groups and the reserved types: not in this schema */
  }
  if (n > (uint64_t)(end - *p)) return -1;
  *sub = *p, *sublen = (size_t)n;
  *p += n;
  return 0;
}

int bw_reply_get(const uint8_t *p, size_t n, bw_reply *r) {
  const uint8_t *end = p + n;
  *r = (bw_reply){0};
  while (p < end) {
    uint64_t key, v = 0;
    if (get_varint(&p, end, &key) || key >> 3 == 0) return -1;
    unsigned field = (unsigned)(key >> 3), wt = key & 7;
    const uint8_t *val = p, *sub = NULL;
    size_t sublen = 0;
    if (skip(&p, end, wt, &sub, &sublen)) return -1;
    if (wt == 0) get_varint(&val, end, &v);
    if (field == 1 && wt == 0) r->id = v;
    else if (field == 2 && wt == 0) r->status = (uint32_t)v;
    else if (field >= 10 && field <= 17 && wt == 2) {
      r->result = (int)field; /* a oneof: the last one read is the one */
      r->reservation_id = 0;
      if (field != BW_RESULT_RESERVATION) continue;
      for (const uint8_t *q = sub, *qe = sub + sublen; q < qe;) {
        uint64_t k, x = 0;
        if (get_varint(&q, qe, &k) || k >> 3 == 0) return -1;
        const uint8_t *qv = q, *s2;
        size_t l2;
        if (skip(&q, qe, k & 7, &s2, &l2)) return -1;
        if (k == (2 << 3 | 0)) {
          get_varint(&qv, qe, &x);
          r->reservation_id = x;
        }
      }
    }
  }
  return 0;
}

uint64_t bw_first_id(const uint8_t *p, size_t n) {
  uint64_t v;
  if (n < 2 || p[0] != 0x08 || get_varint(&(const uint8_t *){p + 1}, p + n, &v)) return 0;
  return v;
}

size_t bw_u64_dec(char *out, uint64_t v) {
  char t[20];
  size_t n = 0;
  do {
    t[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) out[i] = t[n - 1 - i];
  return n;
}
