#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <iterator>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "dnsmon/metrics.hpp"

namespace dnsmon {
namespace {

// Names are already in presentation form (non-printable bytes escaped as \DDD), so only the quote
// and the backslash need JSON escaping.
void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

MessageWriter::MessageWriter(int fd) : fd_(fd) {
  line_.reserve(1024);
  buffer_.reserve(kBufferBytes + 1024);

  // A pipe, a socket or a terminal waits for its reader; a regular file or /dev/null does not.
  struct stat st {};

  may_block_ =
      ::fstat(fd_, &st) != 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode);
}

bool MessageWriter::wait_writable() noexcept {
  std::chrono::steady_clock::time_point stopped{};
  for (;;) {
    pollfd p{.fd = fd_, .events = POLLOUT, .revents = 0};
    if (::poll(&p, 1, kPollMs) > 0) {
      return true;  // room, or an error or hang-up that the write will report
    }
    if (stop_waiting_.load(std::memory_order_relaxed)) {
      const auto now = std::chrono::steady_clock::now();
      if (stopped == std::chrono::steady_clock::time_point{}) {
        stopped = now;
      } else if (now - stopped >= std::chrono::milliseconds(kStopWaitMs)) {
        return false;
      }
    }
  }
}

MessageWriter::~MessageWriter() {
  flush();
}

void MessageWriter::write(const DnsMessage& m, std::int64_t latency_ns) {
  if (error_.load(std::memory_order_relaxed) != 0) {
    lost_.add();  // the log has ended: a later line would leave a hole in it
    return;
  }
  std::array<char, 64> src{};
  std::array<char, 64> dst{};
  line_.clear();
  auto it = std::back_inserter(line_);
  fmt::format_to(it, R"({{"ts":{}.{:09},"src":"{}","dst":"{}","sport":{},"dport":{},)",
                 m.ts_ns / 1'000'000'000, m.ts_ns % 1'000'000'000, m.src.format(src),
                 m.dst.format(dst), m.sport, m.dport);
  fmt::format_to(it,
                 R"("transport":"{}","protocol":"{}","reassembled":{},"id":{},"qr":{},"opcode":{},)"
                 R"("rcode":{},)",
                 transport_name(m.transport), protocol_name(m.protocol), m.reassembled, m.id, m.qr,
                 m.opcode, m.rcode);
  fmt::format_to(it, R"("flags":{{"aa":{},"tc":{},"rd":{},"ra":{},"ad":{},"cd":{}}},"qname":)",
                 (m.flags & kFlagAa) != 0, (m.flags & kFlagTc) != 0, (m.flags & kFlagRd) != 0,
                 (m.flags & kFlagRa) != 0, (m.flags & kFlagAd) != 0, (m.flags & kFlagCd) != 0);
  if (m.has_question) {
    append_json_string(line_, m.qname.view());
    fmt::format_to(it, R"(,"qtype":{},"qclass":{},)", m.qtype, m.qclass);
  } else {
    line_.append(R"(null,"qtype":null,"qclass":null,)");
  }
  fmt::format_to(it, R"("qdcount":{},"ancount":{},"nscount":{},"arcount":{},"edns":)", m.qdcount,
                 m.ancount, m.nscount, m.arcount);
  if (m.edns.present) {
    fmt::format_to(it,
                   R"({{"udp_size":{},"version":{},"do":{},"extended_rcode":{},"client_subnet":{},)"
                   R"("cookie":{}}})",
                   m.edns.udp_size, m.edns.version, m.edns.do_bit, m.edns.extended_rcode,
                   m.edns.client_subnet, m.edns.cookie);
  } else {
    line_.append("null");
  }
  fmt::format_to(it, R"(,"size":{},"malformed":{})", m.size, m.malformed_question);
  if (m.qr) {  // seconds from the matched query; null when none was matched
    if (latency_ns >= 0) {
      fmt::format_to(it, R"(,"latency":{}.{:09})", latency_ns / 1'000'000'000,
                     latency_ns % 1'000'000'000);
    } else {
      line_.append(R"(,"latency":null)");
    }
  }
  line_.push_back('}');
  line_.push_back('\n');
  buffer_.append(line_);
  if (buffer_.size() >= kBufferBytes) {
    write_buffer();
  }
}

bool MessageWriter::flush() noexcept {
  write_buffer();
  return error_.load(std::memory_order_relaxed) == 0;
}

void MessageWriter::write_buffer() noexcept {
  std::size_t done = 0;
  int failed = 0;
  while (done < buffer_.size()) {
    std::size_t chunk = buffer_.size() - done;
    if (may_block_) {
      // Wait in poll(), where a stop request is seen, never in write(): once POLLOUT says there
      // is room, a write of at most PIPE_BUF bytes does not block.
      if (!wait_writable()) {
        failed = ETIMEDOUT;  // the reader stopped reading, and dnsmon is stopping
        break;
      }
      chunk = std::min<std::size_t>(chunk, PIPE_BUF);
    }
    const ssize_t n = ::write(fd_, buffer_.data() + done, chunk);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {  // a non-blocking descriptor: wait for room
      if (!may_block_) {
        pollfd p{.fd = fd_, .events = POLLOUT, .revents = 0};
        (void)::poll(&p, 1, kPollMs);
      }
      continue;
    }
    failed = errno;
    break;
  }
  if (failed != 0) {
    // Every line not written in full is lost: those whose newline was not written.
    const auto written = buffer_.begin() + static_cast<std::ptrdiff_t>(done);
    lost_.add(static_cast<std::uint64_t>(std::count(written, buffer_.end(), '\n')));
    // A file keeps whole lines only: the start of a line cut by a full disk is taken back (on a
    // pipe or a device, lseek() fails and nothing is done).
    const auto partial =
        static_cast<off_t>(std::find(std::make_reverse_iterator(written), buffer_.rend(), '\n') -
                           std::make_reverse_iterator(written));
    if (partial > 0) {
      const off_t end = ::lseek(fd_, 0, SEEK_CUR);
      if (end >= partial) {
        (void)::ftruncate(fd_, end - partial);
        (void)::lseek(fd_, end - partial, SEEK_SET);
      }
    }
    error_.store(failed, std::memory_order_release);
  }
  buffer_.clear();
}

}  // namespace dnsmon
