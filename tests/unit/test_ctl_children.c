/*
 * Tests for ctl_children: the manifests made from the diamond Astro
 * (tests/data/astro-diamond.yaml): Deployment, Service, the DAG and its
 * ConfigMap, the engine pod; owner references, labels and selectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "astertower/ctl_children.c"
#include "astertower/ctl_names.c"

#define DIAMOND ASTER_CASES "/astro-diamond.yaml"

static const ctl_owner owner = {"astro-demo", "default", "uid-1", 3};

static wf_workflow *diamond(void)
{
    wf_workflow *wf = NULL;
    wf_problems probs;

    wf_problems_init(&probs);
    assert_int_equal(wf_parse_file(DIAMOND, NULL, &wf, &probs), 0);
    wf_problems_free(&probs);
    return wf;
}

/* The string at a path of keys, or NULL. */
static const char *str_at(const cJSON *o, const char *const *keys)
{
    for (; *keys; keys++)
        o = cJSON_GetObjectItemCaseSensitive(o, *keys);
    return cJSON_GetStringValue(o);
}

#define S(o, ...) str_at(o, (const char *const[]){__VA_ARGS__, NULL})

static void assert_owned(const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *refs =
        cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences");
    const cJSON *ref = cJSON_GetArrayItem(refs, 0);

    assert_int_equal(cJSON_GetArraySize(refs), 1);
    assert_string_equal(S(ref, "apiVersion"), CTL_API_GV);
    assert_string_equal(S(ref, "kind"), "Astro");
    assert_string_equal(S(ref, "name"), "astro-demo");
    assert_string_equal(S(ref, "uid"), "uid-1");
    assert_true(cJSON_IsTrue(
        cJSON_GetObjectItemCaseSensitive(ref, "controller")));
    assert_true(cJSON_IsTrue(
        cJSON_GetObjectItemCaseSensitive(ref, "blockOwnerDeletion")));
    assert_string_equal(S(meta, "namespace"), "default");
    assert_string_equal(S(meta, "labels", CTL_LABEL_ASTRO), "astro-demo");
    assert_string_equal(S(meta, "labels", CTL_LABEL_MANAGED), "astertower");
    assert_string_equal(S(meta, "annotations", CTL_ANN_GENERATION), "3");
}

static void test_deployment(void **state)
{
    wf_workflow *wf = diamond();
    cJSON *secrets = cJSON_Parse("[{\"name\":\"regcred\"},{\"x\":1}]");
    cJSON *d = ctl_child_deployment(&owner, &wf->nodes[1], secrets);
    const cJSON *spec, *tmpl, *c, *ps;
    char *sel, *tl;

    assert_non_null(d);
    assert_string_equal(S(d, "kind"), "Deployment");
    assert_string_equal(S(d, "apiVersion"), "apps/v1");
    assert_string_equal(S(d, "metadata", "name"), "astro-demo-b");
    assert_string_equal(S(d, "metadata", "labels", CTL_LABEL_STAR), "b");
    assert_owned(d);

    spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
    tmpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
    sel = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(spec, "selector"), "matchLabels"));
    tl = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), "labels"));
    assert_string_equal(sel, tl);
    assert_non_null(strstr(sel, "\"astertower.kasterism.io/star\":\"b\""));

    c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(tmpl, "spec"),
                               "containers"),
                           0);
    assert_string_equal(S(c, "image"), "kasterism/test_b");
    assert_int_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "ports"), 0)
            ->child->valueint,
        8001);
    ps = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(tmpl, "spec"), "imagePullSecrets");
    assert_int_equal(cJSON_GetArraySize(ps), 1);
    assert_string_equal(S(cJSON_GetArrayItem(ps, 0), "name"), "regcred");

    free(sel);
    free(tl);
    cJSON_Delete(d);
    cJSON_Delete(secrets);
    wf_free(wf);
}

static void test_no_secrets_no_field(void **state)
{
    wf_workflow *wf = diamond();
    cJSON *d = ctl_child_deployment(&owner, &wf->nodes[0], NULL);
    char *text = cJSON_PrintUnformatted(d);

    assert_null(strstr(text, "imagePullSecrets"));
    free(text);
    cJSON_Delete(d);
    wf_free(wf);
}

