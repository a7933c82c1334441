/*
 * The HTTP front: routing, content negotiation, authentication, watch
 * streaming and fault injection on top of the store.
 */
#include "apisrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "status.h"
#include "tlsgen.h"
#include "util.h"
#include "yamljson.h"

#define MAX_BODY (3 * 1024 * 1024)
#define MAX_SEGS 12
#define WATCH_POLL_MS 1000
#define STOP_DRAIN_MS 2000
#define CT_JSON "application/json"
#define CT_TABLE "application/json;as=Table;v=v1;g=meta.k8s.io"

struct apisrv {
    struct MHD_Daemon *daemon;
    store *st;
    apisrv_config cfg;
    int port;
    char url[96];
    char *token;
    tlsgen_pems pems;
    int stopping;
    int watches;                  /* open watch streams (atomic) */
    pthread_mutex_t fmu;          /* guards faults and conflicted */
    apisrv_faults faults;
    cluster *cl;                  /* the simulated cluster or NULL */
    char **conflicted;            /* objects that already got their 409 */
    int nconflicted;
};

/* Per-request state: the body collected so far. */
typedef struct req_ctx {
    char *body;
    size_t len, cap;
    int too_big;
} req_ctx;

/* One parsed request, handed to the route handlers. */
typedef struct request {
    apisrv *srv;
    struct MHD_Connection *conn;
    const char *method;
    req_ctx *rc;
    char *segs[MAX_SEGS];
    int nsegs;
    char path_buf[2048];
} request;

typedef struct watch_ctx {
    apisrv *srv;
    store_watch *w;
    char *group, *version, *resource;
    int table, headers_sent, include;
    int bookmarks;
    long long deadline_ms;       /* 0: none */
    long long next_bookmark_ms;
    int drop_every, sent;
    int ending;                  /* send what is buffered, then end */
    int fd;
    char *buf;
    size_t len, off;
} watch_ctx;

