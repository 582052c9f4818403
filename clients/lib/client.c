#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pintuan.h"

#define MAX_REPLY (64u << 20)

struct pintuan_client {
  int fd;
  int timeout_ms;
  uint64_t next_id;
  uint8_t *out;
  size_t out_len, out_cap;
  uint8_t *in;
  size_t in_len, in_off, in_cap;
  char err[256];
};

static int fail(pintuan_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  return -1;
}

const char *pintuan_error(const pintuan_client *c) { return c->err; }
void pintuan_set_timeout(pintuan_client *c, int ms) { c->timeout_ms = ms; }
int pintuan_fd(const pintuan_client *c) { return c->fd; }

static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen) {
  const char *h = addr, *p = NULL;
  size_t hl;
  if (addr[0] == '[') {
    const char *end = strchr(addr, ']');
    if (!end) return -1;
    h = addr + 1;
    hl = (size_t)(end - h);
    if (end[1] == ':') p = end + 2;
    else if (end[1]) return -1;
  } else {
    const char *colon = strrchr(addr, ':');
    if (colon && strchr(addr, ':') != colon) colon = NULL; /* bare IPv6 */
    hl = colon ? (size_t)(colon - addr) : strlen(addr);
    if (colon) p = colon + 1;
  }
  if (hl == 0 || hl >= hostlen) return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  snprintf(port, portlen, "%s", p && *p ? p : "7733");
  return 0;
}

static int wait_fd(pintuan_client *c, short ev) {
  struct pollfd p = {.fd = c->fd, .events = ev};
  for (;;) {
    int n = poll(&p, 1, c->timeout_ms);
    if (n > 0) return 0;
    if (n == 0) return fail(c, "timed out after %d ms", c->timeout_ms);
    if (errno != EINTR) return fail(c, "poll: %s", strerror(errno));
  }
}

