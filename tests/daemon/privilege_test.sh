#!/usr/bin/env bash
# Privileges outside systemd: dnsmon started as root on a veth pair between two private network
# namespaces (lib/netns.sh; nothing leaves them), with 2 workers (a PACKET_FANOUT group), /metrics
# on port 80 of namespace B's loopback (a port only root may bind), detection on with its state
# and event files, and daemon.user: nobody.
#
#  1. Every thread (/proc/PID/task/*/status) runs as nobody (real, effective, saved and
#     filesystem uid and gid) with empty permitted, effective and ambient capability sets, and
#     another process of nobody cannot read its /proc/PID/environ (it is not dumpable).
#  2. It still counts traffic: 2000 DNS frames sent by tcpreplay from namespace A are decoded.
#  3. SIGHUP re-reads the config as nobody (a change of daemon.allow_root is named as needing a
#     restart and changes nothing); SIGTERM exits 0, the state file is written (a new
#     file renamed into the directory given to nobody) and belongs to nobody; the event log,
#     created by root in a directory nobody cannot write, is there.
#  4. Without daemon.user: the user dnsmon, else nobody.
#  5. daemon.allow_root: true keeps root with a warning.
#  6. A daemon.user that does not exist: exit 78 naming the file, line and key.
#  7. Started as nobody: nothing to give up (a debug line), a replay runs as before.
#  8. Started as the systemd units start it (nobody with CAP_NET_RAW as an ambient capability):
#     nothing changes, the capability stays and the live capture runs.
#
# Environment (set by ctest): DNSMON, GEN_PCAP. Exit 0 pass, 1 fail, 77 skip (no root, no
# network namespaces or veth, no tcpreplay, setpriv or user nobody).
set -uo pipefail

TEST_NAME=privilege_test
NS_PREFIX=dnsmon-priv
NETNS_TOOLS="tcpreplay setpriv getent"

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"

need_dnsmon_and_gen_pcap
netns_setup
getent passwd nobody >/dev/null || skip "there is no user nobody"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
[ "$NOBODY_UID" != 0 ] || skip "nobody is root here"

# A port below 1024: only root (CAP_NET_BIND_SERVICE) binds it, so /metrics answering proves
# the socket was opened before the switch.
PORT=80
METRICS_URL="http://127.0.0.1:${PORT}/metrics"

# nobody must reach the config and the state directory through WORK.
chmod 0755 "$WORK"
mkdir "$WORK/state" "$WORK/root-only" || fail "mkdir failed"
chown nobody "$WORK/state" || fail "cannot chown $WORK/state to nobody"
chmod 0755 "$WORK/root-only"
setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups test -w "$WORK/state" ||
  skip "nobody cannot reach $WORK/state (a parent of ${TMPDIR:-/tmp} is closed to others)"

PCAP="$WORK/dns.pcap"
SENT_PACKETS=2000
"$GEN_PCAP" --profile simple --out "$PCAP" --packets "$SENT_PACKETS" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen_pcap failed"; }
chmod 0644 "$PCAP"

STATE="$WORK/state/detection.state"
EVENTS="$WORK/root-only/events.jsonl"
detection_yaml() {
  cat <<EOF
detection:
  enabled: true
  state_file: $STATE
  events_file: $EVENTS
  time: {compression: 14400}
  memory: {base_entries: 4096, candidate_entries: 64, watch_entries: 4,
           seen_filter_entries: 4096, doorkeeper_bits: 65536}
EOF
}
{ detection_yaml; printf 'daemon:\n  user: nobody\n'; } >"$WORK/nobody.yaml"
detection_yaml >"$WORK/default.yaml"
printf 'daemon:\n  allow_root: true\n' >"$WORK/root.yaml"
printf 'log:\n  level: info\ndaemon:\n  user: dnsmon-no-such-user\n' >"$WORK/missing.yaml"
chmod 0644 "$WORK"/*.yaml

# check_threads UID GID: every thread of dnsmon runs as UID:GID (all four ids) with no
# permitted, effective or ambient capability; prints the number of threads.
check_threads() {
  local status n=0 uids gids prm eff amb
  for status in /proc/"$DNSMON_PID"/task/*/status; do
    [ -r "$status" ] || continue
    uids=$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "$status")
    gids=$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' "$status")
    prm=$(awk '$1 == "CapPrm:" { print $2 }' "$status")
    eff=$(awk '$1 == "CapEff:" { print $2 }' "$status")
    amb=$(awk '$1 == "CapAmb:" { print $2 }' "$status")
    [ "$uids" = "$1 $1 $1 $1" ] || fail "$status: Uid $uids, expected $1 in all four"
    [ "$gids" = "$2 $2 $2 $2" ] || fail "$status: Gid $gids, expected $2 in all four"
    for cap in "$prm" "$eff" "$amb"; do
      [[ "$cap" =~ ^0+$ ]] || fail "$status: CapPrm $prm CapEff $eff CapAmb $amb, expected all 0"
    done
    n=$((n + 1))
  done
  echo "$n"
}

