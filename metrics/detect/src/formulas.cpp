#include "dnsmon/detect/formulas.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numbers>

#include "dnsmon/common/hash.hpp"

namespace dnsmon::detect {

namespace {

// The newest `max` elements of a span.
template <class T>
std::span<const T> newest(std::span<const T> xs, std::size_t max) noexcept {
  return xs.size() > max ? xs.last(max) : xs;
}

double clamp01(double x) noexcept {
  return std::clamp(x, 0.0, 1.0);
}

std::int64_t day_of(double t_s) noexcept {
  return static_cast<std::int64_t>(std::floor(t_s / kSecondsPerDay));
}

}  // namespace

std::string_view to_string(Severity s) noexcept {
  switch (s) {
    case Severity::Info:
      return "info";
    case Severity::Low:
      return "low";
    case Severity::Medium:
      return "medium";
    case Severity::High:
      return "high";
    case Severity::Critical:
      return "critical";
  }
  return "info";
}

Severity severity_for_score(double score) noexcept {
  if (score >= 0.8) {
    return Severity::High;
  }
  if (score >= 0.6) {
    return Severity::Medium;
  }
  if (score >= 0.4) {
    return Severity::Low;
  }
  return Severity::Info;
}

// ---------------------------------------------------------------------------------------------

MeanSd mean_sd(std::span<const double> xs) noexcept {
  if (xs.empty()) {
    return {};
  }
  double sum = 0;
  for (double x : xs) {
    sum += x;
  }
  const double mean = sum / static_cast<double>(xs.size());
  double ss = 0;
  for (double x : xs) {
    ss += (x - mean) * (x - mean);
  }
  return {mean, std::sqrt(ss / static_cast<double>(xs.size()))};
}

MeanSd mean_sd(std::span<const std::uint32_t> xs) noexcept {
  if (xs.empty()) {
    return {};
  }
  double sum = 0;
  for (auto x : xs) {
    sum += x;
  }
  const double mean = sum / static_cast<double>(xs.size());
  double ss = 0;
  for (auto x : xs) {
    ss += (x - mean) * (x - mean);
  }
  return {mean, std::sqrt(ss / static_cast<double>(xs.size()))};
}

double coefficient_of_variation(std::span<const double> xs) noexcept {
  const auto m = mean_sd(xs);
  return m.mean > 0 ? m.sd / m.mean : 0.0;
}

double fano_factor(std::span<const std::uint32_t> counts) noexcept {
  const auto m = mean_sd(counts);
  return m.mean > 0 ? m.sd * m.sd / m.mean : 0.0;
}

double burstiness(double cv) noexcept {
  return (cv - 1.0) / (cv + 1.0);
}

double burstiness_kim_jo(double cv, std::size_t n) noexcept {
  if (n < 2) {
    return 0;
  }
  const double a = std::sqrt(static_cast<double>(n) + 1.0);
  const double b = std::sqrt(static_cast<double>(n) - 1.0);
  const double den = (a - 2.0) * cv + b;
  return den != 0 ? (a * cv - b) / den : 0.0;
}

double median_sorted(std::span<const double> sorted) noexcept {
  const std::size_t n = sorted.size();
  if (n == 0) {
    return 0;
  }
  return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
}

double quantile_sorted(std::span<const double> sorted, double q) noexcept {
  const std::size_t n = sorted.size();
  if (n == 0) {
    return 0;
  }
  const double h = static_cast<double>(n - 1) * std::clamp(q, 0.0, 1.0);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, n - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// ---------------------------------------------------------------------------------------------
// beacon

namespace {

// Deltas of the newest kMaxRingEvents timestamps into `out`; returns how many were written.
std::size_t deltas_of(std::span<const double> ts, std::array<double, kMaxRingEvents>& out,
                      bool nonzero_only) noexcept {
  ts = newest(ts, kMaxRingEvents);
  std::size_t k = 0;
  for (std::size_t i = 1; i < ts.size(); ++i) {
    const double d = std::max(0.0, ts[i] - ts[i - 1]);
    if (nonzero_only && d <= 0) {
      continue;
    }
    out[k++] = d;
  }
  return k;
}

// The statistics below need a few order statistics of up to kMaxRingEvents values: each is
// selected (std::nth_element, linear on average), not read from a sorted copy, as a day's
// evaluation and every immediate covert_pair evaluation take several. Each selection only
// reorders the values, so several may follow one another; each equals the sorted functions'
// result exactly, the same values combined by the same arithmetic.

// The k-th smallest value (0-based).
double kth(std::span<double> v, std::size_t k) noexcept {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// The k-th and (k+1)-th smallest values; k + 1 < v.size().
std::pair<double, double> kth_and_next(std::span<double> v, std::size_t k) noexcept {
  const double a = kth(v, k);
  return {a, *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(k) + 1, v.end())};
}

// median_sorted() of the values in any order.
double median_of(std::span<double> v) noexcept {
  const std::size_t n = v.size();
  if (n == 0) {
    return 0;
  }
  if (n % 2 == 1) {
    return kth(v, n / 2);
  }
  const auto [a, b] = kth_and_next(v, n / 2 - 1);
  return (a + b) / 2.0;
}

// quantile_sorted() of the values in any order.
double quantile_of(std::span<double> v, double q) noexcept {
  const std::size_t n = v.size();
  if (n == 0) {
    return 0;
  }
  const double h = static_cast<double>(n - 1) * std::clamp(q, 0.0, 1.0);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  if (lo + 1 >= n) {
    return kth(v, lo);  // q = 1: the largest
  }
  const auto [a, b] = kth_and_next(v, lo);
  return a + (h - static_cast<double>(lo)) * (b - a);
}

}  // namespace

double rita_ts_score(std::span<const double> timestamps_s) noexcept {
  if (timestamps_s.size() < 4) {
    return 0;
  }
  // only [0, n) is read, after deltas_of() wrote it: not zeroed (8 KiB)
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init)
  std::array<double, kMaxRingEvents> buf;
  const std::size_t n = deltas_of(timestamps_s, buf, /*nonzero_only=*/true);
  if (n < 3) {
    return 0;
  }
  const std::span<double> d(buf.data(), n);
  const double q1 = quantile_of(d, 0.25);
  const double q2 = quantile_of(d, 0.5);
  const double q3 = quantile_of(d, 0.75);
  double bowley = 0;
  if (q3 - q1 >= 10.0 && q2 != q1 && q2 != q3) {
    bowley = (q1 + q3 - 2.0 * q2) / (q3 - q1);
  }
  const double skew_score = 1.0 - std::fabs(bowley);

  const double median = median_of(d);
  for (double& x : d) {
    x = std::fabs(x - median);  // the deltas are not needed after their median
  }
  const double mad = median_of(d);
  const double mad_score = median >= 1.0 ? std::max(0.0, (median - mad) / median) : 1.0;
  return std::round((skew_score + mad_score) / 2.0 * 1000.0) / 1000.0;
}

double beacon_hist_score(std::span<const std::uint32_t> hourly_counts) noexcept {
  const auto m = mean_sd(hourly_counts);
  if (m.mean <= 0) {
    return 0;
  }
  return std::max(0.0, 1.0 - m.sd / m.mean);
}

double beacon_dur_score(double first_event_s, double last_event_s,
                        std::span<const std::uint32_t> hourly_counts) noexcept {
  std::size_t non_empty = 0;
  std::size_t run = 0;
  std::size_t longest = 0;
  for (auto c : hourly_counts) {
    if (c > 0) {
      ++non_empty;
      longest = std::max(longest, ++run);
    } else {
      run = 0;
    }
  }
  if (non_empty < 6) {
    return 0;
  }
  const double coverage =
      clamp01((last_event_s - first_event_s) / (static_cast<double>(kHoursPerDay) * 3600.0));
  const double consistency = std::min(1.0, static_cast<double>(longest) / 12.0);
  return std::max(coverage, consistency);
}

std::string_view to_string(TimingClass c) noexcept {
  switch (c) {
    case TimingClass::Insufficient:
      return "insufficient";
    case TimingClass::Machine:
      return "machine";
    case TimingClass::CacheRefresh:
      return "cache_refresh";
    case TimingClass::HumanLike:
      return "human_like";
    case TimingClass::Other:
      return "other";
  }
  return "other";
}

BeaconResult evaluate_beacon(const BeaconInput& in, const BeaconParams& p) noexcept {
  BeaconResult r;
  const auto ts = newest(in.timestamps_s, kMaxRingEvents);
  r.n = ts.size();
  r.hist_score = beacon_hist_score(in.hourly_counts);
  r.fano_1h = fano_factor(in.hourly_counts);
  if (ts.size() >= 2) {
    // only [0, n) is read, after deltas_of() wrote it: not zeroed (8 KiB)
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init)
    std::array<double, kMaxRingEvents> buf;
    const std::size_t n = deltas_of(ts, buf, /*nonzero_only=*/false);
    const std::span<double> d(buf.data(), n);
    r.cv = coefficient_of_variation(d);
    r.burstiness = burstiness(r.cv);
    r.a_n = burstiness_kim_jo(r.cv, n);
    r.period_s = median_of(d);
    r.ts_score = rita_ts_score(ts);
    // Coverage is measured over the same last 24 hours as the hourly bins.
    const double day_start = ts.back() - kSecondsPerDay;
    const auto first = std::lower_bound(ts.begin(), ts.end(), day_start);
    r.dur_score =
        beacon_dur_score(first == ts.end() ? ts.back() : *first, ts.back(), in.hourly_counts);
  }
  r.score = p.weights.ts * r.ts_score + p.weights.hist * r.hist_score + p.weights.dur * r.dur_score;
  if (r.n < p.min_events) {
    r.timing = TimingClass::Insufficient;
    return r;
  }
  const double ttl = in.answer_ttl_s;
  if (in.vantage == Vantage::AuthoritativeSide && ttl > 0 &&
      std::fabs(r.period_s - ttl) <= 0.1 * ttl) {
    r.timing = TimingClass::CacheRefresh;
  } else if (r.score >= p.machine_score || r.cv <= p.machine_cv) {
    r.timing = TimingClass::Machine;
  } else if (r.cv >= p.human_cv) {
    r.timing = TimingClass::HumanLike;
  } else {
    r.timing = TimingClass::Other;
  }
  r.fires = r.timing == TimingClass::Machine;
  return r;
}

