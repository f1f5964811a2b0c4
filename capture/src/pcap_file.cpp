#include "dnsmon/capture/detail/pcap_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <new>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include <pcap/dlt.h>

#include "dnsmon/common/errno_text.hpp"

namespace dnsmon::detail {
namespace {

// The magic numbers libpcap's pcap_check_header() accepts, less Kuznetzov's modified format.
constexpr std::uint32_t kMagicMicroseconds = 0xa1b2c3d4U;
constexpr std::uint32_t kMagicNanoseconds = 0xa1b23c4dU;
constexpr std::size_t kFileHeaderBytes = 24;
constexpr std::size_t kRecordHeaderBytes = 16;
// MAXIMUM_SNAPLEN, which libpcap's max_snaplen_for_dlt() returns for every link type read here.
constexpr std::uint32_t kMaxSnaplen = 262144;
constexpr std::uint32_t kIntMax = 0x7fffffffU;
// Bits of the link-type field that no libpcap version keeps: LT_LINKTYPE_EXT() is 0xFC000000
// (FCS length and the like) in 1.10, 0xFFFF0000 in older versions. A field with any of the bits in
// between set would be read differently by the two, so it is declined.
constexpr std::uint32_t kLinkTypeExtension = 0xFC000000U;
constexpr std::uint32_t kLinkTypeUncertain = 0x03FF0000U;

std::uint32_t bswap32(std::uint32_t v) noexcept {
  return __builtin_bswap32(v);
}

std::uint16_t bswap16(std::uint16_t v) noexcept {
  return __builtin_bswap16(v);
}

// libpcap's linktype_to_dlt() for the link types read here, and -1 for the others.
int dlt_of(std::uint32_t linktype) noexcept {
  switch (linktype) {
    case 0:
      return DLT_NULL;
    case 1:
      return DLT_EN10MB;
    case 101:  // LINKTYPE_RAW
      return DLT_RAW;
    case 108:  // LINKTYPE_LOOP; DLT_LOOP is 108 too except on OpenBSD
      return DLT_LOOP;
    case 113:
      return DLT_LINUX_SLL;
    case 228:
      return DLT_IPV4;
    case 229:
      return DLT_IPV6;
    case 276:
      return DLT_LINUX_SLL2;
    default:
      return -1;
  }
}

// libpcap reads the record's seconds and fraction into bpf_int32 fields and widens them to time_t
// and suseconds_t. In the host's byte order they are sign-extended; in the other, its SWAPLONG()
// works on u_int, so they are zero-extended. A microsecond fraction is then multiplied by 1000 (in
// 64 bits: no overflow). The sum is taken modulo 2^64, as capture.cpp does with libpcap's header.
std::int64_t widen(std::uint32_t field, bool swapped) noexcept {
  return swapped ? static_cast<std::int64_t>(field)
                 : static_cast<std::int64_t>(static_cast<std::int32_t>(field));
}

std::int64_t record_time_ns(std::uint32_t sec, std::uint32_t frac, bool nanoseconds,
                            bool swapped) noexcept {
  const std::int64_t s = widen(sec, swapped);
  const std::int64_t f = nanoseconds ? widen(frac, swapped) : widen(frac, swapped) * 1000;
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(s) * 1'000'000'000U +
                                   static_cast<std::uint64_t>(f));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ChunkedFile

std::optional<ChunkedFile> ChunkedFile::open(const std::string& path) {
  if (path == "-") {
    return std::nullopt;  // libpcap reads the standard input for "-", whatever the directory holds
  }
  // stat() first: opening a FIFO or a device could block, or have side effects.
  struct stat st = {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // NOLINT: POSIX varargs
  if (fd < 0) {
    return std::nullopt;
  }
  ChunkedFile file(fd, true);
  std::string error;
  if (!file.refill(0, error)) {
    return std::nullopt;  // libpcap reads it again and reports the error in its words
  }
  return file;
}

ChunkedFile::ChunkedFile(int fd, bool owned) : fd_(fd), owned_(owned) {
  struct stat st = {};
  regular_ = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  file_size_ = regular_ ? static_cast<std::uint64_t>(st.st_size) : 0;
}

void ChunkedFile::count_reads(SingleWriterCounter* counter) noexcept {
  read_counter_ = counter;
  if (counter != nullptr) {
    counter->add(read_bytes_);
  }
}

ChunkedFile::ChunkedFile(ChunkedFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      owned_(other.owned_),
      regular_(other.regular_),
      file_size_(other.file_size_),
      read_bytes_(other.read_bytes_),
      read_counter_(std::exchange(other.read_counter_, nullptr)),
      buffer_(std::move(other.buffer_)),
      size_(std::exchange(other.size_, 0)),
      handed_(std::exchange(other.handed_, 0)),
      eof_(other.eof_),
      stopped_(other.stopped_),
      stop_(other.stop_),
      before_wait_(std::move(other.before_wait_)) {
}

ChunkedFile& ChunkedFile::operator=(ChunkedFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0 && owned_) {
      ::close(fd_);
    }
    fd_ = std::exchange(other.fd_, -1);
    owned_ = other.owned_;
    regular_ = other.regular_;
    file_size_ = other.file_size_;
    read_bytes_ = other.read_bytes_;
    read_counter_ = std::exchange(other.read_counter_, nullptr);
    buffer_ = std::move(other.buffer_);
    size_ = std::exchange(other.size_, 0);
    handed_ = std::exchange(other.handed_, 0);
    eof_ = other.eof_;
    stopped_ = other.stopped_;
    stop_ = other.stop_;
    before_wait_ = std::move(other.before_wait_);
  }
  return *this;
}

ChunkedFile::~ChunkedFile() {
  if (fd_ >= 0 && owned_) {
    ::close(fd_);
  }
}

void ChunkedFile::watch(const std::stop_token* stop, std::function<void()> before_wait) {
  stop_ = stop;
  before_wait_ = std::move(before_wait);
}

bool ChunkedFile::allocate() noexcept {
  if (!buffer_) {
    buffer_.reset(new (std::nothrow) std::byte[kBufferBytes]);  // NOLINT: uninitialised on purpose
  }
  return buffer_ != nullptr;
}

bool ChunkedFile::wait_readable() noexcept {
  pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, 0) != 0) {
    return true;  // readable, at its end, or in error: read() tells which
  }
  if (before_wait_) {
    before_wait_();
  }
  while (stop_ == nullptr || !stop_->stop_requested()) {
    const int n = ::poll(&p, 1, kPollMilliseconds);
    if (n > 0 || (n < 0 && errno != EINTR)) {
      return true;
    }
  }
  stopped_ = true;
  return false;
}

