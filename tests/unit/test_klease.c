/*
 * klease: two candidates against one Lease of the in-process apiserver,
 * with short durations: one leads; the other takes over after a release
 * or after the leader stops renewing; leaseTransitions counts holders.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apisrv.h"
#include "klease.h"
#include "log.h"

typedef struct env {
    apisrv *srv;
    kcfg *cfg;
    kube *k;
    char path[64];
} env;

typedef struct cand {
    int started, stopped, leaders_seen;
} cand;

static void on_started(void *ud)
{
    __atomic_add_fetch(&((cand *)ud)->started, 1, __ATOMIC_SEQ_CST);
}

static void on_stopped(void *ud)
{
    __atomic_add_fetch(&((cand *)ud)->stopped, 1, __ATOMIC_SEQ_CST);
}

static void on_new_leader(const char *id, void *ud)
{
    __atomic_add_fetch(&((cand *)ud)->leaders_seen, 1, __ATOMIC_SEQ_CST);
}

static int setup(void **state)
{
    apisrv_config sc = {0};
    env *v = calloc(1, sizeof(*v));
    char err[512];

    log_set_level(LOG_ERROR);
    if (apisrv_start(&sc, &v->srv, err, sizeof(err)) < 0)
        fail_msg("apisrv_start: %s", err);
    snprintf(v->path, sizeof(v->path), "/tmp/test_klease.%d.cfg",
             getpid());
    if (apisrv_write_kubeconfig(v->srv, v->path, err, sizeof(err)) < 0 ||
        kcfg_load(v->path, NULL, &v->cfg, err, sizeof(err)) < 0 ||
        kube_new(v->cfg, NULL, &v->k, err, sizeof(err)) < 0)
        fail_msg("client setup: %s", err);
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    env *v = *state;

    kube_free(v->k);
    kcfg_free(v->cfg);
    apisrv_stop(v->srv);
    unlink(v->path);
    free(v);
    return 0;
}

static klease *candidate(env *v, const char *id, cand *c, int no_release)
{
    klease_config lc = {.ns = "default", .name = "leader",
                        .identity = id, .lease_duration_ms = 900,
                        .renew_deadline_ms = 600, .retry_period_ms = 100,
                        .no_release = no_release,
                        .on_started_leading = on_started,
                        .on_stopped_leading = on_stopped,
                        .on_new_leader = on_new_leader, .ud = c};
    klease *l;
    char err[256];

    assert_int_equal(klease_start(v->k, &lc, &l, err, sizeof(err)), 0);
    return l;
}

static cJSON *lease(env *v)
{
    kube_ref r = {"coordination.k8s.io", "v1", "leases", "default",
                  "leader", NULL};
    cJSON *o = NULL;
    kube_err e;

    assert_int_equal(kube_get(v->k, &r, &o, &e), 0);
    return o;
}

static const char *spec_s(cJSON *o, const char *k)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), k)
        ->valuestring;
}

static int spec_i(cJSON *o, const char *k)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), k)->valueint;
}

static int wait_leader(klease *l, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        if (klease_is_leader(l))
            return 1;
        usleep(20000);
    }
    return 0;
}

static void test_takeover_after_release(void **state)
{
    env *v = *state;
    cand ca = {0}, cb = {0};
    klease *a = candidate(v, "a", &ca, 0), *b;
    cJSON *o;
    const char *t;

    assert_true(wait_leader(a, 2000));
    b = candidate(v, "b", &cb, 0);
    usleep(1500000); /* longer than the lease: a keeps renewing */
    assert_true(klease_is_leader(a));
    assert_false(klease_is_leader(b));
    o = lease(v);
    assert_string_equal(spec_s(o, "holderIdentity"), "a");
    assert_int_equal(spec_i(o, "leaseTransitions"), 0);
    t = spec_s(o, "renewTime");
    assert_int_equal(strlen(t), strlen("2025-01-01T10:00:12.345678Z"));
    assert_int_equal(t[19], '.');
    cJSON_Delete(o);

    /* a steps down and releases; b takes over without waiting. */
    klease_stop(a);
    assert_int_equal(ca.started, 1);
    assert_int_equal(ca.stopped, 1);
    assert_true(wait_leader(b, 600));
    o = lease(v);
    assert_string_equal(spec_s(o, "holderIdentity"), "b");
    assert_int_equal(spec_i(o, "leaseTransitions"), 1);
    cJSON_Delete(o);
    klease_free(b);
    klease_free(a);

    o = lease(v);
    assert_string_equal(spec_s(o, "holderIdentity"), "");
    assert_int_equal(spec_i(o, "leaseDurationSeconds"), 1);
    cJSON_Delete(o);
    assert_int_equal(cb.started, 1);
    assert_int_equal(cb.stopped, 1);
}

static void test_takeover_after_expiry(void **state)
{
    env *v = *state;
    cand ca = {0}, cb = {0};
    klease *a = candidate(v, "a", &ca, 1), *b;
    char h[64];
    cJSON *o;

    assert_true(wait_leader(a, 2000));
    b = candidate(v, "b", &cb, 1);
    usleep(300000);
    klease_holder(b, h, sizeof(h));
    assert_string_equal(h, "a");

    /* a stops renewing without releasing: b waits out the duration. */
    klease_stop(a);
    usleep(500000);
    assert_false(klease_is_leader(b));
    assert_true(wait_leader(b, 3000));
    o = lease(v);
    assert_string_equal(spec_s(o, "holderIdentity"), "b");
    assert_int_equal(spec_i(o, "leaseTransitions"), 1);
    cJSON_Delete(o);
    klease_free(a);
    klease_free(b);
    assert_true(cb.leaders_seen >= 2);
}

static void test_only_one_leads(void **state)
{
    env *v = *state;
    cand c[4] = {{0}};
    klease *l[4];
    char id[8];
    int leaders = 0;

    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "c%d", i);
        l[i] = candidate(v, id, &c[i], 0);
    }
    usleep(800000);
    for (int i = 0; i < 4; i++)
        leaders += klease_is_leader(l[i]);
    assert_int_equal(leaders, 1);
    for (int i = 0; i < 4; i++)
        klease_free(l[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_takeover_after_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_takeover_after_expiry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_only_one_leads, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
