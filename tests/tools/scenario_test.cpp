// Scenario A (tools/gen/scenario.hpp) read back frame by frame by a parser written apart from the
// generator: the same seed streams the same bytes; every frame is Ethernet/IPv4/UDP between one
// resolver and a client of the allowed ranges; names only under .example (and the reverse zone of
// 192.0.2.0/24); every query is answered once, later, within the latency cap; NXDOMAIN carries the
// zone's SOA; answers carry addresses of the documentation ranges; the covert pair's realised
// lookups per org are those of detection spec 5.1/5.2 for several seeds; libpcap reads the written
// capture at nanosecond precision.
#include "gen/scenario.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <pcap/pcap.h>

#include <catch2/catch.hpp>

#include "gen/pcap_writer.hpp"

namespace {

constexpr std::int64_t kOriginNs = 1'459'728'000LL * 1'000'000'000;  // 2016-04-04T00:00:00Z
constexpr std::int64_t kMinuteNs = 60LL * 1'000'000'000;             // one logical day

std::uint32_t ip_at(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24U) | (std::uint32_t{p[1]} << 16U) | (std::uint32_t{p[2]} << 8U) |
         std::uint32_t{p[3]};
}

unsigned u16_at(const std::uint8_t* p) {
  return (unsigned{p[0]} << 8U) | p[1];
}

bool in_prefix(std::uint32_t ip, std::uint32_t net, unsigned bits) {
  return (ip >> (32U - bits)) == (net >> (32U - bits));
}

constexpr std::uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return (a << 24U) | (b << 16U) | (c << 8U) | d;
}

