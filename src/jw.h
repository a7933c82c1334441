/*
 * jw: writes JSON text straight into a growable buffer.
 *
 * For documents a process builds itself on a hot path, such as the
 * engine's run results, where building a cJSON tree only to print it
 * once costs more than the HTTP calls the document reports on.
 *
 * The writer places commas and the colon after a key; the caller opens
 * and closes containers in a valid order and gives every object member
 * a key. Strings are escaped as RFC 8259 asks, and bytes that are not
 * valid UTF-8 are written as U+FFFD, so the output is valid JSON in
 * valid UTF-8 whatever bytes a string holds.
 *
 * Memory: one buffer, doubled as it fills. When an allocation fails (or
 * nesting passes JW_MAX_DEPTH) the writer is marked failed, every later
 * call does nothing, and jw_finish() returns NULL. jw_finish() hands the
 * buffer to the caller; jw_free() drops it instead.
 */
#ifndef ASTER_JW_H
#define ASTER_JW_H

#include <stddef.h>
#include <stdint.h>

/* Deep enough for any text jx accepts (JX_MAX_DEPTH) to be written back. */
#define JW_MAX_DEPTH 1024

typedef struct jw {
    char *buf;
    size_t len;
    size_t cap;
    int failed;
    int depth;
    int after_key;                /* the next value follows a key */
    unsigned char n[JW_MAX_DEPTH / 8]; /* a bit a level: has members */
} jw;

/* Starts an empty document; hint is the expected size in bytes. */
void jw_init(jw *w, size_t hint);

void jw_obj_open(jw *w);
void jw_obj_close(jw *w);
void jw_arr_open(jw *w);
void jw_arr_close(jw *w);

/* An object member's key: NUL-terminated, escaped like a string. */
void jw_key(jw *w, const char *key);

/* A key of n bytes the caller knows needs no escaping (printable ASCII
 * without quote or backslash), copied as it is; JW_KEY takes a string
 * literal. */
void jw_key_plain(jw *w, const char *key, size_t n);
#define JW_KEY(w, lit) jw_key_plain((w), (lit), sizeof(lit) - 1)

/* A key that is already a JSON string token, quotes and escapes
 * included (a key read from a JSON text), written as it is but for bytes
 * that are not UTF-8, which become U+FFFD. */
void jw_key_json(jw *w, const char *token, size_t len);

/* A string of len bytes, which may hold NUL and any other byte. */
void jw_str(jw *w, const char *s, size_t len);

/* Shorthand for a NUL-terminated string. */
void jw_strz(jw *w, const char *s);

void jw_uint(jw *w, uint64_t v);
void jw_bool(jw *w, int v);
void jw_null(jw *w);

/* A duration given in nanoseconds, written in milliseconds with three
 * decimals (microseconds); negative durations are written as 0. */
void jw_ms(jw *w, int64_t ns);

/* A value that is already JSON text, written as it is: the caller vouches
 * for it (e.g. the output of cJSON_PrintUnformatted). */
void jw_json(jw *w, const char *text, size_t len);

/* The same for JSON text that may hold bytes which are not UTF-8 (cJSON
 * passes them through from what it parsed): each such byte is written
 * as U+FFFD. In valid JSON they can only sit inside strings, so the
 * text stays valid. */
void jw_json_utf8(jw *w, const char *text, size_t len);

/* Returns the NUL-terminated document and its length in *len, or NULL
 * when the writer failed; the caller frees the text with free(). */
char *jw_finish(jw *w, size_t *len);

/* Releases the buffer of a document that is not wanted. */
void jw_free(jw *w);

/* Decodes one UTF-8 sequence at s (n bytes left). Returns its length and
 * stores the code point in *cp, or returns 0 for a malformed, overlong or
 * truncated sequence, a surrogate or a code point past U+10FFFF. */
size_t jw_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* 1 when s (len bytes) is valid UTF-8 throughout, 0 otherwise. */
int jw_utf8_valid(const char *s, size_t len);

#endif
