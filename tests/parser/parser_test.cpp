#include "dnsmon/parser.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using dnsmon::DnsMessage;
using dnsmon::FrameView;
using dnsmon::Parser;
using dnsmon::ParseStatus;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint16_t kEthernet = 1;

void put16(Bytes& b, unsigned v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8U));
  b.push_back(static_cast<std::uint8_t>(v & 0xFFU));
}

void put_name(Bytes& b, const std::vector<std::string>& labels) {
  for (const auto& l : labels) {
    b.push_back(static_cast<std::uint8_t>(l.size()));
    b.insert(b.end(), l.begin(), l.end());
  }
  b.push_back(0);
}

struct DnsSpec {
  std::uint16_t id = 0x1234;
  std::uint16_t flags = 0x0100;  // RD
  std::vector<std::string> qname{"www", "example", "com"};
  std::uint16_t qtype = 1;
  bool edns = false;
  std::uint8_t ext_rcode = 0;
  bool do_bit = false;
};

Bytes dns_message(const DnsSpec& s) {
  Bytes b;
  put16(b, s.id);
  put16(b, s.flags);
  put16(b, 1);
  put16(b, 0);
  put16(b, 0);
  put16(b, s.edns ? 1 : 0);
  put_name(b, s.qname);
  put16(b, s.qtype);
  put16(b, 1);
  if (s.edns) {
    b.push_back(0);
    put16(b, 41);
    put16(b, 1232);
    b.push_back(s.ext_rcode);
    b.push_back(0);
    put16(b, s.do_bit ? 0x8000 : 0);
    put16(b, 0);
  }
  return b;
}

