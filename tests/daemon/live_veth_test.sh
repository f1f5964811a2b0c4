#!/usr/bin/env bash
# Live capture end to end on a real kernel veth pair between two private network namespaces:
#
#   ns A: VETH_A 198.18.0.1/24  <--veth-->  ns B: VETH_B 198.18.0.2/24, dnsmon -i VETH_B
#
# tcpreplay sends 100000 generated DNS frames (some 802.1Q-tagged, some IPv6) from A at
# 50000 pps; dnsmon (inside B, /metrics on B's own loopback) must decode exactly 100000 of them
# with every dropped counter at 0, and stop with exit status 0 on SIGTERM.
#
# Nothing leaves the namespaces: the veth pair exists only inside them, 198.18.0.0/24 (RFC 2544
# benchmark range) is assigned only there, there is no route out, and /metrics is served and
# scraped on the namespace's own 127.0.0.1.
#
# Environment (set by ctest): DNSMON, GEN_PCAP. Exit 0 pass, 1 fail, 77 skip (no root, no
# network namespaces or veth, no tcpreplay).
# For measurements (docs/performance.md), not used by ctest: LIVE_PACKETS (100000), LIVE_PPS
# (50000, or "max" for tcpreplay --topspeed), LIVE_SENDERS (1; that many tcpreplay processes send
# the file at once, each at LIVE_PPS), LIVE_PROFILE (simple, or bench for the benchmark mix, whose
# TCP handshakes count as frames that are not "ok": the check is then on every frame accounted
# for).
set -uo pipefail

PACKETS=${LIVE_PACKETS:-100000}
PPS=${LIVE_PPS:-50000}
SENDERS=${LIVE_SENDERS:-1}
PROFILE=${LIVE_PROFILE:-simple}
EXPECTED=$(( PACKETS * SENDERS ))
PORT=9917  # inside namespace B only: cannot collide with anything on the host
METRICS_URL="http://127.0.0.1:${PORT}/metrics"

log() { echo "live_veth_test: $*"; }
skip() { echo "live_veth_test: SKIP: $*" >&2; exit 77; }
fail() {
  echo "live_veth_test: FAIL: $*" >&2
  if [ -n "${DNSMON_LOG:-}" ] && [ -s "$DNSMON_LOG" ]; then
    echo "---- dnsmon log (last 40 lines) ----" >&2
    tail -n 40 "$DNSMON_LOG" >&2
  fi
  exit 1
}

: "${DNSMON:?DNSMON must name the dnsmon binary}"
: "${GEN_PCAP:?GEN_PCAP must name the gen_pcap binary}"
[ -x "$DNSMON" ] || fail "DNSMON=$DNSMON is not executable"
[ -x "$GEN_PCAP" ] || fail "GEN_PCAP=$GEN_PCAP is not executable"

# ---- prerequisites: anything missing here is the environment, not dnsmon -> skip --------------
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces and a veth pair"
for tool in ip tcpreplay curl timeout; do
  command -v "$tool" >/dev/null 2>&1 ||
    skip "$tool is not installed (apt-get install -y iproute2 tcpreplay curl coreutils)"
done

NS_A="dnsmon-live-a-$$"
NS_B="dnsmon-live-b-$$"
VETH_A="dmva$$"  # IFNAMSIZ: at most 15 characters; a pid has at most 7 digits
VETH_B="dmvb$$"
WORK=""
DNSMON_PID=""
DNSMON_LOG=""
CREATED_A=0
CREATED_B=0

