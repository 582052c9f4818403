/* libpintuan: C client for the pintuan daemon (protocol pintuan.v1).
 *
 * Every public name starts with pintuan_ (PINTUAN_ for macros), so a
 * program may link this library and the engine (pt_) both.
 *
 * Blocking use: the call helpers below (pintuan_reserve(), ...) or
 * pintuan_call() send one request and return its reply. Pipelined use:
 * pintuan_send() any number of requests (made with the pintuan_req_*
 * builders), pintuan_flush(), then pintuan_recv() the replies in order.
 *
 * Requests and replies are the generated protobuf-c types (pintuan.pb-c.h).
 * A reply belongs to the caller: free it with pintuan_response_free().
 * Functions returning int give 0 when a reply arrived (whatever its status)
 * and -1 on a connection or protocol failure that failover could not mend
 * (see pintuan_error()); the requests in flight then are dropped (retry
 * them with the same request_id), and the next call connects again.
 * A client is not thread-safe: use one per thread.
 *
 * Failover. A client is given one address or several, "h1:p1,h2:p2"
 * (a primary and its standby); it connects to the first that answers.
 * - A connection lost (refused, reset, closed) or a reply not in time,
 *   during any call: the client connects again, to the next address of
 *   the list (round robin; the same one if there is one), and sends again,
 *   in order, every request not answered yet: byte for byte, so with the
 *   same correlation id and request_id, and a retried mutation has exactly
 *   one effect (the daemon answers it as a replay when it already
 *   decided it). This holds for blocking calls and pipelines alike.
 * - A reply NOT_LEADER with Response.leader (HOST:PORT of the primary):
 *   the client connects to that address and sends the request again, if
 *   it is one of the client's addresses (the same host and port, or a name
 *   of the same address); any other is not followed, so no daemon (nor
 *   whoever can write its Redis) sends a client, or its key, elsewhere.
 * - Before re-sending, a new connection gets the session back: the last
 *   Hello and the last Subscribe the daemon answered OK are sent again
 *   (events pushed while no connection was up are not replayed).
 * - Attempts, with a pause doubling from 10 ms to 500 ms between them
 *   (none before the first, nor before following a NOT_LEADER), are
 *   bounded by pintuan_set_failover() until the daemon answers again.
 * - A blocking call answered UNAVAILABLE (a daemon rebuilding, or unsure of
 *   its lease) or OVERLOADED is sent again, the same request, after the
 *   same pauses and within the same bounds; past them the call returns
 *   that answer. Pipelined replies are returned as they come.
 * - pintuan_get_stats() counts what failover did.
 *
 * Ids (campaign, user, request) are C strings here, 1..64 bytes on the
 * wire; the daemon answers INVALID_ARGUMENT for others.
 */
#ifndef PINTUAN_H
#define PINTUAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pintuan.pb-c.h"

/* The library is built with -fvisibility=hidden: what carries PINTUAN_API
 * is its whole exported API (with the generated pintuan__v1__* code of
 * pintuan.pb-c.h that its types come from). */
#define PINTUAN_API __attribute__((visibility("default")))

#define PINTUAN_DEFAULT_PORT 7733
#define PINTUAN_MAX_ADDRS 16           /* addresses in a failover list */
#define PINTUAN_FAILOVER_ATTEMPTS 16   /* default: connection attempts... */
#define PINTUAN_FAILOVER_MS 10000      /* ...within this time, from a failure */

typedef struct pintuan_client pintuan_client;
typedef Pintuan__V1__Request pintuan_request;
typedef Pintuan__V1__Response pintuan_response;

/* ---- connection ---- */

/* addrs: "host:port", "host" (default port), "[v6]:port", or several of
 * them separated by commas (at most PINTUAN_MAX_ADDRS): the first that
 * answers is used. timeout_ms bounds a connect and each wait for the
 * daemon. NULL on failure, with every address's reason in err. */
PINTUAN_API pintuan_client *pintuan_connect(const char *addrs, int timeout_ms, char *err,
                                            size_t errlen);
