#include <cerrno>
#include <chrono>
#include <cstring>
#include <grp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

#include "dnsmon/capture.hpp"
#include "dnsmon/capture/dnstap.hpp"
#include "dnsmon/common/errno_text.hpp"
#include "dnsmon/common/message_record.hpp"

#include "dispatch.hpp"

namespace dnsmon {
namespace {

constexpr int kPollTimeoutMs = 100;        // how soon a stop request is seen
constexpr std::size_t kReadBytes = 65536;  // one read() per ready connection and poll round
constexpr int kListenBacklog = 16;

std::int64_t wall_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// One connection: its socket and its Frame Streams session.
struct DnstapConnection {
  int fd = -1;
  dnstap::Session session;
};

struct DnstapSource::Impl final : dnstap::SessionSink {
  int listen_fd = -1;
  dev_t dev = 0;  // the socket file we made, so that only it is removed at the end
  ino_t ino = 0;
  std::vector<DnstapConnection> connections;
  std::vector<pollfd> fds;
  std::vector<std::byte> read_buffer = std::vector<std::byte>(kReadBytes);
  std::vector<std::byte> replies;
  std::vector<std::byte> record = std::vector<std::byte>(record::kMaxRecordBytes);
  dnstap::Message message;
  detail::DispatchContext* ctx = nullptr;
  CaptureStats* stats = nullptr;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  Impl(Impl&&) = delete;
  Impl& operator=(Impl&&) = delete;

  ~Impl() {
    for (auto& c : connections) {
      ::close(c.fd);
    }
    if (listen_fd >= 0) {
      ::close(listen_fd);
    }
  }

  void count(dnstap::FrameResult r) const noexcept {
    stats->dnstap_frames[static_cast<std::size_t>(r)].add();
  }

  void on_data(std::span<const std::byte> payload) override {
    const auto r = dnstap::decode_message(payload, message, wall_ns());
    count(r);
    if (r != dnstap::FrameResult::Message) {
      return;
    }
    const std::size_t n = record::encode(message.header, message.wire, record);
    if (n == 0) {  // not reached: decode_message() bounds the message
      return;
    }
    detail::deliver(*ctx, message.ts_ns, static_cast<std::uint32_t>(n),
                    std::span<const std::byte>(record).first(n));
  }

  void on_oversized() override { count(dnstap::FrameResult::Malformed); }

  void close_connection(std::size_t i) noexcept {
    ::close(connections[i].fd);
    connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
    stats->dnstap_open.set(connections.size());
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;  // EAGAIN, or an error of that one connection (ECONNABORTED, EMFILE...)
      }
      if (connections.size() >= kMaxConnections) {
        ::close(fd);
        stats->dnstap_refused.add();
        continue;
      }
      connections.push_back(DnstapConnection{fd, {}});
      stats->dnstap_accepted.add();
      stats->dnstap_open.set(connections.size());
    }
  }

  // Reads what one connection has; false when it is to be closed.
  bool serve(DnstapConnection& c) {
    const ssize_t n = ::read(c.fd, read_buffer.data(), read_buffer.size());
    if (n == 0) {
      return false;
    }
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    replies.clear();
    const bool open = c.session.feed(
        std::span<const std::byte>(read_buffer).first(static_cast<std::size_t>(n)), replies, *this);
    if (!replies.empty()) {
      // A few dozen bytes that an empty socket buffer always takes: a writer that does not read
      // its answers is closed rather than waited for.
      const ssize_t sent =
          ::send(c.fd, replies.data(), replies.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent != static_cast<ssize_t>(replies.size())) {
        return false;
      }
    }
    if (c.session.state() == dnstap::Session::State::Failed) {
      count(dnstap::FrameResult::Malformed);  // the frame that broke the protocol
    }
    return open;
  }
};

DnstapSource::DnstapSource(std::string path, std::uint16_t index)
    : Source("dnstap:" + path, true, index),
      path_(std::move(path)),
      impl_(std::make_unique<Impl>()) {
  stats_.dnstap = true;
}

DnstapSource::~DnstapSource() {
  if (impl_->listen_fd >= 0) {
    struct stat st {};

    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == impl_->dev && st.st_ino == impl_->ino) {
      (void)::unlink(path_.c_str());  // may fail once privileges are dropped: removed at start
    }
  }
}

