#!/usr/bin/env bash
# Exact replay of real multi-connection captures (pintuan-replay): pintuand
# with --capture and a test clock takes pintuan-bench traffic (mixed: 8
# connections x pipeline 8, most holds left unpaid; the clock moved under it
# so that they expire
# mid-traffic; then group buys with AUTO matching and failed groups), then
# the clock jumps past every deadline so the expiries are decided too.
# Every decision of each capture is re-decided by the engine with 0
# divergences, including a rotated capture's two files. Then a capture on a
# durable primary (a real redis-server on a free loopback port): its file
# holds the state at open and the state after it became primary; kill -9 of
# the daemon cuts its capture mid-record, which is replayed up to the cut;
# the next primary, rebuilt from Redis, captures a file that starts from the
# rebuilt state. Each replays with 0 divergences. TAP output.
set -uo pipefail
D=${PINTUAND:?} BENCH=${PINTUAN_BENCH:?} CLI=${PINTUAN_CLI:?} REPLAY=${PINTUAN_REPLAY:?}
n=0 failed=0
check() { local what=$1; shift; n=$((n + 1)); if "$@"; then echo "ok $n - $what"; else failed=$((failed + 1)); echo "not ok $n - $what"; fi; }
tmp=$(mktemp -d)
PID=
RPID=
trap 'kill -9 $PID $RPID 2>/dev/null; rm -rf "$tmp"' EXIT
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
  # UNTIL=FILE: more traffic until the daemon has made FILE (a rotation),
  # however slow the machine (a bounded number of runs)
  for _ in $(seq 1 60); do
    [ -z "${UNTIL:-}" ] || [ -e "$UNTIL" ] && break
    "$BENCH" -a "127.0.0.1:$PORT" -s "$scen" -c 8 -p 8 -d 1 -w 0 --stock 20000 --users 200000 $mix --no-progress \
      >/dev/null 2>&1
  done
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
UNTIL="$tmp/rotated.cap.1" run rotated mixed "" --capture-max-bytes 8000000
for f in rotated.cap rotated.cap.1; do
  "$REPLAY" --json --no-progress "$tmp/$f" >"$tmp/$f.json"; rc=$?
  check "$f: begins with the engine's state and replays with 0 divergences" \
    py 'd["states"] >= 1 and d["divergences"] == 0 and d["error"] is None and d["requests"] > 0' "$tmp/$f.json"
done

# ---- a capture on a durable primary, across a kill -9 ----
source "$(dirname "$0")/../lib/servers.sh"
redis_start "$tmp/redis" --appendonly no
init_shard "$D" exact
# primary NAME: a daemon capturing to NAME.cap; returns once it decides (a
# create answered OK: before it is the primary, mutations are refused)
primary() {
  exec {PF}< <(exec "$D" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 --redis "127.0.0.1:$RPORT" \
    --shard exact --node-id a --capture "$tmp/$1.cap" 3>&1 1>/dev/null 2>"$tmp/$1.log")
  PID=$!
  read -r PORT <&$PF
  for _ in $(seq 1 400); do
    "$CLI" -a "127.0.0.1:$PORT" campaign create "warm-$1" --stock 1 --request-id "warm-$1" >/dev/null 2>&1 && return 0
    sleep 0.05 # Redis readiness and the lease have no event here; bounded
  done
  return 1
}
check "durable: the first daemon becomes primary" primary durable1
"$BENCH" -a "127.0.0.1:$PORT" -s mixed -c 8 -p 8 -d 0.5 -w 0 --json --no-progress >"$tmp/d1.bench.json"
kill -9 $PID; wait $PID 2>/dev/null; PID=
check "durable: after a kill -9, the next daemon becomes primary (rebuilt from Redis)" primary durable2
"$BENCH" -a "127.0.0.1:$PORT" -s mixed -c 8 -p 8 -d 0.5 -w 0 --json --no-progress >"$tmp/d2.bench.json"
kill $PID; wait $PID 2>/dev/null; PID=
"$REPLAY" --json --no-progress "$tmp/durable1.cap" >"$tmp/durable1.json"
check "durable: the killed primary's capture (states at open and as primary) replays to its cut with 0 divergences" \
  py 'd["states"] == 2 and d["requests"] > 0 and d["divergences"] == 0 and (d["error"] is None or "truncated" in d["error"])' "$tmp/durable1.json"
"$REPLAY" --json --no-progress "$tmp/durable2.cap" >"$tmp/durable2.json"; rc=$?
check "durable: the rebuilt primary's capture replays whole with 0 divergences" \
  py 'd["states"] == 2 and d["requests"] > 0 and d["divergences"] == 0 and d["error"] is None' "$tmp/durable2.json"

# ---- a capture written two formats back: its state is an engine
# snapshot of format 2 (64 KiB record chunks), which this engine converts
# (an upgraded standby reads what the old primary wrote to Redis the same
# way). tests/data/capture-snapshot-format2.cap.gz: pintuand at b9c0c53,
# mixed and group-buy bench traffic, rotated; the file kept starts with the
# engine's state after some thousand decisions.
gzip -dc "$(dirname "$0")/../data/capture-snapshot-format2.cap.gz" >"$tmp/format2.cap"
"$REPLAY" --json --no-progress "$tmp/format2.cap" >"$tmp/format2.json"; rc=$?
check "an older version's capture (snapshot format 2) replays with 0 divergences" \
  py 'd["states"] == 1 and d["requests"] > 200 and d["divergences"] == 0 and d["error"] is None' "$tmp/format2.json"

# ---- the format before this one (3, written by dbb88c4): its AUTO matching
# trees are skipped and built anew from the groups. The traffic is group
# buys where 30-40 users each sit in many open groups (both of the
# matching's per-user indexes), then mixed; the file kept starts with the
# state (rotated) and goes on with group-buy joins. Without the rebuild,
# 430 of its 530 decisions diverge.
gzip -dc "$(dirname "$0")/../data/capture-snapshot-format3.cap.gz" >"$tmp/format3.cap"
"$REPLAY" --json --no-progress "$tmp/format3.cap" >"$tmp/format3.json"; rc=$?
check "previous version's capture (snapshot format 3, users in many groups) replays with 0 divergences" \
  py 'd["states"] == 1 and d["requests"] > 500 and d["divergences"] == 0 and d["error"] is None' "$tmp/format3.json"

# ---- format 7 (written by a355b38): user records without their count of
# holds, copied into today's layout on restore and their holds counted.
# Mixed (limit 3, 300 users), group-buy and mixed traffic, rotated at 400 kB:
# the file kept starts with the state of all three campaigns.
gzip -dc "$(dirname "$0")/../data/capture-snapshot-format7.cap.gz" >"$tmp/format7.cap"
"$REPLAY" --json --no-progress "$tmp/format7.cap" >"$tmp/format7.json"; rc=$?
check "previous version's capture (snapshot format 7, users without their count of holds) replays with 0 divergences" \
  py 'd["states"] == 1 and d["requests"] > 400 and d["divergences"] == 0 and d["error"] is None' "$tmp/format7.json"

echo "1..$n"
[ $failed -eq 0 ]
