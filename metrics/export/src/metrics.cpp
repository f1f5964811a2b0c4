#include "dnsmon/metrics.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "dnsmon/analytics/detail/matcher.hpp"
#include "dnsmon/analytics/detail/windows.hpp"
#include "dnsmon/analytics/detail/worker_analytics.hpp"
#include "dnsmon/common/siphash.hpp"
#include "dnsmon/domains.hpp"
#include "dnsmon/export/detail/http_server.hpp"
#include "dnsmon/export/families.hpp"

#include "exposition.hpp"

namespace dnsmon {
namespace {

using prometheus::MetricFamily;

// "1h", "5m", "90s": the window label.
std::string window_label(std::uint32_t seconds) {
  if (seconds % 3600 == 0) {
    return std::to_string(seconds / 3600) + "h";
  }
  if (seconds % 60 == 0) {
    return std::to_string(seconds / 60) + "m";
  }
  return std::to_string(seconds) + "s";
}

}  // namespace

struct MetricsHub::Impl : prometheus::Collectable {
  BuildInfo build;
  MetricsOptions options;
  std::shared_ptr<const detail::PublicSuffixList> suffixes;  // null when analytics are off
  std::uint64_t seed = 0;  // one per process, so the workers' sketches merge
  std::array<std::uint64_t, 2> pseudonym_key{};
  std::deque<WorkerCounters> workers;  // deque: references stay valid as workers are added
  std::vector<const Parser*> parsers;
  bool mdns = false, llmnr = false;
  // The transports exported: udp and tcp, and dot and doh when a dnstap source can report them.
  std::size_t transports = 2;
  std::atomic<std::uint32_t> top_n{0};           // analytics.top_n, which a reload may change
  std::unique_ptr<ServerAddressBook> addresses;  // the leg label's, which a reload may change
  std::atomic<std::uint64_t> reloads_ok{0}, reloads_failed{0};
  std::atomic<double> last_load_s{0};  // the start or the last successful reload, Unix seconds

  // The label of a client key: its address, "/prefix" when aggregated, or a keyed pseudonym.
  [[nodiscard]] std::string client_label(const detail::AddrKey& k) const {
    const bool v4 = k.bytes[16] == 4;
    if (options.analytics.pseudonymise_clients) {
      return fmt::format("anon-{:016x}", detail::sip_hash16(pseudonym_key, k.bytes.data(),
                                                            std::uint64_t{k.bytes[16]} << 56U));
    }
    IpAddr a;
    a.family = k.bytes[16];
    std::memcpy(a.bytes.data(), k.bytes.data(), 16);
    std::array<char, 64> text{};
    std::string out(a.format(text));
    const unsigned prefix =
        v4 ? options.analytics.client_ipv4_prefix : options.analytics.client_ipv6_prefix;
    if (prefix < (v4 ? 32U : 128U)) {
      out += "/" + std::to_string(prefix);
    }
    return out;
  }

  std::function<std::vector<SourceSnapshot>()> read_sources;
  std::function<std::vector<RingSnapshot>()> read_rings;
  std::function<std::vector<OutputSnapshot>()> read_outputs;
  std::function<detect::DetectionSnapshot()> read_detection;

  // --- Collection: one function per subsystem, each filling the families it owns. --------------

  // Sums a counter over the workers.
  template <class Pick>
  [[nodiscard]] double sum(Pick pick) const {
    std::uint64_t total = 0;
    for (const auto& w : workers) {
      total += pick(w).get();
    }
    return static_cast<double>(total);
  }

  // Sums one of the workers' histograms into one sample; the bounds are divided by scale to give
  // the exposition's unit (seconds for nanoseconds).
  template <const auto& Bounds, class Pick>
  void add_histogram(detail::Exposition& x, Family f, detail::Exposition::Values values,
                     double scale, Pick pick) const {
    typename FixedHistogram<Bounds>::Snapshot total;
    for (const auto& w : workers) {
      const auto s = pick(w).snapshot();
      for (std::size_t i = 0; i < total.buckets.size(); ++i) {
        total.buckets[i] += s.buckets[i];
      }
      total.sum += s.sum;
    }
    std::array<double, Bounds.size()> upper{};
    for (std::size_t i = 0; i < upper.size(); ++i) {
      upper[i] = static_cast<double>(Bounds[i]) / scale;
    }
    x.add_histogram(f, values, upper, total.buckets, total.sum);
  }

  void collect_build(detail::Exposition& x) const {
    x.add(Family::BuildInfo, {build.version, build.ldns_version, build.libpcap_version}, 1);
    x.add(Family::ConfigReloadsTotal, {"success"},
          static_cast<double>(reloads_ok.load(std::memory_order_relaxed)));
    x.add(Family::ConfigReloadsTotal, {"failure"},
          static_cast<double>(reloads_failed.load(std::memory_order_relaxed)));
    x.add(Family::ConfigLastReloadSuccessTimestampSeconds, {},
          last_load_s.load(std::memory_order_relaxed));
  }

