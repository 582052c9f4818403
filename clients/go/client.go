package pintuan

// The connection, framing and failover. Every request queued and not
// answered yet stays in c.pend, in order, with its encoded frame: replies
// come back in request order, so the reply to pend's head releases it. That
// queue is what failover sends again, byte for byte (same correlation id,
// same request_id), on a new connection. c.sent counts pend's entries
// written on the current connection: a new connection starts at 0 and so
// writes all of them, in order, before anything queued later.
//
// One mutex guards it all; per connection a writer goroutine writes what is
// queued (many goroutines' requests in one write) and a reader goroutine
// matches replies. A failover runs in a goroutine of its own (c.recovering)
// while callers go on queueing.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	pb "pintuan.io/pintuan/v1"
)

const (
	// DefaultFailoverAttempts and DefaultFailoverTime bound a failover run:
	// connection attempts, and the time from the failure, until the daemon
	// answers again (libpintuan's PINTUAN_FAILOVER_ATTEMPTS and _MS).
	DefaultFailoverAttempts = 16
	DefaultFailoverTime     = 10 * time.Second
	// DefaultTimeout bounds a connect and each wait for the daemon's replies.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxInFlight caps the requests queued and not answered yet.
	DefaultMaxInFlight = 4096
	// DefaultEventBuffer is the events channel's capacity.
	DefaultEventBuffer = 1024

	backoffFirst = 10 * time.Millisecond
	backoffMax   = 500 * time.Millisecond
	maxReply     = 64 << 20 // a longer reply frame is a broken stream
	frameHeader  = 4
)

var (
	// ErrClosed is returned by calls on a closed Client, and to the calls
	// in flight when it is closed.
	ErrClosed = errors.New("pintuan: client closed")
	// ErrNotConnected: the connection is down and failover is off.
	ErrNotConnected = errors.New("pintuan: not connected")
	errStranger     = errors.New("NOT_LEADER naming an address not in the list")
)

// Stats counts what failover did (libpintuan's pintuan_stats), and the
// events dropped on a full channel.
type Stats struct {
	Failures      uint64 // connections lost (each one began a failover)
	Reconnects    uint64 // new connections made by failover or a redirect
	Redirects     uint64 // NOT_LEADER replies followed to the leader
	Resent        uint64 // requests sent again on a new connection
	Busy          uint64 // calls sent again after UNAVAILABLE or OVERLOADED
	Strangers     uint64 // NOT_LEADER naming an address not in the list: not followed
	EventsDropped uint64 // events that found the Events channel full
}

type config struct {
	timeout     time.Duration
	attempts    int
	failoverFor time.Duration
	tls         *tls.Config
	maxInFlight int
	eventBuffer int
	clientName  string
	keyName     string
	keySecret   string
	keyFile     string
}

// An Option sets up a Client at Dial.
type Option func(*config)

// WithTimeout bounds a connect and each wait for the daemon while requests
// are in flight: a daemon silent that long is taken as lost and failover
// begins. 0 or less: no bound. Default DefaultTimeout.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithFailover bounds a failover run: at most attempts connection attempts
// (0: none, a failure is final) within d (0 or less: no time bound), until
// the daemon answers again. Defaults: 16 attempts within 10 s.
func WithFailover(attempts int, d time.Duration) Option {
	return func(c *config) {
		if attempts < 0 {
			attempts = 0
		}
		c.attempts, c.failoverFor = attempts, d
	}
}

// WithTLS speaks TLS on every connection (failover's too). When cfg names
// no ServerName, each connection verifies that the daemon's certificate
// names the host dialled (an IP address as an IP SAN). See TLSConfig.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithMaxInFlight caps the requests queued and not answered yet (default
// DefaultMaxInFlight): a call past it waits for a slot.
func WithMaxInFlight(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxInFlight = n
		}
	}
}

// WithEventBuffer sets the Events channel's capacity (default
// DefaultEventBuffer).
func WithEventBuffer(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.eventBuffer = n
		}
	}
}

// WithClientName is what Hello tells the daemon (default "pintuan-go").
func WithClientName(name string) Option { return func(c *config) { c.clientName = name } }

// WithKey says Hello with this key right after connecting: Dial fails
// unless the daemon answers OK. Said again on every new connection.
func WithKey(name, secret string) Option {
	return func(c *config) { c.keyName, c.keySecret = name, secret }
}

// WithKeyFile is WithKey with a key file as pintuand --make-key writes it.
func WithKeyFile(path string) Option { return func(c *config) { c.keyFile = path } }

