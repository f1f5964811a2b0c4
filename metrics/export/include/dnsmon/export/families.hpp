// Every metric family dnsmon exports, declared once: name, type, label names and help. The
// collector fills families through Exposition (which takes label values in the order declared
// here), and a test checks the README's metric table against this list.
//
// Thread-safety: constant data. Allocation: none.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dnsmon {

enum class MetricKind : std::uint8_t { Counter, Gauge, Histogram };

struct MetricFamilySpec {
  std::string_view name;
  MetricKind kind;
  std::array<std::string_view, 3> labels;  // in order; unused ones empty
  std::string_view help;
};

// The families in exposition order.
enum class Family : std::uint8_t {
  BuildInfo,
  PacketsTotal,
  MessagesTotal,
  OpcodesTotal,
  MessagesByFamilyTotal,
  QueryEdnsTotal,
  QueryEdnsUdpSizeTotal,
  TruncatedResponsesTotal,
  ResponsesByQtypeTotal,
  MessageSizeBytes,
  QnameLengthBytes,
  QueryMatchingTotal,
  ResponseLatencySeconds,
  WindowTopDomainQueries,
  WindowTopQnameQueries,
  WindowTopNxdomainResponses,
  WindowTopServfailResponses,
  WindowTopClientQueries,
  WindowMessages,
  WindowTopOvercount,
  WindowDistinctClients,
  WindowDistinctQnames,
  WindowDistinctDomains,
  WindowNamesSkippedTotal,
  WindowPublicationsTotal,
  DomainCacheLookupsTotal,
  ReassembledMessagesTotal,
  IpReassemblyEventsTotal,
  TcpReassemblyEventsTotal,
  MemoryBytes,
  AnalyticsMemoryBudgetBytes,
  TableEntries,
  TableCapacityEntries,
  PacketBytesTotal,
  DuplicateFramesTotal,
  DnsMessageBytesTotal,
  QueriesTotal,
  ResponsesTotal,
  CaptureUp,
  CaptureReceivedTotal,
  CaptureBytesTotal,
  CaptureDroppedTotal,
  CaptureSnaplenTruncatedTotal,
  RingOccupancySlots,
  RingCapacitySlots,
  RingUsedBytes,
  RingCapacityBytes,
  OutputLostLinesTotal,
  HttpConnectionsTotal,
  HttpResponsesTotal,
  HttpOpenConnections,
  Count
};