  // The parsers' reassembly tables.
  void collect_reassembly(detail::Exposition& x) const {
    if (parsers.empty()) {
      return;
    }
    ReassemblyStats total;
    for (const Parser* p : parsers) {
      total += p->stats();
    }
    for (std::size_t i = 0; i < total.ip.size(); ++i) {
      x.add(Family::IpReassemblyEventsTotal, {ReassemblyStats::kIpEventNames[i]},
            static_cast<double>(total.ip[i]));
    }
    for (std::size_t i = 0; i < total.tcp.size(); ++i) {
      x.add(Family::TcpReassemblyEventsTotal, {ReassemblyStats::kTcpEventNames[i]},
            static_cast<double>(total.tcp[i]));
    }
    x.add(Family::MemoryBytes, {"ip_fragments"}, static_cast<double>(total.ip_memory_bytes));
    x.add(Family::MemoryBytes, {"tcp_streams"}, static_cast<double>(total.tcp_memory_bytes));
    x.add(Family::TableEntries, {"ip_fragments"}, static_cast<double>(total.ip_in_progress));
    x.add(Family::TableEntries, {"tcp_streams"}, static_cast<double>(total.tcp_flows));
    x.add(Family::TableCapacityEntries, {"ip_fragments"}, static_cast<double>(total.ip_capacity));
    x.add(Family::TableCapacityEntries, {"tcp_streams"}, static_cast<double>(total.tcp_capacity));
  }

  // Query/response matching and the response latency.
  void collect_matching(detail::Exposition& x) const {
    detail::MatcherStats total;
    std::array<detail::MatcherStats, kLegCount> legs{};
    for (const auto& w : workers) {
      total += w.analytics_->matcher.stats();
      for (std::size_t l = 0; l < kLegCount; ++l) {
        legs[l] += w.analytics_->matcher.stats(static_cast<Leg>(l));
      }
    }
    // Without server addresses every query is on the unknown leg: the client and upstream
    // series would stay at zero, so they are left out (a third of the series).
    const std::size_t first_leg = addresses->empty() ? static_cast<std::size_t>(Leg::Unknown) : 0;
    for (std::size_t l = first_leg; l < kLegCount; ++l) {
      const std::string_view leg = kLegNames[l];
      const detail::MatcherStats& s = legs[l];
      x.add(Family::QueryMatchingTotal, {leg, "matched"}, static_cast<double>(s.matched));
      x.add(Family::QueryMatchingTotal, {leg, "timeout"}, static_cast<double>(s.timeouts));
      x.add(Family::QueryMatchingTotal, {leg, "unmatched_response"},
            static_cast<double>(s.unmatched_responses));
      x.add(Family::QueryMatchingTotal, {leg, "duplicate"}, static_cast<double>(s.duplicates));
      x.add(Family::QueryMatchingTotal, {leg, "evicted"}, static_cast<double>(s.evictions));
    }
    for (std::size_t l = first_leg; l < kLegCount; ++l) {
      for (std::size_t t = 0; t < transports; ++t) {
        for (std::size_t c = 0; c < detail::kRcodeClassCount; ++c) {
          add_histogram<detail::kLatencyBoundsNs>(
              x, Family::ResponseLatencySeconds,
              {kLegNames[l], transport_name(static_cast<Transport>(t)),
               detail::rcode_class_name(static_cast<detail::RcodeClass>(c))},
              1e9, [l, t, c](const WorkerCounters& w) -> const detail::LatencyHistogram& {
                return w.analytics_->matcher.latency(static_cast<Leg>(l), static_cast<Transport>(t),
                                                     static_cast<detail::RcodeClass>(c));
              });
        }
      }
    }
    x.add(Family::MemoryBytes, {"pending_queries"}, static_cast<double>(total.memory_bytes));
    x.add(Family::TableEntries, {"pending_queries"}, static_cast<double>(total.entries));
    x.add(Family::TableCapacityEntries, {"pending_queries"}, static_cast<double>(total.capacity));
    x.add(Family::AnalyticsMemoryBudgetBytes, {}, static_cast<double>(options.memory_budget_bytes));
  }

