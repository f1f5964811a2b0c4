// The day-level detectors (detection spec 4.1, 4.4, 4.5, 4.9; docs/detection.md):
// - on a candidate's lookup events and raw queries: the timestamp ring, hourly counts, distinct
//   names and odd query types kept in CandidateEntry::daily;
// - burst on every base entry's lookup event, against the baseline the day boundary updates;
// - at each logical day boundary: the organisation counts' decay, the base rate
//   (querier_concentration, querier_concentration_any), the burst baselines, and for each
//   candidate beacon, acceleration, intermittency and covert_pair (with its daily cap).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <span>

#include "dnsmon/common/hash.hpp"
#include "dnsmon/detect/normalize.hpp"
#include "dnsmon/detect/tables.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kNsPerHour = 3600 * kNsPerSecond;
constexpr std::int64_t kNsPerDay = 24 * kNsPerHour;
constexpr unsigned kWindow = 14;        // W14
constexpr unsigned kBurstCatchUp = 64;  // zero days a baseline catches up at most

std::uint64_t mix(std::uint64_t h, std::uint64_t i) noexcept {
  h ^= (i + 1) * 0x9e3779b97f4a7c15ULL;
  h ^= h >> 31U;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29U;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 32U;
  return h;
}

// c·k rounded down or up with the probability of the fraction (a deterministic draw from
// `draw`), so that small counts decay as large ones do on average and reach 0.
std::uint16_t decay(std::uint16_t c, double k, std::uint64_t draw) noexcept {
  const double x = c * k;
  const double u = static_cast<double>(draw >> 11U) * 0x1.0p-53;
  return static_cast<std::uint16_t>(std::min(65535.0, std::floor(x + u)));
}

// Events of a candidate on day d (0 outside its 64-day ring).
std::uint32_t day_events(const CandidateEntry& c, int d) noexcept {
  if (d <= 0 || d > c.last_active || c.last_active - d >= 64) {
    return 0;
  }
  return c.day_ring[static_cast<unsigned>(d) % 64];
}

struct Volume {
  std::uint32_t events = 0, active = 0;
};

Volume volume14(const CandidateEntry& c, Day today) noexcept {
  Volume v;
  for (unsigned back = 0; back < kWindow; ++back) {
    const std::uint32_t n = day_events(c, static_cast<int>(today) - static_cast<int>(back));
    v.events += n;
    v.active += n != 0 ? 1U : 0U;
  }
  return v;
}

// Days since 1970-01-01 (a Thursday): Monday..Friday.
bool weekday(int d) noexcept {
  return (d + 3) % 7 < 5;
}

// The newest `limit` timestamps of the ring (beacon.ring) at or after from_ns, in seconds,
// sorted; returns how many.
std::size_t unroll(const DailyState& s, std::int64_t from_ns, std::size_t limit,
                   std::array<double, DailyState::kRing>& out) noexcept {
  std::size_t n = 0;
  const std::size_t count = std::min<std::size_t>(s.ts_count, limit);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t slot = (s.ts_next + DailyState::kRing - count + i) % DailyState::kRing;
    const std::int64_t ns =
        s.ts_base_ns + static_cast<std::int64_t>(s.ts[slot]) * DailyState::kTick;
    if (ns >= from_ns) {
      out[n++] = static_cast<double>(ns) / static_cast<double>(kNsPerSecond);
    }
  }
  // The ring is in arrival order, which is time order but for workers' events crossing.
  const std::span<double> read(out.data(), n);
  if (!std::is_sorted(read.begin(), read.end())) {
    std::sort(read.begin(), read.end());
  }
  return n;
}

// Lookup events in the 24 logical hours of day `d`, oldest first.
std::array<std::uint32_t, DailyState::kHours> hours_of(const DailyState& s, Day d) noexcept {
  std::array<std::uint32_t, DailyState::kHours> out{};
  for (std::size_t h = 0; h < DailyState::kHours; ++h) {
    const std::uint64_t hour = std::uint64_t{d} * 24 + h;
    if (hour <= s.hour && s.hour - hour < DailyState::kHours) {
      out[h] = s.hourly[hour % DailyState::kHours];
    }
  }
  return out;
}

