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
// --cpp-out writes the capture again as a C++ source that defines dnsmon::demo_capture().
//
// This file holds the command line; the profiles, the pcap writer and the --truth summary are in
// tools/gen/, one source per profile.
//
// Three profiles:
// - simple (the default): one UDP query and its response per transaction, over a dozen names. The
//   daemon's demo (made in memory by tools/gen/demo.cpp, the same bytes as --seed 7 --packets 4000
//   --rate 100) and most tests use it; its output for a given seed never changes.
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
//     dnsmon's: 1, 1.5, 2, 3, 5 and 7 times 1e-05 ... 0.1, then 1 1.5 2 3 5 (seconds).
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/common/errno_text.hpp"

#include "gen/bench.hpp"
#include "gen/flood.hpp"
#include "gen/generator.hpp"
#include "gen/pcap_writer.hpp"
#include "gen/profile.hpp"
#include "gen/simple.hpp"
#include "gen/truth.hpp"

namespace {

using dnsmon::gen::kGeneratorVersion;
using dnsmon::gen::Options;
using dnsmon::gen::Profile;

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

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);

  // The file gets a large buffer before the file header is written: the flood profile writes
  // hundreds of megabytes a second, often into a pipe.
  std::FILE* file = o.out == "-" ? stdout : std::fopen(o.out.c_str(), "wb");
  if (file == nullptr) {
    std::fprintf(stderr, "gen_pcap: cannot write %s: %s\n", o.out.c_str(),
                 dnsmon::detail::errno_text(errno).c_str());
    return 1;
  }
  std::setvbuf(file, nullptr, _IOFBF, std::size_t{1} << 20U);
  dnsmon::gen::PcapWriter writer(file);
  const std::unique_ptr<dnsmon::gen::Truth> truth =
      o.truth.empty() ? nullptr : dnsmon::gen::make_truth();
  // The generator outlives truth->write(): the truth views its names.
  std::unique_ptr<dnsmon::gen::Generator> generator;
  std::string_view profile = "simple";
  if (o.profile == Profile::Bench) {
    generator = dnsmon::gen::make_bench(o, writer, truth.get());
    profile = "bench";
  } else if (o.profile == Profile::Flood) {
    generator = dnsmon::gen::make_flood(o, writer, truth.get());
    profile = "flood";
  }
  const std::uint64_t written =
      generator ? generator->run() : dnsmon::gen::run_simple(o, writer, truth.get());
  // ferror() as well: fflush() does not report the failures of earlier writes.
  if (std::fflush(file) != 0 || std::ferror(file) != 0) {
    std::fprintf(stderr, "gen_pcap: cannot write %s\n", o.out.c_str());
    return 1;
  }
  if (file != stdout) {
    std::fclose(file);
  }

  if (truth != nullptr && !truth->write(o.truth, o, profile)) {
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