#include "dnsmon/parser/detail/tcp_reassembly.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "alloc_counter.hpp"

namespace {

using dnsmon::detail::kTcpFin;
using dnsmon::detail::kTcpRst;
using dnsmon::detail::kTcpSyn;
using dnsmon::detail::TcpFlowKey;
using dnsmon::detail::TcpReassembler;
using dnsmon::detail::TcpReassemblyOptions;
using Bytes = std::vector<std::byte>;

constexpr std::int64_t kSecond = 1'000'000'000;

void put16(Bytes& b, std::size_t v) {
  b.push_back(static_cast<std::byte>((v >> 8U) & 0xFFU));
  b.push_back(static_cast<std::byte>(v & 0xFFU));
}

// A query for example.com/A with the given id, followed by `pad` zero bytes (trailing data, so
// that sizes can be chosen; the header counts still fit).
Bytes query(std::size_t id, std::size_t pad = 0) {
  Bytes b;
  put16(b, id);
  put16(b, 0x0100);  // RD
  put16(b, 1);
  put16(b, 0);
  put16(b, 0);
  put16(b, 0);
  for (const std::string_view label : {"example", "com"}) {
    b.push_back(static_cast<std::byte>(label.size()));
    for (const char c : label) {
      b.push_back(static_cast<std::byte>(c));
    }
  }
  b.push_back(std::byte{0});
  put16(b, 1);
  put16(b, 1);
  b.insert(b.end(), pad, std::byte{0});
  return b;
}

// The RFC 7766 framing: a two-byte length, then the message.
Bytes framed(const Bytes& message) {
  Bytes b;
  put16(b, message.size());
  b.insert(b.end(), message.begin(), message.end());
  return b;
}

// Framed queries with ids first, first + 1, ...
Bytes stream_of(std::size_t count, std::size_t first = 1, std::size_t pad = 0) {
  Bytes b;
  for (std::size_t id = first; id < first + count; ++id) {
    const auto m = framed(query(id, pad));
    b.insert(b.end(), m.begin(), m.end());
  }
  return b;
}

std::vector<std::size_t> iota_ids(std::size_t first, std::size_t last) {
  std::vector<std::size_t> ids(last - first + 1);
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

TcpFlowKey client_key(std::uint32_t n) {
  TcpFlowKey k;
  k.family = 4;
  k.src = {10, static_cast<std::uint8_t>(n >> 16U), static_cast<std::uint8_t>(n >> 8U),
           static_cast<std::uint8_t>(n)};
  k.dst = {192, 0, 2, 53};
  k.sport = static_cast<std::uint16_t>(1024 + (n % 60000));
  k.dport = 53;
  return k;
}

// Smaller tables than the defaults: a 16 MiB pool costs ~30 ms per construction under ASan.
TcpReassemblyOptions test_options() {
  TcpReassemblyOptions o;
  o.max_flows = 256;
  o.memory_budget_bytes = 1 << 20;
  o.hash_seed = 0x5eed;  // deterministic buckets
  return o;
}

struct Received {
  std::vector<Bytes> messages;
  std::vector<TcpFlowKey> keys;

  void operator()(const TcpFlowKey& key, std::span<const std::byte> m) noexcept {
    messages.emplace_back(m.begin(), m.end());
    keys.push_back(key);
  }

  [[nodiscard]] std::vector<std::size_t> ids() const {
    std::vector<std::size_t> out;
    for (const auto& m : messages) {
      out.push_back(m.size() < 2 ? 0xFFFFFF
                                 : (std::to_integer<std::size_t>(m[0]) << 8U) |
                                       std::to_integer<std::size_t>(m[1]));
    }
    return out;
  }
};

// One direction of one connection, with a clock.
struct Stream {
  TcpReassembler r;
  Received got;
  TcpFlowKey key = client_key(1);
  std::int64_t now_ns = 0;

  explicit Stream(TcpReassemblyOptions o = test_options()) : r(o) {}

  void syn(std::uint32_t isn, std::span<const std::byte> data = {}) {
    r.add(key, isn, kTcpSyn, data, now_ns, got);
  }

  void send(std::uint32_t seq, std::span<const std::byte> data, std::uint8_t flags = 0) {
    r.add(key, seq, flags, data, now_ns, got);
  }

  // Bytes [from, to) of `stream`, which starts at sequence number base.
  void send_part(std::uint32_t base, const Bytes& stream, std::size_t from, std::size_t to,
                 std::uint8_t flags = 0) {
    send(static_cast<std::uint32_t>(base + from), std::span(stream).subspan(from, to - from),
         flags);
  }

  [[nodiscard]] std::uint64_t stat(const dnsmon::SingleWriterCounter& counter) const {
    return counter.get();
  }
};

constexpr std::size_t kFramed = 31;  // framed(query(id)): 2 + 12 header + 13 name + 4
constexpr std::uint32_t kIsn = 1000;
constexpr std::uint32_t kBase = kIsn + 1;  // the first data byte after the SYN

}  // namespace

TEST_CASE("a message in one segment is delivered without its length prefix", "[parser][tcp]") {
  Stream s;
  s.syn(kIsn);
  const auto q = query(7);
  s.send(kBase, framed(q));
  REQUIRE(s.got.messages.size() == 1);
  CHECK(s.got.messages[0] == q);
  CHECK(framed(q).size() == kFramed);
  CHECK(s.stat(s.r.stats().messages) == 1);
  CHECK(s.stat(s.r.stats().segments) == 2);
  CHECK(s.r.memory_bytes() == 0);
}

TEST_CASE("several messages in one segment are delivered in order", "[parser][tcp]") {
  Stream s;
  s.syn(kIsn);
  s.send(kBase, stream_of(5));
  CHECK(s.got.ids() == iota_ids(1, 5));
  CHECK(s.r.memory_bytes() == 0);
}

TEST_CASE("a message split at any point, inside the length prefix too, is delivered once whole",
          "[parser][tcp]") {
  const auto bytes = stream_of(3);
  for (std::size_t cut = 1; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, cut);
    s.send_part(kBase, bytes, cut, bytes.size());
    CHECK(s.got.ids() == iota_ids(1, 3));
    CHECK(s.r.memory_bytes() == 0);
  }
  Stream s;  // and one byte per segment
  s.syn(kIsn);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s.send_part(kBase, bytes, i, i + 1);
  }
  CHECK(s.got.ids() == iota_ids(1, 3));
  CHECK(s.r.memory_bytes() == 0);
}

