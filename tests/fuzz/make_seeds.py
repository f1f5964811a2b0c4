#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets in tests/fuzz (standard library only).

  make_seeds.py checked-in --gen-pcap build/dev/tools/gen_pcap [--out tests/fuzz/seeds]
      Rewrites the seeds kept in git from captures made by tools/gen_pcap and from frames, messages
      and files built by hand below. No third-party bytes. Regression seeds (crash-*, timeout-*,
      leak-*, oom-*) are kept.
  make_seeds.py corpus --pcaps ../shared/pcaps --out DIR
      Cuts seeds from the public capture corpus into DIR/<target>/ (for tcp_stream, the DNS-over-TCP
      segments of each capture). Those captures are third-party (see their MANIFEST.tsv): the
      result belongs in a build directory, never in git.
  make_seeds.py prepare --seeds tests/fuzz/seeds --pcaps ../shared/pcaps --out DIR
      What ctest runs before the bounded fuzzing runs: DIR/work/<target> becomes a fresh copy of the
      checked-in seeds (the fuzzer's working corpus, which it writes to) and DIR/corpus/<target> the
      output of `corpus` (empty when the capture corpus is absent).

Targets and their input formats:
  dns_message  one bare DNS message
  dns_answers  one bare DNS message (the dns_message seeds, and hand-built responses of its own)
  packet_path  byte 0: link types (low nibble source 0, high nibble source 1, indexes into
               LINK_TYPES); then per frame: u16 length, u8 control, the frame (packet_path_fuzz.cpp)
  pcap_file    a pcap or pcapng file
  pcap_reader  a classic pcap file (pcap_reader_fuzz reads it with PcapReader and with libpcap)
  psl_rules    a public suffix list, and generator choices (psl_rules_fuzz.cpp)
  tcp_stream   byte 0: options; then per segment: u8 control, i16 delta, u16 length, u8 repeat,
               u8 time, the payload (tcp_stream_fuzz.cpp)
  state_file   a detection state file (metrics/detect/include/dnsmon/detect/state_file.hpp)
  checkpoint   byte 0 even: a state file for the engine's loader; odd: (u8 section, u32 offset,
               u8 xor) edits of a valid checkpoint (checkpoint_fuzz.cpp)
  dnstap       byte 0: chunk size (0 all at once); then a dnstap writer's Frame Streams bytes
               (dnstap_fuzz.cpp)
"""

import argparse
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

TARGETS = ("dns_message", "packet_path", "pcap_file", "pcap_reader", "psl_rules", "tcp_stream",
           "state_file", "checkpoint", "dnstap")
# Targets that read the input of another: their working and corpus seeds are that target's, plus
# the few checked in under their own name.
SHARED_INPUT = {"dns_answers": "dns_message"}
REGRESSION_PREFIXES = ("crash-", "timeout-", "leak-", "oom-", "slow-unit-")

LINK_ETHERNET, LINK_NULL, LINK_RAW, LINK_RAW_OPENBSD, LINK_RAW_BSDOS = 1, 0, 101, 12, 14
LINK_LOOP, LINK_SLL, LINK_IPV4, LINK_IPV6, LINK_SLL2, LINK_PPP = 108, 113, 228, 229, 276, 9
LINK_PPP_HDLC, LINK_80211, LINK_RADIOTAP, LINK_PPI, LINK_ARCNET, LINK_PKTAP = \
    50, 105, 127, 192, 129, 258
LINK_USER0 = 147  # a link type nobody decodes

# Must match kLinkTypes in packet_path_fuzz.cpp.
LINK_TYPES = (LINK_ETHERNET, LINK_SLL, LINK_SLL2, LINK_NULL, LINK_LOOP, LINK_RAW, LINK_RAW_OPENBSD,
              LINK_IPV4, LINK_IPV6, LINK_PPP, LINK_PPP_HDLC, LINK_80211, LINK_RADIOTAP, LINK_PPI,
              LINK_ARCNET, LINK_PKTAP)

MAX_FILE = 16 * 1024  # pcap_file and packet_path seeds cut from the corpus stay below this
MAX_FRAMES = 64  # frames per packet_path seed
DNS_PORTS = {53, 5353, 5355, 8053, 1053}
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, as in packet_path_fuzz.cpp


# ---------------------------------------------------------------------------------------------
# Building packets


def u8(v):
    return struct.pack("!B", v & 0xFF)


def u16(v):
    return struct.pack("!H", v & 0xFFFF)


def u32(v):
    return struct.pack("!I", v & 0xFFFFFFFF)


def inet_checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def v4(text):
    return bytes(int(x) for x in text.split("."))


def v6(text):
    head, _, tail = text.partition("::")
    h = [int(x, 16) for x in head.split(":") if x]
    t = [int(x, 16) for x in tail.split(":") if x]
    groups = h + [0] * (8 - len(h) - len(t)) + t
    return b"".join(u16(g) for g in groups)


def dns_name(name):
    """A wire name from dotted text, or from a list of raw labels (bytes)."""
    if isinstance(name, (list, tuple)):
        labels = list(name)
    else:
        labels = [x.encode() for x in name.split(".") if x]
    return b"".join(u8(len(label)) + label for label in labels) + b"\0"


def dns_header(ident, flags, qd=1, an=0, ns=0, ar=0):
    return u16(ident) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar)


def opt_rr(udp_size=1232, ext_rcode=0, version=0, do=False, options=b""):
    return b"\0" + u16(41) + u16(udp_size) + u8(ext_rcode) + u8(version) + \
        u16(0x8000 if do else 0) + u16(len(options)) + options


def dns_query(ident, name, qtype=1, edns=None, flags=0x0100):
    body = dns_name(name) + u16(qtype) + u16(1)
    ar = 0
    if edns is not None:
        body += edns
        ar = 1
    return dns_header(ident, flags, 1, 0, 0, ar) + body


def dns_response(ident, name, qtype=1, rcode=0, answers=(), edns=None):
    body = dns_name(name) + u16(qtype) + u16(1)
    for rtype, rdata in answers:
        body += u16(0xC00C) + u16(rtype) + u16(1) + u32(300) + u16(len(rdata)) + rdata
    ar = 0
    if edns is not None:
        body += edns
        ar = 1
    return dns_header(ident, 0x8180 | rcode, 1, len(answers), 0, ar) + body


def ipv4(src, dst, proto, payload, ident=0x1234, df=True, mf=False, frag_off=0, total=None,
         options=b"", ttl=64):
    ihl = 5 + len(options) // 4
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_off // 8)
    total = 20 + len(options) + len(payload) if total is None else total
    header = u8(0x40 | ihl) + u8(0) + u16(total) + u16(ident) + u16(flags) + u8(ttl) + \
        u8(proto) + u16(0) + v4(src) + v4(dst) + options
    header = header[:10] + u16(inet_checksum(header)) + header[12:]
    return header + payload


def ipv6(src, dst, next_header, payload, plen=None, hop_limit=64):
    plen = len(payload) if plen is None else plen
    return u32(0x60000000) + u16(plen) + u8(next_header) + u8(hop_limit) + v6(src) + v6(dst) + \
        payload


def ext_header(next_header, data=b"\0" * 6):
    """Hop-by-hop (0), routing (43) or destination options (60): 8-byte units."""
    body = u8(next_header) + u8((len(data) + 2) // 8 - 1) + data
    return body


def ext_fragment(next_header, offset, more, ident):
    return u8(next_header) + u8(0) + u16((offset // 8) << 3 | (1 if more else 0)) + u32(ident)


def ext_ah(next_header):
    return u8(next_header) + u8(4) + u16(0) + u32(0x100) + u32(1) + b"\xAA" * 12  # 24 bytes


def udp(sport, dport, payload, length=None):
    length = 8 + len(payload) if length is None else length
    return u16(sport) + u16(dport) + u16(length) + u16(0) + payload


TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp(sport, dport, seq, ack, flags, payload=b"", offset=5, options=b""):
    return u16(sport) + u16(dport) + u32(seq) + u32(ack) + u8(offset << 4) + u8(flags) + \
        u16(65535) + u16(0) + u16(0) + options + payload


MAC_A = bytes.fromhex("020000000002")
MAC_B = bytes.fromhex("020000000001")


def ethernet(packet, ethertype=None, tags=()):
    if ethertype is None:
        ethertype = 0x0800 if packet[0] >> 4 == 4 else 0x86DD
    out = MAC_A + MAC_B
    for tpid, vid in tags:
        out += u16(tpid) + u16(vid)
    return out + u16(ethertype) + packet


def ethertype_of(packet):
    return 0x0800 if packet and packet[0] >> 4 == 4 else 0x86DD


def wrap(linktype, packet, ethertype=None, tags=()):
    """Frames an IP packet in a link layer."""
    et = ethertype_of(packet) if ethertype is None else ethertype
    family6 = packet and packet[0] >> 4 == 6
    if linktype == LINK_ETHERNET:
        return ethernet(packet, et, tags)
    if linktype == LINK_SLL:  # packet type, ARPHRD_ETHER, address length, address, protocol
        return u16(0) + u16(1) + u16(6) + MAC_A + b"\0\0" + u16(et) + packet
    if linktype == LINK_SLL2:  # protocol, reserved, ifindex, ARPHRD, packet type, addr len, addr
        return u16(et) + u16(0) + u32(2) + u16(1) + u8(4) + u8(6) + MAC_A + b"\0\0" + packet
    if linktype == LINK_NULL:  # address family in the writer's (here little-endian) byte order
        return struct.pack("<I", 30 if family6 else 2) + packet
    if linktype == LINK_LOOP:  # network byte order
        return u32(24 if family6 else 2) + packet
    if linktype in (LINK_PPP, LINK_PPP_HDLC):
        return b"\xff\x03" + u16(0x0057 if family6 else 0x0021) + packet
    if linktype == LINK_80211:
        return wifi(packet, et)
    if linktype == LINK_RADIOTAP:  # version, pad, length (LE), present flags: no fields
        return b"\0\0" + struct.pack("<HI", 8, 0) + wifi(packet, et)
    if linktype == LINK_PPI:  # version, flags, length (LE), DLT of what follows (LE)
        return b"\0\0" + struct.pack("<HI", 8, LINK_ETHERNET) + ethernet(packet, et, tags)
    if linktype == LINK_PKTAP:  # Apple's 108-byte header: length, record type (packet), DLT, ...
        return struct.pack("<III", 108, 1, LINK_ETHERNET) + b"\0" * 96 + ethernet(packet, et, tags)
    if linktype == LINK_ARCNET:  # source, destination, offset, protocol id 240 (RFC 1051 IP)
        return b"\x01\x02\0\0\xf0" + packet
    return packet  # raw IP, IPv4, IPv6


def wifi(packet, ethertype, frame_control=b"\x08\x02"):
    """An 802.11 data frame (from the DS unless told otherwise) with an LLC/SNAP header; the
    frame control decides the optional fields (4th address, QoS control, HT control)."""
    fc0, fc1 = frame_control
    header = frame_control + b"\0\0" + MAC_A + MAC_B + MAC_A + b"\x10\0"
    if fc1 & 0x03 == 0x03:
        header += MAC_B
    if fc0 & 0x80:
        header += b"\0\0" + (b"\0" * 4 if fc1 & 0x80 else b"")
    return header + b"\xaa\xaa\x03\0\0\0" + u16(ethertype) + packet


def unwrap(linktype, frame):
    """The IP packet in a frame, or None."""
    if linktype == LINK_ETHERNET:
        off = 12
        if len(frame) < 14:
            return None
        et = struct.unpack_from("!H", frame, off)[0]
        tags = 0
        while et in (0x8100, 0x88A8, 0x9100) and tags < 8:
            off += 4
            tags += 1
            if len(frame) < off + 2:
                return None
            et = struct.unpack_from("!H", frame, off)[0]
        return frame[off + 2:] if et in (0x0800, 0x86DD) else None
    if linktype == LINK_SLL:
        return frame[16:] if len(frame) >= 16 and frame[14:16] in (b"\x08\x00", b"\x86\xdd") \
            else None
    if linktype == LINK_SLL2:
        return frame[20:] if len(frame) >= 20 and frame[0:2] in (b"\x08\x00", b"\x86\xdd") \
            else None
    if linktype in (LINK_NULL, LINK_LOOP):
        return frame[4:] if len(frame) >= 4 else None
    if linktype in (LINK_RAW, LINK_RAW_OPENBSD, LINK_RAW_BSDOS, LINK_IPV4, LINK_IPV6):
        return frame
    if linktype in (LINK_PPP, LINK_PPP_HDLC):
        off = 2 if frame[:2] == b"\xff\x03" else 0
        return frame[off + 2:] if frame[off:off + 2] in (b"\0\x21", b"\0\x57") else None
    if linktype == LINK_PPI and len(frame) >= 8:
        n, dlt = struct.unpack_from("<HI", frame, 2)
        return unwrap(dlt, frame[n:]) if n >= 8 else None
    if linktype == LINK_PKTAP and len(frame) >= 12:
        n, _, dlt = struct.unpack_from("<III", frame, 0)
        return unwrap(dlt, frame[n:]) if n >= 12 else None
    if linktype == LINK_ARCNET and len(frame) >= 5:
        return frame[5:] if frame[4] == 240 else frame[8:] if frame[4] == 212 else None
    if linktype == LINK_RADIOTAP and len(frame) >= 4:
        return unwrap(LINK_80211, frame[struct.unpack_from("<H", frame, 2)[0]:])
    if linktype == LINK_80211 and len(frame) >= 24 and (frame[0] >> 2) & 3 == 2:
        off = 24 + (6 if frame[1] & 3 == 3 else 0) + (2 if frame[0] & 0x80 else 0)
        if frame[off:off + 2] == b"\xaa\xaa" and frame[off + 6:off + 8] in (b"\x08\x00",
                                                                          b"\x86\xdd"):
            return frame[off + 8:]
    return None


def transport(packet):
    """(proto, sport, dport, payload) of an IP packet, or None. Non-first fragments: None."""
    t = ip_payload(packet)
    if t is None:
        return None
    proto, payload = t
    if proto == 17 and len(payload) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", payload, 0)
        data = payload[8:length] if 8 <= length <= len(payload) else payload[8:]
        return proto, sport, dport, data
    if proto == 6 and len(payload) >= 20:
        sport, dport = struct.unpack_from("!HH", payload, 0)
        return proto, sport, dport, payload[(payload[12] >> 4) * 4:]
    return None


def tcp_segment(packet):
    """(sport, dport, seq, flags, payload) of a TCP segment in an IP packet, or None."""
    t = ip_payload(packet)
    if t is None or t[0] != 6 or len(t[1]) < 20:
        return None
    tcp = t[1]
    sport, dport, seq = struct.unpack_from("!HHI", tcp, 0)
    return sport, dport, seq, tcp[13], tcp[(tcp[12] >> 4) * 4:]


def ip_payload(packet):
    """(next protocol, payload) of an IP packet after its extension headers, or None.
    Non-first fragments: None."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        if len(packet) < 20:
            return None
        ihl = (packet[0] & 0xF) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        frag = struct.unpack_from("!H", packet, 6)[0]
        if frag & 0x1FFF:
            return None
        proto = packet[9]
        end = total if ihl <= total <= len(packet) else len(packet)
        payload = packet[ihl:end]
    elif version == 6:
        if len(packet) < 40:
            return None
        proto = packet[6]
        payload = packet[40:]
        for _ in range(8):
            if proto in (0, 43, 60) and len(payload) >= 2:
                proto, payload = payload[0], payload[(payload[1] + 1) * 8:]
            elif proto == 44 and len(payload) >= 8:
                if struct.unpack_from("!H", payload, 2)[0] & 0xFFF8:
                    return None
                proto, payload = payload[0], payload[8:]
            elif proto == 51 and len(payload) >= 2:
                proto, payload = payload[0], payload[(payload[1] + 2) * 4:]
            else:
                break
    else:
        return None
    return proto, payload


