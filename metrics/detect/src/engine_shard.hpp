// Engine::Shard and Engine::PendingRestore, shared by engine.cpp and checkpoint.cpp.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "dnsmon/detect/engine.hpp"

namespace dnsmon::detect {

// A shard: its rings (one per worker), its doorbell and its counters. The counters have one
// writer, the shard's thread.
struct Engine::Shard {
  std::vector<std::unique_ptr<SpscRing<LookupEvent>>> rings;  // one per worker
  std::unique_ptr<DomainState> state;
  // The settings the shard's tables use (their options live in it) and their generation.
  std::shared_ptr<const Settings> settings;
  std::uint64_t generation = 0;
  std::size_t index = 0;  // its position among the shards (its AggregateMonitor::ShardHour)
  std::vector<AggregateMonitor::Transition> transitions;  // scratch of an hour's hand-over
  detail::HyperLogLog clients_today{14};
  Doorbell bell;
  std::int64_t day = LogicalClock::kUnset;  // the logical day of the newest event
  std::atomic<std::int64_t> logical_ns{0};
  SingleWriterCounter days_closed;
  std::array<std::array<SingleWriterCounter, kSeverityLabels>, kDetectors> events;
  // What the shard published at its last day boundary (the exporter reads it).
  std::mutex published_mutex;
  PublishedDomains published;
  PublishedDomains scratch;  // filled by the shard thread, then swapped in
};

// A state file read and validated against the configuration (checkpoint.cpp), waiting for the
// constructor to build the shards it goes into. The seed keys the domain and organisation hashes
// of the tables, so the engine takes the file's; the origin replaces the configured one (the
// same, or first_packet).
struct Engine::PendingRestore {
  StateFile file;
  std::uint64_t seed = 0;
  std::optional<std::int64_t> origin;
  std::unique_ptr<SharedState> shared;
};

}  // namespace dnsmon::detect
