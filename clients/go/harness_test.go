package pintuan

// Real processes for the tests: pintuand (PINTUAND, else the build's
// daemon/pintuand) started on a free 127.0.0.1 port as tests/lib/harness.c
// does (--listen 127.0.0.1:0 --ready-fd 3: the bound port on that pipe),
// redis-server on a free port, and --init-shard / --make-key runs. Every
// process a test starts is killed (SIGKILL) and reaped by its cleanup, and
// dies with the test binary besides (Pdeathsig).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "pintuan.io/pintuan/v1"
)

const waitLong = 30 * time.Second

func pintuand(t testing.TB) string {
	if p := os.Getenv("PINTUAND"); p != "" {
		return p
	}
	p, _ := filepath.Abs("../../build/daemon/pintuand")
	if _, err := os.Stat(p); err != nil {
		t.Skip("no pintuand: set PINTUAND (meson test -C build --suite go does)")
	}
	return p
}

type proc struct {
	cmd  *exec.Cmd
	log  string
	port int
	addr string
	done chan struct{}
}

func (p *proc) kill9() {
	if p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
}

// logWait waits until the process's log has a line containing needle.
func (p *proc) logWait(t testing.TB, needle string, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		b, _ := os.ReadFile(p.log)
		if strings.Contains(string(b), needle) {
			return
		}
		select {
		case <-p.done:
			b, _ = os.ReadFile(p.log)
			if strings.Contains(string(b), needle) {
				return
			}
			t.Fatalf("process exited before logging %q:\n%s", needle, b)
		case <-time.After(10 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(p.log)
	t.Fatalf("no %q in the log within %v:\n%s", needle, d, b)
}

func spawn(t testing.TB, logPath string, extra []*os.File, name string, args ...string) *proc {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	log.Close()
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill9)
	return p
}

// startDaemon starts pintuand with the extra arguments; its port read from
// --ready-fd.
func startDaemon(t testing.TB, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"--listen", "127.0.0.1:0", "--ready-fd", "3", "--admin-listen", "off",
		"--log-level", "info"}, args...)
	p := spawn(t, filepath.Join(dir, "log"), []*os.File{w}, pintuand(t), all...)
	w.Close()
	got := make(chan string, 1)
	go func() { b, _ := io.ReadAll(r); r.Close(); got <- string(b) }()
	var out string
	select {
	case out = <-got:
	case <-time.After(waitLong):
	}
	port, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
	if port <= 0 {
		b, _ := os.ReadFile(p.log)
		t.Fatalf("pintuand %v did not start:\n%s", args, b)
	}
	p.port = port
	p.addr = fmt.Sprintf("127.0.0.1:%d", port)
	return p
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts a redis-server without persistence on a free port.
func startRedis(t testing.TB) *proc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server")
	}
	dir := t.TempDir()
	for try := 0; try < 5; try++ {
		port := freePort(t)
		p := spawn(t, filepath.Join(dir, "log"), nil, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		p.port, p.addr = port, fmt.Sprintf("127.0.0.1:%d", port)
		end := time.Now().Add(waitLong)
		for time.Now().Before(end) {
			if redisPing(p.addr) {
				return p
			}
			select {
			case <-p.done: // the port was taken meanwhile: another
				end = time.Time{}
			case <-time.After(10 * time.Millisecond):
			}
		}
		p.kill9()
	}
	t.Fatal("redis-server did not start")
	return nil
}

func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "+PONG")
}

// run runs pintuand with args; its stdout.
func runDaemonTool(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(pintuand(t), args...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pintuand %v: %v\n%s", args, err, errb.String())
	}
	return string(out)
}

// makeKey makes a key (pintuand --make-key), its line appended to
// dir/keys; the client's key file's path.
func makeKey(t testing.TB, dir, name, role string) string {
	t.Helper()
	path := filepath.Join(dir, name+".key")
	line := runDaemonTool(t, "--make-key", name+":"+role, "--key-out", path)
	f, err := os.OpenFile(filepath.Join(dir, "keys"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
	return path
}

// shard is a redis-server with shard "t" created in it.
func startShard(t testing.TB) *proc {
	r := startRedis(t)
	runDaemonTool(t, "--redis", r.addr, "--shard", "t", "--init-shard", "--log-level", "warn")
	return r
}

// startNode starts a daemon of shard "t" and waits for its role.
func startNode(t testing.TB, redis *proc, node, leaseMs string, primary bool, args ...string) *proc {
	t.Helper()
	d := startDaemon(t, append([]string{"--redis", redis.addr, "--shard", "t", "--node-id", node,
		"--lease-ms", leaseMs}, args...)...)
	if primary {
		d.logWait(t, "mirror role=primary", waitLong)
	} else {
		d.logWait(t, "mirror role=standby", waitLong)
	}
	return d
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialT(t testing.TB, addrs string, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(ctxT(t), addrs, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", addrs, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// must: the reply, which must have status want.
func must(t testing.TB, r *pb.Response, err error, want pb.Status) *pb.Response {
	t.Helper()
	if err != nil {
		t.Fatalf("call failed: %v", err)
	}
	if r.GetStatus() != want {
		t.Fatalf("status %v (%s), want %v", r.GetStatus(), r.GetDetail(), want)
	}
	return r
}

func flash(t testing.TB, c *Client, id string, stock int64) {
	t.Helper()
	r, err := c.CreateCampaign(ctxT(t), CampaignSpec{CampaignID: id, Stock: stock, HoldMs: 600000}, "create-"+id)
	must(t, r, err, pb.Status_OK)
}

func campaign(t testing.TB, c *Client, id string) *pb.Campaign {
	t.Helper()
	r, err := c.GetCampaign(ctxT(t), id)
	return must(t, r, err, pb.Status_OK).GetCampaign()
}
