// Decoded DNS messages from a MessageSource go through the pipeline that frames take (rings,
// workers, parser, counters, exposition, message log), as records of dnsmon's own link type.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/capture.hpp"
#include "dnsmon/common/message_record.hpp"
#include "dnsmon/config.hpp"
#include "dnsmon/metrics.hpp"

#include "pipeline.hpp"

namespace {

using dnsmon::SourceMessage;

std::vector<std::byte> dns_message(std::uint16_t id, bool response, const std::string& name) {
  std::vector<std::byte> m;
  auto put = [&m](unsigned v) { m.push_back(static_cast<std::byte>(v & 0xFFU)); };
  put(id >> 8U);
  put(id);
  put(response ? 0x81U : 0x01U);  // QR, RD
  put(response ? 0x80U : 0x00U);  // RA, NOERROR
  put(0);
  put(1);  // one question
  for (int i = 0; i < 6; ++i) {
    put(0);
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    put(static_cast<unsigned>(dot - start));
    for (std::size_t i = start; i < dot; ++i) {
      put(static_cast<unsigned char>(name[i]));
    }
    start = dot + 1;
  }
  put(0);
  put(0);
  put(1);  // A
  put(0);
  put(1);  // IN
  return m;
}

// count query/response pairs between clients and two servers, over IPv4 and IPv6, UDP and TCP.
std::vector<SourceMessage> conversation(int count) {
  std::vector<SourceMessage> out;
  std::int64_t ts = 1'700'000'000'000'000'000;
  for (int i = 0; i < count; ++i) {
    dnsmon::record::Header q;
    q.family = i % 3 == 0 ? 6 : 4;
    q.transport = i % 5 == 0 ? dnsmon::record::kTransportTcp : dnsmon::record::kTransportUdp;
    if (q.family == 4) {
      q.src = {10, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
      q.dst = {192, 0, 2, static_cast<std::uint8_t>(53 + i % 2)};
    } else {
      q.src = {0x20,
               0x01,
               0x0d,
               0xb8,
               0,
               0,
               0,
               0,
               0,
               0,
               0,
               0,
               0,
               0,
               static_cast<std::uint8_t>(i >> 8),
               static_cast<std::uint8_t>(i)};
      q.dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53};
    }
    q.sport = static_cast<std::uint16_t>(20000 + i);
    q.dport = 53;
    const auto id = static_cast<std::uint16_t>(i);
    const std::string name = "host" + std::to_string(i) + ".example.com";
    out.push_back({ts, q, dns_message(id, false, name)});
    dnsmon::record::Header r = q;
    std::swap(r.src, r.dst);
    std::swap(r.sport, r.dport);
    out.push_back({ts + 1'000'000, r, dns_message(id, true, name)});
    ts += 1'000'000;
  }
  return out;
}

std::uint64_t metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  REQUIRE(at != std::string::npos);
  return std::stoull(text.substr(at + series.size() + 2));
}

}  // namespace

TEST_CASE("decoded messages flow through the pipeline: counted, matched, exported, logged") {
  const std::uint32_t workers = GENERATE(1U, 2U);
  constexpr std::uint64_t kPairs = 3000;
  dnsmon::Config config;
  config.daemon.workers = workers;
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"test", "", ""}, config.metrics);
  std::FILE* log = std::tmpfile();
  REQUIRE(log != nullptr);

  auto messages = conversation(kPairs);
  // A record of another version is refused by the parser and counted, never decoded.
  std::vector<std::unique_ptr<dnsmon::Source>> sources;
  sources.push_back(dnsmon::MessageSource::open_memory(std::move(messages), "messages", 0));
  {
    dnsmon::Pipeline pipeline(config, hub, std::move(sources), fileno(log));
    std::atomic<int> ended{0};
    std::string error = "not ended";
    pipeline.start([&](std::size_t, const std::string& e) {
      error = e;
      ended.store(1);
    });
    for (int i = 0; i < 3000 && ended.load() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(ended.load() == 1);
    CHECK(error.empty());
    pipeline.drain_and_join();
    const auto per_worker = pipeline.frames_per_worker();
    REQUIRE(per_worker.size() == workers);
    std::uint64_t sum = 0;
    for (const auto n : per_worker) {
      CHECK(n > 0);  // the address hash spreads the conversations over every worker
      sum += n;
    }
    CHECK(sum == 2U * kPairs);
    CHECK(pipeline.source(0).stats().received.get() == 2U * kPairs);
    CHECK(pipeline.source(0).stats().ring_dropped.get() == 0);

    const std::string text = hub.render_text();
    CHECK(metric(text, "dnsmon_packets_total{result=\"ok\"}") == 2U * kPairs);
    CHECK(metric(text, "dnsmon_packets_total{result=\"unsupported_link\"}") == 0);
    const int tcp = (kPairs + 4) / 5;
    CHECK(metric(text,
                 "dnsmon_messages_total{protocol=\"dns\",transport=\"udp\",direction=\"query\"}") ==
          static_cast<std::uint64_t>(kPairs - tcp));
    CHECK(metric(
              text,
              "dnsmon_messages_total{protocol=\"dns\",transport=\"tcp\",direction=\"response\"}") ==
          static_cast<std::uint64_t>(tcp));
    CHECK(metric(text, "dnsmon_query_matching_total{leg=\"unknown\",result=\"matched\"}") ==
          static_cast<std::uint64_t>(kPairs));
    CHECK(metric(text,
                 "dnsmon_query_matching_total{leg=\"unknown\",result=\"unmatched_response\"}") ==
          0);
    CHECK(metric(text, "dnsmon_capture_received_total{source=\"messages\"}") == 2U * kPairs);
  }
  // The message log has every message, with its addresses and ports.
  std::fflush(log);
  std::rewind(log);
  std::string all;
  char buf[65536];
  for (std::size_t n = 0; (n = std::fread(buf, 1, sizeof buf, log)) > 0;) {
    all.append(buf, n);
  }
  std::fclose(log);
  std::size_t lines = 0;
  for (const char c : all) {
    lines += c == '\n' ? 1U : 0U;
  }
  CHECK(lines == 2U * kPairs);
  CHECK(all.find("\"qname\":\"host7.example.com\"") != std::string::npos);
  CHECK(all.find("\"src\":\"2001:db8::53\"") != std::string::npos);
  CHECK(all.find("\"src\":\"10.0.0.1\",\"dst\":\"192.0.2.54\",\"sport\":20001,\"dport\":53") !=
        std::string::npos);
}

