// Lock-free single-producer/single-consumer ring of frames, packed back to back.
//
// The capture thread copies each frame (up to slot_bytes()) into the ring right after the previous
// one and publishes it; the worker thread reads the oldest frame in place and pops it. A frame
// takes its own length plus a 24-byte header, rounded up to 32 bytes, so the DNS frames of a busy
// link (80-300 bytes) sit a few to a cache line's neighbourhood instead of one per 4 KiB slot: both
// threads walk memory sequentially and the ring's working set stays small. A frame never wraps: if
// it does not fit before the end of the storage, a skip marker sends the consumer back to the
// start.
//
// The ring is full when it holds capacity() frames or when the next frame does not fit in the
// storage: by default capacity() x 512 bytes (or x the largest record, if smaller), at least one
// largest record, plus room for one more, so that a largest frame always fits in an empty ring. A
// stream of large frames therefore fills it before capacity() frames.
//
// Indices live on separate cache lines, and each side caches the other side's index so that the
// common case touches only its own line (the layout follows the classic rigtorp SPSC queue).
//
// Waiting. Neither side spins on the other: a producer that must not drop (every source) sleeps
// in wait_for_room() until the consumer has emptied half the ring, and a consumer with nothing to
// do sleeps on a Doorbell that producers ring once a batch of frames (or a quarter of the bytes) is
// waiting, when their input pauses, and when they drop a frame for want of room. Both sleeps are
// futex waits with a timeout, and the wake-ups that matter (a flush, the end of input, room for the
// reader) are ordered by fences so that none is lost; the per-frame check is a relaxed load whose
// rare misses the next flush or the timeout makes up for.
//
// Thread-safety: exactly one producer thread calls try_push()/wait_for_room()/ring_consumer();
//   exactly one consumer thread calls front()/pop()/release_producer(). size_approx() and the
//   counters may be read from any thread.
// Allocation: constructor only.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <limits>
#include <linux/futex.h>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <sys/syscall.h>
#include <type_traits>
#include <unistd.h>

namespace dnsmon {

// Per-frame metadata stored in front of the bytes of each frame.
struct FrameHeader {
  std::int64_t ts_ns = 0;       // capture time, nanoseconds since the Unix epoch
  std::uint32_t wire_len = 0;   // length on the wire
  std::uint32_t cap_len = 0;    // bytes stored in the ring (<= slot_bytes())
  std::uint16_t link_type = 0;  // pcap LINKTYPE_* value
  std::uint16_t source = 0;     // index of the capture source that produced it
};

// A published frame, valid until the consumer calls pop().
struct FrameView {
  FrameHeader header;
  std::span<const std::byte> bytes;
};

namespace ring_detail {

// Sleeps while *word == expected, at most timeout. Spurious returns are fine for the callers.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::nanoseconds timeout) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                std::atomic<std::uint32_t>::is_always_lock_free);
  timespec ts{};
  ts.tv_sec = static_cast<std::time_t>(timeout.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg): the futex system call has no wrapper
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &ts,
            nullptr, 0);
}

inline void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg): see futex_wait
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE,
            std::numeric_limits<int>::max(), nullptr, nullptr, 0);
}

}  // namespace ring_detail

// Wakes one sleeping consumer thread (a worker) when any of its rings has work. Several
// producers may ring it; one thread sleeps on it:
//
//   const auto ticket = bell.prepare_sleep();
//   if (nothing to do) bell.sleep(ticket, timeout); else bell.cancel_sleep();
//
// The check between the two calls closes the race with a producer that published just before.
class Doorbell {
 public:
  [[nodiscard]] std::uint32_t prepare_sleep() noexcept {
    const std::uint32_t ticket = seq_.load(std::memory_order_acquire);
    sleeping_.store(1, std::memory_order_relaxed);
    // Our flag before the caller's look at the rings; pairs with the fence in
    // FrameRing::ring_consumer(true).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return ticket;
  }

  void cancel_sleep() noexcept { sleeping_.store(0, std::memory_order_relaxed); }

  void sleep(std::uint32_t ticket, std::chrono::nanoseconds timeout) noexcept {
    ring_detail::futex_wait(seq_, ticket, timeout);
    sleeping_.store(0, std::memory_order_relaxed);
  }

  // Cheap enough per frame: a relaxed load unless the consumer sleeps.
  [[nodiscard]] bool sleeping() const noexcept {
    return sleeping_.load(std::memory_order_relaxed) != 0;
  }

