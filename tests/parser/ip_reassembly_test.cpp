#include "dnsmon/parser/detail/ip_reassembly.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "alloc_counter.hpp"

namespace {

using dnsmon::detail::FragmentKey;
using dnsmon::detail::FragmentResult;
using dnsmon::detail::IpReassembler;
using dnsmon::detail::IpReassemblyOptions;
using dnsmon::detail::ReassembledDatagram;
using Bytes = std::vector<std::byte>;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kDestOptions = 60;

static_assert(noexcept(std::declval<IpReassembler&>().add(FragmentKey{}, 0, false,
                                                          std::span<const std::byte>{}, 0,
                                                          std::declval<ReassembledDatagram&>())));
static_assert(noexcept(std::declval<IpReassembler&>().expire(0)));

FragmentKey v4_key(std::uint32_t id, std::uint8_t proto = kUdp) {
  FragmentKey k;
  k.family = 4;
  k.src = {192, 0, 2, 1};
  k.dst = {198, 51, 100, 2};
  k.id = id & 0xFFFFU;
  k.proto = proto;
  return k;
}

FragmentKey v6_key(std::uint32_t id, std::uint8_t next_header = kUdp) {
  FragmentKey k;
  k.family = 6;
  k.src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  k.dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  k.id = id;
  k.proto = next_header;
  return k;
}

// Datagram bytes that depend on the key and the position, so a misplaced or foreign byte shows.
std::byte pattern_byte(const FragmentKey& key, std::size_t at) {
  return static_cast<std::byte>((at * 131U + std::size_t{key.id} * 7U + key.family) & 0xFFU);
}

Bytes pattern(const FragmentKey& key, std::size_t size) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) {
    b[i] = pattern_byte(key, i);
  }
  return b;
}

struct Piece {
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  bool more = false;
};

// Splits a datagram the way a router does: fragment_bytes (a multiple of 8) each, the rest last.
std::vector<Piece> split(std::size_t size, std::uint32_t fragment_bytes) {
  std::vector<Piece> pieces;
  for (std::size_t at = 0; at < size; at += fragment_bytes) {
    const auto length =
        static_cast<std::uint32_t>(std::min<std::size_t>(fragment_bytes, size - at));
    pieces.push_back(Piece{static_cast<std::uint32_t>(at), length, at + length < size});
  }
  return pieces;
}

FragmentResult feed(IpReassembler& r, const FragmentKey& key, const Bytes& datagram, Piece p,
                    std::int64_t now_ns, ReassembledDatagram& out) {
  return r.add(key, p.offset, p.more, std::span(datagram).subspan(p.offset, p.length), now_ns, out);
}

