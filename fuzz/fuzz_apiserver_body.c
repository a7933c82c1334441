/*
 * libFuzzer harness for the fake apiserver's request-body paths: the
 * three patch formats, label and field selectors, a store round trip
 * (create, patch, update, list with selectors, delete), and YAML bodies.
 *
 * Input: one selector byte, then two NUL-separated documents (the live
 * object or a selector, and the body). A document that is not JSON is
 * read as YAML, as the server does for a YAML Content-Type.
 * Seeds: fuzz/seeds/apiserver_body/ (mode digit '0'..'5', document, NUL,
 * document).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "patch.h"
#include "sel.h"
#include "store.h"
#include "yamljson.h"

/*
 * The store is recreated after this many store round trips. Each round
 * trip appends up to seven events, each with two copies of the object,
 * so a store kept for the whole run holds its full 10000-event history
 * of fuzzed objects, and a Finalizer-held object lives on from one input
 * to the next. A fresh store per input costs more than the round trip
 * itself under ASan; this keeps the history short and the state at most
 * this many inputs old. A crash in the store mode may therefore need the
 * inputs before it: replay the corpus directory, not only the artifact.
 */
#define STORE_RUNS_PER_STORE 64

static store *shared_store(void)
{
    static store *st;
    static int runs;

    if (st && ++runs >= STORE_RUNS_PER_STORE) {
        store_free(st);
        st = NULL;
        runs = 0;
    }
    if (!st)
        st = store_new(NULL);
    return st;
}

/* JSON first; what is not JSON goes through the YAML body path. */
static cJSON *parse_doc(const char *text)
{
    char err[256];
    cJSON *j = cJSON_Parse(text);

    if (j)
        return j;
    return yamljson_parse(text, strlen(text), err, sizeof(err));
}

static void fuzz_store(const cJSON *live, const cJSON *body, const char *a)
{
    store *st = shared_store();
    store_ref coll = {"", "v1", "configmaps", "default", NULL, NULL};
    store_ref one = coll;
    store_opts o = {0};
    store_err err = {0, NULL};
    cJSON *out = NULL;

    one.name = "fuzz";
    o.field_manager = "fuzz";
    o.label_selector = a;
    o.field_selector = a;
    store_create(st, &coll, &o, live, &out, &err);
    cJSON_Delete(out);
    store_err_clear(&err);
    for (int t = STORE_PATCH_MERGE; t <= STORE_PATCH_APPLY; t++) {
        store_patch(st, &one, &o, (store_patch_type)t, body, &out, &err);
        cJSON_Delete(out);
        store_err_clear(&err);
    }
    store_update(st, &one, &o, body, &out, &err);
    cJSON_Delete(out);
    store_err_clear(&err);
    store_list(st, &coll, &o, &out, &err);
    cJSON_Delete(out);
    store_err_clear(&err);
    store_delete_collection(st, &coll, NULL, body, &out, &err);
    cJSON_Delete(out);
    store_err_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *a, *b, err[256];
    cJSON *live, *body, *out = NULL;
    sel *s;

    if (size < 1)
        return 0;
    a = malloc(size);
    memcpy(a, data + 1, size - 1);
    a[size - 1] = '\0';
    b = a + strlen(a);
    if (b < a + size - 1)
        b++;
    live = parse_doc(a);
    body = parse_doc(b);
    switch (data[0] % 6) {
    case 0:
        out = live && body ? patch_merge(live, body, err, sizeof(err))
                           : NULL;
        break;
    case 1:
        out = live && body ? patch_json(live, body, err, sizeof(err))
                           : NULL;
        break;
    case 2:
        out = live && body ? patch_strategic(live, body, err, sizeof(err))
                           : NULL;
        break;
    case 3:
        s = sel_parse_labels(a, err, sizeof(err));
        if (s)
            sel_match_labels(s, body);
        sel_free(s);
        break;
    case 4:
        s = sel_parse_fields(a, err, sizeof(err));
        if (s)
            sel_match_fields(s, body);
        sel_free(s);
        break;
    default:
        if (live && body)
            fuzz_store(live, body, b);
        break;
    }
    cJSON_Delete(out);
    cJSON_Delete(live);
    cJSON_Delete(body);
    free(a);
    return 0;
}
