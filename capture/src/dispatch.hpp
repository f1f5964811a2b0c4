// How a source hands a frame to the workers' rings (capture.cpp), shared by every source.
//
// Thread-safety: a DispatchContext belongs to one source's run(). Allocation: none.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stop_token>

#include "dnsmon/capture.hpp"
#include "dnsmon/ring.hpp"

namespace dnsmon::detail {

// State the per-frame path needs; lives on run()'s stack.
struct DispatchContext {
  std::span<FrameRing* const> rings;
  CaptureStats* stats = nullptr;
  const std::stop_token* stop = nullptr;
  bool live = false;
  // A source whose input cannot wait (a dnstap writer blocks or drops on its own side when dnsmon
  // stops reading): a full ring drops the frame and counts it (ring_dropped) instead of waiting.
  bool drop_when_full = false;
  std::uint16_t link_type = 0;
  std::uint16_t index = 0;
  double replay_speed = 0;
  std::int64_t first_ts_ns = -1;
  std::chrono::steady_clock::time_point replay_start;
  const std::function<void()>* consume = nullptr;  // a replay read in its consumer's thread
  std::size_t pending = 0;                         // frames pushed since consume() last ran
};

// The end of a batch of input: wakes every worker that sleeps with frames waiting, or (inline)
// lets the consumer take them.
void flush_rings(DispatchContext& ctx);

// One frame: into the ring of the worker that flow_hash() picks.
void deliver(DispatchContext& ctx, std::int64_t ts_ns, std::uint32_t wire_len,
             std::span<const std::byte> data);

}  // namespace dnsmon::detail
