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

Bytes ethernet(const Bytes& ip, std::uint16_t ethertype,
               const std::vector<std::uint16_t>& tags = {}) {
  Bytes b(12, 0x02);
  for (auto tpid : tags) {
    put16(b, tpid);
    put16(b, 100);
  }
  put16(b, ethertype);
  b.insert(b.end(), ip.begin(), ip.end());
  return b;
}

// Keeps every message a frame yields.
struct Collect final : dnsmon::MessageSink {
  std::vector<DnsMessage> messages;

  void on_message(const DnsMessage& m) override { messages.push_back(m); }
};

FrameView view_of(const Bytes& frame, std::uint16_t link = kEthernet, std::int64_t ts = 42) {
  FrameView v;
  v.header.link_type = link;
  v.header.ts_ns = ts;
  v.header.wire_len = static_cast<std::uint32_t>(frame.size());
  v.bytes = std::as_bytes(std::span(frame));
  return v;
}

// Small reassembly tables: a parser per frame stays cheap (the defaults reserve 24 MiB).
dnsmon::ParserOptions small_tables() {
  dnsmon::ParserOptions o;
  o.fragment_datagrams = 16;
  o.fragment_memory_bytes = 64U << 10U;
  o.tcp_flows = 16;
  o.tcp_memory_bytes = 256U << 10U;
  return o;
}

