/*
 * Unit tests of the object store: conflicts, no-op writes, status/spec
 * separation, selectors, paging, watch replay and expiry, finalizers,
 * garbage collection and namespace deletion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static const char *const astro_crd =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\","
    "\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"astros.astertower.kasterism.io\"},"
    "\"spec\":{\"group\":\"astertower.kasterism.io\",\"scope\":"
    "\"Namespaced\",\"names\":{\"kind\":\"Astro\",\"plural\":\"astros\","
    "\"singular\":\"astro\",\"shortNames\":[\"astro\"]},"
    "\"versions\":[{\"name\":\"v1alpha1\",\"served\":true,\"storage\":true,"
    "\"subresources\":{\"status\":{}},\"schema\":{\"openAPIV3Schema\":"
    "{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","
    "\"properties\":{\"size\":{\"type\":\"integer\",\"minimum\":0}}}}}}}]}}";

static const store_ref crd_ref = {"apiextensions.k8s.io", "v1",
                                  "customresourcedefinitions", NULL, NULL,
                                  NULL};

static store_ref cm(const char *ns, const char *name)
{
    store_ref r = {"", "v1", "configmaps", ns, name, NULL};

    return r;
}

static store_ref astro(const char *name, const char *sub)
{
    store_ref r = {"astertower.kasterism.io", "v1alpha1", "astros",
                   "default", name, sub};

    return r;
}

static int setup(void **state)
{
    *state = store_new(NULL);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    store_free(*state);
    return 0;
}

/* Parses text, runs create, returns the code; *out kept if asked. */
static int create(store *st, store_ref ref, const char *text, cJSON **keep)
{
    cJSON *body = cJSON_Parse(text), *out = NULL;
    store_err err = {0, NULL};
    store_opts o = {0};
    int rc;

    assert_non_null(body);
    ref.name = NULL;
    rc = store_create(st, &ref, &o, body, &out, &err);
    cJSON_Delete(body);
    store_err_clear(&err);
    if (keep)
        *keep = out;
    else
        cJSON_Delete(out);
    return rc;
}

static const char *meta(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), key));
}

static double meta_num(const cJSON *obj, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), key));
}

static cJSON *get(store *st, store_ref ref, int *code)
{
    store_err err = {0, NULL};
    cJSON *out = NULL;

    *code = store_get(st, &ref, NULL, &out, &err);
    store_err_clear(&err);
    return out;
}

static int patch(store *st, store_ref ref, store_patch_type t,
                 const char *text, cJSON **keep, store_err *err)
{
    cJSON *body = cJSON_Parse(text), *out = NULL;
    store_opts o = {0};
    int rc;

    o.field_manager = "test";
    rc = store_patch(st, &ref, &o, t, body, &out, err);
    cJSON_Delete(body);
    if (keep)
        *keep = out;
    else
        cJSON_Delete(out);
    return rc;
}

static int del(store *st, store_ref ref, const char *policy)
{
    store_err err = {0, NULL};
    store_opts o = {0};
    cJSON *out = NULL;
    int rc;

    o.propagation = policy;
    rc = store_delete(st, &ref, &o, NULL, &out, &err);
    cJSON_Delete(out);
    store_err_clear(&err);
    return rc;
}

static void add_crd(store *st)
{
    assert_int_equal(create(st, crd_ref, astro_crd, NULL), 201);
}

/* Counts the events a watch yields within a short wait. */
static int drain(store_watch *w, const char *want_type)
{
    store_event ev;
    int n = 0;

    while (store_watch_next(w, 50, &ev) == 1) {
        if (!want_type || strcmp(ev.type, want_type) == 0)
            n++;
        cJSON_Delete(ev.object);
    }
    return n;
}

