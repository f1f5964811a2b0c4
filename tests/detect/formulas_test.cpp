// The detectors' formulas (docs/detection.md sections 2 and 4) on hand-built series: small ones
// whose expected values are worked out in the comments, and the decoy shapes of Scenario A (5.2)
// generated here with a fixed-seed PRNG.
#include "dnsmon/detect/formulas.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/common/hash.hpp"
#include "dnsmon/detect/params.hpp"

namespace {

using namespace dnsmon::detect;
using Catch::Detail::Approx;

// splitmix64 with Box–Muller and inverse-CDF draws: the same values on every platform.
struct Rng {
  std::uint64_t s;

  explicit Rng(std::uint64_t seed) : s(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  double normal() {
    const double u1 = std::max(uniform(), 1e-300);
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.141592653589793 * u2);
  }

  double exponential(double mean) { return -mean * std::log(1.0 - uniform()); }

  std::uint32_t between(std::uint32_t lo, std::uint32_t hi) {  // inclusive
    return lo + static_cast<std::uint32_t>(next() % (hi - lo + 1));
  }

  std::string chars(std::string_view alphabet, std::size_t n) {
    std::string out(n, ' ');
    for (auto& c : out) {
      c = alphabet[next() % alphabet.size()];
    }
    return out;
  }
};

constexpr double kDay = 86400.0;
constexpr double kHour = 3600.0;

// Hourly counts of the 24 hours ending at `end_s` (oldest first).
std::vector<std::uint32_t> hourly_counts(const std::vector<double>& ts, double end_s) {
  std::vector<std::uint32_t> h(24, 0);
  for (double t : ts) {
    if (t < end_s && t >= end_s - kDay) {
      ++h[static_cast<std::size_t>((t - (end_s - kDay)) / kHour)];
    }
  }
  return h;
}

std::vector<double> newest(const std::vector<double>& ts, std::size_t n) {
  return {ts.end() - static_cast<std::ptrdiff_t>(std::min(n, ts.size())), ts.end()};
}

// Human-timed sessions (5.2 covert orgs, family-photos): each day `sessions` session starts
// uniform in [from_h, to_h), sess_mean events per session on average (geometric), gaps
// exponential with mean gap_s (at least 1 s: the events are de-duplicated at 1 s).
std::vector<double> human_sessions(Rng& rng, int days, double from_h, double to_h,
                                   std::uint32_t min_sessions, std::uint32_t max_sessions,
                                   double sess_mean, double gap_s) {
  std::vector<double> ts;
  for (int d = 0; d < days; ++d) {
    const std::uint32_t sessions = rng.between(min_sessions, max_sessions);
    for (std::uint32_t k = 0; k < sessions; ++k) {
      double t = d * kDay + (from_h + rng.uniform() * (to_h - from_h)) * kHour;
      do {
        ts.push_back(t);
        t += std::max(1.0, rng.exponential(gap_s));
      } while (rng.uniform() > 1.0 / sess_mean);
    }
  }
  std::sort(ts.begin(), ts.end());
  return ts;
}

}  // namespace

TEST_CASE("severities follow the score bands of 4.0", "[detect]") {
  CHECK(severity_for_score(0.0) == Severity::Info);
  CHECK(severity_for_score(0.399) == Severity::Info);
  CHECK(severity_for_score(0.4) == Severity::Low);
  CHECK(severity_for_score(0.6) == Severity::Medium);
  CHECK(severity_for_score(0.8) == Severity::High);
  CHECK(severity_for_score(1.0) == Severity::High);  // critical only for covert_pair
  const CovertPairParams p;
  CHECK(covert_pair_severity(0.4, p) == Severity::Low);
  CHECK(covert_pair_severity(0.59, p) == Severity::Low);
  CHECK(covert_pair_severity(0.6, p) == Severity::Medium);
  CHECK(covert_pair_severity(0.8, p) == Severity::High);
  CHECK(covert_pair_severity(0.95, p) == Severity::Critical);
  CHECK(to_string(Severity::Critical) == "critical");
}

TEST_CASE("timing statistics match hand-computed values (2.6)", "[detect]") {
  const std::vector<std::uint32_t> two{0, 4};  // mean 2, variance 4
  CHECK(fano_factor(two) == Approx(2.0));
  const std::vector<std::uint32_t> flat{2, 2, 2};
  CHECK(fano_factor(flat) == 0.0);
  CHECK(fano_factor(std::vector<std::uint32_t>{}) == 0.0);
  CHECK(burstiness(0.0) == Approx(-1.0));
  CHECK(burstiness(1.0) == Approx(0.0));
  // n = 3: (2·1 - √2)/((2 - 2)·1 + √2) = 0.41421
  CHECK(burstiness_kim_jo(1.0, 3) == Approx(0.414213562));
  CHECK(burstiness_kim_jo(0.0, 10) == Approx(-1.0));
  CHECK(burstiness_kim_jo(3.0, 10) == Approx(1.0));  // CV = √(n - 1): the most bursty
  const std::vector<double> xs{1, 2, 3, 4};
  CHECK(median_sorted(xs) == Approx(2.5));
  CHECK(quantile_sorted(xs, 0.25) == Approx(1.75));
  CHECK(coefficient_of_variation(std::vector<double>{2, 4}) == Approx(1.0 / 3.0));
}

TEST_CASE("RITA ts_score on hand-built deltas (2.1)", "[detect][beacon]") {
  // Equal deltas: IQR 0 < 10 s zeroes Bowley, MAD 0: both parts 1.
  CHECK(rita_ts_score(std::vector<double>{0, 10, 20, 30, 40}) == 1.0);
  // Deltas 10, 20, 30, 100: Q1 17.5, Q2 25, Q3 47.5, Bowley (17.5 + 47.5 - 50)/30 = 0.5,
  // skew 0.5; |Δ - 25| = 15, 5, 5, 75 → MAD 10, mad_score (25 - 10)/25 = 0.6; ts = 0.55.
  CHECK(rita_ts_score(std::vector<double>{0, 10, 30, 60, 160}) == Approx(0.55));
  // Fewer than 4 timestamps, or fewer than 3 non-zero deltas: 0.
  CHECK(rita_ts_score(std::vector<double>{0, 10, 20}) == 0.0);
  CHECK(rita_ts_score(std::vector<double>{0, 0, 0, 10, 20}) == 0.0);
  // Zero deltas are skipped: the same as 0, 10, 20, 30, 40.
  CHECK(rita_ts_score(std::vector<double>{0, 0, 10, 20, 20, 30, 40}) == 1.0);
  // Rounded to 3 decimals.
  const double s = rita_ts_score(std::vector<double>{0, 7, 19, 40, 41, 90});
  CHECK(std::round(s * 1000) / 1000 == s);
}

