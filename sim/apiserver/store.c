/*
 * The object store: resource types, objects, and the CRUD operations
 * with the server-side rules of a real apiserver.
 */
#include "store_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "patch.h"
#include "schema.h"
#include "sel.h"
#include "status.h"
#include "table.h"
#include "util.h"

#define DEFAULT_HISTORY 10000

/* ---- small helpers ---- */

void store_log(store *st, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!st->cfg.log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    st->cfg.log(level, msg, st->cfg.log_ud);
}

static int fail(store_err *err, int code, const char *reason,
                const char *msg)
{
    if (err) {
        store_err_clear(err);
        err->code = code;
        err->status = status_new(code, reason, "%s", msg);
    }
    return code;
}

/* Fails with a Status carrying details about one object. */
static int fail_obj(store_err *err, int code, const char *reason,
                    const res_type *res, const char *name, const char *msg)
{
    fail(err, code, reason, msg);
    if (err)
        status_set_details(err->status, name, res->group, res->plural);
    return code;
}

static int fail_not_found(store_err *err, const res_type *res,
                          const char *name)
{
    char gr[256], msg[768];

    res_gr(res, gr, sizeof(gr));
    snprintf(msg, sizeof(msg), "%s \"%s\" not found", gr, name);
    return fail_obj(err, 404, "NotFound", res, name, msg);
}

static int fail_exists(store_err *err, const res_type *res,
                       const char *name)
{
    char gr[256], msg[768];

    res_gr(res, gr, sizeof(gr));
    snprintf(msg, sizeof(msg), "%s \"%s\" already exists", gr, name);
    return fail_obj(err, 409, "AlreadyExists", res, name, msg);
}

static int fail_conflict(store_err *err, const res_type *res,
                         const char *name)
{
    char gr[256], msg[768];

    res_gr(res, gr, sizeof(gr));
    snprintf(msg, sizeof(msg), "Operation cannot be fulfilled on %s "
             "\"%s\": the object has been modified; please apply your "
             "changes to the latest version and try again", gr, name);
    return fail_obj(err, 409, "Conflict", res, name, msg);
}

/* A 422 Status for res/name; causes are added by the caller. */
static cJSON *invalid_new(const res_type *res, const char *name)
{
    cJSON *s = status_new(422, "Invalid", "%s", "");

    status_set_details(s, name, res->group, res->kind);
    return s;
}

/* Composes the 422 message from the causes; 1 if there were causes. */
static int invalid_finish(const res_type *res, const char *name,
                          cJSON *s)
{
    const cJSON *causes = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(s, "details"), "causes");
    int n = cJSON_GetArraySize(causes);
    char msg[2048], list[1536] = "";
    size_t len = 0;
    const cJSON *c;

    if (n == 0)
        return 0;
    cJSON_ArrayForEach(c, causes) {
        const char *f = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(c, "field"));
        const char *m = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(c, "message"));

        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s: %s",
                                len ? ", " : "", f ? f : "", m ? m : "");
        if (len >= sizeof(list))
            len = sizeof(list) - 1;
    }
    snprintf(msg, sizeof(msg), "%s%s%s \"%s\" is invalid: %s%s%s",
             res->kind, *res->group ? "." : "", res->group,
             name ? name : "", n > 1 ? "[" : "", list, n > 1 ? "]" : "");
    cJSON_ReplaceItemInObjectCaseSensitive(s, "message",
                                           cJSON_CreateString(msg));
    return 1;
}

static int fail_invalid(store_err *err, cJSON *s)
{
    if (err) {
        store_err_clear(err);
        err->code = 422;
        err->status = s;
    } else {
        cJSON_Delete(s);
    }
    return 422;
}

static int fail_invalid1(store_err *err, const res_type *res,
                         const char *name, const char *reason,
                         const char *field, const char *msg)
{
    cJSON *s = invalid_new(res, name);

    status_add_cause(s, reason, msg, field);
    invalid_finish(res, name, s);
    return fail_invalid(err, s);
}

void store_err_clear(store_err *err)
{
    if (!err)
        return;
    cJSON_Delete(err->status);
    err->status = NULL;
    err->code = 0;
}

const char *store_err_message(const store_err *err)
{
    const char *m = err && err->status ? cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(err->status, "message")) : NULL;

    return m ? m : "";
}

static int empty(const char *s)
{
    return !s || !*s;
}

static cJSON *meta_of(cJSON *obj)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");

    if (!cJSON_IsObject(m)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "metadata");
        m = cJSON_AddObjectToObject(obj, "metadata");
    }
    return m;
}

const char *obj_str(const cJSON *obj, const char *meta_key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), meta_key));
}

static void set_str(cJSON *o, const char *key, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (v)
        cJSON_AddStringToObject(o, key, v);
}

static void set_item(cJSON *o, const char *key, cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (v)
        cJSON_AddItemToObject(o, key, v);
}

static void copy_item(cJSON *dst, const cJSON *src, const char *key)
{
    set_item(dst, key, cJSON_Duplicate(
        cJSON_GetObjectItemCaseSensitive(src, key), 1));
}

static void set_rv(cJSON *obj, uint64_t rv)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rv);
    set_str(meta_of(obj), "resourceVersion", buf);
}

static void now_str(char *buf, size_t len)
{
    util_rfc3339(time(NULL), buf, len);
}

int has_finalizer(const cJSON *obj, const char *f)
{
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "finalizers");
    const cJSON *c;

    cJSON_ArrayForEach(c, fs) {
        if (cJSON_IsString(c) && strcmp(c->valuestring, f) == 0)
            return 1;
    }
    return 0;
}

void remove_finalizer(cJSON *obj, const char *f)
{
    cJSON *m = meta_of(obj);
    cJSON *fs = cJSON_GetObjectItemCaseSensitive(m, "finalizers");

    for (int i = cJSON_GetArraySize(fs) - 1; i >= 0; i--) {
        const char *s = cJSON_GetStringValue(cJSON_GetArrayItem(fs, i));

        if (s && strcmp(s, f) == 0)
            cJSON_DeleteItemFromArray(fs, i);
    }
    if (fs && cJSON_GetArraySize(fs) == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(m, "finalizers");
}

static void add_finalizer(cJSON *obj, const char *f)
{
    cJSON *m = meta_of(obj);
    cJSON *fs = cJSON_GetObjectItemCaseSensitive(m, "finalizers");

    if (has_finalizer(obj, f))
        return;
    if (!cJSON_IsArray(fs)) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "finalizers");
        fs = cJSON_AddArrayToObject(m, "finalizers");
    }
    cJSON_AddItemToArray(fs, cJSON_CreateString(f));
}

