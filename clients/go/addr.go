package pintuan

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is pintuand's port when an address names none.
const DefaultPort = 7733

// MaxAddrs is how many addresses a failover list may hold.
const MaxAddrs = 16

const noLeader = -2

// hostMax is the C side's PT_HOST_MAX: a longer host is refused.
const hostMax = 256

type address struct {
	host string // without brackets
	port int
}

func (a address) String() string { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// parseAddr reads "host:port", "host", "[v6]:port", "[v6]" or a bare IPv6
// address, as libpintuan's pt_addr_parse does.
func parseAddr(s string, defaultPort int) (address, error) {
	bad := func(why string) (address, error) {
		return address{}, fmt.Errorf("address '%s': %s", s, why)
	}
	var host, port string
	hasPort := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("no closing ]")
		}
		host = s[1:end]
		rest := s[end+1:]
		if strings.HasPrefix(rest, ":") {
			port, hasPort = rest[1:], true
		} else if rest != "" {
			return bad("expected :PORT after ]")
		}
	} else {
		colon := strings.LastIndexByte(s, ':')
		if colon >= 0 && strings.IndexByte(s, ':') != colon {
			colon = -1 // a bare IPv6 address
		}
		host = s
		if colon >= 0 {
			host, port, hasPort = s[:colon], s[colon+1:], true
		}
	}
	if host == "" {
		return bad("no host (want HOST:PORT)")
	}
	if len(host) >= hostMax {
		return bad("host name too long")
	}
	p := defaultPort
	if hasPort {
		v, err := strconv.Atoi(port)
		if err != nil || v < 0 || v > 65535 || port == "" || port[0] == '+' || port[0] == '-' {
			return bad("the port must be a number 0..65535")
		}
		p = v
	}
	return address{host: host, port: p}, nil
}

// parseAddrList reads a comma-separated list of at most MaxAddrs addresses.
func parseAddrList(s string) ([]address, error) {
	var out []address
	for _, one := range strings.Split(s, ",") {
		if one == "" || len(one) >= hostMax+16 {
			return nil, fmt.Errorf("address '%s': an empty or overlong entry", s)
		}
		if len(out) == MaxAddrs {
			return nil, fmt.Errorf("address '%s': too many addresses", s)
		}
		a, err := parseAddr(one, DefaultPort)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// resolve gives the numeric addresses a host names (itself for an IP).
func resolve(host string) []string {
	if ip := net.ParseIP(host); ip != nil {
		return []string{ip.String()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IP.String())
	}
	return out
}

// findAddr says which address of the list leader (a NOT_LEADER's
// Response.Leader) is: the same host and port, or a name of the same
// address ("localhost" for 127.0.0.1). -1: none of them (a stranger);
// noLeader: no address named, or none that parses.
func findAddr(addrs []address, leader string) int {
	if leader == "" {
		return noLeader
	}
	a, err := parseAddr(leader, DefaultPort)
	if err != nil {
		return noLeader
	}
	for i, m := range addrs {
		if m.port == a.port && strings.EqualFold(m.host, a.host) {
			return i
		}
	}
	named := resolve(a.host)
	for i, m := range addrs {
		if m.port != a.port || len(named) == 0 {
			continue
		}
		for _, y := range resolve(m.host) {
			for _, x := range named {
				if x == y {
					return i
				}
			}
		}
	}
	return -1
}
