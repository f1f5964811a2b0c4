#!/usr/bin/env bash
# The dashboard's Detection row and the detection alert rules on Scenario A's metric snapshots,
# backfilled into a real Prometheus (loopback only, no scraping):
#  - Scenario A (tools/gen_scenario) replayed with its config sidecar and --metrics-snapshot-dir:
#    one OpenMetrics file per logical hour (4,704);
#  - a subset merged into one OpenMetrics input with job="dnsmon",instance="scenario-a" added to
#    every sample, as a scrape would (lib/merge_snapshots.py): the 12:00 file of every fourth
#    logical day, the 12:00 and 13:00 files of 2016-06-10 and 2016-09-24 (two points an hour
#    apart for the rates) and the last two files; `promtool tsdb create-blocks-from openmetrics`
#    backfills it (its time grows with the square of the number of 2 h blocks, so the subset is
#    kept to about 50 of them);
#  - Prometheus over those blocks (retention 100y) runs every expression of the Detection row
#    with the template variables resolved as Grafana resolves them, at 2016-06-10T13:00Z,
#    2016-09-24T13:00Z and the end of the replay, with $__rate_interval = 2h: each parses and
#    each returns data at one of these times at least;
#  - facts of the scenario: the covert pair hotel-promo-mailer.example scores >= 0.8 on
#    2016-09-24, the base rate without the volume gate
#    (dnsmon_detector_flagged_domains{detector="querier_concentration_any"}) is >= 1000 at the
#    end, and the expression of every alert of the detection group of monitoring/rules evaluates
#    on 2016-09-24, DnsCovertPairHigh's naming the covert domain.
# The replay takes about a minute unoptimised; under a sanitizer it would take many, so the test
# skips there.
set -euo pipefail
: "${DNSMON:?}" "${GEN_SCENARIO:?}" "${DNSMON_SOURCE_DIR:?}"
case "${DNSMON_CXX_FLAGS:-}" in
  *-fsanitize=*) echo "SKIP: the Scenario A replay runs in the dev and release presets, not under a sanitizer"; exit 77 ;;
esac
for tool in prometheus promtool curl jq python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (tools/setup.sh --test installs it)" >&2
    exit 77
  fi
done
python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml is not installed" >&2; exit 77; }
mon="$DNSMON_SOURCE_DIR/monitoring"
lib="$(dirname "$0")/lib"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do timeout 20 tail --pid="$p" -f /dev/null || kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=lib/prometheus.sh
source "$lib/prometheus.sh"
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do
    [ -s "$f" ] || continue
    echo "---- $(basename "$f") (last 20 lines) ----" >&2
    tail -n 20 "$f" >&2
  done
  exit 1
}
since() { echo "$(( $(date +%s) - $1 )) s"; }

start=$(date +%s)
"$GEN_SCENARIO" --out "$work/a.pcap" 2>"$work/gen.log" || fail "gen_scenario failed"
step=$(date +%s)
# --allow-root: run as root, dnsmon keeps root to write into this root-owned directory
# (tests/daemon/privilege_test.sh checks the switch to daemon.user).
timeout 600 "$DNSMON" -r "$work/a.pcap" --config "$work/a.dnsmon.yaml" --allow-root \
  --metrics-snapshot-dir "$work/snaps" --metrics-out "$work/m.prom" 2>"$work/replay.log" ||
  fail "the replay of Scenario A failed"
files=$(find "$work/snaps" -name 'snapshot-*.om' | wc -l)
[ "$files" -ge 4000 ] || fail "$files snapshot files, want one per logical hour (about 4,704)"
echo "ok: Scenario A generated and replayed: $files snapshot files ($(since "$step"))"

step=$(date +%s)
mapfile -t all < <(find "$work/snaps" -name 'snapshot-*.om' | sort)
picked=()
i=0
for f in "${all[@]}"; do
  case "$f" in *T120000Z.om) (( i++ % 4 == 0 )) && picked+=("$f") ;; esac
done
for d in 20160610 20160924; do
  for h in 12 13; do
    f="$work/snaps/snapshot-${d}T${h}0000Z.om"
    [ -f "$f" ] || fail "no snapshot $f"
    picked+=("$f")
  done
done
picked+=("${all[-2]}" "${all[-1]}")
mapfile -t picked < <(printf '%s\n' "${picked[@]}" | sort -u)
python3 "$lib/merge_snapshots.py" "$work/merged.om" dnsmon scenario-a "${picked[@]}" ||
  fail "merging the snapshots failed"