/* ---- resource types ---- */

void res_gr(const res_type *res, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", res->plural, *res->group ? "." : "",
             res->group);
}

const char *res_api_version(const res_type *res, char *buf, size_t len)
{
    if (!*res->group)
        snprintf(buf, len, "%s", res->version);
    else
        snprintf(buf, len, "%s/%s", res->group, res->version);
    return buf;
}

res_type *res_lookup(store *st, const char *group, const char *version,
                     const char *plural)
{
    for (res_type *r = st->types; r; r = r->next) {
        if (r->active && strcmp(r->group, group ? group : "") == 0 &&
            strcmp(r->version, version) == 0 &&
            strcmp(r->plural, plural) == 0)
            return r;
    }
    return NULL;
}

/* Finds or makes the type (possibly inactive) and activates it. */
res_type *res_add(store *st, const char *group, const char *version,
                  const char *plural, const char *kind)
{
    res_type *r, **tail = &st->types;
    char buf[256];

    for (r = st->types; r; r = r->next) {
        if (strcmp(r->group, group) == 0 &&
            strcmp(r->version, version) == 0 &&
            strcmp(r->plural, plural) == 0)
            goto found;
        tail = &r->next;
    }
    r = calloc(1, sizeof(*r));
    r->group = strdup(group);
    r->version = strdup(version);
    r->plural = strdup(plural);
    *tail = r;
found:
    free(r->kind);
    free(r->list_kind);
    free(r->singular);
    r->kind = strdup(kind);
    snprintf(buf, sizeof(buf), "%sList", kind);
    r->list_kind = strdup(buf);
    for (size_t i = 0; kind[i] && i + 1 < sizeof(buf); i++)
        buf[i] = (char)tolower((unsigned char)kind[i]);
    buf[strlen(kind) < sizeof(buf) ? strlen(kind) : sizeof(buf) - 1] = 0;
    r->singular = strdup(buf);
    r->active = 1;
    return r;
}

static void res_free(res_type *r)
{
    for (int i = 0; i < r->nobjs; i++) {
        free(r->objs[i].ns);
        free(r->objs[i].name);
        cJSON_Delete(r->objs[i].json);
    }
    free(r->objs);
    cJSON_Delete(r->short_names);
    cJSON_Delete(r->categories);
    cJSON_Delete(r->printer_cols);
    cJSON_Delete(r->schema);
    cJSON_Delete(r->selectable);
    free(r->group);
    free(r->version);
    free(r->plural);
    free(r->singular);
    free(r->kind);
    free(r->list_kind);
    free(r);
}

static cJSON *str_list(const char *csv)
{
    cJSON *a = cJSON_CreateArray();
    char buf[256], *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", csv ? csv : "");
    for (tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        cJSON_AddItemToArray(a, cJSON_CreateString(tok));
    return a;
}

static const char *const event_fields[] = {
    "involvedObject.kind", "involvedObject.namespace",
    "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion",
    "involvedObject.fieldPath", "reason", "reportingComponent", "source",
    "type", NULL,
};
static const char *const pod_fields[] = {
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
    "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
    "status.podIP", "status.nominatedNodeName", NULL,
};
static const char *const secret_fields[] = {"type", NULL};
static const char *const ns_fields[] = {"status.phase", NULL};

typedef struct builtin {
    const char *group, *version, *plural, *kind, *shorts, *cats;
    int namespaced, has_status, has_generation, name_is_label;
    const char *const *fields;
} builtin;

static const builtin builtins[] = {
    {"", "v1", "namespaces", "Namespace", "ns", "", 0, 1, 0, 1, ns_fields},
    {"", "v1", "pods", "Pod", "po", "all", 1, 1, 0, 0, pod_fields},
    {"", "v1", "services", "Service", "svc", "all", 1, 1, 0, 1, NULL},
    {"", "v1", "configmaps", "ConfigMap", "cm", "", 1, 0, 0, 0, NULL},
    {"", "v1", "secrets", "Secret", "", "", 1, 0, 0, 0, secret_fields},
    {"", "v1", "events", "Event", "ev", "", 1, 0, 0, 0, event_fields},
    {"", "v1", "serviceaccounts", "ServiceAccount", "sa", "", 1, 0, 0, 0,
     NULL},
    {"apps", "v1", "deployments", "Deployment", "deploy", "all", 1, 1, 1, 0,
     NULL},
    {"coordination.k8s.io", "v1", "leases", "Lease", "", "", 1, 0, 0, 0,
     NULL},
    {"rbac.authorization.k8s.io", "v1", "roles", "Role", "", "", 1, 0, 0, 0,
     NULL},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", "",
     "", 1, 0, 0, 0, NULL},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "",
     "", 0, 0, 0, 0, NULL},
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings",
     "ClusterRoleBinding", "", "", 0, 0, 0, 0, NULL},
    {"apiextensions.k8s.io", "v1", "customresourcedefinitions",
     "CustomResourceDefinition", "crd,crds", "api-extensions", 0, 1, 1, 0,
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};

static void add_builtins(store *st)
{
    for (const builtin *b = builtins; b->plural; b++) {
        res_type *r = res_add(st, b->group, b->version, b->plural, b->kind);

        r->short_names = str_list(b->shorts);
        r->categories = str_list(b->cats);
        r->namespaced = b->namespaced;
        r->has_status = b->has_status;
        r->has_generation = b->has_generation;
        r->name_is_label = b->name_is_label;
        r->fields = b->fields;
        r->smp = 1;
    }
}

/* ---- objects ---- */

static int key_cmp(const char *ns1, const char *n1, const char *ns2,
                   const char *n2)
{
    int c = strcmp(ns1, ns2);

    return c ? c : strcmp(n1, n2);
}

