#!/usr/bin/env bash
# meson's 'conformance_go' test (clients/go/meson.build, suite 'conformance'):
# builds cmd/pintuan-conformance, the Go client's conformance runner, offline
# (GOPROXY=off, Debian's golang-google-protobuf-dev through go.mod's replace)
# and plays every tests/conformance/*.scn with it against this build's
# pintuand (PINTUAND), as conformance_c does through libpintuan. Exit 77
# (skipped) when go or that module is missing: the C build never depends on Go.
#   run-conformance.sh SOURCE_DIR BUILD_DIR CONFORMANCE_DIR
set -uo pipefail
src=${1:?SOURCE_DIR} build=${2:?BUILD_DIR} conf=${3:?CONFORMANCE_DIR}
if ! command -v go >/dev/null 2>&1; then
  echo "go is not installed (apt-get install golang-go): skipped"
  exit 77
fi
if [ ! -f /usr/share/gocode/src/google.golang.org/protobuf/go.mod ]; then
  echo "google.golang.org/protobuf is not installed (apt-get install golang-google-protobuf-dev): skipped"
  exit 77
fi
export GOPROXY=off GOSUMDB=off GO111MODULE=on GOWORK=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local
# Go's build cache: the user's (shared with run-tests.sh), else one in the
# build directory
cache=$(go env GOCACHE 2>/dev/null)
if [ -z "$cache" ] || [ "$cache" = off ] || ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  export GOCACHE="$build/go-cache"
fi
export GOPATH="$build/gopath"
bin="$build/pintuan-conformance"
(cd "$src" && go build -o "$bin" ./cmd/pintuan-conformance) || exit 1
shopt -s nullglob
scenarios=("$conf"/*.scn)
if [ ${#scenarios[@]} = 0 ]; then
  echo "no scenarios in $conf"
  exit 1
fi
exec "$bin" "$conf/ctl.sh" "${scenarios[@]}"