// The order statistics of the beacon and Theil–Sen are selected, not sorted: on random series
// with ties and zero deltas, of odd and even lengths, they equal a sort's exactly.
TEST_CASE("beacon statistics and Theil–Sen equal their sorted definitions exactly",
          "[detect][beacon]") {
  const auto deltas = [](const std::vector<double>& ts, bool nonzero) {
    std::vector<double> d;
    for (std::size_t i = 1; i < ts.size(); ++i) {
      const double x = std::max(0.0, ts[i] - ts[i - 1]);
      if (!nonzero || x > 0) {
        d.push_back(x);
      }
    }
    std::sort(d.begin(), d.end());
    return d;
  };
  const auto rita = [&](const std::vector<double>& ts) {
    std::vector<double> d = deltas(ts, true);
    if (ts.size() < 4 || d.size() < 3) {
      return 0.0;
    }
    const double q1 = quantile_sorted(d, 0.25);
    const double q2 = quantile_sorted(d, 0.5);
    const double q3 = quantile_sorted(d, 0.75);
    const double bowley =
        q3 - q1 >= 10.0 && q2 != q1 && q2 != q3 ? (q1 + q3 - 2.0 * q2) / (q3 - q1) : 0.0;
    const double median = median_sorted(d);
    std::vector<double> dev;
    dev.reserve(d.size());
    for (const double x : d) {
      dev.push_back(std::fabs(x - median));
    }
    std::sort(dev.begin(), dev.end());
    const double mad = median_sorted(dev);
    const double mad_score = median >= 1.0 ? std::max(0.0, (median - mad) / median) : 1.0;
    return std::round((1.0 - std::fabs(bowley) + mad_score) / 2.0 * 1000.0) / 1000.0;
  };
  Rng rng(42);
  for (std::size_t n = 2; n <= 300; n += rng.between(1, 9)) {
    std::vector<double> ts{1000.0};
    ts.reserve(n);
    for (std::size_t i = 1; i < n; ++i) {
      // coarse steps make ties and zero deltas common
      ts.push_back(ts.back() +
                   std::floor(rng.exponential(40.0)) * (rng.between(0, 5) == 0 ? 0 : 1));
    }
    INFO("n = " << n);
    CHECK(rita_ts_score(ts) == rita(ts));
    BeaconInput in;
    in.timestamps_s = ts;
    const BeaconResult r = evaluate_beacon(in, BeaconParams{});
    CHECK(r.period_s == median_sorted(deltas(ts, false)));

    std::vector<std::uint32_t> ys;
    for (std::size_t i = 0; i < std::min<std::size_t>(n, 64); ++i) {
      ys.push_back(rng.between(0, 40));
    }
    std::vector<double> slopes;
    for (std::size_t i = 0; i < ys.size(); ++i) {
      for (std::size_t j = i + 1; j < ys.size(); ++j) {
        slopes.push_back((static_cast<double>(ys[j]) - static_cast<double>(ys[i])) /
                         static_cast<double>(j - i));
      }
    }
    std::sort(slopes.begin(), slopes.end());
    CHECK(theil_sen_slope(ys) == median_sorted(slopes));
  }
}

TEST_CASE("hist and dur scores (4.5)", "[detect][beacon]") {
  CHECK(beacon_hist_score(std::vector<std::uint32_t>(24, 60)) == Approx(1.0));
  std::vector<std::uint32_t> alternating(24, 0);
  for (std::size_t i = 0; i < 24; i += 2) {
    alternating[i] = 2;  // mean 1, sd 1: CV 1
  }
  CHECK(beacon_hist_score(alternating) == Approx(0.0));
  CHECK(beacon_hist_score(std::vector<std::uint32_t>{3, 1}) == Approx(0.5));
  CHECK(beacon_hist_score(std::vector<std::uint32_t>(24, 0)) == 0.0);

  std::vector<std::uint32_t> five(24, 0);
  std::fill_n(five.begin(), 5, 1u);
  CHECK(beacon_dur_score(0, kDay, five) == 0.0);  // fewer than 6 non-empty hours
  std::vector<std::uint32_t> six(24, 0);
  std::fill_n(six.begin() + 3, 6, 1u);
  // coverage 6 h/24 h = 0.25, consistency 6/12 = 0.5
  CHECK(beacon_dur_score(0, 6 * kHour, six) == Approx(0.5));
  // coverage 18 h: 0.75 beats the run
  CHECK(beacon_dur_score(0, 18 * kHour, six) == Approx(0.75));
  CHECK(beacon_dur_score(0, 3 * kDay, six) == Approx(1.0));  // capped
}

TEST_CASE("the 60 s poller with N(0, 0.3 s) jitter is a machine beacon (5.2, A8)",
          "[detect][beacon]") {
  Rng rng(20160504);
  std::vector<double> ts;
  const double start = 2 * kDay;
  for (int i = 0; i < 1440 * 2; ++i) {
    if (rng.uniform() < 0.005) {
      continue;  // 0.5 % of polls dropped
    }
    ts.push_back(start + 60.0 * i + std::clamp(0.3 * rng.normal(), -1.0, 1.0));
  }
  const double end = ts.back() + 1;
  const auto ring = newest(ts, BeaconParams{}.ring);
  const auto hours = hourly_counts(ts, end);
  const BeaconResult r = evaluate_beacon({ring, hours}, BeaconParams{});
  CAPTURE(r.ts_score, r.hist_score, r.dur_score, r.cv, r.period_s);
  CHECK(r.n == 256);
  CHECK(r.timing == TimingClass::Machine);
  CHECK(r.fires);
  CHECK(r.score >= 0.9);
  CHECK(r.ts_score >= 0.99);
  CHECK(r.period_s == Approx(60.0).margin(1.0));
  CHECK(r.cv < 0.3);
  CHECK(r.a_n < -0.5);
  CHECK(r.fano_1h < 0.1);

  SECTION("at an authoritative vantage with TTL 60 it is a cache refresh, not a beacon") {
    const BeaconResult a =
        evaluate_beacon({ring, hours, Vantage::AuthoritativeSide, 60}, BeaconParams{});
    CHECK(a.timing == TimingClass::CacheRefresh);
    CHECK_FALSE(a.fires);
    // The poller's TTL is 30 s: 60 s is no cache refresh.
    const BeaconResult b =
        evaluate_beacon({ring, hours, Vantage::AuthoritativeSide, 30}, BeaconParams{});
    CHECK(b.timing == TimingClass::Machine);
  }
  SECTION("fewer than 20 events is insufficient") {
    const auto few = newest(ts, 19);
    const BeaconResult f = evaluate_beacon({few, hours}, BeaconParams{});
    CHECK(f.timing == TimingClass::Insufficient);
    CHECK_FALSE(f.fires);
  }
}