def dns_messages_in(linktype, frame):
    """DNS messages carried by a frame: a UDP payload, or whole length-prefixed TCP messages."""
    t = transport(unwrap(linktype, frame))
    if t is None:
        return []
    proto, sport, dport, data = t
    if sport not in DNS_PORTS and dport not in DNS_PORTS:
        return []
    if proto == 17:
        return [data] if data else []
    out = []
    while len(data) >= 2:
        n = struct.unpack_from("!H", data, 0)[0]
        if n < 12 or len(data) < 2 + n:
            break
        out.append(data[2:2 + n])
        data = data[2 + n:]
    return out


# ---------------------------------------------------------------------------------------------
# Capture files


class Packet:
    def __init__(self, linktype, ts_ns, data, wire_len=None):
        self.linktype, self.ts_ns, self.data = linktype, ts_ns, data
        self.wire_len = len(data) if wire_len is None else wire_len


def read_capture(blob):
    """Packets of a pcap or pcapng file; stops quietly at the first damaged record."""
    if len(blob) < 4:
        return []
    if blob[:4] == b"\x0a\x0d\x0d\x0a":
        return read_pcapng(blob)
    return read_pcap(blob)


def read_pcap(blob):
    if len(blob) < 24:
        return []
    for order in ("<", ">"):
        magic = struct.unpack_from(order + "I", blob, 0)[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        return []
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack_from(order + "I", blob, 20)[0] & 0xFFFF
    out, pos = [], 24
    while pos + 16 <= len(blob):
        sec, frac, caplen, wire = struct.unpack_from(order + "IIII", blob, pos)
        pos += 16
        if caplen > len(blob) - pos:
            break
        ts = sec * 10**9 + (frac if nano else frac * 1000)
        out.append(Packet(linktype, ts, blob[pos:pos + caplen], wire))
        pos += caplen
    return out


def pcapng_blocks(blob):
    """(type, body, start, end, byte order) of each block."""
    pos, order = 0, "<"
    while pos + 12 <= len(blob):
        btype = struct.unpack_from(order + "I", blob, pos)[0]
        if btype == 0x0A0D0D0A:
            if pos + 12 > len(blob):
                return
            order = "<" if blob[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        length = struct.unpack_from(order + "I", blob, pos + 4)[0]
        if length < 12 or length % 4 or pos + length > len(blob):
            return
        yield btype, blob[pos + 8:pos + length - 4], pos, pos + length, order
        pos += length


def read_pcapng(blob):
    out, ifaces = [], []
    for btype, body, _, _, order in pcapng_blocks(blob):
        if btype == 0x0A0D0D0A:
            ifaces = []
        elif btype == 1 and len(body) >= 8:
            linktype, _, snaplen = struct.unpack_from(order + "HHI", body, 0)
            units = 10**6
            pos = 8
            while pos + 4 <= len(body):
                code, olen = struct.unpack_from(order + "HH", body, pos)
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    r = body[pos + 4]
                    units = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
                pos += 4 + (olen + 3) // 4 * 4
            ifaces.append((linktype, snaplen, units))
        elif btype in (2, 6) and len(body) >= 20:
            if btype == 6:
                iface, hi, lo, caplen, wire = struct.unpack_from(order + "IIIII", body, 0)
            else:
                iface, _, hi, lo, caplen, wire = struct.unpack_from(order + "HHIIII", body, 0)
            if iface >= len(ifaces) or caplen > len(body) - 20:
                continue
            linktype, _, units = ifaces[iface]
            ts = ((hi << 32) | lo) * 10**9 // units
            out.append(Packet(linktype, ts, body[20:20 + caplen], wire))
        elif btype == 3 and len(body) >= 4 and ifaces:
            wire = struct.unpack_from(order + "I", body, 0)[0]
            linktype, snaplen, _ = ifaces[0]
            caplen = min(wire, len(body) - 4, snaplen or wire)
            out.append(Packet(linktype, 0, body[4:4 + caplen], wire))
    return out


def write_pcap(packets, linktype=None, nano=False, order="<", snaplen=65535, magic=None):
    if linktype is None:
        linktype = packets[0].linktype if packets else LINK_ETHERNET
    magic = (0xA1B23C4D if nano else 0xA1B2C3D4) if magic is None else magic
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for p in packets:
        sec, rest = divmod(p.ts_ns, 10**9)
        frac = rest if nano else rest // 1000
        out += struct.pack(order + "IIII", sec & 0xFFFFFFFF, frac, len(p.data), p.wire_len)
        out += p.data
    return out


def pcapng_block(btype, body, order="<"):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def write_pcapng(packets, linktypes=None, tsresol=None, order="<", simple=False, if_of=None,
                 ts_override=None):
    """One section; one interface per entry of linktypes (default: the packets' link type)."""
    if linktypes is None:
        linktypes = [packets[0].linktype if packets else 1]
    shb = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    out = pcapng_block(0x0A0D0D0A, shb, order)
    for lt in linktypes:
        idb = struct.pack(order + "HHI", lt, 0, 0 if simple else 65535)
        if tsresol is not None:
            idb += struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
            idb += struct.pack(order + "HH", 0, 0)
        out += pcapng_block(1, idb, order)
    units = 10**6
    if tsresol is not None:
        units = 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol
    for i, p in enumerate(packets):
        if simple:
            out += pcapng_block(3, struct.pack(order + "I", p.wire_len) + p.data, order)
            continue
        t = p.ts_ns * units // 10**9 if ts_override is None else ts_override
        iface = 0 if if_of is None else if_of(i)
        out += pcapng_block(6, struct.pack(order + "IIIII", iface, (t >> 32) & 0xFFFFFFFF,
                                           t & 0xFFFFFFFF, len(p.data), p.wire_len) + p.data,
                            order)
    return out


def cut_capture(blob, limit=MAX_FILE):
    """The file cut at a record (pcap) or block (pcapng) boundary to at most `limit` bytes."""
    if len(blob) <= limit:
        return blob
    if blob[:4] == b"\x0a\x0d\x0d\x0a":
        end = 0
        for _, _, _, block_end, _ in pcapng_blocks(blob):
            if block_end > limit:
                break
            end = block_end
        return blob[:end]
    order = "<" if struct.unpack_from("<I", blob, 0)[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    pos = 24
    while pos + 16 <= len(blob):
        caplen = struct.unpack_from(order + "I", blob, pos + 8)[0]
        if pos + 16 + caplen > limit:
            break
        pos += 16 + caplen
    return blob[:pos]


# ---------------------------------------------------------------------------------------------
# packet_path input format


def step_us(v):
    return ((2 + (v & 1)) << (v >> 1)) >> 1


def step_code(delta_ns):
    """The control value whose time step is closest to delta_ns (at least 1 us)."""
    want = max(delta_ns, 0) / 1000
    return min(range(64), key=lambda v: abs(step_us(v) - want))


class Frame:
    def __init__(self, data, delta_ns=1_000_000, source=0, cut=False):
        self.data, self.delta_ns, self.source, self.cut = data, delta_ns, source, cut


def frame_sequence(linktype, frames, linktype1=None):
    sel0 = LINK_TYPES.index(linktype)
    sel1 = LINK_TYPES.index(linktype if linktype1 is None else linktype1)
    out = bytearray([sel0 | sel1 << 4])
    for f in frames:
        data = f.data[:65535]
        control = step_code(f.delta_ns) | (0x40 if f.source else 0) | (0x80 if f.cut else 0)
        out += u16(len(data)) + u8(control) + data
    return bytes(out)


def sequences_from_packets(packets, limit=MAX_FILE, max_frames=MAX_FRAMES, max_chunks=8):
    """packet_path seeds: the packets of each decodable link type, in chunks."""
    by_link = {}
    for p in packets:
        if p.linktype in LINK_TYPES:
            by_link.setdefault(p.linktype, []).append(p)
    out = []
    for lt, pkts in by_link.items():
        chunk, size, prev = [], 0, None
        for p in pkts:
            delta = 1_000_000 if prev is None else p.ts_ns - prev
            prev = p.ts_ns
            f = Frame(p.data, delta, cut=p.wire_len > len(p.data))
            if chunk and (len(chunk) >= max_frames or size + len(p.data) + 3 > limit):
                out.append(frame_sequence(lt, chunk))
                chunk, size = [], 0
                if len(out) >= max_chunks:
                    break
            chunk.append(f)
            size += len(p.data[:65535]) + 3
        if chunk and len(out) < max_chunks:
            out.append(frame_sequence(lt, chunk))
    return out


# tcp_stream_fuzz.cpp's input: control bits (flow in bits 0-1) and sequence-number modes.
TS_SYN, TS_FIN, TS_RST, TS_EXPIRE = 0x04, 0x08, 0x10, 0x80
TS_DELTA, TS_DELTA_256, TS_DELTA_64K = 0x20, 0x40, 0x60


def ts_segment(flow, payload=b"", flags=0, seq_mode=0, delta=0, repeat=0, time=20):
    """One segment: its flow, flags and sequence mode; the payload is sent 1 + repeat times; time
    20 is a step of 2^20 ns, about a millisecond."""
    return struct.pack(">BhHBB", flow | flags | seq_mode, delta, len(payload), repeat, time) + \
        payload


def ts_framed(message):
    return u16(len(message)) + message


def ts_time_code(delta_ns):
    """tcp_stream's time byte for the step closest below delta_ns (backwards steps become 0)."""
    if delta_ns <= 0:
        return 0
    k = min(delta_ns.bit_length() - 1, 63)
    half = k > 0 and delta_ns - (1 << k) >= (1 << (k - 1))
    return k | (0x40 if half else 0)


def tcp_streams_from_packets(packets, limit=MAX_FILE, max_segments=MAX_FRAMES):
    """tcp_stream seeds: the segments of the first four DNS-over-TCP flows of a capture, with
    sequence numbers relative to each flow's first and the time steps between them. A segment
    whose offset the format cannot express is left out."""
    out = bytearray(b"\x0f")  # options: max_flow_bytes 65,537, a 256 KiB window
    flows, prev = {}, None
    for p in packets:
        t = tcp_segment(unwrap(p.linktype, p.data))
        if t is None:
            continue
        sport, dport, seq, tcp_flags, payload = t
        if sport not in DNS_PORTS and dport not in DNS_PORTS:
            continue
        flags = (TS_SYN if tcp_flags & 0x02 else 0) | (TS_FIN if tcp_flags & 0x01 else 0) | \
            (TS_RST if tcp_flags & 0x04 else 0)
        if not payload and not flags:
            continue  # a bare ACK: the reassembler ignores it
        key = (sport, dport)
        if key not in flows:
            if len(flows) == 4:
                continue
            flows[key] = {"index": len(flows), "base": seq, "next": 0}
        f = flows[key]
        target = (seq - f["base"]) & 0xFFFFFFFF
        diff = (target - f["next"] + 2**31) % 2**32 - 2**31
        for mode, scale in ((0, 0), (TS_DELTA, 1), (TS_DELTA_256, 256), (TS_DELTA_64K, 65536)):
            if (scale == 0 and diff == 0) or (scale and diff % scale == 0 and
                                              -32768 <= diff // scale <= 32767):
                break
        else:
            continue
        payload = payload[:65535]
        if len(out) + 7 + len(payload) > limit or max_segments == 0:
            break
        max_segments -= 1
        step = 1_000_000 if prev is None else p.ts_ns - prev
        prev = p.ts_ns
        out += ts_segment(f["index"], payload, flags=flags, seq_mode=mode,
                          delta=diff // scale if scale else 0, time=ts_time_code(step))
        f["next"] = (target + (1 if flags & TS_SYN else 0) + len(payload)) & 0xFFFFFFFF
    return bytes(out) if flows else None


# ---------------------------------------------------------------------------------------------
# Hand-built seeds

CLIENT4, SERVER4 = "198.18.0.10", "198.19.0.53"
CLIENT6, SERVER6 = "2001:db8:0:1::10", "2001:db8:0:53::53"


def hand_answer_messages():
    """Responses for dns_answers: the answer addresses, CNAME chains, the authority SOA."""
    def rr(owner, rtype, ttl, rdata):
        return owner + u16(rtype) + u16(1) + u32(ttl) + u16(len(rdata)) + rdata

    def soa(minimum):
        return dns_name("ns.example") + dns_name("hostmaster.example") + u32(1) + u32(7200) + \
            u32(3600) + u32(1209600) + u32(minimum)
    qname = u16(0xC00C)
    chain = dns_header(0x3001, 0x8180, 1, 3, 0, 1) + dns_name("www.example.com") + u16(1) + \
        u16(1) + rr(qname, 5, 300, dns_name("edge.cdn.example")) + \
        rr(dns_name("edge.cdn.example"), 5, 60, dns_name("e7.cdn.example")) + \
        rr(dns_name("E7.CDN.example"), 1, 20, v4("198.18.0.7")) + opt_rr()
    return {
        "addresses": dns_header(0x3002, 0x8180, 1, 3, 0, 0) + dns_name("www.example.com") +
        u16(1) + u16(1) + rr(qname, 1, 300, v4("198.18.0.1")) +
        rr(qname, 28, 60, v6("2001:db8::1")) + rr(qname, 1, 299, v4("198.18.0.2")),
        "cname-chain": chain,
        "cname-loop": dns_header(0x3003, 0x8180, 1, 2, 0, 0) + dns_name("loop.example") +
        u16(1) + u16(1) + rr(qname, 5, 5, dns_name("other.example")) +
        rr(dns_name("other.example"), 5, 5, dns_name("loop.example")),
        "nxdomain-soa": dns_header(0x3004, 0x8183, 1, 0, 1, 0) + dns_name("nope.example") +
        u16(1) + u16(1) + rr(u16(0xC011), 6, 900, soa(3600)),
        "nodata-soa": dns_header(0x3005, 0x8180, 1, 1, 1, 0) + dns_name("v4only.example") +
        u16(28) + u16(1) + rr(qname, 1, 60, v4("198.18.0.9")) + rr(u16(0xC013), 6, 60, soa(60)),
        "owner-pointer-loop": dns_header(0x3006, 0x8180, 1, 1, 0, 0) + dns_name("a.example") +
        u16(1) + u16(1) + rr(u16(0xC01B), 1, 1, v4("198.18.0.1")),
        "rdata-longer-than-a": dns_header(0x3007, 0x8180, 1, 2, 0, 0) + dns_name("a.example") +
        u16(1) + u16(1) + rr(qname, 1, 1, v4("198.18.0.1") + u16(0xC00C) + u16(1)) +
        rr(qname, 1, 1, v4("198.18.0.2")),
        # ldns reads one additional record less after a TSIG (a difference the fuzzer found).
        "tsig-first-of-three": dns_header(0x3009, 0x8180, 1, 1, 0, 3) + dns_name("a.example") +
        u16(1) + u16(1) + rr(qname, 1, 1, v4("198.18.0.1")) +
        rr(dns_name("key.example"), 250, 0, dns_name("hmac-sha256") + u16(0) + u32(0x5F000000) +
           u16(300) + u16(4) + u32(0xDEADBEEF) + u16(0x3009) + u16(0) + u16(0)) +
        opt_rr(),
        "mx-txt-srv": dns_header(0x3008, 0x8180, 1, 3, 0, 0) + dns_name("example.org") +
        u16(15) + u16(1) + rr(qname, 15, 1, u16(10) + dns_name("mail.example.org")) +
        rr(qname, 16, 1, b"\x05hello\x03abc") +
        rr(qname, 33, 1, u16(1) + u16(2) + u16(443) + u16(0xC00C)),
    }


def hand_dns_messages():
    q = dns_query
    seeds = {
        "empty": b"",
        "header-11-bytes": dns_header(1, 0x0100)[:11],
        "header-only-qdcount-0": dns_header(2, 0x0100, 0),
        "header-claims-question": dns_header(3, 0x0100, 1),
        "query-a": q(0x1001, "www.example.com"),
        "query-root-ns": q(0x1002, ".", 2),
        "query-edns-do": q(0x1003, "example.org", 48, opt_rr(4096, do=True)),
        "query-edns-version-1": q(0x1004, "example.org", 1, opt_rr(512, version=1)),
        "query-two-questions": dns_header(0x1005, 0x0100, 2, 0, 0, 1) + dns_name("a.example") +
        u16(1) + u16(1) + dns_name("b.example") + u16(28) + u16(1) + opt_rr(),
        "query-escapes": q(0x1006, [b"a.b", b"c\\d", b"sp ace", b"\x00\xff\x7f", b"example"]),
        "query-label-63": q(0x1007, [b"x" * 63, b"example"]),
        "query-name-255": q(0x1008, [b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61]),
        "query-name-256": q(0x1009, [b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 62]),
        "query-label-type-0x40": dns_header(0x100A, 0x0100) + b"\x41" + b"x" * 65 + b"\0" +
        u16(1) + u16(1),
        "query-cut-after-name": dns_header(0x100B, 0x0100) + dns_name("example.com") + u16(1),
        "question-pointer-to-itself": dns_header(0x100C, 0x0100) + u16(0xC00C) + u16(1) + u16(1),
        "question-pointer-forward": dns_header(0x100D, 0x0100) + u16(0xC010) + u16(1) + u16(1) +
        dns_name("example.com"),
        "question-pointer-loop-pair": dns_header(0x100E, 0x0100) + b"\x01a" + u16(0xC00C) +
        u16(1) + u16(1),
        "question-pointer-into-header": dns_header(0x100F, 0x0100) + u16(0xC002) + u16(1) +
        u16(1),
        "response-a-answer": dns_response(0x2001, "www.example.com", 1,
                                          answers=[(1, v4("198.18.0.1"))], edns=opt_rr()),
        "response-aaaa-answer": dns_response(0x2002, "example.net", 28,
                                             answers=[(28, v6("2001:db8::1"))]),
        "response-nxdomain-edns": dns_response(0x2003, "nope.example", 1, rcode=3,
                                               edns=opt_rr(1232)),
        "response-badcookie": dns_response(0x2004, "example.com", 1, rcode=7,
                                           edns=opt_rr(1232, ext_rcode=1,
                                                       options=u16(10) + u16(8) + b"c" * 8)),
        "response-opt-after-answers": dns_header(0x2005, 0x8180, 1, 2, 1, 2) +
        dns_name("example.com") + u16(1) + u16(1) +
        (u16(0xC00C) + u16(1) + u16(1) + u32(60) + u16(4) + v4("198.18.0.2")) * 2 +
        u16(0xC00C) + u16(2) + u16(1) + u32(60) + u16(2) + u16(0xC00C) +
        dns_name("ns.example.com") + u16(1) + u16(1) + u32(60) + u16(4) + v4("198.18.0.3") +
        opt_rr(4096, do=True),
        "response-two-opts": dns_response(0x2006, "example.com", 1, edns=opt_rr(512)) +
        opt_rr(4096, ext_rcode=2),
        "response-counts-exceed-body": dns_header(0x2007, 0x8180, 1, 0xFFFF, 0xFFFF, 0xFFFF) +
        dns_name("example.com") + u16(1) + u16(1) + u16(0xC00C),
        "response-answer-rdlength-past-end": dns_header(0x2008, 0x8180, 1, 1, 0, 1) +
        dns_name("example.com") + u16(1) + u16(1) + u16(0xC00C) + u16(1) + u16(1) + u32(60) +
        u16(0xFFFF) + b"\1\2\3\4",
        "opcode-update-rcode-15": dns_header(0x3001, 0x2800 | 0x000F, 1) +
        dns_name("example.com") + u16(6) + u16(1),
        "qdcount-0-with-opt": dns_header(0x3002, 0x0100, 0, 0, 0, 1) + opt_rr(1400, do=True),
        "big-txt-response": dns_response(0x3003, "txt.example", 16,
                                         answers=[(16, (b"\xff" + b"t" * 255) * 15)]),
    }
    return seeds


def query_response_pair(ident, name, six=False, sport=40000, qtype=1):
    src, dst = (CLIENT6, SERVER6) if six else (CLIENT4, SERVER4)
    query = dns_query(ident, name, qtype, opt_rr(1232))
    answer = dns_response(ident, name, qtype, answers=[(1, v4("198.18.0.1"))] if qtype == 1 else
                          [(28, v6("2001:db8::1"))], edns=opt_rr(1232))
    ip = ipv6 if six else ipv4
    return [ip(src, dst, 17, udp(sport, 53, query)), ip(dst, src, 17, udp(53, sport, answer))]


def tcp_session(six=False, messages=None, sport=40001, syn=True, split="normal"):
    """IP packets of a DNS-over-TCP exchange; `split` picks how the messages are segmented."""
    src, dst = (CLIENT6, SERVER6) if six else (CLIENT4, SERVER4)
    ip = ipv6 if six else ipv4
    if messages is None:
        messages = [dns_query(0x4001, "tcp.example.com", 1, opt_rr(1232)),
                    dns_response(0x4001, "tcp.example.com", 1,
                                 answers=[(1, v4("198.18.0.7"))], edns=opt_rr(1232))]
    query, answer = (u16(len(m)) + m for m in messages)
    cseq, sseq = 1000, 5000
    out = []

    def c(flags, payload=b"", seq=None):
        out.append(ip(src, dst, 6, tcp(sport, 53, cseq if seq is None else seq, sseq, flags,
                                       payload)))

    def s(flags, payload=b"", seq=None):
        out.append(ip(dst, src, 6, tcp(53, sport, sseq if seq is None else seq, cseq, flags,
                                       payload)))

    if syn:
        c(TCP_SYN, seq=cseq - 1)
        s(TCP_SYN | TCP_ACK, seq=sseq - 1)
        c(TCP_ACK)
    if split == "normal":
        c(TCP_PSH | TCP_ACK, query)
        s(TCP_PSH | TCP_ACK, answer)
    elif split == "length-apart":  # the 2-byte length and the message in separate segments
        c(TCP_PSH | TCP_ACK, query[:2])
        c(TCP_PSH | TCP_ACK, query[2:], seq=cseq + 2)
        s(TCP_PSH | TCP_ACK, answer[:2])
        s(TCP_PSH | TCP_ACK, answer[2:], seq=sseq + 2)
    elif split == "two-in-one":  # two queries in one segment, two answers in one segment
        c(TCP_PSH | TCP_ACK, query + query)
        s(TCP_PSH | TCP_ACK, answer + answer)
    elif split == "out-of-order":  # the answer in three segments, the last arriving first
        a, b = len(answer) // 3, 2 * len(answer) // 3
        c(TCP_PSH | TCP_ACK, query)
        s(TCP_PSH | TCP_ACK, answer[b:], seq=sseq + b)
        s(TCP_PSH | TCP_ACK, answer[:a])
        s(TCP_PSH | TCP_ACK, answer[a:b], seq=sseq + a)
    elif split == "retransmit-overlap":  # a duplicate and an overlapping retransmission
        c(TCP_PSH | TCP_ACK, query)
        c(TCP_PSH | TCP_ACK, query)
        s(TCP_PSH | TCP_ACK, answer[:20])
        s(TCP_PSH | TCP_ACK, answer[10:], seq=sseq + 10)
    elif split == "hole":  # the middle of the answer never arrives
        c(TCP_PSH | TCP_ACK, query)
        s(TCP_PSH | TCP_ACK, answer[:10])
        s(TCP_PSH | TCP_ACK, answer[30:], seq=sseq + 30)
        s(TCP_PSH | TCP_ACK, answer, seq=sseq + len(answer))  # the next message, whole
    elif split == "seq-wrap":  # sequence numbers wrap around 2^32 inside the answer
        sseq = 0xFFFFFFF0
        c(TCP_PSH | TCP_ACK, query)
        s(TCP_PSH | TCP_ACK, answer[:16], seq=sseq)
        s(TCP_PSH | TCP_ACK, answer[16:], seq=(sseq + 16) & 0xFFFFFFFF)
    if split != "seq-wrap":
        cseq += len(query) * (2 if split == "two-in-one" else 1)
        sseq += len(answer) * (2 if split in ("two-in-one", "hole") else 1)
    c(TCP_FIN | TCP_ACK)
    s(TCP_RST)
    return out


def ipv4_fragments(proto, src, dst, data, sizes, ident=0x7777):
    """Fragments of one IPv4 datagram carrying `data` (a UDP datagram), cut at the given sizes."""
    out, off = [], 0
    for i, n in enumerate(sizes):
        part = data[off:off + n] if i < len(sizes) - 1 else data[off:]
        more = i < len(sizes) - 1
        out.append(ipv4(src, dst, proto, part, ident=ident, df=False, mf=more,
                        frag_off=off))
        off += n
    return out


def ipv6_fragments(src, dst, data, sizes, ident=0x88888888):
    out, off = [], 0
    for i, n in enumerate(sizes):
        part = data[off:off + n] if i < len(sizes) - 1 else data[off:]
        more = i < len(sizes) - 1
        out.append(ipv6(src, dst, 44, ext_fragment(17, off, more, ident) + part))
        off += n
    return out


def frames(packets, linktype=LINK_ETHERNET, delta_ns=1_000_000):
    return [Frame(wrap(linktype, p), delta_ns) for p in packets]


def hand_packet_sequences(gen_packets):
    big = dns_response(0x5001, "frag.example.com", 16, answers=[(16, (b"\x40" + b"f" * 64) * 24)],
                       edns=opt_rr(4096))
    dgram4 = udp(53, 40002, big)
    frags4 = ipv4_fragments(17, SERVER4, CLIENT4, dgram4, [512, 512, 512])
    frags6 = ipv6_fragments(SERVER6, CLIENT6, dgram4, [600, 600])
    seqs = {}
    e = LINK_ETHERNET
    seqs["ipv4-fragments-in-order"] = frame_sequence(e, frames(frags4))
    seqs["ipv4-fragments-reversed"] = frame_sequence(e, frames(frags4[::-1]))
    seqs["ipv4-fragments-duplicate-and-overlap"] = frame_sequence(e, frames(
        [frags4[0], frags4[0]] +
        ipv4_fragments(17, SERVER4, CLIENT4, dgram4, [256, 768, 512])[1:] + frags4[1:]))
    seqs["ipv4-fragments-missing-then-timeout"] = frame_sequence(e, [
        Frame(ethernet(frags4[0])), Frame(ethernet(frags4[2])),
        Frame(ethernet(frags4[1]), delta_ns=120 * 10**9),  # long after the first two
        Frame(ethernet(frags4[0]), delta_ns=10**6)])
    seqs["ipv4-fragments-two-datagrams-interleaved"] = frame_sequence(e, frames(
        [x for pair in zip(frags4, ipv4_fragments(17, SERVER4, CLIENT4, dgram4, [512, 512, 512],
                                                   ident=0x7778)) for x in pair]))
    seqs["ipv6-fragments"] = frame_sequence(e, frames(frags6))
    seqs["ipv6-fragments-reversed-raw"] = frame_sequence(LINK_RAW, frames(frags6[::-1], LINK_RAW))
    seqs["ipv6-atomic-fragment"] = frame_sequence(e, frames(
        [ipv6(CLIENT6, SERVER6, 44, ext_fragment(17, 0, False, 1) +
              udp(40003, 53, dns_query(0x5002, "atomic.example")))]))
    seqs["ipv6-extension-headers"] = frame_sequence(e, frames(
        [ipv6(CLIENT6, SERVER6, 0, ext_header(60) + ext_header(43) + ext_header(51) +
              ext_ah(17) + udp(40004, 53, dns_query(0x5003, "ext.example")))]))
    for split in ("normal", "length-apart", "two-in-one", "out-of-order", "retransmit-overlap",
                  "hole", "seq-wrap"):
        seqs["tcp-ipv4-" + split] = frame_sequence(e, frames(tcp_session(split=split)))
    seqs["tcp-ipv6-normal-sll2"] = frame_sequence(LINK_SLL2, frames(tcp_session(six=True),
                                                                   LINK_SLL2))
    seqs["tcp-midstream-no-syn"] = frame_sequence(e, frames(tcp_session(syn=False)))
    hole = tcp_session(split="hole")
    seqs["tcp-hole-then-timeout"] = frame_sequence(e, [
        Frame(ethernet(p), delta_ns=(90 * 10**9 if i == len(hole) - 3 else 10**6))
        for i, p in enumerate(hole)])
    seqs["tcp-many-flows"] = frame_sequence(e, frames(
        [p for port in range(41000, 41012) for p in tcp_session(sport=port)[:5]], e, 1000))
    # Two capture sources with different link types feeding one worker.
    pair4 = query_response_pair(0x5004, "two.example")
    seqs["two-sources-ethernet-and-sll"] = frame_sequence(e, [
        Frame(ethernet(pair4[0])), Frame(wrap(LINK_SLL, pair4[1]), source=1),
        Frame(wrap(LINK_SLL, pair4[0]), source=1), Frame(ethernet(pair4[1]))], LINK_SLL)
    # Link layer variants of one query and its response.
    pair6 = query_response_pair(0x5005, "six.example", six=True, qtype=28)
    for name, lt in (("sll", LINK_SLL), ("sll2", LINK_SLL2), ("null", LINK_NULL),
                     ("loop", LINK_LOOP), ("raw", LINK_RAW), ("raw-openbsd", LINK_RAW_OPENBSD)):
        seqs["link-" + name] = frame_sequence(lt, frames(pair4 + pair6, lt))
    seqs["link-ipv4"] = frame_sequence(LINK_IPV4, frames(pair4 + pair6[:1], LINK_IPV4))
    seqs["link-ipv6"] = frame_sequence(LINK_IPV6, frames(pair6 + pair4[:1], LINK_IPV6))
    seqs["link-null-big-endian-family"] = frame_sequence(LINK_NULL, [
        Frame(u32(2) + pair4[0]), Frame(u32(24) + pair6[0]), Frame(u32(28) + pair6[1])])
    for name, lt in (("ppp", LINK_PPP), ("ppp-hdlc", LINK_PPP_HDLC), ("80211", LINK_80211),
                     ("radiotap", LINK_RADIOTAP), ("ppi", LINK_PPI), ("pktap", LINK_PKTAP)):
        seqs["link-" + name] = frame_sequence(lt, frames(pair4 + pair6, lt))
    seqs["link-ppp-short-protocol"] = frame_sequence(LINK_PPP, [
        Frame(b"\x21" + pair4[0]), Frame(b"\xff\x03\x57" + pair6[0]),
        Frame(b"\xff\x03\xc0\x21" + b"\x01\x01\0\x04")])  # LCP: not IP
    seqs["link-arcnet"] = frame_sequence(LINK_ARCNET, [
        Frame(b"\x01\x02\0\0\xf0" + pair4[0]), Frame(b"\x02\x01\0\0\xd4\0\0\1" + pair4[1]),
        Frame(b"\x02\x01\0\0\xd5\0\0\1")])
    seqs["link-80211-variants"] = frame_sequence(LINK_80211, [
        Frame(wifi(pair4[0], 0x0800, frame_control=b"\x88\x02")),  # QoS data
        Frame(wifi(pair4[1], 0x0800, frame_control=b"\x08\x03")),  # four addresses (WDS)
        Frame(wifi(pair6[0], 0x86DD, frame_control=b"\x88\x82")),  # QoS + HT control
        Frame(wifi(pair6[1], 0x86DD, frame_control=b"\x08\x42")),  # protected
        Frame(wifi(b"", 0x0800, frame_control=b"\x48\x01")),  # null data
        Frame(b"\x80\0" + b"\0" * 30)])  # beacon
    seqs["link-pktap-in-ppi"] = frame_sequence(LINK_PPI, [
        Frame(b"\0\0" + struct.pack("<HI", 8, LINK_PKTAP) + wrap(LINK_PKTAP, pair4[0])),
        Frame(b"\0\0" + struct.pack("<HI", 8, LINK_PKTAP) +  # PKTAP of a loopback frame
              struct.pack("<III", 108, 1, LINK_NULL) + b"\0" * 96 + b"\2\0\0\0" + pair4[1]),
        Frame(b"\0\0" + struct.pack("<HI", 8, LINK_PPI) + b"\0\0" +
              struct.pack("<HI", 8, LINK_PPI) + b"\0\0" + struct.pack("<HI", 8, LINK_NULL) +
              b"\2\0\0\0" + pair4[1])])
    # Tunnels: the innermost addresses and ports are reported.
    inner = ethernet(pair4[0])
    outer = ("192.0.2.1", "192.0.2.2")
    seqs["tunnel-vxlan-geneve"] = frame_sequence(e, frames([
        ipv4(*outer, 17, udp(50000, 4789, b"\x08\0\0\0\0\0\x2a\0" + inner)),
        ipv4(*outer, 17, udp(50001, 6081, b"\0\0" + u16(0x6558) + b"\0\0\x2b\0" + inner)),
        ipv4(*outer, 17, udp(50001, 6081, b"\x02\0" + u16(0x0800) + b"\0\0\x2b\0" +
                             u16(0x0101) + b"\x01\x01" + b"opt!" + pair4[1])),
        ipv6("2001:db8:ff::1", "2001:db8:ff::2", 17,
             udp(50002, 6081, b"\0\0" + u16(0x86DD) + b"\0\0\x2c\0" + pair6[0]))]))
    seqs["tunnel-gre"] = frame_sequence(e, frames([
        ipv4(*outer, 47, u16(0) + u16(0x0800) + pair4[0]),
        ipv4(*outer, 47, u16(0xB000) + u16(0x86DD) + b"\0\0\0\0" * 3 + pair6[0]),  # C K S
        ipv4(*outer, 47, u16(0x2000) + u16(0x6558) + u32(7) + ethernet(pair4[1])),
        ipv4(*outer, 47, u16(0x1000) + u16(0x88BE) + u32(1) + b"\x10\0\0\x01\0\0\0\0" +
             ethernet(pair6[1])),  # ERSPAN II
        ipv4(*outer, 47, u16(0) + u16(0x22EB) + b"\x20\0\0\x01" + b"\0" * 7 + b"\x01" +
             b"\0" * 8 + ethernet(pair4[0])),  # ERSPAN III with the platform subheader
        ipv4(*outer, 47, u16(0x3001) + u16(0x880B) + u16(len(pair4[1]) + 4) + u16(9) + u32(1) +
             b"\xff\x03\0\x21" + pair4[1]),  # PPTP enhanced GRE, then PPP
        ipv4(*outer, 47, u16(0x0001) + u16(0x0800) + pair4[0]),  # GRE version 1: not decoded
    ]))
    seqs["tunnel-ip-in-ip-and-6in4"] = frame_sequence(e, frames([
        ipv4(*outer, 4, pair4[0]), ipv4(*outer, 41, pair6[0]),
        ipv6("2001:db8:ff::1", "2001:db8:ff::2", 4, pair4[1]),
        ipv6("2001:db8:ff::1", "2001:db8:ff::2", 41, pair6[1])]))
    nested = pair4[0]
    for _ in range(10):  # deeper than any parser should follow
        nested = ipv4(*outer, 17, udp(50003, 4789, b"\x08\0\0\0\0\0\x2a\0" + ethernet(nested)))
    seqs["tunnel-nested-too-deep"] = frame_sequence(e, frames([nested]))
    mdns = dns_query(0, "printer.local", 12, flags=0)
    llmnr = dns_query(0x5010, "host", 1, flags=0)
    seqs["mdns-llmnr-dot"] = frame_sequence(e, frames([
        ipv4("198.18.0.20", "224.0.0.251", 17, udp(5353, 5353, mdns)),
        ipv6("fe80::20", "ff02::fb", 17, udp(5353, 5353, mdns)),
        ipv4("198.18.0.20", "224.0.0.252", 17, udp(40020, 5355, llmnr)),
        ipv4(CLIENT4, SERVER4, 6, tcp(40021, 5355, 1, 1, TCP_PSH | TCP_ACK,
                                      u16(len(llmnr)) + llmnr)),
        ipv4(CLIENT4, SERVER4, 6, tcp(40022, 853, 1, 1, TCP_PSH | TCP_ACK, b"\x16\x03\x01")),
        ipv4(CLIENT4, SERVER4, 17, udp(40023, 853, b"\xc0" + b"\0" * 20))]))  # QUIC
    seqs["ethernet-vlan-qinq"] = frame_sequence(e, [
        Frame(ethernet(pair4[0], tags=[(0x8100, 100)])),
        Frame(ethernet(pair4[1], tags=[(0x88A8, 10), (0x8100, 20)])),
        Frame(ethernet(pair6[0], tags=[(0x9100, 10), (0x8100, 20)])),
        Frame(ethernet(pair6[1], tags=[(0x8100, 1)] * 9))])
    seqs["ethernet-not-ip"] = frame_sequence(e, [
        Frame(MAC_A + MAC_B + u16(0x0806) + b"\0\1\x08\0\6\4\0\1" + b"\0" * 20),  # ARP
        Frame(MAC_A + MAC_B + u16(0x88CC) + b"\x02\x07\x04" + b"\0" * 6),  # LLDP
        Frame(MAC_A + MAC_B[:2])])
    q = dns_query(0x5006, "odd.example")
    seqs["ip-and-udp-oddities"] = frame_sequence(e, frames([
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q), options=b"\x01\x01\x01\x00"),  # IHL 6
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q), total=12),  # total < IHL
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q), total=0),  # TSO: total 0
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q), total=2000),  # total past the frame
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q, length=0)),
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q, length=7)),
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q, length=4000)),  # UDP past the IP length
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 123, b"\x1b" + b"\0" * 47)),  # NTP
        ipv4(CLIENT4, SERVER4, 1, b"\x08\0\0\0\0\1\0\1"),  # ICMP echo
        ipv4(CLIENT4, SERVER4, 6, tcp(40006, 53, 1, 1, TCP_ACK, b"\0\x0c" + q[:12], offset=4)),
        ipv6(CLIENT6, SERVER6, 17, udp(40007, 53, q), plen=0),
        ipv6(CLIENT6, SERVER6, 17, udp(40007, 53, q), plen=3),
        ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q))[:30],  # cut inside the UDP header
    ]) + [Frame(ethernet(ipv4(CLIENT4, SERVER4, 17, udp(40005, 53, q)))[:50], cut=True)])
    seqs["ethernet-padding"] = frame_sequence(e, [
        Frame(ethernet(ipv4(CLIENT4, SERVER4, 17, udp(40008, 53, dns_header(1, 0x100, 0))))
              + b"\0" * 14)])
    if gen_packets:
        seqs["gen-mixed-40-frames"] = sequences_from_packets(gen_packets)[0]
    return seqs


