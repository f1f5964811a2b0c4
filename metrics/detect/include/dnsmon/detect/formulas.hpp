// The detectors' mathematics (docs/detection.md sections 2 and 4): scores, fire rules and the
// small per-domain state machines, as pure functions over plain spans and small structs. The
// detection engine owns the tables, the clock and the events; it hands these functions a domain's
// counters as it keeps them (daily counts oldest first, a ring of event timestamps unrolled oldest
// first, hourly counts, per-org counts) and turns the results into events. Every function names
// the spec section it implements; thresholds and weights come from params.hpp.
//
// Time is logical time in seconds (double) or logical day indices (std::int64_t, days since the
// Unix epoch or any fixed origin: only differences matter).
//
// Thread-safety: pure functions; the state structs have one writer (the engine's shard).
// Allocation: none. Functions that need scratch space (sorting deltas, pairwise slopes) use
// fixed stack buffers and read at most the newest kMaxRingEvents timestamps / kMaxBlocks blocks.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dnsmon/detect/params.hpp"

namespace dnsmon::detect {

inline constexpr double kSecondsPerHour = 3600.0;
inline constexpr double kSecondsPerDay = 86400.0;

// ---------------------------------------------------------------------------------------------
// Severities (4.0)

enum class Severity : std::uint8_t { Info, Low, Medium, High, Critical };

[[nodiscard]] std::string_view to_string(Severity s) noexcept;

// 4.0: info < 0.4 <= low < 0.6 <= medium < 0.8 <= high. Never Critical (reserved for covert_pair).
[[nodiscard]] Severity severity_for_score(double score) noexcept;

// The fixed severities of 4.1–4.8 (covert_pair, disappearance persisting and successor_name
// depend on the case: covert_pair_severity(), DisappearanceEvent::severity, successor_severity()).
inline constexpr Severity kQuerierConcentrationSeverity = Severity::Info;
inline constexpr Severity kDormantReactivationSeverity = Severity::Low;
inline constexpr Severity kNewlyObservedSeverity = Severity::Info;
inline constexpr Severity kBurstSeverity = Severity::Low;
inline constexpr Severity kBeaconSeverity = Severity::Info;
inline constexpr Severity kTunnelingSeverity = Severity::High;

// ---------------------------------------------------------------------------------------------
// Descriptive statistics (2.6)

// Mean and population standard deviation; {0, 0} for an empty span.
struct MeanSd {
  double mean = 0;
  double sd = 0;
};

[[nodiscard]] MeanSd mean_sd(std::span<const double> xs) noexcept;
[[nodiscard]] MeanSd mean_sd(std::span<const std::uint32_t> xs) noexcept;

// Coefficient of variation sigma/mu (population sigma); 0 when the mean is 0 or the span empty.
[[nodiscard]] double coefficient_of_variation(std::span<const double> xs) noexcept;

// 2.6 Fano factor Var(N)/E(N) of counts per bin (population variance); 0 when the mean is 0.
[[nodiscard]] double fano_factor(std::span<const std::uint32_t> counts) noexcept;

// 2.6 Goh–Barabási burstiness B = (CV - 1)/(CV + 1).
[[nodiscard]] double burstiness(double cv) noexcept;

// 2.6 Kim–Jo finite-size burstiness A_n over n inter-event times with coefficient of variation
// cv (population sigma, whose maximum for n values is sqrt(n - 1), where A_n = 1). 0 for n < 2.
[[nodiscard]] double burstiness_kim_jo(double cv, std::size_t n) noexcept;

// Median of a sorted span (mean of the two middle values for an even count); 0 when empty.
[[nodiscard]] double median_sorted(std::span<const double> sorted) noexcept;

// Quantile q in [0, 1] of a sorted span by linear interpolation between order statistics
// (h = (n - 1)·q, the "R-7" definition numpy and ClickHouse's quantileExactInclusive use).
[[nodiscard]] double quantile_sorted(std::span<const double> sorted, double q) noexcept;

// ---------------------------------------------------------------------------------------------
// beacon (2.1, 2.6, 4.5)

// The timestamps a beacon evaluation reads at most (the newest ones); BeaconParams::ring is 256.
inline constexpr std::size_t kMaxRingEvents = 1024;
inline constexpr std::size_t kHoursPerDay = 24;

// 2.1 RITA v5 timestamp score over the sorted non-zero inter-arrival deltas of `timestamps_s`
// (non-decreasing, oldest first):
//   Bowley = (Q1 + Q3 - 2·Q2)/(Q3 - Q1), set to 0 when Q3 - Q1 < 10 s, Q2 == Q1 or Q2 == Q3;
//   skew_score = 1 - |Bowley|; MAD = median(|Δ - median Δ|);
//   mad_score = max(0, (median - MAD)/median) when median >= 1 s, else 1 (RITA's default);
//   ts_score = round((skew_score + mad_score)/2, 3 decimals).
// RITA v5 has no connection-count term (that was RITA legacy). Returns 0 with fewer than 4
// timestamps or fewer than 3 non-zero deltas. Quartiles as quantile_sorted().
[[nodiscard]] double rita_ts_score(std::span<const double> timestamps_s) noexcept;

// 4.5 hist_score = max(0, 1 - CV) of the event counts in the 24 hourly bins of the last 24
// logical hours (any number of bins is accepted; the engine passes 24). 0 when all are empty.
[[nodiscard]] double beacon_hist_score(std::span<const std::uint32_t> hourly_counts) noexcept;

// 4.5 dur_score = max(coverage, consistency): coverage = (last - first event)/24 h, capped at 1;
// consistency = longest run of consecutive non-empty hourly bins / 12, capped at 1; 0 when fewer
// than 6 bins are non-empty. `hourly_counts` oldest first (not circular).
[[nodiscard]] double beacon_dur_score(double first_event_s, double last_event_s,
                                      std::span<const std::uint32_t> hourly_counts) noexcept;

// 4.5 vantage: at an authoritative server a resolver's cache refreshes look periodic.
enum class Vantage : std::uint8_t { ClientSide, AuthoritativeSide };

enum class TimingClass : std::uint8_t {
  Insufficient,  // fewer than BeaconParams::min_events timestamps
  Machine,       // beacon_score >= machine_score or CV <= machine_cv
  CacheRefresh,  // authoritative vantage and |median Δ - TTL| <= 0.1·TTL: neither beacon nor human
  HumanLike,     // CV >= human_cv
  Other,
};
[[nodiscard]] std::string_view to_string(TimingClass c) noexcept;

struct BeaconInput {
  std::span<const double> timestamps_s;          // event ring unrolled, oldest first, dedup'd
  std::span<const std::uint32_t> hourly_counts;  // the last 24 logical hours, oldest first
  Vantage vantage = Vantage::ClientSide;
  std::uint32_t answer_ttl_s = 0;  // the domain's answer TTL (0: unknown; no cache_refresh label)
};

struct BeaconResult {
  std::size_t n = 0;      // timestamps read (at most kMaxRingEvents, the newest)
  double ts_score = 0;    // rita_ts_score
  double hist_score = 0;  // beacon_hist_score
  double dur_score = 0;   // beacon_dur_score
  double score = 0;       // weights.ts·ts + weights.hist·hist + weights.dur·dur
  double period_s = 0;    // median of all deltas
  double cv = 0;          // CV of all deltas (zero ones included)
  double burstiness = 0;  // B (2.6)
  double a_n = 0;         // Kim–Jo A_n over the deltas (2.6)
  double fano_1h = 0;     // fano_factor(hourly_counts)
  TimingClass timing = TimingClass::Insufficient;
  bool fires = false;  // 4.5: Machine and n >= min_events; severity info, score = score
};

// 4.5 beacon score, period, timing statistics and the machine/human/cache_refresh class.
// dur_score's coverage runs from the first ring event within 24 h of the newest one to the newest.
// The human-like class applies to the domain-level W14 CV; the engine passes that ring for it.
[[nodiscard]] BeaconResult evaluate_beacon(const BeaconInput& in, const BeaconParams& p) noexcept;

// ---------------------------------------------------------------------------------------------
// burst, acceleration, CUSUM, Holt–Winters (2.4, 4.4)

// Per-domain daily EWMA baseline (kept in the base entry).
struct BurstState {
  double mu = 0;
  double v = 0;
  std::uint32_t consecutive_fires = 0;
  bool initialised = false;
};

struct BurstResult {
  double z = 0;
  double score = 0;          // min(1, z/8) when fired, else 0
  bool fires = false;        // severity low
  bool level_shift = false;  // the 7th consecutive fire day: baseline moved to x
};

// 4.4 burst, called once per logical day per domain with that day's event count x (zero days
// included) and the days since the domain's first sighting. The first call seeds mu = x, v = 0.
// Fires when days_since_first_seen >= min_history_days, x >= min_count, x >= min_ratio·(mu + 1)
// and z = (x - mu)/sqrt(max(v, mu, 1)) >= min_z. A fire day leaves mu, v frozen; after
// level_shift_days consecutive fire days mu = v = x and level_shift is set. Otherwise
//   v = (1 - α)(v + α(x - mu)²),  mu = mu + α(x - mu)   (2.4).
[[nodiscard]] BurstResult burst_update(BurstState& s, std::uint32_t x,
                                       std::int64_t days_since_first_seen,
                                       const BurstParams& p) noexcept;

// Theil–Sen slope: the median of the pairwise slopes (y_j - y_i)/(j - i), i < j, over equally
// spaced points; 0 with fewer than 2. Reads at most the last kMaxBlocks points.
inline constexpr std::size_t kMaxBlocks = 64;
[[nodiscard]] double theil_sen_slope(std::span<const std::uint32_t> ys) noexcept;

// 4.4 acceleration over an episode's complete 7-day block counts b_0, b_1, ... (oldest first):
// >= min_blocks blocks, Theil–Sen slope > 0 and b_last + b_prev >= ratio·(b_0 + b_1).
// The engine keeps the flag sticky for the episode.
[[nodiscard]] bool accelerating(std::span<const std::uint32_t> weekly_blocks,
                                const AccelerationParams& p) noexcept;

// 4.9 intermittent: Fano factor of the episode's weekday daily counts >= min_fano with at least
// min_weekdays weekdays.
[[nodiscard]] bool intermittent(std::span<const std::uint32_t> weekday_counts,
                                const IntermittencyParams& p) noexcept;

// 4.4 optional Poisson CUSUM for slow ramps: λ1 = 2·λ0, S = max(0, S + x·ln 2 - λ0), alarm when
// S > h; S restarts from 0 after an alarm, so a ramp alarms once per h of evidence.
struct PoissonCusum {
  double s = 0;
  double h = 5.0;
  [[nodiscard]] bool update(double x, double lambda0) noexcept;
};

// 2.4 / 4.4 aggregate_anomaly: additive Holt–Winters with Brutlag confidence bands over an
// hourly series with a 24-point season. The first season only seeds level, seasonal offsets and
// deviations (mean absolute deviation of the first season); bands are checked from the second
// season on. A point is out of band when |x - x̂| > δ·d_{t-m}; the alarm is `>= min_out of the
// last window points out of band`.
struct HoltWintersParams {
  double alpha = 0.1;
  double beta = 0.01;
  double gamma = 0.1;
  double delta = 3.0;
  std::uint32_t window = 12;
  std::uint32_t min_out = 6;
};

class HoltWinters {
 public:
  static constexpr std::size_t kSeason = 24;