TEST_CASE("the covert pair's human-timed sessions are human-like, not machine (5.2, A14)",
          "[detect][beacon]") {
  Rng rng(7);
  // Org A: office hours 06–15 UTC, sessions of mean 3 events 45 s apart, 14 days.
  const auto ts = human_sessions(rng, 14, 6, 15, 2, 8, 3.0, 45.0);
  REQUIRE(ts.size() >= 100);
  const auto hours = hourly_counts(ts, 14 * kDay);
  // Domain level over W14: the whole series (the ring is a view of its newest 256).
  const BeaconResult whole = evaluate_beacon({ts, hours}, BeaconParams{});
  CAPTURE(whole.cv, whole.ts_score, whole.score, whole.n);
  CHECK(whole.cv >= 1.0);
  CHECK(whole.timing == TimingClass::HumanLike);
  CHECK_FALSE(whole.fires);
  CHECK(whole.score < 0.8);
  CHECK(whole.ts_score < 0.5);
  CHECK(whole.burstiness > 0.3);
  CHECK(whole.a_n > 0.3);
  const BeaconResult ring = evaluate_beacon({newest(ts, 256), hours}, BeaconParams{});
  CHECK(ring.timing == TimingClass::HumanLike);
}

TEST_CASE("burst: EWMA update, fire rule, freeze and level shift (4.4)", "[detect][burst]") {
  const BurstParams p;
  BurstState s;
  CHECK_FALSE(burst_update(s, 10, 0, p).fires);  // seeds mu = 10, v = 0
  CHECK(s.mu == 10.0);
  CHECK(s.v == 0.0);
  // x = 20 is not 3·(mu + 1) = 33: update e = 10, v = 0.9·(0 + 0.1·100) = 9, mu = 11.
  auto r = burst_update(s, 20, 1, p);
  CHECK_FALSE(r.fires);
  CHECK(r.z == Approx(10.0 / std::sqrt(10.0)));
  CHECK(s.mu == Approx(11.0));
  CHECK(s.v == Approx(9.0));

  SECTION("too young a domain never fires") {
    CHECK_FALSE(burst_update(s, 500, 6, p).fires);
  }
  SECTION("a spike fires with score min(1, z/8) and freezes the baseline") {
    // z = (60 - 11)/sqrt(max(9, 11, 1)) = 14.77
    r = burst_update(s, 60, 7, p);
    CHECK(r.fires);
    CHECK(r.z == Approx(49.0 / std::sqrt(11.0)));
    CHECK(r.score == 1.0);
    CHECK(s.mu == Approx(11.0));
    CHECK(s.v == Approx(9.0));
    r = burst_update(s, 40, 8, p);  // z = 29/√11 = 8.74, ratio 40 >= 36
    CHECK(r.fires);
    CHECK(r.score == 1.0);
    r = burst_update(s, 30, 9, p);  // 30 < 36: no fire; baseline moves again, run resets
    CHECK_FALSE(r.fires);
    CHECK(s.consecutive_fires == 0);
    CHECK(s.mu == Approx(11.0 + 0.1 * 19.0));
  }
  SECTION("seven consecutive fire days accept a level shift") {
    for (int d = 0; d < 6; ++d) {
      r = burst_update(s, 200, 7 + d, p);
      CHECK(r.fires);
      CHECK_FALSE(r.level_shift);
    }
    r = burst_update(s, 200, 13, p);
    CHECK(r.fires);
    CHECK(r.level_shift);
    CHECK(s.mu == 200.0);
    CHECK(s.v == 200.0);
    CHECK_FALSE(burst_update(s, 200, 14, p).fires);
  }
}

TEST_CASE("the popular decoy's spike days all fire, consecutive ones too (5.2, A10)",
          "[detect][burst]") {
  // 196 days from Monday 2016-04-04; 120 events per weekday (weekend 0.6) with noise;
  // ×6 on Jun 7, Jul 18–21, Jul 25–28, Sep 26 (days 64, 105–108, 112–115, 175).
  const std::vector<int> spikes{64, 105, 106, 107, 108, 112, 113, 114, 115, 175};
  const BurstParams p;
  Rng rng(11);
  auto run = [&](bool freeze) {
    BurstState s;
    std::vector<int> fired;
    for (int d = 0; d < 196; ++d) {
      const double base = (d % 7 >= 5) ? 72.0 : 120.0;
      double x = base + 12.0 * rng.normal();
      if (std::find(spikes.begin(), spikes.end(), d) != spikes.end()) {
        x *= 6;
      }
      const auto xi = static_cast<std::uint32_t>(std::max(0.0, std::round(x)));
      if (freeze) {
        if (burst_update(s, xi, d, p).fires) {
          fired.push_back(d);
        }
      } else {
        // The same rule with the baseline always updated: what the freeze rule prevents.
        const BurstState before = s;
        const bool f = burst_update(s, xi, d, p).fires;
        if (f) {
          fired.push_back(d);
          s = before;
          s.initialised = true;
          const double e = xi - s.mu;
          s.v = (1 - p.alpha) * (s.v + p.alpha * e * e);
          s.mu += p.alpha * e;
        }
      }
    }
    return fired;
  };
  CHECK(run(true) == spikes);
  const auto unfrozen = run(false);
  CHECK(unfrozen.size() < spikes.size());  // consecutive spike days are missed without the freeze
}

TEST_CASE("acceleration by Theil–Sen slope and block ratio (4.4)", "[detect][burst]") {
  const AccelerationParams p;
  // Slopes 1, 1.5, 2, 2, 2.5, 3: median 2.
  CHECK(theil_sen_slope(std::vector<std::uint32_t>{2, 3, 5, 8}) == Approx(2.0));
  CHECK(theil_sen_slope(std::vector<std::uint32_t>{1, 2, 3}) == Approx(1.0));
  CHECK(theil_sen_slope(std::vector<std::uint32_t>{7}) == 0.0);
  CHECK(accelerating(std::vector<std::uint32_t>{2, 3, 5, 8}, p));        // 13 >= 1.5·5
  CHECK_FALSE(accelerating(std::vector<std::uint32_t>{3, 5, 8}, p));     // < 4 blocks
  CHECK_FALSE(accelerating(std::vector<std::uint32_t>{5, 5, 5, 5}, p));  // slope 0
  // Slopes -8, -4, 0, 10/3, 9, 18: median 5/3 > 0; 22 >= 1.5·12.
  CHECK(accelerating(std::vector<std::uint32_t>{10, 2, 2, 20}, p));
  // Slopes -8, -4, 0, 4/3, 6, 12: median 2/3 > 0, but 16 < 1.5·12.
  CHECK_FALSE(accelerating(std::vector<std::uint32_t>{10, 2, 2, 14}, p));
}

