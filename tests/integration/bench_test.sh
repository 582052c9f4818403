#!/usr/bin/env bash
# pintuan-bench end to end against a real pintuand: every scenario runs,
# finishes with a passing verdict, an open-loop run keeps its rate, and bad
# options are refused. TAP output.
set -uo pipefail
PINTUAND=${PINTUAND:?} BENCH=${PINTUAN_BENCH:?}
n=0 failed=0
check() { local what=$1; shift; n=$((n + 1)); if "$@"; then echo "ok $n - $what"; else failed=$((failed + 1)); echo "not ok $n - $what"; fi; }
exec {PF}< <(exec "$PINTUAND" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 --log-level warn 3>&1 1>/dev/null 2>/dev/null)
DPID=$!
read -r PORT <&$PF
tmp=$(mktemp -d)
trap 'kill $DPID ${PYPID:-} 2>/dev/null; rm -rf "$tmp"' EXIT
# field EXPR: EXPR of the JSON summary on stdin, e.g. field '["requests"]'.
# One python3 for the whole test (a start costs ~1 s on a loaded machine),
# over two fifos: a line "EXPR<TAB>JSON" in, the value out.
mkfifo "$tmp/field.in" "$tmp/field.out"
python3 -u -c '
import json, sys
for line in iter(sys.stdin.readline, ""):
    expr, _, doc = line.rstrip("\n").partition("\t")
    try:
        d = json.loads(doc)
        print(eval("d" + expr))
    except Exception as e:
        print("field error: %s" % e)
' <"$tmp/field.in" >"$tmp/field.out" 2>/dev/null &
PYPID=$!
exec {FIELD_IN}>"$tmp/field.in" {FIELD_OUT}<"$tmp/field.out"
field() {
  local doc value=
  doc=$(tr -d '\n')
  printf '%s\t%s\n' "$1" "$doc" >&"$FIELD_IN"
  read -r value <&"$FIELD_OUT"
  printf '%s\n' "$value"
}
B() { "$BENCH" -a "127.0.0.1:$PORT" --json --no-progress -w 0.3 -d 1 "$@"; }

for sc in stampede group mixed zipf; do
  out=$(B -s "$sc" -c 8 -p 4 --stock 2000 --campaigns 20); rc=$?
  check "$sc: exits 0" test $rc -eq 0
  check "$sc: verdict passes" test "$(echo "$out" | field '["verdict"]["pass"]')" = True
  check "$sc: requests were measured" test "$(echo "$out" | field '["requests"] > 100')" = True
