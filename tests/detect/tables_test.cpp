// The per-shard domain tables (detection spec 3.4): doorkeeper admission, 8-way eviction by
// retention value into the seen-history filter, candidate promotion, the day boundary's base
// rate, and their counters.
#include "dnsmon/detect/tables.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/common/hash.hpp"
#include "dnsmon/detect/engine.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::uint64_t kSeed = 99;
constexpr Day kDay = 16895;  // 2016-04-04

LookupEvent lookup(const std::string& domain, std::uint64_t org) {
  LookupEvent ev;
  ev.kind = EventKind::Query;
  ev.flags = kFirstInDedupWindow;
  std::memcpy(ev.qname.data(), domain.data(), domain.size());
  ev.qname_len = static_cast<std::uint8_t>(domain.size());
  ev.domain_len = ev.qname_len;
  ev.domain_hash = detail::hash_bytes(domain, kSeed);
  ev.org_hash = detail::hash_bytes(&org, sizeof(org), 5);
  return ev;
}

std::uint64_t key(const std::string& domain) {
  return detail::hash_bytes(domain, kSeed);
}

DetectOptions tiny() {
  DetectOptions o;
  o.memory.base_entries = 8;  // one set of 8 ways
  o.memory.candidate_entries = 2;
  o.memory.watch_entries = 1;
  o.memory.seen_filter_entries = 64;
  o.memory.doorkeeper_bits = 4096;
  return o;
}

Day after(int days) {
  return static_cast<Day>(kDay + days);
}

std::int64_t at(Day day) {
  return std::int64_t{day} * 86'400'000'000'000 + 1;
}

// "2016-04-24" for a day number.
std::string day_string(Day d) {
  return format_rfc3339(std::int64_t{d} * kDayNs).substr(0, 10);
}

}  // namespace

TEST_CASE("the doorkeeper remembers a key until it is cleared", "[detect]") {
  Doorkeeper d(4096);
  CHECK(d.bytes() == 512);
  CHECK_FALSE(d.test_and_set(42));
  CHECK(d.test_and_set(42));
  d.clear();
  CHECK_FALSE(d.test_and_set(42));
}

TEST_CASE("the seen filter keeps first and last days and forgets the least recent when full",
          "[detect]") {
  SeenFilter f(4);  // one bucket of four
  CHECK(f.capacity() == 4);
  CHECK(f.bytes() == 24);
  for (std::uint64_t k = 1; k <= 4; ++k) {
    f.insert(k, {static_cast<Day>(100 + k), static_cast<Day>(200 + k)});
  }
  CHECK(f.entries() == 4);
  f.insert(5, {105, 205});  // forgets key 1, the least recently active
  SeenFilter::Record r;
  CHECK_FALSE(f.take(1, r));
  REQUIRE(f.take(3, r));
  CHECK(r.first_seen == 103);
  CHECK(r.last_active == 203);
  CHECK_FALSE(f.take(3, r));  // taken
  CHECK(f.entries() == 3);
}

TEST_CASE(
    "a full bucket admits a domain on its second lookup of the day, evicting the least "
    "valuable entry into the seen filter",
    "[detect]") {
  DomainState s(tiny(), 1.0, kSeed);
  const auto& c = s.counters();
  CHECK(c.capacity[DomainState::kBase] == 8);
  CHECK(c.bytes[0] == std::uint64_t{8} * 88);
  // Eight domains take the free ways at once; d0 on an early day, the others later and busier.
  s.on_lookup(lookup("d0.example", 1), kDay, at(kDay));
  for (int i = 1; i < 8; ++i) {
    for (int n = 0; n < 6; ++n) {
      s.on_lookup(lookup("d" + std::to_string(i) + ".example", 1), kDay + 20, at(kDay + 20));
    }
  }
  CHECK(c.entries[DomainState::kBase] == 8);
  CHECK(c.rejected[DomainState::kBase] == 0);
  // A ninth: its first lookup of the day is turned away by the doorkeeper.
  s.on_lookup(lookup("new.example", 2), kDay + 20, at(kDay + 20));
  CHECK(c.rejected[DomainState::kBase] == 1);
  CHECK(s.find(key("new.example")) == nullptr);
  // Its second takes the way of d0 (silent for 20 days, one event).
  s.on_lookup(lookup("new.example", 2), kDay + 20, at(kDay + 20));
  REQUIRE(s.find(key("new.example")) != nullptr);
  CHECK(s.find(key("d0.example")) == nullptr);
  CHECK(c.evictions[DomainState::kBase] == 1);
  CHECK(c.entries[DomainState::kBase] == 8);
  CHECK(c.seen_filter_entries == 1);
  // After the day boundary the doorkeeper has forgotten: d0's first lookup is turned away, its
  // second comes back with its history from the seen filter.
  (void)s.end_of_day(kDay + 20, 0);
  s.on_lookup(lookup("d0.example", 1), kDay + 40, at(kDay + 40));
  CHECK(c.rejected[DomainState::kBase] == 2);
  s.on_lookup(lookup("d0.example", 1), kDay + 40, at(kDay + 40));
  const BaseEntry* back = s.find(key("d0.example"));
  REQUIRE(back != nullptr);
  CHECK(back->first_seen == kDay);
  CHECK(back->prev_active == kDay);  // dormant from kDay to kDay + 40
  CHECK(back->last_active == kDay + 40);
  CHECK(back->total_events == 1);
}

