// The one family of seeded 64-bit hashing for the bounded tables, sketches and caches:
// - hash_bytes(): a wyhash-like construction over 128-bit multiplies, for byte strings (names,
//   addresses); hash_internal::hash_with() is the same with a loader that may transform the bytes
//   (the matcher's lower-casing one);
// - hash_internal::fold_mul(): the keyed multiply-fold it is built of, for fixed-size keys (the
//   query matcher's tuple);
// - mix64(): splitmix64's finaliser, a bijection that avalanches, for single words (the TCP flow
//   table, the pick of a worker); splitmix64() and derive_keys() turn one seed into key words;
// - SipHash-1-3 (siphash.hpp), where a key must stay secret against an observer.
// Every seed has a name: the fixed ones below, where a hash's value is part of a result that must
// be the same in every run, and random_seed() drawn at construction, per table or per process,
// wherever traffic chooses the keys, so that outsiders cannot aim keys at one bucket.
//
// Thread-safety: pure functions (random_seed() reads std::random_device). Allocation: none.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>

#include "dnsmon/common/bytes.hpp"

namespace dnsmon::detail {

// The named fixed seeds. Where traffic chooses the keys, a table takes random_seed() instead; these
// are for tables built once from configuration and for values that must not change between runs.
// The sketches' seed where a fixed one is wanted (tests, benchmarks); dnsmon itself draws one per
// process (the workers' HyperLogLogs merge only if their hashes agree).
inline constexpr std::uint64_t kDefaultSketchSeed = 0x2d358dccaa6c78a5ULL;
// The public suffix list's rule table: built once from the list, never from traffic.
inline constexpr std::uint64_t kSuffixRuleSeed = 0x9e3779b97f4a7c15ULL;
// The two words of the client pseudonyms' SipHash key, from analytics.pseudonymise_key: the same
// key gives the same pseudonyms in every run.
inline constexpr std::array<std::uint64_t, 2> kPseudonymKeySeeds{0x243f'6a88'85a3'08d3ULL,
                                                                 0x1319'8a2e'0370'7344ULL};

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

// splitmix64's finaliser: a bijection of 64-bit words in which every output bit depends on every
// input bit. Unkeyed by itself: xor a key word in first where traffic chooses the input.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30U;
  x *= hash_internal::kK1;
  x ^= x >> 27U;
  x *= hash_internal::kK2;
  x ^= x >> 31U;
  return x;
}

// splitmix64: the next of a sequence of well-mixed words from one 64-bit state.
inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  state += hash_internal::kK0;
  return mix64(state);
}

// N key words from one seed (successive splitmix64 outputs).
template <std::size_t N>
std::array<std::uint64_t, N> derive_keys(std::uint64_t seed) noexcept {
  std::array<std::uint64_t, N> keys{};
  for (auto& k : keys) {
    k = splitmix64(seed);
  }
  return keys;
}

// A seed from std::random_device, never 0 (which the tables' options take to mean "draw one").
inline std::uint64_t random_seed() {
  std::random_device rd;
  std::uint64_t seed = 0;
  while (seed == 0) {
    seed = (std::uint64_t{rd()} << 32U) ^ rd();
  }
  return seed;
}

// The seed a table asked for (tests fix one), or a random one where it asked for 0.
inline std::uint64_t seed_or_random(std::uint64_t requested) {
  return requested != 0 ? requested : random_seed();
}

}  // namespace dnsmon::detail
