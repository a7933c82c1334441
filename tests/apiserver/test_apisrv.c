/*
 * Tests of the HTTP front: the server runs in-process on a free port and
 * is driven with libcurl.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "apisrv.h"

typedef struct buf {
    char *data;
    size_t len;
} buf;

typedef struct resp {
    long code;
    char *body;
    char ctype[256];
    char headers[4096];  /* the response's header lines, cut when long */
} resp;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    buf *b = ud;

    b->data = realloc(b->data, b->len + sz * n + 1);
    memcpy(b->data + b->len, p, sz * n);
    b->len += sz * n;
    b->data[b->len] = '\0';
    return sz * n;
}

/* Keeps the header lines of the last response: curl calls this for
 * every response it sees, redirects and 100 Continue included, and a
 * status line starts a new set. */
static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t have;

    if (sz * n >= 5 && strncmp(p, "HTTP/", 5) == 0)
        r->headers[0] = '\0';
    have = strlen(r->headers);
    snprintf(r->headers + have, sizeof(r->headers) - have, "%.*s",
             (int)(sz * n), p);
    return sz * n;
}

/*
 * Copies the value of the response header name (any case) into out.
 * Returns 0, or -1 with out empty when the response did not have it.
 */
static int resp_header(const resp *r, const char *name, char *out,
                       size_t len)
{
    size_t nlen = strlen(name);
    const char *line = r->headers;

    out[0] = '\0';
    while (*line) {
        const char *end = strstr(line, "\r\n");
        size_t llen = end ? (size_t)(end - line) : strlen(line);

        if (llen > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;

            while (*v == ' ')
                v++;
            snprintf(out, len, "%.*s", (int)(llen - (size_t)(v - line)), v);
            return 0;
        }
        if (!end)
            break;
        line = end + 2;
    }
    return -1;
}

/* One request; headers is a NULL-terminated list. */
static resp http(apisrv *srv, const char *method, const char *path,
                 const char *body, const char *const *headers)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    char url[1024];
    buf b = {NULL, 0};
    resp r = {0, NULL, "", ""};
    char *ct = NULL;

    snprintf(url, sizeof(url), "%s%s", apisrv_url(srv), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    if (apisrv_ca_pem(srv)) {
        struct curl_blob blob = {(void *)apisrv_ca_pem(srv),
                                 strlen(apisrv_ca_pem(srv)),
                                 CURL_BLOB_COPY};

        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r.ctype, sizeof(r.ctype), "%s", ct ? ct : "");
    r.body = b.data ? b.data : strdup("");
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return r;
}

static const char *const json_hdr[] = {"Content-Type: application/json",
                                       NULL};
static const char *const merge_hdr[] = {
    "Content-Type: application/merge-patch+json", NULL};

static const char *const apply_hdr[] = {
    "Content-Type: application/apply-patch+yaml", NULL};
static const char *const proto_hdr[] = {
    "Content-Type: application/vnd.kubernetes.protobuf", NULL};

