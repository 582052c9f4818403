/* Addresses as users write them: "host:port", "[v6]:port", "host" (the
 * default port), a bare IPv6 address, and lists "a:1,b:2" (failover).
 * Host names are resolved with getaddrinfo. */
#ifndef PT_ADDR_H
#define PT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PT_DEFAULT_PORT 7733
#define PT_HOST_MAX 256

typedef struct pt_addr {
  char host[PT_HOST_MAX]; /* without brackets */
  int port;
} pt_addr;

/* 0, or -1 with a message in err. default_port < 0: the port is required. */
int pt_addr_parse(const char *s, int default_port, pt_addr *out, char *err, size_t errlen);
/* Comma-separated addresses; returns how many (1..max) or -1 with err. */
int pt_addr_parse_list(const char *s, int default_port, pt_addr *out, int max, char *err,
                       size_t errlen);
/* Resolves to up to max socket addresses, duplicates dropped (passive: for
 * listening). Returns how many (>= 1) or -1 with err. */
int pt_addr_resolve(const pt_addr *a, bool passive, struct sockaddr_storage *out, int max,
                    char *err, size_t errlen);
/* "1.2.3.4:5" or "[::1]:5". */
const char *pt_sockaddr_str(const struct sockaddr_storage *a, char *buf, size_t len);
/* "host:port", bracketing an IPv6 host. */
const char *pt_addr_str(const pt_addr *a, char *buf, size_t len);

#endif
