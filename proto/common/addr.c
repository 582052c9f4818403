#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t errlen, const char *s, const char *why) {
  snprintf(err, errlen, "bad address '%s': %s", s, why);
  return -1;
}

int pt_addr_parse(const char *s, int default_port, pt_addr *out, char *err, size_t errlen) {
  const char *h = s, *p = NULL;
  size_t hl;
  if (s[0] == '[') { /* [v6] or [v6]:port */
    const char *end = strchr(s, ']');
    if (!end) return bad(err, errlen, s, "no closing ]");
    h = s + 1;
    hl = (size_t)(end - h);
    if (end[1] == ':') p = end + 2;
    else if (end[1]) return bad(err, errlen, s, "expected :PORT after ]");
  } else {
    const char *colon = strrchr(s, ':');
    if (colon && strchr(s, ':') != colon) colon = NULL; /* a bare IPv6 address */
    hl = colon ? (size_t)(colon - s) : strlen(s);
    if (colon) p = colon + 1;
  }
  if (hl == 0) return bad(err, errlen, s, "no host (want HOST:PORT)");
  if (hl >= PT_HOST_MAX) return bad(err, errlen, s, "host name too long");
  int port = default_port;
  if (!p && default_port < 0) return bad(err, errlen, s, "no port (want HOST:PORT)");
  if (p) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (!*p || *end || errno || v < 0 || v > 65535)
      return bad(err, errlen, s, "the port must be a number 0..65535");
    port = (int)v;
  }
  memcpy(out->host, h, hl);
  out->host[hl] = 0;
  out->port = port;
  return 0;
}

int pt_addr_parse_list(const char *s, int default_port, pt_addr *out, int max, char *err,
                       size_t errlen) {
  int n = 0;
  const char *p = s;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char one[PT_HOST_MAX + 16];
    if (len == 0 || len >= sizeof one) return bad(err, errlen, s, "an empty or overlong entry");
    if (n == max) return bad(err, errlen, s, "too many addresses");
    memcpy(one, p, len);
    one[len] = 0;
    if (pt_addr_parse(one, default_port, &out[n], err, errlen)) return -1;
    n++;
    if (!comma) return n;
    p = comma + 1;
  }
}

int pt_addr_resolve(const pt_addr *a, bool passive, struct sockaddr_storage *out, int max,
                    char *err, size_t errlen) {
  char service[8];
  snprintf(service, sizeof service, "%d", a->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
  struct addrinfo *res;
  int rc = getaddrinfo(a->host, service, &hints, &res);
  if (rc) {
    snprintf(err, errlen, "address %s: %s", a->host,
             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return -1;
  }
  int n = 0;
  for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof(struct sockaddr_storage))
      continue;
    struct sockaddr_storage x;
    memset(&x, 0, sizeof x);
    memcpy(&x, ai->ai_addr, ai->ai_addrlen);
    int dup = 0;
    for (int i = 0; i < n; i++) dup |= memcmp(&out[i], &x, sizeof x) == 0;
    if (!dup) out[n++] = x;
  }
  freeaddrinfo(res);
  if (n == 0) {
    snprintf(err, errlen, "address %s: no IPv4 or IPv6 address", a->host);
    return -1;
  }
  return n;
}

const char *pt_sockaddr_str(const struct sockaddr_storage *a, char *buf, size_t len) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
    snprintf(buf, len, "[%s]:%d", ip, ntohs(s6->sin6_port));
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "%s:%d", ip, ntohs(s4->sin_port));
  }
  return buf;
}

const char *pt_addr_str(const pt_addr *a, char *buf, size_t len) {
  snprintf(buf, len, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
  return buf;
}