static void test_create_and_already_exists(void **state)
{
    store *st = *state;
    cJSON *o = NULL;
    store_err err = {0, NULL};
    cJSON *body = cJSON_Parse("{\"metadata\":{\"name\":\"c1\"}}");
    store_ref r = cm("default", NULL);
    int code;

    assert_int_equal(create(st, cm("default", NULL),
                            "{\"metadata\":{\"name\":\"c1\"}}", &o), 201);
    assert_non_null(meta(o, "uid"));
    assert_non_null(meta(o, "creationTimestamp"));
    assert_non_null(meta(o, "resourceVersion"));
    cJSON_Delete(o);
    assert_int_equal(store_create(st, &r, NULL, body, &o, &err), 409);
    assert_string_equal(store_err_message(&err),
                        "configmaps \"c1\" already exists");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            err.status, "reason")), "AlreadyExists");
    store_err_clear(&err);
    cJSON_Delete(body);
    o = get(st, cm("default", "nope"), &code);
    assert_int_equal(code, 404);
    assert_null(o);
    assert_int_equal(create(st, cm("missing", NULL),
                            "{\"metadata\":{\"name\":\"c1\"}}", NULL), 404);
}

static void test_conflict_on_stale_rv(void **state)
{
    store *st = *state;
    store_ref r = cm("default", "c1");
    store_err err = {0, NULL};
    cJSON *o = NULL, *out = NULL;

    create(st, r, "{\"metadata\":{\"name\":\"c1\"},\"data\":{\"a\":\"1\"}}",
           &o);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "data"), "a",
                              cJSON_CreateString("2"));
    assert_int_equal(store_update(st, &r, NULL, o, &out, &err), 200);
    cJSON_Delete(out);
    /* o still carries the old resourceVersion. */
    assert_int_equal(store_update(st, &r, NULL, o, &out, &err), 409);
    assert_int_equal(err.code, 409);
    assert_string_equal(store_err_message(&err),
                        "Operation cannot be fulfilled on configmaps \"c1\":"
                        " the object has been modified; please apply your "
                        "changes to the latest version and try again");
    store_err_clear(&err);
    cJSON_Delete(o);
}

static void test_noop_update_keeps_rv(void **state)
{
    store *st = *state;
    store_ref r = cm("default", "c1"), coll = cm("default", NULL);
    store_err err = {0, NULL};
    store_opts o = {0};
    store_watch *w = NULL;
    cJSON *obj = NULL, *out = NULL;
    char rv[32];

    create(st, r, "{\"metadata\":{\"name\":\"c1\"},\"data\":{\"a\":\"1\"}}",
           &obj);
    snprintf(rv, sizeof(rv), "%s", meta(obj, "resourceVersion"));
    o.resource_version = rv;
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 200);
    assert_int_equal(store_update(st, &r, NULL, obj, &out, &err), 200);
    assert_string_equal(meta(out, "resourceVersion"), rv);
    cJSON_Delete(out);
    assert_int_equal(patch(st, r, STORE_PATCH_MERGE,
                           "{\"data\":{\"a\":\"1\"}}", &out, &err), 200);
    assert_string_equal(meta(out, "resourceVersion"), rv);
    cJSON_Delete(out);
    assert_int_equal(drain(w, NULL), 0);
    store_watch_close(w);
    cJSON_Delete(obj);
}

