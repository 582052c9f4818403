// pintuan-gobench: a closed-loop load of reserves through the Go client,
// to compare with pintuan-bench -s stampede against the same daemon: -c
// connections (one Client each), -p goroutines per connection each calling
// Reserve in a loop (so -p requests in flight per connection, pipelined
// on it), a random user of --users each time, a new request id each time.
// It ends with a verdict read back from the daemon: the units held and
// sold are the ones answered OK, and available + held + sold == stock.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"pintuan.io/pintuan"
	pb "pintuan.io/pintuan/v1"
)

func main() {
	addr := flag.String("a", "127.0.0.1:7733", "daemon address (a list H1:P1,H2:P2 too)")
	conns := flag.Int("c", 1, "connections (one client each)")
	depth := flag.Int("p", 64, "requests in flight per connection (goroutines calling Reserve)")
	dur := flag.Float64("d", 5, "measured seconds")
	warm := flag.Float64("w", 1, "warm-up seconds, not measured")
	stock := flag.Int64("stock", 1000000000, "units in the campaign")
	limit := flag.Uint("limit", 1000000, "per-user limit (0: none)")
	users := flag.Int("users", 1000000, "distinct users")
	keyFile := flag.String("k", os.Getenv("PINTUAN_KEY_FILE"), "key file (NAME SECRET): an admin key")
	asJSON := flag.Bool("json", false, "a JSON summary on stdout")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured part to FILE")
	pipeline := flag.Bool("pipeline", false, "one goroutine per connection keeps -p requests in flight "+
		"(Send, then Wait in order), instead of -p goroutines each calling Reserve")
	flag.Parse()
	if *conns < 1 || *depth < 1 || *dur <= 0 || *warm < 0 || *users < 1 {
		fmt.Fprintln(os.Stderr, "pintuan-gobench: -c, -p, -d and --users must be positive")
		os.Exit(64)
	}
	ctx := context.Background()
	var opts []pintuan.Option
	if *keyFile != "" {
		opts = append(opts, pintuan.WithKeyFile(*keyFile))
	}
	opts = append(opts, pintuan.WithMaxInFlight(*depth))
	clients := make([]*pintuan.Client, *conns)
	for i := range clients {
		c, err := pintuan.Dial(ctx, *addr, opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pintuan-gobench:", err)
			os.Exit(69)
		}
		defer c.Close()
		clients[i] = c
	}
	camp := fmt.Sprintf("gobench-%d-%d", os.Getpid(), time.Now().UnixNano())
	r, err := clients[0].CreateCampaign(ctx, pintuan.CampaignSpec{CampaignID: camp, Stock: *stock,
		PerUserLimit: uint32(*limit), HoldMs: 3600000}, "create-"+camp)
	if err != nil || r.GetStatus() != pb.Status_OK {
		fmt.Fprintln(os.Stderr, "pintuan-gobench: create campaign:", err, r.GetStatus(), r.GetDetail())
		os.Exit(1)
	}

	var measuring, stop atomic.Bool
	var ok, soldOut, other, failed, units atomic.Int64
	lat := make([][]time.Duration, *conns**depth)
	var wg sync.WaitGroup
	record := func(slot int, r *pb.Response, err error, took time.Duration) {
		switch {
		case err != nil:
			failed.Add(1)
		case r.GetStatus() == pb.Status_OK:
			ok.Add(1)
			units.Add(1)
		case r.GetStatus() == pb.Status_SOLD_OUT || r.GetStatus() == pb.Status_LIMIT_EXCEEDED:
			soldOut.Add(1)
		default:
			other.Add(1)
		}
		if measuring.Load() {
			lat[slot] = append(lat[slot], took)
		}
	}
	for ci, c := range clients {
		if *pipeline { // one goroutine: a ring of -p requests in flight, answered in order
			wg.Add(1)
			go func(c *pintuan.Client, slot int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(slot) + 1))
				prefix := "p" + strconv.Itoa(slot) + "-"
				type inflight struct {
					p     *pintuan.Pending
					start time.Time
				}
				ring := make([]inflight, *depth)
				seq := 0
				send := func(i int) {
					user := "user-" + strconv.Itoa(rng.Intn(*users))
					ring[i].start = time.Now()
					p, err := c.Send(ctx, pintuan.ReserveRequest(camp, user, 1, prefix+strconv.Itoa(seq)))
					seq++
					ring[i].p = p
					if err != nil {
						record(slot, nil, err, 0)
					}
				}
				for i := range ring {
					send(i)
				}
				for i := 0; ; i = (i + 1) % *depth {
					if f := ring[i]; f.p != nil {
						r, err := f.p.Wait(ctx)
						record(slot, r, err, time.Since(f.start))
						ring[i].p = nil
					}
					if stop.Load() {
						break
					}
					send(i)
				}
				for _, f := range ring { // the rest, answered after the end: counted for the verdict
					if f.p != nil {
						r, err := f.p.Wait(ctx)
						record(slot, r, err, time.Since(f.start))
					}
				}
			}(c, ci**depth)
			continue
		}
		for g := 0; g < *depth; g++ {
			wg.Add(1)
			slot := ci**depth + g
			go func(c *pintuan.Client, slot int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(slot) + 1))
				prefix := "g" + strconv.Itoa(slot) + "-"
				for seq := 0; !stop.Load(); seq++ {
					user := "user-" + strconv.Itoa(rng.Intn(*users))
					start := time.Now()
					r, err := c.Reserve(ctx, camp, user, 1, prefix+strconv.Itoa(seq))
					record(slot, r, err, time.Since(start))
				}
			}(c, slot)
		}
	}
	time.Sleep(time.Duration(*warm * float64(time.Second)))
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
		}
	}
	cpu0 := cpuTime()
	measuring.Store(true)
	t0 := time.Now()
	time.Sleep(time.Duration(*dur * float64(time.Second)))
	measuring.Store(false)
	pprof.StopCPUProfile()
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	stop.Store(true)
	wg.Wait()

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	r, err = clients[0].GetCampaign(ctx, camp)
	cp := r.GetCampaign()
	pass := err == nil && cp != nil && cp.GetAvailable()+cp.GetHeld()+cp.GetSold() == cp.GetStock() &&
		cp.GetHeld()+cp.GetSold() == units.Load() && failed.Load() == 0
	sum := map[string]any{
		"connections": *conns, "pipeline": *depth, "seconds": elapsed.Seconds(),
		"requests": len(all), "rps": float64(len(all)) / elapsed.Seconds(),
		"ok": ok.Load(), "sold_out_or_limit": soldOut.Load(), "other": other.Load(), "errors": failed.Load(),
		"p50_ms": pct(0.50), "p99_ms": pct(0.99), "p999_ms": pct(0.999), "max_ms": pct(1),
		"held": cp.GetHeld(), "pass": pass, "client_cpu_us_per_request": cpuPer(cpu, len(all)),
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(sum)
	} else {
		fmt.Printf("%d connections x %d in flight, %.1f s: %d requests, %.0f/s; latency p50 %.3f ms, "+
			"p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; client CPU %.2f us/request\n", *conns, *depth,
			elapsed.Seconds(), len(all), sum["rps"], pct(0.5), pct(0.99), pct(0.999), pct(1), cpuPer(cpu, len(all)))
		fmt.Printf("OK %d, SOLD_OUT/LIMIT %d, other %d, errors %d; verdict: held %d of %d units OK: %v\n",
			ok.Load(), soldOut.Load(), other.Load(), failed.Load(), cp.GetHeld(), units.Load(), pass)
	}
	if !pass {
		os.Exit(1)
	}
}

// cpuTime is the CPU time this process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cpuPer(cpu time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(n)
}
