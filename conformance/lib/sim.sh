# Starting and stopping sim-apiserver from bash (sourced, not run).
# Used by conformance/sim.sh and the tests/e2e/deploy_*.sh scripts.

# sim_start BIN_DIR WORK_DIR [EXTRA_ARGS...]: starts BIN_DIR/sim-apiserver
# with --tls on a free loopback port, writing its kubeconfig, output and
# logs under WORK_DIR, and waits up to 10 s for its ready line. On success
# it sets SIM_PID and SIM_URL and exports KUBECONFIG, KUBECACHEDIR and HOME
# (fresh ones under WORK_DIR: kubectl caches discovery per host:port).
# On failure it prints the server's log to stderr and returns 1; a server
# that was started but never got ready is stopped first.
sim_start() {
    local bin=$1 dir=$2
    shift 2
    local prog="$bin/sim-apiserver"

    SIM_PID= SIM_URL=
    if [ ! -x "$prog" ]; then
        echo "sim_start: $prog is missing; build it with" \
             "cmake --build build -j2 --target sim-apiserver" >&2
        return 1
    fi
    mkdir -p "$dir/home" "$dir/kubecache"
    export HOME="$dir/home" KUBECACHEDIR="$dir/kubecache"
    export KUBECONFIG="$dir/kubeconfig"

    "$prog" --listen 127.0.0.1:0 --tls --kubeconfig "$KUBECONFIG" "$@" \
        >"$dir/sim.out" 2>"$dir/sim.err" &
    SIM_PID=$!

    local k
    for k in $(seq 1 200); do
        SIM_URL=$(sed -n 's/^sim-apiserver: ready on \([^ ]*\) .*/\1/p' \
                  "$dir/sim.out" 2>/dev/null || true)
        [ -n "$SIM_URL" ] && return 0
        if ! kill -0 "$SIM_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    echo "sim_start: sim-apiserver did not get ready; its log:" >&2
    cat "$dir/sim.err" >&2
    sim_stop
    return 1
}

# sim_stop: stops the server sim_start started (SIGTERM, then waits for it)
# and clears SIM_PID. Does nothing when none runs.
sim_stop() {
    if [ -n "${SIM_PID:-}" ]; then
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
        SIM_PID=
    fi
}
