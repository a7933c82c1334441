/*
 * Tests of the simulated cluster: an in-process apiserver with the
 * cluster on runs the real test-service and astermule binaries from the
 * build's bin dir. Every test starts its own server, so every process a
 * test started is stopped by the teardown (apisrv_stop).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "apisrv.h"

#define WAIT_MS 30000

static const store_ref deps_ref = {"apps", "v1", "deployments", "default",
                                   NULL, NULL};
static const store_ref pods_ref = {"", "v1", "pods", "default", NULL, NULL};
static const store_ref svcs_ref = {"", "v1", "services", "default", NULL,
                                   NULL};
static const store_ref cms_ref = {"", "v1", "configmaps", "default", NULL,
                                  NULL};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    apisrv_config cfg;
    apisrv *srv;
    char err[256];

    memset(&cfg, 0, sizeof(cfg));
    cfg.cluster.enabled = 1;
    cfg.cluster.bin_dir = ASTER_BIN;
    cfg.cluster.backoff_ms = 100;
    cfg.cluster.pull_backoff_ms = 100;
    if (apisrv_start(&cfg, &srv, err, sizeof(err)) < 0) {
        fprintf(stderr, "apisrv_start: %s\n", err);
        return -1;
    }
    *state = srv;
    return 0;
}

static int teardown(void **state)
{
    apisrv_stop(*state);
    return 0;
}

/* ---- store helpers ---- */

static void create(apisrv *srv, const store_ref *coll, const char *json)
{
    cJSON *body = cJSON_Parse(json), *out = NULL;
    store_err err = {0, NULL};
    store_opts o;
    int code;

    memset(&o, 0, sizeof(o));
    assert_non_null(body);
    code = store_create(apisrv_store(srv), coll, &o, body, &out, &err);
    if (code != 201)
        fprintf(stderr, "create: %d %s\n", code, store_err_message(&err));
    assert_int_equal(code, 201);
    store_err_clear(&err);
    cJSON_Delete(out);
    cJSON_Delete(body);
}

static cJSON *get(apisrv *srv, const store_ref *coll, const char *name)
{
    store_ref ref = *coll;
    store_err err = {0, NULL};
    store_opts o;
    cJSON *out = NULL;

    memset(&o, 0, sizeof(o));
    ref.name = name;
    if (store_get(apisrv_store(srv), &ref, &o, &out, &err) != 200) {
        store_err_clear(&err);
        return NULL;
    }
    return out;
}

/* The first Pod labelled app=<app> (fresh), or NULL. */
static cJSON *pod_of(apisrv *srv, const char *app, int index)
{
    store_err err = {0, NULL};
    store_opts o;
    cJSON *list = NULL, *pod;
    char sel[128];

    memset(&o, 0, sizeof(o));
    snprintf(sel, sizeof(sel), "app=%s", app);
    o.label_selector = sel;
    if (store_list(apisrv_store(srv), &pods_ref, &o, &list, &err) != 200) {
        store_err_clear(&err);
        return NULL;
    }
    pod = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "items"), index);
    pod = pod ? cJSON_Duplicate(pod, 1) : NULL;
    cJSON_Delete(list);
    return pod;
}

static const char *str_at(const cJSON *o, const char *path)
{
    char buf[256], *save = NULL;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *t = strtok_r(buf, ".", &save); o && t;
         t = strtok_r(NULL, ".", &save))
        o = *t >= '0' && *t <= '9' ? cJSON_GetArrayItem(o, atoi(t))
                                   : cJSON_GetObjectItem(o, t);
    return cJSON_IsString(o) ? o->valuestring : NULL;
}

static int num_at(const cJSON *o, const char *path)
{
    char buf[256], *save = NULL;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *t = strtok_r(buf, ".", &save); o && t;
         t = strtok_r(NULL, ".", &save))
        o = *t >= '0' && *t <= '9' ? cJSON_GetArrayItem(o, atoi(t))
                                   : cJSON_GetObjectItem(o, t);
    return cJSON_IsNumber(o) ? o->valueint : -1;
}

/* The status and reason of condition type, or NULL. */
static const char *cond(const cJSON *obj, const char *type,
                        const char **reason)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(
                              obj, "status"), "conditions")) {
        if (strcmp(str_at(c, "type"), type) == 0) {
            if (reason)
                *reason = str_at(c, "reason");
            return str_at(c, "status");
        }
    }
    return NULL;
}

