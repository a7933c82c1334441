/*
 * wf_model: detects the form of a document and reads every node's own
 * fields (everything but the links between nodes, which wf_graph.c
 * resolves). A field that is wrong is reported with its path and the
 * node is still read to the end, so one pass finds every problem.
 *
 * A field set to null counts as absent: `retries: null` means the default,
 * the way Kubernetes treats an omitted field.
 */
#include "wf_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ASTRO_API_VERSION "astertower.kasterism.io/v1alpha1"
#define ASTRO_KIND "Astro"
#define DNS_LABEL_MAX 63
#define DNS_SUBDOMAIN_MAX 253

/* A timeout written as text is capped here while it is summed, far above
 * any limit a caller would set, so the sum cannot overflow. */
#define DURATION_CAP_MS 1000000000000000ULL

static const char *const dag_fields[] = {"nodes", NULL};
static const char *const dag_node_fields[] = {
    "name", "action", "url", "dependencies", "timeout", "retries", NULL};
static const char *const astro_fields[] = {"apiVersion", "kind",   "metadata",
                                           "spec",       "status", NULL};
static const char *const spec_fields[] = {"stars", "imagePullSecrets", NULL};
static const char *const star_fields[] = {
    "name",   "type",         "action",  "image",   "port",
    "target", "dependencies", "timeout", "retries", NULL};

/* One node being read: where it is and what it becomes. */
typedef struct reader {
    wf_ctx *c;
    wf_owned *o;
    wf_node *node;
    wf_pending *pend;
    const cJSON *obj;
    char base[48]; /* "nodes[3]" or "spec.stars[3]" */
    size_t base_len;
    char path[WF_PATH_MAX];
} reader;

/* ---- small helpers ---- */

/* The member named key, or NULL when it is absent or null. */
static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsNull(it) ? NULL : it;
}

/* The path of field name of the current node. Built by hand: it runs for
 * every field of every node, and printf would be most of the parse. */
static const char *at(reader *r, const char *name)
{
    size_t n = strlen(name);

    if (r->base_len + 1 + n >= sizeof(r->path))
        n = sizeof(r->path) - r->base_len - 2;
    memcpy(r->path, r->base, r->base_len);
    r->path[r->base_len] = '.';
    memcpy(r->path + r->base_len + 1, name, n);
    r->path[r->base_len + 1 + n] = '\0';
    return r->path;
}

/* Sets the current node's path, "nodes[12]", without printf. */
static void set_base(reader *r, const char *list, size_t i)
{
    char digits[24];
    size_t nd = 0;
    size_t n = strlen(list);

    do {
        digits[nd++] = (char)('0' + i % 10);
        i /= 10;
    } while (i > 0);
    memcpy(r->base, list, n);
    r->base[n++] = '[';
    while (nd > 0)
        r->base[n++] = digits[--nd];
    r->base[n++] = ']';
    r->base[n] = '\0';
    r->base_len = n;
}

/* Stores the string of item in *s and *len, or reports why it cannot be
 * read as one. Returns 0 or -1. */
static int get_string(wf_ctx *c, const cJSON *item, const char *path,
                      const char *what, const char **s, size_t *len)
{
    const wf_nul *nul;
    char q[WF_QUOTE_BUF];

    if (!cJSON_IsString(item)) {
        wf_ctx_problem(c, path, "%s must be a string; got %s", what,
                       wf_type_name(item));
        return -1;
    }
    nul = wf_nulset_find(&c->nuls, item, 0);
    if (nul != NULL) {
        wf_ctx_problem(c, path,
                       "%s '%s' contains a NUL character; it must be "
                       "printable text",
                       what, wf_quote(q, nul->text, nul->len, nul->raw_json));
        return -1;
    }
    *s = item->valuestring;
    *len = strlen(item->valuestring);
    return 0;
}

/* Stores the integral value of item, or reports why it is not one within
 * [lo, hi]. `limit` names the limit the upper bound comes from. */
