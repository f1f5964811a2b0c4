#!/usr/bin/env bash
# The shipped systemd units and config: `systemd-analyze verify` is clean with the binary installed
# into a scratch root, the offline security exposure stays at or below 2.5, and the example config
# passes --check-config with -i as dnsmon@.service gives it, and is refused without one, as
# dnsmon.service would refuse to start with it until capture.interfaces is set.
#
# Env (set by ctest): DNSMON (the binary), DNSMON_SOURCE_DIR (the repository root).
# Exit 77 (skipped) when systemd-analyze is not installed.
set -euo pipefail

: "${DNSMON:?set DNSMON to the dnsmon binary}"
: "${DNSMON_SOURCE_DIR:?set DNSMON_SOURCE_DIR to the repository root}"
units_src="$DNSMON_SOURCE_DIR/systemd"
units=(dnsmon.service dnsmon@.service)
max_exposure=25  # systemd-analyze's 0-100 scale: 25 means an overall exposure of 2.5

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze is not installed (Debian package: systemd)"
  exit 77
fi
# verify resolves the units' dependencies (sysinit.target, ...) inside --root: reuse the host's.
host_units=/usr/lib/systemd/system
if [[ ! -e $host_units/sysinit.target ]]; then
  echo "SKIP: $host_units/sysinit.target is missing: systemd's own units are not installed"
  exit 77
fi

# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh"
checks_setup systemd
root=$tmp

# A merged-/usr root as on Debian 12, holding what the units name: the binary, the config,
# /bin/kill for ExecReload, and the targets they are ordered against.
mkdir -p "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/etc/dnsmon"
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
install -m 0755 "$DNSMON" "$root/usr/bin/dnsmon"
install -m 0755 "$(type -P kill)" "$root/usr/bin/kill"  # not the shell builtin
install -m 0644 "$units_src/dnsmon.yaml" "$root/etc/dnsmon/dnsmon.yaml"
cp "$host_units"/*.target "$root/usr/lib/systemd/system/"
for unit in "${units[@]}"; do
  install -m 0644 "$units_src/$unit" "$root/usr/lib/systemd/system/$unit"
done

# verify exits 0 on unknown keys and unparsable values, so any output at all is a failure.
verify() {
  systemd-analyze verify --root="$root" "/usr/lib/systemd/system/$1" 2>&1 || true
}

# The check must be able to fail: a misspelled key in a copy has to be reported.
sed 's/^ProtectSystem=/ProtectSytem=/' "$units_src/dnsmon.service" \
  >"$root/usr/lib/systemd/system/dnsmon-typo.service"
if [[ -z $(verify dnsmon-typo.service) ]]; then
  fail "systemd-analyze verify did not report a misspelled key; the verify check proves nothing"
fi
rm "$root/usr/lib/systemd/system/dnsmon-typo.service"

for unit in "${units[@]}" dnsmon@eth0.service 'dnsmon@br\x2dlan.service'; do
  out=$(verify "$unit")
  if [[ -n $out ]]; then
    fail "systemd-analyze verify $unit:"
    printf '%s\n' "$out"
  else
    echo "ok: systemd-analyze verify $unit: clean"
  fi
done

for unit in "${units[@]}"; do
  if out=$(systemd-analyze security --offline=true --threshold="$max_exposure" \
    "$units_src/$unit" 2>&1); then
    echo "ok: $(printf '%s\n' "$out" | tail -n 1)"
  else
    fail "systemd-analyze security $unit: exposure over ${max_exposure}/100 (or an error):"
    printf '%s\n' "$out"
  fi
done

# As dnsmon@lo.service runs it (-i from the instance name): accepted.
if out=$(timeout 30 "$DNSMON" --check-config --config "$units_src/dnsmon.yaml" -i lo 2>&1); then
  echo "ok: $out"
else
  fail "dnsmon --check-config --config systemd/dnsmon.yaml -i lo (exit $?):"
  printf '%s\n' "$out"
fi
# As dnsmon.service runs it, before an interface is set in the file: refused as the start would be.
rc=0
out=$(timeout 30 "$DNSMON" --check-config --config "$units_src/dnsmon.yaml" 2>&1) || rc=$?
if [[ $rc == 78 && $out == *"nothing to capture"* ]]; then
  echo "ok: without an interface the shipped file is refused: $out"
else
  fail "dnsmon --check-config --config systemd/dnsmon.yaml without -i: exit $rc, expected 78:"
  printf '%s\n' "$out"
fi

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all systemd checks passed"
