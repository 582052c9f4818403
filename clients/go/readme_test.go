package pintuan

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlock is the fenced block that follows the marker comment in
// README.md.
func readmeBlock(t *testing.T, readme, marker string) string {
	t.Helper()
	re := regexp.MustCompile("(?s)<!-- " + regexp.QuoteMeta(marker) + "[^>]*-->\\s*```[a-z]*\\n(.*?)```")
	m := re.FindStringSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no block after <!-- %s", marker)
	}
	return m[1]
}

// README.md's example, exactly: its main.go and go.mod (the checkout's
// path filled in) built with its command, offline, and run against a
// daemon.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	gomod := strings.ReplaceAll(readmeBlock(t, readme, "example go.mod"), "/path/to/pintuan", root)
	build := strings.TrimSpace(readmeBlock(t, readme, "example build"))
	if !strings.HasPrefix(build, "GOPROXY=off go build -o app . && ./app ") {
		t.Fatalf("the build line changed: %q (update this test)", build)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(readmeBlock(t, readme, "example main.go")), 0644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	c := dialT(t, d.addr)
	flash(t, c, "sale-42", 10)
	// the README's command line, with this daemon's address
	sh := strings.Replace(build, "127.0.0.1:7733", d.addr, 1)
	for i, want := range []string{"OK ", "OK "} { // the second: a replay, the same answer
		cmd := exec.Command("sh", "-c", sh)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), want) || strings.HasPrefix(string(out), "OK 0") {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		t.Logf("%s", out)
	}
	if h := campaign(t, c, "sale-42").GetHeld(); h != 1 {
		t.Fatalf("held %d", h)
	}
}
