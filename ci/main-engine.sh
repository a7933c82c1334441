#!/usr/bin/env bash
# The engine alone, without a cluster: installs what is missing, builds,
# starts the four /test services of the diamond on ports 8000-8003 and the
# engine on tests/data/dag-diamond.json, triggers one run and prints its
# result.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/deps.sh
ci/build.sh build

bin=build/bin
dag=tests/data/dag-diamond.json
port=${ASTERMULE_PORT:-8080}
pids=()
stop_all() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all EXIT

# start PROG ARGS...: runs a server and waits for its "listening on" line.
start() {
    local log
    log=$(mktemp)
    "$@" >"$log" &
    pids+=($!)
    for _ in $(seq 1 100); do
        if grep -q '^listening on ' "$log"; then
            echo "  $(basename "$1") $(cat "$log")"
            rm -f "$log"
            return 0
        fi
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.05
    done
    echo "error: '$*' did not start (is its port free?)" >&2
    exit 1
}

echo "starting the diamond's services and the engine:"
names=(A B C D)
for k in 0 1 2 3; do
    start "$bin/test-service" --port "800$k" --name "${names[$k]}"
done
start "$bin/astermule" --dag-file "$dag" --address 127.0.0.1 --port "$port"

echo
echo "workflow: $dag (A -> B, C -> D)"
echo "triggering: curl -X POST -d '{\"batch\":1}' http://127.0.0.1:$port/"
echo
curl -sS -X POST -H 'Content-Type: application/json' -d '{"batch":1}' \
    "http://127.0.0.1:$port/" | python3 -m json.tool