static int setup(void **state)
{
    apisrv_config cfg;
    apisrv *srv = NULL;
    char err[256];

    memset(&cfg, 0, sizeof(cfg));
    cfg.bookmark_ms = 200;
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

static cJSON *json_of(resp *r)
{
    cJSON *j = cJSON_Parse(r->body);

    assert_non_null(j);
    free(r->body);
    r->body = NULL;
    return j;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(o, a);

    if (b)
        v = cJSON_GetObjectItem(v, b);
    return cJSON_GetStringValue(v);
}

static void test_version_and_discovery(void **state)
{
    apisrv *srv = *state;
    const char *const agg[] = {
        "Accept: application/json;g=apidiscovery.k8s.io;v=v2;"
        "as=APIGroupDiscoveryList,application/json", NULL};
    resp r = http(srv, "GET", "/version?timeout=5s", NULL, NULL);
    cJSON *j = json_of(&r);

    assert_int_equal(r.code, 200);
    assert_string_equal(str_at(j, "minor", NULL), "32");
    cJSON_Delete(j);
    r = http(srv, "GET", "/apis", NULL, agg);
    assert_string_equal(r.ctype, "application/json;g=apidiscovery.k8s.io;"
                                 "v=v2;as=APIGroupDiscoveryList");
    j = json_of(&r);
    assert_string_equal(str_at(j, "kind", NULL), "APIGroupDiscoveryList");
    cJSON_Delete(j);
    r = http(srv, "GET", "/api/v1", NULL, NULL);
    assert_non_null(strstr(r.body, "\"name\":\"configmaps\""));
    free(r.body);
    r = http(srv, "GET", "/openapi/v3", NULL, NULL);
    assert_non_null(strstr(r.body, "api/v1"));
    free(r.body);
    r = http(srv, "GET", "/nothing/here", NULL, NULL);
    assert_int_equal(r.code, 404);
    j = json_of(&r);
    assert_string_equal(str_at(j, "reason", NULL), "NotFound");
    cJSON_Delete(j);
}

static void test_crud_conflict_and_status(void **state)
{
    apisrv *srv = *state;
    resp r = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
                  "{\"metadata\":{\"name\":\"c1\"},\"data\":{\"a\":\"1\"}}",
                  json_hdr);
    cJSON *j;

    assert_int_equal(r.code, 201);
    free(r.body);
    r = http(srv, "PUT", "/api/v1/namespaces/default/configmaps/c1",
             "{\"metadata\":{\"name\":\"c1\",\"resourceVersion\":\"1\"},"
             "\"data\":{\"a\":\"2\"}}", json_hdr);
    assert_int_equal(r.code, 409);
    j = json_of(&r);
    assert_string_equal(str_at(j, "reason", NULL), "Conflict");
    assert_string_equal(str_at(j, "details", "kind"), "configmaps");
    assert_string_equal(str_at(j, "details", "name"), "c1");
    assert_int_equal(cJSON_GetObjectItem(j, "code")->valueint, 409);
    cJSON_Delete(j);
    r = http(srv, "PATCH", "/api/v1/namespaces/default/configmaps/c1",
             "{\"data\":{\"b\":\"2\"}}", merge_hdr);
    assert_int_equal(r.code, 200);
    free(r.body);
    r = http(srv, "PATCH", "/api/v1/namespaces/default/configmaps/c1",
             "{}", json_hdr);
    assert_int_equal(r.code, 415);
    free(r.body);
    r = http(srv, "PATCH", "/api/v1/namespaces/default/configmaps/y1?"
             "fieldManager=test", "apiVersion: v1\nkind: ConfigMap\n"
             "metadata:\n  name: y1\ndata:\n  n: \"7\"\n  on: 'yes'\n",
             apply_hdr);
    assert_int_equal(r.code, 201);
    j = json_of(&r);
    assert_string_equal(str_at(j, "data", "on"), "yes");
    cJSON_Delete(j);
    r = http(srv, "POST", "/api/v1/namespaces/default/configmaps", "\x0a",
             proto_hdr);
    assert_int_equal(r.code, 415);
    free(r.body);
    r = http(srv, "GET", "/api/v1/namespaces/default/configmaps/nope", NULL,
             NULL);
    assert_int_equal(r.code, 404);
    j = json_of(&r);
    assert_string_equal(str_at(j, "message", NULL),
                        "configmaps \"nope\" not found");
    cJSON_Delete(j);
    r = http(srv, "DELETE", "/api/v1/namespaces/default/configmaps/c1",
             "{\"propagationPolicy\":\"Background\"}", json_hdr);
    assert_int_equal(r.code, 200);
    free(r.body);
}

