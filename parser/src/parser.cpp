#include "dnsmon/parser.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
// Before ldns, whose common.h otherwise defines true and false as ints.
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers): see above

#include <ldns/ldns.h>

#include "dnsmon/common/ascii.hpp"
#include "dnsmon/common/bytes.hpp"
#include "dnsmon/common/link.hpp"
#include "dnsmon/common/message_record.hpp"
#include "dnsmon/parser/detail/ip_reassembly.hpp"
#include "dnsmon/parser/detail/tcp_reassembly.hpp"

#include "wire_reader.hpp"

namespace dnsmon {
namespace {

using detail::WireReader;

// pcap LINKTYPE_* values (https://www.tcpdump.org/linktypes.html).

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;

constexpr std::uint8_t kProtoIpip = 4;
constexpr std::uint8_t kProtoIpv6 = 41;
constexpr std::uint8_t kProtoGre = 47;

constexpr std::uint16_t kEtherBridged = 0x6558;  // transparent Ethernet bridging (GRE, Geneve)
constexpr std::uint16_t kEtherErspan2 = 0x88BE;  // ERSPAN type I/II over GRE
constexpr std::uint16_t kEtherErspan3 = 0x22EB;  // ERSPAN type III over GRE

constexpr std::uint16_t kPortVxlan = 4789;
constexpr std::uint16_t kPortGeneve = 6081;
constexpr std::uint16_t kPortGtpU = 2152;
constexpr std::uint16_t kPortL2tp = 1701;
constexpr std::uint16_t kPortMdns = 5353;
constexpr std::uint16_t kPortLlmnr = 5355;

constexpr int kMaxTunnelDepth = 4;  // nested encapsulations followed before giving up

constexpr std::uint16_t kTypeOpt = 41;
constexpr std::uint16_t kOptionClientSubnet = 8;
constexpr std::uint16_t kOptionCookie = 10;

ParseStatus link_status(link::Status status) noexcept {
  switch (status) {
    case link::Status::Ok:
      return ParseStatus::Ok;
    case link::Status::Truncated:
      return ParseStatus::Truncated;
    case link::Status::NotIp:
      return ParseStatus::NotIp;
    case link::Status::BadIpHeader:
      return ParseStatus::BadIpHeader;
    case link::Status::Unsupported:
      return ParseStatus::UnsupportedLink;
  }
  return ParseStatus::UnsupportedLink;
}

// The bytes of p[0, n) (n <= 16) that a presentation name escapes ('.', '\\', and those outside
// printable ASCII) as a nonzero value, zero when there are none. Sixteen bytes are read: the
// caller makes sure they are inside the message. GCC and Clang vector extension: one compare per
// rule for all sixteen bytes.
std::uint64_t special_bytes(const std::uint8_t* p, std::size_t n) noexcept {
  using Bytes = std::uint8_t __attribute__((vector_size(16)));
  constexpr Bytes kLane{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  Bytes v;
  std::memcpy(&v, p, sizeof v);
  const auto special = ((v <= 0x20) | (v >= 0x7F) | (v == '.') | (v == '\\')) &
                       (kLane < static_cast<std::uint8_t>(n));
  std::array<std::uint64_t, 2> w{};
  static_assert(sizeof w == sizeof special);
  std::memcpy(w.data(), &special, sizeof w);
  return w[0] | w[1];
}

// Compression pointers followed in one name before it is refused as a loop. ldns allows
// LDNS_MAX_POINTERS (65535); a chain longer than the message has bytes must visit a pointer twice,
// which ldns would then follow until that limit and refuse: stopping at the message size refuses
// the same names, after fewer hops.
std::size_t max_name_pointers(std::size_t size) noexcept {
  return std::min<std::size_t>(size, LDNS_MAX_POINTERS);
}

// Decodes the (possibly compressed) name at pos into its presentation form: labels joined by
// '.', with '.', '\' and bytes outside printable ASCII escaped (RFC 4343 §2.1); the root is ".".
// On success pos is moved past the name as it stands in the message. The rules are ldns'
// (ldns_wire2dname), so both accept and refuse the same names: a pointer may go anywhere inside
// the message but not to its first byte, labels are at most 63 bytes, the name at most 255 bytes
// in wire form, and a loop of pointers is refused (max_name_pointers). Done here rather than by
// ldns because ldns_wire2dname allocates twice per name, the largest cost per packet
// (docs/performance.md).
bool decode_name(const std::uint8_t* wire, std::size_t size, std::size_t& pos,
                 QName& out) noexcept {
  const std::size_t max_pointers = max_name_pointers(size);
  constexpr std::size_t kMaxNameBytes = 255;
  std::size_t at = pos;
  std::size_t after = 0;  // where the name ends in the message (set at the first pointer)
  bool jumped = false;
  std::size_t pointers = 0;
  std::size_t wire_bytes = 1;  // the root label
  std::size_t len = 0;
  std::uint8_t labels = 0;
  char* const text = out.text.data();
  for (;;) {
    if (at >= size) {
      return false;
    }
    const std::uint8_t label = wire[at];
    if ((label & 0xC0U) == 0xC0U) {
      if (at + 1 >= size || ++pointers > max_pointers) {
        return false;
      }
      const std::size_t target = ((label & 0x3FU) << 8U) | wire[at + 1];
      if (target == 0 || target >= size) {
        return false;
      }
      if (!jumped) {
        after = at + 2;
        jumped = true;
      }
      at = target;
      continue;
    }
    if (label > 63) {
      return false;  // 0x40 and 0x80 label types are obsolete or unassigned
    }
    if (label == 0) {
      if (!jumped) {
        after = at + 1;
      }
      break;
    }
    if (at + 1 + label > size) {
      return false;
    }
    wire_bytes += 1U + label;
    if (wire_bytes > kMaxNameBytes) {
      return false;
    }
    if (labels != 0) {
      text[len++] = '.';
    }
    ++labels;
    // At most 255 wire bytes, each at most 4 characters: the 1024-byte buffer always fits.
    std::size_t i = at + 1;
    // Most labels need no escape: copy them sixteen bytes at a time when the message has sixteen
    // bytes to read there (the bytes copied past the label are overwritten or beyond `length`).
    while (i + 16 <= size && len + 16 <= out.text.size()) {
      const std::size_t n = std::min<std::size_t>(at + label + 1 - i, 16);
      if (n == 0 || special_bytes(wire + i, n) != 0) {
        break;
      }
      std::memcpy(text + len, wire + i, 16);
      len += n;
      i += n;
    }
    for (; i <= at + label; ++i) {
      const auto c = wire[i];
      if (c == '.' || c == '\\') {
        text[len++] = '\\';
        text[len++] = static_cast<char>(c);
      } else if (c < 0x21 || c > 0x7E) {
        text[len++] = '\\';
        text[len++] = static_cast<char>('0' + c / 100);
        text[len++] = static_cast<char>('0' + c / 10 % 10);
        text[len++] = static_cast<char>('0' + c % 10);
      } else {
        text[len++] = static_cast<char>(c);
      }
    }
    at += 1U + label;
  }
  if (labels == 0) {
    text[len++] = '.';
  }
  out.length = static_cast<std::uint16_t>(len);
  out.labels = labels;
  pos = after;
  return true;
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

// Reads the RR whose type field r is at, moving r past it: true if it is an OPT record, whose
// fields fill edns; false otherwise or when r fails (the RR is cut short).
bool read_opt(WireReader& r, EdnsInfo& edns) noexcept {
  const std::uint16_t type = r.u16();
  const std::uint16_t udp_size = r.u16();
  const std::uint8_t ext_rcode = r.u8();
  const std::uint8_t version = r.u8();
  const std::uint16_t eflags = r.u16();
  const auto rdata = r.take(r.u16());
  if (r.failed() || type != kTypeOpt) {
    return false;
  }
  edns.present = true;
  edns.udp_size = udp_size;
  edns.extended_rcode = ext_rcode;
  edns.version = version;
  edns.do_bit = (eflags & 0x8000U) != 0;
  WireReader opts{rdata};
  while (opts.remaining() >= 4) {
    const std::uint16_t code = opts.u16();
    opts.skip(opts.u16());
    if (opts.failed()) {
      break;
    }
    edns.client_subnet = edns.client_subnet || code == kOptionClientSubnet;
    edns.cookie = edns.cookie || code == kOptionCookie;
  }
  return true;
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
    if (r.failed() || read_opt(r, edns)) {
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Answers: the sections of a response walked with ldns' rules, without allocating.

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeNs = 2;
constexpr std::uint16_t kTypeCname = 5;
constexpr std::uint16_t kTypePtr = 12;
constexpr std::uint16_t kTypeSoa = 6;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kTypeTsig = 250;
constexpr std::uint16_t kTypeAny = 255;

// Label positions of names already checked in this message, each with the wire length of the
// name from there on (its root included). A pointer to one of them leads to a good rest of name:
// the rest was checked (and a pointer into a checked name cannot close a loop, since that name
// would then have been refused), so only the total length is left to check. Most owners (a
// pointer to the question name) and names in RDATA then cost a lookup instead of a walk.
// NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init): entries is left unset on purpose
struct CheckedNames {
  struct Entry {
    std::uint16_t at;
    std::uint16_t length;
  };

  std::array<Entry, 24> entries;  // NOLINT(cppcoreguidelines-pro-type-member-init): [0, count)
  std::size_t count = 0;

  // The wire length of the checked name at pos, 0 when pos is not a checked label.
  [[nodiscard]] std::size_t length_at(std::size_t pos) const noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      if (entries[i].at == pos) {
        return entries[i].length;
      }
    }
    return 0;
  }

  void add(std::size_t pos, std::size_t length) noexcept {
    if (count < entries.size()) {
      entries[count++] = {static_cast<std::uint16_t>(pos), static_cast<std::uint16_t>(length)};
    }
  }
};

// Checks the (possibly compressed) name at pos with ldns_wire2dname's rules (as decode_name) and
// moves pos past it as it stands in the message. The labels of a good name join `checked`.
bool check_name(const std::uint8_t* wire, std::size_t size, std::size_t& pos,
                CheckedNames& checked) noexcept {
  if (pos + 1 < size && (wire[pos] & 0xC0U) == 0xC0U) {
    // The usual owner and RDATA name: one pointer to a checked name.
    const std::size_t target = ((wire[pos] & 0x3FU) << 8U) | wire[pos + 1];
    if (target != 0 && target < size && checked.length_at(target) != 0) {
      pos += 2;
      return true;
    }
  }
  constexpr std::size_t kMaxNameBytes = 255;
  // The first labels walked: where each starts and the wire bytes before it.
  std::array<CheckedNames::Entry, 8> labels;  // NOLINT(cppcoreguidelines-pro-type-member-init)
  std::size_t label_count = 0;
  const std::size_t max_pointers = max_name_pointers(size);
  std::size_t at = pos;
  std::size_t after = 0;
  bool jumped = false;
  std::size_t pointers = 0;
  std::size_t wire_bytes = 1;  // the root label
  for (;;) {
    if (at >= size) {
      return false;
    }
    const std::uint8_t label = wire[at];
    if ((label & 0xC0U) == 0xC0U) {
      if (at + 1 >= size || ++pointers > max_pointers) {
        return false;
      }
      const std::size_t target = ((label & 0x3FU) << 8U) | wire[at + 1];
      if (target == 0 || target >= size) {
        return false;
      }
      if (!jumped) {
        after = at + 2;
        jumped = true;
      }
      at = target;
      if (const std::size_t rest = checked.length_at(at); rest != 0) {
        wire_bytes += rest - 1;
        if (wire_bytes > kMaxNameBytes) {
          return false;
        }
        break;
      }
      continue;
    }
    if (label > 63) {
      return false;
    }
    if (label == 0) {
      if (!jumped) {
        after = at + 1;
      }
      break;
    }
    if (at + 1 + label > size) {
      return false;
    }
    if (label_count < labels.size()) {
      labels[label_count++] = {static_cast<std::uint16_t>(at),
                               static_cast<std::uint16_t>(wire_bytes - 1)};
    }
    wire_bytes += 1U + label;
    if (wire_bytes > kMaxNameBytes) {
      return false;
    }
    at += 1U + label;
  }
  for (std::size_t i = 0; i < label_count; ++i) {
    checked.add(labels[i].at, wire_bytes - labels[i].length);
  }
  pos = after;
  return true;
}

// The first label byte of a name already checked: its leading pointers followed.
std::size_t name_start(const std::uint8_t* wire, std::size_t pos) noexcept {
  for (int hops = 0; (wire[pos] & 0xC0U) == 0xC0U && hops < 0x4000; ++hops) {
    pos = ((wire[pos] & 0x3FU) << 8U) | wire[pos + 1];
  }
  return pos;
}

// Whether the names at a and b (both checked) are the same, ASCII case ignored (RFC 4343).
bool same_name(const std::uint8_t* wire, std::size_t a, std::size_t b) noexcept {
  for (int labels = 0; labels < 128; ++labels) {
    a = name_start(wire, a);
    b = name_start(wire, b);
    if (a == b) {
      return true;
    }
    const std::uint8_t len = wire[a];
    if (len != wire[b]) {
      return false;
    }
    if (len == 0) {
      return true;
    }
    for (std::size_t i = 1; i <= len; ++i) {
      if (ascii::lower(wire[a + i]) != ascii::lower(wire[b + i])) {
        return false;
      }
    }
    a += 1U + len;
    b += 1U + len;
  }
  return false;
}

// ldns_rr_descript(type): the RDATA field list ldns reads a type with. The types below
// LDNS_RDATA_FIELD_DESCRIPTORS_COMMON are looked up once; ldns searches the few others in a list.
const ldns_rr_descriptor* descriptor_of(std::uint16_t type) noexcept {
  static const auto table = [] {
    std::array<const ldns_rr_descriptor*, LDNS_RDATA_FIELD_DESCRIPTORS_COMMON> t{};
    for (std::size_t i = 0; i < t.size(); ++i) {
      t[i] = ldns_rr_descript(static_cast<std::uint16_t>(i));
    }
    return t;
  }();
  return type < table.size() ? table[type] : ldns_rr_descript(type);
}

// One resource record as ldns_wire2rr reads it.
struct RrView {
  std::size_t owner = 0;
  std::uint16_t type = 0;
  std::uint32_t ttl = 0;
  std::size_t rdata = 0;  // the RDATA's first byte
  std::uint16_t rdlength = 0;
  std::uint8_t fields = 0;        // RDATA fields ldns keeps (saturating)
  std::size_t seventh_field = 0;  // where the seventh of them starts (an SOA's MINIMUM)
};

// Reads the RR at pos as ldns_wire2rr and ldns_wire2rdf do, moving pos where ldns goes next: past
// the RDATA fields its descriptor lists, which is not always the end of RDATA (ldns does not skip
// bytes beyond them, and a name field may run past it). False where ldns refuses the RR.
bool walk_rr(const std::uint8_t* wire, std::size_t size, std::size_t& pos, RrView& rr,
             CheckedNames& checked) noexcept {
  rr.owner = pos;
  if (!check_name(wire, size, pos, checked) || size - pos < 10) {
    return false;
  }
  rr.type = static_cast<std::uint16_t>((wire[pos] << 8U) | wire[pos + 1]);
  rr.ttl = (std::uint32_t{wire[pos + 4]} << 24U) | (std::uint32_t{wire[pos + 5]} << 16U) |
           (std::uint32_t{wire[pos + 6]} << 8U) | wire[pos + 7];
  rr.rdlength = static_cast<std::uint16_t>((wire[pos + 8] << 8U) | wire[pos + 9]);
  pos += 10;
  if (rr.rdlength > size - pos) {
    return false;
  }
  rr.rdata = pos;
  rr.fields = 0;
  const std::size_t end = pos + rr.rdlength;
  if (end == pos) {
    return true;  // no RDATA: ldns reads no field
  }
  // The most frequent types, whose ldns descriptor is one field: what the loop below does for them.
  switch (rr.type) {
    case kTypeA:
    case kTypeAaaa: {
      const std::size_t len = rr.type == kTypeA ? 4 : 16;
      if (len > rr.rdlength) {
        return false;
      }
      pos += len;
      rr.fields = 1;
      return true;
    }
    case kTypeCname:
    case kTypeNs:
    case kTypePtr:
      rr.fields = 1;
      return check_name(wire, size, pos, checked);
    case kTypeOpt:
      pos = end;
      rr.fields = 1;
      return true;
    default:
      break;
  }
  const ldns_rr_descriptor* descriptor = descriptor_of(rr.type);
  // ldns_rr_descriptor_maximum and ldns_rr_descriptor_field_type, read in place.
  const bool variable = descriptor->_variable != LDNS_RDF_TYPE_NONE;
  const std::size_t max_fields = variable ? UINT_MAX : descriptor->_maximum;
  std::uint8_t index = 0;  // ldns' own counter is 8 bits wide, and wraps the same way
  for (std::size_t steps = 0; pos < end && index < max_fields; ++steps) {
    if (steps > LDNS_MAX_RDFLEN) {
      return false;  // a descriptor that makes no progress: cannot happen with ldns' table
    }
    const std::size_t field = pos;
    std::size_t len = 0;
    bool kept = false;
    switch (index < descriptor->_maximum ? descriptor->_wireformat[index] : descriptor->_variable) {
      case LDNS_RDF_TYPE_DNAME:
        if (!check_name(wire, size, pos, checked)) {
          return false;
        }
        kept = true;
        break;
      case LDNS_RDF_TYPE_CLASS:
      case LDNS_RDF_TYPE_ALG:
      case LDNS_RDF_TYPE_CERTIFICATE_USAGE:
      case LDNS_RDF_TYPE_SELECTOR:
      case LDNS_RDF_TYPE_MATCHING_TYPE:
      case LDNS_RDF_TYPE_INT8:
        len = 1;
        break;
      case LDNS_RDF_TYPE_TYPE:
      case LDNS_RDF_TYPE_INT16:
      case LDNS_RDF_TYPE_CERT_ALG:
        len = 2;
        break;
      case LDNS_RDF_TYPE_TIME:
      case LDNS_RDF_TYPE_INT32:
      case LDNS_RDF_TYPE_A:
      case LDNS_RDF_TYPE_PERIOD:
        len = 4;
        break;
      case LDNS_RDF_TYPE_TSIGTIME:
      case LDNS_RDF_TYPE_EUI48:
        len = 6;
        break;
      case LDNS_RDF_TYPE_ILNP64:
      case LDNS_RDF_TYPE_EUI64:
        len = 8;
        break;
      case LDNS_RDF_TYPE_AAAA:
        len = 16;
        break;
      case LDNS_RDF_TYPE_STR:
      case LDNS_RDF_TYPE_NSEC3_SALT:
      case LDNS_RDF_TYPE_TAG:
      case LDNS_RDF_TYPE_B32_EXT:
      case LDNS_RDF_TYPE_NSEC3_NEXT_OWNER:
        len = std::size_t{wire[pos]} + 1;
        break;
      case LDNS_RDF_TYPE_INT16_DATA:
        if (end - pos < 2) {
          return false;
        }
        len = ((std::size_t{wire[pos]} << 8U) | wire[pos + 1]) + 2;
        break;
      case LDNS_RDF_TYPE_HIP:
        if (end - pos < 4) {
          return false;
        }
        len = std::size_t{wire[pos]} + ((std::size_t{wire[pos + 2]} << 8U) | wire[pos + 3]) + 4;
        break;
      case LDNS_RDF_TYPE_APL:
      case LDNS_RDF_TYPE_B64:
      case LDNS_RDF_TYPE_HEX:
      case LDNS_RDF_TYPE_NSEC:
      case LDNS_RDF_TYPE_UNKNOWN:
      case LDNS_RDF_TYPE_SERVICE:
      case LDNS_RDF_TYPE_LOC:
      case LDNS_RDF_TYPE_WKS:
      case LDNS_RDF_TYPE_NSAP:
      case LDNS_RDF_TYPE_ATMA:
      case LDNS_RDF_TYPE_IPSECKEY:
      case LDNS_RDF_TYPE_LONG_STR:
      case LDNS_RDF_TYPE_AMTRELAY:
      case LDNS_RDF_TYPE_SVCPARAMS:
      case LDNS_RDF_TYPE_NONE:
        len = end - pos;
        break;
      default:
        break;  // a field type ldns' reader does not know: no field, no progress
    }
    if (len > 0) {
      if (len > end - pos) {
        return false;
      }
      pos += len;
      kept = true;
    }
    if (kept) {
      if (rr.fields == 6) {
        rr.seventh_field = field;
      }
      if (rr.fields < 255) {
        ++rr.fields;
      }
    }
    ++index;
  }
  return true;
}

// An answer RR that the CNAME chain may need: a CNAME (target: its name) or one of the asked type.
struct ChainRr {
  std::uint32_t owner;
  std::uint32_t target;
  std::uint16_t type;
};

constexpr std::size_t kChainRrs = 32;  // kept while walking; more are found again by a second walk

// Walks the sections after the first question (which ends at pos) as ldns_wire2pkt does, filling
// out; a response that ldns would refuse leaves out empty (decoded false). When every RR up to the
// first OPT record ended where its RDATA length says (as in any well-formed message), the walk has
// seen what find_edns would: it fills edns and returns true, sparing the second walk.
bool decode_answers(const std::uint8_t* wire, std::size_t size, std::size_t pos,
                    const DnsMessage& msg, DnsAnswers& out, EdnsInfo& edns) noexcept {
  CheckedNames checked;
  if (msg.has_question) {
    // decode_name found the question name good: its labels (those in place) join `checked`.
    std::size_t q = LDNS_HEADER_SIZE;
    (void)check_name(wire, size, q, checked);
  }
  for (unsigned i = 1; i < msg.qdcount; ++i) {
    if (!check_name(wire, size, pos, checked) || size - pos < 4) {
      return false;
    }
    pos += 4;
  }
  bool exact = true;  // every RR so far ended at the end of its RDATA
  const std::uint16_t qtype = msg.qtype;
  const bool chain = msg.has_question && qtype != kTypeCname && qtype != kTypeAny;
  const std::size_t answers_at = pos;
  std::array<ChainRr, kChainRrs> kept;  // NOLINT(cppcoreguidelines-pro-type-member-init)
  std::size_t kept_count = 0;
  bool overflow = false;
  std::uint16_t owned_by_qname = 0;  // answers of the asked type owned by the question name
  RrView rr;
  bool ok = true;
  for (unsigned i = 0; i < msg.ancount && ok; ++i) {
    ok = walk_rr(wire, size, pos, rr, checked);
    if (!ok) {
      break;
    }
    exact = exact && pos == rr.rdata + rr.rdlength;
    const bool asked = qtype == kTypeAny || rr.type == qtype;
    if (rr.type == kTypeCname) {
      ++out.cnames;
    }
    if (msg.has_question && asked &&
        ((wire[rr.owner] == 0xC0U && wire[rr.owner + 1] == LDNS_HEADER_SIZE) ||
         same_name(wire, rr.owner, LDNS_HEADER_SIZE))) {
      ++owned_by_qname;
    }
    if (chain && (rr.type == kTypeCname || asked)) {
      if (kept_count < kept.size()) {
        kept[kept_count++] = {
            static_cast<std::uint32_t>(rr.owner),
            rr.type == kTypeCname && rr.fields > 0 ? static_cast<std::uint32_t>(rr.rdata) : 0U,
            rr.type};
      } else {
        overflow = true;
      }
    }
    if ((rr.type == kTypeA || rr.type == kTypeAaaa) && rr.fields > 0 &&
        out.address_count < DnsAnswers::kMaxAddresses) {
      AnswerAddress& a = out.addresses[out.address_count++];
      const std::size_t n = rr.type == kTypeA ? 4 : 16;
      std::memcpy(a.addr.bytes.data(), wire + rr.rdata, n);
      a.addr.family = rr.type == kTypeA ? 4 : 6;
      a.ttl = rr.ttl;
    }
  }
  for (unsigned i = 0; i < msg.nscount && ok; ++i) {
    ok = walk_rr(wire, size, pos, rr, checked);
    exact = exact && pos == rr.rdata + rr.rdlength;
    if (ok && rr.type == kTypeSoa && !out.soa && rr.fields >= 7) {
      out.soa = true;
      out.soa_ttl = rr.ttl;
      const std::uint8_t* m = wire + rr.seventh_field;
      out.soa_minimum = (std::uint32_t{m[0]} << 24U) | (std::uint32_t{m[1]} << 16U) |
                        (std::uint32_t{m[2]} << 8U) | m[3];
    }
  }
  bool edns_known = false;
  // ldns_wire2pkt takes a TSIG record out of the additional count as it reads it, and its loop
  // then reads one record less: so does this one.
  unsigned additional = msg.arcount;
  for (unsigned i = 0; i < additional && ok; ++i) {
    ok = walk_rr(wire, size, pos, rr, checked);
    if (ok && rr.type == kTypeTsig) {
      --additional;
    }
    exact = exact && pos == rr.rdata + rr.rdlength;
    if (ok && exact && !edns_known && rr.type == kTypeOpt) {
      WireReader r{std::as_bytes(std::span(wire, size)).subspan(rr.rdata - 10)};
      edns_known = read_opt(r, edns);
    }
  }
  if (!ok) {
    out = DnsAnswers{};
    return edns_known;
  }
  edns_known = edns_known || exact;
  out.decoded = true;
  if (!msg.has_question) {
    return edns_known;
  }
  if (!chain || out.cnames == 0) {
    out.qtype_answers = owned_by_qname;
    return edns_known;
  }
  // Follows the chain from the question name, the first CNAME owned by each name in turn, then
  // counts the answers of the asked type owned by its end. Each pass reads the RRs kept above, or
  // when there were too many, walks the answer section again (it walked without error once).
  const auto for_each = [&](auto&& fn) noexcept {
    if (!overflow) {
      for (std::size_t i = 0; i < kept_count; ++i) {
        if (fn(kept[i])) {
          return;
        }
      }
      return;
    }
    std::size_t at = answers_at;
    RrView again;
    for (unsigned i = 0; i < msg.ancount; ++i) {
      (void)walk_rr(wire, size, at, again, checked);
      const ChainRr c{static_cast<std::uint32_t>(again.owner),
                      again.type == kTypeCname && again.fields > 0
                          ? static_cast<std::uint32_t>(again.rdata)
                          : 0U,
                      again.type};
      if ((c.type == kTypeCname || c.type == qtype) && fn(c)) {
        return;
      }
    }
  };
  std::size_t target = LDNS_HEADER_SIZE;
  for (unsigned hop = 0; hop < DnsAnswers::kMaxCnameHops; ++hop) {
    std::size_t next = 0;
    for_each([&](const ChainRr& c) noexcept {
      if (c.type == kTypeCname && c.target != 0 && same_name(wire, c.owner, target)) {
        next = c.target;
        return true;
      }
      return false;
    });
    if (next == 0) {
      break;
    }
    target = next;
  }
  if (target == LDNS_HEADER_SIZE) {
    out.qtype_answers = owned_by_qname;
    return edns_known;
  }
  std::uint16_t count = 0;
  for_each([&](const ChainRr& c) noexcept {
    if (c.type == qtype && same_name(wire, c.owner, target)) {
      ++count;
    }
    return false;
  });
  out.qtype_answers = count;
  return edns_known;
}

// Hands one fragment to the reassembler: Ok with `whole` filled when it completes its datagram,
// FragmentHeld or FragmentDropped otherwise. src and dst are 4 or 16 address bytes.
ParseStatus add_fragment(detail::IpReassembler& ip, std::span<const std::byte> src,
                         std::span<const std::byte> dst, std::uint8_t family, std::uint32_t id,
                         std::uint8_t proto, std::uint32_t offset_bytes, bool more,
                         std::span<const std::byte> payload, std::int64_t ts_ns,
                         detail::ReassembledDatagram& whole) noexcept {
  detail::FragmentKey key;
  std::memcpy(key.src.data(), src.data(), src.size());
  std::memcpy(key.dst.data(), dst.data(), dst.size());
  key.id = id;
  key.proto = proto;
  key.family = family;
  switch (ip.add(key, offset_bytes, more, payload, ts_ns, whole)) {
    case detail::FragmentResult::Held:
      return ParseStatus::FragmentHeld;
    case detail::FragmentResult::Dropped:
      return ParseStatus::FragmentDropped;
    case detail::FragmentResult::Complete:
      break;
  }
  return ParseStatus::Ok;
}

}  // namespace

std::string_view parse_status_name(ParseStatus status) noexcept {
  switch (status) {
    case ParseStatus::Ok:
      return "ok";
    case ParseStatus::FragmentHeld:
      return "ip_fragment_held";
    case ParseStatus::FragmentDropped:
      return "ip_fragment_dropped";
    case ParseStatus::TcpNoMessage:
      return "tcp_no_message";
    case ParseStatus::Encrypted:
      return "encrypted";
    case ParseStatus::Truncated:
      return "truncated";
    case ParseStatus::UnsupportedLink:
      return "unsupported_link";
    case ParseStatus::UnsupportedTunnel:
      return "unsupported_tunnel";
    case ParseStatus::NotIp:
      return "not_ip";
    case ParseStatus::BadIpHeader:
      return "bad_ip_header";
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
  switch (t) {
    case Transport::Tcp:
      return "tcp";
    case Transport::Dot:
      return "dot";
    case Transport::Doh:
      return "doh";
    case Transport::Udp:
    case Transport::Count:
      break;
  }
  return "udp";
}

std::string_view protocol_name(Protocol p) noexcept {
  switch (p) {
    case Protocol::Mdns:
      return "mdns";
    case Protocol::Llmnr:
      return "llmnr";
    default:
      return "dns";
  }
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

// Per-frame state threaded through the layers.
struct Parser::Context {
  MessageSink& sink;
  DnsMessage& msg;
  std::int64_t ts_ns = 0;
  int depth = 0;           // tunnels entered so far
  unsigned delivered = 0;  // messages handed to the sink
  unsigned malformed = 0;  // messages that failed to decode
};

namespace {

// Constructs a reassembler, turning an allocation failure into one that says which table it was.
template <class Table, class Options>
std::unique_ptr<Table> make_table(const char* name, const Options& options) {
  try {
    return std::make_unique<Table>(options);
  } catch (const std::bad_alloc&) {
    throw TableAllocationError(name, Table::planned_bytes(options));
  }
}

}  // namespace

Parser::Parser(const ParserOptions& options)
    : ip_(make_table<detail::IpReassembler>(
          "ip_fragments",
          detail::IpReassemblyOptions{.max_datagrams = options.fragment_datagrams,
                                      .max_datagram_bytes = 65535,
                                      .max_fragments = 64,
                                      .memory_budget_bytes = options.fragment_memory_bytes,
                                      .timeout_ns = options.fragment_timeout_ns,
                                      .hash_seed = 0})),
      tcp_(make_table<detail::TcpReassembler>(
          "tcp_streams",
          detail::TcpReassemblyOptions{.max_flows = options.tcp_flows,
                                       .max_flow_bytes = 65535 + 2,
                                       .memory_budget_bytes = options.tcp_memory_bytes,
                                       .window_bytes = 256 * 1024,
                                       .idle_timeout_ns = options.tcp_idle_timeout_ns,
                                       .hole_timeout_ns = 1'000'000'000,
                                       .hash_seed = 0})) {
  port_kinds_[kPortVxlan] = PortKind::Vxlan;
  port_kinds_[kPortGeneve] = PortKind::Geneve;
  port_kinds_[kPortGtpU] = PortKind::GtpU;
  port_kinds_[kPortL2tp] = PortKind::L2tp;
  for (auto p : options.encrypted_ports) {
    port_kinds_[p] = PortKind::Encrypted;
  }
  if (options.mdns) {
    port_kinds_[kPortMdns] = PortKind::Mdns;
  }
  if (options.llmnr) {
    port_kinds_[kPortLlmnr] = PortKind::Llmnr;
  }
  for (auto p : options.dns_ports) {
    port_kinds_[p] = PortKind::Dns;  // a configured DNS port wins over everything else
  }
  tcp_capacity_ = options.tcp_flows;
}

Parser::~Parser() = default;

void Parser::publish_tcp_gauges() noexcept {
  t_flows_gauge_.set(tcp_->flows());
  t_memory_gauge_.set(tcp_->memory_bytes());
}

ReassemblyStats Parser::stats() const noexcept {
  ReassemblyStats out;
  const auto ip = ip_->stats();
  out.ip = {ip.fragments, ip.reassembled,        ip.timed_out, ip.evicted,    ip.over_budget,
            ip.too_large, ip.too_many_fragments, ip.overlaps,  ip.duplicates, ip.invalid};
  out.ip_in_progress = ip.in_progress;
  out.ip_memory_bytes = ip.memory_bytes;
  out.ip_capacity = ip_->options().max_datagrams;
  const auto& t = tcp_->stats();
  auto get = [](const SingleWriterCounter& c) { return c.get(); };
  out.tcp = {get(t.segments), get(t.messages),  get(t.out_of_order),  get(t.duplicates),
             get(t.gaps),     get(t.resyncs),   get(t.bytes_skipped), get(t.midstream),
             get(t.evicted),  get(t.timed_out), get(t.oversized),     get(t.flows_closed)};
  out.tcp_flows = get(t_flows_gauge_);
  out.tcp_memory_bytes = get(t_memory_gauge_);
  out.tcp_capacity = tcp_capacity_;
  return out;
}

ParseStatus Parser::parse(const FrameView& frame, MessageSink& sink) noexcept {
  DnsMessage& msg = scratch_;
  msg.ts_ns = frame.header.ts_ns;
  msg.reassembled = false;
  msg.malformed_question = false;
  Context ctx{sink, msg, frame.header.ts_ns};
  last_ts_ns_ = frame.header.ts_ns;
  // Unsigned difference: a damaged file can carry any timestamp, and a signed one could overflow.
  if (frame.header.ts_ns < last_expire_ns_ || static_cast<std::uint64_t>(frame.header.ts_ns) -
                                                      static_cast<std::uint64_t>(last_expire_ns_) >=
                                                  1'000'000'000U) {
    expire(ctx);
  }
  if (frame.header.link_type == record::kLinkType) [[unlikely]] {
    return parse_record(ctx, frame.bytes);
  }
  return parse_link(ctx, frame.header.link_type, frame.bytes);
}

// A message that its source decoded from its transport already (common/message_record.hpp).
ParseStatus Parser::parse_record(Context& ctx, std::span<const std::byte> bytes) noexcept {
  record::Header h;
  std::span<const std::byte> message;
  if (!record::decode(bytes, h, message)) {
    return bytes.size() < record::kHeaderBytes ? ParseStatus::Truncated
                                               : ParseStatus::UnsupportedLink;
  }
  DnsMessage& out = ctx.msg;
  out.src.family = out.dst.family = h.family;
  out.src.bytes = h.src;
  out.dst.bytes = h.dst;
  out.sport = h.sport;
  out.dport = h.dport;
  out.reassembled = (h.flags & record::kFlagReassembled) != 0;
  const PortKind skind = port_kind(h.sport);
  const PortKind dkind = port_kind(h.dport);
  // The source knows the message is DNS; the ports only tell mDNS and LLMNR apart.
  Protocol protocol = Protocol::Dns;
  if (skind != PortKind::Dns && dkind != PortKind::Dns) {
    if (skind == PortKind::Mdns || dkind == PortKind::Mdns) {
      protocol = Protocol::Mdns;
    } else if (skind == PortKind::Llmnr || dkind == PortKind::Llmnr) {
      protocol = Protocol::Llmnr;
    }
  }
  // record::decode() admits the four transports only, numbered as Transport's values.
  static_assert(record::kTransportDoh == static_cast<std::uint8_t>(Transport::Doh));
  return deliver(ctx, message, static_cast<Transport>(h.transport), protocol);
}

// Periodic clean-up in packet time: datagrams and streams that wait too long are given up, so
// their memory comes back even when no new fragment or segment pushes them out.
void Parser::expire(Context& ctx) noexcept {
  last_expire_ns_ = ctx.ts_ns;
  ip_->expire(ctx.ts_ns);
  tcp_->expire(ctx.ts_ns, [this, &ctx](const detail::TcpFlowKey& flow,
                                       std::span<const std::byte> message) noexcept {
    deliver_flow(ctx, flow, message);
  });
  publish_tcp_gauges();
}

// A message that the TCP reassembler releases outside a segment of its flow (a hole given up in
// expiry or at the end): its addresses come from the flow.
void Parser::deliver_flow(Context& ctx, const detail::TcpFlowKey& flow,
                          std::span<const std::byte> message) noexcept {
  DnsMessage& out = ctx.msg;
  out.src.family = out.dst.family = flow.family;
  out.src.bytes = flow.src;
  out.dst.bytes = flow.dst;
  out.sport = flow.sport;
  out.dport = flow.dport;
  const Protocol protocol =
      port_kind(flow.sport) == PortKind::Llmnr || port_kind(flow.dport) == PortKind::Llmnr
          ? Protocol::Llmnr
          : Protocol::Dns;
  (void)deliver(ctx, message, Transport::Tcp, protocol);
}

void Parser::finish(MessageSink& sink) noexcept {
  DnsMessage& msg = scratch_;
  msg.ts_ns = last_ts_ns_;
  msg.reassembled = false;
  msg.malformed_question = false;
  Context ctx{sink, msg, last_ts_ns_};
  tcp_->flush(last_ts_ns_, [this, &ctx](const detail::TcpFlowKey& flow,
                                        std::span<const std::byte> message) noexcept {
    deliver_flow(ctx, flow, message);
  });
  publish_tcp_gauges();
}

ParseStatus Parser::parse_link(Context& ctx, std::uint32_t link_type,
                               std::span<const std::byte> bytes) noexcept {
  return parse_packet(ctx, link::walk(link_type, bytes));
}

ParseStatus Parser::parse_packet(Context& ctx, const link::Packet& packet) noexcept {
  if (packet.status != link::Status::Ok) {
    return link_status(packet.status);
  }
  return parse_ip(ctx, packet.bytes, packet.version);
}

ParseStatus Parser::parse_ip(Context& ctx, std::span<const std::byte> packet,
                             std::uint8_t version) noexcept {
  DnsMessage& out = ctx.msg;
  WireReader r{packet};
  if (version == 4) {
    const std::uint8_t vihl = r.u8();
    r.skip(1);
    const std::uint16_t total = r.u16();
    const std::uint16_t ident = r.u16();
    const std::uint16_t frag = r.u16();
    r.skip(1);
    const std::uint8_t proto = r.u8();
    r.skip(2);
    const auto src = r.take(4);
    const auto dst = r.take(4);
    if (r.failed()) {
      return ParseStatus::Truncated;
    }
    const std::size_t ihl = std::size_t{vihl & 0x0FU} * 4U;
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
    out.src.family = out.dst.family = 4;
    std::memcpy(out.src.bytes.data(), src.data(), 4);
    std::memcpy(out.dst.bytes.data(), dst.data(), 4);
    const auto payload = packet.subspan(ihl, end - ihl);
    if ((frag & 0x3FFFU) == 0) {
      return parse_transport(ctx, proto, payload, packet.size() - end);
    }
    // A fragment. Reassembly needs its true length: a fragment cut by the snapshot length or
    // without a total length cannot be placed. A first fragment cut that way still holds the
    // transport header and usually the DNS header and question: decode what was captured.
    if (total == 0 || total > packet.size()) {
      if ((frag & 0x1FFFU) == 0 && total > packet.size()) {
        return parse_transport(ctx, proto, payload, 0);
      }
      return ParseStatus::Truncated;
    }
    detail::ReassembledDatagram whole;
    const ParseStatus held = add_fragment(*ip_, src, dst, 4, ident, proto, (frag & 0x1FFFU) * 8U,
                                          (frag & 0x2000U) != 0, payload, ctx.ts_ns, whole);
    if (held != ParseStatus::Ok) {
      return held;
    }
    out.reassembled = true;
    return parse_transport(ctx, whole.proto, whole.payload, 0);
  }

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
  const bool length_known = plen != 0 && 40U + plen <= packet.size();
  if (plen != 0 && 40U + plen < end) {
    end = 40U + plen;
  }
  out.src.family = out.dst.family = 6;
  std::memcpy(out.src.bytes.data(), src.data(), 16);
  std::memcpy(out.dst.bytes.data(), dst.data(), 16);
  WireReader x{packet.subspan(40, end - 40)};
  bool fragmented = false;
  // Extension headers (RFC 8200 §4): hop-by-hop, routing, destination options, fragment, AH. After
  // reassembly the walk goes on over the reassembled payload, which may start with more of them.
  for (int guard = 0; guard < 16; ++guard) {
    if (next == 0 || next == 43 || next == 60) {
      const std::uint8_t nh = x.u8();
      const std::size_t len = (static_cast<std::size_t>(x.u8()) + 1) * 8;
      x.skip(len - 2);
      next = nh;
    } else if (next == 44 && !fragmented) {
      const std::uint8_t nh = x.u8();
      x.skip(1);
      const std::uint16_t off_m = x.u16();
      const std::uint32_t ident = x.u32();
      if (x.failed()) {
        return ParseStatus::Truncated;
      }
      if (off_m == 0) {
        next = nh;  // an atomic fragment (RFC 6946): the whole datagram is here
        continue;
      }
      if (!length_known) {
        // As for IPv4: a cut first fragment is decoded as far as it goes.
        if ((off_m & 0xFFF8U) == 0 && plen != 0) {
          return parse_transport(ctx, nh, x.rest(), 0);
        }
        return ParseStatus::Truncated;
      }
      detail::ReassembledDatagram whole;
      const ParseStatus held = add_fragment(*ip_, src, dst, 6, ident, nh, off_m & 0xFFF8U,
                                            (off_m & 1U) != 0, x.rest(), ctx.ts_ns, whole);
      if (held != ParseStatus::Ok) {
        return held;
      }
      out.reassembled = true;
      fragmented = true;
      next = whole.proto;
      x = WireReader{whole.payload};
      continue;
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
  return parse_transport(ctx, next, x.rest(), fragmented ? 0 : packet.size() - end);
}

ParseStatus Parser::parse_transport(Context& ctx, std::uint8_t proto,
                                    std::span<const std::byte> payload,
                                    std::size_t beyond_ip) noexcept {
  switch (proto) {
    case kProtoUdp:
      return parse_udp(ctx, payload, beyond_ip);
    case kProtoTcp:
      return parse_tcp(ctx, payload);
    case kProtoIpip:
    case kProtoIpv6:
      if (++ctx.depth > kMaxTunnelDepth) {
        return ParseStatus::UnsupportedTunnel;
      }
      return parse_ip(ctx, payload, proto == kProtoIpip ? 4 : 6);
    case kProtoGre:
      if (++ctx.depth > kMaxTunnelDepth) {
        return ParseStatus::UnsupportedTunnel;
      }
      return parse_gre(ctx, payload);
    default:
      return ParseStatus::UnsupportedTransport;
  }
}

// GRE (RFC 2784/2890): flags and version, protocol type, then the optional checksum, key and
// sequence number words. ERSPAN (type II over 0x88BE with a sequence number, type III over 0x22EB)
// adds its own header before the mirrored Ethernet frame.
ParseStatus Parser::parse_gre(Context& ctx, std::span<const std::byte> payload) noexcept {
  WireReader r{payload};
  const std::uint16_t flags = r.u16();
  const std::uint16_t protocol = r.u16();
  if (r.failed()) {
    return ParseStatus::Truncated;
  }
  if ((flags & 0x0007U) == 1 && protocol == 0x880B) {
    // PPTP's enhanced GRE (RFC 2637 §4.1): payload length and call id, optional sequence and
    // acknowledgement numbers, then a PPP frame.
    r.skip(4);
    r.skip((flags & 0x1000U) != 0 ? 4 : 0);
    r.skip((flags & 0x0080U) != 0 ? 4 : 0);
    return r.failed() ? ParseStatus::Truncated : parse_packet(ctx, link::ppp(r.rest()));
  }
  if ((flags & 0x0007U) != 0) {
    return ParseStatus::UnsupportedTunnel;
  }
  const bool has_sequence = (flags & 0x1000U) != 0;
  r.skip((flags & 0x8000U) != 0 ? 4 : 0);  // checksum + reserved
  r.skip((flags & 0x2000U) != 0 ? 4 : 0);  // key
  r.skip(has_sequence ? 4 : 0);
  if (r.failed()) {
    return ParseStatus::Truncated;
  }
  switch (protocol) {
    case link::kEtherIpv4:
      return parse_ip(ctx, r.rest(), 4);
    case link::kEtherIpv6:
      return parse_ip(ctx, r.rest(), 6);
    case kEtherBridged:
      return parse_packet(ctx, link::ethernet(r.rest()));
    case kEtherErspan2:
      if (has_sequence) {
        r.skip(8);  // type II header; type I has none and no sequence number
      }
      return r.failed() ? ParseStatus::Truncated : parse_packet(ctx, link::ethernet(r.rest()));
    case kEtherErspan3: {
      r.skip(11);
      const std::uint8_t last = r.u8();
      r.skip((last & 0x01U) != 0 ? 8 : 0);  // O bit: platform-specific subheader follows
      return r.failed() ? ParseStatus::Truncated : parse_packet(ctx, link::ethernet(r.rest()));
    }
    default:
      return ParseStatus::UnsupportedTunnel;
  }
}

ParseStatus Parser::parse_udp(Context& ctx, std::span<const std::byte> payload,
                              std::size_t beyond_ip) noexcept {
  DnsMessage& out = ctx.msg;
  WireReader t{payload};
  const std::uint16_t sport = t.u16();
  const std::uint16_t dport = t.u16();
  const std::uint16_t len = t.u16();
  t.skip(2);
  if (t.failed()) {
    return ParseStatus::Truncated;
  }
  const PortKind skind = port_kind(sport);
  const PortKind dkind = port_kind(dport);
  // The DNS side decides; a tunnel is recognised by its destination port.
  PortKind kind = PortKind::None;
  for (const PortKind k : {PortKind::Dns, PortKind::Mdns, PortKind::Llmnr}) {
    if (skind == k || dkind == k) {
      kind = k;
      break;
    }
  }
  if (kind == PortKind::None) {
    if (dkind == PortKind::Vxlan || dkind == PortKind::Geneve || dkind == PortKind::GtpU ||
        dkind == PortKind::L2tp) {
      kind = dkind;
    } else if (skind == PortKind::L2tp) {
      kind = skind;  // L2TP answers from port 1701 to the port its peer chose
    } else if (skind == PortKind::Encrypted || dkind == PortKind::Encrypted) {
      return ParseStatus::Encrypted;
    } else {
      return ParseStatus::NotDns;
    }
  }
  if (len < 8) {
    return len == 0 ? ParseStatus::Truncated : ParseStatus::Malformed;
  }
  // Normally the UDP length ends inside the IP datagram. When it claims more, the IP length is as
  // likely to be the wrong one, so the captured bytes after it are read too (as Wireshark does);
  // never past the end of the frame.
  const std::size_t body_len = std::min<std::size_t>(len - 8U, t.remaining() + beyond_ip);
  const std::span<const std::byte> body(t.rest().data(), body_len);
  if (kind != PortKind::Dns && kind != PortKind::Mdns && kind != PortKind::Llmnr) {
    return parse_udp_tunnel(ctx, kind, body);
  }
  out.sport = sport;
  out.dport = dport;
  const Protocol protocol = kind == PortKind::Mdns    ? Protocol::Mdns
                            : kind == PortKind::Llmnr ? Protocol::Llmnr
                                                      : Protocol::Dns;
  return deliver(ctx, body, Transport::Udp, protocol);
}

ParseStatus Parser::parse_udp_tunnel(Context& ctx, PortKind kind,
                                     std::span<const std::byte> body) noexcept {
  if (++ctx.depth > kMaxTunnelDepth) {
    return ParseStatus::UnsupportedTunnel;
  }
  switch (kind) {
    case PortKind::Vxlan:
      // VXLAN (RFC 7348): 8-byte header with the I flag, then an Ethernet frame.
      if (body.size() < 8) {
        return ParseStatus::Truncated;
      }
      return parse_packet(ctx, link::ethernet(body.subspan(8)));
    case PortKind::Geneve: {
      // Geneve (RFC 8926): version and option length, flags, protocol type, VNI, options.
      WireReader g{body};
      const std::uint8_t ver_opt = g.u8();
      g.skip(1);
      const std::uint16_t protocol = g.u16();
      g.skip(4);
      g.skip(std::size_t{ver_opt & 0x3FU} * 4U);
      if (g.failed()) {
        return ParseStatus::Truncated;
      }
      if ((ver_opt >> 6U) != 0) {
        return ParseStatus::UnsupportedTunnel;
      }
      if (protocol == kEtherBridged) {
        return parse_packet(ctx, link::ethernet(g.rest()));
      }
      if (protocol == link::kEtherIpv4 || protocol == link::kEtherIpv6) {
        return parse_ip(ctx, g.rest(), protocol == link::kEtherIpv4 ? 4 : 6);
      }
      return ParseStatus::UnsupportedTunnel;
    }
    case PortKind::GtpU:
      return parse_gtpu(ctx, body);
    case PortKind::L2tp:
      return parse_l2tp(ctx, body);
    default:
      return ParseStatus::NotDns;
  }
}

// GTP-U (3GPP TS 29.281): flags (version 1, protocol type GTP), message type, length, TEID; the
// E, S and PN flags add a sequence number, an N-PDU number and the first extension header type;
// extension headers are chained, each with its length in 4-byte units and the next type at its
// end. Only a T-PDU (type 255) carries a user packet, an IP packet in practice.
ParseStatus Parser::parse_gtpu(Context& ctx, std::span<const std::byte> body) noexcept {
  constexpr int kMaxExtensions = 16;
  WireReader g{body};
  const std::uint8_t flags = g.u8();
  const std::uint8_t type = g.u8();
  g.skip(6);
  if (g.failed()) {
    return ParseStatus::Truncated;
  }
  if ((flags >> 5U) != 1 || (flags & 0x10U) == 0) {
    return ParseStatus::UnsupportedTunnel;  // GTP' or another version
  }
  if ((flags & 0x07U) != 0) {
    g.skip(3);
    std::uint8_t next = g.u8();
    for (int n = 0; next != 0; ++n) {
      if (n == kMaxExtensions) {
        return ParseStatus::UnsupportedTunnel;
      }
      const std::uint8_t units = g.u8();
      if (units == 0) {
        return ParseStatus::Malformed;
      }
      g.skip(units * 4U - 2U);
      next = g.u8();
      if (g.failed()) {
        return ParseStatus::Truncated;
      }
    }
  }
  if (g.failed()) {
    return ParseStatus::Truncated;
  }
  if (type != 255) {
    return ParseStatus::NotDns;  // signalling: echo, error indication, end marker
  }
  return parse_packet(ctx, link::detail::by_version(g.rest()));
}

// L2TPv2 over UDP (RFC 2661 §3.1): flags and version, optional length, tunnel and session ids,
// optional Ns/Nr, optional offset size and padding, then a PPP frame. Control messages (T bit)
// carry no user data.
ParseStatus Parser::parse_l2tp(Context& ctx, std::span<const std::byte> body) noexcept {
  WireReader l{body};
  const std::uint16_t flags = l.u16();
  if (l.failed()) {
    return ParseStatus::Truncated;
  }
  if ((flags & 0x000FU) != 2) {
    return ParseStatus::UnsupportedTunnel;  // L2TPv3 over UDP, or not L2TP
  }
  if ((flags & 0x8000U) != 0) {
    return ParseStatus::NotDns;
  }
  l.skip((flags & 0x4000U) != 0 ? 2 : 0);  // length
  l.skip(4);                               // tunnel and session ids
  l.skip((flags & 0x0800U) != 0 ? 4 : 0);  // Ns, Nr
  if ((flags & 0x0200U) != 0) {
    l.skip(l.u16());  // offset size, then that much padding
  }
  if (l.failed()) {
    return ParseStatus::Truncated;
  }
  return parse_packet(ctx, link::ppp(l.rest()));
}

ParseStatus Parser::parse_tcp(Context& ctx, std::span<const std::byte> payload) noexcept {
  DnsMessage& out = ctx.msg;
  WireReader t{payload};
  const std::uint16_t sport = t.u16();
  const std::uint16_t dport = t.u16();
  const std::uint32_t seq = t.u32();
  t.skip(4);
  const std::uint8_t offset = t.u8();
  const std::uint8_t flags = t.u8();
  if (t.failed()) {
    return ParseStatus::Truncated;
  }
  const PortKind skind = port_kind(sport);
  const PortKind dkind = port_kind(dport);
  Protocol protocol = Protocol::Dns;
  if (skind == PortKind::Dns || dkind == PortKind::Dns) {
    protocol = Protocol::Dns;
  } else if (skind == PortKind::Llmnr || dkind == PortKind::Llmnr) {
    protocol = Protocol::Llmnr;  // LLMNR allows TCP (RFC 4795 §2.4); mDNS does not use it
  } else if (skind == PortKind::Encrypted || dkind == PortKind::Encrypted) {
    return ParseStatus::Encrypted;
  } else {
    return ParseStatus::NotDns;
  }
  const std::size_t header = static_cast<std::size_t>(offset >> 4U) * 4U;
  if (header < 20) {
    return ParseStatus::Malformed;
  }
  if (payload.size() < header) {
    return ParseStatus::Truncated;
  }
  detail::TcpFlowKey key;
  const std::size_t alen = out.src.family == 4 ? 4 : 16;
  std::memcpy(key.src.data(), out.src.bytes.data(), alen);
  std::memcpy(key.dst.data(), out.dst.bytes.data(), alen);
  key.sport = sport;
  key.dport = dport;
  key.family = out.src.family;
  out.sport = sport;
  out.dport = dport;
  const unsigned before = ctx.delivered + ctx.malformed;
  tcp_->add(key, seq, static_cast<std::uint8_t>(flags & 0x07U), payload.subspan(header), ctx.ts_ns,
            [this, &ctx, protocol](const detail::TcpFlowKey& /*flow*/,
                                   std::span<const std::byte> message) noexcept {
              (void)deliver(ctx, message, Transport::Tcp, protocol);
            });
  publish_tcp_gauges();
  if (ctx.delivered + ctx.malformed == before) {
    return ParseStatus::TcpNoMessage;
  }
  return ctx.delivered > 0 ? ParseStatus::Ok : ParseStatus::Malformed;
}

ParseStatus Parser::deliver(Context& ctx, std::span<const std::byte> message, Transport transport,
                            Protocol protocol) noexcept {
  DnsMessage& out = ctx.msg;
  out.transport = transport;
  out.protocol = protocol;
  const ParseStatus status = parse_dns(message, out);
  if (status == ParseStatus::Ok) {
    ++ctx.delivered;
    ctx.sink.on_message(out);
  } else {
    ++ctx.malformed;
    if (out.malformed_question) {
      ctx.sink.on_message(out);  // the header is known; the sink decides what to do with it
    }
  }
  return status;
}

ParseStatus Parser::parse_dns(std::span<const std::byte> message, DnsMessage& out) noexcept {
  out.malformed_question = false;
  out.wire = message;
  DnsAnswers& answers = out.answers;
  answers.decoded = false;
  answers.qtype_answers = answers.cnames = 0;
  answers.address_count = 0;
  answers.soa = false;
  answers.soa_ttl = answers.soa_minimum = 0;
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
  out.qtype = out.qclass = 0;
  out.qname.length = 0;
  out.qname.labels = 0;

  std::size_t pos = LDNS_HEADER_SIZE;
  if (out.qdcount != 0) {
    if (!decode_name(wire, message.size(), pos, out.qname)) {
      out.malformed_question = true;
      return ParseStatus::Malformed;
    }
    if (message.size() - pos < 4) {
      out.malformed_question = true;
      return ParseStatus::Malformed;
    }
    out.qtype = static_cast<std::uint16_t>((wire[pos] << 8U) | wire[pos + 1]);
    out.qclass = static_cast<std::uint16_t>((wire[pos + 2] << 8U) | wire[pos + 3]);
    pos += 4;
    out.has_question = true;
  }
  if (!out.qr || !decode_answers(wire, message.size(), pos, out, answers, out.edns)) {
    find_edns(WireReader{message.subspan(pos)}, out, out.edns);
  }
  if (out.edns.present) {
    out.rcode = static_cast<std::uint16_t>(out.rcode | (out.edns.extended_rcode << 4U));
  }
  return ParseStatus::Ok;
}

}  // namespace dnsmon
