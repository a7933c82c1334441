/*
 * test-service: the /test HTTP service workflows run against.
 *
 * It echoes the JSON object it is sent with its own name set, and lets
 * the caller inject delays, hangs, error statuses and huge bodies through
 * query knobs, so engine tests can stage any failure on demand. The
 * interface is documented in README.md next to this file.
 *
 * Threads: libmicrohttpd runs one thread per connection, so a delayed or
 * hanging request holds only its own thread. Every wait polls the client
 * socket and a stop pipe, so it ends as soon as the client leaves or the
 * service stops. The hit counter is the only state requests share.
 *
 * Memory: cJSON allocates with malloc, so a printed body is handed to
 * MHD to free; out of memory drops the connection (MHD_NO) rather than
 * answering, which is enough for a test double.
 */
#define _GNU_SOURCE /* POLLRDHUP, pipe2 */

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TS_NAME_MAX 64

/* Request bodies are held whole to be echoed; workflow data is small. */
#define TS_MAX_BODY (16u << 20)

/* poll() takes an int of milliseconds. */
#define TS_DELAY_MAX ((unsigned long long)INT_MAX)

/* body_bytes answers are streamed in blocks, so only time bounds them. */
#define TS_BODY_BYTES_MAX (1ULL << 40)
#define TS_PAD_BLOCK (64 * 1024)
#define TS_PAD_HEAD_MAX 256

/*
 * Injected statuses start at 200: a 1xx is an interim answer, and a
 * client would sit waiting for the final one that never comes.
 */
#define TS_STATUS_MIN 200
#define TS_STATUS_MAX 599

typedef struct ts_config {
    const char *address;
    struct sockaddr_in sa;
    int port;
    char name[TS_NAME_MAX + 1];
    int record;
    int verbose;
    unsigned long long delay_ms;
    unsigned status;
} ts_config;

typedef struct ts_service {
    ts_config cfg;
    atomic_ullong hits;
    atomic_int started;
    int stop_pipe[2];
    /* {"name":...}: the answer to an empty body, built once and shared. */
    struct MHD_Response *plain;
} ts_service;

/* Knobs of one /test request: the flags' defaults, then the query. */
typedef struct ts_knobs {
    unsigned long long delay_ms;
    unsigned status;
    int hang;
    int record;
    long long body_bytes; /* -1: echo the input instead */
    const char *raw;      /* answer exactly these bytes; NULL: echo */
    size_t raw_len;
} ts_knobs;

/* State of one /test request from its headers to its answer. */
typedef struct ts_request {
    unsigned long long hit;
    ts_knobs knobs;
    char knob_err[160];
    char *body;
    size_t len;
    size_t cap;
    int too_big;
} ts_request;

/* What every answer needs to know about the request it answers. */
typedef struct ts_call {
    ts_service *svc;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
} ts_call;

/* A streamed body: head, fill bytes up to total, then tail. */
typedef struct ts_pad {
    uint64_t total;
    size_t head_len;
    size_t tail_len;
    char fill;
    char head[TS_PAD_HEAD_MAX];
    char tail[4];
} ts_pad;

/* Marks a request to a path other than /test: it needs no state. */
static char other_path;

/*
 * Parses a decimal count in [0, max]: digits only, so signs, blanks and
 * empty strings are refused. Returns 0, or -1 when malformed.
 */
static int parse_count(const char *s, unsigned long long max,
                       unsigned long long *out)
{
    unsigned long long v;
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int is_2xx(unsigned status)
{
    return status >= 200 && status < 300;
}

/* ---- knobs ---------------------------------------------------------- */

static int knob_count(ts_request *req, struct MHD_Connection *conn,
                      const char *knob, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, knob);

    if (v == NULL)
        return 0;
    if (parse_count(v, max, out) == 0 && *out >= min)
        return 0;
    snprintf(req->knob_err, sizeof(req->knob_err),
             "knob %s must be a whole number from %llu to %llu, not '%.32s'",
             knob, min, max, v);
    return -1;
}

