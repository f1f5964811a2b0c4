#include "matcher.hpp"

#include <bit>
#include <cassert>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>

#include "dnsmon/detail/siphash.hpp"

namespace dnsmon::detail {

namespace {

constexpr std::int64_t kMaxTsNs = std::int64_t{1} << 62U;  // far beyond any pcap timestamp
constexpr std::int64_t kMaxTimeoutNs = 3'600'000'000'000;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

// Lower-cases the ASCII letters of eight bytes at once. DNS compares names case-insensitively for
// A-Z only (RFC 4343); other bytes, including those >= 0x80, are left alone.
constexpr std::uint64_t ascii_lower(std::uint64_t w) noexcept {
  constexpr std::uint64_t kOnes = 0x0101'0101'0101'0101ULL;
  const std::uint64_t low7 = w & (0x7fU * kOnes);
  const std::uint64_t ge_a = low7 + (0x80U - 'A') * kOnes;          // high bit set iff byte >= 'A'
  const std::uint64_t gt_z = low7 + (0x80U - 'Z' - 1) * kOnes;      // high bit set iff byte > 'Z'
  const std::uint64_t upper = ge_a & ~gt_z & ~w & (0x80U * kOnes);  // ~w: bytes >= 0x80 are not
  return w | (upper >> 2U);                                         // 0x80 >> 2 == 0x20
}

static_assert(ascii_lower(0x4041'5a5b'6061'7a7bULL) == 0x4061'7a5b'6061'7a7bULL);
static_assert(ascii_lower(0xc1da'c0db'0000'0000ULL) == 0xc1da'c0db'0000'0000ULL);

std::uint64_t load_u32(const std::uint8_t* p) noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint64_t load_u64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void require(bool ok, const char* what) {
  if (!ok) {
    throw std::invalid_argument(what);
  }
}

}  // namespace

LatencyHistogramSnapshot LatencyHistogram::snapshot() const noexcept {
  LatencyHistogramSnapshot s;
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum_s = sum_s_.load(std::memory_order_relaxed);
  return s;
}

QueryMatcher::QueryMatcher(MatcherOptions options) : options_(options) {
  require(options_.capacity >= 1 && options_.capacity <= (std::size_t{1} << 24U),
          "matcher capacity must be between 1 and 2^24");
  require(options_.timeout_ns > 0 && options_.timeout_ns <= kMaxTimeoutNs,
          "matcher timeout must be positive and at most one hour");

  std::uint64_t seed = options_.hash_seed;
  if (seed == 0) {
    std::random_device rd;
    seed = (std::uint64_t{rd()} << 32U) ^ rd();
  }
  for (auto* key : {&name_key_, &tuple_key_}) {
    (*key)[0] = splitmix64(seed);
    (*key)[1] = splitmix64(seed);
  }

  nodes_.resize(options_.capacity);
  // At most one entry per two buckets keeps chains short, even for misses.
  buckets_.assign(std::bit_ceil(2 * options_.capacity), kNone);
  bucket_mask_ = static_cast<std::uint32_t>(buckets_.size() - 1);
  for (std::size_t i = nodes_.size(); i-- > 0;) {
    nodes_[i].bucket_next = free_head_;
    free_head_ = static_cast<std::uint32_t>(i);
  }
  next_expiry_ns_ = kNever;

  memory_gauge_.set(nodes_.capacity() * sizeof(Node) + buckets_.capacity() * sizeof(std::uint32_t));
}

void QueryMatcher::check_owner() noexcept {
#ifndef NDEBUG
  if (owner_ == std::thread::id{}) {
    owner_ = std::this_thread::get_id();
  }
  assert(owner_ == std::this_thread::get_id() && "a QueryMatcher is used by one thread");
#endif
}

std::uint64_t QueryMatcher::name_hash(std::string_view name) const noexcept {
  SipHasher h{name_key_};
  const char* p = name.data();
  std::size_t n = name.size();
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, sizeof w);
    h.word(ascii_lower(w));
  }
  std::uint64_t tail = 0;
  if (n > 0) {
    std::memcpy(&tail, p, n);
  }
  return h.finish(ascii_lower(tail) | (std::uint64_t{name.size() & 0xffU} << 56U));
}

std::uint64_t QueryMatcher::key_hash(const Key& key) const noexcept {
  SipHasher h{tuple_key_};
  h.word(std::uint64_t{key.client_port} | (std::uint64_t{key.id} << 16U) |
         (std::uint64_t{key.qtype} << 32U) | (std::uint64_t{key.qclass} << 48U));
  h.word(key.qname_hash);
  // The family comes before the addresses and fixes how many words follow: the input is
  // prefix-free, so distinct keys never feed the same words.
  if (key.family == 4) {
    h.word(load_u32(key.client.data()) | (load_u32(key.server.data()) << 32U));
    return h.finish((std::uint64_t{4} << 8U) | static_cast<std::uint64_t>(key.transport));
  }
  h.word(load_u64(key.client.data()));
  h.word(load_u64(key.client.data() + 8));
  h.word(load_u64(key.server.data()));
  h.word(load_u64(key.server.data() + 8));
  return h.finish((std::uint64_t{key.family} << 8U) | static_cast<std::uint64_t>(key.transport));
}

QueryMatcher::Key QueryMatcher::make_key(const DnsMessage& m, bool response) const noexcept {
  Key k;
  const IpAddr& client = response ? m.dst : m.src;
  const IpAddr& server = response ? m.src : m.dst;
  k.family = client.family;
  if (k.family == 4) {
    // Only the first 4 bytes are an IPv4 address; the rest stay zero, whatever the parser left.
    std::memcpy(k.client.data(), client.bytes.data(), 4);
    std::memcpy(k.server.data(), server.bytes.data(), 4);
  } else {
    k.client = client.bytes;
    k.server = server.bytes;
  }
  k.client_port = response ? m.dport : m.sport;
  k.id = m.id;
  k.qtype = m.qtype;
  k.qclass = m.qclass;
  k.transport = m.transport;
  k.qname_hash = name_hash(m.qname.view());
  return k;
}

std::uint32_t QueryMatcher::find(const Key& key, std::uint32_t hash_lo) const noexcept {
  for (std::uint32_t i = buckets_[hash_lo & bucket_mask_]; i != kNone; i = nodes_[i].bucket_next) {
    const Node& n = nodes_[i];
    if (n.hash_lo == hash_lo && n.key == key) {
      return i;
    }
  }
  return kNone;
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
  while (oldest_ != kNone) {
    const std::int64_t due_ns = nodes_[oldest_].ts_ns + options_.timeout_ns;
    if (clock_ns_ <= due_ns) {
      next_expiry_ns_ = due_ns;
      break;
    }
    remove(oldest_);
    ++removed;
  }
  if (oldest_ == kNone) {
    next_expiry_ns_ = kNever;
  }
  timeouts_.add(removed);
  return removed;
}

std::size_t QueryMatcher::expire(std::int64_t now_ns) noexcept {
  check_owner();
  advance_clock(std::clamp<std::int64_t>(now_ns, 0, kMaxTsNs));
  return expire_due();
}

void QueryMatcher::remove(std::uint32_t index) noexcept {
  assert(index < nodes_.size() && "remove() needs an entry in use");
  Node& n = nodes_[index];
  std::uint32_t* link = &buckets_[n.hash_lo & bucket_mask_];
  while (*link != index) {
    assert(*link != kNone && "an entry in use is in its bucket chain");
    link = &nodes_[*link].bucket_next;
  }
  *link = n.bucket_next;

  if (n.older != kNone) {
    nodes_[n.older].newer = n.newer;
  } else {
    oldest_ = n.newer;
  }
  if (n.newer != kNone) {
    nodes_[n.newer].older = n.older;
  } else {
    newest_ = n.older;
  }

  n.bucket_next = free_head_;
  free_head_ = index;
  --entries_;
  entries_gauge_.set(entries_);
}

QueryMatcher::QueryOutcome QueryMatcher::on_query(const DnsMessage& query) noexcept {
  check_owner();
  const std::int64_t ts_ns = std::clamp<std::int64_t>(query.ts_ns, 0, kMaxTsNs);
  advance_clock(ts_ns);
  expire_due();
  queries_.add();

  const Key key = make_key(query, false);
  const auto hash_lo = static_cast<std::uint32_t>(key_hash(key));
  if (find(key, hash_lo) != kNone) {
    duplicates_.add();  // the entry keeps its first timestamp and its place in the age list
    return QueryOutcome::Duplicate;
  }

  if (free_head_ == kNone) {
    remove(oldest_);  // full: the oldest entry is not due yet, or expire_due() would have freed it
    evictions_.add();
  }
  const std::uint32_t index = free_head_;
  Node& n = nodes_[index];
  free_head_ = n.bucket_next;

  n.key = key;
  n.ts_ns = ts_ns;
  n.hash_lo = hash_lo;
  std::uint32_t& bucket = buckets_[hash_lo & bucket_mask_];
  n.bucket_next = bucket;
  bucket = index;

  n.older = newest_;
  n.newer = kNone;
  if (newest_ != kNone) {
    nodes_[newest_].newer = index;
  } else {
    oldest_ = index;
    next_expiry_ns_ = ts_ns + options_.timeout_ns;
  }
  newest_ = index;
  ++entries_;
  entries_gauge_.set(entries_);
  return QueryOutcome::Inserted;
}

bool QueryMatcher::on_response(const DnsMessage& response, Result& result) noexcept {
  check_owner();
  const std::int64_t ts_ns = std::clamp<std::int64_t>(response.ts_ns, 0, kMaxTsNs);
  advance_clock(ts_ns);
  expire_due();

  const Key key = make_key(response, true);
  const auto hash_lo = static_cast<std::uint32_t>(key_hash(key));
  const std::uint32_t index = find(key, hash_lo);
  if (index == kNone) {
    unmatched_.add();
    return false;
  }
  const std::int64_t query_ts_ns = nodes_[index].ts_ns;
  remove(index);
  matched_.add();

  result.query_ts_ns = query_ts_ns;
  result.latency_ns = std::max<std::int64_t>(ts_ns - query_ts_ns, 0);
  latency_[static_cast<std::size_t>(response.transport)]
          [static_cast<std::size_t>(classify_rcode(response.rcode))]
              .record(result.latency_ns);
  return true;
}

MatcherStats QueryMatcher::stats() const noexcept {
  MatcherStats s;
  s.queries = queries_.get();
  s.matched = matched_.get();
  s.timeouts = timeouts_.get();
  s.unmatched_responses = unmatched_.get();
  s.duplicates = duplicates_.get();
  s.evictions = evictions_.get();
  s.entries = entries_gauge_.get();
  s.capacity = options_.capacity;
  s.memory_bytes = memory_gauge_.get();
  return s;
}

}  // namespace dnsmon::detail
