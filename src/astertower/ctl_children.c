/*
 * ctl_children: manifests of the Astro's children (see ctl_children.h).
 *
 * Builders share one failure flag: a helper that cannot allocate clears
 * *ok and returns NULL, later helpers accept NULL parents, and the
 * public function drops the half-built object when *ok is 0.
 */
#include "ctl_children.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_names.h"

static cJSON *put_obj(cJSON *parent, const char *key, int *ok)
{
    cJSON *o = cJSON_AddObjectToObject(parent, key);

    if (o == NULL)
        *ok = 0;
    return o;
}

static cJSON *put_arr(cJSON *parent, const char *key, int *ok)
{
    cJSON *a = cJSON_AddArrayToObject(parent, key);

    if (a == NULL)
        *ok = 0;
    return a;
}

static void put_str(cJSON *parent, const char *key, const char *v, int *ok)
{
    if (cJSON_AddStringToObject(parent, key, v) == NULL)
        *ok = 0;
}

static void put_num(cJSON *parent, const char *key, double v, int *ok)
{
    if (cJSON_AddNumberToObject(parent, key, v) == NULL)
        *ok = 0;
}

static void put_bool(cJSON *parent, const char *key, int v, int *ok)
{
    if (cJSON_AddBoolToObject(parent, key, v) == NULL)
        *ok = 0;
}

/* Appends a new object to an array. */
static cJSON *push_obj(cJSON *arr, int *ok)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || arr == NULL || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        *ok = 0;
        return NULL;
    }
    return o;
}

static void push_str(cJSON *arr, const char *v, int *ok)
{
    cJSON *s = cJSON_CreateString(v);

    if (s == NULL || arr == NULL || !cJSON_AddItemToArray(arr, s)) {
        cJSON_Delete(s);
        *ok = 0;
    }
}

static cJSON *finish(cJSON *obj, int ok)
{
    if (!ok) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

int ctl_owner_from(const cJSON *astro, ctl_owner *o)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(astro, "metadata");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(meta, "generation");

    o->name = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(meta, "name"));
    o->ns = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(meta, "namespace"));
    o->uid = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(meta, "uid"));
    o->generation = cJSON_IsNumber(gen) ? (long)gen->valuedouble : 1;
    if (o->name == NULL || o->ns == NULL || o->uid == NULL)
        return -1;
    return 0;
}

/*
 * The labels of a child as object key of parent ("labels", "matchLabels",
 * "selector"); star NULL for the per-Astro children.
 */
static void put_labels(cJSON *parent, const char *key, const ctl_owner *o,
                       const char *star, const char *role, int *ok)
{
    cJSON *l = put_obj(parent, key, ok);
    char astro[CTL_NAME_BUF];

    ctl_label_value(o->name, astro);
    put_str(l, CTL_LABEL_ASTRO, astro, ok);
    if (star)
        put_str(l, CTL_LABEL_STAR, star, ok);
    put_str(l, CTL_LABEL_ROLE, role, ok);
    put_str(l, CTL_LABEL_MANAGED, CTL_MANAGED_BY, ok);
}

/* metadata with name, namespace, labels, annotations and owner. */
static cJSON *put_meta(cJSON *obj, const ctl_owner *o, const char *name,
                       const char *star, const char *role, int *ok)
{
    cJSON *m = put_obj(obj, "metadata", ok);
    cJSON *ann, *refs, *ref;
    char gen[32];

    put_str(m, "name", name, ok);
    put_str(m, "namespace", o->ns, ok);
    put_labels(m, "labels", o, star, role, ok);

    ann = put_obj(m, "annotations", ok);
    snprintf(gen, sizeof(gen), "%ld", o->generation);
    put_str(ann, CTL_ANN_GENERATION, gen, ok);

    refs = put_arr(m, "ownerReferences", ok);
    ref = push_obj(refs, ok);
    put_str(ref, "apiVersion", CTL_API_GV, ok);
    put_str(ref, "kind", CTL_KIND, ok);
    put_str(ref, "name", o->name, ok);
    put_str(ref, "uid", o->uid, ok);
    put_bool(ref, "controller", 1, ok);
    put_bool(ref, "blockOwnerDeletion", 1, ok);
    return m;
}