  // Wakes the consumer if it is asleep (or about to be).
  void ring() noexcept {
    if (sleeping_.exchange(0, std::memory_order_seq_cst) != 0) {
      seq_.fetch_add(1, std::memory_order_release);
      ring_detail::futex_wake_all(seq_);
    }
  }

  // Wakes the consumer whatever it is doing: the end of all input.
  void ring_always() noexcept {
    seq_.fetch_add(1, std::memory_order_seq_cst);
    ring_detail::futex_wake_all(seq_);
  }

 private:
  alignas(64) std::atomic<std::uint32_t> seq_{0};
  std::atomic<std::uint32_t> sleeping_{0};
  [[maybe_unused]] char pad_[64 - 2 * sizeof(std::atomic<std::uint32_t>)]{};
};

class FrameRing {
 public:
  static constexpr std::size_t kCacheLine =
      64;                                    // not hardware_destructive_interference_size: GCC 12
                                             // warns about it in headers (-Winterference-size)
  static constexpr std::size_t kAlign = 32;  // frames start on 32-byte boundaries
  static constexpr std::size_t kBytesPerFrame = 512;  // default storage per capacity() frame
  // A consumer that sleeps is woken once this many frames wait (frames / 4 + 1 if that is less),
  // or by ring_consumer(true). A futex wake-up costs microseconds: a batch spreads it.
  static constexpr std::size_t kWakeBatch = 256;

  // frames: at most this many frames queued; slot_bytes: the largest frame kept whole (longer
  // ones are cut); storage_bytes: 0 for the default frames x 512 bytes (or frames x the largest
  // record, if smaller), always plus room for one largest frame.
  FrameRing(std::size_t frames, std::size_t slot_bytes, std::size_t storage_bytes = 0)
      : frames_(frames),
        slot_bytes_(slot_bytes),
        storage_bytes_(storage(frames, slot_bytes, storage_bytes)),
        wake_batch_(frames / 4 < kWakeBatch ? frames / 4 + 1 : kWakeBatch) {
    storage_.reset(
        static_cast<std::byte*>(::operator new (storage_bytes_, std::align_val_t{kCacheLine})));
  }

  FrameRing(const FrameRing&) = delete;
  FrameRing& operator=(const FrameRing&) = delete;
  ~FrameRing() = default;

  // Producer: copies header and up to slot_bytes() of data. Returns false (and copies nothing) when
  // the ring is full. Never blocks.
  [[nodiscard]] bool try_push(const FrameHeader& header, std::span<const std::byte> data) noexcept {
    const std::size_t n = data.size() < slot_bytes_ ? data.size() : slot_bytes_;
    const std::size_t record = record_bytes(n);
    const std::size_t pad = push_bytes(n) - record;
    if (!has_room(pad + record)) {
      return false;
    }
    std::byte* base = storage_.get();
    if (pad != 0) {
      FrameHeader skip;
      skip.cap_len = kSkip;
      std::memcpy(base + tail_off_, &skip, sizeof skip);
      tail_off_ = 0;
    }
    write_header(base + tail_off_, header, static_cast<std::uint32_t>(n));
    if (n != 0) {
      std::memcpy(base + tail_off_ + sizeof(FrameHeader), data.data(), n);
    }
    tail_off_ += record;
    if (tail_off_ == storage_bytes_) {
      tail_off_ = 0;
    }
    pushed_local_ += 1;
    pushed_.store(pushed_local_, std::memory_order_relaxed);
    tail_.store(tail_.load(std::memory_order_relaxed) + pad + record,
                std::memory_order_release);  // pairs with acquire in front()
    return true;
  }

