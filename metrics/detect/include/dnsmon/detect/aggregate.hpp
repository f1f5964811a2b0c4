// aggregate_anomaly (detection spec 4.4): additive Holt–Winters (HoltWinters, formulas.hpp) on
// three hourly series of the whole traffic, queries per second, the NXDOMAIN ratio and the
// SERVFAIL ratio of the matched responses; a series is in alarm while at least 6 of its last 12
// points are out of band.
//
// Every shard counts the events of its open logical hour in its own ShardHour (no lock) and, when
// one of its events crosses into a later hour, hands that hour's counts over with close(), under
// SharedState's mutex. An hour is evaluated once every shard has closed it (each shard sees part
// of the traffic, so the sum is only whole then), or once a shard is `max_lag_hours` ahead of it:
// a shard without events (its domains are quiet) closes no hour, and must not hold the others
// back for ever. A shard's counts of an hour that was already evaluated are dropped and counted
// (late_events). Hours are evaluated in order, an hour nobody closed with zero counts, so the
// series keep their 24-hour season. The first hour the monitor sees is not evaluated (it is in
// general partial: the capture or replay started in it), and neither is the hour still open at
// the end of input.
//
// Thread-safety: shard_hour(s) belongs to shard s's thread; close(), flush(), save() and load()
// under SharedState::mutex (save and load with no shard running); alarm() from any thread.
// Allocation: construction only.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <string_view>
#include <vector>

#include "dnsmon/detect/detail/state_codec.hpp"
#include "dnsmon/detect/formulas.hpp"

namespace dnsmon::detect {

inline constexpr std::int64_t kHourNs = 3'600'000'000'000;

class AggregateMonitor {
 public:
  enum Series : std::uint8_t { Qps, NxdomainRatio, ServfailRatio };

  static constexpr std::size_t kSeries = 3;
  // Hours kept waiting for a late shard: a week.
  static constexpr std::size_t kPendingHours = std::size_t{7} * 24;
  static constexpr std::int64_t kUnset = INT64_MIN;

  struct Counts {
    std::uint64_t queries = 0;    // query events (raw queries, not de-duplicated)
    std::uint64_t responses = 0;  // matched responses
    std::uint64_t nxdomain = 0;
    std::uint64_t servfail = 0;

    Counts& operator+=(const Counts& o) noexcept {
      queries += o.queries;
      responses += o.responses;
      nxdomain += o.nxdomain;
      servfail += o.servfail;
      return *this;
    }
  };

  // A shard's open hour. Written by its shard only.
  struct alignas(64) ShardHour {
    std::int64_t hour = kUnset;  // logical hour number (logical ns / kHourNs)
    Counts counts;
  };

  // A series entering or leaving its alarm at the end of an evaluated hour.
  struct Transition {
    Series series = Qps;
    bool alarm = false;  // true: entered; false: cleared
    std::int64_t hour = 0;
    double value = 0, forecast = 0, band = 0;
    std::uint32_t out_of_band = 0;  // of the last `window` points
  };

  // max_lag_hours: an hour is evaluated at the latest when a shard closed the hour that many hours
  // later (at most kPendingHours - 1).
  AggregateMonitor(std::size_t shards, HoltWintersParams params, std::int64_t max_lag_hours);

  // Live, a shard behind by more than an hour is dropping events anyway: evaluate after 1 hour.
  // A replay waits up to kPendingHours - 1 for a quiet shard, so its results do not depend on
  // thread timing. Set before any shard runs.
  void set_max_lag(std::int64_t hours) noexcept {
    max_lag_ = std::clamp<std::int64_t>(hours, 0, static_cast<std::int64_t>(kPendingHours) - 1);
  }

  [[nodiscard]] ShardHour& shard_hour(std::size_t shard) noexcept { return open_[shard]; }

  [[nodiscard]] std::size_t shards() const noexcept { return open_.size(); }

  // Under the mutex: shard `shard` closed its open hour and every hour before `next` (its new
  // open hour); its ShardHour is reset to `next`. Evaluates every hour that became due; the
  // alarms entered and cleared are appended to `out`.
  void close(std::size_t shard, std::int64_t next, std::vector<Transition>& out);

  // Under the mutex, with no shard running (the end of input): every hour before the latest open
  // hour of any shard is due; the open hours are not evaluated.
  void flush(std::vector<Transition>& out);

  // Whether a series is in alarm (the dnsmon_aggregate_anomaly gauge). Any thread.
  [[nodiscard]] bool alarm(Series s) const noexcept {
    return alarm_[s].load(std::memory_order_relaxed) != 0;
  }

  // Under the mutex: hours evaluated, and shard counts that came after their hour was evaluated.
  [[nodiscard]] std::uint64_t hours_evaluated() const noexcept { return evaluated_; }

  [[nodiscard]] std::uint64_t late_events() const noexcept { return late_; }

  // The checkpoint (SharedState::save/load). load() returns false when the bytes do not decode
  // (another shard count, a non-finite model value, hours out of order).
  void save(StateSink& out) const;
  [[nodiscard]] bool load(StateSource& in);

  // "qps", "nxdomain_ratio", "servfail_ratio".
  [[nodiscard]] static std::string_view label(Series s) noexcept;

 private:
  struct Pending {
    std::int64_t hour = kUnset;
    Counts counts;
  };

  void add(std::int64_t hour, const Counts& c) noexcept;
  void evaluate_due(std::int64_t through, std::vector<Transition>& out);
  void evaluate(std::vector<Transition>& out);
  [[nodiscard]] double noise_band(Series s, double forecast, const Counts& c) const noexcept;

  HoltWintersParams params_;
  std::int64_t max_lag_;
  std::vector<ShardHour> open_;
  std::vector<std::int64_t> closed_;  // per shard: every hour before it is closed (kUnset: none)
  std::array<Pending, kPendingHours> pending_{};  // hour h at h % kPendingHours
  std::int64_t next_ = kUnset;                    // the next hour to evaluate
  std::array<HoltWinters, kSeries> models_;
  std::array<std::atomic<std::uint8_t>, kSeries> alarm_{};
  std::array<bool, kSeries> alarmed_{};  // the alarm state, under the mutex
  std::uint64_t evaluated_ = 0, late_ = 0;
};

}  // namespace dnsmon::detect
