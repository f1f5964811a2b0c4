#include "dnsmon/parser.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdbool.h>  // before ldns, whose common.h otherwise defines true and false as ints

#include <ldns/ldns.h>

#include "wire_reader.hpp"

namespace dnsmon {
namespace {

using detail::WireReader;

// pcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).
constexpr std::uint16_t kLinkNull = 0;
constexpr std::uint16_t kLinkEthernet = 1;
constexpr std::uint16_t kLinkRawOpenBsd = 12;  // DLT_RAW as written by some platforms
constexpr std::uint16_t kLinkRawBsdOs = 14;
constexpr std::uint16_t kLinkRaw = 101;
constexpr std::uint16_t kLinkLoop = 108;
constexpr std::uint16_t kLinkLinuxSll = 113;
constexpr std::uint16_t kLinkIpv4 = 228;
constexpr std::uint16_t kLinkIpv6 = 229;
constexpr std::uint16_t kLinkLinuxSll2 = 276;

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86DD;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinQ = 0x88A8;
constexpr std::uint16_t kEtherQinQOld = 0x9100;
constexpr int kMaxVlanTags = 8;  // QinQ stacks are two deep in practice; more is hostile

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;

constexpr std::uint16_t kTypeOpt = 41;

std::uint16_t load_u16(std::span<const std::byte> b, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(b[at]) << 8U) |
                                    std::to_integer<unsigned>(b[at + 1]));
}

ParseStatus ip_by_version(std::span<const std::byte> packet, std::uint8_t& version) noexcept {
  if (packet.empty()) {
    return ParseStatus::Truncated;
  }
  version = static_cast<std::uint8_t>(std::to_integer<unsigned>(packet[0]) >> 4U);
  if (version != 4 && version != 6) {
    return ParseStatus::BadIpHeader;
  }
  return ParseStatus::Ok;
}

ParseStatus ip_by_ethertype(std::uint16_t ethertype, std::uint8_t& version) noexcept {
  switch (ethertype) {
    case kEtherIpv4:
      version = 4;
      return ParseStatus::Ok;
    case kEtherIpv6:
      version = 6;
      return ParseStatus::Ok;
    default:
      return ParseStatus::NotIp;
  }
}

// BSD loopback: a 4-byte address family, in the writer's byte order for NULL and network order for
// LOOP. AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 depending on the BSD.
ParseStatus ip_by_bsd_family(std::uint32_t family, std::uint8_t& version) noexcept {
  if (family == 2) {
    version = 4;
    return ParseStatus::Ok;
  }
  if (family == 24 || family == 28 || family == 30) {
    version = 6;
    return ParseStatus::Ok;
  }
  return ParseStatus::NotIp;
}

// Appends the presentation form of an uncompressed wire name: labels joined by '.', with '.', '\'
// and bytes outside printable ASCII escaped (RFC 4343 §2.1). The root is ".".
void format_name(const std::uint8_t* wire, std::size_t size, QName& out) noexcept {
  std::size_t pos = 0;
  std::size_t len = 0;
  std::uint8_t labels = 0;
  auto put = [&](char c) noexcept {
    if (len < out.text.size()) {
      out.text[len++] = c;
    }
  };
  while (pos < size) {
    const std::size_t label = wire[pos++];
    if (label == 0 || pos + label > size) {
      break;
    }
    if (labels != 0) {
      put('.');
    }
    ++labels;
    for (std::size_t i = 0; i < label; ++i) {
      const auto c = wire[pos + i];
      if (c == '.' || c == '\\') {
        put('\\');
        put(static_cast<char>(c));
      } else if (c < 0x21 || c > 0x7E) {
        put('\\');
        put(static_cast<char>('0' + c / 100));
        put(static_cast<char>('0' + c / 10 % 10));
        put(static_cast<char>('0' + c % 10));
      } else {
        put(static_cast<char>(c));
      }
    }
    pos += label;
  }
  if (labels == 0) {
    put('.');
  }
  out.length = static_cast<std::uint16_t>(len);
  out.labels = labels;
}

