/* libpintuan's TLS: OpenSSL on the client's own non-blocking socket, the
 * context and the name checks made by pt_tls (daemon/net/tls.h) as for
 * every pintuan client. The handshake runs to its end within the connect's
 * timeout; after it, reads and writes behave as recv/send on a non-blocking
 * socket do, so client.c's waits, failover and pipelining are the same
 * over TLS. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "clock.h"
#include "tls.h"

struct pintuan__tls {
  pt_tls *t;
  char server_name[256]; /* "" : each address's host */
};

pintuan__tls *pintuan__tls_new(const pintuan_tls *cfg, char *err, size_t errlen) {
  if ((cfg->cert_file && *cfg->cert_file) != (cfg->key_file && *cfg->key_file)) {
    snprintf(err, errlen, "TLS: a client certificate needs both cert_file and key_file");
    return NULL;
  }
  pt_tls *t = pt_tls_new_client(cfg->ca_file, cfg->cert_file, cfg->key_file, err, errlen);
  if (!t) return NULL;
  pintuan__tls *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errlen, "out of memory");
    pt_tls_free(t);
    return NULL;
  }
  p->t = t;
  if (cfg->server_name) snprintf(p->server_name, sizeof p->server_name, "%s", cfg->server_name);
  return p;
}

void pintuan__tls_free(pintuan__tls *p) {
  if (!p) return;
  pt_tls_free(p->t);
  free(p);
}

/* What SSL wants after rc: 0 with *want set (wait for it), or -1. */
static int wants(SSL *s, int rc, short *want) {
  switch (SSL_get_error(s, rc)) {
  case SSL_ERROR_WANT_READ: *want = POLLIN; return 0;
  case SSL_ERROR_WANT_WRITE: *want = POLLOUT; return 0;
  default: return -1;
  }
}

static SSL *give_up(SSL *s, char *err, size_t errlen, const char *fmt, const char *name, int ms) {
  snprintf(err, errlen, fmt, name, ms);
  SSL_free(s);
  return NULL;
}

/* OpenSSL's socket BIO writes with write(2): a daemon gone (killed, say)
 * would raise SIGPIPE in the application, which a library must not. This
 * BIO is the socket BIO with its writes made by send(MSG_NOSIGNAL), as the
 * plaintext path's are. */
static BIO_METHOD *nosig_method;
static int nosig_write(BIO *b, const char *buf, int len) {
  int fd = -1;
  BIO_get_fd(b, &fd);
  ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
  BIO_clear_retry_flags(b);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
  return (int)n;
}
static void nosig_init(void) {
  const BIO_METHOD *sock = BIO_s_socket();
  BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "pintuan socket (no SIGPIPE)");
  if (!m || !BIO_meth_set_write(m, nosig_write) || !BIO_meth_set_read(m, BIO_meth_get_read(sock)) ||
      !BIO_meth_set_puts(m, BIO_meth_get_puts(sock)) || !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) ||
      !BIO_meth_set_create(m, BIO_meth_get_create(sock)) || !BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock)))
    abort(); /* out of memory */
  nosig_method = m;
}

SSL *pintuan__tls_start(pintuan__tls *p, int fd, const char *host, int timeout_ms, char *err,
                        size_t errlen) {
  const char *name = p->server_name[0] ? p->server_name : host;
  SSL *s = pt_tls_client_ssl(p->t, name);
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, nosig_init);
  BIO *b = BIO_new(nosig_method);
  if (!b) return give_up(s, err, errlen, "TLS with %s: cannot use the socket", name, 0);
  BIO_set_fd(b, fd, BIO_NOCLOSE);
  SSL_set_bio(s, b, b);
  int64_t end = pt_mono_ns() / 1000000 + timeout_ms;
  for (;;) {
    int rc = SSL_connect(s);
    if (rc == 1) return s;
    short want;
    if (wants(s, rc, &want)) {
      long v = SSL_get_verify_result(s);
      unsigned long e = ERR_get_error();
      char ssl[160] = "";
      if (e) ERR_error_string_n(e, ssl, sizeof ssl);
      ERR_clear_error();
      snprintf(err, errlen, "TLS handshake with %s failed%s%s%s%s", name,
               v != X509_V_OK ? ": certificate " : "", v != X509_V_OK ? X509_verify_cert_error_string(v) : "",
               ssl[0] ? ": " : "", ssl);
      SSL_free(s);
      return NULL;
    }
    int64_t left = timeout_ms < 0 ? -1 : end - pt_mono_ns() / 1000000;
    struct pollfd pf = {.fd = fd, .events = want};
    int r = timeout_ms >= 0 && left <= 0 ? 0 : poll(&pf, 1, (int)left);
    if (r == 0) return give_up(s, err, errlen, "TLS handshake with %s: timed out after %d ms", name, timeout_ms);
    if (r < 0 && errno != EINTR) return give_up(s, err, errlen, "TLS handshake with %s: poll failed", name, 0);
  }
}

void pintuan__tls_end(SSL *s) { SSL_free(s); } /* no close_notify: the socket closes next */

/* errno for a failed call that wants nothing: the socket's, else EPROTO. */
static ssize_t broken(int e) {
  ERR_clear_error();
  errno = e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO;
  return -1;
}

ssize_t pintuan__tls_recv(SSL *s, void *buf, size_t n, short *want) {
  size_t got = 0;
  errno = 0;
  int rc = SSL_read_ex(s, buf, n, &got);
  if (rc == 1) return (ssize_t)got;
  int e = SSL_get_error(s, rc);
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (!wants(s, rc, want)) {
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_SYSCALL && errno == 0) return 0; /* an EOF without close_notify */
  return broken(e);
}

ssize_t pintuan__tls_send(SSL *s, const void *buf, size_t n, short *want) {
  size_t done = 0;
  errno = 0;
  int rc = SSL_write_ex(s, buf, n, &done);
  if (rc == 1) return (ssize_t)done;
  if (!wants(s, rc, want)) {
    errno = EAGAIN;
    return -1;
  }
  return broken(SSL_get_error(s, rc));
}

bool pintuan__tls_pending(SSL *s) { return SSL_pending(s) > 0; }
