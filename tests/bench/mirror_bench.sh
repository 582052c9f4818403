#!/usr/bin/env bash
# The Redis mirror's costs, side by side in one run on this machine:
#  1. reservations/s and latency of pintuand memory-only, --mirror async,
#     --mirror durable (Redis AOF everysec) and durable on a Redis with
#     appendfsync always, at the same connections and pipelining (closed
#     loop, pintuan-bench stampede), and the Redis+Lua flash-sale script of
#     tests/bench (tests/bench/side_by_side.sh) for scale;
#  2. p99 at a fixed open-loop rate, durable;
#  3. recovery: HOLDS live holds made durable, then kill -9 and a restart,
#     from the journal alone and from a snapshot; and Redis memory per live
#     hold (journal, then snapshot).
# Prints a table; every figure is a median of RUNS runs where it says so.
#
# Usage: tests/bench/mirror_bench.sh [BUILD] [CONNS] [PIPE] [SECONDS] [RATE] [HOLDS] [RUNS]
# Only 127.0.0.1 is targeted; every server is started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build} CONNS=${2:-50} PIPE=${3:-16} SECS=${4:-5} RATE=${5:-100000} HOLDS=${6:-1000000}
RUNS=${7:-3}
source tests/lib/servers.sh
tmp=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# redis NAME [extra args...]: starts a private Redis, sets RPORT
redis() {
  local name=$1; shift
  redis_start "$tmp/$name" --maxmemory-policy noeviction "$@"
  PIDS+=("$RPID")
}
# daemon LOG [args...]: starts pintuand, sets DPORT, waits for primary when mirrored
daemon() {
  local log=$1; shift
  local a shard=
  for a in "$@"; do [ "$shard" = next ] && shard=$a; [ "$a" = --shard ] && shard=next; done
  if [ -n "$shard" ]; then init_shard "$BUILD/daemon/pintuand" "$shard"; fi
  exec {PF}< <(exec "$BUILD/daemon/pintuand" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 --log-level info "$@" \
    3>&1 1>/dev/null 2>"$log")
  DPID=$!; PIDS+=("$DPID")
  read -r DPORT <&$PF
  if [[ " $* " == *" --redis "* ]]; then await_log "$log" "mirror role=primary"; fi
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
bench() { "$BUILD/clients/pintuan-bench" -a "127.0.0.1:$DPORT" --json --no-progress "$@"; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $CONNS connections x pipeline $PIPE, ${SECS}s, median of $RUNS"
echo "| configuration | reservations/s | p50 us | p99 us |"
echo "|---|---|---|---|"
row() { # name, then the JSON files of its runs
  local name=$1; shift
  python3 - "$name" "$@" <<'PY'
import json, statistics, sys
name, files = sys.argv[1], sys.argv[2:]
d = [json.load(open(f)) for f in files]
med = lambda k: statistics.median(k)
print(f"| {name} | {med([x['throughput_rps'] for x in d]):,.0f} | "
      f"{med([x['latency_us']['50'] for x in d]):,.0f} | {med([x['latency_us']['99'] for x in d]):,.0f} |")
PY
}
STAMPEDE=(-s stampede -c "$CONNS" -p "$PIPE" -d "$SECS" -w 1 --stock 1000000000 --limit 0 --users 1000000)
for r in $(seq 1 "$RUNS"); do # interleaved, so drift hits every configuration alike
  daemon "$tmp/off.log"
  bench "${STAMPEDE[@]}" >"$tmp/off.$r.json"; stop "$DPID"
  redis async$r --appendonly yes --appendfsync everysec
  daemon "$tmp/async.log" --redis "127.0.0.1:$RPORT" --mirror async --shard b
  bench "${STAMPEDE[@]}" >"$tmp/async.$r.json"; stop "$DPID"; stop "$RPID"
  redis durable$r --appendonly yes --appendfsync everysec
  daemon "$tmp/durable.log" --redis "127.0.0.1:$RPORT" --shard b
  bench "${STAMPEDE[@]}" >"$tmp/durable.$r.json"; stop "$DPID"; stop "$RPID"
  redis always$r --appendonly yes --appendfsync always
  daemon "$tmp/always.log" --redis "127.0.0.1:$RPORT" --shard b
  bench "${STAMPEDE[@]}" >"$tmp/always.$r.json"; stop "$DPID"; stop "$RPID"
done
row "memory-only (--mirror off)" "$tmp"/off.*.json
row "async (Redis AOF everysec)" "$tmp"/async.*.json
row "durable (Redis AOF everysec)" "$tmp"/durable.*.json
row "durable (Redis appendfsync always)" "$tmp"/always.*.json
echo
echo "Redis+Lua script, same connections and pipeline:"
bash tests/bench/side_by_side.sh "$BUILD" "$CONNS" "$PIPE" "$SECS" | grep -i "redis" || true

echo
echo "# open loop at $RATE req/s, durable (AOF everysec), ${SECS}s"
redis openloop --appendonly yes --appendfsync everysec
daemon "$tmp/open.log" --redis "127.0.0.1:$RPORT" --shard b
bench -s stampede -c "$CONNS" -p "$PIPE" -R "$RATE" -d "$SECS" -w 1 --stock 1000000000 --limit 0 \
  --users 1000000 >"$tmp/open.json"
stop "$DPID"; stop "$RPID"
field "$tmp/open.json" "'requests %d, p50 %.0f us, p99 %.0f us, p99.9 %.0f us (corrected for coordinated omission)' % (d['requests'], d['latency_us']['50'], d['latency_us']['99'], d['latency_us']['99.9'])"

echo
echo "# recovery of $HOLDS live holds (kill -9, restart)"
for mode in journal snapshot; do
  if [ $mode = journal ]; then snap=0; else snap=$((HOLDS * 30)); fi # a few snapshots on the way
  redis rec-$mode --appendonly no
  base=$(redis-cli -p "$RPORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r')
  daemon "$tmp/rec-$mode.log" --redis "127.0.0.1:$RPORT" --shard r --node-id r --snapshot-after $snap
  # HOLDS units, one per request (then SOLD_OUT, which costs Redis nothing);
  # the time allows 40k holds/s: the line below says how many were made
  bench -s stampede -c "$CONNS" -p "$PIPE" -d $((HOLDS / 40000 + 5)) -w 0 --stock "$HOLDS" --limit 0 \
    --users 100000000 >"$tmp/fill-$mode.json"
  if [ $mode = snapshot ]; then # the last snapshot committed before the kill
    await_log "$tmp/rec-$mode.log" "snapshot committed"
  fi
  held=$("$BUILD/clients/pintuan-cli" -a "127.0.0.1:$DPORT" --json campaign list |
    python3 -c "import json,sys; print(sum(int(c.get('held',0)) for c in json.load(sys.stdin)['campaigns']['campaigns']))")
  used=$(redis-cli -p "$RPORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r')
  kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
  daemon "$tmp/rec2-$mode.log" --redis "127.0.0.1:$RPORT" --shard r --node-id r --snapshot-after 0
  line=$(grep -m1 "mirror recovered" "$tmp/rec2-$mode.log")
  echo "$mode: live holds $held, Redis $(( (used - base) / (held > 0 ? held : 1) )) B per live hold; $line"
  stop "$DPID"; stop "$RPID"
done
