// Scenario A: the components' lookup events, their merge into frames, and the sidecars.
// docs/scenarios.md describes the model and each reading of the specification made here.
#include "gen/scenario.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dnsmon/common/civil_time.hpp"

#include "gen/random.hpp"
#include "gen/scenario_model.hpp"

namespace dnsmon::gen {

using scenario::at;
using scenario::Comp;
using scenario::date_of;
using scenario::day_of;
using scenario::Event;
using scenario::instant_of;
using scenario::kDayNs;
using scenario::kDays;
using scenario::Kind;
using scenario::kSecNs;
using scenario::Name;
using scenario::Role;
using scenario::weekday;

namespace scenario {

std::string date_of(int day) {
  const CivilDate date = civil_from_days(kOriginUnix / 86'400 + day);
  std::array<char, 48> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02u", static_cast<int>(date.year), date.month,
                date.day);
  return buf.data();
}

std::string instant_of(std::int64_t logical_ns) {
  const auto day = static_cast<int>(logical_ns / kDayNs);
  std::int64_t rest = logical_ns % kDayNs;
  const std::int64_t ns = rest % kSecNs;
  rest /= kSecNs;
  std::array<char, 48> buf{};
  std::snprintf(buf.data(), buf.size(), "T%02d:%02d:%02d.%09lldZ", static_cast<int>(rest / 3600),
                static_cast<int>(rest / 60 % 60), static_cast<int>(rest % 60),
                static_cast<long long>(ns));
  return date_of(day) + buf.data();
}

}  // namespace scenario

namespace {

constexpr std::uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return (a << 24U) | (b << 16U) | (c << 8U) | d;
}

constexpr std::uint16_t kA = 1, kAaaa = 28, kMx = 15, kTxt = 16, kPtr = 12, kNull = 10;

// Background parameters (5.2).
constexpr int kClients = 2000;
constexpr int kDomains = 15000;
constexpr double kZipf = 1.0;
constexpr int kPersonal = 8;
constexpr double kPersonalShare = 0.25;
constexpr int kWeekdayEvents = 1400;
constexpr double kWeekendFactor = 0.6;
constexpr std::array<double, 24> kHourWeights{.20, .15, .12, .10, .10, .15, .30, .60,
                                              .90, 1,   1,   1,   .95, 1,   1,   .95,
                                              .90, .85, .80, .75, .70, .60, .45, .30};
constexpr std::array<std::string_view, 44> kSyllables{
    "ba", "be", "bo", "ca", "co", "da", "de", "di", "do", "fa", "fe", "ga", "go", "ka", "ke",
    "ko", "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "no", "pa", "pe", "po",
    "ra", "re", "ri", "ro", "sa", "se", "so", "ta", "te", "to", "va", "ve", "za", "zo"};

struct HostLabel {
  std::string_view label;  // "" = the apex
  double weight;
  bool aaaa;  // an AAAA query follows the A query with p = 0.5
};

constexpr std::array<HostLabel, 8> kHostLabels{{{"www", 45, true},
                                                {"", 10, true},
                                                {"api", 12, false},
                                                {"cdn", 10, false},
                                                {"img", 8, false},
                                                {"mail", 5, false},
                                                {"m", 5, true},
                                                {"static", 5, true}}};

// The covert pair (5.2).
constexpr std::string_view kCovertName = "mail1.hotel-promo-mailer.example";
constexpr std::string_view kCovertDomain = "hotel-promo-mailer.example";
constexpr std::array<int, 6> kHistoryDays{1, 3, 6, 8, 10, 13};
constexpr int kAwake = day_of(5, 4);
constexpr int kDeathDay = day_of(9, 23);
constexpr std::int64_t kDeath = at(kDeathDay, 13, 56);
constexpr double kR0 = 3, kR1 = 24;
constexpr int kStepDay = day_of(6, 23);
constexpr double kStepMult = 1.5;
constexpr double kSat = 0.25, kSun = 0.1;
constexpr int kSporadicDays = 28;
constexpr double kZeroProb = 0.4;
constexpr double kGammaK = 2;
constexpr int kOthers = 36;
constexpr std::array<int, 10> kFailA{18, 9, 6, 4, 3, 1, 1, 1, 1, 1};
constexpr int kFailB = 3;

struct Org {
  std::string_view name;
  std::vector<std::uint32_t> hosts;
  int target;
  double pair_p;
  int office_from, office_to;  // UTC hours
  double sess_mean, gap_mean_s;
  int awake_min, cap;
};

const std::vector<Org>& orgs() {
  static const std::vector<Org> o{
      {"A", {ip4(203, 0, 113, 15), ip4(203, 0, 113, 16)}, 2820, 0.35, 6, 15, 3, 45, 5, 90},
      {"B", {ip4(198, 51, 100, 8)}, 714, 0, 13, 22, 2, 60, 0, 30}};
  return o;
}

std::vector<std::pair<int, double>> covert_spikes() {
  std::vector<std::pair<int, double>> s{{day_of(6, 7), 3}};
  for (unsigned d = 18; d <= 21; ++d) {
    s.emplace_back(day_of(7, d), 3);
  }
  for (unsigned d = 25; d <= 28; ++d) {
    s.emplace_back(day_of(7, d), 3);
  }
  s.emplace_back(day_of(9, 21), 2.5);
  s.emplace_back(day_of(9, 22), 2.5);
  return s;
}

std::vector<int> covert_gaps() {
  std::vector<int> g{day_of(7, 23), day_of(7, 24)};
  for (unsigned d = 9; d <= 17; ++d) {
    g.push_back(day_of(8, d));
  }
  for (unsigned d = 13; d <= 20; ++d) {
    g.push_back(day_of(9, d));
  }
  return g;
}

std::vector<int> popular_spikes() {
  std::vector<int> s{day_of(6, 7)};
  for (unsigned d = 18; d <= 21; ++d) {
    s.push_back(day_of(7, d));
  }
  for (unsigned d = 25; d <= 28; ++d) {
    s.push_back(day_of(7, d));
  }
  s.push_back(day_of(9, 26));
  return s;
}

// A vector indexed by day (or by day of the active phase).
template <typename T>
class ByDay {
 public:
  ByDay() = default;

  ByDay(int n, T v) : v_(static_cast<std::size_t>(n), v) {}

  T& operator[](int i) { return v_[static_cast<std::size_t>(i)]; }

  const T& operator[](int i) const { return v_[static_cast<std::size_t>(i)]; }

  [[nodiscard]] const std::vector<T>& vec() const { return v_; }

 private:
  std::vector<T> v_;
};

std::uint64_t stream_seed(std::uint64_t seed, std::string_view component) {
  return seed ^ fnv1a64(component);
}

bool internal(std::uint32_t ip) {
  return (ip >> 17U) == (ip4(198, 18, 0, 0) >> 17U);
}

std::string ip_text(std::uint32_t ip) {
  return std::to_string(ip >> 24U) + "." + std::to_string((ip >> 16U) & 0xFFU) + "." +
         std::to_string((ip >> 8U) & 0xFFU) + "." + std::to_string(ip & 0xFFU);
}

// The querier organisation of 4.0: internal hosts each their own, others by /24.
std::string org_of(std::uint32_t ip) {
  if (internal(ip)) {
    return ip_text(ip);
  }
  return ip_text(ip & 0xFFFFFF00U) + "/24";
}

std::string fixed(double v, int digits) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.*f", digits, v);
  return buf.data();
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

}  // namespace

struct ScenarioA::Impl {
  std::uint64_t seed;
  std::vector<Name> names;
  std::unordered_map<std::string, std::uint32_t> name_ids;
  std::vector<Event> events;
  ScenarioSummary sum;

