#include "input.h"

#include <stdio.h>
#include <string.h>

void pt_input_apply(pt_engine *e, const pt_input *in, pt_result *r) {
  pt_result scratch;
  if (!r) r = &scratch;
  memset(r, 0, sizeof(*r));
  switch (in->kind) {
  case PT_IN_ADVANCE:
    pt_engine_advance_some(e, in->now, in->value > 0 ? (uint64_t)in->value : in->value ? 0 : PT_DUE_ALL);
    break;
  case PT_IN_CREATE: pt_campaign_create(e, in->now, in->request_id, &in->spec, r); break;
  case PT_IN_UPDATE:
    pt_campaign_update(e, in->now, in->request_id, in->campaign_id, &in->changes, r);
    break;
  case PT_IN_END: pt_campaign_end(e, in->now, in->request_id, in->campaign_id, r); break;
  case PT_IN_RESERVE:
    pt_reserve(e, in->now, in->request_id, in->campaign_id, in->user_id, in->quantity, r);
    break;
  case PT_IN_CONFIRM:
    pt_confirm(e, in->now, in->request_id, in->campaign_id, in->reservation_id, in->user_id, r);
    break;
  case PT_IN_CANCEL:
    pt_cancel(e, in->now, in->request_id, in->campaign_id, in->reservation_id, in->user_id, r);
    break;
  case PT_IN_JOIN:
    pt_join(e, in->now, in->request_id, in->campaign_id, in->user_id, in->mode, in->group_id,
            in->new_user, r);
    break;
  case PT_IN_WINDOW: pt_engine_set_idem_window(e, in->value); break;
  case PT_IN_MAX_REMEMBERED: pt_engine_set_max_remembered(e, (uint64_t)in->value); break;
  case PT_IN_ID_KEY: pt_engine_set_id_key(e, in->id_key, in->id_tag); break;
  case PT_IN_LIMITS: pt_engine_set_limits(e, &in->limits); break;
  }
}

/* ---- encoding ---- */

static void pk_bytes(msgpack_packer *pk, pt_bytes b) {
  msgpack_pack_bin(pk, b.len);
  msgpack_pack_bin_body(pk, b.p, b.len);
}

/* Fields after kind and now, per kind (the digest adds 3 to requests). */
static const unsigned NFIELDS[] = {
    [PT_IN_ADVANCE] = 0, [PT_IN_CREATE] = 14, [PT_IN_UPDATE] = 8, [PT_IN_END] = 2,
    [PT_IN_RESERVE] = 4, [PT_IN_CONFIRM] = 4, [PT_IN_CANCEL] = 4, [PT_IN_JOIN] = 6,
    [PT_IN_WINDOW] = 1, [PT_IN_MAX_REMEMBERED] = 1, [PT_IN_ID_KEY] = 2, [PT_IN_LIMITS] = 4,
};


/* An advance with a budget (value) carries it as a third item; without one
 * it is [kind, now], as journals and captures had it before budgets. */
static bool advance_budgeted(const pt_input *in) { return in->kind == PT_IN_ADVANCE && in->value; }