ssize_t ChunkedFile::read_input(std::byte* to, std::size_t count) noexcept {
  for (;;) {
    if (stopped_ || (!regular_ && !wait_readable())) {
      return 0;
    }
    const ssize_t n = ::read(fd_, to, count);
    if (n > 0) {
      read_bytes_ += static_cast<std::uint64_t>(n);
      if (read_counter_ != nullptr) {
        read_counter_->add(static_cast<std::uint64_t>(n));
      }
    }
    if (n >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      return n;
    }
  }
}

bool ChunkedFile::fill(std::size_t count, std::string& error) {
  count = std::min(count, kBufferBytes);
  while (size_ < count && !eof_) {
    if (!refill(0, error)) {
      return false;
    }
  }
  return true;
}

bool ChunkedFile::refill(std::size_t from, std::string& error) {
  if (!allocate()) {
    error = "error reading dump file: cannot allocate the read buffer";
    return false;
  }
  from = std::min(from, size_);
  std::memmove(buffer_.get(), buffer_.get() + from, size_ - from);
  size_ -= from;
  const std::size_t before = size_;
  while (size_ < kBufferBytes && !eof_ && (regular_ || size_ == before)) {
    const ssize_t n = read_input(buffer_.get() + size_, kBufferBytes - size_);
    if (n > 0) {
      size_ += static_cast<std::size_t>(n);
    } else if (n == 0) {
      eof_ = true;  // the end, or a stop request (stopped())
    } else {
      error =
          std::string("error reading dump file: ") + detail::errno_text(errno);  // libpcap's words
      return false;
    }
  }
  return true;
}