static void test_status_spec_and_generation(void **state)
{
    store *st = *state;
    store_err err = {0, NULL};
    cJSON *o = NULL;
    char rv[32];

    add_crd(st);
    assert_int_equal(create(st, astro(NULL, NULL),
                            "{\"apiVersion\":\"astertower.kasterism.io/"
                            "v1alpha1\",\"kind\":\"Astro\",\"metadata\":"
                            "{\"name\":\"a1\"},\"spec\":{\"size\":1},"
                            "\"status\":{\"phase\":\"X\"}}", &o), 201);
    assert_null(cJSON_GetObjectItem(o, "status"));
    assert_int_equal(meta_num(o, "generation"), 1);
    cJSON_Delete(o);

    /* Spec change on the main endpoint counts; status in it is ignored. */
    assert_int_equal(patch(st, astro("a1", NULL), STORE_PATCH_MERGE,
                           "{\"spec\":{\"size\":2},\"status\":{\"phase\":"
                           "\"Y\"}}", &o, &err), 200);
    assert_int_equal(meta_num(o, "generation"), 2);
    assert_null(cJSON_GetObjectItem(o, "status"));
    cJSON_Delete(o);

    /* Labels never bump generation. */
    assert_int_equal(patch(st, astro("a1", NULL), STORE_PATCH_MERGE,
                           "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}", &o,
                           &err), 200);
    assert_int_equal(meta_num(o, "generation"), 2);
    cJSON_Delete(o);

    /* The status endpoint takes status only and keeps generation. */
    assert_int_equal(patch(st, astro("a1", "status"), STORE_PATCH_MERGE,
                           "{\"spec\":{\"size\":9},\"metadata\":{\"labels\":"
                           "{\"x\":\"z\"}},\"status\":{\"phase\":\"Done\"}}",
                           &o, &err), 200);
    assert_int_equal(meta_num(o, "generation"), 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(o, "status"), "phase")),
                        "Done");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"),
                                         "size")->valueint, 2);
    snprintf(rv, sizeof(rv), "%s", meta(o, "resourceVersion"));
    cJSON_Delete(o);

    /* Rewriting the same status is a no-op. */
    assert_int_equal(patch(st, astro("a1", "status"), STORE_PATCH_MERGE,
                           "{\"status\":{\"phase\":\"Done\"}}", &o, &err),
                     200);
    assert_string_equal(meta(o, "resourceVersion"), rv);
    cJSON_Delete(o);

    /* Schema violations are 422 with causes kubectl can print. */
    assert_int_equal(patch(st, astro("a1", NULL), STORE_PATCH_MERGE,
                           "{\"spec\":{\"size\":-1}}", NULL, &err), 422);
    assert_string_equal(store_err_message(&err),
                        "Astro.astertower.kasterism.io \"a1\" is invalid: "
                        "spec.size: Invalid value: -1: spec.size in body "
                        "should be greater than or equal to 0");
    store_err_clear(&err);

    /* Strategic merge patches are not accepted for custom resources. */
    assert_int_equal(patch(st, astro("a1", NULL), STORE_PATCH_STRATEGIC,
                           "{}", NULL, &err), 415);
    store_err_clear(&err);
}

static void make_cms(store *st)
{
    create(st, cm("default", NULL), "{\"metadata\":{\"name\":\"a\","
           "\"labels\":{\"env\":\"a\"}}}", NULL);
    create(st, cm("default", NULL), "{\"metadata\":{\"name\":\"b\","
           "\"labels\":{\"env\":\"b\",\"legacy\":\"1\"}}}", NULL);
    create(st, cm("default", NULL), "{\"metadata\":{\"name\":\"c\","
           "\"labels\":{\"env\":\"c\"}}}", NULL);
    create(st, cm("kube-system", NULL), "{\"metadata\":{\"name\":\"d\","
           "\"labels\":{\"env\":\"a\"}}}", NULL);
    create(st, cm("kube-public", NULL), "{\"metadata\":{\"name\":\"e\"}}",
           NULL);
}

/* Lists ref with the selectors; returns the names joined by commas. */
static int list_names(store *st, store_ref ref, store_opts *o, char *buf,
                      size_t len)
{
    store_err err = {0, NULL};
    cJSON *out = NULL;
    const cJSON *it;
    size_t n = 0;
    int rc = store_list(st, &ref, o, &out, &err);

    buf[0] = '\0';
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(out, "items")) {
        n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "",
                              meta(it, "name"));
    }
    cJSON_Delete(out);
    store_err_clear(&err);
    return rc;
}

