#include "gen/truth.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dnsmon::gen {
namespace {

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

// Accumulates FrameFacts and writes the JSON summary. Its memory is bounded by the distinct
// clients, names and latencies it has seen and the exchanges still waiting for their response,
// not by the number of frames: flood names, unique by construction, are counted without being
// kept.
class Summary final : public Truth {
 public:
  void add(const FrameFacts& f, std::int64_t ts_us) override {
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

  [[nodiscard]] bool write(const std::string& path, const Options& o,
                           std::string_view profile) const override {
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

    static constexpr std::array<Bound, 35> kBounds{
        {{10'000, "1e-05"},    {15'000, "1.5e-05"},   {20'000, "2e-05"},    {30'000, "3e-05"},
         {50'000, "5e-05"},    {70'000, "7e-05"},     {100'000, "0.0001"},  {150'000, "0.00015"},
         {200'000, "0.0002"},  {300'000, "0.0003"},   {500'000, "0.0005"},  {700'000, "0.0007"},
         {1'000'000, "0.001"}, {1'500'000, "0.0015"}, {2'000'000, "0.002"}, {3'000'000, "0.003"},
         {5'000'000, "0.005"}, {7'000'000, "0.007"},  {10'000'000, "0.01"}, {15'000'000, "0.015"},
         {20'000'000, "0.02"}, {30'000'000, "0.03"},  {50'000'000, "0.05"}, {70'000'000, "0.07"},
         {100'000'000, "0.1"}, {150'000'000, "0.15"}, {200'000'000, "0.2"}, {300'000'000, "0.3"},
         {500'000'000, "0.5"}, {700'000'000, "0.7"},  {1'000'000'000, "1"}, {1'500'000'000, "1.5"},
         {2'000'000'000, "2"}, {3'000'000'000, "3"},  {5'000'000'000, "5"}}};
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

}  // namespace

std::unique_ptr<Truth> make_truth() {
  return std::make_unique<Summary>();
}

}  // namespace dnsmon::gen
