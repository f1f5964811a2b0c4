#!/usr/bin/env bash
# The dnsmon command line as a user meets it: help and version, usage errors (exit 2, a malformed
# --listen among them), config errors with FILE:LINE:COL and the key path (exit 78), --check-config,
# --print-defaults, and runtime failures (exit 1) that say what went wrong: a missing capture file,
# a metrics port already in use, an address that is not local, an interface that does not exist.
#
# Env (set by ctest): DNSMON (the binary), GEN_PCAP (the capture generator), DNSMON_SOURCE_DIR.
set -euo pipefail

: "${DNSMON:?set DNSMON to the dnsmon binary}"
: "${GEN_PCAP:?set GEN_PCAP to the gen_pcap tool}"
: "${DNSMON_SOURCE_DIR:?set DNSMON_SOURCE_DIR to the repository root}"

# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh"
checks_setup cli
listener_pid=""
cleanup() {
  if [[ -n $listener_pid ]]; then
    kill "$listener_pid" 2>/dev/null || true
    wait "$listener_pid" 2>/dev/null || true
  fi
}

# --- help, version, usage errors -------------------------------------------------------------
run --help
expect "--help exits 0 and documents -i and -r" 0 \
  stdout "Usage: dnsmon" stdout "-i,--interface" stdout "-r,--read" stdout "--config"
[[ -z $err ]] || fail "--help wrote to stderr: $err"

