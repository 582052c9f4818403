/* Who may do what (keys.h): Hello proves a key, the key's role opens the
 * operations, a reload drops the connections of keys revoked. Without a
 * keys file every connection may do everything (a daemon on loopback). */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "svc.h"
#include "xalloc.h"

/* A connection's flags (pt_conn_flags): CONN_SUB, then its key: whether it
 * said Hello with one, the role, and the key's index in s->keys. */
#define CONN_KEYED 0x40u
#define ROLE_SHIFT 4
#define ROLE_MASK (3u << ROLE_SHIFT)
#define KEY_SHIFT 8

#define FAIL_PAUSE_MS 1000 /* a failed Hello is answered this late, then closed */
#define LOG_BURST 10       /* auth lines a second at most; the next says how many were not */

pt_key_role svc_role(const pt_service *s, pt_conn *c) {
  if (!s->keys) return PT_KEY_ADMIN;
  uint32_t f = *pt_conn_flags(c);
  return f & CONN_KEYED ? (pt_key_role)((f & ROLE_MASK) >> ROLE_SHIFT) : PT_KEY_NONE;
}

/* What an operation needs (Hello and Ping: nothing). */
static pt_key_role needs(unsigned op) {
  switch (op) {
  case PINTUAN__V1__REQUEST__OP_HELLO:
  case PINTUAN__V1__REQUEST__OP_PING: return PT_KEY_NONE;
  case PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN:
  case PINTUAN__V1__REQUEST__OP_UPDATE_CAMPAIGN:
  case PINTUAN__V1__REQUEST__OP_END_CAMPAIGN: return PT_KEY_ADMIN;
  case PINTUAN__V1__REQUEST__OP_RESERVE:
  case PINTUAN__V1__REQUEST__OP_CONFIRM:
  case PINTUAN__V1__REQUEST__OP_CANCEL:
  case PINTUAN__V1__REQUEST__OP_JOIN: return PT_KEY_STOREFRONT;
  default: return PT_KEY_READER; /* reads, Subscribe */
  }
}

static void auth_log(pt_service *s, pt_conn *c, const char *event, const char *fmt, const char *arg) {
  uint64_t sec = (uint64_t)pt_mono_ns() / 1000000000u;
  if (sec != s->auth_log_sec) s->auth_log_sec = sec, s->auth_log_n = 0;
  if (s->auth_log_n++ >= LOG_BURST) {
    s->auth_log_suppressed++;
    return;
  }
  char peer[64], why[160], more[48] = "";
  snprintf(why, sizeof why, fmt, arg);
  if (s->auth_log_suppressed)
    snprintf(more, sizeof more, " suppressed=%llu", (unsigned long long)s->auth_log_suppressed);
  s->auth_log_suppressed = 0;
  pt_warn("%s client=%llu peer=%s reason=\"%s\"%s", event, (unsigned long long)pt_conn_id(c),
          pt_conn_peer(c, peer, sizeof peer), why, more);
}

bool svc_permitted(svc_ctx *x, unsigned op) {
  pt_service *s = x->s;
  pt_key_role need = needs(op), have = svc_role(s, x->c);
  if (have >= need) return true;
  if (have == PT_KEY_NONE) {
    s->st.no_hello++;
    svc_set_status(x->r, PT_UNAUTHENTICATED, "send Hello with your key first");
  } else {
    s->st.denied++;
    static char why[96]; /* the reply points at it until it is packed */
    snprintf(why, sizeof why, "the key's role %s may not do this (it needs %s)", pt_key_role_name(have),
             pt_key_role_name(need));
    svc_set_status(x->r, PT_PERMISSION_DENIED, why);
  }
  return false;
}

/* Hello with a key: OK and the connection takes the key's role, or
 * UNAUTHENTICATED after a pause and the connection closed. */
bool svc_hello_key(svc_ctx *x, const Pintuan__V1__Hello *m) {
  pt_service *s = x->s;
  if (!s->keys) return true; /* no keys: nothing to prove */
  const char *name = m->key ? m->key : "";
  uint32_t index = 0;
  pt_key_role role = PT_KEY_NONE;
  pt_key_check k = !*name || !m->has_token ? PT_KEY_UNKNOWN
                   : pt_keys_check(s->keys, (const uint8_t *)name, strlen(name), m->token.data,
                                   m->token.len, &index, &role);
  if (k == PT_KEY_OK) {
    uint32_t *f = pt_conn_flags(x->c);
    *f = (*f & ((1u << ROLE_SHIFT) - 1)) | CONN_KEYED | (uint32_t)role << ROLE_SHIFT | index << KEY_SHIFT;
    return true;
  }
  s->st.auth_failed++;
  char shown[PT_KEY_NAME_MAX + 1]; /* a name as logged: printable, bounded */
  size_t i = 0;
  for (; name[i] && i < PT_KEY_NAME_MAX; i++) shown[i] = name[i] > ' ' && name[i] < 127 ? name[i] : '?';
  shown[i] = 0;
  auth_log(s, x->c, "auth_failed",
           !*name ? "Hello without a key%s" : k == PT_KEY_UNKNOWN ? "unknown key %s" : "wrong secret for key %s",
           shown);
  /* the same answer whatever was wrong: nothing tells a guesser which part */
  svc_set_status(x->r, PT_UNAUTHENTICATED, "unknown key or wrong secret");
  pt_conn_close_after(x->c, FAIL_PAUSE_MS);
  return false;
}

