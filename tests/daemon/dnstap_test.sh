#!/usr/bin/env bash
# dnstap from a real resolver: Debian's unbound (built with dnstap) answers a known mix of
# queries from local zones on 127.0.0.1 (no recursion, nothing leaves the host) and logs every
# client query and response over dnstap to the socket dnsmon created with --dnstap-socket.
#
#  1. dnsmon creates two sockets (--dnstap-socket twice) with capture.dnstap_socket_mode and
#     _group, replacing a stale socket file; unbound connects to the first
#     (dnsmon_dnstap_open_connections 1), the second has its own series and no connection.
#  2. A client sends 100 queries over UDP, 8 over TCP and 6 over TLS (DNS over TLS, unbound's
#     tls-port with a throw-away self-signed certificate), one at a time, each waiting for its
#     answer: A with an answer, NXDOMAIN names, AAAA and MX without data (NODATA), REFUSED names.
#  3. dnsmon's counts equal unbound's own statistics (`unbound-control stats_noreset` with
#     extended-statistics) exactly: queries in all and by type, TCP queries (unbound counts its
#     TLS queries among them, and its dnstap of 1.17 sends them as TCP: dnsmon's tcp plus dot
#     queries), responses by rcode,
#     NODATA; every query matched with its response on the client leg (the latency comes from
#     unbound's query and response times), with 2 workers, so each query and its response reach
#     the same one; no frame malformed or dropped.
#  4. SIGTERM: dnsmon exits 0 and removes both sockets.
# Started as root, both drop privileges: dnsmon to nobody (daemon.user), unbound to nobody, which
# reaches the socket (root's, mode 0660) through its group, nogroup.
#
# Env (set by ctest): DNSMON. Exit 0 pass, 1 fail, 77 skip (no unbound with dnstap, no python3).
set -uo pipefail
: "${DNSMON:?set DNSMON to the dnsmon binary}"

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/checks.sh
source "$HERE/lib/checks.sh"

# Every verdict counts as a check.
ok() {
  checks=$((checks + 1))
  echo "ok: $*"
}
fail() {
  checks=$((checks + 1))
  failures=$((failures + 1))
  echo "FAIL: $*"
}
skip() {
  echo "SKIP: $*"
  exit 77
}
for tool in unbound unbound-control python3 curl openssl; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (Debian: apt-get install unbound python3 curl openssl)"
done
unbound -V 2>/dev/null | grep -q -- '--enable-dnstap' || skip "this unbound is built without dnstap"

dnsmon_pid=""
unbound_pid=""
cleanup() {
  for pid in "$unbound_pid" "$dnsmon_pid"; do
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
}
checks_setup dnstap
run_dir="$tmp/run"
mkdir "$run_dir"
sock="$run_dir/dnstap.sock"
idle_sock="$run_dir/idle.sock"

root=0
dnsmon_user=""
unbound_user=""
group=""
if [[ $(id -u) == 0 ]] && getent passwd nobody >/dev/null && getent group nogroup >/dev/null &&
  [[ $(id -gn nobody) == nogroup ]]; then
  root=1
  dnsmon_user="  user: nobody"
  unbound_user=nobody
  group=nogroup
  # nobody must reach the socket and unbound's files through $tmp; the socket's directory is
  # nobody's, as a RuntimeDirectory= is the service's, so dnsmon can remove the socket at exit.
  chmod 0755 "$tmp"
  chown nobody "$run_dir"
  if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$run_dir" 2>/dev/null; then
    skip "nobody cannot reach $run_dir (a parent of ${TMPDIR:-/tmp} is closed to others)"
  fi
fi

# A stale socket left by an earlier run: replaced at start.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$sock"

read -r port tls_port < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=unbound.test \
  -keyout "$tmp/tls.key" -out "$tmp/tls.pem" >/dev/null 2>&1 || skip "openssl cannot make a certificate"
chmod 0644 "$tmp/tls.key" "$tmp/tls.pem"  # unbound reads them after it has become nobody
cat >"$tmp/dnsmon.yaml" <<EOF
capture:
  dnstap_socket_mode: "0660"
  dnstap_socket_group: "$group"
daemon:
$([[ -n $dnsmon_user ]] && echo "$dnsmon_user" || echo "  allow_root: false")
EOF
chmod 0644 "$tmp/dnsmon.yaml"

: >"$tmp/dnsmon.log"
"$DNSMON" --config "$tmp/dnsmon.yaml" --dnstap-socket "$sock" --dnstap-socket "$idle_sock" \
  --listen 127.0.0.1:0 --workers 2 \
  >"$tmp/dnsmon.out" 2>"$tmp/dnsmon.log" &
dnsmon_pid=$!
wait_for_url "$tmp/dnsmon.log" 30
[[ -n $url ]] || { cat "$tmp/dnsmon.log"; fail "dnsmon does not serve /metrics"; finish; exit 1; }

