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
scratch
redis_start "$tmp/redis" --appendonly no
PIDS+=("$RPID")
primary() { shard_primary "$1" "$tmp/d.log" --snapshot-after 0; } # primary BIN
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
