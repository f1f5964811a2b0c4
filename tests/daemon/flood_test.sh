#!/usr/bin/env bash
# A random-subdomain flood: 11,200,000 frames, 90 % of them queries for distinct names under one
# registrable domain (10,080,000 names, left unanswered as in a real water-torture attack on a
# slow authority) from 100,000 clients, the rest ordinary traffic.
# The generator streams into dnsmon through a pipe (nothing on disk) while the test scrapes
# /metrics every second and samples dnsmon's resident memory. dnsmon must keep its RSS flat after
# warm-up and under the analytics budget, keep the flooded domain on top of every window, and
# count the distinct names within HyperLogLog's error.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}"
frames=${FLOOD_FRAMES:-11200000}
work=$(mktemp -d)
dnsmon_pid=""
cleanup() {
  [[ -n "$dnsmon_pid" ]] && kill -TERM "$dnsmon_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s)
"$GEN_PCAP" --profile flood --packets "$frames" --clients 100000 --nxdomain 0 --out - \
  --truth "$work/truth.json" 2>"$work/gen.log" |
  "$DNSMON" -r - --listen "127.0.0.1:$port" --metrics-out "$work/final.txt" --log-level warn \
    2>"$work/dnsmon.log" &
dnsmon_pid=$!

# One sample per half second: seconds since start, RSS in KiB. Scrape once a second meanwhile.
n=0
while kill -0 "$dnsmon_pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$dnsmon_pid/status" 2>/dev/null || true)
  [[ -n "$rss" ]] && echo "$(( $(date +%s%N) / 1000000 )) $rss" >>"$work/rss.txt"
  if (( n++ % 2 == 0 )); then
    curl -fsS "http://127.0.0.1:$port/metrics" -o /dev/null 2>/dev/null || true
  fi
  sleep 0.5
done
wait "$dnsmon_pid" || { cat "$work/dnsmon.log" >&2; echo "FAIL: dnsmon failed" >&2; exit 1; }
dnsmon_pid=""
echo "replayed $frames frames in $(( $(date +%s) - start )) s"

python3 - "$work" <<'PY'
import json, re, sys

work = sys.argv[1]
truth = json.load(open(f"{work}/truth.json"))
text = open(f"{work}/final.txt").read()
problems = []


def samples(name):
    return [(dict(re.findall(r'(\w+)="([^"]*)"', m[1] or "")), float(m[2]))
            for m in re.finditer(r'^' + name + r'(?:\{([^}]*)\})? (\S+)$', text, re.M)]


flood = truth["top_domains"][0]["domain"]
for window in ("1m", "5m", "1h"):
    top = [(v, l["domain"]) for l, v in samples("dnsmon_window_top_domain_queries")
           if l["window"] == window]
    best = max(top)[1] if top else None
    print(f"window {window}: top domain {best} ({max(top)[0]:.0f} queries)")
    if best != flood:
        problems.append(f"window {window}: the top domain is {best}, not {flood}")
true_qnames = truth["distinct"]["qnames"]
if "FLOOD_FRAMES" not in __import__("os").environ and true_qnames < 10_000_000:
    problems.append(f"the generator wrote only {true_qnames} distinct names, not 10 million")
(_, est), = [s for s in samples("dnsmon_window_distinct_qnames") if s[0]["window"] == "1h"]
print(f"distinct qnames: {est:.0f}, true {true_qnames}")
if abs(est - true_qnames) > 0.03 * true_qnames:
    problems.append(f"distinct qnames {est:.0f} not within 3 % of {true_qnames}")

budget = samples("dnsmon_analytics_memory_budget_bytes")[0][1]
tables = sum(v for _, v in samples("dnsmon_memory_bytes"))
print(f"bounded tables: {tables / 2**20:.1f} MiB, analytics budget {budget / 2**20:.0f} MiB")

rss = [tuple(map(int, line.split())) for line in open(f"{work}/rss.txt")]
if len(rss) < 8:
    sys.exit(f"FAIL: only {len(rss)} RSS samples; the run was too short to judge")
# Warm-up: the first fifth of the run (tables fill, rings and allocator pools reach size).
warm = rss[len(rss) // 5][1]
after = [kib for _, kib in rss[len(rss) // 5:]]
peak = max(kib for _, kib in rss)
print(f"RSS: {len(rss)} samples, {warm / 1024:.1f} MiB after warm-up, "
      f"{max(after) / 1024:.1f} MiB at most after it, peak {peak / 1024:.1f} MiB")
if max(after) - warm > 4 * 1024:
    problems.append(f"RSS grew by {(max(after) - warm) / 1024:.1f} MiB after warm-up")
if peak * 1024 > budget:
    problems.append(f"peak RSS {peak / 1024:.1f} MiB is over the {budget / 2**20:.0f} MiB budget")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print("ok: flat memory, the flooded domain on top, distinct names counted")
PY
