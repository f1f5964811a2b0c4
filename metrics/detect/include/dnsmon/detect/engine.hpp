// The detection engine (docs/detection.md): each worker normalises its DNS messages into lookup
// events (normalize.hpp) through its WorkerPort, and hands them to the domain-sharded detection
// state over lock-free SPSC rings, one per worker and shard. Each shard runs on its own thread,
// owns the domains whose registrable-domain hash picks it, and follows the one logical clock of
// the engine (LogicalClock). Detector events go to the event log (JSON Lines, detection spec
// 4.10).
//
// Hand-off policy: live, a full ring drops the event and counts it (dnsmon_detection_events_
// dropped_total) so the packet path never waits; a replay waits for room, so that a replay's
// detections do not depend on thread timing.
//
// State across restarts (checkpoint.hpp, detection.state_file): the constructor loads the state
// file, if any, before any shard runs (all or nothing; restore_status() says what happened); live,
// a checkpoint thread writes it every kCheckpointInterval, pausing the shards at a safe point
// between events while it writes (the rings drop and count meanwhile); finish() writes it after
// the shards joined. The end of input closes the open logical day after that checkpoint, so the
// file holds the day still open and the next run continues it; live with a state file, the stop
// leaves the day open (a restart is not the end of a day).
//
// Hourly snapshots (on_logical_hour(), detection.export.metrics_snapshot_dir): a thread of the
// engine calls the writer at every logical hour boundary. A replay paces to it: a shard about to
// take the first event at or after the next boundary waits until the writer has been called for
// that boundary, so no hour is left out and the writer sees every event before the boundary that
// reached that shard (other shards may still be finishing theirs). Live, the shards never wait:
// the thread looks at the logical clock every kHourPollInterval and calls the writer for the
// latest boundary passed (hours that pass between two looks are left out). finish() calls it
// once more, on the control thread, for the last logical time reached.
//
// Reload (reconfigure()): the options a running engine can change (the detectors' thresholds
// and weights, the vantage, who a querier is and the org map, the normalisation, the export's
// top N, hold, watchlist and allowlists) are published as one immutable Settings snapshot with a
// new generation number. Each worker compares the generation with its own before a message,
// each shard before an event (one atomic load); on a change it takes the snapshot under a mutex
// (once per reload) and its normaliser or domain tables switch to it between two events, keeping
// every entry and count. An event a worker makes after reconfigure() returned is normalised and
// detected with the new settings; one made just before may be detected with them. The options that
// size or place state stay the constructor's for the engine's life: detection.memory (the tables
// are allocated at start), detection.time (the logical clock, which the state file checks),
// state_file, events_file, enabled and the snapshot directory.
//
// Thread-safety: construct, start(), checkpoint(), reconfigure() and finish() on the control
//   thread; port(i) is used by worker i only; snapshot() from any thread (relaxed reads of
//   single-writer counters).
// Allocation: construction, start() and reconfigure() (the workers and shards take their copy
//   of a new snapshot once); none per event on the worker or shard paths, except the event log's
//   lines, written by the shard threads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dnsmon/analytics/detail/sketches.hpp"
#include "dnsmon/common/counter.hpp"
#include "dnsmon/common/published.hpp"
#include "dnsmon/detect.hpp"
#include "dnsmon/detect/aggregate.hpp"
#include "dnsmon/detect/checkpoint.hpp"
#include "dnsmon/detect/event.hpp"
#include "dnsmon/detect/normalize.hpp"
#include "dnsmon/detect/publish.hpp"
#include "dnsmon/detect/state_file.hpp"
#include "dnsmon/detect/tables.hpp"
#include "dnsmon/domains.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

namespace dnsmon::detect {

inline constexpr std::int64_t kDayNs = 86'400'000'000'000;

// Logical time (detection spec 4.0): t_logical = origin + (t_packet - origin) x compression.
// The origin is configured, or the packet time of the first event any shard sees (set once).
// Logical days are UTC days of logical time.
class LogicalClock {
 public:
  static constexpr std::int64_t kUnset = INT64_MIN;