/* Binary search; returns the index, or -(insertion point) - 1. */
static int obj_search(const res_type *res, const char *ns, const char *name)
{
    int lo = 0, hi = res->nobjs - 1;

    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = key_cmp(res->objs[mid].ns, res->objs[mid].name, ns, name);

        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

int obj_find(const res_type *res, const char *ns, const char *name)
{
    int i = obj_search(res, ns ? ns : "", name);

    return i >= 0 ? i : -1;
}

int obj_find_uid(store *st, const char *uid, res_type **res)
{
    for (res_type *r = st->types; r; r = r->next) {
        for (int i = 0; r->active && i < r->nobjs; i++) {
            const char *u = obj_str(r->objs[i].json, "uid");

            if (u && strcmp(u, uid) == 0) {
                *res = r;
                return i;
            }
        }
    }
    return -1;
}

static void obj_insert(res_type *res, const char *ns, const char *name,
                       cJSON *json)
{
    int at = -obj_search(res, ns, name) - 1;

    if (res->nobjs == res->cap) {
        res->cap = res->cap ? res->cap * 2 : 16;
        res->objs = realloc(res->objs, sizeof(*res->objs) *
                                           (size_t)res->cap);
    }
    memmove(&res->objs[at + 1], &res->objs[at],
            sizeof(*res->objs) * (size_t)(res->nobjs - at));
    res->objs[at].ns = strdup(ns);
    res->objs[at].name = strdup(name);
    res->objs[at].json = json;
    res->nobjs++;
}

static int is_crd_type(const res_type *res)
{
    return strcmp(res->plural, "customresourcedefinitions") == 0 &&
           strcmp(res->group, "apiextensions.k8s.io") == 0;
}

static int is_ns_type(const res_type *res)
{
    return strcmp(res->plural, "namespaces") == 0 && !*res->group;
}

/* Stores json (owned) as a new object and emits ADDED. */
static void obj_add_locked(store *st, res_type *res, cJSON *json)
{
    const char *ns = obj_str(json, "namespace");

    set_rv(json, ++st->rv);
    obj_insert(res, res->namespaced && ns ? ns : "", obj_str(json, "name"),
               json);
    log_append(st, EV_ADDED, res, cJSON_Duplicate(json, 1), NULL);
    if (is_crd_type(res))
        crd_register_locked(st, json);
}

void obj_remove_locked(store *st, res_type *res, int idx)
{
    store_obj o = res->objs[idx];

    memmove(&res->objs[idx], &res->objs[idx + 1],
            sizeof(*res->objs) * (size_t)(res->nobjs - idx - 1));
    res->nobjs--;
    set_rv(o.json, ++st->rv);
    st->removed = 1;
    if (is_crd_type(res))
        crd_unregister_locked(st, o.json);
    log_append(st, EV_DELETED, res, o.json, NULL);
    free(o.ns);
    free(o.name);
}

/*
 * Replaces object idx with json (owned) and emits MODIFIED; an object
 * being deleted whose last finalizer is gone is removed instead.
 */
void obj_put_locked(store *st, res_type *res, int idx, cJSON *json)
{
    cJSON *old = res->objs[idx].json;
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(meta_of(json),
                                                       "finalizers");

    res->objs[idx].json = json;
    if (obj_str(json, "deletionTimestamp") && !is_ns_type(res) &&
        cJSON_GetArraySize(fs) == 0) {
        cJSON_Delete(old);
        obj_remove_locked(st, res, idx);
        return;
    }
    set_rv(json, ++st->rv);
    log_append(st, EV_MODIFIED, res, cJSON_Duplicate(json, 1), old);
    if (is_crd_type(res))
        crd_register_locked(st, json);
}

/* ---- request resolution ---- */

/*
 * Resolves ref to an active type and checks the scope; fills err with a
 * 404 for unknown resources and mismatched scopes.
 */
static res_type *resolve(store *st, const store_ref *ref, int need_name,
                         store_err *err)
{
    res_type *res = res_lookup(st, ref->group, ref->version, ref->resource);

    if (!res || (!res->namespaced && !empty(ref->ns)) ||
        (need_name && empty(ref->name)) ||
        (res->namespaced && need_name && empty(ref->ns)) ||
        (!empty(ref->sub) && (strcmp(ref->sub, "status") != 0 ||
                              !res->has_status))) {
        fail(err, 404, "NotFound",
             "the server could not find the requested resource");
        return NULL;
    }
    return res;
}

static const char *ref_ns(const res_type *res, const store_ref *ref)
{
    return res->namespaced && ref->ns ? ref->ns : "";
}

/* ---- validation ---- */

static int dns_ok(const char *s, int label)
{
    size_t n = strlen(s);

    if (n == 0 || n > (label ? 63u : 253u))
        return 0;
    if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!(islower(c) || isdigit(c) || c == '-' || (c == '.' && !label)))
            return 0;
    }
    return 1;
}

static void check_name(const res_type *res, const char *name, cJSON *s)
{
    char msg[512];

    if (dns_ok(name, res->name_is_label))
        return;
    if (res->name_is_label)
        snprintf(msg, sizeof(msg), "Invalid value: \"%s\": a lowercase "
                 "RFC 1123 label must consist of lower case alphanumeric "
                 "characters or '-', and must start and end with an "
                 "alphanumeric character (e.g. 'my-name',  or '123-abc', "
                 "regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')", name);
    else
        snprintf(msg, sizeof(msg), "Invalid value: \"%s\": a lowercase "
                 "RFC 1123 subdomain must consist of lower case "
                 "alphanumeric characters, '-' or '.', and must start and "
                 "end with an alphanumeric character (e.g. 'example.com', "
                 "regex used for validation is '[a-z0-9]([-a-z0-9]*"
                 "[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')", name);
    status_add_cause(s, "FieldValueInvalid", msg, "metadata.name");
}

static void check_owner_refs(const cJSON *obj, cJSON *s)
{
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
        "ownerReferences");
    const cJSON *r;
    int controllers = 0;
    static const char *const need[] = {"apiVersion", "kind", "name", "uid",
                                       NULL};

    cJSON_ArrayForEach(r, refs) {
        for (int i = 0; need[i]; i++) {
            char field[64];

            if (!empty(cJSON_GetStringValue(
                    cJSON_GetObjectItemCaseSensitive(r, need[i]))))
                continue;
            snprintf(field, sizeof(field), "metadata.ownerReferences.%s",
                     need[i]);
            status_add_cause(s, "FieldValueInvalid", "Invalid value: \"\": "
                             "must not be empty", field);
        }
        controllers += cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(r, "controller"));
    }
    if (controllers > 1)
        status_add_cause(s, "FieldValueInvalid", "Only one reference can "
                         "have Controller set to true",
                         "metadata.ownerReferences");
}

/* Runs every check on obj; 0 if valid, else 422 in err. */
static int validate(store *st, const res_type *res, const cJSON *obj,
                    store_err *err)
{
    const char *name = obj_str(obj, "name");
    cJSON *s = invalid_new(res, name);
    cJSON *crd_status = NULL;

    check_name(res, name ? name : "", s);
    check_owner_refs(obj, s);
    if (res->schema)
        schema_validate(res->schema, obj, s);
    if (is_crd_type(res) && crd_validate(obj, &crd_status) != 0) {
        cJSON_Delete(s);
        return fail_invalid(err, crd_status);
    }
    if (invalid_finish(res, name, s))
        return fail_invalid(err, s);
    cJSON_Delete(s);
    return 0;
}

