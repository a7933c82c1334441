/* A small JSONPath evaluator for printer columns. */
#include "jpath.h"

#include <stdlib.h>
#include <string.h>

/* Copies up to len-1 characters of a name ending at one of stops. */
static const char *read_name(const char *p, const char *stops, char *buf,
                             size_t len)
{
    size_t n = 0;

    while (*p && !strchr(stops, *p)) {
        if (n + 1 < len)
            buf[n++] = *p;
        p++;
    }
    buf[n] = '\0';
    return p;
}

/* Evaluates "[?(@.a.b==\"v\")]" contents (after "?(") on list. */
static const cJSON *filter(const cJSON *list, const char **pp)
{
    char lhs[256], rhs[256];
    const char *p = *pp;
    const cJSON *e;
    char quote;

    if (*p != '@')
        return NULL;
    p = read_name(p + 1, "=!)", lhs, sizeof(lhs));
    if (strncmp(p, "==", 2) != 0)
        return NULL;
    p += 2;
    quote = *p;
    if (quote == '"' || quote == '\'') {
        char stop[2] = {quote, '\0'};

        p = read_name(p + 1, stop, rhs, sizeof(rhs));
        if (*p == quote)
            p++;
    } else {
        p = read_name(p, ")", rhs, sizeof(rhs));
    }
    if (strncmp(p, ")]", 2) != 0)
        return NULL;
    *pp = p + 2;
    cJSON_ArrayForEach(e, list) {
        const cJSON *v = jpath_get(e, lhs);

        if (cJSON_IsString(v) && strcmp(v->valuestring, rhs) == 0)
            return e;
        if (cJSON_IsNumber(v) && atof(rhs) == v->valuedouble)
            return e;
        if (cJSON_IsBool(v) &&
            strcmp(rhs, cJSON_IsTrue(v) ? "true" : "false") == 0)
            return e;
    }
    return NULL;
}

static const cJSON *bracket(const cJSON *cur, const char **pp)
{
    const char *p = *pp;
    char name[256];

    if (*p == '\'' || *p == '"') {
        char stop[2] = {*p, '\0'};

        p = read_name(p + 1, stop, name, sizeof(name));
        if (p[0] != stop[0] || p[1] != ']')
            return NULL;
        *pp = p + 2;
        return cJSON_GetObjectItemCaseSensitive(cur, name);
    }
    if (*p == '?' && p[1] == '(') {
        *pp = p + 2;
        return cJSON_IsArray(cur) ? filter(cur, pp) : NULL;
    }
    p = read_name(p, "]", name, sizeof(name));
    if (*p != ']' || !cJSON_IsArray(cur))
        return NULL;
    *pp = p + 1;
    {
        int i = atoi(name), n = cJSON_GetArraySize(cur);

        if (i < 0)
            i += n;
        return i >= 0 && i < n ? cJSON_GetArrayItem(cur, i) : NULL;
    }
}

const cJSON *jpath_get(const cJSON *obj, const char *path)
{
    const cJSON *cur = obj;
    const char *p = path;
    char name[256];

    if (*p == '{')
        p++;
    while (cur && *p && *p != '}') {
        if (*p == '.') {
            p++;
            if (*p == '[' || *p == '}' || !*p)
                continue;
            p = read_name(p, ".[}", name, sizeof(name));
            cur = cJSON_GetObjectItemCaseSensitive(cur, name);
        } else if (*p == '[') {
            p++;
            cur = bracket(cur, &p);
        } else {
            p = read_name(p, ".[}", name, sizeof(name));
            cur = cJSON_GetObjectItemCaseSensitive(cur, name);
        }
    }
    return cur;
}