def hand_capture_files(gen_packets):
    """Whole capture files: formats, byte orders, resolutions and damage."""
    pkts = gen_packets[:6]
    files = {}
    files["pcap-usec-le"] = write_pcap(pkts)
    files["pcap-nsec-le"] = write_pcap(pkts, nano=True)
    files["pcap-usec-be"] = write_pcap(pkts, order=">")
    files["pcap-header-only"] = write_pcap([], linktype=1)
    files["pcap-header-cut"] = write_pcap(pkts)[:20]
    files["pcap-record-cut"] = write_pcap(pkts)[:-7]
    files["pcap-snaplen-cut"] = write_pcap([Packet(1, p.ts_ns, p.data[:60], len(p.data))
                                            for p in pkts], snaplen=60)
    files["pcap-caplen-over-snaplen"] = write_pcap(pkts, snaplen=64)
    files["pcap-zero-length-record"] = write_pcap([Packet(1, START_NS, b"", 0)] + pkts)
    files["pcap-huge-caplen"] = write_pcap(pkts[:1])[:24] + struct.pack("<IIII", 1, 0, 0x7FFFFFFF,
                                                                         0x7FFFFFFF)
    files["pcap-time-2038"] = write_pcap([Packet(1, 0xFFFFFFF0 * 10**9, p.data) for p in pkts])
    files["pcap-nsec-frac-over-1e9"] = write_pcap(pkts[:2], nano=True)[:24] + \
        struct.pack("<IIII", 1, 0xFFFFFFFF, len(pkts[0].data), len(pkts[0].data)) + pkts[0].data
    ip_pkts = [unwrap(1, p.data) for p in pkts]
    for name, lt in (("sll", LINK_SLL), ("sll2", LINK_SLL2), ("null", LINK_NULL),
                     ("loop", LINK_LOOP), ("raw", LINK_RAW), ("ipv4", LINK_IPV4),
                     ("ipv6", LINK_IPV6), ("ppp", LINK_PPP), ("80211", LINK_80211),
                     ("radiotap", LINK_RADIOTAP), ("ppi", LINK_PPI), ("pktap", LINK_PKTAP),
                     ("arcnet", LINK_ARCNET), ("raw-bsdos", LINK_RAW_BSDOS),
                     ("user0", LINK_USER0)):
        chosen = [p for p in ip_pkts if lt != LINK_IPV4 or p[0] >> 4 == 4]
        chosen = [p for p in chosen if lt != LINK_IPV6 or p[0] >> 4 == 6] or \
            [ipv6(CLIENT6, SERVER6, 17, udp(40010, 53, dns_query(9, "v6.example", 28)))]
        files["pcap-link-" + name] = write_pcap(
            [Packet(lt, START_NS + i * 1000, wrap(lt, p)) for i, p in enumerate(chosen)])
    files["pcapng-usec-le"] = write_pcapng(pkts)
    files["pcapng-nsec-be"] = write_pcapng(pkts, tsresol=9, order=">")
    files["pcapng-tsresol-2-pow-20"] = write_pcapng(pkts, tsresol=0x80 | 20)
    files["pcapng-simple-packets"] = write_pcapng(pkts, simple=True)
    files["pcapng-two-interfaces"] = write_pcapng(pkts, linktypes=[1, 1], if_of=lambda i: i % 2)
    files["pcapng-two-link-types"] = write_pcapng(
        [Packet(1, p.ts_ns, p.data) if i % 2 == 0 else
         Packet(LINK_SLL, p.ts_ns, wrap(LINK_SLL, unwrap(1, p.data))) for i, p in enumerate(pkts)],
        linktypes=[1, LINK_SLL], if_of=lambda i: i % 2)
    files["pcapng-bad-interface-id"] = write_pcapng(pkts[:2], if_of=lambda i: 5)
    files["pcapng-block-cut"] = write_pcapng(pkts)[:-10]
    tcp4 = [Packet(1, START_NS + i * 10**6, ethernet(p))
            for i, p in enumerate(tcp_session(split="length-apart"))]
    files["pcap-tcp-session"] = write_pcap(tcp4)
    big = dns_response(0x6001, "frag.example.com", 16, answers=[(16, b"\x40" + b"g" * 64)] * 20)
    frags = ipv4_fragments(17, SERVER4, CLIENT4, udp(53, 40011, big), [400, 400, 400])
    files["pcap-ipv4-fragments"] = write_pcap(
        [Packet(1, START_NS + i * 10**6, ethernet(p)) for i, p in enumerate(frags)])
    return files


