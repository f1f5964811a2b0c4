// The per-worker counting state and its options: traffic counters by label, query matching and
// the sliding-window analytics (detail/windows.hpp, detail/matcher.hpp, detail/sketches.hpp), all
// owned by one worker and read by the exporter's collector at scrape time.
//
// Each worker updates its own WorkerCounters with plain single-writer stores (no locked
// instruction, no lock, no prometheus-cpp call per packet). Every label value comes from a fixed
// set, so traffic can never add a series.
//
// Thread-safety: a WorkerCounters has one writer (its worker) and any number of readers.
// Allocation: none on the record_* paths.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/analytics/legs.hpp"
#include "dnsmon/common/counter.hpp"
#include "dnsmon/common/histogram.hpp"
#include "dnsmon/domains.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon {

namespace detail {
struct QueryTag;    // detail/matcher.hpp
class TimeoutSink;  // detail/matcher.hpp
}  // namespace detail

// Sliding-window analytics: top-N tables and distinct counts per window
// (detail/windows.hpp).
struct AnalyticsOptions {
  bool enabled = true;
  std::vector<std::uint32_t> windows_s{60, 300, 3600};  // each a multiple of sub_windows seconds
  std::uint32_t sub_windows = 6;                        // a window slides by window / sub_windows
  std::uint32_t top_n = 10;                             // series per top-N table and window
  std::uint32_t top_capacity = 256;  // Space-Saving counters per table and sub-window (>= top_n)
  std::uint32_t hll_precision = 14;  // 2^p one-byte registers; 0.81 % standard error at 14
  std::uint32_t domain_cache_entries = 65536;  // per tier; 8 bytes each
  std::string public_suffix_list;              // "" = the system's list
  std::uint8_t client_ipv4_prefix = 32;
  std::uint8_t client_ipv6_prefix = 128;
  bool pseudonymise_clients = false;
  std::string pseudonymise_key;  // "" = a random key per start
};

struct MetricsOptions {
  std::uint32_t matching_capacity = 65536;   // outstanding queries per worker
  std::uint32_t matching_timeout_ms = 5000;  // packet time
  AnalyticsOptions analytics;
  // capture.local_networks: CIDR prefixes of the watched server's addresses, as configured.
  std::vector<std::string> local_networks;
  // The server's addresses that decide the leg label (legs.hpp): the daemon fills it from
  // local_networks and, when capturing live, the host's own addresses. Empty: every leg unknown.
  ServerAddresses server_addresses;
  std::uint64_t memory_budget_bytes = std::uint64_t{128} << 20U;  // all workers' analytics state
  // Query tags in the matcher (QueryMatcher, MatcherOptions::query_tags): the daemon sets it when
  // detection is on, which reports timeouts through them. 64 bytes per outstanding query.
  bool matching_query_tags = false;
};

// Bytes of analytics state (query matching, windows, sketches, caches) one worker allocates.
std::size_t analytics_bytes_per_worker(const MetricsOptions& options) noexcept;

// Fixed label sets.
inline constexpr std::size_t kQtypeSlots = 17;  // 16 named types + OTHER
inline constexpr std::size_t kRcodeSlots = 14;  // 13 named rcodes + OTHER
inline constexpr std::size_t kOpcodeSlots = 7;  // QUERY IQUERY STATUS NOTIFY UPDATE DSO + OTHER
inline constexpr std::size_t kProtocolSlots = static_cast<std::size_t>(Protocol::Count);
std::size_t qtype_slot(std::uint16_t qtype) noexcept;
std::string_view qtype_slot_name(std::size_t slot) noexcept;
std::size_t rcode_slot(std::uint16_t rcode) noexcept;
std::string_view rcode_slot_name(std::size_t slot) noexcept;
std::size_t opcode_slot(std::uint8_t opcode) noexcept;
std::string_view opcode_slot_name(std::size_t slot) noexcept;

// Upper bounds of the message size and question name length histograms, in bytes.
inline constexpr std::array<std::int64_t, 9> kSizeBounds{64,   128,  256,  512,  1024,
                                                         1232, 1500, 4096, 16384};
inline constexpr std::array<std::int64_t, 7> kQnameLengthBounds{8, 16, 32, 64, 100, 160, 255};
inline constexpr std::array<std::string_view, 5> kUdpSizeBucketNames{"lt512", "512_1231", "1232",
                                                                     "1233_4095", "ge4096"};
inline constexpr std::array<std::string_view, 4> kRcodeClassNames{"noerror", "nxdomain", "servfail",
                                                                  "other"};

inline std::size_t rcode_class(std::uint16_t rcode) noexcept {
  return rcode == 0 ? 0 : rcode == 3 ? 1 : rcode == 2 ? 2 : 3;
}

class WorkerCounters {
 public:
  // Query matching and the sliding-window analytics (detail/worker_analytics.hpp), built by
  // MetricsHub.
  struct Analytics;
  explicit WorkerCounters(std::unique_ptr<Analytics> analytics);
  ~WorkerCounters();
  WorkerCounters(const WorkerCounters&) = delete;
  WorkerCounters& operator=(const WorkerCounters&) = delete;