static void slog(apisrv *srv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void slog(apisrv *srv, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!srv->cfg.log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    srv->cfg.log(level, msg, srv->cfg.log_ud);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- responses ---- */

static enum MHD_Result send_text(struct MHD_Connection *c, int code,
                                 const char *ctype, char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), text, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-cache, private");
    ret = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends doc (consumed) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *c, int code,
                                 cJSON *doc, const char *ctype)
{
    char *text = cJSON_PrintUnformatted(doc);

    cJSON_Delete(doc);
    if (!text)
        return MHD_NO;
    return send_text(c, code, ctype ? ctype : CT_JSON, text);
}

static enum MHD_Result send_status(struct MHD_Connection *c, int code,
                                   const char *reason, const char *msg)
{
    return send_json(c, code, status_new(code, reason, "%s", msg), NULL);
}

static enum MHD_Result send_err(struct MHD_Connection *c, store_err *err)
{
    cJSON *st = err->status;
    int code = err->code ? err->code : 500;

    err->status = NULL;
    if (!st)
        st = status_new(code, "InternalError", "internal error");
    return send_json(c, code, st, NULL);
}

static enum MHD_Result send_not_found(struct MHD_Connection *c)
{
    return send_status(c, 404, "NotFound",
                       "the server could not find the requested resource");
}

/* ---- request helpers ---- */

static const char *arg(const request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}

static const char *header(const request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

static int arg_true(const request *rq, const char *name)
{
    const char *v = arg(rq, name);

    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static int wants_table(const request *rq)
{
    const char *a = header(rq, "Accept");

    return a && strstr(a, "as=Table") != NULL;
}

/* The request body as JSON; YAML is accepted when labelled as such. */
static cJSON *parse_body(const request *rq)
{
    const char *ct = header(rq, "Content-Type");
    cJSON *body;
    char err[256];

    if (!rq->rc->body || rq->rc->len == 0)
        return NULL;
    body = cJSON_ParseWithLength(rq->rc->body, rq->rc->len);
    if (!body && ct && strstr(ct, "yaml"))
        body = yamljson_parse(rq->rc->body, rq->rc->len, err, sizeof(err));
    return body;
}

static int split_path(request *rq, const char *url)
{
    char *save = NULL, *tok;

    snprintf(rq->path_buf, sizeof(rq->path_buf), "%s", url);
    rq->nsegs = 0;
    for (tok = strtok_r(rq->path_buf, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (rq->nsegs == MAX_SEGS)
            return -1;
        rq->segs[rq->nsegs++] = tok;
    }
    return 0;
}

/* ---- faults ---- */

void apisrv_set_faults(apisrv *srv, const apisrv_faults *f)
{
    pthread_mutex_lock(&srv->fmu);
    srv->faults = *f;
    pthread_mutex_unlock(&srv->fmu);
}

void apisrv_get_faults(apisrv *srv, apisrv_faults *f)
{
    pthread_mutex_lock(&srv->fmu);
    *f = srv->faults;
    pthread_mutex_unlock(&srv->fmu);
}

static const struct {
    const char *name;
    size_t off;
} fault_fields[] = {
    {"watchDropEvery", offsetof(apisrv_faults, watch_drop_every)},
    {"force410", offsetof(apisrv_faults, force_410)},
    {"watch410Http", offsetof(apisrv_faults, watch_410_http)},
    {"conflictFirstUpdate", offsetof(apisrv_faults, conflict_first_update)},
    {"errorPermille", offsetof(apisrv_faults, error_permille)},
    {"errorCode", offsetof(apisrv_faults, error_code)},
    {"retryAfter", offsetof(apisrv_faults, retry_after)},
    {"latencyMs", offsetof(apisrv_faults, latency_ms)},
    {"podStartDelayMs", offsetof(apisrv_faults, pod_start_delay_ms)},
};

#define NFAULT_FIELDS (sizeof(fault_fields) / sizeof(fault_fields[0]))

static cJSON *faults_json(const apisrv_faults *f)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < NFAULT_FIELDS; i++)
        cJSON_AddNumberToObject(o, fault_fields[i].name,
                                *(const int *)((const char *)f +
                                               fault_fields[i].off));
    cJSON_AddStringToObject(o, "pullFailImage", f->pull_fail_image);
    cJSON_AddStringToObject(o, "crashLoopImage", f->crash_loop_image);
    return o;
}

static void fault_string(char *dst, size_t len, const cJSON *o,
                         const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (cJSON_IsString(v))
        snprintf(dst, len, "%s", v->valuestring);
    else if (cJSON_IsNull(v))
        dst[0] = '\0';
}

/* The cluster's view of the faults. */
static void on_cluster_faults(void *ud, cluster_faults *out)
{
    apisrv_faults f;

    apisrv_get_faults(ud, &f);
    out->start_delay_ms = f.pod_start_delay_ms;
    memcpy(out->pull_fail, f.pull_fail_image, sizeof(out->pull_fail));
    memcpy(out->crash_loop, f.crash_loop_image, sizeof(out->crash_loop));
}

static void faults_from_json(apisrv_faults *f, const cJSON *o)
{
    for (size_t i = 0; i < NFAULT_FIELDS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(
            o, fault_fields[i].name);
        int *dst = (int *)((char *)f + fault_fields[i].off);

        if (cJSON_IsNumber(v))
            *dst = v->valueint;
        else if (cJSON_IsBool(v))
            *dst = cJSON_IsTrue(v);
    }
    fault_string(f->pull_fail_image, sizeof(f->pull_fail_image), o,
                 "pullFailImage");
    fault_string(f->crash_loop_image, sizeof(f->crash_loop_image), o,
                 "crashLoopImage");
}

/*
 * Random request failures. Returns 1 and queues a response when this
 * request is chosen to fail.
 */
static int inject_error(request *rq, enum MHD_Result *ret)
{
    apisrv_faults f;
    unsigned short r;
    struct MHD_Response *resp;
    cJSON *st;
    char *text, ra[16];

    apisrv_get_faults(rq->srv, &f);
    if (f.latency_ms > 0)
        usleep((useconds_t)f.latency_ms * 1000);
    if (f.error_permille <= 0)
        return 0;
    util_random(&r, sizeof(r));
    if (r % 1000 >= (unsigned)f.error_permille)
        return 0;
    if (f.error_code == 429) {
        st = status_new(429, "TooManyRequests", "the server has received "
                        "too many requests and has asked us to try again "
                        "later");
    } else {
        f.error_code = 500;
        st = status_new(500, "InternalError", "Internal error occurred: "
                        "injected fault");
    }
    text = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    resp = MHD_create_response_from_buffer(strlen(text), text,
                                           MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", CT_JSON);
    if (f.error_code == 429) {
        snprintf(ra, sizeof(ra), "%d", f.retry_after > 0 ? f.retry_after
                                                         : 1);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    *ret = MHD_queue_response(rq->conn, (unsigned)f.error_code, resp);
    MHD_destroy_response(resp);
    return 1;
}

/* Whether this update is the first for the object under the fault. The
 * object and its status subresource count apart: a controller's first
 * write of an object is often to its metadata (a finalizer), and its
 * status writes need their own conflict to be tested. */
static int first_update_conflict(apisrv *srv, const store_ref *ref)
{
    char key[1024];
    int hit = 1;

    snprintf(key, sizeof(key), "%s/%s/%s/%s/%s", ref->group, ref->resource,
             ref->ns ? ref->ns : "", ref->name, ref->sub ? ref->sub : "");
    pthread_mutex_lock(&srv->fmu);
    if (!srv->faults.conflict_first_update) {
        hit = 0;
        goto out;
    }
    for (int i = 0; i < srv->nconflicted; i++)
        if (strcmp(srv->conflicted[i], key) == 0) {
            hit = 0;
            goto out;
        }
    srv->conflicted = realloc(srv->conflicted, sizeof(char *) *
                                                   (size_t)(srv->nconflicted
                                                            + 1));
    srv->conflicted[srv->nconflicted++] = strdup(key);
out:
    pthread_mutex_unlock(&srv->fmu);
    return hit;
}

/* Takes one forced 410 if any are pending. */
static int take_forced_410(apisrv *srv, int *as_http)
{
    int hit = 0;

    pthread_mutex_lock(&srv->fmu);
    if (srv->faults.force_410 > 0) {
        srv->faults.force_410--;
        hit = 1;
    }
    *as_http = srv->faults.watch_410_http;
    pthread_mutex_unlock(&srv->fmu);
    return hit;
}

/* ---- watch streaming ---- */

static void watch_ctx_free(watch_ctx *wc)
{
    store_watch_close(wc->w);
    free(wc->group);
    free(wc->version);
    free(wc->resource);
    free(wc->buf);
    free(wc);
}

static void on_watch_free(void *cls)
{
    watch_ctx *wc = cls;

    __atomic_sub_fetch(&wc->srv->watches, 1, __ATOMIC_SEQ_CST);
    watch_ctx_free(wc);
}

static void buffer_event(watch_ctx *wc, const char *type, cJSON *obj)
{
    cJSON *ev = cJSON_CreateObject();
    char *text;
    size_t n;

    if (wc->table && strcmp(type, "ERROR") != 0 &&
        strcmp(type, "BOOKMARK") != 0) {
        store_ref ref = {wc->group, wc->version, wc->resource, NULL, NULL,
                         NULL};
        cJSON *items = cJSON_CreateArray(), *t;

        cJSON_AddItemToArray(items, obj);
        t = store_table(wc->srv->st, &ref, items, !wc->headers_sent,
                        wc->include, NULL, NULL, -1);
        cJSON_Delete(items);
        obj = t ? t : cJSON_CreateObject();
        wc->headers_sent = 1;
    }
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddItemToObject(ev, "object", obj);
    text = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (!text)
        return;
    n = strlen(text);
    wc->buf = realloc(wc->buf, n + 2);
    memcpy(wc->buf, text, n);
    wc->buf[n] = '\n';
    wc->len = n + 1;
    wc->off = 0;
    free(text);
}

/* Whether the client has gone away (FIN or error on the socket). */
static int peer_gone(int fd)
{
    struct pollfd p = {fd, POLLRDHUP, 0};

    if (fd < 0)
        return 0;
    return poll(&p, 1, 0) > 0 &&
           (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Fills wc->buf with the next event; 0, or -1 when the stream ends. */
static int watch_fill(watch_ctx *wc)
{
    store_event ev;

    for (;;) {
        long long now = now_ms(), wait;
        int rc;

        if (wc->ending || !wc->w ||
            __atomic_load_n(&wc->srv->stopping, __ATOMIC_SEQ_CST))
            return -1;
        if (wc->deadline_ms && now >= wc->deadline_ms)
            return -1;
        if (peer_gone(wc->fd))
            return -2;
        if (wc->bookmarks && now >= wc->next_bookmark_ms) {
            wc->next_bookmark_ms = now + wc->srv->cfg.bookmark_ms;
            store_watch_bookmark(wc->w, &ev);
            buffer_event(wc, ev.type, ev.object);
            return 0;
        }
        wait = WATCH_POLL_MS;
        if (wc->bookmarks && wc->next_bookmark_ms - now < wait)
            wait = wc->next_bookmark_ms - now;
        if (wc->deadline_ms && wc->deadline_ms - now < wait)
            wait = wc->deadline_ms - now;
        rc = store_watch_next(wc->w, wait > 0 ? (int)wait : 1, &ev);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        buffer_event(wc, ev.type, ev.object);
        wc->sent++;

        /* The drop fault is read live, so a stream opened before a test
         * set it drops too; otherwise whether a test sees drops would
         * depend on which came first. */
        pthread_mutex_lock(&wc->srv->fmu);
        wc->drop_every = wc->srv->faults.watch_drop_every;
        pthread_mutex_unlock(&wc->srv->fmu);
        if (strcmp(ev.type, "ERROR") == 0 ||
            (wc->drop_every > 0 && wc->sent >= wc->drop_every))
            wc->ending = 1;
        return 0;
    }
}

static ssize_t on_watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    watch_ctx *wc = cls;
    size_t n;

    if (wc->off == wc->len) {
        int rc;

        rc = watch_fill(wc);
        if (rc == -2)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (rc < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    n = wc->len - wc->off;
    if (n > max)
        n = max;
    memcpy(buf, wc->buf + wc->off, n);
    wc->off += n;
    return (ssize_t)n;
}

static enum MHD_Result start_watch(request *rq, const store_ref *ref,
                                   store_opts *o)
{
    watch_ctx *wc = calloc(1, sizeof(*wc));
    const union MHD_ConnectionInfo *ci;
    const char *to = arg(rq, "timeoutSeconds");
    struct MHD_Response *resp;
    store_err err = {0, NULL};
    enum MHD_Result ret;
    int as_http = 0;
    apisrv_faults f;

    apisrv_get_faults(rq->srv, &f);
    wc->srv = rq->srv;
    wc->group = strdup(ref->group);
    wc->version = strdup(ref->version);
    wc->resource = strdup(ref->resource);
    wc->table = wants_table(rq);
    wc->include = 1;
    wc->bookmarks = o->allow_bookmarks;
    wc->next_bookmark_ms = now_ms() + rq->srv->cfg.bookmark_ms;
    wc->drop_every = f.watch_drop_every;
    o->expired_as_http = f.watch_410_http;
    if (to && atol(to) > 0)
        wc->deadline_ms = now_ms() + atol(to) * 1000LL;
    ci = MHD_get_connection_info(rq->conn,
                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    wc->fd = ci ? ci->connect_fd : -1;
    if (o->resource_version && strcmp(o->resource_version, "0") != 0 &&
        *o->resource_version && take_forced_410(rq->srv, &as_http)) {
        cJSON *st = status_new(410, "Expired", "too old resource version: "
                               "%s (%llu)", o->resource_version,
                               (unsigned long long)store_rv(rq->srv->st));

        slog(rq->srv, 2, "forcing 410 on a watch of %s", ref->resource);
        if (as_http) {
            watch_ctx_free(wc);
            return send_json(rq->conn, 410, st, NULL);
        }
        buffer_event(wc, "ERROR", st);
        wc->ending = 1;
    } else if (store_watch_open(rq->srv->st, ref, o, &wc->w, &err) >= 300) {
        watch_ctx_free(wc);
        return send_err(rq->conn, &err);
    }
    __atomic_add_fetch(&rq->srv->watches, 1, __ATOMIC_SEQ_CST);
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
                                             on_watch_read, wc,
                                             on_watch_free);
    MHD_add_response_header(resp, "Content-Type",
                            wc->table ? CT_TABLE : CT_JSON);
    MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
    ret = MHD_queue_response(rq->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- resource requests ---- */

static int include_mode(const request *rq)
{
    const char *v = arg(rq, "includeObject");

    if (v && strcmp(v, "None") == 0)
        return 0;
    if (v && strcmp(v, "Object") == 0)
        return 2;
    return 1;
}

static const char *obj_rv(const cJSON *obj)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
        "resourceVersion"));
}

static enum MHD_Result send_object(request *rq, const store_ref *ref,
                                   int code, cJSON *obj)
{
    cJSON *items, *t;

    if (!wants_table(rq) || strcmp(rq->method, "GET") != 0)
        return send_json(rq->conn, code, obj, NULL);
    items = cJSON_CreateArray();
    cJSON_AddItemToArray(items, obj);
    t = store_table(rq->srv->st, ref, items, 1, include_mode(rq),
                    obj_rv(obj), NULL, -1);
    cJSON_Delete(items);
    return send_json(rq->conn, code, t, CT_TABLE);
}

static enum MHD_Result send_list(request *rq, const store_ref *ref,
                                 cJSON *list)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(list, "metadata");
    const cJSON *rem = cJSON_GetObjectItemCaseSensitive(m,
                                                        "remainingItemCount");
    cJSON *t;

    if (!wants_table(rq))
        return send_json(rq->conn, 200, list, NULL);
    t = store_table(rq->srv->st, ref,
                    cJSON_GetObjectItemCaseSensitive(list, "items"), 1,
                    include_mode(rq), obj_rv(list),
                    cJSON_GetStringValue(
                        cJSON_GetObjectItemCaseSensitive(m, "continue")),
                    cJSON_IsNumber(rem) ? (long)rem->valuedouble : -1);
    cJSON_Delete(list);
    return send_json(rq->conn, 200, t, CT_TABLE);
}

static int patch_type(const char *ctype, store_patch_type *t)
{
    static const struct {
        const char *ct;
        store_patch_type t;
    } types[] = {
        {"application/merge-patch+json", STORE_PATCH_MERGE},
        {"application/json-patch+json", STORE_PATCH_JSON},
        {"application/strategic-merge-patch+json", STORE_PATCH_STRATEGIC},
        {"application/apply-patch+yaml", STORE_PATCH_APPLY},
        {"application/apply-patch+json", STORE_PATCH_APPLY},
    };

    for (size_t i = 0; ctype && i < sizeof(types) / sizeof(types[0]); i++)
        if (strncmp(ctype, types[i].ct, strlen(types[i].ct)) == 0) {
            *t = types[i].t;
            return 0;
        }
    return -1;
}

static void read_opts(const request *rq, store_opts *o)
{
    const char *dry = arg(rq, "dryRun");
    const char *limit = arg(rq, "limit");

    memset(o, 0, sizeof(*o));
    o->dry_run = dry && strcmp(dry, "All") == 0;
    o->field_manager = arg(rq, "fieldManager");
    o->label_selector = arg(rq, "labelSelector");
    o->field_selector = arg(rq, "fieldSelector");
    o->limit = limit ? atol(limit) : 0;
    o->cont = arg(rq, "continue");
    o->resource_version = arg(rq, "resourceVersion");
    o->propagation = arg(rq, "propagationPolicy");
    o->allow_bookmarks = arg_true(rq, "allowWatchBookmarks");
}

/* A GET: one object, a list, or a watch. */
static enum MHD_Result do_get(request *rq, store_ref *ref, store_opts *o)
{
    store_err err = {0, NULL};
    cJSON *out = NULL;
    char fs[1024];

    if (arg_true(rq, "watch")) {
        if (ref->name) {
            /* The old per-object watch URL is a name field selector. */
            snprintf(fs, sizeof(fs), "metadata.name=%s%s%s", ref->name,
                     o->field_selector ? "," : "",
                     o->field_selector ? o->field_selector : "");
            o->field_selector = fs;
            ref->name = NULL;
        }
        return start_watch(rq, ref, o);
    }
    if (ref->name) {
        if (store_get(rq->srv->st, ref, o, &out, &err) >= 300)
            return send_err(rq->conn, &err);
        return send_object(rq, ref, 200, out);
    }
    if (store_list(rq->srv->st, ref, o, &out, &err) >= 300)
        return send_err(rq->conn, &err);
    return send_list(rq, ref, out);
}

static enum MHD_Result do_write(request *rq, store_ref *ref, store_opts *o)
{
    store_err err = {0, NULL};
    cJSON *body = parse_body(rq), *out = NULL;
    const char *m = rq->method;
    store_patch_type pt;
    int code;

    if (header(rq, "Content-Type") &&
        strstr(header(rq, "Content-Type"), "protobuf")) {
        cJSON_Delete(body);
        return send_status(rq->conn, 415, "UnsupportedMediaType",
                           "the body of the request was in an unknown "
                           "format - accepted media types include: "
                           "application/json, application/yaml");
    }
    if (!body && strcmp(m, "DELETE") != 0) {
        cJSON_Delete(body);
        return send_status(rq->conn, 400, "BadRequest", "the request body "
                           "is not valid JSON");
    }
    if ((strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) && ref->name &&
        first_update_conflict(rq->srv, ref)) {
        cJSON_Delete(body);
        return send_status(rq->conn, 409, "Conflict", "Operation cannot be "
                           "fulfilled: injected first-update conflict; "
                           "please apply your changes to the latest "
                           "version and try again");
    }
    if (strcmp(m, "POST") == 0) {
        code = store_create(rq->srv->st, ref, o, body, &out, &err);
    } else if (strcmp(m, "PUT") == 0) {
        code = store_update(rq->srv->st, ref, o, body, &out, &err);
    } else if (strcmp(m, "PATCH") == 0) {
        if (patch_type(header(rq, "Content-Type"), &pt) < 0) {
            cJSON_Delete(body);
            return send_status(rq->conn, 415, "UnsupportedMediaType",
                               "the body of the request was in an unknown "
                               "format - accepted media types include: "
                               "application/json-patch+json, "
                               "application/merge-patch+json, "
                               "application/apply-patch+yaml, "
                               "application/strategic-merge-patch+json");
        }
        code = store_patch(rq->srv->st, ref, o, pt, body, &out, &err);
    } else if (ref->name) {
        code = store_delete(rq->srv->st, ref, o, body, &out, &err);
    } else {
        code = store_delete_collection(rq->srv->st, ref, o, body, &out,
                                       &err);
    }
    cJSON_Delete(body);
    if (code >= 300)
        return send_err(rq->conn, &err);
    return send_json(rq->conn, code, out, NULL);
}

/*
 * Serves /api/v1/... or /apis/g/v/... below the group-version; first
 * indexes the segment after it.
 */
static enum MHD_Result do_resource(request *rq, const char *group,
                                   const char *version, int first)
{
    char **s = rq->segs + first;
    int n = rq->nsegs - first;
    store_ref ref = {group, version, NULL, NULL, NULL, NULL};
    store_opts o;
    enum MHD_Result ret;
    const char *m = rq->method;

    if (n >= 3 && strcmp(s[0], "namespaces") == 0 &&
        !(n == 3 && (strcmp(s[2], "status") == 0 ||
                     strcmp(s[2], "finalize") == 0))) {
        ref.ns = s[1];
        s += 2;
        n -= 2;
    }
    if (n < 1 || n > 3)
        return send_not_found(rq->conn);
    ref.resource = s[0];
    ref.name = n > 1 ? s[1] : NULL;
    ref.sub = n > 2 ? s[2] : NULL;
    if (inject_error(rq, &ret))
        return ret;
    read_opts(rq, &o);
    if (strcmp(m, "GET") == 0)
        return do_get(rq, &ref, &o);
    if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
        strcmp(m, "PATCH") == 0 || strcmp(m, "DELETE") == 0)
        return do_write(rq, &ref, &o);
    return send_status(rq->conn, 405, "MethodNotAllowed", "the server does "
                       "not allow this method on the requested resource");
}

/* ---- discovery and misc ---- */

static enum MHD_Result do_version(request *rq)
{
    cJSON *v = cJSON_CreateObject();

    cJSON_AddStringToObject(v, "major", "1");
    cJSON_AddStringToObject(v, "minor", "32");
    cJSON_AddStringToObject(v, "gitVersion", "v1.32.0-fake");
    cJSON_AddStringToObject(v, "gitCommit",
                            "0000000000000000000000000000000000000000");
    cJSON_AddStringToObject(v, "gitTreeState", "clean");
    cJSON_AddStringToObject(v, "buildDate", "2025-01-01T00:00:00Z");
    cJSON_AddStringToObject(v, "goVersion", "go1.23.4");
    cJSON_AddStringToObject(v, "compiler", "gc");
    cJSON_AddStringToObject(v, "platform", "linux/amd64");
    return send_json(rq->conn, 200, v, NULL);
}

/* The aggregated discovery version the client accepts, or NULL. */
static const char *aggregated_version(const request *rq)
{
    const char *a = header(rq, "Accept");
    char buf[1024], *save = NULL, *tok;

    if (!a)
        return NULL;
    snprintf(buf, sizeof(buf), "%s", a);
    for (tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!strstr(tok, "as=APIGroupDiscoveryList") ||
            !strstr(tok, "g=apidiscovery.k8s.io"))
            continue;
        if (strstr(tok, "v=v2beta1"))
            return "v2beta1";
        if (strstr(tok, "v=v2;") || strstr(tok, ";v=v2") ||
            strstr(tok, "v=v2 "))
            return "v2";
    }
    return NULL;
}

static enum MHD_Result do_discovery_root(request *rq, int core)
{
    const char *agg = aggregated_version(rq);
    char ct[160];

    if (agg) {
        snprintf(ct, sizeof(ct), "application/json;g=apidiscovery.k8s.io;"
                 "v=%s;as=APIGroupDiscoveryList", agg);
        return send_json(rq->conn, 200, store_discovery(
            rq->srv->st, core ? "aggregated-api" : "aggregated-apis", NULL,
            NULL, agg), ct);
    }
    return send_json(rq->conn, 200, store_discovery(
        rq->srv->st, core ? "api" : "apis", NULL, NULL, NULL), NULL);
}

static enum MHD_Result send_doc_or_404(request *rq, cJSON *doc)
{
    if (!doc)
        return send_not_found(rq->conn);
    return send_json(rq->conn, 200, doc, NULL);
}

static enum MHD_Result do_group(request *rq, const char *group)
{
    cJSON *all = store_discovery(rq->srv->st, "apis", NULL, NULL, NULL);
    const cJSON *g;
    cJSON *found = NULL;

    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(all, "groups")) {
        const char *name = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(g, "name"));

        if (name && strcmp(name, group) == 0) {
            found = cJSON_Duplicate(g, 1);
            cJSON_AddStringToObject(found, "kind", "APIGroup");
            cJSON_AddStringToObject(found, "apiVersion", "v1");
        }
    }
    cJSON_Delete(all);
    return send_doc_or_404(rq, found);
}

static enum MHD_Result do_openapi(request *rq)
{
    char **s = rq->segs;
    int n = rq->nsegs;

    if (n < 2 || strcmp(s[1], "v3") != 0)
        return send_not_found(rq->conn);
    if (n == 2)
        return send_json(rq->conn, 200, store_discovery(
            rq->srv->st, "openapi", NULL, NULL, NULL), NULL);
    if (n == 4 && strcmp(s[2], "api") == 0)
        return send_doc_or_404(rq, store_discovery(rq->srv->st, "openapi-gv",
                                                   "", s[3], NULL));
    if (n == 5 && strcmp(s[2], "apis") == 0)
        return send_doc_or_404(rq, store_discovery(rq->srv->st, "openapi-gv",
                                                   s[3], s[4], NULL));
    return send_not_found(rq->conn);
}

static enum MHD_Result do_sim(request *rq)
{
    apisrv_faults f;
    cJSON *body;

    if (rq->nsegs == 2 && strcmp(rq->segs[1], "compact") == 0 &&
        strcmp(rq->method, "POST") == 0) {
        store_compact(rq->srv->st);
        return send_json(rq->conn, 200, status_success(NULL, NULL, NULL,
                                                       NULL), NULL);
    }
    if (rq->nsegs != 2 || strcmp(rq->segs[1], "faults") != 0)
        return send_not_found(rq->conn);
    apisrv_get_faults(rq->srv, &f);
    if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0) {
        body = parse_body(rq);
        if (!cJSON_IsObject(body)) {
            cJSON_Delete(body);
            return send_status(rq->conn, 400, "BadRequest", "faults must be "
                               "a JSON object");
        }
        memset(&f, 0, sizeof(f));
        faults_from_json(&f, body);
        cJSON_Delete(body);
        apisrv_set_faults(rq->srv, &f);
    }
    return send_json(rq->conn, 200, faults_json(&f), NULL);
}

