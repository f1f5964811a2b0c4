// Scenario A of docs/scenarios.md: a case-shaped synthetic capture of 196 logical days (one logical
// day per minute of capture time), with the daemon configuration that replays it and the truth
// file that acceptance checks read.
//
// Each component (background, covert pair, decoys) makes its list of lookup events with a random
// stream of its own, seeded with `seed XOR fnv1a64(component name)`; the events are merged by
// logical time and turned into frames one at a time, so a caller can replay the capture without
// holding it in memory. The same seed gives the same bytes on every platform.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace dnsmon::gen {

// FNV-1a, 64 bits.
constexpr std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;
  }
  return h;
}

// One frame: Ethernet, IPv4, UDP/53, a DNS query or response.
struct ScenarioFrame {
  std::int64_t ts_ns = 0;              // capture time, nanoseconds after the Unix epoch
  const std::uint8_t* data = nullptr;  // valid until the next call of next()
  std::size_t len = 0;
};

struct ScenarioSummary {
  std::uint64_t queries = 0;
  std::uint64_t packets = 0;     // queries and responses
  std::int64_t first_ts_ns = 0;  // capture time of the first and of the last frame
  std::int64_t last_ts_ns = 0;
  std::uint64_t covert_success_a = 0;  // successful lookups of the covert name per org
  std::uint64_t covert_success_b = 0;
  std::uint64_t covert_success_others = 0;
  std::uint64_t covert_fail_a = 0;  // failing lookups after the death
  std::uint64_t covert_fail_b = 0;
};

class ScenarioA {
 public:
  // Makes every component's events (about 0.5 M small records); frames are built by next().
  explicit ScenarioA(std::uint64_t seed);
  ~ScenarioA();
  ScenarioA(const ScenarioA&) = delete;
  ScenarioA& operator=(const ScenarioA&) = delete;
  ScenarioA(ScenarioA&&) = delete;
  ScenarioA& operator=(ScenarioA&&) = delete;

  // The next frame in time order; false after the last one. Starts again after rewind().
  bool next(ScenarioFrame& frame);
  void rewind();

  [[nodiscard]] const ScenarioSummary& summary() const;

  // The sidecars: `<name>.dnsmon.yaml` (the daemon's configuration for the replay, with its
  // `detection:` section last) and `<name>.truth.json` (parameters, realised facts, expected
  // detections).
  [[nodiscard]] std::string config_yaml() const;
  [[nodiscard]] std::string truth_json() const;

  static constexpr std::uint64_t kDefaultSeed = 20160504;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dnsmon::gen