  LogicalClock(double compression, std::optional<std::int64_t> origin_ns)
      : compression_(compression), origin_(origin_ns.value_or(kUnset)) {}

  // Logical ns since the Unix epoch of a packet time; sets the origin on the first call when it
  // is the first packet's.
  [[nodiscard]] std::int64_t logical(std::int64_t packet_ns) noexcept {
    std::int64_t origin = origin_.load(std::memory_order_acquire);
    if (origin == kUnset) {
      if (origin_.compare_exchange_strong(origin, packet_ns, std::memory_order_acq_rel)) {
        origin = packet_ns;
      }
    }
    const double offset = static_cast<double>(packet_ns - origin) * compression_;
    return origin + static_cast<std::int64_t>(offset);
  }

  // The logical day number (days since 1970-01-01) of a logical time.
  [[nodiscard]] static std::int64_t day(std::int64_t logical_ns) noexcept {
    return logical_ns >= 0 ? logical_ns / kDayNs : (logical_ns - kDayNs + 1) / kDayNs;
  }

  [[nodiscard]] std::int64_t origin() const noexcept {
    return origin_.load(std::memory_order_acquire);
  }

 private:
  double compression_;
  std::atomic<std::int64_t> origin_;
};

// "2016-04-04T00:00:00Z" (whole seconds) for ns since the Unix epoch.
std::string format_rfc3339(std::int64_t ns);

// What the exporter reads (sums over workers and shards).
struct DetectionSnapshot {
  std::uint64_t queries = 0;    // query events made
  std::uint64_t lookups = 0;    // of which first in their de-duplication window
  std::uint64_t responses = 0;  // matched-response events made
  std::uint64_t timeouts = 0;   // timeout events made
  std::uint64_t dropped = 0;    // events a full ring dropped
  // Detector events by detector and severity label (severity_label(); the last is suppressed).
  std::array<std::array<std::uint64_t, kSeverityLabels>, kDetectors> detector_events{};
  // Domains each detector flagged at the last day boundary (the base rate and its kin).
  std::array<std::uint64_t, kDetectors> flagged{};
  std::uint64_t log_lines_lost = 0;  // event log lines not written
  double logical_time_s = 0;         // the latest logical time a shard reached
  std::uint64_t ring_bytes = 0;      // memory of the hand-off rings
  // The domain tables, summed over the shards: [base, candidate, watch].
  std::array<std::uint64_t, 3> entries{}, capacity{}, evictions{}, rejected{};
  std::uint64_t seen_filter_entries = 0, seen_filter_capacity = 0;
  // The recently-dead map's addresses (4.7, 4.8) and its capacity.
  std::uint64_t recently_dead_entries = 0, recently_dead_capacity = 0;
  // Addresses the recently-dead map let go (expired or evicted), and aggregate_anomaly's shard
  // counts that came after their hour was evaluated.
  std::uint64_t recently_dead_dropped = 0, aggregate_late = 0;
  // Bytes of the base, candidate, watch, seen-filter and doorkeeper tables.
  std::array<std::uint64_t, 5> table_bytes{};
  // The base rate at the last day boundary (detection spec 4.1).
  std::uint64_t flagged_querier_concentration = 0, flagged_querier_concentration_any = 0;
  double population14 = 0;  // distinct clients of the last 14 logical days, at that boundary
  // aggregate_anomaly (4.4): whether each series (qps, nxdomain_ratio, servfail_ratio) is in alarm.
  std::array<bool, AggregateMonitor::kSeries> aggregate_anomaly{};
  // The per-domain series (4.10): each detector's top N domains by score over all shards, the
  // watched ones, and those held for export.hold_seconds after they dropped out; at most
  // Engine::kMaxExportedDomains.
  std::vector<DomainSeries> domains;
  // Flagged domains of each detector left out of `domains` (dnsmon_export_truncated_domains).
  std::array<std::uint64_t, kDetectors> truncated{};
};

class Engine;

// A worker's side of the engine: normalises its messages and pushes events to the shards. As the
// matcher's TimeoutSink (WorkerCounters::set_timeout_sink()) it also makes the timeout events.
class WorkerPort final : public detail::TimeoutSink {
 public:
  // A message the worker decoded; latency_ns >= 0 for a response matched to its query. tag: for a
  // query, its entry's tag in the worker's matcher (WorkerCounters::last_query_tag()), which the
  // normaliser fills so that a timeout can be reported; for a matched response, the tag of its
  // query (WorkerCounters::matched_query_tag()), whose registrable domain the response's event
  // takes instead of finding it again (nullptr: none). domain_length: for a query, the length of
  // its registrable domain as the worker's analytics found it with the same public suffix list
  // (WorkerCounters::last_query_domain_length(); 0: not known).
  void on_message(const DnsMessage& m, std::int64_t latency_ns, detail::QueryTag* tag = nullptr,
                  std::size_t domain_length = 0) noexcept;

