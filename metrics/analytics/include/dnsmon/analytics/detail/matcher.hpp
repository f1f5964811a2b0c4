// Matches DNS responses to their queries on one worker and measures the response latency.
//
// A QueryMatcher holds the outstanding queries of one worker in a table of fixed capacity. The key
// is the transport, client address and port, server address, DNS id, qtype, qclass and a keyed
// 64-bit hash of the lower-cased qname (qname_hash() below); the name itself is not stored. The
// server port is not part of the key: the parser decodes only DNS ports, so it adds nothing. A
// response looks up the reversed tuple (its destination is the client); a match removes the entry
// and records the latency in a histogram labelled by leg, transport and coarse rcode class. Both
// directions of a flow reach the same worker, so each worker has its own table.
//
// The leg (legs.hpp) comes with the probe: the caller decides it from the message's addresses. A
// query's entry keeps its leg, so its timeout or eviction counts on the leg it was sent on, and
// the matching counters other than `queries` are kept per leg.
//
// Policies:
// - A retransmission (a query whose key is already outstanding) keeps the entry's FIRST timestamp
//   and is counted in `duplicates`. The latency is then what the client waited since its first
//   attempt, loss included, and a replayed query can neither extend an entry's life nor move it in
//   the age order. The first response removes the entry; a second one counts as unmatched.
// - Time is packet time. The clock is the largest timestamp seen, so it never runs backwards. A
//   query is answered in time when latency <= timeout_ns. An entry older than that is removed and
//   counted in `timeouts`, lazily on every call and by expire(). Entries expire in insertion order
//   (an age list), so each costs O(1) once; a timestamp that arrives out of order expires no
//   earlier than the entries inserted before it.
// - When the table is full, a new query evicts the oldest entry (`evictions`). It never grows.
// - A response with an earlier timestamp than its query (captures merged out of order) matches
//   with latency 0. Timestamps are clamped to [0, 2^62] so that no difference can overflow.
// - Matching does not look at qr, protocol or flags: the caller passes queries to on_query() and
//   responses to on_response(), and only unicast DNS (mDNS and LLMNR answers do not reverse the
//   tuple, so their queries would all time out).
// Conservation: queries == duplicates + matched + timeouts + evictions + entries.
//
// The table is chaining over a pool of 64-byte nodes, one cache line each, that hold the whole key
// (addresses, ports, id, qtype, qclass, name hash, family, transport): matching is exact on
// everything but the name, which is compared by its 64-bit keyed hash. The age list lives in a
// separate array of 8-byte links, so unlinking an answered query touches its neighbours' links,
// not their nodes. Buckets number the next power of two >= 2 * capacity. Bucket indices come from
// one multiply-fold hash of the key under keys drawn from a per-process random seed, so crafted
// ids, ports or names cannot pile into one chain (matcher.cpp explains why this hash is enough
// here).
//
// Query tags (MatcherOptions::query_tags, for the detection module): each entry then also has a
// 64-byte tag that its owner fills after on_query() (last_tag()) and reads again after the
// on_response() that matched it (matched_tag()), and a timeout hands the entry,
// with its tag, to the TimeoutSink (set_timeout_sink()) before removing it. A matched, duplicate or
// evicted query is not handed on. The matcher zeroes a tag's first word when it hands out the
// entry, so a tag nobody filled reads as empty.
//
// Thread-safety: a QueryMatcher is owned by one worker thread, which calls on_query(),
//   on_response() and expire(). stats() and latency() may be called from any thread: the counters
//   and histograms are single-writer relaxed atomics, so each value is recent but a snapshot is
//   not a consistent cut. qname_hash() is a pure function.
// Allocation: only the constructor allocates: capacity * (64 + 8) bytes for the nodes and the age
//   links (and 64 more per entry with query tags) plus 4 bytes per bucket, about 5.2 MB at the
//   default capacity of 65536. Nodes are handed out in index order and the most recently freed is
//   reused first, so the matcher writes only as many nodes as the most queries ever outstanding at
//   once, and the pages beyond stay untouched (the buckets are all written at construction). The
//   rest never allocates.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "dnsmon/analytics.hpp"
#include "dnsmon/analytics/legs.hpp"
#include "dnsmon/common/histogram.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon::detail {