static int get_int(wf_ctx *c, const cJSON *item, const char *path,
                   const char *what, double lo, double hi, const char *limit,
                   double *out)
{
    double v;

    if (!cJSON_IsNumber(item)) {
        wf_ctx_problem(c, path, "%s must be a whole number; got %s", what,
                       wf_type_name(item));
        return -1;
    }
    v = item->valuedouble;
    if (!isfinite(v) || v != floor(v)) {
        wf_ctx_problem(c, path, "%s must be a whole number; got %.15g", what,
                       v);
        return -1;
    }
    if (v < lo || v > hi) {
        if (limit != NULL && v > hi)
            wf_ctx_problem(c, path, "%s %.15g is over the limit of %.15g (%s)",
                           what, v, hi, limit);
        else
            wf_ctx_problem(c, path, "%s %.15g is out of range %.15g-%.15g",
                           what, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Levenshtein distance, for "did you mean" on short keys only. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t row[33];

    if (la > 32 || lb > 32)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (tolower((unsigned char)a[i - 1]) !=
                                  tolower((unsigned char)b[j - 1]));

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Reports every member of obj whose key is not in known: a misspelt
 * field must not be ignored, it would silently change the workflow. */
static void check_fields(wf_ctx *c, const cJSON *obj, const char *base,
                         const char *const *known)
{
    char path[WF_PATH_MAX];
    char q[WF_QUOTE_BUF];

    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        const char *near = NULL;
        size_t i;

        for (i = 0; known[i] != NULL; i++) {
            if (strcmp(m->string, known[i]) == 0)
                break;
        }
        if (known[i] != NULL)
            continue;
        for (i = 0; known[i] != NULL && near == NULL; i++) {
            if (edit_distance(m->string, known[i]) <= 2)
                near = known[i];
        }
        wf_quotes(q, m->string);
        snprintf(path, sizeof(path), "%s%s%s", base, *base ? "." : "", q);
        if (near != NULL)
            wf_ctx_problem(c, path, "unknown field '%s' (did you mean '%s'?)",
                           q, near);
        else
            wf_ctx_problem(c, path, "unknown field '%s'", q);
    }
}

static int is_lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* A DNS-1123 label: what Kubernetes accepts as most object names. */
static int dns_label(const char *s, size_t len)
{
    if (len == 0 || len > DNS_LABEL_MAX)
        return 0;
    if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return 0;
    }
    return 1;
}

/* A DNS-1123 subdomain: labels joined by dots, 253 bytes at most. */
static int dns_subdomain(const char *s, size_t len)
{
    size_t start = 0;

    if (len == 0 || len > DNS_SUBDOMAIN_MAX)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (i == start || !is_lower_alnum(s[start]) ||
            !is_lower_alnum(s[i - 1]))
            return 0;
        for (size_t j = start; j < i; j++) {
            if (!is_lower_alnum(s[j]) && s[j] != '-')
                return 0;
        }
        start = i + 1;
    }
    return 1;
}

/* Finds the first byte that makes s unfit as printable text: a control
 * character or broken UTF-8. Returns 0 when s is fine. */
static int find_unprintable(const char *s, size_t len, size_t *where,
                            uint32_t *cp, int *bad_utf8)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = jw_utf8_next(u + i, len - i, cp);

        if (n == 0) {
            *where = i;
            *bad_utf8 = 1;
            return 1;
        }
        if (*cp < 0x20 || *cp == 0x7f || (*cp >= 0x80 && *cp < 0xa0)) {
            *where = i;
            *bad_utf8 = 0;
            return 1;
        }
        i += n;
    }
    return 0;
}

/* Reports control characters and broken UTF-8 in a text field. */
static int check_printable(wf_ctx *c, const char *path, const char *what,
                           const char *s, size_t len)
{
    char q[WF_QUOTE_BUF];
    size_t where;
    uint32_t cp;
    int bad_utf8;

    if (!find_unprintable(s, len, &where, &cp, &bad_utf8))
        return 0;
    if (bad_utf8)
        wf_ctx_problem(c, path, "%s '%s' is not valid UTF-8 (byte %zu)", what,
                       wf_quote(q, s, len, 0), where);
    else
        wf_ctx_problem(c, path,
                       "%s '%s' contains a control character (U+%04X) at "
                       "byte %zu; it must be printable text",
                       what, wf_quote(q, s, len, 0), (unsigned)cp, where);
    return -1;
}

/* ---- durations ---- */

/* The unit at s, in milliseconds, and its length; 0 when unknown. */
static unsigned long long duration_unit(const char *s, size_t n, size_t *ulen)
{
    if (n >= 2 && s[0] == 'm' && s[1] == 's') {
        *ulen = 2;
        return 1;
    }
    *ulen = 1;
    if (n >= 1 && s[0] == 's')
        return 1000;
    if (n >= 1 && s[0] == 'm')
        return 60000;
    if (n >= 1 && s[0] == 'h')
        return 3600000;
    return 0;
}

