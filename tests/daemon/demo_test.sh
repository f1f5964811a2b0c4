#!/usr/bin/env bash
# `dnsmon` with no arguments replays the embedded demo (Scenario A, paced, detection on) and serves
# /metrics on the default address while it does: queries are counted, the detection's logical clock
# moves on between two scrapes, the log says how to capture live; SIGTERM stops it with status 0
# and a final line.
set -euo pipefail
: "${DNSMON:?}"
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh"
checks_setup demo
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
}

listen=()
if (exec 3<>/dev/tcp/127.0.0.1/9917) 2>/dev/null; then
  echo "note: 127.0.0.1:9917 is taken here; using a free port instead of the default"
  listen=(--listen 127.0.0.1:0)
fi
"$DNSMON" "${listen[@]}" 2>"$tmp/log" &
pid=$!

wait_for_url "$tmp/log" || true
[[ -n $url ]] || { cat "$tmp/log"; fail "dnsmon did not say where it serves metrics"; exit 1; }
grep -q -- "-i IFACE" "$tmp/log" || fail "no hint on live capture"
grep -q "replaying the embedded demo, Scenario A" "$tmp/log" || fail "the log does not say what the demo is"
wait_for_queries || fail "no queries counted in 60 s"
echo "dnsmon_queries_total summed over qtypes: $queries"
grep -q '^dnsmon_capture_up{source="demo"} ' "$tmp/metrics" || fail "no dnsmon_capture_up{source=\"demo\"}"
grep -q "^dnsmon_logical_time_seconds " "$tmp/metrics" || fail "detection is not on in the demo"
logical_time() { awk '/^dnsmon_logical_time_seconds / {print $2}' "$tmp/metrics"; }
first=$(logical_time)
sleep 3
curl -fsS -m 5 "$url" >"$tmp/metrics" || fail "the second scrape failed"
second=$(logical_time)
echo "logical time: $first, 3 s later $second"
awk -v a="$first" -v b="$second" 'BEGIN { exit !(a > 0 && b > a + 3600) }' ||
  fail "the logical clock did not move on by an hour or more in 3 s of paced replay"

kill -TERM "$pid"
timeout 20 tail --pid="$pid" -f /dev/null || { fail "no exit 20 s after SIGTERM"; exit 1; }
rc=0
wait "$pid" || rc=$?
pid=""
((rc == 0)) || { tail -30 "$tmp/log"; fail "exit status $rc after SIGTERM"; }
grep -q "final: " "$tmp/log" || fail "no final line"
((failures == 0)) || exit 1
echo "ok: the demo served $queries queries at $url and stopped cleanly"