# Kill only what runs inside our own namespaces (by pid), then delete them.
cleanup() {
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
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# ---- topology ---------------------------------------------------------------------------------
# Leftovers of earlier runs that were killed before their trap ran (e.g. SIGKILL on a ctest
# timeout): namespaces named after a pid that no longer runs. Their processes (a dnsmon, a
# tcpreplay) were started by that run; end them, then delete the namespace and its veth.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^dnsmon-live-[ab]-[0-9]+$/ { print $1 }'); do
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

setup_side() {  # ns iface address
  # No IPv6 on the test link: keeps the kernel's own DAD/router-solicitation frames off the wire.
  # (tcpreplay's IPv6 frames are raw Ethernet and are sent and captured regardless.)
  ip netns exec "$1" sh -c "echo 1 > /proc/sys/net/ipv6/conf/$2/disable_ipv6" 2>/dev/null || true
  ip -n "$1" addr add "$3" dev "$2" &&
    ip -n "$1" link set "$2" up &&
    ip -n "$1" link set lo up
}
setup_side "$NS_A" "$VETH_A" 198.18.0.1/24 || fail "cannot configure $VETH_A in $NS_A"
setup_side "$NS_B" "$VETH_B" 198.18.0.2/24 || fail "cannot configure $VETH_B in $NS_B"
# The namespaces must have no route out of 198.18.0.0/24.
if [ -n "$(ip -n "$NS_A" route show default)$(ip -n "$NS_B" route show default)" ]; then
  fail "a fresh namespace has a default route: refusing to send anything"
fi
log "namespaces $NS_A ($VETH_A 198.18.0.1/24) <-> $NS_B ($VETH_B 198.18.0.2/24)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dnsmon-live-veth.XXXXXX") || fail "mktemp failed"
PCAP="$WORK/dns.pcap"
DNSMON_LOG="$WORK/dnsmon.log"

"$GEN_PCAP" --profile "$PROFILE" --out "$PCAP" --packets "$PACKETS" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen_pcap failed"; }
log "$(tail -n 1 "$WORK/gen.log")"

# ---- dnsmon in namespace B --------------------------------------------------------------------
# Started directly as `ip netns exec NS dnsmon &` (ip execs dnsmon, so $! is dnsmon's pid; a shell
# function wrapper would make $! a subshell).
ip netns exec "$NS_B" "$DNSMON" -i "$VETH_B" --listen "127.0.0.1:$PORT" >"$DNSMON_LOG" 2>&1 &
DNSMON_PID=$!

scrape() { in_b curl -fsS --max-time 2 "$METRICS_URL" 2>/dev/null; }
# value NAME LABELS-REGEX: the sample's value (integer form) from the last scrape in $METRICS.
value() {
  awk -v name="$1" -v labels="$2" '
    $1 ~ ("^" name "\\{") && $1 ~ labels { v = $2; found = 1 }
    END { if (found) printf "%.0f\n", v; else print "missing" }' <<<"$METRICS"
}

