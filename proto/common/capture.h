/* Traffic capture: every inbound request frame with its arrival time and
 * connection, and the reply the daemon sent, for replay by pintuan-bench.
 *
 * File format, version 1 (all integers big-endian):
 *   header  8 bytes "PTCAP\0\0\1", u32 version (1), u32 reserved (0),
 *           i64 created (Unix µs)
 *   record  u8 kind (1 request, 2 reply, 3 close), u8[3] zero, u32 length,
 *           u64 connection id, i64 time (Unix µs), then `length` bytes: a
 *           pintuan.v1.Request (kind 1) or Response (kind 2); none for 3.
 * Replies follow their request on the same connection in order. A file is
 * bounded: past max_bytes it is renamed FILE.1 (replacing an older one) and
 * a new FILE is started, so at most twice max_bytes are kept. */
#ifndef PT_CAPTURE_H
#define PT_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PT_CAP_VERSION 1
#define PT_CAP_REQUEST 1
#define PT_CAP_REPLY 2
#define PT_CAP_CLOSE 3
#define PT_CAP_HEADER 24
#define PT_CAP_RECORD 24

typedef struct pt_capture {
  FILE *f;
  char *path;
  uint64_t max_bytes, written, rotations;
} pt_capture;

/* Returns NULL and sets errno on failure. */
pt_capture *pt_capture_open(const char *path, uint64_t max_bytes);
int pt_capture_write(pt_capture *c, int kind, uint64_t conn, int64_t time_us,
                     const uint8_t *data, size_t len);
void pt_capture_close(pt_capture *c);

typedef struct pt_cap_record {
  int kind;
  uint64_t conn;
  int64_t time_us;
  uint8_t *data; /* owned by the reader until the next call */
  size_t len;
} pt_cap_record;

typedef struct pt_cap_reader {
  FILE *f;
  uint8_t *buf;
  size_t cap;
  int64_t created_us;
} pt_cap_reader;

/* 0 on success; -1 with a message in err (not a capture, other version). */
int pt_cap_reader_open(pt_cap_reader *r, const char *path, char *err, size_t errlen);
/* 1: a record; 0: end of file; -1: truncated or corrupt (message in err). */
int pt_cap_read(pt_cap_reader *r, pt_cap_record *rec, char *err, size_t errlen);
void pt_cap_reader_close(pt_cap_reader *r);

#endif
