#!/usr/bin/env bash
# Outputs fail loudly, and start-up limits are told in the operator's terms:
#  - --messages-out to /dev/full, to a full tmpfs (root only) or to a closed standard output
#    exits 1 with one error line, and the final metrics count the lines lost;
#  - a reader that goes away (`| head -n 1`, EPIPE) ends the message log with one warning, not
#    the run: exit 0, --metrics-out written;
#  - a reader that stops reading does not hold SIGTERM: the run ends within a second or two,
#    exit 1 with one error line, --metrics-out written with the unwritten lines counted;
#  - --metrics-out - with --messages-out - is a usage error (exit 2);
#  - --replay-speed refuses what would overflow its arithmetic (exit 2), and --help says what 0
#    means;
#  - a table too large for the memory dnsmon may use (prlimit --as) fails with an error naming
#    the configuration key, not std::bad_alloc (skipped where prlimit cannot run dnsmon, as
#    under AddressSanitizer, which reserves terabytes of address space).
#
# Env (set by ctest): DNSMON, GEN_PCAP. Exit 0 pass, 1 fail.
set -uo pipefail

: "${DNSMON:?set DNSMON to the dnsmon binary}"
: "${GEN_PCAP:?set GEN_PCAP to the gen_pcap tool}"

# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh"
checks_setup outputs
mounted=""
cleanup() {
  if [[ -n $mounted ]]; then
    umount "$mounted" 2>/dev/null || true
  fi
}

# error_lines: how many lines of $err are logged at level error.
error_lines() {
  grep -c ' error ' <<<"$err" || true
}

# lost_lines FILE: dnsmon_output_lost_lines_total{output="messages"} in a metrics file.
lost_lines() {
  sed -n 's/^dnsmon_output_lost_lines_total{output="messages"} \([0-9]*\)$/\1/p' "$1"
}

capture=$tmp/small.pcap
if ! "$GEN_PCAP" --out "$capture" --packets 2000 >"$tmp/gen.log" 2>&1; then
  cat "$tmp/gen.log"
  echo "FAIL: gen_pcap could not write the test capture"
  exit 1
fi

# --- a full device -----------------------------------------------------------------------------
run -r "$capture" --messages-out /dev/full --metrics-out "$tmp/m1"
expect "--messages-out /dev/full exits 1 and says why" 1 \
  stderr "messages: cannot write to /dev/full: No space left on device"
[[ $(error_lines) == 1 ]] || fail "--messages-out /dev/full: $(error_lines) error lines, expected 1"
lost=$(lost_lines "$tmp/m1")
[[ ${lost:-0} -gt 0 ]] || fail "--messages-out /dev/full: the metrics count ${lost:-no} lost lines"

# --- a file system that fills up ---------------------------------------------------------------
if [[ $(id -u) == 0 ]] && mkdir -p "$tmp/small" &&
  mount -t tmpfs -o size=64k dnsmon-test "$tmp/small" 2>/dev/null; then
  mounted=$tmp/small
  rc=0
  timeout 30 "$DNSMON" -r "$capture" --messages-out "$tmp/small/messages.jsonl" \
    --metrics-out "$tmp/m2" 2>"$tmp/err" || rc=$?
  err=$(<"$tmp/err")
  expect "--messages-out to a full tmpfs exits 1 and says why" 1 \
    stderr "messages: cannot write to $tmp/small/messages.jsonl: No space left on device"
  [[ $(error_lines) == 1 ]] || fail "a full tmpfs: $(error_lines) error lines, expected 1"
  written=$(wc -l <"$tmp/small/messages.jsonl")
  lost=$(lost_lines "$tmp/m2")
  # Every message is either a whole line in the file or counted as lost.
  messages=$(sed -n 's/^dnsmon_messages_total{[^}]*} \([0-9]*\)$/\1/p' "$tmp/m2" |
    awk '{ n += $1 } END { print n + 0 }')
  if [[ $((written + ${lost:-0})) != "$messages" || ${lost:-0} == 0 ]]; then
    fail "a full tmpfs: $written lines written + ${lost:-no} lost != $messages messages"
  else
    echo "ok: a full tmpfs: $written lines written, $lost counted as lost, of $messages"
  fi
  [[ $(tail -c 1 "$tmp/small/messages.jsonl" | od -An -c | tr -d ' ') == '\n' ]] ||
    fail "a full tmpfs: the message log ends inside a line"
  umount "$mounted" && mounted=""
else
  echo "skipped: a full tmpfs (needs root and mount)"
fi

# --- a closed standard output ------------------------------------------------------------------
rc=0
timeout 30 "$DNSMON" -r "$capture" --messages-out - >&- 2>"$tmp/err" || rc=$?
err=$(<"$tmp/err")
expect "--messages-out - with standard output closed exits 1" 1 \
  stderr "cannot write messages to standard output: it is closed"

rc=0
timeout 30 "$DNSMON" -r "$capture" --metrics-out - >&- 2>"$tmp/err" || rc=$?
err=$(<"$tmp/err")
expect "--metrics-out - with standard output closed exits 1 before the replay" 1 \
  stderr "cannot write metrics to standard output: it is closed"
[[ $err != *"frames captured"* ]] || fail "--metrics-out - to a closed stdout: the replay ran"