TEST_CASE("intermittency: Fano of weekday counts (4.9)", "[detect][burst]") {
  const IntermittencyParams p;
  std::vector<std::uint32_t> bursty{0, 0, 0, 40, 0, 0, 0, 0, 40, 0};  // mean 8, var 256: 32
  CHECK(fano_factor(bursty) == Approx(32.0));
  CHECK(intermittent(bursty, p));
  bursty.pop_back();
  CHECK_FALSE(intermittent(bursty, p));  // 9 weekdays
  CHECK_FALSE(intermittent(std::vector<std::uint32_t>{6, 8, 10, 7, 9, 6, 8, 10, 7, 9}, p));
}

TEST_CASE("Poisson CUSUM alarms after enough doubled counts (4.4)", "[detect][burst]") {
  PoissonCusum c;
  // λ0 = 2, x = 4: each day adds 4·ln 2 - 2 = 0.7726; 6 days 4.64, 7 days 5.41 > 5.
  for (int d = 0; d < 6; ++d) {
    CHECK_FALSE(c.update(4, 2));
  }
  CHECK(c.s == Approx(6 * 0.7725887));
  CHECK(c.update(4, 2));
  CHECK(c.s == 0.0);
  for (int d = 0; d < 50; ++d) {
    CHECK_FALSE(c.update(2, 2));  // 2·ln 2 - 2 < 0: stays at 0
  }
}

TEST_CASE("Holt–Winters bands: 6 of the last 12 points out of band (4.4)", "[detect][burst]") {
  HoltWinters hw;
  auto x_at = [](int h) { return 100.0 + 50.0 * std::sin(2 * 3.141592653589793 * (h % 24) / 24); };
  int h = 0;
  for (; h < 24; ++h) {
    CHECK_FALSE(hw.add(x_at(h)).checked);
  }
  for (; h < 24 * 5; ++h) {
    const auto st = hw.add(x_at(h));
    CHECK(st.checked);
    CHECK_FALSE(st.out_of_band);
  }
  // A level shift: the 6th out-of-band point within 12 raises the alarm.
  HoltWinters shifted = hw;
  int first_alarm = -1;
  for (int k = 0; k < 12; ++k) {
    const auto st = shifted.add(x_at(h + k) + 1000);
    CHECK(st.out_of_band);
    if (st.alarm && first_alarm < 0) {
      first_alarm = k;
    }
  }
  CHECK(first_alarm == 5);
  // One outlier: out of band, no alarm.
  const auto st = hw.add(x_at(h) + 1000);
  CHECK(st.out_of_band);
  CHECK_FALSE(st.alarm);
}

TEST_CASE("Holt–Winters: a skipped point keeps the season in phase and counts in band",
          "[detect][burst]") {
  HoltWinters hw, skipping;
  auto x_at = [](int h) { return 100.0 + 50.0 * std::sin(2 * 3.141592653589793 * (h % 24) / 24); };
  int h = 0;
  for (; h < 24 * 3; ++h) {
    (void)hw.add(x_at(h));
    if (h == 24 * 2 + 5) {
      skipping.skip();
    } else {
      (void)skipping.add(x_at(h));
    }
  }
  CHECK(skipping.points() == hw.points());
  for (; h < 24 * 4; ++h) {
    const auto a = hw.add(x_at(h));
    const auto b = skipping.add(x_at(h));
    CHECK_FALSE(b.out_of_band);
    CHECK(b.forecast == Approx(a.forecast).epsilon(0.01));
  }
  // Out-of-band points, then skips: each skip shifts one out of the window.
  for (int k = 0; k < 6; ++k) {
    (void)skipping.add(x_at(h++) + 1000);
  }
  CHECK(skipping.recent_out() == 6);
  for (int k = 0; k < 7; ++k) {
    skipping.skip();
    ++h;
  }
  CHECK(skipping.recent_out() == 5);
  CHECK(skipping.finite());
  // In the first season a skip repeats the previous point.
  HoltWinters fresh;
  (void)fresh.add(7);
  fresh.skip();
  CHECK(fresh.points() == 2);
}

TEST_CASE("Shannon entropy and the information estimate (2.2, 4.6)", "[detect][tunneling]") {
  CHECK(shannon_entropy("") == 0.0);
  CHECK(shannon_entropy("aaaa") == 0.0);
  CHECK(shannon_entropy("ab") == Approx(1.0));
  CHECK(shannon_entropy("aabb") == Approx(1.0));
  CHECK(shannon_entropy("abcd") == Approx(2.0));
  // The spec's warning: an ordinary name already scores 3.57.
  CHECK(shannon_entropy("mail1.hotel-promo-mailer") == Approx(3.5739).epsilon(1e-4));

  TunnelHour h;
  h.add("abcd", 1, dnsmon::detail::hash_bytes("abcd.x.example"));  // short: no entropy sample
  h.add("0123456789abcdef", 16,                                    // 16 distinct chars: 4 bits; TXT
        dnsmon::detail::hash_bytes("0123456789abcdef.x.example"));
  const TunnelStats s = tunnel_stats(h);
  CHECK(s.mean_prefix_len == Approx(10.0));
  CHECK(s.mean_entropy == Approx(4.0));
  CHECK(s.odd_share == Approx(0.5));
  CHECK(s.unique == Approx(2.0).margin(0.1));
  CHECK(s.info_bytes == Approx(s.unique * 10.0 * 4.0 / 8.0));
  // I = U·L̄·Ĥ/8: 1000 names of 32 chars at 4 bits = 16,000 B/h: below 64 KiB.
  const TunnelingParams p;
  CHECK_FALSE(tunneling_verdict({1000, 20, 4, 0, 16000}, p).fires);
  const auto v = tunneling_verdict({1000, 32, 3.5, 0.9, 14000}, p);
  CHECK(v.fires);
  CHECK(v.score == 1.0);
  CHECK(v.txt_heavy);
  const auto low = tunneling_verdict({300, 24, 3.0, 0, 2700}, p);
  CHECK(low.fires);
  CHECK(low.score == 0.8);  // at least 0.8 when fired
  CHECK_FALSE(low.txt_heavy);
  CHECK(tunneling_verdict({10, 60, 5, 0, 70000}, p).fires);  // the information bound alone
  // max(10/1000, 70000/262144 = 0.27) is below the 0.8 floor of a fired unit.
  CHECK(tunneling_verdict({10, 60, 5, 0, 70000}, p).score == 0.8);
  CHECK(tunneling_verdict({10, 60, 5, 0, 300000}, p).score == 1.0);
}