  // The sliding windows: top-N tables, distinct counts, and their tables' memory.
  void collect_windows(detail::Exposition& x) const {
    const auto& o = options.analytics;
    if (!o.enabled || workers.empty()) {
      return;
    }
    std::vector<detail::WindowSnapshot> windows =
        workers.front().analytics_->traffic->make_snapshots();
    for (const auto& w : workers) {
      w.analytics_->traffic->read_published(windows);
    }

    struct NameTable {
      Family family;
      std::string_view table;
    };

    static constexpr std::array<NameTable, detail::kNameTables> kNameTables{{
        {Family::WindowTopDomainQueries, "domain"},
        {Family::WindowTopQnameQueries, "qname"},
        {Family::WindowTopNxdomainResponses, "nxdomain"},
        {Family::WindowTopServfailResponses, "servfail"},
    }};
    const std::uint32_t series = top_n.load(std::memory_order_relaxed);
    std::vector<detail::HeavyHitter<detail::NameKey>> names(series);
    std::vector<detail::HeavyHitter<detail::AddrKey>> clients(series);
    for (std::size_t t = 0; t < detail::kNameTables; ++t) {
      const auto& spec = kNameTables[t];
      x.open(spec.family);
      for (std::size_t i = 0; i < windows.size(); ++i) {
        const std::string label = window_label(o.windows_s[i]);
        const auto& summary = windows[i].names[t];
        const std::size_t n = summary.top(names);
        for (std::size_t j = 0; j < n; ++j) {
          x.add(spec.family, {label, names[j].key.view()}, static_cast<double>(names[j].count));
        }
        x.add(Family::WindowMessages, {label, spec.table}, static_cast<double>(summary.total()));
        x.add(Family::WindowTopOvercount, {label, spec.table},
              static_cast<double>(summary.min_count()));
      }
    }
    x.open(Family::WindowTopClientQueries);
    for (std::size_t i = 0; i < windows.size(); ++i) {
      const std::string label = window_label(o.windows_s[i]);
      const auto& summary = windows[i].clients;
      const std::size_t n = summary.top(clients);
      for (std::size_t j = 0; j < n; ++j) {
        x.add(Family::WindowTopClientQueries, {label, client_label(clients[j].key)},
              static_cast<double>(clients[j].count));
      }
      x.add(Family::WindowMessages, {label, "client"}, static_cast<double>(summary.total()));
      x.add(Family::WindowTopOvercount, {label, "client"},
            static_cast<double>(summary.min_count()));
    }
    static constexpr std::array<Family, detail::kDistinctKinds> kDistinct{
        Family::WindowDistinctClients, Family::WindowDistinctQnames, Family::WindowDistinctDomains};
    for (std::size_t k = 0; k < detail::kDistinctKinds; ++k) {
      for (std::size_t i = 0; i < windows.size(); ++i) {
        x.add(kDistinct[k], {window_label(o.windows_s[i])},
              std::round(windows[i].distinct[k].estimate()));
      }
    }
    const detail::AnalyticsStats st = analytics_totals();
    x.add(Family::WindowNamesSkippedTotal, {}, static_cast<double>(st.names_too_long));
    x.add(Family::WindowPublicationsTotal, {}, static_cast<double>(st.publications));
    x.add(Family::DomainCacheLookupsTotal, {"hit"}, static_cast<double>(st.domain_cache_hits));
    x.add(Family::DomainCacheLookupsTotal, {"miss"}, static_cast<double>(st.domain_cache_misses));
    static constexpr std::array<std::string_view, detail::kNameTables> kNameMemory{
        "top_domains", "top_qnames", "top_nxdomain", "top_servfail"};
    for (std::size_t t = 0; t < detail::kNameTables; ++t) {
      x.add(Family::MemoryBytes, {kNameMemory[t]}, static_cast<double>(st.name_bytes[t]));
    }
    x.add(Family::MemoryBytes, {"top_clients"}, static_cast<double>(st.client_bytes));
    static constexpr std::array<std::string_view, detail::kDistinctKinds> kDistinctMemory{
        "distinct_clients", "distinct_qnames", "distinct_domains"};
    for (std::size_t k = 0; k < detail::kDistinctKinds; ++k) {
      x.add(Family::MemoryBytes, {kDistinctMemory[k]}, static_cast<double>(st.distinct_bytes[k]));
    }
    x.add(Family::MemoryBytes, {"domain_cache"}, static_cast<double>(st.domain_cache_bytes));
  }

  // The window analytics' stats, summed over the workers (analytics on).
  [[nodiscard]] detail::AnalyticsStats analytics_totals() const {
    detail::AnalyticsStats total;
    for (const auto& w : workers) {
      total += w.analytics_->traffic->stats();
    }
    return total;
  }