// ---------------------------------------------------------------------------------------------
// burst

BurstResult burst_update(BurstState& s, std::uint32_t x, std::int64_t days_since_first_seen,
                         const BurstParams& p) noexcept {
  BurstResult r;
  const double xd = x;
  if (!s.initialised) {
    s = BurstState{xd, 0.0, 0, true};
    return r;
  }
  r.z = (xd - s.mu) / std::sqrt(std::max({s.v, s.mu, 1.0}));
  r.fires = days_since_first_seen >= static_cast<std::int64_t>(p.min_history_days) &&
            x >= p.min_count && xd >= p.min_ratio * (s.mu + 1.0) && r.z >= p.min_z;
  if (r.fires) {
    r.score = std::min(1.0, r.z / 8.0);
    if (++s.consecutive_fires >= p.level_shift_days) {
      s.mu = xd;
      s.v = xd;
      s.consecutive_fires = 0;
      r.level_shift = true;
    }
    return r;
  }
  s.consecutive_fires = 0;
  const double e = xd - s.mu;
  s.v = (1.0 - p.alpha) * (s.v + p.alpha * e * e);
  s.mu += p.alpha * e;
  return r;
}

double theil_sen_slope(std::span<const std::uint32_t> ys) noexcept {
  ys = newest(ys, kMaxBlocks);
  const std::size_t n = ys.size();
  if (n < 2) {
    return 0;
  }
  // only [0, k) is read, written first: not zeroed (16 KiB)
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init)
  std::array<double, kMaxBlocks*(kMaxBlocks - 1) / 2> slopes;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      slopes[k++] =
          (static_cast<double>(ys[j]) - static_cast<double>(ys[i])) / static_cast<double>(j - i);
    }
  }
  return median_of(std::span<double>(slopes.data(), k));
}

