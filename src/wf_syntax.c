/*
 * wf_syntax: document text -> cJSON tree.
 *
 * JSON goes straight through cJSON. YAML is read with libyaml's event API
 * and built into the same kind of tree, so one model builder serves both.
 * Plain YAML scalars are typed by the YAML 1.2 core schema: `yes`, `no`,
 * `on` and `y` stay strings, which is what a reader of the document
 * expects from an engine that also takes JSON.
 */
#include "wf_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Where a syntax error is, kept until we know which syntax to blame. */
typedef struct syn_error {
    char what[320];
    char context[160]; /* what the parser was in, and where it began */
    size_t line;
    size_t col;
    int set;
    int empty; /* nothing but comments: not a syntax error as such */
    int deep;  /* nested past WF_MAX_DEPTH: reported whatever the syntax */
} syn_error;

/* Line and column (both from 1, columns in characters) of byte pos. */
static void locate(const char *text, size_t len, size_t pos, size_t *line,
                   size_t *col)
{
    size_t l = 1;
    size_t c = 1;

    if (pos > len)
        pos = len;
    for (size_t i = 0; i < pos; i++) {
        unsigned char ch = (unsigned char)text[i];

        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Records that a list or mapping opened at line, col is one level past
 * WF_MAX_DEPTH. */
static void deep_error(syn_error *e, size_t line, size_t col, int is_map)
{
    e->set = 1;
    e->deep = 1;
    e->line = line;
    e->col = col;
    snprintf(e->what, sizeof(e->what),
             "the document nests deeper than %d levels: the %s at line "
             "%zu, column %zu is level %d",
             WF_MAX_DEPTH, is_map ? "object" : "list", line, col,
             WF_MAX_DEPTH + 1);
}

/* ---- JSON ---- */

/* One string token that holds an escaped NUL (\u0000). */
typedef struct nul_token {
    size_t ordinal; /* position among all string tokens */
    const char *start;
    size_t len;
} nul_token;

typedef struct nul_scan {
    nul_token *toks;
    size_t n;
    size_t cap;
    size_t next; /* first token not yet matched to an item */
    size_t ord;  /* string tokens met so far in the tree walk */
} nul_scan;

static int scan_push(nul_scan *s, size_t ordinal, const char *start, size_t len)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        nul_token *t = realloc(s->toks, cap * sizeof(*t));

        if (t == NULL)
            return -1;
        s->toks = t;
        s->cap = cap;
    }
    s->toks[s->n].ordinal = ordinal;
    s->toks[s->n].start = start;
    s->toks[s->n].len = len;
    s->n++;
    return 0;
}

/*
 * Lists the string tokens of a JSON text that cJSON has accepted and that
 * contain an escaped NUL. Numbering every string token in text order lets
 * the tree walk below find the same strings in the tree again.
 */
static int scan_nul_tokens(const char *text, size_t len, nul_scan *s)
{
    size_t ordinal = 0;
    size_t i = 0;

    while (i < len) {
        size_t start;
        int has_nul = 0;

        if (text[i] != '"') {
            i++;
            continue;
        }
        start = ++i;
        while (i < len && text[i] != '"') {
            if (text[i] != '\\') {
                i++;
                continue;
            }
            if (i + 5 < len && text[i + 1] == 'u' &&
                memcmp(text + i + 2, "0000", 4) == 0)
                has_nul = 1;
            i += 2;
        }
        if (has_nul && scan_push(s, ordinal, text + start, i - start) != 0)
            return -1;
        ordinal++;
        i++;
    }
    return 0;
}

static int scan_visit(wf_ctx *c, nul_scan *s, const cJSON *item, int is_key)
{
    const nul_token *t;

    if (s->next < s->n && s->toks[s->next].ordinal == s->ord) {
        t = &s->toks[s->next++];
        if (wf_nulset_add(c, item, is_key, t->start, t->len, 1) != 0)
            return -1;
    }
    s->ord++;
    return 0;
}

/* Walks the tree in text order: each member's key, then its value. */
static int scan_assign(wf_ctx *c, nul_scan *s, const cJSON *item)
{
    if (s->next == s->n)
        return 0;
    if (cJSON_IsString(item))
        return scan_visit(c, s, item, 0);
    if (!cJSON_IsArray(item) && !cJSON_IsObject(item))
        return 0;
    for (const cJSON *ch = item->child; ch != NULL; ch = ch->next) {
        if (cJSON_IsObject(item) && scan_visit(c, s, ch, 1) != 0)
            return -1;
        if (scan_assign(c, s, ch) != 0)
            return -1;
    }
    return 0;
}

