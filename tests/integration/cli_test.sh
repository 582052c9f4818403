#!/usr/bin/env bash
# pintuan-cli against a real pintuand: the README tour, exit codes (0 OK,
# 1 rejected, 64 usage, 69 unreachable), --json output, and the daemon's
# config checks. TAP output.
set -uo pipefail
PINTUAND=${PINTUAND:?} CLI=${PINTUAN_CLI:?}
tmp=$(mktemp -d)
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

exec {PF}< <(exec "$PINTUAND" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 --log-level warn 3>&1 1>/dev/null 2>>"$tmp/log")
DPID=$!
read -r PORT <&$PF
read -r APORT <&$PF # the admin port
cleanup() { kill "$DPID" "${PYPID:-}" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
C() { "$CLI" -a "127.0.0.1:$PORT" "$@"; }
J() { "$CLI" -a "127.0.0.1:$PORT" --json "$@"; }
# field EXPR: EXPR of the JSON reply on stdin, e.g. field '["campaign"]["stock"]'.
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

C ping >/dev/null; check "ping exits 0" test $? -eq 0
out=$(J campaign create c1 --kind flash --stock 2 --limit 1 --hold 300); rc=$?
check "campaign create exits 0" test $rc -eq 0
check "create reply is OK" test "$(echo "$out" | field '["status"]')" = OK
check "campaign stock is 2" test "$(echo "$out" | field '["campaign"]["stock"]')" = 2

out=$(J reserve c1 user42 --qty 1 --request-id o-1); rc=$?
check "reserve exits 0" test $rc -eq 0
res=$(echo "$out" | field '["reservation"]["reservation_id"]')
check "reserve returns a reservation id" test -n "$res"
out2=$(J reserve c1 user42 --qty 1 --request-id o-1); rc=$?
check "retry exits 0" test $rc -eq 0
check "retry is marked replay" test "$(echo "$out2" | field '["replay"]')" = True
check "retry returns the same reservation" test "$(echo "$out2" | field '["reservation"]["reservation_id"]')" = "$res"

out=$(J reserve c1 user42 --request-id o-2); rc=$?
check "over the limit exits 1" test $rc -eq 1
check "over the limit is LIMIT_EXCEEDED" test "$(echo "$out" | field '["status"]')" = LIMIT_EXCEEDED
J reserve c1 user43 --request-id o-3 >/dev/null
out=$(J reserve c1 user44 --request-id o-4); rc=$?
check "sold out exits 1" test $rc -eq 1
check "sold out prints \"status\":\"SOLD_OUT\"" grep -q '"status":"SOLD_OUT"' <<<"$out"

C confirm c1 "$res" --request-id pay-1 >/dev/null 2>"$tmp/nouser.err"; rc=$?
check "confirm without --user is a usage error (64)" test $rc -eq 64
check "saying --user is needed" grep -qF -- "confirm needs --user USER" "$tmp/nouser.err"
out=$(J confirm c1 "$res" --user user43 --request-id pay-0); rc=$?
check "confirm as another user exits 1" test $rc -eq 1
check "another user's hold is NOT_FOUND" test "$(echo "$out" | field '["status"]')" = NOT_FOUND
out=$(J reservation c1 "$res" --user user43)
check "another user's reservation reads NOT_FOUND" test "$(echo "$out" | field '["status"]')" = NOT_FOUND
C confirm c1 "$res" --user user42 --request-id pay-1 >/dev/null; check "confirm exits 0" test $? -eq 0
out=$(J campaign get c1)
check "campaign shows sold 1" test "$(echo "$out" | field '["campaign"]["sold"]')" = 1
check "campaign shows held 1" test "$(echo "$out" | field '["campaign"]["held"]')" = 1
check "campaign shows available 0" test "$(echo "$out" | field '["campaign"]["available"]')" = 0
out=$(J holdings c1 user42)
check "holdings show sold 1" test "$(echo "$out" | field '["holdings"]["sold"]')" = 1
C cancel c1 "$res" --user user42 --request-id c-1 >/dev/null; check "cancel of a sold reservation exits 1" test $? -eq 1
out=$(J reservation c1 "$res" --user user42)
check "the reservation names its user" test "$(echo "$out" | field '["reservation"]["user_id"]')" = user42
check "reservation state is SOLD" test "$(echo "$out" | field '["reservation"]["state"]')" = SOLD
C reserve c1 user45 --qty -1 --request-id o-5 >/dev/null 2>"$tmp/qty.err"; rc=$?
check "a negative quantity is a usage error (64)" test $rc -eq 64
check "naming the flag, the value and the range" grep -qF -- "--qty: bad number '-1' (give 1 or more units)" "$tmp/qty.err"
"$CLI" -a 127.0.0.1:1 reserve c1 user45 --qty 0 >/dev/null 2>&1; rc=$?
check "--qty 0 is found before connecting (64, not 69)" test $rc -eq 64
out=$(J campaign list)
check "campaign list has c1" test "$(echo "$out" | field '["campaigns"]["campaigns"][0]["campaign_id"]')" = c1
C campaign update c1 --stock 5 >/dev/null; check "campaign update exits 0" test $? -eq 0
C campaign end c1 >/dev/null; check "campaign end exits 0" test $? -eq 0
out=$(J reserve c1 user46 --request-id o-6)
check "reserve after end is ENDED" test "$(echo "$out" | field '["status"]')" = ENDED

# group buys: join, group get, subscribe
out=$(J campaign create g1 --kind group --stock 4 --group-size 2 --group-ttl 60s --hold 30s); rc=$?
check "group campaign create exits 0" test $rc -eq 0
check "group size shown" test "$(echo "$out" | field '["campaign"]["group_size"]')" = 2
out=$(J campaign list --limit 1)
next=$(echo "$out" | field '["campaigns"]["next_cursor"]')
check "campaign list --limit 1 gives a page of one and a cursor" test "$(echo "$out" | field '["campaigns"]["campaigns"].__len__()')" = 1 -a "$next" != 0
out=$(J campaign list --limit 1 --cursor "$next")
check "--cursor gives the next page" test "$(echo "$out" | field '["campaigns"]["campaigns"][0]["campaign_id"]')" != c1
mkfifo "$tmp/events"
J subscribe g1 --count 1 >"$tmp/events" &
SUB=$!
exec {EV}<"$tmp/events"
read -r ack <&$EV # the subscription is in place once acknowledged
check "subscribe is acknowledged" test "$(echo "$ack" | field '["status"]')" = OK
out=$(J join g1 ann --mode open --request-id gj-1); rc=$?
check "join --mode open exits 0" test $rc -eq 0
check "join opened a group" test "$(echo "$out" | field '["reservation"]["opened"]')" = True
gid=$(echo "$out" | field '["reservation"]["group_id"]')
seat1=$(echo "$out" | field '["reservation"]["reservation_id"]')
out=$(J join g1 ann --group "$gid" --request-id gj-2); rc=$?
check "joining twice exits 1" test $rc -eq 1
check "joining twice is ALREADY_MEMBER" test "$(echo "$out" | field '["status"]')" = ALREADY_MEMBER
out=$(J join g1 ben --request-id gj-3)
check "auto join lands in the open group" test "$(echo "$out" | field '["reservation"]["group_id"]')" = "$gid"
seat2=$(echo "$out" | field '["reservation"]["reservation_id"]')
out=$(J group get g1 "$gid")
check "group get lists 2 members" test "$(echo "$out" | field '["group"]["members"].__len__()')" = 2
check "the opener leads" test "$(echo "$out" | field '["group"]["members"][0]["user_id"]')" = ann
check "a group's state reads OPEN (enum values without their enum's prefix)" \
  test "$(echo "$out" | field '["group"]["state"]')" = OPEN
check "a seat's state reads HELD" test "$(echo "$out" | field '["group"]["members"][0]["state"]')" = HELD
check "ids are strings (64 bits: beyond what a JSON number holds)" \
  test "$(echo "$out" | field '["group"]["group_id"].__class__.__name__')" = str
C confirm g1 "$seat1" --user ann >/dev/null && C confirm g1 "$seat2" --user ben >/dev/null
check "paying both seats exits 0" test $? -eq 0
read -r ev <&$EV
wait "$SUB"
check "subscribe printed the completion" test "$(echo "$ev" | field '["event"]["type"]')" = GROUP_COMPLETED
check "the event names the group" test "$(echo "$ev" | field '["event"]["group_id"]')" = "$gid"
C group get g1 999 >/dev/null; check "unknown group exits 1" test $? -eq 1

C reserve c1 >/dev/null 2>&1; check "missing arguments exit 64" test $? -eq 64
C frobnicate >/dev/null 2>&1; check "unknown command exits 64" test $? -eq 64
"$CLI" --help | grep -q "usage:"; check "--help prints usage to stdout" test $? -eq 0
"$CLI" --version | grep -q "pintuan-cli"; check "--version exits 0" test $? -eq 0
"$CLI" -a 127.0.0.1:1 ping >/dev/null 2>&1; check "unreachable daemon exits 69" test $? -eq 69

# options with an optional value: "--waitlist on" as README and --help write it
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
err_has() { grep -qF -- "$1" "$tmp/err"; }
err_lines() { test "$(wc -l <"$tmp/err")" -eq "$1"; }
run J campaign create w1 --stock 3 --waitlist on
check "campaign create --waitlist on exits 0" test $rc -eq 0
check "--waitlist on turns the waitlist on" test "$(field '["campaign"]["waitlist"]' <"$tmp/out")" = True
run J campaign update w1 --stock 120 --waitlist off
check "campaign update ID --stock N --waitlist off exits 0" test $rc -eq 0
check "--waitlist off turns it off" test "$(field '["campaign"]["waitlist"]' <"$tmp/out")" = False
check "and --stock 120 is applied" test "$(field '["campaign"]["stock"]' <"$tmp/out")" = 120
run J campaign update w1 --waitlist
check "a bare --waitlist still means on" test "$(field '["campaign"]["waitlist"]' <"$tmp/out")" = True
run J campaign update --waitlist no w1
check "--waitlist no before the ID" test "$(field '["campaign"]["waitlist"]' <"$tmp/out")" = False
run J campaign update w1 --waitlist=yes
check "--waitlist=yes" test "$(field '["campaign"]["waitlist"]' <"$tmp/out")" = True
run J campaign update w1 --waitlist 0
check "--waitlist 0" test "$(field '["campaign"]["waitlist"]' <"$tmp/out")" = False
run C campaign update w1 --waitlist maybe
check "--waitlist maybe: the word is an extra argument, exit 64" test $rc -eq 64
check "which the message names" err_has "unexpected argument 'maybe'"

run C campaign update w1 --waitlist=maybe
check "--waitlist=maybe exits 64" test $rc -eq 64
check "naming the flag and the value" err_has "--waitlist: bad value 'maybe'"

# errors name the flag and the value, in user terms
run C campaign create h1 --stock 1 --hold abc
check "--hold abc exits 64" test $rc -eq 64
check "--hold abc names the flag, the value and the forms" err_has "--hold: bad duration 'abc' (give seconds, or 500ms, 30s, 5m, 2h)"
run C campaign create h1 --stock many
check "--stock many names the flag and the value" err_has "--stock: bad number 'many'"
run C campaign create h1 --stock 1 --start tomorrow
check "--start tomorrow names the flag and the value" err_has "--start: bad time 'tomorrow'"
run C campaign create h1 --stock 1 --kind flsh
check "--kind flsh names the flag and the value" err_has "--kind: unknown kind 'flsh' (give flash or group)"
run C join g1 ann --mode solo
check "--mode solo names the flag and the value" err_has "--mode: unknown mode 'solo' (give open, join or auto)"
run C campaign get c1 --request-id x
check "an option of another command exits 64" test $rc -eq 64
check "and names the option and the command" err_has "--request-id is not valid for 'campaign get'"
run C reserve c1 user1 --bogus
check "an unknown option is named" err_has "unknown option '--bogus' for 'reserve'"
run C reserve c1 user1 --qty
check "an option without its value is named" err_has "--qty needs a value"
run C campaign create g9 --kind group --stock 4 --group-ttl 1h
check "a group campaign without --group-size exits 64" test $rc -eq 64
check "and says what to give" err_has "campaign create --kind group needs --group-size N (2..64)"
run C campaign create g9 --kind group --stock 4 --group-size 3
check "a group campaign without --group-ttl exits 64" test $rc -eq 64
check "and says what to give" err_has "campaign create --kind group needs --group-ttl DURATION"
run C campaign get g9
check "nothing was created" test $rc -eq 1
run C campaign create g9 --kind group --stock 4 --group-size 65 --group-ttl 1h
check "--group-size 65 exits 64" test $rc -eq 64
check "naming the range" err_has "--group-size: bad group size '65' (give 2..64)"
run "$CLI" -a 127.0.0.1:1 campaign create x1
check "a usage error is found before connecting (64, not 69)" test $rc -eq 64
run "$CLI" -a "127.0.0.1:$APORT" ping
check "the admin port is named as an HTTP port" err_has "this is an HTTP port (pintuand's admin port?)"
run "$CLI" -t soon ping
check "a bad --timeout names the flag and the value" err_has "--timeout: bad value 'soon'"

# a usage error is one line and a pointer to --help, not the whole usage
run "$CLI"
check "no command exits 64" test $rc -eq 64
check "no command: nothing on stdout" test ! -s "$tmp/out"
check "no command: two lines on stderr" err_lines 2
check "no command: says so" err_has "pintuan-cli: no command given"
check "no command: points to --help" err_has "Try 'pintuan-cli --help'."
run "$CLI" --bogus ping
check "an unknown flag exits 64" test $rc -eq 64
check "an unknown flag: two lines on stderr" err_lines 2
check "an unknown flag is named" err_has "unknown option '--bogus'"
run "$CLI" frobnicate
check "an unknown command: two lines on stderr" err_lines 2
check "an unknown command is named" err_has "unknown command 'frobnicate'"
run "$CLI" --help
check "--help exits 0" test $rc -eq 0
check "--help: nothing on stderr" test ! -s "$tmp/err"
check "--help shows --waitlist [on|off] for create" grep -qF -- "--waitlist [on|off]" "$tmp/out"
# every command of the README tour is accepted as written (placeholders
# made numbers): against no daemon, a command that passed its checks exits 69
readme=$(dirname "$0")/../../README.md
tour=$(sed -n '/^## Five-minute tour/,/^## Flash-sale rules/p' "$readme" | sed -n 's/^\$cli \([^#&]*\).*/\1/p' | sed 's/[A-Z][A-Z_]*_ID/1/g')
check "the README tour has commands" test "$(echo "$tour" | wc -l)" -ge 15
while read -r line; do
  read -ra words <<<"$line"
  run "$CLI" -a 127.0.0.1:1 "${words[@]}"
  check "README tour: '$line' is accepted" test $rc -eq 69
done <<<"$tour"

printf '[server]\nlisten = 127.0.0.1:7733\n[engine]\nidempotency_window_ms = 60000\n' >"$tmp/good.conf"
"$PINTUAND" -t -c "$tmp/good.conf" | grep -q "configuration ok"; check "pintuand -t accepts a good config" test $? -eq 0
printf '[server]\nlisten = nowhere\n' >"$tmp/bad.conf"
"$PINTUAND" -t -c "$tmp/bad.conf" 2>/dev/null; check "pintuand -t rejects a bad config (EX_CONFIG)" test $? -eq 78
"$PINTUAND" -t -c "$(dirname "$0")/../../deploy/pintuan.conf" >/dev/null; check "the shipped example config is valid" test $? -eq 0
printf '[server]\nbogus = 1\n' >"$tmp/bad2.conf"
"$PINTUAND" -t -c "$tmp/bad2.conf" 2>/dev/null; check "pintuand -t rejects an unknown setting" test $? -eq 78

# keys: -k KEY_FILE says Hello with a key; SIGHUP re-reads the keys file
# (a revoked key's connections dropped), and a bad file changes nothing
"$PINTUAND" --make-key ops:admin --key-out "$tmp/ops.key" >"$tmp/keys"
"$PINTUAND" --make-key shop:storefront --key-out "$tmp/shop.key" >>"$tmp/keys"
chmod 644 "$tmp/shop.key"
printf '[security]\nkeys_file = %s\n' "$tmp/keys" >"$tmp/reload.conf"
exec {RF}< <(exec "$PINTUAND" -c "$tmp/reload.conf" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 3>&1 1>/dev/null 2>>"$tmp/reload.log")
RPID=$!
read -r RPORT <&$RF
R() { "$CLI" -a "127.0.0.1:$RPORT" "$@"; }
R -k "$tmp/ops.key" campaign create r1 --stock 5 >/dev/null; check "an admin key creates a campaign" test $? -eq 0
run R -k "$tmp/shop.key" campaign create r2 --stock 1
check "a storefront key may not (exit 1)" test $rc -eq 1
check "PERMISSION_DENIED, naming the role" grep -q "PERMISSION_DENIED.*role storefront" "$tmp/out"
check "the CLI warns of a key file others can read" err_has "readable by others (chmod 600 it)"
PINTUAN_KEY_FILE="$tmp/shop.key" R reserve r1 u1 >/dev/null 2>&1; check "PINTUAN_KEY_FILE gives the key" test $? -eq 0
run R reserve r1 u2
check "no key: exit 1" test $rc -eq 1
check "UNAUTHENTICATED comes with a hint about -k" err_has "the daemon wants a key: pintuan-cli -k KEY_FILE"
printf 'nobody ptk_wrong\n' >"$tmp/wrong.key"
run R -k "$tmp/wrong.key" reserve r1 u2
check "a wrong key exits 1, UNAUTHENTICATED" test $rc -eq 1
check "saying which key" err_has "the daemon did not take the key nobody"
grep -v '^shop ' "$tmp/keys" >"$tmp/keys.new" && mv "$tmp/keys.new" "$tmp/keys"
kill -HUP "$RPID"
# the signal is handled by the loop at its own pace: wait for its log line
timeout 60 grep -m1 -q "keys reloaded" <(tail -n +1 -f --pid="$RPID" "$tmp/reload.log")
check "SIGHUP reloads the keys" test $? -eq 0
R -k "$tmp/shop.key" reserve r1 u3 >/dev/null 2>&1; check "after SIGHUP the revoked key is refused" test $? -eq 1
R -k "$tmp/ops.key" reserve r1 u4 >/dev/null; check "and the others still work" test $? -eq 0
printf 'ops admin nonsense\n' >"$tmp/keys"
kill -HUP "$RPID"
timeout 60 grep -m1 -q "keeping the keys as they were" <(tail -n +1 -f --pid="$RPID" "$tmp/reload.log")
check "a bad keys file on SIGHUP is reported" test $? -eq 0
R -k "$tmp/ops.key" reserve r1 u5 >/dev/null; check "and the running keys stay" test $? -eq 0
printf '[security]\nkeys_file = %s\n[bogus]\nx = 1\n' "$tmp/keys" >"$tmp/reload.conf"
kill -HUP "$RPID"
timeout 60 grep -m1 -q "keeping the running one" <(tail -n +1 -f --pid="$RPID" "$tmp/reload.log")
check "a bad config file on SIGHUP is reported" test $? -eq 0
kill -TERM "$RPID"; wait "$RPID"

# ---- stat: the admin port's stats stream, a line a second ----
C reserve c-stat-none u1 >/dev/null 2>&1 # some traffic (NOT_FOUND) for the stream to count
out=$("$CLI" stat --admin "127.0.0.1:$APORT" --count 2); rc=$?
check "stat --count 2 exits 0" test $rc -eq 0
check "stat prints a header and 2 lines" test "$(printf '%s\n' "$out" | wc -l)" -eq 3
printf '%s\n' "$out" | head -1 | grep -q "req/s .*ok/s .*sold-out/s .*p99 ms .*conns .*holds .*lag ms .*role"
check "the header names the columns" test $? -eq 0
printf '%s\n' "$out" | tail -1 | grep -q "memory-only$"; check "a line ends with the role" test $? -eq 0
out=$("$CLI" -j stat --admin "127.0.0.1:$APORT" --count 1)
check "stat -j prints the stream's JSON" test "$(printf '%s' "$out" | field '["role"]')" = memory-only
out=$("$CLI" -a "127.0.0.1:$PORT" -j stat --count 1); rc=$?
check "stat without --admin asks the daemon where its admin port is" test $rc -eq 0
check "and reads that port's stream" test "$(printf '%s' "$out" | field '["role"]')" = memory-only
"$CLI" stat --admin "127.0.0.1:1" --count 1 >/dev/null 2>"$tmp/stat.err"; rc=$?
check "stat with no admin port there exits 69" test $rc -eq 69
grep -q "cannot reach the admin port at 127.0.0.1:1" "$tmp/stat.err"; check "and says where it looked" test $? -eq 0
"$CLI" stat --admin "nonsense:" >/dev/null 2>&1; rc=$?
check "stat with a bad --admin exits 64" test $rc -eq 64

kill -TERM "$DPID"; wait "$DPID"; rc=$?
check "daemon exits 0 on SIGTERM" test $rc -eq 0
echo "1..$n"
[ $failed -eq 0 ]
