#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct pt_tls {
  SSL_CTX *ctx;
};

struct pt_tls_conn {
  SSL *ssl;
  BIO *in, *out; /* memory: ciphertext read from the socket, and to write to it */
  bool established;
  char peer[65];     /* the verified client certificate's CN; "" when none */
  char err[160];
};

static void why(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_get_error();
  char ssl[120] = "";
  if (e) ERR_error_string_n(e, ssl, sizeof ssl);
  snprintf(err, errlen, "%s%s%s", what, ssl[0] ? ": " : "", ssl);
  ERR_clear_error();
}

pt_tls *pt_tls_new(const char *cert_file, const char *key_file, const char *ca_file,
                   pt_tls_client_certs certs, char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return why(err, errlen, "TLS"), NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  /* No pintuan client resumes a session: issuing TLS 1.3 tickets (two a
   * connection) and caching TLS 1.2 sessions was a third of a handshake's
   * cost in the daemon (BENCHMARKS.md, TLS) for nothing. */
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  char what[600];
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
    snprintf(what, sizeof what, "TLS certificate %s", cert_file);
    goto bad;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    snprintf(what, sizeof what, "TLS key %s (or it is not the certificate's)", key_file);
    goto bad;
  }
  if (ca_file && *ca_file) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
      snprintf(what, sizeof what, "TLS client CA %s", ca_file);
      goto bad;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (names) SSL_CTX_set_client_CA_list(ctx, names);
    int mode = certs == PT_TLS_CERTS_NONE ? SSL_VERIFY_NONE
               : certs == PT_TLS_CERTS_REQUIRED ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                 : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx, mode, NULL);
  }
  pt_tls *t = pt_xcalloc(1, sizeof *t);
  t->ctx = ctx;
  return t;
bad:
  why(err, errlen, what);
  SSL_CTX_free(ctx);
  return NULL;
}

pt_tls *pt_tls_new_client(const char *ca_file, const char *cert_file, const char *key_file, char *err,
                          size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return why(err, errlen, "TLS"), NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* a write that wanted the socket may be retried from wherever its bytes are now */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  char what[600];
  if ((ca_file && *ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                           : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
    snprintf(what, sizeof what, "TLS CA %s", ca_file && *ca_file ? ca_file : "(the system's)");
    goto bad;
  }
  if (cert_file && *cert_file) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
      snprintf(what, sizeof what, "TLS certificate %s", cert_file);
      goto bad;
    }
    if (!key_file || SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      snprintf(what, sizeof what, "TLS key %s (or it is not the certificate's)", key_file ? key_file : "(none)");
      goto bad;
    }
  }
  pt_tls *t = pt_xcalloc(1, sizeof *t);
  t->ctx = ctx;
  return t;
bad:
  why(err, errlen, what);
  SSL_CTX_free(ctx);
  return NULL;
}

void pt_tls_free(pt_tls *t) {
  if (!t) return;
  SSL_CTX_free(t->ctx);
  free(t);
}

static pt_tls_conn *conn_new(pt_tls *t) {
  pt_tls_conn *c = pt_xcalloc(1, sizeof *c);
  c->ssl = SSL_new(t->ctx);
  c->in = BIO_new(BIO_s_mem());
  c->out = BIO_new(BIO_s_mem());
  if (!c->ssl || !c->in || !c->out) abort(); /* out of memory */
  BIO_set_mem_eof_return(c->in, -1); /* empty: "more to come", not EOF */
  SSL_set_bio(c->ssl, c->in, c->out);  /* the SSL owns both from here */
  return c;
}

pt_tls_conn *pt_tls_accept(pt_tls *t) {
  pt_tls_conn *c = conn_new(t);
  SSL_set_accept_state(c->ssl);
  return c;
}

/* The server's certificate must name server_name: an IP address as an IP
 * SAN, a host name as a DNS name (and the SNI). */
static void expect_name(SSL *s, const char *server_name) {
  ASN1_OCTET_STRING *ip = a2i_IPADDRESS(server_name);
  if (ip) {
    ASN1_OCTET_STRING_free(ip);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), server_name);
  } else {
    SSL_set_tlsext_host_name(s, server_name);
    SSL_set1_host(s, server_name);
  }
}

SSL *pt_tls_client_ssl(pt_tls *t, const char *server_name) {
  SSL *s = SSL_new(t->ctx);
  if (!s) abort(); /* out of memory */
  expect_name(s, server_name);
  return s;
}

pt_tls_conn *pt_tls_connect(pt_tls *t, const char *server_name) {
  pt_tls_conn *c = conn_new(t);
  expect_name(c->ssl, server_name);
  SSL_set_connect_state(c->ssl);
  SSL_do_handshake(c->ssl); /* the ClientHello, pending now */
  return c;
}

void pt_tls_conn_free(pt_tls_conn *c) {
  if (!c) return;
  SSL_free(c->ssl);
  free(c);
}

void pt_tls_feed(pt_tls_conn *c, const uint8_t *p, size_t n) {
  if (n) BIO_write(c->in, p, (int)n);
}

/* After a call of SSL's that returned rc <= 0: 0 (it wants more input) or
 * -1 (the connection ends; c->err says why). */
static int failed(pt_tls_conn *c, int rc, const char *stage) {
  int e = SSL_get_error(c->ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) {
    snprintf(c->err, sizeof c->err, "the peer closed TLS");
  } else {
    long v = SSL_get_verify_result(c->ssl);
    char what[96];
    snprintf(what, sizeof what, "TLS %s failed%s%s", stage, v != X509_V_OK ? ": certificate " : "",
             v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    why(c->err, sizeof c->err, what);
  }
  return -1;
}

ssize_t pt_tls_read(pt_tls_conn *c, uint8_t *out, size_t cap) {
  if (!c->established) {
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1) return failed(c, rc, "handshake");
    c->established = true;
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert && SSL_get_verify_result(c->ssl) == X509_V_OK)
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, c->peer, sizeof c->peer);
    X509_free(cert);
  }
  size_t got = 0;
  int rc = SSL_read_ex(c->ssl, out, cap, &got);
  if (rc == 1) return (ssize_t)got;
  return failed(c, rc, "read");
}

int pt_tls_write(pt_tls_conn *c, const uint8_t *p, size_t n) {
  while (n) {
    size_t done = 0;
    int rc = SSL_write_ex(c->ssl, p, n, &done);
    if (rc != 1) { /* established, into a memory BIO: never "wants" anything */
      failed(c, rc, "write");
      return -1;
    }
    p += done, n -= done;
  }
  return 0;
}

size_t pt_tls_pending(pt_tls_conn *c) { return BIO_ctrl_pending(c->out); }

size_t pt_tls_take(pt_tls_conn *c, uint8_t *out, size_t cap) {
  int n = BIO_read(c->out, out, (int)(cap > INT32_MAX ? INT32_MAX : cap));
  return n > 0 ? (size_t)n : 0;
}

bool pt_tls_established(const pt_tls_conn *c) { return c->established; }
const char *pt_tls_peer_name(const pt_tls_conn *c) { return c->peer[0] ? c->peer : NULL; }
const char *pt_tls_error(const pt_tls_conn *c) { return c->err[0] ? c->err : "TLS failed"; }
