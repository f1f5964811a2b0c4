// The small HTTP/1.1 server behind /metrics: Boost.Asio on one thread of its own.
//
// It serves GET and HEAD of /metrics (the exposition), / (a page that points to /metrics) and
// nothing else, answers every request with `Connection: close`, and defends the scrapes of a
// legitimate Prometheus against clients that connect and stall:
// - each connection must deliver its request head (request line and headers, at most
//   max_head_bytes, else 431) within head_timeout of being accepted, and the whole exchange must
//   end within exchange_timeout, else it is closed;
// - at most max_per_source connections are open from one source (an IPv4 address, an IPv6 /64);
//   further ones are closed as soon as they are accepted;
// - at most max_connections are open in all, which bounds the file descriptors the server uses;
//   beyond it new connections are closed as soon as they are accepted.
// The server is event-driven, so a thousand stalled connections cost memory and timers, not
// threads: a scrape from an address of its own is answered while they wait. Every connection ends
// with one result, counted in HttpStats (exported as dnsmon_http_connections_total{result}).
//
// Thread-safety: construct and destroy on one thread; serving runs on the server's own thread.
//   HttpStats are written by the server thread and may be read from any thread.
// Allocation: per connection (its state and the bytes it sent, up to max_head_bytes) and per
//   response (the rendered body).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dnsmon/metrics.hpp"

namespace dnsmon::detail {

struct HttpLimits {
  std::chrono::milliseconds head_timeout{5000};       // from accept to the end of the head
  std::chrono::milliseconds exchange_timeout{10000};  // from accept to the response's last byte
  std::size_t max_head_bytes = 8192;
  std::size_t max_connections = 512;
  std::size_t max_per_source = 8;
};

// How a connection ended.
enum class HttpConnectionResult : std::uint8_t {
  Answered,           // a response was written in full (any status)
  TimedOut,           // the head or the exchange took too long
  ClientClosed,       // closed or reset by the client before the response was written
  RefusedPerAddress,  // over max_per_source
  RefusedGlobal,      // over max_connections
  AcceptFailed,       // accept() failed (e.g. out of file descriptors): no connection
  Count
};
inline constexpr std::array<std::string_view, static_cast<std::size_t>(HttpConnectionResult::Count)>
    kHttpConnectionResultNames{"answered",       "timed_out",
                               "client_closed",  "refused_per_address",
                               "refused_global", "accept_failed"};

// The status codes the server sends.
inline constexpr std::array<int, 7> kHttpStatusCodes{200, 400, 404, 405, 431, 500, 505};
std::size_t http_status_slot(int status) noexcept;

struct HttpStats {
  std::array<SingleWriterCounter, kHttpConnectionResultNames.size()> connections;
  std::array<SingleWriterCounter, kHttpStatusCodes.size()> responses;  // by kHttpStatusCodes slot
  std::atomic<std::uint64_t> open{0};  // connections being served now
};

// Where the head of a request ends in `received`: the offset just past its empty line (CRLF CRLF,
// or bare LF line ends), or 0 while it is incomplete. from: how many bytes were searched before
// (the head did not end in them), so a head that arrives byte by byte costs linear time.
std::size_t http_head_end(std::string_view received, std::size_t from = 0) noexcept;

struct HttpResponse {
  int status = 0;
  std::string bytes;  // status line, headers and, except for HEAD, the body
};

// The response to one complete request head (http_head_end() > 0). render produces the
// exposition; it is called for GET and HEAD of /metrics only, and an exception from it becomes a
// 500.
HttpResponse http_respond(std::string_view head, const std::function<std::string()>& render);

// The response to a head that exceeds max_head_bytes.
HttpResponse http_head_too_large();

class HttpServer {
 public:
  // Binds address (an IPv4 or IPv6 literal, without brackets) and port (0 picks a free one) and
  // starts serving. Throws std::runtime_error when the address cannot be parsed or bound.
  HttpServer(const std::string& address, std::uint16_t port, HttpLimits limits,
             std::shared_ptr<HttpStats> stats, std::function<std::string()> render);
  // Closes the listening socket and every connection, and joins the thread: immediate.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dnsmon::detail