bool accelerating(std::span<const std::uint32_t> b, const AccelerationParams& p) noexcept {
  if (b.size() < p.min_blocks || b.size() < 4) {
    return false;
  }
  const double recent = static_cast<double>(b[b.size() - 1]) + static_cast<double>(b[b.size() - 2]);
  const double first = static_cast<double>(b[0]) + static_cast<double>(b[1]);
  return theil_sen_slope(b) > 0 && recent >= p.ratio * first;
}

bool intermittent(std::span<const std::uint32_t> weekday_counts,
                  const IntermittencyParams& p) noexcept {
  return weekday_counts.size() >= p.min_weekdays && fano_factor(weekday_counts) >= p.min_fano;
}

bool PoissonCusum::update(double x, double lambda0) noexcept {
  s = std::max(0.0, s + x * std::numbers::ln2 - lambda0);
  if (s > h) {
    s = 0;
    return true;
  }
  return false;
}

double HoltWinters::forecast() const noexcept {
  return n_ < kSeason ? 0.0 : level_ + trend_ + season_[n_ % kSeason];
}

HoltWinters::Step HoltWinters::add(double x, double min_band) noexcept {
  Step st;
  const std::size_t i = n_ % kSeason;
  if (n_ < kSeason) {
    // First season: keep the raw values in season_ and seed everything at its end.
    season_[i] = x;
    ++n_;
    if (n_ == kSeason) {
      double sum = 0;
      for (double v : season_) {
        sum += v;
      }
      level_ = sum / static_cast<double>(kSeason);
      double mad = 0;
      for (double& v : season_) {
        v -= level_;
        mad += std::fabs(v);
      }
      dev_.fill(mad / static_cast<double>(kSeason));
      trend_ = 0;
    }
    return st;
  }
  st.forecast = level_ + trend_ + season_[i];
  st.band = std::max(p_.delta * dev_[i], min_band);
  st.checked = true;
  const double err = std::fabs(x - st.forecast);
  st.out_of_band = err > st.band;
  const double new_level = p_.alpha * (x - season_[i]) + (1.0 - p_.alpha) * (level_ + trend_);
  trend_ = p_.beta * (new_level - level_) + (1.0 - p_.beta) * trend_;
  level_ = new_level;
  season_[i] = p_.gamma * (x - level_) + (1.0 - p_.gamma) * season_[i];
  dev_[i] = p_.gamma * err + (1.0 - p_.gamma) * dev_[i];
  out_bits_ = (out_bits_ << 1) | (st.out_of_band ? 1U : 0U);
  ++n_;
  st.alarm = recent_out() >= p_.min_out;
  return st;
}

