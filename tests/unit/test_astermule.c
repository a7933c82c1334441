/*
 * The astermule binary over HTTP: the trigger path, POST /runs (sync and
 * async), health, readiness, metrics, bad triggers, and 200 simultaneous
 * triggers answered with 200 separate, complete results.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

enum { SA, SB, SC, SD, N_SVC };
static proc svc[N_SVC];
static const char *const svc_names[N_SVC] = {"A", "B", "C", "D"};
static proc mule;
static char *dag;

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int k = 0; k < N_SVC; k++) {
        if (service_start(&svc[k], svc_names[k]) != 0)
            return -1;
    }

    /* The diamond, with an entry node that posts the trigger body on. */
    dag = fmt("{\"nodes\":["
              "{\"name\":\"A\",\"action\":\"POST\","
              "\"url\":\"http://127.0.0.1:%d/test\"},"
              "{\"name\":\"B\",\"url\":\"http://127.0.0.1:%d/test?delay_ms=5\","
              "\"dependencies\":[\"A\"]},"
              "{\"name\":\"C\",\"url\":\"http://127.0.0.1:%d/test\","
              "\"dependencies\":[\"A\"]},"
              "{\"name\":\"D\",\"url\":\"http://127.0.0.1:%d/test\","
              "\"dependencies\":[\"B\",\"C\"]}]}",
              svc[SA].port, svc[SB].port, svc[SC].port, svc[SD].port);

    char *args[] = {"--dag", dag, "--address", "127.0.0.1", "--port", "0",
                    "--target", "/run", "--log-level", "warn", NULL};

    return proc_start(&mule, "astermule", args);
}