std::unique_ptr<DnstapSource> DnstapSource::open(const std::string& path,
                                                 const CaptureOptions& options,
                                                 std::uint16_t index) {
  const auto error = [&path](const std::string& what) {
    return CaptureError("dnstap socket " + path + ": " + what);
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    throw error("a socket path must have 1 to " + std::to_string(sizeof(addr.sun_path) - 1) +
                " characters");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());

  std::uint32_t mode = 0;
  if (!parse_socket_mode(options.dnstap_socket_mode, mode)) {
    throw error("capture.dnstap_socket_mode: expected permission bits in octal, got \"" +
                options.dnstap_socket_mode + "\"");
  }
  auto gid = static_cast<gid_t>(-1);
  if (!options.dnstap_socket_group.empty()) {
    group g{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    const int rc =
        ::getgrnam_r(options.dnstap_socket_group.c_str(), &g, buf.data(), buf.size(), &found);
    if (rc != 0 || found == nullptr) {
      throw error("capture.dnstap_socket_group: no group " + options.dnstap_socket_group);
    }
    gid = g.gr_gid;
  }

  // A socket left by a previous run is removed; anything else at the path is not ours to remove.
  struct stat st {};

  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      throw error("the path exists and is not a socket; remove it or choose another path");
    }
    if (::unlink(path.c_str()) != 0) {
      throw error("cannot remove the stale socket: " + detail::errno_text(errno));
    }
  }

  auto source = std::unique_ptr<DnstapSource>(new DnstapSource(path, index));
  Impl& impl = *source->impl_;
  impl.listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (impl.listen_fd < 0) {
    throw error("socket: " + detail::errno_text(errno));
  }
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (::bind(impl.listen_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw error("bind: " + detail::errno_text(errno));
  }
  if (::lstat(path.c_str(), &st) == 0) {
    impl.dev = st.st_dev;
    impl.ino = st.st_ino;
  }
  if (gid != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    throw error("chown to group " + options.dnstap_socket_group + ": " + detail::errno_text(errno));
  }
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    throw error("chmod: " + detail::errno_text(errno));
  }
  if (::listen(impl.listen_fd, kListenBacklog) != 0) {
    throw error("listen: " + detail::errno_text(errno));
  }
  return source;
}

std::string DnstapSource::run_inline(std::stop_token /*stop*/,
                                     std::span<FrameRing* const> /*rings*/,
                                     const std::function<void()>& /*consume*/) {
  throw std::logic_error("a dnstap source is live input: it has no inline replay");
}

std::string DnstapSource::run(std::stop_token stop, std::span<FrameRing* const> rings) {
  detail::DispatchContext ctx;
  ctx.rings = rings;
  ctx.stats = &stats_;
  ctx.stop = &stop;
  ctx.live = true;
  ctx.drop_when_full = true;
  ctx.index = index_;
  ctx.link_type = record::kLinkType;
  Impl& impl = *impl_;
  impl.ctx = &ctx;
  impl.stats = &stats_;
  stats_.up.store(true, std::memory_order_relaxed);
  std::string result;
  while (!stop.stop_requested()) {
    impl.fds.clear();
    impl.fds.push_back(pollfd{impl.listen_fd, POLLIN, 0});
    for (const auto& c : impl.connections) {
      impl.fds.push_back(pollfd{c.fd, POLLIN, 0});
    }
    const int n = ::poll(impl.fds.data(), impl.fds.size(), kPollTimeoutMs);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      result = "dnstap socket " + path_ + ": poll: " + detail::errno_text(errno);
      break;
    }
    if (n == 0) {
      continue;
    }
    // Connections first, from the last so that closing one leaves the indices before it; then
    // new connections, which the next round polls.
    for (std::size_t i = impl.connections.size(); i-- > 0;) {
      if ((impl.fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      if (!impl.serve(impl.connections[i])) {
        impl.close_connection(i);
      }
    }
    if ((impl.fds[0].revents & POLLIN) != 0) {
      impl.accept_all();
    }
    detail::flush_rings(ctx);
  }
  for (std::size_t i = impl.connections.size(); i-- > 0;) {
    impl.close_connection(i);
  }
  stats_.up.store(false, std::memory_order_relaxed);
  return result;
}

}  // namespace dnsmon
