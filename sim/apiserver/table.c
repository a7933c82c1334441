/* Table responses: columns for built-ins and CRD printer columns. */
#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <strings.h>

#include "jpath.h"

typedef cJSON *(*cell_fn)(const cJSON *obj, time_t now);

typedef struct builtin_col {
    const char *name;
    const char *type;
    int priority;
    cell_fn cell;
} builtin_col;

typedef struct builtin_printer {
    const char *kind;
    const builtin_col *cols;
} builtin_printer;

void table_duration(long long secs, char *buf, size_t len)
{
    long long m = secs / 60, h = secs / 3600, d = h / 24;

    if (secs < -1)
        snprintf(buf, len, "<invalid>");
    else if (secs < 0)
        snprintf(buf, len, "0s");
    else if (secs < 120)
        snprintf(buf, len, "%llds", secs);
    else if (m < 10 && secs % 60)
        snprintf(buf, len, "%lldm%llds", m, secs % 60);
    else if (m < 180)
        snprintf(buf, len, "%lldm", m);
    else if (h < 8 && m % 60)
        snprintf(buf, len, "%lldh%lldm", h, m % 60);
    else if (h < 48)
        snprintf(buf, len, "%lldh", h);
    else if (h < 24 * 8 && h % 24)
        snprintf(buf, len, "%lldd%lldh", d, h % 24);
    else if (h < 24 * 365 * 2)
        snprintf(buf, len, "%lldd", d);
    else if (h < 24 * 365 * 8 && d % 365)
        snprintf(buf, len, "%lldy%lldd", d / 365, d % 365);
    else
        snprintf(buf, len, "%lldy", d / 365);
}

/* Parses RFC3339 (fractions ignored); returns -1 when malformed. */
static time_t parse_time(const char *s)
{
    struct tm tm;
    const char *end;

    if (!s)
        return -1;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    return timegm(&tm);
}

static cJSON *age_of(const char *ts, time_t now)
{
    char buf[32];
    time_t t = parse_time(ts);

    if (t < 0)
        return cJSON_CreateString("<invalid>");
    table_duration((long long)(now - t), buf, sizeof(buf));
    return cJSON_CreateString(buf);
}

static const char *str_at(const cJSON *obj, const char *path)
{
    return cJSON_GetStringValue(jpath_get(obj, path));
}

static cJSON *str_or(const cJSON *obj, const char *path, const char *dflt)
{
    const char *s = str_at(obj, path);

    return cJSON_CreateString(s && *s ? s : dflt);
}

static int count_at(const cJSON *obj, const char *path)
{
    return cJSON_GetArraySize(jpath_get(obj, path));
}

