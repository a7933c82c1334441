/*
 * The HTTP face of the engine, on the engine's own thread.
 *
 * libmicrohttpd runs in external epoll mode: its epoll fd joins the
 * engine's wait set, so one thread accepts triggers, runs every workflow
 * and answers. A trigger suspends its connection until the run ends; the
 * run's callback stores the result and resumes it. Nothing blocks and no
 * thread is held per request.
 *
 * Routes (semantics.md section 4):
 *   <target>          any method: run, answer with the result (200)
 *   POST /runs        run and answer (200); ?async=1: answer 202 with an
 *                     id at once, then GET /runs/<id>
 *   GET /runs/<id>    202 while running, 200 with the result, 404 unknown,
 *                     410 once the result was dropped to bound memory
 *   GET /healthz, GET /readyz, GET /metrics (Prometheus text)
 * A target ending in '/' also matches every path below it, as the
 * original engine's router did; the fixed routes above take precedence,
 * and another method on them is answered 405 rather than run.
 */
#define _GNU_SOURCE
#include "astermule.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "jw.h"
#include "jx.h"
#include "log.h"

#define SUBSYS "server"

typedef enum req_state {
    REQ_READING = 0, /* body still arriving */
    REQ_RUNNING,     /* suspended, waiting for the run */
    REQ_DONE,        /* result ready, resumed */
} req_state;

/* What a request asks for, decided once its headers are in. */
typedef enum route_kind {
    ROUTE_NONE = 0, /* nothing is served there: 404 */
    ROUTE_TARGET,   /* any method runs the workflow */
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_RUNS, /* POST /runs */
    ROUTE_RUN,  /* GET /runs/<id> */
} route_kind;

/* Per-request state, owned by the connection (freed on completion). */
typedef struct req {
    struct server *srv;
    struct MHD_Connection *conn;
    req_state state;
    route_kind route;
    const char *allow; /* a fixed route's methods, when not this one */
    char *body;
    size_t len;
    size_t cap;
    size_t reserved;  /* bytes of body counted against --max-pending */
    int too_big;
    int over_pending; /* the body would pass --max-pending-bytes */
    unsigned status; /* answer status once REQ_DONE */
    char *answer;    /* JSON document once REQ_DONE */
    size_t answer_len;
} req;

/* An asynchronous run's slot; slot = id % keep_results. A finished
 * run's result is on the server's list of kept results, oldest first,
 * until a later run takes the slot or the byte limit drops it.
 *
 * The result is kept as a libmicrohttpd response, which counts the
 * connections sending it: one dropped while a slow client still reads
 * it lives on until that client is done, rather than be freed under it.
 */
typedef struct slot {
    uint64_t id; /* 0: empty */
    int done;
    int dropped; /* done, but the result was dropped to bound memory */
    struct MHD_Response *resp; /* the result, or NULL */
    size_t len;
    char *key;   /* the caller's idempotency key, or NULL */
    struct slot *older;
    struct slot *newer;
} slot;

/* Why a trigger was answered with an error, for /metrics. */
typedef enum reject_reason {
    REJECT_BAD_BODY = 0, /* 400: the body is not a JSON object */
    REJECT_TOO_LARGE,    /* 413 */
    REJECT_OVERLOADED,   /* 503: the engine refused the run */
    REJECT_BAD_REQUEST,  /* other 400s, and 405 */
    N_REJECT,
} reject_reason;

static const char *const reject_names[N_REJECT] = {
    "bad_body", "too_large", "overloaded", "bad_request",
};

/* Memory of one client connection, its request headers included: a
 * trigger's headers are small, and libmicrohttpd's 32 KiB default is
 * zeroed for every request and held by every open connection. Each
 * header costs its bytes and about 64 of bookkeeping; headers past about
 * 15 KiB in all get 431, or the connection is closed. */
#define AM_CONN_MEMORY 16384

/* How long a stop waits for answers still being sent, in ms. */
#define AM_DRAIN_MS 5000

/* Longest idempotency key accepted. */
#define MAX_KEY_LEN 253

typedef struct server {
    const am_config *cfg;
    const wf_workflow *wf;
    engine *e;
    struct MHD_Daemon *d;
    slot *slots;
    slot *oldest;      /* kept results, in the order their runs ended */
    slot *newest;
    size_t kept_bytes; /* bytes of the kept results */
    size_t target_len;
    int target_subtree;
    int resumed; /* a connection was resumed since the last MHD_run */
    int stopping; /* the engine is gone: answers are drained, runs refused */
    size_t open_requests; /* begun and not yet completed */
    size_t pending_bytes; /* of trigger bodies being received */
    uint64_t requests;
    uint64_t rejected[N_REJECT];
} server;

/* ---- answers ------------------------------------------------------ */

/* Queues body as the answer. allow, when not NULL, goes out as the Allow
 * header. With must_free the body is handed over, and freed even when
 * queueing fails. */
static enum MHD_Result answer_with(struct MHD_Connection *conn,
                                   unsigned status, const char *type,
                                   const char *allow, char *body,
                                   size_t len, int must_free)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r;

    if (!resp) {
        if (must_free)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *type, char *body, size_t len,
                              int must_free)
{
    return answer_with(conn, status, type, NULL, body, len, must_free);
}

