// The day-level detectors on the domain tables (detection spec 4.1, 4.4, 4.5, 4.9): the
// candidates' timestamp ring, hourly counts, distinct names and odd query types, the base
// table's decayed top-2 organisations, burst on the lookup path, beacon and covert_pair at the
// day boundary with covert_pair's gate, allowlist and daily cap.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/common/hash.hpp"
#include "dnsmon/detect/normalize.hpp"
#include "dnsmon/detect/tables.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::uint64_t kSeed = 99;
constexpr Day kDay = 16896;  // 2016-04-05, a Tuesday
constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kDayNs = 86'400 * kS;

static_assert(sizeof(DailyState) == 1400);

// A lookup of `qname` (whose registrable domain is its last two labels) by organisation `org`.
LookupEvent lookup(const std::string& qname, std::uint64_t org, std::uint16_t qtype = 1) {
  LookupEvent ev;
  ev.kind = EventKind::Query;
  ev.flags = kFirstInDedupWindow;
  ev.qtype = qtype;
  std::memcpy(ev.qname.data(), qname.data(), qname.size());
  ev.qname_len = static_cast<std::uint8_t>(qname.size());
  const auto last = qname.rfind('.');
  const auto dot = qname.rfind('.', last - 1);
  ev.domain_off = static_cast<std::uint8_t>(dot == std::string::npos ? 0 : dot + 1);
  ev.domain_len = static_cast<std::uint8_t>(qname.size() - ev.domain_off);
  ev.domain_hash = detail::hash_bytes(ev.domain(), kSeed);
  ev.org_hash = detail::hash_bytes(&org, sizeof(org), 5);
  ev.client = {0, 0, 0,    0,    0,   0, 0,   0,
               0, 0, 0xff, 0xff, 203, 0, 113, static_cast<std::uint8_t>(org)};
  ev.org_kind = OrgKind::Host;
  ev.org_bits = 128;
  return ev;
}

std::uint64_t key(std::string_view domain) {
  return detail::hash_bytes(domain, kSeed);
}

DetectOptions options() {
  DetectOptions o;
  o.memory.base_entries = 256;
  o.memory.candidate_entries = 16;
  o.memory.watch_entries = 1;
  o.memory.seen_filter_entries = 64;
  o.memory.doorkeeper_bits = 4096;
  return o;
}

// One event: the query then its lookup, as the engine hands them on.
void feed(DomainState& s, const LookupEvent& ev, Day day, std::int64_t ns) {
  s.on_query(ev, day, ns);
  s.on_lookup(ev, day, ns);
}

std::vector<Finding> take(DomainState& s) {
  std::vector<Finding> out;
  out.swap(s.findings());
  return out;
}

std::vector<Finding> of(const std::vector<Finding>& fs, Detector d) {
  std::vector<Finding> out;
  std::copy_if(fs.begin(), fs.end(), std::back_inserter(out),
               [d](const Finding& f) { return f.detector == d; });
  return out;
}

std::string detail(const Finding& f, std::string_view key) {
  for (const auto& [k, v] : f.details) {
    if (k == key) {
      return v;
    }
  }
  return "";
}

const CandidateEntry& candidate(const DomainState& s, std::string_view domain) {
  const BaseEntry* e = s.find(key(domain));
  REQUIRE(e != nullptr);
  const CandidateEntry* c = s.candidate(*e);
  REQUIRE(c != nullptr);
  return *c;
}

// A tiny deterministic generator for the tests' irregular timings.
struct Lcg {
  std::uint64_t x = 12345;

  std::uint32_t next(std::uint32_t n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>((x >> 33U) % n);
  }
};

