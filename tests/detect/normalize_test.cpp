// Lookup events from DNS messages: names, registrable domains, reverse zones, search-suffix
// leaks, organisations, de-duplication and response outcomes (detection spec 3.4).
#include "dnsmon/detect/normalize.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>

namespace dnsmon::detect {
namespace {

std::shared_ptr<const detail::PublicSuffixList> test_list() {
  return detail::PublicSuffixList::from_text(
      "// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\narpa\nin-addr.arpa\nip6.arpa\n"
      "// ===END ICANN DOMAINS===\n// ===BEGIN PRIVATE DOMAINS===\ns3.amazonaws.com\n"
      "// ===END PRIVATE DOMAINS===\n",
      "test list");
}

IpAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  IpAddr ip;
  ip.family = 4;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

IpAddr v6(std::initializer_list<std::uint8_t> bytes) {
  IpAddr ip;
  ip.family = 6;
  std::size_t i = 0;
  for (const auto b : bytes) {
    ip.bytes[i++] = b;
  }
  return ip;
}

DnsMessage query(const std::string& name, IpAddr client, std::int64_t ts_ns = 1'000'000'000,
                 std::uint16_t qtype = 1) {
  DnsMessage m;
  m.ts_ns = ts_ns;
  m.src = client;
  m.dst = v4(198, 18, 255, 53);
  m.has_question = true;
  m.qtype = qtype;
  m.qclass = 1;
  std::memcpy(m.qname.text.data(), name.data(), name.size());
  m.qname.length = static_cast<std::uint16_t>(name.size());
  return m;
}

DnsMessage response(const std::string& name, IpAddr client, std::uint16_t rcode,
                    std::uint16_t ancount) {
  DnsMessage m = query(name, v4(198, 18, 255, 53));
  m.dst = client;
  m.qr = true;
  m.rcode = rcode;
  m.ancount = ancount;
  return m;
}

struct Fixture {
  DetectOptions options;
  std::shared_ptr<const detail::PublicSuffixList> list = test_list();

  Fixture() {
    options.clients.internal_networks = {"198.18.0.0/15"};
    options.normalize.search_suffixes = {"corp.orga.example"};
  }

