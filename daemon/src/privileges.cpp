#include "privileges.hpp"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <spdlog/spdlog.h>

#include "dnsmon/common/errno_text.hpp"

namespace dnsmon {
namespace {

constexpr const char* kDefaultUser = "dnsmon";
constexpr const char* kFallbackUser = "nobody";
constexpr const char* kDefaultStateDirectory = "/var/lib/dnsmon";

struct User {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Looks up the user called `name`: false when there is none. Throws on a lookup error (an
// unreadable passwd database is not "no such user").
bool find_user(const std::string& name, User& out) {
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc = 0;
  while ((rc = getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &found)) == ERANGE &&
         buffer.size() < (std::size_t{1} << 20U)) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0 && rc != ENOENT && rc != ESRCH && rc != EBADF && rc != EPERM) {
    throw ConfigError("daemon.user: cannot look up the user \"" + name +
                      "\": " + detail::errno_text(rc));
  }
  if (found == nullptr) {
    return false;
  }
  out = User{name, pw.pw_uid, pw.pw_gid};
  return true;
}

// The directory a file is in: "." for a bare name.
std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The ids and capability sets of one thread, from /proc/self/task/TID/status.
struct ThreadCredentials {
  std::string uids;  // "Uid:" line: real, effective, saved, filesystem
  std::string gids;
  std::string cap_prm, cap_eff, cap_amb;
};

std::string field(const std::string& line, std::size_t key_length) {
  std::string v = line.substr(key_length);
  const auto first = v.find_first_not_of(" \t");
  return first == std::string::npos ? std::string() : v.substr(first);
}

bool read_credentials(const std::string& status_path, ThreadCredentials& out) {
  std::ifstream in(status_path);
  if (!in) {
    return false;  // the thread ended
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Uid:")) {
      out.uids = field(line, 4);
    } else if (line.starts_with("Gid:")) {
      out.gids = field(line, 4);
    } else if (line.starts_with("CapPrm:")) {
      out.cap_prm = field(line, 7);
    } else if (line.starts_with("CapEff:")) {
      out.cap_eff = field(line, 7);
    } else if (line.starts_with("CapAmb:")) {
      out.cap_amb = field(line, 7);
    }
  }
  return true;
}

bool all_ids(const std::string& ids, unsigned id) {
  const std::string want = std::to_string(id);
  std::size_t count = 0;
  std::size_t pos = 0;
  while (pos < ids.size()) {
    const auto end = ids.find_first_of(" \t", pos);
    const std::string one = ids.substr(pos, end == std::string::npos ? end : end - pos);
    if (!one.empty()) {
      if (one != want) {
        return false;
      }
      ++count;
    }
    if (end == std::string::npos) {
      break;
    }
    pos = end + 1;
  }
  return count == 4;
}

bool no_capability(const std::string& set) {
  return !set.empty() && set.find_first_not_of('0') == std::string::npos;
}

// Every thread of the process runs as uid:gid and holds no capability; the number of threads.
std::size_t check_every_thread(uid_t uid, gid_t gid) {
  std::error_code ec;
  std::filesystem::directory_iterator dir("/proc/self/task", ec);
  if (ec) {
    throw std::runtime_error("cannot check the threads' privileges: /proc/self/task: " +
                             ec.message());
  }
  std::size_t threads = 0;
  for (const auto& entry : dir) {
    const std::string tid = entry.path().filename().string();
    ThreadCredentials c;
    if (!read_credentials("/proc/self/task/" + tid + "/status", c)) {
      continue;
    }
    ++threads;
    if (!all_ids(c.uids, uid) || !all_ids(c.gids, gid) || !no_capability(c.cap_prm) ||
        !no_capability(c.cap_eff) || !no_capability(c.cap_amb)) {
      throw std::runtime_error("thread " + tid + " kept privileges after the switch to uid " +
                               std::to_string(uid) + ": Uid " + c.uids + ", Gid " + c.gids +
                               ", CapPrm " + c.cap_prm + ", CapEff " + c.cap_eff + ", CapAmb " +
                               c.cap_amb);
    }
  }
  return threads;
}

[[noreturn]] void step_failed(const std::string& step, const PrivilegePlan& plan) {
  throw std::runtime_error("cannot switch to the user " + plan.user + " (daemon.user): " + step +
                           ": " + detail::errno_text(errno));
}

}  // namespace

