/* Traffic capture: every inbound request frame with its arrival time and
 * connection, the reply the daemon sent, and (version 2) every decision the
 * engine made, for pintuan-bench's network replay and pintuan-replay's exact
 * re-decision.
 *
 * File format, version 2 (all integers big-endian):
 *   header  8 bytes "PTCAP\0\0\1", u32 version (2), u32 reserved (0),
 *           i64 created (Unix µs)
 *   record  u8 kind, u8[3] zero, u32 length, u64 connection id,
 *           i64 time (Unix µs), then `length` bytes:
 *     1 request  a pintuan.v1.Request frame as it arrived
 *     2 reply    the pintuan.v1.Response sent for it
 *     3 close    the connection closed (no bytes)
 *     4 input    an engine input as decided: the input as the journal
 *                encodes it (daemon/engine/input.h: kind, engine time,
 *                fields, answer digest), then the whole answer (capture.c
 *                of the daemon's service writes it); connection 0 for the
 *                timer's advances
 *     5 state    the engine's state when this file began: u64 checksum
 *                (pt_cap_checksum of the rest), then the engine's snapshot
 *                (engine.h pt_engine_snapshot): what the inputs after it
 *                apply to. The checksum finds a damaged state before the
 *                engine is rebuilt from it.
 * The file order is the order the daemon processed things in: a request's
 * inputs (an advance to the turn's time first, when it ran due work) follow
 * its request record and precede its reply; replies follow their request on
 * the same connection in order. Version 1 files (kinds 1-3 only) still read.
 * A file is bounded: past max_bytes of records after its state record (the
 * state is the engine's size, not the traffic's) it is renamed FILE.1 (replacing an
 * older one) and a new FILE is started, beginning with a state record, so
 * each file re-decides on its own and about twice max_bytes are kept. The
 * switch is made before a request or a close record (a file may run past
 * max_bytes by the records of one turn), never between a decision and its
 * record. */
#ifndef PT_CAPTURE_H
#define PT_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PT_CAP_VERSION 2
#define PT_CAP_REQUEST 1
#define PT_CAP_REPLY 2
#define PT_CAP_CLOSE 3
#define PT_CAP_INPUT 4
#define PT_CAP_STATE 5
#define PT_CAP_MAX_RECORD (1u << 30) /* a state record holds a whole engine */
#define PT_CAP_HEADER 24
#define PT_CAP_RECORD 24

typedef struct pt_capture {
  FILE *f;
  char *path;
  uint64_t max_bytes, written, rotations;
  uint64_t base; /* where this file's records begin (after its state) */
  /* Called when a file has begun (at open, after a rotation): writes its
   * state record. Optional; set it right after pt_capture_open. */
  void (*on_start)(void *ctx, struct pt_capture *c);
  void *on_start_ctx;
} pt_capture;

/* Returns NULL and sets errno on failure. */
pt_capture *pt_capture_open(const char *path, uint64_t max_bytes);
int pt_capture_write(pt_capture *c, int kind, uint64_t conn, int64_t time_us,
                     const uint8_t *data, size_t len);
/* A record written in pieces: begin with its total length, then exactly
 * that many bytes through pt_capture_append. */
int pt_capture_begin(pt_capture *c, int kind, uint64_t conn, int64_t time_us, size_t len);
int pt_capture_append(pt_capture *c, const void *p, size_t n);
/* A state record: the checksum, then the snapshot's n bytes. */
int pt_capture_state(pt_capture *c, int64_t time_us, const void *snapshot, size_t n);
/* A 64-bit checksum of p[0, n) (not cryptographic: it finds damage). */
uint64_t pt_cap_checksum(const void *p, size_t n);
void pt_capture_close(pt_capture *c);

typedef struct pt_cap_record {
  int kind;
  uint64_t conn;
  int64_t time_us;
  const uint8_t *data; /* the reader's: see pt_cap_read */
  size_t len;
} pt_cap_record;

typedef struct pt_cap_reader {
  FILE *f;
  uint8_t *buf;
  size_t cap;
  int64_t created_us;
  uint32_t version;
  uint64_t offset; /* of the next record */
  uint64_t at;     /* of the record last read */
  uint64_t size;   /* of the file (UINT64_MAX: not a regular file) */
  const uint8_t *map; /* a regular file is read mapped: records point into it */
} pt_cap_reader;

/* 0 on success; -1 with a message in err (not a capture, other version). */
int pt_cap_reader_open(pt_cap_reader *r, const char *path, char *err, size_t errlen);
/* 1: a record; 0: end of file; -1: truncated or corrupt (message in err,
 * with the byte offset of the bad record). rec->data stays valid until the
 * next call, or (when r->map is set) until the reader is closed. */
int pt_cap_read(pt_cap_reader *r, pt_cap_record *rec, char *err, size_t errlen);
void pt_cap_reader_close(pt_cap_reader *r);
/* The snapshot in a state record. 0, or -1 when the record is too short or
 * its checksum does not match. */
int pt_cap_state(const pt_cap_record *rec, const uint8_t **snapshot, size_t *n);

#endif
