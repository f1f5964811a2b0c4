"""A capture for timeout_events_test.sh: vendor.example answered for two days, then looked up
without an answer (each lookup tried three times, 1 s apart, with a new id each time), with
answered lookups of other.example between them so that packet time goes on.

Usage: timeout_pcap.py OUT.pcap; prints the number of unanswered queries and of unanswered
lookups (one per client and burst)."""
import struct
import sys

from udp_pcap import a_exchange, frame, write_pcap

S = 10**9
DAY = 86400 * S
T0 = 1459728000 * S  # 2016-04-04T00:00:00Z
SERVER = bytes([198, 51, 100, 53])


def wire(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def client(k):
    return bytes([203, 0, 113 + k % 5, 10 + k])  # five /24 organisations


records = []
qid = 0


def lookup(ts, name, k, answered):
    global qid
    qid += 1
    q, r = a_exchange(qid, wire(name))
    records.append((ts, frame(client(k), SERVER, 40000 + k, 53, q)))
    if answered:
        records.append((ts + 10_000_000, frame(SERVER, client(k), 53, 40000 + k, r)))


# Days 0 and 1: twelve answered lookups a day, from five organisations.
for day in range(2):
    for i in range(12):
        lookup(T0 + day * DAY + 36000 * S + i * 600 * S, "www.vendor.example", i, True)
# Day 2: six unanswered lookups, three tries each; other.example keeps the clock going.
unanswered = 0
for i in range(6):
    t = T0 + 2 * DAY + 36000 * S + i * 600 * S
    for retry in range(3):
        lookup(t + retry * S, "www.vendor.example", i, False)
        unanswered += 1
    lookup(t + 60 * S, "www.other.example", i, True)
write_pcap(sys.argv[1], records)
print(unanswered, 6)
