// Tests for the sliding-window analytics of one worker (metrics/analytics/src/windows.cpp) and the
// registrable-domain lookup in front of them (metrics/domains): exact counts while the keys
// fit, windows that slide in packet time, one publication per second, client prefixes, the public
// suffix list's depth, and planned memory equal to the real one.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/analytics/detail/windows.hpp"
#include "dnsmon/domains.hpp"

namespace dnsmon::detail {
namespace {

constexpr std::uint64_t kSeed = 0x1234'5678'9abc'def1ULL;
constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kStart = 1'700'000'000 * kSecond;  // a whole second, as capture times are
constexpr std::chrono::nanoseconds kNoThrottle{0};        // publish at every second of packet time

std::shared_ptr<const PublicSuffixList> suffixes() {
  static const auto list = PublicSuffixList::load("");
  return list;
}

DnsMessage message(std::string_view qname, const std::string& client, std::int64_t ts,
                   bool response = false, std::uint16_t rcode = 0) {
  DnsMessage m;
  m.ts_ns = ts;
  m.qr = response;
  m.rcode = rcode;
  m.has_question = true;
  std::copy(qname.begin(), qname.end(), m.qname.text.begin());
  m.qname.length = static_cast<std::uint16_t>(qname.size());
  IpAddr addr;
  if (client.find(':') == std::string::npos) {
    addr.family = 4;
    unsigned a = 0, b = 0, c = 0, d = 0;
    REQUIRE(std::sscanf(client.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) == 4);
    addr.bytes[0] = static_cast<std::uint8_t>(a);
    addr.bytes[1] = static_cast<std::uint8_t>(b);
    addr.bytes[2] = static_cast<std::uint8_t>(c);
    addr.bytes[3] = static_cast<std::uint8_t>(d);
  } else {
    addr.family = 6;
    addr.bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                  0,    0,    0,    0,    0, 0, 0, static_cast<std::uint8_t>(client.size())};
  }
  (response ? m.dst : m.src) = addr;
  return m;
}

// Feeds one message the way WorkerCounters does.
void feed(TrafficAnalytics& a, const DnsMessage& m) {
  NameKey key;
  const bool valid = lower_name(m.qname.view(), key);
  const std::uint64_t h = valid ? hash_bytes(key.view(), kSeed) : 0;
  if (m.qr) {
    a.on_response(m, key, valid, h);
  } else {
    a.on_query(m, key, valid, h);
  }
}

template <class Key>
std::map<std::string, std::uint64_t> top_map(const SpaceSaving<Key>& s, std::size_t n,
                                             std::string (*label)(const Key&)) {
  std::vector<HeavyHitter<Key>> out(n);
  const std::size_t got = s.top(out);
  std::map<std::string, std::uint64_t> m;
  for (std::size_t i = 0; i < got; ++i) {
    m[label(out[i].key)] = out[i].count;
  }
  return m;
}

std::string name_label(const NameKey& k) {
  return std::string(k.view());
}

std::map<std::string, std::uint64_t> names_of(const WindowSnapshot& w, NameTable t) {
  return top_map<NameKey>(w.names[static_cast<std::size_t>(t)], 1000, name_label);
}

std::vector<WindowSnapshot> published(const TrafficAnalytics& a) {
  auto out = a.make_snapshots();
  a.read_published(out);
  return out;
}

AnalyticsOptions small_options() {
  AnalyticsOptions o;
  o.windows_s = {60, 300};
  o.sub_windows = 6;
  o.top_capacity = 64;
  return o;
}

}  // namespace

TEST_CASE("lower_name lower-cases A-Z only, at every length", "[analytics]") {
  // Sixteen bytes at a time from 16 characters on, with an overlapping last block: compare with a
  // byte-by-byte reference over random bytes of every value.
  std::mt19937 rng(11);
  for (std::size_t n = 0; n <= 256; ++n) {
    std::string name(n, '\0');
    for (auto& c : name) {
      c = static_cast<char>(rng() % 256);
    }
    NameKey key;
    CAPTURE(n);
    if (n > key.chars.size()) {
      CHECK_FALSE(lower_name(name, key));
      CHECK(key.size == 0);
      continue;
    }
    REQUIRE(lower_name(name, key));
    std::string expected = name;
    for (auto& c : expected) {
      c = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
    }
    CHECK(key.view() == expected);
  }
}