TEST_CASE("a concentrated or reactivated domain is promoted to a candidate", "[detect]") {
  DomainState s(tiny(), 1.0, kSeed);
  const auto& c = s.counters();
  for (int n = 0; n < 9; ++n) {
    s.on_lookup(lookup("pair.example", static_cast<std::uint64_t>(n % 2)), kDay, at(kDay));
  }
  const BaseEntry* e = s.find(key("pair.example"));
  REQUIRE(e != nullptr);
  CHECK(s.candidate(*e) == nullptr);
  s.on_lookup(lookup("pair.example", 0), kDay, at(kDay));  // the 10th event in 7 days, 2 orgs
  REQUIRE(s.candidate(*e) != nullptr);
  CHECK(c.entries[DomainState::kCandidate] == 1);
  CHECK(std::string(s.candidate(*e)->name.data()) == "pair.example");
  CHECK(s.candidate(*e)->day_ring[kDay % 64] == 10);

  // A popular domain (many organisations) is not promoted.
  for (std::uint64_t org = 0; org < 40; ++org) {
    s.on_lookup(lookup("popular.example", 100 + org), kDay, at(kDay));
  }
  CHECK(s.candidate(*s.find(key("popular.example"))) == nullptr);
  CHECK(s.find(key("popular.example"))->distinct_orgs() > 10);

  // A domain back after 14 silent days is promoted on its return.
  s.on_lookup(lookup("dormant.example", 7), kDay, at(kDay));
  s.on_lookup(lookup("dormant.example", 7), kDay + 15, at(kDay + 15));
  CHECK(s.candidate(*s.find(key("dormant.example"))) != nullptr);
  CHECK(c.entries[DomainState::kCandidate] == 2);
  // The tier is full: the next promotion evicts the least recently active unflagged candidate.
  s.on_lookup(lookup("late.example", 7), kDay + 1, at(kDay + 1));
  s.on_lookup(lookup("late.example", 7), kDay + 16, at(kDay + 16));
  CHECK(s.candidate(*s.find(key("late.example"))) != nullptr);
  CHECK(c.evictions[DomainState::kCandidate] == 1);
  CHECK(s.candidate(*s.find(key("pair.example"))) == nullptr);
}

TEST_CASE("the day boundary counts the querier-concentration base rate", "[detect]") {
  DetectOptions o = tiny();
  o.memory.base_entries = 64;
  o.memory.candidate_entries = 8;
  DomainState s(o, 1.0, kSeed);
  // Two organisations, 6 events a day for 9 days: flagged by both counts.
  for (Day d = kDay; d < kDay + 9; ++d) {
    for (int n = 0; n < 6; ++n) {
      s.on_lookup(lookup("pair.example", static_cast<std::uint64_t>(n % 2)), d, at(d));
    }
  }
  // Ten organisations: neither.
  for (std::uint64_t org = 0; org < 10; ++org) {
    s.on_lookup(lookup("shared.example", org), kDay + 8, at(kDay + 8));
  }
  // One organisation, one event: only the count without the volume gate.
  s.on_lookup(lookup("quiet.example", 3), kDay + 8, at(kDay + 8));
  DayReport r = s.end_of_day(kDay + 8, 150);
  CHECK(r.querier_concentration_any == 2);
  CHECK(r.querier_concentration == 1);
  CHECK(s.counters().flagged_qc == 1);
  CHECK(s.counters().flagged_qc_any == 2);
  // Without the population the volume-gated count is 0.
  r = s.end_of_day(kDay + 8, 50);
  CHECK(r.querier_concentration == 0);
  // Nine days later nothing is in the 8-day ring any more.
  r = s.end_of_day(kDay + 17, 150);
  CHECK(r.querier_concentration_any == 0);
}

// The findings of one lookup event on `day`, taken from the state.
std::vector<Finding> findings_of(DomainState& s, const LookupEvent& ev, Day day) {
  s.on_lookup(ev, day, at(day));
  std::vector<Finding> out;
  out.swap(s.findings());
  return out;
}

// A detail's JSON value, or "" when the finding has none of that key.
std::string detail(const Finding& f, std::string_view key) {
  for (const auto& [k, v] : f.details) {
    if (k == key) {
      return v;
    }
  }
  return "";
}

