// The link-layer walk: from a captured frame of a libpcap link type to its IP packet. One copy,
// with one set of limits, for capture's flow hash (which picks a worker by the IP addresses) and
// for the parser (which goes on into IP, tunnels and DNS), so both see the same packet.
//
// Link types: Ethernet with 802.1Q/802.1ad tags, Linux cooked v1/v2, BSD loopback (NULL/LOOP),
// raw IPv4/IPv6, PPP in HDLC-like framing, IEEE 802.11 data frames (plain, radiotap, PPI), FDDI,
// Linux ARCnet, Linux NFLOG and Apple PKTAP (PPI and PKTAP wrap a frame of another link type).
// Wherever an ethertype says what follows, PPPoE session frames and MPLS label stacks are walked
// too (an MPLS Ethernet pseudowire carries a whole Ethernet frame after its control word).
//
// Thread-safety: pure functions. Allocation: none. Every length is checked before it is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "dnsmon/common/bytes.hpp"

namespace dnsmon::link {

// libpcap's LINKTYPE_ values.
inline constexpr std::uint32_t kNull = 0;
inline constexpr std::uint32_t kEthernet = 1;
inline constexpr std::uint32_t kPpp = 9;
inline constexpr std::uint32_t kFddi = 10;
inline constexpr std::uint32_t kRawOpenBsd = 12;  // DLT_RAW as written by some platforms
inline constexpr std::uint32_t kRawBsdOs = 14;
inline constexpr std::uint32_t kPppHdlc = 50;  // DLT_PPP_SERIAL
inline constexpr std::uint32_t kRaw = 101;
inline constexpr std::uint32_t kIeee80211 = 105;
inline constexpr std::uint32_t kLoop = 108;
inline constexpr std::uint32_t kLinuxSll = 113;
inline constexpr std::uint32_t kRadiotap = 127;
inline constexpr std::uint32_t kArcnetLinux = 129;  // DLT_ARCNET_LINUX
inline constexpr std::uint32_t kPpi = 192;
inline constexpr std::uint32_t kIpv4 = 228;
inline constexpr std::uint32_t kIpv6 = 229;
inline constexpr std::uint32_t kNflog = 239;
inline constexpr std::uint32_t kPktap = 258;
inline constexpr std::uint32_t kLinuxSll2 = 276;

inline constexpr std::uint16_t kEtherIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherIpv6 = 0x86DD;
inline constexpr std::uint16_t kEtherVlan = 0x8100;
inline constexpr std::uint16_t kEtherQinQ = 0x88A8;
inline constexpr std::uint16_t kEtherQinQOld = 0x9100;
inline constexpr std::uint16_t kEtherPppoeSession = 0x8864;
inline constexpr std::uint16_t kEtherMpls = 0x8847;
inline constexpr std::uint16_t kEtherMplsMulticast = 0x8848;

inline constexpr int kMaxVlanTags = 8;    // QinQ stacks are two deep in practice; more is hostile
inline constexpr int kMaxMplsLabels = 8;  // label stacks of 2-3 are common; more is hostile
inline constexpr int kMaxNesting = 4;     // frames wrapped in frames (PPI, PKTAP, pseudowires)
inline constexpr int kMaxNflogTlvs = 32;  // NFLOG attributes before the payload

enum class Status : std::uint8_t { Ok, Truncated, NotIp, BadIpHeader, Unsupported };

struct Packet {
  Status status = Status::Ok;
  std::uint8_t version = 0;          // 4 or 6 when Ok
  std::span<const std::byte> bytes;  // from the IP header on, when Ok
};

namespace detail {

inline Packet fail(Status status) noexcept {
  return {status, 0, {}};
}

inline Packet ip(std::span<const std::byte> bytes, std::uint8_t version) noexcept {
  return {Status::Ok, version, bytes};
}

inline Packet pppoe_session(std::span<const std::byte> bytes) noexcept;
inline Packet mpls(std::span<const std::byte> bytes, int depth) noexcept;

// What an ethertype announces. `depth` counts the frames already walked around this one.
inline Packet by_ethertype(std::uint16_t ethertype, std::span<const std::byte> bytes,
                           int depth = 0) noexcept {
  switch (ethertype) {
    case kEtherIpv4:
      return ip(bytes, 4);
    case kEtherIpv6:
      return ip(bytes, 6);
    case kEtherPppoeSession:
      return pppoe_session(bytes);
    case kEtherMpls:
    case kEtherMplsMulticast:
      return mpls(bytes, depth);
    default:
      return detail::fail(Status::NotIp);
  }
}

inline Packet by_version(std::span<const std::byte> bytes) noexcept {
  if (bytes.empty()) {
    return detail::fail(Status::Truncated);
  }
  const auto version = static_cast<std::uint8_t>(std::to_integer<unsigned>(bytes[0]) >> 4U);
  if (version != 4 && version != 6) {
    return detail::fail(Status::BadIpHeader);
  }
  return ip(bytes, version);
}

// BSD loopback: a 4-byte address family, in the writer's byte order for NULL and network order
// for LOOP. AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 depending on the BSD.
inline Packet by_bsd_family(std::uint32_t family, std::span<const std::byte> bytes) noexcept {
  if (family == 2) {
    return ip(bytes, 4);
  }
  if (family == 24 || family == 28 || family == 30) {
    return ip(bytes, 6);
  }
  return detail::fail(Status::NotIp);
}

}  // namespace detail

// PPP in HDLC-like framing (RFC 1662): optional address/control bytes, then a 1- or 2-byte
// protocol number (RFC 1661 allows the short form).
inline Packet ppp(std::span<const std::byte> bytes) noexcept {
  std::size_t off = 0;
  if (bytes.size() >= 2 && std::to_integer<unsigned>(bytes[0]) == 0xFF &&
      std::to_integer<unsigned>(bytes[1]) == 0x03) {
    off = 2;
  }
  if (bytes.size() <= off) {
    return detail::fail(Status::Truncated);
  }
  auto protocol = std::to_integer<unsigned>(bytes[off]);
  if ((protocol & 1U) == 0) {  // the low byte of a protocol number is odd: a 2-byte form
    if (bytes.size() < off + 2) {
      return detail::fail(Status::Truncated);
    }
    protocol = bytes::load_be16(bytes, off);
    off += 2;
  } else {
    off += 1;
  }
  if (protocol == 0x21) {
    return detail::ip(bytes.subspan(off), 4);
  }
  if (protocol == 0x57) {
    return detail::ip(bytes.subspan(off), 6);
  }
  return detail::fail(Status::NotIp);
}

// IEEE 802.11 data frames with an LLC/SNAP header. Protected (encrypted) frames cannot be read.
inline Packet ieee80211(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < 24) {
    return detail::fail(Status::Truncated);
  }
  const auto fc0 = std::to_integer<unsigned>(bytes[0]);
  const auto fc1 = std::to_integer<unsigned>(bytes[1]);
  if (((fc0 >> 2U) & 3U) != 2) {
    return detail::fail(Status::NotIp);  // management or control frame
  }
  if ((fc1 & 0x40U) != 0) {
    return detail::fail(Status::Unsupported);  // protected frame
  }
  const unsigned subtype = fc0 >> 4U;
  if ((subtype & 0x4U) != 0) {
    return detail::fail(Status::NotIp);  // null data: no payload
  }
  std::size_t header = 24;
  if ((fc1 & 0x03U) == 0x03U) {
    header += 6;  // four addresses (a WDS frame)
  }
  if ((subtype & 0x8U) != 0) {
    header += 2;  // QoS control
    if ((fc1 & 0x80U) != 0) {
      header += 4;  // HT control
    }
  }
  if (bytes.size() < header + 8) {
    return detail::fail(Status::Truncated);
  }
  const auto llc = bytes.subspan(header);
  if (std::to_integer<unsigned>(llc[0]) != 0xAA || std::to_integer<unsigned>(llc[1]) != 0xAA) {
    return detail::fail(Status::NotIp);
  }
  return detail::by_ethertype(bytes::load_be16(llc, 6), llc.subspan(8));
}

