/* Discovery (legacy and aggregated) and the minimal OpenAPI v3 documents. */
#include "store_int.h"

#include <stdio.h>
#include <string.h>

static const char *const verbs[] = {
    "create", "delete", "deletecollection", "get", "list", "patch",
    "update", "watch", NULL,
};

static cJSON *verb_list(int sub)
{
    cJSON *a = cJSON_CreateArray();

    if (sub) {
        cJSON_AddItemToArray(a, cJSON_CreateString("get"));
        cJSON_AddItemToArray(a, cJSON_CreateString("patch"));
        cJSON_AddItemToArray(a, cJSON_CreateString("update"));
        return a;
    }
    for (int i = 0; verbs[i]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(verbs[i]));
    return a;
}

static int in_gv(const res_type *r, const char *group, const char *version)
{
    return r->active && strcmp(r->group, group ? group : "") == 0 &&
           strcmp(r->version, version) == 0;
}

static void add_gv(cJSON *versions, const char *group, const char *version)
{
    cJSON *v = cJSON_CreateObject();
    char gv[256];

    snprintf(gv, sizeof(gv), "%s/%s", group, version);
    cJSON_AddStringToObject(v, "groupVersion", gv);
    cJSON_AddStringToObject(v, "version", version);
    cJSON_AddItemToArray(versions, v);
}

/* Whether group has a version listed before r in the type list. */
static int seen_version(store *st, const res_type *upto, const char *group,
                        const char *version)
{
    for (res_type *r = st->types; r && r != upto; r = r->next)
        if (r->active && strcmp(r->group, group) == 0 &&
            (!version || strcmp(r->version, version) == 0))
            return 1;
    return 0;
}

static cJSON *group_list(store *st)
{
    cJSON *doc = cJSON_CreateObject(), *groups;

    cJSON_AddStringToObject(doc, "kind", "APIGroupList");
    cJSON_AddStringToObject(doc, "apiVersion", "v1");
    groups = cJSON_AddArrayToObject(doc, "groups");
    for (res_type *r = st->types; r; r = r->next) {
        cJSON *g, *versions;

        if (!r->active || !*r->group || seen_version(st, r, r->group, NULL))
            continue;
        g = cJSON_CreateObject();
        cJSON_AddStringToObject(g, "name", r->group);
        versions = cJSON_AddArrayToObject(g, "versions");
        for (res_type *v = r; v; v = v->next)
            if (v->active && strcmp(v->group, r->group) == 0 &&
                !seen_version(st, v, v->group, v->version))
                add_gv(versions, r->group, v->version);
        cJSON_AddItemToObject(g, "preferredVersion", cJSON_Duplicate(
            cJSON_GetArrayItem(versions, 0), 1));
        cJSON_AddItemToArray(groups, g);
    }
    return doc;
}

static cJSON *resource_row(const res_type *r, int sub)
{
    cJSON *o = cJSON_CreateObject();
    char name[300];

    snprintf(name, sizeof(name), "%s%s", r->plural, sub ? "/status" : "");
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "singularName", sub ? "" : r->singular);
    cJSON_AddBoolToObject(o, "namespaced", r->namespaced);
    cJSON_AddStringToObject(o, "kind", r->kind);
    cJSON_AddItemToObject(o, "verbs", verb_list(sub));
    if (!sub && cJSON_GetArraySize(r->short_names) > 0)
        cJSON_AddItemToObject(o, "shortNames",
                              cJSON_Duplicate(r->short_names, 1));
    if (!sub && cJSON_GetArraySize(r->categories) > 0)
        cJSON_AddItemToObject(o, "categories",
                              cJSON_Duplicate(r->categories, 1));
    return o;
}

static cJSON *resource_list(store *st, const char *group,
                            const char *version)
{
    cJSON *doc, *list;
    char gv[256];
    int found = 0;

    for (res_type *r = st->types; r; r = r->next)
        found |= in_gv(r, group, version);
    if (!found)
        return NULL;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "kind", "APIResourceList");
    cJSON_AddStringToObject(doc, "apiVersion", "v1");
    snprintf(gv, sizeof(gv), "%s%s%s", group ? group : "",
             group && *group ? "/" : "", version);
    cJSON_AddStringToObject(doc, "groupVersion", gv);
    list = cJSON_AddArrayToObject(doc, "resources");
    for (res_type *r = st->types; r; r = r->next) {
        if (!in_gv(r, group, version))
            continue;
        cJSON_AddItemToArray(list, resource_row(r, 0));
        if (r->has_status)
            cJSON_AddItemToArray(list, resource_row(r, 1));
    }
    return doc;
}

