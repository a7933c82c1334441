/*
 * jw: the mechanism behind jw.h.
 *
 * Every writing call goes through reserve(), which is where a failure is
 * noted; once failed, nothing else touches the buffer.
 */
#include "jw.h"

#include <stdlib.h>
#include <string.h>

static const char hex[] = "0123456789abcdef";

/* Makes room for more bytes plus the final NUL; 0, or -1 once failed. */
static int reserve(jw *w, size_t more)
{
    if (w->failed)
        return -1;
    if (more < w->cap - w->len)
        return 0;

    size_t cap = w->cap ? w->cap : 256;

    while (cap - w->len <= more) {
        if (cap > SIZE_MAX / 2) {
            w->failed = 1;
            return -1;
        }
        cap *= 2;
    }

    char *b = realloc(w->buf, cap);

    if (!b) {
        w->failed = 1;
        return -1;
    }
    w->buf = b;
    w->cap = cap;
    return 0;
}

static void put(jw *w, const char *s, size_t n)
{
    if (reserve(w, n) < 0)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_char(jw *w, char c)
{
    if (reserve(w, 1) < 0)
        return;
    w->buf[w->len++] = c;
}

/* The comma before a value or a key, unless it is the first member or
 * the value of the key just written. */
static void separate(jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0) {
        int d = w->depth - 1;

        if (w->n[d / 8] & (1u << (d % 8)))
            put_char(w, ',');
        w->n[d / 8] |= (unsigned char)(1u << (d % 8));
    }
}

void jw_init(jw *w, size_t hint)
{
    memset(w, 0, sizeof(*w));
    if (hint > 0)
        reserve(w, hint);
}

static void open_container(jw *w, char c)
{
    separate(w);
    if (w->depth == JW_MAX_DEPTH) {
        w->failed = 1;
        return;
    }
    put_char(w, c);
    w->n[w->depth / 8] &= (unsigned char)~(1u << (w->depth % 8));
    w->depth++;
}

static void close_container(jw *w, char c)
{
    if (w->depth == 0) {
        w->failed = 1;
        return;
    }
    w->depth--;
    put_char(w, c);
}

void jw_obj_open(jw *w)
{
    open_container(w, '{');
}

void jw_obj_close(jw *w)
{
    close_container(w, '}');
}

void jw_arr_open(jw *w)
{
    open_container(w, '[');
}

void jw_arr_close(jw *w)
{
    close_container(w, ']');
}

size_t jw_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }

    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
        (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        return 0;
    *cp = c;
    return len;
}

/* Bytes a string may hold as they are: printable ASCII but the quote
 * and the backslash. */
static int plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* One byte that is not plain: an escape, a UTF-8 sequence, or U+FFFD for
 * a broken one. Returns the bytes of s consumed. */
static size_t put_special(jw *w, const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t k;

    switch (s[0]) {
    case '"': put(w, "\\\"", 2); return 1;
    case '\\': put(w, "\\\\", 2); return 1;
    case '\b': put(w, "\\b", 2); return 1;
    case '\f': put(w, "\\f", 2); return 1;
    case '\n': put(w, "\\n", 2); return 1;
    case '\r': put(w, "\\r", 2); return 1;
    case '\t': put(w, "\\t", 2); return 1;
    }
    if (s[0] < 0x20 || s[0] == 0x7f) {
        char u[6] = {'\\', 'u', '0', '0', hex[s[0] >> 4], hex[s[0] & 15]};

        put(w, u, sizeof(u));
        return 1;
    }

    k = jw_utf8_next(s, n, &cp);
    if (k == 0) {
        put(w, "\xef\xbf\xbd", 3);
        return 1;
    }
    put(w, (const char *)s, k);
    return k;
}

static void put_string(jw *w, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    /* Escapes at most double a byte, U+FFFD triples it: reserve once for
     * the common case and let put() grow the buffer for the rest. */
    if (reserve(w, len + 2) < 0)
        return;
    put_char(w, '"');
    while (i < len && !w->failed) {
        size_t run = i;

        while (run < len && plain(u[run]))
            run++;
        put(w, s + i, run - i);
        i = run;
        if (i < len)
            i += put_special(w, u + i, len - i);
    }
    put_char(w, '"');
}

void jw_key(jw *w, const char *key)
{
    separate(w);
    put_string(w, key, strlen(key));
    put_char(w, ':');
    w->after_key = 1;
}

void jw_key_plain(jw *w, const char *key, size_t n)
{
    separate(w);
    if (reserve(w, n + 3) < 0)
        return;
    w->buf[w->len++] = '"';
    memcpy(w->buf + w->len, key, n);
    w->len += n;
    w->buf[w->len++] = '"';
    w->buf[w->len++] = ':';
    w->after_key = 1;
}

void jw_str(jw *w, const char *s, size_t len)
{
    separate(w);
    put_string(w, s, len);
}

void jw_strz(jw *w, const char *s)
{
    jw_str(w, s, strlen(s));
}

/* Writes v in decimal into the end of buf (24 bytes); returns the start. */
static char *decimal(char *end, uint64_t v)
{
    char *p = end;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void jw_uint(jw *w, uint64_t v)
{
    char buf[24];
    char *p = decimal(buf + sizeof(buf), v);

    separate(w);
    put(w, p, (size_t)(buf + sizeof(buf) - p));
}

void jw_bool(jw *w, int v)
{
    separate(w);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void jw_null(jw *w)
{
    separate(w);
    put(w, "null", 4);
}

void jw_ms(jw *w, int64_t ns)
{
    uint64_t us = ns > 0 ? ((uint64_t)ns + 500) / 1000 : 0;
    char buf[32];
    char *end = buf + sizeof(buf);
    unsigned frac = (unsigned)(us % 1000);

    /* Integer part, then exactly three digits of fraction. */
    end[-1] = (char)('0' + frac % 10);
    end[-2] = (char)('0' + frac / 10 % 10);
    end[-3] = (char)('0' + frac / 100);
    end[-4] = '.';

    char *p = decimal(end - 4, us / 1000);

    separate(w);
    put(w, p, (size_t)(end - p));
}

void jw_json(jw *w, const char *text, size_t len)
{
    separate(w);
    put(w, text, len);
}

int jw_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    while (i < len) {
        size_t k;

        if (u[i] < 0x80) {
            i++;
            continue;
        }
        k = jw_utf8_next(u + i, len - i, &cp);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

void jw_json_utf8(jw *w, const char *text, size_t len)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0;

    separate(w);
    while (i < len && !w->failed) {
        size_t run = i;
        uint32_t cp;
        size_t k;

        while (run < len && u[run] < 0x80)
            run++;
        put(w, text + i, run - i);
        i = run;
        if (i == len)
            break;

        k = jw_utf8_next(u + i, len - i, &cp);
        if (k == 0) {
            put(w, "\xef\xbf\xbd", 3);
            i++;
        } else {
            put(w, text + i, k);
            i += k;
        }
    }
}

void jw_key_json(jw *w, const char *token, size_t len)
{
    jw_json_utf8(w, token, len);
    put_char(w, ':');
    w->after_key = 1;
}

char *jw_finish(jw *w, size_t *len)
{
    char *out;

    if (w->failed || reserve(w, 0) < 0) {
        jw_free(w);
        *len = 0;
        return NULL;
    }
    w->buf[w->len] = '\0';
    out = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return out;
}

void jw_free(jw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}
