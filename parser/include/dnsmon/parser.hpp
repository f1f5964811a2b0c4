// Decodes captured frames into DNS messages.
//
// A frame goes through the link layer (Ethernet with 802.1Q/QinQ tags, Linux cooked v1/v2, BSD
// loopback, raw IP), any tunnels (VXLAN, Geneve, GRE with ERSPAN, IP-in-IP, 6in4), IPv4 or IPv6
// with extension headers and fragment reassembly, then UDP or TCP (with stream reassembly) on a
// DNS port, and finally the DNS header, first question and EDNS OPT record, and for responses the
// answer addresses, CNAME chain and authority SOA (DnsAnswers). The addresses and ports
// reported are the innermost ones. Header fields come from ldns' wire accessors; the question name
// is decoded here with ldns' rules (ldns_wire2dname allocated twice per name, the largest cost
// per packet); the full message is never built on this path.
//
// A frame of dnsmon's own link type record::kLinkType (common/message_record.hpp) is a message
// that its source decoded from its transport already: only its DNS part is decoded here.
//
// A frame yields zero, one or (TCP) several messages, handed to a MessageSink as they are found.
// What happened to the frame is returned as a ParseStatus from a fixed set.
//
// Thread-safety: a Parser is owned by one worker thread; stats() may be called from any thread.
// Allocation: the reassembly tables are allocated in the constructor; nothing per frame.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/common/counter.hpp"
#include "dnsmon/ring.hpp"

namespace dnsmon {

namespace link {
struct Packet;
}  // namespace link

namespace detail {
class IpReassembler;
class TcpReassembler;
struct TcpFlowKey;
}  // namespace detail

struct ParserOptions {
  std::vector<std::uint16_t> dns_ports{53};         // UDP/TCP ports whose payload is decoded as DNS
  bool mdns = false;                                // also decode mDNS on 5353, labelled mdns
  bool llmnr = false;                               // also decode LLMNR on 5355, labelled llmnr
  std::vector<std::uint16_t> encrypted_ports{853};  // DNS over TLS/QUIC: counted, not decoded

  // IP fragment reassembly, per worker.
  std::size_t fragment_datagrams = 1024;             // datagrams in progress at once
  std::size_t fragment_memory_bytes = 8U << 20U;     // all buffered fragment bytes
  std::int64_t fragment_timeout_ns = 5'000'000'000;  // packet time

  // DNS over TCP stream reassembly, per worker.
  std::size_t tcp_flows = 4096;                       // directions tracked at once
  std::size_t tcp_memory_bytes = 16U << 20U;          // all buffered stream bytes
  std::int64_t tcp_idle_timeout_ns = 60'000'000'000;  // packet time
};

// What became of a frame. The set is fixed: metrics export one series per value, and traffic can
// never add a new one.
enum class ParseStatus : std::uint8_t {
  Ok,                 // at least one DNS message decoded
  FragmentHeld,       // an IP fragment, stored until its datagram is complete
  FragmentDropped,    // an IP fragment refused by the reassembly policy (see reassembly counters)
  TcpNoMessage,       // a TCP segment on a DNS port that completed no message (handshake, ACK,
                      // part of a longer message)
  Encrypted,          // DNS over TLS or QUIC: counted, not decodable
  Truncated,          // the frame ends before a header it announces
  UnsupportedLink,    // a link type we do not decode
  UnsupportedTunnel,  // a tunnel we do not decode, or tunnels nested too deep
  NotIp,              // a non-IP frame (ARP, LLDP, ...)
  BadIpHeader,        // IP version/length fields that cannot be right
  UnsupportedTransport,  // an IP protocol other than UDP, TCP and the tunnels
  NotDns,                // UDP or TCP, but not to or from a DNS port
  Malformed,             // on a DNS port, but not a well-formed DNS header and question
  Count
};

inline constexpr std::size_t kParseStatusCount = static_cast<std::size_t>(ParseStatus::Count);

// Stable label value for a status (snake_case, used as a metric label).
std::string_view parse_status_name(ParseStatus status) noexcept;

// Dot and Doh come only from sources that see the decrypted message (dnstap): a capture sees
// DNS over TLS as encrypted TCP.
enum class Transport : std::uint8_t { Udp, Tcp, Dot, Doh, Count };
inline constexpr std::size_t kTransportCount = static_cast<std::size_t>(Transport::Count);
enum class Protocol : std::uint8_t { Dns, Mdns, Llmnr, Count };

std::string_view transport_name(Transport t) noexcept;
std::string_view protocol_name(Protocol p) noexcept;

// The ldns version string, for the build info metric.
std::string ldns_library_version();

struct IpAddr {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 uses the first 4
  std::uint8_t family = 0;               // 4 or 6

