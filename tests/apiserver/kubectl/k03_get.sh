# Checklist #13-#19 and #26: tables, -A, labels, get all, -o yaml,
# NotFound, selectors, chunked lists, status subresource get.
. "$(dirname "$0")/lib.sh"
start_sim
setup_astro_crd
kubectl apply -f "$DATA/astro-a1.yaml" >/dev/null
kubectl create ns team-a >/dev/null 2>&1 ||
    api POST /api/v1/namespaces '{"metadata":{"name":"team-a"}}' >/dev/null
sed 's/name: a1$/name: a2/' "$DATA/astro-a1.yaml" |
    kubectl apply -n team-a -f - >/dev/null
kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"Running","nodeNumber":2,"readyNodeNumber":1}}' \
    >/dev/null
kubectl apply -f "$DATA/cm-demo.yaml" >/dev/null

item 13 "get astros (CRD printer columns)"
run kubectl get astros
expect_rc 0
expect_out '^NAME +PHASE +NODENUMBER +READYNODENUMBER +AGE$'
expect_out '^a1 +Running +2 +1 +[0-9]+s$'

item 14 "get astro -A --show-labels (short name)"
run kubectl get astro -A --show-labels
expect_rc 0
expect_out '^NAMESPACE +NAME +PHASE +NODENUMBER +READYNODENUMBER +AGE +LABELS$'
expect_out '^default +a1 +Running +2 +1 +[0-9]+s +app=demo$'
expect_out '^team-a +a2 +[0-9]+s +app=demo$'

item 15 "get all"
run kubectl get all
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 +Running +2 +1 +[0-9]+s$'

item 16 "get astro a1 -o yaml"
run kubectl get astro a1 -o yaml
expect_rc 0
for f in 'uid: ' 'resourceVersion: "[0-9]+"' 'creationTimestamp: "' \
         'generation: 1' '^status:' 'phase: Running'; do
    expect_out "$f"
done

item 17 "get a missing astro"
run kubectl get astro nope
expect_rc 1
expect_err '^Error from server \(NotFound\): astros.astertower.kasterism.io "nope" not found$'
run kubectl get astro nope --ignore-not-found
expect_rc 0
[ -z "$OUT$ERR" ] || fail "output with --ignore-not-found"

item 18 "label and field selectors"
run kubectl get cm -l 'app=demo,tier in (x,y)'
expect_rc 0
expect_out '^demo +1 +[0-9]+s$'
run kubectl get cm --field-selector metadata.name=demo
expect_out '^demo +1 +[0-9]+s$'
run kubectl get cm -l 'app=other'
expect_rc 0
expect_err '^No resources found in default namespace\.$'
run kubectl get cm -l 'app in (a'
expect_rc 1
expect_err 'unable to parse requirement'

item 19 "get astros --chunk-size=1"
sed 's/name: a1$/name: a3/' "$DATA/astro-a1.yaml" | kubectl apply -f - >/dev/null
run kubectl get astros --chunk-size=1
expect_rc 0
expect_out '^NAME +PHASE'
expect_out '^a1 +Running'
expect_out '^a3 +[0-9]+s$'
[ "$(grep -c '^NAME' <<<"$OUT")" -eq 1 ] || fail "more than one header"
[ "$(requests 'astros\?continue=.*limit=1')" -ge 1 ] ||
    fail "no continue round trip seen"

item 26 "get astro a1 --subresource=status"
run kubectl get astro a1 --subresource=status
expect_rc 0
expect_out '^a1 +Running +2 +1 +[0-9]+s$'

finish