# --- a reader that goes away ------------------------------------------------------------------
big=$tmp/big.pcap
"$GEN_PCAP" --out "$big" --packets 20000 >"$tmp/gen.log" 2>&1 || fail "gen_pcap --packets 20000"
rm -f "$tmp/m3"
timeout 30 "$DNSMON" -r "$big" --messages-out - --metrics-out "$tmp/m3" 2>"$tmp/err" |
  head -n 1 >"$tmp/first"
rc=${PIPESTATUS[0]}
err=$(<"$tmp/err")
expect "--messages-out - | head -n 1 exits 0 and says the log ended" 0 \
  stderr "messages: the reader of standard output went away (broken pipe)"
[[ $(error_lines) == 0 ]] || fail "| head -n 1: $(error_lines) error lines, expected none"
[[ $(grep -c 'went away' <<<"$err") == 1 ]] || fail "| head -n 1: not exactly one warning"
grep -q '^{"ts":' "$tmp/first" || fail "| head -n 1: the first line is not a message"
if grep -q '^dnsmon_capture_received_total{source="offline"} 20000$' "$tmp/m3" 2>/dev/null; then
  echo "ok: | head -n 1: the whole capture was counted and --metrics-out written"
else
  fail "| head -n 1: --metrics-out missing or incomplete"
fi

# --- a reader that stops reading ---------------------------------------------------------------
# The pipe fills and dnsmon can write no more; SIGTERM must still end the run within a second or
# two, with the log ended (exit 1, one error line, the unwritten lines counted) and the metrics out.
rm -f "$tmp/m4"
fifo=$tmp/stalled
mkfifo "$fifo"
sleep 30 <"$fifo" &  # holds the read end open and never reads
reader=$!
"$DNSMON" -r "$big" --messages-out - --metrics-out "$tmp/m4" >"$fifo" 2>"$tmp/err" &
stalled=$!
sleep 2
kill -TERM "$stalled"
stopped=0
for _ in $(seq 1 40); do  # 4 s
  if ! kill -0 "$stalled" 2>/dev/null; then
    stopped=1
    break
  fi
  sleep 0.1
done
if [[ $stopped == 1 ]]; then
  wait "$stalled"
  rc=$?
else
  kill -KILL "$stalled" 2>/dev/null
  wait "$stalled"
  rc=timeout
fi
kill "$reader" 2>/dev/null
wait "$reader" 2>/dev/null
err=$(<"$tmp/err")
expect "--messages-out - to a reader that stopped reading: SIGTERM ends the run, exit 1" 1 \
  stderr "its reader stopped reading"
[[ $(error_lines) == 1 ]] || fail "stalled reader: $(error_lines) error lines, expected one"
lost=$(lost_lines "$tmp/m4")
[[ -n $lost && $lost -gt 0 ]] || fail "stalled reader: --metrics-out missing or no lost lines counted"

# --- usage errors ------------------------------------------------------------------------------
rc=0
timeout 30 "$DNSMON" -r "$capture" --metrics-out - --messages-out - >"$tmp/out" 2>"$tmp/err" ||
  rc=$?
err=$(<"$tmp/err")
expect "--metrics-out - with --messages-out - is a usage error" 2 \
  stderr "--metrics-out - and --messages-out - would mix on standard output"
[[ ! -s $tmp/out ]] || fail "the refused run wrote to standard output"

for speed in 1e-300 nan inf -1 0.0001 1e7; do
  run -r "$capture" --replay-speed "$speed"
  expect "--replay-speed $speed is a usage error" 2 stderr "--replay-speed" \
    stderr "Run with --help for usage."
done
run -r "$capture" --replay-speed 1000000
expect "--replay-speed 1000000 replays" 0 stderr "2000 frames captured"
run --help
expect "--help says what --replay-speed 0 means" 0 stdout "--replay-speed" \
  stdout "0 (the default) = as fast as"

# --- tables that do not fit --------------------------------------------------------------------
as_limit=1500000000  # 1.4 GiB of address space: dnsmon starts, a 4 GiB table does not fit
if command -v prlimit >/dev/null 2>&1 &&
  prlimit --as=$as_limit "$DNSMON" -r "$capture" >/dev/null 2>&1; then
  cfg=$tmp/big.yaml
  for key in parser.tcp.memory_mib parser.fragments.memory_mib; do
    section=${key#parser.}
    section=${section%%.*}
    printf 'parser:\n  %s:\n    memory_mib: 4096\n' "$section" >"$cfg"
    rc=0
    prlimit --as=$as_limit "$DNSMON" --config "$cfg" -r "$capture" 2>"$tmp/err" >/dev/null ||
      rc=$?
    err=$(<"$tmp/err")
    expect "$key 4096 under prlimit --as names the key" 1 stderr "$key (4096): cannot allocate" \
      stderr "out of memory"
    [[ $err != *bad_alloc* ]] || fail "$key: the error says bad_alloc"
  done
  printf 'analytics:\n  memory_mib: 65536\n  matching:\n    capacity: 16777216\n' >"$cfg"
  rc=0
  prlimit --as=700000000 "$DNSMON" --config "$cfg" -r "$capture" 2>"$tmp/err" >/dev/null || rc=$?
  err=$(<"$tmp/err")
  expect "analytics.matching.capacity under prlimit --as names the key" 1 \
    stderr "analytics.matching.capacity (16777216)" stderr "out of memory"
  [[ $err != *bad_alloc* ]] || fail "analytics.matching.capacity: the error says bad_alloc"
else
  echo "skipped: tables that do not fit (prlimit cannot run dnsmon under an address-space limit)"
fi

finish