  // Writes the textual form into out (at least 46 bytes) and returns it.
  [[nodiscard]] std::string_view format(std::span<char> out) const noexcept;
};

struct EdnsInfo {
  bool present = false;
  bool do_bit = false;
  bool client_subnet = false;  // option 8 (RFC 7871) present
  bool cookie = false;         // option 10 (RFC 7873) present
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

  [[nodiscard]] std::string_view view() const noexcept { return {text.data(), length}; }
};

struct DnsMessage;

// An A or AAAA record of a response's answer section.
struct AnswerAddress {
  IpAddr addr;
  std::uint32_t ttl = 0;
};

// What a response's answer and authority sections say, decoded without allocation. Filled for
// responses (QR=1) only; for queries, and for a response that ldns_wire2pkt would refuse (a bad
// name or compression pointer, an RR or RDATA field cut short, in any section), it is empty with
// decoded false. The sections are walked with ldns' rules (ldns_wire2rr, its RDATA field
// descriptors included) so that both accept the same messages and see the same records.
struct DnsAnswers {
  static constexpr std::size_t kMaxAddresses = 8;
  // Longest CNAME chain followed from the question name; a longer one (or a loop) stops there.
  static constexpr unsigned kMaxCnameHops = 16;

  bool decoded = false;             // a response whose sections all walked without error
  std::uint16_t qtype_answers = 0;  // answer RRs of the asked type owned by the question name or
                                    // the end of its CNAME chain (ANY: any type, CNAME: no chain)
  std::uint16_t cnames = 0;         // CNAME RRs in the answer section
  std::uint8_t address_count = 0;   // A/AAAA answer RRs kept, in wire order (at most
                                    // kMaxAddresses); addresses[address_count..] are unspecified
  std::array<AnswerAddress, kMaxAddresses> addresses{};
  bool soa = false;  // an SOA (all seven RDATA fields) in the authority section: the first one
  std::uint32_t soa_ttl = 0, soa_minimum = 0;

  [[nodiscard]] std::span<const AnswerAddress> address_span() const noexcept {
    return {addresses.data(), address_count};
  }

