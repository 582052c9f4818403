#!/usr/bin/env bash
# Two builds' daemons side by side (memory-only), alternating A B A B ...,
# each driven by the same pintuan-bench (A's): reservations/s and p99 per
# run, to tell a regression from noise on a shared machine.
#
# Usage: tests/bench/daemon_ab.sh BUILD_A BUILD_B [ROUNDS] [SECONDS]
# CONNS and DEPTH (default 50 and 16): the bench's connections and requests
# in flight each; A_ARGS and B_ARGS: flags for each daemon (the same build
# twice with different settings is a fair A/B too).
# SCRAPE=1: while each run lasts, scrape /metrics every second and follow
# /stats/stream (pintuan-cli stat) on daemons that have an admin port, as
# Prometheus and an operator would.
# Only 127.0.0.1 is targeted; each daemon is started and stopped here.
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3} SECS=${4:-3}
BENCH=$A/clients/pintuan-bench
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    if [ $side = A ]; then build=$A extra=(${A_ARGS:-}); else build=$B extra=(${B_ARGS:-}); fi
    admin=()
    "$build/daemon/pintuand" --help | grep -q -- --admin-listen && admin=(--admin-listen 127.0.0.1:0)
    exec {PF}< <(exec "$build/daemon/pintuand" "${extra[@]}" --listen 127.0.0.1:0 "${admin[@]}" --ready-fd 3 \
      --log-level error 3>&1 1>/dev/null 2>/dev/null)
    pid=$!
    read -r port <&$PF
    aport=
    [ ${#admin[@]} -gt 0 ] && read -r aport <&$PF
    watchers=()
    if [ "${SCRAPE:-0}" = 1 ] && [ -n "$aport" ]; then
      "$build/clients/pintuan-cli" stat --admin "127.0.0.1:$aport" --count $((SECS + 2)) >/dev/null 2>&1 &
      watchers+=($!)
      (for _ in $(seq 1 $((SECS + 2))); do
         curl -s -o /dev/null "http://127.0.0.1:$aport/metrics"
         sleep 1
       done) &
      watchers+=($!)
    fi
    "$BENCH" -a "127.0.0.1:$port" -s stampede -c "${CONNS:-50}" -p "${DEPTH:-16}" -d "$SECS" -w 1 --stock 1000000000 \
      --limit 0 --users 1000000 --json --no-progress |
      python3 -c "import json,sys; d=json.load(sys.stdin); print('$side $build', int(d['throughput_rps']), 'req/s, p99', d['latency_us']['99'], 'us')"
    for w in "${watchers[@]}"; do kill "$w" 2>/dev/null || true; done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
