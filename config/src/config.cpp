#include "dnsmon/config.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <netinet/in.h>
#include <sys/resource.h>
#include <system_error>
#include <unistd.h>
#include <utility>

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include "dnsmon/version.hpp"

#include "binder.hpp"

namespace dnsmon {
namespace {

using namespace detail;  // the binder (binder.hpp) serves this file alone

constexpr std::size_t kMaxConfigBytes = 1U << 20U;  // a config larger than 1 MiB is not a config

constexpr std::uint64_t kMiB = 1U << 20U;
constexpr std::uint64_t kSecondNs = 1'000'000'000;
constexpr std::array<std::string_view, 6> kLogLevels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};

std::string listen_error(const std::string& listen, const std::string& why) {
  return "expected ADDRESS:PORT such as 127.0.0.1:9917 or [::1]:9917, got \"" + listen +
         "\": " + why;
}

// --- Checks that run once their key is stored (.then in the table) -------------------------

void check_interface_names(const Site& site, Config& c) {
  for (const auto& name : c.capture.interfaces) {
    if (name.empty()) {
      site.fail("an interface name cannot be empty");
    }
  }
}

void check_dnstap_sockets(const Site& site, Config& c) {
  const auto& paths = c.capture.dnstap_sockets;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (paths[i].empty() || paths[i].size() > kMaxSocketPathBytes) {
      site.fail_item(
          i, "a socket path must have 1 to " + std::to_string(kMaxSocketPathBytes) + " characters");
    }
    if (std::find(paths.begin(), paths.begin() + static_cast<std::ptrdiff_t>(i), paths[i]) !=
        paths.begin() + static_cast<std::ptrdiff_t>(i)) {
      site.fail_item(i, "the same socket twice");
    }
  }
}

void check_socket_mode(const Site& site, Config& c) {
  std::uint32_t mode = 0;
  if (!parse_socket_mode(c.capture.dnstap_socket_mode, mode)) {
    site.fail(R"(expected permission bits in octal, 0 to 0777 (such as "0660"), got ")" +
              c.capture.dnstap_socket_mode + '"');
  }
}

void note_snaplen_given(const Site& /*site*/, Config& c) {
  c.capture.snaplen_given = true;
}

void check_distinct_windows(const Site& site, Config& c) {
  const auto& w = c.metrics.analytics.windows_s;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (std::find(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(i), w[i]) !=
        w.begin() + static_cast<std::ptrdiff_t>(i)) {
      site.fail_item(i, "the same window twice");
    }
  }
}

void check_pseudonymise_key(const Site& site, Config& c) {
  const auto& key = c.metrics.analytics.pseudonymise_key;
  if (!key.empty() && key.size() < 16) {
    site.fail("too short to keep addresses secret: use 16 or more random characters");
  }
}

// exporter.listen: an address the exporter can bind. Given in the file, /metrics is served in
// offline runs too.
void check_listen(const Site& site, Config& c) {
  std::string addr;
  std::uint16_t port = 0;
  std::string why;
  if (!split_listen(c.daemon.listen, addr, port, &why)) {
    site.fail(listen_error(c.daemon.listen, why));
  }
  c.daemon.listen_given = true;
}

// daemon.user: "" or a user name as the system writes them (whether it exists is checked when
// dnsmon starts as root, where it is needed).
bool user_name_ok(const std::string& u) {
  return !u.empty() && u.size() <= 256 && u.front() != '-' &&
         u.find_first_of(": \t\n/") == std::string::npos;
}

void check_user(const Site& site, Config& c) {
  if (!c.daemon.user.empty() && !user_name_ok(c.daemon.user)) {
    site.fail(R"(expected a user name such as dnsmon, or "", got ")" + c.daemon.user + '"');
  }
}

// detection.time.origin: first_packet or an RFC 3339 instant.
void check_origin(const Site& site, Config& c) {
  auto& t = c.detection.time;
  if (t.origin == "first_packet") {
    t.origin_ns.reset();
    return;
  }
  t.origin_ns = detect::parse_rfc3339(t.origin);
  if (!t.origin_ns) {
    site.fail("expected first_packet or an RFC 3339 instant such as 2016-04-04T00:00:00Z, got \"" +
              t.origin + "\"");
  }
}

void check_local_networks(const Site& site, Config& c) {
  const auto& nets = c.metrics.local_networks;
  for (std::size_t i = 0; i < nets.size(); ++i) {
    ServerAddresses probe;
    if (!probe.add(nets[i])) {
      site.fail_item(i,
                     "expected a CIDR prefix or address such as 10.0.0.53/32, 192.0.2.0/24 or "
                     "2001:db8::53 (no bits set after the prefix), got \"" +
                         nets[i] + "\"");
    }
  }
}

void check_internal_networks(const Site& site, Config& c) {
  const auto& nets = c.detection.clients.internal_networks;
  for (std::size_t i = 0; i < nets.size(); ++i) {
    if (!detect::parse_cidr(nets[i])) {
      site.fail_item(i,
                     "expected a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32 (no bits set "
                     "after the prefix), got \"" +
                         nets[i] + "\"");
    }
  }
}

// A domain name as detection compares them: lower case, no final dot, 1 to 253 characters of
// letters, digits, '-', '_' and '.', no empty label.
bool domain_name_ok(std::string& name) {
  if (!name.empty() && name.back() == '.') {
    name.pop_back();
  }
  if (name.empty() || name.size() > 253 || name.front() == '.' ||
      name.find("..") != std::string::npos) {
    return false;
  }
  for (char& ch : name) {
    if (ch >= 'A' && ch <= 'Z') {
      ch = static_cast<char>(ch - 'A' + 'a');
    }
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
          ch == '.')) {
      return false;
    }
  }
  return true;
}

void check_search_suffixes(const Site& site, Config& c) {
  auto& names = c.detection.normalize.search_suffixes;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!domain_name_ok(names[i])) {
      site.fail_item(i,
                     "expected a domain name such as corp.example.com, got \"" + names[i] + "\"");
    }
  }
}

void check_watchlist(const Site& site, Config& c) {
  auto& names = c.detection.exports.watchlist;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!domain_name_ok(names[i])) {
      site.fail_item(i,
                     "expected a registrable domain such as example.com, got \"" + names[i] + "\"");
    }
  }
}

void check_allowlist_domains(const Site& site, Config& c) {
  auto& names = c.detection.exports.allowlist_domains;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!domain_name_ok(names[i])) {
      site.fail_item(i,
                     "expected a registrable domain such as example.com, got \"" + names[i] + "\"");
    }
  }
}

// --- The key table -------------------------------------------------------------------------
//
// Each key of the file is one row (binder.hpp): its dotted path, what kind of value it takes and
// in which range, the field of Config it sets, a line of help, and whether a running dnsmon could
// apply a change (live) or needs a restart. Defaults are not written here: they are read from a
// default-constructed Config. A section row ("analytics.clients") makes a nested mapping; the keys
// allowed in a mapping are the rows under it, in table order. Checks that a kind and range cannot
// express run after their key is stored (.then), and checks across keys after the whole file.