inline constexpr std::array<MetricFamilySpec, static_cast<std::size_t>(Family::Count)>
    kMetricFamilies{{
        {"dnsmon_build_info",
         MetricKind::Gauge,
         {"version", "ldns", "libpcap"},
         "Build and library versions of this dnsmon; always 1."},
        {"dnsmon_packets_total",
         MetricKind::Counter,
         {"result"},
         "Frames processed by the workers, by outcome: ok is a decoded DNS message, every other"
         " value is the reason it was not decoded."},
        {"dnsmon_messages_total",
         MetricKind::Counter,
         {"protocol", "transport", "direction"},
         "Decoded messages by protocol (dns, and mdns/llmnr when enabled), transport and "
         "direction."},
        {"dnsmon_opcodes_total", MetricKind::Counter, {"opcode"}, "Decoded messages by opcode."},
        {"dnsmon_messages_by_family_total",
         MetricKind::Counter,
         {"family", "transport"},
         "Decoded messages by IP family and transport."},
        {"dnsmon_query_edns_total",
         MetricKind::Counter,
         {"edns"},
         "DNS queries by EDNS use: none, edns (OPT without DO), do (DNSSEC OK)."},
        {"dnsmon_query_edns_udp_size_total",
         MetricKind::Counter,
         {"size"},
         "DNS queries with EDNS by advertised UDP payload size."},
        {"dnsmon_truncated_responses_total",
         MetricKind::Counter,
         {},
         "DNS responses with the TC bit set (the client should retry over TCP)."},
        {"dnsmon_responses_by_qtype_total",
         MetricKind::Counter,
         {"qtype", "rcode_class"},
         "DNS responses by question type and rcode class."},
        {"dnsmon_message_size_bytes",
         MetricKind::Histogram,
         {"direction"},
         "Size of DNS messages, by direction."},
        {"dnsmon_qname_length_bytes",
         MetricKind::Histogram,
         {},
         "Length of DNS question names in presentation form."},
        {"dnsmon_query_matching_total",
         MetricKind::Counter,
         {"result"},
         "Query/response matching: matched responses, queries unanswered within the timeout, "
         "responses without a query, retransmitted queries, queries evicted from a full table."},
        {"dnsmon_response_latency_seconds",
         MetricKind::Histogram,
         {"transport", "rcode_class"},
         "Time from a query to its response, by transport and rcode class."},
        {"dnsmon_window_top_domain_queries",
         MetricKind::Gauge,
         {"window", "domain"},
         "Queries for the busiest registrable domains (Public Suffix List) in the window; at "
         "most top_n series per window."},
        {"dnsmon_window_top_qname_queries",
         MetricKind::Gauge,
         {"window", "qname"},
         "Queries for the busiest question names (lower-cased) in the window; at most top_n "
         "series per window."},
        {"dnsmon_window_top_nxdomain_responses",
         MetricKind::Gauge,
         {"window", "qname"},
         "NXDOMAIN responses for the question names that drew the most in the window."},
        {"dnsmon_window_top_servfail_responses",
         MetricKind::Gauge,
         {"window", "qname"},
         "SERVFAIL responses for the question names that drew the most in the window."},
        {"dnsmon_window_top_client_queries",
         MetricKind::Gauge,
         {"window", "client"},
         "Queries from the busiest clients in the window: addresses, or prefixes when "
         "aggregated, or keyed pseudonyms; at most top_n series per window."},
        {"dnsmon_window_messages",
         MetricKind::Gauge,
         {"window", "table"},
         "Messages each top-N table counted in the window (queries for the domain, qname and "
         "client tables, NXDOMAIN and SERVFAIL responses for theirs): the denominator of a "
         "top-N share."},
        {"dnsmon_window_top_overcount",
         MetricKind::Gauge,
         {"window", "table"},
         "Space-Saving error bound: each top-N value of the table exceeds the true count by at "
         "most this much (0 while the table holds every key it has seen)."},
        {"dnsmon_window_distinct_clients",
         MetricKind::Gauge,
         {"window"},
         "Distinct client keys (addresses, or prefixes when aggregated) that sent queries in "
         "the window, estimated by HyperLogLog."},
        {"dnsmon_window_distinct_qnames",
         MetricKind::Gauge,
         {"window"},
         "Distinct question names (lower-cased) queried in the window, estimated by "
         "HyperLogLog."},
        {"dnsmon_window_distinct_domains",
         MetricKind::Gauge,
         {"window"},
         "Distinct registrable domains queried in the window, estimated by HyperLogLog."},
        {"dnsmon_window_names_skipped_total",
         MetricKind::Counter,
         {},
         "Question names left out of the name tables: longer than 255 characters in "
         "presentation form (only escapes make them so)."},
        {"dnsmon_window_publications_total",
         MetricKind::Counter,
         {},
         "Window snapshots published by the workers: at most one per second of packet time and "
         "per 50 ms of wall-clock time, and one at the end of a replay."},
        {"dnsmon_domain_cache_lookups_total",
         MetricKind::Counter,
         {"result"},
         "Registrable-domain lookups answered by the workers' caches (hit) or by the public "
         "suffix list (miss)."},
        {"dnsmon_reassembled_messages_total",
         MetricKind::Counter,
         {},
         "Decoded messages that arrived in IP fragments."},
        {"dnsmon_ip_reassembly_events_total",
         MetricKind::Counter,
         {"event"},
         "IP fragment reassembly: fragments seen, datagrams reassembled, and every way "
         "reassembly gives up (timed_out, evicted, over_budget, too_large, too_many_fragments, "
         "overlap, invalid) or ignores a duplicate."},
        {"dnsmon_tcp_reassembly_events_total",
         MetricKind::Counter,
         {"event"},
         "DNS over TCP stream reassembly: segments, messages, and what happened to the streams "
         "(gaps skipped, resynchronisations, mid-stream starts, evictions, time-outs, oversized"
         " messages, closes)."},
        {"dnsmon_memory_bytes",
         MetricKind::Gauge,
         {"table"},
         "Bytes held by each bounded table, summed over workers."},
        {"dnsmon_analytics_memory_budget_bytes",
         MetricKind::Gauge,
         {},
         "The configured budget for all analytics tables of all workers (analytics.memory_mib);"
         " startup refuses a configuration that needs more."},
        {"dnsmon_table_entries", MetricKind::Gauge, {"table"}, "Entries in each bounded table."},
        {"dnsmon_table_capacity_entries",
         MetricKind::Gauge,
         {"table"},
         "Capacity of each bounded table; at capacity the oldest entry is evicted and counted."},
        {"dnsmon_packet_bytes_total",
         MetricKind::Counter,
         {},
         "Wire length of the frames processed by the workers."},
        {"dnsmon_duplicate_frames_total",
         MetricKind::Counter,
         {"event"},
         "Duplicate frame filter (capture.dedup): dropped is a frame that repeated one seen within"
         " 10 ms and was not processed; evicted is a remembered frame pushed out of the filter's"
         " table while still inside that window."},
        {"dnsmon_dns_message_bytes_total",
         MetricKind::Counter,
         {"direction"},
         "Size of the decoded DNS messages, by direction."},
        {"dnsmon_queries_total",
         MetricKind::Counter,
         {"qtype"},
         "Decoded DNS queries (QR=0, not mDNS or LLMNR) by question type; types outside the "
         "fixed set count as OTHER."},
        {"dnsmon_responses_total",
         MetricKind::Counter,
         {"rcode"},
         "Decoded DNS responses (QR=1, not mDNS or LLMNR) by response code, EDNS-extended where"
         " an OPT record is present."},
        {"dnsmon_capture_up",
         MetricKind::Gauge,
         {"source"},
         "1 while the capture source is open (an interface may still be down), 0 after it "
         "ended."},
        {"dnsmon_capture_received_total",
         MetricKind::Counter,
         {"source"},
         "Frames delivered by libpcap to the capture thread."},
        {"dnsmon_capture_bytes_total",
         MetricKind::Counter,
         {"source"},
         "Wire length of the frames delivered by libpcap."},
        {"dnsmon_capture_dropped_total",
         MetricKind::Counter,
         {"source", "where"},
         "Frames lost before decoding: kernel (no room in the capture buffer), interface "
         "(dropped by the NIC or driver), ring (the worker's ring was full)."},
        {"dnsmon_capture_snaplen_truncated_total",
         MetricKind::Counter,
         {"source"},
         "Frames longer than the snapshot length, kept only in part."},
        {"dnsmon_ring_occupancy_slots",
         MetricKind::Gauge,
         {"worker"},
         "Frames waiting in each worker's ring at scrape time."},
        {"dnsmon_ring_capacity_slots",
         MetricKind::Gauge,
         {"worker"},
         "Frames each worker's ring can hold."},
        {"dnsmon_ring_used_bytes",
         MetricKind::Gauge,
         {"worker"},
         "Bytes of each worker's ring in use at scrape time (frames, headers, padding): the "
         "ring is full when its bytes or its slots run out."},
        {"dnsmon_ring_capacity_bytes",
         MetricKind::Gauge,
         {"worker"},
         "Bytes of storage in each worker's ring."},
        {"dnsmon_output_lost_lines_total",
         MetricKind::Counter,
         {"output"},
         "Lines of an output (the --messages-out log) not written because a write failed; the "
         "first failure ends that output and is logged once."},
        {"dnsmon_http_connections_total",
         MetricKind::Counter,
         {"result"},
         "Connections to the /metrics server by how they ended."},
        {"dnsmon_http_responses_total",
         MetricKind::Counter,
         {"code"},
         "Responses the /metrics server wrote in full, by status code."},
        {"dnsmon_http_open_connections",
         MetricKind::Gauge,
         {},
         "Connections the /metrics server holds open, this scrape's included."},
    }};

inline constexpr const MetricFamilySpec& family_spec(Family f) noexcept {
  return kMetricFamilies[static_cast<std::size_t>(f)];
}

}  // namespace dnsmon
