/* libpintuan's internals shared by its files (not exported: the library is
 * built with -fvisibility=hidden and only PINTUAN_API names leave it). */
#ifndef PINTUAN_CLIENT_INT_H
#define PINTUAN_CLIENT_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "pintuan.h"

/* Sets the client's error text (pintuan_error) and returns -1. */
int pintuan__fail(pintuan_client *c, const char *msg);

/* ---- TLS (tls.c) ---- */
typedef struct ssl_st SSL;
typedef struct pintuan__tls pintuan__tls;
/* The client's TLS settings made ready: NULL with the reason in err. */
pintuan__tls *pintuan__tls_new(const pintuan_tls *cfg, char *err, size_t errlen);
void pintuan__tls_free(pintuan__tls *t);
/* The handshake on a connected non-blocking socket, within timeout_ms,
 * verifying the daemon's certificate names host (or the configured
 * server_name): the session, or NULL with the reason in err. */
SSL *pintuan__tls_start(pintuan__tls *t, int fd, const char *host, int timeout_ms, char *err,
                        size_t errlen);
void pintuan__tls_end(SSL *s);
/* As recv/send on a non-blocking socket; EAGAIN says what to wait for in
 * *want (POLLIN or POLLOUT). */
ssize_t pintuan__tls_recv(SSL *s, void *buf, size_t n, short *want);
ssize_t pintuan__tls_send(SSL *s, const void *buf, size_t n, short *want);
bool pintuan__tls_pending(SSL *s); /* decrypted bytes wait: read before waiting on the socket */

#endif
