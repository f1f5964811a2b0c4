#include "dnsmon/metrics.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
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

namespace dnsmon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_sample(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

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

  // The label of a client key: its address, "/prefix" when aggregated, or a keyed pseudonym.
  [[nodiscard]] std::string client_label(const detail::AddrKey& k) const {
    const bool v4 = k.bytes[16] == 4;
    if (options.analytics.pseudonymise_clients) {
      detail::SipHasher h{pseudonym_key};
      std::uint64_t w0 = 0;
      std::uint64_t w1 = 0;
      std::memcpy(&w0, k.bytes.data(), 8);
      std::memcpy(&w1, k.bytes.data() + 8, 8);
      h.word(w0);
      h.word(w1);
      return fmt::format("anon-{:016x}", h.finish(std::uint64_t{k.bytes[16]} << 56U));
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

  void collect_windows(std::vector<MetricFamily>& out) const {
    const auto& o = options.analytics;
    if (!o.enabled || workers.empty()) {
      return;
    }
    std::vector<detail::WindowSnapshot> windows =
        workers.front().analytics_->traffic->make_snapshots();
    for (const auto& w : workers) {
      w.analytics_->traffic->read_published(windows);
    }

    struct NameFamily {
      const char* name;
      const char* label;
      const char* help;
      const char* table;
    };

    static constexpr std::array<NameFamily, detail::kNameTables> kNameFamilies{{
        {"dnsmon_window_top_domain_queries", "domain",
         "Queries for the busiest registrable domains (Public Suffix List) in the window; at most "
         "top_n series per window.",
         "domain"},
        {"dnsmon_window_top_qname_queries", "qname",
         "Queries for the busiest question names (lower-cased) in the window; at most top_n "
         "series per window.",
         "qname"},
        {"dnsmon_window_top_nxdomain_responses", "qname",
         "NXDOMAIN responses for the question names that drew the most in the window.", "nxdomain"},
        {"dnsmon_window_top_servfail_responses", "qname",
         "SERVFAIL responses for the question names that drew the most in the window.", "servfail"},
    }};
    auto total = family("dnsmon_window_messages",
                        "Messages each top-N table counted in the window (queries for the domain, "
                        "qname and client tables, NXDOMAIN and SERVFAIL responses for theirs): the "
                        "denominator of a top-N share.",
                        MetricType::Gauge);
    auto overcount = family(
        "dnsmon_window_top_overcount",
        "Space-Saving error bound: each top-N value of the table exceeds the true count by at most "
        "this much (0 while the table holds every key it has seen).",
        MetricType::Gauge);
    std::vector<detail::HeavyHitter<detail::NameKey>> names(o.top_n);
    std::vector<detail::HeavyHitter<detail::AddrKey>> clients(o.top_n);
    for (std::size_t t = 0; t < detail::kNameTables; ++t) {
      const auto& spec = kNameFamilies[t];
      auto f = family(spec.name, spec.help, MetricType::Gauge);
      for (std::size_t i = 0; i < windows.size(); ++i) {
        const std::string label = window_label(o.windows_s[i]);
        const auto& summary = windows[i].names[t];
        const std::size_t n = summary.top(names);
        for (std::size_t j = 0; j < n; ++j) {
          add_sample(f, {{"window", label}, {spec.label, std::string(names[j].key.view())}},
                     static_cast<double>(names[j].count));
        }
        add_sample(total, {{"window", label}, {"table", spec.table}},
                   static_cast<double>(summary.total()));
        add_sample(overcount, {{"window", label}, {"table", spec.table}},
                   static_cast<double>(summary.min_count()));
      }
      out.push_back(std::move(f));
    }
    auto top_clients =
        family("dnsmon_window_top_client_queries",
               "Queries from the busiest clients in the window: addresses, or prefixes when "
               "aggregated, or keyed pseudonyms; at most top_n series per window.",
               MetricType::Gauge);
    for (std::size_t i = 0; i < windows.size(); ++i) {
      const std::string label = window_label(o.windows_s[i]);
      const auto& summary = windows[i].clients;
      const std::size_t n = summary.top(clients);
      for (std::size_t j = 0; j < n; ++j) {
        add_sample(top_clients, {{"window", label}, {"client", client_label(clients[j].key)}},
                   static_cast<double>(clients[j].count));
      }
      add_sample(total, {{"window", label}, {"table", "client"}},
                 static_cast<double>(summary.total()));
      add_sample(overcount, {{"window", label}, {"table", "client"}},
                 static_cast<double>(summary.min_count()));
    }
    out.push_back(std::move(top_clients));
    out.push_back(std::move(total));
    out.push_back(std::move(overcount));

    static constexpr std::array<std::array<const char*, 2>, detail::kDistinctKinds> kDistinct{{
        {"dnsmon_window_distinct_clients",
         "Distinct client keys (addresses, or prefixes when aggregated) that sent queries in the "
         "window, estimated by HyperLogLog."},
        {"dnsmon_window_distinct_qnames",
         "Distinct question names (lower-cased) queried in the window, estimated by HyperLogLog."},
        {"dnsmon_window_distinct_domains",
         "Distinct registrable domains queried in the window, estimated by HyperLogLog."},
    }};
    for (std::size_t k = 0; k < detail::kDistinctKinds; ++k) {
      auto f = family(kDistinct[k][0], kDistinct[k][1], MetricType::Gauge);
      for (std::size_t i = 0; i < windows.size(); ++i) {
        add_sample(f, {{"window", window_label(o.windows_s[i])}},
                   std::round(windows[i].distinct[k].estimate()));
      }
      out.push_back(std::move(f));
    }

    const detail::AnalyticsStats st = analytics_totals();
    auto skipped = family("dnsmon_window_names_skipped_total",
                          "Question names left out of the name tables: longer than 255 characters "
                          "in presentation form (only escapes make them so).",
                          MetricType::Counter);
    add_sample(skipped, {}, static_cast<double>(st.names_too_long));
    out.push_back(std::move(skipped));
    auto publications = family("dnsmon_window_publications_total",
                               "Window snapshots published by the workers: at most one per "
                               "second of packet time and per 50 ms of wall-clock time, and one "
                               "at the end of a replay.",
                               MetricType::Counter);
    add_sample(publications, {}, static_cast<double>(st.publications));
    out.push_back(std::move(publications));
    auto cache = family("dnsmon_domain_cache_lookups_total",
                        "Registrable-domain lookups answered by the workers' caches (hit) or by "
                        "the public suffix list (miss).",
                        MetricType::Counter);
    add_sample(cache, {{"result", "hit"}}, static_cast<double>(st.domain_cache_hits));
    add_sample(cache, {{"result", "miss"}}, static_cast<double>(st.domain_cache_misses));
    out.push_back(std::move(cache));
  }

  // The window analytics' stats, summed over the workers (analytics on).
  [[nodiscard]] detail::AnalyticsStats analytics_totals() const {
    detail::AnalyticsStats total;
    for (const auto& w : workers) {
      total += w.analytics_->traffic->stats();
    }
    return total;
  }

  // dnsmon_memory_bytes samples of the analytics tables, summed over workers.
  void add_analytics_memory(MetricFamily& memory) const {
    if (!options.analytics.enabled) {
      return;
    }
    const detail::AnalyticsStats total = analytics_totals();
    static constexpr std::array<const char*, detail::kNameTables> kNames{
        "top_domains", "top_qnames", "top_nxdomain", "top_servfail"};
    for (std::size_t t = 0; t < detail::kNameTables; ++t) {
      add_sample(memory, {{"table", kNames[t]}}, static_cast<double>(total.name_bytes[t]));
    }
    add_sample(memory, {{"table", "top_clients"}}, static_cast<double>(total.client_bytes));
    static constexpr std::array<const char*, detail::kDistinctKinds> kDistinct{
        "distinct_clients", "distinct_qnames", "distinct_domains"};
    for (std::size_t k = 0; k < detail::kDistinctKinds; ++k) {
      add_sample(memory, {{"table", kDistinct[k]}}, static_cast<double>(total.distinct_bytes[k]));
    }
    add_sample(memory, {{"table", "domain_cache"}}, static_cast<double>(total.domain_cache_bytes));
  }

  std::function<std::vector<SourceSnapshot>()> read_sources;
  std::function<std::vector<RingSnapshot>()> read_rings;
  std::function<std::vector<OutputSnapshot>()> read_outputs;

  // Sums one histogram over the workers into a Prometheus histogram sample.
  template <std::size_t N, class Pick>
  void add_histogram(MetricFamily& f, std::vector<ClientMetric::Label> labels,
                     const std::array<double, N>& bounds, Pick pick) const {
    ClientMetric m;
    m.label = std::move(labels);
    std::array<std::uint64_t, N + 1> counts{};
    std::uint64_t sum_milli = 0;
    for (const auto& w : workers) {
      const auto& h = pick(w);
      for (std::size_t i = 0; i <= N; ++i) {
        counts[i] += h.buckets_[i].get();
      }
      sum_milli += h.sum_milli_.get();
    }
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= N; ++i) {
      cumulative += counts[i];
      ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < N ? bounds[i] : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(b);
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(sum_milli) / 1000.0;
    f.metric.push_back(std::move(m));
  }

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;

    auto info = family("dnsmon_build_info", "Build and library versions of this dnsmon; always 1.",
                       MetricType::Gauge);
    add_sample(info,
               {{"version", build.version},
                {"ldns", build.ldns_version},
                {"libpcap", build.libpcap_version}},
               1);
    out.push_back(std::move(info));

    auto sum = [this](auto&& pick) {
      std::uint64_t total = 0;
      for (const auto& w : workers) {
        total += pick(w).get();
      }
      return static_cast<double>(total);
    };

    auto packets = family("dnsmon_packets_total",
                          "Frames processed by the workers, by outcome: ok is a decoded DNS "
                          "message, every other value is the reason it was not decoded.",
                          MetricType::Counter);
    for (std::size_t i = 0; i < kParseStatusCount; ++i) {
      add_sample(
          packets, {{"result", std::string(parse_status_name(static_cast<ParseStatus>(i)))}},
          sum([i](const WorkerCounters& w) -> const RelaxedCounter& { return w.packets_[i]; }));
    }
    out.push_back(std::move(packets));

    auto messages = family("dnsmon_messages_total",
                           "Decoded messages by protocol (dns, and mdns/llmnr when enabled), "
                           "transport and direction.",
                           MetricType::Counter);
    for (std::size_t p = 0; p < kProtocolSlots; ++p) {
      if ((p == 1 && !mdns) || (p == 2 && !llmnr)) {
        continue;
      }
      for (std::size_t t = 0; t < 2; ++t) {
        for (std::size_t q = 0; q < 2; ++q) {
          add_sample(messages,
                     {{"protocol", std::string(protocol_name(static_cast<Protocol>(p)))},
                      {"transport", std::string(transport_name(static_cast<Transport>(t)))},
                      {"direction", q == 1 ? "response" : "query"}},
                     sum([p, t, q](const WorkerCounters& w) -> const RelaxedCounter& {
                       return w.messages_[p][t][q];
                     }));
        }
      }
    }
    out.push_back(std::move(messages));

    auto opcodes =
        family("dnsmon_opcodes_total", "Decoded messages by opcode.", MetricType::Counter);
    for (std::size_t i = 0; i < kOpcodeSlots; ++i) {
      add_sample(
          opcodes, {{"opcode", std::string(opcode_slot_name(i))}},
          sum([i](const WorkerCounters& w) -> const RelaxedCounter& { return w.opcodes_[i]; }));
    }
    out.push_back(std::move(opcodes));

    auto families = family("dnsmon_messages_by_family_total",
                           "Decoded messages by IP family and transport.", MetricType::Counter);
    for (std::size_t f = 0; f < 2; ++f) {
      for (std::size_t t = 0; t < 2; ++t) {
        add_sample(families,
                   {{"family", f == 0 ? "ipv4" : "ipv6"},
                    {"transport", std::string(transport_name(static_cast<Transport>(t)))}},
                   sum([f, t](const WorkerCounters& w) -> const RelaxedCounter& {
                     return w.family_[f][t];
                   }));
      }
    }
    out.push_back(std::move(families));

    auto edns = family("dnsmon_query_edns_total",
                       "DNS queries by EDNS use: none, edns (OPT without DO), do (DNSSEC OK).",
                       MetricType::Counter);
    constexpr std::array<const char*, 3> kEdnsNames{"none", "edns", "do"};
    for (std::size_t i = 0; i < 3; ++i) {
      add_sample(edns, {{"edns", kEdnsNames[i]}},
                 sum([i](const WorkerCounters& w) -> const RelaxedCounter& { return w.edns_[i]; }));
    }
    out.push_back(std::move(edns));

    auto udp_size =
        family("dnsmon_query_edns_udp_size_total",
               "DNS queries with EDNS by advertised UDP payload size.", MetricType::Counter);
    for (std::size_t i = 0; i < kUdpSizeBucketNames.size(); ++i) {
      add_sample(
          udp_size, {{"size", std::string(kUdpSizeBucketNames[i])}},
          sum([i](const WorkerCounters& w) -> const RelaxedCounter& { return w.udp_size_[i]; }));
    }
    out.push_back(std::move(udp_size));

    auto tc = family("dnsmon_truncated_responses_total",
                     "DNS responses with the TC bit set (the client should retry over TCP).",
                     MetricType::Counter);
    add_sample(tc, {}, sum([](const WorkerCounters& w) -> const RelaxedCounter& {
                 return w.truncated_responses_;
               }));
    out.push_back(std::move(tc));

    auto by_qtype = family("dnsmon_responses_by_qtype_total",
                           "DNS responses by question type and rcode class.", MetricType::Counter);
    for (std::size_t q = 0; q < kQtypeSlots; ++q) {
      for (std::size_t c = 0; c < kRcodeClassNames.size(); ++c) {
        add_sample(by_qtype,
                   {{"qtype", std::string(qtype_slot_name(q))},
                    {"rcode_class", std::string(kRcodeClassNames[c])}},
                   sum([q, c](const WorkerCounters& w) -> const RelaxedCounter& {
                     return w.responses_by_qtype_[q][c];
                   }));
      }
    }
    out.push_back(std::move(by_qtype));

    auto sizes = family("dnsmon_message_size_bytes", "Size of DNS messages, by direction.",
                        MetricType::Histogram);
    for (std::size_t d = 0; d < 2; ++d) {
      add_histogram(
          sizes, {{"direction", d == 0 ? "query" : "response"}},
          kSizeBounds, [d](const WorkerCounters& w) -> const auto& { return w.size_[d]; });
    }
    out.push_back(std::move(sizes));

    auto qlen = family("dnsmon_qname_length_bytes",
                       "Length of DNS question names in presentation form.", MetricType::Histogram);
    add_histogram(
        qlen, {}, kQnameLengthBounds,
        [](const WorkerCounters& w) -> const auto& { return w.qname_length_; });
    out.push_back(std::move(qlen));

    detail::MatcherStats pending;  // the matchers' tables, reported with the other tables below
    {
      detail::MatcherStats& total = pending;
      for (const auto& w : workers) {
        const auto st = w.analytics_->matcher.stats();
        total.matched += st.matched;
        total.timeouts += st.timeouts;
        total.unmatched_responses += st.unmatched_responses;
        total.duplicates += st.duplicates;
        total.evictions += st.evictions;
        total.entries += st.entries;
        total.capacity += st.capacity;
        total.memory_bytes += st.memory_bytes;
      }
      auto matching = family(
          "dnsmon_query_matching_total",
          "Query/response matching: matched responses, queries unanswered within the timeout, "
          "responses without a query, retransmitted queries, queries evicted from a full table.",
          MetricType::Counter);
      add_sample(matching, {{"result", "matched"}}, static_cast<double>(total.matched));
      add_sample(matching, {{"result", "timeout"}}, static_cast<double>(total.timeouts));
      add_sample(matching, {{"result", "unmatched_response"}},
                 static_cast<double>(total.unmatched_responses));
      add_sample(matching, {{"result", "duplicate"}}, static_cast<double>(total.duplicates));
      add_sample(matching, {{"result", "evicted"}}, static_cast<double>(total.evictions));
      out.push_back(std::move(matching));

      auto latency = family("dnsmon_response_latency_seconds",
                            "Time from a query to its response, by transport and rcode class.",
                            MetricType::Histogram);
      for (std::size_t t = 0; t < 2; ++t) {
        for (std::size_t c = 0; c < static_cast<std::size_t>(detail::RcodeClass::Count); ++c) {
          std::array<std::uint64_t, detail::kLatencyBuckets> buckets{};
          double latency_sum = 0;
          for (const auto& w : workers) {
            const auto snap =
                w.analytics_->matcher
                    .latency(static_cast<Transport>(t), static_cast<detail::RcodeClass>(c))
                    .snapshot();
            for (std::size_t i = 0; i < buckets.size(); ++i) {
              buckets[i] += snap.buckets[i];
            }
            latency_sum += snap.sum_s;
          }
          ClientMetric m;
          m.label = {{"transport", std::string(transport_name(static_cast<Transport>(t)))},
                     {"rcode_class",
                      std::string(detail::rcode_class_name(static_cast<detail::RcodeClass>(c)))}};
          std::uint64_t cumulative = 0;
          for (std::size_t i = 0; i < buckets.size(); ++i) {
            cumulative += buckets[i];
            ClientMetric::Bucket b;
            b.cumulative_count = cumulative;
            b.upper_bound = i < detail::kLatencyBoundsS.size()
                                ? detail::kLatencyBoundsS[i]
                                : std::numeric_limits<double>::infinity();
            m.histogram.bucket.push_back(b);
          }
          m.histogram.sample_count = cumulative;
          m.histogram.sample_sum = latency_sum;
          latency.metric.push_back(std::move(m));
        }
      }
      out.push_back(std::move(latency));
    }

    collect_windows(out);

    auto reassembled =
        family("dnsmon_reassembled_messages_total",
               "Decoded messages that arrived in IP fragments.", MetricType::Counter);
    add_sample(reassembled, {}, sum([](const WorkerCounters& w) -> const RelaxedCounter& {
                 return w.reassembled_messages_;
               }));
    out.push_back(std::move(reassembled));

    ReassemblyStats total;
    if (!parsers.empty()) {
      for (const Parser* p : parsers) {
        const auto st = p->stats();
        for (std::size_t i = 0; i < total.ip.size(); ++i) {
          total.ip[i] += st.ip[i];
        }
        for (std::size_t i = 0; i < total.tcp.size(); ++i) {
          total.tcp[i] += st.tcp[i];
        }
        total.ip_in_progress += st.ip_in_progress;
        total.ip_memory_bytes += st.ip_memory_bytes;
        total.ip_capacity += st.ip_capacity;
        total.tcp_flows += st.tcp_flows;
        total.tcp_memory_bytes += st.tcp_memory_bytes;
        total.tcp_capacity += st.tcp_capacity;
      }
      auto ip = family("dnsmon_ip_reassembly_events_total",
                       "IP fragment reassembly: fragments seen, datagrams reassembled, and every "
                       "way reassembly gives up (timed_out, evicted, over_budget, too_large, "
                       "too_many_fragments, overlap, invalid) or ignores a duplicate.",
                       MetricType::Counter);
      for (std::size_t i = 0; i < total.ip.size(); ++i) {
        add_sample(ip, {{"event", std::string(ReassemblyStats::kIpEventNames[i])}},
                   static_cast<double>(total.ip[i]));
      }
      out.push_back(std::move(ip));
      auto tcp = family("dnsmon_tcp_reassembly_events_total",
                        "DNS over TCP stream reassembly: segments, messages, and what happened "
                        "to the streams (gaps skipped, resynchronisations, mid-stream starts, "
                        "evictions, time-outs, oversized messages, closes).",
                        MetricType::Counter);
      for (std::size_t i = 0; i < total.tcp.size(); ++i) {
        add_sample(tcp, {{"event", std::string(ReassemblyStats::kTcpEventNames[i])}},
                   static_cast<double>(total.tcp[i]));
      }
      out.push_back(std::move(tcp));
    }
    auto memory =
        family("dnsmon_memory_bytes", "Bytes held by each bounded table, summed over workers.",
               MetricType::Gauge);
    if (!parsers.empty()) {
      add_sample(memory, {{"table", "ip_fragments"}}, static_cast<double>(total.ip_memory_bytes));
      add_sample(memory, {{"table", "tcp_streams"}}, static_cast<double>(total.tcp_memory_bytes));
    }
    add_sample(memory, {{"table", "pending_queries"}}, static_cast<double>(pending.memory_bytes));
    add_analytics_memory(memory);
    out.push_back(std::move(memory));
    auto budget = family("dnsmon_analytics_memory_budget_bytes",
                         "The configured budget for all analytics tables of all workers "
                         "(analytics.memory_mib); startup refuses a configuration that needs "
                         "more.",
                         MetricType::Gauge);
    add_sample(budget, {}, static_cast<double>(options.memory_budget_bytes));
    out.push_back(std::move(budget));
    auto entries =
        family("dnsmon_table_entries", "Entries in each bounded table.", MetricType::Gauge);
    if (!parsers.empty()) {
      add_sample(entries, {{"table", "ip_fragments"}}, static_cast<double>(total.ip_in_progress));
      add_sample(entries, {{"table", "tcp_streams"}}, static_cast<double>(total.tcp_flows));
    }
    add_sample(entries, {{"table", "pending_queries"}}, static_cast<double>(pending.entries));
    out.push_back(std::move(entries));
    auto capacity = family("dnsmon_table_capacity_entries",
                           "Capacity of each bounded table; at capacity the oldest entry is "
                           "evicted and counted.",
                           MetricType::Gauge);
    if (!parsers.empty()) {
      add_sample(capacity, {{"table", "ip_fragments"}}, static_cast<double>(total.ip_capacity));
      add_sample(capacity, {{"table", "tcp_streams"}}, static_cast<double>(total.tcp_capacity));
    }
    add_sample(capacity, {{"table", "pending_queries"}}, static_cast<double>(pending.capacity));
    out.push_back(std::move(capacity));

    auto bytes = family("dnsmon_packet_bytes_total",
                        "Wire length of the frames processed by the workers.", MetricType::Counter);
    add_sample(bytes, {}, sum([](const WorkerCounters& w) -> const RelaxedCounter& {
                 return w.frame_bytes_;
               }));
    out.push_back(std::move(bytes));

    auto dns_bytes = family("dnsmon_dns_message_bytes_total",
                            "Size of the decoded DNS messages, by direction.", MetricType::Counter);
    add_sample(
        dns_bytes, {{"direction", "query"}},
        sum([](const WorkerCounters& w) -> const RelaxedCounter& { return w.query_bytes_; }));
    add_sample(
        dns_bytes, {{"direction", "response"}},
        sum([](const WorkerCounters& w) -> const RelaxedCounter& { return w.response_bytes_; }));
    out.push_back(std::move(dns_bytes));

    auto queries = family("dnsmon_queries_total",
                          "Decoded DNS queries (QR=0, not mDNS or LLMNR) by question type; types "
                          "outside the fixed set count as OTHER.",
                          MetricType::Counter);
    for (std::size_t i = 0; i < kQtypeSlots; ++i) {
      add_sample(queries, {{"qtype", std::string(qtype_slot_name(i))}},
                 sum([i](const WorkerCounters& w) -> const RelaxedCounter& {
                   return w.queries_by_qtype_[i];
                 }));
    }
    out.push_back(std::move(queries));

    auto responses = family("dnsmon_responses_total",
                            "Decoded DNS responses (QR=1, not mDNS or LLMNR) by response code, "
                            "EDNS-extended where an OPT record is present.",
                            MetricType::Counter);
    for (std::size_t i = 0; i < kRcodeSlots; ++i) {
      add_sample(responses, {{"rcode", std::string(rcode_slot_name(i))}},
                 sum([i](const WorkerCounters& w) -> const RelaxedCounter& {
                   return w.responses_by_rcode_[i];
                 }));
    }
    out.push_back(std::move(responses));

    if (read_sources) {
      const auto sources = read_sources();
      auto up = family(
          "dnsmon_capture_up",
          "1 while the capture source is open (an interface may still be down), 0 after it ended.",
          MetricType::Gauge);
      auto received =
          family("dnsmon_capture_received_total",
                 "Frames delivered by libpcap to the capture thread.", MetricType::Counter);
      auto cap_bytes =
          family("dnsmon_capture_bytes_total", "Wire length of the frames delivered by libpcap.",
                 MetricType::Counter);
      auto dropped = family("dnsmon_capture_dropped_total",
                            "Frames lost before decoding: kernel (no room in the capture buffer), "
                            "interface (dropped by the NIC or driver), ring (the worker's ring "
                            "was full).",
                            MetricType::Counter);
      auto cut =
          family("dnsmon_capture_snaplen_truncated_total",
                 "Frames longer than the snapshot length, kept only in part.", MetricType::Counter);
      for (const auto& s : sources) {
        add_sample(up, {{"source", s.name}}, s.up ? 1 : 0);
        add_sample(received, {{"source", s.name}}, static_cast<double>(s.received));
        add_sample(cap_bytes, {{"source", s.name}}, static_cast<double>(s.bytes));
        add_sample(dropped, {{"source", s.name}, {"where", "kernel"}},
                   static_cast<double>(s.kernel_dropped));
        add_sample(dropped, {{"source", s.name}, {"where", "interface"}},
                   static_cast<double>(s.if_dropped));
        add_sample(dropped, {{"source", s.name}, {"where", "ring"}},
                   static_cast<double>(s.ring_dropped));
        add_sample(cut, {{"source", s.name}}, static_cast<double>(s.snaplen_cut));
      }
      out.push_back(std::move(up));
      out.push_back(std::move(received));
      out.push_back(std::move(cap_bytes));
      out.push_back(std::move(dropped));
      out.push_back(std::move(cut));
    }

    if (read_rings) {
      const auto rings = read_rings();
      auto occupancy =
          family("dnsmon_ring_occupancy_slots",
                 "Frames waiting in each worker's ring at scrape time.", MetricType::Gauge);
      auto slots = family("dnsmon_ring_capacity_slots", "Frames each worker's ring can hold.",
                          MetricType::Gauge);
      auto used = family("dnsmon_ring_used_bytes",
                         "Bytes of each worker's ring in use at scrape time (frames, headers, "
                         "padding): the ring is full when its bytes or its slots run out.",
                         MetricType::Gauge);
      auto ring_bytes = family("dnsmon_ring_capacity_bytes",
                               "Bytes of storage in each worker's ring.", MetricType::Gauge);
      for (std::size_t i = 0; i < rings.size(); ++i) {
        const std::vector<ClientMetric::Label> worker{{"worker", std::to_string(i)}};
        add_sample(occupancy, worker, static_cast<double>(rings[i].occupancy));
        add_sample(slots, worker, static_cast<double>(rings[i].capacity));
        add_sample(used, worker, static_cast<double>(rings[i].used_bytes));
        add_sample(ring_bytes, worker, static_cast<double>(rings[i].capacity_bytes));
      }
      out.push_back(std::move(occupancy));
      out.push_back(std::move(slots));
      out.push_back(std::move(used));
      out.push_back(std::move(ring_bytes));
    }

    if (read_outputs) {
      auto lost = family("dnsmon_output_lost_lines_total",
                         "Lines of an output (the --messages-out log) not written because a write "
                         "failed; the first failure ends that output and is logged once.",
                         MetricType::Counter);
      for (const auto& o : read_outputs()) {
        add_sample(lost, {{"output", o.name}}, static_cast<double>(o.lost_lines));
      }
      out.push_back(std::move(lost));
    }
    return out;
  }
};

MetricsHub::MetricsHub(BuildInfo build, MetricsOptions options, SuffixList suffixes)
    : impl_(std::make_shared<Impl>()) {
  impl_->build = std::move(build);
  std::random_device rd;
  const auto draw = [&rd] { return (std::uint64_t{rd()} << 32U) | rd(); };
  impl_->seed = draw() | 1U;  // never 0, which would ask the matcher for a seed of its own
  if (options.analytics.enabled) {
    impl_->suffixes = suffixes
                          ? std::move(suffixes)
                          : detail::PublicSuffixList::load(options.analytics.public_suffix_list);
    if (options.analytics.pseudonymise_key.empty()) {
      impl_->pseudonym_key = {draw(), draw()};
    } else {
      const auto& k = options.analytics.pseudonymise_key;
      impl_->pseudonym_key = {detail::hash_bytes(k, 0x243f'6a88'85a3'08d3ULL),
                              detail::hash_bytes(k, 0x1319'8a2e'0370'7344ULL)};
    }
  }
  impl_->options = std::move(options);
}

std::string MetricsHub::public_suffix_list() const {
  return impl_->suffixes ? impl_->suffixes->description() : std::string();
}

MetricsHub::~MetricsHub() = default;

WorkerCounters& MetricsHub::add_worker(const Parser* parser) {
  if (parser != nullptr) {
    impl_->parsers.push_back(parser);
  }
  return impl_->workers.emplace_back(
      std::make_unique<WorkerCounters::Analytics>(impl_->options, impl_->suffixes, impl_->seed));
}

void MetricsHub::set_protocols(bool mdns, bool llmnr) {
  impl_->mdns = mdns;
  impl_->llmnr = llmnr;
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

std::string MetricsHub::render_text() const {
  return prometheus::TextSerializer{}.Serialize(impl_->Collect());
}

struct Exporter::State {
  std::unique_ptr<detail::HttpServer> server;
};

namespace {

// The HTTP server's own families, for its scrapes.
void collect_http(const detail::HttpStats& http, const detail::HttpLimits& limits,
                  std::vector<MetricFamily>& out) {
  auto connections = family(
      "dnsmon_http_connections_total",
      fmt::format("Connections to the /metrics server by how they ended: answered, timed_out (no "
                  "complete request within {} ms, or no complete exchange within {} ms), "
                  "client_closed, refused_per_address (over {} open from one IPv4 address or "
                  "IPv6 /64), refused_global (over {} open in all), accept_failed (accept() "
                  "failed, e.g. out of file descriptors).",
                  limits.head_timeout.count(), limits.exchange_timeout.count(),
                  limits.max_per_source, limits.max_connections),
      MetricType::Counter);
  for (std::size_t i = 0; i < detail::kHttpConnectionResultNames.size(); ++i) {
    add_sample(connections, {{"result", std::string(detail::kHttpConnectionResultNames[i])}},
               static_cast<double>(http.connections[i].get()));
  }
  out.push_back(std::move(connections));
  auto responses =
      family("dnsmon_http_responses_total",
             "Responses the /metrics server wrote in full, by status code.", MetricType::Counter);
  for (std::size_t i = 0; i < detail::kHttpStatusCodes.size(); ++i) {
    add_sample(responses, {{"code", std::to_string(detail::kHttpStatusCodes[i])}},
               static_cast<double>(http.responses[i].get()));
  }
  out.push_back(std::move(responses));
  auto open = family("dnsmon_http_open_connections",
                     "Connections the /metrics server holds open, this scrape's included.",
                     MetricType::Gauge);
  add_sample(open, {}, static_cast<double>(http.open.load(std::memory_order_relaxed)));
  out.push_back(std::move(open));
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
    std::vector<MetricFamily> families = impl->Collect();
    collect_http(*http, limits, families);
    return prometheus::TextSerializer{}.Serialize(families);
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
