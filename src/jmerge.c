/*
 * jmerge: the mechanism behind jmerge.h.
 *
 * Each output, once jx has checked it, is read into a skeleton: its
 * objects as lists of members, each member a key and either the text of
 * its value (anything but an object, kept as a span of the output) or
 * the skeleton of that object. Later skeletons fold into the first one;
 * the result is written from it with jw. Ownership: spans point into the
 * outputs, which outlive the merge; members, decoded keys and indexes
 * belong to the skeleton and are freed with it.
 */
#include "jmerge.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jw.h"
#include "jx.h"

/*
 * Up to this many members a scan of an object beats an index; past it
 * the index keeps merging two large objects linear, not quadratic.
 */
#define JMERGE_SCAN_MAX 16

/*
 * Bytes of a bad body quoted in a parse error, before and after the spot:
 * enough to find it, short enough for a log line.
 */
#define JMERGE_SNIPPET 12

typedef struct object object;

typedef struct member {
    const char *key; /* the key's token, quotes included */
    size_t key_len;
    const char *name; /* the key decoded, for comparing */
    size_t name_len;
    int name_owned;
    uint64_t hash;
    const char *value; /* the value's text, when not an object */
    size_t value_len;
    object *obj; /* the value's members, when it is an object */
} member;

struct object {
    member *m;
    size_t n;
    size_t cap;
    size_t *slots; /* open addressing, member index + 1; 0 is empty */
    size_t mask;
};

/* ---- keys ---------------------------------------------------------- */

/* FNV-1a: short keys dominate, and it needs no state. */
static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static unsigned hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (unsigned)(c - 'a' + 10);
    return (unsigned)(c - 'A' + 10);
}

static unsigned hex4(const char *s)
{
    return hex_value(s[0]) << 12 | hex_value(s[1]) << 8 |
           hex_value(s[2]) << 4 | hex_value(s[3]);
}

/* Appends code point cp as UTF-8; a lone surrogate becomes its three-byte
 * form, so that the same escape always names the same key. */
static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Decodes a checked key token's escapes into out (at least as long as
 * the token): "\u00e9" and "é" must name the same key. Returns the
 * length.
 */
static size_t decode_key(const char *tok, size_t len, char *out)
{
    static const char plain[] = "\"\\/\b\f\n\r\t";
    static const char coded[] = "\"\\/bfnrt";
    size_t n = 0;

    for (size_t i = 1; i + 1 < len; i++) {
        if (tok[i] != '\\') {
            out[n++] = tok[i];
            continue;
        }
        if (tok[i + 1] != 'u') {
            out[n++] = plain[strchr(coded, tok[i + 1]) - coded];
            i++;
            continue;
        }

        unsigned cp = hex4(tok + i + 2);

        i += 5;
        /* A high surrogate and a low one make one code point. */
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < len &&
            tok[i + 1] == '\\' && tok[i + 2] == 'u') {
            unsigned lo = hex4(tok + i + 3);

            if (lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
        }
        n += put_utf8(out + n, cp);
    }
    return n;
}

/*
 * Fills m's name from its key: the token's inside, or a decoded copy when
 * it holds escapes. The name is taken from the key as it will be written
 * (bytes that are not UTF-8 as U+FFFD), so that two keys which print the
 * same are the same key. Returns 0, or -1 when memory is short.
 */
static int member_name(member *m)
{
    const char *tok = m->key;
    size_t len = m->key_len;
    char *fixed = NULL, *buf;

    if (!jw_utf8_valid(tok, len)) {
        jw w;

        jw_init(&w, len * 3);
        jw_json_utf8(&w, tok, len);
        fixed = jw_finish(&w, &len);
        if (!fixed)
            return -1;
        tok = fixed;
    }

    if (!fixed && !memchr(tok, '\\', len)) {
        m->name = tok + 1;
        m->name_len = len - 2;
    } else {
        buf = malloc(len);
        if (!buf) {
            free(fixed);
            return -1;
        }
        m->name_len = decode_key(tok, len, buf);
        m->name = buf;
        m->name_owned = 1;
    }
    free(fixed);
    m->hash = name_hash(m->name, m->name_len);
    return 0;
}

/* ---- objects ------------------------------------------------------- */

