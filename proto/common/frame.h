/* The wire's framing: each frame is a 4-byte big-endian length, then that
 * many bytes (one protobuf message). One home for the length prefix, used
 * by the daemon, the client library, the bench, the capture file and the
 * tests. Big-endian helpers for other fixed-width fields live here too. */
#ifndef PT_FRAME_H
#define PT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define PT_FRAME_HEADER 4

static inline void pt_be32_put(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static inline uint32_t pt_be32_get(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void pt_be64_put(uint8_t *p, uint64_t v) {
  pt_be32_put(p, (uint32_t)(v >> 32));
  pt_be32_put(p + 4, (uint32_t)v);
}
static inline uint64_t pt_be64_get(const uint8_t *p) {
  return (uint64_t)pt_be32_get(p) << 32 | pt_be32_get(p + 4);
}

typedef enum pt_frame_status {
  PT_FRAME_OK,      /* a whole frame: *msg, *len, and it used PT_FRAME_HEADER + *len bytes */
  PT_FRAME_MORE,    /* incomplete: read more */
  PT_FRAME_TOO_BIG, /* its length is over the limit: the stream cannot go on */
} pt_frame_status;

/* The frame at the start of p[0..n), for a limit of max message bytes. */
static inline pt_frame_status pt_frame_next(const uint8_t *p, size_t n, size_t max,
                                            const uint8_t **msg, size_t *len) {
  if (n < PT_FRAME_HEADER) return PT_FRAME_MORE;
  uint32_t l = pt_be32_get(p);
  if (l > max) {
    *len = l;
    return PT_FRAME_TOO_BIG;
  }
  if (n - PT_FRAME_HEADER < l) return PT_FRAME_MORE;
  *msg = p + PT_FRAME_HEADER;
  *len = l;
  return PT_FRAME_OK;
}

#endif
