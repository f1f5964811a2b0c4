#!/usr/bin/env bash
# A real Prometheus (loopback only, 1 s scrape) scrapes dnsmon while it replays a generated capture
# in real time: the benchmark mix (Poisson arrivals, Zipf names over 20,000 domains and clients
# over 5,000 hosts, cache-hit and cache-miss latencies) at 400 frames/s for 30 s. Through
# Prometheus' HTTP API, rate() of the counters, histogram_quantile() of the latency and the top-N
# and distinct gauges must agree with the generator's ground truth (--truth) within the
# tolerances stated below; the final exposition must agree with it too, and pass promtool.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}"
for tool in prometheus promtool curl jq python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (tools/setup.sh --test installs it)" >&2
    exit 77
  fi
done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=lib/prometheus.sh
source "$(dirname "$0")/lib/prometheus.sh"
dnsmon_port=$(free_port)
prom_port=$(free_port)

# 30 s of the benchmark mix at 400 frames/s.
rate=400
frames=12000
"$GEN_PCAP" --profile bench --out "$work/traffic.pcap" --packets "$frames" --rate "$rate" \
  --seed 11 --truth "$work/truth.json" 2>/dev/null

cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: dnsmon
    static_configs: [{targets: ['127.0.0.1:$dnsmon_port']}]
YAML
start_prometheus "$work/prometheus.yml" "$prom_port"

start=$(date +%s)
"$DNSMON" -r "$work/traffic.pcap" --replay-speed 1 --listen "127.0.0.1:$dnsmon_port" \
  --metrics-out "$work/final.txt" --log-level warn 2>"$work/dnsmon.log" &
dnsmon_pid=$!
pids+=("$dnsmon_pid")

query() {  # instant query at time $2: the whole JSON result vector
  curl -fsS "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
    --data-urlencode "time=$2" | jq -c '.data.result'
}

# Let the replay run and be scraped; read rates back while it still runs.
sleep 20
mid=$(( $(date +%s) - 2 ))
{
  echo "up $(query 'up{job="dnsmon"}' "$mid")"
  echo "queries $(query 'sum(rate(dnsmon_queries_total[10s]))' "$mid")"
  echo "responses $(query 'sum(rate(dnsmon_responses_total[10s]))' "$mid")"
  echo "matched $(query 'sum(rate(dnsmon_query_matching_total{result="matched"}[10s]))' "$mid")"
  echo "drops $(query 'sum(dnsmon_capture_dropped_total)' "$mid")"
} >"$work/mid.txt"

wait "$dnsmon_pid"
pids=("${pids[@]:0:1}")
sleep 2  # one more evaluation after the last scrape
end=$(date +%s)
# The gauges as of the last scrape (a query at a later time would see them gone stale, and
# last_over_time() would also return names that left the top-N earlier in the run).
last=$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "time=$end" \
  --data-urlencode 'query=max_over_time(timestamp(dnsmon_build_info{job="dnsmon"})[1m:1s])' |
  jq -r '.data.result[0].value[1]')
# Over the whole run; the last scrape came at most a second before dnsmon ended.
{
  for q in 0.5 0.9 0.99; do
    echo "p$q $(query "histogram_quantile($q, sum by (le) (increase(dnsmon_response_latency_seconds_bucket[5m])))" "$end")"
  done
  for w in 1m 1h; do
    for t in domain qname client; do
      echo "top_${t}_$w $(query "dnsmon_window_top_${t}_queries{window=\"$w\"}" "$last")"
    done
    for t in clients qnames domains; do
      echo "distinct_${t}_$w $(query "dnsmon_window_distinct_${t}{window=\"$w\"}" "$last")"
    done
  done
} >"$work/end.txt"
promtool check metrics <"$work/final.txt"

python3 - "$work" "$rate" "$frames" <<'PY'
import json, math, re, sys

work, rate, frames = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
truth = json.load(open(f"{work}/truth.json"))
duration = frames / rate  # Poisson arrivals at `rate` frames/s
problems = []


def results(path):
    out = {}
    for line in open(path):
        key, _, rest = line.strip().partition(" ")
        out[key] = json.loads(rest) if rest else []
    return out


def scalar(res):
    return float(res[0]["value"][1]) if res else math.nan


mid, end = results(f"{work}/mid.txt"), results(f"{work}/end.txt")
print("Prometheus, mid-run (rate over 10 s):",
      {k: scalar(v) for k, v in mid.items()})

# Rates: Poisson arrivals, about 1,900 queries in 10 s: +/- 15 % is over 6 standard deviations.
if scalar(mid["up"]) != 1:
    problems.append("up is not 1")
for key, total in (("queries", truth["messages"]["queries"]),
                   ("responses", truth["messages"]["responses"]),
                   ("matched", truth["latency"]["count"])):
    want, got = total / duration, scalar(mid[key])
    if not abs(got - want) <= 0.15 * want:
        problems.append(f"{key}/s is {got:.1f}, expected {want:.1f} +/- 15 %")
if scalar(mid["drops"]) != 0:
    problems.append("capture drops")