/*
 * Reads a duration such as "250ms", "5s", "1m30s" or "1.5h" into
 * milliseconds. Returns NULL, or the reason it is not one.
 */
static const char *parse_duration(const char *s, size_t len,
                                  unsigned long long *ms)
{
    unsigned long long total = 0;
    size_t i = 0;

    if (len == 0)
        return "is empty";
    while (i < len) {
        unsigned long long whole = 0;
        unsigned long long frac = 0;
        unsigned long long scale = 1;
        unsigned long long unit;
        size_t digits = 0;
        size_t ulen;

        for (; i < len && isdigit((unsigned char)s[i]); i++, digits++) {
            if (whole < DURATION_CAP_MS)
                whole = whole * 10 + (unsigned long long)(s[i] - '0');
        }
        if (i < len && s[i] == '.') {
            for (i++; i < len && isdigit((unsigned char)s[i]); i++, digits++) {
                if (scale < 1000000000ULL) {
                    frac = frac * 10 + (unsigned long long)(s[i] - '0');
                    scale *= 10;
                }
            }
        }
        if (digits == 0)
            return "is not a duration: write a number and a unit, such as "
                   "250ms, 5s or 1m30s";
        unit = duration_unit(s + i, len - i, &ulen);
        if (unit == 0)
            return i == len ? "has no unit: write ms, s, m or h after the "
                              "number, or give a number of milliseconds"
                            : "has an unknown unit: use ms, s, m or h";
        i += ulen;
        if (frac * unit % scale != 0)
            return "is finer than a millisecond";
        if (whole >= DURATION_CAP_MS / unit)
            total = DURATION_CAP_MS;
        else
            total += whole * unit + frac * unit / scale;
        if (total > DURATION_CAP_MS)
            total = DURATION_CAP_MS;
    }
    *ms = total;
    return NULL;
}

/* ---- one node ---- */

static void read_name(reader *r, int dns)
{
    char q[WF_QUOTE_BUF];
    const cJSON *it = field(r->obj, "name");
    const char *s;
    size_t len;
    size_t max = dns ? DNS_LABEL_MAX : r->c->lim->max_name_bytes;

    if (it == NULL) {
        wf_ctx_problem(r->c, at(r, "name"), "name is required");
        return;
    }
    if (get_string(r->c, it, at(r, "name"), "name", &s, &len) != 0)
        return;
    r->node->name = wf_arena_strndup(&r->o->arena, s, len);
    if (r->node->name == NULL) {
        wf_ctx_oom(r->c);
        return;
    }
    r->node->name_len = len;
    r->pend->named = len > 0;

    if (len == 0)
        wf_ctx_problem(r->c, r->path, "name is empty");
    else if (dns && !dns_label(s, len))
        wf_ctx_problem(r->c, r->path,
                       "name '%s' is not a DNS-1123 label: at most 63 "
                       "lowercase letters, digits or '-', starting and "
                       "ending with a letter or digit",
                       wf_quote(q, s, len, 0));
    else if (len > max)
        wf_ctx_problem(r->c, r->path,
                       "name is %zu bytes long; the limit is %zu "
                       "(max_name_bytes)",
                       len, max);
    else
        check_printable(r->c, r->path, "name", s, len);
}

static void read_deps(reader *r)
{
    const cJSON *it = field(r->obj, "dependencies");
    size_t n;

    if (it == NULL)
        return;
    if (!cJSON_IsArray(it)) {
        wf_ctx_problem(r->c, at(r, "dependencies"),
                       "dependencies must be a list of names; got %s",
                       wf_type_name(it));
        return;
    }
    n = (size_t)cJSON_GetArraySize(it);
    if (n > r->c->lim->max_deps) {
        wf_ctx_problem(r->c, at(r, "dependencies"),
                       "there are %zu dependencies; the limit is %zu "
                       "(max_deps)",
                       n, r->c->lim->max_deps);
        return;
    }
    r->pend->deps = it;
    r->pend->n_items = n;
}

