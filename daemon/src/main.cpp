// dnsmon: wires capture, workers, metrics and the control loop.
//
// Threads: one capture thread per source, the workers (each reads one ring per source), the
// exporter's HTTP thread, and this main thread running the Boost.Asio control loop (signals, the
// periodic stats line, sd_notify). Exit codes: 0 ok, 1 failure, 2 usage, 78 configuration error.
// Started as root, dnsmon opens its capture handles, socket and files, then switches to
// daemon.user (privileges.hpp) before the capture, worker and detection threads start.
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <ifaddrs.h>
#include <memory>
#include <netinet/in.h>
#include <new>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "dnsmon/capture.hpp"
#include "dnsmon/common/errno_text.hpp"
#include "dnsmon/config.hpp"
#include "dnsmon/detect/engine.hpp"
#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/version.hpp"

#include "demo_capture.hpp"
#include "pipeline.hpp"
#include "privileges.hpp"

namespace dnsmon {
namespace {

// The server addresses that decide the leg label: capture.local_networks, and live the host's own
// addresses on every interface (getifaddrs(3) at start and at each reload). A replay has only the
// configured ones.
ServerAddresses server_addresses(const Config& config, bool live) {
  ServerAddresses s;
  for (const auto& net : config.metrics.local_networks) {
    (void)s.add(net);  // checked when the configuration was read
  }
  if (live) {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
      spdlog::warn("legs: cannot list the host's addresses: {}; only capture.local_networks count",
                   detail::errno_text(errno));
    } else {
      for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr) {
          continue;
        }
        IpAddr a;
        if (i->ifa_addr->sa_family == AF_INET) {
          const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);  // NOLINT
          std::memcpy(a.bytes.data(), &in->sin_addr, 4);
          a.family = 4;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
          const auto* in6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);  // NOLINT
          std::memcpy(a.bytes.data(), &in6->sin6_addr, 16);
          a.family = 6;
        } else {
          continue;
        }
        s.add_address(a);
      }
      freeifaddrs(list);
    }
  }
  return s;
}

void log_server_addresses(const ServerAddresses& s, bool live) {
  if (s.empty()) {
    spdlog::info(
        "legs: no server addresses known (capture.local_networks is empty{}); the leg "
        "label is \"unknown\"",
        live ? " and the host has none" : " in a replay");
  } else {
    std::string text;
    for (const auto& p : s.describe()) {
      text += (text.empty() ? "" : ", ") + p;
    }
    spdlog::info("legs: server addresses {}", text);
  }
}

constexpr int kExitFailure = 1;
constexpr int kExitConfig = 78;  // EX_CONFIG

struct FileCloser {
  void operator()(std::FILE* f) const noexcept {
    if (f != nullptr && f != stdout) {
      std::fclose(f);
    }
  }
};

using OutputFile = std::unique_ptr<std::FILE, FileCloser>;

// Set by main() when it found the standard output closed (and put /dev/null there, so that no file
// opened later takes its number).
bool g_stdout_closed = false;

OutputFile open_output(const std::string& path, const char* what, bool append = false) {
  if (path.empty()) {
    return nullptr;
  }
  if (path == "-") {
    if (g_stdout_closed) {
      throw std::runtime_error(std::string("cannot write ") + what +
                               " to standard output: it is closed");
    }
    return OutputFile(stdout);
  }
  std::FILE* f = std::fopen(path.c_str(), append ? "a" : "w");
  if (f == nullptr) {
    throw std::runtime_error(std::string("cannot write ") + what + " to " + path + ": " +
                             detail::errno_text(errno));
  }
  return OutputFile(f);
}

void notify(const char* state) {
  sd_notify(0, state);
}

// What the file and the flags given with it must say together for a run, checked before anything
// is loaded or logged, by --check-config as by a start (a unit passes -i with its config file).
void check_run(const Config& config) {
  const bool demo = config.capture.interfaces.empty() && config.capture.files.empty() &&
                    config.capture.dnstap_sockets.empty();
  if (demo && !config.daemon.config_path.empty()) {
    // A service started with a config file must never export the demo's made-up numbers.
    throw ConfigError(config.daemon.config_path +
                      ": capture.interfaces and capture.dnstap_sockets are empty and no -i, -r or "
                      "--dnstap-socket was given: nothing to capture (the built-in demo runs only "
                      "without --config)");
  }
}

// The public suffix list the analytics need, loaded once here for --check-config and the run
// alike; an unreadable list is a configuration error pointing at the key that names it.
SuffixList load_suffixes(const Config& config) {
  if (!config.metrics.analytics.enabled && !config.detection.enabled) {
    return nullptr;
  }
  try {
    return load_public_suffix_list(config.metrics.analytics.public_suffix_list);
  } catch (const std::runtime_error& e) {
    throw ConfigError(located_error(config, "analytics.public_suffix_list", e.what()));
  }
}

