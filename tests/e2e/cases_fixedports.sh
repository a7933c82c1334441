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

# after FILE_RESULT "K:D1,D2 K:D1 ...": service K (node on port 800K) had
# received the outputs of services D1, D2... when it ran: it ran after its
# dependencies.
after() {
    local pairs=$1 pair
    for pair in $pairs; do
        local k=${pair%%:*} deps=${pair#*:}
        [ "$(json "$E2E_TMP/out.json" "set('n'+x for x in '$deps'.split(',')) <= set(d['data'].get('inputs_of_n$k', []))")" = True ] ||
            fail "node on port 800$k ran before all of ports 800{$deps} answered"
    done
}

check_case "$ASTER_CASES/dag-diamond.json" 4
after "1:0 2:0 3:1,2"

check_case "$ASTER_CASES/dag-six.yaml" 6
after "1:0 2:0 3:0 4:1,2 5:3,4"

check_case "$ASTER_CASES/dag-ten.yaml" 10
after "1:0 2:0 3:0 4:0 5:1,2 6:2,3 7:3,4 8:5,6,7 9:8"

echo "cases: diamond, six and ten ran healthy, each node once"
