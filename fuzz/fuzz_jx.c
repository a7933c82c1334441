/*
 * libFuzzer harness for exact JSON reading (jx) and merging (jmerge).
 *
 * The input is one text, or up to four node outputs separated by 0x01
 * bytes. Whatever the bytes: no crash, no leak; a text jx accepts prints
 * as text jx accepts again and prints the same (nothing drifts on the
 * way through a workflow); a merge either fails with a reason and the
 * part to blame, or gives valid UTF-8 that jx reads as an object.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jmerge.h"
#include "jw.h"
#include "jx.h"

#define MAX_PARTS 4

static void round_trip(const char *text, size_t len)
{
    jx_error e;
    cJSON *v = jx_parse(text, len, &e);

    if (!v) {
        if (e.what[0] == '\0' || e.at > len)
            abort();
        return;
    }

    char *once = cJSON_PrintUnformatted(v);
    cJSON *again = once ? jx_parse(once, strlen(once), &e) : NULL;
    char *twice = again ? cJSON_PrintUnformatted(again) : NULL;

    if (once && (!twice || strcmp(once, twice) != 0))
        abort();
    free(once);
    free(twice);
    cJSON_Delete(again);
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

    cJSON *v = jx_parse(out, out_len, &e);

    if (!jw_utf8_valid(out, out_len) || !cJSON_IsObject(v))
        abort();
    cJSON_Delete(v);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    round_trip((const char *)data, size);
    merge((const char *)data, size);
    return 0;
}
