# astermule's command line: --help, --check, invalid documents (exit 2 with
# every problem on stderr), --once exit codes, and the original engine's
# flags: --dag JSON --port N, any request to the target path runs it.
source "$(dirname "$0")/lib.sh"
M="$ASTER_BIN/astermule"

"$M" --help | grep -q -- '--dag-file' || fail "astermule --help"
for flag in --connection-timeout --keep-results-bytes --max-host-connections; do
    "$M" --help | grep -q -- "$flag" || fail "astermule --help lacks $flag"
done
"$ASTER_BIN/test-service" --help | grep -q -- '--port' || fail "test-service --help"

# Bad flags exit 2 and say which flag.
set +e
"$M" --dag-file x --port 70000 2>"$E2E_TMP/err"; rc=$?
set -e
[ $rc = 2 ] || fail "--port 70000 exited $rc"
grep -q -- '--port 70000' "$E2E_TMP/err" || fail "--port error does not name the flag"

set +e
"$M" --port 1 2>"$E2E_TMP/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q -- '--dag' "$E2E_TMP/err" || fail "missing --dag not refused"

# expect_bad_flag FLAG VALUE: exits 2 naming the flag and the value. The
# workflow is valid, so nothing but the flag can be refused.
expect_bad_flag() {
    set +e
    timeout 10 "$M" --dag-file "$ASTER_CASES/dag-diamond.json" --port 0 \
        "$1" "$2" 2>"$E2E_TMP/err" >/dev/null </dev/null
    local rc=$?
    set -e
    [ $rc = 2 ] || fail "$1 $2 exited $rc, not 2"
    grep -qF -- "$1 $2" "$E2E_TMP/err" || {
        cat "$E2E_TMP/err" >&2
        fail "$1 $2: stderr does not name the flag and value"
    }
}
expect_bad_flag --address bogus
expect_bad_flag --address 10.0.0.256
expect_bad_flag --connection-timeout 0
expect_bad_flag --connection-timeout 3601
expect_bad_flag --connection-timeout 5s
expect_bad_flag --max-host-connections -1
expect_bad_flag --max-host-connections x
expect_bad_flag --keep-results-bytes -1
expect_bad_flag --keep-results-bytes 1099511627777
expect_bad_flag --keep-results-bytes lots
expect_bad_flag --max-pending-bytes 0
expect_bad_flag --port +80
expect_bad_flag --port " 80"
expect_bad_flag --max-runs 1e3
expect_bad_flag --target /healthz
expect_bad_flag --target /runs
expect_bad_flag --target /runs/7
expect_bad_flag --target "/a b"
expect_bad_flag --target "/a?b"
"$M" --check --dag-file "$ASTER_CASES/dag-diamond.json" --target /healthz/ \
    --port 08080 >/dev/null || fail "--target /healthz/ or --port 08080 refused"
expect_bad_flag --max-pending-bytes 1099511627777
"$M" --check --dag-file "$ASTER_CASES/dag-diamond.json" --address ::1 \
    --connection-timeout 3600 --keep-results-bytes 0 >/dev/null ||
    fail "good --address, --connection-timeout, --keep-results-bytes refused"

# --check: valid documents exit 0.
for f in dag-diamond.json dag-six.yaml dag-ten.yaml; do
    "$M" --check --dag-file "$ASTER_CASES/$f" >/dev/null || fail "--check $f"
done

