#!/usr/bin/env bash
# SIGHUP under traffic: a valid change of live keys (analytics.top_n, log.level) takes effect at
# once, a change that needs a restart is named in a warning and keeps its running value, a file
# that does not load keeps the running configuration; counters are never reset, no frame is lost,
# and dnsmon_config_reloads_total{result} counts each outcome.
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
write_config() {  # top_n top_capacity level
  printf 'analytics:\n  top_n: %s\n  top_capacity: %s\nlog:\n  level: %s\n' "$1" "$2" "$3" >"$cfg"
}
write_config 3 256 info

# --allow-root: run as root, dnsmon keeps root to read the config in this root-owned directory
# again (privilege_test.sh checks a reload after the switch to daemon.user).
"$DNSMON" --config "$cfg" -r "$tmp/traffic.pcap" --replay-speed 1 --listen 127.0.0.1:0 \
  --metrics-out "$tmp/final.prom" --allow-root 2>"$tmp/log" &
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

sleep 2
scrape >"$tmp/m1"
q1=$(queries <"$tmp/m1")
t1=$(top_series <"$tmp/m1")
[[ $t1 == 3 ]] && ok "before the reload: 3 top qnames per window" ||
  fail "before the reload: $t1 top qname series per window, expected 3"

# A valid change: top_n and the log level are live, top_capacity needs a restart.
write_config 5 512 debug
kill -HUP "$pid"
sleep 1.5
scrape >"$tmp/m2"
q2=$(queries <"$tmp/m2")
t2=$(top_series <"$tmp/m2")
[[ $t2 == 5 ]] && ok "after the reload: 5 top qnames per window" ||
  fail "after the reload: $t2 top qname series per window, expected 5"
grep -q 'reload: applied analytics.top_n 3 -> 5, log.level info -> debug' "$tmp/log" &&
  ok "the log names what was applied" || fail "no 'applied' line for top_n and log.level"
grep -q 'need a restart and keep their running values: analytics.top_capacity 256 -> 512' "$tmp/log" &&
  ok "the restart-only change is named and kept" || fail "no warning naming analytics.top_capacity"
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

# The replay ends by itself; every frame was processed.
rc=0
timeout 60 tail --pid="$pid" -f /dev/null || { fail "dnsmon did not finish the replay"; }
wait "$pid" || rc=$?
pid=""
[[ $rc == 0 ]] || fail "exit status $rc"
grep -q "final: $frames frames captured, $frames processed, 0 dropped" "$tmp/log" &&
  ok "no frame lost across the reloads" || { grep final "$tmp/log"; fail "frames lost"; }

if ((failures > 0)); then
  echo "--- log"
  grep -v ' debug ' "$tmp/log" | tail -30
  echo "$failures check(s) failed"
  exit 1
fi
echo "all reload checks passed"
