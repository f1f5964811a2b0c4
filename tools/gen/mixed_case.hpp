// --mixed-case: names spelled as resolvers using DNS 0x20 spell them.
#pragma once

#include <cstdint>
#include <span>

namespace dnsmon::gen {

// Seeds the random stream that spells names in mixed case. It is separate from each profile's
// main stream, so --mixed-case changes the letters' case and nothing else.
inline constexpr std::uint64_t kCaseSalt = 0xCA5E0CA5EULL;

// DNS 0x20 (draft-vixie-dnsext-dns0x20): each ASCII letter of the name becomes upper case with
// probability one half. next() gives 64 random bits at a time.
template <typename Next>
void scramble_case(std::span<char> name, Next next) {
  std::uint64_t bits = 0;
  unsigned left = 0;
  for (auto& ch : name) {
    if (ch < 'a' || ch > 'z') {
      continue;
    }
    if (left == 0) {
      bits = next();
      left = 64;
    }
    if ((bits & 1U) != 0) {
      ch = static_cast<char>(ch - 'a' + 'A');
    }
    bits >>= 1U;
    --left;
  }
}

}  // namespace dnsmon::gen
