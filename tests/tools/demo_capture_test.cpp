// The demo capture that the daemon makes in memory (tools/gen, dnsmon::demo_gen) is the capture
// gen_pcap writes for the same options, byte for byte, and libpcap reads it as the file it stands
// for. tests/tools/gen_pcap_truth_test.sh pins gen_pcap's bytes for the demo's options.
//
// The target defines DNSMON_GEN_PCAP as the path of the gen_pcap binary.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

#include <pcap/pcap.h>

#include <catch2/catch.hpp>

#include "gen/demo.hpp"
#include "gen/pcap_writer.hpp"

namespace {

std::vector<std::byte> gen_pcap(const std::string& options) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("dnsmon_demo_" + std::to_string(::getpid()) + ".pcap");
  const std::string command =
      std::string(DNSMON_GEN_PCAP) + " " + options + " --out " + path.string() + " 2>/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);  // NOLINT(concurrency-mt-unsafe): one thread
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> chars((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  std::vector<std::byte> bytes(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) {
    bytes[i] = static_cast<std::byte>(chars[i]);
  }
  return bytes;
}

}  // namespace

TEST_CASE("the demo made in memory is gen_pcap's capture for the same options", "[demo]") {
  const auto demo = dnsmon::gen::make_demo_capture(7, 4000, 100);
  CHECK(demo == gen_pcap("--seed 7 --packets 4000 --rate 100"));
  CHECK(dnsmon::gen::make_demo_capture(3, 25, 1000) == gen_pcap("--seed 3 --packets 25"));
  CHECK(dnsmon::gen::make_demo_capture(7, 4000, 100) == demo);  // the same every time
}

TEST_CASE("libpcap reads the demo made in memory: Ethernet, microseconds, every frame whole",
          "[demo]") {
  auto demo = dnsmon::gen::make_demo_capture(7, 4000, 100);
  std::FILE* file = fmemopen(demo.data(), demo.size(), "rb");
  REQUIRE(file != nullptr);
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  pcap_t* p =
      pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_MICRO, err.data());
  REQUIRE(p != nullptr);  // owns file from here on
  CHECK(pcap_datalink(p) == DLT_EN10MB);
  CHECK(pcap_snapshot(p) == 65535);
  pcap_pkthdr* h = nullptr;
  const u_char* d = nullptr;
  std::uint64_t frames = 0, whole = 0;
  std::int64_t first_us = -1, last_us = 0;
  while (pcap_next_ex(p, &h, &d) == 1) {
    ++frames;
    whole += h->caplen == h->len && h->len >= 14 + 20 + 8 + 12 ? 1 : 0;
    last_us = static_cast<std::int64_t>(h->ts.tv_sec) * 1'000'000 + h->ts.tv_usec;
    first_us = first_us < 0 ? last_us : first_us;
  }
  pcap_close(p);
  CHECK(frames == 4000);
  CHECK(whole == frames);
  CHECK(first_us == 1'767'225'600'000'000);  // 2026-01-01T00:00:00Z
  CHECK(last_us - first_us == 39'990'000);   // 100 frames a second
}

TEST_CASE("the pcap writer puts the same bytes in memory as in a file", "[demo]") {
  std::vector<std::byte> memory;
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  {
    dnsmon::gen::PcapWriter to_memory(memory);
    dnsmon::gen::PcapWriter to_file(file);
    const std::array<std::uint8_t, 5> frame{1, 2, 3, 4, 5};
    to_memory.frame(1'500'000, frame.data(), frame.size());
    to_file.frame(1'500'000, frame.data(), frame.size());
    std::array<std::uint8_t, dnsmon::gen::PcapWriter::kRecordHeader + 2> record{};
    dnsmon::gen::PcapWriter::record_header(record.data(), 2'000'001, 2);
    record[dnsmon::gen::PcapWriter::kRecordHeader] = 0xAB;
    to_memory.records(record.data(), record.size());
    to_file.records(record.data(), record.size());
  }
  REQUIRE(std::fflush(file) == 0);
  std::vector<std::byte> written(static_cast<std::size_t>(std::ftell(file)));
  std::rewind(file);
  REQUIRE(std::fread(written.data(), 1, written.size(), file) == written.size());
  std::fclose(file);
  CHECK(written == memory);
  REQUIRE(memory.size() == 24 + 16 + 5 + 16 + 2);
  std::uint32_t magic = 0, seconds = 0, micros = 0;
  std::memcpy(&magic, memory.data(), 4);
  std::memcpy(&seconds, memory.data() + 24 + 16 + 5, 4);
  std::memcpy(&micros, memory.data() + 24 + 16 + 5 + 4, 4);
  CHECK(magic == 0xA1B2C3D4U);
  CHECK(seconds == 2);
  CHECK(micros == 1);
}
