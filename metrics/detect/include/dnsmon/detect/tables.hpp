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
//   a reactivation after ≥ 14 silent days with history, watch-listed, or when a detector needs
//   one: a tunneling suspect, a pending disappearance), with their name, a 64-day ring, their
//   top organisations' daily counts and the detectors' state; a full tier evicts its least
//   recently active entry among those not flagged in the last 14 days. Entries are 2.5 KiB.
// - Watch entries: the configured export.watchlist, pinned: 16 KiB each, with a 180-day ring.
// All are allocated at construction from detection.memory (divided among the shards) and never
// grow.
//
// Thread-safety: a DomainState belongs to one shard thread; its counters are relaxed atomics that
//   the exporter may read. Allocation: construction and reconfigure() only.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/detect.hpp"
#include "dnsmon/detect/detail/daily_state.hpp"
#include "dnsmon/detect/detail/event_state.hpp"
#include "dnsmon/detect/event.hpp"
#include "dnsmon/detect/finding.hpp"
#include "dnsmon/detect/publish.hpp"
#include "dnsmon/detect/shared.hpp"

namespace dnsmon::detect {

class OrgResolver;  // normalize.hpp

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
  friend class Engine;  // checkpoint.cpp saves and restores the words
  std::vector<std::uint64_t> words_;
  std::uint64_t bits_;
};

class SeenFilter {
 public:
  struct Record {
    Day first_seen = 0, last_active = 0;
  };

  static constexpr std::size_t kSlotBytes = 6;  // a slot: fingerprint, first seen, last active

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

  static_assert(sizeof(Slot) == kSlotBytes);

  friend class Engine;  // checkpoint.cpp saves and restores the slots
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
  // The response state of disappearance (4.7, events.cpp): failures since the last success
  // (saturating), the last rcode (low 5 bits, held at 31) with a bit for each qtype class that
  // has had data (kHadData*), and the logical hour (low 8 bits) fqdn_bitmap counts.
  std::uint8_t consecutive_failures = 0, last_rcode = 0, fqdn_hour = 0, flags = 0;
  std::uint64_t orgs_bitmap = 0;    // linear counting of distinct organisations
  std::uint64_t fqdn_bitmap = 0;    // distinct names of the current logical hour (events.cpp)
  std::uint32_t candidate = 0;      // candidate index + 1, 0 = none
  float ewma_mu = 0, ewma_var = 0;  // burst baseline (for the burst detector)
  // Consecutive burst fire days; burst's bits (daily.cpp: fired today, level shift to report).
  std::uint8_t fire_days = 0, spare = 0;
  Day last_evaluated = 0;  // the last day the burst baseline took

  static constexpr std::uint8_t kWatched = 1;
  static constexpr std::uint8_t kNewPending = 2;  // first sighting after the warm-up (4.3)
  // last_rcode: a success was seen for an A, an AAAA, or another question type.
  static constexpr std::uint8_t kHadDataA = 1U << 5U;
  static constexpr std::uint8_t kHadDataAaaa = 1U << 6U;
  static constexpr std::uint8_t kHadDataOther = 1U << 7U;

  [[nodiscard]] std::uint32_t events_in(Day today, unsigned days) const noexcept;
  [[nodiscard]] double distinct_orgs() const noexcept;
  [[nodiscard]] double top2_share() const noexcept;
};

static_assert(sizeof(BaseEntry) == 88);

// The organisations of a candidate (4.1): the four with the most events in the last 14 days,
// each with its daily counts, and the daily events of all the others. A new organisation takes a
// slot without an event in the last 14 days, else it counts among the others until one frees.
struct OrgSlots {
  static constexpr std::size_t kSlots = 4;
  static constexpr std::size_t kDays = 14;
  std::array<std::uint32_t, kSlots> org{};  // low 32 bits of the organisation hash; 0 = free
  std::array<OrgRef, kSlots> ref{};
  std::array<std::array<std::uint16_t, kDays>, kSlots> days{};  // events on day d at d % 14
  std::array<std::uint16_t, kDays> others{};
  Day last_day = 0;  // the newest day the daily counts hold
  std::uint16_t reserved = 0;

  void add(const LookupEvent& ev, Day day) noexcept;