using C = Config;
using Cap = CaptureOptions;
using Par = ParserOptions;
using Met = MetricsOptions;
using Ana = AnalyticsOptions;
using Dae = DaemonOptions;
using Det = detect::DetectOptions;
using DTi = detect::TimeOptions;
using DCl = detect::ClientOptions;
using DNo = detect::NormalizeOptions;
using DMe = detect::MemoryOptions;
using DEx = detect::ExportOptions;
using DPa = detect::DetectorParams;

constexpr std::array<std::string_view, 2> kVantages = {"client_side", "authoritative_side"};
constexpr std::array<std::string_view, 1> kPslModes = {"latest_any"};

// A detector's parameter: detection.detectors.DETECTOR.NAME, bound to DetectorParams.
template <auto Detector, auto... Field>
constexpr Binding param() {
  return bind<&C::detection, &Det::detectors, Detector, Field...>();
}

constexpr std::array kKeys = std::to_array<Key>({
    section("capture", "where frames come from"),
    strings("capture.interfaces", bind<&C::capture, &Cap::interfaces>(), 64, "interface names",
            "network interfaces to capture on live, one capture thread each")
        .then(check_interface_names),
    strings("capture.dnstap_sockets", bind<&C::capture, &Cap::dnstap_sockets>(), 16, "socket paths",
            "Unix sockets that DNS servers send dnstap to (live, one thread each; created at "
            "start, a stale socket file replaced, removed at exit)")
        .then(check_dnstap_sockets),
    text("capture.dnstap_socket_mode", bind<&C::capture, &Cap::dnstap_socket_mode>(),
         "permission bits of the dnstap socket files, in octal: the DNS server's user needs "
         "write permission to connect")
        .then(check_socket_mode),
    text("capture.dnstap_socket_group", bind<&C::capture, &Cap::dnstap_socket_group>(),
         "group of the dnstap socket files (such as unbound); \"\" the group dnsmon starts as"),
    text("capture.filter", bind<&C::capture, &Cap::bpf_filter>(),
         "BPF capture filter; \"\" is the built-in one (DNS on port 53 and every fragment)"),
    integer("capture.snaplen", bind<&C::capture, &Cap::snaplen>(), 64, 65535,
            "bytes kept per captured frame")
        .then(note_snaplen_given),
    integer("capture.buffer_mib", bind<&C::capture, &Cap::buffer_bytes>(), 1, 2047,
            "kernel capture buffer per interface, in MiB")
        .scaled(kMiB),
    boolean("capture.promiscuous", bind<&C::capture, &Cap::promiscuous>(),
            "put the interfaces in promiscuous mode (a mirror port or tap needs it)"),
    integer("capture.read_timeout_ms", bind<&C::capture, &Cap::timeout_ms>(), 1, 1000,
            "how long libpcap may hold frames to deliver them in batches"),
    integer("capture.ring_slots", bind<&C::capture, &Cap::ring_slots>(), 16, 1U << 20U,
            "frames each worker's ring can queue between capture and parsing"),
    integer("capture.workers", bind<&C::daemon, &Dae::workers>(), 1, 64, "parser threads"),
    boolean("capture.dedup", bind<&C::capture, &Cap::dedup>(),
            "drop a frame whose IP packet repeats one seen within 10 ms (a SPAN port mirroring "
            "both directions, two taps, -i any on a bridge)"),
    strings("capture.local_networks", bind<&C::metrics, &Met::local_networks>(), 1024,
            "CIDR prefixes",
            "the watched server's addresses, for the leg label: a query to one is the client "
            "leg, from one the upstream leg (live, the host's own addresses count too)")
        .then(check_local_networks),

    section("parser", "what is decoded"),
    integers("parser.dns_ports", bind<&C::parser, &Par::dns_ports>(), 1, 16, 1, 65535,
             "port numbers", "UDP/TCP ports whose payload is decoded as DNS"),
    boolean("parser.mdns", bind<&C::parser, &Par::mdns>(), "also decode multicast DNS (UDP 5353)"),
    boolean("parser.llmnr", bind<&C::parser, &Par::llmnr>(), "also decode LLMNR (UDP/TCP 5355)"),
    integers("parser.encrypted_ports", bind<&C::parser, &Par::encrypted_ports>(), 0, 16, 1, 65535,
             "port numbers", "ports of DNS over TLS and QUIC, counted but not decoded"),
    section("parser.fragments", "IP fragment reassembly, per worker"),
    integer("parser.fragments.max_datagrams", bind<&C::parser, &Par::fragment_datagrams>(), 1,
            1U << 20U, "datagrams waiting for fragments at once"),
    integer("parser.fragments.memory_mib", bind<&C::parser, &Par::fragment_memory_bytes>(), 1, 4096,
            "memory for waiting fragments, in MiB")
        .scaled(kMiB),
    integer("parser.fragments.timeout_s", bind<&C::parser, &Par::fragment_timeout_ns>(), 1, 300,
            "packet time a datagram waits for its missing fragments")
        .scaled(kSecondNs),
    section("parser.tcp", "DNS over TCP stream reassembly, per worker"),
    integer("parser.tcp.max_flows", bind<&C::parser, &Par::tcp_flows>(), 1, 1U << 22U,
            "directions of connections tracked at once"),
    integer("parser.tcp.memory_mib", bind<&C::parser, &Par::tcp_memory_bytes>(), 1, 4096,
            "memory for buffered stream bytes, in MiB")
        .scaled(kMiB),
    integer("parser.tcp.idle_timeout_s", bind<&C::parser, &Par::tcp_idle_timeout_ns>(), 1, 3600,
            "packet time after which an idle flow is dropped")
        .scaled(kSecondNs),

    section("analytics", "sliding-window top-N tables, distinct counts and query matching"),
    boolean("analytics.enabled", bind<&C::metrics, &Met::analytics, &Ana::enabled>(),
            "the sliding-window top-N tables and distinct counts"),
    integer("analytics.memory_mib", bind<&C::metrics, &Met::memory_budget_bytes>(), 1, 65536,
            "budget for all analytics state of all workers, in MiB")
        .scaled(kMiB),
    durations("analytics.windows", bind<&C::metrics, &Met::analytics, &Ana::windows_s>(), 1, 8, 1,
              86400, "the sliding windows of packet time")
        .then(check_distinct_windows),
    integer("analytics.sub_windows", bind<&C::metrics, &Met::analytics, &Ana::sub_windows>(), 1, 60,
            "equal parts of whole seconds each window slides by"),
    integer("analytics.top_n", bind<&C::metrics, &Met::analytics, &Ana::top_n>(), 1, 1000,
            "series per top-N table and window")
        .live(),
    integer("analytics.top_capacity", bind<&C::metrics, &Met::analytics, &Ana::top_capacity>(), 1,
            1U << 16U, "counters each top-N table keeps per sub-window (at least top_n)"),
    integer("analytics.hll_precision", bind<&C::metrics, &Met::analytics, &Ana::hll_precision>(), 4,
            18, "HyperLogLog registers (2^p bytes) per distinct count"),
    text("analytics.public_suffix_list",
         bind<&C::metrics, &Met::analytics, &Ana::public_suffix_list>(),
         "Public Suffix List file; \"\" is the system's or libpsl's"),
    section("analytics.clients", "how clients are labelled"),
    integer("analytics.clients.ipv4_prefix",
            bind<&C::metrics, &Met::analytics, &Ana::client_ipv4_prefix>(), 0, 32,
            "count IPv4 clients by address (32) or by prefix"),
    integer("analytics.clients.ipv6_prefix",
            bind<&C::metrics, &Met::analytics, &Ana::client_ipv6_prefix>(), 0, 128,
            "count IPv6 clients by address (128) or by prefix"),
    boolean("analytics.clients.pseudonymise",
            bind<&C::metrics, &Met::analytics, &Ana::pseudonymise_clients>(),
            "label clients with a keyed hash instead of the address"),
    text("analytics.clients.pseudonymise_key",
         bind<&C::metrics, &Met::analytics, &Ana::pseudonymise_key>(),
         "16 or more secret characters; \"\" is a random key per start")
        .then(check_pseudonymise_key),
    section("analytics.matching", "query/response matching, per worker"),
    integer("analytics.matching.capacity", bind<&C::metrics, &Met::matching_capacity>(), 1,
            1U << 24U, "outstanding queries per worker"),
    integer("analytics.matching.timeout_ms", bind<&C::metrics, &Met::matching_timeout_ms>(), 1,
            3'600'000, "packet time a response may take"),

    section("detection", "per-domain detection: lookup events, domain tables, detectors"),
    boolean("detection.enabled", bind<&C::detection, &Det::enabled>(),
            "make lookup events and keep the domain tables (needs the detection.memory budget)"),
    text("detection.state_file", bind<&C::detection, &Det::state_file>(),
         "file the detection state is kept in across restarts: loaded at start, written every "
         "15 minutes live and at the stop or the end of a replay; \"\" none"),
    text("detection.events_file", bind<&C::detection, &Det::events_file>(),
         "JSON Lines file detector events are appended to; \"\" none (--events-out overrides)"),
    section("detection.time", "the logical clock"),
    real("detection.time.compression", bind<&C::detection, &Det::time, &DTi::compression>(), 1, 1e6,
         "logical seconds per second of packet time (1440: a day per minute)"),
    text("detection.time.origin", bind<&C::detection, &Det::time, &DTi::origin>(),
         "first_packet, or the RFC 3339 instant logical time starts at")
        .then(check_origin),
    one_of("detection.vantage", bind<&C::detection, &Det::vantage>(), kVantages,
           "where dnsmon sees the traffic: between clients and their resolver, or at an "
           "authoritative server")
        .live(),
    section("detection.clients", "who a querier is"),
    strings("detection.clients.internal_networks",
            bind<&C::detection, &Det::clients, &DCl::internal_networks>(), 1024, "CIDR prefixes",
            "networks whose hosts count one by one")
        .then(check_internal_networks)
        .live(),
    integer("detection.clients.external_v4_prefix",
            bind<&C::detection, &Det::clients, &DCl::external_v4_prefix>(), 0, 32,
            "other IPv4 clients form an organisation per prefix of this length")
        .live(),
    integer("detection.clients.external_v6_prefix",
            bind<&C::detection, &Det::clients, &DCl::external_v6_prefix>(), 0, 128,
            "other IPv6 clients form an organisation per prefix of this length")
        .live(),
    text("detection.clients.org_map_file", bind<&C::detection, &Det::clients, &DCl::org_map_file>(),
         R"(file of "CIDR NAME" lines naming organisations; "" none)")
        .live(),
    section("detection.normalize", "how a query name becomes a registrable domain"),
    one_of("detection.normalize.psl", bind<&C::detection, &Det::normalize, &DNo::psl>(), kPslModes,
           "public suffix rules: the newest list, ICANN and private sections"),
    strings("detection.normalize.search_suffixes",
            bind<&C::detection, &Det::normalize, &DNo::search_suffixes>(), 64, "domain names",
            "search-list suffixes whose run-on queries count for the embedded domain")
        .then(check_search_suffixes)
        .live(),
    real("detection.normalize.dedup_window_s",
         bind<&C::detection, &Det::normalize, &DNo::dedup_window_s>(), 0, 60,
         "logical seconds in which repeated queries of a client for a domain are one lookup event")
        .live(),
    integer("detection.normalize.reverse_zone_v4_octets",
            bind<&C::detection, &Det::normalize, &DNo::reverse_zone_v4_octets>(), 1, 4,
            "in-addr.arpa names count for the zone of this many address octets")
        .live(),
    integer("detection.normalize.reverse_zone_v6_nibbles",
            bind<&C::detection, &Det::normalize, &DNo::reverse_zone_v6_nibbles>(), 1, 32,
            "ip6.arpa names count for the zone of this many address nibbles")
        .live(),
    section("detection.memory", "the domain tables, allocated at start"),
    integer("detection.memory.base_entries",
            bind<&C::detection, &Det::memory, &DMe::base_entries>(), 8, 1ULL << 32U,
            "registrable domains the base table holds (88 bytes each, 8 per bucket)"),
    integer("detection.memory.candidate_entries",
            bind<&C::detection, &Det::memory, &DMe::candidate_entries>(), 1, 1U << 24U,
            "domains under closer watch (2.5 KiB each)"),
    integer("detection.memory.watch_entries",
            bind<&C::detection, &Det::memory, &DMe::watch_entries>(), 1, 1U << 16U,
            "watch-listed and pinned domains (16 KiB each)"),
    integer("detection.memory.seen_filter_entries",
            bind<&C::detection, &Det::memory, &DMe::seen_filter_entries>(), 4, 1ULL << 32U,
            "evicted domains remembered with their first and last active day (6 bytes each)"),
    integer("detection.memory.doorkeeper_bits",
            bind<&C::detection, &Det::memory, &DMe::doorkeeper_bits>(), 64, 1ULL << 36U,
            "bits of the daily admission Bloom filter"),
    section("detection.detectors", "the detectors' thresholds and weights"),
    section("detection.detectors.querier_concentration", "few organisations ask for the domain"),
    integer("detection.detectors.querier_concentration.window_days",
            param<&DPa::querier_concentration, &detect::QuerierConcentrationParams::window_days>(),
            1, 64, "logical days of the window")
        .live(),
    integer("detection.detectors.querier_concentration.min_events",
            param<&DPa::querier_concentration, &detect::QuerierConcentrationParams::min_events>(),
            0, 1U << 30U, "lookup events in the window")
        .live(),
    integer(
        "detection.detectors.querier_concentration.min_active_days",
        param<&DPa::querier_concentration, &detect::QuerierConcentrationParams::min_active_days>(),
        0, 64, "days with a lookup event in the window")
        .live(),
    real("detection.detectors.querier_concentration.min_top2_share",
         param<&DPa::querier_concentration, &detect::QuerierConcentrationParams::min_top2_share>(),
         0, 1, "share of the events from the two busiest organisations")
        .live(),
    integer(
        "detection.detectors.querier_concentration.max_orgs_1pct",
        param<&DPa::querier_concentration, &detect::QuerierConcentrationParams::max_orgs_1pct>(), 0,
        1U << 20U, "organisations with 1 % or more of the events, at most")
        .live(),
    integer(
        "detection.detectors.querier_concentration.min_population",
        param<&DPa::querier_concentration, &detect::QuerierConcentrationParams::min_population>(),
        0, 1U << 30U, "distinct clients seen in the window, at least")
        .live(),
    section("detection.detectors.dormant_reactivation", "a domain wakes after a long silence"),
    integer("detection.detectors.dormant_reactivation.min_gap_days",
            param<&DPa::dormant_reactivation, &detect::DormantReactivationParams::min_gap_days>(),
            1, 3650, "silent logical days before the new run")
        .live(),
    integer(
        "detection.detectors.dormant_reactivation.min_history_days",
        param<&DPa::dormant_reactivation, &detect::DormantReactivationParams::min_history_days>(),
        0, 3650, "days from first sighting to the new run")
        .live(),
    integer(
        "detection.detectors.dormant_reactivation.post_window_days",
        param<&DPa::dormant_reactivation, &detect::DormantReactivationParams::post_window_days>(),
        1, 64, "days after the new run's start in which it must reach min_events")
        .live(),
    integer("detection.detectors.dormant_reactivation.min_events",
            param<&DPa::dormant_reactivation, &detect::DormantReactivationParams::min_events>(), 1,
            1U << 20U, "lookup events in the post window")
        .live(),
    integer(
        "detection.detectors.dormant_reactivation.min_active_days",
        param<&DPa::dormant_reactivation, &detect::DormantReactivationParams::min_active_days>(), 1,
        64, "active days in the post window")
        .live(),
    section("detection.detectors.newly_observed", "a domain never seen before"),
    integer("detection.detectors.newly_observed.warmup_days",
            param<&DPa::newly_observed, &detect::NewlyObservedParams::warmup_days>(), 0, 3650,
            "logical days before first sightings count as new")
        .live(),
    integer("detection.detectors.newly_observed.min_events_7d",
            param<&DPa::newly_observed, &detect::NewlyObservedParams::min_events_7d>(), 1,
            1U << 20U, "lookup events in the 7 days after the first sighting")
        .live(),
    section("detection.detectors.burst", "daily spikes against an EWMA baseline"),
    real("detection.detectors.burst.alpha", param<&DPa::burst, &detect::BurstParams::alpha>(),
         0.001, 1, "EWMA weight of the newest day")
        .live(),
    integer("detection.detectors.burst.min_history_days",
            param<&DPa::burst, &detect::BurstParams::min_history_days>(), 0, 3650,
            "days of baseline before a spike counts")
        .live(),
    integer("detection.detectors.burst.min_count",
            param<&DPa::burst, &detect::BurstParams::min_count>(), 0, 1U << 30U,
            "lookup events on the day, at least")
        .live(),
    real("detection.detectors.burst.min_ratio",
         param<&DPa::burst, &detect::BurstParams::min_ratio>(), 1, 1e6,
         "day count over the baseline, at least")
        .live(),
    real("detection.detectors.burst.min_z", param<&DPa::burst, &detect::BurstParams::min_z>(), 0,
         1e3, "standard deviations above the baseline, at least")
        .live(),
    integer("detection.detectors.burst.level_shift_days",
            param<&DPa::burst, &detect::BurstParams::level_shift_days>(), 1, 64,
            "consecutive firing days read as a new level instead of a burst")
        .live(),
    section("detection.detectors.acceleration", "lookup rate rising block after block"),
    integer("detection.detectors.acceleration.min_blocks",
            param<&DPa::acceleration, &detect::AccelerationParams::min_blocks>(), 2, 64,
            "weekly blocks compared")
        .live(),
    real("detection.detectors.acceleration.ratio",
         param<&DPa::acceleration, &detect::AccelerationParams::ratio>(), 1, 1e3,
         "growth from block to block, at least")
        .live(),
    section("detection.detectors.intermittency", "on-and-off activity"),
    integer("detection.detectors.intermittency.min_weekdays",
            param<&DPa::intermittency, &detect::IntermittencyParams::min_weekdays>(), 1, 3650,
            "weekdays observed, at least")
        .live(),
    real("detection.detectors.intermittency.min_fano",
         param<&DPa::intermittency, &detect::IntermittencyParams::min_fano>(), 0, 1e6,
         "variance over mean of the daily counts, at least")
        .live(),
    section("detection.detectors.beacon", "machine-periodic lookups"),
    integer("detection.detectors.beacon.min_events",
            param<&DPa::beacon, &detect::BeaconParams::min_events>(), 3, 1U << 20U,
            "lookup events before a score is computed")
        .live(),
    integer("detection.detectors.beacon.ring", param<&DPa::beacon, &detect::BeaconParams::ring>(),
            8, 256,
            "the newest lookup times of a domain the beacon reads (a candidate keeps 256); "
            "min_events of them at least")
        .live(),
    section("detection.detectors.beacon.weights", "weights of the beacon score's parts"),
    real("detection.detectors.beacon.weights.ts",
         param<&DPa::beacon, &detect::BeaconParams::weights, &detect::BeaconWeights::ts>(), 0, 1,
         "timestamp skew and dispersion")
        .live(),
    real("detection.detectors.beacon.weights.hist",
         param<&DPa::beacon, &detect::BeaconParams::weights, &detect::BeaconWeights::hist>(), 0, 1,
         "interval histogram")
        .live(),
    real("detection.detectors.beacon.weights.dur",
         param<&DPa::beacon, &detect::BeaconParams::weights, &detect::BeaconWeights::dur>(), 0, 1,
         "duration of the activity")
        .live(),
    real("detection.detectors.beacon.machine_score",
         param<&DPa::beacon, &detect::BeaconParams::machine_score>(), 0, 1,
         "score from which lookups read as a machine's")
        .live(),
    real("detection.detectors.beacon.machine_cv",
         param<&DPa::beacon, &detect::BeaconParams::machine_cv>(), 0, 100,
         "interval coefficient of variation below which lookups read as a machine's")
        .live(),
    real("detection.detectors.beacon.human_cv",
         param<&DPa::beacon, &detect::BeaconParams::human_cv>(), 0, 100,
         "interval coefficient of variation above which lookups read as a person's")
        .live(),
    section("detection.detectors.tunneling", "data carried in query names"),
    integer("detection.detectors.tunneling.min_unique_per_hour",
            param<&DPa::tunneling, &detect::TunnelingParams::min_unique_per_hour>(), 1, 1U << 30U,
            "distinct names under the domain in an hour")
        .live(),
    real("detection.detectors.tunneling.min_mean_prefix_len",
         param<&DPa::tunneling, &detect::TunnelingParams::min_mean_prefix_len>(), 0, 253,
         "mean length of the labels before the registrable domain")
        .live(),
    real("detection.detectors.tunneling.min_entropy",
         param<&DPa::tunneling, &detect::TunnelingParams::min_entropy>(), 0, 8,
         "bits of character entropy of those labels")
        .live(),
    real("detection.detectors.tunneling.min_info_bytes_per_hour",
         param<&DPa::tunneling, &detect::TunnelingParams::min_info_bytes_per_hour>(), 0, 1e12,
         "estimated bytes of information per hour")
        .live(),
    section("detection.detectors.disappearance", "a domain that answered starts failing"),
    integer("detection.detectors.disappearance.min_successes_7d",
            param<&DPa::disappearance, &detect::DisappearanceParams::min_successes_7d>(), 1,
            1U << 20U, "successful lookups in the 7 days before")
        .live(),
    integer("detection.detectors.disappearance.min_failures",
            param<&DPa::disappearance, &detect::DisappearanceParams::min_failures>(), 1, 1U << 20U,
            "consecutive failures for the transition")
        .live(),
    integer("detection.detectors.disappearance.persist_failures",
            param<&DPa::disappearance, &detect::DisappearanceParams::persist_failures>(), 1,
            1U << 20U, "failures since the last success for the persisting event")
        .live(),
    integer("detection.detectors.disappearance.persist_days",
            param<&DPa::disappearance, &detect::DisappearanceParams::persist_days>(), 1, 3650,
            "logical days the failures span for the persisting event")
        .live(),
    boolean("detection.detectors.disappearance.count_timeouts",
            param<&DPa::disappearance, &detect::DisappearanceParams::count_timeouts>(),
            "a query without a response counts as a failure")
        .live(),
    section("detection.detectors.successor", "a new name on a dead domain's address"),
    integer("detection.detectors.successor.max_age_days",
            param<&DPa::successor, &detect::SuccessorParams::max_age_days>(), 1, 3650,
            "logical days a dead domain's addresses are remembered")
        .live(),
    integer("detection.detectors.successor.max_domains_per_ip",
            param<&DPa::successor, &detect::SuccessorParams::max_domains_per_ip>(), 1, 1024,
            "domains on one address, at most (shared hosting is not a successor)")
        .live(),
    section("detection.detectors.covert_pair", "the composite score"),
    section("detection.detectors.covert_pair.weights", "weights of the composite's parts"),
    real("detection.detectors.covert_pair.weights.gate",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::gate>(),
         0, 1, "querier concentration")
        .live(),
    real("detection.detectors.covert_pair.weights.reactivated",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::reactivated>(),
         0, 1, "reactivation")
        .live(),
    real("detection.detectors.covert_pair.weights.new",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::new_>(),
         0, 1, "first sighting")
        .live(),
    real("detection.detectors.covert_pair.weights.accelerating",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::accelerating>(),
         0, 1, "acceleration")
        .live(),
    real("detection.detectors.covert_pair.weights.intermittent",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::intermittent>(),
         0, 1, "intermittency")
        .live(),
    real("detection.detectors.covert_pair.weights.disappeared",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::disappeared>(),
         0, 1, "disappearance")
        .live(),
    real("detection.detectors.covert_pair.weights.persisting",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::persisting>(),
         0, 1, "failures persisting after disappearance")
        .live(),
    real("detection.detectors.covert_pair.weights.successor",
         param<&DPa::covert_pair, &detect::CovertPairParams::weights,
               &detect::CovertPairWeights::successor>(),
         0, 1, "successor name")
        .live(),
    real("detection.detectors.covert_pair.medium",
         param<&DPa::covert_pair, &detect::CovertPairParams::medium>(), 0, 1,
         "score from which an event is medium")
        .live(),
    real("detection.detectors.covert_pair.high",
         param<&DPa::covert_pair, &detect::CovertPairParams::high>(), 0, 1,
         "score from which an event is high")
        .live(),
    integer("detection.detectors.covert_pair.max_new_per_day",
            param<&DPa::covert_pair, &detect::CovertPairParams::max_new_per_day>(), 0, 1U << 20U,
            "new medium-or-higher domains a day before the rest are held back")
        .live(),
    section("detection.export", "what reaches Prometheus and the event log"),
    integer("detection.export.top_n_per_detector",
            bind<&C::detection, &Det::exports, &DEx::top_n_per_detector>(), 0, 1000,
            "domains exported per detector, by score")
        .live(),
    integer("detection.export.hold_seconds",
            bind<&C::detection, &Det::exports, &DEx::hold_seconds>(), 0, 86400,
            "wall-clock seconds a domain's series stay after it leaves the top")
        .live(),
    strings("detection.export.watchlist", bind<&C::detection, &Det::exports, &DEx::watchlist>(),
            1024, "registrable domains", "domains always tracked and exported")
        .then(check_watchlist)
        .live(),
    strings("detection.export.allowlist_domains",
            bind<&C::detection, &Det::exports, &DEx::allowlist_domains>(), 65536,
            "registrable domains", "domains never reported")
        .then(check_allowlist_domains)
        .live(),
    strings("detection.export.allowlist_orgs",
            bind<&C::detection, &Det::exports, &DEx::allowlist_orgs>(), 65536, "organisations",
            "organisations (org_map names or prefixes) whose lookups never make a report")
        .live(),
    text("detection.export.metrics_snapshot_dir",
         bind<&C::detection, &Det::exports, &DEx::metrics_snapshot_dir>(),
         "directory for OpenMetrics snapshots of the metrics every logical hour, created if "
         "missing; \"\" none (--metrics-snapshot-dir overrides)"),

    section("exporter", "the Prometheus endpoint"),
    text("exporter.listen", bind<&C::daemon, &Dae::listen>(),
         "ADDRESS:PORT where /metrics is served")
        .then(check_listen),

    section("log", "logging to stderr"),
    one_of("log.level", bind<&C::daemon, &Dae::log_level>(), kLogLevels,
           "least severe level logged")
        .live(),
    integer("log.stats_interval_s", bind<&C::daemon, &Dae::stats_interval_s>(), 0, 86400,
            "seconds between the periodic stats log lines; 0 turns them off"),
    integer("log.events_max_mib", bind<&C::daemon, &Dae::events_max_mib>(), 0, 1048576,
            "the detection event log file (--events-out, detection.events_file) is renamed to "
            "FILE.1 (replacing it) and started anew when it grows by this many MiB; 0 never; "
            "SIGHUP reopens it (for logrotate)"),

    section("daemon", "the process: who it runs as"),
    text("daemon.user", bind<&C::daemon, &Dae::user>(),
         "started as root: the user to run as once capture, socket and files are open; \"\" "
         "is dnsmon, or nobody when there is no user dnsmon")
        .then(check_user),
    boolean("daemon.allow_root", bind<&C::daemon, &Dae::allow_root>(),
            "started as root: keep running as root instead of switching to daemon.user"),
});

