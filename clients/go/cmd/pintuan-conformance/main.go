// pintuan-conformance: the conformance runner for the Go client. It plays
// the scenarios of tests/conformance/ (the .scn files; its README.md says
// the format) through the client's blocking call (Client.Call: its own
// correlation ids, failover and retries), against the daemons ctl.sh
// starts, as tests/conformance/run_c.c does for libpintuan. Requests are
// built and replies read by field name through protoreflect, so a scenario
// can name any operation and field without code here.
//
//	pintuan-conformance CTL SCENARIO...   ($PINTUAND: the daemon ctl.sh starts)
//
// One line per scenario ("ok NAME" / "not ok NAME: file:line: why"), then
// "N passed, N failed"; exit 1 when any failed.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"pintuan.io/pintuan"
	pb "pintuan.io/pintuan/v1"
)

// connectTimeout bounds a connect and each wait for the daemon (run_c's
// 10000 ms to pintuan_connect).
const connectTimeout = 10 * time.Second

// stepTimeout bounds one step's calls: the client's own bounds end them
// sooner; this only keeps a wedged run from hanging the suite.
const stepTimeout = 2 * time.Minute

type client struct {
	name string
	c    *pintuan.Client
	last *pb.Response
}

type run struct {
	ctl, file string
	line      int
	dir       string
	addrs     string
	up        bool
	clients   []*client
	vars      map[string]string
}

// failure is a scenario's failure: "file:line: why".
type failure struct{ why string }

func (f *failure) Error() string { return f.why }

func (r *run) failf(format string, a ...any) error {
	return &failure{fmt.Sprintf("%s:%d: ", r.file, r.line) + fmt.Sprintf(format, a...)}
}

// expand substitutes every $VAR of s (VAR: letters, digits, '_').
func (r *run) expand(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' ||
			s[j] >= '0' && s[j] <= '9') {
			j++
		}
		v, ok := r.vars[s[i+1:j]]
		if !ok {
			return "", r.failf("no saved value $%s", s[i+1:j])
		}
		b.WriteString(v)
		i = j
	}
	return b.String(), nil
}

func (r *run) findClient(name string) (*client, error) {
	for _, k := range r.clients {
		if k.name == name {
			return k, nil
		}
	}
	return nil, r.failf("no client %s", name)
}

// ---- messages by field name ----

func (r *run) field(d protoreflect.MessageDescriptor, name string) (protoreflect.FieldDescriptor, error) {
	f := d.Fields().ByName(protoreflect.Name(name))
	if f == nil {
		return nil, r.failf("%s has no field %s", d.FullName(), name)
	}
	return f, nil
}

func isMessage(f protoreflect.FieldDescriptor) bool {
	return f.Message() != nil && !f.IsList() && !f.IsMap()
}

// setScalar sets field f of m from the text v (a repeated bytes or string
// field gets one more element).
func (r *run) setScalar(m protoreflect.Message, f protoreflect.FieldDescriptor, v string) error {
	if f.IsList() {
		var e protoreflect.Value
		switch f.Kind() {
		case protoreflect.BytesKind:
			e = protoreflect.ValueOfBytes([]byte(v))
		case protoreflect.StringKind:
			e = protoreflect.ValueOfString(v)
		default:
			return r.failf("repeated %s: only bytes and strings", f.Name())
		}
		m.Mutable(f).List().Append(e)
		return nil
	}
	// Numbers in base 10; an empty one is 0, as strtol reads it in run_c.
	num := v
	if num == "" {
		num = "0"
	}
	var val protoreflect.Value
	var err error
	switch f.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		var n int64
		n, err = strconv.ParseInt(num, 10, 32)
		val = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		var n uint64
		n, err = strconv.ParseUint(num, 10, 32)
		val = protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		var n int64
		n, err = strconv.ParseInt(num, 10, 64)
		val = protoreflect.ValueOfInt64(n)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		var n uint64
		n, err = strconv.ParseUint(num, 10, 64)
		val = protoreflect.ValueOfUint64(n)
	case protoreflect.BoolKind:
		if v != "true" && v != "false" {
			return r.failf("%s: true or false, not %s", f.Name(), v)
		}
		val = protoreflect.ValueOfBool(v == "true")
	case protoreflect.EnumKind:
		e := f.Enum().Values().ByName(protoreflect.Name(v))
		if e == nil {
			return r.failf("%s: no value %s", f.Name(), v)
		}
		val = protoreflect.ValueOfEnum(e.Number())
	case protoreflect.StringKind:
		val = protoreflect.ValueOfString(v)
	case protoreflect.BytesKind:
		val = protoreflect.ValueOfBytes([]byte(v))
	default:
		return r.failf("%s: a type this runner does not set", f.Name())
	}
	if err != nil {
		return r.failf("%s: bad number %s", f.Name(), v)
	}
	m.Set(f, val)
	return nil
}

