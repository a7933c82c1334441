/*
 * kube: the REST client against the in-process fake apiserver (TLS with
 * its CA and token), and the watch decoder fed by hand.
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
#include "kube.h"

typedef struct env {
    apisrv *srv;
    kcfg *cfg;
    kube *k;
    char path[64];
} env;

static int env_up(void **state, int tls)
{
    apisrv_config sc = {0};
    kube_config kc = {.retries = 8, .retry_base_ms = 5};
    env *v = calloc(1, sizeof(*v));
    char err[512];

    sc.tls = tls;
    sc.bookmark_ms = 200;
    if (apisrv_start(&sc, &v->srv, err, sizeof(err)) < 0)
        fail_msg("apisrv_start: %s", err);
    snprintf(v->path, sizeof(v->path), "/tmp/test_kube.%d.cfg", getpid());
    if (apisrv_write_kubeconfig(v->srv, v->path, err, sizeof(err)) < 0 ||
        kcfg_load(v->path, NULL, &v->cfg, err, sizeof(err)) < 0 ||
        kube_new(v->cfg, &kc, &v->k, err, sizeof(err)) < 0)
        fail_msg("client setup: %s", err);
    *state = v;
    return 0;
}

static int setup_tls(void **state)
{
    return env_up(state, 1);
}

static int setup_plain(void **state)
{
    return env_up(state, 0);
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

static const kube_ref cms = {"", "v1", "configmaps", "default", NULL, NULL};

static cJSON *configmap(const char *name, const char *label)
{
    cJSON *o = cJSON_CreateObject(), *m, *l;

    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "ConfigMap");
    m = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(m, "name", name);
    l = cJSON_AddObjectToObject(m, "labels");
    cJSON_AddStringToObject(l, "app", label);
    cJSON_AddObjectToObject(o, "data");
    return o;
}

static void test_path(void **state)
{
    kube_ref r = {"apps", "v1", "deployments", "ns 1", "d/x", "status"};
    char buf[256];

    assert_int_equal(kube_path(&r, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/apis/apps/v1/namespaces/ns%201/deployments/"
                             "d%2Fx/status");
    r = (kube_ref){"", "v1", "namespaces", NULL, "a", NULL};
    assert_int_equal(kube_path(&r, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/api/v1/namespaces/a");
    assert_int_equal(kube_path(&r, buf, 8), -1);
    assert_int_equal(kube_rv_cmp("9", "10"), -1);
    assert_int_equal(kube_rv_cmp("10", "10"), 0);
    assert_int_equal(kube_rv_cmp("11", "010"), 1);
}

static void test_crud_tls(void **state)
{
    env *v = *state;
    kube_ref one = cms;
    cJSON *obj = configmap("c1", "x"), *got = NULL, *stale;
    kube_err e;

    assert_int_equal(strncmp(v->cfg->server, "https://", 8), 0);
    assert_int_equal(kube_create(v->k, &cms, obj, &got, &e), 0);
    assert_non_null(kube_obj_uid(got));
    stale = cJSON_Duplicate(got, 1);
    cJSON_Delete(obj);

    /* Update, then the stale copy conflicts. */
    cJSON_AddStringToObject(cJSON_GetObjectItem(got, "data"), "k", "v");
    one.name = "c1";
    obj = got;
    assert_int_equal(kube_update(v->k, &one, obj, &got, &e), 0);
    cJSON_Delete(obj);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got,
                                                                "data"),
                                            "k")->valuestring, "v");
    cJSON_Delete(got);
    assert_int_equal(kube_update(v->k, &one, stale, NULL, &e), -1);
    assert_true(kube_err_conflict(&e));
    assert_string_equal(e.reason, "Conflict");
    assert_non_null(strstr(e.message, "modified"));
    cJSON_Delete(stale);

    /* Merge patch and JSON patch. */
    obj = cJSON_Parse("{\"data\":{\"m\":\"1\"}}");
    assert_int_equal(kube_patch(v->k, &one, KUBE_PATCH_MERGE, obj,
                                "test", 0, &got, &e), 0);
    cJSON_Delete(obj);
    cJSON_Delete(got);
    obj = cJSON_Parse("[{\"op\":\"add\",\"path\":\"/data/j\","
                      "\"value\":\"2\"}]");
    assert_int_equal(kube_patch(v->k, &one, KUBE_PATCH_JSON, obj, NULL, 0,
                                &got, &e), 0);
    cJSON_Delete(obj);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(got, "data")),
                     3);

    /* Delete with a wrong uid precondition, then for real. */
    kube_delete_opts o = {"Background", "not-the-uid", NULL};
    assert_int_equal(kube_delete(v->k, &one, &o, NULL, &e), -1);
    assert_int_equal(e.code, 409);
    o.uid = kube_obj_uid(got);
    assert_int_equal(kube_delete(v->k, &one, &o, NULL, &e), 0);
    cJSON_Delete(got);
    assert_int_equal(kube_get(v->k, &one, &got, &e), -1);
    assert_true(kube_err_not_found(&e));
    assert_string_equal(e.reason, "NotFound");
    assert_null(got);
}