// --- Checks across keys, once the file is bound -------------------------------------------

// Each window splits into analytics.sub_windows parts of whole seconds.
void check_windows_split(const Config& c) {
  const auto& a = c.metrics.analytics;
  const bool windows_in_file = c.positions.contains("analytics.windows");
  for (std::size_t i = 0; i < a.windows_s.size(); ++i) {
    if (a.windows_s[i] % a.sub_windows != 0) {
      throw ConfigError(located_error(
          c,
          windows_in_file ? "analytics.windows[" + std::to_string(i) + "]"
                          : std::string("analytics.sub_windows"),
          "a window of " + std::to_string(a.windows_s[i]) + " s cannot be split into " +
              std::to_string(a.sub_windows) + " whole-second sub-windows (analytics.sub_windows)"));
    }
  }
}

// Each top-N table keeps at least top_n counters.
void check_top_capacity(const Config& c) {
  const auto& a = c.metrics.analytics;
  if (a.top_capacity < a.top_n) {
    throw ConfigError(located_error(
        c,
        c.positions.contains("analytics.top_capacity") ? "analytics.top_capacity"
                                                       : "analytics.top_n",
        "top_capacity (" + std::to_string(a.top_capacity) + ") must be at least top_n (" +
            std::to_string(a.top_n) + "); 8 to 32 times top_n keeps the counts accurate"));
  }
}

