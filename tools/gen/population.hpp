// The names of the bench and flood profiles (registrable domains under real public suffixes,
// their host names, reverse names) and a resolver's answer delays.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gen/random.hpp"

namespace dnsmon::gen {

// Host labels under a registrable domain, in order of popularity ("" is the apex).
inline constexpr std::array<std::string_view, 19> kSubLabels{
    "www",    "",       "api",  "cdn",  "static", "mail", "m",      "img",  "login", "app",
    "eu.api", "assets", "news", "auth", "media",  "shop", "s1.img", "push", "status"};

// The name population: registrable domains, their host names and the reverse names.
class Population {
 public:
  Population(std::uint32_t domains, std::uint64_t seed);

  [[nodiscard]] std::uint32_t count() const {
    return static_cast<std::uint32_t>(domains_.size() - 2);
  }

  [[nodiscard]] const std::string& domain(std::uint32_t d) const { return domains_[d]; }

  [[nodiscard]] std::uint32_t subdomains(std::uint32_t d) const { return subs_[d]; }

  [[nodiscard]] std::uint32_t ptr_domain(bool v6) const { return count() + (v6 ? 1U : 0U); }

  // PTR names: 8,000 IPv4 addresses in 198.18.0.0/15 and 2,000 IPv6 in 2001:db8::/32.
  static constexpr std::uint32_t kPtrNames = 10000;
  static constexpr std::uint32_t kPtrV4 = 8000;

  static std::string ptr_name(std::uint32_t i);

 private:
  // Three consonant-vowel syllables of an index permuted over 85^3: distinct domains get
  // distinct labels. Some get a fourth syllable, a number or a word, so lengths vary; a suffix
  // never makes two labels equal, since the first six letters already differ.
  static std::string make_label(std::uint32_t d);

  std::vector<std::string> domains_;
  std::vector<std::uint8_t> subs_;
};

// Cache hit (most answers) or miss: the resolver's answer delay, in microseconds.
std::int64_t resolver_latency_us(Rng& rng, unsigned rcode);

}  // namespace dnsmon::gen