mode=$(stat -c '%a %G' "$sock" 2>/dev/null)
want_group=${group:-$(id -gn)}
if [[ -S $sock && $mode == "660 $want_group" ]]; then
  ok "the stale socket file is replaced by dnsmon's socket, mode 0660, group $want_group"
else
  fail "the dnstap socket: expected a socket with mode 660, group $want_group; got '$mode'"
fi

cat >"$tmp/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$port
  interface: 127.0.0.1@$tls_port
  port: $port
  tls-port: $tls_port
  tls-service-key: "$tmp/tls.key"
  tls-service-pem: "$tmp/tls.pem"
  do-ip6: no
  do-daemonize: no
  chroot: ""
  username: "$unbound_user"
  directory: "$tmp"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  extended-statistics: yes
  statistics-cumulative: yes
  access-control: 127.0.0.0/8 allow
  local-zone: "example.test." static
  local-data: "example.test. 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300"
  local-data: "www.example.test. 300 IN A 192.0.2.1"
  local-zone: "refused.test." refuse
remote-control:
  control-enable: yes
  control-interface: "$tmp/control.sock"
dnstap:
  dnstap-enable: yes
  dnstap-socket-path: "$sock"
  dnstap-send-identity: yes
  dnstap-send-version: yes
  dnstap-log-client-query-messages: yes
  dnstap-log-client-response-messages: yes
EOF
chmod 0644 "$tmp/unbound.conf"
timeout 300 unbound -d -c "$tmp/unbound.conf" >"$tmp/unbound.log" 2>&1 &
unbound_pid=$!

# metric NAME_AND_LABELS: its value in the latest scrape ($tmp/metrics), 0 when absent.
scrape() { curl -s --max-time 5 "$url" >"$tmp/metrics"; }
metric() {
  awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$tmp/metrics"
}
src="source=\"dnstap:$sock\""

connected=0
for _ in $(seq 1 100); do
  scrape
  if [[ $(metric "dnsmon_dnstap_open_connections{$src}") == 1 ]]; then
    connected=1
    break
  fi
  sleep 0.1
done
if ((connected)); then
  ok "unbound${unbound_user:+ (as $unbound_user)} connected to the dnstap socket"
else
  cat "$tmp/unbound.log"
  fail "unbound did not connect to the dnstap socket within 10 s"
  finish
  exit 1
fi

# The client: one query at a time, each waiting (at most 2 s) for its answer; the run fails if
# any goes unanswered, since unbound's statistics and dnsmon's must see the same exchanges.
python3 - "$port" "$tls_port" >"$tmp/client.log" 2>&1 <<'PY' || { cat "$tmp/client.log"; fail "the client failed"; }
import socket, ssl, struct, sys

port, tls_port = int(sys.argv[1]), int(sys.argv[2])


def query(ident, name, qtype):
    q = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def udp(ident, name, qtype):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(query(ident, name, qtype), ("127.0.0.1", port))
    while True:
        data, _ = s.recvfrom(65535)
        if data[:2] == struct.pack(">H", ident):
            return data[3] & 0xF


def tcp(ident, name, qtype, tls=False):
    s = socket.create_connection(("127.0.0.1", tls_port if tls else port), timeout=2)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # unbound's throw-away certificate
        s = context.wrap_socket(s)
    q = query(ident, name, qtype)
    s.sendall(struct.pack(">H", len(q)) + q)
    data = b""
    while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
        chunk = s.recv(65535)
        if not chunk:
            raise RuntimeError("TCP connection closed early")
        data += chunk
    s.close()
    return data[5] & 0xF


A, MX, AAAA = 1, 15, 28
mix = ([("udp", "www.example.test", A)] * 50 +
       [("udp", "nx%d.example.test" % i, A) for i in range(20)] +
       [("udp", "www.example.test", AAAA)] * 12 +
       [("udp", "www.example.test", MX)] * 8 +
       [("udp", "host%d.refused.test" % i, A) for i in range(10)] +
       [("tcp", "www.example.test", A)] * 5 +
       [("tcp", "nx-tcp.example.test", A)] * 2 +
       [("tcp", "www.example.test", AAAA)] * 1 +
       [("tls", "www.example.test", A)] * 3 +
       [("tls", "nx-tls.example.test", A)] * 2 +
       [("tls", "www.example.test", MX)] * 1)
rcodes = {}
for i, (transport, name, qtype) in enumerate(mix):
    ident = 0x1000 + i
    if transport == "udp":
        rcode = udp(ident, name, qtype)
    else:
        rcode = tcp(ident, name, qtype, tls=transport == "tls")
    rcodes[rcode] = rcodes.get(rcode, 0) + 1
print("answered %d queries, rcodes %s" % (len(mix), sorted(rcodes.items())))
PY
cat "$tmp/client.log"

stats=$(timeout 10 unbound-control -c "$tmp/unbound.conf" stats_noreset 2>&1) ||
  { echo "$stats"; fail "unbound-control stats_noreset failed"; }
