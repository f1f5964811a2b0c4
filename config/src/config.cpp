#include "dnsmon/config.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <sstream>

#include <CLI/CLI.hpp>
#include <yaml-cpp/yaml.h>

#include "dnsmon/version.hpp"

namespace dnsmon {
namespace {

constexpr std::size_t kMaxConfigBytes = 1U << 20U;  // a config larger than 1 MiB is not a config

class FileContext {
 public:
  explicit FileContext(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path,
                         const std::string& what) const {
    std::ostringstream s;
    s << file_;
    if (mark.line >= 0) {
      s << ':' << mark.line + 1 << ':' << mark.column + 1;
    }
    s << ": " << (path.empty() ? std::string("(top level)") : path) << ": " << what;
    throw ConfigError(s.str());
  }

  void expect_map(const YAML::Node& node, const std::string& path) const {
    if (!node.IsMap()) {
      fail(node.Mark(), path, "expected a mapping of keys to values");
    }
  }

  void check_keys(const YAML::Node& map, const std::string& path,
                  std::initializer_list<std::string_view> allowed) const {
    std::vector<std::string> seen;  // yaml-cpp keeps duplicate keys, and lookups find the first
    for (const auto& kv : map) {
      const auto& key = kv.first;
      if (!key.IsScalar()) {
        fail(key.Mark(), path, "keys must be plain words");
      }
      const std::string& k = key.Scalar();
      if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
        fail(key.Mark(), join(path, k), "duplicate key");
      }
      seen.push_back(k);
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        std::string list;
        for (auto a : allowed) {
          list += list.empty() ? "" : ", ";
          list += a;
        }
        fail(key.Mark(), join(path, k), "unknown key (allowed here: " + list + ")");
      }
    }
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  std::string scalar(const YAML::Node& n, const std::string& path, const char* expected) const {
    if (!n.IsScalar()) {
      fail(n.Mark(), path, std::string("expected ") + expected);
    }
    return n.Scalar();
  }

  std::uint64_t integer(const YAML::Node& n, const std::string& path, std::uint64_t lo,
                        std::uint64_t hi) const {
    const std::string range = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    const std::string s = scalar(n, path, range.c_str());
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) {
      fail(n.Mark(), path, "expected " + range + ", got \"" + s + "\"");
    }
    if (v < lo || v > hi) {
      fail(n.Mark(), path, "out of range: expected " + range + ", got " + s);
    }
    return v;
  }

  bool boolean(const YAML::Node& n, const std::string& path) const {
    const std::string s = scalar(n, path, "true or false");
    if (s == "true") {
      return true;
    }
    if (s == "false") {
      return false;
    }
    fail(n.Mark(), path, "expected true or false, got \"" + s + "\"");
  }

  std::string string(const YAML::Node& n, const std::string& path) const {
    return scalar(n, path, "a string");
  }

  std::vector<std::string> string_list(const YAML::Node& n, const std::string& path,
                                       std::size_t max) const {
    if (!n.IsSequence()) {
      fail(n.Mark(), path, "expected a list of strings");
    }
    if (n.size() > max) {
      fail(n.Mark(), path, "at most " + std::to_string(max) + " entries");
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n.size(); ++i) {
      out.push_back(scalar(n[i], path + "[" + std::to_string(i) + "]", "a string"));
    }
    return out;
  }

 private:
  std::string file_;
};

const std::initializer_list<std::string_view> kLogLevels = {"trace", "debug", "info",
                                                            "warn",  "error", "off"};

// "90s", "5m", "1h" or a plain number of seconds.
std::uint32_t duration_s(const FileContext& ctx, const YAML::Node& n, const std::string& path) {
  const std::string s = ctx.scalar(n, path, "a duration such as 30s, 5m or 1h");
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  const std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  }
  if (ec != std::errc{} || end == s.data() || scale == 0) {
    ctx.fail(n.Mark(), path, "expected a duration such as 30s, 5m or 1h, got \"" + s + "\"");
  }
  if (v == 0 || v > 86400 / scale) {
    ctx.fail(n.Mark(), path, "out of range: expected 1s to 24h, got " + s);
  }
  return static_cast<std::uint32_t>(v * scale);
}