// Upper bounds of the latency buckets in seconds, for the exposition. A latency equal to a bound
// falls in that bucket (Prometheus `le`); a last, implicit bucket counts the rest (+Inf).
// Six bounds a decade (1, 1.5, 2, 3, 5, 7), from 10 us to 5 s: a neighbour is at most 1.5 times
// its bound, so histogram_quantile() interpolates within 10 % of the true p50, p90 and p99 of a
// LAN server answering in ~30 us and of a WAN resolver in ~30 ms (docs/performance.md gives the
// simulation; tests/daemon/latency_quantiles_test.sh checks it on generated captures).
inline constexpr std::array<double, 35> kLatencyBoundsS{
    0.00001, 0.000015, 0.00002, 0.00003, 0.00005, 0.00007,  // 10 us
    0.0001,  0.00015,  0.0002,  0.0003,  0.0005,  0.0007,   // 100 us
    0.001,   0.0015,   0.002,   0.003,   0.005,   0.007,    // 1 ms
    0.01,    0.015,    0.02,    0.03,    0.05,    0.07,     // 10 ms
    0.1,     0.15,     0.2,     0.3,     0.5,     0.7,      // 100 ms
    1,       1.5,      2,       3,       5};
// The same bounds in nanoseconds, which record() compares against exactly.
inline constexpr std::array<std::int64_t, kLatencyBoundsS.size()> kLatencyBoundsNs{
    10'000,        15'000,        20'000,        30'000,        50'000,       70'000,
    100'000,       150'000,       200'000,       300'000,       500'000,      700'000,
    1'000'000,     1'500'000,     2'000'000,     3'000'000,     5'000'000,    7'000'000,
    10'000'000,    15'000'000,    20'000'000,    30'000'000,    50'000'000,   70'000'000,
    100'000'000,   150'000'000,   200'000'000,   300'000'000,   500'000'000,  700'000'000,
    1'000'000'000, 1'500'000'000, 2'000'000'000, 3'000'000'000, 5'000'000'000};
inline constexpr std::size_t kLatencyBuckets = kLatencyBoundsS.size() + 1;  // + the +Inf bucket

consteval bool latency_bounds_agree() {
  for (std::size_t i = 0; i < kLatencyBoundsS.size(); ++i) {
    // Both sides are the double nearest to the same decimal, since IEEE division rounds correctly.
    if (kLatencyBoundsS[i] != static_cast<double>(kLatencyBoundsNs[i]) / 1e9 ||
        (i > 0 && kLatencyBoundsNs[i] <= kLatencyBoundsNs[i - 1])) {
      return false;
    }
  }
  return true;
}

static_assert(latency_bounds_agree(), "the second and nanosecond bounds must agree and increase");

// The latency label: the response's rcode, coarsely. The classes are those of the counters
// (dnsmon::rcode_class() and kRcodeClassNames in metrics.hpp), in the same order.
enum class RcodeClass : std::uint8_t { NoError, NxDomain, ServFail, Other, Count };
static_assert(static_cast<std::size_t>(RcodeClass::Count) == kRcodeClassNames.size());
inline constexpr std::size_t kRcodeClassCount = static_cast<std::size_t>(RcodeClass::Count);

// rcode is the full (EDNS-extended) rcode of DnsMessage.
inline RcodeClass classify_rcode(std::uint16_t rcode) noexcept {
  return static_cast<RcodeClass>(rcode_class(rcode));
}

// Stable label value: "noerror", "nxdomain", "servfail", "other".
inline std::string_view rcode_class_name(RcodeClass c) noexcept {
  return kRcodeClassNames[std::min(static_cast<std::size_t>(c), kRcodeClassNames.size() - 1)];
}

// Response latencies in fixed buckets (kLatencyBoundsNs), recorded in nanoseconds, summed in
// seconds.
using LatencyHistogram = FixedHistogram<kLatencyBoundsNs>;
using LatencyHistogramSnapshot = LatencyHistogram::Snapshot;

struct MatcherOptions {
  std::size_t capacity = 65536;             // outstanding queries, at most 2^24
  std::int64_t timeout_ns = 5'000'000'000;  // packet time, at most 1 h; later responses unmatched
  // 0: a random seed from std::random_device. The seed of qname_hash() and of the bucket hash;
  // give the worker's analytics the same one so that a name is hashed once per message.
  std::uint64_t hash_seed = 0;
  bool query_tags = false;  // a 64-byte tag per entry, and timeouts handed to a TimeoutSink
};

// An entry's tag (MatcherOptions::query_tags): its owner's bytes. `word` is zeroed when the entry
// is handed out; the rest is left as the last user wrote it.
struct alignas(64) QueryTag {
  std::uint64_t word;
  std::array<unsigned char, 56> bytes;
};

static_assert(sizeof(QueryTag) == 64);

// A query that got no response within the timeout, as the matcher hands it to its TimeoutSink.
struct TimedOutQuery {
  IpAddr client;  // the query's source
  std::uint16_t qtype = 0;
  std::int64_t query_ts_ns = 0;    // its first timestamp
  std::int64_t timeout_ts_ns = 0;  // query_ts_ns + the timeout: when it was given up
  Leg leg = Leg::Unknown;
  Transport transport = Transport::Udp;
  const QueryTag* tag = nullptr;  // the entry's tag
};

// Told of every timeout, on the owner thread, from inside on_query(), on_response() or expire().
// It must not call the matcher.
class TimeoutSink {
 public:
  virtual void on_timeout(const TimedOutQuery& query) noexcept = 0;

 protected:
  TimeoutSink() = default;
  ~TimeoutSink() = default;
  TimeoutSink(const TimeoutSink&) = default;
  TimeoutSink& operator=(const TimeoutSink&) = default;
  TimeoutSink(TimeoutSink&&) = default;
  TimeoutSink& operator=(TimeoutSink&&) = default;
};

// The name hash the matcher keys on: hash_bytes() (sketches.hpp) of the name with the ASCII
// letters A-Z lower-cased (RFC 4343; other bytes, escapes included, are left alone), under seed.
// It equals hash_bytes(lower-cased copy, seed) bit for bit, without making the copy. Pass the
// presentation form (DnsMessage::qname.view()).
[[nodiscard]] std::uint64_t qname_hash(std::string_view presentation_name,
                                       std::uint64_t seed) noexcept;

// A plain copy of the counters, for readers.
struct MatcherStats {
  std::uint64_t queries = 0;              // on_query() calls
  std::uint64_t matched = 0;              // responses that found their query
  std::uint64_t timeouts = 0;             // queries unanswered within the timeout
  std::uint64_t unmatched_responses = 0;  // responses without an outstanding query
  std::uint64_t duplicates = 0;           // queries whose key was already outstanding
  std::uint64_t evictions = 0;            // queries evicted because the table was full
  std::uint64_t entries = 0;              // gauge: outstanding queries
  std::uint64_t capacity = 0;             // gauge: the fixed capacity
  std::uint64_t memory_bytes = 0;         // gauge: bytes allocated by the table

  // Sums another worker's stats into these (the collector adds up the workers').
  MatcherStats& operator+=(const MatcherStats& o) noexcept {
    queries += o.queries;
    matched += o.matched;
    timeouts += o.timeouts;
    unmatched_responses += o.unmatched_responses;
    duplicates += o.duplicates;
    evictions += o.evictions;
    entries += o.entries;
    capacity += o.capacity;
    memory_bytes += o.memory_bytes;
    return *this;
  }
};

class QueryMatcher {
 public:
  struct Result {
    std::int64_t latency_ns = 0;   // response ts - query ts, at least 0
    std::int64_t query_ts_ns = 0;  // the first timestamp of the query
  };

  // The key words that a node stores and compares.
  struct Key {
    std::uint64_t name_hash;
    std::uint64_t fields;  // client port | id << 16 | qtype << 32 | qclass << 48
    // IPv6 (any family but 4): the client address in words 0-1, the server's in 2-3. IPv4: the
    // client in the low half of word 0, the server in the high half, and words 1-3 zero, so the
    // bytes the parser leaves beyond an IPv4 address cannot split a key.
    std::array<std::uint64_t, 4> addrs;
  };

  // A message's key and its hash, from prepare().
  struct Probe {
    Key key;
    std::uint64_t hash;
    std::uint8_t family;
    Transport transport;
    Leg leg;  // not part of the key: the leg the message's counts and latency go to
  };

  enum class QueryOutcome : std::uint8_t {
    Inserted,   // a new entry (possibly after evicting the oldest)
    Duplicate,  // the key was outstanding; the entry keeps its first timestamp
  };

  // Throws std::invalid_argument when capacity is 0 or above 2^24, or timeout_ns is not in
  // (0, 1 h].
  explicit QueryMatcher(MatcherOptions options = {});
  ~QueryMatcher() = default;
  QueryMatcher(const QueryMatcher&) = delete;
  QueryMatcher& operator=(const QueryMatcher&) = delete;

  // The seed in use: options.hash_seed, or the random one drawn for 0. Precomputed name hashes
  // must be qname_hash(name, hash_seed()).
  [[nodiscard]] std::uint64_t hash_seed() const noexcept { return seed_; }

  // Records a query (src is the client). Expires old entries first.
  QueryOutcome on_query(const DnsMessage& query) noexcept {
    return on_query(query, qname_hash(query.qname.view(), seed_));
  }

  // The same, for a caller that has already hashed the name:
  // name_hash == qname_hash(query.qname.view(), hash_seed()). Another value keys the entry under
  // another name, so its response will not match.
  QueryOutcome on_query(const DnsMessage& query, std::uint64_t name_hash) noexcept {
    return on_query(query, prepare(query, false, name_hash));
  }

  // The same with probe == prepare(query, false, name_hash).
  QueryOutcome on_query(const DnsMessage& query, const Probe& probe) noexcept;

  // Looks up the query for a response (dst is the client). Expires old entries first. On a match,
  // fills result, removes the entry, records the latency and returns true; otherwise counts an
  // unmatched response and returns false, leaving result unchanged.
  [[nodiscard]] bool on_response(const DnsMessage& response, Result& result) noexcept {
    return on_response(response, qname_hash(response.qname.view(), seed_), result);
  }

  // The same with name_hash == qname_hash(response.qname.view(), hash_seed()).
  [[nodiscard]] bool on_response(const DnsMessage& response, std::uint64_t name_hash,
                                 Result& result) noexcept {
    return on_response(response, prepare(response, true, name_hash), result);
  }

  // The same with probe == prepare(response, true, name_hash).
  [[nodiscard]] bool on_response(const DnsMessage& response, const Probe& probe,
                                 Result& result) noexcept;

  // The key of a query (response false) or a response, and its hash; starts loading the message's
  // bucket into the cache. The bucket array is too large to stay cached next to the rest of a
  // worker's state, so a random bucket is a cache miss: a caller that has other work for the
  // message can prepare() first, do that work, then call on_query() or on_response() with the
  // probe, and the miss overlaps the work. Reads only the seed: any order of calls is fine.
  // leg: the message's leg (ServerAddresses::leg()), which its counts and latency go to.
  [[nodiscard]] Probe prepare(const DnsMessage& m, bool response, std::uint64_t name_hash,
                              Leg leg = Leg::Unknown) const noexcept;

  // Owner thread, with query tags: the tag of the entry the last on_query() inserted, or nullptr
  // when that query was a duplicate (or the matcher has no tags). Valid until the next call.
  [[nodiscard]] QueryTag* last_tag() noexcept {
    return tags_ && last_inserted_ != kNone ? &tags_[last_inserted_] : nullptr;
  }

  // Owner thread, with query tags: the tag of the query the last on_response() matched, as its
  // owner filled it, or nullptr when that response matched nothing (or the matcher has no tags).
  // The entry is free by then, but no other call has reused it: valid until the next call.
  [[nodiscard]] QueryTag* matched_tag() noexcept {
    return tags_ && last_matched_ != kNone ? &tags_[last_matched_] : nullptr;
  }

  // Owner thread: where timeouts go from now on (nullptr: nowhere). Only with query tags.
  void set_timeout_sink(TimeoutSink* sink) noexcept { sink_ = tags_ ? sink : nullptr; }

  // Advances the clock to now_ns (if later) and removes the entries older than the timeout.
  // Returns how many were removed. Call it when traffic stops, so unanswered queries are counted.
  std::size_t expire(std::int64_t now_ns) noexcept;

  // Any thread. All legs together.
  [[nodiscard]] MatcherStats stats() const noexcept;

  // Any thread. One leg's matched, timeouts, unmatched_responses, duplicates and evictions; the
  // other fields are zero.
  [[nodiscard]] MatcherStats stats(Leg leg) const noexcept;

  // The bytes a matcher of this capacity allocates (stats().memory_bytes), before building one.
  [[nodiscard]] static std::size_t planned_bytes(std::size_t capacity,
                                                 bool query_tags = false) noexcept;

  [[nodiscard]] const LatencyHistogram& latency(Leg leg, Transport transport,
                                                RcodeClass rcode_class) const noexcept {
    return latency_[static_cast<std::size_t>(leg)][static_cast<std::size_t>(transport)]
                   [static_cast<std::size_t>(rcode_class)];
  }

  // Owner thread: outstanding queries.
  [[nodiscard]] std::size_t size() const noexcept { return entries_; }

  // Owner thread: the number of entries in the longest bucket chain, by a scan of every bucket.
  // For tests and diagnostics of how well the hash spreads keys.
  [[nodiscard]] std::size_t longest_chain() const noexcept;

 private:
  static constexpr std::uint32_t kNone = 0xffff'ffff;

  // No default member initializers: the pool is allocated without being written (see
  // Allocation), and every field is set when a node is handed out.
  struct alignas(64) Node {
    Key key;
    std::int64_t ts_ns;
    std::uint32_t bucket_next;  // bucket chain while in use, free list otherwise
    std::uint8_t family;
    Transport transport;
    Leg leg;
  };

  static_assert(sizeof(Node) == 64, "a node is one cache line, as the Allocation line says");

  // The age list, in insertion order; apart from the nodes, so that removing an entry does not
  // pull its neighbours' nodes into the cache.
  struct AgeLink {
    std::uint32_t older, newer;
  };

  [[nodiscard]] std::uint64_t key_hash(const Key& key, std::uint8_t family,
                                       Transport transport) const noexcept;
  // The link (a bucket or a node's bucket_next) that holds the entry with this key, or nullptr.
  [[nodiscard]] std::uint32_t* find(const Probe& probe) noexcept;
  void advance_clock(std::int64_t ts_ns) noexcept;
  std::size_t expire_due() noexcept;
  // Removes the entry whose index *link holds.
  void remove(std::uint32_t* link) noexcept;
  // Removes an entry found through the age list (timed out or evicted).
  void remove_oldest() noexcept;
  // Hands the oldest entry, which timed out, to the sink.
  void report_timeout() noexcept;
  void check_owner() noexcept;

  MatcherOptions options_;
  std::uint64_t seed_ = 0;
  std::array<std::uint64_t, 6> mix_{};  // key_hash()'s secret words, from the seed
  std::unique_ptr<Node[]> nodes_;       // capacity nodes
  std::unique_ptr<AgeLink[]> ages_;     // one per node
  std::unique_ptr<QueryTag[]> tags_;    // one per node, with query tags
  TimeoutSink* sink_ = nullptr;
  std::uint32_t last_inserted_ = kNone;
  std::uint32_t last_matched_ = kNone;
  std::vector<std::uint32_t> buckets_;
  std::uint32_t bucket_mask_ = 0;
  std::uint32_t free_head_ = kNone;  // nodes freed since, most recent first
  std::uint32_t unused_ = 0;         // nodes from here on have never been handed out
  std::uint32_t oldest_ = kNone, newest_ = kNone;
  std::size_t entries_ = 0;
  std::int64_t clock_ns_ = 0;  // the largest timestamp seen
  bool clock_started_ = false;
  // No entry expires before this time, so most calls skip the (cold) oldest node. It is a lower
  // bound: the entry after a removed oldest one was inserted no earlier.
  std::int64_t next_expiry_ns_ = 0;
#ifndef NDEBUG
  std::thread::id owner_{};
#endif

  // The counters kept per leg.
  struct LegCounters {
    SingleWriterCounter matched, timeouts, unmatched, duplicates, evictions;
  };

  SingleWriterCounter queries_, entries_gauge_, memory_gauge_;
  std::array<LegCounters, kLegCount> legs_{};
  std::array<std::array<std::array<LatencyHistogram, kRcodeClassCount>, kTransportCount>, kLegCount>
      latency_{};
};

}  // namespace dnsmon::detail
