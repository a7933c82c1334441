# deploy/crds/astros.yaml against sim-apiserver with the real kubectl:
# the CRD installs and becomes established, the original project's sample
# Astro applies unchanged, the printer columns show, the status subresource
# takes a phase and a free-form result, and the schema refuses bad values.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/conformance/lib/sim.sh"

CRD="$ROOT/deploy/crds/astros.yaml"
command -v kubectl >/dev/null || fail "kubectl is not installed"

sim_start "$ASTER_BIN" "$E2E_TMP" || fail "sim-apiserver did not start"
E2E_PIDS+=("$SIM_PID")

# k ARGS...: runs kubectl, keeping its output in $OUT; fails the test with
# kubectl's own message when it exits non-zero.
k() {
    OUT=$(kubectl "$@" 2>&1) || fail "kubectl $*: $OUT"
}

# k_refused WHAT ARGS...: kubectl must exit non-zero; $OUT holds its output.
k_refused() {
    local what=$1
    shift
    if OUT=$(kubectl "$@" 2>&1); then
        fail "$what was accepted: kubectl $*"
    fi
}

k apply -f "$CRD"
grep -q 'astros.astertower.kasterism.io created' <<<"$OUT" \
    || fail "CRD not created: $OUT"
k wait --for condition=established --timeout=20s \
    crd/astros.astertower.kasterism.io

k get crd astros.astertower.kasterism.io \
    -o 'jsonpath={.spec.names.shortNames[0]}/{.spec.names.listKind}/{.spec.scope}'
[ "$OUT" = "astro/AstroList/Namespaced" ] || fail "CRD names: $OUT"

k apply -f "$ASTER_CASES/astro-diamond.yaml"
grep -q 'astro.astertower.kasterism.io/astro-demo created' <<<"$OUT" \
    || fail "sample Astro not created: $OUT"

k get astros
head -1 <<<"$OUT" | grep -Eq '^NAME +PHASE +NODENUMBER +READYNODENUMBER +AGE$' \
    || fail "printer columns: $OUT"
grep -Eq '^astro-demo +[0-9]+s$' <<<"$OUT" || fail "astro row: $OUT"

k patch astro astro-demo --subresource=status --type=merge -p \
    '{"status":{"phase":"Success","nodeNumber":4,"result":{"status":{"health":true},"data":{"x":[1,{"y":2}]}}}}'
k get astro astro-demo
grep -Eq '^astro-demo +Success +4 +[0-9]+s$' <<<"$OUT" \
    || fail "patched status does not show: $OUT"
k get astro astro-demo \
    -o 'jsonpath={.status.result.status.health}/{.status.result.data.x[1].y}'
[ "$OUT" = "true/2" ] || fail "free-form result not kept: $OUT"

# The rest of the status schema: refs, conditions, truncation fields.
k patch astro astro-demo --subresource=status --type=merge -p '{"status":{
  "readyNodeNumber":4,"observedGeneration":1,"resultTruncated":false,
  "resultSize":52,
  "conditions":[{"type":"Ready","status":"True","reason":"RunFinished",
    "message":"run 1 healthy","lastTransitionTime":"2024-01-01T00:00:00Z",
    "observedGeneration":1}],
  "deploymentRef":[{"star":"a","name":"astro-demo-a"}],
  "serviceRef":[{"star":"a","name":"astro-demo-a","clusterIP":"10.0.0.1",
    "port":8000}],
  "astermuleRef":{"pod":"astro-demo-astermule","configMap":"astro-demo-dag",
    "podIP":"10.1.0.1","runId":"1"}}}'
k get astro astro-demo
grep -Eq '^astro-demo +Success +4 +4 +[0-9]+s$' <<<"$OUT" \
    || fail "readyNodeNumber does not show: $OUT"

# The main endpoint must not take status; the status endpoint not spec.
k patch astro astro-demo --type=merge -p '{"status":{"phase":"Wrong"}}'
k get astro astro-demo -o 'jsonpath={.status.phase}'
[ "$OUT" = "Success" ] || fail "status changed through the main endpoint"

# The schema is enforced: these must all be refused.
k_refused "unknown phase" patch astro astro-demo --subresource=status \
    --type=merge -p '{"status":{"phase":"Done"}}'
grep -q 'Unsupported value: "Done"' <<<"$OUT" || fail "phase enum: $OUT"
k_refused "port 70000" patch astro astro-demo --type=json -p \
    '[{"op":"replace","path":"/spec/stars/0/port","value":70000}]'
grep -q 'spec.stars\[0\].port' <<<"$OUT" || fail "port maximum: $OUT"
k_refused "star type lambda" patch astro astro-demo --type=json -p \
    '[{"op":"replace","path":"/spec/stars/0/type","value":"lambda"}]'
k_refused "negative retries" patch astro astro-demo --type=json -p \
    '[{"op":"add","path":"/spec/stars/0/retries","value":-1}]'
k_refused "star without a type" patch astro astro-demo --type=json -p \
    '[{"op":"remove","path":"/spec/stars/0/type"}]'

# Fields the controller documents are accepted: timeouts as number or
# string, retries, a device block with any content, pull secrets.
k patch astro astro-demo --type=json -p '[
  {"op":"add","path":"/spec/stars/0/timeout","value":"5s"},
  {"op":"add","path":"/spec/stars/1/timeout","value":3000},
  {"op":"add","path":"/spec/stars/1/retries","value":2},
  {"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"regcred"}]}]'
k apply -f - <<'YAML'
apiVersion: astertower.kasterism.io/v1alpha1
kind: Astro
metadata:
  name: astro-device
spec:
  stars:
  - name: temp
    type: device
    device:
      edgex: {device: Random-Integer-Device, command: Int8}
      anything: [1, 2]
YAML
k get astro astro-device -o 'jsonpath={.spec.stars[0].device.edgex.command}'
[ "$OUT" = "Int8" ] || fail "device block not kept: $OUT"

k delete -f "$ASTER_CASES/astro-diamond.yaml"
k delete -f "$CRD"
echo "PASS deploy_crd"
