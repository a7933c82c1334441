/*
 * kinf: an informer over ConfigMaps of the in-process fake apiserver.
 * Handlers count per object and check that resourceVersions only grow,
 * so a missed or doubled event shows up as a wrong count or an order
 * violation; faults drop streams and force 410s meanwhile.
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
#include "kinf.h"
#include "log.h"

#define NOBJ 24

typedef struct tally {
    pthread_mutex_t mu;
    int adds[NOBJ], updates[NOBJ], deletes[NOBJ];
    char last_rv[NOBJ][32];
    int order_errors;
    int others;
    char first[8][32];   /* first names added, in order */
    int nfirst;
} tally;

typedef struct env {
    apisrv *srv;
    kcfg *cfg;
    kube *k;
    char path[64];
    tally t;
} env;

static const kube_ref cms = {"", "v1", "configmaps", "default", NULL, NULL};

static int idx(const cJSON *obj)
{
    const char *n = kube_obj_name(obj);

    if (!n || n[0] != 's')
        return -1;
    return atoi(n + 1);
}

static void check_rv(tally *t, int i, const cJSON *obj)
{
    const char *rv = kube_obj_rv(obj);

    if (t->last_rv[i][0] && kube_rv_cmp(rv, t->last_rv[i]) <= 0)
        t->order_errors++;
    snprintf(t->last_rv[i], sizeof(t->last_rv[i]), "%s", rv ? rv : "");
}

static void on_add(const cJSON *obj, void *ud)
{
    tally *t = ud;
    int i = idx(obj);

    pthread_mutex_lock(&t->mu);
    if (t->nfirst < 8)
        snprintf(t->first[t->nfirst++], 32, "%s", kube_obj_name(obj));
    if (i < 0 || i >= NOBJ) {
        t->others++;
    } else {
        t->adds[i]++;
        check_rv(t, i, obj);
    }
    pthread_mutex_unlock(&t->mu);
}

static void on_update(const cJSON *old, const cJSON *obj, void *ud)
{
    tally *t = ud;
    int i = idx(obj);

    pthread_mutex_lock(&t->mu);
    if (i >= 0 && i < NOBJ) {
        t->updates[i]++;
        if (kube_rv_cmp(kube_obj_rv(old), kube_obj_rv(obj)) >= 0)
            t->order_errors++;
        check_rv(t, i, obj);
    }
    pthread_mutex_unlock(&t->mu);
}

static void on_delete(const cJSON *obj, void *ud)
{
    tally *t = ud;
    int i = idx(obj);

    pthread_mutex_lock(&t->mu);
    if (i >= 0 && i < NOBJ)
        t->deletes[i]++;
    pthread_mutex_unlock(&t->mu);
}

static int setup(void **state)
{
    apisrv_config sc = {.bookmark_ms = 100};
    kube_config kc = {.retries = 6, .retry_base_ms = 5};
    env *v = calloc(1, sizeof(*v));
    char err[512];

    log_set_level(LOG_ERROR);
    pthread_mutex_init(&v->t.mu, NULL);
    if (apisrv_start(&sc, &v->srv, err, sizeof(err)) < 0)
        fail_msg("apisrv_start: %s", err);
    snprintf(v->path, sizeof(v->path), "/tmp/test_kinf.%d.cfg", getpid());
    if (apisrv_write_kubeconfig(v->srv, v->path, err, sizeof(err)) < 0 ||
        kcfg_load(v->path, NULL, &v->cfg, err, sizeof(err)) < 0 ||
        kube_new(v->cfg, &kc, &v->k, err, sizeof(err)) < 0)
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
    pthread_mutex_destroy(&v->t.mu);
    free(v);
    return 0;
}

