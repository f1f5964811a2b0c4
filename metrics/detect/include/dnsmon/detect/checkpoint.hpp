// Checkpoints of the detection state (docs/detection.md, "State across restarts"): what the
// engine writes into the state file container (state_file.hpp) and reads back at start.
//
// The domain tables' entries are trivially copyable fixed-size records: they are stored as they
// lie in memory (raw records, this build's byte order and layout), with a layout fingerprint in
// the engine section: kStateLayoutVersion, the byte order and the sizeof of every record type. A
// file whose fingerprint, shard count, table capacities or logical clock (compression, configured
// origin) differ from the running configuration is refused and the engine starts fresh; nothing
// is converted. Bump kStateLayoutVersion whenever a record's fields change, even when its size
// does not (a field renamed, retyped or moved), and whenever what a section holds changes.
//
// Sections (ids; every one required, with exactly the size the running configuration implies):
//   1                   engine: EngineRecord (fingerprint, shards, seed, clock settings, the
//                       population ring's days)
//   2                   population: the 14 daily HyperLogLogs of clients, registers in ring order
//   3                   shared: SharedState::save()
//   0x100 + 16 s + k    shard s: k = 0 ShardRecord, 1 today's clients (HyperLogLog registers),
//                       2 base table, 3 candidates, 4 watch entries, 5 seen filter slots,
//                       6 doorkeeper words
// The state file header carries the logical clock (the newest logical time of any shard) and its
// origin.
//
// Migration: the container dispatches on its format version (state_file.cpp, one parser per
// version); the engine's loader dispatches on kStateLayoutVersion read from the engine section
// (checkpoint.cpp, kLayoutReaders). Today there is one layout, 3 (layout 1 lacked the
// aggregate_anomaly state in the shared section, layout 2 kept a failing domain's gauges in the
// candidate marks; their files are refused); a next layout adds a reader of the previous one
// that converts its records into the new ones.
//
// Thread-safety: see Engine (checkpoints run on the control thread with the shards paused or
// joined). Allocation: control plane only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dnsmon::detect {

// The layout of the checkpoint's sections and records; bump on any change (see above).
inline constexpr std::uint32_t kStateLayoutVersion = 3;

// Live, the engine checkpoints at this interval of wall-clock time (and at shutdown).
inline constexpr std::chrono::minutes kCheckpointInterval{15};

inline constexpr std::uint32_t kSectionEngine = 1;
inline constexpr std::uint32_t kSectionPopulation = 2;
inline constexpr std::uint32_t kSectionShared = 3;
inline constexpr std::uint32_t kSectionShardBase = 0x100;
inline constexpr std::uint32_t kSectionsPerShard = 16;

enum class ShardSection : std::uint32_t {
  Record = 0,
  ClientsToday = 1,
  Base = 2,
  Candidates = 3,
  Watch = 4,
  SeenFilter = 5,
  Doorkeeper = 6,
};

[[nodiscard]] constexpr std::uint32_t shard_section(std::size_t shard, ShardSection k) noexcept {
  return kSectionShardBase + static_cast<std::uint32_t>(shard) * kSectionsPerShard +
         static_cast<std::uint32_t>(k);
}

// What became of the state file at start.
struct RestoreStatus {
  enum class Outcome : std::uint8_t {
    Off,      // no detection.state_file
    Missing,  // no file yet: a first start
    Loaded,
    Refused,  // a valid file of another configuration, layout or program: not loaded
    Corrupt,  // damaged or unreadable: not loaded
  };

  Outcome outcome = Outcome::Off;
  std::string message;  // one line for the log
};

}  // namespace dnsmon::detect