// --replay-speed: 0, or a factor in this range (below it, a capture's time gaps would become
// centuries of waiting, and the pacing arithmetic would overflow).
constexpr double kMinReplaySpeed = 1e-3;
constexpr double kMaxReplaySpeed = 1e6;

std::string number_text(double v) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%g", v);
  return buf.data();
}

// Drops where the file sets path and its list items.
void forget_position(Config& c, std::string_view path) {
  std::erase_if(c.positions, [path](const auto& p) {
    const std::string_view key = p.first;
    return key.substr(0, path.size()) == path &&
           (key.size() == path.size() || key[path.size()] == '[');
  });
}

// A command-line flag's range check, from its key's row.
CLI::Range cli_range(std::string_view path) {
  const Key& k = key_at(kKeys, path);
  // The help text states the range itself; CLI11 would add its own type label to the name.
  CLI::Range range{static_cast<std::int64_t>(k.lo), static_cast<std::int64_t>(k.hi)};
  range.description("");
  return range;
}

// The detection tables are allocated whole at start: refuse sizes the machine cannot hold.
void check_detection_memory(const Config& c) {
  if (!c.detection.enabled) {
    return;
  }
  const auto plan = detect::memory_plan(c.detection.memory);
  const auto mib = [](std::uint64_t b) { return std::to_string((b + (1U << 20U) - 1) >> 20U); };
  std::uint64_t limit = 0;
  std::string what;
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    limit = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
    what = "the machine's memory";
  }
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY &&
      (limit == 0 || as.rlim_cur < limit)) {
    limit = as.rlim_cur;
    what = "the address-space limit (ulimit -v)";
  }
  if (limit != 0 && plan.total() > limit) {
    throw ConfigError(located_error(
        c, "detection.memory",
        "the detection tables need " + mib(plan.total()) + " MiB (base " + mib(plan.base) +
            ", candidates " + mib(plan.candidate) + ", watch " + mib(plan.watch) +
            ", seen filter " + mib(plan.seen_filter) + ", doorkeeper " + mib(plan.doorkeeper) +
            ", global " + mib(plan.global) + " MiB), more than " + what + " (" + mib(limit) +
            " MiB); lower the detection.memory entries"));
  }
}

}  // namespace

