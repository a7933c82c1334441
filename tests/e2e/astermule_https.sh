#!/usr/bin/env bash
# https nodes: the peer's certificate is checked (a self-signed server is
# refused, naming the certificate problem), every attempt of a retried
# node ends with that reason, and a plain-http port spoken to in TLS
# fails the node rather than the engine.
source "$(dirname "$0")/lib.sh"
M="$ASTER_BIN/astermule"
command -v openssl >/dev/null || fail "openssl is needed"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$E2E_TMP/key.pem" \
    -out "$E2E_TMP/cert.pem" >/dev/null 2>&1 || fail "cannot make a cert"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
openssl s_server -accept "127.0.0.1:$port" -cert "$E2E_TMP/cert.pem" \
    -key "$E2E_TMP/key.pem" -www -quiet >/dev/null 2>&1 &
E2E_PIDS+=($!)
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

dag="{\"nodes\":[{\"name\":\"t\",\"retries\":2,\"url\":\"https://127.0.0.1:$port/\"}]}"
set +e
"$M" --dag "$dag" --once >"$E2E_TMP/r.json" 2>/dev/null; rc=$?
set -e
[ $rc = 1 ] || fail "a self-signed https peer: exit $rc, not 1"
python3 - "$E2E_TMP/r.json" <<'EOF' || fail "self-signed peer: $(cat "$E2E_TMP/r.json")"
import json, sys
d = json.load(open(sys.argv[1]))
t = d["nodes"]["t"]
assert t["state"] == "failed" and t["attempts"] == 3, t
assert "certificate" in t["error"], t["error"]
EOF
echo "ok - a self-signed https peer is refused, naming the certificate"

start_bg plain test-service --port 0 --name plain
dag="{\"nodes\":[{\"name\":\"p\",\"url\":\"https://127.0.0.1:$PORT_plain/test\"},{\"name\":\"q\",\"url\":\"http://127.0.0.1:$PORT_plain/test\"}]}"
set +e
"$M" --dag "$dag" --once >"$E2E_TMP/r.json" 2>/dev/null; rc=$?
set -e
[ $rc = 1 ] || fail "TLS to a plain port: exit $rc, not 1"
python3 - "$E2E_TMP/r.json" <<'EOF' || fail "TLS to plain: $(cat "$E2E_TMP/r.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["nodes"]["p"]["state"] == "failed", d["nodes"]["p"]
assert d["nodes"]["q"]["state"] == "succeeded", d["nodes"]["q"]
EOF
echo "ok - TLS spoken to a plain-http port fails that node only"
