/*
 * jmerge: the mechanism behind jmerge.h.
 *
 * Ownership: a parsed body belongs to this file until it is printed.
 * Merging moves items from the later object into the earlier one rather
 * than copying them, so every body is parsed once, no value is
 * duplicated, and the values that lose a conflict are freed with the
 * later object.
 */
#include "jmerge.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jw.h"
#include "jx.h"

/*
 * Up to this many key comparisons a plain scan of the destination beats
 * building an index; past it the index keeps merging two large objects
 * linear instead of quadratic.
 */
#define JMERGE_SCAN_MAX 1024

/*
 * Bytes of a bad body quoted in a parse error, before and after the spot:
 * enough to find it, short enough for a log line.
 */
#define JMERGE_SNIPPET 12

/* Open addressing over the keys of one destination object. */
typedef struct key_index {
    cJSON **slots;
    size_t mask;
} key_index;

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_blank(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_json_space(body[i]))
            return 0;
    }
    return 1;
}

/* FNV-1a: short keys dominate, and it needs no state. */
static size_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

/*
 * Sizes the table for n keys at most half full. Returns -1 when memory is
 * short; the caller then scans instead, which is slower but still right.
 */
static int index_init(key_index *ix, size_t n)
{
    size_t cap = 16;

    while (cap < n * 2) {
        if (cap > SIZE_MAX / 4)
            return -1;
        cap *= 2;
    }

    ix->slots = calloc(cap, sizeof(*ix->slots));
    if (ix->slots == NULL)
        return -1;
    ix->mask = cap - 1;
    return 0;
}

/* The slot holding key, or the empty slot where it would go. */
static cJSON **index_slot(const key_index *ix, const char *key)
{
    size_t i = key_hash(key) & ix->mask;

    while (ix->slots[i] != NULL && strcmp(ix->slots[i]->string, key) != 0)
        i = (i + 1) & ix->mask;
    return &ix->slots[i];
}

/*
 * Keeps the first item of a duplicated key, as the scan would find it.
 * A keyless item (an array element pushed into an object by hand)
 * cannot conflict and stays out.
 */
static void index_add(key_index *ix, cJSON *item)
{
    cJSON **slot;

    if (item->string == NULL)
        return;
    slot = index_slot(ix, item->string);
    if (*slot == NULL)
        *slot = item;
}

static cJSON *scan_find(const cJSON *obj, const char *key)
{
    for (cJSON *it = obj->child; it != NULL; it = it->next) {
        if (it->string != NULL && strcmp(it->string, key) == 0)
            return it;
    }
    return NULL;
}

static size_t count_children(const cJSON *obj)
{
    size_t n = 0;

    for (const cJSON *it = obj->child; it != NULL; it = it->next)
        n++;
    return n;
}

/*
 * Moves every key of src that dst lacks to the end of dst, in src's
 * order, and recurses where both hold an object. What src keeps is the
 * losing side of a conflict; the caller frees it with src.
 */
static void merge_objects(cJSON *dst, cJSON *src)
{
    size_t nd = count_children(dst);
    size_t ns = count_children(src);
    key_index ix = {NULL, 0};
    int indexed = 0;
    cJSON *item;
    cJSON *next;

    /* Appended keys lengthen every later scan, hence nd + ns. */
    if (ns > 0 && nd + ns > JMERGE_SCAN_MAX / ns)
        indexed = index_init(&ix, nd + ns) == 0;
    if (indexed) {
        for (cJSON *it = dst->child; it != NULL; it = it->next)
            index_add(&ix, it);
    }

    for (item = src->child; item != NULL; item = next) {
        cJSON *have;

        next = item->next;
        if (item->string == NULL)
            continue;

        have = indexed ? *index_slot(&ix, item->string)
                       : scan_find(dst, item->string);
        if (have == NULL) {
            /*
             * Objects are arrays of keyed items inside cJSON: appending
             * the detached item as an array element keeps its key
             * without the copy cJSON_AddItemToObject would make.
             */
            cJSON_DetachItemViaPointer(src, item);
            cJSON_AddItemToArray(dst, item);
            if (indexed)
                index_add(&ix, item);
        } else if (cJSON_IsObject(have) && cJSON_IsObject(item)) {
            merge_objects(have, item);
        }
    }

    free(ix.slots);
}