void HoltWinters::skip() noexcept {
  if (n_ < kSeason) {
    (void)add(n_ == 0 ? 0.0 : season_[n_ - 1]);
    return;
  }
  level_ += trend_;
  out_bits_ <<= 1U;
  ++n_;
}

std::uint32_t HoltWinters::recent_out() const noexcept {
  const std::uint32_t window = std::min<std::uint32_t>(p_.window, 64);
  const std::uint64_t mask = window >= 64 ? ~0ULL : ((1ULL << window) - 1);
  return static_cast<std::uint32_t>(std::popcount(out_bits_ & mask));
}

bool HoltWinters::finite() const noexcept {
  const auto ok = [](double v) { return std::isfinite(v); };
  return ok(level_) && ok(trend_) && std::all_of(season_.begin(), season_.end(), ok) &&
         std::all_of(dev_.begin(), dev_.end(), ok) && ok(p_.alpha) && ok(p_.beta) && ok(p_.gamma) &&
         ok(p_.delta);
}

// ---------------------------------------------------------------------------------------------
// tunneling

double shannon_entropy(std::string_view s) noexcept {
  if (s.empty()) {
    return 0;
  }
  std::array<std::uint32_t, 256> counts{};
  for (char c : s) {
    ++counts[static_cast<unsigned char>(c)];
  }
  const auto n = static_cast<double>(s.size());
  double h = 0;
  for (auto c : counts) {
    if (c > 0) {
      const double p = c / n;
      h -= p * std::log2(p);
    }
  }
  return h;
}

void Hll64::add_hash(std::uint64_t h) noexcept {
  const auto idx = static_cast<std::size_t>(h >> 58);
  const std::uint64_t rest = h << 6;  // the low 58 bits, left-aligned
  const int rank = rest == 0 ? 59 : std::countl_zero(rest) + 1;
  reg_[idx] = std::max(reg_[idx], static_cast<std::uint8_t>(std::min(rank, 59)));
}

