/*
 * The astermule binary over HTTP: the trigger path, POST /runs (sync and
 * async), health, readiness, metrics, bad triggers, and 200 simultaneous
 * triggers answered with 200 separate, complete results.
 *
 * Three servers, one test group each: the diamond on target /run; a slow
 * workflow on the default target / with a 1 s connection timeout and one
 * run at a time (methods, timeouts, refusals, logs); and a workflow of
 * large results with a small --keep-results-bytes.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cmocka.h>

enum { SA, SB, SC, SD, N_SVC };
static proc svc[N_SVC];
static const char *const svc_names[N_SVC] = {"A", "B", "C", "D"};
static proc mule;
static char *dag;

static int group_setup(void **state)
{
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
    return rc == 0 ? 0 : -1;
}

static char *url_of(const proc *p, const char *path)
{
    return fmt("http://127.0.0.1:%d%s", p->port, path);
}

static char *url(const char *path)
{
    return url_of(&mule, path);
}

/* One request to server p; the answer parsed as JSON, or NULL. */
static cJSON *request_to(const proc *p, const char *method, const char *path,
                         const char *body, long *status)
{
    char *u = url_of(p, path);
    buf b;
    cJSON *v;

    *status = http_do(method, u, body, &b);
    v = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    free(b.data);
    free(u);
    return v;
}

static cJSON *request(const char *method, const char *path, const char *body,
                      long *status)
{
    return request_to(&mule, method, path, body, status);
}

/* The value of one series ("name" or "name{labels}") in p's /metrics,
 * or -1 when it is missing. */
static double metric(const proc *p, const char *series)
{
    char *u = url_of(p, "/metrics");
    size_t n = strlen(series);
    double v = -1;
    buf b;

    if (http_do("GET", u, NULL, &b) == 200) {
        for (const char *line = b.data; line && *line;) {
            if (strncmp(line, series, n) == 0 && line[n] == ' ')
                v = strtod(line + n + 1, NULL);
            line = strchr(line, '\n');
            line = line ? line + 1 : NULL;
        }
    }
    free(b.data);
    free(u);
    return v;
}

static double rejected(const proc *p, const char *reason)
{
    char *series = fmt("astermule_triggers_rejected_total{reason=\"%s\"}",
                       reason);
    double v = metric(p, series);

    free(series);
    return v;
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A client below libcurl: connects to 127.0.0.1:port and sends text as
 * it is, however incomplete or unusual. Returns the socket. */
static int raw_send(int port, const char *text)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    return fd;
}

/* Reads from fd until the server closes it or ms pass. Returns what came
 * (NUL-terminated; the caller frees it) and sets *closed to 1 when the
 * server closed the connection. */
static char *raw_read(int fd, long ms, int *closed)
{
    long end = now_ms() + ms;
    buf b = {0};
    char chunk[4096];

    *closed = 0;
    b.data = calloc(1, 1);
    assert_non_null(b.data);
    for (long left = ms; left > 0; left = end - now_ms()) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        if (poll(&pfd, 1, (int)left) <= 0)
            break;

        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

        if (n <= 0) {
            *closed = 1;
            break;
        }
        buf_write(chunk, 1, (size_t)n, &b);
    }
    return b.data;
}