static enum MHD_Result answer_json(struct MHD_Connection *conn,
                                   unsigned status, char *doc, size_t len)
{
    return answer(conn, status, "application/json", doc, len, 1);
}

/* {"error": msg} with the given status, and an Allow header when allow
 * is not NULL. msg may quote what the client sent, bytes that are not
 * UTF-8 included: those are written as U+FFFD, so the answer is valid
 * JSON in UTF-8 whatever came in. */
static enum MHD_Result answer_error_allow(struct MHD_Connection *conn,
                                          unsigned status, const char *allow,
                                          const char *msg)
{
    jw w;
    char *doc;
    size_t len;

    jw_init(&w, strlen(msg) + 16);
    jw_obj_open(&w);
    JW_KEY(&w, "error");
    jw_strz(&w, msg);
    jw_obj_close(&w);
    doc = jw_finish(&w, &len);
    if (!doc)
        return MHD_NO;
    return answer_with(conn, status, "application/json", allow, doc, len,
                       1);
}

/* The length of the longest start of s within max bytes that does not
 * end inside a UTF-8 character, for quoting client text with "%.*s": a
 * quote cut short must not leave half a character, which would become
 * U+FFFD. A byte that starts no valid character counts as one. */
static int quote_len(const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), k = 0;

    while (k < n) {
        uint32_t cp;
        size_t step = jw_utf8_next(u + k, n - k, &cp);

        if (step == 0)
            step = 1;
        if (k + step > max)
            break;
        k += step;
    }
    return (int)k;
}

static enum MHD_Result answer_error(struct MHD_Connection *conn,
                                    unsigned status, const char *msg)
{
    return answer_error_allow(conn, status, NULL, msg);
}

/* Counts a trigger refused for reason why and answers {"error": msg}. */
static enum MHD_Result reject(server *srv, struct MHD_Connection *conn,
                              reject_reason why, unsigned status,
                              const char *msg)
{
    srv->rejected[why]++;
    return answer_error(conn, status, msg);
}

/* ---- kept results ------------------------------------------------- */

/* Lets go of s's result, if it has one, and takes it off the kept list;
 * connections still sending it hold it until they are done. */
static void result_forget(server *srv, slot *s)
{
    if (!s->resp)
        return;
    if (s->older)
        s->older->newer = s->newer;
    else
        srv->oldest = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        srv->newest = s->older;
    srv->kept_bytes -= s->len;
    MHD_destroy_response(s->resp);
    s->resp = NULL;
    s->len = 0;
    s->older = s->newer = NULL;
}

/* Keeps doc (handed over) as s's result, then drops the oldest kept
 * results, s's own included when it alone is too big, until the total is
 * within --keep-results-bytes again. */
static void result_keep(server *srv, slot *s, char *doc, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, doc, MHD_RESPMEM_MUST_FREE);

    s->done = 1;
    if (!resp) {
        log_msg(LOG_WARN, SUBSYS, "run %llu: result of %zu bytes not "
                "kept: out of memory", (unsigned long long)s->id, len);
        free(doc);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    s->resp = resp;
    s->len = len;
    s->older = srv->newest;
    s->newer = NULL;
    if (srv->newest)
        srv->newest->newer = s;
    else
        srv->oldest = s;
    srv->newest = s;
    srv->kept_bytes += len;

    while (srv->kept_bytes > srv->cfg->keep_results_bytes) {
        slot *old = srv->oldest;

        log_msg(LOG_DEBUG, SUBSYS, "run %llu: result of %zu bytes dropped; "
                "kept results would pass %zu bytes",
                (unsigned long long)old->id, old->len,
                srv->cfg->keep_results_bytes);
        result_forget(srv, old);
        old->dropped = 1;
    }
}

/* 410 for a run whose result was dropped to bound memory. */
static enum MHD_Result answer_gone(server *srv, struct MHD_Connection *conn,
                                   uint64_t id)
{
    char msg[256];

    snprintf(msg, sizeof(msg), "the result of run %llu is no longer kept: "
             "kept async results are limited to %zu bytes in all "
             "(--keep-results-bytes), and the oldest are dropped first",
             (unsigned long long)id, srv->cfg->keep_results_bytes);
    return answer_error(conn, MHD_HTTP_GONE, msg);
}

/* ---- runs --------------------------------------------------------- */

static void on_run_done(void *ud, char *doc, size_t len, int healthy)
{
    req *q = ud;

    q->answer = doc;
    q->answer_len = len;
    q->status = doc ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR;
    q->state = REQ_DONE;
    q->srv->resumed = 1;
    MHD_resume_connection(q->conn);
}

/* An asynchronous run: where its result goes. */
typedef struct async_run {
    struct server *srv;
    uint64_t id;
} async_run;

static void on_async_done(void *ud, char *doc, size_t len, int healthy)
{
    async_run *a = ud;
    slot *s = &a->srv->slots[a->id % a->srv->cfg->keep_results];

    /* The slot may have been taken by a later run: this result is then no
     * longer asked for. */
    if (s->id != a->id)
        free(doc);
    else if (!doc)
        s->done = 1;
    else
        result_keep(a->srv, s, doc, len);
    free(a);
}