echo "$stats" >"$tmp/unbound.stats"
stat_of() { awk -F= -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$tmp/unbound.stats"; }
total=$(stat_of total.num.queries)

# unbound hands its dnstap messages to a thread of its own that writes them in batches: wait
# (at most 15 s) until dnsmon has read a query and a response for every query unbound counted.
for _ in $(seq 1 150); do
  scrape
  [[ $(metric "dnsmon_dnstap_frames_total{$src,result=\"message\"}") -ge $((2 * total)) ]] && break
  sleep 0.1
done
sleep 0.5  # the workers' last frames reach the counters
scrape

check_equal() {  # WHAT DNSMON UNBOUND
  if [[ $2 == "$3" ]]; then
    ok "$1: $2"
  else
    fail "$1: dnsmon $2, unbound $3"
  fi
}
sum_of() { awk -v p="$1" 'index($1, p) == 1 { s += $2 } END { print s + 0 }' "$tmp/metrics"; }

[[ $total -ge 114 ]] || fail "unbound counted $total queries, expected at least the 114 sent"
check_equal "queries" "$(sum_of 'dnsmon_queries_total{')" "$total"
for t in A AAAA MX; do
  check_equal "queries of type $t" "$(metric "dnsmon_queries_total{qtype=\"$t\"}")" \
    "$(stat_of "num.query.type.$t")"
done
# unbound counts a query over TLS in num.query.tcp and num.query.tls.
check_equal "queries over TCP" \
  "$(($(metric 'dnsmon_messages_total{protocol="dns",transport="tcp",direction="query"}') +
    $(metric 'dnsmon_messages_total{protocol="dns",transport="dot",direction="query"}')))" \
  "$(stat_of num.query.tcp)"
[[ $(stat_of num.query.tls) -ge 6 ]] || fail "unbound counted $(stat_of num.query.tls) queries over TLS, expected the 6 sent"
answers=0
for rc in NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMPL REFUSED; do
  answers=$((answers + $(stat_of "num.answer.rcode.$rc")))
done
check_equal "responses" "$(sum_of 'dnsmon_responses_total{')" "$answers"
for rc in NOERROR NXDOMAIN REFUSED SERVFAIL FORMERR; do
  check_equal "responses $rc" "$(metric "dnsmon_responses_total{rcode=\"$rc\"}")" \
    "$(stat_of "num.answer.rcode.$rc")"
done
check_equal "responses NOTIMP" "$(metric 'dnsmon_responses_total{rcode="NOTIMP"}')" \
  "$(stat_of num.answer.rcode.NOTIMPL)"
check_equal "NODATA responses" "$(sum_of 'dnsmon_responses_nodata_total{')" \
  "$(stat_of num.answer.rcode.nodata)"
check_equal "queries matched on the client leg, with unbound's latency" \
  "$(metric 'dnsmon_query_matching_total{leg="client",result="matched"}')" "$total"
check_equal "latency observations" "$(sum_of 'dnsmon_response_latency_seconds_count{leg="client"')" \
  "$total"
check_equal "malformed dnstap frames" \
  "$(metric "dnsmon_dnstap_frames_total{$src,result=\"malformed\"}")" 0
check_equal "messages dropped for a full ring" \
  "$(metric "dnsmon_capture_dropped_total{$src,where=\"ring\"}")" 0
idle="source=\"dnstap:$idle_sock\""
if grep -q "^dnsmon_dnstap_open_connections{$idle} 0" "$tmp/metrics" &&
  grep -q "^dnsmon_capture_up{$idle} 1" "$tmp/metrics"; then
  ok "the second socket is up, with its own series and no connection"
else
  fail "the second socket's series: $(grep -F "$idle" "$tmp/metrics" | tr '\n' ' ')"
fi

if ((root)); then
  uid=$(awk '/^Uid:/ { print $2 }' "/proc/$dnsmon_pid/status" 2>/dev/null)
  check_equal "dnsmon's user once running" "$uid" "$(id -u nobody)"
fi

kill -TERM "$unbound_pid" 2>/dev/null
wait "$unbound_pid" 2>/dev/null
unbound_pid=""
kill -TERM "$dnsmon_pid"
status=0
for _ in $(seq 1 100); do
  kill -0 "$dnsmon_pid" 2>/dev/null || break
  sleep 0.1
done
wait "$dnsmon_pid" || status=$?
dnsmon_pid=""
check_equal "dnsmon's exit status after SIGTERM" "$status" 0
if [[ -e $sock || -e $idle_sock ]]; then
  fail "a dnstap socket is still there after the exit: $(ls "$run_dir")"
else
  ok "both dnstap sockets are removed at exit"
fi
((failures == 0)) || { echo "--- dnsmon log"; cat "$tmp/dnsmon.log"; echo "--- unbound log"; tail -20 "$tmp/unbound.log"; }
finish
