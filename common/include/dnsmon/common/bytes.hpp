// Loads of 16- and 32-bit integers from untrusted bytes, in network (big-endian) or little-endian
// order. The caller has checked that the bytes are there.
//
// Thread-safety: pure functions. Allocation: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dnsmon::bytes {

inline std::uint16_t load_be16(std::span<const std::byte> b, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(b[at]) << 8U) |
                                    std::to_integer<unsigned>(b[at + 1]));
}

inline std::uint32_t load_be32(std::span<const std::byte> b, std::size_t at) noexcept {
  return (static_cast<std::uint32_t>(load_be16(b, at)) << 16U) | load_be16(b, at + 2);
}

inline std::uint16_t load_le16(std::span<const std::byte> b, std::size_t at) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(b[at]) |
                                    (std::to_integer<unsigned>(b[at + 1]) << 8U));
}

inline std::uint32_t load_le32(std::span<const std::byte> b, std::size_t at) noexcept {
  return static_cast<std::uint32_t>(load_le16(b, at)) |
         (static_cast<std::uint32_t>(load_le16(b, at + 2)) << 16U);
}

}  // namespace dnsmon::bytes