static kinf *start_informer(env *v, long backoff_ms)
{
    kinf_config c = {.group = "", .version = "v1",
                     .resource = "configmaps", .ns = "default",
                     .backoff_ms = backoff_ms, .backoff_max_ms = 200,
                     .watch_timeout_s = 30, .page_limit = 5};
    kinf_handlers h = {on_add, on_update, on_delete, &v->t};
    kinf *inf;
    char err[256];

    assert_int_equal(kinf_new(v->k, &c, &h, &inf, err, sizeof(err)), 0);
    assert_int_equal(kinf_start(inf), 0);
    assert_int_equal(kinf_wait_synced(inf, 5000), 1);
    return inf;
}

static void put_cm(env *v, int i, int gen, const char *owner_uid)
{
    char buf[512], name[16];
    kube_ref one = cms;
    cJSON *o, *cur = NULL;
    kube_err e;

    snprintf(name, sizeof(name), "s%d", i);
    one.name = name;
    if (gen == 0) {
        snprintf(buf, sizeof(buf),
                 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                 "\"metadata\":{\"name\":\"%s\"%s%s%s},\"data\":{\"g\":\"0\"}}",
                 name, owner_uid ? ",\"ownerReferences\":[{\"apiVersion\":"
                                   "\"v1\",\"kind\":\"ConfigMap\",\"name\":"
                                   "\"owner\",\"controller\":true,\"uid\":\""
                                 : "",
                 owner_uid ? owner_uid : "", owner_uid ? "\"}]" : "");
        o = cJSON_Parse(buf);
        assert_non_null(o);
        if (kube_create(v->k, &cms, o, NULL, &e) < 0)
            fail_msg("create %s: %d %s", name, e.code, e.message);
        cJSON_Delete(o);
        return;
    }
    snprintf(buf, sizeof(buf), "{\"data\":{\"g\":\"%d\"}}", gen);
    o = cJSON_Parse(buf);
    /* Non-idempotent PATCH is not retried; the storm injects no 500s. */
    if (kube_patch(v->k, &one, KUBE_PATCH_MERGE, o, NULL, 0, &cur, &e) < 0)
        fail_msg("patch %s: %d %s", name, e.code, e.message);
    cJSON_Delete(o);
    cJSON_Delete(cur);
}

static void del_cm(env *v, int i)
{
    char name[16];
    kube_ref one = cms;
    kube_err e;

    snprintf(name, sizeof(name), "s%d", i);
    one.name = name;
    if (kube_delete(v->k, &one, NULL, NULL, &e) < 0)
        fail_msg("delete %s: %d %s", name, e.code, e.message);
}

/* Waits until the cache holds exactly what the server holds. */
static int converged(env *v, kinf *inf)
{
    for (int tries = 0; tries < 200; tries++) {
        cJSON *list, *it;
        kube_err e;
        int same = 1;

        assert_int_equal(kube_list(v->k, &cms, NULL, &list, &e), 0);
        if ((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(list, "items"))
            != kinf_count(inf))
            same = 0;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items")) {
            cJSON *c = kinf_get(inf, "default", kube_obj_name(it));

            if (!c || strcmp(kube_obj_rv(c), kube_obj_rv(it)))
                same = 0;
            cJSON_Delete(c);
        }
        cJSON_Delete(list);
        if (same)
            return 1;
        usleep(50000);
    }
    return 0;
}

static void test_list_then_watch_order(void **state)
{
    env *v = *state;
    kinf *inf;
    cJSON *c;

    for (int i = 0; i < 7; i++)
        put_cm(v, i, 0, NULL); /* more than a page of 5 */
    inf = start_informer(v, 50);
    assert_int_equal(kinf_count(inf), 7);
    put_cm(v, 7, 0, NULL);
    put_cm(v, 7, 1, NULL);
    put_cm(v, 7, 2, NULL);
    del_cm(v, 0);
    assert_true(converged(v, inf));
    kinf_stop(inf);

    for (int i = 0; i < 8; i++)
        assert_int_equal(v->t.adds[i], 1);
    assert_int_equal(v->t.updates[7], 2);
    assert_int_equal(v->t.deletes[0], 1);
    assert_int_equal(v->t.order_errors, 0);
    assert_string_equal(v->t.first[7], "s7");
    c = kinf_get(inf, "default", "s7");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "data"),
                                            "g")->valuestring, "2");
    cJSON_Delete(c);
    assert_null(kinf_get(inf, "default", "s0"));
    c = kinf_list(inf, "default");
    assert_int_equal(cJSON_GetArraySize(c), 7);
    cJSON_Delete(c);
    c = kinf_list(inf, "other");
    assert_int_equal(cJSON_GetArraySize(c), 0);
    cJSON_Delete(c);
    kinf_free(inf);
}