/* Checks kind and apiVersion in a body against the endpoint. */
static int check_type_meta(const res_type *res, const cJSON *body,
                           store_err *err)
{
    const char *kind = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(body, "kind"));
    const char *av = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(body, "apiVersion"));
    char want[256], msg[512];

    res_api_version(res, want, sizeof(want));
    if (av && *av && strcmp(av, want) != 0) {
        snprintf(msg, sizeof(msg), "the API version in the data (%s) does "
                 "not match the expected API version (%s)", av, want);
        return fail(err, 400, "BadRequest", msg);
    }
    if (kind && *kind && strcmp(kind, res->kind) != 0) {
        snprintf(msg, sizeof(msg), "the kind in the data (%s) does not "
                 "match the expected kind (%s)", kind, res->kind);
        return fail(err, 400, "BadRequest", msg);
    }
    return 0;
}

static void set_type_meta(const res_type *res, cJSON *obj)
{
    char av[256];

    res_api_version(res, av, sizeof(av));
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
    /* Keep kind and apiVersion first, as real responses do. */
    {
        cJSON *k = cJSON_CreateString(res->kind);
        cJSON *a = cJSON_CreateString(av);

        k->string = strdup("kind");
        a->string = strdup("apiVersion");
        util_insert(obj, 0, k);
        util_insert(obj, 0, a);
    }
}

/* Checks that the target namespace exists and is not terminating. */
static int check_namespace(store *st, const res_type *res, const char *ns,
                           const char *name, store_err *err)
{
    res_type *nsr = res_lookup(st, "", "v1", "namespaces");
    char msg[512];
    int i;

    if (!res->namespaced)
        return 0;
    i = obj_find(nsr, "", ns);
    if (i < 0) {
        fail_not_found(err, nsr, ns);
        return 404;
    }
    if (obj_str(nsr->objs[i].json, "deletionTimestamp")) {
        snprintf(msg, sizeof(msg), "%s \"%s\" is forbidden: unable to "
                 "create new content in namespace %s because it is being "
                 "terminated", res->plural, name ? name : "", ns);
        fail(err, 403, "Forbidden", msg);
        return 403;
    }
    return 0;
}

/* ---- create ---- */

static void random_suffix(char out[6])
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char r[5];

    util_random(r, sizeof(r));
    for (int i = 0; i < 5; i++)
        out[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
    out[5] = '\0';
}

/* Kind-specific defaults a real apiserver fills on create. */
static void defaults_on_create(const res_type *res, cJSON *obj)
{
    cJSON *spec, *status;

    if (is_ns_type(res)) {
        spec = cJSON_CreateObject();
        cJSON_AddItemToObject(spec, "finalizers", str_list("kubernetes"));
        set_item(obj, "spec", spec);
        status = cJSON_CreateObject();
        cJSON_AddStringToObject(status, "phase", "Active");
        set_item(obj, "status", status);
    } else if (is_crd_type(res)) {
        crd_prepare(obj);
    } else if (!res->is_crd && strcmp(res->kind, "Pod") == 0) {
        status = cJSON_CreateObject();
        cJSON_AddStringToObject(status, "phase", "Pending");
        set_item(obj, "status", status);
    } else if (!res->is_crd && strcmp(res->kind, "Secret") == 0 &&
               !cJSON_GetObjectItemCaseSensitive(obj, "type")) {
        cJSON_AddStringToObject(obj, "type", "Opaque");
    } else if (!res->is_crd && strcmp(res->kind, "Deployment") == 0) {
        spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
        if (cJSON_IsObject(spec) &&
            !cJSON_GetObjectItemCaseSensitive(spec, "replicas"))
            cJSON_AddNumberToObject(spec, "replicas", 1);
    }
}

/* Picks a free generated name; 0 or 409/422 in err. */
static int generate_name(const res_type *res, const char *ns, cJSON *meta,
                         store_err *err)
{
    const char *prefix = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(meta, "generateName"));
    char name[300], sfx[6];

    if (empty(prefix))
        return fail_invalid1(err, res, "", "FieldValueRequired",
                             "metadata.name", "Required value: name or "
                             "generateName is required");
    for (int tries = 0; tries < 8; tries++) {
        random_suffix(sfx);
        snprintf(name, sizeof(name), "%.*s%s",
                 (int)(res->name_is_label ? 58 : 248), prefix, sfx);
        if (obj_find(res, ns, name) < 0) {
            set_str(meta, "name", name);
            return 0;
        }
    }
    return fail_exists(err, res, name);
}