void Hll64::add_name(std::string_view fqdn) noexcept {
  add_hash(dnsmon::detail::hash_bytes(fqdn, dnsmon::detail::kDefaultSketchSeed));
}

double Hll64::estimate() const noexcept {
  constexpr double kM = 64.0;
  constexpr double kAlpha = 0.709;  // α_64 (Flajolet et al. 2007)
  double sum = 0;
  std::size_t zeros = 0;
  for (auto r : reg_) {
    sum += std::ldexp(1.0, -static_cast<int>(r));
    zeros += r == 0 ? 1 : 0;
  }
  const double raw = kAlpha * kM * kM / sum;
  if (raw <= 2.5 * kM && zeros > 0) {
    return kM * std::log(kM / static_cast<double>(zeros));  // linear counting
  }
  return raw;
}

bool odd_qtype(std::uint16_t qtype) noexcept {
  return qtype == 16 /*TXT*/ || qtype == 10 /*NULL*/ || qtype == 255 /*ANY*/ ||
         qtype == 5 /*CNAME*/;
}

void TunnelHour::add(std::string_view prefix, std::uint16_t qtype,
                     std::uint64_t fqdn_hash) noexcept {
  names.add_hash(fqdn_hash);
  ++queries;
  prefix_len_sum += prefix.size();
  if (prefix.size() >= kMinEntropyPrefix) {
    entropy_sum += shannon_entropy(prefix);
    ++entropy_n;
  }
  odd += odd_qtype(qtype) ? 1U : 0U;
}

TunnelStats tunnel_stats(const TunnelHour& h) noexcept {
  TunnelStats s;
  if (h.queries == 0) {
    return s;
  }
  s.unique = h.names.estimate();
  s.mean_prefix_len = static_cast<double>(h.prefix_len_sum) / h.queries;
  s.mean_entropy = h.entropy_n > 0 ? h.entropy_sum / h.entropy_n : 0.0;
  s.odd_share = static_cast<double>(h.odd) / h.queries;
  s.info_bytes = s.unique * s.mean_prefix_len * s.mean_entropy / 8.0;
  return s;
}

TunnelVerdict tunneling_verdict(const TunnelStats& s, const TunnelingParams& p) noexcept {
  TunnelVerdict v;
  v.fires = (s.unique >= p.min_unique_per_hour && s.mean_prefix_len >= p.min_mean_prefix_len &&
             s.mean_entropy >= p.min_entropy) ||
            s.info_bytes >= p.min_info_bytes_per_hour;
  if (v.fires) {
    v.score = std::max(0.8, std::min(1.0, std::max(s.unique / 1000.0, s.info_bytes / 262144.0)));
  }
  v.txt_heavy = s.odd_share >= 0.5;
  return v;
}

bool tunneling_veto(bool tunneling_fire_w14, std::uint32_t distinct_fqdns14,
                    double odd_share14) noexcept {
  return tunneling_fire_w14 || distinct_fqdns14 > kMaxDistinctFqdns14 ||
         odd_share14 > kMaxOddShare14;
}

// ---------------------------------------------------------------------------------------------
// querier_concentration

Concentration concentration(std::span<const std::uint32_t> org_counts,
                            std::uint64_t others) noexcept {
  Concentration c;
  std::uint64_t top1 = 0;
  std::uint64_t top2 = 0;
  c.events = others;
  for (auto x : org_counts) {
    c.events += x;
    if (x > top1) {
      top2 = top1;
      top1 = x;
    } else if (x > top2) {
      top2 = x;
    }
  }
  if (c.events == 0) {
    return c;
  }
  const auto n = static_cast<double>(c.events);
  c.top2_share = static_cast<double>(top1 + top2) / n;
  double h = 0;
  for (auto x : org_counts) {
    if (x == 0) {
      continue;
    }
    ++c.orgs;
    const double s = x / n;
    c.hhi += s * s;
    h -= s * std::log(s);
    if (100ULL * x >= c.events) {
      ++c.orgs_1pct;
    }
  }
  c.entropy_norm = c.orgs > 1 ? h / std::log(static_cast<double>(c.orgs)) : 0.0;
  c.eff_orgs = c.hhi > 0 ? 1.0 / c.hhi : 0.0;
  return c;
}