run --version
expect "--version exits 0" 0 stdout "dnsmon "
[[ $out =~ ^dnsmon\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version printed '$out', not 'dnsmon X.Y.Z'"
version=$out
run -V
expect "-V prints the same version" 0 stdout "$version"

run --no-such-flag
expect "an unknown flag exits 2 with a message on stderr" 2 \
  stderr "--no-such-flag" stderr "Run with --help for usage."
[[ -z $out ]] || fail "an unknown flag wrote to stdout: $out"

run --workers 0
expect "--workers 0 is a usage error" 2 stderr "--workers"

run -i eth0 -r "$tmp/a.pcap"
expect "-i and -r together are refused" 78 stderr "cannot be mixed"

# --listen takes one IPv4 address or bracketed IPv6 address and a port, nothing else: a usage error.
for bad in 127.0.0.1 "127.0.0.1:9941,0.0.0.0:9942" "[::1]" "1.2.3.4:99999" "host:abc" \
  "localhost:9917" "::1:9917" "127.0.0.1:"; do
  run --listen "$bad" --check-config
  expect "--listen $bad is a usage error" 2 \
    stderr "--listen: expected ADDRESS:PORT such as 127.0.0.1:9917 or [::1]:9917, got \"$bad\": " \
    stderr "Run with --help for usage."
done
run --listen "127.0.0.1:9941,0.0.0.0:9942"
expect "--listen with a list names the problem" 2 stderr "one address and port only"
run --listen "1.2.3.4:99999"
expect "--listen with a bad port names the problem" 2 \
  stderr "the port must be a number from 0 to 65535"
run --listen "[::1]:9917" --check-config
expect "--listen [::1]:9917 is accepted" 0 stdout "configuration OK"

# --- config files --------------------------------------------------------------------------
cfg=$tmp/dnsmon.yaml

printf 'capture:\n  snaplen: 512\n  snapln: 256\n' >"$cfg"
run --config "$cfg"
expect "an unknown nested key exits 78 with file:line:col and key path" 78 \
  stderr "$cfg:3:3: capture.snapln: unknown key"

printf 'log:\n  level: info\nexport:\n  listen: "127.0.0.1:9917"\n' >"$cfg"
run --config "$cfg" --check-config
expect "an unknown top-level key exits 78 even with --check-config" 78 \
  stderr "$cfg:3:1: export: unknown key"

printf '# comment\ncapture:\n  snaplen: big\n' >"$cfg"
run --config "$cfg"
expect "a wrong type exits 78 with file:line:col and key path" 78 \
  stderr "$cfg:3:12: capture.snaplen: expected an integer from 64 to 65535, got \"big\""

printf 'capture:\n  promiscuous: [true]\n' >"$cfg"
run --config "$cfg"
expect "a list where a boolean belongs exits 78" 78 \
  stderr "$cfg:2:16: capture.promiscuous: expected true or false"

printf 'parser:\n  dns_ports: [53, 70000]\n' >"$cfg"
run --config "$cfg"
expect "an out-of-range list element exits 78 with its index" 78 \
  stderr "$cfg:2:19: parser.dns_ports[1]: out of range"

printf 'capture:\n  snaplen: 512\n    filter: udp\n' >"$cfg"
run --config "$cfg"
expect "a YAML syntax error exits 78 with its line and column" 78 \
  stderr "$cfg:3:11:" stderr "not valid YAML"

run --config "$tmp/missing.yaml"
expect "a missing config file exits 78 with the reason" 78 \
  stderr "$tmp/missing.yaml: cannot open the config file: No such file or directory"

printf 'log:\n  level: info\nexporter:\n  listen: "127.0.0.1:9941,0.0.0.0:9942"\n' >"$cfg"
run --config "$cfg" --check-config
expect "a listen list in the config file exits 78 with file:line:col" 78 \
  stderr "$cfg:4:11: exporter.listen: expected ADDRESS:PORT" stderr "one address and port only"

printf 'exporter:\n  listen: "[::1]"\n' >"$cfg"
run --config "$cfg" --check-config
expect "a listen address without a port in the config file exits 78" 78 \
  stderr "$cfg:2:11: exporter.listen: expected ADDRESS:PORT"

printf 'exporter:\n  listen: "localhost:9917"\n' >"$cfg"
run --config "$cfg" --check-config
expect "a host name in exporter.listen exits 78" 78 \
  stderr "$cfg:2:11: exporter.listen:" stderr "host names are not accepted"

printf 'capture:\n  snaplen: 1500\n  workers: 2\nexporter:\n  listen: "127.0.0.1:0"\n' >"$cfg"
run --check-config --config "$cfg" -i lo
expect "--check-config on a good file with -i exits 0" 0 stdout "configuration OK: $cfg"

run --check-config --config "$DNSMON_SOURCE_DIR/systemd/dnsmon.yaml" -i lo
expect "--check-config accepts the shipped systemd/dnsmon.yaml with -i" 0 stdout "configuration OK"

# --check-config judges the file with the flags given with it, as a start would.
run --check-config --config "$DNSMON_SOURCE_DIR/systemd/dnsmon.yaml"
expect "--check-config refuses a file with no interface and no -i or -r, as the start does" 78 \
  stderr "nothing to capture"
run --config "$DNSMON_SOURCE_DIR/systemd/dnsmon.yaml"
expect "a start with a file and nothing to capture exits 78" 78 stderr "nothing to capture"
[[ $err != *"analytics:"* ]] || fail "a failing start logs analytics info lines before its error: $err"
run --check-config --config "$DNSMON_SOURCE_DIR/systemd/dnsmon.yaml" -r "$tmp/not-read-by-a-check.pcap"
expect "--check-config with -r accepts the file (inputs are not opened by a check)" 0 \
  stdout "configuration OK"

: >"$cfg"
run --check-config --config "$cfg" -i lo
expect "--check-config on an empty file with -i exits 0" 0 stdout "configuration OK"

printf 'analytics:\n  public_suffix_list: %s\n' "$tmp/no-such-list.dat" >"$cfg"
run --check-config --config "$cfg" -i lo
expect "--check-config reports a public suffix list that cannot be loaded at its key" 78 \
  stderr "$cfg:2:23: analytics.public_suffix_list: cannot load the public suffix list"
[[ $err != *"analytics.public_suffix_list: "*"analytics.public_suffix_list: "* ]] ||
  fail "the public suffix list error is reported twice: $err"

run --print-defaults
expect "--print-defaults prints every key at its default" 0 \
  stdout "snaplen: 4096" stdout "windows: [1m, 5m, 1h]" stdout "level: info"
printf '%s\n' "$out" >"$cfg"
run --check-config --config "$cfg" -i lo
expect "--check-config accepts the printed defaults with -i" 0 stdout "configuration OK: $cfg"

# --- runtime failures ----------------------------------------------------------------------
capture=$tmp/small.pcap
if ! "$GEN_PCAP" --out "$capture" --packets 100 >"$tmp/gen_pcap.log" 2>&1; then
  cat "$tmp/gen_pcap.log"
  echo "FAIL: gen_pcap could not write the test capture"
  exit 1
fi

run -r "$capture"
expect "-r on a small capture exits 0" 0 stderr "100 frames captured"

# A long replay shows its progress: a periodic log line with the share read and the time left,
# and on a terminal a progress line rewritten every second. 30,000 frames paced at 10,000/s of
# packet time take 3 s; the file is 3 MiB, read 512 KiB at a time.
paced=$tmp/paced.pcap
"$GEN_PCAP" --out "$paced" --packets 30000 --rate 10000 >"$tmp/gen_pcap.log" 2>&1 ||
  fail "gen_pcap could not write the paced capture"
printf 'log:\n  stats_interval_s: 1\n' >"$cfg"
run -r "$paced" --replay-speed 1 --config "$cfg"
expect "a paced replay logs its progress every stats interval" 0 \
  stderr "% of 2.9 MiB read, ETA" stderr "final: 30000 frames captured"
if command -v script >/dev/null; then
  rc=0
  timeout 30 script -qec "$DNSMON -r $paced --replay-speed 1" /dev/null >"$tmp/tty" 2>&1 || rc=$?
  checks=$((checks + 1))
  if [[ $rc == 0 ]] && tr '\r' '\n' <"$tmp/tty" | grep -aq 'replay: [0-9]* frames, [0-9]* frames/s, [0-9]* % of 2.9 MiB read, ETA'; then
    echo "ok: on a terminal a replay shows a progress line"
  else
    fail "no progress line on a terminal (exit $rc): $(tr '\r' '\n' <"$tmp/tty" | head -5)"
  fi
fi

run -r /nonexistent.pcap
expect "-r on a missing file exits 1 with a clear message" 1 \
  stderr "cannot read capture file /nonexistent.pcap" stderr "No such file or directory"

run -i nonexistent0
expect "-i on a missing interface exits 1 with a clear message" 1 \
  stderr "cannot capture on nonexistent0"

# A port that is already taken: a listener on an ephemeral port that the kernel picked.
if command -v python3 >/dev/null 2>&1; then
  python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(120)
' >"$tmp/port" &
  listener_pid=$!
  for _ in $(seq 100); do
    [[ -s $tmp/port ]] && break
    sleep 0.1
  done
  port=$(<"$tmp/port")
  if [[ $port =~ ^[0-9]+$ ]]; then
    run -r "$capture" --listen "127.0.0.1:$port"
    expect "--listen on a port in use exits 1 with a clear message" 1 \
      stderr "cannot serve metrics on 127.0.0.1:$port: Address already in use"
  else
    fail "the python3 listener did not report its port within 10 s"
  fi
else
  echo "skipped: --listen on a port in use (python3 is not installed)"
fi

# 192.0.2.1 (TEST-NET-1) is on no interface here.
run -r "$capture" --listen "192.0.2.1:9917"
expect "--listen on an address that is not local exits 1 with a clear message" 1 \
  stderr "cannot serve metrics on 192.0.2.1:9917: Cannot assign requested address"

finish