// Ethernet II with up to kMaxVlanTags 802.1Q/802.1ad tags. `depth` counts the frames already
// walked around this one (an Ethernet pseudowire inside MPLS inside Ethernet...).
inline Packet ethernet(std::span<const std::byte> bytes, int depth = 0) noexcept {
  if (bytes.size() < 14) {
    return detail::fail(Status::Truncated);
  }
  std::size_t off = 12;
  std::uint16_t ethertype = bytes::load_be16(bytes, off);
  int tags = 0;
  while (ethertype == kEtherVlan || ethertype == kEtherQinQ || ethertype == kEtherQinQOld) {
    if (++tags > kMaxVlanTags) {
      return detail::fail(Status::Unsupported);
    }
    off += 4;
    if (bytes.size() < off + 2) {
      return detail::fail(Status::Truncated);
    }
    ethertype = bytes::load_be16(bytes, off);
  }
  return detail::by_ethertype(ethertype, bytes.subspan(off + 2), depth);
}

namespace detail {

// A PPPoE session frame (RFC 2516): version and type (0x11), code 0, session id, payload length,
// then a PPP protocol number without address and control bytes.
inline Packet pppoe_session(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < 8) {
    return fail(Status::Truncated);
  }
  if (std::to_integer<unsigned>(bytes[0]) != 0x11 || std::to_integer<unsigned>(bytes[1]) != 0) {
    return fail(Status::NotIp);
  }
  return ppp(bytes.subspan(6));
}

