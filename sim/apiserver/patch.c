/* JSON merge patch, JSON patch and strategic merge patch. */
#include "patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- RFC 7386 merge patch ---- */

/* Merges patch into target in place; target is owned and returned. */
static cJSON *merge_into(cJSON *target, const cJSON *patch)
{
    const cJSON *p;

    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(target);
        return cJSON_Duplicate(patch, 1);
    }
    if (!cJSON_IsObject(target)) {
        cJSON_Delete(target);
        target = cJSON_CreateObject();
    }
    cJSON_ArrayForEach(p, patch) {
        cJSON *old;

        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
            continue;
        }
        old = cJSON_DetachItemFromObjectCaseSensitive(target, p->string);
        cJSON_AddItemToObject(target, p->string, merge_into(old, p));
    }
    return target;
}

cJSON *patch_merge(const cJSON *target, const cJSON *patch, char *err,
                   size_t errlen)
{
    if (!cJSON_IsObject(patch)) {
        snprintf(err, errlen, "merge patch must be a JSON object");
        return NULL;
    }
    return merge_into(cJSON_Duplicate(target, 1), patch);
}

/* ---- RFC 6902 JSON patch ---- */

/* Decodes one pointer token (~1 is '/', ~0 is '~') into buf. */
static const char *next_token(const char *p, char *buf, size_t len)
{
    size_t n = 0;

    while (*p && *p != '/' && n + 1 < len) {
        if (p[0] == '~' && p[1] == '1') {
            buf[n++] = '/';
            p += 2;
        } else if (p[0] == '~' && p[1] == '0') {
            buf[n++] = '~';
            p += 2;
        } else {
            buf[n++] = *p++;
        }
    }
    buf[n] = '\0';
    return p;
}

static int parse_index(const char *tok, int size, int allow_end)
{
    char *end;
    long i;

    if (allow_end && strcmp(tok, "-") == 0)
        return size;
    if (!*tok || (tok[0] == '0' && tok[1]))
        return -1;
    i = strtol(tok, &end, 10);
    if (*end || i < 0 || i > size - (allow_end ? 0 : 1))
        return -1;
    return (int)i;
}

/*
 * Splits a pointer into its parent container (inside doc) and the last
 * token. Returns the parent or NULL when the path does not resolve.
 */
static cJSON *resolve_parent(cJSON *doc, const char *ptr, char *last,
                             size_t len)
{
    cJSON *cur = doc;
    char tok[256];

    if (*ptr != '/')
        return NULL;
    for (;;) {
        ptr = next_token(ptr + 1, tok, sizeof(tok));
        if (!*ptr) {
            snprintf(last, len, "%s", tok);
            return cur;
        }
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else if (cJSON_IsArray(cur)) {
            int i = parse_index(tok, cJSON_GetArraySize(cur), 0);

            cur = i < 0 ? NULL : cJSON_GetArrayItem(cur, i);
        } else {
            return NULL;
        }
        if (!cur)
            return NULL;
    }
}

static cJSON *get_at(cJSON *doc, const char *ptr)
{
    char last[256];
    cJSON *parent;

    if (!*ptr)
        return doc;
    parent = resolve_parent(doc, ptr, last, sizeof(last));
    if (cJSON_IsObject(parent))
        return cJSON_GetObjectItemCaseSensitive(parent, last);
    if (cJSON_IsArray(parent)) {
        int i = parse_index(last, cJSON_GetArraySize(parent), 0);

        return i < 0 ? NULL : cJSON_GetArrayItem(parent, i);
    }
    return NULL;
}

/* Detaches the value at ptr; NULL if absent. */
static cJSON *detach_at(cJSON *doc, const char *ptr)
{
    char last[256];
    cJSON *parent = resolve_parent(doc, ptr, last, sizeof(last));

    if (cJSON_IsObject(parent))
        return cJSON_DetachItemFromObjectCaseSensitive(parent, last);
    if (cJSON_IsArray(parent)) {
        int i = parse_index(last, cJSON_GetArraySize(parent), 0);

        return i < 0 ? NULL : cJSON_DetachItemFromArray(parent, i);
    }
    return NULL;
}

