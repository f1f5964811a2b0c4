#include <array>
#include <memory>
#include <new>

#include "dnsmon/analytics.hpp"
#include "dnsmon/analytics/detail/worker_analytics.hpp"

namespace dnsmon {
namespace {

struct NamedCode {
  std::uint16_t code;
  std::string_view name;
};

constexpr std::array<NamedCode, kQtypeSlots - 1> kQtypes{{
    {1, "A"},
    {2, "NS"},
    {5, "CNAME"},
    {6, "SOA"},
    {12, "PTR"},
    {15, "MX"},
    {16, "TXT"},
    {28, "AAAA"},
    {33, "SRV"},
    {35, "NAPTR"},
    {43, "DS"},
    {46, "RRSIG"},
    {48, "DNSKEY"},
    {64, "SVCB"},
    {65, "HTTPS"},
    {255, "ANY"},
}};

constexpr std::array<NamedCode, kRcodeSlots - 1> kRcodes{{
    {0, "NOERROR"},
    {1, "FORMERR"},
    {2, "SERVFAIL"},
    {3, "NXDOMAIN"},
    {4, "NOTIMP"},
    {5, "REFUSED"},
    {6, "YXDOMAIN"},
    {7, "YXRRSET"},
    {8, "NXRRSET"},
    {9, "NOTAUTH"},
    {10, "NOTZONE"},
    {16, "BADVERS"},
    {23, "BADCOOKIE"},
}};

template <std::size_t N>
constexpr std::array<std::uint8_t, 256> make_slot_table(const std::array<NamedCode, N>& codes) {
  std::array<std::uint8_t, 256> table{};
  for (auto& t : table) {
    t = static_cast<std::uint8_t>(N);  // OTHER
  }
  for (std::size_t i = 0; i < N; ++i) {
    table[codes[i].code] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr auto kQtypeTable = make_slot_table(kQtypes);
constexpr auto kRcodeTable = make_slot_table(kRcodes);

detail::MatcherOptions matcher_options(const MetricsOptions& o, std::uint64_t seed) {
  detail::MatcherOptions m;
  m.capacity = o.matching_capacity;
  m.timeout_ns = std::int64_t{o.matching_timeout_ms} * 1'000'000;
  m.hash_seed = seed;
  m.query_tags = o.matching_query_tags;
  return m;
}

}  // namespace

constexpr std::array<std::string_view, kOpcodeSlots> kOpcodeNames{
    "QUERY", "IQUERY", "STATUS", "NOTIFY", "UPDATE", "DSO", "OTHER"};

std::size_t opcode_slot(std::uint8_t opcode) noexcept {
  switch (opcode) {
    case 0:
    case 1:
    case 2:
      return opcode;
    case 4:
      return 3;
    case 5:
      return 4;
    case 6:
      return 5;
    default:
      return 6;
  }
}

std::string_view opcode_slot_name(std::size_t slot) noexcept {
  return kOpcodeNames[slot < kOpcodeSlots ? slot : kOpcodeSlots - 1];
}

std::size_t qtype_slot(std::uint16_t qtype) noexcept {
  return qtype < 256 ? kQtypeTable[qtype] : kQtypes.size();
}

std::string_view qtype_slot_name(std::size_t slot) noexcept {
  return slot < kQtypes.size() ? kQtypes[slot].name : "OTHER";
}

std::size_t rcode_slot(std::uint16_t rcode) noexcept {
  return rcode < 256 ? kRcodeTable[rcode] : kRcodes.size();
}

std::string_view rcode_slot_name(std::size_t slot) noexcept {
  return slot < kRcodes.size() ? kRcodes[slot].name : "OTHER";
}

WorkerCounters::Analytics::Analytics(const MetricsOptions& o, SuffixList list,
                                     std::uint64_t hash_seed, const ServerAddressBook* book)
    : matcher(matcher_options(o, hash_seed)),
      server_addresses(o.server_addresses),
      address_book(book) {
  if (book != nullptr) {
    address_generation = book->copy_to(server_addresses);
  }
  if (o.analytics.enabled) {
    traffic = std::make_unique<detail::TrafficAnalytics>(o.analytics, std::move(list), hash_seed);
  }
}

WorkerCounters::WorkerCounters(std::unique_ptr<Analytics> analytics)
    : analytics_(std::move(analytics)) {
}

WorkerCounters::~WorkerCounters() = default;

// NOLINTNEXTLINE(readability-make-member-function-const): changes the analytics it owns
std::int64_t WorkerCounters::analyse(const DnsMessage& m) noexcept {
  Analytics& a = *analytics_;
  if (a.address_book != nullptr && a.address_book->generation() != a.address_generation)
      [[unlikely]] {
    try {
      a.address_generation = a.address_book->copy_to(a.server_addresses);  // a reload's
    } catch (const std::bad_alloc&) {
      a.address_generation = a.address_book->generation();  // keeps the set it has
    }
  }
  // One hash of the lower-cased name serves the matcher, the name tables and the HLLs.
  const std::uint64_t hash = detail::qname_hash(m.qname.view(), a.matcher.hash_seed());
  // The domain cache's set and the matcher's bucket are both cache misses more often than not:
  // the prepare() calls start loading them, so that they arrive while the windows work.
  const bool windows = a.traffic && m.has_question;
  const bool valid = windows && detail::lower_name(m.qname.view(), a.name);
  const detail::DomainCache::Hint domain =
      valid && !m.qr ? a.traffic->prepare_domain(a.name) : detail::DomainCache::Hint{};
  const detail::QueryMatcher::Probe probe =
      a.matcher.prepare(m, m.qr, hash, a.server_addresses.leg(m));
  if (windows) {
    if (m.qr) {
      a.traffic->on_response(m, a.name, valid, hash);
    } else {
      a.traffic->on_query(m, a.name, valid, hash, domain);
    }
  }
  std::int64_t latency = -1;
  if (!m.qr) {
    (void)a.matcher.on_query(m, probe);
  } else {
    detail::QueryMatcher::Result result{};
    if (a.matcher.on_response(m, probe, result)) {  // records the latency itself
      latency = result.latency_ns;
    }
  }
  return latency;
}

// NOLINTNEXTLINE(readability-make-member-function-const): hands out the analytics' state
detail::QueryTag* WorkerCounters::last_query_tag() noexcept {
  return analytics_->matcher.last_tag();
}

std::size_t WorkerCounters::last_query_domain_length() const noexcept {
  return analytics_->traffic ? analytics_->traffic->last_domain_length() : 0;
}

// NOLINTNEXTLINE(readability-make-member-function-const): hands out the analytics' state
detail::QueryTag* WorkerCounters::matched_query_tag() noexcept {
  return analytics_->matcher.matched_tag();
}

// NOLINTNEXTLINE(readability-make-member-function-const): changes the analytics it owns
void WorkerCounters::set_timeout_sink(detail::TimeoutSink* sink) noexcept {
  analytics_->matcher.set_timeout_sink(sink);
}

// NOLINTNEXTLINE(readability-make-member-function-const): changes the analytics it owns
void WorkerCounters::tick(std::int64_t now_ns) noexcept {
  (void)analytics_->matcher.expire(now_ns);
  if (analytics_->traffic) {
    analytics_->traffic->tick(now_ns);
  }
}

// NOLINTNEXTLINE(readability-make-member-function-const): changes the analytics it owns
void WorkerCounters::finish() noexcept {
  if (analytics_->traffic) {
    analytics_->traffic->finish();
  }
}

std::size_t analytics_bytes_per_worker(const MetricsOptions& options) noexcept {
  std::size_t bytes =
      detail::QueryMatcher::planned_bytes(options.matching_capacity, options.matching_query_tags);
  if (options.analytics.enabled) {
    bytes += detail::TrafficAnalytics::planned_bytes(options.analytics);
  }
  return bytes;
}

}  // namespace dnsmon
