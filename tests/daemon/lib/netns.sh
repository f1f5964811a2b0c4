# Sourced by the live tests: two private network namespaces joined by a veth pair, dnsmon
# capturing in the second, and helpers to read its /metrics.
#
#   ns A: VETH_A 198.18.0.1/24 [fd00:d15:0::1/64]  <--veth-->  ns B: VETH_B 198.18.0.2/24 [fd00:d15:0::2/64]
#
# Nothing leaves the namespaces: the veth pair exists only inside them, the addresses (RFC 2544's
# benchmark range, a unique-local IPv6 prefix) are assigned only there, there is no route out, and
# /metrics is served and scraped on namespace B's own loopback.
#
# The sourcing script sets TEST_NAME and NS_PREFIX (namespaces are NS_PREFIX-a-PID and
# NS_PREFIX-b-PID) before sourcing, then calls netns_setup [ipv6].

log() { echo "$TEST_NAME: $*"; }
skip() { echo "$TEST_NAME: SKIP: $*" >&2; exit 77; }
fail() {
  echo "$TEST_NAME: FAIL: $*" >&2
  if [ -n "${DNSMON_LOG:-}" ] && [ -s "$DNSMON_LOG" ]; then
    echo "---- dnsmon log (last 40 lines) ----" >&2
    tail -n 40 "$DNSMON_LOG" >&2
  fi
  exit 1
}

NS_A="$NS_PREFIX-a-$$"
NS_B="$NS_PREFIX-b-$$"
VETH_A="dmva$$"  # IFNAMSIZ: at most 15 characters; a pid has at most 7 digits
VETH_B="dmvb$$"
PORT=9917  # inside namespace B only: cannot collide with anything on the host
METRICS_URL="http://127.0.0.1:${PORT}/metrics"
WORK=""
DNSMON_PID=""
DNSMON_LOG=""
CREATED_A=0
CREATED_B=0
METRICS=""

# Kill only what runs inside our own namespaces (by pid), then delete them.
netns_cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$DNSMON_PID" ] && kill -0 "$DNSMON_PID" 2>/dev/null; then
    kill -KILL "$DNSMON_PID" 2>/dev/null
    wait "$DNSMON_PID" 2>/dev/null
  fi
  local ns pid
  for ns in "$NS_A" "$NS_B"; do
    if ip netns list 2>/dev/null | grep -qw -- "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null
      done
    fi
  done
  [ "$CREATED_A" = 1 ] && ip -n "$NS_A" link del "$VETH_A" 2>/dev/null
  [ "$CREATED_A" = 1 ] && ip netns del "$NS_A" 2>/dev/null
  [ "$CREATED_B" = 1 ] && ip netns del "$NS_B" 2>/dev/null
  [ -n "$WORK" ] && rm -rf -- "$WORK"
  exit "$rc"
}

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# The binaries the live tests run and feed, from the environment ctest sets.
need_dnsmon_and_gen_pcap() {
  : "${DNSMON:?DNSMON must name the dnsmon binary}"
  : "${GEN_PCAP:?GEN_PCAP must name the gen_pcap binary}"
  [ -x "$DNSMON" ] || fail "DNSMON=$DNSMON is not executable"
  [ -x "$GEN_PCAP" ] || fail "GEN_PCAP=$GEN_PCAP is not executable"
}

