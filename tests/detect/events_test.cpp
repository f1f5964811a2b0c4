// The event-level detectors (detection spec 4.6, 4.7, 4.8) on hand-made queries and responses:
// disappearance and its promotion of a failing base domain, the recently-dead map, successor_name
// on one shard and across two, and tunneling per (organisation, domain) unit and logical hour.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/common/hash.hpp"
#include "dnsmon/detect/tables.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::uint64_t kSeed = 7;
constexpr Day kDay = 16895;  // 2016-04-04 (a Monday)
constexpr std::int64_t kSecond = 1'000'000'000;

static_assert(sizeof(EventState) == 416);
static_assert(sizeof(CandidateEntry) == 2560);

std::int64_t at(Day day, std::int64_t seconds = 36000) {
  return std::int64_t{day} * 86400 * kSecond + seconds * kSecond;
}

std::array<std::uint8_t, 16> v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

// A query of `name` (under registrable `domain`) by organisation `org` (its client 10.0.x.y).
LookupEvent query(const std::string& name, const std::string& domain, std::uint32_t org,
                  std::uint16_t qtype = 1) {
  LookupEvent ev;
  ev.kind = EventKind::Query;
  ev.flags = kFirstInDedupWindow;
  ev.qtype = qtype;
  std::memcpy(ev.qname.data(), name.data(), name.size());
  ev.qname_len = static_cast<std::uint8_t>(name.size());
  ev.domain_off = static_cast<std::uint8_t>(name.size() - domain.size());
  ev.domain_len = static_cast<std::uint8_t>(domain.size());
  ev.domain_hash = detail::hash_bytes(domain, kSeed);
  ev.org_hash = detail::hash_bytes(&org, sizeof(org), 5);
  ev.client = v4(10, 0, static_cast<std::uint8_t>(org >> 8U), static_cast<std::uint8_t>(org));
  ev.org_kind = OrgKind::Host;
  ev.org_bits = 128;
  return ev;
}

enum class Outcome { Success, NxDomain, NoData };

LookupEvent response(const LookupEvent& q, Outcome o,
                     const std::array<std::uint8_t, 16>& addr = v4(192, 0, 2, 25)) {
  LookupEvent ev = q;
  ev.kind = EventKind::Response;
  ev.flags = static_cast<std::uint16_t>(kAnswersDecoded | (q.flags & kSuffixLeak));
  switch (o) {
    case Outcome::Success:
      ev.flags |= kSuccess;
      ev.answer_count = 1;
      ev.answers[0].addr = addr;
      ev.answers[0].ttl = 600;
      break;
    case Outcome::NxDomain:
      ev.flags |= kFailure;
      ev.rcode = 3;
      break;
    case Outcome::NoData:
      ev.flags |= kNodata;
      break;
  }
  return ev;
}

// What the engine does for a query and its response; returns the findings and clears them.
std::vector<Finding> ask(DomainState& s, const LookupEvent& q, Outcome o, Day day, std::int64_t ns,
                         const std::array<std::uint8_t, 16>& addr = v4(192, 0, 2, 25)) {
  s.on_query(q, day, ns);
  s.on_lookup(q, day, ns);
  s.on_response(response(q, o, addr), day, ns + 10'000'000);
  std::vector<Finding> out = std::move(s.findings());
  s.findings().clear();
  return out;
}

// A DomainState keeps a pointer to its options: they must outlive it.
const DetectOptions& options() {
  static const DetectOptions o = [] {
    DetectOptions x;
    x.memory.base_entries = 256;
    x.memory.candidate_entries = 16;
    x.memory.watch_entries = 1;
    x.memory.seen_filter_entries = 64;
    x.memory.doorkeeper_bits = 4096;
    return x;
  }();
  return o;
}

const CandidateEntry* candidate(const DomainState& s, const std::string& domain) {
  const BaseEntry* e = s.find(detail::hash_bytes(domain, kSeed));
  return e != nullptr ? s.candidate(*e) : nullptr;
}

const Finding* first_of(const std::vector<Finding>& fs, Detector d) {
  for (const Finding& f : fs) {
    if (f.detector == d) {
      return &f;
    }
  }
  return nullptr;
}

