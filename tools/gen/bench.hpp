// gen_pcap's bench profile: the realistic mix of docs/performance.md.
#pragma once

#include <memory>

#include "gen/facts.hpp"
#include "gen/generator.hpp"
#include "gen/pcap_writer.hpp"
#include "gen/profile.hpp"

namespace dnsmon::gen {

// The generator of the frames that o asks for (2,000,000 unless o.packets says otherwise), which
// tells truth, when given, about each. o, out and truth must outlive it.
std::unique_ptr<Generator> make_bench(const Options& o, PcapWriter& out, FactsSink* truth);

}  // namespace dnsmon::gen