// Skips a possibly compressed name without following pointers (a pointer ends the name).
bool skip_name(WireReader& r) noexcept {
  for (int guard = 0; guard < 128; ++guard) {
    const std::uint8_t len = r.u8();
    if (r.failed()) {
      return false;
    }
    if (len == 0) {
      return true;
    }
    if ((len & 0xC0U) == 0xC0U) {
      r.skip(1);
      return !r.failed();
    }
    if ((len & 0xC0U) != 0) {
      return false;  // 0x40/0x80 label types are obsolete or unassigned
    }
    r.skip(len);
  }
  return false;
}

// Walks the remaining questions, answers and authorities to find the OPT record, if any. A message
// whose later sections cannot be walked keeps its header and question; EDNS is then unknown.
void find_edns(WireReader r, const DnsMessage& msg, EdnsInfo& edns) noexcept {
  for (unsigned i = 1; i < msg.qdcount; ++i) {
    if (!skip_name(r)) {
      return;
    }
    r.skip(4);
  }
  const unsigned before_additional = static_cast<unsigned>(msg.ancount) + msg.nscount;
  for (unsigned i = 0; i < before_additional; ++i) {
    if (!skip_name(r)) {
      return;
    }
    r.skip(8);
    r.skip(r.u16());
    if (r.failed()) {
      return;
    }
  }
  for (unsigned i = 0; i < msg.arcount; ++i) {
    if (!skip_name(r)) {
      return;
    }
    const std::uint16_t type = r.u16();
    const std::uint16_t udp_size = r.u16();
    const std::uint8_t ext_rcode = r.u8();
    const std::uint8_t version = r.u8();
    const std::uint16_t eflags = r.u16();
    r.skip(r.u16());
    if (r.failed()) {
      return;
    }
    if (type == kTypeOpt) {
      edns.present = true;
      edns.udp_size = udp_size;
      edns.extended_rcode = ext_rcode;
      edns.version = version;
      edns.do_bit = (eflags & 0x8000U) != 0;
      return;
    }
  }
}

}  // namespace

std::string_view parse_status_name(ParseStatus status) noexcept {
  switch (status) {
    case ParseStatus::Ok:
      return "ok";
    case ParseStatus::Truncated:
      return "truncated";
    case ParseStatus::UnsupportedLink:
      return "unsupported_link";
    case ParseStatus::NotIp:
      return "not_ip";
    case ParseStatus::BadIpHeader:
      return "bad_ip_header";
    case ParseStatus::IpFragment:
      return "ip_fragment";
    case ParseStatus::UnsupportedTransport:
      return "unsupported_transport";
    case ParseStatus::NotDns:
      return "not_dns";
    case ParseStatus::Malformed:
      return "malformed";
    case ParseStatus::Count:
      break;
  }
  return "unknown";
}

std::string ldns_library_version() {
  return ::ldns_version();
}

std::string_view transport_name(Transport t) noexcept {
  return t == Transport::Tcp ? "tcp" : "udp";
}

std::string_view IpAddr::format(std::span<char> out) const noexcept {
  if (out.size() < 46) {
    return {};
  }
  int n = 0;
  if (family == 4) {
    n = std::snprintf(out.data(), out.size(), "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2],
                      bytes[3]);
  } else if (family == 6) {
    // RFC 5952: lowercase hex, longest run (>= 2) of zero groups collapsed to "::".
    std::array<unsigned, 8> g{};
    for (std::size_t i = 0; i < 8; ++i) {
      g[i] = (static_cast<unsigned>(bytes[2 * i]) << 8U) | bytes[2 * i + 1];
    }
    int best_start = -1;
    int best_len = 0;
    for (int i = 0; i < 8;) {
      if (g[static_cast<std::size_t>(i)] != 0) {
        ++i;
        continue;
      }
      int j = i;
      while (j < 8 && g[static_cast<std::size_t>(j)] == 0) {
        ++j;
      }
      if (j - i > best_len && j - i >= 2) {
        best_start = i;
        best_len = j - i;
      }
      i = j;
    }
    char* p = out.data();
    for (int i = 0; i < 8; ++i) {
      if (i == best_start) {
        *p++ = ':';
        if (i == 0) {
          *p++ = ':';
        }
        i += best_len - 1;
        continue;
      }
      p += std::snprintf(p, 6, "%x", g[static_cast<std::size_t>(i)]);
      if (i != 7) {
        *p++ = ':';
      }
    }
    n = static_cast<int>(p - out.data());
  }
  return {out.data(), static_cast<std::size_t>(n > 0 ? n : 0)};
}

