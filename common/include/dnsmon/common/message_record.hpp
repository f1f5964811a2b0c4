// A DNS message that a source has already decoded from its transport (a dnstap source, a test's
// messages), carried through a frame ring like a captured frame: a record of dnsmon's own link type
// kLinkType. The ring's frame header holds the time; the record holds the rest, so the parser
// decodes the message with its DNS decoder and skips the link, IP and transport layers.
//
// Layout (version 1, 40 bytes, then the DNS message in wire format):
//   0  version (1)          1  address family (4 or 6)     2  transport (0 UDP, 1 TCP, 2 DNS over
//                                                             TLS, 3 DNS over HTTPS)
//   3  flags (bit 0: the message came from reassembled IP fragments; the others are 0)
//   4  source port (big-endian)                            6  destination port (big-endian)
//   8  source address (16 bytes; IPv4 in the first 4)      24 destination address (16 bytes)
// A record is read as untrusted input: decode() rejects one that is short, of another version or
// with an unknown family, transport or flag.
//
// Thread-safety: pure functions. Allocation: none.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "dnsmon/common/bytes.hpp"

namespace dnsmon::record {

// Outside libpcap's LINKTYPE_ registry (which ends in the hundreds), so that no capture file's
// frames are taken for records.
inline constexpr std::uint16_t kLinkType = 0xFFF0;
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 40;
inline constexpr std::uint8_t kTransportUdp = 0;
inline constexpr std::uint8_t kTransportTcp = 1;
inline constexpr std::uint8_t kTransportDot = 2;
inline constexpr std::uint8_t kTransportDoh = 3;
inline constexpr std::uint8_t kFlagReassembled = 0x01;
inline constexpr std::size_t kMaxMessageBytes = 65535;
inline constexpr std::size_t kMaxRecordBytes = kHeaderBytes + kMaxMessageBytes;

struct Header {
  std::uint8_t family = 4;  // 4 or 6
  std::uint8_t transport = kTransportUdp;
  std::uint8_t flags = 0;
  std::uint16_t sport = 0, dport = 0;
  std::array<std::uint8_t, 16> src{}, dst{};
};

// Writes the record of `message` into out; returns its length, or 0 when out is too small or the
// message longer than a DNS message can be.
inline std::size_t encode(const Header& h, std::span<const std::byte> message,
                          std::span<std::byte> out) noexcept {
  if (message.size() > kMaxMessageBytes || out.size() < kHeaderBytes + message.size()) {
    return 0;
  }
  auto* p = reinterpret_cast<std::uint8_t*>(out.data());  // NOLINT: bytes as octets
  p[0] = kVersion;
  p[1] = h.family;
  p[2] = h.transport;
  p[3] = h.flags;
  p[4] = static_cast<std::uint8_t>(h.sport >> 8U);
  p[5] = static_cast<std::uint8_t>(h.sport);
  p[6] = static_cast<std::uint8_t>(h.dport >> 8U);
  p[7] = static_cast<std::uint8_t>(h.dport);
  std::memcpy(p + 8, h.src.data(), 16);
  std::memcpy(p + 24, h.dst.data(), 16);
  if (!message.empty()) {
    std::memcpy(p + kHeaderBytes, message.data(), message.size());
  }
  return kHeaderBytes + message.size();
}

// Reads a record: its header into h and its DNS message into message. False for a record that
// is not one of version 1.
inline bool decode(std::span<const std::byte> rec, Header& h,
                   std::span<const std::byte>& message) noexcept {
  if (rec.size() < kHeaderBytes) {
    return false;
  }
  const auto u8 = [&](std::size_t at) { return std::to_integer<std::uint8_t>(rec[at]); };
  if (u8(0) != kVersion || (u8(1) != 4 && u8(1) != 6) || u8(2) > kTransportDoh ||
      (u8(3) & ~kFlagReassembled) != 0) {
    return false;
  }
  h.family = u8(1);
  h.transport = u8(2);
  h.flags = u8(3);
  h.sport = bytes::load_be16(rec, 4);
  h.dport = bytes::load_be16(rec, 6);
  std::memcpy(h.src.data(), rec.data() + 8, 16);
  std::memcpy(h.dst.data(), rec.data() + 24, 16);
  if (h.family == 4) {  // only the first 4 bytes count
    std::fill(h.src.begin() + 4, h.src.end(), 0);
    std::fill(h.dst.begin() + 4, h.dst.end(), 0);
  }
  message = rec.subspan(kHeaderBytes);
  return true;
}

}  // namespace dnsmon::record
