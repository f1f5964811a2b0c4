// libFuzzer target, differential: the input is a capture file, read by PcapReader (capture.cpp's
// fast path for classic pcap files) and by libpcap (from memory through fmemopen, as
// PacketSource::open_memory does). Whenever PcapReader accepts the file, libpcap must open it too
// and deliver the same link type, snapshot length, records (time stamp, caplen, len, bytes) and
// the same end: a clean end, or the same error after the same frames. Anything else aborts.
//
// libpcap is not instrumented: coverage feedback comes from PcapReader only, and ASan sees its
// reads of the input, which libFuzzer sizes exactly.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include <pcap/pcap.h>

#include "dnsmon/capture/detail/pcap_file.hpp"
#include "dnsmon/capture/detail/pcap_handle.hpp"

#include "fuzz_check.hpp"

namespace {

using dnsmon::detail::PcapReader;
using Status = PcapReader::Status;

constexpr std::size_t kMaxInput = 1U << 20U;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) {
    return 0;
  }
  const auto file = std::as_bytes(std::span(data, size));
  auto reader = PcapReader::open(file);
  if (!reader) {
    return 0;  // declined: the caller reads it with libpcap, whatever libpcap makes of it
  }
  // fmemopen takes a non-const buffer but only reads it in "rb" mode.
  std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data), size, "rb");  // NOLINT: see above
  FUZZ_CHECK(f != nullptr);
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  const dnsmon::detail::PcapHandle p{
      pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err.data())};
  if (!p) {
    std::fprintf(stderr, "libpcap refuses a file PcapReader accepted: %s\n", err.data());
    std::fclose(f);
    std::abort();
  }
  FUZZ_CHECK(pcap_get_tstamp_precision(p.get()) == PCAP_TSTAMP_PRECISION_NANO);
  FUZZ_CHECK(pcap_datalink(p.get()) == reader->link_type());
  FUZZ_CHECK(static_cast<std::uint32_t>(pcap_snapshot(p.get())) == reader->snaplen());

  Status last = Status::Frame;
  while (last == Status::Frame) {
    pcap_pkthdr* h = nullptr;
    const u_char* bytes = nullptr;
    const int rc = pcap_next_ex(p.get(), &h, &bytes);
    PcapReader::Record r;
    const Status status = reader->next(r);
    last = status;
    if (rc == 1) {
      FUZZ_CHECK(status == Status::Frame);
      // As capture.cpp computes it from libpcap's header.
      const auto ts =
          static_cast<std::int64_t>(static_cast<std::uint64_t>(h->ts.tv_sec) * 1'000'000'000U +
                                    static_cast<std::uint64_t>(h->ts.tv_usec));
      FUZZ_CHECK(r.ts_ns == ts);
      FUZZ_CHECK(r.caplen == h->caplen);
      FUZZ_CHECK(r.len == h->len);
      FUZZ_CHECK(r.data.size() == r.caplen);
      FUZZ_CHECK(r.caplen <= reader->snaplen());
      FUZZ_CHECK(r.caplen == 0 || (r.data.data() >= file.data() &&
                                   r.data.data() + r.data.size() <= file.data() + file.size()));
      FUZZ_CHECK(r.caplen == 0 || std::memcmp(r.data.data(), bytes, r.caplen) == 0);
      continue;
    }
    FUZZ_CHECK(status != Status::Frame);
    if (rc == PCAP_ERROR_BREAK) {  // the end of the file
      FUZZ_CHECK(status == Status::End);
    } else {
      FUZZ_CHECK(rc == PCAP_ERROR);
      FUZZ_CHECK(status == Status::Error);
      if (reader->error() != std::string_view(pcap_geterr(p.get()))) {
        std::fprintf(stderr, "error \"%.*s\" != libpcap's \"%s\"\n",
                     static_cast<int>(reader->error().size()), reader->error().data(),
                     pcap_geterr(p.get()));
        std::abort();
      }
    }
  }
  // End and Error are final.
  PcapReader::Record r;
  FUZZ_CHECK(reader->next(r) == last);
  FUZZ_CHECK(reader->next(r) == last);
  return 0;
}
