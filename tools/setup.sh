#!/usr/bin/env bash
# Installs the Debian 12 packages dnsmon needs. Run as root (or through sudo).
#   tools/setup.sh          what building and running the daemon needs
#   tools/setup.sh --test   also what the tests and benchmarks use (Catch2, Google Benchmark,
#                           clang, clang-tidy, promtool, tcpreplay, debootstrap and systemd-nspawn
#                           for the package test, unbound and dig for the dnstap test, ...)
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libpcap-dev libldns-dev libboost-dev libspdlog-dev
  libfmt-dev prometheus-cpp-dev libyaml-cpp-dev libcli11-dev libsystemd-dev libpsl-dev publicsuffix
  libprotobuf-c-dev protobuf-c-compiler curl ca-certificates)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(catch2 libbenchmark-dev python3 python3-jsonschema clang clang-format clang-tidy
    libclang-rt-14-dev prometheus jq iproute2 tcpreplay systemd debootstrap systemd-container
    dpkg-dev unbound bind9-dnsutils)
elif [[ $# -gt 0 ]]; then
  echo "usage: tools/setup.sh [--test]" >&2
  exit 2
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#packages[@]} packages are installed"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
