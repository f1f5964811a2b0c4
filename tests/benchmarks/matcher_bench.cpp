// Cost of the query/response matcher (dnsmon/analytics/detail/matcher.hpp) on a realistic stream,
// in steady state: on_query() for every query and on_response() for every response, in packet-time
// order.
//
// The stream (one per argument, the query rate in packet time):
// - 5,000 clients, 10% of them IPv6, each using one of a few resolvers; a random source port and
//   DNS id per query; 2% of the queries over TCP.
// - 20,000 names of 15 to 40 characters; 10% of the queries spell theirs in mixed case (0x20
//   randomisation), and the response echoes that spelling.
// - Latency: 70% within 0.1-5 ms, 25% within 5-100 ms, 4.8% within 0.1-1 s, and 0.2% answered
//   after the 5 s timeout (a timeout, then an unmatched response); 1% are never answered, half of
//   those retransmitted once a second later (a duplicate).
// At 20,000 queries/s about 1,200 queries are outstanding, at 100,000/s about 6,000 (the
// `outstanding` counter), far below the default capacity: the steady state of a busy resolver.
//
// One iteration is one message. items_per_second counts queries, each with its response, so it
// reads as pairs per second; ns/pair is its inverse. BM_MatcherStream_GivenHash passes each
// message's name hash in, as a worker that hashes names once for all its analytics does. The
// harness alone (building each message from the compact trace) is BM_MatcherStream_HarnessOnly:
// subtract it for the matcher's own cost.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "dnsmon/analytics/detail/matcher.hpp"
#include "dnsmon/parser.hpp"

