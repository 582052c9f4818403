#!/usr/bin/env bash
# Recovery of the same Redis state by two daemon binaries, alternating
# A B A B: one pintuand fills HOLDS live holds (pintuan-bench stampede,
# CONNS x PIPE in flight), is killed -9, and then each binary in turn
# becomes primary on that Redis (and is killed -9 again), printing its
# "mirror recovered" line and its peak RSS.
#
# Usage: tests/bench/recovery_ab.sh PINTUAND_A PINTUAND_B [HOLDS] [CONNS] [PIPE] [ROUNDS]
# (defaults 1000000, 16, 1000, 3). Only 127.0.0.1 is used; every process
# is started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=$1 B=$2 HOLDS=${3:-1000000} CONNS=${4:-16} PIPE=${5:-1000} ROUNDS=${6:-3}
source tests/lib/servers.sh
tmp=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
redis_start "$tmp/redis" --appendonly no
PIDS+=("$RPID")
primary() { # primary BIN: starts it on the shard, returns once it serves (DPID, DPORT)
  exec {PF}< <(exec "$1" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 --redis "127.0.0.1:$RPORT" \
    --shard r --node-id r --snapshot-after 0 3>&1 1>/dev/null 2>"$tmp/d.log")
  DPID=$!; PIDS+=("$DPID")
  read -r DPORT <&$PF
  await_log "$tmp/d.log" "mirror role=primary"
}
kill9() { kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true; }
primary "$A"
build/clients/pintuan-bench -a "127.0.0.1:$DPORT" -s stampede -c "$CONNS" -p "$PIPE" \
  -d $((HOLDS / 100000 + 5)) -w 0 --stock "$HOLDS" --limit 0 --users 100000000 --no-progress 2>&1 |
  grep -m1 'req/s' || true
kill9
for r in $(seq 1 "$ROUNDS"); do
  for v in A B; do
    if [ $v = A ]; then primary "$A"; else primary "$B"; fi
    echo "$v:$(grep -m1 'mirror recovered' "$tmp/d.log" | sed 's/.*mirror recovered//')  peak RSS $(awk '/VmHWM/{print $2}' "/proc/$DPID/status") kB"
    kill9
  done
done
