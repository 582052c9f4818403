#!/usr/bin/env bash
# A snapshot of HOLDS live holds written and restored under two mirror
# configurations, alternating A B A B: one pintuand fills the holds
# (pintuan-bench stampede, journal only) and is killed -9; then per round
# and variant, a daemon with that variant's config file recovers from the
# journal and writes one snapshot (started by one reservation), is killed
# -9, and a second daemon with the same config restores from that snapshot.
# Prints the snapshot's time to commit, its state and stored bytes, Redis'
# memory, and the restore's "mirror recovered" line.
#
# Usage: tests/bench/snapshot_ab.sh BUILD CONF_A CONF_B [HOLDS] [ROUNDS]
#   e.g. CONF_A with "[mirror] snapshot_compression = none", CONF_B "= zstd"
# (defaults 1000000 holds, 2 rounds). Only 127.0.0.1 is used; every process
# is started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$1 CONF_A=$2 CONF_B=$3 HOLDS=${4:-1000000} ROUNDS=${5:-2}
source tests/lib/servers.sh
scratch
redis_start "$tmp/redis" --appendonly no
PIDS+=("$RPID")
primary() { shard_primary "$BUILD/daemon/pintuand" "$@"; } # primary LOG [pintuand flags]
primary "$tmp/fill.log" --snapshot-after 0
build/clients/pintuan-bench -a "127.0.0.1:$DPORT" -s stampede -c 16 -p 1000 \
  -d $((HOLDS / 100000 + 5)) -w 0 --stock "$HOLDS" --limit 0 --users 100000000 --no-progress 2>&1 |
  grep -m1 'req/s' || true
kill9
n=0
for r in $(seq 1 "$ROUNDS"); do
  for v in A B; do
    conf=$CONF_A; [ $v = A ] || conf=$CONF_B
    n=$((n + 1))
    primary "$tmp/w$n.log" -c "$conf" --snapshot-after 1
    # one record (a reservation would be SOLD_OUT, which is none): the snapshot is due at its turn's end
    "$BUILD/clients/pintuan-cli" -a "127.0.0.1:$DPORT" campaign create "snap-$n" --stock 1 >/dev/null
    await_log "$tmp/w$n.log" "snapshot committed"
    c=$(grep -m1 'snapshot committed' "$tmp/w$n.log")
    mem=$(redis-cli -p "$RPORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r')
    kill9
    primary "$tmp/r$n.log" -c "$conf" --snapshot-after 0
    echo "$v: snapshot $(echo "$c" | grep -o 'state=[0-9]* stored=[0-9]* ms=[0-9]*')," \
      "Redis used_memory $((mem / 1048576)) MiB;" \
      "restored:$(grep -m1 'mirror recovered' "$tmp/r$n.log" | sed 's/.*mirror recovered//')"
    kill9
  done
done
