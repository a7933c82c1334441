/*
 * libFuzzer harness for the JSON check (jx) and merging (jmerge).
 *
 * The input is one text, or up to four node outputs separated by 0x01
 * bytes. Whatever the bytes: no crash, no leak, no read past the text;
 * jx_skip ends where jx_check says a value ends; cJSON, a lenient
 * reader, takes what jx takes (strings with lone surrogates aside, which
 * the grammar allows and cJSON refuses); a merge either fails with a
 * reason and the part to blame, or gives valid UTF-8 that jx reads as an
 * object and that merged with itself gives itself back.
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jmerge.h"
#include "jw.h"
#include "jx.h"

#define MAX_PARTS 4

static void check_one(const char *text, size_t len)
{
    size_t start, end;
    jx_error e;
    jx_type t = jx_check(text, len, &start, &end, &e);

    if (t == JX_NONE) {
        if (e.what[0] == '\0' || e.at > len)
            abort();
        return;
    }
    if (start > end || end > len || jx_skip(text, len, start) != end)
        abort();

    /* What jx accepts, cJSON reads too, but for \u escapes that are not
     * whole characters (lone surrogates), which only cJSON refuses. */
    cJSON *v = cJSON_ParseWithLength(text, len);

    if (!v && !memmem(text, len, "\\u", 2) && !memmem(text, len, "\\U", 2))
        abort();
    cJSON_Delete(v);
}

static void merge(const char *text, size_t len)
{
    jmerge_part parts[MAX_PARTS];
    size_t n = 0, from = 0, out_len = 0, bad = 0;
    char err[256], *out = NULL;
    jx_error e;

    /* Split at 0x01 bytes; the last part takes the rest. */
    while (n < MAX_PARTS - 1) {
        const char *sep = memchr(text + from, 0x01, len - from);

        if (!sep)
            break;
        parts[n].body = text + from;
        parts[n].len = (size_t)(sep - (text + from));
        n++;
        from = (size_t)(sep - text) + 1;
    }
    parts[n].body = text + from;
    parts[n].len = len - from;
    n++;
    if (n < 2)
        return;

    if (jmerge_parts(parts, n, &out, &out_len, err, sizeof(err), &bad) != 0) {
        if (out || err[0] == '\0' || (bad >= n && bad != SIZE_MAX))
            abort();
        return;
    }
    if (!jw_utf8_valid(out, out_len) ||
        jx_check(out, out_len, NULL, NULL, &e) != JX_OBJECT)
        abort();

    /* The merged text has no repeated keys: with itself, it is itself. */
    jmerge_part twice[2] = {{out, out_len}, {out, out_len}};
    char *again = NULL;
    size_t again_len = 0;

    if (jmerge_parts(twice, 2, &again, &again_len, err, sizeof(err),
                     &bad) != 0 ||
        again_len != out_len || memcmp(again, out, out_len) != 0)
        abort();
    free(again);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one((const char *)data, size);
    merge((const char *)data, size);
    return 0;
}
