# Sourced by the test and benchmark scripts: a free loopback port, a
# private redis-server on one, and waiting for a daemon's log line. Only
# 127.0.0.1 is used.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# redis_start DIR [redis-server flags...]: a private Redis keeping its files
# (and its log) in DIR, no RDB saves; the flags add to or override those.
# Sets RPORT and RPID (call it in the script's own shell, not in $(...)),
# and returns once it answers PING: redis-server has no readiness event, so
# this polls, for at most 20 s; 1 if it never answered.
redis_start() {
  local dir=$1 i
  shift
  RPORT=$(free_port)
  mkdir -p "$dir"
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$dir" --save '' --daemonize no \
    --logfile "$dir/log" "$@" &
  RPID=$!
  for i in $(seq 1 400); do
    [ "$(redis-cli -p "$RPORT" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  return 1
}

# await_log FILE TEXT: until FILE (a daemon's log) holds TEXT, e.g. "mirror
# role=primary" (60 s at most; the log is the only event there is); 1 if not.
await_log() {
  local i
  for i in $(seq 1 600); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  echo "no \"$2\" in $1" >&2
  return 1
}

# init_shard BIN SHARD: creates the shard in the private Redis ($RPORT),
# the explicit step before a daemon may serve it (pintuand --init-shard).
init_shard() { "$1" --redis "127.0.0.1:$RPORT" --shard "$2" --init-shard --log-level warn >/dev/null; }

# scratch: a temporary directory in $tmp, and PIDS, the processes to kill
# (-9) when the script exits, when $tmp is removed too.
scratch() {
  tmp=$(mktemp -d)
  PIDS=()
  trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
}

# shard_primary BIN LOG [pintuand flags...]: the daemon BIN on the private
# Redis ($RPORT) as node r of shard r, its log in LOG; returns once it is
# the primary. Sets DPID and DPORT and adds DPID to PIDS.
shard_primary() {
  local bin=$1 log=$2
  shift 2
  init_shard "$bin" r || return 1
  exec {PF}< <(exec "$bin" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 \
    --redis "127.0.0.1:$RPORT" --shard r --node-id r "$@" 3>&1 1>/dev/null 2>"$log")
  DPID=$!
  PIDS+=("$DPID")
  read -r DPORT <&$PF
  await_log "$log" "mirror role=primary"
}

# kill9: kill -9 of the daemon shard_primary started last.
kill9() { kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true; }