/* Adds val (owned) at ptr; on failure val is freed and -1 returned. */
static int add_at(cJSON **doc, const char *ptr, cJSON *val)
{
    char last[256];
    cJSON *parent;

    if (!*ptr) {
        cJSON_Delete(*doc);
        *doc = val;
        return 0;
    }
    parent = resolve_parent(*doc, ptr, last, sizeof(last));
    if (cJSON_IsObject(parent)) {
        cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
        cJSON_AddItemToObject(parent, last, val);
        return 0;
    }
    if (cJSON_IsArray(parent)) {
        int size = cJSON_GetArraySize(parent);
        int i = parse_index(last, size, 1);

        if (i >= 0) {
            util_insert(parent, i, val);
            return 0;
        }
    }
    cJSON_Delete(val);
    return -1;
}

static int apply_op(cJSON **doc, const cJSON *op, char *err, size_t errlen)
{
    const char *name = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(op, "op"));
    const char *path = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(op, "path"));
    const char *from = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(op, "from"));
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
    cJSON *v;

    if (!name || !path) {
        snprintf(err, errlen, "json patch operation needs op and path");
        return -1;
    }
    if (strcmp(name, "add") == 0 || strcmp(name, "replace") == 0) {
        if (!value)
            goto missing_value;
        if (name[0] == 'r' && !get_at(*doc, path))
            goto no_path;
        if (add_at(doc, path, cJSON_Duplicate(value, 1)) < 0)
            goto no_path;
    } else if (strcmp(name, "remove") == 0) {
        v = *path ? detach_at(*doc, path) : NULL;
        if (!v)
            goto no_path;
        cJSON_Delete(v);
    } else if (strcmp(name, "test") == 0) {
        v = get_at(*doc, path);
        if (!value)
            goto missing_value;
        if (!v || !cJSON_Compare(v, value, 1)) {
            snprintf(err, errlen, "json patch test operation failed at %s",
                     path);
            return -1;
        }
    } else if (strcmp(name, "move") == 0 || strcmp(name, "copy") == 0) {
        if (!from)
            goto no_path;
        if (name[0] == 'm')
            v = *from ? detach_at(*doc, from) : NULL;
        else
            v = cJSON_Duplicate(get_at(*doc, from), 1);
        if (!v || add_at(doc, path, v) < 0)
            goto no_path;
    } else {
        snprintf(err, errlen, "unexpected json patch operation \"%s\"",
                 name);
        return -1;
    }
    return 0;
missing_value:
    snprintf(err, errlen, "json patch %s operation needs a value", name);
    return -1;
no_path:
    snprintf(err, errlen, "json patch %s operation does not apply: "
             "doc is missing path: \"%s\"", name, from ? from : path);
    return -1;
}

