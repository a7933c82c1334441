/*
 * libFuzzer harness for the fake apiserver's request-body paths: the
 * three patch formats, label and field selectors, and a store round
 * trip (create, patch, update, list with selectors, delete).
 *
 * Input: one selector byte, then two NUL-separated documents (the live
 * object or a selector, and the body).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "patch.h"
#include "sel.h"
#include "store.h"

static store *shared_store(void)
{
    static store *st;

    if (!st)
        st = store_new(NULL);
    return st;
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
    live = cJSON_Parse(a);
    body = cJSON_Parse(b);
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
