#!/usr/bin/env bash
# The final exposition of an offline run passes `promtool check metrics`, on a corpus capture
# when the corpus is there and always on a generated one.
set -euo pipefail
: "${DNSMON:?}" "${GEN_PCAP:?}"
if ! command -v promtool >/dev/null; then
  echo "SKIP: promtool is not installed (Debian package prometheus)" >&2
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$GEN_PCAP" --out "$work/gen.pcap" --packets 2000 2>/dev/null
inputs=("$work/gen.pcap")
if [[ -f "${DNSMON_PCAPS:-}/tcpdump/dns_udp.pcap" ]]; then
  inputs+=("$DNSMON_PCAPS/tcpdump/dns_udp.pcap")
fi
for input in "${inputs[@]}"; do
  timeout 60 "$DNSMON" -r "$input" --metrics-out - --log-level warn >"$work/metrics.txt"
  promtool check metrics <"$work/metrics.txt"
  grep -q '^dnsmon_queries_total{qtype="A"} [1-9]' "$work/metrics.txt"
  echo "ok: $input: $(grep -c '^dnsmon_' "$work/metrics.txt") series pass promtool check metrics"
done