  // NODATA: a NOERROR response to a question, decoded, without an answer of the asked type and
  // not truncated (a TC=1 response's answers are to come over TCP).
  [[nodiscard]] bool nodata(const DnsMessage& m) const noexcept;
};

// One decoded DNS message: the header, the first question and where it was seen.
struct DnsMessage {
  std::int64_t ts_ns = 0;
  IpAddr src, dst;
  std::uint16_t sport = 0, dport = 0;
  Transport transport = Transport::Udp;
  Protocol protocol = Protocol::Dns;
  bool reassembled = false;  // came from IP fragments
  std::uint16_t id = 0;
  std::uint16_t flags = 0;  // the 16-bit flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode
  bool qr = false;
  std::uint8_t opcode = 0;
  std::uint16_t rcode = 0;  // 4-bit header rcode, extended by EDNS when present
  std::uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  bool has_question = false;
  // The header decoded but the question did not (bad name, cut short). The message still reaches
  // the sink, marked so; the frame counts as Malformed.
  bool malformed_question = false;
  std::uint16_t qtype = 0, qclass = 0;
  QName qname;
  EdnsInfo edns;
  DnsAnswers answers;      // responses: addresses, CNAMEs and the authority SOA
  std::uint32_t size = 0;  // DNS message bytes
  // The message's bytes, valid only while the message is handed to a MessageSink (or, from
  // Parser::parse_dns, as long as the caller's buffer).
  std::span<const std::byte> wire;
};

// Header flag bits within DnsMessage::flags.
inline constexpr std::uint16_t kFlagAa = 0x0400;
inline constexpr std::uint16_t kFlagTc = 0x0200;

inline bool DnsAnswers::nodata(const DnsMessage& m) const noexcept {
  return decoded && m.qr && m.rcode == 0 && m.has_question && qtype_answers == 0 &&
         (m.flags & kFlagTc) == 0;
}

inline constexpr std::uint16_t kFlagRd = 0x0100;
inline constexpr std::uint16_t kFlagRa = 0x0080;
inline constexpr std::uint16_t kFlagAd = 0x0020;
inline constexpr std::uint16_t kFlagCd = 0x0010;

// Receives the messages of a frame as the parser finds them. The message is valid only during the
// call.
class MessageSink {
 public:
  virtual void on_message(const DnsMessage& message) = 0;

 protected:
  MessageSink() = default;
  ~MessageSink() = default;
  MessageSink(const MessageSink&) = default;
  MessageSink& operator=(const MessageSink&) = default;
  MessageSink(MessageSink&&) = default;
  MessageSink& operator=(MessageSink&&) = default;
};

// Counters of the reassembly tables, as read by the exporter. Event names are fixed labels.
struct ReassemblyStats {
  static constexpr std::size_t kIpEvents = 10;
  static constexpr std::size_t kTcpEvents = 12;
  static constexpr std::array<std::string_view, kIpEvents> kIpEventNames{
      "fragment",  "reassembled",        "timed_out", "evicted",   "over_budget",
      "too_large", "too_many_fragments", "overlap",   "duplicate", "invalid"};
  static constexpr std::array<std::string_view, kTcpEvents> kTcpEventNames{
      "segment",       "message",   "out_of_order", "duplicate", "gap",       "resync",
      "bytes_skipped", "midstream", "evicted",      "timed_out", "oversized", "closed"};
  std::array<std::uint64_t, kIpEvents> ip{};
  std::array<std::uint64_t, kTcpEvents> tcp{};
  std::uint64_t ip_in_progress = 0, ip_memory_bytes = 0, ip_capacity = 0;
  std::uint64_t tcp_flows = 0, tcp_memory_bytes = 0, tcp_capacity = 0;

  // Sums another parser's stats into these (the collector adds up the workers').
  ReassemblyStats& operator+=(const ReassemblyStats& o) noexcept {
    for (std::size_t i = 0; i < ip.size(); ++i) {
      ip[i] += o.ip[i];
    }
    for (std::size_t i = 0; i < tcp.size(); ++i) {
      tcp[i] += o.tcp[i];
    }
    ip_in_progress += o.ip_in_progress;
    ip_memory_bytes += o.ip_memory_bytes;
    ip_capacity += o.ip_capacity;
    tcp_flows += o.tcp_flows;
    tcp_memory_bytes += o.tcp_memory_bytes;
    tcp_capacity += o.tcp_capacity;
    return *this;
  }
};

// Thrown by Parser's constructor when one of its reassembly tables cannot be allocated: which
// one ("ip_fragments" or "tcp_streams", as in the dnsmon_memory_bytes metric) and how many bytes
// its options ask for, so that the caller can name the setting to lower.
class TableAllocationError : public std::bad_alloc {
 public:
  TableAllocationError(const char* table, std::size_t bytes) noexcept
      : table_(table), bytes_(bytes) {}