Parser::Parser(ParserOptions options) {
  std::uint16_t largest = 0;
  for (auto p : options.dns_ports) {
    largest = std::max(largest, p);
  }
  dns_ports_.assign(static_cast<std::size_t>(largest) + 1, false);
  for (auto p : options.dns_ports) {
    dns_ports_[p] = true;
  }
}

Parser::~Parser() = default;

ParseStatus Parser::parse(const FrameView& frame, DnsMessage& out) noexcept {
  const auto bytes = frame.bytes;
  out.ts_ns = frame.header.ts_ns;
  out.malformed_question = false;
  std::uint8_t version = 0;
  std::span<const std::byte> packet;
  ParseStatus status = ParseStatus::Ok;

  switch (frame.header.link_type) {
    case kLinkEthernet: {
      if (bytes.size() < 14) {
        return ParseStatus::Truncated;
      }
      std::size_t off = 12;
      std::uint16_t ethertype = load_u16(bytes, off);
      int tags = 0;
      while (ethertype == kEtherVlan || ethertype == kEtherQinQ || ethertype == kEtherQinQOld) {
        if (++tags > kMaxVlanTags) {
          return ParseStatus::UnsupportedLink;
        }
        off += 4;
        if (bytes.size() < off + 2) {
          return ParseStatus::Truncated;
        }
        ethertype = load_u16(bytes, off);
      }
      status = ip_by_ethertype(ethertype, version);
      packet = bytes.subspan(off + 2);
      break;
    }
    case kLinkLinuxSll:
      if (bytes.size() < 16) {
        return ParseStatus::Truncated;
      }
      status = ip_by_ethertype(load_u16(bytes, 14), version);
      packet = bytes.subspan(16);
      break;
    case kLinkLinuxSll2:
      if (bytes.size() < 20) {
        return ParseStatus::Truncated;
      }
      status = ip_by_ethertype(load_u16(bytes, 0), version);
      packet = bytes.subspan(20);
      break;
    case kLinkNull:
    case kLinkLoop: {
      if (bytes.size() < 4) {
        return ParseStatus::Truncated;
      }
      std::uint32_t family = 0;
      std::memcpy(&family, bytes.data(), 4);
      if (frame.header.link_type == kLinkLoop || family > 0xFFFFU) {
        family = __builtin_bswap32(family);  // NULL is in the writer's order: accept either
      }
      status = ip_by_bsd_family(family, version);
      packet = bytes.subspan(4);
      break;
    }
    case kLinkRaw:
    case kLinkRawOpenBsd:
    case kLinkRawBsdOs:
      packet = bytes;
      status = ip_by_version(packet, version);
      break;
    case kLinkIpv4:
      packet = bytes;
      status = ip_by_version(packet, version);
      if (status == ParseStatus::Ok && version != 4) {
        status = ParseStatus::BadIpHeader;
      }
      break;
    case kLinkIpv6:
      packet = bytes;
      status = ip_by_version(packet, version);
      if (status == ParseStatus::Ok && version != 6) {
        status = ParseStatus::BadIpHeader;
      }
      break;
    default:
      return ParseStatus::UnsupportedLink;
  }
  if (status != ParseStatus::Ok) {
    return status;
  }
  return parse_ip(packet, version, out);
}

