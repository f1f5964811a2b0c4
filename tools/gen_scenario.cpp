// gen_scenario: writes Scenario A (docs/scenarios.md) for a seed: the nanosecond pcap and, next to
// it, the daemon configuration for its replay and the truth file of the acceptance checks.
//
//   gen_scenario [--seed S] --out NAME.pcap
//
// writes NAME.pcap, NAME.dnsmon.yaml and NAME.truth.json (a --out without the .pcap suffix gets
// the sidecar names from the whole path). Progress and a summary go to stderr. The same seed
// writes the same bytes.
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "dnsmon/common/errno_text.hpp"

#include "gen/pcap_writer.hpp"
#include "gen/scenario.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: gen_scenario [--seed S] --out NAME.pcap\n"
    "\n"
    "Writes Scenario A of the detection specification (196 logical days compressed 1440:1 into\n"
    "3 h 16 min of capture time, about 0.95 M packets) as a nanosecond pcap, and next to it\n"
    "NAME.dnsmon.yaml (dnsmon's configuration for the replay) and NAME.truth.json (parameters,\n"
    "realised facts and the expected detections A1-A16).\n"
    "\n"
    "  --seed S     master seed (default 20160504); the same seed writes the same bytes\n"
    "  --out FILE   the capture's path; the sidecars take its name without .pcap\n"
    "  --help       this text\n";

bool write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "gen_scenario: cannot write %s: %s\n", path.c_str(),
                 dnsmon::detail::errno_text(errno).c_str());
    return false;
  }
  std::fwrite(text.data(), 1, text.size(), f);
  const bool ok = std::ferror(f) == 0;
  if (std::fclose(f) != 0 || !ok) {
    std::fprintf(stderr, "gen_scenario: error writing %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = dnsmon::gen::ScenarioA::kDefaultSeed;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      return 0;
    }
    if ((arg == "--seed" || arg == "--out") && i + 1 < argc) {
      const std::string_view value = argv[++i];
      if (arg == "--out") {
        out = value;
        continue;
      }
      char* end = nullptr;
      errno = 0;
      seed = std::strtoull(argv[i], &end, 0);
      if (value.empty() || *end != '\0' || errno != 0 || value.front() == '-') {
        std::fprintf(stderr, "gen_scenario: --seed: not an unsigned 64-bit number: %s\n", argv[i]);
        return 2;
      }
      continue;
    }
    std::fprintf(stderr, "gen_scenario: %s: %s\n%s", argv[i],
                 arg.rfind("--", 0) == 0 ? "unknown option or missing value" : "unexpected",
                 kUsage.data());
    return 2;
  }
  if (out.empty()) {
    std::fprintf(stderr, "gen_scenario: --out is required\n%s", kUsage.data());
    return 2;
  }
  std::string name = out;
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".pcap") == 0) {
    name.resize(name.size() - 5);
  }

  const auto start = std::chrono::steady_clock::now();
  dnsmon::gen::ScenarioA scenario(seed);
  const auto& s = scenario.summary();
  std::fprintf(stderr, "gen_scenario: seed %llu: %llu queries, %llu packets\n",
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(s.queries),
               static_cast<unsigned long long>(s.packets));

  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "gen_scenario: cannot write %s: %s\n", out.c_str(),
                 dnsmon::detail::errno_text(errno).c_str());
    return 1;
  }
  {
    dnsmon::gen::PcapWriter writer(f, dnsmon::gen::PcapWriter::Precision::Nano);
    dnsmon::gen::ScenarioFrame frame;
    std::uint64_t written = 0;
    while (scenario.next(frame)) {
      writer.frame_ns(frame.ts_ns, frame.data, frame.len);
      if (++written % 200'000 == 0) {
        std::fprintf(stderr, "gen_scenario: %llu / %llu packets\n",
                     static_cast<unsigned long long>(written),
                     static_cast<unsigned long long>(s.packets));
      }
    }
  }
  const bool write_error = std::ferror(f) != 0;
  if (std::fclose(f) != 0 || write_error) {
    std::fprintf(stderr, "gen_scenario: error writing %s\n", out.c_str());
    return 1;
  }
  if (!write_text(name + ".dnsmon.yaml", scenario.config_yaml()) ||
      !write_text(name + ".truth.json", scenario.truth_json())) {
    return 1;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double span_s = static_cast<double>(s.last_ts_ns - s.first_ts_ns) / 1e9;
  const std::uint64_t covert_success =
      s.covert_success_a + s.covert_success_b + s.covert_success_others;
  std::fprintf(stderr,
               "gen_scenario: wrote %s (+ .dnsmon.yaml, .truth.json) in %.1f s\n"
               "  packets %llu, capture span %.0f s (%.1f logical days)\n"
               "  covert pair: successful lookups %llu (org A %llu, org B %llu, others %llu), "
               "failing after death org A %llu, org B %llu\n",
               out.c_str(), secs, static_cast<unsigned long long>(s.packets), span_s,
               span_s * 1440 / 86400, static_cast<unsigned long long>(covert_success),
               static_cast<unsigned long long>(s.covert_success_a),
               static_cast<unsigned long long>(s.covert_success_b),
               static_cast<unsigned long long>(s.covert_success_others),
               static_cast<unsigned long long>(s.covert_fail_a),
               static_cast<unsigned long long>(s.covert_fail_b));
  return 0;
}
