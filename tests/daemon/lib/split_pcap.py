#!/usr/bin/env python3
"""Splits a classic pcap file (microsecond or nanosecond, either byte order) in two at the first
record that starts at or after the middle of the file: split_pcap.py IN FIRST SECOND.
Both halves get the file header; prints the number of records of each and the packet time
(seconds since the epoch) of the second half's first record."""
import struct
import sys


def main():
    data = open(sys.argv[1], "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit("%s: not a classic pcap file" % sys.argv[1])
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    header, off, cut, counts, cut_ts = data[:24], 24, None, [0, 0], None
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
        if cut is None and off >= len(data) // 2:
            cut, cut_ts = off, sec + frac / (1e9 if nano else 1e6)
        counts[0 if cut is None else 1] += 1
        off += 16 + incl
    if cut is None:
        sys.exit("%s: too few records to split" % sys.argv[1])
    open(sys.argv[2], "wb").write(data[:cut])
    open(sys.argv[3], "wb").write(header + data[cut:])
    print("%d %d %.9f" % (counts[0], counts[1], cut_ts))


if __name__ == "__main__":
    main()