def hand_reader_files(gen_packets):
    """Classic pcap files for PcapReader: the pcap files of hand_capture_files, then the header
    fields and record damage it treats as libpcap 1.10 does (see capture/src/pcap_file.hpp)."""
    pkts = gen_packets[:4]
    skip = ("pcap-link-80211", "pcap-link-radiotap", "pcap-link-ppi", "pcap-link-pktap",
            "pcap-link-arcnet", "pcap-link-ppp", "pcap-tcp-session", "pcap-ipv4-fragments")
    files = {name: blob for name, blob in hand_capture_files(gen_packets).items()
             if name.startswith("pcap-") and name not in skip}  # declined link types: one is enough
    base = write_pcap(pkts)
    for minor in (0, 2, 3):  # caplen and len interchanged (2.0-2.2), or perhaps (2.3)
        files["reader-version-2.%d" % minor] = base[:4] + struct.pack("<HH", 2, minor) + base[8:]
    short_len = write_pcap([Packet(1, p.ts_ns, p.data, 20) for p in pkts])
    files["reader-version-2.3-caplen-over-len"] = \
        short_len[:4] + struct.pack("<HH", 2, 3) + short_len[8:]
    files["reader-link-fcs-bits"] = write_pcap(pkts, linktype=LINK_ETHERNET | 0x44000000)
    files["reader-link-bit-16"] = write_pcap(pkts, linktype=LINK_ETHERNET | 0x10000)
    files["reader-snaplen-zero"] = write_pcap(pkts, snaplen=0)
    files["reader-snaplen-negative"] = write_pcap(pkts, snaplen=0x80000000)
    files["reader-snaplen-above-max"] = write_pcap(pkts, snaplen=1_000_000) + \
        struct.pack("<IIII", 1, 0, 300_000, 300_000) + b"\0" * 64
    files["reader-snaplen-cut-then-truncated"] = write_pcap(pkts, snaplen=64)[:-5]
    files["reader-time-top-bits-nsec"] = write_pcap(pkts[:1], nano=True)[:24] + \
        struct.pack("<IIII", 0xFFFFFFFF, 0x80000000, 4, 4) + b"abcd"
    files["reader-sll-be"] = write_pcap(
        [Packet(LINK_SLL, p.ts_ns, wrap(LINK_SLL, unwrap(1, p.data))) for p in pkts], order=">")
    files["reader-header-then-7-bytes"] = write_pcap([]) + b"\1" * 7
    return files


