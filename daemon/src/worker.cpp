#include "worker.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include "dnsmon/common/message_record.hpp"

namespace dnsmon {

Worker::Worker(std::vector<FrameRing*> rings, Parser& parser, WorkerCounters& counters,
               MessageWriter* writer, std::mutex* shared_writer, detect::WorkerPort* detection,
               bool dedup)
    : counters_(counters), parser_(parser), rings_(std::move(rings)) {
  if (dedup) {
    dedup_.emplace();
  }
  sink_.counters = &counters_;
  sink_.detection = detection;
  if (detection != nullptr) {
    counters_.set_timeout_sink(detection);  // timeouts become detection events
  }
  sink_.writer = writer;
  sink_.shared = shared_writer;
}

void Worker::Sink::on_message(const DnsMessage& m) {
  const std::int64_t latency = m.malformed_question ? -1 : counters->record_message(m);
  if (detection != nullptr) {
    // Queries, with the matcher's tag of this one (the port fills it, for its timeout) and the
    // length of the registrable domain the analytics found; matched responses, with their
    // query's tag (its registrable domain).
    const bool counted_query = !m.qr && !m.malformed_question && m.protocol == Protocol::Dns;
    detail::QueryTag* tag = nullptr;
    std::size_t domain_length = 0;
    if (m.qr) {
      tag = latency >= 0 ? counters->matched_query_tag() : nullptr;
    } else if (counted_query) {
      tag = counters->last_query_tag();
      domain_length = counters->last_query_domain_length();
    }
    detection->on_message(m, latency, tag, domain_length);
  }
  if (writer == nullptr) {
    return;
  }
  if (shared != nullptr) {
    const std::lock_guard lock(*shared);
    writer->write(m, latency);
  } else {
    writer->write(m, latency);
  }
}

bool Worker::run_once() noexcept {
  constexpr int kBatch = 64;  // frames taken from one ring before looking at the next
  bool any = false;
  for (FrameRing* ring : rings_) {
    int n = 0;
    for (; n < kBatch && ring->front(frame_); ++n) {
      if (is_duplicate()) {
        ring->pop();
        continue;
      }
      const ParseStatus status = parser_.parse(frame_, sink_);
      counters_.record_frame(frame_.header.wire_len, status);
      ring->pop();
    }
    if (n != 0) {
      any = true;
      frames_ += static_cast<std::uint64_t>(n);
      ring->release_producer();
    }
  }
  return any;
}

bool Worker::is_duplicate() noexcept {
  if (!dedup_ || frame_.header.link_type == record::kLinkType) {
    return false;  // decoded messages from a message source are not frames a tap repeats
  }
  const auto r = dedup_->check(frame_.header.link_type, frame_.bytes, frame_.header.ts_ns);
  if (r.evicted) {
    counters_.duplicates_evicted_.add();
  }
  if (r.duplicate) {
    counters_.duplicates_dropped_.add();
  }
  return r.duplicate;
}

bool Worker::frames_waiting() noexcept {
  return std::any_of(rings_.begin(), rings_.end(), [&](FrameRing* r) { return r->front(frame_); });
}

void Worker::finish() noexcept {
  parser_.finish(sink_);
  counters_.finish();
}

void Worker::flush_messages() const {
  if (sink_.writer == nullptr) {
    return;
  }
  if (sink_.shared != nullptr) {
    const std::lock_guard lock(*sink_.shared);
    sink_.writer->flush();
  } else {
    sink_.writer->flush();
  }
}

void Worker::run(Doorbell& bell, const std::atomic<bool>& producers_done, bool live) {
  // Live capture only: while no frame arrives, packet time follows the wall clock, so the windows
  // keep sliding and unanswered queries time out. Not further than the producers vouch for
  // (FrameRing::quiet_at(): the time they last found the kernel holding nothing for them):
  // after a stall the frames the kernel held carry their own, older times, and a clock that ran
  // ahead of them would time out the queries they still answer. A replay's clock is its packets'.
  constexpr auto kTickPeriod = std::chrono::milliseconds(250);
  auto next_tick = std::chrono::steady_clock::now();
  for (;;) {
    if (run_once()) {
      continue;
    }
    // pairs with the release store of whoever ends the input: every push happened before it
    if (producers_done.load(std::memory_order_acquire)) {
      if (!frames_waiting()) {
        finish();
        return;
      }
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (live && now >= next_tick) {
      next_tick = now + kTickPeriod;
      std::int64_t quiet = std::numeric_limits<std::int64_t>::max();
      for (const FrameRing* ring : rings_) {
        quiet = std::min(quiet, ring->quiet_at());
      }
      // Read before the look at the rings: a frame pushed before a producer's quiet time is seen.
      if (quiet > 0 && quiet != std::numeric_limits<std::int64_t>::max() && !frames_waiting()) {
        counters_.tick(quiet);
      }
      flush_messages();  // live: the message log's buffer reaches its output at least once a tick
    }
    // Idle: sleep until a producer rings (a batch of frames is waiting, or its input paused), the
    // input ends, or the next tick is due.
    const std::uint32_t ticket = bell.prepare_sleep();
    if (producers_done.load(std::memory_order_acquire) || frames_waiting()) {
      bell.cancel_sleep();
      continue;
    }
    bell.sleep(ticket, live ? std::chrono::nanoseconds(next_tick - now)
                            : std::chrono::nanoseconds(std::chrono::milliseconds(100)));
  }
}

}  // namespace dnsmon
