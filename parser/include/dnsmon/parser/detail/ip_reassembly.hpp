// Reassembles fragmented IPv4 and IPv6 datagrams within fixed bounds, for traffic that may be
// hostile.
//
// Everything is sized at construction: a table of at most max_datagrams datagrams in progress, a
// pool of 512-byte pages that holds fragment bytes up to memory_budget_bytes, and one assembly
// buffer. A fragment's bytes go into pages of its datagram at their final offsets, so
// checking an overlap is a memcmp and completing is one copy. When the table or the pool is full,
// the datagram seen first is evicted. A datagram older than timeout_ns in packet time is dropped,
// checked lazily on every add(). Lookups hash the key with SipHash-1-3 and a secret seed, so
// crafted fragment ids cannot pile into one bucket.
//
// Policy for hostile or broken fragments. It follows RFC 5722 for IPv6 and applies the same rule
// to IPv4, as Linux does since 4.19. It is stricter than Linux in one case: Linux keeps the first
// copy of a repeated range without comparing the bytes.
// - A fragment with the same range, bytes and last-fragment flag as one already held is an exact
//   duplicate. It is ignored and counted in `duplicates`, and the datagram is kept.
// - Any other overlap drops the whole datagram and counts `overlaps`. That includes the same range
//   with different bytes, and a partial overlap even when the bytes agree. Hosts disagree on which
//   copy wins, so a monitor that kept one could report a message the receiver never saw.
//   Fragments that arrive later for the same key start a new datagram, as they do in Linux.
// - A last fragment (more == false) that disagrees with the known end, or that ends before bytes
//   already held, drops the datagram. So does a fragment that reaches past the known end. Both
//   count as `invalid`.
// - The fragment alone is refused (`invalid`) when it is empty, when its offset is not a multiple
//   of 8, or when it is a non-last fragment whose length is not a multiple of 8. None of these
//   can be sent by a correct stack.
// - A fragment that ends beyond max_datagram_bytes drops its datagram (`too_large`). A datagram
//   that would need more than max_fragments fragments is dropped (`too_many_fragments`).
// - An atomic fragment (offset 0, more == false) is complete on its own and never mixed with
//   fragments that are queued under the same key (RFC 6946).
//
// Thread-safety: an IpReassembler is owned by one thread, which calls add(), expire(),
//   in_progress() and memory_bytes(). counters() may be read from any thread. Its fields are
//   single-writer relaxed atomics, so each value is recent, but a snapshot is not a consistent cut.
// Allocation: only the constructor allocates. It creates the page pool (memory_budget_bytes rounded
//   down to whole pages), one max_datagram_bytes assembly buffer, and per-datagram tables of about
//   100 + 8 * max_fragments + 4 * ceil(max_datagram_bytes / 512) bytes each. add() and expire()
//   never allocate.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "dnsmon/common/counter.hpp"

