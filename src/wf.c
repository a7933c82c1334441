/*
 * wf: the public face of the workflow module; the stages live in
 * wf_syntax.c, wf_tree.c, wf_model.c and wf_graph.c (see wf_internal.h).
 */
#include "wf_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void wf_limits_default(wf_limits *lim)
{
    lim->max_doc_bytes = 16u * 1024 * 1024;
    lim->max_nodes = 20000;
    lim->max_name_bytes = 253;
    lim->max_deps = 1000;
    lim->max_timeout_ms = 3600L * 1000;
    lim->max_retries = 10;
    lim->max_url_bytes = 8192;
}

/* ---- problems ---- */

void wf_problems_init(wf_problems *p)
{
    p->items = NULL;
    p->n = 0;
    p->cap = 0;
}

void wf_problems_free(wf_problems *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].path);
        free(p->items[i].message);
    }
    free(p->items);
    wf_problems_init(p);
}

static char *vformat(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

static char *vformat(const char *fmt, va_list ap)
{
    va_list again;
    char *s;
    int n;

    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) {
        va_end(again);
        return NULL;
    }
    s = malloc((size_t)n + 1);
    if (s != NULL)
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

static int problems_vadd(wf_problems *p, const char *path, const char *fmt,
                         va_list ap) __attribute__((format(printf, 3, 0)));

static int problems_vadd(wf_problems *p, const char *path, const char *fmt,
                         va_list ap)
{
    wf_problem *it;
    char *msg;
    char *dup;

    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        wf_problem *items = realloc(p->items, cap * sizeof(*items));

        if (items == NULL)
            return -1;
        p->items = items;
        p->cap = cap;
    }
    msg = vformat(fmt, ap);
    dup = strdup(path != NULL ? path : "");
    if (msg == NULL || dup == NULL) {
        free(msg);
        free(dup);
        return -1;
    }
    it = &p->items[p->n++];
    it->path = dup;
    it->message = msg;
    return 0;
}

int wf_problems_add(wf_problems *p, const char *path, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = problems_vadd(p, path, fmt, ap);
    va_end(ap);
    return rc;
}

char *wf_problems_format(const wf_problems *p)
{
    size_t total = 1;
    char *out;
    char *w;

    for (size_t i = 0; i < p->n; i++)
        total += strlen(p->items[i].path) + strlen(p->items[i].message) + 3;
    out = malloc(total);
    if (out == NULL)
        return NULL;
    w = out;
    for (size_t i = 0; i < p->n; i++) {
        const wf_problem *it = &p->items[i];
        size_t plen = strlen(it->path);
        size_t mlen = strlen(it->message);

        if (plen > 0) {
            memcpy(w, it->path, plen);
            w += plen;
            memcpy(w, ": ", 2);
            w += 2;
        }
        memcpy(w, it->message, mlen);
        w += mlen;
        *w++ = '\n';
    }
    *w = '\0';
    return out;
}

/* ---- context ---- */

void wf_ctx_problem(wf_ctx *c, const char *path, const char *fmt, ...)
{
    va_list ap;

    c->n_problems++;
    if (c->n_problems > WF_MAX_PROBLEMS || c->probs == NULL)
        return;
    va_start(ap, fmt);
    if (problems_vadd(c->probs, path, fmt, ap) != 0)
        c->oom = 1;
    va_end(ap);
}

void wf_ctx_oom(wf_ctx *c)
{
    if (c->oom)
        return;
    c->oom = 1;
    wf_ctx_problem(c, "", "ran out of memory while reading the document");
}

/* ---- parse ---- */

static void ctx_init(wf_ctx *c, const wf_limits *lim, wf_problems *probs)
{
    memset(c, 0, sizeof(*c));
    c->lim = lim;
    c->probs = probs;
    c->seed = wf_seed();
    c->list_path = "nodes";
    c->noun = "node";
}

/* Closes the problem list: says how many were left out past the cap. */
static void ctx_finish(wf_ctx *c)
{
    if (c->n_problems > WF_MAX_PROBLEMS && c->probs != NULL) {
        size_t more = c->n_problems - WF_MAX_PROBLEMS;

        if (wf_problems_add(c->probs, "",
                            "%zu more problems were found and not listed",
                            more) != 0)
            c->oom = 1;
    }
    wf_nulset_free(&c->nuls);
}

