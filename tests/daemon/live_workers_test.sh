#!/usr/bin/env bash
# Live capture per worker, on a real kernel veth pair between two private network namespaces
# (lib/netns.sh): each capture thread feeds one worker (several workers: one member each of a
# PACKET_FANOUT group on the interface) and waits for it when its ring is full, so a stall loses
# only what the kernel buffer cannot hold, counted as kernel drops.
#
# 1. A stall, with --workers 1 and with --workers 2: tcpreplay sends STOP_PACKETS generated DNS
#    frames (some 802.1Q-tagged, some IPv6) at STOP_PPS; 3 s in, dnsmon is stopped (SIGSTOP) for
#    STALL_SECONDS, then continued. Every frame must be counted, no ring drop, and no kernel drop
#    either (a kernel drop fails the test as such, never as a ring drop): the kernel buffer must
#    hold the stall. What it holds: libpcap makes the 64 MiB a TPACKET_V3 ring of 256 blocks of
#    256 KiB, and the kernel hands a block over when it is full (about 996 of these frames, 263
#    bytes each in the ring) or when the block timeout expires, which libpcap sets to the read
#    timeout (50 ms). Below about 20,000 frames/s per handle every block goes on the timeout, so
#    the ring holds 256 x 50 ms = 12.8 s of traffic whatever the rate (750 frames a block with one
#    worker, 375 with two). And once fewer than a quarter of the blocks are free, the kernel's
#    lockless room check (tpacket_rcv) drops a frame that arrives while the timer is handing the
#    current block over: a 10 s stall fills 200 blocks and can lose a frame or two that way with
#    56 blocks still free. The 7 s stall fills 140 blocks per handle (55 %), which leaves 52
#    blocks (2.6 s) for the Debug build's single worker to be behind when the stall starts.
#    Every query meets its response (matched = the sender's queries, no unmatched
#    response, no timeout), so the fanout kept both directions on one worker and the workers'
#    packet time did not run ahead of the held frames; with two workers, both got frames (the
#    per-worker counts that dnsmon logs at exit).
# 2. --workers 2 with fragmented answers (lib/big_answers.py, as live_fragments_test.sh): every
#    fragment meets its datagram on one worker: all reassembled and matched.
#
# Environment (set by ctest): DNSMON, GEN_PCAP. STOP_PACKETS (225000), STOP_PPS (15000),
# STALL_SECONDS (7).
# Exit 0 pass, 1 fail, 77 skip (no root, no network namespaces or veth, no tcpreplay or python3).
set -uo pipefail

TEST_NAME=live_workers_test
NS_PREFIX=dnsmon-wrk
NETNS_TOOLS="tcpreplay python3"
PACKETS=${STOP_PACKETS:-225000}
PPS=${STOP_PPS:-15000}
STALL=${STALL_SECONDS:-7}
FRAGMENT_QUERIES=50
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"

need_dnsmon_and_gen_pcap
netns_setup ipv6

PCAP="$WORK/dns.pcap"
"$GEN_PCAP" --out "$PCAP" --packets "$PACKETS" --truth "$WORK/truth.json" >"$WORK/gen.log" 2>&1 ||
  { cat "$WORK/gen.log" >&2; fail "gen_pcap failed"; }
QUERIES=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["messages"]["queries"])' "$WORK/truth.json")
log "$(tail -n 1 "$WORK/gen.log"); $QUERIES queries"

status=0
check() {  # description actual expected
  if [ "$2" = "$3" ]; then
    log "ok: $1 = $2"
  else
    echo "$TEST_NAME: FAIL: $1 = $2, expected $3" >&2
    status=1
  fi
}

# The per-worker frame counts that dnsmon logs when it stops with several workers.
per_worker() { sed -n 's/.*frames per worker: //p' "$DNSMON_LOG" | tail -n 1; }

check_workers_fed() {  # workers
  local counts n
  [ "$1" -gt 1 ] || return 0
  counts=$(per_worker)
  log "frames per worker: ${counts:-none logged}"
  n=0
  for c in $counts; do
    [ "$c" -gt 0 ] && n=$(( n + 1 ))
  done
  check "workers that received frames" "$n" "$1"
}

