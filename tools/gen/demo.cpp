#include "gen/demo.hpp"

#include "gen/pcap_writer.hpp"
#include "gen/profile.hpp"
#include "gen/simple.hpp"

namespace dnsmon::gen {

std::vector<std::byte> make_demo_capture(std::uint64_t seed, std::uint64_t packets, double rate) {
  Options o;
  o.seed = seed;
  o.packets = packets;
  o.rate = rate;
  std::vector<std::byte> capture;
  PcapWriter out(capture);
  run_simple(o, out, nullptr);
  return capture;
}

}  // namespace dnsmon::gen
