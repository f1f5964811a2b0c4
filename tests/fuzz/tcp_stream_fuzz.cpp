// libFuzzer target: TcpReassembler alone, driven segment by segment, so that the fuzzer reaches
// sequence numbers, flags, segment sizes and packet times that whole frames (packet_path_fuzz)
// reach only by chance. Four flows share one reassembler.
//
// Input format (integers big-endian):
//   byte 0            options: bits 0-1 max_flow_bytes (kFlowBytes), bits 2-3 window_bytes
//                     (kWindows), bit 4 two flows in the table (evictions), bit 5 a byte pool of
//                     one flow's buffer (evictions by the pool)
//   then per segment: u8 control | i16 delta | u16 length | u8 repeat | u8 time | payload
//     control bits 0-1  the flow (its source port is 1 + this)
//     control bits 2-4  SYN, FIN, RST
//     control bits 5-6  sequence number: 0 the flow's next byte; 1, 2, 3 that plus delta, delta *
//                       256, delta * 65536 (reordering, holes, duplicates, jumps, wrap-around)
//     control bit 7     call expire() after the segment
//     time              bits 0-5 a step of 2^k ns (none for 0), bit 6 half as much again, bit 7
//                       backwards; times are kept modulo 2^64, so any int64 can occur
//     payload           `length` bytes of input (fewer if the input ends), sent 1 + `repeat`
//                       times in one segment of at most 65,535 bytes, so that a short input makes
//                       a long segment of repeated messages
//
// Checked for every input: no crash, leak, undefined behaviour or failed assertion (the build is
// Debug); every message handed out is at most 65,535 bytes and counted; the flow table and the
// byte pool stay within their capacities; and, when times only move forward and stay short of the
// idle timeout, expiring everything afterwards frees every flow and every byte.
// And a differential check: a flow that starts with a SYN and then only sends its next bytes in
// order, without RST or another SYN and with nothing after a FIN, must hand out exactly the
// messages of its byte stream, when none of them with its length prefix is longer than
// max_flow_bytes and nothing was evicted.
#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dnsmon/parser/detail/tcp_reassembly.hpp"

#include "fuzz_check.hpp"

