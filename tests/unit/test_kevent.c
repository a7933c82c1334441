/*
 * kevent: a first Event is created with count 1, a repeat of the same
 * (object, type, reason, message) bumps count on the same Event, a new
 * message starts a new one, and a deleted Event is created anew.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apisrv.h"
#include "kevent.h"
#include "log.h"

typedef struct env {
    apisrv *srv;
    kcfg *cfg;
    kube *k;
    char path[64];
} env;

static int setup(void **state)
{
    apisrv_config sc = {0};
    env *v = calloc(1, sizeof(*v));
    char err[512];

    log_set_level(LOG_ERROR);
    if (apisrv_start(&sc, &v->srv, err, sizeof(err)) < 0)
        fail_msg("apisrv_start: %s", err);
    snprintf(v->path, sizeof(v->path), "/tmp/test_kevent.%d.cfg",
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

static cJSON *events(env *v)
{
    kube_ref r = {"", "v1", "events", "team", NULL, NULL};
    kube_list_opts o = {NULL, "involvedObject.name=w1", NULL, 0};
    cJSON *list = NULL, *items;
    kube_err e;

    assert_int_equal(kube_list(v->k, &r, &o, &list, &e), 0);
    items = cJSON_DetachItemFromObject(list, "items");
    cJSON_Delete(list);
    return items;
}

static int num(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItem(o, k)->valueint;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItem(o, k)->valuestring;
}

static void test_create_then_repeat(void **state)
{
    env *v = *state;
    kube_ref ns = {"", "v1", "namespaces", NULL, NULL, NULL};
    cJSON *nso = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                             "\"metadata\":{\"name\":\"team\"}}");
    cJSON *obj = cJSON_Parse(
        "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Astro\","
        "\"metadata\":{\"name\":\"w1\",\"namespace\":\"team\","
        "\"uid\":\"u-1\",\"resourceVersion\":\"5\"}}");
    kevent_config c = {.component = "astertower", .instance = "host-a"};
    kevent *ev;
    cJSON *items, *it;
    kube_err e;
    const char *name;

    assert_int_equal(kube_create(v->k, &ns, nso, NULL, &e), 0);
    cJSON_Delete(nso);
    ev = kevent_new(v->k, &c);
    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "Reconciled",
                                   "created 3 pods", &e), 0);
    items = events(v);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    it = items->child;
    name = kube_obj_name(it);
    assert_int_equal(strncmp(name, "w1.", 3), 0);
    assert_true(strlen(name) > 10);
    assert_int_equal(num(it, "count"), 1);
    assert_string_equal(str(it, "type"), "Normal");
    assert_string_equal(str(it, "reportingComponent"), "astertower");
    assert_string_equal(str(cJSON_GetObjectItem(it, "involvedObject"),
                            "uid"), "u-1");
    assert_string_equal(str(cJSON_GetObjectItem(it, "involvedObject"),
                            "kind"), "Astro");
    cJSON_Delete(items);

    for (int i = 0; i < 3; i++)
        assert_int_equal(kevent_recordf(ev, obj, KEVENT_NORMAL,
                                        "Reconciled", &e, "created %d pods",
                                        3), 0);
    assert_int_equal(kevent_record(ev, obj, KEVENT_WARNING, "Failed",
                                   "image pull", NULL), 0);
    items = events(v);
    assert_int_equal(cJSON_GetArraySize(items), 2);
    cJSON_ArrayForEach(it, items) {
        if (!strcmp(str(it, "reason"), "Reconciled"))
            assert_int_equal(num(it, "count"), 4);
        else
            assert_string_equal(str(it, "type"), "Warning");
    }

    /* The Event was deleted (expired): a repeat creates a new one. */
    cJSON_ArrayForEach(it, items) {
        kube_ref r = {"", "v1", "events", "team", kube_obj_name(it), NULL};

        assert_int_equal(kube_delete(v->k, &r, NULL, NULL, &e), 0);
    }
    cJSON_Delete(items);
    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "Reconciled",
                                   "created 3 pods", &e), 0);
    items = events(v);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_int_equal(num(items->child, "count"), 1);
    cJSON_Delete(items);

    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(obj, "metadata"),
                               "name");
    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "X", "y", &e),
                     -1);
    assert_non_null(strstr(e.message, "no name"));
    kevent_free(ev);
    cJSON_Delete(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_repeat, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