TEST_CASE("a damaged message record is counted, never decoded") {
  dnsmon::Parser parser;

  struct Counting final : dnsmon::MessageSink {
    int n = 0;

    void on_message(const dnsmon::DnsMessage& /*message*/) override { ++n; }
  } sink;

  dnsmon::record::Header h;
  h.src = {192, 0, 2, 1};
  h.dst = {192, 0, 2, 53};
  h.sport = 40000;
  h.dport = 53;
  const auto wire = dns_message(1, false, "example.com");
  std::vector<std::byte> rec(dnsmon::record::kMaxRecordBytes);
  const std::size_t n = dnsmon::record::encode(h, wire, rec);
  REQUIRE(n == dnsmon::record::kHeaderBytes + wire.size());
  dnsmon::FrameView frame;
  frame.header.link_type = dnsmon::record::kLinkType;
  frame.header.ts_ns = 1;
  frame.bytes = std::span<const std::byte>(rec).first(n);
  CHECK(parser.parse(frame, sink) == dnsmon::ParseStatus::Ok);
  CHECK(sink.n == 1);
  rec[0] = std::byte{2};  // another version
  CHECK(parser.parse(frame, sink) == dnsmon::ParseStatus::UnsupportedLink);
  rec[0] = std::byte{1};
  rec[3] = std::byte{0x80};  // an unknown flag
  CHECK(parser.parse(frame, sink) == dnsmon::ParseStatus::UnsupportedLink);
  frame.bytes = std::span<const std::byte>(rec).first(dnsmon::record::kHeaderBytes - 1);
  CHECK(parser.parse(frame, sink) == dnsmon::ParseStatus::Truncated);
  CHECK(sink.n == 1);
  // The flow hash puts both directions of a record's conversation on one worker.
  rec[3] = std::byte{0};
  dnsmon::record::Header r = h;
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  std::vector<std::byte> back(dnsmon::record::kMaxRecordBytes);
  const std::size_t m = dnsmon::record::encode(r, wire, back);
  CHECK(dnsmon::flow_hash(dnsmon::record::kLinkType, std::span<const std::byte>(rec).first(n)) ==
        dnsmon::flow_hash(dnsmon::record::kLinkType, std::span<const std::byte>(back).first(m)));
}

TEST_CASE("a message record's transport is the message's: udp, tcp, dot and doh, nothing else") {
  dnsmon::Parser parser;

  struct Last final : dnsmon::MessageSink {
    dnsmon::Transport transport = dnsmon::Transport::Count;

    void on_message(const dnsmon::DnsMessage& message) override { transport = message.transport; }
  } sink;

  dnsmon::record::Header h;
  h.src = {192, 0, 2, 1};
  h.dst = {192, 0, 2, 53};
  h.sport = 40000;
  h.dport = 853;
  const auto wire = dns_message(1, false, "example.com");
  std::vector<std::byte> rec(dnsmon::record::kMaxRecordBytes);
  dnsmon::FrameView frame;
  frame.header.link_type = dnsmon::record::kLinkType;
  for (const auto& [code, transport, name] :
       {std::tuple{dnsmon::record::kTransportUdp, dnsmon::Transport::Udp, "udp"},
        std::tuple{dnsmon::record::kTransportTcp, dnsmon::Transport::Tcp, "tcp"},
        std::tuple{dnsmon::record::kTransportDot, dnsmon::Transport::Dot, "dot"},
        std::tuple{dnsmon::record::kTransportDoh, dnsmon::Transport::Doh, "doh"}}) {
    CAPTURE(name);
    h.transport = code;
    const std::size_t n = dnsmon::record::encode(h, wire, rec);
    frame.bytes = std::span<const std::byte>(rec).first(n);
    CHECK(parser.parse(frame, sink) == dnsmon::ParseStatus::Ok);
    CHECK(sink.transport == transport);
    CHECK(dnsmon::transport_name(transport) == name);
  }
  rec[2] = std::byte{4};
  CHECK(parser.parse(frame, sink) == dnsmon::ParseStatus::UnsupportedLink);
}
