/*
 * kube: REST calls over libcurl. Each call borrows an easy handle from a
 * small pool (curl keeps the connection alive inside the handle), sends
 * one request, and turns the answer into a cJSON tree or a kube_err.
 * Watches use a handle of their own and feed the body to kube_wdec.
 */
#define _GNU_SOURCE
#include "kube.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define KUBE_POOL_MAX 16
#define KUBE_MAX_BODY ((size_t)256 << 20)
#define KUBE_MAX_LINE ((size_t)16 << 20)
#define KUBE_PATH_MAX 4096

struct kube {
    kcfg *cfg;
    kube_config c;
    char *user_agent;
    int https;
    pthread_mutex_t pool_lock;
    CURL *pool[KUBE_POOL_MAX];
    int npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

static void err_set(kube_err *e, int code, const char *reason,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_set(kube_err *e, int code, const char *reason,
                    const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return;
    e->code = code;
    snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

/* Fills e from a Status object (or anything with code/reason/message). */
static void err_from_status(kube_err *e, int code, const cJSON *st)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(st, "code");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, "reason");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, "message");

    if (cJSON_IsNumber(c) && c->valueint > 0)
        code = c->valueint;
    err_set(e, code, cJSON_IsString(r) ? r->valuestring : "", "%s",
            cJSON_IsString(m) ? m->valuestring : "no message");
}

int kube_err_not_found(const kube_err *e)
{
    return e && e->code == 404;
}

int kube_err_conflict(const kube_err *e)
{
    return e && e->code == 409;
}

int kube_err_expired(const kube_err *e)
{
    return e && e->code == 410;
}

const char *kube_event_name(kube_event_type t)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED",
                                        "BOOKMARK", "ERROR"};

    return (unsigned)t < 5 ? names[t] : "UNKNOWN";
}

/* Object helpers. */

static const char *meta_str(const cJSON *obj, const char *key)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *kube_obj_name(const cJSON *obj)
{
    return meta_str(obj, "name");
}

const char *kube_obj_ns(const cJSON *obj)
{
    return meta_str(obj, "namespace");
}

const char *kube_obj_uid(const cJSON *obj)
{
    return meta_str(obj, "uid");
}

const char *kube_obj_rv(const cJSON *obj)
{
    return meta_str(obj, "resourceVersion");
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

int kube_rv_cmp(const char *a, const char *b)
{
    size_t la, lb;

    if (!a || !b)
        return (a != NULL) - (b != NULL);
    if (!all_digits(a) || !all_digits(b))
        return strcmp(a, b);
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    la = strlen(a);
    lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a, b);
}

/* Paths and queries. */

static int is_unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends s percent-encoded; returns the new length or -1. */
static int put_escaped(char *buf, size_t cap, size_t n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (is_unreserved(c)) {
            if (n + 1 >= cap)
                return -1;
            buf[n++] = (char)c;
        } else {
            if (n + 3 >= cap)
                return -1;
            buf[n++] = '%';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        }
    }
    buf[n] = '\0';
    return (int)n;
}

static int put_raw(char *buf, size_t cap, size_t n, const char *s)
{
    size_t l = strlen(s);

    if (n + l >= cap)
        return -1;
    memcpy(buf + n, s, l + 1);
    return (int)(n + l);
}

int kube_path(const kube_ref *r, char *buf, size_t buflen)
{
    int n = 0;

    if (!r || !r->version || !*r->version || !r->resource ||
        !*r->resource || buflen == 0)
        return -1;
    if (!r->group || !*r->group) {
        n = put_raw(buf, buflen, 0, "/api/");
    } else {
        n = put_raw(buf, buflen, 0, "/apis/");
        if (n >= 0)
            n = put_escaped(buf, buflen, (size_t)n, r->group);
        if (n >= 0)
            n = put_raw(buf, buflen, (size_t)n, "/");
    }
    if (n >= 0)
        n = put_escaped(buf, buflen, (size_t)n, r->version);
    if (n >= 0 && r->ns && *r->ns) {
        n = put_raw(buf, buflen, (size_t)n, "/namespaces/");
        if (n >= 0)
            n = put_escaped(buf, buflen, (size_t)n, r->ns);
    }
    if (n >= 0)
        n = put_raw(buf, buflen, (size_t)n, "/");
    if (n >= 0)
        n = put_escaped(buf, buflen, (size_t)n, r->resource);
    if (n >= 0 && r->name && *r->name) {
        n = put_raw(buf, buflen, (size_t)n, "/");
        if (n >= 0)
            n = put_escaped(buf, buflen, (size_t)n, r->name);
        if (n >= 0 && r->sub && *r->sub) {
            n = put_raw(buf, buflen, (size_t)n, "/");
            if (n >= 0)
                n = put_escaped(buf, buflen, (size_t)n, r->sub);
        }
    }
    return n < 0 ? -1 : 0;
}

