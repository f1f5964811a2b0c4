// Detection options: the `detection:` section of the configuration file (docs/detection.md),
// bound key by key by the config module. The detection engine itself is declared in
// dnsmon/detect/engine.hpp; this header holds only what the configuration needs, so the config
// module depends on the option structs and nothing else of the detection module.
//
// Thread-safety: plain values, copied into the engine at start.
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/common/civil_time.hpp"
#include "dnsmon/detect/params.hpp"

namespace dnsmon::detect {

// detection.time: the logical clock (detection spec 4.0).
struct TimeOptions {
  double compression = 1.0;             // logical seconds per packet second
  std::string origin = "first_packet";  // "first_packet" or an RFC 3339 instant, as written
  std::optional<std::int64_t>
      origin_ns;  // the instant in ns since the Unix epoch; none: first packet
};

// detection.clients: who a querier is.
struct ClientOptions {
  std::vector<std::string> internal_networks;  // CIDR prefixes whose hosts count one by one
  std::uint32_t external_v4_prefix = 24;       // other clients: grouped by this prefix ...
  std::uint32_t external_v6_prefix = 48;
  std::string org_map_file;  // ... unless this file names their organisation ("" none)
  // analytics.clients.pseudonymise: client addresses become keyed pseudonyms as the events are
  // made, so none reaches the tables, the event log or the state file (not a detection key: the
  // daemon copies the analytics setting and its key).
  bool pseudonymise = false;
  std::array<std::uint64_t, 2> pseudonym_key{};
};

// detection.normalize: how a query name becomes a registrable domain.
struct NormalizeOptions {
  std::string psl = "latest_any";
  std::vector<std::string> search_suffixes;
  double dedup_window_s = 1.0;
  std::uint32_t reverse_zone_v4_octets = 3;
  std::uint32_t reverse_zone_v6_nibbles = 12;
};

// detection.memory: the tables' sizes, allocated at start. A budget of its own, apart from
// analytics.memory_mib.
struct MemoryOptions {
  std::uint64_t base_entries = 4'194'304;
  std::uint64_t candidate_entries = 65'536;
  std::uint64_t watch_entries = 1'024;
  std::uint64_t seen_filter_entries = 8'388'608;
  std::uint64_t doorkeeper_bits = 33'554'432;
};

// detection.export: what reaches Prometheus and the event log.
struct ExportOptions {
  std::uint32_t top_n_per_detector = 10;
  std::uint32_t hold_seconds = 900;
  std::vector<std::string> watchlist;
  std::vector<std::string> allowlist_domains;
  std::vector<std::string> allowlist_orgs;
  std::string metrics_snapshot_dir;
};

struct DetectOptions {
  bool enabled = false;  // off: no detection state is allocated and no lookup event is made
  TimeOptions time;
  std::string vantage = "client_side";  // or "authoritative_side"
  ClientOptions clients;
  NormalizeOptions normalize;
  MemoryOptions memory;
  DetectorParams detectors;
  ExportOptions exports;    // the `export` key
  std::string state_file;   // "" none
  std::string events_file;  // "" none; --events-out overrides it
};

// Bytes of each table the memory options make (detection spec 3.4), all allocated at start.
struct MemoryPlan {
  static constexpr std::uint64_t kBaseEntryBytes = 88;
  static constexpr std::uint64_t kCandidateEntryBytes = 2560;
  static constexpr std::uint64_t kWatchEntryBytes = 16384;
  static constexpr std::uint64_t kSeenFilterEntryBytes = 6;  // 16-bit fingerprint, two 16-bit days
  static constexpr std::uint64_t kGlobalBytes = 1U << 20U;   // HyperLogLogs and counters

  std::uint64_t base = 0, candidate = 0, watch = 0, seen_filter = 0, doorkeeper = 0,
                global = kGlobalBytes;