namespace dnsmon::detail {

// Identifies one datagram being reassembled.
struct FragmentKey {
  std::array<std::uint8_t, 16> src{}, dst{};  // IPv4 uses the first 4 bytes; the rest is ignored
  std::uint32_t id = 0;  // IPv4 Identification (16 bits) or IPv6 Fragment header Identification
  // IPv4: the Protocol field. It is part of the identity (RFC 791).
  // IPv6: the Next Header of this fragment's Fragment header. It is not part of the identity: only
  // the value in the offset-zero fragment counts (RFC 8200 §4.5), and it is returned in
  // ReassembledDatagram::proto.
  std::uint8_t proto = 0;
  std::uint8_t family = 0;  // 4 or 6; any other value is refused as invalid
};

struct IpReassemblyOptions {
  std::size_t max_datagrams = 1024;           // datagrams in progress at once (fixed capacity)
  std::size_t max_datagram_bytes = 65535;     // a larger reassembled payload is refused
  std::size_t max_fragments = 64;             // per datagram
  std::size_t memory_budget_bytes = 8 << 20;  // pages for all buffered fragment bytes together
  std::int64_t timeout_ns = 5'000'000'000;    // packet time, not wall clock
  std::uint64_t hash_seed = 0;  // 0: a random seed from std::random_device; tests may fix it
};

enum class FragmentResult : std::uint8_t {
  Held,      // the datagram is still incomplete (the fragment was stored or was a duplicate)
  Complete,  // the datagram is complete: see ReassembledDatagram
  Dropped,   // the fragment was refused, and with it its datagram where the policy says so
};

struct ReassembledDatagram {
  // The payload after the IP header (and for IPv6, after the Fragment header). It points into the
  // reassembler, or into the caller's payload for an atomic fragment. It stays valid until the
  // next call to add() or expire().
  std::span<const std::byte> payload;
  std::uint8_t proto = 0;  // IPv4 Protocol; IPv6 Next Header of the offset-zero fragment
};

// A plain copy of the counters, for readers.
struct IpReassemblyStats {
  std::uint64_t fragments = 0;           // add() calls
  std::uint64_t reassembled = 0;         // Complete results, atomic fragments included
  std::uint64_t timed_out = 0;           // datagrams dropped by the timeout
  std::uint64_t evicted = 0;             // datagrams evicted because max_datagrams were held
  std::uint64_t over_budget = 0;         // datagrams evicted or dropped for the memory budget
  std::uint64_t too_large = 0;           // fragments ending beyond max_datagram_bytes
  std::uint64_t too_many_fragments = 0;  // datagrams dropped at max_fragments
  std::uint64_t overlaps = 0;            // datagrams dropped for an overlap
  std::uint64_t duplicates = 0;          // exact duplicate fragments ignored
  std::uint64_t invalid = 0;             // fragments that no correct stack sends
  std::uint64_t in_progress = 0;         // gauge: datagrams held
  std::uint64_t memory_bytes = 0;        // gauge: bytes of pages in use
};

struct IpReassemblyCounters {
  SingleWriterCounter fragments, reassembled, timed_out, evicted, over_budget, too_large,
      too_many_fragments, overlaps, duplicates, invalid, in_progress, memory_bytes;

  [[nodiscard]] IpReassemblyStats snapshot() const noexcept;
};

class IpReassembler {
 public:
  static constexpr std::size_t kPageBytes = 512;

  // Throws std::invalid_argument when an option is out of range: a zero count, a budget below one
  // page, max_datagram_bytes above 65535, or a timeout that is not positive. Throws std::bad_alloc
  // when the tables do not fit in memory.
  explicit IpReassembler(IpReassemblyOptions options);
  // What the constructor allocates for these options.
  static std::size_t planned_bytes(const IpReassemblyOptions& options) noexcept;
  ~IpReassembler() = default;
  IpReassembler(const IpReassembler&) = delete;
  IpReassembler& operator=(const IpReassembler&) = delete;

  // Adds one fragment. offset_bytes is the fragment offset in bytes (the wire value times 8). more
  // is the MF (IPv4) or M (IPv6) flag. payload is the fragment's data after the IP header and, for
  // IPv6, after the Fragment header, trimmed to the length the IP header gives. A fragment that the
  // capture cut short must not be added, because its length would be wrong. On Complete, out
  // describes the datagram. Otherwise out is left unchanged. now_ns is packet time. A time before
  // the latest one seen counts as the latest, so every age is measured against a clock that never
  // runs backwards.
  [[nodiscard]] FragmentResult add(const FragmentKey& key, std::uint32_t offset_bytes, bool more,
                                   std::span<const std::byte> payload, std::int64_t now_ns,
                                   ReassembledDatagram& out) noexcept;

  // Drops the datagrams first seen more than timeout_ns before now_ns. add() does the same, so call
  // this only to release memory while no fragments arrive.
  void expire(std::int64_t now_ns) noexcept;

  [[nodiscard]] const IpReassemblyCounters& counters() const noexcept { return counters_; }

  [[nodiscard]] IpReassemblyStats stats() const noexcept { return counters_.snapshot(); }

  [[nodiscard]] std::size_t in_progress() const noexcept { return in_progress_; }

  [[nodiscard]] std::size_t memory_bytes() const noexcept { return used_pages_ * kPageBytes; }

  [[nodiscard]] const IpReassemblyOptions& options() const noexcept { return options_; }

