#include "dnsmon/capture/dnstap.hpp"

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stop_token>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/capture.hpp"
#include "dnsmon/common/message_record.hpp"

#include "dnstap.pb-c.h"

namespace {

namespace fs = std::filesystem;
using dnsmon::dnstap::ControlType;
using dnsmon::dnstap::FrameResult;
using dnsmon::dnstap::Session;

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A small DNS query for www.example.test A, with the given id and flags.
std::vector<std::byte> dns_message(std::uint16_t id, std::uint16_t flags) {
  std::vector<std::uint8_t> m = {static_cast<std::uint8_t>(id >> 8U),
                                 static_cast<std::uint8_t>(id),
                                 static_cast<std::uint8_t>(flags >> 8U),
                                 static_cast<std::uint8_t>(flags),
                                 0,
                                 1,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 3,
                                 'w',
                                 'w',
                                 'w',
                                 7,
                                 'e',
                                 'x',
                                 'a',
                                 'm',
                                 'p',
                                 'l',
                                 'e',
                                 4,
                                 't',
                                 'e',
                                 's',
                                 't',
                                 0,
                                 0,
                                 1,
                                 0,
                                 1};
  std::vector<std::byte> out(m.size());
  std::memcpy(out.data(), m.data(), m.size());
  return out;
}

// The fields of a dnstap Message that the tests set; the rest stay absent.
struct Fields {
  int type = DNSTAP__MESSAGE__TYPE__CLIENT_QUERY;
  int family = DNSTAP__SOCKET_FAMILY__INET;
  int protocol = DNSTAP__SOCKET_PROTOCOL__UDP;
  std::vector<std::uint8_t> query_address = {192, 0, 2, 7};
  std::vector<std::uint8_t> response_address = {127, 0, 0, 1};
  std::uint32_t query_port = 40000, response_port = 53;
  std::uint64_t query_sec = 1'700'000'000;
  std::uint32_t query_nsec = 1000;
  std::uint64_t response_sec = 1'700'000'000;
  std::uint32_t response_nsec = 251000;
  std::vector<std::byte> query = dns_message(0x1234, 0x0100);
  std::vector<std::byte> response = dns_message(0x1234, 0x8180);
  bool with_query = true, with_response = true;
};

// The protobuf payload of a data frame.
std::vector<std::byte> payload(const Fields& f) {
  Dnstap__Message m = DNSTAP__MESSAGE__INIT;
  m.type = static_cast<Dnstap__Message__Type>(f.type);
  m.has_socket_family = 1;
  m.socket_family = static_cast<Dnstap__SocketFamily>(f.family);
  m.has_socket_protocol = 1;
  m.socket_protocol = static_cast<Dnstap__SocketProtocol>(f.protocol);
  auto qa = f.query_address;
  auto ra = f.response_address;
  auto q = f.query;
  auto r = f.response;
  m.has_query_address = 1;
  m.query_address = {qa.size(), qa.data()};
  m.has_response_address = 1;
  m.response_address = {ra.size(), ra.data()};
  m.has_query_port = 1;
  m.query_port = f.query_port;
  m.has_response_port = 1;
  m.response_port = f.response_port;
  m.has_query_time_sec = 1;
  m.query_time_sec = f.query_sec;
  m.has_query_time_nsec = 1;
  m.query_time_nsec = f.query_nsec;
  m.has_response_time_sec = 1;
  m.response_time_sec = f.response_sec;
  m.has_response_time_nsec = 1;
  m.response_time_nsec = f.response_nsec;
  if (f.with_query) {
    m.has_query_message = 1;
    m.query_message = {q.size(), reinterpret_cast<std::uint8_t*>(q.data())};  // NOLINT
  }
  if (f.with_response) {
    m.has_response_message = 1;
    m.response_message = {r.size(), reinterpret_cast<std::uint8_t*>(r.data())};  // NOLINT
  }
  Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
  d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
  d.message = &m;
  std::vector<std::byte> out(dnstap__dnstap__get_packed_size(&d));
  dnstap__dnstap__pack(&d, reinterpret_cast<std::uint8_t*>(out.data()));  // NOLINT
  return out;
}

struct CollectingSink final : dnsmon::dnstap::SessionSink {
  std::vector<std::vector<std::byte>> frames;
  int oversized = 0;