void apply_analytics(const FileContext& ctx, const YAML::Node& a, MetricsOptions& m) {
  ctx.expect_map(a, "analytics");
  ctx.check_keys(a, "analytics",
                 {"enabled", "memory_mib", "windows", "sub_windows", "top_n", "top_capacity",
                  "hll_precision", "public_suffix_list", "clients", "matching"});
  AnalyticsOptions& o = m.analytics;
  if (const auto n = a["enabled"]) {
    o.enabled = ctx.boolean(n, "analytics.enabled");
  }
  if (const auto n = a["memory_mib"]) {
    m.memory_budget_bytes = ctx.integer(n, "analytics.memory_mib", 1, 65536) << 20U;
  }
  if (const auto n = a["sub_windows"]) {
    o.sub_windows = static_cast<std::uint32_t>(ctx.integer(n, "analytics.sub_windows", 1, 60));
  }
  if (const auto n = a["windows"]) {
    if (!n.IsSequence() || n.size() == 0 || n.size() > 8) {
      ctx.fail(n.Mark(), "analytics.windows", "expected a list of 1 to 8 durations such as 1m");
    }
    o.windows_s.clear();
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string path = "analytics.windows[" + std::to_string(i) + "]";
      const auto w = duration_s(ctx, n[i], path);
      if (std::find(o.windows_s.begin(), o.windows_s.end(), w) != o.windows_s.end()) {
        ctx.fail(n[i].Mark(), path, "the same window twice");
      }
      o.windows_s.push_back(w);
    }
  }
  for (std::size_t i = 0; i < o.windows_s.size(); ++i) {
    if (o.windows_s[i] % o.sub_windows != 0) {
      const auto node = a["windows"] ? a["windows"][i] : a["sub_windows"];
      ctx.fail(node ? node.Mark() : a.Mark(),
               a["windows"] ? "analytics.windows[" + std::to_string(i) + "]"
                            : std::string("analytics.sub_windows"),
               "a window of " + std::to_string(o.windows_s[i]) + " s cannot be split into " +
                   std::to_string(o.sub_windows) +
                   " whole-second sub-windows (analytics.sub_windows)");
    }
  }
  if (const auto n = a["top_n"]) {
    o.top_n = static_cast<std::uint32_t>(ctx.integer(n, "analytics.top_n", 1, 1000));
  }
  if (const auto n = a["top_capacity"]) {
    o.top_capacity =
        static_cast<std::uint32_t>(ctx.integer(n, "analytics.top_capacity", 1, 1U << 16U));
  }
  if (o.top_capacity < o.top_n) {
    const auto node = a["top_capacity"] ? a["top_capacity"] : a["top_n"];
    ctx.fail(node.Mark(), a["top_capacity"] ? "analytics.top_capacity" : "analytics.top_n",
             "top_capacity (" + std::to_string(o.top_capacity) + ") must be at least top_n (" +
                 std::to_string(o.top_n) + "); 8 to 32 times top_n keeps the counts accurate");
  }
  if (const auto n = a["hll_precision"]) {
    o.hll_precision = static_cast<std::uint32_t>(ctx.integer(n, "analytics.hll_precision", 4, 18));
  }
  if (const auto n = a["public_suffix_list"]) {
    o.public_suffix_list = ctx.string(n, "analytics.public_suffix_list");
  }
  if (const auto cl = a["clients"]; cl && !cl.IsNull()) {
    ctx.expect_map(cl, "analytics.clients");
    ctx.check_keys(cl, "analytics.clients",
                   {"ipv4_prefix", "ipv6_prefix", "pseudonymise", "pseudonymise_key"});
    if (const auto n = cl["ipv4_prefix"]) {
      o.client_ipv4_prefix =
          static_cast<std::uint8_t>(ctx.integer(n, "analytics.clients.ipv4_prefix", 0, 32));
    }
    if (const auto n = cl["ipv6_prefix"]) {
      o.client_ipv6_prefix =
          static_cast<std::uint8_t>(ctx.integer(n, "analytics.clients.ipv6_prefix", 0, 128));
    }
    if (const auto n = cl["pseudonymise"]) {
      o.pseudonymise_clients = ctx.boolean(n, "analytics.clients.pseudonymise");
    }
    if (const auto n = cl["pseudonymise_key"]) {
      o.pseudonymise_key = ctx.string(n, "analytics.clients.pseudonymise_key");
      if (!o.pseudonymise_key.empty() && o.pseudonymise_key.size() < 16) {
        ctx.fail(n.Mark(), "analytics.clients.pseudonymise_key",
                 "too short to keep addresses secret: use 16 or more random characters");
      }
    }
  }
  if (const auto mt = a["matching"]; mt && !mt.IsNull()) {
    ctx.expect_map(mt, "analytics.matching");
    ctx.check_keys(mt, "analytics.matching", {"capacity", "timeout_ms"});
    if (const auto n = mt["capacity"]) {
      m.matching_capacity =
          static_cast<std::uint32_t>(ctx.integer(n, "analytics.matching.capacity", 1, 1U << 24U));
    }
    if (const auto n = mt["timeout_ms"]) {
      m.matching_timeout_ms =
          static_cast<std::uint32_t>(ctx.integer(n, "analytics.matching.timeout_ms", 1, 3'600'000));
    }
  }
}

