#!/usr/bin/env python3
"""Writes a capture of DNS queries answered after latencies drawn from a lognormal distribution,
and prints the true p50, p90 and p99 of those latencies as JSON.

usage: latency_pcap.py OUT.pcap MEDIAN_SECONDS SIGMA PAIRS SEED

Each pair is a UDP query from one of 200 clients (198.18.0.0/24) to 198.18.255.53 and its
NOERROR answer; queries start 1 ms apart, so several are outstanding at once when the latency is
long. Timestamps have nanosecond precision (pcap magic 0xa1b23c4d).
"""
import json
import math
import random
import struct
import sys

from udp_pcap import a_exchange, frame, quantiles, write_pcap


def qname(i):
    out = b""
    for label in (f"host{i % 500}".encode(), b"example"):
        out += bytes([len(label)]) + label
    return out + b"\0"


def main():
    out, median, sigma, pairs, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(
        sys.argv[4]), int(sys.argv[5])
    rng = random.Random(seed)
    server = bytes([198, 18, 255, 53])
    records = []
    latencies = []
    t0 = 1_700_000_000 * 10**9
    for i in range(pairs):
        client = bytes([198, 18, 0, 1 + i % 200])
        sport = 10000 + rng.randrange(50000)
        qid = rng.randrange(65536)
        query, response = a_exchange(qid, qname(i))
        latency = rng.lognormvariate(math.log(median), sigma)
        latency_ns = max(1, round(latency * 1e9))
        latencies.append(latency_ns / 1e9)
        tq = t0 + i * 1_000_000
        records.append((tq, frame(client, server, sport, 53, query)))
        records.append((tq + latency_ns, frame(server, client, 53, sport, response)))
    write_pcap(out, records)
    json.dump(quantiles(latencies), sys.stdout)
    print()


if __name__ == "__main__":
    main()
