// The built-in demo: Scenario A of the detection specification (tools/gen/scenario.hpp, seed
// 20160504), made in memory on the first call and kept for the life of the process, with the
// configuration its sidecar gives (the `detection:` section that replays it).
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace dnsmon {

// The capture as a nanosecond pcap file in memory (about 0.95 M frames, 110 MB).
std::span<const std::byte> demo_capture() noexcept;

// The YAML configuration the scenario's sidecar holds.
std::string demo_config_yaml();

// The demo's pacing when --replay-speed is not given: 60 times capture time, one logical day of
// the scenario per second, 196 days in a little over 3 minutes.
inline constexpr double kDemoReplaySpeed = 60;

}  // namespace dnsmon
