#!/usr/bin/env bash
# A real Prometheus (loopback only, 1 s scrape) scrapes dnsmon while it replays a generated capture
# in real time; through Prometheus' HTTP API the rates it computes must agree with what the
# generator wrote, and every series must pass promtool.
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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
dnsmon_port=$(free_port)
prom_port=$(free_port)

# 30 s of traffic at 400 frames/s: 200 queries/s and their 200 responses.
rate=400
frames=12000
"$GEN_PCAP" --out "$work/traffic.pcap" --packets "$frames" --rate "$rate" --seed 11 2>/dev/null

cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: dnsmon
    static_configs: [{targets: ['127.0.0.1:$dnsmon_port']}]
YAML
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn 2>"$work/prometheus.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$prom_port/-/ready" >/dev/null || {
  cat "$work/prometheus.log" >&2; echo "FAIL: Prometheus did not start" >&2; exit 1; }

start=$(date +%s)
"$DNSMON" -r "$work/traffic.pcap" --replay-speed 1 --listen "127.0.0.1:$dnsmon_port" \
  --metrics-out "$work/final.txt" --log-level warn 2>"$work/dnsmon.log" &
dnsmon_pid=$!
pids+=("$dnsmon_pid")

query() {  # instant query at time $2; prints the first value
  curl -fsS "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
    --data-urlencode "time=$2" | jq -r '.data.result[0].value[1] // "none"'
}

# Let the replay run and be scraped; then read back while it still runs.
sleep 20
mid=$(( $(date +%s) - 2 ))
up=$(query 'up{job="dnsmon"}' "$mid")
q_rate=$(query 'sum(rate(dnsmon_queries_total[10s]))' "$mid")
r_rate=$(query 'sum(rate(dnsmon_responses_total[10s]))' "$mid")
p_rate=$(query 'sum(rate(dnsmon_packets_total{result="ok"}[10s]))' "$mid")
drops=$(query 'sum(dnsmon_capture_dropped_total)' "$mid")
m_rate=$(query 'sum(rate(dnsmon_query_matching_total{result="matched"}[10s]))' "$mid")
p50=$(query 'histogram_quantile(0.5, sum by (le) (rate(dnsmon_response_latency_seconds_bucket[10s])))' "$mid")
echo "up=$up queries/s=$q_rate responses/s=$r_rate ok frames/s=$p_rate drops=$drops"
echo "matched/s=$m_rate median latency=$p50 s (the generator answers every query 1/$rate s later)"
echo "expected: queries/s=$((rate / 2)) responses/s=$((rate / 2)) frames/s=$rate (within 10 %)"

wait "$dnsmon_pid"
pids=("${pids[@]:0:1}")
promtool check metrics <"$work/final.txt"

python3 - "$up" "$q_rate" "$r_rate" "$p_rate" "$drops" "$rate" "$m_rate" "$p50" <<'PY'
import sys
up, q, r, p, drops, rate, matched, p50 = sys.argv[1:9]
rate = float(rate)
problems = []
if matched == "none" or abs(float(matched) - rate / 2) > 0.10 * rate / 2:
    problems.append(f"matched/s is {matched}, expected {rate / 2:g} +/- 10 %")
# Every latency is 1/rate = 2.5 ms, which falls in the (1 ms, 2.5 ms] bucket: the quantile must
# interpolate inside it.
if p50 == "none" or not 0.001 <= float(p50) <= 0.0025:
    problems.append(f"median latency {p50} s is outside the (0.001, 0.0025] s bucket")
if up != "1":
    problems.append(f"up is {up}, not 1")
for name, got, want in (("queries", q, rate / 2), ("responses", r, rate / 2), ("frames", p, rate)):
    if got == "none" or abs(float(got) - want) > 0.10 * want:
        problems.append(f"{name}/s is {got}, expected {want:g} +/- 10 %")
if drops == "none" or float(drops) != 0:
    problems.append(f"drops: {drops}")
if problems:
    sys.exit("FAIL: " + "; ".join(problems))
print("ok: Prometheus' rates agree with the generator")
PY
echo "took $(( $(date +%s) - start )) s"