  struct Step {
    double forecast = 0;
    double band = 0;       // δ·d_{t-m}
    bool checked = false;  // false during the first season
    bool out_of_band = false;
    bool alarm = false;  // >= min_out of the last `window` points out of band
  };

  explicit HoltWinters(HoltWintersParams p = {}) noexcept : p_(p) {}

  // min_band: a floor of the band (aggregate_anomaly: the counting noise of the hour's value).
  Step add(double x, double min_band = 0) noexcept;
  // The forecast of the next point (0 in the first season).
  [[nodiscard]] double forecast() const noexcept;
  // A missing point (a ratio of an hour without responses): the season moves on and the forecast
  // with it, nothing is learnt, the point counts as in band. In the first season the previous
  // point is repeated (0 for the first).
  void skip() noexcept;

  [[nodiscard]] std::uint64_t points() const noexcept { return n_; }

  // Points out of band among the last `window`.
  [[nodiscard]] std::uint32_t recent_out() const noexcept;

  // Whether every value of the model is finite (a loaded checkpoint's check).
  [[nodiscard]] bool finite() const noexcept;

 private:
  HoltWintersParams p_;
  double level_ = 0, trend_ = 0;
  std::array<double, kSeason> season_{}, dev_{};
  std::uint64_t n_ = 0;
  std::uint64_t out_bits_ = 0;  // bit i: point n_-1-i was out of band
};

// ---------------------------------------------------------------------------------------------
// tunneling (2.2, 4.6)

// Shannon entropy H = -Σ p_c log2 p_c over the bytes of `s`, in bits per character; 0 if empty.
[[nodiscard]] double shannon_entropy(std::string_view s) noexcept;

// HyperLogLog with p = 6: 64 one-byte registers. Input is a 64-bit hash of the FQDN: the
// lower-cased query name without its trailing dot, hashed with dnsmon::detail::hash_bytes
// (add_name() uses kDefaultSketchSeed; the engine may hash with its own per-process seed and call
// add_hash(), as long as one unit's names all use one seed). Register index = the hash's top 6
// bits, rank = 1 + leading zeros of the remaining 58 bits. Standard error about 13 %.
class Hll64 {
 public:
  void add_hash(std::uint64_t h) noexcept;
  void add_name(std::string_view fqdn) noexcept;
  [[nodiscard]] double estimate() const noexcept;