TEST_CASE("a message spanning many segments and chunks is delivered intact", "[parser][tcp]") {
  Stream s;
  s.syn(kIsn);
  const auto q = query(9, 60000);
  const auto bytes = framed(q);
  for (std::size_t pos = 0; pos < bytes.size(); pos += 1448) {
    s.send_part(kBase, bytes, pos, std::min(bytes.size(), pos + 1448));
  }
  REQUIRE(s.got.messages.size() == 1);
  CHECK(s.got.messages[0] == q);
  CHECK(s.r.memory_bytes() == 0);
}

TEST_CASE("segments without payload or flags are ignored without a lookup", "[parser][tcp]") {
  Stream s;
  s.send(kBase, {});  // an ACK for a flow never seen: no flow is made
  CHECK(s.r.flows() == 0);
  s.syn(kIsn);
  s.send(kBase, {});
  CHECK(s.r.flows() == 1);
  CHECK(s.stat(s.r.stats().segments) == 3);
  CHECK(s.stat(s.r.stats().midstream) == 0);
  CHECK(s.got.messages.empty());
}

TEST_CASE("out-of-order segments are held and delivered in order once the hole fills",
          "[parser][tcp]") {
  const auto bytes = stream_of(4);
  const std::vector<std::size_t> cuts{0, 20, 45, 70, 101, bytes.size()};
  std::vector<std::size_t> order(cuts.size() - 1);
  std::iota(order.begin(), order.end(), 0);
  std::uint64_t held = 0;
  do {
    CAPTURE(order);
    Stream s;
    s.syn(kIsn);
    for (const auto i : order) {
      s.send_part(kBase, bytes, cuts[i], cuts[i + 1]);
    }
    CHECK(s.got.ids() == iota_ids(1, 4));
    CHECK(s.stat(s.r.stats().gaps) == 0);
    CHECK(s.r.memory_bytes() == 0);
    held += s.stat(s.r.stats().out_of_order);
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(held > 0);
}

TEST_CASE("retransmitted and overlapping segments deliver every message once", "[parser][tcp]") {
  const auto bytes = stream_of(3);  // 93 bytes
  Stream s;
  s.syn(kIsn);
  s.send_part(kBase, bytes, 60, 93);  // held
  s.send_part(kBase, bytes, 60, 93);  // held again: a duplicate
  s.send_part(kBase, bytes, 50, 80);  // overlaps what is held
  s.send_part(kBase, bytes, 0, 30);
  s.send_part(kBase, bytes, 0, 30);   // already received
  s.send_part(kBase, bytes, 10, 55);  // part old, part new
  s.send_part(kBase, bytes, 0, 93);   // all old
  CHECK(s.got.ids() == iota_ids(1, 3));
  CHECK(s.stat(s.r.stats().duplicates) == 5);
  CHECK(s.stat(s.r.stats().gaps) == 0);
  CHECK(s.stat(s.r.stats().bytes_skipped) == 0);
  CHECK(s.r.memory_bytes() == 0);
}

TEST_CASE("a hole that the flow buffer cannot wait for is skipped and the stream resynchronises",
          "[parser][tcp]") {
  auto o = test_options();
  o.max_flow_bytes = 1024;
  o.memory_budget_bytes = std::size_t{64} << 10U;
  const std::size_t pad = 70;  // framed messages of 101 bytes
  const auto one = framed(query(1, pad)).size();

  SECTION("the lost segment held a whole message") {
    Stream s{o};
    s.syn(kIsn);
    const auto bytes = stream_of(30, 1, pad);
    for (std::size_t i = 0; i < 30; ++i) {
      if (i != 1) {  // message 2 is never captured
        s.send_part(kBase, bytes, i * one, (i + 1) * one);
      }
    }
    auto want = iota_ids(3, 30);
    want.insert(want.begin(), 1);
    CHECK(s.got.ids() == want);
    CHECK(s.stat(s.r.stats().gaps) == 1);
    CHECK(s.stat(s.r.stats().resyncs) == 1);
    CHECK(s.stat(s.r.stats().bytes_skipped) == 0);
    CHECK(s.r.memory_bytes() == 0);
  }
  SECTION("the lost segment held the start of a message") {
    Stream s{o};
    s.syn(kIsn);
    const auto bytes = stream_of(30, 1, pad);
    s.send_part(kBase, bytes, 0, one);
    // message 2 came in two segments and the first was lost
    s.send_part(kBase, bytes, one + 40, 2 * one);
    for (std::size_t i = 2; i < 30; ++i) {
      s.send_part(kBase, bytes, i * one, (i + 1) * one);
    }
    auto want = iota_ids(3, 30);
    want.insert(want.begin(), 1);
    CHECK(s.got.ids() == want);
    CHECK(s.stat(s.r.stats().gaps) == 1);
    CHECK(s.stat(s.r.stats().resyncs) == 1);
    CHECK(s.stat(s.r.stats().bytes_skipped) == one - 40);  // the tail of message 2
  }
}

TEST_CASE("a segment beyond the window drops what is held and resynchronises there",
          "[parser][tcp]") {
  auto o = test_options();
  o.window_bytes = 1000;
  Stream s{o};
  s.syn(kIsn);
  const auto bytes = stream_of(3);
  s.send_part(kBase, bytes, 0, kFramed);  // message 1
  s.send_part(kBase, bytes, 40, 60);      // held, never completed
  const auto far = framed(query(9));
  s.send(kBase + 5000, far);
  s.send(static_cast<std::uint32_t>(kBase + 5000 + far.size()), framed(query(10)));
  CHECK(s.got.ids() == std::vector<std::size_t>{1, 9, 10});
  CHECK(s.stat(s.r.stats().gaps) == 1);
  CHECK(s.stat(s.r.stats().resyncs) == 1);
  CHECK(s.stat(s.r.stats().bytes_skipped) == 20);
  CHECK(s.r.memory_bytes() == 0);
}

TEST_CASE("a hole older than hole_timeout_ns is skipped in packet time", "[parser][tcp]") {
  const auto bytes = stream_of(4);
  SECTION("when the flow's next segment arrives") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, kFramed);
    s.send_part(kBase, bytes, 2 * kFramed, 3 * kFramed);  // message 3 waits for message 2
    s.now_ns = kSecond - 1;
    s.send_part(kBase, bytes, 2 * kFramed, 3 * kFramed);
    CHECK(s.got.ids() == std::vector<std::size_t>{1});
    s.now_ns = kSecond;
    s.send_part(kBase, bytes, 3 * kFramed, 4 * kFramed);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4});
    CHECK(s.stat(s.r.stats().gaps) == 1);
    CHECK(s.stat(s.r.stats().resyncs) == 1);
  }
  SECTION("from expire()") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, kFramed);
    s.send_part(kBase, bytes, 2 * kFramed, 3 * kFramed);
    s.r.expire(5 * kSecond);  // this overload only drops idle flows
    CHECK(s.got.ids() == std::vector<std::size_t>{1});
    s.r.expire(kSecond - 1, s.got);
    CHECK(s.got.ids() == std::vector<std::size_t>{1});
    s.r.expire(kSecond, s.got);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3});
    CHECK(s.got.keys.back() == s.key);  // expire() says which flow a message belongs to
    CHECK(s.r.memory_bytes() == 0);
    s.send_part(kBase, bytes, 3 * kFramed, 4 * kFramed);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4});
  }
}