// Distinct names of the last 14 days, kFqdns + 1 when the set overflowed in them.
std::uint32_t distinct_fqdns14(const DailyState& s, Day today) noexcept {
  if (s.fqdn_overflow_day != 0 && today - s.fqdn_overflow_day < static_cast<int>(kWindow)) {
    return DailyState::kFqdns + 1;
  }
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < DailyState::kFqdns; ++i) {
    n += s.fqdn[i] != 0 && today - s.fqdn_day[i] < static_cast<int>(kWindow) ? 1U : 0U;
  }
  return n;
}

double odd_share14(const DailyState& s, Day today) noexcept {
  std::uint64_t all = 0, odd = 0;
  for (unsigned back = 0; back < kWindow; ++back) {
    const int d = static_cast<int>(today) - static_cast<int>(back);
    if (d <= 0 || d > s.query_day || s.query_day - d >= static_cast<int>(kWindow)) {
      continue;
    }
    all += s.queries[static_cast<unsigned>(d) % kWindow];
    odd += s.odd[static_cast<unsigned>(d) % kWindow];
  }
  return all > 0 ? static_cast<double>(odd) / static_cast<double>(all) : 0;
}

bool prefix_holds(const Cidr& p, const std::array<std::uint8_t, 16>& a) noexcept {
  for (unsigned bit = 0; bit < p.bits; bit += 8) {
    const unsigned take = std::min(8U, p.bits - bit);
    const auto mask = static_cast<std::uint8_t>(0xffU << (8 - take));
    if ((p.addr[bit / 8] & mask) != (a[bit / 8] & mask)) {
      return false;
    }
  }
  return true;
}

bool domain_allowlisted(std::string_view domain, const std::vector<std::string>& suffixes) {
  for (const std::string& s : suffixes) {
    if (domain == s || (domain.size() > s.size() && domain.ends_with(s) &&
                        domain[domain.size() - s.size() - 1] == '.')) {
      return true;
    }
  }
  return false;
}

// The end of logical day d (its last second): when a day boundary's findings are dated.
std::int64_t day_end_ns(Day d) noexcept {
  return (static_cast<std::int64_t>(d) + 1) * kNsPerDay - kNsPerSecond;
}

BurstState burst_state(const BaseEntry& e) noexcept {
  return {e.ewma_mu, e.ewma_var, e.fire_days, e.last_evaluated != 0};
}

// Events of a base entry on day d (0 outside its 8-day ring).
std::uint32_t base_day_events(const BaseEntry& e, int d) noexcept {
  if (d <= 0 || d > e.last_active || e.last_active - d >= 8) {
    return 0;
  }
  return e.day_ring[static_cast<unsigned>(d) % 8];
}

constexpr std::uint8_t kBurstFiredToday = 1;  // BaseEntry::spare bits
constexpr std::uint8_t kBurstLevelShift = 2;

}  // namespace

// --- On the lookup path -------------------------------------------------------------------

