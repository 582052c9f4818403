#!/usr/bin/env bash
# What TLS costs on the storefront port (BENCHMARKS.md), side by side in one
# run: plaintext and TLS alternating, RUNS times, each run on a fresh
# memory-only daemon (certificates made by openssl here: a P-256 CA and a
# daemon certificate for IP:127.0.0.1, as tests/integration/test_tls.c
# makes them). Per run:
#   1. closed loop, 1 connection, depth 1 (pintuan-bench stampede): p50, p99
#   2. closed loop, 16 connections x 16 pipelined: throughput, p99, and the
#      daemon's CPU per request (its threads' CPU time, from
#      /proc/PID/task/*/schedstat, over /metrics' request count, in the
#      measured part of the run)
#   3. connection set-up: conn_cost (tests/bench/conn_cost.c), N rounds of
#      connect (+ handshake) + Ping + close through libpintuan, one after
#      another: rounds a second, the round's p50/p99, and the daemon's and
#      the client's CPU per connection
# With REDIS=1, one more pair (plaintext, TLS) of 1 and 2 on a daemon
# mirroring to a private redis-server (--mirror durable).
# Prints one JSON line per run to RESULTS (default /tmp/pt-tls.jsonl), then
# a table of medians (min-max) and the TLS/plaintext ratios of the medians.
#
# Usage: tests/bench/tls_ab.sh [BUILD] [RUNS] [SECONDS] [CONNECTIONS]
# Only 127.0.0.1 is used; every process is started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-release} RUNS=${2:-5} SECS=${3:-5} NCONN=${4:-2000}
RESULTS=${RESULTS:-/tmp/pt-tls.jsonl}
source tests/lib/servers.sh
scratch
D=$BUILD/daemon/pintuand
(cd "$tmp" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
    -subj /CN=bench-ca >/dev/null 2>&1 &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
    -subj /CN=pintuand -addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1 &&
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
    -copy_extensions copy >/dev/null 2>&1)
TLS=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{n += $1} END {printf "%.0f\n", n}'; } # every thread's CPU time
requests() { curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk '/^pintuan_requests_total/{n += $2} END {print n + 0}'; }

start() { # MODE [pintuand flags...]: sets DPID DPORT APORT
  local mode=$1
  shift
  local t=()
  [ "$mode" = tls ] && t=("${TLS[@]}")
  exec {PF}< <(exec "$D" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 --log-level info \
    "${t[@]}" "$@" 3>&1 1>/dev/null 2>>"$tmp/daemon.log")
  DPID=$!
  PIDS+=("$DPID")
  read -r DPORT <&$PF
  read -r APORT <&$PF
  if [[ " $* " == *" --redis "* ]]; then await_log "$tmp/daemon.log" "mirror role=primary"; fi
}
stop() { kill "$DPID"; wait "$DPID" 2>/dev/null || true; }
client_tls() { [ "$1" = tls ] && echo "--tls-ca $tmp/ca.pem" || true; }

# bench MODE OUT [bench flags...]: the bench's JSON in OUT; the daemon's CPU
# and requests over the measured part (from 1.5 s to SECS+0.5 s) in OUT.cpu
bench() {
  local mode=$1 out=$2
  shift 2
  # shellcheck disable=SC2046
  "$BUILD/clients/pintuan-bench" -a "127.0.0.1:$DPORT" $(client_tls "$mode") -s stampede --stock 100000000 \
    --limit 0 -w 1 -d "$SECS" --json --no-progress "$@" >"$out" &
  local bp=$!
  sleep 1.5
  local c0 r0 c1 r1
  c0=$(cpu_ns "$DPID") r0=$(requests "$APORT")
  sleep "$((SECS - 1))"
  c1=$(cpu_ns "$DPID") r1=$(requests "$APORT")
  echo "$((c1 - c0)) $((r1 - r0))" >"$out.cpu"
  wait "$bp"
}

record() { # MODE KIND ROUND FILES...: one JSON line
  python3 - "$@" >>"$RESULTS" <<'PY'
import json, os, sys
mode, kind, rnd, pref = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = {"mode": mode, "kind": kind, "round": rnd}
for part in ("c1", "c16"):
    if not os.path.exists(f"{pref}.{part}"): continue
    b = json.load(open(f"{pref}.{part}"))
    cpu, req = map(int, open(f"{pref}.{part}.cpu").read().split())
    r[part] = {"rps": b["throughput_rps"], "p50_us": b["latency_us"]["50"], "p99_us": b["latency_us"]["99"],
               "p999_us": b["latency_us"]["99.9"], "pass": b["verdict"]["pass"],
               "daemon_us_per_req": cpu / 1e3 / req if req else None}
if os.path.exists(f"{pref}.conn"):
    c = json.load(open(f"{pref}.conn"))
    cpu = int(open(f"{pref}.conn.cpu").read())
    r["conn"] = {"rounds_per_s": c["rounds_per_s"], "p50_us": c["round_us"]["50"], "p99_us": c["round_us"]["99"],
                 "daemon_us_per_conn": cpu / 1e3 / c["rounds"], "client_us_per_conn": c["client_cpu_us"]}
print(json.dumps(r))
PY
}

