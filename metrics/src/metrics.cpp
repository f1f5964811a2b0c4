#include "dnsmon/metrics.hpp"

#include <deque>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "matcher.hpp"

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

struct WorkerCounters::Analytics {
  detail::QueryMatcher matcher;
};

WorkerCounters::WorkerCounters() : analytics_(std::make_unique<Analytics>()) {
}

WorkerCounters::~WorkerCounters() = default;

void WorkerCounters::match(const DnsMessage& m) noexcept {
  if (!m.qr) {
    (void)analytics_->matcher.on_query(m);
    return;
  }
  detail::QueryMatcher::Result result{};
  (void)analytics_->matcher.on_response(m, result);  // records the latency itself
}

struct MetricsHub::Impl : prometheus::Collectable {
  BuildInfo build;
  std::deque<WorkerCounters> workers;  // deque: references stay valid as workers are added
  std::vector<const Parser*> parsers;
  bool mdns = false, llmnr = false;

  std::function<std::vector<SourceSnapshot>()> read_sources;
  std::function<std::vector<RingSnapshot>()> read_rings;

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

    auto reassembled =
        family("dnsmon_reassembled_messages_total",
               "Decoded messages that arrived in IP fragments.", MetricType::Counter);
    add_sample(reassembled, {}, sum([](const WorkerCounters& w) -> const RelaxedCounter& {
                 return w.reassembled_messages_;
               }));
    out.push_back(std::move(reassembled));

    if (!parsers.empty()) {
      ReassemblyStats total;
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
      auto memory =
          family("dnsmon_memory_bytes", "Bytes held by each bounded table, summed over workers.",
                 MetricType::Gauge);
      add_sample(memory, {{"table", "ip_fragments"}}, static_cast<double>(total.ip_memory_bytes));
      add_sample(memory, {{"table", "tcp_streams"}}, static_cast<double>(total.tcp_memory_bytes));
      add_sample(memory, {{"table", "pending_queries"}}, static_cast<double>(pending.memory_bytes));
      out.push_back(std::move(memory));
      auto entries =
          family("dnsmon_table_entries", "Entries in each bounded table.", MetricType::Gauge);
      add_sample(entries, {{"table", "ip_fragments"}}, static_cast<double>(total.ip_in_progress));
      add_sample(entries, {{"table", "tcp_streams"}}, static_cast<double>(total.tcp_flows));
      add_sample(entries, {{"table", "pending_queries"}}, static_cast<double>(pending.entries));
      out.push_back(std::move(entries));
      auto capacity = family("dnsmon_table_capacity_entries",
                             "Capacity of each bounded table; at capacity the oldest entry is "
                             "evicted and counted.",
                             MetricType::Gauge);
      add_sample(capacity, {{"table", "ip_fragments"}}, static_cast<double>(total.ip_capacity));
      add_sample(capacity, {{"table", "tcp_streams"}}, static_cast<double>(total.tcp_capacity));
      add_sample(capacity, {{"table", "pending_queries"}}, static_cast<double>(pending.capacity));
      out.push_back(std::move(capacity));
    }

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
      auto capacity =
          family("dnsmon_ring_capacity_slots", "Slots in each worker's ring.", MetricType::Gauge);
      for (std::size_t i = 0; i < rings.size(); ++i) {
        add_sample(occupancy, {{"worker", std::to_string(i)}},
                   static_cast<double>(rings[i].occupancy));
        add_sample(capacity, {{"worker", std::to_string(i)}},
                   static_cast<double>(rings[i].capacity));
      }
      out.push_back(std::move(occupancy));
      out.push_back(std::move(capacity));
    }
    return out;
  }
};

MetricsHub::MetricsHub(BuildInfo build) : impl_(std::make_shared<Impl>()) {
  impl_->build = std::move(build);
}

MetricsHub::~MetricsHub() = default;

WorkerCounters& MetricsHub::add_worker(const Parser* parser) {
  if (parser != nullptr) {
    impl_->parsers.push_back(parser);
  }
  return impl_->workers.emplace_back();
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

std::string MetricsHub::render_text() const {
  return prometheus::TextSerializer{}.Serialize(impl_->Collect());
}

struct Exporter::State {
  std::unique_ptr<prometheus::Exposer> exposer;
};

Exporter::Exporter(MetricsHub& hub, const std::string& listen) : state_(std::make_unique<State>()) {
  try {
    state_->exposer = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot serve metrics on " + listen +
                             ": the address is in use, not local, or malformed (" + e.what() + ")");
  }
  state_->exposer->RegisterCollectable(hub.impl_);
}

Exporter::~Exporter() = default;

std::uint16_t Exporter::port() const {
  const auto ports = state_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

}  // namespace dnsmon