void DomainState::daily_on_lookup(BaseEntry& /*e*/, CandidateEntry& c, const LookupEvent& /*ev*/,
                                  Day /*day*/, std::int64_t logical_ns) noexcept {
  DailyState& s = c.daily;
  // The timestamp ring.
  if (s.ts_count == 0) {
    s.ts_base_ns = logical_ns;
  }
  std::int64_t ticks = (logical_ns - s.ts_base_ns) / DailyState::kTick;
  if (ticks >= 0xffffffffLL) {
    // Move the base to the oldest timestamp held; a ring older than 490 days starts afresh.
    std::uint32_t oldest = 0xffffffffU;
    for (std::size_t i = 0; i < s.ts_count; ++i) {
      oldest = std::min(oldest,
                        s.ts[(s.ts_next + DailyState::kRing - s.ts_count + i) % DailyState::kRing]);
    }
    s.ts_base_ns += static_cast<std::int64_t>(oldest) * DailyState::kTick;
    for (auto& t : s.ts) {
      t = t >= oldest ? t - oldest : 0;
    }
    ticks = (logical_ns - s.ts_base_ns) / DailyState::kTick;
    if (ticks >= 0xffffffffLL) {
      s.ts_base_ns = logical_ns;
      s.ts_count = 0;
      ticks = 0;
    }
  }
  s.ts[s.ts_next] = static_cast<std::uint32_t>(std::max<std::int64_t>(ticks, 0));
  s.ts_next = static_cast<std::uint16_t>((s.ts_next + 1U) % DailyState::kRing);
  s.ts_count =
      static_cast<std::uint16_t>(std::min<std::size_t>(s.ts_count + 1U, DailyState::kRing));
  // The hourly counts.
  const auto hour = static_cast<std::uint32_t>(std::max<std::int64_t>(logical_ns / kNsPerHour, 0));
  if (hour > s.hour) {
    for (std::uint64_t h = std::uint64_t{s.hour} + 1; h <= hour && h <= s.hour + DailyState::kHours;
         ++h) {
      s.hourly[h % DailyState::kHours] = 0;
    }
    s.hour = hour;
  }
  if (s.hour - hour < DailyState::kHours) {
    std::uint16_t& n = s.hourly[hour % DailyState::kHours];
    n = static_cast<std::uint16_t>(std::min(0xffff, n + 1));
  }
}

void DomainState::daily_on_query(CandidateEntry& c, const LookupEvent& ev, Day day) noexcept {
  DailyState& s = c.daily;
  // Raw and odd-type queries per day.
  if (day != s.query_day) {
    if (day > s.query_day) {
      for (int d = s.query_day + 1; d <= day && d <= s.query_day + static_cast<int>(kWindow); ++d) {
        s.queries[static_cast<unsigned>(d) % kWindow] = 0;
        s.odd[static_cast<unsigned>(d) % kWindow] = 0;
      }
      s.query_day = day;
    } else if (s.query_day - day >= static_cast<int>(kWindow)) {
      return;
    }
  }
  const unsigned i = day % kWindow;
  s.queries[i] = static_cast<std::uint16_t>(std::min(0xffff, s.queries[i] + 1));
  if (odd_qtype(ev.qtype)) {
    s.odd[i] = static_cast<std::uint16_t>(std::min(0xffff, s.odd[i] + 1));
  }
  // Distinct names over 14 days.
  const auto h = static_cast<std::uint32_t>(detail::hash_bytes(ev.name())) | 1U;
  std::size_t free = DailyState::kFqdns;
  for (std::size_t k = 0; k < DailyState::kFqdns; ++k) {
    if (s.fqdn[k] == h) {
      s.fqdn_day[k] = std::max(s.fqdn_day[k], day);
      return;
    }
    if (free == DailyState::kFqdns &&
        (s.fqdn[k] == 0 || day - s.fqdn_day[k] >= static_cast<int>(kWindow))) {
      free = k;
    }
  }
  if (free == DailyState::kFqdns) {
    s.fqdn_overflow_day = day;
    return;
  }
  s.fqdn[free] = h;
  s.fqdn_day[free] = day;
}

void DomainState::daily_on_response(CandidateEntry& c, const LookupEvent& ev) noexcept {
  if (!ev.has(kSuccess) || ev.answer_count == 0) {
    return;
  }
  std::uint32_t ttl = 0xffffffffU;
  for (std::size_t i = 0; i < ev.answer_count && i < LookupEvent::kMaxAnswers; ++i) {
    ttl = std::min(ttl, ev.answers[i].ttl);
  }
  c.daily.answer_ttl_s = ttl;
}

