#include "dnsmon/analytics/detail/windows.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "dnsmon/common/ascii.hpp"

namespace dnsmon::detail {

namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;

std::int64_t floor_to_period(std::int64_t t) noexcept {
  const std::int64_t q = t / kPublishPeriodNs;
  return (t % kPublishPeriodNs != 0 && t < 0 ? q - 1 : q) * kPublishPeriodNs;
}

void check(const AnalyticsOptions& o) {
  if (o.windows_s.empty() || o.windows_s.size() > 8) {
    throw std::invalid_argument("analytics needs 1 to 8 windows");
  }
  for (const auto w : o.windows_s) {
    if (w == 0 || o.sub_windows == 0 || w % o.sub_windows != 0) {
      throw std::invalid_argument("each window must be a whole multiple of sub_windows seconds");
    }
  }
  if (o.top_n == 0 || o.top_capacity < o.top_n) {
    throw std::invalid_argument("top_capacity must be at least top_n, and top_n at least 1");
  }
}

}  // namespace

bool lower_name(std::string_view name, NameKey& key) noexcept {
  const std::size_t n = name.size();
  if (n > key.chars.size()) {
    key.size = 0;
    return false;
  }
  ascii::lower_copy(name.data(), n, key.chars.data());
  key.size = static_cast<std::uint8_t>(n);
  return true;
}

AddrKey client_key(const IpAddr& addr, std::uint8_t ipv4_prefix,
                   std::uint8_t ipv6_prefix) noexcept {
  AddrKey k;
  const bool v4 = addr.family == 4;
  const std::size_t bytes = v4 ? 4 : 16;
  const unsigned prefix = std::min<unsigned>(v4 ? ipv4_prefix : ipv6_prefix, v4 ? 32U : 128U);
  for (std::size_t i = 0; i < bytes; ++i) {
    const unsigned bit = static_cast<unsigned>(i) * 8;
    std::uint8_t mask = 0xFF;
    if (bit >= prefix) {
      mask = 0;
    } else if (prefix - bit < 8) {
      mask = static_cast<std::uint8_t>(0xFFU << (8 - (prefix - bit)));
    }
    k.bytes[i] = addr.bytes[i] & mask;
  }
  k.bytes[16] = addr.family;
  return k;
}

WindowSnapshot::WindowSnapshot(const AnalyticsOptions& options, std::uint64_t seed)
    : clients(options.top_capacity, seed) {
  names.reserve(kNameTables);
  for (std::size_t t = 0; t < kNameTables; ++t) {
    names.emplace_back(options.top_capacity, seed);
  }
  distinct.reserve(kDistinctKinds);
  for (std::size_t k = 0; k < kDistinctKinds; ++k) {
    distinct.emplace_back(options.hll_precision);
  }
}

bool WindowSnapshot::merge(const WindowSnapshot& other) noexcept {
  bool ok = clients.merge(other.clients);
  for (std::size_t t = 0; t < kNameTables; ++t) {
    ok = names[t].merge(other.names[t]) && ok;
  }
  for (std::size_t k = 0; k < kDistinctKinds; ++k) {
    ok = distinct[k].merge(other.distinct[k]) && ok;
  }
  as_of_ns = std::max(as_of_ns, other.as_of_ns);
  return ok;
}

void WindowSnapshot::clear() noexcept {
  for (auto& n : names) {
    n.clear();
  }
  clients.clear();
  for (auto& d : distinct) {
    d.clear();
  }
  as_of_ns = 0;
}

struct TrafficAnalytics::Window {
  Window(const AnalyticsOptions& o, std::uint32_t window_s, std::uint64_t seed)
      : clients(std::int64_t{window_s} * kNsPerSecond, o.sub_windows, std::size_t{o.top_capacity},
                seed) {
    const std::int64_t window_ns = std::int64_t{window_s} * kNsPerSecond;
    names.reserve(kNameTables);
    for (std::size_t t = 0; t < kNameTables; ++t) {
      names.emplace_back(window_ns, o.sub_windows, std::size_t{o.top_capacity}, seed);
    }
    distinct.reserve(kDistinctKinds);
    for (std::size_t k = 0; k < kDistinctKinds; ++k) {
      distinct.emplace_back(window_ns, o.sub_windows, o.hll_precision);
    }
  }

  std::vector<SlidingWindow<NameSummary>> names;
  SlidingWindow<ClientSummary> clients;
  std::vector<SlidingWindow<HyperLogLog>> distinct;
};

