/* The mirror's connection to Redis, the lease, and the journal appends.
 *
 * One hiredis connection carries everything, in order: the lease (acquire
 * as a standby, renew as the primary, every third of its time to live),
 * the journal appends, recovery's reads. Replies come back in order, so
 * acknowledgements release sealed output in order too.
 *
 * Appends: a turn that changed something ends with its inputs and events in
 * the open record, which goes to Redis at once if fewer than max_inflight
 * records are in flight. Otherwise later turns join it, and it goes when an
 * acknowledgement frees a slot: one Redis Function call for all of them.
 * Redis' cost is per call (a wake-up, the Lua, the AOF write), so this is
 * what keeps it small when the daemon is busy. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "clock.h"
#include "functions.h"
#include "log.h"
#include "mirror_int.h"
#include "redis_uv.h"
#include "xalloc.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

static void connect_now(pt_mirror *m);
static void closed_one(pt_mirror *m);
static void pump(pt_mirror *m);
static void on_append(redisAsyncContext *ac, void *reply, void *priv);
static void send_now(pt_mirror *m);

/* Bytes of the open record (not sent yet). */
static size_t open_bytes(const pt_mirror *m) { return m->rec.size - PT_RECORD_HEAD + m->evlen; }
/* Bytes of records Redis has not acknowledged: the open one, and in flight. */
static size_t unacked(const pt_mirror *m) { return open_bytes(m) + m->inflight_bytes; }
static void tick_soon(pt_mirror *m);

int64_t mirror_now(const pt_mirror *m) { return (int64_t)uv_now(m->loop); }

const char *pt_role_name(pt_role r) {
  switch (r) {
  case PT_ROLE_CONNECTING: return "connecting";
  case PT_ROLE_STANDBY: return "standby";
  case PT_ROLE_RECOVERING: return "recovering";
  case PT_ROLE_PRIMARY: return "primary";
  case PT_ROLE_UNAVAILABLE: return "unavailable";
  case PT_ROLE_FAILED: return "failed";
  case PT_ROLE_REFUSED: return "refused";
  }
  return "?";
}

pt_mirror_mode pt_mirror_mode_parse(const char *s) {
  if (!strcmp(s, "durable")) return PT_MIRROR_DURABLE;
  if (!strcmp(s, "async")) return PT_MIRROR_ASYNC;
  if (!strcmp(s, "off")) return PT_MIRROR_OFF;
  return (pt_mirror_mode)-1;
}

const char *pt_mirror_mode_name(pt_mirror_mode mode) {
  return mode == PT_MIRROR_DURABLE ? "durable" : mode == PT_MIRROR_ASYNC ? "async" : "off";
}

static void set_role(pt_mirror *m, pt_role r, const char *why) {
  if (m->role == r) return;
  pt_info("mirror role=%s previous=%s epoch=%" PRIu64 " reason=\"%s\"", pt_role_name(r),
          pt_role_name(m->role), m->epoch, why);
  m->role = r;
}

/* ---- the turn's record ---- */

static void record_reset(pt_mirror *m) {
  static const char room[PT_RECORD_HEAD];
  msgpack_sbuffer_clear(&m->rec);
  msgpack_sbuffer_write(&m->rec, room, PT_RECORD_HEAD); /* the header, written when sent */
  m->rec_inputs = m->turn_mark = 0;
  m->evlen = 0;
  m->nev = 0;
  m->open_seq = 0;
}

void pt_mirror_record(pt_mirror *m, const pt_input *in, const pt_result *r) {
  if (m->role != PT_ROLE_PRIMARY) return; /* nothing is decided elsewhere (see refuses) */
  pt_input_pack(&m->pk, in, r);
  m->rec_inputs++;
  /* A big turn sends its record in parts as it goes, so that Redis works
   * on one while the loop decides the next (the turn's output is sealed
   * behind the last). */
  if (m->rec.size >= RECORD_PART_BYTES) send_now(m);
}

static const char *event_name(pt_event_type t) {
  switch (t) {
  case PT_EV_HOLD_EXPIRED: return "HOLD_EXPIRED";
  case PT_EV_WAITLIST_GRANTED: return "WAITLIST_GRANTED";
  case PT_EV_WAITLIST_DROPPED: return "WAITLIST_DROPPED";
  case PT_EV_GROUP_COMPLETED: return "GROUP_COMPLETED";
  case PT_EV_GROUP_FAILED: return "GROUP_FAILED";
  case PT_EV_SEAT_EXPIRED: return "SEAT_EXPIRED";
  }
  return "UNKNOWN";
}

/* Appends one field (bytes, then a NUL not counted) to the turn's events. */
static void ev_field(pt_mirror *m, const void *p, size_t n) {
  if (m->evlen + n + 1 > m->evcap) {
    m->evcap = (m->evlen + n + 1) * 2;
    m->ev = pt_xrealloc(m->ev, m->evcap);
  }
  memcpy(m->ev + m->evlen, p, n);
  m->ev[m->evlen + n] = 0;
  m->evlen += n + 1;
  if (m->nev * EVENT_FIELDS >= m->evszcap * 1u) { /* room for this event's sizes */
    m->evszcap = m->evszcap ? m->evszcap * 2 : 64 * EVENT_FIELDS;
    m->evsz = pt_xrealloc(m->evsz, m->evszcap * sizeof(*m->evsz));
  }
}

static void ev_str(pt_mirror *m, unsigned *k, const char *s, size_t n) {
  ev_field(m, s, n);
  m->evsz[m->nev * EVENT_FIELDS + (*k)++] = n;
}