/* Appends "&key=value" (or "?key=value" first) when value is set. */
static int add_query(char *buf, size_t cap, const char *key,
                     const char *value)
{
    int n = (int)strlen(buf);

    if (!value)
        return 0;
    n = put_raw(buf, cap, (size_t)n, strchr(buf, '?') ? "&" : "?");
    if (n >= 0)
        n = put_raw(buf, cap, (size_t)n, key);
    if (n >= 0)
        n = put_raw(buf, cap, (size_t)n, "=");
    if (n >= 0)
        n = put_escaped(buf, cap, (size_t)n, value);
    return n < 0 ? -1 : 0;
}

/* Client. */

int kube_new(kcfg *cfg, const kube_config *kc, kube **out, char *err,
             size_t errlen)
{
    kube *k;

    pthread_once(&curl_once, curl_init_once);
    if (!cfg || !cfg->server) {
        snprintf(err, errlen, "kube client: no configuration or server");
        return -1;
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "kube client: out of memory");
        return -1;
    }
    if (kc)
        k->c = *kc;
    if (k->c.timeout_ms <= 0)
        k->c.timeout_ms = 30000;
    if (k->c.connect_ms <= 0)
        k->c.connect_ms = 10000;
    if (k->c.retries == 0)
        k->c.retries = 4;
    else if (k->c.retries < 0)
        k->c.retries = 0;
    if (k->c.retry_base_ms <= 0)
        k->c.retry_base_ms = 200;
    if (k->c.retry_max_ms <= 0)
        k->c.retry_max_ms = 10000;
    k->user_agent = strdup(kc && kc->user_agent ? kc->user_agent
                                                : "astertower");
    k->c.user_agent = k->user_agent;
    k->cfg = cfg;
    k->https = strncmp(cfg->server, "https://", 8) == 0;
    pthread_mutex_init(&k->pool_lock, NULL);
    *out = k;
    return 0;
}

void kube_free(kube *k)
{
    if (!k)
        return;
    for (int i = 0; i < k->npool; i++)
        curl_easy_cleanup(k->pool[i]);
    pthread_mutex_destroy(&k->pool_lock);
    free(k->user_agent);
    free(k);
}

const char *kube_namespace(const kube *k)
{
    return k->cfg->ns ? k->cfg->ns : "default";
}

kcfg *kube_kcfg(kube *k)
{
    return k->cfg;
}

