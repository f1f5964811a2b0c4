#!/usr/bin/env bash
# Installs the Debian 12 packages dnsmon needs. Run as root (or through sudo).
#   tools/setup.sh          build and run dependencies
#   tools/setup.sh --test   also what the test suite uses (clang, clang-tidy, promtool, tcpreplay, ...)
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libpcap-dev libldns-dev libboost-dev libspdlog-dev
  libfmt-dev prometheus-cpp-dev libyaml-cpp-dev libcli11-dev libsystemd-dev libpsl-dev publicsuffix
  catch2 libbenchmark-dev
  curl ca-certificates)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(python3 clang clang-format clang-tidy libclang-rt-14-dev prometheus jq
    iproute2 tcpreplay systemd)
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
