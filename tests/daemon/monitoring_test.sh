#!/usr/bin/env bash
# The operator files in monitoring/: the alert and recording rules pass `promtool check rules`
# and their unit tests (`promtool test rules`: every alert fires on its input and stays silent
# before its `for:` and beside it); the dashboard is what its generator writes, matches the JSON
# Schema of Grafana's Dashboard type, keeps the provisioning rules (every query on $datasource,
# $job, $instance, $__rate_interval), and every one of its expressions parses as PromQL; the
# example Prometheus configuration passes `promtool check config` with the rules loaded.
set -euo pipefail
: "${DNSMON_SOURCE_DIR:?}"
for tool in promtool python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (tools/setup.sh --test installs it)" >&2
    exit 77
  fi
done
if ! python3 -c 'import jsonschema' 2>/dev/null; then
  echo "SKIP: python3-jsonschema is not installed (tools/setup.sh --test installs it)" >&2
  exit 77
fi
mon="$DNSMON_SOURCE_DIR/monitoring"
check="$mon/tests/check_dashboard.py"
dash="$mon/dashboards/dnsmon.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

promtool check rules "$mon"/rules/*.yml
(cd "$mon/rules/tests" && promtool test rules ./*.yml)

python3 "$mon/dashboards/generate.py" --check
python3 "$check" schema "$dash" "$mon/tests/grafana-dashboard.schema.json"
python3 "$check" lint "$dash"
python3 "$check" rules "$dash" >"$work/dashboard-rules.json"
promtool check rules "$work/dashboard-rules.json"

sed "s#/etc/prometheus/rules/#$mon/rules/#" "$mon/prometheus/prometheus.yml" >"$work/prometheus.yml"
promtool check config "$work/prometheus.yml"
echo "ok: rules, rule tests, dashboard and example configuration"