TEST_CASE("after a gap, segments that do not start like a DNS message are skipped",
          "[parser][tcp]") {
  Stream s;
  s.syn(kIsn);
  s.send(kBase, framed(query(1)));
  const std::uint32_t after_hole = kBase + kFramed + 100;
  const Bytes garbage(50, std::byte{0xFF});  // length 65535, but the Z bit is set
  s.send(after_hole, garbage);
  Bytes bad_counts = framed(query(2));
  bad_counts[7] = std::byte{40};  // qdcount 40 cannot fit in the message
  s.send(after_hole + 50, bad_counts);
  s.send(static_cast<std::uint32_t>(after_hole + 50 + bad_counts.size()), stream_of(2, 3));
  s.r.expire(2 * kSecond, s.got);
  CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4});
  CHECK(s.stat(s.r.stats().resyncs) == 1);
  CHECK(s.stat(s.r.stats().bytes_skipped) == 50 + bad_counts.size());
}

TEST_CASE("a stream first seen without a SYN starts at the first segment that looks like a message",
          "[parser][tcp]") {
  SECTION("a plausible first segment") {
    Stream s;
    s.send(5000, stream_of(2));
    CHECK(s.got.ids() == iota_ids(1, 2));
    CHECK(s.stat(s.r.stats().midstream) == 1);
  }
  SECTION("the tail of a message first, then a message") {
    Stream s;
    const Bytes tail(40, std::byte{0});
    s.send(5000, tail);
    s.send(5040, stream_of(2));
    CHECK(s.got.ids() == iota_ids(1, 2));
    CHECK(s.stat(s.r.stats().midstream) == 1);
    CHECK(s.stat(s.r.stats().resyncs) == 0);
    CHECK(s.stat(s.r.stats().bytes_skipped) == 40);
  }
  SECTION("the length prefix in a segment of its own") {
    Stream s;
    const auto bytes = stream_of(1);
    s.send_part(5000, bytes, 0, 2);
    s.send_part(5000, bytes, 2, bytes.size());
    CHECK(s.got.ids() == iota_ids(1, 1));
    CHECK(s.stat(s.r.stats().bytes_skipped) == 0);
  }
  SECTION("a short segment that is not a start, then one that is") {
    Stream s;
    const Bytes junk(5, std::byte{0});
    s.send(5000, junk);
    s.send(5005, stream_of(1, 8));
    CHECK(s.got.ids() == std::vector<std::size_t>{8});
    CHECK(s.stat(s.r.stats().bytes_skipped) == 5);
  }
}