  // Consumer: the oldest published frame, or false when the ring is empty.
  [[nodiscard]] bool front(FrameView& out) noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);  // only we write head_
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);  // pairs with release in try_push()
      if (head == tail_cache_) {
        return false;
      }
    }
    // No side effect but the cached tail: front() may be called again before pop() (the worker's
    // idle check does) and must then return the same frame.
    const std::byte* base = storage_.get();
    std::size_t off = head_off_;
    std::memcpy(&out.header, base + off, sizeof(FrameHeader));
    std::uint64_t next = head;
    if (out.header.cap_len == kSkip) {  // the producer went back to the start
      next += storage_bytes_ - off;
      off = 0;
      std::memcpy(&out.header, base, sizeof(FrameHeader));
    }
    const std::size_t record = record_bytes(out.header.cap_len);
    out.bytes = std::span<const std::byte>(base + off + sizeof(FrameHeader), out.header.cap_len);
    next_head_ = next + record;
    next_head_off_ = off + record == storage_bytes_ ? 0 : off + record;
    return true;
  }

  // Consumer: releases the frame returned by the last successful front().
  void pop() noexcept {
    assert(head_.load(std::memory_order_relaxed) != tail_.load(std::memory_order_acquire) &&
           "pop() needs a prior true front()");
    head_off_ = next_head_off_;
    popped_local_ += 1;
    popped_.store(popped_local_, std::memory_order_relaxed);
    head_.store(next_head_, std::memory_order_release);  // pairs with acquire in has_room()
  }

  // Producer, after try_push() of a frame of frame_bytes failed: sleeps until that frame fits, at
  // most timeout. The consumer wakes it only once the ring is at most half full, so a replay reader
  // refills in bursts instead of waking for every frame. Returns at once if the frame fits now.
  void wait_for_room(std::size_t frame_bytes, std::chrono::nanoseconds timeout) noexcept {
    const std::size_t need = push_bytes(frame_bytes < slot_bytes_ ? frame_bytes : slot_bytes_);
    const std::uint32_t ticket = room_seq_.load(std::memory_order_acquire);
    producer_sleeping_.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with release_producer()'s
    if (!has_room(need)) {
      ring_detail::futex_wait(room_seq_, ticket, timeout);
    }
    producer_sleeping_.store(0, std::memory_order_relaxed);
  }

  // Consumer, after a batch of pops: wakes a producer sleeping in wait_for_room() once the ring is
  // at most half full. One fence per call: call it per batch, not per frame.
  void release_producer() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // our head_ store before the flag load
    if (producer_sleeping_.load(std::memory_order_relaxed) == 0) {
      return;
    }
    const std::uint64_t used =
        tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_relaxed);
    const std::uint64_t frames = pushed_.load(std::memory_order_relaxed) - popped_local_;
    if (used <= storage_bytes_ / 2 && frames <= frames_ / 2 &&
        producer_sleeping_.exchange(0, std::memory_order_relaxed) != 0) {
      room_seq_.fetch_add(1, std::memory_order_release);
      ring_detail::futex_wake_all(room_seq_);
    }
  }

  // Producer: the consumer's doorbell (none by default: the consumer polls).
  void set_doorbell(Doorbell* bell) noexcept { bell_ = bell; }

  // Producer, after a push: wakes a sleeping consumer once kWakeBatch frames wait, or at once with
  // flush (the end of a batch of input: nothing else may follow for a while).
  void ring_consumer(bool flush) noexcept {
    if (bell_ == nullptr) {
      return;
    }
    if (flush) {
      std::atomic_thread_fence(std::memory_order_seq_cst);  // our tail_ store before the flag load
    }
    if (!bell_->sleeping()) {
      return;
    }
    // A batch of frames, or a quarter of the bytes (large frames fill the storage first).
    if (flush || pushed_local_ - popped_.load(std::memory_order_relaxed) >= wake_batch_ ||
        tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_relaxed) >=
            storage_bytes_ / 4) {
      bell_->ring();
    }
  }

  // Any thread: number of frames waiting; exact only when both ends are idle.
  [[nodiscard]] std::size_t size_approx() const noexcept {
    const auto popped = popped_.load(std::memory_order_relaxed);
    const auto pushed = pushed_.load(std::memory_order_relaxed);
    return pushed >= popped ? static_cast<std::size_t>(pushed - popped) : 0;
  }

  [[nodiscard]] bool empty() const noexcept { return size_approx() == 0; }

  // Any thread: bytes in use (frames, their headers and padding, a skipped gap); approximate.
  [[nodiscard]] std::size_t bytes_approx() const noexcept {
    const auto head = head_.load(std::memory_order_relaxed);
    const auto tail = tail_.load(std::memory_order_relaxed);
    return tail >= head ? static_cast<std::size_t>(tail - head) : 0;
  }

  // Live capture: the producer found its input empty at packet time ts_ns (the kernel held no
  // frame for it then), so every frame it will push later is younger. Published after the frames
  // pushed before it. The consumer, idle, may then move its packet clock up to that time without
  // running ahead of frames still queued in the kernel.
  void set_quiet_at(std::int64_t ts_ns) noexcept {
    quiet_at_ns_.store(ts_ns, std::memory_order_release);
  }

  // 0 until the producer first found its input empty.
  [[nodiscard]] std::int64_t quiet_at() const noexcept {
    return quiet_at_ns_.load(std::memory_order_acquire);
  }

  // The most frames the ring queues.
  [[nodiscard]] std::size_t capacity() const noexcept { return frames_; }

  [[nodiscard]] std::size_t slot_bytes() const noexcept { return slot_bytes_; }

  [[nodiscard]] std::size_t memory_bytes() const noexcept { return storage_bytes_; }

 private:
  static constexpr std::uint32_t kSkip = std::numeric_limits<std::uint32_t>::max();

  // Stores a record's header field by field. Copying the caller's FrameHeader as one block would
  // load its last eight bytes (two 2-byte fields and padding) in one go, and a load that spans
  // several recent stores cannot take its value from the store buffer: it waits until every older
  // store has reached the cache, including those of the previous frame's copy into the ring, whose
  // lines the consumer's core holds. That wait took 84 % of try_push() and a fifth of the whole
  // replay's CPU time in a profile. Loads of the fields as they were stored do not wait.
  static void write_header(std::byte* at, const FrameHeader& h, std::uint32_t cap_len) noexcept {
    static_assert(sizeof(FrameHeader) == 24 && offsetof(FrameHeader, source) == 18);
    const std::uint32_t padding = 0;
    std::memcpy(at + offsetof(FrameHeader, ts_ns), &h.ts_ns, sizeof h.ts_ns);
    std::memcpy(at + offsetof(FrameHeader, wire_len), &h.wire_len, sizeof h.wire_len);
    std::memcpy(at + offsetof(FrameHeader, cap_len), &cap_len, sizeof cap_len);
    std::memcpy(at + offsetof(FrameHeader, link_type), &h.link_type, sizeof h.link_type);
    std::memcpy(at + offsetof(FrameHeader, source), &h.source, sizeof h.source);
    std::memcpy(at + 20, &padding, sizeof padding);
  }

  struct AlignedDelete {
    void operator()(std::byte* p) const noexcept {
      ::operator delete (p, std::align_val_t{kCacheLine});
    }
  };

  static constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
  }

  static constexpr std::size_t record_bytes(std::size_t n) noexcept {
    return round_up(sizeof(FrameHeader) + n, kAlign);
  }

  static std::size_t storage(std::size_t frames, std::size_t slot_bytes, std::size_t requested) {
    if (frames == 0 || slot_bytes == 0) {
      throw std::invalid_argument("ring needs room for at least one frame of at least one byte");
    }
    if (frames > (std::size_t{1} << 24U) || slot_bytes > (std::size_t{1} << 20U)) {
      throw std::invalid_argument("ring too large");
    }
    const std::size_t largest = record_bytes(slot_bytes);
    const std::size_t per_frame = largest < kBytesPerFrame ? largest : kBytesPerFrame;
    if (requested > (std::size_t{1} << 36U)) {
      throw std::invalid_argument("ring too large");
    }
    std::size_t bytes = requested != 0 ? round_up(requested, kAlign) : frames * per_frame;
    // At least two largest records in all: then a largest record fits in an empty ring wherever
    // the write offset is (the gap skipped at the end is smaller than the record).
    bytes = bytes < largest ? largest : bytes;
    return bytes + largest;
  }

  // Producer: the bytes a push of n frame bytes takes now. A record that would run past the end
  // starts at offset 0 instead, and the gap up to the end is skipped.
  [[nodiscard]] std::size_t push_bytes(std::size_t n) const noexcept {
    const std::size_t record = record_bytes(n);
    return tail_off_ + record > storage_bytes_ ? storage_bytes_ - tail_off_ + record : record;
  }

  // Producer: room for need more bytes and one more frame?
  bool has_room(std::size_t need) noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);  // only we write tail_
    if (tail + need - head_cache_ > storage_bytes_ || pushed_local_ - popped_cache_ >= frames_) {
      head_cache_ = head_.load(std::memory_order_acquire);  // pairs with release in pop()
      popped_cache_ = popped_.load(std::memory_order_relaxed);
      return tail + need - head_cache_ <= storage_bytes_ && pushed_local_ - popped_cache_ < frames_;
    }
    return true;
  }

  const std::size_t frames_;
  const std::size_t slot_bytes_;
  const std::size_t storage_bytes_;
  const std::size_t wake_batch_;
  std::unique_ptr<std::byte[], AlignedDelete> storage_;
  Doorbell* bell_ = nullptr;

  // Producer's lines: its positions (bytes and frames, monotonic) and cached copies of the
  // consumer's.
  alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0};
  std::atomic<std::uint64_t> pushed_{0};
  std::size_t tail_off_ = 0;  // tail_ within the storage
  std::uint64_t pushed_local_ = 0;
  std::uint64_t head_cache_ = 0;
  std::uint64_t popped_cache_ = 0;
  // Consumer's lines.
  alignas(kCacheLine) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::uint64_t> popped_{0};
  std::size_t head_off_ = 0;
  std::uint64_t popped_local_ = 0;
  std::uint64_t tail_cache_ = 0;
  std::uint64_t next_head_ = 0;
  std::size_t next_head_off_ = 0;
  // The producer's sleep: written when it sleeps, read by the consumer once per batch.
  alignas(kCacheLine) std::atomic<std::uint32_t> room_seq_{0};
  std::atomic<std::uint32_t> producer_sleeping_{0};
  [[maybe_unused]] char pad_[kCacheLine - 2 * sizeof(std::atomic<std::uint32_t>)]{};
  alignas(kCacheLine) std::atomic<std::int64_t> quiet_at_ns_{0};  // set_quiet_at()
  [[maybe_unused]] char quiet_pad_[kCacheLine - sizeof(std::atomic<std::int64_t>)]{};
};

