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
 *   GET /runs/<id>    202 while running, 200 with the result, 404 unknown
 *   GET /healthz, GET /readyz, GET /metrics (Prometheus text)
 * A target ending in '/' also matches every path below it, as the
 * original engine's router did; the fixed routes above take precedence.
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
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"

#define SUBSYS "server"

typedef enum req_state {
    REQ_READING = 0, /* body still arriving */
    REQ_RUNNING,     /* suspended, waiting for the run */
    REQ_DONE,        /* result ready, resumed */
} req_state;

/* Per-request state, owned by the connection (freed on completion). */
typedef struct req {
    struct server *srv;
    struct MHD_Connection *conn;
    req_state state;
    char *body;
    size_t len;
    size_t cap;
    int too_big;
    unsigned status; /* answer status once REQ_DONE */
    char *answer;    /* JSON document once REQ_DONE */
    size_t answer_len;
} req;

/* An asynchronous run's slot; slot = id % keep_results. */
typedef struct slot {
    uint64_t id; /* 0: empty */
    int done;
    char *doc;
    size_t len;
    char *key;   /* the caller's idempotency key, or NULL */
} slot;

/* Memory of one client connection, its request headers included: a
 * trigger's headers are small, and libmicrohttpd's 32 KiB default is
 * zeroed for every request and held by every open connection. Headers
 * past about 7 KiB get 431. */
#define AM_CONN_MEMORY 8192

/* Longest idempotency key accepted. */
#define MAX_KEY_LEN 253

typedef struct server {
    const am_config *cfg;
    const wf_workflow *wf;
    engine *e;
    struct MHD_Daemon *d;
    slot *slots;
    size_t target_len;
    int target_subtree;
    int resumed; /* a connection was resumed since the last MHD_run */
    uint64_t requests;
} server;

/* ---- answers ------------------------------------------------------ */

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *type, char *body, size_t len,
                              int must_free)
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
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result answer_json(struct MHD_Connection *conn,
                                   unsigned status, char *doc, size_t len)
{
    return answer(conn, status, "application/json", doc, len, 1);
}

/* {"error": msg} with the given status. */
static enum MHD_Result answer_error(struct MHD_Connection *conn,
                                    unsigned status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *doc;

    cJSON_AddStringToObject(o, "error", msg);
    doc = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!doc)
        return MHD_NO;
    return answer_json(conn, status, doc, strlen(doc));
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
    if (s->id != a->id) {
        free(doc);
    } else {
        s->doc = doc;
        s->len = len;
        s->done = 1;
    }
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

/* An idempotency key: 1 to MAX_KEY_LEN printable ASCII characters. */
static int check_key(const char *key, char *err, size_t errlen)
{
    size_t n = strlen(key);

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

/* Checks the trigger body: empty, or a JSON object. Returns NULL when it
 * is fine, else the reason. */
static const char *check_input(const req *q)
{
    size_t k = 0;

    while (k < q->len && strchr(" \t\r\n", q->body[k]))
        k++;
    if (k == q->len)
        return NULL;

    cJSON *v = cJSON_ParseWithLength(q->body, q->len);
    int ok = v && cJSON_IsObject(v);

    cJSON_Delete(v);
    return ok ? NULL : "the request body is not a JSON object";
}

static enum MHD_Result start_run(server *srv, req *q, int async)
{
    char err[256];
    const char *bad = check_input(q);
    uint64_t id = 0;
    int blank = bad == NULL && q->len > 0;

    if (q->too_big) {
        snprintf(err, sizeof(err), "the request body exceeds %zu bytes",
                 srv->cfg->max_request_bytes);
        return answer_error(q->conn, MHD_HTTP_CONTENT_TOO_LARGE, err);
    }
    if (bad)
        return answer_error(q->conn, MHD_HTTP_BAD_REQUEST, bad);

    /* A body of only blanks is the empty input. */
    for (size_t k = 0; blank && k < q->len; k++)
        blank = strchr(" \t\r\n", q->body[k]) != NULL;
    size_t len = blank ? 0 : q->len;

    if (async) {
        const char *key = MHD_lookup_connection_value(
            q->conn, MHD_GET_ARGUMENT_KIND, "key");
        slot *same = NULL;

        if (key && check_key(key, err, sizeof(err)) < 0)
            return answer_error(q->conn, MHD_HTTP_BAD_REQUEST, err);

        /* A key seen before names the run it started: answer with that
         * run rather than start a second one. */
        if (key)
            same = find_key(srv, key);
        if (same && same->done)
            return answer(q->conn, MHD_HTTP_OK, "application/json",
                          same->doc, same->len, 0);
        if (same)
            return answer_accepted(q->conn, same->id);

        async_run *a = calloc(1, sizeof(*a));

        if (!a)
            return MHD_NO;
        a->srv = srv;

        /* The run cannot end before this returns: it ends on this very
         * thread, in a later pass of the loop. */
        if (engine_submit(srv->e, srv->wf, q->body, len, on_async_done, a,
                          &id, err, sizeof(err)) != 0) {
            free(a);
            return answer_error(q->conn, MHD_HTTP_SERVICE_UNAVAILABLE, err);
        }
        a->id = id;

        slot *s = &srv->slots[id % srv->cfg->keep_results];

        free(s->doc);
        free(s->key);
        *s = (slot){.id = id, .key = key ? strdup(key) : NULL};
        return answer_accepted(q->conn, id);
    }

    /* Suspend before submitting: the run may end before this returns. */
    q->state = REQ_RUNNING;
    MHD_suspend_connection(q->conn);
    if (engine_submit(srv->e, srv->wf, q->body, len, on_run_done, q, &id,
                      err, sizeof(err)) != 0) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "error", err);
        q->answer = cJSON_PrintUnformatted(o);
        q->answer_len = q->answer ? strlen(q->answer) : 0;
        cJSON_Delete(o);
        q->status = MHD_HTTP_SERVICE_UNAVAILABLE;
        q->state = REQ_DONE;
        MHD_resume_connection(q->conn);
    }
    return MHD_YES;
}

