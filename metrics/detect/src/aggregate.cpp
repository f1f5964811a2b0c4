// aggregate_anomaly (aggregate.hpp): the hours the shards close, their evaluation in order, and
// the checkpoint of it all.
#include "dnsmon/detect/aggregate.hpp"

#include <algorithm>
#include <cmath>

namespace dnsmon::detect {

AggregateMonitor::AggregateMonitor(std::size_t shards, HoltWintersParams params,
                                   std::int64_t max_lag_hours)
    : params_(params),
      max_lag_(
          std::clamp<std::int64_t>(max_lag_hours, 0, static_cast<std::int64_t>(kPendingHours) - 1)),
      open_(std::max<std::size_t>(shards, 1)),
      closed_(std::max<std::size_t>(shards, 1), kUnset),
      models_{HoltWinters(params), HoltWinters(params), HoltWinters(params)} {
}

std::string_view AggregateMonitor::label(Series s) noexcept {
  switch (s) {
    case Qps:
      return "qps";
    case NxdomainRatio:
      return "nxdomain_ratio";
    case ServfailRatio:
      return "servfail_ratio";
  }
  return "?";
}

void AggregateMonitor::add(std::int64_t hour, const Counts& c) noexcept {
  if (next_ == kUnset || hour < next_) {
    // Counted when the hour was evaluated without them (not the first, never evaluated, hour).
    if (next_ != kUnset && hour >= next_ - static_cast<std::int64_t>(evaluated_)) {
      late_ += c.queries + c.responses;
    }
    return;
  }
  Pending& slot =
      pending_[static_cast<std::size_t>(hour % static_cast<std::int64_t>(kPendingHours))];
  if (slot.hour != hour) {
    slot = {hour, {}};
  }
  slot.counts += c;
}

void AggregateMonitor::close(std::size_t shard, std::int64_t next, std::vector<Transition>& out) {
  ShardHour& sh = open_[shard];
  const std::int64_t h = sh.hour;
  if (h != kUnset && h < next) {
    if (next_ == kUnset) {
      next_ = h + 1;  // the first hour is in general partial: not evaluated
    }
    const auto window = static_cast<std::int64_t>(kPendingHours);
    if (h >= next_ + window) {
      evaluate_due(h - window + 1, out);  // room in the pending hours for h
    }
    add(h, sh.counts);
  }
  closed_[shard] = std::max(closed_[shard], next);
  if (next_ == kUnset) {
    next_ = next;
  }
  sh.hour = next;
  sh.counts = {};
  evaluate_due(kUnset, out);
}

void AggregateMonitor::flush(std::vector<Transition>& out) {
  std::int64_t latest = kUnset;
  for (const ShardHour& sh : open_) {
    latest = std::max(latest, sh.hour);
  }
  // At the end of input a shard behind the latest hour has nothing more to add to its open hour.
  for (ShardHour& sh : open_) {
    if (sh.hour != kUnset && sh.hour < latest && next_ != kUnset) {
      add(sh.hour, sh.counts);
      sh.counts = {};
    }
  }
  if (next_ != kUnset) {
    evaluate_due(latest, out);
  }
}

// Evaluates every hour before `through` (kUnset: none forced), then every hour that is due: closed
// by every shard, or max_lag_ hours behind the most advanced one.
void AggregateMonitor::evaluate_due(std::int64_t through, std::vector<Transition>& out) {
  while (next_ != kUnset && through != kUnset && next_ < through) {
    evaluate(out);
  }
  for (;;) {
    const auto [lo, hi] = std::minmax_element(closed_.begin(), closed_.end());
    const bool all = *lo != kUnset && next_ < *lo;
    const bool lagging = *hi != kUnset && next_ + max_lag_ < *hi;
    if (next_ == kUnset || (!all && !lagging)) {
      return;
    }
    evaluate(out);
  }
}

// The band's floor: δ standard deviations of the counting noise of the hour's value around the
// forecast. Queries as a Poisson count (σ = sqrt(λ), λ the forecast count, at least 1); a ratio
// as a binomial share of the hour's n responses (σ = sqrt(p(1 - p)/n), p the forecast share, at
// least 1/n). Brutlag's band alone is δ mean absolute deviations of past errors, which is about 0
// for a series that was flat (a ratio at exactly 0) or rare (a few failures an hour at night), so
// that one failure more or less would count as out of band.
double AggregateMonitor::noise_band(Series s, double forecast, const Counts& c) const noexcept {
  if (s == Qps) {
    const double lambda = std::max(forecast * 3600.0, 1.0);
    return params_.delta * std::sqrt(lambda) / 3600.0;
  }
  const auto n = static_cast<double>(std::max<std::uint64_t>(c.responses, 1));
  const double p = std::clamp(forecast, 1.0 / n, 1.0);
  return params_.delta * std::sqrt(p * (1.0 - p) / n);
}

void AggregateMonitor::evaluate(std::vector<Transition>& out) {
  Pending& slot =
      pending_[static_cast<std::size_t>(next_ % static_cast<std::int64_t>(kPendingHours))];
  const Counts c = slot.hour == next_ ? slot.counts : Counts{};
  slot = {};
  const auto responses = static_cast<double>(c.responses);
  const std::array<double, kSeries> x{
      static_cast<double>(c.queries) / 3600.0,
      c.responses > 0 ? static_cast<double>(c.nxdomain) / responses : 0.0,
      c.responses > 0 ? static_cast<double>(c.servfail) / responses : 0.0,
  };
  for (std::size_t s = 0; s < kSeries; ++s) {
    HoltWinters& m = models_[s];
    HoltWinters::Step st;
    if (s != Qps && c.responses == 0) {
      m.skip();  // a ratio of nothing: a missing point
      st.alarm = m.recent_out() >= params_.min_out;
    } else {
      st = m.add(x[s], noise_band(static_cast<Series>(s), m.forecast(), c));
    }
    if (st.alarm != alarmed_[s]) {
      alarmed_[s] = st.alarm;
      alarm_[s].store(st.alarm ? 1 : 0, std::memory_order_relaxed);
      Transition& t = out.emplace_back();
      t.series = static_cast<Series>(s);
      t.alarm = st.alarm;
      t.hour = next_;
      t.value = x[s];
      t.forecast = st.forecast;
      t.band = st.band;
      t.out_of_band = m.recent_out();
    }
  }
  ++evaluated_;
  ++next_;
}

void AggregateMonitor::save(StateSink& out) const {
  out.put(static_cast<std::uint64_t>(open_.size()));
  for (std::size_t s = 0; s < open_.size(); ++s) {
    out.put(open_[s].hour);
    out.put(open_[s].counts);
    out.put(closed_[s]);
  }
  for (const Pending& p : pending_) {
    out.put(p.hour);
    out.put(p.counts);
  }
  out.put(next_);
  for (const HoltWinters& m : models_) {
    out.put(m);
  }
  for (const bool a : alarmed_) {
    out.put(static_cast<std::uint8_t>(a ? 1 : 0));
  }
  out.put(evaluated_);
  out.put(late_);
}

bool AggregateMonitor::load(StateSource& in) {
  std::uint64_t shards = 0;
  if (!in.get(shards) || shards != open_.size()) {
    return false;
  }
  for (std::size_t s = 0; s < open_.size(); ++s) {
    if (!in.get(open_[s].hour) || !in.get(open_[s].counts) || !in.get(closed_[s])) {
      return false;
    }
  }
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    Pending& p = pending_[i];
    if (!in.get(p.hour) || !in.get(p.counts)) {
      return false;
    }
    const auto k = static_cast<std::int64_t>(kPendingHours);
    if (p.hour != kUnset && (p.hour < 0 || p.hour % k != static_cast<std::int64_t>(i))) {
      return false;  // a slot must hold an hour of its position
    }
  }
  if (!in.get(next_)) {
    return false;
  }
  for (HoltWinters& m : models_) {
    if (!in.get(m) || !m.finite()) {
      return false;
    }
  }
  for (std::size_t s = 0; s < kSeries; ++s) {
    std::uint8_t a = 0;
    if (!in.get(a) || a > 1) {
      return false;
    }
    alarmed_[s] = a != 0;
    alarm_[s].store(a, std::memory_order_relaxed);
  }
  return in.get(evaluated_) && in.get(late_);
}

}  // namespace dnsmon::detect
