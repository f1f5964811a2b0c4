// What the fuzzers that drive a whole Parser share: its options, and the promises of parser.hpp
// that every message it hands out must keep, whatever the input.
#pragma once

#include <array>
#include <string_view>

#include "dnsmon/parser.hpp"

#include "fuzz_check.hpp"

namespace dnsmon::fuzz {

// Small tables, so that eviction, budget and timeout paths are reached within a few frames (and a
// Parser per input stays cheap); every protocol the parser knows is decoded.
inline ParserOptions parser_options() {
  ParserOptions o;
  o.mdns = true;
  o.llmnr = true;
  o.fragment_datagrams = 16;
  o.fragment_memory_bytes = 16U << 10U;
  o.tcp_flows = 16;
  o.tcp_memory_bytes = 128U << 10U;
  return o;
}

// Size, addresses, protocol and question of m, and that the message log can format both of its
// addresses.
inline void check_message(const DnsMessage& m) {
  FUZZ_CHECK(m.size >= 12 && m.size <= 65535);
  FUZZ_CHECK(m.src.family == m.dst.family);
  FUZZ_CHECK(m.src.family == 4 || m.src.family == 6);
  FUZZ_CHECK(m.protocol < Protocol::Count);
  FUZZ_CHECK(m.malformed_question ? !m.has_question && m.qdcount != 0
                                  : m.has_question == (m.qdcount != 0));
  FUZZ_CHECK(m.qname.length <= m.qname.text.size());
  std::array<char, 46> buf{};
  for (const auto* addr : {&m.src, &m.dst}) {
    const std::string_view text = addr->format(buf);
    FUZZ_CHECK(!text.empty() && text.size() < buf.size());
  }
}

}  // namespace dnsmon::fuzz
