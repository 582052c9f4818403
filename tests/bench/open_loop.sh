#!/usr/bin/env bash
# Open-loop latency of two variants side by side, alternating A B B A ...:
# pintuan-bench -s stampede at a fixed rate against a fresh pintuand (and a
# private redis-server for MODE durable) per run; prints each run's
# corrected p50 / p99 / p99.9 / max and the CPU of the daemon, the bench and
# Redis over the middle of the run, then the medians per variant.
#
# Usage: tests/bench/open_loop.sh [BUILD] [RATE] [ROUNDS] [memory|durable]
# RATE 0: closed loop instead (as fast as the daemon answers), to compare
#   throughput the same way; CONNS / PIPE: connections and pipeline
#   (default 50 and 8)
# DAEMON_A / DAEMON_B: extra pintuand flags of each variant
#   (default: --prefault off / --prefault on)
# BENCH_A / BENCH_B: extra pintuan-bench flags of each variant (default none),
#   e.g. BENCH_A="--tick-us 0" BENCH_B="--tick-us 50" DAEMON_A= DAEMON_B=
# PINTUAND_A / PINTUAND_B: the daemon binary of each variant (default
#   BUILD's), e.g. a build of the commit before a change
# REDIS_FLAGS: extra redis-server flags (durable), e.g.
#   "--auto-aof-rewrite-percentage 0" to keep Redis' AOF rewrite out of the run
# PIN_A / PIN_B: "S:B" pins that variant's daemon and Redis to CPU S and
#   its bench to CPU B (taskset), as if the bench were another host
#   sharing nothing with the servers; empty (default): no pinning
# INSIDE=1: the daemon also serves its admin port, and each run adds the
#   p99 of the time inside the daemon (pintuan_request_duration_seconds:
#   a turn's first read to its replies written, after Redis' acknowledgement
#   when durable), as the upper edge of its histogram bucket
# SECS / WARM: the measured seconds and the warm-up (default 8 and 2).
# Only 127.0.0.1 is targeted; every process is started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build} RATE=${2:-100000} ROUNDS=${3:-3} MODE=${4:-memory}
DAEMON_A=${DAEMON_A---prefault off} DAEMON_B=${DAEMON_B---prefault on}
BENCH_A=${BENCH_A-} BENCH_B=${BENCH_B-} PIN_A=${PIN_A-} PIN_B=${PIN_B-}
PINTUAND_A=${PINTUAND_A:-$BUILD/daemon/pintuand} PINTUAND_B=${PINTUAND_B:-$BUILD/daemon/pintuand}
REDIS_FLAGS=${REDIS_FLAGS-}
INSIDE=${INSIDE-} SECS=${SECS:-8} WARM=${WARM:-2} CONNS=${CONNS:-50} PIPE=${PIPE:-8}
RATE_ARGS=(-R "$RATE"); [ "$RATE" != 0 ] || RATE_ARGS=()
# CPU is read over the middle half of the measured part
LEAD=$(awk "BEGIN{print $WARM + $SECS / 4}") SPAN=$(awk "BEGIN{print $SECS / 2}")
tmp=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
source tests/lib/servers.sh
ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
buckets() { # the daemon's request-duration histogram, "le count" per line
  python3 -c 'import sys, urllib.request
for l in urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode().splitlines():
    if l.startswith("pintuan_request_duration_seconds_bucket"): print(l.split("le=\"")[1].split("\"")[0], l.split()[-1])' "$1"
}
inside_p99() { # the p99 of the requests between two readings, in ms, interpolated in its bucket
  python3 -c 'import sys
a, b = ([l.split() for l in open(f)] for f in sys.argv[1:3])
d = [(float(le), float(n1) - float(n0)) for (le, n0), (_, n1) in zip(a, b)]
want, lo, below = 0.99 * d[-1][1] if d else 0, 0.0, 0.0
for le, n in d:
    if n >= want > 0:
        print((lo + (le - lo) * (want - below) / (n - below) if le != float("inf") else lo) * 1e3); break
    lo, below = le, n
else: print(0)' "$1" "$2"
}

