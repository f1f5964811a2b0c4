// Normalisation of DNS messages into lookup events (detection spec 3.4; docs/detection.md):
// - the name: lower-cased (ASCII, RFC 4343), without the final dot, punycode kept as it is;
// - the registrable domain it counts for: by the public suffix list through the worker's
//   DomainCache; in-addr.arpa names count for their reverse zone of reverse_zone_v4_octets
//   octets (the /24 zone by default), ip6.arpa names for reverse_zone_v6_nibbles nibbles (/48);
//   a name that ends with a configured search suffix and whose remainder has a registrable
//   domain of its own (two labels or more, not a public suffix) counts for that embedded domain
//   and is marked kSuffixLeak ("mail.hotel-promo-mailer.example.corp.orga.example" counts for
//   hotel-promo-mailer.example);
// - the querier's organisation (OrgResolver): the host itself inside
//   clients.internal_networks, else the longest org_map prefix holding it (an organisation is
//   its name: lines with the same name are one organisation, whatever their order in the file),
//   else its external_v4_prefix / external_v6_prefix;
// - de-duplication: a query is marked kFirstInDedupWindow when it is the first of its (client,
//   registrable domain) since dedup_window_s of logical time (compression applied) after the
//   last one so marked. A direct-mapped table of kDedupEntries slots keyed by a hash of the
//   pair: two pairs that share a slot can only add marks, never remove one.
// - timeouts: a query's registrable domain (up to kTagName bytes) and flags go into its tag in
//   the worker's query matcher (fill_tag()); when the matcher gives the query up, timeout()
//   makes a timeout event of it (kind 3, flagged kFailure, dated when it was given up). The
//   timeouts of one (client, registrable domain) within the matching timeout are one event: a
//   client's retries of one lookup are one failure, as one SERVFAIL answer is. No tag, no event:
//   a name that leaked through a search suffix (it failed for the suffix), or a registrable
//   domain longer than kTagName.
//
// A reload hands a Normalizer new options and organisations (reconfigure()) between two messages;
// its de-duplication table and domain cache stay.
//
// Thread-safety: a Normalizer belongs to one worker; an OrgResolver is immutable and shared.
// Allocation: construction and reconfigure() only; query(), response(), fill_tag() and timeout()
// allocate nothing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/analytics/detail/matcher.hpp"
#include "dnsmon/detect.hpp"
#include "dnsmon/detect/event.hpp"
#include "dnsmon/detect/finding.hpp"
#include "dnsmon/domains.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon::detect {

struct OrgMapEntry {
  Cidr prefix;
  std::string name;
};

// Reads an org map file: one "CIDR NAME" per line (NAME: the rest of the line, trimmed), '#'
// comments and blank lines ignored. Throws std::runtime_error "FILE:LINE: what is wrong".
std::vector<OrgMapEntry> load_org_map(const std::string& path);

class OrgResolver {
 public:
  // Throws std::runtime_error for a malformed internal network (the config checks them first).
  OrgResolver(const ClientOptions& options, std::vector<OrgMapEntry> map, std::uint64_t seed);

  // Sets ev's org_kind, org_bits, org_index and org_hash, and kInternalClient, for ev.client.
  // Pseudonymising, then replaces ev.client with its pseudonym: the first 8 bytes the keyed
  // hash of the organisation's address (the host's, or its prefix), the last 8 that of the
  // client's (so distinct clients stay distinct), the lowest bit telling IPv4.
  void resolve(LookupEvent& ev) const noexcept;

  // The organisation's label: the host's address, the org_map name or the prefix
  // ("203.0.113.0/24"); pseudonymising, "anon-" and 16 hex digits for a host, with "/24" (the
  // prefix length) for a prefix.
  // An OrgRef made by another resolver (before a reload changed the org map) is labelled by its
  // prefix when this one's map has no entry of that prefix at its index.
  [[nodiscard]] std::string label(const LookupEvent& ev) const;
  [[nodiscard]] std::string label(const OrgRef& org) const;

  // The org map entry of an organisation found through it, or null (another kind, or an OrgRef
  // made before a reload changed the map that this map has no entry for at its index).
  [[nodiscard]] const OrgMapEntry* mapped(const OrgRef& org) const noexcept;

  // The org map, longest prefix first (its order of lookup).
  [[nodiscard]] const std::vector<OrgMapEntry>& map() const noexcept { return map_; }

 private:
  void resolve_org(LookupEvent& ev) const noexcept;
  void pseudonymise(LookupEvent& ev) const noexcept;

  bool pseudonymise_ = false;
  std::array<std::uint64_t, 2> pseudonym_key_{};
  std::vector<Cidr> internal_;
  std::vector<OrgMapEntry> map_;  // linear scan: meant for hundreds of prefixes, not millions
  std::vector<std::array<std::uint64_t, 2>> map_keys_;  // per entry: its name's two hashes
  std::uint8_t v4_bits_ = 0, v6_bits_ = 0;              // in the 128-bit form
  std::uint64_t seed_ = 0;
};

