// gen_pcap: writes a synthetic DNS capture (queries and their responses) for demos, tests and
// benchmarks. Deterministic for a given seed. Addresses come from the ranges reserved for
// documentation and benchmarking (198.18.0.0/15, 2001:db8::/32), so replaying the file sends
// nothing anywhere real.
//
//   gen_pcap --out FILE [--packets N] [--seed S] [--rate PPS] [--ipv6 PCT] [--vlan PCT]
//            [--edns PCT] [--nxdomain PCT] [--cpp-out FILE.cpp]
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <pcap/pcap.h>

namespace {

struct Options {
  std::string out;
  std::string cpp_out;
  std::uint64_t packets = 2000;
  std::uint64_t seed = 1;
  double rate = 1000;  // frames per second of packet time
  unsigned ipv6_pct = 10;
  unsigned vlan_pct = 7;
  unsigned edns_pct = 40;
  unsigned nxdomain_pct = 8;
  unsigned servfail_pct = 2;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "gen_pcap: %s\nusage: gen_pcap --out FILE [--packets N] [--seed S] [--rate PPS] "
               "[--ipv6 PCT] [--vlan PCT] [--edns PCT] [--nxdomain PCT] [--cpp-out FILE.cpp]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
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
    auto pct = [&]() -> unsigned {
      const auto n = number();
      if (n > 100) {
        usage("percentages go from 0 to 100");
      }
      return static_cast<unsigned>(n);
    };
    if (a == "--out") {
      o.out = value();
    } else if (a == "--cpp-out") {
      o.cpp_out = value();
    } else if (a == "--packets") {
      o.packets = number();
    } else if (a == "--seed") {
      o.seed = number();
    } else if (a == "--rate") {
      o.rate = static_cast<double>(number());
      if (o.rate <= 0) {
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
    } else if (a == "--help" || a == "-h") {
      usage("help");
    } else {
      usage(("unknown option " + std::string(a)).c_str());
    }
  }
  if (o.out.empty()) {
    usage("--out is required");
  }
  return o;
}

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

  std::size_t size() const { return b_.size(); }

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

const std::array<std::string_view, 12> kDomains{
    "example.com",     "example.net",      "example.org",        "mail.example.com",
    "www.example.com", "cdn.example.net",  "api.example.org",    "example.test",
    "ns1.example.net", "shop.example.com", "static.example.org", "login.example.com"};

struct QType {
  std::uint16_t code;
  unsigned weight;
};

const std::array<QType, 8> kQTypes{
    {{1, 55}, {28, 25}, {65, 6}, {15, 4}, {16, 3}, {12, 4}, {33, 2}, {6, 1}}};

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::mt19937_64 rng(o.seed);
  auto roll = [&](unsigned pct) { return rng() % 100 < pct; };

  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_MICRO);
  pcap_dumper_t* dump = pcap_dump_open(dead, o.out.c_str());
  if (dump == nullptr) {
    std::fprintf(stderr, "gen_pcap: cannot write %s: %s\n", o.out.c_str(), pcap_geterr(dead));
    return 1;
  }

  unsigned weight_total = 0;
  for (const auto& q : kQTypes) {
    weight_total += q.weight;
  }
  const std::int64_t start_us = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
  const double gap_us = 1e6 / o.rate;
  std::uint64_t written = 0;
  std::uint16_t next_id = 1;
  while (written < o.packets) {
    Endpoint client;
    Endpoint server;
    const bool v6 = roll(o.ipv6_pct);
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
    const int vlan = roll(o.vlan_pct) ? 100 : -1;
    const auto sport = static_cast<std::uint16_t>(1024 + rng() % 64000);
    // Zipf-like choice of the name: low indices far more often.
    const std::size_t di = std::min<std::size_t>(
        kDomains.size() - 1,
        static_cast<std::size_t>(std::pow(static_cast<double>(rng() % 10000) / 10000.0, 2.5) *
                                 kDomains.size()));
    unsigned pick = static_cast<unsigned>(rng() % weight_total);
    std::uint16_t qtype = 1;
    for (const auto& q : kQTypes) {
      if (pick < q.weight) {
        qtype = q.code;
        break;
      }
      pick -= q.weight;
    }
    const std::uint16_t id = next_id++;
    const bool edns = roll(o.edns_pct);
    const unsigned fate = static_cast<unsigned>(rng() % 100);
    const unsigned rcode = fate < o.nxdomain_pct                    ? 3
                           : fate < o.nxdomain_pct + o.servfail_pct ? 2
                                                                    : 0;

    auto message = [&](bool response) {
      Bytes d;
      d.u16(id);
      d.u16(response ? (0x8180U | rcode) : 0x0100U);
      const bool answer = response && rcode == 0 && (qtype == 1 || qtype == 28);
      d.u16(1);
      d.u16(answer ? 1 : 0);
      d.u16(0);
      d.u16(edns ? 1 : 0);
      d.name(kDomains[di]);
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

    for (int leg = 0; leg < 2 && written < o.packets; ++leg) {
      const bool response = leg == 1;
      const auto dns = message(response);
      const auto bytes = response ? frame(server, client, 53, sport, dns, vlan)
                                  : frame(client, server, sport, 53, dns, vlan);
      const auto ts_us =
          start_us + static_cast<std::int64_t>(static_cast<double>(written) * gap_us);
      pcap_pkthdr h{};
      h.ts.tv_sec = ts_us / 1'000'000;
      h.ts.tv_usec = ts_us % 1'000'000;
      h.caplen = h.len = static_cast<bpf_u_int32>(bytes.size());
      pcap_dump(reinterpret_cast<u_char*>(dump), &h, bytes.data());  // NOLINT: libpcap API
      ++written;
    }
  }
  pcap_dump_close(dump);
  pcap_close(dead);

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
                 static_cast<unsigned long long>(o.seed),
                 static_cast<unsigned long long>(o.packets));
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