void apply_yaml(const FileContext& ctx, const YAML::Node& root, Config& c) {
  if (root.IsNull()) {
    return;  // an empty file keeps every default
  }
  ctx.expect_map(root, "");
  ctx.check_keys(root, "", {"capture", "parser", "analytics", "exporter", "log"});
  if (const auto cap = root["capture"]; cap && !cap.IsNull()) {  // null: all keys commented out
    ctx.expect_map(cap, "capture");
    ctx.check_keys(cap, "capture",
                   {"interfaces", "filter", "snaplen", "buffer_mib", "promiscuous",
                    "read_timeout_ms", "ring_slots", "workers"});
    if (const auto n = cap["interfaces"]) {
      c.capture.interfaces = ctx.string_list(n, "capture.interfaces", 64);
      for (const auto& name : c.capture.interfaces) {
        if (name.empty()) {
          ctx.fail(n.Mark(), "capture.interfaces", "an interface name cannot be empty");
        }
      }
    }
    if (const auto n = cap["filter"]) {
      c.capture.bpf_filter = ctx.string(n, "capture.filter");
    }
    if (const auto n = cap["snaplen"]) {
      c.capture.snaplen = static_cast<std::uint32_t>(ctx.integer(n, "capture.snaplen", 64, 65535));
      c.capture.snaplen_given = true;
    }
    if (const auto n = cap["buffer_mib"]) {
      c.capture.buffer_bytes =
          static_cast<std::uint32_t>(ctx.integer(n, "capture.buffer_mib", 1, 2047) << 20U);
    }
    if (const auto n = cap["promiscuous"]) {
      c.capture.promiscuous = ctx.boolean(n, "capture.promiscuous");
    }
    if (const auto n = cap["read_timeout_ms"]) {
      c.capture.timeout_ms =
          static_cast<std::uint32_t>(ctx.integer(n, "capture.read_timeout_ms", 1, 1000));
    }
    if (const auto n = cap["ring_slots"]) {
      c.capture.ring_slots =
          static_cast<std::uint32_t>(ctx.integer(n, "capture.ring_slots", 16, 1U << 20U));
    }
    if (const auto n = cap["workers"]) {
      c.daemon.workers = static_cast<std::uint32_t>(ctx.integer(n, "capture.workers", 1, 64));
    }
  }
  if (const auto parser = root["parser"];
      parser && !parser.IsNull()) {  // null: all keys commented out
    ctx.expect_map(parser, "parser");
    ctx.check_keys(parser, "parser",
                   {"dns_ports", "mdns", "llmnr", "encrypted_ports", "fragments", "tcp"});
    if (const auto n = parser["mdns"]) {
      c.parser.mdns = ctx.boolean(n, "parser.mdns");
    }
    if (const auto n = parser["llmnr"]) {
      c.parser.llmnr = ctx.boolean(n, "parser.llmnr");
    }
    if (const auto n = parser["encrypted_ports"]) {
      if (!n.IsSequence() || n.size() > 16) {
        ctx.fail(n.Mark(), "parser.encrypted_ports", "expected a list of 0 to 16 port numbers");
      }
      c.parser.encrypted_ports.clear();
      for (std::size_t i = 0; i < n.size(); ++i) {
        c.parser.encrypted_ports.push_back(static_cast<std::uint16_t>(
            ctx.integer(n[i], "parser.encrypted_ports[" + std::to_string(i) + "]", 1, 65535)));
      }
    }
    if (const auto f = parser["fragments"]; f && !f.IsNull()) {
      ctx.expect_map(f, "parser.fragments");
      ctx.check_keys(f, "parser.fragments", {"max_datagrams", "memory_mib", "timeout_s"});
      if (const auto n = f["max_datagrams"]) {
        c.parser.fragment_datagrams =
            ctx.integer(n, "parser.fragments.max_datagrams", 1, 1U << 20U);
      }
      if (const auto n = f["memory_mib"]) {
        c.parser.fragment_memory_bytes = ctx.integer(n, "parser.fragments.memory_mib", 1, 4096)
                                         << 20U;
      }
      if (const auto n = f["timeout_s"]) {
        c.parser.fragment_timeout_ns =
            static_cast<std::int64_t>(ctx.integer(n, "parser.fragments.timeout_s", 1, 300)) *
            1'000'000'000;
      }
    }
    if (const auto t = parser["tcp"]; t && !t.IsNull()) {
      ctx.expect_map(t, "parser.tcp");
      ctx.check_keys(t, "parser.tcp", {"max_flows", "memory_mib", "idle_timeout_s"});
      if (const auto n = t["max_flows"]) {
        c.parser.tcp_flows = ctx.integer(n, "parser.tcp.max_flows", 1, 1U << 22U);
      }
      if (const auto n = t["memory_mib"]) {
        c.parser.tcp_memory_bytes = ctx.integer(n, "parser.tcp.memory_mib", 1, 4096) << 20U;
      }
      if (const auto n = t["idle_timeout_s"]) {
        c.parser.tcp_idle_timeout_ns =
            static_cast<std::int64_t>(ctx.integer(n, "parser.tcp.idle_timeout_s", 1, 3600)) *
            1'000'000'000;
      }
    }
    if (const auto n = parser["dns_ports"]) {
      if (!n.IsSequence() || n.size() == 0 || n.size() > 16) {
        ctx.fail(n.Mark(), "parser.dns_ports", "expected a list of 1 to 16 port numbers");
      }
      c.parser.dns_ports.clear();
      for (std::size_t i = 0; i < n.size(); ++i) {
        c.parser.dns_ports.push_back(static_cast<std::uint16_t>(
            ctx.integer(n[i], "parser.dns_ports[" + std::to_string(i) + "]", 1, 65535)));
      }
    }
  }
  if (const auto a = root["analytics"]; a && !a.IsNull()) {  // null: all keys commented out
    apply_analytics(ctx, a, c.metrics);
  }
  if (const auto exp = root["exporter"]; exp && !exp.IsNull()) {  // null: all keys commented out
    ctx.expect_map(exp, "exporter");
    ctx.check_keys(exp, "exporter", {"listen"});
    if (const auto n = exp["listen"]) {
      c.daemon.listen = ctx.string(n, "exporter.listen");
      std::string addr;
      std::uint16_t port = 0;
      if (!split_listen(c.daemon.listen, addr, port)) {
        ctx.fail(n.Mark(), "exporter.listen",
                 "expected ADDRESS:PORT such as 127.0.0.1:9917 or [::1]:9917, got \"" +
                     c.daemon.listen + "\"");
      }
      c.daemon.listen_given = true;
    }
  }
  if (const auto log = root["log"]; log && !log.IsNull()) {  // null: all keys commented out
    ctx.expect_map(log, "log");
    ctx.check_keys(log, "log", {"level", "stats_interval_s"});
    if (const auto n = log["level"]) {
      c.daemon.log_level = ctx.string(n, "log.level");
      if (std::find(kLogLevels.begin(), kLogLevels.end(), c.daemon.log_level) == kLogLevels.end()) {
        ctx.fail(n.Mark(), "log.level",
                 "expected one of trace, debug, info, warn, error, off, got \"" +
                     c.daemon.log_level + "\"");
      }
    }
    if (const auto n = log["stats_interval_s"]) {
      c.daemon.stats_interval_s =
          static_cast<std::uint32_t>(ctx.integer(n, "log.stats_interval_s", 0, 86400));
    }
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

}  // namespace

bool split_listen(const std::string& listen, std::string& address, std::uint16_t& port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return false;
  }
  address = listen.substr(0, colon);
  if (address.front() == '[' && address.back() != ']') {
    return false;
  }
  const std::string p = listen.substr(colon + 1);
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc{} || end != p.data() + p.size() || v > 65535) {
    return false;
  }
  port = static_cast<std::uint16_t>(v);
  return address.find_first_of(" \t/") == std::string::npos;
}

