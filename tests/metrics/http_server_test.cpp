// The /metrics HTTP server: request parsing and responses as pure functions, then the server over
// loopback sockets with small limits (connection caps, the request-head deadline, 431, shutdown).
#include "dnsmon/export/detail/http_server.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <catch2/catch.hpp>

namespace {

using Catch::Contains;
using Catch::EndsWith;
using Catch::StartsWith;
using dnsmon::detail::http_head_end;
using dnsmon::detail::http_respond;
using dnsmon::detail::HttpConnectionResult;
using dnsmon::detail::HttpLimits;
using dnsmon::detail::HttpServer;
using dnsmon::detail::HttpStats;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string render_stub() {
  return "dnsmon_up 1\n";
}

std::string respond(std::string_view head) {
  return http_respond(head, render_stub).bytes;
}

int status_of(std::string_view head) {
  return http_respond(head, render_stub).status;
}

std::uint64_t count(const HttpStats& s, HttpConnectionResult r) {
  return s.connections[static_cast<std::size_t>(r)].get();
}

// Waits (bounded) until the server thread has counted `want` connections with result r.
bool wait_count(const HttpStats& s, HttpConnectionResult r, std::uint64_t want) {
  for (int i = 0; i < 10000 && count(s, r) < want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return count(s, r) == want;
}

// A blocking client socket on the server's loopback port.
tcp::socket client(asio::io_context& io, std::uint16_t port, const char* source = nullptr) {
  tcp::socket s(io);
  s.open(tcp::v4());
  if (source != nullptr) {
    s.bind(tcp::endpoint(asio::ip::make_address(source), 0));
  }
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  return s;
}

// Everything the server sends until it closes (or resets) the connection.
std::string read_all(tcp::socket& s) {
  std::string out;
  boost::system::error_code ec;
  asio::read(s, asio::dynamic_buffer(out), ec);
  return out;
}

}  // namespace

TEST_CASE("the request head ends at an empty line, with CRLF or bare LF", "[metrics][http]") {
  CHECK(http_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 27);
  CHECK(http_head_end("GET / HTTP/1.1\nHost: x\n\n") == 24);
  CHECK(http_head_end("GET / HTTP/1.1\r\n\r\nbody") == 18);
  CHECK(http_head_end("GET / HTTP/1.1\r\nHost: x\r\n") == 0);
  CHECK(http_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r") == 0);
  CHECK(http_head_end("") == 0);
  // Fed one byte at a time with the hint, the end is found where a whole search finds it.
  const std::string head = "GET /metrics HTTP/1.1\r\nA: b\r\n\r\n";
  for (std::size_t n = 1; n <= head.size(); ++n) {
    CAPTURE(n);
    CHECK(http_head_end(std::string_view(head).substr(0, n), n - 1) ==
          (n == head.size() ? head.size() : 0));
  }
}

TEST_CASE("GET and HEAD of /metrics serve the exposition, with or without a query",
          "[metrics][http]") {
  const std::string get = respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_THAT(get, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(get, Contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  CHECK_THAT(get, Contains("\r\nContent-Length: 12\r\n"));
  CHECK_THAT(get, Contains("\r\nConnection: close\r\n"));
  CHECK_THAT(get, EndsWith("\r\n\r\ndnsmon_up 1\n"));
  const std::string head = respond("HEAD /metrics HTTP/1.1\r\n\r\n");
  CHECK_THAT(head, Contains("\r\nContent-Length: 12\r\n"));
  CHECK_THAT(head, EndsWith("\r\n\r\n"));
  CHECK(respond("GET /metrics?x=1 HTTP/1.1\r\n\r\n") == get);
  CHECK(respond("GET /metrics#frag HTTP/1.0\n\n") == get);
  CHECK(respond("GET http://127.0.0.1:9917/metrics?y HTTP/1.1\r\n\r\n") == get);
  CHECK(respond("GET HTTP://[::1]:9917/metrics HTTP/1.1\r\n\r\n") == get);
}

TEST_CASE("other paths, methods and versions get the right error", "[metrics][http]") {
  const std::string root = respond("GET / HTTP/1.1\r\n\r\n");
  CHECK_THAT(root, StartsWith("HTTP/1.1 200 OK\r\n"));
  CHECK_THAT(root, Contains("text/html") && Contains("href=\"/metrics\""));
  CHECK(status_of("GET /metrics/ HTTP/1.1\r\n\r\n") == 404);
  CHECK(status_of("GET /metricsx HTTP/1.1\r\n\r\n") == 404);
  CHECK(status_of("GET /Metrics HTTP/1.1\r\n\r\n") == 404);
  CHECK(status_of("GET http://host HTTP/1.1\r\n\r\n") == 200);  // "/": the index page
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get", "PRI"}) {
    CAPTURE(method);
    const std::string r = respond(std::string(method) + " /metrics HTTP/1.1\r\n\r\n");
    CHECK_THAT(r, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
    CHECK_THAT(r, Contains("\r\nAllow: GET, HEAD\r\n"));
  }
  CHECK(status_of("GET /metrics HTTP/2.0\r\n\r\n") == 505);
  CHECK(status_of("GET /metrics HTTP/0.9\r\n\r\n") == 505);
  for (const char* bad :
       {"GET /metrics\r\n\r\n", "GET\r\n\r\n", "\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1 \r\n\r\n", "GET /metrics FTP/1.0\r\n\r\n",
        "GET metrics HTTP/1.1\r\n\r\n", "GET * HTTP/1.1\r\n\r\n", "G(T /metrics HTTP/1.1\r\n\r\n",
        "GET /met\x01rics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.10\r\n\r\n"}) {
    CAPTURE(bad);
    CHECK(status_of(bad) == 400);
  }
}

TEST_CASE("a renderer that throws gives a 500, not a dead server", "[metrics][http]") {
  const auto r = http_respond("GET /metrics HTTP/1.1\r\n\r\n",
                              []() -> std::string { throw std::runtime_error("no memory"); });
  CHECK(r.status == 500);
  CHECK_THAT(r.bytes, Contains("no memory"));
  // Only /metrics renders.
  CHECK(http_respond("GET / HTTP/1.1\r\n\r\n", [] {
          throw std::runtime_error("called");
          return std::string();
        }).status == 200);
}

TEST_CASE("the server answers over loopback and refuses what it cannot bind", "[metrics][http]") {
  auto stats = std::make_shared<HttpStats>();
  HttpServer server("127.0.0.1", 0, HttpLimits{}, stats, render_stub);
  REQUIRE(server.port() != 0);
  asio::io_context io;
  {
    auto s = client(io, server.port());
    asio::write(s, asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")));
    CHECK_THAT(read_all(s), StartsWith("HTTP/1.1 200 OK\r\n") && EndsWith("dnsmon_up 1\n"));
  }
  CHECK(wait_count(*stats, HttpConnectionResult::Answered, 1));
  CHECK(stats->responses[dnsmon::detail::http_status_slot(200)].get() == 1);
  // A head that never ends within max_head_bytes: 431.
  {
    auto s = client(io, server.port());
    const std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a');
    boost::system::error_code ec;
    asio::write(s, asio::buffer(big), ec);  // the server may stop reading at 8 KiB
    CHECK_THAT(read_all(s), StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  }
  CHECK_THROWS_WITH(HttpServer("127.0.0.1", server.port(), HttpLimits{}, stats, render_stub),
                    Contains("in use"));
  CHECK_THROWS_WITH(HttpServer("localhost", 0, HttpLimits{}, stats, render_stub),
                    Contains("not an IPv4 or IPv6 address"));
  CHECK_THROWS_WITH(HttpServer("192.0.2.1", 0, HttpLimits{}, stats, render_stub),
                    Contains("assign requested address"));
}

TEST_CASE("connections over the per-address and global caps are closed at once",
          "[metrics][http]") {
  HttpLimits limits;
  limits.max_per_source = 2;
  limits.max_connections = 4;
  auto stats = std::make_shared<HttpStats>();
  HttpServer server("127.0.0.1", 0, limits, stats, render_stub);
  asio::io_context io;
  std::vector<tcp::socket> held;
  held.push_back(client(io, server.port(), "127.0.0.11"));
  held.push_back(client(io, server.port(), "127.0.0.11"));
  auto third = client(io, server.port(), "127.0.0.11");
  CHECK(read_all(third).empty());  // closed without a response
  CHECK(wait_count(*stats, HttpConnectionResult::RefusedPerAddress, 1));
  held.push_back(client(io, server.port(), "127.0.0.12"));
  held.push_back(client(io, server.port(), "127.0.0.13"));
  auto fifth = client(io, server.port(), "127.0.0.14");
  CHECK(read_all(fifth).empty());
  CHECK(wait_count(*stats, HttpConnectionResult::RefusedGlobal, 1));
  CHECK(stats->open.load() == 4);
  // Closing one makes room again, for an address that was not refused by its own cap.
  held.pop_back();
  CHECK(wait_count(*stats, HttpConnectionResult::ClientClosed, 1));
  auto again = client(io, server.port(), "127.0.0.14");
  asio::write(again, asio::buffer(std::string_view("GET /metrics HTTP/1.0\r\n\r\n")));
  CHECK_THAT(read_all(again), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_CASE("a connection that does not finish its request head in time is closed",
          "[metrics][http]") {
  HttpLimits limits;
  limits.head_timeout = std::chrono::milliseconds(50);
  auto stats = std::make_shared<HttpStats>();
  HttpServer server("127.0.0.1", 0, limits, stats, render_stub);
  asio::io_context io;
  auto s = client(io, server.port());
  asio::write(s, asio::buffer(std::string_view("GET /metrics HTTP/1.1\r\n")));
  CHECK(read_all(s).empty());  // closed by the deadline, with no response
  CHECK(wait_count(*stats, HttpConnectionResult::TimedOut, 1));
}

TEST_CASE("destroying the server closes its open connections at once", "[metrics][http]") {
  auto stats = std::make_shared<HttpStats>();
  std::optional<HttpServer> server(std::in_place, "::1", 0, HttpLimits{}, stats, render_stub);
  asio::io_context io;
  std::vector<tcp::socket> idle;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("::1"), server->port()), ec);
  if (ec) {
    WARN("no IPv6 loopback here: " << ec.message());
    return;
  }
  idle.push_back(std::move(s));
  for (int i = 0; i < 3; ++i) {
    idle.emplace_back(io).connect(tcp::endpoint(asio::ip::make_address("::1"), server->port()));
  }
  for (int i = 0; i < 10000 && stats->open.load() < idle.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(stats->open.load() == idle.size());
  server.reset();  // long before the head deadline (5 s): the destructor closes them
  for (auto& c : idle) {
    CHECK(read_all(c).empty());
  }
}
