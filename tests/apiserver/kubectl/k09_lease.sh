# Checklist #39: a leader-election Lease as a controller writes it.
. "$(dirname "$0")/lib.sh"
start_sim
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ops\n' |
    kubectl apply -f - >/dev/null
cat >"$WORK/lease.yaml" <<'EOT'
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: astertower-controller-leader
  namespace: ops
spec:
  holderIdentity: host-a_6f1c2e0e
  leaseDurationSeconds: 15
  acquireTime: "2025-01-01T10:00:00.000000Z"
  renewTime: "2025-01-01T10:00:12.345678Z"
  leaseTransitions: 2
EOT
kubectl create -f "$WORK/lease.yaml" >/dev/null || fail "lease not created"

item 39 "get lease -o yaml"
run kubectl get lease -n ops astertower-controller-leader -o yaml
expect_rc 0
expect_out '^  holderIdentity: host-a_6f1c2e0e$'
expect_out '^  leaseDurationSeconds: 15$'
expect_out '^  acquireTime: "2025-01-01T10:00:00.000000Z"$'
expect_out '^  renewTime: "2025-01-01T10:00:12.345678Z"$'
expect_out '^  leaseTransitions: 2$'
run kubectl get lease -n ops
expect_out '^NAME +HOLDER +AGE$'
expect_out '^astertower-controller-leader +host-a_6f1c2e0e +[0-9]+s$'

finish