  void on_data(std::span<const std::byte> p) override { frames.emplace_back(p.begin(), p.end()); }

  void on_oversized() override { ++oversized; }
};

std::vector<std::byte> control(ControlType type, std::string_view content_type = {}) {
  std::vector<std::byte> out;
  dnsmon::dnstap::append_control_frame(out, type, content_type);
  return out;
}

std::vector<std::byte> concat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (const auto& p : parts) {
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

std::vector<std::byte> data_frame(const std::vector<std::byte>& p) {
  std::vector<std::byte> out;
  dnsmon::dnstap::append_data_frame(out, p);
  return out;
}

}  // namespace

TEST_CASE("a dnstap control frame is laid out as Frame Streams says", "[capture][dnstap]") {
  const auto accept = control(ControlType::Accept, "protobuf:dnstap.Dnstap");
  std::vector<std::uint8_t> want = {0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 22};
  for (const char c : std::string_view("protobuf:dnstap.Dnstap")) {
    want.push_back(static_cast<std::uint8_t>(c));
  }
  REQUIRE(accept.size() == want.size());
  CHECK(std::memcmp(accept.data(), want.data(), want.size()) == 0);
  const auto finish = control(ControlType::Finish);
  const std::array<std::uint8_t, 12> f = {0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 5};
  REQUIRE(finish.size() == f.size());
  CHECK(std::memcmp(finish.data(), f.data(), f.size()) == 0);
}

TEST_CASE("the dnstap handshake is answered and the data frames read, in any split of the bytes",
          "[capture][dnstap]") {
  const auto one = payload(Fields{});
  Fields second;
  second.type = DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE;
  const auto two = payload(second);
  const auto ready = control(ControlType::Ready, "protobuf:dnstap.Dnstap");
  const auto stream = concat({ready, control(ControlType::Start, "protobuf:dnstap.Dnstap"),
                              data_frame(one), data_frame(two), control(ControlType::Stop)});
  const auto expected_replies = concat(
      {control(ControlType::Accept, "protobuf:dnstap.Dnstap"), control(ControlType::Finish)});
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{7}, stream.size()}) {
    CAPTURE(chunk);
    Session s;
    CollectingSink sink;
    std::vector<std::byte> replies;
    bool open = true;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      REQUIRE(open);
      open =
          s.feed(std::span(stream).subspan(at, std::min(chunk, stream.size() - at)), replies, sink);
    }
    CHECK_FALSE(open);
    CHECK(s.state() == Session::State::Finished);
    CHECK(replies == expected_replies);
    REQUIRE(sink.frames.size() == 2);
    CHECK(sink.frames[0] == one);
    CHECK(sink.frames[1] == two);
  }
}

TEST_CASE("a dnstap writer that starts without READY is read too", "[capture][dnstap]") {
  Session s;
  CollectingSink sink;
  std::vector<std::byte> replies;
  const auto p = payload(Fields{});
  CHECK(s.feed(concat({control(ControlType::Start, "protobuf:dnstap.Dnstap"), data_frame(p)}),
               replies, sink));
  CHECK(replies.empty());
  CHECK(sink.frames.size() == 1);
  CHECK(s.state() == Session::State::Started);
}