cJSON *patch_json(const cJSON *target, const cJSON *ops, char *err,
                  size_t errlen)
{
    cJSON *doc;
    const cJSON *op;

    if (!cJSON_IsArray(ops)) {
        snprintf(err, errlen, "json patch must be a JSON array");
        return NULL;
    }
    doc = cJSON_Duplicate(target, 1);
    cJSON_ArrayForEach(op, ops) {
        if (!cJSON_IsObject(op)) {
            snprintf(err, errlen, "json patch operation must be an object");
            goto fail;
        }
        if (apply_op(&doc, op, err, errlen) < 0)
            goto fail;
    }
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

/* ---- strategic merge patch ---- */

/* The merge key of a list field, given the list that holds its map. */
static const char *merge_key(const char *field, const char *ctx)
{
    static const char *const by_name[] = {
        "containers", "initContainers", "ephemeralContainers", "volumes",
        "env", "imagePullSecrets", "resourceClaims", NULL,
    };

    for (int i = 0; by_name[i]; i++)
        if (strcmp(field, by_name[i]) == 0)
            return "name";
    if (strcmp(field, "ports") == 0)
        return ctx && strstr(ctx, "ontainers") ? "containerPort" : "port";
    if (strcmp(field, "volumeMounts") == 0)
        return "mountPath";
    if (strcmp(field, "volumeDevices") == 0)
        return "devicePath";
    if (strcmp(field, "ownerReferences") == 0)
        return "uid";
    if (strcmp(field, "conditions") == 0)
        return "type";
    if (strcmp(field, "hostAliases") == 0)
        return "ip";
    if (strcmp(field, "topologySpreadConstraints") == 0)
        return "topologyKey";
    return NULL;
}

static int is_directive(const char *key)
{
    return key && key[0] == '$';
}

/* Copies a patch value without its $-directives, recursively. */
static cJSON *strip(const cJSON *v)
{
    cJSON *out;
    const cJSON *c;

    if (cJSON_IsObject(v)) {
        out = cJSON_CreateObject();
        cJSON_ArrayForEach(c, v) {
            if (!is_directive(c->string) && !cJSON_IsNull(c))
                cJSON_AddItemToObject(out, c->string, strip(c));
        }
        return out;
    }
    if (cJSON_IsArray(v)) {
        out = cJSON_CreateArray();
        cJSON_ArrayForEach(c, v) {
            cJSON_AddItemToArray(out, strip(c));
        }
        return out;
    }
    return cJSON_Duplicate(v, 1);
}

static const char *directive(const cJSON *obj)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(obj, "$patch"));
}

static int same_key(const cJSON *a, const cJSON *b, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, key);
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, key);

    return x && y && cJSON_Compare(x, y, 1);
}

static cJSON *smp_map(cJSON *target, const cJSON *patch, const char *ctx);

/* Merges a keyed list element-wise; target (owned) is returned. */
static cJSON *smp_keyed_list(cJSON *target, const cJSON *patch,
                             const char *key, const char *field)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, patch) {
        const char *d = directive(p);
        int i = 0, found = -1;
        cJSON *t;

        if (d && strcmp(d, "replace") == 0) {
            cJSON *out = cJSON_CreateArray();
            const cJSON *q;

            cJSON_ArrayForEach(q, patch) {
                if (!directive(q))
                    cJSON_AddItemToArray(out, strip(q));
            }
            cJSON_Delete(target);
            return out;
        }
        cJSON_ArrayForEach(t, target) {
            if (found < 0 && same_key(t, p, key))
                found = i;
            i++;
        }
        if (d && strcmp(d, "delete") == 0) {
            if (found >= 0)
                cJSON_DeleteItemFromArray(target, found);
        } else if (found >= 0) {
            t = cJSON_DetachItemFromArray(target, found);
            util_insert(target, found, smp_map(t, p, field));
        } else {
            cJSON_AddItemToArray(target, strip(p));
        }
    }
    return target;
}

/* Set union for merge lists of primitives (metadata.finalizers). */
static cJSON *smp_primitive_union(cJSON *target, const cJSON *patch)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, patch) {
        const cJSON *t;
        int have = 0;

        cJSON_ArrayForEach(t, target) {
            have |= cJSON_Compare(t, p, 1);
        }
        if (!have)
            cJSON_AddItemToArray(target, cJSON_Duplicate(p, 1));
    }
    return target;
}

static void remove_primitives(cJSON *list, const cJSON *values)
{
    const cJSON *v;

    cJSON_ArrayForEach(v, values) {
        for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--)
            if (cJSON_Compare(cJSON_GetArrayItem(list, i), v, 1))
                cJSON_DeleteItemFromArray(list, i);
    }
}

/* Orders list so elements named in order come first, in that order. */
static void set_order(cJSON *list, const cJSON *order, const char *key)
{
    cJSON *sorted = cJSON_CreateArray();
    const cJSON *o;

    cJSON_ArrayForEach(o, order) {
        for (int i = 0; i < cJSON_GetArraySize(list); i++) {
            cJSON *e = cJSON_GetArrayItem(list, i);

            if ((key && same_key(e, o, key)) ||
                (!key && cJSON_Compare(e, o, 1))) {
                cJSON_AddItemToArray(sorted,
                                     cJSON_DetachItemFromArray(list, i));
                break;
            }
        }
    }
    while (cJSON_GetArraySize(list) > 0)
        cJSON_AddItemToArray(sorted, cJSON_DetachItemFromArray(list, 0));
    while (cJSON_GetArraySize(sorted) > 0)
        cJSON_AddItemToArray(list, cJSON_DetachItemFromArray(sorted, 0));
    cJSON_Delete(sorted);
}