static void test_selectors(void **state)
{
    store *st = *state;
    store_opts o = {0};
    char names[256];

    make_cms(st);
    o.label_selector = "env in (a,b),!legacy";
    list_names(st, cm(NULL, NULL), &o, names, sizeof(names));
    assert_string_equal(names, "a,d");
    o.label_selector = "env!=a";
    list_names(st, cm("default", NULL), &o, names, sizeof(names));
    assert_string_equal(names, "b,c");
    o.label_selector = NULL;
    o.field_selector = "metadata.namespace!=default";
    list_names(st, cm(NULL, NULL), &o, names, sizeof(names));
    assert_string_equal(names, "e,d");
    o.field_selector = "metadata.name=c";
    list_names(st, cm(NULL, NULL), &o, names, sizeof(names));
    assert_string_equal(names, "c");
    o.field_selector = "spec.size=1";
    assert_int_equal(list_names(st, cm(NULL, NULL), &o, names,
                                sizeof(names)), 400);
    o.field_selector = NULL;
    o.label_selector = "env in (a";
    assert_int_equal(list_names(st, cm(NULL, NULL), &o, names,
                                sizeof(names)), 400);
}

static void test_paging(void **state)
{
    store *st = *state;
    store_ref r = cm(NULL, NULL);
    store_err err = {0, NULL};
    store_opts o = {0};
    char all[256] = "";
    size_t n = 0;
    int pages = 0;
    char *cont = NULL;

    make_cms(st);
    o.limit = 2;
    do {
        cJSON *out = NULL, *m;
        const cJSON *it;

        o.cont = cont;
        assert_int_equal(store_list(st, &r, &o, &out, &err), 200);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(out, "items")) {
            n += (size_t)snprintf(all + n, sizeof(all) - n, "%s%s",
                                  n ? "," : "", meta(it, "name"));
        }
        m = cJSON_GetObjectItem(out, "metadata");
        free(cont);
        cont = cJSON_GetStringValue(cJSON_GetObjectItem(m, "continue"))
                   ? strdup(cJSON_GetStringValue(
                         cJSON_GetObjectItem(m, "continue")))
                   : NULL;
        if (pages == 0)
            assert_int_equal(cJSON_GetObjectItem(m, "remainingItemCount")
                                 ->valueint, 3);
        pages++;
        cJSON_Delete(out);
    } while (cont);
    assert_int_equal(pages, 3);
    assert_string_equal(all, "a,b,c,e,d");
}

static void test_watch_replay_and_expiry(void **state)
{
    store *st = *state;
    store_ref coll = cm("default", NULL);
    store_err err = {0, NULL};
    store_opts o = {0};
    store_watch *w = NULL;
    store_event ev;
    char rv[32];

    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)store_rv(st));
    make_cms(st);

    /* Replay: three creations in default after rv. */
    o.resource_version = rv;
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 200);
    assert_int_equal(drain(w, "ADDED"), 3);
    store_watch_close(w);

    /* Unset RV: synthetic ADDED for every current object. */
    o.resource_version = NULL;
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 200);
    assert_int_equal(drain(w, "ADDED"), 3);
    store_watch_close(w);

    /* Past the history: ERROR 410 as an event, then the end. */
    store_compact(st);
    o.resource_version = rv;
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 200);
    assert_int_equal(store_watch_next(w, 100, &ev), 1);
    assert_string_equal(ev.type, "ERROR");
    assert_int_equal(cJSON_GetObjectItem(ev.object, "code")->valueint, 410);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            ev.object, "reason")), "Expired");
    cJSON_Delete(ev.object);
    assert_int_equal(store_watch_next(w, 100, &ev), -1);
    store_watch_close(w);

    /* ... or as HTTP 410 when asked. */
    o.expired_as_http = 1;
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 410);
    assert_null(w);
    store_err_clear(&err);

    /* A bounded history expires too. */
    store_set_history(st, 2);
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)store_rv(st));
    for (int i = 0; i < 3; i++) {
        char body[64];

        snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"h%d\"}}", i);
        assert_int_equal(create(st, coll, body, NULL), 201);
    }
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 410);
    store_err_clear(&err);
}

