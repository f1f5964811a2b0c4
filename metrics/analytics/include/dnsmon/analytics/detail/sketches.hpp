// Bounded-memory summaries for the traffic analytics: Space-Saving top-N heavy hitters,
// HyperLogLog distinct counts, and a ring of sub-windows in packet time that turns either (or a
// plain counter) into a sliding-window summary. They answer "which names and clients dominate
// now" and "how many distinct clients and names" in memory fixed at construction, whatever the
// traffic: a random-subdomain flood only churns the lowest Space-Saving counters and sets HLL
// registers, it never grows a table. Both sketches use hash_bytes(), a seeded 64-bit
// non-cryptographic hash. Draw one random seed per process and give it to every worker's sketches
// (HLL sketches merge only if their hashes agree), so that outsiders cannot aim keys at one index
// bucket or one HLL register.
//
// Thread-safety: none inside; each object has a single writer (the worker that owns it). Readers
//   never touch a worker's objects: the worker merges its windows into scratch summaries
//   (SlidingWindow::query) and publishes those snapshots for the exporter.
// Allocation: constructors (and copies) allocate everything up front; add/add_hash/advance/query/
//   merge/top/clear never allocate.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dnsmon/common/hash.hpp"

namespace dnsmon::detail {

// ---------------------------------------------------------------------------------------------
// Keys: fixed-size, trivially copyable values stored inline in the sketch (no allocation).

// Up to N bytes of text, e.g. a DNS name in presentation form (NameKey, 255 characters). The
// length comes first, so a short name is compared and copied within the first cache line.
template <std::size_t N>
struct InlineString {
  static_assert(N > 0 && N <= 255, "the length is kept in one byte");
  std::uint8_t size = 0;
  std::array<char, N> chars{};

  // Returns false, leaving the key empty, when s does not fit: the caller counts and skips it
  // (a silently truncated name could merge distinct names into one top-N entry).
  [[nodiscard]] bool assign(std::string_view s) noexcept {
    if (s.size() > N) {
      size = 0;
      return false;
    }
    std::copy(s.begin(), s.end(), chars.begin());
    size = static_cast<std::uint8_t>(s.size());
    return true;
  }

  [[nodiscard]] std::string_view view() const noexcept { return {chars.data(), size}; }

  friend bool operator==(const InlineString& a, const InlineString& b) noexcept {
    return a.size == b.size && std::memcmp(a.chars.data(), b.chars.data(), a.size) == 0;
  }
};

template <std::size_t N>
std::uint64_t key_hash(const InlineString<N>& k, std::uint64_t seed) noexcept {
  return hash_bytes(k.chars.data(), k.size, seed);
}

// Exactly N bytes, e.g. a client address.
template <std::size_t N>
struct FixedBytes {
  std::array<std::uint8_t, N> bytes{};

  friend bool operator==(const FixedBytes&, const FixedBytes&) noexcept = default;
};

template <std::size_t N>
std::uint64_t key_hash(const FixedBytes<N>& k, std::uint64_t seed) noexcept {
  return hash_bytes(k.bytes.data(), N, seed);
}

using NameKey = InlineString<255>;  // 256 bytes
// 16 address bytes (IPv4 in the first 4, after any prefix masking or pseudonymisation) + family.
using AddrKey = FixedBytes<17>;

// How a sketch stores a key: assign_key(dst, src) leaves dst == src. The default copies the
// whole key; an overload found by ordinary or argument-dependent lookup may copy less.
template <class K>
void assign_key(K& dst, const K& src) noexcept {
  dst = src;
}

// Only the used characters: a NameKey is 256 bytes, a typical name a tenth of that. The bytes
// past size keep whatever they held (operator== never reads them). size and the characters are
// the first 1 + size bytes of the key, copied in whole 32-byte blocks (vector moves, no call to
// memcpy) when the key is a whole number of blocks.
template <std::size_t N>
void assign_key(InlineString<N>& dst, const InlineString<N>& src) noexcept {
  constexpr std::size_t kBlock = 32;
  if constexpr (sizeof(InlineString<N>) % kBlock == 0 && offsetof(InlineString<N>, chars) == 1) {
    auto* to = reinterpret_cast<unsigned char*>(&dst);
    const auto* from = reinterpret_cast<const unsigned char*>(&src);
    const std::size_t used = std::size_t{1} + src.size;
    for (std::size_t i = 0; i < used; i += kBlock) {
      std::memcpy(to + i, from + i, kBlock);
    }
  } else {
    dst.size = src.size;
    std::memcpy(dst.chars.data(), src.chars.data(), src.size);
  }
}

template <class K>
concept SketchKey = std::is_trivially_copyable_v<K> && std::default_initializable<K> &&
    std::equality_comparable<K> && requires(const K& k, std::uint64_t seed) {
  { key_hash(k, seed) }
  noexcept->std::same_as<std::uint64_t>;
};

// ---------------------------------------------------------------------------------------------
// A constructor tag: the summary gets its memory but writes none of it, so its content is
// unspecified until clear(); until then only clear(), memory_bytes(), moves and destruction are
// allowed. SlidingWindow builds its sub-windows so: most of a long window's sub-windows are not
// used for a long time after start-up (in a 20-second replay, 13 of the 18 of the default
// windows), and their pages then stay untouched and out of the resident set.
struct Uncleared {
  explicit Uncleared() = default;
};

inline constexpr Uncleared kUncleared{};

// ---------------------------------------------------------------------------------------------
// Storage for n trivially copyable values that are always written before they are read (the keys
// of the Space-Saving counters). Unlike a std::vector it writes nothing at construction, so the
// pages of a summary's keys (64 KiB for 256 names) stay untouched, and out of the resident set,
// until keys arrive: a daemon with three windows allocates about a hundred such summaries per
// worker, and zeroing them was a third of its start-up time.
template <class T>
class RawArray {
  static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);

