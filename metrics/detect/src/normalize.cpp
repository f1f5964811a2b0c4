#include "dnsmon/detect/normalize.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "dnsmon/common/ascii.hpp"
#include "dnsmon/common/hash.hpp"
#include "dnsmon/common/siphash.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::array<std::uint8_t, 16> to16(const IpAddr& a) noexcept {
  std::array<std::uint8_t, 16> out{};
  if (a.family == 4) {
    std::memcpy(out.data(), kV4Mapped, 12);
    std::memcpy(out.data() + 12, a.bytes.data(), 4);
  } else {
    out = a.bytes;
  }
  return out;
}

bool is_v4(const std::array<std::uint8_t, 16>& a) noexcept {
  return std::memcmp(a.data(), kV4Mapped, 12) == 0;
}

bool contains(const Cidr& c, const std::array<std::uint8_t, 16>& a) noexcept {
  const unsigned full = c.bits / 8U;
  if (std::memcmp(c.addr.data(), a.data(), full) != 0) {
    return false;
  }
  const unsigned rest = c.bits % 8U;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<std::uint8_t>(0xffU << (8U - rest));
  return (c.addr[full] & mask) == (a[full] & mask);
}

// The first `bits` (at most 64) bits of a word loaded from memory in network order.
std::uint64_t leading_bits(unsigned bits) noexcept {
  const std::uint64_t mask = bits == 0 ? 0 : ~std::uint64_t{0} << (64U - bits);
  if constexpr (std::endian::native == std::endian::little) {
    return __builtin_bswap64(mask);
  } else {
    return mask;
  }
}

// The address with every bit past the first `bits` cleared: two word operations, not a loop
// over bytes, as every event's organisation takes one.
std::array<std::uint8_t, 16> masked(std::array<std::uint8_t, 16> a, unsigned bits) noexcept {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  std::memcpy(&hi, a.data(), 8);
  std::memcpy(&lo, a.data() + 8, 8);
  hi &= leading_bits(std::min(bits, 64U));
  lo &= leading_bits(bits > 64U ? std::min(bits, 128U) - 64U : 0U);
  std::memcpy(a.data(), &hi, 8);
  std::memcpy(a.data() + 8, &lo, 8);
  return a;
}

// Whether the last `len` bytes of name are whole labels (a domain of it, or the name itself).
bool ends_at_label(std::string_view name, std::size_t len) noexcept {
  return len != 0 && len <= name.size() &&
         (len == name.size() || name[name.size() - len - 1] == '.');
}

bool ends_with_label(std::string_view name, std::string_view suffix) noexcept {
  return name.size() > suffix.size() + 1 && name.ends_with(suffix) &&
         name[name.size() - suffix.size() - 1] == '.';
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) {
    return {};
  }
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

std::vector<OrgMapEntry> load_org_map(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error(path + ": cannot open the org map file");
  }
  std::vector<OrgMapEntry> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string text = trim(line.substr(0, line.find('#')));
    if (text.empty()) {
      continue;
    }
    const auto space = text.find_first_of(" \t");
    const auto where = path + ":" + std::to_string(n) + ": ";
    if (space == std::string::npos) {
      std::string why = where;
      why += R"(expected "CIDR NAME", got ")";
      why += text;
      why += '"';
      throw std::runtime_error(why);
    }
    const auto prefix = parse_cidr(text.substr(0, space));
    if (!prefix) {
      throw std::runtime_error(where + "not a CIDR prefix: \"" + text.substr(0, space) + "\"");
    }
    out.push_back({*prefix, trim(text.substr(space))});
    if (out.size() > (1U << 20U)) {
      throw std::runtime_error(where + "more than 1048576 prefixes");
    }
  }
  return out;
}