// An MPLS label stack (RFC 3032): 4-byte entries down to the one with the bottom-of-stack bit.
// Nothing says what follows it; as routers and Wireshark do, the first nibble tells: 4 or 6 is an
// IP packet, 0 the control word of a pseudowire (RFC 4385) before an Ethernet frame (RFC 4448).
inline Packet mpls(std::span<const std::byte> bytes, int depth) noexcept {
  std::size_t off = 0;
  for (int labels = 1;; ++labels) {
    if (labels > kMaxMplsLabels) {
      return fail(Status::Unsupported);
    }
    if (bytes.size() < off + 4) {
      return fail(Status::Truncated);
    }
    const bool bottom = (std::to_integer<unsigned>(bytes[off + 2]) & 0x01U) != 0;
    off += 4;
    if (bottom) {
      break;
    }
  }
  if (bytes.size() <= off) {
    return fail(Status::Truncated);
  }
  switch (std::to_integer<unsigned>(bytes[off]) >> 4U) {
    case 4:
      return ip(bytes.subspan(off), 4);
    case 6:
      return ip(bytes.subspan(off), 6);
    case 0:
      if (depth + 1 > kMaxNesting) {
        return fail(Status::Unsupported);
      }
      if (bytes.size() < off + 4) {
        return fail(Status::Truncated);
      }
      return ethernet(bytes.subspan(off + 4), depth + 1);
    default:
      return fail(Status::NotIp);
  }
}

}  // namespace detail

// FDDI (LINKTYPE_FDDI): frame control, destination and source addresses, then IEEE 802.2 LLC with
// a SNAP header whose ethertype says what follows.
inline Packet fddi(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < 13 + 8) {
    return detail::fail(Status::Truncated);
  }
  const auto llc = bytes.subspan(13);
  if (std::to_integer<unsigned>(llc[0]) != 0xAA || std::to_integer<unsigned>(llc[1]) != 0xAA) {
    return detail::fail(Status::NotIp);
  }
  return detail::by_ethertype(bytes::load_be16(llc, 6), llc.subspan(8));
}

// Linux NFLOG (LINKTYPE_NFLOG): address family, version, resource id, then type-length-value
// attributes, each padded to 4 bytes, whose NFULA_PAYLOAD (9) is the IP packet. Lengths and types
// are in the byte order of the host that logged: the first attribute's length tells which.
inline Packet nflog(std::span<const std::byte> bytes) noexcept {
  constexpr unsigned kPayload = 9;
  if (bytes.size() < 4) {
    return detail::fail(Status::Truncated);
  }
  const auto family = std::to_integer<unsigned>(bytes[0]);
  std::size_t off = 4;
  bool big_endian = false;
  if (bytes.size() >= off + 4) {
    const std::size_t le = bytes::load_le16(bytes, off);
    const std::size_t be = bytes::load_be16(bytes, off);
    big_endian = (le < 4 || le > bytes.size() - off) && be >= 4 && be <= bytes.size() - off;
  }
  for (int n = 0; n < kMaxNflogTlvs; ++n) {
    if (bytes.size() < off + 4) {
      return detail::fail(Status::Truncated);
    }
    const std::size_t len =
        big_endian ? bytes::load_be16(bytes, off) : bytes::load_le16(bytes, off);
    const unsigned type =
        (big_endian ? bytes::load_be16(bytes, off + 2) : bytes::load_le16(bytes, off + 2)) &
        0x7FFFU;  // without NLA_F_NESTED
    if (len < 4 || len > bytes.size() - off) {
      return detail::fail(Status::Truncated);
    }
    if (type == kPayload) {
      const auto payload = bytes.subspan(off + 4, len - 4);
      if (family == 2) {
        return detail::ip(payload, 4);
      }
      if (family == 10) {
        return detail::ip(payload, 6);
      }
      return detail::by_version(payload);
    }
    off += (len + 3U) & ~std::size_t{3};
    if (off >= bytes.size()) {
      return detail::fail(Status::NotIp);  // no payload attribute: nothing of the packet logged
    }
  }
  return detail::fail(Status::Unsupported);
}