/* The JSON body of a raw HTTP answer, or NULL. */
static cJSON *raw_body(const char *answer)
{
    const char *body = strstr(answer, "\r\n\r\n");

    return body ? cJSON_Parse(body + 4) : NULL;
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

/* A trigger body is read as strictly as node outputs: each refusal says
 * what is wrong and where, and no run starts. */
static void test_bad_trigger_body(void **state)
{
    static const struct {
        const char *body;
        const char *says;
    } bad[] = {
        {"[1,2]", "the request body is not a JSON object but an array"},
        {"42", "not a JSON object but a number"},
        {"{nope", "the request body is not valid JSON: an object key that "
                  "is not a string at byte 1"},
        {"{\"a\":1}{}", "unexpected data after the value at byte 7"},
        {"{\"a\":1} x", "unexpected data after the value at byte 8"},
        {"{\"a\":01}", "a number not in JSON form at byte 5"},
        {"{\"a\":\"x\ty\"}", "a raw control character in a string at "
                           "byte 7"},
    };
    long status;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        cJSON *r = request("POST", "/run", bad[k].body, &status);

        assert_int_equal(status, 400);
        if (!strstr(jstr(r, "error"), bad[k].says))
            fail_msg("'%s': error '%s' lacks '%s'", bad[k].body,
                     jstr(r, "error"), bad[k].says);
        cJSON_Delete(r);
    }
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

/* A body declared over --max-request-bytes is refused from its headers:
 * the 413 comes at once, not after bytes that would be thrown away. */
static void test_declared_body_too_large(void **state)
{
    double before = rejected(&mule, "too_large");
    int fd = raw_send(mule.port, "POST /run HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Content-Length: 99999999999\r\n\r\n");
    long t0 = now_ms();
    int closed;
    char *got = raw_read(fd, 1000, &closed);
    cJSON *r = raw_body(got);

    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(strncmp(got, "HTTP/1.1 413 ", 13), 0);
    assert_non_null(strstr(jstr(r, "error"), "16777216"));
    assert_non_null(strstr(jstr(r, "error"), "--max-request-bytes"));
    assert_true(rejected(&mule, "too_large") == before + 1);
    cJSON_Delete(r);
    free(got);
    close(fd);
}

/* async takes 1, true, 0 or false; anything else is refused, naming the
 * parameter, rather than quietly run synchronously. */
static void test_runs_async_values(void **state)
{
    const char *bad[] = {"/runs?async=yes", "/runs?async=", "/runs?async"};
    long status;
    cJSON *r;

    for (size_t k = 0; k < 3; k++) {
        r = request("POST", bad[k], "{}", &status);
        assert_int_equal(status, 400);
        assert_non_null(strstr(jstr(r, "error"), "async"));
        assert_non_null(strstr(jstr(r, "error"), "1, true, 0 or false"));
        cJSON_Delete(r);
    }

    r = request("POST", "/runs?async=false", "{\"s\":3}", &status);
    assert_int_equal(status, 200);
    assert_int_equal((int)jnum(r, "data.s"), 3);
    cJSON_Delete(r);

    r = request("POST", "/runs?async=0", "{}", &status);
    assert_int_equal(status, 200);
    assert_true(cJSON_IsTrue(jget(r, "status.health")));
    cJSON_Delete(r);

    r = request("POST", "/runs?async=true", "{}", &status);
    assert_int_equal(status, 202);
    assert_non_null(jstr(r, "id"));
    cJSON_Delete(r);
}

static void test_runs_without_id(void **state)
{
    long status;
    cJSON *r = request("GET", "/runs/", NULL, &status);

    assert_int_equal(status, 404);
    assert_non_null(strstr(jstr(r, "error"), "run id is needed"));
    cJSON_Delete(r);
}

/* An absolute-form target (RFC 9112 section 3.2.2) names the same path;
 * with no path it is "/". */
static void test_absolute_form_target(void **state)
{
    char *req = fmt("POST http://127.0.0.1:%d/run HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/json\r\nContent-Length: 9\r\n"
                    "Connection: close\r\n\r\n{\"q\":\"a\"}", mule.port);
    int fd = raw_send(mule.port, req);
    int closed;
    char *got = raw_read(fd, 10000, &closed);
    cJSON *r = raw_body(got);

    assert_int_equal(strncmp(got, "HTTP/1.1 200 ", 13), 0);
    assert_true(cJSON_IsTrue(jget(r, "status.health")));
    assert_string_equal(jstr(r, "data.q"), "a");
    cJSON_Delete(r);
    free(got);
    free(req);
    close(fd);

    req = fmt("GET HTTP://127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n"
              "Connection: close\r\n\r\n", mule.port);
    fd = raw_send(mule.port, req);
    got = raw_read(fd, 10000, &closed);
    r = raw_body(got);
    assert_int_equal(strncmp(got, "HTTP/1.1 404 ", 13), 0);
    assert_string_equal(jstr(r, "error"), "nothing is served at GET /");
    cJSON_Delete(r);
    free(got);
    free(req);
    close(fd);
}

/* Every refused trigger counts under its reason. */
static void test_rejected_counted(void **state)
{
    double body = rejected(&mule, "bad_body");
    double bad = rejected(&mule, "bad_request");
    long status;

    assert_true(body >= 0 && bad >= 0);
    cJSON_Delete(request("POST", "/run", "[1]", &status));
    assert_int_equal(status, 400);
    assert_true(rejected(&mule, "bad_body") == body + 1);

    cJSON_Delete(request("POST", "/runs?async=maybe", "{}", &status));
    assert_int_equal(status, 400);
    cJSON_Delete(request("POST", "/runs?async=1&key=", "{}", &status));
    assert_int_equal(status, 400);
    cJSON_Delete(request("DELETE", "/runs/1", NULL, &status));
    assert_int_equal(status, 405);
    assert_true(rejected(&mule, "bad_request") == bad + 3);
    assert_true(rejected(&mule, "bad_body") == body + 1);
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

/* ---- a slow workflow on the default target -------------------------- */

/* One node that answers after 2.5 s, served on "/" with a 1 s connection
 * timeout and one run at a time. Its stderr goes to slow_log. */
static proc slow_svc, slow;
static char slow_log[] = "/tmp/test_astermule_log.XXXXXX";

/* Starts astermule with args, its stderr in a new file at path (a
 * mkstemp template): the test's own stderr is swapped for the file while
 * the child is forked, so the child inherits it. */
static int start_logged(proc *p, char *const *args, char *path)
{
    int logfd = mkstemp(path);
    int saved = dup(2);
    int rc;

    if (logfd < 0 || saved < 0)
        return -1;
    fflush(stderr);
    dup2(logfd, 2);
    rc = proc_start(p, "astermule", args);
    dup2(saved, 2);
    close(saved);
    close(logfd);
    return rc;
}

static int slow_setup(void **state)
{
    char *d;
    int rc;

    if (service_start(&slow_svc, "S") != 0)
        return -1;
    d = fmt("{\"nodes\":[{\"name\":\"S\","
            "\"url\":\"http://127.0.0.1:%d/test?delay_ms=2500\"}]}",
            slow_svc.port);

    char *args[] = {"--dag", d, "--address", "127.0.0.1", "--port", "0",
                    "--connection-timeout", "1", "--max-runs", "1",
                    "--log-level", "warn", NULL};

    rc = start_logged(&slow, args, slow_log);
    free(d);
    return rc;
}

static int slow_teardown(void **state)
{
    int rc = proc_stop(&slow);

    proc_stop(&slow_svc);
    unlink(slow_log);
    return rc == 0 ? 0 : -1;
}

/* method path on p with a small body for POST and PUT; returns the status,
 * the Allow header in allow ("" without one) and the parsed body. */
static long request_allow(const proc *p, const char *method, const char *path,
                          char *allow, size_t allowlen, cJSON **body)
{
    char *u = url_of(p, path);
    CURL *c = curl_easy_init();
    struct curl_header *h = NULL;
    buf b = {0};
    long status = 0;

    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    allow[0] = '\0';
    if (curl_easy_header(c, "Allow", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        snprintf(allow, allowlen, "%s", h->value);
    *body = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    curl_easy_cleanup(c);
    free(b.data);
    free(u);
    return status;
}

/* With the default target "/" covering every path, another method on a
 * fixed route is answered 405 with the methods it takes; it runs
 * nothing. */
static void test_wrong_method_405(void **state)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"POST", "/healthz", "GET, HEAD"},
        {"POST", "/readyz", "GET, HEAD"},
        {"POST", "/metrics", "GET, HEAD"},
        {"PUT", "/metrics", "GET, HEAD"},
        {"GET", "/runs", "POST"},
        {"DELETE", "/runs/1", "GET, HEAD"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    double started = metric(&slow, "astermule_runs_started_total");
    double bad = rejected(&slow, "bad_request");

    assert_true(started >= 0);
    for (size_t k = 0; k < n; k++) {
        char allow[64];
        cJSON *r;
        long status = request_allow(&slow, cases[k].method, cases[k].path,
                                    allow, sizeof(allow), &r);

        assert_int_equal(status, 405);
        assert_string_equal(allow, cases[k].allow);
        assert_non_null(strstr(jstr(r, "error"), cases[k].path));
        assert_non_null(strstr(jstr(r, "error"), cases[k].allow));
        cJSON_Delete(r);
    }
    assert_true(metric(&slow, "astermule_runs_started_total") == started);
    assert_true(rejected(&slow, "bad_request") == bad + (double)n);
}

/* Half a request header, then silence: the server closes the connection
 * after about --connection-timeout (1 s). */
static void test_idle_connection_closed(void **state)
{
    int fd = raw_send(slow.port, "GET /run HTTP/1.1\r\nHost: x\r\n");
    long t0 = now_ms();
    int closed;
    char *got = raw_read(fd, 3000, &closed);

    assert_true(closed);
    assert_true(now_ms() - t0 >= 500);
    free(got);
    close(fd);
}

/* A trigger whose run (2.5 s) outlasts the connection timeout (1 s)
 * still gets its result: a suspended connection is not idle. */
static void test_run_outlives_timeout(void **state)
{
    long t0 = now_ms();
    long status;
    cJSON *r = request_to(&slow, "GET", "/", NULL, &status);

    assert_int_equal(status, 200);
    assert_true(cJSON_IsTrue(jget(r, "status.health")));
    assert_string_equal(jstr(r, "data.name"), "S");
    assert_true(now_ms() - t0 >= 2400);
    cJSON_Delete(r);
}

/* A client that hangs up while its run is in flight is routine: nothing
 * is logged at warn for it. It resets the connection (a close with a
 * zero linger), which made libmicrohttpd's "Failed to send the response
 * headers" line every time. */
static void test_disconnect_not_warned(void **state)
{
    int fd = raw_send(slow.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    char *log;
    FILE *f;
    buf b = {0};
    char chunk[4096];
    size_t n;

    for (int k = 0; k < 100; k++) {
        if (metric(&slow, "astermule_runs_in_flight") == 1)
            break;
        usleep(20000);
    }
    assert_true(metric(&slow, "astermule_runs_in_flight") == 1);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(fd);

    /* The run ends, its connection resumes and finds the client gone. */
    for (int k = 0; k < 250; k++) {
        if (metric(&slow, "astermule_runs_in_flight") == 0)
            break;
        usleep(20000);
    }
    assert_true(metric(&slow, "astermule_runs_in_flight") == 0);
    usleep(300000);

    f = fopen(slow_log, "r");
    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_write(chunk, 1, n, &b);
    fclose(f);
    log = b.data ? b.data : "";
    assert_null(strstr(log, "incomplete request"));
    assert_null(strstr(log, " warn "));
    free(b.data);
}

/* Beyond --max-runs 1 the engine refuses: 503 at once, not when the run
 * in flight ends, counted as overloaded and, as before, in
 * astermule_runs_refused_total. */
static void test_overloaded_counted(void **state)
{
    double over = rejected(&slow, "overloaded");
    double refused = metric(&slow, "astermule_runs_refused_total");
    long status, t0;

    cJSON_Delete(request_to(&slow, "POST", "/runs?async=1", "{}", &status));
    assert_int_equal(status, 202);
    t0 = now_ms();
    cJSON_Delete(request_to(&slow, "POST", "/", "{}", &status));
    assert_int_equal(status, 503);
    assert_true(now_ms() - t0 < 1000);
    cJSON_Delete(request_to(&slow, "POST", "/runs?async=1", "{}", &status));
    assert_int_equal(status, 503);
    assert_true(rejected(&slow, "overloaded") == over + 2);
    assert_true(metric(&slow, "astermule_runs_refused_total") ==
                refused + 2);
}

/* ---- large async results ---------------------------------------------- */

/* One node answering 200,000 bytes; at most 1,000,000 bytes of async
 * results kept. */
static proc big_svc, big;

static int big_setup(void **state)
{
    char *d;
    int rc;

    if (service_start(&big_svc, "L") != 0)
        return -1;
    d = fmt("{\"nodes\":[{\"name\":\"L\","
            "\"url\":\"http://127.0.0.1:%d/test?body_bytes=200000\"}]}",
            big_svc.port);

    char *args[] = {"--dag", d, "--address", "127.0.0.1", "--port", "0",
                    "--keep-results-bytes", "1000000", "--log-level",
                    "warn", NULL};

    rc = proc_start(&big, "astermule", args);
    free(d);
    return rc;
}

static int big_teardown(void **state)
{
    int rc = proc_stop(&big);

    proc_stop(&big_svc);
    return rc == 0 ? 0 : -1;
}

/* Polls GET /runs/id on p until it is no longer 202; returns the status. */
static long wait_run(const proc *p, const char *id)
{
    char *path = fmt("/runs/%s", id);
    long status = 0;

    for (int k = 0; k < 1000; k++) {
        cJSON_Delete(request_to(p, "GET", path, NULL, &status));
        if (status != 202)
            break;
        usleep(10000);
    }
    free(path);
    return status;
}

/* The resident memory of process pid in KiB, or -1. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return kib;
}

/* 20 results of about 200 KB each, one after the other, against a limit
 * of 1,000,000 bytes: the 4 newest fit and are served as before, the 16
 * oldest were dropped and answer 410 saying why; memory stays flat. */
static void test_results_bounded_by_bytes(void **state)
{
    enum { N = 20, KEPT = 4 };
    char *ids[N];
    long status;
    cJSON *r;

    for (int k = 0; k < N; k++) {
        r = request_to(&big, "POST",
                       k == 0 ? "/runs?async=1&key=big-0" : "/runs?async=1",
                       "{}", &status);
        assert_int_equal(status, 202);
        ids[k] = strdup(jstr(r, "id"));
        cJSON_Delete(r);
        assert_int_equal(wait_run(&big, ids[k]), 200);
    }

    for (int k = 0; k < N; k++) {
        char *path = fmt("/runs/%s", ids[k]);

        r = request_to(&big, "GET", path, NULL, &status);
        if (k >= N - KEPT) {
            assert_int_equal(status, 200);
            assert_true(cJSON_IsTrue(jget(r, "status.health")));
            assert_string_equal(jstr(r, "data.name"), "L");
        } else {
            assert_int_equal(status, 410);
            assert_non_null(strstr(jstr(r, "error"), "no longer kept"));
            assert_non_null(strstr(jstr(r, "error"), "1000000"));
        }
        cJSON_Delete(r);
        free(path);
        free(ids[k]);
    }

    /* The key names its run still, and says its result is gone. */
    r = request_to(&big, "POST", "/runs?async=1&key=big-0", "{}", &status);
    assert_int_equal(status, 410);
    cJSON_Delete(r);

    /* Under AddressSanitizer freed memory waits in quarantine, so the
     * process's size says nothing there; the 410s above still hold. */
#ifndef __SANITIZE_ADDRESS__
    long kib = rss_kib(big.pid);

    assert_true(kib > 0 && kib < 40 * 1024);
#endif
}

int main(void)
{
    const struct CMUnitTest diamond[] = {
        cmocka_unit_test(test_target_runs_any_method),
        cmocka_unit_test(test_input_reaches_nodes),
        cmocka_unit_test(test_bad_trigger_body),
        cmocka_unit_test(test_unknown_path),
        cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_health_ready_metrics),
        cmocka_unit_test(test_runs_sync_and_async),
        cmocka_unit_test(test_runs_idempotent_key),
        cmocka_unit_test(test_declared_body_too_large),
        cmocka_unit_test(test_runs_async_values),
        cmocka_unit_test(test_runs_without_id),
        cmocka_unit_test(test_absolute_form_target),
        cmocka_unit_test(test_rejected_counted),
        cmocka_unit_test(test_200_simultaneous),
    };
    /* In this order: the last test leaves a run in flight. */
    const struct CMUnitTest slow_tests[] = {
        cmocka_unit_test(test_wrong_method_405),
        cmocka_unit_test(test_idle_connection_closed),
        cmocka_unit_test(test_run_outlives_timeout),
        cmocka_unit_test(test_disconnect_not_warned),
        cmocka_unit_test(test_overloaded_counted),
    };
    const struct CMUnitTest big_tests[] = {
        cmocka_unit_test(test_results_bounded_by_bytes),
    };
    int failed = 0;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed += cmocka_run_group_tests_name("diamond on /run", diamond,
                                          group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("slow workflow on /", slow_tests,
                                          slow_setup, slow_teardown);
    failed += cmocka_run_group_tests_name("large async results", big_tests,
                                          big_setup, big_teardown);
    curl_global_cleanup();
    return failed;
}