TrafficAnalytics::TrafficAnalytics(const AnalyticsOptions& options,
                                   std::shared_ptr<const PublicSuffixList> list, std::uint64_t seed,
                                   std::chrono::nanoseconds min_publish_interval)
    : options_((check(options), options)),
      seed_(seed),
      min_publish_interval_(min_publish_interval),
      domains_(std::move(list), options.domain_cache_entries, seed),
      staging_clients_(options.top_capacity, seed) {
  for (std::size_t t = 0; t < kNameTables; ++t) {
    staging_names_.emplace_back(options.top_capacity, seed);
  }
  for (std::size_t k = 0; k < kDistinctKinds; ++k) {
    staging_distinct_.emplace_back(options.hll_precision);
  }
  last_publish_ = std::chrono::steady_clock::now() - min_publish_interval_;
  for (const auto w : options.windows_s) {
    windows_.push_back(std::make_unique<Window>(options, w, seed));
    back_.emplace_back(options, seed);
    front_.emplace_back(options, seed);
  }
  measure();
}

TrafficAnalytics::~TrafficAnalytics() = default;

std::vector<WindowSnapshot> TrafficAnalytics::make_snapshots() const {
  std::vector<WindowSnapshot> out;
  out.reserve(options_.windows_s.size());
  for (std::size_t w = 0; w < options_.windows_s.size(); ++w) {
    out.emplace_back(options_, seed_);
  }
  return out;
}

void TrafficAnalytics::on_query(const DnsMessage& m, const NameKey& name, bool valid_name,
                                std::uint64_t name_hash,
                                const DomainCache::Hint& domain_hint) noexcept {
  advance_clock(m.ts_ns);
  staged_ = true;
  if (valid_name) {
    staging_names_[static_cast<std::size_t>(NameTable::Qname)].add_hashed(name, name_hash);
    staging_distinct_[static_cast<std::size_t>(DistinctKind::Qnames)].add(name_hash);
    const std::string_view domain = domains_.registrable(name.view(), domain_hint);
    last_domain_length_ = domain.size();
    auto& domains = staging_names_[static_cast<std::size_t>(NameTable::Domain)];
    auto& distinct_domains = staging_distinct_[static_cast<std::size_t>(DistinctKind::Domains)];
    if (domain.size() == name.size) {
      domains.add_hashed(name, name_hash);
      distinct_domains.add(name_hash);
    } else {
      std::memcpy(domain_key_.chars.data(), domain.data(), domain.size());
      domain_key_.size = static_cast<std::uint8_t>(domain.size());
      const std::uint64_t h = hash_bytes(domain, seed_);
      domains.add_hashed(domain_key_, h);
      distinct_domains.add(h);
    }
  } else {
    names_too_long_.add();
    last_domain_length_ = 0;
  }
  const AddrKey client =
      client_key(m.src, options_.client_ipv4_prefix, options_.client_ipv6_prefix);
  const std::uint64_t h = key_hash(client, seed_);
  staging_clients_.add_hashed(client, h);
  staging_distinct_[static_cast<std::size_t>(DistinctKind::Clients)].add(h);
}

void TrafficAnalytics::on_response(const DnsMessage& m, const NameKey& name, bool valid_name,
                                   std::uint64_t name_hash) noexcept {
  advance_clock(m.ts_ns);
  if (m.rcode != 3 && m.rcode != 2) {
    return;
  }
  if (!valid_name) {
    names_too_long_.add();
    return;
  }
  staged_ = true;
  const NameTable table = m.rcode == 3 ? NameTable::Nxdomain : NameTable::Servfail;
  staging_names_[static_cast<std::size_t>(table)].add_hashed(name, name_hash);
}

void TrafficAnalytics::tick(std::int64_t now_ns) noexcept {
  if (now_ns > last_ns_ && now_ns >= next_roll_ns_) {
    roll(now_ns);
  }
}

void TrafficAnalytics::finish() noexcept {
  if (last_ns_ == kNeverNs) {
    return;
  }
  fold();
  publish(last_ns_);
}

void TrafficAnalytics::roll(std::int64_t now_ns) noexcept {
  fold();
  if (last_ns_ != kNeverNs &&
      std::chrono::steady_clock::now() - last_publish_ >= min_publish_interval_) {
    publish(now_ns);  // also when nothing was staged: the windows slide
  }
  staging_start_ns_ = floor_to_period(now_ns);
  next_roll_ns_ = staging_start_ns_ + kPublishPeriodNs;
}

void TrafficAnalytics::fold() noexcept {
  if (!staged_) {
    return;
  }
  for (auto& w : windows_) {
    for (std::size_t t = 0; t < kNameTables; ++t) {
      (void)w->names[t].advance(staging_start_ns_).merge(staging_names_[t]);
    }
    (void)w->clients.advance(staging_start_ns_).merge(staging_clients_);
    for (std::size_t k = 0; k < kDistinctKinds; ++k) {
      const StagingDistinct& d = staging_distinct_[k];
      HyperLogLog& sub = w->distinct[k].advance(staging_start_ns_);
      if (d.count <= d.recent.size()) {
        for (std::size_t i = 0; i < d.count; ++i) {
          sub.add_hash(d.recent[i]);
        }
      } else {
        (void)sub.merge(d.hll);
      }
    }
  }
  for (auto& n : staging_names_) {
    n.clear();
  }
  staging_clients_.clear();
  for (auto& d : staging_distinct_) {
    if (d.count > d.recent.size()) {
      d.hll.clear();
    } else {
      for (std::size_t i = 0; i < d.count; ++i) {  // just the registers it set
        d.hll.clear_register(d.recent[i]);
      }
    }
    d.count = 0;
  }
  staged_ = false;
}

