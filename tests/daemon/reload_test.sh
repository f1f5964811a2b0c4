#!/usr/bin/env bash
# SIGHUP under traffic: a valid change of live keys (analytics.top_n, log.level, and detection's
# disappearance threshold and watchlist) takes effect at once, a change that needs a restart
# (analytics.top_capacity, detection.memory.candidate_entries) is named in a warning and keeps its
# running value, a file that does not load and an org map that does not load keep the running
# configuration, a valid org map is taken; counters and the detection tables are never reset, no
# frame is lost, and dnsmon_config_reloads_total{result} counts each outcome.
#
# Env (set by ctest): DNSMON, GEN_PCAP.
set -euo pipefail
: "${DNSMON:?set DNSMON to the dnsmon binary}"
: "${GEN_PCAP:?set GEN_PCAP to the gen_pcap tool}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnsmon-reload-test.XXXXXX")
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

# 12 s of traffic in packet time, replayed in real time: 24,000 frames at 2,000 per second.
frames=24000
"$GEN_PCAP" --out "$tmp/traffic.pcap" --packets "$frames" --rate 2000 >"$tmp/gen.log" 2>&1 ||
  { cat "$tmp/gen.log"; echo "FAIL: gen_pcap"; exit 1; }

cfg=$tmp/dnsmon.yaml
# Detection on small tables, a logical day per second of packet time (a day boundary publishes
# the per-domain series every second), no hold of series that leave the export.
write_config() {  # top_n top_capacity level watchlist min_failures candidate_entries org_map_file
  printf 'analytics:\n  top_n: %s\n  top_capacity: %s\nlog:\n  level: %s\n' "$1" "$2" "$3" >"$cfg"
  cat >>"$cfg" <<EOF
detection:
  enabled: true
  time:
    compression: 86400
  clients:
    org_map_file: "$7"
  memory:
    base_entries: 4096
    candidate_entries: $6
    watch_entries: 8
    seen_filter_entries: 4096
    doorkeeper_bits: 65536
  detectors:
    disappearance:
      min_failures: $5
  export:
    hold_seconds: 0
    watchlist: $4
EOF
}
# No disappearance event (a threshold never met), nothing watched.
write_config 3 256 info '[]' 1048576 64 ''

# --allow-root: run as root, dnsmon keeps root to read the config in this root-owned directory
# again (privilege_test.sh checks a reload after the switch to daemon.user).
"$DNSMON" --config "$cfg" -r "$tmp/traffic.pcap" --replay-speed 1 --listen 127.0.0.1:0 \
  --metrics-out "$tmp/final.prom" --events-out "$tmp/events.jsonl" --allow-root 2>"$tmp/log" &
pid=$!

url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://[^ ]*/metrics' "$tmp/log" | head -1 || true)
  [[ -n $url ]] && break
  sleep 0.1
done
[[ -n $url ]] || { cat "$tmp/log"; echo "FAIL: dnsmon did not say where it serves"; exit 1; }

scrape() { curl -fsS --max-time 5 "$url"; }
queries() { awk '/^dnsmon_queries_total/ {s += $2} END {print s + 0}'; }
# The most top-N question-name series any window has (the capture has a dozen names).
top_series() {
  awk '/^dnsmon_window_top_qname_queries\{/ {match($0, /window="[^"]*"/); n[substr($0, RSTART, RLENGTH)]++}
       END {m = 0; for (w in n) if (n[w] > m) m = n[w]; print m}'
}
sample() { awk -v name="$1" '$1 == name {print $2}'; }
# Detector events of one detector, every severity.
detector_events() {
  awk -v d="detector=\"$1\"" '/^dnsmon_detector_events_total\{/ && index($0, d) {s += $2} END {print s + 0}'
}
# Whether example.org has per-domain series (it is never flagged here: only watched, it is exported).
org_exported() { grep -q '^dnsmon_domain_events{domain="example.org",window="1d"}'; }
base_entries() { sample 'dnsmon_domain_table_entries{tier="base"}'; }

sleep 2
scrape >"$tmp/m1"
q1=$(queries <"$tmp/m1")
t1=$(top_series <"$tmp/m1")
[[ $t1 == 3 ]] && ok "before the reload: 3 top qnames per window" ||
  fail "before the reload: $t1 top qname series per window, expected 3"
org_exported <"$tmp/m1" && fail "example.org exported before it is watched" ||
  ok "before the reload: example.org not exported"
[[ $(detector_events disappearance <"$tmp/m1") == 0 ]] &&
  ok "before the reload: no disappearance event" || fail "disappearance fired under its first threshold"
e1=$(base_entries <"$tmp/m1")

# A valid change: top_n, the log level, detection's threshold and watchlist are live; top_capacity
# and a detection table size need a restart.
write_config 5 512 debug '[example.org]' 3 128 ''
kill -HUP "$pid"
for _ in $(seq 50); do  # the watched domain is published at the next logical day boundary
  sleep 0.1
  scrape >"$tmp/m2"
  org_exported <"$tmp/m2" && break
done
sleep 0.5
scrape >"$tmp/m2"
q2=$(queries <"$tmp/m2")
t2=$(top_series <"$tmp/m2")
[[ $t2 == 5 ]] && ok "after the reload: 5 top qnames per window" ||
  fail "after the reload: $t2 top qname series per window, expected 5"
org_exported <"$tmp/m2" && ok "after the reload: the watched example.org is exported" ||
  fail "example.org not exported after it joined the watchlist"
e2=$(base_entries <"$tmp/m2")
awk -v a="$e1" -v b="$e2" 'BEGIN {exit !(a > 0 && b >= a)}' &&
  ok "the detection tables kept their entries ($e1 -> $e2 base entries)" ||
  fail "base entries went from $e1 to $e2 across the reload"
