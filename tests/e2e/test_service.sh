#!/usr/bin/env bash
# End-to-end checks of sim/services/test-service: echo, every knob, /hits,
# bad input, keep-alive and a prompt clean stop. Services listen on ports
# the kernel picks (--port 0), so runs never collide.
#
# Needs ASTER_BIN (the built binaries), curl and jq. Set TS_WRAP to run
# the service under a wrapper, e.g. TS_WRAP="valgrind --error-exitcode=9".
set -euo pipefail

: "${ASTER_BIN:?ASTER_BIN must name the directory of the built binaries}"
SVC="$ASTER_BIN/test-service"
[ -x "$SVC" ] || { echo "FAIL: no test-service in $ASTER_BIN" >&2; exit 1; }
for tool in curl jq; do
    command -v "$tool" >/dev/null ||
        { echo "FAIL: $tool is needed" >&2; exit 1; }
done
read -r -a WRAP <<<"${TS_WRAP:-}"
# Startup and stop take longer under a wrapper such as valgrind.
STOP_LIMIT_S=${TS_STOP_LIMIT_S:-2}

TMP=$(mktemp -d)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

CHECKS=0
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() {
    CHECKS=$((CHECKS + 1))
    echo "ok $CHECKS - $*"
}

# start NAME ARGS...: starts a service, waits for its one stdout line,
# and sets PID_<NAME> and PORT_<NAME>.
start() {
    local name=$1 line="" pid k
    shift
    "${WRAP[@]}" "$SVC" --port 0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    pid=$!
    PIDS+=("$pid")
    for k in $(seq 1 300); do
        # read fails until the whole line, newline included, is there.
        if read -r line <"$TMP/$name.out" 2>/dev/null; then
            break
        fi
        kill -0 "$pid" 2>/dev/null ||
            fail "service $name exited at start: $(cat "$TMP/$name.err")"
        sleep 0.05
    done
    [[ $line =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] ||
        fail "service $name printed '$line', not 'listening on ADDR:PORT'"
    [ "${BASH_REMATCH[1]}" -gt 0 ] || fail "service $name reports port 0"
    printf -v "PID_$name" '%s' "$pid"
    printf -v "PORT_$name" '%s' "${BASH_REMATCH[1]}"
}

# call PORT METHOD PATH [BODY]: one request; sets CODE, BODY, CTYPE.
call() {
    local port=$1 method=$2 path=$3 meta
    local args=(-sS -X "$method" -o "$TMP/body")
    args+=(-w '%{http_code} %{content_type}')
    [ $# -ge 4 ] &&
        args+=(-H 'Content-Type: application/json' --data-binary "$4")
    meta=$(curl "${args[@]}" "http://127.0.0.1:$port$path") ||
        fail "curl $method $path on port $port failed"
    CODE=${meta%% *}
    CTYPE=${meta#* }
    BODY=$(cat "$TMP/body")
}

# expect WHAT JQ: BODY must satisfy the jq expression.
expect() {
    jq -e "$2" <<<"$BODY" >/dev/null 2>&1 || fail "$1: got $CODE $BODY"
    ok "$1"
}

# expect_code WHAT CODE
expect_code() {
    [ "$CODE" = "$2" ] || fail "$1: status $CODE, expected $2 ($BODY)"
}

# running PID: true while PID is alive and not yet a zombie.
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat:0:1}" != Z ]
}

# secs_lt A B: true when A < B, for curl's fractional timings.
secs_lt() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

start a --name svc-a
start b --record
start c --name svc-c --status 503 --delay-ms 300
A=$PORT_a

# ---- echo and name ---------------------------------------------------
call "$A" POST /test '{"x":1,"nested":{"y":[1,2]},"name":"caller"}'
expect_code "echo" 200
[ "$CTYPE" = application/json ] || fail "echo: Content-Type is '$CTYPE'"
expect "echo returns the object with name set" \
    '. == {"x":1,"nested":{"y":[1,2]},"name":"svc-a"}'

call "$A" GET /test
expect_code "empty body" 200
[ "$BODY" = '{"name":"svc-a"}' ] || fail "empty body: got $BODY"
ok "an empty body answers just the name"

call "$A" POST /test ' '
expect "a blank body counts as empty" '. == {"name":"svc-a"}'

call "$PORT_b" PUT /test '{"k":"v"}'
jq -e --arg h "$(uname -n)" '.name == $h and .k == "v"' <<<"$BODY" \
    >/dev/null || fail "default name: got $BODY, host is $(uname -n)"
ok "the default name is the host name"

# ---- record ----------------------------------------------------------
call "$A" DELETE /hits
call "$A" POST '/test?record=1' '{"in":1}'
expect "record=1 adds seen_by_<name> with the hit number" \
    '.["seen_by_svc-a"] == 1 and .in == 1'
call "$A" POST '/test?record=1' '{"seen_by_svc-a":99}'
expect "record overwrites an older seen_by key" '.["seen_by_svc-a"] == 2'
call "$A" POST '/test?record=1' '{"seen_by_x":1,"seen_by_y":2,"z":3}'
expect "record lists the seen_by names the input carried" \
    '.["inputs_of_svc-a"] == ["x","y"]'
call "$A" POST /test '{}'
expect "no record without the knob" 'has("seen_by_svc-a") | not'

call "$PORT_b" POST /test '{}'
b_name=$(uname -n)
jq -e --arg k "seen_by_$b_name" 'has($k)' <<<"$BODY" >/dev/null ||
    fail "--record: no seen_by key in $BODY"
ok "--record adds seen_by_<name> to every answer"
call "$PORT_b" POST '/test?record=0' '{}'
jq -e --arg k "seen_by_$b_name" 'has($k) | not' <<<"$BODY" >/dev/null ||
    fail "record=0 did not override --record: $BODY"
ok "record=0 overrides --record"

# ---- delay -----------------------------------------------------------
curl -sS -o "$TMP/slow.body" -w '%{http_code} %{time_total}\n' \
    "http://127.0.0.1:$A/test?delay_ms=1500" >"$TMP/slow.meta" &
slow=$!
sleep 0.2
fast=$(curl -sS -o /dev/null -w '%{time_total}' "http://127.0.0.1:$A/test")
secs_lt "$fast" 0.5 || fail "a normal request took ${fast}s beside a delay"
ok "a delayed request does not hold up another (${fast}s)"
wait "$slow" || fail "the delayed request failed"
read -r code took <"$TMP/slow.meta"
[ "$code" = 200 ] || fail "delay_ms=1500 answered $code"
secs_lt 1.4 "$took" || fail "delay_ms=1500 answered after only ${took}s"
secs_lt "$took" 3 || fail "delay_ms=1500 answered after ${took}s"
ok "delay_ms=1500 answers after ${took}s"

# ---- status ----------------------------------------------------------
call "$A" POST '/test?status=500' '{"a":1}'
expect_code "status=500" 500
expect "status=500 keeps the object and adds the error" \
    '. == {"a":1,"name":"svc-a","error":"injected status 500"}'
call "$A" POST '/test?status=201' '{"a":1}'
expect_code "status=201" 201
expect "a 2xx status adds no error" '. == {"a":1,"name":"svc-a"}'

call "$PORT_c" GET /test
expect_code "--status 503" 503
expect "--status and --delay-ms set the defaults" \
    '.error == "injected status 503" and .name == "svc-c"'
call "$PORT_c" GET '/test?status=200&delay_ms=0'
expect_code "knobs override flags" 200
ok "knobs override the flags' defaults"

# ---- hang ------------------------------------------------------------
hung_rc=0
curl -sS -m 1 -o /dev/null "http://127.0.0.1:$A/test?hang=1" \
    2>/dev/null &
hung=$!
sleep 0.2
call "$A" GET /test
expect_code "a request beside a hang" 200
ok "a request beside a hanging one answers"
wait "$hung" || hung_rc=$?
[ "$hung_rc" = 28 ] || fail "hang=1: curl -m 1 ended with $hung_rc, not 28"
ok "hang=1 never answers (curl timed out)"

# ---- body_bytes ------------------------------------------------------
for n in 1000 2 5 40; do
    curl -sS -o "$TMP/pad" "http://127.0.0.1:$A/test?body_bytes=$n" ||
        fail "body_bytes=$n: curl failed"
    size=$(wc -c <"$TMP/pad")
    [ "$size" -eq "$n" ] || fail "body_bytes=$n: got $size bytes"
    jq -e 'type == "object"' "$TMP/pad" >/dev/null ||
        fail "body_bytes=$n: not a JSON object: $(head -c 200 "$TMP/pad")"
done
jq -e '.name == "svc-a" and (.pad | test("^x+$"))' "$TMP/pad" >/dev/null ||
    fail "body_bytes=40 lacks name and pad: $(cat "$TMP/pad")"
ok "body_bytes gives exactly N bytes of a JSON object"

# A 256 MiB body must stream: the service's peak memory stays small.
big=$((256 * 1024 * 1024))
size=$(curl -sS "http://127.0.0.1:$A/test?body_bytes=$big" | wc -c)
[ "$size" -eq "$big" ] || fail "body_bytes=$big: got $size bytes"
if [ ${#WRAP[@]} -eq 0 ]; then
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$PID_a/status")
    [ "$hwm" -lt 65536 ] || fail "body_bytes=$big: peak RSS ${hwm} kB"
fi
ok "body_bytes=256MiB streams without holding the body"

# ---- raw --------------------------------------------------------------
curl -sS -o "$TMP/raw" "http://127.0.0.1:$A/test?raw=%7B%22t%22%3A1%7D%20x%FF%00z" ||
    fail "raw: curl failed"
printf '{"t":1} x\377\000z' | cmp -s - "$TMP/raw" ||
    fail "raw: got $(od -c "$TMP/raw" | head -2)"
code=$(curl -sS -o "$TMP/raw" -w '%{http_code}' \
    "http://127.0.0.1:$A/test?raw=&status=503")
[ "$code" = 503 ] && [ ! -s "$TMP/raw" ] ||
    fail "raw= with status=503: got $code and $(wc -c <"$TMP/raw") bytes"
ok "raw answers exactly its bytes, NUL and non-UTF-8 included"

# ---- bad input -------------------------------------------------------
for q in delay_ms=abc delay_ms=-1 delay_ms= status=99 status=600 \
    status=abc status=150 body_bytes=-5 body_bytes=1 hang=2 record=x; do
    knob=${q%%=*}
    call "$A" GET "/test?$q"
    expect_code "$q" 400
    jq -e --arg k "$knob" '.error | contains("knob " + $k)' \
        <<<"$BODY" >/dev/null || fail "$q: error does not name $knob: $BODY"
done
ok "bad knob values answer 400 naming the knob"

call "$A" POST /test '[1,2]'
expect_code "array body" 400
expect "an array body is refused" '.error | contains("not a JSON object")'
call "$A" POST /test '{oops'
expect_code "invalid body" 400
expect "invalid JSON is refused" '.error | contains("not valid JSON")'
call "$A" POST /test '{} {}'
expect_code "two values" 400
expect "data after the object is refused" '.error | contains("not valid JSON")'

head -c 3 /dev/zero >"$TMP/nul"
code=$(curl -sS -o "$TMP/body" -w '%{http_code}' --data-binary @"$TMP/nul" \
    "http://127.0.0.1:$A/test")
[ "$code" = 400 ] || fail "a body of NUL bytes answered $code"
ok "a body of NUL bytes is refused"
code=$(head -c $((17 * 1024 * 1024)) /dev/zero |
    curl -sS -o "$TMP/body" -w '%{http_code}' --data-binary @- \
        "http://127.0.0.1:$A/test")
[ "$code" = 413 ] || fail "a 17 MiB body answered $code, expected 413"
ok "a body over 16 MiB answers 413"

# ---- /hits and 404 ---------------------------------------------------
call "$A" DELETE /hits
expect "DELETE /hits resets" '. == {"hits":0}'
call "$A" POST /test '{}'
call "$A" GET '/test?status=oops'
call "$A" PUT /test '[]'
call "$A" GET /hits
expect "/hits counts every /test request, bad ones too" '. == {"hits":3}'
call "$A" GET /nope
expect_code "unknown path" 404
expect "an unknown path answers 404 naming it" '.error | contains("/nope")'
call "$A" POST /hits
expect_code "POST /hits" 405
call "$A" GET /hits
expect "other paths do not count" '. == {"hits":3}'

# ---- keep-alive ------------------------------------------------------
conns=$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects} ' \
    "http://127.0.0.1:$A/test" "http://127.0.0.1:$A/test?delay_ms=10")
[ "$conns" = "1 0 " ] || fail "keep-alive: connects per request '$conns'"
ok "a second request reuses the connection"

# ---- flags -----------------------------------------------------------
check_flag() {
    local want=$1 rc=0
    shift
    timeout 5 "$SVC" "$@" >/dev/null 2>"$TMP/flag.err" || rc=$?
    [ "$rc" = 2 ] || fail "test-service $*: exit $rc, expected 2"
    grep -q -- "$want" "$TMP/flag.err" ||
        fail "test-service $*: no '$want' in: $(cat "$TMP/flag.err")"
}
check_flag --bogus --port 0 --bogus
check_flag --port --port abc
check_flag --port --port 70000
check_flag --port --name x
check_flag --port --port
check_flag --status --port 0 --status 99
check_flag --delay-ms --port 0 --delay-ms -5
check_flag --address --port 0 --address nowhere
check_flag --name --port 0 --name 'bad"name'
"$SVC" --help | grep -q -- --delay-ms || fail "--help does not list flags"
ok "bad flags exit 2 naming the flag; --help works"

rc=0
timeout 5 "$SVC" --port "$A" >/dev/null 2>"$TMP/busy.err" || rc=$?
[ "$rc" = 1 ] || fail "a busy port: exit $rc, expected 1"
grep -q "cannot listen on 127.0.0.1:$A" "$TMP/busy.err" ||
    fail "a busy port: unclear error: $(cat "$TMP/busy.err")"
ok "a busy port fails with exit 1"

# ---- stop ------------------------------------------------------------
curl -sS -o /dev/null "http://127.0.0.1:$A/test?hang=1" 2>/dev/null &
hung=$!
sleep 0.3
t0=$(date +%s.%N)
kill -TERM "$PID_a"
rc=0
for k in $(seq 1 $((STOP_LIMIT_S * 20))); do
    running "$PID_a" || break
    sleep 0.05
done
running "$PID_a" &&
    fail "SIGTERM: still running after ${STOP_LIMIT_S}s with a request hanging"
wait "$PID_a" || rc=$?
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
[ "$rc" = 0 ] || fail "SIGTERM: exit $rc, expected 0: $(cat "$TMP/a.err")"
wait "$hung" || true
ok "SIGTERM with a request hanging exits 0 in ${took}s"

for name in b c; do
    pid_var=PID_$name
    kill -INT "${!pid_var}"
    rc=0
    wait "${!pid_var}" || rc=$?
    [ "$rc" = 0 ] || fail "SIGINT: service $name exited $rc"
done
ok "SIGINT exits 0"

echo "all $CHECKS checks passed"