TEST_CASE("a resync that buffered a short first segment goes on from what the probe holds",
          "[parser][tcp]") {
  // A stream seen from its middle, whose first segment (3 bytes) is too short to judge: the next
  // segment is judged from the buffer, which then holds 17 bytes (those 3 and 14 of the segment).
  SECTION("a message shorter than the probe, then more than the flow buffer holds") {
    auto o = test_options();
    o.max_flow_bytes = 64;
    Stream s{o};
    Bytes bytes(14, std::byte{0});  // a framed DSO message: 12-byte header, all counts zero
    bytes[1] = std::byte{12};
    bytes[3] = std::byte{0x42};        // id
    bytes[4] = std::byte{0x30};        // opcode 6 (DSO)
    const auto rest = stream_of(200);  // 6,200 bytes, far more than 64
    bytes.insert(bytes.end(), rest.begin(), rest.end());
    s.send_part(5000, bytes, 0, 3);
    s.send_part(5000, bytes, 3, bytes.size());
    auto want = iota_ids(1, 200);
    want.insert(want.begin(), 0x42);
    CHECK(s.got.ids() == want);
    CHECK(s.stat(s.r.stats().bytes_skipped) == 0);
    CHECK(s.r.memory_bytes() == 0);
  }
  SECTION("the 17 bytes hold exactly whole messages, or several and one byte more") {
    Bytes dso(14, std::byte{0});
    dso[1] = std::byte{12};
    dso[3] = std::byte{0x42};
    dso[4] = std::byte{0x30};
    // Framed messages of 1 byte (3 bytes framed) and of none (2 bytes): 14 + 3 fills the buffer
    // exactly, 14 + 2 leaves the first byte of the next length prefix in it.
    for (const Bytes& filler :
         {Bytes{std::byte{0}, std::byte{1}, std::byte{7}}, Bytes{std::byte{0}, std::byte{0}}}) {
      Stream s;
      Bytes bytes = dso;
      bytes.insert(bytes.end(), filler.begin(), filler.end());
      const auto rest = stream_of(3);
      bytes.insert(bytes.end(), rest.begin(), rest.end());
      s.send_part(5000, bytes, 0, 3);
      s.send_part(5000, bytes, 3, bytes.size());
      REQUIRE(s.got.messages.size() == 5);
      CHECK(s.got.messages[1] == Bytes(filler.begin() + 2, filler.end()));
      CHECK(s.got.ids() == std::vector<std::size_t>{0x42, 0xFFFFFF, 1, 2, 3});
      CHECK(s.stat(s.r.stats().bytes_skipped) == 0);
      CHECK(s.r.memory_bytes() == 0);
    }
  }
  SECTION("a message longer than max_flow_bytes") {
    auto o = test_options();
    o.max_flow_bytes = 512;
    Stream s{o};
    Bytes bytes = framed(query(1, 1000));
    const auto big = bytes.size();
    const auto next = framed(query(2));
    bytes.insert(bytes.end(), next.begin(), next.end());
    s.send_part(5000, bytes, 0, 3);
    s.send_part(5000, bytes, 3, bytes.size());
    CHECK(s.got.ids() == std::vector<std::size_t>{2});
    CHECK(s.stat(s.r.stats().oversized) == 1);
    CHECK(s.stat(s.r.stats().bytes_skipped) == big);
    CHECK(s.r.memory_bytes() == 0);
  }
}

TEST_CASE("packet times at the ends of the 64-bit range do not overflow", "[parser][tcp]") {
  // Differences are taken modulo 2^64: from the smallest time to the largest is -1 ns, not an
  // overflow, so the flow neither times out nor skips its hole.
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const auto bytes = stream_of(1);
  Stream s;
  s.now_ns = kMin;
  s.syn(kIsn);
  s.send_part(kBase, bytes, 0, 10);
  s.send_part(kBase, bytes, 20, bytes.size());  // held behind a hole
  s.now_ns = kMax;
  s.r.expire(kMax, s.got);
  CHECK(s.r.flows() == 1);
  s.send_part(kBase, bytes, 10, 20);
  CHECK(s.got.ids() == std::vector<std::size_t>{1});
  s.r.expire(kMin, s.got);
  CHECK(s.r.flows() == 1);
  CHECK(s.stat(s.r.stats().timed_out) == 0);
  CHECK(s.stat(s.r.stats().gaps) == 0);
}

TEST_CASE("after a SYN the stream starts at the next sequence number, SYN data included",
          "[parser][tcp]") {
  Stream s;
  const auto first = framed(query(1));
  s.syn(kIsn, first);  // TCP Fast Open
  s.send(static_cast<std::uint32_t>(kBase + first.size()), framed(query(2)));
  CHECK(s.got.ids() == iota_ids(1, 2));
  CHECK(s.stat(s.r.stats().midstream) == 0);
}