static double num_at(const cJSON *obj, const char *path)
{
    const cJSON *v = jpath_get(obj, path);

    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static cJSON *cell_age(const cJSON *o, time_t now)
{
    return age_of(str_at(o, ".metadata.creationTimestamp"), now);
}

static cJSON *cell_created_at(const cJSON *o, time_t now)
{
    return str_or(o, ".metadata.creationTimestamp", "<unknown>");
}

static cJSON *cell_data(const cJSON *o, time_t now)
{
    return cJSON_CreateNumber(count_at(o, ".data") +
                              count_at(o, ".binaryData"));
}

static cJSON *cell_secret_type(const cJSON *o, time_t now)
{
    return str_or(o, ".type", "Opaque");
}

static cJSON *cell_ns_status(const cJSON *o, time_t now)
{
    return str_or(o, ".status.phase", "Active");
}

static cJSON *cell_holder(const cJSON *o, time_t now)
{
    return str_or(o, ".spec.holderIdentity", "");
}

static cJSON *cell_pod_ready(const cJSON *o, time_t now)
{
    const cJSON *st = jpath_get(o, ".status.containerStatuses");
    const cJSON *c;
    char buf[32];
    int ready = 0;

    cJSON_ArrayForEach(c, st) {
        ready += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ready"));
    }
    snprintf(buf, sizeof(buf), "%d/%d", ready,
             count_at(o, ".spec.containers"));
    return cJSON_CreateString(buf);
}

/*
 * Why one container is not just running, as the STATUS column names it:
 * its waiting reason, else its terminated reason, else the signal or
 * exit code of a terminated container. buf gets "" when there is none.
 */
static void container_reason(const cJSON *cs, char *buf, size_t len)
{
    const cJSON *w = jpath_get(cs, ".state.waiting");
    const cJSON *t = jpath_get(cs, ".state.terminated");
    const char *r;

    buf[0] = '\0';
    r = str_at(w, ".reason");
    if (!r || !*r)
        r = str_at(t, ".reason");
    if (r && *r) {
        snprintf(buf, len, "%s", r);
        return;
    }

    if (!t)
        return;
    if (num_at(t, ".signal") != 0)
        snprintf(buf, len, "Signal:%d", (int)num_at(t, ".signal"));
    else
        snprintf(buf, len, "ExitCode:%d", (int)num_at(t, ".exitCode"));
}

static int pod_phase_terminal(const cJSON *o)
{
    const char *phase = str_at(o, ".status.phase");

    return phase && (strcmp(phase, "Succeeded") == 0 ||
                     strcmp(phase, "Failed") == 0);
}

/*
 * The STATUS column as a real cluster prints it: the phase, overridden
 * by status.reason, overridden by the first container that has a reason
 * (ImagePullBackOff, CrashLoopBackOff, Error, ...). Init containers are
 * not looked at: the simulated kubelet never runs them.
 */
static cJSON *cell_pod_status(const cJSON *o, time_t now)
{
    const cJSON *css = jpath_get(o, ".status.containerStatuses");
    const char *phase = str_at(o, ".status.phase");
    const char *pod_reason = str_at(o, ".status.reason");
    const char *ready;
    char reason[256], why[256];
    int running = 0;

    if (pod_reason && *pod_reason)
        snprintf(reason, sizeof(reason), "%s", pod_reason);
    else
        snprintf(reason, sizeof(reason), "%s", phase ? phase : "Pending");

    /* Walk backwards so that the first container's reason is the one
     * left standing, as on a real cluster. */
    for (int i = cJSON_GetArraySize(css) - 1; i >= 0; i--) {
        const cJSON *cs = cJSON_GetArrayItem(css, i);

        container_reason(cs, why, sizeof(why));
        if (*why)
            snprintf(reason, sizeof(reason), "%s", why);
        else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "ready"))
                 && jpath_get(cs, ".state.running"))
            running = 1;
    }

    /* A finished sidecar beside a running container is no finished Pod. */
    if (strcmp(reason, "Completed") == 0 && running) {
        ready = str_at(o, ".status.conditions[?(@.type==\"Ready\")].status");
        snprintf(reason, sizeof(reason), "%s",
                 ready && strcmp(ready, "True") == 0 ? "Running"
                                                     : "NotReady");
    }

    if (str_at(o, ".metadata.deletionTimestamp")) {
        if (pod_reason && strcmp(pod_reason, "NodeLost") == 0)
            return cJSON_CreateString("Unknown");
        if (!pod_phase_terminal(o))
            return cJSON_CreateString("Terminating");
    }
    return cJSON_CreateString(reason);
}

static cJSON *cell_pod_restarts(const cJSON *o, time_t now)
{
    const cJSON *c;
    double n = 0;

    cJSON_ArrayForEach(c, jpath_get(o, ".status.containerStatuses")) {
        n += num_at(c, ".restartCount");
    }
    return cJSON_CreateNumber(n);
}

static cJSON *cell_pod_ip(const cJSON *o, time_t now)
{
    return str_or(o, ".status.podIP", "<none>");
}

static cJSON *cell_pod_node(const cJSON *o, time_t now)
{
    return str_or(o, ".spec.nodeName", "<none>");
}

static cJSON *cell_pod_nominated(const cJSON *o, time_t now)
{
    return str_or(o, ".status.nominatedNodeName", "<none>");
}

/* How many of the Pod's readiness gates have a True condition, of all. */
static cJSON *cell_pod_gates(const cJSON *o, time_t now)
{
    const cJSON *gates = jpath_get(o, ".spec.readinessGates");
    const cJSON *g, *c;
    char buf[32];
    int ok = 0;

    if (cJSON_GetArraySize(gates) == 0)
        return cJSON_CreateString("<none>");

    cJSON_ArrayForEach(g, gates) {
        const char *type = str_at(g, ".conditionType");

        cJSON_ArrayForEach(c, jpath_get(o, ".status.conditions")) {
            const char *ct = str_at(c, ".type");
            const char *cst = str_at(c, ".status");

            if (type && ct && cst && strcmp(type, ct) == 0 &&
                strcmp(cst, "True") == 0) {
                ok++;
                break;
            }
        }
    }
    snprintf(buf, sizeof(buf), "%d/%d", ok, cJSON_GetArraySize(gates));
    return cJSON_CreateString(buf);
}

