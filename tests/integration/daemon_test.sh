#!/usr/bin/env bash
# pintuand from the command line: listen addresses (names, [IPv6]), -t
# checking what a start checks without disturbing anything, and the
# open-file limit warning. TAP output. Every wait is for an event (the
# daemon's ready fd, its exit); nothing here depends on timing.
set -uo pipefail
PINTUAND=${PINTUAND:?} CLI=${PINTUAN_CLI:?}
tmp=$(mktemp -d)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
: >"$tmp/empty.conf" # no /etc/pintuan/pintuan.conf, whatever this machine has
D() { "$PINTUAND" -c "$tmp/empty.conf" "$@"; }

# start LOG [ULIMIT_N] -- ARGS...: starts pintuand and waits until it
# listens (its ready fd); sets DPID, and PORT (empty if it did not start).
# The admin port is on a free port unless ARGS say otherwise.
start() {
  local log=$1 lim=$2; shift 3
  if [ "$lim" = - ]; then
    exec {PF}< <(exec "$PINTUAND" -c "$tmp/empty.conf" --ready-fd 3 --admin-listen 127.0.0.1:0 "$@" 3>&1 1>/dev/null 2>>"$log")
  else
    exec {PF}< <(ulimit -n "$lim" && exec "$PINTUAND" -c "$tmp/empty.conf" --ready-fd 3 --admin-listen 127.0.0.1:0 "$@" 3>&1 1>/dev/null 2>>"$log")
  fi
  DPID=$!
  pids+=("$DPID")
  PORT=
  read -r PORT <&$PF
  exec {PF}<&-
}
# stop: SIGTERM and wait for the exit; returns the exit status
stop() { kill -TERM "$DPID" 2>/dev/null; wait "$DPID"; }

# ---- listen addresses ----

out=$(D --listen localhost:7799 -t 2>"$tmp/t.err"); rc=$?
check "-t accepts a host name (localhost:7799)" test $rc -eq 0 -a "$out" = "configuration ok"
start "$tmp/name.log" - -- --listen localhost:0
check "a start with a host name listens" test -n "$PORT"
"$CLI" -a "localhost:$PORT" ping >/dev/null; check "a client reaches it by that name" test $? -eq 0
grep -q "resolved from localhost" "$tmp/name.log"; check "the log names the addresses and the name" test $? -eq 0
stop; check "and it stops cleanly" test $? -eq 0

printf '[engine]\ndue_per_turn = -3\n' >"$tmp/due.conf"
"$PINTUAND" -c "$tmp/due.conf" -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "-t rejects a negative engine.due_per_turn (EX_CONFIG)" test $rc -eq 78
grep -q "due_per_turn: -3" "$tmp/t.err"; check "and names the key and the value" test $? -eq 0

D --listen no-such-host.invalid:7799 -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "-t rejects a name that does not resolve (EX_NOHOST)" test $rc -eq 68
grep -q "no-such-host.invalid" "$tmp/t.err"; check "and names it" test $? -eq 0
start "$tmp/noname.log" - -- --listen no-such-host.invalid:7799
wait "$DPID"; rc=$?
check "a start with it fails the same way" test -z "$PORT" -a $rc -eq 68

if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
  out=$(D --listen '[::1]:7799' -t); rc=$?
  check "-t accepts [::1]:7799" test $rc -eq 0 -a "$out" = "configuration ok"
  start "$tmp/v6.log" - -- --listen '[::1]:0'
  check "a start on [::1] listens" test -n "$PORT"
  "$CLI" -a "[::1]:$PORT" ping >/dev/null; check "a client reaches [::1]:PORT" test $? -eq 0
  grep -q "listening on \[::1\]:$PORT" "$tmp/v6.log"; check "the log shows [::1]:PORT" test $? -eq 0
  stop; check "and it stops cleanly" test $? -eq 0
else
  for what in "-t accepts [::1]:7799" "a start on [::1] listens" "a client reaches [::1]:PORT" \
    "the log shows [::1]:PORT" "and it stops cleanly"; do skip "$what" "no IPv6 loopback here"; done
fi

# ---- -t checks, without disturbing a running daemon ----

start "$tmp/run.log" - -- --listen 127.0.0.1:0
RUNNING=$DPID RPORT=$PORT
out=$(D --listen "127.0.0.1:$RPORT" -t); rc=$?
check "-t on the address a running daemon holds is ok (it binds nothing)" test $rc -eq 0
"$CLI" -a "127.0.0.1:$RPORT" ping >/dev/null; check "and the running daemon still answers" test $? -eq 0

