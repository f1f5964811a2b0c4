#!/usr/bin/env python3
"""Writes a capture of both legs of a resolver, and prints each leg's truth as JSON.

usage: legs_pcap.py OUT.pcap PAIRS SEED

The resolver is 10.0.0.53 and 2001:db8::53. On the client leg, clients 10.0.0.1-200 and
2001:db8:1::1-200 query it and it answers after a LAN latency (lognormal, median 30 us, sigma
0.4). On the upstream leg, it queries authoritative servers 192.0.2.1-20 and 2001:db8:ff::1-20,
which answer after a WAN latency (lognormal, median 30 ms, sigma 0.6). A third, smaller stream
is on neither leg: 198.51.100.7 asks 203.0.113.53. In each stream one query in 50 goes
unanswered; those lie in the first seconds, so that the 5 s matching timeout expires them before
the capture ends. One pair in four is IPv6. Queries start 0.5 ms apart per stream, and
timestamps have nanosecond precision (pcap magic 0xa1b23c4d).

The truth has, per leg ("client", "upstream", "unknown"): queries, matched, timeouts, and the
p50, p90 and p99 of the matched latencies in seconds.
"""
import json
import math
import random
import struct
import sys

from udp_pcap import a_exchange, frame, quantiles, write_pcap


def v4(*b):
    return bytes(b)


def v6(prefix_words, last):
    words = list(prefix_words) + [0] * (8 - len(prefix_words))
    words[7] = last
    return struct.pack("!8H", *words)


def qname(i, zone):
    out = b""
    for label in (f"host{i % 500}".encode(), zone, b"example"):
        out += bytes([len(label)]) + label
    return out + b"\0"


RESOLVER4 = v4(10, 0, 0, 53)
RESOLVER6 = v6([0x2001, 0xDB8], 0x53)
STREAMS = {
    # leg: (client address, server address), median latency, sigma, pairs share
    "client": (lambda i: (v4(10, 0, 0, 1 + i % 200), RESOLVER4),
               lambda i: (v6([0x2001, 0xDB8, 1], 1 + i % 200), RESOLVER6), 30e-6, 0.4, 1.0),
    "upstream": (lambda i: (RESOLVER4, v4(192, 0, 2, 1 + i % 20)),
                 lambda i: (RESOLVER6, v6([0x2001, 0xDB8, 0xFF], 1 + i % 20)), 30e-3, 0.6, 1.0),
    "unknown": (lambda i: (v4(198, 51, 100, 7), v4(203, 0, 113, 53)),
                lambda i: (v6([0x2001, 0xDB8, 0xAA], 7), v6([0x2001, 0xDB8, 0xBB], 53)), 1e-3,
                0.5, 0.2),
}


def main():
    out, pairs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    t0 = 1_700_000_000 * 10**9
    records = []
    truth = {}
    for leg, (addr4, addr6, median, sigma, share) in STREAMS.items():
        latencies = []
        count = int(pairs * share)
        unanswered = 0
        for i in range(count):
            client, server = addr6(i) if i % 4 == 3 else addr4(i)
            sport = 10000 + rng.randrange(50000)
            qid = rng.randrange(65536)
            query, response = a_exchange(qid, qname(i, leg.encode()))
            tq = t0 + i * 500_000 + rng.randrange(1000)
            records.append((tq, frame(client, server, sport, 53, query)))
            if i % 50 == 7 and i * 500_000 < 2 * 10**9:
                unanswered += 1
                continue
            latency_ns = max(1, round(rng.lognormvariate(math.log(median), sigma) * 1e9))
            latencies.append(latency_ns / 1e9)
            records.append((tq + latency_ns, frame(server, client, 53, sport, response)))
        truth[leg] = {"queries": count, "matched": len(latencies), "timeouts": unanswered,
                      **quantiles(latencies)}
    # A last query 10 s after the rest moves the clock on, so every unanswered query times out;
    # it is on no leg and stays outstanding.
    last = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + qname(0, b"end") + struct.pack(
        "!HH", 1, 1)
    end = max(r[0] for r in records) + 10 * 10**9
    records.append((end, frame(v4(198, 51, 100, 8), v4(203, 0, 113, 54), 40000, 53, last)))
    truth["unknown"]["queries"] += 1
    write_pcap(out, records)
    json.dump(truth, sys.stdout)
    print()


if __name__ == "__main__":
    main()
