// The detection state every shard reaches (detection spec 3.4 "Global", 4.8, 4.12): what spans
// domains, and so shards. Shards take its mutex only at day boundaries and when a rare detector
// event needs it (a disappearance, a first success of a new domain whose answer may be a dead
// address, a successor mark to collect), never per lookup event.
//
// The recently-dead map (4.7, 4.8): answer address → the domain that died on it, its top-2
// organisations, the day it died and whether its covert_pair score had reached medium; at most
// kDeadEntries addresses, each kept max_age_days (30) after the death. A Bloom filter of the
// addresses in atomic words lets the packet path ask "may this address be dead?" without the
// mutex; only a "maybe" takes it. Bits are set before an entry is written and the filter is
// rebuilt (word by word, each new word a superset of the live entries' bits) when expired or
// replaced entries have left many stale bits, so a reader never misses a live address.
//
// Thread-safety: the dead map's entries and counters behind `mutex`; the filter words, the live
// count and the successor generation are atomics read without it. Allocation: construction only.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "dnsmon/detect.hpp"
#include "dnsmon/detect/aggregate.hpp"
#include "dnsmon/detect/detail/state_codec.hpp"
#include "dnsmon/detect/event.hpp"
#include "dnsmon/detect/formulas.hpp"

namespace dnsmon::detect {

// An entry of the recently-dead map.
struct DeadRecord {
  std::array<std::uint8_t, 16> addr{};     // the answer address (IPv4 as ::ffff:a.b.c.d)
  std::uint64_t domain_key = 0;            // the dead domain's base key; 0 = free
  std::array<std::uint32_t, 2> top_org{};  // low 32 bits | 1 of its top-2 organisations (0: none)
  std::uint16_t died = 0;                  // logical day of the transition
  std::uint8_t covert_medium = 0;          // its covert_pair score had reached medium
  // 1: a successor was found; the dead domain's shard applies kLifeSuccessorFound and sets 2.
  std::uint8_t successor = 0;
  // Distinct newly observed domains whose first successful answer held the address since it
  // entered the map (the shared-hosting guard of 4.8), their keys up to four, the count saturating.
  std::array<std::uint64_t, 4> new_domains{};
  std::uint8_t new_count = 0;
  std::uint8_t name_len = 0;
  std::array<char, 254> name{};  // the dead domain

  [[nodiscard]] std::string_view domain() const noexcept { return {name.data(), name_len}; }
};

class SharedState {
 public:
  static constexpr std::size_t kDeadEntries = 4096;
  static constexpr std::size_t kDeadFilterWords = 1024;  // 65,536 bits, 3 per address

  // shards: the engine's detection shards (the aggregate counts' hand-over).
  explicit SharedState(const DetectOptions& options, std::size_t shards = 1);

  // The checkpoint of this state (checkpoint.cpp writes it as one section of the state file):
  // the covert_pair cap, the recently-dead map's entries and counters, the aggregate_anomaly
  // monitor (its shards' open hours, the hours waiting, the models and alarms). load() runs on a
  // freshly constructed object before any shard exists and returns false when the bytes do not
  // decode (too few, an entry count over the capacity); the engine then discards the object and
  // starts fresh. A change of what save() writes bumps kStateLayoutVersion (checkpoint.hpp). Called
  // with no shard running (at start, at shutdown, or with the shards paused): no lock.
  void save(StateSink& out) const;
  [[nodiscard]] bool load(StateSource& in);

  std::mutex mutex;  // guards everything below that is not atomic

  // covert_pair's daily cap (4.12 item 7): domains newly reaching medium on a logical day, over
  // all shards. Asked only when a domain first crosses medium.
  NewAlertCap covert_cap;

  // aggregate_anomaly (4.4): each shard's open hour (its own, without the mutex), the closed
  // hours and the Holt–Winters models (under the mutex, taken at a shard's hour boundary).
  AggregateMonitor aggregate;

  // --- the recently-dead map ---------------------------------------------------------------

  // Without the mutex: whether addr may be in the map (false: it is not).
  [[nodiscard]] bool dead_maybe(const std::array<std::uint8_t, 16>& addr) const noexcept;
  // The same for a response's answers: whether any of them may be in the map.
  [[nodiscard]] bool dead_maybe(const LookupEvent& response) const noexcept;

  // Whether the map holds any entry (without the mutex).
  [[nodiscard]] bool dead_any() const noexcept {
    return dead_live_.load(std::memory_order_acquire) != 0;
  }

  // Without the mutex: the entries in use as of the last insertion.
  [[nodiscard]] std::uint64_t dead_live() const noexcept {
    return dead_live_.load(std::memory_order_relaxed);
  }

  // Under the mutex: records a death on addr (an entry for the same address is replaced; a full
  // map drops its expired entries, then its oldest). `today` expires entries older than the TTL:
  // the map is scanned for them at the first insertion of each newer logical day, after a reload
  // changed the TTL, and when it is full.
  void dead_insert(const DeadRecord& r, std::uint16_t today) noexcept;
  // Under the mutex: the live entry of addr on `today`, or null.
  [[nodiscard]] DeadRecord* dead_find(const std::array<std::uint8_t, 16>& addr,
                                      std::uint16_t today) noexcept;

  // Under the mutex: every entry (free ones have domain_key 0), for marking successors.
  [[nodiscard]] std::vector<DeadRecord>& dead_entries() noexcept { return dead_; }

  // Under the mutex: counters of the map (entries in use, inserted, dropped when full or expired).
  [[nodiscard]] std::uint64_t dead_size() const noexcept { return dead_used_; }

  [[nodiscard]] std::uint64_t dead_inserted() const noexcept { return dead_inserted_; }

  [[nodiscard]] std::uint64_t dead_dropped() const noexcept { return dead_dropped_; }

  [[nodiscard]] std::uint32_t dead_ttl_days() const noexcept {
    return ttl_days_.load(std::memory_order_relaxed);
  }

  // successor.max_age_days changed by a reload: the entries' age is checked against it from now on.
  void set_dead_ttl_days(std::uint32_t days) noexcept {
    ttl_days_.store(days, std::memory_order_relaxed);
  }

  // Bumped (under the mutex) when a successor is marked on a dead entry: a dead domain's shard
  // compares it with the value it last saw before taking the mutex to collect its mark.
  std::atomic<std::uint32_t> successor_generation{0};

 private:
  void expire(std::uint16_t today) noexcept;
  void rebuild_filter() noexcept;
  void filter_add(const std::array<std::uint8_t, 16>& addr) noexcept;

  std::atomic<std::uint32_t> ttl_days_;
  std::vector<DeadRecord> dead_;
  std::array<std::atomic<std::uint64_t>, kDeadFilterWords> filter_{};
  std::atomic<std::uint32_t> dead_live_{0};
  std::uint64_t dead_used_ = 0, dead_inserted_ = 0, dead_dropped_ = 0;
  std::uint64_t filter_stale_ = 0;  // entries removed since the filter was last rebuilt
  // The newest day expire() ran for, and the TTL it used (dead_insert() scans once per day).
  std::uint16_t expired_day_ = 0;
  std::uint32_t expired_ttl_ = 0;
};

}  // namespace dnsmon::detect
