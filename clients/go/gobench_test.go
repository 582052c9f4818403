package pintuan

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cmd/pintuan-gobench still builds and passes its verdict: a short run
// over 2 connections.
func TestGobenchRuns(t *testing.T) {
	d := startDaemon(t)
	bin := filepath.Join(t.TempDir(), "pintuan-gobench")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/pintuan-gobench").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-a", d.addr, "-c", "2", "-p", "8", "-d", "0.3", "-w", "0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "true") {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}