 public:
  explicit RawArray(std::size_t n)
      : data_(static_cast<T*>(::operator new(n * sizeof(T)))), size_(n) {}

  RawArray(const RawArray& other) : RawArray(other.size_) {
    std::memcpy(static_cast<void*>(data_), other.data_, size_ * sizeof(T));
  }

  RawArray(RawArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

  RawArray& operator=(const RawArray& other) {
    if (this != &other) {
      RawArray copy(other);
      swap(copy);
    }
    return *this;
  }

  RawArray& operator=(RawArray&& other) noexcept {
    swap(other);
    return *this;
  }

  ~RawArray() { ::operator delete(data_); }

  T& operator[](std::size_t i) noexcept { return data_[i]; }

  const T& operator[](std::size_t i) const noexcept { return data_[i]; }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  T* begin() noexcept { return data_; }

  T* end() noexcept { return data_ + size_; }

  [[nodiscard]] const T* begin() const noexcept { return data_; }

  [[nodiscard]] const T* end() const noexcept { return data_ + size_; }

 private:
  void swap(RawArray& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// One Space-Saving counter, as reported by SpaceSaving::top().
template <SketchKey Key>
struct HeavyHitter {
  Key key{};
  std::uint64_t count = 0;
  std::uint64_t error = 0;  // count - error is a lower bound of the true count

  [[nodiscard]] std::uint64_t lower_bound() const noexcept { return count - error; }
};

struct CountBounds {
  std::uint64_t count = 0;
  std::uint64_t error = 0;
};

// Space-Saving (Metwally, Agrawal, El Abbadi 2005) with m counters.
//
// Guarantees, with N = total() the summed weight of everything added (including merged
// summaries) and m = capacity():
//   - for a reported key: count - error <= true <= count, and error <= min_count() <= N / m;
//   - a key that is not tracked (find() gives nullopt) has true <= min_count() <= N / m, so
//     every key with true > N / m is tracked;
//   - summed counts <= N (equal to N until the first merge).
// merge() adds two summaries of equal capacity (mergeable summaries, Agarwal et al. 2012): a key
// missing from one side is charged that side's min_count() as count and as error, and the m
// largest sums are kept. The same bounds then hold against the union with N = N1 + N2, so
// per-worker and per-sub-window summaries can be combined in any order.
//
// Layout: the paper's Stream-Summary, in arrays. order_ lists the m counters by count ascending;
// counters of equal count form a bucket, a run [begin, end) of order_, so the minimum is
// order_[0] and the counter to replace is the last of the lowest bucket. Adding w to a counter
// swaps it to the end of its bucket, then past each following bucket whose count it exceeds (one
// swap per bucket), and it joins the bucket of its new count or opens one: O(1) for w = 1,
// whether the key is tracked or takes over the minimum, O(1 + buckets passed) for a larger w.
// Unused counters have count 0 and form the lowest bucket, so filling the table is replacing the
// minimum too. Keys are stored inline, written with assign_key() (a name's used bytes only). A
// hash index of 2 to 4 chains per counter, linked through the counters, finds a key's counter in
// O(1) expected, and unlinks a replaced key as cheaply.
template <SketchKey Key>
class SpaceSaving {
 public:
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 24;

  // Throws std::invalid_argument unless 1 <= capacity <= kMaxCapacity. For a top-k table use a
  // capacity of 8-16 x k or more: the error bound is total() / capacity.
  // The constructor it delegates to initialises every member (clang-tidy 14 does not follow the
  // delegation).
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init): see above
  explicit SpaceSaving(std::size_t capacity, std::uint64_t seed = kDefaultSketchSeed)
      : SpaceSaving(kUncleared, capacity, seed) {
    clear();
  }

  // The same, without writing anything: call clear() before any other use (see Uncleared).
  SpaceSaving(Uncleared /*tag*/, std::size_t capacity, std::uint64_t seed = kDefaultSketchSeed)
      : keys_(checked_capacity(capacity)),
        counters_(checked_capacity(capacity)),
        order_(checked_capacity(capacity)),
        buckets_(checked_capacity(capacity)),
        scratch_(checked_capacity(capacity)),
        chains_(chain_count(checked_capacity(capacity))),
        seed_(seed),
        chain_mask_(static_cast<std::uint32_t>(chains_.size() - 1)),
        capacity_(checked_capacity(capacity)) {}

  // Counts weight occurrences of key. Weight 0 is ignored.
  void add(const Key& key, std::uint64_t weight = 1) noexcept {
    add_hashed(key, key_hash(key, seed_), weight);
  }

  // add() for a caller that already has key_hash(key, seed) for this summary's seed (the worker
  // hashes each name once and feeds several summaries with it).
  void add_hashed(const Key& key, std::uint64_t hash, std::uint64_t weight = 1) noexcept {
    if (weight == 0) {
      return;
    }
    total_ += weight;
    const auto tag = static_cast<std::uint32_t>(hash);
    const std::uint32_t found = find_slot(key, tag);
    if (found != kNoSlot) {
      raise(found, weight);
      return;
    }
    // The key takes over the counter of the minimum, which becomes its error (0 for an unused
    // counter).
    const std::uint32_t slot = min_slot();
    take_over(slot, key, tag);
    Counter& c = counters_[slot];
    c.error = c.count;
    raise(slot, weight);
  }

  // Writes the min(out.size(), size()) largest counters into out, by count descending (ties: the
  // smaller error first), and returns how many were written. O((n + t) * log(n)) for n written
  // and t counters tied with the n-th largest count.
  [[nodiscard]] std::size_t top(std::span<HeavyHitter<Key>> out) const noexcept {
    const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(out.size(), size_));
    if (n == 0) {
      return 0;
    }
    // order_ ascends by count: the n largest are its last n, but a counter tied with the n-th
    // largest count may have a smaller error. out[0, n) is a heap whose front is the worst.
    const auto better = [](const HeavyHitter<Key>& a, const HeavyHitter<Key>& b) {
      return a.count != b.count ? a.count > b.count : a.error < b.error;
    };
    const auto first = out.begin();
    const auto last = out.begin() + static_cast<std::ptrdiff_t>(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t slot = order_[capacity_ - 1 - i];
      set_hitter(out[i], slot, counters_[slot].count, counters_[slot].error);
    }
    std::make_heap(first, last, better);
    const std::uint64_t cut = out.front().count;
    for (std::uint32_t p = capacity_ - n; p-- > 0;) {
      const std::uint32_t slot = order_[p];
      const Counter& c = counters_[slot];
      if (c.count != cut) {
        break;
      }
      if (c.error < out.front().error) {
        std::pop_heap(first, last, better);
        set_hitter(*(last - 1), slot, cut, c.error);
        std::push_heap(first, last, better);
      }
    }
    std::sort_heap(first, last, better);
    return n;
  }

 private:
  // A key's bytes beyond what assign_key() wrote were never written: copy only those it wrote.
  void set_hitter(HeavyHitter<Key>& out, std::uint32_t slot, std::uint64_t count,
                  std::uint64_t error) const noexcept {
    assign_key(out.key, keys_[slot]);
    out.count = count;
    out.error = error;
  }

 public:
  // The bounds for one key, or nullopt when it is not tracked (its true count is then at most
  // min_count()).
  [[nodiscard]] std::optional<CountBounds> find(const Key& key) const noexcept {
    const std::uint32_t slot = find_slot(key, tag_of(key));
    if (slot == kNoSlot) {
      return std::nullopt;
    }
    return CountBounds{counters_[slot].count, counters_[slot].error};
  }

  // Adds other into *this (see the class comment for the bounds). Returns false, changing
  // nothing, if the capacities differ or other is *this. O(m log m): O(m) expected lookups, one
  // sort of the counters in use if a count changed (none when *this is empty), and O(m) to
  // rebuild the buckets.
  [[nodiscard]] bool merge(const SpaceSaving& other) noexcept {
    if (&other == this || other.capacity_ != capacity_) {
      return false;
    }
    const std::uint64_t min_this = min_count();
    const std::uint64_t min_other = other.min_count();
    // Summaries of one seed share their tags: no key is hashed again.
    const bool same_seed = other.seed_ == seed_;
    const std::uint32_t used_from = capacity_ - size_;  // order_[used_from, m) is in use
    const std::uint32_t other_used_from = other.capacity_ - other.size_;
    // Keys on both sides add their counts; keys only here are charged other's minimum.
    bool changed = min_other != 0 && size_ != 0;
    if (min_other == 0) {
      // other is not full, so keys missing from it are charged nothing: only other's keys are
      // looked up. Sub-windows are mostly this sparse.
      for (std::uint32_t p = other_used_from; p < capacity_; ++p) {
        const std::uint32_t oslot = other.order_[p];
        const Key& key = other.keys_[oslot];
        const Counter& oc = other.counters_[oslot];
        const std::uint32_t slot = find_slot(key, same_seed ? oc.tag : tag_of(key));
        if (slot != kNoSlot) {
          counters_[slot].count += oc.count;
          counters_[slot].error += oc.error;
          changed = true;
        }
      }
    } else {
      for (std::uint32_t p = used_from; p < capacity_; ++p) {
        Counter& c = counters_[order_[p]];
        const Key& key = keys_[order_[p]];
        const std::uint32_t o = other.find_slot(key, same_seed ? c.tag : other.tag_of(key));
        c.count += o != kNoSlot ? other.counters_[o].count : min_other;
        c.error += o != kNoSlot ? other.counters_[o].error : min_other;
      }
    }
    const auto by_count = [this](std::uint32_t a, std::uint32_t b) {
      return counters_[a].count < counters_[b].count;
    };
    if (changed) {
      std::sort(order_.begin() + used_from, order_.end(), by_count);  // unused ones stay below
    }
    // Keys only in other are charged our minimum (min_this, taken before the merge) and compete
    // for the m largest counts: from other's largest down, each takes over our smallest counter
    // while it is larger (unused counters first). A key of ours evicted here already holds
    // count_this + count_other >= min_this + count_other, so when other's copy of it comes up
    // it is no larger than the counter evicted before it, and the loop has stopped.
    std::uint32_t taken = 0;
    for (std::uint32_t p = capacity_; p-- > other_used_from && taken < capacity_;) {
      const Counter& oc = other.counters_[other.order_[p]];
      const Key& key = other.keys_[other.order_[p]];
      const std::uint32_t tag = same_seed ? oc.tag : tag_of(key);
      if (find_slot(key, tag) != kNoSlot) {
        continue;
      }
      const std::uint64_t count = oc.count + min_this;
      const std::uint32_t slot = order_[taken];
      Counter& c = counters_[slot];
      if (count <= c.count) {
        break;
      }
      take_over(slot, key, tag);
      c.count = count;
      c.error = oc.error + min_this;
      ++taken;
    }
    // order_[0, taken) now descends by count and order_[taken, m) ascends: merge the two runs.
    std::reverse(order_.begin(), order_.begin() + taken);
    std::merge(order_.begin(), order_.begin() + taken, order_.begin() + taken, order_.end(),
               scratch_.begin(), by_count);
    std::copy(scratch_.begin(), scratch_.end(), order_.begin());
    rebuild_buckets();
    total_ += other.total_;
    return true;
  }

  // O(m). Afterwards the summary behaves exactly as a new one.
  void clear() noexcept {
    std::fill(chains_.begin(), chains_.end(), kNoSlot);
    for (std::uint32_t i = 0; i < capacity_; ++i) {
      counters_[i] = Counter{};
      counters_[i].pos = i;
      order_[i] = i;
    }
    buckets_[0] = Bucket{0, capacity_};
    lowest_ = 0;
    next_bucket_ = 1;
    free_bucket_ = kNoBucket;
    size_ = 0;
    total_ = 0;
  }

  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // 0 until all counters are in use; then the smallest count, an upper bound of the true count
  // of every key that is not tracked. O(1).
  [[nodiscard]] std::uint64_t min_count() const noexcept { return counters_[order_[0]].count; }

  // What memory_bytes() will be for a given capacity, before allocating anything.
  [[nodiscard]] static std::size_t planned_bytes(std::size_t capacity) noexcept {
    return sizeof(SpaceSaving) +
           capacity * (sizeof(Key) + sizeof(Counter) + 2 * sizeof(std::uint32_t) + sizeof(Bucket)) +
           chain_count(capacity) * sizeof(std::uint32_t);
  }

  // Fixed at construction.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return sizeof(*this) + keys_.size() * sizeof(Key) + counters_.size() * sizeof(Counter) +
           (order_.size() + scratch_.size() + chains_.size()) * sizeof(std::uint32_t) +
           buckets_.size() * sizeof(Bucket);
  }