TEST_CASE("dormant_reactivation fires when a run after a long silence reaches its events",
          "[detect]") {
  DetectOptions o = tiny();
  o.memory.base_entries = 64;
  o.memory.candidate_entries = 8;
  DomainState s(o, 1.0, kSeed);
  CHECK(findings_of(s, lookup("mailer.example", 1), kDay).empty());
  (void)findings_of(s, lookup("mailer.example", 1), kDay + 10);
  // 20 silent days, 30 days of history: the run of kDay + 30 is a reactivation.
  for (int n = 0; n < 5; ++n) {
    CHECK(findings_of(s, lookup("mailer.example", 1), kDay + 30).empty());  // one active day
  }
  for (int n = 0; n < 4; ++n) {
    CHECK(findings_of(s, lookup("mailer.example", 2), kDay + 31).empty());  // 9 events
  }
  const std::vector<Finding> f = findings_of(s, lookup("mailer.example", 2), kDay + 31);
  REQUIRE(f.size() == 1);
  CHECK(f[0].detector == Detector::DormantReactivation);
  CHECK(f[0].domain == "mailer.example");
  CHECK(f[0].reasons == kReasonReactivated);
  CHECK(detail(f[0], "run_start") == "\"" + day_string(kDay + 30) + "\"");
  CHECK(detail(f[0], "gap_days") == "20");
  CHECK(detail(f[0], "history_days") == "30");
  CHECK(detail(f[0], "events") == "10");
  CHECK(detail(f[0], "active_days") == "2");
  CHECK(f[0].score == Approx(0.5 + std::log2(21.0) / std::log2(181.0) / 2));
  // Once per run.
  CHECK(findings_of(s, lookup("mailer.example", 2), kDay + 31).empty());

  // Too little history (first seen 20 days before the run): no event.
  (void)findings_of(s, lookup("young.example", 1), kDay + 10);
  for (int n = 0; n < 12; ++n) {
    CHECK(findings_of(s, lookup("young.example", 1), after(30 + n % 2)).empty());
  }
}

TEST_CASE("newly_observed fires for a first sighting after the warm-up with 10 events in 7 days",
          "[detect]") {
  DetectOptions o = tiny();
  o.memory.base_entries = 64;
  DomainState s(o, 1.0, kSeed);
  (void)findings_of(s, lookup("old.example", 1), kDay);  // the warm-up starts
  for (int n = 0; n < 12; ++n) {
    CHECK(findings_of(s, lookup("early.example", 1), kDay + 5).empty());  // in the warm-up
  }
  for (int n = 0; n < 9; ++n) {
    CHECK(findings_of(s, lookup("fresh.example", 1), after(20 + n / 3)).empty());
  }
  const std::vector<Finding> f = findings_of(s, lookup("fresh.example", 1), kDay + 23);
  REQUIRE(f.size() == 1);
  CHECK(f[0].detector == Detector::NewlyObserved);
  CHECK(detail(f[0], "first_seen") == "\"" + day_string(kDay + 20) + "\"");
  CHECK(detail(f[0], "events_7d") == "10");
  CHECK(findings_of(s, lookup("fresh.example", 1), kDay + 23).empty());
  // Too slow: 10 events over 10 days.
  for (int n = 0; n < 10; ++n) {
    CHECK(findings_of(s, lookup("slow.example", 1), after(30 + n)).empty());
  }
}

}  // namespace dnsmon::detect

namespace dnsmon::detect {
namespace {

// A domain that reactivates on `day`: history 30 days before, 10 events over two days.
void reactivate(DomainState& s, const std::string& name, Day day, int extra = 0) {
  (void)findings_of(s, lookup(name, 1), static_cast<Day>(day - 40));
  (void)findings_of(s, lookup(name, 1), static_cast<Day>(day - 30));
  for (int n = 0; n < 10 + extra; ++n) {
    (void)findings_of(s, lookup(name, 1), static_cast<Day>(day + (n < 5 ? 0 : 1)));
  }
}

}  // namespace

TEST_CASE("a shard publishes each detector's top N flagged domains and counts all of them",
          "[detect]") {
  DetectOptions o = tiny();
  o.memory.base_entries = 64;
  o.memory.candidate_entries = 8;
  o.exports.watchlist = {"watched.example"};
  DomainState s(o, 1.0, kSeed);
  reactivate(s, "short-gap.example", after(60));
  reactivate(s, "watched.example", after(60));
  PublishedDomains p;
  s.publish(after(61), at(after(62)), 1, p);
  const auto reactivation = static_cast<std::size_t>(Detector::DormantReactivation);
  CHECK(p.flagged[reactivation] == 2);
  // Top 1 by score (equal gaps: the most recent), plus the watched domain.
  REQUIRE(p.domains.size() == 2);
  for (const DomainSeries& d : p.domains) {
    CHECK(d.score[reactivation] > 0.5F);
    CHECK(d.events_14d >= 10);
    CHECK(d.orgs_any >= 1);
    CHECK(d.top2_share == Approx(1.0));
  }
  // 14 days later the scores have aged out: only the watched domain stays.
  s.publish(after(80), at(after(81)), 1, p);
  CHECK(p.flagged[reactivation] == 0);
  REQUIRE(p.domains.size() == 1);
  CHECK(p.domains[0].domain == "watched.example");
  CHECK(p.domains[0].watched);
}

TEST_CASE("domain labels escape every byte but lowercase letters, digits and -_.", "[detect]") {
  CHECK(domain_label("hotel-promo-mailer.example") == "hotel-promo-mailer.example");
  CHECK(domain_label("a b\"\\.example") == "a\\x20b\\x22\\x5c.example");
}

}  // namespace dnsmon::detect
