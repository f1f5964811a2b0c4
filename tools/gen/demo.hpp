// The daemon's built-in demo capture, made in memory by the simple profile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dnsmon::gen {

// The capture that `gen_pcap --seed SEED --packets PACKETS --rate RATE` writes, byte for byte:
// pcap file header and records, in memory.
std::vector<std::byte> make_demo_capture(std::uint64_t seed, std::uint64_t packets, double rate);

}  // namespace dnsmon::gen
