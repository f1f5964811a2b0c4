// Lock-free single-producer/single-consumer ring of fixed-size frame slots.
//
// The capture thread copies each frame (up to the slot size) into the next free slot and publishes
// it; the worker thread reads the oldest published slot in place and pops it. All memory is
// allocated once in the constructor, so nothing is allocated per frame. Indices live on separate
// cache lines, and each side caches the other side's index so that the common case touches only
// its own line (the layout follows the classic rigtorp SPSC queue).
//
// Thread-safety: exactly one producer thread calls try_push(); exactly one consumer thread calls
//   front()/pop(). size_approx() and the counters may be read from any thread.
// Allocation: constructor only.
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>

namespace dnsmon {

// Per-frame metadata stored in front of the bytes of each slot.
struct FrameHeader {
  std::int64_t ts_ns = 0;       // capture time, nanoseconds since the Unix epoch
  std::uint32_t wire_len = 0;   // length on the wire
  std::uint32_t cap_len = 0;    // bytes stored in the slot (<= slot size)
  std::uint16_t link_type = 0;  // pcap LINKTYPE_* value
  std::uint16_t source = 0;     // index of the capture source that produced it
};

// A published frame, valid until the consumer calls pop().
struct FrameView {
  FrameHeader header;
  std::span<const std::byte> bytes;
};

class FrameRing {
 public:
  static constexpr std::size_t kCacheLine =
      64;  // not hardware_destructive_interference_size: GCC 12
           // warns about it in headers (-Winterference-size)

  // slots: usable capacity; slot_bytes: largest frame kept whole (longer frames are cut).
  FrameRing(std::size_t slots, std::size_t slot_bytes)
      : capacity_(slots + 1),  // one slack slot tells full from empty
        slot_bytes_(slot_bytes),
        stride_(round_up(sizeof(FrameHeader) + slot_bytes, kCacheLine)) {
    if (slots == 0 || slot_bytes == 0) {
      throw std::invalid_argument("ring needs at least one slot of at least one byte");
    }
    storage_.reset(
        static_cast<std::byte*>(::operator new (capacity_* stride_, std::align_val_t{kCacheLine})));
  }

  FrameRing(const FrameRing&) = delete;
  FrameRing& operator=(const FrameRing&) = delete;
  ~FrameRing() = default;

  // Producer: copies header and up to slot_bytes() of data. Returns false (and copies nothing) when
  // the ring is full. Never blocks.
  [[nodiscard]] bool try_push(const FrameHeader& header, std::span<const std::byte> data) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);  // only we write tail_
    std::size_t next = tail + 1;
    if (next == capacity_) {
      next = 0;
    }
    if (next == head_cache_) {
      head_cache_ = head_.load(std::memory_order_acquire);  // pairs with release in pop()
      if (next == head_cache_) {
        return false;
      }
    }
    std::byte* slot = slot_at(tail);
    FrameHeader stored = header;
    const std::size_t n = data.size() < slot_bytes_ ? data.size() : slot_bytes_;
    stored.cap_len = static_cast<std::uint32_t>(n);
    std::memcpy(slot, &stored, sizeof stored);
    if (n != 0) {
      std::memcpy(slot + sizeof(FrameHeader), data.data(), n);
    }
    tail_.store(next, std::memory_order_release);  // pairs with acquire in front()
    return true;
  }

  // Consumer: the oldest published frame, or false when the ring is empty.
  [[nodiscard]] bool front(FrameView& out) noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);  // only we write head_
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);  // pairs with release in try_push()
      if (head == tail_cache_) {
        return false;
      }
    }
    const std::byte* slot = slot_at(head);
    std::memcpy(&out.header, slot, sizeof(FrameHeader));
    out.bytes = std::span<const std::byte>(slot + sizeof(FrameHeader), out.header.cap_len);
    return true;
  }

  // Consumer: releases the frame returned by the last successful front().
  void pop() noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    assert(head != tail_.load(std::memory_order_acquire) && "pop() needs a prior true front()");
    std::size_t next = head + 1;
    if (next == capacity_) {
      next = 0;
    }
    head_.store(next, std::memory_order_release);  // pairs with acquire in try_push()
  }

  // Any thread: number of frames waiting; exact only when both ends are idle.
  [[nodiscard]] std::size_t size_approx() const noexcept {
    const auto head = head_.load(std::memory_order_acquire);
    const auto tail = tail_.load(std::memory_order_acquire);
    return tail >= head ? tail - head : capacity_ - head + tail;
  }

  [[nodiscard]] bool empty() const noexcept { return size_approx() == 0; }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_ - 1; }

  [[nodiscard]] std::size_t slot_bytes() const noexcept { return slot_bytes_; }

  [[nodiscard]] std::size_t memory_bytes() const noexcept { return capacity_ * stride_; }

 private:
  struct AlignedDelete {
    void operator()(std::byte* p) const noexcept {
      ::operator delete (p, std::align_val_t{kCacheLine});
    }
  };

  static constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
  }

  std::byte* slot_at(std::size_t index) const noexcept { return storage_.get() + index * stride_; }

  const std::size_t capacity_;
  const std::size_t slot_bytes_;
  const std::size_t stride_;
  std::unique_ptr<std::byte[], AlignedDelete> storage_;

  // Producer's line: its index and its cached copy of the consumer's index.
  alignas(kCacheLine) std::atomic<std::size_t> tail_{0};
  std::size_t head_cache_ = 0;
  // Consumer's line.
  alignas(kCacheLine) std::atomic<std::size_t> head_{0};
  std::size_t tail_cache_ = 0;
  // Padding keeps the consumer's line away from whatever follows the ring in memory.
  [[maybe_unused]] char pad_[kCacheLine - sizeof(std::atomic<std::size_t>) - sizeof(std::size_t)]{};
};

}  // namespace dnsmon
