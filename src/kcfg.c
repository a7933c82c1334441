/*
 * kcfg: kubeconfig and in-cluster loading. A kubeconfig file is read
 * into a cJSON tree (YAML through libyaml; every scalar kept as a
 * string), relative paths are made absolute per file, files are merged
 * first-wins, and the chosen context is resolved into a kcfg.
 */
#define _GNU_SOURCE
#include "kcfg.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define KCFG_MAX_DEPTH 64
#define KCFG_MAX_FILE (4 << 20)
#define KCFG_TOKEN_TTL 60
#define KCFG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Hidden member naming the file an entry came from, for errors. */
#define KCFG_SRC "\x01src"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Reads a whole file, NUL-terminated. Returns NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (cap - n < 4096) {
            char *nb;

            if (cap >= KCFG_MAX_FILE) {
                errno = EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 8192;
            nb = realloc(buf, cap + 1);
            if (!nb)
                goto fail;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        errno = EIO;
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;

fail:
    fclose(f);
    free(buf);
    return NULL;
}

/* YAML to cJSON. */

typedef struct yconv {
    yaml_parser_t p;
    const char *name;
    char *err;
    size_t errlen;
} yconv;

static cJSON *y_node(yconv *y, yaml_event_t *ev, int depth);

static int y_next(yconv *y, yaml_event_t *ev)
{
    if (yaml_parser_parse(&y->p, ev))
        return 0;
    set_err(y->err, y->errlen, "kubeconfig %s: line %zu column %zu: %s",
            y->name, y->p.problem_mark.line + 1,
            y->p.problem_mark.column + 1,
            y->p.problem ? y->p.problem : "malformed YAML");
    return -1;
}

static cJSON *y_fail(yconv *y, yaml_event_t *ev, const char *what)
{
    set_err(y->err, y->errlen, "kubeconfig %s: line %zu: %s", y->name,
            ev->start_mark.line + 1, what);
    return NULL;
}

static cJSON *y_mapping(yconv *y, int depth)
{
    cJSON *obj = cJSON_CreateObject();
    yaml_event_t ev;

    while (obj) {
        char *key;
        cJSON *val;

        if (y_next(y, &ev) < 0)
            goto fail;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return obj;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            y_fail(y, &ev, "mapping keys must be scalars");
            yaml_event_delete(&ev);
            goto fail;
        }
        key = strdup((const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (!key || y_next(y, &ev) < 0) {
            free(key);
            goto fail;
        }
        val = y_node(y, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!val) {
            free(key);
            goto fail;
        }
        /* Duplicate keys: the last one wins, as in client-go. */
        if (cJSON_GetObjectItemCaseSensitive(obj, key))
            cJSON_ReplaceItemInObjectCaseSensitive(obj, key, val);
        else
            cJSON_AddItemToObject(obj, key, val);
        free(key);
    }
    return NULL;

fail:
    cJSON_Delete(obj);
    return NULL;
}

static cJSON *y_sequence(yconv *y, int depth)
{
    cJSON *arr = cJSON_CreateArray();
    yaml_event_t ev;

    while (arr) {
        cJSON *val;

        if (y_next(y, &ev) < 0)
            goto fail;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        val = y_node(y, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!val)
            goto fail;
        cJSON_AddItemToArray(arr, val);
    }
    return NULL;

fail:
    cJSON_Delete(arr);
    return NULL;
}

/* Builds the node that starts with ev (which the caller deletes). */
static cJSON *y_node(yconv *y, yaml_event_t *ev, int depth)
{
    if (depth > KCFG_MAX_DEPTH)
        return y_fail(y, ev, "nesting too deep");

    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;

        /* Plain null scalars become JSON null, as in YAML 1.1. */
        if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (!*v || !strcmp(v, "~") || !strcmp(v, "null")))
            return cJSON_CreateNull();
        return cJSON_CreateString(v);
    }
    case YAML_MAPPING_START_EVENT:
        return y_mapping(y, depth);
    case YAML_SEQUENCE_START_EVENT:
        return y_sequence(y, depth);
    case YAML_ALIAS_EVENT:
        return y_fail(y, ev, "YAML aliases are not supported");
    default:
        return y_fail(y, ev, "unexpected YAML event");
    }
}