static int authorized(const request *rq)
{
    const char *h;
    const char *tok = rq->srv->token;

    if (!rq->srv->cfg.tls)
        return 1;
    h = header(rq, "Authorization");
    return h && strncmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, tok) == 0;
}

static enum MHD_Result route(request *rq)
{
    char **s = rq->segs;
    int n = rq->nsegs;

    if (!authorized(rq))
        return send_status(rq->conn, 401, "Unauthorized", "Unauthorized");
    if (n == 0)
        return send_not_found(rq->conn);
    if (strcmp(s[0], "version") == 0 && n == 1)
        return do_version(rq);
    if ((strcmp(s[0], "healthz") == 0 || strcmp(s[0], "livez") == 0 ||
         strcmp(s[0], "readyz") == 0) && n == 1)
        return send_text(rq->conn, 200, "text/plain", strdup("ok"));
    if (strcmp(s[0], "api") == 0) {
        if (n == 1)
            return do_discovery_root(rq, 1);
        if (n == 2)
            return send_doc_or_404(rq, store_discovery(
                rq->srv->st, "resources", "", s[1], NULL));
        return do_resource(rq, "", s[1], 2);
    }
    if (strcmp(s[0], "apis") == 0) {
        if (n == 1)
            return do_discovery_root(rq, 0);
        if (n == 2)
            return do_group(rq, s[1]);
        if (n == 3)
            return send_doc_or_404(rq, store_discovery(
                rq->srv->st, "resources", s[1], s[2], NULL));
        return do_resource(rq, s[1], s[2], 3);
    }
    if (strcmp(s[0], "openapi") == 0)
        return do_openapi(rq);
    if (strcmp(s[0], "_sim") == 0)
        return do_sim(rq);
    return send_not_found(rq->conn);
}