void pt_input_pack(msgpack_packer *pk, const pt_input *in, const pt_result *r) {
  bool req = pt_input_is_request(in->kind);
  msgpack_pack_array(pk, 2 + NFIELDS[in->kind] + (req ? 3 : 0) + advance_budgeted(in));
  msgpack_pack_uint8(pk, (uint8_t)in->kind);
  msgpack_pack_int64(pk, in->now);
  switch (in->kind) {
  case PT_IN_ADVANCE:
    if (in->value) msgpack_pack_int64(pk, in->value);
    break;
  case PT_IN_CREATE: {
    const pt_campaign_spec *s = &in->spec;
    pk_bytes(pk, in->request_id);
    pk_bytes(pk, s->id);
    msgpack_pack_uint8(pk, (uint8_t)s->kind);
    msgpack_pack_int64(pk, s->start_ms);
    msgpack_pack_int64(pk, s->end_ms);
    msgpack_pack_int64(pk, s->stock);
    msgpack_pack_uint32(pk, s->per_user_limit);
    msgpack_pack_int64(pk, s->hold_ms);
    msgpack_pack_uint8(pk, s->waitlist);
    msgpack_pack_uint32(pk, s->group_size);
    msgpack_pack_int64(pk, s->group_ttl_ms);
    msgpack_pack_uint8(pk, s->new_users_only);
    msgpack_pack_uint32(pk, s->simulate_min_paid);
    msgpack_pack_int64(pk, s->match_margin_ms);
    break;
  }
  case PT_IN_UPDATE: {
    const pt_campaign_changes *u = &in->changes;
    pk_bytes(pk, in->request_id);
    pk_bytes(pk, in->campaign_id);
    msgpack_pack_uint32(pk, u->fields);
    msgpack_pack_int64(pk, u->stock);
    msgpack_pack_int64(pk, u->end_ms);
    msgpack_pack_uint32(pk, u->per_user_limit);
    msgpack_pack_int64(pk, u->hold_ms);
    msgpack_pack_uint8(pk, u->waitlist);
    break;
  }
  case PT_IN_END:
    pk_bytes(pk, in->request_id);
    pk_bytes(pk, in->campaign_id);
    break;
  case PT_IN_RESERVE:
    pk_bytes(pk, in->request_id);
    pk_bytes(pk, in->campaign_id);
    pk_bytes(pk, in->user_id);
    msgpack_pack_int64(pk, in->quantity);
    break;
  case PT_IN_CONFIRM:
  case PT_IN_CANCEL:
    pk_bytes(pk, in->request_id);
    pk_bytes(pk, in->campaign_id);
    msgpack_pack_uint64(pk, in->reservation_id);
    pk_bytes(pk, in->user_id);
    break;
  case PT_IN_JOIN:
    pk_bytes(pk, in->request_id);
    pk_bytes(pk, in->campaign_id);
    pk_bytes(pk, in->user_id);
    msgpack_pack_uint8(pk, (uint8_t)in->mode);
    msgpack_pack_uint64(pk, in->group_id);
    msgpack_pack_uint8(pk, in->new_user);
    break;
  case PT_IN_WINDOW:
  case PT_IN_MAX_REMEMBERED: msgpack_pack_int64(pk, in->value); break;
  case PT_IN_ID_KEY:
    pk_bytes(pk, (pt_bytes){in->id_key, sizeof in->id_key});
    msgpack_pack_uint64(pk, in->id_tag);
    break;
  case PT_IN_LIMITS:
    msgpack_pack_uint64(pk, in->limits.campaigns);
    msgpack_pack_uint64(pk, in->limits.waitlist);
    msgpack_pack_uint64(pk, in->limits.users);
    msgpack_pack_uint64(pk, in->limits.retention_ms);
    break;
  }
  if (req) {
    msgpack_pack_uint8(pk, r ? (uint8_t)r->status : 0);
    msgpack_pack_uint64(pk, r ? r->reservation_id : 0);
    msgpack_pack_uint64(pk, r ? r->group_id : 0);
  }
}

/* ---- decoding ---- */

#define WINDOW_MAX_MS (INT64_C(7) * 24 * 3600 * 1000) /* engine.idempotency_window_ms's (config.c) */

static uint64_t be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

