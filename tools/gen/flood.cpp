// The flood profile (the top of tools/gen_pcap.cpp describes it). Frames are built in place in one
// buffer and written straight away; the only state is the background population and the responses
// still to be sent (a few thousand at the default rate), so memory stays flat however many frames
// are asked for.
#include "gen/flood.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gen/checksum.hpp"
#include "gen/mixed_case.hpp"
#include "gen/population.hpp"
#include "gen/random.hpp"
#include "gen/wire.hpp"

namespace dnsmon::gen {
namespace {

constexpr std::string_view kFloodDomain = "victim-flood.co.uk";

class FloodGenerator final : public Generator {
 public:
  FloodGenerator(const Options& o, PcapWriter& out, FactsSink* truth)
      : o_(o),
        writer_(out),
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

  std::uint64_t run() override {
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
  static constexpr std::size_t kRecordHeader = PcapWriter::kRecordHeader;
  static constexpr std::size_t kDnsAt = 14 + 20 + 8;  // Ethernet, IPv4, UDP
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
  struct Writer : BigEndian<Writer> {
    explicit Writer(std::uint8_t* at) : p(at) {}

    std::uint8_t* p;
    std::size_t n = 0;

    void u8(unsigned v) { p[n++] = static_cast<std::uint8_t>(v); }

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

  // The records go to the writer in large writes rather than one frame at a time, each laid out
  // as PcapWriter::frame() would write it.
  void flush() {
    if (used_ != 0) {
      writer_.records(out_.data(), used_);
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
    PcapWriter::record_header(out_.data() + used_, t, len);
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
  PcapWriter& writer_;
  FactsSink* truth_;
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

std::unique_ptr<Generator> make_flood(const Options& o, PcapWriter& out, FactsSink* truth) {
  return std::make_unique<FloodGenerator>(o, out, truth);
}

}  // namespace dnsmon::gen
