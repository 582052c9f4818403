/* libpintuan: C client for the pintuan daemon (protocol pintuan.v1).
 *
 * Blocking use: pintuan_call() (or the helpers below) sends one request
 * and returns its reply. Pipelined use: pintuan_send() any number of
 * requests, pintuan_flush(), then pintuan_recv() replies in order.
 *
 * Requests and replies are the generated protobuf-c types (pintuan.pb-c.h).
 * A reply belongs to the caller: free it with pintuan_response_free().
 * Functions returning int give 0 when a reply arrived (whatever its status)
 * and -1 on a connection or protocol failure (see pintuan_error()); after
 * a failure the client is unusable and must be closed.
 * A client is not thread-safe: use one per thread.
 */
#ifndef PINTUAN_H
#define PINTUAN_H

#include <stddef.h>
#include <stdint.h>

#include "pintuan.pb-c.h"

/* The library is built with -fvisibility=hidden: what carries PINTUAN_API
 * is its whole exported API (with the generated pintuan__v1__* code of
 * pintuan.pb-c.h that its types come from). */
#define PINTUAN_API __attribute__((visibility("default")))

#define PINTUAN_DEFAULT_PORT 7733

typedef struct pintuan_client pintuan_client;
typedef Pintuan__V1__Response pintuan_response;

/* addr: "host:port", "host" (default port) or "[v6]:port". */
PINTUAN_API pintuan_client *pintuan_connect(const char *addr, int timeout_ms, char *err, size_t errlen);
PINTUAN_API void pintuan_close(pintuan_client *c);
PINTUAN_API const char *pintuan_error(const pintuan_client *c);
PINTUAN_API void pintuan_set_timeout(pintuan_client *c, int timeout_ms); /* < 0: wait forever */
PINTUAN_API int pintuan_fd(const pintuan_client *c);

/* Queues a request; sets req->id to the next correlation id when it is 0. */
PINTUAN_API int pintuan_send(pintuan_client *c, Pintuan__V1__Request *req);
PINTUAN_API int pintuan_flush(pintuan_client *c);
/* Next reply in arrival order, including daemon-initiated ones (id 0). */
PINTUAN_API int pintuan_recv(pintuan_client *c, pintuan_response **out);
/* send + flush + receive until the reply with this request's id. */
PINTUAN_API int pintuan_call(pintuan_client *c, Pintuan__V1__Request *req, pintuan_response **out);
PINTUAN_API void pintuan_response_free(pintuan_response *r);

PINTUAN_API const char *pintuan_status_str(int status); /* "OK", "SOLD_OUT", ... */
PINTUAN_API const char *pintuan_hold_state_str(int state);

/* Helpers: build the request, call, return the reply. Ids are C strings. */
PINTUAN_API int pintuan_hello(pintuan_client *c, const char *token, pintuan_response **out);
PINTUAN_API int pintuan_ping(pintuan_client *c, pintuan_response **out);
PINTUAN_API int pintuan_reserve(pintuan_client *c, const char *campaign, const char *user, int32_t qty,
               const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_confirm(pintuan_client *c, const char *campaign, uint64_t reservation_id,
               const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_cancel(pintuan_client *c, const char *campaign, uint64_t reservation_id,
              const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_get_campaign(pintuan_client *c, const char *campaign, pintuan_response **out);
PINTUAN_API int pintuan_get_holdings(pintuan_client *c, const char *campaign, const char *user, pintuan_response **out);
/* Group buy: mode is a Pintuan__V1__JoinMode; group_id for JOIN_GROUP. */
PINTUAN_API int pintuan_join(pintuan_client *c, const char *campaign, const char *user, int mode, uint64_t group_id,
            int new_user, const char *request_id, pintuan_response **out);
PINTUAN_API int pintuan_get_group(pintuan_client *c, const char *campaign, uint64_t group_id, pintuan_response **out);
/* Subscribes this connection to events (campaigns NULL-ended, or NULL for
 * all); then pintuan_recv() returns them as replies with id 0. */
PINTUAN_API int pintuan_subscribe(pintuan_client *c, const char *const *campaigns, pintuan_response **out);

/* Fills a Request for reserve without allocating: the strings must outlive
 * the send. For pipelining many requests. */
PINTUAN_API void pintuan_req_reserve(Pintuan__V1__Request *req, Pintuan__V1__Reserve *body,
                        const char *campaign, const char *user, int32_t qty,
                        const char *request_id);

#endif
