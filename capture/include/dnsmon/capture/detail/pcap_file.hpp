// A fast path for replaying classic pcap files: the file is read 512 KiB at a time and its
// records are read in place in that buffer, with no copy and no system call per record.
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
// Thread-safety: a ChunkedFile and a PcapReader are each owned by one thread.
// Allocation: a ChunkedFile allocates its buffer at its first read; nothing else allocates. next()
// never
//   throws either: an error message is written into a fixed buffer in the reader.
// A file that grows while it is read is read as far as it went when its end was reached; a file
// that shrinks ends in libpcap's "truncated dump file" error for the record it cut.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "dnsmon/common/counter.hpp"

namespace dnsmon::detail {

// A capture input read in chunks into one buffer, for a PcapReader that reads its records in
// place there: when a record runs past the end of the buffer the reader says NeedMore, and refill()
// moves the unread tail to the front and reads behind it. One read() per 512 KiB instead of
// libpcap's two stdio reads and a copy per record, and, unlike a memory mapping, a file that
// shrinks while it is read ends in a read error or a truncated record, not SIGBUS.
//
// The input is a regular file or a stream: a pipe (the standard input, `<(...)`, /dev/stdin), a
// FIFO, a character device. A stream is read as it comes (refill() returns with what one read()
// gave), and is waited for in poll(), 100 ms at a time, so that a stop request (watch()) ends any
// wait within that; its first bytes are read once, and whatever PcapReader declines is handed to
// libpcap through stream(), which gives libpcap those bytes first and then the rest of the input.
class ChunkedFile {
 public:
  // Larger than the largest record PcapReader accepts (16 + 262,144 bytes), and small enough that
  // what read() copied is still in the CPU's cache when the records are parsed: 512 KiB cost
  // 0.02 s less CPU than 1 MiB per 2M-packet replay (docs/performance.md).
  static constexpr std::size_t kBufferBytes = std::size_t{1} << 19U;
  static_assert(kBufferBytes > 16 + 262'144);
  static constexpr int kPollMilliseconds = 100;

  // A regular file with its first chunk read; nullopt when the path is not a regular file (or is
  // "-", libpcap's name for the standard input), or cannot be opened or read.
  static std::optional<ChunkedFile> open(const std::string& path);

  // Reads fd, a regular file or a stream, from where it stands; closes it at the end if owned.
  // Reads nothing yet (fill() does).
  ChunkedFile(int fd, bool owned);

  ChunkedFile(ChunkedFile&& other) noexcept;
  ChunkedFile& operator=(ChunkedFile&& other) noexcept;
  ChunkedFile(const ChunkedFile&) = delete;
  ChunkedFile& operator=(const ChunkedFile&) = delete;
  ~ChunkedFile();

  // Before a stream's data is waited for, before_wait runs (once per wait); while waiting, a stop
  // request ends the input: the read gives nothing more, and stopped() says so. Both must outlive
  // this object's reads.
  void watch(const std::stop_token* stop, std::function<void()> before_wait);

  // The bytes read and not yet given up by refill().
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {buffer_.get(), size_}; }

  // No more bytes follow those in bytes().
  [[nodiscard]] bool at_end() const noexcept { return eof_; }

  // A stop request ended a wait for the input.
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }

  [[nodiscard]] bool regular() const noexcept { return regular_; }

  // The file's size when it is a regular file, else 0.
  [[nodiscard]] std::uint64_t size_bytes() const noexcept { return file_size_; }

  // Adds every byte read from the input from now on to counter (may be null), after the bytes
  // read so far.
  void count_reads(SingleWriterCounter* counter) noexcept;

  // Reads until bytes() holds at least `count` bytes or the input ends. false on a read error,
  // with libpcap's message for it in error.
  bool fill(std::size_t count, std::string& error);

  // Drops bytes()[0, from), moves the rest to the front and reads: a regular file until the buffer
  // is full or the file ends, a stream until one read gave something. false on a read error, with
  // libpcap's message for it in error.
  bool refill(std::size_t from, std::string& error);

  // The whole input as a stdio stream for pcap_fopen_offline(): bytes() first, then the rest.
  // Closing the stream leaves this object and its descriptor alone; this object must outlive it.
  // Null if the stream cannot be made (errno says why).
  std::FILE* stream();

 private:
  // Like read(2), waiting for a stream: 0 at its end, and after a stop request (stopped_).
  ssize_t read_input(std::byte* to, std::size_t count) noexcept;
  bool wait_readable() noexcept;
  bool allocate() noexcept;
  static ssize_t stream_read(void* cookie, char* to, std::size_t count) noexcept;

  int fd_ = -1;
  bool owned_ = false;
  bool regular_ = false;
  std::uint64_t file_size_ = 0;
  std::uint64_t read_bytes_ = 0;  // from the input so far
  SingleWriterCounter* read_counter_ = nullptr;
  std::unique_ptr<std::byte[]> buffer_;  // allocated at the first read
  std::size_t size_ = 0;
  std::size_t handed_ = 0;  // bytes() given to stream()'s reader so far
  bool eof_ = false;
  bool stopped_ = false;
  const std::stop_token* stop_ = nullptr;
  std::function<void()> before_wait_;
};

// Reads the records of a classic pcap file held in memory (a capture given as bytes, or a
// ChunkedFile's buffer, chunk by chunk), which must outlive the reader and every Record it returned
// (a Record's bytes are valid until the next rebase()).
class PcapReader {
 public:
  // NeedMore only after more_follows(true): the data ends inside a record, nothing was consumed.
  enum class Status : std::uint8_t { Frame, End, Error, NeedMore };

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

  // Chunked reading (ChunkedFile): true while the file goes on past the data given, so a record
  // cut by the end of the data is not yet an error. consumed() is where the unread data starts;
  // rebase() continues on new data that starts there.
  void more_follows(bool more) noexcept { more_follows_ = more; }

  [[nodiscard]] std::size_t consumed() const noexcept { return pos_; }

  void rebase(std::span<const std::byte> data) noexcept {
    file_ = data;
    pos_ = 0;
  }

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
  bool more_follows_ = false;
  std::size_t error_length_ = 0;
  std::array<char, 256> error_{};  // PCAP_ERRBUF_SIZE
};

}  // namespace dnsmon::detail