/* Reads the query over the flags' defaults; a bad one fills knob_err. */
static void read_knobs(ts_request *req, const ts_config *cfg,
                       struct MHD_Connection *conn)
{
    ts_knobs *k = &req->knobs;
    unsigned long long v;

    k->delay_ms = cfg->delay_ms;
    k->status = cfg->status;
    k->hang = 0;
    k->record = cfg->record;
    k->body_bytes = -1;
    k->raw = NULL;
    k->raw_len = 0;

    /* Percent-decoded by libmicrohttpd, %00 included: any bytes at all,
     * so a test can stage an answer no real JSON encoder would write. */
    if (MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "raw", 3,
                                      &k->raw, &k->raw_len) != MHD_YES) {
        k->raw = NULL;
        k->raw_len = 0;
    }

    if (knob_count(req, conn, "delay_ms", 0, TS_DELAY_MAX, &k->delay_ms))
        return;

    v = k->status;
    if (knob_count(req, conn, "status", TS_STATUS_MIN, TS_STATUS_MAX, &v))
        return;
    k->status = (unsigned)v;

    v = 0;
    if (knob_count(req, conn, "hang", 0, 1, &v))
        return;
    k->hang = (int)v;

    v = (unsigned long long)k->record;
    if (knob_count(req, conn, "record", 0, 1, &v))
        return;
    k->record = (int)v;

    if (MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                    "body_bytes") != NULL) {
        if (knob_count(req, conn, "body_bytes", 2, TS_BODY_BYTES_MAX, &v))
            return;
        k->body_bytes = (long long)v;
    }
}

/* ---- replies -------------------------------------------------------- */

static enum MHD_Result reply(const ts_call *call, unsigned status,
                             struct MHD_Response *r)
{
    enum MHD_Result ret = MHD_queue_response(call->conn, status, r);

    if (call->svc->cfg.verbose)
        fprintf(stderr, "test-service %s: %s %s -> %u%s\n", call->svc->cfg.name,
                call->method, call->url, status,
                ret == MHD_YES ? "" : " (could not queue)");
    return ret;
}

