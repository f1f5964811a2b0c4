// A candidate's state for the event-level detectors (detection spec 4.6, 4.7, 4.8): kept in
// CandidateEntry::events, written by src/events.cpp on the shard thread.
//
// Thread-safety: one writer, the shard. Allocation: none.
#pragma once

#include <array>
#include <cstdint>

#include "dnsmon/detect/formulas.hpp"

namespace dnsmon::detect {

// One (organisation, registrable domain) tunneling unit for the current logical hour (4.6): the
// counters of formulas' TunnelHour in 52 bytes. The HyperLogLog of distinct names keeps its 64
// registers in 4 bits each (ranks above 15 are held at 15: the estimate is exact enough up to
// hundreds of thousands of names an hour); the sums stop growing once `queries` saturates, so the
// means stay those of the hour's first 65,535 queries.
struct TunnelUnit {
  std::array<std::uint8_t, 32> reg{};  // register 2i in the low nibble of reg[i], 2i+1 high
  std::uint32_t org = 0;               // low 32 bits of the organisation hash | 1; 0 = free
  std::uint32_t prefix_len_sum = 0;
  std::uint32_t entropy_q8 = 0;  // Σ Shannon entropy × 256 of prefixes ≥ 16 characters
  std::uint16_t queries = 0, entropy_n = 0, odd = 0;
  std::uint8_t since_check = 0;  // queries since the last evaluation
  std::uint8_t fired = 0;        // one event per unit and hour
};

static_assert(sizeof(TunnelUnit) == 52);

struct EventState {
  static constexpr std::size_t kUnits = 4;
  static constexpr std::size_t kAddrs = 2;

  DisappearanceState disappearance;                          // 4.7
  std::array<std::array<std::uint8_t, 16>, kAddrs> addrs{};  // the last answer addresses
  std::array<TunnelUnit, kUnits> units{};                    // 4.6, the current hour's
  std::uint32_t hour = 0;  // the logical hour (since the Unix epoch) the units count
  std::uint32_t successor_generation = 0;  // SharedState::successor_generation last collected
  std::uint8_t addr_count = 0;             // addrs in use, newest first
  std::uint8_t seeded = 0;                 // the success history was seeded from the base entry
  std::array<std::uint8_t, 94> spare{};
};

static_assert(sizeof(DisappearanceState) == 72);
static_assert(sizeof(EventState) == 416);

}  // namespace dnsmon::detect
