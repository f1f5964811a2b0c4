#!/usr/bin/env bash
# Inputs are opened once and never hang dnsmon:
#  - a capture read from a FIFO, a process substitution `<(cat FILE)`, /dev/stdin and `-r -`
#    yields the same frames as the file itself, classic pcap and pcapng, with and without a
#    filter (a check that opened the input and closed it again would lose its first bytes);
#  - SIGTERM ends a wait for an input within 2 s, with exit 0 and --metrics-out written: `-r -` on
#    an idle pipe, a FIFO held open by a writer that sends nothing, a FIFO with no writer, and a
#    pipe that stops after some frames (those are counted);
#  - live capture on the `any` device (Linux cooked capture, where the default filter's VLAN
#    clauses do not compile) starts and stops cleanly on SIGTERM, in a network namespace of its
#    own (skipped without root or `ip netns`).
#
# Env (set by ctest): DNSMON, GEN_PCAP. Exit 0 pass, 1 fail.
set -uo pipefail

: "${DNSMON:?set DNSMON to the dnsmon binary}"
: "${GEN_PCAP:?set GEN_PCAP to the gen_pcap tool}"

# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh"
checks_setup inputs
netns=""
cleanup() {
  # Background writers are started with a bounded lifetime; end any still running.
  local pids
  pids=$(jobs -p)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086  # one pid per word
    kill $pids 2>/dev/null || true
  fi
  if [[ -n $netns ]]; then
    ip netns del "$netns" 2>/dev/null || true
  fi
}

# frames LOG: the frame count of dnsmon's final log line.
frames() {
  sed -n 's/.* final: \([0-9]*\) frames captured.*/\1/p' "$1" | tail -n 1
}

capture=$tmp/small.pcap
if ! "$GEN_PCAP" --out "$capture" --packets 2000 >"$tmp/gen.log" 2>&1; then
  cat "$tmp/gen.log"
  echo "FAIL: gen_pcap could not write the test capture"
  exit 1
fi

# The same capture as pcapng (section header, one interface with nanosecond or microsecond
# resolution, enhanced packet blocks), written by a few lines of Python, so that libpcap's path
# is covered as well as dnsmon's own classic-pcap reader.
pcapng=""
if command -v python3 >/dev/null 2>&1; then
  if python3 - "$capture" >"$tmp/small.pcapng" <<'EOF'; then
import struct, sys
d = open(sys.argv[1], "rb").read()
magic, = struct.unpack("<I", d[:4])
assert magic in (0xA1B2C3D4, 0xA1B23C4D), "a little-endian classic pcap"
nano = magic == 0xA1B23C4D
snaplen, link = struct.unpack("<II", d[16:24])
def block(kind, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
options = (struct.pack("<HHB3x", 9, 1, 9) if nano else b"") + struct.pack("<HH", 0, 0)
out.append(block(1, struct.pack("<HHI", link, 0, snaplen) + options))
off = 24
while off + 16 <= len(d):
    sec, frac, caplen, length = struct.unpack("<IIII", d[off:off + 16])
    ts = sec * (10**9 if nano else 10**6) + frac
    data = d[off + 16:off + 16 + caplen]
    off += 16 + caplen
    out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, caplen, length) + data))
sys.stdout.buffer.write(b"".join(out))
EOF
    pcapng=$tmp/small.pcapng
  else
    fail "could not convert the test capture to pcapng"
  fi
else
  echo "skipped: pcapng inputs (python3 is not installed)"
fi

# --- the same frames from every kind of input -------------------------------------------------
# run_input NAME EXPECTED ARGS...: dnsmon (at most 30 s) must exit 0 having captured EXPECTED
# frames. The input is set up by the caller through ARGS and stdin.
run_input() {
  local name=$1 expected=$2
  shift 2
  checks=$((checks + 1))
  local rc=0
  timeout 30 "$DNSMON" "$@" 2>"$tmp/log" || rc=$?
  local got
  got=$(frames "$tmp/log")
  if [[ $rc == 0 && $got == "$expected" ]]; then
    ok "$name: $got frames"
  else
    fail "$name: exit $rc, $got frames, expected exit 0 and $expected frames"
    tail -n 5 "$tmp/log"
  fi
}