static void object_free(object *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        if (o->m[i].name_owned)
            free((char *)o->m[i].name);
        object_free(o->m[i].obj);
    }
    free(o->m);
    free(o->slots);
    free(o);
}

static int same_name(const member *a, const member *b)
{
    return a->hash == b->hash && a->name_len == b->name_len &&
           memcmp(a->name, b->name, a->name_len) == 0;
}

/* (Re)builds the index for at most half-full slots; -1 when memory is
 * short, and then lookups scan, slower but still right. */
static int index_build(object *o)
{
    size_t cap = 64;

    while (cap < o->cap * 2)
        cap *= 2;

    size_t *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return -1;
    free(o->slots);
    o->slots = slots;
    o->mask = cap - 1;
    for (size_t i = 0; i < o->n; i++) {
        size_t s = o->m[i].hash & o->mask;

        while (o->slots[s])
            s = (s + 1) & o->mask;
        o->slots[s] = i + 1;
    }
    return 0;
}

/* The member of o named as m is, or NULL. */
static member *object_find(const object *o, const member *m)
{
    if (!o->slots) {
        for (size_t i = 0; i < o->n; i++) {
            if (same_name(&o->m[i], m))
                return &o->m[i];
        }
        return NULL;
    }
    for (size_t s = m->hash & o->mask; o->slots[s]; s = (s + 1) & o->mask) {
        member *have = &o->m[o->slots[s] - 1];

        if (same_name(have, m))
            return have;
    }
    return NULL;
}

/* Appends m (moved in); -1 when memory is short. */
static int object_add(object *o, const member *m)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        member *v = realloc(o->m, cap * sizeof(*v));

        if (!v)
            return -1;
        o->m = v;
        o->cap = cap;
        if (o->cap > JMERGE_SCAN_MAX && index_build(o) < 0) {
            free(o->slots);
            o->slots = NULL;
        }
    }
    o->m[o->n] = *m;
    if (o->slots) {
        size_t s = m->hash & o->mask;

        while (o->slots[s])
            s = (s + 1) & o->mask;
        o->slots[s] = o->n + 1;
    }
    o->n++;
    return 0;
}