/* The same over TLS: every connection (failover's too) verifies the
 * daemon's certificate against ca_file (NULL: the system's CAs) and that it
 * names the address dialled (an IP address as an IP SAN) or server_name
 * when given; cert_file and key_file, when given, are the client's own
 * certificate, which may carry its key's identity (its subject CN). With
 * TLS, poll pintuan_fd only after pintuan_recv said it has nothing: the
 * library may hold decrypted bytes the socket no longer shows. */
typedef struct pintuan_tls {
  const char *ca_file;
  const char *cert_file, *key_file;
  const char *server_name;
} pintuan_tls;
PINTUAN_API pintuan_client *pintuan_connect_tls(const char *addrs, int timeout_ms,
                                                const pintuan_tls *tls, char *err, size_t errlen);
PINTUAN_API void pintuan_close(pintuan_client *c);
PINTUAN_API const char *pintuan_error(const pintuan_client *c);
PINTUAN_API void pintuan_set_timeout(pintuan_client *c, int timeout_ms); /* < 0: wait forever */
/* Failover after a failure: at most max_attempts connection attempts
 * (0: none, a failure is final) within max_ms (<= 0: no time bound), until
 * the daemon answers again; waits for the daemon during that time end with
 * it, so a call that fails takes at most its timeout and max_ms. Defaults
 * PINTUAN_FAILOVER_ATTEMPTS and PINTUAN_FAILOVER_MS. */
PINTUAN_API void pintuan_set_failover(pintuan_client *c, int max_attempts, int max_ms);
typedef struct pintuan_stats {
  uint64_t failures;   /* connections lost (each one began a failover) */
  uint64_t reconnects; /* new connections made by failover or a redirect */
  uint64_t redirects;  /* NOT_LEADER replies followed to the leader */
  uint64_t resent;     /* requests sent again on a new connection */
  uint64_t busy;       /* blocking calls sent again after UNAVAILABLE or OVERLOADED */
  uint64_t strangers;  /* NOT_LEADER naming an address not in the list: not followed */
} pintuan_stats;
PINTUAN_API void pintuan_get_stats(const pintuan_client *c, pintuan_stats *out);
/* The connected address, numeric ("127.0.0.1:7733", "[::1]:7733"); "" when
 * not connected. */
PINTUAN_API const char *pintuan_peer(const pintuan_client *c);
PINTUAN_API int pintuan_fd(const pintuan_client *c); /* -1 when not connected */

/* ---- any request ---- */

/* Queues a request; sets req->id to the next correlation id when it is 0. */
PINTUAN_API int pintuan_send(pintuan_client *c, pintuan_request *req);
PINTUAN_API int pintuan_flush(pintuan_client *c);
/* Next reply in arrival order, including daemon-initiated ones (id 0). */
PINTUAN_API int pintuan_recv(pintuan_client *c, pintuan_response **out);
/* send + flush + receive until the reply with this request's id. */
PINTUAN_API int pintuan_call(pintuan_client *c, pintuan_request *req, pintuan_response **out);
PINTUAN_API void pintuan_response_free(pintuan_response *r);

PINTUAN_API const char *pintuan_status_str(int status); /* "OK", "SOLD_OUT", ... */
PINTUAN_API const char *pintuan_hold_state_str(int state);
/* A C string as protobuf bytes, pointing into s (no copy). */
PINTUAN_API ProtobufCBinaryData pintuan_bytes(const char *s);

/* ---- campaigns ---- */

/* What CreateCampaign puts up. campaign_id, kind, stock and hold_ms are
 * always sent (kind 0 means a flash sale); for a group buy also group_size
 * and group_ttl_ms; every other field when it is not 0/false, which the
 * protocol reads as absent (start: now, end: never, limit: none, ...). */
typedef struct pintuan_campaign_spec {
  const char *campaign_id;
  int kind;                   /* PINTUAN__V1__CAMPAIGN_KIND__FLASH_SALE or __GROUP_BUY */
  int64_t start_ms, end_ms;   /* Unix ms; 0: already started / never ends */
  int64_t stock;              /* units put up */
  uint32_t per_user_limit;    /* units per user (group buy: groups); 0: no limit */
  int64_t hold_ms;            /* payment window of a hold or a seat, > 0 */
  bool waitlist;              /* flash sale: queue users when sold out */
  /* group buy */
  uint32_t group_size;        /* N, 2..64 */
  int64_t group_ttl_ms;       /* a group's deadline: its opening + this */
  bool new_users_only;        /* 老带新: joiners must be new users */
  uint32_t simulate_min_paid; /* 模拟成团 with >= M paid; 0: off */
  int64_t match_margin_ms;    /* AUTO skips groups this close to their deadline */
} pintuan_campaign_spec;