void DomainState::burst_on_lookup(BaseEntry& e, const LookupEvent& ev, Day day,
                                  std::int64_t logical_ns) noexcept {
  const BurstParams& p = options_->detectors.burst;
  if (e.last_evaluated == 0 || day <= e.last_evaluated) {
    return;  // no baseline yet, or a late event of a day already evaluated
  }
  if ((e.spare & kBurstLevelShift) != 0) {
    e.spare = static_cast<std::uint8_t>(e.spare & ~kBurstLevelShift);
    Finding& f = emit(Detector::Burst, "level_shift", ev.domain(), logical_ns, 0, kBurstSeverity);
    f.reasons = kReasonLevelShift;
    f.detail("baseline", static_cast<double>(e.ewma_mu));
  }
  const std::uint32_t x = base_day_events(e, day);
  if ((e.spare & kBurstFiredToday) != 0 || x < p.min_count) {
    return;
  }
  // Yesterday's baseline, caught up over the days without a boundary since its last one.
  BurstState s = burst_state(e);
  for (unsigned d = e.last_evaluated + 1U, n = 0; d < day && n < kBurstCatchUp; ++d, ++n) {
    (void)burst_update(s, 0, static_cast<std::int64_t>(d) - e.first_seen, p);
  }
  const BurstResult r = burst_update(s, x, static_cast<std::int64_t>(day) - e.first_seen, p);
  if (!r.fires) {
    return;
  }
  e.spare |= kBurstFiredToday;
  Finding& f = emit(Detector::Burst, "burst", ev.domain(), logical_ns, r.score, kBurstSeverity);
  f.detail("count", std::int64_t{x});
  f.detail("baseline", static_cast<double>(e.ewma_mu));
  f.detail("z", r.z);
  if (e.candidate != 0) {
    candidates_[e.candidate - 1].marks.set_score(Detector::Burst, r.score, day);
  }
}

Vantage DomainState::vantage() const noexcept {
  return options_->vantage == "authoritative_side" ? Vantage::AuthoritativeSide
                                                   : Vantage::ClientSide;
}

// --- covert_pair (4.9, 4.12) ---------------------------------------------------------------