 private:
  static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::uint32_t kNoBucket = std::numeric_limits<std::uint32_t>::max();

  // Everything about a counter but its key: 32 bytes, two to a cache line.
  struct Counter {
    std::uint64_t count = 0;  // 0: not in use
    std::uint64_t error = 0;
    // The low 32 bits of the key's hash: its low bits pick the chain, and comparing all of them
    // skips nearly every false key compare.
    std::uint32_t tag = 0;
    std::uint32_t next = 0;  // the next counter in the same chain, or kNoSlot
    std::uint32_t pos = 0;   // order_[pos] is this counter
    std::uint32_t bucket = 0;
  };

  // The counters of one count: order_[begin, end). Free buckets are chained through begin.
  struct Bucket {
    std::uint32_t begin = 0;
    std::uint32_t end = 0;
  };

  static std::uint32_t checked_capacity(std::size_t capacity) {
    if (capacity == 0 || capacity > kMaxCapacity) {
      throw std::invalid_argument("SpaceSaving capacity must be in [1, " +
                                  std::to_string(kMaxCapacity) + "]");
    }
    return static_cast<std::uint32_t>(capacity);
  }

  // At least 2 chains per counter: a key that is not tracked is mostly found out at once.
  static std::size_t chain_count(std::size_t capacity) noexcept {
    return std::bit_ceil(std::size_t{2} * capacity);
  }

