// libFuzzer target: the whole decoding path of one worker. The input is a sequence of captured
// frames, fed in order and with increasing timestamps to ONE Parser, so that state kept from frame
// to frame (IP fragment and TCP stream reassembly, flow tables, timeouts) is fuzzed as well.
//
// Input format (integers big-endian):
//   byte 0           link types: low nibble for source 0, high nibble for source 1 (kLinkTypes)
//   then per frame:  u16 length | u8 control | `length` bytes (the last frame may be cut short)
//     control bits 0-5  time step before the frame: (2 + (v & 1)) << (v >> 1) >> 1 microseconds,
//                       i.e. 1, 1, 2, 3, 4, 6, 8, 12 ... us, 1 s at 40, 67 s at 52, 54 min at 63
//     control bit 6     the frame comes from source 1 (a worker sees several capture sources)
//     control bit 7     the frame was cut by the snaplen: wire_len exceeds the captured length
// make_seeds.py writes this format from captures; keep the two in step.
//
// Each frame is copied into a heap block of exactly its size, freed right after parse(): ASan then
// reports any read past the frame, and any pointer into a frame that the parser keeps (the ring
// slot it came from is reused as soon as the worker pops it).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

#include "fuzz_check.hpp"
#include "fuzz_parser.hpp"

namespace {

using dnsmon::DnsMessage;
using dnsmon::FrameView;
using dnsmon::ParseStatus;

// Indexed by a nibble: the link types the parser decodes (RAW_BSDOS 14 shares RAW's code, and
// link types it does not decode are left to pcap_file_fuzz). make_seeds.py has the same table.
constexpr std::array<std::uint16_t, 16> kLinkTypes{
    1,              // Ethernet
    113, 276,       // Linux cooked v1, v2
    0,   108,       // BSD loopback: NULL, LOOP
    101, 12,        // raw IP
    228, 229,       // raw IPv4, raw IPv6
    9,   50,        // PPP, PPP in HDLC framing
    105, 127, 192,  // 802.11, radiotap, PPI
    129, 258,       // Linux ARCnet, Apple PKTAP
};

constexpr std::int64_t kStartNs = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z

// Checks every message the parser hands out against what parser.hpp promises.
class CheckingSink final : public dnsmon::MessageSink {
 public:
  void on_message(const DnsMessage& m) override {
    ++in_frame;
    dnsmon::fuzz::check_message(m);
    FUZZ_CHECK(m.ts_ns >= kStartNs && m.ts_ns <= now_ns);  // not before the input, nor the frame
    FUZZ_CHECK(m.transport == dnsmon::Transport::Udp || m.transport == dnsmon::Transport::Tcp);
    FUZZ_CHECK(!dnsmon::protocol_name(m.protocol).empty());
    FUZZ_CHECK(m.qr == ((m.flags & 0x8000U) != 0));
    FUZZ_CHECK(m.rcode <= 0xFFFU);
  }

  std::int64_t now_ns = kStartNs;
  std::size_t in_frame = 0;  // messages handed out by the current parse() call
};

// At most 53 min per frame: a 1 MB input cannot take the clock past 2060.
std::int64_t time_step_ns(unsigned v) {
  return static_cast<std::int64_t>(((2ULL + (v & 1U)) << (v >> 1U)) >> 1U) * 1000;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::array<std::uint16_t, 2> link_types{kLinkTypes[data[0] & 0x0FU],
                                                kLinkTypes[data[0] >> 4U]};
  dnsmon::Parser parser(
      dnsmon::fuzz::parser_options());  // one per input: nothing carries over between inputs
  CheckingSink sink;
  std::size_t pos = 1;
  while (size - pos >= 3) {
    const std::size_t want = (static_cast<std::size_t>(data[pos]) << 8U) | data[pos + 1];
    const unsigned control = data[pos + 2];
    pos += 3;
    const std::size_t len = want < size - pos ? want : size - pos;

    const std::unique_ptr<std::byte[]> bytes(new std::byte[len]);
    std::memcpy(bytes.get(), data + pos, len);
    pos += len;

    FrameView frame;
    sink.now_ns += time_step_ns(control & 0x3FU);
    frame.header.ts_ns = sink.now_ns;
    frame.header.cap_len = static_cast<std::uint32_t>(len);
    frame.header.wire_len = static_cast<std::uint32_t>((control & 0x80U) != 0 ? len + 100 : len);
    frame.header.source = (control & 0x40U) != 0 ? 1 : 0;
    frame.header.link_type = link_types[frame.header.source];
    frame.bytes = std::span<const std::byte>(bytes.get(), len);

    sink.in_frame = 0;
    const ParseStatus status = parser.parse(frame, sink);
    FUZZ_CHECK(status < ParseStatus::Count);
    FUZZ_CHECK(dnsmon::parse_status_name(status) != "unknown");
    FUZZ_CHECK(status != ParseStatus::Ok || sink.in_frame > 0);  // Ok: at least one message
  }
  return 0;
}
