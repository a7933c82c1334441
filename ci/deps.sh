#!/usr/bin/env bash
# Installs the Debian packages needed to build, test, fuzz and benchmark.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config git ca-certificates curl python3
    libcurl4-openssl-dev libcjson-dev libyaml-dev libmicrohttpd-dev
    libcmocka-dev valgrind clang libclang-rt-14-dev openssl procps jq python3-yaml
)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