// detection.export.metrics_snapshot_dir: creates the directory if missing and checks that
// dnsmon can write in it. Throws ConfigError.
void check_snapshot_dir(const Config& config) {
  const std::string& dir = config.detection.exports.metrics_snapshot_dir;
  if (dir.empty() || !config.detection.enabled) {
    return;
  }
  const auto fail = [&config](const std::string& what) {
    throw ConfigError(located_error(config, "detection.export.metrics_snapshot_dir", what));
  };
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec)) {
    fail(dir + " is not a directory");
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    fail("cannot create the directory " + dir + ": " + ec.message());
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    fail("cannot write in the directory " + dir + ": " + detail::errno_text(errno));
  }
}

// The metric snapshots of detection.export.metrics_snapshot_dir: one OpenMetrics file per call,
// "snapshot-20160504T130000Z.om" for the logical time it is stamped with, so that the names sort
// by time. Written to a hidden temporary file and renamed, so a reader never sees half a file.
// At most kMaxFiles a run; a failed write or the cap stops the snapshots, logged once.
// Thread-safety: one call at a time (the engine's snapshot thread, then finish()'s).
class SnapshotWriter {
 public:
  static constexpr std::uint64_t kMaxFiles = 10'000;

  SnapshotWriter(const MetricsHub& hub, std::string dir) : hub_(hub), dir_(std::move(dir)) {}

  bool write(std::int64_t logical_ns) {
    if (written_ >= kMaxFiles) {
      spdlog::warn(
          "metric snapshots: {} files written to {}, the most a run writes; no more snapshots",
          written_, dir_);
      return false;
    }
    std::string stamp = detect::format_rfc3339(logical_ns);  // 2016-05-04T13:00:00Z
    std::erase_if(stamp, [](char c) { return c == '-' || c == ':'; });
    const std::string name = dir_ + "/snapshot-" + stamp + ".om";
    const std::string tmp = dir_ + "/.snapshot.tmp";
    std::string text;
    try {
      text = hub_.render_openmetrics(static_cast<double>(logical_ns) / 1e9);
    } catch (const std::exception& e) {  // std::bad_alloc: on the engine's thread, not fatal
      spdlog::error("metric snapshots: cannot render {}: {}; no more snapshots", name, e.what());
      failed_ = true;
      return false;
    }
    std::FILE* f = std::fopen(tmp.c_str(), "we");
    int error = f == nullptr ? errno : 0;
    if (f != nullptr) {
      if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
        error = errno != 0 ? errno : EIO;
      }
      if (std::fclose(f) != 0 && error == 0) {
        error = errno;
      }
    }
    if (error == 0 && std::rename(tmp.c_str(), name.c_str()) != 0) {
      error = errno;
    }
    if (error != 0) {
      spdlog::error("metric snapshots: cannot write {}: {}; no more snapshots", name,
                    detail::errno_text(error));
      std::remove(tmp.c_str());
      failed_ = true;
      return false;
    }
    ++written_;
    return true;
  }

  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }

  [[nodiscard]] bool failed() const noexcept { return failed_; }

 private:
  const MetricsHub& hub_;
  std::string dir_;
  std::uint64_t written_ = 0;
  bool failed_ = false;
};

// The embedded demo's detection: Scenario A's sidecar configuration, with the snapshot directory
// the command line gave.
void use_demo_detection(Config& config) {
  std::string snapshot_dir = std::move(config.detection.exports.metrics_snapshot_dir);
  config.detection =
      load_config_text(demo_config_yaml(), "the demo's configuration", config).detection;
  config.detection.exports.metrics_snapshot_dir = std::move(snapshot_dir);
}

class Daemon {
 public:
  // args: the command line, read again with the file at each reload.
  Daemon(Config config, SuffixList suffixes, PrivilegePlan privileges,
         std::vector<std::string> args)
      : config_(std::move(config)),
        suffixes_(std::move(suffixes)),
        privileges_(std::move(privileges)),
        args_(std::move(args)) {}