TEST_CASE("HLL p = 6 estimates distinct names", "[detect][tunneling]") {
  Hll64 hll;
  CHECK(hll.estimate() == 0.0);
  for (int i = 0; i < 1000; ++i) {
    hll.add_name("same.example");
  }
  CHECK(hll.estimate() == Approx(1.0079).epsilon(1e-3));  // 64·ln(64/63)
  // Standard error 1.04/√64 = 13 %: one set within 3σ, the mean of 20 sets within 10 %.
  for (int n : {100, 1000, 10000}) {
    double sum = 0;
    for (int set = 0; set < 20; ++set) {
      hll.clear();
      for (int i = 0; i < n; ++i) {
        hll.add_name("n" + std::to_string(i) + ".s" + std::to_string(set) + ".t.example");
      }
      CAPTURE(n, set, hll.estimate());
      CHECK(hll.estimate() == Approx(n).epsilon(0.4));
      sum += hll.estimate();
    }
    CHECK(sum / 20 == Approx(n).epsilon(0.1));
  }
}

TEST_CASE(
    "the tunneling bursts fire within the hour; the hash-lookup decoy does not (5.2, A9, A14)",
    "[detect][tunneling]") {
  const TunnelingParams p;
  constexpr std::string_view kBase32 = "abcdefghijklmnopqrstuvwxyz234567";
  constexpr std::string_view kHex = "0123456789abcdef";

  SECTION("dnsexfil-lab: 2 q/s of 52 base32 chars, TXT 80 %, NULL 10 %, A 10 %") {
    Rng rng(3);
    TunnelHour unit;
    std::uint32_t new_names = 0;
    int fired_at = -1;
    TunnelVerdict v;
    for (int q = 0; q < 3600; ++q) {  // 30 min at 2 q/s
      const std::string prefix = rng.chars(kBase32, 52) + ".t";
      const std::string fqdn = prefix + ".dnsexfil-lab.example";
      const double u = rng.uniform();
      const std::uint16_t qtype = u < 0.8 ? 16 : (u < 0.9 ? 10 : 1);
      unit.add(prefix, qtype, dnsmon::detail::hash_bytes(fqdn));
      if (++new_names % 64 == 0 && !unit.fired) {  // checked on every 64th new FQDN
        v = tunneling_verdict(tunnel_stats(unit), p);
        if (v.fires) {
          unit.fired = true;
          fired_at = q;
        }
      }
    }
    CAPTURE(fired_at);
    CHECK(unit.fired);
    CHECK(fired_at < 700);  // well within the first logical hour
    CHECK(v.score >= 0.8);
    CHECK(v.txt_heavy);
    const auto s = tunnel_stats(unit);
    CHECK(s.mean_prefix_len == Approx(54.0));
    CHECK(s.mean_entropy > 4.0);
  }

  SECTION("av-cloud: 400 hex lookups per hour over 200 clients, one unit per (org, domain)") {
    Rng rng(5);
    std::vector<TunnelHour> units(200);  // internal hosts are their own orgs (4.0)
    TunnelHour whole_domain;             // what a domain-level unit would see
    for (int q = 0; q < 400; ++q) {
      const std::string prefix = rng.chars(kHex, 40) + ".hash";
      const std::string fqdn = prefix + ".av-cloud.example";
      const std::uint16_t qtype = rng.uniform() < 0.5 ? 16 : 1;
      const auto hash = dnsmon::detail::hash_bytes(fqdn);
      units[rng.next() % units.size()].add(prefix, qtype, hash);
      whole_domain.add(prefix, qtype, hash);
    }
    for (const auto& u : units) {
      CHECK_FALSE(tunneling_verdict(tunnel_stats(u), p).fires);
    }
    // Per domain it would have fired: the split by org is what keeps the decoy quiet.
    const auto s = tunnel_stats(whole_domain);
    CHECK(s.mean_entropy >= 3.0);
    CHECK(tunneling_verdict(s, p).fires);
  }
}

TEST_CASE("the covert_pair structure veto (4.6)", "[detect][tunneling]") {
  CHECK_FALSE(tunneling_veto(false, 8, 0.05));
  CHECK(tunneling_veto(true, 1, 0));
  CHECK(tunneling_veto(false, 9, 0));
  CHECK(tunneling_veto(false, 1, 0.051));
  CHECK(odd_qtype(16));
  CHECK(odd_qtype(10));
  CHECK(odd_qtype(255));
  CHECK(odd_qtype(5));
  CHECK_FALSE(odd_qtype(1));
  CHECK_FALSE(odd_qtype(28));
}

TEST_CASE("querier concentration: shares, HHI, entropy and the flag (2.5, 4.1)",
          "[detect][concentration]") {
  const QuerierConcentrationParams p;
  // The case: org shares 0.79, 0.20, 0.01.
  const std::vector<std::uint32_t> orgs{20, 79, 1};
  const Concentration c = concentration(orgs);
  CHECK(c.events == 100);
  CHECK(c.top2_share == Approx(0.99));
  CHECK(c.hhi == Approx(0.6642));
  CHECK(c.eff_orgs == Approx(1.50557));
  CHECK(c.entropy_norm == Approx(0.504418));
  CHECK(c.orgs == 3);
  CHECK(c.orgs_1pct == 3);  // exactly 1 % counts
  auto v = querier_concentration(c, 5, 100, p);
  CHECK(v.flagged);
  CHECK(v.score == Approx(0.99));
  CHECK_FALSE(querier_concentration(c, 4, 100, p).flagged);  // active days
  CHECK_FALSE(querier_concentration(c, 5, 99, p).flagged);   // population
  CHECK_FALSE(querier_concentration(concentration(std::vector<std::uint32_t>{30, 10, 1}), 5, 100, p)
                  .flagged);  // 41 events
  // Four orgs with >= 1 %: not exclusive.
  const auto four = concentration(std::vector<std::uint32_t>{94, 3, 2, 1});
  CHECK(four.top2_share == Approx(0.97));
  CHECK(four.orgs_1pct == 4);
  CHECK_FALSE(querier_concentration(four, 5, 100, p).flagged);
  // "others" count in the denominator only.
  const auto with_others = concentration(std::vector<std::uint32_t>{95}, 5);
  CHECK(with_others.events == 100);
  CHECK(with_others.top2_share == Approx(0.95));
  CHECK(with_others.orgs_1pct == 1);
  CHECK(with_others.entropy_norm == 0.0);  // D = 1
  CHECK(querier_concentration(with_others, 5, 100, p).flagged);
  CHECK(concentration(std::vector<std::uint32_t>{}).top2_share == 0.0);
  // The _any count has no volume gate.
  CHECK(querier_concentration_any(1, 0.95, p));
  CHECK_FALSE(querier_concentration_any(0.5, 1.0, p));
  CHECK_FALSE(querier_concentration_any(3, 0.94, p));
}

