# Checklist #34-#38: delete, finalizers, cascading modes, namespaces.
. "$(dirname "$0")/lib.sh"
start_sim
setup_astro_crd

# astro NAME [FINALIZER]: creates an Astro from astro-a1.yaml.
astro() {
    sed "s/name: a1$/name: $1/" "$DATA/astro-a1.yaml" >"$WORK/$1.yaml"
    if [ -n "${2:-}" ]; then
        sed -i "s|^  labels:|  finalizers: [\"$2\"]\n  labels:|" \
            "$WORK/$1.yaml"
    fi
    kubectl apply -f "$WORK/$1.yaml" >/dev/null || fail "creating $1"
}

# dependent NAME OWNER BLOCK [FINALIZER]: a ConfigMap owned by an Astro.
dependent() {
    local uid
    uid=$(kubectl get astro "$2" -o jsonpath='{.metadata.uid}')
    kubectl apply -f - >/dev/null <<EOT || fail "creating $1"
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  finalizers: [${4:-}]
  ownerReferences:
  - apiVersion: astertower.kasterism.io/v1alpha1
    kind: Astro
    name: $2
    uid: $uid
    controller: true
    blockOwnerDeletion: $3
EOT
}

gone() {
    ! kubectl get "$1" "$2" ${3:+-n "$3"} >/dev/null 2>&1
}

item 34 "delete without finalizers (and its dependents)"
astro w1
dependent w1-cm w1 true
run kubectl delete astro w1
expect_rc 0
expect_out '^astro.astertower.kasterism.io "w1" deleted$'
gone astro w1 || fail "w1 still there"
gone cm w1-cm || fail "background GC left w1-cm"

item 35 "delete waits for the controller to drop its finalizer"
astro wf astertower.kasterism.io/cleanup
kubectl delete astro wf >"$WORK/del.out" 2>&1 &
deleter=$!
sleep 1.5
run kubectl get astro wf -o jsonpath='{.metadata.deletionTimestamp}'
expect_out '^[0-9]{4}-[0-9]{2}-[0-9]{2}T'
kill -0 $deleter 2>/dev/null || fail "kubectl delete returned early"
kubectl patch astro wf --type=merge \
    -p '{"metadata":{"finalizers":null}}' >/dev/null
wait $deleter && RC=0 || RC=$?
OUT=$(cat "$WORK/del.out"); ERR=
expect_rc 0
expect_out '^astro.astertower.kasterism.io "wf" deleted$'
gone astro wf || fail "wf still there"

item 36 "foreground deletion waits for blocking dependents"
astro fg
dependent fg-held fg true '"example.com/hold"'
dependent fg-free fg false
run kubectl delete astro fg --cascade=foreground --wait=false
expect_rc 0
expect_out '^astro.astertower.kasterism.io "fg" deleted$'
run kubectl get astro fg -o jsonpath='{.metadata.finalizers}'
expect_out 'foregroundDeletion'
gone cm fg-free || fail "fg-free survived"
kubectl patch cm fg-held --type=merge \
    -p '{"metadata":{"finalizers":null}}' >/dev/null
gone cm fg-held || fail "fg-held survived"
gone astro fg || fail "fg survived its dependents"

item 37 "orphan deletion keeps dependents"
astro or
dependent or-cm or true
run kubectl delete astro or --cascade=orphan
expect_rc 0
expect_out '^astro.astertower.kasterism.io "or" deleted$'
gone astro or || fail "or still there"
run kubectl get cm or-cm -o jsonpath='{.metadata.ownerReferences}'
expect_rc 0
[ -z "$OUT" ] || fail "ownerReferences not removed"

item 38 "namespace deletion"
for ns in team-a team-b; do
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$ns" |
        kubectl apply -f - >/dev/null
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: %s\n' \
        "$ns" | kubectl apply -f - >/dev/null
done
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: team-a\n  finalizers: ["example.com/hold"]\n' |
    kubectl apply -f - >/dev/null
run kubectl delete ns team-a --wait=false
expect_out '^namespace "team-a" deleted$'
run kubectl get ns team-a
expect_out '^team-a +Terminating +[0-9]+s$'
gone cm c team-a || fail "team-a/c survived"
kubectl -n team-a patch cm held --type=merge \
    -p '{"metadata":{"finalizers":null}}' >/dev/null
run kubectl get ns team-a
expect_rc 1
expect_err '^Error from server \(NotFound\): namespaces "team-a" not found$'
run kubectl delete ns team-b
expect_rc 0
expect_out '^namespace "team-b" deleted$'
gone ns team-b || fail "team-b still there"

finish
