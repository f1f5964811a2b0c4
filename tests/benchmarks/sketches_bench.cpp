// Cost of the Space-Saving updates (dnsmon/analytics/detail/sketches.hpp) as the analytics make
// them: a worker feeds "staging" summaries of top_capacity = 256 counters with add_hashed() for one
// second of traffic, then folds each into a sub-window with merge() and clears it.
//
// The streams, one second = 47,000 adds (the benchmark mix's query rate), clear() after each:
//   Names_Zipf      NameKey, Zipf(1.0) over 130,000 distinct names of 10 to 40 characters: the
//                   qname table. Most adds miss and take over the minimum counter.
//   Names_Flood     NameKey, every name distinct (a random-subdomain flood): every add misses.
//   Clients_Uniform AddrKey, uniform over 10,000 clients: the client table.
// Each iteration is one add_hashed() (the hash is computed outside, as the worker hashes each
// name once for all its tables), so the time per iteration is ns per add. The name benchmarks
// copy each name into a reused scratch key first, as the worker lower-cases into one, from a
// name prefetched a few adds ahead (the worker's name is in the packet it just parsed, so in
// cache): BM_SpaceSaving_Names_HarnessOnly is that copy alone, to subtract.
//
//   Names_Fold      one merge() of a full staging summary (a second of Names_Zipf) into a
//                   sub-window summary that collects 10 seconds (60 s window / 6), then restarts
//   Names_Query     one publication of a window: clear() a scratch summary and merge() the 6 full
//                   sub-windows into it
//   Clients_Fold    Names_Fold for the client table
// Time per iteration is per merge (Fold) or per publication of one table (Query).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "dnsmon/analytics/detail/sketches.hpp"

#include "zipf.hpp"

namespace {

using dnsmon::detail::AddrKey;
using dnsmon::detail::hash_bytes;
using dnsmon::detail::key_hash;
using dnsmon::detail::NameKey;
using dnsmon::detail::SpaceSaving;

constexpr std::uint64_t kSeed = 0x2545f4914f6cdd1dULL;
constexpr std::size_t kCapacity = 256;  // AnalyticsOptions::top_capacity
constexpr std::size_t kAddsPerSecond = 47'000;
constexpr std::size_t kSeconds = 16;  // length of the precomputed streams
constexpr std::size_t kNames = 130'000;
constexpr std::size_t kClients = 10'000;
constexpr std::size_t kSubWindowSeconds = 10;
constexpr std::size_t kSubWindows = 6;
constexpr std::size_t kPrefetchDistance = 16;

// Names stored back to back, as the parser leaves them in a packet.
struct Names {
  std::string text;
  std::vector<std::uint32_t> offset;  // name i is text[offset[i], offset[i + 1])
  std::vector<std::uint64_t> hash;

  [[nodiscard]] std::string_view operator[](std::size_t i) const {
    return std::string_view(text).substr(offset[i], offset[i + 1] - offset[i]);
  }
};

std::string base36(std::size_t i) {
  std::string s;
  do {
    s += "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
    i /= 36;
  } while (i != 0);
  return s;
}

// Distinct names (the first label is the index) of 10 to 40 characters.
const Names& names() {
  static const Names n = [] {
    static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789-";
    static constexpr std::array<std::string_view, 6> kTlds{"com", "net", "org",
                                                           "de",  "io",  "co.uk"};
    std::mt19937_64 rng(20240917);
    Names out;
    out.offset.push_back(0);
    for (std::size_t i = 0; i < kNames; ++i) {
      const std::size_t length = 10 + rng() % 31;
      const std::string_view tld = kTlds[rng() % kTlds.size()];
      std::string name = base36(i);
      while (name.size() + 1 + tld.size() < length) {
        const bool dot =
            name.back() != '.' && name.size() + 2 + tld.size() < length && rng() % 8 == 0;
        name += dot ? '.' : kAlphabet[rng() % kAlphabet.size()];
      }
      name += '.';
      name += tld;
      out.text += name;
      out.offset.push_back(static_cast<std::uint32_t>(out.text.size()));
      out.hash.push_back(hash_bytes(name, kSeed));
    }
    return out;
  }();
  return n;
}

// Ranks drawn from Zipf(s) over `keys`, with a fixed seed.
std::vector<std::uint32_t> zipf_stream(std::size_t items, std::size_t keys, double s,
                                       std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> out = dnsmon::test::zipf_ranks(items, keys, s, rng);
  // Popularity is not alphabetical: rank r is name perm[r].
  std::vector<std::uint32_t> perm(keys);
  for (std::uint32_t i = 0; i < keys; ++i) {
    perm[i] = i;
  }
  std::shuffle(perm.begin(), perm.end(), rng);
  for (auto& rank : out) {
    rank = perm[rank];
  }
  return out;
}

const std::vector<std::uint32_t>& zipf_names() {
  static const auto s = zipf_stream(kSeconds * kAddsPerSecond, kNames, 1.0, 7);
  return s;
}

const std::vector<std::uint32_t>& flood_names() {
  static const auto s = [] {
    std::vector<std::uint32_t> out(kSeconds * kAddsPerSecond);
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<std::uint32_t>((i * 7919) % kNames);  // 7919 is prime: all distinct
    }
    return out;
  }();
  return s;
}