  void clear() noexcept { reg_.fill(0); }

  [[nodiscard]] const std::array<std::uint8_t, 64>& registers() const noexcept { return reg_; }

 private:
  std::array<std::uint8_t, 64> reg_{};
};

// RR types counted as "odd" for tunneling (4.6): TXT, NULL, ANY, CNAME.
[[nodiscard]] bool odd_qtype(std::uint16_t qtype) noexcept;

// One (org, registrable domain) unit's counters for the current logical hour. L̄ and Ĥ are means
// over the unit's queries (not over distinct names, which an HLL cannot single out).
struct TunnelHour {
  Hll64 names;
  std::uint32_t queries = 0;
  std::uint64_t prefix_len_sum = 0;
  double entropy_sum = 0;  // over prefixes of length >= kMinEntropyPrefix
  std::uint32_t entropy_n = 0;
  std::uint32_t odd = 0;
  bool fired = false;  // one event per unit per hour

  static constexpr std::size_t kMinEntropyPrefix = 16;

  // One query: `prefix` = qname minus the registrable domain (without the joining dot),
  // `fqdn_hash` as Hll64 documents.
  void add(std::string_view prefix, std::uint16_t qtype, std::uint64_t fqdn_hash) noexcept;

  void clear() noexcept { *this = TunnelHour{}; }
};

struct TunnelStats {
  double unique = 0;           // U
  double mean_prefix_len = 0;  // L̄
  double mean_entropy = 0;     // Ĥ (prefixes >= 16 chars; 0 when there are none)
  double odd_share = 0;        // odd
  double info_bytes = 0;       // I = U·L̄·Ĥ/8 per hour
};

[[nodiscard]] TunnelStats tunnel_stats(const TunnelHour& h) noexcept;

struct TunnelVerdict {
  bool fires = false;  // (U >= 300 ∧ L̄ >= 24 ∧ Ĥ >= 3.0) ∨ I >= 64 KiB/h; severity high
  double score = 0;    // max(0.8, min(1, max(U/1000, I/262144))) when fired
  bool txt_heavy = false;  // odd >= 0.5 (a reason, not a requirement)
};

[[nodiscard]] TunnelVerdict tunneling_verdict(const TunnelStats& s,
                                              const TunnelingParams& p) noexcept;

// 4.6 the covert_pair veto: any tunneling fire in W14, more than 8 distinct FQDNs in W14, or an
// odd-qtype share above 0.05. True = vetoed.
inline constexpr std::uint32_t kMaxDistinctFqdns14 = 8;
inline constexpr double kMaxOddShare14 = 0.05;
[[nodiscard]] bool tunneling_veto(bool tunneling_fire_w14, std::uint32_t distinct_fqdns14,
                                  double odd_share14) noexcept;

// ---------------------------------------------------------------------------------------------
// querier_concentration (2.5, 4.1)

struct Concentration {
  std::uint64_t events = 0;     // Σ org counts + others
  double top2_share = 0;        // S2 = (c_(1) + c_(2))/events
  double hhi = 0;               // Σ s_i² over the listed orgs
  double entropy_norm = 0;      // H_n = -Σ s_i ln s_i / ln D over the listed orgs (0 for D <= 1)
  double eff_orgs = 0;          // 1/HHI (0 when HHI is 0)
  std::uint32_t orgs = 0;       // D: listed orgs with a non-zero count
  std::uint32_t orgs_1pct = 0;  // listed orgs with >= 1 % of events
};

// Per-org event counts over W14 (any order; the candidate tier's exact counts) plus `others`,
// events not attributed to a listed org (the base table's "others" bucket), which count in the
// denominator only.
[[nodiscard]] Concentration concentration(std::span<const std::uint32_t> org_counts,
                                          std::uint64_t others = 0) noexcept;

struct ConcentrationVerdict {
  bool flagged = false;
  double score = 0;  // S2 when flagged; severity info
};

// 4.1 flag: events14 >= 50 ∧ active_days14 >= 5 ∧ S2 >= 0.95 ∧ orgs_1pct <= 3 ∧ population14 >=
// 100.
[[nodiscard]] ConcentrationVerdict querier_concentration(
    const Concentration& c, std::uint32_t active_days14, std::uint64_t population14,
    const QuerierConcentrationParams& p) noexcept;

// 4.1 querier_concentration_any: >= 1 event in the base 8-day ring and a decayed top-2 org share
// >= min_top2_share (no volume gate).
[[nodiscard]] bool querier_concentration_any(double events_in_ring, double decayed_top2_share,
                                             const QuerierConcentrationParams& p) noexcept;

// ---------------------------------------------------------------------------------------------
// dormant_reactivation (4.2), newly_observed (4.3)

struct Reactivation {
  std::int64_t today = 0;
  std::int64_t run_start = 0;            // b: first day of the current activity run
  std::int64_t previous_active_day = 0;  // last active day before b
  std::int64_t first_seen_day = 0;
  std::uint32_t run_events = 0;       // events in [b, today]
  std::uint32_t run_active_days = 0;  // distinct active days in [b, today]
};

// 4.2: b - previous_active_day >= min_gap_days, b - first_seen_day >= min_history_days,
// today within [b, b + post_window_days - 1], and >= min_events events on >= min_active_days days.
[[nodiscard]] bool dormant_reactivation_fires(const Reactivation& r,
                                              const DormantReactivationParams& p) noexcept;

// 4.2 score min(1, 0.5 + log2(1 + gap)/log2(1 + 180)/2); severity low.
[[nodiscard]] double dormant_reactivation_score(std::int64_t gap_days) noexcept;

// 4.3: a first sighting at least warmup_days after the engine's origin day, followed by
// >= min_events_7d events within the 7 days [first_seen_day, first_seen_day + 6] (today must lie
// in them: the event is emitted as it happens).
[[nodiscard]] bool newly_observed_fires(std::int64_t origin_day, std::int64_t first_seen_day,
                                        std::int64_t today, std::uint32_t events_since_first_seen,
                                        const NewlyObservedParams& p) noexcept;

// ---------------------------------------------------------------------------------------------
// disappearance (4.7)

enum class FailureKind : std::uint8_t { NxDomain, ServFail, Refused, NoData, Timeout };
[[nodiscard]] std::string_view to_string(FailureKind k) noexcept;

enum class DisappearanceEventKind : std::uint8_t { None, Transition, Persisting };

struct DisappearanceEvent {
  DisappearanceEventKind kind = DisappearanceEventKind::None;
  double score = 0;
  Severity severity = Severity::Info;
};

// One domain's success/failure history. Successes are counted per logical day in a 7-day ring so
// successes_7d is the count over the 7 days ending at the current event's day. Each failing
// period emits at most one Transition and one Persisting event; any success resets it.
struct DisappearanceState {
  std::array<std::uint32_t, 7> success_days{};
  std::int64_t success_ring_day = INT64_MIN;  // day of the ring's newest slot
  double last_success_s = -1;
  std::uint32_t failures_since_success = 0;
  double fail_since_s = 0;  // first failure after the last success
  FailureKind fail_kind = FailureKind::NxDomain;
  bool transitioned = false;
  bool persisted = false;