static int is(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Polls until the Deployment's condition type has status and reason. */
static cJSON *wait_deploy(apisrv *srv, const char *name, const char *type,
                          const char *status, const char *reason)
{
    long long end = now_ms() + WAIT_MS;

    while (now_ms() < end) {
        cJSON *d = get(srv, &deps_ref, name);
        const char *r = NULL;

        if (d && is(cond(d, type, &r), status) && (!reason || is(r, reason)))
            return d;
        cJSON_Delete(d);
        usleep(50 * 1000);
    }
    fail_msg("deployment %s never had %s=%s (%s)", name, type, status,
             reason ? reason : "any reason");
    return NULL;
}

/* Polls until the app's Pod has a container waiting with reason. */
static cJSON *wait_waiting(apisrv *srv, const char *app, const char *why)
{
    long long end = now_ms() + WAIT_MS;

    while (now_ms() < end) {
        cJSON *p = pod_of(srv, app, 0);

        if (p && is(str_at(p, "status.containerStatuses.0.state.waiting."
                           "reason"), why))
            return p;
        cJSON_Delete(p);
        usleep(50 * 1000);
    }
    fail_msg("no pod of %s ever waited with %s", app, why);
    return NULL;
}

static cJSON *wait_ready_pod(apisrv *srv, const char *app, int index)
{
    long long end = now_ms() + WAIT_MS;

    while (now_ms() < end) {
        cJSON *p = pod_of(srv, app, index);

        if (p && is(cond(p, "Ready", NULL), "True"))
            return p;
        cJSON_Delete(p);
        usleep(50 * 1000);
    }
    fail_msg("pod %d of %s never became ready", index, app);
    return NULL;
}

static void deploy(apisrv *srv, const char *app, const char *image,
                   int replicas, const char *extra_spec)
{
    char json[2048];

    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
             "\"metadata\":{\"name\":\"%s\"},\"spec\":{\"replicas\":%d,%s"
             "\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
             "\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},"
             "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":\"%s\","
             "\"ports\":[{\"containerPort\":8000,\"name\":\"http\"}]}]}}}}",
             app, replicas, extra_spec ? extra_spec : "", app, app, image);
    create(srv, &deps_ref, json);
}

static void service(apisrv *srv, const char *app)
{
    char json[512];

    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":"
             "{\"name\":\"%s\"},\"spec\":{\"selector\":{\"app\":\"%s\"},"
             "\"ports\":[{\"port\":8000,\"targetPort\":\"http\"}]}}",
             app, app);
    create(srv, &svcs_ref, json);
}

/* The Service's clusterIP (static buffer). */
static const char *cluster_ip(apisrv *srv, const char *name)
{
    static char ip[32];
    long long end = now_ms() + WAIT_MS;

    while (now_ms() < end) {
        cJSON *s = get(srv, &svcs_ref, name);
        const char *v = str_at(s, "spec.clusterIP");

        snprintf(ip, sizeof(ip), "%s", v ? v : "");
        cJSON_Delete(s);
        if (*ip)
            return ip;
        usleep(20 * 1000);
    }
    fail_msg("service %s never got a cluster IP", name);
    return NULL;
}

/* ---- HTTP ---- */

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    buf *b = ud;

    b->data = realloc(b->data, b->len + sz * n + 1);
    memcpy(b->data + b->len, p, sz * n);
    b->len += sz * n;
    b->data[b->len] = '\0';
    return sz * n;
}

/* POSTs body to url; the parsed JSON answer or NULL. */
static cJSON *post(const char *url, const char *body, long *code)
{
    CURL *c = curl_easy_init();
    buf b = {NULL, 0};
    cJSON *out = NULL;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    *code = 0;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
        out = b.data ? cJSON_Parse(b.data) : NULL;
    }
    free(b.data);
    curl_easy_cleanup(c);
    return out;
}

/* ---- tests ---- */

static void test_deployment_available_and_service_answers(void **state)
{
    apisrv *srv = *state;
    cJSON *d, *pod, *ans;
    char url[128];
    long code;

    deploy(srv, "ta", "kasterism/test_a:latest", 1, NULL);
    service(srv, "ta");
    d = wait_deploy(srv, "ta", "Available", "True", NULL);
    assert_int_equal(num_at(d, "status.readyReplicas"), 1);
    assert_int_equal(num_at(d, "status.availableReplicas"), 1);
    assert_int_equal(num_at(d, "status.observedGeneration"), 1);
    cJSON_Delete(d);
    d = wait_deploy(srv, "ta", "Progressing", "True",
                    "NewReplicaSetAvailable");
    cJSON_Delete(d);

    pod = wait_ready_pod(srv, "ta", 0);
    assert_string_equal(str_at(pod, "status.phase"), "Running");
    assert_int_equal(strncmp(str_at(pod, "status.podIP"), "127.", 4), 0);
    assert_true(is(str_at(pod, "metadata.ownerReferences.0.kind"),
                   "Deployment"));
    assert_non_null(str_at(pod, "status.containerStatuses.0.state.running."
                           "startedAt"));

    /* The proxy forwards clusterIP:port to the Pod. */
    snprintf(url, sizeof(url), "http://%s:8000/test",
             cluster_ip(srv, "ta"));
    ans = post(url, "{\"x\":1}", &code);
    assert_int_equal(code, 200);
    assert_string_equal(str_at(ans, "name"), str_at(pod, "metadata.name"));
    cJSON_Delete(ans);
    cJSON_Delete(pod);
}