/* Copies the {name} entries of an imagePullSecrets list into spec. */
static void put_pull_secrets(cJSON *spec, const cJSON *secrets, int *ok)
{
    const cJSON *s;
    cJSON *arr;

    if (!cJSON_IsArray(secrets) || cJSON_GetArraySize(secrets) == 0)
        return;
    arr = put_arr(spec, "imagePullSecrets", ok);
    cJSON_ArrayForEach(s, secrets)
    {
        const char *name = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(s, "name"));

        if (name && *name)
            put_str(push_obj(arr, ok), "name", name, ok);
    }
}

cJSON *ctl_child_deployment(const ctl_owner *o, const wf_node *star,
                            const cJSON *pull_secrets)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *spec, *sel, *tmpl, *pspec, *c, *port;
    char name[CTL_NAME_BUF];
    int ok = d != NULL;

    if (star->image == NULL || ctl_name_child(o->name, star->name, name))
        ok = 0;
    put_str(d, "apiVersion", "apps/v1", &ok);
    put_str(d, "kind", "Deployment", &ok);
    put_meta(d, o, name, star->name, CTL_ROLE_STAR, &ok);

    spec = put_obj(d, "spec", &ok);
    put_num(spec, "replicas", 1, &ok);
    sel = put_obj(spec, "selector", &ok);
    put_labels(sel, "matchLabels", o, star->name, CTL_ROLE_STAR, &ok);

    tmpl = put_obj(spec, "template", &ok);
    put_labels(put_obj(tmpl, "metadata", &ok), "labels", o, star->name,
               CTL_ROLE_STAR, &ok);
    pspec = put_obj(tmpl, "spec", &ok);
    c = push_obj(put_arr(pspec, "containers", &ok), &ok);
    put_str(c, "name", star->name, &ok);
    put_str(c, "image", star->image ? star->image : "", &ok);
    port = push_obj(put_arr(c, "ports", &ok), &ok);
    put_num(port, "containerPort", star->port, &ok);
    put_str(port, "protocol", "TCP", &ok);
    put_pull_secrets(pspec, pull_secrets, &ok);
    return finish(d, ok);
}

cJSON *ctl_child_service(const ctl_owner *o, const wf_node *star)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *spec, *port;
    char name[CTL_NAME_BUF];
    int ok = s != NULL;

    if (star->port <= 0 || ctl_name_child(o->name, star->name, name))
        ok = 0;
    put_str(s, "apiVersion", "v1", &ok);
    put_str(s, "kind", "Service", &ok);
    put_meta(s, o, name, star->name, CTL_ROLE_STAR, &ok);

    spec = put_obj(s, "spec", &ok);
    put_str(spec, "type", "ClusterIP", &ok);
    put_labels(spec, "selector", o, star->name, CTL_ROLE_STAR, &ok);
    port = push_obj(put_arr(spec, "ports", &ok), &ok);
    put_str(port, "name", "http", &ok);
    put_str(port, "protocol", "TCP", &ok);
    put_num(port, "port", star->port, &ok);
    put_num(port, "targetPort", star->port, &ok);
    return finish(s, ok);
}

#define NODE_URL_FORMAT "http://%s:%d%s"

/*
 * The URL the engine calls for a star, in a buffer made to fit (the
 * caller frees it); NULL when memory ran out. Never cut to a fixed size:
 * a shortened target would call another path of the star without a word.
 */
static char *node_url(const ctl_addr *a, const char *target)
{
    const char *path = target ? target : "/";
    int n = snprintf(NULL, 0, NODE_URL_FORMAT, a->ip, a->port, path);
    char *url;

    if (n < 0)
        return NULL;
    url = malloc((size_t)n + 1);
    if (url != NULL)
        snprintf(url, (size_t)n + 1, NODE_URL_FORMAT, a->ip, a->port, path);
    return url;
}