static void read_action(reader *r)
{
    char q[WF_QUOTE_BUF];
    const cJSON *it = field(r->obj, "action");
    const char *s;
    size_t len;

    if (it == NULL)
        return;
    if (get_string(r->c, it, at(r, "action"), "action", &s, &len) != 0)
        return;
    if (wf_action_parse(s, &r->node->action) != 0) {
        wf_ctx_problem(r->c, r->path,
                       "action '%s' is not one of GET, POST, PUT, PATCH, "
                       "DELETE",
                       wf_quote(q, s, len, 0));
        return;
    }
    r->node->action_given = 1;
}

static void read_timeout(reader *r)
{
    char q[WF_QUOTE_BUF];
    const cJSON *it = field(r->obj, "timeout");
    long max = r->c->lim->max_timeout_ms;
    unsigned long long ms;
    const char *why;
    const char *s;
    size_t len;
    double v;

    r->node->timeout_ms = WF_DEFAULT_TIMEOUT_MS;
    if (it == NULL)
        return;
    at(r, "timeout");
    if (cJSON_IsNumber(it)) {
        if (get_int(r->c, it, r->path, "timeout", WF_MIN_TIMEOUT_MS,
                    (double)max, "max_timeout_ms", &v) == 0)
            r->node->timeout_ms = (long)v;
        return;
    }
    if (!cJSON_IsString(it)) {
        wf_ctx_problem(r->c, r->path,
                       "timeout must be a duration such as \"5s\" or a "
                       "number of milliseconds; got %s",
                       wf_type_name(it));
        return;
    }
    if (get_string(r->c, it, r->path, "timeout", &s, &len) != 0)
        return;
    why = parse_duration(s, len, &ms);
    if (why != NULL)
        wf_ctx_problem(r->c, r->path, "timeout '%s' %s", wf_quote(q, s, len, 0),
                       why);
    else if (ms < WF_MIN_TIMEOUT_MS)
        wf_ctx_problem(r->c, r->path, "timeout '%s' is under the shortest "
                       "accepted, %ld ms", wf_quote(q, s, len, 0),
                       WF_MIN_TIMEOUT_MS);
    else if (max < 0 || ms > (unsigned long long)max)
        wf_ctx_problem(r->c, r->path,
                       "timeout '%s' is over the limit of %ld ms "
                       "(max_timeout_ms)",
                       wf_quote(q, s, len, 0), max);
    else
        r->node->timeout_ms = (long)ms;
}

static void read_retries(reader *r)
{
    const cJSON *it = field(r->obj, "retries");
    double v;

    r->node->retries = WF_DEFAULT_RETRIES;
    if (it == NULL)
        return;
    if (get_int(r->c, it, at(r, "retries"), "retries", 0,
                r->c->lim->max_retries, "max_retries", &v) == 0)
        r->node->retries = (int)v;
}

/* Copies a text field into the workflow; NULL when it is absent or
 * unusable (reported). */
static char *read_text(reader *r, const char *key, int required,
                       const char *why_required)
{
    const cJSON *it = field(r->obj, key);
    const char *s;
    size_t len;
    char *copy;

    if (it == NULL) {
        if (required)
            wf_ctx_problem(r->c, at(r, key), "%s is required%s", key,
                           why_required);
        return NULL;
    }
    if (get_string(r->c, it, at(r, key), key, &s, &len) != 0)
        return NULL;
    if (len == 0) {
        wf_ctx_problem(r->c, r->path, "%s is empty", key);
        return NULL;
    }
    copy = wf_arena_strndup(&r->o->arena, s, len);
    if (copy == NULL)
        wf_ctx_oom(r->c);
    return copy;
}

static void read_dag_node(reader *r)
{
    check_fields(r->c, r->obj, r->base, dag_node_fields);
    r->node->type = WF_NODE_HTTP;
    read_name(r, 0);
    read_action(r);
    r->node->url = read_text(r, "url", 1, "");
    if (r->node->url != NULL)
        wf_url_check(r->c, r->path, r->node->url, strlen(r->node->url));
    read_deps(r);
    read_timeout(r);
    read_retries(r);
}

