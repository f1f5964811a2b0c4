// The lookup event: what a worker hands to the detection state for each DNS query and each
// matched response, normalised (docs/detection.md, "Lookup events").
//
// A fixed-size, trivially copyable record of 512 bytes with a version byte first, so that it can
// cross an SPSC ring without allocation and be written to a file or a partitioned log as it is.
// Names are stored lower-cased, without the final dot, in presentation form; the registrable
// domain the event counts for is a slice of the query name (a suffix, or for a search-suffix leak
// the embedded domain in the middle of it).
//
// Thread-safety: plain data. Allocation: none.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace dnsmon::detect {

inline constexpr std::uint8_t kLookupEventVersion = 1;

enum class EventKind : std::uint8_t {
  Query = 1,     // a query as the client sent it (every one: raw counts, tunneling)
  Response = 2,  // a response matched to its query
  Timeout = 3,   // a query that got no response in time (its registrable domain as qname)
};

// LookupEvent::flags: bits.
// queries: first of (client, registrable domain) in the window
inline constexpr std::uint16_t kFirstInDedupWindow = 1U << 0U;
// counted for the domain embedded before a search suffix
inline constexpr std::uint16_t kSuffixLeak = 1U << 1U;
// responses: NOERROR with an answer
inline constexpr std::uint16_t kSuccess = 1U << 2U;
// responses: NXDOMAIN, SERVFAIL or REFUSED (or a timeout)
inline constexpr std::uint16_t kFailure = 1U << 3U;
// responses: NOERROR without an answer
inline constexpr std::uint16_t kNodata = 1U << 4U;
// the domain is an in-addr.arpa or ip6.arpa zone
inline constexpr std::uint16_t kReverseZone = 1U << 5U;
// the client is in detection.clients.internal_networks
inline constexpr std::uint16_t kInternalClient = 1U << 6U;
// responses: the answer addresses below were decoded
inline constexpr std::uint16_t kAnswersDecoded = 1U << 7U;

// How the organisation of the client was found.
enum class OrgKind : std::uint8_t {
  Host = 1,    // an internal client: the organisation is the host itself
  Mapped = 2,  // a prefix of detection.clients.org_map_file
  Prefix = 3,  // the client's external_v4_prefix / external_v6_prefix
};

// An answer address: IPv4 as ::ffff:a.b.c.d.
struct AnswerAddr {
  std::array<std::uint8_t, 16> addr{};
  std::uint32_t ttl = 0;
};

struct LookupEvent {
  static constexpr std::size_t kMaxName = 255;
  static constexpr std::size_t kMaxAnswers = 8;

  std::uint8_t version = kLookupEventVersion;
  EventKind kind = EventKind::Query;
  std::uint16_t flags = 0;
  std::uint16_t qtype = 0;
  std::uint16_t rcode = 0;        // responses
  std::int64_t ts_ns = 0;         // packet time, ns since the Unix epoch
  std::uint64_t domain_hash = 0;  // keyed hash of the registrable domain: the shard key
  std::uint64_t org_hash = 0;     // keyed hash of the organisation (kind, prefix or map entry)
  std::array<std::uint8_t, 16> client{};  // the querier (IPv4 as ::ffff:a.b.c.d)
  std::uint32_t org_index = 0;            // OrgKind::Mapped: the org_map line's index
  OrgKind org_kind = OrgKind::Prefix;
  std::uint8_t org_bits = 0;    // the organisation's prefix length in the 128-bit form
  std::uint8_t qname_len = 0;   // bytes of qname in use
  std::uint8_t domain_off = 0;  // the registrable domain: qname[domain_off, +domain_len)
  std::uint8_t domain_len = 0;
  std::uint8_t answer_count = 0;  // answers[0, answer_count) in use
  std::uint16_t reserved = 0;
  std::array<char, kMaxName> qname{};
  std::uint8_t reserved2 = 0;
  std::array<AnswerAddr, kMaxAnswers> answers{};
  std::array<std::uint8_t, 32> spare{};

  [[nodiscard]] std::string_view name() const noexcept { return {qname.data(), qname_len}; }

  [[nodiscard]] std::string_view domain() const noexcept {
    return {qname.data() + domain_off, domain_len};
  }

  [[nodiscard]] bool has(std::uint16_t flag) const noexcept { return (flags & flag) != 0; }

  // Copies what a reader of this record may read into `to`: the fixed fields, qname[0,
  // qname_len) and answers[0, answer_count). A query's record is then about 100 bytes, not 512.
  // The rest of `to` keeps what it held.
  void copy_used_to(LookupEvent& to) const noexcept {
    std::memcpy(&to, this, offsetof(LookupEvent, qname) + qname_len);
    std::memcpy(to.answers.data(), answers.data(), answer_count * sizeof(AnswerAddr));
  }
};

static_assert(std::is_trivially_copyable_v<LookupEvent>);
static_assert(std::is_standard_layout_v<LookupEvent>);
static_assert(offsetof(LookupEvent, qname) + LookupEvent::kMaxName <=
              offsetof(LookupEvent, answers));
static_assert(sizeof(LookupEvent) == 512, "the record's size is part of its version");

}  // namespace dnsmon::detect