static void ev_num(pt_mirror *m, unsigned *k, long long v) {
  char b[24];
  ev_str(m, k, b, (size_t)snprintf(b, sizeof b, "%lld", v));
}

static void ev_id(pt_mirror *m, unsigned *k, uint64_t v) { /* ids use all 64 bits */
  char b[24];
  ev_str(m, k, b, (size_t)snprintf(b, sizeof b, "%" PRIu64, v));
}

void pt_mirror_event(pt_mirror *m, const pt_event *ev) {
  if (m->role != PT_ROLE_PRIMARY) return;
  if ((m->nev + 1) * EVENT_FIELDS > m->evszcap) {
    m->evszcap = m->evszcap ? m->evszcap * 2 : 64 * EVENT_FIELDS;
    while ((m->nev + 1) * EVENT_FIELDS > m->evszcap) m->evszcap *= 2;
    m->evsz = pt_xrealloc(m->evsz, m->evszcap * sizeof(*m->evsz));
  }
  unsigned k = 0;
  const char *name = event_name(ev->type);
  ev_id(m, &k, ev->seq);
  ev_str(m, &k, name, strlen(name));
  ev_num(m, &k, ev->at_ms);
  ev_str(m, &k, (const char *)ev->campaign_id.p, ev->campaign_id.len);
  ev_str(m, &k, (const char *)ev->user_id.p, ev->user_id.len);
  ev_id(m, &k, ev->reservation_id);
  ev_num(m, &k, ev->quantity);
  ev_num(m, &k, ev->expires_ms);
  ev_id(m, &k, ev->group_id);
  ev_num(m, &k, ev->simulated);
  /* members as "LEN:ID" pairs: ids are bytes, any separator could be in one */
  size_t total = 0;
  char num[16];
  for (size_t i = 0; i < ev->n_members; i++)
    total += (size_t)snprintf(num, sizeof num, "%zu:", ev->members[i].len) + ev->members[i].len;
  char *buf = pt_xmalloc(total + 1);
  size_t off = 0;
  for (size_t i = 0; i < ev->n_members; i++) {
    off += (size_t)snprintf(buf + off, total + 1 - off, "%zu:", ev->members[i].len);
    memcpy(buf + off, ev->members[i].p, ev->members[i].len);
    off += ev->members[i].len;
  }
  ev_str(m, &k, buf, off);
  free(buf);
  m->nev++;
}

/* Sends the open record as one pintuan_append: the FCALL's arguments point
 * into the record (hiredis copies them into its output buffer). */
static void send_open(pt_mirror *m) {
  pt_record_head((uint8_t *)m->rec.data, m->epoch, m->open_seq);
  char seq_s[24], maxlen_s[24];
  snprintf(seq_s, sizeof seq_s, "%" PRIu64, m->open_seq);
  snprintf(maxlen_s, sizeof maxlen_s, "%" PRIu64, m->cfg.events_maxlen);
  size_t argc = 3 + 4 + 5 + m->nev * EVENT_FIELDS;
  if (argc > m->argcap) {
    m->argcap = argc * 2;
    m->argv = pt_xrealloc(m->argv, m->argcap * sizeof(*m->argv));
    m->argvlen = pt_xrealloc(m->argvlen, m->argcap * sizeof(*m->argvlen));
  }
  size_t i = 0;
#define ARG(s, n) (m->argv[i] = (s), m->argvlen[i++] = (n))
#define ARGS(s) ARG((s), strlen(s))
  ARGS("FCALL");
  ARGS("pintuan_append");
  ARGS("4");
  ARGS(m->key_lease);
  ARGS(m->key_journal);
  ARGS(m->key_events);
  ARGS(m->key_seq);
  ARGS(m->cfg.node_id);
  ARGS(m->epoch_s);
  ARGS(seq_s);
  ARG(m->rec.data, m->rec.size);
  ARGS(maxlen_s);
  const char *e = m->ev;
  for (unsigned k = 0; k < m->nev * EVENT_FIELDS; k++) {
    ARG(e, m->evsz[k]);
    e += m->evsz[k] + 1;
  }
#undef ARG
#undef ARGS
  size_t bytes = open_bytes(m);
  if (redisAsyncCommandArgv(m->ac, on_append, (void *)(uintptr_t)m->open_seq, (int)argc, m->argv,
                            m->argvlen) == REDIS_OK) {
    m->flight[(m->flight_head + m->inflight) % m->cfg.max_inflight] =
        (flying){.bytes = bytes, .made_ns = m->open_ns, .sent_ns = pt_mono_ns()};
    m->inflight_bytes += bytes;
    m->inflight++;
    m->st.appended++;
    m->st.bytes += bytes;
  } /* else the connection is going: its disconnect callback puts the mirror in doubt */
  pt_histo_add(&m->st.batch, m->rec_inputs, 1);
  m->since_snapshot += bytes;
  record_reset(m);
}

/* The open record's sequence, given it now if it had none. */
static uint64_t open_record_seq(pt_mirror *m) {
  if (!m->open_seq) {
    m->open_seq = ++m->last_seq;
    m->open_ns = pt_mono_ns();
  }
  return m->open_seq;
}

