/*
 * ctl_children: the manifests the controller creates for an Astro.
 *
 * Per docker star a Deployment (one replica of the star's image, its port
 * declared) and a Service (ClusterIP, the star's port to the same port on
 * the pods); per Astro a ConfigMap holding the engine's DAG (key
 * "dag.json") and the engine pod that mounts it. Every child carries the
 * labels of ctl_names.h, the generation annotation, and a controller
 * ownerReference to the Astro with blockOwnerDeletion, so the garbage
 * collector removes them with it. Selectors use the Astro and star
 * labels, so two Astros with the same star names never share pods.
 *
 * Every function returns a new cJSON object the caller frees with
 * cJSON_Delete(), or NULL when memory ran out or an input is unusable;
 * inputs are borrowed. No I/O, no state.
 */
#ifndef ASTER_CTL_CHILDREN_H
#define ASTER_CTL_CHILDREN_H

#include <cjson/cJSON.h>

#include "wf.h"

#define CTL_API_GROUP "astertower.kasterism.io"
#define CTL_API_VERSION "v1alpha1"
#define CTL_API_GV "astertower.kasterism.io/v1alpha1"
#define CTL_KIND "Astro"

/* Where the engine reads its DAG and listens (see docs/controller.md). */
#define CTL_ENGINE_DIR "/etc/astermule"
#define CTL_ENGINE_DAG_KEY "dag.json"
#define CTL_ENGINE_DAG_PATH "/etc/astermule/dag.json"
#define CTL_ENGINE_PORT 8080
#define CTL_ENGINE_CONTAINER "astermule"

/* The Astro the children belong to; strings borrowed. */
typedef struct ctl_owner {
    const char *name;
    const char *ns;
    const char *uid;
    long generation;
} ctl_owner;

/*
 * Fills o from an Astro object (borrowed: o points into it). Returns 0,
 * or -1 when name, namespace or uid is missing.
 */
int ctl_owner_from(const cJSON *astro, ctl_owner *o);

/* The Deployment of a docker star; pull_secrets is spec.imagePullSecrets
   of the Astro (an array of {name}) or NULL. */
cJSON *ctl_child_deployment(const ctl_owner *o, const wf_node *star,
                            const cJSON *pull_secrets);

/* The Service of a docker star. */
cJSON *ctl_child_service(const ctl_owner *o, const wf_node *star);

/* Where a star's Service answers; the IP borrowed. */
typedef struct ctl_addr {
    const char *ip;
    int port;
} ctl_addr;

/*
 * The engine's DAG document for wf: one node per star, in declaration
 * order, its url http://<ip>:<port><target> from addrs (indexed like
 * wf->nodes), its action, dependencies, and timeout and retries when
 * they differ from the defaults. NULL when a docker star has no address.
 */
cJSON *ctl_dag_build(const wf_workflow *wf, const ctl_addr *addrs);

/* The ConfigMap holding dag_text under CTL_ENGINE_DAG_KEY. */
cJSON *ctl_child_configmap(const ctl_owner *o, const char *dag_text);

/* The engine pod running image over the ConfigMap named cm_name. */
cJSON *ctl_child_engine_pod(const ctl_owner *o, const char *image,
                            const char *cm_name, const cJSON *pull_secrets);

#endif