void DomainState::evaluate_covert(BaseEntry& e, CandidateEntry& c, Day day, std::int64_t logical_ns,
                                  bool immediate) noexcept {
  const CovertPairParams& cp = options_->detectors.covert_pair;
  const BeaconParams& bp = options_->detectors.beacon;
  DailyState& s = c.daily;
  const Volume v = volume14(c, day);
  const OrgSlots::Window w = c.orgs.window(day);
  const Concentration k = concentration(w.counts, w.others);

  CovertGateInput in;
  in.events14 = v.events;
  in.active_days14 = v.active;
  in.top2_share14 = k.top2_share;
  in.orgs_1pct = k.orgs_1pct;
  in.population14 = static_cast<std::uint64_t>(std::max(0.0, population14_));
  in.distinct_fqdns14 = distinct_fqdns14(s, day);
  in.odd_share14 = odd_share14(s, day);
  const auto tun = static_cast<std::size_t>(Detector::Tunneling);
  in.tunneling_fire_w14 = c.marks.score[tun] > 0 && c.marks.score_day[tun] != 0 &&
                          day - c.marks.score_day[tun] < static_cast<int>(kWindow);
  // Timing, domain level: the ring's events of W14.
  std::array<double, DailyState::kRing> ts{};
  const std::size_t n =
      unroll(s, (static_cast<std::int64_t>(day) - (kWindow - 1)) * kNsPerDay, bp.ring, ts);
  const auto hours = hours_of(s, day);
  BeaconInput bi;
  bi.timestamps_s = std::span<const double>(ts.data(), n);
  bi.hourly_counts = hours;
  bi.vantage = vantage();
  bi.answer_ttl_s = s.answer_ttl_s;
  const BeaconResult timing = evaluate_beacon(bi, bp);
  // The per-domain series show the domain-level timing of the last 14 days.
  c.marks.iat_cv = static_cast<float>(timing.cv);
  c.marks.burstiness = static_cast<float>(timing.a_n);
  c.marks.beacon_score = static_cast<float>(timing.score);
  c.marks.beacon_period_s = static_cast<float>(timing.period_s);
  in.machine = timing.timing == TimingClass::Machine;
  // Cache refreshes are neither machine nor human: they do not meet the timing condition.
  in.cv14 = timing.timing == TimingClass::CacheRefresh ? 0 : timing.cv;
  // Allow-listed: the domain by suffix, or every one of its top two organisations.
  const auto order = w.order();
  std::array<const OrgRef*, 2> top{};
  for (std::size_t i = 0; i < 2; ++i) {
    top[i] = w.counts[order[i]] > 0 ? &c.orgs.ref[order[i]] : nullptr;
  }
  // An organisation is allow-listed by its org_map name, or by a prefix holding its address.
  const auto allowed = [this](const OrgRef& r) {
    if (const OrgMapEntry* m = orgs_ != nullptr ? orgs_->mapped(r) : nullptr;
        m != nullptr && std::find(allow_org_names_.begin(), allow_org_names_.end(), m->name) !=
                            allow_org_names_.end()) {
      return true;
    }
    return std::any_of(allow_orgs_.begin(), allow_orgs_.end(),
                       [&r](const Cidr& p) { return prefix_holds(p, r.client); });
  };
  bool orgs_allowed = (!allow_orgs_.empty() || !allow_org_names_.empty()) && top[0] != nullptr;
  for (const OrgRef* r : top) {
    if (r != nullptr && orgs_allowed) {
      orgs_allowed = allowed(*r);
    }
  }
  in.allowlisted =
      orgs_allowed || domain_allowlisted(c.domain(), options_->exports.allowlist_domains);

  const CovertGate gate = covert_pair_gate(s.gate, day, in, qc_, bp);
  const std::uint8_t life = c.marks.lifecycle;
  CovertLifecycle l;
  l.reactivated = (life & CandidateMarks::kLifeReactivated) != 0;
  l.newly_observed = (life & CandidateMarks::kLifeNew) != 0;
  l.accelerating = (life & CandidateMarks::kLifeAccelerating) != 0;
  l.intermittent = (life & CandidateMarks::kLifeIntermittent) != 0;
  l.disappeared = (life & CandidateMarks::kLifeDisappeared) != 0;
  l.persisting = (life & CandidateMarks::kLifePersisting) != 0;
  l.successor_found = (life & CandidateMarks::kLifeSuccessorFound) != 0;
  const double score = covert_pair_score(gate.passed(), l, cp.weights);
  std::uint16_t reasons = 0;
  reasons |= l.reactivated ? kReasonReactivated : 0;
  reasons |= l.newly_observed && !l.reactivated ? kReasonNew : 0;
  reasons |= l.accelerating ? kReasonAccelerating : 0;
  reasons |= l.intermittent ? kReasonIntermittent : 0;
  reasons |= l.persisting ? kReasonDisappearedPersisting : (l.disappeared ? kReasonDisappeared : 0);
  reasons |= l.successor_found ? kReasonSuccessor : 0;
  c.marks.set_score(Detector::CovertPair, score, day);
  c.marks.reasons = reasons;
  if (gate.passed()) {
    c.last_flagged = day;
    covert_passed_ += 1;
  }
  if (!gate.passed() && !immediate) {
    return;
  }
  // A domain newly reaching medium counts against the day's cap, shared by the shards.
  bool suppressed = false;
  if (score >= cp.medium && c.marks.covert_max < CandidateMarks::units(cp.medium)) {
    const std::lock_guard lock(shared_->mutex);
    NewAlertCap& cap = shared_->covert_cap;
    // A shard still closing a day the others have left counts against the newest day.
    suppressed = !cap.admit(std::max<std::int64_t>(day, cap.day), cp);
  }
  if (!suppressed) {
    c.marks.covert_max = std::max(c.marks.covert_max, CandidateMarks::units(score));
    if (score >= cp.medium) {
      c.marks.lifecycle |= CandidateMarks::kLifeAutoWatched;
      e.flags |= BaseEntry::kWatched;
    }
  }
  Finding& f = emit(Detector::CovertPair, "score", c.domain(), logical_ns, score,
                    score > 0 ? covert_pair_severity(score, cp) : Severity::Info);
  f.suppressed = suppressed;
  f.reasons = reasons;
  for (const OrgRef* r : top) {
    if (r != nullptr) {
      f.top_orgs.push_back(*r);
    }
  }
  f.detail("events14", std::int64_t{v.events});
  f.detail("top2_share", k.top2_share);
  f.detail("cv", timing.cv);
}

// --- At the day boundary ------------------------------------------------------------------

