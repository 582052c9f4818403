package pintuan

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestParseAddrList(t *testing.T) {
	good := map[string][]address{
		"127.0.0.1:7733":          {{"127.0.0.1", 7733}},
		"example.com":             {{"example.com", DefaultPort}},
		"[::1]:9":                 {{"::1", 9}},
		"[::1]":                   {{"::1", DefaultPort}},
		"::1":                     {{"::1", DefaultPort}},
		"h1:1,h2:2":               {{"h1", 1}, {"h2", 2}},
		"localhost:0,[fe80::1]:5": {{"localhost", 0}, {"fe80::1", 5}},
	}
	for in, want := range good {
		got, err := parseAddrList(in)
		if err != nil || len(got) != len(want) {
			t.Fatalf("%q: %v %v", in, got, err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: %v, want %v", in, got, want)
			}
		}
	}
	for _, in := range []string{"", "h:", "h:x", "h:70000", "h:-1", ":7733", "[::1", "[::1]x", "a,,b",
		strings.Repeat("h,", 16) + "h"} {
		if got, err := parseAddrList(in); err == nil {
			t.Fatalf("%q accepted: %v", in, got)
		}
	}
}

func TestFindAddr(t *testing.T) {
	list := []address{{"127.0.0.1", 1000}, {"LocalHost", 2000}}
	for leader, want := range map[string]int{
		"127.0.0.1:1000": 0, "localhost:2000": 1, "localhost:1000": 0, "127.0.0.1:2000": 1,
		"10.0.0.1:1000": -1, "127.0.0.1:3000": -1, "": noLeader, "[::1]:": noLeader,
	} {
		if got := findAddr(list, leader); got != want {
			t.Fatalf("%q: %d, want %d", leader, got, want)
		}
	}
}

// A dead address first: the next one answers; all dead: every reason.
func TestDialList(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	d := startDaemon(t)
	c := dialT(t, dead+","+d.addr)
	if c.Peer() != d.addr {
		t.Fatalf("peer %s", c.Peer())
	}
	_, err := Dial(context.Background(), dead+","+dead)
	if err == nil || strings.Count(err.Error(), "refused") != 2 || !strings.Contains(err.Error(), dead) {
		t.Fatalf("dial of dead addresses: %v", err)
	}
}