static void test_watch_selector_transitions(void **state)
{
    store *st = *state;
    store_ref coll = cm("default", NULL);
    store_err err = {0, NULL};
    store_opts o = {0};
    store_watch *w = NULL;
    store_event ev;

    make_cms(st);
    o.label_selector = "env=a";
    o.resource_version = "0";
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 200);
    assert_int_equal(store_watch_next(w, 100, &ev), 1);
    assert_string_equal(ev.type, "ADDED");
    cJSON_Delete(ev.object);
    patch(st, cm("default", "a"), STORE_PATCH_MERGE,
          "{\"metadata\":{\"labels\":{\"env\":\"x\"}}}", NULL, &err);
    patch(st, cm("default", "c"), STORE_PATCH_MERGE,
          "{\"metadata\":{\"labels\":{\"env\":\"a\"}}}", NULL, &err);
    patch(st, cm("default", "c"), STORE_PATCH_MERGE,
          "{\"data\":{\"k\":\"v\"}}", NULL, &err);
    assert_int_equal(store_watch_next(w, 100, &ev), 1);
    assert_string_equal(ev.type, "DELETED");
    assert_string_equal(meta(ev.object, "name"), "a");
    cJSON_Delete(ev.object);
    assert_int_equal(store_watch_next(w, 100, &ev), 1);
    assert_string_equal(ev.type, "ADDED");
    assert_string_equal(meta(ev.object, "name"), "c");
    cJSON_Delete(ev.object);
    assert_int_equal(store_watch_next(w, 100, &ev), 1);
    assert_string_equal(ev.type, "MODIFIED");
    cJSON_Delete(ev.object);
    assert_int_equal(store_watch_next(w, 50, &ev), 0);
    store_watch_bookmark(w, &ev);
    assert_string_equal(ev.type, "BOOKMARK");
    cJSON_Delete(ev.object);
    store_watch_close(w);
}

/* Creates owner "o" and dependents "d1" (blocking) and "d2". */
static void make_family(store *st, const char *dep_finalizer)
{
    cJSON *owner = NULL;
    char body[1024];

    create(st, cm("default", NULL), "{\"metadata\":{\"name\":\"o\"}}",
           &owner);
    for (int i = 1; i <= 2; i++) {
        snprintf(body, sizeof(body),
                 "{\"metadata\":{\"name\":\"d%d\",%s%s%s\"ownerReferences\":"
                 "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":"
                 "\"o\",\"uid\":\"%s\",\"controller\":true,"
                 "\"blockOwnerDeletion\":%s}]}}", i,
                 i == 1 && dep_finalizer ? "\"finalizers\":[\"" : "",
                 i == 1 && dep_finalizer ? dep_finalizer : "",
                 i == 1 && dep_finalizer ? "\"]," : "", meta(owner, "uid"),
                 i == 1 ? "true" : "false");
        assert_int_equal(create(st, cm("default", NULL), body, NULL), 201);
    }
    cJSON_Delete(owner);
}

static int exists(store *st, const char *name)
{
    int code;

    cJSON_Delete(get(st, cm("default", name), &code));
    return code == 200;
}

static void test_gc_background(void **state)
{
    store *st = *state;

    make_family(st, NULL);
    assert_int_equal(del(st, cm("default", "o"), NULL), 200);
    assert_false(exists(st, "o"));
    assert_false(exists(st, "d1"));
    assert_false(exists(st, "d2"));
}

/* A dependent created after its owner went (a controller racing the
 * owner's deletion) is collected, and one with a live owner is kept. */
