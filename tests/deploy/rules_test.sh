#!/usr/bin/env bash
# What deploy/ ships for monitoring: the Prometheus alert rules pass
# `promtool check rules` and their unit tests (`promtool test rules`), the
# Grafana dashboard is JSON with a PromQL query in every panel, and every
# pintuan_ metric the rules and the dashboard name is one the daemon
# exports (daemon/admin/metrics.c), so neither watches a name that does
# not exist. TAP output; 77 (meson's skip) without promtool.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v promtool >/dev/null; then
  echo "SKIP: no promtool (Debian package prometheus)"
  exit 77
fi
source "$src/tests/lib/tap.sh"
cd "$src/deploy/prometheus" || exit 1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
quiet() { "$@" >"$out" 2>&1 || { sed 's/^/# /' "$out"; return 1; }; } # promtool's words as TAP comments
check "promtool check rules" quiet promtool check rules pintuan.rules.yml
check "promtool test rules (failover, refusal, lag, drops)" quiet promtool test rules pintuan.rules.test.yml
dash=$src/deploy/grafana/pintuan.json
check "the dashboard is a Grafana dashboard in JSON, a query in every panel" python3 - "$dash" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["uid"] and d["panels"]
for p in d["panels"]:
    assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
PY
# every metric name used, without the histogram series' suffixes
names=$(cat pintuan.rules.yml "$dash" | grep -o 'pintuan_[a-z_]*' | grep -v '^pintuan_shard\|^pintuan_s1' |
        sed 's/_\(bucket\|sum\|count\)$//' | sort -u)
missing=""
for m in $names; do
  case $m in pintuan_) continue ;; esac
  grep -q "\"$m\"\|\"$m[{ ]" "$src/daemon/admin/metrics.c" || missing="$missing $m"
done
check "every metric they name is exported by the daemon${missing:+ (missing:$missing)}" test -z "$missing"
tap_end
