// A reload of the detection options (Engine::reconfigure(), DomainState::reconfigure()): new
// thresholds, allowlists, watchlist, search suffixes and org map apply from the next event, and
// the tables keep every entry and count; an org map that does not load changes nothing.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/common/hash.hpp"
#include "dnsmon/detect/engine.hpp"
#include "dnsmon/detect/tables.hpp"

#include "detect_messages.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::uint64_t kSeed = 99;
constexpr Day kDay = 16896;  // 2016-04-05
constexpr std::int64_t kS = 1'000'000'000;

// A lookup of `qname` (its registrable domain: the last two labels) by host 203.0.113.org.
LookupEvent lookup(const std::string& qname, std::uint8_t org) {
  LookupEvent ev;
  ev.kind = EventKind::Query;
  ev.flags = kFirstInDedupWindow;
  ev.qtype = 1;
  std::memcpy(ev.qname.data(), qname.data(), qname.size());
  ev.qname_len = static_cast<std::uint8_t>(qname.size());
  const auto last = qname.rfind('.');
  const auto dot = qname.rfind('.', last - 1);
  ev.domain_off = static_cast<std::uint8_t>(dot == std::string::npos ? 0 : dot + 1);
  ev.domain_len = static_cast<std::uint8_t>(qname.size() - ev.domain_off);
  ev.domain_hash = detail::hash_bytes(ev.domain(), kSeed);
  const std::uint64_t o = org;
  ev.org_hash = detail::hash_bytes(&o, sizeof(o), 5);
  ev.client = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, org};
  ev.org_kind = OrgKind::Host;
  ev.org_bits = 128;
  return ev;
}

std::uint64_t key(const std::string& domain) {
  return detail::hash_bytes(domain, kSeed);
}

DetectOptions small() {
  DetectOptions o;
  o.memory.base_entries = 256;
  o.memory.candidate_entries = 16;
  o.memory.watch_entries = 4;
  o.memory.seen_filter_entries = 64;
  o.memory.doorkeeper_bits = 4096;
  return o;
}

// One event as the engine hands it on (the query, then its lookup); the findings it made.
std::vector<Finding> feed(DomainState& s, const LookupEvent& ev, Day day, std::int64_t ns) {
  s.on_query(ev, day, ns);
  s.on_lookup(ev, day, ns);
  std::vector<Finding> out;
  out.swap(s.findings());
  return out;
}

std::int64_t noon(Day day) {
  return std::int64_t{day} * kDayNs + kS * 12 * 3600;
}

bool watched(const DomainState& s, const std::string& domain) {
  const BaseEntry* e = s.find(key(domain));
  REQUIRE(e != nullptr);
  return (e->flags & BaseEntry::kWatched) != 0;
}

std::uint64_t watch_entries(const DomainState& s) {
  return s.counters().entries[DomainState::kWatch].load();
}