  // The workers' traffic counters.
  void collect_traffic(detail::Exposition& x) const {
    for (std::size_t i = 0; i < kParseStatusCount; ++i) {
      x.add(Family::PacketsTotal, {parse_status_name(static_cast<ParseStatus>(i))},
            sum([i](const WorkerCounters& w) -> const SingleWriterCounter& {
              return w.packets_[i];
            }));
    }
    for (std::size_t p = 0; p < kProtocolSlots; ++p) {
      if ((p == 1 && !mdns) || (p == 2 && !llmnr)) {
        continue;
      }
      for (std::size_t t = 0; t < transports; ++t) {
        for (std::size_t q = 0; q < 2; ++q) {
          x.add(Family::MessagesTotal,
                {protocol_name(static_cast<Protocol>(p)), transport_name(static_cast<Transport>(t)),
                 q == 1 ? "response" : "query"},
                sum([p, t, q](const WorkerCounters& w) -> const SingleWriterCounter& {
                  return w.messages_[p][t][q];
                }));
        }
      }
    }
    for (std::size_t i = 0; i < kOpcodeSlots; ++i) {
      x.add(Family::OpcodesTotal, {opcode_slot_name(i)},
            sum([i](const WorkerCounters& w) -> const SingleWriterCounter& {
              return w.opcodes_[i];
            }));
    }
    for (std::size_t f = 0; f < 2; ++f) {
      for (std::size_t t = 0; t < transports; ++t) {
        x.add(Family::MessagesByFamilyTotal,
              {f == 0 ? "ipv4" : "ipv6", transport_name(static_cast<Transport>(t))},
              sum([f, t](const WorkerCounters& w) -> const SingleWriterCounter& {
                return w.family_[f][t];
              }));
      }
    }
    static constexpr std::array<std::string_view, 3> kEdnsNames{"none", "edns", "do"};
    for (std::size_t i = 0; i < kEdnsNames.size(); ++i) {
      x.add(Family::QueryEdnsTotal, {kEdnsNames[i]},
            sum([i](const WorkerCounters& w) -> const SingleWriterCounter& { return w.edns_[i]; }));
    }
    for (std::size_t i = 0; i < kUdpSizeBucketNames.size(); ++i) {
      x.add(Family::QueryEdnsUdpSizeTotal, {kUdpSizeBucketNames[i]},
            sum([i](const WorkerCounters& w) -> const SingleWriterCounter& {
              return w.udp_size_[i];
            }));
    }
    x.add(Family::TruncatedResponsesTotal, {},
          sum([](const WorkerCounters& w) -> const SingleWriterCounter& {
            return w.truncated_responses_;
          }));
    for (std::size_t q = 0; q < kQtypeSlots; ++q) {
      for (std::size_t c = 0; c < kRcodeClassNames.size(); ++c) {
        x.add(Family::ResponsesByQtypeTotal, {qtype_slot_name(q), kRcodeClassNames[c]},
              sum([q, c](const WorkerCounters& w) -> const SingleWriterCounter& {
                return w.responses_by_qtype_[q][c];
              }));
      }
    }
    for (std::size_t d = 0; d < 2; ++d) {
      add_histogram<kSizeBounds>(
          x, Family::MessageSizeBytes, {d == 0 ? "query" : "response"},
          1, [d](const WorkerCounters& w) -> const auto& { return w.size_[d]; });
    }
    add_histogram<kQnameLengthBounds>(
        x, Family::QnameLengthBytes, {}, 1,
        [](const WorkerCounters& w) -> const auto& { return w.qname_length_; });
    x.add(Family::ReassembledMessagesTotal, {},
          sum([](const WorkerCounters& w) -> const SingleWriterCounter& {
            return w.reassembled_messages_;
          }));
    x.add(
        Family::PacketBytesTotal, {},
        sum([](const WorkerCounters& w) -> const SingleWriterCounter& { return w.frame_bytes_; }));
    x.add(Family::DuplicateFramesTotal, {"dropped"},
          sum([](const WorkerCounters& w) -> const SingleWriterCounter& {
            return w.duplicates_dropped_;
          }));
    x.add(Family::DuplicateFramesTotal, {"evicted"},
          sum([](const WorkerCounters& w) -> const SingleWriterCounter& {
            return w.duplicates_evicted_;
          }));
    x.add(
        Family::DnsMessageBytesTotal, {"query"},
        sum([](const WorkerCounters& w) -> const SingleWriterCounter& { return w.query_bytes_; }));
    x.add(Family::DnsMessageBytesTotal, {"response"},
          sum([](const WorkerCounters& w) -> const SingleWriterCounter& {
            return w.response_bytes_;
          }));
    for (std::size_t i = 0; i < kQtypeSlots; ++i) {
      x.add(Family::QueriesTotal, {qtype_slot_name(i)},
            sum([i](const WorkerCounters& w) -> const SingleWriterCounter& {
              return w.queries_by_qtype_[i];
            }));
    }
    for (std::size_t i = 0; i < kRcodeSlots; ++i) {
      x.add(Family::ResponsesTotal, {rcode_slot_name(i)},
            sum([i](const WorkerCounters& w) -> const SingleWriterCounter& {
              return w.responses_by_rcode_[i];
            }));
    }
    for (std::size_t i = 0; i < kQtypeSlots; ++i) {
      x.add(Family::ResponsesNodataTotal, {qtype_slot_name(i)},
            sum([i](const WorkerCounters& w) -> const SingleWriterCounter& {
              return w.responses_nodata_[i];
            }));
    }
  }

