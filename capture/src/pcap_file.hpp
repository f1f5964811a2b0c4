// A fast path for replaying classic pcap files: the file is memory-mapped and its records are read
// in place, with no copy and no system call per record.
//
// PcapReader delivers exactly what libpcap 1.10.3 delivers for the same bytes when opened with
// pcap_open_offline_with_tstamp_precision(..., PCAP_TSTAMP_PRECISION_NANO, ...) and read with
// pcap_next_ex(): the same link type, snapshot length, records (time stamp, caplen, len, bytes)
// and, for a damaged file, the same frames before the same error message. Whatever it would not
// handle exactly like libpcap it declines at open() (nullopt), and the caller then reads the file
// with libpcap. tests/capture/pcap_file_test.cpp and tests/fuzz/pcap_reader_fuzz.cpp check this
// against libpcap itself.
//
// Reproduced: both byte orders; microsecond and nanosecond magic; versions 2.0 to 2.4, with the
//   caplen/len interchange of versions before 2.3 and the guess of version 2.3; the upper 6 bits
//   of the link-type field (FCS length and the like), which are dropped; a snapshot length of 0 or
//   above INT_MAX, which becomes 262144 (one in between is kept); records longer than the
//   snapshot, cut to it; the errors for a truncated record header or body and for a caplen above
//   262144 (which libpcap never reads, whatever the snapshot length). A second or fraction with
//   the top bit set is negative in a file in this host's byte order and positive in the other,
//   as libpcap widens them.
// Declined: pcapng and every other magic (Kuznetzov's modified format, Navtel's); a file shorter
//   than its 24-byte header; versions libpcap refuses and DG/UX's 543.0; link types other than
//   NULL, EN10MB, RAW, LOOP, LINUX_SLL, IPV4, IPV6 and LINUX_SLL2; a link-type field with any of
//   bits 16 to 25 set (libpcap versions disagree on them); LINUX_SLL and LINUX_SLL2 in the other
//   byte order than this host's (libpcap rewrites the CAN ID of SocketCAN frames in those).
//
// Thread-safety: a MappedFile is immutable once open and may be read from any thread. A PcapReader
//   is owned by one thread; several readers may share one mapping.
// Allocation: none (MappedFile::open() maps the file; the optionals hold their payload in place).
//   next() never throws either: an error message is written into a fixed buffer in the reader.
// A mapped file that another process truncates while it is read raises SIGBUS, as it does for any
// reader of a mapping; a capture being written is for libpcap (or a copy) instead.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace dnsmon::detail {

// A regular file mapped read-only (MAP_PRIVATE, MADV_SEQUENTIAL). An empty file is an empty span
// and maps nothing.
class MappedFile {
 public:
  // nullopt when the path is not a regular file (or is "-", libpcap's name for the standard input),
  // cannot be opened, or cannot be mapped; libpcap then opens it and reports the error itself.
  static std::optional<MappedFile> open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

  // Done with the bytes before offset: their pages leave this process (they stay in the page
  // cache), so a replay's resident memory does not grow with the file it reads. Reading them again
  // still works; it faults them in again.
  void release(std::size_t offset) noexcept;

 private:
  MappedFile(const std::byte* data, std::size_t size) noexcept : data_(data), size_(size) {}

  void unmap() noexcept;

  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t released_ = 0;  // pages before this offset were released
};

// Reads the records of a classic pcap file held in memory (a MappedFile, or a capture given as
// bytes), which must outlive the reader and every Record it returned.
class PcapReader {
 public:
  enum class Status : std::uint8_t { Frame, End, Error };

  struct Record {
    std::int64_t ts_ns = 0;  // seconds * 1e9 + nanoseconds, wrapped modulo 2^64 (damaged files)
    std::uint32_t caplen = 0;
    std::uint32_t len = 0;
    std::span<const std::byte> data;  // caplen bytes inside the file's bytes
  };

  // nullopt for anything the reader does not reproduce exactly (see the top of this file),
  // including every file libpcap would refuse to open.
  static std::optional<PcapReader> open(std::span<const std::byte> file) noexcept;

  // The DLT value pcap_datalink() returns for this file (DLT_RAW, not LINKTYPE_RAW, for 101).
  [[nodiscard]] int link_type() const noexcept { return link_type_; }

  // What pcap_snapshot() returns: the header's snapshot length, or 262144 if that is 0 or above
  // INT_MAX.
  [[nodiscard]] std::uint32_t snaplen() const noexcept { return snaplen_; }

  // Frame: `out` holds the next record. End: the file ended after a whole record (or the header).
  // Error: the file is damaged here; error() says how, in libpcap's words. End and Error are
  // final: later calls return the same status and leave `out` alone.
  Status next(Record& out) noexcept;

  // libpcap's message for the error next() returned; empty before that.
  [[nodiscard]] std::string_view error() const noexcept { return {error_.data(), error_length_}; }

 private:
  enum class LengthOrder : std::uint8_t { AsIs, Interchanged, Guess };

  explicit PcapReader(std::span<const std::byte> file) noexcept : file_(file) {}

  [[nodiscard]] std::uint32_t u32(std::size_t offset) const noexcept;
  Status fail(int length) noexcept;  // the message is in error_: snprintf's result

  std::span<const std::byte> file_;
  std::size_t pos_ = 0;
  std::uint32_t snaplen_ = 0;
  int link_type_ = 0;
  bool swapped_ = false;  // the file's byte order is not this host's
  bool nanoseconds_ = false;
  LengthOrder length_order_ = LengthOrder::AsIs;
  Status done_ = Status::Frame;  // Frame while records remain; then End or Error for good
  std::size_t error_length_ = 0;
  std::array<char, 256> error_{};  // PCAP_ERRBUF_SIZE
};

}  // namespace dnsmon::detail