  int run() {
    const bool live =
        !config_.capture.interfaces.empty() || !config_.capture.dnstap_sockets.empty();
    const bool demo = !live && config_.capture.files.empty();
    if (demo) {
      // The demo replays Scenario A with the detection its sidecar configures, paced so the
      // story unfolds while one watches (unless --replay-speed says otherwise).
      use_demo_detection(config_);
      check_snapshot_dir(config_);
      if (!config_.daemon.replay_speed_given) {
        config_.capture.replay_speed = kDemoReplaySpeed;
      }
      if (!suffixes_) {
        suffixes_ = load_suffixes(config_);
      }
    }
    const SuffixList suffixes = suffixes_;  // detection uses the analytics' list
    config_.metrics.matching_query_tags = config_.detection.enabled;  // the demo's too
    config_.metrics.server_addresses = server_addresses(config_, live);
    log_server_addresses(config_.metrics.server_addresses, live);
    hub_ = std::make_unique<MetricsHub>(BuildInfo{kVersion, ldns_library_version(), pcap_version()},
                                        config_.metrics, std::move(suffixes_));
    MetricsHub& hub = *hub_;
    if (config_.metrics.analytics.enabled) {
      spdlog::info("analytics: windows of {}; public suffix list: {}", window_list(),
                   hub.public_suffix_list());
    }
    const bool serve =
        demo || live || config_.daemon.listen_given || config_.daemon.serve_after_replay;

    // Stdout may carry machine-readable output; then the logs stay on stderr only (they always
    // are), and the messages writer gets stdout to itself.
    auto messages = open_output(config_.daemon.messages_out, "messages");
    // Fail now, not at the end of input: a file that cannot be created, a closed stdout. It stays
    // open for the end, when dnsmon may no longer be the user who could create it.
    metrics_out_ = open_output(config_.daemon.metrics_out, "metrics");

    // Appended to: a restart keeps the findings before it.
    events_ = open_output(config_.daemon.events_out, "events", /*append=*/true);
    pipeline_ = std::make_unique<Pipeline>(config_, hub,
                                           demo ? demo_capture() : std::span<const std::byte>{},
                                           messages ? fileno(messages.get()) : -1);
    if (config_.detection.enabled) {
      create_detection(hub, suffixes, events_.get());
    }
    if (pipeline_->is_live() && !config_.capture.bpf_filter.empty()) {
      warn_if_filter_loses_fragments(config_.capture.bpf_filter);
    }

    if (serve) {
      exporter_ = std::make_unique<Exporter>(hub, config_.daemon.listen);
      std::string address;
      std::uint16_t port = 0;
      split_listen(config_.daemon.listen, address, port);
      serving_url_ = fmt::format("http://{}:{}/metrics", address, exporter_->port());
      spdlog::info("serving metrics on {}", serving_url_);
    }

    // Everything that needs root is open (capture handles, the listening socket, the state and
    // event files): give root up before the detection's and the pipeline's threads start.
    prepare_state_directory(privileges_, config_);
    apply_privileges(privileges_, config_);
    if (detection_) {
      start_detection();
    }

    if (demo) {
      spdlog::info(
          "no interface or file given: replaying the embedded demo, Scenario A of "
          "docs/scenarios.md ({} bytes: 196 logical days of a network's DNS, "
          "{:g} s of replay per logical day), with detection on: the covert pair is flagged in "
          "this log within a few "
          "minutes (all detector events: --events-out -). To monitor live traffic run `dnsmon "
          "-i IFACE` (needs root or CAP_NET_RAW); to replay a capture run `dnsmon -r FILE`.",
          demo_capture().size(),
          config_.capture.replay_speed > 0 ? 86400.0 / 1440 / config_.capture.replay_speed : 0);
    } else if (pipeline_->is_live()) {
      std::string names;
      for (const auto& i : config_.capture.interfaces) {
        names += names.empty() ? i : ", " + i;
      }
      for (const auto& p : config_.capture.dnstap_sockets) {
        names += (names.empty() ? "dnstap socket " : ", dnstap socket ") + p;
      }
      spdlog::info("capturing on {} with {} worker(s)", names, config_.daemon.workers);
    } else {
      spdlog::info("replaying {} file(s) with {} worker(s)", config_.capture.files.size(),
                   config_.daemon.workers);
    }

    boost::asio::signal_set signals(io_, SIGINT, SIGTERM, SIGHUP);
    wait_for_signal(signals);
    boost::asio::steady_timer stats_timer(io_);
    schedule_stats(stats_timer);
    boost::asio::steady_timer watchdog(io_);
    schedule_watchdog(watchdog);
    boost::asio::steady_timer drop_watch(io_);
    schedule_drop_watch(drop_watch);
    boost::asio::steady_timer progress_timer(io_);
    if (!pipeline_->is_live() && !demo && ::isatty(STDERR_FILENO) == 1) {
      schedule_progress(progress_timer);
    }

    started_ = std::chrono::steady_clock::now();
    remaining_sources_ = pipeline_->source_count();
    last_drops_.assign(pipeline_->source_count(), {});
    pipeline_->start([this, demo](std::size_t i, const std::string& error) {
      boost::asio::post(io_, [this, demo, i, error] { on_source_end(i, error, demo); });
    });
    notify("READY=1\nSTATUS=capturing");

    io_.run();

    notify("STOPPING=1");
    pipeline_->drain_and_join();  // flushes the message log
    if (detection_) {
      detection_->finish();  // the shards take every event the workers made
      if (detection_->final_checkpoint_failed()) {
        exit_code_ = kExitFailure;  // logged by the engine's checkpoint log
      }
      if (snapshots_) {
        spdlog::info("detection: {} metric snapshot(s) written to {}", snapshots_->written(),
                     config_.detection.exports.metrics_snapshot_dir);
        if (snapshots_->failed()) {
          exit_code_ = kExitFailure;
        }
      }
      if (detection_->log_failed()) {
        spdlog::error("cannot write the event log {}: the lines after the failure are lost",
                      config_.daemon.events_out);
        exit_code_ = kExitFailure;
      }
    }
    log_stats("final");
    finish_messages(std::move(messages));
    if (!config_.daemon.metrics_out.empty() && !metrics_out_written_) {
      write_metrics_out(hub);
    }
    // The exporter's thread reads the pipeline's counters: stop it first (at once, closing the
    // connections still open).
    if (exporter_) {
      spdlog::info("stopping the metrics server");
      exporter_.reset();
    }
    pipeline_.reset();
    detection_.reset();
    spdlog::info("exit {}", exit_code_);
    return exit_code_;
  }

