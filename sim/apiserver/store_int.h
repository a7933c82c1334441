/*
 * store internals shared by store.c, store_watch.c, store_gc.c,
 * store_crd.c and store_disc.c. Everything here runs with st->mu held
 * unless a comment says otherwise.
 */
#ifndef SIMAPI_STORE_INT_H
#define SIMAPI_STORE_INT_H

#include <pthread.h>
#include <stdarg.h>

#include "store.h"

enum { EV_ADDED, EV_MODIFIED, EV_DELETED };

typedef struct store_obj {
    char *ns;            /* "" for cluster-scoped objects */
    char *name;
    cJSON *json;
} store_obj;

/* A served resource; never freed before the store, only deactivated. */
typedef struct res_type {
    char *group, *version, *plural, *singular, *kind, *list_kind;
    cJSON *short_names;  /* array of strings */
    cJSON *categories;   /* array of strings */
    int namespaced;
    int has_status;      /* has a status subresource */
    int has_generation;
    int smp;             /* accepts strategic merge patches */
    int active;
    int is_crd;          /* defined by a CustomResourceDefinition */
    int name_is_label;   /* names must be DNS labels, not subdomains */
    cJSON *printer_cols; /* CRD additionalPrinterColumns or NULL */
    cJSON *schema;       /* CRD openAPIV3Schema or NULL */
    cJSON *selectable;   /* CRD selectableFields jsonPaths or NULL */
    const char *const *fields;  /* extra field selector labels */
    store_obj *objs;     /* sorted by (ns, name) */
    int nobjs, cap;
    struct res_type *next;
} res_type;

typedef struct log_ev {
    uint64_t rv;
    int type;
    res_type *res;
    cJSON *obj;          /* the object after the change */
    cJSON *old;          /* before the change (MODIFIED only) */
} log_ev;

struct store {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t rv;
    uint64_t compacted;  /* events with rv <= compacted are gone */
    log_ev *log;         /* ring buffer */
    int log_cap, log_len, log_head;
    res_type *types;
    int closing;
    int removed;         /* an object went away since the last GC pass */
    store_config cfg;
};

/* store.c */
void store_log(store *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
res_type *res_lookup(store *st, const char *group, const char *version,
                     const char *plural);
res_type *res_add(store *st, const char *group, const char *version,
                  const char *plural, const char *kind);
void res_gr(const res_type *res, char *buf, size_t len);
const char *res_api_version(const res_type *res, char *buf, size_t len);
int obj_find(const res_type *res, const char *ns, const char *name);
int obj_find_uid(store *st, const char *uid, res_type **res);
const char *obj_str(const cJSON *obj, const char *meta_key);
void obj_put_locked(store *st, res_type *res, int idx, cJSON *json);
void obj_remove_locked(store *st, res_type *res, int idx);
int delete_locked(store *st, res_type *res, int idx, const char *policy,
                  int dry_run, cJSON **out);
int has_finalizer(const cJSON *obj, const char *f);
void remove_finalizer(cJSON *obj, const char *f);

struct sel;
/* Whether obj's labels and fields match both selectors (NULL: all). */
int sel_matches_obj(const struct sel *ls, const struct sel *fs,
                    const cJSON *obj);

/* store_gc.c: garbage collection and namespace cleanup to a fixpoint. */
void gc_run_locked(store *st);

/* Deletes the object just created as ns/name when none of its owners
 * exists. */
void gc_check_new_locked(store *st, res_type *r, const char *ns,
                         const char *name);

/* store_crd.c */
void crd_prepare(cJSON *crd);
void crd_register_locked(store *st, const cJSON *crd);
void crd_unregister_locked(store *st, const cJSON *crd);
int crd_validate(const cJSON *crd, cJSON **status);

/* store_watch.c */
void log_append(store *st, int type, res_type *res, cJSON *obj,
                cJSON *old);
void log_free_all(store *st);

#endif
