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

namespace dnsmon::detail {

// ---------------------------------------------------------------------------------------------
// Hashing

inline constexpr std::uint64_t kDefaultSketchSeed = 0x2d358dccaa6c78a5ULL;

namespace hash_internal {

// Odd constants with about half their bits set (splitmix64 / Murmur3 finalizer family).
inline constexpr std::uint64_t kK0 = 0x9e3779b97f4a7c15ULL;
inline constexpr std::uint64_t kK1 = 0xbf58476d1ce4e5b9ULL;
inline constexpr std::uint64_t kK2 = 0x94d049bb133111ebULL;
inline constexpr std::uint64_t kK3 = 0xff51afd7ed558ccdULL;
inline constexpr std::uint64_t kK4 = 0xc4ceb9fe1a85ec53ULL;

// 64 x 64 -> 128 bit multiply folded by xor: every output bit depends on every input bit of both
// factors, one mulq on x86-64.
inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using U128 = unsigned __int128;  // GCC/Clang; __extension__ silences -Wpedantic
  const U128 p = static_cast<U128>(a) * b;
  return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}

inline std::uint64_t load64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline std::uint64_t load32(const unsigned char* p) noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace hash_internal

namespace hash_internal {

struct Words {
  std::uint64_t lo, hi;
};

// How hash_with() reads its input: here, the bytes as they are. A loader that transforms bytes
// as it reads them (the matcher's lower-casing one) hashes the transformed string without a copy.
struct RawBytes {
  static Words load16(const unsigned char* p) noexcept { return {load64(p), load64(p + 8)}; }

  static std::uint64_t load8(const unsigned char* p) noexcept { return load64(p); }

  static std::uint64_t load4(const unsigned char* p) noexcept { return load32(p); }