std::string detail_of(const Finding& f, const std::string& k) {
  for (const auto& [key, value] : f.details) {
    if (key == k) {
      return value;
    }
  }
  return "";
}

// Twelve successful lookups from five organisations (not concentrated: no candidate yet) on
// kDay + 20 and + 21, after a warm-up lookup of another domain on kDay.
void healthy(DomainState& s, const std::string& domain, Day first) {
  for (int i = 0; i < 12; ++i) {
    const Day d = static_cast<Day>(first + i / 6);
    (void)ask(s, query("www." + domain, domain, static_cast<std::uint32_t>(1 + i % 5)),
              Outcome::Success, d, at(d, 36000 + i * 60));
  }
}

}  // namespace

TEST_CASE(
    "disappearance: a domain that succeeded and then fails is promoted, transitions, "
    "persists and enters the recently-dead map",
    "[detect]") {
  SharedState shared(options());
  DomainState s(options(), 1.0, kSeed, &shared);
  healthy(s, "vendor.example", kDay);
  CHECK(candidate(s, "vendor.example") == nullptr);
  const Day death = kDay + 2;
  // The first failure promotes it (with its success history); the third is the transition.
  auto f = ask(s, query("www.vendor.example", "vendor.example", 1), Outcome::NxDomain, death,
               at(death, 100));
  CHECK(f.empty());
  REQUIRE(candidate(s, "vendor.example") != nullptr);
  CHECK(candidate(s, "vendor.example")
            ->events.disappearance.successes_7d(static_cast<double>(at(death)) / 1e9) >= 10);
  (void)ask(s, query("www.vendor.example", "vendor.example", 2), Outcome::NxDomain, death,
            at(death, 200));
  CHECK(shared.dead_size() == 0);
  f = ask(s, query("www.vendor.example", "vendor.example", 1), Outcome::NxDomain, death,
          at(death, 300));
  const Finding* t = first_of(f, Detector::Disappearance);
  REQUIRE(t != nullptr);
  CHECK(t->event == "transition");
  CHECK(t->domain == "vendor.example");
  CHECK(t->severity == Severity::Medium);
  CHECK(t->score == Approx(0.5));
  CHECK(t->reasons == kReasonDisappeared);
  CHECK(detail_of(*t, "failures_since_success") == "3");
  CHECK(detail_of(*t, "fail_rcode") == "\"NXDOMAIN\"");
  CHECK(t->top_orgs.size() == 2);  // the two organisations of the failing lookups
  const CandidateEntry* c = candidate(s, "vendor.example");
  CHECK((c->marks.lifecycle & CandidateMarks::kLifeDisappeared) != 0);
  CHECK(c->marks.score_of(Detector::Disappearance) == Approx(0.5));
  // Promoted by its first failure, it has no answer address of its own to leave in the
  // recently-dead map (the base table keeps none); successor_name tests a candidate that has.
  CHECK(c->events.addr_count == 0);
  CHECK(shared.dead_size() == 0);
  // Still looked up: ten failures and two days after the first, it persists (once).
  int persisting = 0;
  for (int i = 0; i < 12; ++i) {
    const Day d = static_cast<Day>(death + i / 4);
    for (const Finding& x : ask(s, query("www.vendor.example", "vendor.example", 1),
                                Outcome::NxDomain, d, at(d, 50000 + i * 60))) {
      if (x.detector == Detector::Disappearance) {
        CHECK(x.event == "persisting");
        CHECK(x.reasons == kReasonDisappearedPersisting);
        CHECK(x.score == Approx(0.8));
        CHECK(x.severity == Severity::Medium);  // covert_pair never reached medium
        CHECK(d == death + 2);
        ++persisting;
      }
    }
  }
  CHECK(persisting == 1);
  CHECK((candidate(s, "vendor.example")->marks.lifecycle & CandidateMarks::kLifePersisting) != 0);
  // A success resets the failing period.
  (void)ask(s, query("www.vendor.example", "vendor.example", 1), Outcome::Success, death + 3,
            at(death + 3));
  CHECK(candidate(s, "vendor.example")->events.disappearance.failures_since_success == 0);
}