// Human-like use of `domain` on `day` by orgs 1 (most) and 2: sessions of three lookups 20 s
// apart at irregular office hours, `sessions` sessions.
// mapped: the organisations found through an org map instead, org 1 at index 0 and org 2 at 1,
// each a /32 (128 bits in the 128-bit form).
void human_day(DomainState& s, const std::string& qname, Day day, int sessions, Lcg& rng,
               bool mapped = false) {
  std::int64_t t = std::int64_t{day} * kDayNs + 8 * (3600 * kS);
  for (int k = 0; k < sessions; ++k) {
    t += (600 + rng.next(3000)) * kS;
    const std::uint64_t org = rng.next(5) == 0 ? 2 : 1;
    LookupEvent ev = lookup(qname, org);
    if (mapped) {
      ev.org_kind = OrgKind::Mapped;
      ev.org_index = static_cast<std::uint32_t>(org - 1);
    }
    for (int i = 0; i < 3; ++i) {
      feed(s, ev, day, t + i * (20 * kS));
    }
  }
}

// The highest covert_pair score of 20 days of human_day() lookups of one domain (-1: none).
double quiet_max_covert(const DetectOptions& o, const OrgResolver* orgs = nullptr,
                        bool mapped = false) {
  DomainState s(o, 1.0, kSeed);
  s.set_orgs(orgs);
  Lcg rng;
  double m = -1;
  for (Day d = kDay; d < kDay + 20; ++d) {
    human_day(s, "www.quiet.example", d, 5, rng, mapped);
    (void)take(s);
    (void)s.end_of_day(d, 150);
    for (const Finding& f : of(take(s), Detector::CovertPair)) {
      m = std::max(m, f.score);
    }
  }
  return m;
}

TEST_CASE("a candidate keeps its last 256 lookup times, hourly counts, names and query types",
          "[detect][daily]") {
  const DetectOptions o = options();  // the state keeps a pointer to it
  DomainState s(o, 1.0, kSeed);
  // 300 lookups a minute apart from one organisation: promoted at the 10th.
  const std::int64_t t0 = std::int64_t{kDay} * kDayNs;
  for (int i = 0; i < 300; ++i) {
    feed(s, lookup("www.poll.example", 1), kDay, t0 + i * (60 * kS));
  }
  const DailyState& d = candidate(s, "poll.example").daily;
  CHECK(d.ts_count == DailyState::kRing);
  // The newest timestamp is the 300th lookup, in 10 ms units from the base.
  const std::uint32_t newest = d.ts[(d.ts_next + DailyState::kRing - 1) % DailyState::kRing];
  CHECK(d.ts_base_ns + std::int64_t{newest} * DailyState::kTick == t0 + 299 * (60 * kS));
  // Hours 0..4 of the day: 60 lookups each, minus the 9 before promotion in hour 0.
  CHECK(d.hourly[(kDay * 24U) % 24] == 51);
  CHECK(d.hourly[(kDay * 24U + 1) % 24] == 60);
  CHECK(d.hourly[(kDay * 24U + 4) % 24] == 60);

  // Names: 9 fit (www.poll.example and 8 more); a 10th live one marks the set as overflowing.
  for (int i = 0; i < 8; ++i) {
    s.on_query(lookup("n" + std::to_string(i) + ".poll.example", 1, 16), kDay + 1, t0 + kDayNs);
  }
  CHECK(d.fqdn_overflow_day == 0);
  s.on_query(lookup("n8.poll.example", 1), kDay + 1, t0 + kDayNs);
  CHECK(d.fqdn_overflow_day == kDay + 1);
  // Raw queries of the day and the TXT ones among them.
  CHECK(d.queries[(kDay + 1) % 14] == 9);
  CHECK(d.odd[(kDay + 1) % 14] == 8);
  CHECK(d.queries[kDay % 14] == 300 - 10);  // the queries before promotion are not counted
}

