// Sliding-window traffic analytics of one worker: top-N registrable domains, qnames, clients,
// NXDOMAIN names and SERVFAIL names (Space-Saving), and distinct clients, qnames and registrable
// domains (HyperLogLog), over each configured window of packet time.
//
// Per message the worker touches only small "staging" summaries that cover the current second of
// packet time: one Space-Saving update per table and one HLL register per distinct count, with each
// name hashed once. When a message of a later second arrives, the worker folds the staging
// summaries into every window's current sub-window (an O(capacity) merge, once a second instead of
// once a message per window), merges each window's live sub-windows into a snapshot, and
// publishes the snapshots: it swaps a back buffer with the front one under a mutex that only the
// exporter otherwise takes. The exporter merges the workers' front buffers (both kinds of summary
// merge with their guarantees intact, sketches.hpp) and reports the top N of the union.
//
// So a snapshot lags the traffic by up to one second of packet time, plus whatever the worker has
// not yet seen; at the end of a replay finish() publishes everything. In live capture, when
// traffic stops, the worker calls tick() with the wall clock so the windows still slide.
//
// Keys: names lower-cased (A-Z only, RFC 4343), in presentation form, at most 255 characters
// (longer ones, which only escapes produce, are skipped and counted); clients are the query's
// source address masked to the configured prefix. Pseudonymisation happens at export, so the
// worker never spends time on it.
//
// Thread-safety: one worker calls on_query/on_response/tick/finish; read_published() and the stats
//   may be called from any thread. Allocation: the constructor only; nothing per message or per
//   publication.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "dnsmon/analytics.hpp"
#include "dnsmon/analytics/detail/sketches.hpp"
#include "dnsmon/domains.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon::detail {

enum class NameTable : std::uint8_t { Domain, Qname, Nxdomain, Servfail, Count };
inline constexpr std::size_t kNameTables = static_cast<std::size_t>(NameTable::Count);
enum class DistinctKind : std::uint8_t { Clients, Qnames, Domains, Count };
inline constexpr std::size_t kDistinctKinds = static_cast<std::size_t>(DistinctKind::Count);

using NameSummary = SpaceSaving<NameKey>;
using ClientSummary = SpaceSaving<AddrKey>;

inline constexpr std::int64_t kPublishPeriodNs = 1'000'000'000;

// ASCII lower-case copy of a presentation-form name into key; false if it does not fit.
bool lower_name(std::string_view name, NameKey& key) noexcept;

// The client key of an address: masked to the prefix of its family, family in the last byte.
AddrKey client_key(const IpAddr& addr, std::uint8_t ipv4_prefix, std::uint8_t ipv6_prefix) noexcept;

// One window's summaries, as published and as merged by the exporter.
struct WindowSnapshot {
  WindowSnapshot(const AnalyticsOptions& options, std::uint64_t seed);

  [[nodiscard]] bool merge(const WindowSnapshot& other) noexcept;
  void clear() noexcept;

  std::vector<NameSummary> names;  // indexed by NameTable
  ClientSummary clients;
  std::vector<HyperLogLog> distinct;  // indexed by DistinctKind
  std::int64_t as_of_ns = 0;          // packet time of the publication (latest over workers)
};

struct AnalyticsStats {
  std::uint64_t names_too_long = 0;  // names skipped by the name tables
  std::uint64_t publications = 0;
  std::uint64_t domain_cache_hits = 0, domain_cache_misses = 0;
  // memory by table: the summaries of each kind over staging, windows and published buffers
  std::array<std::uint64_t, kNameTables> name_bytes{};
  std::uint64_t client_bytes = 0;
  std::array<std::uint64_t, kDistinctKinds> distinct_bytes{};
  std::uint64_t domain_cache_bytes = 0;

  // Field by field: the workers' stats summed.
  AnalyticsStats& operator+=(const AnalyticsStats& o) noexcept {
    names_too_long += o.names_too_long;
    publications += o.publications;
    domain_cache_hits += o.domain_cache_hits;
    domain_cache_misses += o.domain_cache_misses;
    for (std::size_t t = 0; t < kNameTables; ++t) {
      name_bytes[t] += o.name_bytes[t];
    }
    client_bytes += o.client_bytes;
    for (std::size_t k = 0; k < kDistinctKinds; ++k) {
      distinct_bytes[k] += o.distinct_bytes[k];
    }
    domain_cache_bytes += o.domain_cache_bytes;
    return *this;
  }
};

class TrafficAnalytics {
 public:
  // Throws std::invalid_argument for options the config validation should have refused.
  // Publications are at most one per min_publish_interval of wall-clock time (finish() always
  // publishes): a crafted capture whose every packet starts a new second must not make every
  // packet pay for merging all windows.
  TrafficAnalytics(const AnalyticsOptions& options, std::shared_ptr<const PublicSuffixList> list,
                   std::uint64_t seed,
                   std::chrono::nanoseconds min_publish_interval = std::chrono::milliseconds(50));
  ~TrafficAnalytics();
  TrafficAnalytics(const TrafficAnalytics&) = delete;
  TrafficAnalytics& operator=(const TrafficAnalytics&) = delete;