  Normalizer make(std::vector<OrgMapEntry> map = {}) {
    return {options, std::make_shared<OrgResolver>(options.clients, std::move(map), 7), list, 7};
  }
};

}  // namespace

TEST_CASE("names are lower-cased without the final dot and count for their registrable domain",
          "[detect]") {
  Fixture f;
  Normalizer n = f.make();
  LookupEvent ev;
  REQUIRE(n.query(query("WWW.Example.COM.", v4(198, 18, 0, 1)), ev));
  CHECK(ev.version == kLookupEventVersion);
  CHECK(ev.kind == EventKind::Query);
  CHECK(ev.name() == "www.example.com");
  CHECK(ev.domain() == "example.com");
  CHECK(ev.qtype == 1);
  // An unlisted TLD falls back to the implicit "*" rule.
  REQUIRE(n.query(query("mail1.hotel-promo-mailer.example", v4(198, 18, 0, 1)), ev));
  CHECK(ev.domain() == "hotel-promo-mailer.example");
  CHECK_FALSE(ev.has(kSuffixLeak));
  // A private suffix makes each tenant its own domain.
  REQUIRE(n.query(query("a.tenant.s3.amazonaws.com", v4(198, 18, 0, 1)), ev));
  CHECK(ev.domain() == "tenant.s3.amazonaws.com");
  REQUIRE(n.query(query("www.shop.co.uk", v4(198, 18, 0, 1)), ev));
  CHECK(ev.domain() == "shop.co.uk");
  // The same domain hashes the same, another domain differently.
  LookupEvent other;
  REQUIRE(n.query(query("mail.shop.co.uk", v4(198, 18, 0, 2)), other));
  CHECK(other.domain_hash == ev.domain_hash);
  REQUIRE(n.query(query("shop.com", v4(198, 18, 0, 2)), other));
  CHECK(other.domain_hash != ev.domain_hash);
  // The root has no domain: no event.
  CHECK_FALSE(n.query(query(".", v4(198, 18, 0, 1)), ev));
  // Not a query: no query event; a response is not a query.
  CHECK_FALSE(n.query(response("example.com", v4(198, 18, 0, 1), 0, 1), ev));
  DnsMessage update = query("example.com", v4(198, 18, 0, 1));
  update.opcode = 5;
  CHECK_FALSE(n.query(update, ev));
}

TEST_CASE("names of every length are lower-cased byte for byte", "[detect]") {
  // Lengths below, at and past one and several 16-byte blocks; bytes of UTF-8 stay as they are.
  const std::string alphabet = "AbCdEfGhIjKlMnOpQrStUvWxYz09-_\xc3\x89Z";
  for (std::size_t n = 1; n <= 70; ++n) {
    std::string name;
    for (std::size_t i = 0; i < n; ++i) {
      name += alphabet[(i * 7 + n) % alphabet.size()];
    }
    std::string expected = name;
    for (char& c : expected) {
      c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    }
    std::array<char, LookupEvent::kMaxName> out{};
    CAPTURE(n);
    CHECK(lower_name(name + ".", out) == expected);
  }
}

TEST_CASE("reverse names count for their /24 and /48 zones", "[detect]") {
  CHECK(reverse_zone_length("10.2.0.192.in-addr.arpa", 3, 12) ==
        std::string_view("2.0.192.in-addr.arpa").size());
  CHECK(reverse_zone_length("192.in-addr.arpa", 3, 12) ==
        std::string_view("192.in-addr.arpa").size());
  CHECK(reverse_zone_length("in-addr.arpa", 3, 12) == 0);
  CHECK(reverse_zone_length("www.example.com", 3, 12) == 0);
  CHECK(reverse_zone_length("x.y.z.w.in-addr.arpa", 1, 12) ==
        std::string_view("w.in-addr.arpa").size());
  const std::string v6name =
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa";
  CHECK(reverse_zone_length(v6name, 3, 12) ==
        std::string_view("f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa").size());

  Fixture f;
  Normalizer n = f.make();
  LookupEvent ev;
  REQUIRE(n.query(query("x.Y.2.0.192.in-addr.arpa", v4(198, 18, 0, 1), 1, 12), ev));
  CHECK(ev.domain() == "2.0.192.in-addr.arpa");
  CHECK(ev.has(kReverseZone));
  REQUIRE(n.query(query(v6name, v4(198, 18, 0, 1), 1, 12), ev));
  CHECK(ev.domain() == "f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa");
}

TEST_CASE("a run-on search-suffix query counts for the embedded domain, marked suffix_leak",
          "[detect]") {
  Fixture f;
  Normalizer n = f.make();
  LookupEvent ev;
  REQUIRE(
      n.query(query("mail.hotel-promo-mailer.example.corp.orga.example", v4(203, 0, 113, 15)), ev));
  CHECK(ev.domain() == "hotel-promo-mailer.example");
  CHECK(ev.has(kSuffixLeak));
  CHECK(ev.name() == "mail.hotel-promo-mailer.example.corp.orga.example");
  // An ordinary search-list name (one label before the suffix) is the suffix's own domain.
  REQUIRE(n.query(query("host1.corp.orga.example", v4(198, 18, 0, 1)), ev));
  CHECK(ev.domain() == "orga.example");
  CHECK_FALSE(ev.has(kSuffixLeak));
  // The suffix itself, and a remainder that is a public suffix, are no leak.
  REQUIRE(n.query(query("corp.orga.example", v4(198, 18, 0, 1)), ev));
  CHECK_FALSE(ev.has(kSuffixLeak));
  REQUIRE(n.query(query("co.uk.corp.orga.example", v4(198, 18, 0, 1)), ev));
  CHECK_FALSE(ev.has(kSuffixLeak));
  CHECK(ev.domain() == "orga.example");
  // A name that only ends with the suffix's text, not its labels.
  REQUIRE(n.query(query("a.xcorp.orga.example", v4(198, 18, 0, 1)), ev));
  CHECK_FALSE(ev.has(kSuffixLeak));
}

TEST_CASE("internal clients are hosts, others their /24 or /48 or their org_map name", "[detect]") {
  Fixture f;
  const auto map_file = std::filesystem::temp_directory_path() / "dnsmon-detect-orgmap.txt";
  {
    std::ofstream out(map_file);
    out << "# organisations\n198.51.100.0/24  Spectrum Health  \n\n2001:db8:aa::/48 Alfa\n";
  }
  auto map = load_org_map(map_file.string());
  REQUIRE(map.size() == 2);
  CHECK(map[0].name == "Spectrum Health");
  const OrgResolver orgs(f.options.clients, map, 7);
  Normalizer n(f.options, std::make_shared<OrgResolver>(f.options.clients, map, 7), f.list, 7);

  LookupEvent a, b, c;
  REQUIRE(n.query(query("x.example", v4(198, 18, 7, 7)), a));
  CHECK(a.org_kind == OrgKind::Host);
  CHECK(a.has(kInternalClient));
  REQUIRE(n.query(query("x.example", v4(198, 18, 7, 8)), b));
  CHECK(b.org_hash != a.org_hash);  // two hosts, two organisations
  CHECK(orgs.label(a) == "198.18.7.7");

  REQUIRE(n.query(query("x.example", v4(203, 0, 113, 15)), a));
  REQUIRE(n.query(query("x.example", v4(203, 0, 113, 16)), b));
  CHECK(a.org_kind == OrgKind::Prefix);
  CHECK_FALSE(a.has(kInternalClient));
  CHECK(a.org_hash == b.org_hash);  // one /24
  CHECK(orgs.label(a) == "203.0.113.0/24");

  REQUIRE(n.query(query("x.example", v4(198, 51, 100, 8)), c));
  CHECK(c.org_kind == OrgKind::Mapped);
  CHECK(orgs.label(c) == "Spectrum Health");

  REQUIRE(n.query(
      query("x.example", v6({0x20, 0x01, 0x0d, 0xb8, 0, 0xbb, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})), a));
  REQUIRE(n.query(
      query("x.example", v6({0x20, 0x01, 0x0d, 0xb8, 0, 0xbb, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 2})),
      c));
  CHECK(a.org_hash == c.org_hash);  // one /48
  REQUIRE(n.query(
      query("x.example", v6({0x20, 0x01, 0x0d, 0xb8, 0, 0xbc, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2})), b));
  CHECK(a.org_hash != b.org_hash);  // different /48s
  CHECK(orgs.label(a) == "2001:db8:bb::/48");
  REQUIRE(n.query(
      query("x.example", v6({0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})), c));
  CHECK(orgs.label(c) == "Alfa");

  {
    std::ofstream out(map_file);
    out << "198.51.100.0/24 A\nnot-a-prefix B\n";
  }
  CHECK_THROWS_WITH(load_org_map(map_file.string()),
                    Catch::Matchers::Contains(":2: not a CIDR prefix"));
  std::filesystem::remove(map_file);
}

TEST_CASE("organisation prefixes of any length keep exactly their leading bits", "[detect]") {
  Fixture f;
  for (const auto& [v4_bits, v6_bits, v4_label, v6_label] :
       std::vector<std::tuple<int, int, std::string, std::string>>{
           {20, 52, "203.0.112.0/20", "2001:db8:bb:e000::/52"},
           {1, 1, "128.0.0.0/1", "::/1"},
           {32, 64, "203.0.113.255/32", "2001:db8:bb:ef01::/64"},
           {31, 65, "203.0.113.254/31", "2001:db8:bb:ef01:8000::/65"},
           {8, 128, "203.0.0.0/8", "2001:db8:bb:ef01:ffff:ffff:ffff:ffff/128"}}) {
    f.options.clients.external_v4_prefix = static_cast<std::uint32_t>(v4_bits);
    f.options.clients.external_v6_prefix = static_cast<std::uint32_t>(v6_bits);
    const OrgResolver orgs(f.options.clients, {}, 7);
    Normalizer n = f.make();
    LookupEvent a, b;
    REQUIRE(n.query(query("x.example", v4(203, 0, 113, 255)), a));
    CHECK(orgs.label(a) == v4_label);
    REQUIRE(n.query(query("x.example", v6({0x20, 0x01, 0x0d, 0xb8, 0, 0xbb, 0xef, 1, 0xff, 0xff,
                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
                    b));
    CHECK(orgs.label(b) == v6_label);
  }
}

TEST_CASE("pseudonymised, clients never reach the events; organisations keep one label each",
          "[detect]") {
  Fixture f;
  f.options.clients.pseudonymise = true;
  f.options.clients.pseudonym_key = {1, 2};
  const OrgResolver orgs(f.options.clients, {}, 7);
  Normalizer n(f.options,
               std::make_shared<OrgResolver>(f.options.clients, std::vector<OrgMapEntry>{}, 7),
               f.list, 7);
  LookupEvent a, b, c, d;
  REQUIRE(n.query(query("x.example", v4(203, 0, 113, 15)), a));
  REQUIRE(n.query(query("x.example", v4(203, 0, 113, 16)), b));
  REQUIRE(n.query(query("x.example", v4(198, 18, 7, 7)), c));
  REQUIRE(n.query(query("x.example", v4(198, 18, 7, 7), 2'000'000'000), d));
  for (const LookupEvent* e : {&a, &b, &c}) {
    // No address byte of the client is left where it was.
    CHECK(e->client[15] != 15);
    CHECK(std::count(e->client.begin(), e->client.begin() + 10, 0) < 10);
  }
  CHECK(a.org_hash == b.org_hash);
  CHECK(a.client != b.client);  // distinct clients stay distinct
  CHECK(c.client == d.client);  // and one client is one pseudonym
  const std::string la = orgs.label(a);
  CHECK(la.rfind("anon-", 0) == 0);
  CHECK(la.size() == 5 + 16 + 3);
  CHECK(la.substr(la.size() - 3) == "/24");
  CHECK(orgs.label(b) == la);  // one /24, one label
  const std::string lc = orgs.label(c);
  CHECK(lc.rfind("anon-", 0) == 0);
  CHECK(lc.size() == 5 + 16);  // a host: no prefix length
  CHECK(lc.find("198.18") == std::string::npos);

  // Another key, other pseudonyms.
  f.options.clients.pseudonym_key = {3, 4};
  const OrgResolver other(f.options.clients, {}, 7);
  Normalizer m(f.options,
               std::make_shared<OrgResolver>(f.options.clients, std::vector<OrgMapEntry>{}, 7),
               f.list, 7);
  LookupEvent e;
  REQUIRE(m.query(query("x.example", v4(203, 0, 113, 15)), e));
  CHECK(other.label(e) != la);
}

TEST_CASE("the first query of a client for a domain in the de-duplication window is marked",
          "[detect]") {
  Fixture f;
  Normalizer n = f.make();
  LookupEvent ev;
  const auto client = v4(198, 18, 0, 1);
  const std::int64_t t = 1'000'000'000'000;
  REQUIRE(n.query(query("www.example.com", client, t), ev));
  CHECK(ev.has(kFirstInDedupWindow));
  REQUIRE(n.query(query("example.com", client, t + 10'000'000, 28), ev));  // the AAAA, 10 ms on
  CHECK_FALSE(ev.has(kFirstInDedupWindow));                                // passed on unmarked
  REQUIRE(n.query(query("www.example.com", v4(198, 18, 0, 2), t + 20'000'000), ev));
  CHECK(ev.has(kFirstInDedupWindow));  // another client
  REQUIRE(n.query(query("www.other.com", client, t + 20'000'000), ev));
  CHECK(ev.has(kFirstInDedupWindow));  // another domain
  REQUIRE(n.query(query("www.example.com", client, t + 1'000'000'000), ev));
  CHECK(ev.has(kFirstInDedupWindow));  // one second after the last marked one

  // Under compression the window is logical time: 1 s logical = 1/1440 s of packets.
  f.options.time.compression = 1440;
  Normalizer c = f.make();
  REQUIRE(c.query(query("www.example.com", client, t), ev));
  CHECK(ev.has(kFirstInDedupWindow));
  REQUIRE(c.query(query("www.example.com", client, t + 600'000), ev));  // 0.86 logical s
  CHECK_FALSE(ev.has(kFirstInDedupWindow));
  REQUIRE(c.query(query("www.example.com", client, t + 700'000), ev));  // 1.008 logical s
  CHECK(ev.has(kFirstInDedupWindow));
}

TEST_CASE("responses are the client's, with success, failure or NODATA", "[detect]") {
  Fixture f;
  Normalizer n = f.make();
  LookupEvent ev;
  const auto client = v4(203, 0, 113, 15);
  REQUIRE(n.response(response("mail1.hotel-promo-mailer.example", client, 0, 1), ev));
  CHECK(ev.kind == EventKind::Response);
  CHECK(ev.has(kSuccess));
  CHECK(ev.client[12] == 203);
  CHECK(ev.client[15] == 15);
  CHECK(ev.domain() == "hotel-promo-mailer.example");
  CHECK(ev.answer_count == 0);  // answer records are not decoded yet
  CHECK_FALSE(ev.has(kAnswersDecoded));
  REQUIRE(n.response(response("mail1.hotel-promo-mailer.example", client, 3, 0), ev));
  CHECK(ev.has(kFailure));
  CHECK(ev.rcode == 3);
  REQUIRE(n.response(response("x.example", client, 2, 0), ev));
  CHECK(ev.has(kFailure));
  REQUIRE(n.response(response("x.example", client, 0, 0), ev));
  CHECK(ev.has(kNodata));
  CHECK_FALSE(ev.has(kSuccess));
  CHECK_FALSE(n.response(query("x.example", client), ev));
}

TEST_CASE("a matched response takes its query's domain from the query's tag", "[detect]") {
  Fixture f;
  Normalizer n = f.make();
  const auto client = v4(203, 0, 113, 15);
  for (const std::string name :
       {"MAIL1.Hotel-Promo-Mailer.example.", "hotel-promo-mailer.example", "a.b.c.example.co.uk",
        "7.2.0.192.in-addr.arpa", "b.mail.s3.amazonaws.com"}) {
    CAPTURE(name);
    LookupEvent q;
    detail::QueryTag tag{};
    REQUIRE(n.query(query(name, client), q));
    Normalizer::fill_tag(q, tag);
    REQUIRE(tag.word != 0);
    LookupEvent plain, tagged;
    REQUIRE(n.response(response(name, client, 0, 1), plain));
    REQUIRE(n.response(response(name, client, 0, 1), tagged, &tag));
    CHECK(tagged.domain() == q.domain());
    CHECK(tagged.domain_hash == plain.domain_hash);
    CHECK(tagged.domain_off == plain.domain_off);
    CHECK(tagged.flags == plain.flags);
    CHECK(tagged.org_hash == plain.org_hash);
  }
  // A tag that does not end the response's name at a label boundary is not used: the name's own
  // domain counts.
  LookupEvent q, ev;
  detail::QueryTag tag{};
  REQUIRE(n.query(query("www.mailer.example", client), q));
  Normalizer::fill_tag(q, tag);
  REQUIRE(n.response(response("www.promo-mailer.example", client, 0, 1), ev, &tag));
  CHECK(ev.domain() == "promo-mailer.example");
  REQUIRE(n.response(response("www.other.example", client, 0, 1), ev, &tag));
  CHECK(ev.domain() == "other.example");
  // An empty tag (a query whose tag was not filled) is not used either.
  tag.word = 0;
  REQUIRE(n.response(response("www.mailer.example", client, 0, 1), ev, &tag));
  CHECK(ev.domain() == "mailer.example");
  CHECK(ev.domain_hash == q.domain_hash);
}

TEST_CASE("a query takes the registrable domain's length the worker found, where it fits",
          "[detect]") {
  Fixture f;
  Normalizer n = f.make();
  const auto client = v4(203, 0, 113, 15);
  detail::DomainCache cache(f.list, 64, 7);
  for (const std::string name : {"mail1.hotel-promo-mailer.example", "a.b.c.example.co.uk",
                                 "b.mail.s3.amazonaws.com", "com"}) {
    CAPTURE(name);
    LookupEvent plain, given;
    const bool ok = n.query(query(name, client), plain);
    const std::size_t length = cache.registrable(name).size();
    REQUIRE(n.query(query(name, client), given, length) == ok);
    CHECK(given.domain() == plain.domain());
    CHECK(given.domain_hash == plain.domain_hash);
  }
  LookupEvent ev;
  // Reverse zones and search suffixes stay the normaliser's.
  REQUIRE(n.query(query("7.2.0.192.in-addr.arpa", client), ev, 14));
  CHECK(ev.domain() == "2.0.192.in-addr.arpa");
  REQUIRE(n.query(query("www.example.com.corp.orga.example", client), ev, 14));
  CHECK(ev.domain() == "example.com");
  CHECK(ev.has(kSuffixLeak));
  // The length is the name's as given: with a final dot, or not at a label boundary, or longer
  // than the name, it is not used.
  REQUIRE(n.query(query("www.example.com.", client), ev, 4));
  CHECK(ev.domain() == "example.com");
  REQUIRE(n.query(query("www.example.com", client), ev, 5));
  CHECK(ev.domain() == "example.com");
  REQUIRE(n.query(query("www.example.com", client), ev, 40));
  CHECK(ev.domain() == "example.com");
  // A length that fits is taken as it is: the caller vouches for its list.
  REQUIRE(n.query(query("www.example.com", client), ev, 15));
  CHECK(ev.domain() == "www.example.com");
}

TEST_CASE("a tagged query that times out is a timeout event of its domain, once per retry burst",
          "[detect]") {
  Fixture f;
  Normalizer n = f.make();
  LookupEvent ev;
  detail::QueryTag tag{};
  const auto client = v4(203, 0, 113, 15);
  constexpr std::int64_t kS = 1'000'000'000;
  REQUIRE(n.query(query("MAIL1.Hotel-Promo-Mailer.example.", client, 10 * kS, 28), ev));
  Normalizer::fill_tag(ev, tag);
  CHECK(tag.word == ev.domain_hash);
  const std::uint64_t domain_hash = ev.domain_hash;

  detail::TimedOutQuery t;
  t.client = client;
  t.qtype = 28;
  t.query_ts_ns = 10 * kS;
  t.timeout_ts_ns = 15 * kS;
  t.tag = &tag;
  LookupEvent out;
  REQUIRE(n.timeout(t, out));
  CHECK(out.kind == EventKind::Timeout);
  CHECK(out.flags == kFailure);
  CHECK(out.version == kLookupEventVersion);
  CHECK(out.ts_ns == 15 * kS);
  CHECK(out.qtype == 28);
  CHECK(out.domain() == "hotel-promo-mailer.example");
  CHECK(out.name() == "hotel-promo-mailer.example");
  CHECK(out.domain_hash == domain_hash);
  CHECK(out.client[12] == 203);
  CHECK(out.client[15] == 15);
  CHECK(out.org_kind == OrgKind::Prefix);
  CHECK(out.org_hash == ev.org_hash);  // the query's organisation

  // The client's retry 2 s later times out too: the same failure.
  t.query_ts_ns = 12 * kS;
  t.timeout_ts_ns = 17 * kS;
  CHECK_FALSE(n.timeout(t, out));
  // Another client's is its own; a lookup of the first client 5 s after the last event is too.
  t.client = v4(192, 0, 2, 1);
  CHECK(n.timeout(t, out));
  t.client = client;
  t.query_ts_ns = 15 * kS;
  t.timeout_ts_ns = 20 * kS;
  CHECK(n.timeout(t, out));

  SECTION("reverse zones keep their flag") {
    REQUIRE(n.query(query("10.2.0.192.in-addr.arpa", client), ev));
    Normalizer::fill_tag(ev, tag);
    t.query_ts_ns = 100 * kS;
    t.timeout_ts_ns = 105 * kS;
    REQUIRE(n.timeout(t, out));
    CHECK(out.domain() == "2.0.192.in-addr.arpa");
    CHECK(out.flags == (kFailure | kReverseZone));
  }
  SECTION("a search-suffix leak, a long domain or an empty tag makes no event") {
    REQUIRE(n.query(query("mail.hotel-promo-mailer.example.corp.orga.example", client), ev));
    REQUIRE(ev.has(kSuffixLeak));
    Normalizer::fill_tag(ev, tag);
    CHECK(tag.word == 0);
    const std::string longest(Normalizer::kTagName - 4, 'a');
    REQUIRE(n.query(query("www." + longest + ".com", client), ev));
    Normalizer::fill_tag(ev, tag);
    CHECK(tag.word != 0);
    REQUIRE(n.query(query("www.a" + longest + ".com", client), ev));
    Normalizer::fill_tag(ev, tag);
    CHECK(tag.word == 0);
    t.query_ts_ns = 100 * kS;
    t.timeout_ts_ns = 105 * kS;
    CHECK_FALSE(n.timeout(t, out));
    t.tag = nullptr;
    CHECK_FALSE(n.timeout(t, out));
  }
}

}  // namespace dnsmon::detect