// A name at `at` of the DNS message (compression pointers followed); `at` moves past it.
std::string read_name(const std::uint8_t* dns, std::size_t len, std::size_t& at) {
  std::string name;
  std::size_t pos = at;
  bool jumped = false;
  for (int hops = 0; hops < 32 && pos < len; ++hops) {
    const unsigned l = dns[pos];
    if ((l & 0xC0U) == 0xC0U) {
      if (!jumped) {
        at = pos + 2;
      }
      jumped = true;
      pos = ((l & 0x3FU) << 8U) | dns[pos + 1];
      continue;
    }
    if (l == 0) {
      if (!jumped) {
        at = pos + 1;
      }
      return name;
    }
    if (!name.empty()) {
      name += '.';
    }
    name.append(reinterpret_cast<const char*>(dns + pos + 1), l);
    pos += 1 + l;
  }
  FAIL("bad name");
  return name;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct Pending {
  std::int64_t ts;
  std::string qname;
  unsigned qtype;
};

// What a full pass over the stream found.
struct Pass {
  std::uint64_t frames = 0;
  std::uint64_t hash = 0xCBF29CE484222325ULL;  // FNV-1a of timestamps and bytes
  std::vector<std::string> problems;
  // Covert name: successful lookups per org and per logical day (A, B, others), failures.
  std::map<int, std::array<int, 3>> covert_ok_by_day;
  std::array<int, 3> covert_ok{};
  std::array<int, 2> covert_fail{};
  std::uint64_t nxdomain = 0;
};

void problem(Pass& p, const std::string& what) {
  if (p.problems.size() < 20) {
    p.problems.push_back(what);
  }
}

// FNV-1a of every frame's timestamp and bytes, from the start of the stream.
std::uint64_t hash_stream(dnsmon::gen::ScenarioA& s) {
  std::uint64_t hash = 0xCBF29CE484222325ULL;
  dnsmon::gen::ScenarioFrame f;
  s.rewind();
  while (s.next(f)) {
    for (unsigned i = 0; i < 8; ++i) {
      hash =
          (hash ^ ((static_cast<std::uint64_t>(f.ts_ns) >> (8U * i)) & 0xFFU)) * 0x100000001B3ULL;
    }
    for (std::size_t i = 0; i < f.len; ++i) {
      hash = (hash ^ f.data[i]) * 0x100000001B3ULL;
    }
  }
  return hash;
}

Pass check_stream(dnsmon::gen::ScenarioA& s) {
  Pass pass;
  std::map<std::tuple<std::uint32_t, unsigned, unsigned>, Pending> pending;
  const std::uint32_t resolver = ip4(198, 18, 255, 53);
  std::int64_t last_ts = 0;
  dnsmon::gen::ScenarioFrame f;
  s.rewind();
  while (s.next(f)) {
    ++pass.frames;
    for (unsigned i = 0; i < 8; ++i) {
      pass.hash = (pass.hash ^ ((static_cast<std::uint64_t>(f.ts_ns) >> (8U * i)) & 0xFFU)) *
                  0x100000001B3ULL;
    }
    for (std::size_t i = 0; i < f.len; ++i) {
      pass.hash = (pass.hash ^ f.data[i]) * 0x100000001B3ULL;
    }
    if (f.ts_ns < last_ts) {
      problem(pass, "frames out of time order");
    }
    last_ts = f.ts_ns;
    const std::uint8_t* d = f.data;
    if (f.len < 54 || u16_at(d + 12) != 0x0800 || d[14] != 0x45 || d[23] != 17 ||
        u16_at(d + 16) != f.len - 14 || u16_at(d + 38) != f.len - 34) {
      problem(pass, "not Ethernet/IPv4/UDP of the frame's length");
      continue;
    }
    const std::uint32_t src = ip_at(d + 26);
    const std::uint32_t dst = ip_at(d + 30);
    const unsigned sport = u16_at(d + 34);
    const unsigned dport = u16_at(d + 36);
    const std::uint8_t* dns = d + 42;
    const std::size_t len = f.len - 42;
    const unsigned flags = u16_at(dns + 2);
    const bool response = (flags & 0x8000U) != 0;
    const std::uint32_t client = response ? dst : src;
    if ((response ? src : dst) != resolver || (response ? sport : dport) != 53) {
      problem(pass, "not to or from the resolver's port 53");
    }
    const bool allowed =
        in_prefix(client, ip4(198, 18, 0, 0), 15) || in_prefix(client, ip4(192, 0, 2, 0), 24) ||
        in_prefix(client, ip4(198, 51, 100, 0), 24) || in_prefix(client, ip4(203, 0, 113, 0), 24);
    if (!allowed) {
      problem(pass, "client outside the scenario's ranges");
    }
    if (u16_at(dns + 4) != 1) {
      problem(pass, "not one question");
      continue;
    }
    std::size_t at = 12;
    const std::string qname = read_name(dns, len, at);
    const unsigned qtype = u16_at(dns + at);
    at += 4;
    if (!ends_with(qname, ".example") && !ends_with(qname, ".2.0.192.in-addr.arpa")) {
      problem(pass, "name outside .example: " + qname);
    }
    const auto key = std::make_tuple(client, response ? dport : sport, u16_at(dns));
    if (!response) {
      if ((flags & 0x0100U) == 0 || u16_at(dns + 6) != 0) {
        problem(pass, "query without RD or with answers");
      }
      if (!pending.emplace(key, Pending{f.ts_ns, qname, qtype}).second) {
        problem(pass, "a second query with a pending query's client, port and ID");
      }
      continue;
    }
    const auto it = pending.find(key);
    if (it == pending.end()) {
      problem(pass, "response without its query: " + qname);
      continue;
    }
    // Latency at most 400 ms of logical time, i.e. 400 ms / 1440 of capture time.
    if (it->second.qname != qname || it->second.qtype != qtype || f.ts_ns < it->second.ts ||
        f.ts_ns - it->second.ts > 400'000'000 / 1440 + 1) {
      problem(pass, "response does not fit its query: " + qname);
    }
    pending.erase(it);
    if ((flags & 0x0180U) != 0x0180U) {
      problem(pass, "response without RD and RA");
    }
    const unsigned rcode = flags & 0xFU;
    const unsigned an = u16_at(dns + 6);
    const unsigned ns = u16_at(dns + 8);
    if (rcode == 3) {
      ++pass.nxdomain;
      if (an != 0 || ns != 1) {
        problem(pass, "NXDOMAIN without exactly its SOA: " + qname);
      } else {
        const std::string owner = read_name(dns, len, at);
        if (u16_at(dns + at) != 6 || !ends_with(qname, "." + owner)) {
          problem(pass, "NXDOMAIN's authority is not the SOA of a zone above " + qname);
        }
      }
    } else if (rcode == 0) {
      if (an != 1) {
        problem(pass, "NOERROR without one answer: " + qname);
      } else {
        read_name(dns, len, at);
        const unsigned type = u16_at(dns + at);
        const unsigned rdlen = u16_at(dns + at + 8);
        const std::uint8_t* rdata = dns + at + 10;
        if (type != qtype || at + 10 + rdlen != len) {
          problem(pass, "answer not of the asked type or not the message's end: " + qname);
        } else if (type == 1 && (rdlen != 4 || !in_prefix(ip_at(rdata), ip4(192, 0, 2, 0), 24))) {
          problem(pass, "A outside 192.0.2.0/24: " + qname);
        } else if (type == 28 &&
                   (rdlen != 16 || ip_at(rdata) != 0x20010DB8U || u16_at(rdata + 4) != 0xFFFFU)) {
          problem(pass, "AAAA outside 2001:db8:ffff::/48: " + qname);
        } else if (type == 12 || type == 15) {
          std::size_t r = at + 10 + (type == 15 ? 2 : 0);
          const std::string target = read_name(dns, len, r);
          if (!ends_with(target, ".example")) {
            problem(pass, "PTR/MX target outside .example: " + target);
          }
        }
      }
    } else if (rcode != 2) {
      problem(pass, "rcode other than NOERROR, NXDOMAIN, SERVFAIL");
    }
    if (qname == "mail1.hotel-promo-mailer.example") {
      const bool a = in_prefix(client, ip4(203, 0, 113, 0), 24);
      const bool b = in_prefix(client, ip4(198, 51, 100, 0), 24);
      const int who = a ? 0 : b ? 1 : 2;
      if (rcode == 0) {
        ++pass.covert_ok[static_cast<std::size_t>(who)];
        ++pass.covert_ok_by_day[static_cast<int>((f.ts_ns - kOriginNs) / kMinuteNs)]
                               [static_cast<std::size_t>(who)];
      } else if (who < 2) {
        ++pass.covert_fail[static_cast<std::size_t>(who)];
      }
    }
  }
  if (!pending.empty()) {
    problem(pass, std::to_string(pending.size()) + " queries never answered");
  }
  return pass;
}

// Scenario day (0 = 2016-04-04) of a 2016 date.
int day_of(int month, int mday) {
  static constexpr std::array<int, 12> kBefore{0,   31,  60,  91,  121, 152,
                                               182, 213, 244, 274, 305, 335};
  return kBefore[static_cast<std::size_t>(month - 1)] + mday - 1 - (kBefore[3] + 3);
}

}  // namespace