static cJSON *response_kind(const res_type *r)
{
    cJSON *k = cJSON_CreateObject();

    cJSON_AddStringToObject(k, "group", r->group);
    cJSON_AddStringToObject(k, "version", r->version);
    cJSON_AddStringToObject(k, "kind", r->kind);
    return k;
}

static cJSON *agg_resource(const res_type *r)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "resource", r->plural);
    cJSON_AddItemToObject(o, "responseKind", response_kind(r));
    cJSON_AddStringToObject(o, "scope", r->namespaced ? "Namespaced"
                                                      : "Cluster");
    cJSON_AddStringToObject(o, "singularResource", r->singular);
    cJSON_AddItemToObject(o, "verbs", verb_list(0));
    if (cJSON_GetArraySize(r->short_names) > 0)
        cJSON_AddItemToObject(o, "shortNames",
                              cJSON_Duplicate(r->short_names, 1));
    if (cJSON_GetArraySize(r->categories) > 0)
        cJSON_AddItemToObject(o, "categories",
                              cJSON_Duplicate(r->categories, 1));
    if (r->has_status) {
        cJSON *subs = cJSON_AddArrayToObject(o, "subresources");
        cJSON *s = cJSON_CreateObject();

        cJSON_AddStringToObject(s, "subresource", "status");
        cJSON_AddItemToObject(s, "responseKind", response_kind(r));
        cJSON_AddItemToObject(s, "verbs", verb_list(1));
        cJSON_AddItemToArray(subs, s);
    }
    return o;
}

static cJSON *agg_group(store *st, const res_type *first)
{
    cJSON *g = cJSON_CreateObject(), *m, *versions;

    m = cJSON_AddObjectToObject(g, "metadata");
    cJSON_AddStringToObject(m, "name", first->group);
    cJSON_AddNullToObject(m, "creationTimestamp");
    versions = cJSON_AddArrayToObject(g, "versions");
    for (const res_type *v = first; v; v = v->next) {
        cJSON *ver, *list;

        if (!v->active || strcmp(v->group, first->group) != 0 ||
            seen_version(st, v, v->group, v->version))
            continue;
        ver = cJSON_CreateObject();
        cJSON_AddStringToObject(ver, "version", v->version);
        list = cJSON_AddArrayToObject(ver, "resources");
        for (const res_type *r = v; r; r = r->next)
            if (in_gv(r, v->group, v->version))
                cJSON_AddItemToArray(list, agg_resource(r));
        cJSON_AddStringToObject(ver, "freshness", "Current");
        cJSON_AddItemToArray(versions, ver);
    }
    return g;
}

static cJSON *aggregated(store *st, int core, const char *agg_version)
{
    cJSON *doc = cJSON_CreateObject(), *items;
    char av[64];

    snprintf(av, sizeof(av), "apidiscovery.k8s.io/%s", agg_version);
    cJSON_AddStringToObject(doc, "kind", "APIGroupDiscoveryList");
    cJSON_AddStringToObject(doc, "apiVersion", av);
    cJSON_AddObjectToObject(doc, "metadata");
    items = cJSON_AddArrayToObject(doc, "items");
    for (res_type *r = st->types; r; r = r->next) {
        if (!r->active || (core != !*r->group) ||
            seen_version(st, r, r->group, NULL))
            continue;
        cJSON_AddItemToArray(items, agg_group(st, r));
    }
    return doc;
}

