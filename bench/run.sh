#!/usr/bin/env bash
# Builds the engine benchmark and what it starts, then runs it and writes
# the "## Engine" section of docs/benchmarks.md (other sections are kept).
# Extra arguments go to bench_engine, e.g. --quick or --seconds 2.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cmake -S . -B build >/dev/null
cmake --build build -j2 --target bench_engine bench_floor astermule \
    test-service

# Instructions per run are counted only with valgrind at hand.
if ! command -v valgrind >/dev/null; then
    echo "run.sh: valgrind is not on PATH; the instructions per run will" \
         "read 'not measured'" >&2
fi

# The figures mean most on a quiet machine: say so when it is not.
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    echo "run.sh: the 1-minute load average is $load; figures will be" \
         "noisier than on a quiet machine" >&2
fi

build/bin/bench_engine --out docs/benchmarks.md "$@"
