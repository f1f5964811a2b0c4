#include "gen/population.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace dnsmon::gen {
namespace {

struct Suffix {
  std::string_view name;
  double weight;
};

// Public suffixes, multi-label ones included, so registrable-domain logic gets exercised.
constexpr std::array<Suffix, 16> kSuffixes{{{"com", 46},
                                            {"net", 8},
                                            {"org", 7},
                                            {"de", 6},
                                            {"co.uk", 5},
                                            {"io", 4},
                                            {"fr", 3},
                                            {"com.br", 3},
                                            {"nl", 3},
                                            {"ru", 3},
                                            {"com.au", 2},
                                            {"co.jp", 2},
                                            {"info", 2},
                                            {"org.uk", 1},
                                            {"se", 1},
                                            {"dev", 1}}};

}  // namespace

Population::Population(std::uint32_t domains, std::uint64_t seed) {
  std::vector<double> suffix_w;
  suffix_w.reserve(kSuffixes.size());
  for (const auto& s : kSuffixes) {
    suffix_w.push_back(s.weight);
  }
  const Cdf suffix_cdf(suffix_w);
  Rng rng(mix(seed, 0xD0));
  domains_.reserve(domains + 2);
  subs_.reserve(domains);
  for (std::uint32_t d = 0; d < domains; ++d) {
    domains_.push_back(make_label(d) + "." + std::string(kSuffixes[suffix_cdf.sample(rng)].name));
    subs_.push_back(static_cast<std::uint8_t>(1 + mix(seed, d) % kSubLabels.size()));
  }
  // PTR names live under two registrable domains (the label just below in-addr/ip6.arpa).
  domains_.emplace_back("198.in-addr.arpa");
  domains_.emplace_back("2.ip6.arpa");
}

std::string Population::ptr_name(std::uint32_t i) {
  char buf[128];
  if (i < kPtrV4) {
    const std::uint32_t a = 0xC6120000U + mix(i, 0x77) % 0x20000U;  // 198.18.0.0/15
    std::snprintf(buf, sizeof buf, "%u.%u.%u.198.in-addr.arpa", a & 0xFFU, (a >> 8U) & 0xFFU,
                  (a >> 16U) & 0xFFU);
    return buf;
  }
  // 2001:db8:xxxx::yyyy in nibble form, least significant nibble first.
  std::array<std::uint8_t, 16> addr{0x20, 0x01, 0x0d, 0xb8};
  const std::uint64_t h = mix(i, 0x66);
  for (std::size_t k = 4; k < 16; ++k) {
    addr[k] = static_cast<std::uint8_t>(k < 8 || k >= 14 ? (h >> (8 * (k % 8))) & 0xFFU : 0);
  }
  std::string out;
  static constexpr std::string_view kHex = "0123456789abcdef";
  for (std::size_t k = 16; k-- > 0;) {
    out += kHex[addr[k] & 0xFU];
    out += '.';
    out += kHex[addr[k] >> 4U];
    out += '.';
  }
  return out + "ip6.arpa";
}

std::string Population::make_label(std::uint32_t d) {
  static constexpr std::string_view kC = "bcdfghjklmnprstvz";
  static constexpr std::string_view kV = "aeiou";
  constexpr std::uint32_t kSyl = 17 * 5;
  constexpr std::uint32_t kSpace = kSyl * kSyl * kSyl;  // 5^3 * 17^3
  auto syllable = [&](std::string& s, std::uint32_t v) {
    s += kC[v % kSyl / 5];
    s += kV[v % kSyl % 5];
  };
  // 7919 is prime to 5 and 17, so this is a permutation of [0, kSpace) for d < kSpace.
  auto v = static_cast<std::uint32_t>((std::uint64_t{d} * 7919U + 4242U) % kSpace);
  std::string s;
  for (int i = 0; i < 3; ++i, v /= kSyl) {
    syllable(s, v);
  }
  const auto h = mix(d, 0x1AB);
  if (h % 5 == 0) {
    syllable(s, static_cast<std::uint32_t>(h >> 8U));
  } else if (h % 7 == 0) {
    s += std::to_string(h % 100);
  } else if (h % 11 == 0) {
    s += "-online";
  }
  if (d >= kSpace) {  // beyond 614,125 domains: the index keeps labels distinct
    s += "-" + std::to_string(d / kSpace);
  }
  return s;
}

std::int64_t resolver_latency_us(Rng& rng, unsigned rcode) {
  if (rcode == 2) {
    return static_cast<std::int64_t>(50'000.0 * std::pow(30.0, rng.unit()));  // 50 ms-1.5 s
  }
  if (rng.chance(78)) {
    return rng.range(30, 400);
  }
  return static_cast<std::int64_t>(2'000.0 * std::pow(60.0, rng.unit()));  // 2-120 ms
}

}  // namespace dnsmon::gen