static cJSON *openapi_root(store *st)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *paths = cJSON_AddObjectToObject(doc, "paths");
    char key[300], url[400];

    for (res_type *r = st->types; r; r = r->next) {
        cJSON *p;

        if (!r->active || seen_version(st, r, r->group, r->version))
            continue;
        if (*r->group)
            snprintf(key, sizeof(key), "apis/%s/%s", r->group, r->version);
        else
            snprintf(key, sizeof(key), "api/%s", r->version);
        snprintf(url, sizeof(url), "/openapi/v3/%s?hash=%llu", key,
                 (unsigned long long)st->rv);
        p = cJSON_AddObjectToObject(paths, key);
        cJSON_AddStringToObject(p, "serverRelativeURL", url);
    }
    return doc;
}

/* One PATCH operation carrying the fieldValidation parameter. */
static cJSON *patch_op(const res_type *r)
{
    cJSON *op = cJSON_CreateObject(), *params, *p, *resp;

    cJSON_AddItemToObject(op, "x-kubernetes-group-version-kind",
                          response_kind(r));
    params = cJSON_AddArrayToObject(op, "parameters");
    p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", "fieldValidation");
    cJSON_AddStringToObject(p, "in", "query");
    cJSON_AddObjectToObject(p, "schema");
    cJSON_AddStringToObject(cJSON_GetObjectItem(p, "schema"), "type",
                            "string");
    cJSON_AddItemToArray(params, p);
    resp = cJSON_AddObjectToObject(op, "responses");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(resp, "200"),
                            "description", "OK");
    return op;
}

static cJSON *openapi_gv(store *st, const char *group, const char *version)
{
    cJSON *doc, *info, *paths;
    int found = 0;

    for (res_type *r = st->types; r; r = r->next)
        found |= in_gv(r, group, version);
    if (!found)
        return NULL;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "openapi", "3.0.0");
    info = cJSON_AddObjectToObject(doc, "info");
    cJSON_AddStringToObject(info, "title", "Kubernetes");
    cJSON_AddStringToObject(info, "version", "v1.32.0");
    cJSON_AddObjectToObject(cJSON_AddObjectToObject(doc, "components"),
                            "schemas");
    paths = cJSON_AddObjectToObject(doc, "paths");
    for (res_type *r = st->types; r; r = r->next) {
        char path[512], prefix[300];

        if (!in_gv(r, group, version))
            continue;
        if (*r->group)
            snprintf(prefix, sizeof(prefix), "/apis/%s/%s", r->group,
                     r->version);
        else
            snprintf(prefix, sizeof(prefix), "/api/%s", r->version);
        snprintf(path, sizeof(path), "%s%s/%s/{name}", prefix,
                 r->namespaced ? "/namespaces/{namespace}" : "", r->plural);
        cJSON_AddItemToObject(cJSON_AddObjectToObject(paths, path), "patch",
                              patch_op(r));
    }
    return doc;
}

static cJSON *api_versions(void)
{
    cJSON *doc = cJSON_CreateObject(), *cidrs, *c;

    cJSON_AddStringToObject(doc, "kind", "APIVersions");
    cJSON_AddItemToObject(doc, "versions", cJSON_CreateStringArray(
                                               (const char *[]){"v1"}, 1));
    cidrs = cJSON_AddArrayToObject(doc, "serverAddressByClientCIDRs");
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "clientCIDR", "0.0.0.0/0");
    cJSON_AddStringToObject(c, "serverAddress", "127.0.0.1:6443");
    cJSON_AddItemToArray(cidrs, c);
    return doc;
}

cJSON *store_discovery(store *st, const char *which, const char *group,
                       const char *version, const char *agg_version)
{
    cJSON *doc = NULL;

    pthread_mutex_lock(&st->mu);
    if (strcmp(which, "api") == 0)
        doc = api_versions();
    else if (strcmp(which, "apis") == 0)
        doc = group_list(st);
    else if (strcmp(which, "resources") == 0)
        doc = resource_list(st, group, version);
    else if (strcmp(which, "aggregated-api") == 0)
        doc = aggregated(st, 1, agg_version ? agg_version : "v2");
    else if (strcmp(which, "aggregated-apis") == 0)
        doc = aggregated(st, 0, agg_version ? agg_version : "v2");
    else if (strcmp(which, "openapi") == 0)
        doc = openapi_root(st);
    else if (strcmp(which, "openapi-gv") == 0)
        doc = openapi_gv(st, group, version);
    pthread_mutex_unlock(&st->mu);
    return doc;
}