TEST_CASE("a dnstap writer that breaks the protocol is refused", "[capture][dnstap]") {
  std::vector<std::byte> replies;
  CollectingSink sink;
  SECTION("another content type") {
    Session s;
    CHECK_FALSE(s.feed(control(ControlType::Ready, "protobuf:other"), replies, sink));
    CHECK(s.state() == Session::State::Failed);
    CHECK(replies.empty());
  }
  SECTION("a data frame before START") {
    Session s;
    CHECK_FALSE(s.feed(data_frame(payload(Fields{})), replies, sink));
    CHECK(s.state() == Session::State::Failed);
    CHECK(sink.frames.empty());
  }
  SECTION("a control frame longer than 512 bytes") {
    Session s;
    const std::vector<std::byte> big = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                                        std::byte{0}, std::byte{0}, std::byte{2}, std::byte{1}};
    CHECK_FALSE(s.feed(big, replies, sink));
    CHECK(s.state() == Session::State::Failed);
  }
  SECTION("an unknown control field") {
    Session s;
    const std::vector<std::byte> bad = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                                        std::byte{0}, std::byte{0}, std::byte{0}, std::byte{12},
                                        std::byte{0}, std::byte{0}, std::byte{0}, std::byte{4},
                                        std::byte{0}, std::byte{0}, std::byte{0}, std::byte{9},
                                        std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}};
    CHECK_FALSE(s.feed(bad, replies, sink));
    CHECK(s.state() == Session::State::Failed);
  }
  SECTION("STOP before START, and ACCEPT from a writer") {
    Session a;
    CHECK_FALSE(a.feed(control(ControlType::Stop), replies, sink));
    Session b;
    CHECK_FALSE(b.feed(control(ControlType::Accept), replies, sink));
    CHECK(b.state() == Session::State::Failed);
  }
  SECTION("after a failure nothing more is read") {
    Session s;
    CHECK_FALSE(s.feed(control(ControlType::Stop), replies, sink));
    CHECK_FALSE(s.feed(control(ControlType::Start), replies, sink));
    CHECK(s.buffered() == 0);
  }
}

TEST_CASE("a dnstap data frame longer than the limit is skipped and counted, the next one read",
          "[capture][dnstap]") {
  Session s;
  CollectingSink sink;
  std::vector<std::byte> replies;
  REQUIRE(s.feed(control(ControlType::Start), replies, sink));
  const std::vector<std::byte> huge(dnsmon::dnstap::kMaxDataFrameBytes + 1, std::byte{0x55});
  const auto p = payload(Fields{});
  const auto stream = concat({data_frame(huge), data_frame(p)});
  for (std::size_t at = 0; at < stream.size(); at += 40000) {
    REQUIRE(s.feed(std::span(stream).subspan(at, std::min<std::size_t>(40000, stream.size() - at)),
                   replies, sink));
    CHECK(s.buffered() <= dnsmon::dnstap::kMaxDataFrameBytes + 40000);
  }
  CHECK(sink.oversized == 1);
  REQUIRE(sink.frames.size() == 1);
  CHECK(sink.frames[0] == p);
}

TEST_CASE("a dnstap query takes the initiator as source and the query time, a response the reverse",
          "[capture][dnstap]") {
  dnsmon::dnstap::Message m;
  Fields f;
  REQUIRE(decode_message(payload(f), m, 7) == FrameResult::Message);
  CHECK(m.type == 5);
  CHECK(m.ts_ns == 1'700'000'000'000'001'000);
  CHECK(m.header.family == 4);
  CHECK(m.header.transport == dnsmon::record::kTransportUdp);
  CHECK(m.header.src[0] == 192);
  CHECK(m.header.src[3] == 7);
  CHECK(m.header.sport == 40000);
  CHECK(m.header.dst[0] == 127);
  CHECK(m.header.dport == 53);
  CHECK(m.wire == f.query);

  f.type = DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE;
  f.protocol = DNSTAP__SOCKET_PROTOCOL__DOT;
  REQUIRE(decode_message(payload(f), m, 7) == FrameResult::Message);
  CHECK(m.ts_ns == 1'700'000'000'000'251'000);
  CHECK(m.header.transport == dnsmon::record::kTransportDot);
  CHECK(m.socket_protocol == 3);
  CHECK(m.header.src[0] == 127);
  CHECK(m.header.sport == 53);
  CHECK(m.header.dst[0] == 192);
  CHECK(m.header.dport == 40000);
  CHECK(m.wire == f.response);

  Fields v6;
  v6.type = DNSTAP__MESSAGE__TYPE__RESOLVER_QUERY;
  v6.family = DNSTAP__SOCKET_FAMILY__INET6;
  v6.query_address.assign(16, 0x20);
  v6.response_address.assign(16, 0x30);
  REQUIRE(decode_message(payload(v6), m, 7) == FrameResult::Message);
  CHECK(m.header.family == 6);
  CHECK(m.header.src[15] == 0x20);
  CHECK(m.header.dst[15] == 0x30);
}

