/* A structural-schema validator for custom resources. */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static const cJSON *kw(const cJSON *schema, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(schema, key);
}

/* Renders v the way apimachinery quotes values in error messages. */
static void show(const cJSON *v, char *buf, size_t len)
{
    char *s = cJSON_PrintUnformatted(v);

    snprintf(buf, len, "%s", s ? s : "null");
    free(s);
}

/* Adds "Invalid value: <v>: <path> in body <what>" as a cause. */
static void fail(cJSON *st, const char *reason, const char *path,
                 const cJSON *v, const char *what)
{
    char val[256], msg[768];

    show(v, val, sizeof(val));
    snprintf(msg, sizeof(msg), "Invalid value: %s: %s in body %s", val,
             path, what);
    status_add_cause(st, reason, msg, path);
}

static int type_ok(const char *type, const cJSON *v)
{
    if (strcmp(type, "object") == 0)
        return cJSON_IsObject(v);
    if (strcmp(type, "array") == 0)
        return cJSON_IsArray(v);
    if (strcmp(type, "string") == 0)
        return cJSON_IsString(v);
    if (strcmp(type, "boolean") == 0)
        return cJSON_IsBool(v);
    if (strcmp(type, "number") == 0)
        return cJSON_IsNumber(v);
    if (strcmp(type, "integer") == 0)
        return cJSON_IsNumber(v) &&
               v->valuedouble == (double)(long long)v->valuedouble;
    return 1;
}

static int validate(const cJSON *s, const cJSON *v, const char *path,
                    cJSON *st);

static int check_number(const cJSON *s, const cJSON *v, const char *path,
                        cJSON *st)
{
    const cJSON *min = kw(s, "minimum"), *max = kw(s, "maximum");
    char bound[64];

    if (cJSON_IsNumber(min) && v->valuedouble < min->valuedouble) {
        snprintf(bound, sizeof(bound), "should be greater than or equal "
                 "to %g", min->valuedouble);
        fail(st, "FieldValueInvalid", path, v, bound);
        return 1;
    }
    if (cJSON_IsNumber(max) && v->valuedouble > max->valuedouble) {
        snprintf(bound, sizeof(bound), "should be less than or equal to "
                 "%g", max->valuedouble);
        fail(st, "FieldValueInvalid", path, v, bound);
        return 1;
    }
    return 0;
}

static int check_length(const cJSON *s, const cJSON *v, const char *path,
                        cJSON *st, const char *what, int n)
{
    char mn[8], mx[8], bound[64];
    const cJSON *min, *max;

    snprintf(mn, sizeof(mn), "min%s", what);
    snprintf(mx, sizeof(mx), "max%s", what);
    min = kw(s, mn);
    max = kw(s, mx);
    if (cJSON_IsNumber(min) && n < min->valueint) {
        snprintf(bound, sizeof(bound), "should be at least %d long",
                 min->valueint);
        fail(st, "FieldValueInvalid", path, v, bound);
        return 1;
    }
    if (cJSON_IsNumber(max) && n > max->valueint) {
        snprintf(bound, sizeof(bound), "may not be longer than %d",
                 max->valueint);
        fail(st, "FieldValueTooLong", path, v, bound);
        return 1;
    }
    return 0;
}

static int check_enum(const cJSON *s, const cJSON *v, const char *path,
                      cJSON *st)
{
    const cJSON *e = kw(s, "enum"), *c;
    char list[512] = "";
    size_t n = 0;

    if (!cJSON_IsArray(e))
        return 0;
    cJSON_ArrayForEach(c, e) {
        char one[128];

        if (cJSON_Compare(c, v, 1))
            return 0;
        show(c, one, sizeof(one));
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
                              n ? ", " : "", one);
        if (n >= sizeof(list))
            n = sizeof(list) - 1;
    }
    {
        char val[256], msg[1024];

        show(v, val, sizeof(val));
        snprintf(msg, sizeof(msg), "Unsupported value: %s: supported "
                 "values: %s", val, list);
        status_add_cause(st, "FieldValueNotSupported", msg, path);
    }
    return 1;
}

static int validate_object(const cJSON *s, const cJSON *v,
                           const char *path, cJSON *st)
{
    const cJSON *props = kw(s, "properties"), *req = kw(s, "required");
    const cJSON *addl = kw(s, "additionalProperties"), *c;
    char sub[512];
    int errs = 0;

    cJSON_ArrayForEach(c, req) {
        if (!cJSON_IsString(c) ||
            cJSON_GetObjectItemCaseSensitive(v, c->valuestring))
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
                 c->valuestring);
        status_add_cause(st, "FieldValueRequired", "Required value", sub);
        errs++;
    }
    cJSON_ArrayForEach(c, v) {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, c->string);

        if (!*path && (strcmp(c->string, "metadata") == 0 ||
                       strcmp(c->string, "apiVersion") == 0 ||
                       strcmp(c->string, "kind") == 0))
            continue;
        if (!ps && cJSON_IsObject(addl))
            ps = addl;
        if (!ps)
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "",
                 c->string);
        errs += validate(ps, c, sub, st);
    }
    return errs;
}

static int validate(const cJSON *s, const cJSON *v, const char *path,
                    cJSON *st)
{
    const char *type = cJSON_GetStringValue(kw(s, "type"));
    const cJSON *c;
    char sub[512];
    int errs = 0, i = 0;

    if (!cJSON_IsObject(s))
        return 0;
    if (cJSON_IsNull(v)) {
        if (cJSON_IsTrue(kw(s, "nullable")) || !type)
            return 0;
        snprintf(sub, sizeof(sub), "must be of type %s", type);
        fail(st, "FieldValueTypeInvalid", path, v, sub);
        return 1;
    }
    if (cJSON_IsTrue(kw(s, "x-kubernetes-int-or-string"))) {
        if (cJSON_IsString(v) || cJSON_IsNumber(v))
            return 0;
        fail(st, "FieldValueTypeInvalid", path, v,
             "must be of type integer or string");
        return 1;
    }
    if (type && !type_ok(type, v)) {
        snprintf(sub, sizeof(sub), "must be of type %s: \"%s\"", type,
                 cJSON_IsString(v) ? "string" : cJSON_IsNumber(v)
                 ? "number" : cJSON_IsBool(v) ? "boolean"
                 : cJSON_IsArray(v) ? "array" : "object");
        fail(st, "FieldValueTypeInvalid", path, v, sub);
        return 1;
    }
    errs += check_enum(s, v, path, st);
    if (cJSON_IsNumber(v))
        errs += check_number(s, v, path, st);
    if (cJSON_IsString(v))
        errs += check_length(s, v, path, st, "Length",
                             (int)strlen(v->valuestring));
    if (cJSON_IsObject(v))
        errs += validate_object(s, v, path, st);
    if (cJSON_IsArray(v)) {
        errs += check_length(s, v, path, st, "Items",
                             cJSON_GetArraySize(v));
        cJSON_ArrayForEach(c, v) {
            snprintf(sub, sizeof(sub), "%s[%d]", path, i++);
            errs += validate(kw(s, "items"), c, sub, st);
        }
    }
    return errs;
}

int schema_validate(const cJSON *schema, const cJSON *obj, cJSON *st)
{
    return validate(schema, obj, "", st);
}
