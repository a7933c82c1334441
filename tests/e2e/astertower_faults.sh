#!/usr/bin/env bash
# Faults from the simulated cluster and controller restarts still end in
# the right phase with nothing duplicated or lost:
#   1. dropped watches, forced 410s, 409 on first updates, 500 answers;
#   2. 429 answers with Retry-After;
#   3. the controller killed (SIGKILL) in Initialized, Waited and Ready,
#      and after Success: one of each child, one run, one call of the
#      entry node, the result kept.
source "$(dirname "$0")/../controller/lib.sh"

ct_start_sim

# 1. API faults from the controller's first request on.
ct_astro astro-f1 | kubectl apply -f - >/dev/null
ct_faults '{"watchDropEvery":4,"force410":3,"conflictFirstUpdate":true,"errorPermille":150,"errorCode":500}'
ct_start_ctl
ct_wait_phase astro-f1 Success 60
ct_faults '{}'
ct_no_duplicates astro-f1
pass "watch drops, 410s, 409s and 500s: Success, nothing duplicated"

# 2. Throttling.
ct_faults '{"errorPermille":200,"errorCode":429,"retryAfter":1}'
ct_astro astro-f2 | kubectl apply -f - >/dev/null 2>&1 ||
    ct_astro astro-f2 | kubectl apply -f - >/dev/null
ct_wait_phase astro-f2 Success 60
ct_faults '{}'
ct_no_duplicates astro-f2
pass "429 answers: Success, nothing duplicated"

# 3. Kills. Slow pod starts stretch Initialized and Waited; a slow entry
# node stretches Ready.
ct_faults '{"podStartDelayMs":1500}'
ct_astro astro-k1 /test '/test?delay_ms=2500' | kubectl apply -f - >/dev/null
for phase in Initialized Waited Ready; do
    ct_wait_phase astro-k1 $phase 30
    ct_stop_ctl KILL
    ct_start_ctl
    pass "killed in $phase, restarted"
done
ct_wait_phase astro-k1 Success 40
ct_faults '{}'
ct_no_duplicates astro-k1
run=$(ct_json astro-k1 'd["status"]["astermuleRef"]["runId"]')
pass "killed in every phase: Success, one run, nothing duplicated"

ct_stop_ctl KILL
ct_start_ctl
sleep 2
[ "$(ct_phase astro-k1)" = Success ] || fail "Success lost after a restart"
[ "$(ct_json astro-k1 'd["status"]["astermuleRef"]["runId"]')" = "$run" ] ||
    fail "run id changed after a restart"
[ "$(ct_json astro-k1 'd["status"]["result"]["status"]["health"]')" = True ] ||
    fail "result lost after a restart"
ct_no_duplicates astro-k1
ct_no_duplicates astro-f1
pass "restarted after Success: no second run, result kept"

m=$(curl -sf "http://127.0.0.1:$CT_METRICS/metrics")
echo "$m" | grep -q '^astertower_reconciles_total [1-9]' ||
    fail "no reconciles counted"
echo "$m" | grep -q '^astertower_astros{phase="Success"} 3$' ||
    fail "astros per phase: $(echo "$m" | grep astertower_astros)"
echo "$m" | grep -q '^astertower_queue_depth ' || fail "no queue depth"
echo "$m" | grep -q '^astertower_reconcile_duration_seconds_count [1-9]' ||
    fail "no durations"
pass "/metrics counts reconciles, durations, queue depth, Astros per phase"

ct_stop_ctl TERM
[ "$CT_CTL_RC" = 0 ] || fail "astertower exited $CT_CTL_RC on SIGTERM"
pass "astertower stops cleanly on SIGTERM"