TEST_CASE("dormant reactivation and newly observed (4.2, 4.3)", "[detect][lifecycle]") {
  const DormantReactivationParams p;
  // The covert domain: history Apr 4 … Apr 16 (days 0 … 12), awake May 4 (day 30).
  Reactivation r{30, 30, 12, 0, 1, 1};
  CHECK_FALSE(dormant_reactivation_fires(r, p));  // 1 event on 1 day so far
  r.today = 32;
  r.run_events = 10;
  r.run_active_days = 2;
  CHECK(dormant_reactivation_fires(r, p));
  // min(1, 0.5 + log2(19)/log2(181)/2) = 0.78320
  CHECK(dormant_reactivation_score(30 - 12) == Approx(0.783201));
  CHECK(dormant_reactivation_score(180) == Approx(1.0));
  CHECK(dormant_reactivation_score(10000) == 1.0);
  Reactivation short_gap = r;
  short_gap.previous_active_day = 17;  // gap 13
  CHECK_FALSE(dormant_reactivation_fires(short_gap, p));
  Reactivation young = r;
  young.first_seen_day = 3;  // history 27
  CHECK_FALSE(dormant_reactivation_fires(young, p));
  Reactivation late = r;
  late.today = 44;  // outside [b, b + 13]
  CHECK_FALSE(dormant_reactivation_fires(late, p));
  late.today = 43;
  CHECK(dormant_reactivation_fires(late, p));

  const NewlyObservedParams n;
  // newtool-saas first seen Jun 15 (day 72), 6–10 a weekday: 10 events by its second day.
  CHECK(newly_observed_fires(0, 72, 73, 16, n));
  CHECK_FALSE(newly_observed_fires(0, 72, 72, 8, n));
  CHECK_FALSE(newly_observed_fires(0, 72, 79, 40, n));  // after the 7 days
  // family-photos: seen from day 0, inside the warm-up.
  CHECK_FALSE(newly_observed_fires(0, 0, 1, 12, n));
  CHECK_FALSE(newly_observed_fires(0, 13, 14, 12, n));
  CHECK(newly_observed_fires(0, 14, 15, 12, n));
}

TEST_CASE("disappearance: the expiring vendor transitions and never persists (5.2, A12)",
          "[detect][disappearance]") {
  const DisappearanceParams p;
  DisappearanceState s;
  // 10 lookups per weekday until Sunday Jul 31 (day 118), NXDOMAIN from Aug 1 (day 119).
  for (int d = 0; d < 119; ++d) {
    if (d % 7 >= 5) {
      continue;
    }
    for (int k = 0; k < 10; ++k) {
      s.on_success(d * kDay + 9 * kHour + k * 600);
    }
  }
  CHECK(s.successes_7d(119 * kDay) == 40);  // days 113 … 119: four weekdays
  auto e1 = s.on_failure(119 * kDay + 9 * kHour, FailureKind::NxDomain, false, false, p);
  auto e2 = s.on_failure(119 * kDay + 10 * kHour, FailureKind::NxDomain, false, false, p);
  CHECK(e1.kind == DisappearanceEventKind::None);
  CHECK(e2.kind == DisappearanceEventKind::None);
  const auto e3 = s.on_failure(119 * kDay + 11 * kHour, FailureKind::NxDomain, false, false, p);
  CHECK(e3.kind == DisappearanceEventKind::Transition);
  CHECK(e3.score == Approx(0.5));
  CHECK(e3.severity == Severity::Medium);
  CHECK(s.failures_since_success == 3);
  CHECK(s.fail_since_s == 119 * kDay + 9 * kHour);
  CHECK(s.fail_kind == FailureKind::NxDomain);
  // No further lookups: it never persists (the engine evaluates it only on failures).
  CHECK_FALSE(s.persisted);
}

TEST_CASE("disappearance: the covert domain persists while still looked up (5.2, A4, A5)",
          "[detect][disappearance]") {
  const DisappearanceParams p;
  DisappearanceState s;
  const double death = 172 * kDay + 13 * kHour + 56 * 60;  // Sep 23 13:56
  for (int d = 165; d < 172; ++d) {
    for (int k = 0; k < 20; ++k) {
      s.on_success(d * kDay + 6 * kHour + k * 1200);
    }
  }
  s.on_success(death - 300);
  std::vector<DisappearanceEvent> events;
  const int per_day[] = {18, 9, 6, 4, 3, 1, 1, 1, 1, 1};
  for (int d = 0; d < 10; ++d) {
    for (int k = 0; k < per_day[d]; ++k) {
      // Sep 23 from the death on; later days spread over office hours 06–15.
      const double t =
          d == 0 ? death + k * 60 : (172 + d) * kDay + (6 + (k + 0.5) * 9.0 / per_day[d]) * kHour;
      const auto e = s.on_failure(t, FailureKind::NxDomain, true, true, p);
      if (e.kind != DisappearanceEventKind::None) {
        CAPTURE(d, k);
        events.push_back(e);
        if (e.kind == DisappearanceEventKind::Transition) {
          CHECK(d == 0);
          CHECK(k == 2);
        } else {
          CHECK(d == 2);  // Sep 25 14:15, the first failure 2 days after the first one
          CHECK(k == 5);
        }
      }
    }
  }
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == DisappearanceEventKind::Transition);
  CHECK(events[0].score == Approx(0.7));  // concentration flagged: +0.2
  CHECK(events[1].kind == DisappearanceEventKind::Persisting);
  CHECK(events[1].score == Approx(1.0));
  CHECK(events[1].severity == Severity::High);

  SECTION("a success resets it") {
    s.on_success(190 * kDay);
    CHECK(s.failures_since_success == 0);
    CHECK_FALSE(s.transitioned);
    CHECK_FALSE(s.persisted);
  }
}

