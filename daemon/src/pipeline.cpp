#include "pipeline.hpp"

#include <chrono>

namespace dnsmon {

Pipeline::Pipeline(const Config& config, MetricsHub& hub, std::span<const std::byte> demo_capture)
    : config_(config) {
  const auto& cap = config_.capture;
  workers_count_ = config_.daemon.workers;
  for (std::size_t i = 0; i < workers_count_; ++i) {
    parsers_.push_back(std::make_unique<Parser>(config_.parser));
    counters_.push_back(&hub.add_worker(parsers_.back().get()));
  }
  hub.set_protocols(config_.parser.mdns, config_.parser.llmnr);
  if (!cap.interfaces.empty()) {
    live_ = true;
    for (const auto& iface : cap.interfaces) {
      sources_.push_back(
          PacketSource::open_live(iface, cap, static_cast<std::uint16_t>(sources_.size())));
    }
  } else if (!cap.files.empty()) {
    sources_.push_back(PacketSource::open_files(cap.files, cap, 0));
  } else {
    sources_.push_back(PacketSource::open_memory(demo_capture, "demo", cap, 0));
  }
  for (std::size_t i = 0; i < sources_.size() * workers_count_; ++i) {
    // A replay keeps whole frames (segmentation offload leaves TCP segments of up to 64 KiB in
    // captures) in fewer, larger slots: it waits for the ring instead of dropping, so depth
    // matters less than for live capture.
    const bool whole_frames = !live_ && !cap.snaplen_given;
    rings_.push_back(std::make_unique<FrameRing>(
        whole_frames ? std::min<std::uint32_t>(cap.ring_slots, 1024) : cap.ring_slots,
        whole_frames ? 65535 : cap.snaplen));
    ring_ptrs_.push_back(rings_.back().get());
  }

  hub.set_source_reader([this] {
    std::vector<SourceSnapshot> out;
    for (const auto& s : sources_) {
      const auto& st = s->stats();
      SourceSnapshot snap;
      snap.name = s->name();
      snap.up = st.up.load(std::memory_order_relaxed);
      snap.received = st.received.get();
      snap.bytes = st.bytes.get();
      snap.kernel_dropped = st.kernel_dropped.get();
      snap.if_dropped = st.if_dropped.get();
      snap.ring_dropped = st.ring_dropped.get();
      snap.snaplen_cut = st.snaplen_cut.get();
      out.push_back(std::move(snap));
    }
    return out;
  });
  hub.set_ring_reader([this] {
    std::vector<RingSnapshot> out(workers_count_);
    for (std::size_t i = 0; i < rings_.size(); ++i) {
      out[i % workers_count_].occupancy += rings_[i]->size_approx();
      out[i % workers_count_].capacity += rings_[i]->capacity();
    }
    return out;
  });
}

Pipeline::~Pipeline() {
  stop_capture();
  captures_.clear();  // joins
  producers_done_.store(true, std::memory_order_release);
  workers_.clear();
}

void Pipeline::start(std::FILE* messages, SourceEnd on_source_end) {
  if (messages != nullptr) {
    messages_ = std::make_unique<MessageWriter>(messages);
  }
  for (std::size_t i = 0; i < workers_count_; ++i) {
    workers_.emplace_back([this, i](std::stop_token st) { worker_loop(st, i); });
  }
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    captures_.emplace_back([this, i, on_source_end](std::stop_token st) {
      const std::string error = sources_[i]->run(st, source_rings(i));
      on_source_end(i, error);
    });
  }
}

void Pipeline::stop_capture() {
  for (auto& t : captures_) {
    t.request_stop();
  }
}

void Pipeline::drain_and_join() {
  for (auto& t : captures_) {
    if (t.joinable()) {
      t.join();
    }
  }
  producers_done_.store(true, std::memory_order_release);  // pairs with acquire in worker_loop()
  for (auto& t : workers_) {
    if (t.joinable()) {
      t.join();
    }
  }
  if (messages_) {
    messages_->flush();
  }
}

std::uint64_t Pipeline::frames_processed() const noexcept {
  std::uint64_t n = 0;
  for (const auto* c : counters_) {
    for (const auto& p : c->packets_) {
      n += p.get();
    }
  }
  return n;
}

void Pipeline::worker_loop(std::stop_token /*stop*/, std::size_t index) {
  std::vector<FrameRing*> rings;  // this worker's ring from every source
  for (std::size_t s = 0; s < sources_.size(); ++s) {
    rings.push_back(ring_ptrs_[s * workers_count_ + index]);
  }

  // Counts each message, and logs it (header-only messages too, marked malformed).
  struct Sink final : MessageSink {
    WorkerCounters* counters = nullptr;
    MessageWriter* writer = nullptr;
    std::mutex* shared = nullptr;  // set when several workers write one output

    void on_message(const DnsMessage& m) override {
      const std::int64_t latency = m.malformed_question ? -1 : counters->record_message(m);
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
  };

  Sink sink;
  sink.counters = counters_[index];
  sink.writer = messages_.get();
  sink.shared = workers_count_ > 1 ? &messages_mutex_ : nullptr;
  WorkerCounters& counters = *counters_[index];
  Parser& parser = *parsers_[index];
  FrameView frame;
  constexpr int kBatch = 64;  // frames taken from one ring before looking at the next
  unsigned idle = 0;
  // Live capture only: while no frame arrives, packet time is the wall clock, so the windows
  // keep sliding and unanswered queries time out. A replay's clock is its packets'.
  auto next_tick = std::chrono::steady_clock::now();
  for (;;) {
    bool any = false;
    for (FrameRing* ring : rings) {
      for (int n = 0; n < kBatch && ring->front(frame); ++n) {
        any = true;
        const ParseStatus status = parser.parse(frame, sink);
        counters.record_frame(frame.header.wire_len, status);
        ring->pop();
      }
    }
    if (any) {
      idle = 0;
      continue;
    }
    // pairs with release in drain_and_join(): every push happened before it
    if (producers_done_.load(std::memory_order_acquire)) {
      bool empty = true;
      for (FrameRing* ring : rings) {
        empty = empty && !ring->front(frame);
      }
      if (empty) {
        counters.finish();
        return;
      }
      continue;
    }
    if (live_ && idle >= 64 && std::chrono::steady_clock::now() >= next_tick) {
      next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
      counters.tick(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
    }
    // Idle: yield a while, then sleep briefly; a 50 ms capture batch still fits in the ring.
    if (++idle < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

}  // namespace dnsmon