  [[nodiscard]] std::uint32_t successes_7d(double now_s) const noexcept;

  void on_success(double now_s) noexcept;

  // 4.7 Transition when successes_7d >= min_successes_7d and failures >= min_failures: score 0.5
  // (+0.2 when querier_concentration was flagged in the last 14 days), severity medium.
  // Persisting when additionally failures >= persist_failures and now - fail_since >= persist_days:
  // score = transition score + 0.3 (<= 1), severity high when the domain's covert_pair reached
  // medium, else medium. A timeout counts only when count_timeouts.
  DisappearanceEvent on_failure(double now_s, FailureKind kind, bool concentration_flagged_14d,
                                bool covert_pair_medium, const DisappearanceParams& p) noexcept;

 private:
  void advance_ring(std::int64_t day) noexcept;
};

// ---------------------------------------------------------------------------------------------
// successor_name (4.8)

struct SuccessorCandidate {
  bool ip_recently_dead = false;  // an answer IP of n is in the recently-dead map
  double dead_age_days = 0;       // how long ago d died
  bool first_querier_in_dead_top2 = false;
  std::uint32_t domains_for_ip_30d = 0;  // registrable domains seen on that IP in 30 days
};

inline constexpr double kSuccessorScore = 0.9;

// 4.8: ip_recently_dead ∧ dead_age_days <= max_age_days ∧ first querier's org in d's top-2 ∧
// domains_for_ip_30d <= max_domains_per_ip. Score kSuccessorScore; severity successor_severity().
[[nodiscard]] bool successor_name_matches(const SuccessorCandidate& c,
                                          const SuccessorParams& p) noexcept;
[[nodiscard]] Severity successor_severity(bool dead_had_covert_pair_medium) noexcept;

// ---------------------------------------------------------------------------------------------
// covert_pair (4.9, 4.12)

struct CovertGateInput {
  std::uint64_t events14 = 0;
  std::uint32_t active_days14 = 0;
  double top2_share14 = 0;
  std::uint32_t orgs_1pct = 0;
  std::uint64_t population14 = 0;
  std::uint32_t distinct_fqdns14 = 0;
  double odd_share14 = 0;
  bool tunneling_fire_w14 = false;
  bool machine = false;  // domain-level TimingClass::Machine
  double cv14 = 0;       // domain-level CV of Δ over W14
  bool allowlisted = false;
};

// Hysteresis memory: the last evaluation days on which volume / timing were met.
struct CovertGateState {
  std::int64_t volume_met_day = INT64_MIN;
  std::int64_t timing_met_day = INT64_MIN;
  std::int64_t passed_day = INT64_MIN;  // the last evaluation day the whole gate passed
};

struct CovertGate {
  bool volume = false;  // met today or on an evaluation day in the preceding 14 days
  bool concentration = false;
  bool population = false;
  bool structure = false;  // ¬tunneling_veto
  bool timing = false;     // met today or on an evaluation day in the preceding 14 days
  bool allowed = false;    // not allow-listed