static cJSON *cell_deploy_ready(const cJSON *o, time_t now)
{
    char buf[32];
    const cJSON *r = jpath_get(o, ".spec.replicas");

    snprintf(buf, sizeof(buf), "%d/%d",
             (int)num_at(o, ".status.readyReplicas"),
             cJSON_IsNumber(r) ? r->valueint : 1);
    return cJSON_CreateString(buf);
}

static cJSON *cell_deploy_updated(const cJSON *o, time_t now)
{
    return cJSON_CreateNumber(num_at(o, ".status.updatedReplicas"));
}

static cJSON *cell_deploy_available(const cJSON *o, time_t now)
{
    return cJSON_CreateNumber(num_at(o, ".status.availableReplicas"));
}

static cJSON *cell_svc_type(const cJSON *o, time_t now)
{
    return str_or(o, ".spec.type", "ClusterIP");
}

static cJSON *cell_svc_ip(const cJSON *o, time_t now)
{
    return str_or(o, ".spec.clusterIP", "<none>");
}

static cJSON *cell_none(const cJSON *o, time_t now)
{
    return cJSON_CreateString("<none>");
}

static cJSON *cell_svc_ports(const cJSON *o, time_t now)
{
    char buf[512] = "";
    size_t n = 0;
    const cJSON *p;

    cJSON_ArrayForEach(p, jpath_get(o, ".spec.ports")) {
        const char *proto = str_at(p, ".protocol");

        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%d/%s",
                              n ? "," : "", (int)num_at(p, ".port"),
                              proto ? proto : "TCP");
        if (n >= sizeof(buf))
            break;
    }
    return cJSON_CreateString(n ? buf : "<none>");
}

static cJSON *cell_sa_secrets(const cJSON *o, time_t now)
{
    return cJSON_CreateNumber(count_at(o, ".secrets"));
}

static cJSON *cell_rb_role(const cJSON *o, time_t now)
{
    char buf[300];
    const char *k = str_at(o, ".roleRef.kind");
    const char *n = str_at(o, ".roleRef.name");

    snprintf(buf, sizeof(buf), "%s/%s", k ? k : "", n ? n : "");
    return cJSON_CreateString(buf);
}

static cJSON *cell_ev_last_seen(const cJSON *o, time_t now)
{
    const char *t = str_at(o, ".lastTimestamp");

    if (!t)
        t = str_at(o, ".eventTime");
    if (!t)
        t = str_at(o, ".metadata.creationTimestamp");
    return age_of(t, now);
}

static cJSON *cell_ev_type(const cJSON *o, time_t now)
{
    return str_or(o, ".type", "");
}

static cJSON *cell_ev_reason(const cJSON *o, time_t now)
{
    return str_or(o, ".reason", "");
}

static cJSON *cell_ev_object(const cJSON *o, time_t now)
{
    char buf[300];
    const char *k = str_at(o, ".involvedObject.kind");
    const char *n = str_at(o, ".involvedObject.name");
    size_t i;

    snprintf(buf, sizeof(buf), "%s/%s", k ? k : "", n ? n : "");
    for (i = 0; buf[i] && buf[i] != '/'; i++)
        buf[i] = (char)tolower((unsigned char)buf[i]);
    return cJSON_CreateString(buf);
}

static cJSON *cell_ev_message(const cJSON *o, time_t now)
{
    return str_or(o, ".message", "");
}

#define AGE_COL {"Age", "date", 0, cell_age}
#define END_COL {NULL, NULL, 0, NULL}

static const builtin_col cols_default[] = {AGE_COL, END_COL};
static const builtin_col cols_cm[] = {
    {"Data", "integer", 0, cell_data}, AGE_COL, END_COL};
static const builtin_col cols_secret[] = {
    {"Type", "string", 0, cell_secret_type},
    {"Data", "integer", 0, cell_data}, AGE_COL, END_COL};
static const builtin_col cols_ns[] = {
    {"Status", "string", 0, cell_ns_status}, AGE_COL, END_COL};
static const builtin_col cols_lease[] = {
    {"Holder", "string", 0, cell_holder}, AGE_COL, END_COL};
