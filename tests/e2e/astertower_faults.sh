#!/usr/bin/env bash
# Faults from the simulated cluster and controller restarts still end in
# the right phase with nothing duplicated or lost:
#   1. dropped watches, forced 410s, 409 on first updates (of each
#      object and of its status), 500 answers: one Astro to Success, one
#      with a node answering 500 to Wrong, each with every transition
#      Event exactly once;
#   2. 429 answers with Retry-After;
#   3. the controller killed (SIGKILL) in Initialized, Waited and Ready,
#      and after Success: one of each child, one run, one call of the
#      entry node, the result kept.
source "$(dirname "$0")/../controller/lib.sh"

ct_start_sim

# 1. API faults from the controller's first request on.
ct_astro astro-f1 | kubectl apply -f - >/dev/null
ct_astro astro-f500 '/test?status=500' | kubectl apply -f - >/dev/null
ct_faults '{"watchDropEvery":4,"force410":3,"conflictFirstUpdate":true,
  "errorPermille":150,"errorCode":500}'
ct_start_ctl
ct_wait_phase astro-f1 Success 60
ct_wait_phase astro-f500 Wrong 60
ct_faults '{}'
ct_no_duplicates astro-f1
[ "$(ct_json astro-f1 'd["status"]["result"]["status"]["health"]')" = True ] ||
    fail "astro-f1: result not healthy"
pass "watch drops, 410s, 409s and 500s: Success, nothing duplicated"

# The first status write of each Astro met the injected 409 and went
# through on a fresh read.
for a in astro-f1 astro-f500; do
    grep -q "astro default/$a: status write met a conflict; retrying on" \
        "$CT_TMP/ctl1.err" || fail "$a: no status write conflict logged"
done
pass "the first status write's 409 is retried on a fresh read"

ct_events_once astro-f1 Normal/ChildrenCreated Normal/StarsAvailable \
    Normal/EngineReady Normal/RunSucceeded
ct_events_once astro-f500 Normal/ChildrenCreated Normal/StarsAvailable \
    Normal/EngineReady Warning/RunFailed
pass "under 500s every transition Event is there, each exactly once"

ct_no_duplicates astro-f500
[ "$(ct_json astro-f500 'd["status"]["result"]["failed"]')" = "['c']" ] ||
    fail "astro-f500: result does not name c as failed"
[ "$(ct_cond astro-f500 Succeeded)" = False/RunFailed ] ||
    fail "astro-f500: Succeeded condition is not False/RunFailed"
ct_get events --field-selector involvedObject.name=astro-f500,type=Warning \
    -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' |
    grep '^RunFailed: ' | grep -q 'node c' ||
    fail "astro-f500: no Warning RunFailed Event naming node c"
pass "a node answering 500 under faults: Wrong naming the node"

# 2. Throttling.
ct_faults '{"errorPermille":200,"errorCode":429,"retryAfter":1}'
ct_astro astro-f2 | kubectl apply -f - >/dev/null 2>&1 ||
    ct_astro astro-f2 | kubectl apply -f - >/dev/null
ct_wait_phase astro-f2 Success 60
ct_faults '{}'
ct_no_duplicates astro-f2
ct_events_once astro-f2 Normal/ChildrenCreated Normal/StarsAvailable \
    Normal/EngineReady Normal/RunSucceeded
pass "429 answers: Success, nothing duplicated, every Event once"

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
# A kill between a status write and its Event loses that Event (a known
# gap), so only duplicates are looked for here.
ev=$(ct_events astro-k1)
echo "$ev" | tr ' ' '\n' | grep -v '/1$' | grep -q . &&
    fail "astro-k1: an Event counted twice: $ev"
[ "$(echo "$ev" | tr ' ' '\n' | sort -u | wc -l)" = "$(echo "$ev" | wc -w)" ] ||
    fail "astro-k1: a reason recorded twice: $ev"
pass "restarted after Success: no second run, result kept, no Event twice"

# Late or repeated recordings (a retry still under way, a restarted
# controller) would show now.
for a in astro-f1 astro-f2; do
    ct_events_once $a Normal/ChildrenCreated Normal/StarsAvailable \
        Normal/EngineReady Normal/RunSucceeded
done
ct_events_once astro-f500 Normal/ChildrenCreated Normal/StarsAvailable \
    Normal/EngineReady Warning/RunFailed
pass "after the restarts every Event is still there once"

m=$(curl -sf "http://127.0.0.1:$CT_METRICS/metrics")
echo "$m" | grep -q '^astertower_reconciles_total [1-9]' ||
    fail "no reconciles counted"
echo "$m" | grep -q '^astertower_astros{phase="Success"} 3$' ||
    fail "astros per phase: $(echo "$m" | grep astertower_astros)"
echo "$m" | grep -q '^astertower_astros{phase="Wrong"} 1$' ||
    fail "astros per phase: $(echo "$m" | grep astertower_astros)"
echo "$m" | grep -q '^astertower_queue_depth ' || fail "no queue depth"
echo "$m" | grep -q '^astertower_reconcile_duration_seconds_count [1-9]' ||
    fail "no durations"
pass "/metrics counts reconciles, durations, queue depth, Astros per phase"

ct_stop_ctl TERM
[ "$CT_CTL_RC" = 0 ] || fail "astertower exited $CT_CTL_RC on SIGTERM"
pass "astertower stops cleanly on SIGTERM"