pintuan_client *pintuan_connect(const char *addr, int timeout_ms, char *err, size_t errlen) {
  char host[256], port[16];
  if (split_addr(addr, host, sizeof host, port, sizeof port)) {
    snprintf(err, errlen, "bad address %s (want HOST:PORT)", addr);
    return NULL;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc) {
    snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
    return NULL;
  }
  pintuan_client *c = calloc(1, sizeof(*c));
  if (!c) {
    freeaddrinfo(res);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->timeout_ms = timeout_ms;
  c->fd = -1;
  snprintf(err, errlen, "connect %s: no address", addr);
  for (ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    c->fd = fd;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
        (errno == EINPROGRESS && wait_fd(c, POLLOUT) == 0)) {
      int so = 0;
      socklen_t sl = sizeof so;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
      if (so == 0) break;
      errno = so;
    }
    snprintf(err, errlen, "connect %s: %s", addr, c->err[0] ? c->err : strerror(errno));
    close(fd);
    c->fd = -1;
    c->err[0] = 0;
  }
  freeaddrinfo(res);
  if (c->fd < 0) {
    free(c);
    return NULL;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return c;
}

void pintuan_close(pintuan_client *c) {
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  free(c->out);
  free(c->in);
  free(c);
}

static int reserve_buf(uint8_t **p, size_t *cap, size_t need) {
  if (*cap >= need) return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  uint8_t *q = realloc(*p, n);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

int pintuan_send(pintuan_client *c, Pintuan__V1__Request *req) {
  if (c->fd < 0) return fail(c, "not connected");
  if (!req->has_id || req->id == 0) req->has_id = 1, req->id = ++c->next_id;
  size_t n = pintuan__v1__request__get_packed_size(req);
  if (reserve_buf(&c->out, &c->out_cap, c->out_len + 4 + n)) return fail(c, "out of memory");
  uint8_t *p = c->out + c->out_len;
  p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
  pintuan__v1__request__pack(req, p + 4);
  c->out_len += 4 + n;
  return 0;
}

int pintuan_flush(pintuan_client *c) {
  size_t off = 0;
  while (off < c->out_len) {
    ssize_t w = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      /* the daemon is not reading: drain our input meanwhile so neither
       * side's buffers deadlock on a long pipeline */
      if (reserve_buf(&c->in, &c->in_cap, c->in_len + 65536)) return fail(c, "out of memory");
      ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
      if (r > 0) { c->in_len += (size_t)r; continue; }
      if (r == 0) return fail(c, "connection closed by the daemon");
      struct pollfd p = {.fd = c->fd, .events = POLLOUT | POLLIN};
      int n = poll(&p, 1, c->timeout_ms);
      if (n == 0) return fail(c, "timed out writing after %d ms", c->timeout_ms);
      if (n < 0 && errno != EINTR) return fail(c, "poll: %s", strerror(errno));
    } else if (w < 0 && errno != EINTR) {
      return fail(c, "send: %s", strerror(errno));
    }
  }
  c->out_len = 0;
  return 0;
}

int pintuan_recv(pintuan_client *c, pintuan_response **out) {
  *out = NULL;
  for (;;) {
    size_t avail = c->in_len - c->in_off;
    if (avail >= 4) {
      const uint8_t *p = c->in + c->in_off;
      uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
      if (n > MAX_REPLY) return fail(c, "reply frame of %u bytes is too large", n);
      if (avail >= 4 + (size_t)n) {
        pintuan_response *r = pintuan__v1__response__unpack(NULL, n, p + 4);
        if (!r) return fail(c, "undecodable reply from the daemon");
        c->in_off += 4 + n;
        if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
        *out = r;
        return 0;
      }
      if (reserve_buf(&c->in, &c->in_cap, c->in_off + 4 + n)) return fail(c, "out of memory");
    }
    if (c->in_off && c->in_off == c->in_len) c->in_off = c->in_len = 0;
    if (c->in_off > c->in_cap / 2) {
      memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
      c->in_len -= c->in_off;
      c->in_off = 0;
    }
    if (reserve_buf(&c->in, &c->in_cap, c->in_len + 65536)) return fail(c, "out of memory");
    ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (r > 0) {
      c->in_len += (size_t)r;
    } else if (r == 0) {
      return fail(c, "connection closed by the daemon");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (wait_fd(c, POLLIN)) return -1;
    } else if (errno != EINTR) {
      return fail(c, "recv: %s", strerror(errno));
    }
  }
}

void pintuan_response_free(pintuan_response *r) {
  if (r) pintuan__v1__response__free_unpacked(r, NULL);
}

int pintuan_call(pintuan_client *c, Pintuan__V1__Request *req, pintuan_response **out) {
  *out = NULL;
  if (pintuan_send(c, req) || pintuan_flush(c)) return -1;
  for (;;) {
    pintuan_response *r;
    if (pintuan_recv(c, &r)) return -1;
    if (r->id == req->id) {
      *out = r;
      return 0;
    }
    if (r->id == 0 && r->status != PINTUAN__V1__STATUS__OK &&
        r->result_case != PINTUAN__V1__RESPONSE__RESULT_EVENT) {
      /* the daemon rejected the stream itself */
      *out = r;
      return 0;
    }
    pintuan_response_free(r); /* a reply to an earlier pipelined request, or an event */
  }
}

const char *pintuan_status_str(int s) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&pintuan__v1__status__descriptor, s);
  return v ? v->name : "STATUS_UNSPECIFIED";
}

const char *pintuan_hold_state_str(int s) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&pintuan__v1__hold_state__descriptor, s);
  return v ? v->name : "HOLD_STATE_UNSPECIFIED";
}

/* ---- request builders ---- */

ProtobufCBinaryData pintuan_bytes(const char *s) {
  return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}
#define bin pintuan_bytes

void pintuan_req_hello(pintuan_request *q, Pintuan__V1__Hello *m, const char *token) {
  pintuan__v1__request__init(q);
  pintuan__v1__hello__init(m);
  if (token) m->has_token = 1, m->token = bin(token);
  m->has_protocol_version = 1, m->protocol_version = 1;
  m->client_name = (char *)"libpintuan";
  q->op_case = PINTUAN__V1__REQUEST__OP_HELLO, q->hello = m;
}

