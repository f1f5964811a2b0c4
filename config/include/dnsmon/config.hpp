// Configuration: a YAML file, overridden by command-line flags, validated into the option structs
// of the other modules.
//
// One table describes every key of the file (its path, type, range, default, help and whether a
// change needs a restart) and drives the reading of the file, --print-defaults and the test that
// keeps systemd/dnsmon.yaml's documentation true. Every key is checked: an unknown key, a wrong
// type or an out-of-range value is refused with the file, line, column and key path, so the
// operator can fix it without guessing.
// Thread-safety: functions are pure; call them from the control thread.
// Allocation: at startup and reload only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/capture.hpp"
#include "dnsmon/detect.hpp"
#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon {

inline constexpr std::uint16_t kDefaultPort = 9917;
inline constexpr const char* kDefaultListen = "127.0.0.1:9917";

struct DaemonOptions {
  std::string listen = kDefaultListen;
  bool replay_speed_given = false;  // --replay-speed on the command line
  bool listen_given = false;        // offline mode serves /metrics only when asked to
  bool serve_after_replay = false;  // a replay keeps serving /metrics after its end until stopped
  std::uint32_t workers = 1;
  std::string metrics_out;   // "" none, "-" stdout
  std::string messages_out;  // "" none, "-" stdout
  std::string events_out;    // "" none, "-" stdout: the detection event log (JSON Lines)
  std::string log_level = "info";
  std::uint32_t stats_interval_s = 60;  // 0 disables the periodic stats log line
  std::uint32_t events_max_mib = 256;   // the event log file is rotated at this size; 0 never
  std::string config_path;
  bool check_config = false;
  // Started as root: the user dnsmon runs as once its capture handles, socket and files are open;
  // "" is dnsmon when that user exists, else nobody. A name given must exist.
  std::string user;
  bool allow_root = false;  // started as root, keep root (with a warning) instead
};

// Where the config file sets a key (1-based line and column of its value).
struct FilePosition {
  int line = 0;
  int column = 0;
};

struct Config {
  CaptureOptions capture;
  ParserOptions parser;
  MetricsOptions metrics;
  detect::DetectOptions detection;
  DaemonOptions daemon;
  // Every key and list item the file daemon.config_path sets and no flag overrides
  // ("analytics.windows[1]"), so that a check made after loading (e.g. of the file a key names)
  // can point at it.
  std::map<std::string, FilePosition, std::less<>> positions;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Whether a change of a key can be applied to a running dnsmon or needs a restart.
enum class Reload : std::uint8_t { Live, Restart };

// One key of the config file, as the table that reads it describes it.
struct ConfigKey {
  std::string path;           // "analytics.top_n"
  bool section = false;       // a mapping of further keys ("analytics.clients"), with no value
  std::string default_value;  // in YAML syntax, read from a default Config: 10, true, "", [1m, 5m]
  std::string range;          // "Range: 1 to 1000", "Values: true or false", "One of: ...", "A
                              // list of 1 to 16 port numbers, each 1 to 65535"; "" for free text
  std::string help;           // one line
  Reload reload = Reload::Restart;
};

// Every key, sections before their keys, in the order the file documents them.
const std::vector<ConfigKey>& config_keys();

// A config file that sets every key to its default, each with its help and range in a comment.
std::string default_config_yaml();

// "FILE:LINE:COL: key.path: what" when the config file sets the key, "key.path: what" otherwise.
std::string located_error(const Config& config, std::string_view path, std::string_view what);

// Reads and validates a YAML config file on top of `base`. Throws ConfigError
// ("FILE:LINE:COL: key.path: what is wrong").
Config load_config_file(const std::string& path, Config base = {});

// The same for YAML text held in memory; `path` names it in errors. Leaves
// daemon.config_path as it is in `base`.
Config load_config_text(const std::string& text, const std::string& path, Config base = {});

// The outcome of reading the command line.
struct CommandLine {
  enum class Action { Run, Exit };
  Action action = Action::Run;
  int exit_code = 0;    // with Exit: 0 for --help/--version/--print-defaults, 2 for usage errors
  std::string message;  // with Exit: text to print (stdout for 0, stderr otherwise)
  Config config;
};

// Parses argv, loads --config if given, and applies the flags over it. Throws ConfigError for a bad
// config file (exit 78); usage errors come back as Action::Exit with code 2.
CommandLine parse_command_line(int argc, const char* const* argv);

// A key whose value differs between two configurations, as a reload finds it.
struct KeyChange {
  std::string path;           // "analytics.top_n"
  std::string before, after;  // the values in YAML syntax
  Reload reload = Reload::Restart;
};

// Every key whose value differs from before to after, in the order of config_keys().
std::vector<KeyChange> changed_keys(const Config& before, const Config& after);

// Sets the key at `path` (a key of config_keys(), not a section) in `to` to its value in `from`:
// how a reload applies a key marked live. std::logic_error for a path that is not a key.
void copy_key(std::string_view path, const Config& from, Config& to);

// Checks values that both sources can set (listen address, sources, memory budget). Files a key
// names (analytics.public_suffix_list) are read by the module that uses them, which reports their
// errors with located_error(). Throws ConfigError.
void validate(const Config& config);

// "ADDR:PORT", where ADDR is an IPv4 address or an IPv6 address in brackets ("[::1]:9917"), and
// nothing else (no host names, no lists) → address as written (with the brackets) and port. False
// if malformed; then *why, if given, says what is wrong.
bool split_listen(const std::string& listen, std::string& address, std::uint16_t& port,
                  std::string* why = nullptr);

}  // namespace dnsmon