static void test_gc_created_after_owner(void **state)
{
    store *st = *state;
    cJSON *owner = NULL;
    char body[512];

    create(st, cm("default", NULL), "{\"metadata\":{\"name\":\"o\"}}",
           &owner);
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"name\":\"late\",\"ownerReferences\":"
             "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":"
             "\"o\",\"uid\":\"%s\"}]}}", meta(owner, "uid"));
    assert_int_equal(del(st, cm("default", "o"), NULL), 200);
    assert_int_equal(create(st, cm("default", NULL), body, NULL), 201);
    assert_false(exists(st, "late"));

    make_family(st, NULL);
    assert_true(exists(st, "d1"));
    assert_true(exists(st, "d2"));
    cJSON_Delete(owner);
}

static void test_gc_foreground(void **state)
{
    store *st = *state;
    store_err err = {0, NULL};
    int code;
    cJSON *o;

    make_family(st, "example.com/hold");
    assert_int_equal(del(st, cm("default", "o"), "Foreground"), 200);
    /* d1 blocks: it waits for its own finalizer. */
    o = get(st, cm("default", "o"), &code);
    assert_int_equal(code, 200);
    assert_non_null(meta(o, "deletionTimestamp"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(
                            cJSON_GetObjectItem(cJSON_GetObjectItem(
                                o, "metadata"), "finalizers"), 0)),
                        "foregroundDeletion");
    cJSON_Delete(o);
    assert_false(exists(st, "d2"));
    assert_true(exists(st, "d1"));
    assert_int_equal(patch(st, cm("default", "d1"), STORE_PATCH_MERGE,
                           "{\"metadata\":{\"finalizers\":null}}", NULL,
                           &err), 200);
    assert_false(exists(st, "d1"));
    assert_false(exists(st, "o"));
}

static void test_gc_orphan(void **state)
{
    store *st = *state;
    int code;
    cJSON *d;

    make_family(st, NULL);
    assert_int_equal(del(st, cm("default", "o"), "Orphan"), 200);
    assert_false(exists(st, "o"));
    d = get(st, cm("default", "d1"), &code);
    assert_int_equal(code, 200);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "metadata"),
                                    "ownerReferences"));
    cJSON_Delete(d);
    assert_true(exists(st, "d2"));
}

static void test_finalizers(void **state)
{
    store *st = *state;
    store_ref coll = cm("default", NULL);
    store_err err = {0, NULL};
    store_opts o = {0};
    store_watch *w = NULL;
    store_event ev;
    char rv[32];

    create(st, coll, "{\"metadata\":{\"name\":\"f\",\"finalizers\":"
           "[\"example.com/cleanup\"]}}", NULL);
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)store_rv(st));
    o.resource_version = rv;
    assert_int_equal(store_watch_open(st, &coll, &o, &w, &err), 200);
    assert_int_equal(del(st, cm("default", "f"), NULL), 200);
    assert_true(exists(st, "f"));
    assert_int_equal(patch(st, cm("default", "f"), STORE_PATCH_MERGE,
                           "{\"metadata\":{\"finalizers\":[\"example.com/"
                           "cleanup\",\"new\"]}}", NULL, &err), 422);
    store_err_clear(&err);
    assert_int_equal(patch(st, cm("default", "f"), STORE_PATCH_JSON,
                           "[{\"op\":\"remove\",\"path\":\"/metadata/"
                           "finalizers/0\"}]", NULL, &err), 200);
    assert_false(exists(st, "f"));
    assert_int_equal(store_watch_next(w, 100, &ev), 1);
    assert_string_equal(ev.type, "MODIFIED");
    assert_non_null(meta(ev.object, "deletionTimestamp"));
    cJSON_Delete(ev.object);
    assert_int_equal(store_watch_next(w, 100, &ev), 1);
    assert_string_equal(ev.type, "DELETED");
    cJSON_Delete(ev.object);
    store_watch_close(w);
}