OrgResolver::OrgResolver(const ClientOptions& options, std::vector<OrgMapEntry> map,
                         std::uint64_t seed)
    : map_(std::move(map)),
      v4_bits_(static_cast<std::uint8_t>(96 + options.external_v4_prefix)),
      v6_bits_(static_cast<std::uint8_t>(options.external_v6_prefix)),
      seed_(seed) {
  pseudonymise_ = options.pseudonymise;
  pseudonym_key_ = options.pseudonym_key;
  for (const auto& n : options.internal_networks) {
    const auto c = parse_cidr(n);
    if (!c) {
      throw std::runtime_error("detection.clients.internal_networks: not a CIDR prefix: " + n);
    }
    internal_.push_back(*c);
  }
  // Longest prefix first, so the first match is the most specific.
  std::stable_sort(map_.begin(), map_.end(), [](const OrgMapEntry& a, const OrgMapEntry& b) {
    return a.prefix.bits > b.prefix.bits;
  });
  // A mapped organisation's hash comes from its name, not its line: a reload that reorders or
  // extends the file keeps each organisation's identity in the tables.
  for (const OrgMapEntry& e : map_) {
    map_keys_.push_back({detail::hash_bytes(e.name, seed_), detail::hash_bytes(e.name, ~seed_)});
  }
}

void OrgResolver::resolve(LookupEvent& ev) const noexcept {
  resolve_org(ev);
  if (pseudonymise_) {
    pseudonymise(ev);
  }
}

void OrgResolver::pseudonymise(LookupEvent& ev) const noexcept {
  const bool v4 = is_v4(ev.client);
  const auto org_addr = ev.org_kind == OrgKind::Prefix ? masked(ev.client, ev.org_bits) : ev.client;
  const std::uint64_t org = detail::sip_hash16(pseudonym_key_, org_addr.data(), ev.org_bits);
  const std::uint64_t client =
      (detail::sip_hash16(pseudonym_key_, ev.client.data(), 0) & ~std::uint64_t{1}) |
      (v4 ? 1U : 0U);
  std::memcpy(ev.client.data(), &org, 8);
  std::memcpy(ev.client.data() + 8, &client, 8);
}

void OrgResolver::resolve_org(LookupEvent& ev) const noexcept {
  struct Key {
    std::array<std::uint8_t, 16> addr;
    std::uint32_t index;
    std::uint8_t kind, bits, pad[2];
  };

  Key key{};
  for (const Cidr& c : internal_) {
    if (contains(c, ev.client)) {
      ev.flags |= kInternalClient;
      ev.org_kind = OrgKind::Host;
      ev.org_bits = 128;
      ev.org_index = 0;
      key.addr = ev.client;
      key.kind = 1;
      key.bits = 128;
      ev.org_hash = detail::hash_bytes(&key, sizeof(key), seed_);
      return;
    }
  }
  for (std::size_t i = 0; i < map_.size(); ++i) {
    if (contains(map_[i].prefix, ev.client)) {
      ev.org_kind = OrgKind::Mapped;
      ev.org_bits = map_[i].prefix.bits;
      ev.org_index = static_cast<std::uint32_t>(i);
      std::memcpy(key.addr.data(), map_keys_[i].data(), key.addr.size());
      key.kind = 2;
      ev.org_hash = detail::hash_bytes(&key, sizeof(key), seed_);
      return;
    }
  }
  const std::uint8_t bits = is_v4(ev.client) ? v4_bits_ : v6_bits_;
  ev.org_kind = OrgKind::Prefix;
  ev.org_bits = bits;
  ev.org_index = 0;
  key.addr = masked(ev.client, bits);
  key.kind = 3;
  key.bits = bits;
  ev.org_hash = detail::hash_bytes(&key, sizeof(key), seed_);
}

std::string OrgResolver::label(const LookupEvent& ev) const {
  return label(OrgRef::of(ev));
}

const OrgMapEntry* OrgResolver::mapped(const OrgRef& org) const noexcept {
  if (org.org_kind == OrgKind::Mapped && org.org_index < map_.size() &&
      map_[org.org_index].prefix.bits == org.org_bits &&
      (pseudonymise_ || contains(map_[org.org_index].prefix, org.client))) {
    return &map_[org.org_index];
  }
  return nullptr;
}