ConcentrationVerdict querier_concentration(const Concentration& c, std::uint32_t active_days14,
                                           std::uint64_t population14,
                                           const QuerierConcentrationParams& p) noexcept {
  ConcentrationVerdict v;
  v.flagged = c.events >= p.min_events && active_days14 >= p.min_active_days &&
              c.top2_share >= p.min_top2_share && c.orgs_1pct <= p.max_orgs_1pct &&
              population14 >= p.min_population;
  v.score = v.flagged ? c.top2_share : 0.0;
  return v;
}

bool querier_concentration_any(double events_in_ring, double decayed_top2_share,
                               const QuerierConcentrationParams& p) noexcept {
  return events_in_ring >= 1.0 && decayed_top2_share >= p.min_top2_share;
}

// ---------------------------------------------------------------------------------------------
// dormant_reactivation, newly_observed

bool dormant_reactivation_fires(const Reactivation& r,
                                const DormantReactivationParams& p) noexcept {
  return r.run_start - r.previous_active_day >= static_cast<std::int64_t>(p.min_gap_days) &&
         r.run_start - r.first_seen_day >= static_cast<std::int64_t>(p.min_history_days) &&
         r.today >= r.run_start &&
         r.today - r.run_start < static_cast<std::int64_t>(p.post_window_days) &&
         r.run_events >= p.min_events && r.run_active_days >= p.min_active_days;
}

double dormant_reactivation_score(std::int64_t gap_days) noexcept {
  const double gap = static_cast<double>(std::max<std::int64_t>(0, gap_days));
  return std::min(1.0, 0.5 + std::log2(1.0 + gap) / std::log2(181.0) / 2.0);
}

bool newly_observed_fires(std::int64_t origin_day, std::int64_t first_seen_day, std::int64_t today,
                          std::uint32_t events_since_first_seen,
                          const NewlyObservedParams& p) noexcept {
  return first_seen_day - origin_day >= static_cast<std::int64_t>(p.warmup_days) &&
         today >= first_seen_day && today - first_seen_day < 7 &&
         events_since_first_seen >= p.min_events_7d;
}

// ---------------------------------------------------------------------------------------------
// disappearance

std::string_view to_string(FailureKind k) noexcept {
  switch (k) {
    case FailureKind::NxDomain:
      return "NXDOMAIN";
    case FailureKind::ServFail:
      return "SERVFAIL";
    case FailureKind::Refused:
      return "REFUSED";
    case FailureKind::NoData:
      return "NODATA";
    case FailureKind::Timeout:
      return "timeout";
  }
  return "NXDOMAIN";
}

void DisappearanceState::advance_ring(std::int64_t day) noexcept {
  if (success_ring_day == INT64_MIN || day - success_ring_day >= 7) {
    success_days.fill(0);
    success_ring_day = day;
    return;
  }
  while (success_ring_day < day) {
    ++success_ring_day;
    success_days[static_cast<std::size_t>(success_ring_day % 7)] = 0;
  }
}

std::uint32_t DisappearanceState::successes_7d(double now_s) const noexcept {
  const std::int64_t day = day_of(now_s);
  if (success_ring_day == INT64_MIN || day - success_ring_day >= 7) {
    return 0;
  }
  std::uint32_t sum = 0;
  for (std::int64_t d = std::max(success_ring_day - 6, day - 6); d <= success_ring_day; ++d) {
    sum += success_days[static_cast<std::size_t>(((d % 7) + 7) % 7)];
  }
  return sum;
}

void DisappearanceState::on_success(double now_s) noexcept {
  const std::int64_t day = day_of(now_s);
  if (day >= success_ring_day || success_ring_day == INT64_MIN) {
    advance_ring(day);
  }
  // A success older than the ring's newest day (out of order by < 1 day) still counts.
  if (success_ring_day - day < 7) {
    ++success_days[static_cast<std::size_t>(((day % 7) + 7) % 7)];
  }
  last_success_s = std::max(last_success_s, now_s);
  failures_since_success = 0;
  transitioned = false;
  persisted = false;
}