 private:
  // The detection engine: one shard per two workers, at least one, each on its own thread (started
  // by start_detection()). The constructor loads the state file.
  void create_detection(MetricsHub& hub, const SuffixList& suffixes, std::FILE* events) {
    const std::size_t shards = std::max<std::size_t>(1, config_.daemon.workers / 2);
    // The event log and the state file take the analytics' pseudonymise setting and key.
    config_.detection.clients.pseudonymise = config_.metrics.analytics.pseudonymise_clients;
    config_.detection.clients.pseudonym_key = hub.pseudonym_key();
    try {
      detection_ = std::make_unique<detect::Engine>(config_.detection, config_.daemon.workers,
                                                    shards, suffixes, events, pipeline_->is_live());
    } catch (const std::runtime_error& e) {
      throw ConfigError(located_error(config_, "detection.clients.org_map_file", e.what()));
    }
    const detect::RestoreStatus& restored = detection_->restore_status();
    switch (restored.outcome) {
      case detect::RestoreStatus::Outcome::Off:
        break;
      case detect::RestoreStatus::Outcome::Missing:
      case detect::RestoreStatus::Outcome::Loaded:
        spdlog::info("{}", restored.message);
        break;
      case detect::RestoreStatus::Outcome::Refused:
      case detect::RestoreStatus::Outcome::Corrupt:
        spdlog::warn("{}", restored.message);
        break;
    }
    detection_->set_checkpoint_log(
        [](bool failed, const std::string& line) {
          if (failed) {
            spdlog::error("{}", line);
          } else {
            spdlog::info("{}", line);
          }
        },
        fmt::format("dnsmon {}", kVersion));
    pipeline_->attach_detection(*detection_);
    detection_->on_finding([](const detect::Finding& f) {
      if (f.severity < detect::Severity::Medium) {
        return;
      }
      std::string reasons;
      for (std::size_t bit = 0; bit < detect::kReasons; ++bit) {
        if ((f.reasons & (1U << bit)) != 0) {
          reasons += (reasons.empty() ? "" : ", ") + std::string(detect::reason_label(bit));
        }
      }
      spdlog::warn("detection: {} {} {} score {:.2f} ({}) at {}{}{}", detect::to_string(f.detector),
                   f.event, f.domain, f.score, detect::to_string(f.severity),
                   detect::format_rfc3339(f.logical_ns), reasons.empty() ? "" : ": ", reasons);
    });
    if (events != nullptr && config_.daemon.events_out != "-") {
      detection_->set_log_reopen(
          [this](std::FILE* current, bool rotate) { return reopen_events(current, rotate); },
          std::uint64_t{config_.daemon.events_max_mib} << 20U);
    }
    hub.set_detection_reader([engine = detection_.get()] { return engine->snapshot(); });
    const std::string& snapshot_dir = config_.detection.exports.metrics_snapshot_dir;
    if (!snapshot_dir.empty()) {
      snapshots_ = std::make_unique<SnapshotWriter>(hub, snapshot_dir);
      detection_->on_logical_hour(
          [w = snapshots_.get()](std::int64_t logical_ns) { return w->write(logical_ns); });
      spdlog::info("detection: metric snapshots every logical hour to {}", snapshot_dir);
    }
  }

  void start_detection() {
    const std::size_t shards = std::max<std::size_t>(1, config_.daemon.workers / 2);
    detection_->start();
    // The origin of a loaded state file replaces first_packet.
    const std::int64_t origin = detection_->clock().origin();
    spdlog::info("detection: {} shard(s), logical time x{} from {}{}", shards,
                 config_.detection.time.compression,
                 origin == detect::LogicalClock::kUnset ? config_.detection.time.origin
                                                        : detect::format_rfc3339(origin),
                 config_.daemon.events_out.empty() ? std::string()
                                                   : ", event log " + config_.daemon.events_out);
  }

  [[nodiscard]] std::string window_list() const {
    std::string out;
    for (const auto w : config_.metrics.analytics.windows_s) {
      out += (out.empty() ? "" : ", ") + std::to_string(w) + " s";
    }
    return out;
  }

  [[nodiscard]] std::string messages_name() const {
    return config_.daemon.messages_out == "-" ? std::string("standard output")
                                              : config_.daemon.messages_out;
  }