uint64_t pt_mirror_end_turn(pt_mirror *m) {
  if (m->role != PT_ROLE_PRIMARY) {
    record_reset(m);
    return 0;
  }
  uint64_t seal = 0;
  if (m->rec_inputs + m->nev != m->turn_mark) { /* this turn changed something */
    m->turn_mark = m->rec_inputs + m->nev;
    seal = open_record_seq(m);
    m->st.turns_held++;
    pump(m);
    pt_redis_flush(m->ac); /* the append leaves before the loop sleeps, not a turn later */
  } else if (m->acked_seq < m->last_seq) {
    seal = m->last_seq; /* decided on state not yet acknowledged: behind it */
  }
  if (unacked(m) > m->cfg.max_backlog && !m->backlog_full) { /* once per episode */
    m->backlog_full = true;
    pt_warn("mirror backlog full: %zu bytes wait for Redis (max_backlog_bytes %llu); mutations "
            "are answered OVERLOADED until it drains",
            unacked(m), (unsigned long long)m->cfg.max_backlog);
  }
  return m->cfg.mode == PT_MIRROR_DURABLE ? seal : 0;
}

/* ---- appends ---- */

static void on_append(redisAsyncContext *ac, void *reply, void *priv) {
  pt_mirror *m = ac->data;
  redisReply *r = reply;
  uint64_t seq = (uint64_t)(uintptr_t)priv;
  if (!r) return; /* the connection went: the disconnect callback decides */
  if (m->inflight) {
    const flying *f = &m->flight[m->flight_head];
    m->inflight_bytes -= f->bytes;
    pt_histo_add(&m->st.append_us, (uint64_t)(pt_mono_ns() - f->sent_ns) / 1000, 1);
    m->flight_head = (m->flight_head + 1) % m->cfg.max_inflight;
    m->inflight--;
  }
  if (seq <= m->acked_seq) { /* from before a doubt: already written off */
    if (r->type == REDIS_REPLY_ERROR) {
      /* what the doubt foresaw (a deposed primary's appends are fenced):
       * the first of an episode logged, every one counted */
      if (m->st.appends_refused++ == m->refused_logged)
        pt_warn("mirror append of record %" PRIu64 " refused after the doubt: %.*s (its replies were "
                "never sent)", seq, (int)r->len, r->str);
    }
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    m->st.appends_refused++;
    char why[160];
    snprintf(why, sizeof why, "append of record %" PRIu64 " refused: %.*s", seq, (int)r->len, r->str);
    mirror_doubt(m, why, strncmp(r->str, "FENCED", 6) == 0);
    return;
  }
  m->acked_seq = seq;
  if (seq > m->known.seq) m->known.seq = seq;
  m->st.acked++;
  if (m->hooks.release) m->hooks.release(m->hooks.ctx, seq);
  pump(m);
}

/* Sends the open record if a slot is free (it may hold part of the turn
 * in progress: that turn's output is sealed behind it all the same), then
 * starts a snapshot if one is due: with nothing unsent, the engine's state
 * is exactly the journal up to last_seq. */
static void send_if_free(pt_mirror *m) {
  if (!m->ready || m->role != PT_ROLE_PRIMARY || m->inflight >= m->cfg.max_inflight) return;
  send_open(m);
  snapshot_maybe_start(m);
}

/* Mid-turn: the record so far goes now, under a sequence of its own. */
static void send_now(pt_mirror *m) {
  if (!m->ready || m->inflight >= m->cfg.max_inflight) return;
  open_record_seq(m);
  uint64_t sent = m->st.appended;
  send_if_free(m);
  m->st.parts += m->st.appended - sent;
  pt_redis_flush(m->ac);
}

static void pump(pt_mirror *m) {
  if (m->open_seq) send_if_free(m);
  if (m->backlog_full && unacked(m) <= m->cfg.max_backlog) {
    m->backlog_full = false;
    pt_info("mirror backlog drained to %zu bytes: mutations accepted again", unacked(m));
  }
}

/* Stop deciding and acknowledging: what was in flight is written off (its
 * replies are dropped with their connections), the lease is forgotten. */
static void stop_serving(pt_mirror *m, const char *why) {
  m->refused_logged = m->st.appends_refused;
  bool serving = m->role == PT_ROLE_PRIMARY || m->role == PT_ROLE_RECOVERING;
  recovery_abort(m);
  record_reset(m);
  m->backlog_full = false;
  m->acked_seq = m->last_seq;
  if (serving) {
    m->st.step_downs++;
    if (m->hooks.stepped_down) m->hooks.stepped_down(m->hooks.ctx, why);
  }
  m->epoch = 0;
  m->leader[0] = 0; /* who serves now: the next acquisition attempt says */
  m->lease_waiting = false;
  uv_timer_stop(&m->lease_end);
}

void mirror_doubt(pt_mirror *m, const char *why, bool fenced) {
  pt_warn("mirror in doubt: %s; no more acknowledgements until rebuilt from Redis", why);
  stop_serving(m, why);
  set_role(m, fenced ? PT_ROLE_STANDBY : PT_ROLE_UNAVAILABLE, why);
  tick_soon(m);
}

void mirror_refuse(pt_mirror *m, const char *code, const char *why) {
  bool again = m->role == PT_ROLE_REFUSED && !strcmp(m->refusal_code, code) && strstr(m->refusal, why);
  stop_serving(m, why);
  snprintf(m->refusal_code, sizeof m->refusal_code, "%s", code);
  if (!again) { /* once per reason: it is checked again every tick */
    snprintf(m->refusal, sizeof m->refusal, "shard %s refused: %s", m->cfg.shard, why);
    m->st.refusals++;
    pt_error("mirror %s. Nothing is served: the shard waits for an operator (the Redis that held "
             "it back, or pintuand --accept-loss to start a new incarnation from what Redis holds; "
             "deploy/README.md)", m->refusal);
  }
  set_role(m, PT_ROLE_REFUSED, why);
}