// A timeout event as the normaliser makes it: the registrable domain alone, flagged kFailure.
LookupEvent timeout_of(const LookupEvent& q) {
  LookupEvent ev = q;
  ev.kind = EventKind::Timeout;
  ev.flags = kFailure;
  const std::string domain(q.domain());
  std::memcpy(ev.qname.data(), domain.data(), domain.size());
  ev.qname_len = static_cast<std::uint8_t>(domain.size());
  ev.domain_off = 0;
  return ev;
}

TEST_CASE("disappearance: unanswered lookups are failures of kind timeout when count_timeouts",
          "[detect]") {
  const bool count = GENERATE(true, false);
  CAPTURE(count);
  DetectOptions o = options();
  o.detectors.disappearance.count_timeouts = count;
  SharedState shared(o);
  DomainState s(o, 1.0, kSeed, &shared);
  healthy(s, "vendor.example", kDay);
  const Day death = kDay + 2;
  std::vector<Finding> all;
  for (int i = 0; i < 3; ++i) {
    const LookupEvent q =
        query("www.vendor.example", "vendor.example", static_cast<std::uint32_t>(1 + i % 2));
    const std::int64_t ns = at(death, 100 + i * 100);
    s.on_query(q, death, ns);
    s.on_lookup(q, death, ns);
    s.on_response(timeout_of(q), death, ns + 5 * kSecond);
    std::move(s.findings().begin(), s.findings().end(), std::back_inserter(all));
    s.findings().clear();
  }
  if (!count) {
    CHECK(all.empty());
    CHECK(candidate(s, "vendor.example") == nullptr);
    CHECK(s.find(detail::hash_bytes(std::string_view("vendor.example"), kSeed))
              ->consecutive_failures == 0);
    return;
  }
  const Finding* t = first_of(all, Detector::Disappearance);
  REQUIRE(t != nullptr);
  CHECK(t->event == "transition");
  CHECK(t->domain == "vendor.example");
  CHECK(detail_of(*t, "failures_since_success") == "3");
  CHECK(detail_of(*t, "fail_rcode") == "\"timeout\"");
  // A timeout has no rcode: the last one (NOERROR) stays.
  CHECK((s.find(detail::hash_bytes(std::string_view("vendor.example"), kSeed))->last_rcode &
         0x1fU) == 0);
}

TEST_CASE(
    "disappearance needs the successes first; NODATA fails only a type that had data; "
    "search-suffix leaks do not count",
    "[detect]") {
  DomainState s(options(), 1.0, kSeed);
  // Five successes only: failures neither promote nor fire.
  for (int i = 0; i < 5; ++i) {
    (void)ask(s, query("a.few.example", "few.example", static_cast<std::uint32_t>(i)),
              Outcome::Success, kDay, at(kDay, 100 + i));
  }
  for (int i = 0; i < 5; ++i) {
    CHECK(ask(s, query("a.few.example", "few.example", 1), Outcome::NxDomain, kDay + 1,
              at(kDay + 1, 100 + i))
              .empty());
  }
  CHECK(candidate(s, "few.example") == nullptr);
  CHECK(s.find(detail::hash_bytes(std::string("few.example"), kSeed))->consecutive_failures == 5);

  // A domain with A data: NODATA for AAAA is not a failure, NODATA for A is.
  healthy(s, "nodata.example", kDay + 2);
  for (int i = 0; i < 5; ++i) {
    CHECK(ask(s, query("www.nodata.example", "nodata.example", 1, 28), Outcome::NoData, kDay + 3,
              at(kDay + 3, 100 + i))
              .empty());
  }
  CHECK(candidate(s, "nodata.example") == nullptr);
  std::vector<Finding> all;
  for (int i = 0; i < 3; ++i) {
    auto f = ask(s, query("www.nodata.example", "nodata.example", 1, 1), Outcome::NoData, kDay + 3,
                 at(kDay + 3, 200 + i));
    all.insert(all.end(), f.begin(), f.end());
  }
  const Finding* t = first_of(all, Detector::Disappearance);
  REQUIRE(t != nullptr);
  CHECK(detail_of(*t, "fail_rcode") == "\"NODATA\"");

  // A leaked name's NXDOMAIN (the search suffix's) leaves the embedded domain alone.
  healthy(s, "leaky.example", kDay + 4);
  for (int i = 0; i < 5; ++i) {
    LookupEvent q = query("www.leaky.example.corp.orga.example", "leaky.example", 1);
    q.domain_off = 4;
    q.flags |= kSuffixLeak;
    CHECK(ask(s, q, Outcome::NxDomain, kDay + 5, at(kDay + 5, 100 + i)).empty());
  }
  CHECK(s.find(detail::hash_bytes(std::string("leaky.example"), kSeed))->consecutive_failures == 0);
}

