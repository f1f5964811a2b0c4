#include "dnsmon/export/detail/http_server.hpp"

#include <algorithm>
#include <exception>
#include <map>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "dnsmon/common/ascii.hpp"

namespace dnsmon::detail {

std::size_t http_status_slot(int status) noexcept {
  for (std::size_t i = 0; i < kHttpStatusCodes.size(); ++i) {
    if (kHttpStatusCodes[i] == status) {
      return i;
    }
  }
  return http_status_slot(500);
}

std::size_t http_head_end(std::string_view received, std::size_t from) noexcept {
  // The empty line may begin up to three bytes before the new data ("\r\n\r" + "\n").
  for (std::size_t i = from >= 3 ? from - 3 : 0; i < received.size(); ++i) {
    if (received[i] != '\n') {
      continue;
    }
    if (i + 1 < received.size() && received[i + 1] == '\n') {
      return i + 2;
    }
    if (i + 2 < received.size() && received[i + 1] == '\r' && received[i + 2] == '\n') {
      return i + 3;
    }
  }
  return 0;
}

namespace {

constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTextType = "text/plain; charset=utf-8";
constexpr std::string_view kIndexPage =
    "<!DOCTYPE html>\n<html><head><title>dnsmon</title></head>\n"
    "<body><h1>dnsmon</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Internal Server Error";
  }
}

HttpResponse make_response(int status, std::string_view content_type, std::string_view body,
                           bool head_only = false) {
  HttpResponse r;
  r.status = status;
  r.bytes.reserve(200 + (head_only ? 0 : body.size()));
  r.bytes += "HTTP/1.1 ";
  r.bytes += std::to_string(status);
  r.bytes += ' ';
  r.bytes += reason_phrase(status);
  r.bytes += "\r\nContent-Type: ";
  r.bytes += content_type;
  r.bytes += "\r\nContent-Length: ";
  r.bytes += std::to_string(body.size());
  r.bytes += "\r\nConnection: close\r\n";
  if (status == 405) {
    r.bytes += "Allow: GET, HEAD\r\n";
  }
  r.bytes += "\r\n";
  if (!head_only) {
    r.bytes += body;
  }
  return r;
}

HttpResponse error_response(int status, std::string_view detail) {
  std::string body = std::to_string(status) + ' ' + std::string(reason_phrase(status));
  body += ": ";
  body += detail;
  body += '\n';
  return make_response(status, kTextType, body);
}

// RFC 9110 token characters.
bool is_token(std::string_view s) noexcept {
  if (s.empty()) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

}  // namespace

HttpResponse http_head_too_large() {
  return error_response(431, "the request head is too large");
}

HttpResponse http_respond(std::string_view head, const std::function<std::string()>& render) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return error_response(400, "expected METHOD TARGET HTTP/1.1");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && is_digit(version[5]) &&
        version[6] == '.' && is_digit(version[7])) {
      return error_response(505, "this server speaks HTTP/1.1 and HTTP/1.0");
    }
    return error_response(400, "expected METHOD TARGET HTTP/1.1");
  }
  if (!is_token(method) || target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
      })) {
    return error_response(400, "expected METHOD TARGET HTTP/1.1");
  }
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return error_response(405, "only GET and HEAD are served");
  }
  // Absolute form (RFC 9112 3.2.2): "http://host:port/path" serves "/path".
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() &&
        std::equal(scheme.begin(), scheme.end(), target.begin(),
                   [](char a, char b) { return a == ascii::lower(b); })) {
      const auto slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  if (target.front() != '/') {
    return error_response(400, "the target must be a path such as /metrics");
  }
  const std::string_view path = target.substr(0, target.find_first_of("?#"));
  if (path == "/metrics") {
    std::string body;
    try {
      body = render();
    } catch (const std::exception& e) {
      return error_response(500, std::string("cannot render the metrics: ") + e.what());
    }
    return make_response(200, kMetricsType, body, head_only);
  }
  if (path == "/") {
    return make_response(200, "text/html; charset=utf-8", kIndexPage, head_only);
  }
  return error_response(404, "dnsmon serves /metrics");
}

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using SourceKey = std::array<std::uint8_t, 16>;