/* Answers with r, labelled JSON, and lets go of it. */
static enum MHD_Result reply_json(const ts_call *call, unsigned status,
                                  struct MHD_Response *r)
{
    enum MHD_Result ret;

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    ret = reply(call, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answers with a printed JSON text, which MHD then owns. */
static enum MHD_Result reply_text(const ts_call *call, unsigned status,
                                  char *text)
{
    struct MHD_Response *r;

    if (text == NULL)
        return MHD_NO;
    r = MHD_create_response_from_buffer(strlen(text), text,
                                        MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    return reply_json(call, status, r);
}

/* Answers {"error":msg,"name":...}; cJSON does the escaping. */
static enum MHD_Result reply_error(const ts_call *call, unsigned status,
                                   const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    if (o != NULL && cJSON_AddStringToObject(o, "error", msg) != NULL &&
        cJSON_AddStringToObject(o, "name", call->svc->cfg.name) != NULL)
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return reply_text(call, status, text);
}

/* ---- waiting -------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits ms milliseconds, or forever when forever is set. Returns 0 once
 * the time is up, -1 as soon as the client hangs up or the service is
 * stopping: nobody would read the answer.
 */
static int wait_for(const ts_call *call, unsigned long long ms, int forever)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(call->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    long long deadline = now_ms() + (long long)ms;
    struct pollfd pfd[2];

    pfd[0].fd = call->svc->stop_pipe[0];
    pfd[0].events = POLLIN;
    pfd[1].fd = ci != NULL ? ci->connect_fd : -1;
    pfd[1].events = POLLRDHUP;

    for (;;) {
        long long left = deadline - now_ms();
        int rc;

        if (!forever && left <= 0)
            return 0;
        rc = poll(pfd, 2, forever ? -1 : (int)left);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0)
            return -1;
    }
}

/* ---- /test ---------------------------------------------------------- */

/* JSON's four blanks; strchr would also match the NUL byte. */
static size_t skip_blanks(const char *s, size_t at, size_t len)
{
    while (at < len &&
           (s[at] == ' ' || s[at] == '\t' || s[at] == '\n' || s[at] == '\r'))
        at++;
    return at;
}

/*
 * Parses the request body: NULL with *obj NULL for an empty one, else
 * the object. Returns -1 with the reason in why when it is not one.
 */
static int parse_body(const ts_request *req, cJSON **obj, char *why,
                      size_t whylen)
{
    const char *end = NULL;
    size_t at;
    cJSON *v;

    *obj = NULL;
    if (skip_blanks(req->body, 0, req->len) == req->len)
        return 0;

    v = cJSON_ParseWithLengthOpts(req->body, req->len, &end, 0);
    if (v == NULL) {
        snprintf(why, whylen,
                 "body is not valid JSON: syntax error near byte %zu",
                 end != NULL ? (size_t)(end - req->body) : (size_t)0);
        return -1;
    }

    /* One value and blanks only, so "{} junk" is refused too. */
    at = skip_blanks(req->body, (size_t)(end - req->body), req->len);
    if (at < req->len) {
        snprintf(why, whylen,
                 "body is not valid JSON: unexpected data at byte %zu", at);
    } else if (!cJSON_IsObject(v)) {
        snprintf(why, whylen, "body is not a JSON object");
    } else {
        *obj = v;
        return 0;
    }
    cJSON_Delete(v);
    return -1;
}

/* Sets key to item, replacing an earlier value in place. */
static int set_key(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item) ? 0 : -1;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

/* The input object with name, seen_by_<name> and error set as asked. */
static char *print_echo(const ts_call *call, const ts_request *req, cJSON *obj)
{
    const ts_config *cfg = &call->svc->cfg;
    char key[sizeof("inputs_of_") + TS_NAME_MAX];
    char msg[64];
    char *text = NULL;

    if (obj == NULL && (obj = cJSON_CreateObject()) == NULL)
        return NULL;
    if (set_key(obj, "name", cJSON_CreateString(cfg->name)) != 0)
        goto done;

    if (req->knobs.record) {
        /* Which services' outputs reached this one, read before adding
         * our own key: a workflow's result then shows, for every node,
         * that it ran after its dependencies. */
        cJSON *got = cJSON_CreateArray();
        const cJSON *it;

        cJSON_ArrayForEach(it, obj) {
            if (got && it->string && strncmp(it->string, "seen_by_", 8) == 0)
                cJSON_AddItemToArray(got, cJSON_CreateString(it->string + 8));
        }
        snprintf(key, sizeof(key), "inputs_of_%s", cfg->name);
        if (set_key(obj, key, got) != 0)
            goto done;
        snprintf(key, sizeof(key), "seen_by_%s", cfg->name);
        if (set_key(obj, key, cJSON_CreateNumber((double)req->hit)) != 0)
            goto done;
    }

    if (!is_2xx(req->knobs.status)) {
        snprintf(msg, sizeof(msg), "injected status %u", req->knobs.status);
        if (set_key(obj, "error", cJSON_CreateString(msg)) != 0)
            goto done;
    }

    text = cJSON_PrintUnformatted(obj);
done:
    cJSON_Delete(obj);
    return text;
}

static ssize_t on_pad_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    const ts_pad *p = cls;
    uint64_t fill_end = p->total - p->tail_len;
    size_t n = 0;

    while (n < max && pos < p->total) {
        size_t room = max - n;
        size_t k;

        if (pos < p->head_len) {
            k = p->head_len - (size_t)pos;
            k = k < room ? k : room;
            memcpy(buf + n, p->head + pos, k);
        } else if (pos < fill_end) {
            k = fill_end - pos < room ? (size_t)(fill_end - pos) : room;
            memset(buf + n, p->fill, k);
        } else {
            k = (size_t)(p->total - pos);
            k = k < room ? k : room;
            memcpy(buf + n, p->tail + (pos - fill_end), k);
        }
        n += k;
        pos += k;
    }
    return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

/*
 * Lays out an object of exactly total bytes: the usual keys and a "pad"
 * string of x's, or "{" blanks "}" when total is too small for them.
 */
static void pad_layout(ts_pad *p, const ts_config *cfg, const ts_request *req)
{
    int len;

    len = snprintf(p->head, sizeof(p->head), "{\"name\":\"%s\"", cfg->name);
    if (req->knobs.record)
        len += snprintf(p->head + len, sizeof(p->head) - (size_t)len,
                        ",\"seen_by_%s\":%llu", cfg->name, req->hit);
    if (!is_2xx(req->knobs.status))
        len += snprintf(p->head + len, sizeof(p->head) - (size_t)len,
                        ",\"error\":\"injected status %u\"", req->knobs.status);
    len +=
        snprintf(p->head + len, sizeof(p->head) - (size_t)len, ",\"pad\":\"");

    p->total = (uint64_t)req->knobs.body_bytes;
    if (p->total >= (uint64_t)len + 2) {
        p->head_len = (size_t)len;
        p->fill = 'x';
        memcpy(p->tail, "\"}", 3);
    } else {
        p->head_len = 1;
        p->fill = ' ';
        memcpy(p->tail, "}", 2);
    }
    p->tail_len = strlen(p->tail);
}

/* Streams body_bytes bytes without ever holding more than one block. */
static enum MHD_Result reply_padded(const ts_call *call, const ts_request *req)
{
    ts_pad *p = malloc(sizeof(*p));
    struct MHD_Response *r;

    if (p == NULL)
        return MHD_NO;
    pad_layout(p, &call->svc->cfg, req);

    r = MHD_create_response_from_callback(p->total, TS_PAD_BLOCK, on_pad_read,
                                          p, free);
    if (r == NULL) {
        free(p);
        return MHD_NO;
    }
    return reply_json(call, req->knobs.status, r);
}

/* Answers the raw knob's bytes as they are, labelled JSON whatever they
 * hold. */
static enum MHD_Result reply_raw(const ts_call *call, const ts_request *req)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        req->knobs.raw_len, (void *)req->knobs.raw, MHD_RESPMEM_MUST_COPY);

