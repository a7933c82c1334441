/*
 * jx: JSON read exactly and strictly.
 *
 * cJSON keeps every number as a double, so 1700000000123456789 (a
 * timestamp in nanoseconds) prints back as 1.7000000001234568e+18 and
 * 1e400 as null, and it ends a string at an escaped NUL: "a\u0000b"
 * comes back as "a". It also lets through a few things JSON does not
 * allow ("01", "1.", raw control characters in strings). Node outputs
 * pass through workflows untouched in value, so jx parses with cJSON,
 * checks the text against RFC 8259 itself, and puts the exact text of
 * every number, and of every string holding \u0000, back into the tree
 * as cJSON_Raw items. Printing the tree then gives them byte for byte.
 *
 * The tree is an ordinary cJSON tree, owned by the caller and freed with
 * cJSON_Delete(); only its numbers (and NUL-holding strings) are raw
 * items, so read values through cJSON_IsObject, cJSON_IsRaw and friends,
 * not cJSON_IsNumber. Nothing here keeps state; safe from any thread.
 */
#ifndef ASTER_JX_H
#define ASTER_JX_H

#include <stddef.h>

typedef struct cJSON cJSON;

/* Deeper nesting is refused, with that reason: cJSON stops at the same
 * depth with only a syntax error, and merging recurses once per level. */
#define JX_MAX_DEPTH 1000

/* Why a text is not accepted, and where. */
typedef struct jx_error {
    size_t at;     /* byte offset of the problem */
    int near;      /* 1 when the offset is only roughly the spot */
    char what[64]; /* "syntax error", "a number not in JSON form", ... */
} jx_error;

/*
 * Parses exactly one JSON value of len bytes (blanks around it allowed;
 * text need not be NUL-terminated). Returns the tree, or NULL with *e
 * filled: bad syntax, data after the value, a raw control character in a
 * string, a number not written as JSON writes numbers, an object key
 * holding \u0000 (keys are compared as C strings, so two such keys would
 * silently become one), nesting past JX_MAX_DEPTH, or memory running out.
 */
cJSON *jx_parse(const char *text, size_t len, jx_error *e);

/* "an object", "an array", "a string", "a number", "a boolean", "null":
 * what a parsed value is, for messages (raw items included). */
const char *jx_kind(const cJSON *v);

/*
 * Checks that text is exactly one JSON object, by jx_parse's rules.
 * Returns 0, or -1 with a sentence in why (whylen bytes) that starts with
 * what: "<what> is not valid JSON: a number not in JSON form at byte 5",
 * "<what> is not a JSON object but an array".
 */
int jx_check_object(const char *text, size_t len, const char *what,
                    char *why, size_t whylen);

#endif