timeout 300 promtool tsdb create-blocks-from openmetrics -q "$work/merged.om" "$work/data" \
  >"$work/promtool.log" 2>&1 || fail "promtool did not backfill the merged snapshots"
blocks=$(find "$work/data" -mindepth 1 -maxdepth 1 -type d | wc -l)
echo "ok: ${#picked[@]} snapshots merged ($(wc -l <"$work/merged.om") lines) and backfilled" \
  "into $blocks blocks ($(since "$step"))"

# The end of the replay: the last snapshot's own timestamp (it has a fraction of a second).
end=$(awk '!/^#/ { print $NF; exit }' "${all[-1]}")
day1=2016-06-10T13:00:00Z
day2=2016-09-24T13:00:00Z

step=$(date +%s)
prom_port=$(free_port)
printf 'global: {evaluation_interval: 1m}\n' >"$work/prometheus.yml"
start_prometheus "$work/prometheus.yml" "$prom_port" --storage.tsdb.retention.time=100y
prom="http://127.0.0.1:$prom_port"
echo "ok: Prometheus ready on the backfilled blocks ($(since "$step"))"

# query EXPR TIME: the result array of an instant query (fails on an error).
query() {
  local answer
  answer=$(curl -fsS -m 30 "$prom/api/v1/query" --data-urlencode "query=$1" \
    --data-urlencode "time=$2") || fail "query $1 at $2: HTTP error"
  [ "$(jq -r .status <<<"$answer")" = success ] || fail "query $1 at $2: $answer"
  jq -c .data.result <<<"$answer"
}

python3 "$mon/tests/check_dashboard.py" detection "$mon/dashboards/dnsmon.json" --prom "$prom" \
  --rate-interval 2h --time "$day1" --time "$day2" --time "$end" ||
  fail "a Detection row expression failed or returned no data"

covert='dnsmon_domain_score{job="dnsmon",instance="scenario-a",detector="covert_pair",domain="hotel-promo-mailer.example"}'
score=$(query "$covert" "$day2" | jq -r '.[0].value[1] // "none"')
echo "$covert at $day2: $score"
awk -v s="$score" 'BEGIN { exit !(s != "none" && s + 0 >= 0.8) }' ||
  fail "the covert pair scores $score on 2016-09-24, want >= 0.8"
echo "ok: the covert pair hotel-promo-mailer.example scores $score (>= 0.8) on 2016-09-24"

base='dnsmon_detector_flagged_domains{job="dnsmon",instance="scenario-a",detector="querier_concentration_any"}'
rate=$(query "$base" "$end" | jq -r '.[0].value[1] // "none"')
echo "$base at $end: $rate"
awk -v s="$rate" 'BEGIN { exit !(s != "none" && s + 0 >= 1000) }' ||
  fail "the base rate without the volume gate is $rate at the end, want >= 1000"
echo "ok: $rate domains exclusive to a few queriers (without the volume gate) at the end (>= 1000)"

# Every alert of the detection group, its expression run as a query on 2016-09-24.
alerts=0
while IFS=$'\t' read -r name expr; do
  result=$(query "$expr" "$day2")
  n=$(jq length <<<"$result")
  first=$(jq -r '.[0] | if . then "\(.metric.domain // .metric.instance // "") \(.value[1])" else "-" end' <<<"$result")
  echo "alert $name: $n series, first: $first"
  if [ "$name" = DnsCovertPairHigh ]; then
    jq -e 'any(.[]; .metric.domain == "hotel-promo-mailer.example")' <<<"$result" >/dev/null ||
      fail "DnsCovertPairHigh's expression does not name hotel-promo-mailer.example on 2016-09-24: $result"
  fi
  alerts=$((alerts + 1))
done < <(python3 -c '
import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        if "alert" in r:
            print(r["alert"] + "\t" + " ".join(r["expr"].split()))
' "$mon/rules/dnsmon-detection.yml")
[ "$alerts" -ge 5 ] || fail "only $alerts alerts read from monitoring/rules/dnsmon-detection.yml"
echo "ok: the expressions of the $alerts detection alerts evaluate on 2016-09-24;" \
  "DnsCovertPairHigh names hotel-promo-mailer.example"
echo "ok: took $(since "$start")"