std::string OrgResolver::label(const OrgRef& ev) const {
  if (const OrgMapEntry* m = mapped(ev); m != nullptr) {
    return m->name;
  }
  if (pseudonymise_) {
    std::uint64_t org = 0;
    std::uint64_t client = 0;
    std::memcpy(&org, ev.client.data(), 8);
    std::memcpy(&client, ev.client.data() + 8, 8);
    std::array<char, 24> text{};
    std::snprintf(text.data(), text.size(), "anon-%016llx", static_cast<unsigned long long>(org));
    std::string out = text.data();
    if (ev.org_kind != OrgKind::Host) {
      out += "/" + std::to_string((client & 1U) != 0 ? ev.org_bits - 96 : ev.org_bits);
    }
    return out;
  }
  const auto addr = ev.org_kind == OrgKind::Host ? ev.client : masked(ev.client, ev.org_bits);
  IpAddr ip;
  const bool v4 = is_v4(addr);
  if (v4) {
    ip.family = 4;
    std::memcpy(ip.bytes.data(), addr.data() + 12, 4);
  } else {
    ip.family = 6;
    ip.bytes = addr;
  }
  std::array<char, 64> buf{};
  std::string out(ip.format(buf));
  if (ev.org_kind != OrgKind::Host) {
    out += "/" + std::to_string(v4 ? ev.org_bits - 96 : ev.org_bits);
  }
  return out;
}

std::string_view lower_name(std::string_view presentation,
                            std::array<char, LookupEvent::kMaxName>& out) noexcept {
  if (!presentation.empty() && presentation.back() == '.') {
    presentation.remove_suffix(1);
  }
  const std::size_t n = std::min(presentation.size(), out.size());
  ascii::lower_copy(presentation.data(), n, out.data());
  return {out.data(), n};
}

std::size_t reverse_zone_length(std::string_view name, std::uint32_t v4_octets,
                                std::uint32_t v6_nibbles) noexcept {
  std::uint32_t keep = 0;
  std::string_view zone;
  if (ends_with_label(name, "in-addr.arpa")) {
    keep = v4_octets;
    zone = "in-addr.arpa";
  } else if (ends_with_label(name, "ip6.arpa")) {
    keep = v6_nibbles;
    zone = "ip6.arpa";
  } else {
    return 0;
  }
  // Walk keep labels to the left of the zone.
  std::size_t start = name.size() - zone.size() - 1;  // the dot before the zone
  for (std::uint32_t i = 0; i < keep; ++i) {
    if (start == 0) {
      return name.size();
    }
    const auto dot = name.rfind('.', start - 1);
    if (dot == std::string_view::npos) {
      return name.size();
    }
    start = dot;
  }
  return name.size() - start - 1;
}

Normalizer::Normalizer(const DetectOptions& options, std::shared_ptr<const OrgResolver> orgs,
                       std::shared_ptr<const detail::PublicSuffixList> suffixes, std::uint64_t seed)
    : orgs_(std::move(orgs)),
      suffixes_(suffixes),
      cache_(std::move(suffixes), 1U << 14U, seed),
      search_suffixes_(options.normalize.search_suffixes),
      v4_octets_(options.normalize.reverse_zone_v4_octets),
      v6_nibbles_(options.normalize.reverse_zone_v6_nibbles),
      dedup_ns_(static_cast<std::int64_t>(options.normalize.dedup_window_s * 1e9 /
                                          options.time.compression)),
      seed_(seed),
      dedup_(kDedupEntries),
      timeouts_(kTimeoutEntries) {
}

void Normalizer::reconfigure(const DetectOptions& options,
                             std::shared_ptr<const OrgResolver> orgs) {
  orgs_ = std::move(orgs);
  search_suffixes_ = options.normalize.search_suffixes;
  v4_octets_ = options.normalize.reverse_zone_v4_octets;
  v6_nibbles_ = options.normalize.reverse_zone_v6_nibbles;
  dedup_ns_ =
      static_cast<std::int64_t>(options.normalize.dedup_window_s * 1e9 / options.time.compression);
}

std::string_view Normalizer::tag_domain(const detail::QueryTag& tag) noexcept {
  if (tag.word == 0 || tag.bytes[0] == 0 || tag.bytes[0] > kTagName) {
    return {};
  }
  return {reinterpret_cast<const char*>(tag.bytes.data() + 2), tag.bytes[0]};
}

bool Normalizer::domain_from_tag(std::string_view name, const detail::QueryTag& tag,
                                 LookupEvent& ev) noexcept {
  const std::string_view domain = tag_domain(tag);
  const std::size_t len = domain.size();
  if (!ends_at_label(name, len) || !name.ends_with(domain)) {
    return false;
  }
  ev.flags |= static_cast<std::uint16_t>(tag.bytes[1] & kReverseZone);
  ev.domain_off = static_cast<std::uint8_t>(name.size() - len);
  ev.domain_len = static_cast<std::uint8_t>(len);
  ev.domain_hash = tag.word;
  return true;
}

