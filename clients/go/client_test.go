package pintuan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "pintuan.io/pintuan/v1"
)

// Every blocking helper against a real daemon: a flash sale's life and a
// group buy's.
func TestOperations(t *testing.T) {
	d := startDaemon(t)
	c := dialT(t, d.addr)
	ctx := ctxT(t)
	if c.Peer() != d.addr {
		t.Fatalf("peer %q, want %q", c.Peer(), d.addr)
	}
	r, err := c.Ping(ctx)
	if must(t, r, err, pb.Status_OK).GetPong().GetNowMs() <= 0 {
		t.Fatal("no now_ms in the pong")
	}
	r, err = c.Hello(ctx, "", "")
	if must(t, r, err, pb.Status_OK).GetHello().GetKeyRole() != "admin" {
		t.Fatalf("hello: %v", r)
	}
	r, err = c.CreateCampaign(ctx, CampaignSpec{CampaignID: "s1", Stock: 10, PerUserLimit: 2, HoldMs: 60000,
		Waitlist: true}, "c-s1")
	must(t, r, err, pb.Status_OK)
	r, err = c.CreateCampaign(ctx, CampaignSpec{CampaignID: "s1", Stock: 10, HoldMs: 60000}, "c-s1-again")
	must(t, r, err, pb.Status_ALREADY_EXISTS)

	r, err = c.Reserve(ctx, "s1", "ann", 2, "o-1")
	res := must(t, r, err, pb.Status_OK).GetReservation()
	if res.GetQuantity() != 2 || res.GetState() != pb.HoldState_HELD || string(res.GetUserId()) != "ann" {
		t.Fatalf("reservation %v", res)
	}
	r, err = c.Reserve(ctx, "s1", "ann", 1, "o-2")
	must(t, r, err, pb.Status_LIMIT_EXCEEDED)
	r, err = c.GetReservation(ctx, "s1", res.GetReservationId(), "ann")
	must(t, r, err, pb.Status_OK)
	r, err = c.GetReservation(ctx, "s1", res.GetReservationId(), "ben") // another user's: as unknown
	must(t, r, err, pb.Status_NOT_FOUND)
	r, err = c.Confirm(ctx, "s1", res.GetReservationId(), "ann", "pay-1")
	if must(t, r, err, pb.Status_OK).GetReservation().GetState() != pb.HoldState_SOLD {
		t.Fatalf("confirm: %v", r)
	}
	r, err = c.GetHoldings(ctx, "s1", "ann")
	if h := must(t, r, err, pb.Status_OK).GetHoldings(); h.GetSold() != 2 || h.GetPerUserLimit() != 2 {
		t.Fatalf("holdings %v", h)
	}
	r, err = c.Reserve(ctx, "s1", "ben", 1, "o-3")
	b := must(t, r, err, pb.Status_OK).GetReservation()
	r, err = c.Cancel(ctx, "s1", b.GetReservationId(), "ben", "cancel-1")
	must(t, r, err, pb.Status_OK)
	r, err = c.UpdateCampaign(ctx, "s1", CampaignUpdate{Stock: proto.Int64(20)}, "up-1")
	must(t, r, err, pb.Status_OK)
	cp := campaign(t, c, "s1")
	if cp.GetStock() != 20 || cp.GetSold() != 2 || cp.GetHeld() != 0 || cp.GetAvailable() != 18 {
		t.Fatalf("campaign %v", cp)
	}
	r, err = c.GetCampaignStale(ctx, "s1") // a primary answers it as any read
	must(t, r, err, pb.Status_OK)
	r, err = c.EndCampaign(ctx, "s1", "end-1")
	must(t, r, err, pb.Status_OK)
	r, err = c.Reserve(ctx, "s1", "cat", 1, "o-4")
	must(t, r, err, pb.Status_ENDED)

	// a group buy of 2: ann opens, ben joins by AUTO, both pay: completed
	r, err = c.CreateCampaign(ctx, CampaignSpec{CampaignID: "g1", Kind: pb.CampaignKind_GROUP_BUY, Stock: 10,
		GroupSize: 2, GroupTTLMs: 3600000, HoldMs: 60000}, "c-g1")
	must(t, r, err, pb.Status_OK)
	r, err = c.Join(ctx, "g1", "ann", pb.JoinMode_JOIN_OPEN, 0, false, "j-1")
	seatA := must(t, r, err, pb.Status_OK).GetReservation()
	if !seatA.GetOpened() || seatA.GetGroupId() == 0 {
		t.Fatalf("join open: %v", seatA)
	}
	r, err = c.Join(ctx, "g1", "ben", pb.JoinMode_JOIN_AUTO, 0, false, "j-2")
	seatB := must(t, r, err, pb.Status_OK).GetReservation()
	if seatB.GetGroupId() != seatA.GetGroupId() {
		t.Fatalf("AUTO joined %d, want %d", seatB.GetGroupId(), seatA.GetGroupId())
	}
	r, err = c.Join(ctx, "g1", "cat", pb.JoinMode_JOIN_GROUP, seatA.GetGroupId(), false, "j-3")
	must(t, r, err, pb.Status_GROUP_FULL)
	for _, s := range []*pb.Reservation{seatA, seatB} {
		r, err = c.Confirm(ctx, "g1", s.GetReservationId(), string(s.GetUserId()), "pay-"+string(s.GetUserId()))
		must(t, r, err, pb.Status_OK)
	}
	r, err = c.GetGroup(ctx, "g1", seatA.GetGroupId())
	if g := must(t, r, err, pb.Status_OK).GetGroup(); g.GetState() != pb.GroupState_GROUP_STATE_COMPLETED ||
		len(g.GetMembers()) != 2 {
		t.Fatalf("group %v", g)
	}

	// pages of campaigns
	seen := map[string]bool{}
	var cursor uint64
	for {
		r, err = c.ListCampaigns(ctx, cursor, 1)
		l := must(t, r, err, pb.Status_OK).GetCampaigns()
		for _, x := range l.GetCampaigns() {
			seen[string(x.GetCampaignId())] = true
		}
		if cursor = l.GetNextCursor(); cursor == 0 {
			break
		}
	}
	if !seen["s1"] || !seen["g1"] || len(seen) != 2 {
		t.Fatalf("listed %v", seen)
	}
	if st := c.Stats(); st != (Stats{}) {
		t.Fatalf("stats %+v on a quiet connection", st)
	}
}