  // Background population.
  std::vector<std::string> domains;  // by rank
  std::unordered_set<std::string> taken;
  std::vector<std::uint32_t> client_ip;
  Cdf client_cdf;
  std::vector<std::array<std::uint32_t, kPersonal>> personal;
  Cdf zipf;
  Cdf zipf_top;
  Cdf hour_cdf;
  Cdf label_cdf;

  // Realised facts for the truth file.
  ByDay<std::array<int, 2>> org_day_counts;  // org A/B events per day (without pair repeats)
  ByDay<double> day_weight;
  std::map<std::string, std::int64_t> first_seen;
  std::vector<std::pair<std::int64_t, int>> tunnel_bursts;
  std::array<std::uint64_t, static_cast<std::size_t>(Comp::Count)> comp_queries{};

  // Frame iteration.
  struct Pending {
    std::int64_t t;
    std::uint64_t seq;
    std::uint32_t event;
    std::uint16_t port, id;

    bool operator>(const Pending& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };

  std::size_t cursor = 0;
  std::uint64_t seq = 0;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> pending;
  std::array<std::uint8_t, scenario::kMaxFrame> buf{};

  explicit Impl(std::uint64_t s) : seed(s) {}

  std::uint32_t name_id(const std::string& qname, std::uint32_t a4, std::uint32_t ttl,
                        Kind kind = Kind::Plain, std::uint8_t zone = 0,
                        const std::string& target = {}) {
    const auto it = name_ids.find(qname);
    if (it != name_ids.end()) {  // e.g. a domain's apex asked for A, then for MX
      Name& known = names[it->second];
      if (known.target.empty()) {
        known.target = target;
      }
      return it->second;
    }
    Name n;
    n.qname = qname;
    n.target = target;
    n.a4 = a4;
    n.a6 = static_cast<std::uint16_t>((fnv1a64(qname) & 0xFFFEU) + 1);
    n.ttl = ttl;
    n.zone = zone;
    n.kind = kind;
    names.push_back(std::move(n));
    const auto id = static_cast<std::uint32_t>(names.size() - 1);
    name_ids.emplace(qname, id);
    return id;
  }

  // Address and TTL of a registrable domain by its hash (background rule of 5.1).
  static std::uint32_t addr_of(std::string_view domain) {
    return ip4(192, 0, 2, 10 + static_cast<unsigned>(fnv1a64(domain) % 200));
  }

  static std::uint32_t ttl_of(std::string_view domain) {
    const auto h = (fnv1a64(domain) >> 16U) % 100;
    return h < 20 ? 60 : h < 70 ? 300 : 3600;
  }

  std::uint32_t host_name(unsigned label, const std::string& domain) {
    std::string q;
    if (!kHostLabels[label].label.empty()) {
      q = kHostLabels[label].label;
      q += '.';
    }
    q += domain;
    return name_id(q, addr_of(domain), ttl_of(domain));
  }

  // Draws the event's nonce from rng after its arguments are evaluated. Callers pass at most one
  // argument that draws from rng: the order in which a call's arguments are evaluated is
  // unspecified, and the stream must not depend on the compiler.
  void add(Comp comp, Rng& rng, std::int64_t t, std::uint32_t client, std::uint32_t name,
           std::uint16_t qtype = kA, std::uint8_t rcode = 0, Role role = Role::None) {
    Event e;
    e.t = t;
    e.nonce = rng.next();
    e.client = client;
    e.name = name;
    e.qtype = qtype;
    e.rcode = rcode;
    e.comp = comp;
    e.role = role;
    events.push_back(e);
  }

  std::int64_t in_hour_weights(Rng& rng, int day) const {
    const auto hour = static_cast<int>(hour_cdf.sample(rng));
    return at(day, hour) + static_cast<std::int64_t>(rng.unit() * 3600.0 * kSecNs);
  }

  static std::int64_t uniform(Rng& rng, std::int64_t from, std::int64_t to) {
    return from + static_cast<std::int64_t>(rng.unit() * static_cast<double>(to - from));
  }

  static double weekday_factor(int day) { return weekday(day) >= 5 ? kWeekendFactor : 1.0; }