  [[nodiscard]] std::uint32_t tag_of(const Key& key) const noexcept {
    return static_cast<std::uint32_t>(key_hash(key, seed_));
  }

  [[nodiscard]] std::uint32_t find_slot(const Key& key, std::uint32_t tag) const noexcept {
    std::uint32_t slot = chains_[tag & chain_mask_];
    while (slot != kNoSlot && (counters_[slot].tag != tag || keys_[slot] != key)) {
      slot = counters_[slot].next;
    }
    return slot;
  }

  // Puts slot, whose key has this tag, first in its chain.
  void link(std::uint32_t slot, std::uint32_t tag) noexcept {
    std::uint32_t& head = chains_[tag & chain_mask_];
    counters_[slot].tag = tag;
    counters_[slot].next = head;
    head = slot;
  }

  // Takes slot out of its chain (chains hold one key each on average, so no back links).
  // Gives slot (unused, count 0, or tracking another key) to key; its count is left to the caller.
  void take_over(std::uint32_t slot, const Key& key, std::uint32_t tag) noexcept {
    if (counters_[slot].count == 0) {
      ++size_;
    } else {
      unlink(slot);
    }
    link(slot, tag);
    assign_key(keys_[slot], key);
  }

  void unlink(std::uint32_t slot) noexcept {
    std::uint32_t* link = &chains_[counters_[slot].tag & chain_mask_];
    while (*link != slot) {
      link = &counters_[*link].next;
    }
    *link = counters_[slot].next;
  }