// The unit of the per-source limit: an IPv4 address, or the /64 of an IPv6 address (one host
// commonly holds a whole /64).
SourceKey source_key(const asio::ip::address& a) {
  if (a.is_v4()) {
    return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
  }
  const auto v6 = a.to_v6();
  SourceKey key = v6.to_bytes();
  if (!v6.is_v4_mapped()) {
    std::fill(key.begin() + 8, key.end(), std::uint8_t{0});
  }
  return key;
}

class Connection;

// Everything the server thread owns. Only that thread touches it once serving has started.
struct ServerCore {
  ServerCore(HttpLimits l, std::shared_ptr<HttpStats> s, std::function<std::string()> r)
      : limits(l), stats(std::move(s)), render(std::move(r)) {}

  void accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket);
  void stop_all();

  void count(HttpConnectionResult r) const noexcept {
    stats->connections[static_cast<std::size_t>(r)].add();
  }

  HttpLimits limits;
  std::shared_ptr<HttpStats> stats;
  std::function<std::string()> render;
  std::map<SourceKey, std::size_t> per_source;  // open connections by source
  std::unordered_set<Connection*> connections;  // open connections
  bool stopping = false;
  // Declared after the bookkeeping above, so that handlers still queued when it is destroyed
  // (none after a clean stop) release their connections while the bookkeeping exists.
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};  // after a failed accept
};

// One accepted connection: reads the request head, writes one response, closes.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore& server, tcp::socket socket, const SourceKey& source)
      : server_(server),
        socket_(std::move(socket)),
        timer_(server.io),
        source_(source),
        accepted_(Clock::now()) {
    ++server_.per_source[source_];
    server_.connections.insert(this);
    server_.stats->open.store(server_.connections.size(), std::memory_order_relaxed);
  }

  ~Connection() {
    const auto it = server_.per_source.find(source_);
    if (it != server_.per_source.end() && --it->second == 0) {
      server_.per_source.erase(it);
    }
    server_.connections.erase(this);
    server_.stats->open.store(server_.connections.size(), std::memory_order_relaxed);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start() {
    arm_timer(accepted_ + server_.limits.head_timeout);
    read();
  }

  // Server shutdown: close without counting a result.
  void stop() {
    counted_ = true;
    close();
  }

 private:
  void arm_timer(Clock::time_point deadline) {
    timer_.expires_at(deadline);  // cancels a pending wait
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      self->on_deadline(ec);
    });
  }

  void on_deadline(const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted || closed_ || timer_.expiry() > Clock::now()) {
      return;  // cancelled, or re-armed after this wait had completed
    }
    if (!counted_) {
      record(HttpConnectionResult::TimedOut);
    }
    close();
  }

  void read() {
    const std::size_t have = received_.size();
    const std::size_t room = std::min<std::size_t>(1024, server_.limits.max_head_bytes - have);
    received_.resize(have + room);
    socket_.async_read_some(
        asio::buffer(received_.data() + have, room),
        [self = shared_from_this(), have](const boost::system::error_code& ec, std::size_t n) {
          self->received_.resize(have + n);
          self->on_read(ec, have);
        });
  }

  void on_read(const boost::system::error_code& ec, std::size_t from) {
    if (closed_) {
      return;
    }
    if (ec) {
      record(HttpConnectionResult::ClientClosed);
      close();
      return;
    }
    const std::size_t end = http_head_end(received_, from);
    if (end > 0) {
      write(http_respond(std::string_view(received_).substr(0, end), server_.render));
    } else if (received_.size() >= server_.limits.max_head_bytes) {
      write(http_head_too_large());
    } else {
      read();
    }
  }

  void write(HttpResponse response) {
    status_ = response.status;
    response_ = std::move(response.bytes);
    received_ = std::string();
    arm_timer(accepted_ + server_.limits.exchange_timeout);
    asio::async_write(
        socket_, asio::buffer(response_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t /*written*/) {
          self->on_written(ec);
        });
  }

  void on_written(const boost::system::error_code& ec) {
    if (closed_) {
      return;
    }
    if (ec) {
      record(HttpConnectionResult::ClientClosed);
      close();
      return;
    }
    server_.stats->responses[http_status_slot(status_)].add();
    record(HttpConnectionResult::Answered);
    response_ = std::string();
    // Send our FIN, then read until the client's: closing with unread request bytes (a body, a
    // pipelined request) would reset the connection and could destroy the response in flight.
    // Bounded by a second and by the exchange deadline.
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    arm_timer(std::min(Clock::now() + std::chrono::seconds(1),
                       accepted_ + server_.limits.exchange_timeout));
    drain();
  }

  void drain() {
    socket_.async_read_some(
        asio::buffer(discard_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t /*n*/) {
          if (self->closed_) {
            return;
          }
          if (ec) {
            self->close();
          } else {
            self->drain();
          }
        });
  }

  void record(HttpConnectionResult r) noexcept {
    if (!counted_) {
      counted_ = true;
      server_.count(r);
    }
  }

  void close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);  // pending operations complete with operation_aborted
    timer_.cancel();
  }

  ServerCore& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  SourceKey source_;
  Clock::time_point accepted_;
  std::string received_;
  std::string response_;
  int status_ = 0;
  bool counted_ = false;  // the result has been counted
  bool closed_ = false;
  std::array<char, 512> discard_{};
};

