#include "demo_capture.hpp"

#include <vector>

#include "gen/pcap_writer.hpp"
#include "gen/scenario.hpp"

namespace dnsmon {
namespace {

struct Demo {
  std::vector<std::byte> capture;
  std::string config;
};

// About a second of work in an optimised build. Running out of memory here ends the program.
const Demo& demo() noexcept {
  static const Demo d = [] {
    Demo out;
    gen::ScenarioA scenario(gen::ScenarioA::kDefaultSeed);
    {
      gen::PcapWriter writer(out.capture, gen::PcapWriter::Precision::Nano);
      gen::ScenarioFrame frame;
      while (scenario.next(frame)) {
        writer.frame_ns(frame.ts_ns, frame.data, frame.len);
      }
    }
    out.config = scenario.config_yaml();
    return out;
  }();
  return d;
}

}  // namespace

std::span<const std::byte> demo_capture() noexcept {
  return demo().capture;
}

std::string demo_config_yaml() {
  return demo().config;
}

}  // namespace dnsmon
