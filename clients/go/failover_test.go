package pintuan

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "pintuan.io/pintuan/v1"
)

// A primary and its standby on a real Redis; the client, given both
// addresses, reserves from several goroutines while the primary is killed
// with SIGKILL under it. Every reservation acknowledged OK is there
// afterwards, with its id, and nothing was applied twice: the campaign
// holds exactly the units acknowledged, and each request retried gets its
// original answer as a replay.
func TestFailoverPrimaryKilled(t *testing.T) {
	redis := startShard(t)
	a := startNode(t, redis, "a", "1500", true)
	b := startNode(t, redis, "b", "1500", false)
	c := dialT(t, a.addr+","+b.addr)
	flash(t, c, "f", 1000000)

	const workers, each = 8, 150
	type ack struct {
		user string
		qty  int32
		res  uint64
	}
	acks := make([][]ack, workers)
	var acked, retried atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				user, rid, qty := fmt.Sprintf("u%d-%d", w, i), fmt.Sprintf("r%d-%d", w, i), int32(1+i%2)
				for try := 0; ; try++ {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					r, err := c.Reserve(ctx, "f", user, qty, rid)
					cancel()
					if err == nil && r.GetStatus() == pb.Status_OK {
						if string(r.GetReservation().GetUserId()) != user {
							errs <- fmt.Errorf("%s answered for %s", rid, r.GetReservation().GetUserId())
							return
						}
						acks[w] = append(acks[w], ack{user, qty, r.GetReservation().GetReservationId()})
						acked.Add(1)
						break
					}
					// not answered OK: the same request id again, as a storefront would
					if try == 20 {
						errs <- fmt.Errorf("%s never answered OK: %v %v", rid, r.GetStatus(), err)
						return
					}
					retried.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}(w)
	}
	for acked.Load() < 300 {
		time.Sleep(time.Millisecond)
	}
	killed := time.Now()
	a.kill9()
	b.logWait(t, "mirror role=primary", waitLong)
	t.Logf("the standby is primary %v after the kill", time.Since(killed).Round(time.Millisecond))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := c.Stats()
	t.Logf("stats %+v; %d acknowledged, %d retried by the test", st, acked.Load(), retried.Load())
	if st.Failures == 0 || st.Reconnects == 0 || c.Peer() != b.addr {
		t.Fatalf("no failover seen: %+v, peer %s", st, c.Peer())
	}

	// every acknowledged reservation is there, and was decided once
	var units int64
	ctx := ctxT(t)
	var ps []*Pending
	var want []ack
	for w := range acks {
		for i, k := range acks[w] {
			units += int64(k.qty)
			p, err := c.Send(ctx, ReserveRequest("f", k.user, k.qty, fmt.Sprintf("r%d-%d", w, i)))
			if err != nil {
				t.Fatal(err)
			}
			ps, want = append(ps, p), append(want, k)
		}
	}
	if len(want) != workers*each {
		t.Fatalf("%d acknowledged, want %d", len(want), workers*each)
	}
	for i, p := range ps {
		r, err := p.Wait(ctx)
		if err != nil || r.GetStatus() != pb.Status_OK || !r.GetReplay() ||
			r.GetReservation().GetReservationId() != want[i].res {
			t.Fatalf("retry of %s: %v %v (acknowledged as %d)", want[i].user, r, err, want[i].res)
		}
	}
	for _, k := range want[:50] {
		r, err := c.GetReservation(ctx, "f", k.res, k.user)
		if must(t, r, err, pb.Status_OK).GetReservation().GetState() != pb.HoldState_HELD {
			t.Fatalf("reservation %d: %v", k.res, r)
		}
	}
	cp := campaign(t, c, "f")
	if cp.GetHeld() != units || cp.GetAvailable()+cp.GetHeld()+cp.GetSold() != cp.GetStock() {
		t.Fatalf("held %d, acknowledged %d units: %v", cp.GetHeld(), units, cp)
	}
}

// A client given the standby first: its requests are answered NOT_LEADER
// naming the primary, which is in the list, and go there.
func TestNotLeaderFromARealStandby(t *testing.T) {
	redis := startShard(t)
	a := startNode(t, redis, "a", "5000", true)
	b := startNode(t, redis, "b", "5000", false)
	c := dialT(t, b.addr+","+a.addr)
	if c.Peer() != b.addr {
		t.Fatalf("peer %s", c.Peer())
	}
	flash(t, c, "n", 10)
	if st := c.Stats(); st.Redirects != 1 || c.Peer() != a.addr {
		t.Fatalf("stats %+v peer %s", st, c.Peer())
	}
	// the standby alone: its NOT_LEADER is the answer
	s := dialT(t, b.addr)
	r, err := s.GetCampaign(ctxT(t), "n")
	if must(t, r, err, pb.Status_NOT_LEADER).GetLeader() != a.addr {
		t.Fatalf("leader %q", r.GetLeader())
	}
	if st := s.Stats(); st.Redirects != 0 || st.Reconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The session follows a failover: a client that said Hello with an admin
// key and subscribed, on A, A killed: on B (the list's next) its Hello and
// Subscribe are said again before anything else, so it may run admin
// operations there and B's events arrive.
func TestSessionFollowsFailover(t *testing.T) {
	dir := t.TempDir()
	ops := makeKey(t, dir, "ops", "admin")
	a := startDaemon(t, "--keys", dir+"/keys")
	b := startDaemon(t, "--keys", dir+"/keys")
	ctx := ctxT(t)
	c := dialT(t, a.addr+","+b.addr, WithKeyFile(ops))
	r, err := c.Subscribe(ctx) // every campaign's
	must(t, r, err, pb.Status_OK)
	a.kill9()
	// the reader sees A close and mends the session at once
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Reconnects == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := c.Stats(); st.Failures != 1 || st.Reconnects != 1 || st.Resent != 0 || c.Peer() != b.addr {
		t.Fatalf("stats %+v peer %s", st, c.Peer())
	}
	r, err = c.CreateCampaign(ctx, CampaignSpec{CampaignID: "e", Stock: 5, HoldMs: 100}, "c-e") // admin: the Hello came along
	must(t, r, err, pb.Status_OK)
	r, err = c.Reserve(ctx, "e", "ann", 1, "o-1")
	must(t, r, err, pb.Status_OK)
	select {
	case ev := <-c.Events():
		if ev.GetType() != pb.EventType_HOLD_EXPIRED || string(ev.GetCampaignId()) != "e" {
			t.Fatalf("event %v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event from B: the subscription did not follow")
	}
}