namespace {

using dnsmon::DnsMessage;
using dnsmon::IpAddr;
using dnsmon::Transport;
using dnsmon::detail::MatcherOptions;
using dnsmon::detail::QueryMatcher;

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kSecond = 1'000 * kMs;
constexpr std::int64_t kT0 = 1'700'000'000 * kSecond;
constexpr std::size_t kClients = 5'000;
constexpr std::size_t kNames = 20'000;
// Longer than the timeout, so the unanswered queries of one pass expire before the trace repeats
// their keys.
constexpr std::int64_t kQuerySpan = 6 * kSecond;

struct Event {
  std::int64_t ts_ns;
  std::uint32_t client;
  std::uint32_t name;  // index into Trace::names
  std::uint16_t port, id, qtype, rcode;
  bool response;
  Transport transport;
};

struct Trace {
  std::vector<IpAddr> clients, servers;  // servers[i] answers clients[i]
  std::vector<std::string> names;        // kNames lower-case names, then a mixed-case spelling each
  std::vector<Event> events;             // in time order
  std::int64_t span_ns = 0;              // the next pass starts this much later
  std::size_t queries = 0;
};

IpAddr random_addr(std::mt19937_64& rng, bool v6) {
  IpAddr a;
  a.family = v6 ? 6 : 4;
  const std::uint64_t hi = rng(), lo = rng();
  std::memcpy(a.bytes.data(), &hi, 8);
  std::memcpy(a.bytes.data() + 8, &lo, 8);
  if (v6) {
    a.bytes[0] = 0x20;  // 2001:db8::/32
    a.bytes[1] = 0x01;
    a.bytes[2] = 0x0d;
    a.bytes[3] = 0xb8;
  } else {
    a.bytes[0] = 10;  // 10.0.0.0/8, and the bytes beyond the fourth zero, as the parser leaves them
    std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
  }
  return a;
}

std::string random_name(std::mt19937_64& rng) {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789-";
  static constexpr std::array<std::string_view, 5> kTlds{"com", "net", "org", "de", "io"};
  const std::string_view tld = kTlds[rng() % kTlds.size()];
  const std::size_t length = 15 + rng() % 26;  // 15..40 characters, dots included
  std::string name;
  while (name.size() + 1 + tld.size() < length) {
    const std::size_t room = length - name.size() - 1 - tld.size();
    const std::size_t label = std::min<std::size_t>(room, 3 + rng() % 10);
    for (std::size_t i = 0; i < label; ++i) {
      name += kAlphabet[rng() % (i == 0 ? 26 : kAlphabet.size() - 1)];
    }
    name += '.';
  }
  name += tld;
  return name;
}

std::string mixed_case(std::string name, std::mt19937_64& rng) {
  for (char& c : name) {
    if (c >= 'a' && c <= 'z' && rng() % 2 == 0) {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return name;
}

std::int64_t log_uniform(std::mt19937_64& rng, std::int64_t lo_ns, std::int64_t hi_ns) {
  std::uniform_real_distribution<double> u(std::log(static_cast<double>(lo_ns)),
                                           std::log(static_cast<double>(hi_ns)));
  return static_cast<std::int64_t>(std::exp(u(rng)));
}

Trace make_trace(std::int64_t queries_per_second) {
  std::mt19937_64 rng{20240611};
  Trace t;
  std::vector<IpAddr> servers4, servers6;
  for (int i = 0; i < 4; ++i) {
    servers4.push_back(random_addr(rng, false));
  }
  for (int i = 0; i < 2; ++i) {
    servers6.push_back(random_addr(rng, true));
  }
  for (std::size_t i = 0; i < kClients; ++i) {
    const bool v6 = i % 10 == 0;
    t.clients.push_back(random_addr(rng, v6));
    t.servers.push_back(v6 ? servers6[i % servers6.size()] : servers4[i % servers4.size()]);
  }
  for (std::size_t i = 0; i < kNames; ++i) {
    t.names.push_back(random_name(rng));
  }
  for (std::size_t i = 0; i < kNames; ++i) {
    t.names.push_back(mixed_case(t.names[i], rng));
  }

  const std::int64_t gap_ns = kSecond / queries_per_second;
  const auto queries = static_cast<std::size_t>(kQuerySpan / gap_ns);
  for (std::size_t i = 0; i < queries; ++i) {
    Event q{};
    q.ts_ns = static_cast<std::int64_t>(i) * gap_ns + static_cast<std::int64_t>(rng() % 1000);
    q.client = static_cast<std::uint32_t>(rng() % kClients);
    q.name = static_cast<std::uint32_t>(rng() % kNames + (rng() % 10 == 0 ? kNames : 0));
    q.port = static_cast<std::uint16_t>(1024 + rng() % (65536 - 1024));
    q.id = static_cast<std::uint16_t>(rng());
    const std::uint64_t type = rng() % 100;
    q.qtype = type < 60 ? 1 : type < 90 ? 28 : type < 95 ? 65 : 12;
    q.transport = rng() % 50 == 0 ? Transport::Tcp : Transport::Udp;
    t.events.push_back(q);

    const std::uint64_t fate = rng() % 1000;
    if (fate < 10) {  // never answered; half retransmitted
      if (fate < 5) {
        Event retry = q;
        retry.ts_ns += kSecond;
        t.events.push_back(retry);
      }
      continue;
    }
    Event r = q;
    r.response = true;
    r.rcode = rng() % 20 == 0 ? 3 : 0;
    r.ts_ns += fate < 12    ? 5 * kSecond + log_uniform(rng, kMs, kSecond)  // after the timeout
               : fate < 60  ? log_uniform(rng, 100 * kMs, kSecond)
               : fate < 310 ? log_uniform(rng, 5 * kMs, 100 * kMs)
                            : log_uniform(rng, kMs / 10, 5 * kMs);
    t.events.push_back(r);
  }
  std::stable_sort(t.events.begin(), t.events.end(),
                   [](const Event& a, const Event& b) { return a.ts_ns < b.ts_ns; });
  t.span_ns = t.events.back().ts_ns + kMs;
  t.queries = queries;
  return t;
}

const Trace& trace(std::int64_t queries_per_second) {
  static std::map<std::int64_t, Trace> traces;  // built once per rate, outside the timed loops
  auto it = traces.find(queries_per_second);
  if (it == traces.end()) {
    it = traces.emplace(queries_per_second, make_trace(queries_per_second)).first;
  }
  return it->second;
}

// Writes event e of pass `pass` into m, as the parser would have decoded it.
void fill(const Trace& t, const Event& e, std::int64_t pass, DnsMessage& m) {
  const IpAddr& client = t.clients[e.client];
  const IpAddr& server = t.servers[e.client];
  m.ts_ns = kT0 + pass * t.span_ns + e.ts_ns;
  m.src = e.response ? server : client;
  m.dst = e.response ? client : server;
  m.sport = e.response ? 53 : e.port;
  m.dport = e.response ? e.port : 53;
  m.id = e.id;
  m.qr = e.response;
  m.qtype = e.qtype;
  m.rcode = e.rcode;
  m.transport = e.transport;
  const std::string& name = t.names[e.name];
  std::memcpy(m.qname.text.data(), name.data(), name.size());
  m.qname.length = static_cast<std::uint16_t>(name.size());
}

DnsMessage blank_message() {
  DnsMessage m;
  m.qclass = 1;
  m.has_question = true;
  m.qdcount = 1;
  return m;
}

enum class Mode {
  HarnessOnly,
  Matcher,
  // The name hash comes with the message, as in a worker that hashes each name once for all its
  // analytics; the hashes are computed before the clock starts.
  MatcherGivenHash,
};

template <Mode kMode>
void run_stream(benchmark::State& state) {
  const Trace& t = trace(state.range(0));
  QueryMatcher matcher{MatcherOptions{.hash_seed = 1}};  // the default capacity and timeout
  std::vector<std::uint64_t> name_hashes;
  for (const std::string& name : t.names) {
    name_hashes.push_back(dnsmon::detail::qname_hash(name, matcher.hash_seed()));
  }
  DnsMessage m = blank_message();
  QueryMatcher::Result result;
  std::int64_t pass = 0;
  std::size_t i = 0;
  const auto step = [&] {
    const Event& e = t.events[i];
    fill(t, e, pass, m);
    if constexpr (kMode == Mode::Matcher) {
      if (e.response) {
        benchmark::DoNotOptimize(matcher.on_response(m, result));
      } else {
        benchmark::DoNotOptimize(matcher.on_query(m));
      }
    } else if constexpr (kMode == Mode::MatcherGivenHash) {
      if (e.response) {
        benchmark::DoNotOptimize(matcher.on_response(m, name_hashes[e.name], result));
      } else {
        benchmark::DoNotOptimize(matcher.on_query(m, name_hashes[e.name]));
      }
    } else {
      benchmark::DoNotOptimize(m);
    }
    if (++i == t.events.size()) {
      i = 0;
      ++pass;
    }
  };
  // One whole pass first, so the table is in its steady state when the clock starts.
  for (std::size_t n = 0; n < t.events.size(); ++n) {
    step();
  }
  const auto before = matcher.stats();
  std::uint64_t queries = 0;
  std::uint64_t outstanding_sum = 0;
  for (auto _ : state) {
    queries += t.events[i].response ? 0U : 1U;
    step();
    outstanding_sum += matcher.size();
  }
  const auto after = matcher.stats();
  state.SetItemsProcessed(static_cast<std::int64_t>(queries));
  state.counters["ns/pair"] = benchmark::Counter(
      static_cast<double>(queries), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  if constexpr (kMode != Mode::HarnessOnly) {
    const auto per_query = [&](std::uint64_t a, std::uint64_t b) {
      return queries == 0 ? 0.0 : static_cast<double>(a - b) / static_cast<double>(queries);
    };
    state.counters["outstanding"] =
        static_cast<double>(outstanding_sum) /
        static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
    state.counters["matched/q"] = per_query(after.matched, before.matched);
    state.counters["timeouts/q"] = per_query(after.timeouts, before.timeouts);
    state.counters["dups/q"] = per_query(after.duplicates, before.duplicates);
    state.counters["evictions/q"] = per_query(after.evictions, before.evictions);
  }
}

void BM_MatcherStream(benchmark::State& state) {
  run_stream<Mode::Matcher>(state);
}

void BM_MatcherStream_GivenHash(benchmark::State& state) {
  run_stream<Mode::MatcherGivenHash>(state);
}

void BM_MatcherStream_HarnessOnly(benchmark::State& state) {
  run_stream<Mode::HarnessOnly>(state);
}

BENCHMARK(BM_MatcherStream)->Arg(20'000)->Arg(100'000);
BENCHMARK(BM_MatcherStream_GivenHash)->Arg(20'000)->Arg(100'000);
BENCHMARK(BM_MatcherStream_HarnessOnly)->Arg(100'000);

}  // namespace