def regression_seeds(gen_packets):
    """Inputs that once crashed a target, rebuilt by hand (named crash-<where>-<what>)."""
    return {
        # capture.cpp on_frame: tv_sec * 1e9 overflowed int64 for a pcapng time past 2262.
        "pcap_file/crash-capture-pcapng-timestamp-overflow":
            write_pcapng(gen_packets[:1], ts_override=0xFFFFFFFFFFFFFFFF),
        # parser.cpp Parser::parse: ts_ns - last_expire_ns_ overflowed int64 when a frame stamped
        # before 1677 (a pcapng time past 2262, wrapped) is followed by one from 2023.
        "pcap_file/crash-parser-expire-time-difference-overflow": write_pcapng([
            Packet(LINK_ETHERNET, 10**19, gen_packets[0].data),
            Packet(LINK_ETHERNET, 1_700_000_000 * 10**9, gen_packets[1].data)]),
        # pcap_file.cpp PcapReader: a time stamp field with the top bit set was sign-extended in a
        # file of the other byte order, where libpcap zero-extends it (pcap_reader_fuzz).
        "pcap_reader/crash-reader-swapped-time-top-bit":
            write_pcap(gen_packets[:1], order=">")[:24] +
            struct.pack(">IIII", 254, 0xFFFFFF00, 4, 4) + b"abcd",
        # tcp_reassembly.cpp consume(): after a resync found a start in what its probe had
        # buffered (a 3-byte segment, then a long one), the message at msg was completed without
        # draining the buffer first: a framed message shorter than the 17 buffered bytes made
        # `need` underflow, and the rest of the segment was stored past max_flow_bytes.
        "tcp_stream/crash-tcp-resync-probe-underflow": b"\x00" +
            ts_segment(0, u16(12)[:2] + b"\0") +
            ts_segment(0, b"\x42\x30" + b"\0" * 9 + ts_framed(dns_query(1, "example.com")) * 3),
        # dnstap.cpp decode_message: libprotobuf-c stores an enum field's number unchecked, and
        # reading one outside the enum through the C++ enum type was undefined behaviour.
        "dnstap/crash-dnstap-enum-out-of-range": b"\0" +
            dnstap_frame(5, query=dns_query(1, "example.com"), family=0xAEEBFFFF),
    }


