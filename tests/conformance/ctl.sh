#!/usr/bin/env bash
# The conformance runners' hands (every language's runner calls this): it
# starts, kills and stops the real processes a scenario names, keeping
# their state in DIR between calls. Only 127.0.0.1; every wait is bounded.
#
#   ctl.sh up DIR single|shard [tls]  the daemons (shard: a redis-server, a
#                               primary "a" and a standby "b"), with keys;
#                               prints their addresses "H:P[,H:P]" and writes
#                               DIR/keys/{admin,storefront,reader}.key; with
#                               tls they speak TLS with a certificate of a CA
#                               made here, DIR/tls/ca.pem (a runner that finds
#                               it speaks TLS, verifying against it)
#   ctl.sh kill-primary DIR     kill -9 of the primary; returns once the
#                               other daemon serves as the primary
#   ctl.sh restart-primary DIR  the killed daemon started again (a standby)
#   ctl.sh forge-lease DIR      a stranger takes the shard's lease (written
#                               straight into Redis, as anyone who can write
#                               its keys could): the daemons answer NOT_LEADER
#                               naming the stranger's address, where a trap
#                               listens and counts who connects
#   ctl.sh no-stranger DIR      fails if anyone connected to the trap
#   ctl.sh down DIR             stops everything (kill -9)
#
# $PINTUAND is the daemon (default: pintuand on PATH).
set -uo pipefail
cmd=${1:?usage: ctl.sh up|kill-primary|restart-primary|down DIR [single|shard]}
dir=${2:?DIR}
bin=${PINTUAND:-pintuand}
mkdir -p "$dir"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# /ready of the admin port PORT: 200 when that daemon serves as the primary.
ready() {
  python3 - "$1" <<'PY'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:%s/ready" % sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

# start NODE: one daemon, detached (it outlives this script), its ports in
# DIR/NODE.ports once it listens.
start() {
  local node=$1 args=(--listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 --keys "$dir/keys/keys"
                      --log-level info)
  [ -f "$dir/redis.port" ] && args+=(--redis "127.0.0.1:$(cat "$dir/redis.port")" --shard c --node-id "$node"
                                     --lease-ms 1000)
  [ -f "$dir/$node.port" ] && args[1]=127.0.0.1:$(cat "$dir/$node.port") # the same address again
  [ -f "$dir/tls/server.pem" ] && args+=(--tls-cert "$dir/tls/server.pem" --tls-key "$dir/tls/server.key")
  rm -f "$dir/$node.ports"
  setsid "$bin" "${args[@]}" 3>"$dir/$node.ports" </dev/null >/dev/null 2>>"$dir/$node.log" &
  echo $! >"$dir/$node.pid"
  for _ in $(seq 1 600); do
    [ "$({ wc -l <"$dir/$node.ports"; } 2>/dev/null)" = 2 ] && break
    kill -0 "$(cat "$dir/$node.pid")" 2>/dev/null || { echo "ctl: $node exited:" >&2; tail -5 "$dir/$node.log" >&2; return 1; }
    sleep 0.1
  done
  sed -n 1p "$dir/$node.ports" >"$dir/$node.port"
  sed -n 2p "$dir/$node.ports" >"$dir/$node.admin"
}

# await_primary NODE: until NODE's /ready says it serves (60 s at most).
await_primary() {
  for _ in $(seq 1 600); do ready "$(cat "$dir/$1.admin")" && return 0; sleep 0.1; done
  echo "ctl: $1 never became the primary" >&2
  return 1
}

case $cmd in
up)
  mode=${3:?single|shard}
  if [ "${4:-}" = tls ]; then # a CA, and the daemons' certificate for 127.0.0.1
    mkdir -p "$dir/tls"
    (cd "$dir/tls" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem.new \
        -days 2 -subj /CN=conformance-ca &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
        -subj /CN=pintuand -addext subjectAltName=IP:127.0.0.1,DNS:localhost &&
      openssl x509 -req -in server.csr -CA ca.pem.new -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
        -copy_extensions copy) >/dev/null 2>&1 || { echo "ctl: openssl failed" >&2; exit 1; }
    mv "$dir/tls/ca.pem.new" "$dir/tls/ca.pem" # last: a runner speaks TLS once it exists
  fi
  mkdir -p "$dir/keys"
  : >"$dir/keys/keys"
  for role in admin storefront reader; do
    "$bin" --make-key "$role-key:$role" --key-out "$dir/keys/$role.key" >>"$dir/keys/keys" || exit 1
  done
  if [ "$mode" = shard ]; then
    port=$(free_port)
    setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
      --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/redis.pid"
    for _ in $(seq 1 400); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
    echo "$port" >"$dir/redis.port"
    "$bin" --redis "127.0.0.1:$port" --shard c --init-shard --log-level warn >/dev/null || exit 1
    start a && await_primary a && start b || exit 1
    echo "a" >"$dir/primary"
    echo "127.0.0.1:$(cat "$dir/a.port"),127.0.0.1:$(cat "$dir/b.port")"
  else
    start a || exit 1
    echo "a" >"$dir/primary"
    echo "127.0.0.1:$(cat "$dir/a.port")"
  fi
  ;;
kill-primary)
  p=$(cat "$dir/primary")
  other=$([ "$p" = a ] && echo b || echo a)
  kill -9 "$(cat "$dir/$p.pid")" 2>/dev/null
  [ -f "$dir/$other.pid" ] || { echo "ctl: no other daemon to take over" >&2; exit 1; }
  await_primary "$other" || exit 1
  echo "$other" >"$dir/primary"
  echo "$p" >"$dir/killed"
  ;;
restart-primary)
  start "$(cat "$dir/killed")" || exit 1
  ;;
forge-lease)
  [ -f "$dir/redis.port" ] || { echo "ctl: forge-lease needs a shard" >&2; exit 1; }
  trap_port=$(free_port)
  : >"$dir/trap.count"
  setsid python3 - "$trap_port" "$dir/trap.count" </dev/null >/dev/null 2>&1 <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept()
    open(sys.argv[2], "a").write("connected\n"); c.close()
PY
  echo $! >"$dir/trap.pid"
  for _ in $(seq 1 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $trap_port), 1)" 2>/dev/null && break; sleep 0.05; done
  : >"$dir/trap.count" # the probe above is not a client
  rp=$(cat "$dir/redis.port") # the next epoch, as a daemon taking the lease would
  e=$(redis-cli -p "$rp" INCR 'pintuan:{c}:epoch') || exit 1
  redis-cli -p "$rp" SET 'pintuan:{c}:lease' "$e stranger 127.0.0.1:$trap_port" PX 60000 >/dev/null || exit 1
  p=$(cat "$dir/primary") # until it has stepped down (its next renewal fails: a third of the lease)
  for _ in $(seq 1 300); do ready "$(cat "$dir/$p.admin")" || exit 0; sleep 0.1; done
  echo "ctl: $p never stepped down" >&2
  exit 1
  ;;
no-stranger)
  n=$(grep -c . "$dir/trap.count" 2>/dev/null)
  [ "${n:-0}" = 0 ] || { echo "ctl: $n connections to the stranger" >&2; exit 1; }
  ;;
down)
  for f in "$dir"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  ;;
*)
  echo "ctl: unknown command $cmd" >&2
  exit 64
  ;;
esac
