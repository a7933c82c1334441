#!/usr/bin/env bash
# The main job on the simulated cluster: installs what is missing, builds,
# starts the fake kube-apiserver with its simulated cluster (HTTPS, token),
# installs the Astro CRD, starts the astertower controller, applies the
# paper's diamond Astro, shows each phase as it happens and the result,
# then leaves the cluster up with a kubeconfig until Ctrl-C.
#
#   ci/main.sh            run, then keep the cluster up for exploring
#   ci/main.sh --exit     run, then stop everything
set -euo pipefail
cd "$(dirname "$0")/.."

keep=1
case "${1:-}" in
--exit) keep=0 ;;
"") ;;
*) echo "usage: ci/main.sh [--exit]" >&2; exit 2 ;;
esac

ci/deps.sh --kubectl
ci/build.sh build

bin=$PWD/build/bin
state=$PWD/build/sim
# 6443 unless SIM_PORT says otherwise; a busy 6443 falls back to a free
# port (below), a busy SIM_PORT is an error.
port=${SIM_PORT:-6443}
astro=tests/data/astro-diamond.yaml
rm -rf "$state"
mkdir -p "$state/kcache"
export KUBECONFIG=$state/kubeconfig KUBECACHEDIR=$state/kcache

pids=()
stop_all() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

k() { kubectl "$@"; }

# seen_line FILE PATTERN PID: waits for a line; 1 if PID died first.
seen_line() {
    for _ in $(seq 1 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || break
        sleep 0.05
    done
    grep -q "$2" "$1" 2>/dev/null
}

# wait_line FILE PATTERN PID: waits for a line, or fails if PID died.
wait_line() {
    seen_line "$@" && return 0
    echo "error: no '$2' in $1:" >&2
    cat "$1" "${1%.out}.err" >&2 2>/dev/null || true
    exit 1
}

# start_sim PORT: the simulated cluster on 127.0.0.1:PORT (0: a free one).
start_sim() {
    "$bin/sim-apiserver" --listen "127.0.0.1:$1" --tls \
        --kubeconfig "$KUBECONFIG" >"$state/apiserver.out" \
        2>"$state/apiserver.err" &
    pids+=($!)
}

echo "== simulated cluster"
start_sim "$port"
if ! seen_line "$state/apiserver.out" ready "${pids[-1]}" &&
    [ -z "${SIM_PORT:-}" ] &&
    grep -q 'Address already in use' "$state/apiserver.err"; then
    echo "port $port is busy; the simulated cluster takes a free port" \
        "instead (SIM_PORT=N asks for one)"
    start_sim 0
fi
wait_line "$state/apiserver.out" ready "${pids[-1]}"
cat "$state/apiserver.out"
port=$(sed -n 's|.*ready on https://[^:]*:\([0-9]*\).*|\1|p' \
    "$state/apiserver.out")
echo "simulated cluster on port $port"

echo "== the Astro CRD"
k apply -f deploy/crds/astros.yaml
k wait --for condition=established --timeout=30s \
    crd/astros.astertower.kasterism.io

echo "== the controller"
"$bin/astertower" --kubeconfig "$KUBECONFIG" \
    --metrics-address 127.0.0.1:0 >"$state/astertower.out" \
    2>"$state/astertower.err" &
pids+=($!)
sleep 0.5
kill -0 "${pids[-1]}" || { cat "$state/astertower.err" >&2; exit 1; }
echo "astertower running (log: $state/astertower.err)"

name=$(sed -n 's/^  name: //p' "$astro" | head -1)

# Every change of the Astro, as kubectl sees it; a phase is printed when
# it first appears. The watch is open before the Astro exists: the whole
# run can take a tenth of a second, less than kubectl needs to start, and
# a watch begun after the apply would see only the last phase. -v=6 logs
# the watch request, which says when it is open. seen counts the whole
# lines read, so a line written while one batch is read comes in the
# next.
k get astros --field-selector "metadata.name=$name" -w -v=6 \
    -o jsonpath='{.status.phase}{"\n"}' >"$state/phases" \
    2>"$state/phases.log" &
pids+=($!)
wait_line "$state/phases.log" 'watch=true' "${pids[-1]}"

echo "== applying $astro"
k apply -f "$astro"
last=
seen=0
start=$(date +%s.%N)
for _ in $(seq 1 1200); do
    while IFS= read -r phase; do
        seen=$((seen + 1))
        [ -n "$phase" ] && [ "$phase" != "$last" ] || continue
        awk -v now="$(date +%s.%N)" -v t0="$start" -v p="$phase" \
            'BEGIN { printf "%6.2fs  phase %s\n", now - t0, p }'
        last=$phase
    done < <(tail -n +"$((seen + 1))" "$state/phases")
    case "$last" in Success|Wrong|DeployFailed|EngineFailed) break ;; esac
    sleep 0.05
done

echo
k get astros
echo
echo "== result (status.result)"
k get astro "$name" -o jsonpath='{.status.result}' | python3 -m json.tool
echo
k get deployments,services,pods -o wide

[ "$last" = Success ] || { echo "the Astro ended in $last" >&2; exit 1; }
[ $keep = 1 ] || exit 0

cat <<EOF

The cluster stays up. In another shell:
  export KUBECONFIG=$KUBECONFIG KUBECACHEDIR=$KUBECACHEDIR
  kubectl get astros
  kubectl describe astro $name
  kubectl get events
  kubectl delete astro $name
Ctrl-C here stops the cluster, the controller and every pod process.
EOF
while kill -0 "${pids[0]}" 2>/dev/null; do sleep 1; done
