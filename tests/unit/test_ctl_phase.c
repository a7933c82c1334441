/*
 * Tests for ctl_phase: one row per situation the reconciler can observe,
 * with the decision expected. Stars are written as one letter each:
 *   -  nothing created yet          P  created, not yet available
 *   I  available, Service without IP  A  available with an IP
 *   F  a pod in ImagePullBackOff     D  ProgressDeadlineExceeded
 *   X  the name belongs to someone else
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "astertower/ctl_phase.c"

#define NOW 1000000L
#define DEPLOY_S 300L
#define ENGINE_S 120L

typedef struct row {
    const char *name;
    ctl_phase phase;
    const char *stars;     /* one letter per star, see above */
    const char *invalid;
    long since;            /* seconds since the phase began */
    int has_cm, has_pod;   /* engine children */
    const char *pod_phase; /* NULL: none */
    const char *pod_fail;
    int foreign_engine;
    ctl_probe readyz;
    const char *run_id;
    ctl_run run;
    int healthy;
    int errors;
    int polls;

    ctl_phase want;
    const char *want_reason; /* NULL: no transition expected */
    unsigned want_actions;
    ctl_need want_need;
    long want_requeue_min, want_requeue_max; /* ms, inclusive */
    const char *want_in_message;
} row;

static const row rows[] = {
    {.name = "new Astro creates the stars", .phase = CTL_PHASE_NONE,
     .stars = "----", .want = CTL_PHASE_INITIALIZED,
     .want_reason = "ChildrenCreated", .want_actions = CTL_ACT_CREATE_STARS,
     .want_requeue_min = DEPLOY_S * 1000, .want_requeue_max = DEPLOY_S * 1000,
     .want_in_message = "4 stars"},
    {.name = "invalid spec fails at once", .phase = CTL_PHASE_NONE,
     .stars = "----", .invalid = "spec.stars[0].type: star type device "
                                 "is not supported",
     .want = CTL_PHASE_DEPLOY_FAILED, .want_reason = "InvalidSpec",
     .want_in_message = "spec.stars[0].type"},
    {.name = "Success stays", .phase = CTL_PHASE_SUCCESS, .stars = "----",
     .want = CTL_PHASE_SUCCESS},
    {.name = "Wrong stays even with failing pods",
     .phase = CTL_PHASE_WRONG, .stars = "FFFF", .want = CTL_PHASE_WRONG},
    {.name = "DeployFailed stays", .phase = CTL_PHASE_DEPLOY_FAILED,
     .stars = "AAAA", .want = CTL_PHASE_DEPLOY_FAILED},
    {.name = "EngineFailed stays", .phase = CTL_PHASE_ENGINE_FAILED,
     .stars = "AAAA", .has_pod = 1, .pod_phase = "Running",
     .want = CTL_PHASE_ENGINE_FAILED},
    {.name = "missing children are created again",
     .phase = CTL_PHASE_INITIALIZED, .stars = "AP--", .since = 10,
     .want = CTL_PHASE_INITIALIZED, .want_actions = CTL_ACT_CREATE_STARS,
     .want_requeue_min = 290000, .want_requeue_max = 290000},
    {.name = "waiting for stars", .phase = CTL_PHASE_INITIALIZED,
     .stars = "AAPA", .since = 100, .want = CTL_PHASE_INITIALIZED,
     .want_requeue_min = 200000, .want_requeue_max = 200000},
    {.name = "a Service without IP keeps waiting",
     .phase = CTL_PHASE_INITIALIZED, .stars = "AAIA", .since = 1,
     .want = CTL_PHASE_INITIALIZED, .want_requeue_min = 1,
     .want_requeue_max = DEPLOY_S * 1000},
    {.name = "all available moves to Waited",
     .phase = CTL_PHASE_INITIALIZED, .stars = "AAAA", .since = 3,
     .want = CTL_PHASE_WAITED, .want_reason = "StarsAvailable",
     .want_actions = CTL_ACT_CREATE_ENGINE,
     .want_requeue_min = ENGINE_S * 1000,
     .want_requeue_max = ENGINE_S * 1000},
    {.name = "image pull failure is DeployFailed naming the star",
     .phase = CTL_PHASE_INITIALIZED, .stars = "AFPA", .since = 3,
     .want = CTL_PHASE_DEPLOY_FAILED, .want_reason = "ImagePullBackOff",
     .want_in_message = "star b: container ImagePullBackOff"},
    {.name = "progress deadline is DeployFailed",
     .phase = CTL_PHASE_INITIALIZED, .stars = "AAAD", .since = 3,
     .want = CTL_PHASE_DEPLOY_FAILED,
     .want_reason = "ProgressDeadlineExceeded", .want_in_message = "star d"},
    {.name = "a foreign object is a name conflict",
     .phase = CTL_PHASE_INITIALIZED, .stars = "XAAA", .since = 3,
     .want = CTL_PHASE_DEPLOY_FAILED, .want_reason = "NameConflict",
     .want_in_message = "star a"},
    {.name = "deploy deadline passed", .phase = CTL_PHASE_INITIALIZED,
     .stars = "AP-I", .since = DEPLOY_S, .want = CTL_PHASE_DEPLOY_FAILED,
     .want_reason = "DeployTimeout",
     .want_in_message = "1 of 4 stars available after 300s; not "
                        "available: b, c, d"},
    {.name = "Waited creates the engine", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = 1, .want = CTL_PHASE_WAITED,
     .want_actions = CTL_ACT_CREATE_ENGINE,
     .want_requeue_min = 119000, .want_requeue_max = 119000},
    {.name = "engine pod pending", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = 20, .has_cm = 1, .has_pod = 1,
     .pod_phase = "Pending", .want = CTL_PHASE_WAITED,
     .want_requeue_min = 100000, .want_requeue_max = 100000},
    {.name = "engine pod running: ask /readyz", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = 2, .has_cm = 1, .has_pod = 1,
     .pod_phase = "Running", .want = CTL_PHASE_WAITED,
     .want_need = CTL_NEED_READYZ},
    {.name = "engine answers /readyz: Ready", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = 2, .has_cm = 1, .has_pod = 1,
     .pod_phase = "Running", .readyz = CTL_PROBE_OK,
     .want = CTL_PHASE_READY, .want_reason = "EngineReady",
     .want_requeue_min = CTL_POLL_MS, .want_requeue_max = CTL_POLL_MS,
     .want_in_message = "engine pod at 127.1.0.9"},
    {.name = "engine not ready yet: ask again soon",
     .phase = CTL_PHASE_WAITED, .stars = "AAAA", .since = 2, .has_cm = 1,
     .has_pod = 1, .pod_phase = "Running", .readyz = CTL_PROBE_FAIL,
     .want = CTL_PHASE_WAITED, .want_requeue_min = CTL_PROBE_RETRY_MS,
     .want_requeue_max = CTL_PROBE_RETRY_MS},
    {.name = "engine pod failed", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = 2, .has_cm = 1, .has_pod = 1,
     .pod_phase = "Failed", .want = CTL_PHASE_ENGINE_FAILED,
     .want_reason = "EngineExited", .want_in_message = "Failed"},
    {.name = "engine image cannot be pulled", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = 2, .has_cm = 1, .has_pod = 1,
     .pod_phase = "Pending", .pod_fail = "ErrImagePull",
     .want = CTL_PHASE_ENGINE_FAILED, .want_reason = "ErrImagePull",
     .want_in_message = "engine pod: container ErrImagePull"},
    {.name = "engine deadline passed", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = ENGINE_S, .has_cm = 1, .has_pod = 1,
     .pod_phase = "Pending", .want = CTL_PHASE_ENGINE_FAILED,
     .want_reason = "EngineTimeout", .want_in_message = "after 120s"},
    {.name = "engine names taken", .phase = CTL_PHASE_WAITED,
     .stars = "AAAA", .since = 2, .foreign_engine = 1,
     .want = CTL_PHASE_ENGINE_FAILED, .want_reason = "NameConflict"},
    {.name = "Ready without a run triggers", .phase = CTL_PHASE_READY,
     .stars = "AAAA", .has_cm = 1, .has_pod = 1, .pod_phase = "Running",
     .want = CTL_PHASE_READY, .want_need = CTL_NEED_TRIGGER},
    {.name = "a lost run is triggered again", .phase = CTL_PHASE_READY,
     .stars = "AAAA", .has_cm = 1, .has_pod = 1, .pod_phase = "Running",
     .run_id = "7", .run = CTL_RUN_LOST, .want = CTL_PHASE_READY,
     .want_need = CTL_NEED_TRIGGER},
    {.name = "a known run is polled", .phase = CTL_PHASE_READY,
     .stars = "AAAA", .has_cm = 1, .has_pod = 1, .pod_phase = "Running",
     .run_id = "7", .want = CTL_PHASE_READY, .want_need = CTL_NEED_POLL},
    {.name = "a running run is polled soon at first",
     .phase = CTL_PHASE_READY, .stars = "AAAA", .has_cm = 1, .has_pod = 1,
     .pod_phase = "Running", .run_id = "7", .run = CTL_RUN_RUNNING,
     .polls = 1, .want = CTL_PHASE_READY,
     .want_requeue_min = CTL_POLL_FIRST_MS,
     .want_requeue_max = CTL_POLL_FIRST_MS},
    {.name = "then less and less often", .phase = CTL_PHASE_READY,
     .stars = "AAAA", .has_cm = 1, .has_pod = 1, .pod_phase = "Running",
     .run_id = "7", .run = CTL_RUN_RUNNING, .polls = 3,
     .want = CTL_PHASE_READY, .want_requeue_min = 4 * CTL_POLL_FIRST_MS,
     .want_requeue_max = 4 * CTL_POLL_FIRST_MS},
    {.name = "a long run is polled at the slowest pace",
     .phase = CTL_PHASE_READY, .stars = "AAAA", .has_cm = 1, .has_pod = 1,
     .pod_phase = "Running", .run_id = "7", .run = CTL_RUN_RUNNING,
     .polls = 40, .want = CTL_PHASE_READY,
     .want_requeue_min = CTL_POLL_MS, .want_requeue_max = CTL_POLL_MS},
    {.name = "a healthy run is Success", .phase = CTL_PHASE_READY,
     .stars = "AAAA", .has_cm = 1, .has_pod = 1, .pod_phase = "Running",
     .run_id = "7", .run = CTL_RUN_DONE, .healthy = 1,
     .want = CTL_PHASE_SUCCESS, .want_reason = "RunSucceeded",
     .want_in_message = "run 7 healthy"},
    {.name = "an unhealthy run is Wrong", .phase = CTL_PHASE_READY,
     .stars = "AAAA", .has_cm = 1, .has_pod = 1, .pod_phase = "Running",
     .run_id = "7", .run = CTL_RUN_DONE, .want = CTL_PHASE_WRONG,
     .want_reason = "RunFailed", .want_in_message = "node c failed"},
    {.name = "an engine that did not answer once is asked again",
     .phase = CTL_PHASE_READY, .stars = "AAAA", .has_cm = 1, .has_pod = 1,
     .pod_phase = "Running", .run_id = "7", .run = CTL_RUN_UNREACHABLE,
     .errors = 1, .want = CTL_PHASE_READY,
     .want_requeue_min = CTL_PROBE_RETRY_MS,
     .want_requeue_max = CTL_PROBE_RETRY_MS},
    {.name = "an engine that never answers is Wrong",
     .phase = CTL_PHASE_READY, .stars = "AAAA", .has_cm = 1, .has_pod = 1,
     .pod_phase = "Running", .run = CTL_RUN_UNREACHABLE,
     .errors = CTL_ENGINE_ERRORS_MAX, .want = CTL_PHASE_WRONG,
     .want_reason = "EngineUnreachable", .want_in_message = "127.1.0.9"},
    {.name = "the engine pod gone while Ready is Wrong",
     .phase = CTL_PHASE_READY, .stars = "AAAA", .has_cm = 1,
     .run_id = "7", .want = CTL_PHASE_WRONG,
     .want_reason = "EngineUnreachable", .want_in_message = "gone"},
    {.name = "the engine pod failing while Ready is Wrong",
     .phase = CTL_PHASE_READY, .stars = "AAAA", .has_cm = 1, .has_pod = 1,
     .pod_phase = "Failed", .run_id = "7", .want = CTL_PHASE_WRONG,
     .want_reason = "EngineUnreachable", .want_in_message = "Failed"},
};