TEST_CASE(
    "the recently-dead map holds 4096 addresses for 30 days and answers without its "
    "mutex when an address is surely absent",
    "[detect]") {
  SharedState shared(options());
  CHECK_FALSE(shared.dead_any());
  CHECK_FALSE(shared.dead_maybe(v4(192, 0, 2, 1)));
  const std::lock_guard lock(shared.mutex);
  DeadRecord r;
  r.domain_key = 42;
  r.died = kDay;
  for (std::uint32_t i = 0; i < SharedState::kDeadEntries + 1; ++i) {
    r.addr = v4(198, 51, static_cast<std::uint8_t>(i >> 8U), static_cast<std::uint8_t>(i));
    r.died = static_cast<Day>(kDay + (i == 0 ? 0 : 1));
    shared.dead_insert(r, static_cast<Day>(kDay + 1));
  }
  CHECK(shared.dead_any());
  CHECK(shared.dead_size() == SharedState::kDeadEntries);
  CHECK(shared.dead_inserted() == SharedState::kDeadEntries + 1);
  CHECK(shared.dead_dropped() == 1);
  CHECK(shared.dead_find(v4(198, 51, 0, 0), kDay + 1) == nullptr);  // the oldest went
  const auto last = v4(198, 51, 16, 0);
  CHECK(shared.dead_maybe(last));
  REQUIRE(shared.dead_find(last, kDay + 1) != nullptr);
  // The same address again replaces its entry.
  r.addr = last;
  r.domain_key = 43;
  shared.dead_insert(r, static_cast<Day>(kDay + 1));
  CHECK(shared.dead_size() == SharedState::kDeadEntries);
  CHECK(shared.dead_find(last, kDay + 1)->domain_key == 43);
  // 30 days after the death the entry still answers, on the 31st it is gone.
  CHECK(shared.dead_find(last, kDay + 31) != nullptr);
  CHECK(shared.dead_find(last, kDay + 32) == nullptr);
  r.addr = v4(203, 0, 113, 99);
  r.died = kDay + 40;
  shared.dead_insert(r, static_cast<Day>(kDay + 40));  // expires the others
  CHECK(shared.dead_size() == 1);
  CHECK(shared.dead_dropped() == SharedState::kDeadEntries + 1);
  CHECK_FALSE(shared.dead_maybe(last));  // the filter was rebuilt without them
  CHECK(shared.dead_maybe(v4(203, 0, 113, 99)));
}

TEST_CASE(
    "the recently-dead map expires by logical day, after a change of its TTL, and for a shard "
    "a day behind",
    "[detect]") {
  SharedState shared(options());
  const std::lock_guard lock(shared.mutex);
  DeadRecord r;
  r.domain_key = 42;
  const auto insert = [&](std::uint8_t last_octet, int died) {
    r.addr = v4(198, 51, 100, last_octet);
    r.died = static_cast<Day>(kDay + died);
    shared.dead_insert(r, r.died);
  };
  insert(1, 0);
  insert(2, 25);
  insert(3, 25);  // the same day again: nothing is old enough to go
  CHECK(shared.dead_size() == 3);
  CHECK(shared.dead_dropped() == 0);
  // A reload shortens the TTL to 10 days: the next insertion, on the same day, expires the
  // death of day 0.
  shared.set_dead_ttl_days(10);
  insert(4, 25);
  CHECK(shared.dead_size() == 3);
  CHECK(shared.dead_dropped() == 1);
  CHECK(shared.dead_find(v4(198, 51, 100, 1), kDay + 25) == nullptr);
  // A shard a day behind inserts on day 24: nothing more goes.
  insert(5, 24);
  CHECK(shared.dead_size() == 4);
  CHECK(shared.dead_dropped() == 1);
  // On day 36 the deaths of days 24 and 25 are 11 days old or more and go; day 36's stays.
  insert(6, 36);
  CHECK(shared.dead_size() == 1);
  CHECK(shared.dead_dropped() == 5);
  CHECK(shared.dead_inserted() == 6);
  CHECK(shared.dead_find(v4(198, 51, 100, 6), kDay + 36) != nullptr);
}

