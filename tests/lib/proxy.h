/* A TCP proxy on 127.0.0.1 for partition tests: what connects to its port
 * is connected to the target port, and bytes are copied both ways by a
 * thread until the test cuts it. A cut partitions without closing: the
 * connections stay open and nothing more crosses (what was sent waits in
 * the kernel), as when a network drops packets; a heal lets the held
 * bytes through again. Real sockets end to end. */
#ifndef PT_PROXY_H
#define PT_PROXY_H

#include <stdbool.h>

typedef struct pt_proxy pt_proxy;

/* Listens on a free loopback port for target_port. NULL on failure. */
pt_proxy *proxy_start(int target_port);
int proxy_port(const pt_proxy *p);
/* Partitions (cut true) or heals (false); returns once the copying thread
 * has seen it: nothing crosses after proxy_cut(p, true) returns. */
void proxy_cut(pt_proxy *p, bool cut);
/* Closes every connection and the listener, joins the thread. */
void proxy_stop(pt_proxy *p);

#endif
