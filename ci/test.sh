#!/usr/bin/env bash
# Every check CI runs: installs what is missing, then
#   1. builds and runs the whole test suite (ctest),
#   2. the same suite in an AddressSanitizer + UBSan build,
#   3. Valgrind memcheck over the unit tests and an end-to-end run,
#   4. each libFuzzer harness for a bounded time (FUZZ_SECONDS, default 60).
# Set ASTER_QUICK=1 to run step 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/deps.sh --kubectl
jobs=$(nproc)

echo "== build and test"
ci/build.sh build
ctest --test-dir build -j"$jobs" --output-on-failure

[ "${ASTER_QUICK:-0}" = 1 ] && exit 0

echo "== ASan + UBSan build and test"
ci/build.sh build-asan -DASTER_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -j"$jobs" --output-on-failure

echo "== Valgrind memcheck"
ci/valgrind.sh build

echo "== fuzzing, ${FUZZ_SECONDS:-60} s per harness"
ci/fuzz.sh "${FUZZ_SECONDS:-60}"

echo "all checks passed: tests, sanitizers, valgrind, fuzzing"