TEST_CASE("registrable domains follow the public suffix list", "[metrics][analytics]") {
  DomainCache cache(suffixes(), 256, kSeed);
  CHECK(cache.registrable("www.example.com") == "example.com");
  CHECK(cache.registrable("example.com") == "example.com");
  CHECK(cache.registrable("a.b.c.d.e.f.g.example.co.uk") == "example.co.uk");
  CHECK(cache.registrable("shop.example.com.au") == "example.com.au");
  CHECK(cache.registrable("printer.lan") == "printer.lan");  // the default rule: "*"
  CHECK(cache.registrable("com") == "com");  // a public suffix counts as its own domain
  CHECK(cache.registrable("co.uk") == "co.uk");
  CHECK(cache.registrable(".") == ".");
  // Escaped characters never reach libpsl: the last two labels, escape-aware.
  CHECK(cache.registrable("a\\.b.evil\\.x.example") == "evil\\.x.example");
  CHECK(cache.registrable("x.y\\\\.z") == "y\\\\.z");  // "\\." ends a label
}

TEST_CASE("the domain cache gives what the list gives, and a flood hits it",
          "[metrics][analytics]") {
  DomainCache cache(suffixes(), 64, kSeed);  // small: collisions and replacements happen
  const std::vector<std::string> bases{"example.com",
                                       "example.co.uk",
                                       "a.b.example.jp",
                                       "x.github.io",
                                       "foo.s3.amazonaws.com",
                                       "nic.uk",
                                       "b.c.d.e.f.g.h.kawasaki.jp",
                                       "test"};
  std::mt19937_64 rng(5);
  for (int i = 0; i < 5000; ++i) {
    std::string name = bases[rng() % bases.size()];
    for (std::uint64_t l = rng() % 9; l > 0; --l) {
      std::string label = "l" + std::to_string(rng() % 7);
      label += '.';
      name.insert(0, label);
    }
    const std::string_view got = cache.registrable(name);
    CAPTURE(name);
    CHECK(got.size() == suffixes()->registrable_length(name));
  }
  // A random-subdomain flood under one domain: one miss, then hits.
  DomainCache flood(suffixes(), 4096, kSeed);
  for (int i = 0; i < 10'000; ++i) {
    CHECK(flood.registrable("q" + std::to_string(rng()) + ".victim.co.uk") == "victim.co.uk");
  }
  CHECK(flood.misses() == 1);
  CHECK(flood.hits() == 9'999);
}

TEST_CASE("no rule of the installed public suffix list is deeper than the cache assumes",
          "[metrics][analytics]") {
  std::ifstream in("/usr/share/publicsuffix/public_suffix_list.dat");
  if (!in) {
    WARN("no /usr/share/publicsuffix/public_suffix_list.dat (package publicsuffix): not checked");
    return;
  }
  std::size_t deepest = 0;
  std::size_t rules = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.rfind("//", 0) == 0) {
      continue;
    }
    line = line.substr(0, line.find_first_of(" \t"));
    ++rules;
    deepest =
        std::max(deepest, 1 + static_cast<std::size_t>(std::count(line.begin(), line.end(), '.')));
  }
  CHECK(rules > 5000);
  CHECK(deepest <= PublicSuffixList::kMaxRuleLabels);
}

TEST_CASE("top-N tables and distinct counts are exact while the keys fit", "[metrics][analytics]") {
  TrafficAnalytics a(small_options(), suffixes(), kSeed, kNoThrottle);
  // Three seconds of traffic: example.com 30 queries over 3 names (mixed case), example.co.uk 12,
  // other.net 5; four clients; NXDOMAIN and SERVFAIL responses for two names.
  std::map<std::string, std::uint64_t> clients;
  std::int64_t t = kStart;
  const auto q = [&](std::string_view name, const std::string& client) {
    feed(a, message(name, client, t));
    ++clients[client];
    t += kSecond / 20;
  };
  for (int i = 0; i < 10; ++i) {
    q("www.example.com", "192.0.2.1");
    q("WWW.Example.COM", "192.0.2.2");
    q("mail.example.com", "192.0.2.1");
  }
  for (int i = 0; i < 12; ++i) {
    q("a.b.example.co.uk", "192.0.2.3");
  }
  for (int i = 0; i < 5; ++i) {
    q("other.net", "2001:db8::1");
  }
  for (int i = 0; i < 4; ++i) {
    feed(a, message("nx.example.com", "192.0.2.1", t, true, 3));
    feed(a, message("sf.example.com", "192.0.2.1", t, true, 2));
    feed(a, message("ok.example.com", "192.0.2.1", t, true, 0));
  }
  a.finish();
  const auto windows = published(a);
  REQUIRE(windows.size() == 2);
  for (const auto& w : windows) {
    CHECK(names_of(w, NameTable::Domain) ==
          std::map<std::string, std::uint64_t>{
              {"example.com", 30}, {"example.co.uk", 12}, {"other.net", 5}});
    CHECK(names_of(w, NameTable::Qname) ==
          std::map<std::string, std::uint64_t>{{"www.example.com", 20},
                                               {"mail.example.com", 10},
                                               {"a.b.example.co.uk", 12},
                                               {"other.net", 5}});
    CHECK(names_of(w, NameTable::Nxdomain) ==
          std::map<std::string, std::uint64_t>{{"nx.example.com", 4}});
    CHECK(names_of(w, NameTable::Servfail) ==
          std::map<std::string, std::uint64_t>{{"sf.example.com", 4}});
    CHECK(w.clients.total() == 47);
    CHECK(w.clients.size() == 4);
    CHECK(w.names[0].min_count() == 0);  // nothing evicted: the counts are exact
    CHECK(std::lround(w.distinct[static_cast<std::size_t>(DistinctKind::Clients)].estimate()) == 4);
    CHECK(std::lround(w.distinct[static_cast<std::size_t>(DistinctKind::Qnames)].estimate()) == 4);
    CHECK(std::lround(w.distinct[static_cast<std::size_t>(DistinctKind::Domains)].estimate()) == 3);
  }
  const auto st = a.stats();
  CHECK(st.publications >= 3);
  CHECK(st.publications <= 4);  // one per second of packet time, plus the final one
}

