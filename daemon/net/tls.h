/* TLS on a libuv loop: OpenSSL driven through memory buffers (libuv reads
 * and writes the socket; OpenSSL only turns ciphertext into plaintext and
 * back). The storefront port's server (server.c) and pintuan-bench's load
 * connections (a client) feed what they read, take the plaintext out, hand
 * their output in, and write the ciphertext this leaves, in that order.
 *
 * A client certificate is asked for when a CA file is given: "optional"
 * takes a connection without one, "required" refuses it. A verified
 * certificate's subject CN is the connection's identity (a key name: the
 * service gives it that key's role, as a Hello would). */
#ifndef PT_TLS_H
#define PT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pt_tls pt_tls;
typedef struct pt_tls_conn pt_tls_conn;

typedef enum pt_tls_client_certs { PT_TLS_CERTS_NONE, PT_TLS_CERTS_OPTIONAL, PT_TLS_CERTS_REQUIRED } pt_tls_client_certs;

/* The server's context: its certificate chain and key (PEM files), and,
 * to verify clients' certificates, a CA file (NULL or "": none). NULL with
 * the reason in err. */
pt_tls *pt_tls_new(const char *cert_file, const char *key_file, const char *ca_file,
                   pt_tls_client_certs certs, char *err, size_t errlen);
/* A client's context: the server's certificate verified against ca_file
 * (NULL or "": the system's CAs); cert_file and key_file (NULL: none) the
 * client's own certificate. */
pt_tls *pt_tls_new_client(const char *ca_file, const char *cert_file, const char *key_file, char *err,
                          size_t errlen);
void pt_tls_free(pt_tls *t);

pt_tls_conn *pt_tls_accept(pt_tls *t);
/* A client's connection: the server's certificate must name server_name
 * (an IP address as an IP SAN). The handshake starts at the first
 * pt_tls_read; its first message is pending at once. */
pt_tls_conn *pt_tls_connect(pt_tls *t, const char *server_name);
/* The same session for a caller that gives it its own socket (SSL_set_fd:
 * libpintuan's blocking client). */
struct ssl_st *pt_tls_client_ssl(pt_tls *t, const char *server_name);
void pt_tls_conn_free(pt_tls_conn *c);

/* Ciphertext read from the socket. */
void pt_tls_feed(pt_tls_conn *c, const uint8_t *p, size_t n);
/* Plaintext, up to cap bytes: how many (0: none for now), or -1 when the
 * connection is to be closed (a failed handshake, a bad record, the peer's
 * close_notify); pt_tls_error says why. */
ssize_t pt_tls_read(pt_tls_conn *c, uint8_t *out, size_t cap);
/* Plaintext to send, all of it: 0, or -1 (the connection is broken). */
int pt_tls_write(pt_tls_conn *c, const uint8_t *p, size_t n);
/* Ciphertext waiting to go to the socket: how many bytes; pt_tls_take
 * moves up to cap of them to out (in order), returning how many. */
size_t pt_tls_pending(pt_tls_conn *c);
size_t pt_tls_take(pt_tls_conn *c, uint8_t *out, size_t cap);

bool pt_tls_established(const pt_tls_conn *c);
/* The verified peer certificate's subject CN (a server's: the client's),
 * or NULL. Once established. */
const char *pt_tls_peer_name(const pt_tls_conn *c);
const char *pt_tls_error(const pt_tls_conn *c);

#endif
