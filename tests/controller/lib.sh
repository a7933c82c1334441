# Helpers for the controller's end-to-end scripts (tests/e2e/astertower_*)
# (sourced, not run): a sim-apiserver with its simulated cluster, the CRD,
# the controller, and checks through the real kubectl.
# Needs ASTER_BIN (built binaries) and ASTER_CASES (tests/data).
set -euo pipefail

: "${ASTER_BIN:?ASTER_BIN must name the directory of the built binaries}"
: "${ASTER_CASES:?ASTER_CASES must name tests/data}"

CT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CT_TMP=$(mktemp -d)
CT_SIM_PID=
CT_CTL_PID=
CT_CTL_N=0
# CT_WRAP="valgrind --error-exitcode=9 ..." runs the controller under it.
CT_WRAP=${CT_WRAP:-}

export KUBECONFIG=$CT_TMP/kubeconfig
export KUBECACHEDIR=$CT_TMP/kubecache

ct_cleanup() {
    local rc=$?
    if [ -n "$CT_CTL_PID" ]; then
        kill "$CT_CTL_PID" 2>/dev/null || true
        wait "$CT_CTL_PID" 2>/dev/null || true
    fi
    if [ -n "$CT_SIM_PID" ]; then
        kill "$CT_SIM_PID" 2>/dev/null || true
        wait "$CT_SIM_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo "--- controller logs" >&2
        tail -n 60 "$CT_TMP"/ctl*.err >&2 2>/dev/null || true
    fi
    rm -rf "$CT_TMP"
}
trap ct_cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

pass() {
    echo "ok - $*"
}

# ct_start_sim [FLAGS...]: the fake apiserver with its cluster (FLAGS
# added to its command line, e.g. -v to log every request), and the
# Astro CRD.
ct_start_sim() {
    "$ASTER_BIN/sim-apiserver" --listen 127.0.0.1:0 \
        --kubeconfig "$KUBECONFIG" --crash-backoff-ms 200 "$@" \
        >"$CT_TMP/sim.out" 2>"$CT_TMP/sim.err" &
    CT_SIM_PID=$!
    local k
    for k in $(seq 1 100); do
        grep -q 'ready on' "$CT_TMP/sim.out" 2>/dev/null && break
        sleep 0.05
    done
    CT_SERVER=$(sed -n 's/.*ready on \([^ ]*\) .*/\1/p' \
        "$CT_TMP/sim.out" 2>/dev/null || true)
    [ -n "$CT_SERVER" ] || fail "sim-apiserver did not start"
    local crd=$CT_SRC/deploy/crds/astros.yaml
    [ -f "$crd" ] || crd=$CT_SRC/tests/apiserver/data/astro-crd.yaml
    kubectl apply -f "$crd" >/dev/null
    kubectl wait --for condition=established --timeout=10s \
        crd/astros.astertower.kasterism.io >/dev/null
}

# ct_faults JSON: replaces the apiserver's fault settings.
ct_faults() {
    curl -sf -X PUT -H 'Content-Type: application/json' -d "$1" \
        "$CT_SERVER/_sim/faults" >/dev/null || fail "cannot set faults $1"
}

# ct_start_ctl ARGS...: starts the controller and waits for /readyz.
ct_start_ctl() {
    CT_CTL_N=$((CT_CTL_N + 1))
    local err=$CT_TMP/ctl$CT_CTL_N.err
    # shellcheck disable=SC2086
    $CT_WRAP "$ASTER_BIN/astertower" --kubeconfig "$KUBECONFIG" \
        --metrics-address 127.0.0.1:0 --engine-call-timeout 1s "$@" \
        2>"$err" &
    CT_CTL_PID=$!
    local k
    CT_METRICS=
    for k in $(seq 1 400); do
        # The shell may not have created $err yet: no file is no port.
        CT_METRICS=$(sed -n 's/.*metrics on port \([0-9]*\);.*/\1/p' \
            "$err" 2>/dev/null || true)
        if [ -n "$CT_METRICS" ] &&
            curl -sf "http://127.0.0.1:$CT_METRICS/readyz" >/dev/null; then
            return 0
        fi
        kill -0 "$CT_CTL_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$err" >&2
    fail "astertower did not become ready"
}

# ct_stop_ctl [SIGNAL]: stops the controller (SIGTERM, or e.g. KILL).
ct_stop_ctl() {
    local rc=0
    kill -"${1:-TERM}" "$CT_CTL_PID" 2>/dev/null || true
    wait "$CT_CTL_PID" 2>/dev/null || rc=$?
    CT_CTL_PID=
    CT_CTL_RC=$rc
}

# ct_get ARGS...: kubectl get that retries while injected faults bite.
ct_get() {
    local k out
    for k in $(seq 1 20); do
        if out=$(kubectl get "$@" 2>/dev/null); then
            printf '%s\n' "$out"
            return 0
        fi
        sleep 0.1
    done
    kubectl get "$@"
}