  // The capture sources, the workers' rings and the outputs, read through the daemon's readers.
  void collect_capture(detail::Exposition& x) const {
    if (read_sources) {
      for (const Family f :
           {Family::CaptureUp, Family::CaptureReceivedTotal, Family::CaptureBytesTotal,
            Family::CaptureDroppedTotal, Family::CaptureSnaplenTruncatedTotal}) {
        x.open(f);
      }
      const auto sources = read_sources();
      for (const auto& s : sources) {
        x.add(Family::CaptureUp, {s.name}, s.up ? 1 : 0);
        x.add(Family::CaptureReceivedTotal, {s.name}, static_cast<double>(s.received));
        x.add(Family::CaptureBytesTotal, {s.name}, static_cast<double>(s.bytes));
        x.add(Family::CaptureDroppedTotal, {s.name, "kernel"},
              static_cast<double>(s.kernel_dropped));
        x.add(Family::CaptureDroppedTotal, {s.name, "interface"},
              static_cast<double>(s.if_dropped));
        x.add(Family::CaptureDroppedTotal, {s.name, "ring"}, static_cast<double>(s.ring_dropped));
        x.add(Family::CaptureSnaplenTruncatedTotal, {s.name}, static_cast<double>(s.snaplen_cut));
      }
      // The dnstap families appear when a dnstap socket is configured.
      if (std::any_of(sources.begin(), sources.end(), [](const auto& s) { return s.dnstap; })) {
        for (const Family f : {Family::DnstapFramesTotal, Family::DnstapConnectionsTotal,
                               Family::DnstapOpenConnections}) {
          x.open(f);
        }
        constexpr std::array<std::string_view, 3> kResults{"message", "ignored", "malformed"};
        for (const auto& s : sources) {
          if (!s.dnstap) {
            continue;
          }
          for (std::size_t r = 0; r < kResults.size(); ++r) {
            x.add(Family::DnstapFramesTotal, {s.name, kResults[r]},
                  static_cast<double>(s.dnstap_frames[r]));
          }
          x.add(Family::DnstapConnectionsTotal, {s.name, "accepted"},
                static_cast<double>(s.dnstap_accepted));
          x.add(Family::DnstapConnectionsTotal, {s.name, "refused"},
                static_cast<double>(s.dnstap_refused));
          x.add(Family::DnstapOpenConnections, {s.name}, static_cast<double>(s.dnstap_open));
        }
      }
    }
    if (read_rings) {
      for (const Family f : {Family::RingOccupancySlots, Family::RingCapacitySlots,
                             Family::RingUsedBytes, Family::RingCapacityBytes}) {
        x.open(f);
      }
      const auto rings = read_rings();
      for (std::size_t i = 0; i < rings.size(); ++i) {
        const std::string worker = std::to_string(i);
        x.add(Family::RingOccupancySlots, {worker}, static_cast<double>(rings[i].occupancy));
        x.add(Family::RingCapacitySlots, {worker}, static_cast<double>(rings[i].capacity));
        x.add(Family::RingUsedBytes, {worker}, static_cast<double>(rings[i].used_bytes));
        x.add(Family::RingCapacityBytes, {worker}, static_cast<double>(rings[i].capacity_bytes));
      }
    }
    if (read_outputs) {
      x.open(Family::OutputLostLinesTotal);
      for (const auto& o : read_outputs()) {
        x.add(Family::OutputLostLinesTotal, {o.name}, static_cast<double>(o.lost_lines));
      }
    }
  }

  // Fills x with everything but the /metrics server's own families. The order of the calls sets
  // the order of samples within a family that several subsystems share (memory, table sizes).
  void collect(detail::Exposition& x) const {
    collect_build(x);
    collect_reassembly(x);
    collect_matching(x);
    collect_windows(x);
    collect_traffic(x);
    collect_capture(x);
    collect_detection(x);
  }

