/*
 * CustomResourceDefinitions: creating one serves a new resource, deleting
 * one removes the resource and all its objects.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"
#include "util.h"

static const cJSON *at(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(at(o, k));
}

/* The version the store serves: the storage one, else the first served. */
static const cJSON *served_version(const cJSON *crd)
{
    const cJSON *v, *first = NULL;

    cJSON_ArrayForEach(v, at(at(crd, "spec"), "versions")) {
        if (!cJSON_IsTrue(at(v, "served")))
            continue;
        if (cJSON_IsTrue(at(v, "storage")))
            return v;
        if (!first)
            first = v;
    }
    return first;
}

int crd_validate(const cJSON *crd, cJSON **status)
{
    const cJSON *spec = at(crd, "spec"), *names = at(spec, "names");
    const char *group = str(spec, "group"), *plural = str(names, "plural");
    const char *name = str(at(crd, "metadata"), "name");
    const char *scope = str(spec, "scope");
    char want[512];
    cJSON *s;

    s = status_new(422, "Invalid", "%s", "");
    status_set_details(s, name, "apiextensions.k8s.io",
                       "CustomResourceDefinition");
    if (!group || !*group)
        status_add_cause(s, "FieldValueRequired", "Required value",
                         "spec.group");
    if (!plural || !*plural)
        status_add_cause(s, "FieldValueRequired", "Required value",
                         "spec.names.plural");
    if (!str(names, "kind"))
        status_add_cause(s, "FieldValueRequired", "Required value",
                         "spec.names.kind");
    if (!scope || (strcmp(scope, "Namespaced") != 0 &&
                   strcmp(scope, "Cluster") != 0))
        status_add_cause(s, "FieldValueNotSupported", "Unsupported value: "
                         "supported values: \"Cluster\", \"Namespaced\"",
                         "spec.scope");
    if (!served_version(crd))
        status_add_cause(s, "FieldValueInvalid", "Invalid value: must have "
                         "exactly one version marked as storage version",
                         "spec.versions");
    snprintf(want, sizeof(want), "%s.%s", plural ? plural : "",
             group ? group : "");
    if (group && plural && name && strcmp(name, want) != 0) {
        char msg[1024];

        snprintf(msg, sizeof(msg), "Invalid value: \"%s\": must be "
                 "spec.names.plural+\".\"+spec.group", name);
        status_add_cause(s, "FieldValueInvalid", msg, "metadata.name");
    }
    if (cJSON_GetArraySize(at(at(s, "details"), "causes")) == 0) {
        cJSON_Delete(s);
        return 0;
    }
    {
        const cJSON *c = cJSON_GetArrayItem(at(at(s, "details"), "causes"),
                                            0);
        char msg[1024];

        snprintf(msg, sizeof(msg), "CustomResourceDefinition.apiextensions."
                 "k8s.io \"%s\" is invalid: %s: %s", name ? name : "",
                 str(c, "field"), str(c, "message"));
        cJSON_ReplaceItemInObjectCaseSensitive(s, "message",
                                               cJSON_CreateString(msg));
    }
    *status = s;
    return -1;
}

static cJSON *condition(const char *type, const char *reason,
                        const char *msg, const char *ts)
{
    cJSON *c = cJSON_CreateObject();

    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "status", "True");
    cJSON_AddStringToObject(c, "lastTransitionTime", ts);
    cJSON_AddStringToObject(c, "reason", reason);
    cJSON_AddStringToObject(c, "message", msg);
    return c;
}