/* An error reply "REFUSED CODE why": the shard is refused (true). */
static bool refused_reply(pt_mirror *m, const redisReply *r) {
  if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "REFUSED ", 8)) return false;
  char code[16] = "", why[360];
  const char *rest = r->str + 8, *sp = strchr(rest, ' ');
  size_t n = sp ? (size_t)(sp - rest) : strlen(rest);
  snprintf(code, sizeof code, "%.*s", (int)n, rest);
  snprintf(why, sizeof why, "%s", sp ? sp + 1 : "");
  mirror_refuse(m, code, why);
  return true;
}

/* What may wait for Redis before due work does: a few records' worth.
 * Redis appends a mass expiry's events at ~110k/s (~4.4 MB/s of records:
 * an XADD each), the lease's renewal queues behind whatever was sent, and
 * so does every reply of a turn that changed something; 32 MB of them
 * (half the default max_backlog) kept a renewal waiting past a 3 s lease.
 * 1 MiB is ~0.25 s of that. A stampede's own records (~70 B a request,
 * 8,192 in flight: ~0.5 MB) stay below it. */
#define DUE_BACKLOG_BYTES (1u << 20)

bool pt_mirror_backlogged(const pt_mirror *m) {
  size_t limit = m->cfg.max_backlog / 2 < DUE_BACKLOG_BYTES ? m->cfg.max_backlog / 2 : DUE_BACKLOG_BYTES;
  return unacked(m) > limit;
}

/* The primary's address when this daemon is not it: "" if unknown. */
static const char *other_leader(const pt_mirror *m) {
  return strcmp(m->leader, m->cfg.advertise) ? m->leader : "";
}

/* Is the lease surely still ours by this daemon's own clock? The loop's
 * time is read after every wait for I/O (so a process resumed from SIGSTOP
 * sees how long it slept before it answers anything), but a long turn
 * ages it: close to the end, the clock is read again. */
bool mirror_lease_held(pt_mirror *m) {
  if (m->lease_ok_until - mirror_now(m) > m->cfg.lease_ms / 4) return true;
  uv_update_time(m->loop);
  return mirror_now(m) < m->lease_ok_until;
}

const char *pt_mirror_refuses(pt_mirror *m, bool mutation, pt_status *st, const char **leader) {
  *leader = NULL;
  switch (m->role) {
  case PT_ROLE_PRIMARY:
    if (!mirror_lease_held(m)) { /* the timer steps down; nothing is answered meanwhile */
      tick_soon(m);
      *st = PT_UNAVAILABLE;
      return "the lease may have ended and was not renewed in time: retry shortly";
    }
    if (mutation && unacked(m) > m->cfg.max_backlog) {
      *st = PT_OVERLOADED;
      return "the mirror's backlog toward Redis is full: retry shortly";
    }
    return NULL;
  case PT_ROLE_RECOVERING:
    *st = PT_UNAVAILABLE;
    return "rebuilding from Redis: retry shortly";
  case PT_ROLE_FAILED:
    *st = PT_UNAVAILABLE;
    return "rebuilding from Redis failed (a damaged snapshot, or a journal that does not replay as recorded): see the daemon's log";
  case PT_ROLE_REFUSED:
    *st = PT_UNAVAILABLE;
    return m->refusal;
  default: /* standby, connecting, unavailable */
    if (*other_leader(m)) {
      *st = PT_NOT_LEADER;
      *leader = other_leader(m);
      return m->role == PT_ROLE_STANDBY ? "this daemon is a standby: send to the primary"
                                        : "this daemon cannot reach Redis: send to the primary";
    }
    *st = PT_UNAVAILABLE;
    return m->role == PT_ROLE_STANDBY ? "this daemon is a standby and the primary is not known yet: retry shortly"
                                      : "Redis is unreachable: nothing is answered until it answers";
  }
}

/* ---- the lease ---- */

/* How long the lease is surely ours after a renewal was sent: its time to
 * live, less a margin for the two clocks running at different rates (Redis
 * counts the ttl from when it got the renewal, later than we sent it, but
 * by its own clock). A tenth: far beyond any real drift, and still a
 * renewal interval (a third) away from stepping down. */
static int64_t lease_valid_ms(const pt_mirror *m) { return m->cfg.lease_ms - m->cfg.lease_ms / 10; }

static void on_lease_end(uv_timer_t *t);
static void lease_work(pt_mirror *m);

/* How long past the lease's end (by our clock) an answer to a renewal may
 * still come: a renewal Redis answers 1 proves the lease never lapsed (a
 * lapsed key is gone, and taking it again makes a new epoch), so one that
 * was only slow (queued behind a recovery's reads, a busy Redis) keeps
 * this daemon the primary without a step-down and a rebuild. Meanwhile
 * nothing is answered (mirror_lease_held). One lease, then it steps down. */
static int64_t lease_grace_ms(const pt_mirror *m) { return m->cfg.lease_ms; }

/* The lease was renewed (or gained) by a request sent at loop time sent. */
static void lease_extend(pt_mirror *m, int64_t sent) {
  m->lease_ok_until = sent + lease_valid_ms(m);
  int64_t left = m->lease_ok_until - mirror_now(m);
  if (m->lease_waiting && left > 0) {
    m->lease_waiting = false;
    pt_info("mirror lease renewed after all epoch=%" PRIu64 ": answering again", m->epoch);
  }
  uv_timer_start(&m->lease_end, on_lease_end, left > 0 ? (uint64_t)left : 0, 0);
}

