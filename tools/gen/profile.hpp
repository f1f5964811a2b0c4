// What gen_pcap's profiles share: the options of a run and the version of what they write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace dnsmon::gen {

// Bump when the bench profile's output changes for the same options: tools/bench.sh regenerates
// its cached capture when this differs.
inline constexpr int kGeneratorVersion = 2;

enum class Profile : std::uint8_t { Simple, Bench, Flood };

struct Options {
  std::string out;  // "-" is standard output
  std::string cpp_out;
  std::string truth;
  Profile profile = Profile::Simple;
  std::optional<std::uint64_t> packets;  // simple: 2000, bench: 2,000,000, flood: 10,000,000
  std::uint64_t seed = 1;
  // Frames per second of packet time; simple: 1000, bench: 100,000, flood: 1,000,000.
  std::optional<double> rate;
  std::optional<double> ipv6_pct, vlan_pct, edns_pct, nxdomain_pct, servfail_pct, tcp_pct;
  double mixed_case_pct = 0;      // share of queries spelled in DNS 0x20 mixed case
  std::uint32_t clients = 5000;   // bench: client hosts (5,000); flood: addresses (100,000)
  std::uint32_t domains = 20000;  // bench: registrable domains
};

}  // namespace dnsmon::gen
