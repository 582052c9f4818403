#!/usr/bin/env bash
# Side-by-side, in one run on this machine: pintuan (memory-only) against
# the same flash-sale rules as a Redis Lua script (tests/bench/flash_sale.lua)
# driven by redis-benchmark, at the same connections and pipelining.
# Prints throughput and latency percentiles of both and the ratio.
#
# Usage: tests/bench/side_by_side.sh [BUILD_DIR] [CONNECTIONS] [PIPELINE] [SECONDS]
# Only 127.0.0.1 is targeted; both servers are started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build} CONNS=${2:-50} PIPE=${3:-1} SECS=${4:-10}
source tests/lib/servers.sh
tmp=$(mktemp -d)
cleanup() { kill "${DPID:-}" "${RPID:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# --- pintuan, memory-only
exec {PF}< <(exec "$BUILD/daemon/pintuand" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 --log-level warn 3>&1 1>/dev/null)
DPID=$!
read -r PORT <&$PF
"$BUILD/clients/pintuan-bench" -a "127.0.0.1:$PORT" -s stampede -c "$CONNS" -p "$PIPE" -d "$SECS" -w 1 \
  --stock 1000000000 --limit 1000000 --users 1000000 --json --no-progress >"$tmp/pintuan.json"
kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=

# --- Redis + Lua
redis_start "$tmp/redis" --appendonly no
redis-cli -p "$RPORT" hset '{c}:camp' available 1000000000 held 0 seq 0 >/dev/null
SHA=$(redis-cli -p "$RPORT" script load "$(cat tests/bench/flash_sale.lua)")
# as many requests as pintuan served in the same time, capped, so both run ~SECS
N=$(python3 -c "import json; d=json.load(open('$tmp/pintuan.json')); print(max(200000, min(int(d['throughput_rps']*$SECS/10), 5000000)))")
redis-benchmark -p "$RPORT" -c "$CONNS" -P "$PIPE" -n "$N" -r 100000000 --csv \
  EVALSHA "$SHA" 4 '{c}:camp' '{c}:idem' '{c}:users' '{c}:holds' 'req:__rand_int__' 'user:__rand_int__' 1 1000000 300000 \
  >"$tmp/redis.csv"
kill "$RPID"; wait "$RPID" 2>/dev/null || true; RPID=

python3 - "$tmp/pintuan.json" "$tmp/redis.csv" "$CONNS" "$PIPE" <<'PY'
import csv, json, sys
p = json.load(open(sys.argv[1]))
rows = list(csv.reader(open(sys.argv[2])))
head, vals = rows[0], rows[1]
r = dict(zip(head, vals))
lua_rps = float(r["rps"])
print(f"side by side: {sys.argv[3]} connections, pipeline {sys.argv[4]}, flash-sale reserve with idempotency, limit, stock, hold expiry")
print(f"{'':24}{'throughput':>14}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
lp = p["latency_us"]
print(f"{'pintuan (memory-only)':24}{p['throughput_rps']:>14,.0f}{lp['50']/1000:>10.3f}{lp['99']/1000:>10.3f}{lp['max']/1000:>10.3f}")
print(f"{'Redis 7 + Lua':24}{lua_rps:>14,.0f}{float(r['p50_latency_ms']):>10.3f}{float(r['p99_latency_ms']):>10.3f}{float(r['max_latency_ms']):>10.3f}")
print(f"ratio: pintuan / Lua throughput = {p['throughput_rps']/lua_rps:.1f}x")
print(f"pintuan verdict: {'PASS' if p['verdict']['pass'] else 'FAIL'} (oversold {p['verdict']['oversold']})")
PY