bool Normalizer::name(std::string_view presentation, LookupEvent& ev,
                      const detail::QueryTag* query_tag, std::size_t domain_length) noexcept {
  const std::string_view name = lower_name(presentation, ev.qname);
  ev.qname_len = static_cast<std::uint8_t>(name.size());
  if (name.empty()) {
    return false;
  }
  // A response: its query's domain, as the query's event counted it (a reload in between changes
  // nothing for the pair).
  if (query_tag != nullptr && domain_from_tag(name, *query_tag, ev)) {
    return true;
  }
  std::size_t off = 0, len = 0;
  if (const std::size_t zone = reverse_zone_length(name, v4_octets_, v6_nibbles_); zone != 0) {
    ev.flags |= kReverseZone;
    off = name.size() - zone;
    len = zone;
  } else {
    for (const std::string& suffix : search_suffixes_) {
      if (!ends_with_label(name, suffix)) {
        continue;
      }
      const std::string_view rest = name.substr(0, name.size() - suffix.size() - 1);
      if (rest.find('.') == std::string_view::npos || rest.find('\\') != std::string_view::npos) {
        break;  // one label: an ordinary search-list name
      }
      bool public_suffix = false;
      const std::size_t n = suffixes_->registrable_length(rest, &public_suffix);
      if (!public_suffix && n != 0 && n <= rest.size()) {
        ev.flags |= kSuffixLeak;
        off = rest.size() - n;
        len = n;
      }
      break;
    }
    // The caller's length counts for the name as given: not with a final dot, which the
    // normaliser strips.
    if (len == 0 && name.size() == presentation.size() && ends_at_label(name, domain_length)) {
      off = name.size() - domain_length;
      len = domain_length;
    }
    if (len == 0) {
      const std::string_view domain = cache_.registrable(name);
      off = static_cast<std::size_t>(domain.data() - name.data());
      len = domain.size();
    }
  }
  if (len == 0) {
    return false;
  }
  ev.domain_off = static_cast<std::uint8_t>(off);
  ev.domain_len = static_cast<std::uint8_t>(len);
  ev.domain_hash = detail::hash_bytes(ev.domain(), seed_);
  return true;
}

bool Normalizer::common(const DnsMessage& m, const IpAddr& client, LookupEvent& ev,
                        const detail::QueryTag* query_tag, std::size_t domain_length) noexcept {
  if (m.protocol != Protocol::Dns || !m.has_question || m.malformed_question || m.opcode != 0) {
    return false;
  }
  ev.version = kLookupEventVersion;
  ev.flags = 0;
  ev.ts_ns = m.ts_ns;
  ev.qtype = m.qtype;
  ev.rcode = 0;
  ev.answer_count = 0;
  ev.client = to16(client);
  if (!name(m.qname.view(), ev, query_tag, domain_length)) {
    return false;
  }
  orgs_->resolve(ev);
  return true;
}

bool Normalizer::query(const DnsMessage& m, LookupEvent& ev, std::size_t domain_length) noexcept {
  if (m.qr || !common(m, m.src, ev, nullptr, domain_length)) {
    return false;
  }
  ev.kind = EventKind::Query;
  if (first_in_window(dedup_, ev.client, ev.domain_hash, m.ts_ns, dedup_ns_)) {
    ev.flags |= kFirstInDedupWindow;
  }
  return true;
}

bool Normalizer::first_in_window(std::vector<DedupSlot>& table,
                                 const std::array<std::uint8_t, 16>& client,
                                 std::uint64_t domain_hash, std::int64_t ts_ns,
                                 std::int64_t window_ns) noexcept {
  std::uint64_t key = detail::hash_bytes(client.data(), client.size(), domain_hash);
  key |= 1U;  // never 0, the empty slot's key
  DedupSlot& slot = table[key & (table.size() - 1)];
  if (slot.key == key && ts_ns - slot.last_ns < window_ns && ts_ns >= slot.last_ns) {
    return false;
  }
  slot.key = key;
  slot.last_ns = ts_ns;
  return true;
}

