#!/usr/bin/env bash
# Installs what is missing, builds, starts pintuand on 127.0.0.1:7733 with a
# demo flash sale ("demo-sku": 100 units, 2 per user, 5-minute payment
# window, waitlist) and a demo group buy ("demo-group": groups of 3), shows a
# few requests, then stays in the foreground until Ctrl-C. With --detach it
# leaves the daemon running and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
LISTEN=${PINTUAN_LISTEN:-127.0.0.1:7733}
DETACH=0
[ "${1:-}" = "--detach" ] && DETACH=1

bash deploy/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
meson compile -C build >/dev/null
CLI="build/clients/pintuan-cli -a $LISTEN"

if $CLI ping >/dev/null 2>&1; then
  echo "a daemon already answers on $LISTEN: stop it first (or set PINTUAN_LISTEN)" >&2
  exit 1
fi
exec {READY}< <(exec build/daemon/pintuand --listen "$LISTEN" --ready-fd 3 3>&1 1>&2)
DPID=$!
if ! read -r PORT <&$READY; then
  echo "pintuand did not start (is $LISTEN free?)" >&2
  exit 1
fi
echo "pintuand (pid $DPID) is listening on $LISTEN"

run() { echo "\$ pintuan-cli $*"; $CLI "$@" || true; echo; }
run campaign create demo-sku --kind flash --stock 100 --limit 2 --hold 300 --waitlist --request-id demo-create
run reserve demo-sku alice --qty 2 --request-id demo-order-1
run reserve demo-sku alice --qty 2 --request-id demo-order-1
run campaign get demo-sku
run campaign create demo-group --kind group --stock 300 --group-size 3 --group-ttl 24h --hold 15m --request-id demo-group-create
run join demo-group carol --mode open --request-id demo-join-1

cat <<EOT
Try it yourself (binaries in build/):
  build/clients/pintuan-cli -a $LISTEN reserve demo-sku bob --qty 1 --request-id my-order-1
  build/clients/pintuan-cli -a $LISTEN --json holdings demo-sku bob
  build/clients/pintuan-cli -a $LISTEN join demo-group dave          # AUTO: joins carol's group
  build/clients/pintuan-bench -a $LISTEN -s stampede -c 50 -d 5      # a load test with its verdict
  build/clients/pintuan-cli --help
EOT
if [ $DETACH = 1 ]; then
  echo "left running: stop it with  kill $DPID"
  exit 0
fi
echo "Ctrl-C stops the daemon."
trap 'kill -TERM $DPID 2>/dev/null' INT TERM
wait $DPID || true
