#!/usr/bin/env bash
# Installs the Debian packages needed to build, test, fuzz and benchmark.
# Safe to run again: apt-get skips what is already there.
# ci/deps.sh --kubectl also insists on kubectl being there.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config git ca-certificates curl python3
    libcurl4-openssl-dev libcjson-dev libyaml-dev libmicrohttpd-dev
    libcmocka-dev valgrind clang libclang-rt-14-dev openssl procps jq python3-yaml
)

# kubectl is the real client the fake apiserver is tested with; Debian 12
# packages only 1.20 (kubernetes-client), too old for these checks, so it
# must come with the machine. With --kubectl (the test suite, the main
# job) say so plainly rather than let a dozen checks fail with "command
# not found".
if [ "${1:-}" = --kubectl ] && ! command -v kubectl >/dev/null; then
    echo "ci/deps.sh: kubectl (1.27 to 1.33) is not on the PATH; the" \
         "kubectl checks, the controller's end-to-end scripts and" \
         "ci/main.sh need it" >&2
    exit 1
fi

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