  // A query of this worker's matcher got no response: a timeout event, when its tag was filled.
  void on_timeout(const detail::TimedOutQuery& query) noexcept override;

  WorkerPort(Engine& engine, std::size_t index);
  ~WorkerPort() = default;
  WorkerPort(const WorkerPort&) = delete;
  WorkerPort& operator=(const WorkerPort&) = delete;
  WorkerPort(WorkerPort&&) = delete;
  WorkerPort& operator=(WorkerPort&&) = delete;

 private:
  void push(const LookupEvent& ev) noexcept;

  // A reload published new settings: the normaliser takes them (not on the per-message path).
  void adopt_settings() noexcept;

  Engine& engine_;
  std::uint64_t generation_ = 0;  // of the settings the normaliser uses
  Normalizer normalizer_;
  std::vector<SpscRing<LookupEvent>*> rings_;  // one per shard
  std::vector<Doorbell*> bells_;
  LookupEvent scratch_{};
  friend class Engine;
  SingleWriterCounter queries_, lookups_, responses_, timeouts_, dropped_;  // the worker's
};

// One per process: its members stay in the order they are initialised in, whatever padding that
// leaves.
class Engine {  // NOLINT(clang-analyzer-optin.performance.Padding)
 public:
  static constexpr std::size_t kRingEvents = 4096;  // per worker and shard (2 MiB)
  // Events waiting in a ring before its worker wakes a sleeping shard (which otherwise wakes
  // every kShardSleep to take what came).
  static constexpr std::size_t kWakeBacklog = 1024;
  static constexpr std::chrono::milliseconds kShardSleep{20};
  // The per-domain series' domains at most: 8 detectors x 10 + 50 watched (detection spec 4.10).
  static constexpr std::size_t kMaxExportedDomains = 130;
  static constexpr std::size_t kMaxWatchedExported = 50;

  // suffixes: the public suffix list the analytics use. events_log: where detector events go
  // (null: none); it stays the caller's to close. live: whether a full ring drops (live) or waits.
  Engine(const DetectOptions& options, std::size_t workers, std::size_t shards,
         std::shared_ptr<const detail::PublicSuffixList> suffixes, std::FILE* events_log, bool live,
         std::uint64_t seed = 0);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  WorkerPort& port(std::size_t worker) { return *ports_[worker]; }

  [[nodiscard]] std::size_t shards() const noexcept { return shards_.size(); }

  // Called on the shard threads with every finding written to the event log (e.g. to log the
  // serious ones). Set before start().
  void on_finding(std::function<void(const Finding&)> sink) { on_finding_ = std::move(sink); }

  // The event log's file can change under the writer's lock: `reopen(current, rotate)` returns
  // the file to write to from now on (closing `current` itself), or null to keep writing to
  // `current`. It is called with rotate = true once the log has grown by max_bytes (0: never)
  // since it was opened, and with rotate = false by reopen_log() (SIGHUP, for logrotate). Set
  // before start().
  using LogReopen = std::function<std::FILE*(std::FILE* current, bool rotate)>;

  void set_log_reopen(LogReopen reopen, std::uint64_t max_bytes) {
    reopen_ = std::move(reopen);
    log_max_bytes_ = max_bytes;
  }

  void reopen_log();

