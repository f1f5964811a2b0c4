// Loads of integers from untrusted bytes: 16 and 32 bits in network (big-endian) or little-endian
// order, and 32 and 64 bits in the host's order (for hashing, where the order does not matter),
// none of them needing alignment; and the host-order stores that give back what a host-order load
// read. The caller has checked that the bytes are there.
//
// Thread-safety: pure functions. Allocation: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
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

inline std::uint32_t load_host32(const void* p) noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint64_t load_host64(const void* p) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store_host32(void* p, std::uint32_t v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

inline void store_host64(void* p, std::uint64_t v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace dnsmon::bytes
