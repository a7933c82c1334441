/*
 * jx: JSON text checked against RFC 8259, without building anything.
 *
 * Node outputs pass through workflows as text: a value is forwarded,
 * merged and quoted in the result byte for byte, so numbers keep their
 * digits (a nanosecond timestamp past 2^53, 1e400, 1.50), strings keep
 * their escapes (\u0000, lone surrogates, which the grammar allows), and
 * nothing is rounded through a double. What the engine needs is to know
 * that a text is JSON, what its value is, and where it lies: jx says
 * that, strictly (no leading zeros, no raw control characters, no data
 * after the value), in one pass that allocates nothing, so an 8 MiB
 * answer costs no more memory than its own bytes.
 *
 * Bytes of 0x80 and above inside strings are taken as they are: text
 * that is not valid UTF-8 is repaired where the engine writes it out
 * (jw_json_utf8), not refused. Nothing here keeps state; safe from any
 * thread.
 */
#ifndef ASTER_JX_H
#define ASTER_JX_H

#include <stddef.h>

/* Deeper nesting is refused: merging recurses once per object level. */
#define JX_MAX_DEPTH 1000

typedef enum jx_type {
    JX_NONE = 0, /* not JSON */
    JX_OBJECT,
    JX_ARRAY,
    JX_STRING,
    JX_NUMBER,
    JX_TRUE,
    JX_FALSE,
    JX_NULL,
} jx_type;

/* Why a text is not JSON, and where. */
typedef struct jx_error {
    size_t at;     /* byte offset of the problem */
    char what[64]; /* "a number not in JSON form", "unexpected '}'", ... */
} jx_error;

/*
 * Checks that text (len bytes, need not be NUL-terminated) is exactly one
 * JSON value, blanks around it allowed. Returns its type and, when start
 * and end are not NULL, the offsets of its first byte and one past its
 * last; or returns JX_NONE with *e filled.
 */
jx_type jx_check(const char *text, size_t len, size_t *start, size_t *end,
                 jx_error *e);

/* "an object", "an array", "a string", "a number", "a boolean", "null"
 * for messages; "not JSON" for JX_NONE. */
const char *jx_type_name(jx_type t);

/*
 * The document in an input text (a trigger's body, --input): the text
 * past a leading UTF-8 byte order mark, which some editors and clients
 * put first, and none at all when only blanks are left. Returns the
 * length of that document, 0 for none, and its start in *skip.
 */
size_t jx_input(const char *text, size_t len, size_t *skip);

/*
 * Checks that text is exactly one JSON object. Returns 0, or -1 with a
 * sentence in why (whylen bytes) that starts with what: "<what> is not
 * valid JSON: a number not in JSON form at byte 5", "<what> is not a
 * JSON object but an array".
 */
int jx_check_object(const char *text, size_t len, const char *what,
                    char *why, size_t whylen);

/* Offset of the first byte past the JSON value starting at text[at] in a
 * text jx_check() accepted (at <= the value's start). */
size_t jx_skip(const char *text, size_t len, size_t at);

#endif