  [[nodiscard]] std::uint64_t total() const noexcept {
    return base + candidate + watch + seen_filter + doorkeeper + global;
  }
};

[[nodiscard]] inline MemoryPlan memory_plan(const MemoryOptions& m) noexcept {
  MemoryPlan p;
  const auto round_up = [](std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; };
  p.base = round_up(m.base_entries, 8) * MemoryPlan::kBaseEntryBytes;
  p.candidate = m.candidate_entries * MemoryPlan::kCandidateEntryBytes;
  p.watch = m.watch_entries * MemoryPlan::kWatchEntryBytes;
  p.seen_filter = round_up(m.seen_filter_entries, 4) * MemoryPlan::kSeenFilterEntryBytes;
  p.doorkeeper = round_up(m.doorkeeper_bits, 64) / 8;
  return p;
}

// --- The syntax of option values, shared by the config check and the engine ---------------

// A CIDR prefix: 16 address bytes (IPv4 as ::ffff:a.b.c.d), its length counted in the IPv6 form
// (an IPv4 /24 is /120 here) and the family.
struct Cidr {
  std::array<std::uint8_t, 16> addr{};
  std::uint8_t bits = 0;  // in the 128-bit form
  bool v4 = false;
};

namespace options_detail {

inline bool parse_v4(std::string_view s, std::array<std::uint8_t, 16>& out) {
  std::array<std::uint8_t, 16> a{};
  a[10] = a[11] = 0xff;
  for (int i = 0; i < 4; ++i) {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end == s.data() || v > 255 || end - s.data() > 3) {
      return false;
    }
    a[12 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    s.remove_prefix(static_cast<std::size_t>(end - s.data()));
    if (i < 3) {
      if (s.empty() || s.front() != '.') {
        return false;
      }
      s.remove_prefix(1);
    }
  }
  if (!s.empty()) {
    return false;
  }
  out = a;
  return true;
}

inline bool parse_v6(std::string_view s, std::array<std::uint8_t, 16>& out) {
  std::array<std::uint16_t, 8> head{}, tail{};
  std::size_t nh = 0, nt = 0;
  bool gap = false;
  if (s.starts_with("::")) {
    gap = true;
    s.remove_prefix(2);
  }
  while (!s.empty()) {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
    if (ec != std::errc{} || end == s.data() || end - s.data() > 4) {
      return false;
    }
    auto& group = gap ? tail : head;
    auto& n = gap ? nt : nh;
    if (n + (gap ? nh : 0) >= 8) {
      return false;
    }
    group[n++] = static_cast<std::uint16_t>(v);
    s.remove_prefix(static_cast<std::size_t>(end - s.data()));
    if (s.starts_with("::")) {
      if (gap) {
        return false;
      }
      gap = true;
      s.remove_prefix(2);
    } else if (s.starts_with(':')) {
      s.remove_prefix(1);
      if (s.empty()) {
        return false;
      }
    } else if (!s.empty()) {
      return false;
    }
  }
  if ((!gap && nh != 8) || (gap && nh + nt > 7)) {
    return false;
  }
  std::array<std::uint8_t, 16> a{};
  for (std::size_t i = 0; i < nh; ++i) {
    a[2 * i] = static_cast<std::uint8_t>(head[i] >> 8U);
    a[2 * i + 1] = static_cast<std::uint8_t>(head[i]);
  }
  for (std::size_t i = 0; i < nt; ++i) {
    const std::size_t at = 8 - nt + i;
    a[2 * at] = static_cast<std::uint8_t>(tail[i] >> 8U);
    a[2 * at + 1] = static_cast<std::uint8_t>(tail[i]);
  }
  out = a;
  return true;
}

inline bool digits(std::string_view s, std::size_t at, std::size_t n, unsigned& v) {
  if (at + n > s.size()) {
    return false;
  }
  v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

}  // namespace options_detail

// "10.0.0.0/8", "2001:db8::/32" or a single address (a host prefix). None if malformed or the
// address has bits set beyond the prefix.
[[nodiscard]] inline std::optional<Cidr> parse_cidr(std::string_view s) {
  Cidr c;
  std::string_view addr = s;
  std::optional<unsigned> len;
  if (const auto slash = s.find('/'); slash != std::string_view::npos) {
    addr = s.substr(0, slash);
    const std::string_view l = s.substr(slash + 1);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(l.data(), l.data() + l.size(), v);
    if (ec != std::errc{} || end != l.data() + l.size() || l.empty() || l.size() > 3) {
      return std::nullopt;
    }
    len = v;
  }
  if (options_detail::parse_v4(addr, c.addr)) {
    c.v4 = true;
    if (len.value_or(32) > 32) {
      return std::nullopt;
    }
    c.bits = static_cast<std::uint8_t>(96 + len.value_or(32));
  } else if (options_detail::parse_v6(addr, c.addr)) {
    if (len.value_or(128) > 128) {
      return std::nullopt;
    }
    c.bits = static_cast<std::uint8_t>(len.value_or(128));
  } else {
    return std::nullopt;
  }
  for (unsigned bit = c.bits; bit < 128; ++bit) {
    const unsigned byte = c.addr[bit / 8];
    if (((byte >> (7U - bit % 8U)) & 1U) != 0) {
      return std::nullopt;
    }
  }
  return c;
}

// An RFC 3339 instant ("2016-04-04T00:00:00Z", "2016-04-04t02:00:00.5+02:00") in ns since the
// Unix epoch, years 1970 to 2200. None if malformed.
[[nodiscard]] inline std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
  using options_detail::digits;
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  constexpr std::array<unsigned, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] ||
      (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60) {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::int64_t frac_ns = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    std::int64_t scale = 100'000'000;
    const std::size_t start = at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      frac_ns += static_cast<std::int64_t>(s[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == start) {
      return std::nullopt;
    }
  }
  std::int64_t offset_s = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
    unsigned oh = 0, om = 0;
    if (!digits(s, at + 1, 2, oh) || at + 3 >= s.size() || s[at + 3] != ':' ||
        !digits(s, at + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = (s[at] == '+' ? 1 : -1) * (std::int64_t{oh} * 3600 + std::int64_t{om} * 60);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != s.size()) {
    return std::nullopt;
  }
  const std::int64_t days = dnsmon::days_from_civil(y, mo, d);
  const std::int64_t secs =
      days * 86400 + std::int64_t{h} * 3600 + std::int64_t{mi} * 60 + sec - offset_s;
  return secs * 1'000'000'000 + frac_ns;
}

}  // namespace dnsmon::detect