// Pending is a request queued on the connection: Wait gives its reply.
type Pending struct {
	c     *Client
	id    uint64
	frame []byte // the frame as sent (prefix included): sent again as is
	req   *pb.Request
	done  chan struct{}
	raw   []byte // the reply's message, decoded by the first Wait
	err   error
	fin   bool
	once  sync.Once
	resp  *pb.Response
}

// ID is the request's correlation id.
func (p *Pending) ID() uint64 { return p.id }

// Done is closed when the reply arrived or the request failed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait returns the reply (nil error whatever its status), or the failure
// that left it without one, or ctx's error. A request whose wait ended
// with ctx may still be decided: retry it with the same request id.
func (p *Pending) Wait(ctx context.Context) (*pb.Response, error) {
	select {
	case <-p.done:
		return p.result()
	default:
	}
	select {
	case <-p.done:
		return p.result()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// result decodes the reply in the caller's goroutine (the reader only
// scanned its id and status), so that many callers decode in parallel.
func (p *Pending) result() (*pb.Response, error) {
	p.once.Do(func() {
		if p.err != nil {
			return
		}
		r := new(pb.Response)
		if err := proto.Unmarshal(p.raw, r); err != nil {
			p.err = errors.New("pintuan: undecodable reply from the daemon")
			return
		}
		p.resp, p.raw = r, nil
	})
	return p.resp, p.err
}

// conn is one connection: its socket, reader, and the writer's wake-up.
type conn struct {
	nc   net.Conn
	br   *bufio.Reader
	peer string
	wake chan struct{} // cap 1: something to write
	dead chan struct{} // closed when retired
}

func (cn *conn) signal() {
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// candidate is a Hello or Subscribe sent, waiting for its answer.
type candidate struct {
	id  uint64
	req *pb.Request
}

// Client is a connection to pintuand (with failover over a list of
// addresses), safe for concurrent use.
type Client struct {
	cfg    config
	addrs  []address
	nextID atomic.Uint64
	slots  chan struct{} // the in-flight cap
	events chan *pb.Event
	quit   chan struct{} // closed by Close

	mu         sync.Mutex
	cn         *conn // nil: none up
	recovering bool
	closed     bool
	pend       []*Pending
	sent       int
	cur        int
	run        int // attempts in this failover run
	runStart   time.Time
	hello, sub *pb.Request // the session: replayed on a new connection
	candHello  candidate
	candSub    candidate
	stats      Stats
	lastErr    error
	readArmed  bool
	armedAt    time.Time
}

// Dial connects to the first address of addrs that answers: "host:port",
// "host" (port 7733), "[v6]:port", or several separated by commas (a
// primary and its standby), at most MaxAddrs. ctx bounds the connecting
// (with WithTimeout for each address); the client then lives until Close.
// With WithKey or WithKeyFile it says Hello and fails unless answered OK.
func Dial(ctx context.Context, addrs string, opts ...Option) (*Client, error) {
	cfg := config{timeout: DefaultTimeout, attempts: DefaultFailoverAttempts,
		failoverFor: DefaultFailoverTime, maxInFlight: DefaultMaxInFlight,
		eventBuffer: DefaultEventBuffer, clientName: "pintuan-go"}
	for _, o := range opts {
		o(&cfg)
	}
	list, err := parseAddrList(addrs)
	if err != nil {
		return nil, err
	}
	if cfg.keyFile != "" {
		if cfg.keyName, cfg.keySecret, err = ReadKeyFile(cfg.keyFile); err != nil {
			return nil, err
		}
	}
	c := &Client{cfg: cfg, addrs: list, slots: make(chan struct{}, cfg.maxInFlight),
		events: make(chan *pb.Event, cfg.eventBuffer), quit: make(chan struct{})}
	var why []string
	for i, a := range list {
		cn, err := c.dial(ctx, a, cfg.timeout)
		if err != nil {
			why = append(why, err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c.mu.Lock()
		c.cur = i
		c.install(cn)
		c.mu.Unlock()
		if cfg.keyName != "" || cfg.keySecret != "" {
			r, err := c.Hello(ctx, cfg.keyName, cfg.keySecret)
			if err == nil && r.GetStatus() != pb.Status_OK {
				err = fmt.Errorf("pintuan: hello as %s: %s: %s", cfg.keyName, r.GetStatus(), r.GetDetail())
			}
			if err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	}
	return nil, fmt.Errorf("pintuan: %s", strings.Join(why, "; "))
}

// dial connects to a within timeout (and ctx), with the TLS handshake.
func (c *Client) dial(ctx context.Context, a address, timeout time.Duration) (*conn, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", a.String())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", a, err)
	}
	if c.cfg.tls != nil {
		tc := c.cfg.tls.Clone()
		if tc.ServerName == "" {
			tc.ServerName = a.host
		}
		s := tls.Client(nc, tc)
		if err := s.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s failed: %w", tc.ServerName, err)
		}
		nc = s
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), peer: nc.RemoteAddr().String(),
		wake: make(chan struct{}, 1), dead: make(chan struct{})}, nil
}

// install makes cn the connection (c.mu held): everything in pend is
// written on it, in order.
func (c *Client) install(cn *conn) {
	c.cn = cn
	c.sent = 0
	c.readArmed = false
	go c.readLoop(cn)
	go c.writeLoop(cn)
	if len(c.pend) > 0 {
		cn.signal()
	}
}

// retire closes the connection (c.mu held); its goroutines end.
func (c *Client) retire() {
	if c.cn == nil {
		return
	}
	close(c.cn.dead)
	c.cn.nc.Close()
	c.cn = nil
	c.sent = 0
}

// Close closes the connection; calls in flight return ErrClosed, and the
// Events channel is closed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.quit)
	c.retire()
	c.failAll(nil, ErrClosed)
	close(c.events)
	return nil
}

// Stats returns what failover did so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Peer is the connected address, numeric ("127.0.0.1:7733"); "" when not
// connected.
func (c *Client) Peer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn == nil {
		return ""
	}
	return c.cn.peer
}

