// The simple profile. Its output for a given seed is part of the contract (the embedded demo and
// tests depend on it): do not change what it writes.
#include "gen/simple.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gen/checksum.hpp"
#include "gen/facts.hpp"
#include "gen/mixed_case.hpp"
#include "gen/pcap_writer.hpp"
#include "gen/profile.hpp"
#include "gen/wire.hpp"

namespace dnsmon::gen {
namespace {

class Bytes : public BigEndian<Bytes> {
 public:
  void u8(unsigned v) { b_.push_back(static_cast<std::uint8_t>(v)); }

  void raw(const std::uint8_t* p, std::size_t n) { b_.insert(b_.end(), p, p + n); }

  std::vector<std::uint8_t>& data() { return b_; }

  [[nodiscard]] std::size_t size() const { return b_.size(); }

  void put16(std::size_t at, unsigned v) {
    b_[at] = static_cast<std::uint8_t>(v >> 8U);
    b_[at + 1] = static_cast<std::uint8_t>(v & 0xFFU);
  }

 private:
  std::vector<std::uint8_t> b_;
};

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
    f.ipv4_udp_start(udp_len);
    f.raw(src.addr.data(), 4);
    f.raw(dst.addr.data(), 4);
    f.put16(ip_at + 10, fold(sum16(f.data().data() + ip_at, 20)));
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

}  // namespace

std::uint64_t run_simple(const Options& o, PcapWriter& out, FactsSink* truth) {
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
      out.frame(ts_us, bytes.data(), bytes.size());
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

}  // namespace dnsmon::gen
