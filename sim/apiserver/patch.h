/*
 * patch: the three PATCH formats the apiserver accepts.
 *
 * Each function takes the live object (borrowed) and the patch document
 * (borrowed) and returns a fresh object, or NULL with a human reason in
 * err. The live object is never modified.
 */
#ifndef SIMAPI_PATCH_H
#define SIMAPI_PATCH_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* RFC 7386 JSON merge patch: objects merge, null deletes, rest replaces. */
cJSON *patch_merge(const cJSON *target, const cJSON *patch, char *err,
                   size_t errlen);

/*
 * RFC 6902 JSON patch (an array of add/remove/replace/test/move/copy
 * operations). A failed "test" or a bad path fails the whole patch.
 */
cJSON *patch_json(const cJSON *target, const cJSON *ops, char *err,
                  size_t errlen);

/*
 * Strategic merge patch as kubectl sends it for built-in kinds: a merge
 * patch where lists with a known merge key (containers by name, ports by
 * containerPort or port, ...) merge element-wise, metadata.finalizers
 * merges as a set, and the directives $patch (delete, replace, merge),
 * $setElementOrder/<list>, $retainKeys and $deleteFromPrimitiveList/<list>
 * are honoured. Other lists are replaced.
 */
cJSON *patch_strategic(const cJSON *target, const cJSON *patch, char *err,
                       size_t errlen);

/*
 * Applies "fields" (an applied configuration) onto target for the
 * server-side apply upsert: objects merge recursively, lists and scalars
 * replace, nulls are ignored. Returns a fresh object.
 */
cJSON *patch_apply(const cJSON *target, const cJSON *fields);

#endif