static CURL *handle_get(kube *k)
{
    CURL *h = NULL;

    pthread_mutex_lock(&k->pool_lock);
    if (k->npool > 0)
        h = k->pool[--k->npool];
    pthread_mutex_unlock(&k->pool_lock);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void handle_put(kube *k, CURL *h)
{
    pthread_mutex_lock(&k->pool_lock);
    if (k->npool < KUBE_POOL_MAX) {
        k->pool[k->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&k->pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

/* One answer being received. */
typedef struct resp {
    char *body;
    size_t len, cap;
    long retry_after; /* seconds, -1 when absent */
    int too_big;
} resp;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    resp *r = ud;
    size_t n = size * nmemb;

    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        char *nb;

        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > KUBE_MAX_BODY) {
            r->too_big = 1;
            return 0;
        }
        nb = realloc(r->body, cap);
        if (!nb)
            return 0;
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    resp *r = ud;
    size_t n = size * nmemb;
    static const char key[] = "retry-after:";

    if (n > sizeof(key) && strncasecmp(data, key, sizeof(key) - 1) == 0)
        r->retry_after = strtol(data + sizeof(key) - 1, NULL, 10);
    return n;
}

/* TLS, auth and common headers. Returns the header list to free. */
static struct curl_slist *setup_handle(kube *k, CURL *h, const char *url,
                                       const char *ctype, char *errbuf)
{
    kcfg *c = k->cfg;
    struct curl_slist *hd = NULL;
    char line[8192];
    char *tok;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, k->c.connect_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, k->user_agent);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");

    if (k->https) {
        if (c->ca_pem) {
            struct curl_blob b = {c->ca_pem, c->ca_len, CURL_BLOB_NOCOPY};

            curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
        }
        if (c->cert_pem && c->key_pem) {
            struct curl_blob cb = {c->cert_pem, c->cert_len,
                                   CURL_BLOB_NOCOPY};
            struct curl_blob kb = {c->key_pem, c->key_len,
                                   CURL_BLOB_NOCOPY};

            curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
            curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
            curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
        if (c->insecure) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        /* Like kubectl, credentials go over TLS only. */
        tok = kcfg_token(c, 0);
        if (tok) {
            snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
            hd = curl_slist_append(hd, line);
            free(tok);
        }
    }
    hd = curl_slist_append(hd, "Accept: application/json");
    snprintf(line, sizeof(line), "Content-Type: %s",
             ctype ? ctype : "application/json");
    hd = curl_slist_append(hd, line);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    return hd;
}

/*
 * One attempt. Returns the HTTP code (0 when no answer), the body in r
 * and the transport reason in errbuf.
 */
static long do_once(kube *k, const char *method, const char *url,
                    const char *ctype, const char *body, resp *r,
                    char *errbuf)
{
    CURL *h = handle_get(k);
    struct curl_slist *hd;
    long code = 0;
    CURLcode rc;

    if (!h) {
        snprintf(errbuf, CURL_ERROR_SIZE, "out of memory");
        return 0;
    }
    hd = setup_handle(k, h, url, ctype, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, k->c.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "GET"))
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);

    errbuf[0] = '\0';
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    else if (!errbuf[0])
        snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    if (r->too_big)
        snprintf(errbuf, CURL_ERROR_SIZE, "answer over %zu bytes",
                 KUBE_MAX_BODY);
    curl_slist_free_all(hd);
    handle_put(k, h);
    return rc == CURLE_OK ? code : 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int idempotent(const char *method)
{
    return !strcmp(method, "GET") || !strcmp(method, "PUT") ||
           !strcmp(method, "DELETE") || !strcmp(method, "HEAD");
}

/* Delay before attempt n+1: Retry-After, else base * 2^n, capped. */
static long retry_delay(kube *k, int attempt, long retry_after)
{
    long d = k->c.retry_base_ms;

    if (retry_after >= 0)
        d = retry_after * 1000;
    else
        for (int i = 0; i < attempt && d < k->c.retry_max_ms; i++)
            d *= 2;
    return d > k->c.retry_max_ms ? k->c.retry_max_ms : d;
}

int kube_request(kube *k, const char *method, const char *path,
                 const char *ctype, const char *body, cJSON **out,
                 kube_err *e)
{
    char url[KUBE_PATH_MAX + 512];
    char errbuf[CURL_ERROR_SIZE];
    int reauth = 0, attempt = 0;
    resp r;
    long code;

    if (out)
        *out = NULL;
    if (snprintf(url, sizeof(url), "%s%s", k->cfg->server, path) >=
        (int)sizeof(url)) {
        err_set(e, 0, "", "%s %s: URL too long", method, path);
        return -1;
    }

    for (;;) {
        memset(&r, 0, sizeof(r));
        r.retry_after = -1;
        code = do_once(k, method, url, ctype, body, &r, errbuf);

        if (code == 401 && !reauth && k->cfg->token_file_) {
            reauth = 1;
            free(kcfg_token(k->cfg, 1));
            free(r.body);
            continue;
        }
        if ((code == 0 || code == 429 || code >= 500) &&
            (idempotent(method) || code == 429) &&
            attempt < k->c.retries) {
            long d = retry_delay(k, attempt++, r.retry_after);

            log_msg(LOG_DEBUG, "kube", "%s %s answered %ld (%s); "
                    "retrying in %ld ms", method, path, code,
                    code ? "server" : errbuf, d);
            free(r.body);
            sleep_ms(d);
            continue;
        }
        break;
    }

    if (code == 0) {
        err_set(e, 0, "", "%s %s: %s", method, url, errbuf);
        free(r.body);
        return -1;
    }
    if (code >= 200 && code < 300) {
        if (out && r.body && r.len)
            *out = cJSON_ParseWithLength(r.body, r.len);
        if (e)
            memset(e, 0, sizeof(*e));
        free(r.body);
        return 0;
    }

    {
        cJSON *st = r.body ? cJSON_ParseWithLength(r.body, r.len) : NULL;

        if (cJSON_IsObject(st))
            err_from_status(e, (int)code, st);
        else
            err_set(e, (int)code, "", "%s %s: HTTP %ld", method, path,
                    code);
        if (e)
            e->code = (int)code;
        cJSON_Delete(st);
    }
    free(r.body);
    return -1;
}

/* Verbs. */

static int ref_path(const kube_ref *r, char *buf, size_t cap, kube_err *e)
{
    if (kube_path(r, buf, cap) == 0)
        return 0;
    err_set(e, 0, "", "bad resource reference %s/%s/%s",
            r && r->group ? r->group : "", r && r->version ? r->version
                                                           : "",
            r && r->resource ? r->resource : "");
    return -1;
}

static int send_obj(kube *k, const char *method, const char *path,
                    const char *ctype, const cJSON *obj, cJSON **out,
                    kube_err *e)
{
    char *body = cJSON_PrintUnformatted(obj);
    int rc;

    if (!body) {
        err_set(e, 0, "", "%s %s: cannot encode the body", method, path);
        return -1;
    }
    rc = kube_request(k, method, path, ctype, body, out, e);
    free(body);
    return rc;
}

int kube_get(kube *k, const kube_ref *r, cJSON **out, kube_err *e)
{
    char path[KUBE_PATH_MAX];

    if (ref_path(r, path, sizeof(path), e) < 0)
        return -1;
    return kube_request(k, "GET", path, NULL, NULL, out, e);
}

/* Moves the items of page into all. */
static void take_items(cJSON *all, cJSON *page)
{
    cJSON *dst = cJSON_GetObjectItemCaseSensitive(all, "items");
    cJSON *src = cJSON_GetObjectItemCaseSensitive(page, "items");

    if (!cJSON_IsArray(dst)) {
        cJSON_DeleteItemFromObjectCaseSensitive(all, "items");
        dst = cJSON_AddArrayToObject(all, "items");
    }
    while (cJSON_IsArray(src) && src->child)
        cJSON_AddItemToArray(dst, cJSON_DetachItemViaPointer(src,
                                                             src->child));
}

int kube_list(kube *k, const kube_ref *r, const kube_list_opts *o,
              cJSON **out, kube_err *e)
{
    kube_ref coll = *r;
    char base[KUBE_PATH_MAX], path[KUBE_PATH_MAX], lim[32];
    char *cont = NULL;
    cJSON *all = NULL;
    int limit = o && o->limit ? o->limit : 500;

    if (out)
        *out = NULL;
    coll.name = NULL;
    coll.sub = NULL;
    if (ref_path(&coll, base, sizeof(base), e) < 0)
        return -1;
    snprintf(lim, sizeof(lim), "%d", limit);

    for (;;) {
        cJSON *page, *meta, *c;

        snprintf(path, sizeof(path), "%s", base);
        if ((o && (add_query(path, sizeof(path), "labelSelector",
                             o->label_selector) < 0 ||
                   add_query(path, sizeof(path), "fieldSelector",
                             o->field_selector) < 0)) ||
            (!cont && o && add_query(path, sizeof(path), "resourceVersion",
                                     o->resource_version) < 0) ||
            add_query(path, sizeof(path), "limit",
                      limit > 0 ? lim : NULL) < 0 ||
            add_query(path, sizeof(path), "continue", cont) < 0) {
            err_set(e, 0, "", "list %s: query too long", base);
            goto fail;
        }
        if (kube_request(k, "GET", path, NULL, NULL, &page, e) < 0)
            goto fail;
        if (!cJSON_IsObject(page)) {
            cJSON_Delete(page);
            err_set(e, 0, "", "list %s: answer is not a JSON object",
                    base);
            goto fail;
        }
        free(cont);
        cont = NULL;
        meta = cJSON_GetObjectItemCaseSensitive(page, "metadata");
        c = cJSON_GetObjectItemCaseSensitive(meta, "continue");
        if (cJSON_IsString(c) && *c->valuestring)
            cont = strdup(c->valuestring);
        if (!all) {
            all = page;
            if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(all,
                                                                "items")))
                take_items(all, all);
        } else {
            take_items(all, page);
            cJSON_Delete(page);
        }
        if (!cont)
            break;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(all, "metadata"), "continue");
    if (out)
        *out = all;
    else
        cJSON_Delete(all);
    return 0;