TEST_CASE("dnstap frames that cannot be used are counted as malformed or ignored",
          "[capture][dnstap]") {
  dnsmon::dnstap::Message m;
  CHECK(decode_message(bytes_of("not a protobuf at all"), m, 0) == FrameResult::Malformed);
  CHECK(decode_message({}, m, 0) == FrameResult::Malformed);  // the required type is missing
  Fields f;
  f.query_address = {1, 2, 3};
  CHECK(decode_message(payload(f), m, 0) == FrameResult::Malformed);
  f = Fields{};
  f.query_port = 70000;
  CHECK(decode_message(payload(f), m, 0) == FrameResult::Malformed);
  f = Fields{};
  f.query_nsec = 1'000'000'000;
  CHECK(decode_message(payload(f), m, 0) == FrameResult::Malformed);
  f = Fields{};
  f.query_sec = ~std::uint64_t{0};
  CHECK(decode_message(payload(f), m, 0) == FrameResult::Malformed);
  f = Fields{};
  f.type = 15;
  CHECK(decode_message(payload(f), m, 0) == FrameResult::Malformed);
  f = Fields{};
  f.type = DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE;
  f.with_response = false;
  CHECK(decode_message(payload(f), m, 0) == FrameResult::Ignored);

  // Every cut of a valid frame is refused or read, never more.
  const auto p = payload(Fields{});
  for (std::size_t len = 0; len < p.size(); ++len) {
    CAPTURE(len);
    const auto r = decode_message(std::span(p).first(len), m, 0);
    CHECK(r != FrameResult::Count);
  }
}

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("dnsmon-dnstap-test-" + std::to_string(::getpid()));

  TempDir() { fs::create_directories(path); }

  ~TempDir() { fs::remove_all(path); }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

int connect_to(const fs::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

void send_all(int fd, const std::vector<std::byte>& b) {
  REQUIRE(::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size()));
}

std::vector<std::byte> receive(int fd, std::size_t n) {
  std::vector<std::byte> out(n);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) {
      break;
    }
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

}  // namespace