void pintuan_req_ping(pintuan_request *q, Pintuan__V1__Ping *m) {
  pintuan__v1__request__init(q);
  pintuan__v1__ping__init(m);
  q->op_case = PINTUAN__V1__REQUEST__OP_PING, q->ping = m;
}

void pintuan_req_create_campaign(pintuan_request *q, Pintuan__V1__CreateCampaign *m,
                                 Pintuan__V1__CampaignSpec *sp, const pintuan_campaign_spec *s,
                                 const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__create_campaign__init(m);
  pintuan__v1__campaign_spec__init(sp);
  bool group = s->kind == PINTUAN__V1__CAMPAIGN_KIND__GROUP_BUY;
  sp->has_campaign_id = 1, sp->campaign_id = bin(s->campaign_id);
  sp->has_kind = 1;
  sp->kind = s->kind ? (Pintuan__V1__CampaignKind)s->kind : PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE;
  sp->has_stock = 1, sp->stock = s->stock;
  sp->has_hold_ms = 1, sp->hold_ms = s->hold_ms;
  if (s->start_ms) sp->has_start_ms = 1, sp->start_ms = s->start_ms;
  if (s->end_ms) sp->has_end_ms = 1, sp->end_ms = s->end_ms;
  if (s->per_user_limit) sp->has_per_user_limit = 1, sp->per_user_limit = s->per_user_limit;
  if (s->waitlist) sp->has_waitlist = 1, sp->waitlist = 1;
  if (group || s->group_size) sp->has_group_size = 1, sp->group_size = s->group_size;
  if (group || s->group_ttl_ms) sp->has_group_ttl_ms = 1, sp->group_ttl_ms = s->group_ttl_ms;
  if (s->new_users_only) sp->has_new_users_only = 1, sp->new_users_only = 1;
  if (s->simulate_min_paid)
    sp->has_simulate_min_paid = 1, sp->simulate_min_paid = s->simulate_min_paid;
  if (s->match_margin_ms) sp->has_match_margin_ms = 1, sp->match_margin_ms = s->match_margin_ms;
  m->has_request_id = 1, m->request_id = bin(request_id);
  m->spec = sp;
  q->op_case = PINTUAN__V1__REQUEST__OP_CREATE_CAMPAIGN, q->create_campaign = m;
}

void pintuan_req_update_campaign(pintuan_request *q, Pintuan__V1__UpdateCampaign *m,
                                 const char *campaign, const pintuan_campaign_update *u,
                                 const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__update_campaign__init(m);
  m->has_request_id = 1, m->request_id = bin(request_id);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  if (u->fields & PINTUAN_UPDATE_STOCK) m->has_stock = 1, m->stock = u->stock;
  if (u->fields & PINTUAN_UPDATE_END) m->has_end_ms = 1, m->end_ms = u->end_ms;
  if (u->fields & PINTUAN_UPDATE_LIMIT) m->has_per_user_limit = 1, m->per_user_limit = u->per_user_limit;
  if (u->fields & PINTUAN_UPDATE_HOLD) m->has_hold_ms = 1, m->hold_ms = u->hold_ms;
  if (u->fields & PINTUAN_UPDATE_WAITLIST) m->has_waitlist = 1, m->waitlist = u->waitlist;
  q->op_case = PINTUAN__V1__REQUEST__OP_UPDATE_CAMPAIGN, q->update_campaign = m;
}

void pintuan_req_end_campaign(pintuan_request *q, Pintuan__V1__EndCampaign *m,
                              const char *campaign, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__end_campaign__init(m);
  m->has_request_id = 1, m->request_id = bin(request_id);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  q->op_case = PINTUAN__V1__REQUEST__OP_END_CAMPAIGN, q->end_campaign = m;
}

