// gen_pcap: writes a synthetic DNS capture (queries and their responses) for demos, tests and
// benchmarks. Deterministic for a given seed and set of options. Addresses come from the ranges
// reserved for documentation and benchmarking (198.18.0.0/15, 203.0.113.0/24, 2001:db8::/32), so
// replaying the file sends nothing anywhere real.
//
//   gen_pcap --out FILE|- [--profile simple|bench|flood] [--packets N] [--seed S] [--rate PPS]
//            [--ipv6 PCT] [--vlan PCT] [--edns PCT] [--nxdomain PCT] [--servfail PCT] [--tcp PCT]
//            [--mixed-case PCT] [--clients N] [--domains N] [--truth FILE.json]
//            [--cpp-out FILE.cpp] [--version]
//
// --out - writes the capture to standard output. Timestamps have microsecond resolution.
//
// Three profiles:
// - simple (the default): one UDP query and its response per transaction, over a dozen names. The
//   embedded demo and most tests use it; its output for a given seed never changes.
// - bench: the realistic mix of docs/performance.md, 2,000,000 frames unless --packets says
//   otherwise. Transactions arrive as a Poisson process (--rate frames per second, 100,000 by
//   default) and responses come back after a cache-hit or cache-miss latency, so queries and
//   responses of different clients interleave. The first N frames of a run are the same for any
//   --packets >= N. The percentage options change the defaults below.
//   * 5,000 client hosts (--clients), picked by Zipf(0.6), each with an IPv4 and an IPv6 address;
//     10% of transactions use IPv6. Hosts that carry 7% of the traffic sit behind an 802.1Q tag
//     (VLAN 10/20/30/110).
//   * Names: Zipf(1.0) over 20,000 registrable domains (--domains), multi-label suffixes such as
//     co.uk included, each with 1-19 subdomains chosen by Zipf(1.2) (~200k names), plus 10,000
//     in-addr.arpa/ip6.arpa names for PTR.
//   * qtypes A 51.5%, AAAA 26%, HTTPS 10%, PTR 5%, TXT 4%, MX 3%, a little SRV/NS/SOA/ANY.
//   * rcodes: NXDOMAIN 6.6% (half of them random labels), SERVFAIL 2.5%, REFUSED 0.1%; NXDOMAIN
//     and NODATA carry the zone's SOA. 0.5% of the queries get no answer.
//   * Answers: A/AAAA behind CNAME chains of one or two hops for a third of the domains, HTTPS
//     (alpn, ipv4hint), MX, TXT, PTR, NS. Names are compressed as a server would compress them.
//   * EDNS in 40% of queries (from hosts that carry 40% of the traffic): 25% of those set DO, 30%
//     send a COOKIE, 10% an EDNS-client-subnet option; responses echo OPT with a server cookie
//     and the ECS scope.
//   * 2% of transactions use TCP; half of those first get a UDP response with TC=1. A TCP
//     transaction is 8 frames: SYN, SYN-ACK, ACK, length-prefixed query, response, FIN-ACK,
//     FIN-ACK, ACK, with consistent sequence and acknowledgement numbers. IPv4, UDP and TCP
//     checksums are correct.
// - flood: a random-subdomain ("water torture") attack over background traffic, for memory tests:
//   10,000,000 frames at 1,000,000 frames per second of packet time unless --packets and --rate
//   say otherwise, all UDP over IPv4 with EDNS, written as it is generated (memory stays flat, so
//   --out - can feed a pipe of any length). As in the bench profile, the first N frames are the
//   same for any --packets >= N.
//   * 90% of the frames belong to the flood: A (75%) or AAAA queries for a fresh label of 12-20
//     [a-z0-9] under victim-flood.co.uk (no flood name is ever asked twice), from --clients
//     (100,000 by default, at most 130,000) addresses drawn uniformly from 198.18.0.0/15. Half of
//     them (--nxdomain) get an NXDOMAIN response with the zone's SOA after 1-30 ms; the others
//     stay unanswered, as when a resolver gives up on an overloaded authoritative server. Since
//     responses count as frames, the default mix has about 6 million flood queries in 10 million
//     frames; --nxdomain 0 makes it 9 million.
//   * The other 10% are background transactions, all answered: 250 hosts in 203.0.113.0/24
//     (Zipf(0.6)) ask for the names of 50 registrable domains built like the bench profile's
//     (Zipf(1.0) over domains, Zipf(1.2) over their 1-19 host names, a few hundred names), A 60%,
//     AAAA 30%, HTTPS 10%; 2% get NXDOMAIN and 1% SERVFAIL, with the bench profile's latencies.
//   The server is 198.19.255.53. --ipv6, --vlan, --edns, --servfail, --tcp and --domains do not
//   apply to this profile and are refused.
//
// --mixed-case PCT (any profile, 0 by default) spells the qname of that share of the queries with
// random upper- and lower-case letters, as resolvers using DNS 0x20 do; the response echoes the
// query's spelling. The letters come from a random stream of their own, so the rest of the
// capture is the same as without the option.
//
// --truth FILE writes a JSON summary of what the file holds (only the frames actually written):
// frames by family/VLAN/transport, messages by transport and family, queries by qtype, responses
// by rcode, EDNS features, distinct clients/qnames/registrable domains and the top domains and
// qnames. Analytics tests compare dnsmon's output with it. Names are lowercase presentation form
// without the trailing dot; a client is the source address of a query (a host's IPv4 and IPv6
// addresses are two clients); "top" lists hold the 20 largest counts, ties in ascending order of
// the name or address text. Keys:
//   "distinct": {"clients": n, "qnames": n, "domains": n}, counted over queries; exact in every
//     profile ("distinct_qnames_exact": true): flood names are unique by construction, so the
//     flood profile counts them without keeping them.
//   "top_domains": [{"domain": d, "queries": n}, ...], "top_qnames": [{"qname": q, "queries": n},
//     ...]: counts of queries.
//   "top_clients": [["ADDRESS", queries], ...], ADDRESS as inet_ntop prints it.
//   "top_nxdomain", "top_servfail": [["qname", responses], ...]: the question names of the
//     responses with that rcode.
//   "window_totals": {"queries": n, "nxdomain_responses": n, "servfail_responses": n}: the whole
//     file.
//   "latency": {"count": n, "p50": s, "p90": s, "p99": s, "buckets": [[le, cumulative], ...,
//     ["+Inf", n]]}: for each query whose response is in the file, the response's timestamp minus
//     the query's, in seconds, from the timestamps as written. pXX is the nearest-rank quantile
//     (the smallest latency such that at least XX% of them are at or below it; null when there
//     are none); a latency equal to a bucket bound counts in that bucket. The bounds are
//     dnsmon's: 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5.
#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <queue>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <pcap/pcap.h>

