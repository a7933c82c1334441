#!/usr/bin/env bash
# The conformance suite against the simulated cluster: starts
# sim-apiserver --tls (whose simulated cluster runs the test images as
# local processes), installs the CRD, starts the astertower controller on
# its kubeconfig, runs conformance/run.sh, and stops both.
#
#   conformance/sim.sh [run.sh options: --timeout S --only ... --keep]
#
# ASTER_BIN names the built binaries (default build/bin). Extra arguments
# for the two servers: ASTER_SIM_ARGS, ASTER_CONTROLLER_ARGS (split on
# spaces). Exits with run.sh's status, or 2 when something is missing or
# does not start.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=${ASTER_BIN:-$ROOT/build/bin}
source "$HERE/lib/sim.sh"

die() {
    echo "sim.sh: $*" >&2
    exit 2
}

for prog in sim-apiserver astertower; do
    [ -x "$BIN/$prog" ] || die "$BIN/$prog is missing: build it first" \
        "(cmake --build build -j2 --target $prog)"
done
command -v kubectl >/dev/null || die "kubectl not found"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aster-sim.XXXXXX")
CTL_PID=

# stop: ends the controller (SIGTERM, SIGKILL after 5 s), then the sim.
stop() {
    local k
    if [ -n "$CTL_PID" ]; then
        kill "$CTL_PID" 2>/dev/null
        for k in $(seq 1 50); do
            kill -0 "$CTL_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$CTL_PID" 2>/dev/null
        wait "$CTL_PID" 2>/dev/null
        CTL_PID=
    fi
    sim_stop
    rm -rf "$WORK"
}
trap stop EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086  # the extra arguments are split on purpose
sim_start "$BIN" "$WORK" ${ASTER_SIM_ARGS:-} || die "sim-apiserver did not start"
echo "sim.sh: sim-apiserver on $SIM_URL" >&2

out=$(kubectl apply -f "$ROOT/deploy/crds/astros.yaml" 2>&1) \
    || die "installing the CRD failed: $out"

# shellcheck disable=SC2086
"$BIN/astertower" --kubeconfig "$KUBECONFIG" \
    --metrics-address 127.0.0.1:0 ${ASTER_CONTROLLER_ARGS:-} \
    >"$WORK/astertower.out" 2>"$WORK/astertower.err" &
CTL_PID=$!
sleep 1
if ! kill -0 "$CTL_PID" 2>/dev/null; then
    wait "$CTL_PID"
    rc=$?
    CTL_PID=
    echo "sim.sh: astertower exited at start with status $rc; its log:" >&2
    cat "$WORK/astertower.err" >&2
    exit 2
fi

"$HERE/run.sh" "$KUBECONFIG" "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "sim.sh: last lines of the controller's log:" >&2
    tail -n 40 "$WORK/astertower.err" >&2
    echo "sim.sh: last lines of sim-apiserver's log:" >&2
    tail -n 20 "$WORK/sim.err" >&2
fi
exit "$rc"