namespace {

// vendor.example dies on kDay + 22 at 192.0.2.25; organisations 1 and 2 were its top two.
void kill_vendor(DomainState& s) {
  (void)ask(s, query("warmup.example", "warmup.example", 9), Outcome::Success, kDay, at(kDay));
  for (int i = 0; i < 12; ++i) {
    const Day d = static_cast<Day>(kDay + 20 + i / 6);
    (void)ask(s,
              query("www.vendor.example", "vendor.example", static_cast<std::uint32_t>(1 + i % 2)),
              Outcome::Success, d, at(d, 36000 + i * 60));
  }
  for (int i = 0; i < 3; ++i) {
    (void)ask(s, query("www.vendor.example", "vendor.example", 1), Outcome::NxDomain, kDay + 22,
              at(kDay + 22, 100 + i));
  }
}

}  // namespace

TEST_CASE(
    "successor_name: a new domain on a dead domain's address, first asked by one of its "
    "top organisations",
    "[detect]") {
  SharedState shared(options());
  DomainState s(options(), 1.0, kSeed, &shared);
  kill_vendor(s);
  {
    const std::lock_guard lock(shared.mutex);
    REQUIRE(shared.dead_size() == 1);
    const DeadRecord* r = shared.dead_find(v4(192, 0, 2, 25), kDay + 22);
    REQUIRE(r != nullptr);
    CHECK(r->domain() == "vendor.example");
    CHECK(r->died == kDay + 22);
    CHECK(r->top_org[0] != 0);
    CHECK(r->top_org[1] != 0);
  }
  const Day day = kDay + 26;
  // A new domain on another address: nothing.
  CHECK(first_of(ask(s, query("www.other.example", "other.example", 1), Outcome::Success, day,
                     at(day, 100), v4(192, 0, 2, 99)),
                 Detector::SuccessorName) == nullptr);
  // A new domain on the address, first asked by an organisation outside the top two: nothing.
  CHECK(first_of(ask(s, query("www.stranger.example", "stranger.example", 7), Outcome::Success, day,
                     at(day, 200)),
                 Detector::SuccessorName) == nullptr);
  // By organisation 1: the successor.
  const auto f =
      ask(s, query("crm.heir.example", "heir.example", 1), Outcome::Success, day, at(day, 300));
  const Finding* x = first_of(f, Detector::SuccessorName);
  REQUIRE(x != nullptr);
  CHECK(x->event == "successor");
  CHECK(x->domain == "heir.example");
  CHECK(x->score == Approx(0.9));
  CHECK(x->severity == Severity::Medium);
  CHECK(x->reasons == kReasonSuccessor);
  CHECK(detail_of(*x, "predecessor") == "\"vendor.example\"");
  CHECK(detail_of(*x, "address") == "\"192.0.2.25\"");
  // The successor is promoted and pinned; the dead domain (same shard) is marked at once.
  const CandidateEntry* heir = candidate(s, "heir.example");
  REQUIRE(heir != nullptr);
  CHECK(heir->marks.score_of(Detector::SuccessorName) == Approx(0.9));
  CHECK((s.find(detail::hash_bytes(std::string("heir.example"), kSeed))->flags &
         BaseEntry::kWatched) != 0);
  CHECK((candidate(s, "vendor.example")->marks.lifecycle & CandidateMarks::kLifeSuccessorFound) !=
        0);
  // Only a first success counts: the heir's next answers do not fire again.
  CHECK(first_of(ask(s, query("crm.heir.example", "heir.example", 1), Outcome::Success, day,
                     at(day, 400)),
                 Detector::SuccessorName) == nullptr);
  // The shared-hosting guard: a third new domain on the address (not from a top organisation),
  // then a fourth, which would match but for the guard.
  CHECK(first_of(ask(s, query("www.third.example", "third.example", 7), Outcome::Success, day,
                     at(day, 500)),
                 Detector::SuccessorName) == nullptr);
  CHECK(first_of(ask(s, query("www.fourth.example", "fourth.example", 2), Outcome::Success, day,
                     at(day, 600)),
                 Detector::SuccessorName) == nullptr);
}