  void collect_detection(detail::Exposition& x) const {
    if (!read_detection) {
      return;
    }
    const detect::DetectionSnapshot d = read_detection();
    x.open(Family::DetectionEventsTotal);
    x.add(Family::DetectionEventsTotal, {"query"}, static_cast<double>(d.queries));
    x.add(Family::DetectionEventsTotal, {"lookup"}, static_cast<double>(d.lookups));
    x.add(Family::DetectionEventsTotal, {"response"}, static_cast<double>(d.responses));
    x.add(Family::DetectionEventsTotal, {"timeout"}, static_cast<double>(d.timeouts));
    x.open(Family::DetectionEventsDroppedTotal);
    x.add(Family::DetectionEventsDroppedTotal, {}, static_cast<double>(d.dropped));
    x.open(Family::LogicalTimeSeconds);
    x.add(Family::LogicalTimeSeconds, {}, d.logical_time_s);
    x.open(Family::DetectorEventsTotal);
    for (std::size_t det = 0; det < detect::kDetectors; ++det) {
      for (std::size_t sev = 0; sev < detect::kSeverityLabels; ++sev) {
        x.add(Family::DetectorEventsTotal,
              {detect::to_string(static_cast<detect::Detector>(det)), detect::severity_label(sev)},
              static_cast<double>(d.detector_events[det][sev]));
      }
    }
    for (const Family f :
         {Family::DomainTableEntries, Family::DomainTableCapacityEntries,
          Family::DomainTableEvictionsTotal, Family::AdmissionRejectedTotal,
          Family::DetectorFlaggedDomains, Family::ActiveClients, Family::MemoryBytes,
          Family::TableEntries, Family::TableCapacityEntries}) {
      x.open(f);
    }
    constexpr std::array<std::string_view, 3> kTiers = {"base", "candidate", "watch"};
    for (std::size_t t = 0; t < kTiers.size(); ++t) {
      x.add(Family::DomainTableEntries, {kTiers[t]}, static_cast<double>(d.entries[t]));
      x.add(Family::DomainTableCapacityEntries, {kTiers[t]}, static_cast<double>(d.capacity[t]));
      x.add(Family::DomainTableEvictionsTotal, {kTiers[t]}, static_cast<double>(d.evictions[t]));
    }
    x.add(Family::AdmissionRejectedTotal, {"base"}, static_cast<double>(d.rejected[0]));
    x.add(Family::AdmissionRejectedTotal, {"candidate"}, static_cast<double>(d.rejected[1]));
    x.add(Family::DetectorFlaggedDomains, {"querier_concentration"},
          static_cast<double>(d.flagged_querier_concentration));
    x.add(Family::DetectorFlaggedDomains, {"querier_concentration_any"},
          static_cast<double>(d.flagged_querier_concentration_any));
    for (const auto det :
         {detect::Detector::Burst, detect::Detector::Beacon, detect::Detector::CovertPair}) {
      x.add(Family::DetectorFlaggedDomains, {detect::to_string(det)},
            static_cast<double>(d.flagged[static_cast<std::size_t>(det)]));
    }
    x.add(Family::ActiveClients, {"14d"}, d.population14);
    x.open(Family::AggregateAnomaly);
    for (std::size_t i = 0; i < detect::AggregateMonitor::kSeries; ++i) {
      x.add(Family::AggregateAnomaly,
            {detect::AggregateMonitor::label(static_cast<detect::AggregateMonitor::Series>(i))},
            d.aggregate_anomaly[i] ? 1.0 : 0.0);
    }
    x.add(Family::DetectionDroppedTotal, {"detect_recently_dead"},
          static_cast<double>(d.recently_dead_dropped));
    x.add(Family::DetectionDroppedTotal, {"detect_aggregate_hours"},
          static_cast<double>(d.aggregate_late));
    collect_domains(x, d);
    constexpr std::array<std::string_view, 5> kTables = {"detect_base", "detect_candidates",
                                                         "detect_watch", "detect_seen_filter",
                                                         "detect_doorkeeper"};
    for (std::size_t t = 0; t < kTables.size(); ++t) {
      x.add(Family::MemoryBytes, {kTables[t]}, static_cast<double>(d.table_bytes[t]));
    }
    x.add(Family::MemoryBytes, {"detect_rings"}, static_cast<double>(d.ring_bytes));
    x.add(Family::TableEntries, {"detect_seen_filter"}, static_cast<double>(d.seen_filter_entries));
    x.add(Family::TableCapacityEntries, {"detect_seen_filter"},
          static_cast<double>(d.seen_filter_capacity));
    x.add(Family::TableEntries, {"detect_recently_dead"},
          static_cast<double>(d.recently_dead_entries));
    x.add(Family::TableCapacityEntries, {"detect_recently_dead"},
          static_cast<double>(d.recently_dead_capacity));
  }