bool Normalizer::response(const DnsMessage& m, LookupEvent& ev,
                          const detail::QueryTag* query_tag) noexcept {
  if (!m.qr || !common(m, m.dst, ev, query_tag)) {
    return false;
  }
  ev.kind = EventKind::Response;
  ev.rcode = m.rcode;
  fill_answers(m, ev);
  return true;
}

// A tag (detail::QueryTag): word = the domain hash (0: no tag; a domain whose hash is 0 is never
// tagged), bytes[0] = the domain's length, bytes[1] = the name flags, then the domain.
void Normalizer::fill_tag(const LookupEvent& ev, detail::QueryTag& tag) noexcept {
  static_assert(kTagName + 2 <= sizeof(tag.bytes));
  if (ev.has(kSuffixLeak) || ev.domain_len > kTagName) {
    tag.word = 0;
    return;
  }
  tag.word = ev.domain_hash;
  tag.bytes[0] = ev.domain_len;
  tag.bytes[1] = static_cast<unsigned char>(ev.flags & kReverseZone);
  const std::string_view domain = ev.domain();
  std::copy(domain.begin(), domain.end(), tag.bytes.begin() + 2);
}

bool Normalizer::timeout(const detail::TimedOutQuery& query, LookupEvent& ev) noexcept {
  if (query.tag == nullptr) {
    return false;
  }
  const detail::QueryTag& tag = *query.tag;
  const std::string_view domain = tag_domain(tag);
  if (domain.empty()) {
    return false;
  }
  // One event for the timeouts of a (client, domain) within the matching timeout.
  ev.client = to16(query.client);
  if (!first_in_window(timeouts_, ev.client, tag.word, query.query_ts_ns,
                       query.timeout_ts_ns - query.query_ts_ns)) {
    return false;
  }
  ev.version = kLookupEventVersion;
  ev.kind = EventKind::Timeout;
  ev.flags = static_cast<std::uint16_t>(kFailure | (tag.bytes[1] & kReverseZone));
  ev.ts_ns = query.timeout_ts_ns;
  ev.qtype = query.qtype;
  ev.rcode = 0;
  ev.answer_count = 0;
  ev.domain_hash = tag.word;
  ev.qname_len = static_cast<std::uint8_t>(domain.size());
  ev.domain_off = 0;
  ev.domain_len = ev.qname_len;
  std::copy(domain.begin(), domain.end(), ev.qname.begin());
  orgs_->resolve(ev);
  return true;
}

void fill_answers(const DnsMessage& m, LookupEvent& ev) noexcept {
  // With the answers decoded (DnsMessage::answers, held to ldns' decoding): success is NOERROR
  // with an answer of the asked type (through its CNAME chain), NODATA is NOERROR without one, and
  // the A/AAAA addresses come with their TTLs. A response the fast path could not decode falls
  // back to the header: NOERROR with any answer RR is a success.
  ev.answer_count = 0;
  const DnsAnswers& a = m.answers;
  switch (m.rcode) {
    case 0:
      if (a.decoded) {
        ev.flags |= a.qtype_answers > 0 ? kSuccess : kNodata;
      } else {
        ev.flags |= m.ancount > 0 ? kSuccess : kNodata;
      }
      break;
    case 2:  // SERVFAIL
    case 3:  // NXDOMAIN
    case 5:  // REFUSED
      ev.flags |= kFailure;
      break;
    default:
      break;
  }
  if (!a.decoded) {
    return;
  }
  ev.flags |= kAnswersDecoded;
  for (const AnswerAddress& x : a.address_span()) {
    if (ev.answer_count == LookupEvent::kMaxAnswers) {
      break;
    }
    AnswerAddr& out = ev.answers[ev.answer_count++];
    out.ttl = x.ttl;
    if (x.addr.family == 4) {  // IPv4 as ::ffff:a.b.c.d
      out.addr.fill(0);
      out.addr[10] = 0xff;
      out.addr[11] = 0xff;
      std::copy_n(x.addr.bytes.begin(), 4, out.addr.begin() + 12);
    } else {
      out.addr = x.addr.bytes;
    }
  }
}

}  // namespace dnsmon::detect