bool same(std::span<const std::byte> a, const Bytes& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

IpReassemblyOptions fixed_seed(IpReassemblyOptions o = {}) {
  o.hash_seed = 42;
  return o;
}

TEST_CASE("an atomic fragment is complete at once and views the caller's bytes",
          "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v6_key(1);
  const Bytes data = pattern(key, 100);
  ReassembledDatagram out;
  REQUIRE(r.add(key, 0, false, data, 0, out) == FragmentResult::Complete);
  CHECK(out.payload.data() == data.data());
  CHECK(out.payload.size() == 100);
  CHECK(out.proto == kUdp);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
  CHECK(r.stats().reassembled == 1);
}

TEST_CASE("an atomic fragment does not disturb fragments queued under its key",
          "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v6_key(2);
  const Bytes data = pattern(key, 24);
  ReassembledDatagram out;
  REQUIRE(feed(r, key, data, Piece{0, 16, true}, 0, out) == FragmentResult::Held);
  const Bytes other = pattern(v6_key(99), 40);
  REQUIRE(r.add(key, 0, false, other, 0, out) == FragmentResult::Complete);
  CHECK(same(out.payload, other));
  REQUIRE(feed(r, key, data, Piece{16, 8, false}, 0, out) == FragmentResult::Complete);
  CHECK(same(out.payload, data));
}

TEST_CASE("fragments in order reassemble to the original payload", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v4_key(7);
  const Bytes data = pattern(key, 4000);  // a large DNS response over a 1500-byte MTU
  const auto pieces = split(data.size(), 1480);
  REQUIRE(pieces.size() == 3);
  ReassembledDatagram out;
  CHECK(feed(r, key, data, pieces[0], 0, out) == FragmentResult::Held);
  CHECK(feed(r, key, data, pieces[1], 1, out) == FragmentResult::Held);
  CHECK(r.in_progress() == 1);
  CHECK(r.memory_bytes() > 0);
  REQUIRE(feed(r, key, data, pieces[2], 2, out) == FragmentResult::Complete);
  CHECK(same(out.payload, data));
  CHECK(out.proto == kUdp);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
  const auto s = r.stats();
  CHECK(s.fragments == 3);
  CHECK(s.reassembled == 1);
  CHECK(s.in_progress == 0);
  CHECK(s.memory_bytes == 0);
}

TEST_CASE("every arrival order of five fragments reassembles, the last one first included",
          "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v6_key(0xDEADBEEF);
  // 1200 bytes in 256-byte fragments: pieces straddle the 512-byte pages.
  const Bytes data = pattern(key, 1200);
  const auto pieces = split(data.size(), 256);
  REQUIRE(pieces.size() == 5);
  std::vector<std::size_t> order(pieces.size());
  std::iota(order.begin(), order.end(), 0U);
  int permutations = 0;
  do {
    CAPTURE(order);
    ReassembledDatagram out;
    for (std::size_t i = 0; i + 1 < order.size(); ++i) {
      REQUIRE(feed(r, key, data, pieces[order[i]], permutations, out) == FragmentResult::Held);
    }
    REQUIRE(feed(r, key, data, pieces[order.back()], permutations, out) ==
            FragmentResult::Complete);
    REQUIRE(same(out.payload, data));
    REQUIRE(r.in_progress() == 0);
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(permutations == 120);
  CHECK(r.memory_bytes() == 0);
}

TEST_CASE("IPv6 reassembly reports the next header of the offset-zero fragment",
          "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const Bytes data = pattern(v6_key(5), 48);
  ReassembledDatagram out;
  // RFC 8200 §4.5: Next Header values of later fragments may differ and are not part of the key.
  REQUIRE(r.add(v6_key(5, kUdp), 24, false, std::span(data).subspan(24), 0, out) ==
          FragmentResult::Held);
  REQUIRE(r.add(v6_key(5, kDestOptions), 0, true, std::span(data).first(24), 0, out) ==
          FragmentResult::Complete);
  CHECK(out.proto == kDestOptions);
  CHECK(same(out.payload, data));
}

TEST_CASE("IPv4 protocol, family and addresses keep datagrams apart", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  ReassembledDatagram out;
  const Bytes data(16, std::byte{0xAB});
  auto other_src = v4_key(9);
  other_src.src[3] = 2;
  auto ignored_bytes = v4_key(9);
  ignored_bytes.src[10] = 0x55;  // beyond the IPv4 address: must not split the datagram
  const std::vector<FragmentKey> first_halves{v4_key(9, kUdp), v4_key(9, 6), v6_key(9), other_src};
  for (const auto& k : first_halves) {
    REQUIRE(r.add(k, 0, true, std::span(data).first(8), 0, out) == FragmentResult::Held);
  }
  CHECK(r.in_progress() == 4);
  REQUIRE(r.add(ignored_bytes, 8, false, std::span(data).subspan(8), 0, out) ==
          FragmentResult::Complete);
  CHECK(out.proto == kUdp);
  CHECK(r.in_progress() == 3);
}

TEST_CASE("an exact duplicate fragment is ignored and counted", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v4_key(11);
  const Bytes data = pattern(key, 40);
  ReassembledDatagram out;
  REQUIRE(feed(r, key, data, Piece{0, 16, true}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, data, Piece{0, 16, true}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, data, Piece{16, 24, false}, 0, out) == FragmentResult::Complete);
  CHECK(same(out.payload, data));
  CHECK(r.stats().duplicates == 1);
  CHECK(r.stats().overlaps == 0);
}

TEST_CASE("a duplicate of the last fragment is ignored", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v6_key(12);
  const Bytes data = pattern(key, 40);
  ReassembledDatagram out;
  REQUIRE(feed(r, key, data, Piece{16, 24, false}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, data, Piece{16, 24, false}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, data, Piece{0, 16, true}, 0, out) == FragmentResult::Complete);
  CHECK(r.stats().duplicates == 1);
}

TEST_CASE("the same range with different bytes drops the datagram", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v4_key(13);
  const Bytes data = pattern(key, 40);
  Bytes forged = data;
  forged[20] ^= std::byte{1};
  ReassembledDatagram out;
  REQUIRE(feed(r, key, data, Piece{0, 16, true}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, data, Piece{16, 16, true}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, forged, Piece{16, 16, true}, 0, out) == FragmentResult::Dropped);
  CHECK(r.stats().overlaps == 1);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
  // Later fragments start a new datagram, which cannot complete from the last fragment alone.
  CHECK(feed(r, key, data, Piece{32, 8, false}, 0, out) == FragmentResult::Held);
  CHECK(r.in_progress() == 1);
}

TEST_CASE("a partial overlap drops the datagram even when the bytes agree",
          "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v6_key(14);
  const Bytes data = pattern(key, 64);
  ReassembledDatagram out;
  SECTION("overlapping the start of a held fragment") {
    REQUIRE(feed(r, key, data, Piece{16, 16, true}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{8, 16, true}, 0, out) == FragmentResult::Dropped);
  }
  SECTION("overlapping the end of a held fragment") {
    REQUIRE(feed(r, key, data, Piece{0, 24, true}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{16, 16, true}, 0, out) == FragmentResult::Dropped);
  }
  SECTION("inside a held fragment") {
    REQUIRE(feed(r, key, data, Piece{0, 48, true}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{8, 8, true}, 0, out) == FragmentResult::Dropped);
  }
  SECTION("covering a held fragment") {
    REQUIRE(feed(r, key, data, Piece{16, 8, true}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{8, 24, true}, 0, out) == FragmentResult::Dropped);
  }
  CHECK(r.stats().overlaps == 1);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
}

TEST_CASE("fragments that disagree about the end drop the datagram", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v4_key(15);
  const Bytes data = pattern(key, 64);
  ReassembledDatagram out;
  SECTION("a second last fragment with another end") {
    REQUIRE(feed(r, key, data, Piece{32, 16, false}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{48, 16, false}, 0, out) == FragmentResult::Dropped);
  }
  SECTION("a last fragment that ends before bytes already held") {
    REQUIRE(feed(r, key, data, Piece{32, 16, true}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{8, 8, false}, 0, out) == FragmentResult::Dropped);
  }
  SECTION("a fragment that reaches past the known end") {
    REQUIRE(feed(r, key, data, Piece{16, 16, false}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{32, 16, true}, 0, out) == FragmentResult::Dropped);
  }
  SECTION("the same bytes, once as a middle and once as the last fragment") {
    REQUIRE(feed(r, key, data, Piece{16, 16, true}, 0, out) == FragmentResult::Held);
    REQUIRE(feed(r, key, data, Piece{16, 16, false}, 0, out) == FragmentResult::Dropped);
  }
  CHECK(r.stats().invalid == 1);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
}

TEST_CASE("fragments no correct stack sends are refused alone", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v4_key(16);
  const Bytes data = pattern(key, 64);
  ReassembledDatagram out;
  REQUIRE(feed(r, key, data, Piece{0, 16, true}, 0, out) == FragmentResult::Held);
  // A non-last fragment of 12 bytes, an empty one, an offset off the 8-byte grid, a bad family.
  CHECK(feed(r, key, data, Piece{16, 12, true}, 0, out) == FragmentResult::Dropped);
  CHECK(feed(r, key, data, Piece{16, 0, true}, 0, out) == FragmentResult::Dropped);
  CHECK(feed(r, key, data, Piece{16, 0, false}, 0, out) == FragmentResult::Dropped);
  CHECK(feed(r, key, data, Piece{20, 8, true}, 0, out) == FragmentResult::Dropped);
  auto bad_family = key;
  bad_family.family = 5;
  CHECK(feed(r, bad_family, data, Piece{16, 8, true}, 0, out) == FragmentResult::Dropped);
  CHECK(r.stats().invalid == 5);
  CHECK(r.in_progress() == 1);  // the datagram is untouched
  REQUIRE(feed(r, key, data, Piece{16, 48, false}, 0, out) == FragmentResult::Complete);
  CHECK(same(out.payload, data));
}

TEST_CASE("a last fragment of odd length completes the datagram", "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v4_key(17);
  const Bytes data = pattern(key, 1001);
  ReassembledDatagram out;
  REQUIRE(feed(r, key, data, Piece{512, 489, false}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, data, Piece{0, 512, true}, 0, out) == FragmentResult::Complete);
  CHECK(same(out.payload, data));
}

TEST_CASE("a datagram larger than max_datagram_bytes is refused", "[parser][reassembly]") {
  auto o = fixed_seed();
  o.max_datagram_bytes = 1000;
  IpReassembler r{o};
  const auto key = v4_key(18);
  const Bytes data = pattern(key, 2000);
  ReassembledDatagram out;
  REQUIRE(feed(r, key, data, Piece{0, 992, true}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, key, data, Piece{992, 16, false}, 0, out) == FragmentResult::Dropped);
  CHECK(r.in_progress() == 0);  // it could never complete, so its pages are freed at once
  CHECK(r.memory_bytes() == 0);
  CHECK(r.add(key, 0, false, std::span(data).first(1001), 0, out) == FragmentResult::Dropped);
  // The largest wire offset plus a maximal payload does not wrap around.
  CHECK(r.add(key, 0xFFFFFFF8U, true, std::span(data).first(16), 0, out) ==
        FragmentResult::Dropped);
  CHECK(r.stats().too_large == 3);
  CHECK(r.in_progress() == 0);
}

TEST_CASE("a datagram that needs more than max_fragments fragments is dropped",
          "[parser][reassembly]") {
  auto o = fixed_seed();
  o.max_fragments = 4;
  IpReassembler r{o};
  const auto key = v6_key(19);
  const Bytes data = pattern(key, 80);
  ReassembledDatagram out;
  for (std::uint32_t i = 0; i < 4; ++i) {
    REQUIRE(feed(r, key, data, Piece{i * 8, 8, true}, 0, out) == FragmentResult::Held);
  }
  REQUIRE(feed(r, key, data, Piece{32, 8, true}, 0, out) == FragmentResult::Dropped);
  CHECK(r.stats().too_many_fragments == 1);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
  // Exactly max_fragments fragments still complete.
  for (std::uint32_t i = 0; i < 3; ++i) {
    REQUIRE(feed(r, key, data, Piece{i * 8, 8, true}, 0, out) == FragmentResult::Held);
  }
  REQUIRE(feed(r, key, data, Piece{24, 56, false}, 0, out) == FragmentResult::Complete);
  CHECK(same(out.payload, data));
}

TEST_CASE("datagrams time out in packet time", "[parser][reassembly]") {
  auto o = fixed_seed();
  o.timeout_ns = 5 * kSecond;
  IpReassembler r{o};
  const auto a = v4_key(20);
  const auto b = v4_key(21);
  const Bytes data = pattern(a, 32);
  ReassembledDatagram out;
  REQUIRE(feed(r, a, data, Piece{0, 16, true}, 100 * kSecond, out) == FragmentResult::Held);
  REQUIRE(feed(r, b, data, Piece{0, 16, true}, 102 * kSecond, out) == FragmentResult::Held);
  r.expire(105 * kSecond);  // a is exactly 5 s old: not older than the timeout yet
  CHECK(r.in_progress() == 2);
  r.expire(105 * kSecond + 1);
  CHECK(r.in_progress() == 1);
  CHECK(r.stats().timed_out == 1);
  // The late half of a starts a new datagram; b times out inside add().
  REQUIRE(feed(r, a, data, Piece{16, 16, false}, 108 * kSecond, out) == FragmentResult::Held);
  CHECK(r.stats().timed_out == 2);
  CHECK(r.in_progress() == 1);
  // A timestamp from the past counts as the latest one, so nothing becomes younger.
  REQUIRE(feed(r, b, data, Piece{0, 16, true}, 1 * kSecond, out) == FragmentResult::Held);
  r.expire(113 * kSecond + 1);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
  CHECK(r.stats().timed_out == 4);
}

TEST_CASE("hostile timestamps at the ends of the range do not overflow the age",
          "[parser][reassembly]") {
  IpReassembler r{fixed_seed()};
  const auto key = v4_key(22);
  const Bytes data = pattern(key, 16);
  ReassembledDatagram out;
  const std::int64_t lowest = std::numeric_limits<std::int64_t>::min();
  const std::int64_t highest = std::numeric_limits<std::int64_t>::max();
  REQUIRE(feed(r, key, data, Piece{0, 8, true}, lowest, out) == FragmentResult::Held);
  r.expire(lowest + 5 * kSecond);
  CHECK(r.in_progress() == 1);
  r.expire(highest);
  CHECK(r.in_progress() == 0);
  CHECK(r.stats().timed_out == 1);
}

TEST_CASE("the oldest datagram is evicted when the table is full", "[parser][reassembly]") {
  auto o = fixed_seed();
  o.max_datagrams = 3;
  IpReassembler r{o};
  const Bytes data = pattern(v4_key(0), 32);
  ReassembledDatagram out;
  for (std::uint32_t id = 1; id <= 3; ++id) {
    REQUIRE(feed(r, v4_key(id), data, Piece{0, 16, true}, id, out) == FragmentResult::Held);
  }
  REQUIRE(feed(r, v4_key(4), data, Piece{0, 16, true}, 4, out) == FragmentResult::Held);
  CHECK(r.in_progress() == 3);
  CHECK(r.stats().evicted == 1);
  // Datagram 1 was the oldest: its second half now starts over (and evicts 2); 3 still completes.
  CHECK(feed(r, v4_key(1), data, Piece{16, 16, false}, 5, out) == FragmentResult::Held);
  CHECK(r.stats().evicted == 2);
  CHECK(feed(r, v4_key(3), data, Piece{16, 16, false}, 6, out) == FragmentResult::Complete);
}

TEST_CASE("the oldest datagram is evicted when the memory budget would be exceeded",
          "[parser][reassembly]") {
  auto o = fixed_seed();
  o.memory_budget_bytes = 4 * IpReassembler::kPageBytes;
  IpReassembler r{o};
  const Bytes data = pattern(v6_key(0), 2048);
  ReassembledDatagram out;
  // Each first fragment takes two pages.
  REQUIRE(feed(r, v6_key(1), data, Piece{0, 1024, true}, 1, out) == FragmentResult::Held);
  REQUIRE(feed(r, v6_key(2), data, Piece{0, 1024, true}, 2, out) == FragmentResult::Held);
  CHECK(r.memory_bytes() == o.memory_budget_bytes);
  REQUIRE(feed(r, v6_key(3), data, Piece{0, 1024, true}, 3, out) == FragmentResult::Held);
  CHECK(r.memory_bytes() <= o.memory_budget_bytes);
  CHECK(r.in_progress() == 2);
  CHECK(r.stats().over_budget == 1);
  // The datagram being added is never its own victim while another one can go.
  REQUIRE(feed(r, v6_key(2), data, Piece{1024, 1024, true}, 4, out) == FragmentResult::Held);
  CHECK(r.in_progress() == 1);
  CHECK(r.stats().over_budget == 2);
  CHECK(r.memory_bytes() == o.memory_budget_bytes);
}

TEST_CASE("a datagram that alone exceeds the budget is dropped without evicting others",
          "[parser][reassembly]") {
  auto o = fixed_seed();
  o.memory_budget_bytes = 3 * IpReassembler::kPageBytes;
  IpReassembler r{o};
  const Bytes data = pattern(v4_key(0), 4096);
  ReassembledDatagram out;
  REQUIRE(feed(r, v4_key(1), data, Piece{0, 8, true}, 0, out) == FragmentResult::Held);
  REQUIRE(feed(r, v4_key(2), data, Piece{0, 2048, true}, 0, out) == FragmentResult::Dropped);
  CHECK(r.in_progress() == 1);
  CHECK(r.stats().over_budget == 1);
  CHECK(r.memory_bytes() == IpReassembler::kPageBytes);
}

TEST_CASE("options out of range are refused at construction", "[parser][reassembly]") {
  auto check = [](auto change) {
    auto o = fixed_seed();
    change(o);
    CHECK_THROWS_AS(IpReassembler{o}, std::invalid_argument);
  };
  check([](IpReassemblyOptions& o) { o.max_datagrams = 0; });
  check([](IpReassemblyOptions& o) { o.max_datagram_bytes = 0; });
  check([](IpReassemblyOptions& o) { o.max_datagram_bytes = 65536; });
  check([](IpReassemblyOptions& o) { o.max_fragments = 0; });
  check([](IpReassemblyOptions& o) { o.memory_budget_bytes = IpReassembler::kPageBytes - 1; });
  check([](IpReassemblyOptions& o) { o.timeout_ns = 0; });
  IpReassemblyOptions random_seed;
  random_seed.hash_seed = 0;
  CHECK_NOTHROW(IpReassembler{random_seed});
}

TEST_CASE("a million distinct first fragments stay within the bounds", "[parser][reassembly]") {
  auto o = fixed_seed();
  o.max_datagrams = 256;
  o.memory_budget_bytes = 384 * IpReassembler::kPageBytes;
  IpReassembler r{o};
  const Bytes data = pattern(v4_key(0), 520);
  ReassembledDatagram out;
  constexpr std::uint32_t kKeys = 1'000'000;
  std::uint32_t not_held = 0;
  std::uint32_t out_of_bounds = 0;
  FragmentKey v4 = v4_key(0);
  FragmentKey v6 = v6_key(0);
  for (std::uint32_t i = 0; i < kKeys; ++i) {
    FragmentKey& key = (i % 2 == 0) ? v4 : v6;
    key.id = i & 0xFFFFU;
    key.src[1] = static_cast<std::uint8_t>(i >> 16U);
    // First 8-byte fragments (one page each) fill the table; then 520-byte ones (two pages)
    // fill the budget before the table.
    const std::uint32_t length = i < kKeys / 2 ? 8 : 520;
    const std::int64_t now = std::int64_t{i} * 1000;  // 1 s in all: nothing times out
    if (feed(r, key, data, Piece{0, length, true}, now, out) != FragmentResult::Held) {
      ++not_held;
    }
    if (r.in_progress() > o.max_datagrams || r.memory_bytes() > o.memory_budget_bytes) {
      ++out_of_bounds;
    }
  }
  CHECK(not_held == 0);
  CHECK(out_of_bounds == 0);
  const auto s = r.stats();
  CHECK(s.fragments == kKeys);
  CHECK(s.timed_out == 0);
  CHECK(s.evicted > 0);
  CHECK(s.over_budget > 0);
  // Every key but the ones still held was pushed out by capacity or by memory.
  CHECK(s.evicted + s.over_budget + r.in_progress() == kKeys);
  r.expire(std::int64_t{kKeys} * 1000 + o.timeout_ns + 1);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
}

TEST_CASE("random fragment sequences keep the bounds and never corrupt a datagram",
          "[parser][reassembly]") {
  auto o = fixed_seed();
  o.max_datagrams = 6;
  o.max_datagram_bytes = 3000;
  o.max_fragments = 8;
  o.memory_budget_bytes = 10 * IpReassembler::kPageBytes;
  o.timeout_ns = 50'000;
  IpReassembler r{o};
  std::mt19937_64 rng{20240611};
  auto pick = [&](std::uint64_t n) { return static_cast<std::uint32_t>(rng() % n); };
  // Keys 0-7 only ever carry the pattern bytes, so any datagram they complete must match it. Most
  // of their fragments split a 1000-byte datagram in four, so many complete. Keys 8-11 also carry
  // random bytes, offsets and lengths.
  std::vector<FragmentKey> keys;
  for (std::uint32_t i = 0; i < 12; ++i) {
    keys.push_back(i % 2 == 0 ? v4_key(i) : v6_key(i));
  }
  const Bytes clean = pattern(keys[0], 4096);
  Bytes noise(8192);  // random bytes; each dirty fragment takes a slice at a random place
  for (auto& b : noise) {
    b = static_cast<std::byte>(rng());
  }
  std::int64_t now = 0;
  std::int64_t latest = 0;
  std::uint32_t corrupt = 0;
  std::uint32_t out_of_bounds = 0;
  std::uint64_t assembled = 0;
  constexpr int kSteps = 300'000;
  for (int step = 0; step < kSteps; ++step) {
    const std::uint32_t k = pick(12);
    const bool dirty = k >= 8;
    std::uint32_t offset = pick(400) * 8;
    std::uint32_t length = (pick(48) + 1) * 8;
    bool more = pick(4) != 0;
    if (!more) {
      length -= pick(8);
    }
    if (dirty) {
      switch (pick(6)) {
        case 0:
          offset = static_cast<std::uint32_t>(rng());
          break;
        case 1:
          length = pick(4096);
          break;
        case 2:
          now -= pick(10'000);  // clocks of merged capture sources disagree
          break;
        default:
          break;
      }
    }
    now += pick(64) == 0 ? pick(100'000) : pick(2'000);
    latest = std::max(latest, now);
    FragmentKey key = keys[k];
    if (pick(8) == 0) {
      key.proto = static_cast<std::uint8_t>(rng());  // IPv6: a different Next Header
    }
    std::span<const std::byte> payload = std::span(noise).subspan(pick(4096), length);
    if (!dirty && pick(4) != 0) {
      offset = pick(4) * 256;
      length = offset == 768 ? 232 : 256;
      more = offset != 768;
    }
    if (!dirty) {
      offset %= 2048;
      payload = std::span(clean).subspan(offset, length);  // the bytes at their datagram offset
    }
    ReassembledDatagram out;
    const FragmentResult result = r.add(key, offset, more, payload, now, out);
    if (result == FragmentResult::Complete && !dirty) {
      assembled += out.payload.data() != payload.data() ? 1U : 0U;
      if (out.payload.size() > o.max_datagram_bytes ||
          !std::equal(out.payload.begin(), out.payload.end(), clean.begin())) {
        ++corrupt;
      }
    }
    if (r.in_progress() > o.max_datagrams || r.memory_bytes() > o.memory_budget_bytes) {
      ++out_of_bounds;
    }
  }
  CHECK(corrupt == 0);
  CHECK(out_of_bounds == 0);
  CHECK(assembled > 100);
  const auto s = r.stats();
  CHECK(s.fragments == static_cast<std::uint64_t>(kSteps));
  CAPTURE(assembled, s.reassembled, s.timed_out, s.evicted, s.over_budget, s.too_large,
          s.too_many_fragments, s.overlaps, s.duplicates, s.invalid);
  CHECK(s.overlaps > 0);
  CHECK(s.invalid > 0);
  CHECK(s.timed_out > 0);
  // Nothing leaks: once everything has timed out, every page and slot is free again.
  r.expire(latest + o.timeout_ns + 1);
  CHECK(r.in_progress() == 0);
  CHECK(r.memory_bytes() == 0);
}

TEST_CASE("steady-state reassembly allocates nothing per fragment", "[parser][reassembly]") {
  auto o = fixed_seed();
  o.max_datagrams = 64;
  o.memory_budget_bytes = 96 * IpReassembler::kPageBytes;
  o.timeout_ns = 1'000'000;
  IpReassembler r{o};
  std::vector<FragmentKey> keys;
  std::vector<Bytes> datagrams;
  for (std::uint32_t i = 0; i < 200; ++i) {
    keys.push_back(i % 2 == 0 ? v4_key(i) : v6_key(i));
    datagrams.push_back(pattern(keys.back(), 1000 + 37 * i));
  }
  std::vector<std::vector<Piece>> pieces;
  pieces.reserve(datagrams.size());
  for (const auto& d : datagrams) {
    pieces.push_back(split(d.size(), 512));
  }
  std::int64_t now = 0;
  std::uint64_t completed = 0;
  std::uint64_t wrong = 0;
  // Many datagrams arrive last fragment first. Every fifth one never gets its first fragment, so it
  // times out or is evicted, and some fragments come twice. That covers the paths a fragment
  // takes in steady state: hold, duplicate, complete, timeout, eviction.
  auto round = [&](int rounds) {
    for (int n = 0; n < rounds; ++n) {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const auto& p = pieces[i];
        for (std::size_t j = p.size(); j-- > 0;) {
          if (i % 5 == 0 && j == 0) {
            continue;
          }
          ReassembledDatagram out;
          const auto result = feed(r, keys[i], datagrams[i], p[j], now, out);
          if (j == p.size() - 1 && i % 7 == 0) {
            (void)feed(r, keys[i], datagrams[i], p[j], now, out);  // a duplicate
          }
          if (result == FragmentResult::Complete) {
            ++completed;
            wrong += same(out.payload, datagrams[i]) ? 0U : 1U;
          }
          now += 100;
        }
      }
    }
  };
  round(3);  // warm-up: the reassembler needs none, but it makes the claim about steady state
  const std::size_t probe_before = dnsmon::test::new_calls();
  const auto probe = std::make_unique<int>(1);
  REQUIRE(dnsmon::test::new_calls() == probe_before + 1);  // the counter works
  const std::size_t before = dnsmon::test::new_calls();
  const std::uint64_t fragments_before = r.stats().fragments;
  round(20);
  const std::size_t allocations = dnsmon::test::new_calls() - before;
  const auto s = r.stats();
  CHECK(allocations == 0);
  CHECK(wrong == 0);
  CHECK(completed > 0);
  CHECK(s.fragments - fragments_before > 10'000);
  CHECK(s.duplicates > 0);
  CHECK(s.timed_out + s.evicted + s.over_budget > 0);
}

}  // namespace
