/*
 * jx: the mechanism behind jx.h.
 *
 * Two passes. A scan lists every string and number token in document
 * order and checks what cJSON lets through (control characters in
 * strings, number forms, depth); then cJSON builds the tree and checks
 * the structure. A walk over the tree in document order meets its
 * strings and numbers in the same order as the scan listed them, and
 * swaps the numbers (and strings holding \u0000) for raw items with the
 * scanned text.
 */
#include "jx.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct token {
    size_t start;
    size_t end; /* one past the last byte */
    char kind;  /* 's' string (quotes included), 'n' number */
    char nul;   /* a string holding \u0000 */
} token;

/* Tokens kept without an allocation: most node outputs are small. */
#define JX_SMALL 32

typedef struct scan {
    const char *text;
    size_t len;
    token *v; /* small, or the heap once it outgrew it */
    size_t n;
    size_t cap;
    token small[JX_SMALL];
    size_t next; /* the walk's place in v */
    int too_deep; /* cJSON must not be asked: it recurses per level */
} scan;

static void set_error(jx_error *e, size_t at, int near, const char *what)
{
    e->at = at;
    e->near = near;
    snprintf(e->what, sizeof(e->what), "%s", what);
}

static int push(scan *s, size_t start, size_t end, char kind, char nul)
{
    if (s->n == s->cap) {
        size_t cap = s->cap * 2;
        token *v = s->v == s->small ? malloc(cap * sizeof(*v))
                                    : realloc(s->v, cap * sizeof(*v));

        if (!v)
            return -1;
        if (s->v == s->small)
            memcpy(v, s->small, sizeof(s->small));
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (token){start, end, kind, nul};
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Bytes a number token may hold, as cJSON reads one. */
static int is_number_byte(char c)
{
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' ||
           c == 'E';
}

/* 1 when s[0..n) is a number as RFC 8259 writes one:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number_ok(const char *s, size_t n)
{
    size_t i = 0;

    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && is_digit(s[i])) {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        if (++i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

/* Scans the string starting at the quote at *i; leaves *i past it. */
static int scan_string(scan *s, size_t *i, jx_error *e)
{
    const char *t = s->text;
    size_t start = *i, k = start + 1;
    char nul = 0;

    while (k < s->len && t[k] != '"') {
        if (t[k] == '\\') {
            if (k + 5 < s->len && t[k + 1] == 'u' &&
                memcmp(t + k + 2, "0000", 4) == 0)
                nul = 1;
            k += 2;
            continue;
        }
        if ((unsigned char)t[k] < 0x20) {
            set_error(e, k, 0, "a raw control character in a string");
            return -1;
        }
        k++;
    }

    /* An unterminated string is cJSON's to report. */
    if (k >= s->len) {
        *i = s->len;
        return 0;
    }
    *i = k + 1;
    if (push(s, start, k + 1, 's', nul) < 0) {
        set_error(e, start, 0, "out of memory");
        return -1;
    }
    return 0;
}

/* Lists the tokens and checks what cJSON would let pass. */
static int scan_all(scan *s, jx_error *e)
{
    const char *t = s->text;
    size_t i = 0, depth = 0;

    while (i < s->len) {
        char c = t[i];

        if (c == '"') {
            if (scan_string(s, &i, e) < 0)
                return -1;
        } else if (c == '-' || is_digit(c)) {
            size_t start = i;

            while (i < s->len && is_number_byte(t[i]))
                i++;
            if (!number_ok(t + start, i - start)) {
                set_error(e, start, 0, "a number not in JSON form");
                return -1;
            }
            if (push(s, start, i, 'n', 0) < 0) {
                set_error(e, start, 0, "out of memory");
                return -1;
            }
        } else {
            if ((c == '[' || c == '{') && ++depth > JX_MAX_DEPTH) {
                set_error(e, i, 0, "");
                snprintf(e->what, sizeof(e->what), "nesting deeper than %d "
                         "levels", JX_MAX_DEPTH);
                s->too_deep = 1;
                return -1;
            }
            if ((c == ']' || c == '}') && depth > 0)
                depth--;
            i++;
        }
    }
    return 0;
}

/* The next token, which must be of kind; NULL when the two passes
 * disagree, which they cannot for a text cJSON accepted. */
static const token *take(scan *s, char kind)
{
    if (s->next >= s->n || s->v[s->next].kind != kind)
        return NULL;
    return &s->v[s->next++];
}

/* Makes item a raw item holding the token's text. */
static int make_raw(scan *s, cJSON *item, const token *tk)
{
    size_t n = tk->end - tk->start;
    char *text = malloc(n + 1);

    if (!text)
        return -1;
    memcpy(text, s->text + tk->start, n);
    text[n] = '\0';
    if (cJSON_IsString(item))
        free(item->valuestring);
    item->valuestring = text;
    item->type = cJSON_Raw;
    return 0;
}

static int walk(scan *s, cJSON *item, jx_error *e);

static int walk_children(scan *s, cJSON *parent, jx_error *e)
{
    int object = cJSON_IsObject(parent);

    for (cJSON *c = parent->child; c; c = c->next) {
        if (object) {
            const token *key = take(s, 's');

            if (!key) {
                set_error(e, 0, 1, "a text the two passes read apart");
                return -1;
            }
            if (key->nul) {
                set_error(e, key->start, 0, "an object key holding \\u0000");
                return -1;
            }
        }
        if (walk(s, c, e) < 0)
            return -1;
    }
    return 0;
}

static int walk(scan *s, cJSON *item, jx_error *e)
{
    const token *tk;

    if (cJSON_IsObject(item) || cJSON_IsArray(item))
        return walk_children(s, item, e);
    if (!cJSON_IsNumber(item) && !cJSON_IsString(item))
        return 0;

    tk = take(s, cJSON_IsNumber(item) ? 'n' : 's');
    if (!tk) {
        set_error(e, 0, 1, "a text the two passes read apart");
        return -1;
    }

    /* A string cJSON holds whole needs nothing: it prints the same. */
    if (cJSON_IsString(item) && !tk->nul)
        return 0;
    if (make_raw(s, item, tk) < 0) {
        set_error(e, tk->start, 0, "out of memory");
        return -1;
    }
    return 0;
}

static void scan_free(scan *s)
{
    if (s->v != s->small)
        free(s->v);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

cJSON *jx_parse(const char *text, size_t len, jx_error *e)
{
    scan s = {.text = text, .len = len, .cap = JX_SMALL};
    const char *end = NULL;
    jx_error first;
    int scanned;
    cJSON *v = NULL;
    size_t at;

    s.v = s.small;
    scanned = scan_all(&s, &first);

    memset(e, 0, sizeof(*e));

    if (s.too_deep) {
        *e = first;
        goto fail;
    }

    /* cJSON leaves end on the failing spot, clamped to the last byte;
     * running out of memory looks the same as bad syntax there. */
    v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        at = end ? (size_t)(end - text) : 0;

        /* Whichever problem comes first in the text is the one told. */
        if (scanned == 0 || at < first.at)
            set_error(e, at, 1, "syntax error");
        else
            *e = first;
        goto fail;
    }
    if (scanned < 0) {
        *e = first;
        goto fail;
    }

    /* A length-bounded parse stops after one value: the rest must be
     * blank, or "{} junk" would pass. */
    at = (size_t)(end - text);
    while (at < len && is_space(text[at]))
        at++;
    if (at < len) {
        set_error(e, at, 0, "unexpected data after the value");
        goto fail;
    }

    if (walk(&s, v, e) < 0)
        goto fail;
    scan_free(&s);
    return v;

fail:
    cJSON_Delete(v);
    scan_free(&s);
    return NULL;
}

const char *jx_kind(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";

    /* Raw items are numbers, or strings holding \u0000. */
    if (cJSON_IsRaw(v) && v->valuestring != NULL)
        return v->valuestring[0] == '"' ? "a string" : "a number";
    return "an unknown value";
}

int jx_check_object(const char *text, size_t len, const char *what,
                    char *why, size_t whylen)
{
    jx_error e;
    cJSON *v = jx_parse(text, len, &e);
    int rc = 0;

    if (!v) {
        snprintf(why, whylen, "%s is not valid JSON: %s %s byte %zu", what,
                 e.what, e.near ? "near" : "at", e.at);
        return -1;
    }
    if (!cJSON_IsObject(v)) {
        snprintf(why, whylen, "%s is not a JSON object but %s", what,
                 jx_kind(v));
        rc = -1;
    }
    cJSON_Delete(v);
    return rc;
}