  // Events of each slot and of the others over the 14 days ending at `today`.
  struct Window {
    std::array<std::uint32_t, kSlots> counts{};
    std::uint32_t others = 0;
    [[nodiscard]] std::uint32_t total() const noexcept;
    // Slot indices by count, largest first.
    [[nodiscard]] std::array<std::size_t, kSlots> order() const noexcept;
  };

  [[nodiscard]] Window window(Day today) const noexcept;
  // Whether the organisation (hash) has one of the two largest counts over the window.
  [[nodiscard]] bool in_top2(std::uint64_t org_hash, Day today) const noexcept;
};

static_assert(sizeof(OrgSlots) == 256);

// The marks the detectors leave on a candidate for each other and for the export (4.9, 4.10):
// each detector's latest score and the day it was set, the episode's lifecycle, and the gauges
// the per-domain series show. Scores are kept in units of 1/10000.
struct CandidateMarks {
  std::array<std::uint16_t, kDetectors> score{};  // the latest score per detector (0: none)
  std::array<Day, kDetectors> score_day{};
  std::uint16_t reasons = 0;   // Reason bits of the latest covert_pair evaluation
  Day episode_start = 0;       // the current episode's first day (first sighting or reactivation)
  std::uint8_t lifecycle = 0;  // kLife* bits below, reset when a new episode starts
  std::uint8_t reserved0 = 0;
  std::uint16_t covert_max = 0;  // the highest covert_pair score of the episode (1/10000)
  // Gauges of the per-domain series, set by the detector that computes them.
  float iat_cv = 0;           // CV of the inter-event times (4.5, domain level)
  float burstiness = 0;       // Kim–Jo A_n
  float beacon_score = 0;     // 4.5
  float beacon_period_s = 0;  // median inter-event time
  // (How long a domain has been failing is the disappearance state's, EventState.)
  std::uint8_t reserved[12]{};

  static constexpr std::uint8_t kLifeReactivated = 1U << 0U;
  static constexpr std::uint8_t kLifeNew = 1U << 1U;
  static constexpr std::uint8_t kLifeAccelerating = 1U << 2U;
  static constexpr std::uint8_t kLifeIntermittent = 1U << 3U;
  static constexpr std::uint8_t kLifeDisappeared = 1U << 4U;
  static constexpr std::uint8_t kLifePersisting = 1U << 5U;
  static constexpr std::uint8_t kLifeSuccessorFound = 1U << 6U;
  static constexpr std::uint8_t kLifeAutoWatched = 1U << 7U;

  static std::uint16_t units(double s) noexcept {
    return static_cast<std::uint16_t>(std::lround(std::clamp(s, 0.0, 1.0) * 10000));
  }

  void set_score(Detector d, double s, Day day) noexcept {
    score[static_cast<std::size_t>(d)] = units(s);
    score_day[static_cast<std::size_t>(d)] = day;
  }

  [[nodiscard]] double score_of(Detector d) const noexcept {
    return score[static_cast<std::size_t>(d)] / 10000.0;
  }

  [[nodiscard]] Day day_of(Detector d) const noexcept {
    return score_day[static_cast<std::size_t>(d)];
  }
};

static_assert(sizeof(CandidateMarks) == 80);

struct CandidateEntry {
  std::uint64_t key = 0;  // 0 = free
  Day promoted = 0, last_flagged = 0, last_active = 0;
  std::uint8_t name_len = 0, reserved = 0;
  std::array<char, 256> name{};
  std::array<std::uint16_t, 64> day_ring{};  // lookup events on day d at d % 64
  // A reactivation whose post window is still open (dormant_reactivation, 4.2).
  Day run_start = 0, gap_days = 0, history_days = 0;
  std::uint8_t reactivation_pending = 0, reserved2 = 0;
  OrgSlots orgs;
  CandidateMarks marks;
  DailyState daily;   // the day-level detectors' state (daily.cpp)
  EventState events;  // the event-level detectors' state (events.cpp)

  [[nodiscard]] std::string_view domain() const noexcept { return {name.data(), name_len}; }
};

static_assert(sizeof(CandidateEntry) == MemoryPlan::kCandidateEntryBytes);

struct WatchEntry {
  std::uint64_t key = 0;
  Day last_active = 0;
  std::uint8_t name_len = 0, reserved[5]{};
  std::array<char, 256> name{};
  std::array<std::uint16_t, 180> day_ring{};  // lookup events on day d at d % 180
  std::array<std::uint8_t, 16384 - 16 - 256 - 360> detector_state{};
};

