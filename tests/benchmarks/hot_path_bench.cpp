// Cost of one worker's per-frame path over the benchmark mix (tools/gen_pcap --profile bench):
// what tools/bench.sh measures for the whole process, minus reading the file and the threads.
//   BM_Parser_BenchMix              Parser::parse only, messages dropped
//   BM_HotPath_BenchMix             ring try_push/front/pop + Parser::parse + WorkerCounters, as
//                                   a worker, with every analytics feature on (the default)
//   BM_HotPath_BenchMix_NoWindows   the same with analytics.enabled = false (counters and query
//                                   matching only): the difference is what the windows cost
//   BM_HotPath_BenchMix_NoAnalytics the same without windows and with a 1-entry matching table
//                                   (every query evicts the previous one): the counters alone
//   BM_HotPath_BenchMix_Legs        the default with the server's addresses known, as on a
//                                   resolver host (its loopback, link-local and two service
//                                   addresses per family, the mix's servers among them): what
//                                   deciding the leg of every message costs
//   BM_RenderText                   MetricsHub::render_text() after the whole capture went
//                                   through one worker: the cost of one /metrics scrape at the
//                                   default cardinality
//   BM_RenderText_Legs              the same with the server's addresses known: three legs of
//                                   matching counters and latency histograms instead of one
// Items are frames; bytes are the frames' captured bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include <benchmark/benchmark.h>

#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

#include "bench_capture.hpp"

namespace {

const dnsmon::bench::BenchCapture& capture() {
  static const auto c = dnsmon::bench::load_bench_capture(100'000, 1);
  return c;
}

struct DropSink final : dnsmon::MessageSink {
  std::uint64_t messages = 0;

  void on_message(const dnsmon::DnsMessage& /*m*/) override { ++messages; }
};

struct CountingSink final : dnsmon::MessageSink {
  dnsmon::WorkerCounters* counters = nullptr;

  void on_message(const dnsmon::DnsMessage& m) override {
    if (!m.malformed_question) {
      counters->record_message(m);
    }
  }
};

void BM_Parser_BenchMix(benchmark::State& state) {
  const auto& cap = capture();
  dnsmon::Parser parser;
  DropSink sink;
  std::size_t i = 0;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    const auto& f = cap.frames[i];
    const dnsmon::FrameView v{f.header, cap.data(f)};
    benchmark::DoNotOptimize(parser.parse(v, sink));
    bytes += f.header.cap_len;
    if (++i == cap.frames.size()) {
      i = 0;  // starting over replays old TCP segments: a little unrealistic, and rare
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
  state.counters["messages/frame"] =
      static_cast<double>(sink.messages) / static_cast<double>(state.iterations());
}

void hot_path(benchmark::State& state, const dnsmon::MetricsOptions& options) {
  const auto& cap = capture();
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"bench", "ldns", "pcap"}, options);
  dnsmon::WorkerCounters& counters = hub.add_worker();
  dnsmon::FrameRing ring(1024, 4096);
  dnsmon::Parser parser;
  CountingSink sink;
  sink.counters = &counters;
  std::size_t i = 0;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    const auto& f = cap.frames[i];
    dnsmon::FrameView v;
    if (!ring.try_push(f.header, cap.data(f)) || !ring.front(v)) {
      state.SkipWithError("the ring refused a frame");
      break;
    }
    counters.record_frame(v.header.wire_len, parser.parse(v, sink));
    ring.pop();
    bytes += f.header.cap_len;
    if (++i == cap.frames.size()) {
      i = 0;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}

void BM_HotPath_BenchMix(benchmark::State& state) {
  hot_path(state, dnsmon::MetricsOptions{});
}

void BM_HotPath_BenchMix_NoWindows(benchmark::State& state) {
  dnsmon::MetricsOptions o;
  o.analytics.enabled = false;
  hot_path(state, o);
}

void BM_HotPath_BenchMix_NoAnalytics(benchmark::State& state) {
  dnsmon::MetricsOptions o;
  o.analytics.enabled = false;
  o.matching_capacity = 1;
  hot_path(state, o);
}

// A resolver host's addresses; the benchmark mix's servers are 198.19.0.53-54 and
// 2001:db8:53::53-54, the last of each family.
dnsmon::MetricsOptions with_legs() {
  dnsmon::MetricsOptions o;
  for (const char* a :
       {"127.0.0.1", "10.1.2.3", "192.0.2.1", "198.19.0.53/31", "::1", "fe80::1:2ff:fe00:53",
        "2001:db8:1::53", "2001:db8:53::53", "2001:db8:53::54"}) {
    (void)o.server_addresses.add(a);
  }
  return o;
}

void BM_HotPath_BenchMix_Legs(benchmark::State& state) {
  hot_path(state, with_legs());
}

void render_text(benchmark::State& state, const dnsmon::MetricsOptions& options) {
  const auto& cap = capture();
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"bench", "ldns", "pcap"}, options);
  dnsmon::WorkerCounters& counters = hub.add_worker();
  dnsmon::Parser parser;
  CountingSink sink;
  sink.counters = &counters;
  for (const auto& f : cap.frames) {
    const dnsmon::FrameView v{f.header, cap.data(f)};
    counters.record_frame(v.header.wire_len, parser.parse(v, sink));
  }
  counters.finish();
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = hub.render_text();
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["exposition_bytes"] = static_cast<double>(bytes);
}

void BM_RenderText(benchmark::State& state) {
  render_text(state, dnsmon::MetricsOptions{});
}

void BM_RenderText_Legs(benchmark::State& state) {
  render_text(state, with_legs());
}

BENCHMARK(BM_Parser_BenchMix);
BENCHMARK(BM_HotPath_BenchMix);
BENCHMARK(BM_HotPath_BenchMix_NoWindows);
BENCHMARK(BM_HotPath_BenchMix_NoAnalytics);
BENCHMARK(BM_HotPath_BenchMix_Legs);
BENCHMARK(BM_RenderText)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RenderText_Legs)->Unit(benchmark::kMillisecond);

}  // namespace
