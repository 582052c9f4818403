#!/usr/bin/env bash
# The abuse benchmark (BENCHMARKS.md): a well-behaved storefront
# (pintuan-bench, open loop at RATE requests/s over 8 connections) alone,
# then beside 1,000 abusive connections (pintuan-abuse, tests/bench/abuse.c:
# never-readers, slowloris, floods, bad Hellos, idle sockets), alternating,
# ROUNDS times; each run on a fresh daemon with keys, short limits and an
# output budget of BUDGET_MIB. Per run: the storefront's latency, the
# daemon's RSS (VmRSS every 100 ms), its unsent bytes (/metrics every
# 250 ms) and, at the end, the limits that acted (/metrics counters).
#
# Usage: tests/bench/abuse.sh [BUILD] [ROUNDS] [SECONDS] [RATE] [BUDGET_MIB] [MIX]
#   MIX: pintuan-abuse --mix (noread:slowloris:flood:badhello:idle, default 1:1:1:1:1)
# The abusers run at nice 10, so the storefront and the daemon come first
# on a shared machine; PIN=1 puts the daemon on CPU 0 and every client on
# CPU 1. The abusers come from 127.0.0.2-5 (250 an address: under
# max_clients_per_ip, so each kind meets its own limit); the storefront
# (8 connections, 16 requests in flight each) from 127.0.0.1.
# ABUSE_ARGS adds pintuan-abuse flags, DAEMON_ARGS pintuand flags; KEEP_LOGS=DIR
# keeps each run's daemon log there.
# Prints one JSON line per run to RESULTS (default /tmp/pt-abuse.jsonl),
# then a table of medians. Only 127.0.0.0/8 is used; every process is
# started and stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-release} ROUNDS=${2:-5} SECS=${3:-10} RATE=${4:-5000} BUDGET=${5:-64} MIX=${6:-1:1:1:1:1}
RESULTS=${RESULTS:-/tmp/pt-abuse.jsonl}
RAMP=3 # seconds of abuse before the storefront starts (its warm-up: 1 more)
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 1200 ] || { echo "abuse.sh: ulimit -n $(ulimit -n): 1,000 connections need more" >&2; exit 1; }
D=$BUILD/daemon/pintuand
tmp=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

pin_d=() pin_c=() nice_a=()
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  pin_d=(taskset -c 0) pin_c=(taskset -c 1)
fi
if [ -n "${ABUSE_NICE:-}" ]; then nice_a=(nice -n "$ABUSE_NICE"); else nice_a=(chrt -i 0); fi

# keys: the storefront's (admin: the bench creates its campaign), the abusers' (a storefront key, rate 1000/s)
"$D" --make-key shop:admin --key-out "$tmp/shop.key" >>"$tmp/keys"
"$D" --make-key abuser:storefront --key-out "$tmp/abuser.key" | sed 's/$/ rate=1000/' >>"$tmp/keys"
# (connection_rate stays off, its default: the storefront may send all of
# its 5,000/s on one connection, and anonymous Pings meet no rate)
LIMITS=(--output-budget $((BUDGET << 20)) --reply-deadline 2000 --first-request-timeout 2000
  --idle-timeout 5000 --frame-timeout 3000 ${DAEMON_ARGS:-})

# The sampler: VmRSS every 100 ms and /metrics every 250 ms, each in its
# own thread (a scrape the daemon is slow to answer must not stall the
# RSS), until STOP exists.
cat >"$tmp/sample.py" <<'PY'
import json, os, sys, threading, time, urllib.request
pid, aport, out, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
t0 = time.monotonic(); rs = []; unsent = []; conns = []; failed = [0]
def rss():
    try:
        for l in open(f"/proc/{pid}/status"):
            if l.startswith("VmRSS:"): return int(l.split()[1])
    except OSError: return None
def metric(text, name):
    for l in text.splitlines():
        if l.startswith(name + " "): return float(l.split()[1])
    return None
def scrape():
    while not os.path.exists(stop):
        t = time.monotonic() - t0
        try:
            m = urllib.request.urlopen(f"http://127.0.0.1:{aport}/metrics", timeout=2).read().decode()
            unsent.append((round(t, 2), metric(m, "pintuan_unsent_bytes"))); conns.append(metric(m, "pintuan_connections"))
        except Exception: failed[0] += 1
        time.sleep(0.25)
th = threading.Thread(target=scrape); th.start()
while not os.path.exists(stop):
    r = rss()
    if r is None: break
    rs.append((round(time.monotonic() - t0, 2), r))
    time.sleep(0.1)