static const builtin_col cols_pod[] = {
    {"Ready", "string", 0, cell_pod_ready},
    {"Status", "string", 0, cell_pod_status},
    {"Restarts", "string", 0, cell_pod_restarts}, AGE_COL,
    {"IP", "string", 1, cell_pod_ip},
    {"Node", "string", 1, cell_pod_node},
    {"Nominated Node", "string", 1, cell_pod_nominated},
    {"Readiness Gates", "string", 1, cell_pod_gates}, END_COL};
static const builtin_col cols_deploy[] = {
    {"Ready", "string", 0, cell_deploy_ready},
    {"Up-to-date", "string", 0, cell_deploy_updated},
    {"Available", "string", 0, cell_deploy_available}, AGE_COL, END_COL};
static const builtin_col cols_svc[] = {
    {"Type", "string", 0, cell_svc_type},
    {"Cluster-IP", "string", 0, cell_svc_ip},
    {"External-IP", "string", 0, cell_none},
    {"Port(s)", "string", 0, cell_svc_ports}, AGE_COL, END_COL};
static const builtin_col cols_sa[] = {
    {"Secrets", "string", 0, cell_sa_secrets}, AGE_COL, END_COL};
static const builtin_col cols_created[] = {
    {"Created At", "date", 0, cell_created_at}, END_COL};
static const builtin_col cols_rb[] = {
    {"Role", "string", 0, cell_rb_role}, AGE_COL, END_COL};
static const builtin_col cols_event[] = {
    {"Last Seen", "string", 0, cell_ev_last_seen},
    {"Type", "string", 0, cell_ev_type},
    {"Reason", "string", 0, cell_ev_reason},
    {"Object", "string", 0, cell_ev_object},
    {"Message", "string", 0, cell_ev_message}, END_COL};

static const builtin_printer printers[] = {
    {"ConfigMap", cols_cm},
    {"Secret", cols_secret},
    {"Namespace", cols_ns},
    {"Lease", cols_lease},
    {"Pod", cols_pod},
    {"Deployment", cols_deploy},
    {"Service", cols_svc},
    {"ServiceAccount", cols_sa},
    {"Role", cols_created},
    {"RoleBinding", cols_rb},
    {"ClusterRole", cols_created},
    {"ClusterRoleBinding", cols_rb},
    {"CustomResourceDefinition", cols_created},
    {"Event", cols_event},
    {NULL, NULL},
};

static const builtin_col *builtin_cols(const char *kind)
{
    for (int i = 0; kind && printers[i].kind; i++)
        if (strcmp(printers[i].kind, kind) == 0)
            return printers[i].cols;
    return cols_default;
}

static void add_coldef(cJSON *defs, const char *name, const char *type,
                       const char *format, const char *desc, int priority)
{
    cJSON *c = cJSON_CreateObject();

    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "type", type);
    cJSON_AddStringToObject(c, "format", format ? format : "");
    cJSON_AddStringToObject(c, "description", desc);
    cJSON_AddNumberToObject(c, "priority", priority);
    cJSON_AddItemToArray(defs, c);
}

static cJSON *column_defs(const table_spec *spec)
{
    cJSON *defs = cJSON_CreateArray();
    const cJSON *pc;

    /* Events hide their names unless -o wide, as a real server does. */
    add_coldef(defs, "Name", "string", "name",
               "Name must be unique within a namespace.",
               !spec->printer_cols && spec->kind &&
                   strcmp(spec->kind, "Event") == 0);
    if (spec->printer_cols && cJSON_GetArraySize(spec->printer_cols) > 0) {
        cJSON_ArrayForEach(pc, spec->printer_cols) {
            char desc[512];
            const char *d = str_at(pc, ".description");

            snprintf(desc, sizeof(desc), "Custom resource definition "
                     "column (in JSONPath format): %s",
                     str_at(pc, ".jsonPath") ? str_at(pc, ".jsonPath")
                                             : "");
            add_coldef(defs, str_at(pc, ".name") ? str_at(pc, ".name") : "",
                       str_at(pc, ".type") ? str_at(pc, ".type") : "string",
                       str_at(pc, ".format"), d ? d : desc,
                       (int)num_at(pc, ".priority"));
        }
        return defs;
    }
    if (spec->printer_cols) {
        add_coldef(defs, "Age", "date", "", "CreationTimestamp", 0);
        return defs;
    }
    for (const builtin_col *c = builtin_cols(spec->kind); c->name; c++)
        add_coldef(defs, c->name, c->type, "", c->name, c->priority);
    return defs;
}

