"""Pieces of the generated DNS-over-UDP captures of the script tests (latency_pcap.py,
legs_pcap.py): Ethernet/IPv4 or IPv6/UDP frames, an A query and its answer, a nanosecond pcap
file, and the quantiles of the truth."""
import struct


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(src, dst, sport, dport, payload):
    """An Ethernet frame of a UDP datagram; 4-byte addresses make IPv4, 16-byte ones IPv6."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if len(src) == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        ethertype = b"\x08\x00"
    else:
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(udp), 17, 64, src, dst)
        ethertype = b"\x86\xdd"
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + ethertype + ip + udp


def a_exchange(qid, name):
    """The query for name's A record (name in wire form) and a response with one answer."""
    question = name + struct.pack("!HH", 1, 1)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])
    response = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer
    return query, response


def write_pcap(path, records):
    """(nanosecond time, frame) records, written in time order to a nanosecond pcap file."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1))
        for ts, data in sorted(records, key=lambda r: r[0]):
            f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), len(data)))
            f.write(data)


def quantiles(values):
    """p50, p90 and p99 of values, as the truth files give them."""
    values = sorted(values)
    return {f"p{round(q * 100)}": values[min(len(values) - 1, int(q * len(values)))]
            for q in (0.5, 0.9, 0.99)}


def bucket_quantile(buckets, q):
    """Prometheus' bucketQuantile over {upper bound: cumulative count} (with +Inf): the first
    bucket whose count reaches the rank; the +Inf bucket answers with the largest finite bound;
    otherwise a linear interpolation from the bucket's lower bound (0 for the first bucket)."""
    bounds = sorted(buckets)
    rank = q * buckets[float("inf")]
    for i, le in enumerate(bounds):
        if buckets[le] >= rank:
            if le == float("inf"):
                return bounds[-2]
            start = 0.0 if i == 0 else bounds[i - 1]
            below = 0.0 if i == 0 else buckets[bounds[i - 1]]
            return start + (le - start) * (rank - below) / (buckets[le] - below)
    return bounds[-2]
