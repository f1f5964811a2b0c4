// The exporter: MetricsHub sums the workers' counters (dnsmon/analytics.hpp) and the capture
// sources' at scrape time into the Prometheus exposition; Exporter serves it on HTTP; MessageWriter
// writes the message log.
//
// Thread-safety: MetricsHub is configured before the threads start; render_text() and scrapes may
//   then run on any thread.
// Allocation: scrapes allocate.
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

#include "dnsmon/analytics.hpp"
#include "dnsmon/detect/engine.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon {

// What the collector needs to know about one capture source at scrape time.
struct SourceSnapshot {
  std::string name;
  bool up = false;
  std::uint64_t received = 0;        // frames handed over by libpcap
  std::uint64_t bytes = 0;           // their wire length
  std::uint64_t kernel_dropped = 0;  // pcap_stats ps_drop
  std::uint64_t if_dropped = 0;      // pcap_stats ps_ifdrop
  std::uint64_t ring_dropped = 0;    // the worker's ring was full
  std::uint64_t snaplen_cut = 0;     // frames longer than the snapshot length
  // A dnstap source's (capture.hpp's CaptureStats): data frames as message, ignored and
  // malformed; connections accepted, refused and open.
  bool dnstap = false;
  std::array<std::uint64_t, 3> dnstap_frames{};
  std::uint64_t dnstap_accepted = 0, dnstap_refused = 0, dnstap_open = 0;
};

struct RingSnapshot {
  std::uint64_t occupancy = 0;   // frames
  std::uint64_t capacity = 0;    // frames
  std::uint64_t used_bytes = 0;  // a ring is full when either runs out
  std::uint64_t capacity_bytes = 0;
};

struct OutputSnapshot {
  std::string name;              // "messages"
  std::uint64_t lost_lines = 0;  // lines not written because a write failed
};

struct BuildInfo {
  std::string version, ldns_version, libpcap_version;
};

class MetricsHub {
 public:
  // suffixes: the list load_public_suffix_list(options.analytics.public_suffix_list) returned,
  // used when the analytics are on; null loads it here (std::runtime_error if it cannot be read).
  explicit MetricsHub(BuildInfo build, MetricsOptions options = {}, SuffixList suffixes = nullptr);
  ~MetricsHub();
  MetricsHub(const MetricsHub&) = delete;
  MetricsHub& operator=(const MetricsHub&) = delete;

  // Startup only: a counter block for one worker; the reference stays valid for the hub's life.
  // parser, if given, is the worker's parser, whose reassembly tables are exported too; it must
  // outlive the hub's scrapes.
  WorkerCounters& add_worker(const Parser* parser = nullptr);
  // Startup only: which protocols are decoded (their series are exported even while zero).
  void set_protocols(bool mdns, bool llmnr);
  // Before start: whether the transport label takes dot and doh too (a dnstap source reports
  // DNS over TLS and HTTPS that it saw decrypted); otherwise only udp and tcp are exported.
  void set_decrypted_transports(bool on);
  // Startup only: called at every scrape to read the capture sources and rings.
  void set_source_reader(std::function<std::vector<SourceSnapshot>()> reader);
  void set_ring_reader(std::function<std::vector<RingSnapshot>()> reader);
  void set_output_reader(std::function<std::vector<OutputSnapshot>()> reader);
  // Startup only, with detection on: called at every scrape to read the detection engine.
  void set_detection_reader(std::function<detect::DetectionSnapshot()> reader);

  // A reload: the top-N series exported per table and window from the next scrape on (at most
  // the running analytics.top_capacity; the smaller of the two is applied and returned).
  std::uint32_t set_top_n(std::uint32_t n);
  // A reload: the server addresses of the leg label, which each worker takes before its next
  // message (the host's own addresses, read again).
  void set_server_addresses(ServerAddresses addresses);
  // A reload's result, counted in dnsmon_config_reloads_total; a success also sets
  // dnsmon_config_last_reload_success_timestamp_seconds to now (the start sets it first).
  void record_reload(bool success);

