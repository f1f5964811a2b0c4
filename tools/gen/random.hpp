// The random streams of the bench and flood profiles: the same numbers on every platform.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dnsmon::gen {

// xoshiro256**: fast, and the same sequence on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ULL;  // splitmix64 expands the seed
      std::uint64_t z = seed;
      z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
      s = z ^ (z >> 31U);
    }
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17U;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32).
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>(((next() >> 32U) * n) >> 32U);
  }

  std::uint32_t range(std::uint32_t lo, std::uint32_t hi) { return lo + below(hi - lo + 1); }

  double unit() { return static_cast<double>(next() >> 11U) * 0x1.0p-53; }  // [0, 1)

  bool chance(double pct) { return unit() * 100.0 < pct; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) {
    return (x << static_cast<unsigned>(k)) | (x >> static_cast<unsigned>(64 - k));
  }

  std::array<std::uint64_t, 4> s_{};
};

// A stable per-entity hash, so that properties of a host or domain do not depend on draw order.
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b = 0) {
  std::uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31U);
}

// Samples an index with probability proportional to its weight.
class Cdf {
 public:
  Cdf() = default;

  explicit Cdf(const std::vector<double>& weights) {
    cum_.reserve(weights.size());
    double total = 0;
    for (const double w : weights) {
      total += w;
      cum_.push_back(total);
    }
  }

  static Cdf zipf(std::size_t n, double s) {
    std::vector<double> w(n);
    for (std::size_t i = 0; i < n; ++i) {
      w[i] = 1.0 / std::pow(static_cast<double>(i + 1), s);
    }
    return Cdf(w);
  }

  std::uint32_t sample(Rng& rng) const {
    const double u = rng.unit() * cum_.back();
    const auto it = std::upper_bound(cum_.begin(), cum_.end(), u);
    const auto i = static_cast<std::size_t>(it - cum_.begin());
    return static_cast<std::uint32_t>(std::min(i, cum_.size() - 1));
  }

 private:
  std::vector<double> cum_;
};

}  // namespace dnsmon::gen