bool split_listen(const std::string& listen, std::string& address, std::uint16_t& port,
                  std::string* why) {
  const auto refuse = [why](const char* reason) {
    if (why != nullptr) {
      *why = reason;
    }
    return false;
  };
  if (listen.find_first_of(", \t") != std::string::npos) {
    return refuse("one address and port only, without spaces");
  }
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return refuse("no port");
  }
  const std::string p = listen.substr(colon + 1);
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc{} || end != p.data() + p.size() || v > 65535) {
    return refuse("the port must be a number from 0 to 65535");
  }
  const std::string a = listen.substr(0, colon);
  if (a.empty()) {
    return refuse("no address (0.0.0.0 or [::] listen on every address)");
  }
  if (a.front() == '[') {
    in6_addr v6{};
    if (a.size() < 3 || a.back() != ']' ||
        inet_pton(AF_INET6, a.substr(1, a.size() - 2).c_str(), &v6) != 1) {
      return refuse("not an IPv6 address in brackets");
    }
  } else if (a.find(':') != std::string::npos) {
    return refuse("an IPv6 address goes in brackets, e.g. [::1]:9917");
  } else {
    in_addr v4{};
    if (inet_pton(AF_INET, a.c_str(), &v4) != 1) {
      return refuse("not an IPv4 address (host names are not accepted)");
    }
  }
  address = a;
  port = static_cast<std::uint16_t>(v);
  return true;
}