static void test_namespace_deletion(void **state)
{
    store *st = *state;
    store_ref ns = {"", "v1", "namespaces", NULL, NULL, NULL};
    store_ref nsn = ns;
    store_err err = {0, NULL};
    cJSON *o;
    int code;

    nsn.name = "team-a";
    assert_int_equal(create(st, ns, "{\"metadata\":{\"name\":\"team-a\"}}",
                            NULL), 201);
    create(st, cm("team-a", NULL), "{\"metadata\":{\"name\":\"x\"}}", NULL);
    create(st, cm("team-a", NULL), "{\"metadata\":{\"name\":\"held\","
           "\"finalizers\":[\"example.com/hold\"]}}", NULL);
    assert_int_equal(del(st, nsn, NULL), 200);
    o = get(st, nsn, &code);
    assert_int_equal(code, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(o, "status"), "phase")),
                        "Terminating");
    cJSON_Delete(o);
    cJSON_Delete(get(st, cm("team-a", "x"), &code));
    assert_int_equal(code, 404);
    assert_int_equal(create(st, cm("team-a", NULL),
                            "{\"metadata\":{\"name\":\"late\"}}", NULL),
                     403);
    assert_int_equal(patch(st, cm("team-a", "held"), STORE_PATCH_MERGE,
                           "{\"metadata\":{\"finalizers\":null}}", NULL,
                           &err), 200);
    cJSON_Delete(get(st, nsn, &code));
    assert_int_equal(code, 404);
}

static void test_generate_name_and_dry_run(void **state)
{
    store *st = *state;
    store_ref r = cm("default", NULL);
    store_err err = {0, NULL};
    store_opts o = {0};
    cJSON *body = cJSON_Parse("{\"metadata\":{\"generateName\":\"job-\"}}");
    cJSON *out = NULL;
    uint64_t before;

    assert_int_equal(store_create(st, &r, &o, body, &out, &err), 201);
    assert_int_equal(strlen(meta(out, "name")), 9);
    assert_memory_equal(meta(out, "name"), "job-", 4);
    cJSON_Delete(out);
    before = store_rv(st);
    o.dry_run = 1;
    assert_int_equal(store_create(st, &r, &o, body, &out, &err), 201);
    cJSON_Delete(out);
    assert_int_equal(store_rv(st), before);
    cJSON_Delete(body);
    body = cJSON_Parse("{\"metadata\":{}}");
    assert_int_equal(store_create(st, &r, &o, body, &out, &err), 422);
    store_err_clear(&err);
    cJSON_Delete(body);
}

static void test_crd_lifecycle_and_apply(void **state)
{
    store *st = *state;
    store_ref a = astro(NULL, NULL), crd = crd_ref;
    store_err err = {0, NULL};
    cJSON *out = NULL;

    assert_false(store_has_resource(st, &a));
    add_crd(st);
    assert_true(store_has_resource(st, &a));
    assert_int_equal(patch(st, astro("ap", NULL), STORE_PATCH_APPLY,
                           "{\"apiVersion\":\"astertower.kasterism.io/"
                           "v1alpha1\",\"kind\":\"Astro\",\"metadata\":"
                           "{\"name\":\"ap\"},\"spec\":{\"size\":3}}", &out,
                           &err), 201);
    cJSON_Delete(out);
    assert_int_equal(patch(st, astro("ap", NULL), STORE_PATCH_APPLY,
                           "{\"spec\":{\"size\":4}}", &out, &err), 200);
    assert_int_equal(meta_num(out, "generation"), 2);
    cJSON_Delete(out);
    crd.name = "astros.astertower.kasterism.io";
    assert_int_equal(del(st, crd, NULL), 200);
    assert_false(store_has_resource(st, &a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_already_exists,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_on_stale_rv, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_noop_update_keeps_rv, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_spec_and_generation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_selectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_replay_and_expiry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_watch_selector_transitions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_background, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gc_created_after_owner, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gc_foreground, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gc_orphan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finalizers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespace_deletion, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_generate_name_and_dry_run,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_crd_lifecycle_and_apply, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
