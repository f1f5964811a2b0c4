#include "gen/pcap_writer.hpp"

#include <array>
#include <cstring>

namespace dnsmon::gen {
namespace {

// The file header: magic number (microsecond or nanosecond timestamps), version 2.4, GMT offset
// and accuracy 0, snapshot length, link type 1 (Ethernet).
void file_header(std::array<std::uint8_t, 24>& h, PcapWriter::Precision precision) {
  const std::uint32_t magic = precision == PcapWriter::Precision::Nano ? 0xA1B23C4DU : 0xA1B2C3D4U;
  const std::uint16_t major = 2, minor = 4;
  const std::int32_t zone = 0;
  const std::uint32_t sigfigs = 0, snaplen = 65535, linktype = 1;
  std::memcpy(h.data(), &magic, 4);
  std::memcpy(h.data() + 4, &major, 2);
  std::memcpy(h.data() + 6, &minor, 2);
  std::memcpy(h.data() + 8, &zone, 4);
  std::memcpy(h.data() + 12, &sigfigs, 4);
  std::memcpy(h.data() + 16, &snaplen, 4);
  std::memcpy(h.data() + 20, &linktype, 4);
}

}  // namespace

PcapWriter::PcapWriter(std::FILE* file, Precision precision) : file_(file) {
  std::array<std::uint8_t, 24> h{};
  file_header(h, precision);
  put(h.data(), h.size());
}

PcapWriter::PcapWriter(std::vector<std::byte>& memory, Precision precision) : memory_(&memory) {
  std::array<std::uint8_t, 24> h{};
  file_header(h, precision);
  put(h.data(), h.size());
}

void PcapWriter::record_header(std::uint8_t* at, std::int64_t ts_us, std::size_t len) {
  const std::array<std::uint32_t, 4> record{
      static_cast<std::uint32_t>(ts_us / 1'000'000), static_cast<std::uint32_t>(ts_us % 1'000'000),
      static_cast<std::uint32_t>(len), static_cast<std::uint32_t>(len)};
  std::memcpy(at, record.data(), kRecordHeader);
}

void PcapWriter::frame(std::int64_t ts_us, const std::uint8_t* bytes, std::size_t len) {
  std::array<std::uint8_t, kRecordHeader> h{};
  record_header(h.data(), ts_us, len);
  put(h.data(), h.size());
  put(bytes, len);
}

void PcapWriter::frame_ns(std::int64_t ts_ns, const std::uint8_t* bytes, std::size_t len) {
  const std::array<std::uint32_t, 4> record{static_cast<std::uint32_t>(ts_ns / 1'000'000'000),
                                            static_cast<std::uint32_t>(ts_ns % 1'000'000'000),
                                            static_cast<std::uint32_t>(len),
                                            static_cast<std::uint32_t>(len)};
  put(record.data(), kRecordHeader);
  put(bytes, len);
}

void PcapWriter::records(const std::uint8_t* data, std::size_t len) {
  put(data, len);
}

void PcapWriter::put(const void* data, std::size_t len) {
  if (file_ != nullptr) {
    std::fwrite(data, 1, len, file_);
    return;
  }
  if (memory_ == nullptr) {
    return;  // neither a file nor memory: nothing to write to
  }
  const auto* p = static_cast<const std::byte*>(data);
  memory_->insert(memory_->end(), p, p + len);
}

}  // namespace dnsmon::gen