// One frame through a fresh parser; out gets the first message, if any.
ParseStatus parse(const Bytes& frame, DnsMessage& out, std::uint16_t link = kEthernet) {
  Parser parser(small_tables());
  Collect sink;
  const auto status = parser.parse(view_of(frame, link), sink);
  if (!sink.messages.empty()) {
    out = sink.messages.front();
  }
  return status;
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
  // a first fragment whose length is not a multiple of 8 cannot be right: refused
  CHECK(parse(ethernet(ipv4(udp(40000, 53, query), 17, 0x2000), 0x0800), m) ==
        ParseStatus::FragmentDropped);
  CHECK(parse(ethernet(ipv4(Bytes(48, 0), 17, 0x2000), 0x0800), m) == ParseStatus::FragmentHeld);
  CHECK(parse(ethernet(ipv4(Bytes(8, 0), 1), 0x0800), m) == ParseStatus::UnsupportedTransport);
  Bytes tcp(20, 0);
  tcp[1] = 53;
  tcp[12] = 0x50;
  CHECK(parse(ethernet(ipv4(tcp, 6), 0x0800), m) == ParseStatus::TcpNoMessage);  // bare ACK
  tcp.insert(tcp.end(), {0, 2, 0, 0});
  CHECK(parse(ethernet(ipv4(tcp, 6), 0x0800), m) == ParseStatus::TcpNoMessage);  // partial
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

// The presentation form of a label, one byte at a time, as RFC 4343 §2.1 describes it.
std::string escaped_label(const std::string& label) {
  std::string out;
  for (const char ch : label) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '.' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x21 || c > 0x7E) {
      out += '\\';
      out += static_cast<char>('0' + c / 100);
      out += static_cast<char>('0' + c / 10 % 10);
      out += static_cast<char>('0' + c % 10);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

TEST_CASE("labels of every length, with and without bytes to escape, print as byte by byte",
          "[parser]") {
  // Labels are copied sixteen bytes at a time when nothing in them needs an escape: check every
  // label length around and across those blocks, a special byte at every position, and names that
  // end close to the message's end (no EDNS) as well as far from it.
  std::mt19937 rng(7);
  const std::string specials("\0\x1f\x20.\\\x7f\x80\xff", 8);
  for (std::size_t length = 1; length <= 63; ++length) {
    for (std::size_t special_at = 0; special_at <= length; ++special_at) {  // == length: none
      std::string label(length, 'a');
      for (auto& c : label) {
        c = static_cast<char>('!' + rng() % 94);  // printable ASCII
        if (c == '.' || c == '\\') {
          c = 'x';
        }
      }
      if (special_at < length) {
        label[special_at] = specials[rng() % specials.size()];
      }
      for (const bool edns : {false, true}) {
        CAPTURE(length, special_at, edns);
        const std::vector<std::string> qname{"Www", label, label.substr(0, length / 2 + 1), "com"};
        DnsMessage m;
        REQUIRE(parse(ethernet(ipv4(udp(40000, 53, dns_message({.qname = qname, .edns = edns}))),
                               0x0800),
                      m) == ParseStatus::Ok);
        std::string expected;
        for (const auto& l : qname) {
          expected += (expected.empty() ? "" : ".") + escaped_label(l);
        }
        CHECK(m.qname.view() == expected);
        CHECK(m.qname.labels == 4);
      }
    }
  }
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
  Parser parser(small_tables());
  Collect sink;
  const auto base = ethernet(ipv4(udp(40000, 53, dns_message({.edns = true}))), 0x0800);
  for (int i = 0; i < 20000; ++i) {
    Bytes frame = base;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) {
      frame[rng() % frame.size()] = static_cast<std::uint8_t>(rng());
    }
    frame.resize(rng() % (frame.size() + 1));
    (void)parser.parse(view_of(frame, kEthernet, i), sink);
    sink.messages.clear();
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

namespace {

Bytes tcp_segment(std::uint16_t sport, std::uint16_t dport, std::uint32_t seq, std::uint8_t flags,
                  const Bytes& payload) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, seq >> 16U);
  put16(b, seq & 0xFFFFU);
  put16(b, 0);
  put16(b, 0);
  b.push_back(0x50);
  b.push_back(flags);
  put16(b, 65535);
  put16(b, 0);
  put16(b, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes length_prefixed(const Bytes& message) {
  Bytes b;
  put16(b, static_cast<unsigned>(message.size()));
  b.insert(b.end(), message.begin(), message.end());
  return b;
}

// IPv4 header for a fragment of a datagram with the given id.
Bytes ipv4_fragment(const Bytes& part, std::uint16_t id, std::uint16_t offset8, bool more) {
  Bytes b = ipv4(part, 17, static_cast<std::uint16_t>((more ? 0x2000U : 0U) | offset8));
  b[4] = static_cast<std::uint8_t>(id >> 8U);
  b[5] = static_cast<std::uint8_t>(id & 0xFFU);
  return b;
}

std::vector<DnsMessage> run(Parser& parser, const std::vector<Bytes>& frames,
                            std::vector<ParseStatus>* statuses = nullptr) {
  Collect sink;
  std::int64_t ts = 1'000'000'000;
  for (const auto& f : frames) {
    const auto st = parser.parse(view_of(f, kEthernet, ts += 1000), sink);
    if (statuses != nullptr) {
      statuses->push_back(st);
    }
  }
  return sink.messages;
}

}  // namespace

TEST_CASE("IPv4 fragments are reassembled in any order", "[parser][reassembly]") {
  auto query = dns_message({.qname = {std::string(60, 'a'), std::string(60, 'b'), "example"}});
  const auto datagram = udp(40000, 53, query);
  REQUIRE(datagram.size() > 48);
  const Bytes first(datagram.begin(), datagram.begin() + 48);
  const Bytes second(datagram.begin() + 48, datagram.end());
  for (const bool reversed : {false, true}) {
    Parser parser(small_tables());
    std::vector<Bytes> frames{ethernet(ipv4_fragment(first, 7, 0, true), 0x0800),
                              ethernet(ipv4_fragment(second, 7, 6, false), 0x0800)};
    if (reversed) {
      std::swap(frames[0], frames[1]);
    }
    std::vector<ParseStatus> st;
    const auto messages = run(parser, frames, &st);
    CAPTURE(reversed);
    CHECK(st == std::vector<ParseStatus>{ParseStatus::FragmentHeld, ParseStatus::Ok});
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].reassembled);
    CHECK(messages[0].qname.labels == 3);
    CHECK(parser.stats().ip[1] == 1);  // reassembled
  }
}

TEST_CASE("IPv6 fragments are reassembled through the fragment header", "[parser][reassembly]") {
  const auto datagram = udp(53, 40000, dns_message({.flags = 0x8180}));
  const Bytes first(datagram.begin(), datagram.begin() + 16);
  const Bytes second(datagram.begin() + 16, datagram.end());
  auto frag_header = [](std::uint16_t offset, bool more) {
    Bytes h{17, 0};
    put16(h, static_cast<unsigned>(offset | (more ? 1U : 0U)));
    put16(h, 0x1234);
    put16(h, 0x5678);
    return h;
  };
  Parser parser(small_tables());
  const auto messages = run(parser, {ethernet(ipv6(first, 44, frag_header(0, true)), 0x86DD),
                                     ethernet(ipv6(second, 44, frag_header(16, false)), 0x86DD)});
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].qr);
  CHECK(addr(messages[0].src) == "2001:db8::1");
}

