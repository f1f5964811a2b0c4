#include "dnsmon/analytics/detail/matcher.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/analytics/detail/sketches.hpp"

#include "alloc_counter.hpp"

namespace {

using dnsmon::DnsMessage;
using dnsmon::IpAddr;
using dnsmon::Leg;
using dnsmon::ServerAddresses;
using dnsmon::Transport;
using dnsmon::detail::hash_bytes;
using dnsmon::detail::kLatencyBoundsNs;
using dnsmon::detail::kLatencyBoundsS;
using dnsmon::detail::kLatencyBuckets;
using dnsmon::detail::LatencyHistogram;
using dnsmon::detail::MatcherOptions;
using dnsmon::detail::qname_hash;
using dnsmon::detail::QueryMatcher;
using dnsmon::detail::RcodeClass;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'000 * kSecond;  // a realistic epoch timestamp

IpAddr ip(const char* text) {
  IpAddr a;
  if (::inet_pton(AF_INET, text, a.bytes.data()) == 1) {
    a.family = 4;
  } else {
    REQUIRE(::inet_pton(AF_INET6, text, a.bytes.data()) == 1);
    a.family = 6;
  }
  return a;
}

void set_name(DnsMessage& m, std::string_view name) {
  assert(name.size() <= m.qname.text.size() && "test names are short");
  std::copy(name.begin(), name.end(), m.qname.text.begin());
  m.qname.length = static_cast<std::uint16_t>(name.size());
}

// A UDP query from 192.0.2.10:40000 to 198.51.100.53:53 for <name> A IN.
DnsMessage make_query(std::int64_t ts_ns, std::string_view name = "www.example.com.",
                      std::uint16_t id = 0x1234) {
  DnsMessage m;
  m.ts_ns = ts_ns;
  m.src = ip("192.0.2.10");
  m.dst = ip("198.51.100.53");
  m.sport = 40000;
  m.dport = 53;
  m.id = id;
  m.qtype = 1;
  m.qclass = 1;
  m.has_question = true;
  m.qdcount = 1;
  set_name(m, name);
  return m;
}

// The response to q: same question, the tuple reversed.
DnsMessage make_response(const DnsMessage& q, std::int64_t ts_ns, std::uint16_t rcode = 0) {
  DnsMessage r = q;
  r.ts_ns = ts_ns;
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  r.qr = true;
  r.rcode = rcode;
  return r;
}

std::uint64_t histogram_count(const QueryMatcher& m, Transport t, RcodeClass c) {
  return m.latency(Leg::Unknown, t, c).snapshot().count;
}

// 2001:db8::<last>, without the assertion in ip(), for loops that build many addresses.
IpAddr documentation_v6(std::uint8_t last) {
  IpAddr a;
  a.family = 6;
  a.bytes = {0x20, 0x01, 0x0d, 0xb8};
  a.bytes[15] = last;
  return a;
}

std::string ascii_lower_copy(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a response matches its query and reports the exact latency", "[metrics][matcher]") {
  QueryMatcher m;
  const auto q = make_query(kT0);
  CHECK(m.on_query(q) == QueryMatcher::QueryOutcome::Inserted);
  CHECK(m.size() == 1);

  QueryMatcher::Result result;
  REQUIRE(m.on_response(make_response(q, kT0 + 1'234'567), result));
  CHECK(result.latency_ns == 1'234'567);
  CHECK(result.query_ts_ns == kT0);
  CHECK(m.size() == 0);

  // The entry is gone: the same response again is unmatched, and result is left alone.
  result = QueryMatcher::Result{-1, -1};
  CHECK_FALSE(m.on_response(make_response(q, kT0 + 2'000'000), result));
  CHECK(result.latency_ns == -1);

  const auto s = m.stats();
  CHECK(s.queries == 1);
  CHECK(s.matched == 1);
  CHECK(s.unmatched_responses == 1);
  CHECK(s.timeouts == 0);
  CHECK(s.duplicates == 0);
  CHECK(s.evictions == 0);
  CHECK(s.entries == 0);
  CHECK(s.capacity == 65536);
  CHECK(s.memory_bytes >= std::uint64_t{65536} * 64);

  const auto h = m.latency(Leg::Unknown, Transport::Udp, RcodeClass::NoError).snapshot();
  CHECK(h.count == 1);
  CHECK(h.buckets[13] == 1);  // 1.234567 ms: above 0.001, at most 0.0015
  CHECK(h.sum == Approx(0.001234567).epsilon(1e-12));
}

TEST_CASE("a response stamped before its query matches with latency zero", "[metrics][matcher]") {
  QueryMatcher m;
  const auto q = make_query(kT0);
  m.on_query(q);
  QueryMatcher::Result result;
  REQUIRE(m.on_response(make_response(q, kT0 - 1'000), result));
  CHECK(result.latency_ns == 0);
  CHECK(m.latency(Leg::Unknown, Transport::Udp, RcodeClass::NoError).snapshot().buckets[0] == 1);
}

TEST_CASE("a response that differs in any part of the key does not match", "[metrics][matcher]") {
  const auto q = make_query(kT0);

  struct Mutation {
    const char* what;
    void (*apply)(DnsMessage&);
  };

  const std::vector<Mutation> mutations{
      {"id", [](DnsMessage& r) { r.id = 0x1235; }},
      {"client port", [](DnsMessage& r) { r.dport = 40001; }},
      {"client address", [](DnsMessage& r) { r.dst = ip("192.0.2.11"); }},
      {"server address", [](DnsMessage& r) { r.src = ip("198.51.100.54"); }},
      {"client address in IPv6 with the same leading bytes",
       [](DnsMessage& r) {
         r.dst = ip("c000:20a::");  // 192.0.2.10 as the first four bytes
         r.src = ip("c633:6435::");
       }},
      {"client address family", [](DnsMessage& r) { r.dst.family = 6; }},
      {"direction (not reversed)",
       [](DnsMessage& r) {
         std::swap(r.src, r.dst);
         std::swap(r.sport, r.dport);
       }},
      {"name", [](DnsMessage& r) { set_name(r, "www.example.net."); }},
      {"name prefix", [](DnsMessage& r) { set_name(r, "www.example.com"); }},
      {"empty name", [](DnsMessage& r) { set_name(r, ""); }},
      {"qtype", [](DnsMessage& r) { r.qtype = 28; }},
      {"qclass", [](DnsMessage& r) { r.qclass = 3; }},
      {"transport", [](DnsMessage& r) { r.transport = Transport::Tcp; }},
  };
  for (const auto& mutation : mutations) {
    CAPTURE(mutation.what);
    QueryMatcher m{MatcherOptions{.capacity = 16}};
    m.on_query(q);
    auto r = make_response(q, kT0 + 1'000);
    mutation.apply(r);
    QueryMatcher::Result result;
    CHECK_FALSE(m.on_response(r, result));
    CHECK(m.stats().unmatched_responses == 1);
    CHECK(m.size() == 1);
    // The right response still finds the query.
    CHECK(m.on_response(make_response(q, kT0 + 2'000), result));
    CHECK(result.latency_ns == 2'000);
  }
}

TEST_CASE("what is not part of the key does not prevent a match", "[metrics][matcher]") {
  // The server port is not in the key (the parser only decodes DNS ports), and neither are the
  // header flags or bytes of an IPv4 address beyond the fourth.
  const auto q = make_query(kT0);
  QueryMatcher m;
  m.on_query(q);
  auto r = make_response(q, kT0 + 10);
  r.sport = 5353;
  r.flags = 0x8180;
  r.dst.bytes[10] = 0xff;
  QueryMatcher::Result result;
  CHECK(m.on_response(r, result));
}

TEST_CASE("names match case-insensitively, folding only ASCII letters", "[metrics][matcher]") {
  const auto check = [](std::string_view query_name, std::string_view response_name) {
    QueryMatcher m{MatcherOptions{.capacity = 16}};
    const auto q = make_query(kT0, query_name);
    m.on_query(q);
    auto r = make_response(q, kT0 + 1);
    set_name(r, response_name);
    QueryMatcher::Result result;
    return m.on_response(r, result);
  };
  CHECK(check("WWW.Example.COM.", "www.example.com."));
  CHECK(check("www.example.com.", "WWW.EXAMPLE.COM."));
  CHECK(check("ABCDEFGHIJKLMNOPQRSTUVWXYZ.", "abcdefghijklmnopqrstuvwxyz."));
  // Long enough for several 8-byte words and a tail, with the difference in each position.
  const std::string lower = "a-very-long-label-for-testing.sub.example.org.";
  for (std::size_t i = 0; i < lower.size(); ++i) {
    CAPTURE(i);
    std::string upper = lower;
    if (upper[i] >= 'a' && upper[i] <= 'z') {
      upper[i] = static_cast<char>(upper[i] - 'a' + 'A');
      CHECK(check(lower, upper));
    }
    std::string other = lower;
    other[i] = other[i] == 'x' ? 'y' : 'x';
    CHECK_FALSE(check(lower, other));
  }
  // Neighbours of the letter ranges differ by 0x20 as well, but are not letters.
  CHECK_FALSE(check("a@b.", "a`b."));
  CHECK_FALSE(check("a[b.", "a{b."));
  CHECK_FALSE(check("a^b.", "a~b."));
  CHECK_FALSE(check("a\xc9z.", "a\xe9z."));  // Latin-1 É/é: DNS does not fold these
  CHECK_FALSE(check("\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8", "\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8"));
}

TEST_CASE("a query times out after the timeout in packet time and not before",
          "[metrics][matcher]") {
  SECTION("a response exactly at the timeout still matches") {
    QueryMatcher m;
    const auto q = make_query(kT0);
    m.on_query(q);
    CHECK(m.expire(kT0 + 5 * kSecond) == 0);
    CHECK(m.stats().timeouts == 0);
    QueryMatcher::Result result;
    REQUIRE(m.on_response(make_response(q, kT0 + 5 * kSecond), result));
    CHECK(result.latency_ns == 5 * kSecond);
    CHECK(m.latency(Leg::Unknown, Transport::Udp, RcodeClass::NoError).snapshot().buckets[34] ==
          1);  // le=5
  }
  SECTION("one nanosecond later, expire() counts a timeout and the response is unmatched") {
    QueryMatcher m;
    const auto q = make_query(kT0);
    m.on_query(q);
    CHECK(m.expire(kT0 + 5 * kSecond + 1) == 1);
    CHECK(m.stats().timeouts == 1);
    CHECK(m.size() == 0);
    QueryMatcher::Result result;
    CHECK_FALSE(m.on_response(make_response(q, kT0 + 5 * kSecond + 1), result));
    CHECK(m.stats().unmatched_responses == 1);
  }
  SECTION("expiry also happens lazily, on a late response") {
    QueryMatcher m;
    const auto q = make_query(kT0);
    m.on_query(q);
    QueryMatcher::Result result;
    CHECK_FALSE(m.on_response(make_response(q, kT0 + 5 * kSecond + 1), result));
    const auto s = m.stats();
    CHECK(s.timeouts == 1);
    CHECK(s.unmatched_responses == 1);
    CHECK(s.matched == 0);
  }
  SECTION("the boundary holds for the next entry after the oldest was answered") {
    QueryMatcher m;
    const auto q1 = make_query(kT0, "a.", 1);
    const auto q2 = make_query(kT0 + 1, "b.", 2);
    m.on_query(q1);
    m.on_query(q2);
    QueryMatcher::Result result;
    REQUIRE(m.on_response(make_response(q1, kT0 + 1), result));
    CHECK(m.expire(kT0 + 1 + 5 * kSecond) == 0);  // q2 is exactly 5 s old: not yet due
    CHECK(m.expire(kT0 + 2 + 5 * kSecond) == 1);
  }
  SECTION("expiry also happens lazily, on another query, oldest first") {
    QueryMatcher m;
    m.on_query(make_query(kT0, "a.", 1));
    m.on_query(make_query(kT0 + kSecond, "b.", 2));
    m.on_query(make_query(kT0 + 5 * kSecond, "c.", 3));
    CHECK(m.stats().timeouts == 0);
    m.on_query(make_query(kT0 + 5 * kSecond + 1, "d.", 4));
    CHECK(m.stats().timeouts == 1);
    CHECK(m.size() == 3);
    m.on_query(make_query(kT0 + 6 * kSecond + 1, "e.", 5));
    CHECK(m.stats().timeouts == 2);
    CHECK(m.size() == 3);
  }
  SECTION("a configured timeout is used, and a clock running backwards does not undo it") {
    QueryMatcher m{MatcherOptions{.timeout_ns = 100'000'000}};
    const auto q = make_query(kT0);
    m.on_query(q);
    CHECK(m.expire(kT0 + 100'000'000) == 0);
    CHECK(m.expire(kT0 + 100'000'001) == 1);
    CHECK(m.expire(kT0) == 0);  // earlier than the clock: nothing changes
    const auto q2 = make_query(kT0 + 100'000'001, "x.", 7);
    m.on_query(q2);
    CHECK(m.expire(kT0 + 50'000'000) == 0);
    QueryMatcher::Result result;
    REQUIRE(m.on_response(make_response(q2, kT0 + 150'000'000), result));
    CHECK(result.latency_ns == 49'999'999);
  }
  SECTION("the boundary is inclusive for a one-nanosecond timeout too") {
    QueryMatcher m{MatcherOptions{.timeout_ns = 1}};
    const auto q = make_query(kT0);
    m.on_query(q);
    QueryMatcher::Result result;
    CHECK(m.on_response(make_response(q, kT0 + 1), result));
  }
}

TEST_CASE("a retransmitted query keeps its first timestamp and counts as a duplicate",
          "[metrics][matcher]") {
  QueryMatcher m;
  const auto q = make_query(kT0);
  CHECK(m.on_query(q) == QueryMatcher::QueryOutcome::Inserted);
  auto retry = q;
  retry.ts_ns = kT0 + kSecond;
  CHECK(m.on_query(retry) == QueryMatcher::QueryOutcome::Duplicate);
  CHECK(m.size() == 1);
  CHECK(m.stats().duplicates == 1);
  CHECK(m.stats().queries == 2);

  SECTION("the latency runs from the first attempt") {
    QueryMatcher::Result result;
    REQUIRE(m.on_response(make_response(q, kT0 + 1'500'000'000), result));
    CHECK(result.latency_ns == 1'500'000'000);
    CHECK(result.query_ts_ns == kT0);
    // The answer to the retransmission finds nothing left.
    CHECK_FALSE(m.on_response(make_response(q, kT0 + 1'600'000'000), result));
  }
  SECTION("retransmissions do not extend the entry's life") {
    retry.ts_ns = kT0 + 4 * kSecond;
    CHECK(m.on_query(retry) == QueryMatcher::QueryOutcome::Duplicate);
    CHECK(m.expire(kT0 + 5 * kSecond + 1) == 1);
    CHECK(m.size() == 0);
  }
}

TEST_CASE("a full table evicts its oldest query", "[metrics][matcher]") {
  QueryMatcher m{MatcherOptions{.capacity = 3}};
  std::vector<DnsMessage> q;
  for (std::uint16_t i = 0; i < 5; ++i) {
    q.push_back(make_query(kT0 + std::int64_t{i} * 1'000'000, "www.example.com.", i));
  }
  m.on_query(q[0]);
  m.on_query(q[1]);
  m.on_query(q[2]);
  CHECK(m.stats().evictions == 0);

  QueryMatcher::Result result;
  REQUIRE(m.on_response(make_response(q[1], kT0 + 3'500'000), result));  // frees a middle entry
  m.on_query(q[3]);                                                      // fits in the freed slot
  CHECK(m.stats().evictions == 0);
  CHECK(m.size() == 3);
  m.on_query(q[4]);  // full: q[0] goes, not q[2]
  CHECK(m.stats().evictions == 1);
  CHECK(m.size() == 3);

  CHECK_FALSE(m.on_response(make_response(q[0], kT0 + 5'000'000), result));
  for (const std::size_t i : {2U, 3U, 4U}) {
    CAPTURE(i);
    REQUIRE(m.on_response(make_response(q[i], kT0 + 10'000'000), result));
    CHECK(result.query_ts_ns == q[i].ts_ns);
  }
  const auto s = m.stats();
  CHECK(s.matched == 4);
  CHECK(s.unmatched_responses == 1);
  CHECK(s.entries == 0);
  CHECK(s.queries == s.duplicates + s.matched + s.timeouts + s.evictions + s.entries);
}

TEST_CASE("with query tags, a timeout hands its query and tag to the sink, nothing else does",
          "[metrics][matcher]") {
  struct Sink final : dnsmon::detail::TimeoutSink {
    std::vector<dnsmon::detail::TimedOutQuery> got;
    std::vector<std::uint64_t> words;

    void on_timeout(const dnsmon::detail::TimedOutQuery& q) noexcept override {
      got.push_back(q);
      words.push_back(q.tag->word);
    }
  };

  Sink sink;
  QueryMatcher m{MatcherOptions{.capacity = 2, .query_tags = true}};
  CHECK(m.stats().memory_bytes == QueryMatcher::planned_bytes(2, true));
  CHECK(QueryMatcher::planned_bytes(2, true) == QueryMatcher::planned_bytes(2) + std::size_t{128});
  m.set_timeout_sink(&sink);

  // Tagged, then answered: no timeout. Its node is reused next, with its tag zeroed.
  auto answered = make_query(kT0, "a.example.", 1);
  m.on_query(answered);
  REQUIRE(m.last_tag() != nullptr);
  CHECK(m.last_tag()->word == 0);
  m.last_tag()->word = 11;
  QueryMatcher::Result result;
  CHECK(m.matched_tag() == nullptr);
  REQUIRE(m.on_response(make_response(answered, kT0 + 1000), result));
  // The response reads its query's tag as the query's owner left it.
  REQUIRE(m.matched_tag() != nullptr);
  CHECK(m.matched_tag()->word == 11);
  CHECK_FALSE(m.on_response(make_response(answered, kT0 + 2000), result));
  CHECK(m.matched_tag() == nullptr);  // matched nothing

  auto v6 = make_query(kT0 + 1, "b.example.", 2);
  v6.src = documentation_v6(7);
  v6.dst = documentation_v6(53);
  v6.qtype = 28;
  m.on_query(v6);
  REQUIRE(m.last_tag() != nullptr);
  CHECK(m.last_tag()->word == 0);     // the answered query's 11 is gone
  CHECK(m.matched_tag() == nullptr);  // a query may reuse the matched entry: no longer valid
  m.last_tag()->word = 22;
  m.on_query(v6);  // a retransmission: no tag of its own
  CHECK(m.last_tag() == nullptr);

  auto untagged = make_query(kT0 + 2, "c.example.", 3);
  m.on_query(untagged);  // nobody fills its tag
  CHECK(m.last_tag() != nullptr);

  // Full: a third query evicts the oldest (v6), which is not a timeout.
  m.on_query(make_query(kT0 + 3, "d.example.", 4));
  m.last_tag()->word = 44;
  CHECK(m.stats().evictions == 1);
  CHECK(sink.got.empty());

  // Both left time out, oldest first, with their client, type, times and tag.
  CHECK(m.expire(kT0 + 10 * kSecond) == 2);
  REQUIRE(sink.got.size() == 2);
  CHECK(sink.words == std::vector<std::uint64_t>{0, 44});
  const auto& t = sink.got[0];
  CHECK(t.client.family == 4);
  CHECK(std::memcmp(t.client.bytes.data(), untagged.src.bytes.data(), 4) == 0);
  CHECK(t.qtype == 1);
  CHECK(t.query_ts_ns == kT0 + 2);
  CHECK(t.timeout_ts_ns == kT0 + 2 + 5 * kSecond);
  CHECK(m.stats().timeouts == 2);

  SECTION("an IPv6 client comes back whole") {
    m.on_query(v6);
    m.last_tag()->word = 66;
    CHECK(m.expire(kT0 + 20 * kSecond) == 1);
    REQUIRE(sink.got.size() == 3);
    CHECK(sink.got[2].client.family == 6);
    CHECK(sink.got[2].client.bytes == v6.src.bytes);
    CHECK(sink.got[2].qtype == 28);
    CHECK(sink.words[2] == 66);
  }
  SECTION("without a sink, timeouts are only counted") {
    m.set_timeout_sink(nullptr);
    m.on_query(v6);
    CHECK(m.expire(kT0 + 20 * kSecond) == 1);
    CHECK(sink.got.size() == 2);
  }
}

TEST_CASE("without query tags there is no tag and no sink", "[metrics][matcher]") {
  struct Sink final : dnsmon::detail::TimeoutSink {
    int calls = 0;

    void on_timeout(const dnsmon::detail::TimedOutQuery& /*q*/) noexcept override { ++calls; }
  };

  Sink sink;
  QueryMatcher m;
  m.set_timeout_sink(&sink);
  const auto q = make_query(kT0);
  m.on_query(q);
  CHECK(m.last_tag() == nullptr);
  QueryMatcher::Result result;
  REQUIRE(m.on_response(make_response(q, kT0 + 1000), result));
  CHECK(m.matched_tag() == nullptr);
  m.on_query(q);
  CHECK(m.expire(kT0 + 10 * kSecond) == 1);
  CHECK(sink.calls == 0);
}

TEST_CASE("a million unanswered distinct queries keep the table within its capacity",
          "[metrics][matcher]") {
  QueryMatcher m;  // default capacity 65536 and timeout 5 s
  constexpr std::size_t kQueries = 1'000'000;
  auto q = make_query(kT0);
  std::size_t max_entries = 0;
  std::size_t inserted = 0;
  for (std::size_t i = 0; i < kQueries; ++i) {
    // The first 600,000 arrive within 3 s, far more than the table holds for 5 s: evictions.
    // The rest come every 10 ms, so the table drains by timeouts.
    q.ts_ns = i < 600'000 ? kT0 + static_cast<std::int64_t>(i) * 5'000
                          : kT0 + 3 * kSecond + static_cast<std::int64_t>(i - 600'000) * 10'000'000;
    q.id = static_cast<std::uint16_t>(i);
    q.sport = static_cast<std::uint16_t>(1024 + (i >> 16U));
    inserted += m.on_query(q) == QueryMatcher::QueryOutcome::Inserted ? 1U : 0U;
    max_entries = std::max(max_entries, m.size());
  }
  CHECK(inserted == kQueries);  // all distinct
  auto s = m.stats();
  CHECK(max_entries == 65536);
  CHECK(s.entries <= 65536);
  CHECK(s.entries == 501);  // the last 5 s at 10 ms, both ends included
  CHECK(s.evictions >= 600'000 - 65536);
  CHECK(s.timeouts > 60'000);
  CHECK(s.queries == kQueries);
  CHECK(s.queries == s.duplicates + s.matched + s.timeouts + s.evictions + s.entries);

  CHECK(m.expire(q.ts_ns + 5 * kSecond + 1) == 501);
  s = m.stats();
  CHECK(s.entries == 0);
  CHECK(s.timeouts + s.evictions == kQueries);
}

TEST_CASE("no allocation happens after construction", "[metrics][matcher]") {
  // The counter works: an allocation in this file is seen.
  const auto probe_before = dnsmon::test::new_calls();
  auto probe = std::make_unique<int>(1);
  CHECK(dnsmon::test::new_calls() == probe_before + 1);

  QueryMatcher m{MatcherOptions{.capacity = 4096, .timeout_ns = 100'000'000, .hash_seed = 7}};
  auto q = make_query(kT0, "Some.Name.Example.COM.");
  auto v6 = make_query(kT0, "six.example.");
  v6.src = ip("2001:db8::10");
  v6.dst = ip("2001:db8::53");
  v6.transport = Transport::Tcp;
  QueryMatcher::Result result;
  std::uint64_t before = 0;
  std::int64_t ts_ns = kT0;
  for (std::uint32_t i = 0; i < 400'000; ++i) {
    if (i == 50'000) {
      before = dnsmon::test::new_calls();  // warm-up done: the table has filled
    }
    auto& msg = (i % 3 == 0) ? v6 : q;
    // Alternately 200,000 queries/s (the table fills: evictions) and 10,000/s (timeouts).
    ts_ns += (i / 20'000) % 2 == 0 ? 5'000 : 100'000;
    msg.ts_ns = ts_ns;
    msg.id = static_cast<std::uint16_t>(i);
    msg.sport = static_cast<std::uint16_t>(i >> 16U);
    msg.qr = false;
    m.on_query(msg);
    if (i % 7 == 0) {
      m.on_query(msg);  // a retransmission
    }
    if (i % 2 == 0) {
      auto r = msg;
      std::swap(r.src, r.dst);
      std::swap(r.sport, r.dport);
      r.qr = true;
      r.rcode = static_cast<std::uint16_t>(i % 5);
      r.ts_ns += (i % 4 == 0) ? 1'000'000 : 0;
      r.id = static_cast<std::uint16_t>(i % 11 == 0 ? i + 1 : i);  // some responses match nothing
      (void)m.on_response(r, result);
    }
  }
  m.expire(ts_ns + kSecond);
  const auto after = dnsmon::test::new_calls();
  CHECK(after == before);
  const auto s = m.stats();
  CHECK(s.matched > 0);
  CHECK(s.unmatched_responses > 0);
  CHECK(s.duplicates > 0);
  CHECK(s.timeouts > 0);
  CHECK(s.evictions > 0);
}

TEST_CASE("latency buckets put a value equal to a bound in that bound's bucket",
          "[metrics][matcher]") {
  STATIC_REQUIRE(kLatencyBoundsS.front() == 0.00001);
  STATIC_REQUIRE(kLatencyBoundsS.back() == 5.0);
  STATIC_REQUIRE(kLatencyBuckets == kLatencyBoundsS.size() + 1);
  CHECK(LatencyHistogram::bucket_index(0) == 0);
  for (std::size_t i = 0; i < kLatencyBoundsNs.size(); ++i) {
    CAPTURE(i);
    const std::int64_t bound = kLatencyBoundsNs[i];
    CHECK(static_cast<double>(bound) == Approx(kLatencyBoundsS[i] * 1e9));
    CHECK(LatencyHistogram::bucket_index(bound - 1) == i);
    CHECK(LatencyHistogram::bucket_index(bound) == i);
    CHECK(LatencyHistogram::bucket_index(bound + 1) == i + 1);
  }
  CHECK(LatencyHistogram::bucket_index(std::numeric_limits<std::int64_t>::max()) ==
        kLatencyBuckets - 1);

  LatencyHistogram h;
  h.record(10'000, static_cast<double>(10'000) / 1e9);                    // le=0.00001
  h.record(10'001, static_cast<double>(10'001) / 1e9);                    // le=0.000015
  h.record(5 * kSecond, static_cast<double>(5 * kSecond) / 1e9);          // le=5
  h.record(5 * kSecond + 1, static_cast<double>(5 * kSecond + 1) / 1e9);  // +Inf
  const auto s = h.snapshot();
  CHECK(s.buckets[0] == 1);
  CHECK(s.buckets[1] == 1);
  CHECK(s.buckets[34] == 1);
  CHECK(s.buckets[35] == 1);
  CHECK(s.count == 4);
  CHECK(s.sum == Approx(10.000020002).epsilon(1e-12));
}

TEST_CASE("latency is recorded under the response's transport and rcode class",
          "[metrics][matcher]") {
  using dnsmon::detail::classify_rcode;
  using dnsmon::detail::rcode_class_name;
  CHECK(classify_rcode(0) == RcodeClass::NoError);
  CHECK(classify_rcode(3) == RcodeClass::NxDomain);
  CHECK(classify_rcode(2) == RcodeClass::ServFail);
  CHECK(classify_rcode(5) == RcodeClass::Other);
  CHECK(classify_rcode(16) == RcodeClass::Other);  // BADVERS, an EDNS-extended rcode
  CHECK(rcode_class_name(RcodeClass::NoError) == "noerror");
  CHECK(rcode_class_name(RcodeClass::NxDomain) == "nxdomain");
  CHECK(rcode_class_name(RcodeClass::ServFail) == "servfail");
  CHECK(rcode_class_name(RcodeClass::Other) == "other");

  QueryMatcher m;
  auto q = make_query(kT0);
  q.transport = Transport::Tcp;
  m.on_query(q);
  QueryMatcher::Result result;
  REQUIRE(m.on_response(make_response(q, kT0 + 30'000'000, 3), result));
  for (const auto t : {Transport::Udp, Transport::Tcp}) {
    for (const auto c :
         {RcodeClass::NoError, RcodeClass::NxDomain, RcodeClass::ServFail, RcodeClass::Other}) {
      CAPTURE(static_cast<int>(t), static_cast<int>(c));
      const bool expected = t == Transport::Tcp && c == RcodeClass::NxDomain;
      CHECK(histogram_count(m, t, c) == (expected ? 1U : 0U));
    }
  }
  CHECK(m.latency(Leg::Unknown, Transport::Tcp, RcodeClass::NxDomain).snapshot().buckets[21] ==
        1);  // le=0.03
}

TEST_CASE("random traffic gives the same results as a simple reference model",
          "[metrics][matcher]") {
  // The model keeps entries in a deque in insertion order and searches it linearly. A small
  // capacity and key space make duplicates, evictions, timeouts and shared hash chains common.
  constexpr std::size_t kCapacity = 8;
  constexpr std::int64_t kTimeout = kSecond;

  struct ModelKey {
    int client, server, port, id, name, qtype;
    Transport transport;
    bool operator==(const ModelKey&) const = default;
  };

  struct ModelEntry {
    ModelKey key;
    std::int64_t ts_ns;
  };

  const std::array<IpAddr, 4> clients{ip("192.0.2.1"), ip("192.0.2.2"), ip("10.0.0.1"),
                                      ip("2001:db8::1")};
  const std::array<IpAddr, 2> servers4{ip("198.51.100.53"), ip("198.51.100.54")};
  const std::array<IpAddr, 2> servers6{ip("2001:db8::53"), ip("2001:db8::54")};
  // Each name has two spellings that differ only in case; the last is several hash words long.
  const std::array<std::array<const char*, 2>, 3> names{
      {{"a.example.", "A.Example."},
       {"b.example.", "B.EXAMPLE."},
       {"long-name.b.example.", "LONG-NAME.b.Example."}}};

  const std::uint64_t seed = GENERATE(1U, 0U);  // a fixed hash seed, and a random one
  std::mt19937_64 rng{42};
  QueryMatcher m{MatcherOptions{.capacity = kCapacity, .timeout_ns = kTimeout, .hash_seed = seed}};
  std::deque<ModelEntry> model;
  std::uint64_t timeouts = 0, evictions = 0, duplicates = 0, matched = 0, unmatched = 0;
  std::int64_t clock = kT0;

  DnsMessage msg = make_query(kT0);
  std::int64_t ts = kT0;
  for (int step = 0; step < 200'000; ++step) {
    ts += static_cast<std::int64_t>(rng() % 4 == 0 ? 0 : rng() % 200'000'000);
    ModelKey k{static_cast<int>(rng() % clients.size()),
               static_cast<int>(rng() % 2),
               static_cast<int>(rng() % 2),
               static_cast<int>(rng() % 3),
               static_cast<int>(rng() % 3),
               static_cast<int>(rng() % 2),
               rng() % 2 == 0 ? Transport::Udp : Transport::Tcp};
    const bool response = rng() % 2 == 0;
    const IpAddr& client = clients[static_cast<std::size_t>(k.client)];
    const IpAddr& server = client.family == 4 ? servers4[static_cast<std::size_t>(k.server)]
                                              : servers6[static_cast<std::size_t>(k.server)];
    msg.ts_ns = ts;
    msg.src = response ? server : client;
    msg.dst = response ? client : server;
    msg.sport = response ? 53 : static_cast<std::uint16_t>(40000 + k.port);
    msg.dport = response ? static_cast<std::uint16_t>(40000 + k.port) : 53;
    msg.id = static_cast<std::uint16_t>(k.id);
    msg.qtype = k.qtype == 0 ? 1 : 28;
    msg.transport = k.transport;
    msg.qr = response;
    set_name(msg, names[static_cast<std::size_t>(k.name)][rng() % 2]);

    // The model.
    clock = std::max(clock, ts);
    while (!model.empty() && clock - model.front().ts_ns > kTimeout) {
      model.pop_front();
      ++timeouts;
    }
    const auto it =
        std::find_if(model.begin(), model.end(), [&](const ModelEntry& e) { return e.key == k; });
    bool agrees = true;
    if (response) {
      QueryMatcher::Result result;
      const bool got = m.on_response(msg, result);
      agrees = got == (it != model.end()) && (!got || result.latency_ns == ts - it->ts_ns);
      if (got && agrees) {
        model.erase(it);
        ++matched;
      } else {
        ++unmatched;
      }
    } else {
      const auto outcome = m.on_query(msg);
      agrees = (outcome == QueryMatcher::QueryOutcome::Duplicate) == (it != model.end());
      if (it != model.end()) {
        ++duplicates;
      } else {
        if (model.size() == kCapacity) {
          model.pop_front();
          ++evictions;
        }
        model.push_back({k, ts});
      }
    }
    // One assertion per step would dominate the run time, so only a disagreement asserts.
    if (!agrees || m.size() != model.size()) {
      FAIL("step " << step << ": the matcher and the model disagree");
    }
  }
  const auto s = m.stats();
  CHECK(s.timeouts == timeouts);
  CHECK(s.evictions == evictions);
  CHECK(s.duplicates == duplicates);
  CHECK(s.matched == matched);
  CHECK(s.unmatched_responses == unmatched);
  CHECK(s.entries == model.size());
  // Every path ran often enough to mean something.
  CHECK(timeouts > 1000);
  CHECK(evictions > 1000);
  CHECK(duplicates > 1000);
  CHECK(matched > 1000);
}

TEST_CASE("invalid options are refused at construction", "[metrics][matcher]") {
  CHECK_THROWS_AS(QueryMatcher(MatcherOptions{.capacity = 0}), std::invalid_argument);
  CHECK_THROWS_AS(QueryMatcher(MatcherOptions{.capacity = (1U << 24U) + 1}), std::invalid_argument);
  CHECK_THROWS_AS(QueryMatcher(MatcherOptions{.timeout_ns = 0}), std::invalid_argument);
  CHECK_THROWS_AS(QueryMatcher(MatcherOptions{.timeout_ns = -1}), std::invalid_argument);
  CHECK_NOTHROW(QueryMatcher(MatcherOptions{.capacity = 1, .timeout_ns = 1}));
}

TEST_CASE("qname_hash is hash_bytes of the lower-cased name", "[metrics][matcher]") {
  // Callers hash a name once for all the analytics and hand the hash to the matcher, so the two
  // must agree bit for bit: at every length (each of hash_bytes' paths and tails), for letters of
  // both cases, their neighbours, escapes and bytes >= 0x80.
  static constexpr std::string_view kAlphabet = "AZazMmQq@[`{09-.\\\x80\xc1\xe1\xff";
  std::mt19937_64 rng{7};
  for (const std::uint64_t seed :
       {std::uint64_t{1}, std::uint64_t{0x2d358dccaa6c78a5}, ~std::uint64_t{0}}) {
    for (std::size_t len = 0; len <= 300; ++len) {
      for (int trial = 0; trial < 4; ++trial) {
        // A vector holds exactly the name, so AddressSanitizer sees any read beyond it.
        std::vector<char> name(len);
        for (char& c : name) {
          c = trial == 3 ? static_cast<char>(rng()) : kAlphabet[rng() % kAlphabet.size()];
        }
        const std::string_view view{name.data(), name.size()};
        const std::string lower = ascii_lower_copy(view);
        const std::uint64_t expected = hash_bytes(lower, seed);
        if (qname_hash(view, seed) != expected || qname_hash(lower, seed) != expected) {
          FAIL("seed " << seed << ", length " << len << ", trial " << trial << ": differs");
        }
      }
    }
  }
  CHECK(qname_hash("WWW.Example.COM", 9) == qname_hash("www.example.com", 9));
  CHECK(qname_hash("www.example.com", 9) != qname_hash("www.example.com", 10));
  CHECK(qname_hash("www.example.com", 9) != qname_hash("www.example.co", 9));
  CHECK(qname_hash("a\xc9z", 9) != qname_hash("a\xe9z", 9));  // Latin-1 É and é do not fold
}

TEST_CASE("the overloads that take a precomputed name hash agree with the others",
          "[metrics][matcher]") {
  // Three matchers see the same random traffic: one hashes every name itself, one is given every
  // hash, one is given the queries' hashes only. They must agree at every step.
  const std::uint64_t seed = GENERATE(std::uint64_t{0}, std::uint64_t{5});
  QueryMatcher own{MatcherOptions{.capacity = 16, .timeout_ns = kSecond, .hash_seed = seed}};
  CHECK(own.hash_seed() != 0);
  if (seed != 0) {
    CHECK(own.hash_seed() == seed);
  }
  const MatcherOptions same{.capacity = 16, .timeout_ns = kSecond, .hash_seed = own.hash_seed()};
  QueryMatcher given{same};
  QueryMatcher mixed{same};

  const std::array<IpAddr, 3> clients{ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1")};
  const IpAddr server4 = ip("198.51.100.53");
  const IpAddr server6 = ip("2001:db8::53");
  const std::array<std::string_view, 6> names{"a.example.",          "A.EXAMPLE.",
                                              "b.example.",          "B.Example.",
                                              "long-name.b.example", "LONG-NAME.B.EXAMPLE"};
  std::mt19937_64 rng{99};
  DnsMessage msg = make_query(kT0);
  std::int64_t ts = kT0;
  for (int step = 0; step < 50'000; ++step) {
    ts += static_cast<std::int64_t>(rng() % 100'000'000);
    const IpAddr& client = clients[rng() % clients.size()];
    const IpAddr& server = client.family == 4 ? server4 : server6;
    const bool response = rng() % 2 == 0;
    msg.ts_ns = ts;
    msg.src = response ? server : client;
    msg.dst = response ? client : server;
    const auto port = static_cast<std::uint16_t>(40000 + rng() % 2);
    msg.sport = response ? 53 : port;
    msg.dport = response ? port : 53;
    msg.id = static_cast<std::uint16_t>(rng() % 3);
    msg.transport = rng() % 2 == 0 ? Transport::Udp : Transport::Tcp;
    msg.rcode = static_cast<std::uint16_t>(rng() % 4);
    set_name(msg, names[rng() % names.size()]);
    const std::uint64_t hash = qname_hash(msg.qname.view(), own.hash_seed());

    bool agrees = true;
    if (response) {
      QueryMatcher::Result a{-1, -1}, b{-1, -1}, c{-1, -1};
      const bool got = own.on_response(msg, a);
      agrees = got == given.on_response(msg, hash, b) && got == mixed.on_response(msg, c) &&
               a.latency_ns == b.latency_ns && a.latency_ns == c.latency_ns &&
               a.query_ts_ns == b.query_ts_ns && a.query_ts_ns == c.query_ts_ns;
    } else {
      const auto outcome = own.on_query(msg);
      agrees = outcome == given.on_query(msg, hash) && outcome == mixed.on_query(msg, hash);
    }
    if (!agrees || own.size() != given.size() || own.size() != mixed.size()) {
      FAIL("step " << step << ": the overloads disagree");
    }
  }
  for (const QueryMatcher* other : {&given, &mixed}) {
    const auto a = own.stats();
    const auto b = other->stats();
    CHECK(a.queries == b.queries);
    CHECK(a.matched == b.matched);
    CHECK(a.timeouts == b.timeouts);
    CHECK(a.unmatched_responses == b.unmatched_responses);
    CHECK(a.duplicates == b.duplicates);
    CHECK(a.evictions == b.evictions);
    CHECK(a.entries == b.entries);
    for (const auto t : {Transport::Udp, Transport::Tcp}) {
      for (const auto c :
           {RcodeClass::NoError, RcodeClass::NxDomain, RcodeClass::ServFail, RcodeClass::Other}) {
        CHECK(own.latency(Leg::Unknown, t, c).snapshot().buckets ==
              other->latency(Leg::Unknown, t, c).snapshot().buckets);
      }
    }
  }
  const auto s = own.stats();
  CHECK(s.matched > 1000);
  CHECK(s.duplicates > 1000);
  CHECK(s.timeouts > 1000);
  CHECK(s.evictions > 50);
}

TEST_CASE("a precomputed hash of another name keys that other name", "[metrics][matcher]") {
  QueryMatcher m{MatcherOptions{.hash_seed = 3}};
  const auto q = make_query(kT0, "www.example.com.");
  const std::uint64_t other = qname_hash("www.example.net.", m.hash_seed());
  m.on_query(q, other);
  QueryMatcher::Result result;
  CHECK_FALSE(m.on_response(make_response(q, kT0 + 10), result));
  CHECK(m.on_response(make_response(q, kT0 + 20), other, result));
  CHECK(result.latency_ns == 20);
}

TEST_CASE("keys that differ in one field an outsider controls spread over the buckets",
          "[metrics][matcher]") {
  // Families of queries an outsider could send: every DNS id from one port, every port, both at
  // once, numbered names, neighbouring IPv4 and IPv6 clients, every qtype and qclass. A hash that
  // ignored a field, or let two fields cancel, would put a family into few chains. 16,384 keys in
  // 32,768 buckets: the longest chain of a random assignment is about 7, and 16 or more has a
  // probability far below 1e-9.
  constexpr std::uint32_t kKeys = 16'384;

  struct Family {
    const char* what;
    void (*apply)(std::uint32_t i, DnsMessage& q);
  };

  const std::vector<Family> families{
      {"id", [](std::uint32_t i, DnsMessage& q) { q.id = static_cast<std::uint16_t>(i); }},
      {"client port",
       [](std::uint32_t i, DnsMessage& q) { q.sport = static_cast<std::uint16_t>(i); }},
      {"id and port",
       [](std::uint32_t i, DnsMessage& q) {
         q.id = static_cast<std::uint16_t>(i & 0x7fU);
         q.sport = static_cast<std::uint16_t>(1024 + (i >> 7U));
       }},
      {"name", [](std::uint32_t i,
                  DnsMessage& q) { set_name(q, "q" + std::to_string(i) + ".example.com"); }},
      {"IPv4 client",
       [](std::uint32_t i, DnsMessage& q) {
         q.src.bytes[2] = static_cast<std::uint8_t>(i >> 8U);
         q.src.bytes[3] = static_cast<std::uint8_t>(i);
       }},
      {"IPv6 client, low bytes",
       [](std::uint32_t i, DnsMessage& q) {
         q.src = documentation_v6(0);
         q.dst = documentation_v6(0x53);
         q.src.bytes[14] = static_cast<std::uint8_t>(i >> 8U);
         q.src.bytes[15] = static_cast<std::uint8_t>(i);
       }},
      {"IPv6 client, middle bytes",
       [](std::uint32_t i, DnsMessage& q) {
         q.src = documentation_v6(1);
         q.dst = documentation_v6(0x53);
         q.src.bytes[6] = static_cast<std::uint8_t>(i >> 8U);
         q.src.bytes[7] = static_cast<std::uint8_t>(i);
       }},
      {"qtype", [](std::uint32_t i, DnsMessage& q) { q.qtype = static_cast<std::uint16_t>(i); }},
      {"qclass", [](std::uint32_t i, DnsMessage& q) { q.qclass = static_cast<std::uint16_t>(i); }},
  };
  const std::uint64_t seed = GENERATE(std::uint64_t{1}, std::uint64_t{0});
  for (const auto& family : families) {
    CAPTURE(family.what, seed);
    QueryMatcher m{MatcherOptions{.capacity = kKeys, .hash_seed = seed}};
    for (std::uint32_t i = 0; i < kKeys; ++i) {
      auto q = make_query(kT0);
      family.apply(i, q);
      m.on_query(q);
    }
    CHECK(m.size() == kKeys);  // all distinct
    CHECK(m.longest_chain() < 16);
  }
}

TEST_CASE("ServerAddresses parses CIDR prefixes and rejects the rest", "[metrics][legs]") {
  ServerAddresses s;
  CHECK(s.empty());
  CHECK(s.add("10.0.0.53/32"));
  CHECK(s.add("10.1.0.0/16"));
  CHECK(s.add("192.0.2.7"));  // a host prefix
  CHECK(s.add("2001:db8:1::/48"));
  CHECK(s.add("2001:db8::53"));
  CHECK(s.add("0.0.0.0/0"));
  CHECK(s.add("::/0"));
  CHECK(s.add("10.0.0.53/32"));  // a repeat is kept once
  CHECK(s.size() == 7);
  for (const char* bad : {"", "10.0.0.53/33", "10.0.0.1/24", "2001:db8::1/32", "2001:db8::/129",
                          "10.0.0/24", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "example.com",
                          "10.0.0.0/0008", "2001:db8::/48/1"}) {
    CAPTURE(bad);
    CHECK_FALSE(s.add(bad));
  }
  CHECK(s.size() == 7);
  const auto text = s.describe();
  CHECK(text == std::vector<std::string>{"10.0.0.53/32", "10.1.0.0/16", "192.0.2.7/32", "0.0.0.0/0",
                                         "2001:db8:1::/48", "2001:db8::53/128", "::/0"});
}

TEST_CASE("ServerAddresses matches addresses at the prefix boundaries", "[metrics][legs]") {
  ServerAddresses s;
  REQUIRE(s.add("10.1.0.0/16"));
  REQUIRE(s.add("10.0.0.53"));
  REQUIRE(s.add("2001:db8:1::/48"));
  REQUIRE(s.add("2001:db8:2:3:4:5:6:0/112"));
  CHECK(s.contains(ip("10.1.0.0")));
  CHECK(s.contains(ip("10.1.255.255")));
  CHECK_FALSE(s.contains(ip("10.2.0.0")));
  CHECK_FALSE(s.contains(ip("10.0.255.255")));
  CHECK(s.contains(ip("10.0.0.53")));
  CHECK_FALSE(s.contains(ip("10.0.0.52")));
  CHECK(s.contains(ip("2001:db8:1::")));
  CHECK(s.contains(ip("2001:db8:1:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(s.contains(ip("2001:db8:2::")));
  CHECK(s.contains(ip("2001:db8:2:3:4:5:6:ffff")));  // a prefix beyond 64 bits
  CHECK_FALSE(s.contains(ip("2001:db8:2:3:4:5:7:0")));
  // Families do not mix: the IPv4 prefixes say nothing about an IPv6 address with the same
  // leading bytes, nor the other way round.
  IpAddr v6_lookalike = ip("::");
  v6_lookalike.bytes[0] = 10;
  v6_lookalike.bytes[1] = 1;
  CHECK_FALSE(s.contains(v6_lookalike));
  CHECK_FALSE(s.contains(IpAddr{}));  // no family
  ServerAddresses all;
  REQUIRE(all.add("0.0.0.0/0"));
  CHECK(all.contains(ip("255.255.255.255")));
  CHECK_FALSE(all.contains(ip("::1")));
}

TEST_CASE("a query's leg: to the server is client, from it upstream, else unknown",
          "[metrics][legs]") {
  ServerAddresses server;
  REQUIRE(server.add("10.0.0.53/32"));
  REQUIRE(server.add("::1"));
  REQUIRE(server.add("127.0.0.1"));
  auto query = make_query(kT0);
  auto leg_of = [&](const char* src, const char* dst) {
    query.src = ip(src);
    query.dst = ip(dst);
    query.qr = false;
    const Leg q = server.leg(query);
    const auto r = make_response(query, kT0 + 1);
    CHECK(server.leg(r) == q);  // a response is on its query's leg
    return q;
  };
  CHECK(leg_of("10.0.0.7", "10.0.0.53") == Leg::Client);
  CHECK(leg_of("10.0.0.53", "192.0.2.1") == Leg::Upstream);
  CHECK(leg_of("10.0.0.7", "192.0.2.1") == Leg::Unknown);
  // Both ends local (a stub on the resolver host asking it over loopback): the client leg.
  CHECK(leg_of("127.0.0.1", "10.0.0.53") == Leg::Client);
  CHECK(leg_of("::1", "::1") == Leg::Client);
  CHECK(leg_of("2001:db8::1", "::1") == Leg::Client);
  CHECK(leg_of("::1", "2001:db8::1") == Leg::Upstream);
  // No addresses known: every leg unknown.
  const ServerAddresses none;
  query.src = ip("10.0.0.7");
  query.dst = ip("10.0.0.53");
  CHECK(none.leg(query) == Leg::Unknown);
  CHECK(dnsmon::leg_name(Leg::Client) == "client");
  CHECK(dnsmon::leg_name(Leg::Upstream) == "upstream");
  CHECK(dnsmon::leg_name(Leg::Unknown) == "unknown");

  const auto before = dnsmon::test::new_calls();
  std::size_t client = 0;
  for (int i = 0; i < 1000; ++i) {
    query.dst.bytes[3] = static_cast<std::uint8_t>(i);
    client += server.leg(query) == Leg::Client ? std::size_t{1} : std::size_t{0};
  }
  CHECK(client == 4);                          // 10.0.0.53 four times in 1000
  CHECK(dnsmon::test::new_calls() == before);  // deciding a leg never allocates
}

TEST_CASE("the matcher counts and times each leg apart", "[metrics][matcher][legs]") {
  QueryMatcher m{MatcherOptions{.capacity = 2, .timeout_ns = kSecond, .hash_seed = 3}};
  const std::uint64_t seed = m.hash_seed();
  auto on_query = [&](const DnsMessage& q, Leg leg) {
    return m.on_query(q, m.prepare(q, false, qname_hash(q.qname.view(), seed), leg));
  };
  auto on_response = [&](const DnsMessage& r, Leg leg) {
    QueryMatcher::Result result;
    return m.on_response(r, m.prepare(r, true, qname_hash(r.qname.view(), seed), leg), result);
  };
  const auto client = make_query(kT0, "client.example.", 1);
  const auto upstream = make_query(kT0, "upstream.example.", 2);
  CHECK(on_query(client, Leg::Client) == QueryMatcher::QueryOutcome::Inserted);
  CHECK(on_query(client, Leg::Client) == QueryMatcher::QueryOutcome::Duplicate);
  CHECK(on_query(upstream, Leg::Upstream) == QueryMatcher::QueryOutcome::Inserted);
  CHECK(on_response(make_response(client, kT0 + 30'000), Leg::Client));             // 30 us
  CHECK(on_response(make_response(upstream, kT0 + 30'000'000, 3), Leg::Upstream));  // 30 ms
  CHECK_FALSE(on_response(make_response(upstream, kT0 + 31'000'000), Leg::Upstream));

  // A full table evicts the oldest query, which counts on its own leg; a timeout too.
  CHECK(on_query(make_query(kT0 + 40'000'000, "a.example.", 3), Leg::Client) ==
        QueryMatcher::QueryOutcome::Inserted);
  CHECK(on_query(make_query(kT0 + 41'000'000, "b.example.", 4), Leg::Upstream) ==
        QueryMatcher::QueryOutcome::Inserted);
  CHECK(on_query(make_query(kT0 + 42'000'000, "c.example.", 5), Leg::Unknown) ==
        QueryMatcher::QueryOutcome::Inserted);  // evicts a.example. (client)
  m.expire(kT0 + 10 * kSecond);  // b.example. (upstream) and c.example. (unknown) time out

  const auto c = m.stats(Leg::Client);
  const auto u = m.stats(Leg::Upstream);
  const auto n = m.stats(Leg::Unknown);
  CHECK((c.matched == 1 && c.duplicates == 1 && c.evictions == 1 && c.timeouts == 0 &&
         c.unmatched_responses == 0));
  CHECK((u.matched == 1 && u.duplicates == 0 && u.evictions == 0 && u.timeouts == 1 &&
         u.unmatched_responses == 1));
  CHECK((n.matched == 0 && n.evictions == 0 && n.timeouts == 1));
  const auto all = m.stats();
  CHECK(all.queries == 6);
  CHECK(all.matched == 2);
  CHECK(all.duplicates == 1);
  CHECK(all.timeouts == 2);
  CHECK(all.evictions == 1);
  CHECK(all.unmatched_responses == 1);
  CHECK(all.queries == all.duplicates + all.matched + all.timeouts + all.evictions + all.entries);

  const auto lan = m.latency(Leg::Client, Transport::Udp, RcodeClass::NoError).snapshot();
  CHECK(lan.count == 1);
  CHECK(lan.buckets[3] == 1);  // le=0.00003
  const auto wan = m.latency(Leg::Upstream, Transport::Udp, RcodeClass::NxDomain).snapshot();
  CHECK(wan.count == 1);
  CHECK(wan.buckets[21] == 1);  // le=0.03
  CHECK(m.latency(Leg::Unknown, Transport::Udp, RcodeClass::NoError).snapshot().count == 0);
  CHECK(m.latency(Leg::Upstream, Transport::Udp, RcodeClass::NoError).snapshot().count == 0);
}

TEST_CASE("a reader of a ServerAddressBook sees each set whole with its generation",
          "[metrics][legs]") {
  // The writer publishes sets of 1, 2, ... 200 prefixes; generation g must come with g + 1 of
  // them, whatever the interleaving (the tsan build checks the ordering too).
  ServerAddresses first;
  REQUIRE(first.add("10.0.0.0/32"));
  dnsmon::ServerAddressBook book(first);
  CHECK_FALSE(book.empty());
  constexpr std::uint64_t kSets = 200;
  std::thread writer([&book] {
    for (std::uint64_t g = 1; g <= kSets; ++g) {
      ServerAddresses next;
      for (std::uint64_t i = 0; i <= g; ++i) {
        (void)next.add("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + "/32");
      }
      book.publish(std::move(next));
    }
  });
  ServerAddresses mine;
  std::uint64_t seen = book.copy_to(mine);
  std::uint64_t mismatches = 0;
  for (int k = 0; k < 100'000 && seen < kSets; ++k) {
    if (book.generation() != seen) {
      seen = book.copy_to(mine);
      mismatches += mine.size() == seen + 1 ? 0U : 1U;
    }
  }
  writer.join();
  seen = book.copy_to(mine);
  CHECK(mismatches == 0);
  CHECK(seen == kSets);
  CHECK(mine.size() == kSets + 1);
  book.publish(ServerAddresses{});
  CHECK(book.empty());
  CHECK(book.generation() == kSets + 1);
}
