#!/usr/bin/env bash
# The floor of tests/bench works: floor_server answers every frame with its
# request's id, floor_client and pintuan-bench --floor run against it with
# every reply accounted for, and floor.sh puts the rows side by side. Short
# runs, no figure asserted (figures live in BENCHMARKS.md). TAP output.
set -uo pipefail
BUILD=${PT_BUILD_ROOT:?} BENCH=${PINTUAN_BENCH:?}
n=0 failed=0
check() { local what=$1; shift; n=$((n + 1)); if "$@"; then echo "ok $n - $what"; else failed=$((failed + 1)); echo "not ok $n - $what"; fi; }
tmp=$(mktemp -d)
trap 'kill ${FPID:-} 2>/dev/null; rm -rf "$tmp"' EXIT
exec {PF}< <(exec "$BUILD/tests/floor_server" --ready-fd 3 3>&1 1>/dev/null)
FPID=$!
read -r PORT <&$PF
check "floor_server reports its port" test -n "$PORT"
# py EXPR FILE: EXPR over the JSON object d in FILE, true or false
py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$2"; }

"$BUILD/tests/floor_client" -a "127.0.0.1:$PORT" -c 4 -p 8 -d 0.5 -w 0.1 -j >"$tmp/client.json"; rc=$?
check "floor_client: exit 0" test $rc = 0
check "floor_client: replies measured, every id right, no connection lost" \
  py 'd["requests"] > 0 and d["wrong_replies"] == 0 and d["lost"] == 0 and d["latency_us"]["99"] > 0' "$tmp/client.json"

"$BENCH" --floor -a "127.0.0.1:$PORT" -c 4 -p 8 -d 0.5 -w 0.1 --json --no-progress >"$tmp/bench.json"; rc=$?
check "pintuan-bench --floor: exit 0" test $rc = 0
check "pintuan-bench --floor: every request answered OK, no verdict" \
  py 'd["floor"] and d["verdict"] is None and d["unanswered"] == 0 and d["requests"] > 0 and d["status"] == {"OK": d["requests"]}' "$tmp/bench.json"
"$BENCH" --floor -a "127.0.0.1:$PORT" -s mixed -c 2 -p 4 -d 0.3 -w 0 --json --no-progress >"$tmp/mixed.json"; rc=$?
check "pintuan-bench --floor -s mixed: exit 0, all answered" py 'd["unanswered"] == 0 and d["requests"] > 0' "$tmp/mixed.json"

"$BENCH" --floor --replay /dev/null -a "127.0.0.1:$PORT" >/dev/null 2>"$tmp/err"; rc=$?
check "--floor with --replay is refused (64) with a reason" test $rc = 64 -a -s "$tmp/err"

# a frame over the floor's limit ends that connection, not the server
printf '\x7f\xff\xff\xff' | python3 -c "
import socket,sys; s=socket.create_connection(('127.0.0.1',$PORT)); s.sendall(sys.stdin.buffer.read()); print(s.recv(10))" >/dev/null 2>&1
"$BUILD/tests/floor_client" -a "127.0.0.1:$PORT" -c 1 -p 1 -d 0.1 -w 0 -j >"$tmp/after.json"; rc=$?
check "floor_server serves on after an oversized frame" test $rc = 0
kill $FPID; wait $FPID 2>/dev/null; FPID=

bash "$(dirname "$0")/../bench/floor.sh" "$BUILD" 4 4 0.3 1 >"$tmp/floor.txt" 2>&1; rc=$?
check "floor.sh: exit 0" test $rc = 0
check "floor.sh: the floor row, at 100 %" \
  grep -q -E "^floor .*100%" "$tmp/floor.txt"
[ $rc = 0 ] || sed 's/^/# /' "$tmp/floor.txt"
check "floor.sh: the ceiling and pintuand as fractions of the floor" \
  bash -c "grep -q '^bench ceiling' '$tmp/floor.txt' && grep -q '^pintuand memory-only' '$tmp/floor.txt'"

# open_loop.sh: two variants side by side (the bench exits 0: its verdict passed), medians printed
SECS=0.6 WARM=0.2 bash "$(dirname "$0")/../bench/open_loop.sh" "$BUILD" 2000 1 memory >"$tmp/ol.txt" 2>&1; rc=$?
check "open_loop.sh: exit 0" test $rc = 0
[ $rc = 0 ] || sed 's/^/# /' "$tmp/ol.txt"
check "open_loop.sh: a run of each variant, and their medians" \
  bash -c "grep -Eq '^A: [0-9]+/s' '$tmp/ol.txt' && grep -Eq '^B: [0-9]+/s' '$tmp/ol.txt' && grep -Eq '^median A: [0-9]+/s  p99' '$tmp/ol.txt' && grep -Eq '^median B: [0-9]+/s  p99' '$tmp/ol.txt'"
echo "1..$n"
[ $failed = 0 ]
