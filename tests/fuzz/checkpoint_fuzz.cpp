// libFuzzer target: the detection engine's state loader (checkpoint.cpp), from the file on disk to
// the tables, with the engine running on what it loaded.
//
// Byte 0 picks the input's shape:
//   even: the rest is a whole state file (the container's checks come first);
//   odd:  edits of a valid checkpoint of a small engine (made once per process), re-encoded with
//         correct CRCs so that they reach the engine's own checks: repeated (u8 section index,
//         u32 offset, u8 xor) triples; a section index past the last one replaces the engine
//         section's payload with the rest of the input.
// The loader must never crash and never half-load: a loaded engine runs a day of events (the
// sanitizers watch the tables it loaded), a refused one is fresh, and either way it says why in
// one line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <unistd.h>
#include <vector>

#include "dnsmon/detect/checkpoint.hpp"
#include "dnsmon/detect/engine.hpp"
#include "dnsmon/detect/state_file.hpp"

#include "detect_messages.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace dnsmon;
using namespace dnsmon::detect;

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kOrigin = std::int64_t{1459728000} * kS;  // 2016-04-04T00:00:00Z

std::string g_work_dir;  // removed at exit

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "dnsmon-ckpt-fuzz-XXXXXX").string();
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    g_work_dir = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(g_work_dir, ec);
    });
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

DetectOptions options() {
  DetectOptions o;
  o.enabled = true;
  o.time.compression = 1440;
  o.time.origin = "2016-04-04T00:00:00Z";
  o.time.origin_ns = kOrigin;
  o.memory = {16, 4, 2, 64, 1024};
  o.exports.watchlist = {"watched.example"};
  o.state_file = (work_dir() / "detect.state").string();
  return o;
}

std::shared_ptr<const detail::PublicSuffixList> suffixes() {
  static const auto list = detail::PublicSuffixList::from_text("com\nexample\n", "fuzz list");
  return list;
}

DnsMessage query(const std::string& name, std::uint8_t net, std::int64_t ts) {
  return test::a_message(name, {203, 0, net, 7}, ts);
}

// A day of lookups: a concentrated pair, the watched domain and fillers.
void feed(Engine& e, int day) {
  std::int64_t t = kOrigin + day * 60 * kS + kS;
  for (int n = 0; n < 24; ++n) {
    t += kS / 10;
    const std::string name = n % 3 == 0   ? "www.pair.example"
                             : n % 3 == 1 ? "watched.example"
                                          : "f" + std::to_string(n) + ".example";
    e.port(0).on_message(query(name, static_cast<std::uint8_t>(n % 2), t), -1);
  }
}

// The sections of a valid checkpoint with entries in every tier.
const StateFile& reference() {
  static const StateFile file = [] {
    const DetectOptions o = options();
    std::filesystem::remove(o.state_file);
    {
      Engine e(o, 1, 1, suffixes(), nullptr, false, 3);
      e.start();
      for (int day = 0; day < 20; ++day) {
        feed(e, day);
      }
      e.finish();
    }
    StateLoadResult r = load_state_file(o.state_file);
    FUZZ_CHECK(r.ok());
    return r.file;
  }();
  return file;
}

void write_file(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  FUZZ_CHECK(out.good());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const DetectOptions o = options();
  const StateFile& ref = reference();
  std::filesystem::remove(o.state_file + ".refused");
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  if ((data[0] & 1U) == 0) {
    write_file(o.state_file, in);
  } else {
    StateFile file = ref;
    std::size_t at = 0;
    while (at < in.size()) {
      const auto section = std::to_integer<std::size_t>(in[at]);
      if (section >= file.sections.size()) {
        for (auto& s : file.sections) {
          if (s.id == kSectionEngine) {
            s.payload.assign(in.begin() + static_cast<std::ptrdiff_t>(at + 1), in.end());
          }
        }
        break;
      }
      if (in.size() - at < 6) {
        break;
      }
      std::uint32_t offset = 0;
      std::memcpy(&offset, in.data() + at + 1, 4);
      auto& payload = file.sections[section].payload;
      if (!payload.empty()) {
        payload[offset % payload.size()] ^= in[at + 5];
      }
      at += 6;
    }
    std::vector<StateSectionView> views;
    for (const auto& s : file.sections) {
      views.push_back({s.id, s.payload});
    }
    std::vector<std::byte> bytes;
    FUZZ_CHECK(encode_state_file(file.header, views, bytes).ok());
    write_file(o.state_file, bytes);
  }

  Engine engine(o, 1, 1, suffixes(), nullptr, false, 3);
  const RestoreStatus& st = engine.restore_status();
  FUZZ_CHECK(st.outcome != RestoreStatus::Outcome::Off);
  FUZZ_CHECK(!st.message.empty() && st.message.find('\n') == std::string::npos);
  if (st.outcome != RestoreStatus::Outcome::Loaded) {
    const DetectionSnapshot s = engine.snapshot();
    FUZZ_CHECK(s.entries[0] == 0 && s.entries[1] == 0 && s.entries[2] == 0);
    FUZZ_CHECK(s.seen_filter_entries == 0);
  }
  // Loaded or fresh, the engine runs: a day of events, the day boundaries, a checkpoint.
  engine.start();
  feed(engine, 25);
  feed(engine, 26);
  engine.finish();
  FUZZ_CHECK(!engine.final_checkpoint_failed());
  return 0;
}