  // The counter to replace: the last of the lowest bucket (an unused one while there are any).
  [[nodiscard]] std::uint32_t min_slot() const noexcept {
    return order_[buckets_[lowest_].end - 1];
  }

  // Adds weight > 0 to the counter of slot, keeping order_ sorted and the buckets exact.
  void raise(std::uint32_t slot, std::uint64_t weight) noexcept {
    // Only a counter alone at the bottom takes the lowest bucket away with it.
    const bool alone_lowest = counters_[slot].pos == 0 && buckets_[lowest_].end == 1;
    move_up(slot, weight);
    if (alone_lowest) {
      lowest_ = counters_[order_[0]].bucket;
    }
  }

  void move_up(std::uint32_t slot, std::uint64_t weight) noexcept {
    Counter& c = counters_[slot];
    // To the end of its bucket (the counter there takes its place), then out of the bucket.
    Bucket& own = buckets_[c.bucket];
    std::uint32_t at = own.end - 1;
    if (c.pos != at) {
      const std::uint32_t displaced = order_[at];
      order_[c.pos] = displaced;
      counters_[displaced].pos = c.pos;
    }
    if (own.begin == at) {
      own.begin = free_bucket_;
      free_bucket_ = c.bucket;
    } else {
      own.end = at;
    }
    const std::uint64_t count = c.count + weight;
    c.count = count;
    // Past each higher bucket of a smaller count: its last counter moves down to `at`, the
    // bucket shifts down by one position, and `at` becomes its old last position.
    for (std::uint32_t next = at + 1; next < capacity_; next = at + 1) {
      const Counter& n = counters_[order_[next]];
      if (n.count > count) {
        break;
      }
      Bucket& b = buckets_[n.bucket];
      if (n.count == count) {
        b.begin = at;
        c.bucket = n.bucket;
        order_[at] = slot;
        c.pos = at;
        return;
      }
      const std::uint32_t last = b.end - 1;
      const std::uint32_t moved = order_[last];
      order_[at] = moved;
      counters_[moved].pos = at;
      b.begin = at;
      b.end = last;
      at = last;
    }
    std::uint32_t fresh = free_bucket_;
    if (fresh != kNoBucket) {
      free_bucket_ = buckets_[fresh].begin;
    } else {
      fresh = next_bucket_++;  // at most m buckets: the other m - 1 counters use m - 1 at most
    }
    buckets_[fresh] = Bucket{at, at + 1};
    c.bucket = fresh;
    order_[at] = slot;
    c.pos = at;
  }