TEST_CASE("disappearance needs 10 successes in 7 days; timeouts count only when configured",
          "[detect][disappearance]") {
  DisappearanceParams p;
  DisappearanceState s;
  for (int d = 0; d < 10; ++d) {
    s.on_success(d * kDay);
    s.on_success(d * kDay + 60);
  }
  CHECK(s.successes_7d(9 * kDay + 100) == 14);  // days 3 … 9
  CHECK(s.successes_7d(12 * kDay) == 8);        // days 6 … 9 remain in the 7 days to day 12
  CHECK(s.successes_7d(30 * kDay) == 0);
  for (int k = 0; k < 5; ++k) {
    CHECK(s.on_failure(30 * kDay + k, FailureKind::ServFail, false, false, p).kind ==
          DisappearanceEventKind::None);
  }
  p.count_timeouts = false;
  DisappearanceState t;
  for (int k = 0; k < 12; ++k) {
    t.on_success(k * 60.0);
  }
  for (int k = 0; k < 5; ++k) {
    CHECK(t.on_failure(1000 + k, FailureKind::Timeout, false, false, p).kind ==
          DisappearanceEventKind::None);
  }
  CHECK(t.failures_since_success == 0);
  p.count_timeouts = true;
  t.on_failure(2000, FailureKind::Timeout, false, false, p);
  t.on_failure(2001, FailureKind::Timeout, false, false, p);
  CHECK(t.on_failure(2002, FailureKind::Refused, false, false, p).kind ==
        DisappearanceEventKind::Transition);
  CHECK(t.fail_kind == FailureKind::Timeout);
}

TEST_CASE("successor_name predicate (4.8)", "[detect][lifecycle]") {
  const SuccessorParams p;
  const SuccessorCandidate ok{true, 4, true, 2};
  CHECK(successor_name_matches(ok, p));
  auto c = ok;
  c.ip_recently_dead = false;
  CHECK_FALSE(successor_name_matches(c, p));
  c = ok;
  c.dead_age_days = 31;
  CHECK_FALSE(successor_name_matches(c, p));
  c = ok;
  c.first_querier_in_dead_top2 = false;
  CHECK_FALSE(successor_name_matches(c, p));
  c = ok;
  c.domains_for_ip_30d = 4;  // shared hosting
  CHECK_FALSE(successor_name_matches(c, p));
  c.domains_for_ip_30d = 3;
  CHECK(successor_name_matches(c, p));
  CHECK(successor_severity(true) == Severity::High);
  CHECK(successor_severity(false) == Severity::Medium);
}

namespace {

// A domain's W14 gate inputs from its timestamps and per-org counts, as the engine keeps them.
CovertGateInput gate_input(const std::vector<double>& ts, double end_s,
                           const std::vector<std::uint32_t>& org_counts,
                           std::uint64_t population14) {
  std::vector<double> w14;
  std::vector<bool> active(14, false);
  for (double t : ts) {
    if (t < end_s && t >= end_s - 14 * kDay) {
      w14.push_back(t);
      active[static_cast<std::size_t>((t - (end_s - 14 * kDay)) / kDay)] = true;
    }
  }
  const auto c = concentration(org_counts);
  const auto b = evaluate_beacon({w14, hourly_counts(w14, end_s)}, BeaconParams{});
  CovertGateInput in;
  in.events14 = w14.size();
  in.active_days14 = static_cast<std::uint32_t>(std::count(active.begin(), active.end(), true));
  in.top2_share14 = c.top2_share;
  in.orgs_1pct = c.orgs_1pct;
  in.population14 = population14;
  in.distinct_fqdns14 = 1;
  in.machine = b.timing == TimingClass::Machine;
  in.cv14 = b.cv;
  return in;
}

}  // namespace