ParseStatus Parser::parse_ip(std::span<const std::byte> packet, std::uint8_t version,
                             DnsMessage& out) noexcept {
  WireReader r{packet};
  std::uint8_t proto = 0;
  std::span<const std::byte> payload;
  std::size_t beyond_ip = 0;  // captured bytes after the end the IP header announces
  if (version == 4) {
    const std::uint8_t vihl = r.u8();
    r.skip(1);
    const std::uint16_t total = r.u16();
    r.skip(2);
    const std::uint16_t frag = r.u16();
    r.skip(1);
    proto = r.u8();
    r.skip(2);
    const auto src = r.take(4);
    const auto dst = r.take(4);
    if (r.failed()) {
      return ParseStatus::Truncated;
    }
    const std::size_t ihl = (vihl & 0x0FU) * 4U;
    if ((vihl >> 4U) != 4 || ihl < 20) {
      return ParseStatus::BadIpHeader;
    }
    if (packet.size() < ihl) {
      return ParseStatus::Truncated;
    }
    // The total length trims link-layer padding; 0 (segmentation offload) or a length beyond the
    // capture keeps what was captured, and the transport layer checks its own length.
    std::size_t end = packet.size();
    if (total != 0 && total < end) {
      if (total < ihl) {
        return ParseStatus::BadIpHeader;
      }
      end = total;
    }
    if ((frag & 0x3FFFU) != 0) {  // MF set or a non-zero offset
      return ParseStatus::IpFragment;
    }
    out.src.family = out.dst.family = 4;
    std::memcpy(out.src.bytes.data(), src.data(), 4);
    std::memcpy(out.dst.bytes.data(), dst.data(), 4);
    payload = packet.subspan(ihl, end - ihl);
    beyond_ip = packet.size() - end;
  } else {
    const std::uint8_t v = r.u8();
    r.skip(3);
    const std::uint16_t plen = r.u16();
    std::uint8_t next = r.u8();
    r.skip(1);
    const auto src = r.take(16);
    const auto dst = r.take(16);
    if (r.failed()) {
      return ParseStatus::Truncated;
    }
    if ((v >> 4U) != 6) {
      return ParseStatus::BadIpHeader;
    }
    std::size_t end = packet.size();
    if (plen != 0 && 40U + plen < end) {
      end = 40U + plen;
    }
    WireReader x{packet.subspan(40, end - 40)};
    // Extension headers (RFC 8200 §4): hop-by-hop, routing, destination options, fragment, AH.
    for (int guard = 0; guard < 16; ++guard) {
      if (next == 0 || next == 43 || next == 60) {
        const std::uint8_t nh = x.u8();
        const std::size_t len = (static_cast<std::size_t>(x.u8()) + 1) * 8;
        x.skip(len - 2);
        next = nh;
      } else if (next == 44) {
        const std::uint8_t nh = x.u8();
        x.skip(1);
        const std::uint16_t off_m = x.u16();
        x.skip(4);
        if (!x.failed() && off_m != 0) {
          return ParseStatus::IpFragment;  // offset or M set; an atomic fragment reads on
        }
        next = nh;
      } else if (next == 51) {
        const std::uint8_t nh = x.u8();
        const std::size_t len = (static_cast<std::size_t>(x.u8()) + 2) * 4;
        x.skip(len - 2);
        next = nh;
      } else {
        break;
      }
      if (x.failed()) {
        return ParseStatus::Truncated;
      }
    }
    proto = next;
    out.src.family = out.dst.family = 6;
    std::memcpy(out.src.bytes.data(), src.data(), 16);
    std::memcpy(out.dst.bytes.data(), dst.data(), 16);
    payload = x.rest();
    beyond_ip = packet.size() - end;
  }

  WireReader t{payload};
  if (proto == kProtoUdp) {
    out.sport = t.u16();
    out.dport = t.u16();
    const std::uint16_t len = t.u16();
    t.skip(2);
    if (t.failed()) {
      return ParseStatus::Truncated;
    }
    if (!is_dns_port(out.sport) && !is_dns_port(out.dport)) {
      return ParseStatus::NotDns;
    }
    if (len < 8) {
      return len == 0 ? ParseStatus::Truncated : ParseStatus::Malformed;
    }
    // Normally the UDP length ends inside the IP datagram. When it claims more, the IP length is
    // as likely to be the wrong one, so the captured bytes after it are read too (as Wireshark
    // does); never past the end of the frame.
    const std::size_t dns_len = std::min<std::size_t>(len - 8U, t.remaining() + beyond_ip);
    out.transport = Transport::Udp;
    return parse_dns(std::span(t.rest().data(), dns_len), out);
  }
  if (proto == kProtoTcp) {
    out.sport = t.u16();
    out.dport = t.u16();
    t.skip(8);
    const std::uint8_t offset = t.u8();
    if (t.failed()) {
      return ParseStatus::Truncated;
    }
    if (!is_dns_port(out.sport) && !is_dns_port(out.dport)) {
      return ParseStatus::NotDns;
    }
    const std::size_t header = (offset >> 4U) * 4U;
    if (header < 20) {
      return ParseStatus::Malformed;
    }
    // Handshakes and bare ACKs carry nothing; segments with data need stream reassembly.
    return payload.size() <= header ? ParseStatus::NotDns : ParseStatus::UnsupportedTransport;
  }
  return ParseStatus::UnsupportedTransport;
}