# Invalid documents exit 2 and name the problem.
expect_invalid() {
    local file=$1
    shift
    set +e
    "$M" --check --dag-file "$ASTER_CASES/invalid/$file" 2>"$E2E_TMP/err" >/dev/null
    local rc=$?
    set -e
    [ $rc = 2 ] || fail "$file exited $rc, not 2"
    local want
    for want in "$@"; do
        grep -qF -- "$want" "$E2E_TMP/err" || {
            cat "$E2E_TMP/err" >&2
            fail "$file: stderr does not mention '$want'"
        }
    done
}
expect_invalid cycle.json "a -> b -> c -> a"
expect_invalid self-dependency.json "a"
expect_invalid missing-dependency.json "ghost" "nodes[1].dependencies[1]"
expect_invalid duplicate-name.json "a"
expect_invalid empty.json "no nodes"
expect_invalid file-scheme.json "file"
expect_invalid bad-action.json "FETCH" "GET"
expect_invalid astro-bad-names.yaml "Read_Temp" "70000" "spec.stars[1].target"
expect_invalid not-json.txt "line"
expect_invalid nul-in-name.json "nodes[0].name"
expect_invalid empty.json \
    "the workflow in $ASTER_CASES/invalid/empty.json is invalid:"

# A workflow given inline is named as such, not as an empty file name.
set +e
"$M" --check --dag '{"nodes":[]}' 2>"$E2E_TMP/err" >/dev/null; rc=$?
set -e
[ $rc = 2 ] || fail "invalid --dag exited $rc, not 2"
grep -qF "the workflow given with --dag is invalid:" "$E2E_TMP/err" || {
    cat "$E2E_TMP/err" >&2
    fail "invalid --dag: stderr does not say the workflow came with --dag"
}

# An Astro is a valid document but has no URLs for the engine.
set +e
"$M" --check --dag-file "$ASTER_CASES/astro-diamond.yaml" 2>"$E2E_TMP/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "has no url" "$E2E_TMP/err" || fail "Astro given to the engine not refused"

# Services for the runs below.
start_bg A test-service --port 0 --name A
start_bg B test-service --port 0 --name B

# --once: exit 0 when healthy, 1 when not; the result goes to stdout.
ok_dag="{\"nodes\":[{\"name\":\"A\",\"action\":\"GET\",\"url\":\"http://127.0.0.1:$PORT_A/test\"},{\"name\":\"B\",\"action\":\"POST\",\"url\":\"http://127.0.0.1:$PORT_B/test\",\"dependencies\":[\"A\"]}]}"
"$M" --dag "$ok_dag" --once --input '{"x":1}' >"$E2E_TMP/once.json" || fail "--once healthy did not exit 0"
[ "$(json "$E2E_TMP/once.json" 'd["data"]["name"]')" = B ] || fail "--once result"

# --input is read as strictly as a trigger's body.
set +e
"$M" --dag "$ok_dag" --once --input '{"x":01}' >/dev/null 2>"$E2E_TMP/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q -- '--input is not valid JSON: a number not in JSON form at byte 5' \
    "$E2E_TMP/err" || fail "--input '{\"x\":01}' exited $rc: $(cat "$E2E_TMP/err")"

# A blank --input is the empty input, and a leading byte order mark is
# dropped, as from a trigger's body.
"$M" --dag "$ok_dag" --once --input '  ' >"$E2E_TMP/once.json" ||
    fail "--once with a blank --input did not exit 0"
post_dag="{\"nodes\":[{\"name\":\"B\",\"action\":\"POST\",\"url\":\"http://127.0.0.1:$PORT_B/test\"}]}"
"$M" --dag "$post_dag" --once --input "$(printf '\357\273\277{"x":2}')" \
    >"$E2E_TMP/once.json" || fail "--once with a BOM before --input"
[ "$(json "$E2E_TMP/once.json" 'd["data"]["x"]')" = 2 ] ||
    fail "--input after a BOM did not reach the nodes"

# SIGTERM ends a --once run: nodes still running fail as stopped, the
# result is printed all the same, and the exit code is 1.
hang_dag="{\"nodes\":[{\"name\":\"A\",\"url\":\"http://127.0.0.1:$PORT_A/test\"},{\"name\":\"H\",\"url\":\"http://127.0.0.1:$PORT_A/test?hang=1\"}]}"
"$M" --dag "$hang_dag" --once >"$E2E_TMP/once.json" 2>"$E2E_TMP/err" &
once_pid=$!
sleep 0.5
kill -TERM "$once_pid"
set +e
timeout 10 tail --pid="$once_pid" -f /dev/null
wait "$once_pid"; rc=$?
set -e
[ $rc = 1 ] || fail "--once stopped by SIGTERM exited $rc, not 1"
[ "$(json "$E2E_TMP/once.json" 'd["nodes"]["A"]["state"]')" = succeeded ] ||
    fail "--once stopped: node A's result lost"