std::vector<std::string> published_watched(const DomainState& s, Day day) {
  PublishedDomains p;
  s.publish(day, noon(day), 10, p);
  std::vector<std::string> out;
  for (const DomainSeries& d : p.domains) {
    if (d.watched) {
      out.push_back(d.domain);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A tiny deterministic generator for irregular, human-like timings.
struct Lcg {
  std::uint64_t x = 12345;

  std::uint32_t next(std::uint32_t n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>((x >> 33U) % n);
  }
};

// A day of human-like use of `qname` by hosts 1 (most) and 2, then the day boundary: the
// covert_pair scores it wrote (none: -1).
double human_day(DomainState& s, const std::string& qname, Day day, Lcg& rng) {
  std::int64_t t = std::int64_t{day} * kDayNs + kS * 8 * 3600;
  for (int k = 0; k < 5; ++k) {
    t += (600 + rng.next(3000)) * kS;
    const std::uint8_t org = rng.next(5) == 0 ? 2 : 1;
    for (int i = 0; i < 3; ++i) {
      (void)feed(s, lookup(qname, org), day, t + kS * 20 * i);
    }
  }
  (void)s.end_of_day(day, 150);
  double score = -1;
  for (const Finding& f : s.findings()) {
    if (f.detector == Detector::CovertPair) {
      score = std::max(score, f.score);
    }
  }
  s.findings().clear();
  return score;
}

}  // namespace

TEST_CASE("a reload's thresholds apply from the next event; the tables keep their counts",
          "[detect][reload]") {
  DetectOptions o = small();
  o.detectors.newly_observed.min_events_7d = 1000;  // never, for now
  DomainState s(o, 1.0, kSeed);
  (void)feed(s, lookup("www.old.example", 1), kDay, noon(kDay));  // the warm-up starts
  for (int n = 0; n < 5; ++n) {
    CHECK(feed(s, lookup("www.fresh.example", 1), kDay + 20, noon(kDay + 20) + n * kS).empty());
  }
  REQUIRE(s.find(key("fresh.example")) != nullptr);
  CHECK(s.find(key("fresh.example"))->total_events == 5);
  const std::uint64_t entries = s.counters().entries[DomainState::kBase].load();

  DetectOptions next = o;  // outlives s, as the engine's settings do
  next.detectors.newly_observed.min_events_7d = 6;
  s.reconfigure(next);
  CHECK(s.find(key("fresh.example"))->total_events == 5);  // kept
  CHECK(s.counters().entries[DomainState::kBase].load() == entries);
  const std::vector<Finding> f =
      feed(s, lookup("www.fresh.example", 1), kDay + 20, noon(kDay + 20) + 9 * kS);
  REQUIRE(f.size() == 1);
  CHECK(f[0].detector == Detector::NewlyObserved);
  CHECK(f[0].domain == "fresh.example");
  CHECK(f[0].details.size() == 2);
  CHECK(s.find(key("fresh.example"))->total_events == 6);
}

TEST_CASE("a reload's watchlist pins and unpins domains and keeps their entries",
          "[detect][reload]") {
  DetectOptions o = small();
  o.exports.watchlist = {"kept.example"};
  DomainState s(o, 1.0, kSeed);
  for (int n = 0; n < 3; ++n) {
    (void)feed(s, lookup("www.kept.example", 1), kDay, noon(kDay) + n * kS);
    (void)feed(s, lookup("www.later.example", 1), kDay, noon(kDay) + n * kS);
  }
  CHECK(watched(s, "kept.example"));
  CHECK_FALSE(watched(s, "later.example"));
  CHECK(watch_entries(s) == 1);
  CHECK(published_watched(s, kDay) == std::vector<std::string>{"kept.example"});

  // later.example joins (first in the list: kept.example's entry moves to the second place).
  DetectOptions joined = o;
  joined.exports.watchlist = {"later.example", "kept.example"};
  s.reconfigure(joined);
  CHECK(watched(s, "later.example"));  // pinned at once: it is in the base table
  CHECK(watched(s, "kept.example"));
  CHECK(watch_entries(s) == 1);  // later.example's watch entry comes with its next lookup
  (void)feed(s, lookup("www.later.example", 1), kDay + 1, noon(kDay + 1));
  CHECK(watch_entries(s) == 2);
  CHECK(s.candidate(*s.find(key("later.example"))) != nullptr);  // promoted as watched
  CHECK(published_watched(s, kDay + 1) ==
        std::vector<std::string>{"kept.example", "later.example"});
  CHECK(s.find(key("later.example"))->total_events == 4);

  // Both leave: unpinned, their watch entries freed, their base and candidate entries kept.
  DetectOptions none = o;
  none.exports.watchlist = {};
  s.reconfigure(none);
  CHECK_FALSE(watched(s, "later.example"));
  CHECK_FALSE(watched(s, "kept.example"));
  CHECK(watch_entries(s) == 0);
  CHECK(published_watched(s, kDay + 1).empty());
  CHECK(s.find(key("later.example"))->total_events == 4);
  CHECK(s.candidate(*s.find(key("later.example"))) != nullptr);
}

TEST_CASE("a reload's allowlist silences covert_pair at once, and its removal finds the history",
          "[detect][reload]") {
  DetectOptions o = small();
  DomainState s(o, 1.0, kSeed);
  Lcg rng;
  double before = -1;
  for (Day d = kDay; d < kDay + 12; ++d) {
    before = std::max(before, human_day(s, "www.quiet.example", d, rng));
  }
  CHECK(before == Approx(0.4));  // the gate passes: concentrated, human, steady

  DetectOptions allowed = o;
  allowed.exports.allowlist_domains = {"quiet.example"};
  s.reconfigure(allowed);
  for (Day d = kDay + 12; d < kDay + 16; ++d) {
    CHECK(human_day(s, "www.quiet.example", d, rng) < 0);  // allow-listed: no score event
  }
  // Allowed again: the 14 days of volume and concentration are still there, so the gate passes
  // on the first boundary (a fresh table would need min_active_days first).
  s.reconfigure(o);
  CHECK(human_day(s, "www.quiet.example", kDay + 16, rng) == Approx(0.4));
}

namespace {

constexpr std::int64_t kOrigin = std::int64_t{1459728000} * kS;  // 2016-04-04T00:00:00Z

// An engine's options: detection on, a logical day per minute of packet time from kOrigin, small
// tables.
DetectOptions engine_options() {
  DetectOptions o;
  o.enabled = true;
  o.time.compression = 1440;
  o.time.origin = "2016-04-04T00:00:00Z";
  o.time.origin_ns = kOrigin;
  o.memory.base_entries = 4096;
  o.memory.candidate_entries = 64;
  o.memory.watch_entries = 4;
  o.memory.seen_filter_entries = 1024;
  o.memory.doorkeeper_bits = 1U << 16U;
  return o;
}

std::string write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path.string();
}

// The "org" detail of every suffix_leak line of the event log, in order.
std::vector<std::string> leak_orgs(const std::string& log_path) {
  std::ifstream in(log_path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(R"("detector":"suffix_leak")") == std::string::npos) {
      continue;
    }
    const auto at = line.find(R"("org":")");
    REQUIRE(at != std::string::npos);
    const auto start = at + 7;
    out.push_back(line.substr(start, line.find('"', start) - start));
  }
  return out;
}

}  // namespace