void DomainState::daily_end_of_day(BaseEntry& e, CandidateEntry& c, Day closed,
                                   std::int64_t logical_ns) noexcept {
  DailyState& s = c.daily;
  const BeaconParams& bp = options_->detectors.beacon;
  // beacon (4.5): on the ring, for a candidate active on the closed day.
  if (c.last_active == closed && s.beacon_day != closed &&
      std::min<std::uint32_t>(s.ts_count, bp.ring) >= bp.min_events) {
    s.beacon_day = closed;
    std::array<double, DailyState::kRing> ts{};
    const std::size_t n = unroll(s, INT64_MIN, bp.ring, ts);
    const auto hours = hours_of(s, closed);
    BeaconInput bi;
    bi.timestamps_s = std::span<const double>(ts.data(), n);
    bi.hourly_counts = hours;
    bi.vantage = vantage();
    bi.answer_ttl_s = s.answer_ttl_s;
    const BeaconResult r = evaluate_beacon(bi, bp);
    if (r.timing == TimingClass::CacheRefresh) {
      // At an authoritative server a resolver's cache refreshes look periodic: labelled, not a
      // beacon.
      Finding& f =
          emit(Detector::Beacon, "cache_refresh", c.domain(), logical_ns, r.score, kBeaconSeverity);
      f.reasons = kReasonCacheRefresh;
      f.detail("period_s", r.period_s);
      f.detail("ttl_s", std::int64_t{s.answer_ttl_s});
    } else if (r.fires) {
      c.marks.set_score(Detector::Beacon, r.score, closed);
      beacon_fired_ += 1;
      Finding& f =
          emit(Detector::Beacon, "beacon", c.domain(), logical_ns, r.score, kBeaconSeverity);
      const OrgSlots::Window w = c.orgs.window(closed);
      const std::size_t top = w.order()[0];
      if (w.total() > 0 && w.counts[top] >= 0.9 * w.total()) {
        f.org_details.emplace_back("querier", c.orgs.ref[top]);
      }
      f.detail("period_s", r.period_s);
      f.detail("n", static_cast<std::int64_t>(r.n));
      f.detail("cv", r.cv);
      f.detail("ts_score", r.ts_score);
    }
  }
  // acceleration (4.4) and intermittency (4.9) over the episode's days the 64-day ring holds;
  // both stay set for the rest of the episode.
  const Day start = c.marks.episode_start;
  if (start != 0 && start <= closed) {
    const int first = std::max(static_cast<int>(start), static_cast<int>(closed) - 63);
    if ((c.marks.lifecycle & CandidateMarks::kLifeAccelerating) == 0) {
      std::array<std::uint32_t, 10> blocks{};
      std::size_t nb = 0;
      // Complete 7-day blocks from the episode start, those wholly within the ring.
      const int skip = (first - static_cast<int>(start) + 6) / 7;
      for (int b = static_cast<int>(start) + 7 * skip; b + 6 <= closed && nb < blocks.size();
           b += 7) {
        for (int d = b; d < b + 7; ++d) {
          blocks[nb] += day_events(c, d);
        }
        ++nb;
      }
      if (accelerating(std::span<const std::uint32_t>(blocks.data(), nb),
                       options_->detectors.acceleration)) {
        c.marks.lifecycle |= CandidateMarks::kLifeAccelerating;
      }
    }
    if ((c.marks.lifecycle & CandidateMarks::kLifeIntermittent) == 0) {
      std::array<std::uint32_t, 64> days{};
      std::size_t nd = 0;
      for (int d = first; d <= closed && nd < days.size(); ++d) {
        if (weekday(d)) {
          days[nd++] = day_events(c, d);
        }
      }
      if (intermittent(std::span<const std::uint32_t>(days.data(), nd),
                       options_->detectors.intermittency)) {
        c.marks.lifecycle |= CandidateMarks::kLifeIntermittent;
      }
    }
  }
  // covert_pair (4.9) for candidates active in W14.
  if (s.covert_day != closed && c.last_active + kWindow > closed) {
    s.covert_day = closed;
    evaluate_covert(e, c, closed, logical_ns, false);
  }
}

