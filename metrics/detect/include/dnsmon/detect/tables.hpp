// The per-shard domain state of the tiered design (detection spec 3.4; docs/detection.md):
// - Doorkeeper: a Bloom filter (4 hashes) of the domains seen today, cleared at each logical day
//   boundary. A new domain takes a base slot on its 2nd lookup event of the day, at once when its
//   set has a free slot, or when it is watch-listed.
// - BaseTable: every admitted registrable domain, 8-way set-associative on a 64-bit key hash,
//   88-byte entries. A full set evicts its entry of lowest retention value
//   r = log2(1 + events_7d) + 4·[orgs ≤ 3 ∧ events_7d ≥ 5] − 4·[orgs ≥ 32] − days_since_seen / 7,
//   never a candidate or a watched entry; when every way is one, the newcomer is rejected.
// - SeenFilter: (16-bit fingerprint, first seen day, last active day) of evicted domains, in
//   4-way buckets (a bucket that is full forgets its least recently active domain), so that
//   dormancy can still be measured when an evicted domain returns.
// - Candidates: domains promoted from the base table (7-day events ≥ 10 with ≤ 3 organisations,
//   a reactivation after ≥ 14 silent days with history, or watch-listed), with their name and a
//   64-day ring; a full tier evicts its least recently active entry among those not flagged in
//   the last 14 days. Entries are 2 KiB, the rest of each held for the detectors' state.
// - Watch entries: the configured export.watchlist, pinned: 16 KiB each, with a 180-day ring.
// All are allocated at construction from detection.memory (divided among the shards) and never
// grow.
//
// Thread-safety: a DomainState belongs to one shard thread; its counters are relaxed atomics that
//   the exporter may read. Allocation: construction only.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/detect.hpp"
#include "dnsmon/detect/event.hpp"

namespace dnsmon::detect {

// Logical day numbers are days since 1970-01-01, stored in 16 bits (until 2149); 0 = never.
using Day = std::uint16_t;

class Doorkeeper {
 public:
  explicit Doorkeeper(std::uint64_t bits);
  // Whether key was already in the filter; adds it.
  bool test_and_set(std::uint64_t key) noexcept;
  void clear() noexcept;

  [[nodiscard]] std::uint64_t bytes() const noexcept { return words_.size() * 8; }

 private:
  std::vector<std::uint64_t> words_;
  std::uint64_t bits_;
};

class SeenFilter {
 public:
  struct Record {
    Day first_seen = 0, last_active = 0;
  };

  explicit SeenFilter(std::uint64_t entries);
  void insert(std::uint64_t key, Record r) noexcept;
  // The record of key, removed from the filter (the domain is back in the base table); a
  // fingerprint collision may answer for another domain (about 4 in 65536 lookups).
  [[nodiscard]] bool take(std::uint64_t key, Record& out) noexcept;

  [[nodiscard]] std::uint64_t entries() const noexcept { return used_; }

  [[nodiscard]] std::uint64_t capacity() const noexcept { return slots_.size(); }

  [[nodiscard]] std::uint64_t bytes() const noexcept { return slots_.size() * sizeof(Slot); }

 private:
  struct Slot {
    std::uint16_t fp = 0;  // 0 = empty
    Day first_seen = 0, last_active = 0;
  };

  static_assert(sizeof(Slot) == 6);

  std::vector<Slot> slots_;
  std::uint64_t buckets_;
  std::uint64_t used_ = 0;
};

// The 88-byte base entry of detection spec 3.4.
struct BaseEntry {
  std::uint64_t key = 0;          // 0 = empty
  std::uint32_t last_seen_s = 0;  // logical seconds since the Unix epoch, saturating
  Day first_seen = 0, last_active = 0, prev_active = 0;
  std::array<std::uint16_t, 2> top_count{};  // decayed counts of the top-2 organisations
  std::uint16_t others = 0;                  // and of all the others
  std::array<std::uint16_t, 8> day_ring{};   // lookup events on day d at d % 8 (last 8 days)
  std::uint32_t total_events = 0;            // saturating
  std::array<std::uint32_t, 2> top_org{};    // the top-2 organisations' hashes (low 32 bits)
  std::uint8_t consecutive_failures = 0, last_rcode = 0, odd_qtype = 0, flags = 0;
  std::uint64_t orgs_bitmap = 0;    // linear counting of distinct organisations
  std::uint64_t fqdn_bitmap = 0;    // and of distinct names
  std::uint32_t candidate = 0;      // candidate index + 1, 0 = none
  float ewma_mu = 0, ewma_var = 0;  // burst baseline (for the burst detector)
  std::uint8_t fire_days = 0, spare = 0;
  Day last_evaluated = 0;

  static constexpr std::uint8_t kWatched = 1;
  static constexpr std::uint8_t kNewPending = 2;  // first sighting after the warm-up (4.3)