TEST_CASE("FIN and RST end the direction and free its state", "[parser][tcp]") {
  const auto bytes = stream_of(2);
  SECTION("FIN after a complete message and part of another") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, kFramed + 10);
    CHECK(s.r.memory_bytes() > 0);
    s.send(kBase + kFramed + 10, {}, kTcpFin);
    CHECK(s.got.ids() == iota_ids(1, 1));
    CHECK(s.r.flows() == 0);
    CHECK(s.r.memory_bytes() == 0);
    CHECK(s.stat(s.r.stats().flows_closed) == 1);
    CHECK(s.stat(s.r.stats().bytes_skipped) == 10);
  }
  SECTION("FIN on the segment that completes the last message") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, kFramed + 10);
    s.send_part(kBase, bytes, kFramed + 10, 2 * kFramed, kTcpFin);
    CHECK(s.got.ids() == iota_ids(1, 2));
    CHECK(s.r.flows() == 0);
    CHECK(s.stat(s.r.stats().bytes_skipped) == 0);
  }
  SECTION("a FIN ahead of a hole waits for the hole") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, kFramed, 2 * kFramed, kTcpFin);
    CHECK(s.r.flows() == 1);
    s.send_part(kBase, bytes, 0, kFramed);
    CHECK(s.got.ids() == iota_ids(1, 2));
    CHECK(s.r.flows() == 0);
    CHECK(s.stat(s.r.stats().flows_closed) == 1);
  }
  SECTION("RST") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, 10);
    s.send(kBase + 10, {}, kTcpRst);
    CHECK(s.r.flows() == 0);
    CHECK(s.r.memory_bytes() == 0);
    CHECK(s.stat(s.r.stats().flows_closed) == 1);
    CHECK(s.got.messages.empty());
  }
  SECTION("FIN or RST for an unknown flow") {
    Stream s;
    s.send(kBase, {}, kTcpFin);
    s.send(kBase, {}, kTcpRst);
    CHECK(s.r.flows() == 0);
    CHECK(s.stat(s.r.stats().flows_closed) == 0);
  }
}

TEST_CASE("a new SYN restarts a known flow, a retransmitted SYN does not", "[parser][tcp]") {
  const auto bytes = stream_of(2);
  Stream s;
  s.syn(kIsn);
  s.send_part(kBase, bytes, 0, 10);
  s.syn(kIsn);  // retransmitted: the partial message stays
  s.send_part(kBase, bytes, 10, kFramed);
  CHECK(s.got.ids() == iota_ids(1, 1));
  s.send_part(kBase, bytes, kFramed, kFramed + 17);
  s.syn(90000);  // a new connection on the same ports
  CHECK(s.stat(s.r.stats().bytes_skipped) == 17);
  CHECK(s.r.memory_bytes() == 0);
  s.send(90001, framed(query(5)));
  CHECK(s.got.ids() == std::vector<std::size_t>{1, 5});
  CHECK(s.r.flows() == 1);
}

TEST_CASE("a message longer than max_flow_bytes is skipped and the stream stays in sync",
          "[parser][tcp]") {
  auto o = test_options();
  o.max_flow_bytes = 512;
  Stream s{o};
  s.syn(kIsn);
  Bytes bytes = framed(query(1, 1000));
  const auto big = bytes.size();
  const auto next = framed(query(2));
  bytes.insert(bytes.end(), next.begin(), next.end());
  s.send_part(kBase, bytes, 0, 400);
  s.send_part(kBase, bytes, 400, 800);
  s.send_part(kBase, bytes, 800, bytes.size());
  CHECK(s.got.ids() == std::vector<std::size_t>{2});
  CHECK(s.stat(s.r.stats().oversized) == 1);
  CHECK(s.stat(s.r.stats().bytes_skipped) == big);
  CHECK(s.stat(s.r.stats().gaps) == 0);
  CHECK(s.r.memory_bytes() == 0);
  // Whole in one segment, it needs no buffer, so it is delivered.
  s.send(static_cast<std::uint32_t>(kBase + bytes.size()), framed(query(3, 1000)));
  CHECK(s.got.ids() == std::vector<std::size_t>{2, 3});
}

TEST_CASE("the least recently used flow is evicted when the table is full", "[parser][tcp]") {
  auto o = test_options();
  o.max_flows = 2;
  TcpReassembler r{o};
  Received got;
  const auto bytes = stream_of(1);
  r.add(client_key(1), kIsn, kTcpSyn, {}, 0, got);
  r.add(client_key(2), kIsn, kTcpSyn, {}, 1, got);
  r.add(client_key(1), kBase, 0, std::span(bytes).first(10), 2, got);  // flow 1 is now the newest
  r.add(client_key(3), kIsn, kTcpSyn, {}, 3, got);                     // evicts flow 2
  CHECK(r.flows() == 2);
  CHECK(r.stats().evicted.get() == 1);
  r.add(client_key(1), kBase + 10, 0, std::span(bytes).subspan(10), 4, got);
  CHECK(got.ids() == iota_ids(1, 1));
  r.add(client_key(2), kBase, 0, bytes, 5, got);  // flow 2 comes back mid-stream
  CHECK(r.stats().midstream.get() == 1);
  CHECK(r.stats().evicted.get() == 2);
  CHECK(got.ids() == std::vector<std::size_t>{1, 1});
}

TEST_CASE("buffered bytes stay within the memory budget by evicting the least recently used",
          "[parser][tcp]") {
  auto o = test_options();
  o.memory_budget_bytes = std::size_t{128}
                          << 10U;  // 64 chunks: the least that holds one 64 KiB message
  TcpReassembler r{o};
  Received got;
  const auto bytes = stream_of(1, 1, 100);
  for (std::uint32_t i = 0; i < 100; ++i) {
    r.add(client_key(i), kIsn, kTcpSyn, {}, i, got);
    r.add(client_key(i), kBase, 0, std::span(bytes).first(50), i, got);
    REQUIRE(r.memory_bytes() <= o.memory_budget_bytes);
  }
  CHECK(r.stats().evicted.get() == 36);
  CHECK(r.memory_bytes() == o.memory_budget_bytes);
  for (std::uint32_t i = 0; i < 100; ++i) {
    r.add(client_key(i), kBase + 50, 0, std::span(bytes).subspan(50), 200, got);
  }
  CHECK(got.messages.size() == 64);  // the 64 most recent flows kept their first half
  CHECK(r.memory_bytes() == 0);
}

