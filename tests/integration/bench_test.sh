#!/usr/bin/env bash
# pintuan-bench end to end against a real pintuand: every scenario runs,
# finishes with a passing verdict, an open-loop run keeps its rate, and bad
# options are refused. TAP output.
set -uo pipefail
PINTUAND=${PINTUAND:?} BENCH=${PINTUAN_BENCH:?}
n=0 failed=0
check() { local what=$1; shift; n=$((n + 1)); if "$@"; then echo "ok $n - $what"; else failed=$((failed + 1)); echo "not ok $n - $what"; fi; }
exec {PF}< <(exec "$PINTUAND" --listen 127.0.0.1:0 --ready-fd 3 --log-level warn 3>&1 1>/dev/null 2>/dev/null)
DPID=$!
read -r PORT <&$PF
tmp=$(mktemp -d)
trap 'kill $DPID 2>/dev/null; rm -rf "$tmp"' EXIT
field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(eval('d' + sys.argv[1]))" "$1"; }
B() { "$BENCH" -a "127.0.0.1:$PORT" --json --no-progress -w 0.3 -d 1 "$@"; }

for sc in stampede group mixed zipf; do
  out=$(B -s "$sc" -c 8 -p 4 --stock 2000 --campaigns 20); rc=$?
  check "$sc: exits 0" test $rc -eq 0
  check "$sc: verdict passes" test "$(echo "$out" | field '["verdict"]["pass"]')" = True
  check "$sc: requests were measured" test "$(echo "$out" | field '["requests"] > 100')" = True
done
out=$(B -s stampede -c 8 --stock 500 --limit 1)
check "stampede sells exactly the stock" test "$(echo "$out" | field '["status"]["OK"]')" = 500
check "stampede: the rest is SOLD_OUT or NOT_STARTED" test "$(echo "$out" | field '["status"].get("SOLD_OUT",0) > 0')" = True
# An open-loop run of rate R for D s sends exactly R*D requests in its
# measured part, however late the machine lets it send them: the run ends
# when every planned request was sent and answered, not at a clock instant.
out=$(B -s mixed -c 4 -R 2000 -d 2)
check "open loop: 2000 req/s for 2 s is 4000 requests" test "$(echo "$out" | field '["requests"]')" = 4000
check "open loop: 4000 requests were planned" test "$(echo "$out" | field '["planned"]')" = 4000
check "open loop: the schedule is the rate" test "$(echo "$out" | field '["planned_rps"]')" = 2000.0
check "open loop: every request was answered" test "$(echo "$out" | field '["unanswered"]')" = 0
# one connection with one request in flight cannot keep 20000 req/s: the
# backlog is sent late, and counted
out=$(B -s mixed -c 1 -p 1 -w 0 -R 20000 -d 0.2)
check "open loop behind the rate: still exactly R*D requests" test "$(echo "$out" | field '["requests"]')" = 4000
check "open loop behind the rate: every request was answered" test "$(echo "$out" | field '["unanswered"]')" = 0
check "open loop behind the rate: the verdict passes" test "$(echo "$out" | field '["verdict"]["pass"]')" = True
check "latency percentiles are ordered" test "$(echo "$out" | field '["latency_us"]["50"] <= d["latency_us"]["99"] <= d["latency_us"]["max"]')" = True
"$BENCH" -a "127.0.0.1:$PORT" -s nonsense >/dev/null 2>&1; check "unknown scenario exits 64" test $? -eq 64
"$BENCH" -a "127.0.0.1:$PORT" -c 0 >/dev/null 2>&1; check "zero connections exits 64" test $? -eq 64
"$BENCH" -a 127.0.0.1:1 -d 1 >/dev/null 2>&1; check "unreachable daemon exits 69" test $? -eq 69
"$BENCH" -a "127.0.0.1:$PORT" --replay /nonexistent >/dev/null 2>&1; check "a missing capture exits 65" test $? -eq 65
echo "1..$n"
[ $failed -eq 0 ]