static void test_table_and_selector_encoding(void **state)
{
    apisrv *srv = *state;
    const char *const table[] = {
        "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json", NULL};
    resp r;
    cJSON *j;

    r = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
             "{\"metadata\":{\"name\":\"t1\",\"labels\":{\"env\":\"a\"}},"
             "\"data\":{\"x\":\"1\",\"y\":\"2\"}}", json_hdr);
    free(r.body);
    r = http(srv, "GET", "/api/v1/namespaces/default/configmaps?"
             "labelSelector=env+in+%28a%2Cb%29%2C%21legacy&limit=500", NULL,
             table);
    assert_int_equal(r.code, 200);
    j = json_of(&r);
    assert_string_equal(str_at(j, "kind", NULL), "Table");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "rows")), 1);
    assert_string_equal(str_at(cJSON_GetArrayItem(
                            cJSON_GetObjectItem(j, "columnDefinitions"), 1),
                                "name", NULL), "Data");
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(
                         cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rows"),
                                            0), "cells"), 1)->valueint, 2);
    cJSON_Delete(j);
}

/* Reads a whole watch stream (it must end by itself). */
static char *watch_body(apisrv *srv, const char *path, long *code)
{
    resp r = http(srv, "GET", path, NULL, NULL);

    *code = r.code;
    return r.body;
}

static void test_watch_stream_and_410(void **state)
{
    apisrv *srv = *state;
    char path[256];
    long code;
    char *body;
    resp r;
    uint64_t rv = store_rv(apisrv_store(srv));
    apisrv_faults f;

    r = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
             "{\"metadata\":{\"name\":\"w1\"}}", json_hdr);
    free(r.body);
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps?"
             "watch=true&resourceVersion=%llu&timeoutSeconds=1&"
             "allowWatchBookmarks=true", (unsigned long long)rv);
    body = watch_body(srv, path, &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body, "{\"type\":\"ADDED\""));
    assert_non_null(strstr(body, "\"BOOKMARK\""));
    free(body);

    /* Expired history: 200 and an ERROR event with a 410 Status. */
    r = http(srv, "POST", "/_sim/compact", "", NULL);
    free(r.body);
    body = watch_body(srv, path, &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body, "{\"type\":\"ERROR\",\"object\":"));
    assert_non_null(strstr(body, "\"reason\":\"Expired\""));
    assert_non_null(strstr(body, "\"code\":410"));
    free(body);

    /* The same as an HTTP 410 when the fault switch says so. */
    memset(&f, 0, sizeof(f));
    f.watch_410_http = 1;
    apisrv_set_faults(srv, &f);
    body = watch_body(srv, path, &code);
    assert_int_equal(code, 410);
    assert_non_null(strstr(body, "\"reason\":\"Expired\""));
    free(body);

    /* A forced 410 on a fresh watch. */
    f.watch_410_http = 0;
    f.force_410 = 1;
    apisrv_set_faults(srv, &f);
    snprintf(path, sizeof(path), "/api/v1/namespaces/default/configmaps?"
             "watch=1&resourceVersion=%llu&timeoutSeconds=1",
             (unsigned long long)store_rv(apisrv_store(srv)));
    body = watch_body(srv, path, &code);
    assert_non_null(strstr(body, "\"code\":410"));
    free(body);
    body = watch_body(srv, path, &code);
    assert_null(strstr(body, "\"code\":410"));
    free(body);
}

/*
 * Under conflictFirstUpdate, creates Pod name, then patches it twice at
 * first_sub and twice at then_sub ("" or "/status"): the first patch of
 * each answers 409, the second 200.
 */