  // Positions and buckets from a sorted order_ (after a merge).
  void rebuild_buckets() noexcept {
    lowest_ = 0;
    next_bucket_ = 0;
    free_bucket_ = kNoBucket;
    for (std::uint32_t begin = 0; begin < capacity_;) {
      const std::uint32_t b = next_bucket_++;
      const std::uint64_t count = counters_[order_[begin]].count;
      std::uint32_t end = begin;
      for (; end < capacity_ && counters_[order_[end]].count == count; ++end) {
        counters_[order_[end]].pos = end;
        counters_[order_[end]].bucket = b;
      }
      buckets_[b] = Bucket{begin, end};
      begin = end;
    }
  }

  // keys_[slot] and counters_[slot] describe one counter ("slot"), wherever it is in order_.
  RawArray<Key> keys_;  // written by assign_key() before any read
  RawArray<Counter> counters_;
  RawArray<std::uint32_t> order_;    // the slots by count ascending
  RawArray<Bucket> buckets_;         // at most m in use
  RawArray<std::uint32_t> scratch_;  // merge() only
  RawArray<std::uint32_t> chains_;   // the first slot of each hash chain, or kNoSlot
  std::uint64_t seed_;
  std::uint64_t total_ = 0;
  std::uint32_t chain_mask_ = 0;
  std::uint32_t capacity_;
  std::uint32_t size_ = 0;
  std::uint32_t lowest_ = 0;       // the bucket of order_[0]
  std::uint32_t next_bucket_ = 0;  // buckets_[next_bucket_, m) were never used since clear()
  std::uint32_t free_bucket_ = kNoBucket;
};

// ---------------------------------------------------------------------------------------------
// HyperLogLog (Flajolet, Fusy, Gandouet, Meunier 2007) over 64-bit hashes, one byte per register.
//
// Relative standard error 1.04 / sqrt(2^p): p = 14 (16,384 registers, 16 KiB) gives 0.81 %.
// estimate() is Ertl's improved estimator (2017): the raw HLL harmonic mean with the empty
// registers folded in by the same maximum-likelihood reasoning as linear counting, so small sets
// come out near exact, but with no switch-over point. The textbook rule (linear counting below
// 2.5 * 2^p, raw above) overestimates by about 2.4 % on average just past the switch (n ~ 41k at
// p = 14); this one stays unbiased across the range. 64-bit hashes need no large-range fix.
// merge() (register-wise max) is lossless: the union of two sketches is the sketch of the union.
class HyperLogLog {
 public:
  static constexpr unsigned kMinPrecision = 4;
  static constexpr unsigned kMaxPrecision = 18;
  static constexpr unsigned kDefaultPrecision = 14;

  // Throws std::invalid_argument unless kMinPrecision <= precision <= kMaxPrecision.
  explicit HyperLogLog(unsigned precision = kDefaultPrecision);

  // The same, without writing anything: call clear() before any other use (see Uncleared).
  HyperLogLog(Uncleared /*tag*/, unsigned precision);

  // hash must be uniformly distributed over 64 bits, e.g. from hash_bytes(); sketches that will
  // be merged must use the same hash function and seed.
  void add_hash(std::uint64_t hash) noexcept {
    const auto index = static_cast<std::size_t>(hash >> (64 - precision_));
    // The guard bit caps the rank at 65 - p when the remaining bits are all zero.
    const std::uint64_t rest = (hash << precision_) | (std::uint64_t{1} << (precision_ - 1));
    const auto rank = static_cast<std::uint8_t>(std::countl_zero(rest) + 1);
    std::uint8_t& reg = registers_[index];
    reg = std::max(reg, rank);
  }

  // Zeroes the register that hash would set (to clear a sketch that holds only a few known
  // hashes without touching all 2^p registers).
  void clear_register(std::uint64_t hash) noexcept {
    registers_[static_cast<std::size_t>(hash >> (64 - precision_))] = 0;
  }

  [[nodiscard]] double estimate() const noexcept;

  // Returns false, changing nothing, if the precisions differ.
  [[nodiscard]] bool merge(const HyperLogLog& other) noexcept;

