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


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    return eth + ip + udp


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
        name = qname(i)
        question = name + struct.pack("!HH", 1, 1)
        query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])
        response = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer
        latency = rng.lognormvariate(math.log(median), sigma)
        latency_ns = max(1, round(latency * 1e9))
        latencies.append(latency_ns / 1e9)
        tq = t0 + i * 1_000_000
        records.append((tq, frame(client, server, sport, 53, query)))
        records.append((tq + latency_ns, frame(server, client, 53, sport, response)))
    records.sort(key=lambda r: r[0])
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        for ts, data in records:
            f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), len(data)))
            f.write(data)
    latencies.sort()
    truth = {f"p{round(q * 100)}": latencies[min(len(latencies) - 1, int(q * len(latencies)))]
             for q in (0.5, 0.9, 0.99)}
    json.dump(truth, sys.stdout)
    print()


if __name__ == "__main__":
    main()
