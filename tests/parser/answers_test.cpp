// DnsMessage::answers: the answer addresses, CNAME chain and authority SOA of responses, checked
// by hand on built messages and against ldns (tests/support/answers_reference.hpp) on the same
// messages and on every DNS message of the public capture corpus.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <pcap/pcap.h>

#include <catch2/catch.hpp>

#include "dnsmon/parser.hpp"

#include "answers_reference.hpp"

namespace {

using dnsmon::DnsAnswers;
using dnsmon::DnsMessage;
using dnsmon::Parser;
using dnsmon::ParseStatus;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint16_t kA = 1, kNs = 2, kCname = 5, kSoa = 6, kMx = 15, kTxt = 16, kAaaa = 28,
                        kOpt = 41, kAny = 255;
constexpr std::uint16_t kQname = 0xC00C;  // a pointer to the question name

// A DNS message written field by field.
class Wire {
 public:
  Wire& u8(std::size_t v) {
    b.push_back(static_cast<std::uint8_t>(v));
    return *this;
  }

  Wire& u16(std::size_t v) { return u8(v >> 8U).u8(v & 0xFFU); }

  Wire& u32(std::size_t v) { return u16(v >> 16U).u16(v & 0xFFFFU); }

  Wire& bytes(const Bytes& v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }

  // Labels of a dotted name, then the root ("" is the root alone).
  Wire& name(const std::string& dotted) {
    std::size_t start = 0;
    while (start < dotted.size()) {
      const std::size_t dot = dotted.find('.', start);
      const std::size_t end = dot == std::string::npos ? dotted.size() : dot;
      u8(end - start);
      b.insert(b.end(), dotted.begin() + static_cast<std::ptrdiff_t>(start),
               dotted.begin() + static_cast<std::ptrdiff_t>(end));
      start = end + 1;
    }
    return u8(0);
  }

  Wire& header(unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar) {
    return u16(0xBEEF).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }

  Wire& question(const std::string& qname, unsigned qtype) { return name(qname).u16(qtype).u16(1); }

  // An RR owned by a compression pointer, with its RDATA length computed.
  Wire& rr(unsigned owner_pointer, unsigned type, std::uint32_t ttl, const Bytes& rdata) {
    return u16(owner_pointer).u16(type).u16(1).u32(ttl).u16(rdata.size()).bytes(rdata);
  }

  [[nodiscard]] std::size_t size() const { return b.size(); }

  Bytes b;
};

Bytes name_bytes(const std::string& dotted) {
  Wire w;
  w.name(dotted);
  return w.b;
}

Bytes soa_rdata(std::uint32_t minimum) {
  Wire w;
  w.name("ns.example.com").name("hostmaster.example.com");
  w.u32(2024010101).u32(7200).u32(3600).u32(1209600).u32(minimum);
  return w.b;
}

constexpr unsigned kResponse = 0x8180;  // QR RD RA, NOERROR
constexpr unsigned kNxdomain = 0x8183;

struct Decoded {
  ParseStatus status{};
  DnsMessage msg;
  dnsmon::test::ReferenceAnswers ref;
  std::string mismatch;
};

Decoded decode(const Bytes& b) {
  static Parser parser;
  Decoded d;
  const auto span = std::as_bytes(std::span(b));
  d.status = parser.parse_dns(span, d.msg);
  d.ref = dnsmon::test::reference_answers(span);
  d.mismatch = dnsmon::test::compare_answers(d.msg, d.status == ParseStatus::Ok, d.ref);
  return d;
}

std::string text(const dnsmon::IpAddr& a) {
  std::array<char, 64> buf{};
  return std::string(a.format(buf));
}

}  // namespace

