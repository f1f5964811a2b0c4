// The built-in demo capture: the simple profile of tools/gen (gen_pcap --seed 7 --packets 4000
// --rate 100), made in memory on the first call and kept for the life of the process.
#pragma once

#include <cstddef>
#include <span>

namespace dnsmon {
std::span<const std::byte> demo_capture() noexcept;
}  // namespace dnsmon