    if (r == NULL)
        return MHD_NO;
    return reply_json(call, req->knobs.status, r);
}

static enum MHD_Result answer_test(const ts_call *call, ts_request *req)
{
    char why[128];
    cJSON *obj;

    if (req->knob_err[0] != '\0')
        return reply_error(call, MHD_HTTP_BAD_REQUEST, req->knob_err);
    if (req->too_big) {
        snprintf(why, sizeof(why), "body is larger than %u bytes", TS_MAX_BODY);
        return reply_error(call, MHD_HTTP_CONTENT_TOO_LARGE, why);
    }
    if (parse_body(req, &obj, why, sizeof(why)) != 0)
        return reply_error(call, MHD_HTTP_BAD_REQUEST, why);

    /* Hanging or waiting ends early when nobody is left to answer. */
    if ((req->knobs.hang && wait_for(call, 0, 1) != 0) ||
        (req->knobs.delay_ms > 0 &&
         wait_for(call, req->knobs.delay_ms, 0) != 0)) {
        cJSON_Delete(obj);
        return MHD_NO;
    }

    if (req->knobs.body_bytes >= 0) {
        cJSON_Delete(obj);
        return reply_padded(call, req);
    }
    if (req->knobs.raw != NULL) {
        cJSON_Delete(obj);
        return reply_raw(call, req);
    }
    if (obj == NULL && !req->knobs.record && is_2xx(req->knobs.status))
        return reply(call, req->knobs.status, call->svc->plain);
    return reply_text(call, req->knobs.status, print_echo(call, req, obj));
}

/*
 * Appends a chunk of the request body. Past TS_MAX_BODY, or when memory
 * runs out, the body is only marked too big: the rest is read and
 * dropped, so the connection stays usable for the 413 answer.
 */
