#!/usr/bin/env bash
# The controller on the simulated cluster: the diamond reaches Success
# with the right result, kubectl shows its columns, every transition has
# a condition and an Event; two Astros with the same star names run side
# by side; a spec change starts over; deleting an Astro removes its
# children and its finalizer.
source "$(dirname "$0")/../controller/lib.sh"

ct_start_sim
ct_start_ctl
ctl_err=$CT_TMP/ctl1.err

kubectl apply -f "$ASTER_CASES/astro-diamond.yaml" >/dev/null
ct_wait_phase astro-demo Success 40
pass "the diamond reached Success"

[ "$(ct_json astro-demo 'd["status"]["result"]["status"]["health"]')" = True ] ||
    fail "result not healthy"
[ "$(ct_json astro-demo 'sorted(k for k, v in d["status"]["result"]["nodes"].items() if v["state"] == "succeeded")')" = "['a', 'b', 'c', 'd']" ] ||
    fail "not every node succeeded"
# The exit node d answers with its own name: its pod's name.
ct_json astro-demo 'd["status"]["result"]["data"]["name"]' |
    grep -q '^astro-demo-d-' || fail "result data is not d's answer"
[ "$(ct_json astro-demo 'd["status"]["resultTruncated"]')" = False ] ||
    fail "small result marked truncated"
[ "$(ct_json astro-demo 'd["status"]["observedGeneration"] == d["metadata"]["generation"]')" = True ] ||
    fail "observedGeneration behind"
[ "$(ct_json astro-demo '[s["clusterIP"].startswith("127.2.") for s in d["status"]["serviceRef"]]')" = "[True, True, True, True]" ] ||
    fail "serviceRef lacks cluster IPs"
[ "$(ct_json astro-demo 'd["status"]["astermuleRef"]["runId"] != ""')" = True ] ||
    fail "no runId"
pass "status holds the result, refs and observedGeneration"

out=$(kubectl get astros)
echo "$out" | head -1 | grep -Eq '^NAME +PHASE +NODENUMBER +READYNODENUMBER +AGE$' ||
    fail "kubectl get astros header: $out"
echo "$out" | grep -Eq '^astro-demo +Success +4 +4 +[0-9]+s$' ||
    fail "kubectl get astros row: $out"
pass "kubectl get astros shows Phase, NodeNumber, ReadyNodeNumber, Age"

for c in Initialized Deployed EngineReady Succeeded; do
    [ "$(ct_json astro-demo "[c['status'] for c in d['status']['conditions'] if c['type'] == '$c']")" = "['True']" ] ||
        fail "condition $c not True"
done
events=$(kubectl get events --field-selector involvedObject.name=astro-demo \
    -o jsonpath='{range .items[*]}{.type}/{.reason} {end}')
for r in ChildrenCreated StarsAvailable EngineReady RunSucceeded; do
    echo "$events" | grep -q "Normal/$r" || fail "no Normal $r event: $events"
done
grep -q 'astro default/astro-demo: Waited -> Ready (engine pod at 127\.1\.' \
    "$ctl_err" || fail "no transition log line"
pass "a condition, an Event and a log line per transition"

refs=$(kubectl get deployment astro-demo-a -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion}')
[ "$refs" = "Astro/true/true" ] || fail "Deployment owner reference: $refs"
refs=$(kubectl get pod astro-demo-astermule -o jsonpath='{.metadata.ownerReferences[0].kind}/{.spec.restartPolicy}')
[ "$refs" = "Astro/Never" ] || fail "engine pod: $refs"
kubectl get configmap astro-demo-dag -o jsonpath='{.data.dag\.json}' |
    grep -q '"url":"http://127\.2\.' || fail "DAG does not use cluster IPs"
pass "children are owned by the Astro; the DAG uses the Services' IPs"

# A second Astro with the same star names, side by side.
ct_astro astro-twin | kubectl apply -f - >/dev/null
ct_wait_phase astro-twin Success 40
[ "$(ct_count deployments app.kubernetes.io/managed-by=astertower)" = 8 ] ||
    fail "not 8 Deployments for two Astros"
ct_json astro-twin 'd["status"]["result"]["data"]["name"]' |
    grep -q '^astro-twin-d-' || fail "the twin's result came from another Astro"
[ "$(ct_hits astro-demo a 8000)" = 1 ] || fail "the twin's run called astro-demo's a"
[ "$(ct_hits astro-twin a 8000)" = 1 ] || fail "the twin's a not called once"
pass "two Astros with the same star names run side by side"

# A spec change starts over: new children, a new run.
kubectl patch astro astro-twin --type=json -p \
    '[{"op":"replace","path":"/spec/stars/3/target","value":"/test?delay_ms=1"}]' \
    >/dev/null
for k in $(seq 1 100); do
    [ "$(ct_json astro-twin 'd["status"].get("observedGeneration")')" = 2 ] &&
        break
    sleep 0.1
done
ct_wait_phase astro-twin Success 40
[ "$(ct_json astro-twin 'd["status"]["observedGeneration"]')" = 2 ] ||
    fail "generation 2 not observed"
kubectl get configmap astro-twin-dag -o jsonpath='{.data.dag\.json}' |
    grep -q 'delay_ms=1' || fail "DAG of generation 2 not in place"
[ "$(ct_count deployments astertower.kasterism.io/astro=astro-twin)" = 4 ] ||
    fail "not 4 Deployments after the spec change"
pass "a spec change starts over"

# Deletion removes children and the finalizer.
[ "$(kubectl get astro astro-demo -o jsonpath='{.metadata.finalizers[0]}')" = astertower.kasterism.io/finalizer ] ||
    fail "no finalizer"
kubectl delete astro astro-demo --timeout=20s >/dev/null
kubectl get astro astro-demo >/dev/null 2>&1 && fail "astro-demo still there"
for kind in deployments services configmaps pods; do
    [ "$(ct_count $kind astertower.kasterism.io/astro=astro-demo)" = 0 ] ||
        fail "astro-demo's $kind left behind"
done
[ "$(ct_count deployments astertower.kasterism.io/astro=astro-twin)" = 4 ] ||
    fail "deleting astro-demo touched astro-twin"
grep -q 'astro default/astro-demo: being deleted; .* finalizer removed' \
    "$ctl_err" || fail "no deletion log line"
pass "deleting an Astro removes its children and its finalizer"

ct_stop_ctl TERM
[ "$CT_CTL_RC" = 0 ] || fail "astertower exited $CT_CTL_RC on SIGTERM"
pass "astertower stops cleanly on SIGTERM"
