#!/usr/bin/env bash
# Every public capture through dnsmon; plain-UDP captures must match the tshark oracle exactly.
set -euo pipefail
: "${DNSMON:?}" "${DNSMON_PCAPS:?}" "${DNSMON_SOURCE_DIR:?}"
if [[ ! -f "$DNSMON_PCAPS/MANIFEST.tsv" ]]; then
  echo "SKIP: the capture corpus is not at $DNSMON_PCAPS (set DNSMON_PCAPS)" >&2
  exit 77
fi
exec python3 "$DNSMON_SOURCE_DIR/tests/interop/compare_oracle.py" --dnsmon "$DNSMON" \
  --pcaps "$DNSMON_PCAPS" --report "${TMPDIR:-/tmp}/dnsmon-interop-$$.tsv"
