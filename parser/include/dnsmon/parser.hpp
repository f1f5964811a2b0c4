// Decodes captured frames into DNS messages.
//
// A frame goes through the link layer (Ethernet with 802.1Q/QinQ tags, Linux cooked v1/v2, BSD
// loopback, raw IP), IPv4 or IPv6, UDP on a DNS port, and then the DNS header and first question.
// Header fields come from the wire accessors of ldns and the question name from ldns_wire2dname,
// with a scratch buffer reused for every packet; the full message is never built on this path.
// Frames that do not end in a decoded DNS message are classified by a reason from a fixed set.
//
// Thread-safety: a Parser is owned by one worker thread.
// Allocation: ldns_wire2dname allocates one small rdf per decoded name and frees it before
//   returning; nothing else is allocated per frame.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/ring.hpp"

namespace dnsmon {

struct ParserOptions {
  std::vector<std::uint16_t> dns_ports{53};  // UDP/TCP ports whose payload is decoded as DNS
};

// Why a frame did not end in a decoded DNS message. The set is fixed: metrics export one series per
// value, and traffic can never add a new one.
enum class ParseStatus : std::uint8_t {
  Ok,                    // decoded
  Truncated,             // the frame ends before a header it announces
  UnsupportedLink,       // link type, ethertype or encapsulation we do not decode
  NotIp,                 // a non-IP frame (ARP, LLDP, ...)
  BadIpHeader,           // IP version/length fields that cannot be right
  IpFragment,            // part of a fragmented datagram (reassembly is not done)
  UnsupportedTransport,  // an IP protocol other than UDP or TCP, or DNS over TCP
  NotDns,                // UDP or TCP, but not to or from a DNS port
  Malformed,             // on a DNS port, but not a well-formed DNS header and question
  Count
};

inline constexpr std::size_t kParseStatusCount = static_cast<std::size_t>(ParseStatus::Count);

// Stable label value for a status (snake_case, used as a metric label).
std::string_view parse_status_name(ParseStatus status) noexcept;

enum class Transport : std::uint8_t { Udp, Tcp };

std::string_view transport_name(Transport t) noexcept;

// The ldns version string, for the build info metric.
std::string ldns_library_version();

struct IpAddr {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4
  std::uint8_t family = 0;               // 4 or 6

  // Writes the textual form into out (at least 46 bytes) and returns it.
  std::string_view format(std::span<char> out) const noexcept;
};

struct EdnsInfo {
  bool present = false;
  bool do_bit = false;
  std::uint8_t version = 0;
  std::uint8_t extended_rcode = 0;  // upper 8 bits of the 12-bit rcode
  std::uint16_t udp_size = 0;
};

// Presentation form of a domain name, stored inline (no allocation). The longest wire name is 255
// bytes; escaping every byte as \DDD needs at most 4 characters each.
struct QName {
  std::array<char, 1024> text{};
  std::uint16_t length = 0;
  std::uint8_t labels = 0;

  std::string_view view() const noexcept { return {text.data(), length}; }
};

// One decoded DNS message: the header, the first question and where it was seen.
struct DnsMessage {
  std::int64_t ts_ns = 0;
  IpAddr src, dst;
  std::uint16_t sport = 0, dport = 0;
  Transport transport = Transport::Udp;
  std::uint16_t id = 0;
  std::uint16_t flags = 0;  // the 16-bit flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode
  bool qr = false;
  std::uint8_t opcode = 0;
  std::uint16_t rcode = 0;  // 4-bit header rcode, extended by EDNS when present
  std::uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  bool has_question = false;
  // The header decoded but the question did not (bad name, cut short). parse() then returns
  // Malformed, and the header fields are still valid for the message log.
  bool malformed_question = false;
  std::uint16_t qtype = 0, qclass = 0;
  QName qname;
  EdnsInfo edns;
  std::uint32_t size = 0;  // DNS message bytes
};

// Header flag bits within DnsMessage::flags.
inline constexpr std::uint16_t kFlagAa = 0x0400;
inline constexpr std::uint16_t kFlagTc = 0x0200;
inline constexpr std::uint16_t kFlagRd = 0x0100;
inline constexpr std::uint16_t kFlagRa = 0x0080;
inline constexpr std::uint16_t kFlagAd = 0x0020;
inline constexpr std::uint16_t kFlagCd = 0x0010;

class Parser {
 public:
  explicit Parser(ParserOptions options = {});
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Decodes one frame. On Ok, out holds the message; otherwise out is unspecified.
  [[nodiscard]] ParseStatus parse(const FrameView& frame, DnsMessage& out) noexcept;

  // Decodes a bare DNS message (no link, IP or transport headers): header, question, EDNS.
  [[nodiscard]] ParseStatus parse_dns(std::span<const std::byte> message, DnsMessage& out) noexcept;

 private:
  [[nodiscard]] bool is_dns_port(std::uint16_t port) const noexcept {
    return port < dns_ports_.size() && dns_ports_[port];
  }

  ParseStatus parse_ip(std::span<const std::byte> packet, std::uint8_t version,
                       DnsMessage& out) noexcept;

  std::vector<bool> dns_ports_;  // indexed by port number; sized to the largest configured port
};

}  // namespace dnsmon