  void record_frame(std::uint32_t wire_len, ParseStatus status) noexcept {
    packets_[static_cast<std::size_t>(status)].add();
    frame_bytes_.add(wire_len);
  }

  // Returns the latency of the query a response matched, in nanoseconds, or -1.
  std::int64_t record_message(const DnsMessage& m) noexcept {
    messages_[static_cast<std::size_t>(m.protocol)][static_cast<std::size_t>(m.transport)]
             [m.qr ? 1 : 0]
                 .add();
    opcodes_[opcode_slot(m.opcode)].add();
    if (m.reassembled) {
      reassembled_messages_.add();
    }
    family_[m.src.family == 6 ? 1 : 0][static_cast<std::size_t>(m.transport)].add();
    if (m.protocol != Protocol::Dns) {
      return -1;  // mDNS and LLMNR are counted apart, by the messages_ series only
    }
    size_[m.qr ? 1 : 0].record(m.size, m.size);
    if (m.has_question) {
      qname_length_.record(m.qname.length, m.qname.length);
    }
    if (m.qr) {
      responses_by_qtype_[qtype_slot(m.qtype)][rcode_class(m.rcode)].add();
      if ((m.flags & kFlagTc) != 0) {
        truncated_responses_.add();
      }
    } else {
      edns_[m.edns.present ? (m.edns.do_bit ? 2 : 1) : 0].add();
      if (m.edns.present) {
        const auto size = m.edns.udp_size;
        udp_size_[size < 512 ? 0 : size < 1232 ? 1 : size == 1232 ? 2 : size < 4096 ? 3 : 4].add();
      }
    }
    if (m.qr) {
      responses_by_rcode_[rcode_slot(m.rcode)].add();
      if (m.answers.nodata(m)) {
        responses_nodata_[qtype_slot(m.qtype)].add();
      }
      response_bytes_.add(m.size);
    } else {
      queries_by_qtype_[qtype_slot(m.qtype)].add();
      query_bytes_.add(m.size);
    }
    return analyse(m);
  }

  // After record_message() of a DNS query: the matcher's tag of that query
  // (MetricsOptions::matching_query_tags), or nullptr when it was a retransmission of one still
  // outstanding or the matcher has no tags.
  [[nodiscard]] detail::QueryTag* last_query_tag() noexcept;
  // After record_message() of a DNS query: the length of its registrable domain as the analytics
  // found it, a suffix of its lower-cased name (the public suffix list is the one detection
  // uses); 0 when the analytics are off or the name was not valid.
  [[nodiscard]] std::size_t last_query_domain_length() const noexcept;
  // After record_message() of a response it matched to a query: that query's tag as its owner
  // filled it, or nullptr (no match, or no tags).
  [[nodiscard]] detail::QueryTag* matched_query_tag() noexcept;
  // Where the matcher's timeouts go (nullptr: nowhere); only with query tags. Owner thread.
  void set_timeout_sink(detail::TimeoutSink* sink) noexcept;

  // Packet time reached now_ns with no message (live capture gone quiet): expires unanswered
  // queries and lets the windows slide. Do not call it in a replay, whose clock is the packets'.
  void tick(std::int64_t now_ns) noexcept;
  // End of input: publishes what the windows hold.
  void finish() noexcept;

  std::array<SingleWriterCounter, kParseStatusCount> packets_;
  // [protocol][transport][qr]
  std::array<std::array<std::array<SingleWriterCounter, 2>, kTransportCount>, kProtocolSlots>
      messages_;  // [protocol][transport][query, response]
  std::array<SingleWriterCounter, kOpcodeSlots> opcodes_;
  std::array<std::array<SingleWriterCounter, kTransportCount>, 2>
      family_;                                       // [ipv4, ipv6][transport]
  std::array<FixedHistogram<kSizeBounds>, 2> size_;  // [query, response]
  FixedHistogram<kQnameLengthBounds> qname_length_;
  std::array<std::array<SingleWriterCounter, kRcodeClassNames.size()>, kQtypeSlots>
      responses_by_qtype_;
  std::array<SingleWriterCounter, 3> edns_;  // queries: [no EDNS, EDNS without DO, EDNS with DO]
  std::array<SingleWriterCounter, kUdpSizeBucketNames.size()> udp_size_;
  SingleWriterCounter truncated_responses_;

  std::unique_ptr<Analytics> analytics_;
  std::int64_t analyse(const DnsMessage& m) noexcept;  // matcher and windows (record_message)
  SingleWriterCounter reassembled_messages_;
  std::array<SingleWriterCounter, kQtypeSlots> queries_by_qtype_;
  std::array<SingleWriterCounter, kRcodeSlots> responses_by_rcode_;
  // NOERROR responses without an answer of the asked type (DnsAnswers::nodata), by question type.
  std::array<SingleWriterCounter, kQtypeSlots> responses_nodata_;
  SingleWriterCounter frame_bytes_, query_bytes_, response_bytes_;
  // Frames dropped as duplicates before parsing, and digests of the duplicate filter's table
  // pushed out while still inside its window (DuplicateFilter, capture/dedup.hpp).
  SingleWriterCounter duplicates_dropped_, duplicates_evicted_;
};

}  // namespace dnsmon
