// Cost of decoding one Ethernet/IPv4/UDP DNS frame (header, question, EDNS scan).
#include <array>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "dnsmon/parser.hpp"

namespace {

std::vector<std::uint8_t> query_frame() {
  std::vector<std::uint8_t> f(12, 2);
  const std::vector<std::uint8_t> rest{
      0x08, 0x00,                                                 // IPv4
      0x45, 0, 0, 72, 0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1,  // IPv4
                                                                  // header
      192, 0, 2, 53,                                              //
      0x9c, 0x40, 0, 53, 0, 52, 0, 0,                             // UDP
      0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,             // DNS header
      3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1, 0, 0,
      41, 0x10, 0, 0, 0, 0x80, 0, 0, 0};  // OPT, DO
  f.insert(f.end(), rest.begin(), rest.end());
  return f;
}

struct CountingSink final : dnsmon::MessageSink {
  std::uint64_t messages = 0;

  void on_message(const dnsmon::DnsMessage& /*m*/) override { ++messages; }
};

void BM_Parser_UdpQuery(benchmark::State& state) {
  const auto frame = query_frame();
  dnsmon::Parser parser;
  CountingSink msg;
  dnsmon::FrameView v;
  v.header.link_type = 1;
  v.bytes = std::as_bytes(std::span(frame));
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser.parse(v, msg));
  }
  if (parser.parse(v, msg) != dnsmon::ParseStatus::Ok) {
    state.SkipWithError("the benchmark frame does not decode");
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Parser_UdpQuery);

}  // namespace