bool pt_input_read_flat(const void *vp, size_t n, size_t *offp, msgpack_object *o,
                        msgpack_object items[PT_INPUT_FLAT_MAX]) {
  const uint8_t *p = vp;
  size_t off = *offp;
  if (off >= n) return false;
  uint8_t h = p[off++];
  uint64_t count;
  if (h >= 0x90 && h <= 0x9f) count = h & 0x0f;
  else if (h == 0xdc && n - off >= 2) count = be(p + off, 2), off += 2;
  else if (h == 0xdd && n - off >= 4) count = be(p + off, 4), off += 4;
  else return false;
  if (count > PT_INPUT_FLAT_MAX) return false;
  for (uint64_t i = 0; i < count; i++) {
    if (off >= n) return false;
    uint8_t b = p[off++];
    msgpack_object *it = &items[i];
    size_t len = 0; /* of a string's or a blob's body */
    if (b <= 0x7f) {
      it->type = MSGPACK_OBJECT_POSITIVE_INTEGER, it->via.u64 = b;
    } else if (b >= 0xe0) {
      it->type = MSGPACK_OBJECT_NEGATIVE_INTEGER, it->via.i64 = (int8_t)b;
    } else if (b == 0xc0) {
      it->type = MSGPACK_OBJECT_NIL;
    } else if (b == 0xc2 || b == 0xc3) {
      it->type = MSGPACK_OBJECT_BOOLEAN, it->via.boolean = b == 0xc3;
    } else if (b >= 0xcc && b <= 0xd3) {
      int w = 1 << ((b - 0xcc) & 3);
      if (n - off < (size_t)w) return false;
      uint64_t v = be(p + off, w);
      off += (size_t)w;
      if (b <= 0xcf) {
        it->type = MSGPACK_OBJECT_POSITIVE_INTEGER, it->via.u64 = v;
      } else { /* signed: as msgpack-c does, a value >= 0 is a positive integer */
        int64_t sv = w == 8 ? (int64_t)v : w == 4 ? (int32_t)v : w == 2 ? (int16_t)v : (int8_t)v;
        if (sv >= 0) it->type = MSGPACK_OBJECT_POSITIVE_INTEGER, it->via.u64 = (uint64_t)sv;
        else it->type = MSGPACK_OBJECT_NEGATIVE_INTEGER, it->via.i64 = sv;
      }
    } else {
      int w;
      if (b >= 0xa0 && b <= 0xbf) w = 0, len = b & 0x1f;
      else if (b == 0xc4 || b == 0xd9) w = 1;
      else if (b == 0xc5 || b == 0xda) w = 2;
      else if (b == 0xc6 || b == 0xdb) w = 4;
      else return false; /* a container, a float, an ext: no input has one */
      if (n - off < (size_t)w) return false;
      if (w) len = (size_t)be(p + off, w), off += (size_t)w;
      if (len > n - off) return false;
      bool bin = b >= 0xc4 && b <= 0xc6;
      it->type = bin ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR;
      if (bin) it->via.bin.ptr = (const char *)p + off, it->via.bin.size = (uint32_t)len;
      else it->via.str.ptr = (const char *)p + off, it->via.str.size = (uint32_t)len;
      off += len;
    }
  }
  o->type = MSGPACK_OBJECT_ARRAY;
  o->via.array.size = (uint32_t)count;
  o->via.array.ptr = items;
  *offp = off;
  return true;
}

bool pt_input_flat(const void *p, size_t n, size_t off) {
  msgpack_object o, items[PT_INPUT_FLAT_MAX];
  return pt_input_read_flat(p, n, &off, &o, items);
}

typedef struct cur {
  const msgpack_object *v;
  uint32_t n, i;
  const char *err;
} cur;

static const msgpack_object *next(cur *c) {
  if (c->err) return NULL;
  if (c->i >= c->n) {
    c->err = "too few fields";
    return NULL;
  }
  return &c->v[c->i++];
}

static int64_t get_i(cur *c) {
  const msgpack_object *o = next(c);
  if (!o) return 0;
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 > INT64_MAX) c->err = "integer out of range";
    return (int64_t)o->via.u64;
  }
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return o->via.i64;
  c->err = "expected an integer";
  return 0;
}

static uint64_t get_u(cur *c) {
  const msgpack_object *o = next(c);
  if (!o) return 0;
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    c->err = "expected an unsigned integer";
    return 0;
  }
  return o->via.u64;
}

static uint32_t get_u32(cur *c) {
  uint64_t v = get_u(c);
  if (v > UINT32_MAX && !c->err) c->err = "integer out of range";
  return (uint32_t)v;
}

static pt_bytes get_bytes(cur *c) {
  const msgpack_object *o = next(c);
  if (!o) return (pt_bytes){0};
  if (o->type != MSGPACK_OBJECT_BIN) {
    c->err = "expected bytes";
    return (pt_bytes){0};
  }
  return (pt_bytes){(const uint8_t *)o->via.bin.ptr, o->via.bin.size};
}