TEST_CASE("DNS over TCP is reassembled from segments", "[parser][tcp]") {
  const auto q1 = length_prefixed(dns_message({.id = 1}));
  const auto q2 = length_prefixed(dns_message({.id = 2}));
  Bytes both = q1;
  both.insert(both.end(), q2.begin(), q2.end());
  const Bytes head(both.begin(), both.begin() + 1);  // the length prefix itself split
  const Bytes tail(both.begin() + 1, both.end());
  Parser parser(small_tables());
  std::vector<ParseStatus> st;
  const auto messages =
      run(parser,
          {ethernet(ipv4(tcp_segment(40000, 53, 99, 0x02, {}), 6), 0x0800),  // SYN
           ethernet(ipv4(tcp_segment(40000, 53, 100, 0x18, head), 6), 0x0800),
           ethernet(ipv4(tcp_segment(40000, 53, 101, 0x18, tail), 6), 0x0800)},
          &st);
  CHECK(st == std::vector<ParseStatus>{ParseStatus::TcpNoMessage, ParseStatus::TcpNoMessage,
                                       ParseStatus::Ok});
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].id == 1);
  CHECK(messages[1].id == 2);
  CHECK(messages[0].transport == dnsmon::Transport::Tcp);
  CHECK(messages[1].sport == 40000);
}

