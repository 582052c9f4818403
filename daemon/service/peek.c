#include "peek.h"

#include <string.h>

/* One varint, bounds-checked; false if it runs past end or over 64 bits. */
static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

/* Finds length-delimited fields of one message level: for each field number
 * in want[0..n), its bytes (left untouched when absent). False on bad input. */
static bool wire_fields(const uint8_t *p, const uint8_t *end, const uint32_t *want,
                        pt_bytes *out, int n) {
  while (p < end) {
    uint64_t key, v;
    if (!wire_varint(&p, end, &key)) return false;
    switch (key & 7) {
    case 0: if (!wire_varint(&p, end, &v)) return false; break;
    case 1: if (end - p < 8) return false; p += 8; break;
    case 5: if (end - p < 4) return false; p += 4; break;
    case 2:
      if (!wire_varint(&p, end, &v) || v > (uint64_t)(end - p)) return false;
      for (int i = 0; i < n; i++)
        if ((key >> 3) == want[i]) out[i] = (pt_bytes){p, (size_t)v};
      p += v;
      break;
    default: return false;
    }
  }
  return true;
}

bool pt_peek(const uint8_t *msg, size_t len, pt_peek_ids *out) {
  /* Request.reserve (17) and Request.join (22) carry request_id (1),
   * campaign_id (2) and user_id (3) */
  static const uint32_t ops[] = {17, 22}, ids[] = {1, 2, 3};
  pt_bytes body[2] = {{0}}, f[3] = {{0}};
  memset(out, 0, sizeof(*out));
  if (!wire_fields(msg, msg + len, ops, body, 2)) return false;
  const pt_bytes *b = body[0].p ? &body[0] : body[1].p ? &body[1] : NULL;
  if (!b || !wire_fields(b->p, b->p + b->len, ids, f, 3)) return false;
  out->request_id = f[0], out->campaign_id = f[1], out->user_id = f[2];
  return true;
}