fail:
    free(cont);
    cJSON_Delete(all);
    return -1;
}

int kube_create(kube *k, const kube_ref *r, const cJSON *obj, cJSON **out,
                kube_err *e)
{
    kube_ref coll = *r;
    char path[KUBE_PATH_MAX];

    if (out)
        *out = NULL;
    coll.name = NULL;
    coll.sub = NULL;
    if (ref_path(&coll, path, sizeof(path), e) < 0)
        return -1;
    return send_obj(k, "POST", path, NULL, obj, out, e);
}

static int put_obj(kube *k, const kube_ref *r, const char *sub,
                   const cJSON *obj, cJSON **out, kube_err *e)
{
    kube_ref one = *r;
    char path[KUBE_PATH_MAX];

    if (out)
        *out = NULL;
    if (!one.name)
        one.name = kube_obj_name(obj);
    one.sub = sub;
    if (!one.name) {
        err_set(e, 0, "", "update %s: no name in the reference or the "
                "object", r->resource ? r->resource : "");
        return -1;
    }
    if (ref_path(&one, path, sizeof(path), e) < 0)
        return -1;
    return send_obj(k, "PUT", path, NULL, obj, out, e);
}

int kube_update(kube *k, const kube_ref *r, const cJSON *obj, cJSON **out,
                kube_err *e)
{
    return put_obj(k, r, r->sub, obj, out, e);
}

