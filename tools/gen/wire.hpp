// Fields in network byte order, for the writers that build the profiles' frames and messages.
#pragma once

#include <cstdint>

namespace dnsmon::gen {

// A writer derives from BigEndian<itself> and provides u8(), which appends one byte; u16() and
// u32() append big-endian fields through it.
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

 private:
  BigEndian() = default;
  friend Writer;

  Writer& self() { return static_cast<Writer&>(*this); }
};

}  // namespace dnsmon::gen
