package pintuan

// v1/pintuan.pb.go is committed, so that a program importing
// pintuan.io/pintuan builds with the Go toolchain alone (go build runs no
// protoc). This test keeps it the contract's: generated again from
// proto/pintuan.proto with the installed protoc and protoc-gen-go, it must
// be the same file (the header's tool versions aside). Regenerate with
// `go generate` in clients/go.

//go:generate protoc --proto_path=../../proto --go_out=. --go_opt=module=pintuan.io/pintuan pintuan.proto

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

var toolVersions = regexp.MustCompile(`(?m)^// \tprotoc(-gen-go)? +v.*\n`)

func TestGeneratedCodeMatchesTheProto(t *testing.T) {
	for _, tool := range []string{"protoc", "protoc-gen-go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: cannot check v1/pintuan.pb.go", tool)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("protoc", "--proto_path=../../proto", "--go_out="+dir,
		"--go_opt=module=pintuan.io/pintuan", "pintuan.proto")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	fresh, err := os.ReadFile(filepath.Join(dir, "v1", "pintuan.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("v1", "pintuan.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(toolVersions.ReplaceAll(fresh, nil), toolVersions.ReplaceAll(committed, nil)) {
		t.Fatal("v1/pintuan.pb.go is not what proto/pintuan.proto generates: run `go generate` in clients/go and commit it")
	}
}