// Many goroutines reserve at once on one connection: every reply is its
// request's (the user and quantity it asked for), and the units add up.
func TestPipelinedReservesFromManyGoroutines(t *testing.T) {
	d := startDaemon(t)
	c := dialT(t, d.addr, WithMaxInFlight(256))
	flash(t, c, "p", 1000000)
	const workers, each = 64, 150
	var units atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				user := fmt.Sprintf("u%d-%d", w, i)
				qty := int32(1 + (w+i)%3)
				r, err := c.Reserve(context.Background(), "p", user, qty, "r-"+user)
				if err != nil {
					errs <- err
					return
				}
				res := r.GetReservation()
				if r.GetStatus() != pb.Status_OK || string(res.GetUserId()) != user || int32(res.GetQuantity()) != qty {
					errs <- fmt.Errorf("%s x%d answered %v %v", user, qty, r.GetStatus(), res)
					return
				}
				units.Add(int64(qty))
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if h := campaign(t, c, "p").GetHeld(); h != units.Load() {
		t.Fatalf("held %d, replies said %d", h, units.Load())
	}

	// one goroutine, 500 requests queued before any reply is read
	ctx := ctxT(t)
	var ps []*Pending
	for i := 0; i < 500; i++ {
		p, err := c.Send(ctx, ReserveRequest("p", fmt.Sprintf("v%d", i), 1, fmt.Sprintf("q-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		r, err := p.Wait(ctx)
		if err != nil || r.GetId() != p.ID() || string(r.GetReservation().GetUserId()) != fmt.Sprintf("v%d", i) {
			t.Fatalf("reply %d: %v %v", i, r, err)
		}
	}
}

// A retry with the same request id gets the original answer, marked
// replay, and no second effect; the same id with other parameters is a
// CONFLICT.
func TestIdempotentRetry(t *testing.T) {
	d := startDaemon(t)
	c := dialT(t, d.addr)
	ctx := ctxT(t)
	flash(t, c, "i", 100)
	r1, err := c.Reserve(ctx, "i", "ann", 1, "order-1")
	first := must(t, r1, err, pb.Status_OK)
	if first.GetReplay() {
		t.Fatal("a first answer marked replay")
	}
	r2, err := c.Reserve(ctx, "i", "ann", 1, "order-1")
	again := must(t, r2, err, pb.Status_OK)
	if !again.GetReplay() || again.GetReservation().GetReservationId() != first.GetReservation().GetReservationId() {
		t.Fatalf("retry answered %v, first %v", again, first)
	}
	r3, err := c.Reserve(ctx, "i", "ann", 2, "order-1")
	must(t, r3, err, pb.Status_CONFLICT)
	if h := campaign(t, c, "i").GetHeld(); h != 1 {
		t.Fatalf("held %d after a retried reserve", h)
	}
	// the same request object sent again: the same bytes, the same id
	q := ReserveRequest("i", "ben", 1, "order-2")
	r4, err := c.Call(ctx, q)
	must(t, r4, err, pb.Status_OK)
	r5, err := c.Call(ctx, q)
	if must(t, r5, err, pb.Status_OK); !r5.GetReplay() || r5.GetId() != r4.GetId() {
		t.Fatalf("resent request: %v", r5)
	}
}

// Events arrive on the channel: a hold expiring.
func TestSubscribeEvents(t *testing.T) {
	d := startDaemon(t)
	c := dialT(t, d.addr)
	ctx := ctxT(t)
	r, err := c.CreateCampaign(ctx, CampaignSpec{CampaignID: "e", Stock: 5, HoldMs: 100}, "c-e")
	must(t, r, err, pb.Status_OK)
	sub := dialT(t, d.addr)
	r, err = sub.Subscribe(ctx, "e")
	must(t, r, err, pb.Status_OK)
	r, err = c.Reserve(ctx, "e", "ann", 1, "o-1")
	id := must(t, r, err, pb.Status_OK).GetReservation().GetReservationId()
	select {
	case ev := <-sub.Events():
		if ev.GetType() != pb.EventType_HOLD_EXPIRED || ev.GetReservationId() != id || string(ev.GetUserId()) != "ann" {
			t.Fatalf("event %v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no HOLD_EXPIRED event")
	}
	sub.Close()
	if _, ok := <-sub.Events(); ok {
		t.Fatal("events channel open after Close")
	}
	if _, err := sub.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("ping after close: %v", err)
	}
}

// Keys: nothing but Hello and Ping before a Hello; a reader may read, not
// reserve; a wrong secret is refused at Dial.
func TestKeys(t *testing.T) {
	dir := t.TempDir()
	ops := makeKey(t, dir, "ops", "admin")
	reader := makeKey(t, dir, "prom", "reader")
	d := startDaemon(t, "--keys", dir+"/keys")
	ctx := ctxT(t)

	anon := dialT(t, d.addr)
	r, err := anon.Ping(ctx)
	must(t, r, err, pb.Status_OK)
	r, err = anon.GetCampaign(ctx, "k")
	must(t, r, err, pb.Status_UNAUTHENTICATED)

	admin := dialT(t, d.addr, WithKeyFile(ops))
	flash(t, admin, "k", 10)

	rd := dialT(t, d.addr)
	r, err = rd.HelloKeyFile(ctx, reader)
	if must(t, r, err, pb.Status_OK).GetHello().GetKeyRole() != "reader" {
		t.Fatalf("hello: %v", r)
	}
	r, err = rd.GetCampaign(ctx, "k")
	must(t, r, err, pb.Status_OK)
	r, err = rd.Reserve(ctx, "k", "ann", 1, "o-1")
	must(t, r, err, pb.Status_PERMISSION_DENIED)

	name, _, err := ReadKeyFile(ops)
	if err != nil || name != "ops" {
		t.Fatalf("ReadKeyFile: %q %v", name, err)
	}
	if _, err := Dial(ctx, d.addr, WithKey("ops", "ptk_wrong")); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	if _, _, err := ReadKeyFile(dir + "/keys"); err == nil {
		t.Fatal("a keys file read as a key file")
	}
}

// ---- against fakes: what no daemon does on demand ----

// fake is a TCP server on 127.0.0.1 that records the frames it reads and
// answers them as answer says (nil: not at all).
type fake struct {
	addr   string
	mu     sync.Mutex
	frames [][]byte
	conns  []net.Conn
}

func startFake(t *testing.T, answer func(n int, q *pb.Request) *pb.Response, closeAfter int) *fake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{addr: l.Addr().String()}
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		for _, nc := range f.conns {
			nc.Close()
		}
		f.mu.Unlock()
	})
	go func() {
		n := 0
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, nc)
			f.mu.Unlock()
			go func() {
				defer nc.Close()
				for {
					var h [4]byte
					if _, err := io.ReadFull(nc, h[:]); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint32(h[:]))
					if _, err := io.ReadFull(nc, body); err != nil {
						return
					}
					f.mu.Lock()
					f.frames = append(f.frames, append(h[:], body...))
					n++
					k := n
					f.mu.Unlock()
					q := new(pb.Request)
					proto.Unmarshal(body, q)
					if answer != nil {
						if r := answer(k, q); r != nil {
							b, _ := proto.Marshal(r)
							var h [4]byte
							binary.BigEndian.PutUint32(h[:], uint32(len(b)))
							nc.Write(append(h[:], b...))
						}
					}
					if closeAfter > 0 && k >= closeAfter {
						return
					}
				}
			}()
		}
	}()
	return f
}