// setPath sets PATH (dotted: spec.stock) of m to the text v, making the
// messages on the way.
func (r *run) setPath(m protoreflect.Message, path, v string) error {
	segs := strings.Split(path, ".")
	for _, seg := range segs[:len(segs)-1] {
		f, err := r.field(m.Descriptor(), seg)
		if err != nil {
			return err
		}
		if !isMessage(f) {
			return r.failf("%s is not a message", seg)
		}
		m = m.Mutable(f).Message()
	}
	f, err := r.field(m.Descriptor(), segs[len(segs)-1])
	if err != nil {
		return err
	}
	return r.setScalar(m, f, v)
}

// getPath reads PATH of m as text: "-" when absent (or a message on the
// way is), a repeated field's count, enums by name, booleans true/false,
// bytes as text.
func (r *run) getPath(m protoreflect.Message, path string) (string, error) {
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		f, err := r.field(m.Descriptor(), seg)
		if err != nil {
			return "", err
		}
		if f.IsList() {
			return strconv.Itoa(m.Get(f).List().Len()), nil // how many
		}
		if f.IsMap() {
			return strconv.Itoa(m.Get(f).Map().Len()), nil
		}
		if f.HasPresence() && !m.Has(f) {
			return "-", nil
		}
		v := m.Get(f)
		if i < len(segs)-1 {
			if !isMessage(f) {
				return "", r.failf("%s is not a message", seg)
			}
			m = v.Message()
			continue
		}
		switch f.Kind() {
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
			protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			return strconv.FormatInt(v.Int(), 10), nil
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			return strconv.FormatUint(v.Uint(), 10), nil
		case protoreflect.BoolKind:
			return strconv.FormatBool(v.Bool()), nil
		case protoreflect.EnumKind:
			if e := f.Enum().Values().ByNumber(v.Enum()); e != nil {
				return string(e.Name()), nil
			}
			return strconv.Itoa(int(v.Enum())), nil
		case protoreflect.StringKind:
			return v.String(), nil
		case protoreflect.BytesKind:
			b := v.Bytes()
			if n := strings.IndexByte(string(b), 0); n >= 0 { // as run_c's %.*s
				b = b[:n]
			}
			return string(b), nil
		default:
			return "", r.failf("%s: a message, not a value", seg)
		}
	}
	return "", r.failf("empty path")
}

// statusName is the Status value's name (STATUS_UNSPECIFIED for one this
// build does not know, as pintuan_status_str).
func statusName(s pb.Status) string {
	if e := s.Descriptor().Values().ByNumber(protoreflect.EnumNumber(s)); e != nil {
		return string(e.Name())
	}
	return "STATUS_UNSPECIFIED"
}

// ---- the steps ----