static void member_drop(member *m)
{
    if (m->name_owned)
        free((char *)m->name);
    object_free(m->obj);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_blanks(const char *t, size_t len, size_t i)
{
    while (i < len && is_blank(t[i]))
        i++;
    return i;
}

/*
 * Reads the object at t[*i] (a text jx accepted) into a skeleton; *i ends
 * past it. Returns NULL when memory is short.
 */
static object *read_object(const char *t, size_t len, size_t *i)
{
    object *o = calloc(1, sizeof(*o));
    size_t k = *i + 1;

    if (!o)
        return NULL;
    for (;;) {
        member m = {0};

        k = skip_blanks(t, len, k);
        if (t[k] == '}')
            break;
        if (t[k] == ',')
            k = skip_blanks(t, len, k + 1);

        m.key = t + k;
        k = jx_skip(t, len, k);
        m.key_len = (size_t)(t + k - m.key);
        k = skip_blanks(t, len, k) + 1; /* past ':' */
        k = skip_blanks(t, len, k);
        if (member_name(&m) < 0)
            goto oom;
        if (t[k] == '{') {
            m.obj = read_object(t, len, &k);
            if (!m.obj) {
                member_drop(&m);
                goto oom;
            }
        } else {
            m.value = t + k;
            k = jx_skip(t, len, k);
            m.value_len = (size_t)(t + k - m.value);
        }

        /* A key again in the same object: its first value stands. */
        if (object_find(o, &m)) {
            member_drop(&m);
        } else if (object_add(o, &m) < 0) {
            member_drop(&m);
            goto oom;
        }
    }
    *i = k + 1;
    return o;

oom:
    object_free(o);
    return NULL;
}

/* Folds src into dst, dst winning every conflict; src is consumed.
 * Returns 0, or -1 when memory is short (src is freed either way). */
static int fold(object *dst, object *src)
{
    int rc = 0;

    for (size_t i = 0; i < src->n; i++) {
        member *m = &src->m[i];
        member *have = rc == 0 ? object_find(dst, m) : NULL;

        if (rc == 0 && !have) {
            if (object_add(dst, m) == 0) {
                m->name_owned = 0;
                m->obj = NULL;
                continue;
            }
            rc = -1;
        } else if (rc == 0 && have->obj && m->obj) {
            rc = fold(have->obj, m->obj);
            m->obj = NULL;
        }
        member_drop(m);
    }
    free(src->m);
    free(src->slots);
    free(src);
    return rc;
}

static void write_object(jw *w, const object *o)
{
    jw_obj_open(w);
    for (size_t i = 0; i < o->n; i++) {
        const member *m = &o->m[i];

        jw_key_json(w, m->key, m->key_len);
        if (m->obj)
            write_object(w, m->obj);
        else
            jw_json_utf8(w, m->value, m->value_len);
    }
    jw_obj_close(w);
}

/* ---- errors --------------------------------------------------------- */

/*
 * Copies the bytes around body[at] into dst (2 * JMERGE_SNIPPET + 1
 * bytes), blanking what is not printable ASCII so the message stays one
 * clean line.
 */
static void snippet(char *dst, const char *body, size_t len, size_t at)
{
    size_t from = at > JMERGE_SNIPPET ? at - JMERGE_SNIPPET : 0;
    size_t n = 0;

    while (from + n < len && from + n < at + JMERGE_SNIPPET) {
        unsigned char c = (unsigned char)body[from + n];

        dst[n] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
        n++;
    }
    dst[n] = '\0';
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Checks part p is one JSON object; says why not in err. */
static int check_part(const jmerge_part *p, size_t *start, char *err,
                      size_t errlen)
{
    char around[2 * JMERGE_SNIPPET + 1];
    jx_error e;
    jx_type t = jx_check(p->body, p->len, start, NULL, &e);

    if (t == JX_OBJECT)
        return 0;
    if (t != JX_NONE) {
        set_err(err, errlen, "is not a JSON object but %s",
                jx_type_name(t));
        return -1;
    }
    snippet(around, p->body, p->len, e.at);
    set_err(err, errlen, "is not valid JSON: %s at byte %zu (\"%s\")",
            e.what, e.at, around);
    return -1;
}

/* ---- merging -------------------------------------------------------- */

static int is_blank_body(const char *body, size_t len)
{
    return skip_blanks(body, len, 0) == len;
}

/* A NUL-terminated copy of len bytes, or NULL when memory is short. */
static char *dup_bytes(const char *body, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return NULL;
    if (len > 0)
        memcpy(copy, body, len);
    copy[len] = '\0';
    return copy;
}

int jmerge_parts(const jmerge_part *parts, size_t n, char **out,
                 size_t *out_len, char *err, size_t errlen, size_t *bad)
{
    object *acc = NULL;
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    set_err(err, errlen, "%s", "");
    if (bad != NULL)
        *bad = SIZE_MAX;

    /* A single output is forwarded untouched: it need not even be JSON. */
    if (n == 1) {
        *out = dup_bytes(parts[0].body, parts[0].len);
        if (*out == NULL)
            goto oom;
        *out_len = parts[0].len;
        return 0;
    }

    for (size_t i = 0; i < n; i++) {
        size_t at;
        object *o;

        if (is_blank_body(parts[i].body, parts[i].len))
            continue;
        if (check_part(&parts[i], &at, err, errlen) < 0) {
            if (bad != NULL)
                *bad = i;
            goto done;
        }
        o = read_object(parts[i].body, parts[i].len, &at);
        if (!o)
            goto oom;
        if (!acc)
            acc = o;
        else if (fold(acc, o) < 0)
            goto oom;
    }

    /* No parts, or only blank ones: the node still gets an object. */
    if (!acc) {
        *out = dup_bytes("{}", 2);
        if (*out == NULL)
            goto oom;
        *out_len = 2;
        rc = 0;
        goto done;
    }

    jw w;

    jw_init(&w, 256);
    write_object(&w, acc);
    *out = jw_finish(&w, out_len);
    if (*out == NULL)
        goto oom;
    rc = 0;

done:
    object_free(acc);
    return rc;

oom:
    set_err(err, errlen, "out of memory while merging outputs");
    if (bad != NULL)
        *bad = SIZE_MAX;
    object_free(acc);
    return -1;
}