void TrafficAnalytics::publish(std::int64_t now_ns) noexcept {
  for (std::size_t i = 0; i < windows_.size(); ++i) {
    Window& w = *windows_[i];
    WindowSnapshot& out = back_[i];
    for (std::size_t t = 0; t < kNameTables; ++t) {
      (void)w.names[t].query(now_ns, out.names[t]);
    }
    (void)w.clients.query(now_ns, out.clients);
    for (std::size_t k = 0; k < kDistinctKinds; ++k) {
      (void)w.distinct[k].query(now_ns, out.distinct[k]);
    }
    out.as_of_ns = now_ns;
  }
  {
    const std::lock_guard lock(publish_mutex_);
    std::swap(back_, front_);
  }
  publications_.add();
  last_publish_ = std::chrono::steady_clock::now();
  cache_hits_.store(domains_.hits(), std::memory_order_relaxed);
  cache_misses_.store(domains_.misses(), std::memory_order_relaxed);
}

void TrafficAnalytics::read_published(std::vector<WindowSnapshot>& out) const {
  const std::lock_guard lock(publish_mutex_);
  for (std::size_t i = 0; i < out.size() && i < front_.size(); ++i) {
    (void)out[i].merge(front_[i]);
  }
}

AnalyticsStats TrafficAnalytics::stats() const noexcept {
  AnalyticsStats s = sizes_;
  s.names_too_long = names_too_long_.get();
  s.publications = publications_.get();
  s.domain_cache_hits = cache_hits_.load(std::memory_order_relaxed);
  s.domain_cache_misses = cache_misses_.load(std::memory_order_relaxed);
  return s;
}

void TrafficAnalytics::measure() noexcept {
  // Sizes are fixed at construction; measured once here, since the worker swaps back_ and front_
  // under the publication mutex while other threads read the stats.
  AnalyticsStats& s = sizes_;
  for (std::size_t t = 0; t < kNameTables; ++t) {
    std::uint64_t bytes = staging_names_[t].memory_bytes();
    for (std::size_t w = 0; w < windows_.size(); ++w) {
      bytes += windows_[w]->names[t].memory_bytes() + back_[w].names[t].memory_bytes() +
               front_[w].names[t].memory_bytes();
    }
    s.name_bytes[t] = bytes;
  }
  s.client_bytes = staging_clients_.memory_bytes();
  for (std::size_t w = 0; w < windows_.size(); ++w) {
    s.client_bytes += windows_[w]->clients.memory_bytes() + back_[w].clients.memory_bytes() +
                      front_[w].clients.memory_bytes();
  }
  for (std::size_t k = 0; k < kDistinctKinds; ++k) {
    std::uint64_t bytes = staging_distinct_[k].hll.memory_bytes();
    for (std::size_t w = 0; w < windows_.size(); ++w) {
      bytes += windows_[w]->distinct[k].memory_bytes() + back_[w].distinct[k].memory_bytes() +
               front_[w].distinct[k].memory_bytes();
    }
    s.distinct_bytes[k] = bytes;
  }
  s.domain_cache_bytes = domains_.memory_bytes();
}

std::size_t TrafficAnalytics::planned_bytes(const AnalyticsOptions& o) noexcept {
  const std::size_t windows = o.windows_s.size();
  const std::size_t name = NameSummary::planned_bytes(o.top_capacity);
  const std::size_t client = ClientSummary::planned_bytes(o.top_capacity);
  const std::size_t hll = HyperLogLog::planned_bytes(o.hll_precision);
  // Per kind of summary: one staging copy, a sliding window and two published copies per window.
  const auto per_kind = [&](std::size_t summary, std::size_t window) {
    return summary + windows * (window + 2 * summary);
  };
  return kNameTables *
             per_kind(name, SlidingWindow<NameSummary>::planned_bytes(o.sub_windows, name)) +
         per_kind(client, SlidingWindow<ClientSummary>::planned_bytes(o.sub_windows, client)) +
         kDistinctKinds *
             per_kind(hll, SlidingWindow<HyperLogLog>::planned_bytes(o.sub_windows, hll)) +
         DomainCache::planned_bytes(o.domain_cache_entries);
}

}  // namespace dnsmon::detail
