#!/usr/bin/env bash
# The controller waits for its children through watches, not by polling:
# while an Astro's pods take seconds to start, and once it is final, the
# apiserver gets no request from it at all. (The original controller
# polled the apiserver in a tight loop while waiting.)
source "$(dirname "$0")/../controller/lib.sh"

# requests: resource requests the apiserver has logged so far (-v logs
# one line per request).
requests() {
    grep -cE 'sim-apiserver: (GET|PUT|POST|PATCH|DELETE) /' \
        "$CT_TMP/sim.err" || true
}

# quiet_for WHAT SECONDS: no request reaches the apiserver in that time.
# Nothing else talks to it meanwhile: no kubectl runs in the window.
quiet_for() {
    local before after
    before=$(requests)
    sleep "$2"
    after=$(requests)
    [ "$after" = "$before" ] || {
        grep -E 'sim-apiserver: (GET|PUT|POST|PATCH|DELETE) /' \
            "$CT_TMP/sim.err" | tail -n $((after - before)) >&2
        fail "$1: $((after - before)) requests in $2 s"
    }
}

ct_start_sim -v
[ "$(requests)" -gt 0 ] || fail "the apiserver logs no requests with -v"
ct_faults '{"podStartDelayMs":5000}'
ct_start_ctl

ct_astro astro-w1 | kubectl apply -f - >/dev/null
ct_wait_phase astro-w1 Initialized 20
# Let the writes of entering Initialized (status, Event) land first.
sleep 0.5
quiet_for "while its pods start" 2
pass "no request while the stars' pods start"

ct_wait_phase astro-w1 Success 60
sleep 0.5
quiet_for "once the Astro is final" 2
pass "no request once the Astro is final"