/* Fills status the way a real apiserver does once names are accepted. */
void crd_prepare(cJSON *crd)
{
    const cJSON *spec = at(crd, "spec"), *v = served_version(crd);
    cJSON *status = cJSON_CreateObject(), *conds, *stored;
    char ts[32];

    util_rfc3339(time(NULL), ts, sizeof(ts));
    conds = cJSON_AddArrayToObject(status, "conditions");
    cJSON_AddItemToArray(conds, condition("NamesAccepted", "NoConflicts",
                                          "no conflicts found", ts));
    cJSON_AddItemToArray(conds, condition("Established", "InitialNamesAccepted",
                                          "the initial names have been "
                                          "accepted", ts));
    cJSON_AddItemToObject(status, "acceptedNames",
                          cJSON_Duplicate(at(spec, "names"), 1));
    stored = cJSON_AddArrayToObject(status, "storedVersions");
    if (v && str(v, "name"))
        cJSON_AddItemToArray(stored, cJSON_CreateString(str(v, "name")));
    cJSON_DeleteItemFromObjectCaseSensitive(crd, "status");
    cJSON_AddItemToObject(crd, "status", status);
}

static void deactivate_others(store *st, const char *group,
                              const char *plural, const char *version)
{
    for (res_type *r = st->types; r; r = r->next)
        if (r->active && r->is_crd && strcmp(r->group, group) == 0 &&
            strcmp(r->plural, plural) == 0 &&
            strcmp(r->version, version) != 0)
            r->active = 0;
}

static cJSON *dup_or_empty(const cJSON *v)
{
    return cJSON_IsArray(v) ? cJSON_Duplicate(v, 1) : cJSON_CreateArray();
}

void crd_register_locked(store *st, const cJSON *crd)
{
    const cJSON *spec = at(crd, "spec"), *names = at(spec, "names");
    const cJSON *v = served_version(crd), *sf;
    const char *group = str(spec, "group"), *plural = str(names, "plural");
    const char *kind = str(names, "kind"), *vname = str(v, "name");
    res_type *r;

    if (!group || !plural || !kind || !vname)
        return;
    deactivate_others(st, group, plural, vname);
    r = res_add(st, group, vname, plural, kind);
    r->is_crd = 1;
    r->smp = 0;
    r->namespaced = strcmp(str(spec, "scope") ? str(spec, "scope") : "",
                           "Cluster") != 0;
    r->has_status = at(at(v, "subresources"), "status") != NULL;
    r->has_generation = 1;
    if (str(names, "singular")) {
        free(r->singular);
        r->singular = strdup(str(names, "singular"));
    }
    if (str(names, "listKind")) {
        free(r->list_kind);
        r->list_kind = strdup(str(names, "listKind"));
    }
    cJSON_Delete(r->short_names);
    r->short_names = dup_or_empty(at(names, "shortNames"));
    cJSON_Delete(r->categories);
    r->categories = dup_or_empty(at(names, "categories"));
    cJSON_Delete(r->printer_cols);
    r->printer_cols = cJSON_IsArray(at(v, "additionalPrinterColumns"))
        ? cJSON_Duplicate(at(v, "additionalPrinterColumns"), 1) : NULL;
    cJSON_Delete(r->schema);
    r->schema = cJSON_Duplicate(at(at(v, "schema"), "openAPIV3Schema"), 1);
    cJSON_Delete(r->selectable);
    r->selectable = cJSON_CreateArray();
    cJSON_ArrayForEach(sf, at(v, "selectableFields")) {
        if (str(sf, "jsonPath"))
            cJSON_AddItemToArray(r->selectable,
                                 cJSON_CreateString(str(sf, "jsonPath")));
    }
    store_log(st, 2, "serving %s/%s %s (kind %s)", group, vname, plural,
              kind);
}

void crd_unregister_locked(store *st, const cJSON *crd)
{
    const cJSON *spec = at(crd, "spec");
    const char *group = str(spec, "group");
    const char *plural = str(at(spec, "names"), "plural");

    if (!group || !plural)
        return;
    for (res_type *r = st->types; r; r = r->next) {
        if (!r->is_crd || strcmp(r->group, group) != 0 ||
            strcmp(r->plural, plural) != 0)
            continue;
        while (r->nobjs > 0)
            obj_remove_locked(st, r, r->nobjs - 1);
        r->active = 0;
    }
    store_log(st, 2, "stopped serving %s.%s", plural, group);
    pthread_cond_broadcast(&st->cv);
}
