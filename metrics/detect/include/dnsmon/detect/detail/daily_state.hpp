// A candidate's state for the day-level detectors (detection spec 4.1, 4.4, 4.5, 4.9):
// kept in CandidateEntry::daily, written by src/daily.cpp on the shard thread.
//
// - the timestamp ring of the candidate's last 256 lookup events (3.4), each a u32 count of
//   10 ms after ts_base_ns (logical time); the base moves forward when a timestamp would not fit;
// - its lookup events in each of the last 24 logical hours (hour h at h % 24);
// - a small set of the distinct query names (FQDNs) seen in the last 14 days: the covert_pair
//   structure veto only needs to know whether there were more than 8, so the set holds 9 and
//   remembers the last day it overflowed;
// - the raw queries and those of an odd type (TXT, NULL, ANY, CNAME) per day over 14 days;
// - the covert_pair gate's hysteresis memory and the days the beacon and covert_pair last ran;
// - the answer TTL of the last successful response (cache refreshes at an authoritative vantage).
//
// Thread-safety: one writer, the shard. Allocation: none.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "dnsmon/detect/formulas.hpp"

namespace dnsmon::detect {

struct DailyState {
  static constexpr std::size_t kRing = 256;
  static constexpr std::size_t kHours = 24;
  static constexpr std::size_t kFqdns = 9;  // one more than the veto's 8
  static constexpr std::size_t kDays = 14;
  static constexpr std::int64_t kTick = 10'000'000;  // ns per timestamp unit

  std::int64_t ts_base_ns = 0;
  std::array<std::uint32_t, kRing> ts{};  // ts[(ts_next - 1) % kRing] is the newest
  std::uint16_t ts_next = 0, ts_count = 0;
  std::uint32_t hour = 0;  // the newest logical hour (hours since the epoch) `hourly` holds
  std::array<std::uint16_t, kHours> hourly{};
  std::array<std::uint32_t, kFqdns> fqdn{};           // name hash (low 32 bits, | 1); 0 = free
  std::array<std::uint16_t, kFqdns> fqdn_day{};       // the last day each name was queried
  std::uint16_t fqdn_overflow_day = 0;                // the last day a 10th live name did not fit
  std::array<std::uint16_t, kDays> queries{}, odd{};  // raw queries on day d at d % 14
  std::uint16_t query_day = 0;                        // the newest day they hold
  std::uint16_t beacon_day = 0;                       // the last day the beacon was evaluated
  std::uint16_t covert_day = 0;  // the last day covert_pair was evaluated at a day boundary
  std::uint16_t reserved = 0;
  CovertGateState gate;
  std::uint32_t answer_ttl_s = 0;         // the smallest answer TTL of the last successful response
  std::array<std::uint8_t, 164> spare{};  // not used yet
};

static_assert(sizeof(DailyState) == 1400);

}  // namespace dnsmon::detect