static void test_bad_image_backs_off(void **state)
{
    apisrv *srv = *state;
    cJSON *pod, *d;

    deploy(srv, "bad", "kasterism/no_such_image:1", 1,
           "\"progressDeadlineSeconds\":1,");
    pod = wait_waiting(srv, "bad", "ImagePullBackOff");
    assert_string_equal(str_at(pod, "status.phase"), "Pending");
    assert_string_equal(str_at(pod, "status.containerStatuses.0.state."
                               "waiting.message"),
                        "Back-off pulling image "
                        "\"kasterism/no_such_image:1\"");
    cJSON_Delete(pod);
    d = wait_deploy(srv, "bad", "Progressing", "False",
                    "ProgressDeadlineExceeded");
    assert_string_equal(cond(d, "Available", NULL), "False");
    assert_int_equal(num_at(d, "status.readyReplicas"), -1);
    assert_int_equal(num_at(d, "status.unavailableReplicas"), 1);
    cJSON_Delete(d);
}

static void test_delete_deployment_stops_process(void **state)
{
    apisrv *srv = *state;
    store_ref ref = deps_ref;
    store_err err = {0, NULL};
    store_opts o;
    cJSON *pod, *out = NULL;
    char name[128];
    pid_t pid;
    long long end;

    deploy(srv, "del", "kasterism/test_b", 1, NULL);
    pod = wait_ready_pod(srv, "del", 0);
    snprintf(name, sizeof(name), "%s", str_at(pod, "metadata.name"));
    cJSON_Delete(pod);
    pid = cluster_pod_pid(apisrv_cluster(srv), "default", name);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, 0), 0);

    memset(&o, 0, sizeof(o));
    o.propagation = "Background";
    ref.name = "del";
    assert_int_equal(store_delete(apisrv_store(srv), &ref, &o, NULL, &out,
                                  &err), 200);
    cJSON_Delete(out);
    end = now_ms() + WAIT_MS;
    while (now_ms() < end && kill(pid, 0) == 0)
        usleep(20 * 1000);
    assert_int_not_equal(kill(pid, 0), 0);
    pod = pod_of(srv, "del", 0);
    assert_null(pod);
    assert_int_equal(cluster_pod_pid(apisrv_cluster(srv), "default", name),
                     0);
}

static void test_crash_loop_fault(void **state)
{
    apisrv *srv = *state;
    apisrv_faults f;
    cJSON *pod;

    apisrv_get_faults(srv, &f);
    snprintf(f.crash_loop_image, sizeof(f.crash_loop_image),
             "kasterism/test_crash*");
    apisrv_set_faults(srv, &f);
    deploy(srv, "crash", "kasterism/test_crash:2", 1, NULL);
    pod = wait_waiting(srv, "crash", "CrashLoopBackOff");
    assert_true(num_at(pod, "status.containerStatuses.0.restartCount") > 0);
    assert_int_equal(num_at(pod, "status.containerStatuses.0.lastState."
                            "terminated.exitCode"), 1);
    assert_string_equal(cond(pod, "Ready", NULL), "False");
    cJSON_Delete(pod);
}

static void test_pod_start_delay_fault(void **state)
{
    apisrv *srv = *state;
    apisrv_faults f;
    long long t0 = now_ms();
    cJSON *pod;

    apisrv_get_faults(srv, &f);
    f.pod_start_delay_ms = 1500;
    apisrv_set_faults(srv, &f);
    deploy(srv, "slow", "kasterism/test_c", 1, NULL);
    usleep(700 * 1000);
    pod = pod_of(srv, "slow", 0);
    assert_non_null(pod);
    assert_string_equal(str_at(pod, "status.phase"), "Pending");
    assert_string_equal(str_at(pod, "status.containerStatuses.0.state."
                               "waiting.reason"), "ContainerCreating");
    cJSON_Delete(pod);
    pod = wait_ready_pod(srv, "slow", 0);
    assert_true(now_ms() - t0 >= 1500);
    assert_string_equal(str_at(pod, "status.phase"), "Running");
    cJSON_Delete(pod);
}