int wf_parse(const char *text, size_t len, const wf_limits *lim,
             wf_workflow **out, wf_problems *probs)
{
    wf_limits defaults;
    wf_ctx c;
    cJSON *root = NULL;
    wf_owned *o = NULL;
    wf_pending *pend = NULL;

    *out = NULL;
    if (lim == NULL) {
        wf_limits_default(&defaults);
        lim = &defaults;
    }
    ctx_init(&c, lim, probs);

    if (text == NULL && len > 0) {
        wf_ctx_problem(&c, "", "no document text was given");
        goto done;
    }
    if (len > lim->max_doc_bytes) {
        wf_ctx_problem(&c, "",
                       "the document is %zu bytes; the limit is %zu "
                       "(max_doc_bytes)",
                       len, lim->max_doc_bytes);
        goto done;
    }
    if (wf_syntax_parse(&c, text, len, &root) != 0)
        goto done;

    wf_tree_check(&c, root);

    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        wf_ctx_oom(&c);
        goto done;
    }
    if (wf_model_build(&c, root, o, &pend) == 0)
        wf_graph_build(&c, o, pend);

done:
    free(pend);
    cJSON_Delete(root);
    if (c.n_problems == 0 && !c.oom && o != NULL) {
        *out = &o->wf;
        o = NULL;
    }
    if (o != NULL)
        wf_free(&o->wf);
    ctx_finish(&c);
    return *out != NULL ? 0 : -1;
}

/* Reads at most max + 1 bytes so an oversized file is refused without
 * being held in memory. Returns the buffer or NULL with errno set. */
static char *read_all(FILE *f, size_t max, size_t *len)
{
    size_t cap = 65536;
    size_t n = 0;
    char *buf = malloc(cap);

    if (buf == NULL)
        return NULL;
    for (;;) {
        size_t want;
        size_t got;

        if (n == cap) {
            char *bigger;

            if (cap > max) {
                *len = n;
                return buf;
            }
            cap *= 2;
            bigger = realloc(buf, cap);
            if (bigger == NULL) {
                free(buf);
                return NULL;
            }
            buf = bigger;
        }
        want = cap - n;
        got = fread(buf + n, 1, want, f);
        n += got;
        if (got < want) {
            if (ferror(f)) {
                int err = errno ? errno : EIO;

                free(buf);
                errno = err;
                return NULL;
            }
            *len = n;
            return buf;
        }
    }
}

/* The system's reason for err. glibc declares either the XSI strerror_r
 * (returns int) or the GNU one (returns the text), depending on feature
 * macros; both are thread-safe, unlike strerror(). */
static const char *errtext(int err, char *buf, size_t cap)
{
    __typeof__(strerror_r(0, buf, cap)) r = strerror_r(err, buf, cap);
    const char *s = _Generic(r, char *: (const char *)(uintptr_t)r,
                             default: r == 0 ? buf : NULL);

    if (s == NULL) {
        snprintf(buf, cap, "error %d", err);
        s = buf;
    }
    return s;
}

int wf_parse_file(const char *path, const wf_limits *lim, wf_workflow **out,
                  wf_problems *probs)
{
    wf_limits defaults;
    char why[256];
    char *buf;
    size_t len = 0;
    FILE *f;
    int rc;

    *out = NULL;
    if (lim == NULL) {
        wf_limits_default(&defaults);
        lim = &defaults;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        wf_problems_add(probs, "", "cannot open '%s': %s", path,
                        errtext(errno, why, sizeof(why)));
        return -1;
    }
    errno = 0;
    buf = read_all(f, lim->max_doc_bytes, &len);
    if (buf == NULL) {
        wf_problems_add(probs, "", "cannot read '%s': %s", path,
                        errtext(errno, why, sizeof(why)));
        fclose(f);
        return -1;
    }
    fclose(f);
    if (len > lim->max_doc_bytes) {
        wf_problems_add(probs, "",
                        "'%s' is over the limit of %zu bytes "
                        "(max_doc_bytes)",
                        path, lim->max_doc_bytes);
        free(buf);
        return -1;
    }
    rc = wf_parse(buf, len, lim, out, probs);
    free(buf);
    return rc;
}

void wf_free(wf_workflow *wf)
{
    /* wf is the first member of the wf_owned that wf_parse allocated. */
    wf_owned *o = (wf_owned *)wf;

    if (wf == NULL)
        return;
    free(o->wf.nodes);
    free(o->slab);
    wf_arena_free(&o->arena);
    wf_map_free(&o->names);
    free(o);
}

/* ---- small lookups ---- */

static const char *const action_names[] = {"GET", "POST", "PUT", "PATCH",
                                           "DELETE"};

const char *wf_action_name(wf_action a)
{
    if ((unsigned)a >= sizeof(action_names) / sizeof(action_names[0]))
        return "?";
    return action_names[a];
}

int wf_action_parse(const char *s, wf_action *out)
{
    for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]);
         i++) {
        if (strcasecmp(s, action_names[i]) == 0) {
            *out = (wf_action)i;
            return 0;
        }
    }
    return -1;
}

long wf_find(const wf_workflow *wf, const char *name)
{
    const wf_owned *o = (const wf_owned *)wf;
    const wf_map_slot *s;

    if (wf == NULL || name == NULL)
        return -1;
    s = wf_map_get(&o->names, name, strlen(name));
    return s != NULL ? (long)s->val : -1;
}