static_assert(sizeof(WatchEntry) == 16384);

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
  // shared: the state every shard reaches (null: a private one, for tests).
  DomainState(const DetectOptions& options, double share, std::uint64_t seed,
              SharedState* shared = nullptr);

  // A reload: from the next event on, the detectors' thresholds and weights, the vantage, the
  // allowlists and the watchlist of `options`, which must outlive this state (or its next
  // reconfigure()). Every table keeps its entries; the sizes stay the constructor's. A domain
  // that leaves the watchlist loses its watch entry and its pin in the base table (unless
  // covert_pair auto-watched it) and keeps the rest of its state; one that joins is pinned at
  // once when it is in the base table, and gets its watch entry and a candidate slot on its next
  // lookup event. Watch entries still listed keep their rings, at their new position.
  void reconfigure(const DetectOptions& options);

  // The organisations of the events from now on (the engine's, replaced at a reload), through
  // which export.allowlist_orgs entries that are org_map names are matched; null: names match
  // nothing. It must outlive this state or the next set_orgs().
  void set_orgs(const OrgResolver* orgs) noexcept { orgs_ = orgs; }

  // Starts loading the base-table set that an event of this domain hash will probe, so that a
  // shard can overlap the cache misses of the events waiting in its rings (a hint: it changes
  // nothing, and an event that is not probed just wastes it).
  void prefetch(std::uint64_t domain_hash) const noexcept;

  // Every query (before on_lookup for the first of its window): raw counts, names and qtypes
  // for tunneling and the covert_pair structure veto.
  void on_query(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept;

  // A lookup event (the first of its pair in the de-duplication window) on logical day `day`.
  void on_lookup(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept;

  // A response matched to its query (or a timeout): success and failure, answer addresses.
  void on_response(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept;

  // The logical day `closed` ended: clears the doorkeeper, decays the organisation counts,
  // evaluates the day-level detectors and counts the flagged domains, with population14 the
  // distinct clients of the last 14 days.
  DayReport end_of_day(Day closed, double population14) noexcept;

  // The per-domain series of this shard's candidates flagged in the 14 days ending at `today`:
  // the top_n of each detector by score and the watched ones (publish.cpp).
  void publish(Day today, std::int64_t logical_ns, std::uint32_t top_n,
               PublishedDomains& out) const;

  // What fired since the last call, in order; the engine reports and clears them.
  [[nodiscard]] std::vector<Finding>& findings() noexcept { return findings_; }

  struct Counters {
    std::array<std::atomic<std::uint64_t>, kTiers> entries{}, capacity{}, evictions{}, rejected{};
    std::atomic<std::uint64_t> seen_filter_entries{0}, seen_filter_capacity{0};
    std::array<std::atomic<std::uint64_t>, 5> bytes{};  // base, candidate, watch, seen, doorkeeper
    std::atomic<std::uint64_t> flagged_qc{0}, flagged_qc_any{0};
    // Domains flagged by each detector at the last day boundary (dnsmon_detector_flagged_domains).
    std::array<std::atomic<std::uint64_t>, kDetectors> flagged{};
  };

  [[nodiscard]] const Counters& counters() const noexcept { return counters_; }

  // For tests: the base entry of a domain hash, or null.
  [[nodiscard]] const BaseEntry* find(std::uint64_t key) const noexcept;

  [[nodiscard]] const CandidateEntry* candidate(const BaseEntry& e) const noexcept {
    return e.candidate != 0 ? &candidates_[e.candidate - 1] : nullptr;
  }

  // The tables' sizes for a shard with this share of detection.memory (what the constructor
  // allocates; a checkpoint of other sizes is refused).
  struct Capacity {
    std::uint64_t base = 0, candidates = 0, watch = 0, seen_slots = 0, doorkeeper_words = 0;
    bool operator==(const Capacity&) const = default;
  };

  [[nodiscard]] static Capacity capacity_for(const DetectOptions& options, double share) noexcept;

 private:
  friend class Engine;  // checkpoint.cpp saves and restores the tables
  BaseEntry* find_mut(std::uint64_t key) noexcept;
  // A slot for a domain not in the table, or null (counted as rejected). A full set takes it only
  // on its second lookup of the day (the doorkeeper), when it is watched, or when `successor`
  // (its answer is an address of the recently-dead map).
  BaseEntry* admit(const LookupEvent& ev, std::uint64_t key, Day day,
                   bool successor = false) noexcept;
  // A successful response of a domain the table turned away at its query: admitted at once when
  // an answer address is in the recently-dead map, so that successor_name sees its first success.
  BaseEntry* admit_successor(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept;
  void update(BaseEntry& e, const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept;
  // Promotes e to the candidate tier when a rule of 3.4 holds (or `force`: a detector needs
  // it, e.g. a tunneling suspect or a pending disappearance); returns the candidate or null.
  CandidateEntry* maybe_promote(BaseEntry& e, const LookupEvent& ev, Day day, bool reactivated,
                                bool force = false) noexcept;
  Finding& emit(Detector d, std::string_view event, std::string_view domain,
                std::int64_t logical_ns, double score, Severity severity);

  // daily.cpp: the day-level detectors (4.1, 4.4, 4.5, 4.9) on a candidate's lookup event, on
  // its raw queries, and at the day boundary.
  void daily_on_lookup(BaseEntry& e, CandidateEntry& c, const LookupEvent& ev, Day day,
                       std::int64_t logical_ns) noexcept;
  void daily_on_query(CandidateEntry& c, const LookupEvent& ev, Day day) noexcept;
  void daily_on_response(CandidateEntry& c, const LookupEvent& ev) noexcept;
  // burst (4.4) on every base entry's lookup event: fires once a day as soon as the day's count
  // meets the rule against the baseline end_of_day left.
  void burst_on_lookup(BaseEntry& e, const LookupEvent& ev, Day day,
                       std::int64_t logical_ns) noexcept;
  [[nodiscard]] Vantage vantage() const noexcept;
  // The day-level detectors of one candidate at the boundary of `closed` (daily.cpp).
  void daily_end_of_day(BaseEntry& e, CandidateEntry& c, Day closed,
                        std::int64_t logical_ns) noexcept;
  // covert_pair for one candidate (4.9): at the day boundary, and at once (`immediate`) on a
  // disappearance or successor event.
  void evaluate_covert(BaseEntry& e, CandidateEntry& c, Day day, std::int64_t logical_ns,
                       bool immediate) noexcept;

  // events.cpp: the event-level detectors (4.6, 4.7, 4.8) on raw queries and responses.
  void events_on_query(BaseEntry* e, const LookupEvent& ev, Day day,
                       std::int64_t logical_ns) noexcept;
  void events_on_response(BaseEntry& e, const LookupEvent& ev, Day day,
                          std::int64_t logical_ns) noexcept;

  friend struct EventDetectors;  // events.cpp's helpers

  static void add(std::atomic<std::uint64_t>& c, std::int64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(n),
            std::memory_order_relaxed);
  }

  // Watch keys and prefixes of the allowlist from options_ (the constructor and reconfigure()).
  void take_lists();

  const DetectOptions* options_;
  std::uint64_t seed_;  // the domain hash's
  QuerierConcentrationParams qc_;
  DormantReactivationParams dr_;
  NewlyObservedParams no_;
  std::unique_ptr<SharedState> own_shared_;  // when none was given
  SharedState* shared_;
  Day first_day_ = 0;  // the shard's first lookup day: the newly_observed warm-up starts there
  double population14_ = 0;       // end_of_day's population14, for covert_pair's gate
  std::vector<Cidr> allow_orgs_;  // export.allowlist_orgs given as prefixes or addresses
  std::vector<std::string> allow_org_names_;  // and those given as org_map names
  const OrgResolver* orgs_ = nullptr;
  std::uint64_t beacon_fired_ = 0, covert_passed_ = 0;  // since the last day boundary
  std::uint64_t sets_;
  std::vector<BaseEntry> base_;
  std::vector<CandidateEntry> candidates_;
  static constexpr std::size_t kCandidateSample = 64;
  std::size_t candidate_hand_ = 0;   // where the next search for a candidate slot starts
  std::size_t candidates_used_ = 0;  // slots filled since start (all, once a search finds none)
  std::vector<WatchEntry> watch_;
  std::vector<std::uint64_t> watch_keys_;  // the configured watchlist's domain hashes
  std::vector<std::string> watch_names_;
  SeenFilter seen_;
  Doorkeeper doorkeeper_;
  Counters counters_;
  std::vector<Finding> findings_;
};

}  // namespace dnsmon::detect