/* The lease may have ended by our clock: nothing is answered from now on
 * (mirror_lease_held says no) until a renewal comes back, for at most the
 * grace; then this daemon steps down, not at the next tick. */
static void on_lease_end(uv_timer_t *t) {
  pt_mirror *m = t->data;
  if (m->stopping || (m->role != PT_ROLE_PRIMARY && m->role != PT_ROLE_RECOVERING)) return;
  if (mirror_lease_held(m)) { /* renewed meanwhile: wait for the new end */
    lease_extend(m, m->lease_ok_until - lease_valid_ms(m));
    return;
  }
  int64_t late = mirror_now(m) - m->lease_ok_until;
  /* renewals that come back, each too late to answer by, would keep the
   * lease from the standby while this daemon answers nothing: three leases */
  bool too_long = m->lease_waiting && mirror_now(m) - m->lease_wait_since > 3 * m->cfg.lease_ms;
  if (late < lease_grace_ms(m) && !too_long) {
    if (!m->lease_waiting) {
      m->lease_waiting = true;
      m->lease_wait_since = mirror_now(m);
      m->st.lease_waits++;
      pt_warn("mirror lease expired by this daemon's clock epoch=%" PRIu64 ": nothing is answered until "
              "a renewal comes back (for %" PRId64 " ms at most)", m->epoch, lease_grace_ms(m));
    }
    lease_work(m); /* a renewal in flight, if none is */
    uv_timer_start(&m->lease_end, on_lease_end, (uint64_t)(lease_grace_ms(m) - late), 0);
    return;
  }
  pt_warn("mirror lease expired by this daemon's clock epoch=%" PRIu64 ": no renewal came back in time",
          m->epoch);
  mirror_doubt(m, "the lease could not be renewed in time", false);
}

/* The incarnation Redis holds (the acquisition's reply): adopted when this
 * daemon knew none, or when it is newer (an operator's --accept-loss). */
static void adopt(pt_mirror *m, const redisReply *id, const redisReply *created) {
  if (id->type != REDIS_REPLY_STRING || created->type != REDIS_REPLY_STRING) return;
  int64_t c = strtoll(created->str, NULL, 10);
  if (!strcmp(m->known.id, id->str) && m->known.created_ms == c) return;
  if (m->known.id[0])
    pt_warn("mirror shard %s: adopting incarnation %s (created_ms %" PRId64 "), which replaced %s "
            "(pintuand --accept-loss): what Redis lost is lost, ids handed out before are "
            "NOT_FOUND", m->cfg.shard, id->str, c, m->known.id);
  else
    pt_info("mirror shard %s incarnation %s (created_ms %" PRId64 ")", m->cfg.shard, id->str, c);
  snprintf(m->known.id, sizeof m->known.id, "%.39s", id->str);
  m->known.created_ms = c;
  follow_drop(m); /* of another incarnation, if any */
  m->known.epoch = m->known.seq = 0; /* of the old incarnation: nothing to compare with */
}

static void on_acquire(redisAsyncContext *ac, void *reply, void *priv) {
  pt_mirror *m = ac->data;
  redisReply *r = reply;
  int64_t sent = (int64_t)(intptr_t)priv;
  m->acquire_pending = false;
  if (!r || m->stopping) return;
  if (refused_reply(m, r)) return;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 6 || r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[4]->type != REDIS_REPLY_INTEGER) {
    pt_warn("mirror: lease acquisition failed: %.*s", r->type == REDIS_REPLY_ERROR ? (int)r->len : 0,
            r->type == REDIS_REPLY_ERROR ? r->str : "");
    return;
  }
  if (m->role == PT_ROLE_REFUSED) {
    pt_info("mirror shard %s is served again (%s)", m->cfg.shard, m->refusal_code);
    m->refusal[0] = m->refusal_code[0] = 0;
    set_role(m, PT_ROLE_CONNECTING, "Redis holds what this daemon knew again");
  }
  adopt(m, r->element[2], r->element[3]);
  long long epoch = r->element[0]->integer;
  uint64_t lease_epoch = (uint64_t)r->element[4]->integer;
  uint64_t seq = r->element[5]->type == REDIS_REPLY_STRING ? strtoull(r->element[5]->str, NULL, 10) : 0;
  if (lease_epoch > m->known.epoch) m->known.epoch = lease_epoch;
  if (seq > m->known.seq) m->known.seq = seq; /* a standby learns how far the journal went */
  redisReply *a = r->element[1];
  if (a->type == REDIS_REPLY_STRING) {
    bool moved = m->role == PT_ROLE_STANDBY && m->leader[0] &&
                 (strlen(m->leader) != a->len || memcmp(m->leader, a->str, a->len));
    snprintf(m->leader, sizeof m->leader, "%.*s", (int)a->len, a->str);
    if (moved && epoch == 0) pt_info("mirror standby follows the primary at %s now", m->leader);
  }
  if (epoch == 0) {
    if (m->role != PT_ROLE_STANDBY) {
      char why[PT_HOST_MAX + 128];
      snprintf(why, sizeof why, "another daemon holds the lease: following the primary at %s", m->leader);
      set_role(m, PT_ROLE_STANDBY, why);
    }
    return;
  }
  if (m->role != PT_ROLE_STANDBY && m->role != PT_ROLE_UNAVAILABLE && m->role != PT_ROLE_CONNECTING)
    return;
  m->epoch = (uint64_t)epoch;
  m->st.epoch = m->epoch;
  snprintf(m->epoch_s, sizeof m->epoch_s, "%" PRIu64, m->epoch);
  lease_extend(m, sent); /* from when we asked, as a renewal */
  pt_info("mirror lease gained epoch=%" PRIu64 " node=%s", m->epoch, m->cfg.node_id);
  set_role(m, PT_ROLE_RECOVERING, "lease gained");
  mirror_save_known(m);
  recovery_start(m);
}

