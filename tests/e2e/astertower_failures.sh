#!/usr/bin/env bash
# Each failure phase for its reason, with a condition and a Warning
# Event: a bad image -> DeployFailed; a node answering 500 -> Wrong,
# naming the node; an invalid spec -> DeployFailed; the engine crashing
# -> EngineFailed. Also: a result over --max-result-bytes is stored
# truncated with its size.
source "$(dirname "$0")/../controller/lib.sh"

ct_start_sim
ct_start_ctl --deploy-timeout 30s --engine-timeout 20s --max-result-bytes 4096

# cond NAME TYPE: "status/reason" of a condition.
cond() {
    ct_json "$1" "[c['status'] + '/' + c['reason'] for c in d['status']['conditions'] if c['type'] == '$2'][0]"
}

# warned NAME REASON: a Warning Event with that reason exists.
warned() {
    kubectl get events --field-selector "involvedObject.name=$1,type=Warning" \
        -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' |
        grep "^$2: "
}

ct_astro astro-500 '/test?status=500' | kubectl apply -f - >/dev/null
ct_astro astro-big '/test?body_bytes=6000' | kubectl apply -f - >/dev/null
sed -e 's/name: astro-demo/name: astro-badimg/' \
    -e 's|image: kasterism/test_b|image: example.com/nothing/here:1|' \
    "$ASTER_CASES/astro-diamond.yaml" | kubectl apply -f - >/dev/null
sed -e 's/name: astro-demo/name: astro-invalid/' -e '0,/type: docker/s//type: device/' \
    "$ASTER_CASES/astro-diamond.yaml" | kubectl apply -f - >/dev/null

ct_wait_phase astro-badimg DeployFailed 30
c=$(cond astro-badimg Deployed)
case "$c" in
False/ImagePullBackOff | False/ErrImagePull) ;;
*) fail "astro-badimg Deployed condition: $c" ;;
esac
ct_json astro-badimg "[c['message'] for c in d['status']['conditions'] if c['type'] == 'Deployed'][0]" |
    grep -q '^star b: container \(ImagePullBackOff\|ErrImagePull\)' ||
    fail "DeployFailed message does not name star b"
warned astro-badimg 'ImagePullBackOff\|ErrImagePull' | grep -q 'star b' ||
    fail "no Warning Event naming star b"
pass "a bad image ends in DeployFailed naming the star"

ct_wait_phase astro-500 Wrong 30
[ "$(ct_json astro-500 'd["status"]["result"]["failed"]')" = "['c']" ] ||
    fail "result does not name c as failed"
[ "$(ct_json astro-500 'd["status"]["result"]["nodes"]["c"]["httpStatus"]')" = 500 ] ||
    fail "c's status is not 500"
[ "$(ct_json astro-500 'd["status"]["result"]["nodes"]["d"]["state"]')" = skipped ] ||
    fail "d not skipped"
[ "$(cond astro-500 Succeeded)" = False/RunFailed ] || fail "Succeeded condition"
warned astro-500 RunFailed | grep -q 'node c' ||
    fail "no Warning RunFailed Event naming node c"
pass "a node answering 500 ends in Wrong naming the node"

ct_wait_phase astro-invalid DeployFailed 10
[ "$(cond astro-invalid Deployed)" = False/InvalidSpec ] ||
    fail "invalid spec condition"
warned astro-invalid InvalidSpec | grep -q 'spec.stars\[0\].type' ||
    fail "no InvalidSpec Event naming the field"
[ "$(ct_count deployments astertower.kasterism.io/astro=astro-invalid)" = 0 ] ||
    fail "children created for an invalid spec"
pass "an invalid spec ends in DeployFailed and creates nothing"

ct_wait_phase astro-big Success 30
[ "$(ct_json astro-big 'd["status"]["resultTruncated"]')" = True ] ||
    fail "big result not marked truncated"
[ "$(ct_json astro-big 'd["status"]["resultSize"] > 6000')" = True ] ||
    fail "resultSize is not the full size"
[ "$(ct_json astro-big '"data" in d["status"]["result"]')" = False ] ||
    fail "truncated result kept its data"
[ "$(ct_json astro-big 'd["status"]["result"]["status"]["health"]')" = True ] ||
    fail "truncated result lost its health"
pass "a result over the limit is stored truncated with its size"

# The engine image now exits at once: the pod (restartPolicy Never) fails.
ct_faults '{"crashLoopImage":"kasterism/astermule*"}'
ct_astro astro-crash | kubectl apply -f - >/dev/null
ct_wait_phase astro-crash EngineFailed 30
c=$(cond astro-crash EngineReady)
case "$c" in
False/EngineExited | False/CrashLoopBackOff) ;;
*) fail "astro-crash EngineReady condition: $c" ;;
esac
warned astro-crash 'EngineExited\|CrashLoopBackOff' | grep -q 'engine pod' ||
    fail "no Warning Event for the engine"
pass "an engine pod failing ends in EngineFailed"
ct_faults '{}'

# Final phases stay put.
sleep 1
[ "$(ct_phase astro-500)" = Wrong ] || fail "Wrong did not stay"
[ "$(ct_phase astro-badimg)" = DeployFailed ] || fail "DeployFailed did not stay"
pass "final phases stay"

ct_stop_ctl TERM
[ "$CT_CTL_RC" = 0 ] || fail "astertower exited $CT_CTL_RC on SIGTERM"
pass "astertower stops cleanly on SIGTERM"
