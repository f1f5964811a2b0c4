// libFuzzer target: a dnstap writer's side of a Frame Streams connection, read by a
// dnstap::Session in chunks, every data frame decoded by dnstap::decode_message; and the same
// bytes decoded as one data frame's payload. The input's byte 0 picks the chunk size (1 to 255
// bytes, 0 all at once); the rest is the stream.
//
// Besides the sanitizers it checks what dnstap.hpp promises: the session holds at most one frame
// and a chunk, ends in a closing state exactly when feed() says so, answers only the handshake,
// and every decoded message fits a record that reads back the same.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dnsmon/capture/dnstap.hpp"
#include "dnsmon/common/message_record.hpp"

#include "fuzz_check.hpp"

namespace {

using dnsmon::dnstap::FrameResult;
using dnsmon::dnstap::Session;

std::vector<std::byte>& record_buffer() {
  static std::vector<std::byte> r(dnsmon::record::kMaxRecordBytes);
  return r;
}

void check_frame(std::span<const std::byte> payload) {
  static dnsmon::dnstap::Message m;
  const FrameResult r = dnsmon::dnstap::decode_message(payload, m, 42);
  FUZZ_CHECK(r < FrameResult::Count);
  if (r != FrameResult::Message) {
    return;
  }
  FUZZ_CHECK(m.type >= 1 && m.type <= 14);
  FUZZ_CHECK(m.header.family == 4 || m.header.family == 6);
  FUZZ_CHECK(m.header.transport <= dnsmon::record::kTransportDoh);
  FUZZ_CHECK(m.wire.size() <= dnsmon::record::kMaxMessageBytes);
  FUZZ_CHECK(m.ts_ns >= 0);
  auto& rec = record_buffer();
  const std::size_t n = dnsmon::record::encode(m.header, m.wire, rec);
  FUZZ_CHECK(n == dnsmon::record::kHeaderBytes + m.wire.size());
  dnsmon::record::Header h;
  std::span<const std::byte> wire;
  FUZZ_CHECK(dnsmon::record::decode(std::span<const std::byte>(rec).first(n), h, wire));
  FUZZ_CHECK(h.sport == m.header.sport && h.dport == m.header.dport);
  FUZZ_CHECK(h.transport == m.header.transport && wire.size() == m.wire.size());
}

struct Sink final : dnsmon::dnstap::SessionSink {
  std::size_t frames = 0;

  void on_data(std::span<const std::byte> payload) override {
    FUZZ_CHECK(payload.size() <= dnsmon::dnstap::kMaxDataFrameBytes);
    ++frames;
    check_frame(payload);
  }

  void on_oversized() override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::size_t chunk = data[0] == 0 ? size : data[0];
  const std::span<const std::byte> stream(reinterpret_cast<const std::byte*>(data + 1),  // NOLINT
                                          size - 1);
  check_frame(stream);

  Session s;
  Sink sink;
  std::vector<std::byte> replies;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    const auto part = stream.subspan(at, std::min(chunk, stream.size() - at));
    const bool open = s.feed(part, replies, sink);
    FUZZ_CHECK(open ==
               (s.state() != Session::State::Finished && s.state() != Session::State::Failed));
    FUZZ_CHECK(s.buffered() <= dnsmon::dnstap::kMaxDataFrameBytes + 8 + part.size());
    // A session answers at most once each: ACCEPT (42 bytes) and FINISH (12).
    FUZZ_CHECK(replies.size() <= 42 + 12);
    if (!open) {
      FUZZ_CHECK(s.buffered() == 0);
      FUZZ_CHECK(!s.feed(part, replies, sink));
      break;
    }
  }
  FUZZ_CHECK(s.state() == Session::State::Failed || s.error().empty());
  return 0;
}