  [[nodiscard]] bool passed() const noexcept {
    return volume && concentration && population && structure && timing && allowed;
  }
};

// 4.9 gate with its hysteresis (window = querier_concentration.window_days), evaluated on `day`.
// Volume and timing as met on `day` are recorded in `s` whatever the other conditions. The
// hysteresis holds an open gate open; it does not open one: volume or timing met only on an
// earlier day count while the whole gate passed on an evaluation day of the window, so a domain
// whose traffic dies away is not judged on the handful of lookups left (docs/detection.md).
[[nodiscard]] CovertGate covert_pair_gate(CovertGateState& s, std::int64_t day,
                                          const CovertGateInput& in,
                                          const QuerierConcentrationParams& qc,
                                          const BeaconParams& beacon) noexcept;

struct CovertLifecycle {
  bool reactivated = false;      // 4.2 episode mark
  bool newly_observed = false;   // 4.3 episode mark (ignored when reactivated)
  bool accelerating = false;     // 4.4, sticky
  bool intermittent = false;     // 4.9 (intermittent())
  bool disappeared = false;      // 4.7 transition
  bool persisting = false;       // 4.7 persisting (replaces the transition bonus)
  bool successor_found = false;  // 4.8 a successor of this domain
};

// 4.9 score: 0 when the gate fails, else gate + lifecycle weights, clipped to 1.
[[nodiscard]] double covert_pair_score(bool gate_passed, const CovertLifecycle& l,
                                       const CovertPairWeights& w) noexcept;

// 4.9 severity: >= 0.95 critical, >= high high, >= medium medium, else low.
[[nodiscard]] Severity covert_pair_severity(double score, const CovertPairParams& p) noexcept;

// 4.12 item 7: at most max_new_per_day domains newly reaching covert_pair >= medium per logical
// day. The engine asks admit() once when a domain first crosses medium; false = suppressed
// (counted as severity "suppressed"), and the domain may be admitted on a later day.
struct NewAlertCap {
  std::int64_t day = INT64_MIN;
  std::uint32_t admitted = 0;
  std::uint64_t suppressed = 0;
  [[nodiscard]] bool admit(std::int64_t today, const CovertPairParams& p) noexcept;
};

}  // namespace dnsmon::detect