  static std::uint64_t byte(unsigned char c) noexcept { return c; }
};

// wyhash-like construction: 16 bytes per 128-bit multiply, two independent lanes for long
// inputs, overlapping loads for the tail, length folded in last. Input words are xored with
// secrets derived from the seed before they are multiplied: with public constants there, an
// input word equal to one would zero the product whatever the seed, and so collide for every
// seed.
template <class Bytes>
std::uint64_t hash_with(const unsigned char* p, std::size_t len, std::uint64_t seed) noexcept {
  const std::uint64_t s1 = kK1 ^ seed;
  const std::uint64_t s2 = kK2 ^ std::rotl(seed, 32);
  std::uint64_t h = fold_mul(seed ^ kK0, kK1) ^ seed;
  std::size_t left = len;
  if (left > 32) {
    std::uint64_t h2 = h ^ kK4;
    while (left > 32) {
      const Words w0 = Bytes::load16(p);
      const Words w1 = Bytes::load16(p + 16);
      h = fold_mul(w0.lo ^ s1, w0.hi ^ h);
      h2 = fold_mul(w1.lo ^ s2, w1.hi ^ h2);
      p += 32;
      left -= 32;
    }
    h ^= h2;
  }
  if (left > 16) {
    const Words w = Bytes::load16(p);
    h = fold_mul(w.lo ^ s1, w.hi ^ h);
    p += 16;
    left -= 16;
  }
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (len >= 16) {  // the last 16 bytes of the input, overlapping what was already mixed
    const Words w = Bytes::load16(p + left - 16);
    a = w.lo;
    b = w.hi;
  } else if (left >= 8) {
    a = Bytes::load8(p);
    b = Bytes::load8(p + left - 8);
  } else if (left >= 4) {
    a = Bytes::load4(p);
    b = Bytes::load4(p + left - 4);
  } else if (left > 0) {
    a = (Bytes::byte(p[0]) << 16U) | (Bytes::byte(p[left / 2]) << 8U) | Bytes::byte(p[left - 1]);
  }
  h = fold_mul(a ^ s2, b ^ h ^ kK3);
  return fold_mul(h ^ kK4, len ^ kK0);
}

}  // namespace hash_internal

// Seeded 64-bit hash of a byte string (hash_internal::hash_with). Values depend on byte order,
// so they are stable within one host, not across architectures.
inline std::uint64_t hash_bytes(const void* data, std::size_t len,
                                std::uint64_t seed = kDefaultSketchSeed) noexcept {
  return hash_internal::hash_with<hash_internal::RawBytes>(static_cast<const unsigned char*>(data),
                                                           len, seed);
}

inline std::uint64_t hash_bytes(std::string_view s,
                                std::uint64_t seed = kDefaultSketchSeed) noexcept {
  return hash_bytes(s.data(), s.size(), seed);
}

// ---------------------------------------------------------------------------------------------
// Keys: fixed-size, trivially copyable values stored inline in the sketch (no allocation).

// Up to N bytes of text, e.g. a DNS name in presentation form (NameKey, 255 characters).
template <std::size_t N>
struct InlineString {
  static_assert(N > 0 && N <= 255, "the length is kept in one byte");
  std::array<char, N> chars{};
  std::uint8_t size = 0;

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

template <class K>
concept SketchKey = std::is_trivially_copyable_v<K> && std::default_initializable<K> &&
    std::equality_comparable<K> && requires(const K& k, std::uint64_t seed) {
  { key_hash(k, seed) }
  noexcept->std::same_as<std::uint64_t>;
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
// Layout: keys inline in a fixed array; a 4-ary min-heap of (count, slot) picks the counter to
// replace; an open-addressing index (linear probing, load <= 1/2, backward-shift deletion) finds
// a key's slot. add() is O(1) expected for the lookup plus O(log4 m) for the heap: a counter that
// grows moves toward the leaves, and a heavy key's counter already sits there.
template <SketchKey Key>
class SpaceSaving {
 public:
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 24;

  // Throws std::invalid_argument unless 1 <= capacity <= kMaxCapacity. For a top-k table use a
  // capacity of 8-16 x k or more: the error bound is total() / capacity.
  explicit SpaceSaving(std::size_t capacity, std::uint64_t seed = kDefaultSketchSeed)
      : seed_(seed), capacity_(checked_capacity(capacity)) {
    keys_.resize(capacity_);
    errors_.resize(capacity_);
    tags_.resize(capacity_);
    heap_pos_.resize(capacity_);
    heap_.resize(capacity_);
    index_.resize(std::max<std::size_t>(std::bit_ceil(std::size_t{2} * capacity_), 4));
    index_mask_ = static_cast<std::uint32_t>(index_.size() - 1);
  }

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
    std::uint32_t pos = tag & index_mask_;
    for (;; pos = (pos + 1) & index_mask_) {
      const IndexEntry e = index_[pos];
      if (e.slot_plus_one == 0) {
        break;
      }
      if (e.tag == tag && keys_[e.slot_plus_one - 1] == key) {
        const std::uint32_t at = heap_pos_[e.slot_plus_one - 1];
        heap_[at].count += weight;
        sift_down(at);
        return;
      }
    }
    if (size_ < capacity_) {
      insert_new(key, tag, pos, weight, 0);
      return;
    }
    replace_min(key, tag, heap_[0].count + weight, heap_[0].count);
  }

  // Writes the min(out.size(), size()) largest counters into out, by count descending (ties: the
  // smaller error first), and returns how many were written. O(size() * log(out.size())).
  [[nodiscard]] std::size_t top(std::span<HeavyHitter<Key>> out) const noexcept {
    const std::size_t n = std::min<std::size_t>(out.size(), size_);
    if (n == 0) {
      return 0;
    }
    // out[0, n) is a heap whose front is the worst of the best n seen so far.
    const auto better = [](const HeavyHitter<Key>& a, const HeavyHitter<Key>& b) {
      return a.count != b.count ? a.count > b.count : a.error < b.error;
    };
    const auto first = out.begin();
    const auto last = out.begin() + static_cast<std::ptrdiff_t>(n);
    for (std::uint32_t i = 0; i < size_; ++i) {
      const HeapNode node = heap_[i];
      const std::uint64_t error = errors_[node.slot];
      if (i < n) {
        out[i] = HeavyHitter<Key>{keys_[node.slot], node.count, error};
        if (i + 1 == n) {
          std::make_heap(first, last, better);
        }
        continue;
      }
      const HeavyHitter<Key>& worst = out.front();
      if (node.count > worst.count || (node.count == worst.count && error < worst.error)) {
        std::pop_heap(first, last, better);
        *(last - 1) = HeavyHitter<Key>{keys_[node.slot], node.count, error};
        std::push_heap(first, last, better);
      }
    }
    std::sort_heap(first, last, better);
    return n;
  }

  // The bounds for one key, or nullopt when it is not tracked (its true count is then at most
  // min_count()).
  [[nodiscard]] std::optional<CountBounds> find(const Key& key) const noexcept {
    const std::uint32_t slot = find_slot(key, tag_of(key));
    if (slot == kNoSlot) {
      return std::nullopt;
    }
    return CountBounds{heap_[heap_pos_[slot]].count, errors_[slot]};
  }

  // Adds other into *this (see the class comment for the bounds). Returns false, changing
  // nothing, if the capacities differ or other is *this. O(m) expected.
  [[nodiscard]] bool merge(const SpaceSaving& other) noexcept {
    if (&other == this || other.capacity_ != capacity_) {
      return false;
    }
    const std::uint64_t min_this = min_count();
    const std::uint64_t min_other = other.min_count();
    if (min_other == 0) {
      // other is not full, so keys missing from it are charged nothing: the same result in
      // O(other.size()), not O(capacity()). Sub-windows are mostly this sparse.
      for (std::uint32_t j = 0; j < other.size_; ++j) {
        const std::uint32_t oslot = other.heap_[j].slot;
        const Key& key = other.keys_[oslot];
        const std::uint32_t slot = find_slot(key, tag_of(key));
        if (slot != kNoSlot) {
          const std::uint32_t at = heap_pos_[slot];
          heap_[at].count += other.heap_[j].count;
          errors_[slot] += other.errors_[oslot];
          sift_down(at);
        }
      }
      merge_missing(other, min_this);
      total_ += other.total_;
      return true;
    }
    // Keys on both sides add their counts; keys only here are charged other's minimum.
    for (std::uint32_t i = 0; i < size_; ++i) {
      HeapNode& node = heap_[i];
      const std::uint32_t o = other.find_slot(keys_[node.slot], other.tag_of(keys_[node.slot]));
      if (o != kNoSlot) {
        node.count += other.heap_[other.heap_pos_[o]].count;
        errors_[node.slot] += other.errors_[o];
      } else {
        node.count += min_other;
        errors_[node.slot] += min_other;
      }
    }
    for (std::uint32_t i = size_ / kArity + 1; i-- > 0;) {
      sift_down(i);
    }
    merge_missing(other, min_this);
    total_ += other.total_;
    return true;
  }

  void clear() noexcept {
    std::fill(index_.begin(), index_.end(), IndexEntry{});
    size_ = 0;
    total_ = 0;
  }

  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // 0 until all counters are in use; then the smallest count, an upper bound of the true count
  // of every key that is not tracked.
  [[nodiscard]] std::uint64_t min_count() const noexcept {
    return size_ < capacity_ ? 0 : heap_[0].count;
  }

  // What memory_bytes() will be for a given capacity, before allocating anything.
  [[nodiscard]] static std::size_t planned_bytes(std::size_t capacity) noexcept {
    const std::size_t index = std::max<std::size_t>(std::bit_ceil(std::size_t{2} * capacity), 4);
    return sizeof(SpaceSaving) +
           capacity * (sizeof(Key) + sizeof(std::uint64_t) + 2 * sizeof(std::uint32_t) +
                       sizeof(HeapNode)) +
           index * sizeof(IndexEntry);
  }

  // Fixed at construction.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return sizeof(*this) + keys_.capacity() * sizeof(Key) +
           errors_.capacity() * sizeof(std::uint64_t) + tags_.capacity() * sizeof(std::uint32_t) +
           heap_pos_.capacity() * sizeof(std::uint32_t) + heap_.capacity() * sizeof(HeapNode) +
           index_.capacity() * sizeof(IndexEntry);
  }