TEST_CASE("a dnstap socket serves a writer into the ring and is removed at the end",
          "[capture][dnstap][threads]") {
  TempDir dir;
  const fs::path sock = dir.path / "dnstap.sock";
  dnsmon::CaptureOptions options;
  options.dnstap_socket_mode = "0620";

  SECTION("a regular file at the path is left alone") {
    std::ofstream(sock) << "keep";
    CHECK_THROWS_AS(dnsmon::DnstapSource::open(sock, options, 0), dnsmon::CaptureError);
    CHECK(fs::is_regular_file(sock));
  }
  SECTION("a stale socket is replaced, the mode applied, a writer served") {
    {
      const int stale = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
      // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
      REQUIRE(::bind(stale, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
      ::close(stale);
    }
    dnsmon::FrameRing ring(64, dnsmon::record::kMaxRecordBytes);
    std::array<dnsmon::FrameRing*, 1> rings{&ring};
    auto source = dnsmon::DnstapSource::open(sock, options, 3);

    struct stat st {};

    REQUIRE(::stat(sock.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777U) == 0620U);
    std::string error = "not run";
    {
      std::jthread t([&](std::stop_token stop) { error = source->run(std::move(stop), rings); });
      const int fd = connect_to(sock);
      REQUIRE(fd >= 0);
      send_all(fd, control(ControlType::Ready, "protobuf:dnstap.Dnstap"));
      const auto accept = control(ControlType::Accept, "protobuf:dnstap.Dnstap");
      CHECK(receive(fd, accept.size()) == accept);
      Fields f;
      Fields r;
      r.type = DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE;
      send_all(fd, concat({control(ControlType::Start, "protobuf:dnstap.Dnstap"),
                           data_frame(payload(f)), data_frame(bytes_of("junk")),
                           data_frame(payload(r)), control(ControlType::Stop)}));
      const auto finish = control(ControlType::Finish);
      CHECK(receive(fd, finish.size()) == finish);
      ::close(fd);
      // The records, in order: the query, then the response.
      std::vector<dnsmon::FrameHeader> got;
      for (int i = 0; i < 500 && got.size() < 2; ++i) {
        dnsmon::FrameView v;
        if (ring.front(v)) {
          dnsmon::record::Header h;
          std::span<const std::byte> wire;
          REQUIRE(dnsmon::record::decode(v.bytes, h, wire));
          CHECK(wire.size() == f.query.size());
          got.push_back(v.header);
          ring.pop();
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
      REQUIRE(got.size() == 2);
      CHECK(got[0].link_type == dnsmon::record::kLinkType);
      CHECK(got[0].source == 3);
      CHECK(got[0].ts_ns == 1'700'000'000'000'001'000);
      CHECK(got[1].ts_ns == 1'700'000'000'000'251'000);
      const auto& st2 = source->stats();
      for (int i = 0; i < 500 && st2.dnstap_open.get() != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      CHECK(st2.dnstap_frames[0].get() == 2);
      CHECK(st2.dnstap_frames[2].get() == 1);
      CHECK(st2.dnstap_accepted.get() == 1);
      CHECK(st2.dnstap_open.get() == 0);
      CHECK(st2.received.get() == 2);
      CHECK(source->name() == "dnstap:" + sock.string());
    }
    CHECK(error.empty());
    source.reset();
    CHECK_FALSE(fs::exists(sock));
  }
}

TEST_CASE("a dnstap socket whose ring is full drops and counts, and keeps reading",
          "[capture][dnstap][threads]") {
  TempDir dir;
  const fs::path sock = dir.path / "slow.sock";
  dnsmon::FrameRing ring(16, dnsmon::record::kMaxRecordBytes);  // nobody pops: a stalled worker
  std::array<dnsmon::FrameRing*, 1> rings{&ring};
  auto source = dnsmon::DnstapSource::open(sock, dnsmon::CaptureOptions{}, 0);
  const auto& st = source->stats();
  {
    std::jthread t([&](std::stop_token stop) { (void)source->run(std::move(stop), rings); });
    const int fd = connect_to(sock);
    REQUIRE(fd >= 0);
    std::vector<std::byte> stream;
    dnsmon::dnstap::append_control_frame(stream, ControlType::Start, "protobuf:dnstap.Dnstap");
    const auto p = payload(Fields{});
    for (int i = 0; i < 40; ++i) {
      dnsmon::dnstap::append_data_frame(stream, p);
    }
    dnsmon::dnstap::append_control_frame(stream, ControlType::Stop);
    send_all(fd, stream);
    const auto finish = control(ControlType::Finish);
    CHECK(receive(fd, finish.size()) == finish);  // the writer was never held up
    ::close(fd);
    for (int i = 0; i < 500 && st.received.get() < 40; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  CHECK(st.received.get() == 40);
  CHECK(st.dnstap_frames[0].get() == 40);
  CHECK(ring.size_approx() == 16);
  CHECK(st.ring_dropped.get() == 24);
}
