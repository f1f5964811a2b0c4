#include "dnsmon/analytics/detail/sketches.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "alloc_counter.hpp"
#include "zipf.hpp"

namespace {

using dnsmon::detail::AddrKey;
using dnsmon::detail::CountSummary;
using dnsmon::detail::hash_bytes;
using dnsmon::detail::HeavyHitter;
using dnsmon::detail::HyperLogLog;
using dnsmon::detail::NameKey;
using dnsmon::detail::SlidingWindow;
using dnsmon::detail::SpaceSaving;
using Names = SpaceSaving<NameKey>;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::uint64_t kSeed = 0x5eed'1234'abcd'0001ULL;

static_assert(noexcept(std::declval<Names&>().add(NameKey{}, 1)));
static_assert(noexcept(std::declval<Names&>().merge(std::declval<const Names&>())));
static_assert(noexcept(std::declval<HyperLogLog&>().add_hash(0)));
static_assert(noexcept(std::declval<SlidingWindow<CountSummary>&>().add(0, 1U)));
static_assert(noexcept(std::declval<const SlidingWindow<Names>&>().query(0,
                                                                         std::declval<Names&>())));
static_assert(sizeof(NameKey) == 256 && sizeof(AddrKey) == 17);

std::size_t allocations() {
  return dnsmon::test::new_calls();
}

NameKey name_key(std::string_view s) {
  NameKey k;
  if (!k.assign(s)) {
    throw std::length_error("test name too long");
  }
  return k;
}

AddrKey addr_key(std::uint32_t i) {
  AddrKey k;
  k.bytes[0] = 0x20;
  k.bytes[1] = 0x01;
  k.bytes[2] = 0x0d;
  k.bytes[3] = 0xb8;
  k.bytes[12] = static_cast<std::uint8_t>(i >> 24);
  k.bytes[13] = static_cast<std::uint8_t>(i >> 16);
  k.bytes[14] = static_cast<std::uint8_t>(i >> 8);
  k.bytes[15] = static_cast<std::uint8_t>(i);
  k.bytes[16] = 6;
  return k;
}

// A population of DNS-like names of varied length; rank 0 is the most popular in a Zipf stream.
struct Population {
  std::vector<std::string> names;
  std::vector<NameKey> keys;
};

const Population& population() {
  static const Population pop = [] {
    constexpr std::size_t kKeys = 100'000;
    Population p;
    p.names.reserve(kKeys);
    p.keys.reserve(kKeys);
    for (std::size_t i = 0; i < kKeys; ++i) {
      std::string name = "h" + std::to_string(i) + ".zone" + std::to_string(i % 97) + ".example";
      name += (i % 3 == 0) ? ".net" : ".com";
      p.keys.push_back(name_key(name));
      p.names.push_back(std::move(name));
    }
    return p;
  }();
  return pop;
}

// Ranks drawn from a Zipf(s) law over `keys` keys, with a fixed seed (the uniform draw is built
// from raw mt19937_64 output, so the stream is the same with any standard library).
std::vector<std::uint32_t> zipf_stream(std::size_t items, std::size_t keys, double s,
                                       std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return dnsmon::test::zipf_ranks(items, keys, s, rng);
}

using ExactCounts = std::unordered_map<std::string_view, std::uint64_t>;

ExactCounts exact_counts(std::span<const std::uint32_t> stream) {
  ExactCounts exact;
  for (const std::uint32_t r : stream) {
    ++exact[population().names[r]];
  }
  return exact;
}

// Every stated Space-Saving bound, checked against exact counts of everything that went in.
void check_space_saving_bounds(const Names& ss, const ExactCounts& exact) {
  const std::uint64_t total = ss.total();
  const std::uint64_t m = ss.capacity();
  std::uint64_t exact_total = 0;
  for (const auto& [name, count] : exact) {
    exact_total += count;
  }
  REQUIRE(total == exact_total);
  REQUIRE(ss.min_count() * m <= total);

  std::vector<HeavyHitter<NameKey>> all(ss.capacity());
  const std::size_t n = ss.top(all);
  REQUIRE(n == ss.size());
  std::uint64_t summed = 0;
  std::unordered_set<std::string_view> tracked;
  std::size_t violations = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& e = all[i];
    const auto it = exact.find(e.key.view());
    const std::uint64_t truth = it == exact.end() ? 0 : it->second;
    summed += e.count;
    tracked.insert(e.key.view());
    const bool ok = e.lower_bound() <= truth && truth <= e.count && e.error * m <= total &&
                    e.error <= ss.min_count();
    if (!ok) {
      ++violations;
      UNSCOPED_INFO("key " << e.key.view() << " count " << e.count << " error " << e.error
                           << " true " << truth);
    }
  }
  CHECK(violations == 0);
  CHECK(summed <= total);
  // Every key above N/m is tracked, and every untracked key is at most min_count().
  std::size_t missing_heavy = 0;
  std::size_t untracked_above_min = 0;
  for (const auto& [name, count] : exact) {
    if (tracked.count(name) != 0) {
      continue;
    }
    if (count * m > total) {
      ++missing_heavy;
    }
    if (count > ss.min_count()) {
      ++untracked_above_min;
    }
  }
  CHECK(missing_heavy == 0);
  CHECK(untracked_above_min == 0);
}

// The k keys with the largest exact counts.
std::vector<std::pair<std::string_view, std::uint64_t>> true_top(const ExactCounts& exact,
                                                                 std::size_t k) {
  std::vector<std::pair<std::string_view, std::uint64_t>> all(exact.begin(), exact.end());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second; });
  all.resize(k);
  return all;
}

std::unordered_set<std::string_view> reported_top(const Names& ss, std::size_t n) {
  std::vector<HeavyHitter<NameKey>> buf(n);
  const std::size_t got = ss.top(buf);
  std::unordered_set<std::string_view> names;
  for (std::size_t i = 0; i < got; ++i) {
    names.insert(population().names[std::stoul(std::string(buf[i].key.view().substr(1)))]);
  }
  return names;
}

std::uint64_t hash_index(std::uint64_t i, std::uint64_t seed = kSeed) {
  return hash_bytes(&i, sizeof i, seed);
}

