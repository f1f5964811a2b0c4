// Recognises a frame that repeats one seen moments before: a SPAN port that mirrors both
// directions of a link, two taps on one path, or `-i any` on a bridge (the frame on the port and
// on the bridge) deliver the same packet twice. Each worker keeps its own table: frames are spread
// over workers by their IP addresses, so both copies of a packet reach the same one.
//
// Two frames are the same when their IP packets are byte for byte the same (the link-layer walk
// of common/link.hpp; the whole frame when it leads to no IP packet) and their packet times are
// at most the window apart. The link-layer headers may differ (a cooked capture on `any` beside an
// Ethernet tap). The table keeps a 64-bit digest of each packet, not its bytes: two different
// packets of the window taken for one another is a 1 in 2^64 chance per pair. A DNS client that
// repeats a query does so after hundreds of milliseconds at least, well outside the window.
//
// The table: `entries` digests with their times, in sets of four; a new digest takes an empty
// place of its set or the oldest one (counted as an eviction when that one was still inside the
// window, which only a flood of distinct packets in one set does). O(1) per frame, no allocation
// after construction.
//
// Thread-safety: one thread (its worker).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "dnsmon/common/link.hpp"

namespace dnsmon {

class DuplicateFilter {
 public:
  static constexpr std::size_t kDefaultEntries = 4096;          // 64 KiB per worker
  static constexpr std::int64_t kDefaultWindowNs = 10'000'000;  // 10 ms of packet time
  static constexpr std::size_t kWays = 4;

  struct Result {
    bool duplicate = false;  // drop the frame: it repeats one seen within the window
    bool evicted = false;    // remembering it pushed out a digest still inside the window
  };

  // entries is rounded up to a power of two, at least kWays.
  explicit DuplicateFilter(std::size_t entries = kDefaultEntries,
                           std::int64_t window_ns = kDefaultWindowNs)
      : window_ns_(window_ns) {
    std::size_t n = kWays;
    while (n < entries) {
      n *= 2;
    }
    table_.resize(n);
    set_mask_ = n / kWays - 1;
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return table_.size(); }

  // Whether the frame repeats one seen within the window of ts_ns; remembers it when it does not.
  Result check(std::uint32_t link_type, std::span<const std::byte> frame,
               std::int64_t ts_ns) noexcept {
    const link::Packet packet = link::walk(link_type, frame);
    const auto bytes = packet.status == link::Status::Ok ? packet.bytes : frame;
    const std::uint64_t d = digest(bytes) | 1U;  // 0 marks an empty place
    Entry* set = &table_[(d >> 20U & set_mask_) * kWays];
    Entry* victim = set;
    for (std::size_t i = 0; i < kWays; ++i) {
      Entry& e = set[i];
      if (e.digest == d) {
        if (within(e.ts_ns, ts_ns)) {
          return {.duplicate = true, .evicted = false};
        }
        e.ts_ns = ts_ns;  // the same packet again, long after: a new original
        return {};
      }
      if (e.digest == 0) {
        victim = &e;  // places fill in order: no match lies beyond an empty one
        break;
      }
      if (e.ts_ns < victim->ts_ns) {
        victim = &e;
      }
    }
    const bool evicted = victim->digest != 0 && within(victim->ts_ns, ts_ns);
    *victim = {d, ts_ns};
    return {.duplicate = false, .evicted = evicted};
  }

  // The 64-bit digest of a packet: two lanes of a multiply-rotate mix, 16 bytes a round (two
  // independent chains halve the latency), the length included, then the splitmix64 finaliser.
  static std::uint64_t digest(std::span<const std::byte> b) noexcept {
    constexpr std::uint64_t k1 = 0x9E3779B97F4A7C15ULL;
    constexpr std::uint64_t k2 = 0xC2B2AE3D27D4EB4FULL;
    std::uint64_t h = k1 ^ (b.size() * k2);
    std::uint64_t g = k2 ^ b.size();
    std::size_t i = 0;
    for (; i + 16 <= b.size(); i += 16) {
      std::uint64_t w0 = 0;
      std::uint64_t w1 = 0;
      std::memcpy(&w0, b.data() + i, 8);
      std::memcpy(&w1, b.data() + i + 8, 8);
      h = std::rotl(h ^ (w0 * k2), 31) * k1;
      g = std::rotl(g ^ (w1 * k1), 29) * k2;
    }
    for (; i < b.size(); i += 8) {
      std::uint64_t w = 0;
      std::memcpy(&w, b.data() + i, std::min<std::size_t>(8, b.size() - i));
      h = std::rotl(h ^ (w * k2), 31) * k1;
    }
    h ^= std::rotl(g, 17) * k2;
    h ^= h >> 30U;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 27U;
    h *= 0x94D049BB133111EBULL;
    return h ^ (h >> 31U);
  }

 private:
  struct Entry {
    std::uint64_t digest = 0;
    std::int64_t ts_ns = 0;
  };

  // Unsigned difference: a damaged capture's times can be anything.
  [[nodiscard]] bool within(std::int64_t then, std::int64_t now) const noexcept {
    const auto a = static_cast<std::uint64_t>(then);
    const auto b = static_cast<std::uint64_t>(now);
    return (a > b ? a - b : b - a) <= static_cast<std::uint64_t>(window_ns_);
  }

  std::vector<Entry> table_;
  std::size_t set_mask_ = 0;
  std::int64_t window_ns_;
};

}  // namespace dnsmon