# ---------------------------------------------------------------------------------------------
# Commands


def hand_psl_lists():
    """psl_rules: small lists in the shapes of the real one, and odd lines (hostile part). The
    differential part reads the same bytes as choices of its list and name generator."""
    real_like = "\n".join([
        "// ===BEGIN ICANN DOMAINS===", "com", "uk", "co.uk", "*.ck", "!www.ck", "jp",
        "*.kawasaki.jp", "!city.kawasaki.jp", "\u516c\u53f8.cn", "// ===END ICANN DOMAINS===",
        "// ===BEGIN PRIVATE DOMAINS===", "  github.io   trailing words", "s3.amazonaws.com",
        "// ===END PRIVATE DOMAINS===", "www.example.co.uk", "a.b.ck", "www.ck",
        "x.city.kawasaki.jp", "y.xn--55qx5d.cn", "z.github.io", ""]).encode()
    odd = b"\n".join([b"*bad", b"!x", b"*.", b"!", b"*", b"..", b".a", b"a..b", b"\t\r ",
                      b"a" * 300, b"\xff\xfe.\xc3", b"xn--.a", b"// only a comment", b""])
    return {
        "hand-real-like": real_like,
        "hand-odd-lines": odd,
        "hand-comments-only": b"// nothing here\n\n   \t\n//\n",
        "hand-generator-bytes": bytes(range(1, 200)),
    }


