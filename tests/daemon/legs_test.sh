#!/usr/bin/env bash
# Client leg and upstream leg: one capture holds both legs of a resolver (10.0.0.53 and
# 2001:db8::53): clients query it and it answers within a LAN latency (~30 us), and it queries
# authoritative servers that answer within a WAN latency (~30 ms); a third stream is on neither
# leg. Replayed with capture.local_networks naming the resolver, each leg's latency histogram
# count and matching counters must equal that leg's truth, and each leg's p50, p90 and p99
# (histogram_quantile, as Prometheus computes it) must lie within 25 % of the true quantiles,
# so the two legs land three decades apart. Replayed without local_networks, every query is on
# the unknown leg and the client and upstream series are not exported. A local_networks entry
# that is not a CIDR prefix is refused with its position.
#
# Env (set by ctest): DNSMON, DNSMON_SOURCE_DIR.
set -euo pipefail
: "${DNSMON:?set DNSMON to the dnsmon binary}"
: "${DNSMON_SOURCE_DIR:?set DNSMON_SOURCE_DIR to the repository root}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnsmon-legs-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

python3 "$DNSMON_SOURCE_DIR/tests/daemon/lib/legs_pcap.py" "$tmp/legs.pcap" 6000 11 >"$tmp/truth.json"
cat >"$tmp/legs.yaml" <<'YAML'
capture:
  local_networks: [10.0.0.53/32, "2001:db8::53/128"]
YAML

"$DNSMON" -r "$tmp/legs.pcap" --config "$tmp/legs.yaml" --metrics-out "$tmp/legs.prom" \
  2>"$tmp/legs.log" || { cat "$tmp/legs.log"; echo "FAIL: dnsmon failed with local_networks"; exit 1; }
grep -q 'legs: server addresses 10.0.0.53/32, 2001:db8::53/128' "$tmp/legs.log" ||
  { cat "$tmp/legs.log"; echo "FAIL: the server addresses are not logged"; exit 1; }
"$DNSMON" -r "$tmp/legs.pcap" --metrics-out "$tmp/none.prom" 2>"$tmp/none.log" ||
  { cat "$tmp/none.log"; echo "FAIL: dnsmon failed without local_networks"; exit 1; }

PYTHONPATH="$DNSMON_SOURCE_DIR/tests/daemon/lib" \
  python3 - "$tmp/legs.prom" "$tmp/none.prom" "$tmp/truth.json" <<'PY'
import json, re, sys

from udp_pcap import bucket_quantile

legs_prom, none_prom, truth_file = sys.argv[1:4]
truth = json.load(open(truth_file))
sample = re.compile(r'^(dnsmon_\w+)\{([^}]*)\} (\S+)$')


def read(path):
    out = []
    for line in open(path):
        m = sample.match(line.strip())
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


problems = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        problems.append(what)


def total(samples, name, **want):
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == x for k, x in want.items()))


def quantile(samples, leg, q):
    # Prometheus' bucketQuantile over the leg's buckets summed across transport and rcode class.
    buckets = {}
    for n, l, v in samples:
        if n == "dnsmon_response_latency_seconds_bucket" and l["leg"] == leg:
            le = float("inf") if l["le"] == "+Inf" else float(l["le"])
            buckets[le] = buckets.get(le, 0) + v
    return bucket_quantile(buckets, q)


with_legs = read(legs_prom)
for leg, t in truth.items():
    count = total(with_legs, "dnsmon_response_latency_seconds_count", leg=leg)
    check(count == t["matched"], f"{leg}: latency histogram count {count:.0f} == {t['matched']} matched")
    for result, want in (("matched", t["matched"]), ("timeout", t["timeouts"]),
                         ("unmatched_response", 0), ("duplicate", 0), ("evicted", 0)):
        got = total(with_legs, "dnsmon_query_matching_total", leg=leg, result=result)
        check(got == want, f"{leg}: matching {result} {got:.0f} == {want}")
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        got, want = quantile(with_legs, leg, q), t[key]
        err = abs(got - want) / want
        check(err <= 0.25, f"{leg} {key}: histogram_quantile {got * 1e6:.1f} us, true "
                           f"{want * 1e6:.1f} us, error {err * 100:.1f} %")
# The decades: the client leg answers in tens of microseconds, the upstream leg in tens of
# milliseconds.
check(1e-5 <= quantile(with_legs, "client", 0.5) < 1e-4, "client p50 in [10 us, 100 us)")
check(1e-2 <= quantile(with_legs, "upstream", 0.5) < 1e-1, "upstream p50 in [10 ms, 100 ms)")
hist_series = sum(1 for n, l, v in with_legs if n.startswith("dnsmon_response_latency_seconds"))
check(hist_series == 3 * 2 * 4 * 38, f"{hist_series} latency series with three legs (912)")

without = read(none_prom)
matched = sum(t["matched"] for t in truth.values())
timeouts = sum(t["timeouts"] for t in truth.values())
check(total(without, "dnsmon_response_latency_seconds_count", leg="unknown") == matched,
      f"without local_networks: the unknown leg has all {matched} matched")
check(total(without, "dnsmon_query_matching_total", leg="unknown", result="timeout") == timeouts,
      f"without local_networks: the unknown leg has all {timeouts} timeouts")
legs_seen = {l["leg"] for n, l, v in without
             if n.startswith(("dnsmon_response_latency_seconds", "dnsmon_query_matching_total"))}
check(legs_seen == {"unknown"}, f"without local_networks only the unknown leg is exported: {sorted(legs_seen)}")
hist_series = sum(1 for n, l, v in without if n.startswith("dnsmon_response_latency_seconds"))
check(hist_series == 2 * 4 * 38, f"{hist_series} latency series with the unknown leg alone (304)")
sys.exit(1 if problems else 0)
PY

# A malformed prefix is refused at start, with the key and the item.
printf 'capture:\n  local_networks: [10.0.0.53/32, 10.0.0.1/24]\n' >"$tmp/bad.yaml"
set +e
"$DNSMON" -r "$tmp/legs.pcap" --config "$tmp/bad.yaml" --metrics-out "$tmp/bad.prom" 2>"$tmp/bad.log"
rc=$?
set -e
if [ "$rc" -ne 78 ] || ! grep -q 'capture.local_networks\[1\].*10.0.0.1/24' "$tmp/bad.log"; then
  cat "$tmp/bad.log"
  echo "FAIL: a malformed local_networks entry: exit status $rc, expected 78 and the item named"
  exit 1
fi
echo "ok: a malformed local_networks entry is refused (exit status 78)"
echo "every leg matches its truth"