json "$E2E_TMP/once.json" 'd["nodes"]["H"]["error"]' | grep -q "engine stopped" ||
    fail "--once stopped: node H does not say the engine stopped"

# Client connections are held within the open-file limit: the soft
# limit is raised to the hard one, and --max-connections lowered to half
# of it, with a warning, rather than fail to accept later.
(
    ulimit -n 256
    exec "$M" --dag "$ok_dag" --port 0 --address 127.0.0.1 \
        --max-connections 100000 >"$E2E_TMP/fd.out" 2>"$E2E_TMP/fd.err"
) &
fd_pid=$!
for k in $(seq 1 100); do grep -q '^listening' "$E2E_TMP/fd.out" && break; sleep 0.05; done
kill -TERM "$fd_pid"
wait "$fd_pid" || fail "astermule under ulimit -n 256 did not stop cleanly"
grep -q -- "--max-connections 100000 lowered to 96" "$E2E_TMP/fd.err" ||
    fail "--max-connections not lowered to fit ulimit -n 256: $(cat "$E2E_TMP/fd.err")"

bad_dag="{\"nodes\":[{\"name\":\"A\",\"url\":\"http://127.0.0.1:$PORT_A/test?status=500\"}]}"
set +e
"$M" --dag "$bad_dag" --once >"$E2E_TMP/once.json" 2>/dev/null; rc=$?
set -e
[ $rc = 1 ] || fail "--once unhealthy exited $rc, not 1"
[ "$(json "$E2E_TMP/once.json" 'd["nodes"]["A"]["httpStatus"]')" = 500 ] || fail "--once unhealthy result"

# The original engine's way: --dag JSON --port N, any request to the
# target path (default /, which covers every path) runs the workflow.
# Go-style single-dash flags work too.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
start_bg M astermule -dag "$ok_dag" -port "$port" -address 127.0.0.1
[ "$PORT_M" = "$port" ] || fail "astermule did not listen on --port $port"
for path in / /anything /deep/er; do
    body=$(curl -sf "http://127.0.0.1:$port$path") || fail "GET $path"
    echo "$body" >"$E2E_TMP/r.json"
    [ "$(json "$E2E_TMP/r.json" 'd["status"]["health"]')" = True ] || fail "GET $path not healthy"
done
body=$(curl -sf -X POST -d '{"k":"v"}' "http://127.0.0.1:$port/") || fail "POST /"
echo "$body" >"$E2E_TMP/r.json"
[ "$(json "$E2E_TMP/r.json" 'd["data"]["name"]')" = B ] || fail "POST / result"

# With --target, only that path runs it.
start_bg T astermule --dag "$ok_dag" --port 0 --address 127.0.0.1 --target /go
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_T/go")" = 200 ] || fail "--target /go"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_T/")" = 404 ] || fail "/ with --target /go"

# An IPv6 listen address is printed in brackets, as in a URL; skipped
# where the machine has no IPv6 loopback.
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    start_bg V6 astermule --dag "$ok_dag" --port 0 --address ::1
    grep -q '^listening on \[::1\]:[0-9]*$' "$E2E_TMP/V6.out" ||
        fail "IPv6 listening line: $(cat "$E2E_TMP/V6.out")"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://[::1]:$PORT_V6/healthz")" = 200 ] ||
        fail "GET /healthz over IPv6"
fi

# SIGTERM stops the server cleanly (exit 0).
pid=$(pgrep -f -- "--target /go" | head -1)
kill -TERM "$pid"
for k in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "astermule did not stop on SIGTERM"

echo "astermule cli: flags, --check, --once, compatibility and stop all behave"
