/*
 * ctl_engine: HTTP calls to the engine (see ctl_engine.h).
 */
#include "ctl_engine.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *data;
    size_t len;
    int too_big;
} buf;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    size_t add = size * n;
    char *grown;

    if (b->len + add > (size_t)CTL_ENGINE_MAX_BODY) {
        b->too_big = 1;
        return 0;
    }
    grown = realloc(b->data, b->len + add + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, p, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/*
 * One request: method GET or POST (empty body) to path. Returns the
 * HTTP status and the body in *b (the caller frees b->data), or -1 with
 * err.
 */
static int call(const ctl_engine_addr *a, const char *method,
                const char *path, buf *b, char *err, size_t errlen)
{
    CURL *h = curl_easy_init();
    char url[512], curl_err[CURL_ERROR_SIZE] = "";
    long code = 0;
    CURLcode rc;

    memset(b, 0, sizeof(*b));
    if (h == NULL) {
        snprintf(err, errlen, "cannot make a curl handle");
        return -1;
    }
    snprintf(url, sizeof(url), "http://%s:%d%s", a->ip, a->port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, a->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, a->timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }

    rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s %s: %s", method, url,
                 b->too_big ? "answer too large"
                 : *curl_err ? curl_err
                             : curl_easy_strerror(rc));
        free(b->data);
        b->data = NULL;
        return -1;
    }
    return (int)code;
}

int ctl_engine_readyz(const ctl_engine_addr *a, char *err, size_t errlen)
{
    buf b;
    int code = call(a, "GET", "/readyz", &b, err, errlen);

    free(b.data);
    if (code < 0)
        return -1;
    if (code != 200) {
        snprintf(err, errlen, "GET http://%s:%d/readyz: HTTP %d", a->ip,
                 a->port, code);
        return -1;
    }
    return 0;
}

int ctl_engine_trigger(const ctl_engine_addr *a, const char *key, char **id,
                       char *err, size_t errlen)
{
    char path[256];
    buf b;
    cJSON *doc;
    const char *s;
    int code;

    *id = NULL;
    snprintf(path, sizeof(path), "/runs?async=1&key=%s", key);
    code = call(a, "POST", path, &b, err, errlen);
    if (code < 0)
        return -1;
    doc = b.data ? cJSON_Parse(b.data) : NULL;
    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "id"));
    if ((code == 202 || code == 200) && s && *s)
        *id = strdup(s);
    else
        snprintf(err, errlen, "POST http://%s:%d%s: HTTP %d without a run id",
                 a->ip, a->port, path, code);
    cJSON_Delete(doc);
    free(b.data);
    return *id ? 0 : -1;
}

int ctl_engine_poll(const ctl_engine_addr *a, const char *id, char **body,
                    size_t *len, char *err, size_t errlen)
{
    char path[256];
    buf b;
    int code;

    *body = NULL;
    *len = 0;
    snprintf(path, sizeof(path), "/runs/%s", id);
    code = call(a, "GET", path, &b, err, errlen);
    if (code == 200 && b.data) {
        *body = b.data;
        *len = b.len;
        return code;
    }
    free(b.data);
    if (code == 200) {
        snprintf(err, errlen, "GET http://%s:%d%s: empty result", a->ip,
                 a->port, path);
        return -1;
    }
    return code;
}
