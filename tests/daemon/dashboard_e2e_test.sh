#!/usr/bin/env bash
# The Grafana dashboard against a real Prometheus (loopback only, 1 s scrape, the rules of
# monitoring/rules loaded) that scrapes two dnsmon instances, each replaying a different generated
# capture in real time and serving its final metrics afterwards (--serve-after-replay). Every
# expression of the dashboard runs through Prometheus' HTTP API with the template variables
# resolved as Grafana resolves them, once for one instance and once for all: each must parse,
# each outside the Detection row must return data, and each summed counter must equal the sum of
# the instances' own /metrics. The Detection row's expressions must parse; their data is checked
# by dashboard_detection_test.sh on Scenario A's backfilled metric snapshots (a few seconds of
# replay hold no detection). Every loaded rule must evaluate without error.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}" "${DNSMON_SOURCE_DIR:?}"
for tool in prometheus promtool curl jq python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (tools/setup.sh --test installs it)" >&2
    exit 77
  fi
done
mon="$DNSMON_SOURCE_DIR/monitoring"
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
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do
    echo "---- $(basename "$f") (last 20 lines) ----" >&2
    tail -n 20 "$f" >&2
  done
  exit 1
}

start=$(date +%s)
# Two different captures of the benchmark mix, 5 s and 4 s of packet time.
"$GEN_PCAP" --profile bench --out "$work/a.pcap" --packets 3000 --rate 600 --seed 31 2>/dev/null
"$GEN_PCAP" --profile bench --out "$work/b.pcap" --packets 2400 --rate 600 --seed 32 \
  --servfail 5 --tcp 10 --ipv6 30 2>/dev/null

port_a=$(free_port)
port_b=$(free_port)
prom_port=$(free_port)
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ['$mon/rules/dnsmon-health.yml', '$mon/rules/dnsmon-detection.yml']
scrape_configs:
  - job_name: dnsmon
    static_configs: [{targets: ['127.0.0.1:$port_a', '127.0.0.1:$port_b']}]
YAML
start_prometheus "$work/prometheus.yml" "$prom_port"
prom="http://127.0.0.1:$prom_port"

# Prometheus takes its static targets a few seconds after it starts: wait until it has tried to
# scrape both (they are down until dnsmon listens), so that the replays are scraped from their start.
tried=0
for _ in $(seq 150); do
  tried=$(curl -fsS "$prom/api/v1/targets" |
    jq '[.data.activeTargets[] | select(.lastScrape | startswith("0001") | not)] | length')
  [ "$tried" = 2 ] && break
  sleep 0.1
done
[ "$tried" = 2 ] || fail "Prometheus did not try its two targets within 15 s"

replay_start=$(date +%s)
"$DNSMON" -r "$work/a.pcap" --replay-speed 1 --serve-after-replay --listen "127.0.0.1:$port_a" \
  2>"$work/dnsmon-a.log" &
pid_a=$!
pids+=("$pid_a")
"$DNSMON" -r "$work/b.pcap" --replay-speed 1 --serve-after-replay --listen "127.0.0.1:$port_b" \
  2>"$work/dnsmon-b.log" &
pid_b=$!
pids+=("$pid_b")

# Both replays end (about 5 s) and keep serving.
for _ in $(seq 300); do
  grep -q "replay finished" "$work/dnsmon-a.log" && grep -q "replay finished" "$work/dnsmon-b.log" &&
    break
  kill -0 "$pid_a" 2>/dev/null || fail "dnsmon a exited during its replay"
  kill -0 "$pid_b" 2>/dev/null || fail "dnsmon b exited during its replay"
  sleep 0.1
done
if ! grep -q "replay finished" "$work/dnsmon-a.log" || ! grep -q "replay finished" "$work/dnsmon-b.log"; then
  fail "the replays did not finish within 30 s"
fi
curl -fsS "http://127.0.0.1:$port_a/metrics" >"$work/a.metrics"
curl -fsS "http://127.0.0.1:$port_b/metrics" >"$work/b.metrics"

finished=$(date +%s.%3N)

# Prometheus has scraped both after the end of their replays (up to 15 s): a scrape during the
# replay's last moments may hold the final frame count but not yet the final matching counts.
scraped=""
for _ in $(seq 150); do
  scraped=$(curl -fsS "$prom/api/v1/query" --data-urlencode \
    "query=count(timestamp(dnsmon_build_info{job=\"dnsmon\"}) > $finished)" |
    jq -r '.data.result[0].value[1] // "0"')
  [ "$scraped" = 2 ] && break
  sleep 0.1
done
[ "$scraped" = 2 ] || fail "Prometheus did not scrape both instances after their replays within 15 s"
want=$(awk '/^dnsmon_packets_total\{/ { s += $2 } END { printf "%.0f", s }' "$work"/[ab].metrics)
got=$(curl -fsS "$prom/api/v1/query" --data-urlencode 'query=sum(dnsmon_packets_total)' |
  jq -r '.data.result[0].value[1] // ""')
[ "$got" = "$want" ] || fail "Prometheus has $got frames in sum(dnsmon_packets_total), the instances $want"
echo "ok: both replays finished and still serve; Prometheus has their final numbers ($want frames)"

# Grafana would use $__rate_interval; a window over the whole replay shows what a viewer saw
# while it ran (a window after the end holds only flat counters).
# The query time is after the final sample (a whole second could fall just before it).
now=$(date +%s.%3N)
interval="$(( ${now%.*} - replay_start + 3 ))s"
check=(python3 "$mon/tests/check_dashboard.py" queries "$mon/dashboards/dnsmon.json"
  --prom "$prom" --time "$now" --rate-interval "$interval"
  --instance "127.0.0.1:$port_a=$work/a.metrics" --instance "127.0.0.1:$port_b=$work/b.metrics")
"${check[@]}" --scope one
"${check[@]}" --scope all
echo "NOTE: the Detection row's expressions were only parsed here: dashboard_detection_test.sh" \
  "checks their data on Scenario A's backfilled metric snapshots"

# Every rule of monitoring/rules is loaded and evaluates without error.
curl -fsS "$prom/api/v1/rules" >"$work/rules.json"
loaded=$(jq '[.data.groups[].rules[]] | length' "$work/rules.json")
bad=$(jq -c '[.data.groups[].rules[] | select(.health != "ok") | {name, lastError}]' "$work/rules.json")
expected=$(grep -hcE '^\s+- (alert|record):' "$mon"/rules/*.yml | awk '{ s += $1 } END { print s }')
[ "$loaded" = "$expected" ] || fail "Prometheus loaded $loaded rules, monitoring/rules has $expected"
[ "$bad" = "[]" ] || fail "rules that failed to evaluate: $bad"
echo "ok: Prometheus loaded the $loaded rules of monitoring/rules and evaluates each without error"

for p in "$pid_a" "$pid_b"; do
  kill -TERM "$p"
  rc=0
  timeout 10 tail --pid="$p" -f /dev/null || fail "dnsmon $p did not stop within 10 s of SIGTERM"
  wait "$p" || rc=$?
  [ "$rc" = 0 ] || fail "dnsmon $p exited with status $rc after SIGTERM"
done
pids=("${pids[@]:0:1}")
echo "ok: both instances stopped on SIGTERM with status 0; took $(( $(date +%s) - start )) s"