# ---- 1-3: root → nobody, live capture with 2 workers and detection ---------------------------
start_dnsmon --workers 2 --config "$WORK/nobody.yaml"
grep -q "running as nobody (uid $NOBODY_UID, gid $NOBODY_GID): no capability left" "$DNSMON_LOG" ||
  fail "no 'running as nobody' line in the log"
threads=$(check_threads "$NOBODY_UID" "$NOBODY_GID") || exit 1
# main, HTTP, 2 workers, 2 capture threads (one per fanout member), a detection shard, the
# checkpointer.
[ "$threads" -ge 8 ] || fail "only $threads threads: the capture or detection threads are missing"
log "all $threads threads run as uid $NOBODY_UID gid $NOBODY_GID with no capability"
# Left undumpable by the switch: another process of nobody cannot trace it or read its memory.
if setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
  cat "/proc/$DNSMON_PID/environ" >/dev/null 2>&1; then
  fail "another process of nobody reads /proc/$DNSMON_PID/environ: dnsmon is dumpable"
fi

timeout -k 5 60 ip netns exec "$NS_A" tcpreplay --intf1="$VETH_A" --pps=2000 "$PCAP" \
  >"$WORK/tcpreplay.log" 2>&1 || { cat "$WORK/tcpreplay.log" >&2; fail "tcpreplay failed"; }
ok=0
for _ in $(seq 1 100); do  # up to ~20 s
  kill -0 "$DNSMON_PID" 2>/dev/null || fail "dnsmon exited while capturing"
  if METRICS=$(scrape); then
    ok=$(value dnsmon_packets_total 'result="ok"')
    [ "$ok" != missing ] && [ "$ok" -ge "$SENT_PACKETS" ] && break
  fi
  sleep 0.2
done
[ "$ok" = "$SENT_PACKETS" ] || fail "dnsmon_packets_total{result=\"ok\"} = $ok, expected $SENT_PACKETS"
log "counted $ok of $SENT_PACKETS frames after the switch to nobody"

kill -HUP "$DNSMON_PID"
for _ in $(seq 1 50); do
  grep -q "reload: " "$DNSMON_LOG" && break
  sleep 0.1
done
grep -q "info reload: no change applied" "$DNSMON_LOG" ||
  fail "SIGHUP as nobody: no 'reload: no change applied' line"
# A change of daemon.* needs a restart: named in a warning, nothing switches back.
printf '  allow_root: true\n' >>"$WORK/nobody.yaml"
kill -HUP "$DNSMON_PID"
for _ in $(seq 1 50); do
  grep -q "need a restart" "$DNSMON_LOG" && break
  sleep 0.1
done
grep -q "warning reload: these changes need a restart and keep their running values: daemon.allow_root false -> true" \
  "$DNSMON_LOG" || fail "SIGHUP with daemon.allow_root changed: no warning naming it"
threads=$(check_threads "$NOBODY_UID" "$NOBODY_GID") || exit 1
log "SIGHUP re-reads the config as nobody; a change of daemon.allow_root waits for a restart"

stop_dnsmon
[ -s "$STATE" ] || fail "no state file at $STATE after SIGTERM"
owner=$(stat -c %u "$STATE")
[ "$owner" = "$NOBODY_UID" ] || fail "$STATE belongs to uid $owner, expected nobody ($NOBODY_UID)"
[ -e "$EVENTS" ] || fail "no event log at $EVENTS"
log "state file written by nobody ($(stat -c %s "$STATE") bytes); event log present"

# ---- 4: no daemon.user: dnsmon, else nobody --------------------------------------------------
if getent passwd dnsmon >/dev/null; then
  want=dnsmon
else
  want=nobody
fi
start_dnsmon --config "$WORK/default.yaml"
grep -q "running as $want (uid $(id -u "$want"), " "$DNSMON_LOG" ||
  fail "without daemon.user: no 'running as $want' line"
threads=$(check_threads "$(id -u "$want")" "$(id -g "$want")") || exit 1
stop_dnsmon
log "without daemon.user dnsmon runs as $want"

