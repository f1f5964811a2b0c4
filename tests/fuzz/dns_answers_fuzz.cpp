// libFuzzer target, differential: the input is one bare DNS message, decoded by Parser::parse_dns
// and by ldns (ldns_wire2pkt). The answers of the fast path (DnsMessage::answers: addresses with
// their TTLs in order, the answers of the asked type through the CNAME chain, the CNAME count and
// the authority SOA) must be ldns' (tests/support/answers_reference.hpp); a message that ldns
// refuses must yield no records. Any difference aborts with what differed.
//
// Inputs are mostly responses: the first byte's QR bit is set on half of them, so that mutations
// of query seeds reach the answer walk too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "dnsmon/parser.hpp"

#include "answers_reference.hpp"
#include "fuzz_check.hpp"

// ldns_wire2pkt leaks a TSIG record when a message holds two: ldns_pkt_set_tsig replaces the first
// without freeing it. The reference frees every packet it decodes, so what leaks from within ldns
// is ldns' own.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT(bugprone-reserved-identifier)
  return "leak:libldns.so\n";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static dnsmon::Parser parser;
  static dnsmon::DnsMessage msg;
  std::vector<std::uint8_t> bytes(data, data + size);  // exactly `size` bytes: ASan sees overruns
  if (bytes.size() > 2 && (bytes[0] & 1U) != 0) {
    bytes[2] |= 0x80U;
  }
  const auto message = std::as_bytes(std::span(bytes));
  std::memset(static_cast<void*>(&msg.answers), 0xA5, sizeof msg.answers);  // earlier leftovers
  const dnsmon::ParseStatus status = parser.parse_dns(message, msg);
  const auto ref = dnsmon::test::reference_answers(message);
  const std::string why =
      dnsmon::test::compare_answers(msg, status == dnsmon::ParseStatus::Ok, ref);
  if (!why.empty()) {
    std::fprintf(stderr, "answers differ from ldns: %s\n", why.c_str());
  }
  FUZZ_CHECK(why.empty());
  FUZZ_CHECK(msg.answers.address_count <= dnsmon::DnsAnswers::kMaxAddresses);
  FUZZ_CHECK(!msg.answers.decoded || msg.qr);
  return 0;
}
