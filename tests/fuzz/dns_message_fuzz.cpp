// libFuzzer target: the input is one bare DNS message (no link, IP or transport header), decoded by
// Parser::parse_dns, the step every UDP payload and every reassembled TCP message goes through.
//
// Besides the sanitizers, it checks what parser.hpp promises about a decoded message, and that the
// result does not depend on what the DnsMessage held before (every field is written, none is
// left over from the previous message, as happens when a worker reuses one DnsMessage).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "dnsmon/parser.hpp"

#include "fuzz_check.hpp"

namespace {

using dnsmon::DnsMessage;
using dnsmon::ParseStatus;

void check_message(ParseStatus status, const DnsMessage& m, std::size_t size) {
  FUZZ_CHECK(status < ParseStatus::Count);
  FUZZ_CHECK(dnsmon::parse_status_name(status) != "unknown");
  // A bare message can only be good or bad: link, IP and transport reasons do not apply.
  FUZZ_CHECK(status == ParseStatus::Ok || status == ParseStatus::Malformed ||
             status == ParseStatus::Truncated);
  if (status != ParseStatus::Ok) {
    FUZZ_CHECK(!m.malformed_question || m.qdcount != 0);
    return;
  }
  FUZZ_CHECK(size >= 12);
  FUZZ_CHECK(m.size == size);
  FUZZ_CHECK(!m.malformed_question);
  FUZZ_CHECK(m.has_question == (m.qdcount != 0));
  FUZZ_CHECK(m.qr == ((m.flags & 0x8000U) != 0));
  FUZZ_CHECK(m.opcode == ((m.flags >> 11U) & 0xFU));
  FUZZ_CHECK((m.rcode & 0xFU) == (m.flags & 0xFU));
  FUZZ_CHECK(m.rcode <= 0xFFFU);
  FUZZ_CHECK(m.edns.present || m.rcode == (m.flags & 0xFU));
  FUZZ_CHECK(m.qname.length <= m.qname.text.size());
  if (m.has_question) {
    FUZZ_CHECK(m.qname.length > 0);  // at least "."
    FUZZ_CHECK(m.qname.labels <= 127);
  }
}

// The DNS fields of two decodings of the same bytes (addresses, ports and time are not parse_dns'
// business).
bool same_dns_fields(const DnsMessage& a, const DnsMessage& b) {
  return a.id == b.id && a.flags == b.flags && a.qr == b.qr && a.opcode == b.opcode &&
         a.rcode == b.rcode && a.qdcount == b.qdcount && a.ancount == b.ancount &&
         a.nscount == b.nscount && a.arcount == b.arcount && a.has_question == b.has_question &&
         a.malformed_question == b.malformed_question && a.qtype == b.qtype &&
         a.qclass == b.qclass && a.qname.view() == b.qname.view() &&
         a.qname.labels == b.qname.labels && a.edns.present == b.edns.present &&
         a.edns.do_bit == b.edns.do_bit && a.edns.version == b.edns.version &&
         a.edns.extended_rcode == b.edns.extended_rcode && a.edns.udp_size == b.edns.udp_size &&
         a.edns.client_subnet == b.edns.client_subnet && a.edns.cookie == b.edns.cookie &&
         a.size == b.size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libFuzzer's buffer is exactly `size` bytes on the heap, so ASan sees any read past the message.
  const auto message = std::as_bytes(std::span(data, size));

  // parse_dns keeps no state, and a Parser allocates its reassembly tables: one for all inputs.
  static dnsmon::Parser parser;
  static DnsMessage fresh;  // 1.2 KB each: static keeps them off the (ASan-padded) stack
  static DnsMessage dirty;
  fresh = DnsMessage{};
  std::memset(static_cast<void*>(&dirty), 0xA5, sizeof dirty);  // a previous message's leftovers

  const ParseStatus status = parser.parse_dns(message, fresh);
  check_message(status, fresh, size);
  const ParseStatus again = parser.parse_dns(message, dirty);
  FUZZ_CHECK(again == status);
  if (status == ParseStatus::Ok) {
    FUZZ_CHECK(same_dns_fields(fresh, dirty));
  }
  return 0;
}