static void on_body_chunk(ts_request *req, const char *data, size_t n)
{
    if (req->too_big)
        return;
    if (n > TS_MAX_BODY - req->len) {
        req->too_big = 1;
        return;
    }

    if (req->len + n > req->cap) {
        size_t cap = req->cap > 0 ? req->cap : 1024;
        char *grown;

        while (cap < req->len + n)
            cap *= 2;
        grown = realloc(req->body, cap);
        if (grown == NULL) {
            req->too_big = 1;
            return;
        }
        req->body = grown;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, n);
    req->len += n;
}

static ts_request *start_test_request(ts_service *svc,
                                      struct MHD_Connection *conn)
{
    ts_request *req = calloc(1, sizeof(*req));
    const char *clen;
    unsigned long long n;

    if (req == NULL)
        return NULL;

    /* Counted on arrival, so a hanging request shows in /hits. */
    req->hit = atomic_fetch_add(&svc->hits, 1) + 1;
    read_knobs(req, &svc->cfg, conn);

    clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen != NULL && parse_count(clen, ULLONG_MAX, &n) == 0 && n > 0) {
        if (n > TS_MAX_BODY) {
            req->too_big = 1;
        } else if ((req->body = malloc((size_t)n)) != NULL) {
            req->cap = (size_t)n;
        }
    }
    return req;
}

/* ---- other paths ---------------------------------------------------- */

static enum MHD_Result answer_hits(const ts_call *call)
{
    char text[64];
    unsigned long long hits;
    struct MHD_Response *r;

    if (strcmp(call->method, MHD_HTTP_METHOD_DELETE) == 0) {
        atomic_store(&call->svc->hits, 0);
        hits = 0;
    } else if (strcmp(call->method, MHD_HTTP_METHOD_GET) == 0 ||
               strcmp(call->method, MHD_HTTP_METHOD_HEAD) == 0) {
        hits = atomic_load(&call->svc->hits);
    } else {
        return reply_error(call, MHD_HTTP_METHOD_NOT_ALLOWED,
                           "/hits takes GET or DELETE");
    }

    snprintf(text, sizeof(text), "{\"hits\":%llu}", hits);
    r = MHD_create_response_from_buffer(strlen(text), text,
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    return reply_json(call, MHD_HTTP_OK, r);
}

static enum MHD_Result answer_other(const ts_call *call)
{
    char msg[160];

