#include <fmt/format.h>

#include "dnsmon/metrics.hpp"

namespace dnsmon {
namespace {

// Names are already in presentation form (non-printable bytes escaped as \DDD), so only the quote
// and the backslash need JSON escaping.
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

MessageWriter::MessageWriter(std::FILE* out) noexcept : out_(out) {
  line_.reserve(1024);
}

MessageWriter::~MessageWriter() {
  flush();
}

void MessageWriter::write(const DnsMessage& m, std::int64_t latency_ns) {
  std::array<char, 64> src{};
  std::array<char, 64> dst{};
  line_.clear();
  auto it = std::back_inserter(line_);
  fmt::format_to(it, R"({{"ts":{}.{:09},"src":"{}","dst":"{}","sport":{},"dport":{},)",
                 m.ts_ns / 1'000'000'000, m.ts_ns % 1'000'000'000, m.src.format(src),
                 m.dst.format(dst), m.sport, m.dport);
  fmt::format_to(it,
                 R"("transport":"{}","protocol":"{}","reassembled":{},"id":{},"qr":{},"opcode":{},)"
                 R"("rcode":{},)",
                 transport_name(m.transport), protocol_name(m.protocol), m.reassembled, m.id, m.qr,
                 m.opcode, m.rcode);
  fmt::format_to(it, R"("flags":{{"aa":{},"tc":{},"rd":{},"ra":{},"ad":{},"cd":{}}},"qname":)",
                 (m.flags & kFlagAa) != 0, (m.flags & kFlagTc) != 0, (m.flags & kFlagRd) != 0,
                 (m.flags & kFlagRa) != 0, (m.flags & kFlagAd) != 0, (m.flags & kFlagCd) != 0);
  if (m.has_question) {
    append_json_string(line_, m.qname.view());
    fmt::format_to(it, R"(,"qtype":{},"qclass":{},)", m.qtype, m.qclass);
  } else {
    line_.append(R"(null,"qtype":null,"qclass":null,)");
  }
  fmt::format_to(it, R"("qdcount":{},"ancount":{},"nscount":{},"arcount":{},"edns":)", m.qdcount,
                 m.ancount, m.nscount, m.arcount);
  if (m.edns.present) {
    fmt::format_to(it,
                   R"({{"udp_size":{},"version":{},"do":{},"extended_rcode":{},"client_subnet":{},)"
                   R"("cookie":{}}})",
                   m.edns.udp_size, m.edns.version, m.edns.do_bit, m.edns.extended_rcode,
                   m.edns.client_subnet, m.edns.cookie);
  } else {
    line_.append("null");
  }
  fmt::format_to(it, R"(,"size":{},"malformed":{})", m.size, m.malformed_question);
  if (m.qr) {  // seconds from the matched query; null when none was matched
    if (latency_ns >= 0) {
      fmt::format_to(it, R"(,"latency":{}.{:09})", latency_ns / 1'000'000'000,
                     latency_ns % 1'000'000'000);
    } else {
      line_.append(R"(,"latency":null)");
    }
  }
  line_.push_back('}');
  line_.push_back('\n');
  std::fwrite(line_.data(), 1, line_.size(), out_);
}

void MessageWriter::flush() noexcept {
  std::fflush(out_);
}

}  // namespace dnsmon
