# The simulated cluster through the real kubectl: a Deployment and a
# Service of kasterism/test_a become available, the Pod runs on its own
# loopback IP, the Service's clusterIP:port/test answers, and deleting
# the Deployment stops the process.
. "$(dirname "$0")/lib.sh"
start_sim --bin-dir "$BIN"

cat >"$WORK/app.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: node-a
spec:
  replicas: 1
  selector:
    matchLabels: {app: node-a}
  template:
    metadata:
      labels: {app: node-a}
    spec:
      containers:
      - name: main
        image: kasterism/test_a:latest
        ports:
        - containerPort: 8000
---
apiVersion: v1
kind: Service
metadata:
  name: node-a
spec:
  selector: {app: node-a}
  ports:
  - port: 8000
    targetPort: 8000
EOF

item c1 "apply a Deployment and a Service"
run kubectl apply -f "$WORK/app.yaml"
expect_rc 0
expect_out '^deployment.apps/node-a created$'
expect_out '^service/node-a created$'

item c2 "wait for the Deployment to be Available"
run kubectl wait --for=condition=Available deployment/node-a --timeout=30s
expect_rc 0
expect_out '^deployment.apps/node-a condition met$'
run kubectl get deployment node-a
expect_out '^node-a +1/1 +1 +1 +[0-9]+s$'

item c3 "the Pod runs on a loopback IP, -o wide has every column"
run kubectl get pods -o wide
expect_rc 0
head_re='^NAME +READY +STATUS +RESTARTS +AGE +IP +NODE '
expect_out "$head_re+NOMINATED NODE +READINESS GATES\$"
name_re='node-a-[a-z0-9]+-[a-z0-9]{5}'
ip_re='127\.1\.[0-9]+\.[0-9]+'
none3='<none> +<none> +<none>'
expect_out "^$name_re +1/1 +Running +0 +[0-9]+s +$ip_re +$none3\$"
pod=$(kubectl get pods -l app=node-a -o jsonpath='{.items[0].metadata.name}')

item c4 "clusterIP:port/test answers with the Pod's name"
ip=$(kubectl get service node-a -o jsonpath='{.spec.clusterIP}')
run curl -sS --noproxy '*' -d '{"x":1}' "http://$ip:8000/test"
expect_rc 0
expect_out "\"name\":\"$pod\""

item c5 "deleting the Deployment stops the process"
pod_ip=$(kubectl get pod "$pod" -o jsonpath='{.status.podIP}')
run kubectl delete deployment node-a
expect_rc 0
expect_out '^deployment.apps "node-a" deleted$'
gone=0
for _ in $(seq 100); do
    if ! pgrep -f "test-service --address $pod_ip " >/dev/null; then
        gone=1
        break
    fi
    sleep 0.1
done
[ "$gone" -eq 1 ] || fail "test-service on $pod_ip still runs"
run kubectl get pods
expect_err '^No resources found in default namespace\.$'
run curl -sS --noproxy '*' -m 2 "http://$ip:8000/test"
[ "$RC" -ne 0 ] || fail "the Service still answers without endpoints"

item c6 "pull failure set over HTTP gives ImagePullBackOff"
faults '{"pullFailImage":"kasterism/test_z*"}'
run api GET /_sim/faults
expect_out '"pullFailImage":"kasterism/test_z\*"'
sed -e 's/node-a/zed/g' -e 's/test_a:latest/test_z:1/' \
    -e '/^---$/,$d' "$WORK/app.yaml" | kubectl apply -f - >/dev/null
jp='{.items[0].status.containerStatuses[0].state.waiting.reason}: '
jp+='{.items[0].status.containerStatuses[0].state.waiting.message}'
for _ in $(seq 100); do
    run kubectl get pods -l app=zed -o jsonpath="$jp"
    grep -q ImagePullBackOff <<<"$OUT" && break
    sleep 0.1
done
expect_out '^ImagePullBackOff: Back-off pulling image "kasterism/test_z:1"$'
# The STATUS column names the container's waiting reason, not the phase
# (Pending); the kubelet retries, so either pull reason may show.
run kubectl get pods -l app=zed
expect_rc 0
pod_re='-[a-z0-9]+-[a-z0-9]{5} +0/1'
expect_out "^zed$pod_re +(ImagePullBackOff|ErrImagePull) +0 +[0-9]+s\$"
kubectl delete deployment zed >/dev/null

item c7 "a crash-looping container shows CrashLoopBackOff"
faults '{"crashLoopImage":"kasterism/test_crash*"}'
sed -e 's/node-a/crash/g' -e 's/test_a:latest/test_crash:1/' \
    -e '/^---$/,$d' "$WORK/app.yaml" | kubectl apply -f - >/dev/null
for _ in $(seq 100); do
    run kubectl get pods -l app=crash
    grep -q CrashLoopBackOff <<<"$OUT" && break
    sleep 0.1
done
expect_out "^crash$pod_re +CrashLoopBackOff +[1-9][0-9]* +[0-9]+s\$"
kubectl delete deployment crash >/dev/null

finish
