#!/usr/bin/env bash
# A C program against an installed libpintuan, as README says: `meson
# install` of this build into a temporary root, the README's app.c (taken
# from the README itself) compiled with README's line, `cc app.c
# $(pkg-config --cflags --libs pintuan)`, and run against a real daemon.
# TAP output.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${PT_BUILD_ROOT:?}
source "$src/tests/lib/servers.sh"
tmp=$(mktemp -d)
source "$src/tests/lib/tap.sh"
DPID=
trap '[ -n "$DPID" ] && kill "$DPID" 2>/dev/null; rm -rf "$tmp"' EXIT

meson install -C "$BUILD" --no-rebuild --destdir "$tmp/root" --quiet >"$tmp/install.log" 2>&1
check "meson install into a temporary root" test $? -eq 0
pc=$(find "$tmp/root" -name pintuan.pc | head -1)
check "it ships pintuan.pc" test -n "$pc"
check "it ships pintuan.h and the protocol's header it includes" \
  test -n "$(find "$tmp/root" -path '*include/pintuan/pintuan.h')" -a -n "$(find "$tmp/root" -path '*include/pintuan/pintuan.pb-c.h')"
check "pintuan.pc requires libprotobuf-c" grep -q '^Requires: libprotobuf-c' "$pc"
unit=$(find "$tmp/root" -path '*lib/systemd/system/pintuand@.service' | head -1)
check "it ships the systemd unit" test -n "$unit"
check "whose ExecStart is this install's pintuand" grep -q "^ExecStart=$(meson introspect "$BUILD" --buildoptions |
  python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"]+"/"+o["bindir"])')/pintuand " "$unit"
check "the sysusers entry" test -n "$(find "$tmp/root" -path '*lib/sysusers.d/pintuan.conf')"
check "the example configs" test -n "$(find "$tmp/root" -path '*doc/pintuan/examples/pintuan.conf')"
check "deploy/redis-acl.sh" test -x "$(find "$tmp/root" -path '*share/pintuan/redis-acl.sh' | head -1)"
for page in man8/pintuand.8 man1/pintuan-cli.1 man1/pintuan-bench.1 man1/pintuan-replay.1; do
  f=$(find "$tmp/root" -path "*man/$page" | head -1)
  check "a man page: $page" test -n "$f"
  [ -n "$f" ] && check "  with its NAME and its options" \
    sh -c "grep -q '^\.SH NAME' '$f' && grep -q 'help' '$f'"
done
# README's app.c: the C block of its libpintuan section, as written there
python3 - "$src/README.md" "$tmp/app.c" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
part = text[text.index("## The C client: libpintuan"):]
open(sys.argv[2], "w").write(re.search(r"```c\n(.*?)```", part, re.S).group(1))
PY
line=$(grep -o 'cc app.c $(pkg-config --cflags --libs pintuan) -o app' "$src/README.md" | head -1)
check "README has the compile line" test -n "$line"
(cd "$tmp" && PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR="$tmp/root" eval "$line") >"$tmp/cc.log" 2>&1
rc=$?; [ $rc -eq 0 ] || sed 's/^/# /' "$tmp/cc.log"
check "README's app.c builds with README's line against the installed tree" test $rc -eq 0
exec {PF}< <(exec "$BUILD/daemon/pintuand" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 --log-level warn \
  3>&1 1>/dev/null 2>"$tmp/daemon.log")
DPID=$!
read -r PORT <&$PF
libdir=$(dirname "$(dirname "$pc")") # the .pc lives in LIBDIR/pkgconfig
# a sanitized build's libpintuan needs the sanitizers' runtimes loaded first:
# README's line builds a plain program, so they are preloaded for it
preload=
case ${PT_SANITIZE:-none} in *address*) preload="$("${PT_CC:-cc}" -print-file-name=libasan.so)" ;; esac
case ${PT_SANITIZE:-none} in *undefined*) preload="$preload $("${PT_CC:-cc}" -print-file-name=libubsan.so)" ;; esac
out=$(LD_PRELOAD=$preload LD_LIBRARY_PATH=$libdir "$tmp/app" "127.0.0.1:$PORT" 2>&1); rc=$?
[ $rc -eq 0 ] || printf '%s\n' "$out" | head -5 | sed 's/^/# /'
check "and runs against a daemon (no such campaign: NOT_FOUND)" test $rc -eq 0 -a "$out" = NOT_FOUND
tap_end
