/* The protocol adapter: decodes a pintuan.v1.Request, checks its fields,
 * calls the engine with the daemon's clock, encodes the Response onto the
 * connection. Nothing here decides who gets stock; the engine does. */
#ifndef PT_SERVICE_H
#define PT_SERVICE_H

#include <stdint.h>

#include "engine.h"
#include "net/server.h"

typedef struct pt_service_stats {
  uint64_t requests, malformed, by_status[32];
} pt_service_stats;

typedef struct pt_service {
  pt_engine *engine;
  const char *admin_token; /* NULL or "": admin operations open to all */
  int64_t last_now;        /* the clock fed to the engine never goes back */
  pt_service_stats st;
} pt_service;

int64_t pt_service_now(pt_service *s);
void pt_service_on_frame(void *ctx, pt_conn *c, const uint8_t *msg, size_t len);
void pt_service_on_protocol_error(void *ctx, pt_conn *c, int status, const char *detail);

#endif