th.join()
json.dump({"rss_kb": rs, "unsent": unsent, "conns_max": max(conns or [0]), "scrapes_failed": failed[0]}, open(out, "w"))
PY

counters() { # the limits' counters from /metrics, as JSON
  curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | python3 -c '
import json, re, sys
want = ("pintuan_connections_dropped_total", "pintuan_connections_refused_total", "pintuan_rate_limited_total",
        "pintuan_auth_refused_total", "pintuan_frame_errors_total", "pintuan_backpressure_pauses_total",
        "pintuan_connections_accepted_total", "pintuan_tls_failed_total", "pintuan_turn_yields_total",
        "pintuan_memory_trims_total", "pintuan_loop_busy_seconds_bucket", "pintuan_loop_busy_seconds_count")
d = {}
for l in sys.stdin:
    m = re.match(r"(\w+)(\{[^}]*\})? (\S+)", l)
    if m and m.group(1) in want: d[m.group(1) + (m.group(2) or "")] = float(m.group(3))
print(json.dumps(d))'
}

run() { # MODE ROUND
  local mode=$1 round=$2
  exec {PF}< <(exec "${pin_d[@]}" "$D" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --ready-fd 3 \
    --log-level info --keys "$tmp/keys" "${LIMITS[@]}" 3>&1 1>/dev/null 2>"$tmp/daemon.log")
  local dpid=$! port aport apid=
  PIDS+=("$dpid")
  read -r port <&$PF
  read -r aport <&$PF
  "$BUILD/clients/pintuan-cli" -a "127.0.0.1:$port" -k "$tmp/shop.key" campaign create abuse --stock 100000000 \
    --limit 0 >/dev/null
  rm -f "$tmp/stop"
  "${pin_c[@]}" python3 "$tmp/sample.py" "$dpid" "$aport" "$tmp/sample.json" "$tmp/stop" &
  local spid=$!
  if [ "$mode" = abused ]; then
    "${pin_c[@]}" "${nice_a[@]}" "$BUILD/tests/pintuan-abuse" -a "127.0.0.1:$port" -k "$tmp/abuser.key" -n 1000 \
      --sources 4 --mix "$MIX" -d $((RAMP + 1 + SECS + 2)) -j ${ABUSE_ARGS:-} >"$tmp/abuse.json" &
    apid=$!
  else
    echo '{}' >"$tmp/abuse.json"
  fi
  sleep "$RAMP"
  "${pin_c[@]}" "$BUILD/clients/pintuan-bench" -a "127.0.0.1:$port" -k "$tmp/shop.key" -s stampede -c 8 -p 16 -R "$RATE" \
    -d "$SECS" -w 1 --stock 100000000 --limit 0 --json --progress >"$tmp/bench.json" 2>"$tmp/bench.log" || true
  [ -n "$apid" ] && wait "$apid"
  sleep 1 # what the abusers left, closed
  counters "$aport" >"$tmp/counters.json"
  touch "$tmp/stop"
  wait "$spid"
  kill "$dpid"
  wait "$dpid" 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then
    cp "$tmp/daemon.log" "$KEEP_LOGS/daemon-$mode-$round.log"
    cp "$tmp/bench.log" "$KEEP_LOGS/bench-$mode-$round.log"
  fi
  python3 - "$mode" "$round" "$tmp" "$BUDGET" >>"$RESULTS" <<'PY'
import json, re, sys
mode, rnd, tmp, budget = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
# the storefront's connections (from 127.0.0.1) the daemon dropped, by reason
# (a lower bound: client events are logged 20 a second at most)
dropped = {}
for l in open(f"{tmp}/daemon.log", errors="replace"):
    m = re.search(r"client_(?:dropped|cut|refused) .*peer=127\.0\.0\.1:\d+ reason=\"([^\"]*)\"", l)
    if m:
        why = re.sub(r"\d+", "N", m.group(1))
        dropped[why] = dropped.get(why, 0) + 1
cnt = json.load(open(f"{tmp}/counters.json"))
# the daemon's loop turns (pintuan_loop_busy_seconds): how many were long, and the longest's bucket
busy = {float(k.split('"')[1]): v for k, v in cnt.items() if k.startswith("pintuan_loop_busy_seconds_bucket")}
n = cnt.pop("pintuan_loop_busy_seconds_count", 0)
for k in [k for k in cnt if k.startswith("pintuan_loop_busy_seconds_bucket")]: del cnt[k]
turns = {"count": n, "over_5ms": n - busy.get(0.005, n), "over_25ms": n - busy.get(0.025, n),
         "over_100ms": n - busy.get(0.1, n), "max_le_s": min([le for le, v in busy.items() if v >= n] or [None])}
b = json.load(open(f"{tmp}/bench.json")) if open(f"{tmp}/bench.json").read().strip() else {}
s = json.load(open(f"{tmp}/sample.json"))
rs = [r for _, r in s["rss_kb"]]
print(json.dumps({"mode": mode, "round": rnd, "budget_mib": budget,
    "p50_us": b.get("latency_us", {}).get("50"), "p99_us": b.get("latency_us", {}).get("99"),
    "p999_us": b.get("latency_us", {}).get("99.9"), "max_us": b.get("latency_us", {}).get("max"),
    "rps": b.get("throughput_rps"), "unanswered": b.get("unanswered"), "verdict": b.get("verdict", {}).get("pass"),
    "status": b.get("status"), "storefront_dropped": dropped,
    "rss_start_kb": rs[0] if rs else None, "rss_max_kb": max(rs) if rs else None, "rss_end_kb": rs[-1] if rs else None,
    "unsent_max": max([u for _, u in s["unsent"] if u is not None] or [0]), "conns_max": s["conns_max"],
    "scrapes_failed": s["scrapes_failed"], "rss_timeline": s["rss_kb"][::5],
    "counters": cnt, "turns": turns, "abuse": json.load(open(f"{tmp}/abuse.json"))}))
PY
}

