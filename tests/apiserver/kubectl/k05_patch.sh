# Checklist #22-#25 and #27-#29: label/annotate, patches, replace with
# conflicts, diff and server dry run.
. "$(dirname "$0")/lib.sh"
start_sim
setup_astro_crd
kubectl apply -f "$DATA/astro-a1.yaml" >/dev/null

gen() { kubectl get astro a1 -o jsonpath='{.metadata.generation}'; }

item 22 "label and annotate"
run kubectl label astro a1 env=prod
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 labeled$'
run kubectl annotate astro a1 note=hello
expect_out '^astro.astertower.kasterism.io/a1 annotated$'
[ "$(gen)" = 1 ] || fail "metadata edits bumped generation"

item 23 "merge patch on spec bumps generation"
run kubectl patch astro a1 --type=merge \
    -p '{"spec":{"stars":[{"name":"a","port":8100}]}}'
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 patched$'
[ "$(gen)" = 2 ] || fail "generation is $(gen), want 2"
run kubectl patch astro a1 --type=json \
    -p '[{"op":"replace","path":"/spec/stars/0/port","value":8200}]'
expect_out '^astro.astertower.kasterism.io/a1 patched$'
[ "$(gen)" = 3 ] || fail "generation is $(gen), want 3"

item 24 "strategic merge patch on a custom resource"
# kubectl 1.32 wraps the server's 415 Status in its own prefix (as it does
# against a real cluster); the server's message follows it.
run kubectl patch astro a1 --type=strategic -p '{"spec":{}}'
expect_rc 1
expect_err '^error: application/strategic-merge-patch\+json is not supported by astertower.kasterism.io/v1alpha1, Kind=Astro: the body of the request was in an unknown format - accepted media types include: application/json-patch\+json, application/merge-patch\+json, application/apply-patch\+yaml$'

item 25 "status patch keeps spec and generation"
run kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"Waited","nodeNumber":1}}'
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 patched$'
[ "$(gen)" = 3 ] || fail "status patch bumped generation"
run kubectl get astro a1 -o jsonpath='{.spec.stars[0].port} {.status.phase}'
expect_out '^8200 Waited$'

item 27 "replace, and replace with a stale resourceVersion"
run kubectl replace -f "$DATA/astro-a1-v2.yaml"
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 replaced$'
grep -q 'PUT /apis/astertower.kasterism.io/v1alpha1/namespaces/default/astros/a1?fieldManager=kubectl-replace' \
    "$WORK/sim.log" || fail "no PUT seen"
kubectl get astro a1 -o yaml >"$WORK/live.yaml"
kubectl label astro a1 bump=1 >/dev/null
run kubectl replace -f "$WORK/live.yaml"
expect_rc 1
expect_err '^Error from server \(Conflict\): error when replacing ".*live.yaml": Operation cannot be fulfilled on astros.astertower.kasterism.io "a1": the object has been modified; please apply your changes to the latest version and try again$'

item 28 "diff against the server"
kubectl apply -f "$DATA/astro-a1.yaml" >/dev/null
rv=$(kubectl get astro a1 -o jsonpath='{.metadata.resourceVersion}')
run kubectl diff -f "$DATA/astro-a1-v2.yaml"
expect_rc 1
expect_out '^-    port: 8000$'
expect_out '^\+    port: 9000$'
[ "$(requests 'PATCH .*astros/a1\?.*dryRun=All')" -ge 1 ] ||
    fail "no dryRun=All PATCH seen"
run kubectl diff -f "$DATA/astro-a1.yaml"
expect_rc 0
[ "$(kubectl get astro a1 -o jsonpath='{.metadata.resourceVersion}')" = "$rv" ] ||
    fail "diff changed the object"

item 29 "apply --dry-run=server"
run kubectl apply -f "$DATA/astro-a1-v2.yaml" --dry-run=server
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 configured \(server dry run\)$'
run kubectl get astro a1 -o jsonpath='{.spec.stars[0].port} {.metadata.resourceVersion}'
expect_out "^8000 $rv\$"

finish