static void on_renew(redisAsyncContext *ac, void *reply, void *priv) {
  pt_mirror *m = ac->data;
  redisReply *r = reply;
  int64_t sent = (int64_t)(intptr_t)priv;
  m->renew_pending = false;
  if (!r || m->stopping) return;
  if (m->role != PT_ROLE_PRIMARY && m->role != PT_ROLE_RECOVERING) return;
  if (refused_reply(m, r)) return;
  if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
    lease_extend(m, sent); /* valid for a ttl from when we asked */
    return;
  }
  pt_warn("mirror lease lost epoch=%" PRIu64, m->epoch);
  mirror_doubt(m, "the lease was lost", true);
}

static void lease_work(pt_mirror *m) {
  if (!m->ready || m->stopping) return;
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%" PRId64, m->cfg.lease_ms);
  if (m->role == PT_ROLE_PRIMARY || m->role == PT_ROLE_RECOVERING) {
    if (!mirror_lease_held(m) && mirror_now(m) - m->lease_ok_until >= lease_grace_ms(m)) {
      mirror_doubt(m, "the lease could not be renewed in time", false); /* nor within the grace */
      return;
    }
    if (m->renew_pending) return;
    m->renew_pending = true;
    /* the journal as acknowledged must still be there: a Redis restarted
     * from an older copy under a live lease is noticed within a renewal */
    redisAsyncCommand(m->ac, on_renew, (void *)(intptr_t)mirror_now(m),
                      "FCALL pintuan_renew_checked 3 %s %s %s %s %s %s %s %" PRIu64, m->key_lease,
                      m->key_shard, m->key_seq, m->cfg.node_id, m->epoch_s, ttl, m->known.id,
                      m->acked_seq);
  } else if (m->role != PT_ROLE_FAILED && !m->acquire_pending) {
    m->acquire_pending = true;
    const pt_shard_known *k = &m->known;
    redisAsyncCommand(m->ac, on_acquire, (void *)(intptr_t)mirror_now(m),
                      "FCALL pintuan_acquire_checked 4 %s %s %s %s %s %s %s %s %" PRId64 " %" PRIu64
                      " %" PRIu64 " %s",
                      m->key_lease, m->key_epoch, m->key_shard, m->key_seq, m->cfg.node_id,
                      m->cfg.advertise, ttl, k->id, k->created_ms, k->epoch, k->seq, m->adopt_id);
  }
}

/* ---- the connection ---- */

static void on_disconnect(const redisAsyncContext *ac, int status) {
  pt_mirror *m = ac->data;
  (void)status;
  m->ac = NULL;
  m->ready = false;
  m->renew_pending = m->acquire_pending = false;
  m->inflight = 0, m->inflight_bytes = 0, m->flight_head = 0;
  if (m->stopping) {
    closed_one(m);
    return;
  }
  m->st.reconnects++;
  pt_warn("mirror: connection to Redis %s:%d lost", m->cfg.redis.host, m->cfg.redis.port);
  if (m->role == PT_ROLE_PRIMARY || m->role == PT_ROLE_RECOVERING)
    mirror_doubt(m, "the connection to Redis was lost", false);
  else if (m->role == PT_ROLE_STANDBY)
    set_role(m, PT_ROLE_CONNECTING, "the connection to Redis was lost");
  m->next_connect_ms = mirror_now(m) + m->backoff_ms;
  tick_soon(m);
}

/* The function libraries: the mirror's and the shard's (functions.h). */
static const struct {
  const char *text, *name, *version_fn;
  long long version;
} libs[2] = {{pt_redis_functions, "pintuan", "pintuan_version", PT_FUNCTIONS_VERSION},
             {pt_redis_shard_functions, "pintuan_shard", "pintuan_shard_version", PT_SHARD_FUNCTIONS_VERSION}};

static void lib_ok(pt_mirror *m) {
  if (++m->libs_ok < 2) return;
  m->ready = true;
  m->backoff_ms = BACKOFF_MIN_MS;
  pt_info("mirror connected to Redis %s:%d shard=%s", m->cfg.redis.host, m->cfg.redis.port,
          m->cfg.shard);
  lease_work(m);
}

/* The version of a library an administrator loaded, asked because this
 * Redis user may not load it: this one or newer serves us. */
static void on_lib_version(redisAsyncContext *ac, void *reply, void *priv) {
  pt_mirror *m = ac->data;
  redisReply *r = reply;
  unsigned i = (unsigned)(uintptr_t)priv;
  if (!r) return;
  if (r->type == REDIS_REPLY_INTEGER && r->integer >= libs[i].version) {
    lib_ok(m);
    return;
  }
  char have[80]; /* a version, or what FCALL_RO answered (no such function) */
  if (r->type == REDIS_REPLY_INTEGER) snprintf(have, sizeof have, "version %lld", r->integer);
  else snprintf(have, sizeof have, "%.*s", r->str ? (int)(r->len < 70 ? r->len : 70) : 0, r->str ? r->str : "");
  pt_error("mirror: this Redis user may not load the functions library %s, and Redis has: %s "
           "(this daemon needs version %lld or newer); load it as a Redis administrator "
           "(deploy/redis-acl.sh)",
           libs[i].name, have, libs[i].version);
  redisAsyncDisconnect(ac);
}

