#!/usr/bin/env bash
# The Debian package, built and used as an operator would:
#  1. builds the .deb from the daemon preset (cmake --build --preset daemon --target package), or
#     takes DNSMON_DEB;
#  2. checks its contents (binary, units, conffile, gzipped man page, the monitoring files when the
#     source tree has them), its Depends against the packages of every library `ldd` names, and
#     its version against the project's;
#  3. installs it with apt-get (dependencies from the Debian mirror) into a fresh Debian 12 root:
#     an overlay over a minbase root that debootstrap makes once and keeps under build/; there
#     `dnsmon --version` and `man dnsmon` work, dpkg lists the conffile, and
#     `systemd-analyze verify --root` of the installed units prints nothing;
#  4. boots that root with systemd as PID 1 (systemd-nspawn, in a network namespace of its own with
#     only a loopback), where the packaged dnsmon.service, enabled and pointed at lo, must become
#     active (READY), serve /metrics, count a DNS query sent on lo, count a `systemctl reload` as a
#     successful reload, and stop cleanly.
#
# Env: DNSMON_SOURCE_DIR (repository root, set by ctest); DNSMON_DEB (a built .deb: skips the
# build); DEBIAN_MIRROR (default: the first URI of /etc/apt/sources.list.d/debian.sources);
# DNSMON_ROOTFS_CACHE (default: $DNSMON_SOURCE_DIR/build/debian12-rootfs).
# Needs root, debootstrap, systemd-container, dpkg-dev (tools/setup.sh --test installs them).
# Exit 77 (skipped) only when no Debian mirror can be reached.
set -euo pipefail

: "${DNSMON_SOURCE_DIR:?set DNSMON_SOURCE_DIR to the repository root}"
TEST_NAME=package_test
log() { echo "$TEST_NAME: $*"; }
skip() {
  echo "$TEST_NAME: SKIP: $*" >&2
  exit 77
}
fail() {
  echo "$TEST_NAME: FAIL: $*" >&2
  exit 1
}
start_time=$SECONDS
phase_time=$SECONDS
phase() {
  log "[$((SECONDS - start_time)) s, +$((SECONDS - phase_time)) s] $*"
  phase_time=$SECONDS
}

[[ $(id -u) == 0 ]] || fail "needs root (debootstrap, overlay mounts, systemd-nspawn)"
for tool in debootstrap systemd-nspawn systemd-analyze systemctl dpkg-deb dpkg-shlibdeps ip \
  nsenter curl flock mountpoint objdump; do
  command -v "$tool" >/dev/null 2>&1 ||
    fail "$tool is not installed (tools/setup.sh --test installs debootstrap, systemd-container, dpkg-dev)"
done

mirror=${DEBIAN_MIRROR:-}
if [[ -z $mirror && -r /etc/apt/sources.list.d/debian.sources ]]; then
  mirror=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z $mirror && -r /etc/apt/sources.list ]]; then
  mirror=$(awk '$1 == "deb" && $0 ~ /bookworm/ { print $2; exit }' /etc/apt/sources.list)
fi
[[ -n $mirror ]] || skip "no Debian mirror configured (set DEBIAN_MIRROR)"
curl -fsS --max-time 30 -o /dev/null "$mirror/dists/bookworm/Release" ||
  skip "the Debian mirror $mirror cannot be reached"

