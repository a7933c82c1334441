#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and runs each one
# for a bounded time from its seed corpus. Fails on any crash or leak.
# Longer runs: ci/fuzz.sh 3600 (nightly).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
CC=clang cmake -S . -B build-fuzz -DASTER_FUZZ=ON -DASTER_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)"

work=$(mktemp -d)
status=0
for f in build-fuzz/bin/fuzz_*; do
    name=${f##*/fuzz_}
    seeds=fuzz/seeds/$name
    mkdir -p "$work/$name"
    echo "fuzz: $name for $seconds s"
    if ! "$f" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$work/" "$work/$name" \
            $( [ -d "$seeds" ] && echo "$seeds" ) >"$work/$name.log" 2>&1; then
        tail -50 "$work/$name.log" >&2
        status=1
    else
        tail -1 "$work/$name.log"
    fi
done
rm -rf "$work"
exit $status