static void test_status_update(void **state)
{
    env *v = *state;
    kube_ref d = {"apps", "v1", "deployments", "default", "d1", NULL};
    cJSON *obj = cJSON_Parse(
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
        "\"metadata\":{\"name\":\"d1\"},\"spec\":{\"replicas\":1,"
        "\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{"
        "\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":"
        "[{\"name\":\"c\",\"image\":\"i\"}]}}}}");
    cJSON *got = NULL, *st;
    kube_err e;

    assert_int_equal(kube_create(v->k, &d, obj, &got, &e), 0);
    cJSON_Delete(obj);
    st = cJSON_AddObjectToObject(got, "status");
    cJSON_AddNumberToObject(st, "observedGeneration", 7);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(got, "spec"), "replicas",
                              cJSON_CreateNumber(5));
    obj = got;
    assert_int_equal(kube_update_status(v->k, &d, obj, &got, &e), 0);
    cJSON_Delete(obj);
    cJSON_Delete(got);

    /* Status written, spec untouched by the status endpoint. */
    assert_int_equal(kube_get(v->k, &d, &got, &e), 0);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "status"),
                                         "observedGeneration")->valueint,
                     7);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "spec"),
                                         "replicas")->valueint, 1);
    cJSON_Delete(got);
}

static void test_list_paging_selector(void **state)
{
    env *v = *state;
    kube_list_opts lo = {"app=even", NULL, NULL, 2};
    cJSON *list = NULL;
    char name[16];
    kube_err e;

    for (int i = 0; i < 7; i++) {
        cJSON *o;

        snprintf(name, sizeof(name), "p%d", i);
        o = configmap(name, i % 2 ? "odd" : "even");
        assert_int_equal(kube_create(v->k, &cms, o, NULL, &e), 0);
        cJSON_Delete(o);
    }
    assert_int_equal(kube_list(v->k, &cms, &lo, &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")),
                     4);
    assert_non_null(kube_obj_rv(list));
    cJSON_Delete(list);
    lo = (kube_list_opts){NULL, "metadata.name=p3", NULL, 1};
    assert_int_equal(kube_list(v->k, &cms, &lo, &list, &e), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")),
                     1);
    cJSON_Delete(list);
}

static void test_bad_token(void **state)
{
    env *v = *state;
    kube_config kc = {.retries = -1};
    kcfg *c = NULL;
    kube *k = NULL;
    char err[256];
    kube_err e;
    char doc[512];

    assert_int_equal(kcfg_load(v->path, NULL, &c, err, sizeof(err)), 0);
    free(c->token_);
    c->token_ = strdup("wrong");
    assert_int_equal(kube_new(c, &kc, &k, err, sizeof(err)), 0);
    assert_int_equal(kube_get(k, &cms, NULL, &e), -1);
    assert_int_equal(e.code, 401);
    kube_free(k);
    kcfg_free(c);

    /* A server CA we do not trust: TLS fails with no HTTP answer. */
    snprintf(doc, sizeof(doc), "current-context: x\nclusters:\n- name: c\n"
             "  cluster: {server: '%s'}\ncontexts:\n- name: x\n"
             "  context: {cluster: c}\n", apisrv_url(v->srv));
    assert_int_equal(kcfg_parse(doc, strlen(doc), "t", NULL, NULL, &c, err,
                                sizeof(err)), 0);
    assert_int_equal(kube_new(c, &kc, &k, err, sizeof(err)), 0);
    assert_int_equal(kube_get(k, &cms, NULL, &e), -1);
    assert_int_equal(e.code, 0);
    assert_true(strlen(e.message) > 0);
    kube_free(k);
    kcfg_free(c);
}

static void test_retry_5xx_429(void **state)
{
    env *v = *state;
    apisrv_faults f = {.error_permille = 500, .error_code = 500};
    kube_ref ns = {"", "v1", "namespaces", NULL, "default", NULL};
    cJSON *o;
    kube_err e;

    /* 30% failures, 8 retries: all GETs get through. */
    f.error_permille = 300;
    apisrv_set_faults(v->srv, &f);
    for (int i = 0; i < 30; i++)
        if (kube_get(v->k, &ns, NULL, &e) < 0)
            fail_msg("GET with 500s: %d %s", e.code, e.message);
    f.error_code = 429;
    f.retry_after = 0;
    apisrv_set_faults(v->srv, &f);
    for (int i = 0; i < 10; i++)
        if (kube_get(v->k, &ns, NULL, &e) < 0)
            fail_msg("GET with 429s: %d %s", e.code, e.message);

    /* POST is not retried on 500: some of these must fail. */
    f.error_code = 500;
    f.error_permille = 500;
    apisrv_set_faults(v->srv, &f);
    int fails = 0;
    for (int i = 0; i < 20; i++) {
        char name[16];

        snprintf(name, sizeof(name), "r%d", i);
        o = configmap(name, "r");
        if (kube_create(v->k, &cms, o, NULL, &e) < 0) {
            assert_int_equal(e.code, 500);
            fails++;
        }
        cJSON_Delete(o);
    }
    assert_true(fails > 0);
    memset(&f, 0, sizeof(f));
    apisrv_set_faults(v->srv, &f);
}

/* Watch decoder. */

typedef struct seen {
    int n[5];
    char names[16][32];
    int count;
    int stop_after;
} seen;

static int on_ev(kube_event_type t, cJSON *obj, void *ud)
{
    seen *s = ud;
    const char *name = kube_obj_name(obj);

    s->n[t]++;
    if (s->count < 16)
        snprintf(s->names[s->count], 32, "%s", name ? name : "");
    s->count++;
    return s->stop_after && s->count >= s->stop_after;
}

static void test_wdec_split(void **state)
{
    const char *stream =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
        "\"resourceVersion\":\"1\"}}}\n\r\n"
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}"
        "\n{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{"
        "\"resourceVersion\":\"9\"}}}\n"
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\"}}}"
        "\n{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
        "\"code\":410,\"reason\":\"Expired\",\"message\":\"too old\"}}\n"
        "{\"type\":\"ADDED\",\"object\":{}}\n";
    size_t len = strlen(stream);

    /* Every split size gives the same events. */
    for (size_t step = 1; step <= len; step += (step < 8 ? 1 : 13)) {
        seen s = {0};
        kube_wdec *d = kube_wdec_new(0, on_ev, &s);
        kube_err e = {0};
        int rc = 0;

        for (size_t off = 0; off < len && rc == 0; off += step)
            rc = kube_wdec_feed(d, stream + off,
                                off + step > len ? len - off : step, &e);
        assert_int_equal(rc, 1);
        assert_int_equal(s.count, 4);
        assert_int_equal(s.n[KUBE_ADDED], 1);
        assert_int_equal(s.n[KUBE_BOOKMARK], 1);
        assert_string_equal(s.names[3], "c");
        assert_int_equal(e.code, 410);
        assert_true(kube_err_expired(&e));
        assert_string_equal(e.reason, "Expired");
        assert_int_equal(kube_wdec_feed(d, "x", 1, &e), 1);
        kube_wdec_free(d);
    }
}

