// gen_pcap's flood profile: a random-subdomain attack over background traffic.
#pragma once

#include <memory>

#include "gen/facts.hpp"
#include "gen/generator.hpp"
#include "gen/pcap_writer.hpp"
#include "gen/profile.hpp"

namespace dnsmon::gen {

// The generator of the frames that o asks for (10,000,000 unless o.packets says otherwise), which
// tells truth, when given, about each. o, out and truth must outlive it.
std::unique_ptr<Generator> make_flood(const Options& o, PcapWriter& out, FactsSink* truth);

}  // namespace dnsmon::gen