run() { # run NAME DAEMON_ARGS BENCH_ARGS PINTUAND PIN
  local redis=() rpid= bpin=() admin=(--admin-listen off) aport=
  [ -z "$INSIDE" ] || { aport=$(free_port); admin=(--admin-listen "127.0.0.1:$aport"); }
  [ -z "$5" ] || bpin=(taskset -c "${5#*:}")
  if [ "$MODE" = durable ]; then
    rm -rf "$tmp/redis"
    # shellcheck disable=SC2086 # the flags are words
    redis_start "$tmp/redis" --appendonly yes --appendfsync everysec $REDIS_FLAGS
    rpid=$RPID; PIDS+=("$rpid")
    [ -z "$5" ] || taskset -apc "${5%%:*}" "$rpid" >/dev/null
    redis=(--redis "127.0.0.1:$RPORT" --shard "ol-$RANDOM")
    init_shard "$4" "${redis[3]}"
  fi
  # shellcheck disable=SC2086 # the variants' flags are words
  exec {PF}< <(exec "$4" --listen 127.0.0.1:0 "${admin[@]}" --ready-fd 3 \
    --log-level info "${redis[@]}" $2 3>&1 1>/dev/null 2>"$tmp/daemon.log")
  local pid=$!; PIDS+=("$pid")
  read -r port <&$PF
  [ -z "$5" ] || taskset -apc "${5%%:*}" "$pid" >/dev/null
  [ "$MODE" != durable ] || await_log "$tmp/daemon.log" "mirror role=primary" # serving once it is the primary
  # shellcheck disable=SC2086
  "${bpin[@]}" "$BUILD/clients/pintuan-bench" -a "127.0.0.1:$port" -s stampede --stock 1000000000 --limit 1000000 \
    -c "$CONNS" -p "$PIPE" "${RATE_ARGS[@]}" -d "$SECS" -w "$WARM" --json --no-progress $3 >"$tmp/out.json" &
  local bpid=$!
  sleep "$LEAD"
  local d0 b0 r0 d1 b1 r1
  d0=$(ticks "$pid") b0=$(ticks "$bpid") r0=$(ticks "$rpid")
  [ -z "$aport" ] || buckets "$aport" >"$tmp/inside0"
  sleep "$SPAN"
  d1=$(ticks "$pid") b1=$(ticks "$bpid") r1=$(ticks "$rpid")
  [ -z "$aport" ] || { buckets "$aport" >"$tmp/inside1"; inside_p99 "$tmp/inside0" "$tmp/inside1" >"$tmp/inside"; }
  wait "$bpid"
  stop "$pid"
  [ -z "$rpid" ] || stop "$rpid"
  python3 - "$tmp/out.json" "$1" "$SPAN" $((d1 - d0)) $((b1 - b0)) $((r1 - r0)) "$([ -z "$aport" ] || cat "$tmp/inside")" >>"$tmp/rows" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); l = d["latency_us"]
inside = float(sys.argv[7]) if sys.argv[7] else None
cpu = [int(x) / float(sys.argv[3]) for x in sys.argv[4:7]]  # clock ticks (100/s) over SPAN s: % of a core
print(json.dumps({"v": sys.argv[2], "rps": d["throughput_rps"], "p50": l["50"] / 1e3, "p99": l["99"] / 1e3,
                  "p999": l["99.9"] / 1e3, "max": l["max"] / 1e3, "daemon": cpu[0], "bench": cpu[1],
                  "redis": cpu[2], "inside": inside}))
PY
  tail -n 1 "$tmp/rows" | python3 -c '
import json, sys; r = json.loads(sys.stdin.read())
print("%s: %.0f/s  p50 %.3f  p99 %.3f  p99.9 %.3f  max %.1f ms  | CPU daemon %d%% bench %d%% redis %d%%" %
      (r["v"], r["rps"], r["p50"], r["p99"], r["p999"], r["max"], r["daemon"], r["bench"], r["redis"]) +
      ("" if r["inside"] is None else " | inside the daemon p99 %.2f ms" % r["inside"]))'
}

echo "$([ "$RATE" = 0 ] && echo "closed loop" || echo "open loop $RATE req/s"), $CONNS x $PIPE, $MODE, $ROUNDS rounds; A: $PINTUAND_A $DAEMON_A, bench $BENCH_A${PIN_A:+ pinned $PIN_A}; B: $PINTUAND_B $DAEMON_B, bench $BENCH_B${PIN_B:+ pinned $PIN_B}${REDIS_FLAGS:+; redis-server $REDIS_FLAGS}"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run A "$DAEMON_A" "$BENCH_A" "$PINTUAND_A" "$PIN_A"; run B "$DAEMON_B" "$BENCH_B" "$PINTUAND_B" "$PIN_B"
  else run B "$DAEMON_B" "$BENCH_B" "$PINTUAND_B" "$PIN_B"; run A "$DAEMON_A" "$BENCH_A" "$PINTUAND_A" "$PIN_A"; fi
done
python3 - "$tmp/rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for v in ("A", "B"):
    rs = [r for r in rows if r["v"] == v]
    m = lambda k: statistics.median(r[k] for r in rs)
    print("median %s: %.0f/s  p99 %.3f  p99.9 %.3f  max %.1f ms  (p99 of the runs: %s; req/s: %s)" %
          (v, m("rps"), m("p99"), m("p999"), m("max"), " ".join("%.2f" % r["p99"] for r in rs),
           " ".join("%.0fk" % (r["rps"] / 1e3) for r in rs)) +
          ("" if rs[0].get("inside") is None else "; inside the daemon p99 %.2f ms" % m("inside")))
PY