// ctlCmd runs ctl.sh: "up MODE" as `ctl.sh up DIR MODE`, any other
// command as `ctl.sh COMMAND DIR`. It returns the first line printed.
func (r *run) ctlCmd(args ...string) (string, error) {
	argv := []string{r.ctl}
	if args[0] == "up" {
		argv = append(argv, "up", r.dir)
		argv = append(argv, args[1:]...)
	} else {
		argv = append(argv, args[0], r.dir)
	}
	cmd := exec.Command("bash", argv...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			st := ee.ProcessState.ExitCode() << 8 // pclose's wait status, as run_c prints it
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
				st = int(ws)
			}
			return "", r.failf("ctl %s failed (%d)", strings.Join(args, " "), st)
		}
		return "", r.failf("ctl: %v", err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (r *run) stepClient(w []string) error {
	if len(w) != 3 {
		return r.failf("client NAME ROLE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	opts := []pintuan.Option{pintuan.WithTimeout(connectTimeout)}
	if ca := filepath.Join(r.dir, "tls", "ca.pem"); fileExists(ca) { // ctl.sh up ... tls made it
		cfg, err := pintuan.TLSConfig(ca, "", "")
		if err != nil {
			return r.failf("TLS: %v", err)
		}
		opts = append(opts, pintuan.WithTLS(cfg))
	}
	c, err := pintuan.Dial(ctx, r.addrs, opts...)
	if err != nil {
		return r.failf("connect: %v", err)
	}
	r.clients = append(r.clients, &client{name: w[1], c: c})
	if w[2] == "none" {
		return nil
	}
	name, secret, err := pintuan.ReadKeyFile(filepath.Join(r.dir, "keys", w[2]+".key"))
	if err != nil {
		return r.failf("key %s: %v", w[2], err)
	}
	resp, err := c.Hello(ctx, name, secret)
	if err != nil {
		return r.failf("hello: %v", err)
	}
	if resp.GetStatus() != pb.Status_OK {
		return r.failf("hello as %s: %s", w[2], statusName(resp.GetStatus()))
	}
	return nil
}

func (r *run) stepSend(w []string) error {
	if len(w) < 3 {
		return r.failf("send NAME OP [FIELD=VALUE ...]")
	}
	k, err := r.findClient(w[1])
	if err != nil {
		return err
	}
	req := &pb.Request{}
	q := req.ProtoReflect()
	op, err := r.field(q.Descriptor(), w[2])
	if err != nil {
		return err
	}
	if !isMessage(op) {
		return r.failf("%s is not an operation", w[2])
	}
	body := q.Mutable(op).Message() // the oneof op set to it
	for _, word := range w[3:] {
		tok, err := r.expand(word)
		if err != nil {
			return err
		}
		path, v, ok := strings.Cut(tok, "=")
		if !ok {
			return r.failf("%s: FIELD=VALUE", word)
		}
		if err := r.setPath(body, path, v); err != nil {
			return err
		}
	}
	k.last = nil
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	resp, err := k.c.Call(ctx, req)
	if err != nil {
		return r.failf("%s: %v", w[2], err)
	}
	k.last = resp
	return nil
}

func (r *run) stepExpect(w []string) error {
	if len(w) < 3 {
		return r.failf("expect NAME STATUS [PATH=VALUE ...] [>VAR=PATH ...]")
	}
	k, err := r.findClient(w[1])
	if err != nil {
		return err
	}
	if k.last == nil {
		return r.failf("%s has no reply", w[1])
	}
	if got := statusName(k.last.GetStatus()); got != w[2] {
		return r.failf("status %s, wanted %s (%s)", got, w[2], k.last.GetDetail())
	}
	return r.check(k.last.ProtoReflect(), w[3:])
}

// stepEvent: the next event pushed to NAME (it subscribed with `send NAME
// subscribe`), within connectTimeout: its type, then its fields.
func (r *run) stepEvent(w []string) error {
	if len(w) < 3 {
		return r.failf("event NAME TYPE [PATH=VALUE ...] [>VAR=PATH ...]")
	}
	k, err := r.findClient(w[1])
	if err != nil {
		return err
	}
	var ev *pb.Event
	select {
	case e, ok := <-k.c.Events():
		if !ok {
			return r.failf("no event: the client closed")
		}
		ev = e
	case <-time.After(connectTimeout):
		return r.failf("no event within %v", connectTimeout)
	}
	if got := ev.GetType().String(); got != w[2] {
		return r.failf("event %s, wanted %s", got, w[2])
	}
	return r.check(ev.ProtoReflect(), w[3:])
}

// check: each PATH=VALUE of w holds in m; each >VAR=PATH is saved.
func (r *run) check(m protoreflect.Message, w []string) error {
	for _, word := range w {
		tok, err := r.expand(word)
		if err != nil {
			return err
		}
		lhs, rhs, ok := strings.Cut(tok, "=")
		if !ok {
			return r.failf("%s: PATH=VALUE", word)
		}
		path := lhs
		if strings.HasPrefix(lhs, ">") {
			path = rhs
		}
		have, err := r.getPath(m, path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(lhs, ">") {
			r.vars[lhs[1:]] = have
		} else if have != rhs {
			return r.failf("%s is %s, wanted %s", path, have, rhs)
		}
	}
	return nil
}

func (r *run) play() error {
	f, err := os.Open(r.file)
	if err != nil {
		return r.failf("%v", errors.Unwrap(err))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		r.line++
		line, _, _ := strings.Cut(sc.Text(), "#")
		w := strings.Fields(line)
		if len(w) == 0 {
			continue
		}
		switch w[0] {
		case "setup":
			mode := "single"
			if len(w) > 1 {
				mode = w[1]
			}
			r.up = true // ctl.sh down after it, even when it failed halfway
			args := []string{"up", mode}
			if len(w) > 2 {
				args = append(args, w[2]) // tls
			}
			r.addrs, err = r.ctlCmd(args...)
		case "client":
			err = r.stepClient(w)
		case "send":
			err = r.stepSend(w)
		case "expect":
			err = r.stepExpect(w)
		case "event":
			err = r.stepEvent(w)
		case "ctl":
			if len(w) == 2 {
				_, err = r.ctlCmd(w[1])
			} else {
				err = r.failf("ctl COMMAND")
			}
		default:
			err = r.failf("unknown step %s", w[0])
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return r.failf("%v", err)
	}
	return nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: pintuan-conformance CTL SCENARIO...")
		os.Exit(64)
	}
	passed, failed := 0, 0
	for _, file := range os.Args[2:] {
		dir, err := os.MkdirTemp("/tmp", "pt-conf-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "pintuan-conformance:", err)
			os.Exit(1)
		}
		r := &run{ctl: os.Args[1], file: file, dir: dir, vars: map[string]string{}}
		err = r.play()
		for _, k := range r.clients {
			k.c.Close()
		}
		if r.up {
			_, _ = r.ctlCmd("down")
		}
		name := filepath.Base(file)
		if err != nil {
			fmt.Printf("not ok %s: %v\n", name, err)
			// the daemons' last words: a courtesy
			tail := exec.Command("sh", "-c", "tail -n 5 "+dir+"/*.log 2>/dev/null | sed 's/^/#   /'")
			tail.Stdout = os.Stdout
			_ = tail.Run()
			failed++
		} else {
			fmt.Printf("ok %s\n", name)
			passed++
		}
		os.RemoveAll(dir)
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