# Latency quantiles over the whole run: histogram_quantile() interpolates inside the bucket that
# holds the quantile of the counts Prometheus has (increase() over its scrapes, which may differ
# from the capture's by a few responses at the edges of the run). The estimate must fall in the
# bucket holding the true quantile or in a neighbour (a true value next to a bound may move by one
# bucket), and within 25 % of the truth.
bounds = [b for b, _ in truth["latency"]["buckets"] if b != "+Inf"]
for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
    true_q = truth["latency"][name]
    i = next(i for i, b in enumerate(bounds) if true_q <= b)
    lo = 0.0 if i < 2 else bounds[i - 2]
    hi = bounds[min(i + 1, len(bounds) - 1)]
    got = scalar(end[f"p{q}"])
    print(f"latency {name}: true {true_q:.6f} s, Prometheus {got:.6f} s (allowed ({lo}, {hi}])")
    if not (lo <= got <= hi and abs(got - true_q) <= 0.25 * true_q):
        problems.append(f"histogram_quantile({q}) = {got}: not within one bucket and 25 % of {true_q}")

# Top-N and distinct gauges as Prometheus last saw them. The last scrape may miss the final ~2 s
# of the 30 s replay (scrape interval plus the one-second publication), so counts may be short by
# 10 %; Space-Saving may overcount by total/256 = 22 here.
tops = {"domain": {d["domain"]: d["queries"] for d in truth["top_domains"]},
        "qname": {d["qname"]: d["queries"] for d in truth["top_qnames"]},
        "client": dict(truth["top_clients"])}
for w in ("1m", "1h"):
    for table, label in (("domain", "domain"), ("qname", "qname"), ("client", "client")):
        got = {r["metric"][label]: float(r["value"][1]) for r in end[f"top_{table}_{w}"]}
        best, best_n = max(tops[table].items(), key=lambda kv: kv[1])
        print(f"window {w} top {table}: {best} true {best_n}, Prometheus {got.get(best)}")
        if best not in got:
            problems.append(f"window {w}: the top {table} {best} is not in Prometheus' top-N")
        elif not 0.9 * best_n <= got[best] <= best_n + 22:
            problems.append(f"window {w}: {best} has {got[best]}, true {best_n}")
        if len(got) > 10:
            problems.append(f"window {w}: {len(got)} series in top {table}, more than 10")
    for kind in ("clients", "qnames", "domains"):
        true_n, got = truth["distinct"][kind], scalar(end[f"distinct_{kind}_{w}"])
        print(f"window {w} distinct {kind}: true {true_n}, Prometheus {got:.0f}")
        if not 0.88 * true_n <= got <= 1.03 * true_n:
            problems.append(f"window {w}: distinct {kind} {got}, true {true_n} (-12 %/+3 %)")

# The final exposition holds everything: Space-Saving's bounds hold exactly (true <= reported <=
# true + overcount), HyperLogLog within 3 % (3.7 standard errors at p = 14), and the latency
# histogram equals the generator's, bucket by bucket.
text = open(f"{work}/final.txt").read()
sample = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$', re.M)
final = [(m[1], dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m[2])), float(m[3]))
         for m in sample.finditer(text)]


def pick(name, **labels):
    return [(l, v) for n, l, v in final if n == name and all(l.get(k) == x for k, x in labels.items())]


overcount = {l["table"]: v for l, v in pick("dnsmon_window_top_overcount", window="1h")}
checks = (("dnsmon_window_top_domain_queries", "domain", "domain", truth["top_domains"], "domain"),
          ("dnsmon_window_top_qname_queries", "qname", "qname", truth["top_qnames"], "qname"),
          ("dnsmon_window_top_client_queries", "client", "client", truth["top_clients"], None),
          ("dnsmon_window_top_nxdomain_responses", "qname", "nxdomain", truth["top_nxdomain"], None),
          ("dnsmon_window_top_servfail_responses", "qname", "servfail", truth["top_servfail"], None))
for metric, label, table, top20, key in checks:
    counts = {e[key]: e["queries"] for e in top20} if key else dict(top20)
    floor = min(counts.values())  # a name outside the true top 20 has at most this
    reported = pick(metric, window="1h")
    if not reported:
        problems.append(f"final: no {metric}")
    for labels, value in reported:
        name = labels[label]
        true_n = counts.get(name)
        ok = (true_n <= value <= true_n + overcount[table]) if true_n is not None else \
            value - overcount[table] <= floor
        if not ok:
            problems.append(f"final {metric} {name}={value}: true {true_n}, bound {overcount[table]}")
    best = max(counts.items(), key=lambda kv: kv[1])
    if best[1] > overcount[table] and best[0] not in {l[label] for l, _ in reported}:
        problems.append(f"final {metric}: the true top {best[0]} is missing")
for kind in ("clients", "qnames", "domains"):
    (_, got), = pick(f"dnsmon_window_distinct_{kind}", window="1h")
    true_n = truth["distinct"][kind]
    if abs(got - true_n) > 0.03 * true_n:
        problems.append(f"final distinct {kind} {got}, true {true_n} (+/- 3 %)")
buckets = {}
for labels, value in pick("dnsmon_response_latency_seconds_bucket"):
    buckets[labels["le"]] = buckets.get(labels["le"], 0) + value
for bound, cumulative in truth["latency"]["buckets"]:
    le = "+Inf" if bound == "+Inf" else f"{bound:g}"
    if buckets.get(le) != cumulative:
        problems.append(f"final latency bucket le={le}: {buckets.get(le)}, true {cumulative}")

if problems:
    sys.exit("FAIL: " + "\n  ".join(problems))
print("ok: Prometheus and the final exposition agree with the generator")
PY
echo "took $(( $(date +%s) - start )) s"