TEST_CASE("the base table's organisation counts decay to zero and a busy newcomer takes a slot",
          "[detect][daily]") {
  const DetectOptions o = options();  // the state keeps a pointer to it
  DomainState s(o, 1.0, kSeed);
  // Org 1 twenty times, org 2 once, org 3 once: org 3 is among the others or took org 2's slot.
  for (int i = 0; i < 20; ++i) {
    feed(s, lookup("www.trio.example", 1), kDay, std::int64_t{kDay} * kDayNs + i * kS);
  }
  feed(s, lookup("www.trio.example", 2), kDay, std::int64_t{kDay} * kDayNs + 30 * kS);
  feed(s, lookup("www.trio.example", 3), kDay, std::int64_t{kDay} * kDayNs + 31 * kS);
  const BaseEntry& e = *s.find(key("trio.example"));
  CHECK(e.top_count[0] == 20);
  CHECK(e.top_count[1] + e.others == 2);
  // Counts of 1 decay too (about 5 % a day): after 200 days everything is 0.
  for (Day d = kDay; d < kDay + 200; ++d) {
    (void)s.end_of_day(d, 0);
  }
  CHECK(e.top_count[0] == 0);
  CHECK(e.top_count[1] == 0);
  CHECK(e.others == 0);

  // Orgs 1 (50) and 2 (1) hold the slots; org 3 comes 40 times and takes the second.
  const Day d2 = kDay + 201;
  for (int i = 0; i < 50; ++i) {
    feed(s, lookup("www.shift.example", 1), d2, std::int64_t{d2} * kDayNs + i * kS);
  }
  feed(s, lookup("www.shift.example", 2), d2, std::int64_t{d2} * kDayNs + 60 * kS);
  for (int i = 0; i < 40; ++i) {
    feed(s, lookup("www.shift.example", 3), d2, std::int64_t{d2} * kDayNs + (100 + i) * kS);
  }
  const BaseEntry& f = *s.find(key("shift.example"));
  const auto org3 = static_cast<std::uint32_t>(lookup("x.shift.example", 3).org_hash);
  CHECK((f.top_org[0] == org3 || f.top_org[1] == org3));
  CHECK(f.top_count[0] + f.top_count[1] + f.others == 91);
}

TEST_CASE("burst fires on the lookup that meets the rule, once a day, against a frozen baseline",
          "[detect][daily]") {
  const DetectOptions o = options();  // the state keeps a pointer to it
  DomainState s(o, 1.0, kSeed);
  const auto day_of = [&](Day d, int n) {
    for (int i = 0; i < n; ++i) {
      feed(s, lookup("live.news.example", static_cast<std::uint64_t>(i % 50)), d,
           std::int64_t{d} * kDayNs + i * (10 * kS));
    }
  };
  // 14 days of 10 lookups: no burst.
  for (Day d = kDay; d < kDay + 14; ++d) {
    day_of(d, 10);
    CHECK(of(take(s), Detector::Burst).empty());
    (void)s.end_of_day(d, 0);
  }
  // A spike: it fires at the 33rd lookup (x >= 3·(10 + 1); x >= 20 and z >= 4 hold before),
  // once.
  std::vector<Finding> fired;
  for (int i = 0; i < 100; ++i) {
    feed(s, lookup("live.news.example", static_cast<std::uint64_t>(i % 50)), kDay + 14,
         std::int64_t{kDay + 14} * kDayNs + i * (10 * kS));
    for (const Finding& f : of(take(s), Detector::Burst)) {
      fired.push_back(f);
      CHECK(i + 1 == 33);
    }
  }
  REQUIRE(fired.size() == 1);
  CHECK(fired[0].event == "burst");
  CHECK(fired[0].domain == "news.example");
  CHECK(fired[0].severity == Severity::Low);
  CHECK(detail(fired[0], "count") == "33");
  (void)s.end_of_day(kDay + 14, 0);
  CHECK(s.counters().flagged[static_cast<std::size_t>(Detector::Burst)] == 1);
  // The baseline stayed frozen: the next spike day fires again; 7 in a row shift the level.
  for (Day d = kDay + 15; d < kDay + 21; ++d) {
    day_of(d, 100);
    CHECK(of(take(s), Detector::Burst).size() == 1);
    (void)s.end_of_day(d, 0);
  }
  day_of(kDay + 21, 100);
  const std::vector<Finding> shifted = of(take(s), Detector::Burst);
  REQUIRE(shifted.size() == 1);
  CHECK(shifted[0].event == "level_shift");
  CHECK(shifted[0].reasons == kReasonLevelShift);
}