static void test_engine_pod_runs_dag(void **state)
{
    apisrv *srv = *state;
    cJSON *d, *pod, *ans;
    char json[2048], url[128];
    long code;
    const char *ip;

    deploy(srv, "node", "kasterism/test_a", 1, NULL);
    service(srv, "node");
    d = wait_deploy(srv, "node", "Available", "True", NULL);
    cJSON_Delete(d);
    ip = cluster_ip(srv, "node");
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
             "{\"name\":\"dag\"},\"data\":{\"dag.json\":\"{\\\"nodes\\\":["
             "{\\\"name\\\":\\\"A\\\",\\\"action\\\":\\\"POST\\\","
             "\\\"url\\\":\\\"http://%s:8000/test\\\"},"
             "{\\\"name\\\":\\\"B\\\",\\\"action\\\":\\\"POST\\\","
             "\\\"url\\\":\\\"http://%s:8000/test\\\","
             "\\\"dependencies\\\":[\\\"A\\\"]}]}\"}}", ip, ip);
    create(srv, &cms_ref, json);
    create(srv, &pods_ref,
           "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
           "\"engine\",\"labels\":{\"app\":\"engine\"}},\"spec\":{"
           "\"containers\":[{\"name\":\"astermule\",\"image\":"
           "\"kasterism/astermule:latest\",\"args\":[\"--dag-file\","
           "\"/etc/astermule/dag.json\",\"--port\",\"8080\"],"
           "\"volumeMounts\":[{\"name\":\"dag\",\"mountPath\":"
           "\"/etc/astermule\"}]}],\"volumes\":[{\"name\":\"dag\","
           "\"configMap\":{\"name\":\"dag\"}}]}}");
    pod = wait_ready_pod(srv, "engine", 0);
    snprintf(url, sizeof(url), "http://%s:8080/",
             str_at(pod, "status.podIP"));
    ans = post(url, "{}", &code);
    assert_int_equal(code, 200);
    assert_non_null(ans);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(ans, "status"), "health")));
    cJSON_Delete(ans);
    cJSON_Delete(pod);
}

/* POSTs to the test-service of a ready pod and checks the name it
 * answers with, which it has from the simulated kubelet. */
static void expect_answer_name(const cJSON *pod, const char *want)
{
    char url[128];
    cJSON *ans;
    long code;

    snprintf(url, sizeof(url), "http://%s:8000/test",
             str_at(pod, "status.podIP"));
    ans = post(url, "{}", &code);
    assert_int_equal(code, 200);
    assert_string_equal(str_at(ans, "name"), want);
    cJSON_Delete(ans);
}

/*
 * Pod names past 63 characters run like on a kubelet: the process gets
 * the name cut to 63 as its host name, less a '-' or '.' the cut leaves
 * at the end. test-service takes at most 64, so a whole name would make
 * the pod crash-loop.
 */
static void test_long_pod_name_is_cut(void **state)
{
    apisrv *srv = *state;
    char app[63];
    char pod_name[80];
    char want[64];
    char json[1024];
    cJSON *pod;

    /* A Deployment's pods are <name>-<hash>-<suffix>: cut after the
     * first '-', which goes too. */
    memset(app, 'd', 62);
    app[62] = '\0';
    deploy(srv, app, "kasterism/test_a", 1, NULL);
    pod = wait_ready_pod(srv, app, 0);
    assert_true(strlen(str_at(pod, "metadata.name")) > 63);
    expect_answer_name(pod, app);
    cJSON_Delete(pod);

    /* Several of them, and a '.' stays where the cut does not reach. */
    memset(pod_name, 'p', 58);
    memcpy(pod_name + 58, "a.b--zz", 8);
    memcpy(want, pod_name, 61);
    want[61] = '\0';
    snprintf(json, sizeof(json),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":"
             "{\"name\":\"%s\",\"labels\":{\"app\":\"long\"}},"
             "\"spec\":{\"containers\":[{\"name\":\"main\",\"image\":"
             "\"kasterism/test_a\",\"ports\":[{\"containerPort\":8000}]}]}}",
             pod_name);
    create(srv, &pods_ref, json);
    pod = wait_ready_pod(srv, "long", 0);
    assert_string_equal(str_at(pod, "metadata.name"), pod_name);
    expect_answer_name(pod, want);
    cJSON_Delete(pod);
}

static void test_pods_get_distinct_ips(void **state)
{
    apisrv *srv = *state;
    cJSON *a, *b;

    deploy(srv, "two", "kasterism/test_a", 2, NULL);
    a = wait_ready_pod(srv, "two", 0);
    b = wait_ready_pod(srv, "two", 1);
    assert_string_not_equal(str_at(a, "status.podIP"),
                            str_at(b, "status.podIP"));
    assert_string_not_equal(str_at(a, "metadata.name"),
                            str_at(b, "metadata.name"));
    cJSON_Delete(a);
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deployment_available_and_service_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_image_backs_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_delete_deployment_stops_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_loop_fault, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pod_start_delay_fault, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_engine_pod_runs_dag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pods_get_distinct_ips, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_pod_name_is_cut, setup,
                                        teardown),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