TEST_CASE("at the end of the input, DNS over TCP messages behind a hole are delivered",
          "[parser][tcp]") {
  const auto q1 = length_prefixed(dns_message({.id = 1}));
  const auto q2 = length_prefixed(dns_message({.id = 2}));
  const auto q3 = length_prefixed(dns_message({.id = 3}));
  const auto seq2 = static_cast<std::uint32_t>(100 + q1.size());
  const auto seq3 = static_cast<std::uint32_t>(seq2 + q2.size());
  Parser parser(small_tables());
  const auto messages =
      run(parser, {ethernet(ipv4(tcp_segment(40000, 53, 99, 0x02, {}), 6), 0x0800),
                   ethernet(ipv4(tcp_segment(40000, 53, 100, 0x18, q1), 6), 0x0800),
                   ethernet(ipv4(tcp_segment(40000, 53, seq3, 0x18, q3), 6), 0x0800)});
  REQUIRE(messages.size() == 1);  // message 2 never arrives: 3 waits behind the hole
  Collect rest;
  parser.finish(rest);
  REQUIRE(rest.messages.size() == 1);
  CHECK(rest.messages[0].id == 3);
  CHECK(rest.messages[0].transport == dnsmon::Transport::Tcp);
  CHECK(addr(rest.messages[0].src) == "192.0.2.1");
  CHECK(rest.messages[0].sport == 40000);
  CHECK(rest.messages[0].dport == 53);
  CHECK(rest.messages[0].ts_ns == 1'000'003'000);  // the last frame's time
  const auto stats = parser.stats();
  CHECK(stats.tcp[4] == 1);  // gap
  CHECK(stats.tcp[5] == 1);  // resync
  Collect none;
  parser.finish(none);
  CHECK(none.messages.empty());
}

TEST_CASE("tunnels are followed and the inner addresses reported", "[parser][tunnel]") {
  const auto inner_ip = ipv4(udp(40000, 53, dns_message({})));
  const auto inner_eth = ethernet(inner_ip, 0x0800);
  auto outer_udp = [](std::uint16_t dport, const Bytes& body) {
    Bytes b = ipv4(udp(12345, dport, body));
    b[12] = 10;  // outer source 10.0.2.1, not the inner 192.0.2.1
    return ethernet(b, 0x0800);
  };
  DnsMessage m;
  Bytes vxlan{0x08, 0, 0, 0, 0, 0, 1, 0};
  vxlan.insert(vxlan.end(), inner_eth.begin(), inner_eth.end());
  CHECK(parse(outer_udp(4789, vxlan), m) == ParseStatus::Ok);
  CHECK(addr(m.src) == "192.0.2.1");

  Bytes geneve{0, 0, 0x65, 0x58, 0, 0, 1, 0};
  geneve.insert(geneve.end(), inner_eth.begin(), inner_eth.end());
  CHECK(parse(outer_udp(6081, geneve), m) == ParseStatus::Ok);

  Bytes gre{0, 0, 0x08, 0x00};
  gre.insert(gre.end(), inner_ip.begin(), inner_ip.end());
  CHECK(parse(ethernet(ipv4(gre, 47), 0x0800), m) == ParseStatus::Ok);

  Bytes erspan2{0x10, 0, 0x88, 0xBE, 0, 0, 0, 1, 0x10, 0, 0, 0, 0, 0, 0, 0};  // S bit, seq, hdr
  erspan2.insert(erspan2.end(), inner_eth.begin(), inner_eth.end());
  CHECK(parse(ethernet(ipv4(erspan2, 47), 0x0800), m) == ParseStatus::Ok);

  CHECK(parse(ethernet(ipv4(inner_ip, 4), 0x0800), m) == ParseStatus::Ok);  // IP in IP
  const auto inner6 = ipv6(udp(40000, 53, dns_message({})));
  CHECK(parse(ethernet(ipv4(inner6, 41), 0x0800), m) == ParseStatus::Ok);  // 6in4
  CHECK(addr(m.src) == "2001:db8::1");

  Bytes nested = inner_ip;  // IP in IP in IP ... deeper than the limit
  for (int i = 0; i < 6; ++i) {
    nested = ipv4(nested, 4);
  }
  CHECK(parse(ethernet(nested, 0x0800), m) == ParseStatus::UnsupportedTunnel);
}

TEST_CASE("mDNS and LLMNR are decoded only when enabled, DoT only counted", "[parser]") {
  const auto mdns = ethernet(ipv4(udp(5353, 5353, dns_message({}))), 0x0800);
  DnsMessage m;
  CHECK(parse(mdns, m) == ParseStatus::NotDns);
  Parser with_mdns(dnsmon::ParserOptions{.mdns = true});
  Collect sink;
  REQUIRE(with_mdns.parse(view_of(mdns), sink) == ParseStatus::Ok);
  CHECK(sink.messages.at(0).protocol == dnsmon::Protocol::Mdns);
  CHECK(parse(ethernet(ipv4(tcp_segment(40000, 853, 1, 0x18, Bytes(40, 1)), 6), 0x0800), m) ==
        ParseStatus::Encrypted);
}

TEST_CASE("EDNS client-subnet and cookie options are noticed", "[parser]") {
  Bytes msg = dns_message({.edns = false});
  msg[11] = 1;  // arcount
  msg.insert(msg.end(), {0, 0, 41, 0x10, 0, 0, 0, 0, 0});
  const Bytes options{0, 8, 0, 4, 0, 1, 0, 0, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  put16(msg, static_cast<unsigned>(options.size()));
  msg.insert(msg.end(), options.begin(), options.end());
  DnsMessage m;
  REQUIRE(parse(ethernet(ipv4(udp(40000, 53, msg)), 0x0800), m) == ParseStatus::Ok);
  CHECK(m.edns.present);
  CHECK(m.edns.client_subnet);
  CHECK(m.edns.cookie);
}

TEST_CASE("a million never-completed fragments and half-open flows stay within bounds",
          "[parser][hostile]") {
  dnsmon::ParserOptions options;
  options.fragment_datagrams = 256;
  options.fragment_memory_bytes = 1U << 20U;
  options.tcp_flows = 256;
  options.tcp_memory_bytes = 1U << 20U;
  Parser parser(options);
  Collect sink;
  const Bytes part(64, 0x41);
  const Bytes data = length_prefixed(dns_message({}));
  const Bytes half(data.begin(), data.begin() + 10);
  std::mt19937 rng(7);
  std::size_t max_ip = 0;
  std::size_t max_tcp = 0;
  // Two frames built once and changed in place: a first fragment (new id and source each time)
  // and a data segment that opens a new flow (new source and port each time).
  Bytes frag = ethernet(ipv4_fragment(part, 0, 0, true), 0x0800);
  Bytes seg = ethernet(ipv4(tcp_segment(1024, 53, 1, 0x18, half), 6), 0x0800);
  for (std::uint32_t i = 0; i < 1'000'000; ++i) {
    frag[14 + 4] = static_cast<std::uint8_t>(i >> 8U);  // IP id
    frag[14 + 5] = static_cast<std::uint8_t>(i);
    frag[14 + 13] = static_cast<std::uint8_t>(i >> 16U);  // source address
    seg[14 + 13] = static_cast<std::uint8_t>(i >> 16U);
    seg[14 + 14] = static_cast<std::uint8_t>(i >> 8U);
    seg[14 + 15] = static_cast<std::uint8_t>(i);
    (void)parser.parse(view_of(frag, kEthernet, i), sink);
    (void)parser.parse(view_of(seg, kEthernet, i), sink);
    if (i % 4096 == 0) {
      Bytes garbage(rng() % 200);
      for (auto& b : garbage) {
        b = static_cast<std::uint8_t>(rng());
      }
      (void)parser.parse(view_of(garbage, kEthernet, i), sink);
      const auto st = parser.stats();
      max_ip = std::max<std::size_t>(max_ip, st.ip_in_progress);
      max_tcp = std::max<std::size_t>(max_tcp, st.tcp_flows);
      REQUIRE(st.ip_memory_bytes <= options.fragment_memory_bytes);
      REQUIRE(st.tcp_memory_bytes <= options.tcp_memory_bytes);
    }
  }
  const auto st = parser.stats();
  CHECK(max_ip <= 256);
  CHECK(max_tcp <= 256);
  CHECK(st.ip[0] == 1'000'000);                               // fragments seen
  CHECK(st.ip[3] + st.ip[4] + st.ip_in_progress >= 999'000);  // evicted or over budget
  CHECK(st.tcp[8] >= 999'000);                                // flows evicted
  CHECK(sink.messages.empty());
}

namespace {

// IPv4 behind a PPP protocol number, in a PPPoE session header.
Bytes pppoe(const Bytes& ip, std::uint16_t ppp_protocol = 0x0021) {
  Bytes b{0x11, 0x00, 0x12, 0x34};
  put16(b, static_cast<unsigned>(ip.size() + 2));
  put16(b, ppp_protocol);
  b.insert(b.end(), ip.begin(), ip.end());
  return b;
}

// An MPLS label stack (labels 16, 17, ...) with the bottom-of-stack bit on the last, then body.
Bytes mpls(int labels, const Bytes& body) {
  Bytes b;
  for (int i = 0; i < labels; ++i) {
    const unsigned label = 16U + static_cast<unsigned>(i);
    put16(b, label >> 4U);
    b.push_back(static_cast<std::uint8_t>(((label & 0xFU) << 4U) | (i + 1 == labels ? 1U : 0U)));
    b.push_back(64);
  }
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

// Ethernet with `tags` 802.1Q tags and a raw payload (no IP built here).
Bytes ether_raw(std::uint16_t ethertype, const Bytes& payload,
                const std::vector<std::uint16_t>& tags = {}) {
  return ethernet(payload, ethertype, tags);
}

// A NFLOG record: header, a prefix attribute, then the payload attribute, in either byte order.
Bytes nflog(const Bytes& ip, std::uint8_t family, bool big_endian) {
  Bytes b{family, 0, 0, 1};
  auto tlv = [&](unsigned type, const Bytes& value) {
    const auto len = static_cast<unsigned>(4 + value.size());
    if (big_endian) {
      put16(b, len);
      put16(b, type);
    } else {
      b.insert(b.end(), {static_cast<std::uint8_t>(len & 0xFFU),
                         static_cast<std::uint8_t>(len >> 8U), static_cast<std::uint8_t>(type), 0});
    }
    b.insert(b.end(), value.begin(), value.end());
    b.resize((b.size() + 3U) & ~std::size_t{3}, 0);
  };
  tlv(1, {0x08, 0x00, 0x01, 0x00});  // packet header: hardware protocol, hook
  tlv(10, {'d', 'n', 's', 0, 0});    // prefix, padded
  tlv(9, ip);
  return b;
}

}  // namespace

TEST_CASE("PPPoE sessions and MPLS label stacks are walked, tagged or not", "[parser][link]") {
  const auto ip4 = ipv4(udp(40000, 53, dns_message({})));
  const auto ip6 = ipv6(udp(40000, 53, dns_message({.id = 6})));
  DnsMessage m;
  CHECK(parse(ether_raw(0x8864, pppoe(ip4)), m) == ParseStatus::Ok);
  CHECK(addr(m.src) == "192.0.2.1");
  CHECK(parse(ether_raw(0x8864, pppoe(ip6, 0x0057)), m) == ParseStatus::Ok);
  CHECK(m.id == 6);
  CHECK(parse(ether_raw(0x8864, pppoe(ip4), {0x8100}), m) == ParseStatus::Ok);
  CHECK(parse(ether_raw(0x8864, pppoe(ip4), {0x88A8, 0x8100}), m) == ParseStatus::Ok);
  CHECK(parse(ether_raw(0x8864, pppoe(ip4, 0xC021)), m) == ParseStatus::NotIp);  // LCP
  CHECK(parse(ether_raw(0x8864, Bytes{0x11, 0, 0, 1, 0}), m) == ParseStatus::Truncated);

  for (const int labels : {1, 2, 3}) {
    CAPTURE(labels);
    m = {};
    CHECK(parse(ether_raw(0x8847, mpls(labels, ip4)), m) == ParseStatus::Ok);
    CHECK(m.qname.view() == "www.example.com");
    CHECK(parse(ether_raw(0x8847, mpls(labels, ip6)), m) == ParseStatus::Ok);
    CHECK(addr(m.src) == "2001:db8::1");
    CHECK(parse(ether_raw(0x8848, mpls(labels, ip4), {0x8100}), m) == ParseStatus::Ok);
  }
  // An Ethernet pseudowire: control word, then a whole frame, itself tagged.
  Bytes pw{0, 0, 0, 7};
  const auto inner = ethernet(ip4, 0x0800, {0x8100});
  pw.insert(pw.end(), inner.begin(), inner.end());
  CHECK(parse(ether_raw(0x8847, mpls(2, pw)), m) == ParseStatus::Ok);
  CHECK(addr(m.dst) == "192.0.2.53");
  // Pseudowires inside pseudowires end at the nesting limit.
  Bytes nested = ethernet(ip4, 0x0800);
  for (int i = 0; i < 6; ++i) {
    Bytes cw{0, 0, 0, 0};
    cw.insert(cw.end(), nested.begin(), nested.end());
    nested = ether_raw(0x8847, mpls(1, cw));
  }
  CHECK(parse(nested, m) == ParseStatus::UnsupportedLink);
  CHECK(parse(ether_raw(0x8847, mpls(9, ip4)), m) == ParseStatus::UnsupportedLink);
  Bytes no_bottom = mpls(2, {});
  no_bottom[6] = 0;  // the last label loses its bottom-of-stack bit
  CHECK(parse(ether_raw(0x8847, no_bottom), m) == ParseStatus::Truncated);
  CHECK(parse(ether_raw(0x8847, mpls(1, Bytes{0x20, 0, 0, 0})), m) == ParseStatus::NotIp);
  // Linux cooked capture carries the same ethertypes.
  Bytes sll(14, 0);
  put16(sll, 0x8864);
  const auto session = pppoe(ip4);
  sll.insert(sll.end(), session.begin(), session.end());
  CHECK(parse(sll, m, 113) == ParseStatus::Ok);
}

TEST_CASE("FDDI and NFLOG link types lead to the IP packet", "[parser][link]") {
  const auto ip4 = ipv4(udp(40000, 53, dns_message({})));
  const auto ip6 = ipv6(udp(40000, 53, dns_message({})));
  DnsMessage m;
  Bytes fddi{0x50};
  fddi.resize(13, 0x02);
  fddi.insert(fddi.end(), {0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00});
  fddi.insert(fddi.end(), ip4.begin(), ip4.end());
  CHECK(parse(fddi, m, 10) == ParseStatus::Ok);
  CHECK(addr(m.src) == "192.0.2.1");
  CHECK(parse(Bytes(fddi.begin(), fddi.begin() + 18), m, 10) == ParseStatus::Truncated);

  for (const bool big_endian : {false, true}) {
    CAPTURE(big_endian);
    m = {};
    CHECK(parse(nflog(ip4, 2, big_endian), m, 239) == ParseStatus::Ok);
    CHECK(m.qname.view() == "www.example.com");
    CHECK(parse(nflog(ip6, 10, big_endian), m, 239) == ParseStatus::Ok);
    CHECK(addr(m.src) == "2001:db8::1");
  }
  Bytes no_payload{2, 0, 0, 1, 8, 0, 1, 0, 0x08, 0x00, 0x01, 0x00};
  CHECK(parse(no_payload, m, 239) == ParseStatus::NotIp);
  Bytes bad_length{2, 0, 0, 1, 0x40, 0, 9, 0, 0x45, 0};
  CHECK(parse(bad_length, m, 239) == ParseStatus::Truncated);
}

TEST_CASE("GTP-U and L2TPv2 tunnels are followed to the inner packet", "[parser][tunnel]") {
  const auto inner_ip = ipv4(udp(40000, 53, dns_message({})));
  const auto inner6 = ipv6(udp(40000, 53, dns_message({})));
  auto outer_udp = [](std::uint16_t sport, std::uint16_t dport, const Bytes& body) {
    Bytes b = ipv4(udp(sport, dport, body));
    b[12] = 10;  // outer source 10.0.2.1, not the inner 192.0.2.1
    return ethernet(b, 0x0800);
  };
  DnsMessage m;
  // GTP-U: version 1, PT, no optional fields; message type 255 (T-PDU), length, TEID.
  auto gtp = [](std::uint8_t flags, std::uint8_t type, const Bytes& opt, const Bytes& pdu) {
    Bytes b{flags, type};
    put16(b, static_cast<unsigned>(opt.size() + pdu.size()));
    b.insert(b.end(), {0, 0, 0, 1});
    b.insert(b.end(), opt.begin(), opt.end());
    b.insert(b.end(), pdu.begin(), pdu.end());
    return b;
  };
  CHECK(parse(outer_udp(2152, 2152, gtp(0x30, 255, {}, inner_ip)), m) == ParseStatus::Ok);
  CHECK(addr(m.src) == "192.0.2.1");
  CHECK(m.sport == 40000);
  CHECK(parse(outer_udp(33000, 2152, gtp(0x30, 255, {}, inner6)), m) == ParseStatus::Ok);
  CHECK(addr(m.src) == "2001:db8::1");
  // E and S flags: sequence number, N-PDU number, then a PDU session container (0x85, 4 bytes)
  // and a second extension header of 8 bytes.
  const Bytes ext{0, 7, 0, 0x85, 1, 0x10, 0x01, 0x40, 2, 1, 2, 3, 4, 5, 6, 0};
  CHECK(parse(outer_udp(2152, 2152, gtp(0x36, 255, ext, inner_ip)), m) == ParseStatus::Ok);
  CHECK(m.qname.view() == "www.example.com");
  Bytes zero_length_ext{0, 7, 0, 0x85, 0, 0, 0, 0};
  CHECK(parse(outer_udp(2152, 2152, gtp(0x34, 255, zero_length_ext, inner_ip)), m) ==
        ParseStatus::Malformed);
  CHECK(parse(outer_udp(2152, 2152, gtp(0x36, 255, Bytes(ext.begin(), ext.begin() + 9), {})), m) ==
        ParseStatus::Truncated);
  CHECK(parse(outer_udp(2152, 2152, gtp(0x32, 1, {0, 1, 0, 0}, {})), m) ==
        ParseStatus::NotDns);  // echo request
  CHECK(parse(outer_udp(2152, 2152, gtp(0x10, 255, {}, inner_ip)), m) ==
        ParseStatus::UnsupportedTunnel);  // GTPv0

  // L2TPv2 data: flags and version, optional fields, PPP with or without address and control.
  auto l2tp = [](std::uint16_t flags, const Bytes& ppp_frame) {
    Bytes b;
    put16(b, flags);
    if ((flags & 0x4000U) != 0) {
      put16(b, 0);  // length (not checked)
    }
    b.insert(b.end(), {0, 1, 0, 2});  // tunnel, session
    if ((flags & 0x0800U) != 0) {
      b.insert(b.end(), {0, 3, 0, 4});
    }
    if ((flags & 0x0200U) != 0) {
      b.insert(b.end(), {0, 3, 0xEE, 0xEE, 0xEE});
    }
    b.insert(b.end(), ppp_frame.begin(), ppp_frame.end());
    return b;
  };
  Bytes ppp4{0xFF, 0x03, 0x00, 0x21};
  ppp4.insert(ppp4.end(), inner_ip.begin(), inner_ip.end());
  Bytes ppp6{0x00, 0x57};
  ppp6.insert(ppp6.end(), inner6.begin(), inner6.end());
  CHECK(parse(outer_udp(1701, 1701, l2tp(0x0002, ppp4)), m) == ParseStatus::Ok);
  CHECK(addr(m.src) == "192.0.2.1");
  CHECK(parse(outer_udp(1701, 40001, l2tp(0x4A02, ppp4)), m) == ParseStatus::Ok);
  CHECK(parse(outer_udp(40001, 1701, l2tp(0x0202, ppp6)), m) == ParseStatus::Ok);
  CHECK(addr(m.src) == "2001:db8::1");
  CHECK(parse(outer_udp(1701, 1701, l2tp(0xC802, {0, 8, 0, 0, 0, 0})), m) ==
        ParseStatus::NotDns);  // control message
  CHECK(parse(outer_udp(1701, 1701, l2tp(0x0003, ppp4)), m) == ParseStatus::UnsupportedTunnel);
  CHECK(parse(outer_udp(1701, 1701, Bytes{0x02, 0x02, 0, 1}), m) == ParseStatus::Truncated);

  // A tunnel inside a tunnel inside ... ends at the tunnel depth limit.
  Bytes nested = inner_ip;
  for (int i = 0; i < 6; ++i) {
    nested = ipv4(udp(2152, 2152, gtp(0x30, 255, {}, nested)));
  }
  CHECK(parse(ethernet(nested, 0x0800), m) == ParseStatus::UnsupportedTunnel);
}