std::string located_error(const Config& config, std::string_view path, std::string_view what) {
  std::string out;
  if (const auto it = config.positions.find(path); it != config.positions.end()) {
    out = config.daemon.config_path + ':' + std::to_string(it->second.line) + ':' +
          std::to_string(it->second.column) + ": ";
  }
  out += path;
  out += ": ";
  out += what;
  return out;
}

std::vector<KeyChange> changed_keys(const Config& before, const Config& after) {
  std::vector<KeyChange> out;
  for (const Key& k : kKeys) {
    if (k.kind == Kind::Section) {
      continue;
    }
    std::string a = format_value(k, k.bind.load(before, k.scale));
    std::string b = format_value(k, k.bind.load(after, k.scale));
    if (a != b) {
      out.push_back({.path = std::string(k.path),
                     .before = std::move(a),
                     .after = std::move(b),
                     .reload = k.reload});
    }
  }
  return out;
}

void copy_key(std::string_view path, const Config& from, Config& to) {
  const Key& k = key_at(kKeys, path);
  if (k.kind == Kind::Section) {
    throw std::logic_error("config key " + std::string(path) + " is a section");
  }
  k.bind.store(to, k.bind.load(from, k.scale), k.scale);
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    const Config defaults;
    std::vector<ConfigKey> out;
    for (const Key& k : kKeys) {
      const bool is_section = k.kind == Kind::Section;
      out.push_back(
          {.path = std::string(k.path),
           .section = is_section,
           .default_value = is_section ? "" : format_value(k, k.bind.load(defaults, k.scale)),
           .range = range_text(k),
           .help = std::string(k.help),
           .reload = k.reload});
    }
    return out;
  }();
  return keys;
}

std::string default_config_yaml() {
  std::string out =
      "# dnsmon configuration with every key at its default (dnsmon --print-defaults).\n"
      "# systemd/dnsmon.yaml documents each key in full. A key marked Reloadable takes a new\n"
      "# value on SIGHUP (systemctl reload dnsmon); a change of any other needs a restart.\n";
  for (const ConfigKey& k : config_keys()) {
    const auto depth = static_cast<std::size_t>(std::count(k.path.begin(), k.path.end(), '.'));
    const std::string indent(2 * depth, ' ');
    const std::string name(name_of(k.path));
    if (k.section) {
      if (depth == 0) {
        out += '\n';
      }
      out += indent;
      out += name;
      out += ":\n";
      continue;
    }
    out += indent + "# " + k.help + (k.range.empty() ? "" : ". " + k.range) +
           (k.reload == Reload::Live ? ". Reloadable" : "") + ".\n";
    out += indent + name + ": " + k.default_value + "\n";
  }
  return out;
}