/* Builds the object to store from a create body; NULL with err set. */
static cJSON *prepare_create(store *st, res_type *res, const char *ns,
                             const cJSON *body, store_err *err)
{
    cJSON *obj = cJSON_Duplicate(body, 1);
    cJSON *meta = meta_of(obj);
    const char *bns = obj_str(obj, "namespace");
    char uid[37], ts[32];

    if (res->namespaced && !empty(bns) && strcmp(bns, ns) != 0) {
        fail(err, 400, "BadRequest", "the namespace of the provided object "
             "does not match the namespace sent on the request");
        goto fail;
    }
    if (!empty(obj_str(obj, "resourceVersion"))) {
        fail(err, 500, "InternalError", "resourceVersion should not be set "
             "on objects to be created");
        goto fail;
    }
    if (res->namespaced)
        set_str(meta, "namespace", ns);
    else
        set_str(meta, "namespace", NULL);
    if (empty(obj_str(obj, "name")) &&
        generate_name(res, ns, meta, err) != 0)
        goto fail;
    set_type_meta(res, obj);
    util_uuid(uid);
    now_str(ts, sizeof(ts));
    set_str(meta, "uid", uid);
    set_str(meta, "creationTimestamp", ts);
    set_str(meta, "deletionTimestamp", NULL);
    set_str(meta, "deletionGracePeriodSeconds", NULL);
    set_str(meta, "managedFields", NULL);
    if (res->has_generation || res->is_crd)
        set_item(meta, "generation", cJSON_CreateNumber(1));
    if (res->has_status && res->is_crd)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    defaults_on_create(res, obj);
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

static int create_locked(store *st, res_type *res, const char *ns,
                         const store_opts *o, const cJSON *body, cJSON **out,
                         store_err *err)
{
    cJSON *obj;
    int rc;

    if (!cJSON_IsObject(body))
        return fail(err, 400, "BadRequest", "the request body must be a "
                    "JSON object");
    rc = check_type_meta(res, body, err);
    if (rc)
        return rc;
    rc = check_namespace(st, res, ns, obj_str(body, "name"), err);
    if (rc)
        return rc;
    obj = prepare_create(st, res, ns, body, err);
    if (!obj)
        return err ? err->code : 400;
    rc = validate(st, res, obj, err);
    if (rc)
        goto fail;
    if (obj_find(res, ns, obj_str(obj, "name")) >= 0) {
        rc = fail_exists(err, res, obj_str(obj, "name"));
        goto fail;
    }
    if (o && o->dry_run) {
        *out = obj;
        return 201;
    }
    obj_add_locked(st, res, obj);
    *out = cJSON_Duplicate(obj, 1);
    return 201;
fail:
    cJSON_Delete(obj);
    return rc;
}

int store_create(store *st, const store_ref *ref, const store_opts *o,
                 const cJSON *body, cJSON **out, store_err *err)
{
    res_type *res;
    int rc;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    res = resolve(st, ref, 0, err);
    if (!res || !empty(ref->name) || !empty(ref->sub)) {
        rc = res ? fail(err, 405, "MethodNotAllowed", "the server does not "
                        "allow this method on the requested resource")
                 : 404;
        goto out;
    }
    if (res->namespaced && empty(ref->ns)) {
        rc = fail(err, 404, "NotFound",
                  "the server could not find the requested resource");
        goto out;
    }
    rc = create_locked(st, res, ref_ns(res, ref), o, body, out, err);
    if (rc == 201 && !(o && o->dry_run))
        gc_check_new_locked(st, res, ref_ns(res, ref),
                            obj_str(*out, "name"));
    gc_run_locked(st);
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- get and list ---- */

int store_get(store *st, const store_ref *ref, const store_opts *o,
              cJSON **out, store_err *err)
{
    res_type *res;
    int i, rc = 200;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    res = resolve(st, ref, 1, err);
    if (!res) {
        rc = 404;
        goto out;
    }
    i = obj_find(res, ref_ns(res, ref), ref->name);
    if (i < 0)
        rc = fail_not_found(err, res, ref->name);
    else
        *out = cJSON_Duplicate(res->objs[i].json, 1);
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

typedef struct field_check {
    const res_type *res;
    const char *bad;
} field_check;

static int on_field(const char *field, void *ud)
{
    field_check *fc = ud;
    const cJSON *s;

    if (strcmp(field, "metadata.name") == 0 ||
        strcmp(field, "metadata.namespace") == 0)
        return 0;
    for (int i = 0; fc->res->fields && fc->res->fields[i]; i++)
        if (strcmp(fc->res->fields[i], field) == 0)
            return 0;
    cJSON_ArrayForEach(s, fc->res->selectable) {
        const char *p = cJSON_GetStringValue(s);

        if (p && strcmp(p + (*p == '.'), field) == 0)
            return 0;
    }
    fc->bad = field;
    return 1;
}

/*
 * Parses both selectors of o for res. Returns 0, or 400 with err set
 * (malformed text or an unsupported field).
 */
static int parse_selectors(const res_type *res, const store_opts *o,
                           sel **ls, sel **fs, store_err *err)
{
    char msg[512];
    field_check fc = {res, NULL};

    *ls = sel_parse_labels(o ? o->label_selector : NULL, msg, sizeof(msg));
    if (!*ls)
        return fail(err, 400, "BadRequest", msg);
    *fs = sel_parse_fields(o ? o->field_selector : NULL, msg, sizeof(msg));
    if (!*fs)
        goto bad;
    if (sel_fields(*fs, on_field, &fc)) {
        snprintf(msg, sizeof(msg), "field label not supported: %s", fc.bad);
        sel_free(*fs);
        goto bad;
    }
    return 0;
bad:
    sel_free(*ls);
    *ls = *fs = NULL;
    return fail(err, 400, "BadRequest", msg);
}

int sel_matches_obj(const sel *ls, const sel *fs, const cJSON *obj)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");

    return sel_match_labels(ls, labels) && sel_match_fields(fs, obj);
}

/* Continue tokens: base64 of "<rv>\n<ns>\n<name>". */
static char *make_continue(uint64_t rv, const store_obj *last)
{
    char buf[600];

    snprintf(buf, sizeof(buf), "%llu\n%s\n%s", (unsigned long long)rv,
             last->ns, last->name);
    return util_b64_encode(buf, strlen(buf));
}

static int parse_continue(const char *tok, char *ns, char *name, size_t len)
{
    size_t n;
    unsigned char *raw = util_b64_decode(tok, &n);
    char *a, *b;
    int rc = -1;

    if (!raw)
        return -1;
    a = strchr((char *)raw, '\n');
    b = a ? strchr(a + 1, '\n') : NULL;
    if (b) {
        *b = '\0';
        snprintf(ns, len, "%s", a + 1);
        snprintf(name, len, "%s", b + 1);
        rc = 0;
    }
    free(raw);
    return rc;
}

/* Collects matching objects of res into a fresh array, in key order. */
static int collect(const res_type *res, uint64_t rv, const char *ns,
                   const sel *ls, const sel *fs, const store_opts *o,
                   cJSON *items, char **cont, long *remaining,
                   store_err *err)
{
    char cns[300] = "", cname[300] = "";
    int start = 0, count = 0, last = -1;

    if (o && !empty(o->cont)) {
        if (parse_continue(o->cont, cns, cname, sizeof(cns)) < 0)
            return fail(err, 400, "BadRequest", "continue key is not "
                        "valid: illegal base64 data");
        start = obj_search(res, cns, cname);
        start = start >= 0 ? start + 1 : -start - 1;
    }
    *remaining = 0;
    for (int i = start; i < res->nobjs; i++) {
        const store_obj *ob = &res->objs[i];

        if (!empty(ns) && strcmp(ob->ns, ns) != 0)
            continue;
        if (!sel_matches_obj(ls, fs, ob->json))
            continue;
        if (o && o->limit > 0 && count >= o->limit) {
            (*remaining)++;
            continue;
        }
        cJSON_AddItemToArray(items, cJSON_Duplicate(ob->json, 1));
        count++;
        last = i;
    }
    if (*remaining > 0 && last >= 0)
        *cont = make_continue(rv, &res->objs[last]);
    return 0;
}

static cJSON *list_doc(const res_type *res, uint64_t rv, const char *cont,
                       long remaining, cJSON *items)
{
    cJSON *l = cJSON_CreateObject(), *m;
    char buf[256];

    cJSON_AddStringToObject(l, "kind", res->list_kind);
    cJSON_AddStringToObject(l, "apiVersion",
                            res_api_version(res, buf, sizeof(buf)));
    m = cJSON_AddObjectToObject(l, "metadata");
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rv);
    cJSON_AddStringToObject(m, "resourceVersion", buf);
    if (cont) {
        cJSON_AddStringToObject(m, "continue", cont);
        cJSON_AddNumberToObject(m, "remainingItemCount", (double)remaining);
    }
    cJSON_AddItemToObject(l, "items", items);
    return l;
}

int store_list(store *st, const store_ref *ref, const store_opts *o,
               cJSON **out, store_err *err)
{
    res_type *res;
    sel *ls = NULL, *fs = NULL;
    cJSON *items;
    char *cont = NULL;
    long remaining = 0;
    int rc;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    res = resolve(st, ref, 0, err);
    rc = res ? parse_selectors(res, o, &ls, &fs, err) : 404;
    if (rc)
        goto out;
    items = cJSON_CreateArray();
    rc = collect(res, st->rv, ref_ns(res, ref), ls, fs, o, items, &cont,
                 &remaining, err);
    if (rc) {
        cJSON_Delete(items);
        goto out;
    }
    *out = list_doc(res, st->rv, cont, remaining, items);
    rc = 200;
out:
    pthread_mutex_unlock(&st->mu);
    sel_free(ls);
    sel_free(fs);
    free(cont);
    return rc;
}

cJSON *store_table(store *st, const store_ref *ref, const cJSON *items,
                   int headers, int include, const char *rv,
                   const char *cont, long remaining)
{
    res_type *res;
    table_spec spec;
    cJSON *t = NULL;

    pthread_mutex_lock(&st->mu);
    res = res_lookup(st, ref->group, ref->version, ref->resource);
    if (res) {
        spec.kind = res->kind;
        spec.printer_cols = res->is_crd ? (res->printer_cols
                                               ? res->printer_cols
                                               : cJSON_CreateArray())
                                        : NULL;
        spec.headers = headers;
        spec.include = (table_include)include;
        spec.now = time(NULL);
        t = table_build(&spec, items, rv, cont, remaining);
        if (res->is_crd && !res->printer_cols)
            cJSON_Delete((cJSON *)spec.printer_cols);
    }
    pthread_mutex_unlock(&st->mu);
    return t;
}

/* ---- update ---- */

/* Whether anything outside metadata (and status, if skipped) differs. */
static int content_changed(const cJSON *a, const cJSON *b, int skip_status)
{
    cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
    static const char *const skip[] = {"metadata", "kind", "apiVersion",
                                       NULL};
    int changed;

    for (int i = 0; skip[i]; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(x, skip[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(y, skip[i]);
    }
    if (skip_status) {
        cJSON_DeleteItemFromObjectCaseSensitive(x, "status");
        cJSON_DeleteItemFromObjectCaseSensitive(y, "status");
    }
    changed = !cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return changed;
}

/* 422 if new adds a finalizer while the object is being deleted. */
static int check_new_finalizers(const res_type *res, const cJSON *old,
                                const cJSON *nw, store_err *err)
{
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(nw, "metadata"), "finalizers");
    const cJSON *f;

    if (!obj_str(old, "deletionTimestamp"))
        return 0;
    cJSON_ArrayForEach(f, fs) {
        if (cJSON_IsString(f) && !has_finalizer(old, f->valuestring))
            return fail_invalid1(err, res, obj_str(old, "name"),
                                 "FieldValueForbidden",
                                 "metadata.finalizers", "Forbidden: no new "
                                 "finalizers can be added if the object is "
                                 "being deleted");
    }
    return 0;
}

/*
 * Builds the object a PUT of body would store over old: server-owned
 * fields are kept, and status or spec are taken from the side the
 * endpoint owns.
 */
static cJSON *merge_update(const res_type *res, const cJSON *old,
                           const cJSON *body, int status_sub)
{
    cJSON *nw, *meta;
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(old, "metadata");
    static const char *const keep[] = {
        "uid", "creationTimestamp", "deletionTimestamp",
        "deletionGracePeriodSeconds", "generation", "resourceVersion",
        "namespace", "name", NULL,
    };

    if (status_sub) {
        nw = cJSON_Duplicate(old, 1);
        copy_item(nw, body, "status");
        return nw;
    }
    nw = cJSON_Duplicate(body, 1);
    meta = meta_of(nw);
    for (int i = 0; keep[i]; i++)
        copy_item(meta, om, keep[i]);
    set_str(meta, "managedFields", NULL);
    if (res->has_status)
        copy_item(nw, old, "status");
    if (is_ns_type(res))
        copy_item(nw, old, "spec");
    set_type_meta(res, nw);
    return nw;
}

/* The common update path for PUT and PATCH; body is borrowed. */
static int update_locked(store *st, res_type *res, int idx,
                         const store_ref *ref, const store_opts *o,
                         const cJSON *body, int require_rv, cJSON **out,
                         store_err *err)
{
    const cJSON *old = res->objs[idx].json;
    const char *brv = obj_str(body, "resourceVersion");
    const char *buid = obj_str(body, "uid");
    int status_sub = !empty(ref->sub);
    cJSON *nw;
    int rc;

    if (!empty(brv) && strcmp(brv, obj_str(old, "resourceVersion")) != 0)
        return fail_conflict(err, res, ref->name);
    if (empty(brv) && require_rv && res->is_crd)
        return fail_invalid1(err, res, ref->name, "FieldValueInvalid",
                             "metadata.resourceVersion", "Invalid value: "
                             "0x0: must be specified for an update");
    if (!empty(buid) && strcmp(buid, obj_str(old, "uid")) != 0) {
        char msg[300];

        snprintf(msg, sizeof(msg), "Precondition failed: UID in "
                 "precondition: %s, UID in object meta: %s",
                 obj_str(old, "uid"), buid);
        fail(err, 409, "Conflict", msg);
        return 409;
    }
    nw = merge_update(res, old, body, status_sub);
    rc = check_new_finalizers(res, old, nw, err);
    if (!rc)
        rc = validate(st, res, nw, err);
    if (rc) {
        cJSON_Delete(nw);
        return rc;
    }
    if ((res->has_generation || res->is_crd) && !status_sub &&
        content_changed(old, nw, res->has_status)) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(old, "metadata"),
            "generation");

        set_item(meta_of(nw), "generation",
                 cJSON_CreateNumber(cJSON_IsNumber(g) ? g->valuedouble + 1
                                                      : 1));
    }
    if (cJSON_Compare(nw, old, 1) || (o && o->dry_run)) {
        *out = nw;
        return 200;
    }
    obj_put_locked(st, res, idx, nw);
    *out = cJSON_Duplicate(nw, 1);
    return 200;
}

