// Cost of decoding one Ethernet/IPv4/UDP DNS frame: a query (header, question, EDNS scan), and
// responses, whose answer and authority sections are walked too (DnsMessage::answers).
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

// A UDP/IPv4 frame from port 53 carrying `dns`.
std::vector<std::uint8_t> response_frame(const std::vector<std::uint8_t>& dns) {
  std::vector<std::uint8_t> f(12, 2);
  const auto ip_len = static_cast<std::uint16_t>(20 + 8 + dns.size());
  const auto udp_len = static_cast<std::uint16_t>(8 + dns.size());
  const auto hi = [](std::uint16_t v) { return static_cast<std::uint8_t>(v >> 8U); };
  const auto lo = [](std::uint16_t v) { return static_cast<std::uint8_t>(v & 0xFFU); };
  // clang-format off
  const std::vector<std::uint8_t> head{
      0x08, 0x00,                                                              // IPv4
      0x45, 0, hi(ip_len), lo(ip_len), 0, 1, 0x40, 0, 64, 17, 0, 0,            // IPv4 header
      192, 0, 2, 53, 192, 0, 2, 1,                                             // addresses
      0, 53, 0x9c, 0x40, hi(udp_len), lo(udp_len), 0, 0};                      // UDP
  // clang-format on
  f.insert(f.end(), head.begin(), head.end());
  f.insert(f.end(), dns.begin(), dns.end());
  return f;
}

// www.example.com A: a CNAME to edge.example.net, two A records of it, and an OPT record.
std::vector<std::uint8_t> cname_response() {
  // clang-format off
  return response_frame({
      0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 1,  // header: NOERROR, 3 answers, 1 additional
      3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1,
      0xC0, 0x0C, 0, 5, 0, 1, 0, 0, 0x0E, 0x10, 0, 18,  // CNAME, TTL 3600
      4, 'e', 'd', 'g', 'e', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'n', 'e', 't', 0,
      0xC0, 0x2D, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10,  // A, TTL 60
      0xC0, 0x2D, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 11,  // A, TTL 60
      0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0});                  // OPT, 1232
  // clang-format on
}

// nope.example.com A: NXDOMAIN with the zone's SOA in the authority section, and an OPT record.
std::vector<std::uint8_t> nxdomain_response() {
  // clang-format off
  return response_frame({
      0x12, 0x35, 0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 1,  // header: NXDOMAIN, 1 authority, 1 additional
      4, 'n', 'o', 'p', 'e', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1,
      0xC0, 0x11, 0, 6, 0, 1, 0, 0, 0x03, 0x84, 0, 38,  // SOA, TTL 900
      2, 'n', 's', 0xC0, 0x11, 10, 'h', 'o', 's', 't', 'm', 'a', 's', 't', 'e', 'r', 0xC0, 0x11,
      0x78, 0x9A, 0xBC, 0xDE,  // serial
      0, 0, 0x1C, 0x20,        // refresh
      0, 0, 0x0E, 0x10,        // retry
      0, 0x12, 0x75, 0,        // expire
      0, 0, 0x0E, 0x10,        // minimum
      0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0});  // OPT, 1232
  // clang-format on
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

void run_frame(benchmark::State& state, const std::vector<std::uint8_t>& frame) {
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

void BM_Parser_UdpCnameResponse(benchmark::State& state) {
  run_frame(state, cname_response());
}

void BM_Parser_UdpNxdomainResponse(benchmark::State& state) {
  run_frame(state, nxdomain_response());
}

BENCHMARK(BM_Parser_UdpCnameResponse);
BENCHMARK(BM_Parser_UdpNxdomainResponse);

}  // namespace