int pt_input_unpack(const msgpack_object *o, pt_input *in, pt_input_digest *d, char *err,
                    size_t errlen) {
  memset(in, 0, sizeof(*in));
  memset(d, 0, sizeof(*d));
  cur c = {0};
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2) {
    snprintf(err, errlen, "an input is not an array of at least 2");
    return -1;
  }
  c.v = o->via.array.ptr;
  c.n = o->via.array.size;
  uint64_t kind = get_u(&c);
  if (kind < PT_IN_ADVANCE || kind > PT_IN_LAST) {
    snprintf(err, errlen, "unknown input kind %llu", (unsigned long long)kind);
    return -1;
  }
  in->kind = (pt_input_kind)kind;
  bool req = pt_input_is_request(in->kind);
  bool budget = kind == PT_IN_ADVANCE && c.n == 3;
  /* a confirm or cancel journaled before holds had owners: no user */
  bool ownerless = (kind == PT_IN_CONFIRM || kind == PT_IN_CANCEL) && c.n == 2 + NFIELDS[kind] + 3 - 1;
  /* limits journaled before campaigns retired: no retention (the default) */
  bool short_limits = kind == PT_IN_LIMITS && c.n == 2 + NFIELDS[kind] - 1;
  if (c.n != 2 + NFIELDS[kind] + (req ? 3 : 0) + budget - ownerless - short_limits) {
    snprintf(err, errlen, "input kind %llu has %u fields", (unsigned long long)kind, c.n);
    return -1;
  }
  /* No clock gives these; the engine adds durations to now and would
   * overflow (a damaged or forged journal or capture, never a daemon). */
  if ((in->now = get_i(&c)) < 0 || in->now > PT_TIME_MAX) c.err = c.err ? c.err : "now out of range";
  switch (in->kind) {
  case PT_IN_ADVANCE:
    if (budget && (in->value = get_i(&c)) < -1 && !c.err) c.err = "an advance's budget must be >= -1";
    break;
  case PT_IN_CREATE: {
    pt_campaign_spec *s = &in->spec;
    in->request_id = get_bytes(&c);
    s->id = in->campaign_id = get_bytes(&c);
    s->kind = (pt_kind)get_u32(&c);
    s->start_ms = get_i(&c);
    s->end_ms = get_i(&c);
    s->stock = get_i(&c);
    s->per_user_limit = get_u32(&c);
    s->hold_ms = get_i(&c);
    s->waitlist = get_u(&c) != 0;
    s->group_size = get_u32(&c);
    s->group_ttl_ms = get_i(&c);
    s->new_users_only = get_u(&c) != 0;
    s->simulate_min_paid = get_u32(&c);
    s->match_margin_ms = get_i(&c);
    break;
  }
  case PT_IN_UPDATE: {
    pt_campaign_changes *u = &in->changes;
    in->request_id = get_bytes(&c);
    in->campaign_id = get_bytes(&c);
    u->fields = get_u32(&c);
    u->stock = get_i(&c);
    u->end_ms = get_i(&c);
    u->per_user_limit = get_u32(&c);
    u->hold_ms = get_i(&c);
    u->waitlist = get_u(&c) != 0;
    break;
  }
  case PT_IN_END:
    in->request_id = get_bytes(&c);
    in->campaign_id = get_bytes(&c);
    break;
  case PT_IN_RESERVE:
    in->request_id = get_bytes(&c);
    in->campaign_id = get_bytes(&c);
    in->user_id = get_bytes(&c);
    in->quantity = get_i(&c);
    break;
  case PT_IN_CONFIRM:
  case PT_IN_CANCEL:
    in->request_id = get_bytes(&c);
    in->campaign_id = get_bytes(&c);
    in->reservation_id = get_u(&c);
    if (!ownerless) in->user_id = get_bytes(&c);
    break;
  case PT_IN_JOIN:
    in->request_id = get_bytes(&c);
    in->campaign_id = get_bytes(&c);
    in->user_id = get_bytes(&c);
    in->mode = (pt_join_mode)get_u32(&c);
    in->group_id = get_u(&c);
    in->new_user = get_u(&c) != 0;
    break;
  case PT_IN_WINDOW: /* as the config allows: now + the window must not overflow */
    if (((in->value = get_i(&c)) < 1 || in->value > WINDOW_MAX_MS) && !c.err)
      c.err = "a window must be 1 ms..7 days";
    break;
  case PT_IN_MAX_REMEMBERED: in->value = get_i(&c); break;
  case PT_IN_ID_KEY: {
    pt_bytes k = get_bytes(&c);
    if (!c.err && k.len != sizeof in->id_key) c.err = "an id key is 16 bytes";
    else if (!c.err) memcpy(in->id_key, k.p, k.len);
    if ((in->id_tag = get_u(&c)) == 0 && !c.err) c.err = "an id key's tag is never 0";
    break;
  }
  case PT_IN_LIMITS:
    in->limits.campaigns = get_u(&c);
    in->limits.waitlist = get_u(&c);
    in->limits.users = get_u(&c);
    if (!short_limits) in->limits.retention_ms = get_u(&c);
    break;
  }
  if (req) {
    d->status = (pt_status)get_u32(&c);
    d->reservation_id = get_u(&c);
    d->group_id = get_u(&c);
  }
  if (c.err) {
    snprintf(err, errlen, "input kind %llu: %s", (unsigned long long)kind, c.err);
    return -1;
  }
  return 0;
}