TEST_CASE("nothing is published before a second of packet time has passed",
          "[metrics][analytics]") {
  TrafficAnalytics a(small_options(), suffixes(), kSeed, kNoThrottle);
  for (int i = 0; i < 100; ++i) {
    feed(a, message("www.example.com", "192.0.2.1", kStart + std::int64_t{i} * 1'000'000));
  }
  auto w = published(a);
  CHECK(w[0].names[0].total() == 0);
  feed(a, message("www.example.com", "192.0.2.1", kStart + kSecond));  // the next second
  w = published(a);
  CHECK(w[0].names[0].total() == 100);  // the first second, not the message that rolled it
  a.finish();
  w = published(a);
  CHECK(w[0].names[0].total() == 101);
}

TEST_CASE("windows slide in packet time: old names leave the short window first",
          "[metrics][analytics]") {
  TrafficAnalytics a(small_options(), suffixes(), kSeed, kNoThrottle);
  for (int i = 0; i < 50; ++i) {
    feed(a, message("early.example.com", "192.0.2.1", kStart + std::int64_t{i} * kSecond / 10));
  }
  // Two minutes later: only the 5 m window still holds the early name.
  const std::int64_t later = kStart + 120 * kSecond;
  for (int i = 0; i < 20; ++i) {
    feed(a, message("late.example.org", "192.0.2.2", later + std::int64_t{i} * kSecond / 10));
  }
  a.finish();
  const auto w = published(a);
  CHECK(names_of(w[0], NameTable::Qname) ==
        std::map<std::string, std::uint64_t>{{"late.example.org", 20}});
  CHECK(names_of(w[1], NameTable::Qname) ==
        std::map<std::string, std::uint64_t>{{"early.example.com", 50}, {"late.example.org", 20}});
  CHECK(std::lround(w[0].distinct[static_cast<std::size_t>(DistinctKind::Clients)].estimate()) ==
        1);
  CHECK(std::lround(w[1].distinct[static_cast<std::size_t>(DistinctKind::Clients)].estimate()) ==
        2);
}

TEST_CASE("a quiet live capture still slides its windows through tick()", "[metrics][analytics]") {
  TrafficAnalytics a(small_options(), suffixes(), kSeed, kNoThrottle);
  feed(a, message("www.example.com", "192.0.2.1", kStart));
  a.tick(kStart + kSecond / 2);  // same second: nothing to publish yet
  CHECK(published(a)[0].names[0].total() == 0);
  a.tick(kStart + 2 * kSecond);
  CHECK(published(a)[0].names[0].total() == 1);
  a.tick(kStart + 200 * kSecond);  // the 1 m window has emptied, the 5 m one has not
  const auto w = published(a);
  CHECK(w[0].names[0].total() == 0);
  CHECK(w[1].names[0].total() == 1);
}

TEST_CASE("clients aggregate to the configured prefixes", "[metrics][analytics]") {
  IpAddr v4;
  v4.family = 4;
  v4.bytes = {198, 51, 100, 77};
  const AddrKey k24 = client_key(v4, 24, 128);
  CHECK(k24.bytes[0] == 198);
  CHECK(k24.bytes[2] == 100);
  CHECK(k24.bytes[3] == 0);
  CHECK(k24.bytes[16] == 4);
  const AddrKey k20 = client_key(v4, 20, 128);
  CHECK(k20.bytes[2] == 96);  // 100 = 0b0110'0100, top 4 bits kept
  CHECK(client_key(v4, 0, 128).bytes[0] == 0);
  IpAddr v6;
  v6.family = 6;
  v6.bytes = {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4, 5, 6, 7, 8};
  const AddrKey k56 = client_key(v6, 32, 56);
  CHECK(k56.bytes[6] == 0x56);
  CHECK(k56.bytes[7] == 0);
  CHECK(k56.bytes[15] == 0);
  CHECK(k56.bytes[16] == 6);
  CHECK(client_key(v6, 32, 128).bytes[15] == 8);

  AnalyticsOptions o = small_options();
  o.client_ipv4_prefix = 24;
  TrafficAnalytics a(o, suffixes(), kSeed, kNoThrottle);
  for (int host = 0; host < 50; ++host) {
    feed(a, message("www.example.com", "203.0.113." + std::to_string(host), kStart));
  }
  a.finish();
  const auto w = published(a);
  CHECK(w[0].clients.size() == 1);
  CHECK(std::lround(w[0].distinct[static_cast<std::size_t>(DistinctKind::Clients)].estimate()) ==
        1);
}