/* UpdateCampaign: only the fields named in `fields` are sent (changed). */
enum {
  PINTUAN_UPDATE_STOCK = 1 << 0,
  PINTUAN_UPDATE_END = 1 << 1,
  PINTUAN_UPDATE_LIMIT = 1 << 2,
  PINTUAN_UPDATE_HOLD = 1 << 3,
  PINTUAN_UPDATE_WAITLIST = 1 << 4,
};
typedef struct pintuan_campaign_update {
  unsigned fields; /* PINTUAN_UPDATE_* */
  int64_t stock;   /* may not drop below held + sold */
  int64_t end_ms;
  uint32_t per_user_limit;
  int64_t hold_ms;
  bool waitlist;
} pintuan_campaign_update;

/* ---- request builders ----
 * Fill a caller-provided Request and its body without allocating: the
 * Request points to the body, and both point to the strings given, which
 * must outlive the send (pintuan_send() encodes at once; pintuan_flush()
 * does not need them). For pipelining many requests; each call helper
 * below is its builder plus pintuan_call(). A request_id is the
 * idempotency key of a mutating request: reuse it to retry safely. */

/* key: the key's name, secret its secret (NULL, NULL: no key, for a daemon
 * without keys). */
PINTUAN_API void pintuan_req_hello(pintuan_request *req, Pintuan__V1__Hello *body, const char *key,
                                   const char *secret);
PINTUAN_API void pintuan_req_ping(pintuan_request *req, Pintuan__V1__Ping *body);
/* spec_body: storage for the CampaignSpec message the body points to. */
PINTUAN_API void pintuan_req_create_campaign(pintuan_request *req,
                                             Pintuan__V1__CreateCampaign *body,
                                             Pintuan__V1__CampaignSpec *spec_body,
                                             const pintuan_campaign_spec *spec,
                                             const char *request_id);
PINTUAN_API void pintuan_req_update_campaign(pintuan_request *req,
                                             Pintuan__V1__UpdateCampaign *body,
                                             const char *campaign,
                                             const pintuan_campaign_update *update,
                                             const char *request_id);
PINTUAN_API void pintuan_req_end_campaign(pintuan_request *req, Pintuan__V1__EndCampaign *body,
                                          const char *campaign, const char *request_id);
PINTUAN_API void pintuan_req_get_campaign(pintuan_request *req, Pintuan__V1__GetCampaign *body,
                                          const char *campaign);
/* A page: from cursor (0: the first), at most limit campaigns (0: the
 * daemon's default, 100; at most 1000); (*out)->campaigns->next_cursor is
 * the next page's cursor, 0 after the last. */
PINTUAN_API void pintuan_req_list_campaigns(pintuan_request *req,
                                            Pintuan__V1__ListCampaigns *body, uint64_t cursor,
                                            uint32_t limit);
PINTUAN_API void pintuan_req_reserve(pintuan_request *req, Pintuan__V1__Reserve *body,
                                     const char *campaign, const char *user, int32_t qty,
                                     const char *request_id);
/* A hold belongs to its user: confirm, cancel and get_reservation name the
 * user that reserved (or joined); another user's reservation is NOT_FOUND. */
PINTUAN_API void pintuan_req_confirm(pintuan_request *req, Pintuan__V1__Confirm *body,
                                     const char *campaign, uint64_t reservation_id,
                                     const char *user, const char *request_id);
PINTUAN_API void pintuan_req_cancel(pintuan_request *req, Pintuan__V1__Cancel *body,
                                    const char *campaign, uint64_t reservation_id,
                                    const char *user, const char *request_id);
PINTUAN_API void pintuan_req_get_reservation(pintuan_request *req,
                                             Pintuan__V1__GetReservation *body,
                                             const char *campaign, uint64_t reservation_id,
                                             const char *user);