static int group_teardown(void **state)
{
    int rc = proc_stop(&mule);

    for (int k = 0; k < N_SVC; k++)
        proc_stop(&svc[k]);
    free(dag);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static char *url(const char *path)
{
    return fmt("http://127.0.0.1:%d%s", mule.port, path);
}

static cJSON *request(const char *method, const char *path, const char *body,
                      long *status)
{
    char *u = url(path);
    buf b;
    cJSON *v;

    *status = http_do(method, u, body, &b);
    v = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    free(b.data);
    free(u);
    return v;
}

static void test_target_runs_any_method(void **state)
{
    const char *methods[] = {"GET", "POST", "PUT", "DELETE"};

    for (size_t k = 0; k < 4; k++) {
        long status;
        cJSON *r = request(methods[k], "/run", NULL, &status);

        assert_int_equal(status, 200);
        assert_true(cJSON_IsTrue(jget(r, "status.health")));
        assert_string_equal(jstr(r, "data.name"), "D");
        cJSON_Delete(r);
    }
}

static void test_input_reaches_nodes(void **state)
{
    long status;
    cJSON *r = request("POST", "/run", "{\"batch\":\"x-17\"}", &status);

    assert_int_equal(status, 200);
    assert_string_equal(jstr(r, "data.batch"), "x-17");
    cJSON_Delete(r);
}

static void test_bad_trigger_body(void **state)
{
    long status;
    cJSON *r = request("POST", "/run", "[1,2]", &status);

    assert_int_equal(status, 400);
    assert_non_null(strstr(jstr(r, "error"), "not a JSON object"));
    cJSON_Delete(r);

    r = request("POST", "/run", "{nope", &status);
    assert_int_equal(status, 400);
    cJSON_Delete(r);
}

static void test_unknown_path(void **state)
{
    long status;
    cJSON *r = request("GET", "/nothing-here", NULL, &status);

    assert_int_equal(status, 404);
    assert_non_null(strstr(jstr(r, "error"), "/nothing-here"));
    cJSON_Delete(r);
}

/* GET /run with one header of n bytes; returns the status. */
static long get_with_header(size_t n)
{
    char *u = url("/run");
    char *h = malloc(n + 16);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs;
    buf b = {0};
    long status = 0;

    assert_non_null(h);
    memcpy(h, "X-Big: ", 7);
    memset(h + 7, 'a', n);
    h[7 + n] = '\0';
    hdrs = curl_slist_append(NULL, h);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    free(b.data);
    free(h);
    free(u);
    return status;
}

/* Request headers share a connection's 8 KiB of memory: a few KiB of
 * them (a bearer token, say) run the workflow; far more is refused with
 * 431, and the server goes on serving. */
static void test_request_headers(void **state)
{
    assert_int_equal(get_with_header(4000), 200);
    assert_int_equal(get_with_header(20000), 431);
    assert_int_equal(get_with_header(10), 200);
}

static void test_health_ready_metrics(void **state)
{
    char *u = url("/healthz");
    buf b;

    assert_int_equal(http_do("GET", u, NULL, &b), 200);
    free(b.data);
    free(u);

    u = url("/readyz");
    assert_int_equal(http_do("GET", u, NULL, &b), 200);
    free(b.data);
    free(u);

    u = url("/metrics");
    assert_int_equal(http_do("GET", u, NULL, &b), 200);
    assert_non_null(strstr(b.data, "astermule_runs_started_total "));
    assert_non_null(strstr(b.data, "astermule_runs_total{health=\"true\"} "));
    assert_non_null(strstr(b.data, "astermule_workflow_nodes 4"));
    free(b.data);
    free(u);
}

static void test_runs_sync_and_async(void **state)
{
    long status;
    cJSON *r = request("POST", "/runs", "{\"s\":1}", &status);

    assert_int_equal(status, 200);
    assert_int_equal((int)jnum(r, "data.s"), 1);
    cJSON_Delete(r);

    r = request("POST", "/runs?async=1", "{\"a\":2}", &status);
    assert_int_equal(status, 202);

    const char *id = jstr(r, "id");

    assert_non_null(id);

    char *path = fmt("/runs/%s", id);
    cJSON *done = NULL;

    for (int k = 0; k < 500 && !done; k++) {
        cJSON *p = request("GET", path, NULL, &status);

        if (status == 200) {
            done = p;
            break;
        }
        assert_int_equal(status, 202);
        assert_string_equal(jstr(p, "state"), "running");
        cJSON_Delete(p);
        usleep(10000);
    }
    assert_non_null(done);
    assert_string_equal(jstr(done, "id"), id);
    assert_int_equal((int)jnum(done, "data.a"), 2);
    cJSON_Delete(done);
    free(path);
    cJSON_Delete(r);

    r = request("GET", "/runs/999999999", NULL, &status);
    assert_int_equal(status, 404);
    cJSON_Delete(r);
}

/* The same key names the same run: a controller that asks again after a
 * restart gets the run it started, never a second one. */
static void test_runs_idempotent_key(void **state)
{
    long status;
    cJSON *first = request("POST", "/runs?async=1&key=astro-uid-1", "{}",
                           &status);

    assert_int_equal(status, 202);

    const char *id = jstr(first, "id");
    cJSON *again = request("POST", "/runs?async=1&key=astro-uid-1", "{}",
                           &status);

    assert_true(status == 202 || status == 200);
    assert_string_equal(jstr(again, "id"), id);
    cJSON_Delete(again);

    /* Once done, the key answers with the result itself. */
    char *path = fmt("/runs/%s", id);

    for (int k = 0; k < 500; k++) {
        cJSON *p = request("GET", path, NULL, &status);

        cJSON_Delete(p);
        if (status == 200)
            break;
        usleep(10000);
    }
    assert_int_equal(status, 200);
    again = request("POST", "/runs?async=1&key=astro-uid-1", "{}", &status);
    assert_int_equal(status, 200);
    assert_string_equal(jstr(again, "id"), id);
    assert_true(cJSON_IsTrue(jget(again, "status.health")));
    cJSON_Delete(again);

    /* Another key is another run. */
    again = request("POST", "/runs?async=1&key=astro-uid-2", "{}", &status);
    assert_int_equal(status, 202);
    assert_string_not_equal(jstr(again, "id"), id);
    cJSON_Delete(again);

    again = request("POST", "/runs?async=1&key=", "{}", &status);
    assert_int_equal(status, 400);
    assert_non_null(strstr(jstr(again, "error"), "key"));
    cJSON_Delete(again);

    free(path);
    cJSON_Delete(first);
}

/* 200 triggers in flight at once, each with its own input. */
static void test_200_simultaneous(void **state)
{
    enum { N = 200 };
    CURLM *m = curl_multi_init();
    CURL *h[N];
    buf out[N];
    char *bodies[N];
    char *u = url("/run");
    struct curl_slist *hdr =
        curl_slist_append(NULL, "Content-Type: application/json");
    int running = 0;

    /* Let all 200 connections open at once rather than queue. */
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    for (int k = 0; k < N; k++) {
        out[k] = (buf){0};
        bodies[k] = fmt("{\"trigger\":%d,\"only%d\":%d}", k, k, k);
        h[k] = curl_easy_init();
        curl_easy_setopt(h[k], CURLOPT_URL, u);
        curl_easy_setopt(h[k], CURLOPT_POSTFIELDS, bodies[k]);
        curl_easy_setopt(h[k], CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h[k], CURLOPT_WRITEFUNCTION, buf_write);
        curl_easy_setopt(h[k], CURLOPT_WRITEDATA, &out[k]);
        curl_easy_setopt(h[k], CURLOPT_TIMEOUT, 60L);
        curl_multi_add_handle(m, h[k]);
    }
    do {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    } while (running);

    for (int k = 0; k < N; k++) {
        long status = 0;
        char key[32];

        curl_easy_getinfo(h[k], CURLINFO_RESPONSE_CODE, &status);
        assert_int_equal(status, 200);

        cJSON *r = cJSON_ParseWithLength(out[k].data, out[k].len);

        assert_non_null(r);
        assert_true(cJSON_IsTrue(jget(r, "status.health")));
        assert_int_equal((int)jnum(r, "data.trigger"), k);
        snprintf(key, sizeof(key), "data.only%d", k);
        assert_int_equal((int)jnum(r, key), k);

        int others = 0;
        cJSON *it;

        cJSON_ArrayForEach(it, jget(r, "data")) {
            others += strncmp(it->string, "only", 4) == 0;
        }
        assert_int_equal(others, 1);
        assert_string_equal(jstr(r, "nodes.D.state"), "succeeded");
        assert_string_equal(jstr(r, "nodes.B.state"), "succeeded");

        cJSON_Delete(r);
        curl_multi_remove_handle(m, h[k]);
        curl_easy_cleanup(h[k]);
        free(out[k].data);
        free(bodies[k]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(hdr);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_runs_any_method),
        cmocka_unit_test(test_input_reaches_nodes),
        cmocka_unit_test(test_bad_trigger_body),
        cmocka_unit_test(test_unknown_path),
        cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_health_ready_metrics),
        cmocka_unit_test(test_runs_sync_and_async),
        cmocka_unit_test(test_runs_idempotent_key),
        cmocka_unit_test(test_200_simultaneous),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