  // Logs the message log's first failed write, once; called every second and at the end. A reader
  // that went away (EPIPE: `dnsmon --messages-out - | head`) ends the log, not the run; any other
  // error makes the exit status 1.
  void report_messages_error() {
    const MessageWriter* writer = pipeline_->messages();
    if (writer == nullptr || messages_error_reported_ || writer->error() == 0) {
      return;
    }
    messages_error_reported_ = true;
    const int e = writer->error();
    if (e == EPIPE) {
      spdlog::warn("messages: the reader of {} went away (broken pipe); the message log ends here",
                   messages_name());
      return;
    }
    spdlog::error(
        "messages: cannot write to {}: {}; the message log ends here, later lines are counted in "
        "dnsmon_output_lost_lines_total{{output=\"messages\"}}, and the exit status will be 1",
        messages_name(),
        e == ETIMEDOUT ? "its reader stopped reading and dnsmon is stopping"
                       : detail::errno_text(e));
    exit_code_ = kExitFailure;
  }

  // After the workers have stopped: reports a failed write, and closes a message file (where a
  // delayed write error, on NFS for one, shows up).
  void finish_messages(OutputFile messages) {
    const MessageWriter* writer = pipeline_->messages();
    if (writer == nullptr) {
      return;
    }
    report_messages_error();
    if (writer->lost_lines() != 0 && writer->error() != EPIPE) {
      spdlog::info("messages: {} line(s) not written to {}", writer->lost_lines(), messages_name());
    }
    if (messages.get() != stdout && std::fclose(messages.release()) != 0 && writer->error() == 0) {
      spdlog::error("messages: cannot write to {}: {}", messages_name(), detail::errno_text(errno));
      exit_code_ = kExitFailure;
    }
  }

  // Writes the final metrics to the file opened at the start (once).
  void write_metrics_out(const MetricsHub& hub) {
    OutputFile out = std::move(metrics_out_);
    if (!out) {
      return;
    }
    const std::string text = hub.render_text();
    const std::string& path = config_.daemon.metrics_out;
    bool ok = std::fwrite(text.data(), 1, text.size(), out.get()) == text.size() &&
              std::fflush(out.get()) == 0;
    int e = errno;
    if (out.get() != stdout) {
      ok = std::fclose(out.release()) == 0 && ok;
      e = ok ? 0 : errno;
    }
    if (!ok) {
      spdlog::error("cannot write metrics to {}: {}", path == "-" ? "standard output" : path,
                    detail::errno_text(e));
      exit_code_ = kExitFailure;
    }
  }

  // A filter written for ports alone loses every fragment after the first (they carry no
  // ports) and every IPv6 fragment: large answers would then read as unanswered queries.
  static void warn_if_filter_loses_fragments(const std::string& filter) {
    const auto rejected = fragment_probes_rejected(filter);
    if (rejected.empty()) {
      return;
    }
    std::string list;
    for (const auto& r : rejected) {
      list += (list.empty() ? "" : ", ") + r;
    }
    spdlog::warn(
        "the capture filter rejects fragments of DNS messages ({}): large answers (DNSSEC, big "
        "TXT) will be lost and their queries counted as timeouts. Admit fragments as the default "
        "filter does: `{}`",
        list, kDefaultLiveFilter);
  }

  void wait_for_signal(boost::asio::signal_set& signals) {
    signals.async_wait([this, &signals](const boost::system::error_code& ec, int signo) {
      if (ec) {
        return;
      }
      if (signo == SIGHUP) {
        notify("RELOADING=1");
        reload();
        notify("READY=1");
        wait_for_signal(signals);
        return;
      }
      spdlog::info("{}: stopping", signo == SIGINT ? "SIGINT" : "SIGTERM");
      stopping_ = true;
      pipeline_->stop_capture();
      if (remaining_sources_ == 0) {
        io_.stop();
      }
    });
  }

