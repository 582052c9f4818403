#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time from its seed corpus, writing
# what it finds to a scratch corpus (the committed seeds stay as they are).
# usage: run.sh FUZZER SEEDS_DIR SECONDS [more libFuzzer flags]
set -euo pipefail
fuzzer=$1 seeds=$2 secs=$3
shift 3
work=$(mktemp -d /tmp/pt-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/crashes"
"$fuzzer" "$work/corpus" "$seeds" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$work/crashes/" -print_final_stats=1 "$@" 2>"$work/log" || {
  tail -n 60 "$work/log"
  keep=${PT_FUZZ_FAILURES:-/tmp/pt-fuzz-failures}
  mkdir -p "$keep"
  for f in "$work"/crashes/*; do
    [ -e "$f" ] || continue
    cp "$f" "$keep/$(basename "$fuzzer")-$(basename "$f")"
    echo "input that failed, kept as $keep/$(basename "$fuzzer")-$(basename "$f") (replay: $fuzzer FILE):"
    od -A d -t x1 "$f" | head -20
  done
  exit 1
}
grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "$work/log" || true
echo "ok: $(basename "$fuzzer") ran ${secs}s without a failure"
