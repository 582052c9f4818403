#!/usr/bin/env bash
# The systemd unit in deploy/systemd/ as systemd reads it: `systemd-analyze
# verify` on the template instantiated for each example config, with
# ExecStart pointed at the built pintuand (verify checks that it exists);
# a unit with a misspelt key to show that verify reports one here; the
# hardening's exposure (`systemd-analyze security --offline`); and the
# example configs themselves (`pintuand -t`). No daemon is started.
# Exit status: 0 pass, 1 fail, 77 (meson's skip) without systemd-analyze.
set -uo pipefail
PINTUAND=${PINTUAND:?}
src=$(cd "$(dirname "$0")/../.." && pwd)
unit=$src/deploy/systemd/pintuand@.service
# exposure x10 (systemd's scale: 1.5 is printed "1.5 OK"): past it, a
# hardening option was lost
MAX_EXPOSURE=20

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: no systemd-analyze (Debian package systemd)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "NOT OK - $1"; failed=1; }

# verify UNIT: a unit of $tmp (an instance of a template there); passes only
# with exit 0 and nothing printed, since verify reports an unknown key or a
# bad value as a warning, not an error
verify() {
  (cd "$tmp" && systemd-analyze verify --man=no --generators=no "$tmp/$1") >"$tmp/out" 2>&1
  local rc=$?
  cat "$tmp/out"
  [ $rc -eq 0 ] && [ ! -s "$tmp/out" ]
}

# The unit as installed, but running this build's pintuand.
sed "s|^ExecStart=/usr/local/bin/pintuand |ExecStart=$PINTUAND |" "$unit" >"$tmp/pintuand@.service"
if ! grep -q "^ExecStart=$PINTUAND -c /etc/pintuan/%i.conf\$" "$tmp/pintuand@.service"; then
  not_ok "ExecStart is /usr/local/bin/pintuand -c /etc/pintuan/%i.conf"
fi
for conf in "$src"/deploy/shard1-*.conf; do
  name=$(basename "$conf" .conf)
  if verify "pintuand@$name.service"; then
    ok "systemd-analyze verify pintuand@$name.service"
  else
    not_ok "systemd-analyze verify pintuand@$name.service"
  fi
  if out=$("$PINTUAND" -c "$conf" -t 2>&1) && [ "$out" = "configuration ok" ]; then
    ok "pintuand -c deploy/$name.conf -t"
  else
    echo "$out"
    not_ok "pintuand -c deploy/$name.conf -t"
  fi
done

# The control: the same unit with a misspelt key must not pass.
sed 's/^WatchdogSec=/WatchDogSec=/' "$tmp/pintuand@.service" >"$tmp/bad@.service"
if verify bad@x.service >/dev/null; then
  not_ok "verify reports a misspelt key (WatchDogSec=)"
else
  ok "verify reports a misspelt key (WatchDogSec=)"
fi

(cd "$tmp" && systemd-analyze security --offline=yes --threshold=$MAX_EXPOSURE \
  "$tmp/pintuand@shard1-a.service") >"$tmp/sec" 2>&1
rc=$?
level=$(grep -o "Overall exposure level for .*" "$tmp/sec")
if [ $rc -eq 0 ] && [ -n "$level" ]; then
  ok "hardening: $level (at most $MAX_EXPOSURE/10)"
else
  cat "$tmp/sec"
  not_ok "hardening: exposure above $MAX_EXPOSURE/10 (${level:-no verdict})"
fi
exit $failed