void ServerCore::accept() {
  acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void ServerCore::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (stopping || ec == asio::error::operation_aborted) {
    return;
  }
  if (ec) {
    // Out of file descriptors or memory: the pending connection stays in the backlog. Try again
    // shortly rather than spin.
    count(HttpConnectionResult::AcceptFailed);
    retry.expires_after(std::chrono::milliseconds(100));
    retry.async_wait([this](const boost::system::error_code& wait_ec) {
      if (!wait_ec && !stopping) {
        accept();
      }
    });
    return;
  }
  boost::system::error_code peer_ec;
  const auto peer = socket.remote_endpoint(peer_ec);
  boost::system::error_code ignored;
  if (peer_ec) {
    count(HttpConnectionResult::ClientClosed);  // reset before we got to it
    socket.close(ignored);
  } else if (connections.size() >= limits.max_connections) {
    count(HttpConnectionResult::RefusedGlobal);
    socket.close(ignored);
  } else {
    const SourceKey key = source_key(peer.address());
    const auto it = per_source.find(key);
    if (it != per_source.end() && it->second >= limits.max_per_source) {
      count(HttpConnectionResult::RefusedPerAddress);
      socket.close(ignored);
    } else {
      std::make_shared<Connection>(*this, std::move(socket), key)->start();
    }
  }
  accept();
}

void ServerCore::stop_all() {
  stopping = true;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  retry.cancel();
  for (Connection* c : connections) {
    c->stop();  // closes; the connection goes when its pending handlers have run
  }
}

}  // namespace

struct HttpServer::Impl {
  Impl(HttpLimits limits, std::shared_ptr<HttpStats> stats, std::function<std::string()> render)
      : core(limits, std::move(stats), std::move(render)) {}

  ServerCore core;
  std::uint16_t port = 0;
  std::thread thread;
};

HttpServer::HttpServer(const std::string& address, std::uint16_t port, HttpLimits limits,
                       std::shared_ptr<HttpStats> stats, std::function<std::string()> render)
    : impl_(std::make_unique<Impl>(limits, std::move(stats), std::move(render))) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) {
    throw std::runtime_error("\"" + address + "\" is not an IPv4 or IPv6 address");
  }
  const tcp::endpoint endpoint(ip, port);
  auto& acceptor = impl_->core.acceptor;
  if (acceptor.open(endpoint.protocol(), ec) ||
      acceptor.set_option(tcp::acceptor::reuse_address(true), ec) || acceptor.bind(endpoint, ec) ||
      acceptor.listen(asio::socket_base::max_listen_connections, ec)) {
    throw std::runtime_error(ec.message());
  }
  impl_->port = acceptor.local_endpoint().port();
  impl_->core.accept();
  impl_->thread = std::thread([core = &impl_->core] {
    for (;;) {
      try {
        core->io.run();  // returns once stop_all() has let every operation finish
        return;
      } catch (const std::exception&) {
        // A handler ran out of memory: its connection is gone; keep serving the others.
      }
    }
  });
}

HttpServer::~HttpServer() {
  if (impl_->thread.joinable()) {
    asio::post(impl_->core.io, [core = &impl_->core] { core->stop_all(); });
    impl_->thread.join();
  }
}

std::uint16_t HttpServer::port() const noexcept {
  return impl_->port;
}

}  // namespace dnsmon::detail