// The lower-cased name without its final dot, or "" for the root. Writes at most
// LookupEvent::kMaxName bytes.
std::string_view lower_name(std::string_view presentation,
                            std::array<char, LookupEvent::kMaxName>& out) noexcept;

// The length of the reverse zone suffix of name ("2.0.192.in-addr.arpa" of
// "10.2.0.192.in-addr.arpa" with 3 octets), or 0 when name is not under in-addr.arpa or ip6.arpa.
std::size_t reverse_zone_length(std::string_view name, std::uint32_t v4_octets,
                                std::uint32_t v6_nibbles) noexcept;

class Normalizer {
 public:
  static constexpr std::size_t kDedupEntries = 1U << 16U;  // 16 bytes each, per worker

  Normalizer(const DetectOptions& options, std::shared_ptr<const OrgResolver> orgs,
             std::shared_ptr<const detail::PublicSuffixList> suffixes, std::uint64_t seed);

  // Takes the normalize and clients options of `options` and the organisations `orgs` from the
  // next message on (a reload); the de-duplication table and the domain cache stay.
  void reconfigure(const DetectOptions& options, std::shared_ptr<const OrgResolver> orgs);

  // A query (opcode QUERY with a question) → ev; false for other messages. domain_length: the
  // length of the registrable domain of its lower-cased name, when the caller found it already
  // with this normaliser's public suffix list (0: not known); it stands in for the normaliser's
  // own lookup (reverse zones and search suffixes are still the normaliser's).
  bool query(const DnsMessage& m, LookupEvent& ev, std::size_t domain_length = 0) noexcept;
  // A response matched to its query → ev; false for other messages. query_tag: the tag that
  // fill_tag() gave its query (nullptr: none): its registrable domain, when the response's name
  // ends with it, is taken without a lookup.
  bool response(const DnsMessage& m, LookupEvent& ev,
                const detail::QueryTag* query_tag = nullptr) noexcept;

  // The longest registrable domain a query tag holds.
  static constexpr std::size_t kTagName = 54;
  // Fills the matcher's tag of the query that made ev (query()), or leaves it empty.
  static void fill_tag(const LookupEvent& ev, detail::QueryTag& tag) noexcept;
  // A query the matcher gave up → a timeout event, or false: no tag, or another timeout of its
  // client and domain came within the matching timeout before it.
  bool timeout(const detail::TimedOutQuery& query, LookupEvent& ev) noexcept;

  // The name part alone: fills qname, domain_off/len, domain_hash and kSuffixLeak/kReverseZone.
  // False for the root or a name with no domain.
  bool name(std::string_view presentation, LookupEvent& ev,
            const detail::QueryTag* query_tag = nullptr, std::size_t domain_length = 0) noexcept;

 private:
  bool common(const DnsMessage& m, const IpAddr& client, LookupEvent& ev,
              const detail::QueryTag* query_tag = nullptr, std::size_t domain_length = 0) noexcept;
  // The registrable domain a tag that fill_tag() filled holds (empty: none).
  static std::string_view tag_domain(const detail::QueryTag& tag) noexcept;
  // name()'s shortcut: the domain of query_tag, when `name` ends with it at a label boundary.
  static bool domain_from_tag(std::string_view name, const detail::QueryTag& tag,
                              LookupEvent& ev) noexcept;

  struct DedupSlot {
    std::uint64_t key = 0;
    std::int64_t last_ns = 0;
  };

  // Whether ts_ns is the first of (client, domain) in the direct-mapped `table` (a power of two
  // of slots) since window_ns after the last one it marked; marks it if so.
  static bool first_in_window(std::vector<DedupSlot>& table,
                              const std::array<std::uint8_t, 16>& client, std::uint64_t domain_hash,
                              std::int64_t ts_ns, std::int64_t window_ns) noexcept;

  std::shared_ptr<const OrgResolver> orgs_;
  std::shared_ptr<const detail::PublicSuffixList> suffixes_;
  detail::DomainCache cache_;
  std::vector<std::string> search_suffixes_;
  std::uint32_t v4_octets_, v6_nibbles_;
  std::int64_t dedup_ns_;  // the window in packet time
  std::uint64_t seed_;
  std::vector<DedupSlot> dedup_;
  std::vector<DedupSlot> timeouts_;  // the timeouts' de-duplication, kTimeoutEntries slots
  static constexpr std::size_t kTimeoutEntries = 1U << 12U;
};

// Fills the answer part of a response's event from the decoded message. The one place answer
// addresses, TTLs and the answer count reach lookup events.
void fill_answers(const DnsMessage& m, LookupEvent& ev) noexcept;

}  // namespace dnsmon::detect
