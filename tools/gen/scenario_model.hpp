// Scenario A's model: the lookup events the components make, the names they ask for, the calendar.
// Internal to the scenario library (scenario.cpp makes the events, scenario_wire.cpp the frames).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dnsmon/common/civil_time.hpp"

#include "gen/random.hpp"

namespace dnsmon::gen::scenario {

constexpr std::int64_t kSecNs = 1'000'000'000;
constexpr std::int64_t kDayNs = 86'400 * kSecNs;
constexpr std::int64_t kOriginUnix = 1'459'728'000;  // L0 = 2016-04-04T00:00:00Z, a Monday
constexpr int kDays = 196;                           // until 2016-10-17T00:00:00Z
constexpr std::int64_t kCompression = 1440;
constexpr std::uint32_t kResolver = (198U << 24U) | (18U << 16U) | (255U << 8U) | 53U;

// Scenario day (0 = 2016-04-04) of a date in 2016.
constexpr int day_of(unsigned month, unsigned mday) {
  return static_cast<int>(dnsmon::days_from_civil(2016, month, mday) - kOriginUnix / 86'400);
}

// 0 = Monday … 6 = Sunday.
constexpr int weekday(int day) {
  return day % 7;
}

// "2016-05-04" of a scenario day; "2016-09-23T13:56:00.000000000Z" of a logical instant.
std::string date_of(int day);
std::string instant_of(std::int64_t logical_ns);

// Logical instant (ns since L0) of a time of day on a scenario day.
constexpr std::int64_t at(int day, int hour, int minute = 0, int second = 0) {
  return day * kDayNs + ((hour * 60LL + minute) * 60 + second) * kSecNs;
}

// The components, in the order their events are merged when two share a timestamp.
enum class Comp : std::uint8_t {
  Background,
  Covert,
  SuffixLeak,
  Successor,
  Poller,
  Popular,
  Tunnel,
  Hash,
  Cdn,
  Steady,
  NewExclusive,
  Expiring,
  Count
};

// What a covert-pair event is (Role::None for every other component).
enum class Role : std::uint8_t { None, History, OrgA, OrgB, Pair, Others, FailA, FailB };

// What the answer of a name carries beyond its address records.
enum class Kind : std::uint8_t { Plain, TxtSpf, TxtRandom, TxtHash, Ptr, Mx };

struct Name {
  std::string qname;
  std::string target;  // MX exchange or PTR target
  std::uint32_t a4 = 0;
  std::uint16_t a6 = 0;  // last group of 2001:db8:ffff::X
  std::uint32_t ttl = 300;
  std::uint8_t zone = 0;  // index into Model::zones: the SOA of an NXDOMAIN answer
  Kind kind = Kind::Plain;
};

struct Event {
  std::int64_t t = 0;        // logical time, ns since L0
  std::uint64_t nonce = 0;   // the frame's random choices (port, ID, latency, random rdata)
  std::uint32_t client = 0;  // IPv4, host order
  std::uint32_t name = 0;
  std::uint16_t qtype = 1;
  std::uint8_t rcode = 0;
  Comp comp = Comp::Background;
  Role role = Role::None;
};

// Normal, exponential and gamma draws on top of Rng (the same numbers on every platform, as far as
// the platform's libm is correctly rounded for log/exp/sqrt/cos).
inline double normal(Rng& rng) {
  const double u1 = 1.0 - rng.unit();
  const double u2 = rng.unit();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

inline double exponential(Rng& rng, double mean) {
  return -std::log(1.0 - rng.unit()) * mean;
}

// Gamma(shape k ≥ 1, scale θ): Marsaglia and Tsang.
inline double gamma(Rng& rng, double k, double theta) {
  const double d = k - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0;
    double v = 0;
    do {
      x = normal(rng);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1.0 - rng.unit();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) {
      return d * v * theta;
    }
  }
}

// The zones whose SOA NXDOMAIN answers carry (Name::zone indexes this).
inline const std::vector<std::string>& zones() {
  static const std::vector<std::string> z{"example", "hotel-promo-mailer.example", "orga.example",
                                          "oldvendor.example"};
  return z;
}

// The frames of one lookup (scenario_wire.cpp). `out` holds at least kMaxFrame bytes; each returns
// the frame's length. The response's random rdata (TXT/NULL of the tunnel) comes from the nonce.
constexpr std::size_t kMaxFrame = 1024;
std::size_t query_frame(const Event& e, const Name& n, std::uint16_t port, std::uint16_t id,
                        std::uint8_t* out);
std::size_t response_frame(const Event& e, const Name& n, std::uint16_t port, std::uint16_t id,
                           std::uint8_t* out);

}  // namespace dnsmon::gen::scenario
