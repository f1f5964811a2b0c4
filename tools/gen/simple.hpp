// gen_pcap's simple profile: one UDP query and its response per transaction, over a dozen names.
#pragma once

#include <cstdint>

#include "gen/facts.hpp"
#include "gen/pcap_writer.hpp"
#include "gen/profile.hpp"

namespace dnsmon::gen {

// Writes the frames that o asks for (2000 unless o.packets says otherwise) and tells truth, when
// given, about each. Returns how many frames it wrote.
std::uint64_t run_simple(const Options& o, PcapWriter& out, FactsSink* truth);

}  // namespace dnsmon::gen
