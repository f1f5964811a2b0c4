# shellcheck shell=bash disable=SC2154  # work and pids belong to the sourcing script
# Sourced by the tests that run a real Prometheus on loopback. The sourcing script sets `work`
# (a scratch folder) and the array `pids` (the processes its cleanup ends) before calling these.

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_prometheus CONFIG PORT [ARGS...]: checks CONFIG with promtool, starts Prometheus on
# 127.0.0.1:PORT with its data in $work/data and ARGS, adds its pid to `pids` and waits until it
# is ready (up to 20 s).
start_prometheus() {
  local config=$1 port=$2
  promtool check config "$config" >/dev/null
  prometheus --config.file="$config" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn "${@:3}" 2>"$work/prometheus.log" &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  cat "$work/prometheus.log" >&2
  echo "FAIL: Prometheus did not start" >&2
  exit 1
}