ssize_t ChunkedFile::stream_read(void* cookie, char* to, std::size_t count) noexcept {
  auto& self = *static_cast<ChunkedFile*>(cookie);
  auto* out = reinterpret_cast<std::byte*>(to);  // NOLINT: stdio's buffer as bytes
  if (self.handed_ < self.size_) {
    const std::size_t n = std::min(count, self.size_ - self.handed_);
    std::memcpy(out, self.buffer_.get() + self.handed_, n);
    self.handed_ += n;
    return static_cast<ssize_t>(n);
  }
  if (self.eof_) {
    return 0;
  }
  const ssize_t n = self.read_input(out, count);
  if (n == 0) {
    self.eof_ = true;
  }
  return n;
}

std::FILE* ChunkedFile::stream() {
  const cookie_io_functions_t functions{
      .read = &ChunkedFile::stream_read,
      .write = nullptr,
      .seek = nullptr,
      .close = nullptr,  // the descriptor is this object's
  };
  return ::fopencookie(this, "rb", functions);
}

// ---------------------------------------------------------------------------------------------
// PcapReader

std::uint32_t PcapReader::u32(std::size_t offset) const noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, file_.data() + offset, sizeof v);
  return swapped_ ? bswap32(v) : v;
}

std::optional<PcapReader> PcapReader::open(std::span<const std::byte> file) noexcept {
  if (file.size() < kFileHeaderBytes) {
    return std::nullopt;  // libpcap: not a capture, or a truncated file header
  }
  PcapReader r(file);
  std::uint32_t magic = 0;
  std::memcpy(&magic, file.data(), sizeof magic);
  if (magic != kMagicMicroseconds && magic != kMagicNanoseconds) {
    magic = bswap32(magic);
    if (magic != kMagicMicroseconds && magic != kMagicNanoseconds) {
      return std::nullopt;  // pcapng, Kuznetzov's format, or no capture at all
    }
    r.swapped_ = true;
  }
  r.nanoseconds_ = magic == kMagicNanoseconds;

  std::uint16_t major = 0;
  std::uint16_t minor = 0;
  std::memcpy(&major, file.data() + 4, sizeof major);
  std::memcpy(&minor, file.data() + 6, sizeof minor);
  if (r.swapped_) {
    major = bswap16(major);
    minor = bswap16(minor);
  }
  // libpcap accepts 2.0 to 2.4 and DG/UX's 543.0; the latter is left to it.
  if (major != 2 || minor > 4) {
    return std::nullopt;
  }
  // Versions before 2.3 wrote len before caplen; some 2.3 files did too, some did not.
  r.length_order_ = minor < 3    ? LengthOrder::Interchanged
                    : minor == 3 ? LengthOrder::Guess
                                 : LengthOrder::AsIs;

  const std::uint32_t linktype_field = r.u32(20);
  if ((linktype_field & kLinkTypeUncertain) != 0) {
    return std::nullopt;
  }
  r.link_type_ = dlt_of(linktype_field & ~kLinkTypeExtension);
  if (r.link_type_ < 0) {
    return std::nullopt;
  }
  // In a file written in the other byte order, libpcap's swap_pseudo_headers() rewrites the CAN ID
  // of SocketCAN frames in LINUX_SLL (and in some versions LINUX_SLL2) captures: not in place.
  if (r.swapped_ && (r.link_type_ == DLT_LINUX_SLL || r.link_type_ == DLT_LINUX_SLL2)) {
    return std::nullopt;
  }
  // pcap_adjust_snapshot(): 0, or above INT_MAX (negative as pcap_snapshot()'s int), becomes the
  // maximum; anything else is kept, even above the maximum.
  const std::uint32_t snaplen = r.u32(16);
  r.snaplen_ = snaplen == 0 || snaplen > kIntMax ? kMaxSnaplen : snaplen;
  r.pos_ = kFileHeaderBytes;
  return r;
}