int kube_update_status(kube *k, const kube_ref *r, const cJSON *obj,
                       cJSON **out, kube_err *e)
{
    return put_obj(k, r, "status", obj, out, e);
}

int kube_patch(kube *k, const kube_ref *r, kube_patch_type type,
               const cJSON *patch, const char *field_manager, int force,
               cJSON **out, kube_err *e)
{
    static const char *const ctypes[] = {
        "application/merge-patch+json", "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml"};
    char path[KUBE_PATH_MAX];

    if (out)
        *out = NULL;
    if ((unsigned)type > KUBE_PATCH_APPLY || !r->name) {
        err_set(e, 0, "", "patch %s: bad patch type or no name",
                r->resource ? r->resource : "");
        return -1;
    }
    if (type == KUBE_PATCH_APPLY && !field_manager)
        field_manager = "astertower";
    if (ref_path(r, path, sizeof(path), e) < 0 ||
        add_query(path, sizeof(path), "fieldManager", field_manager) < 0 ||
        add_query(path, sizeof(path), "force",
                  type == KUBE_PATCH_APPLY && force ? "true" : NULL) < 0) {
        if (e && !e->message[0])
            err_set(e, 0, "", "patch %s: path too long", r->name);
        return -1;
    }
    return send_obj(k, "PATCH", path, ctypes[type], patch, out, e);
}

int kube_delete(kube *k, const kube_ref *r, const kube_delete_opts *o,
                cJSON **out, kube_err *e)
{
    char path[KUBE_PATH_MAX];
    cJSON *body = NULL, *pre;
    int rc;

    if (out)
        *out = NULL;
    if (!r->name) {
        err_set(e, 0, "", "delete %s: no name",
                r->resource ? r->resource : "");
        return -1;
    }
    if (ref_path(r, path, sizeof(path), e) < 0)
        return -1;
    if (!o || (!o->propagation && !o->uid && !o->resource_version))
        return kube_request(k, "DELETE", path, NULL, NULL, out, e);

    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "kind", "DeleteOptions");
    cJSON_AddStringToObject(body, "apiVersion", "v1");
    if (o->propagation)
        cJSON_AddStringToObject(body, "propagationPolicy", o->propagation);
    if (o->uid || o->resource_version) {
        pre = cJSON_AddObjectToObject(body, "preconditions");
        if (o->uid)
            cJSON_AddStringToObject(pre, "uid", o->uid);
        if (o->resource_version)
            cJSON_AddStringToObject(pre, "resourceVersion",
                                    o->resource_version);
    }
    rc = send_obj(k, "DELETE", path, NULL, body, out, e);
    cJSON_Delete(body);
    return rc;
}