bool pt_input_same(const pt_input_digest *d, const pt_result *r) {
  return d->status == r->status && d->reservation_id == r->reservation_id &&
         d->group_id == r->group_id;
}

/* ---- whole answers (the capture's, for exact replay) ---- */

#define ANSWER_FIELDS 11

void pt_input_answer_of(const pt_result *r, uint64_t events, pt_input_answer *a) {
  memset(a, 0, sizeof(*a));
  a->events = events;
  if (!r) return;
  a->status = r->status;
  a->replay = r->replay;
  a->opened = r->opened;
  a->reservation_id = r->reservation_id;
  a->group_id = r->group_id;
  a->expires_ms = r->expires_ms;
  a->quantity = r->quantity;
  a->position = r->position;
  a->state = r->state;
  a->group_state = r->group_state;
}

void pt_input_pack_answer(msgpack_packer *pk, const pt_input_answer *a) {
  msgpack_pack_array(pk, ANSWER_FIELDS);
  msgpack_pack_uint8(pk, (uint8_t)a->status);
  msgpack_pack_uint8(pk, a->replay);
  msgpack_pack_uint8(pk, a->opened);
  msgpack_pack_uint64(pk, a->reservation_id);
  msgpack_pack_uint64(pk, a->group_id);
  msgpack_pack_int64(pk, a->expires_ms);
  msgpack_pack_uint32(pk, a->quantity);
  msgpack_pack_uint32(pk, a->position);
  msgpack_pack_uint8(pk, (uint8_t)a->state);
  msgpack_pack_uint8(pk, (uint8_t)a->group_state);
  msgpack_pack_uint64(pk, a->events);
}

int pt_input_unpack_answer(const msgpack_object *o, pt_input_answer *a, char *err, size_t errlen) {
  memset(a, 0, sizeof(*a));
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != ANSWER_FIELDS) {
    snprintf(err, errlen, "an answer is not an array of %d", ANSWER_FIELDS);
    return -1;
  }
  cur c = {.v = o->via.array.ptr, .n = o->via.array.size};
  a->status = (pt_status)get_u32(&c);
  a->replay = get_u(&c) != 0;
  a->opened = get_u(&c) != 0;
  a->reservation_id = get_u(&c);
  a->group_id = get_u(&c);
  a->expires_ms = get_i(&c);
  a->quantity = get_u32(&c);
  a->position = get_u32(&c);
  a->state = (pt_hold_state)get_u32(&c);
  a->group_state = (pt_group_state)get_u32(&c);
  a->events = get_u(&c);
  if (c.err) {
    snprintf(err, errlen, "answer: %s", c.err);
    return -1;
  }
  return 0;
}

const char *pt_input_answer_diff(const pt_input_answer *a, const pt_input_answer *b) {
  if (a->status != b->status) return "status";
  if (a->replay != b->replay) return "replay";
  if (a->reservation_id != b->reservation_id) return "reservation_id";
  if (a->group_id != b->group_id) return "group_id";
  if (a->opened != b->opened) return "opened";
  if (a->quantity != b->quantity) return "quantity";
  if (a->expires_ms != b->expires_ms) return "expires_ms";
  if (a->position != b->position) return "position";
  if (a->state != b->state) return "state";
  if (a->group_state != b->group_state) return "group_state";
  if (a->events != b->events) return "events";
  return NULL;
}

const char *pt_input_kind_name(pt_input_kind k) {
  static const char *const names[] = {
      [PT_IN_ADVANCE] = "advance", [PT_IN_CREATE] = "create", [PT_IN_UPDATE] = "update",
      [PT_IN_END] = "end",         [PT_IN_RESERVE] = "reserve", [PT_IN_CONFIRM] = "confirm",
      [PT_IN_CANCEL] = "cancel",   [PT_IN_JOIN] = "join",       [PT_IN_WINDOW] = "window",
      [PT_IN_MAX_REMEMBERED] = "max_remembered", [PT_IN_ID_KEY] = "id_key", [PT_IN_LIMITS] = "limits",
  };
  return k >= PT_IN_ADVANCE && k <= PT_IN_LAST ? names[k] : "unknown";
}