/* One DAG node for star k. */
static void put_dag_node(cJSON *nodes, const wf_workflow *wf, size_t k,
                         const ctl_addr *a, int *ok)
{
    const wf_node *n = &wf->nodes[k];
    cJSON *node = push_obj(nodes, ok);
    cJSON *deps;
    char *url;

    put_str(node, "name", n->name, ok);
    put_str(node, "action", wf_action_name(n->action), ok);
    url = node_url(a, n->target);
    if (url == NULL)
        *ok = 0;
    else
        put_str(node, "url", url, ok);
    free(url);
    if (n->n_deps > 0) {
        deps = put_arr(node, "dependencies", ok);
        for (size_t d = 0; d < n->n_deps; d++)
            push_str(deps, wf->nodes[n->deps[d]].name, ok);
    }
    if (n->timeout_ms != WF_DEFAULT_TIMEOUT_MS)
        put_num(node, "timeout", (double)n->timeout_ms, ok);
    if (n->retries != WF_DEFAULT_RETRIES)
        put_num(node, "retries", n->retries, ok);
}

cJSON *ctl_dag_build(const wf_workflow *wf, const ctl_addr *addrs)
{
    cJSON *dag = cJSON_CreateObject();
    cJSON *nodes;
    int ok = dag != NULL;

    nodes = put_arr(dag, "nodes", &ok);
    for (size_t k = 0; k < wf->n_nodes && ok; k++) {
        if (addrs[k].ip == NULL || !*addrs[k].ip || addrs[k].port <= 0) {
            ok = 0;
            break;
        }
        put_dag_node(nodes, wf, k, &addrs[k], &ok);
    }
    return finish(dag, ok);
}

cJSON *ctl_child_configmap(const ctl_owner *o, const char *dag_text)
{
    cJSON *cm = cJSON_CreateObject();
    char name[CTL_NAME_BUF];
    int ok = cm != NULL;

    if (ctl_name_child(o->name, CTL_SUFFIX_DAG, name))
        ok = 0;
    put_str(cm, "apiVersion", "v1", &ok);
    put_str(cm, "kind", "ConfigMap", &ok);
    put_meta(cm, o, name, NULL, CTL_ROLE_DAG, &ok);
    put_str(put_obj(cm, "data", &ok), CTL_ENGINE_DAG_KEY, dag_text, &ok);
    return finish(cm, ok);
}

/* The engine container: args, port, the DAG mount, a readiness probe. */
static void put_engine_container(cJSON *pspec, const char *image, int *ok)
{
    cJSON *c = push_obj(put_arr(pspec, "containers", ok), ok);
    cJSON *args, *port, *mount, *probe, *get;

    put_str(c, "name", CTL_ENGINE_CONTAINER, ok);
    put_str(c, "image", image, ok);
    args = put_arr(c, "args", ok);
    push_str(args, "--dag-file", ok);
    push_str(args, CTL_ENGINE_DAG_PATH, ok);
    push_str(args, "--port", ok);
    push_str(args, "8080", ok);

    port = push_obj(put_arr(c, "ports", ok), ok);
    put_str(port, "name", "http", ok);
    put_num(port, "containerPort", CTL_ENGINE_PORT, ok);
    put_str(port, "protocol", "TCP", ok);

    mount = push_obj(put_arr(c, "volumeMounts", ok), ok);
    put_str(mount, "name", "dag", ok);
    put_str(mount, "mountPath", CTL_ENGINE_DIR, ok);
    put_bool(mount, "readOnly", 1, ok);

    probe = put_obj(c, "readinessProbe", ok);
    get = put_obj(probe, "httpGet", ok);
    put_str(get, "path", "/readyz", ok);
    put_num(get, "port", CTL_ENGINE_PORT, ok);
    put_num(probe, "periodSeconds", 2, ok);
}

cJSON *ctl_child_engine_pod(const ctl_owner *o, const char *image,
                            const char *cm_name, const cJSON *pull_secrets)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *spec, *vol;
    char name[CTL_NAME_BUF];
    int ok = p != NULL;

    if (ctl_name_child(o->name, CTL_SUFFIX_ENGINE, name))
        ok = 0;
    put_str(p, "apiVersion", "v1", &ok);
    put_str(p, "kind", "Pod", &ok);
    put_meta(p, o, name, NULL, CTL_ROLE_ENGINE, &ok);

    spec = put_obj(p, "spec", &ok);
    put_str(spec, "restartPolicy", "Never", &ok);
    put_engine_container(spec, image, &ok);
    vol = push_obj(put_arr(spec, "volumes", &ok), &ok);
    put_str(vol, "name", "dag", &ok);
    put_str(put_obj(vol, "configMap", &ok), "name", cm_name, &ok);
    put_pull_secrets(spec, pull_secrets, &ok);
    return finish(p, ok);
}