/* A quick look for "\u0000" anywhere, before any careful scan. */
static int has_escaped_nul(const char *text, size_t len)
{
    const char *p = text;
    const char *end = text + len;

    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0)
            return 1;
        p++;
    }
    return 0;
}

static int record_json_nuls(wf_ctx *c, const char *text, size_t len,
                            const cJSON *root)
{
    nul_scan s;
    int rc;

    /* Nearly every document has no escaped NUL at all. */
    if (!has_escaped_nul(text, len))
        return 0;
    memset(&s, 0, sizeof(s));
    rc = scan_nul_tokens(text, len, &s);
    if (rc == 0)
        rc = scan_assign(c, &s, root);
    free(s.toks);
    return rc;
}

/* Up to 16 bytes from pos, stopping at the end of the line. */
static size_t snippet_len(const char *text, size_t len, size_t pos)
{
    size_t n = 0;

    while (pos + n < len && n < 16 && text[pos + n] != '\n' &&
           text[pos + n] != '\r')
        n++;
    return n;
}

static void json_error(const char *text, size_t len, size_t pos, syn_error *e)
{
    char near[WF_QUOTE_BUF];
    size_t n;

    e->set = 1;

    /* cJSON points at the last byte when the text ends too early; it never
     * stops on white space otherwise. */
    if (pos >= len || (pos == len - 1 && is_space(text[pos]))) {
        locate(text, len, len, &e->line, &e->col);
        snprintf(e->what, sizeof(e->what),
                 "the document ends before the JSON value is complete");
        return;
    }
    locate(text, len, pos, &e->line, &e->col);
    n = snippet_len(text, len, pos);
    snprintf(e->what, sizeof(e->what), "unexpected text near '%s'",
             wf_quote(near, text + pos, n, 1));
}

/*
 * Finds the first bracket that opens a level past WF_MAX_DEPTH, counting
 * brackets outside strings. Exact for any text that is JSON up to that
 * bracket, which is all the caller relies on. Returns 1 and its offset in
 * *pos, or 0 when the text stays within the limit.
 */
static int json_too_deep(const char *text, size_t len, size_t *pos)
{
    size_t depth = 0;
    size_t i = 0;

    while (i < len) {
        char ch = text[i];

        if (ch == '"') {
            for (i++; i < len && text[i] != '"'; i++) {
                if (text[i] == '\\')
                    i++;
            }
        } else if (ch == '[' || ch == '{') {
            if (++depth > WF_MAX_DEPTH) {
                *pos = i;
                return 1;
            }
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            depth--;
        }
        i++;
    }
    return 0;
}

static cJSON *parse_json(wf_ctx *c, const char *text, size_t len, syn_error *e)
{
    const char *end = NULL;
    cJSON *root;
    size_t deep_at = 0;
    int deep = json_too_deep(text, len, &deep_at);
    size_t pos;

    /*
     * The error position comes back through end; cJSON's global error
     * (cJSON_GetErrorPtr) is never read. cJSON still writes that global on
     * every parse, an unsynchronised store that thread sanitizers flag
     * when two threads parse at once. It is harmless as long as nothing
     * reads it; a cJSON built without the global would remove it.
     */
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    pos = end != NULL && end >= text ? (size_t)(end - text) : 0;

    /*
     * cJSON stops where the text stops being JSON, or at its own nesting
     * limit of 1000 with an error that does not say so. When it got past
     * the bracket beyond our limit (or to it, as the last byte, when the
     * text ran out), that bracket is the problem: the text up to it is
     * JSON, and no YAML reading nests it less. A bracket after the end of
     * the value is only text after the end.
     */
    if (deep && (pos > deep_at || (pos == deep_at && deep_at + 1 == len))) {
        size_t line;
        size_t col;

        cJSON_Delete(root);
        locate(text, len, deep_at, &line, &col);
        deep_error(e, line, col, text[deep_at] == '{');
        return NULL;
    }
    if (root == NULL) {
        json_error(text, len, pos, e);
        return NULL;
    }

    /* Without require_null_terminated cJSON stops after the first value;
     * anything but white space after it is an error. */
    pos = (size_t)(end - text);
    while (pos < len && is_space(text[pos]))
        pos++;
    if (pos < len) {
        char near[WF_QUOTE_BUF];
        size_t n = snippet_len(text, len, pos);

        e->set = 1;
        locate(text, len, pos, &e->line, &e->col);
        snprintf(e->what, sizeof(e->what),
                 "unexpected text after the end of the JSON value: '%s'",
                 wf_quote(near, text + pos, n, 1));
        cJSON_Delete(root);
        return NULL;
    }
    if (record_json_nuls(c, text, len, root) != 0) {
        wf_ctx_oom(c);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---- YAML ---- */

typedef struct yframe {
    cJSON *node;
    char *key; /* a mapping's key waiting for its value */
    size_t key_len;
    int has_key;
} yframe;

typedef struct ybuild {
    wf_ctx *c;
    yframe stack[WF_MAX_DEPTH];
    size_t depth;
    cJSON *root;
    syn_error *e;
} ybuild;

static void yerr(ybuild *b, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void yerr(ybuild *b, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;

    b->e->set = 1;
    b->e->line = m.line + 1;
    b->e->col = m.column + 1;
    va_start(ap, fmt);
    vsnprintf(b->e->what, sizeof(b->e->what), fmt, ap);
    va_end(ap);
}

static int all_digits(const char *s, size_t n, const char *set)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr(set, s[i]) == NULL || s[i] == '\0')
            return 0;
    }
    return 1;
}

