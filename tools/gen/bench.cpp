// The bench profile (the top of tools/gen_pcap.cpp describes it).
#include "gen/bench.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gen/checksum.hpp"
#include "gen/mixed_case.hpp"
#include "gen/population.hpp"
#include "gen/random.hpp"
#include "gen/wire.hpp"

namespace dnsmon::gen {
namespace {

// Registrars' name servers and CDNs the answers point at (synthetic names).
constexpr std::array<std::string_view, 4> kCdns{"edgecache.net", "fastpath-cdn.net",
                                                "cloudfront-sim.com", "akam-sim.net"};
constexpr std::array<std::string_view, 4> kDnsHosts{"dns-host.net", "nsone-sim.net",
                                                    "ultradns-sim.org", "domaincontrol-sim.com"};

// Builds a DNS message with RFC 1035 name compression (every suffix written becomes a target).
class Message : public BigEndian<Message> {
 public:
  void u8(unsigned v) { b_[n_++] = static_cast<std::uint8_t>(v); }

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

class BenchGenerator final : public Generator {
 public:
  BenchGenerator(const Options& o, PcapWriter& out, FactsSink* truth)
      : o_(o),
        out_(out),
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

  std::uint64_t run() override {
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
    out_.frame(top.ts_us, top.bytes.data(), top.bytes.size());
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
  PcapWriter& out_;
  FactsSink* truth_;
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

}  // namespace

std::unique_ptr<Generator> make_bench(const Options& o, PcapWriter& out, FactsSink* truth) {
  return std::make_unique<BenchGenerator>(o, out, truth);
}

}  // namespace dnsmon::gen