static const char *const star_names[] = {"a", "b", "c", "d"};

static void star_from_letter(ctl_star_obs *s, char c)
{
    memset(s, 0, sizeof(*s));
    s->has_deploy = s->has_service = c != '-';
    s->available = c == 'A' || c == 'I';
    s->cluster_ip = c == 'A' ? "127.2.0.1" : "";
    s->pod_fail = c == 'F' ? "ImagePullBackOff" : NULL;
    s->deploy_fail = c == 'D' ? "ProgressDeadlineExceeded" : NULL;
    s->foreign = c == 'X';
}

static void observe(const row *r, ctl_observed *o, ctl_star_obs *stars)
{
    memset(o, 0, sizeof(*o));
    o->phase = r->phase;
    o->invalid = r->invalid;
    o->now = NOW;
    o->init_time = r->phase == CTL_PHASE_INITIALIZED ? NOW - r->since : 0;
    o->waited_time = r->phase == CTL_PHASE_WAITED ? NOW - r->since : 0;
    o->deploy_timeout_s = DEPLOY_S;
    o->engine_timeout_s = ENGINE_S;
    for (size_t k = 0; k < strlen(r->stars); k++) {
        star_from_letter(&stars[k], r->stars[k]);
        stars[k].name = star_names[k];
    }
    o->stars = stars;
    o->n_stars = strlen(r->stars);
    o->has_configmap = r->has_cm;
    o->has_pod = r->has_pod;
    o->engine_foreign = r->foreign_engine;
    o->pod_phase = r->pod_phase;
    o->pod_ip = r->pod_phase ? "127.1.0.9" : NULL;
    o->pod_fail = r->pod_fail;
    o->readyz = r->readyz;
    o->run_id = r->run_id;
    o->run = r->run;
    o->run_healthy = r->healthy;
    o->run_error = "node c failed: HTTP 500";
    o->engine_errors = r->errors;
    o->run_polls = r->polls;
}