static void expect_first_conflicts(apisrv *srv, const char *name,
                                   const char *first_sub,
                                   const char *then_sub)
{
    const char *subs[] = {first_sub, then_sub};
    char path[256], body[256];
    resp r;

    snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"%s\"},"
             "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
             "\"x\"}]}}", name);
    r = http(srv, "POST", "/api/v1/namespaces/default/pods", body,
             json_hdr);
    assert_int_equal(r.code, 201);
    free(r.body);

    for (int i = 0; i < 2; i++) {
        int status = strcmp(subs[i], "/status") == 0;

        snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods/%s%s",
                 name, subs[i]);
        snprintf(body, sizeof(body), status
                 ? "{\"status\":{\"phase\":\"Running\"}}"
                 : "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}");
        r = http(srv, "PATCH", path, body, merge_hdr);
        if (r.code != 409)
            fail_msg("first PATCH %s answered %ld, want 409", path, r.code);
        assert_non_null(strstr(r.body, "\"reason\":\"Conflict\""));
        free(r.body);
        r = http(srv, "PATCH", path, body, merge_hdr);
        if (r.code != 200)
            fail_msg("second PATCH %s answered %ld, want 200", path, r.code);
        free(r.body);
    }
}

static void test_request_faults(void **state)
{
    apisrv *srv = *state;
    apisrv_faults f;
    char value[64];
    resp r;
    int i;

    r = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
             "{\"metadata\":{\"name\":\"f1\"}}", json_hdr);
    free(r.body);
    r = http(srv, "PUT", "/_sim/faults", "{\"conflictFirstUpdate\":true}",
             json_hdr);
    free(r.body);
    r = http(srv, "PATCH", "/api/v1/namespaces/default/configmaps/f1",
             "{\"data\":{\"a\":\"1\"}}", merge_hdr);
    assert_int_equal(r.code, 409);
    assert_non_null(strstr(r.body, "\"reason\":\"Conflict\""));
    free(r.body);
    r = http(srv, "PATCH", "/api/v1/namespaces/default/configmaps/f1",
             "{\"data\":{\"a\":\"1\"}}", merge_hdr);
    assert_int_equal(r.code, 200);
    free(r.body);

    /* An object and its status subresource each get one 409, whichever
     * is written first. */
    expect_first_conflicts(srv, "p1", "/status", "");
    expect_first_conflicts(srv, "p2", "", "/status");

    memset(&f, 0, sizeof(f));
    f.error_permille = 1000;
    f.error_code = 429;
    f.retry_after = 3;
    apisrv_set_faults(srv, &f);
    r = http(srv, "GET", "/api/v1/namespaces/default/configmaps", NULL,
             NULL);
    assert_int_equal(r.code, 429);
    assert_non_null(strstr(r.body, "\"reason\":\"TooManyRequests\""));
    assert_int_equal(resp_header(&r, "Retry-After", value, sizeof(value)),
                     0);
    assert_string_equal(value, "3");
    free(r.body);

    /* Without retryAfter a 429 still tells the client to wait a second;
     * a 500 says nothing about retrying. */
    f.retry_after = 0;
    apisrv_set_faults(srv, &f);
    r = http(srv, "GET", "/api/v1/namespaces/default/configmaps", NULL,
             NULL);
    assert_int_equal(r.code, 429);
    assert_int_equal(resp_header(&r, "retry-after", value, sizeof(value)),
                     0);
    assert_string_equal(value, "1");
    free(r.body);
    f.error_code = 500;
    apisrv_set_faults(srv, &f);
    r = http(srv, "GET", "/api/v1/namespaces/default/configmaps", NULL,
             NULL);
    assert_int_equal(r.code, 500);
    assert_non_null(strstr(r.body, "\"reason\":\"InternalError\""));
    assert_int_equal(resp_header(&r, "Retry-After", value, sizeof(value)),
                     -1);
    assert_int_equal(resp_header(&r, "Content-Type", value, sizeof(value)),
                     0);
    free(r.body);
    /* Discovery and /version stay healthy under request faults. */
    r = http(srv, "GET", "/version", NULL, NULL);
    assert_int_equal(r.code, 200);
    free(r.body);

    memset(&f, 0, sizeof(f));
    f.watch_drop_every = 2;
    apisrv_set_faults(srv, &f);
    for (i = 0; i < 3; i++) {
        char body[64];

        snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"g%d\"}}", i);
        r = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
                 body, json_hdr);
        free(r.body);
    }
    /* Without a timeout this returns only because the stream is cut. */
    r = http(srv, "GET", "/api/v1/namespaces/default/configmaps?watch=1",
             NULL, NULL);
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.body, "\n{\"type\""));
    assert_null(strstr(strstr(r.body, "\n{\"type\"") + 1, "\n{\"type\""));
    free(r.body);
    memset(&f, 0, sizeof(f));
    apisrv_set_faults(srv, &f);
}