TEST_CASE("answers: A and AAAA addresses with their TTLs, in wire order", "[parser][answers]") {
  Wire w;
  w.header(kResponse, 1, 3, 0, 0).question("www.example.com", kA);
  w.rr(kQname, kA, 300, {192, 0, 2, 1});
  w.rr(kQname, kAaaa, 60, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  w.rr(kQname, kA, 299, {192, 0, 2, 2});
  const Decoded d = decode(w.b);
  REQUIRE(d.status == ParseStatus::Ok);
  CHECK(d.mismatch.empty());
  const DnsAnswers& a = d.msg.answers;
  CHECK(a.decoded);
  REQUIRE(a.address_count == 3);
  CHECK(text(a.addresses[0].addr) == "192.0.2.1");
  CHECK(a.addresses[0].ttl == 300);
  CHECK(text(a.addresses[1].addr) == "2001:db8::1");
  CHECK(a.addresses[1].ttl == 60);
  CHECK(text(a.addresses[2].addr) == "192.0.2.2");
  CHECK(a.qtype_answers == 2);
  CHECK(a.cnames == 0);
  CHECK_FALSE(a.soa);
  CHECK_FALSE(a.nodata(d.msg));
  CHECK(d.msg.wire.size() == w.size());
}

TEST_CASE("answers: at most kMaxAddresses addresses are kept, all are counted",
          "[parser][answers]") {
  Wire w;
  w.header(kResponse, 1, 40, 0, 0).question("many.example", kA);
  for (unsigned i = 0; i < 40; ++i) {
    w.rr(kQname, kA, 100 + i, {10, 0, 0, static_cast<std::uint8_t>(i)});
  }
  const Decoded d = decode(w.b);
  CHECK(d.mismatch.empty());
  CHECK(d.msg.answers.address_count == DnsAnswers::kMaxAddresses);
  CHECK(d.msg.answers.addresses[7].ttl == 107);
  CHECK(d.msg.answers.qtype_answers == 40);
}

TEST_CASE("answers: a CNAME chain is followed to the answers of the asked type",
          "[parser][answers]") {
  SECTION("in order") {
    Wire w;
    w.header(kResponse, 1, 3, 0, 0).question("www.example.com", kA);
    const std::size_t first = w.size();
    w.rr(kQname, kCname, 300, name_bytes("edge.cdn.example"));
    const auto edge = static_cast<unsigned>(0xC000U | (first + 12));  // the CNAME's RDATA
    const std::size_t second = w.size();
    w.rr(edge, kCname, 60, name_bytes("EDGE-7.cdn.example"));
    w.rr(static_cast<unsigned>(0xC000U | (second + 12)), kA, 20, {198, 51, 100, 7});
    const Decoded d = decode(w.b);
    CHECK(d.mismatch.empty());
    CHECK(d.msg.answers.cnames == 2);
    CHECK(d.msg.answers.qtype_answers == 1);
    CHECK(d.msg.answers.address_count == 1);
  }
  SECTION("out of order, names compared without case") {
    Wire w;
    w.header(kResponse, 1, 4, 0, 0).question("www.example.com", kAaaa);
    w.name("b.example").u16(kAaaa).u16(1).u32(30).u16(16);
    for (unsigned i = 0; i < 16; ++i) {
      w.u8(i);
    }
    w.name("b.example").u16(kCname).u16(1).u32(30).u16(0);  // no RDATA: no chain through it
    w.name("A.EXAMPLE").u16(kCname).u16(1).u32(30);
    const Bytes b = name_bytes("b.example");
    w.u16(b.size()).bytes(b);
    w.name("WWW.Example.COM").u16(kCname).u16(1).u32(30);
    const Bytes a = name_bytes("a.example");
    w.u16(a.size()).bytes(a);
    const Decoded d = decode(w.b);
    CHECK(d.mismatch.empty());
    CHECK(d.msg.answers.cnames == 3);
    CHECK(d.msg.answers.qtype_answers == 1);
  }
  SECTION("a CNAME loop stops after kMaxCnameHops") {
    Wire w;
    w.header(kResponse, 1, 2, 0, 0).question("loop.example", kA);
    w.name("loop.example").u16(kCname).u16(1).u32(5);
    Bytes x = name_bytes("other.example");
    w.u16(x.size()).bytes(x);
    w.name("other.example").u16(kCname).u16(1).u32(5);
    x = name_bytes("loop.example");
    w.u16(x.size()).bytes(x);
    const Decoded d = decode(w.b);
    CHECK(d.mismatch.empty());
    CHECK(d.msg.answers.decoded);
    CHECK(d.msg.answers.qtype_answers == 0);
    CHECK(d.msg.answers.nodata(d.msg));
  }
  SECTION("more CNAMEs than are kept while walking") {
    Wire w;
    w.header(kResponse, 1, 61, 0, 0).question("c0.example", kA);
    for (int i = 0; i < 60; ++i) {
      w.name("c" + std::to_string(i) + ".example").u16(kCname).u16(1).u32(1);
      const Bytes t = name_bytes("c" + std::to_string(i + 1) + ".example");
      w.u16(t.size()).bytes(t);
    }
    w.name("c16.example").u16(kA).u16(1).u32(1).u16(4).u32(0x0A000001);
    const Decoded d = decode(w.b);
    CHECK(d.mismatch.empty());
    CHECK(d.msg.answers.cnames == 60);
    CHECK(d.msg.answers.qtype_answers == 1);  // c0 -> ... -> c16 after 16 hops
  }
  SECTION("qtype CNAME and ANY count what the question name owns") {
    for (const unsigned qtype : {kCname, kAny}) {
      Wire w;
      w.header(kResponse, 1, 2, 0, 0).question("www.example.com", qtype);
      w.rr(kQname, kCname, 300, name_bytes("edge.example"));
      w.rr(kQname, kTxt, 300, {3, 'a', 'b', 'c'});
      const Decoded d = decode(w.b);
      CHECK(d.mismatch.empty());
      CHECK(d.msg.answers.qtype_answers == (qtype == kAny ? 2 : 1));
    }
  }
}

TEST_CASE("answers: the SOA of the authority section", "[parser][answers]") {
  Wire w;
  w.header(kNxdomain, 1, 0, 2, 1).question("nope.example.com", kA);
  w.rr(0xC011, kNs, 100, name_bytes("ns.example.com"));
  w.rr(0xC011, kSoa, 900, soa_rdata(3600));
  w.u8(0).u16(kOpt).u16(1232).u32(0).u16(0);
  const Decoded d = decode(w.b);
  CHECK(d.mismatch.empty());
  CHECK(d.msg.answers.decoded);
  CHECK(d.msg.answers.soa);
  CHECK(d.msg.answers.soa_ttl == 900);
  CHECK(d.msg.answers.soa_minimum == 3600);
  CHECK_FALSE(d.msg.answers.nodata(d.msg));  // NXDOMAIN
  CHECK(d.msg.edns.present);
}

TEST_CASE("answers: NODATA is NOERROR without an answer of the asked type", "[parser][answers]") {
  Wire w;
  w.header(kResponse, 1, 1, 1, 0).question("v4only.example", kAaaa);
  w.rr(kQname, kA, 60, {192, 0, 2, 9});  // not the asked type
  w.rr(kQname, kSoa, 60, soa_rdata(60));
  Decoded d = decode(w.b);
  CHECK(d.mismatch.empty());
  CHECK(d.msg.answers.nodata(d.msg));
  CHECK(d.msg.answers.soa);
  w.b[2] |= 0x02U;  // TC: the answers are to come over TCP
  d = decode(w.b);
  CHECK_FALSE(d.msg.answers.nodata(d.msg));
}

TEST_CASE("answers: queries are not walked", "[parser][answers]") {
  Wire w;
  w.header(0x0100, 1, 1, 0, 0).question("www.example.com", kA);
  w.rr(kQname, kA, 60, {192, 0, 2, 9});
  const Decoded d = decode(w.b);
  CHECK(d.status == ParseStatus::Ok);
  CHECK_FALSE(d.msg.answers.decoded);
  CHECK(d.msg.answers.address_count == 0);
  CHECK(d.mismatch.empty());
}

TEST_CASE("answers: a malformed response yields no records, as ldns refuses it",
          "[parser][answers]") {
  const auto base = [] {
    Wire w;
    w.header(kResponse, 1, 2, 1, 0).question("www.example.com", kA);
    w.rr(kQname, kA, 60, {192, 0, 2, 1});
    return w;
  };
  std::vector<std::pair<std::string, Bytes>> cases;
  {
    Wire w = base();
    w.u16(0xC000U | w.size()).u16(kA).u16(1).u32(1).u16(4).u32(1);  // owner points at itself
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("a compression loop", w.b);
  }
  {
    Wire w = base();
    w.u16(0xC000U | 0x3FFFU).u16(kA).u16(1).u32(1).u16(4).u32(1);
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("a pointer past the end", w.b);
  }
  {
    Wire w = base();
    w.u16(0xC000U).u16(kA).u16(1).u32(1).u16(4).u32(1);
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("a pointer to the first byte", w.b);
  }
  {
    Wire w = base();
    w.rr(kQname, kA, 60, {192, 0, 2, 2});
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    w.b.resize(w.b.size() - 5);
    cases.emplace_back("an RR cut short", w.b);
  }
  {
    Wire w = base();
    w.rr(kQname, kA, 60, {192, 0});
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("an A RDATA of two bytes", w.b);
  }
  {
    Wire w = base();
    w.rr(kQname, kMx, 60, {0});
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("an MX RDATA of one byte", w.b);
  }
  {
    Wire w = base();
    w.rr(kQname, kCname, 60, {0xC0, 0xFF});
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("a CNAME whose name points past the end", w.b);
  }
  {
    Wire w = base();
    w.rr(kQname, kTxt, 60, {5, 'a'});
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("a TXT string longer than its RDATA", w.b);
  }
  {
    Wire w = base();
    w.rr(kQname, kA, 60, {192, 0, 2, 2});
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    w.b[11] = 1;  // an additional RR that is not there
    cases.emplace_back("a missing additional RR", w.b);
  }
  {
    Wire w = base();
    w.u8(0x40).u16(kA).u16(1).u32(1).u16(4).u32(1);
    w.rr(kQname, kSoa, 1, soa_rdata(1));
    cases.emplace_back("an obsolete label type", w.b);
  }
  for (const auto& [what, bytes] : cases) {
    INFO(what);
    const Decoded d = decode(bytes);
    CHECK_FALSE(d.ref.accepted);
    CHECK(d.status == ParseStatus::Ok);  // header and question are fine
    CHECK_FALSE(d.msg.answers.decoded);
    CHECK(d.msg.answers.address_count == 0);
    CHECK_FALSE(d.msg.answers.soa);
    CHECK(d.msg.answers.qtype_answers == 0);
    CHECK_FALSE(d.msg.answers.nodata(d.msg));
    CHECK(d.mismatch.empty());
  }
}

TEST_CASE("answers: ldns' reading of RDATA longer than its fields is followed",
          "[parser][answers]") {
  // ldns reads an A RR's four bytes and goes on from there, not from the end of RDATA: the four
  // extra bytes here are read as the start of the next RR, which then fails. Both agree.
  Wire w;
  w.header(kResponse, 1, 2, 0, 0).question("www.example.com", kA);
  w.rr(kQname, kA, 60, {192, 0, 2, 1, 0xC0, 0x0C, 0, 1});
  w.rr(kQname, kA, 60, {192, 0, 2, 2});
  const Decoded d = decode(w.b);
  CHECK(d.mismatch.empty());
}

TEST_CASE("answers: a TSIG record ends ldns' additional section one record early",
          "[parser][answers]") {
  // ldns takes the TSIG out of the additional count while reading the section: of three additional
  // records announced, with the TSIG first, it reads two and ignores the missing third.
  Wire w;
  w.header(kResponse, 1, 1, 0, 3).question("www.example.com", kA);
  w.rr(kQname, kA, 60, {192, 0, 2, 1});
  w.name("key.example").u16(250).u16(255).u32(0);
  Wire tsig;
  tsig.name("hmac-sha256").u16(0).u32(0x5F000000).u16(300).u16(4).u32(0xDEADBEEF).u16(0xBEEF);
  tsig.u16(0).u16(0);
  w.u16(tsig.size()).bytes(tsig.b);
  w.u8(0).u16(kOpt).u16(1232).u32(0).u16(0);
  const Decoded d = decode(w.b);
  CHECK(d.ref.accepted);
  CHECK(d.mismatch.empty());
  CHECK(d.msg.answers.decoded);
  CHECK(d.msg.answers.address_count == 1);
}

TEST_CASE("answers: every DNS message of the capture corpus agrees with ldns",
          "[parser][answers][interop]") {
  const std::filesystem::path root = DNSMON_PCAPS;
  if (!std::filesystem::exists(root / "MANIFEST.tsv")) {
    WARN("the capture corpus is not at " << root.string() << ": skipped");
    return;
  }
  dnsmon::ParserOptions options;
  options.dns_ports = {53, 1053, 5300, 8053};
  options.mdns = options.llmnr = true;

  struct Sink final : dnsmon::MessageSink {
    void on_message(const DnsMessage& m) override {
      ++messages;
      responses += m.qr ? 1U : 0U;
      decoded += m.answers.decoded ? 1U : 0U;
      addresses += m.answers.address_count;
      soas += m.answers.soa ? 1U : 0U;
      nodata += m.answers.nodata(m) ? 1U : 0U;
      const auto ref = dnsmon::test::reference_answers(m.wire);
      const std::string why = dnsmon::test::compare_answers(m, !m.malformed_question, ref);
      if (!why.empty()) {
        ++mismatches;
        if (first.empty()) {
          first = file + ": " + why;
        }
      }
    }

    std::string file, first;
    std::size_t messages = 0, responses = 0, decoded = 0, addresses = 0, soas = 0, nodata = 0,
                mismatches = 0;
  } sink;

  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    const auto ext = entry.path().extension().string();
    if (!entry.is_regular_file() || (ext != ".pcap" && ext != ".pcapng" && ext != ".cap")) {
      continue;
    }
    std::array<char, PCAP_ERRBUF_SIZE> err{};
    pcap_t* pcap = pcap_open_offline(entry.path().c_str(), err.data());
    if (pcap == nullptr) {
      continue;  // the corpus holds a few files libpcap refuses on purpose
    }
    ++files;
    Parser parser(options);  // a fresh one per file: TCP streams do not run across files
    sink.file = entry.path().lexically_relative(root).string();
    const auto link = static_cast<std::uint32_t>(pcap_datalink(pcap));
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    for (std::size_t n = 0; n < 1'000'000 && pcap_next_ex(pcap, &hdr, &data) == 1; ++n) {
      dnsmon::FrameView frame;
      frame.header.ts_ns = std::int64_t{hdr->ts.tv_sec} * 1'000'000'000 + hdr->ts.tv_usec * 1000;
      frame.header.cap_len = hdr->caplen;
      frame.header.wire_len = hdr->len;
      frame.header.link_type = static_cast<std::uint16_t>(link);
      frame.bytes = std::as_bytes(std::span(data, hdr->caplen));
      (void)parser.parse(frame, sink);
    }
    pcap_close(pcap);
  }
  INFO(sink.first);
  CHECK(sink.mismatches == 0);
  CHECK(files > 100);
  CHECK(sink.responses > 1000);
  CHECK(sink.decoded > 1000);
  CHECK(sink.addresses > 0);
  CHECK(sink.soas > 0);
  CHECK(sink.nodata > 0);
  WARN("corpus: " << files << " files, " << sink.messages << " messages, " << sink.responses
                  << " responses, " << sink.decoded << " decoded, " << sink.addresses
                  << " addresses, " << sink.soas << " SOAs, " << sink.nodata << " NODATA");
}