TEST_CASE("beacon fires at the day boundary for a machine-periodic candidate", "[detect][daily]") {
  const DetectOptions o = options();  // the state keeps a pointer to it
  DomainState s(o, 1.0, kSeed);
  Lcg rng;
  // A poller every 60 s (± 0.3 s) for a day, from one host.
  for (int i = 0; i < 1440; ++i) {
    const std::int64_t jitter = static_cast<std::int64_t>(rng.next(600)) * 1'000'000 - 300'000'000;
    feed(s, lookup("status.probe.example", 7), kDay,
         std::int64_t{kDay} * kDayNs + i * (60 * kS) + jitter);
  }
  // Human-like lookups of another domain.
  for (Day d = kDay; d <= kDay; ++d) {
    human_day(s, "mail1.human.example", d, 12, rng);
  }
  (void)take(s);
  (void)s.end_of_day(kDay, 150);
  const std::vector<Finding> b = of(take(s), Detector::Beacon);
  REQUIRE(b.size() == 1);
  CHECK(b[0].domain == "probe.example");
  CHECK(b[0].severity == Severity::Info);
  CHECK(b[0].score >= 0.9);
  CHECK(std::stod(detail(b[0], "period_s")) == Approx(60).margin(1));
  REQUIRE(b[0].org_details.size() == 1);
  CHECK(b[0].org_details[0].first == "querier");
  CHECK(b[0].org_details[0].second.client[15] == 7);
  CHECK(s.counters().flagged[static_cast<std::size_t>(Detector::Beacon)] == 1);
  // At most once a day: the same boundary again emits nothing.
  (void)s.end_of_day(kDay, 150);
  CHECK(of(take(s), Detector::Beacon).empty());
}

TEST_CASE("beacon reads the newest beacon.ring lookup times, and needs min_events of them",
          "[detect][daily]") {
  const std::uint32_t ring = GENERATE(16U, 32U);
  CAPTURE(ring);
  DetectOptions o = options();  // the state keeps a pointer to it
  o.detectors.beacon.ring = ring;
  o.detectors.beacon.min_events = 20;
  DomainState s(o, 1.0, kSeed);
  Lcg rng;
  // Human-like lookups for most of the day, then a poller every 60 s for its last 40 minutes.
  human_day(s, "status.probe.example", kDay, 12, rng);
  for (int i = 0; i < 40; ++i) {
    feed(s, lookup("status.probe.example", 7), kDay,
         std::int64_t{kDay} * kDayNs + 23 * (3600 * kS) + i * (60 * kS));
  }
  (void)take(s);
  (void)s.end_of_day(kDay, 150);
  const std::vector<Finding> b = of(take(s), Detector::Beacon);
  if (ring < 20) {
    CHECK(b.empty());  // fewer than min_events read
    return;
  }
  // The newest 32 are the poller's alone: a period of 60 s.
  REQUIRE(b.size() == 1);
  CHECK(std::stod(detail(b[0], "period_s")) == Approx(60).margin(1));
}

