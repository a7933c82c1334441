/*
 * jpath: the JSONPath subset CRD printer columns use.
 *
 * Supported: an optional {...} wrapper, dotted fields (.a.b), array
 * indexes ([0], negative from the end), quoted fields (['a.b']) and
 * equality filters ([?(@.type=="Ready")], first match wins).
 */
#ifndef SIMAPI_JPATH_H
#define SIMAPI_JPATH_H

#include <cjson/cJSON.h>

/* Returns the first value at path inside obj (borrowed), or NULL. */
const cJSON *jpath_get(const cJSON *obj, const char *path);

#endif