/* Appends one query argument to the buffer of a request log line. */
static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
    char *q = cls;
    size_t n = strlen(q);

    snprintf(q + n, 1024 - n, "%s%s=%s", n ? "&" : "", key,
             value ? value : "");
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    apisrv *srv = cls;
    req_ctx *rc = *con_cls;
    request rq;

    if (!rc) {
        rc = calloc(1, sizeof(*rc));
        if (!rc)
            return MHD_NO;
        *con_cls = rc;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rc->len + *upload_size > MAX_BODY) {
            rc->too_big = 1;
        } else {
            if (rc->len + *upload_size + 1 > rc->cap) {
                rc->cap = (rc->len + *upload_size + 1) * 2;
                rc->body = realloc(rc->body, rc->cap);
            }
            memcpy(rc->body + rc->len, upload, *upload_size);
            rc->len += *upload_size;
            rc->body[rc->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    memset(&rq, 0, sizeof(rq));
    rq.srv = srv;
    rq.conn = conn;
    rq.method = method;
    rq.rc = rc;
    if (srv->cfg.log) {
        char q[1024] = "";

        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_query_arg,
                                  q);
        slog(srv, 3, "%s %s%s%s", method, url, *q ? "?" : "", q);
    }
    if (rc->too_big)
        return send_status(conn, 413, "RequestEntityTooLarge", "the request "
                           "body is larger than 3 MiB");
    if (split_path(&rq, url) < 0)
        return send_not_found(conn);
    return route(&rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode tc)
{
    req_ctx *rc = *con_cls;

    if (rc) {
        free(rc->body);
        free(rc);
        *con_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    apisrv *srv = cls;
    char msg[512];
    size_t n;

    if (!srv->cfg.log)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    srv->cfg.log(1, msg, srv->cfg.log_ud);
}

/* ---- life cycle ---- */

static int open_listener(apisrv *srv, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)srv->cfg.port);
    if (fd < 0 || inet_pton(AF_INET, srv->cfg.host, &sa.sin_addr) != 1)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        goto fail;
    srv->port = ntohs(sa.sin_port);
    return fd;
fail:
    snprintf(err, errlen, "listening on %s:%d: %s", srv->cfg.host,
             srv->cfg.port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static char *random_token(void)
{
    unsigned char r[16];
    char *t = malloc(33);

    util_random(r, sizeof(r));
    for (int i = 0; i < 16; i++)
        snprintf(t + i * 2, 3, "%02x", r[i]);
    return t;
}

int apisrv_start(const apisrv_config *cfg, apisrv **out, char *err,
                 size_t errlen)
{
    apisrv *srv = calloc(1, sizeof(*srv));
    store_config sc;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    int fd;

    *out = NULL;
    if (!srv) {
        snprintf(err, errlen, "out of memory starting the apiserver");
        return -1;
    }
    srv->cfg = *cfg;
    if (!srv->cfg.host)
        srv->cfg.host = "127.0.0.1";
    if (srv->cfg.bookmark_ms <= 0)
        srv->cfg.bookmark_ms = 5000;
    pthread_mutex_init(&srv->fmu, NULL);
    memset(&sc, 0, sizeof(sc));
    sc.history = cfg->history;
    sc.log = cfg->log;
    sc.log_ud = cfg->log_ud;
    srv->st = store_new(&sc);
    if (!srv->st) {
        snprintf(err, errlen, "out of memory creating the store");
        goto fail;
    }
    if (cfg->tls) {
        if (tlsgen_make(&srv->pems, err, errlen) < 0)
            goto fail;
        srv->token = cfg->token ? strdup(cfg->token) : random_token();
        flags |= MHD_USE_TLS;
    }
    fd = open_listener(srv, err, errlen);
    if (fd < 0)
        goto fail;
    snprintf(srv->url, sizeof(srv->url), "%s://%s:%d",
             cfg->tls ? "https" : "http", srv->cfg.host, srv->port);
    if (cfg->tls)
        srv->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv,
            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
            MHD_OPTION_LISTEN_SOCKET, fd,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
            MHD_OPTION_HTTPS_MEM_KEY, srv->pems.key,
            MHD_OPTION_HTTPS_MEM_CERT, srv->pems.cert,
            MHD_OPTION_END);
    else
        srv->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, srv,
            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
            MHD_OPTION_LISTEN_SOCKET, fd,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
            MHD_OPTION_END);
    if (!srv->daemon) {
        close(fd);
        snprintf(err, errlen, "starting the HTTP daemon on %s failed",
                 srv->url);
        goto fail;
    }
    if (cfg->cluster.enabled &&
        cluster_start(srv->st, &cfg->cluster, on_cluster_faults, srv,
                      cfg->log, cfg->log_ud, &srv->cl, err, errlen) < 0) {
        MHD_stop_daemon(srv->daemon);
        goto fail;
    }
    slog(srv, 2, "serving on %s", srv->url);
    *out = srv;
    return 0;
fail:
    store_free(srv->st);
    tlsgen_free(&srv->pems);
    free(srv->token);
    pthread_mutex_destroy(&srv->fmu);
    free(srv);
    return -1;
}

