#!/usr/bin/env bash
# meson's 'go' suite (clients/go/meson.build): go vet and go test of the Go
# client against this build's pintuand (PINTUAND), offline: the module's
# only dependency is Debian's golang-google-protobuf-dev (go.mod's replace),
# nothing is fetched (GOPROXY=off). Exit 77 (skipped) when go or that
# module is missing: the C build never depends on Go.
#   run-tests.sh SOURCE_DIR BUILD_DIR [go test args...]
set -uo pipefail
src=$1 build=$2
shift 2
if ! command -v go >/dev/null 2>&1; then
  echo "go is not installed (apt-get install golang-go): skipped"
  exit 77
fi
if [ ! -f /usr/share/gocode/src/google.golang.org/protobuf/go.mod ]; then
  echo "google.golang.org/protobuf is not installed (apt-get install golang-google-protobuf-dev): skipped"
  exit 77
fi
export GOPROXY=off GOSUMDB=off GO111MODULE=on GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local
# Go's build cache: the user's (shared by every build directory and run),
# else one in the build directory; module downloads are off anyway
cache=$(go env GOCACHE 2>/dev/null)
if [ -z "$cache" ] || [ "$cache" = off ] || ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  export GOCACHE="$build/go-cache"
fi
export GOPATH="$build/gopath"
cd "$src" || exit 1
go vet ./... || exit 1
# PT_GO_RACE=1: under the race detector (a first run compiles the standard
# library for it: minutes on 2 cores)
race=()
if [ "${PT_GO_RACE:-0}" = 1 ]; then race=(-race); fi
exec go test "${race[@]}" -count=1 -timeout 240s "$@" ./...