static void read_docker(reader *r)
{
    char q[WF_QUOTE_BUF];
    const char *why = " for a docker star";
    const cJSON *it;
    double v;

    read_action(r);
    r->node->image = read_text(r, "image", 1, why);
    if (r->node->image != NULL) {
        const char *s = r->node->image;

        if (strpbrk(s, " \t\r\n\v\f") != NULL)
            wf_ctx_problem(r->c, r->path, "image '%s' contains white space",
                           wf_quotes(q, s));
        else
            check_printable(r->c, r->path, "image", s, strlen(s));
    }

    it = field(r->obj, "port");
    if (it == NULL)
        wf_ctx_problem(r->c, at(r, "port"), "port is required%s", why);
    else if (get_int(r->c, it, at(r, "port"), "port", 1, 65535, NULL, &v) == 0)
        r->node->port = (int)v;

    r->node->target = read_text(r, "target", 1, why);
    if (r->node->target != NULL) {
        const char *s = r->node->target;
        size_t len = strlen(s);

        /* Broken UTF-8 is left to check_printable, which names it. */
        if (wf_target_check(r->c, r->path, s, len) == 0)
            check_printable(r->c, r->path, "target", s, len);
    }
}

static void read_star(reader *r)
{
    static const char *const types[] = {"docker", "device", "script"};
    char q[WF_QUOTE_BUF];
    const cJSON *it;
    const char *s;
    size_t len;
    size_t t;

    check_fields(r->c, r->obj, r->base, star_fields);
    read_name(r, 1);
    read_deps(r);
    read_timeout(r);
    read_retries(r);

    it = field(r->obj, "type");
    if (it == NULL) {
        wf_ctx_problem(r->c, at(r, "type"),
                       "type is required: one of docker, device, script");
        return;
    }
    if (get_string(r->c, it, at(r, "type"), "type", &s, &len) != 0)
        return;
    for (t = 0; t < 3; t++) {
        if (strcmp(s, types[t]) == 0)
            break;
    }
    if (t == 3) {
        wf_ctx_problem(r->c, r->path,
                       "type '%s' is not one of docker, device, script",
                       wf_quote(q, s, len, 0));
        return;
    }
    r->node->type = (wf_node_type)(WF_NODE_DOCKER + t);

    /* Device and script stars have no settled schema yet: their other
     * fields are accepted as written and neither checked nor kept. */
    if (r->node->type == WF_NODE_DOCKER)
        read_docker(r);
}

/* ---- the document ---- */

/* Reads every entry of list into o->wf.nodes. Returns 0, or -1 when the
 * graph stage has nothing to work on. */
static int read_nodes(wf_ctx *c, const cJSON *list, wf_owned *o,
                      wf_pending **pend)
{
    reader r;
    size_t n;
    size_t i = 0;

    if (!cJSON_IsArray(list)) {
        wf_ctx_problem(c, c->list_path, "%s must be a list of %ss; got %s",
                       c->list_path, c->noun, wf_type_name(list));
        return -1;
    }
    n = (size_t)cJSON_GetArraySize(list);
    if (n == 0) {
        wf_ctx_problem(c, c->list_path,
                       "there are no %ss; a workflow needs at least one",
                       c->noun);
        return -1;
    }
    if (n > c->lim->max_nodes) {
        wf_ctx_problem(c, c->list_path,
                       "there are %zu %ss; the limit is %zu (max_nodes)", n,
                       c->noun, c->lim->max_nodes);
        return -1;
    }
    o->wf.nodes = calloc(n, sizeof(*o->wf.nodes));
    *pend = calloc(n, sizeof(**pend));
    if (o->wf.nodes == NULL || *pend == NULL) {
        wf_ctx_oom(c);
        return -1;
    }
    o->wf.n_nodes = n;

    memset(&r, 0, sizeof(r));
    r.c = c;
    r.o = o;
    for (const cJSON *it = list->child; it != NULL; it = it->next, i++) {
        r.node = &o->wf.nodes[i];
        r.pend = &(*pend)[i];
        r.obj = it;
        r.node->timeout_ms = WF_DEFAULT_TIMEOUT_MS;
        set_base(&r, c->list_path, i);
        if (!cJSON_IsObject(it)) {
            wf_ctx_problem(c, r.base, "each %s must be an object; got %s",
                           c->noun, wf_type_name(it));
            continue;
        }
        if (c->form == WF_FORM_DAG)
            read_dag_node(&r);
        else
            read_star(&r);
    }
    return 0;
}

/* Checks a required string member of an Astro against want. */
static void expect_const(wf_ctx *c, const cJSON *root, const char *key,
                         const char *want)
{
    char q[WF_QUOTE_BUF];
    const cJSON *it = field(root, key);
    const char *s;
    size_t len;

    if (it == NULL) {
        wf_ctx_problem(c, key, "%s is required: '%s'", key, want);
        return;
    }
    if (get_string(c, it, key, key, &s, &len) == 0 && strcmp(s, want) != 0)
        wf_ctx_problem(c, key, "%s must be '%s'; got '%s'", key, want,
                       wf_quote(q, s, len, 0));
}

