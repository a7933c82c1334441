#!/usr/bin/env bash
# Valgrind memcheck over every unit test binary, one end-to-end run of
# the engine serving real triggers, and the controller through its
# end-to-end scripts. Fails on any error or definite leak.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-build}
bin=$(cd "$dir/bin" && pwd)
logs=$(mktemp -d)
vg=(valgrind --quiet --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite)

status=0
for t in "$bin"/test_* "$bin"/apiserver_test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    # Helpers these tests start are checked on their own below.
    if ! ASTER_VALGRIND=1 "${vg[@]}" --log-file="$logs/$name.log" "$t" \
            >"$logs/$name.out" 2>&1; then
        echo "valgrind: $name failed" >&2
        cat "$logs/$name.log" "$logs/$name.out" >&2
        status=1
    else
        echo "valgrind: $name clean"
    fi
done

# End to end: test services and the engine under memcheck, triggered with
# healthy, failing and concurrent runs, then stopped with SIGTERM.
pids=()
start() {
    local name=$1
    shift
    "${vg[@]}" --log-file="$logs/$name.vg" "$@" >"$logs/$name.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 400); do
        grep -q '^listening on ' "$logs/$name.out" && return 0
        sleep 0.05
    done
    echo "valgrind: $name did not start" >&2
    cat "$logs/$name.out" >&2
    exit 1
}
port_of() {
    sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$logs/$1.out"
}

start svcA "$bin/test-service" --port 0 --name A
start svcB "$bin/test-service" --port 0 --name B
pa=$(port_of svcA)
pb=$(port_of svcB)
dag="{\"nodes\":[{\"name\":\"a\",\"action\":\"POST\",\"url\":\"http://127.0.0.1:$pa/test\"},
{\"name\":\"b\",\"url\":\"http://127.0.0.1:$pb/test\",\"dependencies\":[\"a\"]},
{\"name\":\"c\",\"url\":\"http://127.0.0.1:$pb/test?status=500\",\"dependencies\":[\"a\"]},
{\"name\":\"d\",\"url\":\"http://127.0.0.1:$pa/test\",\"dependencies\":[\"b\"]}]}"
start mule "$bin/astermule" --dag "$dag" --address 127.0.0.1 --port 0 \
    --log-level warn
pm=$(port_of mule)

curl -sf "http://127.0.0.1:$pm/" >/dev/null
curl -sf -X POST -d '{"x":1}' "http://127.0.0.1:$pm/runs?async=1" >/dev/null
curl -s -X POST -d '[1]' "http://127.0.0.1:$pm/" >/dev/null
curl -sf "http://127.0.0.1:$pm/metrics" >/dev/null
seq 1 50 | xargs -P 25 -I{} curl -sf -X POST -d '{"n":{}}' \
    "http://127.0.0.1:$pm/" -o /dev/null
"${vg[@]}" --log-file="$logs/once.vg" "$bin/astermule" --dag "$dag" --once \
    >/dev/null 2>&1 || [ $? = 1 ] || { cat "$logs/once.vg" >&2; status=1; }

for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do
    wait "$p" || { echo "valgrind: a process under memcheck failed" >&2; status=1; }
done
for f in "$logs"/*.vg; do
    if grep -q 'ERROR SUMMARY: [1-9]\|definitely lost: [1-9]' "$f"; then
        echo "valgrind: $(basename "$f" .vg) reported:" >&2
        cat "$f" >&2
        status=1
    fi
done
[ $status = 0 ] && echo "valgrind: end-to-end engine run clean"

# The controller under memcheck through its end-to-end scripts: they fail
# when it does not exit 0 on SIGTERM, which memcheck's errors turn into.
# The faults script also SIGKILLs it mid-run (four of its five starts);
# those exit codes say nothing, so every start logs to its own file
# (%p) and any report in one (--quiet leaves a clean one empty) fails.
for script in astertower_success astertower_failures astertower_faults \
    astertower_twins; do
    if CT_WRAP="${vg[*]} --log-file=$logs/$script.ctl.%p.vg" \
        ASTER_BIN="$bin" ASTER_CASES="$PWD/tests/data" \
        bash "tests/e2e/$script.sh" >"$logs/$script.out" 2>&1 &&
        [ -z "$(find "$logs" -name "$script.ctl.*.vg" -size +0)" ]; then
        echo "valgrind: controller in $script clean"
    else
        echo "valgrind: controller in $script failed:" >&2
        tail -30 "$logs/$script.out" >&2
        cat "$logs"/$script.ctl.*.vg >&2 2>/dev/null || true
        status=1
    fi
done

rm -rf "$logs"
exit $status
