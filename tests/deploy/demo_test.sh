#!/usr/bin/env bash
# deploy/demo.sh as a newcomer runs it (with this build, on a free port):
# it serves the demo, and Ctrl-C (SIGINT to its process group, as a
# terminal sends it) stops everything, removes its files and exits 0; a
# daemon that died by itself ends the demo with status 1, its files removed
# and its log kept. TAP output.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${PT_BUILD_ROOT:?}
source "$src/tests/lib/servers.sh"
tmp=$(mktemp -d)
source "$src/tests/lib/tap.sh"
DPIDS=()
trap 'for p in "${DPIDS[@]}"; do kill -9 -- -"$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
set -m # each demo in a process group of its own, as in a terminal

# demo LOG: starts the demo in the background; sets DEMO_PID; returns once
# it waits for Ctrl-C (its last line), 1 if it never got there
demo() {
  PINTUAN_BUILD=$BUILD PINTUAN_LISTEN="127.0.0.1:$(free_port)" bash "$src/deploy/demo.sh" >"$1" 2>&1 &
  DEMO_PID=$!
  DPIDS+=("$DEMO_PID")
  await_log "$1" "Ctrl-C stops the daemon"
}
demo_dir() { sed -n "s/.*keeps the demo's state in \(\/tmp\/pintuan-demo\.[A-Za-z0-9]*\).*/\1/p" "$1" | head -1; }

demo "$tmp/a.log"
check "the demo serves: a retried order gets its original answer after the restart" grep -q "(replay)" "$tmp/a.log"
dir=$(demo_dir "$tmp/a.log")
check "it keeps its state in a directory of its own" test -n "$dir" -a -d "$dir"
kill -INT -- -"$DEMO_PID"
wait "$DEMO_PID"; rc=$?
check "Ctrl-C: exit status 0" test $rc -eq 0
check "Ctrl-C: its directory removed" test ! -e "$dir"

demo "$tmp/b.log"
dir=$(demo_dir "$tmp/b.log")
dpid=$(sed -n 's/^pintuand (pid \([0-9]*\)) is serving.*/\1/p' "$tmp/b.log" | tail -1)
kill -9 "$dpid"
wait "$DEMO_PID"; rc=$?
check "a daemon that died: exit status 1" test $rc -eq 1
check "and it says so" grep -q "pintuand exited by itself" "$tmp/b.log"
check "its directory removed all the same" test ! -e "$dir"
tap_end