/* Parses the first YAML document of text into a cJSON object. */
static cJSON *yaml_to_json(const char *text, size_t len, const char *name,
                           char *err, size_t errlen)
{
    yconv y = {.name = name, .err = err, .errlen = errlen};
    cJSON *root = NULL;
    yaml_event_t ev;
    int done = 0;

    if (!yaml_parser_initialize(&y.p)) {
        set_err(err, errlen, "kubeconfig %s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);

    while (!done && !root) {
        if (y_next(&y, &ev) < 0)
            break;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            done = 1;
            root = cJSON_CreateObject(); /* an empty document */
            break;
        default:
            root = y_node(&y, &ev, 0);
            done = 1;
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&y.p);

    if (root && cJSON_IsNull(root)) {
        cJSON_Delete(root);
        root = cJSON_CreateObject();
    }
    if (root && !cJSON_IsObject(root)) {
        set_err(err, errlen, "kubeconfig %s: top level is not a mapping",
                name);
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

/* Base64 (standard alphabet, padding optional, whitespace skipped). */
static char *b64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in);
    unsigned char *out = malloc(n / 4 * 3 + 4);
    unsigned int acc = 0;
    int bits = 0;
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;

        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else if (c == '=')
            break;
        else if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        else
            goto fail;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return (char *)out;

fail:
    free(out);
    return NULL;
}

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int bool_of(const cJSON *obj, const char *key)
{
    const char *s = str_of(obj, key);

    return s && (!strcmp(s, "true") || !strcmp(s, "True") ||
                 !strcmp(s, "TRUE") || !strcmp(s, "yes") ||
                 !strcmp(s, "on"));
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Makes a relative path member of obj absolute against dir. */
static void fix_path(cJSON *obj, const char *key, const char *dir)
{
    const char *p = str_of(obj, key);
    char *abs;

    if (!p || !*p || p[0] == '/' || !dir)
        return;
    if (asprintf(&abs, "%s/%s", dir, p) < 0)
        return;
    cJSON_ReplaceItemInObjectCaseSensitive(obj, key,
                                           cJSON_CreateString(abs));
    free(abs);
}

/*
 * Per file: tags entries with their file and makes paths absolute.
 * Returns 0, or -1 when a list or entry has the wrong shape.
 */
static int prepare_file(cJSON *doc, const char *name, const char *dir,
                        char *err, size_t errlen)
{
    static const char *const lists[] = {"clusters", "users", "contexts"};
    static const char *const inner[] = {"cluster", "user", "context"};

    for (int i = 0; i < 3; i++) {
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, lists[i]);
        cJSON *it;

        if (!arr || cJSON_IsNull(arr))
            continue;
        if (!cJSON_IsArray(arr)) {
            set_err(err, errlen, "kubeconfig %s: %s is not a list", name,
                    lists[i]);
            return -1;
        }
        cJSON_ArrayForEach(it, arr) {
            cJSON *body = cJSON_GetObjectItemCaseSensitive(it, inner[i]);

            if (!cJSON_IsObject(it) || !str_of(it, "name")) {
                set_err(err, errlen,
                        "kubeconfig %s: an entry of %s has no name", name,
                        lists[i]);
                return -1;
            }
            if (body && !cJSON_IsObject(body) && !cJSON_IsNull(body)) {
                set_err(err, errlen,
                        "kubeconfig %s: %s \"%s\": %s is not a mapping",
                        name, inner[i], str_of(it, "name"), inner[i]);
                return -1;
            }
            if (!cJSON_GetObjectItemCaseSensitive(it, KCFG_SRC))
                cJSON_AddStringToObject(it, KCFG_SRC, name);
            if (!cJSON_IsObject(body))
                continue;
            fix_path(body, "certificate-authority", dir);
            fix_path(body, "client-certificate", dir);
            fix_path(body, "client-key", dir);
            fix_path(body, "tokenFile", dir);
        }
    }
    return 0;
}

static cJSON *find_named(const cJSON *doc, const char *list,
                         const char *name)
{
    cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, list)) {
        const char *n = str_of(it, "name");

        if (n && !strcmp(n, name))
            return it;
    }
    return NULL;
}