namespace {

// Bump when the bench profile's output changes for the same options: tools/bench.sh regenerates
// its cached capture when this differs.
constexpr int kGeneratorVersion = 2;

enum class Profile : std::uint8_t { Simple, Bench, Flood };

struct Options {
  std::string out;  // "-" is standard output
  std::string cpp_out;
  std::string truth;
  Profile profile = Profile::Simple;
  std::optional<std::uint64_t> packets;  // simple: 2000, bench: 2,000,000, flood: 10,000,000
  std::uint64_t seed = 1;
  // Frames per second of packet time; simple: 1000, bench: 100,000, flood: 1,000,000.
  std::optional<double> rate;
  std::optional<double> ipv6_pct, vlan_pct, edns_pct, nxdomain_pct, servfail_pct, tcp_pct;
  double mixed_case_pct = 0;      // share of queries spelled in DNS 0x20 mixed case
  std::uint32_t clients = 5000;   // bench: client hosts (5,000); flood: addresses (100,000)
  std::uint32_t domains = 20000;  // bench: registrable domains
};

// Prints why, the synopsis and, for --help, what the options do; exits 2.
[[noreturn]] void usage(const char* why, bool details = false) {
  std::fprintf(
      stderr,
      "gen_pcap: %s\n"
      "usage: gen_pcap --out FILE|- [--profile simple|bench|flood] [--packets N] [--seed S]\n"
      "                [--rate PPS] [--ipv6 PCT] [--vlan PCT] [--edns PCT] [--nxdomain PCT]\n"
      "                [--servfail PCT] [--tcp PCT] [--mixed-case PCT] [--clients N]\n"
      "                [--domains N] [--truth FILE.json] [--cpp-out FILE.cpp] [--version]\n",
      why);
  if (!details) {
    std::exit(2);  // NOLINT(concurrency-mt-unsafe): single-threaded tool
  }
  std::fprintf(
      stderr,
      "  --out -           write the capture to standard output\n"
      "  --profile         simple: a dozen names, 2000 frames (the default);\n"
      "                    bench: the realistic benchmark mix, 2,000,000 frames;\n"
      "                    flood: random-subdomain flood under victim-flood.co.uk (90%% of the\n"
      "                    frames) over background traffic, 10,000,000 frames, streamed\n"
      "  --rate PPS        frames per second of packet time (1000, 100000, 1000000)\n"
      "  --nxdomain PCT    share of NXDOMAIN answers; flood: share of flood queries answered\n"
      "                    NXDOMAIN (50), the others unanswered\n"
      "  --mixed-case PCT  share of queries whose qname is spelled in random upper/lower case\n"
      "                    (DNS 0x20), echoed by the response (0)\n"
      "  --clients N       bench: client hosts (5000, at most 65000); flood: client addresses\n"
      "                    (100000, at most 130000)\n"
      "  --truth FILE      JSON summary of the capture (counts, top lists, latency quantiles)\n"
      "  --ipv6, --vlan, --edns, --servfail, --tcp and --domains do not apply to the flood\n"
      "  profile; --tcp needs the bench profile. Defaults are in parentheses; the top of\n"
      "  tools/gen_pcap.cpp describes each profile and every key of the --truth summary.\n");
  std::exit(2);  // NOLINT(concurrency-mt-unsafe): single-threaded tool
}

Options parse(int argc, char** argv) {
  Options o;
  std::optional<std::uint64_t> clients;
  bool domains_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage("missing value");
      }
      return argv[++i];
    };
    auto number = [&]() -> std::uint64_t {
      const std::string v = value();
      char* end = nullptr;
      const auto n = std::strtoull(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0') {
        usage("expected a number");
      }
      return n;
    };
    auto pct = [&]() -> double {
      const std::string v = value();
      char* end = nullptr;
      const double n = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(n >= 0 && n <= 100)) {
        usage("percentages go from 0 to 100");
      }
      return n;
    };
    if (a == "--out") {
      o.out = value();
    } else if (a == "--cpp-out") {
      o.cpp_out = value();
    } else if (a == "--truth") {
      o.truth = value();
    } else if (a == "--profile") {
      const std::string p = value();
      if (p == "simple") {
        o.profile = Profile::Simple;
      } else if (p == "bench") {
        o.profile = Profile::Bench;
      } else if (p == "flood") {
        o.profile = Profile::Flood;
      } else {
        usage("--profile is simple, bench or flood");
      }
    } else if (a == "--packets") {
      o.packets = number();
    } else if (a == "--seed") {
      o.seed = number();
    } else if (a == "--rate") {
      o.rate = static_cast<double>(number());
      if (*o.rate <= 0) {
        usage("--rate must be positive");
      }
    } else if (a == "--ipv6") {
      o.ipv6_pct = pct();
    } else if (a == "--vlan") {
      o.vlan_pct = pct();
    } else if (a == "--edns") {
      o.edns_pct = pct();
    } else if (a == "--nxdomain") {
      o.nxdomain_pct = pct();
    } else if (a == "--servfail") {
      o.servfail_pct = pct();
    } else if (a == "--tcp") {
      o.tcp_pct = pct();
    } else if (a == "--mixed-case") {
      o.mixed_case_pct = pct();
    } else if (a == "--clients") {
      clients = number();
    } else if (a == "--domains") {
      const auto n = number();
      if (n == 0 || n > 1'000'000) {
        usage("--domains goes from 1 to 1000000");
      }
      o.domains = static_cast<std::uint32_t>(n);
      domains_given = true;
    } else if (a == "--version") {
      std::printf("gen_pcap %d\n", kGeneratorVersion);
      std::exit(0);  // NOLINT(concurrency-mt-unsafe): single-threaded tool
    } else if (a == "--help" || a == "-h") {
      usage("help", true);
    } else {
      usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (o.out.empty()) {
    usage("--out is required");
  }
  if (o.profile == Profile::Simple && o.tcp_pct.value_or(0) != 0) {
    usage("--tcp needs --profile bench");
  }
  if (!o.cpp_out.empty() && o.out == "-") {
    usage("--cpp-out reads the capture back: it needs --out FILE");
  }
  if (o.profile == Profile::Flood) {
    if (o.ipv6_pct || o.vlan_pct || o.edns_pct || o.servfail_pct || o.tcp_pct || domains_given) {
      usage(
          "--ipv6, --vlan, --edns, --servfail, --tcp and --domains do not apply to --profile "
          "flood");
    }
    // 130,000 addresses from 198.18.0.0 stay clear of the server, 198.19.255.53.
    if (clients && (*clients == 0 || *clients > 130'000)) {
      usage("--clients goes from 1 to 130000 in the flood profile");
    }
    o.clients = static_cast<std::uint32_t>(clients.value_or(100'000));
  } else if (clients) {
    if (*clients == 0 || *clients > 65000) {
      usage("--clients goes from 1 to 65000");
    }
    o.clients = static_cast<std::uint32_t>(*clients);
  }
  return o;
}

std::string_view qtype_name(std::uint16_t t) {
  switch (t) {
    case 1:
      return "A";
    case 2:
      return "NS";
    case 5:
      return "CNAME";
    case 6:
      return "SOA";
    case 12:
      return "PTR";
    case 15:
      return "MX";
    case 16:
      return "TXT";
    case 28:
      return "AAAA";
    case 33:
      return "SRV";
    case 43:
      return "DS";
    case 48:
      return "DNSKEY";
    case 64:
      return "SVCB";
    case 65:
      return "HTTPS";
    case 255:
      return "ANY";
    default:
      return {};
  }
}

std::string_view rcode_name(unsigned r) {
  static constexpr std::array<std::string_view, 6> kNames{"NOERROR",  "FORMERR", "SERVFAIL",
                                                          "NXDOMAIN", "NOTIMP",  "REFUSED"};
  return r < kNames.size() ? kNames[r] : std::string_view{};
}

// A client's address: the first 4 bytes for IPv4, all 16 for IPv6.
struct Address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  bool operator==(const Address&) const = default;

  [[nodiscard]] std::string text() const {
    std::array<char, INET6_ADDRSTRLEN> buf{};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf.data(), buf.size());
    return buf.data();
  }
};

struct AddressHash {
  std::size_t operator()(const Address& a) const {
    std::uint64_t hi = 0, lo = 0;
    std::memcpy(&hi, a.bytes.data(), sizeof hi);
    std::memcpy(&lo, a.bytes.data() + sizeof hi, sizeof lo);
    std::uint64_t z = (hi ^ (a.v6 ? 0x9E3779B97F4A7C15ULL : 0)) * 0xBF58476D1CE4E5B9ULL + lo;
    z = (z ^ (z >> 31U)) * 0x94D049BB133111EBULL;
    return static_cast<std::size_t>(z ^ (z >> 29U));
  }
};

// What one written frame carries, for the --truth summary.
struct FrameFacts {
  enum class Kind : std::uint8_t { NoDns, Query, Response };
  Kind kind = Kind::NoDns;
  bool tcp = false, v6 = false, vlan = false;
  bool tc = false;  // response with TC=1
  bool edns = false, edns_do = false, cookie = false, ecs = false;
  bool answered = false;    // queries: the exchange's response follows (if the file goes on)
  bool fresh_name = false;  // no other exchange asks for this qname (the flood's labels)
  std::uint16_t qtype = 0;
  std::uint8_t rcode = 0;
  Address client;         // the client's address, whichever way the frame goes
  std::uint32_t txn = 0;  // exchange (query and its response) key
  std::uint32_t wire_len = 0;
  std::string qname;        // lowercase, without the trailing dot
  std::string_view domain;  // queries only: registrable domain of qname (static storage)
};

// Accumulates FrameFacts and writes the JSON summary. Its memory is bounded by the distinct
// clients, names and latencies it has seen and the exchanges still waiting for their response,
// not by the number of frames: flood names, unique by construction, are counted without being
// kept.
class Truth {
 public:
  void add(const FrameFacts& f, std::int64_t ts_us) {
    ++frames_;
    bytes_ += f.wire_len;
    (f.v6 ? frames_v6_ : frames_v4_) += 1;
    frames_vlan_ += f.vlan ? 1 : 0;
    (f.tcp ? frames_tcp_ : frames_udp_) += 1;
    if (f.kind == FrameFacts::Kind::NoDns) {
      return;
    }
    // The file holds microseconds; latencies are kept in nanoseconds, exact either way.
    const std::int64_t ts_ns = ts_us * 1000;
    const bool query = f.kind == FrameFacts::Kind::Query;
    ++by_path_[(f.tcp ? 4U : 0U) + (f.v6 ? 2U : 0U) + (query ? 0U : 1U)];
    if (query) {
      ++queries_by_qtype_[f.qtype];
      edns_ += f.edns ? 1 : 0;
      edns_do_ += f.edns_do ? 1 : 0;
      cookie_ += f.cookie ? 1 : 0;
      ecs_ += f.ecs ? 1 : 0;
      ++clients_[f.client];
      if (f.answered) {
        open_.emplace(f.txn, ts_ns);
      }
      if (f.fresh_name) {
        ++fresh_qnames_;
        keep_smallest(fresh_queried_, f.qname);
      } else if (auto it = qnames_.find(f.qname); it != qnames_.end()) {
        ++it->second;
      } else {
        qnames_.emplace(f.qname, 1);
      }
      ++domains_[f.domain];
    } else {
      ++responses_by_rcode_[f.rcode];
      tc_ += f.tc ? 1 : 0;
      const auto it = open_.find(f.txn);
      if (it == open_.end()) {  // the generators write every query before its response
        std::fprintf(stderr, "gen_pcap: internal error: a response without its query\n");
        std::abort();
      }
      const std::int64_t latency_ns = ts_ns - it->second;
      if (latency_ns % 1000 == 0 && latency_ns / 1000 < static_cast<std::int64_t>(kDenseUs)) {
        ++latency_by_us_[static_cast<std::size_t>(latency_ns / 1000)];
      } else {
        ++latency_ns_[latency_ns];
      }
      ++answered_;
      open_.erase(it);
      if (f.rcode == 3 || f.rcode == 2) {
        if (f.fresh_name) {
          keep_smallest(f.rcode == 3 ? fresh_nxdomain_ : fresh_servfail_, f.qname);
        } else {
          ++(f.rcode == 3 ? nxdomain_ : servfail_)[f.qname];
        }
      }
    }
  }

  bool write(const std::string& path, const Options& o, std::string_view profile) const {
    std::FILE* out = std::fopen(path.c_str(), "w");
    if (out == nullptr) {
      return false;
    }
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::uint64_t queries = 0, responses = 0;
    for (std::size_t i = 0; i < by_path_.size(); ++i) {
      ((i & 1U) != 0 ? responses : queries) += by_path_[i];
    }
    // Every exchange has one query and at most one response, written after it.
    const std::uint64_t unanswered = queries - answered_;
    std::fprintf(out, "{\n  \"generator_version\": %d,\n  \"profile\": \"%.*s\",\n",
                 kGeneratorVersion, static_cast<int>(profile.size()), profile.data());
    std::fprintf(out, "  \"seed\": %llu,\n", u(o.seed));
    std::fprintf(out,
                 "  \"frames\": {\"total\": %llu, \"bytes\": %llu, \"ipv4\": %llu, \"ipv6\": %llu,"
                 " \"vlan\": %llu, \"udp\": %llu, \"tcp\": %llu},\n",
                 u(frames_), u(bytes_), u(frames_v4_), u(frames_v6_), u(frames_vlan_),
                 u(frames_udp_), u(frames_tcp_));
    std::fprintf(out,
                 "  \"messages\": {\"total\": %llu, \"queries\": %llu, \"responses\": %llu,"
                 " \"truncated_responses\": %llu, \"unanswered_queries\": %llu},\n",
                 u(queries + responses), u(queries), u(responses), u(tc_), u(unanswered));
    std::fprintf(out, "  \"by_transport_family\": {");
    static constexpr std::array<const char*, 4> kPaths{"udp_ipv4", "udp_ipv6", "tcp_ipv4",
                                                       "tcp_ipv6"};
    for (std::size_t p = 0; p < kPaths.size(); ++p) {
      std::fprintf(out, R"(%s"%s": {"queries": %llu, "responses": %llu})", p == 0 ? "" : ", ",
                   kPaths[p], u(by_path_[2 * p]), u(by_path_[2 * p + 1]));
    }
    std::fprintf(out, "},\n  \"queries_by_qtype\": {");
    write_counts(out, queries_by_qtype_, [](std::uint16_t t) {
      const auto n = qtype_name(t);
      return n.empty() ? "TYPE" + std::to_string(t) : std::string(n);
    });
    std::fprintf(out, "},\n  \"responses_by_rcode\": {");
    write_counts(out, responses_by_rcode_, [](std::uint16_t r) {
      const auto n = rcode_name(r);
      return n.empty() ? "RCODE" + std::to_string(r) : std::string(n);
    });
    std::fprintf(out,
                 "},\n  \"edns_queries\": {\"opt\": %llu, \"do\": %llu, \"cookie\": %llu,"
                 " \"client_subnet\": %llu},\n",
                 u(edns_), u(edns_do_), u(cookie_), u(ecs_));
    std::fprintf(out, "  \"distinct\": {\"clients\": %llu, \"qnames\": %llu, \"domains\": %llu},\n",
                 u(clients_.size()), u(qnames_.size() + fresh_qnames_), u(domains_.size()));
    std::fprintf(out, "  \"top_domains\": [");
    write_top_objects(out, top(domains_, {}), "domain");
    std::fprintf(out, "],\n  \"top_qnames\": [");
    write_top_objects(out, top(qnames_, fresh_queried_), "qname");
    std::fprintf(out, "],\n  \"top_clients\": [");
    std::unordered_map<std::string, std::uint64_t> clients;
    clients.reserve(clients_.size());
    for (const auto& [address, n] : clients_) {
      clients.emplace(address.text(), n);
    }
    write_top_pairs(out, top(clients, {}));
    std::fprintf(out, "],\n  \"top_nxdomain\": [");
    write_top_pairs(out, top(nxdomain_, fresh_nxdomain_));
    std::fprintf(out, "],\n  \"top_servfail\": [");
    write_top_pairs(out, top(servfail_, fresh_servfail_));
    auto rcode_count = [&](std::uint16_t r) {
      const auto it = responses_by_rcode_.find(r);
      return it == responses_by_rcode_.end() ? 0 : it->second;
    };
    std::fprintf(out,
                 "],\n  \"window_totals\": {\"queries\": %llu, \"nxdomain_responses\": %llu,"
                 " \"servfail_responses\": %llu},\n",
                 u(queries), u(rcode_count(3)), u(rcode_count(2)));
    write_latency(out);
    std::fprintf(out, ",\n  \"distinct_qnames_exact\": true\n}\n");
    return std::fclose(out) == 0;
  }

 private:
  static constexpr std::size_t kTop = 20;

  using Ranked = std::vector<std::pair<std::uint64_t, std::string>>;

  template <typename Name>
  static void write_counts(std::FILE* out,
                           const std::unordered_map<std::uint16_t, std::uint64_t>& counts,
                           Name name) {
    std::vector<std::pair<std::uint16_t, std::uint64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      std::fprintf(out, "%s\"%s\": %llu", i == 0 ? "" : ", ", name(sorted[i].first).c_str(),
                   static_cast<unsigned long long>(sorted[i].second));
    }
  }

  // Keeps the kTop smallest names of a set seen once each (a max-heap): with every count equal
  // to one, only they can reach a top list, where ties go in ascending name order.
  static void keep_smallest(std::vector<std::string>& heap, const std::string& name) {
    if (heap.size() < kTop) {
      heap.push_back(name);
      std::push_heap(heap.begin(), heap.end());
    } else if (name < heap.front()) {
      std::pop_heap(heap.begin(), heap.end());
      heap.back() = name;
      std::push_heap(heap.begin(), heap.end());
    }
  }

  // The kTop largest counts of m and of the names seen once each, ties by name.
  template <typename Map>
  static Ranked top(const Map& m, const std::vector<std::string>& once) {
    std::vector<std::pair<std::uint64_t, std::string_view>> v;
    v.reserve(m.size() + once.size());
    for (const auto& [name, n] : m) {
      v.emplace_back(n, name);
    }
    for (const auto& name : once) {
      v.emplace_back(1, name);
    }
    const std::size_t k = std::min(kTop, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end(),
                      [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    Ranked r;
    for (std::size_t i = 0; i < k; ++i) {
      r.emplace_back(v[i].first, v[i].second);
    }
    return r;
  }

  // Names and address texts are generated ASCII: no JSON escaping needed.
  static void write_top_objects(std::FILE* out, const Ranked& r, const char* key) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::fprintf(out, "%s\n    {\"%s\": \"%s\", \"queries\": %llu}", i == 0 ? "" : ",", key,
                   r[i].second.c_str(), static_cast<unsigned long long>(r[i].first));
    }
    if (!r.empty()) {
      std::fprintf(out, "\n  ");
    }
  }

  static void write_top_pairs(std::FILE* out, const Ranked& r) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      std::fprintf(out, "%s\n    [\"%s\", %llu]", i == 0 ? "" : ",", r[i].second.c_str(),
                   static_cast<unsigned long long>(r[i].first));
    }
    if (!r.empty()) {
      std::fprintf(out, "\n  ");
    }
  }

  void write_latency(std::FILE* out) const {
    // dnsmon's histogram bounds, as nanoseconds and as written.
    struct Bound {
      std::int64_t ns;
      const char* text;
    };

    static constexpr std::array<Bound, 15> kBounds{{{100'000, "0.0001"},
                                                    {250'000, "0.00025"},
                                                    {500'000, "0.0005"},
                                                    {1'000'000, "0.001"},
                                                    {2'500'000, "0.0025"},
                                                    {5'000'000, "0.005"},
                                                    {10'000'000, "0.01"},
                                                    {25'000'000, "0.025"},
                                                    {50'000'000, "0.05"},
                                                    {100'000'000, "0.1"},
                                                    {250'000'000, "0.25"},
                                                    {500'000'000, "0.5"},
                                                    {1'000'000'000, "1"},
                                                    {2'500'000'000, "2.5"},
                                                    {5'000'000'000, "5"}}};
    std::vector<std::pair<std::int64_t, std::uint64_t>> sorted(latency_ns_.begin(),
                                                               latency_ns_.end());
    for (std::size_t us = 0; us < kDenseUs; ++us) {
      if (latency_by_us_[us] != 0) {
        sorted.emplace_back(static_cast<std::int64_t>(us) * 1000, latency_by_us_[us]);
      }
    }
    std::sort(sorted.begin(), sorted.end());
    const std::uint64_t n = answered_;
    // Nearest rank: the smallest latency with at least pct% of the latencies at or below it.
    auto quantile = [&](std::uint64_t pct) -> std::string {
      if (n == 0) {
        return "null";
      }
      const std::uint64_t rank = std::max<std::uint64_t>(1, (n * pct + 99) / 100);
      std::uint64_t seen = 0;
      for (const auto& [ns, count] : sorted) {
        seen += count;
        if (seen >= rank) {
          std::array<char, 32> buf{};
          std::snprintf(buf.data(), buf.size(), "%lld.%09lld",
                        static_cast<long long>(ns / 1'000'000'000),
                        static_cast<long long>(ns % 1'000'000'000));
          return buf.data();
        }
      }
      return "null";  // not reached: the counts add up to n
    };
    std::fprintf(out, "  \"latency\": {\"count\": %llu, \"p50\": %s, \"p90\": %s, \"p99\": %s,\n",
                 static_cast<unsigned long long>(n), quantile(50).c_str(), quantile(90).c_str(),
                 quantile(99).c_str());
    std::fprintf(out, "    \"buckets\": [");
    std::size_t next = 0;
    std::uint64_t cumulative = 0;
    for (const auto& bound : kBounds) {
      while (next < sorted.size() && sorted[next].first <= bound.ns) {
        cumulative += sorted[next++].second;
      }
      std::fprintf(out, "[%s, %llu], ", bound.text, static_cast<unsigned long long>(cumulative));
    }
    std::fprintf(out, "[\"+Inf\", %llu]]}", static_cast<unsigned long long>(n));
  }

  std::uint64_t frames_ = 0, bytes_ = 0, frames_v4_ = 0, frames_v6_ = 0, frames_vlan_ = 0;
  std::uint64_t frames_udp_ = 0, frames_tcp_ = 0;
  std::array<std::uint64_t, 8> by_path_{};  // [tcp][v6][response]
  std::unordered_map<std::uint16_t, std::uint64_t> queries_by_qtype_, responses_by_rcode_;
  std::uint64_t edns_ = 0, edns_do_ = 0, cookie_ = 0, ecs_ = 0, tc_ = 0;
  std::unordered_map<Address, std::uint64_t, AddressHash> clients_;
  std::unordered_map<std::string, std::uint64_t> qnames_, nxdomain_, servfail_;
  std::unordered_map<std::string_view, std::uint64_t> domains_;  // views of static names
  // Names no other exchange uses: counted, and only the smallest kept for the top lists.
  std::uint64_t fresh_qnames_ = 0;
  std::vector<std::string> fresh_queried_, fresh_nxdomain_, fresh_servfail_;
  // Query timestamps of the exchanges whose response is still to come, and the latencies seen.
  std::unordered_map<std::uint32_t, std::int64_t> open_;
  // Latencies by whole microseconds below 65.536 ms (most of them: counted without a hash
  // lookup), the others by nanoseconds.
  static constexpr std::size_t kDenseUs = 65536;
  std::vector<std::uint64_t> latency_by_us_ = std::vector<std::uint64_t>(kDenseUs);
  std::unordered_map<std::int64_t, std::uint64_t> latency_ns_;
  std::uint64_t answered_ = 0;
};

void write_frame(pcap_dumper_t* dump, std::int64_t ts_us, const std::uint8_t* bytes,
                 std::size_t len) {
  pcap_pkthdr h{};
  h.ts.tv_sec = ts_us / 1'000'000;
  h.ts.tv_usec = ts_us % 1'000'000;
  h.caplen = h.len = static_cast<bpf_u_int32>(len);
  pcap_dump(reinterpret_cast<u_char*>(dump), &h, bytes);  // NOLINT: libpcap API
}

// Seeds the random stream that spells names in mixed case. It is separate from each profile's
// main stream, so --mixed-case changes the letters' case and nothing else.
constexpr std::uint64_t kCaseSalt = 0xCA5E0CA5EULL;

// DNS 0x20 (draft-vixie-dnsext-dns0x20): each ASCII letter of the name becomes upper case with
// probability one half. next() gives 64 random bits at a time.
template <typename Next>
void scramble_case(std::span<char> name, Next next) {
  std::uint64_t bits = 0;
  unsigned left = 0;
  for (auto& ch : name) {
    if (ch < 'a' || ch > 'z') {
      continue;
    }
    if (left == 0) {
      bits = next();
      left = 64;
    }
    if ((bits & 1U) != 0) {
      ch = static_cast<char>(ch - 'a' + 'A');
    }
    bits >>= 1U;
    --left;
  }
}

// ------------------------------------------------------------------------------------------------
// The simple profile. Its output for a given seed is part of the contract (the embedded demo and
// tests depend on it): do not change what it writes.

class Bytes {
 public:
  void u8(unsigned v) { b_.push_back(static_cast<std::uint8_t>(v)); }

  void u16(unsigned v) {
    u8(v >> 8U);
    u8(v & 0xFFU);
  }

  void u32(std::uint32_t v) {
    u16(v >> 16U);
    u16(v & 0xFFFFU);
  }

  void raw(const std::uint8_t* p, std::size_t n) { b_.insert(b_.end(), p, p + n); }

  void name(std::string_view dotted) {
    std::size_t start = 0;
    while (start < dotted.size()) {
      auto dot = dotted.find('.', start);
      if (dot == std::string_view::npos) {
        dot = dotted.size();
      }
      u8(static_cast<unsigned>(dot - start));
      for (std::size_t i = start; i < dot; ++i) {
        u8(static_cast<unsigned char>(dotted[i]));
      }
      start = dot + 1;
    }
    u8(0);
  }

  std::vector<std::uint8_t>& data() { return b_; }

  [[nodiscard]] std::size_t size() const { return b_.size(); }

  void put16(std::size_t at, unsigned v) {
    b_[at] = static_cast<std::uint8_t>(v >> 8U);
    b_[at + 1] = static_cast<std::uint8_t>(v & 0xFFU);
  }

 private:
  std::vector<std::uint8_t> b_;
};

std::uint16_t ip_checksum(const std::uint8_t* p, std::size_t n) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    sum += static_cast<std::uint32_t>((p[i] << 8U) | p[i + 1]);
  }
  while ((sum >> 16U) != 0) {
    sum = (sum & 0xFFFFU) + (sum >> 16U);
  }
  return static_cast<std::uint16_t>(~sum & 0xFFFFU);
}

struct Endpoint {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};
};

// Frames one UDP datagram in Ethernet (optionally 802.1Q-tagged) and IPv4 or IPv6.
std::vector<std::uint8_t> frame(const Endpoint& src, const Endpoint& dst, std::uint16_t sport,
                                std::uint16_t dport, const std::vector<std::uint8_t>& dns,
                                int vlan) {
  Bytes f;
  const std::array<std::uint8_t, 12> macs{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  f.raw(macs.data(), macs.size());
  if (vlan >= 0) {
    f.u16(0x8100);
    f.u16(static_cast<unsigned>(vlan));
  }
  const std::size_t udp_len = 8 + dns.size();
  if (!src.v6) {
    f.u16(0x0800);
    const std::size_t ip_at = f.size();
    f.u8(0x45);
    f.u8(0);
    f.u16(static_cast<unsigned>(20 + udp_len));
    f.u16(0);
    f.u16(0x4000);  // DF
    f.u8(64);
    f.u8(17);
    f.u16(0);
    f.raw(src.addr.data(), 4);
    f.raw(dst.addr.data(), 4);
    f.put16(ip_at + 10, ip_checksum(f.data().data() + ip_at, 20));
  } else {
    f.u16(0x86DD);
    f.u32(0x60000000U);
    f.u16(static_cast<unsigned>(udp_len));
    f.u8(17);
    f.u8(64);
    f.raw(src.addr.data(), 16);
    f.raw(dst.addr.data(), 16);
  }
  f.u16(sport);
  f.u16(dport);
  f.u16(static_cast<unsigned>(udp_len));
  f.u16(0);  // checksum optional for IPv4 UDP; receivers of replays do not check it
  f.raw(dns.data(), dns.size());
  return f.data();
}

constexpr std::array<std::string_view, 12> kDomains{
    "example.com",     "example.net",      "example.org",        "mail.example.com",
    "www.example.com", "cdn.example.net",  "api.example.org",    "example.test",
    "ns1.example.net", "shop.example.com", "static.example.org", "login.example.com"};

struct QType {
  std::uint16_t code;
  unsigned weight;
};

constexpr std::array<QType, 8> kQTypes{
    {{1, 55}, {28, 25}, {65, 6}, {15, 4}, {16, 3}, {12, 4}, {33, 2}, {6, 1}}};

// The last two labels: every name in kDomains sits under a one-label suffix.
std::string_view simple_domain(std::string_view name) {
  const auto last = name.rfind('.');
  const auto prev = last == std::string_view::npos ? last : name.rfind('.', last - 1);
  return prev == std::string_view::npos ? name : name.substr(prev + 1);
}

std::uint64_t run_simple(const Options& o, pcap_dumper_t* dump, Truth* truth) {
  const std::uint64_t packets = o.packets.value_or(2000);
  const double ipv6_pct = o.ipv6_pct.value_or(10);
  const double vlan_pct = o.vlan_pct.value_or(7);
  const double edns_pct = o.edns_pct.value_or(40);
  const double nxdomain_pct = o.nxdomain_pct.value_or(8);
  const double servfail_pct = o.servfail_pct.value_or(2);
  std::mt19937_64 rng(o.seed);
  auto roll = [&](double pct) { return static_cast<double>(rng() % 100) < pct; };
  std::mt19937_64 case_rng(o.seed ^ kCaseSalt);

  unsigned weight_total = 0;
  for (const auto& q : kQTypes) {
    weight_total += q.weight;
  }
  const std::int64_t start_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
  const double gap_us = 1e6 / o.rate.value_or(1000);
  std::uint64_t written = 0;
  std::uint16_t next_id = 1;
  std::uint32_t txn = 0;
  while (written < packets) {
    Endpoint client;
    Endpoint server;
    const bool v6 = roll(ipv6_pct);
    client.v6 = server.v6 = v6;
    const auto host = static_cast<std::uint16_t>(rng() % 4000 + 1);
    if (!v6) {
      client.addr = {198, 18, static_cast<std::uint8_t>(host >> 8U),
                     static_cast<std::uint8_t>(host & 0xFFU)};
      server.addr = {198, 19, 0, 53};
    } else {
      client.addr = {0x20, 0x01, 0x0d, 0xb8, 0, 1};
      client.addr[14] = static_cast<std::uint8_t>(host >> 8U);
      client.addr[15] = static_cast<std::uint8_t>(host & 0xFFU);
      server.addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0x53};
      server.addr[15] = 0x53;
    }
    const int vlan = roll(vlan_pct) ? 100 : -1;
    const auto sport = static_cast<std::uint16_t>(1024 + rng() % 64000);
    // Zipf-like choice of the name: low indices far more often.
    const std::size_t di = std::min<std::size_t>(
        kDomains.size() - 1,
        static_cast<std::size_t>(std::pow(static_cast<double>(rng() % 10000) / 10000.0, 2.5) *
                                 kDomains.size()));
    auto pick = static_cast<unsigned>(rng() % weight_total);
    std::uint16_t qtype = 1;
    for (const auto& q : kQTypes) {
      if (pick < q.weight) {
        qtype = q.code;
        break;
      }
      pick -= q.weight;
    }
    const std::uint16_t id = next_id++;
    const bool edns = roll(edns_pct);
    const auto fate = static_cast<double>(rng() % 100);
    const unsigned rcode = fate < nxdomain_pct ? 3 : fate < nxdomain_pct + servfail_pct ? 2 : 0;
    std::string spelling(kDomains[di]);
    if (o.mixed_case_pct > 0 &&
        static_cast<double>(case_rng() >> 11U) * 0x1.0p-53 * 100 < o.mixed_case_pct) {
      scramble_case(spelling, [&] { return case_rng(); });
    }

    auto message = [&](bool response) {
      Bytes d;
      d.u16(id);
      d.u16(response ? (0x8180U | rcode) : 0x0100U);
      const bool answer = response && rcode == 0 && (qtype == 1 || qtype == 28);
      d.u16(1);
      d.u16(answer ? 1 : 0);
      d.u16(0);
      d.u16(edns ? 1 : 0);
      d.name(spelling);
      d.u16(qtype);
      d.u16(1);
      if (answer) {
        d.u16(0xC00C);  // pointer to the question name
        d.u16(qtype);
        d.u16(1);
        d.u32(300);
        if (qtype == 1) {
          d.u16(4);
          d.u32(0xC6120000U + static_cast<std::uint32_t>(di));  // 198.18.0.x
        } else {
          d.u16(16);
          const std::array<std::uint8_t, 16> a{
              0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
              0,    0,    0,    0,    0, 0, 0, static_cast<std::uint8_t>(di)};
          d.raw(a.data(), a.size());
        }
      }
      if (edns) {
        d.u8(0);    // root
        d.u16(41);  // OPT
        d.u16(response ? 1232 : 4096);
        d.u32(0x00008000U);  // DO
        d.u16(0);
      }
      return d.data();
    };

    for (int leg = 0; leg < 2 && written < packets; ++leg) {
      const bool response = leg == 1;
      const auto dns = message(response);
      const auto bytes = response ? frame(server, client, 53, sport, dns, vlan)
                                  : frame(client, server, sport, 53, dns, vlan);
      const auto ts_us =
          start_us + static_cast<std::int64_t>(static_cast<double>(written) * gap_us);
      write_frame(dump, ts_us, bytes.data(), bytes.size());
      ++written;
      if (truth != nullptr) {
        FrameFacts f;
        f.kind = response ? FrameFacts::Kind::Response : FrameFacts::Kind::Query;
        f.v6 = v6;
        f.vlan = vlan >= 0;
        f.edns = f.edns_do = edns;
        f.answered = true;
        f.qtype = qtype;
        f.rcode = static_cast<std::uint8_t>(rcode);
        f.client = {v6, client.addr};
        f.txn = txn;
        f.wire_len = static_cast<std::uint32_t>(bytes.size());
        f.qname = std::string(kDomains[di]);
        if (!response) {
          f.domain = simple_domain(kDomains[di]);
        }
        truth->add(f, ts_us);
      }
    }
    ++txn;
  }
  return written;
}

// ------------------------------------------------------------------------------------------------
// The bench profile.

// xoshiro256**: fast, and the same sequence on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ULL;  // splitmix64 expands the seed
      std::uint64_t z = seed;
      z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
      s = z ^ (z >> 31U);
    }
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17U;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32).
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>(((next() >> 32U) * n) >> 32U);
  }

  std::uint32_t range(std::uint32_t lo, std::uint32_t hi) { return lo + below(hi - lo + 1); }

  double unit() { return static_cast<double>(next() >> 11U) * 0x1.0p-53; }  // [0, 1)

  bool chance(double pct) { return unit() * 100.0 < pct; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) {
    return (x << static_cast<unsigned>(k)) | (x >> static_cast<unsigned>(64 - k));
  }

  std::array<std::uint64_t, 4> s_{};
};

// A stable per-entity hash, so that properties of a host or domain do not depend on draw order.
std::uint64_t mix(std::uint64_t a, std::uint64_t b = 0) {
  std::uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31U);
}

// Samples an index with probability proportional to its weight.
class Cdf {
 public:
  Cdf() = default;

  explicit Cdf(const std::vector<double>& weights) {
    cum_.reserve(weights.size());
    double total = 0;
    for (const double w : weights) {
      total += w;
      cum_.push_back(total);
    }
  }

  static Cdf zipf(std::size_t n, double s) {
    std::vector<double> w(n);
    for (std::size_t i = 0; i < n; ++i) {
      w[i] = 1.0 / std::pow(static_cast<double>(i + 1), s);
    }
    return Cdf(w);
  }

  std::uint32_t sample(Rng& rng) const {
    const double u = rng.unit() * cum_.back();
    const auto it = std::upper_bound(cum_.begin(), cum_.end(), u);
    const auto i = static_cast<std::size_t>(it - cum_.begin());
    return static_cast<std::uint32_t>(std::min(i, cum_.size() - 1));
  }

 private:
  std::vector<double> cum_;
};

struct Suffix {
  std::string_view name;
  double weight;
};

// Public suffixes, multi-label ones included, so registrable-domain logic gets exercised.
constexpr std::array<Suffix, 16> kSuffixes{{{"com", 46},
                                            {"net", 8},
                                            {"org", 7},
                                            {"de", 6},
                                            {"co.uk", 5},
                                            {"io", 4},
                                            {"fr", 3},
                                            {"com.br", 3},
                                            {"nl", 3},
                                            {"ru", 3},
                                            {"com.au", 2},
                                            {"co.jp", 2},
                                            {"info", 2},
                                            {"org.uk", 1},
                                            {"se", 1},
                                            {"dev", 1}}};

// Host labels under a registrable domain, in order of popularity ("" is the apex).
constexpr std::array<std::string_view, 19> kSubLabels{
    "www",    "",       "api",  "cdn",  "static", "mail", "m",      "img",  "login", "app",
    "eu.api", "assets", "news", "auth", "media",  "shop", "s1.img", "push", "status"};

// Registrars' name servers and CDNs the answers point at (synthetic names).
constexpr std::array<std::string_view, 4> kCdns{"edgecache.net", "fastpath-cdn.net",
                                                "cloudfront-sim.com", "akam-sim.net"};
constexpr std::array<std::string_view, 4> kDnsHosts{"dns-host.net", "nsone-sim.net",
                                                    "ultradns-sim.org", "domaincontrol-sim.com"};

// The name population: registrable domains, their host names and the reverse names.
class Population {
 public:
  Population(std::uint32_t domains, std::uint64_t seed) {
    std::vector<double> suffix_w;
    suffix_w.reserve(kSuffixes.size());
    for (const auto& s : kSuffixes) {
      suffix_w.push_back(s.weight);
    }
    const Cdf suffix_cdf(suffix_w);
    Rng rng(mix(seed, 0xD0));
    domains_.reserve(domains + 2);
    subs_.reserve(domains);
    for (std::uint32_t d = 0; d < domains; ++d) {
      domains_.push_back(make_label(d) + "." + std::string(kSuffixes[suffix_cdf.sample(rng)].name));
      subs_.push_back(static_cast<std::uint8_t>(1 + mix(seed, d) % kSubLabels.size()));
    }
    // PTR names live under two registrable domains (the label just below in-addr/ip6.arpa).
    domains_.emplace_back("198.in-addr.arpa");
    domains_.emplace_back("2.ip6.arpa");
  }

  [[nodiscard]] std::uint32_t count() const {
    return static_cast<std::uint32_t>(domains_.size() - 2);
  }

  [[nodiscard]] const std::string& domain(std::uint32_t d) const { return domains_[d]; }

  [[nodiscard]] std::uint32_t subdomains(std::uint32_t d) const { return subs_[d]; }

  [[nodiscard]] std::uint32_t ptr_domain(bool v6) const { return count() + (v6 ? 1U : 0U); }

  // PTR names: 8,000 IPv4 addresses in 198.18.0.0/15 and 2,000 IPv6 in 2001:db8::/32.
  static constexpr std::uint32_t kPtrNames = 10000;
  static constexpr std::uint32_t kPtrV4 = 8000;

  static std::string ptr_name(std::uint32_t i) {
    char buf[128];
    if (i < kPtrV4) {
      const std::uint32_t a = 0xC6120000U + mix(i, 0x77) % 0x20000U;  // 198.18.0.0/15
      std::snprintf(buf, sizeof buf, "%u.%u.%u.198.in-addr.arpa", a & 0xFFU, (a >> 8U) & 0xFFU,
                    (a >> 16U) & 0xFFU);
      return buf;
    }
    // 2001:db8:xxxx::yyyy in nibble form, least significant nibble first.
    std::array<std::uint8_t, 16> addr{0x20, 0x01, 0x0d, 0xb8};
    const std::uint64_t h = mix(i, 0x66);
    for (std::size_t k = 4; k < 16; ++k) {
      addr[k] = static_cast<std::uint8_t>(k < 8 || k >= 14 ? (h >> (8 * (k % 8))) & 0xFFU : 0);
    }
    std::string out;
    static constexpr std::string_view kHex = "0123456789abcdef";
    for (std::size_t k = 16; k-- > 0;) {
      out += kHex[addr[k] & 0xFU];
      out += '.';
      out += kHex[addr[k] >> 4U];
      out += '.';
    }
    return out + "ip6.arpa";
  }

 private:
  // Three consonant-vowel syllables of an index permuted over 85^3: distinct domains get
  // distinct labels. Some get a fourth syllable, a number or a word, so lengths vary; a suffix
  // never makes two labels equal, since the first six letters already differ.
  static std::string make_label(std::uint32_t d) {
    static constexpr std::string_view kC = "bcdfghjklmnprstvz";
    static constexpr std::string_view kV = "aeiou";
    constexpr std::uint32_t kSyl = 17 * 5;
    constexpr std::uint32_t kSpace = kSyl * kSyl * kSyl;  // 5^3 * 17^3
    auto syllable = [&](std::string& s, std::uint32_t v) {
      s += kC[v % kSyl / 5];
      s += kV[v % kSyl % 5];
    };
    // 7919 is prime to 5 and 17, so this is a permutation of [0, kSpace) for d < kSpace.
    auto v = static_cast<std::uint32_t>((std::uint64_t{d} * 7919U + 4242U) % kSpace);
    std::string s;
    for (int i = 0; i < 3; ++i, v /= kSyl) {
      syllable(s, v);
    }
    const auto h = mix(d, 0x1AB);
    if (h % 5 == 0) {
      syllable(s, static_cast<std::uint32_t>(h >> 8U));
    } else if (h % 7 == 0) {
      s += std::to_string(h % 100);
    } else if (h % 11 == 0) {
      s += "-online";
    }
    if (d >= kSpace) {  // beyond 614,125 domains: the index keeps labels distinct
      s += "-" + std::to_string(d / kSpace);
    }
    return s;
  }

  std::vector<std::string> domains_;
  std::vector<std::uint8_t> subs_;
};

// Builds a DNS message with RFC 1035 name compression (every suffix written becomes a target).
class Message {
 public:
  void u8(unsigned v) { b_[n_++] = static_cast<std::uint8_t>(v); }

  void u16(unsigned v) {
    u8(v >> 8U);
    u8(v & 0xFFU);
  }

  void u32(std::uint32_t v) {
    u16(v >> 16U);
    u16(v & 0xFFFFU);
  }

  void raw(const std::uint8_t* p, std::size_t n) {
    std::memcpy(b_.data() + n_, p, n);
    n_ += n;
  }

  void put16(std::size_t at, unsigned v) {
    b_[at] = static_cast<std::uint8_t>(v >> 8U);
    b_[at + 1] = static_cast<std::uint8_t>(v & 0xFFU);
  }

  // A name in dotted form ("" or "." is the root), compressed against the names already written.
  void name(std::string_view dotted) {
    if (dotted == ".") {
      dotted = {};
    }
    std::size_t start = 0;
    while (start < dotted.size()) {
      const std::string_view suffix = dotted.substr(start);
      for (std::size_t e = 0; e < entries_; ++e) {
        if (table_[e].suffix == suffix) {
          u16(0xC000U | table_[e].offset);
          return;
        }
      }
      if (n_ < 0x3FFF && entries_ < table_.size() && pool_used_ + suffix.size() <= pool_.size()) {
        std::memcpy(pool_.data() + pool_used_, suffix.data(), suffix.size());
        table_[entries_++] = {std::string_view(pool_.data() + pool_used_, suffix.size()),
                              static_cast<std::uint16_t>(n_)};
        pool_used_ += suffix.size();
      }
      auto dot = dotted.find('.', start);
      if (dot == std::string_view::npos) {
        dot = dotted.size();
      }
      u8(static_cast<unsigned>(dot - start));
      raw(reinterpret_cast<const std::uint8_t*>(dotted.data() + start),  // NOLINT: bytes
          dot - start);
      start = dot + 1;
    }
    u8(0);
  }

  // Owner, type, class IN and TTL; returns where RDLENGTH goes, for end_rr().
  std::size_t begin_rr(std::string_view owner, unsigned type, std::uint32_t ttl,
                       unsigned rrclass = 1) {
    name(owner);
    u16(type);
    u16(rrclass);
    u32(ttl);
    const std::size_t at = n_;
    u16(0);
    return at;
  }

  void end_rr(std::size_t at) { put16(at, static_cast<unsigned>(n_ - at - 2)); }

  [[nodiscard]] std::size_t size() const { return n_; }

  [[nodiscard]] const std::uint8_t* data() const { return b_.data(); }

 private:
  struct Entry {
    std::string_view suffix;
    std::uint16_t offset = 0;
  };

  std::array<std::uint8_t, 4096> b_{};
  std::size_t n_ = 0;
  std::array<Entry, 96> table_{};
  std::size_t entries_ = 0;
  std::array<char, 8192> pool_{};
  std::size_t pool_used_ = 0;
};

struct Host {
  std::array<std::uint8_t, 4> v4{};
  std::array<std::uint8_t, 16> v6{};
  std::array<std::uint8_t, 6> mac{};
  int vlan = -1;
  bool edns = false, edns_do = false, cookie = false, ecs = false;
  std::uint16_t udp_size = 1232;
  std::array<std::uint8_t, 8> client_cookie{};
};

// Sum of 16-bit big-endian words (odd tail padded with zero), not yet folded.
std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  std::size_t i = 0;
  for (; i + 1 < n; i += 2) {
    acc += static_cast<std::uint32_t>((p[i] << 8U) | p[i + 1]);
  }
  if (i < n) {
    acc += static_cast<std::uint32_t>(p[i] << 8U);
  }
  return acc;
}

std::uint16_t fold(std::uint32_t sum) {
  while ((sum >> 16U) != 0) {
    sum = (sum & 0xFFFFU) + (sum >> 16U);
  }
  return static_cast<std::uint16_t>(~sum & 0xFFFFU);
}

struct TcpFields {
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  bool syn_options = false;
};

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10;

// One frame of a client-server conversation: Ethernet, optional 802.1Q tag, IPv4 or IPv6, UDP or
// TCP with correct checksums.
class FrameBuilder {
 public:
  FrameBuilder(const Host& host, bool v6, const std::array<std::uint8_t, 4>& server_v4,
               const std::array<std::uint8_t, 16>& server_v6)
      : host_(host), v6_(v6), server_v4_(server_v4), server_v6_(server_v6) {}

  std::vector<std::uint8_t> udp(bool from_client, std::uint16_t client_port,
                                const std::uint8_t* payload, std::size_t len) const {
    std::vector<std::uint8_t> f;
    f.reserve(64 + len);
    const std::size_t l4 = link_and_ip(f, from_client, 17, 8 + len);
    const auto sport = from_client ? client_port : std::uint16_t{53};
    const auto dport = from_client ? std::uint16_t{53} : client_port;
    put16(f, sport);
    put16(f, dport);
    put16(f, static_cast<unsigned>(8 + len));
    put16(f, 0);
    f.insert(f.end(), payload, payload + len);
    finish_l4(f, l4, 17, l4 + 6);
    return f;
  }

  std::vector<std::uint8_t> tcp(bool from_client, std::uint16_t client_port, const TcpFields& t,
                                const std::uint8_t* payload, std::size_t len) const {
    std::vector<std::uint8_t> f;
    f.reserve(80 + len);
    // SYNs carry MSS, SACK-permitted and window scale, as Linux sends them.
    static constexpr std::array<std::uint8_t, 12> kSynOptions{2, 4, 0x05, 0xB4, 1, 1,
                                                              4, 2, 1,    3,    3, 7};
    const std::size_t header = 20 + (t.syn_options ? kSynOptions.size() : 0);
    const std::size_t l4 = link_and_ip(f, from_client, 6, header + len);
    put16(f, from_client ? client_port : 53U);
    put16(f, from_client ? 53U : client_port);
    put32(f, t.seq);
    put32(f, (t.flags & kAck) != 0 ? t.ack : 0);
    f.push_back(static_cast<std::uint8_t>((header / 4) << 4U));
    f.push_back(t.flags);
    put16(f, from_client ? 64240U : 65160U);  // window
    put16(f, 0);                              // checksum, below
    put16(f, 0);                              // urgent pointer
    if (t.syn_options) {
      f.insert(f.end(), kSynOptions.begin(), kSynOptions.end());
    }
    if (len != 0) {
      f.insert(f.end(), payload, payload + len);
    }
    finish_l4(f, l4, 6, l4 + 16);
    return f;
  }

 private:
  static void put16(std::vector<std::uint8_t>& f, unsigned v) {
    f.push_back(static_cast<std::uint8_t>(v >> 8U));
    f.push_back(static_cast<std::uint8_t>(v & 0xFFU));
  }

  static void put32(std::vector<std::uint8_t>& f, std::uint32_t v) {
    put16(f, v >> 16U);
    put16(f, v & 0xFFFFU);
  }

  // Writes Ethernet and IP; returns the offset of the transport header.
  std::size_t link_and_ip(std::vector<std::uint8_t>& f, bool from_client, std::uint8_t proto,
                          std::size_t l4_len) const {
    static constexpr std::array<std::uint8_t, 6> kServerMac{0x02, 0x53, 0, 0, 0, 0x53};
    const auto& dst_mac = from_client ? kServerMac : host_.mac;
    const auto& src_mac = from_client ? host_.mac : kServerMac;
    f.insert(f.end(), dst_mac.begin(), dst_mac.end());
    f.insert(f.end(), src_mac.begin(), src_mac.end());
    if (host_.vlan >= 0) {
      put16(f, 0x8100);
      put16(f, static_cast<unsigned>(host_.vlan));
    }
    ip_at_ = f.size();
    if (!v6_) {
      put16(f, 0x0800);
      ip_at_ = f.size();
      f.push_back(0x45);
      f.push_back(0);
      put16(f, static_cast<unsigned>(20 + l4_len));
      put16(f, static_cast<unsigned>(mix(l4_len, f.size() + host_.mac[5]) & 0xFFFFU));  // id
      put16(f, 0x4000);                                                                 // DF
      f.push_back(from_client ? 64 : 63);
      f.push_back(proto);
      put16(f, 0);
      const auto& src = from_client ? host_.v4 : server_v4_;
      const auto& dst = from_client ? server_v4_ : host_.v4;
      f.insert(f.end(), src.begin(), src.end());
      f.insert(f.end(), dst.begin(), dst.end());
      const auto c = fold(sum16(f.data() + ip_at_, 20));
      f[ip_at_ + 10] = static_cast<std::uint8_t>(c >> 8U);
      f[ip_at_ + 11] = static_cast<std::uint8_t>(c & 0xFFU);
    } else {
      put16(f, 0x86DD);
      ip_at_ = f.size();
      put32(f, 0x60000000U);
      put16(f, static_cast<unsigned>(l4_len));
      f.push_back(proto);
      f.push_back(from_client ? 64 : 63);
      const auto& src = from_client ? host_.v6 : server_v6_;
      const auto& dst = from_client ? server_v6_ : host_.v6;
      f.insert(f.end(), src.begin(), src.end());
      f.insert(f.end(), dst.begin(), dst.end());
    }
    return f.size();
  }

  // Transport checksum over the pseudo-header and the segment.
  void finish_l4(std::vector<std::uint8_t>& f, std::size_t l4, std::uint8_t proto,
                 std::size_t checksum_at) const {
    const std::size_t len = f.size() - l4;
    std::uint32_t acc = v6_ ? sum16(f.data() + ip_at_ + 8, 32) : sum16(f.data() + ip_at_ + 12, 8);
    acc += static_cast<std::uint32_t>(len & 0xFFFFU) + static_cast<std::uint32_t>(len >> 16U);
    acc += proto;
    auto c = fold(sum16(f.data() + l4, len, acc));
    if (c == 0 && proto == 17) {
      c = 0xFFFF;  // zero means "no checksum" in UDP
    }
    f[checksum_at] = static_cast<std::uint8_t>(c >> 8U);
    f[checksum_at + 1] = static_cast<std::uint8_t>(c & 0xFFU);
  }

  const Host& host_;
  bool v6_;
  const std::array<std::uint8_t, 4>& server_v4_;
  const std::array<std::uint8_t, 16>& server_v6_;
  mutable std::size_t ip_at_ = 0;
};

struct QTypeWeight {
  std::uint16_t code;
  double weight;
};

constexpr std::array<QTypeWeight, 10> kBenchQTypes{{{1, 515},
                                                    {28, 260},
                                                    {65, 100},
                                                    {12, 50},
                                                    {16, 40},
                                                    {15, 30},
                                                    {33, 2},
                                                    {2, 1},
                                                    {6, 1},
                                                    {255, 1}}};

// A frame waiting in time order.
struct Pending {
  std::int64_t ts_us = 0;
  std::uint64_t seq = 0;
  std::vector<std::uint8_t> bytes;
  FrameFacts facts;
};

struct Later {
  bool operator()(const Pending& a, const Pending& b) const {
    return a.ts_us != b.ts_us ? a.ts_us > b.ts_us : a.seq > b.seq;
  }
};

// What one query and its answer look like, decided before either is written.
struct Exchange {
  std::uint32_t key = 0;  // for the truth summary
  std::uint16_t id = 0;
  std::uint16_t qtype = 1;
  std::string qname;         // lowercase
  std::string spelling;      // the qname in mixed case (--mixed-case), else empty
  std::uint32_t domain = 0;  // index in the population (PTR: the arpa domains)
  unsigned rcode = 0;
  bool nodata = false;  // NOERROR with an empty answer (SOA in authority)
  bool answered = true;
  bool tc = false;     // a UDP response with TC=1 and no records
  bool large = false;  // the full answer after TC=1: many records
  bool ad = false;
  bool server_cookie = false;  // the client already holds a server cookie
  unsigned cname_hops = 0;
  unsigned records = 1;

  // The qname as the query spells it and the response echoes it.
  [[nodiscard]] const std::string& wire_name() const { return spelling.empty() ? qname : spelling; }
};

// Cache hit (most answers) or miss: the resolver's answer delay.
std::int64_t resolver_latency_us(Rng& rng, unsigned rcode) {
  if (rcode == 2) {
    return static_cast<std::int64_t>(50'000.0 * std::pow(30.0, rng.unit()));  // 50 ms-1.5 s
  }
  if (rng.chance(78)) {
    return rng.range(30, 400);
  }
  return static_cast<std::int64_t>(2'000.0 * std::pow(60.0, rng.unit()));  // 2-120 ms
}

class BenchGenerator {
 public:
  BenchGenerator(const Options& o, pcap_dumper_t* dump, Truth* truth)
      : o_(o),
        dump_(dump),
        truth_(truth),
        rng_(o.seed),
        case_rng_(mix(o.seed, kCaseSalt)),
        pop_(o.domains, o.seed),
        domain_zipf_(Cdf::zipf(pop_.count(), 1.0)),
        ptr_zipf_(Cdf::zipf(Population::kPtrNames, 1.0)),
        client_pick_(Cdf::zipf(o.clients, kClientZipf)) {
    for (std::uint32_t k = 1; k <= kSubLabels.size(); ++k) {
      sub_zipf_.push_back(Cdf::zipf(k, 1.2));
    }
    std::vector<double> w;
    w.reserve(kBenchQTypes.size());
    for (const auto& q : kBenchQTypes) {
      w.push_back(q.weight);
    }
    qtype_cdf_ = Cdf(w);
    make_hosts();
  }

  std::uint64_t run() {
    const std::uint64_t packets = o_.packets.value_or(2'000'000);
    // Frames per transaction are about 2.14 on average (TCP exchanges take 8-10 frames).
    const double mean_gap_us = 2.14e6 / o_.rate.value_or(100'000);
    auto t_us = static_cast<double>(kStartUs);
    for (;;) {
      t_us += -std::log(1.0 - rng_.unit()) * mean_gap_us;
      const auto start = static_cast<std::int64_t>(t_us);
      // Everything still pending before this start can be written: later exchanges only add
      // frames at or after their start.
      while (!pending_.empty() && pending_.top().ts_us < start && written_ < packets) {
        emit();
      }
      if (written_ >= packets) {
        break;
      }
      transaction(start);
    }
    return written_;
  }

 private:
  static constexpr std::int64_t kStartUs = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
  static constexpr double kClientZipf = 0.6;  // a few busy clients, a long tail of quiet ones

  void make_hosts() {
    hosts_.resize(o_.clients);
    const double vlan_pct = o_.vlan_pct.value_or(7);
    const double edns_pct = o_.edns_pct.value_or(40);
    static constexpr std::array<int, 4> kVlans{10, 20, 30, 110};
    for (std::uint32_t h = 0; h < o_.clients; ++h) {
      Host& host = hosts_[h];
      const std::uint32_t n = h + 256;  // 198.18.1.0 onwards
      host.v4 = {198, 18, static_cast<std::uint8_t>(n >> 8U), static_cast<std::uint8_t>(n)};
      host.v6 = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01};
      const auto iid = mix(o_.seed, h);  // a random-looking interface identifier
      for (std::size_t k = 8; k < 16; ++k) {
        host.v6[k] = static_cast<std::uint8_t>(iid >> (8 * (k - 8)));
      }
      host.mac = {0x02,
                  0x10,
                  static_cast<std::uint8_t>(h >> 16U),
                  static_cast<std::uint8_t>(h >> 8U),
                  static_cast<std::uint8_t>(h),
                  0x01};
      const auto u = [&](std::uint64_t salt) {
        return static_cast<double>(mix(o_.seed ^ salt, h) % 100000) / 1000.0;
      };
      host.edns_do = u(0x33) < 25;
      host.cookie = u(0x44) < 30;
      host.ecs = u(0x55) < 10;
      host.udp_size = u(0x66) < 60 ? 1232 : 4096;
      const auto c = mix(o_.seed ^ 0xC0, h);
      for (std::size_t k = 0; k < 8; ++k) {
        host.client_cookie[k] = static_cast<std::uint8_t>(c >> (8 * k));
      }
    }
    // Clients are picked by a skewed distribution, so a share of the hosts is not a share of the
    // traffic: walk the hosts in a seeded order and give the property to hosts until their
    // expected traffic reaches the percentage.
    assign_by_share(vlan_pct, 0x11,
                    [&](std::uint32_t h) { hosts_[h].vlan = kVlans[h % kVlans.size()]; });
    assign_by_share(edns_pct, 0x22, [&](std::uint32_t h) { hosts_[h].edns = true; });
  }

  template <typename Give>
  void assign_by_share(double pct, std::uint64_t salt, Give give) {
    std::vector<std::uint32_t> order(o_.clients);
    for (std::uint32_t h = 0; h < o_.clients; ++h) {
      order[h] = h;
    }
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      return mix(o_.seed ^ salt, a) < mix(o_.seed ^ salt, b);
    });
    double total = 0;
    for (std::uint32_t h = 0; h < o_.clients; ++h) {
      total += client_weight(h);
    }
    double given = 0;
    for (const auto h : order) {
      if (given >= total * pct / 100.0) {
        break;
      }
      give(h);
      given += client_weight(h);
    }
  }

  // The weight of client h in client_pick_ (Zipf 0.6).
  static double client_weight(std::uint32_t h) {
    return 1.0 / std::pow(static_cast<double>(h + 1), kClientZipf);
  }

  void push(std::int64_t ts_us, std::vector<std::uint8_t>&& bytes, FrameFacts&& facts) {
    Pending p;
    p.ts_us = ts_us;
    p.seq = seq_++;
    p.bytes = std::move(bytes);
    if (truth_ != nullptr) {
      p.facts = std::move(facts);
      p.facts.wire_len = static_cast<std::uint32_t>(p.bytes.size());
    }
    pending_.push(std::move(p));
  }

  void emit() {
    // priority_queue::top() is const; the element is popped right after, so moving is safe.
    auto& top = const_cast<Pending&>(pending_.top());  // NOLINT: see above
    write_frame(dump_, top.ts_us, top.bytes.data(), top.bytes.size());
    if (truth_ != nullptr) {
      truth_->add(top.facts, top.ts_us);
    }
    ++written_;
    pending_.pop();
  }

  std::int64_t latency_us(unsigned rcode) { return resolver_latency_us(rng_, rcode); }

  void transaction(std::int64_t start_us) {
    const std::uint32_t h = client_pick_.sample(rng_);
    const Host& host = hosts_[h];
    const bool v6 = rng_.chance(o_.ipv6_pct.value_or(10));
    const FrameBuilder fb(host, v6, kServerV4[h % 2], kServerV6[h % 2]);

    Exchange x;
    const auto qt = kBenchQTypes[qtype_cdf_.sample(rng_)].code;
    x.qtype = qt;
    const double fate = rng_.unit() * 100;
    const double nx = o_.nxdomain_pct.value_or(6.6);
    const double sf = o_.servfail_pct.value_or(2.5);
    x.rcode = fate < nx ? 3 : fate < nx + sf ? 2 : fate < nx + sf + 0.1 ? 5 : 0;
    if (qt == 12) {
      const auto i = ptr_zipf_.sample(rng_);
      x.qname = Population::ptr_name(i);
      x.domain = pop_.ptr_domain(i >= Population::kPtrV4);
    } else {
      x.domain = domain_zipf_.sample(rng_);
      const std::string& dom = pop_.domain(x.domain);
      const auto k = pop_.subdomains(x.domain);
      if (x.rcode == 3 && rng_.chance(50)) {
        x.qname = random_label(rng_.range(8, 14)) + "." + dom;  // typo or random-subdomain probe
      } else {
        const auto sub = kSubLabels[sub_zipf_[k - 1].sample(rng_)];
        x.qname = sub.empty() ? dom : std::string(sub) + "." + dom;
      }
    }
    if (o_.mixed_case_pct > 0 && case_rng_.chance(o_.mixed_case_pct)) {
      x.spelling = x.qname;
      scramble_case(x.spelling, [&] { return case_rng_.next(); });
    }
    x.answered = !rng_.chance(0.5);
    const auto dh = mix(o_.seed ^ 0xA5, x.domain);
    x.cname_hops = qt == 12 || dh % 3 != 0 ? 0 : 1 + static_cast<unsigned>(dh % 7 == 0);
    x.ad = host.edns && host.edns_do && dh % 5 == 0;
    x.server_cookie = rng_.chance(60);
    if (x.rcode == 0) {
      x.nodata = (qt == 28 && dh % 8 == 0) || (qt == 65 && dh % 2 == 0) || qt == 33 ||
                 (qt == 15 && dh % 4 == 0);
      x.records = qt == 1               ? rng_.range(1, 4)
                  : qt == 28            ? rng_.range(1, 2)
                  : qt == 16            ? rng_.range(1, 3)
                  : qt == 15 || qt == 2 ? 2
                                        : 1;
    }

    const double tcp_pct = o_.tcp_pct.value_or(2);
    const bool tcp = rng_.chance(tcp_pct);
    const bool via_tc = tcp && rng_.chance(50);
    std::int64_t t = start_us;
    if (!tcp || via_tc) {
      Exchange u = x;
      u.key = next_key_++;
      u.id = static_cast<std::uint16_t>(rng_.next());
      u.tc = via_tc;
      t = udp_exchange(fb, host, v6, u, t);
      if (!tcp) {
        return;
      }
      t += rng_.range(50, 300);  // the stub retries over TCP right away
    }
    Exchange v = x;
    v.key = next_key_++;
    v.id = static_cast<std::uint16_t>(rng_.next());
    v.answered = true;
    v.large = via_tc;
    tcp_exchange(fb, host, v6, v, t);
  }

  [[nodiscard]] FrameFacts facts(const Exchange& x, const Host& host, bool v6, bool tcp,
                                 bool response) const {
    FrameFacts f;
    f.kind = response ? FrameFacts::Kind::Response : FrameFacts::Kind::Query;
    f.tcp = tcp;
    f.v6 = v6;
    f.vlan = host.vlan >= 0;
    f.tc = response && x.tc;
    f.edns = host.edns;
    f.edns_do = host.edns && host.edns_do;
    f.cookie = host.edns && host.cookie;
    f.ecs = host.edns && host.ecs;
    f.qtype = x.qtype;
    f.rcode = static_cast<std::uint8_t>(x.rcode);
    f.answered = x.answered;
    f.client.v6 = v6;
    if (v6) {
      f.client.bytes = host.v6;
    } else {
      std::copy(host.v4.begin(), host.v4.end(), f.client.bytes.begin());
    }
    f.txn = x.key;
    if (truth_ != nullptr) {
      f.qname = x.qname;
      if (!response) {
        f.domain = pop_.domain(x.domain);
      }
    }
    return f;
  }

  std::int64_t udp_exchange(const FrameBuilder& fb, const Host& host, bool v6, const Exchange& x,
                            std::int64_t t) {
    const auto port = static_cast<std::uint16_t>(rng_.range(32768, 60999));
    Message q;
    write_query(q, host, x);
    push(t, fb.udp(true, port, q.data(), q.size()), facts(x, host, v6, false, false));
    if (!x.answered) {
      return t;
    }
    Message r;
    write_response(r, host, v6, x);
    t += latency_us(x.rcode);
    push(t, fb.udp(false, port, r.data(), r.size()), facts(x, host, v6, false, true));
    return t;
  }

  void tcp_exchange(const FrameBuilder& fb, const Host& host, bool v6, const Exchange& x,
                    std::int64_t t) {
    const auto port = static_cast<std::uint16_t>(rng_.range(32768, 60999));
    const auto half_rtt = static_cast<std::int64_t>(rng_.range(25, 200));
    const auto client_isn = static_cast<std::uint32_t>(rng_.next());
    const auto server_isn = static_cast<std::uint32_t>(rng_.next());
    Message q;
    write_query(q, host, x);
    Message r;
    write_response(r, host, v6, x);
    std::vector<std::uint8_t> qp(2 + q.size()), rp(2 + r.size());  // RFC 1035 §4.2.2 prefix
    qp[0] = static_cast<std::uint8_t>(q.size() >> 8U);
    qp[1] = static_cast<std::uint8_t>(q.size() & 0xFFU);
    std::memcpy(qp.data() + 2, q.data(), q.size());
    rp[0] = static_cast<std::uint8_t>(r.size() >> 8U);
    rp[1] = static_cast<std::uint8_t>(r.size() & 0xFFU);
    std::memcpy(rp.data() + 2, r.data(), r.size());
    const auto qlen = static_cast<std::uint32_t>(qp.size());
    const auto rlen = static_cast<std::uint32_t>(rp.size());
    const std::uint32_t c = client_isn, s = server_isn;

    FrameFacts control = facts(x, host, v6, true, false);
    control.kind = FrameFacts::Kind::NoDns;
    control.qname.clear();
    auto segment = [&](bool from_client, TcpFields f, const std::vector<std::uint8_t>* payload,
                       FrameFacts what) {
      push(t,
           fb.tcp(from_client, port, f, payload ? payload->data() : nullptr,
                  payload ? payload->size() : 0),
           std::move(what));
    };
    segment(true, {c, 0, kSyn, true}, nullptr, control);
    t += half_rtt;
    segment(false, {s, c + 1, kSyn | kAck, true}, nullptr, control);
    t += half_rtt;
    segment(true, {c + 1, s + 1, kAck, false}, nullptr, control);
    t += 5;
    segment(true, {c + 1, s + 1, kPsh | kAck, false}, &qp, facts(x, host, v6, true, false));
    t += half_rtt + latency_us(x.rcode);
    segment(false, {s + 1, c + 1 + qlen, kPsh | kAck, false}, &rp, facts(x, host, v6, true, true));
    t += half_rtt;
    segment(true, {c + 1 + qlen, s + 1 + rlen, kFin | kAck, false}, nullptr, control);
    t += half_rtt;
    segment(false, {s + 1 + rlen, c + 2 + qlen, kFin | kAck, false}, nullptr, control);
    t += half_rtt;
    segment(true, {c + 2 + qlen, s + 2 + rlen, kAck, false}, nullptr, control);
  }

  std::string random_label(std::uint32_t len) {
    static constexpr std::string_view kChars = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s(len, 'a');
    for (auto& ch : s) {
      ch = kChars[rng_.below(static_cast<std::uint32_t>(kChars.size()))];
    }
    return s;
  }

  static void write_opt(Message& m, const Host& host, bool response, const Exchange& x, bool v6) {
    m.u8(0);  // root
    m.u16(41);
    m.u16(response ? 1232U : host.udp_size);
    m.u32(host.edns_do ? 0x00008000U : 0);
    const std::size_t rdlen_at = m.size();
    m.u16(0);
    if (host.cookie) {
      m.u16(10);  // COOKIE (RFC 7873): client cookie, plus the server's when known
      const bool with_server = response || x.server_cookie;
      m.u16(with_server ? 24 : 8);
      m.raw(host.client_cookie.data(), 8);
      if (with_server) {
        m.u8(1);  // version
        m.u8(0);
        m.u16(0);
        m.u32(static_cast<std::uint32_t>(1'767'225'600U));  // timestamp
        const auto hash = mix(x.key, 0xC00C1E);
        m.u32(static_cast<std::uint32_t>(hash));
        m.u32(static_cast<std::uint32_t>(hash >> 32U));
      }
    }
    if (host.ecs) {
      m.u16(8);  // EDNS client subnet (RFC 7871): /24 or /56 of the client
      const unsigned prefix = v6 ? 56 : 24;
      const unsigned bytes = prefix / 8;
      m.u16(4 + bytes);
      m.u16(v6 ? 2 : 1);
      m.u8(prefix);
      m.u8(response ? prefix : 0);  // scope
      m.raw(v6 ? host.v6.data() : host.v4.data(), bytes);
    }
    m.put16(rdlen_at, static_cast<unsigned>(m.size() - rdlen_at - 2));
  }

  void write_query(Message& m, const Host& host, const Exchange& x) const {
    m.u16(x.id);
    m.u16(0x0100U | (x.ad ? 0x0020U : 0U));  // RD (+AD from validating stubs)
    m.u16(1);
    m.u16(0);
    m.u16(0);
    m.u16(host.edns ? 1 : 0);
    m.name(x.wire_name());
    m.u16(x.qtype);
    m.u16(1);
    if (host.edns) {
      write_opt(m, host, false, x, false);
    }
  }

  void write_soa(Message& m, const Exchange& x) const {
    const std::string& zone = pop_.domain(x.domain);
    const auto at = m.begin_rr(zone, 6, 900);
    const std::string mname =
        "ns1." + std::string(kDnsHosts[mix(x.domain, 0x50A) % kDnsHosts.size()]);
    m.name(mname);
    m.name("hostmaster." + zone);
    m.u32(2026010100U + static_cast<std::uint32_t>(x.domain % 97));
    m.u32(7200);
    m.u32(3600);
    m.u32(1209600);
    m.u32(300);
    m.end_rr(at);
  }

  void write_response(Message& m, const Host& host, bool v6, const Exchange& x) const {
    unsigned flags = 0x8180U | x.rcode;  // QR RD RA
    if (x.tc) {
      flags |= 0x0200U;
    }
    if (x.ad && x.rcode == 0) {
      flags |= 0x0020U;
    }
    m.u16(x.id);
    m.u16(flags);
    m.u16(1);
    const std::size_t counts_at = m.size();
    m.u16(0);
    m.u16(0);
    m.u16(0);
    m.name(x.wire_name());
    m.u16(x.qtype);
    m.u16(1);
    unsigned an = 0, ns = 0;
    const auto dh = mix(o_.seed ^ 0xA5, x.domain);
    if (x.tc || x.rcode == 2 || x.rcode == 5) {
      // no records
    } else if (x.rcode == 3 || x.nodata) {
      write_soa(m, x);
      ns = 1;
    } else {
      std::string owner = x.wire_name();
      const bool addr = x.qtype == 1 || x.qtype == 28 || x.qtype == 65;
      if (addr) {
        const auto cdn = kCdns[dh % kCdns.size()];
        for (unsigned hop = 0; hop < x.cname_hops; ++hop) {
          const std::string target =
              hop == 0 ? owner + ".edgekey." + std::string(cdn)
                       : "e" + std::to_string(dh % 9973) + ".a." + std::string(cdn);
          const auto at = m.begin_rr(owner, 5, 300);
          m.name(target);
          m.end_rr(at);
          ++an;
          owner = target;
        }
      }
      const unsigned records = x.large ? (x.qtype == 28 ? 12 : x.qtype == 16 ? 5 : 24) : x.records;
      switch (x.qtype) {
        case 1:
          for (unsigned i = 0; i < records; ++i) {
            const auto at = m.begin_rr(owner, 1, 60);
            m.u8(203);
            m.u8(0);
            m.u8(113);
            m.u8(static_cast<unsigned>((dh + i) % 254 + 1));
            m.end_rr(at);
            ++an;
          }
          break;
        case 28:
          for (unsigned i = 0; i < records; ++i) {
            const auto at = m.begin_rr(owner, 28, 60);
            std::array<std::uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8, 0xff};  // 2001:db8:ff..::
            a[5] = static_cast<std::uint8_t>(dh >> 8U);
            a[7] = static_cast<std::uint8_t>(dh);
            a[15] = static_cast<std::uint8_t>(i + 1);
            m.raw(a.data(), a.size());
            m.end_rr(at);
            ++an;
          }
          break;
        case 65: {  // HTTPS (RFC 9460): priority 1, target ".", alpn h3,h2 and an ipv4hint
          const auto at = m.begin_rr(owner, 65, 300);
          m.u16(1);
          m.u8(0);
          m.u16(1);  // alpn
          m.u16(6);
          m.u8(2);
          m.u8('h');
          m.u8('3');
          m.u8(2);
          m.u8('h');
          m.u8('2');
          m.u16(4);  // ipv4hint
          m.u16(4);
          m.u8(203);
          m.u8(0);
          m.u8(113);
          m.u8(static_cast<unsigned>(dh % 254 + 1));
          m.end_rr(at);
          ++an;
          break;
        }
        case 12: {
          const auto at = m.begin_rr(owner, 12, 3600);
          const auto d = static_cast<std::uint32_t>(mix(x.qname.size(), dh) % pop_.count());
          m.name("host-" + std::to_string(dh % 1000) + "." + pop_.domain(d));
          m.end_rr(at);
          ++an;
          break;
        }
        case 15:
          for (unsigned i = 0; i < records; ++i) {
            const auto at = m.begin_rr(owner, 15, 3600);
            m.u16(10 * (i + 1));
            m.name("mx" + std::to_string(i + 1) + "." + pop_.domain(x.domain));
            m.end_rr(at);
            ++an;
          }
          break;
        case 16:
          for (unsigned i = 0; i < records; ++i) {
            const auto at = m.begin_rr(owner, 16, 300);
            std::string text = i == 0 ? "v=spf1 include:_spf." + pop_.domain(x.domain) + " ~all"
                                      : "site-verification=" + std::to_string(mix(dh, i));
            if (x.large) {
              text.resize(200, 'x');
            }
            m.u8(static_cast<unsigned>(text.size()));
            m.raw(reinterpret_cast<const std::uint8_t*>(text.data()),  // NOLINT: bytes
                  text.size());
            m.end_rr(at);
            ++an;
          }
          break;
        case 2:
          for (unsigned i = 0; i < records; ++i) {
            const auto at = m.begin_rr(owner, 2, 86400);
            m.name("ns" + std::to_string(i + 1) + "." +
                   std::string(kDnsHosts[dh % kDnsHosts.size()]));
            m.end_rr(at);
            ++an;
          }
          break;
        case 6:
          write_soa(m, x);
          ++an;
          break;
        case 255: {  // RFC 8482 minimal ANY answer
          const auto at = m.begin_rr(owner, 13, 3789);
          m.u8(7);
          m.raw(reinterpret_cast<const std::uint8_t*>("RFC8482"), 7);  // NOLINT: bytes
          m.u8(0);
          m.end_rr(at);
          ++an;
          break;
        }
        default:
          break;
      }
    }
    m.put16(counts_at, an);
    m.put16(counts_at + 2, ns);
    if (host.edns) {
      m.put16(counts_at + 4, 1);
      write_opt(m, host, true, x, v6);
    }
  }

  static constexpr std::array<std::array<std::uint8_t, 4>, 2> kServerV4{
      {{198, 19, 0, 53}, {198, 19, 0, 54}}};
  static constexpr std::array<std::array<std::uint8_t, 16>, 2> kServerV6{
      {{0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53},
       {0x20, 0x01, 0x0d, 0xb8, 0, 0x53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x54}}};

  const Options& o_;
  pcap_dumper_t* dump_;
  Truth* truth_;
  Rng rng_;
  Rng case_rng_;  // --mixed-case spellings only
  Population pop_;
  Cdf domain_zipf_, ptr_zipf_, client_pick_, qtype_cdf_;
  std::vector<Cdf> sub_zipf_;
  std::vector<Host> hosts_;
  std::priority_queue<Pending, std::vector<Pending>, Later> pending_;
  std::uint64_t seq_ = 0;
  std::uint64_t written_ = 0;
  std::uint32_t next_key_ = 0;
};

// ------------------------------------------------------------------------------------------------
// The flood profile. Frames are built in place in one buffer and written straight away; the only
// state is the background population and the responses still to be sent (a few thousand at the
// default rate), so memory stays flat however many frames are asked for.

constexpr std::string_view kFloodDomain = "victim-flood.co.uk";

class FloodGenerator {
 public:
  FloodGenerator(const Options& o, pcap_dumper_t* dump, Truth* truth)
      : o_(o),
        dump_(dump),
        truth_(truth),
        rng_(o.seed),
        case_rng_(mix(o.seed, kCaseSalt)),
        pop_(kBackgroundDomains, o.seed),
        domain_zipf_(Cdf::zipf(kBackgroundDomains, 1.0)),
        host_zipf_(Cdf::zipf(kBackgroundHosts, 0.6)) {
    for (std::uint32_t k = 1; k <= kSubLabels.size(); ++k) {
      sub_zipf_.push_back(Cdf::zipf(k, 1.2));
    }
    // A flood event is one query plus, for the answered share a, one response; a background
    // event is two frames. Picking a flood event with probability p gives the flood a share
    // p(1+a) / (p(1+a) + 2(1-p)) of the frames: solve that for kFloodShare.
    const double a = o.nxdomain_pct.value_or(50) / 100.0;
    const double p = 2 * kFloodShare / (2 * kFloodShare + (1 - kFloodShare) * (1 + a));
    flood_pct_ = 100 * p;
    answered_pct_ = 100 * a;
    mean_gap_us_ = (p * (1 + a) + (1 - p) * 2) * 1e6 / o.rate.value_or(1'000'000);
  }

  std::uint64_t run() {
    const std::uint64_t packets = o_.packets.value_or(10'000'000);
    auto t_us = static_cast<double>(kStartUs);
    for (;;) {
      t_us += -std::log(1.0 - rng_.unit()) * mean_gap_us_;
      const auto start = static_cast<std::int64_t>(t_us);
      while (!due_.empty() && due_.top().ts_us < start && written_ < packets) {
        respond();
      }
      if (written_ >= packets) {
        break;
      }
      if (rng_.chance(flood_pct_)) {
        flood_query(start);
      } else {
        background_query(start);
      }
    }
    flush();
    return written_;
  }

 private:
  static constexpr std::int64_t kStartUs = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
  static constexpr double kFloodShare = 0.9;                       // of the frames
  static constexpr std::uint32_t kBackgroundDomains = 50;
  static constexpr std::uint32_t kBackgroundHosts = 250;  // 203.0.113.1-250
  static constexpr std::size_t kRecordHeader = 16;        // pcap: seconds, microseconds, lengths
  static constexpr std::size_t kDnsAt = 14 + 20 + 8;      // Ethernet, IPv4, UDP
  static constexpr std::size_t kFlushAt = std::size_t{1} << 20U;
  static constexpr std::size_t kMaxFrame = 512;

  // One exchange, enough to write its query and, later, its response.
  struct Txn {
    std::uint32_t key = 0;
    std::uint32_t client = 0;  // flood: index of the address; background: host
    std::uint32_t domain = 0;  // background: index in pop_
    std::uint16_t port = 0, id = 0, qtype = 1;
    std::uint8_t rcode = 0;
    bool flood = false;
    std::uint8_t name_len = 0;
    std::uint8_t zone_at = 0;     // where the registrable domain starts in name
    std::array<char, 64> name{};  // the qname as spelled on the wire

    [[nodiscard]] std::string_view qname() const { return {name.data(), name_len}; }

    void append(std::string_view s) {
      std::memcpy(name.data() + name_len, s.data(), s.size());
      name_len = static_cast<std::uint8_t>(name_len + s.size());
    }
  };

  struct Due {
    std::int64_t ts_us = 0;
    std::uint64_t seq = 0;
    std::uint32_t slot = 0;
  };

  struct DueLater {
    bool operator()(const Due& a, const Due& b) const {
      return a.ts_us != b.ts_us ? a.ts_us > b.ts_us : a.seq > b.seq;
    }
  };

  // A DNS message written into the frame buffer.
  struct Writer {
    std::uint8_t* p;
    std::size_t n = 0;

    void u8(unsigned v) { p[n++] = static_cast<std::uint8_t>(v); }

    void u16(unsigned v) {
      u8(v >> 8U);
      u8(v & 0xFFU);
    }

    void u32(std::uint32_t v) {
      u16(v >> 16U);
      u16(v & 0xFFFFU);
    }

    void text(std::string_view s) {
      std::memcpy(p + n, s.data(), s.size());
      n += s.size();
    }

    // A non-empty name without the trailing dot, in one pass.
    void name(std::string_view dotted) {
      std::size_t length_at = n++;
      unsigned length = 0;
      for (const char ch : dotted) {
        if (ch == '.') {
          p[length_at] = static_cast<std::uint8_t>(length);
          length_at = n++;
          length = 0;
        } else {
          p[n++] = static_cast<std::uint8_t>(ch);
          ++length;
        }
      }
      p[length_at] = static_cast<std::uint8_t>(length);
      u8(0);
    }

    void opt() {
      u8(0);  // root
      u16(41);
      u16(1232);
      u32(0);
      u16(0);
    }
  };

  void flood_query(std::int64_t t) {
    Txn x;
    x.flood = true;
    x.key = next_key_++;
    x.client = rng_.below(o_.clients);
    x.port = static_cast<std::uint16_t>(rng_.range(32768, 60999));
    x.id = static_cast<std::uint16_t>(rng_.next());
    x.qtype = rng_.below(4) == 0 ? 28 : 1;
    x.rcode = 3;
    // Twelve base-32 digits of a bijection of the flood's query count over 60 bits, so no two
    // flood names are ever equal and the truth needs not remember them; then 0-8 random
    // characters.
    static constexpr std::string_view kDigits = "abcdefghijklmnopqrstuvwxyz234567";
    static constexpr std::string_view kChars = "abcdefghijklmnopqrstuvwxyz0123456789";
    constexpr std::uint64_t kMask = (std::uint64_t{1} << 60U) - 1;
    std::uint64_t v = (flood_count_++ * 0x9E3779B97F4A7C15ULL) & kMask;  // odd: invertible
    v ^= v >> 31U;
    v = (v * 0xBF58476D1CE4E5B9ULL) & kMask;
    v ^= v >> 29U;
    for (int i = 0; i < 12; ++i, v >>= 5U) {
      x.name[x.name_len++] = kDigits[v & 31U];
    }
    for (auto tail = rng_.below(9); tail > 0; --tail) {
      x.name[x.name_len++] = kChars[rng_.below(static_cast<std::uint32_t>(kChars.size()))];
    }
    x.name[x.name_len++] = '.';
    x.zone_at = x.name_len;
    x.append(kFloodDomain);
    spell(x);
    const bool answered = rng_.chance(answered_pct_);
    query(t, x, answered);
    if (answered) {  // the authoritative server's answer, through the resolver: 1-30 ms
      schedule(t + static_cast<std::int64_t>(1'000.0 * std::pow(30.0, rng_.unit())), x);
    }
  }

  void background_query(std::int64_t t) {
    Txn x;
    x.key = next_key_++;
    x.client = host_zipf_.sample(rng_);
    x.port = static_cast<std::uint16_t>(rng_.range(32768, 60999));
    x.id = static_cast<std::uint16_t>(rng_.next());
    const auto q = rng_.below(10);
    x.qtype = q < 6 ? 1 : q < 9 ? 28 : 65;
    const double fate = rng_.unit() * 100;
    x.rcode = fate < 2 ? 3 : fate < 3 ? 2 : 0;
    x.domain = domain_zipf_.sample(rng_);
    const std::string& dom = pop_.domain(x.domain);
    const auto sub = kSubLabels[sub_zipf_[pop_.subdomains(x.domain) - 1].sample(rng_)];
    if (!sub.empty()) {
      x.append(sub);
      x.append(".");
    }
    x.zone_at = x.name_len;
    x.append(dom);
    spell(x);
    query(t, x, true);
    schedule(t + resolver_latency_us(rng_, x.rcode), x);
  }

  void spell(Txn& x) {
    if (o_.mixed_case_pct > 0 && case_rng_.chance(o_.mixed_case_pct)) {
      scramble_case(std::span(x.name.data(), x.name_len), [&] { return case_rng_.next(); });
    }
  }

  void query(std::int64_t t, const Txn& x, bool answered) {
    Writer w{frame() + kDnsAt};
    w.u16(x.id);
    w.u16(0x0100);  // RD
    w.u16(1);
    w.u16(0);
    w.u16(0);
    w.u16(1);
    w.name(x.qname());
    w.u16(x.qtype);
    w.u16(1);
    w.opt();
    send(t, x, true, w.n, answered);
  }

  void schedule(std::int64_t t, const Txn& x) {
    std::uint32_t slot = 0;
    if (free_.empty()) {
      slot = static_cast<std::uint32_t>(txns_.size());
      txns_.push_back(x);
    } else {
      slot = free_.back();
      free_.pop_back();
      txns_[slot] = x;
    }
    due_.push({t, seq_++, slot});
  }

  void respond() {
    const Due d = due_.top();
    due_.pop();
    const Txn& x = txns_[d.slot];
    Writer w{frame() + kDnsAt};
    const bool soa = x.rcode == 3 || (x.rcode == 0 && x.qtype == 65);  // NXDOMAIN or NODATA
    const bool answer = x.rcode == 0 && !soa;
    w.u16(x.id);
    w.u16(0x8180U | x.rcode);  // QR RD RA
    w.u16(1);
    w.u16(answer ? 1 : 0);
    w.u16(soa ? 1 : 0);
    w.u16(1);
    w.name(x.qname());
    w.u16(x.qtype);
    w.u16(1);
    const auto h = mix(o_.seed ^ 0xA5, x.domain);
    if (answer) {
      w.u16(0xC00C);  // the question name
      w.u16(x.qtype);
      w.u16(1);
      w.u32(60);
      if (x.qtype == 1) {
        w.u16(4);
        w.u8(203);
        w.u8(0);
        w.u8(113);
        w.u8(static_cast<unsigned>(h % 254 + 1));
      } else {
        w.u16(16);
        w.u32(0x20010db8U);
        w.u32(0xff000000U | static_cast<std::uint32_t>(h & 0xFFFFU));
        w.u32(0);
        w.u32(1);
      }
    } else if (soa) {
      const unsigned zone = 0xC000U | (12U + x.zone_at);  // the zone inside the question name
      w.u16(zone);
      w.u16(6);
      w.u16(1);
      w.u32(900);
      const std::size_t rdlen_at = w.n;
      w.u16(0);
      w.u8(3);
      w.text("ns1");
      w.u16(zone);
      w.u8(10);
      w.text("hostmaster");
      w.u16(zone);
      w.u32(2026010100U);
      w.u32(7200);
      w.u32(3600);
      w.u32(1209600);
      w.u32(300);
      const std::size_t rdlen = w.n - rdlen_at - 2;
      w.p[rdlen_at] = static_cast<std::uint8_t>(rdlen >> 8U);
      w.p[rdlen_at + 1] = static_cast<std::uint8_t>(rdlen & 0xFFU);
    }
    w.opt();
    send(d.ts_us, x, false, w.n, false);
    free_.push_back(d.slot);
  }

  [[nodiscard]] std::uint32_t client_address(const Txn& x) const {
    return x.flood ? 0xC6120001U + x.client   // 198.18.0.1 onwards
                   : 0xCB007101U + x.client;  // 203.0.113.1 onwards
  }

  // Frames are built where they will be written: after the record header at the end of out_.
  std::uint8_t* frame() { return out_.data() + used_ + kRecordHeader; }

  // The records go to the dumper's file in large writes rather than through pcap_dump(), two
  // small writes per frame. A record is what pcap_dump() writes: the header fields in host byte
  // order, as the file header's magic number announces, then the frame.
  void flush() {
    if (used_ != 0) {
      std::fwrite(out_.data(), 1, used_, pcap_dump_file(dump_));
      used_ = 0;
    }
  }

  // Wraps the DNS message at kDnsAt in Ethernet, IPv4 and UDP with correct checksums, writes the
  // frame and tells the truth about it.
  void send(std::int64_t t, const Txn& x, bool from_client, std::size_t dns_len, bool answered) {
    static constexpr std::array<std::uint8_t, 6> kServerMac{0x02, 0x53, 0, 0, 0, 0x53};
    static constexpr std::uint32_t kServer = 0xC613FF35U;  // 198.19.255.53
    const std::uint32_t client = client_address(x);
    const std::array<std::uint8_t, 6> client_mac{0x02,
                                                 0x10,
                                                 static_cast<std::uint8_t>(client >> 24U),
                                                 static_cast<std::uint8_t>(client >> 16U),
                                                 static_cast<std::uint8_t>(client >> 8U),
                                                 static_cast<std::uint8_t>(client)};
    std::uint8_t* f = frame();
    std::memcpy(f, from_client ? kServerMac.data() : client_mac.data(), 6);
    std::memcpy(f + 6, from_client ? client_mac.data() : kServerMac.data(), 6);
    auto put16 = [&](std::size_t at, unsigned v) {
      f[at] = static_cast<std::uint8_t>(v >> 8U);
      f[at + 1] = static_cast<std::uint8_t>(v & 0xFFU);
    };
    auto put32 = [&](std::size_t at, std::uint32_t v) {
      put16(at, v >> 16U);
      put16(at + 2, v & 0xFFFFU);
    };
    put16(12, 0x0800);
    const std::size_t udp_len = 8 + dns_len;
    f[14] = 0x45;
    f[15] = 0;
    put16(16, static_cast<unsigned>(20 + udp_len));
    put16(18, ip_id_++);
    put16(20, 0x4000);  // DF
    f[22] = from_client ? 64 : 63;
    f[23] = 17;
    put16(24, 0);
    put32(26, from_client ? client : kServer);
    put32(30, from_client ? kServer : client);
    put16(24, fold(sum16(f + 14, 20)));
    put16(34, from_client ? x.port : 53U);
    put16(36, from_client ? 53U : x.port);
    put16(38, static_cast<unsigned>(udp_len));
    put16(40, 0);
    std::uint32_t acc = sum16(f + 26, 8) + 17 + static_cast<std::uint32_t>(udp_len);
    auto c = fold(sum16(f + 34, udp_len, acc));
    put16(40, c == 0 ? 0xFFFFU : c);  // zero means "no checksum" in UDP
    const std::size_t len = kDnsAt + dns_len;
    const std::array<std::uint32_t, 4> record{
        static_cast<std::uint32_t>(t / 1'000'000), static_cast<std::uint32_t>(t % 1'000'000),
        static_cast<std::uint32_t>(len), static_cast<std::uint32_t>(len)};
    std::memcpy(out_.data() + used_, record.data(), kRecordHeader);
    used_ += kRecordHeader + len;
    if (used_ >= kFlushAt) {
      flush();
    }
    ++written_;
    if (truth_ != nullptr) {
      FrameFacts facts;
      facts.kind = from_client ? FrameFacts::Kind::Query : FrameFacts::Kind::Response;
      facts.edns = true;
      facts.answered = answered;
      facts.fresh_name = x.flood;
      facts.qtype = x.qtype;
      facts.rcode = x.rcode;
      for (std::size_t k = 0; k < 4; ++k) {
        facts.client.bytes[k] = static_cast<std::uint8_t>(client >> (24 - 8 * k));
      }
      facts.txn = x.key;
      facts.wire_len = static_cast<std::uint32_t>(len);
      facts.qname = x.qname();
      for (auto& ch : facts.qname) {  // undo --mixed-case: every generated name is lowercase
        if (ch >= 'A' && ch <= 'Z') {
          ch = static_cast<char>(ch - 'A' + 'a');
        }
      }
      if (from_client) {
        facts.domain = x.flood ? kFloodDomain : std::string_view(pop_.domain(x.domain));
      }
      truth_->add(facts, t);
    }
  }

  const Options& o_;
  pcap_dumper_t* dump_;
  Truth* truth_;
  Rng rng_;
  Rng case_rng_;  // --mixed-case spellings only
  Population pop_;
  Cdf domain_zipf_, host_zipf_;
  std::vector<Cdf> sub_zipf_;
  double flood_pct_ = 0, answered_pct_ = 0, mean_gap_us_ = 0;
  std::vector<std::uint8_t> out_ = std::vector<std::uint8_t>(kFlushAt + kRecordHeader + kMaxFrame);
  std::size_t used_ = 0;
  std::vector<Txn> txns_;            // exchanges waiting for their response
  std::vector<std::uint32_t> free_;  // unused slots of txns_
  std::priority_queue<Due, std::vector<Due>, DueLater> due_;
  std::uint64_t seq_ = 0;
  std::uint64_t written_ = 0;
  std::uint64_t flood_count_ = 0;
  std::uint32_t next_key_ = 0;
  std::uint16_t ip_id_ = 1;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);

  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_MICRO);
  // The file is opened here rather than by pcap_dump_open() so that it gets a large buffer
  // before the file header is written: the flood profile writes hundreds of megabytes a second,
  // often into a pipe.
  std::FILE* file = o.out == "-" ? stdout : std::fopen(o.out.c_str(), "wb");
  if (file == nullptr) {
    std::fprintf(stderr, "gen_pcap: cannot write %s: %s\n", o.out.c_str(),
                 std::strerror(errno));  // NOLINT(concurrency-mt-unsafe): single-threaded tool
    return 1;
  }
  std::setvbuf(file, nullptr, _IOFBF, std::size_t{1} << 20U);
  pcap_dumper_t* dump = pcap_dump_fopen(dead, file);
  if (dump == nullptr) {
    std::fprintf(stderr, "gen_pcap: cannot write %s: %s\n", o.out.c_str(), pcap_geterr(dead));
    return 1;
  }
  Truth truth;
  Truth* t = o.truth.empty() ? nullptr : &truth;
  // The generators outlive truth.write(): the truth views their names.
  std::optional<BenchGenerator> bench;
  std::optional<FloodGenerator> flood;
  std::uint64_t written = 0;
  std::string_view profile = "simple";
  if (o.profile == Profile::Bench) {
    written = bench.emplace(o, dump, t).run();
    profile = "bench";
  } else if (o.profile == Profile::Flood) {
    written = flood.emplace(o, dump, t).run();
    profile = "flood";
  } else {
    written = run_simple(o, dump, t);
  }
  // ferror() as well: pcap_dump() and the flood's large writes do not report their failures.
  if (pcap_dump_flush(dump) != 0 || std::ferror(file) != 0) {
    std::fprintf(stderr, "gen_pcap: cannot write %s\n", o.out.c_str());
    return 1;
  }
  pcap_dump_close(dump);
  pcap_close(dead);

  if (t != nullptr && !truth.write(o.truth, o, profile)) {
    std::fprintf(stderr, "gen_pcap: cannot write %s\n", o.truth.c_str());
    return 1;
  }

  if (!o.cpp_out.empty()) {
    std::ifstream in(o.out, std::ios::binary);
    const std::vector<char> data((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
    std::FILE* f = std::fopen(o.cpp_out.c_str(), "w");
    if (f == nullptr) {
      std::fprintf(stderr, "gen_pcap: cannot write %s\n", o.cpp_out.c_str());
      return 1;
    }
    std::fprintf(f,
                 "// Generated by tools/gen_pcap --seed %llu --packets %llu: do not edit.\n"
                 "#include <cstddef>\n#include <span>\n\nnamespace dnsmon {\nnamespace {\n"
                 "alignas(8) constexpr unsigned char kBytes[] = {",
                 static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(written));
    for (std::size_t i = 0; i < data.size(); ++i) {
      std::fprintf(f, "%s%u,", i % 20 == 0 ? "\n" : "", static_cast<unsigned char>(data[i]));
    }
    std::fprintf(f,
                 "\n};\n}  // namespace\n\nstd::span<const std::byte> demo_capture() noexcept {\n"
                 "  return std::as_bytes(std::span(kBytes));\n}\n}  // namespace dnsmon\n");
    std::fclose(f);
  }
  std::fprintf(stderr, "gen_pcap: wrote %llu frames to %s\n",
               static_cast<unsigned long long>(written), o.out.c_str());
  return 0;
}