void pintuan_req_get_campaign(pintuan_request *q, Pintuan__V1__GetCampaign *m,
                              const char *campaign) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_campaign__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_CAMPAIGN, q->get_campaign = m;
}

void pintuan_req_list_campaigns(pintuan_request *q, Pintuan__V1__ListCampaigns *m) {
  pintuan__v1__request__init(q);
  pintuan__v1__list_campaigns__init(m);
  q->op_case = PINTUAN__V1__REQUEST__OP_LIST_CAMPAIGNS, q->list_campaigns = m;
}

void pintuan_req_reserve(pintuan_request *q, Pintuan__V1__Reserve *m, const char *campaign,
                         const char *user, int32_t qty, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__reserve__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_user_id = 1, m->user_id = bin(user);
  m->has_quantity = 1, m->quantity = qty;
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_RESERVE, q->reserve = m;
}

void pintuan_req_confirm(pintuan_request *q, Pintuan__V1__Confirm *m, const char *campaign,
                         uint64_t reservation_id, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__confirm__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_reservation_id = 1, m->reservation_id = reservation_id;
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_CONFIRM, q->confirm = m;
}

void pintuan_req_cancel(pintuan_request *q, Pintuan__V1__Cancel *m, const char *campaign,
                        uint64_t reservation_id, const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__cancel__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_reservation_id = 1, m->reservation_id = reservation_id;
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_CANCEL, q->cancel = m;
}

void pintuan_req_get_reservation(pintuan_request *q, Pintuan__V1__GetReservation *m,
                                 const char *campaign, uint64_t reservation_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_reservation__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_reservation_id = 1, m->reservation_id = reservation_id;
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_RESERVATION, q->get_reservation = m;
}

void pintuan_req_get_holdings(pintuan_request *q, Pintuan__V1__GetHoldings *m,
                              const char *campaign, const char *user) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_holdings__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_user_id = 1, m->user_id = bin(user);
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_HOLDINGS, q->get_holdings = m;
}

void pintuan_req_join(pintuan_request *q, Pintuan__V1__Join *m, const char *campaign,
                      const char *user, int mode, uint64_t group_id, bool new_user,
                      const char *request_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__join__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_user_id = 1, m->user_id = bin(user);
  m->has_mode = 1, m->mode = (Pintuan__V1__JoinMode)mode;
  if (group_id) m->has_group_id = 1, m->group_id = group_id;
  m->has_new_user = 1, m->new_user = new_user;
  m->has_request_id = 1, m->request_id = bin(request_id);
  q->op_case = PINTUAN__V1__REQUEST__OP_JOIN, q->join = m;
}

void pintuan_req_get_group(pintuan_request *q, Pintuan__V1__GetGroup *m, const char *campaign,
                           uint64_t group_id) {
  pintuan__v1__request__init(q);
  pintuan__v1__get_group__init(m);
  m->has_campaign_id = 1, m->campaign_id = bin(campaign);
  m->has_group_id = 1, m->group_id = group_id;
  q->op_case = PINTUAN__V1__REQUEST__OP_GET_GROUP, q->get_group = m;
}

void pintuan_req_subscribe(pintuan_request *q, Pintuan__V1__Subscribe *m,
                           ProtobufCBinaryData *ids, const char *const *campaigns, size_t n) {
  pintuan__v1__request__init(q);
  pintuan__v1__subscribe__init(m);
  for (size_t i = 0; i < n; i++) ids[i] = bin(campaigns[i]);
  m->n_campaign_ids = n;
  m->campaign_ids = n ? ids : NULL;
  q->op_case = PINTUAN__V1__REQUEST__OP_SUBSCRIBE, q->subscribe = m;
}

/* ---- blocking calls ---- */

/* A builder's request and body on the stack, then the call. */
#define CALL(Body, build, ...)                                                                    \
  do {                                                                                            \
    pintuan_request q_;                                                                           \
    Body m_;                                                                                      \
    build(&q_, &m_, __VA_ARGS__);                                                                 \
    return pintuan_call(c, &q_, out);                                                             \
  } while (0)