/* Core schema floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 * Returns 1 and the value when s matches. Our own conversion, because
 * strtod() follows the process locale's decimal point. */
static int core_float(const char *s, size_t n, double *out)
{
    const char *digits = "0123456789";
    double mant = 0;
    long exp10 = 0;
    long e = 0;
    size_t i = 0;
    size_t nd = 0;
    int neg = 0;
    int eneg = 0;

    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    for (; i < n && strchr(digits, s[i]) && s[i]; i++, nd++)
        mant = mant * 10 + (s[i] - '0');
    if (i < n && s[i] == '.') {
        for (i++; i < n && strchr(digits, s[i]) && s[i]; i++, nd++) {
            mant = mant * 10 + (s[i] - '0');
            exp10--;
        }
    }
    if (nd == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t start;

        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            eneg = s[i++] == '-';
        start = i;
        for (; i < n && strchr(digits, s[i]) && s[i]; i++) {
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
        }
        if (i == start)
            return 0;
        exp10 += eneg ? -e : e;
    }
    if (i != n)
        return 0;
    if (exp10 < 0)
        mant /= pow(10, (double)-exp10);
    else if (exp10 > 0)
        mant *= pow(10, (double)exp10);
    *out = neg ? -mant : mant;
    return 1;
}

/* Core schema integers: decimal, 0o octal, 0x hexadecimal. */
static int core_int(const char *s, size_t n, double *out)
{
    double v = 0;
    size_t i = 0;
    int neg = 0;

    if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        int hex = s[1] == 'x';

        if (!all_digits(s + 2, n - 2,
                        hex ? "0123456789abcdefABCDEF" : "01234567"))
            return 0;
        for (i = 2; i < n; i++) {
            int d = s[i] <= '9'   ? s[i] - '0'
                    : s[i] <= 'F' ? s[i] - 'A' + 10
                                  : s[i] - 'a' + 10;

            v = v * (hex ? 16 : 8) + d;
        }
        *out = v;
        return 1;
    }
    if (n > 0 && (s[0] == '-' || s[0] == '+'))
        neg = s[i++] == '-';
    if (!all_digits(s + i, n - i, "0123456789"))
        return 0;
    for (; i < n; i++)
        v = v * 10 + (s[i] - '0');
    *out = neg ? -v : v;
    return 1;
}

static int one_of(const char *s, size_t n, const char *const *words)
{
    for (; *words != NULL; words++) {
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return 1;
    }
    return 0;
}

/* Types a plain, untagged scalar by the YAML 1.2 core schema. */
static cJSON *core_scalar(const char *s, size_t n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf",  ".Inf",  ".INF", "+.inf",
                                       "+.Inf", "+.INF", NULL};
    static const char *const ninfs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    double v;

    if (one_of(s, n, nulls))
        return cJSON_CreateNull();
    if (one_of(s, n, trues))
        return cJSON_CreateTrue();
    if (one_of(s, n, falses))
        return cJSON_CreateFalse();
    if (core_int(s, n, &v) || core_float(s, n, &v))
        return cJSON_CreateNumber(v);
    if (one_of(s, n, infs))
        return cJSON_CreateNumber(HUGE_VAL);
    if (one_of(s, n, ninfs))
        return cJSON_CreateNumber(-HUGE_VAL);
    if (one_of(s, n, nans))
        return cJSON_CreateNumber(NAN);
    return cJSON_CreateString(s);
}

/* Hangs item under the open collection, or makes it the root. Takes
 * ownership of item in every case. */