bool within(double estimate, double truth, double relative) {
  return std::fabs(estimate - truth) <= relative * truth;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Hash

TEST_CASE("hash_bytes depends on every byte, the length and the seed", "[metrics][sketches]") {
  // Flipping one input bit flips each output bit about half the time, at every tail length.
  std::mt19937_64 rng(7);
  constexpr std::array<std::size_t, 18> kLengths{1,  2,  3,  4,  7,  8,  9,  15,  16,
                                                 17, 31, 32, 33, 48, 63, 64, 100, 255};
  for (const std::size_t len : kLengths) {
    CAPTURE(len);
    std::array<int, 64> flips{};
    int trials = 0;
    std::vector<unsigned char> buf(len);
    for (int sample = 0; sample < 40; ++sample) {
      for (auto& b : buf) {
        b = static_cast<unsigned char>(rng());
      }
      const std::uint64_t base = hash_bytes(buf.data(), len, kSeed);
      for (std::size_t bit = 0; bit < len * 8; ++bit) {
        buf[bit / 8] ^= static_cast<unsigned char>(1U << (bit % 8));
        const std::uint64_t diff = base ^ hash_bytes(buf.data(), len, kSeed);
        buf[bit / 8] ^= static_cast<unsigned char>(1U << (bit % 8));
        for (std::size_t out = 0; out < 64; ++out) {
          flips[out] += static_cast<int>((diff >> out) & 1U);
        }
        ++trials;
      }
    }
    for (std::size_t out = 0; out < 64; ++out) {
      CAPTURE(out);
      const double p = static_cast<double>(flips[out]) / trials;
      REQUIRE(p > 0.40);
      REQUIRE(p < 0.60);
    }
  }
  // Zero bytes of different lengths, and different seeds, give different hashes.
  const std::array<unsigned char, 64> zeros{};
  std::unordered_set<std::uint64_t> seen;
  for (std::size_t len = 0; len <= zeros.size(); ++len) {
    seen.insert(hash_bytes(zeros.data(), len, kSeed));
    seen.insert(hash_bytes(zeros.data(), len, kSeed + 1));
  }
  CHECK(seen.size() == 2 * (zeros.size() + 1));
  CHECK(hash_bytes(std::string_view("example.com"), 1) ==
        hash_bytes(std::string_view("example.com"), 1));
}

TEST_CASE("no input word makes hash_bytes forget its seed", "[metrics][sketches]") {
  // The mixing constants are public: a word equal to one of them must not zero a product and
  // make keys collide under every seed (a 17-byte client key starting with one, say).
  using namespace dnsmon::detail::hash_internal;
  for (const std::uint64_t word : {kK0, kK1, kK2, kK3, kK4}) {
    std::array<unsigned char, 17> a{};
    std::array<unsigned char, 17> b{};
    std::memcpy(a.data(), &word, 8);
    std::memcpy(b.data(), &word, 8);
    std::memcpy(b.data() + 8, &word, 8);
    b[16] = 1;
    std::unordered_set<std::uint64_t> distinct;
    for (std::uint64_t seed = 1; seed <= 64; ++seed) {
      distinct.insert(hash_bytes(a.data(), a.size(), seed) ^ hash_bytes(b.data(), b.size(), seed));
    }
    CHECK(distinct.size() == 64);  // the difference of two keys' hashes depends on the seed
    CHECK(distinct.count(0) == 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Space-Saving

TEST_CASE("Space-Saving on a Zipf stream stays within its error bounds", "[metrics][sketches]") {
  const auto stream = zipf_stream(1'000'000, population().keys.size(), 1.0, 42);
  const ExactCounts exact = exact_counts(stream);
  const auto truth10 = true_top(exact, 10);

  for (const std::size_t m : {std::size_t{160}, std::size_t{1024}, std::size_t{4096}}) {
    CAPTURE(m);
    Names ss(m, kSeed);
    for (const std::uint32_t r : stream) {
      ss.add(population().keys[r]);
    }
    check_space_saving_bounds(ss, exact);
    // The true top 10 are each above N/m here, so the guarantee applies: all are tracked. The
    // reported top 10 (what the exporter shows) are the true top 10.
    const auto top10 = reported_top(ss, 10);
    for (const auto& [name, count] : truth10) {
      CAPTURE(name, count);
      REQUIRE(count * m > ss.total());
      REQUIRE(ss.find(name_key(name)).has_value());
      CHECK(top10.count(name) == 1);
    }
  }
}

TEST_CASE("Space-Saving on a skewed Zipf stream over client addresses stays within its bounds",
          "[metrics][sketches]") {
  const auto stream = zipf_stream(300'000, 50'000, 1.2, 9);
  std::vector<std::uint64_t> exact(50'000);
  SpaceSaving<AddrKey> ss(100, kSeed);
  for (const std::uint32_t r : stream) {
    ++exact[r];
    ss.add(addr_key(r));
  }
  std::vector<HeavyHitter<AddrKey>> all(100);
  REQUIRE(ss.top(all) == 100);
  for (const auto& e : all) {
    const std::uint32_t r = (std::uint32_t{e.key.bytes[12]} << 24) |
                            (std::uint32_t{e.key.bytes[13]} << 16) |
                            (std::uint32_t{e.key.bytes[14]} << 8) | e.key.bytes[15];
    CAPTURE(r, e.count, e.error, exact[r]);
    REQUIRE(e.lower_bound() <= exact[r]);
    REQUIRE(exact[r] <= e.count);
    REQUIRE(e.error * 100 <= ss.total());
  }
  for (std::uint32_t r = 0; r < exact.size(); ++r) {
    if (exact[r] * 100 > ss.total()) {
      CAPTURE(r);
      REQUIRE(ss.find(addr_key(r)).has_value());
    }
  }
  CHECK(std::is_sorted(all.begin(), all.end(),
                       [](const auto& a, const auto& b) { return a.count > b.count; }));
}

TEST_CASE("Space-Saving keeps a heavy key that arrives after a flood of distinct keys",
          "[metrics][sketches]") {
  const auto& keys = population().keys;
  const NameKey heavy = name_key("flooded.example");
  constexpr std::size_t kM = 100;

  SECTION("the heavy key comes last") {
    Names ss(kM, kSeed);
    for (const NameKey& k : keys) {
      ss.add(k);
    }
    // Each flood key was seen once: every counter is an overestimate by its error.
    REQUIRE(ss.min_count() >= keys.size() / kM);
    ss.add(heavy, 5000);
    const auto b = ss.find(heavy);
    REQUIRE(b.has_value());
    CHECK(b->count - b->error <= 5000);
    CHECK(b->count >= 5000);
    CHECK(b->error * kM <= ss.total());
    std::array<HeavyHitter<NameKey>, 1> top{};
    REQUIRE(ss.top(top) == 1);
    CHECK(top[0].key == heavy);
  }
  SECTION("the heavy key comes first and is never evicted, its count stays exact") {
    Names ss(kM, kSeed);
    ss.add(heavy, 5000);
    for (const NameKey& k : keys) {
      ss.add(k);
    }
    const auto b = ss.find(heavy);
    REQUIRE(b.has_value());
    CHECK(b->count == 5000);
    CHECK(b->error == 0);
  }
  SECTION("the heavy key is spread thinly through the flood") {
    Names ss(kM, kSeed);
    std::uint64_t heavy_true = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ss.add(keys[i]);
      if (i % 50 == 0) {
        ss.add(heavy);
        ++heavy_true;
      }
    }
    REQUIRE(heavy_true * kM > ss.total());  // 2,000 of 102,000 with N/m = 1,020
    const auto b = ss.find(heavy);
    REQUIRE(b.has_value());
    CHECK(b->count - b->error <= heavy_true);
    CHECK(b->count >= heavy_true);
    CHECK(b->error * kM <= ss.total());
  }
  SECTION("a stream of only distinct keys keeps the summed counts equal to the total") {
    Names ss(kM, kSeed);
    for (const NameKey& k : keys) {
      ss.add(k, 3);
    }
    std::vector<HeavyHitter<NameKey>> all(kM);
    REQUIRE(ss.top(all) == kM);
    std::uint64_t summed = 0;
    for (const auto& e : all) {
      summed += e.count;
      CHECK(e.lower_bound() <= 3);
      CHECK(e.error * kM <= ss.total());
    }
    CHECK(summed == ss.total());
    CHECK(ss.total() == 3 * keys.size());
  }
}

TEST_CASE("Space-Saving counts exactly while the keys fit, and top() sorts and truncates",
          "[metrics][sketches]") {
  Names ss(8, kSeed);
  const std::array<std::pair<const char*, std::uint64_t>, 5> input{
      {{"a.example", 5}, {"b.example", 9}, {"c.example", 1}, {"d.example", 7}, {"e.example", 3}}};
  for (int round = 0; round < 2; ++round) {
    for (const auto& [name, count] : input) {
      for (std::uint64_t i = 0; i < count; ++i) {
        ss.add(name_key(name));
      }
    }
  }
  ss.add(name_key("ignored.example"), 0);
  CHECK(ss.size() == 5);
  CHECK(ss.total() == 50);
  CHECK(ss.min_count() == 0);  // not full: absent keys were never seen
  CHECK_FALSE(ss.find(name_key("ignored.example")).has_value());

  std::array<HeavyHitter<NameKey>, 3> three{};
  REQUIRE(ss.top(three) == 3);
  CHECK(three[0].key.view() == "b.example");
  CHECK(three[0].count == 18);
  CHECK(three[1].key.view() == "d.example");
  CHECK(three[2].key.view() == "a.example");
  CHECK(three[2].count == 10);
  for (const auto& e : three) {
    CHECK(e.error == 0);
  }
  std::array<HeavyHitter<NameKey>, 8> eight{};
  CHECK(ss.top(eight) == 5);
  CHECK(eight[4].key.view() == "c.example");
  CHECK(ss.top(std::span<HeavyHitter<NameKey>>{}) == 0);

  ss.clear();
  CHECK(ss.size() == 0);
  CHECK(ss.total() == 0);
  CHECK(ss.top(eight) == 0);
  CHECK_FALSE(ss.find(name_key("b.example")).has_value());
}

TEST_CASE("merged Space-Saving summaries keep the bounds against the union of their streams",
          "[metrics][sketches]") {
  const auto stream = zipf_stream(600'000, population().keys.size(), 1.0, 4242);
  const ExactCounts exact = exact_counts(stream);
  const auto truth10 = true_top(exact, 10);
  constexpr std::size_t kM = 400;

  auto check_merged = [&](std::vector<Names>& parts) {
    Names merged(kM, kSeed);
    for (const Names& part : parts) {
      REQUIRE(merged.merge(part));
    }
    check_space_saving_bounds(merged, exact);
    const auto top10 = reported_top(merged, 10);
    for (const auto& [name, count] : truth10) {
      CAPTURE(name, count);
      REQUIRE(count * kM > merged.total());
      CHECK(top10.count(name) == 1);
    }
  };

  SECTION("workers that see overlapping keys (round robin)") {
    std::vector<Names> parts(4, Names(kM, kSeed));
    for (std::size_t i = 0; i < stream.size(); ++i) {
      parts[i % 4].add(population().keys[stream[i]]);
    }
    check_merged(parts);
  }
  SECTION("workers that see disjoint keys (sharded by key)") {
    std::vector<Names> parts(4, Names(kM, kSeed));
    for (const std::uint32_t r : stream) {
      parts[r % 4].add(population().keys[r]);
    }
    check_merged(parts);
  }
  SECTION("consecutive sub-windows, merged pairwise like a tree") {
    std::vector<Names> parts(6, Names(kM, kSeed));
    for (std::size_t i = 0; i < stream.size(); ++i) {
      parts[i * 6 / stream.size()].add(population().keys[stream[i]]);
    }
    REQUIRE(parts[0].merge(parts[1]));
    REQUIRE(parts[2].merge(parts[3]));
    REQUIRE(parts[4].merge(parts[5]));
    REQUIRE(parts[0].merge(parts[2]));
    REQUIRE(parts[0].merge(parts[4]));
    check_space_saving_bounds(parts[0], exact);
  }
  SECTION("adding after a merge keeps the bounds") {
    const std::size_t half = stream.size() / 2;
    Names a(kM, kSeed);
    Names b(kM, kSeed + 1);  // seeds may differ between the summaries being merged
    for (std::size_t i = 0; i < half; ++i) {
      (i % 2 == 0 ? a : b).add(population().keys[stream[i]]);
    }
    REQUIRE(a.merge(b));
    for (std::size_t i = half; i < stream.size(); ++i) {
      a.add(population().keys[stream[i]]);
    }
    check_space_saving_bounds(a, exact);
  }
}

TEST_CASE("a merge charges a key missing from one side with that side's minimum",
          "[metrics][sketches]") {
  // x is seen on both sides, but the flood on one side evicted it there. Its merged count must
  // still cover its true total, which only the evicting side's min_count() can account for.
  const NameKey x = name_key("x.example");
  const auto& keys = population().keys;
  auto flooded_with_x = [&] {
    Names s(4, kSeed);
    s.add(x, 3);
    for (std::size_t i = 0; i < 100; ++i) {
      s.add(keys[i]);
    }
    return s;
  };
  SECTION("missing from the other side") {
    Names mine(4, kSeed);
    mine.add(x, 10);
    const Names other = flooded_with_x();
    REQUIRE_FALSE(other.find(x).has_value());
    REQUIRE(mine.merge(other));
    const auto b = mine.find(x);
    REQUIRE(b.has_value());
    CHECK(b->count >= 13);
    CHECK(b->count - b->error <= 13);
    CHECK(b->error * 4 <= mine.total());
  }
  SECTION("missing from this side") {
    Names mine = flooded_with_x();
    REQUIRE_FALSE(mine.find(x).has_value());
    Names other(4, kSeed);
    other.add(x, 100);
    REQUIRE(mine.merge(other));
    const auto b = mine.find(x);
    REQUIRE(b.has_value());
    CHECK(b->count >= 103);
    CHECK(b->count - b->error <= 103);
    CHECK(b->error * 4 <= mine.total());
  }
}

TEST_CASE("merging Space-Saving summaries that fit gives exact counts", "[metrics][sketches]") {
  Names a(16, kSeed);
  Names b(16, kSeed);
  a.add(name_key("x.example"), 4);
  a.add(name_key("y.example"), 2);
  b.add(name_key("y.example"), 3);
  b.add(name_key("z.example"), 1);
  REQUIRE(a.merge(b));
  CHECK(a.total() == 10);
  CHECK(a.size() == 3);
  CHECK(a.find(name_key("x.example"))->count == 4);
  CHECK(a.find(name_key("y.example"))->count == 5);
  CHECK(a.find(name_key("z.example"))->count == 1);
  CHECK(a.find(name_key("y.example"))->error == 0);

  Names empty(16, kSeed);
  REQUIRE(empty.merge(a));
  CHECK(empty.total() == 10);
  CHECK(empty.find(name_key("y.example"))->count == 5);

  Names other_capacity(32, kSeed);
  CHECK_FALSE(a.merge(other_capacity));
  CHECK_FALSE(a.merge(a));
  CHECK(a.total() == 10);
}

TEST_CASE("top() puts the smaller error first among counters of equal count",
          "[metrics][sketches]") {
  Names ss(2, kSeed);
  ss.add(name_key("a.example"), 2);  // a: 2, error 0
  ss.add(name_key("b.example"));     // b: 1, error 0
  ss.add(name_key("c.example"));     // c takes over b: 2, error 1
  REQUIRE(ss.find(name_key("c.example"))->error == 1);
  std::array<HeavyHitter<NameKey>, 1> one{};
  REQUIRE(ss.top(one) == 1);
  CHECK(one[0].key.view() == "a.example");
  CHECK(one[0].error == 0);
  ss.add(name_key("a.example"), 0);  // ignored
  ss.add(name_key("d.example"), 1);  // takes over a or c at 2, holds 3 with error 2
  std::array<HeavyHitter<NameKey>, 2> two{};
  REQUIRE(ss.top(two) == 2);
  CHECK(two[0].key.view() == "d.example");
  CHECK(two[0].count == 3);
  CHECK(two[0].error == 2);
  CHECK(two[1].count == 2);
}

namespace {

using Clients = SpaceSaving<AddrKey>;

std::uint32_t addr_index(const AddrKey& k) {
  return (std::uint32_t{k.bytes[12]} << 24) | (std::uint32_t{k.bytes[13]} << 16) |
         (std::uint32_t{k.bytes[14]} << 8) | k.bytes[15];
}

// Every guarantee of the class comment, and the agreement of top(), find(), size() and
// min_count(), against exact[i], the true count of addr_key(i). Before any merge the counts sum
// to the total exactly.
void check_against_exact(const Clients& ss, const std::vector<std::uint64_t>& exact, bool merged) {
  const std::uint64_t m = ss.capacity();
  std::uint64_t exact_total = 0;
  for (const std::uint64_t c : exact) {
    exact_total += c;
  }
  REQUIRE(ss.total() == exact_total);
  REQUIRE(ss.size() <= m);
  REQUIRE(ss.min_count() * m <= ss.total());

  std::vector<HeavyHitter<AddrKey>> all(ss.capacity() + 1);
  const std::size_t n = ss.top(all);
  REQUIRE(n == ss.size());
  const auto better = [](const HeavyHitter<AddrKey>& a, const HeavyHitter<AddrKey>& b) {
    return a.count != b.count ? a.count > b.count : a.error < b.error;
  };
  REQUIRE(std::is_sorted(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), better));
  if (n < m) {
    REQUIRE(ss.min_count() == 0);
  } else {
    REQUIRE(ss.min_count() == all[n - 1].count);
  }

  std::vector<bool> tracked(exact.size(), false);
  std::uint64_t summed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const HeavyHitter<AddrKey>& e = all[i];
    const std::uint32_t k = addr_index(e.key);
    REQUIRE(k < exact.size());
    CAPTURE(k, e.count, e.error, exact[k], ss.min_count());
    REQUIRE_FALSE(tracked[k]);  // each key once
    tracked[k] = true;
    summed += e.count;
    REQUIRE(e.count > 0);
    REQUIRE(e.lower_bound() <= exact[k]);
    REQUIRE(exact[k] <= e.count);
    REQUIRE(e.error <= ss.min_count());
    const auto b = ss.find(e.key);
    REQUIRE(b.has_value());
    REQUIRE(b->count == e.count);
    REQUIRE(b->error == e.error);
  }
  if (merged) {
    REQUIRE(summed <= ss.total());
  } else {
    REQUIRE(summed == ss.total());
  }
  for (std::uint32_t k = 0; k < exact.size(); ++k) {
    if (!tracked[k]) {
      CAPTURE(k, exact[k], ss.min_count());
      REQUIRE_FALSE(ss.find(addr_key(k)).has_value());
      REQUIRE(exact[k] <= ss.min_count());  // so every key with true > N / m is tracked
    }
  }
  // A shorter top() is a prefix of the full one, up to keys of equal count and error.
  for (const std::size_t k : {std::size_t{1}, std::size_t{2}, n / 2, n}) {
    std::vector<HeavyHitter<AddrKey>> part(k);
    REQUIRE(ss.top(part) == std::min(k, n));
    for (std::size_t i = 0; i < std::min(k, n); ++i) {
      REQUIRE(part[i].count == all[i].count);
      REQUIRE(part[i].error == all[i].error);
    }
  }
}

struct Add {
  std::uint32_t key;
  std::uint64_t weight;
};

// Keys from `universe`, half of them from a hot tenth of it; weights mostly 1, sometimes a few,
// sometimes hundreds (a counter then passes many buckets at once).
std::vector<Add> random_adds(std::mt19937_64& rng, std::size_t n, std::uint32_t universe) {
  std::vector<Add> out(n);
  const std::uint32_t hot = std::max<std::uint32_t>(1, universe / 10);
  for (Add& a : out) {
    // One draw per statement: the same stream whatever order the compiler evaluates in.
    const std::uint32_t from = rng() % 2 == 0 ? hot : universe;
    a.key = static_cast<std::uint32_t>(rng() % from);
    const std::uint64_t w = rng() % 100;
    a.weight = w < 80 ? 1 : w < 97 ? 2 + rng() % 4 : 10 + rng() % 1000;
  }
  return out;
}

// Applies adds to ss and exact; REQUIREs that ss allocated nothing.
void apply(Clients& ss, std::vector<std::uint64_t>& exact, std::span<const Add> adds) {
  const std::size_t before = allocations();
  for (const Add& a : adds) {
    ss.add(addr_key(a.key), a.weight);
    exact[a.key] += a.weight;
  }
  REQUIRE(allocations() == before);
}

std::vector<HeavyHitter<AddrKey>> everything(const Clients& ss) {
  std::vector<HeavyHitter<AddrKey>> all(ss.capacity());
  all.resize(ss.top(all));
  return all;
}

bool same(const std::vector<HeavyHitter<AddrKey>>& a, const std::vector<HeavyHitter<AddrKey>>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.key == y.key && x.count == y.count && x.error == y.error;
  });
}

}  // namespace

TEST_CASE("Space-Saving keeps every bound against exact counts on random streams",
          "[metrics][sketches]") {
  // Small universes make long runs of counters tied at the minimum; capacities 1 and 2 leave
  // one or two buckets.
  std::mt19937_64 rng(2024);
  for (const std::size_t m :
       {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{64}}) {
    for (const std::uint32_t universe :
         {static_cast<std::uint32_t>(m / 2 + 1), static_cast<std::uint32_t>(4 * m + 3),
          static_cast<std::uint32_t>(60 * m + 50)}) {
      CAPTURE(m, universe);
      Clients ss(m, kSeed);
      std::vector<std::uint64_t> exact(universe);
      const auto adds = random_adds(rng, 12'000, universe);
      for (std::size_t from = 0; from < adds.size(); from += 1'500) {
        apply(ss, exact,
              std::span(adds).subspan(from, std::min<std::size_t>(1'500, adds.size() - from)));
        check_against_exact(ss, exact, false);
      }
      // Cleared, the summary is as good as new: the same stream gives the same counters.
      ss.clear();
      CHECK(ss.size() == 0);
      CHECK(ss.total() == 0);
      CHECK(ss.min_count() == 0);
      std::fill(exact.begin(), exact.end(), 0);
      const auto again = random_adds(rng, 3'000, universe);
      apply(ss, exact, again);
      check_against_exact(ss, exact, false);
      Clients fresh(m, kSeed);
      std::vector<std::uint64_t> fresh_exact(universe);
      apply(fresh, fresh_exact, again);
      CHECK(same(everything(ss), everything(fresh)));
    }
  }
}

TEST_CASE("merged Space-Saving summaries keep every bound, full or sparse, in any order",
          "[metrics][sketches]") {
  std::mt19937_64 rng(77);
  for (std::size_t round = 0; round < 24; ++round) {
    const std::size_t m = std::array<std::size_t, 5>{1, 2, 5, 16, 48}[round % 5];
    const auto universe = static_cast<std::uint32_t>(round % 2 == 0 ? 3 * m + 2 : 40 * m + 10);
    CAPTURE(round, m, universe);
    // Parts from empty through sparse (fewer keys than counters) to full, some with another seed.
    std::vector<Clients> parts;
    std::vector<std::vector<std::uint64_t>> part_exact;
    for (std::size_t p = 0; p < 6; ++p) {
      const std::size_t length = p == 0 ? 0 : p == 1 ? m / 2 : p == 2 ? m : rng() % 3'000;
      parts.emplace_back(m, p % 3 == 1 ? kSeed + 1 : kSeed);
      part_exact.emplace_back(universe);
      apply(parts.back(), part_exact.back(), random_adds(rng, length, universe));
      check_against_exact(parts.back(), part_exact.back(), false);
    }
    std::vector<std::size_t> order(parts.size());
    for (std::size_t p = 0; p < order.size(); ++p) {
      order[p] = p;
    }
    std::shuffle(order.begin(), order.end(), rng);
    // One by one into an empty summary, with adds in between.
    Clients acc(m, kSeed);
    std::vector<std::uint64_t> exact(universe);
    for (const std::size_t p : order) {
      const std::size_t before = allocations();
      const bool merged = acc.merge(parts[p]);
      const std::size_t allocated = allocations() - before;
      REQUIRE(merged);
      REQUIRE(allocated == 0);
      for (std::uint32_t k = 0; k < universe; ++k) {
        exact[k] += part_exact[p][k];
      }
      check_against_exact(acc, exact, true);
      apply(acc, exact, random_adds(rng, rng() % 200, universe));
      check_against_exact(acc, exact, true);
    }
    // Pairwise like a tree, in the shuffled order.
    for (std::size_t step = 1; step < order.size(); step *= 2) {
      for (std::size_t i = 0; i + step < order.size(); i += 2 * step) {
        const std::size_t into = order[i];
        const std::size_t from = order[i + step];
        REQUIRE(parts[into].merge(parts[from]));
        for (std::uint32_t k = 0; k < universe; ++k) {
          part_exact[into][k] += part_exact[from][k];
        }
        check_against_exact(parts[into], part_exact[into], true);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HyperLogLog

TEST_CASE("HyperLogLog estimates 10, 1k, 100k and 1M distinct items within 2 % at p = 14",
          "[metrics][sketches]") {
  for (const std::uint64_t n :
       {std::uint64_t{10}, std::uint64_t{1000}, std::uint64_t{100'000}, std::uint64_t{1'000'000}}) {
    CAPTURE(n);
    HyperLogLog hll;
    REQUIRE(hll.precision() == 14);
    for (std::uint64_t i = 0; i < n; ++i) {
      hll.add_hash(hash_index(i));
    }
    const double once = hll.estimate();
    CAPTURE(once);
    CHECK(within(once, static_cast<double>(n), 0.02));
    // Repeats do not count.
    for (std::uint64_t i = 0; i < n; ++i) {
      hll.add_hash(hash_index(i));
    }
    CHECK(hll.estimate() == once);
  }
}

TEST_CASE("HyperLogLog is near exact for small sets", "[metrics][sketches]") {
  HyperLogLog hll;
  CHECK(hll.estimate() == 0.0);
  for (std::uint64_t n = 1; n <= 200; ++n) {
    hll.add_hash(hash_index(n, 99));
    CAPTURE(n, hll.estimate());
    REQUIRE(std::fabs(hll.estimate() - static_cast<double>(n)) <=
            1.0 + 0.01 * static_cast<double>(n));
  }
  // Names hashed from their text, as the daemon will do. Two of the first ten test names share
  // a register (a 0.27 % event at p = 14), which costs exactly one.
  HyperLogLog names;
  for (std::size_t i = 0; i < 1000; ++i) {
    names.add_hash(hash_bytes(population().names[i], kSeed));
    if (i + 1 == 10) {
      CHECK(std::fabs(names.estimate() - 10.0) <= 1.0);
    }
  }
  CHECK(within(names.estimate(), 1000, 0.02));
}

TEST_CASE("HyperLogLog has no bias where linear counting hands over to the raw estimate",
          "[metrics][sketches]") {
  // The textbook estimator switches at 2.5 * 2^14 = 40,960 and runs about 2.4 % high just past
  // it. Averaging 32 independent sketches brings the noise down to about 0.12 %, so a bias of
  // 0.5 % would show.
  for (const std::uint64_t n : {std::uint64_t{41'000}, std::uint64_t{45'000}}) {
    CAPTURE(n);
    double mean_error = 0.0;
    for (std::uint64_t seed = 1; seed <= 32; ++seed) {
      HyperLogLog hll;
      for (std::uint64_t i = 0; i < n; ++i) {
        hll.add_hash(hash_index(i, seed));
      }
      mean_error += (hll.estimate() / static_cast<double>(n) - 1.0) / 32.0;
    }
    CAPTURE(mean_error);
    CHECK(std::fabs(mean_error) < 0.005);
  }
  // And one sketch stays within 2 % all the way through the old switch-over.
  HyperLogLog hll;
  std::uint64_t added = 0;
  for (std::uint64_t n = 30'000; n <= 60'000; n += 1'000) {
    CAPTURE(n);
    for (; added < n; ++added) {
      hll.add_hash(hash_index(added, 3));
    }
    CAPTURE(hll.estimate());
    CHECK(within(hll.estimate(), static_cast<double>(n), 0.02));
  }
}

TEST_CASE("merged HyperLogLog sketches estimate the union of disjoint and overlapping sets",
          "[metrics][sketches]") {
  auto fill = [](HyperLogLog& h, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i < to; ++i) {
      h.add_hash(hash_index(i, 11));
    }
  };
  HyperLogLog whole;
  fill(whole, 0, 1'000'000);

  SECTION("disjoint halves") {
    HyperLogLog a;
    HyperLogLog b;
    fill(a, 0, 500'000);
    fill(b, 500'000, 1'000'000);
    CHECK(within(a.estimate(), 500'000, 0.02));
    REQUIRE(a.merge(b));
    CHECK(within(a.estimate(), 1'000'000, 0.02));
    CHECK(a.estimate() == whole.estimate());  // register-wise max loses nothing
  }
  SECTION("overlapping sets") {
    HyperLogLog a;
    HyperLogLog b;
    fill(a, 0, 600'000);
    fill(b, 400'000, 1'000'000);
    REQUIRE(a.merge(b));
    CHECK(within(a.estimate(), 1'000'000, 0.02));
    CHECK(a.estimate() == whole.estimate());
  }
  SECTION("small disjoint sets stay in the near-exact regime") {
    HyperLogLog a;
    HyperLogLog b;
    fill(a, 0, 600);
    fill(b, 600, 1000);
    REQUIRE(a.merge(b));
    CHECK(within(a.estimate(), 1000, 0.02));
  }
  SECTION("sketches of different precision do not merge") {
    HyperLogLog a;
    const HyperLogLog small(10);
    const double before = a.estimate();
    CHECK_FALSE(a.merge(small));
    CHECK(a.estimate() == before);
  }
}

TEST_CASE("HyperLogLog precision is configurable within [4, 18]", "[metrics][sketches]") {
  CHECK_THROWS_AS(HyperLogLog(3), std::invalid_argument);
  CHECK_THROWS_AS(HyperLogLog(19), std::invalid_argument);
  for (const unsigned p : {4U, 10U, 18U}) {
    CAPTURE(p);
    HyperLogLog h(p);
    CHECK(h.memory_bytes() == sizeof(HyperLogLog) + (std::size_t{1} << p));
    for (std::uint64_t i = 0; i < 200'000; ++i) {
      h.add_hash(hash_index(i, 5));
    }
    // Four standard errors: a deterministic check that is far from flaky with a fixed seed.
    CHECK(within(h.estimate(), 200'000, 4 * HyperLogLog::standard_error(p)));
    h.clear();
    CHECK(h.estimate() == 0.0);
  }
  CHECK(HyperLogLog::standard_error(14) == Approx(0.008125));
}

// ---------------------------------------------------------------------------------------------
// Sliding windows

namespace {

std::uint64_t count_at(const SlidingWindow<CountSummary>& w, std::int64_t now_ns) {
  CountSummary out;
  REQUIRE(w.query(now_ns, out));
  return out.value();
}

}  // namespace

TEST_CASE("a windowed count falls to zero once the window passes without traffic",
          "[metrics][sketches]") {
  SlidingWindow<CountSummary> w(60 * kSecond, 6);  // 1 minute as 6 x 10 s
  CHECK(w.sub_window_ns() == 10 * kSecond);
  CHECK(count_at(w, 0) == 0);  // nothing added yet
  for (std::int64_t s = 0; s < 60; ++s) {
    w.add(s * kSecond, 1U);
  }
  CHECK(count_at(w, 60 * kSecond - 1) == 60);
  // Each boundary expires one whole sub-window of 10.
  CHECK(count_at(w, 60 * kSecond) == 50);
  CHECK(count_at(w, 70 * kSecond - 1) == 50);
  CHECK(count_at(w, 70 * kSecond) == 40);
  CHECK(count_at(w, 109 * kSecond) == 10);
  CHECK(count_at(w, 110 * kSecond) == 0);
  CHECK(count_at(w, 3600 * kSecond) == 0);
  // Queries are reads: the data is still there for an earlier now.
  CHECK(count_at(w, 59 * kSecond) == 60);
}

TEST_CASE("advancing across sub-window boundaries clears only the sub-windows passed",
          "[metrics][sketches]") {
  SlidingWindow<CountSummary> w(60 * kSecond, 6);
  w.add(5 * kSecond, 1U);   // epoch 0
  w.add(15 * kSecond, 2U);  // epoch 1
  w.add(35 * kSecond, 4U);  // epoch 3 (epoch 2 stays empty)
  w.add(55 * kSecond, 8U);  // epoch 5
  CHECK(count_at(w, 55 * kSecond) == 15);
  w.add(65 * kSecond, 16U);  // epoch 6 reuses epoch 0's slot: the 1 must be gone
  CHECK(count_at(w, 65 * kSecond) == 30);
  w.add(85 * kSecond, 32U);  // epochs 7, 8: epoch 1 and the empty epoch 2 are cleared
  CHECK(count_at(w, 85 * kSecond) == 60);
  CHECK(count_at(w, 95 * kSecond) == 56);  // epoch 3 expired at query time
  CHECK(w.late_adds() == 0);
  CHECK(w.restarts() == 0);
}

TEST_CASE("a jump of a whole window or more clears every sub-window", "[metrics][sketches]") {
  SlidingWindow<CountSummary> w(60 * kSecond, 6);
  for (std::int64_t s = 0; s < 60; s += 10) {
    w.add(s * kSecond, 1U);
  }
  SECTION("a jump of K - 1 sub-windows keeps the newest one") {
    w.add(100 * kSecond, 100U);  // epoch 5 -> 10
    CHECK(count_at(w, 100 * kSecond) == 101);
  }
  SECTION("a jump of exactly K sub-windows keeps nothing") {
    w.add(110 * kSecond, 100U);
    CHECK(count_at(w, 110 * kSecond) == 100);
  }
  SECTION("a jump of a day keeps nothing") {
    w.add(86'400 * kSecond, 100U);
    CHECK(count_at(w, 86'400 * kSecond) == 100);
    // and the cleared slots do not come back when time reaches their epochs again
    CHECK(count_at(w, 86'400 * kSecond + 50 * kSecond) == 100);
  }
}

TEST_CASE("time going backwards a little is added to the current sub-window",
          "[metrics][sketches]") {
  SlidingWindow<CountSummary> w(60 * kSecond, 6);
  w.add(25 * kSecond, 1U);   // epoch 2
  w.add(19 * kSecond, 2U);   // epoch 1 is behind: goes into epoch 2
  w.add(-30 * kSecond, 4U);  // still less than a window behind
  CHECK(w.late_adds() == 2);
  CHECK(w.restarts() == 0);
  CHECK(count_at(w, 25 * kSecond) == 7);
  // The late data ages with the current sub-window: still there until epoch 2 expires.
  CHECK(count_at(w, 79 * kSecond) == 7);
  CHECK(count_at(w, 80 * kSecond) == 0);
}

TEST_CASE("a backward jump of a whole window restarts the window", "[metrics][sketches]") {
  SlidingWindow<CountSummary> w(60 * kSecond, 6);
  w.add(3600 * kSecond, 5U);
  w.add(0, 1U);  // a replay starting over
  CHECK(w.restarts() == 1);
  CHECK(w.late_adds() == 0);
  CHECK(count_at(w, 0) == 1);
  w.add(10 * kSecond, 2U);  // and time moves on from there
  CHECK(count_at(w, 10 * kSecond) == 3);
  CHECK(count_at(w, 3600 * kSecond) == 0);
}

TEST_CASE("windows line up on multiples of the sub-window, negative times included",
          "[metrics][sketches]") {
  SlidingWindow<CountSummary> w(3 * kSecond, 3);
  w.add(-1, 1U);  // epoch -1
  w.add(0, 2U);   // epoch 0
  CHECK(count_at(w, 0) == 3);
  CHECK(count_at(w, 2 * kSecond - 1) == 3);
  CHECK(count_at(w, 2 * kSecond) == 2);  // epoch -1 expired
  CHECK(count_at(w, 3 * kSecond) == 0);
  w.clear();
  CHECK(count_at(w, 0) == 0);
  CHECK_THROWS_AS(SlidingWindow<CountSummary>(60 * kSecond, 7), std::invalid_argument);
  CHECK_THROWS_AS(SlidingWindow<CountSummary>(0, 1), std::invalid_argument);
  CHECK_THROWS_AS(SlidingWindow<CountSummary>(60 * kSecond, 0), std::invalid_argument);
}

TEST_CASE("a windowed Space-Saving forgets a heavy hitter once its sub-windows expire",
          "[metrics][sketches]") {
  // 5 minutes as 10 x 30 s.
  SlidingWindow<Names> w(300 * kSecond, 10, std::size_t{64}, kSeed);
  const NameKey old_heavy = name_key("old.example");
  const NameKey new_heavy = name_key("new.example");
  const auto& keys = population().keys;
  for (std::int64_t s = 0; s < 600; ++s) {
    const std::int64_t t = s * kSecond;
    w.add(t, s < 120 ? old_heavy : new_heavy, 50U);
    for (std::size_t i = 0; i < 20; ++i) {
      w.add(t, keys[(static_cast<std::size_t>(s) * 20 + i) % keys.size()]);
    }
    if (s == 119 || s == 599) {
      Names snapshot(64, kSeed);
      REQUIRE(w.query(t, snapshot));
      std::array<HeavyHitter<NameKey>, 1> top{};
      REQUIRE(snapshot.top(top) == 1);
      CHECK(top[0].key == (s < 120 ? old_heavy : new_heavy));
      if (s == 599) {
        CHECK_FALSE(snapshot.find(old_heavy).has_value());
        // Epochs 10..19: 300 s to 599 s, 70 adds of weight 1 or 50 per second.
        CHECK(snapshot.total() == 300UL * (50 + 20));
        const auto b = snapshot.find(new_heavy);
        REQUIRE(b.has_value());
        CHECK(b->count >= 300UL * 50);
        CHECK(b->count - b->error <= 300UL * 50);
      }
    }
  }
  Names too_small(32, kSeed);
  CHECK_FALSE(w.query(599 * kSecond, too_small));  // incompatible scratch is reported
}

TEST_CASE("a windowed HyperLogLog counts the distinct items of the live sub-windows only",
          "[metrics][sketches]") {
  // 1 hour as 12 x 5 minutes; each 5-minute slice sees 20,000 new clients and 10,000 repeats.
  SlidingWindow<HyperLogLog> w(3600 * kSecond, 12, 14U);
  HyperLogLog scratch;
  std::uint64_t next_client = 0;
  for (std::int64_t slice = 0; slice < 24; ++slice) {
    const std::int64_t t = slice * 300 * kSecond;
    const std::uint64_t first = next_client;
    for (std::uint64_t i = 0; i < 20'000; ++i) {
      w.advance(t + static_cast<std::int64_t>(i) * 1000).add_hash(hash_index(next_client++, 21));
    }
    for (std::uint64_t i = 0; i < 10'000; ++i) {
      w.advance(t + 299 * kSecond).add_hash(hash_index(first + i, 21));
    }
    REQUIRE(w.query(t + 299 * kSecond, scratch));
    const auto live_slices = static_cast<double>(std::min<std::int64_t>(slice + 1, 12));
    CAPTURE(slice, scratch.estimate());
    // Four standard errors (3.3 %): one slice too many or too few is 8 % off. (With this seed
    // the 240k sets come out up to 3 % high: 2 % is only 2.5 standard errors.)
    CHECK(within(scratch.estimate(), 20'000 * live_slices, 4 * HyperLogLog::standard_error(14)));
  }
  REQUIRE(w.query(kSecond * 24 * 300 + kSecond * 3600, scratch));
  CHECK(scratch.estimate() == 0.0);
}

// ---------------------------------------------------------------------------------------------
// Resource bounds

TEST_CASE("updates, queries, top() and merges allocate nothing after construction",
          "[metrics][sketches]") {
  const auto stream = zipf_stream(200'000, population().keys.size(), 1.0, 77);
  Names names(1024, kSeed);
  Names names2(1024, kSeed);
  SpaceSaving<AddrKey> clients(256, kSeed);
  HyperLogLog hll;
  HyperLogLog hll2;
  SlidingWindow<Names> name_window(60 * kSecond, 6, std::size_t{256}, kSeed);
  SlidingWindow<HyperLogLog> hll_window(60 * kSecond, 6);
  SlidingWindow<CountSummary> count_window(60 * kSecond, 6);
  Names name_scratch(256, kSeed);
  HyperLogLog hll_scratch;
  CountSummary count_scratch;
  std::array<HeavyHitter<NameKey>, 10> top{};
  std::array<HeavyHitter<AddrKey>, 10> top_clients{};

  // The counter itself works.
  const std::size_t probe_before = allocations();
  const auto probe = std::make_unique<int>(1);
  REQUIRE(allocations() == probe_before + 1);

  const std::size_t before = allocations();
  int queries_ok = 0;
  std::int64_t now = 1'700'000'000 * kSecond;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    const NameKey& key = population().keys[stream[i]];
    const auto client = static_cast<std::uint32_t>(stream[i] % 5000);
    (i % 2 == 0 ? names : names2).add(key);
    clients.add(addr_key(client));
    hll.add_hash(hash_bytes(key.chars.data(), key.size, kSeed));
    hll2.add_hash(hash_index(client));
    now += 1'000'000;  // 1 ms per item: 200 s in all, so every window rotates many times
    if (i == 100'000) {
      now += 3600 * kSecond;  // and jumps once
    }
    name_window.add(now, key);
    hll_window.advance(now).add_hash(hash_index(client));
    count_window.add(now, 1U);
    if ((i + 1) % 20'000 == 0) {
      queries_ok += name_window.query(now, name_scratch) ? 1 : 0;
      queries_ok += hll_window.query(now, hll_scratch) ? 1 : 0;
      queries_ok += count_window.query(now, count_scratch) ? 1 : 0;
      queries_ok += names.top(top) == top.size() ? 1 : 0;
      queries_ok += name_scratch.top(top) == top.size() ? 1 : 0;
      queries_ok += clients.top(top_clients) == top_clients.size() ? 1 : 0;
    }
  }
  const bool merged = names.merge(names2) && hll.merge(hll2);
  names2.clear();
  hll2.clear();
  const double estimate = hll.estimate();
  const std::size_t allocated = allocations() - before;

  CHECK(allocated == 0);
  CHECK(merged);
  CHECK(queries_ok == 6 * 10);
  CHECK(estimate > 0.0);
  CHECK(names.total() == stream.size());
}

TEST_CASE("memory_bytes() is fixed at construction whatever the input", "[metrics][sketches]") {
  Names names(1024, kSeed);
  Names other(1024, kSeed);
  HyperLogLog hll;
  SlidingWindow<Names> window(60 * kSecond, 6, std::size_t{256}, kSeed);
  SlidingWindow<HyperLogLog> hll_window(3600 * kSecond, 12);
  const std::size_t names_bytes = names.memory_bytes();
  const std::size_t hll_bytes = hll.memory_bytes();
  const std::size_t window_bytes = window.memory_bytes();
  const std::size_t hll_window_bytes = hll_window.memory_bytes();

  // What the layout promises: the inline keys plus a few words per counter, and one byte per
  // HLL register.
  CHECK(names_bytes >= 1024 * sizeof(NameKey));
  CHECK(names_bytes <= 1024 * (sizeof(NameKey) + 64) + sizeof(Names));
  CHECK(hll_bytes == sizeof(HyperLogLog) + 16'384);
  CHECK(window_bytes >= 6 * Names(256, kSeed).memory_bytes());
  CHECK(hll_window_bytes >= 12 * hll_bytes);
  CHECK(hll_window_bytes <= 12 * hll_bytes + 1024);
  // The budget check at startup relies on the planned sizes being the real ones.
  CHECK(Names::planned_bytes(1024) == names_bytes);
  CHECK(Names::planned_bytes(3) == Names(3, kSeed).memory_bytes());
  CHECK(HyperLogLog::planned_bytes(14) == hll_bytes);
  CHECK(HyperLogLog::planned_bytes(4) == HyperLogLog(4).memory_bytes());
  CHECK(SlidingWindow<Names>::planned_bytes(6, Names::planned_bytes(256)) == window_bytes);
  CHECK(SlidingWindow<HyperLogLog>::planned_bytes(12, hll_bytes) == hll_window_bytes);

  // A random-subdomain flood: every name distinct.
  std::mt19937_64 rng(123);
  std::int64_t now = 0;
  for (std::size_t i = 0; i < 300'000; ++i) {
    const std::string name = std::to_string(rng()) + ".flood.example";
    const NameKey key = name_key(name);
    names.add(key);
    other.add_hashed(key, hash_bytes(name, kSeed), 2);
    hll.add_hash(hash_bytes(name, kSeed));
    now += 10'000'000;
    window.add(now, key);
    hll_window.advance(now).add_hash(hash_bytes(name, kSeed));
  }
  REQUIRE(names.merge(other));
  CHECK(names.size() == 1024);
  CHECK(names.memory_bytes() == names_bytes);
  CHECK(hll.memory_bytes() == hll_bytes);
  CHECK(window.memory_bytes() == window_bytes);
  CHECK(hll_window.memory_bytes() == hll_window_bytes);
  names.clear();
  window.clear();
  CHECK(names.memory_bytes() == names_bytes);
  CHECK(window.memory_bytes() == window_bytes);
}

TEST_CASE("keys that do not fit and bad capacities are refused", "[metrics][sketches]") {
  NameKey k;
  CHECK(k.assign(std::string(255, 'a')));
  CHECK(k.view().size() == 255);
  CHECK_FALSE(k.assign(std::string(256, 'a')));
  CHECK(k.view().empty());
  CHECK_THROWS_AS(Names(0), std::invalid_argument);
  CHECK_THROWS_AS(Names(Names::kMaxCapacity + 1), std::invalid_argument);
  Names one(1, kSeed);
  one.add(name_key("a.example"), 3);
  one.add(name_key("b.example"));
  const auto b = one.find(name_key("b.example"));
  REQUIRE(b.has_value());
  CHECK(b->count == 4);
  CHECK(b->error == 3);
}