def hand_tcp_streams():
    """tcp_stream: DNS over TCP as clients and servers send it, and the ways streams break."""
    q = [ts_framed(dns_query(i, "example.com")) for i in range(1, 5)]
    r = ts_framed(dns_response(1, "example.com", answers=[(1, v4("192.0.2.1"))]))
    dso = ts_framed(dns_header(0x42, 0x3000, qd=0))
    big = ts_framed(dns_query(9, "example.com") + b"\0" * 700)
    both = q[0] + q[1]
    return {
        # In order after a SYN: whole messages, several per segment, split inside the prefix.
        "hand-in-order": b"\x03" + ts_segment(0, flags=TS_SYN) + ts_segment(0, q[0]) +
        ts_segment(0, both[:1]) + ts_segment(0, both[1:40]) + ts_segment(0, both[40:]) +
        ts_segment(1, flags=TS_SYN) + ts_segment(1, r) + ts_segment(0, q[2][:9], flags=TS_FIN),
        # In order after a SYN with data (TCP Fast Open), then a long segment of 256 messages.
        "hand-in-order-long": b"\x03" + ts_segment(2, q[0], flags=TS_SYN) +
        ts_segment(2, q[1], repeat=255) + ts_segment(2, q[2][:20]) +
        ts_segment(2, q[2][20:] + q[3]),
        # Reordered, duplicated and a hole that times out.
        # (Each delta counts from where the flow's previous segment ended.)
        "hand-reordered": b"\x01" + ts_segment(0, flags=TS_SYN) +
        ts_segment(0, q[1], seq_mode=TS_DELTA, delta=len(q[0])) +
        ts_segment(0, q[0], seq_mode=TS_DELTA, delta=-len(q[0]) - len(q[1])) +
        ts_segment(0, q[0], seq_mode=TS_DELTA, delta=-len(q[0])) +
        ts_segment(0, q[3], seq_mode=TS_DELTA, delta=len(q[1]) + len(q[2])) +
        ts_segment(0, flags=TS_EXPIRE, time=31),  # a bare ACK 2.1 s later: expiry skips q[2]'s hole
        # Picked up mid-stream, a message longer than the flow buffer, a jump past the window.
        "hand-midstream-oversized": b"\x00" + ts_segment(2, q[2][5:]) + ts_segment(2, q[3]) +
        ts_segment(2, big[:100]) + ts_segment(2, big[100:]) + ts_segment(2, q[0]) +
        ts_segment(2, q[1], seq_mode=TS_DELTA_64K, delta=3) + ts_segment(2, q[2], flags=TS_RST),
        # A long segment of repeated messages, and many flows for a table of two.
        "hand-repeated-evicted": b"\x13" + ts_segment(0, q[0], repeat=255) +
        b"".join(ts_segment(f, q[f], flags=TS_SYN) for f in range(4)) +
        b"".join(ts_segment(f, q[f][:10]) for f in range(4)),
        # Picked up mid-stream with a 3-byte first segment that starts a 14-byte framed DSO message:
        # the probe adds 14 bytes of the next segment, which goes on for more than the flow buffer.
        "hand-resync-short-probe": b"\x00" + ts_segment(3, dso[:3]) +
        ts_segment(3, dso[3:] + q[0] * 4),
        "hand-times-backwards": b"\x00" + ts_segment(1, q[0][:7], time=0x3F) +
        ts_segment(1, q[0][7:], time=0xBF) + ts_segment(1, q[1], flags=TS_EXPIRE, time=0x7E),
    }


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def state_file(sections, version=1, flags=0, producer=b"dnsmon", clock_ns=0, origin_ns=0):
    """A detection state file laid out as state_file.hpp documents (version 1)."""
    h = b"DNSMSTAT" + struct.pack("<HHI", version, 72, flags) + producer.ljust(32, b"\0")
    h += struct.pack("<qqI", clock_ns, origin_ns, len(sections))
    out = h + struct.pack("<I", crc32c(h))
    for ident, payload in sections:
        s = struct.pack("<IIQ", ident, 0, len(payload)) + payload
        out += s + struct.pack("<I", crc32c(s))
    out += b"DSTE"
    return out + struct.pack("<I", crc32c(out))


def hand_checkpoint_inputs():
    """checkpoint: files for the engine's loader, and edits of the fuzzer's valid checkpoint.

    The reference checkpoint's sections, by index: 0 engine, 1 population, 2 shared, then shard
    0's record, clients of the day, base, candidates, watch, seen filter, doorkeeper (3 to 9)."""
    def edits(*triples):
        return b"\x01" + b"".join(struct.pack("<BIB", s, o, x) for s, o, x in triples)
    engine_v1 = struct.pack("<II", 0x01020304, 1)
    return {
        "hand-valid-checkpoint": b"\x01",
        "hand-layout-version": edits((0, 4, 0x02)),
        "hand-record-size": edits((0, 8, 0x10)),
        "hand-shard-count": edits((0, 48, 0x03)),
        "hand-base-candidate-index": edits((5, 76, 0xFF), (5, 77, 0xFF)),
        "hand-population-register": edits((1, 100, 0xF0)),
        "hand-shard-day": edits((3, 47, 0x80)),
        "hand-table-bytes": edits((5, 3, 0x55), (6, 300, 0x0F), (7, 20, 0x01), (8, 11, 0x40),
                                  (9, 5, 0xFF)),
        "hand-engine-replaced": b"\x01\xFF" + engine_v1 + bytes(40),
        "hand-file-empty": b"\x00",
        "hand-file-foreign": b"\x00detection:\n  enabled: true\n",
        "hand-file-short-engine": b"\x00" + state_file([(1, engine_v1)]),
        "hand-file-no-engine": b"\x00" + state_file([(7, b"x" * 16)]),
    }


def hand_state_files():
    """state_file: valid files of several shapes, and the ways files break."""
    day = 86_400 * 10**9
    typical = state_file([(1, bytes(range(64))), (2, b""), (0x100, b"domains" * 40)],
                         flags=1, producer=b"dnsmon 0.9.0", clock_ns=196 * day,
                         origin_ns=1_459_728_000 * 10**9)
    return {
        "hand-empty-sections": state_file([]),
        "hand-typical": typical,
        "hand-one-big": state_file([(7, bytes((i * 37) & 0xFF for i in range(3000)))]),
        "hand-newer-version": state_file([(1, b"x")], version=2),
        "hand-truncated": typical[:150],
        "hand-bad-section-crc": typical[:90] + bytes([typical[90] ^ 1]) + typical[91:],
        "hand-trailing-bytes": typical + b"\0",
    }


def pb_varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(number, value):
    """One protobuf field: int -> varint, bytes -> length-delimited, ("fixed32", v) -> fixed32."""
    if isinstance(value, tuple):
        return pb_varint(number << 3 | 5) + struct.pack("<I", value[1])
    if isinstance(value, int):
        return pb_varint(number << 3) + pb_varint(value)
    return pb_varint(number << 3 | 2) + pb_varint(len(value)) + value


def dnstap_frame(mtype, query=None, response=None, family=1, protocol=1, qaddr=None, raddr=None,
                 qport=40000, rport=53, qtime=(1_700_000_000, 1000), rtime=(1_700_000_000, 9000)):
    """The protobuf of a dnstap MESSAGE (capture/dnstap/dnstap.proto)."""
    qaddr = qaddr if qaddr is not None else (v4("192.0.2.7") if family == 1 else v6("2001:db8::7"))
    raddr = raddr if raddr is not None else (v4("127.0.0.1") if family == 1 else v6("::1"))
    m = pb_field(1, mtype) + pb_field(2, family) + pb_field(3, protocol)
    m += pb_field(4, qaddr) + pb_field(5, raddr) + pb_field(6, qport) + pb_field(7, rport)
    m += pb_field(8, qtime[0]) + pb_field(9, ("fixed32", qtime[1]))
    if query is not None:
        m += pb_field(10, query)
    m += pb_field(12, rtime[0]) + pb_field(13, ("fixed32", rtime[1]))
    if response is not None:
        m += pb_field(14, response)
    return pb_field(1, b"unbound") + pb_field(2, b"1.17.1") + pb_field(15, 1) + pb_field(14, m)