struct Clients {
  std::vector<AddrKey> keys;
  std::vector<std::uint64_t> hash;
  std::vector<std::uint32_t> stream;
};

const Clients& clients() {
  static const Clients c = [] {
    std::mt19937_64 rng(99);
    Clients out;
    for (std::size_t i = 0; i < kClients; ++i) {
      AddrKey k;
      const bool v6 = i % 10 == 0;
      for (std::size_t b = 0; b < (v6 ? 16U : 4U); ++b) {
        k.bytes[b] = static_cast<std::uint8_t>(rng());
      }
      k.bytes[16] = v6 ? 6 : 4;
      out.keys.push_back(k);
      out.hash.push_back(key_hash(k, kSeed));
    }
    out.stream.resize(kSeconds * kAddsPerSecond);
    for (auto& r : out.stream) {
      r = static_cast<std::uint32_t>(rng() % kClients);
    }
    return out;
  }();
  return c;
}

// The worker's scratch key: only the name's bytes are written, the rest keeps older names.
void load_name(NameKey& key, std::string_view name) {
  std::memcpy(key.chars.data(), name.data(), name.size());
  key.size = static_cast<std::uint8_t>(name.size());
}

// One add of a name stream, laid out to be read in order.
struct NameAdd {
  std::uint32_t offset;  // into Names::text
  std::uint32_t size;
  std::uint64_t hash;
};

std::vector<NameAdd> name_adds_of(const std::vector<std::uint32_t>& ranks) {
  const Names& n = names();
  std::vector<NameAdd> out;
  out.reserve(ranks.size());
  for (const std::uint32_t r : ranks) {
    out.push_back(NameAdd{n.offset[r], n.offset[r + 1] - n.offset[r], n.hash[r]});
  }
  return out;
}

void name_adds(benchmark::State& state, const std::vector<std::uint32_t>& ranks, bool add) {
  const std::string& text = names().text;
  const std::vector<NameAdd> stream = name_adds_of(ranks);
  SpaceSaving<NameKey> staging(static_cast<std::size_t>(state.range(0)), kSeed);
  NameKey scratch;
  std::size_t i = 0;
  std::size_t in_second = 0;
  for (auto _ : state) {
    // The worker's name comes from the packet it just parsed, in cache: fetch ahead.
    __builtin_prefetch(text.data() + stream[(i + kPrefetchDistance) % stream.size()].offset);
    const NameAdd& a = stream[i];
    load_name(scratch, std::string_view(text).substr(a.offset, a.size));
    if (add) {
      staging.add_hashed(scratch, a.hash);
    } else {
      benchmark::DoNotOptimize(scratch);
    }
    if (++i == stream.size()) {
      i = 0;
    }
    if (++in_second == kAddsPerSecond) {
      in_second = 0;
      staging.clear();
    }
  }
  benchmark::DoNotOptimize(staging.total());
  state.SetItemsProcessed(state.iterations());
}

void BM_SpaceSaving_Names_Zipf(benchmark::State& state) {
  name_adds(state, zipf_names(), true);
}

void BM_SpaceSaving_Names_Flood(benchmark::State& state) {
  name_adds(state, flood_names(), true);
}

void BM_SpaceSaving_Names_HarnessOnly(benchmark::State& state) {
  name_adds(state, zipf_names(), false);
}