// Events is the channel events arrive on after Subscribe; closed by Close.
func (c *Client) Events() <-chan *pb.Event { return c.events }

// ---- queueing ----

func encode(req *pb.Request) ([]byte, error) {
	buf := make([]byte, frameHeader, frameHeader+64)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, req)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-frameHeader))
	return buf, nil
}

// Send queues req (pipelined: it returns once queued) and gives its
// Pending. req.Id is set to the next correlation id when it is 0. It waits
// for an in-flight slot, or ctx.
func (c *Client) Send(ctx context.Context, req *pb.Request) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if req.GetId() == 0 {
		req.Id = proto.Uint64(c.nextID.Add(1))
	}
	frame, err := encode(req)
	if err != nil {
		return nil, fmt.Errorf("pintuan: encode: %w", err)
	}
	return c.enqueue(ctx, &Pending{c: c, id: req.GetId(), frame: frame, req: req})
}

func (c *Client) enqueue(ctx context.Context, p *Pending) (*Pending, error) {
	p.done = make(chan struct{})
	select {
	case c.slots <- struct{}{}:
	default:
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.quit:
			return nil, ErrClosed
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		<-c.slots
		return nil, ErrClosed
	}
	if c.cn == nil && !c.recovering {
		if c.cfg.attempts == 0 {
			<-c.slots
			return nil, ErrNotConnected
		}
		c.stats.Failures++
		c.startRecovery(-1)
	}
	switch p.req.Op.(type) {
	case *pb.Request_Hello:
		c.candHello = candidate{p.id, p.req}
	case *pb.Request_Subscribe:
		c.candSub = candidate{p.id, p.req}
	}
	c.pend = append(c.pend, p)
	if c.cn != nil {
		c.cn.signal()
	}
	return p, nil
}

// finish gives p its outcome (c.mu held) and frees its slot.
func (c *Client) finish(p *Pending, raw []byte, err error) {
	if p.fin {
		return
	}
	p.fin = true
	p.raw, p.err = raw, err
	close(p.done)
	<-c.slots
}

// failAll ends every request in flight with the reply raw (a refusal of
// the stream) or err (c.mu held), and forgets the session's candidates.
func (c *Client) failAll(raw []byte, err error) {
	for i, p := range c.pend {
		c.finish(p, raw, err)
		c.pend[i] = nil
	}
	c.pend = c.pend[:0]
	c.sent = 0
	c.candHello, c.candSub = candidate{}, candidate{}
}

// ---- the connection's goroutines ----