METRICS=""
ready=0
for _ in $(seq 1 100); do  # up to ~10 s for startup
  kill -0 "$DNSMON_PID" 2>/dev/null || fail "dnsmon exited during startup"
  if METRICS=$(scrape) &&
     [ "$(value dnsmon_capture_up "source=\"$VETH_B\"")" = 1 ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || fail "/metrics did not answer with dnsmon_capture_up{source=\"$VETH_B\"} 1 within 10 s"
before_ok=$(value dnsmon_packets_total 'result="ok"')
[ "$before_ok" = 0 ] || fail "dnsmon_packets_total{result=\"ok\"} is $before_ok before anything was sent"
log "dnsmon (pid $DNSMON_PID) is capturing on $VETH_B and serving $METRICS_URL inside $NS_B"

# ---- send from namespace A --------------------------------------------------------------------
if [ "$PPS" = max ]; then
  rate_opt=--topspeed
  replay_budget=$(( PACKETS / 10000 + 30 ))
else
  rate_opt="--pps=$PPS"
  replay_budget=$(( PACKETS / PPS + 30 ))
fi
senders=()
for i in $(seq 1 "$SENDERS"); do
  timeout -k 5 "$replay_budget" ip netns exec "$NS_A" tcpreplay --intf1="$VETH_A" "$rate_opt" \
    "$PCAP" >"$WORK/tcpreplay.$i.log" 2>&1 &
  senders+=($!)
done
sent=0
for i in $(seq 1 "$SENDERS"); do
  if ! wait "${senders[$((i - 1))]}"; then
    cat "$WORK/tcpreplay.$i.log" >&2
    fail "tcpreplay $i failed or did not finish within ${replay_budget} s"
  fi
  grep -E 'Actual:|Rated:|Successful|Failed|Truncated|Retried' "$WORK/tcpreplay.$i.log" |
    sed "s/^ */tcpreplay $i: /"
  sent=$(( sent + $(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$WORK/tcpreplay.$i.log") ))
done
[ "$sent" = "$EXPECTED" ] || fail "tcpreplay sent ${sent:-?} packets, not $EXPECTED (see above)"

# ---- wait for dnsmon to count them ------------------------------------------------------------
ok=0
for _ in $(seq 1 100); do  # up to ~20 s
  kill -0 "$DNSMON_PID" 2>/dev/null || fail "dnsmon exited while capturing"
  if METRICS=$(scrape); then
    ok=$(value dnsmon_packets_total 'result="ok"')
    [ "$ok" != missing ] && [ "$ok" -ge "$EXPECTED" ] && break
    # Every frame already accounted for (decoded, rejected or dropped): no point waiting longer.
    accounted=$(awk -v iface="$VETH_B" '
      $1 ~ /^dnsmon_packets_total\{/ || ($1 ~ /^dnsmon_capture_dropped_total\{/ && index($1, "source=\"" iface "\"")) { s += $2 }
      END { printf "%.0f\n", s }' <<<"$METRICS")
    [ "$accounted" -ge "$EXPECTED" ] && break
  fi
  sleep 0.2
done
sleep 0.3  # one more capture batch (50 ms timeout) so late extra frames would show up too
METRICS=$(scrape) || fail "/metrics stopped answering"

ok=$(value dnsmon_packets_total 'result="ok"')
not_ok=$(awk '$1 ~ /^dnsmon_packets_total\{/ && $1 !~ /result="ok"/ { s += $2 } END { printf "%.0f\n", s }' <<<"$METRICS")
received=$(value dnsmon_capture_received_total "source=\"$VETH_B\"")
drop_kernel=$(value dnsmon_capture_dropped_total "source=\"$VETH_B\".*where=\"kernel\"")
drop_iface=$(value dnsmon_capture_dropped_total "source=\"$VETH_B\".*where=\"interface\"")
drop_ring=$(value dnsmon_capture_dropped_total "source=\"$VETH_B\".*where=\"ring\"")
drop_series=$(grep -c "^dnsmon_capture_dropped_total{.*source=\"$VETH_B\"" <<<"$METRICS")
log "sent=$sent ok=$ok not_ok=$not_ok received=$received" \
    "dropped{kernel=$drop_kernel interface=$drop_iface ring=$drop_ring} ($drop_series dropped series)" \
    "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
grep -E '^dnsmon_packets_total\{' <<<"$METRICS" | awk '$2 != 0 { print "  " $0 }'

status=0
if [ "$PROFILE" = simple ]; then
  [ "$ok" = "$EXPECTED" ] || { echo "FAIL: dnsmon_packets_total{result=\"ok\"} = $ok, expected $EXPECTED" >&2; status=1; }
else
  total=$(( ok + not_ok ))
  [ "$total" = "$EXPECTED" ] || { echo "FAIL: dnsmon_packets_total = $total, expected $EXPECTED" >&2; status=1; }
fi
[ "$drop_series" -ge 3 ] || { echo "FAIL: expected 3 dnsmon_capture_dropped_total series for $VETH_B, found $drop_series" >&2; status=1; }
while read -r series; do
  v=$(awk '{ printf "%.0f", $2 }' <<<"$series")
  [ "$v" = 0 ] || { echo "FAIL: $series (expected 0)" >&2; status=1; }
done < <(grep "^dnsmon_capture_dropped_total{.*source=\"$VETH_B\"" <<<"$METRICS")
if [ "$status" != 0 ] && [ "$drop_ring" != 0 ]; then
  echo "note: ring drops mean dnsmon's worker ring (capture.ring_slots, default 16384) overflowed;" \
       "on a machine short of CPU (see loadavg) the live path drops there instead of leaving" \
       "the frames in the 64 MiB kernel buffer" >&2
fi
[ "$status" = 0 ] || fail "counts do not match (numbers above)"

# ---- SIGTERM: clean exit within a bounded time --------------------------------------------------
stop_start=$(date +%s.%N)
kill -TERM "$DNSMON_PID"
stopped=0
for _ in $(seq 1 150); do  # up to 15 s (the HTTP server alone takes ~2 s to stop)
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
log "PASS"
