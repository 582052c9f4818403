// Package pintuan is the Go client of pintuand, the daemon that matches
// shoppers into group buys (拼团) and flash sales (秒杀). It speaks the
// daemon's protocol (proto/pintuan.proto, package pintuan.v1, generated
// into pintuan.io/pintuan/v1) and behaves as the C client libpintuan does.
//
// # Connection and pipelining
//
// Dial connects to the first address of a list that answers ("h1:p1,h2:p2":
// a primary and its standby). One Client holds one connection, shared by
// every goroutine: each request gets a correlation id, frames are written
// in the order they were queued, and replies, which the daemon sends in
// request order, are matched to their requests by that id. A Client is safe
// for concurrent use; many goroutines calling Reserve at once pipeline on
// the one connection. Send queues a request and returns a Pending whose
// Wait gives its reply, for pipelining from one goroutine. The requests in
// flight are capped (WithMaxInFlight): a caller past the cap waits for a
// slot, or for its context.
//
// Every call takes a context: its cancellation or deadline ends the wait
// and the call returns ctx.Err(). A request already queued may still be
// sent and decided: retry a mutation with the same request id, which the
// daemon answers with its original answer (Response.Replay) and no second
// effect.
//
// A call returns a nil error when a reply arrived, whatever its status
// (OK, SOLD_OUT, LIMIT_EXCEEDED, ...: Response.GetStatus), and an error
// when the connection failed beyond what failover could mend.
//
// # Failover
//
// As libpintuan's:
//   - A connection lost (refused, reset, closed) or a reply not in time
//     (WithTimeout): the client connects to the next address of the list,
//     round robin, and sends again, in order, every request not answered
//     yet, byte for byte: the same correlation id and request id.
//   - NOT_LEADER for the oldest request in flight, naming (Response.Leader)
//     an address of the list (the same host and port, or a name of the
//     same address): the client goes there with every request in flight.
//     An address not in the list is never followed (it goes on to the next
//     address of the list instead), so no daemon, nor whoever can write its
//     Redis, sends the client and its key elsewhere.
//   - A new connection first gets the session back: the last Hello and the
//     last Subscribe the daemon answered OK. Events pushed while no
//     connection was up are not replayed.
//   - Attempts pause 10 ms, doubling up to 500 ms (none before the first,
//     nor before following a NOT_LEADER), at most 16 attempts within 10 s
//     from the failure until the daemon answers again (WithFailover).
//   - A blocking call answered UNAVAILABLE or OVERLOADED sends the same
//     request again after the same pauses, within the same bounds; past
//     them it returns that answer. Replies to Send are returned as they come.
//
// # Events
//
// Subscribe makes the connection an event feed; Events returns the
// channel the events (Responses with id 0) arrive on. The channel is
// buffered (WithEventBuffer); an event that finds it full is dropped and
// counted (Stats.EventsDropped) rather than stalling every reply behind it.
//
// # Keys and TLS
//
// With keys on the daemon, say Hello with a key (Hello, HelloKeyFile, or
// WithKeyFile at Dial); ReadKeyFile reads a key file as pintuand --make-key
// writes it ("NAME SECRET"). WithTLS speaks TLS: TLSConfig makes a
// tls.Config from a CA file and an optional client certificate; every
// connection verifies that the daemon's certificate names the address
// dialled (an IP address as an IP SAN) unless the config names a server.
package pintuan