  void population();
  void background();
  void covert();
  void successor_and_leak();
  void decoys();
  void finish();
  void span();
};

void ScenarioA::Impl::population() {
  Rng rng(stream_seed(seed, "domains"));
  domains.reserve(kDomains);
  for (int r = 0; r < kDomains; ++r) {
    for (;;) {
      const int syllables = rng.chance(50) ? 2 : 3;
      std::string label;
      for (int i = 0; i < syllables; ++i) {
        label += kSyllables[rng.below(kSyllables.size())];
      }
      std::string domain = label + ".example";
      if (taken.insert(domain).second) {
        domains.push_back(std::move(domain));
        break;
      }
    }
  }
  zipf = Cdf::zipf(kDomains, kZipf);
  zipf_top = Cdf::zipf(1000, kZipf);
  hour_cdf = Cdf(std::vector<double>(kHourWeights.begin(), kHourWeights.end()));
  std::vector<double> lw;
  lw.reserve(kHostLabels.size());
  for (const auto& l : kHostLabels) {
    lw.push_back(l.weight);
  }
  label_cdf = Cdf(lw);

  Rng crng(stream_seed(seed, "clients"));
  std::vector<double> weights;
  for (int i = 0; i < kClients; ++i) {
    client_ip.push_back(
        ip4(198, 18, static_cast<unsigned>(i / 250), static_cast<unsigned>(i % 250 + 1)));
    weights.push_back(std::exp(scenario::normal(crng)));
    std::array<std::uint32_t, kPersonal> p{};
    for (auto& d : p) {
      d = kDomains / 5 + crng.below(kDomains - kDomains / 5);
    }
    personal.push_back(p);
  }
  client_cdf = Cdf(weights);
}

void ScenarioA::Impl::background() {
  Rng rng(stream_seed(seed, "background"));
  const std::array<std::uint32_t, 3> gateways{ip4(198, 18, 0, 25), ip4(198, 18, 0, 26),
                                              ip4(198, 18, 0, 27)};
  for (int day = 0; day < kDays; ++day) {
    const auto n = static_cast<int>(std::lround(kWeekdayEvents * weekday_factor(day)));
    for (int i = 0; i < n; ++i) {
      const std::int64_t t = in_hour_weights(rng, day);
      const double u = rng.unit() * 100;
      if (u < 2.0) {  // a typo of a top-1,000 name: NXDOMAIN with the TLD's SOA
        const std::string& base = domains[zipf_top.sample(rng)];
        const std::string label = base.substr(0, base.find('.'));
        std::string typo;
        do {
          std::string l = label;
          if (rng.chance(50)) {
            l.erase(rng.below(static_cast<std::uint32_t>(l.size())), 1);
          } else {
            const auto p = rng.below(static_cast<std::uint32_t>(l.size() - 1));
            std::swap(l[p], l[p + 1]);
          }
          typo = l + ".example";
        } while (taken.count(typo) != 0);  // never a real domain (nor the name it mistypes)
        const unsigned label_i = label_cdf.sample(rng);
        std::string q;
        if (!kHostLabels[label_i].label.empty()) {
          q = std::string(kHostLabels[label_i].label) + ".";
        }
        q += typo;
        add(Comp::Background, rng, t, client_ip[client_cdf.sample(rng)],
            name_id(q, 0, 300, Kind::Plain, 0), kA, 3);
        continue;
      }
      if (u < 3.5) {  // mail gateways: MX, TXT (SPF) or PTR
        const std::uint32_t gw = gateways[rng.below(3)];
        const std::string& d = domains[zipf.sample(rng)];
        std::uint32_t name = 0;
        std::uint16_t qtype = kMx;
        if (u < 2.5) {
          name = name_id(d, addr_of(d), ttl_of(d), Kind::Mx, 0, "mail." + d);
        } else if (u < 3.0) {
          qtype = kTxt;
          name = name_id(d, addr_of(d), ttl_of(d), Kind::TxtSpf, 0, "mail." + d);
        } else {
          qtype = kPtr;
          const std::uint32_t host = 10 + rng.below(200);
          name = name_id(std::to_string(host) + ".2.0.192.in-addr.arpa", 0, 3600, Kind::Ptr, 0,
                         "mail." + d);
        }
        add(Comp::Background, rng, t, gw, name, qtype, rng.chance(0.1) ? 2 : 0);
        continue;
      }
      const std::uint32_t ci = client_cdf.sample(rng);
      const std::string& d = rng.unit() < kPersonalShare
                                 ? domains[personal[ci][rng.below(kPersonal)]]
                                 : domains[zipf.sample(rng)];
      const unsigned label_i = label_cdf.sample(rng);
      const std::uint32_t name = host_name(label_i, d);
      add(Comp::Background, rng, t, client_ip[ci], name, kA, rng.chance(0.1) ? 2 : 0);
      if (kHostLabels[label_i].aaaa && rng.chance(50)) {
        const std::int64_t later = t + static_cast<std::int64_t>((1 + rng.unit() * 19) * 1e6);
        add(Comp::Background, rng, later, client_ip[ci], name, kAaaa, rng.chance(0.1) ? 2 : 0);
      }
    }
  }
}

void ScenarioA::Impl::covert() {
  Rng rng(stream_seed(seed, "covert_pair"));
  const std::uint32_t name =
      name_id(std::string(kCovertName), ip4(192, 0, 2, 25), 600, Kind::Plain, 1);
  // 1. History: one successful lookup on each history day, 09:00–17:00, by a background client.
  for (const int d : kHistoryDays) {
    const std::int64_t t = uniform(rng, at(d, 9), at(d, 17));
    add(Comp::Covert, rng, t, client_ip[rng.below(kClients)], name, kA, 0, Role::History);
  }
  // 3. Day shape over [awake, death] and 4. noise.
  const auto spikes = covert_spikes();
  const auto gaps = covert_gaps();
  day_weight = ByDay<double>(kDays, 0.0);
  for (int d = kAwake; d <= kDeathDay; ++d) {
    double shape = kR0 + (kR1 - kR0) * (d - kAwake) / static_cast<double>(kDeathDay - kAwake);
    if (d >= kStepDay) {
      shape *= kStepMult;
    }
    shape *= weekday(d) == 5 ? kSat : weekday(d) == 6 ? kSun : 1.0;
    for (const auto& [sd, m] : spikes) {
      if (sd == d) {
        shape *= m;
      }
    }
    if (std::find(gaps.begin(), gaps.end(), d) != gaps.end()) {
      shape = 0;
    }
    const bool zero = d > kAwake && d < kAwake + kSporadicDays && rng.unit() < kZeroProb;
    if (zero) {
      shape = 0;
    }
    if (d == kDeathDay) {
      shape *= static_cast<double>(kDeath - at(d, 0)) / static_cast<double>(kDayNs);
    }
    day_weight[d] = shape * scenario::gamma(rng, kGammaK, 1.0 / kGammaK);
  }
  const int span = kDeathDay - kAwake + 1;
  ByDay<double> w(span, 0.0);
  for (int i = 0; i < span; ++i) {
    w[i] = day_weight[kAwake + i];
  }
  const Cdf day_cdf(w.vec());
  org_day_counts = ByDay<std::array<int, 2>>(kDays, {0, 0});

  for (std::size_t oi = 0; oi < orgs().size(); ++oi) {
    const Org& org = orgs()[oi];
    // 5. Exact totals.
    const auto n = static_cast<int>(std::lround(org.target / (1.0 + org.pair_p)));
    ByDay<int> c(span, 0);
    for (int i = 0; i < n; ++i) {
      ++c[static_cast<int>(day_cdf.sample(rng))];
    }
    // Moves one event to day `to` from the largest day outside [0, keep).
    auto take_from_largest = [&](int to, int keep) {
      int best = -1;
      for (int d = keep; d < span; ++d) {
        if (d != to && (best < 0 || c[d] > c[best])) {
          best = d;
        }
      }
      --c[best];
      ++c[to];
    };
    while (c[0] < org.awake_min) {
      take_from_largest(0, 1);
    }
    const int first7 = std::min(7, span);
    auto nonzero7 = [&] {
      int k = 0;
      for (int d = 0; d < first7; ++d) {
        k += c[d] > 0 ? 1 : 0;
      }
      return k;
    };
    while (nonzero7() < 3) {
      int pick = -1;  // the empty day of the first 7 with the largest weight (else the earliest)
      for (int d = 0; d < first7; ++d) {
        if (c[d] == 0 && (pick < 0 || w[d] > w[pick])) {
          pick = d;
        }
      }
      take_from_largest(pick, first7);
    }
    for (;;) {
      int total7 = 0;
      int pick = -1;  // the busiest day of the first 7 receives
      for (int d = 0; d < first7; ++d) {
        total7 += c[d];
        if (c[d] > 0 && (pick < 0 || w[d] > w[pick])) {
          pick = d;
        }
      }
      if (total7 >= 12) {
        break;
      }
      take_from_largest(pick, first7);
    }
    // Cap each day, overflow redistributed by weight over the days below the cap.
    for (int round = 0; round < 100; ++round) {
      int overflow = 0;
      ByDay<double> room(span, 0.0);
      for (int d = 0; d < span; ++d) {
        if (c[d] > org.cap) {
          overflow += c[d] - org.cap;
          c[d] = org.cap;
        }
        room[d] = c[d] < org.cap ? w[d] : 0.0;
      }
      if (overflow == 0) {
        break;
      }
      const Cdf room_cdf(room.vec());
      for (int i = 0; i < overflow; ++i) {
        ++c[static_cast<int>(room_cdf.sample(rng))];
      }
    }
    // 6. Sessions and 7. events, pair repeats for multi-host orgs.
    for (int i = 0; i < span; ++i) {
      const int day = kAwake + i;
      org_day_counts[day][oi] = c[i];
      int left = c[i];
      const std::int64_t from = at(day, org.office_from);
      std::int64_t to = at(day, org.office_to);
      if (day == kDeathDay) {
        to = std::min(to, kDeath);
      }
      while (left > 0) {
        const int size =
            std::min(left, 1 + static_cast<int>(scenario::exponential(rng, org.sess_mean - 1)));
        left -= size;
        std::vector<std::int64_t> times;
        std::int64_t t = uniform(rng, from, to);
        times.push_back(t);
        for (int k = 1; k < size; ++k) {
          t += static_cast<std::int64_t>(scenario::exponential(rng, org.gap_mean_s) * kSecNs);
          times.push_back(t);
        }
        if (day == kDeathDay && times.back() >= kDeath) {  // the session ends before the death
          const std::int64_t shift = times.back() - (kDeath - kSecNs);
          for (auto& x : times) {
            x = std::max(from, x - shift);
          }
        }
        for (const std::int64_t x : times) {
          const std::uint32_t host =
              org.hosts[rng.below(static_cast<std::uint32_t>(org.hosts.size()))];
          add(Comp::Covert, rng, x, host, name, kA, 0, oi == 0 ? Role::OrgA : Role::OrgB);
          if (org.hosts.size() > 1 && rng.unit() < org.pair_p) {
            std::uint32_t other = host;
            while (other == host) {
              other = org.hosts[rng.below(static_cast<std::uint32_t>(org.hosts.size()))];
            }
            const std::int64_t later =
                x + static_cast<std::int64_t>((0.2 + rng.unit() * 2.8) * 1e9);
            add(Comp::Covert, rng, later, other, name, kA, later >= kDeath ? 3 : 0, Role::Pair);
          }
        }
      }
    }
  }
  // 8. Others: random background clients, uniform over the active phase.
  for (int i = 0; i < kOthers; ++i) {
    const std::int64_t t = uniform(rng, at(kAwake, 0), kDeath);
    add(Comp::Covert, rng, t, client_ip[rng.below(kClients)], name, kA, 0, Role::Others);
  }
  // 9. Death: org A keeps querying with the listed daily counts, org B 3 times on the death day.
  for (std::size_t i = 0; i < kFailA.size(); ++i) {
    const int day = kDeathDay + static_cast<int>(i);
    const std::int64_t from = i == 0 ? kDeath : at(day, 0);
    for (int k = 0; k < kFailA[i]; ++k) {
      const std::int64_t t = uniform(rng, from, at(day + 1, 0));
      add(Comp::Covert, rng, t, orgs()[0].hosts[rng.below(2)], name, kA, 3, Role::FailA);
    }
  }
  for (int k = 0; k < kFailB; ++k) {
    add(Comp::Covert, rng, uniform(rng, kDeath, at(kDeathDay + 1, 0)), orgs()[1].hosts[0], name, kA,
        3, Role::FailB);
  }
}

void ScenarioA::Impl::successor_and_leak() {
  {
    Rng rng(stream_seed(seed, "suffix_leak"));
    const std::uint32_t name =
        name_id("mail.hotel-promo-mailer.example.corp.orga.example", 0, 300, Kind::Plain, 2);
    add(Comp::SuffixLeak, rng, at(kDeathDay, 13, 55, 30), ip4(203, 0, 113, 15), name, kA, 3);
  }
  Rng rng(stream_seed(seed, "successor"));
  const std::uint32_t name = name_id("crm1.client-contact-hub.example", ip4(192, 0, 2, 25), 600);
  const int first_day = day_of(9, 27);
  add(Comp::Successor, rng, at(first_day, 14, 2), ip4(203, 0, 113, 15), name);
  for (int day = first_day + 1; day < kDays; ++day) {
    if (weekday(day) >= 5) {
      continue;
    }
    const auto n = static_cast<int>(rng.below(9));
    for (int k = 0; k < n; ++k) {
      const std::int64_t t = uniform(rng, at(day, 6), at(day, 15));
      add(Comp::Successor, rng, t, orgs()[0].hosts[rng.below(2)], name);
    }
  }
}

void ScenarioA::Impl::decoys() {
  {  // Benign poller: every 60 s with jitter, 0.5 % dropped, Aug 1 – Sep 18.
    Rng rng(stream_seed(seed, "benign_poller"));
    const std::uint32_t name = name_id("status.netwatch-probe.example", ip4(192, 0, 2, 80), 30);
    const std::int64_t from = at(day_of(8, 1), 0);
    const std::int64_t to = at(day_of(9, 18), 0);
    for (std::int64_t t = from; t < to; t += 60 * kSecNs) {
      const double jitter = std::clamp(0.3 * scenario::normal(rng), -1.0, 1.0);
      if (rng.chance(0.5)) {
        continue;
      }
      // Within [from, to): the first poll is not jittered to before the poller starts.
      const std::int64_t when =
          std::clamp<std::int64_t>(t + static_cast<std::int64_t>(jitter * 1e9), from, to - 1);
      add(Comp::Poller, rng, when, ip4(198, 18, 7, 7), name);
    }
  }
  {  // Popular decoy: 1,200 background clients, A then AAAA (p 0.7), spikes ×6.
    Rng rng(stream_seed(seed, "popular_decoy"));
    const std::uint32_t name =
        name_id("live.election-news.example", addr_of("election-news.example"), 60);
    std::vector<std::uint32_t> pool(client_ip);
    for (std::uint32_t i = 0; i < 1200; ++i) {
      std::swap(pool[i], pool[i + rng.below(static_cast<std::uint32_t>(pool.size()) - i)]);
    }
    pool.resize(1200);
    const auto spikes = popular_spikes();
    for (int day = 0; day < kDays; ++day) {
      double v = 120 * weekday_factor(day);
      if (std::find(spikes.begin(), spikes.end(), day) != spikes.end()) {
        v *= 6;
      }
      const auto n = static_cast<int>(std::lround(v));
      for (int k = 0; k < n; ++k) {
        const std::int64_t t = in_hour_weights(rng, day);
        const std::uint32_t client = pool[rng.below(1200)];
        add(Comp::Popular, rng, t, client, name);
        if (rng.chance(70)) {
          add(Comp::Popular, rng, t + static_cast<std::int64_t>((1 + rng.unit() * 19) * 1e6),
              client, name, kAaaa);
        }
      }
    }
  }
  {  // Tunneling decoy: Poisson 2 q/s for 30 minutes from 10:00 on three days.
    Rng rng(stream_seed(seed, "tunneling_decoy"));
    constexpr std::string_view kBase32 = "abcdefghijklmnopqrstuvwxyz234567";
    for (const int day : {day_of(8, 3), day_of(8, 31), day_of(10, 5)}) {
      const std::int64_t end = at(day, 10, 30);
      int count = 0;
      for (std::int64_t t =
               at(day, 10) + static_cast<std::int64_t>(scenario::exponential(rng, 0.5) * 1e9);
           t < end; t += static_cast<std::int64_t>(scenario::exponential(rng, 0.5) * 1e9)) {
        std::string q;
        for (int i = 0; i < 52; ++i) {
          q += kBase32[rng.below(32)];
        }
        q += ".t.dnsexfil-lab.example";
        const double u = rng.unit();
        const std::uint16_t qtype = u < 0.8 ? kTxt : u < 0.9 ? kNull : kA;
        add(Comp::Tunnel, rng, t, ip4(198, 18, 3, 33),
            name_id(q, addr_of("dnsexfil-lab.example"), 0, Kind::TxtRandom), qtype);
        ++count;
      }
      tunnel_bursts.emplace_back(at(day, 10), count);
    }
  }
  {  // Hash-lookup decoy: 400 lookups/h, 01:00–04:00 on Jun 20–24, over 200 clients.
    Rng rng(stream_seed(seed, "hash_lookup_decoy"));
    std::vector<std::uint32_t> pool(client_ip);
    for (std::uint32_t i = 0; i < 200; ++i) {
      std::swap(pool[i], pool[i + rng.below(static_cast<std::uint32_t>(pool.size()) - i)]);
    }
    pool.resize(200);
    constexpr std::string_view kHex = "0123456789abcdef";
    for (int hour = 0; hour < 5 * 3; ++hour) {  // 01, 02 and 03 UTC of each day
      const int day = day_of(6, 20) + hour / 3;
      for (int k = 0; k < 400; ++k) {
        std::string q;
        for (int i = 0; i < 40; ++i) {
          q += kHex[rng.below(16)];
        }
        q += ".hash.av-cloud.example";
        const std::int64_t t = uniform(rng, at(day, 1 + hour % 3), at(day, 2 + hour % 3));
        const std::uint32_t client = pool[rng.below(200)];
        const std::uint16_t qtype = rng.chance(50) ? kTxt : kA;
        add(Comp::Hash, rng, t, client, name_id(q, ip4(192, 0, 2, 1), 300, Kind::TxtHash), qtype);
      }
    }
  }
  {  // CDN decoy: 100 lookups/day of i0000–i9999.
    Rng rng(stream_seed(seed, "cdn_decoy"));
    for (int day = 0; day < kDays; ++day) {
      for (int k = 0; k < 100; ++k) {
        std::array<char, 16> label{};
        std::snprintf(label.data(), label.size(), "i%04u", rng.below(10000));
        const std::int64_t t = in_hour_weights(rng, day);
        add(Comp::Cdn, rng, t, client_ip[rng.below(kClients)],
            name_id(std::string(label.data()) + ".cdn-static.example",
                    addr_of("cdn-static.example"), ttl_of("cdn-static.example")));
      }
    }
  }
  {  // Steady exclusive decoy: every day 4–8 lookups in sessions, 18–23 UTC.
    Rng rng(stream_seed(seed, "steady_exclusive_decoy"));
    const std::uint32_t name =
        name_id("backup.family-photos.example", addr_of("family-photos.example"),
                ttl_of("family-photos.example"));
    for (int day = 0; day < kDays; ++day) {
      int left = static_cast<int>(rng.range(4, 8));
      while (left > 0) {
        const int size = std::min(left, static_cast<int>(rng.range(1, 3)));
        left -= size;
        std::int64_t t = uniform(rng, at(day, 18), at(day, 22, 50));
        for (int k = 0; k < size; ++k) {
          add(Comp::Steady, rng, t, ip4(198, 18, 9, 21), name);
          t += static_cast<std::int64_t>((5 + scenario::exponential(rng, 55)) * 1e9);
        }
      }
    }
  }
  {  // New exclusive decoy: weekdays from Jun 15, 6–10/day, 08–17 UTC, two clients.
    Rng rng(stream_seed(seed, "new_exclusive_decoy"));
    const std::uint32_t name = name_id("app.newtool-saas.example", addr_of("newtool-saas.example"),
                                       ttl_of("newtool-saas.example"));
    for (int day = day_of(6, 15); day < kDays; ++day) {
      if (weekday(day) >= 5) {
        continue;
      }
      const int n = static_cast<int>(rng.range(6, 10));
      for (int k = 0; k < n; ++k) {
        const std::int64_t t = uniform(rng, at(day, 8), at(day, 17));
        add(Comp::NewExclusive, rng, t, ip4(198, 18, 5, 40 + rng.below(2)), name);
      }
    }
  }
  {  // Expiring decoy: 10/weekday until Jul 31; from Aug 1 NXDOMAIN, 3 failing lookups that day.
    Rng rng(stream_seed(seed, "expiring_decoy"));
    const std::uint32_t name = name_id("portal.oldvendor.example", addr_of("oldvendor.example"),
                                       ttl_of("oldvendor.example"), Kind::Plain, 3);
    const int dead = day_of(8, 1);
    for (int day = 0; day < dead; ++day) {
      if (weekday(day) >= 5) {
        continue;
      }
      for (int k = 0; k < 10; ++k) {
        const std::int64_t t = uniform(rng, at(day, 8), at(day, 17));
        add(Comp::Expiring, rng, t, ip4(198, 18, 1, 11 + rng.below(5)), name);
      }
    }
    for (int k = 0; k < 3; ++k) {
      const std::int64_t t = uniform(rng, at(dead, 8), at(dead, 17));
      add(Comp::Expiring, rng, t, ip4(198, 18, 1, 11 + rng.below(5)), name, kA, 3);
    }
  }
}

void ScenarioA::Impl::finish() {
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.t != b.t ? a.t < b.t : a.comp < b.comp;
  });
  sum.queries = events.size();
  sum.packets = 2 * events.size();
  for (const Event& e : events) {
    ++comp_queries[static_cast<std::size_t>(e.comp)];
    const bool covert_name = e.comp == Comp::Covert;
    if (covert_name && e.rcode == 0) {
      if (e.role == Role::OrgA || e.role == Role::Pair) {
        ++sum.covert_success_a;
      } else if (e.role == Role::OrgB) {
        ++sum.covert_success_b;
      } else if (e.role == Role::Others) {
        ++sum.covert_success_others;
      }
    }
    if (covert_name && e.rcode != 0) {
      if (e.role == Role::FailA || e.role == Role::Pair) {
        ++sum.covert_fail_a;
      } else if (e.role == Role::FailB) {
        ++sum.covert_fail_b;
      }
    }
    // First sightings of the registrable domains the A11 check follows.
    const std::string& q = names[e.name].qname;
    for (const std::string_view d : {"netwatch-probe.example", "newtool-saas.example",
                                     "dnsexfil-lab.example", "client-contact-hub.example"}) {
      if (q.size() > d.size() && q.compare(q.size() - d.size(), d.size(), d) == 0 &&
          q[q.size() - d.size() - 1] == '.' && first_seen.count(std::string(d)) == 0) {
        first_seen.emplace(d, e.t);
      }
    }
  }
}

