#!/usr/bin/env bash
# --serve-after-replay: a replay of two files keeps /metrics up after its end, serving the final
# numbers (those --metrics-out wrote at the end of the replay) until SIGTERM or SIGINT, then exits
# 0 within 5 s; without the flag the same replay exits by itself; with live capture only, the
# flag is a usage error.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}"
if ! command -v curl >/dev/null; then
  echo "SKIP: curl is not installed" >&2
  exit 77
fi
work=$(mktemp -d)
pid=""
log=""
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$log" ] && sed 's/^/  dnsmon: /' "$log" >&2
  exit 1
}
# The exposition without the /metrics server's own counters, which count every scrape.
stable() { grep -v '^dnsmon_http_\|^# .* dnsmon_http_' "$1"; }

"$GEN_PCAP" --out "$work/a.pcap" --packets 2000 --seed 1 2>/dev/null
"$GEN_PCAP" --profile bench --out "$work/b.pcap" --packets 3000 --seed 2 2>/dev/null
frames=5000

rc=0
err=$(timeout 10 "$DNSMON" -i lo --serve-after-replay 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "--serve-after-replay with live capture only: exit $rc, expected 2"
[[ $err == *"--serve-after-replay applies to replays (-r FILE)"* ]] || fail "unclear usage error: $err"
echo "ok: --serve-after-replay without -r is a usage error (exit 2)"

for signal in TERM INT; do
  rm -f "$work/final.txt"
  # A log of its own per run: the shell creates it in the background job, after this loop starts.
  log="$work/dnsmon-$signal.log"
  "$DNSMON" -r "$work/a.pcap" -r "$work/b.pcap" --serve-after-replay --listen 127.0.0.1:0 \
    --metrics-out "$work/final.txt" 2>"$log" &
  pid=$!
  for _ in $(seq 300); do
    grep -q "replay finished" "$log" && break
    kill -0 "$pid" 2>/dev/null || fail "dnsmon exited before the end of its replay"
    sleep 0.1
  done
  grep -q "replay finished: $frames frames" "$log" ||
    fail "no 'replay finished: $frames frames' line within 30 s"
  url=$(grep -o 'serving metrics on http://[^ ]*' "$log" | head -n 1 | cut -d' ' -f4)
  [ -s "$work/final.txt" ] || fail "--metrics-out was not written at the end of the replay"

  sleep 2
  kill -0 "$pid" 2>/dev/null || fail "dnsmon exited after its replay despite --serve-after-replay"
  curl -fsS --max-time 5 "$url" >"$work/scrape1.txt" || fail "$url does not answer after the replay"
  sleep 1
  curl -fsS --max-time 5 "$url" >"$work/scrape2.txt" || fail "$url stopped answering"
  diff <(stable "$work/scrape1.txt") <(stable "$work/scrape2.txt") >/dev/null ||
    fail "the metrics still change after the end of the replay"
  diff <(stable "$work/scrape1.txt") <(stable "$work/final.txt") >/dev/null ||
    fail "/metrics after the replay differs from what --metrics-out wrote"
  got=$(awk '/^dnsmon_capture_received_total\{/ { s += $2 } END { printf "%.0f", s }' "$work/scrape1.txt")
  [ "$got" = "$frames" ] || fail "dnsmon_capture_received_total is $got, expected $frames"
  grep -q '^dnsmon_capture_up{source="offline"} 0' "$work/scrape1.txt" ||
    fail "dnsmon_capture_up is not 0 after the replay"
  cp "$work/final.txt" "$work/final.before"

  kill "-$signal" "$pid"
  timeout 5 tail --pid="$pid" -f /dev/null || fail "dnsmon did not exit within 5 s of SIG$signal"
  rc=0
  wait "$pid" || rc=$?
  pid=""
  [ "$rc" = 0 ] || fail "exit status $rc after SIG$signal, expected 0"
  cmp -s "$work/final.before" "$work/final.txt" || fail "--metrics-out was written again at the stop"
  echo "ok: after its replay of $frames frames dnsmon served the final metrics for 3 s, the same" \
    "as --metrics-out; SIG$signal ended it with status 0"
done

rc=0
log="$work/dnsmon-once.log"
timeout 30 "$DNSMON" -r "$work/a.pcap" --listen 127.0.0.1:0 2>"$log" || rc=$?
[ "$rc" = 0 ] || fail "without --serve-after-replay the replay exited $rc (or did not end in 30 s)"
echo "ok: without --serve-after-replay a replay with --listen exits 0 at the end of its input"