printf 'recorded traffic\n' >"$tmp/live.cap"
D --capture "$tmp/live.cap" -t >/dev/null; rc=$?
check "-t accepts a writable capture file" test $rc -eq 0
check "and leaves its contents alone" test "$(cat "$tmp/live.cap")" = "recorded traffic"
D --capture "$tmp/new.cap" -t >/dev/null; rc=$?
check "-t accepts a capture file it can create" test $rc -eq 0
check "and leaves none behind" test ! -e "$tmp/new.cap"
D --capture "$tmp/no/such/dir.cap" -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "-t rejects a capture file that cannot be opened (EX_CANTCREAT)" test $rc -eq 73
start "$tmp/nocap.log" - -- --listen 127.0.0.1:0 --capture "$tmp/no/such/dir.cap"
wait "$DPID"; rc=$?
check "a start with it fails the same way" test -z "$PORT" -a $rc -eq 73

D --test-clock "$tmp/no-clock" -t >/dev/null 2>&1; rc=$?
check "-t rejects an unreadable --test-clock (EX_NOINPUT)" test $rc -eq 66
start "$tmp/noclock.log" - -- --listen 127.0.0.1:0 --test-clock "$tmp/no-clock"
wait "$DPID"; rc=$?
check "a start with it fails the same way" test -z "$PORT" -a $rc -eq 66

# ---- the open-file limit: max_clients + 27 of its own, + 65 for the admin
# port (one listener, 64 connections) when it is on (README) ----

nowarn() { ! grep -q "open-file limit" "$1"; }
start "$tmp/fd1.log" 1027 -- --listen 127.0.0.1:0 --max-clients 1000 --admin-listen off
check "limit 1027 = 1000 clients + 27: the start listens" test -n "$PORT"
stop; check "and warns of nothing" nowarn "$tmp/fd1.log"
start "$tmp/fd2.log" 1026 -- --listen 127.0.0.1:0 --max-clients 1000 --admin-listen off
check "limit 1026: the start still listens" test -n "$PORT"
stop; grep -q "open-file limit 1026 is below the 1027 descriptors needed" "$tmp/fd2.log"
check "and warns with the numbers (1026 below 1027)" test $? -eq 0
start "$tmp/fd3.log" 1027 -- --listen 127.0.0.1:0 --max-clients 1000 --capture "$tmp/fd3.cap" --admin-listen off
stop; grep -q "open-file limit 1027 is below the 1028 descriptors needed" "$tmp/fd3.log"
check "a capture file counts one more (1028)" test $? -eq 0
start "$tmp/fd7.log" 1091 -- --listen 127.0.0.1:0 --max-clients 1000 --admin-listen 127.0.0.1:0
stop; grep -q "open-file limit 1091 is below the 1092 descriptors needed (max_clients 1000 + 92 .*65 admin port" "$tmp/fd7.log"
check "the admin port counts 65 more (1092)" test $? -eq 0
start "$tmp/fd8.log" 1092 -- --listen 127.0.0.1:0 --max-clients 1000 --admin-listen 127.0.0.1:0
stop; check "limit 1092 with the admin port warns of nothing" nowarn "$tmp/fd8.log"
start "$tmp/fd4.log" 512 -- --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
stop; grep -q "open-file limit 512 is below the 16092 descriptors needed (max_clients 16000 + 92" "$tmp/fd4.log"
check "a default start under ulimit -n 512 warns: 16092 needed" test $? -eq 0
(ulimit -n 512 && D -t >/dev/null 2>"$tmp/fd5.err"); rc=$?
grep -q "open-file limit 512 is below the 16092 descriptors needed" "$tmp/fd5.err"
check "-t gives the same warning (and exit 0)" test $? -eq 0 -a $rc -eq 0
# A default start at this machine's own limit (raised to the hard one):
# quiet when it allows 16000 clients, else the same warning.
hard=$(ulimit -Hn)
start "$tmp/fd6.log" - -- --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
stop
if [ "$hard" = unlimited ] || [ "$hard" -ge 16092 ]; then
  check "a default start with the hard limit at $hard warns of nothing" nowarn "$tmp/fd6.log"
else
  grep -q "open-file limit $hard is below the 16092 descriptors needed" "$tmp/fd6.log"
  check "a default start with the hard limit at $hard (< 16092) warns with the numbers" test $? -eq 0
fi

# ---- the admin port's address ----