namespace {

std::int64_t capture_ns(std::int64_t logical_ns) {
  return scenario::kOriginUnix * kSecNs + logical_ns / scenario::kCompression;
}

}  // namespace

ScenarioA::ScenarioA(std::uint64_t seed) : impl_(std::make_unique<Impl>(seed)) {
  Impl& m = *impl_;
  m.events.reserve(520'000);
  m.population();
  m.background();
  m.covert();
  m.successor_and_leak();
  m.decoys();
  m.finish();
  m.span();
}

ScenarioA::~ScenarioA() = default;

void ScenarioA::rewind() {
  impl_->cursor = 0;
  impl_->seq = 0;
  impl_->pending = {};
}

bool ScenarioA::next(ScenarioFrame& frame) {
  Impl& m = *impl_;
  const bool have_query = m.cursor < m.events.size();
  if (!m.pending.empty() && (!have_query || m.pending.top().t <= m.events[m.cursor].t)) {
    const Impl::Pending p = m.pending.top();
    m.pending.pop();
    const Event& e = m.events[p.event];
    frame.len = scenario::response_frame(e, m.names[e.name], p.port, p.id, m.buf.data());
    frame.ts_ns = capture_ns(p.t);
    frame.data = m.buf.data();
    return true;
  }
  if (!have_query) {
    return false;
  }
  const auto index = static_cast<std::uint32_t>(m.cursor++);
  const Event& e = m.events[index];
  Rng rng(e.nonce);
  const auto port = static_cast<std::uint16_t>(1024 + rng.below(65536 - 1024));
  const auto id = static_cast<std::uint16_t>(rng.below(65536));
  // Latency: lognormal, median 8 ms, σ 0.8, capped at 400 ms (logical time).
  const double latency_ms = std::min(400.0, 8.0 * std::exp(0.8 * scenario::normal(rng)));
  m.pending.push({e.t + static_cast<std::int64_t>(latency_ms * 1e6), m.seq++, index, port, id});
  frame.len = scenario::query_frame(e, m.names[e.name], port, id, m.buf.data());
  frame.ts_ns = capture_ns(e.t);
  frame.data = m.buf.data();
  return true;
}

const ScenarioSummary& ScenarioA::summary() const {
  return impl_->sum;
}

void ScenarioA::Impl::span() {
  if (!events.empty()) {
    Impl& m = *this;
    m.sum.first_ts_ns = capture_ns(m.events.front().t);
    // The last frame is the response of one of the last queries (at most 400 ms after them).
    std::int64_t last = 0;
    for (auto i = m.events.size(); i-- > 0 && m.events[i].t + 400'000'000 >= m.events.back().t;) {
      Rng rng(m.events[i].nonce);
      rng.below(65536 - 1024);
      rng.below(65536);
      const double latency_ms = std::min(400.0, 8.0 * std::exp(0.8 * scenario::normal(rng)));
      last = std::max(last, m.events[i].t + static_cast<std::int64_t>(latency_ms * 1e6));
    }
    m.sum.last_ts_ns = capture_ns(last);
  }
}

}  // namespace dnsmon::gen

