// Scenario A's frames: Ethernet, IPv4 and UDP between a client and the resolver, and the DNS
// message of a query (RD) or of its response (RA, the answer records of the name, or the zone's
// SOA in AUTHORITY for NXDOMAIN).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gen/checksum.hpp"
#include "gen/random.hpp"
#include "gen/scenario_model.hpp"
#include "gen/wire.hpp"

namespace dnsmon::gen::scenario {
namespace {

constexpr std::uint16_t kA = 1, kMx = 15, kTxt = 16, kPtr = 12, kAaaa = 28, kNull = 10, kSoa = 6;

class Out : public BigEndian<Out> {
 public:
  explicit Out(std::uint8_t* p) : p_(p) {}

  void u8(unsigned v) { p_[n_++] = static_cast<std::uint8_t>(v); }

  void put16(std::size_t at, unsigned v) {
    p_[at] = static_cast<std::uint8_t>(v >> 8U);
    p_[at + 1] = static_cast<std::uint8_t>(v & 0xFFU);
  }

  [[nodiscard]] std::size_t size() const { return n_; }

  [[nodiscard]] std::uint8_t* data() const { return p_; }

 private:
  std::uint8_t* p_;
  std::size_t n_ = 0;
};

constexpr std::size_t kIpAt = 14, kUdpAt = 34, kDnsAt = 42;

// Ethernet and IPv4 and UDP headers around the DNS message already at kDnsAt.
void headers(Out& f, std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport,
             std::size_t dns_len) {
  Out h(f.data());
  const std::array<std::uint8_t, 12> macs{0x02, 0, 0, 0, 0, 0x53, 0x02, 0, 0, 0, 0, 0x01};
  for (const auto b : macs) {
    h.u8(b);
  }
  h.u16(0x0800);
  const std::size_t udp_len = 8 + dns_len;
  h.ipv4_udp_start(udp_len);
  h.u32(src);
  h.u32(dst);
  h.put16(kIpAt + 10, fold(sum16(f.data() + kIpAt, 20)));
  h.u16(sport);
  h.u16(dport);
  h.u16(static_cast<unsigned>(udp_len));
  h.u16(0);
  // UDP checksum over the pseudo-header (addresses, protocol, length), header and payload.
  std::uint32_t acc = sum16(f.data() + kIpAt + 12, 8);
  acc += 17 + static_cast<std::uint32_t>(udp_len);
  acc = sum16(f.data() + kUdpAt, udp_len, acc);
  std::uint16_t sum = fold(acc);
  h.put16(kUdpAt + 6, sum == 0 ? 0xFFFFU : sum);
}

// The DNS header and question; returns the writer positioned after the question.
void header_question(Out& d, std::uint16_t id, unsigned flags, unsigned an, unsigned ns,
                     const Name& n, std::uint16_t qtype) {
  d.u16(id);
  d.u16(flags);
  d.u16(1);
  d.u16(an);
  d.u16(ns);
  d.u16(0);
  d.name(n.qname);
  d.u16(qtype);
  d.u16(1);
}

constexpr std::string_view kBase32 = "abcdefghijklmnopqrstuvwxyz234567";

}  // namespace

std::size_t query_frame(const Event& e, const Name& n, std::uint16_t port, std::uint16_t id,
                        std::uint8_t* out) {
  Out d(out + kDnsAt);
  header_question(d, id, 0x0100, 0, 0, n, e.qtype);  // RD
  Out f(out);
  headers(f, e.client, kResolver, port, 53, d.size());
  return kDnsAt + d.size();
}

std::size_t response_frame(const Event& e, const Name& n, std::uint16_t port, std::uint16_t id,
                           std::uint8_t* out) {
  Out d(out + kDnsAt);
  const unsigned flags = 0x8180U | e.rcode;  // QR, RD, RA
  const bool answer = e.rcode == 0;
  const bool soa = e.rcode == 3;
  header_question(d, id, flags, answer ? 1 : 0, soa ? 1 : 0, n, e.qtype);
  if (answer) {
    d.u16(0xC00C);  // the question's name
    d.u16(e.qtype);
    d.u16(1);
    d.u32(n.ttl);
    const std::size_t len_at = d.size();
    d.u16(0);
    Rng rng(e.nonce ^ 0x5DEECE66DULL);
    switch (e.qtype) {
      case kA:
        d.u32(n.a4);
        break;
      case kAaaa:
        d.u32(0x20010DB8U);
        d.u32(0xFFFF0000U);
        d.u32(0);
        d.u32(n.a6);
        break;
      case kMx:
        d.u16(10);
        d.name(n.target);
        break;
      case kPtr:
        d.name(n.target);
        break;
      case kTxt:
        if (n.kind == Kind::TxtRandom) {
          d.u8(64);
          for (int i = 0; i < 64; ++i) {
            d.u8(static_cast<unsigned char>(kBase32[rng.below(32)]));
          }
        } else {
          const std::string_view text = n.kind == Kind::TxtHash ? "clean" : "v=spf1 -all";
          d.u8(static_cast<unsigned>(text.size()));
          for (const char c : text) {
            d.u8(static_cast<unsigned char>(c));
          }
        }
        break;
      case kNull:
      default:
        for (int i = 0; i < 16; ++i) {
          d.u8(rng.below(256));
        }
        break;
    }
    d.put16(len_at, static_cast<unsigned>(d.size() - len_at - 2));
  } else if (soa) {
    const std::string& zone = zones()[n.zone];
    d.name(zone);
    d.u16(kSoa);
    d.u16(1);
    d.u32(300);
    const std::size_t len_at = d.size();
    d.u16(0);
    std::string mname = "ns1.";
    mname += zone;
    std::string rname = "hostmaster.";
    rname += zone;
    d.name(mname);
    d.name(rname);
    d.u32(2016040401);  // serial
    d.u32(7200);        // refresh
    d.u32(900);         // retry
    d.u32(1209600);     // expire
    d.u32(300);         // minimum (negative caching TTL)
    d.put16(len_at, static_cast<unsigned>(d.size() - len_at - 2));
  }
  Out f(out);
  headers(f, kResolver, e.client, 53, port, d.size());
  return kDnsAt + d.size();
}

}  // namespace dnsmon::gen::scenario
