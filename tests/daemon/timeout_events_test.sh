#!/usr/bin/env bash
# Timeouts reach detection: a domain answered for two days whose lookups then go unanswered
# (each tried three times with a new id) is flagged by disappearance with fail_rcode "timeout".
#  - the matcher counts every unanswered query as a timeout;
#  - detection makes one timeout event per client and burst of retries
#    (dnsmon_detection_events_total{kind="timeout"});
#  - with count_timeouts: false the same events are made but do not count as failures.
set -euo pipefail
: "${DNSMON:?}"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

read -r queries lookups < <(PYTHONPATH="$here/lib" python3 "$here/lib/timeout_pcap.py" "$tmp/t.pcap")

run() {  # run NAME COUNT_TIMEOUTS
  cat >"$tmp/$1.yaml" <<EOF2
detection:
  enabled: true
  time: {origin: "2016-04-04T00:00:00Z"}
  memory: {base_entries: 4096, candidate_entries: 64, watch_entries: 4,
           seen_filter_entries: 4096, doorkeeper_bits: 65536}
  detectors:
    disappearance: {count_timeouts: $2}
EOF2
  "$DNSMON" -r "$tmp/t.pcap" --config "$tmp/$1.yaml" --metrics-out "$tmp/$1.prom" \
    --events-out "$tmp/$1.jsonl" --allow-root 2>"$tmp/$1.log" ||
    fail "$1: exit $?: $(tail -3 "$tmp/$1.log")"
}
metric() {  # metric NAME 'name{labels}'
  awk -v m="$2" '$1 == m { print $2 }' "$tmp/$1.prom"
}

run on true
[[ $(metric on 'dnsmon_query_matching_total{leg="unknown",result="timeout"}') == "$queries" ]] ||
  fail "matcher timeouts: $(grep 'result="timeout"' "$tmp/on.prom"), want $queries"
[[ $(metric on 'dnsmon_detection_events_total{kind="timeout"}') == "$lookups" ]] ||
  fail "timeout events $(metric on 'dnsmon_detection_events_total{kind="timeout"}'), want $lookups"
python3 - "$tmp/on.jsonl" <<'PY' || fail "no disappearance with fail_rcode timeout: $(cat "$tmp/on.jsonl")"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
hits = [e for e in events if e["detector"] == "disappearance" and e["domain"] == "vendor.example"]
assert hits and hits[0]["event"] == "transition", hits
assert hits[0]["details"]["fail_rcode"] == "timeout", hits[0]
print(f"disappearance {hits[0]['event']} of vendor.example at {hits[0]['ts']}, "
      f"fail_rcode {hits[0]['details']['fail_rcode']}")
PY

run off false
[[ $(metric off 'dnsmon_detection_events_total{kind="timeout"}') == "$lookups" ]] ||
  fail "count_timeouts false: timeout events $(metric off 'dnsmon_detection_events_total{kind="timeout"}')"
if grep -q '"disappearance"' "$tmp/off.jsonl"; then
  fail "count_timeouts false, yet: $(grep disappearance "$tmp/off.jsonl")"
fi
echo "ok: $queries unanswered queries, $lookups timeout events, one disappearance (none when not counted)"
