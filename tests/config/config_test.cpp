// Tests for the YAML config file and the command line: defaults, every key's type and range, and
// error messages that point at the file, line, column and key path.
#include "dnsmon/config.hpp"

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/detect/engine.hpp"
#include "dnsmon/metrics.hpp"
#include "dnsmon/version.hpp"

namespace dnsmon {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// A fresh directory under the system temp directory, removed with everything in it.
// Thread-safety: one test at a time.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    const auto base = std::filesystem::temp_directory_path();
    for (int attempt = 0; attempt < 100; ++attempt) {
      path_ = base / ("dnsmon-config-test-" + std::to_string(rd()));
      if (std::filesystem::create_directory(path_)) {
        return;
      }
    }
    FAIL("cannot create a temporary directory under " << base);
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;

  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);  // best effort: never throw from a destructor
  }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  // Writes `text` to NAME in this directory and returns the full path.
  [[nodiscard]] std::string write(const std::string& name, const std::string& text) const {
    const auto file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out << text;
    out.close();
    REQUIRE(out.good());
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

// The ConfigError message for a config file with `text`; fails the test if it loads.
std::string config_error(const TempDir& dir, const std::string& text) {
  const std::string file = dir.write("dnsmon.yaml", text);
  try {
    (void)load_config_file(file);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("the config was accepted:\n" << text);
  return {};
}

// parse_command_line over {"dnsmon", args...}.
CommandLine parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"dnsmon"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("a default config has the documented defaults", "[config]") {
  const Config c;
  CHECK(c.capture.interfaces.empty());
  CHECK(c.capture.files.empty());
  CHECK(c.capture.bpf_filter.empty());
  CHECK(c.capture.snaplen == 4096);
  CHECK(c.capture.buffer_bytes == 64U << 20U);
  CHECK(c.capture.promiscuous);
  CHECK(c.capture.timeout_ms == 50);
  CHECK(c.capture.ring_slots == 16384);
  CHECK(c.capture.dedup);
  CHECK(c.parser.dns_ports == std::vector<std::uint16_t>{53});
  CHECK(c.daemon.listen == "127.0.0.1:9917");
  CHECK_FALSE(c.daemon.listen_given);
  CHECK(c.daemon.workers == 1);
  CHECK(c.daemon.log_level == "info");
  CHECK(c.daemon.stats_interval_s == 60);
  CHECK_FALSE(c.daemon.check_config);
}

TEST_CASE("a full valid file sets every key", "[config]") {
  const TempDir dir;
  const std::string file = dir.write("dnsmon.yaml", R"(# every key, none at its default
capture:
  interfaces: [eth0, "eth1"]
  filter: "udp port 5353"
  snaplen: 1500
  buffer_mib: 128
  promiscuous: false
  read_timeout_ms: 10
  ring_slots: 4096
  workers: 2
  dedup: false
parser:
  dns_ports:
    - 53
    - 5353
exporter:
  listen: "[::1]:9100"
log:
  level: debug
  stats_interval_s: 0
)");
  const Config c = load_config_file(file);
  CHECK(c.capture.interfaces == std::vector<std::string>{"eth0", "eth1"});
  CHECK(c.capture.bpf_filter == "udp port 5353");
  CHECK(c.capture.snaplen == 1500);
  CHECK(c.capture.buffer_bytes == 128U << 20U);
  CHECK_FALSE(c.capture.promiscuous);
  CHECK(c.capture.timeout_ms == 10);
  CHECK(c.capture.ring_slots == 4096);
  CHECK(c.daemon.workers == 2);
  CHECK_FALSE(c.capture.dedup);
  CHECK(c.parser.dns_ports == std::vector<std::uint16_t>{53, 5353});
  CHECK(c.daemon.listen == "[::1]:9100");
  CHECK(c.daemon.listen_given);
  CHECK(c.daemon.log_level == "debug");
  CHECK(c.daemon.stats_interval_s == 0);
  CHECK(c.daemon.config_path == file);
}

TEST_CASE("a file that sets some keys keeps the defaults of the others", "[config]") {
  const TempDir dir;
  const Config c = load_config_file(dir.write("dnsmon.yaml", "capture:\n  snaplen: 512\n"));
  CHECK(c.capture.snaplen == 512);
  CHECK(c.capture.ring_slots == 16384);
  CHECK(c.parser.dns_ports == std::vector<std::uint16_t>{53});
  CHECK(c.daemon.listen == kDefaultListen);
  CHECK_FALSE(c.daemon.listen_given);
}

TEST_CASE("the lowest and highest value of every range are accepted", "[config]") {
  const TempDir dir;
  const Config low = load_config_file(dir.write("low.yaml", R"(capture:
  snaplen: 64
  buffer_mib: 1
  read_timeout_ms: 1
  ring_slots: 16
  workers: 1
parser:
  dns_ports: [1]
log:
  stats_interval_s: 0
)"));
  CHECK(low.capture.snaplen == 64);
  CHECK(low.capture.buffer_bytes == 1U << 20U);
  CHECK(low.capture.timeout_ms == 1);
  CHECK(low.capture.ring_slots == 16);
  CHECK(low.daemon.workers == 1);
  CHECK(low.parser.dns_ports == std::vector<std::uint16_t>{1});
  CHECK(low.daemon.stats_interval_s == 0);

  const Config high = load_config_file(dir.write("high.yaml", R"(capture:
  snaplen: 65535
  buffer_mib: 2047
  read_timeout_ms: 1000
  ring_slots: 1048576
  workers: 64
parser:
  dns_ports: [65535, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
log:
  stats_interval_s: 86400
)"));
  CHECK(high.capture.snaplen == 65535);
  CHECK(high.capture.buffer_bytes == 2047U << 20U);
  CHECK(high.capture.timeout_ms == 1000);
  CHECK(high.capture.ring_slots == 1U << 20U);
  CHECK(high.daemon.workers == 64);
  CHECK(high.parser.dns_ports.size() == 16);
  CHECK(high.parser.dns_ports.front() == 65535);
  CHECK(high.daemon.stats_interval_s == 86400);
}

TEST_CASE("every log level is accepted", "[config]") {
  const TempDir dir;
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    CAPTURE(level);
    const Config c =
        load_config_file(dir.write("dnsmon.yaml", std::string("log:\n  level: ") + level + "\n"));
    CHECK(c.daemon.log_level == level);
  }
}

TEST_CASE("a wrong type or out-of-range value is refused with its line, column and key path",
          "[config]") {
  struct Case {
    const char* section;
    const char* key;
    const char* value;   // written as "SECTION:\n  KEY: VALUE\n" after a comment line
    const char* marker;  // the part of VALUE the error points at
    const char* path;    // the key path in the message
    const char* what;    // part of the message
  };

  const std::vector<Case> cases = {
      {"capture", "interfaces", "eth0", "eth0", "capture.interfaces", "expected a list of strings"},
      {"capture", "interfaces", "{a: b}", "{", "capture.interfaces", "expected a list of strings"},
      {"capture", "interfaces", "[eth0, [eth1]]", "[eth1]", "capture.interfaces[1]",
       "expected a string"},
      {"capture", "filter", "[udp]", "[", "capture.filter", "expected a string"},
      {"capture", "filter", "{port: 53}", "{", "capture.filter", "expected a string"},
      {"capture", "snaplen", "big", "big", "capture.snaplen",
       "expected an integer from 64 to 65535, got \"big\""},
      {"capture", "snaplen", "[1500]", "[", "capture.snaplen",
       "expected an integer from 64 to 65535"},
      {"capture", "snaplen", "63", "63", "capture.snaplen",
       "out of range: expected an integer from 64 to 65535, got 63"},
      {"capture", "snaplen", "65536", "65536", "capture.snaplen", "out of range"},
      {"capture", "snaplen", "-1", "-1", "capture.snaplen", "got \"-1\""},
      {"capture", "snaplen", "1500.5", "1500.5", "capture.snaplen", "got \"1500.5\""},
      {"capture", "buffer_mib", "lots", "lots", "capture.buffer_mib",
       "expected an integer from 1 to 2047"},
      {"capture", "buffer_mib", "0", "0", "capture.buffer_mib", "out of range"},
      {"capture", "buffer_mib", "2048", "2048", "capture.buffer_mib", "out of range"},
      {"capture", "buffer_mib", "99999999999999999999", "9", "capture.buffer_mib",
       "expected an integer from 1 to 2047"},
      {"capture", "promiscuous", "yes", "yes", "capture.promiscuous",
       "expected true or false, got \"yes\""},
      {"capture", "promiscuous", "1", "1", "capture.promiscuous", "expected true or false"},
      {"capture", "promiscuous", "[true]", "[", "capture.promiscuous", "expected true or false"},
      {"capture", "read_timeout_ms", "fast", "fast", "capture.read_timeout_ms",
       "expected an integer from 1 to 1000"},
      {"capture", "read_timeout_ms", "0", "0", "capture.read_timeout_ms", "out of range"},
      {"capture", "read_timeout_ms", "1001", "1001", "capture.read_timeout_ms", "out of range"},
      {"capture", "ring_slots", "many", "many", "capture.ring_slots",
       "expected an integer from 16 to 1048576"},
      {"capture", "ring_slots", "15", "15", "capture.ring_slots", "out of range"},
      {"capture", "ring_slots", "1048577", "1048577", "capture.ring_slots", "out of range"},
      {"capture", "workers", "two", "two", "capture.workers", "expected an integer from 1 to 64"},
      {"capture", "workers", "0", "0", "capture.workers", "out of range"},
      {"capture", "workers", "65", "65", "capture.workers", "out of range"},
      {"parser", "dns_ports", "53", "53", "parser.dns_ports",
       "expected a list of 1 to 16 port numbers"},
      {"parser", "dns_ports", "[]", "[", "parser.dns_ports",
       "expected a list of 1 to 16 port numbers"},
      {"parser", "dns_ports", "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]", "[",
       "parser.dns_ports", "expected a list of 1 to 16 port numbers"},
      {"parser", "dns_ports", "[dns]", "dns", "parser.dns_ports[0]",
       "expected an integer from 1 to 65535, got \"dns\""},
      {"parser", "dns_ports", "[53, 0]", "0", "parser.dns_ports[1]", "out of range"},
      {"parser", "dns_ports", "[53, 5353, 65536]", "65536", "parser.dns_ports[2]", "out of range"},
      {"exporter", "listen", "[127.0.0.1:9917]", "[", "exporter.listen", "expected a string"},
      {"exporter", "listen", "localhost", "localhost", "exporter.listen",
       "expected ADDRESS:PORT such as 127.0.0.1:9917 or [::1]:9917, got \"localhost\": no port"},
      {"exporter", "listen", "\"localhost:9917\"", "\"", "exporter.listen",
       "got \"localhost:9917\": not an IPv4 address (host names are not accepted)"},
      {"exporter", "listen", "\"127.0.0.1:9941,0.0.0.0:9942\"", "\"", "exporter.listen",
       "one address and port only"},
      {"exporter", "listen", "\"[::1]\"", "\"", "exporter.listen",
       "got \"[::1]\": the port must be a number from 0 to 65535"},
      {"exporter", "listen", "\"::1:9917\"", "\"", "exporter.listen",
       "an IPv6 address goes in brackets"},
      {"exporter", "listen", "\"127.0.0.1:65536\"", "\"", "exporter.listen",
       "expected ADDRESS:PORT"},
      {"exporter", "listen", "\"127.0.0.1:http\"", "\"", "exporter.listen",
       "expected ADDRESS:PORT"},
      {"log", "level", "verbose", "verbose", "log.level",
       "expected one of trace, debug, info, warn, error, off, got \"verbose\""},
      {"log", "level", "INFO", "INFO", "log.level", "expected one of"},
      {"log", "level", "[info]", "[", "log.level", "expected a string"},
      {"log", "stats_interval_s", "1m", "1m", "log.stats_interval_s",
       "expected an integer from 0 to 86400, got \"1m\""},
      {"log", "stats_interval_s", "86401", "86401", "log.stats_interval_s", "out of range"},
      {"log", "stats_interval_s", "-1", "-1", "log.stats_interval_s", "got \"-1\""},
  };
  const TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  for (const auto& c : cases) {
    const std::string value = c.value;
    const std::string text =
        std::string("# line 1 is a comment\n") + c.section + ":\n  " + c.key + ": " + value + "\n";
    CAPTURE(text);
    const std::size_t column = 2 + std::string(c.key).size() + 2 + value.find(c.marker) + 1;
    const std::string where = file + ":3:" + std::to_string(column) + ": " + c.path + ": ";
    const std::string message = config_error(dir, text);
    CHECK_THAT(message, StartsWith(where) && Contains(c.what));
  }
}

TEST_CASE("a section or the whole file that is not a mapping is refused", "[config]") {
  const TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  CHECK_THAT(config_error(dir, "- capture\n- log\n"),
             StartsWith(file + ":1:1: (top level): expected a mapping of keys to values"));
  CHECK_THAT(config_error(dir, "just words\n"),
             StartsWith(file + ":1:1: (top level): expected a mapping"));
  CHECK_THAT(config_error(dir, "log:\n  level: info\ncapture: [eth0]\n"),
             StartsWith(file + ":3:10: capture: expected a mapping"));
  CHECK_THAT(config_error(dir, "parser: 53\n"), StartsWith(file + ":1:9: parser: expected"));
  CHECK_THAT(config_error(dir, "exporter: \"127.0.0.1:9917\"\n"),
             StartsWith(file + ":1:11: exporter: expected a mapping"));
  CHECK_THAT(config_error(dir, "\nlog: debug\n"), StartsWith(file + ":2:6: log: expected"));
}

TEST_CASE("an unknown top-level key is refused with the allowed keys", "[config]") {
  const TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  CHECK(config_error(dir, "capture:\n  snaplen: 100\ncaptrue:\n  snaplen: 200\n") ==
        file +
            ":3:1: captrue: unknown key (allowed here: capture, parser, analytics, detection, "
            "exporter, log, daemon)");
}

TEST_CASE("daemon.user and daemon.allow_root: defaults, file, flags and bad names", "[config]") {
  const TempDir dir;
  const Config defaults;
  CHECK(defaults.daemon.user.empty());  // dnsmon, else nobody
  CHECK_FALSE(defaults.daemon.allow_root);

  const std::string file =
      dir.write("daemon.yaml", "daemon:\n  user: monitor\n  allow_root: true\n");
  const Config c = load_config_file(file);
  CHECK(c.daemon.user == "monitor");
  CHECK(c.daemon.allow_root);
  CHECK(located_error(c, "daemon.user", "no user") == file + ":2:9: daemon.user: no user");

  const CommandLine flags = parse({"--config", file.c_str(), "--user", "other", "-r", "x.pcap"});
  REQUIRE(flags.action == CommandLine::Action::Run);
  CHECK(flags.config.daemon.user == "other");
  CHECK(located_error(flags.config, "daemon.user", "x") == "daemon.user: x");
  const CommandLine root = parse({"--allow-root", "-r", "x.pcap"});
  REQUIRE(root.action == CommandLine::Action::Run);
  CHECK(root.config.daemon.allow_root);
  CHECK(root.config.daemon.user.empty());
  CHECK(load_config_file(dir.write("auto.yaml", "daemon:\n  user: \"\"\n")).daemon.user.empty());

  const std::string bad = (dir.path() / "dnsmon.yaml").string();
  CHECK(config_error(dir, "daemon:\n  user: \" x\"\n") ==
        bad + ":2:9: daemon.user: expected a user name such as dnsmon, or \"\", got \" x\"");
  CHECK_THAT(config_error(dir, "daemon:\n  user: \"a:b\"\n"),
             StartsWith(bad + ":2:9: daemon.user: expected a user name"));
  CHECK_THAT(config_error(dir, "daemon:\n  allow_root: yes\n"),
             StartsWith(bad + ":2:15: daemon.allow_root: expected true or false"));
  const CommandLine flag = parse({"--user", "a:b", "-r", "x.pcap"});
  CHECK(flag.action == CommandLine::Action::Exit);
  CHECK(flag.exit_code == 2);
  CHECK_THAT(flag.message, StartsWith("dnsmon: --user: expected a user name"));
}

TEST_CASE("an unknown nested key is refused with its full path", "[config]") {
  const TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  CHECK_THAT(config_error(dir, "capture:\n  snaplen: 100\n  interface: [eth0]\n"),
             StartsWith(file + ":3:3: capture.interface: unknown key (allowed here: interfaces, "
                               "dnstap_sockets, dnstap_socket_mode, dnstap_socket_group, "
                               "filter, snaplen, buffer_mib, promiscuous, read_timeout_ms, "
                               "ring_slots, workers, dedup, local_networks)"));
  CHECK(config_error(dir, "parser:\n  ports: [53]\n") ==
        file +
            ":2:3: parser.ports: unknown key (allowed here: dns_ports, mdns, llmnr, "
            "encrypted_ports, fragments, tcp)");
  CHECK(config_error(dir, "exporter:\n    listen: \"127.0.0.1:1\"\n    port: 1\n") ==
        file + ":3:5: exporter.port: unknown key (allowed here: listen)");
  CHECK(config_error(dir, "log: {level: info, file: x}\n") ==
        file +
            ":1:20: log.file: unknown key (allowed here: level, stats_interval_s, events_max_mib)");
  CHECK_THAT(config_error(dir, "capture:\n  [a]: 1\n"),
             StartsWith(file + ":2:3: capture: keys must be plain words"));
}

TEST_CASE("a key given twice is refused instead of silently ignoring one", "[config]") {
  const TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  CHECK(config_error(dir, "log:\n  level: debug\nlog:\n  level: warn\n") ==
        file + ":3:1: log: duplicate key");
  CHECK(config_error(dir, "capture:\n  snaplen: 100\n  snaplen: 200\n") ==
        file + ":3:3: capture.snaplen: duplicate key");
}

TEST_CASE("a YAML syntax error reports its line and column", "[config]") {
  const TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  CHECK(config_error(dir, "capture:\n  snaplen: 100\n    filter: udp\n") ==
        file + ":3:11: (top level): not valid YAML: illegal map value");
  CHECK(config_error(dir, "log:\n  level: @info\n") ==
        file + ":2:10: (top level): not valid YAML: unknown token");
  CHECK(config_error(dir, "log:\n  level: info\n  - x\n") ==
        file + ":3:3: (top level): not valid YAML: end of map not found");
  CHECK(config_error(dir, "capture:\n  interfaces: [eth0,\n") ==
        file + ":3:1: (top level): not valid YAML: end of sequence flow not found");
  CHECK_THAT(
      config_error(dir, "capture:\n  interfaces: *eth\n"),
      StartsWith(file + ":2:15: (top level): not valid YAML") && Contains("anchor is not defined"));
  CHECK_THAT(config_error(dir, "log:\n\tlevel: info\n"),
             StartsWith(file + ":2:") && Contains("not valid YAML"));
}

TEST_CASE("an empty file or one with only comments keeps every default", "[config]") {
  const TempDir dir;
  for (const char* text : {"", "\n\n", "# nothing set\n  # still nothing\n", "---\n", "~\n"}) {
    CAPTURE(text);
    const std::string file = dir.write("dnsmon.yaml", text);
    const Config c = load_config_file(file);
    CHECK(c.capture.snaplen == 4096);
    CHECK(c.capture.interfaces.empty());
    CHECK(c.parser.dns_ports == std::vector<std::uint16_t>{53});
    CHECK(c.daemon.listen == kDefaultListen);
    CHECK(c.daemon.config_path == file);
  }
}

TEST_CASE("the file is applied on top of the base config it is given", "[config]") {
  const TempDir dir;
  Config base;
  base.capture.snaplen = 999;
  base.daemon.workers = 7;
  const Config c = load_config_file(dir.write("dnsmon.yaml", "capture:\n  workers: 3\n"), base);
  CHECK(c.capture.snaplen == 999);
  CHECK(c.daemon.workers == 3);
}

TEST_CASE("a file over 1 MiB is refused and one of exactly 1 MiB is read", "[config]") {
  const TempDir dir;
  constexpr std::size_t kMiB = 1U << 20U;
  std::string text = "log:\n  level: warn\n#";
  text.resize(kMiB, 'x');
  const Config c = load_config_file(dir.write("exact.yaml", text));
  CHECK(c.daemon.log_level == "warn");

  text += 'x';
  const std::string big = dir.write("big.yaml", text);
  CHECK_THROWS_MATCHES(
      load_config_file(big), ConfigError,
      Catch::Matchers::Message(big + ": larger than 1 MiB; this is not a dnsmon config file"));
}

TEST_CASE("a missing file is refused with its path", "[config]") {
  const TempDir dir;
  const std::string missing = (dir.path() / "missing.yaml").string();
  CHECK_THROWS_MATCHES(
      load_config_file(missing), ConfigError,
      Catch::Matchers::Message(missing + ": cannot open the config file: No such file or "
                                         "directory"));
}

TEST_CASE("a directory given as the config file is refused", "[config]") {
  const TempDir dir;
  const std::string path = dir.path().string();
  CHECK_THROWS_MATCHES(load_config_file(path), ConfigError,
                       Catch::Matchers::Message(path + ": cannot read the config file"));
}

TEST_CASE("split_listen accepts ADDRESS:PORT and refuses the rest", "[config]") {
  std::string address;
  std::uint16_t port = 0;
  CHECK(split_listen("127.0.0.1:9917", address, port));
  CHECK(address == "127.0.0.1");
  CHECK(port == 9917);
  CHECK(split_listen("[::1]:0", address, port));
  CHECK(address == "[::1]");
  CHECK(port == 0);
  CHECK(split_listen("0.0.0.0:65535", address, port));
  CHECK(address == "0.0.0.0");
  CHECK(port == 65535);
  CHECK(split_listen("[::]:9917", address, port));
  CHECK(split_listen("[2001:db8::1]:9917", address, port));
  CHECK(address == "[2001:db8::1]");
  CHECK(split_listen("[::ffff:127.0.0.1]:9917", address, port));
  for (const char* bad : {"",
                          "127.0.0.1",
                          "127.0.0.1:",
                          ":9917",
                          "127.0.0.1:65536",
                          "127.0.0.1:-1",
                          "127.0.0.1:+1",
                          "127.0.0.1:99999999999",
                          "[::1]",
                          "[::1:9917",
                          "127.0.0.1:80x",
                          "a b:80",
                          "a/b:80",
                          "localhost:9917",
                          "host:abc",
                          "1.2.3.4:99999",
                          "127.0.0.1:9941,0.0.0.0:9942",
                          "127.0.0.1:9941, 0.0.0.0:9942",
                          "127.1:9917",
                          "256.0.0.1:9917",
                          "::1:9917",
                          "[]:9917",
                          "[127.0.0.1]:9917",
                          "[fe80::1%lo]:9917",
                          "[::1]x:9917",
                          " 127.0.0.1:9917",
                          "9917"}) {
    CAPTURE(bad);
    std::string why;
    CHECK_FALSE(split_listen(bad, address, port, &why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("no arguments run with the defaults", "[config]") {
  const CommandLine cli = parse({});
  CHECK(cli.action == CommandLine::Action::Run);
  CHECK(cli.config.capture.interfaces.empty());
  CHECK(cli.config.capture.files.empty());
  CHECK(cli.config.daemon.listen == kDefaultListen);
  CHECK_FALSE(cli.config.daemon.listen_given);
  CHECK(cli.config.daemon.config_path.empty());
  CHECK_FALSE(cli.config.daemon.check_config);
}

TEST_CASE("command-line flags override the config file", "[config]") {
  const TempDir dir;
  const std::string file = dir.write("dnsmon.yaml", R"(capture:
  interfaces: [eth0]
  filter: "udp port 53"
  snaplen: 200
  buffer_mib: 16
  workers: 2
exporter:
  listen: "127.0.0.1:9000"
log:
  level: debug
)");
  SECTION("the file alone") {
    const CommandLine cli = parse({"--config", file.c_str()});
    REQUIRE(cli.action == CommandLine::Action::Run);
    CHECK(cli.config.capture.interfaces == std::vector<std::string>{"eth0"});
    CHECK(cli.config.capture.bpf_filter == "udp port 53");
    CHECK(cli.config.capture.snaplen == 200);
    CHECK(cli.config.daemon.workers == 2);
    CHECK(cli.config.daemon.listen == "127.0.0.1:9000");
    CHECK(cli.config.daemon.listen_given);
    CHECK(cli.config.daemon.log_level == "debug");
    CHECK(cli.config.daemon.config_path == file);
  }
  SECTION("flags over the file") {
    const CommandLine cli = parse({"--config",
                                   file.c_str(),
                                   "-i",
                                   "eth1",
                                   "--interface",
                                   "eth2",
                                   "--listen",
                                   "127.0.0.1:9100",
                                   "--workers",
                                   "3",
                                   "--snaplen",
                                   "300",
                                   "--filter",
                                   "tcp port 53",
                                   "--log-level",
                                   "warn",
                                   "--metrics-out",
                                   "-",
                                   "--messages-out",
                                   "m.jsonl",
                                   "--check-config"});
    REQUIRE(cli.action == CommandLine::Action::Run);
    CHECK(cli.config.capture.interfaces == std::vector<std::string>{"eth1", "eth2"});
    CHECK(cli.config.capture.bpf_filter == "tcp port 53");
    CHECK(cli.config.capture.snaplen == 300);
    CHECK(cli.config.capture.buffer_bytes == 16U << 20U);  // not overridden: from the file
    CHECK(cli.config.daemon.workers == 3);
    CHECK(cli.config.daemon.listen == "127.0.0.1:9100");
    CHECK(cli.config.daemon.log_level == "warn");
    CHECK(cli.config.daemon.metrics_out == "-");
    CHECK(cli.config.daemon.messages_out == "m.jsonl");
    CHECK(cli.config.daemon.check_config);
  }
}

TEST_CASE("files given with -r and the replay speed reach the capture options", "[config]") {
  const CommandLine cli = parse({"-r", "a.pcap", "--read", "b.pcapng", "--replay-speed", "10"});
  REQUIRE(cli.action == CommandLine::Action::Run);
  CHECK(cli.config.capture.files == std::vector<std::string>{"a.pcap", "b.pcapng"});
  CHECK(cli.config.capture.replay_speed == 10.0);
  CHECK_FALSE(cli.config.daemon.listen_given);
}

TEST_CASE(
    "serve after replay (--serve-after-replay) applies to replays and the demo, not to live "
    "capture",
    "[config]") {
  CHECK_FALSE(parse({"-r", "a.pcap"}).config.daemon.serve_after_replay);
  for (const std::vector<const char*>& args :
       {std::vector<const char*>{"-r", "a.pcap", "--serve-after-replay"},
        std::vector<const char*>{"--serve-after-replay"}}) {
    std::vector<const char*> argv{"dnsmon"};
    argv.insert(argv.end(), args.begin(), args.end());
    CAPTURE(args);
    const CommandLine cli = parse_command_line(static_cast<int>(argv.size()), argv.data());
    REQUIRE(cli.action == CommandLine::Action::Run);
    CHECK(cli.config.daemon.serve_after_replay);
    CHECK_FALSE(cli.config.daemon.listen_given);
  }
  const CommandLine live = parse({"-i", "eth0", "--serve-after-replay"});
  CHECK(live.action == CommandLine::Action::Exit);
  CHECK(live.exit_code == 2);
  CHECK_THAT(live.message, Contains("--serve-after-replay applies to replays (-r FILE)"));
}

TEST_CASE("the help flag prints usage and exits 0", "[config]") {
  for (const char* flag : {"--help", "-h"}) {
    CAPTURE(flag);
    const CommandLine cli = parse({flag});
    CHECK(cli.action == CommandLine::Action::Exit);
    CHECK(cli.exit_code == 0);
    CHECK_THAT(cli.message, Contains("-i,--interface") && Contains("-r,--read") &&
                                Contains("--config") && Contains("--check-config"));
  }
}

TEST_CASE("the version flag prints the version and exits 0", "[config]") {
  for (const char* flag : {"--version", "-V"}) {
    CAPTURE(flag);
    const CommandLine cli = parse({flag});
    CHECK(cli.action == CommandLine::Action::Exit);
    CHECK(cli.exit_code == 0);
    CHECK(cli.message == std::string("dnsmon ") + kVersion);
  }
}

TEST_CASE("an unknown flag or a bad flag value is a usage error with exit code 2", "[config]") {
  const std::vector<std::vector<const char*>> cases = {
      {"--bogus"},
      {"-x"},
      {"--workers", "0"},
      {"--workers", "65"},
      {"--workers", "two"},
      {"--snaplen", "63"},
      {"--log-level", "loud"},
      {"--listen"},
      {"--replay-speed", "-1"},
      {"--replay-speed", "1e-300"},
      {"--replay-speed", "0.0009"},
      {"--replay-speed", "nan"},
      {"--replay-speed", "inf"},
      {"--replay-speed", "2e6"},
      {"--metrics-out", "-", "--messages-out", "-"},
      {"extra"},
  };
  for (const auto& args : cases) {
    std::vector<const char*> argv{"dnsmon"};
    argv.insert(argv.end(), args.begin(), args.end());
    CAPTURE(args);
    const CommandLine cli = parse_command_line(static_cast<int>(argv.size()), argv.data());
    CHECK(cli.action == CommandLine::Action::Exit);
    CHECK(cli.exit_code == 2);
    CHECK_THAT(cli.message, StartsWith("dnsmon: ") && Contains("Run with --help for usage."));
  }
  CHECK_THAT(parse({"--bogus"}).message, Contains("--bogus"));
  CHECK_THAT(parse({"--replay-speed", "nan"}).message, Contains("--replay-speed"));
  CHECK_THAT(parse({"--metrics-out", "-", "--messages-out", "-"}).message,
             Contains("standard output"));
}

TEST_CASE("the replay speed takes 0 and the range 0.001 to 1000000", "[config]") {
  for (const char* speed : {"0", "0.001", "0.5", "1", "1e6"}) {
    CAPTURE(speed);
    const CommandLine cli = parse({"-r", "a.pcap", "--replay-speed", speed});
    REQUIRE(cli.action == CommandLine::Action::Run);
    CHECK(cli.config.capture.replay_speed == std::stod(speed));
  }
}

TEST_CASE("a bad --listen is a usage error that says what is wrong", "[config]") {
  for (const char* listen :
       {"localhost", "127.0.0.1:65536", ":9917", "127.0.0.1:", "127.0.0.1:9941,0.0.0.0:9942",
        "[::1]", "1.2.3.4:99999", "host:abc", "localhost:9917"}) {
    CAPTURE(listen);
    const CommandLine cli = parse({"--listen", listen});
    CHECK(cli.action == CommandLine::Action::Exit);
    CHECK(cli.exit_code == 2);
    CHECK_THAT(cli.message, StartsWith(std::string("dnsmon: --listen: expected ADDRESS:PORT such "
                                                   "as 127.0.0.1:9917 or [::1]:9917, got \"") +
                                       listen + "\": ") &&
                                Contains("Run with --help for usage."));
  }
  // Before the config file is read: the usage error wins over a bad file.
  CHECK(parse({"--listen", "x", "--config", "/nonexistent/dnsmon.yaml"}).exit_code == 2);
}

TEST_CASE("a bad config file given with --config throws ConfigError", "[config]") {
  const TempDir dir;
  const std::string file = dir.write("dnsmon.yaml", "capture:\n  snaplen: 10\n");
  CHECK_THROWS_WITH(parse({"--config", file.c_str()}),
                    StartsWith(file + ":2:12: capture.snaplen: out of range"));
  const std::string missing = (dir.path() / "missing.yaml").string();
  CHECK_THROWS_AS(parse({"--config", missing.c_str()}), ConfigError);
}

TEST_CASE("interfaces and files cannot be mixed on one command line", "[config]") {
  CHECK_THROWS_WITH(parse({"-i", "eth0", "-r", "a.pcap"}), Contains("cannot be mixed"));
}

TEST_CASE("dnstap sockets: flags, keys, and what cannot go with them", "[config]") {
  const TempDir dir;
  const auto cli =
      parse({"--dnstap-socket", "/run/a.sock", "--dnstap-socket", "/run/b.sock", "-i", "eth0"});
  CHECK(cli.config.capture.dnstap_sockets ==
        std::vector<std::string>{"/run/a.sock", "/run/b.sock"});
  CHECK(cli.config.capture.interfaces == std::vector<std::string>{"eth0"});
  CHECK_THROWS_WITH(parse({"--dnstap-socket", "/run/a.sock", "-r", "a.pcap"}),
                    Contains("cannot be mixed"));

  const std::string file = dir.write(
      "dnsmon.yaml",
      "capture:\n  dnstap_sockets: [/run/dnsmon/dnstap.sock]\n  dnstap_socket_mode: \"0620\"\n"
      "  dnstap_socket_group: unbound\n");
  const auto loaded = parse({"--config", file.c_str()});
  CHECK(loaded.config.capture.dnstap_sockets ==
        std::vector<std::string>{"/run/dnsmon/dnstap.sock"});
  CHECK(loaded.config.capture.dnstap_socket_mode == "0620");
  CHECK(loaded.config.capture.dnstap_socket_group == "unbound");
  // Sources on the command line replace the file's, dnstap sockets included.
  const auto replay = parse({"--config", file.c_str(), "-r", "a.pcap"});
  CHECK(replay.config.capture.dnstap_sockets.empty());

  const std::string file_path = (dir.path() / "dnsmon.yaml").string();
  CHECK_THAT(config_error(dir, "capture:\n  dnstap_socket_mode: \"0800\"\n"),
             StartsWith(file_path + ":2:23: capture.dnstap_socket_mode: expected permission bits"));
  CHECK_THAT(config_error(dir, "capture:\n  dnstap_sockets: [/a, /a]\n"),
             Contains("the same socket twice"));
  CHECK_THAT(
      config_error(dir, "capture:\n  dnstap_sockets: [\"/" + std::string(120, 'x') + "\"]\n"),
      Contains("1 to 107 characters"));
  std::uint32_t mode = 0;
  CHECK(dnsmon::parse_socket_mode("660", mode));
  CHECK(mode == 0660U);
  CHECK_FALSE(dnsmon::parse_socket_mode("01000", mode));
  CHECK_FALSE(dnsmon::parse_socket_mode("", mode));
  CHECK_FALSE(dnsmon::parse_socket_mode("rw", mode));
}

TEST_CASE("files given with -r replace the interfaces of the config file", "[config]") {
  const TempDir dir;
  const std::string file = dir.write("dnsmon.yaml", "capture:\n  interfaces: [eth0]\n");
  const auto cli = parse({"--config", file.c_str(), "-r", "a.pcap"});
  CHECK(cli.config.capture.interfaces.empty());
  CHECK(cli.config.capture.files == std::vector<std::string>{"a.pcap"});
}

TEST_CASE("a section with every key commented out keeps the defaults", "[config]") {
  const TempDir dir;
  const std::string file = dir.write("dnsmon.yaml", "capture:\n  # snaplen: 100\nlog:\n");
  const auto config = load_config_file(file);
  CHECK(config.capture.snaplen == 4096);
}

TEST_CASE("an empty interface name is refused", "[config]") {
  const TempDir dir;
  const std::string file = dir.write("dnsmon.yaml", "capture:\n  interfaces: [\"\"]\n");
  CHECK_THROWS_WITH(load_config_file(file), Contains("capture.interfaces"));
}

}  // namespace dnsmon

namespace dnsmon {

TEST_CASE("parser reassembly and protocol keys reach the parser options", "[config]") {
  const auto dir = std::filesystem::temp_directory_path() / "dnsmon-config-parser-keys";
  std::filesystem::create_directories(dir);
  const auto file = (dir / "dnsmon.yaml").string();
  {
    std::ofstream out(file);
    out << "parser:\n  mdns: true\n  llmnr: true\n  encrypted_ports: [853, 8853]\n"
           "  fragments:\n    max_datagrams: 10\n    memory_mib: 2\n    timeout_s: 3\n"
           "  tcp:\n    max_flows: 20\n    memory_mib: 4\n    idle_timeout_s: 30\n";
  }
  const Config c = load_config_file(file);
  CHECK(c.parser.mdns);
  CHECK(c.parser.llmnr);
  CHECK(c.parser.encrypted_ports == std::vector<std::uint16_t>{853, 8853});
  CHECK(c.parser.fragment_datagrams == 10);
  CHECK(c.parser.fragment_memory_bytes == 2U << 20U);
  CHECK(c.parser.fragment_timeout_ns == 3'000'000'000);
  CHECK(c.parser.tcp_flows == 20);
  CHECK(c.parser.tcp_memory_bytes == 4U << 20U);
  CHECK(c.parser.tcp_idle_timeout_ns == 30'000'000'000);
  {
    std::ofstream out(file);
    out << "parser:\n  tcp:\n    max_flows: 0\n";
  }
  CHECK_THROWS_WITH(load_config_file(file), Catch::Contains(":3:16: parser.tcp.max_flows"));
  std::filesystem::remove_all(dir);
}

}  // namespace dnsmon

namespace dnsmon {

TEST_CASE("analytics keys reach the metrics options", "[config]") {
  const TempDir dir;
  const std::string file =
      dir.write("dnsmon.yaml",
                "analytics:\n  memory_mib: 300\n  windows: [30s, 2m, 1h]\n  sub_windows: 3\n"
                "  top_n: 20\n  top_capacity: 500\n  hll_precision: 12\n"
                "  clients:\n    ipv4_prefix: 24\n    ipv6_prefix: 56\n    pseudonymise: true\n"
                "    pseudonymise_key: 0123456789abcdef0123\n"
                "  matching:\n    capacity: 1000\n    timeout_ms: 2500\n");
  const Config c = load_config_file(file);
  const auto& a = c.metrics.analytics;
  CHECK(c.metrics.memory_budget_bytes == std::uint64_t{300} << 20U);
  CHECK(a.windows_s == std::vector<std::uint32_t>{30, 120, 3600});
  CHECK(a.sub_windows == 3);
  CHECK(a.top_n == 20);
  CHECK(a.top_capacity == 500);
  CHECK(a.hll_precision == 12);
  CHECK(a.client_ipv4_prefix == 24);
  CHECK(a.client_ipv6_prefix == 56);
  CHECK(a.pseudonymise_clients);
  CHECK(a.pseudonymise_key == "0123456789abcdef0123");
  CHECK(c.metrics.matching_capacity == 1000);
  CHECK(c.metrics.matching_timeout_ms == 2500);
  CHECK_NOTHROW(validate(c));
}

TEST_CASE("bad analytics values are refused with their key path", "[config]") {
  const TempDir dir;
  CHECK_THAT(config_error(dir, "analytics:\n  windows: [5x]\n"),
             Contains(":2:13: analytics.windows[0]: expected a duration"));
  CHECK_THAT(config_error(dir, "analytics:\n  windows: [1m, 60s]\n"),
             Contains("analytics.windows[1]: the same window twice"));
  CHECK_THAT(config_error(dir, "analytics:\n  windows: [25h]\n"), Contains("out of range"));
  CHECK_THAT(config_error(dir, "analytics:\n  windows: [1m, 100s]\n  sub_windows: 6\n"),
             Contains("analytics.windows[1]: a window of 100 s cannot be split into 6"));
  CHECK_THAT(config_error(dir, "analytics:\n  top_n: 50\n  top_capacity: 20\n"),
             Contains("analytics.top_capacity: top_capacity (20) must be at least top_n (50)"));
  CHECK_THAT(config_error(dir, "analytics:\n  hll_precision: 20\n"),
             Contains("analytics.hll_precision: out of range"));
  CHECK_THAT(config_error(dir, "analytics:\n  clients:\n    ipv4_prefix: 33\n"),
             Contains("analytics.clients.ipv4_prefix: out of range"));
  CHECK_THAT(config_error(dir, "analytics:\n  clients:\n    pseudonymise_key: short\n"),
             Contains("analytics.clients.pseudonymise_key: too short"));
  CHECK_THAT(config_error(dir, "analytics:\n  matching:\n    timeout_ms: 0\n"),
             Contains("analytics.matching.timeout_ms: out of range"));
  CHECK_THAT(config_error(dir, "analytics:\n  window: [1m]\n"),
             Contains("analytics.window: unknown key"));
}

TEST_CASE("a configuration whose analytics exceed the memory budget is refused", "[config]") {
  Config c;
  c.daemon.workers = 1;
  CHECK_NOTHROW(validate(c));  // the defaults fit the default budget with room to spare
  c.daemon.workers = 4;
  CHECK_NOTHROW(validate(c));
  c.metrics.memory_budget_bytes = std::uint64_t{8} << 20U;
  CHECK_THROWS_WITH(validate(c),
                    Contains("analytics.memory_mib: the analytics of 4 worker(s) need"));
  c.metrics.analytics.enabled = false;
  c.metrics.matching_capacity = 1024;
  CHECK_NOTHROW(validate(c));
  c.metrics.analytics.enabled = true;
  c.metrics.analytics.public_suffix_list = "/nonexistent/list.dat";
  c.metrics.memory_budget_bytes = std::uint64_t{1} << 30U;
  CHECK_NOTHROW(validate(c));  // the list is read by the metrics module, once (see below)
}

TEST_CASE("a public suffix list that cannot be loaded is reported at the key that names it",
          "[config]") {
  const TempDir dir;
  const std::string file = dir.write(
      "dnsmon.yaml", "# the list\nanalytics:\n  public_suffix_list: /nonexistent/list.dat\n");
  const Config c = load_config_file(file);  // reading the config does not load the list
  CHECK_NOTHROW(validate(c));
  CHECK(c.positions.at("analytics.public_suffix_list").line == 3);
  CHECK(c.positions.at("analytics.public_suffix_list").column == 23);
  std::string message;
  try {
    (void)load_public_suffix_list(c.metrics.analytics.public_suffix_list);
  } catch (const std::runtime_error& e) {
    message = located_error(c, "analytics.public_suffix_list", e.what());
  }
  CHECK_THAT(message, StartsWith(file + ":3:23: analytics.public_suffix_list: cannot load the "
                                        "public suffix list /nonexistent/list.dat"));
  // A key the file does not set has no position: the message names the key alone.
  CHECK(located_error(Config{}, "analytics.public_suffix_list", "why") ==
        "analytics.public_suffix_list: why");
  CHECK(located_error(c, "analytics.top_n", "why") == "analytics.top_n: why");
}

TEST_CASE("a key a flag overrides loses its position in the file", "[config]") {
  const TempDir dir;
  const std::string file = dir.write(
      "dnsmon.yaml", "capture:\n  interfaces: [eth0, eth1]\n  snaplen: 512\n  workers: 2\n");
  const auto kept = parse({"--config", file.c_str()});
  CHECK(kept.config.positions.size() == 5);
  const auto cli = parse({"--config", file.c_str(), "-i", "eth2", "--snaplen", "600"});
  CHECK(cli.config.positions.size() == 1);
  CHECK(located_error(cli.config, "capture.workers", "x") == file + ":4:12: capture.workers: x");
  CHECK(located_error(cli.config, "capture.snaplen", "x") == "capture.snaplen: x");
}

TEST_CASE("every key and list item the file sets has its position", "[config]") {
  const TempDir dir;
  const std::string file =
      dir.write("dnsmon.yaml", "capture:\n  snaplen: 512\nanalytics:\n  windows: [1m, 5m]\n");
  const Config c = load_config_file(file);
  CHECK(c.positions.size() == 4);
  CHECK(located_error(c, "capture.snaplen", "x") == file + ":2:12: capture.snaplen: x");
  CHECK(located_error(c, "analytics.windows", "x") == file + ":4:12: analytics.windows: x");
  CHECK(located_error(c, "analytics.windows[1]", "x") == file + ":4:17: analytics.windows[1]: x");
  CHECK(c.positions.count("capture.workers") == 0);
}

namespace {

// The documentation of each key in a config file written as systemd/dnsmon.yaml is: a key's
// comment is the comment at the end of its line, the comment lines right above it, or a paragraph
// of comment lines that starts with "# key: " (for a key that is commented out).
struct KeyDoc {
  std::string text;                  // the comments, joined by spaces
  std::optional<std::string> value;  // what the uncommented key is set to
};

std::map<std::string, KeyDoc> read_key_docs(std::istream& in) {
  std::map<std::string, KeyDoc> docs;
  std::vector<std::pair<std::size_t, std::string>> sections;  // indent and name of each level
  std::string paragraph, header;  // the comment lines since the last blank or key line
  const auto section_of = [&sections](std::size_t indent) {
    std::string path;
    for (const auto& [i, name] : sections) {
      path += i < indent ? name + "." : "";
    }
    return path;
  };
  const auto end_paragraph = [&] {
    if (!header.empty()) {
      docs[header].text += " " + paragraph;
    }
    paragraph.clear();
    header.clear();
  };
  const std::regex comment(R"(^( *)#( ?)(.*)$)");
  const std::regex key_line(R"(^( *)([a-z0-9_]+):(.*)$)");
  const std::regex header_text(R"(^([a-z0-9_]+): .*)");
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(' ') == std::string::npos) {
      end_paragraph();
    } else if (std::regex_match(line, m, comment)) {
      const std::string text = m[3];
      std::smatch h;
      if (paragraph.empty() && m[2] == " " && std::regex_match(text, h, header_text)) {
        header = section_of(static_cast<std::size_t>(m[1].length())) + h[1].str();
      }
      paragraph += (paragraph.empty() ? "" : " ") + text;
    } else if (std::regex_match(line, m, key_line)) {
      const auto indent = static_cast<std::size_t>(m[1].length());
      while (!sections.empty() && sections.back().first >= indent) {
        sections.pop_back();
      }
      const std::string path = section_of(indent) + m[2].str();
      std::string rest = m[3];
      std::string trailing;
      if (const auto hash = rest.find(" #"); hash != std::string::npos) {
        trailing = rest.substr(rest.find_first_not_of(' ', hash + 2));
        rest.resize(hash);
      }
      rest.erase(0, rest.find_first_not_of(' '));
      rest.erase(rest.find_last_not_of(' ') + 1);
      KeyDoc& doc = docs[path];
      doc.text.append(" ").append(trailing).append(" ").append(paragraph);
      if (rest.empty()) {
        sections.emplace_back(indent, m[2].str());
      } else {
        doc.value = rest;
      }
      end_paragraph();
    } else {
      FAIL("a line that is neither a comment nor a key: " << line);
    }
  }
  end_paragraph();
  return docs;
}

// Whether text says "Default: VALUE" (not the start of a longer value).
bool documents_default(const std::string& text, const std::string& value) {
  const std::string needle = "Default: " + value;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    const auto after = at + needle.size();
    if (after == text.size() || std::string(" .,;)").find(text[after]) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("systemd/dnsmon.yaml documents every key with the table's default and range",
          "[config]") {
  std::ifstream in(std::string(DNSMON_SOURCE_DIR) + "/systemd/dnsmon.yaml");
  REQUIRE(in.good());
  const auto docs = read_key_docs(in);
  std::map<std::string, const ConfigKey*> table;
  for (const ConfigKey& k : config_keys()) {
    table[k.path] = &k;
  }
  for (const auto& [path, doc] : docs) {
    CAPTURE(path, doc.text);
    CHECK(table.count(path) == 1);  // every documented key exists
  }
  for (const ConfigKey& k : config_keys()) {
    CAPTURE(k.path);
    const auto doc = docs.find(k.path);
    REQUIRE(doc != docs.end());
    if (k.section) {
      continue;
    }
    CAPTURE(doc->second.text, k.default_value, k.range);
    CHECK(documents_default(doc->second.text, k.default_value));
    // "Reloadable" marks exactly the keys a reload applies.
    CHECK((doc->second.text.find("Reloadable") != std::string::npos) == (k.reload == Reload::Live));
    CHECK(doc->second.text.find(k.range) != std::string::npos);
    if (doc->second.value) {
      CHECK(*doc->second.value == k.default_value);  // an uncommented key is at its default
    }
  }
}

TEST_CASE("the table reads every key's default from a default config", "[config]") {
  std::map<std::string, ConfigKey> keys;
  for (const ConfigKey& k : config_keys()) {
    keys[k.path] = k;
  }
  CHECK(keys.at("capture.interfaces").default_value == "[]");
  CHECK(keys.at("capture.filter").default_value == "\"\"");
  CHECK(keys.at("capture.snaplen").default_value == "4096");
  CHECK(keys.at("capture.snaplen").range == "Range: 64 to 65535");
  CHECK(keys.at("capture.buffer_mib").default_value == "64");  // bytes shown in MiB
  CHECK(keys.at("capture.promiscuous").default_value == "true");
  CHECK(keys.at("parser.dns_ports").default_value == "[53]");
  CHECK(keys.at("parser.dns_ports").range == "A list of 1 to 16 port numbers, each 1 to 65535");
  CHECK(keys.at("parser.fragments.timeout_s").default_value == "5");  // nanoseconds in seconds
  CHECK(keys.at("analytics.windows").default_value == "[1m, 5m, 1h]");
  CHECK(keys.at("analytics.windows").range == "A list of 1 to 8 durations, each 1s to 24h");
  CHECK(keys.at("analytics.memory_mib").default_value == "128");
  CHECK(keys.at("exporter.listen").default_value == "\"127.0.0.1:9917\"");
  CHECK(keys.at("log.level").default_value == "info");
  CHECK(keys.at("log.level").range == "One of: trace, debug, info, warn, error, off");
  CHECK(keys.at("analytics.clients").section);
  CHECK(keys.at("analytics.clients").default_value.empty());
}

TEST_CASE("keys a running dnsmon could apply are marked live, the others restart", "[config]") {
  std::map<std::string, Reload> reload;
  for (const ConfigKey& k : config_keys()) {
    reload[k.path] = k.reload;
  }
  for (const char* live :
       {"log.level", "analytics.top_n", "detection.vantage", "detection.clients.org_map_file",
        "detection.clients.internal_networks", "detection.normalize.search_suffixes",
        "detection.detectors.querier_concentration.min_top2_share",
        "detection.detectors.covert_pair.weights.gate",
        "detection.detectors.successor.max_age_days", "detection.export.watchlist",
        "detection.export.allowlist_domains", "detection.export.allowlist_orgs",
        "detection.export.top_n_per_detector", "detection.export.hold_seconds"}) {
    CAPTURE(live);
    CHECK(reload.at(live) == Reload::Live);
  }
  for (const char* restart : {"capture.interfaces",
                              "capture.workers",
                              "exporter.listen",
                              "capture.ring_slots",
                              "capture.buffer_mib",
                              "analytics.memory_mib",
                              "analytics.top_capacity",
                              "analytics.matching.capacity",
                              "parser.tcp.memory_mib",
                              "parser.fragments.max_datagrams",
                              "daemon.user",
                              "daemon.allow_root",
                              "detection.enabled",
                              "detection.state_file",
                              "detection.events_file",
                              "detection.time.compression",
                              "detection.time.origin",
                              "detection.memory.base_entries",
                              "detection.memory.watch_entries",
                              "detection.export.metrics_snapshot_dir"}) {
    CAPTURE(restart);
    CHECK(reload.at(restart) == Reload::Restart);
  }
  // Every detector threshold and weight is live.
  for (const ConfigKey& k : config_keys()) {
    if (!k.section && k.path.starts_with("detection.detectors.")) {
      CAPTURE(k.path);
      CHECK(k.reload == Reload::Live);
    }
  }
}

TEST_CASE("a reload copies a live key's value from the file it read", "[config]") {
  Config running;
  Config next;
  next.detection.exports.watchlist = {"watched.example"};
  next.detection.detectors.burst.min_ratio = 5.5;
  next.detection.normalize.dedup_window_s = 2;
  next.metrics.analytics.top_n = 7;
  for (const char* path : {"detection.export.watchlist", "detection.detectors.burst.min_ratio",
                           "detection.normalize.dedup_window_s", "analytics.top_n"}) {
    copy_key(path, next, running);
  }
  CHECK(running.detection.exports.watchlist == std::vector<std::string>{"watched.example"});
  CHECK(running.detection.detectors.burst.min_ratio == 5.5);
  CHECK(running.detection.normalize.dedup_window_s == 2);
  CHECK(running.metrics.analytics.top_n == 7);
  CHECK(changed_keys(running, next).empty());
  CHECK_THROWS_AS(copy_key("detection.export", next, running), std::logic_error);
  CHECK_THROWS_AS(copy_key("no.such.key", next, running), std::logic_error);
}

TEST_CASE("a reload sees which keys changed, with their values and whether they are live",
          "[config]") {
  const Config before;
  CHECK(changed_keys(before, before).empty());
  Config after;
  after.metrics.analytics.top_n = 5;
  after.metrics.analytics.top_capacity = 512;
  after.daemon.log_level = "debug";
  const auto changes = changed_keys(before, after);
  REQUIRE(changes.size() == 3);
  CHECK(changes[0].path == "analytics.top_n");
  CHECK(changes[0].before == "10");
  CHECK(changes[0].after == "5");
  CHECK(changes[0].reload == Reload::Live);
  CHECK(changes[1].path == "analytics.top_capacity");
  CHECK(changes[1].reload == Reload::Restart);
  CHECK(changes[2].path == "log.level");
  CHECK(changes[2].after == "debug");
  CHECK(changes[2].reload == Reload::Live);
}

TEST_CASE("the printed defaults are a config file that loads to the defaults", "[config]") {
  const TempDir dir;
  const std::string text = default_config_yaml();
  CHECK_THAT(text, Contains("\ncapture:\n") && Contains("\n  snaplen: 4096\n") &&
                       Contains("\n  # bytes kept per captured frame. Range: 64 to 65535.\n") &&
                       Contains("\n    timeout_ms: 5000\n"));
  // The keys a reload applies are marked.
  CHECK_THAT(text,
             Contains("\n  # series per top-N table and window. Range: 1 to 1000. "
                      "Reloadable.\n") &&
                 Contains("domains always tracked and exported. A list of 0 to 1024 "
                          "registrable domains. Reloadable.\n") &&
                 Contains("\n    # registrable domains the base table holds (88 bytes each, 8 per "
                          "bucket). Range: 8 to 4294967296.\n"));
  const Config c = load_config_file(dir.write("defaults.yaml", text));
  const Config d;
  CHECK(c.positions.size() > 30);
  CHECK(c.capture.interfaces == d.capture.interfaces);
  CHECK(c.capture.bpf_filter == d.capture.bpf_filter);
  CHECK(c.capture.snaplen == d.capture.snaplen);
  CHECK(c.capture.buffer_bytes == d.capture.buffer_bytes);
  CHECK(c.capture.ring_slots == d.capture.ring_slots);
  CHECK(c.parser.dns_ports == d.parser.dns_ports);
  CHECK(c.parser.encrypted_ports == d.parser.encrypted_ports);
  CHECK(c.parser.fragment_timeout_ns == d.parser.fragment_timeout_ns);
  CHECK(c.parser.tcp_memory_bytes == d.parser.tcp_memory_bytes);
  CHECK(c.metrics.memory_budget_bytes == d.metrics.memory_budget_bytes);
  CHECK(c.metrics.analytics.windows_s == d.metrics.analytics.windows_s);
  CHECK(c.metrics.analytics.top_capacity == d.metrics.analytics.top_capacity);
  CHECK(c.metrics.analytics.client_ipv6_prefix == d.metrics.analytics.client_ipv6_prefix);
  CHECK(c.metrics.matching_timeout_ms == d.metrics.matching_timeout_ms);
  CHECK(c.daemon.listen == d.daemon.listen);
  CHECK(c.daemon.log_level == d.daemon.log_level);
  CHECK(c.daemon.stats_interval_s == d.daemon.stats_interval_s);
}

TEST_CASE("the --print-defaults flag prints the default config and exits 0", "[config]") {
  const CommandLine cli = parse({"--print-defaults"});
  CHECK(cli.action == CommandLine::Action::Exit);
  CHECK(cli.exit_code == 0);
  CHECK(cli.message + "\n" == default_config_yaml());
}

TEST_CASE("the detection section is off by default and binds detection spec 4.13's keys",
          "[config][detection]") {
  const Config defaults;
  CHECK_FALSE(defaults.detection.enabled);
  CHECK(defaults.detection.time.origin == "first_packet");
  CHECK_FALSE(defaults.detection.time.origin_ns.has_value());
  CHECK(defaults.detection.memory.base_entries == 4'194'304);

  TempDir dir;
  const Config c = load_config_file(dir.write("dnsmon.yaml", R"(detection:
  enabled: true
  events_file: /var/log/dnsmon/events.jsonl
  time: {compression: 1440, origin: 2016-04-04T00:00:00Z}
  vantage: authoritative_side
  clients: {internal_networks: [198.18.0.0/15, "2001:db8:1::/48"], external_v4_prefix: 16}
  normalize: {search_suffixes: [Corp.Orga.Example.], dedup_window_s: 0.5}
  memory: {base_entries: 262144, candidate_entries: 8192, watch_entries: 64,
           seen_filter_entries: 1048576, doorkeeper_bits: 8388608}
  detectors:
    querier_concentration: {min_top2_share: 0.9, min_population: 10}
    beacon: {weights: {ts: 0.6}}
    covert_pair: {weights: {new: 0.05}, max_new_per_day: 7}
    disappearance: {count_timeouts: false}
  export: {watchlist: [hotel-promo-mailer.example], top_n_per_detector: 5}
)"));
  const auto& d = c.detection;
  CHECK(d.enabled);
  CHECK(d.events_file == "/var/log/dnsmon/events.jsonl");
  CHECK(d.time.compression == 1440);
  REQUIRE(d.time.origin_ns.has_value());
  CHECK(*d.time.origin_ns == std::int64_t{1459728000} * 1'000'000'000);
  CHECK(d.vantage == "authoritative_side");
  CHECK(d.clients.internal_networks.size() == 2);
  CHECK(d.clients.external_v4_prefix == 16);
  CHECK(d.clients.external_v6_prefix == 48);
  REQUIRE(d.normalize.search_suffixes.size() == 1);
  CHECK(d.normalize.search_suffixes[0] == "corp.orga.example");  // lower case, no final dot
  CHECK(d.normalize.dedup_window_s == 0.5);
  CHECK(d.memory.candidate_entries == 8192);
  CHECK(d.detectors.querier_concentration.min_top2_share == 0.9);
  CHECK(d.detectors.querier_concentration.min_population == 10);
  CHECK(d.detectors.querier_concentration.min_events == 50);
  CHECK(d.detectors.beacon.weights.ts == 0.6);
  CHECK(d.detectors.beacon.weights.hist == 0.25);
  CHECK(d.detectors.covert_pair.weights.new_ == 0.05);
  CHECK(d.detectors.covert_pair.max_new_per_day == 7);
  CHECK_FALSE(d.detectors.disappearance.count_timeouts);
  CHECK(d.exports.watchlist == std::vector<std::string>{"hotel-promo-mailer.example"});
  CHECK(d.exports.top_n_per_detector == 5);
  const std::string with_log =
      dir.write("x.yaml",
                "detection: {enabled: true, memory: {base_entries: 1024, candidate_entries: 64, "
                "watch_entries: 4, seen_filter_entries: 4096, doorkeeper_bits: 65536}, "
                "events_file: e.jsonl}\n");
  CHECK(parse({"--config", with_log.c_str()}).config.daemon.events_out == "e.jsonl");
}

TEST_CASE("bad detection values are refused with their line, column and key path",
          "[config][detection]") {
  TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  CHECK(config_error(dir, "detection:\n  time: {origin: yesterday}\n") ==
        file +
            ":2:18: detection.time.origin: expected first_packet or an RFC 3339 instant such "
            "as 2016-04-04T00:00:00Z, got \"yesterday\"");
  CHECK_THAT(config_error(dir, "detection:\n  time: {origin: 2016-02-30T00:00:00Z}\n"),
             StartsWith(file + ":2:18: detection.time.origin: expected first_packet"));
  CHECK(config_error(dir, "detection:\n  time: {compression: 0.5}\n") ==
        file +
            ":2:23: detection.time.compression: out of range: expected a number from 1 to "
            "1000000, got 0.5");
  CHECK(config_error(dir, "detection:\n  time: {compression: fast}\n") ==
        file +
            ":2:23: detection.time.compression: expected a number from 1 to 1000000, got "
            "\"fast\"");
  CHECK_THAT(config_error(dir,
                          "detection:\n  clients:\n    internal_networks: [10.0.0.0/8, "
                          "10.1.2.3/8]\n"),
             StartsWith(file + ":3:37: detection.clients.internal_networks[1]: expected a CIDR"));
  CHECK_THAT(config_error(dir, "detection:\n  vantage: resolver\n"),
             StartsWith(file + ":2:12: detection.vantage: expected one of client_side, "
                               "authoritative_side"));
  CHECK_THAT(config_error(dir, "detection:\n  detectors:\n    beacon: {weights: {ts: 2}}\n"),
             StartsWith(file + ":3:28: detection.detectors.beacon.weights.ts: out of range"));
  CHECK_THAT(config_error(dir, "detection:\n  detectors:\n    nosuch: {}\n"),
             StartsWith(file + ":3:5: detection.detectors.nosuch: unknown key"));
  CHECK_THAT(config_error(dir, "detection:\n  normalize: {search_suffixes: [\"a b\"]}\n"),
             StartsWith(file + ":2:33: detection.normalize.search_suffixes[0]: expected a domain"));
  CHECK_THAT(config_error(dir, "detection:\n  memory: {base_entries: 4}\n"),
             StartsWith(file + ":2:26: detection.memory.base_entries: out of range"));
}

TEST_CASE("detection tables that do not fit the machine are refused at start",
          "[config][detection]") {
  Config c;
  c.detection.memory.base_entries = std::uint64_t{1} << 32U;  // 352 GiB of base table
  CHECK_NOTHROW(validate(c));                                 // detection off: nothing to fit
  c.detection.enabled = true;
  CHECK_THROWS_WITH(validate(c), Contains("detection.memory: the detection tables need") &&
                                     Contains("lower the detection.memory entries"));
  c.detection.memory = detect::MemoryOptions{.base_entries = 262144,
                                             .candidate_entries = 8192,
                                             .watch_entries = 64,
                                             .seen_filter_entries = 1048576,
                                             .doorkeeper_bits = 8388608};
  CHECK_NOTHROW(validate(c));
  const auto plan = detect::memory_plan(c.detection.memory);
  CHECK(plan.total() < std::uint64_t{64} << 20U);  // the test profile of detection spec 3.4
}

TEST_CASE(
    "the event log (--events-out) needs detection on (the demo turns it on) and shares standard "
    "output with nothing",
    "[config][detection]") {
  TempDir dir;
  const std::string on = dir.write("on.yaml", "detection: {enabled: true}\n");
  const std::string small =
      dir.write("small.yaml",
                "detection: {enabled: true, memory: {base_entries: 1024, candidate_entries: "
                "64, watch_entries: 4, seen_filter_entries: 4096, doorkeeper_bits: 65536}}\n");
  CHECK_THROWS_WITH(parse({"-r", "x.pcap", "--events-out", "-"}), Contains("detection is off"));
  CHECK(parse({"--events-out", "-"}).config.daemon.events_out == "-");
  CHECK(parse({"--config", small.c_str(), "--events-out", "ev.jsonl"}).config.daemon.events_out ==
        "ev.jsonl");
  const CommandLine both =
      parse({"--config", on.c_str(), "--events-out", "-", "--messages-out", "-"});
  CHECK(both.action == CommandLine::Action::Exit);
  CHECK(both.exit_code == 2);
  CHECK_THAT(both.message, Contains("only one of --metrics-out, --messages-out and --events-out"));
}

TEST_CASE("RFC 3339 instants and CIDR prefixes of the detection options", "[config][detection]") {
  CHECK(detect::parse_rfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(detect::parse_rfc3339("2016-04-04T00:00:00Z") == std::int64_t{1459728000} * 1'000'000'000);
  CHECK(detect::parse_rfc3339("2016-04-04t02:00:00.25+02:00") ==
        std::int64_t{1459728000} * 1'000'000'000 + 250'000'000);
  CHECK(detect::parse_rfc3339("2016-02-29T00:00:00Z").has_value());
  CHECK_FALSE(detect::parse_rfc3339("2015-02-29T00:00:00Z").has_value());
  CHECK_FALSE(detect::parse_rfc3339("2016-04-04 00:00:00Z").has_value());
  CHECK_FALSE(detect::parse_rfc3339("2016-04-04T00:00:00").has_value());
  CHECK_FALSE(detect::parse_rfc3339("2016-04-04T00:00:00Zx").has_value());
  const auto v4 = detect::parse_cidr("198.18.0.0/15");
  REQUIRE(v4.has_value());
  CHECK(v4->v4);
  CHECK(v4->bits == 96 + 15);
  const auto v6 = detect::parse_cidr("2001:db8::/32");
  REQUIRE(v6.has_value());
  CHECK_FALSE(v6->v4);
  CHECK(v6->bits == 32);
  CHECK(v6->addr[0] == 0x20);
  CHECK(v6->addr[3] == 0xb8);
  CHECK(detect::parse_cidr("::1").has_value());
  CHECK(detect::parse_cidr("10.1.2.3")->bits == 128);
  CHECK_FALSE(detect::parse_cidr("10.1.2.3/8").has_value());
  CHECK_FALSE(detect::parse_cidr("10.0.0.0/33").has_value());
  CHECK_FALSE(detect::parse_cidr("256.0.0.0/8").has_value());
  CHECK_FALSE(detect::parse_cidr("2001:db8:::/32").has_value());
  CHECK_FALSE(detect::parse_cidr("host.example").has_value());
}

TEST_CASE("capture.local_networks takes CIDR prefixes of both families and refuses the rest",
          "[config]") {
  const TempDir dir;
  const std::string file = (dir.path() / "dnsmon.yaml").string();
  const Config c = load_config_file(dir.write(
      "dnsmon.yaml",
      "capture:\n  local_networks: [10.0.0.53/32, 192.0.2.0/24, \"2001:db8::53\", \"::1\"]\n"));
  CHECK(c.metrics.local_networks ==
        std::vector<std::string>{"10.0.0.53/32", "192.0.2.0/24", "2001:db8::53", "::1"});
  CHECK(load_config_file(dir.write("empty.yaml", "capture: {}\n")).metrics.local_networks.empty());
  CHECK_THAT(config_error(dir, "capture:\n  local_networks: [10.0.0.53/32, 10.0.0.1/24]\n"),
             StartsWith(file + ":2:34: capture.local_networks[1]: expected a CIDR prefix"));
  CHECK_THAT(config_error(dir, "capture:\n  local_networks: [\"2001:db8::/129\"]\n"),
             StartsWith(file + ":2:20: capture.local_networks[0]: expected a CIDR prefix"));
  CHECK_THAT(config_error(dir, "capture:\n  local_networks: [resolver.example]\n"),
             StartsWith(file + ":2:20: capture.local_networks[0]: expected a CIDR prefix"));
}

}  // namespace dnsmon

namespace dnsmon {
namespace {

// Values a key accepts, for the reload test below: the bounds of a range, both booleans, every
// choice, or a value chosen for the key by name. Empty for a key this test has no value for (the
// test then fails and names it).
std::vector<std::string> other_values(const ConfigKey& k, const TempDir& dir) {
  static const std::regex range(R"(Range: (\S+) to (\S+))");
  std::smatch m;
  if (std::regex_search(k.range, m, range)) {
    return {m[1].str(), m[2].str()};
  }
  if (k.range.starts_with("Values: true or false")) {
    return {"true", "false"};
  }
  if (k.range.starts_with("One of: ")) {
    std::vector<std::string> out;
    std::string rest = k.range.substr(8);
    for (std::size_t at = 0; at < rest.size();) {
      const std::size_t comma = rest.find(", ", at);
      out.push_back(rest.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      at = comma == std::string::npos ? rest.size() : comma + 2;
    }
    return out;
  }
  static const std::map<std::string, std::string, std::less<>> by_key = {
      {"detection.clients.internal_networks", "[10.0.0.0/8]"},
      {"detection.normalize.search_suffixes", "[corp.example]"},
      {"detection.export.watchlist", "[watched.example]"},
      {"detection.export.allowlist_domains", "[allowed.example]"},
      {"detection.export.allowlist_orgs", "[Org A, 192.0.2.0/24]"},
      {"detection.time.origin", "\"2016-04-04T00:00:00Z\""},
  };
  if (const auto it = by_key.find(k.path); it != by_key.end()) {
    return {it->second};
  }
  if (k.path == "detection.clients.org_map_file") {
    return {dir.write("orgs.txt", "192.0.2.0/24 Org A\n")};
  }
  if (k.path == "detection.state_file" || k.path == "detection.events_file" ||
      k.path == "detection.export.metrics_snapshot_dir") {
    return {(dir.path() / "x").string()};
  }
  return {};
}

// "detection:\n  a:\n    b: VALUE\n" for the path detection.a.b.
std::string nested_yaml(const std::string& path, const std::string& value) {
  std::string out;
  std::size_t at = 0;
  std::string indent;
  for (std::size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', at)) {
    out += indent + path.substr(at, dot - at) + ":\n";
    indent += "  ";
    at = dot + 1;
  }
  return out + indent + path.substr(at) + ": " + value + "\n";
}

}  // namespace

TEST_CASE("a reload applies exactly the detection keys marked live, and keeps the others",
          "[config]") {
  TempDir dir;
  Config base;
  base.detection.enabled = true;
  base.detection.memory.base_entries = 256;
  base.detection.memory.candidate_entries = 16;
  base.detection.memory.watch_entries = 4;
  base.detection.memory.seen_filter_entries = 64;
  base.detection.memory.doorkeeper_bits = 4096;
  const auto suffixes = detail::PublicSuffixList::from_text("com\nexample\n", "test list");
  std::size_t tried = 0;
  for (const ConfigKey& k : config_keys()) {
    if (k.section || !k.path.starts_with("detection.")) {
      continue;
    }
    CAPTURE(k.path, k.range, k.default_value);
    // The first value that loads and changes this key alone.
    std::optional<Config> next;
    std::vector<KeyChange> asked;
    std::string last_error;
    for (const std::string& value : other_values(k, dir)) {
      try {
        next = load_config_text(nested_yaml(k.path, value), "reload.yaml", base);
      } catch (const ConfigError& e) {
        last_error = e.what();  // e.g. a memory bound the machine cannot hold: try the next
        continue;
      }
      asked = changed_keys(base, *next);
      if (asked.size() == 1 && asked[0].path == k.path) {
        break;
      }
      next.reset();
    }
    if (k.path == "detection.normalize.psl") {
      CHECK_FALSE(next.has_value());  // one value only
      continue;
    }
    INFO(last_error);
    REQUIRE(next.has_value());

    detect::Engine engine(base.detection, 1, 1, suffixes, nullptr, false, 1);
    (void)engine.reconfigure(next->detection);
    Config applied = base;
    applied.detection = engine.options();
    const std::vector<KeyChange> took = changed_keys(base, applied);
    if (k.reload == Reload::Live) {
      REQUIRE(took.size() == 1);
      CHECK(took[0].path == k.path);
      CHECK(took[0].after == asked[0].after);
    } else {
      CHECK(took.empty());
    }
    ++tried;
  }
  CHECK(tried >= 70);  // every detection key but psl, which has one value
}

}  // namespace dnsmon