namespace dnsmon::gen {

std::string ScenarioA::config_yaml() const {
  std::string y;
  y += "# dnsmon configuration for replaying Scenario A (seed " + std::to_string(impl_->seed) +
       "): dnsmon -r <name>.pcap --config <name>.dnsmon.yaml\n"
       "# Written by tools/gen_scenario next to the capture; docs/scenarios.md describes it.\n"
       "# The detection: section (detection spec 4.13) comes last: the lines before it are the\n"
       "# rest of the configuration, which holds on its own.\n"
       "capture:\n"
       "  workers: 1\n"
       "\n"
       "detection:\n"
       "  # Detection is off unless a config turns it on.\n"
       "  enabled: true\n"
       "  # One logical day per minute of capture time, from 00:00Z of the scenario's first day.\n"
       "  time: {compression: 1440, origin: 2016-04-04T00:00:00Z}\n"
       "  clients: {internal_networks: [198.18.0.0/15]}\n"
       "  normalize: {search_suffixes: [corp.orga.example]}\n"
       "  # The test memory profile (detection spec 3.4): 256 Ki base entries, 8 Ki candidates,\n"
       "  # 64 watch entries, a 1 Mi seen filter and a 1 MiB doorkeeper, with the 2^18 x 4\n"
       "  # Count-Min, about 50 MiB in all (at most 64 MiB).\n"
       "  memory: {base_entries: 262144, candidate_entries: 8192, watch_entries: 64,\n"
       "           seen_filter_entries: 1048576, doorkeeper_bits: 8388608}\n";
  return y;
}

namespace {

// A JSON object written member by member.
class Json {
 public:
  Json& key(std::string_view k) {
    sep();
    out_ += quoted(k) + ":";
    fresh_ = true;
    return *this;
  }

