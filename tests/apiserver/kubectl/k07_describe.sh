# Checklist #32-#33: describe with events, get events, kubectl events.
. "$(dirname "$0")/lib.sh"
start_sim
setup_astro_crd
kubectl apply -f "$DATA/astro-a1.yaml" >/dev/null
uid=$(kubectl get astro a1 -o jsonpath='{.metadata.uid}')
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat >"$WORK/event.yaml" <<EOT
apiVersion: v1
kind: Event
metadata:
  name: a1.1812f4a9c3b2d7e0
  namespace: default
involvedObject:
  apiVersion: astertower.kasterism.io/v1alpha1
  kind: Astro
  name: a1
  namespace: default
  uid: $uid
reason: Reconciled
message: created 2 deployments
type: Normal
source:
  component: astertower-controller
firstTimestamp: "$now"
lastTimestamp: "$now"
count: 1
reportingComponent: astertower-controller
reportingInstance: host-a
EOT
kubectl create -f "$WORK/event.yaml" >/dev/null || fail "event not created"
kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"Running","nodeNumber":2,"readyNodeNumber":1}}' \
    >/dev/null || fail "status patch refused"

item 32 "describe astro a1"
run kubectl describe astro a1
expect_rc 0
for s in '^Name: +a1$' '^Namespace: +default$' '^Labels: +app=demo$' \
         '^Annotations: ' '^API Version: +astertower.kasterism.io/v1alpha1$' \
         '^Kind: +Astro$' '^Metadata:$' '^Spec:$' '^Status:$' \
         '^  Node Number: +2$' '^  Phase: +Running$' \
         '^  Ready Node Number: +1$' '^Events:$' \
         'Normal +Reconciled +[0-9]+s +astertower-controller +created 2 deployments'; do
    expect_out "$s"
done
grep -q 'events?fieldSelector=involvedObject' "$WORK/sim.log" ||
    fail "describe did not query events by involvedObject"

item 33 "get events / kubectl events"
run kubectl get events
expect_rc 0
expect_out '^LAST SEEN +TYPE +REASON +OBJECT +MESSAGE$'
expect_out '^[0-9]+s +Normal +Reconciled +astro/a1 +created 2 deployments$'
run kubectl events
expect_rc 0
expect_out '^LAST SEEN +TYPE +REASON +OBJECT +MESSAGE$'
expect_out 'Normal +Reconciled +Astro/a1 +created 2 deployments$'

finish
