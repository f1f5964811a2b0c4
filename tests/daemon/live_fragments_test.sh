#!/usr/bin/env bash
# Fragmented answers captured live: a DNS server in namespace A answers every query with about
# 3,060 bytes, which its kernel sends as three IPv4 or three IPv6 fragments over the veth; a
# client in namespace B asks COUNT questions over each family while dnsmon captures on B's end
# with its default filter. Every query and every answer must be counted, every answer reassembled
# and matched to its query, nothing dropped. The client asks from B's own address, so every query
# is on the upstream leg; then a server in B answers a client in A, whose queries go to B's own
# address: the client leg (dnsmon takes the host's addresses, here the namespace's, as the
# server's). Then a port-only filter is given instead: dnsmon must
# warn at startup that it loses fragments.
#
# Environment (set by ctest): DNSMON. Exit 0 pass, 1 fail, 77 skip (no root, no network
# namespaces or veth, no python3).
set -uo pipefail

TEST_NAME=live_fragments_test
NS_PREFIX=dnsmon-frag
NETNS_TOOLS=python3
COUNT=${FRAGMENT_QUERIES:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"

: "${DNSMON:?DNSMON must name the dnsmon binary}"
[ -x "$DNSMON" ] || fail "DNSMON=$DNSMON is not executable"
netns_setup ipv6

start_dnsmon
in_a timeout -k 5 120 python3 "$HERE/lib/big_answers.py" serve 90 198.18.0.1 fd00:d15::1 \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
sleep 0.5
kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; fail "the test server did not start"; }

for server in 198.18.0.1 fd00:d15::1; do
  out=$(in_b timeout -k 5 100 python3 "$HERE/lib/big_answers.py" query "$server" "$COUNT") ||
    fail "the client failed against $server: $out"
  log "client to $server: $out"
  [ "$out" = "${out/answered=$COUNT /}" ] && fail "the client did not get all $COUNT answers from $server: $out"
  largest=${out##*largest=}
  [ "$largest" -gt 1500 ] || fail "answers of $largest bytes would not be fragmented"
done

EXPECTED=$(( 2 * COUNT ))
for _ in $(seq 1 50); do  # up to ~10 s for the last capture batch
  METRICS=$(scrape) || fail "/metrics stopped answering"
  [ "$(sum dnsmon_query_matching_total 'result="matched"')" = "$EXPECTED" ] && break
  sleep 0.2
done
grep -E '^dnsmon_(packets_total|query_matching_total|ip_reassembly_events_total|reassembled_messages_total|messages_by_family_total|capture_dropped_total)' <<<"$METRICS" |
  awk '$2 != 0 { print "  " $0 }'

status=0
check() {  # description actual expected
  if [ "$2" = "$3" ]; then
    log "ok: $1 = $2"
  else
    echo "FAIL: $1 = $2, expected $3" >&2
    status=1
  fi
}
check "queries" "$(sum dnsmon_queries_total)" "$EXPECTED"
check "responses" "$(sum dnsmon_responses_total)" "$EXPECTED"
check "matched queries" "$(sum dnsmon_query_matching_total 'result="matched"')" "$EXPECTED"
check "matched queries on the upstream leg" \
  "$(value dnsmon_query_matching_total 'leg="upstream",result="matched"')" "$EXPECTED"
check "upstream latency histogram count" \
  "$(sum dnsmon_response_latency_seconds_count 'leg="upstream"')" "$EXPECTED"
check "unmatched responses" "$(sum dnsmon_query_matching_total 'result="unmatched_response"')" 0
check "reassembled messages" "$(sum dnsmon_reassembled_messages_total)" "$EXPECTED"
check "reassembled datagrams" "$(value dnsmon_ip_reassembly_events_total 'event="reassembled"')" "$EXPECTED"
check "IPv6 messages" "$(sum dnsmon_messages_by_family_total 'family="ipv6"')" "$EXPECTED"
check "IPv4 messages" "$(sum dnsmon_messages_by_family_total 'family="ipv4"')" "$EXPECTED"
check "fragments dropped" "$(value dnsmon_packets_total 'result="ip_fragment_dropped"')" 0
check "frames dropped" "$(sum dnsmon_capture_dropped_total)" 0
[ "$status" = 0 ] || fail "counts do not match (numbers above)"
grep -q 'legs: server addresses .*198\.18\.0\.2/32.*fd00:d15::2/128' "$DNSMON_LOG" ||
  fail "dnsmon did not take the namespace's own addresses as the server's"

# The other way round: a server in B, a client in A asking B's own address: the client leg.
in_b timeout -k 5 60 python3 "$HERE/lib/big_answers.py" serve 50 198.18.0.2 >"$WORK/server-b.log" 2>&1 &
SERVER_B_PID=$!
sleep 0.5
kill -0 "$SERVER_B_PID" 2>/dev/null || { cat "$WORK/server-b.log" >&2; fail "the test server in B did not start"; }
out=$(in_a timeout -k 5 40 python3 "$HERE/lib/big_answers.py" query 198.18.0.2 "$COUNT") ||
  fail "the client in A failed against 198.18.0.2: $out"
log "client in A to 198.18.0.2: $out"
for _ in $(seq 1 50); do
  METRICS=$(scrape) || fail "/metrics stopped answering"
  [ "$(value dnsmon_query_matching_total 'leg="client",result="matched"')" = "$COUNT" ] && break
  sleep 0.2
done
check "matched queries on the client leg" \
  "$(value dnsmon_query_matching_total 'leg="client",result="matched"')" "$COUNT"
check "client latency histogram count" "$(sum dnsmon_response_latency_seconds_count 'leg="client"')" "$COUNT"
check "matched queries on the upstream leg, unchanged" \
  "$(value dnsmon_query_matching_total 'leg="upstream",result="matched"')" "$EXPECTED"
check "matched queries on the unknown leg" \
  "$(value dnsmon_query_matching_total 'leg="unknown",result="matched"')" 0
[ "$status" = 0 ] || fail "leg counts do not match (numbers above)"
kill "$SERVER_B_PID" 2>/dev/null
wait "$SERVER_B_PID" 2>/dev/null
stop_dnsmon

# A filter that names ports only: the startup warning lists the fragments it loses.
start_dnsmon --filter "udp port 53 or tcp port 53"
grep -q 'capture filter rejects fragments of DNS messages (IPv4 later fragment, IPv6 first fragment' "$DNSMON_LOG" ||
  fail "no startup warning for a filter that loses fragments"
log "ok: a port-only filter is warned about: $(grep -o 'capture filter rejects[^:]*' "$DNSMON_LOG")"
kill -TERM "$DNSMON_PID"
wait "$DNSMON_PID"
DNSMON_PID=""
kill "$SERVER_PID" 2>/dev/null
log "PASS"
