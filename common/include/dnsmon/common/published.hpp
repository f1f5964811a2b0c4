// A value one thread replaces (a reload) while others read it on their hot paths without a lock.
//
// Each reader keeps its own copy and the generation it was taken at. Before a message it compares
// that generation with generation() (one acquire load); when they differ it takes the newest
// value with copy_to(), under the mutex, once per publication. publish() replaces the value and
// counts the generation up with a release store, so a reader that sees the new generation then
// copies a value at least as new.
//
// Thread-safety: every member from any thread. Allocation: publish() and copy_to() copy T.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>

namespace dnsmon {

template <typename T>
class Published {
 public:
  explicit Published(T initial) : value_(std::move(initial)) {}

  // Makes `next` the value from the readers' next check on; returns the value it replaces.
  T publish(T next) {
    const std::lock_guard lock(mutex_);
    T old = std::exchange(value_, std::move(next));
    generation_.fetch_add(1, std::memory_order_release);  // pairs with generation()
    return old;
  }

  // How many times publish() ran.
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }

  // Replaces `out` with a copy of the newest value (`out` is unchanged if the copy throws) and
  // returns its generation.
  std::uint64_t copy_to(T& out) const {
    const std::lock_guard lock(mutex_);
    T copy = value_;
    std::swap(out, copy);
    return generation_.load(std::memory_order_relaxed);
  }

  // A copy of the newest value.
  [[nodiscard]] T get() const {
    const std::lock_guard lock(mutex_);
    return value_;
  }

 private:
  mutable std::mutex mutex_;
  T value_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace dnsmon
