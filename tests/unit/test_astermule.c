/*
 * The astermule binary over HTTP: the trigger path, POST /runs (sync and
 * async), health, readiness, metrics, bad triggers, and 200 simultaneous
 * triggers answered with 200 separate, complete results.
 *
 * Servers, one test group each: the diamond on target /run; a slow
 * workflow on the default target / with a 1 s connection timeout and one
 * run at a time (methods, timeouts, refusals, logs); a workflow of large
 * results with a small --keep-results-bytes; one of 3 MB results read
 * slowly; one with small connection and pending-body limits; and servers
 * started by a test itself, to be stopped while answering or to forward
 * a trigger to a node the test answers.
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

#include "jw.h"

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

/* A client below libcurl: a socket connected to 127.0.0.1:port. A
 * rcvbuf above 0 fixes its receive buffer first, so that a client that
 * does not read holds the server's answer back. */
static int raw_connect(int port, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void raw_write(int fd, const char *text)
{
    assert_int_equal(send(fd, text, strlen(text), 0), (ssize_t)strlen(text));
}

/* Connects to 127.0.0.1:port and sends text as it is, however incomplete
 * or unusual. Returns the socket. */
static int raw_send(int port, const char *text)
{
    int fd = raw_connect(port, 0);

    raw_write(fd, text);
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

/* Reads from fd until at least n bytes came in all (a little more may
 * come), the peer closed it or ms passed; appends to *b. */
static void raw_read_upto(int fd, size_t n, long ms, buf *b)
{
    long end = now_ms() + ms;
    char chunk[4096];

    for (long left = ms; left > 0 && b->len < n; left = end - now_ms()) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        if (poll(&pfd, 1, (int)left) <= 0)
            break;

        ssize_t got = recv(fd, chunk, sizeof(chunk), 0);

        if (got <= 0)
            break;
        buf_write(chunk, 1, (size_t)got, b);
    }
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

/* GET /run with count headers of size bytes each ("X-H007: aaa", at
 * least 9 bytes); returns the status, 0 when the connection closed
 * without one. */
static long get_with_headers(size_t count, size_t size)
{
    char *u = url("/run");
    char *h = malloc(size + 1);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    buf b = {0};
    long status = 0;

    assert_non_null(h);
    for (size_t k = 0; k < count; k++) {
        snprintf(h, size + 1, "X-H%03zu: ", k % 1000);
        memset(h + 8, 'a', size - 8);
        h[size] = '\0';
        hdrs = curl_slist_append(hdrs, h);
    }
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

/* Request headers share a connection's 16 KiB of memory, each header
 * costing its bytes and about 64 more of libmicrohttpd's bookkeeping:
 * many short headers (a proxy's) and one long one (a bearer token) run
 * the workflow; far more is refused, with 431 or by closing the
 * connection, and the server goes on serving. */
static void test_request_headers(void **state)
{
    assert_int_equal(get_with_headers(1, 4000), 200);
    assert_int_equal(get_with_headers(1, 12000), 200);
    assert_int_equal(get_with_headers(40, 60), 200);
    assert_int_equal(get_with_headers(80, 60), 200);
    assert_int_equal(get_with_headers(150, 9), 200);
    assert_int_equal(get_with_headers(1, 20000), 431);

    long many = get_with_headers(400, 9);

    assert_true(many == 431 || many == 0);
    assert_int_equal(get_with_headers(1, 10), 200);
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

    /* A NUL is a character that is not printable, not an empty key. */
    again = request("POST", "/runs?async=1&key=a%00", "{}", &status);
    assert_int_equal(status, 400);
    assert_string_equal(jstr(again, "error"), "query parameter key: "
                        "character 2 is not printable ASCII");
    cJSON_Delete(again);

    /* A key on a run the caller waits for would mean nothing. */
    again = request("POST", "/runs?key=astro-uid-3", "{}", &status);
    assert_int_equal(status, 400);
    assert_string_equal(jstr(again, "error"), "query parameter key: "
                        "applies to async runs only; add async=1");
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

/* method path on the diamond's server must answer want with a JSON
 * object in valid UTF-8 holding an "error"; returns its text (the caller
 * frees it). */
static char *expect_error(const char *method, const char *path, long want)
{
    char *u = url(path);
    const char *body = strcmp(method, "POST") == 0 ? "{}" : NULL;
    buf b;
    long status = http_do(method, u, body, &b);
    cJSON *r;
    char *e;

    if (status != want)
        fail_msg("%s %s answered %ld, not %ld", method, path, status, want);
    assert_non_null(b.data);
    if (!jw_utf8_valid(b.data, b.len))
        fail_msg("%s %s: the answer is not valid UTF-8", method, path);
    r = cJSON_ParseWithLength(b.data, b.len);
    if (!jstr(r, "error"))
        fail_msg("%s %s: no JSON error in '%s'", method, path, b.data);
    e = strdup(jstr(r, "error"));
    cJSON_Delete(r);
    free(b.data);
    free(u);
    return e;
}

/* Error answers quote what the client sent; bytes that are not UTF-8
 * are replaced, and a quote cut short ends between characters. */
static void test_error_answers_utf8(void **state)
{
    char ones[40];
    char *e, *path;

    free(expect_error("GET", "/runs/%ff", 404));
    free(expect_error("DELETE", "/runs/%ff%fe", 405));
    free(expect_error("POST", "/runs?async=%ff", 400));

    /* 41 characters, the 40th of two bytes: the quote keeps 39. */
    memset(ones, '1', 39);
    ones[39] = '\0';
    path = fmt("/runs/%s%%C3%%A9x", ones);
    e = expect_error("GET", path, 404);
    assert_non_null(strstr(e, ones));
    assert_null(strstr(e, "\xEF\xBF\xBD"));
    assert_null(strstr(e, "\xC3"));
    free(e);
    free(path);
}

/* A run id is written one way only: digits, no sign, blank or leading
 * zero, and within 64 bits. Anything else names no run. */
static void test_run_ids_canonical(void **state)
{
    long status;
    cJSON *r = request("POST", "/runs?async=1", "{}", &status);
    char *id;
    unsigned long long n;

    assert_int_equal(status, 202);
    id = strdup(jstr(r, "id"));
    cJSON_Delete(r);
    assert_int_equal(wait_run(&mule, id), 200);
    n = strtoull(id, NULL, 10);

    char *bad[] = {
        fmt("/runs/%%2B%s", id), fmt("/runs/00%s", id),
        fmt("/runs/%%20%s", id), fmt("/runs/%s%%20", id),
        fmt("/runs/-%llu", 0ULL - n), fmt("/runs/%s.0", id),
        fmt("/runs/0x%llx", n), fmt("/runs/0"),
        fmt("/runs/99999999999999999999999"),
        fmt("/runs/18446744073709551616"),
    };

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char *e = expect_error("GET", bad[k], 404);

        if (!strstr(e, "no run with id") || !strstr(e, "is known"))
            fail_msg("%s: error '%s'", bad[k], e);
        free(e);
        free(bad[k]);
    }

    char *good = fmt("/runs/%s", id);

    cJSON_Delete(request("GET", good, NULL, &status));
    assert_int_equal(status, 200);
    free(good);
    free(id);
}

/* A body may start with a UTF-8 byte order mark: one is dropped before
 * the body is read, so a BOM and blanks are the empty input. */
static void test_trigger_bom(void **state)
{
    long status;
    cJSON *r = request("POST", "/run", "\xEF\xBB\xBF{\"bom\":1}", &status);

    assert_int_equal(status, 200);
    assert_int_equal((int)jnum(r, "data.bom"), 1);
    cJSON_Delete(r);

    r = request("POST", "/run", "\xEF\xBB\xBF \n", &status);
    assert_int_equal(status, 200);
    assert_true(cJSON_IsTrue(jget(r, "status.health")));
    cJSON_Delete(r);
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
    cJSON *r = request_to(&slow, "POST", "/", "{}", &status);

    assert_int_equal(status, 503);
    assert_true(now_ms() - t0 < 1000);
    if (!strstr(jstr(r, "error"), "in flight") ||
        !strstr(jstr(r, "error"), "(--max-runs)"))
        fail_msg("503 error '%s' does not name --max-runs", jstr(r, "error"));
    cJSON_Delete(r);
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

/* ---- large results read slowly ------------------------------------- */

/* One node answering 3,000,000 bytes; kept async results limited to
 * 3,500,000 bytes, so each result that is kept drops the one before. */
static proc huge_svc, huge;

static int huge_setup(void **state)
{
    char *d;
    int rc;

    if (service_start(&huge_svc, "H") != 0)
        return -1;
    d = fmt("{\"nodes\":[{\"name\":\"H\","
            "\"url\":\"http://127.0.0.1:%d/test?body_bytes=3000000\"}]}",
            huge_svc.port);

    char *args[] = {"--dag", d, "--address", "127.0.0.1", "--port", "0",
                    "--keep-results-bytes", "3500000", "--log-level",
                    "warn", NULL};

    rc = proc_start(&huge, "astermule", args);
    free(d);
    return rc;
}

static int huge_teardown(void **state)
{
    int rc = proc_stop(&huge);

    proc_stop(&huge_svc);
    return rc == 0 ? 0 : -1;
}

/* got is a raw answer read to its end: its body must be want, byte for
 * byte, and as long as its Content-Length says. */
static void expect_raw_body(const buf *got, const buf *want)
{
    const char *end = strstr(got->data, "\r\n\r\n");
    const char *cl;
    size_t len;

    assert_non_null(end);
    assert_int_equal(strncmp(got->data, "HTTP/1.1 200 ", 13), 0);
    cl = strcasestr(got->data, "\r\nContent-Length:");
    assert_true(cl && cl < end);
    len = got->len - (size_t)(end + 4 - got->data);
    assert_int_equal(strtoull(cl + 17, NULL, 10), len);
    assert_int_equal(len, want->len);
    assert_memory_equal(end + 4, want->data, len);
}

/* Two answers of a 3 MB result, by id and by key, stall after a few KB
 * while two later runs end and drop the result; once read on, both are
 * still that result, whole. */
static void test_slow_reader_keeps_result(void **state)
{
    long status;
    cJSON *r = request_to(&huge, "POST", "/runs?async=1&key=slow-1", "{}",
                          &status);
    buf whole, got1 = {0}, got2 = {0};
    char *id, *path, *u, *get;
    int fd1, fd2;

    assert_int_equal(status, 202);
    id = strdup(jstr(r, "id"));
    cJSON_Delete(r);
    assert_int_equal(wait_run(&huge, id), 200);
    path = fmt("/runs/%s", id);
    u = url_of(&huge, path);
    assert_int_equal(http_do("GET", u, NULL, &whole), 200);
    assert_true(whole.len > 3000000);

    get = fmt("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
              path);
    fd1 = raw_connect(huge.port, 4096);
    raw_write(fd1, get);
    fd2 = raw_connect(huge.port, 4096);
    raw_write(fd2, "POST /runs?async=1&key=slow-1 HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 0\r\nConnection: close\r\n\r\n");
    raw_read_upto(fd1, 8192, 5000, &got1);
    raw_read_upto(fd2, 8192, 5000, &got2);
    assert_true(got1.len >= 8192 && got2.len >= 8192);

    for (int k = 0; k < 2; k++) {
        r = request_to(&huge, "POST", "/runs?async=1", "{}", &status);
        assert_int_equal(status, 202);
        assert_int_equal(wait_run(&huge, jstr(r, "id")), 200);
        cJSON_Delete(r);
    }
    cJSON_Delete(request_to(&huge, "GET", path, NULL, &status));
    assert_int_equal(status, 410);

    raw_read_upto(fd1, SIZE_MAX, 20000, &got1);
    raw_read_upto(fd2, SIZE_MAX, 20000, &got2);
    expect_raw_body(&got1, &whole);
    expect_raw_body(&got2, &whole);
    r = cJSON_ParseWithLength(whole.data, whole.len);
    assert_string_equal(jstr(r, "id"), id);
    cJSON_Delete(r);

    close(fd1);
    close(fd2);
    free(got1.data);
    free(got2.data);
    free(whole.data);
    free(get);
    free(u);
    free(path);
    free(id);
}

/* ---- connection and pending-body limits ---------------------------- */

/* One node answering after 1 s; at most 16 client connections, and
 * 1,000 bytes of trigger bodies being received at once. */
static proc lim_svc, lim;

static int lim_setup(void **state)
{
    char *d;
    int rc;

    if (service_start(&lim_svc, "M") != 0)
        return -1;
    d = fmt("{\"nodes\":[{\"name\":\"M\",\"action\":\"POST\","
            "\"url\":\"http://127.0.0.1:%d/test?delay_ms=1000\"}]}",
            lim_svc.port);

    char *args[] = {"--dag", d, "--address", "127.0.0.1", "--port", "0",
                    "--max-connections", "16", "--max-pending-bytes",
                    "1000", "--log-level", "warn", NULL};

    rc = proc_start(&lim, "astermule", args);
    free(d);
    return rc;
}

static int lim_teardown(void **state)
{
    int rc = proc_stop(&lim);

    proc_stop(&lim_svc);
    return rc == 0 ? 0 : -1;
}

/* A JSON object of exactly n bytes (n >= 8): {"p":"xx...x"}. */
static char *object_of(size_t n)
{
    char *o = malloc(n + 1);

    assert_non_null(o);
    memcpy(o, "{\"p\":\"", 6);
    memset(o + 6, 'x', n - 8);
    memcpy(o + n - 2, "\"}", 3);
    return o;
}

/* A raw answer: its status must be want, and, when says is not NULL, its
 * JSON error must hold each of the NULL-terminated strings after it. */
static void expect_raw(const char *got, int want, const char *says, ...)
{
    char line[16];
    va_list ap;
    cJSON *r;

    snprintf(line, sizeof(line), "HTTP/1.1 %d ", want);
    if (strncmp(got, line, strlen(line)) != 0)
        fail_msg("expected %d, got '%.80s'", want, got);
    r = raw_body(got);
    va_start(ap, says);
    for (const char *s = says; s; s = va_arg(ap, const char *)) {
        if (!jstr(r, "error") || !strstr(jstr(r, "error"), s))
            fail_msg("error '%s' lacks '%s'", jstr(r, "error"), s);
    }
    va_end(ap);
    cJSON_Delete(r);
}

/* Trigger bodies being received count against --max-pending-bytes: one
 * that would pass it gets 503, from its Content-Length or as its bytes
 * arrive. A body stops counting once its run is queued, long before the
 * run ends. */
static void test_pending_bytes_bounded(void **state)
{
    double over = rejected(&lim, "overloaded");
    char *body = object_of(800);
    const char *head = "POST / HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 800\r\nConnection: close\r\n\r\n";
    int a, b, c, d, closed;
    char *got;

    /* A declares 800 bytes and sends 100 of them. */
    a = raw_send(lim.port, head);
    assert_int_equal(send(a, body, 100, 0), 100);
    usleep(200000);

    /* B declares 800 more: refused at once. */
    b = raw_send(lim.port, head);
    got = raw_read(b, 2000, &closed);
    expect_raw(got, 503, "--max-pending-bytes", "1000", NULL);
    free(got);
    close(b);

    /* C has no length: refused once its bytes pass the limit. */
    c = raw_send(lim.port, "POST / HTTP/1.1\r\nHost: x\r\n"
                           "Transfer-Encoding: chunked\r\n"
                           "Connection: close\r\n\r\n12c\r\n");
    assert_int_equal(send(c, body, 300, 0), 300);
    raw_write(c, "\r\n0\r\n\r\n");
    got = raw_read(c, 2000, &closed);
    expect_raw(got, 503, "--max-pending-bytes", "1000", NULL);
    free(got);
    close(c);

    /* A's body ends and its run starts: D's 800 bytes fit beside it. */
    assert_int_equal(send(a, body + 100, 700, 0), 700);
    for (int k = 0; k < 100; k++) {
        if (metric(&lim, "astermule_runs_in_flight") == 1)
            break;
        usleep(10000);
    }
    assert_true(metric(&lim, "astermule_runs_in_flight") == 1);
    d = raw_send(lim.port, head);
    assert_int_equal(send(d, body, 800, 0), 800);

    got = raw_read(a, 5000, &closed);
    expect_raw(got, 200, NULL);
    free(got);
    got = raw_read(d, 5000, &closed);
    expect_raw(got, 200, NULL);
    free(got);
    close(a);
    close(d);
    free(body);
    assert_true(rejected(&lim, "overloaded") == over + 2);
}

/* GET path on p with a timeout of ms; returns the status, 0 for none. */
static long get_within(const proc *p, const char *path, long ms)
{
    char *u = url_of(p, path);
    CURL *c = curl_easy_init();
    buf b = {0};
    long status = 0;

    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    free(b.data);
    free(u);
    return status;
}

/* More clients than --max-connections (16) at once, all gone again: the
 * server takes new connections again, every time, without waiting for
 * unrelated traffic (it waits at most a second, whatever happens). */
static void test_accepts_after_limit(void **state)
{
    enum { N = 21 };

    for (int round = 0; round < 3; round++) {
        int fds[N];
        long t0;

        for (int k = 0; k < N; k++)
            fds[k] = raw_connect(lim.port, 0);
        usleep(300000);
        for (int k = 0; k < N; k++)
            close(fds[k]);

        t0 = now_ms();
        assert_int_equal(get_within(&lim, "/healthz", 2000), 200);
        assert_true(now_ms() - t0 < 2000);
    }
}

/* ---- servers of a test's own ---------------------------------------- */

static proc own_svc;

static int own_setup(void **state)
{
    return service_start(&own_svc, "O");
}

static int own_teardown(void **state)
{
    return proc_stop(&own_svc) == 0 ? 0 : -1;
}

/* Four triggers whose results are 6 MB each, their runs held in flight
 * by a node that hangs: SIGTERM ends the runs, and every client still
 * gets its whole answer before the process exits 0. */
static void test_sigterm_sends_whole_answers(void **state)
{
    enum { N = 4 };
    char *d = fmt("{\"nodes\":[{\"name\":\"Big\",\"url\":"
                  "\"http://127.0.0.1:%d/test?body_bytes=6000000\"},"
                  "{\"name\":\"Hang\",\"url\":"
                  "\"http://127.0.0.1:%d/test?hang=1\"}]}",
                  own_svc.port, own_svc.port);
    char *args[] = {"--dag", d, "--address", "127.0.0.1", "--port", "0",
                    "--log-level", "warn", NULL};
    CURLM *m = curl_multi_init();
    CURL *h[N];
    buf out[N];
    CURLcode done[N];
    char *u;
    proc p;
    int running = 0, stopped = 0, status = 0;
    long t0;
    CURLMsg *msg;
    int left;

    assert_int_equal(proc_start(&p, "astermule", args), 0);
    u = url_of(&p, "/");
    for (int k = 0; k < N; k++) {
        out[k] = (buf){0};
        done[k] = CURLE_OK;
        h[k] = curl_easy_init();
        curl_easy_setopt(h[k], CURLOPT_URL, u);
        curl_easy_setopt(h[k], CURLOPT_WRITEFUNCTION, buf_write);
        curl_easy_setopt(h[k], CURLOPT_WRITEDATA, &out[k]);
        curl_easy_setopt(h[k], CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(h[k], CURLOPT_PRIVATE, (void *)(intptr_t)k);
        curl_multi_add_handle(m, h[k]);
    }

    t0 = now_ms();
    do {
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left))) {
            void *k;

            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &k);
            done[(intptr_t)k] = msg->data.result;
        }
        if (!stopped && now_ms() - t0 >= 1000) {
            kill(p.pid, SIGTERM);
            stopped = 1;
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    } while (running);

    assert_true(stopped);
    assert_int_equal(waitpid(p.pid, &status, 0), p.pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int k = 0; k < N; k++) {
        curl_off_t cl = -1;
        long code = 0;
        cJSON *r;

        if (done[k] != CURLE_OK)
            fail_msg("trigger %d: %s after %zu bytes", k,
                     curl_easy_strerror(done[k]), out[k].len);
        curl_easy_getinfo(h[k], CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h[k], CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        assert_int_equal(code, 200);
        assert_int_equal(cl, out[k].len);
        assert_true(out[k].len > 6000000);
        r = cJSON_ParseWithLength(out[k].data, out[k].len);
        assert_string_equal(jstr(r, "nodes.Big.state"), "succeeded");
        assert_string_equal(jstr(r, "nodes.Hang.state"), "failed");
        assert_non_null(strstr(jstr(r, "nodes.Hang.error"),
                               "engine stopped"));
        cJSON_Delete(r);
        curl_multi_remove_handle(m, h[k]);
        curl_easy_cleanup(h[k]);
        free(out[k].data);
    }
    curl_multi_cleanup(m);
    free(u);
    free(d);
}

/* A listening socket on a free loopback port, for a node the test
 * answers itself; the port goes to *port. */
static int listen_any(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Accepts one request on lfd, answers it 200 {} and returns its body
 * (NUL-terminated, its length in *len; the caller frees it). */
static char *serve_one(int lfd, size_t *len)
{
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    buf in = {0};
    const char *end = NULL, *cl;
    size_t head;
    char *body;
    int fd;

    assert_int_equal(poll(&pfd, 1, 5000), 1);
    fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    while (!in.data || !(end = strstr(in.data, "\r\n\r\n"))) {
        size_t had = in.len;

        raw_read_upto(fd, had + 1, 5000, &in);
        assert_true(in.len > had);
    }
    head = (size_t)(end + 4 - in.data);
    cl = strcasestr(in.data, "\r\nContent-Length:");
    *len = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    raw_read_upto(fd, head + *len, 5000, &in);
    assert_true(in.len >= head + *len);
    raw_write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
    close(fd);
    body = malloc(*len + 1);
    assert_non_null(body);
    memcpy(body, in.data + head, *len);
    body[*len] = '\0';
    free(in.data);
    return body;
}

/* The byte order mark before a trigger body is not forwarded: the entry
 * node gets the object alone. */
static void test_bom_not_forwarded(void **state)
{
    int port, lfd = listen_any(&port);
    char *d = fmt("{\"nodes\":[{\"name\":\"P\",\"action\":\"POST\","
                  "\"url\":\"http://127.0.0.1:%d/p\"}]}", port);
    char *args[] = {"--dag", d, "--address", "127.0.0.1", "--port", "0",
                    "--log-level", "warn", NULL};
    long status;
    size_t len;
    char *body;
    proc p;

    assert_int_equal(proc_start(&p, "astermule", args), 0);
    cJSON_Delete(request_to(&p, "POST", "/runs?async=1",
                            "\xEF\xBB\xBF{\"bom\":1}", &status));
    assert_int_equal(status, 202);
    body = serve_one(lfd, &len);
    assert_string_equal(body, "{\"bom\":1}");
    assert_int_equal(proc_stop(&p), 0);
    free(body);
    free(d);
    close(lfd);
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
        cmocka_unit_test(test_error_answers_utf8),
        cmocka_unit_test(test_run_ids_canonical),
        cmocka_unit_test(test_trigger_bom),
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
    const struct CMUnitTest huge_tests[] = {
        cmocka_unit_test(test_slow_reader_keeps_result),
    };
    const struct CMUnitTest lim_tests[] = {
        cmocka_unit_test(test_pending_bytes_bounded),
        cmocka_unit_test(test_accepts_after_limit),
    };
    const struct CMUnitTest own_tests[] = {
        cmocka_unit_test(test_sigterm_sends_whole_answers),
        cmocka_unit_test(test_bom_not_forwarded),
    };
    int failed = 0;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed += cmocka_run_group_tests_name("diamond on /run", diamond,
                                          group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("slow workflow on /", slow_tests,
                                          slow_setup, slow_teardown);
    failed += cmocka_run_group_tests_name("large async results", big_tests,
                                          big_setup, big_teardown);
    failed += cmocka_run_group_tests_name("large results read slowly",
                                          huge_tests, huge_setup,
                                          huge_teardown);
    failed += cmocka_run_group_tests_name("connection and body limits",
                                          lim_tests, lim_setup, lim_teardown);
    failed += cmocka_run_group_tests_name("servers of their own", own_tests,
                                          own_setup, own_teardown);
    curl_global_cleanup();
    return failed;
}