Config load_config_file(const std::string& path, Config base) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw ConfigError(path + ": cannot open the config file" +
                      (err != 0 ? ": " + std::generic_category().message(err) : std::string()));
  }
  std::string text;
  text.resize(kMaxConfigBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {  // e.g. a directory: it opens, but reading fails
    throw ConfigError(path + ": cannot read the config file");
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    throw ConfigError(path + ": larger than 1 MiB; this is not a dnsmon config file");
  }
  base.daemon.config_path = path;
  return load_config_text(text, path, std::move(base));
}

Config load_config_text(const std::string& text, const std::string& path, Config base) {
  const FileContext ctx(path);
  base.positions.clear();
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    ctx.fail(e.mark, "", "not valid YAML: " + e.msg);
  }
  try {
    if (!root.IsNull()) {  // an empty file keeps every default
      bind_section(ctx, root, "", kKeys, base);
    }
  } catch (const YAML::Exception& e) {
    ctx.fail(e.mark, "", e.msg);
  }
  check_windows_split(base);
  check_top_capacity(base);
  return base;
}

void validate(const Config& c) {
  std::string addr;
  std::uint16_t port = 0;
  std::string why;
  if (!split_listen(c.daemon.listen, addr, port, &why)) {
    throw ConfigError("listen: " + listen_error(c.daemon.listen, why));
  }
  if (!c.capture.interfaces.empty() && !c.capture.files.empty()) {
    throw ConfigError("capture from interfaces (-i) and files (-r) cannot be mixed in one run");
  }
  if (!c.capture.dnstap_sockets.empty() && !c.capture.files.empty()) {
    throw ConfigError(
        "dnstap sockets (--dnstap-socket, capture.dnstap_sockets) are live input and files (-r) "
        "a replay: they cannot be mixed in one run");
  }
  // With detection on, the query matchers keep a tag per query to report timeouts.
  MetricsOptions metrics = c.metrics;
  metrics.matching_query_tags = c.detection.enabled;
  const std::uint64_t per_worker = analytics_bytes_per_worker(metrics);
  const std::uint64_t need = per_worker * c.daemon.workers;
  if (need > c.metrics.memory_budget_bytes) {
    const auto mib = [](std::uint64_t b) { return std::to_string((b + (1U << 20U) - 1) >> 20U); };
    throw ConfigError("analytics.memory_mib: the analytics of " + std::to_string(c.daemon.workers) +
                      " worker(s) need " + mib(need) + " MiB (" + mib(per_worker) +
                      " MiB each) but the budget is " + mib(c.metrics.memory_budget_bytes) +
                      " MiB; raise analytics.memory_mib, or lower analytics.top_capacity, "
                      "analytics.matching.capacity, the number of windows or workers");
  }
  check_detection_memory(c);
  // The embedded demo (no interface, no file) turns detection on itself.
  const bool demo =
      c.capture.interfaces.empty() && c.capture.files.empty() && c.capture.dnstap_sockets.empty();
  if (!c.daemon.events_out.empty() && !c.detection.enabled && !demo) {
    throw ConfigError(
        "--events-out / detection.events_file: detection is off; set detection.enabled: true in "
        "the config file");
  }
  if (!c.detection.exports.metrics_snapshot_dir.empty() && !c.detection.enabled && !demo) {
    throw ConfigError(
        "--metrics-snapshot-dir / detection.export.metrics_snapshot_dir: detection is off; set "
        "detection.enabled: true in the config file");
  }
}