static char *make_owner(env *v, const char *name)
{
    char buf[256];
    cJSON *o, *got = NULL;
    char *uid;
    kube_err e;

    snprintf(buf, sizeof(buf), "{\"apiVersion\":\"v1\",\"kind\":"
             "\"ConfigMap\",\"metadata\":{\"name\":\"%s\"}}", name);
    o = cJSON_Parse(buf);
    assert_int_equal(kube_create(v->k, &cms, o, &got, &e), 0);
    uid = strdup(kube_obj_uid(got));
    cJSON_Delete(o);
    cJSON_Delete(got);
    return uid;
}

static void test_owner_index(void **state)
{
    env *v = *state;
    kinf *inf = start_informer(v, 50);
    char *ua = make_owner(v, "owner-a"), *ub = make_owner(v, "owner-b");
    cJSON *arr;

    put_cm(v, 1, 0, ua);
    put_cm(v, 2, 0, ua);
    put_cm(v, 3, 0, ub);
    put_cm(v, 4, 0, NULL);
    assert_true(converged(v, inf));
    arr = kinf_by_owner(inf, ua);
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    cJSON_Delete(arr);
    del_cm(v, 1);
    assert_true(converged(v, inf));
    arr = kinf_by_owner(inf, ua);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_string_equal(kube_obj_name(arr->child), "s2");
    cJSON_Delete(arr);
    arr = kinf_by_owner(inf, "nobody");
    assert_int_equal(cJSON_GetArraySize(arr), 0);
    cJSON_Delete(arr);
    kinf_free(inf);
    free(ua);
    free(ub);
}

static void test_relist_after_410(void **state)
{
    env *v = *state;
    apisrv_faults f = {.watch_drop_every = 1, .force_410 = 1};
    kinf_stats st;
    kinf *inf;

    for (int i = 0; i < 4; i++)
        put_cm(v, i, 0, NULL);
    inf = start_informer(v, 20);

    /* The running watch ends after one event; the next one is 410. */
    apisrv_set_faults(v->srv, &f);
    put_cm(v, 0, 1, NULL);
    usleep(100000);
    f = (apisrv_faults){0};
    apisrv_set_faults(v->srv, &f);
    put_cm(v, 1, 1, NULL);
    del_cm(v, 2);
    put_cm(v, 5, 0, NULL);
    assert_true(converged(v, inf));
    kinf_get_stats(inf, &st);
    assert_true(st.expired >= 1);
    assert_true(st.lists >= 2);

    /* History gone: the informer still catches up by relisting. */
    kinf_stop(inf);
    put_cm(v, 3, 1, NULL);
    kinf_free(inf);

    assert_int_equal(v->t.updates[0], 1);
    assert_int_equal(v->t.updates[1], 1);
    assert_int_equal(v->t.deletes[2], 1);
    assert_int_equal(v->t.adds[5], 1);
    assert_int_equal(v->t.order_errors, 0);
}

