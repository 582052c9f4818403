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
