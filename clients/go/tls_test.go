package pintuan

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pb "pintuan.io/pintuan/v1"
)

// cert makes a P-256 key NAME.key and certificate NAME.pem for CN=cn in
// dir, signed by the CA ca (NULL: self-signed, a CA), with an extension
// (-addext) if given: as tests/integration/test_tls.c makes them.
func cert(t *testing.T, dir, name, cn, ca, ext string) {
	t.Helper()
	var sh string
	if ca == "" {
		sh = fmt.Sprintf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "+
			"-out %s.pem -days 2 -subj /CN=%s", name, name, cn)
	} else {
		add := ""
		if ext != "" {
			add = "-addext " + ext
		}
		sh = fmt.Sprintf("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr "+
			"-subj /CN=%s %s && openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial "+
			"-out %s.pem -days 2 -copy_extensions copy", name, name, cn, add, name, ca, ca, name)
	}
	cmd := exec.Command("sh", "-c", sh)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", sh, err, out)
	}
}

// TLS: the daemon verified against the test CA and the address dialled
// (an IP SAN, a DNS name); another CA or another name refused; a client
// certificate whose CN names a key carries its role without a Hello; a
// plaintext client told why.
func TestTLS(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	in := func(f string) string { return filepath.Join(dir, f) }
	cert(t, dir, "ca", "pintuan-test-ca", "", "")
	cert(t, dir, "server", "pintuand", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost")
	cert(t, dir, "c-shop", "shop", "ca", "")
	cert(t, dir, "rogue", "rogue-ca", "", "")
	ops := makeKey(t, dir, "ops", "admin")
	makeKey(t, dir, "shop", "storefront")
	d := startDaemon(t, "--tls-cert", in("server.pem"), "--tls-key", in("server.key"), "--keys", in("keys"),
		"--tls-client-ca", in("ca.pem"))
	ctx := ctxT(t)

	cfg, err := TLSConfig(in("ca.pem"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := dialT(t, d.addr, WithTLS(cfg), WithKeyFile(ops))
	flash(t, admin, "sku", 100)

	local := dialT(t, fmt.Sprintf("localhost:%d", d.port), WithTLS(cfg)) // the DNS name
	r, err := local.Ping(ctx)
	must(t, r, err, pb.Status_OK)

	shop, err := TLSConfig(in("ca.pem"), in("c-shop.pem"), in("c-shop.key"))
	if err != nil {
		t.Fatal(err)
	}
	s := dialT(t, d.addr, WithTLS(shop))
	r, err = s.Reserve(ctx, "sku", "ann", 1, "o-1") // the certificate's key, no Hello
	must(t, r, err, pb.Status_OK)
	r, err = s.CreateCampaign(ctx, CampaignSpec{CampaignID: "x", Stock: 1, HoldMs: 1000}, "c-x")
	must(t, r, err, pb.Status_PERMISSION_DENIED) // a storefront's role

	rogue, _ := TLSConfig(in("rogue.pem"), "", "")
	if _, err := Dial(ctx, d.addr, WithTLS(rogue)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a daemon of another CA: %v", err)
	}
	named := cfg.Clone()
	named.ServerName = "pintuand.example"
	if _, err := Dial(ctx, d.addr, WithTLS(named)); err == nil || !strings.Contains(err.Error(), "pintuand.example") {
		t.Fatalf("a certificate not naming the server: %v", err)
	}
	if _, err := TLSConfig(in("ca.pem"), in("c-shop.pem"), ""); err == nil {
		t.Fatal("a client certificate without its key")
	}

	plain := dialT(t, d.addr, WithFailover(0, 0))
	r, err = plain.Ping(ctx)
	if err == nil && !strings.Contains(r.GetDetail(), "TLS") {
		t.Fatalf("plaintext to a TLS port: %v", r)
	}
	t.Logf("plaintext: %v %v", r, err)
}
