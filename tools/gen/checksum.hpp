// The Internet checksum (RFC 1071) of the IPv4 header and of UDP and TCP with their pseudo-header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dnsmon::gen {

// Sum of 16-bit big-endian words (odd tail padded with zero), not yet folded.
inline std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  std::size_t i = 0;
  for (; i + 1 < n; i += 2) {
    acc += static_cast<std::uint32_t>((p[i] << 8U) | p[i + 1]);
  }
  if (i < n) {
    acc += static_cast<std::uint32_t>(p[i] << 8U);
  }
  return acc;
}

inline std::uint16_t fold(std::uint32_t sum) {
  while ((sum >> 16U) != 0) {
    sum = (sum & 0xFFFFU) + (sum >> 16U);
  }
  return static_cast<std::uint16_t>(~sum & 0xFFFFU);
}

}  // namespace dnsmon::gen