# netns_setup [ipv6]: checks root and the tools, creates the pair and a scratch folder in WORK.
netns_setup() {
  local want_ipv6=${1:-}
  [ "$(id -u)" = 0 ] || skip "needs root to create network namespaces and a veth pair"
  local tool
  for tool in ip curl timeout $NETNS_TOOLS; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
  done
  trap netns_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP

  # Leftovers of earlier runs that were killed before their trap ran (e.g. SIGKILL on a ctest
  # timeout): namespaces named after a pid that no longer runs. Their processes were started by
  # that run; end them, then delete the namespace and its veth.
  local ns owner pid err
  for ns in $(ip netns list 2>/dev/null | awk -v p="$NS_PREFIX" '$1 ~ ("^" p "-[ab]-[0-9]+$") { print $1 }'); do
    owner=${ns##*-}
    if [ "$owner" != $$ ] && ! kill -0 "$owner" 2>/dev/null; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
      ip netns del "$ns" 2>/dev/null && log "removed the stale namespace $ns of an earlier run"
    fi
  done

  err=$(ip netns add "$NS_A" 2>&1) || skip "cannot create a network namespace (ip netns add: $err)"
  CREATED_A=1
  err=$(ip netns add "$NS_B" 2>&1) || skip "cannot create a network namespace (ip netns add: $err)"
  CREATED_B=1
  err=$(in_a true 2>&1) || skip "cannot enter a network namespace (ip netns exec: $err)"
  err=$(ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B" 2>&1) ||
    skip "cannot create a veth pair inside the namespaces (ip link add: $err)"

  netns_side "$NS_A" "$VETH_A" 1 "$want_ipv6" || fail "cannot configure $VETH_A in $NS_A"
  netns_side "$NS_B" "$VETH_B" 2 "$want_ipv6" || fail "cannot configure $VETH_B in $NS_B"
  # The namespaces must have no route out of their own link.
  if [ -n "$(ip -n "$NS_A" route show default)$(ip -n "$NS_B" route show default)" ]; then
    fail "a fresh namespace has a default route: refusing to send anything"
  fi
  log "namespaces $NS_A ($VETH_A 198.18.0.1/24) <-> $NS_B ($VETH_B 198.18.0.2/24)${want_ipv6:+, fd00:d15::1/64 <-> fd00:d15::2/64}"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TEST_NAME.XXXXXX") || fail "mktemp failed"
  DNSMON_LOG="$WORK/dnsmon.log"
}

netns_side() {  # ns iface host-number ipv6
  if [ -n "$4" ]; then
    ip netns exec "$1" sh -c "echo 0 > /proc/sys/net/ipv6/conf/$2/disable_ipv6" || return 1
    ip -n "$1" addr add "fd00:d15::$3/64" dev "$2" nodad || return 1
  else
    # No IPv6 on the link: keeps the kernel's own DAD/router-solicitation frames off the wire
    # (raw frames sent by tcpreplay are sent and captured regardless).
    ip netns exec "$1" sh -c "echo 1 > /proc/sys/net/ipv6/conf/$2/disable_ipv6" 2>/dev/null || true
  fi
  ip -n "$1" addr add "198.18.0.$3/24" dev "$2" &&
    ip -n "$1" link set "$2" up &&
    ip -n "$1" link set lo up
}

scrape() { in_b curl -fsS --max-time 2 "$METRICS_URL" 2>/dev/null; }

# value NAME LABELS-REGEX: the sample's value (integer form) from the last scrape in $METRICS.
value() {
  awk -v name="$1" -v labels="$2" '
    $1 ~ ("^" name "\\{") && $1 ~ labels { v = $2; found = 1 }
    END { if (found) printf "%.0f\n", v; else print "missing" }' <<<"$METRICS"
}

# sum NAME [LABELS-REGEX]: the sum of a family's samples (without _bucket/_sum/_count suffixes).
sum() {
  awk -v name="$1" -v labels="${2:-}" '
    ($1 ~ ("^" name "\\{") || $1 == name) && $1 ~ labels { s += $2 }
    END { printf "%.0f\n", s }' <<<"$METRICS"
}

# start_dnsmon ARGS...: dnsmon -i VETH_B in namespace B, serving /metrics there; waits until it
# reports the capture up. Started directly as `ip netns exec NS dnsmon &` (ip execs dnsmon, so $!
# is dnsmon's pid; a shell function wrapper would make $! a subshell).
start_dnsmon() {
  ip netns exec "$NS_B" "$DNSMON" -i "$VETH_B" --listen "127.0.0.1:$PORT" "$@" >"$DNSMON_LOG" 2>&1 &
  DNSMON_PID=$!
  local ready=0
  for _ in $(seq 1 100); do  # up to ~10 s for startup
    kill -0 "$DNSMON_PID" 2>/dev/null || fail "dnsmon exited during startup"
    if METRICS=$(scrape) && [ "$(value dnsmon_capture_up "source=\"$VETH_B\"")" = 1 ]; then
      ready=1
      break
    fi
    sleep 0.1
  done
  [ "$ready" = 1 ] || fail "/metrics did not answer with dnsmon_capture_up{source=\"$VETH_B\"} 1 within 10 s"
  log "dnsmon (pid $DNSMON_PID) is capturing on $VETH_B and serving $METRICS_URL inside $NS_B"
}

# stop_dnsmon: SIGTERM, a clean exit with status 0 within 15 s, and no error in its log.
stop_dnsmon() {
  local stop_start stopped=0 rc
  stop_start=$(date +%s.%N)
  kill -TERM "$DNSMON_PID"
  for _ in $(seq 1 150); do
    if ! kill -0 "$DNSMON_PID" 2>/dev/null; then
      stopped=1
      break
    fi
    sleep 0.1
  done
  [ "$stopped" = 1 ] || fail "dnsmon did not exit within 15 s of SIGTERM"
  wait "$DNSMON_PID"
  rc=$?
  DNSMON_PID=""
  [ "$rc" = 0 ] || fail "dnsmon exited with status $rc after SIGTERM, expected 0"
  log "dnsmon stopped on SIGTERM with status 0 after $(awk -v a="$stop_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
  sed 's/^/  dnsmon: /' "$DNSMON_LOG"
  if grep -qE ' (error|critical) ' "$DNSMON_LOG"; then
    fail "dnsmon logged an error"
  fi
}