TEST_CASE("covert_pair scores the gate and the lifecycle, vetoes and caps", "[detect][daily]") {
  DetectOptions o = options();
  o.detectors.covert_pair.max_new_per_day = 1;
  o.exports.allowlist_domains = {"allowed.example"};
  DomainState s(o, 1.0, kSeed);
  Lcg rng;
  // History 30 days before, silence, then a run: reactivated (+0.2) for two domains; a third
  // steady one since the start (gate only), one allow-listed, one with many names.
  const std::vector<std::string> names = {"mail1.covert-a.example", "mail1.covert-b.example",
                                          "www.steady.example", "www.allowed.example",
                                          "www.tunnel.example"};
  for (const auto& n : names) {
    feed(s, lookup(n, 1), kDay, std::int64_t{kDay} * kDayNs + 3600 * kS);
    feed(s, lookup(n, 1), kDay + 1, std::int64_t{kDay + 1} * kDayNs + 3600 * kS);
  }
  for (Day d = kDay + 2; d < kDay + 32; ++d) {
    human_day(s, "www.steady.example", d, 5, rng);
    human_day(s, "www.allowed.example", d, 5, rng);
    human_day(s, "www.tunnel.example", d, 5, rng);
    for (int i = 0; i < 10; ++i) {
      s.on_query(lookup("x" + std::to_string(i) + ".tunnel.example", 1), d,
                 std::int64_t{d} * kDayNs + 23 * (3600 * kS));
    }
    (void)take(s);
    (void)s.end_of_day(d, 150);
  }
  std::vector<Finding> all;
  for (Day d = kDay + 32; d < kDay + 48; ++d) {
    human_day(s, "mail1.covert-a.example", d, 5, rng);
    human_day(s, "mail1.covert-b.example", d, 5, rng);
    human_day(s, "www.steady.example", d, 5, rng);
    human_day(s, "www.allowed.example", d, 5, rng);
    human_day(s, "www.tunnel.example", d, 5, rng);
    for (int i = 0; i < 10; ++i) {
      s.on_query(lookup("x" + std::to_string(i) + ".tunnel.example", 1), d,
                 std::int64_t{d} * kDayNs + 23 * (3600 * kS));
    }
    (void)take(s);
    (void)s.end_of_day(d, 150);
    for (const Finding& f : of(take(s), Detector::CovertPair)) {
      all.push_back(f);
    }
  }
  const auto max_of = [&](std::string_view domain, bool suppressed) {
    double m = -1;
    for (const Finding& f : all) {
      if (f.domain == domain && f.suppressed == suppressed) {
        m = std::max(m, f.score);
      }
    }
    return m;
  };
  // The gate alone.
  CHECK(max_of("steady.example", false) == Approx(0.4));
  // Reactivated: 0.6, medium; the daily cap of 1 admits one of the two on the first day, the
  // other is suppressed that day and admitted the next.
  CHECK(max_of("covert-a.example", false) == Approx(0.6));
  CHECK(max_of("covert-b.example", false) == Approx(0.6));
  std::vector<std::string> first_medium_days;
  Day first_a = 0, first_b = 0, first_suppressed = 0;
  for (const Finding& f : all) {
    const Day d = static_cast<Day>(f.logical_ns / kDayNs);
    if (f.suppressed && first_suppressed == 0) {
      first_suppressed = d;
    }
    if (!f.suppressed && f.score >= 0.6) {
      (f.domain == "covert-a.example" ? first_a : first_b) =
          (f.domain == "covert-a.example" ? first_a : first_b) == 0
              ? d
              : (f.domain == "covert-a.example" ? first_a : first_b);
    }
  }
  REQUIRE(first_a != 0);
  REQUIRE(first_b != 0);
  CHECK(first_a != first_b);
  CHECK(first_suppressed == std::min(first_a, first_b));
  CHECK(std::max(first_a, first_b) == first_suppressed + 1);
  for (const Finding& f : all) {
    if (f.domain == "covert-a.example" && f.score >= 0.6 && !f.suppressed) {
      CHECK(f.severity == Severity::Medium);
      CHECK(f.reasons == kReasonReactivated);
      CHECK(f.top_orgs.size() == 2);
      CHECK(!detail(f, "events14").empty());
      CHECK(!detail(f, "top2_share").empty());
      CHECK(std::stod(detail(f, "cv")) >= 1.0);
    }
  }
  const CandidateEntry& a = candidate(s, "covert-a.example");
  CHECK((a.marks.lifecycle & CandidateMarks::kLifeAutoWatched) != 0);
  CHECK(a.marks.covert_max == CandidateMarks::units(0.6));
  // Allow-listed and vetoed (more than 8 names in 14 days): no score.
  CHECK(max_of("allowed.example", false) < 0);
  CHECK(max_of("tunnel.example", false) < 0);
  CHECK(candidate(s, "tunnel.example").marks.score_of(Detector::CovertPair) == 0);
  CHECK(s.counters().flagged[static_cast<std::size_t>(Detector::CovertPair)] == 3);
}

