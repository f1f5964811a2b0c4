#!/usr/bin/env bash
# Detection state across restarts (detection.state_file): a capture replayed in two halves, the
# second loading the state the first wrote, continues where the first stopped:
#  - the first run finds no file ("no state file ... starting fresh") and writes one (mode 0600)
#    at the end of its input; the second loads it, says so with its logical time, and
#    continues the logical clock (from the first packet of the first half: origin first_packet)
#    and the tables (its base table holds the first half's domains too, more than a run of the
#    second half alone);
#  - a corrupt, truncated or foreign file, or one of other table capacities, is refused with one
#    line saying why, kept aside as FILE.refused, and the run starts fresh and succeeds;
#  - a state file that cannot be written fails the run (exit 1) with an error naming it.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 20 s of packet time at x14400 (a logical day every 6 s): about 3.3 logical days, split in the
# middle of the file, which is the middle of a logical day.
"$GEN_PCAP" --out "$tmp/all.pcap" --profile bench --packets 20000 --rate 1000 --domains 400 \
  --seed 5 >/dev/null
read -r n1 n2 cut_ts < <(python3 "$here/lib/split_pcap.py" "$tmp/all.pcap" "$tmp/a.pcap" "$tmp/b.pcap")
echo "halves: $n1 + $n2 records, the second from packet time $cut_ts"

config() {  # config FILE STATE [BASE_ENTRIES]
  cat >"$1" <<EOF
detection:
  enabled: true
  state_file: $2
  time: {compression: 14400}
  memory: {base_entries: ${3:-4096}, candidate_entries: 64, watch_entries: 4,
           seen_filter_entries: 4096, doorkeeper_bits: 65536}
EOF
}
run() {  # run NAME PCAP CONFIG: the log in NAME.log, the metrics in NAME.prom; sets rc
  rc=0
  # --allow-root: run as root, dnsmon keeps root to write the state into this root-owned
  # directory (privilege_test.sh checks the switch to daemon.user).
  "$DNSMON" -r "$2" --config "$3" --metrics-out "$tmp/$1.prom" --allow-root 2>"$tmp/$1.log" ||
    rc=$?
}
metric() {  # metric NAME.prom 'name{labels}'
  awk -v m="$2" '$1 == m { print $2 }' "$tmp/$1"
}
state=$tmp/state/detection.state
mkdir -p "$tmp/state"
config "$tmp/d.yaml" "$state"

run first "$tmp/a.pcap" "$tmp/d.yaml"
[[ $rc == 0 ]] || fail "first half: exit $rc: $(tail -3 "$tmp/first.log")"
grep -q "detection: no state file at $state yet, starting fresh" "$tmp/first.log" ||
  fail "first half: no 'no state file' line: $(grep detection "$tmp/first.log")"
grep -q "detection: state saved to $state (.* MiB in .* s, at the stop; .* domains, logical time" \
  "$tmp/first.log" || fail "first half: no 'state saved' line: $(grep detection "$tmp/first.log")"
[[ -f $state ]] || fail "no state file written"
[[ $(stat -c %a "$state") == 600 ]] || fail "state file mode $(stat -c %a "$state"), want 600"
ls "$tmp/state" | grep -q tmp && fail "a temporary file was left: $(ls -a "$tmp/state")"

run second "$tmp/b.pcap" "$tmp/d.yaml"
[[ $rc == 0 ]] || fail "second half: exit $rc: $(tail -3 "$tmp/second.log")"
grep -q "detection: state loaded from $state (written by dnsmon .* at a stop): logical time" \
  "$tmp/second.log" || fail "second half: no 'state loaded' line: $(grep detection "$tmp/second.log")"

# Alone (no state), the second half starts its own clock and tables.
config "$tmp/alone.yaml" "$tmp/state/alone.state"
run alone "$tmp/b.pcap" "$tmp/alone.yaml"
[[ $rc == 0 ]] || fail "second half alone: exit $rc"

python3 - "$tmp" "$cut_ts" <<'PY'
import re, sys
tmp, cut_ts = sys.argv[1], float(sys.argv[2])
def metrics(name):
    out = {}
    for line in open(f"{tmp}/{name}.prom"):
        m = re.match(r"^(\w+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out
first, second, alone = metrics("first"), metrics("second"), metrics("alone")
problems = []
t1, t2, ta = (m["dnsmon_logical_time_seconds"] for m in (first, second, alone))
base = 'dnsmon_domain_table_entries{tier="base"}'
# x14400 from the first packet of the whole capture: the second half's clock goes on from the
# first's, far past where the same packets put it when their own first packet is the origin.
if not t2 > t1:
    problems.append(f"logical time {t2} after the restart, {t1} before it")
if not t2 > ta + 3600:
    problems.append(f"logical time {t2} continued, {ta} alone: the origin was not kept")
if not (second[base] >= first[base] and second[base] > alone[base]):
    problems.append(f"base entries {second[base]} continued, {first[base]} after the first half, "
                    f"{alone[base]} for the second half alone")
print(f"logical time {t1:.0f} -> {t2:.0f} (alone {ta:.0f}); base entries {first[base]:.0f} -> "
      f"{second[base]:.0f} (alone {alone[base]:.0f})")
for p in problems:
    print("FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# Bad files: each refused with its reason, kept aside, and a fresh run that succeeds.
good=$tmp/good.state
cp "$state" "$good"
refused() {  # refused NAME REASON [CONFIG]
  run "$1" "$tmp/b.pcap" "${3:-$tmp/d.yaml}"
  [[ $rc == 0 ]] || fail "$1: exit $rc: $(tail -3 "$tmp/$1.log")"
  grep -q "detection: state file $state .*$2.*starting fresh; kept as $state.refused" \
    "$tmp/$1.log" || fail "$1: no refusal line with '$2': $(grep detection "$tmp/$1.log")"
  [[ -f $state.refused ]] || fail "$1: the refused file was not kept"
  grep -q "state saved to $state" "$tmp/$1.log" || fail "$1: no fresh state saved"
  rm -f "$state.refused"
}
python3 - "$good" "$state" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x20
open(sys.argv[2], "wb").write(b)
PY
refused corrupt "is corrupt (.*CRC mismatch"
head -c 3000 "$good" >"$state"
refused truncated "is corrupt (truncated"
printf 'detection:\n  enabled: true\n' >"$state"
refused foreign "refused (not a dnsmon state file"
cp "$good" "$state"
config "$tmp/bigger.yaml" "$state" 8192
refused capacities "refused (shard 0: table capacities differ: file 4096 base" "$tmp/bigger.yaml"

# A state file that cannot be written: an error, and exit 1.
config "$tmp/nowhere.yaml" "$tmp/missing-dir/detection.state"
run nowhere "$tmp/a.pcap" "$tmp/nowhere.yaml"
[[ $rc == 1 ]] || fail "unwritable state file: exit $rc, want 1"
grep -q "error detection: cannot save the state to $tmp/missing-dir/detection.state: I/O error" \
  "$tmp/nowhere.log" || fail "unwritable state file: no error line: $(grep detection "$tmp/nowhere.log")"
echo "PASS"
