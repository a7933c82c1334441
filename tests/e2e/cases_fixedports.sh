# The handed workflow cases on the ports they name (8000-8009): every node
# runs once, never before its dependencies, and the run is healthy.
source "$(dirname "$0")/lib.sh"

for k in $(seq 0 9); do
    start_bg "s$k" test-service --port "800$k" --name "n$k" --record
done

check_case() {
    local file=$1 nodes=$2
    for k in $(seq 0 9); do curl -sf -X DELETE "http://127.0.0.1:800$k/hits" >/dev/null; done

    "$ASTER_BIN/astermule" --dag-file "$file" --once --log-level warn \
        >"$E2E_TMP/out.json" || fail "$file: --once did not exit 0"
    [ "$(json "$E2E_TMP/out.json" 'd["status"]["health"]')" = True ] ||
        fail "$file: not healthy"

    # Each service behind a node was called exactly once.
    for k in $(seq 0 $((nodes - 1))); do
        [ "$(hits "800$k")" = 1 ] || fail "$file: service 800$k hit $(hits 800$k) times"
    done
    for k in $(seq "$nodes" 9); do
        [ "$(hits "800$k")" = 0 ] || fail "$file: unused service 800$k was hit"
    done
    [ "$(json "$E2E_TMP/out.json" 'sorted(s for n,s in ((n,v["state"]) for n,v in d["nodes"].items()))==["succeeded"]*'"$nodes")" = True ] ||
        fail "$file: not every node succeeded"
}

check_case "$ASTER_CASES/dag-diamond.json" 4
# D got the outputs of both B (8001) and C (8002): it ran after them.
[ "$(json "$E2E_TMP/out.json" '("seen_by_n1" in d["data"]) and ("seen_by_n2" in d["data"]) and d["data"]["name"]=="n3"')" = True ] ||
    fail "diamond: D did not receive both B's and C's output"

check_case "$ASTER_CASES/dag-six.yaml" 6
# n6 is the only exit; it saw every node's output through its ancestors.
[ "$(json "$E2E_TMP/out.json" 'all(("seen_by_n%d" % k) in d["data"] for k in range(6))')" = True ] ||
    fail "six: the exit did not see every node"

check_case "$ASTER_CASES/dag-ten.yaml" 10
[ "$(json "$E2E_TMP/out.json" 'all(("seen_by_n%d" % k) in d["data"] for k in range(10))')" = True ] ||
    fail "ten: the exit did not see every node"

echo "cases: diamond, six and ten ran healthy, each node once"
