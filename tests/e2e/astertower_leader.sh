#!/usr/bin/env bash
# Leader election: of two controllers started with --leader-elect, only
# the one holding the Lease reconciles (the other is not ready and makes
# no pass); when the leader stops it releases the Lease, and the other
# takes over and drives the next Astro, nothing done twice.
source "$(dirname "$0")/../controller/lib.sh"

B_PID=
trap 'rc=$?; [ -z "$B_PID" ] || kill "$B_PID" 2>/dev/null; (exit $rc);
      ct_cleanup' EXIT

# metric PORT NAME: a series' value from a controller's /metrics, or "".
metric() {
    curl -sf "http://127.0.0.1:$1/metrics" 2>/dev/null |
        sed -n "s/^$2 //p" | head -1
}

# holder: the Lease's holderIdentity.
holder() {
    ct_get lease astertower-leader -o jsonpath='{.spec.holderIdentity}'
}

ct_start_sim

# A starts first and leads: ct_start_ctl waits for its /readyz.
ct_start_ctl --leader-elect
A_METRICS=$CT_METRICS
first=$(holder)
[ -n "$first" ] || fail "the leader holds no Lease"

# B campaigns beside it: it serves /healthz but is not ready.
"$ASTER_BIN/astertower" --kubeconfig "$KUBECONFIG" \
    --metrics-address 127.0.0.1:0 --engine-call-timeout 1s --leader-elect \
    2>"$CT_TMP/ctlB.err" &
B_PID=$!
B_METRICS=
for k in $(seq 1 200); do
    B_METRICS=$(sed -n 's/.*metrics on port \([0-9]*\);.*/\1/p' \
        "$CT_TMP/ctlB.err" 2>/dev/null || true)
    [ -n "$B_METRICS" ] &&
        curl -sf "http://127.0.0.1:$B_METRICS/healthz" >/dev/null && break
    sleep 0.05
done
[ -n "$B_METRICS" ] || fail "the second controller did not start"
code=$(curl -s -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:$B_METRICS/readyz")
[ "$code" != 200 ] || fail "the standby controller says it is ready"
pass "one leader; the standby is not ready"

# Only the leader drives an Astro.
ct_astro astro-l1 | kubectl apply -f - >/dev/null
ct_wait_phase astro-l1 Success 60
[ "$(metric "$B_METRICS" astertower_reconciles_total)" = 0 ] ||
    fail "the standby reconciled: $(metric "$B_METRICS" \
        astertower_reconciles_total) passes"
[ "$(metric "$A_METRICS" astertower_reconciles_total)" != 0 ] ||
    fail "the leader made no pass"
[ "$(holder)" = "$first" ] || fail "the Lease changed hands while A led"
pass "only the leader reconciles"

# A stops and releases the Lease: B takes over within a few retry
# periods (2 s each), not a whole lease duration.
ct_stop_ctl TERM
[ "$CT_CTL_RC" = 0 ] || fail "the leader exited $CT_CTL_RC on SIGTERM"
for k in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$B_METRICS/readyz" >/dev/null && break
    sleep 0.05
done
curl -sf "http://127.0.0.1:$B_METRICS/readyz" >/dev/null ||
    fail "the standby did not take over within 10 s"
second=$(holder)
[ -n "$second" ] && [ "$second" != "$first" ] ||
    fail "the Lease is held by '$second' after the leader left"
pass "the standby takes over the released Lease"

ct_astro astro-l2 | kubectl apply -f - >/dev/null
ct_wait_phase astro-l2 Success 60
ct_no_duplicates astro-l1
ct_no_duplicates astro-l2
[ "$(ct_phase astro-l1)" = Success ] || fail "astro-l1 left Success"
pass "the new leader drives the next Astro; nothing done twice"

kill "$B_PID"
wait "$B_PID" || fail "the second controller exited $? on SIGTERM"
B_PID=
echo "astertower leader election: one leader, a clean hand-over"