    if (strcmp(call->url, "/hits") == 0)
        return answer_hits(call);
    snprintf(msg, sizeof(msg), "no such path: %.100s (try /test or /hits)",
             call->url);
    return reply_error(call, MHD_HTTP_NOT_FOUND, msg);
}

/* ---- MHD callbacks -------------------------------------------------- */

/*
 * Called once when the headers are in, once per body chunk, and once
 * more when the body is complete: only then is the request answered.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    ts_service *svc = cls;
    ts_call call = {svc, conn, method, url};

    if (*con_cls == NULL) {
        if (strcmp(url, "/test") != 0) {
            *con_cls = &other_path;
            return MHD_YES;
        }
        *con_cls = start_test_request(svc, conn);
        return *con_cls != NULL ? MHD_YES : MHD_NO;
    }

    /* Bodies sent to other paths are read and dropped. */
    if (*upload_data_size > 0) {
        if (*con_cls != &other_path)
            on_body_chunk(*con_cls, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (*con_cls == &other_path)
        return answer_other(&call);
    return answer_test(&call, *con_cls);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ts_request *req = *con_cls;

    if (req == NULL || *con_cls == (void *)&other_path)
        return;
    free(req->body);
    free(req);
    *con_cls = NULL;
}

/* MHD's own complaints: shown while starting, later only if verbose. */
__attribute__((format(printf, 2, 0))) static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    ts_service *svc = cls;

    if (atomic_load(&svc->started) && !svc->cfg.verbose)
        return;
    fputs("test-service: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- start and stop ------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: test-service --port N [--address A] [--name S] "
          "[--record]\n"
          "                    [--delay-ms N] [--status N] [--verbose] "
          "[--help]\n"
          "  --port N      port to listen on; 0 picks a free one\n"
          "  --address A   IPv4 address to bind (default 127.0.0.1)\n"
          "  --name S      name put in every answer (default: host name)\n"
          "  --record      add seen_by_<name> (hit number) and\n"
          "                inputs_of_<name> (the seen_by_ names in the\n"
          "                input) to every answer\n"
          "  --delay-ms N  default delay before each /test answer\n"
          "  --status N    default status of /test answers (200-599)\n"
          "  --verbose     log every request to stderr\n"
          "Prints \"listening on ADDRESS:PORT\" once ready; stops on "
          "SIGTERM or SIGINT.\n",
          f);
}

/* Names go into JSON keys and values unescaped, so keep them plain. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > TS_NAME_MAX)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._-") == n;
}

static int bad_flag(const char *flag, const char *why, const char *value)
{
    if (value != NULL)
        fprintf(stderr, "test-service: %s %s, got '%s'\n", flag, why, value);
    else
        fprintf(stderr, "test-service: %s %s\n", flag, why);
    fputs("try 'test-service --help'\n", stderr);
    return -1;
}

/* The flags that take a value, in the order set_flag tests them. */
static const char *const value_flags[] = {"--port", "--address", "--name",
                                          "--delay-ms", "--status"};

/* Applies one flag that takes a value; returns 0 or -1 after saying why. */
static int set_flag(ts_config *cfg, const char *flag, const char *v)
{
    unsigned long long n;

    if (strcmp(flag, "--port") == 0) {
        if (parse_count(v, 65535, &n) != 0)
            return bad_flag(flag, "needs a port from 0 to 65535", v);
        cfg->port = (int)n;
    } else if (strcmp(flag, "--address") == 0) {
        if (inet_pton(AF_INET, v, &cfg->sa.sin_addr) != 1)
            return bad_flag(flag, "needs an IPv4 address", v);
        cfg->address = v;
    } else if (strcmp(flag, "--name") == 0) {
        if (!valid_name(v))
            return bad_flag(flag, "needs 1-64 of A-Z a-z 0-9 . _ -", v);
        snprintf(cfg->name, sizeof(cfg->name), "%s", v);
    } else if (strcmp(flag, "--delay-ms") == 0) {
        if (parse_count(v, TS_DELAY_MAX, &n) != 0)
            return bad_flag(flag, "needs milliseconds from 0 to 2147483647", v);
        cfg->delay_ms = n;
    } else {
        if (parse_count(v, TS_STATUS_MAX, &n) != 0 || n < TS_STATUS_MIN)
            return bad_flag(flag, "needs an HTTP status from 200 to 599", v);
        cfg->status = (unsigned)n;
    }
    return 0;
}

/* The value flag arg names, up to '=' if any; NULL when it names none. */
static const char *find_value_flag(const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

    for (size_t i = 0; i < sizeof(value_flags) / sizeof(value_flags[0]); i++) {
        if (strlen(value_flags[i]) == len &&
            strncmp(arg, value_flags[i], len) == 0)
            return value_flags[i];
    }
    return NULL;
}

static void default_name(ts_config *cfg)
{
    char host[256];

    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        if (valid_name(host)) {
            memcpy(cfg->name, host, strlen(host) + 1);
            return;
        }
    }
    snprintf(cfg->name, sizeof(cfg->name), "test-service");
}

/*
 * Fills cfg from argv, accepting "--flag value" and "--flag=value".
 * Returns 0 to run, 1 when help was asked for, -1 on a bad flag.
 */
