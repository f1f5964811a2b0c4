// A counter or gauge with one writing thread that any thread may read: the worker counts, the
// exporter reads at scrape time. The writer's load and store need no locked instruction, so an
// increment costs what a plain integer's does; a reader sees a recent, untorn value. No other data
// is published through it.
//
// Thread-safety: add() and set() from the one owning thread; get() from any.
// Allocation: none.
#pragma once

#include <atomic>
#include <cstdint>

namespace dnsmon {

class SingleWriterCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  void set(std::uint64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }

  [[nodiscard]] std::uint64_t get() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace dnsmon
