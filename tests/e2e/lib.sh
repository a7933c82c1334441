# Shared helpers for the end-to-end scripts (sourced, not run).
# Needs ASTER_BIN (built binaries) and ASTER_CASES (tests/data).
set -euo pipefail

: "${ASTER_BIN:?ASTER_BIN must name the directory of the built binaries}"
: "${ASTER_CASES:?ASTER_CASES must name tests/data}"

E2E_TMP=$(mktemp -d)
E2E_PIDS=()

e2e_cleanup() {
    local pid
    for pid in "${E2E_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${E2E_PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# start_bg NAME PROG ARGS...: starts a server, waits for its
# "listening on ADDR:PORT" line, and sets PORT_<NAME>.
start_bg() {
    local name=$1 prog=$2
    shift 2
    local out="$E2E_TMP/$name.out"
    "$ASTER_BIN/$prog" "$@" >"$out" 2>"$E2E_TMP/$name.err" &
    E2E_PIDS+=($!)
    local k
    for k in $(seq 1 200); do
        if grep -q '^listening on ' "$out" 2>/dev/null; then
            local port
            port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
            printf -v "PORT_$name" '%s' "$port"
            return 0
        fi
        sleep 0.05
    done
    cat "$E2E_TMP/$name.err" >&2
    fail "$prog $* did not start"
}

# hits PORT: the hit counter of a test-service.
hits() {
    curl -sf "http://127.0.0.1:$1/hits" | sed 's/[^0-9]//g'
}

# json FILE EXPR: evaluates a Python expression over the parsed JSON d.
json() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
