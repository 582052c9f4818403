/* What the capture file needs for exact re-decision (capture.h, version
 * 2): each decision as an input record (the journal's encoding of the
 * input, then the whole answer), and a state record (the engine's
 * snapshot) wherever a file begins or the engine was replaced. The packer's
 * buffer is kept between records: no allocation per request. */
#include <errno.h>
#include <msgpack.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "svc.h"

static msgpack_sbuffer rec_buf;
static msgpack_packer rec_pk;

static void on_decision(void *ctx, const pt_input *in, const pt_result *r) {
  pt_service *s = ctx;
  if (!s->capture) return;
  pt_engine_stats st;
  pt_engine_stats_get(s->engine, &st);
  pt_input_answer a;
  pt_input_answer_of(r, st.events - s->capture_events, &a); /* the events this input emitted */
  s->capture_events = st.events;
  rec_buf.size = 0;
  pt_input_pack(&rec_pk, in, r);
  pt_input_pack_answer(&rec_pk, &a);
  uint64_t conn = in->kind == PT_IN_ADVANCE || !s->deciding ? 0 : pt_conn_id(s->deciding);
  pt_capture_write(s->capture, PT_CAP_INPUT, conn, pt_wall_us(), (const uint8_t *)rec_buf.data,
                   rec_buf.size);
}

static int to_sbuffer(void *ctx, const void *p, size_t n) {
  return msgpack_sbuffer_write(ctx, p, n);
}

/* A state record: the snapshot is taken whole first, since the record's
 * header carries its length. Synchronous: at start-up the engine is small
 * or just rebuilt; a rotation of a big capture pauses the loop for it
 * (a 1 GiB capture rotates rarely). */
static void write_state(pt_service *s, pt_capture *c) {
  pt_engine_stats st;
  pt_engine_stats_get(s->engine, &st);
  s->capture_events = st.events;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  if (pt_engine_snapshot(s->engine, to_sbuffer, &sb) ||
      pt_capture_state(c, pt_wall_us(), sb.data, sb.size))
    pt_warn("capture: the engine's state could not be recorded: exact replay of this file will fail");
  msgpack_sbuffer_destroy(&sb);
}

static void on_file_start(void *ctx, pt_capture *c) { write_state(ctx, c); }

int pt_service_capture_open(pt_service *s, const char *path, uint64_t max_bytes) {
  s->capture = pt_capture_open(path, max_bytes);
  if (!s->capture) return -1;
  if (!rec_buf.data) {
    msgpack_sbuffer_init(&rec_buf);
    msgpack_packer_init(&rec_pk, &rec_buf, msgpack_sbuffer_write);
  }
  s->capture->on_start = on_file_start;
  s->capture->on_start_ctx = s;
  write_state(s, s->capture); /* the file began before the hook was set */
  s->turn->trace = on_decision;
  s->turn->trace_ctx = s;
  return 0;
}

/* Is this a Request whose op is a Hello (field 10)? A walk over its
 * top-level keys, without decoding. */
static bool is_hello(const uint8_t *p, size_t n) {
  const uint8_t *end = p + n;
  while (p < end) {
    uint64_t key = 0, v = 0;
    for (int sh = 0; p < end && sh < 64; sh += 7) {
      key |= (uint64_t)(*p & 0x7f) << sh;
      if (!(*p++ & 0x80)) break;
    }
    if (key == (10 << 3 | 2)) return true;
    unsigned wt = key & 7;
    if (wt == 0) {
      while (p < end && (*p++ & 0x80)) {}
    } else if (wt == 1 || wt == 5) {
      p += wt == 1 ? 8 : 4;
    } else if (wt == 2) {
      for (int sh = 0; p < end && sh < 64; sh += 7) {
        v |= (uint64_t)(*p & 0x7f) << sh;
        if (!(*p++ & 0x80)) break;
      }
      if (v > (uint64_t)(end - p)) return false;
      p += v;
    } else {
      return false;
    }
  }
  return false;
}

void pt_service_capture_request(pt_service *s, pt_conn *c, const uint8_t *msg, size_t len) {
  if (!is_hello(msg, len)) {
    pt_capture_write(s->capture, PT_CAP_REQUEST, pt_conn_id(c), pt_wall_us(), msg, len);
    return;
  }
  /* a Hello is recorded without its secret: a capture file is no key store */
  Pintuan__V1__Request *q = pintuan__v1__request__unpack(NULL, len, msg);
  if (!q || q->op_case != PINTUAN__V1__REQUEST__OP_HELLO) {
    if (q) pintuan__v1__request__free_unpacked(q, NULL);
    pt_capture_write(s->capture, PT_CAP_REQUEST, pt_conn_id(c), pt_wall_us(), msg, len);
    return;
  }
  q->hello->has_token = 0;
  uint8_t buf[1024];
  size_t n = pintuan__v1__request__get_packed_size(q);
  if (n <= sizeof buf) {
    pintuan__v1__request__pack(q, buf);
    pt_capture_write(s->capture, PT_CAP_REQUEST, pt_conn_id(c), pt_wall_us(), buf, n);
  }
  pintuan__v1__request__free_unpacked(q, NULL);
}

void pt_service_capture_state(pt_service *s) {
  if (s->capture) write_state(s, s->capture);
}
