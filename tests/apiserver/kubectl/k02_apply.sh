# Checklist #6-#12: client-side and server-side apply, create errors,
# validation; and the paper's diamond Astro with its printer columns.
. "$(dirname "$0")/lib.sh"
start_sim
setup_astro_crd

item 6 "apply a new Astro"
run kubectl apply -f "$DATA/astro-a1.yaml"
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 created$'
grep -q 'POST /apis/astertower.kasterism.io/v1alpha1/namespaces/default/astros?.*fieldManager=kubectl-client-side-apply' \
    "$WORK/sim.log" || fail "no client-side-apply POST seen"
run kubectl get astro a1 -o \
    jsonpath='{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}'
expect_out '"name":"a1"'

item 7 "apply unchanged sends no PATCH"
before=$(requests '^DEBUG sim-apiserver: PATCH ')
run kubectl apply -f "$DATA/astro-a1.yaml"
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 unchanged$'
[ "$(requests '^DEBUG sim-apiserver: PATCH ')" -eq "$before" ] ||
    fail "a PATCH was sent for an unchanged object"

item 8 "apply a changed Astro"
# v2 changes star a, drops star b and, here, the labels too: a removed
# map key is what the merge patch must carry as null.
sed '/^  labels:$/,/^    app: demo$/d' "$DATA/astro-a1-v2.yaml" >"$WORK/v2.yaml"
run kubectl apply -v=8 -f "$WORK/v2.yaml"
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 configured$'
body=$(grep '"Request Body" body="{\\"metadata' <<<"$ERR" | tail -n 1)
grep -q 'Content-Type: application/merge-patch+json' <<<"$ERR" ||
    fail "the patch was not a merge patch"
grep -qF '\"labels\":null' <<<"$body" ||
    fail "the merge patch has no null for the removed labels: $body"
run kubectl get astro a1 -o jsonpath='{.spec.stars[0].port} {.metadata.generation}'
expect_out '^9000 2$'
run kubectl get astro a1 -o \
    jsonpath='{.spec.stars[*].name}|{.metadata.labels}|'
expect_out '^a\|\|$'

item 9 "server-side apply"
run kubectl apply --server-side -f "$DATA/astro-a1.yaml"
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 serverside-applied$'
sed 's/name: a1$/name: ssa-fresh/' "$DATA/astro-a1.yaml" >"$WORK/fresh.yaml"
run kubectl apply --server-side -v=6 -f "$WORK/fresh.yaml"
expect_rc 0
expect_out '^astro.astertower.kasterism.io/ssa-fresh serverside-applied$'
expect_err 'PATCH https://[^ ]+/astros/ssa-fresh\?[^ ]* 201 Created '
run kubectl get astro ssa-fresh -o name
expect_out '^astro.astertower.kasterism.io/ssa-fresh$'
# The same by hand: 201 when the apply creates, 200 once it exists.
sed 's/name: a1$/name: ssa-curl/' "$DATA/astro-a1.yaml" >"$WORK/curl.yaml"
path=/apis/astertower.kasterism.io/v1alpha1/namespaces/default/astros
for want in 201 200; do
    run curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/ca.pem" \
        -H "Authorization: Bearer $TOKEN" -X PATCH \
        -H 'Content-Type: application/apply-patch+yaml' \
        --data-binary @"$WORK/curl.yaml" \
        "$URL$path/ssa-curl?fieldManager=test"
    expect_out "^$want\$"
done

item 10 "ConfigMap apply twice (strategic merge patch)"
run kubectl apply -f "$DATA/cm-demo.yaml"
expect_out '^configmap/demo created$'
run kubectl apply -f "$DATA/cm-demo-v2.yaml"
expect_rc 0
expect_out '^configmap/demo configured$'
grep -q 'PATCH /api/v1/namespaces/default/configmaps/demo' "$WORK/sim.log" ||
    fail "no PATCH for the ConfigMap"
run kubectl get cm demo -o jsonpath='{.data.a}{.data.b}'
expect_out '^23$'

item 11 "create an existing object"
run kubectl create -f "$DATA/astro-a1.yaml"
expect_rc 1
expect_err "^Error from server \(AlreadyExists\): error when creating \"$DATA/astro-a1.yaml\": astros.astertower.kasterism.io \"a1\" already exists$"

item 12 "create an invalid object"
run kubectl create -f "$DATA/astro-bad.yaml"
expect_rc 1
expect_err '^The Astro "bad" is invalid: spec.stars\[0\].port: Invalid value: -1: spec.stars\[0\].port in body should be greater than or equal to 1$'

item diamond "apply tests/data/astro-diamond.yaml, get astros"
run kubectl apply -f "$CASES/astro-diamond.yaml"
expect_rc 0
expect_out '^astro.astertower.kasterism.io/astro-demo created$'
run kubectl patch astro astro-demo --subresource=status --type=merge \
    -p '{"status":{"phase":"Success","nodeNumber":4,"readyNodeNumber":4}}'
expect_rc 0
run kubectl get astros
expect_rc 0
expect_out '^NAME +PHASE +NODENUMBER +READYNODENUMBER +AGE$'
expect_out '^astro-demo +Success +4 +4 +[0-9]+s$'
expect_out '^a1 +[0-9]+s$'

finish
