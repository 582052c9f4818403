# Sourced by the test and benchmark scripts: a free loopback port, and a
# private redis-server on one. Only 127.0.0.1 is used.

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