void pt_service_on_secure(pt_service *s, pt_conn *c, const char *peer_name) {
  uint32_t index;
  pt_key_role role;
  if (!s->keys || !pt_keys_find(s->keys, peer_name, &index, &role)) return;
  uint32_t *f = pt_conn_flags(c);
  *f = (*f & ((1u << ROLE_SHIFT) - 1)) | CONN_KEYED | (uint32_t)role << ROLE_SHIFT | index << KEY_SHIFT;
}

typedef struct rekey {
  pt_service *s;
  const pt_keys *old, *now;
  unsigned dropped;
} rekey;

static void rekey_conn(void *ctx, pt_conn *c) {
  rekey *k = ctx;
  uint32_t *f = pt_conn_flags(c), at;
  if (!(*f & CONN_KEYED) && k->old) return; /* not in yet: its Hello will be checked anew */
  if (*f & CONN_KEYED && pt_keys_same(k->old, *f >> KEY_SHIFT, k->now, &at)) {
    *f = (*f & ((1u << KEY_SHIFT) - 1)) | at << KEY_SHIFT;
    return;
  }
  /* its key is gone or changed, or it came in before there were keys */
  k->dropped++;
  k->s->st.revoked++;
  auth_log(k->s, c, "client_dropped", "%s", *f & CONN_KEYED ? "its key was revoked or changed"
                                                            : "keys now required: it said no Hello with one");
  pt_conn_close_after_flush(c);
}

unsigned pt_service_set_keys(pt_service *s, pt_server *srv, pt_keys *keys) {
  rekey k = {s, s->keys, keys, 0};
  if (keys && srv) pt_server_each(srv, rekey_conn, &k);
  pt_keys_free(s->keys);
  s->keys = keys;
  free(s->key_buckets); /* each key starts full again */
  s->key_buckets = keys ? pt_xcalloc(pt_keys_count(keys), sizeof *s->key_buckets) : NULL;
  return k.dropped;
}

/* ---- rates ---- */

static const char *const SCOPES[] = {"connection", "key", "user"};

/* -1 (a token of each taken), or the scope of the rate that refuses
 * (0 connection, 1 key, 2 user) and in *over its rate (none taken). */
static int svc_rates_take(pt_service *s, pt_conn *c, pt_bytes user, uint32_t *over) {
  int64_t now = pt_turn_now(s->turn);
  uint32_t f = *pt_conn_flags(c), krate = 0;
  pt_bucket *conn = pt_conn_data(c), *key = NULL, *usr = NULL;
  if (s->keys && (f & CONN_KEYED)) {
    uint32_t i = f >> KEY_SHIFT, kr = pt_keys_rate(s->keys, i);
    krate = kr ? kr : s->key_rate;
    key = &s->key_buckets[i];
  }
  if (user.len && s->user_rate) {
    if (!s->users) s->users = pt_user_rates_new(s->max_rated_users, (uint64_t)pt_mono_ns() ^ (uintptr_t)s);
    usr = pt_user_rates_bucket(s->users, user, s->user_rate, s->user_burst, now);
  }
  /* all or nothing: a refusal takes no token anywhere */
  if (!pt_bucket_has(conn, s->conn_rate, s->conn_burst, now)) return *over = s->conn_rate, 0;
  if (key && !pt_bucket_has(key, krate, 2 * krate, now)) return *over = krate, 1;
  if (usr && !pt_bucket_has(usr, s->user_rate, s->user_burst, now)) return *over = s->user_rate, 2;
  pt_bucket_take(conn, s->conn_rate);
  if (key) pt_bucket_take(key, krate);
  if (usr) pt_bucket_take(usr, s->user_rate);
  return -1;
}

const char *svc_rate_limited(pt_service *s, pt_conn *c, pt_bytes user) {
  uint32_t rate;
  int scope = svc_rates_take(s, c, user, &rate);
  if (scope < 0) return NULL;
  s->st.limited[scope]++;
  /* the connection or its key over its rate: a flood refused anyway, a few
   * frames a turn (server.h). Not for a user's rate: one shopper over it
   * says nothing of the storefront connection that carries every shopper. */
  if (scope < 2) pt_conn_demote(c);
  /* a flood is refused here by the million: its text is made once a rate */
  static char why[3][96];
  static uint32_t made_for[3];
  if (!why[scope][0] || made_for[scope] != rate) {
    snprintf(why[scope], sizeof why[scope], "over the %s's rate of %u requests a second: retry later",
             SCOPES[scope], rate);
    made_for[scope] = rate;
  }
  auth_log(s, c, "rate_limited", "%s", why[scope]);
  return why[scope];
}

bool svc_rate_ok(pt_service *s, pt_conn *c, pt_bytes user, Pintuan__V1__Response *r) {
  const char *why = svc_rate_limited(s, c, user);
  if (!why) return true;
  svc_set_status(r, PT_RATE_LIMITED, why);
  return false;
}

pt_bytes svc_request_user(const Pintuan__V1__Request *q) {
  ProtobufCBinaryData u = {0};
  switch (q->op_case) {
  case PINTUAN__V1__REQUEST__OP_RESERVE: u = q->reserve->user_id; break;
  case PINTUAN__V1__REQUEST__OP_CONFIRM: u = q->confirm->user_id; break;
  case PINTUAN__V1__REQUEST__OP_CANCEL: u = q->cancel->user_id; break;
  case PINTUAN__V1__REQUEST__OP_JOIN: u = q->join->user_id; break;
  case PINTUAN__V1__REQUEST__OP_GET_RESERVATION: u = q->get_reservation->user_id; break;
  case PINTUAN__V1__REQUEST__OP_GET_HOLDINGS: u = q->get_holdings->user_id; break;
  default: break;
  }
  return B(u);
}
