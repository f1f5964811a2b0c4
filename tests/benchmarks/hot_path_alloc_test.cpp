// Proves, without timing anything, that the per-frame path allocates nothing in steady state: a
// frame goes into the ring, out of it, through the Parser and into the WorkerCounters, exactly as a
// worker does it, and every heap allocation in the process is counted meanwhile.
//
// Both doors to the heap are counted (tests/support/alloc_counter.hpp): operator new, and malloc
// and friends, since ldns (and any C library) calls malloc directly, which a counting operator new
// alone would never see.
//
// The frames come from the project's generator (tools/gen_pcap --profile bench): the benchmark mix
// of IPv4/IPv6, VLAN tags, DNS over TCP with handshakes, EDNS options and compressed answers.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/detect/engine.hpp"
#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

#include "alloc_counter.hpp"
#include "bench_capture.hpp"

namespace {

struct AllocSnapshot {
  std::uint64_t allocs = 0, bytes = 0, news = 0;

  static AllocSnapshot now() noexcept {
    return {dnsmon::test::malloc_calls(), dnsmon::test::malloc_bytes(), dnsmon::test::new_calls()};
  }

  AllocSnapshot operator-(const AllocSnapshot& before) const noexcept {
    return {allocs - before.allocs, bytes - before.bytes, news - before.news};
  }
};

constexpr std::size_t kWarmupFrames = 5'000;
constexpr std::size_t kMeasuredFrames = 100'000;

using Frame = dnsmon::bench::CapturedFrame;
using Capture = dnsmon::bench::BenchCapture;

const Capture& bench_capture() {
  static const Capture capture =
      dnsmon::bench::load_bench_capture(kWarmupFrames + kMeasuredFrames, 5);
  return capture;
}

// What a worker's sink does with each message (daemon/src/pipeline.cpp), minus the message log.
struct CountingSink final : dnsmon::MessageSink {
  dnsmon::WorkerCounters* counters = nullptr;
  std::uint64_t messages = 0;

  void on_message(const dnsmon::DnsMessage& m) override {
    ++messages;
    if (!m.malformed_question) {
      counters->record_message(m);
    }
  }
};

}  // namespace

// A volatile store keeps the compiler from eliding the new/delete pair of the self-check.
int* volatile g_escape = nullptr;

TEST_CASE("the allocation counter sees operator new and malloc called inside C libraries",
          "[alloc]") {
  const auto before = AllocSnapshot::now();
  g_escape = new int(42);  // NOLINT(cppcoreguidelines-owning-memory): the point of the test
  char* copy = strdup("counted by malloc, not by operator new");  // libc calls malloc itself
  const auto used = AllocSnapshot::now() - before;
  delete g_escape;  // NOLINT(cppcoreguidelines-owning-memory)
  std::free(copy);
  CHECK(used.news == 1);
  CHECK(used.allocs == 2);
}

TEST_CASE("the ring and the worker counters allocate nothing per frame", "[alloc]") {
  const Capture& cap = bench_capture();
  REQUIRE(cap.frames.size() == kWarmupFrames + kMeasuredFrames);
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"test", "ldns", "pcap"});
  dnsmon::WorkerCounters& counters = hub.add_worker();
  dnsmon::FrameRing ring(1024, 4096);

  // A few hundred decoded messages, made before the measurement, stand in for the parser's output.
  dnsmon::Parser parser;
  std::vector<dnsmon::DnsMessage> samples;

  struct Keep final : dnsmon::MessageSink {
    std::vector<dnsmon::DnsMessage>* out = nullptr;

    void on_message(const dnsmon::DnsMessage& m) override {
      if (out->size() < 512) {
        out->push_back(m);
      }
    }
  } keep;

  keep.out = &samples;
  for (std::size_t i = 0; i < kWarmupFrames; ++i) {
    dnsmon::FrameView v{cap.frames[i].header, cap.data(cap.frames[i])};
    (void)parser.parse(v, keep);
  }
  REQUIRE(samples.size() == 512);

  // No Catch2 assertion inside the measured loops: its reporters may allocate.
  std::uint64_t frames_seen = 0;
  auto run = [&](std::size_t first, std::size_t count) {
    for (std::size_t i = first; i < first + count; ++i) {
      const Frame& f = cap.frames[i];
      dnsmon::FrameView v;
      if (!ring.try_push(f.header, cap.data(f)) || !ring.front(v)) {
        return;
      }
      counters.record_frame(v.header.wire_len, dnsmon::ParseStatus::Ok);
      counters.record_message(samples[i % samples.size()]);
      ring.pop();
      ++frames_seen;
    }
  };
  run(0, kWarmupFrames);
  const auto before = AllocSnapshot::now();
  run(kWarmupFrames, kMeasuredFrames);
  const auto used = AllocSnapshot::now() - before;
  REQUIRE(frames_seen == kWarmupFrames + kMeasuredFrames);
  INFO(used.allocs << " allocations (" << used.bytes << " bytes, " << used.news
                   << " through operator new) over " << kMeasuredFrames << " frames");
  CHECK(used.allocs == 0);
}