 private:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFU;

  struct Range {
    std::uint32_t start, end;  // [start, end) in datagram bytes; no initializers (see ranges_)
  };

  struct Slot {
    FragmentKey key;
    std::int64_t first_seen_ns = 0;
    std::uint32_t bucket = 0;
    std::uint32_t bucket_next = kNone;  // chain within the bucket
    std::uint32_t older = kNone;        // age list: first-seen order, oldest at age_head_
    std::uint32_t newer = kNone;
    std::uint32_t end_bytes = 0;  // known from the last fragment when has_end
    std::uint32_t held_bytes = 0;
    std::uint32_t max_end = 0;  // largest fragment end held
    std::uint32_t fragments = 0;
    std::uint32_t page_count = 0;
    std::uint8_t proto = 0;  // IPv6: Next Header of the offset-zero fragment
    bool has_end = false;
  };

  [[nodiscard]] FragmentResult add_fragment(const FragmentKey& key, std::uint32_t offset, bool more,
                                            std::span<const std::byte> payload,
                                            ReassembledDatagram& out) noexcept;
  void check_owner() noexcept;
  [[nodiscard]] std::uint64_t hash(const FragmentKey& key) const noexcept;
  [[nodiscard]] std::uint32_t find(const FragmentKey& key, std::uint32_t bucket) const noexcept;
  [[nodiscard]] std::uint32_t create(const FragmentKey& key, std::uint32_t bucket,
                                     std::int64_t now_ns) noexcept;
  void release(std::uint32_t slot) noexcept;
  void expire_until(std::int64_t now_ns) noexcept;
  void publish_gauges() noexcept;
  [[nodiscard]] std::span<Range> ranges(std::uint32_t slot) noexcept;
  [[nodiscard]] std::span<std::uint32_t> pages(std::uint32_t slot) noexcept;
  [[nodiscard]] std::byte* page(std::uint32_t index) noexcept;
  template <class Piece>
  bool each_page_piece(std::uint32_t slot, std::uint32_t offset, std::span<const std::byte> payload,
                       Piece piece) noexcept;
  [[nodiscard]] bool same_bytes(std::uint32_t slot, std::uint32_t offset,
                                std::span<const std::byte> payload) noexcept;
  [[nodiscard]] bool reserve_pages(std::uint32_t slot, std::uint32_t start,
                                   std::uint32_t end) noexcept;
  void store(std::uint32_t slot, std::uint32_t offset, std::span<const std::byte> payload) noexcept;
  [[nodiscard]] std::span<const std::byte> assemble(std::uint32_t slot) noexcept;

  IpReassemblyOptions options_;
  std::array<std::uint64_t, 2> sip_key_{};
  std::size_t pages_per_slot_ = 0;

  std::vector<Slot> slots_;
  // Neither is written before a slot is first used: a slot's ranges are read only up to its
  // fragment count, and create() fills its page map, so pages of slots never used stay untouched.
  std::unique_ptr<Range[]> ranges_;  // NOLINT(modernize-avoid-c-arrays): max_fragments per slot,
                                     // sorted by start
  std::unique_ptr<std::uint32_t[]>
      page_map_;  // NOLINT(modernize-avoid-c-arrays): pages_per_slot_ per slot: page or kNone
  std::vector<std::uint32_t> buckets_;  // chain heads; a power of two >= 2 * max_datagrams
  std::vector<std::uint32_t> free_slots_;
  std::vector<std::uint32_t> free_pages_;
  std::unique_ptr<std::byte[]> pool_;  // NOLINT(modernize-avoid-c-arrays): fixed page pool
  std::vector<std::byte> assembly_;

  std::uint32_t age_head_ = kNone;  // oldest
  std::uint32_t age_tail_ = kNone;  // newest
  std::size_t in_progress_ = 0;
  std::size_t used_pages_ = 0;
  std::int64_t clock_ns_ = std::numeric_limits<std::int64_t>::min();  // latest packet time seen
  IpReassemblyCounters counters_;
#ifndef NDEBUG
  std::thread::id owner_{};  // bound by the first add() or expire()
#endif
};

}  // namespace dnsmon::detail
