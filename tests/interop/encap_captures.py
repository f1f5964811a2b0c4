#!/usr/bin/env python3
"""Writes the encapsulation captures of tests/interop/encap and, with --oracle, their tshark oracle.

Each capture carries DNS queries and responses inside one family of encapsulations, built byte by
byte here (no packet library): PPPoE sessions (untagged, 802.1Q, QinQ), MPLS label stacks (IP after
the bottom label, an Ethernet pseudowire with a control word), GTP-U (with extension headers),
L2TPv2 data messages (with the optional fields), and the NFLOG and FDDI link types.

Usage: encap_captures.py OUTDIR [--oracle]
  OUTDIR/NAME.pcap for every capture; with --oracle also OUTDIR/NAME.pcap.tsv made with tshark
  exactly as the corpus oracle is (/work/shared/pcaps/tools/make_oracle.py, same columns).
The committed files in tests/interop/encap were made with `encap_captures.py tests/interop/encap
--oracle` and TShark 4.0.17 (Debian 12).
"""
import json
import struct
import subprocess
import sys

LINK_ETHERNET, LINK_FDDI, LINK_NFLOG = 1, 10, 239


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def dns(ident, name, response=False, qtype=1, rcode=0):
    flags = (0x8180 | rcode) if response else 0x0100
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack("!HH", qtype, 1)
    answers = 0
    body = b""
    if response and rcode == 0:
        answers = 1
        if qtype == 28:
            body = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 300, 16) + bytes(15) + b"\1"
        else:
            body = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 7])
    return struct.pack("!HHHHHH", ident, flags, 1, answers, 0, 0) + q + body


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq, ack, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload


def ipv4(src, dst, proto, payload, ident=1):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                    bytes(src), bytes(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, next_header, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64, bytes(src),
                       bytes(dst)) + payload


def v6(last):
    return [0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [last]


def ether(ethertype, payload, tags=(), macs=bytes([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2])):
    b = macs
    for tpid, vid in tags:
        b += struct.pack("!HH", tpid, vid)
    return b + struct.pack("!H", ethertype) + payload


def exchange(ident, name, version=4, client=1, qtype=1):
    """A query and its response as IP packets (client port 40000+ident)."""
    port = 40000 + ident % 20000
    q, r = dns(ident, name, qtype=qtype), dns(ident, name, True, qtype=qtype)
    if version == 4:
        c, s = [192, 0, 2, client], [198, 51, 100, 53]
        return [ipv4(c, s, 17, udp(port, 53, q)), ipv4(s, c, 17, udp(53, port, r))]
    c, s = v6(client), v6(0x53)
    return [ipv6(c, s, 17, udp(port, 53, q)), ipv6(s, c, 17, udp(53, port, r))]


def tcp_exchange(ident, name):
    """A DNS over TCP query and response with the handshake, as IPv4 packets."""
    c, s = [192, 0, 2, 9], [198, 51, 100, 53]
    port = 50000 + ident % 10000
    q = dns(ident, name)
    r = dns(ident, name, True)
    q, r = struct.pack("!H", len(q)) + q, struct.pack("!H", len(r)) + r
    return [
        ipv4(c, s, 6, tcp(port, 53, 1000, 0, 0x02)),
        ipv4(s, c, 6, tcp(53, port, 5000, 1001, 0x12)),
        ipv4(c, s, 6, tcp(port, 53, 1001, 5001, 0x10)),
        ipv4(c, s, 6, tcp(port, 53, 1001, 5001, 0x18, q)),
        ipv4(s, c, 6, tcp(53, port, 5001, 1001 + len(q), 0x18, r)),
    ]


def version_of(packet):
    return packet[0] >> 4


def pppoe(packet, session=0x1234):
    proto = 0x0021 if version_of(packet) == 4 else 0x0057
    return struct.pack("!BBHHH", 0x11, 0, session, len(packet) + 2, proto) + packet


def mpls(packet, labels):
    b = b""
    for i, label in enumerate(labels):
        b += struct.pack("!I", (label << 12) | (0x100 if i == len(labels) - 1 else 0) | 64)
    return b + packet


def gtpu(packet, extensions=False, teid=0x1001):
    if not extensions:
        return struct.pack("!BBHI", 0x30, 255, len(packet), teid) + packet
    # E and S flags: sequence number, N-PDU number, next type 0x85 (PDU session container).
    ext = struct.pack("!HBB", 7, 0, 0x85) + bytes([1, 0x10, 0x09, 0])
    return struct.pack("!BBHI", 0x36, 255, len(ext) + len(packet), teid) + ext + packet


def l2tp(packet, flags, ppp_header):
    proto = 0x21 if version_of(packet) == 4 else 0x57
    ppp = (b"\xff\x03" if ppp_header else b"") + struct.pack("!H", proto) + packet
    b = b""
    if flags & 0x4000:
        b += struct.pack("!H", 0)  # set below
    b += struct.pack("!HH", 7, 9)
    if flags & 0x0800:
        b += struct.pack("!HH", 0, 0)
    if flags & 0x0200:
        b += struct.pack("!H", 2) + b"\0\0"
    body = struct.pack("!H", flags | 2) + b + ppp
    if flags & 0x4000:
        body = body[:2] + struct.pack("!H", len(body)) + body[4:]
    return body


def outer_udp4(sport, dport, payload, ident=7):
    return ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, udp(sport, dport, payload), ident)


