#!/usr/bin/env bash
# The encapsulation captures (PPPoE, MPLS, GTP-U, L2TP, NFLOG, FDDI): dnsmon's messages equal the
# tshark oracle committed with them, and no frame is left unsupported.
set -euo pipefail
: "${DNSMON:?}" "${DNSMON_SOURCE_DIR:?}"
exec python3 "$DNSMON_SOURCE_DIR/tests/interop/compare_encap.py" --dnsmon "$DNSMON"