static void on_loaded(redisAsyncContext *ac, void *reply, void *priv) {
  pt_mirror *m = ac->data;
  redisReply *r = reply;
  unsigned i = (unsigned)(uintptr_t)priv;
  if (!r) return;
  if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOPERM", 6)) {
    if (redisAsyncCommand(ac, on_lib_version, priv, "FCALL_RO %s 0", libs[i].version_fn) != REDIS_OK)
      redisAsyncDisconnect(ac);
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    pt_error("mirror: Redis refused the functions library %s: %.*s (Redis 7 or later is needed)",
             libs[i].name, (int)r->len, r->str);
    redisAsyncDisconnect(ac);
    return;
  }
  lib_ok(m);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv) {
  (void)priv;
  redisReply *r = reply;
  if (r && r->type == REDIS_REPLY_ERROR) { /* never go on as whatever user Redis gives by default */
    pt_error("mirror: Redis AUTH refused: %.*s", (int)r->len, r->str);
    redisAsyncDisconnect(ac);
  }
}

static void on_connect(const redisAsyncContext *ac, int status) {
  pt_mirror *m = ac->data;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback; no disconnect callback */
    pt_warn("mirror: cannot reach Redis %s:%d: %s (retrying)", m->cfg.redis.host, m->cfg.redis.port,
            ac->errstr);
    m->ac = NULL;
    m->backoff_ms = m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2;
    m->next_connect_ms = mirror_now(m) + m->backoff_ms;
    return;
  }
  redisAsyncContext *c = (redisAsyncContext *)ac;
  if (m->cfg.redis_password[0]) {
    if (m->cfg.redis_user[0])
      redisAsyncCommand(c, on_auth, NULL, "AUTH %s %s", m->cfg.redis_user, m->cfg.redis_password);
    else
      redisAsyncCommand(c, on_auth, NULL, "AUTH %s", m->cfg.redis_password);
  }
  m->libs_ok = 0;
  for (uintptr_t i = 0; i < 2; i++)
    if (redisAsyncCommand(c, on_loaded, (void *)i, "FUNCTION LOAD REPLACE %s", libs[i].text) != REDIS_OK) {
      redisAsyncDisconnect(c);
      return;
    }
}

static void connect_now(pt_mirror *m) {
  redisAsyncContext *ac = redisAsyncConnect(m->cfg.redis.host, m->cfg.redis.port);
  if (!ac) return;
  if (ac->err || pt_redis_attach(ac, m->loop) != REDIS_OK) {
    pt_warn("mirror: cannot connect to Redis %s:%d: %s", m->cfg.redis.host, m->cfg.redis.port,
            ac->err ? ac->errstr : "event loop");
    redisAsyncFree(ac);
    m->next_connect_ms = mirror_now(m) + m->backoff_ms;
    return;
  }
  ac->data = m;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  m->ac = ac;
}

static void on_tick(uv_timer_t *t) {
  pt_mirror *m = t->data;
  if (m->stopping) return;
  snapshot_reap(m);
  if (!m->ac && mirror_now(m) >= m->next_connect_ms) connect_now(m);
  lease_work(m);
  if (m->cfg.follow && m->role == PT_ROLE_STANDBY) follow_start(m, false);
  mirror_save_known(m);
  pt_redis_flush(m->ac);
}

static void tick_soon(pt_mirror *m) {
  if (!m->stopping) uv_timer_start(&m->tick, on_tick, 0, (uint64_t)(m->cfg.lease_ms / 3));
}

pt_mirror *pt_mirror_start(uv_loop_t *loop, const pt_mirror_config *cfg,
                           const pt_mirror_hooks *hooks) {
  pt_mirror *m = pt_xcalloc(1, sizeof(*m));
  m->loop = loop;
  m->cfg = *cfg;
  m->hooks = *hooks;
  m->role = PT_ROLE_CONNECTING;
  m->backoff_ms = BACKOFF_MIN_MS;
  if (m->cfg.lease_ms < 30) m->cfg.lease_ms = 30;
  if (!m->cfg.max_inflight) m->cfg.max_inflight = 64;
  m->flight = pt_xmalloc(m->cfg.max_inflight * sizeof(*m->flight));
  pt_histo_init_latency(&m->st.append_us);
  pt_histo_init_batch(&m->st.batch);
  if (!m->cfg.max_backlog) m->cfg.max_backlog = 64u << 20;
  if (!m->cfg.events_maxlen) m->cfg.events_maxlen = 1000000;
  if (!m->cfg.snapshot_chunk) m->cfg.snapshot_chunk = 16u << 20;
  const char *s = m->cfg.shard;
  snprintf(m->key_lease, KEY_MAX, "pintuan:{%s}:" PT_KEY_LEASE, s);
  snprintf(m->key_epoch, KEY_MAX, "pintuan:{%s}:" PT_KEY_EPOCH, s);
  snprintf(m->key_journal, KEY_MAX, "pintuan:{%s}:" PT_KEY_JOURNAL, s);
  snprintf(m->key_seq, KEY_MAX, "pintuan:{%s}:" PT_KEY_SEQ, s);
  snprintf(m->key_events, KEY_MAX, "pintuan:{%s}:" PT_KEY_EVENTS, s);
  snprintf(m->key_snapshot, KEY_MAX, "pintuan:{%s}:" PT_KEY_SNAPSHOT, s);
  snprintf(m->key_shard, KEY_MAX, "pintuan:{%s}:" PT_KEY_SHARD, s);
  pt_shard_new_id(m->adopt_id);
  if (m->cfg.state_file[0]) { /* preflight read it already: an error here is a race, not news */
    char err[512];
    if (pt_shard_state_read(m->cfg.state_file, s, &m->known, err, sizeof err)) pt_warn("%s", err);
    else if (m->known.id[0])
      pt_info("mirror state file %s: incarnation %s, epoch %" PRIu64 ", record %" PRIu64, m->cfg.state_file,
              m->known.id, m->known.epoch, m->known.seq);
    m->saved = m->known;
  }
  msgpack_sbuffer_init(&m->rec);
  msgpack_packer_init(&m->pk, &m->rec, msgpack_sbuffer_write);
  record_reset(m);
  uv_timer_init(loop, &m->tick);
  uv_timer_init(loop, &m->lease_end);
  m->tick.data = m->lease_end.data = m;
  connect_now(m);
  uv_timer_start(&m->tick, on_tick, (uint64_t)(m->cfg.lease_ms / 3), (uint64_t)(m->cfg.lease_ms / 3));
  return m;
}

