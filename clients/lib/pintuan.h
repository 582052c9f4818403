/* libpintuan: C client for the pintuan daemon (protocol pintuan.v1).
 *
 * Blocking use: pt_client_call() (or the helpers below) sends one request
 * and returns its reply. Pipelined use: pt_client_send() any number of
 * requests, pt_client_flush(), then pt_client_recv() replies in order.
 *
 * Requests and replies are the generated protobuf-c types (pintuan.pb-c.h).
 * A reply belongs to the caller: free it with pt_response_free().
 * Functions returning int give 0 when a reply arrived (whatever its status)
 * and -1 on a connection or protocol failure (see pt_client_error()); after
 * a failure the client is unusable and must be closed.
 * A client is not thread-safe: use one per thread.
 */
#ifndef PINTUAN_H
#define PINTUAN_H

#include <stddef.h>
#include <stdint.h>

#include "pintuan.pb-c.h"

#define PT_CLIENT_DEFAULT_PORT 7733

typedef struct pt_client pt_client;
typedef Pintuan__V1__Response pt_response;

/* addr: "host:port", "host" (default port) or "[v6]:port". */
pt_client *pt_client_connect(const char *addr, int timeout_ms, char *err, size_t errlen);
void pt_client_close(pt_client *c);
const char *pt_client_error(const pt_client *c);
void pt_client_set_timeout(pt_client *c, int timeout_ms); /* < 0: wait forever */
int pt_client_fd(const pt_client *c);

/* Queues a request; sets req->id to the next correlation id when it is 0. */
int pt_client_send(pt_client *c, Pintuan__V1__Request *req);
int pt_client_flush(pt_client *c);
/* Next reply in arrival order, including daemon-initiated ones (id 0). */
int pt_client_recv(pt_client *c, pt_response **out);
/* send + flush + receive until the reply with this request's id. */
int pt_client_call(pt_client *c, Pintuan__V1__Request *req, pt_response **out);
void pt_response_free(pt_response *r);

const char *pt_status_str(int status); /* "OK", "SOLD_OUT", ... */
const char *pt_hold_state_str(int state);

/* Helpers: build the request, call, return the reply. Ids are C strings. */
int pt_hello(pt_client *c, const char *token, pt_response **out);
int pt_ping(pt_client *c, pt_response **out);
int pt_reserve(pt_client *c, const char *campaign, const char *user, int32_t qty,
               const char *request_id, pt_response **out);
int pt_confirm(pt_client *c, const char *campaign, uint64_t reservation_id,
               const char *request_id, pt_response **out);
int pt_cancel(pt_client *c, const char *campaign, uint64_t reservation_id,
              const char *request_id, pt_response **out);
int pt_get_campaign(pt_client *c, const char *campaign, pt_response **out);
int pt_get_holdings(pt_client *c, const char *campaign, const char *user, pt_response **out);
/* Group buy: mode is a Pintuan__V1__JoinMode; group_id for JOIN_GROUP. */
int pt_join(pt_client *c, const char *campaign, const char *user, int mode, uint64_t group_id,
            int new_user, const char *request_id, pt_response **out);
int pt_get_group(pt_client *c, const char *campaign, uint64_t group_id, pt_response **out);
/* Subscribes this connection to events (campaigns NULL-ended, or NULL for
 * all); then pt_client_recv() returns them as replies with id 0. */
int pt_subscribe(pt_client *c, const char *const *campaigns, pt_response **out);

/* Fills a Request for reserve without allocating: the strings must outlive
 * the send. For pipelining many requests. */
void pt_request_reserve(Pintuan__V1__Request *req, Pintuan__V1__Reserve *body,
                        const char *campaign, const char *user, int32_t qty,
                        const char *request_id);

#endif
