# Sourced by the script tests that make many checks and report them all before the verdict:
#
#   checks_setup NAME  a scratch folder in $tmp (dnsmon-NAME-test.XXXXXX), removed at exit after
#                      the sourcing script's own cleanup function, if it defines one
#   fail TEXT...       prints FAIL: TEXT and counts a failure; the script goes on
#   ok TEXT...         prints ok: TEXT
#   run ARGS...        runs $DNSMON ARGS (at most 30 s): exit code in $rc, output in $out and $err
#   expect NAME CODE [stdout|stderr TEXT]...
#                      counts a check: the last run exited CODE and each stream holds its TEXT
#   finish             prints the tally; its status is the script's verdict (0: no failure)
#   wait_for_url LOG [SECONDS]
#                      waits (60 s unless told) until dnsmon's LOG gives the URL it serves
#                      /metrics on, and sets $url to it ("" if it never did)
#   wait_for_queries [SECONDS]
#                      waits (60 s unless told) until a scrape of $url counts queries; sets
#                      $queries to their sum over qtypes and leaves the scrape in $tmp/metrics

failures=0
checks=0
tmp=""
rc=0
out=""
err=""

checks_exit() {
  if declare -F cleanup >/dev/null; then
    cleanup
  fi
  if [[ -n $tmp ]]; then
    rm -rf "$tmp"
  fi
}

checks_setup() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnsmon-$1-test.XXXXXX")
  trap checks_exit EXIT
}

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

ok() {
  echo "ok: $*"
}

run() {
  rc=0
  timeout 30 "$DNSMON" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
  out=$(<"$tmp/stdout")
  err=$(<"$tmp/stderr")
}

expect() {
  local name=$1 code=$2
  shift 2
  checks=$((checks + 1))
  local good=1
  if [[ $rc != "$code" ]]; then
    fail "$name: exit code $rc, expected $code"
    good=0
  fi
  while (($# >= 2)); do
    local stream=$1 text=$2
    shift 2
    local content=$out
    [[ $stream == stderr ]] && content=$err
    if [[ $content != *"$text"* ]]; then
      fail "$name: $stream does not contain: $text"
      good=0
    fi
  done
  if ((good)); then
    ok "$name"
  else
    printf -- '--- stdout:\n%s\n--- stderr:\n%s\n---\n' "$out" "$err"
  fi
}

finish() {
  echo "$checks checks, $failures failed"
  ((failures == 0))
}

wait_for_url() {
  local log=$1 tries=$((${2:-60} * 10))
  url=""
  for ((i = 0; i < tries; i++)); do
    url=$(grep -o 'http://[^ ]*/metrics' "$log" | head -1 || true)
    [[ -n $url ]] && return 0
    sleep 0.1
  done
  return 1
}

wait_for_queries() {
  local tries=$((${1:-60} * 10))
  queries=0
  for ((i = 0; i < tries; i++)); do
    if curl -gfsS -m 5 "$url" >"$tmp/metrics" 2>/dev/null; then
      queries=$(awk '/^dnsmon_queries_total/ {s += $2} END {print s + 0}' "$tmp/metrics")
      ((queries > 0)) && return 0
    fi
    sleep 0.1
  done
  return 1
}
