// Writes a capture in the classic pcap format, as libpcap's pcap_dump() writes it: microsecond
// timestamps (or nanosecond ones, magic 0xA1B23C4D, when asked), Ethernet frames, a snapshot
// length of 65535, and the file header's and the records' fields in host byte order (the magic
// number tells readers which). To a file or into memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace dnsmon::gen {

class PcapWriter {
 public:
  // A record: seconds, microseconds, captured length and length on the wire, then the frame.
  static constexpr std::size_t kRecordHeader = 16;

  // Both write the file header straight away. The writer does not own file or memory, which must
  // outlive it; errors writing file are left in its error indicator (std::ferror).
  enum class Precision { Micro, Nano };

  explicit PcapWriter(std::FILE* file, Precision precision = Precision::Micro);
  explicit PcapWriter(std::vector<std::byte>& memory, Precision precision = Precision::Micro);

  // One record: the frame's bytes, whole, stamped ts_us microseconds after the epoch.
  void frame(std::int64_t ts_us, const std::uint8_t* bytes, std::size_t len);

  // One record of a nanosecond capture: ts_ns nanoseconds after the epoch.
  void frame_ns(std::int64_t ts_ns, const std::uint8_t* bytes, std::size_t len);

  // Records already laid out by the caller (record_header() and the frame, one after another).
  void records(const std::uint8_t* data, std::size_t len);

  // Lays out the header of a record of len bytes at `at`, as frame() writes it.
  static void record_header(std::uint8_t* at, std::int64_t ts_us, std::size_t len);

 private:
  void put(const void* data, std::size_t len);

  std::FILE* file_ = nullptr;
  std::vector<std::byte>* memory_ = nullptr;
};

}  // namespace dnsmon::gen