fifo=$tmp/fifo
for file in "$capture" $pcapng; do
  for filter in "" "udp"; do
    kind=${file##*.}${filter:+ filtered}
    fargs=()
    [[ -n $filter ]] && fargs=(--filter "$filter")
    timeout 30 "$DNSMON" -r "$file" "${fargs[@]}" 2>"$tmp/log"
    expected=$(frames "$tmp/log")
    if [[ -z $expected || $expected == 0 ]]; then
      fail "$kind: the file itself gave no frames"
      continue
    fi
    run_input "$kind: the file" "$expected" -r "$file" "${fargs[@]}"
    rm -f "$fifo"
    mkfifo "$fifo"
    timeout 30 cat "$file" >"$fifo" &
    run_input "$kind: a FIFO" "$expected" -r "$fifo" "${fargs[@]}"
    wait
    run_input "$kind: <(cat FILE)" "$expected" -r <(cat "$file") "${fargs[@]}"
    run_input "$kind: /dev/stdin from a pipe" "$expected" -r /dev/stdin "${fargs[@]}" < <(cat "$file")
    run_input "$kind: -r - from a pipe" "$expected" -r - "${fargs[@]}" < <(cat "$file")
    run_input "$kind: -r - from the file" "$expected" -r - "${fargs[@]}" <"$file"
    run_input "$kind: /dev/stdin from the file" "$expected" -r /dev/stdin "${fargs[@]}" <"$file"
    run_input "$kind: -r - with two workers" "$expected" -r - --workers 2 "${fargs[@]}" \
      < <(cat "$file")
  done
done
timeout 30 "$DNSMON" -r "$capture" 2>"$tmp/log"
one=$(frames "$tmp/log")
if [[ -n $pcapng ]]; then
  run_input "a file, a process substitution and the standard input in one run" $((3 * one)) \
    -r "$capture" -r <(cat "$pcapng") -r - < <(cat "$capture")
fi

# --- SIGTERM ends every wait --------------------------------------------------------------------
# stop_within NAME PID LOG METRICS MIN_FRAMES [SECONDS]: waits until dnsmon (PID) has started (its
# log says so), sends SIGTERM, and requires it to be gone within SECONDS (2), with exit 0, the
# final metrics written and at least MIN_FRAMES frames counted.
stop_within() {
  local name=$1 pid=$2 log=$3 metrics=$4 min_frames=$5 seconds=${6:-2}
  checks=$((checks + 1))
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q "replaying\|capturing on" "$log" 2>/dev/null && break
    sleep 0.05
  done
  sleep 0.5  # now waiting for its input
  if ! kill -0 "$pid" 2>/dev/null; then
    fail "$name: dnsmon ended before SIGTERM"
    tail -n 5 "$log"
    return
  fi
  local start end
  start=$(date +%s%N)
  kill -TERM "$pid"
  for ((i = 0; i < seconds * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  end=$(date +%s%N)
  local ms=$(((end - start) / 1000000))
  if kill -0 "$pid" 2>/dev/null; then
    fail "$name: still running $seconds s after SIGTERM"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return
  fi
  local rc=0
  wait "$pid" || rc=$?
  local got
  got=$(frames "$log")
  if [[ $rc != 0 ]]; then
    fail "$name: exit $rc after SIGTERM"
    tail -n 5 "$log"
  elif ! grep -q '^dnsmon_capture_received_total' "$metrics" 2>/dev/null; then
    fail "$name: --metrics-out $metrics not written"
  elif ((${got:-0} < min_frames)); then
    fail "$name: $got frames counted, expected at least $min_frames"
  else
    ok "$name: exit 0 ${ms} ms after SIGTERM, $got frames, metrics written"
  fi
}

sleep 4 | "$DNSMON" -r - --metrics-out "$tmp/m1" 2>"$tmp/l1" &
stop_within "-r - on an idle pipe" $! "$tmp/l1" "$tmp/m1" 0
wait

rm -f "$fifo"
mkfifo "$fifo"
timeout 10 sleep 4 >"$fifo" &
"$DNSMON" -r - --metrics-out "$tmp/m2" <"$fifo" 2>"$tmp/l2" &
stop_within "-r - on a FIFO whose writer sends nothing" $! "$tmp/l2" "$tmp/m2" 0
wait

rm -f "$fifo"
mkfifo "$fifo"
timeout 10 sleep 4 >"$fifo" &
"$DNSMON" -r "$fifo" --workers 2 --metrics-out "$tmp/m3" 2>"$tmp/l3" &
stop_within "-r FIFO (two workers) whose writer sends nothing" $! "$tmp/l3" "$tmp/m3" 0
wait

rm -f "$fifo"
mkfifo "$fifo"
"$DNSMON" -r "$fifo" --metrics-out "$tmp/m4" 2>"$tmp/l4" &
stop_within "-r FIFO with no writer" $! "$tmp/l4" "$tmp/m4" 0
wait

{
  cat "$capture"
  sleep 4
} | "$DNSMON" -r - --metrics-out "$tmp/m5" 2>"$tmp/l5" &
stop_within "-r - on a pipe that paused after a pcap file" $! "$tmp/l5" "$tmp/m5" "$one"
wait

if [[ -n $pcapng ]]; then
  {
    cat "$pcapng"
    sleep 4
  } | "$DNSMON" -r - --metrics-out "$tmp/m6" 2>"$tmp/l6" &
  stop_within "-r - on a pipe that paused after a pcapng file" $! "$tmp/l6" "$tmp/m6" "$one"
  wait
fi

# --- live capture on the any device ---------------------------------------------------------
if [[ $(id -u) != 0 ]] || ! command -v ip >/dev/null 2>&1; then
  echo "skipped: -i any (needs root and ip netns)"
elif ! ip netns add "dnsmon-inputs-$$" 2>/dev/null; then
  echo "skipped: -i any (cannot create a network namespace)"
else
  netns="dnsmon-inputs-$$"
  ip -n "$netns" link set lo up
  # Its own network namespace: it sees nothing of the host's traffic, and serves /metrics on
  # the namespace's loopback.
  ip netns exec "$netns" "$DNSMON" -i any --metrics-out "$tmp/m7" 2>"$tmp/l7" &
  # Up to 4 s: the metrics server takes up to 2 s to stop.
  stop_within "-i any starts with its default filter and stops" $! "$tmp/l7" "$tmp/m7" 0 4
  grep -q 'dnsmon_capture_up{source="any"}' "$tmp/m7" ||
    fail "-i any: no dnsmon_capture_up{source=\"any\"} in the final metrics"
fi

finish