TEST_CASE(
    "successor_name: a full bucket admits a new domain at once when its answer is a dead "
    "address",
    "[detect]") {
  // One set of eight ways: the vendor, the warm-up domain and six fillers take them all.
  static const DetectOptions one_set = [] {
    DetectOptions x = options();
    x.memory.base_entries = 8;
    return x;
  }();
  SharedState shared(one_set);
  DomainState s(one_set, 1.0, kSeed, &shared);
  kill_vendor(s);
  const Day day = kDay + 26;
  for (int i = 0; s.counters().entries[DomainState::kBase] < 8; ++i) {
    REQUIRE(i < 8);
    const std::string d = "filler" + std::to_string(i) + ".example";
    (void)ask(s, query("www." + d, d, 9), Outcome::Success, day, at(day, 50 + i),
              v4(192, 0, 2, 99));
  }
  const std::uint64_t rejected = s.counters().rejected[DomainState::kBase];
  // A new domain on another address: turned away at its query, and not admitted by its answer.
  (void)ask(s, query("www.other.example", "other.example", 1), Outcome::Success, day, at(day, 100),
            v4(192, 0, 2, 99));
  CHECK(s.find(detail::hash_bytes(std::string("other.example"), kSeed)) == nullptr);
  CHECK(s.counters().rejected[DomainState::kBase] == rejected + 1);
  // On the dead address: its first query is turned away too, but its answer admits it, and its
  // first success is the successor.
  const auto f =
      ask(s, query("crm.heir.example", "heir.example", 1), Outcome::Success, day, at(day, 300));
  CHECK(s.counters().rejected[DomainState::kBase] == rejected + 2);
  const BaseEntry* heir = s.find(detail::hash_bytes(std::string("heir.example"), kSeed));
  REQUIRE(heir != nullptr);
  CHECK(heir->total_events == 1);  // the lookup its query could not count
  const Finding* x = first_of(f, Detector::SuccessorName);
  REQUIRE(x != nullptr);
  CHECK(x->domain == "heir.example");
  CHECK(detail_of(*x, "predecessor") == "\"vendor.example\"");
  CHECK(s.counters().evictions[DomainState::kBase] == 1);
}

TEST_CASE(
    "successor_name across shards: the dead domain's shard collects its mark at its next "
    "event; a death older than 30 days is forgotten",
    "[detect]") {
  SharedState shared(options());
  DomainState a(options(), 1.0, kSeed, &shared);
  DomainState b(options(), 1.0, kSeed, &shared);
  kill_vendor(a);
  (void)ask(b, query("warmup.example", "warmup.example", 9), Outcome::Success, kDay, at(kDay));
  const Day day = kDay + 27;
  REQUIRE(first_of(ask(b, query("crm.heir.example", "heir.example", 2), Outcome::Success, day,
                       at(day, 300)),
                   Detector::SuccessorName) != nullptr);
  CHECK((candidate(a, "vendor.example")->marks.lifecycle & CandidateMarks::kLifeSuccessorFound) ==
        0);
  (void)ask(a, query("www.vendor.example", "vendor.example", 1), Outcome::NxDomain, day + 1,
            at(day + 1));
  CHECK((candidate(a, "vendor.example")->marks.lifecycle & CandidateMarks::kLifeSuccessorFound) !=
        0);

  SharedState shared2(options());
  DomainState c(options(), 1.0, kSeed, &shared2);
  kill_vendor(c);
  const Day late = kDay + 22 + 31;
  CHECK(first_of(
            ask(c, query("crm.heir.example", "heir.example", 1), Outcome::Success, late, at(late)),
            Detector::SuccessorName) == nullptr);
}