CommandLine parse_command_line(int argc, const char* const* argv) {
  CommandLine out;
  CLI::App app{
      "dnsmon: real-time DNS capture and monitoring, exported as Prometheus metrics.\n\n"
      "Without -i or -r, dnsmon replays its embedded demo capture and serves /metrics on " +
          std::string(kDefaultListen) + " until stopped.",
      "dnsmon"};
  app.get_formatter()->column_width(34);
  app.footer(
      "Exit status: 0 ok (also after SIGTERM or SIGINT), 1 failure (input, interface, port, "
      "output, memory), 2 usage, 78 configuration.");

  std::string config_path;
  std::vector<std::string> interfaces, files, dnstap_sockets;
  std::optional<std::string> listen, metrics_out, messages_out, events_out, filter, log_level, user;
  std::optional<std::string> snapshot_dir;
  std::optional<std::uint32_t> workers, snaplen;
  std::optional<double> replay_speed;
  bool check_config = false;
  bool allow_root = false;
  bool serve_after_replay = false;
  bool print_defaults = false;
  bool version = false;

  app.add_option("--config", config_path, "YAML config file (flags override it)");
  app.add_option("-i,--interface", interfaces, "capture live on IFACE (repeatable)")
      ->type_name("IFACE");
  app.add_option("-r,--read", files,
                 "replay a pcap or pcapng file, FIFO or pipe, - for standard input (repeatable, "
                 "read in order)")
      ->type_name("FILE");
  app.add_option("--dnstap-socket", dnstap_sockets,
                 "receive dnstap from DNS servers (unbound, Knot Resolver, BIND, CoreDNS, "
                 "PowerDNS) on the Unix socket PATH, created at start with "
                 "capture.dnstap_socket_mode and _group (repeatable; live, with or without -i)")
      ->type_name("PATH");
  app.add_option("--listen", listen,
                 "serve /metrics on ADDR:PORT, an IPv4 address or [IPv6] (default " +
                     std::string(kDefaultListen) + "; offline runs serve only when given)")
      ->type_name("ADDR:PORT");
  app.add_option("--workers", workers,
                 "parser worker threads, 1 to 64 (default 1). Live: one capture thread per worker "
                 "on each interface, sharing its traffic by IP address pair (PACKET_FANOUT). A "
                 "replay with one worker reads and parses in one thread")
      ->type_name("N")
      ->check(cli_range("capture.workers"));
  app.add_option("--metrics-out", metrics_out,
                 "write the final metrics (text format) to FILE or - at the end of input or on "
                 "SIGTERM/SIGINT")
      ->type_name("FILE|-");
  app.add_option("--messages-out", messages_out,
                 "write one JSON line per decoded DNS message to FILE or - (not with "
                 "--metrics-out -). A failed write ends the log and makes the exit status 1; a "
                 "reader that goes away (EPIPE) only ends the log")
      ->type_name("FILE|-");
  app.add_option("--events-out", events_out,
                 "write one JSON line per detector event to FILE or - (needs detection.enabled: "
                 "true; overrides detection.events_file)")
      ->type_name("FILE|-");
  app.add_option("--metrics-snapshot-dir", snapshot_dir,
                 "write the metrics in OpenMetrics text, stamped with the logical time, to one "
                 "file in DIR every logical hour and at the end (needs detection.enabled: true; "
                 "overrides detection.export.metrics_snapshot_dir). A replay waits for each "
                 "file; at most 10000 files a run")
      ->type_name("DIR");
  app.add_option("--replay-speed", replay_speed,
                 "pace -r replays by packet time: 1 = real time, 10 = ten times faster, 0.5 = "
                 "half speed; 0 (the default) = as fast as possible. 0 or 0.001 to 1000000")
      ->type_name("X");
  app.add_flag("--serve-after-replay", serve_after_replay,
               "keep serving /metrics (on --listen, default " + std::string(kDefaultListen) +
                   ") after the end of a -r replay, until SIGTERM or SIGINT");
  app.add_option("--filter", filter,
                 "BPF capture filter (default live: DNS on port 53 and every UDP/TCP fragment, "
                 "also in VLAN tags, PPPoE sessions and MPLS label stacks on Ethernet; default "
                 "offline: none)")
      ->type_name("EXPR");
  app.add_option("--snaplen", snaplen,
                 "bytes kept per live frame, 64 to 65535 (default 4096; replays keep whole frames "
                 "unless given)")
      ->type_name("BYTES")
      ->check(cli_range("capture.snaplen"));
  app.add_option("--log-level", log_level, "trace, debug, info (the default), warn, error or off")
      ->type_name("LEVEL")
      ->check(CLI::IsMember(std::vector<std::string>(kLogLevels.begin(), kLogLevels.end()))
                  .description(""));
  app.add_option("--user", user,
                 "started as root: run as USER once capture, socket and files are open "
                 "(overrides daemon.user; default: dnsmon, or nobody when there is no user "
                 "dnsmon)")
      ->type_name("USER");
  app.add_flag("--allow-root", allow_root,
               "started as root: keep running as root (overrides daemon.allow_root: false)");
  app.add_flag("--check-config", check_config, "validate the configuration and exit");
  app.add_flag("--print-defaults", print_defaults,
               "print a config file with every key at its default and exit");
  app.add_flag("-V,--version", version, "print the version and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.action = CommandLine::Action::Exit;
    out.exit_code = 0;
    out.message = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    out.action = CommandLine::Action::Exit;
    out.exit_code = 2;
    out.message = std::string("dnsmon: ") + e.what() + "\nRun with --help for usage.";
    return out;
  }
  if (version) {
    out.action = CommandLine::Action::Exit;
    out.message = std::string("dnsmon ") + kVersion;
    return out;
  }
  const auto usage_error = [&out](const std::string& what) {
    out.action = CommandLine::Action::Exit;
    out.exit_code = 2;
    out.message = "dnsmon: " + what + "\nRun with --help for usage.";
    return out;
  };
  // Checked by hand: CLI11's Range lets NaN through, and a tiny speed overflows the pacing
  // arithmetic (packet time divided by the speed).
  if (replay_speed && !(*replay_speed == 0 ||
                        (*replay_speed >= kMinReplaySpeed && *replay_speed <= kMaxReplaySpeed))) {
    return usage_error(
        "--replay-speed: expected 0 (as fast as possible) or a speed from 0.001 "
        "to 1000000, got " +
        number_text(*replay_speed));
  }
  if (metrics_out && messages_out && *metrics_out == "-" && *messages_out == "-") {
    return usage_error(
        "--metrics-out - and --messages-out - would mix on standard output: send one of them to "
        "a file");
  }

  {
    int on_stdout = 0;
    for (const auto* o : {&metrics_out, &messages_out, &events_out}) {
      on_stdout += o->has_value() && **o == "-" ? 1 : 0;
    }
    if (on_stdout > 1) {
      return usage_error(
          "only one of --metrics-out, --messages-out and --events-out can be - (standard "
          "output): send the others to files");
    }
  }

  if (print_defaults) {
    out.action = CommandLine::Action::Exit;
    out.message = default_config_yaml();
    out.message.pop_back();  // the caller ends the message with a newline
    return out;
  }
  if (user && !user->empty() && !user_name_ok(*user)) {
    return usage_error("--user: expected a user name such as dnsmon, got \"" + *user + "\"");
  }
  if (listen) {  // a usage error, like every other malformed flag
    std::string addr;
    std::uint16_t port = 0;
    std::string why;
    if (!split_listen(*listen, addr, port, &why)) {
      out.action = CommandLine::Action::Exit;
      out.exit_code = 2;
      out.message =
          "dnsmon: --listen: " + listen_error(*listen, why) + "\nRun with --help for usage.";
      return out;
    }
  }

  Config c;
  if (!config_path.empty()) {
    c = load_config_file(config_path, c);
  }
  const bool sources_given = !interfaces.empty() || !files.empty() || !dnstap_sockets.empty();
  if (sources_given) {
    // Sources named on the command line replace the file's: `-r x.pcap` replays even when the
    // config lists interfaces or dnstap sockets for the service.
    c.capture.interfaces = interfaces;
    c.capture.dnstap_sockets = dnstap_sockets;
  }
  c.capture.files = files;
  if (listen) {
    c.daemon.listen = *listen;
    c.daemon.listen_given = true;
  }
  if (workers) {
    c.daemon.workers = *workers;
  }
  if (metrics_out) {
    c.daemon.metrics_out = *metrics_out;
  }
  if (messages_out) {
    c.daemon.messages_out = *messages_out;
  }
  c.daemon.events_out = events_out ? *events_out : c.detection.events_file;
  if (snapshot_dir) {
    c.detection.exports.metrics_snapshot_dir = *snapshot_dir;
  }
  if (replay_speed) {
    c.capture.replay_speed = *replay_speed;
    c.daemon.replay_speed_given = true;
  }
  if (filter) {
    c.capture.bpf_filter = *filter;
  }
  if (snaplen) {
    c.capture.snaplen = *snaplen;
    c.capture.snaplen_given = true;
  }
  if (log_level) {
    c.daemon.log_level = *log_level;
  }
  c.daemon.check_config = check_config;
  if (user) {
    c.daemon.user = *user;
  }
  if (allow_root) {
    c.daemon.allow_root = true;
  }
  if (serve_after_replay) {
    if (c.capture.files.empty() &&
        (!c.capture.interfaces.empty() || !c.capture.dnstap_sockets.empty())) {
      return usage_error(
          "--serve-after-replay applies to replays (-r FILE); live capture serves /metrics "
          "until it is stopped anyway");
    }
    c.daemon.serve_after_replay = true;
  }
  // A key a flag overrides is no longer where the file sets it.
  const std::pair<bool, std::string_view> overridden[] = {
      {sources_given, "capture.interfaces"},
      {sources_given, "capture.dnstap_sockets"},
      {filter.has_value(), "capture.filter"},
      {snaplen.has_value(), "capture.snaplen"},
      {workers.has_value(), "capture.workers"},
      {listen.has_value(), "exporter.listen"},
      {log_level.has_value(), "log.level"},
      {user.has_value(), "daemon.user"},
      {allow_root, "daemon.allow_root"},
      {snapshot_dir.has_value(), "detection.export.metrics_snapshot_dir"},
  };
  for (const auto& [given, path] : overridden) {
    if (given) {
      forget_position(c, path);
    }
  }
  validate(c);
  out.config = std::move(c);
  return out;
}

}  // namespace dnsmon