static void check_row(const row *r)
{
    ctl_star_obs stars[4];
    ctl_observed o;
    ctl_decision d;

    observe(r, &o, stars);
    ctl_phase_decide(&o, &d);

    if (d.phase != r->want)
        fail_msg("%s: phase %s, want %s", r->name, ctl_phase_name(d.phase),
                 ctl_phase_name(r->want));
    if (r->want_reason &&
        (d.reason == NULL || strcmp(d.reason, r->want_reason) != 0))
        fail_msg("%s: reason %s, want %s", r->name,
                 d.reason ? d.reason : "(none)", r->want_reason);
    if (r->want_reason == NULL && d.reason != NULL)
        fail_msg("%s: unexpected transition %s (%s)", r->name, d.reason,
                 d.message);
    if (d.actions != r->want_actions)
        fail_msg("%s: actions %#x, want %#x", r->name, d.actions,
                 r->want_actions);
    if (d.need != r->want_need)
        fail_msg("%s: need %d, want %d", r->name, d.need, r->want_need);
    if (d.requeue_ms < r->want_requeue_min ||
        d.requeue_ms > r->want_requeue_max)
        fail_msg("%s: requeue %ld ms, want %ld..%ld", r->name, d.requeue_ms,
                 r->want_requeue_min, r->want_requeue_max);
    if (r->want_in_message && strstr(d.message, r->want_in_message) == NULL)
        fail_msg("%s: message '%s' lacks '%s'", r->name, d.message,
                 r->want_in_message);
}

static void test_rows(void **state)
{
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++)
        check_row(&rows[k]);
}

/* The observation is only read, so deciding twice gives the same. */
static void test_decide_is_pure(void **state)
{
    ctl_star_obs stars[4];
    ctl_observed o;
    ctl_decision a, b;

    observe(&rows[9], &o, stars);
    ctl_phase_decide(&o, &a);
    ctl_phase_decide(&o, &b);
    assert_memory_equal(&a, &b, sizeof(a));
}

static void test_names_round_trip(void **state)
{
    for (int p = 1; p < CTL_PHASE_COUNT; p++)
        assert_int_equal(ctl_phase_parse(ctl_phase_name((ctl_phase)p)), p);
    assert_int_equal(ctl_phase_parse(NULL), CTL_PHASE_NONE);
    assert_int_equal(ctl_phase_parse("Bogus"), CTL_PHASE_NONE);
    assert_true(ctl_phase_final(CTL_PHASE_WRONG));
    assert_false(ctl_phase_final(CTL_PHASE_READY));
    assert_true(ctl_phase_failed(CTL_PHASE_ENGINE_FAILED));
    assert_false(ctl_phase_failed(CTL_PHASE_SUCCESS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_decide_is_pure),
        cmocka_unit_test(test_names_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