ParseStatus Parser::parse_dns(std::span<const std::byte> message, DnsMessage& out) noexcept {
  if (message.size() < LDNS_HEADER_SIZE) {
    return ParseStatus::Malformed;
  }
  // ldns' wire accessors take a uint8_t*: std::byte and uint8_t share representation.
  const auto* wire = reinterpret_cast<const std::uint8_t*>(message.data());  // NOLINT: see above
  out.size = static_cast<std::uint32_t>(message.size());
  out.id = LDNS_ID_WIRE(wire);
  out.flags = static_cast<std::uint16_t>((wire[2] << 8U) | wire[3]);
  out.qr = LDNS_QR_WIRE(wire) != 0;
  out.opcode = static_cast<std::uint8_t>(LDNS_OPCODE_WIRE(wire));
  out.rcode = static_cast<std::uint16_t>(LDNS_RCODE_WIRE(wire));
  out.qdcount = LDNS_QDCOUNT(wire);
  out.ancount = LDNS_ANCOUNT(wire);
  out.nscount = LDNS_NSCOUNT(wire);
  out.arcount = LDNS_ARCOUNT(wire);
  out.edns = EdnsInfo{};
  out.has_question = false;
  out.malformed_question = false;
  out.qtype = out.qclass = 0;
  out.qname.length = 0;
  out.qname.labels = 0;

  std::size_t pos = LDNS_HEADER_SIZE;
  if (out.qdcount != 0) {
    ldns_rdf* name = nullptr;
    if (ldns_wire2dname(&name, wire, message.size(), &pos) != LDNS_STATUS_OK || name == nullptr) {
      out.malformed_question = true;
      return ParseStatus::Malformed;
    }
    format_name(ldns_rdf_data(name), ldns_rdf_size(name), out.qname);
    ldns_rdf_deep_free(name);
    if (message.size() - pos < 4) {
      out.malformed_question = true;
      return ParseStatus::Malformed;
    }
    out.qtype = static_cast<std::uint16_t>((wire[pos] << 8U) | wire[pos + 1]);
    out.qclass = static_cast<std::uint16_t>((wire[pos + 2] << 8U) | wire[pos + 3]);
    pos += 4;
    out.has_question = true;
  }
  find_edns(WireReader{message.subspan(pos)}, out, out.edns);
  if (out.edns.present) {
    out.rcode = static_cast<std::uint16_t>(out.rcode | (out.edns.extended_rcode << 4U));
  }
  return ParseStatus::Ok;
}

}  // namespace dnsmon
