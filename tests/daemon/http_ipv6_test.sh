#!/usr/bin/env bash
# `--listen [::1]:0` serves /metrics on IPv6 loopback (the log gives the URL in brackets) and only
# there; the server's answers as curl sees them: the exposition with its content type for GET and
# HEAD (with or without a query string), a page pointing to /metrics at /, 404 elsewhere, 405 with
# Allow for other methods; SIGTERM stops dnsmon at once. Skipped where lo has no ::1.
set -euo pipefail
: "${DNSMON:?}"
if ! command -v curl >/dev/null; then
  echo "SKIP: curl is not installed" >&2
  exit 77
fi
if ! ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/128'; then
  echo "SKIP: the loopback interface has no ::1 here" >&2
  exit 77
fi
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh"
checks_setup http-ipv6
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
}

"$DNSMON" --listen '[::1]:0' 2>"$tmp/log" &
pid=$!
wait_for_url "$tmp/log" || true
cat "$tmp/log"
[[ $url =~ ^http://\[::1\]:([0-9]+)/metrics$ ]] || { fail "no http://[::1]:PORT/metrics in the log"; exit 1; }
port=${BASH_REMATCH[1]}
base="http://[::1]:$port"

# curl -g: the brackets are an IPv6 literal, not a glob.
curl -gfsS -D "$tmp/headers" "$base/metrics" >"$tmp/metrics" || fail "GET $base/metrics failed"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$tmp/headers" ||
  fail "GET /metrics: no Prometheus text content type"
grep -q '^dnsmon_build_info{' "$tmp/metrics" || fail "GET /metrics: no dnsmon_build_info"
# The demo replays paced: wait until its first queries are counted.
wait_for_queries || fail "GET /metrics: no queries counted in 60 s"
grep -q '^dnsmon_http_connections_total{result="answered"} ' "$tmp/metrics" ||
  fail "GET /metrics: no dnsmon_http_connections_total"
echo "ok: GET $base/metrics: $(wc -c <"$tmp/metrics") bytes, $queries queries"

# Bound to ::1 only: nothing answers on 127.0.0.1 at that port.
if curl -gfsS -m 2 "http://127.0.0.1:$port/metrics" >/dev/null 2>&1; then
  fail "127.0.0.1:$port answers too; only [::1] was asked for"
fi

code() {  # code CURL-ARGS...: the HTTP status curl got
  curl -gsS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@" || true
}
before=$failures
[[ $(code "$base/metrics?name[]=x&y=1") == 200 ]] && grep -q '^dnsmon_build_info{' "$tmp/body" ||
  fail "GET /metrics?query: not the exposition"
# HEAD on a raw connection: the head ends the response (curl -I would not read a body).
exec 3<>"/dev/tcp/::1/$port"
printf 'HEAD /metrics HTTP/1.1\r\nHost: [::1]\r\n\r\n' >&3
timeout 5 cat <&3 >"$tmp/head" || true
exec 3<&-
head -1 "$tmp/head" | grep -q '^HTTP/1.1 200 OK' || fail "HEAD /metrics: not 200"
length=$(tr -d '\r' <"$tmp/head" | awk -F': ' 'tolower($1) == "content-length" {print $2}')
[[ $length -gt 1000 ]] || fail "HEAD /metrics: Content-Length is '$length'"
[[ $(tail -c 4 "$tmp/head" | od -An -c | tr -d ' ') == '\r\n\r\n' ]] ||
  fail "HEAD /metrics: a body came back"
[[ $(code "$base/") == 200 ]] && grep -q 'href="/metrics"' "$tmp/body" ||
  fail "GET /: no link to /metrics"
[[ $(code "$base/nothing") == 404 ]] || fail "GET /nothing: not 404"
[[ $(code "$base/metrics/") == 404 ]] || fail "GET /metrics/: not 404"
[[ $(code -X POST -d x=1 "$base/metrics") == 405 ]] && grep -qi '^Allow: GET, HEAD' "$tmp/headers" ||
  fail "POST /metrics: not 405 with Allow: GET, HEAD"
[[ $(code --http1.0 "$base/metrics") == 200 ]] || fail "HTTP/1.0 GET /metrics: not 200"
[[ $(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$base/metrics") == 431 ]] ||
  fail "a 9000-byte header: not 431"
((failures == before)) && echo "ok: query string, HEAD, /, 404, 405, HTTP/1.0 and 431 as expected"

start=$(date +%s%N)
kill -TERM "$pid"
if ! timeout 5 tail --pid="$pid" -s 0.05 -f /dev/null; then
  fail "dnsmon still runs 5 s after SIGTERM"
fi
rc=0
wait "$pid" || rc=$?
pid=""
echo "stopped in $((($(date +%s%N) - start) / 1000000)) ms"
((rc == 0)) || fail "exit status $rc after SIGTERM"
((failures == 0)) && echo "ok: [::1] serves /metrics"
((failures == 0))