  // Called at every logical hour boundary with its logical ns since the Unix epoch, and by
  // finish() with the last logical time reached (when later than the last boundary written); the
  // times never decrease. Returning false stops the calls (and a replay's pacing) for good. Calls
  // come from the engine's snapshot thread, the last from finish()'s, never two at a time. Set
  // before start().
  using HourWriter = std::function<bool(std::int64_t logical_ns)>;

  void on_logical_hour(HourWriter writer) { hour_writer_ = std::move(writer); }

  static constexpr auto kHourPollInterval = std::chrono::milliseconds(100);

  // Starts the shard threads.
  void start();
  // After every worker has finished: the shards take every event left in the rings, then stop.
  void finish();

  [[nodiscard]] DetectionSnapshot snapshot() const;

  // The organisation resolver of the newest settings (for labels in the event log and tests).
  [[nodiscard]] std::shared_ptr<const OrgResolver> orgs() const;

  // The options in use: the constructor's, with the keys the last reconfigure() applied.
  [[nodiscard]] DetectOptions options() const { return settings()->options; }

  // What a reconfigure() did with the org map.
  struct Reconfigured {
    bool org_map_changed = false;     // the file's organisations differ from the running ones
    std::size_t org_map_entries = 0;  // prefixes in the map now
  };

  // A reload: publishes the options of `next` that a running engine can change (see the top of
  // this file); the others keep the values the engine started with, whatever `next` says. Reads
  // clients.org_map_file again (also when its path did not change, so an edited file is taken).
  // All or nothing: throws std::runtime_error ("FILE:LINE: what is wrong" for the org map) and
  // changes nothing when the new settings cannot be built.
  Reconfigured reconfigure(const DetectOptions& next);

  // How many times reconfigure() published new settings.
  [[nodiscard]] std::uint64_t settings_generation() const noexcept {
    return settings_.generation();
  }

  [[nodiscard]] LogicalClock& clock() noexcept { return clock_; }

  // Whether the event log failed (then the lines after the failure are counted as lost).
  [[nodiscard]] bool log_failed() const noexcept {
    return log_failed_.load(std::memory_order_relaxed);
  }

  // What the constructor did with detection.state_file.
  [[nodiscard]] const RestoreStatus& restore_status() const noexcept { return restore_; }

  // Whether finish() could not write the state file.
  [[nodiscard]] bool final_checkpoint_failed() const noexcept { return final_checkpoint_failed_; }

  // Where the checkpoints' outcomes are reported (the periodic ones come from the checkpoint
  // thread), and the producer written in the file's header ("dnsmon 1.2.3"). Before start().
  using CheckpointLog = std::function<void(bool failed, const std::string& line)>;
  void set_checkpoint_log(CheckpointLog log, std::string producer);

  // Writes the state file now (detection.state_file; InvalidArgument when there is none). With
  // the shards running, pauses them at a safe point for the time of the write.
  StateFileStatus checkpoint();

 private:
  struct Shard;
  struct PendingRestore;
  friend class WorkerPort;

  // The options a reload can change, and the organisations they make: immutable once published.
  struct Settings {
    DetectOptions options;
    std::shared_ptr<const OrgResolver> orgs;
  };

  // The newest settings.
  [[nodiscard]] std::shared_ptr<const Settings> settings() const { return settings_.get(); }

  // A shard takes the newest settings between two batches, or after it joined.
  void adopt_settings(Shard& shard);

  // checkpoint.cpp. read_checkpoint: validates the state file against this configuration (all of
  // it, before anything is used); null, with `status` saying why, when there is nothing to load.
  static std::unique_ptr<PendingRestore> read_checkpoint(const DetectOptions& options,
                                                         std::size_t shards, RestoreStatus& status);
  // Copies a validated checkpoint into the constructed shards (cannot fail).
  void apply_checkpoint(PendingRestore& pending);
  // Writes the state file; the shards are joined or parked.
  StateFileStatus write_checkpoint(bool clean);
  // The shards' side of a pause: wait at a safe point until resume.
  void park();
  void pause_shards();
  void resume_shards();
  void run_checkpoints(const std::stop_token& stop);

