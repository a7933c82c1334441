/*
 * Garbage collection and namespace cleanup. A real cluster runs these in
 * kube-controller-manager; here they run synchronously after every write,
 * to a fixpoint, so the owner's events come before its dependents'.
 */
#include "store_int.h"

#include <string.h>

/* Caps one pass chain; each round makes progress or stops. */
#define GC_MAX_ROUNDS 1000000

static const cJSON *owner_refs(const cJSON *obj)
{
    return cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "ownerReferences");
}

static const char *ref_uid(const cJSON *ref)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid"));
}

/* Whether obj lists uid among its owners (and the blocking flag). */
static int owned_by(const cJSON *obj, const char *uid, int *blocking)
{
    const cJSON *r;

    cJSON_ArrayForEach(r, owner_refs(obj)) {
        const char *u = ref_uid(r);

        if (u && strcmp(u, uid) == 0) {
            if (blocking)
                *blocking = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                    r, "blockOwnerDeletion"));
            return 1;
        }
    }
    return 0;
}

/*
 * An owner counts as present when an object with its uid exists in the
 * dependent's namespace or at cluster scope.
 */
static int owner_present(store *st, const cJSON *ref, const char *dep_ns)
{
    res_type *res = NULL;
    const char *uid = ref_uid(ref);
    int i;

    if (!uid)
        return 0;
    i = obj_find_uid(st, uid, &res);
    if (i < 0)
        return 0;
    return !res->namespaced || strcmp(res->objs[i].ns, dep_ns) == 0;
}

static int has_dependents(store *st, const char *uid)
{
    for (res_type *r = st->types; r; r = r->next)
        for (int i = 0; r->active && i < r->nobjs; i++)
            if (owned_by(r->objs[i].json, uid, NULL))
                return 1;
    return 0;
}

/* Deletes dependents whose owners are all gone. Returns 1 on a change. */
static int collect_orphans(store *st)
{
    for (res_type *r = st->types; r; r = r->next) {
        for (int i = 0; r->active && i < r->nobjs; i++) {
            const cJSON *refs = owner_refs(r->objs[i].json), *ref;
            cJSON *out = NULL;
            int alive = 0;

            if (cJSON_GetArraySize(refs) == 0 ||
                obj_str(r->objs[i].json, "deletionTimestamp"))
                continue;
            cJSON_ArrayForEach(ref, refs) {
                alive |= owner_present(st, ref, r->objs[i].ns);
            }
            if (alive)
                continue;
            store_log(st, 3, "gc: deleting %s %s/%s, its owners are gone",
                      r->kind, r->objs[i].ns, r->objs[i].name);
            delete_locked(st, r, i, "Background", 0, &out);
            cJSON_Delete(out);
            return 1;
        }
    }
    return 0;
}

/* Strips ownerReferences to uid from every dependent; 1 on a change. */
static int orphan_dependents(store *st, const char *uid)
{
    for (res_type *r = st->types; r; r = r->next) {
        for (int i = 0; r->active && i < r->nobjs; i++) {
            cJSON *nw, *refs;

            if (!owned_by(r->objs[i].json, uid, NULL))
                continue;
            nw = cJSON_Duplicate(r->objs[i].json, 1);
            refs = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(nw, "metadata"),
                "ownerReferences");
            for (int k = cJSON_GetArraySize(refs) - 1; k >= 0; k--) {
                const char *u = ref_uid(cJSON_GetArrayItem(refs, k));

                if (u && strcmp(u, uid) == 0)
                    cJSON_DeleteItemFromArray(refs, k);
            }
            if (cJSON_GetArraySize(refs) == 0)
                cJSON_DeleteItemFromObjectCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(nw, "metadata"),
                    "ownerReferences");
            obj_put_locked(st, r, i, nw);
            return 1;
        }
    }
    return 0;
}

/*
 * Foreground: deletes the dependents of uid that are not yet being
 * deleted; reports in *blocked whether a blocking dependent remains.
 */
