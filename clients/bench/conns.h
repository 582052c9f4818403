/* The load connections: one libuv TCP client each, with its pipeline of
 * requests in flight (a ring, in request order) and its output batched into
 * one write per loop turn. Replies are read as 4-byte length-prefixed frames
 * and handed to run_on_reply; once every connection answered or failed,
 * run_start is called. */
#ifndef PT_BENCH_CONNS_H
#define PT_BENCH_CONNS_H

#include <sys/socket.h>

#include "bench.h"
#include "wire.h"

/* Starts b->o.conns connections to b->addrs[first] on b->loop; 0, or -1
 * after a message. */
int conns_open(bench *b, int first);
/* A new slot at the end of c's pipeline. */
inflight *conn_push(conn *c);
/* Queues q on c with the connection's next correlation id. */
void conn_queue_request(conn *c, Pintuan__V1__Request *q);
/* The same for the ops the scenarios send, encoded by wire.c. */
void conn_queue_op(conn *c, const bw_request *q);
/* Queues msg as it is (a replayed request that does not decode). */
void conn_queue_raw(conn *c, const uint8_t *msg, size_t n);
/* Closes every connection still up, and the flusher. */
void conns_close(bench *b);
/* Requests awaiting a reply on connections that have not given up (those
 * reconnecting included: their requests go again). */
size_t conns_in_flight(const bench *b);
/* Is any connection up, or coming back? */
bool conns_alive(const bench *b);
/* Is one failing over now? */
bool conns_reconnecting(const bench *b);
/* The reply to c's oldest request came: its frame leaves the unanswered log. */
void conn_answered(conn *c, uint32_t frame_len);
/* A NOT_LEADER reply on c: every unanswered request goes to the primary it
 * names when that is one of -a's addresses, else to the next one. */
void conn_redirect(conn *c, const char *leader);
/* An UNAVAILABLE or OVERLOADED answer on c: the daemon is there and asks to
 * be asked again; every unanswered request goes again to it after a pause
 * (10 ms doubling to 500 ms, for up to a minute). */
void conn_busy(conn *c);
void conns_free(bench *b);

#endif