DayReport DomainState::end_of_day(Day closed, double population14) noexcept {
  DayReport r;
  r.day = closed;
  population14_ = population14;
  doorkeeper_.clear();
  const BurstParams& bp = options_->detectors.burst;
  const std::int64_t at = day_end_ns(closed);
  std::uint64_t burst_fired = 0;
  beacon_fired_ = 0;
  covert_passed_ = 0;
  for (BaseEntry& e : base_) {
    if (e.key == 0) {
      continue;
    }
    // 14-day decay of the organisation counts (half-life of about two weeks), rounded at random
    // so that small counts decay too.
    constexpr double kDecay = 0.9517;  // 2^(-1/14)
    const std::uint64_t draw = mix(e.key, closed);
    e.top_count[0] = decay(e.top_count[0], kDecay, mix(draw, 1));
    e.top_count[1] = decay(e.top_count[1], kDecay, mix(draw, 2));
    e.others = decay(e.others, kDecay, mix(draw, 3));
    if (e.top_count[1] > e.top_count[0]) {
      std::swap(e.top_count[0], e.top_count[1]);
      std::swap(e.top_org[0], e.top_org[1]);
    }
    if (querier_concentration_any(e.events_in(closed, 8), e.top2_share(), qc_)) {
      ++r.querier_concentration_any;
    }
    // burst (4.4): the baseline takes the closed day (and the days without a boundary before
    // it as zero days); a day that fired leaves it frozen.
    unsigned d = e.last_evaluated == 0
                     ? std::max<unsigned>({e.first_seen, closed > 7 ? closed - 7U : 1U})
                     : e.last_evaluated + 1U;
    if (d <= closed) {
      BurstState s = burst_state(e);
      if (closed - d > kBurstCatchUp) {
        d = closed - kBurstCatchUp;
      }
      BurstResult br;
      for (; d <= closed; ++d) {
        br = burst_update(s, base_day_events(e, static_cast<int>(d)),
                          static_cast<std::int64_t>(d) - e.first_seen, bp);
      }
      e.ewma_mu = static_cast<float>(s.mu);
      e.ewma_var = static_cast<float>(s.v);
      e.fire_days = static_cast<std::uint8_t>(std::min<std::uint32_t>(s.consecutive_fires, 255));
      e.last_evaluated = closed;
      burst_fired += br.fires ? 1 : 0;
      e.spare = static_cast<std::uint8_t>((e.spare & ~kBurstFiredToday) |
                                          (br.level_shift ? kBurstLevelShift : 0));
    }
    if (e.candidate == 0) {
      continue;
    }
    CandidateEntry& c = candidates_[e.candidate - 1];
    // querier_concentration (4.1): the shares from the candidate's exact organisation counts
    // (since its promotion), the volume from its 64-day ring (which starts with the base
    // entry's 8 days).
    const OrgSlots::Window w = c.orgs.window(closed);
    Concentration k = concentration(w.counts, w.others);
    const Volume v = volume14(c, closed);
    k.events = std::max<std::uint64_t>(k.events, v.events);
    const ConcentrationVerdict qv = querier_concentration(
        k, v.active, static_cast<std::uint64_t>(std::max(0.0, population14)), qc_);
    if (qv.flagged) {
      ++r.querier_concentration;
      c.last_flagged = closed;
      c.marks.set_score(Detector::QuerierConcentration, qv.score, closed);
    }
    daily_end_of_day(e, c, closed, at);
  }
  counters_.flagged_qc.store(r.querier_concentration, std::memory_order_relaxed);
  counters_.flagged_qc_any.store(r.querier_concentration_any, std::memory_order_relaxed);
  auto& flagged = counters_.flagged;
  flagged[static_cast<std::size_t>(Detector::QuerierConcentration)].store(
      r.querier_concentration, std::memory_order_relaxed);
  flagged[static_cast<std::size_t>(Detector::Burst)].store(burst_fired, std::memory_order_relaxed);
  flagged[static_cast<std::size_t>(Detector::Beacon)].store(beacon_fired_,
                                                            std::memory_order_relaxed);
  flagged[static_cast<std::size_t>(Detector::CovertPair)].store(covert_passed_,
                                                                std::memory_order_relaxed);
  return r;
}

}  // namespace dnsmon::detect