// A lock-free single-producer/single-consumer ring of fixed-size records (trivially copyable T),
// for hand-offs that must never wait: try_push() fails at once when the ring is full, and the
// caller drops and counts. Capacity is rounded up to a power of two. The consumer sleeps on a
// Doorbell that the producer rings (Doorbell::ring(), a relaxed load unless the consumer sleeps)
// after a push. Indices on separate cache lines, each side caching the other's (as FrameRing).
//
// Thread-safety: one producer thread calls try_push(); one consumer thread calls front(), peek()
// and pop().
// Allocation: constructor only.
template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  explicit SpscRing(std::size_t capacity)
      : mask_(std::bit_ceil(std::max<std::size_t>(capacity, 2)) - 1),
        slots_(std::make_unique<T[]>(mask_ + 1)) {}

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

  // Producer: copies item in, or returns false when the ring is full.
  [[nodiscard]] bool try_push(const T& item) noexcept {
    return try_push_with([&item](T& slot) noexcept { slot = item; });
  }

  // Producer: like try_push(), but write(slot) fills the free slot in place, so that a record
  // whose tail is unused need not be copied whole; the slot holds whatever an earlier record
  // left. Returns false, without calling write, when the ring is full.
  template <class Write>
  [[nodiscard]] bool try_push_with(Write&& write) noexcept {
    static_assert(std::is_nothrow_invocable_v<Write, T&>);
    const std::uint64_t tail = tail_local_;
    if (tail - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ > mask_) {
        return false;
      }
    }
    std::forward<Write>(write)(slots_[tail & mask_]);
    tail_local_ = tail + 1;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer: the oldest record, valid until pop(), or null when the ring is empty.
  [[nodiscard]] const T* front() noexcept {
    const std::uint64_t head = head_local_;
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) {
        return nullptr;
      }
    }
    return &slots_[head & mask_];
  }

  // Consumer: the record `ahead` places after the oldest (peek(0) is front()), valid until it is
  // popped, or null when fewer than ahead + 1 records wait. Reads the producer's index only when
  // the records already known to wait do not reach that far.
  [[nodiscard]] const T* peek(std::size_t ahead) noexcept {
    const std::uint64_t at = head_local_ + ahead;
    if (at >= tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (at >= tail_cache_) {
        return nullptr;
      }
    }
    return &slots_[at & mask_];
  }

  void pop() noexcept {
    ++head_local_;
    head_.store(head_local_, std::memory_order_release);
  }

  // Producer: whether at least n records wait. The producer's cached head makes the first guess
  // an overestimate; only a guess of n or more reads the consumer's head, so asking after every
  // push costs a shared-line read once per n pushes or so while the consumer keeps up.
  [[nodiscard]] bool backlog_at_least(std::size_t n) noexcept {
    if (tail_local_ - head_cache_ < n) {
      return false;
    }
    head_cache_ = head_.load(std::memory_order_acquire);
    return tail_local_ - head_cache_ >= n;
  }

  // Records waiting, from any thread (approximate while both sides run).
  [[nodiscard]] std::size_t size_approx() const noexcept {
    return static_cast<std::size_t>(tail_.load(std::memory_order_relaxed) -
                                    head_.load(std::memory_order_relaxed));
  }

 private:
  static constexpr std::size_t kLine = 64;
  const std::size_t mask_;
  std::unique_ptr<T[]> slots_;
  alignas(kLine) std::atomic<std::uint64_t> tail_{0};
  std::uint64_t tail_local_ = 0;
  std::uint64_t head_cache_ = 0;
  alignas(kLine) std::atomic<std::uint64_t> head_{0};
  std::uint64_t head_local_ = 0;
  std::uint64_t tail_cache_ = 0;
  [[maybe_unused]] char pad_[kLine - 3 * sizeof(std::uint64_t)]{};
};

}  // namespace dnsmon