  [[nodiscard]] std::uint32_t events_in(Day today, unsigned days) const noexcept;
  [[nodiscard]] double distinct_orgs() const noexcept;
  [[nodiscard]] double top2_share() const noexcept;
};

static_assert(sizeof(BaseEntry) == 88);

struct CandidateEntry {
  std::uint64_t key = 0;  // 0 = free
  Day promoted = 0, last_flagged = 0, last_active = 0;
  std::uint8_t name_len = 0, reserved = 0;
  std::array<char, 256> name{};
  std::array<std::uint16_t, 64> day_ring{};  // lookup events on day d at d % 64
  // A reactivation whose post window is still open (dormant_reactivation, 4.2).
  Day run_start = 0, gap_days = 0, history_days = 0;
  std::uint8_t reactivation_pending = 0, reserved2 = 0;
  std::array<std::uint8_t, 2048 - 16 - 256 - 128 - 8> detector_state{};  // for the detectors
};

static_assert(sizeof(CandidateEntry) == 2048);

struct WatchEntry {
  std::uint64_t key = 0;
  Day last_active = 0;
  std::uint8_t name_len = 0, reserved[5]{};
  std::array<char, 256> name{};
  std::array<std::uint16_t, 180> day_ring{};  // lookup events on day d at d % 180
  std::array<std::uint8_t, 16384 - 16 - 256 - 360> detector_state{};
};

static_assert(sizeof(WatchEntry) == 16384);

// A detector that fired on a lookup event (4.2, 4.3).
struct Finding {
  enum class Kind : std::uint8_t { None, DormantReactivation, NewlyObserved };
  Kind kind = Kind::None;
  double score = 0;
  Day run_start = 0;  // reactivation: the run's first day; new: the first sighting
  Day gap_days = 0, history_days = 0;
  std::uint32_t events = 0, active_days = 0;
};

// What a day boundary computed (detection spec 4.1): the base rate.
struct DayReport {
  Day day = 0;                                  // the day that closed
  std::uint64_t querier_concentration = 0;      // volume-gated (candidates, W14)
  std::uint64_t querier_concentration_any = 0;  // ≥ 1 event in the 8-day ring, top-2 share ≥ 0.95
};

class DomainState {
 public:
  // The tiers, as indexes of the counters below.
  static constexpr std::size_t kBase = 0;
  static constexpr std::size_t kCandidate = 1;
  static constexpr std::size_t kWatch = 2;
  static constexpr std::size_t kTiers = 3;

  // share: this shard's part of detection.memory (1 / shards). seed: the domain hash's.
  DomainState(const DetectOptions& options, double share, std::uint64_t seed);

  // A lookup event (the first of its pair in the de-duplication window) on logical day `day`.
  // Returns what fired on it, if anything (dormant_reactivation, newly_observed).
  Finding on_lookup(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept;

  // The logical day `closed` ended: clears the doorkeeper, decays the organisation counts and
  // counts the flagged domains, with population14 the distinct clients of the last 14 days.
  DayReport end_of_day(Day closed, double population14) noexcept;

  struct Counters {
    std::array<std::atomic<std::uint64_t>, kTiers> entries{}, capacity{}, evictions{}, rejected{};
    std::atomic<std::uint64_t> seen_filter_entries{0}, seen_filter_capacity{0};
    std::array<std::atomic<std::uint64_t>, 5> bytes{};  // base, candidate, watch, seen, doorkeeper
    std::atomic<std::uint64_t> flagged_qc{0}, flagged_qc_any{0};
  };

  [[nodiscard]] const Counters& counters() const noexcept { return counters_; }

  // For tests: the base entry of a domain hash, or null.
  [[nodiscard]] const BaseEntry* find(std::uint64_t key) const noexcept;

  [[nodiscard]] const CandidateEntry* candidate(const BaseEntry& e) const noexcept {
    return e.candidate != 0 ? &candidates_[e.candidate - 1] : nullptr;
  }

 private:
  BaseEntry* find_mut(std::uint64_t key) noexcept;
  BaseEntry* admit(const LookupEvent& ev, std::uint64_t key, Day day) noexcept;
  Finding update(BaseEntry& e, const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept;
  void maybe_promote(BaseEntry& e, const LookupEvent& ev, Day day, bool reactivated) noexcept;

  static void add(std::atomic<std::uint64_t>& c, std::int64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(n),
            std::memory_order_relaxed);
  }

  QuerierConcentrationParams qc_;
  DormantReactivationParams dr_;
  NewlyObservedParams no_;
  Day first_day_ = 0;  // the shard's first lookup day: the newly_observed warm-up starts there
  std::uint64_t sets_;
  std::vector<BaseEntry> base_;
  std::vector<CandidateEntry> candidates_;
  std::vector<WatchEntry> watch_;
  std::vector<std::uint64_t> watch_keys_;  // the configured watchlist's domain hashes
  std::vector<std::string> watch_names_;
  SeenFilter seen_;
  Doorkeeper doorkeeper_;
  Counters counters_;
};

}  // namespace dnsmon::detect
