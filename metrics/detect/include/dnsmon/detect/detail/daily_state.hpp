// A candidate's state for the day-level detectors (detection spec 4.1, 4.4, 4.5, 4.9):
// kept in CandidateEntry::daily, written by src/daily.cpp on the shard thread.
//
// Thread-safety: one writer, the shard. Allocation: none.
#pragma once

#include <array>
#include <cstdint>

namespace dnsmon::detect {

struct DailyState {
  std::array<std::uint8_t, 1400> spare{};  // not used yet
};

static_assert(sizeof(DailyState) == 1400);

}  // namespace dnsmon::detect