 private:
  static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();
  // Four children share one cache line and the heap is half as deep as a binary one: a counter
  // that takes over the minimum sinks past all counters tied at the old minimum, which is most
  // of them during a flood of distinct keys.
  static constexpr std::uint32_t kArity = 4;

  struct HeapNode {
    std::uint64_t count = 0;
    std::uint32_t slot = 0;
  };

  // The low 32 bits of the key's hash. Its low bits pick the home bucket, so deletion finds the
  // home of any entry without touching the keys; the rest skip nearly all false key compares.
  struct IndexEntry {
    std::uint32_t tag = 0;
    std::uint32_t slot_plus_one = 0;  // 0 = empty
  };

  static std::uint32_t checked_capacity(std::size_t capacity) {
    if (capacity == 0 || capacity > kMaxCapacity) {
      throw std::invalid_argument("SpaceSaving capacity must be in [1, " +
                                  std::to_string(kMaxCapacity) + "]");
    }
    return static_cast<std::uint32_t>(capacity);
  }

  // The second half of merge(): keys only in other are charged our minimum (min_this, taken
  // before the merge) and compete for the m largest counts. A key of ours evicted here already
  // holds count_this + count_other >= min_this + count_other, so it could never re-enter when
  // other's copy of it comes up.
  void merge_missing(const SpaceSaving& other, std::uint64_t min_this) noexcept {
    for (std::uint32_t j = 0; j < other.size_; ++j) {
      const HeapNode& onode = other.heap_[j];
      const Key& key = other.keys_[onode.slot];
      const std::uint32_t tag = tag_of(key);
      if (find_slot(key, tag) != kNoSlot) {
        continue;
      }
      const std::uint64_t count = onode.count + min_this;
      const std::uint64_t error = other.errors_[onode.slot] + min_this;
      if (size_ < capacity_) {
        insert_new(key, tag, free_position(tag), count, error);
      } else if (count > heap_[0].count) {
        replace_min(key, tag, count, error);
      }
    }
  }

