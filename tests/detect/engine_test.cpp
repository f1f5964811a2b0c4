// The detection engine: the logical clock and its days, the hand-off from workers to shards
// (counted, dropped when full live, waited for in a replay) and the suffix_leak event log.
#include "dnsmon/detect/engine.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "detect_messages.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kOrigin = std::int64_t{1459728000} * kS;  // 2016-04-04T00:00:00Z

std::shared_ptr<const detail::PublicSuffixList> test_list() {
  return detail::PublicSuffixList::from_text("com\nexample\n", "test list");
}

DnsMessage query(const std::string& name, std::uint8_t host, std::int64_t ts_ns) {
  return test::a_message(name, {203, 0, 113, host}, ts_ns);
}

DetectOptions scenario_options() {
  DetectOptions o;
  o.enabled = true;
  o.time.compression = 1440;
  o.time.origin = "2016-04-04T00:00:00Z";
  o.time.origin_ns = kOrigin;
  o.normalize.search_suffixes = {"corp.orga.example"};
  return o;
}

}  // namespace

TEST_CASE("logical time compresses packet time from the origin, in UTC days", "[detect]") {
  LogicalClock clock(1440, kOrigin);
  CHECK(clock.logical(kOrigin) == kOrigin);
  CHECK(clock.logical(kOrigin + 60 * kS) == kOrigin + kDayNs);  // a pcap minute is a day
  CHECK(LogicalClock::day(clock.logical(kOrigin + 60 * kS - 1)) == LogicalClock::day(kOrigin));
  CHECK(LogicalClock::day(clock.logical(kOrigin + 60 * kS)) == LogicalClock::day(kOrigin) + 1);
  CHECK(LogicalClock::day(kOrigin) == 16895);  // days from 1970-01-01 to 2016-04-04
  CHECK(LogicalClock::day(-1) == -1);
  CHECK(format_rfc3339(kOrigin) == "2016-04-04T00:00:00Z");
  CHECK(format_rfc3339(clock.logical(kOrigin + 172 * (60 * kS) + 58 * kS)) ==
        "2016-09-23T23:12:00Z");

  LogicalClock first(1, std::nullopt);
  CHECK(first.origin() == LogicalClock::kUnset);
  CHECK(first.logical(kOrigin + 5 * kS) == kOrigin + 5 * kS);  // the first packet is the origin
  CHECK(first.origin() == kOrigin + 5 * kS);
  CHECK(first.logical(kOrigin + 7 * kS) == kOrigin + 7 * kS);
  LogicalClock fast(10, std::nullopt);
  CHECK(fast.logical(kOrigin) == kOrigin);
  CHECK(fast.logical(kOrigin + kS) == kOrigin + 10 * kS);
}