  // name: the lower-cased qname (valid_name false if it did not fit), name_hash its hash_bytes()
  // under this object's seed.
  void on_query(const DnsMessage& m, const NameKey& name, bool valid_name,
                std::uint64_t name_hash) noexcept {
    on_query(m, name, valid_name, name_hash,
             valid_name ? domains_.prepare(name.view()) : DomainCache::Hint{});
  }

  // The same, with domain_hint == prepare_domain(name) when valid_name.
  void on_query(const DnsMessage& m, const NameKey& name, bool valid_name, std::uint64_t name_hash,
                const DomainCache::Hint& domain_hint) noexcept;

  // After on_query(): the length of its name's registrable domain (a suffix of the name), or 0
  // when the name was not valid.
  [[nodiscard]] std::size_t last_domain_length() const noexcept { return last_domain_length_; }

  // DomainCache::prepare() for a query's name: call it early, on_query() later.
  [[nodiscard]] DomainCache::Hint prepare_domain(const NameKey& name) const noexcept {
    return domains_.prepare(name.view());
  }

  void on_response(const DnsMessage& m, const NameKey& name, bool valid_name,
                   std::uint64_t name_hash) noexcept;

  // Packet time has reached now_ns without a message (live capture gone quiet): publishes if a
  // second has passed since the last publication.
  void tick(std::int64_t now_ns) noexcept;

  // End of input: folds and publishes what the staging summaries hold.
  void finish() noexcept;

  // Any thread: merges the published snapshots into out (one per window, built by
  // make_snapshots()).
  void read_published(std::vector<WindowSnapshot>& out) const;

  [[nodiscard]] AnalyticsStats stats() const noexcept;

  [[nodiscard]] std::vector<WindowSnapshot> make_snapshots() const;

  [[nodiscard]] static std::size_t planned_bytes(const AnalyticsOptions& options) noexcept;

 private:
  static constexpr std::int64_t kNeverNs = std::numeric_limits<std::int64_t>::min() / 2;

  // Per message: notes the packet time and rolls over to a new second when one has begun (or
  // time jumped back by more than a second: a new file of an earlier capture).
  void advance_clock(std::int64_t now_ns) noexcept {
    last_ns_ = std::max(last_ns_, now_ns);
    if (now_ns >= next_roll_ns_ || now_ns < staging_start_ns_ - kPublishPeriodNs) {
      roll(now_ns);
    }
  }

  void roll(std::int64_t now_ns) noexcept;
  void fold() noexcept;  // the staging summaries into every window, at staging_start_ns_
  void publish(std::int64_t now_ns) noexcept;
  void measure() noexcept;  // fills sizes_

  // A distinct count's staging summary. A second with few items folds them one by one into the
  // windows instead of merging all 2^p registers three times.
  struct StagingDistinct {
    explicit StagingDistinct(unsigned precision) : hll(precision) {}

    void add(std::uint64_t hash) noexcept {
      hll.add_hash(hash);
      if (count < recent.size()) {
        recent[count] = hash;
      }
      ++count;
    }

    HyperLogLog hll;
    std::array<std::uint64_t, 64> recent{};
    std::size_t count = 0;
  };

  struct Window;
  AnalyticsOptions options_;
  std::uint64_t seed_;
  std::chrono::nanoseconds min_publish_interval_;
  std::chrono::steady_clock::time_point last_publish_{};
  DomainCache domains_;
  std::vector<NameSummary> staging_names_;
  ClientSummary staging_clients_;
  std::vector<StagingDistinct> staging_distinct_;
  std::vector<std::unique_ptr<Window>> windows_;
  std::vector<WindowSnapshot> back_;   // written by the worker only
  std::vector<WindowSnapshot> front_;  // guarded by publish_mutex_
  mutable std::mutex publish_mutex_;
  NameKey domain_key_;                        // scratch, reused
  std::size_t last_domain_length_ = 0;        // last_domain_length()
  std::int64_t staging_start_ns_ = kNeverNs;  // the second the staging summaries cover
  std::int64_t next_roll_ns_ = kNeverNs;
  std::int64_t last_ns_ = kNeverNs;  // latest packet time seen
  bool staged_ = false;              // the staging summaries hold something
  SingleWriterCounter names_too_long_, publications_;
  AnalyticsStats sizes_;  // the memory fields, set by the constructor
  std::atomic<std::uint64_t> cache_hits_{0}, cache_misses_{0};
};

}  // namespace dnsmon::detail