/*
 * Short memory only costs speed (no index, a scan instead), so the one
 * failure left is being handed something other than two objects.
 */
int jmerge_into(cJSON *dst, cJSON *src)
{
    int rc = -1;

    if (cJSON_IsObject(dst) && cJSON_IsObject(src)) {
        merge_objects(dst, src);
        rc = 0;
    }
    cJSON_Delete(src);
    return rc;
}

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

/* where is "near" for a spot cJSON only knows roughly, "at" otherwise. */
static void set_err_syntax(char *err, size_t errlen, const jmerge_part *p,
                           const char *what, const char *where, size_t at)
{
    char around[2 * JMERGE_SNIPPET + 1];

    if (err == NULL || errlen == 0)
        return;
    snippet(around, p->body, p->len, at);
    snprintf(err, errlen, "is not valid JSON: %s %s byte %zu (\"%s\")", what,
             where, at, around);
}

/*
 * Parses one non-blank body that must hold exactly one JSON object, read
 * exactly (see jx.h: numbers keep their digits). Returns the object, or
 * NULL with the reason in err.
 */
static cJSON *parse_object(const jmerge_part *p, char *err, size_t errlen)
{
    jx_error e;
    cJSON *v = jx_parse(p->body, p->len, &e);

    if (v == NULL) {
        set_err_syntax(err, errlen, p, e.what, e.near ? "near" : "at",
                       e.at);
        return NULL;
    }
    if (!cJSON_IsObject(v)) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "is not a JSON object but %s", jx_kind(v));
        cJSON_Delete(v);
        return NULL;
    }
    return v;
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

static void set_err_oom(char *err, size_t errlen, size_t *bad)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "out of memory while merging outputs");
    if (bad != NULL)
        *bad = SIZE_MAX;
}

/* Parses and folds every non-blank part into one object, earlier first. */
static int merge_all(const jmerge_part *parts, size_t n, cJSON **acc, char *err,
                     size_t errlen, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *obj;

        if (is_blank(parts[i].body, parts[i].len))
            continue;

        obj = parse_object(&parts[i], err, errlen);
        if (obj == NULL) {
            if (bad != NULL)
                *bad = i;
            return -1;
        }

        if (*acc == NULL)
            *acc = obj;
        else
            jmerge_into(*acc, obj);
    }
    return 0;
}

int jmerge_parts(const jmerge_part *parts, size_t n, char **out,
                 size_t *out_len, char *err, size_t errlen, size_t *bad)
{
    cJSON *acc = NULL;
    char *text = NULL;
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (bad != NULL)
        *bad = SIZE_MAX;

    /* A single output is forwarded untouched: it need not even be JSON. */
    if (n == 1) {
        text = dup_bytes(parts[0].body, parts[0].len);
        if (text == NULL) {
            set_err_oom(err, errlen, bad);
            return -1;
        }
        *out = text;
        *out_len = parts[0].len;
        return 0;
    }

    if (merge_all(parts, n, &acc, err, errlen, bad) != 0)
        goto done;

    /* No parts, or only blank ones: the node still gets an object. */
    text = acc != NULL ? cJSON_PrintUnformatted(acc) : dup_bytes("{}", 2);
    if (text == NULL) {
        set_err_oom(err, errlen, bad);
        goto done;
    }

    *out_len = strlen(text);

    /* cJSON passes on bytes that are not UTF-8; the node gets valid
     * JSON, with U+FFFD in their place. */
    if (!jw_utf8_valid(text, *out_len)) {
        jw w;

        jw_init(&w, *out_len + 16);
        jw_json_utf8(&w, text, *out_len);
        free(text);
        text = jw_finish(&w, out_len);
        if (text == NULL) {
            set_err_oom(err, errlen, bad);
            goto done;
        }
    }
    *out = text;
    rc = 0;

done:
    cJSON_Delete(acc);
    return rc;
}