TEST_CASE(
    "an engine takes a reload's search suffixes and org map from the next message; a bad "
    "org map changes nothing",
    "[detect][reload]") {
  const auto shards = GENERATE(std::size_t{1}, std::size_t{2});
  const std::string log_path =
      (std::filesystem::temp_directory_path() / "dnsmon-reload-events.jsonl").string();
  const std::string map_path =
      write_file("dnsmon-reload-orgs.txt", "203.0.113.0/24 Hotel Guests\n");
  const std::string bad_path = write_file("dnsmon-reload-bad-orgs.txt", "not-a-prefix Somebody\n");
  std::FILE* log = std::fopen(log_path.c_str(), "w");
  REQUIRE(log != nullptr);
  DetectOptions o = engine_options();
  {
    Engine engine(o, 1, shards, detail::PublicSuffixList::from_text("com\nexample\n", "test"), log,
                  false, 11);
    engine.start();
    std::int64_t t = kOrigin + 3600 * kS;
    const auto leak = [&](const std::string& domain) {
      t += kS;  // more than the de-duplication window apart
      engine.port(0).on_message(
          test::a_message("mail." + domain + ".corp.orga.example", {203, 0, 113, 15}, t), -1);
    };
    leak("first-mailer.example");  // no search suffix yet: an ordinary name
    CHECK(engine.settings_generation() == 0);

    DetectOptions next = o;
    next.normalize.search_suffixes = {"corp.orga.example"};
    next.clients.org_map_file = map_path;
    next.memory.base_entries = 8;  // a size: the engine keeps its own
    const Engine::Reconfigured r = engine.reconfigure(next);
    CHECK(r.org_map_changed);
    CHECK(r.org_map_entries == 1);
    CHECK(engine.settings_generation() == 1);
    leak("second-mailer.example");

    DetectOptions bad = next;
    bad.clients.org_map_file = bad_path;
    bad.normalize.search_suffixes = {};
    CHECK_THROWS_WITH(engine.reconfigure(bad), Catch::Contains(bad_path + ":1:"));
    CHECK(engine.settings_generation() == 1);  // the running settings stay
    leak("third-mailer.example");

    // The same map again: published, but not a change of the organisations.
    CHECK_FALSE(engine.reconfigure(next).org_map_changed);
    engine.finish();
    const DetectionSnapshot s = engine.snapshot();
    CHECK(s.queries == 3);
    CHECK(s.detector_events[static_cast<std::size_t>(Detector::SuffixLeak)][0] == 2);
    CHECK(s.entries[DomainState::kBase] + s.rejected[DomainState::kBase] <= 3);
    CHECK(s.capacity[DomainState::kBase] >= 4096);  // the tables were not resized
  }
  std::fclose(log);
  CHECK(leak_orgs(log_path) == std::vector<std::string>{"Hotel Guests", "Hotel Guests"});
  std::filesystem::remove(log_path);
  std::filesystem::remove(map_path);
  std::filesystem::remove(bad_path);
}