func (c *Client) writeLoop(cn *conn) {
	var buf []byte
	for {
		select {
		case <-cn.wake:
		case <-cn.dead:
			return
		}
		// let the callers woken with this one queue theirs: one write
		runtime.Gosched()
		c.mu.Lock()
		if c.cn != cn {
			c.mu.Unlock()
			return
		}
		buf = buf[:0]
		for _, p := range c.pend[c.sent:] {
			buf = append(buf, p.frame...)
		}
		c.sent = len(c.pend)
		c.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if c.cfg.timeout > 0 {
			cn.nc.SetWriteDeadline(time.Now().Add(c.cfg.timeout))
		}
		if _, err := cn.nc.Write(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				err = fmt.Errorf("timed out writing after %v", c.cfg.timeout)
			}
			c.connFailed(cn, err)
			return
		}
		c.mu.Lock()
		if c.cn == cn {
			c.armRead(cn)
		}
		c.mu.Unlock()
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// waitFor is how long to wait for the daemon: the timeout, and during a
// failover run no longer than what is left of its time (c.mu held).
func (c *Client) waitFor() time.Duration {
	t := c.cfg.timeout
	if c.run > 0 && c.cfg.failoverFor > 0 {
		left := time.Until(c.runStart.Add(c.cfg.failoverFor))
		if left < time.Millisecond {
			left = time.Millisecond
		}
		if t <= 0 || left < t {
			t = left
		}
	}
	return t
}

// armRead bounds the wait for the next reply while requests written on cn
// wait for theirs, and lifts it when none do (c.mu held).
// The deadline moves on when the daemon answers, not at every reply: at
// most t/16 late, which spares a timer update per reply.
func (c *Client) armRead(cn *conn) {
	t := c.waitFor()
	if c.sent > 0 && t > 0 {
		now := time.Now()
		if !c.readArmed || now.Sub(c.armedAt) > t/16 || c.run > 0 {
			cn.nc.SetReadDeadline(now.Add(t))
			c.readArmed, c.armedAt = true, now
		}
	} else if c.readArmed {
		cn.nc.SetReadDeadline(time.Time{})
		c.readArmed = false
	}
}

// readFrame reads one reply; a broken stream (a frame too large: an HTTP
// port, a TLS alert) is told apart from a transport failure.
func readFrame(cn *conn, buf []byte, tlsOn bool) ([]byte, error, bool) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(cn.br, h[:]); err != nil {
		return buf, err, false
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxReply {
		switch {
		case string(h[:]) == "HTTP":
			return buf, errors.New("the peer answered in HTTP: this is an HTTP port (pintuand's admin port?), " +
				"not pintuand's protocol port"), true
		case !tlsOn && h[0] == 0x15 && h[1] == 0x03:
			return buf, errors.New("the peer answered with a TLS alert: it speaks TLS (connect with TLS: WithTLS)"), true
		}
		return buf, fmt.Errorf("reply frame of %d bytes is too large", n), true
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(cn.br, buf); err != nil {
		return buf, err, false
	}
	return buf, nil, false
}

func (c *Client) readLoop(cn *conn) {
	var buf []byte
	for {
		var err error
		var broken bool
		buf, err, broken = readFrame(cn, buf, c.cfg.tls != nil)
		if err != nil {
			if broken {
				c.brokenStream(cn, err)
				return
			}
			c.connFailed(cn, transportErr(err, c.cfg.timeout))
			return
		}
		h, err := scan(buf)
		if err != nil {
			c.brokenStream(cn, errors.New("undecodable reply from the daemon"))
			return
		}
		if !c.handle(cn, h, buf) {
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

func transportErr(err error, timeout time.Duration) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("connection closed by the daemon")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("timed out after %v", timeout)
	}
	return err
}

// handle takes one reply off cn (h: its scanned head, msg: the message,
// which it may keep): false when cn is done with.
func (c *Client) handle(cn *conn, h head, msg []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn != cn {
		return false
	}
	id := h.id
	// NOT_LEADER for the oldest request in flight, while failover may act:
	// to the leader when it is of the list, else on through the list.
	if id != 0 && h.status == pb.Status_NOT_LEADER && len(c.pend) > 0 && c.pend[0].id == id &&
		c.run < c.cfg.attempts {
		c.mu.Unlock()
		to := findAddr(c.addrs, h.leader) // may resolve names: not under the lock
		c.mu.Lock()
		if c.cn != cn {
			return false
		}
		if to == -1 {
			c.stats.Strangers++
		}
		if to >= 0 || len(c.addrs) > 1 {
			c.retire()
			if to >= 0 {
				c.stats.Redirects++
			} else {
				c.lastErr = errStranger
			}
			c.startRecovery(to)
			return false
		}
	}
	c.run = 0 // the daemon answers: a later failure starts a new run
	if id == 0 {
		if h.status != pb.Status_OK && !h.event {
			c.failAll(append([]byte(nil), msg...), nil) // the daemon refused the stream: it is closing it
		} else if r := new(pb.Response); h.event && !c.closed && proto.Unmarshal(msg, r) == nil {
			select {
			case c.events <- r.GetEvent():
			default:
				c.stats.EventsDropped++
			}
		}
	} else {
		k := -1
		for i, p := range c.pend {
			if p.id == id {
				k = i
				break
			}
		}
		if k >= 0 { // else not ours (a retried request's older answer, say)
			for i := 0; i < k; i++ { // never: replies come in request order
				c.finish(c.pend[i], nil, errors.New("pintuan: the daemon answered a later request first"))
			}
			c.answered(c.pend[k], h.status, append([]byte(nil), msg...))
			for i := 0; i <= k; i++ {
				c.pend[i] = nil
			}
			c.pend = c.pend[k+1:]
			if c.sent -= k + 1; c.sent < 0 {
				c.sent = 0
			}
			if len(c.pend) == 0 {
				c.pend = nil
			}
		}
	}
	c.armRead(cn)
	return true
}

// answered: p's reply r; a Hello or Subscribe answered OK becomes the
// session (c.mu held).
func (c *Client) answered(p *Pending, status pb.Status, raw []byte) {
	for _, x := range []struct {
		cand *candidate
		keep **pb.Request
	}{{&c.candHello, &c.hello}, {&c.candSub, &c.sub}} {
		if x.cand.req != nil && x.cand.id == p.id {
			if status == pb.Status_OK {
				*x.keep = x.cand.req
			}
			*x.cand = candidate{}
		}
	}
	c.finish(p, raw, nil)
}

// connFailed: a transport failure on cn. Failover when there is something
// to mend: requests in flight, or a session to get back.
func (c *Client) connFailed(cn *conn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn != cn {
		return
	}
	c.retire()
	c.lastErr = err
	if c.closed {
		return
	}
	if len(c.pend) == 0 && c.hello == nil && c.sub == nil {
		c.candHello, c.candSub = candidate{}, candidate{}
		return // the next request connects again
	}
	if c.cfg.attempts == 0 {
		c.failAll(nil, fmt.Errorf("pintuan: %w", err))
		return
	}
	c.stats.Failures++
	c.startRecovery(-1)
}

// brokenStream: no retry mends it; the requests in flight fail.
func (c *Client) brokenStream(cn *conn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn != cn {
		return
	}
	c.retire()
	c.lastErr = err
	c.failAll(nil, fmt.Errorf("pintuan: %w", err))
}

// ---- failover ----

func (c *Client) startRecovery(leader int) {
	c.recovering = true
	go c.recover(leader)
}

func backoff(n int) time.Duration {
	if n > 6 {
		n = 6
	}
	d := backoffFirst << n
	if d > backoffMax {
		d = backoffMax
	}
	return d
}

// recover connects again, to the leader a NOT_LEADER named (leader >= 0)
// or to the next address of the list, round robin, after a pause that
// doubles from the second attempt of a run, within the attempts and the
// time a run may take; gets the session back (Hello, Subscribe); then the
// new connection writes every request in flight, in order. Past the bounds
// the requests in flight fail.
func (c *Client) recover(leader int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	why := c.lastErr
	if why == nil {
		why = errors.New("not connected")
	}
	if c.run == 0 {
		c.runStart = time.Now()
	}
	toLeader := leader >= 0
	for c.run < c.cfg.attempts && !c.closed {
		left := time.Duration(-1)
		if c.cfg.failoverFor > 0 {
			if left = time.Until(c.runStart.Add(c.cfg.failoverFor)); left <= 0 {
				break
			}
		}
		if c.run > 0 && !toLeader {
			pause := backoff(c.run - 1)
			if left >= 0 && pause >= left {
				break
			}
			c.mu.Unlock()
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-c.quit:
				t.Stop()
			}
			c.mu.Lock()
			if c.closed {
				break
			}
			if left >= 0 {
				left -= pause
			}
		}
		c.run++
		if toLeader {
			c.cur = leader
		} else {
			c.cur = (c.cur + 1) % len(c.addrs)
		}
		toLeader = false
		a := c.addrs[c.cur]
		t := c.cfg.timeout
		if left >= 0 && (t <= 0 || t > left) {
			t = left
		}
		hello, sub := c.hello, c.sub
		c.mu.Unlock()
		cn, err := c.dial(context.Background(), a, t)
		to := -1
		if err == nil {
			to, err = c.replaySession(cn, t, hello, sub)
		}
		c.mu.Lock()
		if c.closed {
			if cn != nil {
				cn.nc.Close()
			}
			break
		}
		if err == nil {
			c.stats.Reconnects++
			c.stats.Resent += uint64(len(c.pend))
			// nothing in flight (a subscriber, say): the session is back
			// and the run is over; else it ends when a request is answered
			if len(c.pend) == 0 {
				c.run = 0
			}
			c.recovering = false
			c.install(cn)
			return
		}
		if cn != nil {
			cn.nc.Close()
		}
		if to >= 0 { // the session's Hello was answered NOT_LEADER
			c.stats.Redirects++
			toLeader, leader = true, to
			continue
		}
		why = err
	}
	c.recovering = false
	if !c.closed {
		err := fmt.Errorf("pintuan: %v (failover gave up after %d attempts)", why, c.run)
		if c.cfg.attempts == 0 {
			err = fmt.Errorf("pintuan: %w", why)
		}
		c.lastErr = err
		c.failAll(nil, err)
	}
	c.run = 0
}

// replaySession sends the saved Hello and Subscribe on a new connection,
// each answered before anything else: nil (whatever the daemon said), or
// NOT_LEADER naming an address of the list (its index, with an error),
// or a failure.
func (c *Client) replaySession(cn *conn, t time.Duration, saved ...*pb.Request) (int, error) {
	var buf []byte
	for _, s := range saved {
		if s == nil {
			continue
		}
		q := proto.Clone(s).(*pb.Request)
		q.Id = proto.Uint64(c.nextID.Add(1))
		frame, err := encode(q)
		if err != nil {
			continue
		}
		if t > 0 {
			cn.nc.SetDeadline(time.Now().Add(t))
		}
		if _, err := cn.nc.Write(frame); err != nil {
			return -1, transportErr(err, t)
		}
		for {
			var err error
			var broken bool
			buf, err, broken = readFrame(cn, buf, c.cfg.tls != nil)
			if err != nil {
				if !broken {
					err = transportErr(err, t)
				}
				return -1, err
			}
			r := new(pb.Response)
			if proto.Unmarshal(buf, r) != nil {
				return -1, errors.New("undecodable reply from the daemon")
			}
			if r.GetId() == 0 && r.GetStatus() != pb.Status_OK && r.GetEvent() == nil {
				return -1, errors.New(orStatus(r))
			}
			if r.GetId() != q.GetId() {
				continue // an event meanwhile
			}
			if r.GetStatus() == pb.Status_NOT_LEADER {
				to := findAddr(c.addrs, r.GetLeader())
				if to >= 0 {
					return to, errors.New("NOT_LEADER")
				}
				if to == -1 {
					c.mu.Lock()
					c.stats.Strangers++
					c.mu.Unlock()
				}
				return -1, errStranger
			}
			break
		}
	}
	cn.nc.SetDeadline(time.Time{})
	return -1, nil
}

func orStatus(r *pb.Response) string {
	if r.Detail != nil {
		return r.GetDetail()
	}
	return r.GetStatus().String()
}

// ---- blocking calls ----

func busy(s pb.Status) bool { return s == pb.Status_UNAVAILABLE || s == pb.Status_OVERLOADED }

// Call sends req and waits for its reply. Answered UNAVAILABLE or
// OVERLOADED, it sends the same request again (the same bytes) after a
// pause, within the failover bounds; past them it returns that answer.
func (c *Client) Call(ctx context.Context, req *pb.Request) (*pb.Response, error) {
	p, err := c.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	tries := 0
	var since time.Time
	for {
		r, err := p.Wait(ctx)
		if err != nil {
			return nil, err
		}
		if r.GetId() != p.id || !busy(r.GetStatus()) {
			return r, nil
		}
		now := time.Now()
		if tries == 0 {
			since = now
		}
		if c.cfg.attempts <= 0 || tries >= c.cfg.attempts ||
			(c.cfg.failoverFor > 0 && now.Sub(since) >= c.cfg.failoverFor) {
			return r, nil
		}
		t := time.NewTimer(backoff(tries))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		tries++
		c.mu.Lock()
		c.stats.Busy++
		c.mu.Unlock()
		if p, err = c.enqueue(ctx, &Pending{c: c, id: p.id, frame: p.frame, req: p.req}); err != nil {
			return nil, err
		}
	}
}
