#!/usr/bin/env python3
"""A DNS server whose every answer is larger than an Ethernet MTU, and a client for it.

  big_answers.py serve SECONDS ADDR...   answer queries on port 53 of each address for SECONDS
  big_answers.py query ADDR COUNT        send COUNT TXT queries one after another, print the tally

Each answer holds one TXT record of twelve 250-byte strings (about 3,060 bytes of DNS), so the
sending kernel fragments it: three IPv4 fragments, or three IPv6 fragments, on a 1,500-byte link.
"""
import select
import socket
import struct
import sys
import time

TXT_STRINGS = 12
STRING_BYTES = 250


def question_end(msg):
    """Offset just past the first question (name, type, class), or None."""
    at = 12
    while at < len(msg):
        n = msg[at]
        if n == 0:
            return at + 5 if at + 5 <= len(msg) else None
        if n & 0xC0:
            return None
        at += 1 + n
    return None


def answer(query):
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    end = question_end(query)
    if flags & 0x8000 or qdcount != 1 or end is None:
        return None
    rdata = b"".join(bytes([STRING_BYTES]) + bytes([0x61 + i]) * STRING_BYTES
                     for i in range(TXT_STRINGS))
    header = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100), 1, 1, 0, 0)
    record = struct.pack("!HHHIH", 0xC00C, 16, 1, 60, len(rdata)) + rdata
    return header + query[12:end] + record


def serve(seconds, addresses):
    socks = []
    for addr in addresses:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((addr, 53))
        socks.append(s)
    deadline = time.monotonic() + seconds
    served = 0
    while time.monotonic() < deadline:
        ready, _, _ = select.select(socks, [], [], 0.2)
        for s in ready:
            query, peer = s.recvfrom(4096)
            reply = answer(query)
            if reply is not None:
                s.sendto(reply, peer)
                served += 1
    print(f"served={served}", flush=True)


def query(addr, count):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((addr, 53))
    s.settimeout(2.0)
    answered = 0
    largest = 0
    for i in range(count):
        qid = (i * 7919 + 1) & 0xFFFF
        name = b"".join(bytes([len(label)]) + label
                        for label in (f"big{i}".encode(), b"example", b"test")) + b"\0"
        opt = b"\0" + struct.pack("!HHIH", 41, 4096, 0, 0)
        s.send(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + name + struct.pack("!HH", 16, 1)
               + opt)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                reply = s.recv(65535)
            except socket.timeout:
                break
            if len(reply) >= 2 and struct.unpack("!H", reply[:2])[0] == qid:
                answered += 1
                largest = max(largest, len(reply))
                break
    print(f"sent={count} answered={answered} largest={largest}", flush=True)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "serve":
        serve(float(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "query":
        query(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