  // Where the public suffix list came from ("" with analytics off), for the startup log.
  [[nodiscard]] std::string public_suffix_list() const;

  // The SipHash key of the client pseudonyms (analytics.clients.pseudonymise), for detection's
  // organisation labels to match the analytics' client labels.
  [[nodiscard]] std::array<std::uint64_t, 2> pseudonym_key() const;

  // The whole exposition in Prometheus text format 0.0.4.
  [[nodiscard]] std::string render_text() const;
  // The same families in OpenMetrics text format 1.0.0, every sample stamped with timestamp_s
  // (Unix seconds), ending with "# EOF" (the metric snapshots of
  // detection.export.metrics_snapshot_dir).
  [[nodiscard]] std::string render_openmetrics(double timestamp_s) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  friend class Exporter;
};

// Serves MetricsHub on HTTP /metrics from one thread of its own
// (dnsmon/export/detail/http_server.hpp: timeouts, per-address and global connection limits). The
// expositions it serves end with the server's own families (dnsmon_http_*), which render_text()
// does not hold. Thread-safety: construct and destroy on one thread; serving happens on the
// exporter's thread.
class Exporter {
 public:
  // listen: "ADDR:PORT" with an IPv4 address or a bracketed IPv6 one ("[::1]:9917"); port 0 picks
  // a free one. Throws std::runtime_error when the address is malformed or cannot be bound.
  // The destructor stops serving at once, closing the connections still open.
  Exporter(MetricsHub& hub, const std::string& listen);
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  [[nodiscard]] std::uint16_t port() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Writes one JSON object per decoded message (JSON Lines) to a file descriptor, through a buffer
// of its own, so that every line is known to be written or lost. The first failed write (a full
// disk, a closed descriptor, a reader that went away: EPIPE, which needs SIGPIPE ignored) ends
// the log: that line and every later one are counted as lost, and error() tells why. Nothing is
// logged here: the caller reports error() once, from its own thread.
// Thread-safety: write() and flush() from one thread at a time (the caller serialises them);
//   error() and lost_lines() from any thread. Allocation: a reused line buffer.
class MessageWriter {
 public:
  static constexpr std::size_t kBufferBytes = std::size_t{64} << 10U;

  explicit MessageWriter(int fd);  // the descriptor stays the caller's to close
  ~MessageWriter();
  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;

  // latency_ns: the matched query's latency for a response (written as "latency" in seconds),
  // or -1 when none was matched ("latency": null). Queries carry no latency field.
  void write(const DnsMessage& m, std::int64_t latency_ns = -1);
  // Writes out what is buffered; false if any write has failed.
  bool flush() noexcept;

  // Any thread: dnsmon is stopping. From now on a write to a reader that does not read (a pipe,
  // a socket or a terminal with no room for kStopWaitMs) ends the log with ETIMEDOUT, its lines
  // counted as lost, instead of waiting for ever.
  void stop_waiting() noexcept { stop_waiting_.store(true, std::memory_order_relaxed); }

  // 0 while every write succeeded; then the errno of the first that failed.
  [[nodiscard]] int error() const noexcept { return error_.load(std::memory_order_acquire); }

  // Lines not written because a write failed.
  [[nodiscard]] std::uint64_t lost_lines() const noexcept { return lost_.get(); }

 private:
  static constexpr int kPollMs = 100;
  static constexpr int kStopWaitMs = 1000;

  void write_buffer() noexcept;
  bool wait_writable() noexcept;  // false: stop_waiting() and no room for kStopWaitMs

  int fd_;
  bool may_block_ = false;
  std::atomic<bool> stop_waiting_{false};
  std::string line_;
  std::string buffer_;  // whole lines not yet written
  std::atomic<int> error_{0};
  SingleWriterCounter lost_;
};

}  // namespace dnsmon