static enum MHD_Result get_run(server *srv, struct MHD_Connection *conn,
                               const char *idtext)
{
    char *end;
    unsigned long long id = strtoull(idtext, &end, 10);
    slot *s = &srv->slots[id % srv->cfg->keep_results];
    char msg[128];

    if (*idtext == '\0' || *end != '\0' || id == 0 || s->id != id) {
        snprintf(msg, sizeof(msg), "no run with id %.40s is known", idtext);
        return answer_error(conn, MHD_HTTP_NOT_FOUND, msg);
    }
    if (!s->done) {
        char *doc = NULL;
        int n = asprintf(&doc, "{\"id\":\"%llu\",\"state\":\"running\"}",
                         id);
        if (n < 0)
            return MHD_NO;
        return answer_json(conn, MHD_HTTP_ACCEPTED, doc, (size_t)n);
    }
    return answer(conn, MHD_HTTP_OK, "application/json", s->doc, s->len, 0);
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
        "# HELP astermule_runs_refused_total Triggers refused.\n"
        "# TYPE astermule_runs_refused_total counter\n"
        "astermule_runs_refused_total %llu\n"
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
        (unsigned long long)st.runs_inflight,
        (unsigned long long)st.calls,
        (unsigned long long)st.call_failures,
        (unsigned long long)st.retries, srv->wf->n_nodes);
    if (n < 0)
        return MHD_NO;
    return answer(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", doc,
                  (size_t)n, 1);
}

static int is_target(const server *srv, const char *url)
{
    const char *t = srv->cfg->target;

    if (strcmp(url, t) == 0)
        return 1;
    return srv->target_subtree && strncmp(url, t, srv->target_len) == 0;
}

/* Returns 1 and sets *r when url is one of the fixed routes. */
static int fixed_route(server *srv, req *q, const char *url,
                       const char *method, enum MHD_Result *r)
{
    struct MHD_Connection *conn = q->conn;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    if (strcmp(url, "/healthz") == 0 && get) {
        *r = answer(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3, 0);
    } else if (strcmp(url, "/readyz") == 0 && get) {
        *r = answer(conn, MHD_HTTP_OK, "text/plain", "ready\n", 6, 0);
    } else if (strcmp(url, "/metrics") == 0 && get) {
        *r = get_metrics(srv, conn);
    } else if (strcmp(url, "/runs") == 0 && strcmp(method, "POST") == 0) {
        const char *a = MHD_lookup_connection_value(
            conn, MHD_GET_ARGUMENT_KIND, "async");
        int async = a && (strcmp(a, "1") == 0 || strcmp(a, "true") == 0);

        *r = start_run(srv, q, async);
    } else if (strncmp(url, "/runs/", 6) == 0 && get) {
        *r = get_run(srv, conn, url + 6);
    } else {
        return 0;
    }
    return 1;
}

