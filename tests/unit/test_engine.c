/*
 * The engine against live test services: merging, failure propagation,
 * timeouts, body limits, retries, concurrency and isolation of runs.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "engine.h"
#include "wf.h"

enum { SA, SB, SC, SD, N_SVC };
static proc svc[N_SVC];
static const char *const svc_names[N_SVC] = {"A", "B", "C", "D"};

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int k = 0; k < N_SVC; k++) {
        if (service_start(&svc[k], svc_names[k]) != 0) {
            fprintf(stderr, "cannot start test-service %s\n", svc_names[k]);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    for (int k = 0; k < N_SVC; k++)
        proc_stop(&svc[k]);
    curl_global_cleanup();
    return 0;
}

/* Resets every hit counter before a test. */
static int reset_hits(void **state)
{
    for (int k = 0; k < N_SVC; k++) {
        char *url = fmt("http://127.0.0.1:%d/hits", svc[k].port);
        buf b;

        http_do("DELETE", url, NULL, &b);
        free(b.data);
        free(url);
    }
    return 0;
}

static wf_workflow *parse(const char *doc)
{
    wf_problems probs;
    wf_workflow *wf = NULL;

    wf_problems_init(&probs);
    if (wf_parse(doc, strlen(doc), NULL, &wf, &probs) != 0) {
        char *text = wf_problems_format(&probs);

        fprintf(stderr, "workflow refused:\n%s", text);
        free(text);
    }
    wf_problems_free(&probs);
    assert_non_null(wf);
    return wf;
}

typedef struct outcome {
    int done;
    int healthy;
    cJSON *doc;
} outcome;

static void on_done(void *ud, char *doc, size_t len, int healthy)
{
    outcome *o = ud;

    o->done++;
    o->healthy = healthy;
    o->doc = cJSON_ParseWithLength(doc, len);
    free(doc);
}

/* The result as the engine wrote it, bytes unparsed. */
typedef struct raw_outcome {
    int done;
    char *text;
    size_t len;
} raw_outcome;

static void on_raw_done(void *ud, char *doc, size_t len, int healthy)
{
    raw_outcome *o = ud;

    o->done++;
    o->text = doc;
    o->len = len;
}

/* 1 when s (len bytes) is valid UTF-8: no stray continuation bytes, no
 * cut, overlong or surrogate sequences. */
static int valid_utf8(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = u[i] < 0x80 ? 1 : (u[i] & 0xe0) == 0xc0 ? 2 :
                   (u[i] & 0xf0) == 0xe0 ? 3 : (u[i] & 0xf8) == 0xf0 ? 4 : 0;

        if (n == 0 || i + n > len || (n == 2 && u[i] < 0xc2))
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((u[i + k] & 0xc0) != 0x80)
                return 0;
        }
        i += n;
    }
    return 1;
}

/* Runs wf once with input on a fresh engine and returns the result. */
static cJSON *run_with(const wf_workflow *wf, const char *input,
                       const engine_config *cfg, int *healthy)
{
    char err[256];
    engine *e = engine_new(cfg, err, sizeof(err));
    outcome o = {0};

    assert_non_null(e);
    assert_int_equal(engine_submit(e, wf, input, strlen(input), on_done, &o,
                                   NULL, err, sizeof(err)), 0);
    while (!o.done)
        engine_step(e, 1000);
    engine_free(e);
    assert_int_equal(o.done, 1);
    assert_non_null(o.doc);
    *healthy = o.healthy;
    return o.doc;
}

/* The diamond A -> (B, C) -> D, with a query string per node. */
static char *diamond(const char *qa, const char *qb, const char *qc,
                     const char *qd, const char *extra_b)
{
    return fmt("{\"nodes\":["
               "{\"name\":\"A\",\"action\":\"POST\","
               "\"url\":\"http://127.0.0.1:%d/test%s\"},"
               "{\"name\":\"B\",\"url\":\"http://127.0.0.1:%d/test%s\","
               "\"dependencies\":[\"A\"]%s},"
               "{\"name\":\"C\",\"url\":\"http://127.0.0.1:%d/test%s\","
               "\"dependencies\":[\"A\"]},"
               "{\"name\":\"D\",\"url\":\"http://127.0.0.1:%d/test%s\","
               "\"dependencies\":[\"B\",\"C\"]}]}",
               svc[SA].port, qa, svc[SB].port, qb, extra_b, svc[SC].port, qc,
               svc[SD].port, qd);
}