namespace {

using dnsmon::detail::kTcpFin;
using dnsmon::detail::kTcpRst;
using dnsmon::detail::kTcpSyn;
using dnsmon::detail::TcpFlowKey;
using dnsmon::detail::TcpReassembler;
using dnsmon::detail::TcpReassemblyOptions;

constexpr std::array<std::size_t, 4> kFlowBytes{64, 300, 2'050, 65'537};
constexpr std::array<std::uint32_t, 4> kWindows{512, 8'192, 65'536, 262'144};
constexpr std::size_t kFlows = 4;
constexpr std::size_t kHeaderBytes = 7;
constexpr std::size_t kMaxPayload = 65'535;
constexpr std::size_t kChunkBytes = 2'048;  // TcpReassembler's pool chunk

struct FlowModel {
  bool started = false;
  bool ordered = true;    // a SYN first, then only in-order data: the differential check applies
  bool finished = false;  // a FIN was sent: anything after it starts another flow
  std::uint32_t next = 0;
  std::vector<std::byte> stream;                  // every payload byte, in order
  std::vector<std::vector<std::byte>> delivered;  // what the reassembler handed out
};

struct Sink {
  std::array<FlowModel, kFlows>* flows;
  std::uint64_t count = 0;

  void operator()(const TcpFlowKey& key, std::span<const std::byte> message) noexcept {
    FUZZ_CHECK(message.size() <= 65'535);
    FUZZ_CHECK(key.sport >= 1 && key.sport <= kFlows);
    ++count;
    auto& f = (*flows)[key.sport - 1U];
    f.delivered.emplace_back(message.begin(), message.end());  // ASan checks every byte
  }
};

TcpFlowKey key_of(std::size_t flow) {
  TcpFlowKey k;
  k.family = 4;
  k.src = {192, 0, 2, 1};
  k.dst = {192, 0, 2, 53};
  k.sport = static_cast<std::uint16_t>(1 + flow);
  k.dport = 53;
  return k;
}

// The messages of an RFC 7766 byte stream, or false if one is longer than max_flow_bytes allows.
bool messages_of(std::span<const std::byte> stream, std::size_t max_flow_bytes,
                 std::vector<std::vector<std::byte>>& out) {
  std::size_t pos = 0;
  while (stream.size() - pos >= 2) {
    const std::size_t size = (std::to_integer<std::size_t>(stream[pos]) << 8U) |
                             std::to_integer<std::size_t>(stream[pos + 1]);
    if (size + 2 > max_flow_bytes) {
      return false;
    }
    if (stream.size() - pos - 2 < size) {
      break;
    }
    const auto m = stream.subspan(pos + 2, size);
    out.emplace_back(m.begin(), m.end());
    pos += 2 + size;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  const std::uint8_t mode = data[0];
  TcpReassemblyOptions o;
  o.max_flow_bytes = kFlowBytes[mode & 3U];
  o.window_bytes = kWindows[(mode >> 2U) & 3U];
  o.max_flows = (mode & 0x10U) != 0 ? 2 : 8;
  if ((mode & 0x20U) != 0) {  // the smallest pool the constructor accepts: one flow's buffer
    const std::size_t slots = std::bit_ceil((o.max_flow_bytes + kChunkBytes - 1) / kChunkBytes + 1);
    o.memory_budget_bytes = slots * kChunkBytes;
  } else {
    o.memory_budget_bytes = std::size_t{1} << 20U;
  }
  o.hash_seed = 0x5eed;
  TcpReassembler r{o};

  std::array<FlowModel, kFlows> flows{};
  Sink sink{&flows};
  std::uint64_t now = 1'767'225'600'000'000'000ULL;  // 2026-01-01T00:00:00Z
  const std::uint64_t start = now;
  bool forward = true;  // times never went backwards nor wrapped

  std::vector<std::byte> payload;
  std::size_t pos = 1;
  while (size - pos >= kHeaderBytes) {
    const std::uint8_t control = data[pos];
    const auto delta = static_cast<std::int16_t>((data[pos + 1] << 8U) | data[pos + 2]);
    const std::size_t length = (std::size_t{data[pos + 3]} << 8U) | data[pos + 4];
    const std::size_t repeat = data[pos + 5];
    const std::uint8_t time = data[pos + 6];
    pos += kHeaderBytes;
    const std::size_t given = std::min(length, size - pos);
    payload.clear();
    for (std::size_t i = 0; i <= repeat && payload.size() < kMaxPayload; ++i) {
      const auto* p = reinterpret_cast<const std::byte*>(data + pos);
      payload.insert(payload.end(), p, p + std::min(given, kMaxPayload - payload.size()));
    }
    pos += given;

    if ((time & 0x3FU) != 0) {
      std::uint64_t step = std::uint64_t{1} << (time & 0x3FU);
      step += (time & 0x40U) != 0 ? step / 2 : 0;
      if ((time & 0x80U) != 0) {
        now -= step;
        forward = false;
      } else {
        forward = forward && now + step > now;
        now += step;
      }
    }

    const std::size_t flow = control & 3U;
    auto& m = flows[flow];
    std::uint8_t flags = 0;
    flags |= (control & 0x04U) != 0 ? kTcpSyn : 0;
    flags |= (control & 0x08U) != 0 ? kTcpFin : 0;
    flags |= (control & 0x10U) != 0 ? kTcpRst : 0;
    const unsigned seq_mode = (control >> 5U) & 3U;
    std::uint32_t seq = m.next;
    if (seq_mode != 0) {
      const std::int64_t scale = seq_mode == 1 ? 1 : seq_mode == 2 ? 256 : 65'536;
      seq = static_cast<std::uint32_t>(m.next + static_cast<std::uint64_t>(delta * scale));
    }

    // The differential model: a SYN first, in order afterwards, nothing else.
    if (!m.started) {
      m.started = true;
      m.ordered = flags == kTcpSyn && seq_mode == 0;
    } else if (m.finished || (flags & ~kTcpFin) != 0 || seq_mode != 0) {
      m.ordered = false;
    }
    m.finished = m.finished || (flags & kTcpFin) != 0;
    if (m.ordered) {
      m.stream.insert(m.stream.end(), payload.begin(), payload.end());
    }
    // In order unless told otherwise: the next segment follows this one.
    m.next = static_cast<std::uint32_t>(seq + ((flags & kTcpSyn) != 0 ? 1 : 0) + payload.size());

    r.add(key_of(flow), seq, flags, payload, static_cast<std::int64_t>(now), sink);
    if ((control & 0x80U) != 0) {
      r.expire(static_cast<std::int64_t>(now), sink);
    }
    FUZZ_CHECK(r.flows() <= o.max_flows);
    FUZZ_CHECK(r.memory_bytes() <= o.memory_budget_bytes);
    FUZZ_CHECK(r.stats().messages.get() == sink.count);
  }

  const auto& stats = r.stats();
  const bool short_run = forward && now - start < std::uint64_t{30} * 1'000'000'000;
  if (short_run) {
    // Everything in flight is older than both timeouts here: expiry frees it all.
    r.expire(static_cast<std::int64_t>(now + (std::uint64_t{120} * 1'000'000'000)), sink);
    FUZZ_CHECK(r.flows() == 0);
    FUZZ_CHECK(r.memory_bytes() == 0);
  }
  if (short_run && stats.evicted.get() == 0) {
    for (const auto& f : flows) {
      std::vector<std::vector<std::byte>> expected;
      if (f.started && f.ordered && messages_of(f.stream, o.max_flow_bytes, expected)) {
        FUZZ_CHECK(f.delivered == expected);
      }
    }
  }
  return 0;
}