ct_phase() {
    ct_get astro "$1" -o jsonpath='{.status.phase}' 2>/dev/null || true
}

# ct_wait_phase NAME PHASE [SECONDS]: waits for the phase, failing on
# another final phase or the deadline.
ct_wait_phase() {
    local name=$1 want=$2 limit=${3:-40} k p=
    for k in $(seq 1 $((limit * 10))); do
        p=$(ct_phase "$name")
        [ "$p" = "$want" ] && return 0
        case "$p" in
        Success | Wrong | DeployFailed | EngineFailed)
            ct_get astro "$name" -o yaml >&2 || true
            fail "astro $name reached $p, want $want"
            ;;
        esac
        sleep 0.1
    done
    ct_get astro "$name" -o yaml >&2 || true
    fail "astro $name still in '$p' after ${limit}s, want $want"
}

# ct_json NAME EXPR: evaluates a Python expression over the Astro as d.
ct_json() {
    ct_get astro "$1" -o json >"$CT_TMP/astro.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$CT_TMP/astro.json" "$2"
}

# ct_cond NAME TYPE: "status/reason" of the Astro's condition TYPE.
ct_cond() {
    ct_json "$1" "[c['status'] + '/' + c['reason'] for c in \
d['status']['conditions'] if c['type'] == '$2'][0]"
}

# ct_count KIND SELECTOR: how many objects match.
ct_count() {
    ct_get "$1" -l "$2" -o name | grep -c . || true
}

# ct_pod_ip ASTRO STAR: the IP of a star's pod ("astermule": the engine).
ct_pod_ip() {
    local sel="astertower.kasterism.io/astro=$1,astertower.kasterism.io/star=$2"
    [ "$2" = astermule ] &&
        sel="astertower.kasterism.io/astro=$1,astertower.kasterism.io/role=engine"
    ct_get pods -l "$sel" -o jsonpath='{.items[0].status.podIP}'
}

# ct_runs_started ASTRO: the engine's astermule_runs_started_total.
ct_runs_started() {
    curl -sf "http://$(ct_pod_ip "$1" astermule):8080/metrics" |
        sed -n 's/^astermule_runs_started_total \([0-9]*\)$/\1/p'
}

# ct_hits ASTRO STAR PORT: /test requests a star's service received.
ct_hits() {
    curl -sf "http://$(ct_pod_ip "$1" "$2"):$3/hits" | sed 's/[^0-9]//g'
}

# ct_astro NAME [TARGET_OF_C] [TARGET_OF_A]: the diamond under another
# name, with star c's (and a's) target replaced, on stdout.
ct_astro() {
    sed -e "s/name: astro-demo/name: $1/" \
        -e "/port: 8002/{n;s|target: .*|target: \"${2:-/test}\"|}" \
        -e "/port: 8000/{n;s|target: .*|target: \"${3:-/test}\"|}" \
        "$ASTER_CASES/astro-diamond.yaml"
}

# ct_no_duplicates ASTRO: exactly one of every child, one run, one hit.
ct_no_duplicates() {
    local a=$1 sel="astertower.kasterism.io/astro=$1"
    [ "$(ct_count deployments "$sel")" = 4 ] || fail "$a: not 4 Deployments"
    [ "$(ct_count services "$sel")" = 4 ] || fail "$a: not 4 Services"
    [ "$(ct_count configmaps "$sel")" = 1 ] || fail "$a: not 1 ConfigMap"
    [ "$(ct_count pods "$sel,astertower.kasterism.io/role=engine")" = 1 ] ||
        fail "$a: not 1 engine pod"
    [ "$(ct_count pods "$sel,astertower.kasterism.io/role=star")" = 4 ] ||
        fail "$a: not 4 star pods"
    [ "$(ct_runs_started "$a")" = 1 ] || fail "$a: the engine ran more than once"
    [ "$(ct_hits "$a" a 8000)" = 1 ] || fail "$a: star a was called more than once"
}

# ct_events ASTRO: the Astro's Events as sorted "type/reason/count" words.
ct_events() {
    ct_get events --field-selector "involvedObject.name=$1" \
        -o jsonpath='{range .items[*]}{.type}/{.reason}/{.count}{"\n"}{end}' |
        sort | tr '\n' ' ' | sed 's/ $//'
}

# ct_events_once ASTRO TYPE/REASON...: exactly these Events, each made
# once with count 1: none lost, none duplicated, nothing else. An Event
# follows its status write, so it may come a little after the phase:
# waits up to 15 s for it.
ct_events_once() {
    local a=$1 want got k
    shift
    want=$(printf '%s/1\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//')
    for k in $(seq 1 150); do
        got=$(ct_events "$a")
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    fail "$a: Events '$got', want '$want'"
}