TEST_CASE("a replay hands every event to the shards and logs suffix leaks", "[detect]") {
  const auto shards = GENERATE(std::size_t{1}, std::size_t{3});
  const auto log_path = std::filesystem::temp_directory_path() / "dnsmon-detect-events.jsonl";
  std::FILE* log = std::fopen(log_path.c_str(), "w");
  REQUIRE(log != nullptr);
  {
    Engine engine(scenario_options(), 2, shards, test_list(), log, false, 11);
    engine.start();
    // More events than a ring holds: a replay waits for room instead of dropping.
    const int n = static_cast<int>(Engine::kRingEvents) * 3;
    for (int i = 0; i < n; ++i) {
      const std::string name = "www.d" + std::to_string(i % 100) + ".com";
      engine.port(static_cast<std::size_t>(i % 2))
          .on_message(
              query(name, static_cast<std::uint8_t>(i % 7), kOrigin + std::int64_t{i} * 1000), -1);
    }
    // Sep 23 13:55:30 logical: 172 days and 13:55:30 after the origin, /1440 in packet time.
    const std::int64_t leak_ts = kOrigin + (172 * kDayNs + (13 * 3600 + 55 * 60 + 30) * kS) / 1440;
    const auto leak = query("mail.hotel-promo-mailer.example.corp.orga.example", 15, leak_ts);
    engine.port(0).on_message(leak, -1);
    engine.port(0).on_message(leak, -1);  // a retry in the window: one event only
    DnsMessage answer = leak;
    answer.qr = true;
    answer.rcode = 3;
    std::swap(answer.src, answer.dst);
    engine.port(0).on_message(answer, 5'000);
    engine.port(0).on_message(answer, -1);  // unmatched: no event
    engine.finish();
    const DetectionSnapshot s = engine.snapshot();
    CHECK(s.queries == static_cast<std::uint64_t>(n) + 2);
    CHECK(s.responses == 1);
    CHECK(s.dropped == 0);
    CHECK(s.detector_events[static_cast<std::size_t>(Detector::SuffixLeak)][0] == 1);
    CHECK(s.logical_time_s ==
          Approx(static_cast<double>(kOrigin + (leak_ts - kOrigin) * 1440) / 1e9));
  }
  std::fclose(log);
  std::ifstream in(log_path);
  // The synthetic traffic (each domain every 0.14 logical seconds) also makes the day-level
  // detectors write beacon lines; the suffix leak is the one line of its detector.
  std::string line, leak_line;
  while (std::getline(in, line)) {
    if (line.find(R"("detector":"suffix_leak")") != std::string::npos) {
      CHECK(leak_line.empty());
      leak_line = line + "\n";
    }
  }
  CHECK(leak_line ==
        "{\"ts\":\"2016-09-23T13:55:30Z\",\"detector\":\"suffix_leak\",\"event\":\"leak\","
        "\"domain\":\"hotel-promo-mailer.example\",\"score\":0,\"severity\":\"info\",\"reasons\":["
        "\"suffix_leak\"],\"details\":{\"qname\":\"mail.hotel-promo-mailer.example.corp.orga."
        "example\",\"search_suffix\":\"corp.orga.example\",\"org\":\"203.0.113.0/24\"}}\n");
  std::filesystem::remove(log_path);
}

TEST_CASE("the event log is handed to its reopen callback when it reaches its size and on demand",
          "[detect]") {
  const auto dir = std::filesystem::temp_directory_path() / "dnsmon-detect-rotate";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "events.jsonl";
  std::FILE* first = std::fopen(path.c_str(), "a");
  REQUIRE(first != nullptr);
  std::vector<std::FILE*> opened{first};
  std::vector<bool> rotations;
  {
    Engine engine(scenario_options(), 1, 1, test_list(), first, false, 11);
    // Rotate once 500 bytes were written (a suffix_leak line is about 330).
    engine.set_log_reopen(
        [&](std::FILE* current, bool rotate) -> std::FILE* {
          CHECK(current == opened.back());
          rotations.push_back(rotate);
          if (rotate) {
            std::filesystem::rename(path, dir / "events.jsonl.1");
          }
          std::FILE* f = std::fopen(path.c_str(), "a");
          std::fclose(current);
          opened.push_back(f);
          return f;
        },
        500);
    engine.start();
    const std::int64_t t0 = kOrigin + 172 * kDayNs / 1440;
    for (int i = 0; i < 4; ++i) {
      const auto leak =
          query("mail.leak" + std::to_string(i) + ".example.corp.orga.example", 15, t0 + i * kS);
      engine.port(0).on_message(leak, -1);
    }
    engine.finish();
    engine.reopen_log();  // as SIGHUP does
  }
  std::fclose(opened.back());
  // Four lines: the first two reach 500 bytes and rotate, the next two again; then the reopen.
  CHECK(rotations == std::vector<bool>{true, true, false});
  const auto lines = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    int n = 0;
    for (std::string l; std::getline(in, l);) {
      n += l.find("\"suffix_leak\"") != std::string::npos ? 1 : 0;
    }
    return n;
  };
  CHECK(lines(dir / "events.jsonl.1") == 2);  // the second rotation replaced the first's
  CHECK(lines(path) == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a replay calls the hourly writer at every logical hour boundary, in order", "[detect]") {
  const auto shards = GENERATE(std::size_t{1}, std::size_t{3});
  constexpr std::int64_t kPacketHour = kHourNs / 1440;  // a logical hour of packet time
  std::vector<std::int64_t> calls;
  std::vector<double> logical_at_call;
  {
    Engine engine(scenario_options(), 1, shards, test_list(), nullptr, false, 11);
    engine.on_logical_hour([&](std::int64_t logical_ns) {
      calls.push_back(logical_ns);
      logical_at_call.push_back(engine.snapshot().logical_time_s);
      return true;
    });
    engine.start();
    // 10 queries in each of the first two logical hours, then none until the sixth.
    for (int i = 0; i < 20; ++i) {
      const std::string name = "www.d" + std::to_string(i % 5) + ".com";
      engine.port(0).on_message(
          query(name, 1, kOrigin + (i / 10) * kPacketHour + std::int64_t{i} * 1000), -1);
    }
    // 5 ms of packet time: 7.2 logical seconds.
    engine.port(0).on_message(query("www.late.com", 1, kOrigin + 5 * kPacketHour + 5'000'000), -1);
    engine.finish();
  }
  // 01:00 .. 05:00, none left out even where no event fell, then the end (05:00:07.2).
  REQUIRE(calls.size() == 6);
  for (std::size_t h = 0; h < 5; ++h) {
    CHECK(calls[h] == kOrigin + static_cast<std::int64_t>(h + 1) * kHourNs);
  }
  CHECK(calls[5] == kOrigin + 5 * kHourNs + 7'200'000'000);
  // No shard had gone past the boundary when the writer was called for it; with one shard, at
  // 01:00 it had taken the first hour's last query.
  for (std::size_t h = 0; h < 5; ++h) {
    CHECK(logical_at_call[h] < static_cast<double>(calls[h]) / 1e9);
  }
  if (shards == 1) {
    CHECK(logical_at_call[0] ==
          Approx(static_cast<double>(kOrigin + std::int64_t{9000} * 1440) / 1e9)
              .epsilon(0)
              .margin(1e-3));
  }
}

TEST_CASE("a hourly writer that fails stops the calls and the replay goes on", "[detect]") {
  constexpr std::int64_t kPacketHour = kHourNs / 1440;
  int calls = 0;
  Engine engine(scenario_options(), 1, 2, test_list(), nullptr, false, 11);
  engine.on_logical_hour([&](std::int64_t) {
    ++calls;
    return false;
  });
  engine.start();
  for (int i = 0; i < 50; ++i) {
    engine.port(0).on_message(query("www.d.com", 1, kOrigin + i * kPacketHour), -1);
  }
  engine.finish();
  CHECK(calls == 1);
  CHECK(engine.snapshot().queries == 50);
}

TEST_CASE("live, a full ring drops events and counts them", "[detect]") {
  Engine engine(scenario_options(), 1, 1, test_list(), nullptr, true, 11);
  // The shard is not started, so nothing empties the ring.
  const int n = static_cast<int>(Engine::kRingEvents) + 100;
  for (int i = 0; i < n; ++i) {
    engine.port(0).on_message(query("a.example", 1, kOrigin + i * kS), -1);
  }
  const DetectionSnapshot s = engine.snapshot();
  CHECK(s.queries == static_cast<std::uint64_t>(n));
  CHECK(s.dropped == 100);
  CHECK(s.ring_bytes == Engine::kRingEvents * sizeof(LookupEvent));
}

}  // namespace dnsmon::detect