  // SIGHUP: reads the file again with the same flags. A file that does not load keeps the
  // running configuration; keys that a running dnsmon can change take their new values at once
  // (counts and state stay); the others keep their running values until a restart, named in a
  // warning. The detection keys go to the engine first, all at once (with the org map file read
  // again even when its path is the same): an org map that does not load refuses the whole
  // reload. Live, the host's own addresses are read again for the leg label.
  void reload() {
    std::vector<const char*> argv;
    argv.reserve(args_.size());
    for (const auto& a : args_) {
      argv.push_back(a.c_str());
    }
    Config next;
    try {
      CommandLine cli = parse_command_line(static_cast<int>(argv.size()), argv.data());
      if (cli.action != CommandLine::Action::Run) {
        throw ConfigError(cli.message);
      }
      check_run(cli.config);
      next = std::move(cli.config);
    } catch (const ConfigError& e) {
      spdlog::error("reload: {}; the running configuration stays", e.what());
      hub_->record_reload(false);
      return;
    }
    if (config_.capture.interfaces.empty() && config_.capture.files.empty() &&
        config_.capture.dnstap_sockets.empty()) {
      use_demo_detection(next);  // the demo runs Scenario A's detection, not the defaults
    }
    if (detection_) {
      detection_->reopen_log();  // for logrotate, whatever the file says
    }
    const std::vector<KeyChange> changes = changed_keys(config_, next);
    Config staged = config_;
    bool detection_changed = false;
    for (const auto& c : changes) {
      if (c.reload == Reload::Live && c.path.starts_with("detection.")) {
        copy_key(c.path, next, staged);
        detection_changed = true;
      }
    }
    detect::Engine::Reconfigured reconfigured;
    if (detection_ && (detection_changed || !staged.detection.clients.org_map_file.empty())) {
      try {
        reconfigured = detection_->reconfigure(staged.detection);
      } catch (const std::runtime_error& e) {
        spdlog::error("reload: {}; the running configuration stays",
                      located_error(next, "detection.clients.org_map_file", e.what()));
        hub_->record_reload(false);
        return;
      }
    }
    config_.detection = std::move(staged.detection);
    std::string applied;
    std::string restart;
    for (const auto& c : changes) {
      const std::string change = fmt::format("{} {} -> {}", c.path, c.before, c.after);
      if (c.reload == Reload::Live &&
          (c.path.starts_with("detection.") || apply_live(c.path, next))) {
        applied += (applied.empty() ? "" : ", ") + change;
      } else {
        restart += (restart.empty() ? "" : ", ") + change;
      }
    }
    if (pipeline_->is_live()) {
      // The host's addresses, read again: a new one counts for the leg label from now on.
      ServerAddresses addresses = server_addresses(config_, true);
      std::vector<std::string> now = addresses.describe();
      std::vector<std::string> before = config_.metrics.server_addresses.describe();
      std::sort(now.begin(), now.end());
      std::sort(before.begin(), before.end());
      if (now != before) {
        log_server_addresses(addresses, true);
        hub_->set_server_addresses(addresses);
        config_.metrics.server_addresses = std::move(addresses);
        applied += (applied.empty() ? "" : ", ") + std::string("the host's addresses");
      }
    }
    if (reconfigured.org_map_changed) {
      const std::string& org_map = config_.detection.clients.org_map_file;
      applied += fmt::format("{}the organisations of {} ({} prefixes)", applied.empty() ? "" : ", ",
                             org_map.empty() ? std::string("no org map") : org_map,
                             reconfigured.org_map_entries);
    }
    if (!restart.empty()) {
      spdlog::warn("reload: these changes need a restart and keep their running values: {}",
                   restart);
    }
    spdlog::info("reload: {}", applied.empty() ? "no change applied" : "applied " + applied);
    hub_->record_reload(true);
  }

  // The event log's next file, under the engine's log lock: after a rename to FILE.1 when it
  // reached log.events_max_mib (rotate), or the same path again (SIGHUP, after logrotate moved
  // it). Null, with an error logged, keeps the current file.
  std::FILE* reopen_events(std::FILE* current, bool rotate) {
    const std::string& path = config_.daemon.events_out;
    if (!rotate) {
      // Nothing moved it (no logrotate since): the open file is the one to write to.
      struct stat at_path {};

      struct stat open_file {};

      if (::stat(path.c_str(), &at_path) == 0 && ::fstat(::fileno(current), &open_file) == 0 &&
          at_path.st_dev == open_file.st_dev && at_path.st_ino == open_file.st_ino) {
        return nullptr;
      }
    }
    if (rotate) {
      const std::string old = path + ".1";
      if (std::rename(path.c_str(), old.c_str()) != 0) {
        spdlog::error("event log: cannot rename {} to {}: {}; it grows on without a cap", path, old,
                      detail::errno_text(errno));
        return nullptr;
      }
    }
    std::FILE* f = std::fopen(path.c_str(), "a");
    if (f == nullptr) {
      spdlog::error("event log: cannot open {}: {}; writing on to the file already open", path,
                    detail::errno_text(errno));
      return nullptr;
    }
    if (events_.get() == current) {
      events_.reset(f);  // closes current
    }
    spdlog::info("event log: {} {}", rotate ? "rotated to" : "reopened", path);
    return f;
  }

  // Applies one key that a running dnsmon can change; false for a key it does not know how to.
  bool apply_live(const std::string& path, const Config& next) {
    if (path == "log.level") {
      config_.daemon.log_level = next.daemon.log_level;
      spdlog::set_level(spdlog::level::from_str(config_.daemon.log_level));
      return true;
    }
    if (path == "analytics.top_n") {
      config_.metrics.analytics.top_n = hub_->set_top_n(next.metrics.analytics.top_n);
      if (config_.metrics.analytics.top_n < next.metrics.analytics.top_n) {
        spdlog::warn("reload: analytics.top_n is limited to the running analytics.top_capacity, {}",
                     config_.metrics.analytics.top_n);
      }
      return true;
    }
    return false;
  }

