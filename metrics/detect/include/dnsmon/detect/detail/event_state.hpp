// A candidate's state for the event-level detectors (detection spec 4.6, 4.7, 4.8): kept in
// CandidateEntry::events, written by src/events.cpp on the shard thread.
//
// Thread-safety: one writer, the shard. Allocation: none.
#pragma once

#include <array>
#include <cstdint>

namespace dnsmon::detect {

struct EventState {
  std::array<std::uint8_t, 416> spare{};  // not used yet
};

static_assert(sizeof(EventState) == 416);

}  // namespace dnsmon::detect
