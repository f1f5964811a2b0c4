// Started as root outside systemd, dnsmon opens what needs root (the capture handles and their
// fanout groups, the /metrics socket, the detection state and event files) and then runs as an
// unprivileged user (daemon.user) with no capability in any thread, unless daemon.allow_root
// says to keep root. Started as any other user (the systemd units: a transient user with
// CAP_NET_RAW as an ambient capability) there is nothing to do.
//
// Thread-safety: call from the main thread. drop() may run while other threads exist: glibc
// applies setgroups, setresgid and setresuid to every thread of the process, the kernel clears
// each thread's capabilities as its uid changes, and drop() checks every thread afterwards.
#pragma once

#include <string>
#include <sys/types.h>

#include "dnsmon/config.hpp"

namespace dnsmon {

struct PrivilegePlan {
  enum class Action { None, KeepRoot, Drop };
  Action action = Action::None;
  std::string user;  // with Drop: the user switched to
  uid_t uid = 0;
  gid_t gid = 0;
  uid_t euid = 0;  // the effective uid dnsmon was started with
};

// Decides from the effective uid and the configuration, before anything is opened, so that
// --check-config reports the same errors as a start. Throws ConfigError when dnsmon is root and
// an explicitly named user does not exist or is root, or when neither dnsmon nor nobody exists.
PrivilegePlan plan_privileges(const Config& config);

// Before the drop: the default state directory (/var/lib/dnsmon) is created, mode 0700, and given
// to the user, so the state file can be written there (by a new file renamed into place). Another
// directory is left as it is and only checked after the drop.
void prepare_state_directory(const PrivilegePlan& plan, const Config& config);

// Switches to the planned user and its groups and checks the result in every thread: real,
// effective and saved uid and gid not root, no way back to root, no permitted, effective or
// ambient capability. Logs what it did (KeepRoot: a warning; None: a debug line). Throws
// std::runtime_error when a step fails or a check finds a thread still privileged, and
// ConfigError when the user cannot write the state file's directory.
void apply_privileges(const PrivilegePlan& plan, const Config& config);

}  // namespace dnsmon