void BM_SpaceSaving_Clients_Uniform(benchmark::State& state) {
  const Clients& c = clients();
  SpaceSaving<AddrKey> staging(static_cast<std::size_t>(state.range(0)), kSeed);
  std::size_t i = 0;
  std::size_t in_second = 0;
  for (auto _ : state) {
    const std::uint32_t r = c.stream[i];
    staging.add_hashed(c.keys[r], c.hash[r]);
    if (++i == c.stream.size()) {
      i = 0;
    }
    if (++in_second == kAddsPerSecond) {
      in_second = 0;
      staging.clear();
    }
  }
  benchmark::DoNotOptimize(staging.total());
  state.SetItemsProcessed(state.iterations());
}

// kSeconds full staging summaries, one per second of the stream.
std::vector<SpaceSaving<NameKey>> name_seconds(std::size_t capacity) {
  const Names& n = names();
  const auto& stream = zipf_names();
  std::vector<SpaceSaving<NameKey>> out(kSeconds, SpaceSaving<NameKey>(capacity, kSeed));
  NameKey scratch;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    load_name(scratch, n[stream[i]]);
    out[i / kAddsPerSecond].add_hashed(scratch, n.hash[stream[i]]);
  }
  return out;
}

std::vector<SpaceSaving<AddrKey>> client_seconds(std::size_t capacity) {
  const Clients& c = clients();
  std::vector<SpaceSaving<AddrKey>> out(kSeconds, SpaceSaving<AddrKey>(capacity, kSeed));
  for (std::size_t i = 0; i < c.stream.size(); ++i) {
    out[i / kAddsPerSecond].add_hashed(c.keys[c.stream[i]], c.hash[c.stream[i]]);
  }
  return out;
}

template <class Key>
void fold(benchmark::State& state, const std::vector<SpaceSaving<Key>>& seconds) {
  SpaceSaving<Key> sub_window(static_cast<std::size_t>(state.range(0)), kSeed);
  std::size_t s = 0;
  std::size_t in_sub_window = 0;
  for (auto _ : state) {
    if (!sub_window.merge(seconds[s])) {
      state.SkipWithError("merge refused");
      break;
    }
    s = (s + 1) % seconds.size();
    if (++in_sub_window == kSubWindowSeconds) {
      in_sub_window = 0;
      sub_window.clear();
    }
  }
  benchmark::DoNotOptimize(sub_window.total());
  state.SetItemsProcessed(state.iterations());
}

void BM_SpaceSaving_Names_Fold(benchmark::State& state) {
  fold(state, name_seconds(static_cast<std::size_t>(state.range(0))));
}

void BM_SpaceSaving_Clients_Fold(benchmark::State& state) {
  fold(state, client_seconds(static_cast<std::size_t>(state.range(0))));
}

void BM_SpaceSaving_Names_Query(benchmark::State& state) {
  const auto capacity = static_cast<std::size_t>(state.range(0));
  const auto seconds = name_seconds(capacity);
  // Six full sub-windows of kSubWindowSeconds each, folded as the worker does.
  std::vector<SpaceSaving<NameKey>> subs(kSubWindows, SpaceSaving<NameKey>(capacity, kSeed));
  for (std::size_t i = 0; i < kSubWindows * kSubWindowSeconds; ++i) {
    (void)subs[i / kSubWindowSeconds].merge(seconds[i % seconds.size()]);
  }
  SpaceSaving<NameKey> snapshot(capacity, kSeed);
  for (auto _ : state) {
    snapshot.clear();
    for (const auto& sub : subs) {
      if (!snapshot.merge(sub)) {
        state.SkipWithError("merge refused");
        break;
      }
    }
  }
  benchmark::DoNotOptimize(snapshot.total());
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_SpaceSaving_Names_Zipf)->Arg(kCapacity);
BENCHMARK(BM_SpaceSaving_Names_Flood)->Arg(kCapacity);
BENCHMARK(BM_SpaceSaving_Names_HarnessOnly)->Arg(kCapacity);
BENCHMARK(BM_SpaceSaving_Clients_Uniform)->Arg(kCapacity);
BENCHMARK(BM_SpaceSaving_Names_Fold)->Arg(kCapacity)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SpaceSaving_Clients_Fold)->Arg(kCapacity)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SpaceSaving_Names_Query)->Arg(kCapacity)->Unit(benchmark::kMicrosecond);

}  // namespace