PrivilegePlan plan_privileges(const Config& config) {
  PrivilegePlan plan;
  plan.euid = geteuid();
  if (plan.euid != 0) {
    return plan;
  }
  if (config.daemon.allow_root) {
    plan.action = PrivilegePlan::Action::KeepRoot;
    return plan;
  }
  const bool named = !config.daemon.user.empty();
  const std::string wanted = named ? config.daemon.user : kDefaultUser;
  User user;
  if (!find_user(wanted, user)) {
    if (named) {
      throw ConfigError(located_error(
          config, "daemon.user",
          "no user \"" + wanted +
              "\" on this system: started as root, dnsmon switches to this user once its "
              "capture and files are open. Create the user, name another one, or set "
              "daemon.allow_root: true (--allow-root) to keep root"));
    }
    if (!find_user(kFallbackUser, user)) {
      throw ConfigError(std::string("daemon.user: neither a user ") + kDefaultUser + " nor " +
                        kFallbackUser +
                        " exists: started as root, dnsmon needs one to switch to. Create the user "
                        "dnsmon, set daemon.user (--user), or set daemon.allow_root: true "
                        "(--allow-root) to keep root");
    }
  }
  if (user.uid == 0) {
    throw ConfigError(located_error(config, "daemon.user",
                                    "the user \"" + user.name +
                                        "\" is root (uid 0): name an unprivileged user, or set "
                                        "daemon.allow_root: true (--allow-root) to keep root"));
  }
  plan.action = PrivilegePlan::Action::Drop;
  plan.user = user.name;
  plan.uid = user.uid;
  plan.gid = user.gid;
  return plan;
}

void prepare_state_directory(const PrivilegePlan& plan, const Config& config) {
  if (plan.action != PrivilegePlan::Action::Drop || !config.detection.enabled ||
      config.detection.state_file.empty() ||
      directory_of(config.detection.state_file) != kDefaultStateDirectory) {
    return;
  }
  if (::mkdir(kDefaultStateDirectory, 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error(std::string("cannot create ") + kDefaultStateDirectory +
                             " for detection.state_file: " + detail::errno_text(errno));
  }
  struct stat st = {};
  if (::lstat(kDefaultStateDirectory, &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error(std::string(kDefaultStateDirectory) +
                             " (detection.state_file's directory) is not a directory");
  }
  if (st.st_uid != plan.uid) {
    if (::chown(kDefaultStateDirectory, plan.uid, plan.gid) != 0) {
      throw std::runtime_error(std::string("cannot give ") + kDefaultStateDirectory + " to " +
                               plan.user + ": " + detail::errno_text(errno));
    }
    spdlog::info("{} now belongs to {}, who writes the detection state there",
                 kDefaultStateDirectory, plan.user);
  }
}

void apply_privileges(const PrivilegePlan& plan, const Config& config) {
  switch (plan.action) {
    case PrivilegePlan::Action::None:
      spdlog::debug("running as uid {}: no root privileges to give up", plan.euid);
      return;
    case PrivilegePlan::Action::KeepRoot:
      spdlog::warn(
          "running as root (daemon.allow_root: true): the capture, the /metrics server and the "
          "parsers of untrusted traffic keep every privilege; leave allow_root false to run as "
          "daemon.user");
      return;
    case PrivilegePlan::Action::Drop:
      break;
  }
  // Capabilities must not survive the change of uid.
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
    step_failed("prctl(PR_SET_KEEPCAPS, 0)", plan);
  }
  if (::initgroups(plan.user.c_str(), plan.gid) != 0) {
    step_failed("initgroups", plan);
  }
  if (::setresgid(plan.gid, plan.gid, plan.gid) != 0) {
    step_failed("setresgid", plan);
  }
  if (::setresuid(plan.uid, plan.uid, plan.uid) != 0) {
    step_failed("setresuid", plan);
  }
  uid_t r = 0;
  uid_t e = 0;
  uid_t s = 0;
  if (::getresuid(&r, &e, &s) != 0 || r != plan.uid || e != plan.uid || s != plan.uid) {
    throw std::runtime_error("the switch to the user " + plan.user + " did not take: uid " +
                             std::to_string(r) + ", euid " + std::to_string(e) + ", saved uid " +
                             std::to_string(s));
  }
  if (::setuid(0) == 0 || ::seteuid(0) == 0) {
    throw std::runtime_error("after the switch to the user " + plan.user +
                             " dnsmon could become root again");
  }
  const std::size_t threads = check_every_thread(plan.uid, plan.gid);
  spdlog::info("running as {} (uid {}, gid {}): no capability left in any of the {} thread(s)",
               plan.user, plan.uid, plan.gid, threads);

  // What the user will need later: the state file's directory (written by a new file renamed
  // into place) and the config file (read again by a reload).
  if (config.detection.enabled && !config.detection.state_file.empty()) {
    const std::string dir = directory_of(config.detection.state_file);
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      throw ConfigError(located_error(
          config, "detection.state_file",
          "the user " + plan.user + " cannot write the directory " + dir + " (" +
              detail::errno_text(errno) +
              "), where the state is written to a new file and renamed: give the directory "
              "to " +
              plan.user + " (chown), or choose another daemon.user or state_file"));
    }
  }
  if (!config.daemon.config_path.empty() &&
      ::access(config.daemon.config_path.c_str(), R_OK) != 0) {
    spdlog::warn("the user {} cannot read {} ({}): a reload (SIGHUP) will fail until it can",
                 plan.user, config.daemon.config_path, detail::errno_text(errno));
  }
}

}  // namespace dnsmon
