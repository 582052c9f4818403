#!/usr/bin/env bash
# Exact replay's speed (pintuan-replay, issue 12): a capture of pintuan-bench
# traffic (mixed, 8 connections x pipeline 8, SECONDS long) re-decided ROUNDS
# times; the median decisions/s beside the engine micro-benchmark's sale-scale
# reserve+confirm, measured in the same run.
# Usage: tests/bench/replay_bench.sh [BUILD] [SECONDS] [ROUNDS]
# BARGS: the bench's campaign options (default: every reserve held, 1M users).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build} SECS=${2:-5} ROUNDS=${3:-5}
tmp=$(mktemp -d)
PID=
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
exec {PF}< <(exec "$BUILD/daemon/pintuand" --listen 127.0.0.1:0 --admin-listen off --ready-fd 3 \
  --capture "$tmp/cap" --capture-max-bytes 100000000000 3>&1 1>/dev/null 2>/dev/null)
PID=$!
read -r PORT <&$PF
# shellcheck disable=SC2086
"$BUILD/clients/pintuan-bench" -a "127.0.0.1:$PORT" -s mixed -c 8 -p 8 -d "$SECS" -w 0 \
  ${BARGS:---stock 1000000 --users 1000000 --limit 0} --json --no-progress >"$tmp/bench.json"
kill $PID; wait $PID 2>/dev/null || true; PID=
echo "capture: $(du -h "$tmp/cap" | cut -f1), $(python3 -c "import json; print(json.load(open('$tmp/bench.json'))['sent'])") requests"
for r in $(seq 1 "$ROUNDS"); do
  "$BUILD/daemon/pintuan-replay" --json --no-progress "$tmp/cap" >>"$tmp/replay.jsonl"
  "$BUILD/tests/engine_bench" 1 2000000 flash 2>/dev/null | grep -A1 "^sale" | tail -1 >>"$tmp/engine.txt" || true
done
python3 - "$tmp/replay.jsonl" "$tmp/engine.txt" <<'PY'
import json, re, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
bad = [d for d in runs if d["divergences"] or d["error"]]
rates = sorted(d["decisions_per_s"] for d in runs)
print(f"pintuan-replay: {runs[0]['decisions']:,} decisions ({runs[0]['requests']:,} requests), "
      f"median {statistics.median(rates)/1e6:.2f} M decisions/s (min {rates[0]/1e6:.2f}, max {rates[-1]/1e6:.2f}), "
      f"{len(bad)} runs with divergences or errors")
eng = [l.strip() for l in open(sys.argv[2]) if l.strip()]
for l in eng: print("engine_bench:", l)
sys.exit(1 if bad else 0)
PY
