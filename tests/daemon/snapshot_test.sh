#!/usr/bin/env bash
# Metric snapshots (--metrics-snapshot-dir, detection.export.metrics_snapshot_dir): a replay of
# 20 s of packet time at x14400 (80 logical hours) with detection on writes, into a directory it
# creates:
#  - one file per logical hour boundary and one at the end, named snapshot-YYYYMMDDTHHMMSSZ.om,
#    so the names sort by time: consecutive hours, none left out, the last file at the end time;
#  - each in OpenMetrics text: every sample stamped with the file's logical time (the last one's
#    with its fraction of a second too), each family's
#    # TYPE once (counters without _total, their samples with it), the detection families
#    present, dnsmon_logical_time_seconds within the hour before the stamp, ending with # EOF;
#  - accepted by `promtool tsdb create-blocks-from openmetrics` (the first, a middle and the last
#    file), which backfills them;
#  - the detection event counts are those of the same replay without snapshots (the pacing changes
#    nothing);
#  - a directory that cannot be created, or detection off, is a configuration error (exit 78)
#    naming the key.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
if ! command -v promtool >/dev/null; then
  echo "SKIP: promtool is not installed (Debian package prometheus)" >&2
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$GEN_PCAP" --out "$tmp/a.pcap" --profile bench --packets 20000 --rate 1000 --domains 400 \
  --seed 5 >/dev/null
cat >"$tmp/on.yaml" <<EOF
detection:
  enabled: true
  time: {compression: 14400}
  memory: {base_entries: 4096, candidate_entries: 64, watch_entries: 4,
           seen_filter_entries: 4096, doorkeeper_bits: 65536}
EOF

# --allow-root: run as root, dnsmon keeps root to write into this root-owned directory
# (tests/daemon/privilege_test.sh checks the switch to daemon.user).
"$DNSMON" -r "$tmp/a.pcap" --config "$tmp/on.yaml" --metrics-out "$tmp/plain.prom" --allow-root \
  2>"$tmp/plain.log" || fail "replay without snapshots: $(tail -3 "$tmp/plain.log")"
"$DNSMON" -r "$tmp/a.pcap" --config "$tmp/on.yaml" --metrics-out "$tmp/snap.prom" --allow-root \
  --metrics-snapshot-dir "$tmp/snaps/new" 2>"$tmp/snap.log" ||
  fail "replay with snapshots: $(tail -3 "$tmp/snap.log")"
grep -q "metric snapshot(s) written to $tmp/snaps/new" "$tmp/snap.log" ||
  fail "no snapshot count in the log: $(tail -3 "$tmp/snap.log")"

python3 - "$tmp" <<'PY'
import calendar, os, re, sys, time

tmp = sys.argv[1]
d = os.path.join(tmp, "snaps/new")
problems = []
names = sorted(os.listdir(d))
if not 70 <= len(names) <= 90:
    sys.exit(f"FAIL: {len(names)} snapshot files, want about 80 (one per logical hour): {names[:5]}")
stamps = []
for name in names:
    m = re.fullmatch(r"snapshot-(\d{8}T\d{6}Z)\.om", name)
    if not m:
        problems.append(f"{name}: not a snapshot name")
        continue
    stamps.append(calendar.timegm(time.strptime(m.group(1), "%Y%m%dT%H%M%SZ")))
for a, b in zip(stamps[:-2], stamps[1:-1]):
    if b - a != 3600:
        problems.append(f"hours {a} and {b} are not consecutive")
if any(s % 3600 for s in stamps[:-1]):
    problems.append("a snapshot before the last is not on an hour boundary")
if stamps[-1] <= stamps[-2]:
    problems.append("the last snapshot is not after the last hour")

counters = {"dnsmon_detector_events", "dnsmon_detection_events", "dnsmon_packets"}
wanted = ("dnsmon_detector_events_total", "dnsmon_detector_flagged_domains",
          "dnsmon_logical_time_seconds", "dnsmon_detection_events_total",
          "dnsmon_domain_table_entries", "dnsmon_domain_table_capacity_entries")