stall() {  # workers
  local workers=$1 budget=$(( PACKETS / PPS + 30 )) sender ok
  start_dnsmon --workers "$workers"
  timeout -k 5 "$budget" ip netns exec "$NS_A" tcpreplay --intf1="$VETH_A" --pps="$PPS" "$PCAP" \
    >"$WORK/tcpreplay.log" 2>&1 &
  sender=$!
  sleep 3
  kill -STOP "$DNSMON_PID" || fail "cannot stop dnsmon"
  sleep "$STALL"
  kill -CONT "$DNSMON_PID" || fail "cannot continue dnsmon"
  log "--workers $workers: dnsmon stopped for $STALL s while tcpreplay sent at $PPS pps"
  wait "$sender" || { cat "$WORK/tcpreplay.log" >&2; fail "tcpreplay failed or did not finish within $budget s"; }
  grep -E 'Actual:' "$WORK/tcpreplay.log" | sed 's/^ */  tcpreplay: /'
  sent=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$WORK/tcpreplay.log")
  [ "$sent" = "$PACKETS" ] || fail "tcpreplay sent ${sent:-?} packets, not $PACKETS"
  for _ in $(seq 1 100); do  # up to ~20 s for the backlog
    if METRICS=$(scrape); then
      ok=$(value dnsmon_packets_total 'result="ok"')
      [ "$ok" != missing ] && [ "$ok" -ge "$PACKETS" ] && break
      # every frame accounted for, counted or dropped: no point waiting longer
      [ "$(( $(sum dnsmon_packets_total) + $(sum dnsmon_capture_dropped_total) ))" -ge "$PACKETS" ] && break
    fi
    sleep 0.2
  done
  sleep 0.3
  METRICS=$(scrape) || fail "/metrics stopped answering"
  local kernel ring
  kernel=$(value dnsmon_capture_dropped_total "source=\"$VETH_B\".*where=\"kernel\"")
  ring=$(value dnsmon_capture_dropped_total "source=\"$VETH_B\".*where=\"ring\"")
  log "--workers $workers: received=$(value dnsmon_capture_received_total "source=\"$VETH_B\"")" \
      "ok=$(value dnsmon_packets_total 'result="ok"') dropped{kernel=$kernel" \
      "interface=$(value dnsmon_capture_dropped_total "source=\"$VETH_B\".*where=\"interface\"") ring=$ring}"
  check "--workers $workers: ring drops" "$ring" 0
  check "--workers $workers: kernel drops (the 64 MiB kernel buffer should hold a $STALL s stall)" "$kernel" 0
  check "--workers $workers: frames received" "$(value dnsmon_capture_received_total "source=\"$VETH_B\"")" \
    "$(( PACKETS - kernel ))"
  check "--workers $workers: frames decoded" "$(value dnsmon_packets_total 'result="ok"')" "$(( PACKETS - kernel ))"
  check "--workers $workers: queries matched" "$(sum dnsmon_query_matching_total 'result="matched"')" "$QUERIES"
  check "--workers $workers: unmatched responses" \
    "$(sum dnsmon_query_matching_total 'result="unmatched_response"')" 0
  # The frames the kernel held carry their own times: no query may time out for the stall.
  check "--workers $workers: query timeouts" "$(sum dnsmon_query_matching_total 'result="timeout"')" 0
  stop_dnsmon >"$WORK/stop.log" || { cat "$WORK/stop.log"; fail "dnsmon did not stop cleanly"; }
  tail -n 3 "$WORK/stop.log"
  check_workers_fed "$workers"
}

stall 1
stall 2

# ---- 2. fragments meet their datagram with two workers ---------------------------------------
# The server answers on two addresses per family: with the client's address, .1 and ::1 hash to
# one member of the fanout group and .3 and ::3 to the other, so both workers reassemble.
ip -n "$NS_A" addr add 198.18.0.3/24 dev "$VETH_A" || fail "cannot add 198.18.0.3 in $NS_A"
ip -n "$NS_A" addr add fd00:d15::3/64 dev "$VETH_A" nodad || fail "cannot add fd00:d15::3 in $NS_A"
start_dnsmon --workers 2
in_a timeout -k 5 60 python3 "$HERE/lib/big_answers.py" serve 50 198.18.0.1 198.18.0.3 \
  fd00:d15::1 fd00:d15::3 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
sleep 0.5
kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "the test server did not start"; }
SERVERS="198.18.0.1 198.18.0.3 fd00:d15::1 fd00:d15::3"
for server in $SERVERS; do
  out=$(in_b timeout -k 5 40 python3 "$HERE/lib/big_answers.py" query "$server" "$FRAGMENT_QUERIES") ||
    fail "the client failed against $server: $out"
  log "client to $server: $out"
  [ "$out" = "${out/answered=$FRAGMENT_QUERIES /}" ] && fail "the client did not get all answers from $server: $out"
done
EXPECTED=$(( 4 * FRAGMENT_QUERIES ))
for _ in $(seq 1 50); do
  METRICS=$(scrape) || fail "/metrics stopped answering"
  [ "$(sum dnsmon_query_matching_total 'result="matched"')" = "$EXPECTED" ] && break
  sleep 0.2
done
check "--workers 2, fragmented answers: queries" "$(sum dnsmon_queries_total)" "$EXPECTED"
# The client in B asks from B's own address: every query is on the upstream leg.
check "--workers 2, fragmented answers: matched on the upstream leg" \
  "$(value dnsmon_query_matching_total 'leg="upstream",result="matched"')" "$EXPECTED"
check "--workers 2, fragmented answers: matched on any leg" \
  "$(sum dnsmon_query_matching_total 'result="matched"')" "$EXPECTED"
check "--workers 2, fragmented answers: unmatched responses" \
  "$(sum dnsmon_query_matching_total 'result="unmatched_response"')" 0
check "--workers 2, fragmented answers: reassembled datagrams" \
  "$(value dnsmon_ip_reassembly_events_total 'event="reassembled"')" "$EXPECTED"
check "--workers 2, fragmented answers: fragments dropped" \
  "$(value dnsmon_packets_total 'result="ip_fragment_dropped"')" 0
check "--workers 2, fragmented answers: frames dropped" "$(sum dnsmon_capture_dropped_total)" 0
stop_dnsmon >"$WORK/stop.log" || { cat "$WORK/stop.log"; fail "dnsmon did not stop cleanly"; }
check_workers_fed 2
kill "$SERVER_PID" 2>/dev/null

[ "$status" = 0 ] || fail "counts do not match (numbers above)"
log "PASS"
