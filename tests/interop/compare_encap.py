#!/usr/bin/env python3
"""Runs dnsmon over the encapsulation captures of tests/interop/encap and compares its messages
with the tshark oracle committed next to each (made by encap_captures.py --oracle).

Every oracle message (id, QR, rcode, qname, qtype, protocol, transport, addresses, ports: the
corpus comparison's full key) must be decoded by dnsmon, in order, and nothing else; and no frame
may be counted as unsupported_link or unsupported_tunnel.

Usage: compare_encap.py --dnsmon BIN
Exit: 0 all good, 1 a difference (listed on stderr).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_oracle  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "encap")
UNSUPPORTED = re.compile(r'^dnsmon_packets_total\{[^}]*result="(unsupported_link|unsupported_tunnel)"'
                         r'[^}]*\} (\S+)', re.M)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dnsmon", required=True)
    args = ap.parse_args()
    failures = []
    captures = sorted(f for f in os.listdir(HERE) if f.endswith(".pcap"))
    if not captures:
        print("no captures in %s" % HERE, file=sys.stderr)
        return 1
    for name in captures:
        oracle = [r for r in compare_oracle.read_oracle(os.path.join(HERE, name + ".tsv"))
                  if compare_oracle.counted(r)]
        want = [compare_oracle.full_oracle_key(r) for r in oracle]
        rc, messages, stderr, metrics = run(args.dnsmon, name)
        got = [compare_oracle.full_dnsmon_key(m) for m in messages
               if compare_oracle.wanted_message(m)]
        if rc != 0:
            failures.append("%s: exit %s: %s" % (name, rc, stderr.strip()[-300:]))
        if not want:
            failures.append("%s: the oracle has no message" % name)
        if got != want:
            failures.append("%s: dnsmon %d messages, oracle %d; first difference: %s" % (
                name, len(got), len(want), first_difference(got, want)))
        for reason, value in UNSUPPORTED.findall(metrics):
            if float(value) != 0:
                failures.append("%s: %s frames counted as %s" % (name, value, reason))
        print("%-12s oracle %3d  dnsmon %3d  %s" % (name, len(want), len(got),
                                                   "ok" if got == want else "DIFFERENT"))
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


def first_difference(got, want):
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else None
        w = want[i] if i < len(want) else None
        if g != w:
            return "#%d dnsmon %s, oracle %s" % (i, g, w)
    return "none"


def run(dnsmon, name):
    """dnsmon -r on one capture: (exit code, messages, stderr, metrics exposition)."""
    with tempfile.TemporaryDirectory() as tmp:
        out, metrics = os.path.join(tmp, "messages.jsonl"), os.path.join(tmp, "metrics.txt")
        proc = subprocess.run([dnsmon, "-r", os.path.join(HERE, name), "--messages-out", out,
                               "--metrics-out", metrics, "--log-level", "warn"],
                              capture_output=True, text=True, errors="replace", timeout=120,
                              check=False)
        messages = []
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                messages = [json.loads(line) for line in f]
        text = ""
        if os.path.exists(metrics):
            with open(metrics, encoding="utf-8") as f:
                text = f.read()
        return proc.returncode, messages, proc.stderr, text


if __name__ == "__main__":
    sys.exit(main())