/* ---- libmicrohttpd callbacks -------------------------------------- */

static int body_append(server *srv, req *q, const char *data, size_t n)
{
    if (q->too_big || n > srv->cfg->max_request_bytes - q->len) {
        q->too_big = 1;
        return 0;
    }
    if (q->len + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 256;

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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    server *srv = cls;
    req *q = *con_cls;
    enum MHD_Result r;
    char msg[256];

    if (!q) {
        q = calloc(1, sizeof(*q));
        if (!q)
            return MHD_NO;
        q->srv = srv;
        q->conn = conn;
        *con_cls = q;
        return MHD_YES;
    }

    if (q->state == REQ_DONE) {
        char *doc = q->answer;

        q->answer = NULL;
        if (!doc)
            return answer_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "the run produced no result");
        return answer_json(conn, q->status, doc, q->answer_len);
    }

    if (*upload_size > 0) {
        if (body_append(srv, q, upload_data, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }

    srv->requests++;
    if (fixed_route(srv, q, url, method, &r))
        return r;
    if (is_target(srv, url))
        return start_run(srv, q, 0);

    snprintf(msg, sizeof(msg), "nothing is served at %s %.200s", method, url);
    return answer_error(conn, MHD_HTTP_NOT_FOUND, msg);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    req *q = *con_cls;

    if (!q)
        return;
    free(q->body);
    free(q->answer);
    free(q);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_msg(LOG_WARN, "http", "%s", line);
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

    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)AM_CONN_MEMORY,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_END);

    if (!d)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->address,
                 cfg->port, errno ? strerror(errno) : "unknown reason");
    return d;
}

/* Runs until a signal arrives on sigfd. */
static void serve_loop(server *srv, int sig_slot, int mhd_slot)
{
    for (;;) {
        MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
        int wait_ms = -1;

        if (MHD_get_timeout(srv->d, &mhd_ms) == MHD_YES)
            wait_ms = mhd_ms > 1000 ? 1000 : (int)mhd_ms;

        engine_step(srv->e, wait_ms);
        if (engine_fd_ready(srv->e, sig_slot))
            return;

        /* A run that ended resumed its connection. libmicrohttpd learns
         * of it only inside MHD_run(), and its wake-up is not seen by our
         * epoll in external mode, so run it now rather than wait for
         * unrelated traffic. */
        if (engine_fd_ready(srv->e, mhd_slot) || wait_ms >= 0 ||
            srv->resumed) {
            srv->resumed = 0;
            MHD_run(srv->d);
        }
    }
}

int am_serve(const am_config *cfg, const wf_workflow *wf)
{
    server srv = {.cfg = cfg, .wf = wf};
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

    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *port =
        MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    int sig_slot = engine_watch_fd(srv.e, sigfd);
    int mhd_slot = info ? engine_watch_fd(srv.e, info->epoll_fd) : -1;

    if (sig_slot < 0 || mhd_slot < 0) {
        log_msg(LOG_ERROR, SUBSYS, "cannot wait on the server sockets");
        goto out;
    }

    printf("listening on %s:%u\n", cfg->address,
           port ? (unsigned)port->port : (unsigned)cfg->port);
    fflush(stdout);
    log_msg(LOG_INFO, SUBSYS, "serving a workflow of %zu nodes on %s:%u, "
            "target %s", wf->n_nodes, cfg->address,
            port ? (unsigned)port->port : (unsigned)cfg->port, cfg->target);

    serve_loop(&srv, sig_slot, mhd_slot);
    log_msg(LOG_INFO, SUBSYS, "stopping on signal; runs in flight end now");
    rc = 0;

out:
    /* Runs still in flight end here: their callbacks store a result and
     * resume their connections before the daemon closes them. */
    if (srv.d)
        MHD_quiesce_daemon(srv.d);
    engine_free(srv.e);
    if (srv.d) {
        MHD_run(srv.d);
        MHD_stop_daemon(srv.d);
    }
    if (srv.slots) {
        for (size_t k = 0; k < cfg->keep_results; k++) {
            free(srv.slots[k].doc);
            free(srv.slots[k].key);
        }
        free(srv.slots);
    }
    if (sigfd >= 0)
        close(sigfd);
    return rc;
}
