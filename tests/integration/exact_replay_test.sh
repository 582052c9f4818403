#!/usr/bin/env bash
# Exact replay of real multi-connection captures (pintuan-replay): pintuand
# with --capture and a test clock takes pintuan-bench traffic (mixed: 8
# connections x pipeline 8, most holds left unpaid; the clock moved under it
# so that they expire
# mid-traffic; then group buys with AUTO matching and failed groups), then
# the clock jumps past every deadline so the expiries are decided too.
# Every decision of each capture is re-decided by the engine with 0
# divergences, including a rotated capture's two files. TAP output.
set -uo pipefail
D=${PINTUAND:?} BENCH=${PINTUAN_BENCH:?} CLI=${PINTUAN_CLI:?} REPLAY=${PINTUAN_REPLAY:?}
n=0 failed=0
check() { local what=$1; shift; n=$((n + 1)); if "$@"; then echo "ok $n - $what"; else failed=$((failed + 1)); echo "not ok $n - $what"; fi; }
tmp=$(mktemp -d)
PID=
trap 'kill -9 $PID 2>/dev/null; rm -rf "$tmp"' EXIT
py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$2"; }
T=1700000000000
set_clock() { echo "$1" >"$tmp/clock.new" && mv "$tmp/clock.new" "$tmp/clock"; }

# run NAME SCENARIO EXTRA_DAEMON_ARGS...: a daemon, bench traffic with the
# clock moving, the clock past every deadline, one request to decide it
run() {
  local name=$1 scen=$2 mix=$3; shift 3
  T=1700000000000
  set_clock $T
  exec {PF}< <(exec "$D" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 --test-clock "$tmp/clock" \
    --capture "$tmp/$name.cap" "$@" 3>&1 1>/dev/null 2>"$tmp/$name.log")
  PID=$!
  read -r PORT <&$PF
  "$BENCH" -a "127.0.0.1:$PORT" -s "$scen" -c 8 -p 8 -d 1 -w 0 --stock 20000 --users 200000 $mix --json --no-progress \
    >"$tmp/$name.bench.json" &
  local bpid=$!
  # the clock moves a minute at a time under the traffic, a bounded number of steps
  for _ in $(seq 1 20); do
    kill -0 $bpid 2>/dev/null || break
    T=$((T + 60000)); set_clock $T
    sleep 0.05
  done
  wait $bpid
  check "$name: pintuan-bench against the capturing daemon passed its verdict" py 'd["verdict"]["pass"]' "$tmp/$name.bench.json"
  T=$((T + 86400000)); set_clock $T # past every hold's and group's deadline
  "$CLI" -a "127.0.0.1:$PORT" reserve late-campaign late-user --request-id late-1 >/dev/null 2>&1 # any decision starts a turn at the new time
  kill $PID; wait $PID 2>/dev/null; PID=
}

run mixed mixed "--mix 90:5:5"
"$REPLAY" --json --no-progress "$tmp/mixed.cap" >"$tmp/mixed.json"; rc=$?
check "mixed: exact replay exits 0" test $rc = 0
check "mixed: every request the bench sent was decided again, 0 divergences" \
  py 'd["divergences"] == 0 and d["error"] is None and d["requests"] >= json.load(open(sys.argv[1].replace(".json", ".bench.json")))["sent"]' "$tmp/mixed.json"
check "mixed: expiries are in it (advances that emitted events)" py 'd["advances"] > 0 and d["events"] > 0' "$tmp/mixed.json"

run group group ""
"$REPLAY" --json --no-progress "$tmp/group.cap" >"$tmp/group.json"; rc=$?
check "group: exact replay exits 0 with 0 divergences" py 'd["divergences"] == 0 and d["error"] is None and d["requests"] > 0' "$tmp/group.json"
check "group: failed groups and expired seats are in it" py 'd["advances"] > 0 and d["events"] > 0' "$tmp/group.json"

# a capture rotated many times: each of the two files kept re-decides alone
run rotated mixed "" --capture-max-bytes 8000000
for f in rotated.cap rotated.cap.1; do
  "$REPLAY" --json --no-progress "$tmp/$f" >"$tmp/$f.json"; rc=$?
  check "$f: begins with the engine's state and replays with 0 divergences" \
    py 'd["states"] >= 1 and d["divergences"] == 0 and d["error"] is None and d["requests"] > 0' "$tmp/$f.json"
done

echo "1..$n"
[ $failed -eq 0 ]
