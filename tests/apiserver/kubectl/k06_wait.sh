# Checklist #30-#31: kubectl wait on a condition and on a jsonpath.
# Astro has no Ready condition of its own yet; the test writes a Ready
# condition and status.observedGeneration the way the controller will.
. "$(dirname "$0")/lib.sh"
start_sim
setup_astro_crd
kubectl apply -f "$DATA/astro-a1.yaml" >/dev/null

item 30 "wait --for=condition=Ready needs observedGeneration"
kubectl patch astro a1 --subresource=status --type=merge -p \
    '{"status":{"observedGeneration":0,"conditions":[{"type":"Ready","status":"True","reason":"Reconciled","message":"ok","lastTransitionTime":"2025-01-01T00:00:00Z"}]}}' \
    >/dev/null
run kubectl wait --for=condition=Ready astro/a1 --timeout=2s
expect_rc 1
expect_err '^error: timed out waiting for the condition on astros/a1$'
kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"observedGeneration":1}}' >/dev/null
run kubectl wait --for=condition=Ready astro/a1 --timeout=10s
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 condition met$'

item 31 "wait --for=jsonpath across a forced 410"
kubectl wait --for=jsonpath='{.status.phase}'=Success astro/a1 \
    --timeout=30s >"$WORK/wait.out" 2>&1 &
waiter=$!
for _ in $(seq 50); do
    [ "$(requests 'astros\?allowWatchBookmarks=true.*watch=true')" -ge 1 ] &&
        break
    sleep 0.1
done
# The open watch ends after one event; the re-watch then gets a 410.
faults '{"watchDropEvery":1,"force410":1}'
kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"Working"}}' >/dev/null
for _ in $(seq 50); do
    grep -q 'forcing 410' "$WORK/sim.log" && break
    sleep 0.1
done
sleep 0.5
kubectl patch astro a1 --subresource=status --type=merge \
    -p '{"status":{"phase":"Success"}}' >/dev/null
wait $waiter && RC=0 || RC=$?
OUT=$(cat "$WORK/wait.out"); ERR=
faults '{}'
expect_rc 0
expect_out '^astro.astertower.kasterism.io/a1 condition met$'
grep -q 'forcing 410' "$WORK/sim.log" || fail "no 410 was forced"

finish