TEST_CASE("covert_pair gate and score on Scenario A's shapes (4.9, 5.2, A13)",
          "[detect][covert_pair]") {
  const DetectorParams p;
  const auto& w = p.covert_pair.weights;

  SECTION("family-photos: one client, 4–8 lookups a day in evening sessions: gate only, 0.4") {
    Rng rng(21);
    const auto ts = human_sessions(rng, 28, 18, 23, 2, 3, 2.5, 60.0);
    CovertGateState st;
    const auto in = gate_input(ts, 28 * kDay, {static_cast<std::uint32_t>(ts.size())}, 2000);
    CAPTURE(in.events14, in.cv14);
    const auto g = covert_pair_gate(st, 28, in, p.querier_concentration, p.beacon);
    CHECK(g.passed());
    // Daily counts are flat, weekly blocks too: no lifecycle evidence.
    std::vector<std::uint32_t> days(28, 0), weekdays;
    for (double t : ts) {
      ++days[static_cast<std::size_t>(t / kDay)];
    }
    std::vector<std::uint32_t> blocks(4, 0);
    for (std::size_t d = 0; d < 28; ++d) {
      blocks[d / 7] += days[d];
      if (d % 7 < 5) {
        weekdays.push_back(days[d]);
      }
    }
    CovertLifecycle l;
    l.accelerating = accelerating(blocks, p.acceleration);
    l.intermittent = intermittent(weekdays, p.intermittency);
    l.newly_observed = newly_observed_fires(0, 0, 1, days[0] + days[1], p.newly_observed);
    CHECK_FALSE(l.accelerating);
    CHECK_FALSE(l.intermittent);
    CHECK_FALSE(l.newly_observed);
    const double score = covert_pair_score(g.passed(), l, w);
    CHECK(score == Approx(0.4));
    CHECK(covert_pair_severity(score, p.covert_pair) == Severity::Low);
  }

  SECTION("newtool-saas: two persons, new, weekdays 6–10 a day: at most 0.5") {
    Rng rng(22);
    std::vector<double> ts;
    std::vector<std::uint32_t> weekdays;
    for (int d = 0; d < 28; ++d) {
      if (d % 7 >= 5) {
        continue;
      }
      const std::uint32_t n = rng.between(6, 10);
      weekdays.push_back(n);
      for (std::uint32_t k = 0; k < n; ++k) {
        ts.push_back(d * kDay + (8 + 9 * rng.uniform()) * kHour);
      }
    }
    std::sort(ts.begin(), ts.end());
    const auto half = static_cast<std::uint32_t>(ts.size() / 2);
    CovertGateState st;
    const auto in = gate_input(ts, 28 * kDay, {half, half}, 2000);
    const auto g = covert_pair_gate(st, 28, in, p.querier_concentration, p.beacon);
    CHECK(g.passed());
    CovertLifecycle l;
    l.newly_observed = true;
    l.intermittent = intermittent(weekdays, p.intermittency);
    CHECK_FALSE(l.intermittent);
    const double score = covert_pair_score(g.passed(), l, w);
    CHECK(score == Approx(0.5));
    CHECK(score < p.covert_pair.medium);
  }

  SECTION("the 60 s poller is vetoed by the timing condition: 0") {
    std::vector<double> ts(std::size_t{14} * 1440);
    for (std::size_t i = 0; i < ts.size(); ++i) {
      ts[i] = 60.0 * static_cast<double>(i);
    }
    CovertGateState st;
    const auto in = gate_input(ts, 14 * kDay, {static_cast<std::uint32_t>(ts.size())}, 2000);
    CHECK(in.machine);
    const auto g = covert_pair_gate(st, 14, in, p.querier_concentration, p.beacon);
    CHECK_FALSE(g.timing);
    CHECK(covert_pair_score(g.passed(), CovertLifecycle{}, w) == 0.0);
  }

  SECTION("the tunnel and the expiring vendor fail structure and concentration: 0") {
    CovertGateInput in;
    in.events14 = 3600;
    in.active_days14 = 5;
    in.top2_share14 = 1.0;
    in.orgs_1pct = 1;
    in.population14 = 2000;
    in.cv14 = 2;
    in.distinct_fqdns14 = 3600;
    in.odd_share14 = 0.9;
    in.tunneling_fire_w14 = true;
    CovertGateState st;
    auto g = covert_pair_gate(st, 20, in, p.querier_concentration, p.beacon);
    CHECK_FALSE(g.structure);
    CHECK_FALSE(g.passed());
    // oldvendor: 5 clients, 20 % each.
    const auto c = concentration(std::vector<std::uint32_t>{10, 10, 10, 10, 10});
    in = {};
    in.events14 = 100;
    in.active_days14 = 10;
    in.top2_share14 = c.top2_share;
    in.orgs_1pct = c.orgs_1pct;
    in.population14 = 2000;
    in.distinct_fqdns14 = 1;
    in.cv14 = 2;
    g = covert_pair_gate(st, 21, in, p.querier_concentration, p.beacon);
    CHECK_FALSE(g.concentration);
    CovertLifecycle l;
    l.disappeared = true;
    CHECK(covert_pair_score(g.passed(), l, w) == 0.0);
  }

  SECTION("the covert domain: lifecycle evidence lifts the gate to high, then critical") {
    Rng rng(23);
    const auto a = human_sessions(rng, 14, 6, 15, 2, 8, 3.0, 45.0);
    const auto b = human_sessions(rng, 14, 13, 22, 1, 3, 2.0, 60.0);
    std::vector<double> ts = a;
    ts.insert(ts.end(), b.begin(), b.end());
    std::sort(ts.begin(), ts.end());
    CovertGateState st;
    const auto in = gate_input(
        ts, 14 * kDay,
        {static_cast<std::uint32_t>(a.size()), static_cast<std::uint32_t>(b.size()), 1}, 2000);
    CAPTURE(in.cv14, in.top2_share14);
    CHECK(in.cv14 >= 1.0);
    CHECK_FALSE(in.machine);
    const auto g = covert_pair_gate(st, 14, in, p.querier_concentration, p.beacon);
    REQUIRE(g.passed());
    CovertLifecycle l;
    l.reactivated = true;
    l.newly_observed = true;  // reactivation takes precedence
    CHECK(covert_pair_score(true, l, w) == Approx(0.6));
    l.accelerating = true;
    CHECK(covert_pair_score(true, l, w) == Approx(0.75));
    l.intermittent = true;
    const double before_death = covert_pair_score(true, l, w);
    CHECK(before_death == Approx(0.85));
    CHECK(covert_pair_severity(before_death, p.covert_pair) == Severity::High);
    l.disappeared = true;
    CHECK(covert_pair_score(true, l, w) == Approx(1.0));
    l.persisting = true;  // 0.25 instead of 0.15; clipped
    CHECK(covert_pair_score(true, l, w) == 1.0);
    CHECK(covert_pair_severity(1.0, p.covert_pair) == Severity::Critical);
    CovertLifecycle only_successor;
    only_successor.successor_found = true;
    CHECK(covert_pair_score(true, only_successor, w) == Approx(0.55));
    CHECK(covert_pair_score(false, l, w) == 0.0);
  }
}

TEST_CASE("covert_pair gate hysteresis keeps volume and timing of an open gate for 14 days (4.9)",
          "[detect][covert_pair]") {
  const DetectorParams p;
  CovertGateInput good;
  good.events14 = 60;
  good.active_days14 = 6;
  good.top2_share14 = 0.99;
  good.orgs_1pct = 2;
  good.population14 = 500;
  good.distinct_fqdns14 = 1;
  good.cv14 = 3;
  CovertGateState st;
  CHECK(covert_pair_gate(st, 100, good, p.querier_concentration, p.beacon).passed());
  // A quiet gap: volume collapses and the timing turns machine-like, for 14 days.
  CovertGateInput quiet = good;
  quiet.events14 = 10;
  quiet.active_days14 = 1;
  quiet.machine = true;
  quiet.cv14 = 0.1;
  for (int d = 101; d <= 114; ++d) {
    CAPTURE(d);
    CHECK(covert_pair_gate(st, d, quiet, p.querier_concentration, p.beacon).passed());
  }
  const auto g = covert_pair_gate(st, 115, quiet, p.querier_concentration, p.beacon);
  CHECK_FALSE(g.volume);
  CHECK_FALSE(g.timing);
  // Concentration has no hysteresis.
  CovertGateState st2;
  CHECK(covert_pair_gate(st2, 100, good, p.querier_concentration, p.beacon).passed());
  CovertGateInput spread = good;
  spread.top2_share14 = 0.9;
  CHECK_FALSE(covert_pair_gate(st2, 101, spread, p.querier_concentration, p.beacon).passed());
  CovertGateInput listed = good;
  listed.allowlisted = true;
  CHECK_FALSE(covert_pair_gate(st2, 102, listed, p.querier_concentration, p.beacon).passed());
  // The hysteresis holds an open gate; it does not open one. Volume met while the lookups were
  // spread over many organisations, then a few lookups from two of them: the gate stays shut.
  CovertGateState st3;
  CHECK_FALSE(covert_pair_gate(st3, 100, spread, p.querier_concentration, p.beacon).passed());
  CovertGateInput remnant = good;
  remnant.events14 = 3;
  remnant.active_days14 = 1;
  const auto r = covert_pair_gate(st3, 105, remnant, p.querier_concentration, p.beacon);
  CHECK(r.concentration);
  CHECK(r.timing);
  CHECK_FALSE(r.volume);
  CHECK_FALSE(r.passed());
}

TEST_CASE("at most 5 new covert_pair >= 0.6 domains a day (4.12 item 7)", "[detect][covert_pair]") {
  const CovertPairParams p;
  NewAlertCap cap;
  for (int i = 0; i < 5; ++i) {
    CHECK(cap.admit(10, p));
  }
  CHECK_FALSE(cap.admit(10, p));
  CHECK_FALSE(cap.admit(10, p));
  CHECK(cap.suppressed == 2);
  CHECK(cap.admit(11, p));
  CHECK(cap.admitted == 1);
}