# ---- 5: allow_root keeps root, with a warning --------------------------------------------------
start_dnsmon --config "$WORK/root.yaml"
grep -q "warning running as root (daemon.allow_root: true)" "$DNSMON_LOG" ||
  fail "allow_root: no warning"
uids=$(awk '$1 == "Uid:" { print $3 }' "/proc/$DNSMON_PID/status")
[ "$uids" = 0 ] || fail "allow_root: euid $uids, expected 0"
stop_dnsmon
log "allow_root: true keeps root with a warning"

# ---- 6: a user that does not exist -------------------------------------------------------------
getent passwd dnsmon-no-such-user >/dev/null && skip "a user dnsmon-no-such-user exists"
rc=0
in_b "$DNSMON" -i "$VETH_B" --listen "127.0.0.1:$PORT" --config "$WORK/missing.yaml" \
  >"$WORK/missing.log" 2>&1 || rc=$?
[ "$rc" = 78 ] || { cat "$WORK/missing.log" >&2; fail "a missing daemon.user: exit $rc, expected 78"; }
grep -q "configuration error: $WORK/missing.yaml:4:9: daemon.user: no user \"dnsmon-no-such-user\"" \
  "$WORK/missing.log" || { cat "$WORK/missing.log" >&2; fail "a missing daemon.user: no located error"; }
rc=0
"$DNSMON" --check-config -r "$PCAP" --user dnsmon-no-such-user >"$WORK/check.log" 2>&1 || rc=$?
[ "$rc" = 78 ] || { cat "$WORK/check.log" >&2; fail "--check-config --user missing: exit $rc, expected 78"; }
log "a daemon.user that does not exist: exit 78 with $(grep -o 'daemon.user: no user "[^"]*"' "$WORK/missing.log")"

# ---- 7: started as nobody: nothing to give up --------------------------------------------------
rc=0
setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
  "$DNSMON" -r "$PCAP" --log-level debug --metrics-out "$WORK/state/replay.prom" \
  >"$WORK/nobody.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$WORK/nobody.log" >&2; fail "a replay started as nobody: exit $rc"; }
grep -q "debug running as uid $NOBODY_UID: no root privileges to give up" "$WORK/nobody.log" ||
  { cat "$WORK/nobody.log" >&2; fail "started as nobody: no debug line"; }
grep -q '^dnsmon_packets_total{result="ok"} 2000' "$WORK/state/replay.prom" ||
  fail "the replay as nobody did not count 2000 frames"
log "started as nobody: nothing to give up, the replay counts every frame"

# ---- 8: as the units run it: not root, CAP_NET_RAW as an ambient capability -------------------
# Not through in_b: $! must be dnsmon's pid (ip and setpriv exec it), not a subshell's.
ip netns exec "$NS_B" setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
  --inh-caps=+net_raw --ambient-caps=+net_raw "$DNSMON" -i "$VETH_B" --listen 127.0.0.1:9917 --log-level debug \
  >"$WORK/ambient.log" 2>&1 &
DNSMON_PID=$!
up=0
for _ in $(seq 1 100); do  # up to ~10 s
  kill -0 "$DNSMON_PID" 2>/dev/null || { cat "$WORK/ambient.log" >&2; fail "dnsmon with CAP_NET_RAW exited"; }
  if in_b curl -fsS --max-time 2 http://127.0.0.1:9917/metrics 2>/dev/null |
    grep -q "^dnsmon_capture_up{source=\"$VETH_B\"} 1"; then
    up=1
    break
  fi
  sleep 0.1
done
[ "$up" = 1 ] || { cat "$WORK/ambient.log" >&2; fail "dnsmon as nobody with CAP_NET_RAW: no capture"; }
grep -q "debug running as uid $NOBODY_UID: no root privileges to give up" "$WORK/ambient.log" ||
  fail "as nobody with CAP_NET_RAW: no debug line"
amb=$(awk '$1 == "CapAmb:" { print $2 }' "/proc/$DNSMON_PID/status")
[ "$amb" = 0000000000002000 ] || fail "as nobody with CAP_NET_RAW: CapAmb $amb, expected CAP_NET_RAW kept"
kill -TERM "$DNSMON_PID"
rc=0
wait "$DNSMON_PID" || rc=$?
DNSMON_PID=""
[ "$rc" = 0 ] || fail "as nobody with CAP_NET_RAW: exit $rc after SIGTERM"
log "as the units run it (nobody with CAP_NET_RAW): nothing changed, the capture runs"

log "PASS"
