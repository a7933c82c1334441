# Shared harness for the kubectl checklist (k8s-api.md section 10).
# Starts sim-apiserver with TLS and a token, points a private kubectl
# cache and HOME at temp dirs, and offers small assertion helpers.
# Each script sources this, runs its items and ends with `finish`.
set -u

BIN=${ASTER_BIN:-$(cd "$(dirname "$0")/../../.." && pwd)/build/bin}
DATA=${SIMAPI_DATA:-$(cd "$(dirname "$0")/.." && pwd)/data}
CASES=${ASTER_CASES:-$(cd "$(dirname "$0")/../.." && pwd)/data}
WORK=$(mktemp -d)
export HOME=$(mktemp -d)
export KUBECACHEDIR=$(mktemp -d)
export KUBECONFIG=$WORK/config
FAILS=0
SIM_PID=

cleanup() {
    if [ -n "$SIM_PID" ]; then
        kill "$SIM_PID" 2>/dev/null
        wait "$SIM_PID" 2>/dev/null
    fi
    rm -rf "$WORK" "$HOME" "$KUBECACHEDIR"
}
trap cleanup EXIT

start_sim() {
    "$BIN/sim-apiserver" --listen 127.0.0.1:0 --tls -v \
        --kubeconfig "$KUBECONFIG" --bookmark-seconds 1 "$@" \
        >"$WORK/sim.out" 2>"$WORK/sim.log" &
    SIM_PID=$!
    for _ in $(seq 100); do
        grep -q ready "$WORK/sim.out" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -q ready "$WORK/sim.out"; then
        echo "FAIL: sim-apiserver did not start"; cat "$WORK/sim.log"
        exit 1
    fi
    URL=$(awk '{print $4}' "$WORK/sim.out")
    TOKEN=$(awk '/token:/ {print $2}' "$KUBECONFIG")
    awk '/certificate-authority-data:/ {print $2}' "$KUBECONFIG" |
        base64 -d >"$WORK/ca.pem"
}

# run CMD...: runs it, keeps stdout in OUT, stderr in ERR, status in RC.
run() {
    OUT=$("$@" 2>"$WORK/err") && RC=0 || RC=$?
    ERR=$(cat "$WORK/err")
}

fail() {
    echo "FAIL [$ITEM]: $*"
    echo "  stdout: $OUT"
    echo "  stderr: $ERR"
    FAILS=$((FAILS + 1))
}

item() {
    ITEM=$1
    echo "--- checklist #$1: $2"
}

expect_rc() { [ "$RC" -eq "$1" ] || fail "exit code $RC, want $1"; }

# expect_out REGEX: some line of stdout matches (extended regex).
expect_out() { grep -Eq -- "$1" <<<"$OUT" || fail "stdout lacks /$1/"; }
expect_no_out() { ! grep -Eq -- "$1" <<<"$OUT" || fail "stdout has /$1/"; }
expect_err() { grep -Eq -- "$1" <<<"$ERR" || fail "stderr lacks /$1/"; }

# Counts request log lines of the server matching REGEX.
requests() { grep -Ec -- "$1" "$WORK/sim.log" || true; }

# api METHOD PATH [BODY [CONTENT-TYPE]]: raw call with the token.
api() {
    curl -sS --cacert "$WORK/ca.pem" -H "Authorization: Bearer $TOKEN" \
        -X "$1" ${3:+--data "$3"} \
        -H "Content-Type: ${4:-application/json}" "$URL$2"
}

faults() { api PUT /_sim/faults "$1" >/dev/null; }

setup_astro_crd() {
    kubectl apply -f "$DATA/astro-crd.yaml" >/dev/null &&
        kubectl wait --for condition=established --timeout=10s \
            crd/astros.astertower.kasterism.io >/dev/null ||
        { echo "FAIL: could not install the Astro CRD"; exit 1; }
}

# Stops the server with SIGTERM; it must exit 0 without sanitizer
# reports (leaks included when built with ASTER_SANITIZE).
stop_sim() {
    local rc=0
    kill -TERM "$SIM_PID"
    wait "$SIM_PID" || rc=$?
    SIM_PID=
    if [ "$rc" -ne 0 ] || grep -q 'Sanitizer' "$WORK/sim.log"; then
        ITEM=shutdown OUT= ERR=$(grep -A20 Sanitizer "$WORK/sim.log")
        fail "sim-apiserver exited with $rc"
    fi
}

finish() {
    stop_sim
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS failure(s); server log:"
        tail -n 60 "$WORK/sim.log"
        exit 1
    fi
    echo "all passed"
}