/* Merges src into dst first-wins. src is consumed. */
static void merge_into(cJSON *dst, cJSON *src)
{
    static const char *const lists[] = {"clusters", "users", "contexts"};

    if (!str_of(dst, "current-context") && str_of(src, "current-context"))
        cJSON_AddStringToObject(dst, "current-context",
                                str_of(src, "current-context"));

    for (int i = 0; i < 3; i++) {
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(src, lists[i]);
        cJSON *darr = cJSON_GetObjectItemCaseSensitive(dst, lists[i]);

        if (!cJSON_IsArray(arr))
            continue;
        if (!cJSON_IsArray(darr)) {
            cJSON_DeleteItemFromObjectCaseSensitive(dst, lists[i]);
            darr = cJSON_AddArrayToObject(dst, lists[i]);
        }
        while (arr->child) {
            cJSON *it = cJSON_DetachItemViaPointer(arr, arr->child);

            if (find_named(dst, lists[i], str_of(it, "name")))
                cJSON_Delete(it);
            else
                cJSON_AddItemToArray(darr, it);
        }
    }
    cJSON_Delete(src);
}

/*
 * Loads a PEM from key-data (base64) or key (path) of body into *pem.
 * Returns 0 (also when neither is set), or -1 with err.
 */
static int load_pem(const cJSON *body, const char *field, const char *what,
                    const char *entry, const char *src, char **pem,
                    size_t *len, char *err, size_t errlen)
{
    char dkey[64];
    const char *data, *path;

    snprintf(dkey, sizeof(dkey), "%s-data", field);
    data = str_of(body, dkey);
    path = str_of(body, field);

    if (data && *data) {
        *pem = b64_decode(data, len);
        if (!*pem) {
            set_err(err, errlen, "kubeconfig %s: %s \"%s\": %s is not "
                    "valid base64", src, what, entry, dkey);
            return -1;
        }
        return 0;
    }
    if (path && *path) {
        *pem = read_file(path, len);
        if (!*pem) {
            set_err(err, errlen, "kubeconfig %s: %s \"%s\": %s %s: %s",
                    src, what, entry, field, path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static char *read_token_file(const char *path)
{
    char *t = read_file(path, NULL);
    size_t n;

    if (!t)
        return NULL;
    n = strlen(t);
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
        t[--n] = '\0';
    return t;
}

static kcfg *kcfg_alloc(void)
{
    kcfg *c = calloc(1, sizeof(*c));

    if (c)
        pthread_mutex_init(&c->lock_, NULL);
    return c;
}

static int resolve_cluster(kcfg *c, const cJSON *ent, char *err,
                           size_t errlen)
{
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(ent, "cluster");
    const char *name = str_of(ent, "name"), *src = str_of(ent, KCFG_SRC);
    const char *server = str_of(body, "server");
    size_t n;

    if (!server || !*server) {
        set_err(err, errlen, "kubeconfig %s: cluster \"%s\": server is "
                "not set", src, name);
        return -1;
    }
    if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7)) {
        set_err(err, errlen, "kubeconfig %s: cluster \"%s\": server \"%s\""
                " is not an http or https URL", src, name, server);
        return -1;
    }
    c->server = strdup(server);
    n = strlen(c->server);
    while (n > 8 && c->server[n - 1] == '/')
        c->server[--n] = '\0';

    c->insecure = bool_of(body, "insecure-skip-tls-verify");
    if (c->insecure && ((str_of(body, "certificate-authority") &&
                         *str_of(body, "certificate-authority")) ||
                        (str_of(body, "certificate-authority-data") &&
                         *str_of(body, "certificate-authority-data")))) {
        set_err(err, errlen, "kubeconfig %s: cluster \"%s\": "
                "insecure-skip-tls-verify cannot be combined with a "
                "certificate authority", src, name);
        return -1;
    }
    if (str_of(body, "tls-server-name"))
        c->tls_server_name = strdup(str_of(body, "tls-server-name"));
    return load_pem(body, "certificate-authority", "cluster", name, src,
                    &c->ca_pem, &c->ca_len, err, errlen);
}

static int resolve_user(kcfg *c, const cJSON *ent, char *err,
                        size_t errlen)
{
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(ent, "user");
    const char *name = str_of(ent, "name"), *src = str_of(ent, KCFG_SRC);
    const char *tok = str_of(body, "token"), *tf = str_of(body, "tokenFile");

    if (cJSON_GetObjectItemCaseSensitive(body, "exec") &&
        !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(body, "exec"))) {
        set_err(err, errlen, "kubeconfig %s: user \"%s\": exec credential "
                "plugins are not supported", src, name);
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(body, "auth-provider") &&
        !cJSON_IsNull(
            cJSON_GetObjectItemCaseSensitive(body, "auth-provider"))) {
        set_err(err, errlen, "kubeconfig %s: user \"%s\": auth-provider "
                "plugins are not supported", src, name);
        return -1;
    }
    if (str_of(body, "username") || str_of(body, "password")) {
        set_err(err, errlen, "kubeconfig %s: user \"%s\": basic "
                "authentication is not supported", src, name);
        return -1;
    }

    if (tok && *tok) {
        c->token_ = strdup(tok);
    } else if (tf && *tf) {
        c->token_file_ = strdup(tf);
        c->token_ = read_token_file(tf);
        if (!c->token_) {
            set_err(err, errlen, "kubeconfig %s: user \"%s\": tokenFile "
                    "%s: %s", src, name, tf, strerror(errno));
            return -1;
        }
        c->token_read_ = time(NULL);
    }

    if (load_pem(body, "client-certificate", "user", name, src,
                 &c->cert_pem, &c->cert_len, err, errlen) < 0 ||
        load_pem(body, "client-key", "user", name, src, &c->key_pem,
                 &c->key_len, err, errlen) < 0)
        return -1;
    if (!c->cert_pem != !c->key_pem) {
        set_err(err, errlen, "kubeconfig %s: user \"%s\": "
                "client-certificate and client-key must be set together",
                src, name);
        return -1;
    }
    return 0;
}

/* Turns a merged document into a kcfg for the chosen context. */
static int resolve(const cJSON *doc, const char *name, const char *context,
                   kcfg **out, char *err, size_t errlen)
{
    const char *ctx = context ? context : str_of(doc, "current-context");
    const cJSON *cent, *body, *cl, *us = NULL;
    const char *clname, *usname, *ns;
    kcfg *c;

    if (!ctx || !*ctx) {
        set_err(err, errlen, "kubeconfig %s: no current-context and no "
                "context given", name);
        return -1;
    }
    cent = find_named(doc, "contexts", ctx);
    if (!cent) {
        set_err(err, errlen, "kubeconfig %s: context \"%s\" not found",
                name, ctx);
        return -1;
    }
    body = cJSON_GetObjectItemCaseSensitive(cent, "context");
    clname = str_of(body, "cluster");
    usname = str_of(body, "user");
    if (!clname || !(cl = find_named(doc, "clusters", clname))) {
        set_err(err, errlen, "kubeconfig %s: context \"%s\": cluster "
                "\"%s\" not found", str_of(cent, KCFG_SRC), ctx,
                clname ? clname : "");
        return -1;
    }
    if (usname && *usname && !(us = find_named(doc, "users", usname))) {
        set_err(err, errlen, "kubeconfig %s: context \"%s\": user \"%s\" "
                "not found", str_of(cent, KCFG_SRC), ctx, usname);
        return -1;
    }

    c = kcfg_alloc();
    if (!c) {
        set_err(err, errlen, "kubeconfig %s: out of memory", name);
        return -1;
    }
    ns = str_of(body, "namespace");
    c->ns = strdup(ns && *ns ? ns : "default");
    c->context = strdup(ctx);
    c->source = strdup(name);
    if (resolve_cluster(c, cl, err, errlen) < 0 ||
        (us && resolve_user(c, us, err, errlen) < 0)) {
        kcfg_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int kcfg_parse(const char *text, size_t len, const char *name,
               const char *dir, const char *context, kcfg **out, char *err,
               size_t errlen)
{
    cJSON *doc;
    int rc = -1;

    if (!name)
        name = "<memory>";
    doc = yaml_to_json(text, len, name, err, errlen);
    if (!doc)
        return -1;
    if (prepare_file(doc, name, dir, err, errlen) == 0)
        rc = resolve(doc, name, context, out, err, errlen);
    cJSON_Delete(doc);
    return rc;
}

/* Reads and merges one file into *merged. Missing list files skip. */
static int load_one(const char *path, int from_list, cJSON **merged,
                    char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len), *dir;
    cJSON *doc;

    if (!text) {
        if (from_list && errno == ENOENT)
            return 0;
        set_err(err, errlen, "kubeconfig %s: %s", path, strerror(errno));
        return -1;
    }
    doc = yaml_to_json(text, len, path, err, errlen);
    free(text);
    if (!doc)
        return -1;

    dir = dir_of(path);
    if (prepare_file(doc, path, dir, err, errlen) < 0) {
        free(dir);
        cJSON_Delete(doc);
        return -1;
    }
    free(dir);
    if (!*merged)
        *merged = doc;
    else
        merge_into(*merged, doc);
    return 0;
}

int kcfg_load(const char *path, const char *context, kcfg **out, char *err,
              size_t errlen)
{
    const char *env = getenv("KUBECONFIG");
    cJSON *merged = NULL;
    char *list = NULL, *first = NULL, *save = NULL;
    int rc = -1;

    if (path) {
        if (load_one(path, 0, &merged, err, errlen) < 0)
            goto done;
        first = strdup(path);
    } else if (env && *env) {
        list = strdup(env);
        for (char *p = strtok_r(list, ":", &save); p;
             p = strtok_r(NULL, ":", &save)) {
            if (load_one(p, 1, &merged, err, errlen) < 0)
                goto done;
            if (!first && merged)
                first = strdup(p);
        }
        if (!merged) {
            set_err(err, errlen, "kubeconfig: none of the files in "
                    "KUBECONFIG (%s) exists", env);
            goto done;
        }
    } else {
        const char *home = getenv("HOME");

        if (!home || asprintf(&first, "%s/.kube/config", home) < 0) {
            first = NULL;
            set_err(err, errlen, "kubeconfig: HOME is not set and "
                    "KUBECONFIG is empty");
            goto done;
        }
        if (load_one(first, 0, &merged, err, errlen) < 0)
            goto done;
    }
    rc = resolve(merged, first, context, out, err, errlen);

done:
    cJSON_Delete(merged);
    free(list);
    free(first);
    return rc;
}

int kcfg_load_incluster(kcfg **out, char *err, size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = getenv("ASTER_SA_DIR");
    char path[4096];
    kcfg *c;
    char *ns;

    if (!host || !*host || !port || !*port) {
        set_err(err, errlen, "in-cluster config: not running in a cluster "
                "(KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                "must be set)");
        return -1;
    }
    if (!dir || !*dir)
        dir = KCFG_SA_DIR;
    c = kcfg_alloc();
    if (!c)
        goto oom;

    if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s"
                                               : "https://%s:%s",
                 host, port) < 0) {
        c->server = NULL;
        goto oom;
    }
    c->source = strdup("in-cluster");

    snprintf(path, sizeof(path), "%s/token", dir);
    c->token_file_ = strdup(path);
    c->token_ = read_token_file(path);
    if (!c->token_) {
        set_err(err, errlen, "in-cluster config: token %s: %s", path,
                strerror(errno));
        goto fail;
    }
    c->token_read_ = time(NULL);

    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    c->ca_pem = read_file(path, &c->ca_len);
    if (!c->ca_pem) {
        set_err(err, errlen, "in-cluster config: ca.crt %s: %s", path,
                strerror(errno));
        goto fail;
    }

    snprintf(path, sizeof(path), "%s/namespace", dir);
    ns = read_token_file(path);
    c->ns = ns && *ns ? ns : strdup("default");
    if (ns && !*ns)
        free(ns);
    *out = c;
    return 0;

oom:
    set_err(err, errlen, "in-cluster config: out of memory");
fail:
    kcfg_free(c);
    return -1;
}