for i, (name, stamp) in enumerate(zip(names, stamps)):
    last = i == len(names) - 1
    text = open(os.path.join(d, name)).read()
    if not text.endswith("\n# EOF\n"):
        problems.append(f"{name}: does not end with # EOF")
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    seen = [t[0] for t in types]
    if len(seen) != len(set(seen)):
        problems.append(f"{name}: a # TYPE twice")
    kinds = dict(types)
    for family in counters:
        if kinds.get(family) != "counter":
            problems.append(f"{name}: # TYPE {family} counter missing")
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"(\w+)(\{.*\})? (\S+) (\S+)", line)
        if not m:
            problems.append(f"{name}: sample line {line!r}")
            continue
        ts = float(m.group(4))
        if ts != stamp and not (last and stamp <= ts < stamp + 1):
            problems.append(f"{name}: timestamp {m.group(4)} is not {stamp}")
            break
        samples.setdefault(m.group(1), float(m.group(3)))
    for family in wanted:
        if family not in samples:
            problems.append(f"{name}: no {family}")
    t = samples.get("dnsmon_logical_time_seconds", 0)
    if not stamp - 3600 <= t <= (ts if last else stamp):
        problems.append(f"{name}: logical time {t} not in the hour before {stamp}")
if problems:
    sys.exit("FAIL: " + "\n".join(problems[:20]))
print(f"{len(names)} snapshots, {names[0]} .. {names[-1]}, consecutive hours")
PY

files=("$tmp"/snaps/new/snapshot-*.om)
for f in "${files[0]}" "${files[${#files[@]} / 2]}" "${files[-1]}"; do
  rm -rf "$tmp/tsdb"
  promtool tsdb create-blocks-from openmetrics "$f" "$tmp/tsdb" >"$tmp/promtool.log" 2>&1 ||
    fail "promtool tsdb create-blocks-from openmetrics $(basename "$f"): $(tail -5 "$tmp/promtool.log")"
  ls "$tmp/tsdb" | grep -q . || fail "promtool wrote no block for $(basename "$f")"
done
echo "ok: promtool backfills the first, a middle and the last snapshot"

# (dnsmon_detector_flagged_domains{detector="querier_concentration_any"} of so short a replay
# varies from run to run by itself, so the flagged counts are not compared.)
detections() { grep -E '^dnsmon_(detector_events_total|detection_events_total)' "$1"; }
diff <(detections "$tmp/plain.prom") <(detections "$tmp/snap.prom") >/dev/null ||
  fail "detection counts differ with snapshots: $(diff <(detections "$tmp/plain.prom") <(detections "$tmp/snap.prom") | head -5)"
echo "ok: the detection counts are those of the replay without snapshots"

# Configuration errors.
touch "$tmp/file"
rc=0
"$DNSMON" -r "$tmp/a.pcap" --config "$tmp/on.yaml" --metrics-snapshot-dir "$tmp/file/sub" \
  2>"$tmp/err.log" || rc=$?
[[ $rc -eq 78 ]] || fail "a directory that cannot be created: exit $rc, want 78"
grep -q "detection.export.metrics_snapshot_dir: cannot create the directory $tmp/file/sub" \
  "$tmp/err.log" || fail "no clear error: $(cat "$tmp/err.log")"
printf 'detection:\n  enabled: true\n  export: {metrics_snapshot_dir: %s}\n' "$tmp/file" \
  >"$tmp/notdir.yaml"
rc=0
"$DNSMON" -r "$tmp/a.pcap" --config "$tmp/notdir.yaml" 2>"$tmp/err.log" || rc=$?
[[ $rc -eq 78 ]] || fail "a file as the directory: exit $rc, want 78"
grep -q "notdir.yaml:3:.*detection.export.metrics_snapshot_dir: $tmp/file is not a directory" \
  "$tmp/err.log" || fail "no located error: $(cat "$tmp/err.log")"
rc=0
"$DNSMON" -r "$tmp/a.pcap" --metrics-snapshot-dir "$tmp/snaps/off" 2>"$tmp/err.log" || rc=$?
[[ $rc -eq 78 ]] || fail "detection off: exit $rc, want 78"
grep -q "metrics-snapshot-dir / detection.export.metrics_snapshot_dir: detection is off" \
  "$tmp/err.log" || fail "detection off: $(cat "$tmp/err.log")"
echo "ok: configuration errors"
