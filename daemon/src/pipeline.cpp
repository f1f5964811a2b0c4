#include "pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <new>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "dnsmon/common/message_record.hpp"

namespace dnsmon {
namespace {

// A replay ring: at most 8,192 frames (and capture.ring_slots) in 1 MiB of storage, whichever
// fills first. A reader that fills the ring sleeps until the worker has emptied half of it, and
// each wake-up costs tens of microseconds on a virtual machine: 8,192 frames wake it a quarter as
// often as 2,048 did. The storage is every page the ring ever touches, and a first touch costs
// about 13 us here: 1 MiB instead of the default 4 MiB for 8,192 frames saves 770 page faults per
// replay (docs/performance.md).
constexpr std::uint32_t kReplayRingFrames = 8192;
constexpr std::size_t kReplayRingBytes = std::size_t{1} << 20U;

std::size_t mib(std::size_t bytes) {
  return (bytes + (std::size_t{1} << 20U) - 1) >> 20U;
}

}  // namespace

Pipeline::Pipeline(Config config, MetricsHub& hub, int messages_fd) : config_(std::move(config)) {
  if (messages_fd >= 0) {
    messages_ = std::make_unique<MessageWriter>(messages_fd);
  }
  workers_count_ = config_.daemon.workers;
  add_workers(hub);
}

Pipeline::Pipeline(const Config& config, MetricsHub& hub, std::span<const std::byte> demo_capture,
                   int messages_fd)
    : Pipeline(config, hub, messages_fd) {
  const auto& cap = config_.capture;
  if (!cap.interfaces.empty() || !cap.dnstap_sockets.empty()) {
    live_ = true;
    // One handle per worker on each interface, the members of one fanout group: member k feeds
    // worker k alone, so that its thread can wait for that worker when the ring is full.
    for (const auto& iface : cap.interfaces) {
      auto members = PacketSource::open_live_group(
          iface, cap, static_cast<std::uint16_t>(sources_.size()), workers_count_);
      for (std::size_t k = 0; k < members.size(); ++k) {
        sources_.push_back(std::move(members[k]));
        source_worker_.push_back(members.size() > 1 ? k : kEveryWorker);
      }
    }
    // Each dnstap socket has a thread that feeds every worker, each record to the worker that
    // its address pair picks (as for a frame of the same addresses).
    for (const auto& path : cap.dnstap_sockets) {
      sources_.push_back(
          DnstapSource::open(path, cap, static_cast<std::uint16_t>(sources_.size())));
      source_worker_.push_back(kEveryWorker);
    }
  } else if (!cap.files.empty()) {
    sources_.push_back(PacketSource::open_files(cap.files, cap, 0));
    source_worker_.push_back(kEveryWorker);
  } else {
    sources_.push_back(PacketSource::open_memory(demo_capture, "demo", cap, 0));
    source_worker_.push_back(kEveryWorker);
  }
  add_rings(hub);
}

Pipeline::Pipeline(const Config& config, MetricsHub& hub,
                   std::vector<std::unique_ptr<Source>> sources, int messages_fd)
    : Pipeline(config, hub, messages_fd) {
  sources_ = std::move(sources);
  source_worker_.assign(sources_.size(), kEveryWorker);
  live_ = std::any_of(sources_.begin(), sources_.end(), [](const auto& s) { return s->is_live(); });
  add_rings(hub);
}

void Pipeline::add_workers(MetricsHub& hub) {
  // Tables sized by the configuration: one that cannot be allocated names the keys to lower.
  for (std::size_t i = 0; i < workers_count_; ++i) {
    try {
      parsers_.push_back(std::make_unique<Parser>(config_.parser));
    } catch (const TableAllocationError& e) {
      const bool ip = std::string_view(e.table()) == "ip_fragments";
      throw std::runtime_error(fmt::format(
          "{}: cannot allocate {} MiB for the {} of worker {}: out of memory; lower them or "
          "give dnsmon more memory",
          ip ? fmt::format("parser.fragments.max_datagrams ({}) and parser.fragments.memory_mib "
                           "({})",
                           config_.parser.fragment_datagrams,
                           config_.parser.fragment_memory_bytes >> 20U)
             : fmt::format("parser.tcp.max_flows ({}) and parser.tcp.memory_mib ({})",
                           config_.parser.tcp_flows, config_.parser.tcp_memory_bytes >> 20U),
          mib(e.bytes()), ip ? "IP fragment reassembly table" : "TCP stream reassembly table", i));
    }
    try {
      counters_.push_back(&hub.add_worker(parsers_.back().get()));
    } catch (const std::bad_alloc&) {
      throw std::runtime_error(fmt::format(
          "analytics.matching.capacity ({}), analytics.top_capacity ({}) and analytics.windows: "
          "cannot allocate {} MiB for the query matching and window analytics of worker {}: out "
          "of memory; lower them or give dnsmon more memory",
          config_.metrics.matching_capacity, config_.metrics.analytics.top_capacity,
          mib(analytics_bytes_per_worker(config_.metrics)), i));
    }
  }
  hub.set_protocols(config_.parser.mdns, config_.parser.llmnr);
  hub.set_decrypted_transports(!config_.capture.dnstap_sockets.empty());
}

void Pipeline::add_rings(MetricsHub& hub) {
  const auto& cap = config_.capture;
  for (std::size_t i = 0; i < workers_count_; ++i) {
    doorbells_.push_back(std::make_unique<Doorbell>());
  }
  worker_rings_.resize(workers_count_);
  source_rings_.resize(sources_.size());
  for (std::size_t source = 0; source < sources_.size(); ++source) {
    for (std::size_t worker = 0; worker < workers_count_; ++worker) {
      if (source_worker_[source] != kEveryWorker && source_worker_[source] != worker) {
        continue;
      }
      // A replay keeps whole frames (segmentation offload leaves TCP segments of up to 64 KiB in
      // captures). It waits for the ring instead of dropping, so depth matters less than for live
      // capture: a ring smaller than the live one keeps more of its frames in the CPU's caches.
      const bool replay = !live_;
      // A dnstap source's records hold whole DNS messages: no snapshot length cuts them.
      const bool records = sources_[source]->stats().dnstap;
      const bool whole_frames = replay && !cap.snaplen_given;
      const std::uint32_t frames =
          replay ? std::min<std::uint32_t>(cap.ring_slots, kReplayRingFrames) : cap.ring_slots;
      try {
        rings_.push_back(std::make_unique<FrameRing>(
            frames,
            records ? record::kMaxRecordBytes : (whole_frames ? std::size_t{65535} : cap.snaplen),
            replay ? kReplayRingBytes : 0));
      } catch (const std::bad_alloc&) {
        throw std::runtime_error(fmt::format(
            "capture.ring_slots ({}): cannot allocate about {} MiB for a frame ring of worker {}: "
            "out of memory; lower it or give dnsmon more memory",
            cap.ring_slots,
            mib(replay ? kReplayRingBytes : std::size_t{frames} * FrameRing::kBytesPerFrame),
            worker));
      }
      FrameRing* ring = rings_.back().get();
      ring->set_doorbell(doorbells_[worker].get());
      ring_worker_.push_back(worker);
      source_rings_[source].push_back(ring);
      worker_rings_[worker].push_back(ring);
    }
  }

  // The members of an interface's fanout group are one source to the metrics: their counters
  // are summed, and it is up while every member is.
  hub.set_source_reader([this] {
    std::vector<SourceSnapshot> out;
    for (const auto& s : sources_) {
      const auto& st = s->stats();
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const SourceSnapshot& o) { return o.name == s->name(); });
      if (it == out.end()) {
        SourceSnapshot snap;
        snap.name = s->name();
        snap.up = true;
        out.push_back(std::move(snap));
        it = std::prev(out.end());
      }
      it->up = it->up && st.up.load(std::memory_order_relaxed);
      it->received += st.received.get();
      it->bytes += st.bytes.get();
      it->kernel_dropped += st.kernel_dropped.get();
      // Every member reports the interface's own drop counter: taken once.
      it->if_dropped = std::max(it->if_dropped, st.if_dropped.get());
      it->ring_dropped += st.ring_dropped.get();
      it->snaplen_cut += st.snaplen_cut.get();
      if (st.dnstap) {
        it->dnstap = true;
        for (std::size_t r = 0; r < it->dnstap_frames.size(); ++r) {
          it->dnstap_frames[r] += st.dnstap_frames[r].get();
        }
        it->dnstap_accepted += st.dnstap_accepted.get();
        it->dnstap_refused += st.dnstap_refused.get();
        it->dnstap_open += st.dnstap_open.get();
      }
    }
    return out;
  });
  hub.set_ring_reader([this] {
    std::vector<RingSnapshot> out(workers_count_);
    for (std::size_t i = 0; i < rings_.size(); ++i) {
      auto& w = out[ring_worker_[i]];
      w.occupancy += rings_[i]->size_approx();
      w.capacity += rings_[i]->capacity();
      w.used_bytes += rings_[i]->bytes_approx();
      w.capacity_bytes += rings_[i]->memory_bytes();
    }
    return out;
  });
  hub.set_output_reader([this] {
    return std::vector<OutputSnapshot>{
        {"messages", messages_ ? messages_->lost_lines() : std::uint64_t{0}}};
  });
}