TEST_CASE("a random-subdomain flood keeps its domain on top and the memory fixed",
          "[metrics][analytics]") {
  AnalyticsOptions o = small_options();
  TrafficAnalytics a(o, suffixes(), kSeed, kNoThrottle);
  const auto bytes = [&a] {
    const auto s = a.stats();
    std::uint64_t b = s.client_bytes + s.domain_cache_bytes;
    for (auto n : s.name_bytes) {
      b += n;
    }
    for (auto n : s.distinct_bytes) {
      b += n;
    }
    return b;
  };
  const std::uint64_t before = bytes();
  CHECK(before == TrafficAnalytics::planned_bytes(o));
  std::mt19937_64 rng(9);
  std::int64_t t = kStart;
  for (int i = 0; i < 200'000; ++i) {
    t += 50'000;  // 20k messages per second of packet time
    if (i % 10 == 0) {
      feed(a, message("www.site" + std::to_string(rng() % 40) + ".com", "192.0.2.9", t));
    } else {
      feed(a,
           message(std::to_string(rng()) + ".victim.co.uk",
                   "198.18." + std::to_string(rng() % 200) + "." + std::to_string(rng() % 250), t));
    }
  }
  a.finish();
  const auto w = published(a);
  std::vector<HeavyHitter<NameKey>> top(3);
  REQUIRE(w[0].names[0].top(top) == 3);
  CHECK(top[0].key.view() == "victim.co.uk");
  CHECK(top[0].count - top[0].error >= 180'000 * 9 / 10);  // 90 % of 200k, minus slack
  // ~180k distinct flood names, ~40k clients: within a few HLL standard errors.
  const double qnames = w[1].distinct[static_cast<std::size_t>(DistinctKind::Qnames)].estimate();
  CHECK(qnames > 180'040 * 0.97);
  CHECK(qnames < 180'040 * 1.03);
  CHECK(bytes() == before);
}

TEST_CASE("a capture whose every packet starts a new second does not publish every packet",
          "[metrics][analytics]") {
  TrafficAnalytics a(small_options(), suffixes(), kSeed, std::chrono::seconds(3600));
  std::int64_t t = kStart;
  for (int i = 0; i < 20'000; ++i) {
    t += (i % 7 + 1) * kSecond;  // every message in a later second, up to a window apart
    feed(a, message("n" + std::to_string(i % 300) + ".example.com", "192.0.2.1", t));
  }
  CHECK(a.stats().publications == 1);  // the first second only: the rest waited for the clock
  a.finish();
  CHECK(a.stats().publications == 2);
  const auto w = published(a);
  // The 5 m window holds the messages of its last 250-300 s: about 300 / 4 s apart on average.
  CHECK(w[1].names[static_cast<std::size_t>(NameTable::Domain)].total() > 50);
  CHECK(w[1].names[static_cast<std::size_t>(NameTable::Domain)].total() < 100);
}

TEST_CASE("bad options are refused", "[metrics][analytics]") {
  AnalyticsOptions o = small_options();
  o.windows_s = {61};
  CHECK_THROWS_AS(TrafficAnalytics(o, suffixes(), kSeed, kNoThrottle), std::invalid_argument);
  o = small_options();
  o.top_capacity = 5;
  CHECK_THROWS_AS(TrafficAnalytics(o, suffixes(), kSeed, kNoThrottle), std::invalid_argument);
  CHECK_THROWS_AS(PublicSuffixList::load("/nonexistent/public_suffix_list.dat"),
                  std::runtime_error);
}

TEST_CASE("names longer than a key are skipped and counted", "[metrics][analytics]") {
  TrafficAnalytics a(small_options(), suffixes(), kSeed, kNoThrottle);
  const std::string long_name(300, 'a');
  feed(a, message(long_name, "192.0.2.1", kStart));
  a.finish();
  CHECK(a.stats().names_too_long == 1);
  const auto w = published(a);
  CHECK(w[0].names[static_cast<std::size_t>(NameTable::Qname)].total() == 0);
  CHECK(w[0].clients.total() == 1);  // the client still counts
}

}  // namespace dnsmon::detail