TEST_CASE("covert_pair's timing gate refuses a machine-periodic domain", "[detect][daily]") {
  const DetectOptions o = options();  // the state keeps a pointer to it
  DomainState s(o, 1.0, kSeed);
  std::vector<Finding> all;
  for (Day d = kDay; d < kDay + 10; ++d) {
    for (int i = 0; i < 720; ++i) {
      feed(s, lookup("status.poll.example", 1), d, std::int64_t{d} * kDayNs + i * (120 * kS));
    }
    (void)take(s);
    (void)s.end_of_day(d, 150);
    for (const Finding& f : of(take(s), Detector::CovertPair)) {
      all.push_back(f);
    }
  }
  CHECK(all.empty());
  const CandidateEntry& c = candidate(s, "poll.example");
  CHECK(c.marks.score_of(Detector::QuerierConcentration) == Approx(1));
}

TEST_CASE("at an authoritative vantage a period of the answer TTL is a cache refresh",
          "[detect][daily]") {
  DetectOptions o = options();
  o.vantage = "authoritative_side";
  DomainState s(o, 1.0, kSeed);
  // A resolver refreshing a name of TTL 600 s every 600 s.
  for (int i = 0; i < 144; ++i) {
    const std::int64_t t = std::int64_t{kDay} * kDayNs + i * (600 * kS);
    const LookupEvent q = lookup("www.zone.example", 1);
    feed(s, q, kDay, t);
    LookupEvent r = q;
    r.kind = EventKind::Response;
    r.flags = kSuccess;
    r.answer_count = 1;
    r.answers[0].ttl = 600;
    s.on_response(r, kDay, t + 1'000'000);
  }
  (void)take(s);
  (void)s.end_of_day(kDay, 150);
  const std::vector<Finding> b = of(take(s), Detector::Beacon);
  REQUIRE(b.size() == 1);
  CHECK(b[0].event == "cache_refresh");
  CHECK(b[0].reasons == kReasonCacheRefresh);
  CHECK(detail(b[0], "ttl_s") == "600");
  CHECK(s.counters().flagged[static_cast<std::size_t>(Detector::Beacon)] == 0);
}

TEST_CASE("covert_pair leaves out a domain whose top organisations are all allow-listed",
          "[detect][daily]") {
  DetectOptions o = options();
  CHECK(quiet_max_covert(o) == Approx(0.4));
  o.exports.allowlist_orgs = {"203.0.113.0/24"};  // holds both organisations' hosts
  CHECK(quiet_max_covert(o) < 0);
  o.exports.allowlist_orgs = {"203.0.113.1"};  // only organisation 1
  CHECK(quiet_max_covert(o) == Approx(0.4));
}

TEST_CASE("covert_pair's allowlist_orgs also matches organisations by their org_map name",
          "[detect][daily]") {
  // The two organisations of human_day() as org_map entries: hosts .1 and .2 of 203.0.113.0/24.
  DetectOptions o = options();
  const std::vector<OrgMapEntry> map = {{*parse_cidr("203.0.113.1/32"), "Hotel Group"},
                                        {*parse_cidr("203.0.113.2/32"), "Travel Agency"}};
  const OrgResolver orgs(o.clients, map, kSeed);
  const auto max_score = [&](const std::vector<std::string>& allow, const OrgResolver* r) {
    DetectOptions x = o;
    x.exports.allowlist_orgs = allow;
    return quiet_max_covert(x, r, /*mapped=*/true);
  };
  CHECK(max_score({}, &orgs) == Approx(0.4));
  CHECK(max_score({"Hotel Group", "Travel Agency"}, &orgs) < 0);
  CHECK(max_score({"Hotel Group"}, &orgs) == Approx(0.4));  // one of the two only
  CHECK(max_score({"Hotel Group", "Travel Agency"}, nullptr) == Approx(0.4));  // no map
  CHECK(max_score({"Hotel Group", "203.0.113.2"}, &orgs) < 0);  // a name and an address
}

}  // namespace
}  // namespace dnsmon::detect