  [[nodiscard]] std::uint32_t tag_of(const Key& key) const noexcept {
    return static_cast<std::uint32_t>(key_hash(key, seed_));
  }

  [[nodiscard]] std::uint32_t find_slot(const Key& key, std::uint32_t tag) const noexcept {
    for (std::uint32_t pos = tag & index_mask_;; pos = (pos + 1) & index_mask_) {
      const IndexEntry e = index_[pos];
      if (e.slot_plus_one == 0) {
        return kNoSlot;
      }
      if (e.tag == tag && keys_[e.slot_plus_one - 1] == key) {
        return e.slot_plus_one - 1;
      }
    }
  }

  [[nodiscard]] std::uint32_t free_position(std::uint32_t tag) const noexcept {
    std::uint32_t pos = tag & index_mask_;
    while (index_[pos].slot_plus_one != 0) {
      pos = (pos + 1) & index_mask_;
    }
    return pos;
  }

  // pos: a free index position on tag's probe path.
  void insert_new(const Key& key, std::uint32_t tag, std::uint32_t pos, std::uint64_t count,
                  std::uint64_t error) noexcept {
    const std::uint32_t slot = size_++;
    keys_[slot] = key;
    errors_[slot] = error;
    tags_[slot] = tag;
    heap_[slot] = HeapNode{count, slot};
    heap_pos_[slot] = slot;
    index_[pos] = IndexEntry{tag, slot + 1};
    sift_up(slot);
  }

  // Gives the counter at the heap root (the minimum) to key.
  void replace_min(const Key& key, std::uint32_t tag, std::uint64_t count,
                   std::uint64_t error) noexcept {
    const std::uint32_t slot = heap_[0].slot;
    erase_from_index(slot);
    keys_[slot] = key;
    errors_[slot] = error;
    tags_[slot] = tag;
    index_[free_position(tag)] = IndexEntry{tag, slot + 1};
    heap_[0].count = count;
    sift_down(0);
  }

  // Backward-shift deletion keeps every probe path gap-free without tombstones.
  void erase_from_index(std::uint32_t slot) noexcept {
    std::uint32_t hole = tags_[slot] & index_mask_;
    while (index_[hole].slot_plus_one != slot + 1) {
      hole = (hole + 1) & index_mask_;
    }
    for (std::uint32_t next = (hole + 1) & index_mask_;; next = (next + 1) & index_mask_) {
      const IndexEntry e = index_[next];
      if (e.slot_plus_one == 0) {
        break;
      }
      // e may move back to the hole only if the hole lies on its probe path [home, next].
      const std::uint32_t home = e.tag & index_mask_;
      if (((next - home) & index_mask_) >= ((next - hole) & index_mask_)) {
        index_[hole] = e;
        hole = next;
      }
    }
    index_[hole] = IndexEntry{};
  }

