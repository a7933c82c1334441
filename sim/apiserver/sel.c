/* Label and field selector parsing and matching. */
#include "sel.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum sel_op { OP_EQ, OP_NEQ, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

typedef struct sel_term {
    enum sel_op op;
    char *key;
    char **vals;
    int nvals;
} sel_term;

struct sel {
    sel_term *terms;
    int nterms;
};

static int is_key_char(int c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/';
}

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

/* Reads a run of key characters; returns a fresh string or NULL. */
static char *read_word(const char **p)
{
    const char *s = *p;

    while (is_key_char((unsigned char)**p))
        (*p)++;
    return strndup(s, (size_t)(*p - s));
}

static sel_term *add_term(sel *s)
{
    sel_term *t = realloc(s->terms, sizeof(*t) * (size_t)(s->nterms + 1));

    if (!t)
        return NULL;
    s->terms = t;
    t = &s->terms[s->nterms++];
    memset(t, 0, sizeof(*t));
    return t;
}

static int add_val(sel_term *t, char *v)
{
    char **vals = realloc(t->vals, sizeof(*vals) * (size_t)(t->nvals + 1));

    if (!vals) {
        free(v);
        return -1;
    }
    t->vals = vals;
    t->vals[t->nvals++] = v;
    return 0;
}

/* Parses "(a, b)" after in/notin. */
static int parse_set(const char **p, sel_term *t)
{
    skip_ws(p);
    if (**p != '(')
        return -1;
    (*p)++;
    for (;;) {
        skip_ws(p);
        if (add_val(t, read_word(p)) < 0)
            return -1;
        skip_ws(p);
        if (**p == ')') {
            (*p)++;
            return 0;
        }
        if (**p != ',')
            return -1;
        (*p)++;
    }
}

/* Parses the operator and value part of one label term. */
static int parse_label_rest(const char **p, sel_term *t)
{
    skip_ws(p);
    if (**p == ',' || **p == '\0') {
        t->op = OP_EXISTS;
        return 0;
    }
    if (strncmp(*p, "!=", 2) == 0) {
        t->op = OP_NEQ;
        *p += 2;
    } else if (strncmp(*p, "==", 2) == 0) {
        t->op = OP_EQ;
        *p += 2;
    } else if (**p == '=') {
        t->op = OP_EQ;
        *p += 1;
    } else if (strncmp(*p, "notin", 5) == 0 && !is_key_char((*p)[5])) {
        t->op = OP_NOTIN;
        *p += 5;
        return parse_set(p, t);
    } else if (strncmp(*p, "in", 2) == 0 && !is_key_char((*p)[2])) {
        t->op = OP_IN;
        *p += 2;
        return parse_set(p, t);
    } else {
        return -1;
    }
    skip_ws(p);
    return add_val(t, read_word(p));
}

static sel *parse(const char *text, int labels, char *err, size_t errlen)
{
    sel *s = calloc(1, sizeof(*s));
    const char *p = text ? text : "";

    if (!s)
        goto fail;
    skip_ws(&p);
    while (*p) {
        const char *start = p;
        sel_term *t = add_term(s);
        int neg = 0;

        if (!t)
            goto fail;
        if (labels && *p == '!') {
            neg = 1;
            p++;
            skip_ws(&p);
        }
        t->key = read_word(&p);
        if (!t->key || !t->key[0])
            goto bad;
        if (neg) {
            t->op = OP_NOTEXISTS;
        } else if (labels) {
            if (parse_label_rest(&p, t) < 0)
                goto bad;
        } else {
            skip_ws(&p);
            if (strncmp(p, "!=", 2) == 0) {
                t->op = OP_NEQ;
                p += 2;
            } else if (strncmp(p, "==", 2) == 0) {
                t->op = OP_EQ;
                p += 2;
            } else if (*p == '=') {
                t->op = OP_EQ;
                p++;
            } else {
                goto bad;
            }
            /* Field values may hold any character except a comma. */
            start = p;
            while (*p && *p != ',')
                p++;
            if (add_val(t, strndup(start, (size_t)(p - start))) < 0)
                goto fail;
        }
        skip_ws(&p);
        if (*p == ',') {
            p++;
            skip_ws(&p);
            if (!*p)
                goto bad;
        } else if (*p) {
            goto bad;
        }
        continue;
    bad:
        snprintf(err, errlen, "unable to parse requirement: found '%s', "
                 "expected: valid %s selector", start,
                 labels ? "label" : "field");
        sel_free(s);
        return NULL;
    }
    return s;
fail:
    snprintf(err, errlen, "out of memory parsing selector");
    sel_free(s);
    return NULL;
}

sel *sel_parse_labels(const char *text, char *err, size_t errlen)
{
    return parse(text, 1, err, errlen);
}

sel *sel_parse_fields(const char *text, char *err, size_t errlen)
{
    return parse(text, 0, err, errlen);
}

int sel_empty(const sel *s)
{
    return !s || s->nterms == 0;
}

static int in_vals(const sel_term *t, const char *v)
{
    for (int i = 0; i < t->nvals; i++)
        if (strcmp(t->vals[i], v) == 0)
            return 1;
    return 0;
}

static int term_match(const sel_term *t, const char *v)
{
    switch (t->op) {
    case OP_EQ:
    case OP_IN:
        return v && in_vals(t, v);
    case OP_NEQ:
    case OP_NOTIN:
        return !v || !in_vals(t, v);
    case OP_EXISTS:
        return v != NULL;
    case OP_NOTEXISTS:
        return v == NULL;
    }
    return 0;
}

int sel_match_labels(const sel *s, const cJSON *labels)
{
    if (!s)
        return 1;
    for (int i = 0; i < s->nterms; i++) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(labels,
                                                          s->terms[i].key);
        const char *v = cJSON_IsString(l) ? l->valuestring : NULL;

        if (!term_match(&s->terms[i], v))
            return 0;
    }
    return 1;
}

/* Renders the value at a dotted path as text into buf ("" if absent). */
static void field_value(const cJSON *obj, const char *path, char *buf,
                        size_t len)
{
    char name[256];
    const cJSON *cur = obj;

    while (cur && *path) {
        size_t n = strcspn(path, ".");

        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, path, n);
        name[n] = '\0';
        cur = cJSON_GetObjectItemCaseSensitive(cur, name);
        path += n;
        if (*path == '.')
            path++;
    }
    buf[0] = '\0';
    if (cJSON_IsString(cur))
        snprintf(buf, len, "%s", cur->valuestring);
    else if (cJSON_IsNumber(cur))
        snprintf(buf, len, "%lld", (long long)cur->valuedouble);
    else if (cJSON_IsBool(cur))
        snprintf(buf, len, "%s", cJSON_IsTrue(cur) ? "true" : "false");
}

int sel_match_fields(const sel *s, const cJSON *obj)
{
    char buf[512];

    if (!s)
        return 1;
    for (int i = 0; i < s->nterms; i++) {
        field_value(obj, s->terms[i].key, buf, sizeof(buf));
        if (!term_match(&s->terms[i], buf))
            return 0;
    }
    return 1;
}

int sel_fields(const sel *s, int (*fn)(const char *field, void *ud),
               void *ud)
{
    for (int i = 0; s && i < s->nterms; i++) {
        int rc = fn(s->terms[i].key, ud);

        if (rc)
            return rc;
    }
    return 0;
}

void sel_free(sel *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nterms; i++) {
        for (int j = 0; j < s->terms[i].nvals; j++)
            free(s->terms[i].vals[j]);
        free(s->terms[i].vals);
        free(s->terms[i].key);
    }
    free(s->terms);
    free(s);
}