static int delete_dependents(store *st, const char *uid, int *blocked)
{
    *blocked = 0;
    for (res_type *r = st->types; r; r = r->next) {
        for (int i = 0; r->active && i < r->nobjs; i++) {
            const cJSON *dep = r->objs[i].json;
            const char *duid = obj_str(dep, "uid");
            cJSON *out = NULL;
            int blocking = 0;

            if (!owned_by(dep, uid, &blocking))
                continue;
            *blocked |= blocking;
            if (obj_str(dep, "deletionTimestamp"))
                continue;
            delete_locked(st, r, i, duid && has_dependents(st, duid)
                                        ? "Foreground" : "Background",
                          0, &out);
            cJSON_Delete(out);
            return 1;
        }
    }
    return 0;
}

static void drop_finalizer(store *st, res_type *r, int i, const char *f)
{
    cJSON *nw = cJSON_Duplicate(r->objs[i].json, 1);

    remove_finalizer(nw, f);
    obj_put_locked(st, r, i, nw);
}

/* Empties a terminating namespace, then removes it; 1 on a change. */
static int clean_namespace(store *st, res_type *nsr, int idx)
{
    const char *ns = nsr->objs[idx].name;
    int left = 0;

    for (res_type *r = st->types; r; r = r->next) {
        for (int i = 0; r->active && r->namespaced && i < r->nobjs; i++) {
            cJSON *out = NULL;

            if (strcmp(r->objs[i].ns, ns) != 0)
                continue;
            left++;
            if (obj_str(r->objs[i].json, "deletionTimestamp"))
                continue;
            delete_locked(st, r, i, "Background", 0, &out);
            cJSON_Delete(out);
            return 1;
        }
    }
    if (left)
        return 0;
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(nsr->objs[idx].json,
                                             "metadata"),
            "finalizers")) > 0)
        return 0;
    store_log(st, 3, "namespace %s is empty, removing it", ns);
    obj_remove_locked(st, nsr, idx);
    return 1;
}

/* One step of work on an object being deleted; 1 on a change. */
static int finish_deleting(store *st, res_type *r, int i)
{
    const cJSON *obj = r->objs[i].json;
    const char *uid = obj_str(obj, "uid");
    int blocked;

    if (!uid)
        return 0;
    if (has_finalizer(obj, "orphan")) {
        if (orphan_dependents(st, uid))
            return 1;
        drop_finalizer(st, r, i, "orphan");
        return 1;
    }
    if (has_finalizer(obj, "foregroundDeletion")) {
        if (delete_dependents(st, uid, &blocked))
            return 1;
        if (blocked)
            return 0;
        drop_finalizer(st, r, i, "foregroundDeletion");
        return 1;
    }
    if (strcmp(r->plural, "namespaces") == 0 && !*r->group)
        return clean_namespace(st, r, i);
    return 0;
}

static int gc_round(store *st)
{
    for (res_type *r = st->types; r; r = r->next)
        for (int i = 0; r->active && i < r->nobjs; i++)
            if (obj_str(r->objs[i].json, "deletionTimestamp") &&
                finish_deleting(st, r, i))
                return 1;
    if (st->removed) {
        if (collect_orphans(st))
            return 1;
        st->removed = 0;
    }
    return 0;
}

void gc_check_new_locked(store *st, res_type *r, const char *ns,
                         const char *name)
{
    int i = obj_find(r, ns, name);
    const cJSON *refs, *ref;
    cJSON *out = NULL;

    if (i < 0)
        return;
    refs = owner_refs(r->objs[i].json);
    if (cJSON_GetArraySize(refs) == 0)
        return;
    cJSON_ArrayForEach(ref, refs) {
        if (owner_present(st, ref, ns))
            return;
    }

    /* Created after its owner went (a controller racing the deletion):
     * the garbage collector removes it, as a real cluster's would. */
    store_log(st, 3, "gc: deleting %s %s/%s, created after its owners "
              "were gone", r->kind, ns, name);
    delete_locked(st, r, i, "Background", 0, &out);
    cJSON_Delete(out);
}

void gc_run_locked(store *st)
{
    for (int n = 0; n < GC_MAX_ROUNDS && gc_round(st); n++)
        ;
}