static cJSON *smp_value(cJSON *old, const cJSON *p, const char *field,
                        const char *ctx)
{
    const char *key;

    if (cJSON_IsObject(p)) {
        const char *d = directive(p);

        if (d && strcmp(d, "replace") == 0) {
            cJSON_Delete(old);
            return strip(p);
        }
        if (!cJSON_IsObject(old)) {
            cJSON_Delete(old);
            old = cJSON_CreateObject();
        }
        return smp_map(old, p, ctx);
    }
    if (cJSON_IsArray(p) && cJSON_IsArray(old)) {
        key = merge_key(field, ctx);
        if (key)
            return smp_keyed_list(old, p, key, field);
        if (strcmp(field, "finalizers") == 0)
            return smp_primitive_union(old, p);
    }
    cJSON_Delete(old);
    return strip(p);
}

/* Merges patch into the map target (owned); returns the result. */
static cJSON *smp_map(cJSON *target, const cJSON *patch, const char *ctx)
{
    const cJSON *p, *retain;

    cJSON_ArrayForEach(p, patch) {
        const char *k = p->string;
        cJSON *old;

        if (strncmp(k, "$deleteFromPrimitiveList/", 25) == 0) {
            cJSON *l = cJSON_GetObjectItemCaseSensitive(target, k + 25);

            if (cJSON_IsArray(l))
                remove_primitives(l, p);
            continue;
        }
        if (is_directive(k))
            continue;
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, k);
            continue;
        }
        old = cJSON_DetachItemFromObjectCaseSensitive(target, k);
        cJSON_AddItemToObject(target, k, smp_value(old, p, k, ctx));
    }
    cJSON_ArrayForEach(p, patch) {
        cJSON *l;

        if (strncmp(p->string, "$setElementOrder/", 17) != 0)
            continue;
        l = cJSON_GetObjectItemCaseSensitive(target, p->string + 17);
        if (cJSON_IsArray(l))
            set_order(l, p, merge_key(p->string + 17, ctx));
    }
    retain = cJSON_GetObjectItemCaseSensitive(patch, "$retainKeys");
    if (cJSON_IsArray(retain)) {
        cJSON *t = target->child;

        while (t) {
            cJSON *next = t->next;
            const cJSON *r;
            int keep = 0;

            cJSON_ArrayForEach(r, retain) {
                keep |= cJSON_IsString(r) &&
                        strcmp(r->valuestring, t->string) == 0;
            }
            if (!keep)
                cJSON_Delete(cJSON_DetachItemViaPointer(target, t));
            t = next;
        }
    }
    return target;
}

cJSON *patch_strategic(const cJSON *target, const cJSON *patch, char *err,
                       size_t errlen)
{
    if (!cJSON_IsObject(patch)) {
        snprintf(err, errlen, "strategic merge patch must be a JSON object");
        return NULL;
    }
    return smp_map(cJSON_Duplicate(target, 1), patch, NULL);
}

/* ---- server-side apply upsert ---- */

static void apply_into(cJSON *target, const cJSON *fields)
{
    const cJSON *f;

    cJSON_ArrayForEach(f, fields) {
        cJSON *old = cJSON_GetObjectItemCaseSensitive(target, f->string);

        if (cJSON_IsNull(f))
            continue;
        if (cJSON_IsObject(f) && cJSON_IsObject(old)) {
            apply_into(old, f);
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(target, f->string);
        cJSON_AddItemToObject(target, f->string, cJSON_Duplicate(f, 1));
    }
}

cJSON *patch_apply(const cJSON *target, const cJSON *fields)
{
    cJSON *out = cJSON_IsObject(target) ? cJSON_Duplicate(target, 1)
                                        : cJSON_CreateObject();

    apply_into(out, fields);
    return out;
}