func (f *fake) got() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.frames...)
}

func reply(q *pb.Request, s pb.Status) *pb.Response {
	return &pb.Response{Id: proto.Uint64(q.GetId()), Status: s.Enum()}
}

// A daemon that dies with requests unanswered: the next address gets them
// all again, byte for byte, in order.
func TestFailoverResendsByteForByte(t *testing.T) {
	dying := startFake(t, nil, 5) // reads 5 frames, answers none, closes
	next := startFake(t, func(_ int, q *pb.Request) *pb.Response { return reply(q, pb.Status_OK) }, 0)
	c := dialT(t, dying.addr+","+next.addr)
	ctx := ctxT(t)
	var ps []*Pending
	for i := 0; i < 5; i++ {
		p, err := c.Send(ctx, ReserveRequest("s", fmt.Sprintf("u%d", i), 1, fmt.Sprintf("o-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		r, err := p.Wait(ctx)
		if err != nil || r.GetId() != p.ID() {
			t.Fatalf("%v %v", r, err)
		}
	}
	a, b := dying.got(), next.got()
	if len(a) != 5 || len(b) != 5 {
		t.Fatalf("frames: %d then %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("frame %d sent again differs", i)
		}
	}
	if st := c.Stats(); st.Failures != 1 || st.Reconnects != 1 || st.Resent != 5 || c.Peer() != next.addr {
		t.Fatalf("stats %+v peer %s", st, c.Peer())
	}
}

// UNAVAILABLE twice, then OK: a blocking call sends the same bytes again
// after pauses, and returns the OK.
func TestBusyIsAskedAgain(t *testing.T) {
	f := startFake(t, func(n int, q *pb.Request) *pb.Response {
		if n <= 2 {
			return reply(q, pb.Status_UNAVAILABLE)
		}
		return reply(q, pb.Status_OK)
	}, 0)
	c := dialT(t, f.addr)
	start := time.Now()
	r, err := c.Reserve(ctxT(t), "s", "u", 1, "o-1")
	must(t, r, err, pb.Status_OK)
	if time.Since(start) < 30*time.Millisecond { // 10 ms, then 20 ms
		t.Fatalf("asked again after %v: no pause", time.Since(start))
	}
	got := f.got()
	if len(got) != 3 || !bytes.Equal(got[0], got[1]) || !bytes.Equal(got[0], got[2]) {
		t.Fatalf("%d frames, not the same bytes", len(got))
	}
	if st := c.Stats(); st.Busy != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// NOT_LEADER naming an address of the list is followed with every request
// in flight; naming another is not (the list's next instead), and counted.
func TestNotLeaderFollowedOnlyWithinTheList(t *testing.T) {
	leader := startFake(t, func(_ int, q *pb.Request) *pb.Response { return reply(q, pb.Status_OK) }, 0)
	var standbyNames string
	standby := startFake(t, func(_ int, q *pb.Request) *pb.Response {
		r := reply(q, pb.Status_NOT_LEADER)
		r.Leader = proto.String(standbyNames)
		return r
	}, 0)
	standbyNames = "localhost:" + portOf(leader.addr) // another name of the leader's address
	c := dialT(t, standby.addr+","+leader.addr)
	r, err := c.Ping(ctxT(t))
	must(t, r, err, pb.Status_OK)
	if st := c.Stats(); st.Redirects != 1 || c.Peer() != leader.addr {
		t.Fatalf("stats %+v peer %s", st, c.Peer())
	}

	stranger := startFake(t, func(_ int, q *pb.Request) *pb.Response { return reply(q, pb.Status_OK) }, 0)
	standbyNames = stranger.addr
	c2 := dialT(t, standby.addr)
	r, err = c2.Ping(ctxT(t)) // one address: the NOT_LEADER is the answer
	must(t, r, err, pb.Status_NOT_LEADER)
	if st := c2.Stats(); st.Strangers != 1 || st.Redirects != 0 || len(stranger.got()) != 0 {
		t.Fatalf("stats %+v, stranger got %d", st, len(stranger.got()))
	}
}

// A silent daemon: a call's context ends its wait; a reply not in time
// (WithTimeout) is a lost connection, and failover is bounded.
func TestContextAndBounds(t *testing.T) {
	silent := startFake(t, nil, 0)
	c := dialT(t, silent.addr, WithTimeout(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}

	// in-flight cap: a third request waits for a slot, until its context ends
	c2 := dialT(t, silent.addr, WithMaxInFlight(2), WithTimeout(time.Hour))
	for i := 0; i < 2; i++ {
		if _, err := c2.Send(context.Background(), PingRequest()); err != nil {
			t.Fatal(err)
		}
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c2.Send(ctx2, PingRequest()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third send: %v", err)
	}

	// 200 ms without a reply: lost; 3 attempts within 1 s, then the call fails
	c3 := dialT(t, silent.addr, WithTimeout(200*time.Millisecond), WithFailover(3, time.Second))
	start = time.Now()
	_, err := c3.Ping(ctxT(t))
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("ping: %v after %v", err, time.Since(start))
	}
	t.Logf("silent daemon: %v after %v", err, time.Since(start))

	// failover off: a failure is final
	c4 := dialT(t, silent.addr, WithTimeout(100*time.Millisecond), WithFailover(0, 0))
	if _, err := c4.Ping(ctxT(t)); err == nil {
		t.Fatal("no error from a silent daemon")
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
