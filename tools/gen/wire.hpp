// Fields in network byte order, for the writers that build the profiles' frames and messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dnsmon::gen {

// A writer derives from BigEndian<itself> and provides u8(), which appends one byte; u16() and
// u32() append big-endian fields through it, and name() a DNS name without compression.
template <typename Writer>
class BigEndian {
 public:
  void u16(unsigned v) {
    self().u8(v >> 8U);
    self().u8(v & 0xFFU);
  }

  void u32(std::uint32_t v) {
    u16(v >> 16U);
    u16(v & 0xFFFFU);
  }

  // The first 12 bytes of an IPv4 header for a UDP datagram of udp_len bytes: no options, DF,
  // TTL 64, the checksum 0 until it is known. The two addresses come next.
  void ipv4_udp_start(std::size_t udp_len) {
    self().u8(0x45);
    self().u8(0);
    u16(static_cast<unsigned>(20 + udp_len));
    u16(0);
    u16(0x4000);  // DF
    self().u8(64);
    self().u8(17);
    u16(0);
  }

  // A name in dotted form, without the final dot ("" is the root), label by label.
  void name(std::string_view dotted) {
    std::size_t start = 0;
    while (start < dotted.size()) {
      auto dot = dotted.find('.', start);
      if (dot == std::string_view::npos) {
        dot = dotted.size();
      }
      self().u8(static_cast<unsigned>(dot - start));
      for (std::size_t i = start; i < dot; ++i) {
        self().u8(static_cast<unsigned char>(dotted[i]));
      }
      start = dot + 1;
    }
    self().u8(0);
  }

 private:
  BigEndian() = default;
  friend Writer;

  Writer& self() { return static_cast<Writer&>(*this); }
};

}  // namespace dnsmon::gen