: >"$RESULTS"
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; storefront -R $RATE -c 8 -p 16 -d $SECS; 1,000 abusers ($MIX);" \
  "output budget $BUDGET MiB; $ROUNDS rounds" >&2
for r in $(seq 1 "$ROUNDS"); do
  for mode in ${MODES:-baseline abused}; do
    run "$mode" "$r"
    tail -1 "$RESULTS" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["mode"], d["round"], "p50", d["p50_us"], "p99", d["p99_us"], "us; RSS max", d["rss_max_kb"]//1024, "MiB; loop turns > 25 ms", d["turns"]["over_25ms"], "longest <=", d["turns"]["max_le_s"], "s", file=sys.stderr)'
  done
done
python3 - "$RESULTS" <<'PY'
import json, statistics as st, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def col(mode, f):
    v = [f(r) for r in runs if r["mode"] == mode]
    v = [x for x in v if x is not None]
    return v
def fmt(v, scale=1, nd=0):
    if not v: return "-"
    return f"{st.median(v)/scale:,.{nd}f} ({min(v)/scale:,.{nd}f}–{max(v)/scale:,.{nd}f})"
rows = [("storefront p50, µs", lambda r: r["p50_us"], 1, 0), ("storefront p99, µs", lambda r: r["p99_us"], 1, 0),
        ("storefront p99.9, µs", lambda r: r["p999_us"], 1, 0), ("storefront max, µs", lambda r: r["max_us"], 1, 0),
        ("daemon RSS max, MiB", lambda r: r["rss_max_kb"], 1024, 0), ("daemon RSS after, MiB", lambda r: r["rss_end_kb"], 1024, 0),
        ("unsent bytes max (sampled), MiB", lambda r: r["unsent_max"], 1 << 20, 1),
        ("daemon loop turns", lambda r: r["turns"]["count"], 1, 0),
        ("of them busy > 5 ms", lambda r: r["turns"]["over_5ms"], 1, 0),
        ("of them busy > 25 ms", lambda r: r["turns"]["over_25ms"], 1, 0),
        ("of them busy > 100 ms", lambda r: r["turns"]["over_100ms"], 1, 0),
        ("longest turn, ms (bucket bound)", lambda r: r["turns"]["max_le_s"] and r["turns"]["max_le_s"] * 1000, 1, 1)]
print("| | baseline | with 1,000 abusers |")
print("|---|---|---|")
for name, f, sc, nd in rows:
    print(f"| {name} | {fmt(col('baseline', f), sc, nd)} | {fmt(col('abused', f), sc, nd)} |")
keys = sorted({k for r in runs if r["mode"] == "abused" for k in r["counters"]})
print()
print("| counter (abused runs) | median (min–max) |")
print("|---|---|")
for k in keys:
    v = [r["counters"].get(k, 0) for r in runs if r["mode"] == "abused"]
    if any(v): print(f"| `{k}` | {fmt(v)} |")
PY