void apisrv_stop(apisrv *srv)
{
    if (!srv)
        return;
    /* Processes and proxies go first, while the store still answers. */
    cluster_stop(srv->cl);
    __atomic_store_n(&srv->stopping, 1, __ATOMIC_SEQ_CST);
    store_shutdown(srv->st);
    /*
     * Let open watch streams send their last chunk before the daemon
     * closes the sockets, so clients see a clean end of stream.
     */
    for (int i = 0; i < STOP_DRAIN_MS / 10 &&
                    __atomic_load_n(&srv->watches, __ATOMIC_SEQ_CST) > 0;
         i++)
        usleep(10 * 1000);
    MHD_stop_daemon(srv->daemon);
    store_free(srv->st);
    tlsgen_free(&srv->pems);
    for (int i = 0; i < srv->nconflicted; i++)
        free(srv->conflicted[i]);
    free(srv->conflicted);
    free(srv->token);
    pthread_mutex_destroy(&srv->fmu);
    free(srv);
}

int apisrv_port(const apisrv *srv)
{
    return srv->port;
}

const char *apisrv_url(const apisrv *srv)
{
    return srv->url;
}

const char *apisrv_token(const apisrv *srv)
{
    return srv->token;
}

const char *apisrv_ca_pem(const apisrv *srv)
{
    return srv->pems.ca_cert;
}

store *apisrv_store(apisrv *srv)
{
    return srv->st;
}

cluster *apisrv_cluster(apisrv *srv)
{
    return srv->cl;
}

int apisrv_write_kubeconfig(const apisrv *srv, const char *path, char *err,
                            size_t errlen)
{
    return tlsgen_kubeconfig(path, srv->url, srv->pems.ca_cert, srv->token,
                             err, errlen);
}