static void test_service(void **state)
{
    wf_workflow *wf = diamond();
    cJSON *s = ctl_child_service(&owner, &wf->nodes[3]);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(s, "spec");
    const cJSON *port =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, "ports"), 0);

    assert_string_equal(S(s, "kind"), "Service");
    assert_string_equal(S(s, "metadata", "name"), "astro-demo-d");
    assert_owned(s);
    assert_string_equal(S(spec, "selector", CTL_LABEL_STAR), "d");
    assert_string_equal(S(spec, "selector", CTL_LABEL_ASTRO), "astro-demo");
    assert_int_equal(
        cJSON_GetObjectItemCaseSensitive(port, "port")->valueint, 8003);
    assert_int_equal(
        cJSON_GetObjectItemCaseSensitive(port, "targetPort")->valueint, 8003);
    cJSON_Delete(s);
    wf_free(wf);
}

static const char expected_dag[] =
    "{\"nodes\":["
    "{\"name\":\"a\",\"action\":\"GET\","
    "\"url\":\"http://127.2.0.1:8000/test\"},"
    "{\"name\":\"b\",\"action\":\"POST\","
    "\"url\":\"http://127.2.0.2:8001/test\",\"dependencies\":[\"a\"]},"
    "{\"name\":\"c\",\"action\":\"POST\","
    "\"url\":\"http://127.2.0.3:8002/test\",\"dependencies\":[\"a\"]},"
    "{\"name\":\"d\",\"action\":\"POST\","
    "\"url\":\"http://127.2.0.4:8003/test\","
    "\"dependencies\":[\"b\",\"c\"]}]}";

static void test_dag(void **state)
{
    wf_workflow *wf = diamond(), *back = NULL;
    ctl_addr addrs[4] = {{"127.2.0.1", 8000},
                         {"127.2.0.2", 8001},
                         {"127.2.0.3", 8002},
                         {"127.2.0.4", 8003}};
    cJSON *dag = ctl_dag_build(wf, addrs);
    char *text = cJSON_PrintUnformatted(dag);
    wf_problems probs;

    assert_string_equal(text, expected_dag);

    /* The engine reads it back as the same graph. */
    wf_problems_init(&probs);
    assert_int_equal(wf_parse(text, strlen(text), NULL, &back, &probs), 0);
    assert_int_equal(back->form, WF_FORM_DAG);
    assert_int_equal(back->nodes[3].n_deps, 2);
    wf_problems_free(&probs);

    wf_free(back);
    free(text);
    cJSON_Delete(dag);
    wf_free(wf);
}

static void test_dag_needs_every_address(void **state)
{
    wf_workflow *wf = diamond();
    ctl_addr addrs[4] = {{"127.2.0.1", 8000},
                         {NULL, 8001},
                         {"127.2.0.3", 8002},
                         {"127.2.0.4", 8003}};

    assert_null(ctl_dag_build(wf, addrs));
    wf_free(wf);
}

static void test_dag_keeps_timeout_and_retries(void **state)
{
    static const char doc[] =
        "{\"apiVersion\":\"astertower.kasterism.io/v1alpha1\","
        "\"kind\":\"Astro\",\"metadata\":{\"name\":\"t\"},"
        "\"spec\":{\"stars\":[{\"name\":\"a\",\"type\":\"docker\","
        "\"image\":\"i\",\"port\":80,\"target\":\"/x\",\"timeout\":\"2s\","
        "\"retries\":2}]}}";
    wf_workflow *wf = NULL;
    wf_problems probs;
    ctl_addr addr = {"10.0.0.1", 80};
    cJSON *dag;
    char *text;

    wf_problems_init(&probs);
    assert_int_equal(wf_parse(doc, strlen(doc), NULL, &wf, &probs), 0);
    dag = ctl_dag_build(wf, &addr);
    text = cJSON_PrintUnformatted(dag);
    assert_string_equal(text, "{\"nodes\":[{\"name\":\"a\",\"action\":\"GET\","
                              "\"url\":\"http://10.0.0.1:80/x\","
                              "\"timeout\":2000,\"retries\":2}]}");
    free(text);
    cJSON_Delete(dag);
    wf_problems_free(&probs);
    wf_free(wf);
}

/* A target longer than any fixed buffer reaches the DAG whole: a URL
 * cut short would call another path of the star. */
