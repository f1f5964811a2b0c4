// libFuzzer target: the input is a capture file (pcap or pcapng), read the way the daemon reads one
// held in memory: PacketSource::open_memory, run() into two rings (so flow_hash picks the ring),
// then one Parser per ring over every frame, as each worker would.
//
// libpcap is not instrumented: coverage feedback and ASan checks come from our code only, which is
// the point (capture.cpp on whatever libpcap returns for pcapng, PcapReader for classic pcap, then
// the parser on those frames).
//
// run() is a replay here, which waits for room in a full ring instead of dropping; with the
// capture and the workers on this one thread that would never end, so the rings are made large
// enough for every frame an input can hold (a pcap or pcapng record takes at least 16 bytes), and
// larger inputs are skipped.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <stop_token>
#include <string_view>

#include "dnsmon/capture.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

#include "fuzz_check.hpp"
#include "fuzz_parser.hpp"

namespace {

using dnsmon::DnsMessage;
using dnsmon::FrameRing;
using dnsmon::FrameView;
using dnsmon::ParseStatus;

constexpr std::size_t kMaxInput = 64 * 1024;
constexpr std::size_t kMinRecord = 16;

// Timestamps are whatever the file says (they may go backwards), so only the message is checked.
class CheckingSink final : public dnsmon::MessageSink {
 public:
  void on_message(const DnsMessage& m) override {
    ++in_frame;
    dnsmon::fuzz::check_message(m);
  }

  std::size_t in_frame = 0;  // messages handed out by the current parse() call
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) {
    return 0;
  }
  static const dnsmon::CaptureOptions options;  // what the daemon uses by default
  // Allocated once: 2 rings of 4,097 frames of up to the snaplen, in 4097 x 512 + 4128 bytes each,
  // more than the records of any input (at most kMaxInput bytes plus 56 bytes of header and
  // padding per frame).
  static FrameRing ring0(kMaxInput / kMinRecord + 1, options.snaplen);
  static FrameRing ring1(kMaxInput / kMinRecord + 1, options.snaplen);
  static const std::array<FrameRing*, 2> rings{&ring0, &ring1};

  // open_memory keeps a view: the capture must outlive the source, and libFuzzer's buffer does.
  const auto capture = std::as_bytes(std::span(data, size));
  const auto source = dnsmon::PacketSource::open_memory(capture, "fuzz", options, 0);
  // The error text (libpcap's reason for a damaged file) is not checked: any text will do.
  static_cast<void>(source->run(std::stop_token{}, rings));

  std::uint64_t frames = 0;
  for (FrameRing* ring : rings) {
    if (ring->empty()) {
      continue;  // a Parser costs ~0.5 ms to build under ASan: not for nothing
    }
    dnsmon::Parser parser(dnsmon::fuzz::parser_options());  // one per worker, that is per ring
    CheckingSink sink;
    FrameView slot;
    while (ring->front(slot)) {
      ++frames;
      FUZZ_CHECK(slot.header.cap_len == slot.bytes.size());
      FUZZ_CHECK(slot.bytes.size() <= ring->slot_bytes());
      FUZZ_CHECK(slot.header.source == 0);
      // A copy of exactly the frame's size: ASan then sees reads past the captured bytes, which
      // the ring slot (padded to its full size) would hide.
      const std::unique_ptr<std::byte[]> bytes(new std::byte[slot.bytes.size()]);
      if (!slot.bytes.empty()) {
        std::memcpy(bytes.get(), slot.bytes.data(), slot.bytes.size());
      }
      FrameView frame;
      frame.header = slot.header;
      frame.bytes = std::span<const std::byte>(bytes.get(), slot.bytes.size());
      ring->pop();
      sink.in_frame = 0;
      const ParseStatus status = parser.parse(frame, sink);
      FUZZ_CHECK(status < ParseStatus::Count);
      FUZZ_CHECK(status != ParseStatus::Ok || sink.in_frame > 0);
    }
  }
  // A replay delivers every frame libpcap read, and drops none.
  const auto& stats = source->stats();
  FUZZ_CHECK(stats.received.get() == frames);
  FUZZ_CHECK(stats.ring_dropped.get() == 0);
  FUZZ_CHECK(!stats.up.load());
  return 0;
}
