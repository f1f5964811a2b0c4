// The benchmark mix of tools/gen_pcap --profile bench, generated into a temporary file and held in
// memory as frames ready for the ring, for the hot-path benchmark and the allocation test.
//
// The including target defines DNSMON_GEN_PCAP as the path of the gen_pcap binary.
// Thread-safety: load once, before any measured thread starts (it runs a child process).
// Allocation: while loading only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <pcap/pcap.h>

#include "dnsmon/ring.hpp"

namespace dnsmon::bench {

struct CapturedFrame {
  FrameHeader header;
  std::size_t offset = 0;  // into BenchCapture::bytes
};

struct BenchCapture {
  std::vector<std::byte> bytes;
  std::vector<CapturedFrame> frames;

  [[nodiscard]] std::span<const std::byte> data(const CapturedFrame& f) const {
    return std::span<const std::byte>(bytes).subspan(f.offset, f.header.cap_len);
  }
};

// Runs gen_pcap for `packets` frames of the bench profile and reads them back. Throws
// std::runtime_error when the generator or libpcap fails.
inline BenchCapture load_bench_capture(std::size_t packets, std::uint64_t seed) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("dnsmon_bench_" + std::to_string(::getpid()) + ".pcap");
  const std::string command = std::string(DNSMON_GEN_PCAP) + " --profile bench --seed " +
                              std::to_string(seed) + " --packets " + std::to_string(packets) +
                              " --out " + path.string() + " 2>/dev/null";
  if (std::system(command.c_str()) != 0) {  // NOLINT(concurrency-mt-unsafe): no thread yet
    throw std::runtime_error("cannot run " + command);
  }
  BenchCapture c;
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  pcap_t* p = pcap_open_offline(path.c_str(), err.data());
  if (p == nullptr) {
    std::filesystem::remove(path);
    throw std::runtime_error(std::string("cannot read the generated capture: ") + err.data());
  }
  pcap_pkthdr* h = nullptr;
  const u_char* d = nullptr;
  while (pcap_next_ex(p, &h, &d) == 1) {
    CapturedFrame f;
    f.header.ts_ns = static_cast<std::int64_t>(h->ts.tv_sec) * 1'000'000'000 +
                     static_cast<std::int64_t>(h->ts.tv_usec) * 1'000;
    f.header.wire_len = h->len;
    f.header.cap_len = h->caplen;
    f.header.link_type = static_cast<std::uint16_t>(pcap_datalink(p));
    f.offset = c.bytes.size();
    const auto* first = reinterpret_cast<const std::byte*>(d);  // NOLINT: libpcap's bytes
    c.bytes.insert(c.bytes.end(), first, first + h->caplen);
    c.frames.push_back(f);
  }
  pcap_close(p);
  std::filesystem::remove(path);
  return c;
}

}  // namespace dnsmon::bench
