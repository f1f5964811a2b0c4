// The detection state every shard reaches (detection spec 3.4 "Global", 4.8, 4.12): what spans
// domains, and so shards. Shards take its mutex only at day boundaries and when a rare detector
// event needs it (a disappearance, a first success of a new domain), never per lookup event.
//
// Thread-safety: every member behind `mutex`. Allocation: construction, and the members'
// bounded tables.
#pragma once

#include <cstdint>
#include <mutex>

#include "dnsmon/detect.hpp"
#include "dnsmon/detect/detail/state_codec.hpp"

namespace dnsmon::detect {

class SharedState {
 public:
  explicit SharedState(const DetectOptions& /*options*/) {}

  // The checkpoint of this state (checkpoint.cpp writes it as one section of the state file).
  // EVERY member below must be written by save() and read back by load(), in the same order:
  // a member left out is lost at each restart. load() runs on a freshly constructed object before
  // any shard exists; it returns false when the bytes do not decode (too few, too many, a value
  // out of range), and the engine then discards the object and starts fresh, so load() need not
  // undo what it read. A change of what save() writes bumps kStateLayoutVersion (checkpoint.hpp).
  // Called with no shard running (at start, at shutdown, or with the shards paused): no lock.
  void save(StateSink& /*out*/) const {}

  [[nodiscard]] bool load(StateSource& in) { return in.done(); }

  std::mutex mutex;  // guards everything below
};

}  // namespace dnsmon::detect