PcapReader::Status PcapReader::fail(int length) noexcept {
  error_length_ =
      length < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(length), error_.size() - 1);
  done_ = Status::Error;
  return done_;
}

// libpcap's pcap_next_packet() in sf-pcap.c, step by step, with the same messages; its formats
// print each of these (non-negative) numbers with %zu, %u or %d, which all read as PRIu64 does.
PcapReader::Status PcapReader::next(Record& out) noexcept {
  if (done_ != Status::Frame) {
    return done_;
  }
  const std::size_t left = file_.size() - pos_;
  if (more_follows_ && left < kRecordHeaderBytes) {
    return Status::NeedMore;  // the caller refills and calls again: nothing was consumed
  }
  if (left == 0) {
    done_ = Status::End;
    return done_;
  }
  if (left < kRecordHeaderBytes) {
    return fail(std::snprintf(error_.data(), error_.size(),
                              "truncated dump file; tried to read %" PRIu64
                              " header bytes, only got %" PRIu64,
                              std::uint64_t{kRecordHeaderBytes}, std::uint64_t{left}));
  }
  const std::uint32_t sec = u32(pos_);
  const std::uint32_t frac = u32(pos_ + 4);
  std::uint32_t caplen = u32(pos_ + 8);
  std::uint32_t len = u32(pos_ + 12);
  const std::size_t body = pos_ + kRecordHeaderBytes;
  const std::size_t available = left - kRecordHeaderBytes;

  if (length_order_ == LengthOrder::Interchanged ||
      (length_order_ == LengthOrder::Guess && caplen > len)) {
    std::swap(caplen, len);
  }
  if (caplen > kMaxSnaplen) {
    if (caplen > snaplen_) {
      return fail(std::snprintf(error_.data(), error_.size(),
                                "invalid packet capture length %" PRIu64
                                ", bigger than snaplen of %" PRIu64,
                                std::uint64_t{caplen}, std::uint64_t{snaplen_}));
    }
    return fail(std::snprintf(error_.data(), error_.size(),
                              "invalid packet capture length %" PRIu64
                              ", bigger than maximum of %" PRIu64,
                              std::uint64_t{caplen}, std::uint64_t{kMaxSnaplen}));
  }
  if (more_follows_ && available < caplen) {
    return Status::NeedMore;
  }
  std::uint32_t kept = caplen;
  if (caplen > snaplen_) {
    // libpcap reads the first snaplen bytes, discards the rest and reports caplen = snaplen.
    if (available < snaplen_) {
      return fail(std::snprintf(error_.data(), error_.size(),
                                "truncated dump file; tried to read %" PRIu64
                                " captured bytes, only got %" PRIu64,
                                std::uint64_t{snaplen_}, std::uint64_t{available}));
    }
    kept = snaplen_;
  }
  if (available < caplen) {
    return fail(std::snprintf(error_.data(), error_.size(),
                              "truncated dump file; tried to read %" PRIu64
                              " captured bytes, only got %" PRIu64,
                              std::uint64_t{caplen}, std::uint64_t{available}));
  }
  out.ts_ns = record_time_ns(sec, frac, nanoseconds_, swapped_);
  out.caplen = kept;
  out.len = len;
  out.data = file_.subspan(body, kept);
  pos_ = body + caplen;
  return Status::Frame;
}

}  // namespace dnsmon::detail