Config load_config_file(const std::string& path, Config base) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path + ": cannot open the config file");
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
  const FileContext ctx(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    ctx.fail(e.mark, "", "not valid YAML: " + e.msg);
  }
  try {
    apply_yaml(ctx, root, base);
  } catch (const YAML::Exception& e) {
    ctx.fail(e.mark, "", e.msg);
  }
  base.daemon.config_path = path;
  return base;
}

void validate(const Config& c) {
  std::string addr;
  std::uint16_t port = 0;
  if (!split_listen(c.daemon.listen, addr, port)) {
    throw ConfigError("--listen: expected ADDRESS:PORT such as 127.0.0.1:9917, got \"" +
                      c.daemon.listen + "\"");
  }
  if (!c.capture.interfaces.empty() && !c.capture.files.empty()) {
    throw ConfigError("capture from interfaces (-i) and files (-r) cannot be mixed in one run");
  }
  if (c.metrics.analytics.enabled && !c.metrics.analytics.public_suffix_list.empty()) {
    try {
      (void)check_public_suffix_list(c.metrics.analytics.public_suffix_list);
    } catch (const std::runtime_error& e) {
      throw ConfigError(std::string("analytics.public_suffix_list: ") + e.what());
    }
  }
  const std::uint64_t per_worker = analytics_bytes_per_worker(c.metrics);
  const std::uint64_t need = per_worker * c.daemon.workers;
  if (need > c.metrics.memory_budget_bytes) {
    const auto mib = [](std::uint64_t b) { return std::to_string((b + (1U << 20U) - 1) >> 20U); };
    throw ConfigError("analytics.memory_mib: the analytics of " + std::to_string(c.daemon.workers) +
                      " worker(s) need " + mib(need) + " MiB (" + mib(per_worker) +
                      " MiB each) but the budget is " + mib(c.metrics.memory_budget_bytes) +
                      " MiB; raise analytics.memory_mib, or lower analytics.top_capacity, "
                      "analytics.matching.capacity, the number of windows or workers");
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
  std::vector<std::string> interfaces, files;
  std::optional<std::string> listen, metrics_out, messages_out, filter, log_level;
  std::optional<std::uint32_t> workers, snaplen;
  std::optional<double> replay_speed;
  bool check_config = false;
  bool version = false;

  app.add_option("--config", config_path, "YAML config file (flags override it)");
  app.add_option("-i,--interface", interfaces, "capture live on IFACE (repeatable)")
      ->type_name("IFACE");
  app.add_option("-r,--read", files,
                 "replay a pcap or pcapng file, FIFO or pipe, - for standard input (repeatable, "
                 "read in order)")
      ->type_name("FILE");
  app.add_option("--listen", listen,
                 "serve /metrics on ADDR:PORT (default " + std::string(kDefaultListen) +
                     "; offline runs serve only when given)")
      ->type_name("ADDR:PORT");
  app.add_option("--workers", workers,
                 "parser worker threads (default 1). Live: one capture thread per worker on each "
                 "interface, sharing its traffic by IP address pair (PACKET_FANOUT). A replay with "
                 "one worker reads and parses in one thread")
      ->check(CLI::Range(1, 64));
  app.add_option("--metrics-out", metrics_out,
                 "write the final metrics (text format) to FILE or - at the end of input or on "
                 "SIGTERM/SIGINT")
      ->type_name("FILE|-");
  app.add_option("--messages-out", messages_out,
                 "write one JSON line per decoded DNS message to FILE or - (not with "
                 "--metrics-out -). A failed write ends the log and makes the exit status 1; a "
                 "reader that goes away (EPIPE) only ends the log")
      ->type_name("FILE|-");
  app.add_option("--replay-speed", replay_speed,
                 "pace -r replays by packet time: 1 = real time, 10 = ten times faster, 0.5 = "
                 "half speed; 0 (the default) = as fast as possible. 0 or 0.001 to 1000000")
      ->type_name("X");
  app.add_option("--filter", filter,
                 "BPF capture filter (default live: DNS on port 53 and every UDP/TCP fragment, "
                 "also VLAN-tagged on Ethernet; default offline: none)")
      ->type_name("EXPR");
  app.add_option("--snaplen", snaplen,
                 "bytes kept per live frame (default 4096; replays keep whole frames unless given)")
      ->check(CLI::Range(64, 65535));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_flag("--check-config", check_config, "validate the configuration and exit");
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

  Config c;
  if (!config_path.empty()) {
    c = load_config_file(config_path, c);
  }
  if (!interfaces.empty() || !files.empty()) {
    // Sources named on the command line replace the file's: `-r x.pcap` replays even when the
    // config lists interfaces for the service.
    c.capture.interfaces = interfaces;
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
  if (replay_speed) {
    c.capture.replay_speed = *replay_speed;
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
  validate(c);
  out.config = std::move(c);
  return out;
}

}  // namespace dnsmon