  // The per-domain series (detection spec 4.10): the domains the engine chose, bounded by it.
  static void collect_domains(detail::Exposition& x, const detect::DetectionSnapshot& d) {
    for (const Family f :
         {Family::ExportTruncatedDomains, Family::DomainScore, Family::DomainEvents,
          Family::DomainDistinctOrgs, Family::DomainTop2OrgShare, Family::DomainIatCv,
          Family::DomainBurstiness, Family::DomainBeaconScore, Family::DomainBeaconPeriodSeconds,
          Family::DomainFailingSinceSeconds, Family::DomainFailuresSinceSuccess,
          Family::DomainFlagInfo}) {
      x.open(f);
    }
    for (std::size_t det = 0; det < detect::kDetectors; ++det) {
      const auto detector = static_cast<detect::Detector>(det);
      if (detector == detect::Detector::SuffixLeak || detector == detect::Detector::NewlyObserved) {
        continue;  // no per-domain scores: events only
      }
      x.add(Family::ExportTruncatedDomains, {detect::to_string(detector)},
            static_cast<double>(d.truncated[det]));
    }
    for (const detect::DomainSeries& s : d.domains) {
      const std::string domain = detect::domain_label(s.domain);
      for (std::size_t det = 0; det < detect::kDetectors; ++det) {
        if (s.score[det] <= 0) {
          continue;
        }
        const auto detector = static_cast<detect::Detector>(det);
        const std::string_view name = detect::to_string(detector);
        x.add(Family::DomainScore, {name, domain}, s.score[det]);
        const std::string_view severity = detect::to_string(s.severity[det]);
        std::uint16_t reasons = 0;
        switch (detector) {
          case detect::Detector::CovertPair:
            reasons = s.covert_reasons;
            break;
          case detect::Detector::DormantReactivation:
            reasons = detect::kReasonReactivated;
            break;
          case detect::Detector::Disappearance:
            reasons = s.failing_s >= 0 ? detect::kReasonDisappeared : 0;
            break;
          case detect::Detector::SuccessorName:
            reasons = detect::kReasonSuccessor;
            break;
          default:
            break;
        }
        if (reasons == 0) {
          x.add(Family::DomainFlagInfo, {name, domain, severity, ""}, 1);
        }
        for (std::size_t bit = 0; bit < detect::kReasons; ++bit) {
          if ((reasons & (1U << bit)) != 0) {
            x.add(Family::DomainFlagInfo, {name, domain, severity, detect::reason_label(bit)}, 1);
          }
        }
      }
      x.add(Family::DomainEvents, {domain, "1d"}, s.events_1d);
      x.add(Family::DomainEvents, {domain, "14d"}, s.events_14d);
      x.add(Family::DomainDistinctOrgs, {domain, "any"}, s.orgs_any);
      x.add(Family::DomainDistinctOrgs, {domain, "1pct"}, s.orgs_1pct);
      x.add(Family::DomainTop2OrgShare, {domain}, s.top2_share);
      x.add(Family::DomainIatCv, {domain}, s.iat_cv);
      x.add(Family::DomainBurstiness, {domain}, s.burstiness);
      x.add(Family::DomainBeaconScore, {domain}, s.beacon_score);
      x.add(Family::DomainBeaconPeriodSeconds, {domain}, s.beacon_period_s);
      if (s.failing_s >= 0) {
        x.add(Family::DomainFailingSinceSeconds, {domain}, s.failing_s);
        x.add(Family::DomainFailuresSinceSuccess, {domain}, s.failures_since_success);
      }
    }
  }

