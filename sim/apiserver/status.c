/* Builders for metav1.Status bodies. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

cJSON *status_new(int code, const char *reason, const char *fmt, ...)
{
    cJSON *st = cJSON_CreateObject();
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(st, "kind", "Status");
    cJSON_AddStringToObject(st, "apiVersion", "v1");
    cJSON_AddObjectToObject(st, "metadata");
    cJSON_AddStringToObject(st, "status", "Failure");
    cJSON_AddStringToObject(st, "message", msg);
    cJSON_AddStringToObject(st, "reason", reason);
    cJSON_AddObjectToObject(st, "details");
    cJSON_AddNumberToObject(st, "code", code);
    return st;
}

static void add_nonempty(cJSON *o, const char *k, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, k, v);
}

void status_set_details(cJSON *st, const char *name, const char *group,
                        const char *kind)
{
    cJSON *d = cJSON_GetObjectItemCaseSensitive(st, "details");

    if (!d)
        d = cJSON_AddObjectToObject(st, "details");
    add_nonempty(d, "name", name);
    add_nonempty(d, "group", group);
    add_nonempty(d, "kind", kind);
}

void status_add_cause(cJSON *st, const char *reason, const char *message,
                      const char *field)
{
    cJSON *d = cJSON_GetObjectItemCaseSensitive(st, "details");
    cJSON *causes, *c = cJSON_CreateObject();

    if (!d)
        d = cJSON_AddObjectToObject(st, "details");
    causes = cJSON_GetObjectItemCaseSensitive(d, "causes");
    if (!causes)
        causes = cJSON_AddArrayToObject(d, "causes");
    add_nonempty(c, "reason", reason);
    add_nonempty(c, "message", message);
    add_nonempty(c, "field", field);
    cJSON_AddItemToArray(causes, c);
}

cJSON *status_success(const char *name, const char *group,
                      const char *kind, const char *uid)
{
    cJSON *st = cJSON_CreateObject();
    cJSON *d;

    cJSON_AddStringToObject(st, "kind", "Status");
    cJSON_AddStringToObject(st, "apiVersion", "v1");
    cJSON_AddObjectToObject(st, "metadata");
    cJSON_AddStringToObject(st, "status", "Success");
    d = cJSON_AddObjectToObject(st, "details");
    add_nonempty(d, "name", name);
    add_nonempty(d, "group", group);
    add_nonempty(d, "kind", kind);
    add_nonempty(d, "uid", uid);
    return st;
}