  void on_source_end(std::size_t i, const std::string& error, bool demo) {
    const auto& src = pipeline_->source(i);
    if (!error.empty()) {
      spdlog::error("capture source {} failed: {}", src.name(), error);
      exit_code_ = kExitFailure;
    }
    if (--remaining_sources_ > 0) {
      return;
    }
    input_ended_ = std::chrono::steady_clock::now();
    if (progress_shown_) {
      std::fputs("\r\033[K", stderr);  // the progress line gives way to the log
      progress_shown_ = false;
    }
    if (demo && error.empty() && !stopping_) {
      spdlog::info(
          "demo replay finished: {} frames in {:.1f} s. Still serving {} ; press Ctrl-C to "
          "stop. Live capture: dnsmon -i IFACE",
          src.stats().received.get(), input_seconds(), serving_url_);
      return;
    }
    if (config_.daemon.serve_after_replay && exit_code_ == 0 && !stopping_) {
      finish_replay();
      return;
    }
    io_.stop();
  }

  // Frames every source has delivered so far.
  [[nodiscard]] std::uint64_t frames_received() const {
    std::uint64_t received = 0;
    for (std::size_t i = 0; i < pipeline_->source_count(); ++i) {
      received += pipeline_->source(i).stats().received.get();
    }
    return received;
  }

  // The time the input took: once every source has ended (a replay that keeps serving), the
  // time since then is not part of it.
  [[nodiscard]] double input_seconds() const {
    return std::chrono::duration<double>(input_ended_.value_or(std::chrono::steady_clock::now()) -
                                         started_)
        .count();
  }

  // --serve-after-replay, at the end of a replay whose every input was read: the workers finish
  // (so what /metrics serves from now on is final), --metrics-out is written now rather than at
  // the stop, and /metrics stays up until SIGTERM or SIGINT.
  void finish_replay() {
    pipeline_->drain_and_join();
    if (!config_.daemon.metrics_out.empty()) {
      write_metrics_out(*hub_);
      metrics_out_written_ = true;
    }
    const std::uint64_t received = frames_received();
    spdlog::info(
        "replay finished: {} frames. Serving the final metrics on {} until SIGTERM or SIGINT",
        received, serving_url_);
    notify("STATUS=replay finished; serving the final metrics");
  }

  void log_stats(const char* when) const {
    const double seconds = input_seconds();
    std::uint64_t received = 0;
    std::uint64_t dropped = 0;
    for (std::size_t i = 0; i < pipeline_->source_count(); ++i) {
      const auto& st = pipeline_->source(i).stats();
      received += st.received.get();
      dropped += st.kernel_dropped.get() + st.if_dropped.get() + st.ring_dropped.get();
    }
    spdlog::info("{}: {} frames captured, {} processed, {} dropped in {:.1f} s{}", when, received,
                 pipeline_->frames_processed(), dropped, seconds,
                 input_ended_ ? std::string() : replay_progress(seconds));
  }

  // ", 42 % of 1.2 GiB read, ETA 12 s" while a replay of regular files runs; "" otherwise.
  [[nodiscard]] std::string replay_progress(double seconds) const {
    if (pipeline_->is_live()) {
      return {};
    }
    std::uint64_t read = 0;
    std::uint64_t size = 0;
    for (std::size_t i = 0; i < pipeline_->source_count(); ++i) {
      const auto& st = pipeline_->source(i).stats();
      read += st.input_read_bytes.get();
      size += st.input_size_bytes;
    }
    if (size == 0) {
      return {};
    }
    const double fraction = std::min(1.0, static_cast<double>(read) / static_cast<double>(size));
    std::string eta = "-";
    if (fraction > 0 && seconds > 0) {
      eta = fmt::format("{:.0f} s", seconds * (1 - fraction) / fraction);
    }
    return fmt::format(", {:.0f} % of {:.1f} MiB read, ETA {}", 100 * fraction,
                       static_cast<double>(size) / (1024.0 * 1024.0), eta);
  }