Pipeline::~Pipeline() {
  stop_capture();
  captures_.clear();  // joins
  producers_done_.store(true, std::memory_order_release);
  for (auto& bell : doorbells_) {
    bell->ring_always();
  }
  workers_.clear();
}

void Pipeline::start(const SourceEnd& on_source_end) {
  for (std::size_t i = 0; i < workers_count_; ++i) {
    worker_objects_.push_back(std::make_unique<Worker>(
        worker_rings_[i], *parsers_[i], *counters_[i], messages_.get(),
        workers_count_ > 1 ? &messages_mutex_ : nullptr,
        detection_ != nullptr ? &detection_->port(i) : nullptr, config_.capture.dedup));
  }
  if (inline_replay()) {
    // One worker and a replay: the reader's thread is the worker's too (pipeline.hpp).
    captures_.emplace_back([this, on_source_end](std::stop_token st) {
      Worker& worker = *worker_objects_[0];
      const std::function<void()> consume = [&worker] { worker.drain(); };
      const std::string error = sources_[0]->run_inline(std::move(st), source_rings_[0], consume);
      worker.drain();
      worker.finish();
      on_source_end(0, error);
    });
    return;
  }
  for (std::size_t i = 0; i < workers_count_; ++i) {
    workers_.emplace_back([this, i] { worker_loop(i); });
  }
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    captures_.emplace_back([this, i, on_source_end](const std::stop_token& st) {
      const std::string error = sources_[i]->run(st, source_rings_[i]);
      on_source_end(i, error);
    });
  }
}

void Pipeline::stop_capture() {
  for (auto& t : captures_) {
    t.request_stop();
  }
  if (messages_) {
    messages_->stop_waiting();  // a message log whose reader stopped reading must not hold the stop
  }
}

void Pipeline::drain_and_join() {
  for (auto& t : captures_) {
    if (t.joinable()) {
      t.join();
    }
  }
  producers_done_.store(true, std::memory_order_release);  // pairs with acquire in worker_loop()
  for (auto& bell : doorbells_) {
    bell->ring_always();
  }
  for (auto& t : workers_) {
    if (t.joinable()) {
      t.join();
    }
  }
  if (messages_) {
    messages_->flush();
  }
  if (workers_count_ > 1) {
    spdlog::info("frames per worker: {}", fmt::join(frames_per_worker(), " "));
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

std::vector<std::uint64_t> Pipeline::frames_per_worker() const {
  std::vector<std::uint64_t> out;
  for (const auto& w : worker_objects_) {
    out.push_back(w->frames());
  }
  return out;
}

void Pipeline::worker_loop(std::size_t index) {
  worker_objects_[index]->run(*doorbells_[index], producers_done_, live_);
}

}  // namespace dnsmon
