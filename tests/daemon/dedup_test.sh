#!/usr/bin/env bash
# Duplicate frames: a capture in which every frame appears twice (the copy 1 µs later, as a SPAN
# port mirroring both directions delivers it) gives the same exposition as the original, apart
# from the duplicate counters and the capture's own frame and byte counts; with capture.dedup off
# the copies are counted.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$GEN_PCAP" --out "$tmp/orig.pcap" --profile bench --packets 20000 --tcp 10 --vlan 20 \
  --ipv6 30 --seed 7 >/dev/null
# Each record twice; the copy 1 µs later (microsecond pcap from gen_pcap, or nanosecond).
python3 - "$tmp/orig.pcap" "$tmp/twice.pcap" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
magic = data[:4]
e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
step = 1000 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1
out = [data[:24]]
off = 24
while off + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
    body = data[off + 16:off + 16 + incl]
    out.append(data[off:off + 16] + body)
    frac2, sec2 = frac + step, sec
    limit = 1000000 * (1000 if step == 1000 else 1)
    if frac2 >= limit:
        frac2, sec2 = frac2 - limit, sec + 1
    out.append(struct.pack(e + "IIII", sec2, frac2, incl, orig) + body)
    off += 16 + incl
open(sys.argv[2], "wb").write(b"".join(out))
PY

run() {  # run NAME FILE [CONFIG] [FLAG...]
  local name=$1 file=$2 config=${3:-}
  shift 3 || shift $#
  local extra=("$@")
  [[ -n "$config" ]] && extra+=(--config "$config")
  "$DNSMON" -r "$file" --metrics-out "$tmp/$name.prom" --log-level warn "${extra[@]}"
}
run orig "$tmp/orig.pcap"
run twice "$tmp/twice.pcap"
# Two workers: both copies of a packet reach the worker its addresses pick, whose table sees both.
run orig2 "$tmp/orig.pcap" "" --workers 2
run twice2 "$tmp/twice.pcap" "" --workers 2
printf 'capture:\n  dedup: false\n' >"$tmp/off.yaml"
run off "$tmp/twice.pcap" "$tmp/off.yaml"

# What may differ: the duplicate counters, libpcap's received frames and bytes, and what depends
# on the run rather than on the traffic (process, build, memory, time of publication, and the
# distinct-count estimates, whose hash is seeded per process: two runs of one file differ).
strip() {
  grep -v '^#' "$1" | grep -Ev \
    '^(dnsmon_duplicate_frames_total|dnsmon_capture_(received|bytes)_total|dnsmon_build_info|dnsmon_config_last_reload_success_timestamp_seconds|dnsmon_memory_bytes|process_|dnsmon_window_publications_total|dnsmon_window_distinct_|dnsmon_http_)' |
    sort
}
for run in twice twice2; do
  base=orig${run#twice}
  if ! diff <(strip "$tmp/$base.prom") <(strip "$tmp/$run.prom") >"$tmp/diff"; then
    echo "FAIL: the doubled capture's exposition ($run) differs from the original's:" >&2
    head -40 "$tmp/diff" >&2
    exit 1
  fi
done
frames=$(grep -c . <(python3 -c "
import struct,sys
d=open('$tmp/orig.pcap','rb').read(); o=24; n=0
e='<' if d[:4] in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
while o+16<=len(d):
    n+=1; o+=16+struct.unpack(e+'I',d[o+8:o+12])[0]
print('\n'.join(['x']*n))"))
dropped=$(awk '/^dnsmon_duplicate_frames_total\{event="dropped"\}/ {print $2}' "$tmp/twice.prom")
if [[ "$dropped" != "$frames" ]]; then
  echo "FAIL: $dropped duplicates dropped, expected $frames" >&2
  exit 1
fi
orig_dropped=$(awk '/^dnsmon_duplicate_frames_total\{event="dropped"\}/ {print $2}' "$tmp/orig.prom")
[[ "$orig_dropped" == 0 ]] || { echo "FAIL: $orig_dropped frames of the original dropped" >&2; exit 1; }
ok_orig=$(awk '/^dnsmon_packets_total\{result="ok"\}/ {print $2}' "$tmp/orig.prom")
ok_off=$(awk '/^dnsmon_packets_total\{result="ok"\}/ {print $2}' "$tmp/off.prom")
off_dropped=$(awk '/^dnsmon_duplicate_frames_total\{event="dropped"\}/ {print $2}' "$tmp/off.prom")
if [[ "$off_dropped" != 0 || "$ok_off" == "$ok_orig" ]]; then
  echo "FAIL: capture.dedup false: $off_dropped dropped, ok $ok_off (original $ok_orig)" >&2
  exit 1
fi
echo "ok: $frames frames, each twice: same exposition, $dropped duplicates dropped"