  void sift_up(std::uint32_t pos) noexcept {
    const HeapNode node = heap_[pos];
    while (pos > 0) {
      const std::uint32_t parent = (pos - 1) / kArity;
      if (heap_[parent].count <= node.count) {
        break;
      }
      place(pos, heap_[parent]);
      pos = parent;
    }
    place(pos, node);
  }

  void sift_down(std::uint32_t pos) noexcept {
    const HeapNode node = heap_[pos];
    for (;;) {
      const std::uint32_t first = kArity * pos + 1;
      if (first >= size_) {
        break;
      }
      std::uint32_t least = first;
      if (first + kArity <= size_) {
        // Counts of siblings are near-ties in a flood: selects instead of branches.
        const std::uint32_t a = heap_[first + 1].count < heap_[first].count ? first + 1 : first;
        const std::uint32_t b =
            heap_[first + 3].count < heap_[first + 2].count ? first + 3 : first + 2;
        least = heap_[b].count < heap_[a].count ? b : a;
      } else {
        for (std::uint32_t c = first + 1; c < size_; ++c) {
          least = heap_[c].count < heap_[least].count ? c : least;
        }
      }
      if (heap_[least].count >= node.count) {
        break;
      }
      place(pos, heap_[least]);
      pos = least;
    }
    place(pos, node);
  }

  void place(std::uint32_t pos, const HeapNode& node) noexcept {
    heap_[pos] = node;
    heap_pos_[node.slot] = pos;
  }

  // Per counter ("slot"), fixed for its lifetime in the table:
  std::vector<Key> keys_;
  std::vector<std::uint64_t> errors_;
  std::vector<std::uint32_t> tags_;
  std::vector<std::uint32_t> heap_pos_;
  std::vector<HeapNode> heap_;  // heap_[0, size_) is a 4-ary min-heap on count
  std::vector<IndexEntry> index_;
  std::uint64_t seed_;
  std::uint64_t total_ = 0;
  std::uint32_t index_mask_ = 0;
  std::uint32_t capacity_;
  std::uint32_t size_ = 0;
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

  [[nodiscard]] static double standard_error(unsigned precision) noexcept;

  // Fixed at construction.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return sizeof(*this) + registers_.capacity();
  }

  [[nodiscard]] static std::size_t planned_bytes(unsigned precision) noexcept {
    return sizeof(HyperLogLog) + (std::size_t{1} << precision);
  }

 private:
  std::vector<std::uint8_t> registers_;
  unsigned precision_;
};

// ---------------------------------------------------------------------------------------------
// A plain counter with the summary interface, for sliding-window totals.
class CountSummary {
 public:
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
  // Builds K summaries as Summary(summary_args...). Throws std::invalid_argument unless
  // window_ns > 0, 1 <= sub_windows <= 1024 and sub_windows divides window_ns.
  template <class... Args>
  SlidingWindow(std::int64_t window_ns, std::size_t sub_windows, const Args&... summary_args)
      : sub_window_ns_(checked_sub_window_ns(window_ns, sub_windows)),
        sub_windows_(static_cast<std::int64_t>(sub_windows)) {
    subs_.reserve(sub_windows);
    for (std::size_t i = 0; i < sub_windows; ++i) {
      subs_.emplace_back(summary_args...);
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
    epochs_[slot] = current_;
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

  void clear_slot(std::size_t slot) noexcept {
    if (epochs_[slot] != kEmpty) {
      subs_[slot].clear();
      epochs_[slot] = kEmpty;
    }
  }

  void clear_all() noexcept {
    for (std::size_t i = 0; i < subs_.size(); ++i) {
      clear_slot(i);
    }
  }

  std::vector<Summary> subs_;
  std::vector<std::int64_t> epochs_;  // epoch held by each slot, kEmpty if cleared
  std::int64_t sub_window_ns_;
  std::int64_t sub_windows_;
  std::int64_t current_ = kEmpty;
  std::uint64_t late_adds_ = 0;
  std::uint64_t restarts_ = 0;
};

}  // namespace dnsmon::detail
