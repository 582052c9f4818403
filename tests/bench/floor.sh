#!/usr/bin/env bash
# pintuand as a fraction of the floor, measured in one run on this machine.
# Each round runs, in turn (the order rotates from round to round):
#   floor    floor_client -> floor_server: the least a server and a client on
#            this framing do (tests/bench/floor_server.c, floor_client.c)
#   ceiling  pintuan-bench --floor -> floor_server: the bench's own ceiling
#   memory   pintuan-bench -> pintuand, memory-only (stampede reserves)
#   durable  pintuan-bench -> pintuand --redis, --mirror durable (MIRROR=1)
# at the same connections and pipelining, a fresh server for every run, and
# prints the median of each over the rounds beside its fraction of the floor.
#
# Usage: tests/bench/floor.sh [BUILD] [CONNS] [PIPE] [SECONDS] [ROUNDS]
# PIN=1: the client on CPU 0, the server on CPU 1 (taskset), so that the two
#        do not share a core; without it the scheduler places them.
# MIRROR=1: the durable row too (a private redis-server, AOF everysec).
# PREFAULT_AB=1: a memory-only row with --prefault off too, beside the default.
# SCENARIO=group|mixed|zipf: another bench scenario for the pintuand rows.
# JSON=FILE: every run's figures as JSON lines there, for scripts.
# Only 127.0.0.1 is targeted; every server is started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build} CONNS=${2:-50} PIPE=${3:-16} SECS=${4:-5} ROUNDS=${5:-3}
SCENARIO=${SCENARIO:-stampede}
tmp=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
source tests/lib/servers.sh
CLI_PIN=() SRV_PIN=()
if [ "${PIN:-0}" = 1 ]; then CLI_PIN=(taskset -c 0) SRV_PIN=(taskset -c 1); fi
out=${JSON:-$tmp/runs.jsonl}
: >"$out"

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
record() { # record KIND: the JSON line on stdin, tagged
  python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['kind']='$1'; print(json.dumps(d))" >>"$out"
}

run_floor() {
  exec {PF}< <(exec "${SRV_PIN[@]}" "$BUILD/tests/floor_server" --ready-fd 3 3>&1 1>/dev/null)
  local pid=$!; PIDS+=("$pid")
  read -r port <&$PF
  if [ "$1" = floor ]; then
    "${CLI_PIN[@]}" "$BUILD/tests/floor_client" -a "127.0.0.1:$port" -c "$CONNS" -p "$PIPE" -d "$SECS" -w 1 -j | record floor
  else
    "${CLI_PIN[@]}" "$BUILD/clients/pintuan-bench" --floor -a "127.0.0.1:$port" -c "$CONNS" -p "$PIPE" -d "$SECS" -w 1 \
      --json --no-progress | record ceiling
  fi
  stop "$pid"
}

run_daemon() {
  local extra=() rpid=
  if [ "$1" = durable ]; then
    rm -rf "$tmp/redis"
    redis_start "$tmp/redis" --appendonly yes --appendfsync everysec
    rpid=$RPID; PIDS+=("$rpid")
    extra=(--redis "127.0.0.1:$RPORT" --mirror durable --shard "floor-$RANDOM")
    init_shard "$BUILD/daemon/pintuand" "${extra[5]}"
  fi
  [ "$1" = memory-noprefault ] && extra=(--prefault off)
  exec {PF}< <(exec "${SRV_PIN[@]}" "$BUILD/daemon/pintuand" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 \
    --log-level info "${extra[@]}" 3>&1 1>/dev/null 2>"$tmp/daemon.log")
  local pid=$!; PIDS+=("$pid")
  read -r port <&$PF
  [ "$1" != durable ] || await_log "$tmp/daemon.log" "mirror role=primary" # serving once it is the primary
  local limit=1000000
  [ "$SCENARIO" = stampede ] || limit=0
  "${CLI_PIN[@]}" "$BUILD/clients/pintuan-bench" -a "127.0.0.1:$port" -s "$SCENARIO" -c "$CONNS" -p "$PIPE" \
    -d "$SECS" -w 1 --stock 1000000000 --limit "$limit" --users 1000000 --json --no-progress | record "$1"
  stop "$pid"
  [ -z "$rpid" ] || stop "$rpid"
}

kinds=(floor ceiling memory)
[ "${PREFAULT_AB:-0}" = 1 ] && kinds+=(memory-noprefault)
[ "${MIRROR:-0}" = 1 ] && kinds+=(durable)
for r in $(seq 1 "$ROUNDS"); do
  n=${#kinds[@]}
  for i in $(seq 0 $((n - 1))); do
    k=${kinds[$(((i + r - 1) % n))]}
    case $k in floor | ceiling) run_floor "$k" ;; *) run_daemon "$k" ;; esac
  done
done

python3 - "$out" "$CONNS" "$PIPE" "$SECS" "$ROUNDS" "${PIN:-0}" "$SCENARIO" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
conns, pipe, secs, rounds, pin, scen = sys.argv[2:]
by = {}
for d in runs: by.setdefault(d["kind"], []).append(d)
med = lambda xs: statistics.median(xs)
floor = med([d["throughput_rps"] for d in by["floor"]])
names = {"floor": "floor (floor_client -> floor_server)", "ceiling": "bench ceiling (pintuan-bench --floor)",
         "memory": f"pintuand memory-only ({scen})", "memory-noprefault": "... with --prefault off",
         "durable": f"pintuand durable ({scen})"}
print(f"{conns} connections x pipeline {pipe}, {secs} s per run, median of {rounds} rounds, "
      f"{'client CPU 0 / server CPU 1' if pin == '1' else 'unpinned'}")
print(f"{'':40}{'req/s':>12}{'of floor':>10}{'p50 ms':>9}{'p99 ms':>9}{'runs (req/s)':>30}")
for k in ("floor", "ceiling", "memory", "memory-noprefault", "durable"):
    if k not in by: continue
    t = [d["throughput_rps"] for d in by[k]]
    p50 = med([d["latency_us"]["50"] for d in by[k]]) / 1000
    p99 = med([d["latency_us"]["99"] for d in by[k]]) / 1000
    print(f"{names[k]:40}{med(t):>12,.0f}{med(t)/floor:>10.0%}{p50:>9.3f}{p99:>9.3f}   {' '.join(f'{x:,.0f}' for x in t)}")
bad = [d for d in runs if d.get("wrong_replies") or d.get("lost") or d.get("unanswered")
       or (d.get("verdict") and not d["verdict"]["pass"])]
if bad:
    print(f"{len(bad)} runs went wrong (wrong or missing replies, or a failed verdict)")
    sys.exit(1)
PY