def outer_udp6(sport, dport, payload):
    p = udp(sport, dport, payload)
    src, dst = [0xfd, 0] + [0] * 13 + [1], [0xfd, 0] + [0] * 13 + [2]
    # UDP over IPv6 needs a checksum (RFC 8200 §8.1).
    pseudo = bytes(src) + bytes(dst) + struct.pack("!IxxxB", len(p), 17)
    c = csum(pseudo + p) or 0xFFFF
    p = p[:6] + struct.pack("!H", c) + p[8:]
    return ipv6(src, dst, 17, p)


def captures():
    out = {}
    frames = []
    for i, pair in enumerate([exchange(1, "pppoe-untagged.example"),
                              exchange(2, "pppoe-v6.example", 6)]):
        frames += [ether(0x8864, pppoe(p)) for p in pair]
    frames += [ether(0x8864, pppoe(p), [(0x8100, 10)]) for p in exchange(3, "pppoe-vlan.example")]
    frames += [ether(0x8864, pppoe(p), [(0x88A8, 20), (0x8100, 30)])
               for p in exchange(4, "pppoe-qinq.example", 6)]
    frames += [ether(0x8864, pppoe(p)) for p in tcp_exchange(5, "pppoe-tcp.example")]
    out["pppoe"] = (LINK_ETHERNET, frames)

    frames = [ether(0x8847, mpls(p, [100])) for p in exchange(11, "mpls-one.example")]
    frames += [ether(0x8847, mpls(p, [100, 200])) for p in exchange(12, "mpls-two.example", 6)]
    frames += [ether(0x8847, mpls(p, [16, 17, 18])) for p in exchange(13, "mpls-three.example")]
    frames += [ether(0x8847, mpls(p, [300]), [(0x8100, 40)])
               for p in exchange(14, "mpls-vlan.example")]
    frames += [ether(0x8848, mpls(p, [400])) for p in exchange(15, "mpls-mcast.example", 6)]
    frames += [ether(0x8847, mpls(p, [500])) for p in tcp_exchange(16, "mpls-tcp.example")]
    # Ethernet pseudowires: a control word, then the customer's frame (plain, then tagged). Its
    # addresses have registered OUIs: tshark's pseudowire heuristic looks for a control word only
    # when the frame after it starts with two known manufacturers' addresses.
    inner = bytes([0x00, 0x1b, 0x21, 0, 0, 1, 0x00, 0x0c, 0x29, 0, 0, 2])
    frames += [ether(0x8847, mpls(bytes(4) + ether(0x0800, p, macs=inner), [1000, 2000]))
               for p in exchange(17, "mpls-pw.example")]
    frames += [ether(0x8847, mpls(bytes(4) + ether(0x86DD, p, [(0x8100, 50)], inner), [1000, 2001]))
               for p in exchange(18, "mpls-pw-vlan.example", 6)]
    out["mpls"] = (LINK_ETHERNET, frames)

    frames = [ether(0x0800, outer_udp4(2152, 2152, gtpu(p)))
              for p in exchange(21, "gtpu.example")]
    frames += [ether(0x0800, outer_udp4(2152, 2152, gtpu(p, True)))
               for p in exchange(22, "gtpu-ext.example", 6)]
    frames += [ether(0x86DD, outer_udp6(2152, 2152, gtpu(p, True)))
               for p in exchange(23, "gtpu-over-v6.example")]
    frames += [ether(0x0800, outer_udp4(2152, 2152, gtpu(p)))
               for p in tcp_exchange(24, "gtpu-tcp.example")]
    out["gtpu"] = (LINK_ETHERNET, frames)

    frames = []
    for n, (flags, ppp_header, version) in enumerate([
            (0x0000, True, 4), (0x4000, True, 6), (0x0800, False, 4), (0x4A00, True, 4),
            (0x0200, False, 6)]):
        frames += [ether(0x0800, outer_udp4(1701, 1701, l2tp(p, flags, ppp_header)))
                   for p in exchange(31 + n, "l2tp-%d.example" % n, version)]
    out["l2tp"] = (LINK_ETHERNET, frames)

    def nflog(packet):
        family = 2 if version_of(packet) == 4 else 10

        def tlv(t, v):
            b = struct.pack("<HH", 4 + len(v), t) + v
            return b + bytes(-len(b) % 4)
        return (struct.pack("!BBH", family, 0, 5) + tlv(1, struct.pack("!HBB", 0x0800, 3, 0)) +
                tlv(10, b"dns\0") + tlv(9, packet))
    frames = [nflog(p) for p in exchange(41, "nflog.example") + exchange(42, "nflog6.example", 6)]
    out["nflog"] = (LINK_NFLOG, frames)

    def fddi(packet):
        et = 0x0800 if version_of(packet) == 4 else 0x86DD
        return (bytes([0x50, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1]) +
                bytes([0xAA, 0xAA, 0x03, 0, 0, 0]) + struct.pack("!H", et) + packet)
    frames = [fddi(p) for p in exchange(51, "fddi.example") + exchange(52, "fddi6.example", 6)]
    out["fddi"] = (LINK_FDDI, frames)
    return out


def write_pcap(path, link, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 1000 * i, len(frame), len(frame)))
            f.write(frame)


def write_oracle(pcap, tsv):
    """The corpus oracle's command and columns (make_oracle.py), for one capture."""
    sys.path.insert(0, "/work/shared/pcaps/tools")
    import make_oracle  # noqa: E402  (the corpus' own script, reused as is)
    saved = sys.argv
    sys.argv = ["make_oracle.py", pcap, tsv]
    try:
        make_oracle.main()
    finally:
        sys.argv = saved


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    for name, (link, frames) in captures().items():
        path = "%s/%s.pcap" % (outdir, name)
        write_pcap(path, link, frames)
        if "--oracle" in sys.argv[2:]:
            write_oracle(path, path + ".tsv")


if __name__ == "__main__":
    main()