TEST_CASE("scenario A: every frame well formed, every query answered, names and addresses in range",
          "[scenario]") {
  dnsmon::gen::ScenarioA s(dnsmon::gen::ScenarioA::kDefaultSeed);
  const Pass pass = check_stream(s);
  for (const auto& p : pass.problems) {
    UNSCOPED_INFO(p);
  }
  CHECK(pass.problems.empty());
  CHECK(pass.frames == s.summary().packets);
  CHECK(pass.frames == 2 * s.summary().queries);
  // The budget of detection spec 5.2: about 0.95 M packets.
  CHECK(pass.frames > 900'000);
  CHECK(pass.frames < 1'000'000);
  CHECK(pass.nxdomain > 0);

  // The covert pair as counted from the frames agrees with the summary.
  CHECK(pass.covert_ok[0] == static_cast<int>(s.summary().covert_success_a));
  CHECK(pass.covert_ok[1] == static_cast<int>(s.summary().covert_success_b));
  CHECK(pass.covert_ok[2] == static_cast<int>(s.summary().covert_success_others) + 6);  // history
  CHECK(pass.covert_fail[0] == 45);
  CHECK(pass.covert_fail[1] == 3);

  // History on days 1, 3, 6, 8, 10, 13; dormant from Apr 18 until the awakening on May 4.
  const int awake = day_of(5, 4);
  REQUIRE(awake == 30);
  for (const auto& [day, c] : pass.covert_ok_by_day) {
    if (day < awake) {
      CHECK((day == 1 || day == 3 || day == 6 || day == 8 || day == 10 || day == 13));
      CHECK(c[0] + c[1] == 0);
    }
    CHECK(c[1] <= 30);  // org B's cap (org B has one host: no pair repeats)
  }
  // At least 5 events of org A on the awakening day (pair repeats may add to them), and at
  // least 12 lookups on at least 3 distinct days of the first 7.
  const auto awake_it = pass.covert_ok_by_day.find(awake);
  REQUIRE(awake_it != pass.covert_ok_by_day.end());
  CHECK(awake_it->second[0] >= 5);
  int first7 = 0;
  int days7 = 0;
  for (int d = awake; d < awake + 7; ++d) {
    const auto it = pass.covert_ok_by_day.find(d);
    if (it != pass.covert_ok_by_day.end() && it->second[0] + it->second[1] > 0) {
      first7 += it->second[0] + it->second[1];
      ++days7;
    }
  }
  CHECK(first7 >= 12);
  CHECK(days7 >= 3);
  // Nothing successful on the gap days.
  for (const int gap :
       {day_of(7, 23), day_of(7, 24), day_of(8, 9), day_of(8, 17), day_of(9, 13), day_of(9, 20)}) {
    const auto it = pass.covert_ok_by_day.find(gap);
    CHECK((it == pass.covert_ok_by_day.end() || it->second[0] + it->second[1] == 0));
  }
}

TEST_CASE("scenario A: the same seed streams the same bytes, another seed other bytes",
          "[scenario]") {
  dnsmon::gen::ScenarioA a(7);
  dnsmon::gen::ScenarioA b(7);
  dnsmon::gen::ScenarioA c(8);
  const Pass pa = check_stream(a);
  const Pass pc = check_stream(c);
  CHECK(pa.problems.empty());
  CHECK(pc.problems.empty());  // another seed, the same structure
  CHECK(hash_stream(b) == pa.hash);
  CHECK(pa.hash != pc.hash);
  CHECK(a.truth_json() == b.truth_json());
  CHECK(a.config_yaml() == b.config_yaml());
  CHECK(a.truth_json() != c.truth_json());
  // rewind() starts the same stream again.
  CHECK(hash_stream(a) == pa.hash);
}

TEST_CASE("scenario A: the covert pair's realised lookups per org for four seeds", "[scenario]") {
  for (const std::uint64_t seed : {20160504ULL, 1ULL, 42ULL, 987654321ULL}) {
    const dnsmon::gen::ScenarioA s(seed);
    const auto& r = s.summary();
    const auto total = r.covert_success_a + r.covert_success_b + r.covert_success_others;
    UNSCOPED_INFO("seed " << seed << ": successful " << total << " (A " << r.covert_success_a
                          << ", B " << r.covert_success_b << ", others " << r.covert_success_others
                          << "), failing A " << r.covert_fail_a << ", B " << r.covert_fail_b);
    // Org A: round(2820 / 1.35) = 2089 events plus Binomial(2089, 0.35) pair repeats
    // (mean 2820, sd 22); org B: exactly 714; others exactly 36 (detection spec 5.1 step 5).
    CHECK(r.covert_success_a >= 2820 - 90);
    CHECK(r.covert_success_a <= 2820 + 90);
    CHECK(r.covert_success_b == 714);
    CHECK(r.covert_success_others == 36);
    CHECK(r.covert_fail_a == 45);
    CHECK(r.covert_fail_b == 3);
    const double a = static_cast<double>(r.covert_success_a) / static_cast<double>(total);
    const double b = static_cast<double>(r.covert_success_b) / static_cast<double>(total);
    CHECK(a > 0.77);
    CHECK(a < 0.81);
    CHECK(b > 0.19);
    CHECK(b < 0.21);
    CHECK(a + b > 0.985);
  }
}

TEST_CASE("scenario A: libpcap reads the written capture at nanosecond precision", "[scenario]") {
  dnsmon::gen::ScenarioA s(3);
  const auto path = std::filesystem::temp_directory_path() /
                    ("dnsmon_scenario_" + std::to_string(::getpid()) + ".pcap");
  std::FILE* file = std::fopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  std::vector<std::int64_t> stamps;
  {
    dnsmon::gen::PcapWriter w(file, dnsmon::gen::PcapWriter::Precision::Nano);
    dnsmon::gen::ScenarioFrame f;
    while (s.next(f)) {
      w.frame_ns(f.ts_ns, f.data, f.len);
      stamps.push_back(f.ts_ns);
    }
  }
  REQUIRE(std::fclose(file) == 0);
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err.data());
  REQUIRE(p != nullptr);
  CHECK(pcap_datalink(p) == DLT_EN10MB);
  CHECK(pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO);
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  std::size_t i = 0;
  std::size_t mismatched = 0;
  while (pcap_next_ex(p, &h, &data) == 1) {
    const std::int64_t ts = static_cast<std::int64_t>(h->ts.tv_sec) * 1'000'000'000 + h->ts.tv_usec;
    if (i >= stamps.size() || ts != stamps[i] || h->caplen != h->len) {
      ++mismatched;
    }
    ++i;
  }
  pcap_close(p);
  std::filesystem::remove(path);
  CHECK(i == stamps.size());
  CHECK(mismatched == 0);
  // 196 logical days at 1440:1 are 196 minutes of capture time, from 2016-04-04T00:00:00Z.
  CHECK(stamps.front() == s.summary().first_ts_ns);
  CHECK(stamps.back() == s.summary().last_ts_ns);
  CHECK(stamps.front() >= kOriginNs);
  CHECK(stamps.back() < kOriginNs + 196 * kMinuteNs);
  CHECK(stamps.back() > kOriginNs + 195 * kMinuteNs);
}
