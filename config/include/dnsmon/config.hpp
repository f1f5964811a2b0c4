// Configuration: a YAML file, overridden by command-line flags, validated into the option structs
// of the other modules.
//
// Every key is checked: an unknown key, a wrong type or an out-of-range value is refused with the
// file, line, column and key path, so the operator can fix it without guessing.
// Thread-safety: functions are pure; call them from the control thread.
// Allocation: at startup and reload only.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dnsmon/capture.hpp"
#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon {

inline constexpr std::uint16_t kDefaultPort = 9917;
inline constexpr const char* kDefaultListen = "127.0.0.1:9917";

struct DaemonOptions {
  std::string listen = kDefaultListen;
  bool listen_given = false;  // offline mode serves /metrics only when asked to
  std::uint32_t workers = 1;
  std::string metrics_out;   // "" none, "-" stdout
  std::string messages_out;  // "" none, "-" stdout
  std::string log_level = "info";
  std::uint32_t stats_interval_s = 60;  // 0 disables the periodic stats log line
  std::string config_path;
  bool check_config = false;
};

struct Config {
  CaptureOptions capture;
  ParserOptions parser;
  MetricsOptions metrics;
  DaemonOptions daemon;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads and validates a YAML config file on top of `base`. Throws ConfigError
// ("FILE:LINE:COL: key.path: what is wrong").
Config load_config_file(const std::string& path, Config base = {});

// The outcome of reading the command line.
struct CommandLine {
  enum class Action { Run, Exit };
  Action action = Action::Run;
  int exit_code = 0;    // with Exit: 0 for --help/--version, 2 for usage errors
  std::string message;  // with Exit: text to print (stdout for 0, stderr otherwise)
  Config config;
};

// Parses argv, loads --config if given, and applies the flags over it. Throws ConfigError for a bad
// config file (exit 78); usage errors come back as Action::Exit with code 2.
CommandLine parse_command_line(int argc, const char* const* argv);

// Checks values that both sources can set (listen address, ranges). Throws ConfigError.
void validate(const Config& config);

// "ADDR:PORT", where ADDR is an IPv4 address or an IPv6 address in brackets ("[::1]:9917"), and
// nothing else (no host names, no lists) → address as written (with the brackets) and port. False
// if malformed; then *why, if given, says what is wrong.
bool split_listen(const std::string& listen, std::string& address, std::uint16_t& port,
                  std::string* why = nullptr);

}  // namespace dnsmon
