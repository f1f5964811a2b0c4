// aggregate_anomaly (detection spec 4.4): Holt–Winters on the hourly qps, NXDOMAIN and SERVFAIL
// ratios of the whole traffic; the hours the shards close, the alarm and its end, the checkpoint
// of the monitor, and the engine's events and gauge.
#include "dnsmon/detect/aggregate.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/detect/engine.hpp"
#include "dnsmon/detect/shared.hpp"

#include "detect_messages.hpp"

namespace dnsmon::detect {
namespace {

using Transition = AggregateMonitor::Transition;

// A deterministic draw in [0, 1) of (hour, salt).
double draw(std::int64_t hour, std::uint64_t salt) {
  std::uint64_t x = static_cast<std::uint64_t>(hour) * 0x9e3779b97f4a7c15ULL + salt;
  x ^= x >> 31U;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29U;
  return static_cast<double>(x >> 11U) / 9007199254740992.0;
}

// Steady hourly traffic with a day/night cycle: queries 2,000 to 6,000 an hour, about 2 % NXDOMAIN
// and 0.5 % SERVFAIL of the responses, with some noise.
AggregateMonitor::Counts steady(std::int64_t hour) {
  AggregateMonitor::Counts c;
  const double diurnal =
      4000 + 2000 * std::sin(2 * 3.141592653589793 * static_cast<double>(hour % 24) / 24.0);
  c.queries = static_cast<std::uint64_t>(diurnal * (0.95 + 0.1 * draw(hour, 1)));
  c.responses = c.queries * 9 / 10;
  c.nxdomain = static_cast<std::uint64_t>(static_cast<double>(c.responses) *
                                          (0.018 + 0.004 * draw(hour, 2)));
  c.servfail = static_cast<std::uint64_t>(static_cast<double>(c.responses) *
                                          (0.004 + 0.002 * draw(hour, 3)));
  return c;
}

// Feeds hour h to a one-shard monitor: the shard counted c in h, then moved to h + 1.
void feed(AggregateMonitor& m, std::int64_t h, const AggregateMonitor::Counts& c,
          std::vector<Transition>& out) {
  m.shard_hour(0).hour = h;
  m.shard_hour(0).counts = c;
  m.close(0, h + 1, out);
}

constexpr std::int64_t kStart = 405'000;  // an hour number (logical ns / kHourNs), at 00:00
constexpr std::int64_t kDayHours = 24;

}  // namespace

TEST_CASE("aggregate_anomaly: a steady diurnal pattern raises no alarm", "[detect][aggregate]") {
  AggregateMonitor m(1, {}, 1);
  std::vector<Transition> out;
  for (std::int64_t h = kStart; h < kStart + kDayHours * 14; ++h) {
    feed(m, h, steady(h), out);
  }
  CHECK(out.empty());
  CHECK(m.hours_evaluated() == 24 * 14 - 1);  // the first hour is not evaluated
  for (std::size_t s = 0; s < AggregateMonitor::kSeries; ++s) {
    CHECK_FALSE(m.alarm(static_cast<AggregateMonitor::Series>(s)));
  }
}

TEST_CASE("aggregate_anomaly: a few failures an hour, or none, are counting noise",
          "[detect][aggregate]") {
  // 60 to 200 responses an hour, SERVFAIL at 0.5 % (0 to 3 an hour) and NXDOMAIN exactly 0 for
  // three days, then one NXDOMAIN in some hours: within the band's counting-noise floor.
  AggregateMonitor m(1, {}, 1);
  std::vector<Transition> out;
  for (std::int64_t h = kStart; h < kStart + kDayHours * 10; ++h) {
    AggregateMonitor::Counts c;
    c.queries = 60 + static_cast<std::uint64_t>(140 * draw(h, 6));
    c.responses = c.queries;
    c.servfail = static_cast<std::uint64_t>(4 * draw(h, 7) * draw(h, 8));
    c.nxdomain = h >= kStart + kDayHours * 3 && draw(h, 9) < 0.5 ? 1 : 0;
    feed(m, h, c, out);
  }
  CHECK(out.empty());
}

TEST_CASE("aggregate_anomaly: an 8-hour NXDOMAIN surge alarms on nxdomain_ratio only",
          "[detect][aggregate]") {
  AggregateMonitor m(1, {}, 1);
  std::vector<Transition> out;
  std::int64_t h = kStart;
  for (; h < kStart + kDayHours * 7; ++h) {
    feed(m, h, steady(h), out);
  }
  REQUIRE(out.empty());
  // 8 hours where a third of the responses are NXDOMAIN (the same queries).
  const std::int64_t surge = h;
  for (; h < surge + 8; ++h) {
    AggregateMonitor::Counts c = steady(h);
    c.nxdomain = c.responses / 3;
    feed(m, h, c, out);
  }
  REQUIRE(out.size() == 1);
  CHECK(out[0].series == AggregateMonitor::NxdomainRatio);
  CHECK(out[0].alarm);
  // The 6th out-of-band hour of 12: the 6th surge hour, or the 5th with one noisy hour before.
  CHECK(out[0].hour >= surge + 4);
  CHECK(out[0].hour <= surge + 5);
  CHECK(out[0].out_of_band == 6);
  CHECK(out[0].value == Approx(1.0 / 3).epsilon(0.01));
  CHECK(out[0].value > out[0].forecast + out[0].band);
  CHECK(m.alarm(AggregateMonitor::NxdomainRatio));
  CHECK_FALSE(m.alarm(AggregateMonitor::Qps));
  CHECK_FALSE(m.alarm(AggregateMonitor::ServfailRatio));
  // Back to normal: the model learnt part of the surge, so the return is out of band for a while;
  // the alarm clears once fewer than 6 of the last 12 hours are out of band, within two days.
  out.clear();
  for (; h < surge + 8 + 48; ++h) {
    feed(m, h, steady(h), out);
  }
  REQUIRE(out.size() == 1);
  CHECK(out[0].series == AggregateMonitor::NxdomainRatio);
  CHECK_FALSE(out[0].alarm);
  CHECK(out[0].hour > surge + 8);
  CHECK_FALSE(m.alarm(AggregateMonitor::NxdomainRatio));
}

TEST_CASE("aggregate_anomaly: an hour is evaluated once every shard closed it, or after the lag",
          "[detect][aggregate]") {
  AggregateMonitor m(2, {}, 3);
  std::vector<Transition> out;
  const auto one = [](std::uint64_t q) {
    AggregateMonitor::Counts c;
    c.queries = q;
    return c;
  };
  // Both shards open hour kStart; it is the first one and is not evaluated.
  m.shard_hour(0) = {kStart, one(5)};
  m.shard_hour(1) = {kStart, one(5)};
  m.close(0, kStart + 1, out);
  m.close(1, kStart + 1, out);
  CHECK(m.hours_evaluated() == 0);
  // Shard 0 closes kStart + 1: shard 1 has not, so nothing is evaluated yet.
  m.shard_hour(0).counts = one(7);
  m.close(0, kStart + 2, out);
  CHECK(m.hours_evaluated() == 0);
  m.shard_hour(1).counts = one(3);
  m.close(1, kStart + 3, out);  // shard 1 closes kStart + 1 and kStart + 2
  CHECK(m.hours_evaluated() == 1);
  CHECK(m.late_events() == 0);
  // Shard 1 goes quiet: shard 0 moves on, and hours are evaluated 3 hours behind it.
  for (std::int64_t h = kStart + 2; h < kStart + 10; ++h) {
    m.shard_hour(0).counts = one(10);
    m.close(0, h + 1, out);
  }
  // Shard 0 closed through kStart + 10: hours up to kStart + 10 - 3 - 1 are evaluated.
  CHECK(m.hours_evaluated() == 10 - 3 - 1);
  // Shard 1 wakes up at kStart + 12 with counts of its hour kStart + 3, already evaluated.
  m.shard_hour(1).counts = one(4);
  m.close(1, kStart + 12, out);
  CHECK(m.late_events() == 4);
  // The end of input: every hour before the latest open one (kStart + 12) is evaluated.
  m.flush(out);
  CHECK(m.hours_evaluated() == 11);
  CHECK(out.empty());
}

TEST_CASE("aggregate_anomaly: the monitor's checkpoint carries its state", "[detect][aggregate]") {
  DetectOptions options;
  SharedState a(options, 2);
  std::vector<Transition> out;
  std::int64_t h = kStart;
  for (; h < kStart + kDayHours * 7 + 6; ++h) {
    AggregateMonitor::Counts c = steady(h);
    if (h >= kStart + kDayHours * 7) {
      c.servfail = c.responses / 4;
    }
    for (std::size_t s = 0; s < 2; ++s) {
      a.aggregate.shard_hour(s).hour = h;
      a.aggregate.shard_hour(s).counts = c;
      a.aggregate.close(s, h + 1, out);
    }
  }
  REQUIRE(out.size() == 1);
  CHECK(out[0].series == AggregateMonitor::ServfailRatio);
  a.aggregate.shard_hour(1).counts.queries = 17;  // an open hour's counts
  std::vector<std::byte> bytes;
  StateSink sink(bytes);
  a.save(sink);

  SharedState b(options, 2);
  StateSource in(bytes);
  REQUIRE(b.load(in));
  CHECK(in.done());
  CHECK(b.aggregate.alarm(AggregateMonitor::ServfailRatio));
  CHECK(b.aggregate.hours_evaluated() == a.aggregate.hours_evaluated());
  CHECK(b.aggregate.shard_hour(1).counts.queries == 17);
  // Both continue the same way.
  std::vector<Transition> out_a, out_b;
  for (; h < kStart + kDayHours * 9; ++h) {
    for (std::size_t s = 0; s < 2; ++s) {
      for (SharedState* st : {&a, &b}) {
        st->aggregate.shard_hour(s).hour = h;
        st->aggregate.shard_hour(s).counts = steady(h);
        st->aggregate.close(s, h + 1, st == &a ? out_a : out_b);
      }
    }
  }
  REQUIRE(out_a.size() == 1);
  REQUIRE(out_b.size() == 1);
  CHECK(out_a[0].hour == out_b[0].hour);
  CHECK_FALSE(b.aggregate.alarm(AggregateMonitor::ServfailRatio));

  // Another shard count, or a truncated section, does not load.
  SharedState c(options, 3);
  StateSource in_c(bytes);
  CHECK_FALSE(c.load(in_c));
  SharedState d(options, 2);
  const std::span<const std::byte> cut(bytes.data(), bytes.size() - 1);
  StateSource in_d(cut);
  CHECK_FALSE(d.load(in_d));
}

namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kOrigin = std::int64_t{1459728000} * kS;  // 2016-04-04T00:00:00Z

DnsMessage message(bool response, const std::string& name, std::uint8_t host, std::int64_t ts_ns,
                   std::uint16_t rcode) {
  return test::a_message(name, {203, 0, 113, host}, ts_ns, response, rcode);
}

}  // namespace

