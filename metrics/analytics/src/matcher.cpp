#include "dnsmon/analytics/detail/matcher.hpp"

#include <array>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "dnsmon/analytics/detail/sketches.hpp"
#include "dnsmon/common/ascii.hpp"
#include "dnsmon/common/bytes.hpp"
#include "dnsmon/common/hash.hpp"

namespace dnsmon::detail {

namespace {

constexpr std::int64_t kMaxTsNs = std::int64_t{1} << 62U;  // far beyond any pcap timestamp
constexpr std::int64_t kMaxTimeoutNs = 3'600'000'000'000;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

// Sixteen bytes, lower-cased, as the two words load64(p) and load64(p + 8) would give.
struct WordPair {
  std::uint64_t lo, hi;
};

WordPair ascii_lower16(const unsigned char* p) noexcept {
  WordPair w{};
  static_assert(sizeof w == 16);
  ascii::lower16(p, &w);
  return w;
}

void require(bool ok, const char* what) {
  if (!ok) {
    throw std::invalid_argument(what);
  }
}

}  // namespace

// hash_bytes() of the lower-cased name, without the copy: the same algorithm, with every word
// lower-cased as it is loaded.
std::uint64_t qname_hash(std::string_view presentation_name, std::uint64_t seed) noexcept {
  struct LowerBytes {
    static hash_internal::Words load16(const unsigned char* p) noexcept {
      const WordPair w = ascii_lower16(p);
      return {w.lo, w.hi};
    }

    static std::uint64_t load8(const unsigned char* p) noexcept {
      return ascii::lower_word(hash_internal::load64(p));
    }

    static std::uint64_t load4(const unsigned char* p) noexcept {
      return ascii::lower_word(hash_internal::load32(p));
    }

    static std::uint64_t byte(unsigned char c) noexcept { return ascii::lower(c); }
  };

  return hash_internal::hash_with<LowerBytes>(
      reinterpret_cast<const unsigned char*>(presentation_name.data()),  // NOLINT: same bytes
      presentation_name.size(), seed);
}

QueryMatcher::QueryMatcher(MatcherOptions options) : options_(options) {
  require(options_.capacity >= 1 && options_.capacity <= (std::size_t{1} << 24U),
          "matcher capacity must be between 1 and 2^24");
  require(options_.timeout_ns > 0 && options_.timeout_ns <= kMaxTimeoutNs,
          "matcher timeout must be positive and at most one hour");

  seed_ = seed_or_random(options_.hash_seed);
  mix_ = derive_keys<std::tuple_size_v<decltype(mix_)>>(seed_);

  // Written only when handed out: the pages of nodes never used are never touched.
  nodes_ = std::make_unique_for_overwrite<Node[]>(options_.capacity);
  ages_ = std::make_unique_for_overwrite<AgeLink[]>(options_.capacity);
  if (options_.query_tags) {
    tags_ = std::make_unique_for_overwrite<QueryTag[]>(options_.capacity);
  }
  // At most one entry per two buckets keeps chains short, even for misses.
  buckets_.assign(std::bit_ceil(2 * options_.capacity), kNone);
  bucket_mask_ = static_cast<std::uint32_t>(buckets_.size() - 1);
  next_expiry_ns_ = kNever;

  memory_gauge_.set(planned_bytes(options_.capacity, options_.query_tags));
}

std::size_t QueryMatcher::planned_bytes(std::size_t capacity, bool query_tags) noexcept {
  return capacity * (sizeof(Node) + sizeof(AgeLink) + (query_tags ? sizeof(QueryTag) : 0)) +
         std::bit_ceil(2 * capacity) * sizeof(std::uint32_t);
}

void QueryMatcher::check_owner() noexcept {
#ifndef NDEBUG
  if (owner_ == std::thread::id{}) {
    owner_ = std::this_thread::get_id();
  }
  assert(owner_ == std::this_thread::get_id() && "a QueryMatcher is used by one thread");
#endif
}

// One pass over the key: two 64x64->128-bit multiplies, each folded to 64 bits, for IPv4 and three
// for IPv6, under secret words from the seed. With qname_hash() that is about 95 instructions per
// message, against about 400 for the two SipHash-1-3 passes (name, then tuple) this replaces. What
// SipHash adds is resistance to an attacker who can watch hash values or bucket collisions and
// adapt. Here nobody can: the matcher exports only counters, a passive monitor answers nothing, and
// its CPU time is not observable from the network. An outsider chooses ports, ids and names blind;
// every word they choose is xored with 64 unknown bits before it is multiplied, so they cannot
// tell which inputs share a bucket, and the known ways to make multiply-fold hashes collide need
// the key or an output oracle. Rust's foldhash and aHash (without AES) use the same keyed folded
// multiply against hash flooding. Even a pile-up would cost only CPU: the table is bounded and the
// counts stay exact. A last folded multiply by a constant mixes the high bits of the sum into the
// low ones that pick the bucket.
[[gnu::always_inline]] inline std::uint64_t QueryMatcher::key_hash(
    const Key& key, std::uint8_t family, Transport transport) const noexcept {
  using hash_internal::fold_mul;
  const std::uint64_t meta = (std::uint64_t{family} << 8U) | static_cast<std::uint64_t>(transport);
  std::uint64_t h = fold_mul(key.fields ^ mix_[0], key.name_hash ^ mix_[1]) ^
                    fold_mul(key.addrs[0] ^ mix_[2], key.addrs[1] ^ mix_[3] ^ meta);
  if (family != 4) {  // words 2 and 3 are zero for IPv4
    h ^= fold_mul(key.addrs[2] ^ mix_[4], key.addrs[3] ^ mix_[5]);
  }
  // The bucket comes from the low bits. When the fixed factor of a product has many trailing zeros
  // and is small, keys that differ in one 16-bit field (an id, a port) differ only in the high bits
  // of that product's low half: about one seed in a hundred put 17 such keys of 16,384 into one
  // chain (tests/metrics/matcher_test.cpp). One more folded multiply brings every bit down.
  return fold_mul(h, hash_internal::kK0);
}

QueryMatcher::Probe QueryMatcher::prepare(const DnsMessage& m, bool response,
                                          std::uint64_t name_hash, Leg leg) const noexcept {
  Probe p{};
  p.leg = static_cast<std::size_t>(leg) < kLegCount ? leg : Leg::Unknown;
  const IpAddr& client = response ? m.dst : m.src;
  const IpAddr& server = response ? m.src : m.dst;
  p.family = client.family;
  p.transport = m.transport;
  if (p.family == 4) {
    // Only the first 4 bytes are an IPv4 address; the rest stay zero, whatever the parser left.
    p.key.addrs = {std::uint64_t{bytes::load_host32(client.bytes.data())} |
                       (std::uint64_t{bytes::load_host32(server.bytes.data())} << 32U),
                   0, 0, 0};
  } else {
    p.key.addrs = {
        bytes::load_host64(client.bytes.data()), bytes::load_host64(client.bytes.data() + 8),
        bytes::load_host64(server.bytes.data()), bytes::load_host64(server.bytes.data() + 8)};
  }
  p.key.fields = std::uint64_t{response ? m.dport : m.sport} | (std::uint64_t{m.id} << 16U) |
                 (std::uint64_t{m.qtype} << 32U) | (std::uint64_t{m.qclass} << 48U);
  p.key.name_hash = name_hash;
  p.hash = key_hash(p.key, p.family, p.transport);
  __builtin_prefetch(&buckets_[p.hash & bucket_mask_]);  // GCC and Clang; a hint, never a fault
  return p;
}

[[gnu::always_inline]] inline std::uint32_t* QueryMatcher::find(const Probe& probe) noexcept {
  std::uint32_t* link = &buckets_[probe.hash & bucket_mask_];
  for (; *link != kNone; link = &nodes_[*link].bucket_next) {
    const Node& n = nodes_[*link];
    // One branch for the whole comparison: chains are short, so a miss is rarely worth an early
    // exit, and mispredicted field-by-field branches would cost more.
    std::uint64_t diff = (n.key.fields ^ probe.key.fields) |
                         (n.key.name_hash ^ probe.key.name_hash) |
                         static_cast<std::uint64_t>(n.family ^ probe.family) |
                         static_cast<std::uint64_t>(static_cast<std::uint8_t>(n.transport) ^
                                                    static_cast<std::uint8_t>(probe.transport));
    for (std::size_t w = 0; w < n.key.addrs.size(); ++w) {
      diff |= n.key.addrs[w] ^ probe.key.addrs[w];
    }
    if (diff == 0) {
      return link;
    }
  }
  return nullptr;
}

void QueryMatcher::advance_clock(std::int64_t ts_ns) noexcept {
  if (!clock_started_ || ts_ns > clock_ns_) {
    clock_ns_ = ts_ns;
    clock_started_ = true;
  }
}

std::size_t QueryMatcher::expire_due() noexcept {
  if (clock_ns_ <= next_expiry_ns_) {
    return 0;  // the common case: the oldest entry cannot be due yet
  }
  std::size_t removed = 0;
  std::array<std::uint64_t, kLegCount> by_leg{};
  while (oldest_ != kNone) {
    const std::int64_t due_ns = nodes_[oldest_].ts_ns + options_.timeout_ns;
    if (clock_ns_ <= due_ns) {
      next_expiry_ns_ = due_ns;
      break;
    }
    ++by_leg[static_cast<std::size_t>(nodes_[oldest_].leg)];
    if (sink_ != nullptr) {
      report_timeout();
    }
    remove_oldest();
    ++removed;
  }
  if (oldest_ == kNone) {
    next_expiry_ns_ = kNever;
  }
  for (std::size_t l = 0; l < kLegCount; ++l) {
    if (by_leg[l] != 0) {
      legs_[l].timeouts.add(by_leg[l]);
    }
  }
  return removed;
}

std::size_t QueryMatcher::expire(std::int64_t now_ns) noexcept {
  check_owner();
  advance_clock(std::clamp<std::int64_t>(now_ns, 0, kMaxTsNs));
  return expire_due();
}

[[gnu::always_inline]] inline void QueryMatcher::remove(std::uint32_t* link) noexcept {
  const std::uint32_t index = *link;
  assert(index < unused_ && "remove() needs an entry in use");
  Node& n = nodes_[index];
  *link = n.bucket_next;

  const AgeLink age = ages_[index];
  if (age.older != kNone) {
    ages_[age.older].newer = age.newer;
  } else {
    oldest_ = age.newer;
  }
  if (age.newer != kNone) {
    ages_[age.newer].older = age.older;
  } else {
    newest_ = age.older;
  }

  n.bucket_next = free_head_;
  free_head_ = index;
  --entries_;
  entries_gauge_.set(entries_);
}

void QueryMatcher::remove_oldest() noexcept {
  assert(oldest_ != kNone && "remove_oldest() needs an entry");
  const Node& n = nodes_[oldest_];
  // The node does not keep its hash (it would not fit in the cache line); timeouts and evictions
  // are rare enough to compute it again.
  std::uint32_t* link = &buckets_[key_hash(n.key, n.family, n.transport) & bucket_mask_];
  while (*link != oldest_) {
    assert(*link != kNone && "an entry in use is in its bucket chain");
    link = &nodes_[*link].bucket_next;
  }
  remove(link);
}

void QueryMatcher::report_timeout() noexcept {
  const Node& n = nodes_[oldest_];
  TimedOutQuery q;
  q.client.family = n.family;
  if (n.family == 4) {
    bytes::store_host32(q.client.bytes.data(), static_cast<std::uint32_t>(n.key.addrs[0]));
  } else {
    bytes::store_host64(q.client.bytes.data(), n.key.addrs[0]);
    bytes::store_host64(q.client.bytes.data() + 8, n.key.addrs[1]);
  }
  q.qtype = static_cast<std::uint16_t>(n.key.fields >> 32U);
  q.query_ts_ns = n.ts_ns;
  q.timeout_ts_ns = n.ts_ns + options_.timeout_ns;
  q.leg = n.leg;
  q.transport = n.transport;
  q.tag = &tags_[oldest_];
  sink_->on_timeout(q);
}

QueryMatcher::QueryOutcome QueryMatcher::on_query(const DnsMessage& query,
                                                  const Probe& probe) noexcept {
  check_owner();
  const std::int64_t ts_ns = std::clamp<std::int64_t>(query.ts_ns, 0, kMaxTsNs);
  advance_clock(ts_ns);
  expire_due();
  queries_.add();
  last_matched_ = kNone;  // this query may take the matched entry
  LegCounters& leg = legs_[static_cast<std::size_t>(probe.leg)];

  if (find(probe) != nullptr) {
    leg.duplicates.add();  // the entry keeps its first timestamp and its place in the age list
    last_inserted_ = kNone;
    return QueryOutcome::Duplicate;
  }

  if (entries_ == options_.capacity) {
    // Full: the oldest entry is not due yet, or expire_due() would have freed it. The eviction
    // counts on the evicted query's leg.
    legs_[static_cast<std::size_t>(nodes_[oldest_].leg)].evictions.add();
    remove_oldest();
  }
  std::uint32_t index = free_head_;
  if (index != kNone) {
    free_head_ = nodes_[index].bucket_next;
  } else {
    index = unused_++;  // not full, and nothing freed: a node never used yet
  }
  Node& n = nodes_[index];
  n.key = probe.key;
  n.ts_ns = ts_ns;
  n.family = probe.family;
  n.transport = probe.transport;
  n.leg = probe.leg;
  if (tags_) {
    tags_[index].word = 0;
  }
  last_inserted_ = index;
  std::uint32_t& bucket = buckets_[probe.hash & bucket_mask_];
  n.bucket_next = bucket;
  bucket = index;

  ages_[index] = AgeLink{newest_, kNone};
  if (newest_ != kNone) {
    ages_[newest_].newer = index;
  } else {
    oldest_ = index;
    next_expiry_ns_ = ts_ns + options_.timeout_ns;
  }
  newest_ = index;
  ++entries_;
  entries_gauge_.set(entries_);
  return QueryOutcome::Inserted;
}

bool QueryMatcher::on_response(const DnsMessage& response, const Probe& probe,
                               Result& result) noexcept {
  check_owner();
  const std::int64_t ts_ns = std::clamp<std::int64_t>(response.ts_ns, 0, kMaxTsNs);
  advance_clock(ts_ns);
  expire_due();

  std::uint32_t* link = find(probe);
  LegCounters& leg = legs_[static_cast<std::size_t>(probe.leg)];
  if (link == nullptr) {
    leg.unmatched.add();
    last_matched_ = kNone;
    return false;
  }
  const std::int64_t query_ts_ns = nodes_[*link].ts_ns;
  last_matched_ = *link;
  remove(link);
  leg.matched.add();

  result.query_ts_ns = query_ts_ns;
  result.latency_ns = std::max<std::int64_t>(ts_ns - query_ts_ns, 0);
  latency_[static_cast<std::size_t>(probe.leg)][static_cast<std::size_t>(response.transport)]
          [static_cast<std::size_t>(classify_rcode(response.rcode))]
              .record(result.latency_ns, static_cast<double>(result.latency_ns) / 1e9);
  return true;
}

std::size_t QueryMatcher::longest_chain() const noexcept {
  std::size_t longest = 0;
  for (const std::uint32_t head : buckets_) {
    std::size_t length = 0;
    for (std::uint32_t i = head; i != kNone; i = nodes_[i].bucket_next) {
      ++length;
    }
    longest = std::max(longest, length);
  }
  return longest;
}

MatcherStats QueryMatcher::stats(Leg leg) const noexcept {
  MatcherStats s;
  if (static_cast<std::size_t>(leg) < kLegCount) {
    const LegCounters& c = legs_[static_cast<std::size_t>(leg)];
    s.matched = c.matched.get();
    s.timeouts = c.timeouts.get();
    s.unmatched_responses = c.unmatched.get();
    s.duplicates = c.duplicates.get();
    s.evictions = c.evictions.get();
  }
  return s;
}

MatcherStats QueryMatcher::stats() const noexcept {
  MatcherStats s;
  for (std::size_t l = 0; l < kLegCount; ++l) {
    s += stats(static_cast<Leg>(l));
  }
  s.queries = queries_.get();
  s.entries = entries_gauge_.get();
  s.capacity = options_.capacity;
  s.memory_bytes = memory_gauge_.get();
  return s;
}

}  // namespace dnsmon::detail