/* 202 {"id","state":"running","href"} for run id. */
static enum MHD_Result answer_accepted(struct MHD_Connection *conn,
                                       uint64_t id)
{
    char *doc = NULL;
    int n = asprintf(&doc, "{\"id\":\"%llu\",\"state\":\"running\","
                     "\"href\":\"/runs/%llu\"}", (unsigned long long)id,
                     (unsigned long long)id);

    if (n < 0)
        return MHD_NO;
    return answer_json(conn, MHD_HTTP_ACCEPTED, doc, (size_t)n);
}

/* An idempotency key: 1 to MAX_KEY_LEN printable ASCII characters; n
 * is its length as decoded, NUL bytes included. */
static int check_key(const char *key, size_t n, char *err, size_t errlen)
{
    for (size_t k = 0; k < n; k++) {
        if (key[k] < 0x21 || key[k] > 0x7e) {
            snprintf(err, errlen, "query parameter key: character %zu is "
                     "not printable ASCII", k + 1);
            return -1;
        }
    }
    if (n == 0 || n > MAX_KEY_LEN) {
        snprintf(err, errlen, "query parameter key: must be 1 to %d "
                 "characters, not %zu", MAX_KEY_LEN, n);
        return -1;
    }
    return 0;
}

/* Reads ?async= of POST /runs into *async: 1 or true ask for an
 * asynchronous run; 0, false or no parameter for a synchronous one.
 * Anything else returns -1 with the reason in err: a typo must not
 * quietly hold the caller's connection for a whole run. */
static int parse_async(struct MHD_Connection *conn, int *async, char *err,
                       size_t errlen)
{
    const char *v = NULL;

    *async = 0;
    if (MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "async",
                                      5, &v, NULL) != MHD_YES)
        return 0;
    if (v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)) {
        *async = 1;
        return 0;
    }
    if (v && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0))
        return 0;
    if (!v || *v == '\0')
        snprintf(err, errlen, "query parameter async: expected 1, true, 0 "
                 "or false, not an empty value");
    else
        snprintf(err, errlen, "query parameter async: expected 1, true, 0 "
                 "or false, not '%.*s'", quote_len(v, 40), v);
    return -1;
}

/* The slot of the kept run started with key, or NULL. A linear scan:
 * keyed runs are rare (one per workflow deployment) and slots few. */