/* Watch-stream decoding. */

struct kube_wdec {
    char *buf;
    size_t len, cap, max_line;
    kube_watch_fn fn;
    void *ud;
    int state; /* 0 going, 1 stopped, -1 failed */
    kube_err last;
};

kube_wdec *kube_wdec_new(size_t max_line, kube_watch_fn fn, void *ud)
{
    kube_wdec *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->max_line = max_line ? max_line : KUBE_MAX_LINE;
    d->fn = fn;
    d->ud = ud;
    return d;
}

void kube_wdec_free(kube_wdec *d)
{
    if (!d)
        return;
    free(d->buf);
    free(d);
}

size_t kube_wdec_pending(const kube_wdec *d)
{
    return d->len;
}

static int event_type(const char *s, kube_event_type *t)
{
    for (int i = 0; i <= KUBE_ERROR; i++) {
        if (!strcmp(s, kube_event_name((kube_event_type)i))) {
            *t = (kube_event_type)i;
            return 0;
        }
    }
    return -1;
}

/* Handles one complete line. Returns 0, 1 (stop) or -1 (bad). */
static int wdec_line(kube_wdec *d, const char *line, size_t len)
{
    cJSON *ev, *type, *obj;
    kube_event_type t;
    int rc = 0;

    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return 0;
    ev = cJSON_ParseWithLength(line, len);
    type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (!cJSON_IsString(type) || !cJSON_IsObject(obj) ||
        event_type(type->valuestring, &t) < 0) {
        err_set(&d->last, 0, "", "watch: bad event: %s",
                !ev ? "not JSON" : "no known type or no object");
        rc = -1;
    } else if (t == KUBE_ERROR) {
        err_from_status(&d->last, 500, obj);
        rc = 1;
    } else if (d->fn(t, obj, d->ud) != 0) {
        memset(&d->last, 0, sizeof(d->last));
        rc = 1;
    }
    cJSON_Delete(ev);
    return rc;
}

static int wdec_keep(kube_wdec *d, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    if (d->len + len > d->max_line) {
        err_set(&d->last, 0, "", "watch: event over %zu bytes",
                d->max_line);
        return -1;
    }
    if (d->len + len > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        char *nb;

        while (cap < d->len + len)
            cap *= 2;
        nb = realloc(d->buf, cap);
        if (!nb) {
            err_set(&d->last, 0, "", "watch: out of memory");
            return -1;
        }
        d->buf = nb;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, data, len);
    d->len += len;
    return 0;
}

int kube_wdec_feed(kube_wdec *d, const char *data, size_t len, kube_err *e)
{
    while (d->state == 0 && len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;

        if (wdec_keep(d, data, take) < 0) {
            d->state = -1;
            break;
        }
        data += take;
        len -= take;
        if (!nl)
            break;
        data++;
        len--;
        d->state = wdec_line(d, d->buf, d->len);
        d->len = 0;
    }
    if (d->state != 0 && e)
        *e = d->last;
    return d->state;
}

/* Watch. */

typedef struct wctx {
    kube_wdec *dec;
    CURL *h;
    long code;       /* HTTP status once known */
    resp errbody;    /* body of a non-2xx answer */
    const int *cancel;
    kube_err err;
    int fed;         /* decoder result */
} wctx;

static size_t on_watch_body(char *data, size_t size, size_t nmemb,
                            void *ud)
{
    wctx *w = ud;
    size_t n = size * nmemb;

    if (w->code == 0)
        curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->code);
    if (w->code >= 300) {
        if (w->errbody.len < 65536)
            return on_body(data, size, nmemb, &w->errbody);
        return n;
    }
    w->fed = kube_wdec_feed(w->dec, data, n, &w->err);
    return w->fed == 0 ? n : 0;
}