TEST_CASE("idle flows expire in packet time", "[parser][tcp]") {
  const auto bytes = stream_of(1);
  Stream s;
  s.syn(kIsn);
  s.send_part(kBase, bytes, 0, 10);
  s.r.expire(60 * kSecond - 1);
  CHECK(s.r.flows() == 1);
  s.r.expire(60 * kSecond);
  CHECK(s.r.flows() == 0);
  CHECK(s.r.memory_bytes() == 0);
  CHECK(s.stat(s.r.stats().timed_out) == 1);
  CHECK(s.stat(s.r.stats().bytes_skipped) == 10);

  // Without expire(), the next segment of a stale flow finds it timed out just the same.
  s.syn(kIsn);
  s.send_part(kBase, bytes, 0, 10);
  s.now_ns = 200 * kSecond;
  s.send_part(kBase, bytes, 10, bytes.size());
  CHECK(s.stat(s.r.stats().timed_out) == 2);
  CHECK(s.stat(s.r.stats().midstream) == 1);
  CHECK(s.got.messages.empty());
}

TEST_CASE("sequence numbers wrap around 2^32", "[parser][tcp]") {
  const auto bytes = stream_of(20);
  for (const std::uint32_t isn : {0xFFFF'FF00U, 0xFFFF'FFFFU, 0xFFFF'FFFEU, 0x7FFF'FFF0U}) {
    CAPTURE(isn);
    Stream s;
    s.syn(isn);
    const auto base = static_cast<std::uint32_t>(isn + 1);
    // 17-byte segments with each pair swapped, so that holes open and close across the wrap.
    std::vector<std::pair<std::size_t, std::size_t>> segments;
    for (std::size_t pos = 0; pos < bytes.size(); pos += 17) {
      segments.emplace_back(pos, std::min(bytes.size(), pos + 17));
    }
    for (std::size_t i = 0; i + 1 < segments.size(); i += 2) {
      std::swap(segments[i], segments[i + 1]);
    }
    for (const auto& [from, to] : segments) {
      s.send_part(base, bytes, from, to);
    }
    CHECK(s.got.ids() == iota_ids(1, 20));
    CHECK(s.stat(s.r.stats().gaps) == 0);
    CHECK(s.r.memory_bytes() == 0);
  }
}

TEST_CASE("the data path does not allocate once warmed up", "[parser][tcp]") {
  auto o = test_options();
  o.max_flows = 64;
  TcpReassembler r{o};
  std::uint64_t delivered = 0;
  auto count = [&delivered](const TcpFlowKey&, std::span<const std::byte>) noexcept {
    ++delivered;
  };
  const auto bytes = stream_of(3, 1, 3000);  // messages span chunks
  auto one_connection = [&](std::uint32_t n, std::int64_t now_ns) {
    const auto key = client_key(n);
    const std::uint32_t isn = n * 7919U;
    const auto base = isn + 1;
    auto part = [&](std::size_t from, std::size_t to, std::uint8_t flags = 0) {
      r.add(key, static_cast<std::uint32_t>(base + from), flags,
            std::span(bytes).subspan(from, to - from), now_ns, count);
    };
    r.add(key, isn, kTcpSyn, {}, now_ns, count);
    part(0, 1000);
    part(2000, 4000);  // out of order
    part(1000, 2000);
    part(1000, 1500);                        // duplicate
    r.add(key, base, 0, {}, now_ns, count);  // ACK
    part(4000, bytes.size(), kTcpFin);
    r.add(client_key(n + 1000), isn, 0, std::span(bytes).subspan(7, 100), now_ns, count);
  };
  for (std::uint32_t n = 0; n < 200; ++n) {  // warm up: every flow slot and chunk used once
    one_connection(n, n);
  }
  const auto before = dnsmon::test::new_calls();
  const auto delivered_before = delivered;
  for (std::uint32_t n = 0; n < 5000; ++n) {
    one_connection(n, 1000 + n);
    if (n % 100 == 0) {
      r.expire(1000 + n);
    }
  }
  const auto after = dnsmon::test::new_calls();
  CHECK(after - before == 0);
  CHECK(delivered - delivered_before == std::uint64_t{3} * 5000);
}