  void clear() noexcept;

  [[nodiscard]] unsigned precision() const noexcept { return precision_; }

  // The registers as they are (2^p bytes), to save a sketch; assign_registers() restores them,
  // and returns false, changing nothing, when the size differs or a register exceeds 65 - p.
  [[nodiscard]] std::span<const std::uint8_t> registers() const noexcept {
    return {registers_.begin(), registers_.size()};
  }

  [[nodiscard]] bool assign_registers(std::span<const std::uint8_t> r) noexcept {
    if (r.size() != registers_.size()) {
      return false;
    }
    for (const std::uint8_t v : r) {
      if (v > 65 - precision_) {
        return false;
      }
    }
    std::copy(r.begin(), r.end(), registers_.begin());
    return true;
  }

  [[nodiscard]] static double standard_error(unsigned precision) noexcept;

  // Fixed at construction.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return sizeof(*this) + registers_.size();
  }

  [[nodiscard]] static std::size_t planned_bytes(unsigned precision) noexcept {
    return sizeof(HyperLogLog) + (std::size_t{1} << precision);
  }

 private:
  RawArray<std::uint8_t> registers_;
  unsigned precision_;
};

// ---------------------------------------------------------------------------------------------
// A plain counter with the summary interface, for sliding-window totals.
class CountSummary {
 public:
  CountSummary() = default;

  explicit CountSummary(Uncleared /*tag*/) {}

  void add(std::uint64_t n = 1) noexcept { value_ += n; }

  [[nodiscard]] std::uint64_t value() const noexcept { return value_; }

  [[nodiscard]] bool merge(const CountSummary& other) noexcept {
    value_ += other.value_;
    return true;
  }

  void clear() noexcept { value_ = 0; }

  [[nodiscard]] std::size_t memory_bytes() const noexcept { return sizeof(*this); }

 private:
  std::uint64_t value_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Sliding window in packet time: a ring of K sub-windows of S nanoseconds, W = K * S.
//
// Sub-window boundaries are multiples of S since the epoch, so windows of all workers line up.
// advance(now_ns) moves the current sub-window forward, clearing every sub-window it passes
// (a jump of W or more clears them all). Time going backwards by less than W is tolerated: the
// data goes into the current sub-window and is counted in late_adds(). A backward jump of W or
// more (a clock step, a replay starting over) clears the window and restarts it at now_ns,
// counted in restarts(). query(now_ns) merges the sub-windows that are not expired at now_ns,
// the current one and the K-1 before it, so it covers between W - S and W of packet time and
// falls to zero once W has passed without traffic; no timer has to touch the writer's state.
//
// Summary: SpaceSaving, HyperLogLog or CountSummary (anything with clear(), bool merge(const
// Summary&) and memory_bytes()).
template <class S>
concept WindowSummary = requires(S& s, const S& cs) {
  s.clear();
  { s.merge(cs) } -> std::same_as<bool>;
  { cs.memory_bytes() } -> std::same_as<std::size_t>;
};

template <WindowSummary Summary>
class SlidingWindow {
 public:
  // Builds K summaries as Summary(kUncleared, summary_args...) (or Summary(summary_args...) for
  // a type without that constructor): a sub-window is cleared when it is first used, so one that
  // is not used stays untouched. Throws std::invalid_argument unless window_ns > 0,
  // 1 <= sub_windows <= 1024 and sub_windows divides window_ns.
  template <class... Args>
  SlidingWindow(std::int64_t window_ns, std::size_t sub_windows, const Args&... summary_args)
      : sub_window_ns_(checked_sub_window_ns(window_ns, sub_windows)),
        sub_windows_(static_cast<std::int64_t>(sub_windows)) {
    subs_.reserve(sub_windows);
    for (std::size_t i = 0; i < sub_windows; ++i) {
      if constexpr (std::is_constructible_v<Summary, Uncleared, const Args&...>) {
        subs_.emplace_back(kUncleared, summary_args...);
      } else {
        subs_.emplace_back(summary_args...);
      }
    }
    epochs_.assign(sub_windows, kEmpty);
  }

  // The summary that collects data at now_ns, after rotating to it.
  Summary& advance(std::int64_t now_ns) noexcept {
    const std::int64_t e = floor_div(now_ns, sub_window_ns_);
    if (current_ == kEmpty) {
      current_ = e;
    } else if (e > current_) {
      const std::int64_t steps = distance(e, current_);
      if (steps >= sub_windows_) {
        clear_all();
      } else {
        for (std::int64_t k = 1; k <= steps; ++k) {
          clear_slot(slot_of(current_ + k));
        }
      }
      current_ = e;
    } else if (e < current_) {
      if (distance(current_, e) >= sub_windows_) {
        clear_all();
        current_ = e;
        ++restarts_;
      } else {
        ++late_adds_;
      }
    }
    const std::size_t slot = slot_of(current_);
    if (epochs_[slot] == kEmpty) {
      subs_[slot].clear();  // a slot is cleared as it is taken (see clear_slot())
      epochs_[slot] = current_;
    }
    return subs_[slot];
  }