int kcfg_load_auto(const char *path, const char *context, kcfg **out,
                   char *err, size_t errlen)
{
    const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
    char def[4096];

    if (path || (env && *env))
        return kcfg_load(path, context, out, err, errlen);
    if (home) {
        struct stat st;

        snprintf(def, sizeof(def), "%s/.kube/config", home);
        if (stat(def, &st) == 0)
            return kcfg_load(def, context, out, err, errlen);
    }
    return kcfg_load_incluster(out, err, errlen);
}

char *kcfg_token(kcfg *c, int force)
{
    char *tok = NULL;
    time_t now = time(NULL);

    pthread_mutex_lock(&c->lock_);
    if (c->token_file_ &&
        (force || now - c->token_read_ >= KCFG_TOKEN_TTL)) {
        char *fresh = read_token_file(c->token_file_);

        /* Keep the old token when the file is briefly unreadable. */
        if (fresh) {
            free(c->token_);
            c->token_ = fresh;
        }
        c->token_read_ = now;
    }
    if (c->token_)
        tok = strdup(c->token_);
    pthread_mutex_unlock(&c->lock_);
    return tok;
}

void kcfg_free(kcfg *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->ns);
    free(c->context);
    free(c->source);
    free(c->ca_pem);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->tls_server_name);
    free(c->token_);
    free(c->token_file_);
    pthread_mutex_destroy(&c->lock_);
    free(c);
}
