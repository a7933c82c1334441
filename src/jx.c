/*
 * jx: the mechanism behind jx.h.
 *
 * A recursive-descent reader of RFC 8259's grammar that only moves an
 * offset: no tree, no copies. Recursion is bounded by JX_MAX_DEPTH
 * (two frames a level). The first problem stops the reader, so the error
 * is where the text first goes wrong.
 */
#include "jx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct reader {
    const char *t;
    size_t len;
    size_t i;
    int depth;
    jx_error *e;
} reader;

static int fail(reader *r, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(reader *r, size_t at, const char *fmt, ...)
{
    va_list ap;

    r->e->at = at;
    va_start(ap, fmt);
    vsnprintf(r->e->what, sizeof(r->e->what), fmt, ap);
    va_end(ap);
    return -1;
}

/* Names what stands at offset at, where something else was due. */
static int unexpected(reader *r, size_t at)
{
    unsigned char c;

    if (at >= r->len)
        return fail(r, at, "a truncated value");
    c = (unsigned char)r->t[at];
    if (c > 0x20 && c < 0x7f)
        return fail(r, at, "unexpected '%c'", c);
    return fail(r, at, "unexpected byte 0x%02x", c);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void blanks(reader *r)
{
    while (r->i < r->len && is_blank(r->t[r->i]))
        r->i++;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int string(reader *r)
{
    size_t start = r->i++;

    for (;;) {
        unsigned char c;

        if (r->i >= r->len)
            return fail(r, start, "a string without its closing quote");
        c = (unsigned char)r->t[r->i];
        if (c == '"') {
            r->i++;
            return 0;
        }
        if (c < 0x20)
            return fail(r, r->i, "a raw control character in a string");
        if (c != '\\') {
            r->i++;
            continue;
        }
        if (r->i + 1 >= r->len)
            return fail(r, start, "a string without its closing quote");
        if (strchr("\"\\/bfnrt", r->t[r->i + 1]) && r->t[r->i + 1]) {
            r->i += 2;
            continue;
        }
        if (r->t[r->i + 1] != 'u')
            return fail(r, r->i, "a bad escape in a string");

        /* \u and four hex digits; lone surrogates are grammatical. */
        for (size_t k = 2; k < 6; k++) {
            if (r->i + k >= r->len || !is_hex(r->t[r->i + k]))
                return fail(r, r->i, "a bad \\u escape in a string");
        }
        r->i += 6;
    }
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and nothing that would
 * read as more of a number after it ("01", "1.", "1e"). */
static int number(reader *r)
{
    const char *t = r->t;
    size_t start = r->i, i = r->i, n = r->len;
    int ok = 1;

    if (i < n && t[i] == '-')
        i++;
    if (i < n && t[i] == '0')
        i++;
    else if (i < n && is_digit(t[i]))
        while (i < n && is_digit(t[i]))
            i++;
    else
        ok = 0;
    if (ok && i < n && t[i] == '.') {
        i++;
        ok = i < n && is_digit(t[i]);
        while (i < n && is_digit(t[i]))
            i++;
    }
    if (ok && i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        ok = i < n && is_digit(t[i]);
        while (i < n && is_digit(t[i]))
            i++;
    }
    if (!ok || (i < n && t[i] && (is_digit(t[i]) || strchr(".eE+-", t[i]))))
        return fail(r, start, "a number not in JSON form");
    r->i = i;
    return 0;
}

static int word(reader *r, const char *w)
{
    size_t n = strlen(w);

    /* "nope" is neither null nor anything else JSON has. */
    if (r->len - r->i < n || memcmp(r->t + r->i, w, n) != 0)
        return fail(r, r->i, "unexpected text");
    r->i += n;
    return 0;
}

static int value(reader *r, jx_type *type);

static int enter(reader *r)
{
    if (++r->depth > JX_MAX_DEPTH)
        return fail(r, r->i, "nesting deeper than %d levels", JX_MAX_DEPTH);
    r->i++;
    blanks(r);
    return 0;
}

/* After a member or element: 1 when a ',' announces another, 0 when
 * close ends the container (consumed, depth left), -1 otherwise. */
static int next_item(reader *r, char close)
{
    blanks(r);
    if (r->i < r->len && r->t[r->i] == ',') {
        r->i++;
        return 1;
    }
    if (r->i < r->len && r->t[r->i] == close) {
        r->i++;
        r->depth--;
        return 0;
    }
    return unexpected(r, r->i);
}

static int object(reader *r)
{
    jx_type ignored;
    int more;

    if (enter(r) < 0)
        return -1;
    if (r->i < r->len && r->t[r->i] == '}')
        return next_item(r, '}');
    do {
        blanks(r);
        if (r->i >= r->len || r->t[r->i] != '"')
            return r->i < r->len ? fail(r, r->i, "an object key that is "
                                        "not a string")
                                 : unexpected(r, r->i);
        if (string(r) < 0)
            return -1;
        blanks(r);
        if (r->i >= r->len || r->t[r->i] != ':')
            return unexpected(r, r->i);
        r->i++;
        if (value(r, &ignored) < 0)
            return -1;
        more = next_item(r, '}');
    } while (more == 1);
    return more;
}

static int array(reader *r)
{
    jx_type ignored;
    int more;

    if (enter(r) < 0)
        return -1;
    if (r->i < r->len && r->t[r->i] == ']')
        return next_item(r, ']');
    do {
        if (value(r, &ignored) < 0)
            return -1;
        more = next_item(r, ']');
    } while (more == 1);
    return more;
}

static int value(reader *r, jx_type *type)
{
    blanks(r);
    if (r->i >= r->len)
        return unexpected(r, r->i);

    switch (r->t[r->i]) {
    case '{':
        *type = JX_OBJECT;
        return object(r);
    case '[':
        *type = JX_ARRAY;
        return array(r);
    case '"':
        *type = JX_STRING;
        return string(r);
    case 't':
        *type = JX_TRUE;
        return word(r, "true");
    case 'f':
        *type = JX_FALSE;
        return word(r, "false");
    case 'n':
        *type = JX_NULL;
        return word(r, "null");
    }
    if (r->t[r->i] == '-' || is_digit(r->t[r->i])) {
        *type = JX_NUMBER;
        return number(r);
    }
    return unexpected(r, r->i);
}

jx_type jx_check(const char *text, size_t len, size_t *start, size_t *end,
                 jx_error *e)
{
    reader r = {.t = text, .len = len, .e = e};
    jx_type type = JX_NONE;
    size_t first;

    memset(e, 0, sizeof(*e));
    blanks(&r);
    if (r.i == len) {
        fail(&r, r.i, "no value");
        return JX_NONE;
    }
    first = r.i;
    if (value(&r, &type) < 0)
        return JX_NONE;
    if (start)
        *start = first;
    if (end)
        *end = r.i;

    /* One value: the rest must be blank, or "{} junk" would pass. */
    blanks(&r);
    if (r.i < len) {
        fail(&r, r.i, "unexpected data after the value");
        return JX_NONE;
    }
    return type;
}

const char *jx_type_name(jx_type t)
{
    switch (t) {
    case JX_OBJECT: return "an object";
    case JX_ARRAY: return "an array";
    case JX_STRING: return "a string";
    case JX_NUMBER: return "a number";
    case JX_TRUE:
    case JX_FALSE: return "a boolean";
    case JX_NULL: return "null";
    case JX_NONE: break;
    }
    return "not JSON";
}

size_t jx_input(const char *text, size_t len, size_t *skip)
{
    size_t k = 0;

    *skip = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        *skip = 3;
    for (k = *skip; k < len; k++) {
        if (!strchr(" \t\r\n", text[k]) || text[k] == '\0')
            return len - *skip;
    }
    return 0;
}

int jx_check_object(const char *text, size_t len, const char *what,
                    char *why, size_t whylen)
{
    jx_error e;
    jx_type t = jx_check(text, len, NULL, NULL, &e);

    if (t == JX_NONE) {
        snprintf(why, whylen, "%s is not valid JSON: %s at byte %zu", what,
                 e.what, e.at);
        return -1;
    }
    if (t != JX_OBJECT) {
        snprintf(why, whylen, "%s is not a JSON object but %s", what,
                 jx_type_name(t));
        return -1;
    }
    return 0;
}

/* Past the string whose quote is at text[i]. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
    for (i++; i < len && t[i] != '"'; i++) {
        if (t[i] == '\\')
            i++;
    }
    return i + 1;
}

size_t jx_skip(const char *text, size_t len, size_t at)
{
    size_t i = at, depth = 0;

    while (i < len && is_blank(text[i]))
        i++;
    if (i >= len)
        return len;
    if (text[i] == '"')
        return skip_string(text, len, i);
    if (text[i] != '{' && text[i] != '[') {
        while (i < len && !is_blank(text[i]) && !strchr(",]}", text[i]))
            i++;
        return i;
    }

    /* A container: count brackets outside strings until it closes. */
    for (; i < len; i++) {
        char c = text[i];

        if (c == '"') {
            i = skip_string(text, len, i) - 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return len;
}
