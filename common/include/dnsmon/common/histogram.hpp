// A histogram with fixed integer upper bounds and one writing thread, read by the exporter.
//
// Bucket i counts the values v with Bounds[i - 1] < v <= Bounds[i] (Prometheus `le`); a last
// bucket counts those above every bound (+Inf). The bucket is found by a binary search of fixed
// depth over the bounds padded to a power of two with the largest value, which compiles without
// branches: a branchy search would mispredict about half its steps on random values.
//
// The sum is kept as a double of what record() is given for it (a latency in seconds, a size in
// bytes), so it cannot wrap, and whole numbers add up exactly.
//
// Thread-safety: record() from the one owning thread; snapshot() from any (each value is recent,
//   the whole is not one cut). Allocation: none.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "dnsmon/common/counter.hpp"

namespace dnsmon {

template <std::size_t N>
struct HistogramSnapshot {
  std::array<std::uint64_t, N + 1> buckets{};  // per bucket, not cumulative; +Inf last
  std::uint64_t count = 0;                     // the sum of buckets (_count = the +Inf bucket)
  double sum = 0;
};

// Bounds: a constexpr std::array<std::int64_t, N> of strictly increasing upper bounds.
template <const auto& Bounds>
class FixedHistogram {
 public:
  static constexpr std::size_t kBounds = Bounds.size();
  static constexpr std::size_t kBuckets = kBounds + 1;
  using Snapshot = HistogramSnapshot<kBounds>;

  // The bucket of value: the number of bounds below it.
  static constexpr std::size_t bucket_index(std::int64_t value) noexcept {
    std::size_t i = 0;
    for (std::size_t step = kPadded / 2; step > 0; step /= 2) {
      i += kSearch[i + step - 1] < value ? step : 0U;
    }
    return i;
  }

  void record(std::int64_t value, double sum_part) noexcept {
    buckets_[bucket_index(value)].add();
    // Single writer: a load and a store are enough, and cost no locked instruction.
    sum_.store(sum_.load(std::memory_order_relaxed) + sum_part, std::memory_order_relaxed);
  }

  [[nodiscard]] Snapshot snapshot() const noexcept {
    Snapshot s;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      s.buckets[i] = buckets_[i].get();
      s.count += s.buckets[i];
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static constexpr std::size_t kPadded = std::bit_ceil(kBounds + 1);
  static constexpr std::array<std::int64_t, kPadded> kSearch = [] {
    std::array<std::int64_t, kPadded> b{};
    for (std::size_t i = 0; i < kPadded; ++i) {
      b[i] = i < kBounds ? Bounds[i] : std::numeric_limits<std::int64_t>::max();
    }
    return b;
  }();
  static_assert(
      [] {
        for (std::size_t i = 1; i < kBounds; ++i) {
          if (Bounds[i] <= Bounds[i - 1]) {
            return false;
          }
        }
        return true;
      }(),
      "histogram bounds must increase");

  std::array<SingleWriterCounter, kBuckets> buckets_;
  std::atomic<double> sum_{0.0};  // relaxed: publishes no other data
};

}  // namespace dnsmon