// The IP packet inside a frame of `link_type`. `depth` counts the wrappers already walked.
inline Packet walk(std::uint32_t link_type, std::span<const std::byte> bytes,
                   int depth = 0) noexcept {
  switch (link_type) {
    case kEthernet:
      return ethernet(bytes, depth);
    case kFddi:
      return fddi(bytes);
    case kNflog:
      return nflog(bytes);
    case kLinuxSll:
      if (bytes.size() < 16) {
        return detail::fail(Status::Truncated);
      }
      return detail::by_ethertype(bytes::load_be16(bytes, 14), bytes.subspan(16), depth);
    case kLinuxSll2:
      if (bytes.size() < 20) {
        return detail::fail(Status::Truncated);
      }
      return detail::by_ethertype(bytes::load_be16(bytes, 0), bytes.subspan(20), depth);
    case kNull:
    case kLoop: {
      if (bytes.size() < 4) {
        return detail::fail(Status::Truncated);
      }
      std::uint32_t family = 0;
      std::memcpy(&family, bytes.data(), 4);
      if (link_type == kLoop || family > 0xFFFFU) {
        family = __builtin_bswap32(family);  // NULL is in the writer's order: accept either
      }
      return detail::by_bsd_family(family, bytes.subspan(4));
    }
    case kRaw:
    case kRawOpenBsd:
    case kRawBsdOs:
      return detail::by_version(bytes);
    case kIpv4:
    case kIpv6: {
      const Packet p = detail::by_version(bytes);
      if (p.status == Status::Ok && p.version != (link_type == kIpv4 ? 4 : 6)) {
        return detail::fail(Status::BadIpHeader);
      }
      return p;
    }
    case kPpp:
    case kPppHdlc:
      return ppp(bytes);
    case kArcnetLinux: {
      // Linux ARCnet: source, destination, 2-byte offset, then the protocol id. RFC 1051 IP (240)
      // follows at once; RFC 1201 IP (212) after a split flag and a sequence number.
      if (bytes.size() < 5) {
        return detail::fail(Status::Truncated);
      }
      const auto id = std::to_integer<unsigned>(bytes[4]);
      if (id == 240) {
        return detail::ip(bytes.subspan(5), 4);
      }
      if (id == 212 && bytes.size() >= 8) {
        return detail::ip(bytes.subspan(8), 4);
      }
      return detail::fail(bytes.size() < 8 && id == 212 ? Status::Truncated : Status::NotIp);
    }
    case kIeee80211:
      return ieee80211(bytes);
    case kRadiotap: {
      if (bytes.size() < 4) {
        return detail::fail(Status::Truncated);
      }
      const std::size_t len = bytes::load_le16(bytes, 2);
      if (len < 8 || len > bytes.size()) {
        return detail::fail(Status::Truncated);
      }
      return ieee80211(bytes.subspan(len));
    }
    case kPpi:
    case kPktap: {
      // Both wrap a frame of another link type, little-endian: PPI (version, flags, 16-bit
      // length, 32-bit DLT), Apple's PKTAP (32-bit header length, record type, 32-bit DLT).
      if (bytes.size() < 8) {
        return detail::fail(Status::Truncated);
      }
      if (depth + 1 > kMaxNesting) {
        return detail::fail(Status::Unsupported);
      }
      const bool ppi = link_type == kPpi;
      if (!ppi && bytes.size() < 12) {
        return detail::fail(Status::Truncated);
      }
      const std::size_t len = ppi ? bytes::load_le16(bytes, 2) : bytes::load_le32(bytes, 0);
      const std::uint32_t inner = bytes::load_le32(bytes, ppi ? 4 : 8);
      if (len < 8 || len > bytes.size()) {
        return detail::fail(Status::Truncated);
      }
      return walk(inner, bytes.subspan(len), depth + 1);
    }
    default:
      return detail::fail(Status::Unsupported);
  }
}

}  // namespace dnsmon::link