static int parse_args(int argc, char **argv, ts_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->address = "127.0.0.1";
    cfg->sa.sin_family = AF_INET;
    cfg->sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg->port = -1;
    cfg->status = MHD_HTTP_OK;
    default_name(cfg);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *flag;
        const char *v;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(arg, "--record") == 0) {
            cfg->record = 1;
            continue;
        }
        if (strcmp(arg, "--verbose") == 0) {
            cfg->verbose = 1;
            continue;
        }

        /* The rest take a value, inline after '=' or as the next word. */
        flag = find_value_flag(arg);
        if (flag == NULL)
            return bad_flag(arg, "is not a known flag", NULL);
        if (arg[strlen(flag)] == '=')
            v = arg + strlen(flag) + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return bad_flag(flag, "needs a value", NULL);
        if (set_flag(cfg, flag, v) != 0)
            return -1;
    }

    if (cfg->port < 0)
        return bad_flag("--port", "is required", NULL);
    cfg->sa.sin_port = htons((uint16_t)cfg->port);
    return 0;
}

/*
 * Benchmarks open many connections at once: lift the soft descriptor
 * limit to the hard one and size MHD's connection limit to match.
 */
static unsigned connection_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536)
        return 65536;
    return rl.rlim_cur > 64 ? (unsigned)rl.rlim_cur - 32 : 32;
}

/*
 * No MHD_OPTION_LISTENING_ADDRESS_REUSE: it means SO_REUSEPORT, and a
 * second service on a busy port would then quietly share its requests
 * instead of failing. MHD's default SO_REUSEADDR still allows a restart.
 */
static struct MHD_Daemon *start_daemon(ts_service *svc)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG;

    return MHD_start_daemon(
        flags, (uint16_t)svc->cfg.port, NULL, NULL, on_request, svc,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, svc, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&svc->cfg.sa, MHD_OPTION_CONNECTION_LIMIT,
        connection_limit(), MHD_OPTION_NOTIFY_COMPLETED, on_completed, svc,
        MHD_OPTION_END);
}

/* Builds the shared answer to an empty body; returns 0 or -1. */
static int make_plain(ts_service *svc)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    if (o != NULL && cJSON_AddStringToObject(o, "name", svc->cfg.name))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL)
        return -1;

    svc->plain = MHD_create_response_from_buffer(strlen(text), text,
                                                 MHD_RESPMEM_MUST_FREE);
    if (svc->plain == NULL) {
        free(text);
        return -1;
    }
    MHD_add_response_header(svc->plain, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    return 0;
}

/*
 * Blocks until SIGTERM or SIGINT. The signals are blocked in every
 * thread from the start, so they wait here for sigwait and no handler
 * runs in the middle of MHD.
 */
static void wait_for_stop(const sigset_t *stop)
{
    int sig;

    while (sigwait(stop, &sig) != 0)
        ;
}

int main(int argc, char **argv)
{
    static ts_service svc;
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;
    sigset_t stop;
    int rc = 1;

    switch (parse_args(argc, argv, &svc.cfg)) {
    case 1:
        return 0;
    case -1:
        return 2;
    }

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (pipe2(svc.stop_pipe, O_CLOEXEC) != 0) {
        perror("test-service: cannot create the stop pipe");
        return 1;
    }
    if (make_plain(&svc) != 0) {
        fputs("test-service: out of memory at start\n", stderr);
        goto close_pipe;
    }

    d = start_daemon(&svc);
    if (d == NULL) {
        fprintf(stderr, "test-service: cannot listen on %s:%d, exiting\n",
                svc.cfg.address, svc.cfg.port);
        goto destroy_plain;
    }
    atomic_store(&svc.started, 1);

    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on %s:%u\n", svc.cfg.address,
           info != NULL ? (unsigned)info->port : (unsigned)svc.cfg.port);
    fflush(stdout);

    wait_for_stop(&stop);

    /* Wake every delayed or hanging request, then let MHD join them. */
    if (write(svc.stop_pipe[1], "x", 1) != 1)
        perror("test-service: cannot wake waiting requests");
    MHD_stop_daemon(d);
    rc = 0;

destroy_plain:
    MHD_destroy_response(svc.plain);
close_pipe:
    close(svc.stop_pipe[0]);
    close(svc.stop_pipe[1]);
    return rc;
}
