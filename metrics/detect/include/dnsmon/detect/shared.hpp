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
#include "dnsmon/detect/formulas.hpp"

namespace dnsmon::detect {

class SharedState {
 public:
  explicit SharedState(const DetectOptions& /*options*/) {}

  std::mutex mutex;  // guards everything below

  // covert_pair's daily cap (4.12 item 7): domains newly reaching medium on a logical day, over
  // all shards. Asked only when a domain first crosses medium.
  NewAlertCap covert_cap;
};

}  // namespace dnsmon::detect
