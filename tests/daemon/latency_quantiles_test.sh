#!/usr/bin/env bash
# The latency buckets resolve a LAN and a WAN: captures whose response latencies follow known
# lognormal distributions (a LAN server around 30 us, a WAN resolver around 30 ms) are replayed,
# and histogram_quantile() of dnsmon_response_latency_seconds (computed from the exposition as
# Prometheus does: linear interpolation within the bucket that holds the rank) must give p50,
# p90 and p99 within 25 % of the true quantiles of the generated latencies.
#
# Env (set by ctest): DNSMON, DNSMON_SOURCE_DIR.
set -euo pipefail
: "${DNSMON:?set DNSMON to the dnsmon binary}"
: "${DNSMON_SOURCE_DIR:?set DNSMON_SOURCE_DIR to the repository root}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnsmon-latency-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failures=0
check() {  # name median sigma seed
  local name=$1 median=$2 sigma=$3 seed=$4
  python3 "$DNSMON_SOURCE_DIR/tests/daemon/lib/latency_pcap.py" "$tmp/$name.pcap" "$median" \
    "$sigma" 20000 "$seed" >"$tmp/$name.truth.json"
  "$DNSMON" -r "$tmp/$name.pcap" --metrics-out "$tmp/$name.prom" 2>"$tmp/$name.log" ||
    { cat "$tmp/$name.log"; echo "FAIL: $name: dnsmon failed"; failures=$((failures + 1)); return; }
  PYTHONPATH="$DNSMON_SOURCE_DIR/tests/daemon/lib" \
    python3 - "$name" "$tmp/$name.prom" "$tmp/$name.truth.json" <<'PY' || failures=$((failures + 1))
import json, re, sys

from udp_pcap import bucket_quantile

name, prom, truth_file = sys.argv[1], sys.argv[2], sys.argv[3]
truth = json.load(open(truth_file))
buckets = {}  # le -> cumulative count, summed over every transport and rcode class
pattern = re.compile(r'^dnsmon_response_latency_seconds_bucket\{.*le="([^"]+)"\} (\S+)$')
for line in open(prom):
    m = pattern.match(line.strip())
    if m:
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets[le] = buckets.get(le, 0) + float(m.group(2))
bounds = sorted(buckets)
if len(bounds) < 2 or buckets[float("inf")] == 0:
    sys.exit(f"FAIL: {name}: no latency histogram in the exposition")


def histogram_quantile(q):
    return bucket_quantile(buckets, q)


bad = 0
for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
    got, want = histogram_quantile(q), truth[key]
    error = abs(got - want) / want
    verdict = "ok" if error <= 0.25 else "FAIL"
    bad += verdict == "FAIL"
    print(f"{verdict}: {name} {key}: histogram_quantile {got * 1e6:.1f} us, true {want * 1e6:.1f} us, "
          f"error {error * 100:.1f} %")
sys.exit(1 if bad else 0)
PY
}

check lan 30e-6 0.4 1
check wan 30e-3 0.6 2
# Wider spreads, off the bucket bounds.
check lan-wide 25e-6 0.8 3
check wan-wide 45e-3 0.9 4

if ((failures > 0)); then
  echo "$failures distribution(s) failed"
  exit 1
fi
echo "every quantile within 25 %"