  // advance(now_ns).add(args...).
  template <class... Args>
  void add(std::int64_t now_ns, Args&&... args) noexcept {
    advance(now_ns).add(std::forward<Args>(args)...);
  }

  // Clears out, then merges into it every sub-window not expired at now_ns (those from
  // the K sub-windows ending with the one holding now_ns, and any later one). out must be
  // compatible (same SpaceSaving capacity, same HLL precision); returns false if a merge failed.
  [[nodiscard]] bool query(std::int64_t now_ns, Summary& out) const noexcept {
    out.clear();
    const std::int64_t e = floor_div(now_ns, sub_window_ns_);
    bool ok = true;
    for (std::size_t i = 0; i < subs_.size(); ++i) {
      const std::int64_t epoch = epochs_[i];
      if (epoch != kEmpty && (epoch >= e || distance(e, epoch) < sub_windows_)) {
        ok = out.merge(subs_[i]) && ok;
      }
    }
    return ok;
  }

  void clear() noexcept {
    clear_all();
    current_ = kEmpty;
  }

  [[nodiscard]] std::int64_t window_ns() const noexcept { return sub_window_ns_ * sub_windows_; }

  [[nodiscard]] std::int64_t sub_window_ns() const noexcept { return sub_window_ns_; }

  [[nodiscard]] std::size_t sub_windows() const noexcept { return subs_.size(); }

  // Adds whose time was behind the current sub-window (by less than the window).
  [[nodiscard]] std::uint64_t late_adds() const noexcept { return late_adds_; }

  // Times a backward jump of a whole window or more restarted the window.
  [[nodiscard]] std::uint64_t restarts() const noexcept { return restarts_; }

  // What memory_bytes() will be, given the planned size of one summary.
  [[nodiscard]] static std::size_t planned_bytes(std::size_t sub_windows,
                                                 std::size_t summary_bytes) noexcept {
    return sizeof(SlidingWindow) + sub_windows * (sizeof(std::int64_t) + summary_bytes);
  }

  // Fixed at construction.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    std::size_t bytes = sizeof(*this) + epochs_.capacity() * sizeof(std::int64_t) +
                        (subs_.capacity() - subs_.size()) * sizeof(Summary);
    for (const Summary& s : subs_) {
      bytes += s.memory_bytes();  // includes sizeof(Summary)
    }
    return bytes;
  }

 private:
  static constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::min();
  static constexpr std::size_t kMaxSubWindows = 1024;

  static std::int64_t checked_sub_window_ns(std::int64_t window_ns, std::size_t sub_windows) {
    if (window_ns <= 0 || sub_windows == 0 || sub_windows > kMaxSubWindows ||
        window_ns % static_cast<std::int64_t>(sub_windows) != 0) {
      throw std::invalid_argument(
          "SlidingWindow needs window_ns > 0 split into 1..1024 equal sub-windows");
    }
    return window_ns / static_cast<std::int64_t>(sub_windows);
  }

  static std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
    const std::int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
  }

  // later - earlier for later >= earlier, saturated (timestamps come from capture files).
  static std::int64_t distance(std::int64_t later, std::int64_t earlier) noexcept {
    std::int64_t d = 0;
    if (__builtin_sub_overflow(later, earlier, &d)) {
      return std::numeric_limits<std::int64_t>::max();
    }
    return d;
  }

  [[nodiscard]] std::size_t slot_of(std::int64_t epoch) const noexcept {
    const std::int64_t r = epoch % sub_windows_;
    return static_cast<std::size_t>(r < 0 ? r + sub_windows_ : r);
  }

  // Marks the slot free. Its summary is cleared when advance() takes the slot again, so a slot
  // that is never taken again is never written again, and one never taken never written at all.
  void clear_slot(std::size_t slot) noexcept { epochs_[slot] = kEmpty; }

  void clear_all() noexcept {
    for (std::size_t i = 0; i < subs_.size(); ++i) {
      clear_slot(i);
    }
  }

  std::vector<Summary> subs_;
  std::vector<std::int64_t> epochs_;  // epoch held by each slot; kEmpty: free, content unspecified
  std::int64_t sub_window_ns_;
  std::int64_t sub_windows_;
  std::int64_t current_ = kEmpty;
  std::uint64_t late_adds_ = 0;
  std::uint64_t restarts_ = 0;
};

}  // namespace dnsmon::detail