static void test_wdec_bad(void **state)
{
    seen s = {0};
    kube_wdec *d = kube_wdec_new(64, on_ev, &s);
    kube_err e;
    char big[100];

    assert_int_equal(kube_wdec_feed(d, "{\"type\":\"ADDED\"}\n", 17, &e),
                     -1);
    assert_int_equal(e.code, 0);
    assert_non_null(strstr(e.message, "bad event"));
    kube_wdec_free(d);

    d = kube_wdec_new(64, on_ev, &s);
    memset(big, 'x', sizeof(big));
    assert_int_equal(kube_wdec_feed(d, big, 50, &e), 0);
    assert_int_equal(kube_wdec_pending(d), 50);
    assert_int_equal(kube_wdec_feed(d, big, 50, &e), -1);
    assert_non_null(strstr(e.message, "over 64 bytes"));
    kube_wdec_free(d);

    d = kube_wdec_new(0, on_ev, &s);
    assert_int_equal(kube_wdec_feed(d, "{\"type\":\"WHAT\",\"object\":{}}\n",
                                    28, &e), -1);
    kube_wdec_free(d);
}

/* Live watch. */

typedef struct wthread {
    env *v;
    seen s;
    const char *rv;
    int cancel;
    int rc;
    kube_err e;
} wthread;

