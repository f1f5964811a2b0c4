// The embedded demo capture: generated at build time by tools/gen_pcap (see daemon/CMakeLists.txt).
#pragma once

#include <cstddef>
#include <span>

namespace dnsmon {
std::span<const std::byte> demo_capture() noexcept;
}  // namespace dnsmon
