#!/usr/bin/env bash
# Installs what is missing, builds, starts a private redis-server and
# pintuand on 127.0.0.1:7733 mirroring to it, with a demo flash sale
# ("demo-sku": 100 units, 2 per user, 5-minute payment window, waitlist) and
# a demo group buy ("demo-group": groups of 3). It shows a few requests,
# then kills the daemon with SIGKILL and starts it again: the sale is still
# there, rebuilt from Redis, and a retried order gets its original answer.
# Then it stays in the foreground until Ctrl-C (--detach leaves both running
# and returns); Ctrl-C stops both, removes the demo's files and exits 0.
# PINTUAN_LISTEN changes the address; PINTUAN_MEMORY_ONLY=1 runs without
# Redis (a restart then loses everything). PINTUAN_BUILD names a build
# directory that is already built (the tests use their own); by default the
# demo installs what is missing and builds build/.
set -euo pipefail
cd "$(dirname "$0")/.."
LISTEN=${PINTUAN_LISTEN:-127.0.0.1:7733}
MEMORY_ONLY=${PINTUAN_MEMORY_ONLY:-0}
DETACH=0
[ "${1:-}" = "--detach" ] && DETACH=1

B=${PINTUAN_BUILD:-}
if [ -z "$B" ]; then
  B=build
  bash deploy/install-deps.sh
  [ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
  meson compile -C build >/dev/null
fi
CLI="$B/clients/pintuan-cli -a $LISTEN"

if $CLI ping >/dev/null 2>&1; then
  echo "a daemon already answers on $LISTEN: stop it first (or set PINTUAN_LISTEN)" >&2
  exit 1
fi
DEMO=$(mktemp -d /tmp/pintuan-demo.XXXXXX)
LOG=$DEMO/pintuand.log
RPID="" DPID=""
# stop_all: stops what is still running (a daemon that already exited is
# fine) and removes the demo's files; safe to call twice
stop_all() {
  if [ -n "$DPID" ]; then kill -TERM "$DPID" 2>/dev/null || true; fi
  if [ -n "$RPID" ]; then kill -TERM "$RPID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  DPID="" RPID=""
  rm -rf "$DEMO" # the demo's Redis files: each run makes its own
}
trap stop_all EXIT # a failed step leaves nothing running or behind

# await TEXT: until the daemon's log has TEXT (60 s at most)
await() {
  for _ in $(seq 1 600); do grep -q "$1" "$LOG" 2>/dev/null && return 0; sleep 0.1; done
  echo "pintuand never logged \"$1\"; its log: $LOG" >&2
  exit 1
}

MIRROR=()
if [ "$MEMORY_ONLY" != 1 ]; then
  RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server deploy/redis.conf --port "$RPORT" --bind 127.0.0.1 --dir "$DEMO" \
    --logfile "$DEMO/redis.log" --daemonize no &
  RPID=$!
  until redis-cli -p "$RPORT" ping >/dev/null 2>&1; do # redis-server has no readiness event
    kill -0 "$RPID" 2>/dev/null || { echo "redis-server did not start: $DEMO/redis.log" >&2; exit 1; }
    sleep 0.05
  done
  MIRROR=(--redis "127.0.0.1:$RPORT" --shard demo --node-id demo)
  "$B/daemon/pintuand" "${MIRROR[@]}" --init-shard # once: a daemon never creates a shard by itself
  echo "redis-server (pid $RPID) on 127.0.0.1:$RPORT keeps the demo's state in $DEMO"
fi

start_daemon() {
  # (tee must not hold the readiness pipe: without an admin port, its
  # second line never comes and only the pipe's end says so)
  exec {READY}< <(exec "$B/daemon/pintuand" --listen "$LISTEN" --ready-fd 3 "${MIRROR[@]}" \
    3>&1 1>&2 2> >(exec tee -a "$LOG" >&2 3>&-))
  DPID=$!
  if ! read -r _ <&$READY; then
    echo "pintuand did not start (is $LISTEN free?)" >&2
    exit 1
  fi
  APORT=
  read -r APORT <&$READY || true # its admin port, when it could have 127.0.0.1:7734
  if [ "$MEMORY_ONLY" != 1 ]; then await "mirror role=primary"; fi
  echo "pintuand (pid $DPID) is serving on $LISTEN"
}
start_daemon
run() { echo "\$ pintuan-cli $*"; $CLI "$@" || true; echo; }
run campaign create demo-sku --kind flash --stock 100 --limit 2 --hold 300 --waitlist --request-id demo-create
run reserve demo-sku alice --qty 2 --request-id demo-order-1
run reserve demo-sku alice --qty 2 --request-id demo-order-1
run campaign create demo-group --kind group --stock 300 --group-size 3 --group-ttl 24h --hold 15m --request-id demo-group-create
run join demo-group carol --mode open --request-id demo-join-1
if [ -n "$APORT" ]; then
  echo "--- the admin port (127.0.0.1:$APORT): /metrics, /ready, /stats/stream"
  run stat --admin "127.0.0.1:$APORT" --count 2
fi

if [ "$MEMORY_ONLY" != 1 ]; then
  echo "--- kill -9 of pintuand, and a new one: it rebuilds the sale from Redis"
  kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
  : >"$LOG"
  start_daemon
  run campaign get demo-sku
  run reserve demo-sku alice --qty 2 --request-id demo-order-1
fi

cat <<EOT
Try it yourself (binaries in build/):
  build/clients/pintuan-cli -a $LISTEN reserve demo-sku bob --qty 1 --request-id my-order-1
  build/clients/pintuan-cli -a $LISTEN --json holdings demo-sku bob
  build/clients/pintuan-cli -a $LISTEN join demo-group dave          # AUTO: joins carol's group
  build/clients/pintuan-bench -a $LISTEN -s stampede -c 50 -d 5      # a load test with its verdict
  build/clients/pintuan-cli stat                                      # the sale live, a line a second
  curl -s 127.0.0.1:7734/metrics | grep ^pintuan_requests_total        # Prometheus
  build/clients/pintuan-cli --help
EOT
if [ $DETACH = 1 ]; then
  trap - EXIT
  echo "left running: stop them with  kill $DPID ${RPID}  (files in $DEMO)"
  exit 0
fi
echo "Ctrl-C stops the daemon${RPID:+ and its Redis}."
trap 'echo; echo "stopping"; stop_all; exit 0' INT TERM
rc=0
wait "$DPID" || rc=$?
# here only if the daemon exited by itself: say so, keep its log
cp "$LOG" /tmp/pintuan-demo-last.log 2>/dev/null || true
echo "pintuand exited by itself (status $rc); its log: /tmp/pintuan-demo-last.log" >&2
exit 1