TEST_CASE("aggregate_anomaly: the engine writes the alarm and sets the gauge",
          "[detect][aggregate]") {
  const auto shards = GENERATE(std::size_t{1}, std::size_t{2});
  const auto log_path = std::filesystem::temp_directory_path() / "dnsmon-aggregate-events.jsonl";
  std::FILE* log = std::fopen(log_path.c_str(), "w");
  REQUIRE(log != nullptr);
  DetectOptions o;
  o.enabled = true;
  o.time.compression = 1;
  o.time.origin = "2016-04-04T00:00:00Z";
  o.time.origin_ns = kOrigin;
  o.memory.base_entries = 4096;
  o.memory.candidate_entries = 64;
  o.memory.watch_entries = 4;
  o.memory.seen_filter_entries = 4096;
  o.memory.doorkeeper_bits = 1U << 16U;
  DetectionSnapshot snap;
  {
    Engine engine(o, 1, shards, detail::PublicSuffixList::from_text("example\n", "test list"), log,
                  false, 7);
    engine.start();
    // Six steady days of 40 lookups an hour over 16 domains, about 1 in 20 NXDOMAIN; then 8 hours
    // where half the answers are NXDOMAIN, and one hour more (left open at the end of input).
    const std::int64_t hours = 24 * 6 + 8 + 1;
    for (std::int64_t h = 0; h < hours; ++h) {
      const bool surge = h >= kDayHours * 6;
      const int n = 36 + static_cast<int>(8 * draw(h, 4));
      for (int i = 0; i < n; ++i) {
        const std::int64_t ts = kOrigin + h * kHourNs + (i * 3600 / n) * kS;
        const std::string name = "d" + std::to_string((i + h) % 16) + ".example";
        const auto host = static_cast<std::uint8_t>(1 + i % 50);
        const bool nx = surge ? i % 2 == 0 : draw(h * 64 + i, 5) < 0.05;
        engine.port(0).on_message(message(false, name, host, ts, 0), -1);
        engine.port(0).on_message(message(true, name, host, ts + 1'000'000, nx ? 3 : 0), 1'000'000);
      }
    }
    engine.finish();
    snap = engine.snapshot();
  }
  std::fclose(log);
  std::ifstream in(log_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.find(R"("detector":"aggregate_anomaly")") != std::string::npos) {
      lines.push_back(line);
    }
  }
  std::filesystem::remove(log_path);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find(R"("event":"alarm","domain":"")") != std::string::npos);
  CHECK(lines[0].find(R"("severity":"low")") != std::string::npos);
  CHECK(lines[0].find(R"("series":"nxdomain_ratio")") != std::string::npos);
  CHECK(lines[0].find(R"("ts":"2016-04-10T05:59:59Z")") != std::string::npos);  // surge hour 6
  CHECK(snap.aggregate_anomaly[AggregateMonitor::NxdomainRatio]);
  CHECK_FALSE(snap.aggregate_anomaly[AggregateMonitor::Qps]);
  CHECK_FALSE(snap.aggregate_anomaly[AggregateMonitor::ServfailRatio]);
  const auto det = static_cast<std::size_t>(Detector::AggregateAnomaly);
  CHECK(snap.detector_events[det][static_cast<std::size_t>(Severity::Low)] == 1);
}

}  // namespace dnsmon::detect
