// A worker: takes frames from its rings (one per source that feeds it), decodes them with its own
// parser and hands every message to its sink, which counts it in the worker's counters and writes
// it to the message log. What fills the rings (a live interface, a file, decoded messages) is the
// sources' business: a worker sees only frames with their link type.
//
// Thread-safety: a Worker is used by one thread: its own (run()), or the reader's in an inline
//   replay (run_once()/drain()). Several workers may share one MessageWriter through a mutex.
// Allocation: at construction; none per frame.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <vector>

#include "dnsmon/dedup.hpp"
#include "dnsmon/detect/engine.hpp"
#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

namespace dnsmon {

class Worker {
 public:
  // shared_writer: set when several workers write one message log (may be null, as may writer).
  // detection: the worker's port into the detection engine (null with detection off).
  // dedup: drop frames that repeat one seen moments before (DuplicateFilter), before parsing.
  Worker(std::vector<FrameRing*> rings, Parser& parser, WorkerCounters& counters,
         MessageWriter* writer, std::mutex* shared_writer, detect::WorkerPort* detection = nullptr,
         bool dedup = true);

  // Takes up to a batch of frames from each ring; whether there were any.
  bool run_once() noexcept;

  // Empties every ring.
  void drain() noexcept {
    while (run_once()) {
    }
  }

  [[nodiscard]] bool frames_waiting() noexcept;

  // At the end of the input: the parser delivers what it still holds (DNS over TCP messages behind
  // a hole), then the counters finish.
  void finish() noexcept;

  // The worker thread: decodes frames as they come, sleeping on bell while there are none, until
  // producers_done is set and every ring is empty; then finishes its counters. Live, while idle
  // it also advances the counters' packet time to the time its producers last found the kernel
  // holding nothing for them (FrameRing::quiet_at()), and flushes the message log, every 250 ms.
  void run(Doorbell& bell, const std::atomic<bool>& producers_done, bool live);

  WorkerCounters& counters() noexcept { return counters_; }

  // Frames taken from the rings so far (this worker's thread, or after it ended).
  [[nodiscard]] std::uint64_t frames() const noexcept { return frames_; }

 private:
  // Counts each message, hands it to detection, and logs it (header-only messages too, marked
  // malformed).
  struct Sink final : MessageSink {
    WorkerCounters* counters = nullptr;
    detect::WorkerPort* detection = nullptr;
    MessageWriter* writer = nullptr;
    std::mutex* shared = nullptr;  // set when several workers write one output

    void on_message(const DnsMessage& m) override;
  };

  void flush_messages() const;
  // Whether frame_ repeats one seen moments before (counted, to be dropped unparsed).
  bool is_duplicate() noexcept;

  WorkerCounters& counters_;
  Parser& parser_;
  std::vector<FrameRing*> rings_;  // this worker's ring from every source
  Sink sink_;
  FrameView frame_;
  std::uint64_t frames_ = 0;
  std::optional<DuplicateFilter> dedup_;  // empty: capture.dedup off
};

}  // namespace dnsmon