int pintuan_hello(pintuan_client *c, const char *token, pintuan_response **out) {
  CALL(Pintuan__V1__Hello, pintuan_req_hello, token);
}

int pintuan_ping(pintuan_client *c, pintuan_response **out) {
  pintuan_request q;
  Pintuan__V1__Ping m;
  pintuan_req_ping(&q, &m);
  return pintuan_call(c, &q, out);
}

int pintuan_create_campaign(pintuan_client *c, const pintuan_campaign_spec *spec,
                            const char *request_id, pintuan_response **out) {
  Pintuan__V1__CampaignSpec sp;
  CALL(Pintuan__V1__CreateCampaign, pintuan_req_create_campaign, &sp, spec, request_id);
}

int pintuan_update_campaign(pintuan_client *c, const char *campaign,
                            const pintuan_campaign_update *update, const char *request_id,
                            pintuan_response **out) {
  CALL(Pintuan__V1__UpdateCampaign, pintuan_req_update_campaign, campaign, update, request_id);
}

int pintuan_end_campaign(pintuan_client *c, const char *campaign, const char *request_id,
                         pintuan_response **out) {
  CALL(Pintuan__V1__EndCampaign, pintuan_req_end_campaign, campaign, request_id);
}

int pintuan_get_campaign(pintuan_client *c, const char *campaign, pintuan_response **out) {
  CALL(Pintuan__V1__GetCampaign, pintuan_req_get_campaign, campaign);
}

int pintuan_list_campaigns(pintuan_client *c, pintuan_response **out) {
  pintuan_request q;
  Pintuan__V1__ListCampaigns m;
  pintuan_req_list_campaigns(&q, &m);
  return pintuan_call(c, &q, out);
}

int pintuan_reserve(pintuan_client *c, const char *campaign, const char *user, int32_t qty,
                    const char *request_id, pintuan_response **out) {
  CALL(Pintuan__V1__Reserve, pintuan_req_reserve, campaign, user, qty, request_id);
}

int pintuan_confirm(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                    const char *request_id, pintuan_response **out) {
  CALL(Pintuan__V1__Confirm, pintuan_req_confirm, campaign, reservation_id, request_id);
}

int pintuan_cancel(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                   const char *request_id, pintuan_response **out) {
  CALL(Pintuan__V1__Cancel, pintuan_req_cancel, campaign, reservation_id, request_id);
}

int pintuan_get_reservation(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                            pintuan_response **out) {
  CALL(Pintuan__V1__GetReservation, pintuan_req_get_reservation, campaign, reservation_id);
}

int pintuan_get_holdings(pintuan_client *c, const char *campaign, const char *user,
                         pintuan_response **out) {
  CALL(Pintuan__V1__GetHoldings, pintuan_req_get_holdings, campaign, user);
}

int pintuan_join(pintuan_client *c, const char *campaign, const char *user, int mode,
                 uint64_t group_id, bool new_user, const char *request_id,
                 pintuan_response **out) {
  CALL(Pintuan__V1__Join, pintuan_req_join, campaign, user, mode, group_id, new_user, request_id);
}

int pintuan_get_group(pintuan_client *c, const char *campaign, uint64_t group_id,
                      pintuan_response **out) {
  CALL(Pintuan__V1__GetGroup, pintuan_req_get_group, campaign, group_id);
}

int pintuan_subscribe(pintuan_client *c, const char *const *campaigns, pintuan_response **out) {
  size_t n = 0;
  while (campaigns && campaigns[n]) n++;
  ProtobufCBinaryData few[64], *ids = n <= 64 ? few : malloc(n * sizeof(*ids));
  if (!ids) return *out = NULL, fail(c, "out of memory");
  pintuan_request q;
  Pintuan__V1__Subscribe m;
  pintuan_req_subscribe(&q, &m, ids, campaigns, n);
  int rc = pintuan_call(c, &q, out);
  if (ids != few) free(ids);
  return rc;
}