  void run_shard(Shard& shard);
  // The replay's pacing at an hour boundary (hourly snapshots on): waits while `logical` is at or
  // after the next boundary not yet written.
  void gate_hour(std::int64_t logical);
  void run_hourly(const std::stop_token& stop);
  // The latest logical time a shard reached; 0 before any event.
  [[nodiscard]] std::int64_t latest_logical_ns() const noexcept;
  void process(Shard& shard, const LookupEvent& ev);
  // The logical day `day` ended for this shard: the population and the tables' day evaluation.
  void end_of_day(Shard& shard, std::int64_t day);
  // The shard's events crossed into logical hour `hour`: its open hour goes to aggregate_anomaly.
  void close_hour(Shard& shard, std::int64_t hour);
  // aggregate_anomaly's alarms entered and cleared, as findings of the shard, reported.
  void report_transitions(Shard& shard, std::vector<AggregateMonitor::Transition>& transitions);
  // Counts the shard's new findings and writes their event log lines.
  void report(Shard& shard);
  void write_line(const std::string& line);
  // The per-domain series of a snapshot: chosen from the shards' publications, with the hold.
  void select_domains(DetectionSnapshot& s) const;

  DetectOptions options_;
  bool live_;
  RestoreStatus restore_;
  std::unique_ptr<PendingRestore> pending_;  // during construction only
  std::uint64_t seed_;
  std::shared_ptr<const detail::PublicSuffixList> suffixes_;
  // The live settings: replaced whole by reconfigure(); a worker or shard whose generation
  // differs takes the new one.
  Published<std::shared_ptr<const Settings>> settings_;
  std::unique_ptr<SharedState> shared_;
  LogicalClock clock_;
  std::FILE* log_;
  std::function<void(const Finding&)> on_finding_;
  std::mutex log_mutex_;
  LogReopen reopen_;
  std::uint64_t log_max_bytes_ = 0;
  std::uint64_t log_bytes_ = 0;  // written since the file was opened (under log_mutex_)
  std::atomic<bool> log_failed_{false};
  std::atomic<std::uint64_t> log_lost_{0};
  // Distinct clients per logical day, merged from every shard's day at its boundary.
  std::mutex population_mutex_;
  std::vector<std::unique_ptr<detail::HyperLogLog>> population_;  // day d at d % 14
  std::array<std::int64_t, 14> population_day_{};
  std::atomic<double> population14_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::unique_ptr<WorkerPort>> ports_;
  std::atomic<bool> done_{false};
  // Checkpoints: the shards park while pause_ is set; the checkpoint thread (live) wakes every
  // kCheckpointInterval.
  std::atomic<bool> pause_{false};
  std::mutex pause_mutex_;
  std::condition_variable pause_cv_;
  std::size_t parked_ = 0;
  std::mutex checkpoint_mutex_;  // one checkpoint at a time
  CheckpointLog checkpoint_log_;
  std::string producer_ = "dnsmon";
  bool final_checkpoint_failed_ = false;
  std::mutex checkpointer_mutex_;
  std::condition_variable_any checkpointer_cv_;
  std::jthread checkpointer_;
  // Hourly snapshots: the next boundary to write (LogicalClock::kUnset before the first event);
  // hour_gate_ while a replay's shards wait at it; hour_wanted_ when one waits.
  HourWriter hour_writer_;
  std::atomic<bool> hour_gate_{false};
  std::atomic<std::int64_t> next_hour_{LogicalClock::kUnset};
  bool hour_wanted_ = false;
  bool hour_failed_ = false;  // the writer returned false
  std::mutex hour_mutex_;
  std::condition_variable_any hour_cv_;
  std::jthread hourly_;
  std::vector<std::jthread> threads_;

  // Domains that left the exported set, kept until their hold ends (wall clock).
  struct Held {
    DomainSeries series;
    std::chrono::steady_clock::time_point until;
  };

  mutable std::mutex held_mutex_;
  mutable std::map<std::string, Held> held_;
};

}  // namespace dnsmon::detect