  [[nodiscard]] std::vector<MetricFamily> Collect() const override {
    detail::Exposition x;
    collect(x);
    return x.take();
  }
};

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void MetricsHub::set_server_addresses(ServerAddresses addresses) {
  impl_->addresses->publish(std::move(addresses));
}

std::uint32_t MetricsHub::set_top_n(std::uint32_t n) {
  n = std::min(n, impl_->options.analytics.top_capacity);
  impl_->top_n.store(n, std::memory_order_relaxed);
  return n;
}

void MetricsHub::record_reload(bool success) {
  if (success) {
    impl_->reloads_ok.fetch_add(1, std::memory_order_relaxed);
    impl_->last_load_s.store(unix_now(), std::memory_order_relaxed);
  } else {
    impl_->reloads_failed.fetch_add(1, std::memory_order_relaxed);
  }
}

MetricsHub::MetricsHub(BuildInfo build, MetricsOptions options, SuffixList suffixes)
    : impl_(std::make_shared<Impl>()) {
  impl_->build = std::move(build);
  impl_->top_n.store(options.analytics.top_n, std::memory_order_relaxed);
  impl_->last_load_s.store(unix_now(), std::memory_order_relaxed);
  // One per process, so that the workers' sketches merge; never 0, which would ask the matcher
  // for a seed of its own.
  impl_->seed = detail::random_seed();
  if (options.analytics.enabled) {
    impl_->suffixes = suffixes
                          ? std::move(suffixes)
                          : detail::PublicSuffixList::load(options.analytics.public_suffix_list);
  }
  // Detection's organisation labels use the key too, with analytics on or off.
  if (options.analytics.pseudonymise_key.empty()) {
    impl_->pseudonym_key = detail::derive_keys<2>(detail::random_seed());
  } else {
    const auto& k = options.analytics.pseudonymise_key;
    impl_->pseudonym_key = {detail::hash_bytes(k, detail::kPseudonymKeySeeds[0]),
                            detail::hash_bytes(k, detail::kPseudonymKeySeeds[1])};
  }
  impl_->options = std::move(options);
  impl_->addresses = std::make_unique<ServerAddressBook>(impl_->options.server_addresses);
}

std::array<std::uint64_t, 2> MetricsHub::pseudonym_key() const {
  return impl_->pseudonym_key;
}

std::string MetricsHub::public_suffix_list() const {
  return impl_->suffixes ? impl_->suffixes->description() : std::string();
}

MetricsHub::~MetricsHub() = default;

WorkerCounters& MetricsHub::add_worker(const Parser* parser) {
  if (parser != nullptr) {
    impl_->parsers.push_back(parser);
  }
  return impl_->workers.emplace_back(std::make_unique<WorkerCounters::Analytics>(
      impl_->options, impl_->suffixes, impl_->seed, impl_->addresses.get()));
}

void MetricsHub::set_protocols(bool mdns, bool llmnr) {
  impl_->mdns = mdns;
  impl_->llmnr = llmnr;
}

void MetricsHub::set_decrypted_transports(bool on) {
  impl_->transports = on ? kTransportCount : 2;
}

void MetricsHub::set_source_reader(std::function<std::vector<SourceSnapshot>()> reader) {
  impl_->read_sources = std::move(reader);
}

void MetricsHub::set_ring_reader(std::function<std::vector<RingSnapshot>()> reader) {
  impl_->read_rings = std::move(reader);
}

void MetricsHub::set_output_reader(std::function<std::vector<OutputSnapshot>()> reader) {
  impl_->read_outputs = std::move(reader);
}

void MetricsHub::set_detection_reader(std::function<detect::DetectionSnapshot()> reader) {
  impl_->read_detection = std::move(reader);
}

std::string MetricsHub::render_text() const {
  return detail::serialize_text(impl_->Collect());
}

std::string MetricsHub::render_openmetrics(double timestamp_s) const {
  return detail::serialize_openmetrics(impl_->Collect(), timestamp_s);
}

struct Exporter::State {
  std::unique_ptr<detail::HttpServer> server;
};

namespace {

// The HTTP server's own families, for its scrapes.
void collect_http(const detail::HttpStats& http, const detail::HttpLimits& limits,
                  detail::Exposition& x) {
  x.set_help(
      Family::HttpConnectionsTotal,
      fmt::format("Connections to the /metrics server by how they ended: answered, timed_out (no "
                  "complete request within {} ms, or no complete exchange within {} ms), "
                  "client_closed, refused_per_address (over {} open from one IPv4 address or "
                  "IPv6 /64), refused_global (over {} open in all), accept_failed (accept() "
                  "failed, e.g. out of file descriptors).",
                  limits.head_timeout.count(), limits.exchange_timeout.count(),
                  limits.max_per_source, limits.max_connections));
  for (std::size_t i = 0; i < detail::kHttpConnectionResultNames.size(); ++i) {
    x.add(Family::HttpConnectionsTotal, {detail::kHttpConnectionResultNames[i]},
          static_cast<double>(http.connections[i].get()));
  }
  for (std::size_t i = 0; i < detail::kHttpStatusCodes.size(); ++i) {
    x.add(Family::HttpResponsesTotal, {std::to_string(detail::kHttpStatusCodes[i])},
          static_cast<double>(http.responses[i].get()));
  }
  x.add(Family::HttpOpenConnections, {},
        static_cast<double>(http.open.load(std::memory_order_relaxed)));
}

// "ADDR:PORT" or "[ADDR]:PORT" → the address without brackets and the port.
bool split_address_port(const std::string& listen, std::string& address, std::uint16_t& port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  address = listen.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  } else if (address.find(':') != std::string::npos) {
    return false;  // an IPv6 address needs its brackets
  }
  const char* first = listen.data() + colon + 1;
  const char* last = listen.data() + listen.size();
  const auto [end, ec] = std::from_chars(first, last, port);
  return first != last && ec == std::errc{} && end == last;
}

}  // namespace

Exporter::Exporter(MetricsHub& hub, const std::string& listen) : state_(std::make_unique<State>()) {
  std::string address;
  std::uint16_t port = 0;
  if (!split_address_port(listen, address, port)) {
    throw std::runtime_error("cannot serve metrics on " + listen +
                             ": expected ADDRESS:PORT such as 127.0.0.1:9917 or [::1]:9917");
  }
  const detail::HttpLimits limits;
  auto stats = std::make_shared<detail::HttpStats>();
  auto render = [impl = hub.impl_, http = std::shared_ptr<const detail::HttpStats>(stats), limits] {
    detail::Exposition x;
    impl->collect(x);
    collect_http(*http, limits, x);
    return detail::serialize_text(x.take());
  };
  try {
    state_->server = std::make_unique<detail::HttpServer>(address, port, limits, std::move(stats),
                                                          std::move(render));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot serve metrics on " + listen + ": " + e.what());
  }
}

Exporter::~Exporter() = default;

std::uint16_t Exporter::port() const {
  return state_->server->port();
}

}  // namespace dnsmon