def fstrm_control(ctype, content_type=b""):
    body = struct.pack(">I", ctype)
    if content_type:
        body += struct.pack(">II", 1, len(content_type)) + content_type
    return struct.pack(">II", 0, len(body)) + body


def fstrm_data(payload):
    return struct.pack(">I", len(payload)) + payload


def hand_dnstap_streams():
    """dnstap: writer sessions as unbound sends them, and the ways a writer breaks the protocol."""
    ct = b"protobuf:dnstap.Dnstap"
    ready, start, stop = fstrm_control(4, ct), fstrm_control(2, ct), fstrm_control(3)
    q = dns_query(0x1234, "www.example.test")
    r = dns_response(0x1234, "www.example.test", answers=[], rcode=3)
    q6 = dns_query(0x4321, "nodata.example.test", qtype=28)
    r6 = dns_response(0x4321, "nodata.example.test", qtype=28)
    frames = [dnstap_frame(5, query=q), dnstap_frame(6, query=q, response=r),
              dnstap_frame(3, query=q6, family=2, protocol=3),
              dnstap_frame(4, response=r6, family=2, protocol=4)]
    session = ready + start + b"".join(fstrm_data(f) for f in frames) + stop
    return {
        "hand-unbound-session": b"\0" + session,
        "hand-unbound-session-bytewise": b"\1" + session,
        "hand-session-chunks-of-7": b"\7" + session,
        "hand-unidirectional": b"\0" + start + fstrm_data(frames[0]) + stop,
        "hand-one-payload": b"\0" + frames[1],
        "hand-payload-no-message": b"\0" + dnstap_frame(6, query=q),
        "hand-bad-address": b"\0" + dnstap_frame(5, query=q, qaddr=b"\1\2\3"),
        "hand-other-content-type": b"\0" + fstrm_control(4, b"protobuf:other") + start,
        "hand-data-before-start": b"\0" + fstrm_data(frames[0]),
        "hand-oversized-frame": b"\x10" + ready + start + struct.pack(">I", 300_000) +
                                bytes(600) + fstrm_data(frames[0]) + stop,
        "hand-long-control": b"\0" + struct.pack(">II", 0, 4096) + bytes(64),
        "hand-junk-frame": b"\0" + ready + start + fstrm_data(b"\x08\x96\x01junk") + stop,
    }


def write_seed(directory, name, data):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def clear_generated(directory):
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if not name.startswith(REGRESSION_PREFIXES):
            os.remove(os.path.join(directory, name))


def run_gen_pcap(gen_pcap, tmp, name, args):
    path = os.path.join(tmp, name + ".pcap")
    subprocess.run([gen_pcap, "--out", path] + args, check=True, stderr=subprocess.DEVNULL)
    with open(path, "rb") as f:
        return f.read()


def cmd_checked_in(args):
    with tempfile.TemporaryDirectory() as tmp:
        gen = {
            "default": run_gen_pcap(args.gen_pcap, tmp, "a", ["--packets", "12", "--seed", "1"]),
            "ipv6-edns": run_gen_pcap(args.gen_pcap, tmp, "b", [
                "--packets", "8", "--seed", "2", "--ipv6", "100", "--edns", "100"]),
            "vlan-nxdomain": run_gen_pcap(args.gen_pcap, tmp, "c", [
                "--packets", "6", "--seed", "3", "--vlan", "100", "--nxdomain", "50"]),
            "long": run_gen_pcap(args.gen_pcap, tmp, "d", [
                "--packets", "40", "--seed", "4", "--ipv6", "30", "--vlan", "20"]),
            # The realistic mix: CNAME chains, HTTPS, cookies, ECS, and DNS over TCP.
            "bench-tcp": run_gen_pcap(args.gen_pcap, tmp, "e", [
                "--profile", "bench", "--packets", "64", "--seed", "5", "--tcp", "40"]),
        }
    dirs = {t: os.path.join(args.out, t) for t in TARGETS}
    for d in dirs.values():
        clear_generated(d)

    # dns_message: distinct payloads of the generated captures, then the hand-built ones.
    seen = set()
    for name, blob in gen.items():
        kept = 0
        for i, p in enumerate(read_capture(blob)):
            for m in dns_messages_in(p.linktype, p.data):
                key = (m[2:4], m[12:])  # flags and body: ids differ in every message
                if key not in seen and kept < (16 if name == "bench-tcp" else 6):
                    seen.add(key)
                    kept += 1
                    write_seed(dirs["dns_message"], "gen-%s-%02d" % (name, i), m)
    for name, m in hand_dns_messages().items():
        write_seed(dirs["dns_message"], "hand-" + name, m)
    answers_dir = os.path.join(args.out, "dns_answers")
    os.makedirs(answers_dir, exist_ok=True)
    clear_generated(answers_dir)
    for name, m in hand_answer_messages().items():
        write_seed(answers_dir, "hand-" + name, m)

    # packet_path: each generated capture as one sequence, then the hand-built sequences.
    long_packets = read_capture(gen["long"])
    for name, blob in gen.items():
        if name != "long":
            write_seed(dirs["packet_path"], "gen-" + name,
                       sequences_from_packets(read_capture(blob))[0])
    for name, seq in hand_packet_sequences(long_packets).items():
        write_seed(dirs["packet_path"], "hand-" + name, seq)

    # pcap_file: the generated captures as they are, then the hand-built files.
    for name, blob in gen.items():
        write_seed(dirs["pcap_file"], "gen-" + name + ".pcap", blob)
    for name, blob in hand_capture_files(read_capture(gen["default"])).items():
        write_seed(dirs["pcap_file"], "hand-" + name, blob)

    # pcap_reader: the small generated captures, then the hand-built classic pcap files.
    for name in ("default", "ipv6-edns", "vlan-nxdomain"):
        write_seed(dirs["pcap_reader"], "gen-" + name + ".pcap", gen[name])
    for name, blob in hand_reader_files(read_capture(gen["default"])).items():
        write_seed(dirs["pcap_reader"], "hand-" + name, blob)

    for name, blob in hand_psl_lists().items():
        write_seed(dirs["psl_rules"], name, blob)
    for name, blob in hand_tcp_streams().items():
        write_seed(dirs["tcp_stream"], name, blob)
    for name, blob in hand_state_files().items():
        write_seed(dirs["state_file"], name, blob)
    for name, blob in hand_checkpoint_inputs().items():
        write_seed(dirs["checkpoint"], name, blob)
    for name, blob in hand_dnstap_streams().items():
        write_seed(dirs["dnstap"], name, blob)
    for name, blob in regression_seeds(read_capture(gen["default"])).items():
        write_seed(args.out, name, blob)

    for t in TARGETS:
        files = os.listdir(dirs[t])
        size = sum(os.path.getsize(os.path.join(dirs[t], f)) for f in files)
        print("%s: %d seeds, %d bytes" % (t, len(files), size))


def capture_files(pcaps):
    for root, dirs, files in os.walk(pcaps):
        dirs[:] = sorted(d for d in dirs if d != "oracle")
        for name in sorted(files):
            if name.endswith((".pcap", ".pcapng", ".cap", ".dmp")):
                yield os.path.join(root, name)


def cmd_corpus(args):
    dirs = {t: os.path.join(args.out, t) for t in TARGETS}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    if not args.pcaps or not os.path.isdir(args.pcaps):
        print("corpus: no capture corpus at %s: corpus seeds left empty" % args.pcaps)
        return
    counts = dict.fromkeys(TARGETS, 0)
    seen = set()
    for path in capture_files(args.pcaps):
        label = os.path.relpath(path, args.pcaps).replace(os.sep, "__")
        with open(path, "rb") as f:
            blob = f.read()
        try:
            packets = read_capture(blob)
        except (struct.error, IndexError, ValueError, ZeroDivisionError):
            packets = []
        n = 0
        for p in packets:
            for m in dns_messages_in(p.linktype, p.data):
                digest = hashlib.sha1(m).hexdigest()
                if digest not in seen and n < 32:
                    seen.add(digest)
                    n += 1
                    write_seed(dirs["dns_message"], "%s-%s" % (label, digest[:12]), m)
        counts["dns_message"] += n
        for i, seq in enumerate(sequences_from_packets(packets)):
            write_seed(dirs["packet_path"], "%s-%d" % (label, i), seq)
            counts["packet_path"] += 1
        stream = tcp_streams_from_packets(packets)
        if stream is not None:
            write_seed(dirs["tcp_stream"], label, stream)
            counts["tcp_stream"] += 1
        cut = cut_capture(blob)
        if len(cut) >= 24:
            write_seed(dirs["pcap_file"], label, cut)
            counts["pcap_file"] += 1
            if cut[:4] != b"\x0a\x0d\x0d\x0a":
                write_seed(dirs["pcap_reader"], label, cut)
                counts["pcap_reader"] += 1
    for t, source in SHARED_INPUT.items():
        shutil.rmtree(os.path.join(args.out, t), ignore_errors=True)
        shutil.copytree(dirs[source], os.path.join(args.out, t))
    print("corpus: " + ", ".join("%s %d" % (t, counts[t]) for t in TARGETS) +
          " seeds from %s" % args.pcaps)


def cmd_prepare(args):
    for t in TARGETS:
        work = os.path.join(args.out, "work", t)
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(os.path.join(args.seeds, t), work)
    for t, source in SHARED_INPUT.items():
        work = os.path.join(args.out, "work", t)
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(os.path.join(args.seeds, source), work)
        shutil.copytree(os.path.join(args.seeds, t), work, dirs_exist_ok=True)
    args.out = os.path.join(args.out, "corpus")
    cmd_corpus(args)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("checked-in", help="rewrite tests/fuzz/seeds")
    p.add_argument("--gen-pcap", required=True, help="path to the built tools/gen_pcap")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "seeds"))
    p = sub.add_parser("corpus", help="seeds from the public capture corpus")
    p.add_argument("--pcaps", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("prepare", help="working and corpus directories for ctest")
    p.add_argument("--seeds", required=True)
    p.add_argument("--pcaps", default="")
    p.add_argument("--out", required=True)
    args = parser.parse_args()
    {"checked-in": cmd_checked_in, "corpus": cmd_corpus, "prepare": cmd_prepare}[args.command](
        args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
