// ASCII lower-casing, as DNS compares names (RFC 4343): the letters A-Z only; every other byte,
// those >= 0x80 included, stays as it is. One byte, eight bytes in a word, or sixteen at a time
// with the GCC/Clang vector extension.
//
// Thread-safety: pure functions. Allocation: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dnsmon::ascii {

constexpr char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

constexpr unsigned char lower(unsigned char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + ('a' - 'A')) : c;
}

// The eight bytes of w, lower-cased.
constexpr std::uint64_t lower_word(std::uint64_t w) noexcept {
  constexpr std::uint64_t kOnes = 0x0101'0101'0101'0101ULL;
  constexpr std::uint64_t kHigh = 0x80U * kOnes;
  // With each byte's high bit forced on, subtracting never borrows from the next byte, and the
  // high bit survives iff the low seven bits are >= the subtrahend.
  const std::uint64_t ge_a = (w | kHigh) - 'A' * kOnes;
  const std::uint64_t gt_z = (w | kHigh) - ('Z' + 1) * kOnes;
  // 'A' <= byte <= 'Z' differ in the high bit; bytes >= 0x80 (w's own high bit) are not letters.
  const std::uint64_t upper = (ge_a ^ gt_z) & ~w & kHigh;
  return w | (upper >> 2U);  // 0x80 >> 2 == 0x20
}

static_assert(lower_word(0x4041'5a5b'6061'7a7bULL) == 0x4061'7a5b'6061'7a7bULL);
static_assert(lower_word(0xc1da'c0db'0000'0000ULL) == 0xc1da'c0db'0000'0000ULL);

// Sixteen bytes of in, lower-cased, to out (which may be in). One vector compare per bound: bytes
// >= 0x80 are negative as signed chars, so they fail the range test and stay as they are.
inline void lower16(const void* in, void* out) noexcept {
  using Bytes = signed char __attribute__((vector_size(16)));
  Bytes v;
  std::memcpy(&v, in, sizeof v);
  v |= ((v >= 'A') & (v <= 'Z')) & 0x20;
  std::memcpy(out, &v, sizeof v);
}

// n bytes of in, lower-cased, to out (not overlapping in): sixteen at a time, the last block
// overlapping the one before it when n is not a multiple of sixteen.
inline void lower_copy(const char* in, std::size_t n, char* out) noexcept {
  if (n < 16) {
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = lower(in[i]);
    }
    return;
  }
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    lower16(in + i, out + i);
  }
  if (i < n) {
    lower16(in + n - 16, out + n - 16);  // the same bytes again where the blocks overlap
  }
}

}  // namespace dnsmon::ascii
