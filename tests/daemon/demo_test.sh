#!/usr/bin/env bash
# `dnsmon` with no arguments replays the embedded demo capture and keeps serving /metrics on the
# default address until SIGTERM, with queries counted; then it exits 0, its final line giving the
# replay's duration.
set -euo pipefail
: "${DNSMON:?}"
work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

listen=()
if (exec 3<>/dev/tcp/127.0.0.1/9917) 2>/dev/null; then
  echo "note: 127.0.0.1:9917 is taken here; using a free port instead of the default"
  listen=(--listen 127.0.0.1:0)
fi
"$DNSMON" "${listen[@]}" 2>"$work/log" &
pid=$!

url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://[^ ]*/metrics' "$work/log" | head -1 || true)
  if [[ -n "$url" ]] && grep -q "demo replay finished" "$work/log"; then break; fi
  sleep 0.1
done
cat "$work/log"
[[ -n "$url" ]] || { echo "FAIL: dnsmon did not say where it serves metrics" >&2; exit 1; }
grep -q -- "-i IFACE" "$work/log" || { echo "FAIL: no hint on live capture" >&2; exit 1; }
curl -fsS "$url" >"$work/metrics"
queries=$(awk '/^dnsmon_queries_total/ {s += $2} END {print s + 0}' "$work/metrics")
echo "dnsmon_queries_total summed over qtypes: $queries"
[[ "$queries" -gt 0 ]] || { echo "FAIL: no queries counted" >&2; exit 1; }
grep -q '^dnsmon_capture_up{source="demo"} 0' "$work/metrics"

# The final line reports how long the replay took, not how long the demo then served.
sleep 2
kill -TERM "$pid"
rc=0
timeout 20 tail --pid="$pid" -f /dev/null || { echo "FAIL: no exit 20 s after SIGTERM" >&2; exit 1; }
wait "$pid" || rc=$?
pid=""
[[ "$rc" -eq 0 ]] || { tail -60 "$work/log" >&2; echo "FAIL: exit status $rc after SIGTERM" >&2; exit 1; }
replay_s=$(sed -n 's/.*demo replay finished: [0-9]* frames in \([0-9.]*\) s.*/\1/p' "$work/log")
final_s=$(sed -n 's/.*final: .* in \([0-9.]*\) s$/\1/p' "$work/log")
[[ -n "$replay_s" && "$replay_s" == "$final_s" ]] ||
  { echo "FAIL: the final line's duration ($final_s s) is not the replay's ($replay_s s)" >&2; exit 1; }
echo "ok: demo served $queries queries at $url and stopped cleanly"