namespace {

// A random label of n characters from `alphabet`.
std::string random_label(std::mt19937_64& rng, std::size_t n, const std::string& alphabet) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += alphabet[rng() % alphabet.size()];
  }
  return s;
}

}  // namespace

TEST_CASE(
    "tunneling: one organisation sending hundreds of long random names an hour is "
    "promoted and fires once per hour",
    "[detect]") {
  DomainState s(options(), 1.0, kSeed);
  std::mt19937_64 rng(1);
  const std::string domain = "exfil.example";
  const std::string b32 = "abcdefghijklmnopqrstuvwxyz234567";
  std::vector<Finding> fired;
  std::vector<int> fired_at;
  for (int hour = 0; hour < 2; ++hour) {
    for (int i = 0; i < 1500; ++i) {
      LookupEvent q =
          query(random_label(rng, 52, b32) + ".t." + domain, domain, 33, i % 10 < 8 ? 16 : 1);
      const std::int64_t ns = at(kDay + 10, 36000 + hour * 3600) + i * kSecond / 2;
      s.on_query(q, kDay + 10, ns);
      s.on_lookup(q, kDay + 10, ns);
      for (Finding& f : s.findings()) {
        fired_at.push_back(hour * 10000 + i);
        fired.push_back(std::move(f));
      }
      s.findings().clear();
    }
  }
  const CandidateEntry* c = candidate(s, domain);
  REQUIRE(c != nullptr);
  REQUIRE(fired.size() == 2);
  CHECK(fired_at[0] < 600);  // promoted after ~90 names, fires once about 300 are counted
  CHECK(fired_at[1] >= 10000);
  CHECK(fired_at[1] < 10000 + 600);
  const Finding& f = fired[0];
  CHECK(f.detector == Detector::Tunneling);
  CHECK(f.domain == domain);
  CHECK(f.severity == Severity::High);
  CHECK(f.score >= 0.8);
  CHECK(f.reasons == kReasonTxtHeavy);
  REQUIRE(f.org_details.size() == 1);
  CHECK(f.org_details[0].first == "org");
  CHECK(std::stod(detail_of(f, "unique")) >= 300);
  CHECK(std::stod(detail_of(f, "mean_prefix_len")) == Approx(54));
  CHECK(std::stod(detail_of(f, "entropy")) > 4);
  CHECK(c->marks.score_of(Detector::Tunneling) >= 0.8);
}

TEST_CASE(
    "tunneling: many organisations sharing a hash-lookup domain, and a domain of a few "
    "names an hour, do not fire",
    "[detect]") {
  DomainState s(options(), 1.0, kSeed);
  std::mt19937_64 rng(2);
  const std::string hex = "0123456789abcdef";
  // 400 lookups an hour of 40-hex names, spread over 200 organisations (hosts).
  for (int i = 0; i < 1200; ++i) {
    LookupEvent q = query(random_label(rng, 40, hex) + ".hash.av.example", "av.example",
                          static_cast<std::uint32_t>(100 + rng() % 200), i % 2 == 0 ? 16 : 1);
    const std::int64_t ns = at(kDay + 10, 3600) + i * (9 * kSecond);
    s.on_query(q, kDay + 10, ns);
    s.on_lookup(q, kDay + 10, ns);
    CHECK(s.findings().empty());
  }
  CHECK(candidate(s, "av.example") != nullptr);  // a suspect, promoted, but no unit fills up
  // 100 names a day: no promotion at all.
  for (int i = 0; i < 100; ++i) {
    LookupEvent q = query("i" + std::to_string(1000 + i) + ".cdn.example", "cdn.example",
                          static_cast<std::uint32_t>(i % 50));
    const std::int64_t ns = at(kDay + 11, 0) + i * (800 * kSecond);
    s.on_query(q, kDay + 11, ns);
    s.on_lookup(q, kDay + 11, ns);
    CHECK(s.findings().empty());
  }
  CHECK(candidate(s, "cdn.example") == nullptr);
}

}  // namespace dnsmon::detect
