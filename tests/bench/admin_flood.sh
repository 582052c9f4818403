#!/usr/bin/env bash
# The storefront port's throughput with and without 1,000 half-open
# connections on the admin port (each sent "GET /metr" and stopped),
# alternating plain / flooded runs on one daemon build.
#
# Usage: tests/bench/admin_flood.sh BUILD [ROUNDS] [SECONDS]
# Only 127.0.0.1 is targeted; each daemon is started and stopped here.
set -euo pipefail
B=$1 ROUNDS=${2:-3} SECS=${3:-3}
for r in $(seq 1 "$ROUNDS"); do
  for mode in plain flooded; do
    exec {PF}< <(exec "$B/daemon/pintuand" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
      --ready-fd 3 --log-level error 3>&1 1>/dev/null 2>/dev/null)
    pid=$!
    read -r port <&$PF
    read -r aport <&$PF
    flood=
    if [ $mode = flooded ]; then
      exec {FF}< <(exec python3 -c '
import socket, sys, time
conns = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /metr")
    conns.append(s)
print("flooding", flush=True)
time.sleep(int(sys.argv[2]) + 5)
' "$aport" "$SECS")
      flood=$!
      read -r _ <&$FF
    fi
    "$B/clients/pintuan-bench" -a "127.0.0.1:$port" -s stampede -c 50 -p 16 -d "$SECS" -w 1 \
      --stock 1000000000 --limit 0 --users 1000000 --json --no-progress |
      python3 -c "import json,sys; d=json.load(sys.stdin); print('$mode', int(d['throughput_rps']), 'req/s, p99', d['latency_us']['99'], 'us')"
    [ -n "$flood" ] && kill "$flood" 2>/dev/null || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