/* Renders a value as kubectl's string columns show it. */
static cJSON *as_text(const cJSON *v)
{
    char *s;
    cJSON *out;

    if (cJSON_IsString(v))
        return cJSON_CreateString(v->valuestring);
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)
        v->valuedouble) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%lld", (long long)v->valuedouble);
        return cJSON_CreateString(buf);
    }
    s = cJSON_PrintUnformatted(v);
    out = cJSON_CreateString(s ? s : "");
    free(s);
    return out;
}

static cJSON *crd_cell(const cJSON *pc, const cJSON *obj, time_t now)
{
    const char *type = str_at(pc, ".type");
    const char *path = str_at(pc, ".jsonPath");
    const cJSON *v = path ? jpath_get(obj, path) : NULL;

    if (!v || cJSON_IsNull(v))
        return cJSON_CreateNull();
    if (!type)
        type = "string";
    if (strcmp(type, "integer") == 0)
        return cJSON_IsNumber(v) ? cJSON_CreateNumber(
                                       (double)(long long)v->valuedouble)
                                 : cJSON_CreateNull();
    if (strcmp(type, "number") == 0)
        return cJSON_IsNumber(v) ? cJSON_CreateNumber(v->valuedouble)
                                 : cJSON_CreateNull();
    if (strcmp(type, "boolean") == 0)
        return cJSON_IsBool(v) ? cJSON_CreateBool(cJSON_IsTrue(v))
                               : cJSON_CreateNull();
    if (strcmp(type, "date") == 0)
        return age_of(cJSON_GetStringValue(v), now);
    return as_text(v);
}

static cJSON *row_object(const table_spec *spec, const cJSON *obj)
{
    cJSON *o;

    if (spec->include == TABLE_INCLUDE_OBJECT)
        return cJSON_Duplicate(obj, 1);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "PartialObjectMetadata");
    cJSON_AddStringToObject(o, "apiVersion", "meta.k8s.io/v1");
    cJSON_AddItemToObject(o, "metadata", cJSON_Duplicate(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), 1));
    return o;
}

static cJSON *build_row(const table_spec *spec, const cJSON *obj)
{
    cJSON *row = cJSON_CreateObject();
    cJSON *cells = cJSON_AddArrayToObject(row, "cells");
    const cJSON *pc;

    cJSON_AddItemToArray(cells, str_or(obj, ".metadata.name", ""));
    if (spec->printer_cols && cJSON_GetArraySize(spec->printer_cols) > 0) {
        cJSON_ArrayForEach(pc, spec->printer_cols) {
            cJSON_AddItemToArray(cells, crd_cell(pc, obj, spec->now));
        }
    } else if (spec->printer_cols) {
        cJSON_AddItemToArray(cells, cell_age(obj, spec->now));
    } else {
        for (const builtin_col *c = builtin_cols(spec->kind); c->name; c++)
            cJSON_AddItemToArray(cells, c->cell(obj, spec->now));
    }
    if (spec->include != TABLE_INCLUDE_NONE)
        cJSON_AddItemToObject(row, "object", row_object(spec, obj));
    return row;
}

cJSON *table_build(const table_spec *spec, const cJSON *items,
                   const char *rv, const char *cont, long remaining)
{
    cJSON *t = cJSON_CreateObject();
    cJSON *meta, *rows;
    const cJSON *obj;

    cJSON_AddStringToObject(t, "kind", "Table");
    cJSON_AddStringToObject(t, "apiVersion", "meta.k8s.io/v1");
    meta = cJSON_AddObjectToObject(t, "metadata");
    if (rv)
        cJSON_AddStringToObject(meta, "resourceVersion", rv);
    if (cont && *cont)
        cJSON_AddStringToObject(meta, "continue", cont);
    if (remaining > 0)
        cJSON_AddNumberToObject(meta, "remainingItemCount",
                                (double)remaining);
    if (spec->headers)
        cJSON_AddItemToObject(t, "columnDefinitions", column_defs(spec));
    else
        cJSON_AddNullToObject(t, "columnDefinitions");
    rows = cJSON_AddArrayToObject(t, "rows");
    cJSON_ArrayForEach(obj, items) {
        cJSON_AddItemToArray(rows, build_row(spec, obj));
    }
    return t;
}