static void test_dag_long_target(void **state)
{
    static const char head[] =
        "{\"apiVersion\":\"astertower.kasterism.io/v1alpha1\","
        "\"kind\":\"Astro\",\"metadata\":{\"name\":\"t\"},"
        "\"spec\":{\"stars\":[{\"name\":\"a\",\"type\":\"docker\","
        "\"image\":\"i\",\"port\":80,\"target\":\"";
    static const char tail[] = "\"}]}}";
    wf_workflow *wf = NULL, *back = NULL;
    wf_problems probs;
    ctl_addr addr = {"10.0.0.1", 80};
    char target[601];
    char want[640];
    char doc[1024];
    const cJSON *node;
    cJSON *dag;
    char *text;

    /* 600 characters, the last one different so a cut would show. */
    target[0] = '/';
    memset(target + 1, 'p', 598);
    target[599] = 'z';
    target[600] = '\0';
    snprintf(doc, sizeof(doc), "%s%s%s", head, target, tail);
    snprintf(want, sizeof(want), "http://10.0.0.1:80%s", target);

    wf_problems_init(&probs);
    assert_int_equal(wf_parse(doc, strlen(doc), NULL, &wf, &probs), 0);
    dag = ctl_dag_build(wf, &addr);
    assert_non_null(dag);
    node =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dag, "nodes"), 0);
    assert_string_equal(S(node, "url"), want);
    assert_int_equal(strlen(S(node, "url")), 618);

    /* And the engine reads the same URL back. */
    text = cJSON_PrintUnformatted(dag);
    assert_int_equal(wf_parse(text, strlen(text), NULL, &back, &probs), 0);
    assert_string_equal(back->nodes[0].url, want);

    wf_free(back);
    free(text);
    cJSON_Delete(dag);
    wf_problems_free(&probs);
    wf_free(wf);
}

static void test_configmap(void **state)
{
    cJSON *cm = ctl_child_configmap(&owner, expected_dag);

    assert_string_equal(S(cm, "kind"), "ConfigMap");
    assert_string_equal(S(cm, "metadata", "name"), "astro-demo-dag");
    assert_string_equal(S(cm, "data", "dag.json"), expected_dag);
    assert_owned(cm);
    cJSON_Delete(cm);
}

static void test_engine_pod(void **state)
{
    cJSON *p = ctl_child_engine_pod(&owner, "kasterism/astermule:latest",
                                    "astro-demo-dag", NULL);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(p, "spec");
    const cJSON *c = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(spec, "containers"), 0);
    const cJSON *vol = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(spec, "volumes"), 0);
    const cJSON *mount = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"), 0);
    char *args = cJSON_PrintUnformatted(
        cJSON_GetObjectItemCaseSensitive(c, "args"));

    assert_string_equal(S(p, "kind"), "Pod");
    assert_string_equal(S(p, "metadata", "name"), "astro-demo-astermule");
    assert_string_equal(S(p, "metadata", "labels", CTL_LABEL_ROLE),
                        "engine");
    assert_owned(p);
    assert_string_equal(S(spec, "restartPolicy"), "Never");
    assert_string_equal(S(c, "image"), "kasterism/astermule:latest");
    assert_string_equal(
        args, "[\"--dag-file\",\"/etc/astermule/dag.json\",\"--port\","
              "\"8080\"]");
    assert_string_equal(S(vol, "configMap", "name"), "astro-demo-dag");
    assert_string_equal(S(mount, "mountPath"), "/etc/astermule");
    assert_string_equal(S(mount, "name"), S(vol, "name"));
    free(args);
    cJSON_Delete(p);
}

static void test_owner_from(void **state)
{
    cJSON *a = cJSON_Parse("{\"metadata\":{\"name\":\"n\",\"namespace\":"
                           "\"ns\",\"uid\":\"u\",\"generation\":4}}");
    cJSON *b = cJSON_Parse("{\"metadata\":{\"name\":\"n\"}}");
    ctl_owner o;

    assert_int_equal(ctl_owner_from(a, &o), 0);
    assert_string_equal(o.ns, "ns");
    assert_int_equal(o.generation, 4);
    assert_int_equal(ctl_owner_from(b, &o), -1);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deployment),
        cmocka_unit_test(test_no_secrets_no_field),
        cmocka_unit_test(test_service),
        cmocka_unit_test(test_dag),
        cmocka_unit_test(test_dag_needs_every_address),
        cmocka_unit_test(test_dag_keeps_timeout_and_retries),
        cmocka_unit_test(test_dag_long_target),
        cmocka_unit_test(test_configmap),
        cmocka_unit_test(test_engine_pod),
        cmocka_unit_test(test_owner_from),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