static void *watch_main(void *arg)
{
    wthread *w = arg;
    kube_watch_opts o = {NULL, NULL, w->rv, 1, 0, 0, &w->cancel};

    w->rc = kube_watch(w->v->k, &cms, &o, on_ev, &w->s, &w->e);
    return NULL;
}

static void test_watch_live(void **state)
{
    env *v = *state;
    wthread w = {.v = v};
    cJSON *list, *o;
    pthread_t th;
    kube_err e;
    char rv[32];

    assert_int_equal(kube_list(v->k, &cms, NULL, &list, &e), 0);
    snprintf(rv, sizeof(rv), "%s", kube_obj_rv(list));
    cJSON_Delete(list);
    w.rv = rv;
    pthread_create(&th, NULL, watch_main, &w);

    o = configmap("w1", "w");
    assert_int_equal(kube_create(v->k, &cms, o, NULL, &e), 0);
    cJSON_Delete(o);
    kube_ref one = cms;
    one.name = "w1";
    assert_int_equal(kube_delete(v->k, &one, NULL, NULL, &e), 0);

    for (int i = 0; i < 100 && w.s.n[KUBE_DELETED] == 0; i++)
        usleep(20000);
    __atomic_store_n(&w.cancel, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.s.n[KUBE_ADDED], 1);
    assert_int_equal(w.s.n[KUBE_DELETED], 1);
    assert_string_equal(w.s.names[0], "w1");
}

static void test_watch_expired(void **state)
{
    env *v = *state;
    apisrv_faults f = {.force_410 = 1};
    wthread w = {.v = v, .rv = "1"};

    apisrv_set_faults(v->srv, &f);
    watch_main(&w);
    assert_int_equal(w.rc, -1);
    assert_true(kube_err_expired(&w.e));

    f = (apisrv_faults){.force_410 = 1, .watch_410_http = 1};
    apisrv_set_faults(v->srv, &f);
    memset(&w.e, 0, sizeof(w.e));
    watch_main(&w);
    assert_int_equal(w.rc, -1);
    assert_true(kube_err_expired(&w.e));
    memset(&f, 0, sizeof(f));
    apisrv_set_faults(v->srv, &f);
}

static void test_plain_http(void **state)
{
    env *v = *state;
    cJSON *out = NULL;
    kube_err e;

    assert_int_equal(strncmp(v->cfg->server, "http://", 7), 0);
    assert_int_equal(kube_request(v->k, "GET", "/version", NULL, NULL,
                                  &out, &e), 0);
    assert_string_equal(cJSON_GetObjectItem(out, "major")->valuestring,
                        "1");
    cJSON_Delete(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_wdec_split),
        cmocka_unit_test(test_wdec_bad),
        cmocka_unit_test_setup_teardown(test_crud_tls, setup_tls,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_update, setup_tls,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_paging_selector,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_bad_token, setup_tls,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retry_5xx_429, setup_plain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_watch_live, setup_tls,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_watch_expired, setup_plain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plain_http, setup_plain,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