  // On a terminal, a replay shows one line of progress on stderr, rewritten every second: frames,
  // the share of the input read, the rate and the time left.
  void schedule_progress(boost::asio::steady_timer& timer) {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
      if (ec || input_ended_) {
        return;
      }
      const double seconds = input_seconds();
      const std::uint64_t received = frames_received();
      const double rate = seconds > 0 ? static_cast<double>(received) / seconds : 0;
      const std::string line = fmt::format("\r\033[Kreplay: {} frames, {:.0f} frames/s{}", received,
                                           rate, replay_progress(seconds));
      std::fputs(line.c_str(), stderr);
      progress_shown_ = true;
      schedule_progress(timer);
    });
  }

  void schedule_stats(boost::asio::steady_timer& timer) {
    if (config_.daemon.stats_interval_s == 0) {
      return;
    }
    timer.expires_after(std::chrono::seconds(config_.daemon.stats_interval_s));
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
      if (!ec) {
        log_stats("stats");
        schedule_stats(timer);
      }
    });
  }

  // Says within a second when frames start being lost (or the message log fails), so the log shows
  // when it happened.
  void schedule_drop_watch(boost::asio::steady_timer& timer) {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      report_messages_error();
      for (std::size_t i = 0; i < pipeline_->source_count(); ++i) {
        const auto& src = pipeline_->source(i);
        const auto& st = src.stats();
        const std::array<std::uint64_t, 3> now{st.kernel_dropped.get(), st.if_dropped.get(),
                                               st.ring_dropped.get()};
        auto& before = last_drops_[i];
        if (now != before) {
          spdlog::warn(
              "{}: frames dropped in the last second: {} by the kernel, {} by the "
              "interface, {} with the worker ring full",
              src.name(), now[0] - before[0], now[1] - before[1], now[2] - before[2]);
          before = now;
        }
      }
      schedule_drop_watch(timer);
    });
  }

  void schedule_watchdog(boost::asio::steady_timer& timer) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
      return;
    }
    timer.expires_after(std::chrono::microseconds(usec / 2));
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
      if (!ec) {
        notify("WATCHDOG=1");
        schedule_watchdog(timer);
      }
    });
  }

  Config config_;
  SuffixList suffixes_;  // handed to the hub
  PrivilegePlan privileges_;
  OutputFile metrics_out_;  // --metrics-out, open from the start, written once at the end
  boost::asio::io_context io_;
  // Destroyed in reverse order: the exporter (whose thread reads the pipeline), then the pipeline
  // (whose workers write the hub's counters), then the hub.
  std::unique_ptr<MetricsHub> hub_;
  OutputFile events_;                          // the event log, closed after the engine
  std::unique_ptr<SnapshotWriter> snapshots_;  // used by the engine's snapshot thread
  std::unique_ptr<detect::Engine> detection_;  // outlives the pipeline's workers
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<Exporter> exporter_;
  std::size_t remaining_sources_ = 0;
  bool stopping_ = false;
  bool messages_error_reported_ = false;
  bool metrics_out_written_ = false;  // --serve-after-replay writes it at the end of the replay
  int exit_code_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::vector<std::string> args_;  // the command line, for reloads
  std::optional<std::chrono::steady_clock::time_point> input_ended_;  // when the last source ended
  bool progress_shown_ = false;  // a progress line is on the terminal
  std::string serving_url_;
  std::vector<std::array<std::uint64_t, 3>> last_drops_;  // per source: kernel, interface, ring
};

}  // namespace
}  // namespace dnsmon

int main(int argc, char** argv) {
  using namespace dnsmon;
  // A reader that goes away must show up as EPIPE from write(), not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  // A closed standard descriptor would be taken by the next file or socket opened, and output
  // meant for the terminal would land there: put /dev/null in its place, and remember it.
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      if (fd == STDOUT_FILENO) {
        g_stdout_closed = true;
      }
      const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);  // NOLINT: POSIX varargs
      if (null_fd >= 0 && null_fd != fd) {
        dup2(null_fd, fd);
        close(null_fd);
      }
    }
  }
  auto logger = spdlog::stderr_color_mt("dnsmon");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  CommandLine cli;
  try {
    cli = parse_command_line(argc, argv);
  } catch (const ConfigError& e) {
    spdlog::error("configuration error: {}", e.what());
    return kExitConfig;
  }
  if (cli.action == CommandLine::Action::Exit) {
    std::fprintf(cli.exit_code == 0 ? stdout : stderr, "%s\n", cli.message.c_str());
    return cli.exit_code;
  }
  Config& config = cli.config;
  spdlog::set_level(spdlog::level::from_str(config.daemon.log_level));
  SuffixList suffixes;
  PrivilegePlan privileges;
  try {
    check_run(config);
    check_snapshot_dir(config);
    suffixes = load_suffixes(config);
    privileges = plan_privileges(config);
  } catch (const ConfigError& e) {
    spdlog::error("configuration error: {}", e.what());
    return kExitConfig;
  }
  if (config.detection.enabled && !config.detection.clients.org_map_file.empty()) {
    try {
      (void)detect::load_org_map(config.detection.clients.org_map_file);
    } catch (const std::runtime_error& e) {
      spdlog::error("configuration error: {}",
                    located_error(config, "detection.clients.org_map_file", e.what()));
      return kExitConfig;
    }
  }
  if (config.daemon.check_config) {
    std::printf("configuration OK%s%s\n", config.daemon.config_path.empty() ? "" : ": ",
                config.daemon.config_path.c_str());
    return 0;
  }
  try {
    return Daemon(std::move(config), std::move(suffixes), std::move(privileges),
                  std::vector<std::string>(argv, argv + argc))
        .run();
  } catch (const ConfigError& e) {
    spdlog::error("configuration error: {}", e.what());
    return kExitConfig;
  } catch (const std::bad_alloc&) {
    spdlog::error(
        "out of memory: lower the table sizes in the configuration or allow dnsmon more "
        "memory");
    return kExitFailure;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitFailure;
  }
}