DisappearanceEvent DisappearanceState::on_failure(double now_s, FailureKind kind,
                                                  bool concentration_flagged_14d,
                                                  bool covert_pair_medium,
                                                  const DisappearanceParams& p) noexcept {
  DisappearanceEvent ev;
  if (kind == FailureKind::Timeout && !p.count_timeouts) {
    return ev;
  }
  if (failures_since_success == 0) {
    fail_since_s = now_s;
    fail_kind = kind;
  }
  ++failures_since_success;
  const double transition_score = concentration_flagged_14d ? 0.7 : 0.5;
  if (!transitioned) {
    if (failures_since_success >= p.min_failures && successes_7d(now_s) >= p.min_successes_7d) {
      transitioned = true;
      ev = {DisappearanceEventKind::Transition, transition_score, Severity::Medium};
    }
    return ev;
  }
  if (!persisted && failures_since_success >= p.persist_failures &&
      now_s - fail_since_s >= p.persist_days * kSecondsPerDay) {
    persisted = true;
    ev = {DisappearanceEventKind::Persisting, std::min(1.0, transition_score + 0.3),
          covert_pair_medium ? Severity::High : Severity::Medium};
  }
  return ev;
}

// ---------------------------------------------------------------------------------------------
// successor_name

bool successor_name_matches(const SuccessorCandidate& c, const SuccessorParams& p) noexcept {
  return c.ip_recently_dead && c.dead_age_days <= p.max_age_days && c.first_querier_in_dead_top2 &&
         c.domains_for_ip_30d <= p.max_domains_per_ip;
}

Severity successor_severity(bool dead_had_covert_pair_medium) noexcept {
  return dead_had_covert_pair_medium ? Severity::High : Severity::Medium;
}

// ---------------------------------------------------------------------------------------------
// covert_pair

CovertGate covert_pair_gate(CovertGateState& s, std::int64_t day, const CovertGateInput& in,
                            const QuerierConcentrationParams& qc,
                            const BeaconParams& beacon) noexcept {
  CovertGate g;
  if (in.events14 >= qc.min_events && in.active_days14 >= qc.min_active_days) {
    s.volume_met_day = day;
  }
  if (!in.machine && in.cv14 >= beacon.human_cv) {
    s.timing_met_day = day;
  }
  const auto recent = [&](std::int64_t met) {
    return met != INT64_MIN && met <= day && day - met <= static_cast<std::int64_t>(qc.window_days);
  };
  const bool held = recent(s.passed_day);
  g.volume = s.volume_met_day == day || (held && recent(s.volume_met_day));
  g.timing = s.timing_met_day == day || (held && recent(s.timing_met_day));
  g.concentration = in.top2_share14 >= qc.min_top2_share && in.orgs_1pct <= qc.max_orgs_1pct;
  g.population = in.population14 >= qc.min_population;
  g.structure = !tunneling_veto(in.tunneling_fire_w14, in.distinct_fqdns14, in.odd_share14);
  g.allowed = !in.allowlisted;
  if (g.passed()) {
    s.passed_day = day;
  }
  return g;
}

double covert_pair_score(bool gate_passed, const CovertLifecycle& l,
                         const CovertPairWeights& w) noexcept {
  if (!gate_passed) {
    return 0;
  }
  double s = w.gate;
  if (l.reactivated) {
    s += w.reactivated;
  } else if (l.newly_observed) {
    s += w.new_;
  }
  s += l.accelerating ? w.accelerating : 0.0;
  s += l.intermittent ? w.intermittent : 0.0;
  if (l.persisting) {
    s += w.persisting;
  } else if (l.disappeared) {
    s += w.disappeared;
  }
  s += l.successor_found ? w.successor : 0.0;
  return clamp01(s);
}

Severity covert_pair_severity(double score, const CovertPairParams& p) noexcept {
  if (score >= 0.95) {
    return Severity::Critical;
  }
  if (score >= p.high) {
    return Severity::High;
  }
  if (score >= p.medium) {
    return Severity::Medium;
  }
  return Severity::Low;
}

bool NewAlertCap::admit(std::int64_t today, const CovertPairParams& p) noexcept {
  if (today != day) {
    day = today;
    admitted = 0;
  }
  if (admitted >= p.max_new_per_day) {
    ++suppressed;
    return false;
  }
  ++admitted;
  return true;
}

}  // namespace dnsmon::detect