/* Checks name and namespace of a PUT or PATCH result against the URL. */
static int check_identity(const res_type *res, const store_ref *ref,
                          const cJSON *body, store_err *err)
{
    const char *name = obj_str(body, "name");
    const char *ns = obj_str(body, "namespace");

    if (!empty(name) && strcmp(name, ref->name) != 0)
        return fail(err, 400, "BadRequest", "the name of the object does "
                    "not match the name on the URL");
    if (res->namespaced && !empty(ns) && strcmp(ns, ref->ns) != 0)
        return fail(err, 400, "BadRequest", "the namespace of the provided "
                    "object does not match the namespace sent on the "
                    "request");
    return check_type_meta(res, body, err);
}

int store_update(store *st, const store_ref *ref, const store_opts *o,
                 const cJSON *body, cJSON **out, store_err *err)
{
    res_type *res;
    int i, rc;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    res = resolve(st, ref, 1, err);
    if (!res) {
        rc = 404;
        goto out;
    }
    if (!cJSON_IsObject(body)) {
        rc = fail(err, 400, "BadRequest", "the request body must be a JSON "
                  "object");
        goto out;
    }
    rc = check_identity(res, ref, body, err);
    if (rc)
        goto out;
    i = obj_find(res, ref_ns(res, ref), ref->name);
    if (i < 0) {
        rc = fail_not_found(err, res, ref->name);
        goto out;
    }
    rc = update_locked(st, res, i, ref, o, body, 1, out, err);
    gc_run_locked(st);
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- patch ---- */

static cJSON *apply_patch(const res_type *res, const cJSON *live,
                          store_patch_type type, const cJSON *patch,
                          store_err *err)
{
    char msg[512];
    cJSON *out = NULL;

    switch (type) {
    case STORE_PATCH_MERGE:
        out = patch_merge(live, patch, msg, sizeof(msg));
        break;
    case STORE_PATCH_JSON:
        out = patch_json(live, patch, msg, sizeof(msg));
        break;
    case STORE_PATCH_STRATEGIC:
        out = patch_strategic(live, patch, msg, sizeof(msg));
        break;
    case STORE_PATCH_APPLY:
        if (!cJSON_IsObject(patch)) {
            snprintf(msg, sizeof(msg), "apply patch must be an object");
            break;
        }
        out = patch_apply(live, patch);
        break;
    }
    if (!out)
        fail(err, type == STORE_PATCH_JSON ? 422 : 400,
             type == STORE_PATCH_JSON ? "Invalid" : "BadRequest", msg);
    return out;
}

static int patch_locked(store *st, res_type *res, const store_ref *ref,
                        const store_opts *o, store_patch_type type,
                        const cJSON *patch, cJSON **out, store_err *err)
{
    const char *ns = ref_ns(res, ref);
    int i = obj_find(res, ns, ref->name), rc;
    const cJSON *pmeta = cJSON_GetObjectItemCaseSensitive(patch, "metadata");
    cJSON *nw;

    if (type == STORE_PATCH_STRATEGIC && res->is_crd)
        return fail(err, 415, "UnsupportedMediaType", "the body of the "
                    "request was in an unknown format - accepted media "
                    "types include: application/json-patch+json, "
                    "application/merge-patch+json, "
                    "application/apply-patch+yaml");
    if (type == STORE_PATCH_APPLY && (!o || empty(o->field_manager)))
        return fail(err, 400, "BadRequest", "PATCH, application/apply-patch+"
                    "yaml requires fieldManager parameter");
    if (i < 0 && type == STORE_PATCH_APPLY && empty(ref->sub)) {
        nw = cJSON_Duplicate(patch, 1);
        set_str(meta_of(nw), "name", ref->name);
        rc = check_identity(res, ref, patch, err);
        if (!rc)
            rc = create_locked(st, res, ns, o, nw, out, err);
        cJSON_Delete(nw);
        return rc;
    }
    if (i < 0)
        return fail_not_found(err, res, ref->name);
    nw = apply_patch(res, res->objs[i].json, type, patch, err);
    if (!nw)
        return err ? err->code : 400;
    /* Only a resourceVersion sent in the patch is a precondition. */
    if (!cJSON_GetObjectItemCaseSensitive(pmeta, "resourceVersion") ||
        type == STORE_PATCH_JSON)
        set_str(meta_of(nw), "resourceVersion",
                obj_str(res->objs[i].json, "resourceVersion"));
    rc = check_identity(res, ref, nw, err);
    if (!rc)
        rc = update_locked(st, res, i, ref, o, nw, 0, out, err);
    cJSON_Delete(nw);
    return rc;
}

int store_patch(store *st, const store_ref *ref, const store_opts *o,
                store_patch_type type, const cJSON *patch, cJSON **out,
                store_err *err)
{
    res_type *res;
    int rc;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    res = resolve(st, ref, 1, err);
    rc = res ? patch_locked(st, res, ref, o, type, patch, out, err) : 404;
    gc_run_locked(st);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- delete ---- */

/*
 * Deletes object idx: removes it at once, or marks it with a
 * deletionTimestamp when finalizers (existing, or the policy's
 * foregroundDeletion/orphan) must run first. *out gets the last state.
 */
int delete_locked(store *st, res_type *res, int idx, const char *policy,
                  int dry_run, cJSON **out)
{
    cJSON *cur = res->objs[idx].json, *nw;
    const char *add = NULL;
    char ts[32];

    if (policy && strcmp(policy, "Foreground") == 0)
        add = "foregroundDeletion";
    else if (policy && strcmp(policy, "Orphan") == 0)
        add = "orphan";
    if (obj_str(cur, "deletionTimestamp")) {
        if (!add || has_finalizer(cur, add) || dry_run) {
            *out = cJSON_Duplicate(cur, 1);
            return 200;
        }
        nw = cJSON_Duplicate(cur, 1);
        add_finalizer(nw, add);
        obj_put_locked(st, res, idx, nw);
        *out = cJSON_Duplicate(nw, 1);
        return 200;
    }
    if (!add && !is_ns_type(res) &&
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cur, "metadata"),
            "finalizers")) == 0) {
        *out = cJSON_Duplicate(cur, 1);
        if (!dry_run)
            obj_remove_locked(st, res, idx);
        return 200;
    }
    nw = cJSON_Duplicate(cur, 1);
    now_str(ts, sizeof(ts));
    set_str(meta_of(nw), "deletionTimestamp", ts);
    set_item(meta_of(nw), "deletionGracePeriodSeconds",
             cJSON_CreateNumber(0));
    if (add)
        add_finalizer(nw, add);
    if (is_ns_type(res)) {
        cJSON *status = cJSON_GetObjectItemCaseSensitive(nw, "status");

        if (!cJSON_IsObject(status))
            status = cJSON_AddObjectToObject(nw, "status");
        set_str(status, "phase", "Terminating");
    }
    if (dry_run) {
        *out = nw;
        return 200;
    }
    obj_put_locked(st, res, idx, nw);
    *out = cJSON_Duplicate(nw, 1);
    return 200;
}

