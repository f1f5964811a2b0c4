#!/usr/bin/env bash
# Live capture end to end on a real kernel veth pair between two private network namespaces:
#
#   ns A: VETH_A 198.18.0.1/24  <--veth-->  ns B: VETH_B 198.18.0.2/24, dnsmon -i VETH_B
#
# tcpreplay sends 100000 generated DNS frames (some 802.1Q-tagged, some IPv6) from A at
# 50000 pps; dnsmon (inside B, /metrics on B's own loopback) must decode exactly 100000 of them
# with every dropped counter at 0, and stop with exit status 0 on SIGTERM.
#
# The namespaces and helpers are lib/netns.sh's: nothing leaves them.
#
# Environment (set by ctest): DNSMON, GEN_PCAP. Exit 0 pass, 1 fail, 77 skip (no root, no
# network namespaces or veth, no tcpreplay).
# For measurements (docs/performance.md), not used by ctest: LIVE_PACKETS (100000), LIVE_PPS
# (50000, or "max" for tcpreplay --topspeed), LIVE_SENDERS (1; that many tcpreplay processes send
# the file at once, each at LIVE_PPS), LIVE_PROFILE (simple, or bench for the benchmark mix, whose
# TCP handshakes count as frames that are not "ok": the check is then on every frame accounted
# for), LIVE_WORKERS (1; dnsmon's --workers).
set -uo pipefail

TEST_NAME=live_veth_test
NS_PREFIX=dnsmon-live
NETNS_TOOLS=tcpreplay

PACKETS=${LIVE_PACKETS:-100000}
PPS=${LIVE_PPS:-50000}
SENDERS=${LIVE_SENDERS:-1}
PROFILE=${LIVE_PROFILE:-simple}
WORKERS=${LIVE_WORKERS:-1}
EXPECTED=$(( PACKETS * SENDERS ))

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"

need_dnsmon_and_gen_pcap
netns_setup

PCAP="$WORK/dns.pcap"

"$GEN_PCAP" --profile "$PROFILE" --out "$PCAP" --packets "$PACKETS" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen_pcap failed"; }
log "$(tail -n 1 "$WORK/gen.log")"

# ---- dnsmon in namespace B --------------------------------------------------------------------
dnsmon_args=(--workers "$WORKERS")
if (( SENDERS > 1 )); then
  # Several senders replay one file at once: the same frames arrive together, which the
  # duplicate filter would take for a tap's copies. Every copy is counted here.
  printf 'capture:\n  dedup: false\n' >"$WORK/dedup-off.yaml"
  dnsmon_args+=(--config "$WORK/dedup-off.yaml")
fi
start_dnsmon "${dnsmon_args[@]}"
before_ok=$(value dnsmon_packets_total 'result="ok"')
[ "$before_ok" = 0 ] || fail "dnsmon_packets_total{result=\"ok\"} is $before_ok before anything was sent"

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
stop_dnsmon
log "PASS"