static long long ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long long)(t1.tv_sec - t0->tv_sec) * 1000 +
           (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* latencyMs delays every resource request by at least that much. Only
 * the lower bound is checked: a loaded machine may add any delay. */
static void test_latency_fault(void **state)
{
    apisrv *srv = *state;
    apisrv_faults f;
    struct timespec t0;
    long long took;
    resp r;

    memset(&f, 0, sizeof(f));
    f.latency_ms = 400;
    apisrv_set_faults(srv, &f);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = http(srv, "GET", "/api/v1/namespaces/default/configmaps", NULL,
             NULL);
    took = ms_since(&t0);
    assert_int_equal(r.code, 200);
    free(r.body);
    if (took < 400)
        fail_msg("a GET under latencyMs=400 took %lld ms", took);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = http(srv, "POST", "/api/v1/namespaces/default/configmaps",
             "{\"metadata\":{\"name\":\"slow\"}}", json_hdr);
    took = ms_since(&t0);
    assert_int_equal(r.code, 201);
    free(r.body);
    if (took < 400)
        fail_msg("a POST under latencyMs=400 took %lld ms", took);

    memset(&f, 0, sizeof(f));
    apisrv_set_faults(srv, &f);
}

static void *on_stop_later(void *arg)
{
    usleep(300 * 1000);
    apisrv_stop(arg);
    return NULL;
}

static void test_shutdown_ends_open_watch(void **state)
{
    apisrv *srv = NULL;
    apisrv_config cfg;
    pthread_t t;
    long code;
    char *body, err[256];

    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(apisrv_start(&cfg, &srv, err, sizeof(err)), 0);
    pthread_create(&t, NULL, on_stop_later, srv);
    body = watch_body(srv, "/api/v1/namespaces?watch=true", &code);
    pthread_join(t, NULL);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body, "\"ADDED\""));
    free(body);
}

static void test_tls_and_token(void **state)
{
    apisrv *srv = NULL;
    apisrv_config cfg;
    char err[256], hdr[128], path[] = "/tmp/simapi-kc-XXXXXX";
    const char *hdrs[] = {hdr, NULL};
    const char *const bad[] = {"Authorization: Bearer wrong", NULL};
    resp r;
    int fd;

    memset(&cfg, 0, sizeof(cfg));
    cfg.tls = 1;
    cfg.token = "s3cret";
    assert_int_equal(apisrv_start(&cfg, &srv, err, sizeof(err)), 0);
    assert_memory_equal(apisrv_url(srv), "https://127.0.0.1:", 18);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s",
             apisrv_token(srv));
    r = http(srv, "GET", "/api/v1/namespaces/default", NULL, hdrs);
    assert_int_equal(r.code, 200);
    free(r.body);
    r = http(srv, "GET", "/api/v1/namespaces/default", NULL, bad);
    assert_int_equal(r.code, 401);
    assert_non_null(strstr(r.body, "\"reason\":\"Unauthorized\""));
    free(r.body);
    fd = mkstemp(path);
    close(fd);
    assert_int_equal(apisrv_write_kubeconfig(srv, path, err, sizeof(err)),
                     0);
    unlink(path);
    apisrv_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_version_and_discovery, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crud_conflict_and_status,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_and_selector_encoding,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_stream_and_410, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_faults, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latency_fault, setup,
                                        teardown),
        cmocka_unit_test(test_shutdown_ends_open_watch),
        cmocka_unit_test(test_tls_and_token),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