/* Reads metadata.name and metadata.namespace; the rest of metadata
 * (labels, annotations...) belongs to Kubernetes. */
static void read_metadata(wf_ctx *c, const cJSON *root, wf_owned *o)
{
    char q[WF_QUOTE_BUF];
    const cJSON *md = field(root, "metadata");
    const cJSON *it;
    const char *s;
    size_t len;

    if (md == NULL || !cJSON_IsObject(md)) {
        wf_ctx_problem(c, "metadata",
                       "metadata must be an object with a name; got %s",
                       wf_type_name(md));
        return;
    }
    it = field(md, "name");
    if (it == NULL) {
        wf_ctx_problem(c, "metadata.name", "metadata.name is required");
    } else if (get_string(c, it, "metadata.name", "metadata.name", &s, &len) ==
               0) {
        if (!dns_subdomain(s, len))
            wf_ctx_problem(c, "metadata.name",
                           "metadata.name '%s' is not a DNS-1123 "
                           "subdomain: at most 253 lowercase letters, "
                           "digits, '-' or '.', starting and ending with a "
                           "letter or digit",
                           wf_quote(q, s, len, 0));
        o->wf.name = wf_arena_strndup(&o->arena, s, len);
        if (o->wf.name == NULL)
            wf_ctx_oom(c);
    }

    it = field(md, "namespace");
    if (it == NULL || get_string(c, it, "metadata.namespace",
                                 "metadata.namespace", &s, &len) != 0)
        return;
    if (!dns_label(s, len))
        wf_ctx_problem(c, "metadata.namespace",
                       "metadata.namespace '%s' is not a DNS-1123 label",
                       wf_quote(q, s, len, 0));
    o->wf.namespace = wf_arena_strndup(&o->arena, s, len);
    if (o->wf.namespace == NULL)
        wf_ctx_oom(c);
}

static int read_astro(wf_ctx *c, const cJSON *root, wf_owned *o,
                      wf_pending **pend)
{
    const cJSON *spec;

    c->form = WF_FORM_ASTRO;
    c->list_path = "spec.stars";
    c->noun = "star";
    o->wf.form = WF_FORM_ASTRO;

    /* status is written by the controller; a document read back from the
     * cluster carries it and it means nothing here. */
    check_fields(c, root, "", astro_fields);
    expect_const(c, root, "apiVersion", ASTRO_API_VERSION);
    expect_const(c, root, "kind", ASTRO_KIND);
    read_metadata(c, root, o);

    spec = field(root, "spec");
    if (spec == NULL || !cJSON_IsObject(spec)) {
        wf_ctx_problem(c, "spec",
                       "spec must be an object holding stars; got %s",
                       wf_type_name(spec));
        return -1;
    }

    /* imagePullSecrets is for the controller's Deployments; the
     * workflow itself does not use it, so it is not checked here. */
    check_fields(c, spec, "spec", spec_fields);
    return read_nodes(c, cJSON_GetObjectItemCaseSensitive(spec, "stars"), o,
                      pend);
}

/* Present, even as null; unlike cJSON_HasObjectItem, case matters. */
static int has(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key) != NULL;
}

int wf_model_build(wf_ctx *c, const cJSON *root, wf_owned *o, wf_pending **pend)
{
    *pend = NULL;
    if (!cJSON_IsObject(root)) {
        wf_ctx_problem(c, "",
                       "the document must be an object with 'nodes' (a "
                       "DAG) or 'apiVersion', 'kind', 'metadata' and "
                       "'spec' (an Astro); got %s",
                       wf_type_name(root));
        return -1;
    }
    if (has(root, "nodes")) {
        c->form = WF_FORM_DAG;
        o->wf.form = WF_FORM_DAG;
        check_fields(c, root, "", dag_fields);
        return read_nodes(c, cJSON_GetObjectItemCaseSensitive(root, "nodes"), o,
                          pend);
    }
    if (has(root, "kind") || has(root, "apiVersion") || has(root, "spec"))
        return read_astro(c, root, o, pend);
    wf_ctx_problem(c, "",
                   "the document is neither a DAG (it has no 'nodes') nor "
                   "an Astro (it has no 'apiVersion', 'kind' or 'spec')");
    return -1;
}