TEST_CASE("an engine's shards take a reload's watchlist and export the watched domain",
          "[detect][reload]") {
  DetectOptions o = engine_options();
  const auto shards = GENERATE(std::size_t{1}, std::size_t{3});
  Engine engine(o, 2, shards, detail::PublicSuffixList::from_text("com\nexample\n", "test"),
                nullptr, false, 11);
  engine.start();
  const std::int64_t day_ns = 60 * kS;
  const auto day_of_lookups = [&](int day) {
    for (int i = 0; i < 6; ++i) {
      const std::int64_t t = kOrigin + day * day_ns + kS * 5 * (i + 1);
      engine.port(static_cast<std::size_t>(i % 2))
          .on_message(test::a_message("www.watched.example", {203, 0, 113, 7}, t), -1);
      engine.port(static_cast<std::size_t>(i % 2))
          .on_message(test::a_message("www.other.example", {203, 0, 113, 8}, t), -1);
    }
  };
  day_of_lookups(1);
  day_of_lookups(2);
  DetectOptions next = o;
  next.exports.watchlist = {"watched.example"};
  (void)engine.reconfigure(next);
  day_of_lookups(3);
  day_of_lookups(4);
  engine.finish();
  const DetectionSnapshot s = engine.snapshot();
  CHECK(s.queries == 48);  // nothing lost or reset
  CHECK(s.entries[DomainState::kWatch] == 1);
  std::vector<std::string> watched;
  for (const DomainSeries& d : s.domains) {
    if (d.watched) {
      watched.push_back(d.domain);
    }
  }
  CHECK(watched == std::vector<std::string>{"watched.example"});
}

}  // namespace dnsmon::detect

namespace dnsmon::detect {

TEST_CASE(
    "a checkpoint written after a reload loads into the next run, with the old or the new "
    "options",
    "[detect][reload]") {
  const auto dir = std::filesystem::temp_directory_path() / "dnsmon-reload-checkpoint";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  DetectOptions o = engine_options();
  o.state_file = (dir / "detection.state").string();
  DetectOptions edited = o;  // every kind of reloadable key changed
  edited.detectors.burst.min_ratio = 9;
  edited.detectors.covert_pair.weights.gate = 0.5;
  edited.exports.watchlist = {"watched.example"};
  edited.exports.allowlist_domains = {"allowed.example"};
  edited.normalize.search_suffixes = {"corp.example"};
  edited.clients.external_v4_prefix = 16;
  {
    Engine engine(o, 1, 2, detail::PublicSuffixList::from_text("com\nexample\n", "test"), nullptr,
                  false, 11);
    REQUIRE(engine.restore_status().outcome == RestoreStatus::Outcome::Missing);
    engine.start();
    for (int i = 0; i < 100; ++i) {
      const std::string name = (i % 2 == 0 ? "www.watched.example" : "www.d.example");
      engine.port(0).on_message(test::a_message(name, {203, 0, 113, 7}, kOrigin + i * kS), -1);
      if (i == 50) {
        (void)engine.reconfigure(edited);
      }
    }
    engine.finish();
    REQUIRE_FALSE(engine.final_checkpoint_failed());
  }
  for (const DetectOptions* next : {&o, &edited}) {
    Engine again(*next, 1, 2, detail::PublicSuffixList::from_text("com\nexample\n", "test"),
                 nullptr, false, 11);
    CAPTURE(again.restore_status().message);
    CHECK(again.restore_status().outcome == RestoreStatus::Outcome::Loaded);
    CHECK(again.snapshot().entries[DomainState::kBase] == 2);
    // The watch entry is placed by the run's own watchlist.
    CHECK(again.snapshot().entries[DomainState::kWatch] == (next == &edited ? 1U : 0U));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace dnsmon::detect
