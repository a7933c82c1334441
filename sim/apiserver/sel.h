/*
 * sel: Kubernetes label and field selectors.
 *
 * A selector is parsed once from its query-string form (already
 * URL-decoded) and matched against many objects. An empty or NULL text
 * gives a selector that matches everything. Label terms: k=v, k==v, k!=v,
 * k in (a,b), k notin (a,b), k, !k; field terms: f=v, f==v, f!=v. Terms
 * are joined by commas and all must hold.
 */
#ifndef SIMAPI_SEL_H
#define SIMAPI_SEL_H

#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct sel sel;

/*
 * Parses a label selector. Returns NULL with a message in err (at most
 * errlen bytes, naming the bad term) when the text is malformed.
 */
sel *sel_parse_labels(const char *text, char *err, size_t errlen);

/*
 * Parses a field selector. Only the field names are syntax-checked here;
 * whether a field is supported for a kind is the caller's business
 * (see sel_fields()).
 */
sel *sel_parse_fields(const char *text, char *err, size_t errlen);

/* Whether the selector has no terms. NULL counts as empty. */
int sel_empty(const sel *s);

/* Matches a label map (the object's metadata.labels, may be NULL). */
int sel_match_labels(const sel *s, const cJSON *labels);

/*
 * Matches an object's fields. A field name is a dotted path into the
 * object; a missing value compares as the empty string.
 */
int sel_match_fields(const sel *s, const cJSON *obj);

/*
 * Calls fn on every field name the selector uses; stops and returns the
 * first non-zero result of fn. Used to reject unsupported fields.
 */
int sel_fields(const sel *s, int (*fn)(const char *field, void *ud),
               void *ud);

void sel_free(sel *s);

#endif
