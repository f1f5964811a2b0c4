// Seeded 64-bit non-cryptographic hashing for the bounded tables and sketches: hash_bytes() (a
// wyhash-like construction over 128-bit multiplies) and the pieces the query matcher's
// lower-casing loader reuses. Keys come from seeds drawn at random per process (kDefaultSketchSeed
// only where a fixed value is wanted, as in tests), so outsiders cannot aim keys at one bucket.
// SipHash-1-3 (siphash.hpp) is the keyed hash where a key must stay secret against an observer.
//
// Thread-safety: pure functions. Allocation: none.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "dnsmon/common/bytes.hpp"

namespace dnsmon::detail {

inline constexpr std::uint64_t kDefaultSketchSeed = 0x2d358dccaa6c78a5ULL;

namespace hash_internal {

// Odd constants with about half their bits set (splitmix64 / Murmur3 finalizer family).
inline constexpr std::uint64_t kK0 = 0x9e3779b97f4a7c15ULL;
inline constexpr std::uint64_t kK1 = 0xbf58476d1ce4e5b9ULL;
inline constexpr std::uint64_t kK2 = 0x94d049bb133111ebULL;
inline constexpr std::uint64_t kK3 = 0xff51afd7ed558ccdULL;
inline constexpr std::uint64_t kK4 = 0xc4ceb9fe1a85ec53ULL;

// 64 x 64 -> 128 bit multiply folded by xor: every output bit depends on every input bit of both
// factors, one mulq on x86-64.
inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using U128 = unsigned __int128;  // GCC/Clang; __extension__ silences -Wpedantic
  const U128 p = static_cast<U128>(a) * b;
  return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}

inline std::uint64_t load64(const unsigned char* p) noexcept {
  return bytes::load_host64(p);
}

inline std::uint64_t load32(const unsigned char* p) noexcept {
  return bytes::load_host32(p);
}

}  // namespace hash_internal

namespace hash_internal {

struct Words {
  std::uint64_t lo, hi;
};

// How hash_with() reads its input: here, the bytes as they are. A loader that transforms bytes
// as it reads them (the matcher's lower-casing one) hashes the transformed string without a copy.
struct RawBytes {
  static Words load16(const unsigned char* p) noexcept { return {load64(p), load64(p + 8)}; }

  static std::uint64_t load8(const unsigned char* p) noexcept { return load64(p); }

  static std::uint64_t load4(const unsigned char* p) noexcept { return load32(p); }

  static std::uint64_t byte(unsigned char c) noexcept { return c; }
};

// wyhash-like construction: 16 bytes per 128-bit multiply, two independent lanes for long
// inputs, overlapping loads for the tail, length folded in last. Input words are xored with
// secrets derived from the seed before they are multiplied: with public constants there, an
// input word equal to one would zero the product whatever the seed, and so collide for every
// seed.
template <class Bytes>
std::uint64_t hash_with(const unsigned char* p, std::size_t len, std::uint64_t seed) noexcept {
  const std::uint64_t s1 = kK1 ^ seed;
  const std::uint64_t s2 = kK2 ^ std::rotl(seed, 32);
  std::uint64_t h = fold_mul(seed ^ kK0, kK1) ^ seed;
  std::size_t left = len;
  if (left > 32) {
    std::uint64_t h2 = h ^ kK4;
    while (left > 32) {
      const Words w0 = Bytes::load16(p);
      const Words w1 = Bytes::load16(p + 16);
      h = fold_mul(w0.lo ^ s1, w0.hi ^ h);
      h2 = fold_mul(w1.lo ^ s2, w1.hi ^ h2);
      p += 32;
      left -= 32;
    }
    h ^= h2;
  }
  if (left > 16) {
    const Words w = Bytes::load16(p);
    h = fold_mul(w.lo ^ s1, w.hi ^ h);
    p += 16;
    left -= 16;
  }
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (len >= 16) {  // the last 16 bytes of the input, overlapping what was already mixed
    const Words w = Bytes::load16(p + left - 16);
    a = w.lo;
    b = w.hi;
  } else if (left >= 8) {
    a = Bytes::load8(p);
    b = Bytes::load8(p + left - 8);
  } else if (left >= 4) {
    a = Bytes::load4(p);
    b = Bytes::load4(p + left - 4);
  } else if (left > 0) {
    a = (Bytes::byte(p[0]) << 16U) | (Bytes::byte(p[left / 2]) << 8U) | Bytes::byte(p[left - 1]);
  }
  h = fold_mul(a ^ s2, b ^ h ^ kK3);
  return fold_mul(h ^ kK4, len ^ kK0);
}

}  // namespace hash_internal

// Seeded 64-bit hash of a byte string (hash_internal::hash_with). Values depend on byte order,
// so they are stable within one host, not across architectures.
inline std::uint64_t hash_bytes(const void* data, std::size_t len,
                                std::uint64_t seed = kDefaultSketchSeed) noexcept {
  return hash_internal::hash_with<hash_internal::RawBytes>(static_cast<const unsigned char*>(data),
                                                           len, seed);
}

inline std::uint64_t hash_bytes(std::string_view s,
                                std::uint64_t seed = kDefaultSketchSeed) noexcept {
  return hash_bytes(s.data(), s.size(), seed);
}

}  // namespace dnsmon::detail