static slot *find_key(server *srv, const char *key)
{
    for (size_t k = 0; k < srv->cfg->keep_results; k++) {
        slot *s = &srv->slots[k];

        if (s->id && s->key && strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

/* ---- trigger bodies ----------------------------------------------- */

/* Counts need more bytes of q's body as being received. Returns 0, or
 * -1 when that would pass --max-pending-bytes: many large bodies
 * arriving at once must not take all memory before their runs start. */
static int pending_reserve(server *srv, req *q, size_t need)
{
    if (need > srv->cfg->max_pending_bytes - srv->pending_bytes)
        return -1;
    srv->pending_bytes += need;
    q->reserved += need;
    return 0;
}

/* Frees q's body and stops counting it: a queued run has its own copy
 * of the input, and a refused one needs it no more. */
static void body_release(server *srv, req *q)
{
    srv->pending_bytes -= q->reserved;
    q->reserved = 0;
    free(q->body);
    q->body = NULL;
    q->len = q->cap = 0;
}

/* The 503 for a body that would pass --max-pending-bytes; need is the
 * bytes it asked for. */
static enum MHD_Result reject_pending(server *srv, req *q, size_t need)
{
    char msg[320];

    snprintf(msg, sizeof(msg), "trigger bodies being received would pass "
             "%zu bytes (--max-pending-bytes): %zu bytes are on their way "
             "already and this one needs %zu more; try again once runs "
             "have started", srv->cfg->max_pending_bytes,
             srv->pending_bytes, need);
    return reject(srv, q->conn, REJECT_OVERLOADED,
                  MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

/* The 503 for a run the engine refused, saying why (err) and which flag
 * sets the limit: while the server runs, that is --max-runs. */
static enum MHD_Result reject_refused(server *srv, req *q, const char *err)
{
    char msg[320];

    snprintf(msg, sizeof(msg), "%s (--max-runs); try again once runs have "
             "ended", err);
    return reject(srv, q->conn, REJECT_OVERLOADED,
                  MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

/* ---- runs, continued ---------------------------------------------- */

/* Starts an asynchronous run of the checked input (len bytes) and
 * answers 202 with its id; a key seen before answers for the run it
 * started. */
static enum MHD_Result start_async(server *srv, req *q, const char *input,
                                   size_t len)
{
    char err[256];
    const char *key = NULL;
    size_t key_len = 0;
    slot *same = NULL;
    uint64_t id = 0;

    if (MHD_lookup_connection_value_n(q->conn, MHD_GET_ARGUMENT_KIND, "key",
                                      3, &key, &key_len) != MHD_YES)
        key = NULL;
    if (key && check_key(key, key_len, err, sizeof(err)) < 0)
        return reject(srv, q->conn, REJECT_BAD_REQUEST,
                      MHD_HTTP_BAD_REQUEST, err);

    /* A key seen before names the run it started: answer with that run
     * rather than start a second one. */
    if (key)
        same = find_key(srv, key);
    if (same && same->dropped)
        return answer_gone(srv, q->conn, same->id);
    if (same && same->done && same->resp)
        return MHD_queue_response(q->conn, MHD_HTTP_OK, same->resp);
    if (same && same->done)
        return answer_error(q->conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "the run produced no result");
    if (same)
        return answer_accepted(q->conn, same->id);

    async_run *a = calloc(1, sizeof(*a));

    if (!a)
        return MHD_NO;
    a->srv = srv;

    /* The run cannot end before this returns: it ends on this very
     * thread, in a later pass of the loop. */
    if (engine_submit(srv->e, srv->wf, input, len, on_async_done, a, &id,
                      err, sizeof(err)) != 0) {
        free(a);
        return reject_refused(srv, q, err);
    }
    a->id = id;

    /* The slot's previous run, if any, is forgotten: its id becomes
     * unknown (404), as the count limit says. */
    slot *s = &srv->slots[id % srv->cfg->keep_results];

    result_forget(srv, s);
    free(s->key);
    *s = (slot){.id = id, .key = key ? strdup(key) : NULL};
    return answer_accepted(q->conn, id);
}

/* Checks q's body and starts its run. The body is empty (blanks only,
 * after a byte order mark if any) or exactly one JSON object, read as
 * strictly as node outputs are (jx.h): trailing data, raw control
 * characters and numbers JSON does not write are refused. */
static enum MHD_Result start_one(server *srv, req *q, int async)
{
    char err[256];
    uint64_t id = 0;
    size_t skip = 0;
    size_t len = q->body ? jx_input(q->body, q->len, &skip) : 0;
    const char *input = len ? q->body + skip : "";

    if (q->too_big) {
        snprintf(err, sizeof(err), "the request body exceeds the limit of "
                 "%zu bytes (--max-request-bytes)",
                 srv->cfg->max_request_bytes);
        return reject(srv, q->conn, REJECT_TOO_LARGE,
                      MHD_HTTP_CONTENT_TOO_LARGE, err);
    }
    if (q->over_pending)
        return reject_pending(srv, q, q->len);
    if (srv->stopping)
        return reject(srv, q->conn, REJECT_OVERLOADED,
                      MHD_HTTP_SERVICE_UNAVAILABLE,
                      "astermule is stopping and starts no more runs");
    if (len && jx_check_object(input, len, "the request body", err,
                               sizeof(err)) < 0)
        return reject(srv, q->conn, REJECT_BAD_BODY, MHD_HTTP_BAD_REQUEST,
                      err);

    if (async)
        return start_async(srv, q, input, len);

    /* The run ends on this thread, in a later pass of the loop, so the
     * connection is suspended once the run is queued. A refused trigger
     * is answered at once: suspended and resumed within one call, its
     * 503 waited for another connection to resume (seen with
     * libmicrohttpd 0.9.75). A suspended connection is exempt from
     * --connection-timeout, so a run may take longer than it. */
    if (engine_submit(srv->e, srv->wf, input, len, on_run_done, q, &id,
                      err, sizeof(err)) != 0)
        return reject_refused(srv, q, err);
    q->state = REQ_RUNNING;
    MHD_suspend_connection(q->conn);
    return MHD_YES;
}

/* Runs q's trigger, then lets its body go, whatever came of it: a run
 * has its own copy. */
static enum MHD_Result start_run(server *srv, req *q, int async)
{
    enum MHD_Result r = start_one(srv, q, async);

    body_release(srv, q);
    return r;
}

/* A run id as the server writes it: decimal digits without sign,
 * blanks or leading zeros, within 64 bits. Any other spelling of a
 * number names no run, so that one run has one URL. Returns 0 or -1. */
static int parse_run_id(const char *text, uint64_t *id)
{
    size_t n = strlen(text);
    unsigned long long v;

    if (n == 0 || n > 20 || text[0] < '1' || text[0] > '9')
        return -1;
    for (size_t k = 1; k < n; k++) {
        if (text[k] < '0' || text[k] > '9')
            return -1;
    }
    errno = 0;
    v = strtoull(text, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *id = v;
    return 0;
}

static enum MHD_Result get_run(server *srv, struct MHD_Connection *conn,
                               const char *idtext)
{
    uint64_t id = 0;
    slot *s = NULL;
    char msg[128];

    if (*idtext == '\0')
        return answer_error(conn, MHD_HTTP_NOT_FOUND, "a run id is needed "
                            "after /runs/: the id that POST /runs?async=1 "
                            "answered");
    if (parse_run_id(idtext, &id) == 0)
        s = &srv->slots[id % srv->cfg->keep_results];
    if (!s || s->id != id) {
        snprintf(msg, sizeof(msg), "no run with id %.*s is known",
                 quote_len(idtext, 40), idtext);
        return answer_error(conn, MHD_HTTP_NOT_FOUND, msg);
    }
    if (s->dropped)
        return answer_gone(srv, conn, id);
    if (!s->done) {
        char *doc = NULL;
        int n = asprintf(&doc, "{\"id\":\"%llu\",\"state\":\"running\"}",
                         (unsigned long long)id);
        if (n < 0)
            return MHD_NO;
        return answer_json(conn, MHD_HTTP_ACCEPTED, doc, (size_t)n);
    }
    if (!s->resp)
        return answer_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "the run produced no result");
    return MHD_queue_response(conn, MHD_HTTP_OK, s->resp);
}

/* ---- fixed routes ------------------------------------------------- */

static enum MHD_Result get_metrics(server *srv, struct MHD_Connection *conn)
{
    engine_stats st;
    char *doc = NULL;
    int n;

    engine_get_stats(srv->e, &st);
    n = asprintf(&doc,
        "# HELP astermule_runs_started_total Runs started.\n"
        "# TYPE astermule_runs_started_total counter\n"
        "astermule_runs_started_total %llu\n"
        "# HELP astermule_runs_total Runs ended, by health.\n"
        "# TYPE astermule_runs_total counter\n"
        "astermule_runs_total{health=\"true\"} %llu\n"
        "astermule_runs_total{health=\"false\"} %llu\n"
        "# HELP astermule_runs_refused_total Runs the engine refused.\n"
        "# TYPE astermule_runs_refused_total counter\n"
        "astermule_runs_refused_total %llu\n"
        "# HELP astermule_triggers_rejected_total Triggers answered with "
        "an error, by reason.\n"
        "# TYPE astermule_triggers_rejected_total counter\n"
        "astermule_triggers_rejected_total{reason=\"%s\"} %llu\n"
        "astermule_triggers_rejected_total{reason=\"%s\"} %llu\n"
        "astermule_triggers_rejected_total{reason=\"%s\"} %llu\n"
        "astermule_triggers_rejected_total{reason=\"%s\"} %llu\n"
        "# HELP astermule_runs_in_flight Runs queued or running.\n"
        "# TYPE astermule_runs_in_flight gauge\n"
        "astermule_runs_in_flight %llu\n"
        "# HELP astermule_node_calls_total HTTP attempts made by nodes.\n"
        "# TYPE astermule_node_calls_total counter\n"
        "astermule_node_calls_total %llu\n"
        "# HELP astermule_node_call_failures_total Attempts that failed.\n"
        "# TYPE astermule_node_call_failures_total counter\n"
        "astermule_node_call_failures_total %llu\n"
        "# HELP astermule_node_retries_total Retries scheduled.\n"
        "# TYPE astermule_node_retries_total counter\n"
        "astermule_node_retries_total %llu\n"
        "# HELP astermule_workflow_nodes Nodes in the served workflow.\n"
        "# TYPE astermule_workflow_nodes gauge\n"
        "astermule_workflow_nodes %zu\n",
        (unsigned long long)st.runs_started,
        (unsigned long long)st.runs_healthy,
        (unsigned long long)st.runs_unhealthy,
        (unsigned long long)st.runs_refused,
        reject_names[REJECT_BAD_BODY],
        (unsigned long long)srv->rejected[REJECT_BAD_BODY],
        reject_names[REJECT_TOO_LARGE],
        (unsigned long long)srv->rejected[REJECT_TOO_LARGE],
        reject_names[REJECT_OVERLOADED],
        (unsigned long long)srv->rejected[REJECT_OVERLOADED],
        reject_names[REJECT_BAD_REQUEST],
        (unsigned long long)srv->rejected[REJECT_BAD_REQUEST],
        (unsigned long long)st.runs_inflight,
        (unsigned long long)st.calls,
        (unsigned long long)st.call_failures,
        (unsigned long long)st.retries, srv->wf->n_nodes);
    if (n < 0)
        return MHD_NO;
    return answer(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", doc,
                  (size_t)n, 1);
}

/* The fixed routes, which take precedence over the target. */
static const struct fixed_route {
    const char *path; /* matched exactly, or as a prefix if it ends in / */
    route_kind kind;
    int post;         /* takes POST only; otherwise GET and HEAD */
} fixed_routes[] = {
    {"/healthz", ROUTE_HEALTHZ, 0},
    {"/readyz", ROUTE_READYZ, 0},
    {"/metrics", ROUTE_METRICS, 0},
    {"/runs", ROUTE_RUNS, 1},
    {"/runs/", ROUTE_RUN, 0},
};

/* The path of an absolute-form request target (RFC 9112 section 3.2.2),
 * "http://authority/path", is "/path", and "/" when empty: a client
 * talking to us as to a proxy means the same resource. Any other url is
 * its own path. */
static const char *origin_path(const char *url)
{
    size_t skip;

    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return url;

    const char *path = strchr(url + skip, '/');

    return path ? path : "/";
}

static int is_target(const server *srv, const char *path)
{
    const char *t = srv->cfg->target;

    if (strcmp(path, t) == 0)
        return 1;
    return srv->target_subtree && strncmp(path, t, srv->target_len) == 0;
}

/* Sets q's route from its path and method, once its headers are in. A
 * fixed route asked with another method keeps its methods in q->allow,
 * for the 405. */
static void route_request(server *srv, req *q, const char *path,
                          const char *method)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int post = strcmp(method, "POST") == 0;
    size_t n = sizeof(fixed_routes) / sizeof(fixed_routes[0]);

    for (size_t k = 0; k < n; k++) {
        const struct fixed_route *f = &fixed_routes[k];
        size_t len = strlen(f->path);
        int prefix = f->path[len - 1] == '/';

        if (prefix ? strncmp(path, f->path, len) != 0
                   : strcmp(path, f->path) != 0)
            continue;
        q->route = f->kind;
        if (f->post ? !post : !get)
            q->allow = f->post ? "POST" : "GET, HEAD";
        return;
    }
    q->route = is_target(srv, path) ? ROUTE_TARGET : ROUTE_NONE;
}

/* 1 when q would start a run: only then is its body kept. */
static int is_trigger(const req *q)
{
    return q->route == ROUTE_TARGET || (q->route == ROUTE_RUNS && !q->allow);
}

/* The length a trigger declares for its body (Content-Length), or 0; SIZE_MAX
 * for one past what a number holds. */
static size_t declared_length(const req *q)
{
    const char *cl = MHD_lookup_connection_value(
        q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n;
    char *end;

    if (!cl || !is_trigger(q))
        return 0;
    errno = 0;
    n = strtoull(cl, &end, 10);
    if (end == cl || *end != '\0')
        return 0;
    return errno == ERANGE || n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

/* 1 when q, a trigger, declares a body (Content-Length) over the limit:
 * it can be refused before a byte of it is read. */
static int declared_too_big(const server *srv, const req *q)
{
    return declared_length(q) > srv->cfg->max_request_bytes;
}

/* 405 for a fixed route asked with a method it does not take. */
static enum MHD_Result not_allowed(server *srv, req *q, const char *path,
                                   const char *method)
{
    char msg[256];

    srv->rejected[REJECT_BAD_REQUEST]++;
    snprintf(msg, sizeof(msg), "%.*s takes %s, not %.*s",
             quote_len(path, 200), path, q->allow, quote_len(method, 20),
             method);
    return answer_error_allow(q->conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                              q->allow, msg);
}

/* Answers q once its body is in, by its route. */
static enum MHD_Result dispatch(server *srv, req *q, const char *path,
                                const char *method)
{
    struct MHD_Connection *conn = q->conn;
    char msg[256];
    int async;

    if (q->allow)
        return not_allowed(srv, q, path, method);

    switch (q->route) {
    case ROUTE_HEALTHZ:
        return answer(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3, 0);
    case ROUTE_READYZ:
        if (srv->stopping)
            return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                          "stopping\n", 9, 0);
        return answer(conn, MHD_HTTP_OK, "text/plain", "ready\n", 6, 0);
    case ROUTE_METRICS:
        if (srv->stopping)
            return answer_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "astermule is stopping");
        return get_metrics(srv, conn);
    case ROUTE_RUNS:
        if (parse_async(conn, &async, msg, sizeof(msg)) < 0)
            return reject(srv, conn, REJECT_BAD_REQUEST,
                          MHD_HTTP_BAD_REQUEST, msg);

        /* A key names an async run to answer for later; on a run the
         * caller waits for it would be ignored, silently. */
        if (!async && MHD_lookup_connection_value_n(
                          conn, MHD_GET_ARGUMENT_KIND, "key", 3, NULL,
                          NULL) == MHD_YES)
            return reject(srv, conn, REJECT_BAD_REQUEST,
                          MHD_HTTP_BAD_REQUEST, "query parameter key: "
                          "applies to async runs only; add async=1");
        return start_run(srv, q, async);
    case ROUTE_RUN:
        return get_run(srv, conn, path + 6);
    case ROUTE_TARGET:
        return start_run(srv, q, 0);
    case ROUTE_NONE:
        break;
    }
    snprintf(msg, sizeof(msg), "nothing is served at %.*s %.*s",
             quote_len(method, 20), method, quote_len(path, 200), path);
    return answer_error(conn, MHD_HTTP_NOT_FOUND, msg);
}

/* ---- libmicrohttpd callbacks -------------------------------------- */

/* Keeps n more bytes of q's body, unless they pass a limit: the rest of
 * the body is then read and dropped, and the request refused once it is
 * in. Returns -1 only when out of memory. */
static int body_append(server *srv, req *q, const char *data, size_t n)
{
    if (q->too_big || q->over_pending)
        return 0;
    if (n > srv->cfg->max_request_bytes - q->len) {
        q->too_big = 1;
        body_release(srv, q);
        return 0;
    }
    if (q->len + n > q->reserved &&
        pending_reserve(srv, q, q->len + n - q->reserved) < 0) {
        size_t had = q->len + n;

        body_release(srv, q);
        q->over_pending = 1;
        q->len = had; /* for the message: what the body needs so far */
        return 0;
    }
    if (q->len + n + 1 > q->cap) {
        /* A declared length is reserved whole: one allocation. */
        size_t cap = q->cap ? q->cap : q->reserved >= 256 ? q->reserved + 1
                                                         : 256;

        while (cap < q->len + n + 1)
            cap *= 2;

        char *b = realloc(q->body, cap);

        if (!b)
            return -1;
        q->body = b;
        q->cap = cap;
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
    q->body[q->len] = '\0';
    return 0;
}

/* The first call for a request: its headers are in, its body not yet.
 * Routes it, and refuses at once a trigger whose declared body is over
 * a limit, rather than wait for bytes it would throw away. */
static enum MHD_Result on_headers(server *srv, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  void **con_cls)
{
    req *q = calloc(1, sizeof(*q));
    char msg[160];

    if (!q)
        return MHD_NO;
    q->srv = srv;
    q->conn = conn;
    *con_cls = q;
    srv->open_requests++;
    route_request(srv, q, origin_path(url), method);

    /* libmicrohttpd sends an answer queued this early, then closes the
     * connection without reading the body. */
    if (declared_too_big(srv, q)) {
        const char *cl = MHD_lookup_connection_value(
            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

        snprintf(msg, sizeof(msg), "the request body (Content-Length "
                 "%.*s) exceeds the limit of %zu bytes "
                 "(--max-request-bytes)", quote_len(cl, 24), cl,
                 srv->cfg->max_request_bytes);
        return reject(srv, conn, REJECT_TOO_LARGE,
                      MHD_HTTP_CONTENT_TOO_LARGE, msg);
    }

    size_t need = declared_length(q);

    if (need && pending_reserve(srv, q, need) < 0)
        return reject_pending(srv, q, need);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    server *srv = cls;
    req *q = *con_cls;

    if (!q)
        return on_headers(srv, conn, url, method, con_cls);

    if (q->state == REQ_DONE) {
        char *doc = q->answer;

        q->answer = NULL;
        if (!doc)
            return answer_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "the run produced no result");
        return answer_json(conn, q->status, doc, q->answer_len);
    }

    /* Only a trigger's body is kept; any other route's is read and
     * dropped. */
    if (*upload_size > 0) {
        if (is_trigger(q) &&
            body_append(srv, q, upload_data, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }

    srv->requests++;
    return dispatch(srv, q, origin_path(url), method);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    server *srv = cls;
    req *q = *con_cls;

    if (!q)
        return;
    body_release(srv, q);
    free(q->answer);
    free(q);
    srv->open_requests--;
    *con_cls = NULL;
}

/* libmicrohttpd's messages that mean the server itself cannot work:
 * binding, listening, accepting, its epoll set, running out of
 * descriptors or connections. They stay at warn. Everything else it says
 * is about one connection, mostly a client that went away (one line per
 * disconnect, naming neither peer nor run), and goes to debug. The match
 * is on the English format text, which may change between versions of
 * the library: a message it misses only drops to debug, and a server that
 * cannot listen is reported by daemon_start() anyway. */
static const char *const mhd_fatal_words[] = {
    "bind", "listen", "accept", "epoll", "resource limit",
    "connection limit", "inter-thread communication",
};

/* The format comes from libmicrohttpd, which passes its arguments. */
__attribute__((format(printf, 2, 0))) static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    size_t n = sizeof(mhd_fatal_words) / sizeof(mhd_fatal_words[0]);
    log_level lvl = LOG_DEBUG;
    char line[512];

    for (size_t k = 0; k < n && lvl == LOG_DEBUG; k++) {
        if (strcasestr(fmt, mhd_fatal_words[k]))
            lvl = LOG_WARN;
    }
    if (!log_enabled(lvl))
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_msg(lvl, "http", "%s", line);
}

/* ---- set-up and the loop ------------------------------------------ */

static struct MHD_Daemon *daemon_start(server *srv, char *err,
                                       size_t errlen)
{
    const am_config *cfg = srv->cfg;
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr *sa;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;

    if (inet_pton(AF_INET, cfg->address, &in4.sin_addr) == 1) {
        in4.sin_port = htons((uint16_t)cfg->port);
        sa = (struct sockaddr *)&in4;
    } else if (inet_pton(AF_INET6, cfg->address, &in6.sin6_addr) == 1) {
        in6.sin6_port = htons((uint16_t)cfg->port);
        sa = (struct sockaddr *)&in6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--address %s is not an IPv4 or IPv6 address",
                 cfg->address);
        return NULL;
    }

    /* The connection timeout closes connections idle that long, half a
     * request header included; suspended ones (a run in flight) are
     * exempt until resumed. */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)AM_CONN_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_END);

    if (!d)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->address,
                 cfg->port, errno ? strerror(errno) : "unknown reason");
    return d;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Open client connections, as libmicrohttpd counts them. */
static unsigned open_connections(const server *srv)
{
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

    return i ? i->num_connections : 0;
}

/* One pass of libmicrohttpd. At --max-connections it takes the listen
 * socket out of its epoll set, and puts it back only in the pass after
 * the one that closed a connection: with no other traffic to cause that
 * pass, clients waiting to be accepted would wait for good. So a pass
 * that closed connections is followed by another at once. */
static void mhd_pass(server *srv)
{
    unsigned before = open_connections(srv);

    MHD_run(srv->d);
    if (open_connections(srv) < before)
        MHD_run(srv->d);
}

/* Runs until a signal arrives on sigfd. libmicrohttpd gets a pass at
 * least once a second whatever happens, so that nothing it keeps to
 * itself can stall the server for longer. */
static void serve_loop(server *srv, int sig_slot, int mhd_slot)
{
    for (;;) {
        MHD_UNSIGNED_LONG_LONG mhd_ms = 1000;
        uint64_t due;

        /* libmicrohttpd has work of its own at due: a connection timing
         * out, or data it already read (then due is now). */
        if (MHD_get_timeout(srv->d, &mhd_ms) != MHD_YES || mhd_ms > 1000)
            mhd_ms = 1000;
        due = now_ms() + mhd_ms;

        engine_step(srv->e, (int)mhd_ms);
        if (engine_fd_ready(srv->e, sig_slot))
            return;

        /* A run that ended resumed its connection. libmicrohttpd learns
         * of it only inside MHD_run(), and its wake-up is not seen by our
         * epoll in external mode, so run it now rather than wait for
         * unrelated traffic. */
        if (engine_fd_ready(srv->e, mhd_slot) || srv->resumed ||
            now_ms() >= due) {
            srv->resumed = 0;
            mhd_pass(srv);
        }
    }
}

/* After a stop: sends the answers still queued, the results of the runs
 * the stop ended among them, for up to AM_DRAIN_MS. A result of many
 * megabytes to a slow client takes many passes, and the engine is gone,
 * so this waits on libmicrohttpd's own epoll fd. */
static void drain(server *srv, int mhd_fd)
{
    uint64_t end = now_ms() + AM_DRAIN_MS;

    srv->stopping = 1;
    MHD_run(srv->d);
    while (srv->open_requests > 0 && now_ms() < end) {
        MHD_UNSIGNED_LONG_LONG mhd_ms = 100;
        struct pollfd pfd = {.fd = mhd_fd, .events = POLLIN};
        uint64_t left = end - now_ms();

        if (MHD_get_timeout(srv->d, &mhd_ms) != MHD_YES || mhd_ms > 100)
            mhd_ms = 100;
        poll(&pfd, 1, (int)(mhd_ms < left ? mhd_ms : left));
        MHD_run(srv->d);
    }
    if (srv->open_requests > 0)
        log_msg(LOG_WARN, SUBSYS, "%zu answers were not sent in full "
                "within %d ms of the stop", srv->open_requests,
                AM_DRAIN_MS);
}

int am_serve(const am_config *cfg, const wf_workflow *wf)
{
    server srv = {.cfg = cfg, .wf = wf};
    const union MHD_DaemonInfo *info = NULL;
    char err[256];
    int rc = 1, sigfd = -1;
    sigset_t sigs;

    srv.target_len = strlen(cfg->target);
    srv.target_subtree = srv.target_len > 1 &&
                         cfg->target[srv.target_len - 1] == '/';
    if (strcmp(cfg->target, "/") == 0)
        srv.target_subtree = 1;

    srv.slots = calloc(cfg->keep_results, sizeof(*srv.slots));
    srv.e = engine_new(&cfg->engine, err, sizeof(err));
    if (!srv.slots || !srv.e) {
        log_msg(LOG_ERROR, SUBSYS, "cannot start the engine: %s",
                srv.e ? "out of memory" : err);
        goto out;
    }

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) {
        log_msg(LOG_ERROR, SUBSYS, "signalfd: %s", strerror(errno));
        goto out;
    }

    srv.d = daemon_start(&srv, err, sizeof(err));
    if (!srv.d) {
        log_msg(LOG_ERROR, SUBSYS, "%s", err);
        goto out;
    }

    info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port =
        MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    int sig_slot = engine_watch_fd(srv.e, sigfd);
    int mhd_slot = info ? engine_watch_fd(srv.e, info->epoll_fd) : -1;

    if (sig_slot < 0 || mhd_slot < 0) {
        log_msg(LOG_ERROR, SUBSYS, "cannot wait on the server sockets");
        goto out;
    }

    /* An IPv6 address goes in brackets, as in a URL. */
    int v6 = strchr(cfg->address, ':') != NULL;

    printf("listening on %s%s%s:%u\n", v6 ? "[" : "", cfg->address,
           v6 ? "]" : "", port ? (unsigned)port->port : (unsigned)cfg->port);
    fflush(stdout);
    log_msg(LOG_INFO, SUBSYS, "serving a workflow of %zu nodes on %s:%u, "
            "target %s", wf->n_nodes, cfg->address,
            port ? (unsigned)port->port : (unsigned)cfg->port, cfg->target);

    serve_loop(&srv, sig_slot, mhd_slot);
    log_msg(LOG_INFO, SUBSYS, "stopping on signal; runs in flight end now");
    rc = 0;

out:
    /* Runs still in flight end here: their callbacks store a result and
     * resume their connections, whose answers are sent before the
     * daemon closes them. */
    if (srv.d) {
        MHD_socket lfd = MHD_quiesce_daemon(srv.d);

        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
    }
    engine_free(srv.e);
    srv.e = NULL;
    if (srv.d) {
        if (info)
            drain(&srv, info->epoll_fd);
        MHD_stop_daemon(srv.d);
    }
    if (srv.slots) {
        for (size_t k = 0; k < cfg->keep_results; k++) {
            result_forget(&srv, &srv.slots[k]);
            free(srv.slots[k].key);
        }
        free(srv.slots);
    }
    if (sigfd >= 0)
        close(sigfd);
    return rc;
}