done
# open loop, so that the count does not depend on throughput: the sale opens
# 0.5 s after the campaigns are made, and the 1600 requests planned for the
# 0.8 s after that reach the daemon after it opened, however late they go
out=$(B -s stampede -c 8 -R 2000 --stock 500 --limit 1)
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
check "latency percentiles are ordered" test "$(echo "$out" | field '["latency_us"]["50"] <= d["latency_us"]["99"] <= d["latency_us"]["max"]')" = True
# one connection with one request in flight cannot keep 20000 req/s: the
# backlog is sent late, and counted
out=$(B -s mixed -c 1 -p 1 -w 0 -R 20000 -d 0.2)
check "open loop behind the rate: still exactly R*D requests" test "$(echo "$out" | field '["requests"]')" = 4000
check "open loop behind the rate: every request was answered" test "$(echo "$out" | field '["unanswered"]')" = 0
check "open loop behind the rate: the verdict passes" test "$(echo "$out" | field '["verdict"]["pass"]')" = True
# the same with the clock polled every loop turn (--tick-us 0) instead of a timerfd
out=$(B -s mixed -c 4 -R 2000 -d 1 --tick-us 0)
check "open loop, --tick-us 0: 2000 req/s for 1 s is 2000 requests" test "$(echo "$out" | field '["requests"]')" = 2000
check "open loop, --tick-us 0: every request was answered" test "$(echo "$out" | field '["unanswered"]')" = 0
# between sends the bench sleeps: an open loop at 500 req/s takes a small
# part of a core (one that polled the clock would take all of the core it
# got, two thirds of one even beside two CPU hogs on two cores)
share=$(python3 -c '
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.2f" % ((r.ru_utime + r.ru_stime) / wall))' "$BENCH" -a "127.0.0.1:$PORT" --json --no-progress -w 0 -d 2 -s mixed -c 4 -R 500)
check "open loop at 500 req/s sleeps between sends (CPU/wall $share < 0.5)" python3 -c "import sys; sys.exit(not $share < 0.5)"
"$BENCH" -a "127.0.0.1:$PORT" -s nonsense >/dev/null 2>&1; check "unknown scenario exits 64" test $? -eq 64
# bad values are refused (64) before connecting, naming the flag and the value
refused() { # what the message must say, then the options
  local want=$1; shift
  "$BENCH" -a 127.0.0.1:1 "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  check "$* is refused with 64" test $rc -eq 64
  check "$*: the message names the flag and the value" grep -qF -- "$want" "$tmp/err"
}
refused "unknown scenario 'flash'; scenarios: stampede, group, mixed, zipf" -s flash
refused "-R: bad rate '-5'" -R -5
refused "-R: bad rate 'fast'" -R fast
refused "-R: bad rate '0'" -R 0
refused "--rate: bad rate 'nan'" --rate nan
refused "-c: bad number of connections '-3'" -c -3
refused "-p: bad pipeline depth '0'" -p 0
refused "-d: bad duration '0'" -d 0
refused "-d: bad duration '-1'" -d -1
refused "-d: bad duration 'inf'" -d inf
refused "-w: bad warm-up '-1'" -w -1
refused "--stock: bad stock '-5'" --stock -5
refused "--limit: bad limit '-1'" --limit -1
refused "--users: bad number of users '-1'" --users -1
refused "--campaigns: bad number of campaigns '0'" --campaigns 0
refused "--zipf: bad exponent '-1'" --zipf -1
refused "--group-size: bad group size '-3'" --group-size -3
refused "--group-size: bad group size '65'" --group-size 65
refused "--pay-ratio: bad ratio '2'" --pay-ratio 2
refused "--speed: bad speed '-1'" --speed -1
refused "--tick-us: bad tick '-1'" --tick-us -1
refused "--tick-us: bad tick '2000000'" --tick-us 2000000
refused "--mix: bad mix '60:30'" --mix 60:30
refused "unexpected argument 'extra'" extra
refused "unknown option '--bogus'" --bogus
check "a usage error is two lines" test "$(wc -l <"$tmp/err")" -eq 2
check "the second points to --help" test "$(tail -n 1 "$tmp/err")" = "Try 'pintuan-bench --help'."
# every example of README's "Load testing" is accepted as written: against
# no daemon, options that passed their checks exit 69
readme=$(dirname "$0")/../../README.md
examples=$(sed -n '/^## Load testing/,/^Like wrk2/p' "$readme" | sed -n 's/^\$b \([^#]*\).*/\1/p' | grep -vF '...')
check "README has load-testing examples" test "$(echo "$examples" | wc -l)" -ge 5
while read -r line; do
  read -ra words <<<"$line"
  "$BENCH" "${words[@]}" -a 127.0.0.1:1 >/dev/null 2>&1
  check "README example '$line' is accepted" test $? -eq 69
done <<<"$examples"
"$BENCH" --help >"$tmp/out" 2>"$tmp/err"; rc=$?
check "--help exits 0" test $rc -eq 0
check "--help prints the usage on stdout" grep -q "^usage: pintuan-bench" "$tmp/out"
check "--help: nothing on stderr" test ! -s "$tmp/err"
"$BENCH" -a "127.0.0.1:$PORT" -c 0 >/dev/null 2>&1; check "zero connections exits 64" test $? -eq 64
"$BENCH" -a 127.0.0.1:1 -d 1 >/dev/null 2>&1; check "unreachable daemon exits 69" test $? -eq 69
"$BENCH" -a "127.0.0.1:$PORT" --replay /nonexistent >/dev/null 2>&1; check "a missing capture exits 65" test $? -eq 65
# ---- set-up waits for a daemon that cannot decide yet ----
# A durable daemon whose Redis is stopped (SIGSTOP: connections are accepted
# by the kernel, nothing is answered) refuses mutations with UNAVAILABLE;
# the bench's set-up says so once and retries until Redis is back.
CLI=${PINTUAN_CLI:?}
source "$(dirname "$0")/../lib/servers.sh"
redis_start "$tmp/redis" --appendonly no
trap 'kill -CONT $RPID 2>/dev/null; kill $DPID ${PYPID:-} $RPID ${DPID2:-} 2>/dev/null; rm -rf "$tmp"' EXIT
init_shard "$PINTUAND" benchwait
kill -STOP $RPID
exec {PF2}< <(exec "$PINTUAND" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 --log-level warn \
  --redis "127.0.0.1:$RPORT" --shard benchwait 3>&1 1>/dev/null 2>"$tmp/dwait.log")
DPID2=$!
read -r PORT2 <&$PF2
"$CLI" -a "127.0.0.1:$PORT2" campaign create probe --stock 1 >"$tmp/probe" 2>&1
check "Redis stopped: a mutation is refused UNAVAILABLE" grep -q UNAVAILABLE "$tmp/probe"
"$BENCH" -a "127.0.0.1:$PORT2" --json --no-progress -w 0.3 -d 0.5 -s stampede -c 4 -p 4 \
  >"$tmp/wait.json" 2>"$tmp/wait.err" &
BPID=$!
for _ in $(seq 1 600); do
  grep -q "the daemon is not ready" "$tmp/wait.err" && break
  sleep 0.05 # the bench's stderr is a file; bounded
done
check "the bench's set-up says it waits for the daemon" grep -q "the daemon is not ready (.*); waiting up to 30 s" "$tmp/wait.err"
kill -CONT $RPID
wait $BPID; rc=$?
check "once Redis answers, the bench runs and exits 0" test $rc -eq 0
check "... and its verdict passes" test "$(field '["verdict"]["pass"]' <"$tmp/wait.json")" = True
check "... with reservations made" test "$(field '["status"].get("OK",0) > 0' <"$tmp/wait.json")" = True
echo "1..$n"
[ $failed -eq 0 ]