static void test_diamond_healthy(void **state)
{
    char *doc = diamond("", "", "", "", "");
    wf_workflow *wf = parse(doc);
    int healthy;
    cJSON *r = run_with(wf, "{\"order\":42}", NULL, &healthy);

    assert_true(healthy);
    assert_true(cJSON_IsTrue(jget(r, "status.health")));

    /* D's output carries what B and C returned, so it ran after both,
     * and the run input reached the entry node. */
    assert_string_equal(jstr(r, "data.name"), "D");
    assert_true(jnum(r, "data.seen_by_B") >= 1);
    assert_true(jnum(r, "data.seen_by_C") >= 1);
    assert_true(jnum(r, "data.seen_by_A") >= 1);
    assert_int_equal((int)jnum(r, "data.order"), 42);

    /* What D itself had received when it was called: both B and C. */
    cJSON *got = jget(r, "data.inputs_of_D");
    int saw_b = 0, saw_c = 0;
    cJSON *it;

    cJSON_ArrayForEach(it, got) {
        saw_b += cJSON_IsString(it) && strcmp(it->valuestring, "B") == 0;
        saw_c += cJSON_IsString(it) && strcmp(it->valuestring, "C") == 0;
    }
    assert_int_equal(saw_b, 1);
    assert_int_equal(saw_c, 1);

    const char *names[] = {"A", "B", "C", "D"};

    for (int k = 0; k < 4; k++) {
        char path[64];

        snprintf(path, sizeof(path), "nodes.%s.state", names[k]);
        assert_string_equal(jstr(r, path), "succeeded");
        snprintf(path, sizeof(path), "nodes.%s.httpStatus", names[k]);
        assert_int_equal((int)jnum(r, path), 200);
        snprintf(path, sizeof(path), "nodes.%s.attempts", names[k]);
        assert_int_equal((int)jnum(r, path), 1);
        assert_int_equal(service_hits(&svc[k]), 1);
    }
    assert_int_equal(cJSON_GetArraySize(jget(r, "failed")), 0);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

/* semantics.md: C answering 500 fails C, skips D (never called), lets B
 * finish, and the result says why. */
static void test_diamond_c_500(void **state)
{
    char *doc = diamond("", "", "?status=500", "", "");
    wf_workflow *wf = parse(doc);
    int healthy;
    cJSON *r = run_with(wf, "{}", NULL, &healthy);

    assert_false(healthy);
    assert_true(cJSON_IsFalse(jget(r, "status.health")));
    assert_string_equal(jstr(r, "nodes.C.state"), "failed");
    assert_int_equal((int)jnum(r, "nodes.C.httpStatus"), 500);
    assert_non_null(strstr(jstr(r, "nodes.C.error"), "HTTP 500"));
    assert_non_null(strstr(jstr(r, "nodes.C.error"), "injected status"));
    assert_string_equal(jstr(r, "nodes.D.state"), "skipped");
    assert_string_equal(jstr(r, "nodes.D.skippedBecause"), "C");
    assert_non_null(strstr(jstr(r, "nodes.D.error"), "C"));
    assert_string_equal(jstr(r, "nodes.B.state"), "succeeded");
    assert_string_equal(cJSON_GetArrayItem(jget(r, "failed"), 0)->valuestring,
                        "C");
    assert_non_null(strstr(jstr(r, "error"), "node C failed"));

    assert_int_equal(service_hits(&svc[SD]), 0);
    assert_int_equal(service_hits(&svc[SC]), 1);
    assert_int_equal(service_hits(&svc[SB]), 1);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

static void test_timeout(void **state)
{
    char *doc = diamond("", "?hang=1", "", "", ",\"timeout\":\"1s\"");
    wf_workflow *wf = parse(doc);
    int healthy;
    cJSON *r = run_with(wf, "{}", NULL, &healthy);
    double ms = jnum(r, "nodes.B.durationMs");

    assert_false(healthy);
    assert_string_equal(jstr(r, "nodes.B.state"), "failed");
    assert_non_null(strstr(jstr(r, "nodes.B.error"),
                           "timed out after 1000 ms"));
    /* Within about 10% of the timeout. */
    assert_true(ms >= 1000.0 && ms <= 1100.0);
    assert_string_equal(jstr(r, "nodes.C.state"), "succeeded");
    assert_string_equal(jstr(r, "nodes.D.state"), "skipped");

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

static long max_rss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A 100 MiB answer fails the node at the limit (the default 8 MiB, then
 * a configured 1 MiB), and the process never holds the whole body. */
static void test_body_limit(void **state)
{
    char *doc = diamond("", "", "?body_bytes=104857600", "", "");
    wf_workflow *wf = parse(doc);
    engine_config cfg;
    int healthy;
    long before = max_rss_kib();
    cJSON *r = run_with(wf, "{}", NULL, &healthy);

    assert_false(healthy);
    assert_string_equal(jstr(r, "nodes.C.state"), "failed");
    assert_non_null(strstr(jstr(r, "nodes.C.error"),
                           "exceeds the limit of 8388608 bytes"));
    assert_string_equal(jstr(r, "nodes.D.state"), "skipped");
    assert_string_equal(jstr(r, "nodes.B.state"), "succeeded");
    assert_true(max_rss_kib() - before < 32 * 1024);
    cJSON_Delete(r);

    engine_config_default(&cfg);
    cfg.max_body_bytes = 1u << 20;
    r = run_with(wf, "{}", &cfg, &healthy);

    assert_false(healthy);
    assert_string_equal(jstr(r, "nodes.C.state"), "failed");
    assert_non_null(strstr(jstr(r, "nodes.C.error"), "exceeds the limit"));
    assert_string_equal(jstr(r, "nodes.D.state"), "skipped");
    assert_true(max_rss_kib() - before < 32 * 1024);

    /* Under the limit the same body is fine. */
    cJSON_Delete(r);
    free(doc);
    wf_free(wf);
    doc = diamond("", "", "?body_bytes=100000", "", "");
    wf = parse(doc);
    r = run_with(wf, "{}", &cfg, &healthy);
    assert_true(healthy);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

/* Nothing listens on port 1: that node fails, the other branch ends. */
static void test_connection_refused(void **state)
{
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"ok\",\"url\":\"http://127.0.0.1:%d/test\"},"
                    "{\"name\":\"after\",\"url\":\"http://127.0.0.1:%d/test\","
                    "\"dependencies\":[\"ok\"]},"
                    "{\"name\":\"dead\",\"url\":\"http://127.0.0.1:1/\"},"
                    "{\"name\":\"never\",\"url\":\"http://127.0.0.1:%d/test\","
                    "\"dependencies\":[\"dead\"]}]}",
                    svc[SA].port, svc[SB].port, svc[SC].port);
    wf_workflow *wf = parse(doc);
    int healthy;
    cJSON *r = run_with(wf, "{}", NULL, &healthy);

    assert_false(healthy);
    assert_string_equal(jstr(r, "nodes.dead.state"), "failed");
    assert_non_null(strcasestr(jstr(r, "nodes.dead.error"),
                               "connection refused"));
    assert_string_equal(jstr(r, "nodes.never.state"), "skipped");
    assert_string_equal(jstr(r, "nodes.after.state"), "succeeded");
    assert_string_equal(jstr(r, "data.name"), "B");
    assert_int_equal(service_hits(&svc[SC]), 0);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

static void test_retries(void **state)
{
    char *doc = diamond("", "?status=503", "", "", ",\"retries\":2");
    wf_workflow *wf = parse(doc);
    engine_config cfg;
    int healthy;

    engine_config_default(&cfg);
    cfg.backoff_ms = 5;

    cJSON *r = run_with(wf, "{}", &cfg, &healthy);

    assert_false(healthy);
    assert_string_equal(jstr(r, "nodes.B.state"), "failed");
    assert_int_equal((int)jnum(r, "nodes.B.attempts"), 3);
    assert_int_equal(service_hits(&svc[SB]), 3);
    assert_int_equal(service_hits(&svc[SD]), 0);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

/* Every action reaches the service; PUT and PATCH carry the input. */
static void test_actions(void **state)
{
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"p\",\"action\":\"put\","
                    "\"url\":\"http://127.0.0.1:%d/test\"},"
                    "{\"name\":\"q\",\"action\":\"PATCH\","
                    "\"url\":\"http://127.0.0.1:%d/test\","
                    "\"dependencies\":[\"p\"]},"
                    "{\"name\":\"r\",\"action\":\"DELETE\","
                    "\"url\":\"http://127.0.0.1:%d/test\","
                    "\"dependencies\":[\"q\"]},"
                    "{\"name\":\"s\",\"action\":\"GET\","
                    "\"url\":\"http://127.0.0.1:%d/test\"}]}",
                    svc[SA].port, svc[SB].port, svc[SC].port, svc[SD].port);
    wf_workflow *wf = parse(doc);
    int healthy;
    cJSON *r = run_with(wf, "{\"k\":\"v\"}", NULL, &healthy);

    assert_true(healthy);
    /* r (DELETE) sends no body, so q's data does not reach its output;
     * s (GET) ignores the input. Exits r and s merge, r first. */
    assert_string_equal(jstr(r, "data.name"), "C");
    assert_null(jget(r, "data.k"));
    assert_null(jget(r, "data.seen_by_B"));
    assert_true(jnum(r, "data.seen_by_D") >= 1);
    for (int k = 0; k < N_SVC; k++)
        assert_int_equal(service_hits(&svc[k]), 1);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);

    /* With PUT feeding PATCH feeding POST, the input travels through. */
    doc = fmt("{\"nodes\":["
              "{\"name\":\"p\",\"action\":\"PUT\","
              "\"url\":\"http://127.0.0.1:%d/test\"},"
              "{\"name\":\"q\",\"action\":\"PATCH\","
              "\"url\":\"http://127.0.0.1:%d/test\","
              "\"dependencies\":[\"p\"]}]}", svc[SA].port, svc[SB].port);
    wf = parse(doc);
    r = run_with(wf, "{\"k\":\"v\"}", NULL, &healthy);
    assert_true(healthy);
    assert_string_equal(jstr(r, "data.k"), "v");
    assert_true(jnum(r, "data.seen_by_A") >= 1);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

/* 200 runs in flight at once on one engine, each with its own input:
 * every result is complete and carries only its own input. */
static void test_concurrent_isolated(void **state)
{
    enum { RUNS = 200 };
    char *doc = diamond("", "?delay_ms=20", "", "", "");
    wf_workflow *wf = parse(doc);
    char err[256];
    engine *e = engine_new(NULL, err, sizeof(err));
    outcome *o = calloc(RUNS, sizeof(*o));
    uint64_t ids[RUNS];

    assert_non_null(e);
    for (int k = 0; k < RUNS; k++) {
        char input[64];

        snprintf(input, sizeof(input), "{\"run\":%d,\"tag%d\":true}", k, k);
        assert_int_equal(engine_submit(e, wf, input, strlen(input), on_done,
                                       &o[k], &ids[k], err, sizeof(err)), 0);
    }

    int left = RUNS;

    while (left > 0) {
        engine_step(e, 1000);
        left = 0;
        for (int k = 0; k < RUNS; k++)
            left += !o[k].done;
    }
    engine_free(e);

    for (int k = 0; k < RUNS; k++) {
        cJSON *r = o[k].doc;
        char tag[32];

        assert_int_equal(o[k].done, 1);
        assert_true(o[k].healthy);
        assert_int_equal((int)jnum(r, "data.run"), k);
        snprintf(tag, sizeof(tag), "data.tag%d", k);
        assert_true(cJSON_IsTrue(jget(r, tag)));

        /* No other run's tag leaked in. */
        int tags = 0;
        cJSON *it;

        cJSON_ArrayForEach(it, jget(r, "data")) {
            if (strncmp(it->string, "tag", 3) == 0)
                tags++;
        }
        assert_int_equal(tags, 1);
        assert_string_equal(jstr(r, "nodes.D.state"), "succeeded");

        char idtext[24];

        snprintf(idtext, sizeof(idtext), "%llu", (unsigned long long)ids[k]);
        assert_string_equal(jstr(r, "id"), idtext);
        cJSON_Delete(r);
    }
    assert_int_equal(service_hits(&svc[SD]), RUNS);

    free(o);
    wf_free(wf);
    free(doc);
}

/* Freeing the engine ends runs in flight with a result saying so. */
static void test_free_with_runs_in_flight(void **state)
{
    char *doc = diamond("", "?hang=1", "", "", "");
    wf_workflow *wf = parse(doc);
    char err[256];
    engine *e = engine_new(NULL, err, sizeof(err));
    outcome o = {0};

    assert_int_equal(engine_submit(e, wf, "", 0, on_done, &o, NULL, err,
                                   sizeof(err)), 0);
    for (int k = 0; k < 20; k++)
        engine_step(e, 10);
    assert_int_equal(o.done, 0);
    engine_free(e);

    assert_int_equal(o.done, 1);
    assert_false(o.healthy);
    assert_string_equal(jstr(o.doc, "nodes.B.state"), "failed");
    assert_string_equal(jstr(o.doc, "nodes.B.error"),
                        "the engine stopped while attempt 1 was in flight");
    assert_string_equal(jstr(o.doc, "nodes.D.state"), "skipped");
    assert_string_equal(jstr(o.doc, "nodes.D.skippedBecause"), "B");

    cJSON_Delete(o.doc);
    wf_free(wf);
    free(doc);
}

/* Stopped in backoff, a node keeps what its last attempt said; one that
 * never started says so. */
static void test_stop_keeps_last_error(void **state)
{
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"r\",\"retries\":3,"
                    "\"url\":\"http://127.0.0.1:%d/test?status=503\"},"
                    "{\"name\":\"w\",\"dependencies\":[\"r\"],"
                    "\"url\":\"http://127.0.0.1:%d/test\"}]}",
                    svc[SA].port, svc[SB].port);
    wf_workflow *wf = parse(doc);
    engine_config cfg;
    char err[256];
    outcome o = {0};

    engine_config_default(&cfg);
    cfg.backoff_ms = 60000; /* the first retry waits past the test */

    engine *e = engine_new(&cfg, err, sizeof(err));

    assert_int_equal(engine_submit(e, wf, NULL, 0, on_done, &o, NULL, err,
                                   sizeof(err)), 0);
    while (service_hits(&svc[SA]) < 1)
        engine_step(e, 10);
    for (int k = 0; k < 10; k++)
        engine_step(e, 10);
    engine_free(e);

    assert_int_equal(o.done, 1);
    assert_int_equal((int)jnum(o.doc, "nodes.r.attempts"), 1);
    assert_non_null(strstr(jstr(o.doc, "nodes.r.error"),
                           "the engine stopped before retrying; attempt 1 "
                           "had failed: HTTP 503"));
    assert_string_equal(jstr(o.doc, "nodes.w.state"), "skipped");
    assert_string_equal(jstr(o.doc, "nodes.w.skippedBecause"), "r");
    assert_int_equal(service_hits(&svc[SB]), 0);

    cJSON_Delete(o.doc);
    wf_free(wf);
    free(doc);
}

/* Below two failed nodes a node names the first in declaration order,
 * however the failures fall in time: here C fails at once (nothing
 * listens) and B 30 ms later. */
static void test_skipped_names_first_failed(void **state)
{
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"B\",\"url\":"
                    "\"http://127.0.0.1:%d/test?status=500&delay_ms=30\"},"
                    "{\"name\":\"C\",\"url\":\"http://127.0.0.1:1/\"},"
                    "{\"name\":\"D\",\"dependencies\":[\"C\",\"B\"],"
                    "\"url\":\"http://127.0.0.1:%d/test\"},"
                    "{\"name\":\"E\",\"dependencies\":[\"D\"],"
                    "\"url\":\"http://127.0.0.1:%d/test\"}]}",
                    svc[SB].port, svc[SD].port, svc[SD].port);
    wf_workflow *wf = parse(doc);

    for (int k = 0; k < 5; k++) {
        int healthy;
        cJSON *r = run_with(wf, "{}", NULL, &healthy);

        assert_false(healthy);
        assert_string_equal(jstr(r, "nodes.D.skippedBecause"), "B");
        assert_string_equal(jstr(r, "nodes.D.error"),
                            "skipped: depends on failed node B");
        assert_string_equal(jstr(r, "nodes.E.skippedBecause"), "B");
        cJSON_Delete(r);
    }
    assert_int_equal(service_hits(&svc[SD]), 0);

    wf_free(wf);
    free(doc);
}

/* A failed answer is quoted from its start and not read further: a
 * 100 MiB error page reads as HTTP 500, not as a body over the limit. */
static void test_failed_answer_not_read_whole(void **state)
{
    char *doc = diamond("", "", "?status=500&body_bytes=104857600", "", "");
    wf_workflow *wf = parse(doc);
    int healthy;
    cJSON *r = run_with(wf, "{}", NULL, &healthy);
    const char *why = jstr(r, "nodes.C.error");

    assert_false(healthy);
    assert_int_equal(strncmp(why, "HTTP 500: {", 11), 0);
    assert_non_null(strstr(why, "..."));
    assert_null(strstr(why, "exceeds the limit"));
    assert_true(jnum(r, "nodes.C.durationMs") < 2000);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

/* A user name and password in a URL never reach the result. */
static void test_url_credentials_hidden(void **state)
{
    const char *doc = "{\"nodes\":[{\"name\":\"a\","
                      "\"url\":\"http://admin:s3cret@127.0.0.1:1/x?q=1\"}]}";
    wf_workflow *wf = parse(doc);
    raw_outcome o = {0};
    char err[256];
    engine *e = engine_new(NULL, err, sizeof(err));

    assert_int_equal(engine_submit(e, wf, NULL, 0, on_raw_done, &o, NULL,
                                   err, sizeof(err)), 0);
    while (!o.done)
        engine_step(e, 1000);
    engine_free(e);

    assert_null(strstr(o.text, "s3cret"));
    assert_null(strstr(o.text, "admin"));
    assert_non_null(strstr(o.text, "http://***@127.0.0.1:1/x?q=1"));
    free(o.text);
    wf_free(wf);
}

/* The result's data of one exit: its JSON byte for byte in value (digits
 * past 2^53, NUL in strings), valid UTF-8, a string when it is not JSON
 * (trailing data included), null when it is empty. */
static void test_exit_data_exact(void **state)
{
    static const struct {
        const char *raw; /* percent-encoded answer */
        const char *data;
    } cases[] = {
        {"%7B%22t%22%3A1700000000123456789%2C%22f%22%3A1.50%7D",
         "\"data\":{\"t\":1700000000123456789,\"f\":1.50}"},
        {"%7B%22s%22%3A%22a%5Cu0000b%22%7D", "\"data\":{\"s\":\"a\\u0000b\"}"},
        {"%7B%22a%22%3A%22%FF%22%7D", "\"data\":{\"a\":\"\xef\xbf\xbd\"}"},
        {"%7B%22a%22%3A1%7D%7B%7D", "\"data\":\"{\\\"a\\\":1}{}\""},
        {"", "\"data\":null"},
        {"%20%0A", "\"data\":null"},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char *doc = fmt("{\"nodes\":[{\"name\":\"x\","
                        "\"url\":\"http://127.0.0.1:%d/test?raw=%s\"}]}",
                        svc[SA].port, cases[k].raw);
        wf_workflow *wf = parse(doc);
        raw_outcome o = {0};
        char err[256];
        engine *e = engine_new(NULL, err, sizeof(err));

        assert_int_equal(engine_submit(e, wf, NULL, 0, on_raw_done, &o,
                                       NULL, err, sizeof(err)), 0);
        while (!o.done)
            engine_step(e, 1000);
        engine_free(e);

        if (!strstr(o.text, cases[k].data))
            fail_msg("raw=%s: %s lacks %s", cases[k].raw, o.text,
                     cases[k].data);
        assert_true(valid_utf8(o.text, o.len));
        free(o.text);
        wf_free(wf);
        free(doc);
    }
}

static void test_max_runs(void **state)
{
    char *doc = diamond("", "", "", "", "");
    wf_workflow *wf = parse(doc);
    engine_config cfg;
    char err[256];
    outcome o = {0};

    engine_config_default(&cfg);
    cfg.max_runs = 1;

    engine *e = engine_new(&cfg, err, sizeof(err));

    assert_int_equal(engine_submit(e, wf, "", 0, on_done, &o, NULL, err,
                                   sizeof(err)), 0);
    assert_int_equal(engine_submit(e, wf, "", 0, on_done, &o, NULL, err,
                                   sizeof(err)), -1);
    assert_non_null(strstr(err, "already in flight"));
    while (!o.done)
        engine_step(e, 1000);

    engine_stats st;

    engine_get_stats(e, &st);
    assert_int_equal(st.runs_refused, 1);
    assert_int_equal(st.runs_healthy, 1);
    assert_int_equal(st.runs_inflight, 0);
    assert_int_equal(st.calls, 4);
    engine_free(e);

    cJSON_Delete(o.doc);
    wf_free(wf);
    free(doc);
}

/* Two exit nodes: their outputs merge in declaration order. */
static void test_exit_merge(void **state)
{
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"x\",\"action\":\"POST\","
                    "\"url\":\"http://127.0.0.1:%d/test\"},"
                    "{\"name\":\"y\",\"action\":\"POST\","
                    "\"url\":\"http://127.0.0.1:%d/test\"}]}",
                    svc[SB].port, svc[SC].port);
    wf_workflow *wf = parse(doc);
    int healthy;
    cJSON *r = run_with(wf, "{\"in\":1}", NULL, &healthy);

    assert_true(healthy);
    assert_string_equal(jstr(r, "data.name"), "B"); /* earlier wins */
    assert_true(jnum(r, "data.seen_by_B") >= 1);
    assert_true(jnum(r, "data.seen_by_C") >= 1);
    assert_int_equal((int)jnum(r, "data.in"), 1);

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

/* A result document is valid JSON in valid UTF-8 whatever the node
 * names hold and wherever a failed answer's quoted prefix cuts a
 * multi-byte character. */
static void test_result_valid_utf8(void **state)
{
    /* The name q"uo\te é, as JSON text and as the bytes it stands for. */
#define ODD_NAME_JSON "q\\\"uo\\\\te \\u00e9"
#define ODD_NAME "q\"uo\\te \xc3\xa9"
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"" ODD_NAME_JSON "\",\"action\":\"POST\","
                    "\"url\":\"http://127.0.0.1:%d/test\"},"
                    "{\"name\":\"C\",\"dependencies\":[\"" ODD_NAME_JSON
                    "\"],\"url\":\"http://127.0.0.1:%d/test?status=500\"}]}",
                    svc[SA].port, svc[SC].port);
    wf_workflow *wf = parse(doc);
    int replaced = 0;

    for (int shift = 0; shift < 3; shift++) {
        char input[1024];
        size_t n = 0;
        raw_outcome o = {0};
        char err[256];
        engine *e = engine_new(NULL, err, sizeof(err));

        /* 3-byte characters from an offset that differs per round: the
         * 200-byte prefix of C's answer falls inside one in at least one
         * round, and must be cut before it, not leave half of it. */
        n += (size_t)snprintf(input, sizeof(input), "{\"p\":\"%.*s",
                              shift, "xx");
        for (int k = 0; k < 100; k++) {
            memcpy(input + n, "\xe2\x82\xac", 3);
            n += 3;
        }
        n += (size_t)snprintf(input + n, sizeof(input) - n, "\"}");

        assert_non_null(e);
        assert_int_equal(engine_submit(e, wf, input, n, on_raw_done, &o,
                                       NULL, err, sizeof(err)), 0);
        while (!o.done)
            engine_step(e, 1000);
        engine_free(e);

        assert_true(valid_utf8(o.text, o.len));
        cJSON *r = cJSON_ParseWithLength(o.text, o.len);

        assert_non_null(r);
        cJSON *nodes = cJSON_GetObjectItemCaseSensitive(r, "nodes");
        cJSON *a = cJSON_GetObjectItemCaseSensitive(nodes, ODD_NAME);

        assert_non_null(a);
        assert_string_equal(
            cJSON_GetObjectItemCaseSensitive(a, "state")->valuestring,
            "succeeded");
        assert_string_equal(jstr(r, "nodes.C.state"), "failed");
        if (strstr(jstr(r, "nodes.C.error"), "\xef\xbf\xbd"))
            replaced++;
        cJSON_Delete(r);
        free(o.text);
    }
    assert_int_equal(replaced, 0);

    wf_free(wf);
    free(doc);
}

/* Easy handles are set up once per node and reused by later runs; with
 * no idle handles kept, every attempt sets up its own. */
static void test_handles_reused(void **state)
{
    char *doc = diamond("", "", "", "", "");
    wf_workflow *wf = parse(doc);
    engine_config cfg;

    engine_config_default(&cfg);
    for (int keep = 0; keep < 2; keep++) {
        char err[256];
        engine_stats st;
        engine *e;

        cfg.max_idle_calls = keep ? 256 : 0;
        e = engine_new(&cfg, err, sizeof(err));
        assert_non_null(e);
        for (int k = 0; k < 20; k++) {
            outcome o = {0};

            assert_int_equal(engine_submit(e, wf, NULL, 0, on_done, &o,
                                           NULL, err, sizeof(err)), 0);
            while (!o.done)
                engine_step(e, 1000);
            assert_true(o.healthy);
            cJSON_Delete(o.doc);
        }
        engine_get_stats(e, &st);
        assert_int_equal(st.calls, 80);
        assert_int_equal(st.handles_created, keep ? 4 : 80);
        engine_free(e);
    }
    assert_int_equal(service_hits(&svc[SD]), 40);

    wf_free(wf);
    free(doc);
}

/* max_host_conns holds calls to one service to that many at once: four
 * parallel 100 ms calls to one service take 400 ms with one connection,
 * about 100 ms without a limit. */
static void test_host_connection_limit(void **state)
{
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"p\",\"url\":"
                    "\"http://127.0.0.1:%d/test?delay_ms=100\"},"
                    "{\"name\":\"q\",\"url\":"
                    "\"http://127.0.0.1:%d/test?delay_ms=100\"},"
                    "{\"name\":\"r\",\"url\":"
                    "\"http://127.0.0.1:%d/test?delay_ms=100\"},"
                    "{\"name\":\"s\",\"url\":"
                    "\"http://127.0.0.1:%d/test?delay_ms=100\"}"
                    "]}", svc[SA].port, svc[SA].port, svc[SA].port,
                    svc[SA].port);
    wf_workflow *wf = parse(doc);
    engine_config cfg;
    int healthy;

    engine_config_default(&cfg);
    cfg.max_host_conns = 1;

    cJSON *r = run_with(wf, "{}", &cfg, &healthy);

    assert_true(healthy);
    assert_true(jnum(r, "durationMs") >= 400);
    assert_int_equal(service_hits(&svc[SA]), 4);
    cJSON_Delete(r);

    r = run_with(wf, "{}", NULL, &healthy);
    assert_true(healthy);
    assert_true(jnum(r, "durationMs") < 400);
    cJSON_Delete(r);

    wf_free(wf);
    free(doc);
}

/* A call waiting for a connection (max_host_conns) keeps its timeout:
 * with the one connection held by a hanging node, the other fails after
 * its 100 ms, saying its request was never sent, not when the first
 * node's 2 s are up. */
static void test_timeout_while_queued(void **state)
{
    char *doc = fmt("{\"nodes\":["
                    "{\"name\":\"slow\",\"timeout\":\"2s\",\"url\":"
                    "\"http://127.0.0.1:%d/test?hang=1\"},"
                    "{\"name\":\"quick\",\"timeout\":\"100ms\",\"url\":"
                    "\"http://127.0.0.1:%d/test?delay_ms=1\"}]}",
                    svc[SA].port, svc[SA].port);
    wf_workflow *wf = parse(doc);
    engine_config cfg;
    int healthy;

    engine_config_default(&cfg);
    cfg.max_host_conns = 1;

    /* Entry nodes start in declaration order: slow takes the
     * connection. */
    cJSON *r = run_with(wf, "{}", &cfg, &healthy);

    assert_false(healthy);
    assert_string_equal(jstr(r, "nodes.quick.error"),
                        "timed out after 100 ms before its request was "
                        "sent");
    assert_true(jnum(r, "nodes.quick.durationMs") < 1000);
    assert_non_null(strstr(jstr(r, "nodes.slow.error"),
                           "timed out after 2000 ms"));

    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

/* A server below HTTP, in a child process: it accepts one connection,
 * reads the request's headers, writes answer as it is, however broken,
 * and closes. Returns its port; the child's pid goes to *pid. */
static int raw_server(const char *answer, pid_t *pid)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(lfd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);

    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        char in[8192];
        size_t got = 0;
        int fd;

        alarm(10);
        if (poll(&p, 1, 10000) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
            _exit(1);
        while (got < sizeof(in) - 1) {
            ssize_t n = recv(fd, in + got, sizeof(in) - 1 - got, 0);

            if (n <= 0)
                break;
            got += (size_t)n;
            in[got] = '\0';
            if (strstr(in, "\r\n\r\n"))
                break;
        }
        if (send(fd, answer, strlen(answer), 0) < 0)
            _exit(1);
        close(fd);
        _exit(0);
    }
    close(lfd);
    return ntohs(sa.sin_port);
}

/* An answer whose connection closed before the blank line that ends its
 * headers is no answer, whatever its status line says: libcurl reports
 * such a transfer complete, so the engine must not count it a success.
 * The same answer whole succeeds. */
static void test_headers_cut_short(void **state)
{
    static const struct {
        const char *answer;
        int ok;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\n", 0},
        {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", 0},
        {"HTTP/1.1 204 No Content\r\nServer: x", 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}", 1},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"a\":1}", 1},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        pid_t pid;
        int port = raw_server(cases[k].answer, &pid);
        char *doc = fmt("{\"nodes\":[{\"name\":\"n\",\"url\":"
                        "\"http://127.0.0.1:%d/x\"}]}", port);
        wf_workflow *wf = parse(doc);
        int healthy, status = 0;
        cJSON *r = run_with(wf, "{}", NULL, &healthy);

        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (cases[k].ok) {
            if (!healthy)
                fail_msg("case %zu failed: %s", k, jstr(r, "nodes.n.error"));
            assert_int_equal((int)jnum(r, "data.a"), 1);
        } else {
            const char *why = jstr(r, "nodes.n.error");

            assert_false(healthy);
            assert_string_equal(jstr(r, "nodes.n.state"), "failed");
            if (!why || !strstr(why, "the connection closed before the "
                                     "answer's headers ended"))
                fail_msg("case %zu: error '%s'", k, why);
        }
        cJSON_Delete(r);
        wf_free(wf);
        free(doc);
    }
}

/* A failed answer is quoted from its first 200 bytes, cut between
 * characters rather than inside one; an empty one says so. */
static void test_failed_answer_quote(void **state)
{
    char a199[200];
    char *doc;
    wf_workflow *wf;
    int healthy;
    cJSON *r;
    const char *why;
    char *want;

    memset(a199, 'a', 199);
    a199[199] = '\0';
    doc = fmt("{\"nodes\":[{\"name\":\"euro\",\"url\":"
              "\"http://127.0.0.1:%d/test?status=500&raw=%s%%E2%%82%%ACzz\"},"
              "{\"name\":\"empty\",\"url\":"
              "\"http://127.0.0.1:%d/test?status=502&raw=\"}]}",
              svc[SA].port, a199, svc[SA].port);
    wf = parse(doc);
    r = run_with(wf, "{}", NULL, &healthy);
    assert_false(healthy);

    why = jstr(r, "nodes.euro.error");
    want = fmt("HTTP 500: %s...", a199);
    assert_string_equal(why, want);
    assert_string_equal(jstr(r, "nodes.empty.error"),
                        "HTTP 502 with an empty body");

    free(want);
    cJSON_Delete(r);
    wf_free(wf);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_diamond_healthy, reset_hits),
        cmocka_unit_test_setup(test_diamond_c_500, reset_hits),
        cmocka_unit_test_setup(test_timeout, reset_hits),
        cmocka_unit_test_setup(test_body_limit, reset_hits),
        cmocka_unit_test_setup(test_connection_refused, reset_hits),
        cmocka_unit_test_setup(test_retries, reset_hits),
        cmocka_unit_test_setup(test_actions, reset_hits),
        cmocka_unit_test_setup(test_concurrent_isolated, reset_hits),
        cmocka_unit_test_setup(test_free_with_runs_in_flight, reset_hits),
        cmocka_unit_test_setup(test_max_runs, reset_hits),
        cmocka_unit_test_setup(test_exit_merge, reset_hits),
        cmocka_unit_test_setup(test_result_valid_utf8, reset_hits),
        cmocka_unit_test_setup(test_handles_reused, reset_hits),
        cmocka_unit_test_setup(test_stop_keeps_last_error, reset_hits),
        cmocka_unit_test_setup(test_skipped_names_first_failed, reset_hits),
        cmocka_unit_test_setup(test_failed_answer_not_read_whole,
                               reset_hits),
        cmocka_unit_test_setup(test_url_credentials_hidden, reset_hits),
        cmocka_unit_test_setup(test_exit_data_exact, reset_hits),
        cmocka_unit_test_setup(test_host_connection_limit, reset_hits),
        cmocka_unit_test_setup(test_timeout_while_queued, reset_hits),
        cmocka_unit_test_setup(test_headers_cut_short, reset_hits),
        cmocka_unit_test_setup(test_failed_answer_quote, reset_hits),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