Bytes udp(std::uint16_t sport, std::uint16_t dport, const Bytes& payload) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, static_cast<unsigned>(8 + payload.size()));
  put16(b, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes ipv4(const Bytes& l4, std::uint8_t proto = 17, std::uint16_t frag = 0x4000) {
  Bytes b{0x45, 0};
  put16(b, static_cast<unsigned>(20 + l4.size()));
  put16(b, 1);
  put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  for (const int x : {192, 0, 2, 1, 192, 0, 2, 53}) {
    b.push_back(static_cast<std::uint8_t>(x));
  }
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

Bytes ipv6(const Bytes& l4, std::uint8_t next = 17, const Bytes& ext = {}) {
  Bytes b{0x60, 0, 0, 0};
  put16(b, static_cast<unsigned>(ext.size() + l4.size()));
  b.push_back(next);
  b.push_back(64);
  Bytes src{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  Bytes dst{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53};
  b.insert(b.end(), src.begin(), src.end());
  b.insert(b.end(), dst.begin(), dst.end());
  b.insert(b.end(), ext.begin(), ext.end());
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

Bytes ethernet(const Bytes& ip, std::uint16_t ethertype, std::vector<std::uint16_t> tags = {}) {
  Bytes b(12, 0x02);
  for (auto tpid : tags) {
    put16(b, tpid);
    put16(b, 100);
  }
  put16(b, ethertype);
  b.insert(b.end(), ip.begin(), ip.end());
  return b;
}

ParseStatus parse(const Bytes& frame, DnsMessage& out, std::uint16_t link = kEthernet) {
  Parser parser;
  FrameView v;
  v.header.link_type = link;
  v.header.ts_ns = 42;
  v.header.wire_len = static_cast<std::uint32_t>(frame.size());
  v.bytes = std::as_bytes(std::span(frame));
  return parser.parse(v, out);
}

std::string addr(const dnsmon::IpAddr& a) {
  std::array<char, 64> buf{};
  return std::string(a.format(buf));
}

}  // namespace

TEST_CASE("a UDP query over Ethernet and IPv4 is decoded", "[parser]") {
  DnsMessage m;
  REQUIRE(parse(ethernet(ipv4(udp(40000, 53, dns_message({}))), 0x0800), m) == ParseStatus::Ok);
  CHECK(m.ts_ns == 42);
  CHECK(m.id == 0x1234);
  CHECK_FALSE(m.qr);
  CHECK(m.opcode == 0);
  CHECK((m.flags & dnsmon::kFlagRd) != 0);
  CHECK(m.qname.view() == "www.example.com");
  CHECK(m.qtype == 1);
  CHECK(m.qclass == 1);
  CHECK(m.qdcount == 1);
  CHECK(m.sport == 40000);
  CHECK(m.dport == 53);
  CHECK(addr(m.src) == "192.0.2.1");
  CHECK(addr(m.dst) == "192.0.2.53");
  CHECK(m.transport == dnsmon::Transport::Udp);
  CHECK_FALSE(m.edns.present);
}

TEST_CASE("802.1Q and QinQ tags are skipped", "[parser]") {
  DnsMessage m;
  const auto ip = ipv4(udp(40000, 53, dns_message({})));
  CHECK(parse(ethernet(ip, 0x0800, {0x8100}), m) == ParseStatus::Ok);
  CHECK(parse(ethernet(ip, 0x0800, {0x88A8, 0x8100}), m) == ParseStatus::Ok);
  CHECK(m.qname.view() == "www.example.com");
}

TEST_CASE("IPv6 with extension headers is decoded and addresses follow RFC 5952", "[parser]") {
  DnsMessage m;
  const Bytes hop{17, 0, 1, 4, 0, 0, 0, 0};  // hop-by-hop: next UDP, 8 bytes, PadN
  const auto frame = ethernet(ipv6(udp(53, 5555, dns_message({.flags = 0x8183})), 0, hop), 0x86DD);
  REQUIRE(parse(frame, m) == ParseStatus::Ok);
  CHECK(m.qr);
  CHECK(m.rcode == 3);
  CHECK(addr(m.src) == "2001:db8::1");
  CHECK(addr(m.dst) == "2001:db8::53");
}

TEST_CASE("every supported link type leads to the same message", "[parser]") {
  const auto ip4 = ipv4(udp(40000, 53, dns_message({})));
  DnsMessage m;
  Bytes sll(14, 0);
  put16(sll, 0x0800);
  sll.insert(sll.end(), ip4.begin(), ip4.end());
  CHECK(parse(sll, m, 113) == ParseStatus::Ok);
  Bytes sll2;
  put16(sll2, 0x0800);
  sll2.resize(20, 0);
  sll2.insert(sll2.end(), ip4.begin(), ip4.end());
  CHECK(parse(sll2, m, 276) == ParseStatus::Ok);
  Bytes null_le{2, 0, 0, 0};
  null_le.insert(null_le.end(), ip4.begin(), ip4.end());
  CHECK(parse(null_le, m, 0) == ParseStatus::Ok);
  Bytes loop{0, 0, 0, 2};
  loop.insert(loop.end(), ip4.begin(), ip4.end());
  CHECK(parse(loop, m, 108) == ParseStatus::Ok);
  CHECK(parse(ip4, m, 12) == ParseStatus::Ok);
  CHECK(parse(ip4, m, 101) == ParseStatus::Ok);
  CHECK(parse(ip4, m, 228) == ParseStatus::Ok);
  CHECK(parse(ipv6(udp(40000, 53, dns_message({}))), m, 229) == ParseStatus::Ok);
  CHECK(m.qname.view() == "www.example.com");
}

TEST_CASE("frames that are not DNS are classified by reason", "[parser]") {
  DnsMessage m;
  const auto query = dns_message({});
  CHECK(parse(ethernet(ipv4(udp(40000, 80, query)), 0x0800), m) == ParseStatus::NotDns);
  CHECK(parse(ethernet(Bytes(28, 0), 0x0806), m) == ParseStatus::NotIp);
  CHECK(parse(ethernet(ipv4(udp(40000, 53, query)), 0x0800), m, 147) ==
        ParseStatus::UnsupportedLink);
  CHECK(parse(ethernet(ipv4(udp(40000, 53, query), 17, 0x2000), 0x0800), m) ==
        ParseStatus::IpFragment);
  CHECK(parse(ethernet(ipv4(udp(40000, 53, query), 17, 0x0010), 0x0800), m) ==
        ParseStatus::IpFragment);
  CHECK(parse(ethernet(ipv4(Bytes(8, 0), 1), 0x0800), m) == ParseStatus::UnsupportedTransport);
  Bytes tcp(20, 0);
  tcp[1] = 53;
  tcp[12] = 0x50;
  CHECK(parse(ethernet(ipv4(tcp, 6), 0x0800), m) == ParseStatus::NotDns);  // bare ACK
  tcp.insert(tcp.end(), {0, 2, 0, 0});
  CHECK(parse(ethernet(ipv4(tcp, 6), 0x0800), m) == ParseStatus::UnsupportedTransport);
  Bytes bad_version = ipv4(udp(40000, 53, query));
  bad_version[0] = 0x55;
  CHECK(parse(ethernet(bad_version, 0x0800), m) == ParseStatus::BadIpHeader);
  CHECK(parse(ethernet(ipv4(udp(40000, 53, Bytes(5, 0))), 0x0800), m) == ParseStatus::Malformed);
}

TEST_CASE("EDNS fields are read from the OPT record", "[parser]") {
  DnsMessage m;
  const auto frame = ethernet(
      ipv4(udp(53, 40000,
               dns_message({.flags = 0x8100, .edns = true, .ext_rcode = 1, .do_bit = true}))),
      0x0800);
  REQUIRE(parse(frame, m) == ParseStatus::Ok);
  CHECK(m.edns.present);
  CHECK(m.edns.udp_size == 1232);
  CHECK(m.edns.do_bit);
  CHECK(m.rcode == 16);  // BADVERS: extended rcode 1 << 4 | header rcode 0
}

TEST_CASE("names are printed in escaped presentation form", "[parser]") {
  DnsMessage m;
  const std::string with_dot = "a.b";
  const std::string with_nul("\0x", 2);
  auto frame =
      ethernet(ipv4(udp(40000, 53, dns_message({.qname = {with_dot, with_nul, "com"}}))), 0x0800);
  REQUIRE(parse(frame, m) == ParseStatus::Ok);
  CHECK(m.qname.view() == "a\\.b.\\000x.com");
  CHECK(m.qname.labels == 3);
  frame = ethernet(ipv4(udp(40000, 53, dns_message({.qname = {}}))), 0x0800);
  REQUIRE(parse(frame, m) == ParseStatus::Ok);
  CHECK(m.qname.view() == ".");
}

TEST_CASE("a compression pointer loop is malformed, not a hang", "[parser]") {
  Bytes msg;
  put16(msg, 1);
  put16(msg, 0);
  put16(msg, 1);
  put16(msg, 0);
  put16(msg, 0);
  put16(msg, 0);
  put16(msg, 0xC00C);  // points at itself
  put16(msg, 1);
  put16(msg, 1);
  DnsMessage m;
  CHECK(parse(ethernet(ipv4(udp(40000, 53, msg)), 0x0800), m) == ParseStatus::Malformed);
}

TEST_CASE("every truncation point is handled", "[parser]") {
  const auto full = ethernet(ipv4(udp(40000, 53, dns_message({.edns = true}))), 0x0800);
  const std::size_t question_end = 14 + 20 + 8 + 12 + 17 + 4;
  for (std::size_t len = 0; len < full.size(); ++len) {
    CAPTURE(len);
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    DnsMessage m;
    const auto status = parse(cut, m);
    if (len < question_end) {
      CHECK(status != ParseStatus::Ok);
    } else {
      CHECK(status == ParseStatus::Ok);  // header and question intact; EDNS may be lost
    }
  }
}

TEST_CASE("random bytes never crash the parser", "[parser]") {
  std::mt19937 rng(12345);
  Parser parser;
  DnsMessage m;
  const auto base = ethernet(ipv4(udp(40000, 53, dns_message({.edns = true}))), 0x0800);
  for (int i = 0; i < 20000; ++i) {
    Bytes frame = base;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) {
      frame[rng() % frame.size()] = static_cast<std::uint8_t>(rng());
    }
    frame.resize(rng() % (frame.size() + 1));
    FrameView v;
    v.header.link_type = kEthernet;
    v.bytes = std::as_bytes(std::span(frame));
    (void)parser.parse(v, m);
  }
  SUCCEED("no crash over 20000 mutated frames");
}

TEST_CASE("status names are stable snake_case labels", "[parser]") {
  CHECK(dnsmon::parse_status_name(ParseStatus::Ok) == "ok");
  CHECK(dnsmon::parse_status_name(ParseStatus::Malformed) == "malformed");
  for (std::size_t i = 0; i < dnsmon::kParseStatusCount; ++i) {
    const auto name = dnsmon::parse_status_name(static_cast<ParseStatus>(i));
    CHECK(name != "unknown");
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string_view::npos);
  }
}