// The parser decodes question names itself: ldns_wire2dname malloc'ed twice per message.
TEST_CASE("the whole hot path (ring, parser, counters) allocates nothing per frame in steady state",
          "[alloc]") {
  const Capture& cap = bench_capture();
  REQUIRE(cap.frames.size() == kWarmupFrames + kMeasuredFrames);
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"test", "ldns", "pcap"});
  dnsmon::WorkerCounters& counters = hub.add_worker();
  dnsmon::FrameRing ring(1024, 4096);
  dnsmon::Parser parser;
  CountingSink sink;
  sink.counters = &counters;

  // No Catch2 assertion inside the measured loops: its reporters may allocate.
  std::array<std::uint64_t, dnsmon::kParseStatusCount> statuses{};
  std::uint64_t frames_seen = 0;
  auto run = [&](std::size_t first, std::size_t count) {
    for (std::size_t i = first; i < first + count; ++i) {
      const Frame& f = cap.frames[i];
      dnsmon::FrameView v;
      if (!ring.try_push(f.header, cap.data(f)) || !ring.front(v)) {
        return;
      }
      ++frames_seen;
      const auto status = parser.parse(v, sink);
      counters.record_frame(v.header.wire_len, status);
      ++statuses[static_cast<std::size_t>(status)];
      ring.pop();
    }
  };
  run(0, kWarmupFrames);
  const auto messages_before = sink.messages;
  const auto before = AllocSnapshot::now();
  run(kWarmupFrames, kMeasuredFrames);
  const auto used = AllocSnapshot::now() - before;
  const auto messages = sink.messages - messages_before;

  // The mix must really have gone through the decoder, or zero allocations would prove nothing.
  REQUIRE(frames_seen == kWarmupFrames + kMeasuredFrames);
  REQUIRE(messages > kMeasuredFrames * 9 / 10);
  REQUIRE(statuses[static_cast<std::size_t>(dnsmon::ParseStatus::Ok)] >
          (kWarmupFrames + kMeasuredFrames) * 9 / 10);

  char per_message[32];
  std::snprintf(per_message, sizeof per_message, "%.2f",
                static_cast<double>(used.allocs) / static_cast<double>(messages));
  INFO("steady state: " << used.allocs << " heap allocations (" << used.bytes << " bytes; "
                        << used.news << " through operator new, the rest straight malloc) over "
                        << kMeasuredFrames << " frames and " << messages << " DNS messages = "
                        << per_message << " per message. Straight malloc calls come from C "
                        << "libraries such as ldns.");
  CHECK(used.allocs == 0);
}

// What a worker adds with detection on: each decoded message normalised into a lookup event (lower
// case, registrable domain, organisation, de-duplication) and pushed to a domain shard's ring,
// each query's matcher tag filled, and the timeouts made into events, as the daemon's worker does
// (the bench capture leaves some queries unanswered). The engine runs as live capture with its
// shard thread not started, so the rings fill and the rest is dropped and counted: the worker's
// side alone is measured (the shard's detectors may allocate for a finding, which is rare, and
// run on their own thread).
TEST_CASE("detection's worker side (normaliser, event rings) allocates nothing per frame",
          "[alloc]") {
  const Capture& cap = bench_capture();
  dnsmon::detect::DetectOptions options;
  options.enabled = true;
  options.memory.base_entries = 1024;
  options.memory.candidate_entries = 64;
  options.memory.watch_entries = 4;
  options.memory.seen_filter_entries = 4096;
  options.memory.doorkeeper_bits = 65536;
  dnsmon::detect::Engine engine(
      options, 1, 1, dnsmon::detail::PublicSuffixList::from_text("com\nnet\norg\n", "test list"),
      nullptr, /*live=*/true, 5);
  dnsmon::detect::WorkerPort& port = engine.port(0);

  dnsmon::MetricsOptions metrics;
  metrics.matching_query_tags = true;
  metrics.matching_timeout_ms = 100;  // the bench capture's unanswered queries time out within it
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"test", "ldns", "pcap"}, metrics);
  dnsmon::WorkerCounters& counters = hub.add_worker();
  counters.set_timeout_sink(&port);

  struct DetectSink final : dnsmon::MessageSink {
    dnsmon::detect::WorkerPort* port = nullptr;
    dnsmon::WorkerCounters* counters = nullptr;
    std::uint64_t messages = 0;

    void on_message(const dnsmon::DnsMessage& m) override {
      ++messages;
      const std::int64_t latency = counters->record_message(m);
      port->on_message(m, latency, m.qr ? nullptr : counters->last_query_tag());
    }
  };

  DetectSink sink;
  sink.port = &port;
  sink.counters = &counters;
  dnsmon::Parser parser;
  auto run = [&](std::size_t first, std::size_t count) {
    for (std::size_t i = first; i < first + count; ++i) {
      const Frame& f = cap.frames[i];
      dnsmon::FrameView v;
      v.header = f.header;
      v.bytes = cap.data(f);
      (void)parser.parse(v, sink);
    }
  };
  run(0, kWarmupFrames);
  const auto messages_before = sink.messages;
  const auto before = AllocSnapshot::now();
  run(kWarmupFrames, kMeasuredFrames);
  const auto used = AllocSnapshot::now() - before;
  const auto messages = sink.messages - messages_before;
  const auto snap = engine.snapshot();
  REQUIRE(messages > kMeasuredFrames * 9 / 10);
  // The events were made: most were dropped at the full rings, which is what live capture does.
  REQUIRE(snap.dropped > kMeasuredFrames / 4);
  REQUIRE(snap.timeouts > 0);
  INFO("detection's worker side: " << used.allocs << " heap allocations (" << used.bytes
                                   << " bytes) over " << messages << " DNS messages");
  CHECK(used.allocs == 0);
}