static const char *delete_policy(const store_opts *o, const cJSON *body)
{
    const char *p = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(body, "propagationPolicy"));
    const cJSON *orphan = cJSON_GetObjectItemCaseSensitive(
        body, "orphanDependents");

    if (o && !empty(o->propagation))
        return o->propagation;
    if (p)
        return p;
    if (cJSON_IsTrue(orphan))
        return "Orphan";
    return "Background";
}

static int body_dry_run(const store_opts *o, const cJSON *body)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "dryRun");

    return (o && o->dry_run) || cJSON_GetArraySize(d) > 0;
}

int store_delete(store *st, const store_ref *ref, const store_opts *o,
                 const cJSON *opts_body, cJSON **out, store_err *err)
{
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(opts_body,
                                                        "preconditions");
    const char *puid = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(pre, "uid"));
    const char *prv = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(pre, "resourceVersion"));
    const char *policy = delete_policy(o, opts_body);
    res_type *res;
    int i, rc;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    res = resolve(st, ref, 1, err);
    if (!res || !empty(ref->sub)) {
        rc = res ? fail(err, 405, "MethodNotAllowed", "the server does not "
                        "allow this method on the requested resource")
                 : 404;
        goto out;
    }
    if (strcmp(policy, "Background") != 0 &&
        strcmp(policy, "Foreground") != 0 && strcmp(policy, "Orphan") != 0) {
        rc = fail(err, 400, "BadRequest", "propagationPolicy must be one of "
                  "Background, Foreground or Orphan");
        goto out;
    }
    i = obj_find(res, ref_ns(res, ref), ref->name);
    if (i < 0) {
        rc = fail_not_found(err, res, ref->name);
        goto out;
    }
    if ((puid && strcmp(puid, obj_str(res->objs[i].json, "uid")) != 0) ||
        (prv && strcmp(prv, obj_str(res->objs[i].json,
                                    "resourceVersion")) != 0)) {
        rc = fail_conflict(err, res, ref->name);
        goto out;
    }
    rc = delete_locked(st, res, i, policy, body_dry_run(o, opts_body), out);
    gc_run_locked(st);
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int store_delete_collection(store *st, const store_ref *ref,
                            const store_opts *o, const cJSON *opts_body,
                            cJSON **out, store_err *err)
{
    const char *policy = delete_policy(o, opts_body);
    int dry = body_dry_run(o, opts_body);
    res_type *res;
    sel *ls = NULL, *fs = NULL;
    cJSON *items;
    int rc;

    *out = NULL;
    pthread_mutex_lock(&st->mu);
    res = resolve(st, ref, 0, err);
    rc = res ? parse_selectors(res, o, &ls, &fs, err) : 404;
    if (rc)
        goto out;
    items = cJSON_CreateArray();
    for (int i = 0; i < res->nobjs;) {
        store_obj *ob = &res->objs[i];
        cJSON *gone = NULL;
        int before = res->nobjs;

        if ((!empty(ref->ns) && strcmp(ob->ns, ref->ns) != 0) ||
            !sel_matches_obj(ls, fs, ob->json)) {
            i++;
            continue;
        }
        delete_locked(st, res, i, policy, dry, &gone);
        cJSON_AddItemToArray(items, gone);
        if (res->nobjs == before)
            i++;
    }
    *out = list_doc(res, st->rv, NULL, 0, items);
    rc = 200;
    gc_run_locked(st);
out:
    pthread_mutex_unlock(&st->mu);
    sel_free(ls);
    sel_free(fs);
    return rc;
}

