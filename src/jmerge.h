/*
 * jmerge: the input of a node built from its predecessors' outputs.
 *
 * Rules (semantics.md section 3): one predecessor passes its body through
 * byte for byte, JSON or not. Several are merged in the order given:
 * objects merge recursively; on a conflict between two values that are not
 * both objects the earlier output wins whole; arrays are values and never
 * concatenated; an empty body contributes nothing; a non-empty output that
 * is not a JSON object cannot be merged and fails the merge.
 *
 * Outputs are checked strictly (jx.h) and merged as text: every value
 * that is not an object, and every key, is copied byte for byte, so
 * numbers keep their digits and strings their escapes. A key repeated
 * within one object counts once, its first value winning, as between
 * outputs. The merged text is compact between members and valid UTF-8:
 * bytes of the outputs that are not become U+FFFD. Memory goes with the
 * number of object members, not with the size of the values: an 8 MiB
 * array is one member.
 *
 * Nothing here keeps state; safe from any thread.
 */
#ifndef ASTER_JMERGE_H
#define ASTER_JMERGE_H

#include <stddef.h>

/* One predecessor's output: bytes, not necessarily NUL-terminated. */
typedef struct jmerge_part {
    const char *body;
    size_t len;
} jmerge_part;

/*
 * Merges n parts into a newly allocated, NUL-terminated body stored in
 * *out (length in *out_len); the caller frees it with free(). With n == 0
 * the result is "{}".
 *
 * Returns 0 on success. On failure returns -1, writes a sentence into
 * err (errlen bytes, always terminated) and the index of the offending
 * part into *bad (SIZE_MAX when no single part is to blame, e.g. out of
 * memory). The sentence says what is wrong ("is not a JSON object",
 * "is not valid JSON: ...") but not which node: the caller names it.
 */
int jmerge_parts(const jmerge_part *parts, size_t n, char **out,
                 size_t *out_len, char *err, size_t errlen, size_t *bad);

#endif