static void test_compacted_history(void **state)
{
    env *v = *state;
    apisrv_faults f = {.watch_drop_every = 1};
    kinf_stats st;
    kinf *inf;

    put_cm(v, 0, 0, NULL);
    inf = start_informer(v, 300);
    apisrv_set_faults(v->srv, &f);
    put_cm(v, 0, 1, NULL);  /* ends the stream; re-watch follows */
    put_cm(v, 1, 0, NULL);
    store_compact(apisrv_store(v->srv));
    put_cm(v, 1, 1, NULL);
    f = (apisrv_faults){0};
    apisrv_set_faults(v->srv, &f);
    assert_true(converged(v, inf));
    kinf_get_stats(inf, &st);
    kinf_free(inf);
    assert_int_equal(v->t.adds[1], 1);
    assert_int_equal(v->t.order_errors, 0);
    assert_true(v->t.updates[1] <= 1);
}

/* Write storm. */

typedef struct storm {
    env *v;
    int from, to, gens;
} storm;

static void *writer(void *arg)
{
    storm *s = arg;

    for (int g = 1; g <= s->gens; g++)
        for (int i = s->from; i < s->to; i++)
            put_cm(s->v, i, g, NULL);
    return NULL;
}

static void run_storm(env *v, kinf *inf, int gens)
{
    storm a = {v, 0, NOBJ / 2, gens}, b = {v, NOBJ / 2, NOBJ, gens};
    pthread_t ta, tb;

    pthread_create(&ta, NULL, writer, &a);
    pthread_create(&tb, NULL, writer, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int i = 0; i < NOBJ; i += 3)
        del_cm(v, i);
    assert_true(converged(v, inf));
}

static void test_storm_dropped_streams(void **state)
{
    env *v = *state;
    apisrv_faults f = {.watch_drop_every = 7};
    const int gens = 12;
    kinf_stats st;
    kinf *inf;

    for (int i = 0; i < NOBJ; i++)
        put_cm(v, i, 0, NULL);
    inf = start_informer(v, 10);
    apisrv_set_faults(v->srv, &f);
    run_storm(v, inf, gens);
    kinf_get_stats(inf, &st);
    kinf_free(inf);

    /* Re-watching from the last RV loses nothing and repeats nothing. */
    assert_true(st.watches > 10);
    assert_int_equal(st.lists, 1);
    for (int i = 0; i < NOBJ; i++) {
        assert_int_equal(v->t.adds[i], 1);
        assert_int_equal(v->t.updates[i], gens);
        assert_int_equal(v->t.deletes[i], i % 3 == 0);
    }
    assert_int_equal(v->t.order_errors, 0);
}

static void test_storm_with_410s(void **state)
{
    env *v = *state;
    apisrv_faults f = {.watch_drop_every = 5, .force_410 = 6};
    kinf_stats st;
    kinf *inf;

    for (int i = 0; i < NOBJ; i++)
        put_cm(v, i, 0, NULL);
    inf = start_informer(v, 10);
    apisrv_set_faults(v->srv, &f);
    run_storm(v, inf, 10);
    kinf_get_stats(inf, &st);
    kinf_free(inf);

    /* Relists may fold updates together, never repeat or lose them. */
    assert_true(st.expired >= 1);
    for (int i = 0; i < NOBJ; i++) {
        assert_int_equal(v->t.adds[i], 1);
        assert_true(v->t.updates[i] >= 1);
        assert_true(v->t.updates[i] <= 10);
        assert_int_equal(v->t.deletes[i], i % 3 == 0);
    }
    assert_int_equal(v->t.order_errors, 0);
}

static void test_stop_without_start(void **state)
{
    env *v = *state;
    kinf_config c = {.version = "v1", .resource = "configmaps"};
    kinf *inf;
    char err[128];

    assert_int_equal(kinf_new(v->k, &c, NULL, &inf, err, sizeof(err)), 0);
    assert_int_equal(kinf_synced(inf), 0);
    assert_int_equal(kinf_wait_synced(inf, 10), 0);
    kinf_free(inf);
    c.resource = NULL;
    assert_int_equal(kinf_new(v->k, &c, NULL, &inf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "resource"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_then_watch_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_owner_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relist_after_410, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compacted_history, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_storm_dropped_streams, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_storm_with_410s, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_without_start, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