PINTUAN_API void pintuan_req_get_holdings(pintuan_request *req, Pintuan__V1__GetHoldings *body,
                                          const char *campaign, const char *user);
/* Group buy: mode is a Pintuan__V1__JoinMode (JOIN_OPEN, JOIN_GROUP with
 * group_id, JOIN_AUTO); group_id 0 is not sent; new_user is the
 * storefront's word for 老带新 campaigns. */
PINTUAN_API void pintuan_req_join(pintuan_request *req, Pintuan__V1__Join *body,
                                  const char *campaign, const char *user, int mode,
                                  uint64_t group_id, bool new_user, const char *request_id);
PINTUAN_API void pintuan_req_get_group(pintuan_request *req, Pintuan__V1__GetGroup *body,
                                       const char *campaign, uint64_t group_id);
/* n campaigns (0: all); ids is storage for n entries. */
PINTUAN_API void pintuan_req_subscribe(pintuan_request *req, Pintuan__V1__Subscribe *body,
                                       ProtobufCBinaryData *ids, const char *const *campaigns,
                                       size_t n);

/* ---- blocking calls: build, send, wait for the reply ---- */

/* Says who the client is; the daemon answers UNAUTHENTICATED (and closes)
 * for a wrong key. Sent again on every new connection failover makes. */
PINTUAN_API int pintuan_hello(pintuan_client *c, const char *key, const char *secret,
                              pintuan_response **out);
/* A client key file, as pintuand --make-key writes it: one line "NAME
 * SECRET". 0, or -1 with the reason in err. */
PINTUAN_API int pintuan_read_key_file(const char *path, char *name, size_t name_size, char *secret,
                                      size_t secret_size, char *err, size_t errlen);
PINTUAN_API int pintuan_ping(pintuan_client *c, pintuan_response **out);
PINTUAN_API int pintuan_create_campaign(pintuan_client *c, const pintuan_campaign_spec *spec,
                                        const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_update_campaign(pintuan_client *c, const char *campaign,
                                        const pintuan_campaign_update *update,
                                        const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_end_campaign(pintuan_client *c, const char *campaign,
                                     const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_get_campaign(pintuan_client *c, const char *campaign,
                                     pintuan_response **out);
PINTUAN_API int pintuan_list_campaigns(pintuan_client *c, uint64_t cursor, uint32_t limit,
                                       pintuan_response **out);
PINTUAN_API int pintuan_reserve(pintuan_client *c, const char *campaign, const char *user,
                                int32_t qty, const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_confirm(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                                const char *user, const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_cancel(pintuan_client *c, const char *campaign, uint64_t reservation_id,
                               const char *user, const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_get_reservation(pintuan_client *c, const char *campaign,
                                        uint64_t reservation_id, const char *user,
                                        pintuan_response **out);
PINTUAN_API int pintuan_get_holdings(pintuan_client *c, const char *campaign, const char *user,
                                     pintuan_response **out);
/* Reads that accept staleness (stale_ok): a standby may answer them from
 * the state it followed, (*out)->staleness saying how old (the last record,
 * its epoch, age_ms); a primary answers them as any read, with none. For
 * product pages, never for decisions. */
PINTUAN_API int pintuan_get_campaign_stale(pintuan_client *c, const char *campaign,
                                           pintuan_response **out);
PINTUAN_API int pintuan_get_reservation_stale(pintuan_client *c, const char *campaign,
                                              uint64_t reservation_id, const char *user,
                                              pintuan_response **out);
PINTUAN_API int pintuan_join(pintuan_client *c, const char *campaign, const char *user, int mode,
                             uint64_t group_id, bool new_user, const char *request_id,
                             pintuan_response **out);
PINTUAN_API int pintuan_get_group(pintuan_client *c, const char *campaign, uint64_t group_id,
                                  pintuan_response **out);
/* Subscribes this connection to events (campaigns NULL-ended, or NULL for
 * all); then pintuan_recv() returns them as replies with id 0. */
PINTUAN_API int pintuan_subscribe(pintuan_client *c, const char *const *campaigns,
                                  pintuan_response **out);

#endif