grep -q 'reload: applied analytics.top_n 3 -> 5, detection.detectors.disappearance.min_failures 1048576 -> 3, detection.export.watchlist \[\] -> \[example.org\], log.level info -> debug' "$tmp/log" &&
  ok "the log names what was applied, detection keys included" ||
  fail "no 'applied' line for top_n, the detection keys and log.level"
grep -q 'need a restart and keep their running values: analytics.top_capacity 256 -> 512, detection.memory.candidate_entries 64 -> 128$' "$tmp/log" &&
  ok "the restart-only changes are named and kept, no live detection key among them" ||
  fail "no warning naming exactly analytics.top_capacity and detection.memory.candidate_entries"
[[ $(sample 'dnsmon_domain_table_capacity_entries{tier="candidate"}' <"$tmp/m2") == 64 ]] &&
  ok "the candidate tier keeps its running size" || fail "the candidate tier was resized"
[[ $(sample 'dnsmon_config_reloads_total{result="success"}' <"$tmp/m2") == 1 ]] &&
  ok "dnsmon_config_reloads_total{result=\"success\"} 1" || fail "success reloads not counted"
awk -v a="$q1" -v b="$q2" 'BEGIN {exit !(b > a && a > 0)}' &&
  ok "queries kept counting across the reload ($q1 -> $q2)" ||
  fail "queries went from $q1 to $q2 across the reload"

# A file that does not load: the running configuration stays (still 5 per window).
printf 'analytics:\n  top_n: [oops\n' >"$cfg"
kill -HUP "$pid"
sleep 1.5
scrape >"$tmp/m3"
q3=$(queries <"$tmp/m3")
grep -q 'reload: .*the running configuration stays' "$tmp/log" &&
  ok "a bad file is refused with its reason" || fail "no error line for the bad file"
[[ $(sample 'dnsmon_config_reloads_total{result="failure"}' <"$tmp/m3") == 1 ]] &&
  ok "dnsmon_config_reloads_total{result=\"failure\"} 1" || fail "failed reload not counted"
[[ $(top_series <"$tmp/m3") == 5 ]] && ok "the running configuration is still in force" ||
  fail "top_n changed after a failed reload: $(top_series <"$tmp/m3") series"
awk -v a="$q2" -v b="$q3" 'BEGIN {exit !(b > a)}' && ok "queries still counting ($q2 -> $q3)" ||
  fail "queries went from $q2 to $q3 after the failed reload"

# A detection section that does not load (its org map is missing): the whole reload is refused,
# top_n and the watchlist stay.
write_config 7 512 debug '[]' 3 128 "$tmp/missing-orgs.txt"
kill -HUP "$pid"
sleep 1.5
scrape >"$tmp/m4"
grep -q "reload: $cfg:[0-9]*:[0-9]*: detection.clients.org_map_file: .*missing-orgs.txt.*; the running configuration stays" "$tmp/log" &&
  ok "a missing org map refuses the reload, located in the file" ||
  fail "no error line for the missing org map"
[[ $(sample 'dnsmon_config_reloads_total{result="failure"}' <"$tmp/m4") == 2 ]] &&
  ok "dnsmon_config_reloads_total{result=\"failure\"} 2" || fail "the refused org map not counted"
[[ $(top_series <"$tmp/m4") == 5 ]] && org_exported <"$tmp/m4" &&
  ok "top_n and the watchlist are still the running ones" ||
  fail "a refused reload changed top_n or the watchlist"
[[ $(detector_events disappearance <"$tmp/m4") -gt 0 ]] &&
  ok "disappearance fires under the reloaded threshold" ||
  fail "no disappearance event since min_failures went to 3"

# A valid org map: taken.
printf '203.0.113.0/24 Example Org\n' >"$tmp/orgs.txt"
write_config 5 512 debug '[example.org]' 3 128 "$tmp/orgs.txt"
kill -HUP "$pid"
sleep 1.5
scrape >"$tmp/m5"
grep -q "reload: applied detection.clients.org_map_file \"\" -> \"$tmp/orgs.txt\", the organisations of $tmp/orgs.txt (1 prefixes)" "$tmp/log" &&
  ok "the org map is applied" || fail "no 'applied' line for the org map"
[[ $(sample 'dnsmon_config_reloads_total{result="success"}' <"$tmp/m5") == 2 ]] &&
  ok "dnsmon_config_reloads_total{result=\"success\"} 2" || fail "the org map reload not counted"

# The replay ends by itself; every frame was processed.
rc=0
timeout 60 tail --pid="$pid" -f /dev/null || { fail "dnsmon did not finish the replay"; }
wait "$pid" || rc=$?
pid=""
[[ $rc == 0 ]] || fail "exit status $rc"
grep -q "final: $frames frames captured, $frames processed, 0 dropped" "$tmp/log" &&
  ok "no frame lost across the reloads" || { grep final "$tmp/log"; fail "frames lost"; }
[[ $(sample 'dnsmon_detection_events_total{kind="query"}' <"$tmp/final.prom") == $((frames / 2)) ]] &&
  [[ $(sample 'dnsmon_detection_events_dropped_total' <"$tmp/final.prom") == 0 ]] &&
  ok "detection took every query across the reloads" || fail "detection lost or reset events"
grep -q '"detector":"disappearance"' "$tmp/events.jsonl" &&
  ok "the event log has the disappearance events" || fail "no disappearance line in the event log"

if ((failures > 0)); then
  echo "--- log"
  grep -v ' debug ' "$tmp/log" | tail -30
  echo "$failures check(s) failed"
  exit 1
fi
echo "all reload checks passed"
