#!/usr/bin/env bash
# /metrics stays available to a legitimate scraper while 500 slow clients from other loopback
# addresses (127.0.0.2 and up, 4 each) trickle one byte of a request head per second and
# reconnect whenever they are closed, for a minute: every once-a-second scrape from 127.0.0.1
# must return the whole exposition within 1 s. Then the per-address cap (8) and the global cap
# (512) close the excess connections at once, dnsmon_http_connections_total counts all of it, and
# SIGTERM closes the connections still open at once. tests/daemon/slow_clients.py does the
# talking and says what it measured.
#
# Env: DNSMON (set by ctest); HTTP_TEST_SECONDS (default 60), HTTP_SLOW_CLIENTS (default 500).
set -euo pipefail
: "${DNSMON:?}"
seconds=${HTTP_TEST_SECONDS:-60}
slow=${HTTP_SLOW_CLIENTS:-500}
if ! command -v python3 >/dev/null; then
  echo "SKIP: python3 is not installed" >&2
  exit 77
fi
# dnsmon holds up to 512 connections and the clients up to 560 sockets.
ulimit -n 4096 2>/dev/null || true
if (($(ulimit -n) < 1024)); then
  echo "SKIP: the open-file limit is $(ulimit -n), below the 1024 this test needs" >&2
  exit 77
fi
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh"
checks_setup http-slow-clients
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
}

# The embedded demo serves while it replays, until SIGTERM.
"$DNSMON" --listen 127.0.0.1:0 2>"$tmp/log" &
pid=$!
wait_for_url "$tmp/log" || { cat "$tmp/log"; echo "FAIL: dnsmon did not say where it serves" >&2; exit 1; }
port=${url##*:}
port=${port%%/*}

rc=0
python3 "$(dirname "$0")/slow_clients.py" --port "$port" --pid "$pid" --seconds "$seconds" \
  --slow "$slow" || rc=$?

# slow_clients.py sent SIGTERM in its last phase.
if ! timeout 5 tail --pid="$pid" -s 0.05 -f /dev/null; then
  echo "FAIL: dnsmon still runs 5 s after SIGTERM" >&2
  rc=1
fi
exit_code=0
wait "$pid" || exit_code=$?
pid=""
tail -5 "$tmp/log"
if ((exit_code != 0)); then
  echo "FAIL: dnsmon exited $exit_code after SIGTERM" >&2
  rc=1
fi
exit "$rc"
