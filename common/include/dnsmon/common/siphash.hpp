// Keyed hashing for the bounded tables (fragments, pending queries): SipHash-1-3 over 64-bit words
// (one compression round per word, three finalisation rounds, the variant Rust's HashMap uses).
// The key is secret, so traffic cannot be chosen to pile into one bucket. derive_keys() (hash.hpp)
// turns one seed into key words.
//
// Thread-safety: a SipHasher is a value used by one thread. Allocation: none.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "dnsmon/common/hash.hpp"

namespace dnsmon::detail {

class SipHasher {
 public:
  explicit SipHasher(const std::array<std::uint64_t, 2>& key) noexcept
      : v0_(key[0] ^ 0x736f'6d65'7073'6575ULL),
        v1_(key[1] ^ 0x646f'7261'6e64'6f6dULL),
        v2_(key[0] ^ 0x6c79'6765'6e65'7261ULL),
        v3_(key[1] ^ 0x7465'6462'7974'6573ULL) {}

  void word(std::uint64_t m) noexcept {
    v3_ ^= m;
    round();
    v0_ ^= m;
    ++words_;
  }

  // For input made of whole words: the final block is the length in bytes, in the top byte.
  [[nodiscard]] std::uint64_t finish() noexcept { return finish(words_ << 59U); }

  // last: the final block, whose top byte holds the input length mod 256 (SipHash's padding).
  [[nodiscard]] std::uint64_t finish(std::uint64_t last) noexcept {
    word(last);
    v2_ ^= 0xFFU;
    round();
    round();
    round();
    return v0_ ^ v1_ ^ v2_ ^ v3_;
  }

 private:
  void round() noexcept {
    v0_ += v1_;
    v1_ = std::rotl(v1_, 13);
    v1_ ^= v0_;
    v0_ = std::rotl(v0_, 32);
    v2_ += v3_;
    v3_ = std::rotl(v3_, 16);
    v3_ ^= v2_;
    v0_ += v3_;
    v3_ = std::rotl(v3_, 21);
    v3_ ^= v0_;
    v2_ += v1_;
    v1_ = std::rotl(v1_, 17);
    v1_ ^= v2_;
    v2_ = std::rotl(v2_, 32);
  }

  std::uint64_t v0_, v1_, v2_, v3_;
  std::uint64_t words_ = 0;
};

// The keyed hash of 16 bytes (an address in its 128-bit form) as two words, `last` the final
// block: the client pseudonyms of the analytics labels and of detection's organisations.
[[nodiscard]] inline std::uint64_t sip_hash16(const std::array<std::uint64_t, 2>& key,
                                              const std::uint8_t* bytes,
                                              std::uint64_t last) noexcept {
  SipHasher h{key};
  std::uint64_t w0 = 0;
  std::uint64_t w1 = 0;
  std::memcpy(&w0, bytes, 8);
  std::memcpy(&w1, bytes + 8, 8);
  h.word(w0);
  h.word(w1);
  return h.finish(last);
}

}  // namespace dnsmon::detail