/* ---- life cycle ---- */

static void add_namespace(store *st, const char *name)
{
    res_type *nsr = res_lookup(st, "", "v1", "namespaces");
    cJSON *body = cJSON_CreateObject(), *out = NULL;

    cJSON_AddStringToObject(meta_of(body), "name", name);
    create_locked(st, nsr, "", NULL, body, &out, NULL);
    cJSON_Delete(body);
    cJSON_Delete(out);
}

store *store_new(const store_config *cfg)
{
    store *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    if (cfg)
        st->cfg = *cfg;
    if (st->cfg.history <= 0)
        st->cfg.history = DEFAULT_HISTORY;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->log_cap = st->cfg.history;
    st->log = calloc((size_t)st->log_cap, sizeof(*st->log));
    add_builtins(st);
    pthread_mutex_lock(&st->mu);
    add_namespace(st, "default");
    add_namespace(st, "kube-system");
    add_namespace(st, "kube-public");
    add_namespace(st, "kube-node-lease");
    pthread_mutex_unlock(&st->mu);
    return st;
}

void store_shutdown(store *st)
{
    pthread_mutex_lock(&st->mu);
    st->closing = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

void store_free(store *st)
{
    res_type *r, *next;

    if (!st)
        return;
    log_free_all(st);
    free(st->log);
    for (r = st->types; r; r = next) {
        next = r->next;
        res_free(r);
    }
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

uint64_t store_rv(store *st)
{
    uint64_t rv;

    pthread_mutex_lock(&st->mu);
    rv = st->rv;
    pthread_mutex_unlock(&st->mu);
    return rv;
}

int store_has_resource(store *st, const store_ref *ref)
{
    int have;

    pthread_mutex_lock(&st->mu);
    have = res_lookup(st, ref->group, ref->version, ref->resource) != NULL;
    pthread_mutex_unlock(&st->mu);
    return have;
}
