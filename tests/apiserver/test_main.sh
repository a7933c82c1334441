# The sim-apiserver binary (sim/apiserver/main.c) on its own: with --tls
# and --kubeconfig it prints exactly one ready line naming its URL and
# kubeconfig, serves with the token it wrote, and SIGTERM stops the Pod
# processes of the simulated cluster that still run, then exits 0.
# Needs curl and openssl; ASTER_BIN names the built binaries.
set -u

BIN=${ASTER_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
WORK=$(mktemp -d)
SIM_PID=
PIDS=
FAILS=0

cleanup() {
    # Whatever the server left behind must not outlive the test.
    for pid in $PIDS $SIM_PID; do
        kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}

# api METHOD PATH [BODY]: a call with the token, body on stdout.
api() {
    curl -sS --cacert "$WORK/ca.pem" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -X "$1" ${3:+--data "$3"} \
        "$URL$2"
}

echo "--- start with --tls --kubeconfig on port 0"
"$BIN/sim-apiserver" --listen 127.0.0.1:0 --tls \
    --kubeconfig "$WORK/config" >"$WORK/out" 2>"$WORK/log" &
SIM_PID=$!
for _ in $(seq 100); do
    grep -q ready "$WORK/out" 2>/dev/null && break
    sleep 0.1
done
if ! grep -q ready "$WORK/out"; then
    echo "FAIL: sim-apiserver printed no ready line"
    cat "$WORK/log"
    exit 1
fi
URL=$(awk '{print $4}' "$WORK/out")
TOKEN=$(awk '/token:/ {print $2}' "$WORK/config")
awk '/certificate-authority-data:/ {print $2}' "$WORK/config" |
    base64 -d >"$WORK/ca.pem"
grep -q "server: $URL\$" "$WORK/config" ||
    fail "the kubeconfig does not point at $URL"
[ "${URL##*:}" != 0 ] || fail "the ready line shows port 0"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/ca.pem" \
    "$URL/api/v1/namespaces")
[ "$code" = 401 ] || fail "a request without the token answered $code"

echo "--- a Deployment of kasterism/test_a runs two processes"
api POST /apis/apps/v1/namespaces/default/deployments '{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "bin-a"},
  "spec": {"replicas": 2,
    "selector": {"matchLabels": {"app": "bin-a"}},
    "template": {"metadata": {"labels": {"app": "bin-a"}},
      "spec": {"containers": [{"name": "main",
        "image": "kasterism/test_a:latest",
        "ports": [{"containerPort": 8000}]}]}}}}' >"$WORK/created"
grep -q '"kind":"Deployment"' "$WORK/created" ||
    fail "the Deployment was not created: $(cat "$WORK/created")"
# The kubelet logs "pod NS/NAME runs PROGRAM as pid N on IP:PORT".
for _ in $(seq 100); do
    [ "$(grep -c ' runs .*test-service as pid ' "$WORK/log")" -ge 2 ] &&
        break
    sleep 0.1
done
PIDS=$(sed -n 's/.* runs .*test-service as pid \([0-9]*\) on .*/\1/p' \
    "$WORK/log")
[ "$(wc -w <<<"$PIDS")" -eq 2 ] ||
    fail "want two test-service pids in the log, have '$PIDS'"
for pid in $PIDS; do
    kill -0 "$pid" 2>/dev/null || fail "pid $pid does not run"
done

echo "--- SIGTERM stops the server and the processes"
kill -TERM "$SIM_PID"
rc=0
wait "$SIM_PID" || rc=$?
SIM_PID=
[ "$rc" -eq 0 ] || fail "sim-apiserver exited with $rc after SIGTERM"
for pid in $PIDS; do
    ! kill -0 "$pid" 2>/dev/null || fail "pid $pid still runs"
done
[ "$(wc -l <"$WORK/out")" -eq 1 ] ||
    fail "stdout has $(wc -l <"$WORK/out") lines, want 1: $(cat "$WORK/out")"
ready_re='sim-apiserver: ready on https://127\.0\.0\.1:[0-9]+ '
ready_re+="kubeconfig $WORK/config"
grep -Eqx "$ready_re" "$WORK/out" ||
    fail "unexpected ready line: $(cat "$WORK/out")"
! grep -q Sanitizer "$WORK/log" || fail "sanitizer report in the log"

if [ "$FAILS" -ne 0 ]; then
    echo "$FAILS failure(s); server log:"
    tail -n 40 "$WORK/log"
    exit 1
fi
echo "all passed"