static int yb_attach(ybuild *b, cJSON *item)
{
    yframe *f;

    if (b->depth == 0) {
        b->root = item;
        return 0;
    }
    f = &b->stack[b->depth - 1];
    if (cJSON_IsArray(f->node)) {
        if (!cJSON_AddItemToArray(f->node, item)) {
            cJSON_Delete(item);
            return -1;
        }
        return 0;
    }
    if (!cJSON_AddItemToObject(f->node, f->key, item)) {
        cJSON_Delete(item);
        return -1;
    }

    /* cJSON copied the key up to its first NUL. */
    if (strlen(f->key) < f->key_len &&
        wf_nulset_add(b->c, item, 1, f->key, f->key_len, 0) != 0)
        return -1;
    free(f->key);
    f->key = NULL;
    f->has_key = 0;
    return 0;
}

/* True when the next node of the open mapping is a key. */
static int yb_wants_key(const ybuild *b)
{
    const yframe *f;

    if (b->depth == 0)
        return 0;
    f = &b->stack[b->depth - 1];
    return cJSON_IsObject(f->node) && !f->has_key;
}

static int tag_is(const yaml_char_t *tag, const char *want)
{
    return tag != NULL && strcmp((const char *)tag, want) == 0;
}

static int yb_scalar(ybuild *b, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const yaml_char_t *tag = ev->data.scalar.tag;
    cJSON *item;

    if (yb_wants_key(b)) {
        yframe *f = &b->stack[b->depth - 1];

        /* Keys are taken as their text, as Kubernetes does when it turns
         * YAML into JSON. */
        f->key = malloc(n + 1);
        if (f->key == NULL)
            return -1;
        memcpy(f->key, s, n);
        f->key[n] = '\0';
        f->key_len = n;
        f->has_key = 1;
        return 0;
    }
    if (tag != NULL && !tag_is(tag, "!") && !tag_is(tag, YAML_STR_TAG)) {
        yerr(b, ev->start_mark,
             "the tag '%s' is not supported; write the value plainly",
             (const char *)tag);
        return -1;
    }
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && tag == NULL)
        item = core_scalar(s, n);
    else
        item = cJSON_CreateString(s);
    if (item == NULL)
        return -1;
    if (cJSON_IsString(item) && strlen(s) < n &&
        wf_nulset_add(b->c, item, 0, s, n, 0) != 0) {
        cJSON_Delete(item);
        return -1;
    }
    return yb_attach(b, item);
}

static int yb_open(ybuild *b, const yaml_event_t *ev, int is_map)
{
    const yaml_char_t *tag =
        is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    cJSON *item;

    if (yb_wants_key(b)) {
        yerr(b, ev->start_mark, "a mapping key must be a plain value, not a %s",
             is_map ? "mapping" : "list");
        return -1;
    }
    if (tag != NULL && !tag_is(tag, "!") &&
        !tag_is(tag, is_map ? YAML_MAP_TAG : YAML_SEQ_TAG)) {
        yerr(b, ev->start_mark,
             "the tag '%s' is not supported; write the value plainly",
             (const char *)tag);
        return -1;
    }
    if (b->depth == WF_MAX_DEPTH) {
        deep_error(b->e, ev->start_mark.line + 1, ev->start_mark.column + 1,
                   is_map);
        return -1;
    }
    item = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
    if (item == NULL || yb_attach(b, item) != 0)
        return -1;
    b->stack[b->depth].node = item;
    b->stack[b->depth].key = NULL;
    b->stack[b->depth].has_key = 0;
    b->depth++;
    return 0;
}

static const yaml_char_t *event_anchor(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT:
        return ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT:
        return ev->data.mapping_start.anchor;
    default:
        return NULL;
    }
}

/* Handles one event. Returns 1 at the end of the stream, 0 to go on,
 * -1 on an error (in b->e, or out of memory when b->e is not set). */
static int yb_event(ybuild *b, const yaml_event_t *ev, int *docs)
{
    const yaml_char_t *anchor = event_anchor(ev);

    /* Aliases can expand a small document into an enormous tree; no
     * workflow needs them, so they are refused outright. */
    if (anchor != NULL) {
        yerr(b, ev->start_mark, "YAML anchors are not supported (anchor '&%s')",
             (const char *)anchor);
        return -1;
    }
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1) {
            yerr(b, ev->start_mark, "%s",
                 "the stream holds more than one YAML document; "
                 "give one workflow per document");
            return -1;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        yerr(b, ev->start_mark, "YAML aliases are not supported (alias '*%s')",
             (const char *)ev->data.alias.anchor);
        return -1;
    case YAML_SCALAR_EVENT:
        return yb_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return yb_open(b, ev, 0);
    case YAML_MAPPING_START_EVENT:
        return yb_open(b, ev, 1);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    case YAML_STREAM_END_EVENT:
        return 1;
    default:
        return 0;
    }
}