cache=${DNSMON_ROOTFS_CACHE:-$DNSMON_SOURCE_DIR/build/debian12-rootfs}
mkdir -p "$cache"
netns=""
nspawn_pid=""
ct_pid=""
# Leftovers of a run killed before its trap ran (SIGKILL on a ctest timeout): its container (every
# process in its network namespace), the namespace, and its overlay, named after that run's pid.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^dnsmon-pkg-[0-9]+$/ { print $1 }'); do
  owner=${ns#dnsmon-pkg-}
  if [[ $owner != "$$" ]] && ! kill -0 "$owner" 2>/dev/null; then
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 1
    ip netns del "$ns" 2>/dev/null && log "removed the namespace $ns of an earlier run"
  fi
done
while read -r _ mnt type _; do
  [[ $type == overlay && $mnt =~ /dnsmon-package-test\.([0-9]+)\.[^/]*/root$ ]] || continue
  owner=${BASH_REMATCH[1]}
  if [[ $owner != "$$" ]] && ! kill -0 "$owner" 2>/dev/null; then
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    rm -rf -- "${mnt%/root}" && log "removed the root ${mnt%/root} of an earlier run"
  fi
done < <(grep '^dnsmon-package-test ' /proc/mounts || true)
work=$(mktemp -d "${TMPDIR:-/tmp}/dnsmon-package-test.$$.XXXXXX")
root=$work/root

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e  # every step runs, whatever the one before it returned
  if [[ -n $ct_pid ]] && kill -0 "$ct_pid" 2>/dev/null; then
    kill -KILL "$ct_pid" 2>/dev/null || true  # the container's PID 1: ends its whole namespace
  fi
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$nspawn_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  [[ -n $nspawn_pid ]] && wait "$nspawn_pid" 2>/dev/null
  if mountpoint -q "$root" 2>/dev/null; then
    umount "$root" 2>/dev/null || umount -l "$root" 2>/dev/null || true
  fi
  [[ -n $netns ]] && ip netns del "$netns" 2>/dev/null
  rm -rf -- "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- 1. the package -----------------------------------------------------------------------------
deb=${DNSMON_DEB:-}
if [[ -z $deb ]]; then
  log "building the package: cmake --preset daemon && cmake --build --preset daemon --target package"
  (cd "$DNSMON_SOURCE_DIR" && cmake --preset daemon >"$work/configure.log" 2>&1) ||
    { tail -n 30 "$work/configure.log"; fail "cmake --preset daemon failed"; }
  (cd "$DNSMON_SOURCE_DIR" && cmake --build --preset daemon --target package -j2 >"$work/build.log" 2>&1) ||
    { tail -n 40 "$work/build.log"; fail "cmake --build --preset daemon --target package failed"; }
  deb=$(ls -t "$DNSMON_SOURCE_DIR"/build/daemon/dnsmon_*.deb 2>/dev/null | head -n 1)
  [[ -n $deb ]] || fail "the package target wrote no build/daemon/dnsmon_*.deb"
fi
[[ -f $deb ]] || fail "no package at $deb"
phase "package: $deb"

# ---- 2. its contents ----------------------------------------------------------------------------
failures=0
check() {  # check DESCRIPTION COMMAND...: runs the command, counts a failure
  if "${@:2}"; then
    log "ok: $1"
  else
    echo "$TEST_NAME: FAIL: $1" >&2
    failures=$((failures + 1))
  fi
}

contents=$(dpkg-deb -c "$deb" | awk '{ print $1, $6 }')
has() {  # has MODE PATH: the package holds PATH as a regular file with that mode
  grep -qx -- "$1 \./${2#/}" <<<"$contents"
}
check "/usr/bin/dnsmon, mode 755" has -rwxr-xr-x /usr/bin/dnsmon
for f in /lib/systemd/system/dnsmon.service /lib/systemd/system/dnsmon@.service \
  /etc/dnsmon/dnsmon.yaml /usr/share/man/man8/dnsmon.8.gz; do
  check "$f, mode 644" has -rw-r--r-- "$f"
done
if [[ -d $DNSMON_SOURCE_DIR/monitoring ]]; then
  while IFS= read -r f; do
    rel=${f#"$DNSMON_SOURCE_DIR"/monitoring/}
    [[ $rel == *test* ]] && continue  # test material (rules/tests/, tests/) is not installed
    check "/usr/share/dnsmon/$rel (from monitoring/)" has -rw-r--r-- "/usr/share/dnsmon/$rel"
  done < <(find "$DNSMON_SOURCE_DIR/monitoring" -type f \( -name '*.json' -o -name '*.yml' \
    -o -name '*.yaml' -o -name '*.md' \))
fi
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
check "conffiles is exactly /etc/dnsmon/dnsmon.yaml" test "$conffiles" == /etc/dnsmon/dnsmon.yaml

project_version=$(sed -n 's/^project(dnsmon VERSION \([0-9.]*\).*/\1/p' "$DNSMON_SOURCE_DIR/CMakeLists.txt")
version=$(dpkg-deb -f "$deb" Version)
check "Version $version is the project's $project_version with a Debian revision" \
  test "${version%-*}" == "$project_version"
for field in Maintainer Description Section Priority Architecture; do
  check "control field $field: $(dpkg-deb -f "$deb" "$field" | head -n 1)" \
    test -n "$(dpkg-deb -f "$deb" "$field")"
done

depends=$(dpkg-deb -f "$deb" Depends)
log "Depends: $depends"
depends_names=" $(sed 's/([^)]*)//g; s/|/,/g; s/,/ /g' <<<"$depends" | tr -s ' ') "
check "Depends names publicsuffix" grep -q ' publicsuffix ' <<<"$depends_names"
mkdir -p "$work/extract"
dpkg-deb -x "$deb" "$work/extract"
# Every library the binary needs itself (NEEDED), resolved by ldd, and the package that holds it.
needed=$(objdump -p "$work/extract/usr/bin/dnsmon" | awk '$1 == "NEEDED" { print $2 }')
[[ -n $needed ]] || fail "objdump found no NEEDED library in the packaged binary"
resolved=$(ldd "$work/extract/usr/bin/dnsmon")
for soname in $needed; do
  lib=$(awk -v so="$soname" '$1 == so && $2 == "=>" { print $3 }' <<<"$resolved")
  [[ $soname == ld-linux* ]] && continue  # the dynamic loader, part of libc6
  [[ -n $lib ]] || { check "ldd resolves $soname" false; continue; }
  owner=""
  for path in "$lib" "/usr${lib#/usr}" "${lib#/usr}"; do  # dpkg knows one side of merged /usr
    owner=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1) && [[ -n $owner ]] && break
  done
  [[ -n $owner ]] || { check "$lib belongs to a Debian package" false; continue; }
  # The package itself, or a name it provides (libspdlog1.10 provides libspdlog1.10-fmt9).
  names=" $owner $(dpkg-query -W -f='${Provides}' "$owner" 2>/dev/null | sed 's/([^)]*)//g; s/,/ /g') "
  found=""
  for name in $names; do
    grep -q " $name " <<<"$depends_names" && found=$name && break
  done
  [[ $found == "$owner" ]] && via="" || via=", as $found"
  check "$soname ($owner$via) is in Depends" test -n "$found"
done
check "Depends names procps (/bin/kill, the units' ExecReload=)" grep -q ' procps ' <<<"$depends_names"
phase "contents checked"

# ---- 3. a fresh Debian 12 root with the package installed ---------------------------------------
# The base root is made once: debootstrap into a scratch folder, renamed when complete. A lock keeps
# two runs (two presets) from making it at once.
base=$cache/base
exec {lock_fd}>"$cache/lock"
flock -w 1200 "$lock_fd" || fail "waited 20 min for another run's debootstrap in $cache"
if [[ ! -e $base/.complete ]]; then
  rm -rf -- "$cache/base.new" "$base"
  log "debootstrap --variant=minbase bookworm from $mirror into $base (once; later runs reuse it)"
  if ! timeout 1200 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,man-db \
    bookworm "$cache/base.new" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log"
    fail "debootstrap failed"
  fi
  # Package lists, so that apt-get resolves the package's dependencies from the mirror.
  timeout 300 systemd-nspawn -q -D "$cache/base.new" --register=no --keep-unit \
    apt-get -q update >"$work/apt-update.log" 2>&1 ||
    { tail -n 20 "$work/apt-update.log"; fail "apt-get update in the new root failed"; }
  touch "$cache/base.new/.complete"
  mv "$cache/base.new" "$base"
  phase "base root made"
fi
mkdir -p "$cache/archives/partial"
flock -u "$lock_fd"

# Each run works on an overlay: the base root stays as debootstrap left it.
mkdir -p "$root" "$work/upper" "$work/ovl-work"
mount -t overlay dnsmon-package-test \
  -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovl-work" "$root" ||
  fail "cannot mount an overlay on $root"
in_root() {  # a command in the root, not booted; the host's network (for the mirror)
  timeout 600 systemd-nspawn -q -D "$root" --register=no --keep-unit --console=pipe \
    --bind="$cache/archives:/var/cache/apt/archives" "$@"
}
cp "$deb" "$root/root/"
deb_in_root=/root/$(basename "$deb")
export DEBIAN_FRONTEND=noninteractive
if ! in_root apt-get install -y -q --no-install-recommends "$deb_in_root" >"$work/install.log" 2>&1; then
  # The mirror may have moved on since the base root's lists were fetched.
  in_root apt-get -q update >>"$work/install.log" 2>&1 || true
  in_root apt-get install -y -q --no-install-recommends "$deb_in_root" >>"$work/install.log" 2>&1 ||
    { tail -n 30 "$work/install.log"; fail "apt-get install ./$(basename "$deb") in the root failed"; }
fi
grep -E '^(Setting up|Unpacking) ' "$work/install.log" | sed "s/^/$TEST_NAME:   /" || true
phase "installed with apt-get in the root"

out=$(in_root dnsmon --version 2>/dev/null | tr -d '\r') || true
check "dnsmon --version in the root: $out" grep -q "$project_version" <<<"$out"
out=$(in_root env MANWIDTH=80 man -P cat dnsmon 2>/dev/null | tr -d '\r') || true
check "man dnsmon in the root renders dnsmon(8)" grep -q 'dnsmon - capture DNS traffic' <<<"$out"
for section in SYNOPSIS OPTIONS 'CONFIGURATION FILE' SIGNALS 'EXIT STATUS' FILES METRICS EXAMPLES 'SEE ALSO'; do
  check "man dnsmon has the section $section" grep -qx "$section" <<<"$out"
done
out=$(in_root dpkg-query -W -f='${Status} ${Conffiles}' dnsmon 2>/dev/null) || true
check "dpkg: dnsmon installed, /etc/dnsmon/dnsmon.yaml a conffile ($out)" \
  grep -q '^install ok installed .*/etc/dnsmon/dnsmon.yaml [0-9a-f]\{32\}' <<<"$out"

# verify exits 0 on unknown keys and unparsable values: any output at all is a failure.
for unit in dnsmon.service dnsmon@.service dnsmon@eth0.service; do
  out=$(systemd-analyze verify --root="$root" "/lib/systemd/system/$unit" 2>&1) || true
  check "systemd-analyze verify --root $unit prints nothing${out:+: $out}" test -z "$out"
done
phase "checked in the root"

# ---- 4. systemd as PID 1 runs the packaged service ------------------------------------------------
# dnsmon.service captures on the interfaces of the conffile: lo, the container's only one.
sed -i 's/^  # interfaces: \[eth0\]$/  interfaces: [lo]/' "$root/etc/dnsmon/dnsmon.yaml"
grep -q '^  interfaces: \[lo\]$' "$root/etc/dnsmon/dnsmon.yaml" ||
  fail "could not set capture.interfaces in the installed /etc/dnsmon/dnsmon.yaml"
systemctl --root="$root" enable dnsmon.service >/dev/null 2>&1 ||
  fail "systemctl --root enable dnsmon.service failed"
# Nothing else to start: a quicker boot.
systemctl --root="$root" mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true

netns=dnsmon-pkg-$$
ip netns add "$netns" || fail "cannot create the network namespace $netns"
ip -n "$netns" link set lo up
systemd-nspawn -q -D "$root" --boot --register=no --keep-unit --console=passive \
  --network-namespace-path="/run/netns/$netns" -M "dnsmonpkg$$" >"$work/boot.log" 2>&1 &
nspawn_pid=$!
for ((i = 0; i < 100; i++)); do
  ct_pid=$(pgrep -P "$nspawn_pid" -x systemd || true)
  [[ -n $ct_pid ]] && break
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/boot.log"; fail "systemd-nspawn --boot exited"; }
  sleep 0.1
done
[[ -n $ct_pid ]] || { cat "$work/boot.log"; fail "no systemd in the container after 10 s"; }
in_ct() { timeout 60 nsenter -t "$ct_pid" -m -u -i -n -p "$@"; }

state=""
for ((i = 0; i < 120; i++)); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  [[ $state == running || $state == degraded ]] && break
  sleep 0.5
done
phase "container booted: $state"
[[ $state == running ]] || in_ct systemctl --failed --no-pager || true

active=""
for ((i = 0; i < 60; i++)); do
  active=$(in_ct systemctl is-active dnsmon.service 2>/dev/null || true)
  [[ $active == active || $active == failed ]] && break
  sleep 0.5
done
if [[ $active != active ]]; then
  in_ct systemctl status --no-pager dnsmon.service || true
  in_ct journalctl -b --no-pager -u dnsmon.service | tail -n 30 || true
  fail "dnsmon.service is '$active', not active (READY), 30 s after boot"
fi
log "ok: dnsmon.service active: $(in_ct systemctl show -p User -p StatusText dnsmon.service | tr '\n' ' ')"

metrics=""
scrape() { metrics=$(timeout 10 nsenter -t "$ct_pid" -n curl -fsS --max-time 5 http://127.0.0.1:9917/metrics); }
# value NAME LABELS: the sample's value, or "missing"
value() {
  awk -v s="$1$2" '$1 == s { v = $2; found = 1 } END { if (found) printf "%.0f\n", v; else print "missing" }' \
    <<<"$metrics"
}
scrape || fail "no answer from http://127.0.0.1:9917/metrics in the container's network namespace"
check "/metrics: dnsmon_capture_up{source=\"lo\"} 1" test "$(value dnsmon_capture_up '{source="lo"}')" == 1
check "/metrics: dnsmon_build_info names version $project_version" \
  grep -q "^dnsmon_build_info{version=\"$project_version\"" <<<"$metrics"
check "/metrics: no reload counted yet" \
  test "$(value dnsmon_config_reloads_total '{result="success"}')" == 0

# A DNS query (www.example.com A) on the container's loopback: the packaged service captures it.
query='\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01'
queries=missing
for ((i = 0; i < 20; i++)); do
  timeout 5 nsenter -t "$ct_pid" -n bash -c "printf '$query' >/dev/udp/127.0.0.1/53" 2>/dev/null || true
  sleep 0.5
  scrape || continue
  queries=$(value dnsmon_queries_total '{qtype="A"}')
  [[ $queries != missing && $queries -ge 1 ]] && break
done
check "a query sent on lo is counted: dnsmon_queries_total{qtype=\"A\"} $queries" \
  test "$queries" != missing -a "$queries" -ge 1

in_ct systemctl reload dnsmon.service || fail "systemctl reload dnsmon.service failed"
reloads=missing
for ((i = 0; i < 20; i++)); do
  scrape || { sleep 0.5; continue; }
  reloads=$(value dnsmon_config_reloads_total '{result="success"}')
  [[ $reloads == 1 ]] && break
  sleep 0.5
done
check "systemctl reload is counted: dnsmon_config_reloads_total{result=\"success\"} $reloads" \
  test "$reloads" == 1
check "dnsmon.service still active after the reload" \
  test "$(in_ct systemctl is-active dnsmon.service || true)" == active

in_ct systemctl stop dnsmon.service || fail "systemctl stop dnsmon.service failed"
result=$(in_ct systemctl show -p Result --value dnsmon.service || true)
status=$(in_ct systemctl show -p ExecMainStatus --value dnsmon.service || true)
check "dnsmon.service stopped cleanly (Result=$result, exit status $status)" \
  test "$result" == success -a "$status" == 0
phase "service checked"

# Power the container off; cleanup kills it if it does not go within 30 s.
kill -RTMIN+4 "$ct_pid" 2>/dev/null || true
for ((i = 0; i < 300; i++)); do
  kill -0 "$nspawn_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$nspawn_pid" 2>/dev/null; then
  log "the container did not power off within 30 s; killing it"
else
  wait "$nspawn_pid" 2>/dev/null || true
  nspawn_pid=""
  ct_pid=""
fi
phase "container stopped"

if ((failures > 0)); then
  fail "$failures check(s) failed"
fi
log "all package checks passed in $((SECONDS - start_time)) s"
