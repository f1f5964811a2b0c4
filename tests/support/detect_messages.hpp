// DNS messages for the detection tests and fuzzers: an IN A question for a name between an IPv4
// client and the server 198.18.255.53, as the parser hands it on (a query, or its response).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "dnsmon/parser.hpp"

namespace dnsmon::test {

inline DnsMessage a_message(std::string_view name, const std::array<std::uint8_t, 4>& client,
                            std::int64_t ts_ns, bool response = false, std::uint16_t rcode = 0) {
  IpAddr c;
  c.family = 4;
  std::memcpy(c.bytes.data(), client.data(), client.size());
  IpAddr server;
  server.family = 4;
  server.bytes = {198, 18, 255, 53};
  DnsMessage m;
  m.ts_ns = ts_ns;
  m.qr = response;
  m.rcode = rcode;
  m.src = response ? server : c;
  m.dst = response ? c : server;
  m.has_question = true;
  m.qtype = 1;
  m.qclass = 1;
  std::memcpy(m.qname.text.data(), name.data(), name.size());
  m.qname.length = static_cast<std::uint16_t>(name.size());
  return m;
}

}  // namespace dnsmon::test