D --admin-listen 0.0.0.0:7734 -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "-t refuses an admin port beyond loopback without keys (EX_CONFIG)" test $rc -eq 78
grep -q "not a loopback address: give the clients keys" "$tmp/t.err"; check "and says what to do" test $? -eq 0
"$PINTUAND" --make-key ops:admin --key-out "$tmp/ops.key" >"$tmp/keys"; rc=$?
check "--make-key writes a key" test $rc -eq 0 -a "$(stat -c %a "$tmp/ops.key")" = 600
grep -qE '^ops admin sha256:[0-9a-f]{64}$' "$tmp/keys"; check "and prints its keys-file line, no secret" test $? -eq 0
grep -q "$(cut -d' ' -f2 "$tmp/ops.key")" "$tmp/keys"; check "the secret is not in the keys file" test $? -ne 0
"$PINTUAND" --make-key ops:admin --key-out "$tmp/ops.key" >/dev/null 2>&1
check "--make-key never overwrites a key file" test $? -ne 0
"$PINTUAND" --make-key 'bad name:admin' --key-out "$tmp/x.key" >/dev/null 2>&1
check "--make-key refuses a bad name" test $? -eq 64
out=$(D --admin-listen 0.0.0.0:7734 --keys "$tmp/keys" -t); rc=$?
check "with keys it is accepted" test $rc -eq 0 -a "$out" = "configuration ok"
D --listen 0.0.0.0:7733 -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "-t refuses to serve beyond loopback without keys (EX_CONFIG)" test $rc -eq 78
grep -q "is not a loopback address: anyone who reaches it" "$tmp/t.err"; check "and says why" test $? -eq 0
out=$(D --listen 0.0.0.0:7733 --allow-anonymous -t); rc=$?
check "unless the operator says --allow-anonymous" test $rc -eq 0 -a "$out" = "configuration ok"
out=$(D --listen 0.0.0.0:7733 --keys "$tmp/keys" -t); rc=$?
check "or gives keys" test $rc -eq 0 -a "$out" = "configuration ok"
printf 'ops admin sha256:12\n' >"$tmp/badkeys"
D --keys "$tmp/badkeys" -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "a bad keys file is a configuration error" test $rc -eq 78
grep -q "badkeys:1: the hash is sha256: and 64 hex digits" "$tmp/t.err"; check "naming the file, the line and what is wrong" test $? -eq 0
printf '[security]\nadmin_token = x\n' >"$tmp/old.conf"
D -c "$tmp/old.conf" -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "the old admin_token is refused" test $rc -eq 78
grep -q "admin_token is gone: give each client a key" "$tmp/t.err"; check "saying what replaced it" test $? -eq 0
D --admin-listen nonsense -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "a bad --admin-listen is a configuration error" test $rc -eq 78
grep -q "bad value for --admin-listen: nonsense" "$tmp/t.err"; check "and is named" test $? -eq 0
# ---- the prefault thread's switch ----
D --prefault maybe -t >/dev/null 2>"$tmp/t.err"; rc=$?
check "a bad --prefault is a configuration error" test $rc -eq 78
grep -q "bad value for --prefault: maybe" "$tmp/t.err"; check "and is named" test $? -eq 0
for v in auto on off; do
  out=$(D --prefault $v -t); rc=$?
  check "--prefault $v is accepted" test $rc -eq 0 -a "$out" = "configuration ok"
done
# A port this test holds: asked for explicitly, the start fails; the
# default address busy only costs the admin port (shoppers come first).
coproc HOLD { exec python3 -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); sys.stdin.read()'; }
read -r HELD <&"${HOLD[0]}"
start "$tmp/busy.log" - -- --listen 127.0.0.1:0 --admin-listen "127.0.0.1:$HELD"
wait "$DPID"; rc=$?
check "an explicit admin address in use fails the start (EX_UNAVAILABLE)" test -z "$PORT" -a $rc -eq 69
grep -q "admin port: cannot listen on 127.0.0.1:$HELD" "$tmp/busy.log"; check "and says where" test $? -eq 0
exec {HOLD[1]}>&-; wait "$HOLD_PID" 2>/dev/null
start "$tmp/nadmin.log" - -- --listen 127.0.0.1:0 --admin-listen off
check "--admin-listen off: the daemon serves" test -n "$PORT"
stop; ! grep -q "admin port" "$tmp/nadmin.log"; check "with no admin port" test $? -eq 0

DPID=$RUNNING
stop; check "the running daemon stops cleanly" test $? -eq 0

echo "1..$n"
[ $failed -eq 0 ]