static void yaml_parser_error(const yaml_parser_t *p, const char *text,
                              size_t len, syn_error *e)
{
    const char *problem = p->problem ? p->problem : "invalid YAML";

    e->set = 1;
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        locate(text, len, p->problem_offset, &e->line, &e->col);
        snprintf(e->what, sizeof(e->what), "%s", problem);
        return;
    }
    e->line = p->problem_mark.line + 1;
    e->col = p->problem_mark.column + 1;
    snprintf(e->what, sizeof(e->what), "%s", problem);
    if (p->context != NULL)
        snprintf(e->context, sizeof(e->context),
                 " (%s that began at line %zu, column %zu)", p->context,
                 (size_t)p->context_mark.line + 1,
                 (size_t)p->context_mark.column + 1);
}

static cJSON *parse_yaml(wf_ctx *c, const char *text, size_t len, syn_error *e)
{
    yaml_parser_t p;
    yaml_event_t ev;
    ybuild b;
    int docs = 0;
    int rc = 0;

    memset(&b, 0, sizeof(b));
    b.c = c;
    b.e = e;
    if (!yaml_parser_initialize(&p)) {
        wf_ctx_oom(c);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (rc == 0) {
        if (!yaml_parser_parse(&p, &ev)) {
            if (p.error == YAML_MEMORY_ERROR)
                wf_ctx_oom(c);
            else
                yaml_parser_error(&p, text, len, e);
            rc = -1;
            break;
        }
        rc = yb_event(&b, &ev, &docs);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);

    for (size_t i = 0; i < WF_MAX_DEPTH; i++)
        free(b.stack[i].key);
    if (rc < 0) {
        if (!e->set)
            wf_ctx_oom(c);
        cJSON_Delete(b.root);
        return NULL;
    }
    if (b.root == NULL) {
        e->set = 1;
        e->empty = 1;
    }
    return b.root;
}

/* ---- entry ---- */

int wf_syntax_parse(wf_ctx *c, const char *text, size_t len, cJSON **root)
{
    syn_error je;
    syn_error ye;
    const char *nul;
    size_t i = 0;

    *root = NULL;
    memset(&je, 0, sizeof(je));
    memset(&ye, 0, sizeof(ye));

    /* A NUL byte would end the text early for parts of cJSON. */
    nul = len > 0 ? memchr(text, '\0', len) : NULL;
    if (nul != NULL) {
        size_t line;
        size_t col;

        locate(text, len, (size_t)(nul - text), &line, &col);
        wf_ctx_problem(c, "",
                       "the document could not be parsed: it contains a "
                       "NUL byte at line %zu, column %zu",
                       line, col);
        return -1;
    }

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < len && is_space(text[i]))
        i++;
    if (i == len) {
        wf_ctx_problem(c, "", "the document is empty");
        return -1;
    }

    /*
     * A document that opens with a bracket is JSON. Should cJSON refuse it,
     * it may still be YAML in flow style ({nodes: [...]}); the JSON error
     * is the one reported when YAML fails too.
     */
    if (text[i] == '{' || text[i] == '[') {
        *root = parse_json(c, text, len, &je);
        if (*root != NULL || c->oom)
            return *root != NULL ? 0 : -1;
        if (je.deep) {
            wf_ctx_problem(c, "", "%s", je.what);
            return -1;
        }
    }
    *root = parse_yaml(c, text, len, &ye);
    if (*root != NULL)
        return 0;
    if (c->oom)
        return -1;

    /* parse_yaml may have recorded strings of a tree it then dropped. */
    wf_nulset_free(&c->nuls);

    /* Too deep is too deep in either syntax; the JSON error would only
     * hide the reason. */
    if (ye.deep)
        wf_ctx_problem(c, "", "%s", ye.what);
    else if (je.set)
        wf_ctx_problem(c, "",
                       "the document could not be parsed as JSON: %s at "
                       "line %zu, column %zu",
                       je.what, je.line, je.col);
    else if (ye.empty)
        wf_ctx_problem(c, "", "the document is empty");
    else
        wf_ctx_problem(c, "",
                       "the document could not be parsed as YAML: %s at "
                       "line %zu, column %zu%s",
                       ye.what, ye.line, ye.col, ye.context);
    return -1;
}
