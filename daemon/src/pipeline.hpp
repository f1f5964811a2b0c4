// The running pipeline: sources (capture threads) → rings → workers (worker.hpp) → counters.
//
// Every ring has exactly one producer (a source's thread) and one consumer (a worker): a source
// that feeds several workers has a ring to each.
//
// A replay with one worker runs its reader and its worker in one thread, through the same ring:
// the reader pushes a batch of frames and the worker takes them at once, so the frames stay in
// one core's cache and no thread sleeps or wakes. That costs a sixth less CPU per packet than two
// threads (docs/performance.md), and gives up the overlap of reading and parsing: wall time is
// then CPU time. Several workers, and live capture, get a thread each.
//
// Thread-safety: construct, start() and the stop/join calls on the control thread. Capture threads
//   report their end by calling the on_source_end callback (from their own thread).
// Allocation: at construction; none per frame.
#pragma once

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "dnsmon/capture.hpp"
#include "dnsmon/config.hpp"
#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

#include "worker.hpp"

namespace dnsmon {

class Pipeline {
 public:
  using SourceEnd = std::function<void(std::size_t source, const std::string& error)>;

  // Opens every source (throws CaptureError) and allocates the rings; starts nothing. A table
  // that cannot be allocated throws std::runtime_error naming the configuration keys that size
  // it. messages_fd: where the message log goes (-1 for none); it stays the caller's to close.
  Pipeline(const Config& config, MetricsHub& hub, std::span<const std::byte> demo_capture,
           int messages_fd = -1);
  // The same with sources opened by the caller (config's capture inputs are then ignored): each
  // feeds every worker.
  Pipeline(const Config& config, MetricsHub& hub, std::vector<std::unique_ptr<Source>> sources,
           int messages_fd = -1);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Before start(): the workers hand their messages to this detection engine, which must outlive
  // the pipeline's workers.
  void attach_detection(detect::Engine& engine) noexcept { detection_ = &engine; }

  // Starts the workers, then the capture threads.
  void start(const SourceEnd& on_source_end);

  // Asks every capture thread to stop; they end soon (live reads time out after 50 ms).
  void stop_capture();
  // After every source has ended: lets the workers drain their rings, then joins them.
  void drain_and_join();

  [[nodiscard]] std::size_t source_count() const noexcept { return sources_.size(); }

  [[nodiscard]] const Source& source(std::size_t i) const { return *sources_[i]; }

  [[nodiscard]] bool is_live() const noexcept { return live_; }

  [[nodiscard]] std::uint64_t frames_processed() const noexcept;

  // After drain_and_join(): the frames each worker took from its rings.
  [[nodiscard]] std::vector<std::uint64_t> frames_per_worker() const;

  // The message log, or null without one: its error() and lost_lines() may be read any time.
  [[nodiscard]] const MessageWriter* messages() const noexcept { return messages_.get(); }

 private:
  Pipeline(Config config, MetricsHub& hub, int messages_fd);
  void add_workers(MetricsHub& hub);
  // Allocates the rings of the sources opened so far and tells the hub how to read them.
  void add_rings(MetricsHub& hub);
  void worker_loop(std::size_t index);

  [[nodiscard]] bool inline_replay() const noexcept {
    return !live_ && workers_count_ == 1 && sources_.size() == 1;
  }

  const Config config_;
  bool live_ = false;
  std::size_t workers_count_ = 1;
  std::vector<std::unique_ptr<FrameRing>> rings_;
  std::vector<std::unique_ptr<Doorbell>>
      doorbells_;  // one per worker, rung by its rings' producers
  static constexpr std::size_t kEveryWorker = ~std::size_t{0};
  std::vector<std::size_t> source_worker_;  // per source: the one worker it feeds, or every one
  std::vector<std::vector<FrameRing*>> source_rings_;  // per source: its ring to each worker fed
  std::vector<std::vector<FrameRing*>> worker_rings_;  // per worker: its ring from each source
  std::vector<std::size_t> ring_worker_;               // per ring: the worker that reads it
  std::vector<WorkerCounters*> counters_;
  std::vector<std::unique_ptr<Parser>> parsers_;  // one per worker, used only by that worker
  std::vector<std::unique_ptr<Source>> sources_;
  std::unique_ptr<MessageWriter> messages_;
  detect::Engine* detection_ = nullptr;
  std::mutex messages_mutex_;  // taken per message only when several workers share the output
  std::atomic<bool> producers_done_{false};
  // Threads last: they are joined before the objects they use are destroyed.
  std::vector<std::unique_ptr<Worker>> worker_objects_;
  std::vector<std::jthread> workers_;
  std::vector<std::jthread> captures_;
};

}  // namespace dnsmon