run() { # MODE ROUND [KIND]
  local mode=$1 rnd=$2 kind=${3:-memory} p="$tmp/run"
  rm -f "$p".*
  if [ "$kind" = redis ]; then
    local shard="b$rnd$mode"
    init_shard "$D" "$shard"
    start "$mode" --redis "127.0.0.1:$RPORT" --shard "$shard" --node-id "n-$shard"
  else
    start "$mode"
  fi
  bench "$mode" "$p.c1" -c 1 -p 1
  bench "$mode" "$p.c16" -c 16 -p 16
  if [ "$kind" = memory ]; then
    local c0 c1
    c0=$(cpu_ns "$DPID")
    # shellcheck disable=SC2046
    "$BUILD/tests/conn_cost" -a "127.0.0.1:$DPORT" $(client_tls "$mode") -n "$NCONN" -j >"$p.conn"
    c1=$(cpu_ns "$DPID")
    echo "$((c1 - c0))" >"$p.conn.cpu"
  fi
  stop
  record "$mode" "$kind" "$rnd" "$p"
  tail -1 "$RESULTS" >&2
}

: >"$RESULTS"
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $RUNS rounds of plaintext then TLS, ${SECS}s each, $NCONN connections" >&2
for r in $(seq 1 "$RUNS"); do
  run plain "$r"
  run tls "$r"
done
if [ "${REDIS:-0}" = 1 ]; then
  redis_start "$tmp/redis" --appendonly yes --maxmemory-policy noeviction
  PIDS+=("$RPID")
  run plain 1 redis
  run tls 1 redis
fi

python3 - "$RESULTS" <<'PY'
import json, statistics as st, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def vals(mode, kind, part, key):
    return [r[part][key] for r in runs if r["mode"] == mode and r["kind"] == kind and part in r and r[part].get(key) is not None]
def cell(v, nd=0):
    if not v: return "-", None
    m = st.median(v)
    return (f"{m:,.{nd}f} ({min(v):,.{nd}f}–{max(v):,.{nd}f})" if len(v) > 1 else f"{m:,.{nd}f}"), m
rows = [("memory", "c1", "rps", "1 conn, depth 1: req/s", 0), ("memory", "c1", "p50_us", "1 conn, depth 1: p50 µs", 1),
        ("memory", "c1", "p99_us", "1 conn, depth 1: p99 µs", 1),
        ("memory", "c16", "rps", "16 conns x 16: req/s", 0), ("memory", "c16", "p99_us", "16 conns x 16: p99 µs", 0),
        ("memory", "c16", "daemon_us_per_req", "16 conns x 16: daemon CPU µs/request", 2),
        ("memory", "conn", "rounds_per_s", "new connection + Ping + close: rounds/s", 0),
        ("memory", "conn", "p50_us", "new connection + Ping + close: p50 µs", 0),
        ("memory", "conn", "p99_us", "new connection + Ping + close: p99 µs", 0),
        ("memory", "conn", "daemon_us_per_conn", "new connection: daemon CPU µs", 0),
        ("memory", "conn", "client_us_per_conn", "new connection: client (libpintuan) CPU µs", 0),
        ("redis", "c1", "p50_us", "Redis mirror, 1 conn, depth 1: p50 µs", 0),
        ("redis", "c1", "p99_us", "Redis mirror, 1 conn, depth 1: p99 µs", 0),
        ("redis", "c16", "rps", "Redis mirror, 16 conns x 16: req/s", 0),
        ("redis", "c16", "p99_us", "Redis mirror, 16 conns x 16: p99 µs", 0),
        ("redis", "c16", "daemon_us_per_req", "Redis mirror, 16 x 16: daemon CPU µs/request", 2)]
print("| | plaintext | TLS | TLS / plaintext |")
print("|---|---|---|---|")
for kind, part, key, name, nd in rows:
    a, ma = cell(vals("plain", kind, part, key), nd)
    b, mb = cell(vals("tls", kind, part, key), nd)
    if ma is None and mb is None: continue
    print(f"| {name} | {a} | {b} | {mb / ma:.2f} |" if ma and mb else f"| {name} | {a} | {b} | |")
PY