static int on_watch_progress(void *ud, curl_off_t dt, curl_off_t dn,
                             curl_off_t ut, curl_off_t un)
{
    wctx *w = ud;

    return w->cancel && __atomic_load_n(w->cancel, __ATOMIC_ACQUIRE);
}

static int watch_path(const kube_ref *r, const kube_watch_opts *o,
                      char *path, size_t cap, kube_err *e)
{
    kube_ref coll = *r;
    char to[32];

    coll.name = NULL;
    coll.sub = NULL;
    if (ref_path(&coll, path, cap, e) < 0)
        return -1;
    snprintf(to, sizeof(to), "%d", o ? o->timeout_seconds : 0);
    if (add_query(path, cap, "watch", "true") < 0 ||
        (o && (add_query(path, cap, "labelSelector",
                         o->label_selector) < 0 ||
               add_query(path, cap, "fieldSelector",
                         o->field_selector) < 0 ||
               add_query(path, cap, "resourceVersion",
                         o->resource_version) < 0 ||
               add_query(path, cap, "allowWatchBookmarks",
                         o->allow_bookmarks ? "true" : NULL) < 0 ||
               add_query(path, cap, "timeoutSeconds",
                         o->timeout_seconds > 0 ? to : NULL) < 0))) {
        err_set(e, 0, "", "watch %s: query too long", path);
        return -1;
    }
    return 0;
}

/* Turns the end of a watch into the documented return. */
static int watch_result(wctx *w, CURLcode rc, const char *path,
                        const char *errbuf, kube_err *e)
{
    if (w->code >= 300) {
        cJSON *st = cJSON_ParseWithLength(w->errbody.body ? w->errbody.body
                                                          : "",
                                          w->errbody.len);

        if (cJSON_IsObject(st))
            err_from_status(e, (int)w->code, st);
        else
            err_set(e, (int)w->code, "", "watch %s: HTTP %ld", path,
                    w->code);
        if (e)
            e->code = (int)w->code;
        cJSON_Delete(st);
        return -1;
    }
    if (w->fed == 1) {
        /* The callback stopped (no code) or an ERROR event came. */
        if (e)
            *e = w->err;
        return w->err.code ? -1 : 0;
    }
    if (w->fed < 0) {
        if (e)
            *e = w->err;
        return -1;
    }
    if (rc == CURLE_OK || rc == CURLE_ABORTED_BY_CALLBACK) {
        if (e)
            memset(e, 0, sizeof(*e));
        return 0;
    }
    err_set(e, 0, "", "watch %s: %s", path, errbuf);
    return -1;
}

int kube_watch(kube *k, const kube_ref *r, const kube_watch_opts *o,
               kube_watch_fn fn, void *ud, kube_err *e)
{
    char path[KUBE_PATH_MAX], url[KUBE_PATH_MAX + 512];
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hd;
    wctx w;
    CURLcode rc;
    int ret;

    memset(&w, 0, sizeof(w));
    if (watch_path(r, o, path, sizeof(path), e) < 0)
        return -1;
    snprintf(url, sizeof(url), "%s%s", k->cfg->server, path);
    w.dec = kube_wdec_new(o ? o->max_line : 0, fn, ud);
    w.h = curl_easy_init();
    w.cancel = o ? o->cancel : NULL;
    if (!w.dec || !w.h) {
        err_set(e, 0, "", "watch %s: out of memory", path);
        ret = -1;
        goto out;
    }

    hd = setup_handle(k, w.h, url, NULL, errbuf);
    curl_easy_setopt(w.h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(w.h, CURLOPT_WRITEFUNCTION, on_watch_body);
    curl_easy_setopt(w.h, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(w.h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(w.h, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
    curl_easy_setopt(w.h, CURLOPT_XFERINFODATA, &w);
    curl_easy_setopt(w.h, CURLOPT_TCP_KEEPIDLE, 30L);

    rc = curl_easy_perform(w.h);
    if (w.code == 0)
        curl_easy_getinfo(w.h, CURLINFO_RESPONSE_CODE, &w.code);
    curl_slist_free_all(hd);
    ret = watch_result(&w, rc, path, errbuf[0] ? errbuf
                                               : curl_easy_strerror(rc),
                       e);

out:
    if (w.h)
        curl_easy_cleanup(w.h);
    kube_wdec_free(w.dec);
    free(w.errbody.body);
    return ret;
}