  Json& raw(std::string_view v) {
    sep();
    out_ += v;
    return *this;
  }

  Json& str(std::string_view v) {
    sep();
    out_ += '"';
    for (const char c : v) {
      if (c == '"' || c == '\\') {
        out_ += '\\';
      }
      out_ += c;
    }
    out_ += '"';
    return *this;
  }

  Json& num(double v, int digits = 4) { return raw(fixed(v, digits)); }

  Json& num(std::int64_t v) { return raw(std::to_string(v)); }

  Json& open(char c) {
    sep();
    out_ += c;
    fresh_ = true;
    return *this;
  }

  Json& close(char c) {
    out_ += c;
    fresh_ = false;
    return *this;
  }

  Json& nl() {
    out_ += '\n';
    return *this;
  }

  [[nodiscard]] const std::string& text() const { return out_; }

 private:
  void sep() {
    if (!fresh_) {
      out_ += ',';
    }
    fresh_ = false;
  }

  std::string out_;
  bool fresh_ = true;
};

// One row of the expected-detection list (detection spec 5.3).
struct Expect {
  std::string_view id, detector, event, domain, check;
  std::string from, to;  // the window the event must fall in ("" = unbounded)
  double min_score;
};

}  // namespace

std::string ScenarioA::truth_json() const {
  const Impl& m = *impl_;
  Json j;
  j.open('{');
  j.key("scenario").str("A").key("format").num(std::int64_t{1}).nl();
  j.key("seed").num(static_cast<std::int64_t>(m.seed)).nl();
  j.key("time").open('{');
  j.key("compression").num(scenario::kCompression).key("origin").str("2016-04-04T00:00:00Z");
  j.key("end").str("2016-10-17T00:00:00Z").key("days").num(std::int64_t{kDays});
  j.key("note").str("t_pcap = origin + (t_logical - origin) / compression; day 0 = 2016-04-04");
  j.close('}').nl();

  // The capture as written.
  j.key("capture").open('{');
  j.key("packets").num(static_cast<std::int64_t>(m.sum.packets));
  j.key("queries").num(static_cast<std::int64_t>(m.sum.queries));
  j.key("responses").num(static_cast<std::int64_t>(m.sum.queries));
  j.key("timeouts").num(std::int64_t{0});
  j.key("first_ts_ns").num(m.sum.first_ts_ns).key("last_ts_ns").num(m.sum.last_ts_ns);
  j.key("resolver").str("198.18.255.53");
  j.key("queries_by_component").open('{');
  constexpr std::array<std::string_view, static_cast<std::size_t>(Comp::Count)> kCompNames{
      "background",          "covert_pair",
      "suffix_leak",         "successor",
      "benign_poller",       "popular_decoy",
      "tunneling_decoy",     "hash_lookup_decoy",
      "cdn_decoy",           "steady_exclusive_decoy",
      "new_exclusive_decoy", "expiring_decoy"};
  for (std::size_t i = 0; i < kCompNames.size(); ++i) {
    j.key(kCompNames[i]).num(static_cast<std::int64_t>(m.comp_queries[i]));
  }
  j.close('}').close('}').nl();

  // The parameters of detection spec 5.2.
  j.key("parameters").open('{').nl();
  j.key("background").open('{');
  j.key("clients").num(std::int64_t{kClients}).key("client_range").str("198.18.{0..7}.{1..250}");
  j.key("domains").num(std::int64_t{kDomains}).key("zipf_s").num(kZipf, 1);
  j.key("personal_domains").num(std::int64_t{kPersonal}).key("p_pers").num(kPersonalShare, 2);
  j.key("events_per_weekday").num(std::int64_t{kWeekdayEvents});
  j.key("weekend_factor").num(kWeekendFactor, 1);
  j.key("mail_gateways").open('[').str("198.18.0.25").str("198.18.0.26").str("198.18.0.27");
  j.close(']');
  j.key("typo_pct").num(2.0, 1).key("servfail_pct").num(0.1, 1).key("mx_pct").num(0.5, 1);
  j.key("txt_pct").num(0.5, 1).key("ptr_pct").num(0.5, 1);
  j.key("host_labels").open('{');
  for (const auto& l : kHostLabels) {
    j.key(l.label.empty() ? "@" : l.label).num(l.weight / 100.0, 2);
  }
  j.close('}').key("aaaa_after").open('[').str("www").str("@").str("m").str("static").close(']');
  j.key("aaaa_p").num(0.5, 1).key("aaaa_delay_ms").open('[').num(std::int64_t{1});
  j.num(std::int64_t{20}).close(']');
  j.key("hour_weights").open('[');
  for (const double w : kHourWeights) {
    j.num(w, 2);
  }
  j.close(']');
  j.key("ttl_mix").open('{').key("60").num(0.2, 1).key("300").num(0.5, 1).key("3600").num(0.3, 1);
  j.close('}').key("a_rdata").str("192.0.2.(10 + fnv1a64(domain) % 200)");
  j.key("aaaa_rdata").str("2001:db8:ffff::X");
  j.close('}').nl();
  j.key("wire").open('{').key("latency_median_ms").num(8.0, 1).key("latency_sigma").num(0.8, 1);
  j.key("latency_cap_ms").num(400.0, 1).key("latency_clock").str("logical");
  j.key("link").str("ethernet").key("transport").str("udp/53").close('}').nl();
  j.key("covert_pair").open('{');
  j.key("qname").str(kCovertName).key("domain").str(kCovertDomain);
  j.key("a").str("192.0.2.25").key("ttl").num(std::int64_t{600});
  j.key("history_days").open('[');
  for (const int d : kHistoryDays) {
    j.str(date_of(d));
  }
  j.close(']');
  j.key("dormant").open('[').str(date_of(14)).str(date_of(kAwake - 1)).close(']');
  j.key("awake").str(date_of(kAwake)).key("death").str("2016-09-23T13:56:00Z");
  j.key("fail_rcode").str("NXDOMAIN").key("soa").str(kCovertDomain);
  j.key("ramp").open('[').num(kR0, 1).num(kR1, 1).close(']');
  j.key("step").open('{').key("from").str(date_of(kStepDay)).key("mult").num(kStepMult, 2);
  j.close('}');
  j.key("sat").num(kSat, 2).key("sun").num(kSun, 2);
  j.key("spikes").open('[');
  for (const auto& [d, mult] : covert_spikes()) {
    j.open('{').key("date").str(date_of(d)).key("mult").num(mult, 1).close('}');
  }
  j.close(']');
  j.key("gaps").open('[');
  for (const int d : covert_gaps()) {
    j.str(date_of(d));
  }
  j.close(']');
  j.key("sporadic_days").num(std::int64_t{kSporadicDays}).key("zero_prob").num(kZeroProb, 2);
  j.key("k").num(kGammaK, 1);
  j.key("orgs").open('[');
  for (const Org& o : orgs()) {
    j.open('{').key("name").str(o.name).key("hosts").open('[');
    for (const auto h : o.hosts) {
      j.str(ip_text(h));
    }
    j.close(']').key("org").str(org_of(o.hosts[0]));
    j.key("target").num(std::int64_t{o.target}).key("pair_p").num(o.pair_p, 2);
    j.key("n_events").num(static_cast<std::int64_t>(std::lround(o.target / (1.0 + o.pair_p))));
    j.key("office_hours_utc").open('[').num(std::int64_t{o.office_from});
    j.num(std::int64_t{o.office_to}).close(']');
    j.key("sess_mean").num(o.sess_mean, 1).key("gap_mean_s").num(o.gap_mean_s, 1);
    j.key("awake_min").num(std::int64_t{o.awake_min}).key("cap").num(std::int64_t{o.cap});
    j.close('}');
  }
  j.close(']');
  j.key("others").num(std::int64_t{kOthers});
  j.key("after_death_org_a").open('[');
  for (const int n : kFailA) {
    j.num(std::int64_t{n});
  }
  j.close(']').key("after_death_org_b").open('[').num(std::int64_t{kFailB}).close(']');
  j.close('}').nl();
  j.key("suffix_leak").open('{').key("t").str("2016-09-23T13:55:30Z");
  j.key("client").str("203.0.113.15");
  j.key("qname").str("mail.hotel-promo-mailer.example.corp.orga.example");
  j.key("rcode").str("NXDOMAIN").key("search_suffix").str("corp.orga.example").close('}').nl();
  j.key("successor").open('{').key("qname").str("crm1.client-contact-hub.example");
  j.key("domain").str("client-contact-hub.example").key("a").str("192.0.2.25");
  j.key("ttl").num(std::int64_t{600}).key("first").str("2016-09-27T14:02:00Z");
  j.key("first_client").str("203.0.113.15").key("per_weekday").open('[').num(std::int64_t{0});
  j.num(std::int64_t{8}).close(']').close('}').nl();
  j.key("benign_poller").open('{').key("client").str("198.18.7.7");
  j.key("qname").str("status.netwatch-probe.example").key("a").str("192.0.2.80");
  j.key("ttl").num(std::int64_t{30}).key("period_s").num(std::int64_t{60});
  j.key("jitter_sd_s").num(0.3, 1).key("jitter_clip_s").num(1.0, 1).key("drop_pct").num(0.5, 1);
  j.key("from").str("2016-08-01T00:00:00Z").key("to").str("2016-09-18T00:00:00Z").close('}').nl();
  j.key("popular_decoy").open('{').key("qname").str("live.election-news.example");
  j.key("aaaa_p")
      .num(0.7, 1)
      .key("ttl")
      .num(std::int64_t{60})
      .key("clients")
      .num(std::int64_t{1200});
  j.key("per_weekday").num(std::int64_t{120}).key("weekend_factor").num(0.6, 1);
  j.key("spike_mult").num(std::int64_t{6}).key("spike_days").open('[');
  for (const int d : popular_spikes()) {
    j.str(date_of(d));
  }
  j.close(']').close('}').nl();
  j.key("tunneling_decoy").open('{').key("client").str("198.18.3.33");
  j.key("domain").str("dnsexfil-lab.example").key("rate_per_s").num(2.0, 1);
  j.key("label_chars").num(std::int64_t{52}).key("qtypes").open('{').key("TXT").num(0.8, 1);
  j.key("NULL").num(0.1, 1).key("A").num(0.1, 1).close('}').key("ttl").num(std::int64_t{0});
  j.key("minutes").num(std::int64_t{30}).key("bursts").open('[');
  for (const auto& [t, n] : m.tunnel_bursts) {
    j.open('{').key("start").str(instant_of(t)).key("queries").num(std::int64_t{n}).close('}');
  }
  j.close(']').close('}').nl();
  j.key("hash_lookup_decoy").open('{').key("domain").str("av-cloud.example");
  j.key("clients").num(std::int64_t{200}).key("per_hour").num(std::int64_t{400});
  j.key("label_hex_chars").num(std::int64_t{40}).key("qtypes").open('{').key("TXT");
  j.num(0.5, 1).key("A").num(0.5, 1).close('}');
  j.key("hours_utc").open('[').num(std::int64_t{1}).num(std::int64_t{4}).close(']');
  j.key("days").open('[');
  for (int d = day_of(6, 20); d <= day_of(6, 24); ++d) {
    j.str(date_of(d));
  }
  j.close(']').close('}').nl();
  j.key("cdn_decoy").open('{').key("domain").str("cdn-static.example");
  j.key("names").str("i0000.cdn-static.example .. i9999.cdn-static.example");
  j.key("per_day").num(std::int64_t{100}).close('}').nl();
  j.key("steady_exclusive_decoy").open('{').key("client").str("198.18.9.21");
  j.key("qname").str("backup.family-photos.example").key("per_day").open('[');
  j.num(std::int64_t{4}).num(std::int64_t{8}).close(']').key("session_start_utc");
  j.open('[').str("18:00").str("22:50").close(']').close('}').nl();
  j.key("new_exclusive_decoy").open('{').key("clients").open('[').str("198.18.5.40");
  j.str("198.18.5.41").close(']').key("qname").str("app.newtool-saas.example");
  j.key("from").str("2016-06-15").key("weekdays_only").raw("true").key("per_day").open('[');
  j.num(std::int64_t{6}).num(std::int64_t{10}).close(']').key("hours_utc").open('[');
  j.num(std::int64_t{8}).num(std::int64_t{17}).close(']').close('}').nl();
  j.key("expiring_decoy").open('{').key("qname").str("portal.oldvendor.example");
  j.key("clients").open('[');
  for (unsigned h = 11; h <= 15; ++h) {
    j.str("198.18.1." + std::to_string(h));
  }
  j.close(']').key("per_weekday").num(std::int64_t{10}).key("until").str("2016-07-31");
  j.key("hours_utc").open('[').num(std::int64_t{8}).num(std::int64_t{17}).close(']');
  j.key("nxdomain_from").str("2016-08-01T00:00:00Z").key("failing_on_2016_08_01");
  j.num(std::int64_t{3}).key("soa").str("oldvendor.example").close('}').nl();
  j.close('}').nl();

  // Realised facts of the covert pair.
  {
    struct Look {
      std::int64_t t;
      std::uint32_t client;
      bool ok;
    };

    std::vector<Look> looks;
    for (const Event& e : m.events) {
      if (e.comp == Comp::Covert || e.comp == Comp::SuffixLeak) {
        looks.push_back({e.t, e.client, e.rcode == 0});
      }
    }
    // Lookup events: first query per client within 1 s (detection spec 4.0), per day and org.
    std::unordered_map<std::uint32_t, std::int64_t> last;
    ByDay<std::map<std::string, int>> per_day(kDays, {});
    ByDay<std::array<int, 5>> q_day(kDays, {});  // A ok, B ok, others ok, A fail, B fail
    std::int64_t dedup_events = 0;
    for (const Look& l : looks) {
      const auto day = static_cast<int>(l.t / kDayNs);
      const std::string org = org_of(l.client);
      const bool a = org == "203.0.113.0/24";
      const bool b = org == "198.51.100.0/24";
      ++q_day[day][l.ok ? (a ? 0 : b ? 1 : 2) : (a ? 3 : 4)];
      const auto it = last.find(l.client);
      if (it != last.end() && l.t - it->second < kSecNs) {
        continue;
      }
      last[l.client] = l.t;
      ++per_day[day][org];
      ++dedup_events;
    }
    j.key("covert_realised").open('{').nl();
    j.key("successful_lookups")
        .num(static_cast<std::int64_t>(m.sum.covert_success_a + m.sum.covert_success_b +
                                       m.sum.covert_success_others));
    j.key("successful_history").num(std::int64_t{kHistoryDays.size()});
    j.key("successful_by_org").open('{');
    j.key("A").num(static_cast<std::int64_t>(m.sum.covert_success_a));
    j.key("B").num(static_cast<std::int64_t>(m.sum.covert_success_b));
    j.key("others").num(static_cast<std::int64_t>(m.sum.covert_success_others));
    j.close('}');
    const auto active = static_cast<double>(m.sum.covert_success_a + m.sum.covert_success_b +
                                            m.sum.covert_success_others);
    j.key("share_A").num(static_cast<double>(m.sum.covert_success_a) / active);
    j.key("share_B").num(static_cast<double>(m.sum.covert_success_b) / active);
    j.key("top2_share")
        .num(static_cast<double>(m.sum.covert_success_a + m.sum.covert_success_b) / active);
    j.key("failing_by_org").open('{');
    j.key("A").num(static_cast<std::int64_t>(m.sum.covert_fail_a));
    j.key("B").num(static_cast<std::int64_t>(m.sum.covert_fail_b));
    j.close('}');
    j.key("lookup_events_dedup_1s").num(dedup_events);
    int max_day = 0;
    int zero_days = 0;
    for (int d = kAwake; d <= kDeathDay; ++d) {
      const int n = q_day[d][0] + q_day[d][1] + q_day[d][2];
      max_day = std::max(max_day, n);
      zero_days += n == 0 ? 1 : 0;
    }
    j.key("max_day_successful").num(std::int64_t{max_day});
    j.key("zero_days_active_phase").num(std::int64_t{zero_days}).nl();
    j.key("per_day_queries").open('[').nl();
    for (int d = 0; d < kDays; ++d) {
      const auto& q = q_day[d];
      if (q[0] + q[1] + q[2] + q[3] + q[4] == 0) {
        continue;
      }
      j.open('{').key("date").str(date_of(d)).key("A").num(std::int64_t{q[0]});
      j.key("B").num(std::int64_t{q[1]}).key("others").num(std::int64_t{q[2]});
      j.key("A_fail").num(std::int64_t{q[3]}).key("B_fail").num(std::int64_t{q[4]}).close('}');
      j.nl();
    }
    j.close(']').nl();
    // W14 top-2 org share of the lookup events, for each evaluation day of the A3 check.
    j.key("w14_top2_share").open('{');
    std::vector<std::string> below;
    for (int d = day_of(7, 6); d <= kDeathDay; ++d) {
      std::map<std::string, int> w;
      for (int k = std::max(0, d - 13); k <= d; ++k) {
        for (const auto& [org, n] : per_day[k]) {
          w[org] += n;
        }
      }
      std::vector<int> counts;
      int total = 0;
      for (const auto& [org, n] : w) {
        counts.push_back(n);
        total += n;
      }
      std::sort(counts.rbegin(), counts.rend());
      const int top2 = (counts.empty() ? 0 : counts[0]) + (counts.size() > 1 ? counts[1] : 0);
      const double share = total == 0 ? 0.0 : static_cast<double>(top2) / total;
      j.key(date_of(d)).num(share);
      if (share < 0.95) {
        below.push_back(date_of(d));
      }
    }
    j.close('}').nl();
    j.key("w14_top2_below_0_95").open('[');
    for (const auto& d : below) {
      j.str(d);
    }
    j.close(']').nl();
    j.close('}').nl();
  }

  j.key("first_sightings").open('{');
  for (const auto& [d, t] : m.first_seen) {
    j.key(d).str(instant_of(t));
  }
  j.close('}').nl();

  // Expected detections (detection spec 5.3).
  const std::vector<Expect> expect{
      {"A1", "dormant_reactivation", "", "hotel-promo-mailer.example", "dormant_reactivation event",
       "2016-05-04", "2016-05-11", 0},
      {"A2", "covert_pair", "", "hotel-promo-mailer.example",
       "score >= 0.6, first on or before `to`", "", "2016-06-20", 0.6},
      {"A3", "covert_pair", "", "hotel-promo-mailer.example",
       "score >= 0.8 first on or before 2016-07-06 and on every evaluation day 2016-07-06 .. "
       "2016-09-23 except the days in covert_realised.w14_top2_below_0_95",
       "2016-07-06", "2016-09-23", 0.8},
      {"A4", "disappearance", "transition", "hotel-promo-mailer.example", "transition event",
       "2016-09-23T13:56:00Z", "2016-09-24T00:00:00Z", 0},
      {"A5", "disappearance", "persisting", "hotel-promo-mailer.example",
       "persisting on or before `to`; covert_pair >= 0.95 (critical) by 2016-09-26", "",
       "2016-09-26T00:00:00Z", 0},
      {"A6", "suffix_leak", "", "hotel-promo-mailer.example", "suffix_leak attributed to domain",
       "2016-09-23", "2016-09-23", 0},
      {"A7", "successor_name", "", "client-contact-hub.example",
       "successor of hotel-promo-mailer.example", "2016-09-27", "2016-09-27", 0},
      {"A8", "beacon", "", "netwatch-probe.example",
       "client 198.18.7.7, score >= 0.9, period 60 +- 1 s, by `to`", "", "2016-08-02", 0.9},
      {"A9", "tunneling", "", "dnsexfil-lab.example",
       "within the first logical hour of each burst in parameters.tunneling_decoy.bursts", "", "",
       0},
      {"A10", "burst", "", "election-news.example",
       "on >= 9 of the 10 parameters.popular_decoy.spike_days, <= 2 other days", "", "", 0},
      {"A11", "newly_observed", "",
       "netwatch-probe.example newtool-saas.example "
       "dnsexfil-lab.example client-contact-hub.example",
       "within 7 days of first_sightings[domain]", "", "", 0},
      {"A12", "disappearance", "transition", "oldvendor.example",
       "transition on 2016-08-01, never persisting, covert_pair 0", "2016-08-01", "2016-08-01", 0},
      {"A13", "covert_pair", "", "*",
       "no domain other than hotel-promo-mailer.example reaches 0.6 (family-photos ~0.4, "
       "newtool-saas <= 0.5, client-contact-hub <= 0.5, poller/tunnel 0)",
       "", "", 0.6},
      {"A14", "tunneling beacon", "",
       "av-cloud.example cdn-static.example "
       "hotel-promo-mailer.example",
       "no tunneling for av-cloud.example or cdn-static.example; no beacon >= 0.8 involving "
       "hotel-promo-mailer.example",
       "", "", 0.8},
      {"A15", "querier_concentration", "", "*",
       "at end: dnsmon_detector_flagged_domains{detector=\"querier_concentration_any\"} >= 1000; "
       "querier_concentration (volume-gated) flags <= 20 domains",
       "", "", 0},
      {"A16", "export", "", "*", "dnsmon_domain_* series <= 2000 at any snapshot", "", "", 0},
  };
  j.key("expected").open('[').nl();
  for (const Expect& e : expect) {
    j.open('{').key("id").str(e.id).key("detector").str(e.detector);
    if (!e.event.empty()) {
      j.key("event").str(e.event);
    }
    j.key("domain").str(e.domain).key("check").str(e.check);
    if (!e.from.empty()) {
      j.key("from").str(e.from);
    }
    if (!e.to.empty()) {
      j.key("to").str(e.to);
    }
    if (e.min_score > 0) {
      j.key("score").num(e.min_score, 2);
    }
    if (e.id == "A5") {  // the second condition of A5
      j.key("covert_pair_critical_by").str("2016-09-26");
    }
    j.close('}').nl();
  }
  j.close(']').nl();
  j.close('}').nl();
  return j.text();
}

}  // namespace dnsmon::gen