static void free_mirror(pt_mirror *m) {
  void (*done)(void *) = m->done;
  void *done_arg = m->done_arg;
  /* what this daemon knows, as of its last acknowledgement: for its next start */
  if (m->cfg.state_file[0] && memcmp(&m->saved, &m->known, sizeof m->known) &&
      pt_shard_state_write(m->cfg.state_file, m->cfg.shard, &m->known))
    pt_error("mirror state file %s: %s", m->cfg.state_file, strerror(errno));
  msgpack_sbuffer_destroy(&m->rec);
  free(m->argv);
  free(m->argvlen);
  free(m->ev);
  free(m->flight);
  free(m->evsz);
  if (m->child_info) munmap(m->child_info, CHILD_INFO * sizeof *m->child_info);
  free(m);
  if (done) done(done_arg);
}

/* One of the things stop() waits for has closed. */
static void closed_one(pt_mirror *m) {
  if (--m->closing == 0) free_mirror(m);
}
void mirror_closed_one(pt_mirror *m) { closed_one(m); }

static void on_tick_closed(uv_handle_t *h) { closed_one(h->data); }

static void on_released(redisAsyncContext *ac, void *reply, void *priv) {
  (void)priv;
  pt_mirror *m = ac->data;
  redisReply *r = reply;
  if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
    pt_info("mirror lease released epoch=%" PRIu64, m->epoch);
}

void pt_mirror_stop(pt_mirror *m, void (*done)(void *arg), void *arg) {
  m->stopping = true;
  m->done = done;
  m->done_arg = arg;
  recovery_abort(m);
  follow_drop(m);
  if (m->child > 0) { /* a snapshot in progress is abandoned */
    kill(m->child, SIGKILL);
    waitpid(m->child, NULL, 0);
    m->child = 0;
  }
  m->closing = 2 + m->saving; /* the two timers, and a state file being written */
  if (m->ac) {
    if (m->ready && (m->role == PT_ROLE_PRIMARY || m->role == PT_ROLE_RECOVERING))
      redisAsyncCommand(m->ac, on_released, NULL, "FCALL pintuan_release 1 %s %s %s", m->key_lease,
                        m->cfg.node_id, m->epoch_s);
    pt_redis_flush(m->ac);
    bool up = (m->ac->c.flags & REDIS_CONNECTED) != 0;
    if (up) m->closing++; /* its disconnect callback comes once pending replies are in */
    redisAsyncDisconnect(m->ac);
    if (!up) m->ac = NULL; /* a connect in progress is freed at once, without callbacks */
  }
  uv_close((uv_handle_t *)&m->tick, on_tick_closed);
  uv_close((uv_handle_t *)&m->lease_end, on_tick_closed);
}

pt_role pt_mirror_role(const pt_mirror *m) { return m->role; }
pt_engine *pt_mirror_stale(pt_mirror *m, pt_staleness *out) {
  const pt_follower *f = &m->follower;
  if (!f->engine || m->role == PT_ROLE_PRIMARY || m->role == PT_ROLE_REFUSED) return NULL;
  *out = (pt_staleness){.record = f->seq, .epoch = f->epoch, .age_ms = mirror_now(m) - f->caught_up_ms};
  return f->engine;
}

uint64_t pt_mirror_id_tag(const pt_mirror *m) { return m->known.id[0] ? pt_shard_tag(m->known.id) : 0; }
const char *pt_mirror_refusal(const pt_mirror *m) { return m->role == PT_ROLE_REFUSED ? m->refusal_code : ""; }
const char *pt_mirror_leader(const pt_mirror *m) { return m->leader; }

void pt_mirror_stats_get(const pt_mirror *m, pt_mirror_stats *out) {
  *out = m->st;
  out->epoch = m->epoch;
  out->last_seq = m->last_seq;
  out->acked_seq = m->acked_seq;
  out->known_seq = m->known.seq;
  out->follow_seq = m->follower.engine ? m->follower.seq : 0;
  out->follow_age_ms = m->follower.engine ? mirror_now(m) - m->follower.caught_up_ms : -1;
  out->known_epoch = m->known.epoch;
  out->inflight = m->inflight;
  out->backlog_bytes = m->open_seq ? open_bytes(m) : 0;
  int64_t oldest = m->inflight ? m->flight[m->flight_head].made_ns : m->open_seq ? m->open_ns : 0;
  out->lag_us = oldest ? (pt_mono_ns() - oldest) / 1000 : 0;
}