TEST_CASE("a million half-open flows stay within the flow table and the memory budget",
          "[parser][tcp]") {
  auto o = test_options();
  o.max_flows = 1024;
  o.memory_budget_bytes = std::size_t{256} << 10U;
  TcpReassembler r{o};
  Received got;
  const auto bytes = stream_of(1, 1, 400);
  const auto half = std::span(bytes).first(200);  // a message start that never completes
  std::size_t max_flows = 0;
  std::size_t max_memory = 0;
  for (std::uint32_t n = 0; n < 1'000'000; ++n) {
    if (n % 2 == 0) {
      r.add(client_key(n), n, kTcpSyn, {}, n, got);
    } else {
      r.add(client_key(n), n, 0, half, n, got);
    }
    max_flows = std::max(max_flows, r.flows());
    max_memory = std::max(max_memory, r.memory_bytes());
  }
  CHECK(max_flows == o.max_flows);
  CHECK(max_memory <= o.memory_budget_bytes);
  CHECK(r.stats().evicted.get() >= 1'000'000 - o.max_flows);
  CHECK(r.stats().midstream.get() == 500'000);
  CHECK(got.messages.empty());
}

TEST_CASE("lossless streams reordered, split and duplicated at random deliver every message once",
          "[parser][tcp]") {
  std::mt19937 rng(20240607);
  auto pick = [&rng](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  Stream s;  // one reassembler, one flow per trial: constructing 300 is slow under ASan
  for (std::uint32_t trial = 0; trial < 300; ++trial) {
    CAPTURE(trial);
    const auto count = pick(1, 25);
    Bytes bytes;
    for (std::size_t id = 1; id <= count; ++id) {
      const auto m = framed(query(id, pick(0, 1) == 0 ? pick(0, 40) : pick(0, 5000)));
      bytes.insert(bytes.end(), m.begin(), m.end());
    }
    std::vector<std::pair<std::size_t, std::size_t>> segments;
    for (std::size_t pos = 0; pos < bytes.size();) {
      const auto end = std::min(bytes.size(), pos + pick(1, 1500));
      segments.emplace_back(pos, end);
      pos = end;
    }
    // Reorder: sorting by index plus a jitter of up to 4 moves no segment more than 4 places.
    std::vector<std::pair<std::size_t, std::size_t>> keyed;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      keyed.emplace_back(i + pick(0, 4), i);
    }
    std::sort(keyed.begin(), keyed.end());
    std::vector<std::pair<std::size_t, std::size_t>> shuffled;
    shuffled.reserve(segments.size());
    for (const auto& [jittered, i] : keyed) {
      shuffled.push_back(segments[i]);
    }
    segments = shuffled;
    const auto isn = static_cast<std::uint32_t>(pick(0, 1) == 0 ? 0xFFFF'0000U + pick(0, 0xFFFF)
                                                                : pick(0, 0xFFFF'FFFF));
    s.key = client_key(trial);
    s.got = {};
    s.syn(isn);
    const auto base = static_cast<std::uint32_t>(isn + 1);
    for (std::size_t i = 0; i < segments.size(); ++i) {
      s.send_part(base, bytes, segments[i].first, segments[i].second);
      if (pick(0, 9) == 0) {
        const auto& again = segments[pick(0, i)];
        s.send_part(base, bytes, again.first, again.second);
      }
    }
    REQUIRE(s.got.ids() == iota_ids(1, count));
    CHECK(s.r.memory_bytes() == 0);
  }
  CHECK(s.stat(s.r.stats().gaps) == 0);
}

TEST_CASE("random segments never crash and never exceed the limits", "[parser][tcp]") {
  std::mt19937 rng(7);
  auto pick = [&rng](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  auto o = test_options();
  o.max_flows = 6;
  o.max_flow_bytes = 1024;
  o.memory_budget_bytes = std::size_t{8} << 10U;
  o.window_bytes = 4096;
  o.hole_timeout_ns = 1000;
  o.idle_timeout_ns = 100'000;
  TcpReassembler r{o};
  std::uint64_t delivered = 0;
  auto sink = [&delivered](const TcpFlowKey&, std::span<const std::byte> m) noexcept {
    delivered += m.empty() ? 1 : std::to_integer<std::uint64_t>(m[0]) + 1;  // touch the bytes
  };
  const auto valid = stream_of(40, 1, 30);
  std::array<std::uint32_t, 8> bases{};
  for (auto& b : bases) {
    b = static_cast<std::uint32_t>(pick(0, 0xFFFF'FFFF));
  }
  Bytes noise(1 << 16);  // half zeros: zero lengths and counts make starts that almost fit
  for (auto& b : noise) {
    b = static_cast<std::byte>(pick(0, 1) == 0 ? 0 : pick(0, 255));
  }
  Bytes payload;
  std::int64_t now_ns = 0;
  bool within_limits = true;
  for (int i = 0; i < 200'000; ++i) {
    const auto flow = static_cast<std::uint32_t>(pick(0, 7));
    const auto base = bases[flow];
    const auto offset = pick(0, 1) == 0 ? pick(0, valid.size()) : pick(0, 20'000);
    const auto seq = static_cast<std::uint32_t>(base + offset - pick(0, 1) * pick(0, 3000));
    payload.clear();
    const auto size = pick(0, 3) == 0 ? 0 : pick(1, 1600);
    if (pick(0, 1) == 0 && offset < valid.size()) {  // part of a valid stream
      const auto end = std::min(valid.size(), offset + size);
      payload.assign(valid.begin() + static_cast<std::ptrdiff_t>(offset),
                     valid.begin() + static_cast<std::ptrdiff_t>(end));
    } else {
      const auto from = static_cast<std::ptrdiff_t>(pick(0, noise.size() - size));
      payload.assign(noise.begin() + from,
                     noise.begin() + from + static_cast<std::ptrdiff_t>(size));
    }
    const auto roll = pick(0, 99);
    std::uint8_t flags = 0;
    if (roll < 3) {
      flags = kTcpSyn;
    } else if (roll < 5) {
      flags = kTcpFin;
    } else if (roll < 6) {
      flags = kTcpRst;
    }
    now_ns += static_cast<std::int64_t>(pick(0, 200));
    r.add(client_key(flow), flags == kTcpSyn ? base - 1 : seq, flags, payload, now_ns, sink);
    if (pick(0, 999) == 0) {
      r.expire(now_ns, sink);
    }
    within_limits =
        within_limits && r.flows() <= o.max_flows && r.memory_bytes() <= o.memory_budget_bytes;
  }
  CHECK(within_limits);
  CHECK(r.stats().messages.get() > 0);
  CHECK(r.stats().gaps.get() > 0);
  CHECK(r.stats().resyncs.get() > 0);
  CHECK(r.stats().evicted.get() > 0);
  r.expire(now_ns + o.idle_timeout_ns, sink);
  CHECK(r.flows() == 0);
  CHECK(r.memory_bytes() == 0);
}

TEST_CASE("the data path is noexcept and bad options are refused", "[parser][tcp]") {
  auto nothing = [](const TcpFlowKey&, std::span<const std::byte>) noexcept {};
  static_assert(noexcept(std::declval<TcpReassembler&>().add(
      TcpFlowKey{}, 0U, std::uint8_t{0}, std::span<const std::byte>{}, 0, nothing)));
  static_assert(noexcept(std::declval<TcpReassembler&>().expire(0)));
  static_assert(noexcept(std::declval<TcpReassembler&>().expire(0, nothing)));
  auto with = [](auto change) {
    auto o = test_options();
    change(o);
    return o;
  };
  CHECK_THROWS_AS(TcpReassembler{with([](auto& o) { o.max_flows = 0; })}, std::invalid_argument);
  CHECK_THROWS_AS(TcpReassembler{with([](auto& o) { o.max_flow_bytes = 10; })},
                  std::invalid_argument);
  CHECK_THROWS_AS(TcpReassembler{with([](auto& o) { o.memory_budget_bytes = 4096; })},
                  std::invalid_argument);
  CHECK_THROWS_AS(TcpReassembler{with([](auto& o) { o.window_bytes = 0; })}, std::invalid_argument);
  CHECK_THROWS_AS(TcpReassembler{with([](auto& o) { o.hole_timeout_ns = 0; })},
                  std::invalid_argument);
  CHECK_NOTHROW(TcpReassembler{with([](auto& o) { o.hash_seed = 0; })});  // random seed
}

TEST_CASE("messages behind a hole that never fills are delivered at the end or when the flow idles",
          "[parser][tcp]") {
  const auto bytes = stream_of(5);
  // Message 2 is lost; 3 and 4 wait behind the hole, and half of 5 behind them.
  auto start = [&](Stream& s) {
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, kFramed);
    s.send_part(kBase, bytes, 2 * kFramed, 4 * kFramed);
    s.send_part(kBase, bytes, 4 * kFramed, 4 * kFramed + 10);
    REQUIRE(s.got.ids() == std::vector<std::size_t>{1});
  };
  SECTION("flush() at the end of the input") {
    Stream s;
    start(s);
    s.r.flush(s.now_ns, s.got);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4});
    CHECK(s.got.keys.back() == s.key);
    CHECK(s.stat(s.r.stats().gaps) == 1);
    CHECK(s.stat(s.r.stats().resyncs) == 1);
    CHECK(s.r.flows() == 1);     // the flow stays, holding only the start of message 5
    s.r.flush(s.now_ns, s.got);  // nothing more to give
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4});
    s.send_part(kBase, bytes, 4 * kFramed + 10, 5 * kFramed);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4, 5});
  }
  SECTION("two holes, both given up") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, kFramed);
    s.send_part(kBase, bytes, 2 * kFramed, 3 * kFramed);
    s.send_part(kBase, bytes, 4 * kFramed, 5 * kFramed);  // message 4 lost too
    s.r.flush(s.now_ns, s.got);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 5});
    CHECK(s.stat(s.r.stats().gaps) == 2);
    CHECK(s.r.memory_bytes() == 0);
  }
  SECTION("a FIN behind the hole closes the flow once flushed") {
    Stream s;
    s.syn(kIsn);
    s.send_part(kBase, bytes, 0, kFramed);
    s.send_part(kBase, bytes, 2 * kFramed, 5 * kFramed, dnsmon::detail::kTcpFin);
    s.r.flush(s.now_ns, s.got);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4, 5});
    CHECK(s.r.flows() == 0);
    CHECK(s.stat(s.r.stats().flows_closed) == 1);
  }
  SECTION("an idle flow gives up its holes before expire() drops it") {
    TcpReassemblyOptions o = test_options();
    o.hole_timeout_ns = 600 * kSecond;  // longer than the idle timeout: only the idle path runs
    Stream s(o);
    start(s);
    s.r.expire(60 * kSecond, s.got);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4});
    CHECK(s.r.flows() == 0);
    CHECK(s.stat(s.r.stats().timed_out) == 1);
    CHECK(s.stat(s.r.stats().bytes_skipped) == 10);  // the start of message 5
  }
  SECTION("or when its next segment finds it idle") {
    TcpReassemblyOptions o = test_options();
    o.hole_timeout_ns = 600 * kSecond;
    Stream s(o);
    start(s);
    s.now_ns = 60 * kSecond;
    s.send_part(kBase, bytes, 4 * kFramed + 10, 5 * kFramed);
    CHECK(s.got.ids() == std::vector<std::size_t>{1, 3, 4});
    CHECK(s.stat(s.r.stats().timed_out) == 1);
  }
  SECTION("the overload without a sink drops them, as before") {
    TcpReassemblyOptions o = test_options();
    o.hole_timeout_ns = 600 * kSecond;
    Stream s(o);
    start(s);
    s.r.expire(60 * kSecond);
    CHECK(s.got.ids() == std::vector<std::size_t>{1});
    CHECK(s.r.flows() == 0);
  }
}