  [[nodiscard]] const char* what() const noexcept override {
    return "cannot allocate a reassembly table";
  }

  [[nodiscard]] const char* table() const noexcept { return table_; }

  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  const char* table_;
  std::size_t bytes_;
};

class Parser {
 public:
  // Allocates the reassembly tables: throws TableAllocationError when one does not fit.
  explicit Parser(const ParserOptions& options = {});
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Decodes one frame, handing every message found to sink.
  [[nodiscard]] ParseStatus parse(const FrameView& frame, MessageSink& sink) noexcept;

  // Decodes a bare DNS message (no link, IP or transport headers): header, question, EDNS.
  [[nodiscard]] ParseStatus parse_dns(std::span<const std::byte> message, DnsMessage& out) noexcept;

  // At the end of the input: the DNS over TCP messages still waiting behind a hole in their
  // stream are delivered, as when the hole times out (counted as gap and resync).
  void finish(MessageSink& sink) noexcept;

  // Any thread: the reassembly counters.
  [[nodiscard]] ReassemblyStats stats() const noexcept;

 private:
  struct Context;
  enum class PortKind : std::uint8_t {
    None,
    Dns,
    Mdns,
    Llmnr,
    Encrypted,
    Vxlan,
    Geneve,
    GtpU,
    L2tp
  };

  [[nodiscard]] PortKind port_kind(std::uint16_t port) const noexcept {
    return port < port_kinds_.size() ? port_kinds_[port] : PortKind::None;
  }

  void expire(Context& ctx) noexcept;
  void deliver_flow(Context& ctx, const detail::TcpFlowKey& flow,
                    std::span<const std::byte> message) noexcept;
  ParseStatus parse_record(Context& ctx, std::span<const std::byte> bytes) noexcept;
  ParseStatus parse_link(Context& ctx, std::uint32_t link_type,
                         std::span<const std::byte> bytes) noexcept;
  // The IP packet that the link-layer walk found (common/link.hpp), or its status.
  ParseStatus parse_packet(Context& ctx, const link::Packet& packet) noexcept;
  ParseStatus parse_ip(Context& ctx, std::span<const std::byte> packet,
                       std::uint8_t version) noexcept;
  ParseStatus parse_transport(Context& ctx, std::uint8_t proto, std::span<const std::byte> payload,
                              std::size_t beyond_ip) noexcept;
  ParseStatus parse_gre(Context& ctx, std::span<const std::byte> payload) noexcept;
  ParseStatus parse_udp(Context& ctx, std::span<const std::byte> payload,
                        std::size_t beyond_ip) noexcept;
  // The frame or packet inside a UDP tunnel (VXLAN, Geneve, GTP-U, L2TPv2) of that kind.
  ParseStatus parse_udp_tunnel(Context& ctx, PortKind kind,
                               std::span<const std::byte> body) noexcept;
  ParseStatus parse_gtpu(Context& ctx, std::span<const std::byte> body) noexcept;
  ParseStatus parse_l2tp(Context& ctx, std::span<const std::byte> body) noexcept;
  ParseStatus parse_tcp(Context& ctx, std::span<const std::byte> payload) noexcept;
  ParseStatus deliver(Context& ctx, std::span<const std::byte> message, Transport transport,
                      Protocol protocol) noexcept;

  void publish_tcp_gauges() noexcept;

  std::array<PortKind, 65536> port_kinds_{};
  std::unique_ptr<detail::IpReassembler> ip_;
  std::unique_ptr<detail::TcpReassembler> tcp_;
  std::uint64_t tcp_capacity_ = 0;
  // The TCP table's size, published for the exporter (single writer, relaxed).
  SingleWriterCounter t_flows_gauge_, t_memory_gauge_;
  DnsMessage scratch_;  // the message being decoded; reused for every frame
  std::int64_t last_expire_ns_ = 0;
  std::int64_t last_ts_ns_ = 0;  // the latest frame's packet time
};

}  // namespace dnsmon
