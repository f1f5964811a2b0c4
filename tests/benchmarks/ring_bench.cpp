// Cost of moving one frame through the ring: same thread (the bare instructions) and across two
// threads (what the pipeline pays, including cache-line transfers).
#include <array>
#include <atomic>
#include <thread>

#include <benchmark/benchmark.h>

#include "dnsmon/ring.hpp"

namespace {

using dnsmon::FrameHeader;
using dnsmon::FrameRing;
using dnsmon::FrameView;

void BM_Ring_PushPop_SameThread(benchmark::State& state) {
  const auto frame_bytes = static_cast<std::size_t>(state.range(0));
  FrameRing ring(8192, 4096);
  std::array<std::byte, 4096> data{};
  FrameHeader h;
  FrameView v;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ring.try_push(h, std::span(data).first(frame_bytes)));
    benchmark::DoNotOptimize(ring.front(v));
    ring.pop();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_Ring_PushPop_SameThread)->Arg(80)->Arg(512)->Arg(1500);

void BM_Ring_PushPop_CrossThread(benchmark::State& state) {
  const auto frame_bytes = static_cast<std::size_t>(state.range(0));
  FrameRing ring(8192, 4096);
  std::atomic<bool> done{false};
  std::jthread consumer([&] {
    FrameView v;
    while (!done.load(std::memory_order_relaxed)) {
      if (ring.front(v)) {
        benchmark::DoNotOptimize(v.bytes.data());
        ring.pop();
      }
    }
    while (ring.front(v)) {
      ring.pop();
    }
  });
  std::array<std::byte, 4096> data{};
  FrameHeader h;
  for (auto _ : state) {
    while (!ring.try_push(h, std::span(data).first(frame_bytes))) {
    }
  }
  done.store(true, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Ring_PushPop_CrossThread)->Arg(80)->Arg(512)->UseRealTime();

}  // namespace
