// Test streams with a Zipf popularity law, shared by the sketch tests and benchmarks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace dnsmon::test {

// `items` ranks in [0, keys) drawn from Zipf(s) with rng. The uniform draw is built from raw
// mt19937_64 output, so the stream is the same with any standard library.
inline std::vector<std::uint32_t> zipf_ranks(std::size_t items, std::size_t keys, double s,
                                             std::mt19937_64& rng) {
  std::vector<double> cdf(keys);
  double sum = 0.0;
  for (std::size_t i = 0; i < keys; ++i) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
    cdf[i] = sum;
  }
  std::vector<std::uint32_t> out(items);
  for (auto& rank : out) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
    const auto it = std::upper_bound(cdf.begin(), cdf.end(), u);
    rank = static_cast<std::uint32_t>(
        std::min<std::ptrdiff_t>(it - cdf.begin(), static_cast<std::ptrdiff_t>(keys - 1)));
  }
  return out;
}

}  // namespace dnsmon::test
